"""The desired WAF state: what the compiler produces and the enforcer converges AWS onto.

A ``DesiredState`` is a plain, deterministic document (frozen dataclasses with ``to_dict`` /
``from_dict``; the dict form is sorted, JSON-serialisable and byte-stable for equal inputs):

- ``ip_sets``  — ``IPSetSpec`` per (category, address family, shard). Categories are the
  decision actions that live in IP sets: ``block``, ``challenge``, ``captcha``, ``count`` and
  ``rate_limit`` (the latter is the scope-down of the rate rule for rate-limited clients).
  Addresses are canonical CIDRs (``192.0.2.7/32``, ``2001:db8::/48``), unique, sorted by
  (network number, prefix length).
- ``rules``    — ``IPSetRuleSpec`` (match any of the named IP sets → action) and
  ``RateRuleSpec`` (a WAFv2 rate-based statement, optionally scoped down to named IP sets
  and/or a WAFv2 ``Statement``). Priorities are fixed by configuration, never by decision churn,
  so an unchanged configuration renders byte-identical rules (rate counters survive).
- ``placement`` — where the rules go: inside an engine-owned rule group referenced once from
  the web ACL (``mode="rule_group"``), or directly in the web ACL (``mode="web_acl"``).
- ``shield``   — Shield Advanced protections and automatic application-layer response.
- ``overflow`` — every decided client that is *not* enforced, with the reason (``budget``,
  ``allowlisted``, ``superseded``, ``action_disabled``, ``ip_set_limit``, and
  ``invalid_address`` for a stored target the address rules refuse). Nothing is dropped
  silently, and one bad entry never fails the document.

Ownership markers. Everything the engine creates — IP sets, rules, the rule group, metric
names, Shield protections — has a name starting with ``owner_prefix`` (default
``"wafsmith-"``). The enforcer owns exactly the AWS objects whose name carries that prefix
(``is_owned``); every other rule in a web ACL (the operator's,
``ShieldMitigationRuleGroup_…``, Firewall Manager groups) is foreign and is copied back byte
for byte. In ``web_acl`` mode the engine's rules use priorities inside
``placement.priority_min..priority_max`` only; in ``rule_group`` mode the single reference
rule sits at ``placement.priority_min`` and the rules inside the (wholly owned) group use
small fixed slots (count 0, block 1, captcha 2, challenge 3, rate-limit decisions 4,
protections 10 and up).

Requests. The specs above say what is enforced and why; ``requests`` (``WafRequests``,
``engine.schema.requests``) holds the exact WAFv2 request bodies the compiler rendered from
them, with placeholders for what only AWS or the enforcer knows (ARNs, the ownership digest).
The validator and the botocore model check examine those bodies, and the enforcer sends them
with the placeholders filled in: what is validated is what is sent.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.schema.requests import WafRequests

FORMAT_VERSION = 2  # 2: the document carries its rendered requests
DEFAULT_OWNER_PREFIX = "wafsmith-"

Scope = Literal["REGIONAL", "CLOUDFRONT"]
IPVersion = Literal["IPV4", "IPV6"]
RuleAction = Literal["BLOCK", "CHALLENGE", "CAPTCHA", "COUNT"]
AggregateKeyType = Literal["IP", "FORWARDED_IP", "CUSTOM_KEYS", "CONSTANT"]
AutoResponse = Literal["COUNT", "BLOCK"]

SCOPES = ("REGIONAL", "CLOUDFRONT")
IP_VERSIONS = ("IPV4", "IPV6")
RULE_ACTIONS = ("BLOCK", "CHALLENGE", "CAPTCHA", "COUNT")
AGGREGATE_KEY_TYPES = ("IP", "FORWARDED_IP", "CUSTOM_KEYS", "CONSTANT")
# IP-set categories: the decision actions whose clients are listed in IP sets.
IP_SET_CATEGORIES = ("block", "challenge", "captcha", "count", "rate_limit")
# Why a decided client is not in the document.
OVERFLOW_REASONS = (
    "budget",
    "allowlisted",
    "superseded",
    "action_disabled",
    "ip_set_limit",
    "invalid_address",
    "rule_limit",  # a rule-level decision beyond the slots, rate-rule count or capacity left
)


def is_owned(name: str, owner_prefix: str = DEFAULT_OWNER_PREFIX) -> bool:
    """True when an AWS object with this name belongs to the engine (carries its prefix)."""
    return name.startswith(owner_prefix)


def address_sort_key(cidr: str) -> tuple[int, int, int]:
    """Order of addresses inside an IP set: family, then network number, then prefix length."""
    net = ipaddress.ip_network(cidr)
    return (net.version, int(net.network_address), net.prefixlen)


@dataclass(frozen=True, slots=True)
class IPSetSpec:
    """One engine-owned WAFv2 IP set: a single family, at most 10,000 canonical CIDRs."""

    name: str
    scope: str
    ip_version: str
    addresses: tuple[str, ...]
    category: str  # one of IP_SET_CATEGORIES
    description: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "addresses", tuple(self.addresses))

    def to_dict(self) -> dict[str, Any]:
        return {
            "addresses": list(self.addresses),
            "category": self.category,
            "description": self.description,
            "ip_version": self.ip_version,
            "name": self.name,
            "scope": self.scope,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IPSetSpec:
        return cls(**_exact(cls, data))


@dataclass(frozen=True, slots=True)
class IPSetRuleSpec:
    """A rule matching a client listed in any of ``ip_set_names`` (v4 and v6 shards OR-ed)."""

    name: str
    priority: int
    ip_set_names: tuple[str, ...]
    action: str  # one of RULE_ACTIONS
    category: str
    # WAFv2 ``IPSetForwardedIPConfig``: match the address in this header, not the source.
    forwarded_ip_config: dict[str, Any] | None = None

    kind = "ip_set"

    def __post_init__(self) -> None:
        object.__setattr__(self, "ip_set_names", tuple(self.ip_set_names))

    def to_dict(self) -> dict[str, Any]:
        out = {
            "action": self.action,
            "category": self.category,
            "ip_set_names": list(self.ip_set_names),
            "kind": self.kind,
            "name": self.name,
            "priority": self.priority,
        }
        if self.forwarded_ip_config is not None:  # absent, not null: documents stay as before
            out["forwarded_ip_config"] = dict(self.forwarded_ip_config)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IPSetRuleSpec:
        return cls(**_exact(cls, {k: v for k, v in data.items() if k != "kind"}))


@dataclass(frozen=True, slots=True)
class RateRuleSpec:
    """A rate-based rule. ``custom_keys``, ``forwarded_ip_config`` and ``scope_down`` are WAFv2
    JSON (``RateBasedStatementCustomKey`` list, ``ForwardedIPConfig``, ``Statement``).

    When ``ip_set_names`` is set, the rule only counts clients listed in those sets (the scope-
    down becomes ``ip sets AND scope_down``); that is how rate_limit decisions are enforced.
    """

    name: str
    priority: int
    limit: int
    window_s: int
    aggregate_key_type: str
    action: str
    custom_keys: tuple[dict[str, Any], ...] = ()
    forwarded_ip_config: dict[str, Any] | None = None
    scope_down: dict[str, Any] | None = None
    ip_set_names: tuple[str, ...] = ()  # IP_SET_NAMES_PLACEHOLDER
    source: str = "protection"  # "protection" (configured) or "decisions" (rate_limit decisions)
    ip_set_forwarded_ip_config: dict[str, Any] | None = None  # how the IP-set scope-down matches

    kind = "rate"

    def __post_init__(self) -> None:
        object.__setattr__(self, "custom_keys", tuple(self.custom_keys))
        object.__setattr__(self, "ip_set_names", tuple(self.ip_set_names))

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "aggregate_key_type": self.aggregate_key_type,
            "custom_keys": list(self.custom_keys),
            "forwarded_ip_config": self.forwarded_ip_config,
            "ip_set_names": list(self.ip_set_names),
            "kind": self.kind,
            "limit": self.limit,
            "name": self.name,
            "priority": self.priority,
            "scope_down": self.scope_down,
            "source": self.source,
            "window_s": self.window_s,
            **(
                {"ip_set_forwarded_ip_config": dict(self.ip_set_forwarded_ip_config)}
                if self.ip_set_forwarded_ip_config is not None
                else {}
            ),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RateRuleSpec:
        return cls(**_exact(cls, {k: v for k, v in data.items() if k != "kind"}))


@dataclass(frozen=True, slots=True)
class MatchRuleSpec:
    """A rule applying ``action`` to every request its WAFv2 ``statement`` matches: a
    rule-level decision's challenge or CAPTCHA on one path (``decision_id`` says which)."""

    name: str
    priority: int
    statement: dict[str, Any]
    action: str  # one of RULE_ACTIONS
    decision_id: str = ""

    kind = "match"
    ip_set_names = ()  # references no IP set (read like the other rule kinds' field)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "decision_id": self.decision_id,
            "kind": self.kind,
            "name": self.name,
            "priority": self.priority,
            "statement": dict(self.statement),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MatchRuleSpec:
        return cls(**_exact(cls, {k: v for k, v in data.items() if k != "kind"}))


