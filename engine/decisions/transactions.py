"""Connections, transactions and the audited state-machine step shared by the ledger classes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import SQLAlchemyError

from engine.core.clock import Clock
from engine.decisions import db
from engine.decisions.errors import (
    ConcurrentUpdate,
    IllegalTransition,
    LedgerUnavailable,
    UnknownDecision,
)
from engine.decisions.ledger_rows import UPDATE_DECISION, audit_row, columns, to_decision
from engine.schema.decision import TRANSITIONS, Decision, Status


class LedgerStore:
    """The ledger's database handle: read and write transactions, audited transitions.

    Write transactions take SQLite's write lock at ``BEGIN`` (see ``db.create_engine``); every
    decision update checks the row's ``version`` so a concurrent change is never overwritten.
    """

    def __init__(self, engine: Engine, *, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> LedgerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        return self._engine

    def ping(self) -> None:
        """A round trip to the database; raises ``LedgerUnavailable`` if it does not answer."""
        try:
            with self._engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except SQLAlchemyError as exc:
            raise LedgerUnavailable(
                f"the ledger database does not answer: {exc.__class__.__name__}"
            ) from exc

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._engine.connect().execution_options(**db.WRITE) as conn, conn.begin():
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn

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
        decision = to_decision(row).with_status(to)
        self._update(conn, row, decision, now=now)
        self._audit(conn, row.id, "decision", by, current, to, comment, now)
        return decision

    def _update(self, conn: Connection, row: Row, decision: Decision, *, now: datetime) -> None:
        params = {**columns(decision), "updated_at": now, "version": row.version + 1}
        params.update(b_id=row.id, b_version=row.version)
        if conn.execute(UPDATE_DECISION, params).rowcount != 1:
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
        row = audit_row(decision_id, subject, actor, from_status, to_status, comment, now)
        conn.execute(db.audit_events.insert(), row)

    def _fetch(self, conn: Connection, decision_id: str) -> Row:
        d = db.decisions
        row = conn.execute(sa.select(d).where(d.c.id == str(decision_id))).first()
        if row is None:
            raise UnknownDecision(f"no decision with id {decision_id!r}")
        return row
