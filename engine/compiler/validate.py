"""Check a ``DesiredState`` against WAFv2/Shield constraints before anything is sent.

Neither botocore (it checks only required/min/types) nor moto (it checks almost nothing)
catches invalid documents, so this is the line of defence (aws-wafv2-shield.md §10). Every
``Violation`` names the field, the offending value and the rule it broke.
``validate_or_raise`` raises ``DocumentInvalid`` carrying all of them.

The specs are checked for what they mean (names, families, priorities, references), and the
rendered requests the enforcer sends for what AWS accepts: they must be exactly the rendering
of the specs, their rules fit the capacity (WCU), and they pass botocore's wafv2 model.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from engine.compiler import wcu
from engine.compiler.modelcheck import check_document
from engine.compiler.render import render_requests
from engine.compiler.violations import DocumentInvalid, Violation
from engine.core import netaddr
from engine.schema.requests import WafRequests
from engine.schema.rule import (
    AGGREGATE_KEY_TYPES,
    IP_SET_CATEGORIES,
    IP_VERSIONS,
    OVERFLOW_REASONS,
    RULE_ACTIONS,
    SCOPES,
    DesiredState,
    IPSetRuleSpec,
    IPSetSpec,
    RateRuleSpec,
    is_owned,
)
from engine.schema.waf_limits import (
    DESCRIPTION_PATTERN,
    HEADER_NAME_PATTERN,
    MAX_ADDRESS_LENGTH,
    MAX_ADDRESSES_PER_IP_SET,
    MAX_CAPACITY_WCU,
    MAX_CUSTOM_KEY_NAME_LENGTH,
    MAX_CUSTOM_KEYS,
    MAX_DESCRIPTION_LENGTH,
    MAX_HEADER_NAME_LENGTH,
    MAX_IP_SET_REFERENCES,
    MAX_IP_SETS,
    MAX_NAME_LENGTH,
    MAX_RATE_RULES_PER_RULE_GROUP,
    MAX_RATE_RULES_PER_WEB_ACL,
    MAX_SHIELD_NAME_LENGTH,
    METRIC_NAME_PATTERN,
    NAME_PATTERN,
    RATE_LIMIT_MAX,
    RATE_LIMIT_MIN,
    RATE_WINDOWS_S,
    RESERVED_METRIC_NAMES,
    SHIELD_MITIGATION_WCU,
    SHIELD_NAME_PATTERN,
    SHIELD_RULE_PRIORITY,
)

NAME_RE = re.compile(NAME_PATTERN)
DESCRIPTION_RE = re.compile(DESCRIPTION_PATTERN)
METRIC_RE = re.compile(METRIC_NAME_PATTERN)
HEADER_RE = re.compile(HEADER_NAME_PATTERN)
SHIELD_NAME_RE = re.compile(SHIELD_NAME_PATTERN)
KEY_TYPES = {
    "Header",
    "Cookie",
    "QueryArgument",
    "QueryString",
    "HTTPMethod",
    "ForwardedIP",
    "IP",
    "LabelNamespace",
    "UriPath",
    "JA3Fingerprint",
    "JA4Fingerprint",
    "ASN",
}


def validate(
    state: DesiredState,
    *,
    foreign_priorities: Iterable[int] = (),
    max_ip_sets: int = MAX_IP_SETS,
    model: bool = True,
) -> list[Violation]:
    """Every violation in ``state``; ``foreign_priorities`` are the web ACL's other rules'.

    With ``model`` (default), a document that passes these checks has its requests checked
    against botocore's wafv2 model (``modelcheck``), which catches what a raw operator
    statement (e.g. a scope-down) gets wrong; it runs only when the own checks pass, so
    nothing is reported twice.
    """
    out: list[Violation] = []
    _check_placement(state, out)
    names = _check_ip_sets(state, out, max_ip_sets)
    _check_rules(state, names, set(foreign_priorities), out)
    if _check_requests(state, out):
        _check_capacity(state, out)
    _check_shield(state, out)
    for i, o in enumerate(state.overflow):
        if o.reason not in OVERFLOW_REASONS:
            out.append(Violation(f"overflow[{i}].reason", o.reason, f"one of {OVERFLOW_REASONS}"))
    if model and not out:
        out += check_document(state)
    return out


def validate_or_raise(state: DesiredState, **kwargs: Any) -> DesiredState:
    violations = validate(state, **kwargs)
    if violations:
        raise DocumentInvalid(violations)
    return state


def _name(
    field: str, name: str, prefix: str, out: list[Violation], max_len: int = MAX_NAME_LENGTH
) -> None:
    if not 1 <= len(name) <= max_len or not NAME_RE.match(name):
        out.append(Violation(field, name, f"names are 1-{max_len} chars of [A-Za-z0-9_-]"))
    if not is_owned(name, prefix):
        out.append(Violation(field, name, f"engine objects carry the owner prefix {prefix!r}"))


def _check_placement(state: DesiredState, out: list[Violation]) -> None:
    p = state.placement
    if p.scope not in SCOPES:
        out.append(Violation("placement.scope", p.scope, f"scope is one of {SCOPES}"))
    if p.mode not in ("rule_group", "web_acl"):
        out.append(Violation("placement.mode", p.mode, "mode is 'rule_group' or 'web_acl'"))
    if not 0 <= p.priority_min <= p.priority_max:
        out.append(
            Violation("placement.priority_min", p.priority_min, "0 <= priority_min <= priority_max")
        )
    if p.priority_min <= SHIELD_RULE_PRIORITY <= p.priority_max:
        out.append(
            Violation(
                "placement.priority_max",
                p.priority_max,
                f"the owned range must not contain Shield's priority {SHIELD_RULE_PRIORITY}",
            )
        )
    _name("placement.rule_group_name", p.rule_group_name, state.owner_prefix, out)
    if p.web_acl_name is not None and not NAME_RE.match(p.web_acl_name):
        out.append(Violation("placement.web_acl_name", p.web_acl_name, "pattern ^[\\w\\-]+$"))
    if not 1 <= p.rule_group_capacity <= MAX_CAPACITY_WCU:
        out.append(
            Violation(
                "placement.rule_group_capacity",
                p.rule_group_capacity,
                f"rule group capacity is 1..{MAX_CAPACITY_WCU} WCU",
            )
        )


def _check_ip_sets(state: DesiredState, out: list[Violation], max_ip_sets: int) -> set[str]:
    counts = Counter(s.name for s in state.ip_sets)
    for name, n in counts.items():
        if n > 1:
            out.append(Violation("ip_sets.name", name, f"names are unique per scope ({n} uses)"))
    if len(state.ip_sets) > max_ip_sets:
        out.append(
            Violation(
                "ip_sets",
                len(state.ip_sets),
                f"at most {max_ip_sets} IP sets per account and Region",
            )
        )
    for i, spec in enumerate(state.ip_sets):
        _check_ip_set(f"ip_sets[{i}]", spec, state, out)
    return set(counts)


def _check_ip_set(field: str, spec: IPSetSpec, state: DesiredState, out: list[Violation]) -> None:
    _name(f"{field}.name", spec.name, state.owner_prefix, out)
    if spec.scope != state.placement.scope:
        out.append(
            Violation(
                f"{field}.scope",
                spec.scope,
                f"must match the placement scope {state.placement.scope}",
            )
        )
    if spec.ip_version not in IP_VERSIONS:
        out.append(Violation(f"{field}.ip_version", spec.ip_version, f"one of {IP_VERSIONS}"))
    if spec.category not in IP_SET_CATEGORIES:
        out.append(Violation(f"{field}.category", spec.category, f"one of {IP_SET_CATEGORIES}"))
    _description(f"{field}.description", spec.description, out)
    if len(spec.addresses) > MAX_ADDRESSES_PER_IP_SET:
        out.append(
            Violation(
                f"{field}.addresses",
                len(spec.addresses),
                f"an IP set holds at most {MAX_ADDRESSES_PER_IP_SET} entries",
            )
        )
    version = 4 if spec.ip_version == "IPV4" else 6
    seen: set[str] = set()
    for j, text in enumerate(spec.addresses):
        problem = _address_problem(text, version)
        if problem:
            out.append(Violation(f"{field}.addresses[{j}]", text, problem))
        elif text in seen:
            out.append(Violation(f"{field}.addresses[{j}]", text, "entries are unique"))
        seen.add(text)


def _address_problem(text: str, version: int) -> str | None:
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_ADDRESS_LENGTH or "/" not in text:
        return f"entries are CIDRs of 1-{MAX_ADDRESS_LENGTH} chars (e.g. 192.0.2.7/32)"
    try:
        net_version, start, plen = netaddr.parse_network(text, strict=True)
    except netaddr.AddressError as exc:
        return f"not a CIDR with host bits clear: {exc}"
    if net_version != version:
        return f"one family per set: this set is IPv{version}"
    if plen == 0:
        return "/0 is not allowed"
    canonical = netaddr.network_text(net_version, start, plen)
    if canonical != text:
        return f"not canonical (expected {canonical})"
    return None


def _description(field: str, text: str, out: list[Violation]) -> None:
    if not 1 <= len(text) <= MAX_DESCRIPTION_LENGTH or not DESCRIPTION_RE.match(text):
        out.append(
            Violation(
                field,
                text,
                f"1-{MAX_DESCRIPTION_LENGTH} chars, at least 3, of [\\w+=:#@/-,.] and "
                "inner spaces, no leading/trailing space",
            )
        )


def _check_rules(
    state: DesiredState, ip_sets: set[str], foreign: set[int], out: list[Violation]
) -> None:
    p = state.placement
    for name, n in Counter(r.name for r in state.rules).items():
        if n > 1:
            out.append(Violation("rules.name", name, "rule names are unique"))
    for prio, n in Counter(r.priority for r in state.rules).items():
        if n > 1:
            out.append(Violation("rules.priority", prio, "priorities are unique in a container"))
    web_acl_priorities = (
        [r.priority for r in state.rules] if p.mode == "web_acl" else [p.priority_min]
    )
    for prio in web_acl_priorities:
        if not p.priority_min <= prio <= p.priority_max:
            out.append(
                Violation(
                    "rules.priority",
                    prio,
                    f"outside the owned range {p.priority_min}..{p.priority_max}",
                )
            )
        if prio in foreign or prio == SHIELD_RULE_PRIORITY:
            out.append(Violation("rules.priority", prio, "collides with a foreign rule"))
    for i, rule in enumerate(state.rules):
        field = f"rules[{i}]"
        _name(f"{field}.name", rule.name, state.owner_prefix, out)
        if not METRIC_RE.match(rule.name) or rule.name in RESERVED_METRIC_NAMES:
            out.append(Violation(f"{field}.name", rule.name, "invalid metric name"))
        if rule.priority < 0:
            out.append(Violation(f"{field}.priority", rule.priority, "priorities are >= 0"))
        if rule.action not in RULE_ACTIONS:
            out.append(
                Violation(f"{field}.action", rule.action, f"one of {RULE_ACTIONS} (never Allow)")
            )
        for name in rule.ip_set_names:
            if name not in ip_sets:
                out.append(Violation(f"{field}.ip_set_names", name, "IP set not in the document"))
        if isinstance(rule, IPSetRuleSpec) and not rule.ip_set_names:
            out.append(Violation(f"{field}.ip_set_names", [], "an IP-set rule needs a set"))
        if isinstance(rule, IPSetRuleSpec) and rule.forwarded_ip_config is not None:
            _check_ip_set_forwarded(f"{field}.forwarded_ip_config", rule.forwarded_ip_config, out)
        if isinstance(rule, RateRuleSpec):
            _check_rate(field, rule, out)
            if rule.ip_set_forwarded_ip_config is not None:
                _check_ip_set_forwarded(
                    f"{field}.ip_set_forwarded_ip_config", rule.ip_set_forwarded_ip_config, out
                )
    _check_counts(state, out)


def _check_ip_set_forwarded(field: str, fwd: Any, out: list[Violation]) -> None:
    """``IPSetForwardedIPConfig``: a header name, FIRST/LAST/ANY, MATCH/NO_MATCH, no more."""
    if not isinstance(fwd, dict):
        out.append(Violation(field, fwd, "an IPSetForwardedIPConfig object"))
        return
    header = fwd.get("HeaderName") or ""
    if not 1 <= len(header) <= MAX_HEADER_NAME_LENGTH or not HEADER_RE.match(header):
        out.append(
            Violation(
                f"{field}.HeaderName", header, f"1-{MAX_HEADER_NAME_LENGTH} chars of [a-zA-Z0-9-]"
            )
        )
    if fwd.get("Position") not in ("FIRST", "LAST", "ANY"):
        out.append(Violation(f"{field}.Position", fwd.get("Position"), "FIRST, LAST or ANY"))
    if fwd.get("FallbackBehavior") not in ("MATCH", "NO_MATCH"):
        out.append(
            Violation(f"{field}.FallbackBehavior", fwd.get("FallbackBehavior"), "MATCH or NO_MATCH")
        )
    extra = set(fwd) - {"HeaderName", "Position", "FallbackBehavior"}
    if extra:
        out.append(Violation(field, sorted(extra), "only HeaderName, Position, FallbackBehavior"))


def _check_rate(field: str, rule: RateRuleSpec, out: list[Violation]) -> None:
    if not RATE_LIMIT_MIN <= rule.limit <= RATE_LIMIT_MAX:
        out.append(
            Violation(
                f"{field}.limit", rule.limit, f"{RATE_LIMIT_MIN} <= Limit <= {RATE_LIMIT_MAX:,}"
            )
        )
    if rule.window_s not in RATE_WINDOWS_S:
        out.append(Violation(f"{field}.window_s", rule.window_s, f"one of {RATE_WINDOWS_S}"))
    kind = rule.aggregate_key_type
    if kind not in AGGREGATE_KEY_TYPES:
        out.append(Violation(f"{field}.aggregate_key_type", kind, f"one of {AGGREGATE_KEY_TYPES}"))
    if kind == "CONSTANT" and rule.scope_down is None and not rule.ip_set_names:
        out.append(Violation(f"{field}.scope_down", None, "CONSTANT needs a scope-down"))
    fwd = rule.forwarded_ip_config
    uses_fwd = kind == "FORWARDED_IP" or any("ForwardedIP" in k for k in rule.custom_keys)
    if uses_fwd and fwd is None:
        out.append(
            Violation(
                f"{field}.forwarded_ip_config",
                None,
                "FORWARDED_IP aggregation needs ForwardedIPConfig",
            )
        )
    if fwd is not None:
        header = fwd.get("HeaderName") or ""
        if not 1 <= len(header) <= MAX_HEADER_NAME_LENGTH or not HEADER_RE.match(header):
            out.append(
                Violation(
                    f"{field}.forwarded_ip_config.HeaderName",
                    header,
                    f"1-{MAX_HEADER_NAME_LENGTH} chars of [a-zA-Z0-9-]",
                )
            )
        if fwd.get("FallbackBehavior") not in ("MATCH", "NO_MATCH"):
            out.append(
                Violation(
                    f"{field}.forwarded_ip_config.FallbackBehavior",
                    fwd.get("FallbackBehavior"),
                    "MATCH or NO_MATCH",
                )
            )
    _check_custom_keys(field, rule, out)
    if rule.scope_down is not None and _contains_rate(rule.scope_down):
        out.append(
            Violation(
                f"{field}.scope_down",
                "RateBasedStatement",
                "a rate-based statement cannot be nested",
            )
        )


def _check_custom_keys(field: str, rule: RateRuleSpec, out: list[Violation]) -> None:
    keys = rule.custom_keys
    if rule.aggregate_key_type == "CUSTOM_KEYS" and not 1 <= len(keys) <= MAX_CUSTOM_KEYS:
        needs = f"CUSTOM_KEYS needs 1-{MAX_CUSTOM_KEYS} keys"
        out.append(Violation(f"{field}.custom_keys", len(keys), needs))
    if rule.aggregate_key_type != "CUSTOM_KEYS" and keys:
        out.append(Violation(f"{field}.custom_keys", len(keys), "keys need CUSTOM_KEYS"))
    kinds = []
    for j, key in enumerate(keys):
        if len(key) != 1 or next(iter(key)) not in KEY_TYPES:
            out.append(Violation(f"{field}.custom_keys[{j}]", key, f"one of {sorted(KEY_TYPES)}"))
            continue
        ((kind, body),) = key.items()
        kinds.append(kind)
        name = body.get("Name")
        named = kind in ("Header", "Cookie", "QueryArgument")
        if named and not 1 <= len(name or "") <= MAX_CUSTOM_KEY_NAME_LENGTH:
            out.append(
                Violation(
                    f"{field}.custom_keys[{j}].Name", name, f"1-{MAX_CUSTOM_KEY_NAME_LENGTH} chars"
                )
            )
        if "TextTransformations" in body and not body["TextTransformations"]:
            out.append(Violation(f"{field}.custom_keys[{j}]", key, "needs a text transformation"))
    if kinds and set(kinds) <= {"IP", "ForwardedIP"}:
        out.append(Violation(f"{field}.custom_keys", kinds, "IP/ForwardedIP need another key"))


def _contains_rate(statement: Any) -> bool:
    if isinstance(statement, dict):
        return any(k == "RateBasedStatement" or _contains_rate(v) for k, v in statement.items())
    if isinstance(statement, list):
        return any(_contains_rate(s) for s in statement)
    return False


def _check_counts(state: DesiredState, out: list[Violation]) -> None:
    rate = sum(isinstance(r, RateRuleSpec) for r in state.rules)
    limit = (
        MAX_RATE_RULES_PER_RULE_GROUP
        if state.placement.mode == "rule_group"
        else MAX_RATE_RULES_PER_WEB_ACL
    )
    if rate > limit:
        out.append(
            Violation("rules", rate, f"at most {limit} rate-based rules per {state.placement.mode}")
        )
    refs = sum(len(r.ip_set_names) for r in state.rules)
    if refs > MAX_IP_SET_REFERENCES:
        out.append(
            Violation(
                "rules.ip_set_names",
                refs,
                f"at most {MAX_IP_SET_REFERENCES} IP-set references per container",
            )
        )


def estimate_wcu(state: DesiredState) -> int:
    """Estimated WCU of the engine's rendered rules (raises ``wcu.UnknownCost``)."""
    return sum(wcu.rule_wcu(r) for r in _rendered(state).rules)


