"""Spark test helper: ``wafsmith analyze`` as a subprocess, its JSON without timings."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.support.source_sqs import make_queue, queue_arn

WAFSMITH = [sys.executable, "-m", "engine.cli"]
TIMINGS = ("seconds", "engine", "executor_seconds")
# What only the single process's streaming replay reports (its buffer and parse time).
REPLAY_ONLY = ("rows_parsed", "peak_buffered_rows", "parse_s")
# Memory accounting differs by design (the Spark driver keeps merged partials, not rows).
MEMORY = ("state_bytes_per_active_client", "peak_state_bytes", "peak_window_cache_bytes")


# An anomaly explanation prints the forest's raw score and the features it found odd, among
# them the inter-arrival ones (gap_repeat, ...), whose sums and bottom-k sets are exact only
# within one Spark task (see test_equivalence's GAPS). So its numbers may differ between the
# engines; the verdict's own score (the "[anomaly/anomaly 0.69]" tag), the decision (client,
# action, score, detector) and every other reason may not.
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _explained(reason: str) -> str:
    if not reason.startswith("[anomaly/"):
        return reason
    tag, _, text = reason.partition("] ")
    return f"{tag}] {_NUMBER.sub('#', text)}"


def comparable(doc: dict) -> dict:
    """A decisions document without what legitimately differs between the two engines:
    timings, the replay's own counters, memory accounting, an anomaly explanation's numbers."""
    dropped = TIMINGS + REPLAY_ONLY + MEMORY
    decisions = [{**d, "reasons": [_explained(r) for r in d["reasons"]]} for d in doc["decisions"]]
    stats = {k: v for k, v in doc["stats"].items() if k not in dropped}
    return {**doc, "decisions": decisions, "stats": stats}


def analyze(inputs: list[str], out: Path, *extra: str) -> dict:
    proc = subprocess.run(
        [*WAFSMITH, "analyze", *inputs, "--json", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return comparable(json.loads(out.read_text()))


# --- streaming: S3 → SQS wiring on the moto server, queue depth, a single-process count ---


def wire_bucket(s3, sqs, bucket: str, queue: str) -> str:
    """A bucket whose object-created events go to a new queue; returns the queue URL."""
    url = make_queue(sqs, queue)
    arn = queue_arn(sqs, url)
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return url


def queue_depth(sqs, url: str) -> int:
    """Messages still in the queue, visible or in flight."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


def single_process_requests(objects, features) -> dict[str, int]:
    """Requests per client from one single-process pass (``FeatureStore``) over the objects."""
    from engine.features import FeatureStore
    from engine.parsers import parse_object

    store = FeatureStore(features)
    for obj in objects:
        store.add(parse_object(obj.data, key=obj.key).table)
    out: dict[str, int] = {}
    for part in store.partials():
        for client, n in zip(part.clients.to_pylist(), part.counts[:, 0].tolist(), strict=True):
            out[client] = out.get(client, 0) + n
    return out
