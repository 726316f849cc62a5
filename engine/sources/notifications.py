"""Decode an SQS message body that announces S3 objects, whatever road it took.

Four shapes reach the queue (log-formats.md §6):
- a plain S3 event notification ``{"Records": [...]}`` whose object keys are URL-encoded
  (``+`` for space, ``%xx``; moto also encodes ``/``);
- the ``s3:TestEvent`` S3 sends when a notification configuration is saved (no object);
- an SNS envelope (``"Type": "Notification"``) whose ``Message`` string is one of the above;
- an EventBridge event (``"source": "aws.s3"``, ``"detail-type": "Object Created"``) whose
  ``detail.object.key`` is NOT encoded.

:func:`decode_body` never raises: it returns the announced objects, or says the message is a
test event, only announces things wafsmith ignores (deletions, restores…), or cannot be
understood, with the reason. A message with one bad record is unparseable as a whole, so it is
never half-processed and deleted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import unquote_plus

S3_EVENT_SOURCE = "aws:s3"
EVENTBRIDGE_SOURCE = "aws.s3"
OBJECT_CREATED = "Object Created"
TEST_EVENT = "s3:TestEvent"
_MAX_SNS_DEPTH = 2


class BodyKind(Enum):
    OBJECTS = "objects"
    TEST_EVENT = "test_event"
    IGNORED = "ignored"
    UNPARSEABLE = "unparseable"


@dataclass(frozen=True)
class ObjectEvent:
    """One object an event announced; ``key`` is already decoded."""

    bucket: str
    key: str
    etag: str | None = None
    size: int | None = None
    event_name: str | None = None
    event_time: str | None = None
    sequencer: str | None = None


@dataclass(frozen=True)
class DecodedBody:
    """The meaning of one message body."""

    kind: BodyKind
    objects: tuple[ObjectEvent, ...] = ()
    ignored: int = 0
    reason: str | None = None
    via: str | None = None  # "s3", "sns", "eventbridge"


class _Unparseable(Exception):
    """Internal: the body does not have the shape it claims."""


def unparseable(reason: str) -> DecodedBody:
    return DecodedBody(BodyKind.UNPARSEABLE, reason=reason)


def decode_body(body: Any) -> DecodedBody:
    """Decode an SQS message body (a ``str``); never raises."""
    if not isinstance(body, str):
        return unparseable("body is not text")
    try:
        return _decode_text(body, depth=0, via="s3")
    except _Unparseable as exc:
        return unparseable(str(exc))
    except RecursionError:
        return unparseable("JSON nested too deeply")


def _decode_text(text: str, *, depth: int, via: str) -> DecodedBody:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _Unparseable(f"not JSON: {type(exc).__name__}") from None
    if not isinstance(doc, dict):
        raise _Unparseable(f"JSON {type(doc).__name__}, not an object")
    if doc.get("Type") == "Notification" and "Message" in doc:
        if depth >= _MAX_SNS_DEPTH:
            raise _Unparseable("SNS envelopes nested too deeply")
        message = doc["Message"]
        if not isinstance(message, str):
            raise _Unparseable("SNS Message is not a string")
        return _decode_text(message, depth=depth + 1, via="sns")
    if doc.get("Event") == TEST_EVENT:
        return DecodedBody(BodyKind.TEST_EVENT, via=via)
    if "Records" in doc:
        return _decode_s3_records(doc["Records"], via=via)
    if doc.get("source") == EVENTBRIDGE_SOURCE and "detail-type" in doc:
        return _decode_eventbridge(doc)
    raise _Unparseable("no Records, not a test event, SNS notification or EventBridge event")


def _decoded(objects: list[ObjectEvent], ignored: int, via: str) -> DecodedBody:
    kind = BodyKind.OBJECTS if objects else BodyKind.IGNORED
    return DecodedBody(kind, objects=tuple(objects), ignored=ignored, via=via)


def _decode_s3_records(records: Any, *, via: str) -> DecodedBody:
    if not isinstance(records, list) or not records:
        raise _Unparseable("Records is not a non-empty list")
    objects: list[ObjectEvent] = []
    ignored = 0
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise _Unparseable(f"Records[{index}] is not an object")
        source = record.get("eventSource", S3_EVENT_SOURCE)
        name = record.get("eventName")
        if source != S3_EVENT_SOURCE or not isinstance(name, str):
            raise _Unparseable(f"Records[{index}] is not an S3 event")
        if not name.removeprefix("s3:").startswith("ObjectCreated:"):
            ignored += 1
            continue
        s3 = _mapping(record.get("s3"), f"Records[{index}].s3")
        bucket = _text(_mapping(s3.get("bucket"), "s3.bucket").get("name"), "s3.bucket.name")
        obj = _mapping(s3.get("object"), "s3.object")
        raw_key = _text(obj.get("key"), "s3.object.key")
        objects.append(
            ObjectEvent(
                bucket=bucket,
                key=_key(unquote_plus(raw_key), "s3.object.key"),
                etag=_optional_text(obj.get("eTag"), "s3.object.eTag"),
                size=_optional_size(obj.get("size"), "s3.object.size"),
                event_name=name,
                event_time=_optional_text(record.get("eventTime"), "eventTime"),
                sequencer=_optional_text(obj.get("sequencer"), "s3.object.sequencer"),
            )
        )
    return _decoded(objects, ignored, via)


def _decode_eventbridge(doc: dict[str, Any]) -> DecodedBody:
    detail_type = doc["detail-type"]
    if detail_type != OBJECT_CREATED:
        if not isinstance(detail_type, str):
            raise _Unparseable("EventBridge detail-type is not a string")
        return _decoded([], 1, "eventbridge")
    detail = _mapping(doc.get("detail"), "detail")
    bucket = _text(_mapping(detail.get("bucket"), "detail.bucket").get("name"), "bucket.name")
    obj = _mapping(detail.get("object"), "detail.object")
    # EventBridge keys are not URL-encoded: use them as they are.
    event = ObjectEvent(
        bucket=bucket,
        key=_key(_text(obj.get("key"), "detail.object.key"), "detail.object.key"),
        etag=_optional_text(obj.get("etag"), "detail.object.etag"),
        size=_optional_size(obj.get("size"), "detail.object.size"),
        event_name=detail_type,
        event_time=_optional_text(doc.get("time"), "time"),
        sequencer=_optional_text(obj.get("sequencer"), "detail.object.sequencer"),
    )
    return _decoded([event], 0, "eventbridge")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Unparseable(f"{where} is missing or not an object")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise _Unparseable(f"{where} is missing or not a non-empty string")
    return value


def _key(value: str, where: str) -> str:
    """A decoded key must be valid Unicode, or no S3 call can name it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Unparseable(f"{where} is not valid Unicode once decoded") from None
    return value


def _optional_text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Unparseable(f"{where} is not a string")
    return value


def _optional_size(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Unparseable(f"{where} is not a non-negative integer")
    return value
