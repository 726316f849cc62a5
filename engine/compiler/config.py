"""Compiler configuration: pydantic models with ``extra="forbid"``, loadable from TOML.

Everything that shapes the compiled document lives here — name prefix, scope, budgets,
allowlist, rate-limit protections, placement and Shield — so that the document is a pure
function of (decisions, config, now). ``data/config/example-enforcement.toml`` documents
every option. Load with ``load_config(path)`` or ``CompilerConfig.model_validate(dict)``
(e.g. the ``[enforcement.compiler]`` table of the engine settings).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.core import netaddr
from engine.core.errors import ConfigError
from engine.schema.waf_limits import (
    HEADER_NAME_PATTERN,
    MAX_ADDRESSES_PER_IP_SET,
    MAX_CAPACITY_WCU,
    MAX_CUSTOM_KEY_NAME_LENGTH,
    MAX_CUSTOM_KEYS,
    MAX_HEADER_NAME_LENGTH,
    MAX_NAME_LENGTH,
    RATE_LIMIT_MAX,
    RATE_LIMIT_MIN,
    SHIELD_RULE_PRIORITY,
    RateWindow,
)

NAME_PATTERN = r"^[A-Za-z0-9_\-]+$"
Category = Literal["block", "challenge", "captcha", "count", "rate_limit"]
WafAction = Literal["BLOCK", "CHALLENGE", "CAPTCHA", "COUNT"]

# Fixed priority slots of the decision rules (see ``priorities.py``); protections start at 10.
CATEGORY_SLOTS: dict[str, int] = {"count": 0, "block": 1, "captcha": 2, "challenge": 3}
RATE_LIMIT_DECISIONS_SLOT = 4
FIRST_PROTECTION_SLOT = 10
# Rule-level decisions take the slots between the IP-set rules and the protections.
RULE_DECISION_SLOTS = tuple(range(RATE_LIMIT_DECISIONS_SLOT + 1, FIRST_PROTECTION_SLOT))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomKeyConfig(_Model):
    """One aggregation key of a CUSTOM_KEYS rate rule (WAFv2 RateBasedStatementCustomKey)."""

    type: Literal[
        "uri_path",
        "header",
        "cookie",
        "query_argument",
        "query_string",
        "http_method",
        "ip",
        "forwarded_ip",
        "ja3",
        "ja4",
        "label_namespace",
        "asn",
    ]
    name: str | None = Field(  # header/cookie/query_argument
        None, min_length=1, max_length=MAX_CUSTOM_KEY_NAME_LENGTH
    )
    namespace: str | None = Field(None, pattern=r"^[0-9A-Za-z_\-:]+:$")  # label_namespace
    text_transformation: str = "NONE"
    fallback: Literal["MATCH", "NO_MATCH"] = "NO_MATCH"  # ja3/ja4

    @model_validator(mode="after")
    def _needs_name(self) -> CustomKeyConfig:
        if self.type in ("header", "cookie", "query_argument") and not self.name:
            raise ValueError(f"custom key {self.type!r} needs 'name'")
        if self.type == "label_namespace" and not self.namespace:
            raise ValueError("custom key 'label_namespace' needs 'namespace'")
        return self


class ScopeDownConfig(_Model):
    """Which requests a rate rule counts: method and/or path and/or host header, or a raw
    WAFv2 ``Statement`` (``statement``) for anything else. Matches are case-sensitive."""

    method: str | None = Field(None, pattern=r"^[A-Z]+$")
    path: str | None = Field(None, min_length=1, max_length=200)
    path_match: Literal["EXACTLY", "STARTS_WITH", "ENDS_WITH", "CONTAINS"] = "EXACTLY"
    host: str | None = Field(None, min_length=1, max_length=200)
    statement: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> ScopeDownConfig:
        simple = any(v is not None for v in (self.method, self.path, self.host))
        if self.statement is not None and simple:
            raise ValueError("scope_down: give either 'statement' or method/path/host, not both")
        if self.statement is None and not simple:
            raise ValueError("scope_down: give method, path, host or statement")
        return self


class RateProtectionConfig(_Model):
    """A configured rate-based protection, e.g. at most 20 ``POST /login`` per IP per minute."""

    name: str = Field(pattern=NAME_PATTERN, min_length=1, max_length=60)
    limit: int = Field(ge=RATE_LIMIT_MIN, le=RATE_LIMIT_MAX)
    window_s: RateWindow = 300
    aggregate: Literal["IP", "FORWARDED_IP", "CUSTOM_KEYS", "CONSTANT"] = "IP"
    forwarded_ip_header: str | None = Field(
        None, pattern=HEADER_NAME_PATTERN, max_length=MAX_HEADER_NAME_LENGTH
    )
    forwarded_ip_fallback: Literal["MATCH", "NO_MATCH"] = "NO_MATCH"
    custom_keys: list[CustomKeyConfig] = Field(default_factory=list, max_length=MAX_CUSTOM_KEYS)
    scope_down: ScopeDownConfig | None = None
    action: WafAction = "BLOCK"
    slot: int | None = Field(None, ge=FIRST_PROTECTION_SLOT)  # fixed priority offset

    @model_validator(mode="after")
    def _preconditions(self) -> RateProtectionConfig:
        if self.aggregate == "FORWARDED_IP" and not self.forwarded_ip_header:
            raise ValueError(f"rate rule {self.name!r}: FORWARDED_IP needs forwarded_ip_header")
        if self.aggregate == "CUSTOM_KEYS" and not self.custom_keys:
            raise ValueError(f"rate rule {self.name!r}: CUSTOM_KEYS needs 1-5 custom_keys")
        if self.aggregate != "CUSTOM_KEYS" and self.custom_keys:
            raise ValueError(f"rate rule {self.name!r}: custom_keys need aggregate=CUSTOM_KEYS")
        if self.aggregate == "CONSTANT" and self.scope_down is None:
            raise ValueError(f"rate rule {self.name!r}: CONSTANT needs a scope_down")
        ip_like = {"ip", "forwarded_ip"}
        if self.custom_keys and all(k.type in ip_like for k in self.custom_keys):
            raise ValueError(f"rate rule {self.name!r}: ip/forwarded_ip keys need another key")
        if any(k.type == "forwarded_ip" for k in self.custom_keys) and not (
            self.forwarded_ip_header
        ):
            raise ValueError(f"rate rule {self.name!r}: forwarded_ip key needs the header")
        return self


class RateLimitDecisionsConfig(_Model):
    """The rate rule enforcing ``rate_limit`` decisions (scoped down to their IP sets)."""

    limit: int = Field(100, ge=RATE_LIMIT_MIN, le=RATE_LIMIT_MAX)
    window_s: RateWindow = 300
    aggregate: Literal["IP", "FORWARDED_IP"] = "IP"
    forwarded_ip_header: str | None = Field(
        None, pattern=HEADER_NAME_PATTERN, max_length=MAX_HEADER_NAME_LENGTH
    )
    forwarded_ip_fallback: Literal["MATCH", "NO_MATCH"] = "NO_MATCH"
    action: WafAction = "BLOCK"

    @model_validator(mode="after")
    def _header(self) -> RateLimitDecisionsConfig:
        if self.aggregate == "FORWARDED_IP" and not self.forwarded_ip_header:
            raise ValueError("rate_limit_decisions: FORWARDED_IP needs forwarded_ip_header")
        return self


class RuleDecisionsConfig(_Model):
    """Rule-level decisions (a rate rule or challenge on one path): how many may be enforced
    at once. They take free slots 5..9, oldest decision first; the rest is overflow."""

    enabled: bool = True
    max_rules: int = Field(3, ge=0, le=len(RULE_DECISION_SLOTS))


class ForwardedIPSetMatch(_Model):
    """How IP-set rules read the client when WAF sees a proxy (e.g. a CloudFront edge) as the
    source: WAFv2's ``IPSetForwardedIPConfig``. CloudFront appends the viewer's address as the
    last X-Forwarded-For entry, which is where the engine read it."""

    header_name: str = Field(
        "X-Forwarded-For", pattern=HEADER_NAME_PATTERN, max_length=MAX_HEADER_NAME_LENGTH
    )
    position: Literal["FIRST", "LAST", "ANY"] = "LAST"
    fallback: Literal["MATCH", "NO_MATCH"] = "NO_MATCH"  # no header: never blocked on a guess

    def to_waf(self) -> dict[str, str]:
        return {
            "FallbackBehavior": self.fallback,
            "HeaderName": self.header_name,
            "Position": self.position,
        }


# Behind CloudFront: the viewer is the last X-Forwarded-For entry (what the features read).
CLOUDFRONT_FORWARDED = ForwardedIPSetMatch()


class PlacementConfig(_Model):
    """Where the engine's rules go and which web ACL priorities it owns."""

    mode: Literal["rule_group", "web_acl"] = "rule_group"
    web_acl_name: str | None = Field(None, pattern=NAME_PATTERN, max_length=MAX_NAME_LENGTH)
    rule_group_suffix: str = Field("rules", pattern=NAME_PATTERN, max_length=60)
    rule_group_capacity: int = Field(500, ge=1, le=MAX_CAPACITY_WCU)
    priority_min: int = Field(100, ge=0)
    priority_max: int = Field(199, ge=0)
    web_acl_wcu_budget: int = Field(1500, ge=1, le=MAX_CAPACITY_WCU)

    @model_validator(mode="after")
    def _range(self) -> PlacementConfig:
        if self.priority_max < self.priority_min:
            raise ValueError("placement: priority_max must be >= priority_min")
        if self.priority_min <= SHIELD_RULE_PRIORITY <= self.priority_max:
            raise ValueError(
                f"placement: the range must not include {SHIELD_RULE_PRIORITY} (Shield's rule)"
            )
        return self


