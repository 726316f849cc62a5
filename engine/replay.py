"""Replaying stored logs through the ``Analyzer`` in event-time order, with bounded memory.

``wafsmith analyze`` (and the benchmarks) read objects one at a time. Within one log family
(the ALB's, a distribution's CloudFront logs, a web ACL's WAF logs) keys follow delivery
time, so a family's rows older than its newest object's first request will hardly be joined
by older ones. A folder often holds several families: they are interleaved by the time their
keys name, and rows are released only once every family still to come has moved past them.
If unordered keys keep the buffer above its limit, the oldest half is released anyway (later
rows then count as late: never lost).

When a web ACL's log and the ALB's or CloudFront's log of the same traffic are replayed
together, each request is in both: the WAF record (the client behind CloudFront, labels,
actions) and its partner (the status). ``join`` pairs them by request id
(``engine.parsers.join``) before the buffer, so each request is analysed once, with its
status. ``"auto"`` joins when the keys' layouts name both families (AWS's own log paths).
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from engine.parsers import ParseResult, parse_object
from engine.parsers.detect import ALB, CLOUDFRONT, WAF, detect_from_key
from engine.parsers.join import RequestJoin
from engine.pipeline import Analyzer
from engine.schema.request import EVENT_TIME
from engine.sources import SourceObject, iter_objects

BUFFER_ROWS = 1_000_000  # at most this many parsed rows wait for their turn
CHUNK_ROWS = 200_000  # rows handed to the analyzer at once

# The minute (or hour) a key names: ALB and WAF ``..._20260302T1005Z_...``, CloudFront
# ``DIST.2026-03-02-10.hash.gz``, Firehose-style ``.../2026/03/02/10/05/...``.
_STAMP = re.compile(r"_(\d{8})T(\d{4})Z_")
_CF_HOUR = re.compile(r"\.(\d{4})-(\d{2})-(\d{2})-(\d{2})\.[^/]*$")
_PATH_MINUTE = re.compile(r"/(\d{4})/(\d{2})/(\d{2})/(\d{2})/(\d{2})/")
_DATE_FOLDERS = re.compile(r"(?:^|/)\d{4}/\d{2}/\d{2}(?:/\d{2}){0,2}$")


def key_time(key: str) -> str | None:
    """The time a log object's key names, as a sortable ``YYYYMMDDHHMM`` (None: it names none)."""
    if m := _STAMP.search(key):
        return m.group(1) + m.group(2)
    if m := _CF_HOUR.search(key):
        return "".join(m.groups()) + "00"
    if m := _PATH_MINUTE.search(key):
        return "".join(m.groups())
    return None


def log_family(key: str) -> str:
    """Which delivery stream an object belongs to: its format by key, and its folder without
    the date folders (``.../2026/03/02/10/05``) that AWS adds per day, hour or minute."""
    folder = _DATE_FOLDERS.sub("", key.rpartition("/")[0])
    return f"{detect_from_key(key)}:{folder}"


def replay_order(objects: Iterable[SourceObject]) -> list[SourceObject]:
    """Objects interleaved by the time their keys name (key order where a key names none)."""
    objects = list(objects)
    if all(key_time(o.key) is not None for o in objects):
        return sorted(objects, key=lambda o: (key_time(o.key), o.key))
    return objects


