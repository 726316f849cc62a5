"""The enforcer lease, kept in the ledger's database: exactly one engine reconciles the WAF.

PostgreSQL: the holder keeps a session-level advisory lock on a dedicated connection. The
lock's key is derived from the lease name and the ledger's schema, so sites (names) and
ledgers (schemas) sharing one database never contend. Acquiring increments the ``epoch`` of
the lease's row in ``ledger_lease``: that epoch is the fencing token. ``check`` (called right
before every AWS write) reads the row on the lock's own connection — if the session is gone,
so is the lock — and refuses when the epoch moved on; ``Ledger.mark_applied`` compares the
epoch in its own transaction. A holder that dies loses its session and so the lock (TCP
keep-alives on the lock's session bound how long a vanished host keeps it); a holder that
hangs stops renewing, and after ``stale_after_s`` a contender ends its session.

SQLite: a SQLite ledger serves one process, so the lease is trivially held: acquiring
always succeeds (a restarted engine need not wait for its crashed predecessor) and ``check``
asks nothing of the database. The row is still written and renewed, so the status API shows
the holder.
"""

from __future__ import annotations

import hashlib
import logging
import threading

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from engine.core.clock import Clock
from engine.core.lease import FencingToken, LeaseHolder, LeaseLost, LeaseUnavailable
from engine.core.logging import log_event
from engine.decisions import db

log = logging.getLogger("wafsmith.lease")

LOCK_NAMESPACE = "wafsmith.enforcer-lease"
TERMINATE_WAIT_MS = 5_000  # how long ending a hung holder's session may take (PostgreSQL ≥ 14)


