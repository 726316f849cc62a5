"""Policy: auto-approval rules, the push cap, the blast-radius guard, allowlists, escalation."""

from __future__ import annotations

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.clock import FakeClock
from engine.decisions import (
    AllowlistedClient,
    ConcurrentUpdate,
    Ledger,
    Policy,
    UnknownEntry,
    apply_policy,
)
from engine.schema.decision import Action, Decision, DecisionError, Status
from tests.support.ledger import START

AUTO = {
    "auto_approve": [
        {"name": "rate-high", "detectors": ["request_rate"], "min_score": 0.9},
        {"name": "scanner", "detectors": ["scanner"], "actions": ["challenge"], "min_score": 0.5},
    ],
    "max_new_entries_per_push": 3,
    "max_blocked_share": 0.1,
    "blast_radius_floor": 2,
}


def test_default_policy_approves_nothing(ledger, clock, make) -> None:
    proposals = [ledger.propose(make(f"192.0.2.{i}", score=1.0)) for i in range(3)]
    outcome = apply_policy(ledger, proposals, active_clients=1000, now=clock.now())
    assert outcome.approved == []
    assert {outcome.reasons[d.id] for d in outcome.held} == {"no auto-approve rule covers it"}
    assert ledger.policy().version == 0


def test_rules_auto_approve_what_they_cover(ledger, clock, make) -> None:
    ledger.set_policy(AUTO, by="admin")
    strong = ledger.propose(make("192.0.2.1", score=0.95))
    weak = ledger.propose(make("192.0.2.2", score=0.6))
    scanner_block = make("192.0.2.3", detector="scanner", score=0.9)  # stored by apply_policy
    scanner_challenge = ledger.propose(
        make("192.0.2.4", detector="scanner", action=Action.CHALLENGE, score=0.6)
    )
    outcome = apply_policy(
        ledger,
        [strong, weak, scanner_block, scanner_challenge],
        active_clients=1000,
        now=clock.now(),
    )
    assert {d.client for d in outcome.approved} == {"192.0.2.1", "192.0.2.4"}
    assert {d.client for d in outcome.held} == {"192.0.2.2", "192.0.2.3"}
    assert ledger.get(strong.id).status is Status.APPROVED
    assert ledger.get(weak.id).status is Status.PROPOSED
    trail = ledger.audit(strong.id)
    assert trail[-1].actor == "policy:rate-high"
    assert "policy v1" in trail[-1].comment
    assert ledger.audit(scanner_challenge.id)[-1].actor == "policy:scanner"


def test_push_cap_holds_the_lowest_scores(ledger, clock, make) -> None:
    ledger.set_policy(AUTO, by="admin")
    proposals = [ledger.propose(make(f"192.0.2.{i}", score=0.9 + i / 100)) for i in range(5)]
    outcome = apply_policy(ledger, proposals, active_clients=10_000, now=clock.now())
    assert sorted(d.client for d in outcome.approved) == ["192.0.2.2", "192.0.2.3", "192.0.2.4"]
    assert sorted(d.client for d in outcome.held) == ["192.0.2.0", "192.0.2.1"]
    assert all("max_new_entries_per_push=3" in outcome.reasons[d.id] for d in outcome.held)


def test_blast_radius_guard_holds_the_whole_push(ledger, clock, make) -> None:
    ledger.set_policy(AUTO, by="admin")
    proposals = [ledger.propose(make(f"192.0.2.{i}", score=0.99)) for i in range(3)]
    outcome = apply_policy(ledger, proposals, active_clients=20, now=clock.now())
    assert outcome.approved == []
    assert len(outcome.held) == 3
    assert all("blast-radius" in outcome.reasons[d.id] for d in outcome.held)
    assert all(ledger.get(d.id).status is Status.PROPOSED for d in proposals)
    # The same push against a large population goes through.
    outcome = apply_policy(ledger, proposals, active_clients=1000, now=clock.now())
    assert len(outcome.approved) == 3


def test_blast_radius_counts_campaign_members(ledger, clock, make) -> None:
    ledger.set_policy(AUTO, by="admin")
    members = tuple(f"198.51.100.{i}" for i in range(12))
    campaign = ledger.propose(make("198.51.100.0/28", members=members, score=0.99))
    outcome = apply_policy(ledger, [campaign], active_clients=100, now=clock.now())
    assert outcome.approved == [] and "12 of 100" in outcome.reasons[campaign.id]


