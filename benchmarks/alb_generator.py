"""Deterministic, realistic ALB access logs for benchmarks (``python -m benchmarks.alb_generator``).

Tens of thousands of clients with Zipf-like activity (a few very busy, a long tail), real-looking
paths, query strings and user agents, TLS and plain listeners, occasional WAF blocks, the
current 33-field layout. Addresses come from the documentation ranges (192.0.2.0/24,
198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) plus private ranges, so nothing real leaks.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
from isal import igzip

PATHS = [
    "/", "/index.html", "/login", "/api/v1/items", "/api/v1/items/{id}", "/api/v1/cart",
    "/static/app.{id}.js", "/static/style.css", "/images/p/{id}.jpg", "/search", "/checkout",
    "/account/orders", "/wp-login.php", "/.env", "/admin", "/health", "/favicon.ico",
    "/products/{id}", "/blog/2026/11/post-{id}", "/api/v2/session",
]  # fmt: skip
QUERIES = ["", "", "", "q=shoes", "page={id}", "id={id}&ref=home", "utm_source=mail&x={id}"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Go-http-client/1.1",
    "-",
]
METHODS = ["GET"] * 8 + ["POST", "HEAD"]
STATUSES = [200] * 12 + [301, 304, 404, 404, 403, 500, 502]
HOST = "shop.example.com"
ELB = "app/shop-prod/50dc6c495c0c9188"
TG = "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/shop/73e2d6bc24d8a067"
CERT = "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012"


DEFAULT_START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def client_pool(n_clients: int, rng: np.random.Generator) -> list[str]:
    """Distinct client addresses: documentation and private IPv4 ranges, ~3 % IPv6."""
    pool = []
    for i in range(n_clients):
        if i % 33 == 0:
            pool.append(f"[2001:db8:{i % 65536:x}::{rng.integers(1, 65535):x}]")
        else:
            a, b = divmod(i, 250)
            pool.append(f"10.{(a // 250) % 250}.{a % 250}.{b + 1}")
    return pool


def generate_lines(
    n_lines: int, *, n_clients: int = 50_000, seed: int = 7, start: datetime | None = None
) -> list[str]:
    """``n_lines`` ALB log lines over five minutes from ``start``, identical for identical
    arguments."""
    rng = np.random.default_rng(seed)
    clients = client_pool(n_clients, rng)
    who = (rng.zipf(1.3, n_lines) - 1) % n_clients
    start = start or DEFAULT_START
    offsets_us = np.sort(rng.integers(0, 300_000_000, n_lines))
    path_ix = rng.integers(0, len(PATHS), n_lines)
    query_ix = rng.integers(0, len(QUERIES), n_lines)
    agent_ix = (rng.zipf(1.6, n_lines) - 1) % len(AGENTS)
    status_ix = rng.integers(0, len(STATUSES), n_lines)
    method_ix = rng.integers(0, len(METHODS), n_lines)
    ids = rng.integers(1, 5000, n_lines)
    ports = rng.integers(1024, 65535, n_lines)
    times = rng.exponential(0.05, n_lines)
    sizes = rng.integers(200, 90_000, n_lines)
    lines = []
    for i in range(n_lines):
        t = start + timedelta(microseconds=int(offsets_us[i]))
        created = (t - timedelta(milliseconds=int(times[i] * 1000))).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"
        )
        stamp = t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        status = STATUSES[status_ix[i]]
        blocked = status == 403
        path = PATHS[path_ix[i]].replace("{id}", str(ids[i]))
        query = QUERIES[query_ix[i]].replace("{id}", str(ids[i]))
        url = f"https://{HOST}:443{path}" + (f"?{query}" if query else "")
        request = f"{METHODS[method_ix[i]]} {url} HTTP/{'2.0' if i % 3 else '1.1'}"
        target = "-" if blocked else f"10.0.{i % 4}.{10 + i % 7}:8080"
        t_proc = "-1" if blocked else f"{times[i]:.3f}"
        target_status = "-" if blocked else str(status)
        actions = "waf" if blocked else "waf,forward"
        target_list = "-" if blocked else target
        lines.append(
            f"h2 {stamp} {ELB} {clients[who[i]]}:{ports[i]} {target} 0.000 {t_proc} 0.000 "
            f'{status} {target_status} {300 + ids[i] % 900} {sizes[i]} "{request}" '
            f'"{AGENTS[agent_ix[i]]}" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 {TG} '
            f'"Root=1-{int(offsets_us[i]) & 0xFFFFFFFF:08x}-{i:024x}" "{HOST}" "{CERT}" 0 '
            f'{created} "{actions}" "-" "-" "{target_list}" "{target_status}" "-" "-" '
            f'TID_{i:032x} "-" "-" "-"'
        )
    return lines


def generate_gzip(n_lines: int, *, n_clients: int = 50_000, seed: int = 7) -> bytes:
    """The same lines as one gzip member (ISA-L level 2, about the size zlib level 6 gives).

    Byte-deterministic: the header carries mtime 0, not the current time.
    """
    text = ("\n".join(generate_lines(n_lines, n_clients=n_clients, seed=seed)) + "\n").encode()
    return igzip.compress(text, compresslevel=2, mtime=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", help="write gzip here (default: plain text to stdout)")
    args = parser.parse_args(argv)
    if args.out:
        with open(args.out, "wb") as fh:
            fh.write(generate_gzip(args.lines, n_clients=args.clients, seed=args.seed))
    else:
        lines = generate_lines(args.lines, n_clients=args.clients, seed=args.seed)
        sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
