"""The anomaly model is on by default: the analysis bootstraps it from the stream's own
benign-looking clients, then scores, explains in plain units, and proposes at most a
challenge; clients the rules flagged never enter its training."""

from __future__ import annotations

from engine.pipeline import AnalysisConfig, Analyzer
from engine.schema.decision import Action
from tests.support.traffic import BROWSER_UAS, Traffic

ODD = "203.0.113.99"
FLOOD = "192.0.2.66"


def stream(seed: int = 3) -> Traffic:
    """An hour of browsing; a flood early on (a rule's), an odd client after the bootstrap."""
    tr = Traffic(seed)
    for i in range(160):
        tr.browser(f"198.51.{100 + i // 100}.{i % 100 + 1}", 0, 3600, pages=int(20 + i % 13),
                   ua=BROWSER_UAS[i % 40])
    tr.flood(FLOOD, 120, 300, rate=6)
    for i in range(90):  # POST-heavy, 5xx, no assets, deep odd paths: no rule targets it
        tr.add(ODD, 2400 + 9 * i, f"/a/b/c/d/{i}/x", method="POST",
               status=500 if i % 3 == 0 else 200, ua=BROWSER_UAS[3])
    return tr


def test_analysis_bootstraps_the_model_and_flags_the_odd_client():
    analyzer = Analyzer()  # default configuration: nothing about the model configured
    analyzer.feed(stream().table())
    analyzer.finish()
    res = analyzer.result()

    assert "anomaly" in res.stats["detectors_ran"]
    status = res.stats["anomaly"]
    assert status["state"] == "scoring" and status["source"] == "stream bootstrap"
    assert status["fits"] >= 1 and status["training_window"]["clients"] >= 200
    assert status["refit_every_min"] == 60.0
    drift = status["drift"]  # the last scored window against the training window
    assert drift["clients"] > 0 and 0.0 <= drift["outside_range_share"] <= 1.0
    assert drift["median_shift_iqr"] >= 0.0 and drift["most_shifted"]

    flagged = {v.client for v in res.verdicts if v.detector == "anomaly"}
    assert ODD in flagged
    # Of 160 browsers, at most two look odd to it: the busiest (50-60 requests against a
    # training range up to ~52) sit at the forest's edge, and which of them cross 0.55 depends
    # on the trees (spec v2 flagged one, v3 — one more feature, other random splits — two).
    # None of them goes further than counting: the policy challenges from 0.6.
    browsers = flagged - {ODD}
    assert len(browsers) <= 2
    assert all(d.action is Action.COUNT for d in res.decisions if d.client in browsers)
    v = next(v for v in res.verdicts if v.client == ODD and v.detector == "anomaly")
    # Explained in the feature's own units, beside the baseline's median.
    assert any("against a baseline median of" in r and "robust z" in r for r in v.reasons[1:])
    mine = [d for d in res.decisions if d.client == ODD]
    assert mine and all(d.action in (Action.COUNT, Action.CHALLENGE) for d in mine)


def test_clients_the_rules_flagged_never_train_the_model():
    seen: list = []
    analyzer = Analyzer()
    trainer = analyzer.trainer
    observe = trainer.observe

    def spy(X, hostile, t):
        seen.append((len(X), int(hostile.sum())))
        observe(X, hostile, t)

    trainer.observe = spy
    analyzer.feed(stream().table())
    analyzer.finish()
    assert any(h for _, h in seen)  # the flood's address was marked hostile while it was seen
    flood_decided = [d for d in analyzer.decisions if d.client == FLOOD]
    assert flood_decided and flood_decided[0].detector != "anomaly"


def test_the_model_can_be_switched_off():
    cfg = AnalysisConfig.model_validate({"anomaly": {"enabled": False}})
    res = Analyzer(cfg).result()
    assert "anomaly" not in res.stats["detectors_ran"] and res.stats["anomaly"] is None
