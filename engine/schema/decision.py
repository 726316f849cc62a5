"""The decision record: what the engine proposes to do about one client (IP or CIDR), or,
for a rule-level decision (``rule`` set), about one scope of requests (a path, a method, a host).

Detectors and policy produce ``Decision`` proposals; the ledger stores them and moves them
through their life (proposed → approved | rejected; approved → applied → expired | revoked);
the compiler reads only approved, unexpired ones. The JSON form (``to_dict`` / ``from_dict``)
is the one ``wafsmith analyze --json`` writes and ``wafsmith compile --decisions`` reads.

A rule-level decision answers a campaign too spread to block by address (residential proxies,
one or two attempts per address): its ``rule`` (``RuleAnswer``) is compiled into one WAF rule
on the attacked path (a rate-based rule, or a challenge/CAPTCHA), its ``members`` keep the
campaign's addresses for the analyst, and its ``client`` names the scope (``RuleAnswer.subject``,
e.g. ``"rule POST /login"``) so duplicate proposals for the same scope merge like any other.
The JSON form carries ``rule`` only when set: every older decision document still loads.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.core import netaddr
from engine.schema.evidence import EvidenceError, EvidenceSample
from engine.schema.waf_limits import RATE_LIMIT_MAX, RATE_LIMIT_MIN, RATE_WINDOWS_S


class Action(enum.StrEnum):
    """What AWS WAF should do with the client's requests."""

    BLOCK = "block"
    RATE_LIMIT = "rate_limit"
    CHALLENGE = "challenge"
    CAPTCHA = "captcha"
    COUNT = "count"


class Status(enum.StrEnum):
    """A decision's place in its life cycle."""

    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    APPLIED = "applied"
    EXPIRED = "expired"
    REVOKED = "revoked"


# Legal transitions of the decision state machine; the ledger refuses every other one.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PROPOSED: frozenset({Status.APPROVED, Status.REJECTED}),
    Status.APPROVED: frozenset({Status.APPLIED, Status.REVOKED, Status.EXPIRED}),
    Status.APPLIED: frozenset({Status.EXPIRED, Status.REVOKED}),
    Status.REJECTED: frozenset(),
    Status.EXPIRED: frozenset(),
    Status.REVOKED: frozenset(),
}

# Statuses whose decisions the compiler turns into WAF state (while unexpired).
ENFORCEABLE = frozenset({Status.APPROVED, Status.APPLIED})


class DecisionError(ValueError):
    """A decision that cannot exist (bad client, /0, unknown action, bad TTL, ...)."""


def normalize_client(client: str) -> str:
    """Canonical text of an IP or CIDR, e.g. ``"203.0.113.0/24"`` or ``"2001:db8::/48"``.

    The address rules of ``engine.core.netaddr``: a bare address stays bare, an IPv4-mapped
    address is its IPv4 address; a network with host bits set, a /0, a scoped address or
    garbage is refused (``DecisionError``).
    """
    try:
        return netaddr.normalize_client(str(client))
    except netaddr.AddressError as exc:
        raise DecisionError(f"client: {exc}") from None


RULE_KINDS = ("rate_based", "challenge", "captcha")
PATH_MATCHES = ("EXACTLY", "STARTS_WITH")
RULE_AGGREGATES = ("IP", "FORWARDED_IP", "CONSTANT")  # per address, per viewer, the whole scope
RULE_SUBJECT_PREFIX = "rule "
MAX_CLIENT_LENGTH = 64  # the ledger's client column
MAX_RULE_PATH_LENGTH = 200  # a byte-match search string WAF accepts (engine bound, kept short)
# The action each kind may take: a rate rule acts above its limit; the others on every match.
RULE_ACTIONS = {
    "rate_based": frozenset({"block", "challenge", "captcha", "count"}),
    "challenge": frozenset({"challenge", "count"}),
    "captcha": frozenset({"captcha", "count"}),
}


