"""``wafsmith analyze``: replay logs through features, detectors and proposals.

Reads every object under each PATH or ``s3://bucket/prefix``, parses it to the canonical
schema, sorts all rows by event time and feeds them to the ``Analyzer`` exactly as the
streaming engine would. Writes ``{"decisions": [...], "stats": {...}}`` to ``--json`` or a
table to stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
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
from engine.schema.request import EVENT_TIME, REQUEST_SCHEMA
from engine.sources import iter_objects

CHUNK_ROWS = 200_000


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


def read_inputs(inputs: list[str], fmt: str, endpoint_url: str | None) -> tuple[pa.Table, dict]:
    """Every input object parsed and concatenated, sorted by event time (a replay)."""
    tables, stats = [], {"objects": 0, "bytes_read": 0, "malformed": {}, "formats": {}}
    objects = [o for uri in inputs for o in iter_objects(uri, endpoint_url=endpoint_url)]
    for obj in tqdm(objects, desc="parse", unit="obj", file=sys.stderr, disable=None):
        with obj.open() as stream:
            res = parse_object(stream, fmt=fmt, key=obj.key)
        stats["objects"] += 1
        stats["bytes_read"] += res.bytes_read
        stats["formats"][res.format] = stats["formats"].get(res.format, 0) + 1
        for reason, n in res.malformed.items():
            stats["malformed"][reason] = stats["malformed"].get(reason, 0) + n
        if res.rows:
            tables.append(res.table)
    if not tables:
        return REQUEST_SCHEMA.empty_table(), stats
    table = pa.concat_tables(tables)
    table = table.take(pc.sort_indices(table, sort_keys=[(EVENT_TIME, "ascending")]))
    return table, stats


def analyze(table: pa.Table, cfg: AnalysisConfig, policy: ProposalConfig) -> AnalysisResult:
    analyzer = Analyzer(cfg, policy=policy)
    with tqdm(total=table.num_rows, desc="analyze", unit="row", file=sys.stderr,
              disable=None) as bar:
        for start in range(0, table.num_rows, CHUNK_ROWS):
            chunk = table.slice(start, CHUNK_ROWS)
            analyzer.feed(chunk)
            bar.update(chunk.num_rows)
    analyzer.finish()
    return analyzer.result()


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


def run(args: argparse.Namespace) -> int:
    try:
        cfg, policy = load_config(args.config)
        table, input_stats = read_inputs(args.inputs, args.format, args.endpoint_url)
        result = analyze(table, cfg, policy)
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
