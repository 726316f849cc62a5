"""Hand-rendered ALB access-log objects for the engine's end-to-end tests."""

from __future__ import annotations

import gzip
from collections import Counter
from datetime import UTC, datetime, timedelta


def alb_line(
    when: datetime,
    client: str,
    path: str = "/",
    *,
    status: int = 200,
    agent: str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
    method: str = "GET",
) -> str:
    """One 29-field ALB line (the documented layout), ``when`` in UTC."""
    ts = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return (
        f"https {ts} app/site/50dc6c495c0c9188 {client}:40000 10.0.1.5:80 0.001 0.010 0.000 "
        f'{status} {status} 120 900 "{method} https://www.example.com:443{path} HTTP/1.1" '
        f'"{agent}" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 '
        f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/site/73e2d6bc24d8a067 "
        f'"Root=1-58337262-36d228ad5d99923122bbe354" "www.example.com" '
        f'"arn:aws:acm:us-east-1:123456789012:certificate/12345678" 0 {ts} "forward" "-" "-" '
        f'"10.0.1.5:80" "{status}" "-" "-"'
    )


def alb_object(lines: list[str]) -> bytes:
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


def flood_object(
    start: datetime,
    attacker: str,
    *,
    requests: int = 1200,
    benign: tuple[str, ...] = ("198.51.100.20", "198.51.100.21"),
) -> tuple[bytes, Counter]:
    """A flood from ``attacker`` over two minutes, a little benign browsing, and a trailing
    request ten minutes later that moves the watermark past the flood's panes."""
    lines, counts = [], Counter()
    for i in range(requests):
        lines.append(
            alb_line(
                start + timedelta(milliseconds=100 * i),
                attacker,
                "/search?q=x",
                agent="python-requests/2.31",
            )
        )
        counts[attacker] += 1
    for j, ip in enumerate(benign):
        for k in range(5):
            lines.append(alb_line(start + timedelta(seconds=20 * k + j), ip, f"/page/{k}"))
            counts[ip] += 1
    lines.append(alb_line(start + timedelta(minutes=10), benign[0], "/"))
    counts[benign[0]] += 1
    return alb_object(lines), counts


def last_minute_flood_object(
    minute: datetime,
    attacker: str,
    *,
    rate: int = 60,
    benign: tuple[str, ...] = ("198.51.100.20", "198.51.100.21"),
) -> bytes:
    """Four minutes of benign browsing, then ``rate`` req/s from ``attacker`` over the whole
    event-time minute starting at ``minute`` — the object's last; nothing comes after it,
    so no later row moves the watermark past the flood's pane."""
    lines = []
    for j, ip in enumerate(benign):
        for k in range(12):
            lines.append(alb_line(minute - timedelta(minutes=4, seconds=-20 * k - j), ip, "/"))
    for i in range(60 * rate):
        when = minute + timedelta(microseconds=i * 1_000_000 // rate)
        lines.append(alb_line(when, attacker, "/search?q=x", agent="python-requests/2.31"))
    return alb_object(lines)