def test_allowlist_is_never_approved(ledger, clock, make) -> None:
    ledger.set_policy(AUTO, by="admin")
    ledger.add_allowlist("10.0.0.0/8", by="admin", comment="office")
    inside = ledger.propose(make("10.1.2.3", score=1.0))
    covering = ledger.propose(make("10.0.0.0/7", score=1.0))
    member = ledger.propose(make("192.0.2.0/24", members=("10.9.9.9",), score=1.0))
    outside = ledger.propose(make("11.0.0.1", score=1.0))
    for decision in (inside, covering, member):
        with pytest.raises(AllowlistedClient, match=r"10\.0\.0\.0/8"):
            ledger.approve(decision.id, by="alice")
    outcome = apply_policy(
        ledger, [inside, covering, member, outside], active_clients=1000, now=clock.now()
    )
    assert [d.id for d in outcome.approved] == [outside.id]
    assert "allowlisted" in outcome.reasons[inside.id]


def test_allowlisting_lifts_open_decisions(ledger, make) -> None:
    applied = ledger.approve(ledger.propose(make("2001:db8::1")).id, by="alice")
    ledger.mark_applied([applied.id], by="enforcer")
    pending = ledger.propose(make("2001:db8::2"))
    elsewhere = ledger.propose(make("2001:db9::1"))
    entry = ledger.add_allowlist("2001:db8::/32", by="admin", comment="partner")
    assert entry.cidr == "2001:db8::/32"
    assert ledger.get(applied.id).status is Status.REVOKED
    assert ledger.get(pending.id).status is Status.REJECTED
    assert ledger.get(elsewhere.id).status is Status.PROPOSED
    assert "allowlisted" in ledger.audit(applied.id)[-1].comment
    assert [e.cidr for e in ledger.allowlist()] == ["2001:db8::/32"]
    ledger.remove_allowlist("2001:db8::/32", by="admin")
    assert ledger.allowlist() == []
    with pytest.raises(UnknownEntry):
        ledger.remove_allowlist("2001:db8::/32", by="admin")
    subjects = [e.subject for e in ledger.admin_audit()]
    assert subjects[:2] == ["allowlist:2001:db8::/32"] * 2


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0", "10.0.0.1/8", "not-an-ip", "300.1.1.1"])
def test_bad_allowlist_entries_are_refused(ledger, cidr: str) -> None:
    with pytest.raises(DecisionError):
        ledger.add_allowlist(cidr, by="admin")
    assert ledger.allowlist() == []


def test_policy_is_versioned_validated_and_audited(ledger) -> None:
    first = ledger.set_policy(AUTO, by="admin")
    second = ledger.set_policy(first.model_copy(update={"max_blocked_share": 0.2}), by="root")
    assert (first.version, second.version) == (1, 2)
    assert ledger.policy() == second
    events = [e for e in ledger.admin_audit() if e.subject == "policy"]
    assert [e.actor for e in events] == ["root", "admin"]
    with pytest.raises(pydantic.ValidationError, match="extra"):
        ledger.set_policy({"max_new_entries": 5}, by="admin")
    with pytest.raises(pydantic.ValidationError, match="unique"):
        ledger.set_policy({"auto_approve": [AUTO["auto_approve"][0]] * 2}, by="admin")
    with pytest.raises(pydantic.ValidationError, match="escalation"):
        ledger.set_policy(
            {"escalation": [{"offences": 2, "action": "block", "ttl_s": 60}]}, by="admin"
        )
    with pytest.raises(pydantic.ValidationError, match="max_blocked_share"):
        ledger.set_policy({"max_blocked_share": 0}, by="admin")
    assert ledger.policy().version == 2


def test_escalation_ladder_and_ttls() -> None:
    policy = Policy(
        escalation=[
            {"offences": 0, "action": "count", "ttl_s": 600},
            {"offences": 1, "action": "challenge", "ttl_s": 3600},
            {"offences": 3, "action": "block", "ttl_s": 86400},
        ],
        ttl_s={"block": 7200},
    )
    ladder = [policy.escalation_step(n) for n in range(6)]
    assert [s.action for s in ladder] == [
        Action.COUNT,
        Action.CHALLENGE,
        Action.CHALLENGE,
        Action.BLOCK,
        Action.BLOCK,
        Action.BLOCK,
    ]
    assert ladder[3].ttl_s == 86400
    assert policy.ttl_for(Action.BLOCK) == 7200
    assert policy.ttl_for(Action.CAPTCHA) == policy.max_ttl_s
    with pytest.raises(pydantic.ValidationError):
        Policy(ttl_s={"block": 10**9})


