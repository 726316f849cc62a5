"""Apache *combined* access-log reader: real corpora → canonical request tables.

The engine parses only AWS formats; the real logs in ``../shared/corpora`` are Apache
combined lines. This reader serves two jobs in ``benchmarks/``: deriving the simulator's benign
profile, and feeding the real corpora to the engine (``benchmarks.analyze_corpora``).

It tolerates the corpora's quirks (``corpora.md`` §3): lines wrapped in an extra pair of
quotes, CRLF, no final newline, non-UTF-8 bytes, ``"-"`` request lines. Lines that do not
match are counted, never fatal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from engine.schema import request as rq

_LINE = re.compile(
    r'^(?P<ip>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<request>.*?)" (?P<status>\d{3}|-) '
    r'(?P<bytes>\d+|-)(?: "(?P<referer>.*?)" "(?P<ua>.*)")?$'
)
_TIME_FORMAT = "%d/%b/%Y:%H:%M:%S %z"


@dataclass(frozen=True, slots=True)
class CombinedRecord:
    """One parsed combined-format line (times as epoch milliseconds, UTC)."""

    ip: str
    time_ms: int
    method: str | None
    target: str | None
    protocol: str | None
    status: int | None
    bytes_out: int | None
    referer: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class CombinedLog:
    """Parsed records of one file plus the count of lines that did not parse."""

    records: list[CombinedRecord]
    malformed: int


def _dash(value: str | None) -> str | None:
    return None if value in (None, "-", "") else value


def parse_line(line: str) -> CombinedRecord | None:
    """Parse one combined line; ``None`` if it is not one."""
    text = line.rstrip()
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):  # quote-wrapped line
        text = text[1:-1]
    m = _LINE.match(text)
    if m is None:
        return None
    try:
        when = datetime.strptime(m["time"], _TIME_FORMAT)
    except ValueError:
        return None
    parts = m["request"].split(" ")
    method = target = protocol = None
    if len(parts) >= 2 and parts[0] != "-":
        method, target = parts[0], " ".join(parts[1:-1]) if len(parts) > 2 else parts[1]
        protocol = parts[-1] if len(parts) > 2 else None
    status = None if m["status"] == "-" else int(m["status"])
    size = None if m["bytes"] == "-" else int(m["bytes"])
    return CombinedRecord(
        ip=m["ip"],
        time_ms=int(when.timestamp() * 1000),
        method=method,
        target=target,
        protocol=protocol,
        status=status,
        bytes_out=size,
        referer=_dash(m["referer"]),
        user_agent=_dash(m["ua"]),
    )


def read_combined(path: Path) -> CombinedLog:
    """Read a combined-format file (bytes decoded as UTF-8 with replacement)."""
    text = Path(path).read_bytes().decode("utf-8", errors="replace")
    records: list[CombinedRecord] = []
    malformed = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        rec = parse_line(line)
        if rec is None:
            malformed += 1
        else:
            records.append(rec)
    return CombinedLog(records=records, malformed=malformed)


def split_target(target: str | None) -> tuple[str | None, str | None]:
    """``/a/b?x=1`` → (``/a/b``, ``x=1``); absolute URIs keep only their path."""
    if target is None:
        return None, None
    if "://" in target:
        rest = target.split("://", 1)[1]
        target = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    path, sep, query = target.partition("?")
    return path, (query if sep else None)


def to_canonical(log: CombinedLog, source: str = rq.SOURCE_ALB) -> pa.Table:
    """Records → a canonical ``REQUEST_SCHEMA`` table.

    Apache logs one status (the origin's), so it fills both ``STATUS`` and ``ORIGIN_STATUS``;
    ``SOURCE`` is ``alb`` by default, the AWS log whose columns these lines resemble most.
    Invalid client addresses are dropped here (counted by the caller from the difference).
    """
    import ipaddress

    rows: dict[str, list] = {
        k: []
        for k in (
            rq.EVENT_TIME,
            rq.CLIENT_IP,
            rq.METHOD,
            rq.PATH,
            rq.QUERY,
            rq.PROTOCOL,
            rq.STATUS,
            rq.ORIGIN_STATUS,
            rq.BYTES_OUT,
            rq.USER_AGENT,
            rq.REFERER,
        )
    }
    for rec in log.records:
        try:
            ip = str(ipaddress.ip_address(rec.ip))
        except ValueError:
            continue
        path, query = split_target(rec.target)
        rows[rq.EVENT_TIME].append(rec.time_ms)
        rows[rq.CLIENT_IP].append(ip)
        rows[rq.METHOD].append(rec.method)
        rows[rq.PATH].append(path)
        rows[rq.QUERY].append(query)
        rows[rq.PROTOCOL].append(rec.protocol)
        rows[rq.STATUS].append(rec.status)
        rows[rq.ORIGIN_STATUS].append(rec.status)
        rows[rq.BYTES_OUT].append(rec.bytes_out)
        rows[rq.USER_AGENT].append(rec.user_agent)
        rows[rq.REFERER].append(rec.referer)
    n = len(rows[rq.EVENT_TIME])
    arrays = {
        rq.EVENT_TIME: pa.array(rows[rq.EVENT_TIME], pa.int64()).cast(rq.TIMESTAMP_TYPE),
        rq.SOURCE: pa.array([source] * n, pa.string()),
        rq.STATUS: pa.array(rows[rq.STATUS], pa.int16()),
        rq.ORIGIN_STATUS: pa.array(rows[rq.ORIGIN_STATUS], pa.int16()),
        rq.BYTES_OUT: pa.array(rows[rq.BYTES_OUT], pa.int64()),
    }
    for key in (rq.CLIENT_IP, rq.METHOD, rq.PATH, rq.QUERY, rq.PROTOCOL, rq.USER_AGENT, rq.REFERER):
        arrays[key] = pa.array(rows[key], pa.string())
    table = rq.conform(pa.table(arrays))
    return table.sort_by([(rq.EVENT_TIME, "ascending")])
