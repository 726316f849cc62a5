"""The ledger's database: engine creation, table definitions and Alembic migrations.

SQLite (a WAL-mode file under the data directory) is the embedded default; PostgreSQL is used
when the URL says so (``postgresql+psycopg://...``). Tables are named ``ledger_*``. The schema
is owned by the Alembic migrations shipped in ``engine/decisions/migrations``; ``upgrade``
applies them programmatically so an installed package needs no ``alembic.ini``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from engine.core.errors import ConfigError

MIGRATIONS_DIR = Path(str(resources.files("engine.decisions") / "migrations"))
VERSION_TABLE = "ledger_alembic_version"
SQLITE_BUSY_TIMEOUT_MS = 10_000
# Statuses in which a decision is "open": a duplicate proposal merges into it.
OPEN_STATUSES = ("proposed", "approved", "applied")
# Execution option that makes a SQLite transaction take the write lock at BEGIN.
WRITE = {"ledger_write": True}


class UtcDateTime(sa.types.TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite stores naive UTC text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("ledger times must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

decisions = sa.Table(
    "ledger_decisions",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("client", sa.String(64), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("score", sa.Float(), nullable=False),
    sa.Column("confidence", sa.Float(), nullable=False),
    sa.Column("detector", sa.String(128), nullable=False),
    sa.Column("reasons", sa.JSON(), nullable=False),
    sa.Column("evidence", sa.JSON(), nullable=False),
    sa.Column("members", sa.JSON(), nullable=False),
    sa.Column("rule", sa.JSON(), nullable=True),  # a rule-level decision's RuleAnswer (0004)
    sa.Column("ttl_s", sa.Integer(), nullable=False),
    sa.Column("decided_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
)

audit_events = sa.Table(
    "ledger_audit_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("decision_id", sa.String(64), sa.ForeignKey("ledger_decisions.id"), nullable=True),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("from_status", sa.String(16), nullable=True),
    sa.Column("to_status", sa.String(16), nullable=True),
    sa.Column("comment", sa.Text(), nullable=True),
)

allowlist = sa.Table(
    "ledger_allowlist",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("cidr", sa.String(64), nullable=False, unique=True),
    sa.Column("comment", sa.Text(), nullable=True),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

policy = sa.Table(
    "ledger_policy",
    metadata,
    sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("document", sa.JSON(), nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

api_tokens = sa.Table(
    "ledger_api_tokens",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_used_at", UtcDateTime(), nullable=True),
    sa.Column("revoked", sa.Boolean(), nullable=False),
)

status_kv = sa.Table(
    "ledger_status_kv",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("document", sa.JSON(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# The enforcer lease (``engine.decisions.lease``): ``epoch`` grows by one per acquisition and
# fences writers that lost the lease; ``backend_pid`` is the holder's PostgreSQL session.
lease = sa.Table(
    "ledger_lease",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("epoch", sa.BigInteger(), nullable=False),
    sa.Column("instance_id", sa.String(256), nullable=False),
    sa.Column("backend_pid", sa.Integer(), nullable=True),
    sa.Column("since", UtcDateTime(), nullable=False),
    sa.Column("renewed_at", UtcDateTime(), nullable=False),
)


def sqlite_url(data_dir: Path) -> str:
    """The default ledger URL: ``<data_dir>/wafsmith.db``."""
    return f"sqlite:///{(Path(data_dir) / 'wafsmith.db').resolve()}"


def create_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys, a busy timeout and write locks.

    SQLite transactions opened with the ``WRITE`` execution option start with
    ``BEGIN IMMEDIATE`` so two writers queue on the busy timeout instead of failing with a
    stale snapshot; read transactions stay deferred and never block.
    """
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def open_engine(url: str) -> Engine:
    """``create_engine`` then ``upgrade``; a bad URL or an unreachable database raises
    ``ConfigError`` in one line naming it (password redacted), not a driver traceback."""
    try:
        engine = create_engine(url)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError(f"ledger: unusable database URL {redact(url)}: {exc}") from None
    except ImportError as exc:
        raise ConfigError(f"ledger: no driver for {redact(url)}: {exc}") from None
    try:
        upgrade(engine)
    except OperationalError as exc:
        engine.dispose()
        first = str(exc.orig or exc).strip().splitlines()[0]
        raise ConfigError(f"ledger: cannot reach the database {redact(url)}: {first}") from None
    return engine


def redact(url: str) -> str:
    """The URL with its password replaced, for messages and logs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable URL)"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("ledger_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def alembic_config(connection: Connection) -> Config:
    """An Alembic config built in code, pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (idempotent; safe from several processes)."""
    with engine.connect().execution_options(**WRITE) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7211004)")
        command.upgrade(alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Revert migrations down to ``revision`` (``"base"`` drops every ledger table)."""
    with engine.connect().execution_options(**WRITE) as conn, conn.begin():
        command.downgrade(alembic_config(conn), revision)


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return ctx.get_current_revision()
