"""The validator names each broken WAFv2 constraint (field, value, rule)."""

from __future__ import annotations

import dataclasses

import pytest

from engine.compiler import CompilerConfig, DocumentInvalid, compile_state, rendered, validate
from engine.compiler.modelcheck import check_document, check_request
from engine.compiler.validate import estimate_wcu, validate_or_raise
from engine.schema.requests import (
    UnresolvedPlaceholder,
    marked_digest,
    owned_description,
    placeholder_arn,
    with_arns,
    with_digest,
)
from engine.schema.rule import RateRuleSpec, ShieldProtectionSpec, ShieldSpec
from tests.support.compiler import NOW, make_decision


@pytest.fixture()
def state():
    config = CompilerConfig(
        rate_limits=[
            {"name": "login", "limit": 20, "scope_down": {"method": "POST", "path": "/login"}}
        ]
    )
    return compile_state([make_decision("192.0.2.1"), make_decision("2001:db8::1")], config, NOW)


def edited(state, **changes):
    """``state`` with ``changes``, its requests rendered again (as a compiled document's)."""
    return rendered(dataclasses.replace(state, **changes))


def with_set(state, **changes):
    first = dataclasses.replace(state.ip_sets[0], **changes)
    return edited(state, ip_sets=(first, *state.ip_sets[1:]))


def with_rule(state, name, **changes):
    rules = tuple(dataclasses.replace(r, **changes) if r.name == name else r for r in state.rules)
    return edited(state, rules=rules)


def rules_of(violations):
    return [(v.field, v.value) for v in violations]


def test_compiled_document_is_valid(state):
    assert validate(state) == []
    assert check_document(state) == []
    assert validate_or_raise(state) is state


@pytest.mark.parametrize(
    ("address", "fragment"),
    [
        ("192.0.2.1", "CIDRs"),
        ("not-an-ip/32", "not a CIDR"),
        ("192.0.2.5/24", "host bits"),
        ("0.0.0.0/0", "/0"),
        ("2001:db8::1/128", "one family"),
        ("", "CIDRs"),
    ],
)
def test_bad_addresses_are_named(state, address, fragment):
    bad = with_set(state, addresses=(address,))
    (violation,) = validate(bad)
    assert violation.field == "ip_sets[0].addresses[0]"
    assert violation.value == address
    assert fragment in violation.rule


def test_duplicate_and_oversized_sets(state):
    assert rules_of(validate(with_set(state, addresses=("192.0.2.1/32",) * 2))) == [
        ("ip_sets[0].addresses[1]", "192.0.2.1/32")
    ]
    many = tuple(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}/32" for i in range(10_001))
    assert rules_of(validate(with_set(state, addresses=many))) == [("ip_sets[0].addresses", 10_001)]


def test_names_descriptions_and_ownership(state):
    found = rules_of(validate(with_set(state, name="bad name", description=" x")))
    assert ("ip_sets[0].name", "bad name") in found
    assert ("ip_sets[0].description", " x") in found
    assert ("rules[1].ip_set_names", state.ip_sets[0].name) in found  # the rule lost its set
    foreign = validate(with_set(state, name="operator-set"))
    assert any("owner prefix" in v.rule for v in foreign)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"limit": 9}, "limit"),
        ({"limit": 2_000_000_001}, "limit"),
        ({"window_s": 30}, "window_s"),
        ({"aggregate_key_type": "BOGUS"}, "aggregate_key_type"),
        ({"aggregate_key_type": "FORWARDED_IP"}, "forwarded_ip_config"),
        ({"aggregate_key_type": "CUSTOM_KEYS"}, "custom_keys"),
        ({"aggregate_key_type": "CONSTANT", "scope_down": None}, "scope_down"),
        ({"action": "ALLOW"}, "action"),
        ({"scope_down": {"NotStatement": {"Statement": {"RateBasedStatement": {}}}}}, "scope_down"),
        ({"aggregate_key_type": "CUSTOM_KEYS", "custom_keys": ({"IP": {}},)}, "custom_keys"),
        (
            {"aggregate_key_type": "CUSTOM_KEYS", "custom_keys": ({"UriPath": {}},) * 6},
            "custom_keys",
        ),
        (
            {"forwarded_ip_config": {"HeaderName": "X Forwarded", "FallbackBehavior": "MATCH"}},
            "forwarded_ip_config.HeaderName",
        ),
    ],
)
def test_rate_rule_constraints(state, changes, field):
    violations = validate(with_rule(state, "wafsmith-rl-login", **changes))
    assert violations, changes
    assert any(v.field.endswith(f".{field}") for v in violations), violations


def test_priorities_unique_and_not_shields(state):
    dup = with_rule(state, "wafsmith-block", priority=0)
    assert ("rules.priority", 0) in rules_of(validate(dup))
    placement = dataclasses.replace(
        state.placement, priority_min=10_000_000, priority_max=10_000_100
    )
    assert any("Shield" in v.rule for v in validate(edited(state, placement=placement)))


def test_too_many_rate_rules_for_a_rule_group(state):
    extra = tuple(
        RateRuleSpec(
            name=f"wafsmith-rl-{i}",
            priority=20 + i,
            limit=100,
            window_s=60,
            aggregate_key_type="IP",
            action="BLOCK",
        )
        for i in range(3)
    )
    crowded = edited(state, rules=state.rules + extra)
    assert ("rules", 5) in rules_of(validate(crowded))


