"""API latency under load: ``wafsmith serve`` in a second process, driven over 127.0.0.1.

    python -m benchmarks.bench_api                 # 100,000 decisions, SQLite and PostgreSQL
    python -m benchmarks.bench_api --quick         # fewer requests per route
    python -m benchmarks.bench_api --backends sqlite

For each ledger backend: bulk-insert the decisions, publish an engine status document, make
a viewer token, start ``wafsmith serve`` (uvicorn, one process) on an ephemeral port, then
send a bounded number of requests per route from this process with a few keep-alive client
threads, and report p50 / p99 latency. ``/healthz`` (one ``SELECT 1``) is the same-run
baseline; the ratio says what each route costs on top of HTTP, auth-free routing and a
database round trip.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import psycopg

from engine.core.clock import SystemClock
from engine.decisions import Ledger, db
from engine.schema.evidence import EvidenceSample
from engine.status import EnforcementStatus, EngineStatus, IngestStatus, publish

POSTGRES_URL = os.environ.get(
    "WAFSMITH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
STATES = ["proposed"] * 3 + ["approved", "applied", "rejected", "expired", "revoked"]
ACTIONS = ["block", "block", "challenge", "rate_limit", "count"]
SAMPLE = EvidenceSample(
    event_time="2026-03-01T11:58:02.125Z",
    method="POST",
    path="/login",
    status=401,
    user_agent="python-requests/2.31",
    priority=4,
).to_dict()


def bulk_insert(ledger: Ledger, n: int, *, seed: int = 0, chunk: int = 5000) -> None:
    """``n`` decisions straight into the ledger table (the benchmark's fixture, not a path
    users take: proposals normally go through ``Ledger.propose``)."""
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    states = rng.choice(STATES, n)
    actions = rng.choice(ACTIONS, n)
    scores = rng.uniform(0.5, 1.0, n).round(3)
    with ledger.engine.begin() as conn:
        for start in range(0, n, chunk):
            rows = []
            for i in range(start, min(n, start + chunk)):
                decided = now - timedelta(seconds=int(n - i))
                rows.append(
                    {
                        "id": uuid.UUID(int=(seed << 64) + i).hex,
                        "client": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                        "action": str(actions[i]),
                        "status": str(states[i]),
                        "score": float(scores[i]),
                        "confidence": 0.8,
                        "detector": "request_rate",
                        "reasons": ["520 requests/min", "404 share 0.62"],
                        "evidence": [SAMPLE],
                        "members": [],
                        "ttl_s": 3600,
                        "decided_at": decided,
                        "expires_at": decided + timedelta(seconds=3600),
                        "created_at": decided,
                        "updated_at": decided,
                        "version": 1,
                    }
                )
            conn.execute(db.decisions.insert(), rows)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served(url: str) -> Iterator[str]:
    """``wafsmith serve`` against ``url`` in a subprocess; yields its base URL."""
    port = free_port()
    env = {**os.environ, "WAFSMITH_LOG_LEVEL": "WARNING"}
    cmd = [sys.executable, "-m", "benchmarks.bench_api", "--serve", url, "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"wafsmith serve exited with {proc.returncode}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("wafsmith serve did not come up within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure(
    base: str, path: str, headers: dict[str, str], *, count: int, threads: int, max_s: float
) -> np.ndarray:
    """Latencies (ms) of up to ``count`` GETs of ``path`` from ``threads`` keep-alive clients,
    stopping early after ``max_s`` seconds."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + max_s
    per_thread = -(-count // threads)

    def worker() -> None:
        mine = []
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            client.get(path).raise_for_status()  # warm the connection
            for _ in range(per_thread):
                if time.monotonic() > deadline:
                    break
                started = time.perf_counter()
                reply = client.get(path)
                mine.append((time.perf_counter() - started) * 1000)
                reply.raise_for_status()
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return np.array(latencies)


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
            yield f"sqlite:///{tmp}/ledger.db"
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    libpq = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(libpq, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            sep = "&" if "?" in POSTGRES_URL else "?"
            yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def run_backend(kind: str, args: argparse.Namespace) -> None:
    with database(kind) as url:
        ledger = Ledger.open(url, clock=SystemClock())
        started = time.perf_counter()
        bulk_insert(ledger, args.decisions)
        insert_s = time.perf_counter() - started
        ingest = IngestStatus(lag_s=4.2, lines_per_s=51000, objects=812, malformed=3)
        publish(ledger, EngineStatus(ingest=ingest))
        publish(ledger, EnforcementStatus(ok=True, writes=2, errors=()))
        token, _ = ledger.create_token("bench", "viewer")
        cursor = str(args.decisions // 2)  # keyset cursor: the row sequence number
        ledger.close()
        print(f"\n[{kind}] {args.decisions:,} decisions bulk-inserted in {insert_s:.1f} s")
        routes = {
            "/healthz": "/healthz",
            "/api/v1/status": "/api/v1/status",
            "decisions (first page, 50)": "/api/v1/decisions?limit=50",
            "decisions ?state=proposed": "/api/v1/decisions?state=proposed&limit=50",
            "decisions (page at 50 %)": f"/api/v1/decisions?limit=50&cursor={cursor}",
            "/metrics": "/metrics",
        }
        headers = {"Authorization": f"Bearer {token}"}
        with served(url) as base:
            results = {
                name: measure(
                    base, path, headers, count=args.requests, threads=args.threads, max_s=20
                )
                for name, path in routes.items()
            }
        base_p50 = float(np.percentile(results["/healthz"], 50))
        print(f"  {'route':<28}{'n':>6}{'p50 ms':>9}{'p99 ms':>9}{'p50 / healthz':>15}")
        for name, lat in results.items():
            p50, p99 = np.percentile(lat, 50), np.percentile(lat, 99)
            print(f"  {name:<28}{len(lat):>6}{p50:>9.2f}{p99:>9.2f}{p50 / base_p50:>14.1f}x")


def serve(url: str, port: int) -> int:
    """The subprocess side: exactly what ``wafsmith serve`` runs."""
    from engine.cli import serve as serve_cli

    args = argparse.Namespace(
        host="127.0.0.1",
        port=port,
        database_url=url,
        config=None,
        session_secret_file=None,
        secure_cookies=False,
    )
    return serve_cli.run(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 requests per route")
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=None, help="requests per route")
    parser.add_argument("--threads", type=int, default=4, help="concurrent client threads")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve, args.port)
    args.requests = args.requests or (200 if args.quick else 1000)
    print(
        f"API latency: {args.requests} requests per route, {args.threads} client threads, "
        f"server = wafsmith serve (uvicorn, 1 process) on 127.0.0.1"
    )
    for kind in args.backends.split(","):
        run_backend(kind.strip(), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
