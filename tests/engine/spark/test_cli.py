"""``wafsmith analyze --engine spark`` from the command line writes the single-process JSON."""

from __future__ import annotations

from tests.support.spark import analyze


def test_analyze_engine_spark_writes_the_same_decisions_json(simulated_logs, tmp_path):
    inputs = [str(simulated_logs)]
    # The Spark job does not pair the web ACL's log with the ALB's yet: neither does this run.
    single = analyze(inputs, tmp_path / "single.json", "--join", "off")
    spark = analyze(inputs, tmp_path / "spark.json", "--engine", "spark", "--master", "local[1]")
    assert single["decisions"], "the simulated minutes hold attacks"
    assert spark == single