class ReplayBuffer:
    """Parsed rows waiting to be fed in event-time order, never more than ``limit`` of them.

    ``families``: how many objects each log family will deliver; a family still to deliver
    holds back rows newer than its own horizon (its newest object's first request).
    """

    def __init__(self, limit: int = BUFFER_ROWS, families: Counter[str] | None = None) -> None:
        self.limit = limit
        self.tables: list[pa.Table] = []
        self.rows = 0
        self.peak_rows = 0
        self.remaining: Counter[str] = Counter(families or {})
        self.horizons: dict[str, pa.Scalar] = {}

    def push(self, table: pa.Table, family: str = "") -> list[pa.Table]:
        """Buffer one object's rows; returns what may be fed now, oldest first."""
        if family in self.remaining:
            self.remaining[family] -= 1
            if self.remaining[family] <= 0:
                del self.remaining[family]  # delivered everything: holds nothing back
                self.horizons.pop(family, None)
        if table.num_rows:
            if family in self.remaining or not self.remaining:
                self.horizons[family] = pc.min(table.column(EVENT_TIME))
            self.tables.append(table)
            self.rows += table.num_rows
            self.peak_rows = max(self.peak_rows, self.rows)
        if not self.tables:
            return []
        ready = []
        horizon = self._horizon()
        if horizon is not None:
            # One stable sort of the buffer; the rows older than the horizon are its prefix
            # (the same rows in the same order as sorting only them), the rest stay sorted.
            buffered = _sorted(self._combined())
            older = pc.sum(pc.less(buffered.column(EVENT_TIME), horizon)).as_py() or 0
            ready.append(buffered.slice(0, older))
            rest = buffered.slice(older)
            self.tables, self.rows = ([rest] if rest.num_rows else []), rest.num_rows
        while self.rows > self.limit:
            ready.extend(self._release_count(self.rows // 2))
        return [t for t in ready if t.num_rows]

    def drain(self) -> list[pa.Table]:
        """End of input: everything still buffered, sorted."""
        return self._release_count(self.rows)

    def _horizon(self) -> pa.Scalar | None:
        """Rows before this may go: the slowest family still to deliver has passed them."""
        if any(f not in self.horizons for f in self.remaining):
            return None  # a family that has not started yet may still bring older rows
        waiting = [self.horizons[f] for f in self.remaining] or list(self.horizons.values())
        return min(waiting, key=lambda s: s.as_py()) if waiting else None

    def _combined(self) -> pa.Table:
        return pa.concat_tables(self.tables) if len(self.tables) > 1 else self.tables[0]

    def _release_count(self, n: int) -> list[pa.Table]:
        """The ``n`` oldest buffered rows, sorted."""
        if n <= 0 or not self.tables:
            return []
        table = _sorted(self._combined())
        out, rest = table.slice(0, n), table.slice(n)
        self.tables = [rest] if rest.num_rows else []
        self.rows = rest.num_rows
        return [out]


def _sorted(table: pa.Table) -> pa.Table:
    return table.take(pc.sort_indices(table, sort_keys=[(EVENT_TIME, "ascending")]))


def replay(
    inputs: list[str], fmt: str, endpoint_url: str | None, analyzer: Analyzer,
    buffer_rows: int = BUFFER_ROWS, timer: Callable[[], float] = time.perf_counter,
    parse_ahead: bool = True, join: str = "auto",
) -> dict:
    """Parse the inputs object by object and feed the analyzer through a ``ReplayBuffer``;
    returns the input statistics (``parse_s``: seconds spent reading and parsing).

    ``parse_ahead``: the next object is read and parsed on a second thread while the
    analyzer works on the current one (decompression and Arrow's CSV reader release the
    GIL, so the two overlap on two cores). Objects still reach the buffer one at a time, in
    the same order: the decisions are the same either way.

    ``join``: ``"on"``, ``"off"``, or ``"auto"`` (on when the keys name a web ACL's log and an
    ALB or CloudFront log: see the module docstring); its counts are ``stats["join"]``."""
    stats = {"objects": 0, "bytes_read": 0, "malformed": {}, "formats": {}, "rows_parsed": 0}
    parse_s = [0.0]
    objects = replay_order(
        o for uri in inputs for o in iter_objects(uri, endpoint_url=endpoint_url)
    )
    buffer = ReplayBuffer(buffer_rows, Counter(log_family(o.key) for o in objects))
    joiner = RequestJoin() if _joins(join, objects) else None

    def parse(obj: SourceObject) -> ParseResult:
        t0 = timer()
        with obj.open() as stream:
            res = parse_object(stream, fmt=fmt, key=obj.key)
        parse_s[0] += timer() - t0
        return res

    with tqdm(total=len(objects), desc="analyze", unit="obj", file=sys.stderr,
              disable=None) as bar:
        for obj, res in _parsed(objects, parse, parse_ahead):
            stats["objects"] += 1
            stats["bytes_read"] += res.bytes_read
            stats["rows_parsed"] += res.rows
            stats["formats"][res.format] = stats["formats"].get(res.format, 0) + 1
            for reason, n in res.malformed.items():
                stats["malformed"][reason] = stats["malformed"].get(reason, 0) + n
            table = res.table if joiner is None else joiner.feed(res.table)
            for ready in buffer.push(table, log_family(obj.key)):
                feed(analyzer, ready)
            bar.update(1)
        if joiner is not None:
            for ready in buffer.push(joiner.flush()):
                feed(analyzer, ready)
            stats["join"] = vars(joiner.counts)
        for table in buffer.drain():
            feed(analyzer, table)
    analyzer.finish()
    stats["peak_buffered_rows"] = buffer.peak_rows
    stats["parse_s"] = round(parse_s[0], 4)
    return stats


def _joins(join: str, objects: list[SourceObject]) -> bool:
    if join not in ("auto", "on", "off"):
        raise ValueError(f"join must be auto, on or off, not {join!r}")
    if join != "auto":
        return join == "on"
    formats = {detect_from_key(o.key) for o in objects}
    return WAF in formats and bool(formats & {ALB, CLOUDFRONT})


def _parsed(
    objects: list[SourceObject], parse: Callable[[SourceObject], ParseResult], ahead: bool
) -> Iterator[tuple[SourceObject, ParseResult]]:
    """``(object, parsed)`` in order; with ``ahead``, object i + 1 is parsed on a worker
    thread while the caller handles object i (at most one object waits: bounded memory).
    A parse error is raised here, at its object's turn, never swallowed."""
    if not ahead or len(objects) < 2:
        for obj in objects:
            yield obj, parse(obj)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse-ahead") as pool:
        pending = pool.submit(parse, objects[0])
        try:
            for i, obj in enumerate(objects):
                res = pending.result()
                if i + 1 < len(objects):
                    pending = pool.submit(parse, objects[i + 1])
                yield obj, res
        finally:
            pending.cancel()


def read_table(inputs: list[str], fmt: str = "auto", endpoint_url: str | None = None) -> pa.Table:
    """Every object of ``inputs`` parsed and sorted by event time, in memory at once (for
    benchmarks and equivalence tests that need the whole table)."""
    tables = []
    for uri in inputs:
        for obj in iter_objects(uri, endpoint_url=endpoint_url):
            with obj.open() as stream:
                tables.append(parse_object(stream, fmt=fmt, key=obj.key).table)
    return _sorted(pa.concat_tables(tables)) if tables else pa.table({})


def feed(analyzer: Analyzer, table: pa.Table) -> None:
    """Hand ``table`` to the analyzer in chunks of ``CHUNK_ROWS``."""
    for start in range(0, table.num_rows, CHUNK_ROWS):
        analyzer.feed(table.slice(start, CHUNK_ROWS))
