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
- While listing it computes the *frontier* F: the last key of the leading run of recorded
  objects (everything listed up to F is done, the next key is not). The checkpoint row keeps
  the latest frontier and timed snapshots ``(t, F)``, at most one per ``checkpoint_interval_s``,
  where ``t`` is the earlier of the poll time and F's ``LastModified``.
- A snapshot becomes *usable* once ``t <= now - lookback_s``. The cursor is the smaller of the
  largest usable snapshot key and the latest frontier (no usable snapshot: list from the
  start). So keys that arrived during the last ``lookback_s`` are listed again on every
  poll, and listing never starts past an object that was seen and not yet recorded.

Guarantee
---------
- A restart never re-reads an object whose ``ack`` returned (it is in the store) and never
  skips one that was not acked (a crash between processing and commit re-delivers it: it is
  read again, committed once).
- Call an object's *lateness* the time between some object with a greater key appearing and
  it appearing. Every object whose lateness is below ``lookback_s`` minus the poll interval
  is found: any key at or before a usable snapshot's frontier appears at least
  ``lookback_s`` after that frontier object did. Set ``lookback_s`` above the longest
  delivery delay (CloudFront: 24 h, hence the default of 25 h).
- Cost: the keys of the lookback window are re-listed (not re-read) on every poll, one
  ``ListObjectsV2`` page per 1,000 keys and one store query per page. A backlog of old
  objects (old ``LastModified``) gives usable snapshots at once, so catching up lists each
  key about twice, not once per poll.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from engine.core.clock import Clock
from engine.sources.delivery import Delivery, check_record_matches
from engine.sources.objects import SourceError, SourceObject, s3_object_from_listing
from engine.sources.processed import ProcessedRecord, ProcessedStore, identity
from engine.sources.quarantine import DEFAULT_PREFIX, is_quarantined


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
        page_size: int = 1000,
        quarantine_prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.bucket = bucket
        self.quarantine_prefix = quarantine_prefix
        self.prefix = prefix
        self.store = store
        self.s3 = s3_client
        self.clock = clock
        self.lookback_s = lookback_s
        self.checkpoint_interval_s = checkpoint_interval_s
        self.initial_start_after = start_after
        self.page_size = page_size
        self.checkpoint_name = name or f"s3list:{bucket}/{prefix}"
        self.in_flight: set[tuple[str, str, str]] = set()
        self.counters = dict.fromkeys(
            (
                "pages",
                "listed",
                "skipped_processed",
                "delivered",
                "acked",
                "released",
                "skipped_quarantine",
            ),
            0,
        )

    # -- checkpoint --------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        raw = self.store.read_checkpoint(self.checkpoint_name)
        if raw is None:
            return {"snapshots": [], "latest": None, "snapshot_at": None}
        try:
            state = json.loads(raw)
            state["snapshots"] = [(float(t), str(k)) for t, k in state["snapshots"]]
            if state["latest"] is not None and not isinstance(state["latest"], str):
                raise TypeError("latest is not a key")
            state.setdefault("snapshot_at", None)
        except (ValueError, KeyError, TypeError) as exc:
            raise SourceError(f"checkpoint {self.checkpoint_name!r} is corrupt: {exc}") from exc
        return state

    def snapshots(self) -> list[tuple[float, str]]:
        """The stored ``(t, frontier key)`` snapshots."""
        return list(self._state()["snapshots"])

    def cursor(self, now: float) -> str | None:
        """The ``StartAfter`` key for a poll at ``now`` (None: from the start of the prefix)."""
        state = self._state()
        usable = [key for t, key in state["snapshots"] if t <= now - self.lookback_s]
        base = max(usable) if usable else self.initial_start_after
        if base is None or state["latest"] is None:
            return base
        return min(base, state["latest"])

    def _record_frontier(self, now: float, frontier: str | None, modified: float | None) -> None:
        if frontier is None:
            return
        state = self._state()
        changed = frontier != state["latest"]
        state["latest"] = frontier
        last = state["snapshot_at"]
        if last is None or now - last >= self.checkpoint_interval_s:
            t = now if modified is None else min(now, modified)
            cutoff = now - self.lookback_s
            known = {k for _, k in state["snapshots"]}  # an older (t, F) already dominates
            snaps = state["snapshots"] + ([] if frontier in known else [(t, frontier)])
            usable = [s for s in snaps if s[0] <= cutoff]
            best = [max(usable, key=lambda s: s[1])] if usable else []
            state["snapshots"] = best + [s for s in snaps if s[0] > cutoff]
            state["snapshot_at"] = now
            changed = True
        if changed:
            state["snapshots"] = [[t, k] for t, k in state["snapshots"]]
            self.store.write_checkpoint(
                self.checkpoint_name, json.dumps(state), when=self.clock.now()
            )

    # -- polling -----------------------------------------------------------------------------

    def poll(self, *, max_objects: int = 10) -> list[Delivery]:
        """Up to ``max_objects`` objects not yet recorded, in key order."""
        now = self.clock.time()
        start_after = self.cursor(now)
        frontier = start_after
        frontier_modified: float | None = None
        frontier_open = True
        found: list[SourceObject] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
        if start_after:
            kwargs["StartAfter"] = start_after
        try:
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                **kwargs, PaginationConfig={"PageSize": self.page_size}
            )
            for page in pages:
                self.counters["pages"] += 1
                objs = [
                    s3_object_from_listing(self.bucket, e, self.s3)
                    for e in page.get("Contents", [])
                ]
                self.counters["listed"] += len(objs)
                done = self.store.processed_among(self.bucket, [identity(o)[1:] for o in objs])
                for obj in objs:
                    quarantined = is_quarantined(obj.key, self.quarantine_prefix)
                    self.counters["skipped_quarantine"] += quarantined
                    if identity(obj)[1:] in done or quarantined:
                        self.counters["skipped_processed"] += not quarantined
                        if frontier_open:
                            frontier = obj.key
                            if obj.last_modified is not None:
                                frontier_modified = obj.last_modified.timestamp()
                        continue
                    frontier_open = False
                    if identity(obj) not in self.in_flight and len(found) < max_objects:
                        found.append(obj)
                if not frontier_open and len(found) >= max_objects:
                    break
        except ClientError as exc:
            raise SourceError(f"cannot list s3://{self.bucket}/{self.prefix}: {exc}") from exc
        self._record_frontier(now, frontier, frontier_modified)
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
