"""A real standalone cluster on this machine: a master and two workers started from the
installed PySpark on 127.0.0.1, ``wafsmith analyze --master spark://...`` submitted to it.
Marked ``cluster``: ``make test`` skips it, ``make bench`` (benchmarks/run_all.py) runs it."""

from __future__ import annotations

import pytest

from engine.spark.standalone import LocalCluster
from tests.support.spark import analyze

pytestmark = pytest.mark.cluster


def test_two_worker_cluster_writes_the_same_decisions_json(simulated_logs, tmp_path):
    inputs = [str(simulated_logs)]
    # The Spark job does not pair the web ACL's log with the ALB's yet: neither does this run.
    single = analyze(inputs, tmp_path / "single.json", "--join", "off")
    with LocalCluster(tmp_path / "cluster", workers=2, memory_per_worker="1g") as cluster:
        assert cluster.master_url.startswith("spark://127.0.0.1:")
        on_cluster = analyze(
            inputs, tmp_path / "cluster.json", "--engine", "spark", "--master", cluster.master_url
        )
    assert single["decisions"]
    assert on_cluster == single
