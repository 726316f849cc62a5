"""Attack campaigns built from real traces and wordlists.

Paths and payloads come from the package's ``data/attack_material.json`` (SecLists, FuzzDB,
bad-bot lists). With a corpora folder, fast scanners replay the request sequences of the
Acunetix/Netsparker/w3af lab scans (scanner-logs-dvwa) and injection probes reuse the query
strings of CSIC 2010's anomalous requests; those two sets have no licence, so they are read
from a corpora folder given at run time and never copied into the repository.
"""

from __future__ import annotations

import gzip
import json
import urllib.parse
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np

from engine.demo.simulator import norule
from engine.demo.simulator.benign import country
from engine.demo.simulator.combined import read_combined, split_target
from engine.demo.simulator.config import DATA_DIR, CampaignSpec
from engine.demo.simulator.stream import Profile, StreamBuilder

_SAFE = "/?=&%:.-_~+,;@!$()*"
LOGIN_PATH = "/login"
SCRAPER_AGENTS = (
    "python-requests/2.31.0",
    "Scrapy/2.11.0 (+https://scrapy.org)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/119.0.0.0 Safari/537.36",
)
# The user agent Acunetix and Netsparker sent in the lab scans: a normal browser string.
LAB_SCANNER_UA = (
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.21 (KHTML, like Gecko) "
    "Chrome/41.0.2228.0 Safari/537.21"
)


def clean_target(target: str) -> tuple[str, str | None]:
    """A request target made safe for every log format: no spaces, quotes or tabs."""
    path, query = split_target(target)
    path = urllib.parse.quote(path or "/", safe=_SAFE)
    if not path.startswith("/"):
        path = "/" + path
    return path, (urllib.parse.quote(query, safe=_SAFE) if query else None)


@dataclass
class AttackMaterial:
    """Wordlists and payloads, plus optional real traces from the corpora."""

    scan_paths: list[str]
    sensitive_paths: list[str]
    wordpress_paths: list[str]
    payloads: list[str]
    tool_agents: list[str]
    scanner_traces: list[list[tuple[str, str, str | None]]] = field(default_factory=list)
    anomalous_queries: list[str] = field(default_factory=list)

    @classmethod
    def load(
        cls,
        corpora: Path | None = None,
        path: Traversable = DATA_DIR / "attack_material.json",
    ) -> AttackMaterial:
        d = json.loads(path.read_text(encoding="utf-8"))
        payloads = [
            urllib.parse.quote(p, safe="") for k in ("sqli", "xss", "lfi", "cmd") for p in d[k]
        ]
        mat = cls(
            scan_paths=[
                clean_target(p)[0]
                for p in d["scan_paths_common"] + d["scan_paths_cgi"] + d["scan_paths_backdoors"]
            ],
            sensitive_paths=[clean_target(p)[0] for p in d["scan_paths_quickhits"]],
            wordpress_paths=[clean_target(p)[0] for p in d["scan_paths_wordpress"]],
            payloads=payloads,
            tool_agents=list(d["tool_user_agents"]),
        )
        if corpora is not None and Path(corpora).is_dir():
            mat.scanner_traces = _scanner_traces(Path(corpora))
            mat.anomalous_queries = _anomalous_queries(Path(corpora))
        return mat


def _scanner_traces(corpora: Path) -> list[list[tuple[str, str, str | None]]]:
    traces = []
    for name in ("acunetix.txt", "netsparker.txt", "w3af.txt"):
        f = corpora / "scanner-logs-dvwa" / name
        if not f.is_file():
            continue
        recs = sorted(read_combined(f).records, key=lambda r: r.time_ms)
        traces.append([(r.method or "GET", *clean_target(r.target)) for r in recs if r.target])
    return traces


def _anomalous_queries(corpora: Path) -> list[str]:
    f = corpora / "csic2010" / "anomalousTrafficTest.txt.gz"
    if not f.is_file():
        return []
    out = []
    with gzip.open(f, "rt", encoding="latin-1") as fh:
        for line in fh:
            if line.startswith("GET ") and "?" in line:
                _, query = clean_target(line.split(" ")[1])
                if query:
                    out.append(query)
    return out


def arrivals(rng: np.random.Generator, rate: float, t0: int, t1: int) -> np.ndarray:
    """Poisson arrivals at ``rate`` per second in [t0, t1), at least one."""
    n = max(1, int(rng.poisson(rate * (t1 - t0) / 1000)))
    return np.sort(rng.integers(t0, t1, size=n))