RuleSpec = IPSetRuleSpec | RateRuleSpec | MatchRuleSpec


def rule_from_dict(data: dict[str, Any]) -> RuleSpec:
    kind = data.get("kind")
    if kind == IPSetRuleSpec.kind:
        return IPSetRuleSpec.from_dict(data)
    if kind == RateRuleSpec.kind:
        return RateRuleSpec.from_dict(data)
    if kind == MatchRuleSpec.kind:
        return MatchRuleSpec.from_dict(data)
    raise ValueError(f"unknown rule kind {kind!r} (expected 'ip_set', 'rate' or 'match')")


@dataclass(frozen=True, slots=True)
class PlacementSpec:
    """Where the engine's rules live and which priorities the engine owns in the web ACL.

    ``mode="rule_group"``: rules go into ``rule_group_name`` (capacity ``rule_group_capacity``
    WCU, immutable after create); the web ACL ``web_acl_name`` gets one reference rule named
    ``rule_group_name`` at ``priority_min``. ``mode="web_acl"``: the rules go straight into the
    web ACL at their own priorities, all within ``priority_min..priority_max``.
    """

    mode: str  # "rule_group" | "web_acl"
    scope: str
    web_acl_name: str | None
    rule_group_name: str
    rule_group_capacity: int
    priority_min: int
    priority_max: int
    web_acl_wcu_budget: int = 1500

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "priority_max": self.priority_max,
            "priority_min": self.priority_min,
            "rule_group_capacity": self.rule_group_capacity,
            "rule_group_name": self.rule_group_name,
            "scope": self.scope,
            "web_acl_name": self.web_acl_name,
            "web_acl_wcu_budget": self.web_acl_wcu_budget,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlacementSpec:
        return cls(**_exact(cls, data))


