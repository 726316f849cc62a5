"""The ledger schema is created from an empty database by the packaged Alembic migrations."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DatabaseError

from engine.core.clock import FakeClock
from engine.decisions import Ledger, db

HEAD = "0004"
TABLES = {
    "ledger_decisions",
    "ledger_audit_events",
    "ledger_allowlist",
    "ledger_policy",
    "ledger_api_tokens",
    "ledger_status_kv",
    "ledger_lease",
    db.VERSION_TABLE,
}


def test_open_migrates_an_empty_database_to_head(db_url: str, clock: FakeClock) -> None:
    engine = db.create_engine(db_url)
    assert db.current_revision(engine) is None
    assert not TABLES & set(sa.inspect(engine).get_table_names())
    with Ledger.open(db_url, clock=clock):
        pass
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
    assert db.current_revision(engine) == HEAD
    engine.dispose()


def test_reopening_keeps_data_and_does_not_migrate_again(db_url, clock, make) -> None:
    with Ledger.open(db_url, clock=clock) as first:
        stored = first.propose(make())
    with Ledger.open(db_url, clock=clock) as second:
        assert second.get(stored.id) == stored


def test_downgrade_to_base_and_back(db_url: str) -> None:
    engine = db.create_engine(db_url)
    db.upgrade(engine)
    db.downgrade(engine, "base")
    assert not TABLES - {db.VERSION_TABLE} & set(sa.inspect(engine).get_table_names())
    db.upgrade(engine)
    assert db.current_revision(engine) == HEAD
    engine.dispose()


def test_sqlite_file_under_data_dir_uses_wal(tmp_path, clock, monkeypatch) -> None:
    monkeypatch.delenv("WAFSMITH_DATABASE_URL", raising=False)
    with Ledger.open(clock=clock, data_dir=tmp_path / "var") as ledger:
        assert (tmp_path / "var" / "wafsmith.db").is_file()
        with ledger.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000


def test_audit_events_are_append_only_in_the_database(ledger, make) -> None:
    stored = ledger.propose(make())
    audit = db.audit_events
    for statement in (
        audit.update().values(actor="mallory"),
        audit.delete().where(audit.c.decision_id == stored.id),
    ):
        with pytest.raises(DatabaseError, match="append-only"), ledger.engine.begin() as conn:
            conn.execute(statement)
    assert [e.actor for e in ledger.audit(stored.id)] == ["engine"]


def test_database_url_from_the_environment(tmp_path, clock, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'from-env.db'}"
    monkeypatch.setenv("WAFSMITH_DATABASE_URL", url)
    with Ledger.open(clock=clock) as ledger:
        assert str(ledger.engine.url) == url
    monkeypatch.delenv("WAFSMITH_DATABASE_URL")
    with pytest.raises(ValueError, match="WAFSMITH_DATABASE_URL"):
        Ledger.open(clock=clock)
