"""Detection-to-enforcement latency: ALB object visible in S3 → attacker in the WAF IP set.

Drives the real engine loop (``EngineRunner``) against a moto server on 127.0.0.1: S3 → SQS
notification → read → parse → history → features/detectors → ledger + policy → compile →
WAF ``UpdateIPSet``. Each repetition puts a fresh 100,000-line ALB object holding one new
flood source and measures, in engine time, how long until the block set holds it. AWS's own
delivery and propagation are excluded by construction (moto answers at once).

In the same run it times the floors: gzip decompression and ``parse_object`` alone on the
same bytes, and prints the end-to-end latency as a ratio of those.

    python -m benchmarks.bench_latency [--lines 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gzip
import io
import ipaddress
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import isal.igzip as igzip

from benchmarks.alb_generator import generate_lines
from engine.core.clock import AcceleratedClock
from engine.demo.standin import bootstrap, client, start_moto
from engine.enforcer import RecordingShieldFake
from engine.parsers import parse_object
from engine.runner import EngineRunner
from engine.settings import Settings

START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # the generator's first event time
BLOCK_SET = "wafsmith-block-v4-0"


def flood_lines(attacker: str, start: datetime, n: int = 3000) -> list[str]:
    """``n`` requests from ``attacker`` within one minute, all to the search page."""
    out = []
    for i in range(n):
        t = start + timedelta(milliseconds=i * 60_000 // n)
        stamp = t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out.append(
            f"h2 {stamp} app/shop/50dc6c495c0c9188 {attacker}:40000 10.0.0.5:8080 0.000 0.004 "
            f'0.000 200 200 420 5120 "GET https://shop.example.com:443/search?q={i} HTTP/2.0" '
            f'"Mozilla/5.0 (Windows NT 10.0; Win64; x64)" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 '
            f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop/73e2d6bc24d8a067"
            f' "Root=1-00000000-{i:024x}" "shop.example.com" "-" 0 {stamp} "waf,forward" "-" "-" '
            f'"10.0.0.5:8080" "200" "-" "-"'
        )
    return out


def make_object(n_lines: int, attacker: str, seed: int, start: datetime) -> bytes:
    """Five minutes of traffic from ``start`` with a one-minute flood in the second minute."""
    lines = generate_lines(n_lines, n_clients=20_000, seed=seed, start=start)
    flood = flood_lines(attacker, start + timedelta(minutes=1))
    lines = sorted(lines + flood, key=lambda s: s.split(" ")[1])
    return gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=6, mtime=0)


def in_block_set(waf, attacker: str) -> bool:
    for summary in waf.list_ip_sets(Scope="REGIONAL")["IPSets"]:
        if summary["Name"] == BLOCK_SET:
            got = waf.get_ip_set(Name=BLOCK_SET, Scope="REGIONAL", Id=summary["Id"])
            addr = ipaddress.ip_address(attacker)  # adjacent attackers aggregate into CIDRs
            return any(addr in ipaddress.ip_network(a) for a in got["IPSet"]["Addresses"])
    return False


class Watcher(threading.Thread):
    """Polls the WAF every 20 ms and notes when the attacker is first covered."""

    def __init__(self, endpoint: str, attacker: str) -> None:
        super().__init__(daemon=True)
        self.waf = client("wafv2", endpoint)
        self.attacker = attacker
        self.at = threading.Event()
        self.when = 0.0

    def run(self) -> None:
        deadline = time.perf_counter() + 120
        while time.perf_counter() < deadline:
            if in_block_set(self.waf, self.attacker):
                self.when = time.perf_counter()
                self.at.set()
                return
            time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(var, "bench")
    server, endpoint = start_moto()
    try:
        aws = bootstrap(endpoint)
        s3 = client("s3", endpoint)
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                data_dir=Path(tmp),
                aws={"endpoint_url": endpoint, "region": aws.region},
                source={"kind": "sqs", "queue_url": aws.queue_url, "wait_time_s": 0},
                enforcement={"mode": "enforce", "web_acl_name": aws.web_acl_name},
                policy={
                    "auto_approve": [
                        {
                            "name": "floods",
                            "detectors": ["volumetric_flood", "distributed_flood"],
                            "min_score": 0.5,
                        }
                    ],
                    "max_new_entries_per_push": 1000,
                    "max_blocked_share": 1.0,
                },
            )
            clock = AcceleratedClock(START + timedelta(minutes=30), speed=1.0)
            runner = EngineRunner.from_settings(settings, clock=clock, shield=RecordingShieldFake())
            runner.enforce(clock.now())  # steady state: the engine's sets and rules exist
            rows = []
            for r in range(args.repeats):
                attacker = f"203.0.113.{10 + r}"
                # each object is the next five minutes of the site's traffic
                body = make_object(args.lines, attacker, 100 + r, START + timedelta(minutes=5 * r))
                t = time.perf_counter()
                with igzip.open(io.BytesIO(body)) as f:
                    while f.read(1 << 20):
                        pass
                floor_s = time.perf_counter() - t
                t = time.perf_counter()
                parse_object(body)
                parse_s = time.perf_counter() - t
                key = f"AWSLogs/123456789012/elasticloadbalancing/us-east-1/bench-{r}.log.gz"
                s3.put_object(Bucket=aws.bucket, Key=key, Body=body)
                visible = time.perf_counter()
                seen = Watcher(endpoint, attacker)  # polls the IP set the way a user would
                seen.start()
                stages: dict[str, float] = {}
                while not seen.at.is_set():
                    report = runner.step()
                    for o in report.objects:
                        stages["object_s"] = stages.get("object_s", 0.0) + o.seconds
                    if report.cycle is not None:
                        stages["enforce_s"] = (
                            report.cycle.finished_at - report.cycle.started_at
                        ).total_seconds()
                    if time.perf_counter() - visible > 120:
                        raise SystemExit("attacker never reached the WAF within 120 s")
                seen.at.wait(5)
                total = seen.when - visible
                rows.append(
                    {
                        "lines": args.lines + 3000,
                        "latency_s": round(total, 3),
                        "gzip_floor_s": round(floor_s, 3),
                        "parse_s": round(parse_s, 3),
                        **{k: round(v, 3) for k, v in stages.items()},
                    }
                )
            runner.close()
    finally:
        server.stop()
    med = statistics.median(r["latency_s"] for r in rows)
    parse = statistics.median(r["parse_s"] for r in rows)
    floor = statistics.median(r["gzip_floor_s"] for r in rows)
    print(
        f"{'run':>3} {'latency s':>10} {'object s':>9} {'enforce s':>10} {'parse s':>8} "
        f"{'gunzip s':>9}"
    )
    for i, r in enumerate(rows):
        print(
            f"{i:>3} {r['latency_s']:>10.3f} {r.get('object_s', 0):>9.3f} "
            f"{r.get('enforce_s', 0):>10.3f} {r['parse_s']:>8.3f} {r['gzip_floor_s']:>9.3f}"
        )
    print(
        f"median latency {med:.3f} s (target < 2 s); {med / parse:.1f}x parse alone, "
        f"{med / floor:.1f}x gunzip alone"
    )
    if args.json:
        args.json.write_text(json.dumps({"runs": rows, "median_latency_s": med}, indent=2))
    return 0 if med < 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
