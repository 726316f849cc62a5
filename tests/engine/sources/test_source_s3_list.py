"""S3 listing source on moto: restart neither skips nor re-reads; late older keys are found."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from engine.core.clock import FakeClock
from engine.sources import ProcessedRecord, S3ListSource, S3ListSourceConfig, SourceError

BUCKET = "cf-logs"
PREFIX = "cf/"


def cf_key(hour: int, uid: str) -> str:
    """A CloudFront standard-log key: named by the *event* hour (log-formats.md §2.3)."""
    return f"{PREFIX}E2EXAMPLE.2026-11-30-{hour:02d}.{uid}.gz"


def put(s3, key: str, body: bytes | None = None) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body if body is not None else key.encode())


def build(s3, store, clock, **kw) -> S3ListSource:
    config = S3ListSourceConfig(bucket=BUCKET, prefix=PREFIX, **kw)
    return config.build(clock=clock, store=store, s3_client=s3)


def ack_all(deliveries, clock) -> list[str]:
    keys = []
    for d in deliveries:
        assert d.obj.read() == d.obj.key.encode()
        d.ack(ProcessedRecord.for_object(d.obj, rows=1, started_at=clock.now()))
        keys.append(d.obj.key)
    return keys


@pytest.fixture()
def bucket(s3):
    s3.create_bucket(Bucket=BUCKET)
    put(s3, "elsewhere/x.gz")
    return BUCKET


def test_lists_in_key_order_and_acked_objects_are_not_delivered_again(
    bucket, s3, store, fake_clock
):
    for hour, uid in [(9, "b"), (8, "a"), (10, "c")]:
        put(s3, cf_key(hour, uid))
    source = build(s3, store, fake_clock)
    first = source.poll(max_objects=2)
    assert [d.obj.key for d in first] == [cf_key(8, "a"), cf_key(9, "b")]
    # Handed out but not acked: not handed out twice by the same process.
    assert [d.obj.key for d in source.poll(max_objects=5)] == [cf_key(10, "c")]
    ack_all(first, fake_clock)
    assert source.poll() == []
    assert {r.key for r in store.records(bucket=BUCKET)} == {cf_key(8, "a"), cf_key(9, "b")}


def test_restart_after_a_crash_between_processing_and_commit(bucket, s3, store, fake_clock):
    keys = [cf_key(h, "u") for h in (1, 2, 3, 4)]
    for key in keys:
        put(s3, key)
    source = build(s3, store, fake_clock, checkpoint_interval_s=1)
    deliveries = source.poll(max_objects=3)
    ack_all(deliveries[:2], fake_clock)
    deliveries[2].obj.read()  # processed ... and the process dies before ack
    fake_clock.advance(5)
    del source

    restarted = build(s3, store, fake_clock, checkpoint_interval_s=1)
    again = restarted.poll(max_objects=10)
    assert [d.obj.key for d in again] == keys[2:]  # nothing skipped, nothing re-read
    ack_all(again, fake_clock)
    fake_clock.advance(5)
    assert build(s3, store, fake_clock).poll() == []
    assert sorted(r.key for r in store.records()) == keys


def test_late_object_with_an_older_key_is_still_picked_up(bucket, s3, store, fake_clock):
    """Files for each hour arrive on time for 12 hours; then one for hour 9 arrives 3 h late."""
    start = datetime(2026, 11, 30, tzinfo=UTC)

    def key(hours: int, uid: str) -> str:
        return f"{PREFIX}E2EXAMPLE.{start + timedelta(hours=hours):%Y-%m-%d-%H}.{uid}.gz"

    source = build(s3, store, fake_clock, lookback_s=3 * 3600, checkpoint_interval_s=60)
    for hour in range(12):
        put(s3, key(hour, "on-time"))
        ack_all(source.poll(), fake_clock)
        fake_clock.advance(3600)
    source.poll()  # records the frontier at hour 11
    cursor = source.cursor(fake_clock.time())
    assert cursor == key(8, "on-time")  # listing restarts 3 hours back, not from scratch

    put(s3, key(9, "late"))  # older than keys already processed, within the lookback
    restarted = build(s3, store, fake_clock, lookback_s=3 * 3600, checkpoint_interval_s=60)
    listed = restarted.stats()["listed"]
    assert [d.obj.key for d in restarted.poll()] == [key(9, "late")]
    assert restarted.stats()["listed"] - listed == 4  # hours 9..11 plus the late one


def test_cursor_skips_keys_older_than_the_lookback_window(bucket, s3, store, fake_clock):
    """Past ``lookback_s`` the listing starts after the old frontier (bounded re-listing)."""
    source = build(s3, store, fake_clock, lookback_s=3600, checkpoint_interval_s=60)
    for uid in "abcdef":
        put(s3, cf_key(5, uid))
    ack_all(source.poll(max_objects=10), fake_clock)
    fake_clock.advance(60)
    source.poll()
    assert source.cursor(fake_clock.time()) is None  # frontier too recent to be trusted yet
    fake_clock.advance(3600)
    assert source.cursor(fake_clock.time()) == cf_key(5, "f")

    put(s3, cf_key(6, "new"))
    listed_before = source.stats()["listed"]
    assert [d.obj.key for d in source.poll()] == [cf_key(6, "new")]
    assert source.stats()["listed"] - listed_before == 1

    # The documented boundary: a key sorting before a frontier older than lookback_s.
    put(s3, cf_key(4, "too-late"))
    assert source.poll() == []


def test_overwritten_object_with_a_new_etag_is_read_again(bucket, s3, store, fake_clock):
    put(s3, cf_key(1, "x"))
    source = build(s3, store, fake_clock)
    ack_all(source.poll(), fake_clock)
    put(s3, cf_key(1, "x"), body=cf_key(1, "x").encode())  # same bytes, same ETag
    assert source.poll() == []
    s3.put_object(Bucket=BUCKET, Key=cf_key(1, "x"), Body=b"rewritten")
    (d,) = source.poll()
    assert d.obj.read() == b"rewritten"


def test_release_hands_the_object_out_again(bucket, s3, store, fake_clock):
    put(s3, cf_key(1, "x"))
    source = build(s3, store, fake_clock)
    (d,) = source.poll()
    d.release()
    assert [x.obj.key for x in source.poll()] == [cf_key(1, "x")]
    assert source.stats()["released"] == 1


def test_initial_start_after_skips_history(bucket, s3, store, fake_clock):
    for hour in (1, 2, 3):
        put(s3, cf_key(hour, "u"))
    source = build(s3, store, fake_clock, start_after=cf_key(2, "u"))
    assert [d.obj.key for d in source.poll()] == [cf_key(3, "u")]


def test_missing_bucket_and_corrupt_checkpoint_are_clear_errors(s3, store, fake_clock):
    source = build(s3, store, fake_clock)
    with pytest.raises(SourceError, match="cannot list"):
        source.poll()
    store.write_checkpoint(source.checkpoint_name, "{not json")
    with pytest.raises(SourceError, match="corrupt"):
        source.cursor(fake_clock.time())


def test_config_refuses_unknown_keys():
    with pytest.raises(ValueError, match="extra"):
        S3ListSourceConfig(bucket=BUCKET, lookback=5)
    with pytest.raises(ValueError, match="lookback_s"):
        S3ListSourceConfig(bucket=BUCKET, lookback_s=-1)


def test_catching_up_a_backlog_lists_each_key_about_twice(bucket, s3, store):
    """Old objects (LastModified long before now) make snapshots usable at once."""
    clock = FakeClock(time.time() + 10 * 86400)  # the objects below are 10 days old to it
    keys = [cf_key(h % 24, f"{h:03d}") for h in range(40)]
    for key in keys:
        put(s3, key)
    source = build(s3, store, clock, lookback_s=3600, checkpoint_interval_s=60, list_page_size=5)
    done: list[str] = []
    while batch := source.poll(max_objects=5):
        done += ack_all(batch, clock)
        clock.advance(60)
    assert sorted(done) == sorted(keys)
    # Each poll lists the previous batch (now recorded) and the next: ~2 keys per key.
    # Re-listing from the start of the prefix on every poll lists 220 here.
    assert source.stats()["listed"] <= 2 * len(keys) + 10
    assert source.cursor(clock.time()) == max(keys)


def test_a_seen_but_unrecorded_object_is_never_passed_by_the_cursor(bucket, s3, store, fake_clock):
    """A late object is found, then sits unprocessed for longer than the lookback."""
    k1, k2, k3 = cf_key(1, "a"), cf_key(2, "a"), cf_key(3, "a")
    put(s3, k1)
    put(s3, k3)
    source = build(s3, store, fake_clock, lookback_s=3600, checkpoint_interval_s=60)
    ack_all(source.poll(), fake_clock)
    fake_clock.advance(61)
    assert source.poll() == []  # snapshot: everything up to k3 is recorded
    fake_clock.advance(40)
    put(s3, k2)  # 100 s late: well within the lookback
    (slow,) = source.poll()
    assert slow.obj.key == k2  # handed out ... and not finished for over an hour

    fake_clock.advance(2 * 3600)
    restarted = build(s3, store, fake_clock, lookback_s=3600, checkpoint_interval_s=60)
    assert restarted.cursor(fake_clock.time()) == k1  # not k3, the usable snapshot
    assert [d.obj.key for d in restarted.poll()] == [k2]


def test_quarantine_copies_under_the_listed_prefix_are_never_delivered(
    bucket, s3, store, fake_clock
):
    put(s3, "a.gz")
    put(s3, "wafsmith-quarantine/a.gz")
    put(s3, "wafsmith-quarantine/a.gz.reason.json")
    put(s3, "z.gz")
    source = S3ListSourceConfig(bucket=BUCKET, prefix="").build(
        clock=fake_clock, store=store, s3_client=s3
    )
    keys = [d.obj.key for d in source.poll(max_objects=10)]
    assert keys == ["a.gz", "elsewhere/x.gz", "z.gz"]
    assert source.stats()["skipped_quarantine"] == 2
