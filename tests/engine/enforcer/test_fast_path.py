"""The fast path: after a converged cycle, new entries touch only the sets that changed."""

from __future__ import annotations

from engine.schema.decision import Action
from tests.support.waf import (
    compile_doc,
    decisions,
    ip_set_contents,
    v4_addresses,
)


def test_new_block_entries_cost_one_read_and_one_write(web_acl, wafv2, make_reconciler):
    rec = make_reconciler()
    assert rec.run_cycle(compile_doc(decisions(v4_addresses(50)))).ok

    result = rec.push(compile_doc(decisions([*v4_addresses(50), "203.0.113.77"])))

    assert result.ok
    assert result.stats.calls == {"GetIPSet": 1, "UpdateIPSet": 1}
    assert "203.0.113.77/32" in ip_set_contents(wafv2)["wafsmith-block-v4-0"]


def test_a_full_cycle_after_the_fast_path_finds_nothing_to_do(web_acl, make_reconciler):
    rec = make_reconciler()
    rec.run_cycle(compile_doc(decisions(v4_addresses(10))))
    rec.push(compile_doc(decisions([*v4_addresses(10), "203.0.113.77"])))

    again = rec.run_cycle(compile_doc(decisions([*v4_addresses(10), "203.0.113.77"])))

    assert again.ok and again.writes == 0
    assert again.drift.unresolved == []


def test_a_change_of_shape_falls_back_to_a_full_cycle(web_acl, wafv2, make_reconciler):
    rec = make_reconciler()
    rec.run_cycle(compile_doc(decisions(v4_addresses(10))))

    # count-only changes every rule's action: not an entries-only change
    result = rec.push(compile_doc(decisions(v4_addresses(10)), count_only=True))

    assert result.ok
    assert result.stats.calls["ListIPSets"] == 1  # the full read happened
    assert result.stats.calls["GetWebACL"] >= 1


def test_without_a_converged_cycle_push_is_a_full_cycle(web_acl, make_reconciler):
    rec = make_reconciler()

    result = rec.push(compile_doc(decisions(["203.0.113.7"], action=Action.CHALLENGE)))

    assert result.ok
    assert result.stats.calls["ListIPSets"] == 1


def test_a_manual_edit_seen_on_the_fast_path_fails_it_and_the_next_full_cycle_repairs(
    web_acl, wafv2, make_reconciler
):
    rec = make_reconciler()
    rec.run_cycle(compile_doc(decisions(v4_addresses(5))))
    summary = next(
        s
        for s in wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"]
        if s["Name"] == "wafsmith-block-v4-0"
    )
    body = wafv2.get_ip_set(Name=summary["Name"], Scope="REGIONAL", Id=summary["Id"])
    wafv2.update_ip_set(
        Name=summary["Name"],
        Scope="REGIONAL",
        Id=summary["Id"],
        Addresses=["198.51.100.1/32"],
        LockToken=body["LockToken"],
        Description=body["IPSet"]["Description"],
    )
    wanted = decisions([*v4_addresses(5), "203.0.113.77"])

    fast = rec.push(compile_doc(wanted))
    full = rec.push(compile_doc(wanted))  # the failed fast path forgot its baseline

    assert not fast.ok and fast.errors[0].code == "ManualEdit"
    assert full.ok and full.stats.calls["ListIPSets"] == 1
    assert ip_set_contents(wafv2)["wafsmith-block-v4-0"] == {
        *(f"{a}/32" for a in v4_addresses(5)),
        "203.0.113.77/32",
    }
