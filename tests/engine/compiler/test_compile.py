"""compile_state: what a user relies on — exact aggregation, allowlist, budget, shards, rules."""

from __future__ import annotations

import ipaddress
import json
import random

import pytest

from engine.compiler import CompilerConfig, compile_state, validate
from engine.compiler.addresses import shard_hash
from engine.schema.rule import IPSetRuleSpec, RateRuleSpec
from tests.support.compiler import NOW, make_decision


def addresses(state, category, version="IPV4"):
    return [
        a
        for s in state.ip_sets
        if s.category == category and s.ip_version == version
        for a in s.addresses
    ]


def test_adjacent_decided_addresses_aggregate_exactly():
    decisions = [make_decision(f"192.0.2.{i}") for i in range(4)] + [make_decision("192.0.2.5")]
    state = compile_state(decisions, CompilerConfig(), NOW)
    assert addresses(state, "block") == ["192.0.2.0/30", "192.0.2.5/32"]
    assert validate(state) == []


def test_aggregation_can_be_turned_off():
    decisions = [make_decision(f"192.0.2.{i}") for i in range(4)]
    state = compile_state(decisions, CompilerConfig(aggregate=False), NOW)
    assert addresses(state, "block") == [f"192.0.2.{i}/32" for i in range(4)]


def test_ipv6_goes_to_its_own_set_in_cidr_notation():
    state = compile_state([make_decision("2001:DB8::1")], CompilerConfig(), NOW)
    assert addresses(state, "block", "IPV6") == ["2001:db8::1/128"]
    assert addresses(state, "block", "IPV4") == []


def test_expired_and_unapproved_decisions_are_not_enforced():
    decisions = [
        make_decision("192.0.2.1", age_s=7200, ttl_s=3600),
        make_decision("192.0.2.2", status="proposed"),
        make_decision("192.0.2.3", status="rejected"),
        make_decision("192.0.2.4", status="applied"),
    ]
    state = compile_state(decisions, CompilerConfig(), NOW)
    assert addresses(state, "block") == ["192.0.2.4/32"]


def test_campaign_members_are_enforced_not_the_label_cidr():
    campaign = make_decision("198.51.100.0/24", members=("198.51.100.7", "198.51.100.9"))
    state = compile_state([campaign], CompilerConfig(), NOW)
    assert addresses(state, "block") == ["198.51.100.7/32", "198.51.100.9/32"]


def test_allowlisted_address_is_removed_and_reported():
    state = compile_state(
        [make_decision("192.0.2.1")], CompilerConfig(allowlist=["192.0.2.0/24"]), NOW
    )
    assert addresses(state, "block") == []
    (entry,) = state.overflow
    assert (entry.client, entry.reason, entry.decision_ids) == (
        "192.0.2.1/32",
        "allowlisted",
        ("block:192.0.2.1",),
    )


def test_decided_cidr_is_split_around_an_allowlisted_range():
    config = CompilerConfig(allowlist=["10.0.0.128/25"])
    state = compile_state([make_decision("10.0.0.0/24")], config, NOW)
    assert addresses(state, "block") == ["10.0.0.0/25"]
    assert [(o.client, o.reason) for o in state.overflow] == [("10.0.0.128/25", "allowlisted")]


def test_weaker_category_covered_by_a_block_is_superseded():
    decisions = [make_decision("10.0.0.0/24"), make_decision("10.0.0.7", "challenge")]
    state = compile_state(decisions, CompilerConfig(), NOW)
    assert addresses(state, "challenge") == []
    assert [o.reason for o in state.overflow] == ["superseded"]


def test_disabled_action_is_reported_not_dropped():
    config = CompilerConfig(categories=["block"])
    state = compile_state([make_decision("192.0.2.1", "captcha")], config, NOW)
    assert [(o.client, o.reason) for o in state.overflow] == [("192.0.2.1", "action_disabled")]
    assert {s.category for s in state.ip_sets} == {"block"}


def test_budget_keeps_highest_score_then_newest_and_reports_the_rest():
    decisions = [
        make_decision("192.0.2.1", score=0.5),
        make_decision("192.0.2.3", score=0.9, age_s=500),
        make_decision("192.0.2.5", score=0.9, age_s=10),
    ]
    state = compile_state(decisions, CompilerConfig(max_entries=2), NOW)
    assert addresses(state, "block") == ["192.0.2.3/32", "192.0.2.5/32"]
    assert [(o.client, o.reason) for o in state.overflow] == [("192.0.2.1/32", "budget")]


def spread(n, start="10.0.0.0"):
    """n addresses two apart, so that none aggregate."""
    base = int(ipaddress.ip_address(start))
    return [str(ipaddress.ip_address(base + 2 * i)) for i in range(n)]


def test_10000_entries_fit_one_set_and_10001_shard():
    config = CompilerConfig()
    one = compile_state([make_decision(a) for a in spread(10_000)], config, NOW)
    assert [len(s.addresses) for s in one.ip_sets if s.category == "block"] == [10_000, 0]
    two = compile_state([make_decision(a) for a in spread(10_001)], config, NOW)
    v4 = [s for s in two.ip_sets if s.category == "block" and s.ip_version == "IPV4"]
    assert [s.name for s in v4] == ["wafsmith-block-v4-0", "wafsmith-block-v4-1"]
    assert sum(len(s.addresses) for s in v4) == 10_001
    assert all(len(s.addresses) <= 10_000 for s in v4)
    assert validate(two) == []
    rule = next(r for r in two.rules if r.name == "wafsmith-block")
    assert rule.ip_set_names == (
        "wafsmith-block-v4-0",
        "wafsmith-block-v4-1",
        "wafsmith-block-v6-0",
    )


