"""Each detector on small crafted traffic, and the false-positive populations it must spare."""

from __future__ import annotations

from engine.pipeline import AnalysisConfig
from tests.support.detectors import GOOGLEBOT, background, flagged, run
from tests.support.traffic import BROWSER_UAS, Traffic


def test_volumetric_flood_is_proposed_within_two_minutes_with_numbers():
    tr = background(Traffic(1))
    tr.flood("203.0.113.9", 300, 420, rate=8)
    res, by = run(tr)
    d = by["203.0.113.9"]
    assert d.detector == "volumetric_flood" and d.action.value == "block"
    assert (d.decided_at - tr.table()["event_time"][0].as_py()).total_seconds() <= 300 + 120
    assert any("requests in one minute" in r and "threshold 240" in r for r in d.reasons)
    assert d.evidence and d.evidence[0].path == "/search"
    assert flagged(res) == {"203.0.113.9"}


def test_fast_and_low_and_slow_scanners():
    tr = background(Traffic(2), minutes=70)
    for i in range(60):  # fast: 60 probes in 2 minutes, a browser user agent
        tr.add("203.0.113.20", 100 + 2 * i, f"/wp-content/plugins/p{i}/readme.txt", status=404)
    for i in range(20):  # slow: one probe every 3 minutes
        tr.add("203.0.113.21", 60 + 180 * i, f"/cgi-bin/test{i}.cgi", status=404)
    res, by = run(tr)
    assert by["203.0.113.20"].detector == "scanner"
    assert by["203.0.113.21"].detector == "scanner"
    assert any("low-and-slow" in r for r in by["203.0.113.21"].reasons)
    assert flagged(res) == {"203.0.113.20", "203.0.113.21"}


def test_credential_stuffing_per_client():
    tr = background(Traffic(3))
    for i in range(40):
        tr.add("203.0.113.30", 200 + 5 * i, "/login", method="POST", status=401)
    res, by = run(tr)
    assert by["203.0.113.30"].detector in {"credential_stuffing", "distributed_stuffing"}
    assert "203.0.113.30" in flagged(res)


def test_scraper_without_assets():
    tr = background(Traffic(4))
    for i in range(400):
        tr.add("203.0.113.40", 60 + 1.5 * i, f"/product/{i}")
    res, by = run(tr)
    assert by["203.0.113.40"].detector == "scraper"
    assert flagged(res) == {"203.0.113.40"}


def test_attack_tool_and_injection_probe():
    tr = background(Traffic(5))
    tr.add("203.0.113.50", 100, "/", ua="sqlmap/1.7.2#stable (https://sqlmap.org)")
    for i in range(4):
        tr.add("203.0.113.51", 100 + 30 * i, "/item", query=f"id={i}%27%20UNION%20SELECT%201,2--")
    res, by = run(tr)
    assert by["203.0.113.50"].detector == "attack_tools"
    assert by["203.0.113.51"].detector == "injection"
    assert flagged(res) == {"203.0.113.50", "203.0.113.51"}


def test_verified_crawler_is_spared_and_fake_crawler_is_flagged():
    tr = background(Traffic(6))
    for i in range(600):  # aggressive crawling from Google's published network
        tr.add("66.249.66.1", 30 + i, f"/article/{i}", ua=GOOGLEBOT, status=404 if i % 3 else 200)
    for i in range(60):  # the same user agent from elsewhere
        tr.add("192.0.2.66", 30 + 10 * i, f"/article/{i}", ua=GOOGLEBOT)
    res, by = run(tr)
    assert "66.249.66.1" not in flagged(res)
    assert by["192.0.2.66"].reasons[0].count("crawler") >= 1


def test_nat_gateway_with_many_humans_is_not_blocked():
    tr = background(Traffic(7))
    for u in range(60):  # 60 people behind one address, each browsing normally
        tr.browser("203.0.113.70", 0, 1200, pages=12, ua=BROWSER_UAS[u % 40] + f" u{u}")
    res, _ = run(tr)
    assert all(d.action.value != "block" for d in res.decisions
               if "203.0.113.70" in (d.client, *d.members))


def test_api_poller_and_health_checker_are_not_flagged():
    tr = background(Traffic(8))
    tr.poller("203.0.113.80", 0, 1200, every_s=1.0)  # 60/min, perfectly regular
    tr.poller("203.0.113.81", 0, 1200, every_s=10.0, path="/healthz", ua="ELB-HealthChecker/2.0")
    res, _ = run(tr)
    assert not {"203.0.113.80", "203.0.113.81"} & flagged(res)


def test_allowlist_wins_over_every_detector():
    tr = background(Traffic(9))
    tr.flood("203.0.113.9", 60, 240, rate=10)
    cfg = AnalysisConfig.model_validate({"gates": {"allowlist": ["203.0.113.0/24"]}})
    res, _ = run(tr, cfg)
    assert "203.0.113.9" not in flagged(res)


def test_distributed_flood_becomes_one_campaign_over_its_members():
    tr = background(Traffic(10))
    bots = [f"100.{64 + i // 200}.{(i // 50) % 4}.{i % 50 + 1}" for i in range(300)]
    for ip in bots:  # 300 addresses, each ~10 requests/min: far below the per-IP flood rule
        tr.flood(ip, 300 + tr.rng.uniform(0, 5), 600, rate=0.17, path="/cart",
                 ua="Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/119.0 botnet")
    res, _ = run(tr)
    campaigns = [d for d in res.decisions if d.detector == "distributed_flood"]
    assert 1 <= len(campaigns) <= 6  # a handful of decisions, not hundreds
    covered = {m for d in campaigns for m in d.members}
    assert len(covered & set(bots)) >= 0.95 * len(bots)
    assert not covered - set(bots)
    assert all(len(d.members) > 1 for d in campaigns)


def test_distributed_stuffing_campaign_spares_a_user_who_mistyped():
    tr = background(Traffic(11))
    bots = [f"100.70.{i // 250}.{i % 250 + 1}" for i in range(200)]
    for j, ip in enumerate(bots):
        for k in range(3):  # three attempts each over ten minutes
            tr.add(ip, 300 + (j * 7 + k * 200) % 600, "/login", method="POST", status=401)
    tr.browser("198.51.100.200", 300, 600, pages=3)
    tr.add("198.51.100.200", 500, "/login", method="POST", status=401)
    tr.add("198.51.100.200", 520, "/login", method="POST", status=302)
    res, _ = run(tr)
    campaigns = [d for d in res.decisions if d.detector == "distributed_stuffing"]
    covered = {m for d in campaigns for m in d.members}
    assert len(covered & set(bots)) >= 0.95 * len(bots)
    assert "198.51.100.200" not in flagged(res)
    assert len(campaigns) <= 6