def test_policy_edits_conflict_and_seeding_is_idempotent(db_url, clock) -> None:
    with Ledger.open(db_url, clock=clock) as alice, Ledger.open(db_url, clock=clock) as bob:
        seen = alice.policy().version
        alice.set_policy(AUTO, by="alice", expected_version=seen)
        with pytest.raises(ConcurrentUpdate, match="version 1, not 0"):
            bob.set_policy({"max_blocked_share": 0.5}, by="bob", expected_version=seen)
        assert bob.policy().max_blocked_share == AUTO["max_blocked_share"]
        assert alice.ensure_policy(AUTO, by="config").version == 1
        assert alice.ensure_policy({**AUTO, "blast_radius_floor": 9}, by="config").version == 2
        assert alice.ensure_policy({**AUTO, "blast_radius_floor": 9}, by="config").version == 2


_CLIENTS = st.sampled_from(
    ["10.0.0.1", "10.0.0.2", "192.0.2.1", "192.0.2.2", "192.0.2.3", "198.51.100.9", "2001:db8::1"]
)
_PROPOSALS = st.lists(
    st.tuples(
        _CLIENTS,
        st.sampled_from(list(Action)),
        st.sampled_from(["request_rate", "scanner", "iforest"]),
        st.floats(0.0, 1.0),
    ),
    max_size=12,
)


@settings(max_examples=30, deadline=None)
@given(
    proposals=_PROPOSALS,
    cap=st.integers(0, 6),
    share=st.floats(0.01, 1.0),
    floor=st.integers(0, 4),
    active=st.integers(0, 200),
    min_score=st.floats(0.0, 1.0),
)
def test_apply_policy_properties(proposals, cap, share, floor, active, min_score) -> None:
    clock = FakeClock(START)
    with Ledger.open("sqlite://", clock=clock) as ledger:
        ledger.add_allowlist("10.0.0.0/24", by="admin")
        policy = ledger.set_policy(
            {
                "auto_approve": [
                    {"name": "r", "detectors": ["request_rate", "scanner"], "min_score": min_score}
                ],
                "max_new_entries_per_push": cap,
                "max_blocked_share": share,
                "blast_radius_floor": floor,
            },
            by="admin",
        )
        batch = [
            Decision(client=c, action=a, ttl_s=600, score=s, detector=d, decided_at=START)
            for c, a, d, s in proposals
        ]
        outcome = apply_policy(ledger, batch, active_clients=active, now=clock.now())
        approved = {d.id for d in outcome.approved}
        held = {d.id for d in outcome.held}
        stored = {d.id for d in ledger.list(limit=100).items}
        assert approved | held == stored and not approved & held
        assert set(outcome.reasons) == held
        assert len(approved) <= cap
        blocking = [d for d in outcome.approved if d.action is not Action.COUNT]
        assert len(blocking) <= max(floor, share * active)
        for d in outcome.approved:
            assert policy.rule_for(d) is not None
            assert not d.client.startswith("10.0.0.")
            assert ledger.get(d.id).status is Status.APPROVED
        for d in outcome.held:
            assert ledger.get(d.id).status is Status.PROPOSED


def test_crawler_conduct_is_never_auto_approved(ledger, clock, make) -> None:
    ledger.set_policy({"auto_approve": [{"name": "all", "detectors": ["*"], "min_score": 0.0}]},
                      by="admin")  # fmt: skip
    crawler = make("66.249.66.1", detector="crawler_conduct", score=0.7)
    other = make("192.0.2.9", detector="injection", score=0.7)
    outcome = apply_policy(ledger, [crawler, other], active_clients=1000, now=clock.now())
    assert {d.client for d in outcome.approved} == {"192.0.2.9"}
    (held,) = outcome.held
    assert held.client == "66.249.66.1" and ledger.get(held.id).status is Status.PROPOSED
    assert "analyst decides" in outcome.reasons[held.id]
