"""The model in the loop: the pipeline feeds the rolling baseline, a refit persists an
artifact, and the anomaly detector loaded from it explains an unusual client."""

from __future__ import annotations

from engine.core.clock import FakeClock
from engine.pipeline import AnalysisConfig, Analyzer
from models.baseline import RollingBaseline
from tests.support.traffic import BROWSER_UAS, Traffic


def background(seed: int) -> Traffic:
    tr = Traffic(seed)
    for i in range(120):
        tr.browser(f"198.51.{100 + i // 100}.{i % 100 + 1}", 0, 1800, pages=int(4 + i % 9),
                   ua=BROWSER_UAS[i % 40])
    return tr


def test_baseline_sink_refit_and_anomaly_verdicts(tmp_path):
    clock = FakeClock()
    base = RollingBaseline(capacity=5000, min_rows=100, directory=tmp_path, clock=clock,
                           random_state=0)
    Analyzer(baseline_sink=base.observe).feed(background(1).table())
    path = base.refit()
    assert path.exists() and path.with_suffix(".json").exists()

    tr = background(2)
    for i in range(90):  # an odd client: POST-heavy, errors, no assets, deep odd paths
        tr.add("203.0.113.99", 200 + 9 * i, f"/a/b/c/d/{i}/x", method="POST",
               status=500 if i % 2 else 400, ua="Mozilla/5.0 (Windows NT 10.0) Chrome/120")
    cfg = AnalysisConfig.model_validate(
        {"anomaly": {"enabled": True, "model_path": str(path)}}
    )
    analyzer = Analyzer(cfg, detectors=["anomaly"])
    analyzer.feed(tr.table())
    analyzer.finish()
    res = analyzer.result()
    flagged = {v.client for v in res.verdicts if v.detector == "anomaly"}
    assert "203.0.113.99" in flagged
    assert len(flagged) <= 3  # the browsers it was trained on stay unremarkable
    v = next(v for v in res.verdicts if v.client == "203.0.113.99")
    assert v.reasons[0].startswith("anomaly score") and "isolation forest" in v.reasons[0]
    assert any("robust z" in r for r in v.reasons[1:])
