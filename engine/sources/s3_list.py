"""S3 listing source: poll a bucket prefix, with a durable checkpoint that tolerates late keys.

Why not "last key seen": CloudFront names files by the *event* hour and may deliver them up to
24 hours late, so a new object can sort before objects already processed (log-formats.md §2.4).

How it works
------------
- The processed-objects store is the truth for "done": an object is skipped iff its
  ``(bucket, key, etag)`` is recorded there. Recording happens in ``ack`` (one transaction).
- Each poll lists the prefix from a ``StartAfter`` cursor, checks the listed keys against the
  store in batches, and hands out the first ``max_objects`` that are neither recorded nor
  already handed out by this process.
- While listing it computes the *frontier*: the last key of the leading run of recorded
  objects (everything listed up to it is done). It keeps timed snapshots ``(t, frontier)`` in
  the store's checkpoint table, at most one per ``checkpoint_interval_s``.
- The cursor for a poll at time ``now`` is the newest snapshot taken at or before
  ``now - lookback_s``. So every key that was appended during the last ``lookback_s``
  seconds is listed again on every poll, and a late object with an older key is still found.

Guarantee
---------
- A restart never re-reads an object whose ``ack`` returned (it is in the store) and never
  skips one that was not acked (a crash between processing and commit re-delivers it: it is
  read again, committed once).
- A late object is found as long as its key sorts after the frontier as it stood
  ``lookback_s`` seconds before the object appeared. Set ``lookback_s`` above the longest
  delivery delay (CloudFront: 24 h, hence the default of 25 h). Objects whose key sorts at or
  before that older frontier are not listed again.
- The cost of this is re-listing (not re-reading) the keys of the lookback window on every
  poll: one ``ListObjectsV2`` page per 1,000 keys and one store query per page.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from engine.core.clock import Clock
from engine.sources.delivery import Delivery, check_record_matches
from engine.sources.objects import SourceError, SourceObject, s3_object_from_listing
from engine.sources.store import ProcessedRecord, ProcessedStore, identity


class S3ListDelivery:
    """An object found by listing; ``ack`` records it, which is all "done" means here."""

    def __init__(self, source: S3ListSource, obj: SourceObject) -> None:
        self.obj = obj
        self._source = source

    def ack(self, record: ProcessedRecord) -> bool:
        check_record_matches(self.obj, record)
        recorded = self._source.store.commit(record)
        self._source.finish(self.obj, acked=True)
        return recorded

    def release(self) -> None:
        self._source.finish(self.obj, acked=False)

    def heartbeat(self) -> None:
        """A listing holds no claim that could expire."""


class S3ListSource:
    """Poll ``s3://bucket/prefix`` for new objects; see the module docstring for guarantees."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        store: ProcessedStore,
        s3_client: Any,
        clock: Clock,
        lookback_s: float = 25 * 3600,
        checkpoint_interval_s: float = 60.0,
        start_after: str | None = None,
        name: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.store = store
        self.s3 = s3_client
        self.clock = clock
        self.lookback_s = lookback_s
        self.checkpoint_interval_s = checkpoint_interval_s
        self.initial_start_after = start_after
        self.checkpoint_name = name or f"s3list:{bucket}/{prefix}"
        self.in_flight: set[tuple[str, str, str]] = set()
        self.counters = {"listed": 0, "skipped_processed": 0, "delivered": 0, "acked": 0}
        self.counters["released"] = 0

    # -- checkpoint --------------------------------------------------------------------------

    def snapshots(self) -> list[tuple[float, str]]:
        """The stored ``(time, frontier key)`` snapshots, oldest first."""
        state = self.store.read_checkpoint(self.checkpoint_name)
        if state is None:
            return []
        try:
            return [(float(t), str(k)) for t, k in json.loads(state)["snapshots"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise SourceError(f"checkpoint {self.checkpoint_name!r} is corrupt: {exc}") from exc

    def cursor(self, now: float) -> str | None:
        """The ``StartAfter`` key for a poll at ``now``: the frontier of ``lookback_s`` ago."""
        cutoff = now - self.lookback_s
        old_enough = [key for t, key in self.snapshots() if t <= cutoff]
        return old_enough[-1] if old_enough else self.initial_start_after

    def _record_frontier(self, now: float, frontier: str | None) -> None:
        if frontier is None:
            return
        snaps = self.snapshots()
        if snaps and now - snaps[-1][0] < self.checkpoint_interval_s:
            return
        if snaps and snaps[-1][1] == frontier:
            return
        snaps.append((now, frontier))
        cutoff = now - self.lookback_s
        old = [s for s in snaps if s[0] <= cutoff]
        kept = old[-1:] + [s for s in snaps if s[0] > cutoff]
        state = json.dumps({"snapshots": [[t, k] for t, k in kept]})
        self.store.write_checkpoint(self.checkpoint_name, state, when=self.clock.now())

    # -- polling -----------------------------------------------------------------------------

    def poll(self, *, max_objects: int = 10) -> list[Delivery]:
        """Up to ``max_objects`` objects not yet recorded, in key order."""
        now = self.clock.time()
        start_after = self.cursor(now)
        frontier = start_after
        frontier_open = True
        found: list[SourceObject] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
        if start_after:
            kwargs["StartAfter"] = start_after
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(**kwargs):
                objs = [
                    s3_object_from_listing(self.bucket, e, self.s3)
                    for e in page.get("Contents", [])
                ]
                self.counters["listed"] += len(objs)
                done = self.store.processed_among(self.bucket, [identity(o)[1:] for o in objs])
                for obj in objs:
                    if identity(obj)[1:] in done:
                        self.counters["skipped_processed"] += 1
                        if frontier_open:
                            frontier = obj.key
                        continue
                    frontier_open = False
                    if identity(obj) not in self.in_flight and len(found) < max_objects:
                        found.append(obj)
                if not frontier_open and len(found) >= max_objects:
                    break
        except ClientError as exc:
            raise SourceError(f"cannot list s3://{self.bucket}/{self.prefix}: {exc}") from exc
        self._record_frontier(now, frontier)
        for obj in found:
            self.in_flight.add(identity(obj))
        self.counters["delivered"] += len(found)
        return [S3ListDelivery(self, obj) for obj in found]

    def finish(self, obj: SourceObject, *, acked: bool) -> None:
        self.in_flight.discard(identity(obj))
        self.counters["acked" if acked else "released"] += 1

    def heartbeat(self) -> int:
        return 0

    def stats(self) -> dict[str, Any]:
        return {**self.counters, "in_flight": len(self.in_flight)}

    def close(self) -> None:
        """The store and client belong to whoever built this source."""
