"""``wafsmith analyze --engine spark``: the replay of ``wafsmith analyze`` as a Spark job.

Where each step runs, and why:

1. **Driver** lists the input objects (local paths or ``s3://`` prefixes) and cuts the list
   into contiguous slices (key order, so a slice covers neighbouring minutes).
2. **Executors** (``mapInArrow`` over the object list): each task reads its objects once,
   parses them with ``engine.parsers.parse_object``, sorts the rows by event time and folds
   them into a task-local ``FeatureStore`` — the features stage's own client resolution,
   ``row_signals`` and ``PanePartial.from_batch``. Its per-client, per-minute partials are
   cut by client shard and shipped, with the task's parse and identity counts.
3. **Shuffle by (pane, client shard)** (``groupBy().applyInArrow``): each reducer folds the
   partials of its clients for one minute with ``engine.features.merge``.
4. **Driver**: merged partials arrive in pane order (one pane's shards hold disjoint clients,
   so folding them is a union) and go into ``Analyzer.feed_partials``: sliding windows,
   gates, every detector and the proposal policy, exactly as in the single process. The
   population detectors (``engine.detectors.population``: distributed floods, campaigns by
   /24, fingerprint and target) need every client of a window at once, the blast-radius
   guard needs the count of active clients, and the policy is a sequence over panes (a block
   proposed at minute t gates minute t+1): these stay on the driver. Its input is one row
   per active client and minute, not per request: a 10^6 req/s site sends the driver its
   active clients, not its traffic.

Results equal the single-process engine's for every counter and bottom-k set; inter-arrival
sums are exact within a task and merged as adjacent ranges across tasks
(``engine.features.pane``), so they can differ slightly when two tasks hold interleaving
requests of one client in the same minute.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from engine.decisions.proposals import ProposalConfig
from engine.features import FeatureConfig, FeatureStore
from engine.parsers import parse_object
from engine.pipeline import AnalysisConfig, AnalysisResult, Analyzer
from engine.schema.request import EVENT_TIME
from engine.sources import SourceObject, iter_objects, make_client
from engine.spark import partials as wire

OBJECT_SCHEMA = pa.schema(
    [
        ("slice", pa.int64()),
        ("uri", pa.string()),
        ("bucket", pa.string()),
        ("key", pa.string()),
        ("etag", pa.string()),
    ]
)
PARTIAL_DDL = "pane long, shard long, seq long, blob binary"
PARTIAL_SCHEMA = pa.schema(
    [("pane", pa.int64()), ("shard", pa.int64()), ("seq", pa.int64()), ("blob", pa.binary())]
)
STATS_PANE = -1  # the row that carries a task's counts instead of a partial


@dataclass
class SparkJobOptions:
    """How the job is cut: object slices (map tasks) and client shards (reduce keys)."""

    fmt: str = "auto"
    endpoint_url: str | None = None
    slices: int | None = None  # default: the session's default parallelism
    shards: int = 4


@dataclass
class SparkAnalysis:
    result: AnalysisResult
    input_stats: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)  # driver wall time per stage


def list_objects(inputs: list[str], endpoint_url: str | None) -> list[SourceObject]:
    return [o for uri in inputs for o in iter_objects(uri, endpoint_url=endpoint_url)]


def object_table(objects: list[SourceObject], slices: int) -> pa.Table:
    """The object list with contiguous slice numbers (objects stay in key order)."""
    n = len(objects)
    slices = max(1, min(slices, n))
    return pa.table(
        {
            "slice": [i * slices // max(n, 1) for i in range(n)],
            "uri": [o.uri for o in objects],
            "bucket": [o.bucket for o in objects],
            "key": [o.key for o in objects],
            "etag": [o.etag for o in objects],
        },
        schema=OBJECT_SCHEMA,
    )


def aggregate_objects(
    rows: list[dict], features: FeatureConfig, opts: SparkJobOptions
) -> tuple[list[tuple[int, int, bytes]], dict[str, Any]]:
    """One task's work: parse its objects, aggregate them, cut the partials by shard.

    Returns ``(pane, shard, partial bytes)`` triples and the task's counts.
    """
    t0 = time.perf_counter()
    stats: dict[str, Any] = {
        "objects": 0,
        "bytes_read": 0,
        "malformed": Counter(),
        "formats": Counter(),
    }
    client = None
    tables = []
    for row in rows:
        if row["bucket"] is not None and client is None:
            client = make_client("s3", endpoint_url=opts.endpoint_url)
        obj = SourceObject(
            row["uri"], row["bucket"], row["key"], etag=row["etag"], s3_client=client
        )
        with obj.open() as stream:
            res = parse_object(stream, fmt=opts.fmt, key=obj.key)
        stats["objects"] += 1
        stats["bytes_read"] += res.bytes_read
        stats["formats"][res.format] += 1
        stats["malformed"].update(res.malformed)
        if res.rows:
            tables.append(res.table)
    t1 = time.perf_counter()
    store = FeatureStore(features)
    if tables:
        table = pa.concat_tables(tables)
        store.add(table.take(pc.sort_indices(table, sort_keys=[(EVENT_TIME, "ascending")])))
    out = []
    for part in store.partials():
        for shard, piece in wire.split_by_shard(part, opts.shards).items():
            out.append((part.pane, shard, wire.dumps(piece)))
    t2 = time.perf_counter()
    stats.update(
        rows=store.stats.rows,
        rows_by_source=dict(store.stats.rows_by_source),
        edge_rows=store.stats.edge_rows,
        no_identity_rows=dict(store.stats.no_identity_rows),
        executor_seconds={"parse": t1 - t0, "features": t2 - t1},
    )
    return out, stats


def _map_task(features: FeatureConfig, opts: SparkJobOptions):
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        rows = [r for b in batches for r in b.to_pylist()]
        if not rows:
            return
        seq = min(r["slice"] for r in rows)
        triples, stats = aggregate_objects(rows, features, opts)
        yield pa.RecordBatch.from_pylist(
            [{"pane": p, "shard": s, "seq": seq, "blob": b} for p, s, b in triples]
            + [{"pane": STATS_PANE, "shard": 0, "seq": seq,
                "blob": json.dumps(stats, default=dict).encode()}],
            schema=PARTIAL_SCHEMA,
        )

    return run


def _reduce_task(features: FeatureConfig):
    def run(table: pa.Table) -> pa.Table:
        table = table.sort_by([("seq", "ascending")])
        pane = table.column("pane")[0].as_py()
        if pane == STATS_PANE:
            stats = merge_stats(json.loads(b) for b in table.column("blob").to_pylist())
            blob = json.dumps(stats).encode()
        else:
            parts = (wire.loads(b) for b in table.column("blob").to_pylist())
            blob = wire.dumps(
                wire.fold(parts, features.distinct_k, features.evidence_per_client)
            )
        return pa.table(
            {
                "pane": [pane],
                "shard": [table.column("shard")[0].as_py()],
                "seq": [table.column("seq")[0].as_py()],
                "blob": [blob],
            },
            schema=PARTIAL_SCHEMA,
        )

    return run


def merge_stats(docs) -> dict[str, Any]:
    """Sum the tasks' counts (nested dicts add key by key)."""
    out: dict[str, Any] = {}
    for doc in docs:
        _add_into(out, doc)
    return out


