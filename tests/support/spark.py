"""Spark test helper: ``wafsmith analyze`` as a subprocess, its JSON without timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

WAFSMITH = [sys.executable, "-m", "engine.cli"]
TIMINGS = ("seconds", "engine", "executor_seconds")
# What only the single process's streaming replay reports (its buffer and parse time).
REPLAY_ONLY = ("rows_parsed", "peak_buffered_rows", "parse_s")
# Memory accounting differs by design (the Spark driver keeps merged partials, not rows).
MEMORY = ("state_bytes_per_active_client", "peak_state_bytes", "peak_window_cache_bytes")


def analyze(inputs: list[str], out: Path, *extra: str) -> dict:
    proc = subprocess.run(
        [*WAFSMITH, "analyze", *inputs, "--json", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    dropped = TIMINGS + REPLAY_ONLY + MEMORY
    doc["stats"] = {k: v for k, v in doc["stats"].items() if k not in dropped}
    return doc
