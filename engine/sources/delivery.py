"""The hand-off between a source and the pipeline: deliveries that are acknowledged after commit.

A :class:`Source` hands out :class:`Delivery` objects. The pipeline reads ``delivery.obj``,
parses it, and calls ``delivery.ack(record)`` once the result is committed downstream: the
source records the object in the processed-objects store (one transaction) and only then
lets go of it upstream (for SQS: deletes the message once all its objects are acked). If
processing fails, ``delivery.release()`` gives it back. While a large object is read the
pipeline calls ``delivery.heartbeat()`` (or ``source.heartbeat()``) between batches; the
SQS source then extends the message's visibility when it is due (judged by the injected
clock), the others do nothing.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from engine.sources.objects import SourceError, SourceObject, iter_local
from engine.sources.processed import ProcessedRecord, ProcessedStore, identity


@runtime_checkable
class Delivery(Protocol):
    """One object handed to the pipeline, owed an ``ack`` or a ``release``."""

    obj: SourceObject

    def ack(self, record: ProcessedRecord) -> bool:
        """Record the object as processed; True if this call recorded it."""
        ...

    def release(self) -> None:
        """Give the object back unprocessed (it will be delivered again)."""
        ...

    def heartbeat(self) -> None:
        """Keep the claim on the object alive while it is being read."""
        ...


@runtime_checkable
class Source(Protocol):
    """Something that hands out deliveries."""

    def poll(self, *, max_objects: int = 10) -> list[Delivery]: ...

    def heartbeat(self) -> int: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


def check_record_matches(obj: SourceObject, record: ProcessedRecord) -> None:
    """Refuse to acknowledge one object with another object's record."""
    expected = identity(obj)
    got = (record.bucket, record.key, record.etag)
    if got != expected:
        raise SourceError(f"record for {got} cannot acknowledge {expected}")


class LocalDelivery:
    """A local file: ack records it in the store (when there is one)."""

    def __init__(self, source: LocalSource, obj: SourceObject) -> None:
        self.obj = obj
        self._source = source

    def ack(self, record: ProcessedRecord) -> bool:
        check_record_matches(self.obj, record)
        self._source.in_flight.discard(self.obj.uri)
        self._source.acked += 1
        if self._source.store is None:
            return True
        return self._source.store.commit(record)

    def release(self) -> None:
        self._source.in_flight.discard(self.obj.uri)
        self._source.pending.insert(0, self.obj)

    def heartbeat(self) -> None:
        """Nothing holds a claim on a local file."""


class LocalSource:
    """Files and directories, each file delivered once, in key order.

    With a ``store``, files already recorded (by path, and by ``etag`` which is ``None`` for
    local files) are skipped, so re-running over the same directory does no work twice.
    """

    def __init__(self, paths: list[str], *, store: ProcessedStore | None = None) -> None:
        self.paths = list(paths)
        self.store = store
        self.pending: list[SourceObject] = [obj for p in self.paths for obj in iter_local(p)]
        self.in_flight: set[str] = set()
        self.skipped = 0
        self.acked = 0

    def poll(self, *, max_objects: int = 10) -> list[Delivery]:
        out: list[Delivery] = []
        while self.pending and len(out) < max_objects:
            obj = self.pending.pop(0)
            if self.store is not None and self.store.is_processed(*identity(obj)):
                self.skipped += 1
                continue
            self.in_flight.add(obj.uri)
            out.append(LocalDelivery(self, obj))
        return out

    def heartbeat(self) -> int:
        return 0

    def stats(self) -> dict[str, Any]:
        return {
            "pending": len(self.pending),
            "in_flight": len(self.in_flight),
            "acked": self.acked,
            "skipped_already_processed": self.skipped,
        }

    def close(self) -> None:
        """Nothing to close."""
