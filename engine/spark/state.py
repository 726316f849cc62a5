"""Per-client state of ``wafsmith run --engine spark`` in Spark's state store.

The streaming plan (built by ``stateful_partials``)::

    object refs ──mapInArrow──► (pane, shard, partial bytes, event_time) per task
        [executors: parse + aggregate with the features stage, cut by client shard]
    ──withWatermark(event_time, 60 min)──groupBy(shard)──transformWithStateInPandas──►
        [PanePartialsProcessor: the shard's pane partials of the last hour in a MapState
         (RocksDB state store), merged with ``engine.features.merge``; event-time timers
         evict a pane once the watermark passes it]
    (kind, pane, shard, partial bytes) ──foreachBatch──► driver (``streaming.BatchSink``)

State is keyed by client shard (``stable_hash64(client) % shards``), not by client: one
merged ``PanePartial`` per (shard, minute) holds every client of the shard, so the state
store sees a handful of keys with columnar values instead of one row per client. A client
that goes idle leaves the state when the last pane holding it is evicted, and a shard
with no pane left is cleared.

The processor emits, per batch and shard, the batch's own merged contribution to each pane
(``delta``: what the driver's windows fold in), and, the first time it sees a shard after
the driver started (``run`` differs from the one stored), the shard's whole state as it was
before the batch (``replay``): a restarted driver rebuilds its windows from Spark's state
store, not from a side file. Every map task sends a ``heartbeat`` row to every shard so
that each shard is visited in each batch with data.

Watermark and eviction: the watermark trails the newest event by ``STATE_MINUTES``; a pane
timer fires when the watermark passes the pane's start, i.e. once the pane is more than an
hour behind the newest request. Rows older than the watermark are late for Spark and are
dropped (their pane could no longer be merged with what the windows saw).

Windows, detectors and the policy run on the driver over the merged partials, as in the
batch job (``engine.spark.batch``): the population detectors need every client of a window
at once (the batch's snapshot table), and the policy is a sequence over panes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pyarrow as pa

from engine.features import FeatureConfig, PanePartial
from engine.features.pane import PANE_MS
from engine.spark import partials as wire
from engine.spark.batch import SparkJobOptions, aggregate_objects

STATE_MINUTES = 60
ROCKSDB_PROVIDER = (
    "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
)
STATE_CONF = {"spark.sql.streaming.stateStore.providerClass": ROCKSDB_PROVIDER}

HEARTBEAT = -1  # pane value of the rows that only visit a shard
MAPPED_DDL = "pane long, shard long, seq long, blob binary, run string, event_time timestamp"
MAPPED_SCHEMA = pa.schema(
    [
        ("pane", pa.int64()),
        ("shard", pa.int64()),
        ("seq", pa.int64()),
        ("blob", pa.binary()),
        ("run", pa.string()),
        ("event_time", pa.timestamp("us", tz="UTC")),
    ]
)
OUTPUT_DDL = "kind string, pane long, shard long, blob binary"
OUTPUT_COLUMNS = ["kind", "pane", "shard", "blob"]
DELTA, REPLAY = "delta", "replay"
PANES_STATE = "panes"


def map_objects(features: FeatureConfig, opts: SparkJobOptions, run: str):
    """The ``mapInArrow`` function: a task's object references → shard partials, plus one
    heartbeat row per shard stamped with the task's newest minute (not late)."""

    def run_task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        rows = [r for b in batches for r in b.to_pylist()]
        if not rows:
            return
        seq = min(r["seq"] for r in rows)
        triples, _stats = aggregate_objects(rows, features, opts)
        if not triples:
            return
        newest = max(p for p, _s, _b in triples)
        out = [(p, s, b) for p, s, b in triples]
        out += [(HEARTBEAT, s, b"") for s in range(opts.shards)]
        yield pa.RecordBatch.from_pylist(
            [
                {"pane": p, "shard": s, "seq": seq, "blob": b, "run": run,
                 "event_time": (newest if p == HEARTBEAT else p) * PANE_MS * 1000}
                for p, s, b in out
            ],
            schema=MAPPED_SCHEMA,
        )

    return run_task


