"""CrowdSec-style leaky buckets over canonical rows (``peer-baselines.md`` §2.2–§2.5).

Bucket semantics reproduced exactly (§2.2): a token bucket of ``capacity`` tokens, initially
full, refilled one token per ``leakspeed``; each poured event takes a token and the event
that finds none overflows. With ``distinct``, an event whose value this bucket has already
seen is dropped without taking a token. An idle bucket disappears after
``(capacity + 1) × leakspeed`` (its distinct memory with it). Buckets run on event time
(``use_time_machine``). The first overflow bans the client for 4 h (``profiles.yaml``).

Scenarios are those of hub ``b03cb59b`` implemented "as intended" on the canonical columns
(§2.6). Offline substitutions (§2.5), so this is "CrowdSec-style", not byte-identical:
the bad-UA regexes are ``corpora/bad-bot-lists/bad-user-agents.list`` and the sensitive-file
suffixes are a short list in the spirit of ``sensitive_data.txt``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.baselines.common import BaselineResult, Flag, Rows, file_end
from engine.schema import request as rq

VERSION = "crowdsec hub b03cb59b scenarios (CrowdSec-style, offline data substitutes)"
STATIC_EXTENSIONS = [
    "jpg",
    "css",
    "js",
    "jpeg",
    "png",
    "svg",
    "map",
    "ico",
    "otf",
    "gif",
    "mp3",
    "mp4",
    "woff",
    "woff2",
    "ttf",
    "eot",
    "webp",
    "wav",
    "gz",
    "brotli",
    "bvr",
    "ts",
    "bmp",
    "avif",
    "mjs",
]
SENSITIVE_SUFFIXES = (
    ".env",
    ".git/HEAD",
    ".git/config",
    ".htpasswd",
    ".htaccess",
    ".sql",
    ".sql.gz",
    ".bash_history",
    "aws/credentials",
    "debug.log",
    ".DS_Store",
    ".svn/entries",
    "id_rsa",
    "wp-config.php.bak",
    ".npmrc",
    ".ssh/known_hosts",
)
POLL_DELAY_MS = 60_000  # S3 list polling interval after the ALB file lands
BAN_S = 4 * 3600


@dataclass(frozen=True)
class Scenario:
    """One leaky-bucket scenario: which rows pour, how they are keyed, bucket parameters."""

    name: str
    capacity: int
    leakspeed_ms: int
    distinct: str | None  # "target" (path+query), "file_name", "request" (path) or None


SCENARIOS = {
    "http-probing": Scenario("crowdsecurity/http-probing", 10, 10_000, "target"),
    "http-crawl-non_statics": Scenario(
        "crowdsecurity/http-crawl-non_statics", 40, 500, "file_name"
    ),
    "http-bad-user-agent": Scenario("crowdsecurity/http-bad-user-agent", 1, 60_000, None),
    "http-sensitive-files": Scenario("crowdsecurity/http-sensitive-files", 4, 5_000, "request"),
    "http-generic-401-bf": Scenario("LePresidente/http-generic-401-bf", 5, 10_000, None),
    "http-generic-403-bf": Scenario("LePresidente/http-generic-403-bf", 5, 10_000, None),
}


def is_static(paths: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """CrowdSec's ``static_ressource``: the extension of the last path segment is listed."""
    pattern = r"\.(" + "|".join(STATIC_EXTENSIONS) + r")$"
    return np.asarray(
        pc.fill_null(pc.match_substring_regex(paths, pattern, ignore_case=True), False)
    )


def bad_agent_regex(corpora: Path) -> str:
    """One alternation of the bad-UA list's (regex-escaped) substrings."""
    lines = (corpora / "bad-bot-lists" / "bad-user-agents.list").read_text().splitlines()
    pattern = "|".join(ln.strip() for ln in lines if ln.strip())
    re.compile(pattern)  # fail early on a broken list
    return pattern


def matches(column: pa.ChunkedArray | pa.Array, pattern: str) -> np.ndarray:
    """Rows whose value matches ``pattern`` case-insensitively (RE2, columnar).

    The list comes from a blocker that applies it without case (``BrowserMatchNoCase``);
    null never matches.
    """
    hit = pc.match_substring_regex(column, pattern, ignore_case=True)
    return np.asarray(pc.fill_null(hit, False))