class ShieldProtectionConfig(_Model):
    name: str = Field(pattern=r"^[ a-zA-Z0-9_.\-]+$", min_length=1, max_length=80)
    resource_arn: str = Field(pattern=r"^arn:aws.*")
    auto_response: Literal["off", "count", "block"] = "count"


class ShieldConfig(_Model):
    """Shield Advanced; automatic response starts in Count, Block needs ``allow_block``."""

    enabled: bool = False
    allow_block: bool = False
    protections: list[ShieldProtectionConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _block_policy(self) -> ShieldConfig:
        arns = [p.resource_arn for p in self.protections]
        if len(set(arns)) != len(arns):
            raise ValueError("shield.protections: a resource_arn is listed twice")
        for prot in self.protections:
            if prot.auto_response == "block" and not self.allow_block:
                raise ValueError(
                    f"shield protection {prot.name!r}: auto_response='block' needs "
                    "shield.allow_block = true (start in 'count')"
                )
            if prot.auto_response != "off" and not _auto_response_capable(prot.resource_arn):
                raise ValueError(
                    f"shield protection {prot.name!r}: automatic response works only for "
                    "CloudFront distributions and Application Load Balancers"
                )
        return self


def _auto_response_capable(arn: str) -> bool:
    return ":distribution/" in arn or ":loadbalancer/app/" in arn


class CompilerConfig(_Model):
    """Everything the compiler needs besides the decisions and ``now``."""

    owner_prefix: str = Field(
        "wafsmith-", pattern=r"^[A-Za-z0-9_\-]+$", min_length=1, max_length=40
    )
    scope: Literal["REGIONAL", "CLOUDFRONT"] = "REGIONAL"
    count_only: bool = False
    categories: list[Category] = Field(
        default_factory=lambda: ["block", "challenge", "captcha", "count", "rate_limit"]
    )
    aggregate: bool = True
    max_entries: int = Field(100_000, ge=1)
    max_entries_per_set: int = Field(MAX_ADDRESSES_PER_IP_SET, ge=1, le=MAX_ADDRESSES_PER_IP_SET)
    max_shards: int = Field(4, ge=1, le=16)
    min_shards: int = Field(1, ge=1, le=16)
    allowlist: list[str] = Field(default_factory=list)
    rate_limit_decisions: RateLimitDecisionsConfig = Field(default_factory=RateLimitDecisionsConfig)
    rate_limits: list[RateProtectionConfig] = Field(default_factory=list)
    placement: PlacementConfig = Field(default_factory=PlacementConfig)
    shield: ShieldConfig = Field(default_factory=ShieldConfig)
    rule_decisions: RuleDecisionsConfig = Field(default_factory=RuleDecisionsConfig)
    # None: IP-set rules match the source address. Set (or chosen by the engine when it read
    # viewers from X-Forwarded-For behind CloudFront): they match the forwarded address.
    ip_sets_forwarded_ip: ForwardedIPSetMatch | None = None

    @field_validator("max_shards", "min_shards")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError("shard counts must be a power of two (1, 2, 4, 8, 16)")
        return value

    @field_validator("allowlist")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        out = []
        for text in value:
            try:
                out.append(netaddr.network_text(*netaddr.parse_network(text, strict=False)))
            except netaddr.AddressError as exc:
                raise ValueError(f"allowlist entry: {exc}") from None
        return out

    @model_validator(mode="after")
    def _consistency(self) -> CompilerConfig:
        if self.min_shards > self.max_shards:
            raise ValueError("min_shards must be <= max_shards")
        if len(set(self.categories)) != len(self.categories):
            raise ValueError("categories: an entry is listed twice")
        names = [r.name for r in self.rate_limits]
        if len(set(names)) != len(names):
            raise ValueError("rate_limits: a rule name is listed twice")
        slots = [s for s in protection_slots(self).values()]
        if len(set(slots)) != len(slots):
            raise ValueError("rate_limits: two rules share a slot")
        span = self.placement.priority_max - self.placement.priority_min
        if (
            self.placement.mode == "web_acl"
            and max(slots, default=RATE_LIMIT_DECISIONS_SLOT) > span
        ):
            raise ValueError(
                f"placement: priority range {self.placement.priority_min}..."
                f"{self.placement.priority_max} is too small for slot {max(slots)}"
            )
        return self


def protection_slots(config: CompilerConfig) -> dict[str, int]:
    """Fixed priority offset of each configured rate rule: its ``slot``, else 10 + position."""
    return {
        r.name: r.slot if r.slot is not None else FIRST_PROTECTION_SLOT + i
        for i, r in enumerate(config.rate_limits)
    }


def load_config(path: str | Path | None) -> CompilerConfig:
    """Read a compiler config from TOML (a top-level ``[compiler]`` table or the bare table).

    ``None`` gives the defaults. Any problem raises ``ConfigError`` naming the setting.
    """
    if path is None:
        return CompilerConfig()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
    if "compiler" in data:
        data = data["compiler"]
    return config_from_dict(data, source=str(path))


def config_from_dict(data: dict[str, Any], *, source: str = "config") -> CompilerConfig:
    try:
        return CompilerConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{source}: {problems}") from None


def with_allowlist(config: CompilerConfig, extra: Iterable[str]) -> CompilerConfig:
    """``config`` whose allowlist also holds ``extra`` (e.g. the ledger's, managed by admins).

    An ``extra`` entry the address rules refuse (a ledger row stored before them, such as a
    scoped IPv6 address) names no address WAF can see; it is left out rather than failing
    every compile."""
    readable = []
    for entry in extra:
        try:
            readable.append(netaddr.network_text(*netaddr.parse_network(str(entry), strict=False)))
        except netaddr.AddressError:
            continue
    merged = sorted({*config.allowlist, *readable})
    return config_from_dict({**config.model_dump(), "allowlist": merged}, source="allowlist")