def _scan_status(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice([404, 403, 301, 200], size=n, p=[0.82, 0.1, 0.04, 0.04])


def emit(
    b: StreamBuilder,
    prof: Profile,
    mat: AttackMaterial,
    spec: CampaignSpec,
    ips: list[str],
    t0: int,
    t1: int,
) -> None:
    """Write the requests of one campaign (every client between t0 and t1)."""
    rng = b.rng
    shared_ua = str(prof.user_agents.draw(rng, 1)[0])
    flood_targets = prof.pages.values[:3]
    if spec.kind in norule.KINDS:
        for ip in ips:
            norule.emit(b, prof, spec, ip, t0, t1)
        return
    for i, ip in enumerate(ips):
        times = arrivals(rng, spec.rate_per_client, t0, t1)
        n = times.size
        ctry = country(rng)
        ua = shared_ua if spec.shared_user_agent else str(prof.user_agents.draw(rng, 1)[0])
        k = spec.kind
        if k in ("volumetric_flood", "distributed_flood"):
            paths = rng.choice(flood_targets, size=n)
            query = None
            if spec.cache_busting:
                query = np.char.add("v=", rng.integers(10**6, 10**9, size=n).astype(str))
                query = query.astype(object)
            status = np.where(rng.random(n) < 0.03, 503, 200)
            b.add(
                ip,
                times,
                paths,
                query=query,
                status=status,
                ua=ua,
                country=ctry,
                bytes_out=rng.choice(prof.page_bytes, size=n).astype(np.int64),
            )
        elif k == "scanner_fast":
            if mat.scanner_traces:
                trace = mat.scanner_traces[i % len(mat.scanner_traces)]
                j0 = int(rng.integers(0, len(trace)))
                steps = [trace[(j0 + j) % len(trace)] for j in range(n)]
                method = np.array([s[0] for s in steps], dtype=object)
                paths = np.array([s[1] for s in steps], dtype=object)
                query = np.array([s[2] for s in steps], dtype=object)
            else:
                method, query = "GET", None
                paths = rng.choice(np.array(mat.scan_paths + mat.sensitive_paths), size=n)
            b.add(
                ip,
                times,
                paths,
                method=method,
                query=query,
                status=_scan_status(rng, n),
                ua=LAB_SCANNER_UA if rng.random() < 0.7 else ua,
                country=ctry,
            )
        elif k == "scanner_slow":
            pool = np.array(mat.sensitive_paths + mat.scan_paths, dtype=object)
            paths = pool[rng.choice(len(pool), size=n, replace=n > len(pool))]
            b.add(ip, times, paths, status=_scan_status(rng, n), ua=ua, country=ctry)
        elif k in ("credential_stuffing", "credential_stuffing_distributed"):
            if k == "credential_stuffing_distributed":
                ua = str(prof.user_agents.draw(rng, 1)[0])
            elif rng.random() < 0.5:
                ua = "python-requests/2.31.0"
            get = rng.random(n) < 0.08  # occasional GET for a fresh form token
            method = np.where(get, "GET", "POST").astype(object)
            status = np.where(get, 200, np.where(rng.random(n) < 0.04, 302, 401))
            b.add(
                ip,
                times,
                LOGIN_PATH,
                method=method,
                status=status,
                ua=ua,
                country=ctry,
                bytes_in=rng.integers(450, 1200, size=n),
                referer=f"https://{b.host}{LOGIN_PATH}",
            )
        elif k == "scraper":
            start = int(rng.integers(0, len(prof.pages.values)))
            idx = (start + np.arange(n)) % len(prof.pages.values)
            paths = prof.pages.values[idx]
            page_no = (start + np.arange(n)) // len(prof.pages.values)
            query = np.array([None if p == 0 else f"page={p + 1}" for p in page_no], dtype=object)
            b.add(
                ip,
                times,
                paths,
                query=query,
                status=200,
                ua=str(rng.choice(SCRAPER_AGENTS)),
                country=ctry,
                bytes_out=rng.choice(prof.page_bytes, size=n).astype(np.int64),
            )
        elif k == "attack_tool":
            pool = np.array(mat.wordpress_paths + mat.sensitive_paths, dtype=object)
            paths = pool[rng.choice(len(pool), size=n)]
            b.add(
                ip,
                times,
                paths,
                status=_scan_status(rng, n),
                ua=mat.tool_agents[int(rng.integers(len(mat.tool_agents)))],
                country=ctry,
            )
        elif k == "injection_probe":
            paths = prof.pages.draw(rng, n)
            if mat.anomalous_queries and rng.random() < 0.5:
                query = np.array(mat.anomalous_queries, dtype=object)[
                    rng.integers(0, len(mat.anomalous_queries), size=n)
                ]
            else:
                param = rng.choice(["id", "q", "page", "file", "cmd"], size=n)
                pay = np.array(mat.payloads, dtype=object)[rng.integers(0, len(mat.payloads), n)]
                query = np.array(
                    [f"{a}={p}" for a, p in zip(param, pay, strict=True)], dtype=object
                )
            status = rng.choice([200, 500, 400, 403], size=n, p=[0.6, 0.2, 0.15, 0.05])
            b.add(
                ip,
                times,
                paths,
                query=query,
                status=status,
                ua=ua if rng.random() < 0.6 else "sqlmap/1.7.2#stable (https://sqlmap.org)",
                country=ctry,
            )
        else:  # pragma: no cover - AttackKind is a closed Literal
            raise ValueError(f"unknown attack kind {k!r}")