def test_wcu_estimate_against_capacity(state):
    # 4 IP-set rules x 2 refs + rate(decisions) 2 + 2 refs + login 2 + (2 + 2)
    assert estimate_wcu(state) == 8 + 4 + 6
    small = dataclasses.replace(state.placement, rule_group_capacity=10)
    found = validate(edited(state, placement=small))
    assert [v.field for v in found] == ["placement.rule_group_capacity"]


def test_shield_needs_capable_resource_and_budget(state):
    s3 = ShieldProtectionSpec("wafsmith-bucket", "arn:aws:s3:::bucket", "COUNT")
    found = validate(edited(state, shield=ShieldSpec(True, (s3,))))
    assert any("CloudFront distribution or ALB" in v.rule for v in found)
    alb = ShieldProtectionSpec(
        "wafsmith-alb", "arn:aws:elasticloadbalancing:r:1:loadbalancer/app/a/1", "BLOCK"
    )
    tight = dataclasses.replace(state.placement, web_acl_wcu_budget=600)
    found = validate(edited(state, shield=ShieldSpec(True, (alb,)), placement=tight))
    assert [v.field for v in found] == ["placement.web_acl_wcu_budget"]


def test_requests_must_be_the_rendering_of_the_checked_specs(state):
    """What is sent must be what was checked: a request changed after compiling is refused."""
    requests = state.requests
    assert requests is not None and requests.rule_group is not None
    first = requests.ip_sets[0]
    extra = {**first, "Addresses": [*first["Addresses"], "198.51.100.9/32"]}
    grown = dataclasses.replace(requests, ip_sets=(extra, *requests.ip_sets[1:]))
    found = validate(dataclasses.replace(state, requests=grown))
    assert rules_of(found) == [("requests.ip_sets", [first["Name"]])]
    allowing = [{**r, "Action": {"Allow": {}}} for r in requests.rule_group["Rules"]]
    group = dataclasses.replace(requests, rule_group={**requests.rule_group, "Rules": allowing})
    found = validate(dataclasses.replace(state, requests=group))
    assert rules_of(found) == [("requests.rule_group", state.placement.rule_group_name)]
    assert rules_of(validate(dataclasses.replace(state, requests=None))) == [("requests", None)]


def test_placeholders_are_filled_in_and_nothing_else():
    ref = {"IPSetReferenceStatement": {"ARN": placeholder_arn("wafsmith-block-v4-0", "REGIONAL")}}
    real = "arn:aws:wafv2:eu-west-1:123456789012:regional/ipset/wafsmith-block-v4-0/abc"
    rule = {"Name": "wafsmith-block", "Statement": ref, "Action": {"Block": {}}}
    filled = with_arns(rule, {ref["IPSetReferenceStatement"]["ARN"]: real})
    assert filled == {**rule, "Statement": {"IPSetReferenceStatement": {"ARN": real}}}
    assert rule["Statement"] is ref  # the rendered request is left as it was
    with pytest.raises(UnresolvedPlaceholder, match="wafsmith-block-v4-0"):
        with_arns(rule, {})
    marked = owned_description("wafsmith block IPV4 shard 0")
    sent = with_digest(marked, "0123456789abcdef")
    assert len(sent) == len(marked) and marked_digest(sent) == "0123456789abcdef"
    assert sent.startswith("wafsmith block IPV4 shard 0 ")
    with pytest.raises(UnresolvedPlaceholder):
        with_digest("no mark here", "0123456789abcdef")
    with pytest.raises(ValueError, match="hex"):
        with_digest(marked, "not-a-digest")


def test_validate_or_raise_lists_every_violation(state):
    bad = with_set(state, addresses=("0.0.0.0/0", "192.0.2.1"))
    with pytest.raises(DocumentInvalid) as info:
        validate_or_raise(bad)
    assert len(info.value.violations) == 2
    assert "ip_sets[0].addresses[0] = '0.0.0.0/0'" in str(info.value)


def test_model_check_catches_what_botocore_skips():
    found = check_request(
        "CreateIPSet",
        {"Name": "bad name", "Scope": "BOGUS", "IPAddressVersion": "IPV4", "Addresses": [""]},
    )
    fields = [v.field for v in found]
    assert "CreateIPSet.Name" in fields
    assert "CreateIPSet.Scope" in fields
    assert any("min length" in v.rule for v in found)  # botocore's own ParamValidator


def test_a_bad_raw_scope_down_is_caught_by_the_model_check():
    config = CompilerConfig(
        rate_limits=[
            {
                "name": "geo",
                "limit": 100,
                "scope_down": {"statement": {"GeoMatchStatement": {"CountryCodes": ["XX"]}}},
            }
        ]
    )
    state = compile_state([], config, NOW)
    assert validate(state, model=False) == []
    (violation,) = validate(state)
    assert violation.field.endswith("GeoMatchStatement.CountryCodes[0]")
    assert violation.value == "XX"


def test_wcu_of_custom_keys_and_scope_downs():
    from engine.compiler.wcu import UnknownCost, statement_wcu

    ja4 = {
        "RateBasedStatement": {
            "Limit": 10,
            "AggregateKeyType": "CUSTOM_KEYS",
            "CustomKeys": [
                {"JA4Fingerprint": {"FallbackBehavior": "MATCH"}},
                {"UriPath": {"TextTransformations": [{"Priority": 0, "Type": "LOWERCASE"}]}},
            ],
            "ScopeDownStatement": {
                "ByteMatchStatement": {
                    "PositionalConstraint": "CONTAINS",
                    "TextTransformations": [],
                }
            },
        }
    }
    assert statement_wcu(ja4) == 2 + 30 + (30 + 10) + 10
    with pytest.raises(UnknownCost, match="ManagedRuleGroupStatement"):
        statement_wcu({"ManagedRuleGroupStatement": {}})
