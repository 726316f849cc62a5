"""A NAT gateway behind a CDN that caches every asset: its people still navigate (each page
names the one before as referer), so the gate still knows them for people."""

from __future__ import annotations

import numpy as np

from engine.pipeline import AnalysisConfig
from tests.support.detectors import background, flagged, run
from tests.support.traffic import BROWSER_UAS, Traffic

NAT = "203.0.113.70"


def people_without_assets(tr: Traffic, ip: str, users: int) -> Traffic:
    for u in range(users):  # pages only: the CDN served every asset from its cache
        prev = None
        for t in np.sort(tr.rng.uniform(0, 1200, 12)):
            page = f"https://shop.example.com/article/{int(tr.rng.integers(1, 2000))}"
            tr.add(ip, t, page.split(".com", 1)[1], ua=BROWSER_UAS[u % 40] + f" u{u}",
                   referer=prev)
            prev = page
    return tr


def test_nat_gateway_whose_assets_are_cached_is_not_blocked():
    tr = people_without_assets(background(Traffic(41)), NAT, 60)
    res, _ = run(tr)
    assert NAT not in flagged(res)
    strict = AnalysisConfig.model_validate({"gates": {"nat_max_no_referer_frac": -1}})
    res, _ = run(tr, strict)  # without the referer test it looks like one scraper
    assert NAT in flagged(res)
