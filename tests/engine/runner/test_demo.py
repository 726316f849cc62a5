"""`wafsmith demo --minutes N`: the embedded default runs end to end and reports honestly.

It runs as a separate process, as a user runs it: the demo starts its own moto server, whose
state must not mix with the test session's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_demo_plays_minutes_and_summarizes_against_the_labels(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "demo",
            "--minutes",
            "12",
            "--speed",
            "120",
            "--no-api",
            "--data-dir",
            str(tmp_path / "demo"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "analyst token: wsm_" in proc.stderr
    summary = json.loads(proc.stdout)

    assert summary["objects"] == summary["objects_put"] > 0
    assert summary["lines"] == sum(summary["rows_by_format"].values()) > 0
    assert set(summary["rows_by_format"]) == {"alb", "cloudfront", "waf"}
    assert summary["malformed"] == {}
    assert summary["last_cycle_ok"] is True
    assert sum(summary["decisions_by_state"].values()) > 0
    # what reached the WAF is what the ledger enforces, and no benign client is in it
    assert summary["benign_clients_blocked"] == 0
    assert sum(summary["waf_entries"].values()) >= summary["attackers_blocked"]


@pytest.mark.slow
def test_a_five_minute_demo_shows_progress_blocks_and_a_waiting_proposal(tmp_path):
    """The campaigns start early: within five simulated minutes a newcomer sees a progress
    line per minute, attackers blocked in WAF and a proposal waiting for an analyst."""
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "demo", "--minutes", "5", "--no-api",
         "--data-dir", str(tmp_path / "demo")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    progress = [line for line in proc.stderr.splitlines() if line.startswith("  minute ")]
    assert progress, proc.stderr[-3000:]
    assert all("objects" in line and "addresses blocked in WAF" in line for line in progress)
    summary = json.loads(proc.stdout)
    assert summary["attackers_blocked"] > 0
    assert summary["benign_clients_blocked"] == 0
    assert summary["decisions_by_state"]["proposed"] >= 1
