"""Builders of small canonical request tables for feature, detector and pipeline tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from engine.schema import request as R

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
BROWSER_UAS = [
    f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/{v}.0 Safari/537.36"
    for v in range(100, 140)
]


class Traffic:
    """Accumulates request rows, then renders one canonical table sorted by event time."""

    def __init__(self, seed: int = 0) -> None:
        self.rows: list[dict] = []
        self.rng = np.random.default_rng(seed)

    def add(self, ip: str, t_s: float, path: str = "/", *, status: int | None = 200,
            method: str = "GET", ua: str = BROWSER_UAS[0], query: str | None = None,
            source: str = R.SOURCE_ALB, xff: str | None = None, referer: str | None = None,
            bytes_out: int = 1000) -> Traffic:
        self.rows.append({
            R.EVENT_TIME: T0 + timedelta(seconds=float(t_s)), R.CLIENT_IP: ip, R.SOURCE: source,
            R.METHOD: method, R.PATH: path, R.QUERY: query, R.STATUS: status, R.USER_AGENT: ua,
            R.X_FORWARDED_FOR: xff, R.REFERER: referer, R.BYTES_OUT: bytes_out,
        })
        return self

    # --- populations ---------------------------------------------------------------------
    def browser(self, ip: str, t0: float, t1: float, pages: int = 8, ua: str = BROWSER_UAS[0]):
        """A human: pages at irregular think times, each followed by a few assets."""
        for t in np.sort(self.rng.uniform(t0, t1, pages)):
            self.add(ip, t, f"/article/{int(self.rng.integers(1, 500))}", ua=ua)
            for j in range(int(self.rng.integers(2, 5))):
                self.add(ip, t + 0.2 + 0.1 * j, f"/static/app{j}.css", ua=ua)
        return self

    def flood(self, ip: str, t0: float, t1: float, rate: float, path: str = "/search",
              ua: str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/118.0"):
        for t in np.arange(t0, t1, 1.0 / rate):
            self.add(ip, t, path, ua=ua)
        return self

    def poller(self, ip: str, t0: float, t1: float, every_s: float, path: str = "/api/v1/status",
               ua: str = "acme-sync/3.2"):
        for t in np.arange(t0, t1, every_s):
            self.add(ip, t + self.rng.uniform(0, 0.05), path, ua=ua)
        return self

    def table(self) -> pa.Table:
        rows = sorted(self.rows, key=lambda r: r[R.EVENT_TIME])
        names = list(rows[0]) if rows else []
        schema = pa.schema([f for f in R.REQUEST_SCHEMA if f.name in names])
        return R.conform(pa.Table.from_pylist(rows, schema=schema))
