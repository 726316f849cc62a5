"""``wafsmith analyze``: replay logs through features, detectors and proposals.

Reads the objects under each PATH or ``s3://bucket/prefix`` one at a time, in key (event-time)
order, through a bounded buffer: rows older than the newest object's first request are
sorted and fed to the ``Analyzer`` exactly as the streaming engine would, the rest wait for
the next object. Memory follows the active clients and the buffer, not the input size.
Writes ``{"decisions": [...], "stats": {...}}`` to ``--json`` or a table to stdout; progress
goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError
from tqdm import tqdm

from engine.core.errors import ConfigError, WafsmithError
from engine.decisions.proposals import ProposalConfig
from engine.parsers import parse_object
from engine.pipeline import AnalysisConfig, AnalysisResult, Analyzer
from engine.schema.request import EVENT_TIME
from engine.sources import iter_objects

CHUNK_ROWS = 200_000
BUFFER_ROWS = 1_000_000  # at most this many parsed rows wait for their turn


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("analyze", help="replay logs and propose decisions",
                              description=__doc__.splitlines()[0])
    p.add_argument("inputs", nargs="+", metavar="PATH_OR_S3_URL")
    p.add_argument("--format", default="auto", choices=["auto", "alb", "cloudfront", "waf"])
    p.add_argument("--json", dest="json_out", type=Path, help="write the result as JSON here")
    p.add_argument("--config", type=Path, help="TOML: detection settings, [policy] table")
    p.add_argument("--endpoint-url", help="S3 endpoint (e.g. a moto server)")
    p.set_defaults(func=run)


def load_config(path: Path | None) -> tuple[AnalysisConfig, ProposalConfig]:
    """Detection settings at the top level of the TOML file, proposal policy under [policy]."""
    if path is None:
        return AnalysisConfig(), ProposalConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    policy = data.pop("policy", {})
    try:
        return AnalysisConfig(**data), ProposalConfig(**policy)
    except ValidationError as exc:
        raise ConfigError(f"invalid config {path}: {exc}") from None


class ReplayBuffer:
    """Parsed rows waiting to be fed in event-time order, never more than ``limit`` of them.

    Objects come in key order, which for ALB, CloudFront and WAF logs is delivery-time
    order: rows older than the newest object's first request will hardly be joined by
    older ones, so they are released, sorted. If unordered keys keep the buffer above
    ``limit``, its oldest half is released anyway (later rows count as late, never lost).
    """

    def __init__(self, limit: int = BUFFER_ROWS) -> None:
        self.limit = limit
        self.tables: list[pa.Table] = []
        self.rows = 0
        self.peak_rows = 0

    def push(self, table: pa.Table) -> list[pa.Table]:
        """Buffer one object's rows; returns what may be fed now, oldest first."""
        if table.num_rows == 0:
            return []
        horizon = pc.min(table.column(EVENT_TIME))
        self.tables.append(table)
        self.rows += table.num_rows
        self.peak_rows = max(self.peak_rows, self.rows)
        buffered = self._combined()
        older = pc.less(buffered.column(EVENT_TIME), horizon)
        ready = [_sorted(buffered.filter(older))]  # only the released rows are sorted
        rest = buffered.filter(pc.invert(older))
        self.tables, self.rows = [rest], rest.num_rows
        while self.rows > self.limit:
            ready.extend(self._release_count(self.rows // 2))
        return [t for t in ready if t.num_rows]

    def drain(self) -> list[pa.Table]:
        """End of input: everything still buffered, sorted."""
        return self._release_count(self.rows)

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
) -> dict:
    """Parse the inputs object by object and feed the analyzer through a ``ReplayBuffer``;
    returns the input statistics (``parse_s``: seconds spent reading and parsing)."""
    stats = {"objects": 0, "bytes_read": 0, "malformed": {}, "formats": {}, "rows_parsed": 0}
    parse_s = 0.0
    buffer = ReplayBuffer(buffer_rows)
    objects = [o for uri in inputs for o in iter_objects(uri, endpoint_url=endpoint_url)]
    with tqdm(total=len(objects), desc="analyze", unit="obj", file=sys.stderr,
              disable=None) as bar:
        for obj in objects:
            t0 = timer()
            with obj.open() as stream:
                res = parse_object(stream, fmt=fmt, key=obj.key)
            parse_s += timer() - t0
            stats["objects"] += 1
            stats["bytes_read"] += res.bytes_read
            stats["rows_parsed"] += res.rows
            stats["formats"][res.format] = stats["formats"].get(res.format, 0) + 1
            for reason, n in res.malformed.items():
                stats["malformed"][reason] = stats["malformed"].get(reason, 0) + n
            for table in buffer.push(res.table):
                _feed(analyzer, table)
            bar.update(1)
        for table in buffer.drain():
            _feed(analyzer, table)
    analyzer.finish()
    stats["peak_buffered_rows"] = buffer.peak_rows
    stats["parse_s"] = round(parse_s, 4)
    return stats


def _feed(analyzer: Analyzer, table: pa.Table) -> None:
    for start in range(0, table.num_rows, CHUNK_ROWS):
        analyzer.feed(table.slice(start, CHUNK_ROWS))


def to_document(result: AnalysisResult, input_stats: dict) -> dict:
    decisions = []
    for d in result.decisions:
        row = d.to_dict()
        row.pop("status", None)
        row.pop("id", None)
        decisions.append(row)
    return {"decisions": decisions, "stats": {**input_stats, **result.stats}}


def print_table(doc: dict, out: TextIO | None = None) -> None:
    out = out or sys.stdout  # looked up per call: a default bound at import goes stale
    rows = doc["decisions"]
    print(f"{len(rows)} decision(s) from {doc['stats'].get('rows', 0):,} requests", file=out)
    if not rows:
        return
    print(f"{'decided_at':<21} {'client':<20} {'action':<10} {'score':>5} {'members':>7}  "
          f"{'detector':<22} reason", file=out)
    for r in rows:
        reason = r["reasons"][0] if r["reasons"] else ""
        print(f"{r['decided_at'][:19]:<21} {r['client']:<20} {r['action']:<10} "
              f"{r['score']:>5.2f} {len(r['members']):>7}  {r['detector']:<22} {reason[:110]}",
              file=out)


def run(args: argparse.Namespace) -> int:
    try:
        cfg, policy = load_config(args.config)
        analyzer = Analyzer(cfg, policy=policy)
        input_stats = replay(args.inputs, args.format, args.endpoint_url, analyzer)
        result = analyzer.result()
    except WafsmithError as exc:
        print(f"wafsmith analyze: {exc}", file=sys.stderr)
        return 2
    doc = to_document(result, input_stats)
    if args.json_out:
        args.json_out.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
        print(f"wrote {len(doc['decisions'])} decision(s) to {args.json_out}", file=sys.stderr)
    else:
        print_table(doc)
    return 0
