"""Notification bodies: plain S3 events, the test event, SNS-wrapped, EventBridge, and junk."""

from __future__ import annotations

import json
from urllib.parse import quote_plus

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.sources import BodyKind, decode_body
from tests.support.source_events import eventbridge, s3_event, s3_record, sns


def test_plain_s3_event_keys_are_url_decoded():
    body = s3_event(s3_record("AWSLogs/1/elb/x y+z ü%.log.gz"))
    assert quote_plus("/") in body  # moto-style: even "/" is encoded
    decoded = decode_body(body)
    assert decoded.kind is BodyKind.OBJECTS and decoded.via == "s3"
    (obj,) = decoded.objects
    assert obj.key == "AWSLogs/1/elb/x y+z ü%.log.gz"
    assert (obj.bucket, obj.etag, obj.size, obj.event_name) == (
        "logs",
        "abc",
        10,
        "ObjectCreated:Put",
    )


def test_aws_style_plus_for_space():
    record = s3_record("x")
    record["s3"]["object"]["key"] = "AWSLogs/a+b%2Bc.gz"
    (obj,) = decode_body(s3_event(record)).objects
    assert obj.key == "AWSLogs/a b+c.gz"


def test_several_records_and_deletions_in_one_message():
    body = s3_event(
        s3_record("a"),
        s3_record("b", name="ObjectRemoved:Delete"),
        s3_record("c", name="ObjectCreated:CompleteMultipartUpload"),
    )
    decoded = decode_body(body)
    assert [o.key for o in decoded.objects] == ["a", "c"]
    assert decoded.ignored == 1


def test_only_deletions_is_ignored_not_unparseable():
    decoded = decode_body(s3_event(s3_record("a", name="ObjectRemoved:Delete")))
    assert decoded.kind is BodyKind.IGNORED and decoded.ignored == 1


def test_test_event_direct_and_through_sns():
    test = json.dumps(
        {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "t", "Bucket": "logs"}
    )
    assert decode_body(test).kind is BodyKind.TEST_EVENT
    assert decode_body(sns(test)).kind is BodyKind.TEST_EVENT


def test_sns_wrapped_event_is_decoded_twice():
    decoded = decode_body(sns(s3_event(s3_record("a b.gz"))))
    assert decoded.via == "sns"
    assert [o.key for o in decoded.objects] == ["a b.gz"]


def test_eventbridge_keys_are_not_decoded():
    decoded = decode_body(eventbridge("AWSLogs/a%20b+c.gz"))
    assert decoded.via == "eventbridge"
    (obj,) = decoded.objects
    assert (obj.bucket, obj.key, obj.etag, obj.size) == ("logs", "AWSLogs/a%20b+c.gz", "e", 5)
    assert obj.sequencer == "00617F08299329D189"
    assert decode_body(eventbridge("k", detail_type="Object Deleted")).kind is BodyKind.IGNORED


def test_unparseable_bodies_say_why():
    cases = {
        "not json at all": "not JSON",
        "[1, 2]": "not an object",
        "{}": "no Records",
        '{"Records": []}': "non-empty list",
        '{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}': "s3",
        json.dumps({"Type": "Notification", "Message": {"Records": []}}): "Message is not a string",
        s3_event(s3_record("a"), {"eventName": 3}): "Records[1]",
    }
    for body, reason in cases.items():
        decoded = decode_body(body)
        assert decoded.kind is BodyKind.UNPARSEABLE, body
        assert reason in decoded.reason, (body, decoded.reason)
        assert decoded.objects == ()


def test_one_bad_record_makes_the_whole_message_unparseable():
    bad = s3_record("b")
    bad["s3"]["object"]["size"] = "big"
    decoded = decode_body(s3_event(s3_record("a"), bad))
    assert decoded.kind is BodyKind.UNPARSEABLE and "size" in decoded.reason


def test_non_text_body_and_deep_nesting_never_raise():
    assert decode_body(None).kind is BodyKind.UNPARSEABLE
    assert decode_body("[" * 100_000 + "]" * 100_000).kind is BodyKind.UNPARSEABLE
    assert decode_body(sns(sns(sns(s3_event(s3_record("a")))))).kind is BodyKind.UNPARSEABLE


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=30,
)
SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "Records": st.lists(JSON, max_size=3),
        "Type": st.sampled_from(["Notification", "x"]),
        "Message": JSON | st.text(),
        "Event": st.sampled_from(["s3:TestEvent", "other"]),
        "source": st.sampled_from(["aws.s3", "aws.ec2"]),
        "detail-type": JSON,
        "detail": JSON,
    },
)


@settings(max_examples=200, deadline=None)
@given(JSON | SHAPED)
def test_arbitrary_json_never_raises(doc):
    for body in (json.dumps(doc), sns(json.dumps(doc))):
        decoded = decode_body(body)
        assert isinstance(decoded.kind, BodyKind)
        if decoded.kind is BodyKind.UNPARSEABLE:
            assert decoded.reason and not decoded.objects
        elif decoded.kind is BodyKind.OBJECTS:
            assert all(o.bucket and o.key for o in decoded.objects)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_any_key_round_trips_through_s3_url_encoding(key):
    (obj,) = decode_body(s3_event(s3_record(key))).objects
    assert obj.key == key
    (via_eb,) = decode_body(eventbridge(key)).objects
    assert via_eb.key == key


def test_key_that_is_not_unicode_once_decoded_is_unparseable():
    body = s3_event(s3_record("x")).replace('"key": "x"', '"key": "\\ud800.gz"')
    assert "ud800" in body
    decoded = decode_body(body)
    assert decoded.kind is BodyKind.UNPARSEABLE and "Unicode" in decoded.reason
