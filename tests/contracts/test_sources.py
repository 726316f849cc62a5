"""Contract battery run against every source kind (``SOURCE_CONFIGS``): local files, S3
listing, S3 notifications through SQS — the last two on the moto server over HTTP.

Whatever the kind: an object is recorded as processed only by its ``ack`` (after the caller
committed its result), an object not acknowledged when the process dies is delivered again,
and delivering an acknowledged object again changes nothing (``ack`` says False, the store
holds it once).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.core.clock import FakeClock
from engine.demo.standin import bootstrap
from engine.sources import (
    SOURCE_CONFIGS,
    Delivery,
    ProcessedRecord,
    ProcessedStore,
    Source,
)
from engine.sources.processed import identity
from tests.support.alb import alb_line, alb_object
from tests.support.runner import START
from tests.support.source_events import s3_event, s3_record

KEYS = ("logs/a.log.gz", "logs/b.log.gz")
REDELIVERY_WAIT_S = 15.0  # SQS: an unacknowledged message reappears after its 1 s timeout


@dataclass
class Rig:
    """A source kind with the place its objects land and a way to announce one again."""

    build: Callable[[], Source]
    land: Callable[[str, bytes], None]
    announce_again: Callable[[str], None]
    redelivery_is_real_time: bool = False


def object_bytes(key: str) -> bytes:
    return alb_object([alb_line(START, "198.51.100.7", f"/{key}")])


@pytest.fixture()
def store(tmp_path: Path, fake_clock: FakeClock) -> Iterator[ProcessedStore]:
    created = ProcessedStore(f"sqlite:///{tmp_path / 'processed.db'}", clock=fake_clock)
    yield created
    created.close()


@pytest.fixture(params=sorted(SOURCE_CONFIGS))
def rig(request, tmp_path: Path, store: ProcessedStore, fake_clock: FakeClock) -> Rig:
    kind = request.param
    if kind == "local":
        folder = tmp_path / "logs"
        folder.mkdir()

        def land_file(key: str, data: bytes) -> None:
            path = folder / Path(key).name
            path.write_bytes(data)

        config = SOURCE_CONFIGS["local"](paths=[str(folder)])
        return Rig(lambda: config.build(store=store), land_file, lambda key: None)

    endpoint = request.getfixturevalue("aws_endpoint")
    s3, sqs = request.getfixturevalue("s3"), request.getfixturevalue("sqs")
    aws = bootstrap(endpoint)

    def land_object(key: str, data: bytes) -> None:
        s3.put_object(Bucket=aws.bucket, Key=key, Body=data)

    where = {"endpoint_url": endpoint, "region": aws.region}
    if kind == "s3_list":
        config = SOURCE_CONFIGS["s3_list"](bucket=aws.bucket, prefix="logs/", **where)
        return Rig(
            lambda: config.build(clock=fake_clock, store=store), land_object, lambda key: None
        )

    assert kind == "sqs", f"add a rig for source kind {kind!r}"
    config = SOURCE_CONFIGS["sqs"](
        queue_url=aws.queue_url, wait_time_s=0, visibility_timeout_s=1, **where
    )

    def announce_again(key: str) -> None:  # S3 notifications are at-least-once
        etag = s3.head_object(Bucket=aws.bucket, Key=key)["ETag"].strip('"')
        body = s3_event(s3_record(key, bucket=aws.bucket, etag=etag))
        sqs.send_message(QueueUrl=aws.queue_url, MessageBody=body)

    return Rig(
        lambda: config.build(clock=fake_clock, store=store),
        land_object,
        announce_again,
        redelivery_is_real_time=True,
    )


def collect(source: Source, want: int, *, patience_s: float) -> list[Delivery]:
    """Poll until ``want`` deliveries arrived, or ``patience_s`` of real time passed."""
    got: list[Delivery] = []
    deadline = time.monotonic() + patience_s
    while True:
        got += source.poll(max_objects=10)
        if len(got) >= want or time.monotonic() >= deadline:
            return got
        time.sleep(0.2)


def record(delivery: Delivery, clock: FakeClock) -> ProcessedRecord:
    now = clock.now()
    return ProcessedRecord.for_object(
        delivery.obj, rows=1, format="alb", started_at=now, finished_at=now
    )


def keys(deliveries: list[Delivery]) -> list[str]:
    return sorted(Path(d.obj.key or d.obj.uri).name for d in deliveries)


def test_an_object_is_recorded_only_by_its_ack(rig: Rig, store, fake_clock) -> None:
    for key in KEYS:
        rig.land(key, object_bytes(key))
    source = rig.build()
    first = collect(source, len(KEYS), patience_s=REDELIVERY_WAIT_S)
    assert keys(first) == sorted(Path(k).name for k in KEYS)
    assert not any(store.is_processed(*identity(d.obj)) for d in first)
    assert first[0].ack(record(first[0], fake_clock)) is True
    assert store.is_processed(*identity(first[0].obj))
    assert not store.is_processed(*identity(first[1].obj))
    assert store.count() == 1


def test_an_object_not_acknowledged_before_a_crash_is_delivered_again(
    rig: Rig, store, fake_clock
) -> None:
    for key in KEYS:
        rig.land(key, object_bytes(key))
    crashed = rig.build()
    taken = collect(crashed, len(KEYS), patience_s=REDELIVERY_WAIT_S)
    taken[0].ack(record(taken[0], fake_clock))  # the other dies with the process: no release

    restarted = rig.build()
    patience = REDELIVERY_WAIT_S if rig.redelivery_is_real_time else 0.0
    again = collect(restarted, 1, patience_s=patience)
    assert keys(again) == keys(taken[1:])
    assert again[0].ack(record(again[0], fake_clock)) is True
    assert store.count() == len(KEYS)


def test_delivering_an_acknowledged_object_again_changes_nothing(
    rig: Rig, store, fake_clock
) -> None:
    for key in KEYS:
        rig.land(key, object_bytes(key))
    source = rig.build()
    for delivery in collect(source, len(KEYS), patience_s=REDELIVERY_WAIT_S):
        assert delivery.ack(record(delivery, fake_clock)) is True
    recorded = store.records()
    for key in KEYS:
        rig.announce_again(key)

    restarted = rig.build()
    patience = REDELIVERY_WAIT_S if rig.redelivery_is_real_time else 0.0
    for delivery in collect(restarted, len(KEYS), patience_s=patience):
        assert delivery.ack(record(delivery, fake_clock)) is False  # already recorded
    assert restarted.poll(max_objects=10) == []
    assert store.count() == len(KEYS)
    assert store.records() == recorded
