"""KeepAlive: heartbeats on a thread while one long call runs, stopped when the block ends."""

from __future__ import annotations

import threading

import pytest

from engine.sources import KeepAlive, SourceError
from tests.support.source_events import s3_event, s3_record
from tests.support.source_sqs import SpySqs, build, make_queue, messages_in, record_for


def test_keepalive_extends_visibility_during_one_long_call(s3, sqs, sqlite_store, fake_clock):
    url = make_queue(sqs, "long-call")
    sqs.send_message(QueueUrl=url, MessageBody=s3_event(s3_record("big.gz")))
    spy = SpySqs(sqs)
    source = build(url, spy, s3, sqlite_store, fake_clock, visibility_timeout_s=120)
    (d,) = source.poll()
    fake_clock.advance(90)  # the long call has been running for 90 s of injected time
    beaten = threading.Event()

    def beat() -> None:
        source.heartbeat()
        beaten.set()

    with KeepAlive(beat, interval_s=0.005) as keepalive:
        assert beaten.wait(timeout=30)  # stands for the long parse
        assert keepalive.running
    assert not keepalive.running
    ticks = keepalive.beats
    assert spy.visibility_calls == [120]  # due once on the injected clock, however many ticks
    d.ack(record_for(d, fake_clock))
    assert messages_in(sqs, url) == (0, 0)
    assert keepalive.beats == ticks  # nothing ticks after the block


def test_keepalive_reraises_a_failed_heartbeat():
    failed = threading.Event()

    def beat() -> None:
        failed.set()
        raise RuntimeError("AccessDenied on ChangeMessageVisibility")

    with (
        pytest.raises(SourceError, match="heartbeat failed: AccessDenied"),
        KeepAlive(beat, interval_s=0.005),
    ):
        assert failed.wait(timeout=30)


def test_keepalive_does_not_hide_the_blocks_own_error():
    with pytest.raises(KeyError), KeepAlive(lambda: None, interval_s=60) as keepalive:
        raise KeyError("parser")
    assert not keepalive.running


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match="interval_s"):
        KeepAlive(lambda: None, interval_s=0)
