"""Detector test helpers: benign background browsers, one analysis of crafted traffic, and
the clients a result flags."""

from __future__ import annotations

from engine.pipeline import AnalysisConfig, analyze_tables
from tests.support.traffic import BROWSER_UAS, Traffic

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def background(tr: Traffic, n: int = 30, minutes: float = 20) -> Traffic:
    for i in range(n):
        tr.browser(f"198.51.100.{i + 1}", 0, minutes * 60, pages=10, ua=BROWSER_UAS[i % 40])
    return tr


def run(tr: Traffic, cfg: AnalysisConfig | None = None):
    res = analyze_tables([tr.table()], cfg)
    return res, {d.client: d for d in res.decisions}


def flagged(res) -> set[str]:
    return {c for d in res.decisions for c in (d.client, *d.members)}
