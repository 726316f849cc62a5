"""Enforcer test helpers: approved decisions, compiled documents, the foreign rules of an
operator's web ACL, and readers of what the moto server holds."""

from __future__ import annotations

import copy
import ipaddress
from datetime import UTC, datetime
from typing import Any

from engine.compiler.compile import compile_state
from engine.compiler.config import config_from_dict
from engine.compiler.validate import validate_or_raise
from engine.schema.decision import Action, Decision, Status
from engine.schema.rule import DesiredState

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
WEB_ACL = "prod-acl"
SHIELD_RULE = "ShieldMitigationRuleGroup_123456789012_0a1b2c3d_e4f5"


def vis(name: str) -> dict[str, Any]:
    return {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": name}


FOREIGN_RULES: list[dict[str, Any]] = [
    {
        "Name": "operator-allow-office",
        "Priority": 1,
        "Action": {"Allow": {}},
        "Statement": {"GeoMatchStatement": {"CountryCodes": ["LU"]}},
        "VisibilityConfig": vis("operator-allow-office"),
    },
    {
        "Name": "operator-rate-login",
        "Priority": 5,
        "Action": {"Block": {}},
        "Statement": {
            "RateBasedStatement": {
                "Limit": 300,
                "EvaluationWindowSec": 60,
                "AggregateKeyType": "IP",
                "ScopeDownStatement": {
                    "ByteMatchStatement": {
                        "SearchString": "/login",
                        "FieldToMatch": {"UriPath": {}},
                        "TextTransformations": [{"Priority": 0, "Type": "NONE"}],
                        "PositionalConstraint": "STARTS_WITH",
                    }
                },
            }
        },
        "VisibilityConfig": vis("operator-rate-login"),
    },
    {
        "Name": SHIELD_RULE,
        "Priority": 10_000_000,
        "OverrideAction": {"None": {}},
        "Statement": {
            "RuleGroupReferenceStatement": {
                "ARN": "arn:aws:wafv2:us-east-1:123456789012:regional/rulegroup/"
                "ShieldMitigationRuleGroup_123456789012_0a1b2c3d_e4f5/"
                "11111111-2222-3333-4444-555555555555"
            }
        },
        "VisibilityConfig": vis("shield-mitigation"),
    },
]


def v4_addresses(n: int, start: str = "10.0.0.0") -> list[str]:
    base = int(ipaddress.IPv4Address(start))
    # Step 2 so that neighbours never aggregate into wider CIDRs: one entry per decision.
    return [str(ipaddress.IPv4Address(base + 2 * i)) for i in range(n)]


def v6_addresses(n: int, start: str = "2001:db8::") -> list[str]:
    base = int(ipaddress.IPv6Address(start))
    return [str(ipaddress.IPv6Address(base + 2 * i)) for i in range(n)]


def decisions(
    clients: list[str],
    action: Action = Action.BLOCK,
    ttl_s: int = 3600,
    decided_at: datetime = NOW,
    score: float = 0.9,
) -> list[Decision]:
    return [
        Decision(
            client=c,
            action=action,
            ttl_s=ttl_s,
            score=score,
            detector="test",
            decided_at=decided_at,
            status=Status.APPROVED,
            id=f"d-{c}",
        )
        for c in clients
    ]


def compile_doc(decs: list[Decision], now: datetime = NOW, **config: Any) -> DesiredState:
    settings: dict[str, Any] = {"placement": {"web_acl_name": WEB_ACL}}
    settings.update(config)
    state = compile_state(decs, config_from_dict(settings), now)
    return validate_or_raise(state)


def acl_body(wafv2) -> dict[str, Any]:
    summary = next(
        a for a in wafv2.list_web_acls(Scope="REGIONAL")["WebACLs"] if a["Name"] == WEB_ACL
    )
    return wafv2.get_web_acl(Name=WEB_ACL, Scope="REGIONAL", Id=summary["Id"])["WebACL"]


def ip_set_contents(wafv2, prefix: str = "wafsmith-") -> dict[str, set[str]]:
    out = {}
    for s in wafv2.list_ip_sets(Scope="REGIONAL", Limit=100)["IPSets"]:
        if s["Name"].startswith(prefix):
            body = wafv2.get_ip_set(Name=s["Name"], Scope="REGIONAL", Id=s["Id"])["IPSet"]
            out[s["Name"]] = set(body["Addresses"])
    return out


def all_addresses(contents: dict[str, set[str]]) -> set[str]:
    return set().union(*contents.values()) if contents else set()


class Recording:
    """Forwards every call to ``inner`` and records the writes (and their requests) in order."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.writes: list[tuple[str, str]] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._inner, name)
        if not name.startswith(("create_", "update_", "delete_")):
            return fn

        def call(**kw: Any) -> dict[str, Any]:
            self.writes.append((name, kw.get("Name", "")))
            self.requests.append((name, copy.deepcopy(kw)))  # as sent, whatever happens later
            return fn(**kw)

        return call


def create_production_acl(wafv2) -> dict[str, Any]:
    """Create ``WEB_ACL`` holding an operator allow rule, an operator rate rule and Shield's
    group (rules wafsmith must never touch); returns its body."""
    wafv2.create_web_acl(
        Name=WEB_ACL,
        Scope="REGIONAL",
        DefaultAction={"Allow": {}},
        VisibilityConfig=vis("prod-acl"),
        Rules=FOREIGN_RULES,
        CustomResponseBodies={"blocked": {"ContentType": "TEXT_PLAIN", "Content": "denied"}},
        TokenDomains=["example.com"],
        Description="production web ACL",
        CaptchaConfig={"ImmunityTimeProperty": {"ImmunityTime": 300}},
        ChallengeConfig={"ImmunityTimeProperty": {"ImmunityTime": 600}},
        AssociationConfig={"RequestBody": {"CLOUDFRONT": {"DefaultSizeInspectionLimit": "KB_32"}}},
    )
    return acl_body(wafv2)
