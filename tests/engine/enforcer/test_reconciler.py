"""Reconciler behaviour against moto over HTTP: minimal writes, foreign rules kept, modes, TTL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from engine.enforcer import Mode, next_cycle_at, next_expiry
from engine.schema.decision import Action
from tests.support.waf import (
    FOREIGN_RULES,
    NOW,
    WEB_ACL,
    Recording,
    acl_body,
    all_addresses,
    compile_doc,
    decisions,
    ip_set_contents,
    v4_addresses,
    v6_addresses,
    vis,
)


def _cidrs(clients: list[str]) -> set[str]:
    return {f"{c}/128" if ":" in c else f"{c}/32" for c in clients}


def test_first_cycle_creates_everything_and_second_makes_no_writes(wafv2, web_acl, make_reconciler):
    clients = v4_addresses(40) + v6_addresses(15)
    doc = compile_doc(decisions(clients))
    rec = make_reconciler()

    first = rec.run_cycle(doc)
    assert first.ok, first.errors
    contents = ip_set_contents(wafv2)
    assert set(contents) == {s.name for s in doc.ip_sets}
    assert all_addresses(contents) == _cidrs(clients)
    assert first.stats.calls["CreateIPSet"] == len(doc.ip_sets)
    assert first.stats.calls["CreateRuleGroup"] == 1
    assert first.stats.calls["UpdateWebACL"] == 1

    second = rec.run_cycle(doc)
    assert second.ok
    assert second.writes == 0
    assert second.drift.found == []
    assert all(s.status != "applied" for s in second.steps)


def test_one_percent_change_touches_only_the_affected_sets(wafv2, web_acl, make_reconciler):
    clients = v4_addresses(2000) + v6_addresses(2000)
    rec = make_reconciler()
    assert rec.run_cycle(compile_doc(decisions(clients))).ok
    # 1 %: 40 new IPv4 clients, nothing else changes.
    changed = clients + v4_addresses(40, start="172.16.0.0")
    doc = compile_doc(decisions(changed))

    result = rec.run_cycle(doc)

    assert result.ok, result.errors
    updated = {s.resource for s in result.steps if s.operation == "UpdateIPSet"}
    v4_block = {
        f"ipset/{s.name}" for s in doc.ip_sets if s.category == "block" and s.ip_version == "IPV4"
    }
    assert updated and updated <= v4_block
    assert result.writes == len(updated)  # no rule group, web ACL or v6 write
    assert all_addresses(ip_set_contents(wafv2)) == _cidrs(changed)


ACL_FIELDS = (
    "DefaultAction",
    "Description",
    "VisibilityConfig",
    "CustomResponseBodies",
    "TokenDomains",
    "CaptchaConfig",
    "ChallengeConfig",
    "AssociationConfig",
)


def test_foreign_rules_and_acl_fields_survive_byte_for_byte(wafv2, web_acl, api, make_reconciler):
    before = acl_body(wafv2)
    recording = Recording(api)
    rec = make_reconciler(recording)
    doc = compile_doc(decisions(v4_addresses(5)))
    assert rec.run_cycle(doc).ok
    # moto merges fields an update omits, so check the request itself carries every field.
    (request,) = [kw for op, kw in recording.requests if op == "update_web_acl"]
    for key in ACL_FIELDS:
        assert request[key] == before[key], key
    # A second document in web_acl placement rewrites the ACL again (engine rules inline).
    inline = compile_doc(
        decisions(v4_addresses(5)), placement={"web_acl_name": WEB_ACL, "mode": "web_acl"}
    )
    assert rec.run_cycle(inline).ok

    after = acl_body(wafv2)
    foreign_after = [r for r in after["Rules"] if not r["Name"].startswith("wafsmith-")]
    assert foreign_after == before["Rules"]
    assert [r["Name"] for r in before["Rules"]] == [r["Name"] for r in FOREIGN_RULES]
    for key in ACL_FIELDS:
        assert after[key] == before[key], key
    engine = [r for r in after["Rules"] if r["Name"].startswith("wafsmith-")]
    assert {r["Name"] for r in engine} == {r.name for r in inline.rules}
    assert all(100 <= r["Priority"] <= 199 for r in engine)
    # The rule group of the first placement is no longer referenced, so it was deleted.
    assert [g["Name"] for g in wafv2.list_rule_groups(Scope="REGIONAL")["RuleGroups"]] == []


def test_engine_priority_taken_by_a_foreign_rule_is_refused(wafv2, web_acl, make_reconciler):
    doc = compile_doc(
        decisions(v4_addresses(3)),
        placement={"web_acl_name": WEB_ACL, "priority_min": 5, "priority_max": 50},
    )
    before = acl_body(wafv2)
    result = make_reconciler().run_cycle(doc)
    assert not result.ok
    assert "operator-rate-login" in result.errors[0].message
    assert any(d.cause == "priority_conflict" for d in result.drift.found)
    assert acl_body(wafv2)["Rules"] == before["Rules"]


def test_dry_run_makes_no_writes_and_lists_the_plan(wafv2, web_acl, make_reconciler):
    doc = compile_doc(decisions(v4_addresses(10)))
    result = make_reconciler().run_cycle(doc, mode=Mode.DRY_RUN)
    assert result.ok
    assert result.writes == 0
    ops = [s.operation for s in result.steps]
    assert ops.count("CreateIPSet") == len(doc.ip_sets)
    assert ops[-2:] == ["CreateRuleGroup", "UpdateWebACL"]
    assert wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"] == []
    assert acl_body(wafv2)["Rules"] == web_acl["Rules"]


def test_count_only_puts_every_engine_rule_in_count(wafv2, web_acl, make_reconciler):
    wanted = decisions(v4_addresses(3)) + decisions(["10.9.0.1"], Action.CAPTCHA)
    doc = compile_doc(wanted)
    rec = make_reconciler()
    # The compiler renders count-only; the enforcer never rewrites the actions it is given.
    with pytest.raises(ValueError, match="count_only"):
        rec.run_cycle(doc, mode=Mode.COUNT_ONLY)
    assert rec.run_cycle(compile_doc(wanted, count_only=True), mode=Mode.COUNT_ONLY).ok
    group = wafv2.list_rule_groups(Scope="REGIONAL")["RuleGroups"][0]
    rules = wafv2.get_rule_group(Name=group["Name"], Scope="REGIONAL", Id=group["Id"])["RuleGroup"][
        "Rules"
    ]
    assert rules and all(r["Action"] == {"Count": {}} for r in rules)
    # Switching to enforce rewrites only the rule group, with the real actions.
    result = rec.run_cycle(doc, mode=Mode.ENFORCE)
    assert [s.operation for s in result.steps if s.status == "applied"] == ["UpdateRuleGroup"]


def test_expiry_removes_addresses_on_the_next_cycle(wafv2, web_acl, make_reconciler):
    short = decisions(["10.1.0.1", "10.1.0.3"], ttl_s=600)
    long = decisions(["10.2.0.1"], ttl_s=7200)
    rec = make_reconciler()
    assert rec.run_cycle(compile_doc(short + long)).ok
    assert next_expiry(short + long, NOW) == NOW + timedelta(seconds=600)

    later = NOW + timedelta(seconds=601)
    result = rec.run_cycle(
        compile_doc(short + long, now=later), next_expiry=next_expiry(short + long, later)
    )
    assert result.ok
    assert all_addresses(ip_set_contents(wafv2)) == {"10.2.0.1/32"}
    assert result.next_expiry == NOW + timedelta(seconds=7200)
    assert result.writes == 1
    # A 10-minute loop wakes at the expiry when it comes first, else on its interval.
    assert next_cycle_at(NOW, 900, NOW + timedelta(seconds=600)) == NOW + timedelta(seconds=600)
    assert next_cycle_at(NOW, 60, NOW + timedelta(seconds=600)) == NOW + timedelta(seconds=60)
    assert next_cycle_at(NOW, 60, None) == NOW + timedelta(seconds=60)


def test_manual_edit_of_an_engine_set_is_reported_and_repaired(wafv2, web_acl, make_reconciler):
    doc = compile_doc(decisions(v4_addresses(5)))
    rec = make_reconciler()
    assert rec.run_cycle(doc).ok
    name = next(s.name for s in doc.ip_sets if s.addresses and s.ip_version == "IPV4")
    summary = next(s for s in wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"] if s["Name"] == name)
    got = wafv2.get_ip_set(Name=name, Scope="REGIONAL", Id=summary["Id"])
    wafv2.update_ip_set(
        Name=name,
        Scope="REGIONAL",
        Id=summary["Id"],
        Description=got["IPSet"]["Description"],
        Addresses=[*got["IPSet"]["Addresses"], "198.51.100.9/32"],
        LockToken=got["LockToken"],
    )

    result = rec.run_cycle(doc)

    drift = [d for d in result.drift.found if d.resource == f"ipset/{name}"]
    assert [(d.cause, d.data["extra"]) for d in drift] == [("manual_edit", 1)]
    assert result.ok and result.drift.in_sync
    assert "198.51.100.9/32" not in all_addresses(ip_set_contents(wafv2))


def test_foreign_set_with_an_engine_name_is_not_adopted(wafv2, web_acl, make_reconciler):
    doc = compile_doc(decisions(v4_addresses(2)))
    taken = doc.ip_sets[0].name
    wafv2.create_ip_set(
        Name=taken,
        Scope="REGIONAL",
        Description="someone else",
        IPAddressVersion=doc.ip_sets[0].ip_version,
        Addresses=[],
    )
    result = make_reconciler().run_cycle(doc)
    assert not result.ok
    assert result.errors[0].code == "NameConflict"
    assert result.writes == 0
    unresolved = {(d.resource, d.cause) for d in result.drift.unresolved}
    assert (f"ipset/{taken}", "name_conflict") in unresolved
    assert (f"ipset/{doc.ip_sets[1].name}", "missing") in unresolved  # nothing was written


def test_missing_web_acl_fails_loudly(wafv2, make_reconciler):
    result = make_reconciler().run_cycle(compile_doc(decisions(v4_addresses(2))))
    assert not result.ok
    assert "prod-acl" in result.errors[0].message
    assert result.writes == 0


def test_spelling_variants_in_aws_are_not_changes(wafv2, web_acl, make_reconciler):
    doc = compile_doc(decisions(["2001:db8::a", "2001:db8::c"]))
    rec = make_reconciler()
    assert rec.run_cycle(doc).ok
    name = next(s.name for s in doc.ip_sets if s.addresses and s.ip_version == "IPV6")
    summary = next(s for s in wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"] if s["Name"] == name)
    got = wafv2.get_ip_set(Name=name, Scope="REGIONAL", Id=summary["Id"])
    wafv2.update_ip_set(
        Name=name,
        Scope="REGIONAL",
        Id=summary["Id"],
        Description=got["IPSet"]["Description"],
        Addresses=["2001:DB8:0::A/128", "2001:0db8::c/128"],
        LockToken=got["LockToken"],
    )
    result = rec.run_cycle(doc)
    assert result.ok and result.writes == 0 and result.drift.found == []


def test_references_are_removed_before_sets_are_deleted_and_foreign_sets_stay(
    wafv2, web_acl, api, make_reconciler
):
    wafv2.create_ip_set(
        Name="operator-blocklist",
        Scope="REGIONAL",
        Description="ops list",
        IPAddressVersion="IPV4",
        Addresses=["203.0.113.0/24"],
    )
    wafv2.create_ip_set(
        Name="wafsmith-legacy",
        Scope="REGIONAL",
        Description="hand made",
        IPAddressVersion="IPV4",
        Addresses=[],
    )
    rec = make_reconciler()
    both = compile_doc(decisions(v4_addresses(3)) + decisions(["10.8.0.1"], Action.CAPTCHA))
    assert rec.run_cycle(both).ok
    recording = Recording(api)
    block_only = compile_doc(decisions(v4_addresses(3)), categories=["block"])

    result = make_reconciler(recording).run_cycle(block_only)

    assert result.ok, result.errors
    ops = [op for op, _ in recording.writes]
    assert ops[0] == "update_rule_group"  # captcha rule gone before its sets
    assert set(ops[1:]) == {"delete_ip_set"}
    deleted = {name for op, name in recording.writes if op == "delete_ip_set"}
    assert deleted == {s.name for s in both.ip_sets} - {s.name for s in block_only.ip_sets}
    left = {s["Name"] for s in wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"]}
    assert {"operator-blocklist", "wafsmith-legacy"} <= left


class _OperatorEditsFirst:
    """Before our first UpdateWebACL, an operator adds a rule (so our LockToken is stale)."""

    def __init__(self, inner: Any, wafv2) -> None:
        self._inner = inner
        self._wafv2 = wafv2
        self.done = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def update_web_acl(self, **kw: Any) -> dict[str, Any]:
        if not self.done:
            self.done = True
            body = acl_body(self._wafv2)
            token = self._wafv2.get_web_acl(Name=WEB_ACL, Scope="REGIONAL", Id=body["Id"])[
                "LockToken"
            ]
            rules = [
                *body["Rules"],
                {
                    "Name": "operator-new-geo",
                    "Priority": 7,
                    "Action": {"Block": {}},
                    "Statement": {"GeoMatchStatement": {"CountryCodes": ["KP"]}},
                    "VisibilityConfig": vis("operator-new-geo"),
                },
            ]
            self._wafv2.update_web_acl(
                Name=WEB_ACL,
                Scope="REGIONAL",
                Id=body["Id"],
                DefaultAction=body["DefaultAction"],
                VisibilityConfig=body["VisibilityConfig"],
                Rules=rules,
                LockToken=token,
            )
        return self._inner.update_web_acl(**kw)


def test_web_acl_lock_conflict_rereads_and_keeps_the_operators_new_rule(
    wafv2, web_acl, api, make_reconciler
):
    racing = _OperatorEditsFirst(api, wafv2)
    result = make_reconciler(racing).run_cycle(compile_doc(decisions(v4_addresses(2))))
    assert result.ok, result.errors
    assert result.stats.lock_conflicts == 1
    names = [r["Name"] for r in acl_body(wafv2)["Rules"]]
    assert names == [
        "operator-allow-office",
        "operator-rate-login",
        "operator-new-geo",
        "wafsmith-rules",
        FOREIGN_RULES[2]["Name"],
    ]


def test_firewall_manager_web_acls_are_refused(wafv2, make_reconciler):
    fms = "FMManagedWebACLV2-shop-1700000000000"
    wafv2.create_web_acl(
        Name=fms,
        Scope="REGIONAL",
        DefaultAction={"Allow": {}},
        VisibilityConfig=vis("fms"),
        Rules=[],
    )
    doc = compile_doc(decisions(v4_addresses(2)), placement={"web_acl_name": fms})
    result = make_reconciler().run_cycle(doc)
    assert not result.ok
    assert "Firewall Manager" in result.errors[0].message
    assert result.writes == 0


def test_cycle_result_is_json_serialisable(wafv2, web_acl, make_reconciler):
    result = make_reconciler().run_cycle(compile_doc(decisions(v4_addresses(2))))
    text = json.dumps(result.to_dict())
    back = json.loads(text)
    assert back["ok"] is True and back["drift"]["in_sync"] is True
    assert back["calls"]["calls"]["CreateIPSet"] == len(back["entries"])


def test_rate_rules_are_not_rewritten_when_only_addresses_change(wafv2, web_acl, make_reconciler):
    """Rewriting a rate rule resets its counters: an address change must not touch it."""
    protections = {
        "rate_limits": [
            {
                "name": "login",
                "limit": 20,
                "window_s": 60,
                "scope_down": {"method": "POST", "path": "/login"},
            },
            {
                "name": "ja4",
                "limit": 500,
                "aggregate": "CUSTOM_KEYS",
                "custom_keys": [{"type": "ja4"}, {"type": "uri_path"}],
            },
        ]
    }
    rec = make_reconciler()
    assert rec.run_cycle(compile_doc(decisions(v4_addresses(4)), **protections)).ok
    more = compile_doc(
        decisions([*v4_addresses(4), "10.200.0.1"]) + decisions(["10.201.0.1"], Action.RATE_LIMIT),
        **protections,
    )
    result = rec.run_cycle(more)
    assert result.ok
    assert {s.operation for s in result.steps if s.status == "applied"} == {"UpdateIPSet"}
    assert rec.run_cycle(more).writes == 0


def test_duplicate_engine_sets_from_a_racing_create_are_folded_into_one(
    wafv2, web_acl, make_reconciler
):
    """AWS refuses a second set of the same name; moto accepts it, as a racing writer might."""
    doc = compile_doc(decisions(v4_addresses(3)))
    rec = make_reconciler()
    assert rec.run_cycle(doc).ok
    name = next(s.name for s in doc.ip_sets if s.addresses and s.ip_version == "IPV4")
    original = next(s for s in wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"] if s["Name"] == name)
    wafv2.create_ip_set(
        Name=name,
        Scope="REGIONAL",
        Description=original["Description"],
        IPAddressVersion="IPV4",
        Addresses=["198.51.100.77/32"],
    )

    result = rec.run_cycle(doc)

    assert result.ok, result.errors
    same_name = [s for s in wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"] if s["Name"] == name]
    assert [s["ARN"] for s in same_name] == [original["ARN"]]
    assert "198.51.100.77/32" not in all_addresses(ip_set_contents(wafv2))
    assert rec.run_cycle(doc).writes == 0
