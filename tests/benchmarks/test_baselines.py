"""Baselines on tiny hand-made streams whose flagged sets are known in advance."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from benchmarks.baselines import run_baselines
from benchmarks.baselines.aws_solution import flood_athena, flood_lambda, scanner
from benchmarks.baselines.common import file_end
from benchmarks.baselines.crowdsec import SCENARIOS, Scenario, crowdsec_http, leaky_bucket
from benchmarks.baselines.fail2ban import fail2ban_http
from benchmarks.baselines.waf_rate import waf_rate_rule
from engine.schema import request as rq

T0 = int(datetime(2026, 3, 2, 10, 0, tzinfo=UTC).timestamp() * 1000)  # on a 5-min boundary


def stream(*clients: tuple[str, list[float], dict]) -> pa.Table:
    """Canonical rows: per client, request offsets in seconds from T0 plus column values."""
    cols: dict[str, list] = {
        k: []
        for k in (
            rq.EVENT_TIME,
            rq.CLIENT_IP,
            rq.METHOD,
            rq.HOST,
            rq.PATH,
            rq.QUERY,
            rq.STATUS,
            rq.ORIGIN_STATUS,
            rq.USER_AGENT,
        )
    }
    for ip, offsets, values in clients:
        n = len(offsets)
        paths = values.get("paths", ["/"] * n)
        for i, off in enumerate(offsets):
            cols[rq.EVENT_TIME].append(T0 + round(off * 1000))
            cols[rq.CLIENT_IP].append(ip)
            cols[rq.METHOD].append(values.get("method", "GET"))
            cols[rq.HOST].append("www.example.com")
            cols[rq.PATH].append(paths[i])
            cols[rq.QUERY].append(None)
            st = values.get("status", 200)
            cols[rq.STATUS].append(st)
            cols[rq.ORIGIN_STATUS].append(values.get("origin_status", st))
            cols[rq.USER_AGENT].append(values.get("ua", "Mozilla/5.0 (X11; Linux x86_64)"))
    arrays = {
        rq.EVENT_TIME: pa.array(cols[rq.EVENT_TIME], pa.int64()).cast(rq.TIMESTAMP_TYPE),
        rq.SOURCE: pa.array(["alb"] * len(cols[rq.EVENT_TIME]), pa.string()),
        rq.STATUS: pa.array(cols[rq.STATUS], pa.int16()),
        rq.ORIGIN_STATUS: pa.array(cols[rq.ORIGIN_STATUS], pa.int16()),
    }
    for k in (rq.CLIENT_IP, rq.METHOD, rq.HOST, rq.PATH, rq.QUERY, rq.USER_AGENT):
        arrays[k] = pa.array(cols[k], pa.string())
    return rq.conform(pa.table(arrays))


def every(step_s: float, n: int, start: float = 0.0) -> list[float]:
    return [start + i * step_s for i in range(n)]


# --- WAF rate-based rule ---------------------------------------------------------------------


def test_rate_rule_limits_a_client_at_the_first_tick_its_count_exceeds_the_limit():
    t = stream(
        ("192.0.2.1", every(1.0, 101, start=0.5), {}), ("192.0.2.2", every(1.0, 100, start=0.5), {})
    )
    res = waf_rate_rule(t, limit=100)
    assert set(res.flagged) == {"192.0.2.1"}  # exactly the limit is allowed (> semantics)
    # the 101st request arrives at 100.5 s; the next 10-s evaluation is at 110 s
    assert res.flagged["192.0.2.1"].detected_ms == T0 + 110_000


def test_rate_rule_counts_a_sliding_window_not_the_whole_stream():
    # 101 requests 3 s apart span exactly 300 s: no (t-300, t] window ever holds 101
    t = stream(("192.0.2.1", every(3.0, 101), {}))
    assert waf_rate_rule(t, limit=100).flagged == {}
    assert set(waf_rate_rule(t, limit=99).flagged) == {"192.0.2.1"}


def test_rate_rule_refuses_windows_waf_does_not_offer():
    with pytest.raises(ValueError, match="60/120/300/600"):
        waf_rate_rule(stream(("192.0.2.1", [0.0], {})), limit=100, window_s=30)


# --- AWS Security Automations --------------------------------------------------------------


def test_flood_lambda_documented_threshold_is_a_fifth_per_minute():
    t = stream(
        ("192.0.2.1", every(1.0, 20, start=60), {}),  # 20 in minute 1
        ("192.0.2.2", every(1.0, 19, start=60) + every(1.0, 19, start=120), {}),
    )
    res = flood_lambda(t, "documented")
    assert set(res.flagged) == {"192.0.2.1"}
    flag = res.flagged["192.0.2.1"]
    assert flag.detected_ms == T0 + 79_000  # the 20th request
    assert flag.effective_ms == T0 + 300_000 + 60_000  # Firehose buffer end + parse delay


def test_flood_lambda_as_shipped_misses_99_per_minute_for_three_minutes():
    # the verified bug of peer-baselines.md §1.4: the 5-minute threshold applied per minute
    t = stream(("192.0.2.1", every(60 / 99, 99 * 3), {}))
    assert flood_lambda(t, "as-shipped").flagged == {}
    assert set(flood_lambda(t, "documented").flagged) == {"192.0.2.1"}


def test_flood_athena_lands_one_schedule_after_the_buffer():
    t = stream(("192.0.2.1", every(1.0, 20, start=400), {}))
    flag = flood_athena(t).flagged["192.0.2.1"]
    assert flag.effective_ms == T0 + 600_000 + 300_000 + 60_000


def test_scanner_counts_origin_4xx_per_minute_only():
    t = stream(
        ("192.0.2.1", every(1.0, 50), {"status": 404}),  # 50 errors in a minute
        ("192.0.2.2", every(1.0, 49), {"status": 404}),
        ("192.0.2.3", every(1.0, 55), {"status": 500}),  # 5xx never counts
        ("192.0.2.4", every(1.0, 55), {"status": 403, "origin_status": None}),  # WAF-blocked
        ("192.0.2.5", every(2.0, 60), {"status": 404}),  # 60 errors over two minutes
    )
    for mode in ("lambda", "athena"):
        assert set(scanner(t, mode).flagged) == {"192.0.2.1"}


# --- CrowdSec leaky buckets ----------------------------------------------------------------


def test_bucket_overflows_exactly_at_capacity_plus_one():
    sc = Scenario("test", capacity=3, leakspeed_ms=1000, distinct=None)
    assert leaky_bucket(["a"] * 3, np.array([0, 0, 0]), None, sc) == {}
    assert leaky_bucket(["a"] * 4, np.array([0, 0, 0, 5]), None, sc) == {"a": 5}


def test_bucket_leaks_one_token_per_leakspeed():
    sc = Scenario("test", capacity=3, leakspeed_ms=1000, distinct=None)
    # one event per leakspeed never overflows; slightly faster eventually does
    assert leaky_bucket(["a"] * 50, np.arange(50) * 1000, None, sc) == {}
    assert "a" in leaky_bucket(["a"] * 50, np.arange(50) * 900, None, sc)


def test_bucket_distinct_values_take_no_token_twice():
    sc = Scenario("test", capacity=2, leakspeed_ms=10_000, distinct="target")
    assert leaky_bucket(["a"] * 5, np.zeros(5), ["/x"] * 5, sc) == {}
    assert leaky_bucket(["a"] * 3, np.zeros(3), ["/x", "/y", "/z"], sc) == {"a": 0}


def test_idle_bucket_expires_with_its_memory():
    sc = Scenario("test", capacity=1, leakspeed_ms=1000, distinct="target")
    # after (1+1)*1 s idle the bucket is gone, so "/x" is poured afresh and overflows
    times = np.array([0, 0, 2500, 2500])
    assert leaky_bucket(["a"] * 4, times, ["/x", "/x", "/x", "/y"], sc) == {"a": 2500}


def test_http_probing_needs_eleven_distinct_non_static_404s_in_a_burst():
    probe = [f"/p{i}" for i in range(11)]
    t = stream(
        ("192.0.2.1", [0.0] * 11, {"status": 404, "paths": probe}),
        ("192.0.2.2", [0.0] * 10, {"status": 404, "paths": probe[:10]}),
        ("192.0.2.3", [0.0] * 11, {"status": 404, "paths": [p + ".png" for p in probe]}),
        ("192.0.2.4", every(11.0, 40), {"status": 404, "paths": [f"/q{i}" for i in range(40)]}),
    )
    res = crowdsec_http(t, scenarios=("http-probing",))
    assert set(res.flagged) == {"192.0.2.1"}  # static 404s and a slow scanner stay unseen
    assert SCENARIOS["http-probing"].capacity == 10


def test_crawl_non_statics_fires_above_two_distinct_pages_per_second():
    t = stream(
        # 5 distinct pages/s: 40 tokens + 2/s refill run dry after ~13 s (67th page)
        ("192.0.2.1", every(0.2, 100), {"paths": [f"/a/{i}" for i in range(100)]}),
        ("192.0.2.2", every(0.6, 100), {"paths": [f"/b/{i}" for i in range(100)]}),
    )
    assert set(crowdsec_http(t, scenarios=("http-crawl-non_statics",)).flagged) == {"192.0.2.1"}


def test_bad_user_agent_uses_the_bad_bot_list(fixtures_dir):
    corpora = fixtures_dir / "corpora"  # holds a copy of bad-bot-lists/bad-user-agents.list
    t = stream(
        ("192.0.2.1", [0.0, 1.0], {"ua": "sqlmap/1.7.2#stable (https://sqlmap.org)"}),
        ("192.0.2.2", [0.0, 1.0], {}),
    )
    res = crowdsec_http(t, corpora, scenarios=("http-bad-user-agent",))
    assert set(res.flagged) == {"192.0.2.1"}


# --- fail2ban ------------------------------------------------------------------------------


def test_fail2ban_bans_five_auth_failures_within_ten_minutes():
    t = stream(
        ("192.0.2.1", every(60.0, 5), {"method": "POST", "status": 401}),
        ("192.0.2.2", every(150.0, 5), {"method": "POST", "status": 401}),
    )
    res = fail2ban_http(t)
    assert set(res.flagged) == {"192.0.2.1"}
    assert res.flagged["192.0.2.1"].detected_ms == T0 + 240_000


def test_run_baselines_feeds_each_its_log():
    t = stream(("192.0.2.1", every(0.1, 2100), {}))
    out = run_baselines({"alb": t, "waf": t})
    assert "192.0.2.1" in out["waf-rbr-2000"].flagged
    with pytest.raises(KeyError, match="needs the 'waf' table"):
        run_baselines({"alb": t})


def test_file_end_is_the_end_of_the_five_minute_file():
    assert file_end(T0) == T0 + 300_000
    assert file_end(T0 + 299_999) == T0 + 300_000
