"""The validator names each broken WAFv2 constraint (field, value, rule)."""

from __future__ import annotations

import dataclasses

import pytest

from engine.compiler import CompilerConfig, DocumentInvalid, compile_state, validate
from engine.compiler.modelcheck import check_document, check_request
from engine.compiler.validate import estimate_wcu, validate_or_raise
from engine.schema.rule import RateRuleSpec, ShieldProtectionSpec, ShieldSpec
from tests.engine.compiler.conftest import NOW, make_decision


@pytest.fixture()
def state():
    config = CompilerConfig(
        rate_limits=[
            {"name": "login", "limit": 20, "scope_down": {"method": "POST", "path": "/login"}}
        ]
    )
    return compile_state([make_decision("192.0.2.1"), make_decision("2001:db8::1")], config, NOW)


def with_set(state, **changes):
    first = dataclasses.replace(state.ip_sets[0], **changes)
    return dataclasses.replace(state, ip_sets=(first, *state.ip_sets[1:]))


def with_rule(state, name, **changes):
    rules = tuple(dataclasses.replace(r, **changes) if r.name == name else r for r in state.rules)
    return dataclasses.replace(state, rules=rules)


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
    assert any(
        "Shield" in v.rule for v in validate(dataclasses.replace(state, placement=placement))
    )


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
    crowded = dataclasses.replace(state, rules=state.rules + extra)
    assert ("rules", 5) in rules_of(validate(crowded))


def test_wcu_estimate_against_capacity(state):
    # 4 IP-set rules x 2 refs + rate(decisions) 2 + 2 refs + login 2 + (2 + 2)
    assert estimate_wcu(state) == 8 + 4 + 6
    small = dataclasses.replace(state.placement, rule_group_capacity=10)
    found = validate(dataclasses.replace(state, placement=small))
    assert [v.field for v in found] == ["placement.rule_group_capacity"]


def test_shield_needs_capable_resource_and_budget(state):
    s3 = ShieldProtectionSpec("wafsmith-bucket", "arn:aws:s3:::bucket", "COUNT")
    found = validate(dataclasses.replace(state, shield=ShieldSpec(True, (s3,))))
    assert any("CloudFront distribution or ALB" in v.rule for v in found)
    alb = ShieldProtectionSpec(
        "wafsmith-alb", "arn:aws:elasticloadbalancing:r:1:loadbalancer/app/a/1", "BLOCK"
    )
    tight = dataclasses.replace(state.placement, web_acl_wcu_budget=600)
    found = validate(dataclasses.replace(state, shield=ShieldSpec(True, (alb,)), placement=tight))
    assert [v.field for v in found] == ["placement.web_acl_wcu_budget"]


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
