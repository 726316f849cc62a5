"""``wafsmith analyze`` runs the anomaly model on any input, through the installed CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.demo.simulator import preset, render, simulate

FIXTURES = Path(__file__).resolve().parents[2] / "data" / "fixtures"
WAFSMITH = Path(sys.executable).with_name("wafsmith")


def analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(WAFSMITH), "analyze", *args], capture_output=True, text=True,
                          timeout=600, check=True)


@pytest.mark.parametrize(
    "log", ["alb/alb-samples.log", "cloudfront/cloudfront-doc.log", "waf/waf-samples.jsonl"]
)
def test_analyze_json_lists_the_anomaly_detector_on_any_input(tmp_path, log):
    out = tmp_path / "result.json"
    analyze(str(FIXTURES / log), "--json", str(out))
    stats = json.loads(out.read_text())["stats"]
    assert "anomaly" in stats["detectors_ran"]
    # too short for a baseline of its own: the shipped starter model scores it, and says so
    assert stats["anomaly"]["source"] == "starter model"
    assert stats["anomaly"]["state"] == "scoring"
    assert stats["anomaly"]["starter_model"] == "models:starter/iforest-starter.npz"
    assert stats["anomaly"]["training_window"]["clients"] > 1000


def test_analyze_scores_with_a_model_learnt_from_the_input_itself(tmp_path):
    sim = simulate(preset("small", minutes=35, browsers=800, campaigns=[]), seed=7)
    logs = tmp_path / "logs"
    for obj in render(sim):
        if obj.fmt == "alb":
            path = logs / obj.key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(obj.data)
    out = tmp_path / "result.json"
    analyze(str(logs), "--json", str(out))
    status = json.loads(out.read_text())["stats"]["anomaly"]
    assert status["state"] == "scoring" and status["fits"] >= 1
    assert status["training_window"]["clients"] >= 200
    table = analyze(str(logs)).stdout
    assert "anomaly model: scoring (stream bootstrap, trained on" in table
