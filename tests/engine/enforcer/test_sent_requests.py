"""What is validated is what is sent: every request the enforcer makes to moto is one the
compiler rendered (and the validator and the botocore model check examined), with only the
placeholders filled in: ARNs, the ownership digest, and an update's Id and LockToken."""

from __future__ import annotations

from typing import Any

import pytest

from engine.compiler import validate
from engine.enforcer import FaultInjectingWafV2Api
from engine.schema.decision import Action, Decision
from engine.schema.requests import (
    ip_set_update,
    marked_digest,
    placeholder_arn,
    rule_group_update,
    with_arns,
    with_digest,
)
from engine.schema.rule import DesiredState
from tests.support.waf import (
    WEB_ACL,
    Recording,
    compile_doc,
    decisions,
    v4_addresses,
    v6_addresses,
)


def _protections(limit: int = 20) -> dict[str, Any]:
    login = {"method": "POST", "path": "/login"}
    return {"rate_limits": [{"name": "login", "limit": limit, "scope_down": login}]}


def _mixed(extra: tuple[str, ...] = ()) -> list[Decision]:
    return (
        decisions([*v4_addresses(20), *v6_addresses(5), *extra])
        + decisions(["10.9.0.1"], Action.CAPTCHA)
        + decisions(["10.10.0.1"], Action.RATE_LIMIT)
    )


def _aws_names(wafv2) -> tuple[dict[str, str], dict[str, str]]:
    """(placeholder ARN → the ARN moto assigned, name → Id) for the engine's sets and group."""
    sets = wafv2.list_ip_sets(Scope="REGIONAL", Limit=100)["IPSets"]
    groups = wafv2.list_rule_groups(Scope="REGIONAL", Limit=100)["RuleGroups"]
    arns = {placeholder_arn(s["Name"], "REGIONAL"): s["ARN"] for s in sets}
    arns |= {placeholder_arn(g["Name"], "REGIONAL", "rulegroup"): g["ARN"] for g in groups}
    return arns, {o["Name"]: o["Id"] for o in [*sets, *groups]}


def _filled(rendered: dict[str, Any], sent: dict[str, Any], arns: dict[str, str]) -> dict[str, Any]:
    """``rendered`` with its placeholders filled in: ARNs from AWS, the digest ``sent`` wrote."""
    body = with_arns(rendered, arns)
    digest = marked_digest(sent.get("Description"))
    assert digest is not None, sent.get("Description")
    body["Description"] = with_digest(body["Description"], digest)
    return body


def _sent(recording: Recording, operation: str) -> list[dict[str, Any]]:
    return [kw for op, kw in recording.requests if op == operation]


@pytest.mark.parametrize(
    ("mode", "count_only"), [("rule_group", False), ("web_acl", False), ("rule_group", True)]
)
def test_the_first_cycle_sends_the_rendered_creates_and_web_acl_rules(
    wafv2, web_acl, api, make_reconciler, mode, count_only
):
    doc = compile_doc(
        _mixed(),
        placement={"web_acl_name": WEB_ACL, "mode": mode},
        count_only=count_only,
        **_protections(),
    )
    assert validate(doc) == [] and doc.requests is not None
    recording = Recording(api)

    result = make_reconciler(recording).run_cycle(doc)

    assert result.ok, result.errors
    arns, _ = _aws_names(wafv2)
    created = {kw["Name"]: kw for kw in _sent(recording, "create_ip_set")}
    assert sorted(created) == sorted(b["Name"] for b in doc.requests.ip_sets)
    for body in doc.requests.ip_sets:
        assert created[body["Name"]] == _filled(body, created[body["Name"]], arns)
    groups = _sent(recording, "create_rule_group")
    if mode == "rule_group":
        assert doc.requests.rule_group is not None
        assert groups == [_filled(doc.requests.rule_group, groups[0], arns)]
    else:
        assert groups == []
    (acl,) = _sent(recording, "update_web_acl")
    engine_rules = [r for r in acl["Rules"] if r["Name"].startswith("wafsmith-")]
    assert engine_rules == [with_arns(r, arns) for r in doc.requests.web_acl_rules]
    sent_rules = groups[0]["Rules"] if groups else engine_rules
    actions = {next(iter(r["Action"])) for r in sent_rules}
    if count_only:
        assert actions == {"Count"}
    else:
        assert {"Block", "Captcha"} <= actions


def test_updates_are_the_rendered_updates_even_when_a_lock_conflict_forces_a_retry(
    wafv2, web_acl, api, make_reconciler
):
    rec = make_reconciler()
    assert rec.run_cycle(compile_doc(_mixed(), **_protections())).ok
    # One new block address and a new limit: an IP set and the rule group change.
    changed: DesiredState = compile_doc(_mixed(("172.16.0.9",)), **_protections(limit=30))
    assert changed.requests is not None and changed.requests.rule_group is not None
    faulty = FaultInjectingWafV2Api(
        api,
        rates={"WAFOptimisticLockException": 0.5},
        methods=frozenset({"update_ip_set", "update_rule_group"}),
        seed=3,
    )
    recording = Recording(faulty)

    result = make_reconciler(recording).run_cycle(changed)

    assert result.ok, result.errors
    assert faulty.injected["WAFOptimisticLockException"] >= 1  # a retry happened
    arns, ids = _aws_names(wafv2)
    updates = _sent(recording, "update_ip_set")
    assert {kw["Name"] for kw in updates} == {"wafsmith-block-v4-0"}
    for kw in updates:  # every attempt, the refused one and its retry
        rendered = ip_set_update(
            changed.requests.ip_set(kw["Name"]), id=ids[kw["Name"]], lock_token=kw["LockToken"]
        )
        assert kw == _filled(rendered, kw, arns)
    groups = _sent(recording, "update_rule_group")
    assert groups
    for kw in groups:
        rendered = rule_group_update(
            changed.requests.rule_group, id=ids[kw["Name"]], lock_token=kw["LockToken"]
        )
        assert kw == _filled(rendered, kw, arns)
    assert len(updates) + len(groups) > 2  # at least one of them was sent twice
    assert _sent(recording, "update_web_acl") == []  # the reference did not change
