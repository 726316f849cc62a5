"""``wafsmith analyze --engine spark`` from the command line writes the single-process JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

WAFSMITH = [sys.executable, "-m", "engine.cli"]
TIMINGS = ("seconds", "engine", "executor_seconds")


def analyze(inputs: list[str], out: Path, *extra: str) -> dict:
    proc = subprocess.run(
        [*WAFSMITH, "analyze", *inputs, "--json", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    doc["stats"] = {k: v for k, v in doc["stats"].items() if k not in TIMINGS}
    return doc


def test_analyze_engine_spark_writes_the_same_decisions_json(simulated_logs, tmp_path):
    inputs = [str(simulated_logs)]
    single = analyze(inputs, tmp_path / "single.json")
    spark = analyze(inputs, tmp_path / "spark.json", "--engine", "spark", "--master", "local[1]")
    assert single["decisions"], "the simulated minutes hold attacks"
    assert spark == single
