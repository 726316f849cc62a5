"""S3 → SQS notifications source against moto over HTTP, with real bucket notifications."""

from __future__ import annotations

import gzip
import json

import pytest

from engine.sources import (
    ObjectGoneError,
    S3SqsSourceConfig,
)
from tests.support.source_events import eventbridge, s3_event, s3_record, sns
from tests.support.source_sqs import SpySqs, build, make_queue, messages_in, queue_arn, record_for

BUCKET = "alb-logs"
ALB_KEY = (
    "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/30/"
    "123456789012_elasticloadbalancing_us-east-1_app.web.1a2b_20261130T0905Z_198.51.100.7_x.log.gz"
)


@pytest.fixture()
def wired(s3, sqs):
    """A log bucket whose object-created and -removed events go to a queue (as in AWS)."""
    url = make_queue(sqs, "objects")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "wafsmith",
                    "QueueArn": queue_arn(sqs, url),
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                }
            ]
        },
    )
    return url


def test_real_notifications_test_event_then_objects_acked_and_deleted(
    wired, s3, sqs, sqlite_store, fake_clock
):
    source = build(wired, sqs, s3, sqlite_store, fake_clock)
    assert source.poll() == []  # the s3:TestEvent sent when the configuration was saved
    assert source.stats()["test_events"] == 1
    assert messages_in(sqs, wired) == (0, 0)

    body = gzip.compress(b"h2 2026-11-30T09:05:00Z app/web/1a2b 198.51.100.7:443 ...\n")
    odd_key = "cf/E2 logs/ü+%20naïve.2026-11-30-09.abc.gz"
    s3.put_object(Bucket=BUCKET, Key=ALB_KEY, Body=body)
    s3.put_object(Bucket=BUCKET, Key=odd_key, Body=b"cloudfront")

    deliveries = source.poll(max_objects=10)
    assert sorted(d.obj.key for d in deliveries) == sorted([ALB_KEY, odd_key])
    by_key = {d.obj.key: d for d in deliveries}
    assert by_key[ALB_KEY].obj.read() == body
    assert by_key[odd_key].obj.read() == b"cloudfront"
    assert by_key[ALB_KEY].obj.size == len(body) and by_key[ALB_KEY].obj.etag
    assert messages_in(sqs, wired) == (0, 2)

    for d in deliveries:
        assert d.ack(record_for(d, fake_clock)) is True
    assert messages_in(sqs, wired) == (0, 0)
    assert {r.key for r in sqlite_store.records(bucket=BUCKET)} == {ALB_KEY, odd_key}
    assert source.stats()["deleted"] == 3


def test_redelivery_of_a_committed_object_is_a_no_op(wired, s3, sqs, store, fake_clock):
    """On SQLite and PostgreSQL."""
    source = build(wired, sqs, s3, store, fake_clock)
    source.poll()
    s3.put_object(Bucket=BUCKET, Key=ALB_KEY, Body=b"same bytes")
    (d,) = source.poll()
    d.ack(record_for(d, fake_clock))

    s3.put_object(Bucket=BUCKET, Key=ALB_KEY, Body=b"same bytes")  # same ETag, announced again
    assert source.poll() == []
    assert source.stats()["skipped_processed"] == 1
    assert messages_in(sqs, wired) == (0, 0)
    assert store.count() == 1

    s3.put_object(Bucket=BUCKET, Key=ALB_KEY, Body=b"new bytes")  # new ETag: a new object
    (again,) = source.poll()
    assert again.obj.read() == b"new bytes"


def test_deletions_are_ignored_and_their_message_deleted(wired, s3, sqs, sqlite_store, fake_clock):
    s3.put_object(Bucket=BUCKET, Key="k.gz", Body=b"x")
    source = build(wired, sqs, s3, sqlite_store, fake_clock)
    for d in source.poll():
        d.ack(record_for(d, fake_clock))
    source.poll()
    s3.delete_object(Bucket=BUCKET, Key="k.gz")
    assert source.poll() == []
    assert source.stats()["ignored_events"] == 1
    assert messages_in(sqs, wired) == (0, 0)


