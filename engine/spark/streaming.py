"""``wafsmith run --engine spark``: Structured Streaming from S3 notifications to the ledger.

    SQS ──(wafsmith_s3_sqs source: object references, offsets = journal numbers)──►
    micro-batch ──foreachBatch──► executors: parse + aggregate the batch's objects, merge by
    (minute, client shard) [engine.spark.batch] ──► driver: pane partials of the batch
    written under the checkpoint as ``state/batch=<id>.pkl`` (re-running a batch overwrites
    the same file: idempotent by batch id) ──► ``Analyzer.feed_partials`` (windows,
    detectors, policy) ──► ``Ledger.propose_many`` with ids derived from the decision, so a
    re-run proposes nothing twice ──► Spark commits the batch ──► the source deletes its SQS
    messages.

Per-client state is the pane partials of the last hour, kept by batch id under the
checkpoint and evicted by event time (a batch file goes once all its minutes are more than
``state_minutes`` behind the newest); a restarted driver rebuilds its windows from them.
This is not (yet) Spark's own state store (``transformWithStateInPandas``): windows,
detectors and the policy run on the driver, as in the batch job (see ``batch``).
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.decisions.errors import UnknownDecision
from engine.decisions.ledger import Ledger
from engine.decisions.proposals import ProposalConfig
from engine.features.pane import PANE_MS
from engine.pipeline import AnalysisConfig, Analyzer
from engine.schema.decision import Decision
from engine.sources import SourceObject
from engine.spark import partials as wire
from engine.spark.batch import SparkJobOptions, merge_objects

STATE_DIR = "wafsmith-state"
JOURNAL_DIR = "wafsmith-sqs-journal"
SPARK_DIR = "spark"


class InjectedCrash(RuntimeError):
    """Raised by ``BatchSink(crash_after_state=...)``: a driver dying mid-batch, for tests."""


def decision_id(d: Decision) -> str:
    """The same proposal always gets the same id (a re-run batch stores it once)."""
    text = "|".join([d.client, d.action.value, d.detector, d.decided_at.isoformat()])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class BatchSink:
    """The ``foreachBatch`` function and the driver's state between batches."""

    spark: Any
    ledger: Ledger
    state_dir: Path
    cfg: AnalysisConfig = field(default_factory=AnalysisConfig)
    policy: ProposalConfig | None = None
    opts: SparkJobOptions = field(default_factory=SparkJobOptions)
    state_minutes: int = 60
    crash_after_state: int | None = None  # batch id after whose state write to crash (tests)
    analyzer: Analyzer | None = None
    proposed: int = 0

    def __call__(self, batch_df: Any, batch_id: int) -> None:
        rows = batch_df.collect()
        objects = [
            SourceObject(r["uri"], r["bucket"], r["key"], etag=r["etag"])
            for r in sorted(rows, key=lambda r: r["seq"])
        ]
        features = self.cfg.features
        _stats, panes = merge_objects(self.spark, objects, features, self.opts)
        self._write_state(batch_id, panes)
        if self.crash_after_state == batch_id:
            raise InjectedCrash(f"injected crash after batch {batch_id}'s state")
        if self.analyzer is None:
            self.analyzer = Analyzer(self.cfg, policy=self.policy)
            for earlier in self._batch_files(below=batch_id):
                self._feed(pickle.loads(earlier.read_bytes()))
        self._feed(panes)
        self._evict()

    def _feed(self, panes: list[tuple[int, list[bytes]]]) -> None:
        k, per_client = self.cfg.features.distinct_k, self.cfg.features.evidence_per_client
        decisions = []
        for _pane, blobs in panes:
            merged = wire.fold(map(wire.loads, blobs), k, per_client)
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

    def _write_state(self, batch_id: int, panes: list) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / f"batch={batch_id:09d}.pkl"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(panes, protocol=5))
        tmp.replace(path)

    def _batch_files(self, below: int | None = None) -> list[Path]:
        files = sorted(self.state_dir.glob("batch=*.pkl"))
        if below is None:
            return files
        return [f for f in files if int(f.stem.split("=")[1]) < below]

    def _evict(self) -> None:
        """Drop batch files whose every minute is older than the state horizon."""
        newest = self.analyzer.store.max_event_ms
        if newest is None:
            return
        horizon = newest // PANE_MS - self.state_minutes
        for path in self._batch_files():
            panes = pickle.loads(path.read_bytes())
            if panes and max(p for p, _ in panes) < horizon:
                path.unlink()

    def client_requests(self) -> dict[str, int]:
        """Requests per client over the kept state (what a clean pass would count)."""
        out: dict[str, int] = {}
        for path in self._batch_files():
            for _pane, blobs in pickle.loads(path.read_bytes()):
                for blob in blobs:
                    part = wire.loads(blob)
                    for client, n in zip(part.clients.to_pylist(), part.counts[:, 0].tolist(),
                                         strict=True):
                        out[client] = out.get(client, 0) + n
        return out


def start_stream(
    spark: Any,
    sink: BatchSink,
    *,
    queue_url: str,
    checkpoint: Path,
    endpoint_url: str | None = None,
    available_now: bool = False,
    trigger_seconds: float = 10.0,
    visibility_timeout_s: int = 300,
) -> Any:
    """Start the query: the SQS source into ``sink``; returns the ``StreamingQuery``."""
    from engine.spark.sqs_source import SOURCE_NAME, S3SqsObjectSource

    spark.dataSource.register(S3SqsObjectSource)
    reader = (
        spark.readStream.format(SOURCE_NAME)
        .option("queue_url", queue_url)
        .option("journal", str(Path(checkpoint) / JOURNAL_DIR))
        .option("visibility_timeout", str(visibility_timeout_s))
    )
    if endpoint_url:
        reader = reader.option("endpoint_url", endpoint_url)
    writer = (
        reader.load()
        .writeStream.foreachBatch(sink)
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

    Reads ``[source] queue_url`` and ``[aws] endpoint_url``, proposes to the settings' ledger;
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
    spark = spark_session(master, app_name="wafsmith-run")
    endpoint = settings.aws.endpoint_url
    cfg = AnalysisConfig.model_validate(dict(settings.detection))
    sink = BatchSink(spark, ledger, checkpoint / STATE_DIR, cfg=cfg,
                     opts=SparkJobOptions(fmt=settings.source.format, endpoint_url=endpoint))
    query = start_stream(spark, sink, queue_url=settings.source.queue_url,
                         checkpoint=checkpoint, endpoint_url=endpoint,
                         visibility_timeout_s=settings.source.visibility_timeout_s)
    try:
        while query.isActive and not stop.wait(1.0):
            pass
    finally:
        query.stop()
        ledger.close()
    return 0