def leaky_bucket(
    keys: list[str], times: np.ndarray, values: list[str] | None, scenario: Scenario
) -> dict[str, int]:
    """Run one scenario's buckets over events sorted by time; key → first overflow time."""
    cap, leak = scenario.capacity, scenario.leakspeed_ms
    ttl = (cap + 1) * leak
    state: dict[str, list] = {}  # key -> [tokens, last_time, seen]
    overflow: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in overflow:
            continue
        t = int(times[i])
        st = state.get(key)
        if st is None or t - st[1] > ttl:
            st = state[key] = [float(cap), t, set()]
        if values is not None:
            v = values[i]
            if v in st[2]:
                continue
            st[2].add(v)
        st[0] = min(float(cap), st[0] + (t - st[1]) / leak)
        st[1] = t
        if st[0] >= 1.0:
            st[0] -= 1.0
        else:
            overflow[key] = t
    return overflow


def _distinct(table: pa.Table, kind: str | None) -> list[str] | None:
    if kind is None:
        return None
    path = pc.fill_null(table[rq.PATH], "")
    if kind == "request":
        return path.to_pylist()
    if kind == "file_name":
        return [p.rsplit("/", 1)[-1] for p in path.to_pylist()]
    query = table[rq.QUERY]
    target = pc.if_else(
        pc.is_null(query), path, pc.binary_join_element_wise(path, pc.fill_null(query, ""), "?")
    )
    return target.to_pylist()


def _masks(table: pa.Table, bad_ua: str | None) -> dict[str, np.ndarray]:
    status = np.asarray(pc.fill_null(table[rq.STATUS], 0).to_numpy(zero_copy_only=False))
    method = np.asarray(pc.fill_null(table[rq.METHOD], "").to_pylist(), dtype=object)
    static = is_static(pc.fill_null(table[rq.PATH], ""))
    path = pc.fill_null(table[rq.PATH], "")
    sensitive = np.zeros(table.num_rows, dtype=bool)
    for suffix in SENSITIVE_SUFFIXES:
        sensitive |= np.asarray(pc.ends_with(path, suffix))
    masks = {
        "http-probing": np.isin(status, (404, 403, 400)) & ~static,
        "http-crawl-non_statics": ~static & np.isin(method, ("GET", "HEAD")),
        "http-sensitive-files": sensitive,
        "http-generic-401-bf": (method == "POST") & (status == 401),
        "http-generic-403-bf": (method == "POST") & (status == 403),
    }
    if bad_ua is not None:
        masks["http-bad-user-agent"] = matches(table[rq.USER_AGENT], bad_ua)
    return masks


def crowdsec_http(
    alb_rows: pa.Table, corpora: Path | None = None, scenarios: tuple[str, ...] = tuple(SCENARIOS)
) -> BaselineResult:
    """``crowdsec-http``: first overflow of any scenario bans the client for 4 h."""
    bad_ua = None
    if corpora is not None and "http-bad-user-agent" in scenarios:
        bad_ua = bad_agent_regex(corpora)
    masks = _masks(alb_rows, bad_ua)
    ran = [n for n in scenarios if n in masks]  # bad-UA needs the corpora's list
    result = BaselineResult("crowdsec-http", f"{VERSION}; scenarios: {', '.join(ran)}")
    hosts = alb_rows[rq.HOST]
    for name in scenarios:
        if name not in masks:
            continue
        scenario = SCENARIOS[name]
        rows = Rows.of(alb_rows, masks[name])
        if len(rows) == 0:
            continue
        order = np.argsort(rows.ts, kind="stable")  # one pass in event-time order
        idx = rows.index[order]
        sub = alb_rows.take(pa.array(idx))
        ips = sub[rq.CLIENT_IP].to_pylist()
        if name in ("http-probing", "http-crawl-non_statics"):  # groupby source_ip/target_fqdn
            host = pc.fill_null(hosts.take(pa.array(idx)), "").to_pylist()
            keys = [f"{ip}/{h}" for ip, h in zip(ips, host, strict=True)]
        else:
            keys = ips
        values = _distinct(sub, scenario.distinct)
        for key, t in leaky_bucket(keys, rows.ts[order], values, scenario).items():
            ip = key.split("/", 1)[0]
            result.add(
                ip,
                Flag(
                    t,
                    max(t, file_end(t)) + POLL_DELAY_MS,
                    f"{scenario.name} overflow (capacity {scenario.capacity}, "
                    f"leakspeed {scenario.leakspeed_ms / 1000:g}s)",
                ),
            )
    return result
