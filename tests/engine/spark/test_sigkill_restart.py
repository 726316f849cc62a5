"""``wafsmith run --engine spark`` SIGKILLed mid-batch and restarted from its checkpoint.

S3 → SQS (moto over HTTP) → Spark Structured Streaming (state store) → ledger, as processes.
Four objects a batch, ten objects: batches 0, 1, 2. The first driver stops inside batch 1
once its state is updated (``WAFSMITH_SPARK_HOLD_BATCH``: it writes a file and waits, so the
kill lands there, not by timing) and its whole process group is SIGKILLed. A second driver
on the same checkpoint re-runs batch 1 (its windows rebuilt from the state store) and batch
2, and deletes the messages the dead driver had received once SQS delivers them again.
Against one clean, uninterrupted pass on a second queue: the same per-client counts in the
state store, the same proposals in the ledger, none twice; the queue ends empty.

Three Spark drivers start one after another (minutes on a loaded 2-core machine): marked
``cluster``, so ``make bench`` runs it and ``make test`` skips it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.core.clock import SYSTEM_CLOCK
from engine.decisions.ledger import Ledger
from engine.demo.simulator import preset, render, simulate
from engine.pipeline import AnalysisConfig
from engine.spark.sqs_source import Journal
from engine.spark.state import client_requests_in_state
from engine.spark.streaming import JOURNAL_DIR, SPARK_DIR
from tests.support.spark import queue_depth, single_process_requests, wire_bucket

pytestmark = pytest.mark.cluster

PER_BATCH = 4
# The dead driver's SQS receipts expire after this; the restarted one then receives those
# messages again, finds them committed in its journal and deletes them.
VISIBILITY_S = 5
WAIT_S = 600


class Driver:
    """One ``wafsmith run --engine spark`` process in its own process group."""

    def __init__(self, root: Path, endpoint: str, queue_url: str, env: dict | None = None):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        config = root / "wafsmith.toml"
        config.write_text(
            f'data_dir = "{root / "var"}"\n'
            f'[aws]\nendpoint_url = "{endpoint}"\n'
            f'[source]\nkind = "sqs"\nqueue_url = "{queue_url}"\n'
            f"max_objects_per_poll = {PER_BATCH}\nvisibility_timeout_s = {VISIBILITY_S}\n"
            "[metrics]\nport = 0\n"
        )
        self.log = (root / "driver.log").open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "run", "--config", str(config), "--no-api",
             "--engine", "spark", "--master", "local[1]"],
            stdout=self.log, stderr=self.log, env={**os.environ, **(env or {})},
            start_new_session=True,
        )

    @property
    def checkpoint(self) -> Path:
        return self.root / "var" / "spark-checkpoint"

    def committed_batches(self) -> set[int]:
        commits = self.checkpoint / SPARK_DIR / "commits"
        return {int(p.name) for p in commits.glob("[0-9]*")} if commits.exists() else set()

    def wait_for(self, what: str, done) -> None:
        deadline = time.monotonic() + WAIT_S
        while not done():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                tail = (self.root / "driver.log").read_text()[-4000:]
                pytest.fail(f"driver never reached: {what}\n{tail}")
            time.sleep(1.0)

    def wait_all_committed(self, n_objects: int) -> None:
        journal = self.checkpoint / JOURNAL_DIR

        def done() -> bool:
            return journal.exists() and Journal(journal).committed == n_objects

        self.wait_for(f"all {n_objects} objects committed", done)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=180) == 0
        self.log.close()

    def kill(self) -> None:
        """SIGKILL the driver and everything it started (its JVM, Python workers)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        self.log.close()


def proposals(root: Path) -> list[tuple]:
    ledger = Ledger.open(f"sqlite:///{root / 'var' / 'wafsmith.db'}", clock=SYSTEM_CLOCK)
    try:
        items = ledger.list(limit=1000).items
    finally:
        ledger.close()
    return sorted((d.client, d.action.value, d.detector, d.decided_at.isoformat()) for d in items)


def test_sigkill_mid_batch_then_restart_equals_one_clean_pass(
    spark, s3, sqs, aws_endpoint, tmp_path
):
    objects = render(simulate(preset("tiny"), 11))
    assert len(objects) > 2 * PER_BATCH  # batch 1 is not the last
    killed_q = wire_bucket(s3, sqs, "killed-logs", "killed")
    clean_q = wire_bucket(s3, sqs, "clean-logs", "clean")
    for bucket in ("killed-logs", "clean-logs"):
        for obj in objects:
            s3.put_object(Bucket=bucket, Key=obj.key, Body=obj.data)

    held = tmp_path / "held"
    first = Driver(tmp_path / "killed", aws_endpoint, killed_q,
                   env={"WAFSMITH_SPARK_HOLD_BATCH": "1", "WAFSMITH_SPARK_HOLD_FILE": str(held)})
    first.wait_for("batch 1 held", held.exists)
    # Mid-batch: batch 1 planned, not committed; batch 0's messages are gone, batch 1's not.
    assert first.committed_batches() == {0}
    assert queue_depth(sqs, killed_q) == len(objects) - PER_BATCH
    first.kill()

    second = Driver(tmp_path / "killed", aws_endpoint, killed_q)
    second.wait_all_committed(len(objects))
    second.wait_for("the dead driver's messages deleted", lambda: queue_depth(sqs, killed_q) == 0)
    second.stop()

    clean = Driver(tmp_path / "clean", aws_endpoint, clean_q)
    clean.wait_all_committed(len(objects))
    clean.stop()

    expected = single_process_requests(objects, AnalysisConfig().features)
    after_kill = client_requests_in_state(spark, str(second.checkpoint / SPARK_DIR))
    assert after_kill == client_requests_in_state(spark, str(clean.checkpoint / SPARK_DIR))
    assert after_kill == expected

    restarted, once = proposals(tmp_path / "killed"), proposals(tmp_path / "clean")
    assert once, "the simulated minutes hold attacks"
    assert restarted == once
    assert len({(c, a) for c, a, _d, _t in restarted}) == len(restarted)  # none twice
    assert queue_depth(sqs, killed_q) == 0
    assert json.loads((second.checkpoint / JOURNAL_DIR / "committed.json").read_text()) == {
        "seq": len(objects)
    }
