"""The processed-objects store: which objects were committed, with what result, and checkpoints.

SQLAlchemy 2 Core over SQLite (a file in WAL mode, the embedded default) or PostgreSQL
(``postgresql+psycopg://…``). Tables are created idempotently and share a name prefix
(``ingest_`` by default). An object is identified by ``(bucket, key, etag)``; recording it is
one transaction guarded by a unique constraint, so two processes racing to commit the same
object leave exactly one row and the loser is told "already processed".
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from engine.core.clock import SYSTEM_CLOCK, Clock
from engine.sources.objects import SourceError, SourceObject

LOCAL_BUCKET = ""
"""Bucket recorded for local files (their ``uri`` is recorded as the key)."""

_UNIQUE_VIOLATION_SQLSTATE = "23505"


@dataclass(frozen=True)
class ProcessedRecord:
    """What processing one object produced; committed once per ``(bucket, key, etag)``."""

    bucket: str
    key: str
    etag: str
    size: int | None
    rows: int
    malformed: dict[str, int] = field(default_factory=dict)
    format: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @classmethod
    def for_object(
        cls,
        obj: SourceObject,
        *,
        rows: int,
        malformed: dict[str, int] | None = None,
        format: str | None = None,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
    ) -> ProcessedRecord:
        """The record for ``obj``, identified the same way the sources look it up."""
        bucket, key, etag = identity(obj)
        return cls(
            bucket=bucket,
            key=key,
            etag=etag,
            size=obj.size,
            rows=rows,
            malformed=dict(malformed or {}),
            format=format,
            started_at=started_at,
            finished_at=finished_at,
        )


def identity(obj: SourceObject) -> tuple[str, str, str]:
    """``(bucket, key, etag)`` under which ``obj`` is recorded ("" stands for "none")."""
    if obj.bucket is None:
        return LOCAL_BUCKET, obj.uri, obj.etag or ""
    return obj.bucket, obj.key, obj.etag or ""


def _tables(prefix: str) -> tuple[sa.MetaData, sa.Table, sa.Table]:
    metadata = sa.MetaData()
    processed = sa.Table(
        f"{prefix}processed_objects",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("bucket", sa.String(255), nullable=False),
        sa.Column("key", sa.String(2048), nullable=False),
        sa.Column("etag", sa.String(128), nullable=False),
        sa.Column("size", sa.BigInteger),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("malformed", sa.Text, nullable=False),
        sa.Column("format", sa.String(32)),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("seconds", sa.Float),
        sa.UniqueConstraint("bucket", "key", "etag", name=f"{prefix}processed_object_uq"),
    )
    checkpoints = sa.Table(
        f"{prefix}checkpoints",
        metadata,
        sa.Column("name", sa.String(512), primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    return metadata, processed, checkpoints


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def is_unique_violation(exc: sa.exc.IntegrityError) -> bool:
    """True when the integrity error is a duplicate key (SQLite or PostgreSQL)."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == _UNIQUE_VIOLATION_SQLSTATE:
        return True
    message = str(orig)
    return "UNIQUE constraint failed" in message or "duplicate key value" in message


