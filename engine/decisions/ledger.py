"""The decision ledger: the single source of truth for what wafsmith enforces.

Decisions live through ``proposed → approved | rejected; approved → applied → expired |
revoked`` (``engine.schema.decision.TRANSITIONS``). Every move is checked against that table,
written with optimistic concurrency (a ``version`` column) and recorded as an append-only
audit event: who (an analyst or ``policy:<rule>``), when (the injected clock), from, to, why.
A proposal for a client and action that already has an open decision merges into it, so a
sustained attack stays one decision. Allowlisted ranges can never be approved.
"""

from __future__ import annotations

import builtins
import os
import uuid
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from engine.core.clock import Clock
from engine.core.errors import ConfigError
from engine.core.lease import FencingToken, LeaseHolder
from engine.decisions import db
from engine.decisions.admin import LedgerAdmin
from engine.decisions.errors import AllowlistedClient, ConcurrentUpdate, UnknownDecision
from engine.decisions.lease import check_epoch, read_holder
from engine.decisions.ledger_rows import (
    SELECT_OPEN,
    actor_name,
    audit_row,
    columns,
    merge,
    parse_cursor,
    to_decision,
    to_entry,
    to_event,
)
from engine.decisions.records import AuditEvent, LedgerEntry, Page
from engine.schema.decision import ENFORCEABLE, Decision, DecisionError, Status, normalize_client

DATABASE_URL_ENV = "WAFSMITH_DATABASE_URL"
MAX_PAGE = 1000
TTL_ACTOR = "policy:ttl"
# Decisions that count as a past offence for escalation (revoked = lifted as a mistake).
OFFENCE_STATUSES = (Status.APPROVED, Status.APPLIED, Status.EXPIRED)


