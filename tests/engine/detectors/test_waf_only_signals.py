"""Credential stuffing seen from a web ACL's log alone (no status codes): clients that only
post to the login endpoint, and site-wide login surges; people who log in and apps that poll
are left alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.detectors import flagged, run
from tests.support.traffic import BROWSER_UAS, Traffic
from tests.support.waf_only import WAF, person_logs_in, waf_background

FIXTURES = Path(__file__).resolve().parents[3] / "data" / "fixtures"
def test_a_client_that_only_posts_to_login_is_proposed_without_status_codes():
    tr = waf_background(Traffic(21))
    for i in range(60):  # one attempt every 5 s, a form-token GET now and then
        tr.add("203.0.113.40", 120 + 5 * i, "/login", method="POST", ua="python-requests/2.31",
               **WAF)  # fmt: skip
        if i % 12 == 0:
            tr.add("203.0.113.40", 121 + 5 * i, "/login", ua="python-requests/2.31", **WAF)
    for i in range(200):  # a metronome: one attempt every 3 s, nothing else
        tr.add("203.0.113.41", 100 + 3 * i, "/login", method="POST", **WAF)
    person_logs_in(tr, "198.51.100.201", 300)
    person_logs_in(tr, "198.51.100.202", 400, attempts=3)  # mistyped twice
    res, by = run(tr)
    d = by["203.0.113.40"]
    assert d.detector == "auth_post_bot" and d.action.value == "block"
    assert any("login POSTs in 15 min without response codes" in r for r in d.reasons)
    assert by["203.0.113.41"].detector == "auth_post_bot"  # steady, but far too many
    assert flagged(res) == {"203.0.113.40", "203.0.113.41"}


def test_a_mobile_app_polling_its_api_and_refreshing_its_token_is_not_flagged():
    tr = waf_background(Traffic(22))
    for k, ip in enumerate(["198.51.100.210", "198.51.100.211"]):
        t0 = 30 + k
        for t in range(0, 1200, 30):  # a poll every 30 s …
            tr.add(ip, t0 + t, "/api/v1/messages", ua="acme-mobile/5.1", **WAF)
        for t in range(0, 1200, 60):  # … and a token refresh on the auth endpoint each minute
            tr.add(ip, t0 + t + 0.5, "/api/auth/login", method="POST", ua="acme-mobile/5.1",
                   **WAF)  # fmt: skip
    for t in range(0, 1200, 60):  # a device that only re-authenticates, on a steady timer
        tr.add("198.51.100.212", 45 + t, "/api/auth/login", method="POST", ua="acme-tv/2.0",
               **WAF)  # fmt: skip
    res, _ = run(tr)
    assert not flagged(res)


def test_a_login_surge_becomes_one_campaign_over_its_members():
    tr = waf_background(Traffic(23), minutes=25)
    for k in range(8):  # the usual logins: a few people an hour, each with page views
        person_logs_in(tr, f"198.51.100.{220 + k}", 60 + 170 * k)
    bots = [f"100.72.{i // 250}.{i % 250 + 1}" for i in range(150)]
    for j, ip in enumerate(bots):  # residential proxies: two attempts each, minutes apart
        for k in range(2):
            tr.add(ip, 600 + (j * 4 + k * 240) % 480, "/login", method="POST", **WAF)
    person_logs_in(tr, "198.51.100.240", 700)  # a person logging in during the surge
    res, _ = run(tr)
    campaigns = [d for d in res.decisions if d.detector == "login_surge"]
    covered = {m for d in campaigns for m in d.members}
    assert campaigns and len(covered & set(bots)) >= 0.95 * len(bots)
    assert not {f"198.51.100.{i}" for i in range(1, 255)} & flagged(res)
    assert any("login POSTs in 5 min against a trailing" in r for r in campaigns[0].reasons)


def test_status_codes_leave_stuffing_and_scans_to_the_status_detectors():
    tr = Traffic(24)
    for i in range(30):
        tr.browser(f"198.51.100.{i + 1}", 0, 1200, pages=8, ua=BROWSER_UAS[i % 40])
    for i in range(40):
        tr.add("203.0.113.30", 200 + 5 * i, "/login", method="POST", status=401)
    for i in range(25):  # a slow scanner whose probes are answered 404
        tr.add("203.0.113.31", 30 + 45 * i, f"/cgi-bin/probe{i}.cgi", status=404)
    res, by = run(tr)
    assert by["203.0.113.30"].detector == "credential_stuffing"
    assert by["203.0.113.31"].detector == "scanner"
    waf_only = {"auth_post_bot", "login_surge", "unseen_paths"}
    assert not [d for d in res.decisions if d.detector in waf_only]


def test_wafsmith_analyze_on_a_web_acl_log_proposes_the_stuffer(tmp_path):
    """The public entry point on a WAF log fixture: only the stuffer is proposed; the people
    who logged in and the app refreshing its token are not."""
    config = tmp_path / "wafsmith.toml"
    config.write_text("[features]\nallowed_lateness_s = 0\n", encoding="utf-8")
    out = tmp_path / "result.json"
    log = FIXTURES / "waf-only" / "login-stuffing.jsonl.gz"
    cmd = [sys.executable, "-m", "engine.cli", "analyze", str(log), "--config", str(config),
           "--json", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["stats"]["formats"] == {"waf": 1}
    proposed = {d["client"] for d in doc["decisions"]} | {
        m for d in doc["decisions"] for m in d["members"]
    }
    assert proposed == {"203.0.113.40"}
    assert {d["detector"] for d in doc["decisions"]} == {"auth_post_bot"}
    assert doc["decisions"][-1]["action"] == "block"
    acted = [r for d in doc["decisions"] for r in d["reasons"] if "web ACL already blocked" in r]
    assert acted  # its rate-based rule's BLOCKs are cited as evidence


def test_a_low_and_slow_scanner_is_proposed_without_status_codes():
    tr = waf_background(Traffic(25), minutes=70)
    words = ["/.env.bak", "/.git/HEAD", "/cgi-bin/test.cgi", "/old/backup.zip", "/wp-admin/x.php"]
    for i in range(30):  # one probe every two minutes: far below any rate rule
        tr.add("203.0.113.50", 60 + 120 * i, f"{words[i % 5]}.{i}", ua=BROWSER_UAS[3], **WAF)
    for i in range(30):  # a reader of long-tail pages nobody else reads: loads the assets
        t = 90 + 130 * i
        tr.add("198.51.100.230", t, f"/archive/{1000 + i}", **WAF)
        tr.add("198.51.100.230", t + 0.3, "/static/app0.css", **WAF)
    res, by = run(tr)
    d = by["203.0.113.50"]
    assert d.detector == "unseen_paths"
    assert any("/vulnerability_scanner " in r for r in d.reasons)
    assert any("requested by no other client" in r for r in d.reasons)
    assert flagged(res) == {"203.0.113.50"}