@dataclass(frozen=True, slots=True)
class RuleAnswer:
    """The WAF rule a rule-level decision asks for: its scope and, when rate-based, its limit.

    Scope: ``path`` matched ``EXACTLY`` or ``STARTS_WITH`` (case-sensitive, as WAF matches it),
    optionally one ``method`` and one ``host``. Rate-based: at most ``limit`` requests per
    ``window_s`` (60, 120, 300 or 600 s) per ``aggregate`` key (``IP``, ``FORWARDED_IP`` with
    ``forwarded_header``, or ``CONSTANT``: the whole scope counted together).
    """

    kind: str
    path: str
    path_match: str = "EXACTLY"
    method: str | None = None
    host: str | None = None
    limit: int | None = None
    window_s: int | None = None
    aggregate: str | None = None
    forwarded_header: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in RULE_KINDS:
            raise DecisionError(f"rule.kind must be one of {RULE_KINDS}, got {self.kind!r}")
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise DecisionError(f"rule.path must be a URI path ('/...'), got {self.path!r}")
        if len(self.path) > MAX_RULE_PATH_LENGTH or any(c.isspace() for c in self.path):
            raise DecisionError(
                f"rule.path must be 1..{MAX_RULE_PATH_LENGTH} characters without spaces"
            )
        if self.path_match not in PATH_MATCHES:
            raise DecisionError(f"rule.path_match must be one of {PATH_MATCHES}")
        if self.method is not None:
            if not isinstance(self.method, str) or not self.method.isalpha():
                raise DecisionError(f"rule.method must be an HTTP method, got {self.method!r}")
            object.__setattr__(self, "method", self.method.upper())
        if self.host is not None:
            if not isinstance(self.host, str) or not self.host or any(
                c.isspace() for c in self.host
            ):
                raise DecisionError(f"rule.host must be a host name, got {self.host!r}")
            object.__setattr__(self, "host", self.host.lower())
        if self.kind == "rate_based":
            self._check_rate()
        elif any(v is not None for v in (self.limit, self.window_s, self.aggregate)):
            raise DecisionError(f"a {self.kind} rule has no limit, window_s or aggregate")

    def _check_rate(self) -> None:
        if (
            not isinstance(self.limit, int)
            or isinstance(self.limit, bool)
            or not RATE_LIMIT_MIN <= self.limit <= RATE_LIMIT_MAX
        ):
            raise DecisionError(
                f"rule.limit must be an integer within {RATE_LIMIT_MIN}..{RATE_LIMIT_MAX}, "
                f"got {self.limit!r}"
            )
        if self.window_s not in RATE_WINDOWS_S:
            raise DecisionError(
                f"rule.window_s must be one of {RATE_WINDOWS_S} (WAF's evaluation windows), "
                f"got {self.window_s!r}"
            )
        if self.aggregate not in RULE_AGGREGATES:
            raise DecisionError(f"rule.aggregate must be one of {RULE_AGGREGATES}")
        if (self.aggregate == "FORWARDED_IP") != bool(self.forwarded_header):
            raise DecisionError("rule.forwarded_header is needed by (and only by) FORWARDED_IP")

    @property
    def scope(self) -> str:
        """The scope in words, e.g. ``"POST example.com/login*"`` (``*``: starts with)."""
        star = "*" if self.path_match == "STARTS_WITH" else ""
        return f"{self.method or 'ANY'} {self.host or ''}{self.path}{star}"

    @property
    def subject(self) -> str:
        """The decision's client text: the scope, short enough for the ledger (hashed if not)."""
        text = f"{RULE_SUBJECT_PREFIX}{self.scope}"
        if len(text) <= MAX_CLIENT_LENGTH:
            return text
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        return f"{text[: MAX_CLIENT_LENGTH - 18]}~{digest}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def coerce(cls, value: RuleAnswer | dict[str, Any]) -> RuleAnswer:
        if isinstance(value, RuleAnswer):
            return value
        if not isinstance(value, dict):
            raise DecisionError(f"rule must be an object, got {type(value).__name__}")
        unknown = set(value) - set(cls.__dataclass_fields__)
        if unknown:
            raise DecisionError(f"unknown rule field(s): {sorted(unknown)}")
        if "kind" not in value or "path" not in value:
            raise DecisionError("rule needs 'kind' and 'path'")
        return cls(**value)


