"""The ledger schema is created from an empty database by the packaged Alembic migrations."""

from __future__ import annotations

import sqlalchemy as sa

from engine.core.clock import FakeClock
from engine.decisions import Ledger, db

TABLES = {
    "ledger_decisions",
    "ledger_audit_events",
    "ledger_allowlist",
    "ledger_policy",
    "ledger_api_tokens",
    "ledger_status_kv",
    db.VERSION_TABLE,
}


def test_open_migrates_an_empty_database_to_head(db_url: str, clock: FakeClock) -> None:
    engine = db.create_engine(db_url)
    assert db.current_revision(engine) is None
    assert not TABLES & set(sa.inspect(engine).get_table_names())
    with Ledger.open(db_url, clock=clock):
        pass
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
    assert db.current_revision(engine) == "0001"
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
    assert db.current_revision(engine) == "0001"
    engine.dispose()


def test_sqlite_file_under_data_dir_uses_wal(tmp_path, clock, monkeypatch) -> None:
    monkeypatch.delenv("WAFSMITH_DATABASE_URL", raising=False)
    with Ledger.open(clock=clock, data_dir=tmp_path / "var") as ledger:
        assert (tmp_path / "var" / "wafsmith.db").is_file()
        with ledger.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
