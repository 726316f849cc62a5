"""S3 notifications source: S3 event notifications (plain, SNS-wrapped or EventBridge) via SQS.

Rules it keeps (log-formats.md §6.5):
- An SQS message is deleted only after every object it announces is recorded in the
  processed-objects store (at-least-once reading, exactly-once recording).
- Objects already recorded (same bucket, key, ETag) are skipped; a message that announces only
  such objects, a test event, or only deletions is deleted at once.
- A message that cannot be understood is not deleted: it becomes visible again after the
  visibility timeout, and the queue's redrive policy moves it to a dead-letter queue after
  ``maxReceiveCount`` receives. Each receipt is counted, and a bounded sample (message id,
  reason, start of the body) is kept for the operator.
- While a large object is read, the pipeline calls ``heartbeat()`` between batches; once
  ``heartbeat_fraction`` of the visibility timeout has passed on the injected clock, the
  message's visibility is extended (ChangeMessageVisibility) by another full timeout.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from engine.core.clock import Clock
from engine.core.logging import log_event
from engine.sources.delivery import Delivery, check_record_matches
from engine.sources.notifications import BodyKind, ObjectEvent, decode_body
from engine.sources.objects import S3_SCHEME, SourceError, SourceObject, normalize_etag
from engine.sources.processed import ProcessedRecord, ProcessedStore, identity
from engine.sources.quarantine import DEFAULT_PREFIX, is_quarantined

_GONE_RECEIPT_CODES = {"ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight"}
_BODY_SAMPLE_CHARS = 512
LOG = logging.getLogger(__name__)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass
class _Message:
    """One received SQS message and the objects of it still owed an ack."""

    message_id: str
    receipt_handle: str
    pending: set[tuple[str, str, str]]
    extended_at: float
    released: bool = False
    deleted: bool = False

    @property
    def open(self) -> bool:
        return not (self.released or self.deleted)


@dataclass
class SqsStats:
    """What the source has seen; ``unparseable_samples`` holds at most ``sample_size`` items."""

    received: int = 0
    deleted: int = 0
    test_events: int = 0
    ignored_events: int = 0
    skipped_processed: int = 0
    skipped_quarantine: int = 0  # announcements of the engine's own quarantine copies
    delivered: int = 0
    acked: int = 0
    released: int = 0
    visibility_extensions: int = 0
    lost_receipts: int = 0
    unparseable: int = 0
    unparseable_samples: deque[dict[str, str]] = field(default_factory=lambda: deque(maxlen=20))


class SqsDelivery:
    """An object announced by an SQS message; the message goes when its last object is acked."""

    def __init__(self, source: S3SqsSource, message: _Message, obj: SourceObject) -> None:
        self.obj = obj
        self.message = message
        self._source = source

    def ack(self, record: ProcessedRecord) -> bool:
        check_record_matches(self.obj, record)
        recorded = self._source.store.commit(record)
        self._source.acked(self.message, identity(self.obj))
        return recorded

    def release(self) -> None:
        self._source.release(self.message)

    def heartbeat(self) -> None:
        self._source.extend_if_due(self.message)


class S3SqsSource:
    """Receive S3 object announcements from an SQS queue; see the module docstring."""

    def __init__(
        self,
        *,
        queue_url: str,
        store: ProcessedStore,
        sqs_client: Any,
        s3_client: Any,
        clock: Clock,
        wait_time_s: int = 20,
        visibility_timeout_s: int = 300,
        max_messages: int = 10,
        heartbeat_fraction: float = 0.5,
        sample_size: int = 20,
        quarantine_prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.queue_url = queue_url
        self.quarantine_prefix = quarantine_prefix
        self.store = store
        self.sqs = sqs_client
        self.s3 = s3_client
        self.clock = clock
        self.wait_time_s = wait_time_s
        self.visibility_timeout_s = visibility_timeout_s
        self.max_messages = max_messages
        self.heartbeat_fraction = heartbeat_fraction
        self.counters = SqsStats(unparseable_samples=deque(maxlen=sample_size))
        self.in_flight: dict[str, _Message] = {}
        # ack/release (pipeline thread) and heartbeat (possibly a KeepAlive thread) share state.
        self._lock = threading.RLock()

    # -- receiving ---------------------------------------------------------------------------

    def poll(self, *, max_objects: int = 10) -> list[Delivery]:
        """Receive once (long poll) and return the objects that still need processing.

        At most ``min(max_objects, max_messages, 10)`` messages are received; a message that
        announces several objects yields all of them.
        """
        count = max(1, min(max_objects, self.max_messages, 10))
        try:
            reply = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=count,
                WaitTimeSeconds=self.wait_time_s,
                VisibilityTimeout=self.visibility_timeout_s,
            )
        except ClientError as exc:
            raise SourceError(f"cannot receive from {self.queue_url}: {exc}") from exc
        deliveries: list[Delivery] = []
        for message in reply.get("Messages", []):
            self.counters.received += 1
            deliveries.extend(self._handle(message))
        self.counters.delivered += len(deliveries)
        return deliveries

    def _handle(self, message: dict[str, Any]) -> list[Delivery]:
        decoded = decode_body(message.get("Body"))
        receipt = message["ReceiptHandle"]
        message_id = message.get("MessageId", "")
        if decoded.kind is BodyKind.UNPARSEABLE:
            self._count_unparseable(message_id, decoded.reason or "", message.get("Body"))
            return []
        self.counters.ignored_events += decoded.ignored
        if decoded.kind is BodyKind.TEST_EVENT:
            self.counters.test_events += 1
        objects = self._unprocessed(decoded.objects)
        if not objects:
            self._delete(receipt)
            return []
        now = self.clock.monotonic()
        tracked = _Message(message_id, receipt, {identity(o) for o in objects}, extended_at=now)
        with self._lock:
            self.in_flight[receipt] = tracked
        return [SqsDelivery(self, tracked, obj) for obj in objects]

    def _unprocessed(self, events: tuple[ObjectEvent, ...]) -> list[SourceObject]:
        """The announced objects not yet recorded, each once, in announcement order."""
        objects: dict[tuple[str, str, str], SourceObject] = {}
        ours = [e for e in events if is_quarantined(e.key, self.quarantine_prefix)]
        self.counters.skipped_quarantine += len(ours)
        for event in events:
            if is_quarantined(event.key, self.quarantine_prefix):
                continue
            obj = SourceObject(
                uri=f"{S3_SCHEME}{event.bucket}/{event.key}",
                bucket=event.bucket,
                key=event.key,
                etag=normalize_etag(event.etag),
                size=event.size,
                s3_client=self.s3,
            )
            objects.setdefault(identity(obj), obj)
        fresh = [o for ident, o in objects.items() if not self.store.is_processed(*ident)]
        self.counters.skipped_processed += len(events) - len(ours) - len(fresh)
        return fresh

    def _count_unparseable(self, message_id: str, reason: str, body: Any) -> None:
        self.counters.unparseable += 1
        text = body if isinstance(body, str) else repr(body)
        log_event(
            LOG,
            "sqs_message_unparseable",
            level=logging.WARNING,
            queue_url=self.queue_url,
            message_id=message_id,
            reason=reason,
            action="left for the queue's redrive policy",
        )
        self.counters.unparseable_samples.append(
            {"message_id": message_id, "reason": reason, "body": text[:_BODY_SAMPLE_CHARS]}
        )

    # -- acknowledging -----------------------------------------------------------------------

    def acked(self, message: _Message, ident: tuple[str, str, str]) -> None:
        """One object of ``message`` is recorded; delete the message when none is left."""
        with self._lock:
            self.counters.acked += 1
            message.pending.discard(ident)
            if message.pending or not message.open:
                return
            message.deleted = True
            self.in_flight.pop(message.receipt_handle, None)
            self._delete(message.receipt_handle)

    def release(self, message: _Message) -> None:
        """Make ``message`` visible again now (its objects will be delivered again)."""
        with self._lock:
            self.counters.released += 1
            if not message.open:
                return
            message.released = True
            self.in_flight.pop(message.receipt_handle, None)
            self._change_visibility(message, 0)

    def _delete(self, receipt: str) -> None:
        try:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
        except ClientError as exc:
            if _error_code(exc) not in _GONE_RECEIPT_CODES:
                raise SourceError(f"cannot delete a message from {self.queue_url}: {exc}") from exc
            # The receipt expired and the message is visible again; its objects are recorded,
            # so the next delivery of it is skipped and deleted then.
            self.counters.lost_receipts += 1
            log_event(LOG, "sqs_receipt_lost", queue_url=self.queue_url, error=_error_code(exc))
            return
        self.counters.deleted += 1

    # -- visibility --------------------------------------------------------------------------

    def extend_if_due(self, message: _Message) -> bool:
        """Extend ``message``'s visibility if ``heartbeat_fraction`` of it has elapsed."""
        with self._lock:
            if not message.open:
                return False
            now = self.clock.monotonic()
            if now - message.extended_at < self.visibility_timeout_s * self.heartbeat_fraction:
                return False
            if self._change_visibility(message, self.visibility_timeout_s):
                message.extended_at = now
                self.counters.visibility_extensions += 1
                return True
            return False

    def heartbeat(self) -> int:
        """Extend every in-flight message that is due; returns how many were extended."""
        with self._lock:
            messages = list(self.in_flight.values())
        return sum(self.extend_if_due(m) for m in messages)

    def _change_visibility(self, message: _Message, seconds: int) -> bool:
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url,
                ReceiptHandle=message.receipt_handle,
                VisibilityTimeout=seconds,
            )
        except ClientError as exc:
            if _error_code(exc) not in _GONE_RECEIPT_CODES:
                raise SourceError(f"cannot change visibility on {self.queue_url}: {exc}") from exc
            self.counters.lost_receipts += 1
            message.released = True
            self.in_flight.pop(message.receipt_handle, None)
            return False
        return True

    # -- reporting ---------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        c = self.counters
        out = {k: v for k, v in vars(c).items() if k != "unparseable_samples"}
        out["unparseable_samples"] = list(c.unparseable_samples)
        out["in_flight_messages"] = len(self.in_flight)
        return out

    def close(self) -> None:
        """Give back every message still in flight, so another consumer can take it now."""
        for message in list(self.in_flight.values()):
            self.release(message)