def _add_into(out: dict, doc: dict) -> None:
    for key, value in doc.items():
        if isinstance(value, dict):
            _add_into(out.setdefault(key, {}), value)
        else:
            out[key] = out.get(key, 0) + value


def merged_partials(
    spark: Any, inputs: list[str], features: FeatureConfig, opts: SparkJobOptions
) -> tuple[dict[str, Any], list[tuple[int, list[bytes]]]]:
    """Steps 1–3: the tasks' summed counts, and per pane (in order) its merged partials,
    one per client shard (disjoint clients), as bytes."""
    return merge_objects(spark, list_objects(inputs, opts.endpoint_url), features, opts)


def merge_objects(
    spark: Any, objects: list[SourceObject], features: FeatureConfig, opts: SparkJobOptions
) -> tuple[dict[str, Any], list[tuple[int, list[bytes]]]]:
    """``merged_partials`` over an object list (a streaming micro-batch's objects)."""
    if not objects:
        return {}, []
    objs = object_table(objects, opts.slices or spark.sparkContext.defaultParallelism)
    n_slices = max(objs.column("slice").to_pylist()) + 1
    df = spark.createDataFrame(objs).repartitionByRange(n_slices, "slice")
    mapped = df.mapInArrow(_map_task(features, opts), PARTIAL_DDL)
    merged = mapped.groupBy("pane", "shard").applyInArrow(_reduce_task(features), PARTIAL_DDL)
    # One collect: the driver holds one row per client shard and minute (client-minutes,
    # not requests) for the replay.
    table = merged.toArrow().sort_by([("pane", "ascending"), ("shard", "ascending")])
    stats: dict[str, Any] = {}
    panes: dict[int, list[bytes]] = {}
    for pane, blob in zip(table.column("pane").to_pylist(), table.column("blob").to_pylist(),
                          strict=True):
        if pane == STATS_PANE:
            stats = merge_stats([stats, json.loads(blob)])
        else:
            panes.setdefault(pane, []).append(blob)
    return stats, sorted(panes.items())


def analyze_on_spark(
    spark: Any,
    inputs: list[str],
    cfg: AnalysisConfig | None = None,
    policy: ProposalConfig | None = None,
    opts: SparkJobOptions | None = None,
) -> SparkAnalysis:
    """Run the replay on ``spark``; the result has the single-process engine's shape."""
    cfg = cfg or AnalysisConfig()
    opts = opts or SparkJobOptions()
    k, per_client = cfg.features.distinct_k, cfg.features.evidence_per_client
    t0 = time.perf_counter()
    stats, panes = merged_partials(spark, inputs, cfg.features, opts)
    t1 = time.perf_counter()
    analyzer = Analyzer(cfg, policy=policy)
    for _pane, blobs in panes:
        analyzer.feed_partials([wire.fold(map(wire.loads, blobs), k, per_client)])
    analyzer.finish()
    t2 = time.perf_counter()
    store_stats = analyzer.store.stats
    store_stats.rows = stats.get("rows", 0)
    store_stats.rows_by_source = dict(stats.get("rows_by_source", {}))
    store_stats.edge_rows = stats.get("edge_rows", 0)
    store_stats.no_identity_rows = dict(stats.get("no_identity_rows", {}))
    input_stats = {
        "objects": stats.get("objects", 0),
        "bytes_read": stats.get("bytes_read", 0),
        "malformed": dict(stats.get("malformed", {})),
        "formats": dict(stats.get("formats", {})),
    }
    result = analyzer.result()
    result.stats["engine"] = "spark"
    result.stats["executor_seconds"] = {
        key: round(v, 4) for key, v in stats.get("executor_seconds", {}).items()
    }
    return SparkAnalysis(result, input_stats, {"spark_job": t1 - t0, "driver_analysis": t2 - t1})
