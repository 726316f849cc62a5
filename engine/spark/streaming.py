"""``wafsmith run --engine spark``: Structured Streaming from S3 notifications to the ledger.

    SQS ──(wafsmith_s3_sqs source: object references, offsets = journal numbers)──►
    executors: parse + aggregate each object once, cut partials by client shard ──►
    state store (``engine.spark.state``: ``transformWithStateInPandas`` keyed by client
    shard, the last hour's pane partials in RocksDB, event-time timers evicting them) ──►
    foreachBatch on the driver: the batch's pane partials (and, after a restart, the state
    it had) ──► ``Analyzer.feed_partials`` (windows, population and per-client detectors over
    the pane's snapshot table, policy) ──► ``Ledger.propose_many`` with ids derived from the
    decision, so a re-run batch proposes nothing twice ──► Spark commits the batch ──► the
    source deletes its SQS messages.

Exactly once: a batch the driver died in is planned again from Spark's offset log (same
objects), its state is recomputed from the state store's previous version, and its
proposals carry the same ids. Windows, detectors and the policy run on the driver, as in
the batch job (``engine.spark.batch``): the population detectors need every client of a
window at once, the policy is a sequence over panes. The driver's input is one merged row
per active client and minute.

Test hooks (the driver killed mid-batch): ``WAFSMITH_SPARK_HOLD_BATCH=<id>`` and
``WAFSMITH_SPARK_HOLD_FILE=<path>`` make ``run_stream``'s driver write the file once batch
``<id>``'s state is updated and wait there, before proposing and before the batch commits.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.core.logging import log_event
from engine.decisions.errors import UnknownDecision
from engine.decisions.ledger import Ledger
from engine.decisions.proposals import ProposalConfig
from engine.pipeline import AnalysisConfig, Analyzer
from engine.schema.decision import Decision
from engine.spark import partials as wire
from engine.spark.batch import SparkJobOptions
from engine.spark.state import DELTA, REPLAY, STATE_CONF, STATE_MINUTES, stateful_partials

log = logging.getLogger("wafsmith.spark")

JOURNAL_DIR = "wafsmith-sqs-journal"
# How long a stop (SIGTERM) waits for the micro-batch in flight; past it the batch is left
# uncommitted, as after a crash: the next start replays it from the checkpoint.
STOP_TIMEOUT_S = 60
SPARK_DIR = "spark"


class InjectedCrash(RuntimeError):
    """Raised by ``BatchSink(crash_after_state=...)``: a driver dying mid-batch, for tests."""


def decision_id(d: Decision) -> str:
    """The same proposal always gets the same id (a re-run batch stores it once)."""
    text = "|".join([d.client, d.action.value, d.detector, d.decided_at.isoformat()])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class BatchSink:
    """The ``foreachBatch`` function: the driver's windows, detectors and policy between
    batches, fed with the pane partials the state store's processor emits."""

    ledger: Ledger
    cfg: AnalysisConfig = field(default_factory=AnalysisConfig)
    policy: ProposalConfig | None = None
    crash_after_state: int | None = None  # batch id after whose state update to crash (tests)
    hold_batch: int | None = None  # batch id at which to signal ``hold_file`` and wait (tests)
    hold_file: Path | None = None
    analyzer: Analyzer | None = None
    proposed: int = 0
    replayed_panes: int = 0

    def __call__(self, batch_df: Any, batch_id: int) -> None:
        # One action: the stateful operator's tasks run (and commit the state store's next
        # version) here; the batch itself is committed by Spark after this returns.
        table = batch_df.toArrow()
        if self.crash_after_state == batch_id:
            raise InjectedCrash(f"injected crash after batch {batch_id}'s state")
        if self.hold_batch == batch_id:
            self._hold(batch_id)
        if self.analyzer is None:
            self.analyzer = Analyzer(self.cfg, policy=self.policy)
        rows = list(zip(*(table.column(c).to_pylist() for c in ("kind", "pane", "blob")),
                        strict=True))
        replay = [(p, b) for kind, p, b in rows if kind == REPLAY]
        self.replayed_panes += len({p for p, _ in replay})
        self._feed(replay)  # the state before this batch, after a driver (re)start
        self._feed([(p, b) for kind, p, b in rows if kind == DELTA])

    def _hold(self, batch_id: int) -> None:
        """Mid-batch, state updated, nothing proposed, batch not committed: tell the test
        (``hold_file``) and wait for its SIGKILL."""
        if self.hold_file is not None:
            self.hold_file.write_text(str(batch_id))
        while True:
            time.sleep(1.0)

    def _feed(self, rows: list[tuple[int, bytes]]) -> None:
        """Fold the shards of each pane (disjoint clients) and feed the panes in order."""
        k, per_client = self.cfg.features.distinct_k, self.cfg.features.evidence_per_client
        panes: dict[int, list[bytes]] = {}
        for pane, blob in rows:
            panes.setdefault(pane, []).append(blob)
        decisions = []
        for pane in sorted(panes):
            merged = wire.fold(map(wire.loads, panes[pane]), k, per_client)
            decisions.extend(self.analyzer.feed_partials([merged]))
        self._propose(decisions)

    def _propose(self, decisions: list[Decision]) -> None:
        fresh = []
        for d in decisions:
            d = replace(d, id=decision_id(d))
            try:
                self.ledger.get(d.id)
            except UnknownDecision:
                fresh.append(d)
        if fresh:
            self.ledger.propose_many(fresh, by="engine")
            self.proposed += len(fresh)