def lock_key(schema: str, name: str) -> int:
    """The advisory lock's 64-bit key for lease ``name`` in the ledger ``schema``."""
    digest = hashlib.sha256(f"{LOCK_NAMESPACE}\0{schema}\0{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def read_holder(conn: Connection, name: str) -> LeaseHolder | None:
    """The stored row of lease ``name`` (None: never acquired)."""
    row = conn.execute(sa.select(db.lease).where(db.lease.c.name == name)).one_or_none()
    if row is None:
        return None
    return LeaseHolder(row.name, row.instance_id, int(row.epoch), row.since, row.renewed_at)


def check_epoch(conn: Connection, token: FencingToken) -> None:
    """Inside a write transaction: raise ``LeaseLost`` unless the lease is still at
    ``token``'s epoch. The row is read FOR SHARE, so an acquisition (which increments the
    epoch) waits for this transaction to end."""
    query = (
        sa.select(db.lease.c.epoch).where(db.lease.c.name == token.name).with_for_update(read=True)
    )
    epoch = conn.execute(query).scalar_one_or_none()
    if epoch != token.epoch:
        raise LeaseLost(
            f"lease {token.name!r} is at epoch {epoch}, this writer holds epoch {token.epoch}"
        )


class DatabaseLease:
    """The enforcer lease ``name`` for this process (``instance_id``) over a ledger engine.

    ``try_acquire`` never blocks; ``check`` is the ``engine.core.lease.Fence`` the enforcer
    calls before each write (it renews the row when ``period_s / 2`` has passed);
    ``release`` gives the lease up. Safe to call from several threads. With ``heartbeat`` a
    daemon thread checks (so renews) the held lease every ``period_s / 2`` of real time, so a
    long loop step (a large object, a paced cycle) does not make a healthy holder look hung;
    a frozen process (a GC pause, a stopped VM) freezes its heartbeat too.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        name: str,
        instance_id: str,
        clock: Clock,
        period_s: float = 5.0,
        stale_after_s: float = 60.0,
        heartbeat: bool = False,
    ) -> None:
        if not 0 < period_s < stale_after_s:
            raise ValueError(
                f"lease: need 0 < period_s < stale_after_s, got {period_s}, {stale_after_s}"
            )
        self.engine = engine
        self.name = name
        self.instance_id = instance_id
        self.clock = clock
        self.period_s = period_s
        self.stale_after_s = stale_after_s
        self.postgres = engine.dialect.name == "postgresql"
        self.heartbeat = heartbeat
        self._beating: threading.Event | None = None  # set: the heartbeat thread stops
        self._mutex = threading.RLock()
        self._conn: Connection | None = None  # PostgreSQL: the session holding the lock
        self._key: int | None = None
        self._token: FencingToken | None = None
        self._renewed_at = 0.0  # monotonic

    # -- state -------------------------------------------------------------------------------

    @property
    def token(self) -> FencingToken | None:
        """The fencing token while this process believes it holds the lease."""
        return self._token

    @property
    def held(self) -> bool:
        return self._token is not None

    def holder(self) -> LeaseHolder | None:
        """Who holds (or last held) the lease, as stored."""
        with self.engine.connect() as conn:
            return read_holder(conn, self.name)

    # -- acquiring ---------------------------------------------------------------------------

    def try_acquire(self) -> bool:
        """Take the lease if nobody holds it (True), else False; True at once if held.
        Raises ``LeaseUnavailable`` when the database cannot be asked."""
        with self._mutex:
            if self._token is not None:
                return True
            conn = None
            try:
                if self.postgres:
                    conn = self._lock_session()
                    if conn is None:
                        return False
                epoch = self._increment_epoch(conn)
            except SQLAlchemyError as exc:
                if conn is not None:
                    conn.invalidate()
                raise LeaseUnavailable(
                    f"lease {self.name!r}: the ledger database did not answer: {exc}"
                ) from exc
            self._conn = conn
            self._token = FencingToken(self.name, epoch)
            self._renewed_at = self.clock.monotonic()
            if self.heartbeat:
                self._start_heartbeat()
        log_event(log, "lease_acquired", lease=self.name, instance=self.instance_id, epoch=epoch)
        return True

    def _start_heartbeat(self) -> None:
        stop = self._beating = threading.Event()

        def beat() -> None:
            while not stop.wait(self.period_s / 2):
                try:
                    self.check()
                except LeaseLost:
                    return  # logged by check; the loop finds out at its next check

        threading.Thread(target=beat, name="wafsmith-lease-heartbeat", daemon=True).start()

    def _lock_session(self) -> Connection | None:
        """A dedicated session holding the advisory lock, or None when another session has
        it (after ending a holder's session that stopped renewing)."""
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            idle = max(1, int(self.period_s))
            conn.exec_driver_sql(f"SET tcp_keepalives_idle = {idle}")
            conn.exec_driver_sql(f"SET tcp_keepalives_interval = {idle}")
            conn.exec_driver_sql("SET tcp_keepalives_count = 3")
            schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
            self._key = lock_key(str(schema), self.name)
            if self._try_lock(conn):
                return conn
            if self._end_stale_holder(conn) and self._try_lock(conn):
                return conn
        except SQLAlchemyError:
            conn.invalidate()
            raise
        conn.close()
        return None

    def _try_lock(self, conn: Connection) -> bool:
        got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key})
        return bool(got.scalar_one())

    def _end_stale_holder(self, conn: Connection) -> bool:
        """End the session of a holder that has not renewed for ``stale_after_s``: it hangs
        (a dead one loses its session on its own). Its next ``check`` then fails."""
        row = conn.execute(sa.select(db.lease).where(db.lease.c.name == self.name)).one_or_none()
        if row is None or row.backend_pid is None:
            return False
        silent = (self.clock.now() - row.renewed_at).total_seconds()
        if silent < self.stale_after_s:
            return False
        ended = conn.execute(  # waits (bounded) until the session is gone, its lock with it
            sa.text("SELECT pg_terminate_backend(:pid, :wait_ms)"),
            {"pid": row.backend_pid, "wait_ms": TERMINATE_WAIT_MS},
        ).scalar_one()
        log_event(
            log,
            "lease_holder_ended",
            level=logging.WARNING,
            lease=self.name,
            holder=row.instance_id,
            epoch=row.epoch,
            silent_s=round(silent, 1),
            ended=bool(ended),
        )
        return bool(ended)

    def _increment_epoch(self, conn: Connection | None) -> int:
        """Write this instance into the row with the next epoch; return that epoch."""
        now = self.clock.now()
        values = {"instance_id": self.instance_id, "since": now, "renewed_at": now}
        lease = db.lease
        if self.postgres:
            stmt = postgresql.insert(lease)
            values["backend_pid"] = sa.func.pg_backend_pid()
        else:
            stmt = sqlite.insert(lease)
            values["backend_pid"] = None
        stmt = (
            stmt.values(name=self.name, epoch=1, **values)
            .on_conflict_do_update(
                index_elements=[lease.c.name], set_={"epoch": lease.c.epoch + 1, **values}
            )
            .returning(lease.c.epoch)
        )
        if conn is not None:
            return int(conn.execute(stmt).scalar_one())
        with self.engine.connect().execution_options(**db.WRITE) as own, own.begin():
            return int(own.execute(stmt).scalar_one())

    # -- holding -----------------------------------------------------------------------------

    def check(self) -> FencingToken:
        """The fence: the token if this process still holds the lease at its epoch, else
        ``LeaseLost`` (and the lease is dropped). Renews the row when it is due."""
        with self._mutex:
            token = self._token
            if token is None:
                raise LeaseLost(f"lease {self.name!r} is not held by {self.instance_id}")
            if self._conn is None:  # SQLite: one process, trivially held
                if self.clock.monotonic() - self._renewed_at >= self.period_s / 2:
                    self._renew(token)
                return token
            try:
                current = read_holder(self._conn, self.name)
            except SQLAlchemyError as exc:
                self._lose(f"its database session failed: {exc.__class__.__name__}")
                raise LeaseLost(f"lease {self.name!r}: the lock's session is gone") from exc
            if current is None or current.epoch != token.epoch:
                epoch = None if current is None else current.epoch
                self._lose(f"the lease moved to epoch {epoch}")
                raise LeaseLost(
                    f"lease {self.name!r} is at epoch {epoch}, this process held {token.epoch}"
                )
            if self.clock.monotonic() - self._renewed_at >= self.period_s / 2:
                self._renew(token)
            return token

    def _renew(self, token: FencingToken) -> None:
        lease = db.lease
        stmt = (
            sa.update(lease)
            .where(lease.c.name == token.name, lease.c.epoch == token.epoch)
            .values(renewed_at=self.clock.now())
        )
        try:
            if self._conn is not None:
                self._conn.execute(stmt)
            else:
                with self.engine.connect().execution_options(**db.WRITE) as own, own.begin():
                    own.execute(stmt)
        except SQLAlchemyError as exc:
            self._lose(f"renewing failed: {exc.__class__.__name__}")
            raise LeaseLost(f"lease {self.name!r}: renewing failed") from exc
        self._renewed_at = self.clock.monotonic()

    def release(self) -> None:
        """Give the lease up (the next acquirer increments the epoch)."""
        with self._mutex:
            if self._token is None:
                return
            if self._conn is not None:
                try:
                    self._conn.execute(
                        sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key}
                    )
                except SQLAlchemyError as exc:
                    log_event(log, "lease_unlock_failed", level=logging.WARNING, error=str(exc))
            token = self._token
            self._drop()
        log_event(log, "lease_released", lease=self.name, epoch=token.epoch)

    def _lose(self, why: str) -> None:
        token = self._token
        self._drop()
        log_event(
            log,
            "lease_lost",
            level=logging.WARNING,
            lease=self.name,
            instance=self.instance_id,
            epoch=None if token is None else token.epoch,
            reason=why,
        )

    def _drop(self) -> None:
        """Forget the lease; close the lock's session for good (never back to the pool)."""
        conn, self._conn, self._token = self._conn, None, None
        if self._beating is not None:
            self._beating.set()
            self._beating = None
        if conn is not None:
            conn.invalidate()
            conn.close()
