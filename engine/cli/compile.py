"""``wafsmith compile``: decisions file (+ config) → the desired WAF state as JSON.

Only approved (or applied) decisions in force at ``--now`` are compiled. ``wafsmith analyze
--json`` writes *proposals*: approve them in the ledger, or pass ``--approve-all`` when they
were approved elsewhere. A file whose decisions are none of them approved, or all expired at
``--now``, is refused with the counts rather than compiled into empty IP sets.

Exit codes: 0 the document is valid and printed; 1 a bad input file (the message names the
file, the decision index and the problem) or nothing approved in force; 2 the document breaks
WAFv2 constraints (each violation on stderr, nothing printed on stdout).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.cli.config import config_path, is_engine_settings, load_engine_settings, read_toml
from engine.compiler import CompilerConfig, compile_state, load_config, validate
from engine.compiler.config import CLOUDFRONT_FORWARDED
from engine.core.clock import SystemClock
from engine.core.errors import WafsmithError
from engine.schema.decision import ENFORCEABLE, Decision, DecisionError, Status, parse_time

EPILOG = """examples:
  wafsmith analyze logs/ --json out.json
  wafsmith compile --decisions out.json --approve-all --now 2026-11-30T09:00:00Z
  wafsmith compile --decisions approved.json --config wafsmith.toml --count-only
"""


class InputError(WafsmithError):
    """An input file that cannot be used; the message says which and why."""


def load_decisions(path: str | Path, refused: list[str] | None = None) -> list[Decision]:
    """Read ``{"decisions": [...]}`` (what ``wafsmith analyze --json`` writes) or a bare list.

    With ``refused`` given, a decision that cannot be read (a scoped address, a bad action)
    is left out and named there with its reason, so one bad entry never fails the file; a
    file none of whose decisions can be read is still refused as a whole.
    """
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
    out, bad = [], []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            bad.append(f"decision #{i} is not an object")
            continue
        try:
            out.append(Decision.from_dict(item))
        except (DecisionError, TypeError, ValueError) as exc:
            bad.append(f"decision #{i}: {exc}")
    if bad and (refused is None or not out):
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise InputError(f"decisions file {path}: {bad[0]}{more}")
    if refused is not None:
        refused.extend(bad)
    return out


def warn_refused(command: str, path: str | Path, refused: list[str]) -> None:
    """One stderr line per decision left out of ``path``."""
    for reason in refused:
        print(f"wafsmith {command}: {path}: left out {reason}", file=sys.stderr)


def select_enforceable(
    decisions: list[Decision], now: datetime, *, approve_all: bool = False
) -> list[Decision]:
    """The decisions a file asks to enforce at ``now``; refuse a file that asks for nothing.

    ``approve_all`` treats proposed decisions as approved (automation that approved them
    elsewhere); rejected, revoked and expired ones stay out. An empty file is allowed (it
    asks for an empty WAF state on purpose); a non-empty one with no approved decision, or
    whose approved decisions have all expired at ``now``, raises ``InputError`` naming it.
    """
    if approve_all:
        decisions = [
            d.with_status(Status.APPROVED) if d.status is Status.PROPOSED else d
            for d in decisions
        ]
    approved = [d for d in decisions if d.status in ENFORCEABLE]
    if decisions and not approved:
        raise InputError(
            f"0 of {len(decisions)} decisions are approved; approve them or pass --approve-all"
        )
    active = [d for d in approved if d.is_active(now)]
    if approved and not active:
        newest = max(d.expires_at for d in approved)
        raise InputError(
            f"0 of {len(approved)} approved decisions are in force at {_iso(now)} (the last "
            f"expired at {_iso(newest)}); pass --now to evaluate them at another time"
        )
    return decisions


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def load_compiler_config(given: str | Path | None) -> CompilerConfig:
    """The engine's settings file's ``[enforcement]`` table (as ``wafsmith run`` compiles with
    it, ``WAFSMITH_*`` included), or a compiler TOML; defaults without either."""
    path = config_path(given)
    if path is None:
        return load_config(None)
    if is_engine_settings(read_toml(path)):
        from engine.enforcement import compiler_config

        return compiler_config(load_engine_settings(path), source=f"{path} [enforcement]")
    return load_config(path)


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
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--decisions", required=True, help="decisions JSON file")
    parser.add_argument(
        "--approve-all",
        action="store_true",
        help="treat the file's proposed decisions as approved (approved elsewhere)",
    )
    parser.add_argument(
        "--config",
        help="the engine's settings TOML (its [enforcement] table; default: $WAFSMITH_CONFIG) "
        "or a compiler TOML (see example-enforcement.toml)",
    )
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
        config = load_compiler_config(args.config)
        refused: list[str] = []
        decisions = load_decisions(args.decisions, refused)
        warn_refused("compile", args.decisions, refused)
        now = parse_time(args.now) if args.now else SystemClock().now()
        decisions = select_enforceable(decisions, now, approve_all=args.approve_all)
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