def start_stream(
    spark: Any,
    sink: BatchSink,
    *,
    opts: SparkJobOptions | None = None,
    state_minutes: int = STATE_MINUTES,
    queue_url: str,
    checkpoint: Path,
    endpoint_url: str | None = None,
    available_now: bool = False,
    trigger_seconds: float = 10.0,
    visibility_timeout_s: int = 300,
    max_objects_per_batch: int = 0,
) -> Any:
    """Start the query: the SQS source, the state store, ``sink``; returns the
    ``StreamingQuery``. Each start is a new ``run``: the state store replays its state to
    the (new) driver in the first batch."""
    from engine.spark.sqs_source import SOURCE_NAME, S3SqsObjectSource

    for key, value in STATE_CONF.items():
        spark.conf.set(key, value)
    spark.dataSource.register(S3SqsObjectSource)
    reader = (
        spark.readStream.format(SOURCE_NAME)
        .option("queue_url", queue_url)
        .option("journal", str(Path(checkpoint) / JOURNAL_DIR))
        .option("visibility_timeout", str(visibility_timeout_s))
        .option("max_objects_per_batch", str(max_objects_per_batch))
    )
    if endpoint_url:
        reader = reader.option("endpoint_url", endpoint_url)
    partials = stateful_partials(reader.load(), sink.cfg.features, opts or SparkJobOptions(),
                                 run=uuid.uuid4().hex, state_minutes=state_minutes)
    writer = (
        partials.writeStream.foreachBatch(sink)
        .option("checkpointLocation", str(Path(checkpoint) / SPARK_DIR))
    )
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{trigger_seconds} seconds")
    return writer.start()


def run_stream(settings: Any, stop: Any, *, master: str | None = None,
               checkpoint: Path | None = None, clock: Any = None) -> int:
    """``wafsmith run --engine spark``: the query until ``stop`` is set (SIGTERM/SIGINT).

    Reads ``[source] queue_url``, ``max_objects_per_poll`` (objects per micro-batch) and
    ``[aws] endpoint_url``, proposes to the settings' ledger;
    the checkpoint defaults to ``<data_dir>/spark-checkpoint`` (an ``s3://`` path in
    production for Spark's logs; the state and journal directories need a local or mounted
    path). Reconciling the WAF stays with the engine that holds the enforcement role.
    """
    from engine.core.clock import SYSTEM_CLOCK
    from engine.spark.session import spark_session

    if not settings.source.queue_url:
        raise ValueError("--engine spark reads S3 notifications: set [source] queue_url")
    checkpoint = Path(checkpoint or settings.data_dir / "spark-checkpoint")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger.open(settings.resolved_database_url, clock=clock or SYSTEM_CLOCK)
    conf = {**STATE_CONF, "spark.sql.streaming.stopTimeout": f"{STOP_TIMEOUT_S}s"}
    spark = spark_session(master, app_name="wafsmith-run", conf=conf)
    endpoint = settings.aws.endpoint_url
    cfg = AnalysisConfig.model_validate(dict(settings.detection))
    hold = os.environ.get("WAFSMITH_SPARK_HOLD_BATCH")
    hold_file = os.environ.get("WAFSMITH_SPARK_HOLD_FILE")
    sink = BatchSink(ledger, cfg=cfg, hold_batch=int(hold) if hold else None,
                     hold_file=Path(hold_file) if hold_file else None)
    opts = SparkJobOptions(fmt=settings.source.format, endpoint_url=endpoint)
    query = start_stream(spark, sink, opts=opts, queue_url=settings.source.queue_url,
                         checkpoint=checkpoint, endpoint_url=endpoint,
                         visibility_timeout_s=settings.source.visibility_timeout_s,
                         max_objects_per_batch=settings.source.max_objects_per_poll)
    code = 0
    try:
        while query.isActive and not stop.wait(1.0):
            pass
    finally:
        try:
            query.stop()  # the batch in flight finishes (at most STOP_TIMEOUT_S) and commits
        except Exception as exc:  # py4j / Spark's timeout: logged, exit 1, replayed at restart
            log_event(log, "spark_stop_failed", level=logging.ERROR, error=str(exc)[:500])
            code = 1
        finally:
            ledger.close()
            spark.stop()  # the JVM, its Python workers and the callback server go with it
    return code
