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
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError
from tqdm import tqdm

from engine.cli.config import config_path, is_engine_settings, load_engine_settings, read_toml
from engine.cli.output import STDOUT, nothing_parsed, write_json
from engine.core.errors import ConfigError, WafsmithError
from engine.decisions.proposals import ProposalConfig
from engine.parsers import parse_object
from engine.pipeline import AnalysisConfig, AnalysisResult, Analyzer
from engine.schema.request import EVENT_TIME
from engine.sources import iter_objects

CHUNK_ROWS = 200_000
BUFFER_ROWS = 1_000_000  # at most this many parsed rows wait for their turn
EPILOG = """examples:
  wafsmith analyze logs/ --json out.json      # then: wafsmith compile --decisions out.json
  wafsmith analyze s3://my-logs/AWSLogs/ --config wafsmith.toml -o json | jq '.decisions'
  wafsmith analyze waf.log.gz --json - --format waf

Exit codes: 0 analysed; 1 nothing in the input could be parsed; 2 bad input or config.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("analyze", help="replay logs and propose decisions",
                              description=__doc__.splitlines()[0], epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="PATH_OR_S3_URL")
    p.add_argument("--format", default="auto", choices=["auto", "alb", "cloudfront", "waf"])
    p.add_argument("--json", dest="json_out", metavar="FILE",
                   help="write the result as JSON to FILE ('-': stdout)")
    p.add_argument("-o", "--output", choices=["table", "json"], default="table",
                   help="stdout format when --json is not given (default: table)")
    p.add_argument("--config", type=Path,
                   help="the engine's settings TOML (its [detection] table; default: "
                   "$WAFSMITH_CONFIG), or detection settings at the top level + [policy]")
    p.add_argument("--endpoint-url", help="S3 endpoint (e.g. a moto server)")
    p.add_argument("--engine", choices=["single", "spark"], default="single",
                   help="single process (default) or a Spark job (needs the `spark` extra)")
    p.add_argument("--master", help="Spark master URL (default local[*]; spark://..., yarn)")
    p.add_argument("--shards", type=int, default=4,
                   help="Spark: client shards per minute (reduce tasks of the merge)")
    p.set_defaults(func=run)


def load_config(path: Path | None) -> tuple[AnalysisConfig, ProposalConfig]:
    """The engine's settings file (``[detection]``, read as ``wafsmith run`` reads it, with
    ``WAFSMITH_*``), or an older file: detection settings at the top level, proposal policy
    under [policy]."""
    path = config_path(path)
    if path is None:
        return AnalysisConfig(), ProposalConfig()
    data = read_toml(path)
    if is_engine_settings(data):
        settings = load_engine_settings(path)
        try:
            return AnalysisConfig.model_validate(settings.detection), ProposalConfig()
        except ValidationError as exc:
            raise ConfigError(f"invalid [detection] in {path}: {exc}") from None
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
    for notice in doc["stats"].get("notices", []):
        print(f"note: {notice}", file=out)
    print(f"{len(rows)} decision(s) from {doc['stats'].get('rows', 0):,} requests", file=out)
    print(model_line(doc["stats"].get("anomaly")), file=out)
    if not rows:
        return
    print(f"{'decided_at':<21} {'client':<20} {'action':<10} {'score':>5} {'members':>7}  "
          f"{'detector':<22} reason", file=out)
    for r in rows:
        reason = r["reasons"][0] if r["reasons"] else ""
        print(f"{r['decided_at'][:19]:<21} {r['client']:<20} {r['action']:<10} "
              f"{r['score']:>5.2f} {len(r['members']):>7}  {r['detector']:<22} {reason[:110]}",
              file=out)
        if r["detector"] == "anomaly":  # the model's why: top features against its baseline
            for why in r["reasons"][1:]:
                if why.startswith("[anomaly/"):
                    print(f"{'':<21}   {why.split('] ', 1)[-1]}", file=out)


def model_line(status: dict | None) -> str:
    """One line on the anomaly model: off, still bootstrapping, or what it was trained on."""
    if status is None:
        return "anomaly model: off"
    line = f"anomaly model: {status['state']} ({status['source']}"
    window = status.get("training_window") or {}
    if window.get("clients"):
        line += (f", trained on {window['clients']:,} client-windows "
                 f"{window['start']} – {window['end']}")
    return line + f"), {status['verdicts']} verdict(s)"


def analyze_spark(args: argparse.Namespace, cfg: AnalysisConfig, policy: ProposalConfig):
    """The same replay as a Spark job (``engine.spark.batch``)."""
    try:
        from engine.spark.batch import SparkJobOptions, analyze_on_spark
        from engine.spark.session import spark_session
    except ImportError as exc:
        raise ConfigError(f"--engine spark needs the `spark` extra (PySpark 4): {exc}") from None
    spark = spark_session(args.master)
    opts = SparkJobOptions(fmt=args.format, endpoint_url=args.endpoint_url, shards=args.shards)
    job = analyze_on_spark(spark, args.inputs, cfg, policy, opts)
    return job.result, job.input_stats


def run(args: argparse.Namespace) -> int:
    try:
        cfg, policy = load_config(args.config)
        if getattr(args, "engine", "single") == "spark":
            result, input_stats = analyze_spark(args, cfg, policy)
        else:
            analyzer = Analyzer(cfg, policy=policy)
            input_stats = replay(args.inputs, args.format, args.endpoint_url, analyzer)
            result = analyzer.result()
    except WafsmithError as exc:
        print(f"wafsmith analyze: {exc}", file=sys.stderr)
        return 2
    doc = to_document(result, input_stats)
    if args.json_out:
        write_json(doc, args.json_out)
        where = "stdout" if args.json_out == STDOUT else args.json_out
        print(f"wrote {len(doc['decisions'])} decision(s) to {where}", file=sys.stderr)
        for notice in doc["stats"].get("notices", []):
            print(f"note: {notice}", file=sys.stderr)
    elif args.output == "json":
        write_json(doc, STDOUT)
    else:
        print_table(doc)
    rows = int(doc["stats"].get("rows") or 0)
    warning = nothing_parsed(input_stats["objects"], rows, input_stats["malformed"])
    if warning:
        print(f"wafsmith analyze: warning: {warning}", file=sys.stderr)
        return 1
    return 0
