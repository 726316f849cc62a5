"""ALB parse benchmark: decompression floor vs a naive per-line parser vs wafsmith.

``python -m benchmarks.bench_parse [--lines N] [--repeat R] [--quick] [--no-processes]``

All three run in one process on the same gzip'd input (from ``benchmarks.alb_generator``):

1. floor — ISA-L gzip decompression alone, streamed in 1 MiB reads (nothing parsed);
2. naive — the per-line logic of AWS's log-parser Lambda: ``gzip.open``, decode, ``split(' ')``
   per line, ``urlparse`` of the request URL, a dict counter per client IP + minute;
3. wafsmith — ``engine.parsers.parse_object`` to the full canonical table.

Each is timed in CPU seconds (``time.process_time``, what a busy shared machine distorts
least) and wall seconds; the best of ``--repeat`` runs is reported, with ratios computed
within this run. Targets (issue 2): wafsmith ≥ 4× naive, and within 2.5× of the floor.

Whole process (issue 16): the same gzip'd file is also handed to two child processes,
alternated ``--repeat`` times so that a busy machine slows both alike — the naive parser
(``python -m benchmarks.naive_parser F``, standard library only) and
``python -m engine.cli parse F`` — and the medians of their wall and CPU seconds (start-up
included) are compared. Per-stage CPU seconds of wafsmith's parse (one thread, each stage
run alone) say where the time goes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from isal import igzip

from benchmarks.alb_generator import generate_gzip
from benchmarks.children import run_child
from benchmarks.naive_parser import naive
from engine.core.netaddr import normalize_column
from engine.parsers import alb, parse_object, slicing, stream
from engine.parsers.arrays import is_utf8
from engine.parsers.result import Tally

READ = 1 << 20
T = TypeVar("T")


def floor(data: bytes) -> int:
    """Decompress only; returns the line count so the work cannot be skipped."""
    lines = 0
    with igzip.open(io.BytesIO(data)) as fh:
        while chunk := fh.read(READ):
            lines += chunk.count(b"\n")
    return lines


def wafsmith(data: bytes) -> int:
    result = parse_object(data)
    return result.rows + sum(result.malformed.values())


def stages(data: bytes) -> dict[str, float]:
    """CPU seconds of each stage of wafsmith's ALB parse, on one thread (in ``parse_object``
    decompression overlaps parsing on a second thread).

    Streamed block by block as ``parse_object`` does, so each stage works on memory the last
    block freed: materialising every block first would charge the page faults of the whole
    decompressed object to decompression and splitting. A stage's time excludes the stages
    it pulls from (splitting excludes the decompression it waits on).
    """
    spent: dict[str, float] = {}

    def add(name: str, seconds: float) -> None:
        spent[name] = spent.get(name, 0.0) + seconds

    def timed(name: str, fn: Callable[[], object]) -> object:
        t0 = time.process_time()
        out = fn()
        add(name, time.process_time() - t0)
        return out

    def pulled(name: str, items: Iterator[T], inner: str | None = None) -> Iterator[T]:
        """``items``, the time of each ``next`` charged to ``name`` (less ``inner``'s share)."""
        while True:
            before = spent.get(inner, 0.0) if inner else 0.0
            t0 = time.process_time()
            item = next(items, None)
            took = time.process_time() - t0
            add(name, took - ((spent.get(inner, 0.0) - before) if inner else 0.0))
            if item is None:
                return
            yield item

    tally = Tally()
    chunks = pulled("decompress", stream.iter_decompressed(data, tally))
    blocks = pulled("split_blocks", stream.iter_numbered_blocks(chunks), inner="decompress")
    parser = alb.AlbParser(tally)
    for block in blocks:
        width = parser._width(block.data)
        timed("tokenize_csv_utf8_part", lambda b=block: is_utf8(b.data))
        pieces = timed(
            "tokenize_csv",
            lambda b=block, w=width: parser.reader.read_block(b.data, b.first_line, w, b.lines),
        )
        for piece in pieces:
            table = piece.table
            ip, _ = timed(
                "client_port_split", lambda t=table: slicing.split_host_port(t["client_port"])
            )
            timed("ip_normalise", lambda ip=ip: normalize_column(ip))
            timed("request_split", lambda t=table: alb.split_request(t["request"]))
            timed("to_canonical_total", lambda p=piece: alb.to_canonical(p, tally))
    return {name: round(seconds, 4) for name, seconds in spent.items()}


def processes(data: bytes, repeat: int) -> dict[str, object]:
    """Whole-process runs of naive and ``wafsmith parse`` on one file, alternated; medians."""
    py = sys.executable
    runs: dict[str, list[dict[str, float]]] = {"naive": [], "wafsmith": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "app.log.gz"
        path.write_bytes(data)
        for _ in range(repeat):
            runs["naive"].append(run_child([py, "-m", "benchmarks.naive_parser", str(path)]))
            runs["wafsmith"].append(run_child([py, "-m", "engine.cli", "parse", str(path)]))
    med = {
        name: {k: round(statistics.median(r[k] for r in rs), 3) for k in ("wall_s", "cpu_s")}
        for name, rs in runs.items()
    }
    return {
        **med,
        "ratio_wall": round(med["naive"]["wall_s"] / med["wafsmith"]["wall_s"], 2),
        "ratio_cpu": round(med["naive"]["cpu_s"] / med["wafsmith"]["cpu_s"], 2),
    }


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
    parser.add_argument(
        "--no-processes",
        action="store_true",
        help="skip the whole-process runs (in-process figures only)",
    )
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
        "wafsmith_stages_cpu_s": stages(data),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }  # fmt: skip
    if not args.no_processes:
        summary["whole_process"] = processes(data, args.repeat)
    for name, r in results.items():
        print(f"{name:9s} {r['lines_per_cpu_s']:>10,} lines/cpu-s  "
              f"{r['lines_per_wall_s']:>10,} lines/wall-s", file=sys.stderr)  # fmt: skip
    if "whole_process" in summary:
        wp = summary["whole_process"]
        print(f"whole process: wafsmith parse {wp['ratio_wall']}x naive wall, "
              f"{wp['ratio_cpu']}x CPU", file=sys.stderr)  # fmt: skip
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
