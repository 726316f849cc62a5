"""Small records the ledger returns besides ``Decision``: pages, audit events, entries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from engine.schema.decision import Decision

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list; pass ``next_cursor`` back to get the next (None at the end)."""

    items: list[T]
    next_cursor: str | None
    total: int


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One append-only audit record: who moved what from which status to which, and why.

    ``subject`` is ``"decision"`` for decision events and e.g. ``"policy"``,
    ``"allowlist:10.0.0.0/8"`` or ``"token:<id>"`` for administrative ones. A merge of a
    duplicate proposal is recorded with ``from_status == to_status``.
    """

    id: int
    decision_id: str | None
    subject: str
    at: datetime
    actor: str
    from_status: str | None
    to_status: str | None
    comment: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "decision_id": self.decision_id,
            "subject": self.subject,
            "at": _iso(self.at),
            "actor": self.actor,
            "from_status": self.from_status,
            "to_status": self.to_status,
            "comment": self.comment,
        }


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A stored decision with its bookkeeping (``version`` for optimistic concurrency)."""

    decision: Decision
    version: int
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        out = self.decision.to_dict()
        out["expires_at"] = _iso(self.decision.expires_at)
        out["version"] = self.version
        out["created_at"] = _iso(self.created_at)
        out["updated_at"] = _iso(self.updated_at)
        return out


@dataclass(frozen=True, slots=True)
class AllowlistEntry:
    """A range that is never blocked."""

    cidr: str
    comment: str | None
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StatusDoc:
    """A status document the running engine published, and when."""

    key: str
    document: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
