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
import ipaddress
import json
import math
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from engine.core.clock import Clock
from engine.core.errors import ConfigError
from engine.decisions import db, tokens
from engine.decisions.errors import (
    AllowlistedClient,
    ConcurrentUpdate,
    IllegalTransition,
    UnknownDecision,
    UnknownEntry,
)
from engine.decisions.policy import Policy
from engine.decisions.records import AllowlistEntry, AuditEvent, LedgerEntry, Page, StatusDoc
from engine.decisions.tokens import TokenRecord
from engine.schema.decision import (
    ENFORCEABLE,
    TRANSITIONS,
    Action,
    Decision,
    DecisionError,
    Status,
    client_network,
    normalize_client,
)

DATABASE_URL_ENV = "WAFSMITH_DATABASE_URL"
MAX_EVIDENCE = 50  # evidence items kept on a merged decision (newest win)
MAX_PAGE = 1000
TTL_ACTOR = "policy:ttl"
# Decisions that count as a past offence for escalation (revoked = lifted as a mistake).
OFFENCE_STATUSES = (Status.APPROVED, Status.APPLIED, Status.EXPIRED)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Ledger:
    """Stores decisions, their audit trail, the policy, the allowlist, API tokens and status.

    Open one with ``Ledger.open(url, clock=...)``; it is safe to share between threads (each
    call uses its own pooled connection and transaction).
    """

    def __init__(self, engine: Engine, *, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

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
        engine = db.create_engine(url)
        db.upgrade(engine)
        return cls(engine, clock=clock)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        return self._engine

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._engine.connect().execution_options(**db.WRITE) as conn, conn.begin():
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn

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
        actor = _actor(by)
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
            folded[key] = _merge(folded[key], new) if key in folded else new
        open_rows: dict[tuple[str, str], Row] = {}
        clients = sorted({client for client, _action in folded})
        for start in range(0, len(clients), 500):
            chunk = clients[start : start + 500]
            for row in conn.execute(_SELECT_OPEN, {"clients": chunk}):
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
                    {**_columns(decision), "created_at": now, "updated_at": now, "version": 1}
                )
                why = "; ".join(decision.reasons) or None
                audits.append(_audit_row(decision.id, "decision", by, None, "proposed", why, now))
            else:
                decision = _merge(_decision(row), new)
                self._update(conn, row, decision, now=now)
                comment = (
                    f"merged duplicate proposal from {new.detector} (score {new.score:.2f}); "
                    f"expires {decision.expires_at.isoformat()}"
                )
                audits.append(
                    _audit_row(row.id, "decision", by, row.status, row.status, comment, now)
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
            return _entry(self._fetch(conn, decision_id))

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
            query = query.where(d.c.seq < _parse_cursor(cursor))
        with self._read() as conn:
            rows = conn.execute(query).all()
            total = conn.execute(sa.select(sa.func.count()).select_from(d).where(*where))
            total = int(total.scalar_one())
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = str(rows[-1].seq) if more else None
        return Page([_decision(r) for r in rows], next_cursor, total)

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

    def mark_applied(self, decision_ids: Iterable[str], *, by: str) -> builtins.list[Decision]:
        """approved → applied for each id, in one transaction (already applied: unchanged).

        Any other status raises ``IllegalTransition`` and marks none of them.
        """
        now = self._clock.now()
        out = []
        with self._write() as conn:
            for decision_id in decision_ids:
                row = self._fetch(conn, decision_id)
                if row.status == Status.APPLIED:
                    out.append(_decision(row))
                    continue
                out.append(self._move(conn, row, Status.APPLIED, by=_actor(by), now=now))
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
            return [_decision(r) for r in conn.execute(query)]

    def audit(self, decision_id: str) -> builtins.list[AuditEvent]:
        """The decision's audit trail, oldest first; raises ``UnknownDecision``."""
        a = db.audit_events
        with self._read() as conn:
            self._fetch(conn, decision_id)
            rows = conn.execute(
                sa.select(a).where(a.c.decision_id == decision_id).order_by(a.c.id)
            ).all()
        return [_event(r) for r in rows]

    def admin_audit(self, *, limit: int = 100) -> builtins.list[AuditEvent]:
        """Recent policy, allowlist and token events, newest first."""
        a = db.audit_events
        query = sa.select(a).where(a.c.decision_id.is_(None)).order_by(a.c.id.desc()).limit(limit)
        with self._read() as conn:
            return [_event(r) for r in conn.execute(query)]

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
                hit = self._allowlisted_in(conn, _decision(row))
                if hit is not None:
                    raise AllowlistedClient(
                        f"decision {decision_id}: client {row.client} is inside allowlisted "
                        f"{hit}; it can never be approved"
                    )
            return self._move(conn, row, to, by=_actor(by), comment=comment, now=now)

    def _move(
        self,
        conn: Connection,
        row: Row,
        to: Status,
        *,
        by: str,
        now: datetime,
        comment: str | None = None,
    ) -> Decision:
        current = Status(row.status)
        if to not in TRANSITIONS[current]:
            legal = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none"
            raise IllegalTransition(
                f"decision {row.id} is {current.value}; it cannot become {to.value} "
                f"(legal from {current.value}: {legal})"
            )
        decision = _decision(row).with_status(to)
        self._update(conn, row, decision, now=now)
        self._audit(conn, row.id, "decision", by, current, to, comment, now)
        return decision

    def _update(self, conn: Connection, row: Row, decision: Decision, *, now: datetime) -> None:
        params = {**_columns(decision), "updated_at": now, "version": row.version + 1}
        params.update(b_id=row.id, b_version=row.version)
        if conn.execute(_UPDATE_DECISION, params).rowcount != 1:
            raise ConcurrentUpdate(
                f"decision {row.id} was changed by someone else while this change was being "
                "made; reload it and decide again"
            )

    def _audit(
        self,
        conn: Connection,
        decision_id: str | None,
        subject: str,
        actor: str,
        from_status: str | None,
        to_status: str | None,
        comment: str | None,
        now: datetime,
    ) -> None:
        row = _audit_row(decision_id, subject, actor, from_status, to_status, comment, now)
        conn.execute(db.audit_events.insert(), row)

    def _fetch(self, conn: Connection, decision_id: str) -> Row:
        d = db.decisions
        row = conn.execute(sa.select(d).where(d.c.id == str(decision_id))).first()
        if row is None:
            raise UnknownDecision(f"no decision with id {decision_id!r}")
        return row

    def _exists(self, decision_id: str) -> bool:
        try:
            self.entry(decision_id)
        except UnknownDecision:
            return False
        return True

    # -- policy -----------------------------------------------------------------------------

    def policy(self) -> Policy:
        """The current policy (the built-in default, version 0, until an admin sets one)."""
        p = db.policy
        with self._read() as conn:
            row = conn.execute(sa.select(p).order_by(p.c.version.desc()).limit(1)).first()
        if row is None:
            return Policy()
        return Policy.model_validate({**row.document, "version": row.version})

    def set_policy(self, policy: Policy | dict[str, Any], *, by: str) -> Policy:
        """Store a new policy version (validated, audited); returns it with its version."""
        if not isinstance(policy, Policy):
            policy = Policy.model_validate(policy)
        now = self._clock.now()
        p = db.policy
        with self._write() as conn:
            current = conn.execute(sa.select(sa.func.max(p.c.version))).scalar_one() or 0
            stored = policy.model_copy(update={"version": current + 1})
            document = stored.model_dump(mode="json", exclude={"version"})
            conn.execute(
                p.insert().values(
                    version=stored.version, document=document, created_by=_actor(by), created_at=now
                )
            )
            self._audit(
                conn,
                None,
                "policy",
                _actor(by),
                None,
                None,
                f"policy v{stored.version}: {json.dumps(document, sort_keys=True)}",
                now,
            )
        return stored

    # -- allowlist --------------------------------------------------------------------------

    def add_allowlist(self, cidr: str, *, by: str, comment: str | None = None) -> AllowlistEntry:
        """Allowlist a range (no /0). Open decisions overlapping it are rejected or revoked."""
        cidr = normalize_client(cidr)
        network = client_network(cidr)
        now = self._clock.now()
        a = db.allowlist
        with self._write() as conn:
            row = conn.execute(sa.select(a).where(a.c.cidr == cidr)).first()
            if row is not None:
                return _allow_entry(row)
            conn.execute(
                a.insert().values(cidr=cidr, comment=comment, created_by=_actor(by), created_at=now)
            )
            self._audit(conn, None, f"allowlist:{cidr}", _actor(by), None, "added", comment, now)
            d = db.decisions
            for r in conn.execute(sa.select(d).where(d.c.status.in_(db.OPEN_STATUSES))).all():
                if _overlaps(_decision(r), [network]) is None:
                    continue
                to = Status.REJECTED if r.status == Status.PROPOSED else Status.REVOKED
                self._move(
                    conn, r, to, by=_actor(by), comment=f"client allowlisted ({cidr})", now=now
                )
        return AllowlistEntry(cidr, comment, _actor(by), now)

    def remove_allowlist(self, cidr: str, *, by: str) -> None:
        """Remove an allowlisted range; raises ``UnknownEntry`` if it is not listed."""
        cidr = normalize_client(cidr)
        a = db.allowlist
        with self._write() as conn:
            if conn.execute(a.delete().where(a.c.cidr == cidr)).rowcount != 1:
                raise UnknownEntry(f"{cidr} is not allowlisted")
            self._audit(
                conn,
                None,
                f"allowlist:{cidr}",
                _actor(by),
                "added",
                "removed",
                None,
                self._clock.now(),
            )

    def allowlist(self) -> builtins.list[AllowlistEntry]:
        a = db.allowlist
        with self._read() as conn:
            return [_allow_entry(r) for r in conn.execute(sa.select(a).order_by(a.c.cidr))]

    def allowlist_networks(self) -> builtins.list[Network]:
        return [client_network(e.cidr) for e in self.allowlist()]

    def allowlisted(
        self, decision: Decision, *, networks: builtins.list[Network] | None = None
    ) -> str | None:
        """The allowlisted range ``decision`` would block (its members, else its client)."""
        return _overlaps(decision, self.allowlist_networks() if networks is None else networks)

    def _allowlisted_in(self, conn: Connection, decision: Decision) -> str | None:
        rows = conn.execute(sa.select(db.allowlist.c.cidr)).scalars().all()
        return _overlaps(decision, [client_network(c) for c in rows])

    # -- API tokens and status --------------------------------------------------------------

    def create_token(self, name: str, role: str) -> tuple[str, TokenRecord]:
        """A new API token: (plaintext to show once, stored record)."""
        now = self._clock.now()
        with self._write() as conn:
            plaintext, record = tokens.create_token(conn, name=name, role=role, now=now)
            self._audit(
                conn,
                None,
                f"token:{record.id}",
                "cli",
                None,
                "created",
                f"{record.name} ({record.role.value})",
                now,
            )
        return plaintext, record

    def verify_token(self, plaintext: str) -> TokenRecord | None:
        """The live token behind ``plaintext`` (its ``last_used_at`` refreshed), else None."""
        with self._read() as conn:
            record = tokens.find_token(conn, plaintext)
        now = self._clock.now()
        if record is not None and tokens.needs_touch(record, now):
            with self._write() as conn:
                tokens.touch_token(conn, record.id, now=now)
            record = replace(record, last_used_at=now)
        return record

    def list_tokens(self) -> builtins.list[TokenRecord]:
        with self._read() as conn:
            return tokens.list_tokens(conn)

    def revoke_token(self, token_id: str, *, by: str = "cli") -> TokenRecord:
        """Revoke a token for good; raises ``UnknownEntry``."""
        now = self._clock.now()
        with self._write() as conn:
            record = tokens.revoke_token(conn, token_id)
            self._audit(
                conn, None, f"token:{token_id}", _actor(by), "created", "revoked", None, now
            )
        return record

    def put_status(self, key: str, document: dict[str, Any]) -> None:
        """Publish a JSON status document under ``key`` (replacing the previous one)."""
        with self._write() as conn:
            tokens.put_status(conn, key, document, now=self._clock.now())

    def get_status(self, key: str) -> StatusDoc | None:
        with self._read() as conn:
            return tokens.get_status(conn, key)


# -- statements built once (SQLAlchemy caches their compiled form) ----------------------------

_D = db.decisions
_SELECT_OPEN = (
    sa.select(_D)
    .where(
        _D.c.client.in_(sa.bindparam("clients", expanding=True)),
        _D.c.status.in_(db.OPEN_STATUSES),
    )
    .with_for_update()
)
_UPDATE_DECISION = _D.update().where(
    _D.c.id == sa.bindparam("b_id"), _D.c.version == sa.bindparam("b_version")
)


def _audit_row(
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


def _actor(by: str) -> str:
    by = str(by).strip()
    if not by or len(by) > 256:
        raise DecisionError("the actor (by) must be 1..256 characters")
    return by


def _columns(decision: Decision) -> dict[str, Any]:
    return {
        "id": decision.id,
        "client": decision.client,
        "action": decision.action.value,
        "status": decision.status.value,
        "score": float(decision.score),
        "confidence": float(decision.confidence),
        "detector": decision.detector,
        "reasons": [str(r) for r in decision.reasons],
        "evidence": _plain(list(decision.evidence), "evidence"),
        "members": list(decision.members),
        "ttl_s": decision.ttl_s,
        "decided_at": decision.decided_at,
        "expires_at": decision.expires_at,
    }


def _plain(value: Any, where: str) -> Any:
    """``value`` as plain JSON (NumPy scalars, datetimes, tuples and sets converted).

    Non-finite floats become their text (``"nan"``, ``"inf"``) because PostgreSQL's JSON
    refuses them; anything else unknown is refused with the path to it.
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(items)]
    item = getattr(value, "item", None)  # NumPy / Arrow scalars
    if callable(item):
        try:
            return _plain(item(), where)
        except (TypeError, ValueError):
            pass
    tolist = getattr(value, "tolist", None)  # NumPy arrays
    if callable(tolist):
        return _plain(tolist(), where)
    raise DecisionError(f"{where} holds a {type(value).__name__}, which is not JSON")


def _decision(row: Row) -> Decision:
    return Decision(
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
    )


def _entry(row: Row) -> LedgerEntry:
    return LedgerEntry(_decision(row), int(row.version), row.created_at, row.updated_at)


def _event(row: Row) -> AuditEvent:
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


def _allow_entry(row: Row) -> AllowlistEntry:
    return AllowlistEntry(row.cidr, row.comment, row.created_by, row.created_at)


def _merge(old: Decision, new: Decision) -> Decision:
    """``old`` refreshed by a duplicate proposal ``new`` (same client and action)."""
    decided_at = max(old.decided_at, new.decided_at)
    expires_at = max(old.expires_at, new.expires_at)
    seen = {json.dumps(e, sort_keys=True, default=str) for e in old.evidence}
    fresh = [e for e in new.evidence if json.dumps(e, sort_keys=True, default=str) not in seen]
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


def _overlaps(decision: Decision, networks: Iterable[Network]) -> str | None:
    nets = [n for n in networks]
    if not nets:
        return None
    for client in decision.members or (decision.client,):  # what the compiler blocks
        mine = client_network(client)
        for net in nets:
            if mine.version == net.version and mine.overlaps(net):
                return str(net)
    return None


def _parse_cursor(cursor: str) -> int:
    try:
        value = int(cursor)
    except (TypeError, ValueError):
        raise DecisionError(f"bad cursor {cursor!r}") from None
    if value < 0:
        raise DecisionError(f"bad cursor {cursor!r}")
    return value