def test_unparseable_message_is_kept_counted_and_dead_lettered(s3, sqs, sqlite_store, fake_clock):
    url = make_queue(sqs, "junk", dlq_after=2)
    dlq_url = sqs.get_queue_url(QueueName="junk-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="this is not an S3 event")
    source = build(url, sqs, s3, sqlite_store, fake_clock, visibility_timeout_s=0)

    assert source.poll() == []
    assert messages_in(sqs, url)[0] + messages_in(sqs, url)[1] == 1  # not deleted
    assert source.poll() == []
    assert source.poll() == []  # third receive: redrive has moved it
    stats = source.stats()
    assert stats["unparseable"] == 2 and stats["deleted"] == 0
    (sample, _) = stats["unparseable_samples"]
    assert sample["reason"].startswith("not JSON")
    assert sample["body"] == "this is not an S3 event"
    dead = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=0)["Messages"]
    assert [m["Body"] for m in dead] == ["this is not an S3 event"]


def test_unparseable_message_is_logged_as_a_named_warning(
    s3, sqs, sqlite_store, fake_clock, caplog
):
    url = make_queue(sqs, "logged")
    sqs.send_message(QueueUrl=url, MessageBody='{"Records": "nope"}')
    source = build(url, sqs, s3, sqlite_store, fake_clock)
    with caplog.at_level("WARNING", logger="engine.sources"):
        source.poll()
    (record,) = [r for r in caplog.records if r.getMessage() == "sqs_message_unparseable"]
    assert record.levelname == "WARNING"
    assert "non-empty list" in record.reason and record.queue_url == url


def test_unparseable_sample_is_bounded(s3, sqs, sqlite_store, fake_clock):
    url = make_queue(sqs, "many-junk")
    for i in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": i}))
    source = build(url, sqs, s3, sqlite_store, fake_clock, unparseable_sample_size=2)
    source.poll(max_objects=10)
    stats = source.stats()
    assert stats["unparseable"] == 5
    assert len(stats["unparseable_samples"]) == 2


def test_sns_wrapped_and_eventbridge_bodies(s3, sqs, sqlite_store, fake_clock):
    url = make_queue(sqs, "wrapped")
    s3.create_bucket(Bucket="logs")
    s3.put_object(Bucket="logs", Key="waf/a b.log.gz", Body=b"waf")
    s3.put_object(Bucket="logs", Key="AWSLogs/a%20b+c.gz", Body=b"eb")
    etag_a = s3.head_object(Bucket="logs", Key="waf/a b.log.gz")["ETag"].strip('"')
    record = s3_record("waf/a b.log.gz", etag=etag_a, size=3)
    sqs.send_message(QueueUrl=url, MessageBody=sns(s3_event(record)))
    sqs.send_message(QueueUrl=url, MessageBody=eventbridge("AWSLogs/a%20b+c.gz"))
    source = build(url, sqs, s3, sqlite_store, fake_clock)

    deliveries = source.poll(max_objects=10)
    found = {d.obj.key: d for d in deliveries}
    assert set(found) == {"waf/a b.log.gz", "AWSLogs/a%20b+c.gz"}
    assert found["waf/a b.log.gz"].obj.read() == b"waf"
    # The EventBridge sample carries a made-up etag: reading pins it, and S3 refuses.
    with pytest.raises(ObjectGoneError, match="PreconditionFailed"):
        found["AWSLogs/a%20b+c.gz"].obj.read()
    for d in deliveries:
        d.ack(record_for(d, fake_clock))
    assert messages_in(sqs, url) == (0, 0)


def test_message_with_several_objects_is_deleted_after_the_last_ack(
    s3, sqs, sqlite_store, fake_clock
):
    url = make_queue(sqs, "multi")
    sqs.send_message(QueueUrl=url, MessageBody=s3_event(s3_record("a"), s3_record("b")))
    source = build(url, sqs, s3, sqlite_store, fake_clock)
    first, second = source.poll()
    first.ack(record_for(first, fake_clock))
    assert messages_in(sqs, url) == (0, 1)
    second.ack(record_for(second, fake_clock))
    assert messages_in(sqs, url) == (0, 0)


