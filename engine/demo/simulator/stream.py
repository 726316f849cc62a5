"""Column accumulator for simulated requests, and the empirical profile it samples from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources.abc import Traversable

import numpy as np
import pyarrow as pa

from engine.demo.simulator.config import DATA_DIR
from engine.schema import request as rq

TLS = (("TLSv1.3", "TLS_AES_128_GCM_SHA256"), ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"))
PROTOCOLS = ("HTTP/1.1", "HTTP/2.0")


@dataclass(frozen=True)
class Weighted:
    """Values with sampling probabilities."""

    values: np.ndarray
    p: np.ndarray

    @classmethod
    def of(cls, pairs: list[list]) -> Weighted:
        vals = np.array([v for v, _ in pairs], dtype=object)
        w = np.array([float(c) for _, c in pairs])
        return cls(vals, w / w.sum())

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.values[rng.choice(len(self.values), size=n, p=self.p)]


@dataclass(frozen=True)
class Profile:
    """The empirical benign profile (the packaged ``data/benign_profile.json``)."""

    pages: Weighted
    assets: Weighted
    user_agents: Weighted
    page_status: Weighted
    asset_status: Weighted
    page_bytes: np.ndarray
    asset_bytes: np.ndarray
    think_time_s: np.ndarray
    session_pages: np.ndarray
    asset_fanout: np.ndarray
    asset_delay_s: np.ndarray

    @classmethod
    def load(cls, path: Traversable = DATA_DIR / "benign_profile.json") -> Profile:
        d = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            pages=Weighted.of(d["pages"]),
            assets=Weighted.of(d["assets"]),
            user_agents=Weighted.of([u for u in d["user_agents"] if not set(u[0]) & set('"\t\n')]),
            page_status=Weighted.of([[int(k), v] for k, v in d["status"]["page"].items()]),
            asset_status=Weighted.of([[int(k), v] for k, v in d["status"]["asset"].items()]),
            page_bytes=np.asarray(d["bytes"]["page"]),
            asset_bytes=np.asarray(d["bytes"]["asset"]),
            think_time_s=np.asarray(d["think_time_s"]),
            session_pages=np.asarray(d["session_pages"]).astype(int),
            asset_fanout=np.asarray(d["asset_fanout"]).astype(int),
            asset_delay_s=np.asarray(d["asset_delay_s"]),
        )


def _col(value, n: int) -> np.ndarray:
    if isinstance(value, np.ndarray | list | tuple):
        arr = np.asarray(value, dtype=object)
        if arr.shape != (n,):
            raise ValueError(f"column of length {arr.shape} for {n} requests")
        return arr
    out = np.empty(n, dtype=object)
    out[:] = value
    return out


_FIELDS = (
    "ip",
    "time",
    "method",
    "path",
    "query",
    "status",
    "ua",
    "referer",
    "bytes_in",
    "bytes_out",
    "port",
    "protocol",
    "tls",
    "country",
    "duration",
)


class StreamBuilder:
    """Collects requests client by client; ``table()`` returns them in event-time order."""

    def __init__(self, rng: np.random.Generator, host: str) -> None:
        self.rng = rng
        self.host = host
        self._chunks: dict[str, list[np.ndarray]] = {f: [] for f in _FIELDS}
        self.rows = 0

    def add(
        self,
        ip: str,
        times_ms: np.ndarray,
        paths,
        *,
        status,
        ua: str | None,
        country: str,
        method="GET",
        query=None,
        referer=None,
        bytes_in=None,
        bytes_out=None,
        duration_ms=None,
    ) -> None:
        """Append ``len(times_ms)`` requests of one client; scalars broadcast (a ``duration_ms``
        of None: drawn like the site's usual processing times)."""
        n = len(times_ms)
        if n == 0:
            return
        rng = self.rng
        proto_i = int(rng.integers(len(PROTOCOLS)))
        tls_i = int(rng.integers(len(TLS)))
        if bytes_in is None:
            bytes_in = rng.integers(250, 900, size=n)
        if bytes_out is None:
            bytes_out = rng.integers(300, 600, size=n)
        cols = {
            "ip": _col(ip, n),
            "time": np.asarray(times_ms, dtype=np.int64),
            "method": _col(method, n),
            "path": _col(paths, n),
            "query": _col(query, n),
            "status": np.asarray(_col(status, n), dtype=np.int64),
            "ua": _col(ua, n),
            "referer": _col(referer, n),
            "bytes_in": np.asarray(_col(bytes_in, n), dtype=np.int64),
            "bytes_out": np.asarray(_col(bytes_out, n), dtype=np.int64),
            "port": rng.integers(1024, 65535, size=n),
            "protocol": _col(PROTOCOLS[proto_i], n),
            "tls": np.full(n, tls_i, dtype=np.int64),
            "country": _col(country, n),
            "duration": np.asarray(
                _col(np.nan if duration_ms is None else duration_ms, n), dtype=np.float64
            ),
        }
        for k, v in cols.items():
            self._chunks[k].append(v)
        self.rows += n

    def table(self, start_ms: int, end_ms: int) -> pa.Table:
        """All requests inside [start, end) as the canonical truth table (source ``alb``)."""
        if not self.rows:
            return rq.REQUEST_SCHEMA.empty_table()
        c = {k: np.concatenate(v) for k, v in self._chunks.items()}
        keep = (c["time"] >= start_ms) & (c["time"] < end_ms)
        seq = np.arange(len(keep))
        order = np.lexsort((seq[keep], c["time"][keep]))
        c = {k: v[keep][order] for k, v in c.items()}
        n = len(c["time"])
        rng = self.rng
        duration = np.minimum(rng.lognormal(np.log(40.0), 0.8, size=n), 900.0).round()
        duration = np.where(np.isnan(c["duration"]), duration, c["duration"])
        rid_hi = rng.integers(0, 2**62, size=n)
        rid_lo = rng.integers(0, 2**62, size=n)
        request_ids = [f"{a:016x}{b:016x}"[:32] for a, b in zip(rid_hi, rid_lo, strict=True)]
        tls_proto = np.array([t[0] for t in TLS], dtype=object)[c["tls"]]
        tls_cipher = np.array([t[1] for t in TLS], dtype=object)[c["tls"]]
        cols = {
            rq.EVENT_TIME: pa.array(c["time"], pa.int64()).cast(rq.TIMESTAMP_TYPE),
            rq.CLIENT_IP: pa.array(c["ip"], pa.string()),
            rq.CLIENT_PORT: pa.array(c["port"], pa.int32()),
            rq.SOURCE: pa.array(np.full(n, rq.SOURCE_ALB, dtype=object), pa.string()),
            rq.METHOD: pa.array(c["method"], pa.string()),
            rq.HOST: pa.array(np.full(n, self.host, dtype=object), pa.string()),
            rq.PATH: pa.array(c["path"], pa.string()),
            rq.QUERY: pa.array(c["query"], pa.string()),
            rq.PROTOCOL: pa.array(c["protocol"], pa.string()),
            rq.STATUS: pa.array(c["status"], pa.int16()),
            rq.ORIGIN_STATUS: pa.array(c["status"], pa.int16()),
            rq.BYTES_IN: pa.array(c["bytes_in"], pa.int64()),
            rq.BYTES_OUT: pa.array(c["bytes_out"], pa.int64()),
            rq.DURATION_MS: pa.array(duration, pa.float32()),
            rq.USER_AGENT: pa.array(c["ua"], pa.string()),
            rq.REFERER: pa.array(c["referer"], pa.string()),
            rq.TLS_PROTOCOL: pa.array(tls_proto, pa.string()),
            rq.TLS_CIPHER: pa.array(tls_cipher, pa.string()),
            rq.REQUEST_ID: pa.array(request_ids, pa.string()),
            rq.WAF_ACTION: pa.array(np.full(n, "ALLOW", dtype=object), pa.string()),
            rq.WAF_RULE: pa.array(np.full(n, "Default_Action", dtype=object), pa.string()),
            rq.COUNTRY: pa.array(c["country"], pa.string()),
        }
        return rq.conform(pa.table(cols))