def _rendered(state: DesiredState) -> WafRequests:
    return render_requests(state) if state.requests is None else state.requests


def _check_requests(state: DesiredState, out: list[Violation]) -> bool:
    """The requests are what is sent: they must be the rendering of the specs checked here.
    False when the document carries none."""
    if state.requests is None:
        out.append(Violation("requests", None, "no rendered requests; compile the document"))
        return False
    want = render_requests(state)
    if state.requests == want:
        return True
    have = state.requests
    if have.ip_sets != want.ip_sets:
        # the sets one side lacks, else those whose bodies differ
        names = {str(b.get("Name")) for b in have.ip_sets} ^ {b["Name"] for b in want.ip_sets}
        value = sorted(names) or [
            w["Name"] for h, w in zip(have.ip_sets, want.ip_sets, strict=False) if h != w
        ]
        where = "requests.ip_sets"
    elif have.rule_group != want.rule_group:
        where, value = "requests.rule_group", state.placement.rule_group_name
    else:
        where, value = "requests.web_acl_rules", [r.get("Name") for r in have.web_acl_rules]
    out.append(
        Violation(where, value, "differs from the rendering of the document's specs; recompile")
    )
    return True


def _check_capacity(state: DesiredState, out: list[Violation]) -> None:
    assert state.requests is not None
    p = state.placement
    total = 0
    for i, rule in enumerate(state.requests.rules):
        try:
            total += wcu.rule_wcu(rule)
        except wcu.UnknownCost as exc:
            out.append(Violation(f"rules[{i}].Statement", rule["Name"], str(exc)))
    if p.mode == "rule_group" and total > p.rule_group_capacity:
        out.append(
            Violation(
                "placement.rule_group_capacity",
                p.rule_group_capacity,
                f"rules need about {total} WCU; capacity is fixed at create",
            )
        )
    engine_share = p.rule_group_capacity if p.mode == "rule_group" else total
    if any(pr.auto_response for pr in state.shield.protections):
        engine_share += SHIELD_MITIGATION_WCU
    if engine_share > p.web_acl_wcu_budget:
        out.append(
            Violation(
                "placement.web_acl_wcu_budget",
                p.web_acl_wcu_budget,
                f"the engine's share of the web ACL needs {engine_share} WCU "
                f"(Shield's {SHIELD_MITIGATION_WCU} included when automatic response is on)",
            )
        )


