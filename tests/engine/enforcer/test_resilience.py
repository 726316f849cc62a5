"""Races, injected faults, crashes and scale: decisions are never lost, AWS always converges."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from engine.compiler import rendered
from engine.enforcer import (
    CallPolicy,
    FaultInjectingWafV2Api,
    Reconciler,
    SimulatedCrash,
)
from engine.enforcer.aws_clients import make_client_error
from engine.enforcer.faults import WRITE_METHODS
from engine.schema.rule import (
    DesiredState,
    IPSetRuleSpec,
    IPSetSpec,
    PlacementSpec,
)
from tests.support.waf import (
    WEB_ACL,
    acl_body,
    all_addresses,
    compile_doc,
    decisions,
    ip_set_contents,
    v4_addresses,
    v6_addresses,
)


def _cidrs(clients: list[str]) -> set[str]:
    return {f"{c}/128" if ":" in c else f"{c}/32" for c in clients}


class _RaceOnFirstUpdate:
    """Forwards to ``inner``; each thread's first UpdateIPSet waits until both threads have
    read the set, so both send the same LockToken and one of them must lose the race."""

    def __init__(self, inner: Any, barrier: threading.Barrier) -> None:
        self._inner = inner
        self._barrier = barrier
        self._seen = threading.local()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def update_ip_set(self, **kw: Any) -> dict[str, Any]:
        if not getattr(self._seen, "done", False):
            self._seen.done = True
            self._barrier.wait(timeout=30)
        return self._inner.update_ip_set(**kw)


def test_two_writers_racing_on_one_set_lose_no_entry(wafv2, web_acl, api, fake_clock):
    base = v4_addresses(50)
    policy = CallPolicy(fake_clock, seed=3)
    assert (
        Reconciler(api, clock=fake_clock, policy=policy).run_cycle(compile_doc(decisions(base))).ok
    )
    extra_a = v4_addresses(20, start="10.50.0.0")
    extra_b = v4_addresses(20, start="10.60.0.0")
    docs = {
        "a": compile_doc(decisions(base + extra_a)),
        "b": compile_doc(decisions(base + extra_b)),
    }
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def writer(key: str) -> None:
        rec = Reconciler(_RaceOnFirstUpdate(api, barrier), clock=fake_clock, policy=policy)
        results[key] = rec.run_cycle(docs[key])

    threads = [threading.Thread(target=writer, args=(k,)) for k in docs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert results["a"].ok, results["a"].errors
    assert results["b"].ok, results["b"].errors
    assert results["a"].stats.lock_conflicts + results["b"].stats.lock_conflicts >= 1
    assert all_addresses(ip_set_contents(wafv2)) == _cidrs(base + extra_a + extra_b)


@pytest.mark.parametrize("crash_after", [1, 5, 10, 11])
def test_restart_in_the_middle_of_a_plan_converges(
    wafv2, web_acl, api, make_reconciler, crash_after
):
    clients = v4_addresses(30) + v6_addresses(30)
    doc = compile_doc(decisions(clients))
    crashing = FaultInjectingWafV2Api(api, crash_after_writes=crash_after)
    with pytest.raises(SimulatedCrash):
        make_reconciler(crashing).run_cycle(doc)
    assert crashing.writes_forwarded == crash_after

    restarted = make_reconciler()  # a new process: no memory of the crashed one
    result = restarted.run_cycle(doc)

    assert result.ok, result.errors
    assert result.stats.calls["DeleteIPSet"] == 0  # nothing torn down on start
    assert all_addresses(ip_set_contents(wafv2)) == _cidrs(clients)
    assert any(r["Name"] == "wafsmith-rules" for r in acl_body(wafv2)["Rules"])
    assert restarted.run_cycle(doc).writes == 0


def test_heavy_fault_injection_never_loses_a_decision(wafv2, web_acl, api, fake_clock):
    faulty = FaultInjectingWafV2Api(
        api,
        seed=11,
        rates={
            "ThrottlingException": 0.12,
            "WAFInternalErrorException": 0.08,
            "WAFUnavailableEntityException": 0.07,
            "WAFOptimisticLockException": 0.08,
            "WAFLimitsExceededException": 0.03,
        },
    )
    rec = Reconciler(
        faulty,
        clock=fake_clock,
        policy=CallPolicy(fake_clock, max_attempts=4, limits_attempts=2, seed=5),
    )
    clients: list[str] = []
    failed_cycles = 0
    for round_no in range(6):
        clients = (
            clients[10:]
            + v4_addresses(40, start=f"10.{round_no + 1}.0.0")
            + v6_addresses(10, start=f"2001:db8:{round_no + 1}::")
        )
        doc = compile_doc(decisions(clients))
        for _ in range(30):
            result = rec.run_cycle(doc)
            if result.ok:
                break
            failed_cycles += 1
            assert result.errors, "a failed cycle must say why"
            assert not result.drift.in_sync
        assert result.ok, result.errors
        assert all_addresses(ip_set_contents(wafv2)) == _cidrs(clients)

    assert failed_cycles >= 1  # the rates are high enough that retries sometimes run out
    assert sum(faulty.injected.values()) >= 20
    clean = Reconciler(api, clock=fake_clock, policy=CallPolicy(fake_clock))
    assert clean.run_cycle(doc).writes == 0


def _hand_built(v4: list[str], v6: list[str]) -> DesiredState:
    """The document the compiler would produce for 25,000 block decisions, built directly
    (the compiler has its own tests; this keeps the enforcer test about AWS)."""
    shards = [
        ("wafsmith-block-v4-0", "IPV4", v4[:10_000]),
        ("wafsmith-block-v4-1", "IPV4", v4[10_000:]),
        ("wafsmith-block-v6-0", "IPV6", v6),
    ]
    sets = tuple(
        IPSetSpec(
            name=n,
            scope="REGIONAL",
            ip_version=f,
            category="block",
            addresses=tuple(sorted(_cidrs(a))),
            description=f"wafsmith block {f}",
        )
        for n, f, a in shards
    )
    rule = IPSetRuleSpec(
        name="wafsmith-block",
        priority=0,
        action="BLOCK",
        category="block",
        ip_set_names=tuple(n for n, _, _ in shards),
    )
    placement = PlacementSpec(
        mode="rule_group",
        scope="REGIONAL",
        web_acl_name=WEB_ACL,
        rule_group_name="wafsmith-rules",
        rule_group_capacity=500,
        priority_min=100,
        priority_max=199,
    )
    return rendered(DesiredState(ip_sets=sets, rules=(rule,), placement=placement))


def test_25000_addresses_across_v4_and_v6_are_sharded_and_all_enforced(
    wafv2, web_acl, make_reconciler
):
    v4, v6 = v4_addresses(15_000), v6_addresses(10_000)
    doc = _hand_built(v4, v6)
    rec = make_reconciler()
    result = rec.run_cycle(doc)
    assert result.ok, result.errors
    contents = ip_set_contents(wafv2)
    assert sorted(len(v) for v in contents.values()) == [5_000, 10_000, 10_000]
    assert all_addresses(contents) == _cidrs(v4 + v6)
    assert sum(result.entries.values()) == 25_000
    assert rec.run_cycle(doc).writes == 0
    # Expiring 1 % of the v6 clients rewrites the v6 set only.
    shrunk = _hand_built(v4, v6[100:])
    again = rec.run_cycle(shrunk)
    assert [s.resource for s in again.steps if s.status == "applied"] == [
        "ipset/wafsmith-block-v6-0"
    ]
    assert all_addresses(ip_set_contents(wafv2)) == _cidrs(v4 + v6[100:])


def test_writes_are_paced_at_one_per_second_on_the_injected_clock(wafv2, web_acl, api, fake_clock):
    doc = compile_doc(decisions(v4_addresses(5)))
    start = fake_clock.time()
    result = Reconciler(api, clock=fake_clock, policy=CallPolicy(fake_clock)).run_cycle(doc)
    assert result.ok
    assert result.writes == len(doc.ip_sets) + 2
    assert fake_clock.time() - start >= result.writes - 1  # ≤ 1 write per second


class _RejectsAddresses:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name in WRITE_METHODS:

            def reject(**kw: Any) -> dict[str, Any]:
                raise make_client_error(
                    "WAFInvalidParameterException",
                    "bad address",
                    "CreateIPSet",
                    extra={"Field": "IP_ADDRESS", "Parameter": "10.0.0.0/0", "Reason": "no"},
                )

            return reject
        return getattr(self._inner, name)


def test_invalid_parameter_fails_loudly_naming_the_field(wafv2, web_acl, api, fake_clock):
    rec = Reconciler(_RejectsAddresses(api), clock=fake_clock)
    doc = compile_doc(decisions(v4_addresses(2)))
    result = rec.run_cycle(doc)
    assert not result.ok
    assert len(result.errors) == len(doc.ip_sets)  # one per set, none hidden
    error = result.errors[0]
    assert error.code == "WAFInvalidParameterException" and error.field == "IP_ADDRESS"
    assert "10.0.0.0/0" in error.message
    # Never retried, and the rules phase never ran on sets that do not exist.
    assert result.stats.calls["CreateIPSet"] == len(doc.ip_sets)
    assert "CreateRuleGroup" not in result.stats.calls
    assert not any(r["Name"].startswith("wafsmith-") for r in acl_body(wafv2)["Rules"])
