"""The streaming path with Spark's state store computes what the single process computes:
on a simulated stream through S3 → SQS (moto) → ``transformWithStateInPandas``, the pane
partials kept in the state store hold the single-process per-client counters and bottom-k
sets, and the proposals in the ledger are the single-process engine's decisions."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.core.clock import SYSTEM_CLOCK
from engine.decisions.ledger import Ledger
from engine.demo.simulator import preset, render, simulate
from engine.features import FeatureStore
from engine.parsers import parse_object
from engine.pipeline import AnalysisConfig, Analyzer
from engine.schema.request import EVENT_TIME
from engine.spark.batch import SparkJobOptions
from engine.spark.state import state_partials
from engine.spark.streaming import SPARK_DIR, BatchSink, start_stream
from tests.support.spark import wire_bucket

EXACT = ("counts", "entropy", "bytes_out", "first_ms", "last_ms", "gap_n")


def request_table(objects) -> pa.Table:
    table = pa.concat_tables(parse_object(o.data, key=o.key).table for o in objects)
    return table.take(pc.sort_indices(table, sort_keys=[(EVENT_TIME, "ascending")]))


def test_state_store_path_equals_the_single_process_engine(
    spark, s3, sqs, aws_endpoint, tmp_path
):
    cfg = AnalysisConfig()
    objects = render(simulate(preset("tiny"), 11))
    url = wire_bucket(s3, sqs, "site-logs", "objects")
    for obj in objects:
        s3.put_object(Bucket="site-logs", Key=obj.key, Body=obj.data)
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", clock=SYSTEM_CLOCK)
    checkpoint = tmp_path / "checkpoint"
    sink = BatchSink(ledger, cfg=cfg)
    query = start_stream(spark, sink, opts=SparkJobOptions(endpoint_url=aws_endpoint, shards=3),
                         queue_url=url, checkpoint=checkpoint, endpoint_url=aws_endpoint,
                         available_now=True)
    query.awaitTermination()

    table = request_table(objects)
    store = FeatureStore(cfg.features)
    store.add(table)
    single = {p.pane: p for p in store.partials()}
    kept = state_partials(spark, str(checkpoint / SPARK_DIR), cfg.features)
    assert sorted(kept) == sorted(single)  # ten minutes: nothing is an hour old yet
    for pane, a in single.items():
        b = kept[pane]
        assert a.clients.to_pylist() == b.clients.to_pylist(), pane
        for name in EXACT:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        for fam, (g, h) in a.distinct.items():
            if fam == "gap":  # inter-arrival bottom-k: exact only within one task
                continue
            np.testing.assert_array_equal(g, b.distinct[fam][0], err_msg=fam)
            np.testing.assert_array_equal(h, b.distinct[fam][1], err_msg=fam)

    analyzer = Analyzer(cfg)
    analyzer.feed(table)

    def key(d):
        return (d.client, d.action.value, d.detector, d.decided_at, d.expires_at)

    expected = sorted(map(key, analyzer.decisions))
    assert expected, "the simulated minutes hold attacks"
    assert sorted(map(key, sink.analyzer.decisions)) == expected
    # The ledger holds what the policy proposed, once each (it folds a client's repeated
    # proposals of one action into one entry).
    stored = ledger.list(limit=1000).items
    assert stored
    assert {(d.client, d.action.value) for d in stored} == {(c, a) for c, a, *_ in expected}
