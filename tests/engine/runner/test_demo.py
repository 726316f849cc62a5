"""`wafsmith demo --minutes N`: the embedded default runs end to end and reports honestly."""

from __future__ import annotations

import pytest

from engine.demo.session import DemoOptions, run_demo


@pytest.mark.slow
def test_demo_plays_minutes_and_summarizes_against_the_labels(tmp_path):
    summary = run_demo(
        DemoOptions(minutes=12, speed=120.0, serve_api=False, data_dir=tmp_path / "demo"),
        announce=lambda _text: None,
    )

    assert summary["objects"] == summary["objects_put"] > 0
    assert summary["lines"] == sum(summary["rows_by_format"].values()) > 0
    assert set(summary["rows_by_format"]) == {"alb", "cloudfront", "waf"}
    assert summary["malformed"] == {}
    assert summary["last_cycle_ok"] is True
    assert sum(summary["decisions_by_state"].values()) > 0
    # what reached the WAF is what the ledger enforces, and no benign client is in it
    assert summary["benign_clients_blocked"] == 0
    assert sum(summary["waf_entries"].values()) >= summary["attackers_blocked"]