def _aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything stored is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class ProcessedStore:
    """Processed objects and source checkpoints in one database.

    >>> store = ProcessedStore("sqlite:///var/ingest.db")   # or postgresql+psycopg://…
    >>> store.commit(record)   # True: recorded now; False: it was already there
    """

    def __init__(
        self, url: str, *, table_prefix: str = "ingest_", clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.url = url
        self.clock = clock
        self.table_prefix = table_prefix
        self.engine: Engine = sa.create_engine(url)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._metadata, self.processed, self.checkpoints = _tables(table_prefix)
        try:
            self._metadata.create_all(self.engine, checkfirst=True)
        except sa.exc.SQLAlchemyError as exc:
            raise SourceError(
                f"cannot prepare the processed-objects store at {url}: {exc}"
            ) from exc

    # -- processed objects -------------------------------------------------------------------

    def commit(self, record: ProcessedRecord, *, checkpoint: tuple[str, str] | None = None) -> bool:
        """Record ``record`` in one transaction; False if it was already processed.

        ``checkpoint=(name, state)`` is written in the same transaction, so a crash never
        leaves the checkpoint ahead of what is recorded.
        """
        row = {
            "bucket": record.bucket,
            "key": record.key,
            "etag": record.etag,
            "size": record.size,
            "rows": record.rows,
            "malformed": json.dumps(record.malformed, sort_keys=True),
            "format": record.format,
            "started_at": record.started_at,
            "finished_at": record.finished_at,
            "seconds": record.seconds,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(self.processed.insert().values(**row))
                if checkpoint is not None:
                    self._write_checkpoint(conn, *checkpoint, when=record.finished_at)
        except sa.exc.IntegrityError as exc:
            if is_unique_violation(exc):
                return False
            raise
        return True

    def is_processed(self, bucket: str, key: str, etag: str | None) -> bool:
        return bool(self.processed_among(bucket, [(key, etag or "")]))

    def processed_among(
        self, bucket: str, candidates: Iterable[tuple[str, str]]
    ) -> set[tuple[str, str]]:
        """Which of the ``(key, etag)`` candidates in ``bucket`` are recorded (batched query)."""
        wanted = set(candidates)
        found: set[tuple[str, str]] = set()
        keys = sorted({key for key, _ in wanted})
        t = self.processed
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                query = sa.select(t.c.key, t.c.etag).where(t.c.bucket == bucket, t.c.key.in_(chunk))
                found.update((k, e) for k, e in conn.execute(query) if (k, e) in wanted)
        return found

    def get(self, bucket: str, key: str, etag: str | None) -> ProcessedRecord | None:
        t = self.processed
        query = sa.select(t).where(t.c.bucket == bucket, t.c.key == key, t.c.etag == (etag or ""))
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _record_from_row(row)

    def records(self, *, bucket: str | None = None) -> list[ProcessedRecord]:
        """Every recorded object (of ``bucket`` when given), in commit order."""
        t = self.processed
        query = sa.select(t).order_by(t.c.id)
        if bucket is not None:
            query = query.where(t.c.bucket == bucket)
        with self.engine.connect() as conn:
            return [_record_from_row(r) for r in conn.execute(query).mappings()]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(self.processed)).scalar()
            )

    # -- checkpoints -------------------------------------------------------------------------

    def read_checkpoint(self, name: str) -> str | None:
        t = self.checkpoints
        with self.engine.connect() as conn:
            return conn.execute(sa.select(t.c.state).where(t.c.name == name)).scalar()

    def write_checkpoint(self, name: str, state: str, *, when: datetime | None = None) -> None:
        with self.engine.begin() as conn:
            self._write_checkpoint(conn, name, state, when=when)

    def _write_checkpoint(
        self, conn: Connection, name: str, state: str, *, when: datetime | None
    ) -> None:
        t = self.checkpoints
        values = {"state": state, "updated_at": when or self.clock.now()}
        updated = conn.execute(t.update().where(t.c.name == name).values(**values))
        if updated.rowcount == 0:
            # A concurrent first write loses with a unique violation: the transaction fails
            # and the caller retries; checkpoints are only ever written by one source.
            conn.execute(t.insert().values(name=name, **values))

    # -- lifecycle ---------------------------------------------------------------------------

    def drop_tables(self) -> None:
        """Drop this store's tables (tests and ``reset`` tooling only)."""
        self._metadata.drop_all(self.engine, checkfirst=True)

    def close(self) -> None:
        self.engine.dispose()


def _record_from_row(row: Any) -> ProcessedRecord:
    return ProcessedRecord(
        bucket=row["bucket"],
        key=row["key"],
        etag=row["etag"],
        size=row["size"],
        rows=row["rows"],
        malformed=json.loads(row["malformed"]),
        format=row["format"],
        started_at=_aware(row["started_at"]),
        finished_at=_aware(row["finished_at"]),
    )