@dataclass(frozen=True, slots=True)
class Decision:
    """One proposed or approved action against one client.

    ``decided_at`` is the *event* time at which the engine decided (from the logs' clock, not
    the wall clock); the decision is in force until ``decided_at + ttl_s``.
    """

    client: str
    action: Action
    ttl_s: int
    score: float
    detector: str
    reasons: tuple[str, ...] = ()
    decided_at: datetime = field(default_factory=lambda: datetime.fromtimestamp(0, UTC))
    confidence: float = 0.0
    evidence: tuple[EvidenceSample, ...] = ()  # sample requests, most telling first
    status: Status = Status.PROPOSED
    id: str | None = None
    members: tuple[str, ...] = ()  # for a distributed campaign: the addresses it covers
    rule: RuleAnswer | None = None  # a rule-level decision: the WAF rule it asks for

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "action", Action(self.action))
            object.__setattr__(self, "status", Status(self.status))
        except ValueError as exc:
            raise DecisionError(str(exc)) from None
        if self.rule is None:
            object.__setattr__(self, "client", normalize_client(self.client))
        else:
            rule = RuleAnswer.coerce(self.rule)
            if self.action.value not in RULE_ACTIONS[rule.kind]:
                raise DecisionError(
                    f"a {rule.kind} rule takes action {sorted(RULE_ACTIONS[rule.kind])}, "
                    f"got {self.action.value!r}"
                )
            object.__setattr__(self, "rule", rule)
            object.__setattr__(self, "client", rule.subject)  # the client names the scope
        if not isinstance(self.ttl_s, int) or self.ttl_s <= 0:
            raise DecisionError(f"ttl_s must be a positive integer, got {self.ttl_s!r}")
        if not 0.0 <= float(self.score) <= 1.0:
            raise DecisionError(f"score must be within 0..1, got {self.score!r}")
        if self.decided_at.tzinfo is None:
            raise DecisionError("decided_at must be timezone-aware (UTC)")
        object.__setattr__(self, "reasons", tuple(self.reasons))
        try:
            evidence = tuple(EvidenceSample.coerce(e) for e in self.evidence)
        except EvidenceError as exc:
            raise DecisionError(str(exc)) from None
        object.__setattr__(self, "evidence", evidence)
        object.__setattr__(self, "members", tuple(normalize_client(m) for m in self.members))

    @property
    def expires_at(self) -> datetime:
        return self.decided_at + timedelta(seconds=self.ttl_s)

    def is_active(self, now: datetime) -> bool:
        """True while the decision is enforceable at ``now``."""
        return self.status in ENFORCEABLE and now < self.expires_at

    def with_status(self, status: Status) -> Decision:
        """This decision in ``status`` (a restored old row stays restorable: it can be revoked)."""
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return Decision.restore(**{**fields, "status": Status(status)})

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["action"] = self.action.value
        out["status"] = self.status.value
        out["decided_at"] = self.decided_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        out["reasons"] = list(self.reasons)
        out["evidence"] = [e.to_dict() for e in self.evidence]
        out["members"] = list(self.members)
        if self.rule is None:
            del out["rule"]  # absent, not null: documents stay as they were
        else:
            out["rule"] = self.rule.to_dict()
        return out

    @property
    def is_rule(self) -> bool:
        """True for a rule-level decision (compiled into a WAF rule, not into IP sets)."""
        return self.rule is not None

    @classmethod
    def restore(cls, **fields: Any) -> Decision:
        """A stored decision, kept even when its client or members fail today's address rules
        (a row written before a rule existed, e.g. a scoped IPv6 address).

        Every other field is still validated. Such a decision can be listed and revoked; the
        compiler reports each target it cannot read in its overflow (``invalid_address``)
        instead of failing the whole document.
        """
        try:
            return cls(**fields)
        except DecisionError:
            client, members = fields.get("client"), tuple(fields.get("members", ()))
            checked = cls(**{**fields, "client": "192.0.2.0", "members": ()})  # TEST-NET-1
        object.__setattr__(checked, "client", _as_stored(client))
        object.__setattr__(checked, "members", tuple(_as_stored(m) for m in members))
        return checked

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        """Build a decision from its JSON form; unknown keys are refused."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise DecisionError(f"unknown decision field(s): {sorted(unknown)}")
        missing = {"client", "action", "ttl_s", "score", "detector"} - set(data)
        if missing:
            raise DecisionError(f"decision is missing field(s): {sorted(missing)}")
        kwargs = dict(data)
        if "decided_at" in kwargs:
            kwargs["decided_at"] = parse_time(kwargs["decided_at"])
        return cls(**kwargs)


def _as_stored(client: Any) -> str:
    """A stored client's canonical text where today's rules read it, else its text as is."""
    try:
        return normalize_client(client)
    except DecisionError:
        return str(client)


def parse_time(value: str | datetime) -> datetime:
    """ISO-8601 text (``Z`` allowed) or datetime → aware UTC datetime."""
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise DecisionError(f"not an ISO-8601 time: {value!r}") from None
    if dt.tzinfo is None:
        raise DecisionError(f"time {value!r} has no timezone; use UTC (Z)")
    return dt.astimezone(UTC)
