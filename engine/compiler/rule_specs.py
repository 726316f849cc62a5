"""Rule specs from configuration: IP-set rules, rate rules, scope-downs, custom keys.

Every rule's name and priority come from the configuration alone (fixed slots, see
``config.CATEGORY_SLOTS``), never from which decisions happen to exist, so the same
configuration always renders byte-identical rules and WAF's rate counters are not reset by
needless rewrites.
"""

from __future__ import annotations

from typing import Any

from engine.compiler.config import (
    CATEGORY_SLOTS,
    RATE_LIMIT_DECISIONS_SLOT,
    CompilerConfig,
    CustomKeyConfig,
    RateProtectionConfig,
    ScopeDownConfig,
    protection_slots,
)
from engine.schema.rule import IPSetRuleSpec, RateRuleSpec

# Name token of each IP-set category (names allow [A-Za-z0-9_-]; keep them short and plain).
CATEGORY_TOKEN = {
    "block": "block",
    "challenge": "challenge",
    "captcha": "captcha",
    "count": "count",
    "rate_limit": "ratelimit",
}


def priority_base(config: CompilerConfig) -> int:
    """Rules in the web ACL start at the owned range; inside the engine's own group at 0."""
    return config.placement.priority_min if config.placement.mode == "web_acl" else 0


def rule_action(config: CompilerConfig, action: str) -> str:
    return "COUNT" if config.count_only else action


def ip_set_rule(config: CompilerConfig, category: str, set_names: list[str]) -> IPSetRuleSpec:
    """The rule listing one category's sets (all shards, v4 and v6, OR-ed)."""
    return IPSetRuleSpec(
        name=f"{config.owner_prefix}{CATEGORY_TOKEN[category]}",
        priority=priority_base(config) + CATEGORY_SLOTS[category],
        ip_set_names=tuple(set_names),
        action=rule_action(config, category.upper()),
        category=category,
        forwarded_ip_config=ip_set_forwarded(config),
    )


def ip_set_forwarded(config: CompilerConfig) -> dict[str, Any] | None:
    fwd = config.ip_sets_forwarded_ip
    return None if fwd is None else fwd.to_waf()


def rate_limit_decisions_rule(config: CompilerConfig, set_names: list[str]) -> RateRuleSpec:
    """The rate rule for rate_limit decisions: counts only clients in their IP sets."""
    rl = config.rate_limit_decisions
    return RateRuleSpec(
        name=f"{config.owner_prefix}ratelimit-decisions",
        priority=priority_base(config) + RATE_LIMIT_DECISIONS_SLOT,
        limit=rl.limit,
        window_s=rl.window_s,
        aggregate_key_type=rl.aggregate,
        action=rule_action(config, rl.action),
        forwarded_ip_config=_forwarded(rl.forwarded_ip_header, rl.forwarded_ip_fallback)
        if rl.aggregate == "FORWARDED_IP"
        else None,
        ip_set_names=tuple(set_names),
        ip_set_forwarded_ip_config=ip_set_forwarded(config),
        source="decisions",
    )


def protection_rules(config: CompilerConfig) -> list[RateRuleSpec]:
    """One rate rule per configured protection, at its fixed slot."""
    slots = protection_slots(config)
    return [
        _protection_rule(config, p, priority_base(config) + slots[p.name])
        for p in config.rate_limits
    ]


def _protection_rule(
    config: CompilerConfig, prot: RateProtectionConfig, priority: int
) -> RateRuleSpec:
    needs_header = prot.aggregate == "FORWARDED_IP"
    return RateRuleSpec(
        name=f"{config.owner_prefix}rl-{prot.name}",
        priority=priority,
        limit=prot.limit,
        window_s=prot.window_s,
        aggregate_key_type=prot.aggregate,
        action=rule_action(config, prot.action),
        custom_keys=tuple(custom_key(k) for k in prot.custom_keys),
        forwarded_ip_config=_forwarded(prot.forwarded_ip_header, prot.forwarded_ip_fallback)
        if needs_header or any(k.type == "forwarded_ip" for k in prot.custom_keys)
        else None,
        scope_down=scope_down_statement(prot.scope_down) if prot.scope_down else None,
        source="protection",
    )


def _forwarded(header: str | None, fallback: str) -> dict[str, Any]:
    return {"FallbackBehavior": fallback, "HeaderName": header}


def _transforms(kind: str) -> list[dict[str, Any]]:
    return [{"Priority": 0, "Type": kind}]


def custom_key(key: CustomKeyConfig) -> dict[str, Any]:
    """A ``RateBasedStatementCustomKey`` in WAFv2 JSON."""
    tt = _transforms(key.text_transformation)
    match key.type:
        case "uri_path":
            return {"UriPath": {"TextTransformations": tt}}
        case "header":
            return {"Header": {"Name": key.name, "TextTransformations": tt}}
        case "cookie":
            return {"Cookie": {"Name": key.name, "TextTransformations": tt}}
        case "query_argument":
            return {"QueryArgument": {"Name": key.name, "TextTransformations": tt}}
        case "query_string":
            return {"QueryString": {"TextTransformations": tt}}
        case "http_method":
            return {"HTTPMethod": {}}
        case "ip":
            return {"IP": {}}
        case "forwarded_ip":
            return {"ForwardedIP": {}}
        case "ja3":
            return {"JA3Fingerprint": {"FallbackBehavior": key.fallback}}
        case "ja4":
            return {"JA4Fingerprint": {"FallbackBehavior": key.fallback}}
        case "label_namespace":
            return {"LabelNamespace": {"Namespace": key.namespace}}
        case "asn":
            return {"ASN": {}}
    raise ValueError(f"unknown custom key type {key.type!r}")  # unreachable: pydantic Literal


def _byte_match(value: str, field: dict[str, Any], positional: str) -> dict[str, Any]:
    return {
        "ByteMatchStatement": {
            "FieldToMatch": field,
            "PositionalConstraint": positional,
            "SearchString": value,
            "TextTransformations": _transforms("NONE"),
        }
    }


def scope_down_statement(scope: ScopeDownConfig) -> dict[str, Any]:
    """A WAFv2 ``Statement``: the raw one, or an AND of method/path/host byte matches."""
    if scope.statement is not None:
        return dict(scope.statement)
    parts = []
    if scope.method is not None:
        parts.append(_byte_match(scope.method, {"Method": {}}, "EXACTLY"))
    if scope.path is not None:
        parts.append(_byte_match(scope.path, {"UriPath": {}}, scope.path_match))
    if scope.host is not None:
        parts.append(_byte_match(scope.host, {"SingleHeader": {"Name": "host"}}, "EXACTLY"))
    if len(parts) == 1:
        return parts[0]
    return {"AndStatement": {"Statements": parts}}