class Ledger(LedgerAdmin):
    """Stores decisions, their audit trail, the policy, the allowlist, API tokens and status.

    Open one with ``Ledger.open(url, clock=...)``; it is safe to share between threads (each
    call uses its own pooled connection and transaction).
    """

    # -- life cycle -------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str | None = None, *, clock: Clock, data_dir: Path | None = None) -> Ledger:
        """Connect and migrate to the newest schema.

        ``url`` falls back to ``$WAFSMITH_DATABASE_URL``, then to ``<data_dir>/wafsmith.db``
        (SQLite, WAL). Raises ``ConfigError`` when none is given.
        """
        url = url or os.environ.get(DATABASE_URL_ENV)
        if not url:
            if data_dir is None:
                raise ConfigError(
                    f"ledger: give a database URL, set {DATABASE_URL_ENV} or pass data_dir"
                )
            Path(data_dir).mkdir(parents=True, exist_ok=True)
            url = db.sqlite_url(Path(data_dir))
        engine = db.open_engine(url)
        return cls(engine, clock=clock)

    # -- decisions --------------------------------------------------------------------------

    def propose(self, decision: Decision, *, by: str = "engine") -> Decision:
        """Store a proposal, or merge it into the open decision for the same client and action.

        A merge keeps the higher score and confidence, appends new reasons, evidence (newest
        ``MAX_EVIDENCE``) and members, and extends the expiry to the later of the two; it is
        audited with ``from_status == to_status``. An approved or applied decision that has
        already lapsed by the proposal's ``decided_at`` is expired first, so the proposal
        starts a new decision that needs approval again.
        """
        return self.propose_many([decision], by=by)[0]

    def propose_many(
        self, decisions: Iterable[Decision], *, by: str = "engine"
    ) -> builtins.list[Decision]:
        """``propose`` a whole batch in one transaction; returns the stored decision of each.

        Duplicates inside the batch fold together before they are stored. If concurrent
        writers keep racing on the same (client, action), ``ConcurrentUpdate`` is raised.
        """
        batch = builtins.list(decisions)
        for decision in batch:
            if decision.status is not Status.PROPOSED:
                raise DecisionError(f"propose takes proposals, got status {decision.status.value}")
        actor = actor_name(by)
        for _attempt in range(5):
            try:
                with self._write() as conn:
                    return self._propose_batch(conn, batch, by=actor)
            except ConcurrentUpdate:
                continue  # merged concurrently by another writer: merge again on top
            except IntegrityError:
                taken = [d.id for d in batch if d.id is not None and self._exists(d.id)]
                if taken:
                    raise DecisionError(f"decision id(s) already exist: {taken}") from None
                continue  # another writer opened the same (client, action): merge into it
        raise ConcurrentUpdate("could not store the proposals: concurrent writers keep racing")

    def _propose_batch(
        self, conn: Connection, batch: builtins.list[Decision], *, by: str
    ) -> builtins.list[Decision]:
        now = self._clock.now()
        folded: dict[tuple[str, str], Decision] = {}
        for new in batch:
            key = (new.client, new.action.value)
            folded[key] = merge(folded[key], new) if key in folded else new
        open_rows: dict[tuple[str, str], Row] = {}
        clients = sorted({client for client, _action in folded})
        for start in range(0, len(clients), 500):
            chunk = clients[start : start + 500]
            for row in conn.execute(SELECT_OPEN, {"clients": chunk}):
                open_rows[(row.client, row.action)] = row
        stored: dict[tuple[str, str], Decision] = {}
        inserts: builtins.list[dict[str, Any]] = []
        audits: builtins.list[dict[str, Any]] = []
        for key, new in folded.items():
            row = open_rows.get(key)
            if (
                row is not None
                and row.status != Status.PROPOSED
                and (row.expires_at <= new.decided_at)
            ):
                self._move(conn, row, Status.EXPIRED, by=TTL_ACTOR, comment="lapsed", now=now)
                row = None
            if row is None:
                decision = replace(new, id=new.id or uuid.uuid4().hex)
                inserts.append(
                    {**columns(decision), "created_at": now, "updated_at": now, "version": 1}
                )
                why = "; ".join(decision.reasons) or None
                audits.append(audit_row(decision.id, "decision", by, None, "proposed", why, now))
            else:
                decision = merge(to_decision(row), new)
                self._update(conn, row, decision, now=now)
                comment = (
                    f"merged duplicate proposal from {new.detector} (score {new.score:.2f}); "
                    f"expires {decision.expires_at.isoformat()}"
                )
                audits.append(
                    audit_row(row.id, "decision", by, row.status, row.status, comment, now)
                )
            stored[key] = decision
        if inserts:
            conn.execute(db.decisions.insert(), inserts)
        if audits:
            conn.execute(db.audit_events.insert(), audits)
        return [stored[(d.client, d.action.value)] for d in batch]

    def get(self, decision_id: str) -> Decision:
        """The decision with this id; raises ``UnknownDecision``."""
        return self.entry(decision_id).decision

    def entry(self, decision_id: str) -> LedgerEntry:
        """The decision with its version and timestamps; raises ``UnknownDecision``."""
        with self._read() as conn:
            return to_entry(self._fetch(conn, decision_id))

    def list(
        self,
        *,
        state: Status | str | None = None,
        client: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Decision]:
        """Decisions, newest first, optionally by state and/or exact client; keyset pages."""
        if not 1 <= int(limit) <= MAX_PAGE:
            raise DecisionError(f"limit must be within 1..{MAX_PAGE}, got {limit}")
        d = db.decisions
        where = []
        if state is not None:
            try:
                where.append(d.c.status == Status(state).value)
            except ValueError:
                raise DecisionError(f"unknown state {state!r}") from None
        if client is not None:
            where.append(d.c.client == normalize_client(client))
        query = sa.select(d).where(*where).order_by(d.c.seq.desc()).limit(limit + 1)
        if cursor is not None:
            query = query.where(d.c.seq < parse_cursor(cursor))
        with self._read() as conn:
            rows = conn.execute(query).all()
            total = conn.execute(sa.select(sa.func.count()).select_from(d).where(*where))
            total = int(total.scalar_one())
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = str(rows[-1].seq) if more else None
        return Page([to_decision(r) for r in rows], next_cursor, total)

    def approve(
        self,
        decision_id: str,
        *,
        by: str,
        comment: str | None = None,
        expected_version: int | None = None,
    ) -> Decision:
        """proposed → approved; refused for allowlisted clients (``AllowlistedClient``)."""
        return self._transition(decision_id, Status.APPROVED, by, comment, expected_version)

    def reject(
        self,
        decision_id: str,
        *,
        by: str,
        comment: str | None = None,
        expected_version: int | None = None,
    ) -> Decision:
        """proposed → rejected."""
        return self._transition(decision_id, Status.REJECTED, by, comment, expected_version)

    def revoke(
        self,
        decision_id: str,
        *,
        by: str,
        comment: str | None = None,
        expected_version: int | None = None,
    ) -> Decision:
        """approved | applied → revoked: lift a block early."""
        return self._transition(decision_id, Status.REVOKED, by, comment, expected_version)

    def mark_applied(
        self, decision_ids: Iterable[str], *, by: str, fence: FencingToken | None = None
    ) -> builtins.list[Decision]:
        """approved → applied for each id, in one transaction (already applied: unchanged).

        Any other status raises ``IllegalTransition`` and marks none of them. With ``fence``
        (the enforcer lease's token) the same transaction first checks that the lease is
        still at its epoch, and raises ``LeaseLost`` marking none when it moved on.
        """
        now = self._clock.now()
        out = []
        with self._write() as conn:
            if fence is not None:
                check_epoch(conn, fence)
            for decision_id in decision_ids:
                row = self._fetch(conn, decision_id)
                if row.status == Status.APPLIED:
                    out.append(to_decision(row))
                    continue
                out.append(self._move(conn, row, Status.APPLIED, by=actor_name(by), now=now))
        return out

    def expire_due(self, now: datetime | None = None) -> builtins.list[Decision]:
        """approved | applied decisions whose expiry is at or before ``now`` → expired."""
        now = now or self._clock.now()
        d = db.decisions
        with self._write() as conn:
            rows = conn.execute(
                sa.select(d)
                .where(d.c.status.in_([s.value for s in ENFORCEABLE]), d.c.expires_at <= now)
                .order_by(d.c.seq)
            ).all()
            return [
                self._move(conn, r, Status.EXPIRED, by=TTL_ACTOR, comment="TTL elapsed", now=now)
                for r in rows
            ]

    def reject_lapsed(self, now: datetime | None = None) -> builtins.list[Decision]:
        """Proposals nobody decided before their expiry → rejected by ``policy:ttl``.

        Approving them could no longer enforce anything; closing them keeps the analysts'
        queue to what still matters. A later proposal for the client starts afresh.
        """
        now = now or self._clock.now()
        d = db.decisions
        with self._write() as conn:
            rows = conn.execute(
                sa.select(d)
                .where(d.c.status == Status.PROPOSED.value, d.c.expires_at <= now)
                .order_by(d.c.seq)
            ).all()
            why = "lapsed before anyone decided"
            return [
                self._move(conn, r, Status.REJECTED, by=TTL_ACTOR, comment=why, now=now)
                for r in rows
            ]

    def enforceable(self, now: datetime | None = None) -> builtins.list[Decision]:
        """Approved or applied decisions not expired at ``now``: what the compiler compiles."""
        now = now or self._clock.now()
        d = db.decisions
        query = (
            sa.select(d)
            .where(d.c.status.in_([s.value for s in ENFORCEABLE]), d.c.expires_at > now)
            .order_by(d.c.seq)
        )
        with self._read() as conn:
            return [to_decision(r) for r in conn.execute(query)]

    def lease_holder(self, name: str) -> LeaseHolder | None:
        """Who holds (or last held) the enforcer lease ``name`` (``engine.decisions.lease``)."""
        with self._read() as conn:
            return read_holder(conn, name)

    def audit(self, decision_id: str) -> builtins.list[AuditEvent]:
        """The decision's audit trail, oldest first; raises ``UnknownDecision``."""
        a = db.audit_events
        with self._read() as conn:
            self._fetch(conn, decision_id)
            rows = conn.execute(
                sa.select(a).where(a.c.decision_id == decision_id).order_by(a.c.id)
            ).all()
        return [to_event(r) for r in rows]

    def admin_audit(self, *, limit: int = 100) -> builtins.list[AuditEvent]:
        """Recent policy, allowlist and token events, newest first."""
        a = db.audit_events
        query = sa.select(a).where(a.c.decision_id.is_(None)).order_by(a.c.id.desc()).limit(limit)
        with self._read() as conn:
            return [to_event(r) for r in conn.execute(query)]

    def counts_by_state(self) -> dict[str, int]:
        """Number of decisions in each state (every state present, zeros included)."""
        d = db.decisions
        query = sa.select(d.c.status, sa.func.count()).group_by(d.c.status)
        with self._read() as conn:
            found = {status: int(n) for status, n in conn.execute(query)}
        return {s.value: found.get(s.value, 0) for s in Status}

    def offence_count(self, client: str, *, since: datetime | None = None) -> int:
        """Past enforced decisions (approved, applied or expired) against exactly ``client``.

        Counts those decided since ``since`` (default: now minus the policy's
        ``offence_window_s``); the escalation ladder turns the count into an action.
        """
        client = normalize_client(client)
        return self.offence_counts([client], since=since)[client]

    def offence_counts(
        self, clients: Iterable[str], *, since: datetime | None = None
    ) -> dict[str, int]:
        """``offence_count`` for many clients in one query per 500 (zeros included)."""
        wanted = sorted({normalize_client(c) for c in clients})
        if since is None:
            since = self._clock.now() - timedelta(seconds=self.policy().offence_window_s)
        d = db.decisions
        counts = dict.fromkeys(wanted, 0)
        with self._read() as conn:
            for start in range(0, len(wanted), 500):
                query = (
                    sa.select(d.c.client, sa.func.count())
                    .where(
                        d.c.client.in_(wanted[start : start + 500]),
                        d.c.status.in_([s.value for s in OFFENCE_STATUSES]),
                        d.c.decided_at >= since,
                    )
                    .group_by(d.c.client)
                )
                counts.update({client: int(n) for client, n in conn.execute(query)})
        return counts

    # -- transitions ------------------------------------------------------------------------

    def _transition(
        self,
        decision_id: str,
        to: Status,
        by: str,
        comment: str | None,
        expected_version: int | None,
    ) -> Decision:
        now = self._clock.now()
        with self._write() as conn:
            row = self._fetch(conn, decision_id)
            if expected_version is not None and row.version != expected_version:
                raise ConcurrentUpdate(
                    f"decision {decision_id} changed since version {expected_version} "
                    f"(now version {row.version}, {row.status}); reload it and decide again"
                )
            if to is Status.APPROVED:
                hit = self._allowlisted_in(conn, to_decision(row))
                if hit is not None:
                    raise AllowlistedClient(
                        f"decision {decision_id}: client {row.client} is inside allowlisted "
                        f"{hit}; it can never be approved"
                    )
            return self._move(conn, row, to, by=actor_name(by), comment=comment, now=now)

    def _exists(self, decision_id: str) -> bool:
        try:
            self.entry(decision_id)
        except UnknownDecision:
            return False
        return True
