"""Rule-level decisions → WAF rules: one rule per approved, unexpired decision.

A rule-level decision (``Decision.rule``) asks for a rate-based rule or a challenge/CAPTCHA on
one path. Each becomes one rule in the engine's container:

- name ``<prefix>rd-<decision id>``: stable for the decision's whole life, so a reconcile
  rewrites nothing while the set of decisions is unchanged;
- priority: a free slot 5..9 (between the IP-set rules and the protections), given oldest
  decision first;
- scope-down: an AND of byte matches on method, URI path (exact or starts-with) and host.

What does not fit — no free slot, the container's rate-rule quota (4 per rule group, 10 per web
ACL) or the rule group's capacity (WCU) — goes to the overflow as ``rule_limit``, never into an
invalid document. Pure: the decisions, the configuration, ``now`` and the rules already placed
decide everything.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from datetime import datetime

from engine.compiler import wcu
from engine.compiler.config import RULE_DECISION_SLOTS, CompilerConfig, ScopeDownConfig
from engine.compiler.render import render_rule
from engine.compiler.rule_specs import priority_base, rule_action, scope_down_statement
from engine.schema.decision import Decision, RuleAnswer
from engine.schema.rule import MatchRuleSpec, OverflowEntry, RateRuleSpec, RuleSpec
from engine.schema.waf_limits import (
    MAX_NAME_LENGTH,
    MAX_RATE_RULES_PER_RULE_GROUP,
    MAX_RATE_RULES_PER_WEB_ACL,
)

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def rule_decision_name(config: CompilerConfig, decision: Decision) -> str:
    """``<prefix>rd-<id>``: the decision id (its safe characters), else a digest of its scope."""
    token = _UNSAFE.sub("", decision.id or "")
    if not token:
        token = hashlib.sha256(decision.client.encode()).hexdigest()[:16]
    return f"{config.owner_prefix}rd-{token}"[:MAX_NAME_LENGTH]


def scope_statement(rule: RuleAnswer) -> dict:
    """The WAFv2 statement matching the rule's scope (method, path, host byte matches)."""
    return scope_down_statement(
        ScopeDownConfig(
            method=rule.method, path=rule.path, path_match=rule.path_match, host=rule.host
        )
    )


def rule_spec(config: CompilerConfig, decision: Decision, priority: int) -> RuleSpec:
    """The rule spec of one rule-level decision at ``priority``."""
    rule = decision.rule
    assert rule is not None
    name = rule_decision_name(config, decision)
    action = rule_action(config, decision.action.value.upper())
    if rule.kind != "rate_based":
        return MatchRuleSpec(
            name=name,
            priority=priority,
            statement=scope_statement(rule),
            action=action,
            decision_id=decision.id or "",
        )
    forwarded = (
        {"FallbackBehavior": "NO_MATCH", "HeaderName": rule.forwarded_header}
        if rule.aggregate == "FORWARDED_IP"
        else None
    )
    return RateRuleSpec(
        name=name,
        priority=priority,
        limit=int(rule.limit or 0),
        window_s=int(rule.window_s or 0),
        aggregate_key_type=str(rule.aggregate),
        action=action,
        forwarded_ip_config=forwarded,
        scope_down=scope_statement(rule),
        source="rule_decision",
    )


def compile_rule_decisions(
    decisions: Iterable[Decision],
    config: CompilerConfig,
    now: datetime,
    placed: Sequence[RuleSpec],
) -> tuple[list[RuleSpec], list[OverflowEntry]]:
    """Rules for the active rule-level decisions beside the ``placed`` rules, and the
    overflow of those that do not fit (see the module docstring)."""
    active = sorted(
        (d for d in decisions if d.is_rule and d.is_active(now)),
        key=lambda d: (d.decided_at, d.id or "", d.client),
    )
    if not active:
        return [], []
    base = priority_base(config)
    taken = {r.priority for r in placed}
    span = config.placement.priority_max - config.placement.priority_min
    slots = [
        base + s
        for s in RULE_DECISION_SLOTS
        if base + s not in taken and (config.placement.mode != "web_acl" or s <= span)
    ][: config.rule_decisions.max_rules if config.rule_decisions.enabled else 0]
    rate_quota = (
        MAX_RATE_RULES_PER_RULE_GROUP
        if config.placement.mode == "rule_group"
        else MAX_RATE_RULES_PER_WEB_ACL
    ) - sum(isinstance(r, RateRuleSpec) for r in placed)
    capacity = config.placement.rule_group_capacity - _wcu(placed)
    rules: list[RuleSpec] = []
    overflow: list[OverflowEntry] = []
    for decision in active:
        if not slots:
            overflow.append(_left_out(decision, "no free rule slot (rule_decisions.max_rules)"))
            continue
        spec = rule_spec(config, decision, slots[0])
        cost = _wcu([spec])
        if isinstance(spec, RateRuleSpec) and rate_quota <= 0:
            overflow.append(_left_out(decision, "the container's rate-based rule quota is used"))
            continue
        if config.placement.mode == "rule_group" and cost > capacity:
            overflow.append(_left_out(decision, f"needs {cost} WCU, {capacity} left in the group"))
            continue
        slots.pop(0)
        capacity -= cost
        rate_quota -= isinstance(spec, RateRuleSpec)
        rules.append(spec)
    return rules, overflow


def _wcu(rules: Iterable[RuleSpec]) -> int:
    """WCU of rules (IP-set ARNs do not change the cost: placeholders stand in)."""
    total = 0
    for rule in rules:
        arns = {n: n for n in rule.ip_set_names}
        total += wcu.rule_wcu(render_rule(rule, arns))
    return total


def _left_out(decision: Decision, detail: str) -> OverflowEntry:
    return OverflowEntry(
        client=decision.client,
        category=decision.action.value,
        reason="rule_limit",
        score=float(decision.score),
        decided_at=decision.decided_at.isoformat().replace("+00:00", "Z"),
        decision_ids=(decision.id,) if decision.id else (),
        detail=detail,
    )
