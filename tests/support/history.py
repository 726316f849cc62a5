"""A crafted request history with known answers for the backtest tests."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa

from engine.schema.request import (
    CLIENT_IP,
    EVENT_TIME,
    HOST,
    METHOD,
    PATH,
    SOURCE,
    STATUS,
    USER_AGENT,
    WAF_ACTION,
    conform,
)


def requests(
    client: str,
    n: int,
    *,
    end: datetime,
    span: timedelta = timedelta(hours=2),
    path: str = "/",
    method: str = "GET",
    status: int = 200,
    waf_action: str | None = None,
    host: str = "shop.example.com",
) -> pa.Table:
    """``n`` requests from ``client`` spread evenly over ``(end - span, end]``."""
    step = span / n
    times = [end - step * i for i in range(n)]
    return conform(
        pa.table(
            {
                EVENT_TIME: pa.array(times, pa.timestamp("ms", tz="UTC")),
                CLIENT_IP: [client] * n,
                SOURCE: ["alb"] * n,
                METHOD: [method] * n,
                HOST: [host] * n,
                PATH: [path] * n,
                STATUS: pa.array([status] * n, pa.int16()),
                USER_AGENT: ["Mozilla/5.0"] * n,
                WAF_ACTION: [waf_action] * n,
            }
        )
    )


def crafted(now: datetime) -> pa.Table:
    """The scenario: a login brute-forcer, a /24 scanning campaign, benign neighbours."""
    recent = now - timedelta(minutes=1)
    parts = [
        requests("203.0.113.7", 100, end=recent, path="/login", method="POST", status=401),
        requests("203.0.113.7", 50, end=now - timedelta(hours=4), span=timedelta(hours=1)),
        requests("192.0.2.10", 20, end=recent),
        requests("198.51.100.200", 3, end=recent),
        requests("2001:db8::5", 7, end=recent),
        requests("2001:db8:1::9", 4, end=recent, status=500),
        requests("198.51.100.77", 6, end=recent, waf_action="BLOCK"),
    ]
    parts += [
        requests(f"198.51.100.{i}", 5, end=recent, path="/wp-admin/setup.php", status=404)
        for i in range(1, 11)
    ]
    return pa.concat_tables(parts)