def test_small_change_touches_one_shard():
    config = CompilerConfig(max_entries_per_set=100, max_shards=8)
    base = spread(300)
    before = compile_state([make_decision(a) for a in base], config, NOW)
    after = compile_state([make_decision(a) for a in [*base[1:], "172.16.0.1"]], config, NOW)
    changed = [b.name for b, a in zip(before.ip_sets, after.ip_sets, strict=True) if a != b]
    n = sum(1 for s in before.ip_sets if s.category == "block" and s.ip_version == "IPV4")
    removed, added = f"{base[0]}/32", "172.16.0.1/32"
    expected = {f"wafsmith-block-v4-{shard_hash(x) % n}" for x in (removed, added)}
    assert set(changed) == expected


def test_entries_beyond_max_shards_are_reported():
    config = CompilerConfig(max_entries_per_set=10, max_shards=1)
    state = compile_state([make_decision(a) for a in spread(15)], config, NOW)
    assert len(addresses(state, "block")) == 10
    assert [o.reason for o in state.overflow] == ["ip_set_limit"] * 5


def test_shuffled_input_gives_identical_document():
    decisions = [
        make_decision(a, score=random.Random(i).random()) for i, a in enumerate(spread(500))
    ]
    decisions += [make_decision(f"2001:db8::{i:x}", "challenge") for i in range(50)]
    config = CompilerConfig(max_entries=300, allowlist=["10.0.0.64/26"])
    first = json.dumps(compile_state(decisions, config, NOW).to_dict(), sort_keys=True)
    random.Random(7).shuffle(decisions)
    assert json.dumps(compile_state(decisions, config, NOW).to_dict(), sort_keys=True) == first


def test_rate_rules_do_not_change_with_decisions():
    config = CompilerConfig(
        rate_limits=[
            {
                "name": "login",
                "limit": 20,
                "window_s": 60,
                "scope_down": {"method": "POST", "path": "/login"},
            }
        ]
    )
    empty = compile_state([], config, NOW)
    busy = compile_state(
        [make_decision(a, "rate_limit") for a in spread(50)] + [make_decision("192.0.2.1")],
        config,
        NOW,
    )
    assert empty.rules == busy.rules
    rl = next(r for r in busy.rules if r.name == "wafsmith-ratelimit-decisions")
    assert isinstance(rl, RateRuleSpec)
    assert rl.ip_set_names == ("wafsmith-ratelimit-v4-0", "wafsmith-ratelimit-v6-0")


def test_count_only_makes_every_rule_count():
    config = CompilerConfig(count_only=True, rate_limits=[{"name": "x", "limit": 10}])
    state = compile_state([make_decision("192.0.2.1")], config, NOW)
    assert {r.action for r in state.rules} == {"COUNT"}
    assert state.count_only is True


def test_web_acl_mode_uses_the_owned_priority_range():
    config = CompilerConfig(
        placement={"mode": "web_acl", "priority_min": 500, "priority_max": 520},
        rate_limits=[{"name": "x", "limit": 10}],
    )
    state = compile_state([], config, NOW)
    assert sorted(r.priority for r in state.rules) == [500, 501, 502, 503, 504, 510]
    assert validate(state, foreign_priorities=[0, 1, 10_000_000]) == []
    bad = validate(state, foreign_priorities=[503])
    assert [(v.field, v.value) for v in bad] == [("rules.priority", 503)]


def test_ip_set_rules_name_every_shard_of_their_category():
    state = compile_state([], CompilerConfig(categories=["block", "count"]), NOW)
    rules = {r.name: r for r in state.rules}
    assert set(rules) == {"wafsmith-block", "wafsmith-count"}
    assert isinstance(rules["wafsmith-count"], IPSetRuleSpec)
    assert rules["wafsmith-count"].priority < rules["wafsmith-block"].priority


def test_shield_starts_in_count_and_blocks_only_when_allowed():
    alb = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/a/1"
    config = CompilerConfig(
        shield={"enabled": True, "protections": [{"name": "alb", "resource_arn": alb}]},
        rate_limits=[{"name": "x", "limit": 10}],
    )
    state = compile_state([], config, NOW)
    assert state.shield.auto_response == {alb: "COUNT"}
    assert state.shield.protections[0].name == "wafsmith-alb"  # owned by prefix
    blocking = config.model_copy(
        update={
            "shield": config.shield.model_copy(
                update={
                    "allow_block": True,
                    "protections": [
                        config.shield.protections[0].model_copy(update={"auto_response": "block"})
                    ],
                }
            )
        }
    )
    assert compile_state([], blocking, NOW).shield.auto_response == {alb: "BLOCK"}
    counting = blocking.model_copy(update={"count_only": True})
    assert compile_state([], counting, NOW).shield.auto_response == {alb: "COUNT"}


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="timezone"):
        compile_state([], CompilerConfig(), NOW.replace(tzinfo=None))


def test_min_shards_pre_provisions_sets():
    config = CompilerConfig(min_shards=4, categories=["block"])
    state = compile_state([make_decision("192.0.2.1")], config, NOW)
    assert [s.name for s in state.ip_sets if s.ip_version == "IPV4"] == [
        f"wafsmith-block-v4-{k}" for k in range(4)
    ]
    assert sum(len(s.addresses) for s in state.ip_sets) == 1