def test_crash_before_commit_redelivers_and_partial_acks_are_not_repeated(
    s3, sqs, sqlite_store, fake_clock
):
    url = make_queue(sqs, "crash")
    sqs.send_message(QueueUrl=url, MessageBody=s3_event(s3_record("a"), s3_record("b")))
    source = build(url, sqs, s3, sqlite_store, fake_clock)
    first, _second = source.poll()
    first.ack(record_for(first, fake_clock))
    source.close()  # a shutdown gives the message back (a crash would wait for the timeout)

    restarted = build(url, sqs, s3, sqlite_store, fake_clock)
    (again,) = restarted.poll()
    assert again.obj.key == "b"
    again.ack(record_for(again, fake_clock))
    assert messages_in(sqs, url) == (0, 0)
    assert sorted(r.key for r in sqlite_store.records()) == ["a", "b"]


def test_release_makes_the_message_visible_at_once(s3, sqs, sqlite_store, fake_clock):
    url = make_queue(sqs, "release")
    sqs.send_message(QueueUrl=url, MessageBody=s3_event(s3_record("a")))
    source = build(url, sqs, s3, sqlite_store, fake_clock)
    (d,) = source.poll()
    d.release()
    assert messages_in(sqs, url) == (1, 0)
    (d2,) = source.poll()
    assert d2.obj.key == "a"


def test_heartbeat_extends_visibility_when_due_on_the_injected_clock(
    s3, sqs, sqlite_store, fake_clock
):
    url = make_queue(sqs, "slow")
    sqs.send_message(QueueUrl=url, MessageBody=s3_event(s3_record("big.gz")))
    spy = SpySqs(sqs)
    source = build(url, spy, s3, sqlite_store, fake_clock, visibility_timeout_s=120)
    (d,) = source.poll()

    fake_clock.advance(59)
    d.heartbeat()
    assert source.heartbeat() == 0 and spy.visibility_calls == []
    fake_clock.advance(1)
    d.heartbeat()
    assert spy.visibility_calls == [120]
    assert source.heartbeat() == 0  # just extended
    fake_clock.advance(60)
    assert source.heartbeat() == 1
    assert spy.visibility_calls == [120, 120]
    assert messages_in(sqs, url) == (0, 1)

    d.ack(record_for(d, fake_clock))
    fake_clock.advance(600)
    assert source.heartbeat() == 0
    assert source.stats()["visibility_extensions"] == 2


def test_config_refuses_unknown_keys_and_builds_real_clients(aws_endpoint, sqs, tmp_path):
    with pytest.raises(ValueError, match="extra"):
        S3SqsSourceConfig(queue_url="u", surprise=1)
    url = make_queue(sqs, "configured")
    sqs.send_message(QueueUrl=url, MessageBody=s3_event(s3_record("a")))
    config = S3SqsSourceConfig.model_validate(
        {
            "queue_url": url,
            "endpoint_url": aws_endpoint,
            "region": "us-east-1",
            "wait_time_s": 0,
            "store": {"url": f"sqlite:///{tmp_path / 'x.db'}"},
        }
    )
    source = config.build()
    assert [d.obj.key for d in source.poll()] == ["a"]
    source.close()
    source.store.close()