@dataclass(frozen=True, slots=True)
class ShieldProtectionSpec:
    """One Shield Advanced protection; ``auto_response`` is the automatic application-layer
    response action (``"COUNT"``/``"BLOCK"``) or ``None`` for disabled."""

    name: str
    resource_arn: str
    auto_response: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "auto_response": self.auto_response,
            "name": self.name,
            "resource_arn": self.resource_arn,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShieldProtectionSpec:
        return cls(**_exact(cls, data))


@dataclass(frozen=True, slots=True)
class ShieldSpec:
    """Shield Advanced desired state; ``enabled=False`` means the engine leaves Shield alone."""

    enabled: bool = False
    protections: tuple[ShieldProtectionSpec, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "protections", tuple(self.protections))

    @property
    def auto_response(self) -> dict[str, str | None]:
        """resource ARN → automatic response action (None: disabled)."""
        return {p.resource_arn: p.auto_response for p in self.protections}

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "protections": [p.to_dict() for p in self.protections]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShieldSpec:
        data = _exact(cls, data)
        prots = tuple(ShieldProtectionSpec.from_dict(p) for p in data.get("protections", ()))
        return cls(enabled=bool(data.get("enabled", False)), protections=prots)


@dataclass(frozen=True, slots=True)
class OverflowEntry:
    """A decided client (IP or CIDR) that is not enforced, and why (one of OVERFLOW_REASONS)."""

    client: str
    category: str
    reason: str
    score: float
    decided_at: str  # ISO-8601 UTC of the newest decision behind the entry
    decision_ids: tuple[str, ...] = ()
    detail: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "decision_ids", tuple(self.decision_ids))

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "client": self.client,
            "decided_at": self.decided_at,
            "decision_ids": list(self.decision_ids),
            "detail": self.detail,
            "reason": self.reason,
            "score": self.score,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OverflowEntry:
        return cls(**_exact(cls, data))


@dataclass(frozen=True, slots=True)
class DesiredState:
    """The whole desired WAF/Shield state for one web ACL (see the module docstring)."""

    ip_sets: tuple[IPSetSpec, ...]
    rules: tuple[RuleSpec, ...]
    placement: PlacementSpec
    shield: ShieldSpec = field(default_factory=ShieldSpec)
    overflow: tuple[OverflowEntry, ...] = ()
    generated_at: str = ""
    owner_prefix: str = DEFAULT_OWNER_PREFIX
    count_only: bool = False
    requests: WafRequests | None = None  # rendered by the compiler; None: not rendered
    version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        for name in ("ip_sets", "rules", "overflow"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def ip_set(self, name: str) -> IPSetSpec:
        for spec in self.ip_sets:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "count_only": self.count_only,
            "generated_at": self.generated_at,
            "ip_sets": [s.to_dict() for s in self.ip_sets],
            "overflow": [o.to_dict() for o in self.overflow],
            "owner_prefix": self.owner_prefix,
            "placement": self.placement.to_dict(),
            "requests": None if self.requests is None else self.requests.to_dict(),
            "rules": [r.to_dict() for r in self.rules],
            "shield": self.shield.to_dict(),
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DesiredState:
        data = _exact(cls, data)
        if data.get("version", FORMAT_VERSION) != FORMAT_VERSION:
            raise ValueError(f"unsupported desired-state version {data.get('version')!r}")
        return cls(
            ip_sets=tuple(IPSetSpec.from_dict(s) for s in data.get("ip_sets", ())),
            rules=tuple(rule_from_dict(r) for r in data.get("rules", ())),
            placement=PlacementSpec.from_dict(data["placement"]),
            shield=ShieldSpec.from_dict(data.get("shield", {})),
            overflow=tuple(OverflowEntry.from_dict(o) for o in data.get("overflow", ())),
            generated_at=data.get("generated_at", ""),
            owner_prefix=data.get("owner_prefix", DEFAULT_OWNER_PREFIX),
            count_only=bool(data.get("count_only", False)),
            requests=None
            if data.get("requests") is None
            else WafRequests.from_dict(data["requests"]),
        )


def _exact(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """Refuse keys the dataclass does not have (a typo must not vanish silently)."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    unknown = set(data) - set(cls.__dataclass_fields__)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
    return dict(data)
