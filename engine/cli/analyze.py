"""``wafsmith analyze``: replay logs through features, detectors and proposals.

Reads the objects under each PATH or ``s3://bucket/prefix`` one at a time, interleaved by the
time their keys name, through a bounded buffer (``engine.replay``): rows that no object still
to come can precede are sorted and fed to the ``Analyzer`` exactly as the streaming engine
would, the rest wait. Memory follows the active clients and the buffer, not the input size.
Writes ``{"decisions": [...], "stats": {...}}`` to ``--json`` or a table to stdout; progress
goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from engine.cli.config import config_path, is_engine_settings, load_engine_settings, read_toml
from engine.cli.output import STDOUT, nothing_parsed, write_json
from engine.core.errors import ConfigError, WafsmithError
from engine.decisions.proposals import ProposalConfig
from engine.pipeline import AnalysisConfig, AnalysisResult, Analyzer
from engine.replay import replay

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
    p.add_argument("--join", choices=["auto", "on", "off"], default="auto",
                   help="pair a web ACL's log with the ALB's or CloudFront's log of the same "
                        "requests by request id, so WAF records get their status (auto: when "
                        "the keys are AWS's log paths of both)")  # fmt: skip
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
        reason = headline(r["reasons"])
        print(f"{r['decided_at'][:19]:<21} {r['client']:<20} {r['action']:<10} "
              f"{r['score']:>5.2f} {len(r['members']):>7}  {r['detector']:<22} {reason[:110]}",
              file=out)
        if r["detector"] == "anomaly":  # the model's why: top features against its baseline
            for why in r["reasons"][1:]:
                if why.startswith("[anomaly/"):
                    print(f"{'':<21}   {why.split('] ', 1)[-1]}", file=out)


def headline(reasons: list[str]) -> str:
    """The first reason that fired, in plain numbers (sketch estimates as "≈ 26"), and how
    many checks stayed quiet — never a check that did not fire as the decision's headline."""
    from api.reasons import split_reasons

    fired, checked = split_reasons(reasons)
    first = (fired or checked)[0].text[:90] if reasons else ""
    return f"{first} [+{len(checked)} quiet]" if checked and fired else first


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
    if args.join == "on":
        raise ConfigError("--engine spark does not join WAF and ALB/CloudFront logs yet: "
                          "use the single engine for --join on")  # fmt: skip
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
            input_stats = replay(
                args.inputs, args.format, args.endpoint_url, analyzer, join=args.join
            )
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