def test_real_eventbridge_route_keys_are_not_decoded(
    aws_endpoint, boto_session, s3, sqs, sqlite_store, fake_clock
):
    """S3 → EventBridge rule → SQS, configured as log-formats.md §6.4 describes."""
    events = boto_session.client("events", endpoint_url=aws_endpoint)
    url = make_queue(sqs, "from-eventbridge")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    events.put_rule(
        Name="log-objects",
        EventPattern=json.dumps({"source": ["aws.s3"], "detail-type": ["Object Created"]}),
    )
    events.put_targets(Rule="log-objects", Targets=[{"Id": "q", "Arn": queue_arn(sqs, url)}])
    key = "AWSLogs/123456789012/WAFLogs/us-east-1/acl 1/a+b%20c ü.log.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"waf records")

    source = build(url, sqs, s3, sqlite_store, fake_clock)
    deliveries = source.poll(max_objects=10)
    assert [d.obj.key for d in deliveries] == [key]
    assert deliveries[0].obj.read() == b"waf records"
    deliveries[0].ack(record_for(deliveries[0], fake_clock))
    assert messages_in(sqs, url) == (0, 0)


def test_crash_without_close_redelivers_after_the_visibility_timeout(
    s3, sqs, sqlite_store, fake_clock
):
    url = make_queue(sqs, "hard-crash")
    s3.create_bucket(Bucket="logs")
    s3.put_object(Bucket="logs", Key="a", Body=b"x")
    etag = s3.head_object(Bucket="logs", Key="a")["ETag"].strip('"')
    sqs.send_message(QueueUrl=url, MessageBody=s3_event(s3_record("a", etag=etag)))
    crashed = build(url, sqs, s3, sqlite_store, fake_clock)
    (d,) = crashed.poll()
    d.obj.read()  # processed, then the process dies: no ack, no close
    assert messages_in(sqs, url) == (0, 1)
    # What SQS does when the visibility timeout runs out, without waiting for it:
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=d.message.receipt_handle, VisibilityTimeout=0
    )

    restarted = build(url, sqs, s3, sqlite_store, fake_clock)
    (again,) = restarted.poll()
    assert again.obj == d.obj
    assert again.ack(record_for(again, fake_clock)) is True
    assert messages_in(sqs, url) == (0, 0)
    assert sqlite_store.count() == 1


def test_two_consumers_of_one_message_record_it_once(s3, sqs, sqlite_store, fake_clock):
    """The claim of the first consumer expired; both finish; the store keeps one record."""
    url = make_queue(sqs, "shared")
    sqs.send_message(QueueUrl=url, MessageBody=s3_event(s3_record("a")))
    slow = build(url, sqs, s3, sqlite_store, fake_clock, visibility_timeout_s=0)
    fast = build(url, sqs, s3, sqlite_store, fake_clock)
    (d_slow,) = slow.poll()
    (d_fast,) = fast.poll()
    assert d_fast.ack(record_for(d_fast, fake_clock)) is True
    assert d_slow.ack(record_for(d_slow, fake_clock)) is False
    assert messages_in(sqs, url) == (0, 0)
    assert sqlite_store.count() == 1


def test_large_object_read_in_chunks_with_heartbeats_between_them(
    s3, sqs, sqlite_store, fake_clock
):
    """The pattern the pipeline follows: read a batch, heartbeat, read the next, then ack."""
    url = make_queue(sqs, "large")
    s3.create_bucket(Bucket="logs")
    payload = gzip.compress(b"".join(b"line %07d\n" % i for i in range(200_000)), 1)
    s3.put_object(Bucket="logs", Key="big.log.gz", Body=payload)
    etag = s3.head_object(Bucket="logs", Key="big.log.gz")["ETag"].strip('"')
    sqs.send_message(
        QueueUrl=url, MessageBody=s3_event(s3_record("big.log.gz", etag=etag, size=len(payload)))
    )
    spy = SpySqs(sqs)
    source = build(url, spy, s3, sqlite_store, fake_clock, visibility_timeout_s=30)
    (d,) = source.poll()
    chunks = []
    with d.obj.open() as stream:
        while chunk := stream.read(64 * 1024):
            chunks.append(chunk)
            fake_clock.advance(5)  # each batch takes 5 s of (injected) time
            d.heartbeat()
    assert b"".join(chunks) == payload
    assert len(chunks) >= 3
    assert spy.visibility_calls == [30] * (len(chunks) // 3)  # every 15 s of the 30 s claim
    d.ack(record_for(d, fake_clock))
    assert messages_in(sqs, url) == (0, 0)
