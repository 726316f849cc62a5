"""Rule-level answer benchmark: what proposing one rule for a campaign costs, and what it finds.

    python -m benchmarks.bench_rule_answers            # 24 h of 100,000 requests/h
    python -m benchmarks.bench_rule_answers --quick    # 24 h of 20,000 requests/h

The history: benign browsing (pages and assets, 2 % of it login POSTs from returning users)
spread over 24 h, and in the last 20 minutes a residential-proxy stuffing campaign — 2,000
addresses across many networks, two POST /login attempts each.

Baseline, measured in the same run on the same history: the backtest the analyst's queue
already runs for the campaign's address decision (its 2,000 members over 24 h). The ratio
says what the rule proposal (scope from the members' traffic, benign peak before the
campaign, the rule's backtest with its over-limit simulation) costs on top of that.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from engine.core.clock import FakeClock
from engine.decisions.backtest import backtest
from engine.decisions.history import RequestHistory
from engine.decisions.rule_answers import propose_rule_answer
from engine.schema import request as R
from engine.schema.decision import Action, Decision

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PROXIES = 2000


def history_table(per_hour: int, seed: int = 0) -> tuple[pa.Table, list[str], set[str]]:
    """Benign traffic over 24 h and the campaign in its last 20 minutes; (table, proxies,
    benign clients)."""
    rng = np.random.default_rng(seed)
    n = per_hour * 24
    start_ms = int((NOW - timedelta(hours=24)).timestamp() * 1000)
    times = start_ms + np.sort(rng.integers(0, 24 * 3600 * 1000, n))
    users = rng.integers(0, max(n // 40, 1), n)
    clients = [f"198.{18 + u // 65536 % 2}.{u // 256 % 256}.{u % 256}" for u in users.tolist()]
    login = rng.random(n) < 0.02
    paths = np.where(login, "/login", np.where(rng.random(n) < 0.6, "/static/app.css", "/p"))
    methods = np.where(login, "POST", "GET")
    status = np.where(login & (rng.random(n) < 0.1), 401, 200)
    proxies = [f"100.{64 + i % 60}.{i // 60 % 256}.{(i * 37) % 250 + 1}" for i in range(PROXIES)]
    attack_t = int((NOW - timedelta(minutes=20)).timestamp() * 1000) + rng.integers(
        0, 20 * 60 * 1000, 2 * PROXIES
    )
    all_t = np.concatenate([times, attack_t])
    table = pa.table(
        {
            R.EVENT_TIME: pa.array(all_t, pa.timestamp("ms", tz="UTC")),
            R.CLIENT_IP: clients + proxies * 2,
            R.SOURCE: ["alb"] * (n + 2 * PROXIES),
            R.METHOD: [*methods.tolist(), *["POST"] * (2 * PROXIES)],
            R.HOST: ["shop.example.com"] * (n + 2 * PROXIES),
            R.PATH: [*paths.tolist(), *["/login"] * (2 * PROXIES)],
            R.STATUS: pa.array([*status.tolist(), *[401] * (2 * PROXIES)], pa.int16()),
        }
    )
    return R.conform(table), proxies, set(clients)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    per_hour = 20_000 if args.quick else 100_000
    table, proxies, benign = history_table(per_hour)
    with tempfile.TemporaryDirectory() as tmp:
        history = RequestHistory(Path(tmp) / "history", clock=FakeClock(NOW), retention_hours=25)
        history.append(table)
        campaign = Decision(
            client=proxies[0],
            action=Action.BLOCK,
            ttl_s=3600,
            score=0.9,
            detector="distributed_stuffing",
            decided_at=NOW - timedelta(minutes=5),
            members=tuple(proxies),
        )
        base_s, rule_s = [], []
        answer = None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            backtest(campaign, history, hours=24, benign_clients=benign)
            t1 = time.perf_counter()
            answer = propose_rule_answer(campaign, history, benign_clients=benign, now=NOW)
            t2 = time.perf_counter()
            base_s.append(t1 - t0)
            rule_s.append(t2 - t1)
    base, rule = min(base_s), min(rule_s)
    print(f"history: {table.num_rows:,} requests over 24 h; campaign {PROXIES:,} proxies x 2")
    print(f"baseline (address decision backtest, 24 h): {base * 1000:8.1f} ms")
    print(f"rule-level proposal (scope, limit, backtest): {rule * 1000:8.1f} ms")
    print(f"ratio rule / baseline: {rule / base:.2f}")
    if answer is None:
        print("no rule proposed")
        return 1
    hits = answer.backtest.over_limit
    rule = answer.decision.rule
    print(
        f"rule: {rule.scope} limit {rule.limit}/{rule.window_s} s {rule.aggregate}; "
        f"benign peak {answer.benign_peak}"
    )
    print(
        f"would have acted on {hits.requests:,} requests from {hits.clients:,} clients, "
        f"{hits.benign_looking_clients:,} of them benign ({hits.windows_over} windows)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
