"""CGNAT app fleets: many phones behind one carrier address are spared; floods are not.

A carrier address in front of an app fleet carries hundreds of requests a minute, but every
phone is its own user agent polling at the app's cadence. A flood from one address, even one
rotating a few agents, is still a flood; a stuffer rotating app agents still fails logins.
"""

from __future__ import annotations

import numpy as np

from tests.support.detectors import background, flagged, run
from tests.support.traffic import Traffic

POOL = "203.0.113.100"


def app_agent(i: int) -> str:
    return f"ExampleShop/5.12.{i % 3} (Linux; Android 14; device-{i}) okhttp/4.12.0"


def cgnat_fleet(tr: Traffic, ip: str, phones: int, every_s: float = 15.0) -> Traffic:
    """``phones`` app users behind ``ip``, each polling the feed while in the foreground."""
    for p in range(phones):
        start = float(tr.rng.uniform(0, 900))
        stop = min(1200.0, start + float(tr.rng.uniform(120, 1200)))
        tr.add(ip, start, "/api/v2/config", ua=app_agent(p))
        for t in np.arange(start + 1.5, stop, every_s):
            tr.add(ip, t + float(tr.rng.uniform(-0.25, 0.25)), "/api/v2/feed", ua=app_agent(p))
    return tr


def test_cgnat_app_fleet_above_the_flood_threshold_is_not_flagged():
    tr = cgnat_fleet(background(Traffic(21)), POOL, phones=200)
    per_min = len([r for r in tr.rows if r["client_ip"] == POOL]) / 20
    assert per_min > 240  # above the per-address flood threshold: only the gate spares it
    res, _ = run(tr)
    assert POOL not in flagged(res)


def test_flood_rotating_a_few_agents_is_still_blocked():
    tr = cgnat_fleet(background(Traffic(22)), POOL, phones=200)
    for k in range(4):  # one address, 4 agents, 8 requests a second between them
        tr.flood("203.0.113.9", 300 + k * 0.05, 420, rate=2, path="/api/v2/feed",
                 ua=app_agent(1000 + k))
    res, by = run(tr)
    assert by["203.0.113.9"].detector == "volumetric_flood"
    assert by["203.0.113.9"].action.value == "block"
    assert POOL not in flagged(res)


def test_stuffer_rotating_app_agents_behind_one_address_is_not_a_cgnat_pool():
    tr = background(Traffic(23))
    for i in range(600):  # 30 logins a minute, a new app agent every time, all failing
        tr.add("203.0.113.30", 60 + 2 * i, "/login", method="POST", status=401,
               ua=app_agent(i))
    res, _ = run(tr)
    assert "203.0.113.30" in flagged(res)