def _processor_class():
    """``PanePartialsProcessor`` (defined lazily: pyspark is the optional ``spark`` extra)."""
    from pyspark.sql.streaming.stateful_processor import StatefulProcessor

    class PanePartialsProcessor(StatefulProcessor):
        """One client shard's pane partials of the last hour (see the module docstring)."""

        def __init__(self, k: int, samples_per_client: int) -> None:
            self.k, self.samples = k, samples_per_client

        def init(self, handle: Any) -> None:
            self.handle = handle
            self.panes = handle.getMapState(PANES_STATE, "pane long", "blob binary")
            self.run = handle.getValueState("run", "run string")

        def handleInputRows(self, key: Any, rows: Iterator[pd.DataFrame],
                            timerValues: Any) -> Iterator[pd.DataFrame]:
            shard = int(key[0])
            frame = pd.concat(list(rows), ignore_index=True)
            out: list[tuple] = []
            run = str(frame["run"].iloc[0])
            seen = self.run.get() if self.run.exists() else None
            if seen is None or seen[0] != run:
                for (pane,), (blob,) in sorted(self.panes.iterator()):
                    out.append((REPLAY, int(pane), shard, bytes(blob)))
                self.run.update((run,))
            data = frame[frame["pane"] != HEARTBEAT].sort_values(["pane", "seq"], kind="stable")
            for pane, group in data.groupby("pane", sort=True):
                pane = int(pane)
                delta = wire.fold(map(wire.loads, group["blob"]), self.k, self.samples)
                old = self.panes.getValue((pane,))
                if old is None:
                    merged = delta
                    self.handle.registerTimer(pane * PANE_MS)
                else:
                    merged = wire.fold([wire.loads(bytes(old[0])), delta], self.k, self.samples)
                self.panes.updateValue((pane,), (wire.dumps(merged),))
                out.append((DELTA, pane, shard, wire.dumps(delta)))
            yield pd.DataFrame(out, columns=OUTPUT_COLUMNS)

        def handleExpiredTimer(self, key: Any, timerValues: Any,
                               expiredTimerInfo: Any) -> Iterator[pd.DataFrame]:
            pane = expiredTimerInfo.getExpiryTimeInMs() // PANE_MS
            self.panes.removeKey((pane,))
            if not self.panes.exists():
                self.run.clear()  # every client of the shard went idle: nothing is kept
            yield pd.DataFrame([], columns=OUTPUT_COLUMNS)

        def close(self) -> None:
            pass

    return PanePartialsProcessor


def stateful_partials(objects_df: Any, features: FeatureConfig, opts: SparkJobOptions,
                      run: str, state_minutes: int = STATE_MINUTES) -> Any:
    """The streaming DataFrame of (kind, pane, shard, partial bytes) described above."""
    processor = _processor_class()(features.distinct_k, features.evidence_per_client)
    mapped = objects_df.mapInArrow(map_objects(features, opts, run), MAPPED_DDL)
    return (
        mapped.withWatermark("event_time", f"{state_minutes} minutes")
        .groupBy("shard")
        .transformWithStateInPandas(
            statefulProcessor=processor,
            outputStructType=OUTPUT_DDL,
            outputMode="Append",
            timeMode="EventTime",
        )
    )


def state_partials(spark: Any, spark_checkpoint: str,
                   features: FeatureConfig | None = None) -> dict[int, PanePartial]:
    """The pane partials in the state store at the last committed batch, one per minute
    (the shards' partials folded: disjoint clients), read with Spark's state data source."""
    features = features or FeatureConfig()
    df = (
        spark.read.format("statestore")
        .option("path", spark_checkpoint)
        .option("stateVarName", PANES_STATE)
        .load()
    )
    panes: dict[int, list[PanePartial]] = {}
    for row in df.collect():
        fields = row.asDict()
        value = fields["user_map_value"] if "user_map_value" in fields else fields["value"]
        part = wire.loads(bytes(value["blob"]))
        panes.setdefault(part.pane, []).append(part)
    k, per_client = features.distinct_k, features.evidence_per_client
    return {p: wire.fold(parts, k, per_client) for p, parts in sorted(panes.items())}


def client_requests_in_state(spark: Any, spark_checkpoint: str) -> dict[str, int]:
    """Requests per client over the pane partials in the state store."""
    out: dict[str, int] = {}
    for part in state_partials(spark, spark_checkpoint).values():
        for client, n in zip(part.clients.to_pylist(), part.counts[:, 0].tolist(), strict=True):
            out[client] = out.get(client, 0) + n
    return out
