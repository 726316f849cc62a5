"""The processed-objects store on SQLite and PostgreSQL: idempotent, atomic, race-safe."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from engine.sources import ProcessedRecord, ProcessedStore, SourceObject


def _record(clock, key="AWSLogs/1/a.log.gz", etag="e1", rows=10, **kw) -> ProcessedRecord:
    started = clock.now()
    return ProcessedRecord(
        bucket="logs",
        key=key,
        etag=etag,
        size=123,
        rows=rows,
        malformed=kw.pop("malformed", {"bad_field_count": 2}),
        format="alb",
        started_at=started,
        finished_at=started + timedelta(seconds=1.5),
        **kw,
    )


def test_commit_records_everything_and_reads_it_back(store, fake_clock):
    record = _record(fake_clock)
    assert store.commit(record) is True
    got = store.get("logs", record.key, "e1")
    assert got == record
    assert got.seconds == 1.5
    assert got.started_at.tzinfo is not None
    assert store.records() == [record]
    assert store.count() == 1


def test_same_object_twice_is_a_no_op(store, fake_clock):
    assert store.commit(_record(fake_clock, rows=10)) is True
    assert store.commit(_record(fake_clock, rows=99)) is False
    assert store.count() == 1
    assert store.get("logs", "AWSLogs/1/a.log.gz", "e1").rows == 10


def test_new_etag_of_the_same_key_is_a_new_object(store, fake_clock):
    assert store.commit(_record(fake_clock, etag="e1"))
    assert store.commit(_record(fake_clock, etag="e2"))
    assert store.is_processed("logs", "AWSLogs/1/a.log.gz", "e2")
    assert not store.is_processed("logs", "AWSLogs/1/a.log.gz", "e3")
    assert not store.is_processed("other", "AWSLogs/1/a.log.gz", "e1")


def test_processed_among_batches_many_keys(store, fake_clock):
    for i in range(0, 1200, 15):
        store.commit(_record(fake_clock, key=f"k/{i:05d}", etag="x"))
    candidates = [(f"k/{i:05d}", "x") for i in range(1200)] + [("k/00000", "other-etag")]
    found = store.processed_among("logs", candidates)  # 3 queries of at most 500 keys
    assert found == {(f"k/{i:05d}", "x") for i in range(0, 1200, 15)}


def test_record_for_object_uses_the_source_identity(fake_clock):
    s3_obj = SourceObject(uri="s3://b/k", bucket="b", key="k", etag="e", size=5)
    local = SourceObject(uri="/data/x.log", bucket=None, key="x.log", size=7)
    r1 = ProcessedRecord.for_object(s3_obj, rows=3, format="waf")
    r2 = ProcessedRecord.for_object(local, rows=1, malformed={"not_utf8": 1})
    assert (r1.bucket, r1.key, r1.etag, r1.size) == ("b", "k", "e", 5)
    assert (r2.bucket, r2.key, r2.etag, r2.size) == ("", "/data/x.log", "", 7)
    assert r1.seconds is None


def test_checkpoint_round_trip_and_overwrite(store, fake_clock):
    assert store.read_checkpoint("s3list:logs/") is None
    store.write_checkpoint("s3list:logs/", '{"a": 1}')
    store.write_checkpoint("s3list:logs/", '{"a": 2}')
    assert store.read_checkpoint("s3list:logs/") == '{"a": 2}'


def test_checkpoint_written_with_the_commit_or_not_at_all(store, fake_clock):
    assert store.commit(_record(fake_clock), checkpoint=("cp", "one"))
    assert store.read_checkpoint("cp") == "one"
    assert store.commit(_record(fake_clock), checkpoint=("cp", "two")) is False
    assert store.read_checkpoint("cp") == "one"


def test_tables_are_created_idempotently(store, fake_clock):
    store.commit(_record(fake_clock))
    again = ProcessedStore(store.url, table_prefix=store.table_prefix, clock=fake_clock)
    assert again.count() == 1
    names = set(sa.inspect(again.engine).get_table_names())
    assert {f"{store.table_prefix}processed_objects", f"{store.table_prefix}checkpoints"} <= names
    again.close()


def test_two_processes_racing_record_each_object_once(store, fake_clock):
    """Two stores (separate engines and connections) commit the same 40 objects at once."""
    other = ProcessedStore(store.url, table_prefix=store.table_prefix, clock=fake_clock)
    results: dict[str, list[bool]] = {"a": [], "b": []}
    barrier = threading.Barrier(2)

    def run(name: str, target: ProcessedStore) -> None:
        barrier.wait()
        for i in range(40):
            results[name].append(target.commit(_record(fake_clock, key=f"race/{i}")))

    threads = [
        threading.Thread(target=run, args=("a", store)),
        threading.Thread(target=run, args=("b", other)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    other.close()
    assert [a + b for a, b in zip(results["a"], results["b"], strict=True)] == [1] * 40
    assert store.count() == 40


COMMIT_SCRIPT = """
import sys
from datetime import UTC, datetime
from engine.sources import ProcessedRecord, ProcessedStore
store = ProcessedStore(sys.argv[1], table_prefix=sys.argv[2])
at = datetime(2026, 11, 30, tzinfo=UTC)
won = sum(
    store.commit(ProcessedRecord("logs", f"proc/{i}", "e", 1, 1, {}, "alb", at, at))
    for i in range(int(sys.argv[3]))
)
print(won)
"""


def test_two_real_processes_record_each_object_once(store):
    """Two OS processes commit the same 30 objects; together they win each exactly once."""
    args = [sys.executable, "-c", COMMIT_SCRIPT, store.url, store.table_prefix, "30"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sum(int(out) for out in outputs) == 30
    assert store.count() == 30


def test_non_duplicate_integrity_errors_are_not_swallowed(store, fake_clock):
    broken = _record(fake_clock)
    object.__setattr__(broken, "rows", None)  # NOT NULL column
    with pytest.raises(sa.exc.IntegrityError):
        store.commit(broken)


def test_sqlite_runs_in_wal_mode(sqlite_store):
    with sqlite_store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
