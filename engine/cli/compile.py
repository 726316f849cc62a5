"""``wafsmith compile``: decisions file (+ config) → the desired WAF state as JSON.

Exit codes: 0 the document is valid and printed; 1 a bad input file (the message names the
file, the decision index and the problem); 2 the document breaks WAFv2 constraints (each
violation on stderr, nothing printed on stdout).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.compiler import compile_state, load_config, validate
from engine.compiler.config import CLOUDFRONT_FORWARDED
from engine.core.clock import SystemClock
from engine.core.errors import WafsmithError
from engine.schema.decision import Decision, DecisionError, parse_time


class InputError(WafsmithError):
    """An input file that cannot be used; the message says which and why."""


def load_decisions(path: str | Path) -> list[Decision]:
    """Read ``{"decisions": [...]}`` (what ``wafsmith analyze --json`` writes) or a bare list."""
    try:
        data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read decisions file {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"decisions file {path} is not valid JSON: {exc}") from None
    if isinstance(data, dict):
        if "decisions" not in data:
            raise InputError(f"decisions file {path}: an object needs a 'decisions' list")
        data = data["decisions"]
    if not isinstance(data, list):
        raise InputError(f"decisions file {path}: expected a list of decisions")
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise InputError(f"decisions file {path}: decision #{i} is not an object")
        try:
            out.append(Decision.from_dict(item))
        except (DecisionError, TypeError, ValueError) as exc:
            raise InputError(f"decisions file {path}: decision #{i}: {exc}") from None
    return out


def read_behind_cloudfront(path: str | Path) -> bool:
    """True when ``wafsmith analyze`` read these decisions' viewers from X-Forwarded-For behind
    CloudFront (its stats say so): WAF then sees the edge, and must match the forwarded IP."""
    data: Any = json.loads(Path(path).read_text(encoding="utf-8"))  # read once already
    stats = data.get("stats") if isinstance(data, dict) else None
    return bool(isinstance(stats, dict) and stats.get("cloudfront_forwarded_rows"))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compile",
        help="compile approved decisions into the desired WAF state (JSON)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--decisions", required=True, help="decisions JSON file")
    parser.add_argument("--config", help="compiler config TOML (see example-enforcement.toml)")
    parser.add_argument("--now", help="evaluate TTLs at this ISO-8601 UTC time (default: now)")
    parser.add_argument("--count-only", action="store_true", help="every engine rule in Count")
    parser.add_argument(
        "--no-model-check",
        action="store_true",
        help="skip the check of the rendered requests against botocore's wafv2 model",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        decisions = load_decisions(args.decisions)
        config = load_config(args.config)
        now = parse_time(args.now) if args.now else SystemClock().now()
    except (WafsmithError, DecisionError) as exc:
        print(f"wafsmith compile: {exc}", file=sys.stderr)
        return 1
    if args.count_only:
        config = config.model_copy(update={"count_only": True})
    if config.ip_sets_forwarded_ip is None and read_behind_cloudfront(args.decisions):
        config = config.model_copy(update={"ip_sets_forwarded_ip": CLOUDFRONT_FORWARDED})
        print("wafsmith compile: the decisions name viewers read from X-Forwarded-For behind "
              "CloudFront: IP-set rules match the forwarded address (last entry)", file=sys.stderr)
    state = compile_state(decisions, config, now)
    violations = validate(state, model=not args.no_model_check)
    if violations:
        print(f"wafsmith compile: {len(violations)} constraint violation(s):", file=sys.stderr)
        for v in violations:
            print(f"  - {v}", file=sys.stderr)
        return 2
    json.dump(state.to_dict(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0
