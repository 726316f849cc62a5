"""The decision record: what the engine proposes to do about one client (IP or CIDR).

Detectors and policy produce ``Decision`` proposals; the ledger stores them and moves them
through their life (proposed → approved | rejected; approved → applied → expired | revoked);
the compiler reads only approved, unexpired ones. The JSON form (``to_dict`` / ``from_dict``)
is the one ``wafsmith analyze --json`` writes and ``wafsmith compile --decisions`` reads.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.core import netaddr
from engine.schema.evidence import EvidenceError, EvidenceSample


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "client", normalize_client(self.client))
        try:
            object.__setattr__(self, "action", Action(self.action))
            object.__setattr__(self, "status", Status(self.status))
        except ValueError as exc:
            raise DecisionError(str(exc)) from None
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
        return out

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
