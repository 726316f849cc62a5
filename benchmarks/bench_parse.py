"""ALB parse benchmark: decompression floor vs a naive per-line parser vs wafsmith.

``python -m benchmarks.bench_parse [--lines N] [--repeat R] [--quick]``

All three run in one process on the same gzip'd input (from ``benchmarks.alb_generator``):

1. floor — ISA-L gzip decompression alone, streamed in 1 MiB reads (nothing parsed);
2. naive — the per-line logic of AWS's log-parser Lambda: ``gzip.open``, decode, ``split(' ')``
   per line, ``urlparse`` of the request URL, a dict counter per client IP + minute;
3. wafsmith — ``engine.parsers.parse_object`` to the full canonical table.

Each is timed in CPU seconds (``time.process_time``, what a busy shared machine distorts
least) and wall seconds; the best of ``--repeat`` runs is reported, with ratios computed
within this run. Targets (issue 2): wafsmith ≥ 4× naive, and within 2.5× of the floor.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
import time
from collections.abc import Callable
from urllib.parse import urlparse

from isal import igzip

from benchmarks.alb_generator import generate_gzip
from engine.parsers import parse_object

READ = 1 << 20


def floor(data: bytes) -> int:
    """Decompress only; returns the line count so the work cannot be skipped."""
    lines = 0
    with igzip.open(io.BytesIO(data)) as fh:
        while chunk := fh.read(READ):
            lines += chunk.count(b"\n")
    return lines


def naive(data: bytes) -> int:
    """AWS log-parser style: one Python pass per line, a dict of counts per (IP, minute)."""
    counts: dict[tuple[str, str], int] = {}
    lines = 0
    with gzip.open(io.BytesIO(data), "rt") as fh:
        for line in fh:
            lines += 1
            fields = line.split(" ")
            if len(fields) < 14:
                continue
            client = fields[3].rsplit(":", 1)[0]
            minute = fields[1][:16]
            urlparse(fields[13])  # the Lambda parses the request URL for its URI checks
            key = (client, minute)
            counts[key] = counts.get(key, 0) + 1
    return lines


def wafsmith(data: bytes) -> int:
    result = parse_object(data)
    return result.rows + sum(result.malformed.values())


def measure(fn: Callable[[bytes], int], data: bytes, repeat: int) -> dict[str, float]:
    best_cpu = best_wall = float("inf")
    lines = 0
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        lines = fn(data)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return {
        "lines": lines,
        "cpu_s": round(best_cpu, 4),
        "wall_s": round(best_wall, 4),
        "lines_per_cpu_s": round(lines / best_cpu),
        "lines_per_wall_s": round(lines / best_wall),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ALB parse: floor vs naive vs wafsmith")
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--clients", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="50k lines, 2 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.lines, args.repeat = 50_000, 2
    data = generate_gzip(args.lines, n_clients=args.clients)
    raw_mb = len(igzip.decompress(data)) / 1e6
    contenders = (("floor", floor), ("naive", naive), ("wafsmith", wafsmith))
    results = {name: measure(fn, data, args.repeat) for name, fn in contenders}
    for name, r in results.items():
        if r["lines"] != args.lines:
            print(f"{name} counted {r['lines']} lines, expected {args.lines}", file=sys.stderr)
            return 1
    f, n, w = (results[k] for k in ("floor", "naive", "wafsmith"))
    summary = {
        "input": {"lines": args.lines, "gzip_mb": round(len(data) / 1e6, 1),
                  "raw_mb": round(raw_mb, 1)},
        "results": results,
        "ratios_cpu": {
            "wafsmith_over_naive": round(w["lines_per_cpu_s"] / n["lines_per_cpu_s"], 2),
            "floor_over_wafsmith": round(f["lines_per_cpu_s"] / w["lines_per_cpu_s"], 2),
        },
        "ratios_wall": {
            "wafsmith_over_naive": round(w["lines_per_wall_s"] / n["lines_per_wall_s"], 2),
            "floor_over_wafsmith": round(f["lines_per_wall_s"] / w["lines_per_wall_s"], 2),
        },
        "targets": {"wafsmith_over_naive": ">= 4", "floor_over_wafsmith": "<= 2.5"},
    }  # fmt: skip
    for name, r in results.items():
        print(f"{name:9s} {r['lines_per_cpu_s']:>10,} lines/cpu-s  "
              f"{r['lines_per_wall_s']:>10,} lines/wall-s", file=sys.stderr)  # fmt: skip
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
