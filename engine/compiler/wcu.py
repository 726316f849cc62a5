"""Web ACL capacity unit (WCU) estimates for rendered WAFv2 statements.

moto does not implement ``CheckCapacity``, so the validator needs its own estimate. Costs are
from the AWS rule-statement documentation (aws-wafv2-shield.md §7): IP-set reference 1 (+4
with ``Position=ANY``); rate-based 2 + 30 per custom key (+10 per non-NONE text
transformation of a key) + its scope-down; string match 2 (10 for CONTAINS/CONTAINS_WORD);
regex 3; regex pattern set 25; SQLi 20 (30 at HIGH sensitivity); XSS 40; geo/ASN/label/size
1; each text transformation other than NONE adds 10. A statement type without a known cost
raises ``UnknownCost`` — an estimate that guesses low is worse than none, because the rule
group's capacity cannot grow after creation.
"""

from __future__ import annotations

from typing import Any

from engine.schema.waf_limits import SHIELD_MITIGATION_WCU

__all__ = ["SHIELD_MITIGATION_WCU", "UnknownCost", "rule_wcu", "statement_wcu"]

_BASE = {
    "GeoMatchStatement": 1,
    "AsnMatchStatement": 1,
    "LabelMatchStatement": 1,
    "SizeConstraintStatement": 1,
    "RegexMatchStatement": 3,
    "RegexPatternSetReferenceStatement": 25,
    "XssMatchStatement": 40,
}


class UnknownCost(ValueError):
    """A statement whose WCU cost the estimator does not know."""


def _transform_cost(body: dict[str, Any]) -> int:
    return 10 * sum(1 for t in body.get("TextTransformations", ()) if t.get("Type") != "NONE")


def statement_wcu(statement: dict[str, Any]) -> int:
    """Estimated WCU of one WAFv2 ``Statement`` (recursing into nested statements)."""
    if len(statement) != 1:
        raise UnknownCost(f"a statement must have exactly one type, got {sorted(statement)}")
    ((kind, body),) = statement.items()
    if kind == "IPSetReferenceStatement":
        fwd = body.get("IPSetForwardedIPConfig") or {}
        return 1 + (4 if fwd.get("Position") == "ANY" else 0)
    if kind == "RateBasedStatement":
        scope = body.get("ScopeDownStatement")
        keys = body.get("CustomKeys", ())
        key_cost = sum(30 + _transform_cost(next(iter(k.values()), {})) for k in keys)
        return 2 + key_cost + (statement_wcu(scope) if scope else 0)
    if kind in ("AndStatement", "OrStatement"):
        return sum(statement_wcu(s) for s in body.get("Statements", ()))
    if kind == "NotStatement":
        return statement_wcu(body["Statement"])
    if kind == "ByteMatchStatement":
        base = 10 if body.get("PositionalConstraint") in ("CONTAINS", "CONTAINS_WORD") else 2
        return base + _transform_cost(body)
    if kind == "SqliMatchStatement":
        base = 30 if body.get("SensitivityLevel") == "HIGH" else 20
        return base + _transform_cost(body)
    if kind in _BASE:
        return _BASE[kind] + _transform_cost(body)
    raise UnknownCost(f"no WCU estimate for {kind}")


def rule_wcu(rule: dict[str, Any]) -> int:
    """Estimated WCU of a rendered WAFv2 ``Rule``."""
    return statement_wcu(rule["Statement"])
