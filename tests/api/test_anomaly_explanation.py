"""The anomaly model's why on the dashboard: its score against the threshold, then each top
feature in its own units beside the baseline's median and range."""

from __future__ import annotations

import html

import pytest

from engine.pipeline import analyze_tables
from tests.support.signin import sign_in
from tests.support.traffic import BROWSER_UAS, Traffic

ODD = "203.0.113.99"


@pytest.fixture()
def db_url(sqlite_url: str) -> str:
    return sqlite_url


def test_an_anomaly_decision_shows_its_features_against_the_baseline(client, service, tokens):
    tr = Traffic(3)
    for i in range(60):
        tr.browser(f"198.51.100.{i + 1}", 0, 1200, pages=20, ua=BROWSER_UAS[i % 40])
    for i in range(200):  # walks object ids: no rule targets it
        tr.add(ODD, 120 + 4 * i, f"/api/orders/{1000 + i}", status=403, ua=BROWSER_UAS[3])
    res = analyze_tables([tr.table()])
    (decision,) = [
        d for d in service.ledger.propose_many(res.decisions)
        if d.client == ODD and d.detector == "anomaly"
    ][:1]
    sign_in(client, tokens.viewer)
    page = html.unescape(client.get(f"/dashboard/decisions/{decision.id}").text)
    assert "anomaly score" in page and "threshold 0.55" in page
    explained = [r.split("] ", 1)[1] for r in decision.reasons[1:] if "baseline median" in r]
    assert explained, decision.reasons
    for why in explained:  # value, baseline median (and range), robust z: as the CLI prints
        assert why in page
