"""S3 → SQS (moto over HTTP) → Spark Structured Streaming → ledger, with a driver that dies
mid-batch and restarts from its checkpoint: per-client counts equal one clean pass, every
decision is stored once, and the queue ends empty."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from engine.core.clock import SYSTEM_CLOCK
from engine.decisions.ledger import Ledger
from engine.demo.simulator import preset, render, simulate
from engine.features import FeatureStore
from engine.parsers import parse_object
from engine.pipeline import AnalysisConfig
from engine.spark.batch import SparkJobOptions
from engine.spark.state import client_requests_in_state
from engine.spark.streaming import SPARK_DIR, BatchSink, start_stream
from tests.support.spark import wire_bucket

BUCKET = "site-logs"


@pytest.fixture()
def wired(s3, sqs):
    return wire_bucket(s3, sqs, BUCKET, "objects")


def clean_pass(objects) -> dict[str, int]:
    """Requests per client from one single-process pass over the same objects."""
    store = FeatureStore(AnalysisConfig().features)
    for obj in objects:
        store.add(parse_object(obj.data, key=obj.key).table)
    out: dict[str, int] = {}
    for part in store.partials():
        for client, n in zip(part.clients.to_pylist(), part.counts[:, 0].tolist(), strict=True):
            out[client] = out.get(client, 0) + n
    return out


def queue_depth(sqs, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


def test_restart_from_checkpoint_loses_and_doubles_nothing(
    spark, s3, sqs, wired, aws_endpoint, tmp_path
):
    objects = render(simulate(preset("tiny"), 11))
    for obj in objects:
        s3.put_object(Bucket=BUCKET, Key=obj.key, Body=obj.data)
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", clock=SYSTEM_CLOCK)
    checkpoint = tmp_path / "checkpoint"
    opts = SparkJobOptions(endpoint_url=aws_endpoint, shards=2, slices=2)

    def run(crash_after: int | None) -> BatchSink:
        sink = BatchSink(ledger, crash_after_state=crash_after)
        query = start_stream(spark, sink, opts=opts, queue_url=wired, checkpoint=checkpoint,
                             endpoint_url=aws_endpoint, available_now=True,
                             visibility_timeout_s=3)
        query.awaitTermination()
        return sink

    with pytest.raises(Exception, match="injected crash"):
        run(crash_after=0)  # the driver dies after batch 0's state, before its commit
    run(crash_after=None)  # restarted from the checkpoint: batch 0 again
    assert client_requests_in_state(spark, str(checkpoint / SPARK_DIR)) == clean_pass(objects)
    decisions = ledger.list(limit=1000).items
    assert decisions, "the simulated minutes hold attacks"
    keys = [(d.client, d.action.value) for d in decisions]
    assert len(keys) == len(set(keys))
    stored = len(decisions)

    time.sleep(3)  # the dead driver's receipts expire: SQS delivers those messages again
    run(crash_after=None)
    in_state = client_requests_in_state(spark, str(checkpoint / SPARK_DIR))
    assert in_state == clean_pass(objects)  # re-deliveries counted once
    assert ledger.list(limit=1000).total == stored
    assert queue_depth(sqs, wired) == 0


def test_wafsmith_run_engine_spark_streams_into_the_ledger(s3, wired, aws_endpoint, tmp_path):
    """``wafsmith run --engine spark`` as a process: objects land, proposals reach the
    ledger, SIGTERM stops it cleanly."""
    for obj in render(simulate(preset("tiny"), 11)):
        s3.put_object(Bucket=BUCKET, Key=obj.key, Body=obj.data)
    config = tmp_path / "wafsmith.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "var"}"\n'
        f'[aws]\nendpoint_url = "{aws_endpoint}"\n'
        f'[source]\nkind = "sqs"\nqueue_url = "{wired}"\n'
    )
    # stderr to a file, not a pipe: the driver's JVM logs freely, and a pipe nobody drains
    # while the test waits fills up and blocks the engine mid-write (it then never exits).
    log = tmp_path / "engine.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "run", "--config", str(config), "--no-api",
             "--engine", "spark", "--master", "local[1]"],
            stdout=subprocess.DEVNULL, stderr=sink,
        )

    def tail() -> str:
        return log.read_text(encoding="utf-8", errors="replace")[-3000:]

    ledger = None
    try:
        deadline = time.monotonic() + 480
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(5)
            db = tmp_path / "var" / "wafsmith.db"
            if db.exists():
                ledger = ledger or Ledger.open(f"sqlite:///{db}", clock=SYSTEM_CLOCK)
                if ledger.list(limit=1).total:
                    break
        assert proc.poll() is None, tail()
        assert ledger is not None and ledger.list(limit=1).total > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
    assert code == 0, tail()
