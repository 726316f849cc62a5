"""Crash safety: `wafsmith run` killed with SIGKILL twenty times while objects keep arriving.

After every restart no object is skipped or counted twice — the per-client request counts in
the engine's history equal those of the objects themselves (one clean pass) — and the WAF
converges on the ledger. The last run is stopped with SIGTERM and must exit cleanly.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pyarrow.compute as pc
import pytest

from engine.compiler import compile_state
from engine.core.clock import SystemClock
from engine.decisions import Ledger
from engine.decisions.history import RequestHistory
from engine.demo.standin import bootstrap
from engine.enforcement import compiler_config
from engine.schema.request import CLIENT_IP
from engine.settings import load_settings
from engine.sources import ProcessedStore
from tests.support.alb import alb_line, alb_object, flood_object
from tests.support.engine_process import start_engine, write_engine_config

OBJECTS = 36
KILLS = 20


def traffic(now: datetime) -> list[tuple[str, bytes, Counter]]:
    """Objects of benign browsing from 60 clients, two of them carrying floods."""
    rng = random.Random(42)
    out = []
    for i in range(OBJECTS):
        start = now - timedelta(minutes=30) + timedelta(seconds=40 * i)
        key = f"AWSLogs/123456789012/elasticloadbalancing/us-east-1/obj-{i:03d}.log.gz"
        if i in (5, 20):
            # The flood fills one whole event-time minute, wherever the test's clock stands:
            # split over two minutes its per-minute peak would score a challenge, not a block.
            minute = start.replace(second=0, microsecond=0)
            data, counts = flood_object(minute, f"203.0.113.{i}", requests=600)
        else:
            lines, counts = [], Counter()
            for j in range(300):
                ip = f"198.51.100.{rng.randrange(60)}"
                lines.append(alb_line(start + timedelta(milliseconds=100 * j), ip, f"/p/{j % 17}"))
                counts[ip] += 1
            data = alb_object(lines)
        out.append((key, data, counts))
    return out


@pytest.mark.slow
def test_twenty_sigkills_lose_nothing_and_count_nothing_twice(aws_endpoint, s3, wafv2, tmp_path):
    demo = bootstrap(aws_endpoint)
    data_dir = tmp_path / "var"
    source = {
        "kind": "sqs",
        "queue_url": demo.queue_url,
        "visibility_timeout_s": 2,
        "wait_time_s": 1,
    }
    config = write_engine_config(tmp_path / "engine.toml", demo, data_dir, source=source)
    objects = traffic(datetime.now(UTC))
    expected = sum((c for _, _, c in objects), Counter())

    def feed() -> None:  # objects keep arriving while the engine is being killed
        for key, data, _ in objects:
            s3.put_object(Bucket=demo.bucket, Key=key, Body=data)
            time.sleep(1.0)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    rng = random.Random(7)
    kills = 0
    for _ in range(KILLS):
        proc = start_engine(config)
        started = time.monotonic()
        while not (data_dir / "wafsmith.db").exists() and time.monotonic() - started < 60:
            time.sleep(0.05)  # imports done, stages being built: from here on it is fair game
        time.sleep(rng.uniform(0.1, 3.0))
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-3000:]
    assert kills == KILLS
    feeder.join()

    settings = load_settings(config)
    store = ProcessedStore(settings.resolved_database_url)
    proc = start_engine(config)
    deadline = time.monotonic() + 180
    while store.count() < OBJECTS and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
    time.sleep(3 * settings.enforcement.interval_s)  # let a cycle run after the last object
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, proc.stderr.read().decode()[-3000:]

    # every object committed exactly once
    records = store.records(bucket=demo.bucket)
    assert sorted(r.key for r in records) == sorted(k for k, _, _ in objects)
    # per-client counts equal one clean pass over the objects
    clock = SystemClock()
    history = RequestHistory(data_dir / "history", clock=clock)
    table = history.read(since=clock.now() - timedelta(hours=2), until=clock.now())
    counted = pc.value_counts(table.column(CLIENT_IP))
    got = {v["values"]: v["counts"] for v in counted.to_pylist()}
    assert got == dict(expected)
    # the WAF converged on the ledger: the block set holds exactly what the ledger enforces
    ledger = Ledger.open(settings.resolved_database_url, clock=clock)
    desired = compile_state(ledger.enforceable(clock.now()), compiler_config(settings), clock.now())
    want = {s.name: sorted(s.addresses) for s in desired.ip_sets}
    have = {}
    for summary in wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"]:
        if summary["Name"] in want:
            ip_set = wafv2.get_ip_set(Name=summary["Name"], Scope="REGIONAL", Id=summary["Id"])
            have[summary["Name"]] = sorted(ip_set["IPSet"]["Addresses"])
    assert have == want
    assert "203.0.113.5/32" in want["wafsmith-block-v4-0"]
    assert "203.0.113.20/32" in want["wafsmith-block-v4-0"]
    ledger.close()
    store.close()
