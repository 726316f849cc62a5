"""Whole-process ``wafsmith analyze`` vs the naive per-line parser doing nothing but parse.

``python -m benchmarks.bench_analyze [--lines N] [--objects K] [--repeat R] [--quick]
[--state-clients M]``

The input is K consecutive five-minute gzip'd ALB objects (``benchmarks.alb_generator``),
written to a temporary folder as ALB names them. Two child processes are run on it,
alternated ``--repeat`` times so that a busy machine slows both alike:

1. naive — the per-line logic of AWS's log-parser Lambda (``benchmarks.naive_parser``) over every
   object: parsing only, no features, no detection;
2. wafsmith — ``python -m engine.cli analyze FOLDER --json OUT``: parse + features + detectors
   + proposals, the streaming replay.

Reported per contender: median wall seconds, CPU seconds (user + system of the child) and
peak RSS (``wait4``); the ratio naive/wafsmith (target ≥ 2×, the issue's "analyze vs naive
parse"); wafsmith's per-stage seconds from its own stats; and, in a third child, the feature
state of ``--state-clients`` active clients (target: 10^6 clients within 1 GB).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from benchmarks.alb_generator import DEFAULT_START, generate_lines
from benchmarks.children import run_child


def write_objects(folder: Path, lines: int, objects: int, clients: int) -> int:
    """``objects`` consecutive five-minute ALB objects; returns the line count."""
    per = lines // objects
    for i in range(objects):
        start = DEFAULT_START + timedelta(minutes=5 * i)
        body = "\n".join(generate_lines(per, n_clients=clients, seed=i, start=start)) + "\n"
        name = f"123456789012_elasticloadbalancing_us-east-1_app.shop.1_{start:%Y%m%dT%H%MZ}.log.gz"
        (folder / name).write_bytes(gzip.compress(body.encode(), compresslevel=6, mtime=0))
    return per * objects


# --- child entry points ----------------------------------------------------------------------
def naive_parse(folder: Path) -> int:
    from benchmarks.naive_parser import naive

    return sum(naive(path.read_bytes()) for path in sorted(folder.iterdir()))


def state_probe(n_clients: int) -> dict:
    """Feature state of ``n_clients`` distinct clients, each with a few requests in two
    panes, held in one ``FeatureStore``: the pane arrays' bytes and the process's RSS."""
    import resource

    import numpy as np
    import pyarrow as pa

    from engine.features import FeatureConfig, FeatureStore
    from engine.schema import request as R

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    store = FeatureStore(FeatureConfig(allowed_lateness_s=0))
    rng = np.random.default_rng(1)
    t0 = int(DEFAULT_START.timestamp() * 1000)
    batch = 250_000
    for lo in range(0, n_clients, batch):
        ids = np.arange(lo, min(lo + batch, n_clients))
        ids = np.repeat(ids, 2)  # two requests per client
        n = len(ids)
        ips = [f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in ids.tolist()]
        paths = [f"/p/{x}" for x in rng.integers(0, 500, n).tolist()]
        ts = t0 + rng.integers(0, 120_000, n)  # two one-minute panes
        table = R.conform(
            pa.table(
                {
                    R.EVENT_TIME: pa.array(ts, pa.timestamp("ms", tz="UTC")),
                    R.CLIENT_IP: pa.array(ips),
                    R.SOURCE: pa.array([R.SOURCE_ALB] * n),
                    R.METHOD: pa.array(["GET"] * n),
                    R.PATH: pa.array(paths),
                    R.STATUS: pa.array(rng.choice([200, 404], n).astype(np.int32)),
                    R.USER_AGENT: pa.array(["Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"] * n),
                    R.BYTES_OUT: pa.array(rng.integers(100, 5000, n)),
                }
            ).sort_by(R.EVENT_TIME)
        )
        store.add(table)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "active_clients": store.active_clients(),
        "state_bytes": store.state_bytes(),
        "evidence_bytes": store.sample_bytes(),
        "peak_rss_mb": round(rss1 / 1024, 1),
        "rss_growth_mb": round((rss1 - rss0) / 1024, 1),
    }


# --- the benchmark ---------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=400_000)
    ap.add_argument("--objects", type=int, default=24, help="five-minute objects (24 = 2 h)")
    ap.add_argument("--clients", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--state-clients", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="100k lines, 2 repeats, 10^5 clients")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--naive-parse", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--state-probe", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.naive_parse:
        print(naive_parse(args.naive_parse))
        return 0
    if args.state_probe:
        print(json.dumps(state_probe(args.state_probe)))
        return 0
    if args.quick:
        args.lines, args.repeat, args.state_clients = 100_000, 2, 100_000

    py = sys.executable
    runs: dict[str, list[dict]] = {"naive": [], "wafsmith": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "logs"
        folder.mkdir()
        lines = write_objects(folder, args.lines, args.objects, args.clients)
        out = Path(tmp) / "decisions.json"
        for _ in range(args.repeat):  # alternated: load changes hit both alike
            runs["naive"].append(
                run_child([py, "-m", "benchmarks.bench_analyze", "--naive-parse", str(folder)])
            )
            runs["wafsmith"].append(
                run_child([py, "-m", "engine.cli", "analyze", str(folder), "--json", str(out)])
            )
        stats = json.loads(out.read_text())["stats"]
        counted = int(runs["naive"][-1]["stdout"].strip())
        if counted != lines or stats["rows"] != lines:
            print(f"line counts differ: naive {counted}, wafsmith {stats['rows']}, {lines}",
                  file=sys.stderr)
            return 1
        state = json.loads(
            run_child([py, "-m", "benchmarks.bench_analyze", "--state-probe",
                       str(args.state_clients)])["stdout"]
        )

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    summary = {
        "input": {"lines": lines, "objects": args.objects, "clients": args.clients},
        "repeat": args.repeat,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "naive": {k: round(med("naive", k), 3) for k in ("wall_s", "cpu_s", "peak_rss_mb")},
        "wafsmith": {k: round(med("wafsmith", k), 3) for k in ("wall_s", "cpu_s", "peak_rss_mb")},
        "ratio_wall": round(med("naive", "wall_s") / med("wafsmith", "wall_s"), 2),
        "ratio_cpu": round(med("naive", "cpu_s") / med("wafsmith", "cpu_s"), 2),
        "wafsmith_stages_s": {"parse": stats["parse_s"], **stats["seconds"]},
        "wafsmith_peak_buffered_rows": stats["peak_buffered_rows"],
        "wafsmith_peak_state_bytes": stats["peak_state_bytes"],
        "wafsmith_peak_window_cache_bytes": stats["peak_window_cache_bytes"],
        "wafsmith_peak_active_clients": stats["peak_active_clients"],
        "wafsmith_decisions": stats["decisions"],
        "feature_state": {
            **state,
            "bytes_per_client": round(state["state_bytes"] / max(state["active_clients"], 1), 1),
        },
        "targets": {"ratio": ">= 2", "peak_rss_mb": "<= 600", "state_1e6_clients": "<= 1 GB"},
    }
    n, w = summary["naive"], summary["wafsmith"]
    print(f"analyze, {lines:,} ALB lines in {args.objects} objects, median of {args.repeat}, "
          f"load {summary['load_average']}", file=sys.stderr)
    print(f"  naive parse  {n['wall_s']:7.2f} s wall {n['cpu_s']:7.2f} s CPU "
          f"{n['peak_rss_mb']:7.0f} MB peak", file=sys.stderr)
    print(f"  wafsmith     {w['wall_s']:7.2f} s wall {w['cpu_s']:7.2f} s CPU "
          f"{w['peak_rss_mb']:7.0f} MB peak", file=sys.stderr)
    print(f"  analyze vs naive parse: {summary['ratio_wall']:.2f}x wall, "
          f"{summary['ratio_cpu']:.2f}x CPU (target >= 2x)", file=sys.stderr)
    stages = sorted(summary["wafsmith_stages_s"].items(), key=lambda kv: -kv[1])
    print("  wafsmith stages (s, in-process): "
          + ", ".join(f"{k} {v:.2f}" for k, v in stages if v >= 0.05), file=sys.stderr)
    print(f"  feature state of {state['active_clients']:,} clients: "
          f"{state['state_bytes'] / 1e6:.0f} MB ({summary['feature_state']['bytes_per_client']}"
          f" B/client), process peak RSS {state['peak_rss_mb']:.0f} MB", file=sys.stderr)
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
