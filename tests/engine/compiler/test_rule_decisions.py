"""Rule-level decisions in the compiler: one valid WAFv2 rule each, in stable slots, WCU and
quotas respected offline (moto validates nothing), the rest reported as overflow."""

from __future__ import annotations

import random
import string
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.compiler import CompilerConfig, compile_state, estimate_wcu, validate
from engine.compiler.config import RateProtectionConfig, ScopeDownConfig
from engine.compiler.modelcheck import check_document
from engine.schema.decision import Decision, RuleAnswer
from engine.schema.waf_limits import RATE_LIMIT_MAX, RATE_LIMIT_MIN, RATE_WINDOWS_S
from tests.support.compiler import NOW, make_decision

PATH_CHARS = string.ascii_letters + string.digits + "/-_.~%"


@st.composite
def rule_answers(draw) -> RuleAnswer:
    kind = draw(st.sampled_from(["rate_based", "challenge", "captcha"]))
    rate = {}
    if kind == "rate_based":
        aggregate = draw(st.sampled_from(["IP", "FORWARDED_IP", "CONSTANT"]))
        rate = {
            "limit": draw(st.integers(RATE_LIMIT_MIN, RATE_LIMIT_MAX)),
            "window_s": draw(st.sampled_from(RATE_WINDOWS_S)),
            "aggregate": aggregate,
            "forwarded_header": "X-Forwarded-For" if aggregate == "FORWARDED_IP" else None,
        }
    return RuleAnswer(
        kind=kind,
        path="/" + draw(st.text(PATH_CHARS, max_size=60)),
        path_match=draw(st.sampled_from(["EXACTLY", "STARTS_WITH"])),
        method=draw(st.sampled_from([None, "GET", "POST", "PUT"])),
        host=draw(st.sampled_from([None, "shop.example.com", "api.example.com"])),
        **rate,
    )


@st.composite
def rule_decisions(draw) -> Decision:
    rule = draw(rule_answers())
    actions = {"rate_based": ["block", "challenge", "captcha", "count"]}.get(rule.kind, [rule.kind])
    return Decision(
        client="-",
        action=draw(st.sampled_from(actions)),
        ttl_s=draw(st.integers(1, 7200)),
        score=draw(st.floats(0, 1)),
        detector="prop",
        decided_at=NOW - timedelta(seconds=draw(st.integers(0, 3600))),
        status=draw(st.sampled_from(["approved", "applied", "proposed"])),
        id=f"r{draw(st.integers(0, 10**9))}",
        members=("100.64.0.1",),
        rule=rule,
    )


@st.composite
def configs(draw) -> CompilerConfig:
    protections = [
        RateProtectionConfig(
            name=f"p{i}", limit=100, scope_down=ScopeDownConfig(path=f"/p{i}", method="POST")
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    mode = draw(st.sampled_from(["rule_group", "web_acl"]))
    return CompilerConfig(
        count_only=draw(st.booleans()),
        rate_limits=protections,
        placement={
            "mode": mode,
            "web_acl_name": "prod-acl",
            "rule_group_capacity": draw(st.sampled_from([40, 100, 500])),
            # a narrow owned range (no protection fits) leaves rule slots 5..7 only
            "priority_max": draw(st.sampled_from([107, 199])) if not protections else 199,
        },
        rule_decisions={"max_rules": draw(st.integers(0, 5))},
    )


PROPS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(st.lists(rule_decisions(), max_size=7, unique_by=lambda d: d.id), configs())
def test_compiled_rule_decisions_are_valid_within_limits_and_none_vanish(items, config):
    address = [make_decision("192.0.2.7", id="a1"), make_decision("192.0.2.9", "rate_limit")]
    state = compile_state([*items, *address], config, NOW)
    assert validate(state) == []  # names, priorities, quotas, WCU within the capacity
    assert check_document(state) == []  # every request valid against the WAFv2 model
    if config.placement.mode == "rule_group":
        assert estimate_wcu(state) <= config.placement.rule_group_capacity
    by_name = {r.name: r for r in state.rules}
    left_out = {i for o in state.overflow if o.reason == "rule_limit" for i in o.decision_ids}
    for d in items:
        name = f"wafsmith-rd-{d.id}"
        if not d.is_active(NOW):
            assert name not in by_name and d.id not in left_out
            continue
        assert (name in by_name) != (d.id in left_out)  # compiled, or reported: never both
        if name in by_name:
            rule = by_name[name]
            assert 5 <= rule.priority - (100 if config.placement.mode == "web_acl" else 0) <= 9
            if d.rule.kind == "rate_based":
                assert rule.window_s in RATE_WINDOWS_S and rule.limit == d.rule.limit
            expected = "COUNT" if config.count_only else d.action.value.upper()
            assert rule.action == expected
    # Same decisions in another order: the same bytes (names and slots are not churn).
    shuffled = [*items, *address]
    random.Random(len(items)).shuffle(shuffled)
    assert compile_state(shuffled, config, NOW).requests == state.requests


def _login_rule(id: str, age_s: int = 60, ttl_s: int = 3600) -> Decision:
    return Decision(
        client="-",
        action="block",
        ttl_s=ttl_s,
        score=0.9,
        detector="distributed_stuffing",
        decided_at=NOW - timedelta(seconds=age_s),
        status="approved",
        id=id,
        rule=RuleAnswer(
            kind="rate_based",
            path="/login",
            method="POST",
            limit=20,
            window_s=60,
            aggregate="CONSTANT",
        ),
    )


def test_an_expired_rule_decision_leaves_the_document_and_the_others_keep_their_slot():
    older, newer = _login_rule("old", age_s=600, ttl_s=300), _login_rule("new")
    before = compile_state([older, newer], CompilerConfig(), NOW - timedelta(seconds=400))
    slots = {r.name: r.priority for r in before.rules if r.name.startswith("wafsmith-rd-")}
    assert slots == {"wafsmith-rd-old": 5, "wafsmith-rd-new": 6}
    after = compile_state([older, newer], CompilerConfig(), NOW)
    names = {r.name for r in after.rules}
    assert "wafsmith-rd-old" not in names and "wafsmith-rd-new" in names


def test_rate_rule_quota_is_respected_and_the_surplus_is_named():
    # A rule group holds at most four rate rules: rate_limit decisions' rule plus three.
    items = [_login_rule(f"d{i}", age_s=60 + i) for i in range(5)]
    state = compile_state(items, CompilerConfig(rule_decisions={"max_rules": 5}), NOW)
    assert validate(state) == []
    compiled = sorted(r.name for r in state.rules if r.name.startswith("wafsmith-rd-"))
    assert compiled == ["wafsmith-rd-d2", "wafsmith-rd-d3", "wafsmith-rd-d4"]  # oldest first
    over = {o.decision_ids[0]: o.detail for o in state.overflow if o.reason == "rule_limit"}
    assert set(over) == {"d0", "d1"} and "rate-based rule quota" in over["d0"]
