"""Bot identity: verified and declared crawlers are gated for every detector, misbehaviour is
judged by crawlers' own standards (and left to an analyst), impersonators are hostile."""

from __future__ import annotations

from engine.detectors.crawlers import KIND
from engine.features.config import FeatureConfig
from engine.pipeline import AnalysisConfig
from tests.support.detectors import GOOGLEBOT, background, flagged, run
from tests.support.traffic import Traffic

AHREFS = "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)"
PAYLOAD = "id=1%27%20UNION%20SELECT%20password%20FROM%20users--"


def test_verified_googlebot_following_planted_injection_links_is_not_proposed():
    tr = background(Traffic(11))
    for i in range(30):  # a link farm an attacker planted: every URL carries a payload
        tr.add("66.249.66.1", 60 + 20 * i, f"/item/{i}", ua=GOOGLEBOT, query=PAYLOAD)
        tr.add("192.0.2.66", 60 + 20 * i, f"/item/{i}", ua=GOOGLEBOT, query=PAYLOAD)
    res, by = run(tr)
    assert "66.249.66.1" not in flagged(res)
    # judged by no detector at all: injection and attack_tools spare verified crawlers
    assert not any(v.client == "66.249.66.1" for v in res.verdicts)
    assert "192.0.2.66" in flagged(res)  # the same agent from elsewhere: an impersonator
    assert by["192.0.2.66"].action.value == "block"


def polite_crawl(tr: Traffic, ip: str, t0: float, pages: int, every_s: float, ua: str = AHREFS):
    tr.add(ip, t0, "/robots.txt", ua=ua)
    for i in range(pages):
        tr.add(ip, t0 + 1 + every_s * i, f"/catalog/{i}/page-{i * 7}", ua=ua)


def test_declared_seo_crawler_is_gated_while_it_behaves():
    tr = background(Traffic(12))
    polite_crawl(tr, "203.0.113.21", 30, pages=400, every_s=2.5)  # a scraper's shape, politely
    for i in range(400):  # the same shape without a declared identity: a scraper
        tr.add("203.0.113.22", 31 + 2.5 * i, f"/catalog/{i}/page-{i * 7}", ua="python-httpx/0.27")
    res, by = run(tr)
    assert "203.0.113.21" not in flagged(res)
    assert by["203.0.113.22"].detector == "scraper"


def test_declared_crawler_that_misbehaves_is_judged_like_anyone():
    tr = background(Traffic(13))
    polite_crawl(tr, "203.0.113.31", 30, pages=200, every_s=3.0)
    for j, path in enumerate(["/.env", "/.git/config", "/wp-config.php.bak", "/backup.sql",
                              "/phpinfo.php", "/server-status"]):  # fmt: skip
        tr.add("203.0.113.31", 100 + j, path, ua=AHREFS, status=404)
    polite_crawl(tr, "203.0.113.32", 30, pages=3000, every_s=0.2)  # 300 a minute: a flood
    _, by = run(tr)
    assert by["203.0.113.31"].detector == "scanner"
    assert by["203.0.113.32"].action.value == "block"
    assert any("[volumetric_flood/" in r for r in by["203.0.113.32"].reasons)


def test_verified_crawler_misconduct_is_proposed_by_its_own_standards():
    cfg = AnalysisConfig(features=FeatureConfig(robots_disallow=["/cart", "/account"]))
    tr = background(Traffic(14))
    polite_crawl(tr, "66.249.66.7", 30, pages=300, every_s=3.0, ua=GOOGLEBOT)
    for i in range(5):  # what robots.txt disallows
        tr.add("66.249.66.7", 400 + 5 * i, f"/cart/{i}", ua=GOOGLEBOT)
    polite_crawl(tr, "66.249.66.8", 30, pages=900, every_s=0.5, ua=GOOGLEBOT)  # 120/min
    polite_crawl(tr, "66.249.66.9", 30, pages=300, every_s=3.0, ua=GOOGLEBOT)  # fine
    res, by = run(tr, cfg)
    assert flagged(res) == {"66.249.66.7", "66.249.66.8"}
    for ip, why in (("66.249.66.7", "robots.txt Disallow"), ("66.249.66.8", "crawl-rate budget")):
        d = by[ip]
        assert d.detector == "crawler_conduct" and any(why in r for r in d.reasons)
        assert d.action.value == "challenge"  # not a block kind: a step below, for a human
        assert f"/{KIND}" in d.reasons[0]
