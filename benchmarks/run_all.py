"""Run every benchmark in its quick form, one after another (``make bench``).

Each benchmark prints its own table and ratios against a baseline measured in the same run;
this runner only sequences them and reports which failed. ``--full`` drops the quick flags
(several minutes each on a 2-core machine).

    python -m benchmarks.run_all [--full] [--only parse,latency]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

# (name, module, quick arguments, full arguments)
BENCHMARKS = (
    ("parse", "benchmarks.bench_parse", ["--quick"], []),
    ("features", "benchmarks.bench_features", ["--quick"], []),
    ("analyze", "benchmarks.bench_analyze", ["--quick"], []),
    ("detection", "benchmarks.bench_detection", ["--scale", "small"], ["--scale", "full"]),
    ("compile", "benchmarks.bench_compile", ["--quick"], []),
    ("enforce", "benchmarks.bench_enforce", ["--quick"], []),
    ("latency", "benchmarks.bench_latency", ["--repeats", "3"], ["--repeats", "5"]),
    ("api", "benchmarks.bench_api", ["--quick"], []),
    ("fuzz", "benchmarks.bench_fuzz", ["--cases", "20000", "--gib", "0.25", "--no-save"], []),
    ("scale", "benchmarks.bench_scale", ["--quick"], []),
    # The Spark standalone cluster test (master + two workers on 127.0.0.1): `make test`
    # skips the `cluster` marker, the benchmark run includes it.
    ("spark-cluster", "pytest", ["tests/engine/spark", "-m", "cluster", "-q"],
     ["tests/engine/spark", "-m", "cluster", "-q"]),
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="full-size runs (slow)")
    ap.add_argument("--only", help="comma-separated subset: " + ",".join(b[0] for b in BENCHMARKS))
    args = ap.parse_args(argv)
    wanted = set(args.only.split(",")) if args.only else {b[0] for b in BENCHMARKS}
    unknown = wanted - {b[0] for b in BENCHMARKS}
    if unknown:
        ap.error(f"unknown benchmark(s): {sorted(unknown)}")
    failed = []
    for name, module, quick, full in BENCHMARKS:
        if name not in wanted:
            continue
        print(f"\n=== {name} ({module}) ===", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, "-m", module, *(full if args.full else quick)])
        print(f"=== {name}: exit {code} after {time.monotonic() - started:.0f} s ===", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nbenchmarks that missed their target or failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
