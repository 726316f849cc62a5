"""Row mapping and shared statements of the ledger tables.

Converts between ``Decision`` and ``ledger_decisions`` rows (evidence as its JSON form), builds
audit rows, merges duplicate proposals and checks allowlist overlap, so the ledger classes
hold only the workflow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from engine.core import netaddr
from engine.decisions import db
from engine.decisions.records import AllowlistEntry, AuditEvent, LedgerEntry
from engine.schema.decision import Action, Decision, DecisionError, Status

MAX_EVIDENCE = 50  # evidence items kept on a merged decision (newest win)


@dataclass(frozen=True, slots=True)
class AllowedRange:
    """One allowlisted range: its CIDR text (host bits clear) and the addresses it spans."""

    cidr: str
    span: netaddr.NetRange

    def __str__(self) -> str:
        return self.cidr


def allowed_ranges(cidrs: Iterable[str]) -> list[AllowedRange]:
    """The ranges of allowlisted texts. A stored entry today's address rules refuse (a row
    written before them, e.g. a scoped IPv6 address) names no client WAF can see: it covers
    nothing, and an admin can still remove it."""
    out = []
    for text in cidrs:
        try:
            version, start, plen = netaddr.parse_network(text, strict=False)
        except netaddr.AddressError:
            continue
        last = start + (1 << (netaddr.BITS[version] - plen)) - 1
        out.append(AllowedRange(netaddr.network_text(version, start, plen), (version, start, last)))
    return out


# -- statements built once (SQLAlchemy caches their compiled form) ----------------------------

_D = db.decisions
SELECT_OPEN = (
    sa.select(_D)
    .where(
        _D.c.client.in_(sa.bindparam("clients", expanding=True)),
        _D.c.status.in_(db.OPEN_STATUSES),
    )
    .with_for_update()
)
UPDATE_DECISION = _D.update().where(
    _D.c.id == sa.bindparam("b_id"), _D.c.version == sa.bindparam("b_version")
)


def audit_row(
    decision_id: str | None,
    subject: str,
    actor: str,
    from_status: str | None,
    to_status: str | None,
    comment: str | None,
    now: datetime,
) -> dict[str, Any]:
    return {
        "decision_id": decision_id,
        "subject": subject,
        "at": now,
        "actor": actor,
        "from_status": None if from_status is None else str(from_status),
        "to_status": None if to_status is None else str(to_status),
        "comment": comment,
    }


# -- row mapping ----------------------------------------------------------------------------


def actor_name(by: str) -> str:
    by = str(by).strip()
    if not by or len(by) > 256:
        raise DecisionError("the actor (by) must be 1..256 characters")
    return by


def columns(decision: Decision) -> dict[str, Any]:
    return {
        "id": decision.id,
        "client": decision.client,
        "action": decision.action.value,
        "status": decision.status.value,
        "score": float(decision.score),
        "confidence": float(decision.confidence),
        "detector": decision.detector,
        "reasons": [str(r) for r in decision.reasons],
        "evidence": [e.to_dict() for e in decision.evidence],
        "members": list(decision.members),
        "rule": None if decision.rule is None else decision.rule.to_dict(),
        "ttl_s": decision.ttl_s,
        "decided_at": decision.decided_at,
        "expires_at": decision.expires_at,
    }


def to_decision(row: Row) -> Decision:
    return Decision.restore(
        client=row.client,
        action=Action(row.action),
        ttl_s=int(row.ttl_s),
        score=float(row.score),
        detector=row.detector,
        reasons=tuple(row.reasons),
        decided_at=row.decided_at,
        confidence=float(row.confidence),
        evidence=tuple(row.evidence),
        status=Status(row.status),
        id=row.id,
        members=tuple(row.members),
        rule=row.rule,
    )


def to_entry(row: Row) -> LedgerEntry:
    return LedgerEntry(to_decision(row), int(row.version), row.created_at, row.updated_at)


def to_event(row: Row) -> AuditEvent:
    return AuditEvent(
        id=int(row.id),
        decision_id=row.decision_id,
        subject=row.subject,
        at=row.at,
        actor=row.actor,
        from_status=row.from_status,
        to_status=row.to_status,
        comment=row.comment,
    )


def to_allow_entry(row: Row) -> AllowlistEntry:
    return AllowlistEntry(row.cidr, row.comment, row.created_by, row.created_at)


def merge(old: Decision, new: Decision) -> Decision:
    """``old`` refreshed by a duplicate proposal ``new`` (same client and action)."""
    decided_at = max(old.decided_at, new.decided_at)
    expires_at = max(old.expires_at, new.expires_at)
    seen = set(old.evidence)
    fresh = [e for e in new.evidence if e not in seen]
    return replace(
        old,
        score=max(old.score, new.score),
        confidence=max(old.confidence, new.confidence),
        reasons=old.reasons + tuple(r for r in new.reasons if r not in old.reasons),
        evidence=(old.evidence + tuple(fresh))[-MAX_EVIDENCE:],
        members=old.members + tuple(m for m in new.members if m not in old.members),
        decided_at=decided_at,
        ttl_s=max(1, math.ceil((expires_at - decided_at).total_seconds())),
    )


def overlaps(decision: Decision, allowed: Iterable[AllowedRange]) -> str | None:
    """The first allowlisted range ``decision`` would block (its members, else its client)."""
    allowed = list(allowed)
    if not allowed or decision.is_rule:  # a rule-level decision lists no address in WAF
        return None
    for client in decision.members or (decision.client,):  # what the compiler blocks
        try:
            version, first, last = netaddr.network_range(client, strict=False)
        except netaddr.AddressError:
            continue  # an old row's unreadable target: never enforced (compiler overflow)
        for a in allowed:
            v, lo, hi = a.span
            if v == version and first <= hi and lo <= last:
                return a.cidr
    return None


def parse_cursor(cursor: str) -> int:
    try:
        value = int(cursor)
    except (TypeError, ValueError):
        raise DecisionError(f"bad cursor {cursor!r}") from None
    if not 0 <= value < 2**63:  # the seq column is a 64-bit integer
        raise DecisionError(f"bad cursor {cursor!r}")
    return value
