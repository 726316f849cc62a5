"""Render a desired state's specs into the exact WAFv2 requests (``WafRequests``).

The last step of compiling: IP-set specs become ``CreateIPSet`` bodies, rule specs the WAFv2
``Rule`` JSON (in the rule group's ``CreateRuleGroup`` body, or straight in the web ACL),
and the placement the web ACL's reference to the group. ARNs and the ownership digest are
placeholders (``engine.schema.requests``); everything else is final, including count-only
mode (the rule specs of a count-only document already say ``COUNT``) and the ownership tag.

Rendering is total: a spec the validator will refuse (an ``ALLOW`` action, a dangling set
name) still renders, so the validator can report on what would be sent.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from engine.schema.requests import (
    OWNER_TAG_KEY,
    WafRequests,
    owned_description,
    placeholder_arn,
)
from engine.schema.rule import (
    DesiredState,
    IPSetRuleSpec,
    IPSetSpec,
    MatchRuleSpec,
    PlacementSpec,
    RateRuleSpec,
    RuleSpec,
)

WAF_ACTION_KEY = {
    "BLOCK": "Block",
    "CHALLENGE": "Challenge",
    "CAPTCHA": "Captcha",
    "COUNT": "Count",
}


def rendered(state: DesiredState) -> DesiredState:
    """``state`` carrying the requests rendered from its specs."""
    return replace(state, requests=render_requests(state))


def render_requests(state: DesiredState) -> WafRequests:
    """Every request the enforcer sends to converge on ``state`` (placeholders for ARNs)."""
    scope = state.placement.scope
    names = sorted({n for r in state.rules for n in r.ip_set_names})
    arns = {n: placeholder_arn(n, scope) for n in names}
    rules = [render_rule(r, arns) for r in sorted(state.rules, key=lambda r: r.priority)]
    tags = [{"Key": OWNER_TAG_KEY, "Value": state.owner_prefix}]
    ip_sets = tuple(ip_set_request(spec, tags) for spec in state.ip_sets)
    if state.placement.mode != "rule_group":
        return WafRequests(ip_sets=ip_sets, web_acl_rules=tuple(rules))
    group = rule_group_request(state, rules, tags)
    reference = rule_group_reference(
        state.placement, placeholder_arn(state.placement.rule_group_name, scope, "rulegroup")
    )
    return WafRequests(ip_sets=ip_sets, rule_group=group, web_acl_rules=(reference,))


def ip_set_request(spec: IPSetSpec, tags: list[dict[str, str]]) -> dict[str, Any]:
    """``CreateIPSet`` parameters (``ip_set_update`` derives the update)."""
    return {
        "Addresses": list(spec.addresses),
        "Description": owned_description(spec.description),
        "IPAddressVersion": spec.ip_version,
        "Name": spec.name,
        "Scope": spec.scope,
        "Tags": [dict(t) for t in tags],
    }


def rule_group_request(
    state: DesiredState, rules: list[dict[str, Any]], tags: list[dict[str, str]]
) -> dict[str, Any]:
    """``CreateRuleGroup`` parameters (``Capacity`` is immutable after create)."""
    placement = state.placement
    return {
        "Capacity": placement.rule_group_capacity,
        "Description": owned_description(
            f"wafsmith engine rules owned by prefix {state.owner_prefix}"
        ),
        "Name": placement.rule_group_name,
        "Rules": rules,
        "Scope": placement.scope,
        "Tags": [dict(t) for t in tags],
        "VisibilityConfig": visibility(placement.rule_group_name),
    }


def rule_group_reference(placement: PlacementSpec, rule_group_arn: str) -> dict[str, Any]:
    """The web ACL rule pointing at the engine's rule group (``mode="rule_group"``)."""
    return {
        "Name": placement.rule_group_name,
        "OverrideAction": {"None": {}},
        "Priority": placement.priority_min,
        "Statement": {"RuleGroupReferenceStatement": {"ARN": rule_group_arn}},
        "VisibilityConfig": visibility(placement.rule_group_name),
    }


def render_rule(rule: RuleSpec, arns: dict[str, str]) -> dict[str, Any]:
    """The WAFv2 ``Rule`` JSON for ``rule``; ``arns`` maps IP-set name → ARN."""
    if isinstance(rule, IPSetRuleSpec):
        statement = ip_set_statement(rule.ip_set_names, arns, rule.forwarded_ip_config)
    elif isinstance(rule, MatchRuleSpec):
        statement = dict(rule.statement)
    else:
        statement = rate_statement(rule, arns)
    return {
        "Action": {WAF_ACTION_KEY.get(rule.action, rule.action.title()): {}},
        "Name": rule.name,
        "Priority": rule.priority,
        "Statement": statement,
        "VisibilityConfig": visibility(rule.name),
    }


def visibility(metric_name: str) -> dict[str, Any]:
    return {
        "CloudWatchMetricsEnabled": True,
        "MetricName": metric_name,
        "SampledRequestsEnabled": True,
    }


def ip_set_statement(
    names: tuple[str, ...], arns: dict[str, str], forwarded: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Match any of the named sets: one reference, or an OrStatement of references; with
    ``forwarded`` (``IPSetForwardedIPConfig``) each matches the forwarded address."""
    extra = {} if forwarded is None else {"IPSetForwardedIPConfig": dict(forwarded)}
    refs = [{"IPSetReferenceStatement": {"ARN": arns[n], **extra}} for n in names]
    if len(refs) == 1:
        return refs[0]
    return {"OrStatement": {"Statements": refs}}


def rate_statement(rule: RateRuleSpec, arns: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "AggregateKeyType": rule.aggregate_key_type,
        "EvaluationWindowSec": rule.window_s,
        "Limit": rule.limit,
    }
    if rule.custom_keys:
        body["CustomKeys"] = [dict(k) for k in rule.custom_keys]
    if rule.forwarded_ip_config is not None:
        body["ForwardedIPConfig"] = dict(rule.forwarded_ip_config)
    parts = []
    if rule.ip_set_names:
        parts.append(ip_set_statement(rule.ip_set_names, arns, rule.ip_set_forwarded_ip_config))
    if rule.scope_down is not None:
        parts.append(rule.scope_down)
    if len(parts) == 1:
        body["ScopeDownStatement"] = parts[0]
    elif parts:
        body["ScopeDownStatement"] = {"AndStatement": {"Statements": parts}}
    return {"RateBasedStatement": body}