def _check_shield(state: DesiredState, out: list[Violation]) -> None:
    arns = Counter(pr.resource_arn for pr in state.shield.protections)
    for arn, n in arns.items():
        if n > 1:
            out.append(Violation("shield.protections.resource_arn", arn, "listed twice"))
    for i, pr in enumerate(state.shield.protections):
        field = f"shield.protections[{i}]"
        if not 1 <= len(pr.name) <= MAX_SHIELD_NAME_LENGTH or not SHIELD_NAME_RE.match(pr.name):
            out.append(
                Violation(
                    f"{field}.name", pr.name, f"1-{MAX_SHIELD_NAME_LENGTH} chars of [ a-zA-Z0-9_.-]"
                )
            )
        if not is_owned(pr.name, state.owner_prefix):
            out.append(
                Violation(
                    f"{field}.name",
                    pr.name,
                    f"engine objects carry the owner prefix {state.owner_prefix!r}",
                )
            )
        if not pr.resource_arn.startswith("arn:aws"):
            out.append(Violation(f"{field}.resource_arn", pr.resource_arn, "pattern ^arn:aws.*"))
        if pr.auto_response not in (None, "COUNT", "BLOCK"):
            out.append(
                Violation(f"{field}.auto_response", pr.auto_response, "COUNT, BLOCK or null")
            )
        capable = ":distribution/" in pr.resource_arn or ":loadbalancer/app/" in pr.resource_arn
        if pr.auto_response and not capable:
            out.append(
                Violation(
                    f"{field}.auto_response",
                    pr.auto_response,
                    "automatic response needs a CloudFront distribution or ALB",
                )
            )
    if any(pr.auto_response for pr in state.shield.protections) and not any(
        isinstance(r, RateRuleSpec) for r in state.rules
    ):
        out.append(
            Violation(
                "shield.protections",
                "auto_response",
                "automatic response needs a rate-based rule in the web ACL",
            )
        )


__all__ = [
    "DocumentInvalid",
    "Violation",
    "estimate_wcu",
    "validate",
    "validate_or_raise",
]
