"""S3 object-created notifications over SQS as a Spark streaming source (Python Data Source
API, PySpark 4): ``spark.readStream.format("wafsmith_s3_sqs")``.

Rows are object references (``seq, uri, bucket, key, etag``); the objects are read by the
micro-batch itself (``engine.spark.batch``), once each, on the executors.

Offsets are sequence numbers in the source's journal, a directory beside the checkpoint:
every object event received from SQS is appended there with the next number before
``latestOffset`` reports it, so a batch Spark re-plans after a restart finds the same
objects. An SQS message is deleted only in ``commit``, which Spark calls once the micro-batch
that covered it is committed; a message received again (SQS is at-least-once, and an
uncommitted receipt expires after a restart) is matched to its journal entry by
(bucket, key, ETag) and never numbered twice. Bodies that name no object (``s3:TestEvent``)
are deleted at once; bodies nobody understands are left for the queue's dead-letter queue.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadLimit, ReadMaxFiles

from engine.sources import BodyKind, decode_body, make_client

SOURCE_NAME = "wafsmith_s3_sqs"
SCHEMA = "seq long, uri string, bucket string, key string, etag string"
OBJECTS_PER_PARTITION = 8


class ObjectsPartition(InputPartition):
    def __init__(self, events: list[dict]) -> None:
        self.events = events


class Journal:
    """The numbered object events (``events.jsonl``) and the last committed number."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "events.jsonl"
        self.events: list[dict] = []
        if self.path.exists():
            self.events = [json.loads(x) for x in self.path.read_text().splitlines() if x]
        self.index = {self._key(e): e["seq"] for e in self.events}
        marker = self.root / "committed.json"
        self.committed = json.loads(marker.read_text())["seq"] if marker.exists() else 0

    @staticmethod
    def _key(event: dict) -> tuple:
        return (event["bucket"], event["key"], event["etag"])

    @property
    def last(self) -> int:
        return self.events[-1]["seq"] if self.events else 0

    def add(self, bucket: str, key: str, etag: str | None) -> int:
        """The event's number: the existing one for a re-delivery, else the next (appended
        and flushed to disk before it is handed out)."""
        event = {"bucket": bucket, "key": key, "etag": etag}
        seq = self.index.get(self._key(event))
        if seq is not None:
            return seq
        event = {"seq": self.last + 1, "uri": f"s3://{bucket}/{key}", **event}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.events.append(event)
        self.index[self._key(event)] = event["seq"]
        return event["seq"]

    def between(self, start: int, end: int) -> list[dict]:
        return [e for e in self.events if start < e["seq"] <= end]

    def commit(self, seq: int) -> None:
        tmp = self.root / "committed.json.tmp"
        tmp.write_text(json.dumps({"seq": seq}))
        tmp.replace(self.root / "committed.json")
        self.committed = seq


class SqsObjectStreamReader(DataSourceStreamReader):
    def __init__(self, options: dict[str, str]) -> None:
        self.queue_url = options["queue_url"]
        self.endpoint_url = options.get("endpoint_url")
        self.wait_s = int(options.get("wait_seconds", "0"))
        self.visibility_s = int(options.get("visibility_timeout", "300"))
        self.max_objects = int(options.get("max_objects_per_batch", "0"))  # 0: no limit
        self.journal = Journal(Path(options["journal"]))
        self._sqs: Any = None
        self.handles: dict[int, list[str]] = {}  # seq -> receipts to delete once committed

    @property
    def sqs(self) -> Any:
        if self._sqs is None:
            self._sqs = make_client("sqs", endpoint_url=self.endpoint_url)
        return self._sqs

    def __getstate__(self) -> dict:
        """Spark pickles the reader to ship ``read`` to executors: no client, no journal."""
        return {**self.__dict__, "_sqs": None, "journal": None, "handles": {}}

    def initialOffset(self) -> dict:
        return {"seq": 0}

    def getDefaultReadLimit(self) -> ReadLimit:
        """``max_objects_per_batch`` (Spark's ``maxFilesPerTrigger``): objects per batch."""
        return ReadMaxFiles(self.max_objects) if self.max_objects else ReadAllAvailable()

    def latestOffset(self, start: dict | None = None, limit: Any = None) -> dict:
        """Drain what the queue holds now into the journal; the newest number.

        ``start`` is the end of the last batch, which Spark committed before planning the
        next one: its messages can go now (Spark's own ``commit`` call for a batch comes
        late, and not at all for the last batch of an ``availableNow`` run)."""
        if start:
            self._committed_through(start["seq"])
        while True:
            resp = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=self.wait_s,
                VisibilityTimeout=self.visibility_s,
            )
            messages = resp.get("Messages", [])
            if not messages:
                break
            for msg in messages:
                self._take(msg)
        end = self.journal.last
        if isinstance(limit, ReadMaxFiles):
            end = min(end, (start or {"seq": 0})["seq"] + limit.max_files)
        return {"seq": end}

    def _take(self, msg: dict) -> None:
        body = decode_body(msg["Body"])
        handle = msg["ReceiptHandle"]
        if body.kind is BodyKind.UNPARSEABLE:
            return  # left for the redrive policy (dead-letter queue)
        if not body.objects:
            self._delete([handle])  # a test event or an event type we ignore
            return
        for event in body.objects:
            seq = self.journal.add(event.bucket, event.key, event.etag)
            if seq <= self.journal.committed:
                self._delete([handle])  # a re-delivery of work already committed
            else:
                self.handles.setdefault(seq, []).append(handle)

    def partitions(self, start: dict, end: dict) -> list[InputPartition]:
        events = self.journal.between(start["seq"], end["seq"])
        return [
            ObjectsPartition(events[i : i + OBJECTS_PER_PARTITION])
            for i in range(0, len(events), OBJECTS_PER_PARTITION)
        ]

    def read(self, partition: InputPartition) -> Iterator[tuple]:
        for e in partition.events:
            yield (e["seq"], e["uri"], e["bucket"], e["key"], e["etag"])

    def commit(self, end: dict) -> None:
        """Spark committed every batch up to ``end``: its messages can go."""
        self._committed_through(end["seq"])

    def _committed_through(self, seq: int) -> None:
        done = [s for s in self.handles if s <= seq]
        self._delete([h for s in done for h in self.handles.pop(s)])
        if seq > self.journal.committed:
            self.journal.commit(seq)

    def _delete(self, handles: list[str]) -> None:
        for i in range(0, len(handles), 10):
            entries = [{"Id": str(n), "ReceiptHandle": h} for n, h in enumerate(handles[i:i + 10])]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)


class S3SqsObjectSource(DataSource):
    """Options: ``queue_url``, ``journal`` (a directory, beside the checkpoint), optional
    ``endpoint_url`` (moto), ``wait_seconds``, ``visibility_timeout``,
    ``max_objects_per_batch``."""

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> str:
        return SCHEMA

    def streamReader(self, schema: Any) -> DataSourceStreamReader:
        return SqsObjectStreamReader(self.options)
