"""``wafsmith enforce --once``: compile the approved decisions and run one reconciliation cycle.

Decisions come from ``--decisions FILE.json`` or, without it, from the ledger
(``--database-url`` or ``WAFSMITH_DATABASE_URL``, or the settings file's ledger).
``--config`` takes a compiler TOML (as ``wafsmith compile``) or an engine settings TOML
(``[enforcement]``/``[aws]`` tables), read exactly as ``wafsmith run`` reads it. The mode comes
from the flags (``--dry-run``, ``--count-only``, else enforce); a count-only configuration is
always enforced in count-only mode. With the ledger, its allowlist is applied, the status
document is written (except for a dry run) and the enforced decisions are marked applied.
Prints a JSON summary: calls made by operation, entries per IP set, drift found, errors and
when the next decision expires.

A ``--decisions`` file is held to ``wafsmith compile``'s rule: it must hold approved decisions
in force at ``--now`` (or ``--approve-all``), else nothing is sent and the exit code is 2.

With the ledger and not ``--dry-run`` the cycle holds the enforcer lease (``[lease] name``
of the settings file, default ``enforcer``): while a running engine holds it, nothing is sent.

Exit codes: 0 converged (or planned, with ``--dry-run``); 1 the cycle failed (errors listed);
2 bad input, configuration or an invalid compiled document (nothing was sent to AWS);
3 another engine holds the enforcer lease (nothing was sent, or the cycle stopped when the
lease was lost).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from engine.cli.compile import (
    load_decisions,
    read_behind_cloudfront,
    select_enforceable,
    warn_refused,
)
from engine.cli.config import config_path, is_engine_settings, load_engine_settings, read_toml
from engine.cli.output import AWS_HINTS
from engine.compiler import CompilerConfig, config_from_dict, load_config
from engine.compiler.config import CLOUDFRONT_FORWARDED
from engine.core.clock import SystemClock
from engine.core.errors import ConfigError, WafsmithError
from engine.core.lease import LeaseLost, LeaseUnavailable
from engine.enforcement import build_reconciler, compiler_config, enforce_once, enforcement_mode
from engine.enforcer import Mode
from engine.schema.decision import Decision, DecisionError, parse_time

EPILOG = """examples:
  wafsmith enforce --once --dry-run --config wafsmith.toml
  wafsmith enforce --once --decisions out.json --approve-all --web-acl my-site-acl
  WAFSMITH_DATABASE_URL=postgresql+psycopg://wafsmith@db/wafsmith wafsmith enforce --once
"""


class _Inputs:
    """Everything a cycle needs, resolved from the arguments before any AWS call."""

    def __init__(self) -> None:
        self.config: CompilerConfig = CompilerConfig()
        self.endpoint_url: str | None = None
        self.region = "us-east-1"
        self.database_url: str | None = None
        self.lease_name = "enforcer"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "enforce",
        help="converge AWS WAF (and Shield) on the approved decisions, once",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="run one cycle and exit (the loop lives in `wafsmith run`)",
    )
    parser.add_argument("--decisions", help="decisions JSON file (default: the ledger)")
    parser.add_argument(
        "--approve-all",
        action="store_true",
        help="with --decisions: treat the file's proposed decisions as approved",
    )
    parser.add_argument(
        "--config", help="engine settings or compiler TOML (default: $WAFSMITH_CONFIG)"
    )
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--dry-run", action="store_true", help="plan only: no AWS writes")
    modes.add_argument("--count-only", action="store_true", help="every engine rule in Count")
    parser.add_argument("--endpoint-url", help="AWS endpoint (e.g. a moto server)")
    parser.add_argument("--web-acl", help="name of the web ACL the engine's rules go into")
    parser.add_argument("--scope", choices=("REGIONAL", "CLOUDFRONT"))
    parser.add_argument("--region", help="AWS Region (CLOUDFRONT scope always uses us-east-1)")
    parser.add_argument("--database-url", help="ledger URL when --decisions is not given")
    parser.add_argument("--now", help="evaluate TTLs at this ISO-8601 UTC time (default: now)")
    parser.add_argument(
        "--writes-per-second",
        type=float,
        default=1.0,
        help="WAF write pacing per account and Region (AWS budget: 1)",
    )
    parser.add_argument(
        "--reads-per-second",
        type=float,
        default=5.0,
        help="WAF Get/List pacing per account and Region (AWS budget: 5)",
    )
    parser.add_argument(
        "--shield",
        choices=("aws", "fake"),
        help="Shield backend (default: aws, or the recording fake when "
        "--endpoint-url is given, since moto lacks those calls)",
    )
    parser.set_defaults(func=run)


def _load_inputs(args: argparse.Namespace) -> _Inputs:
    inputs = _Inputs()
    path = config_path(args.config)
    if path is not None:
        data = read_toml(path)
        if is_engine_settings(data):
            settings = load_engine_settings(path)
            inputs.config = compiler_config(settings, source=f"{path} [enforcement]")
            inputs.endpoint_url = settings.aws.endpoint_url
            inputs.region = settings.aws.region
            inputs.database_url = settings.database_url
            inputs.lease_name = settings.lease.name
        else:
            inputs.config = load_config(path)
    updates: dict[str, Any] = {}
    if args.scope:
        updates["scope"] = args.scope
    if args.count_only:
        updates["count_only"] = True
    if args.web_acl:
        placement = inputs.config.placement.model_copy(update={"web_acl_name": args.web_acl})
        updates["placement"] = placement.model_dump()
    if updates:
        inputs.config = config_from_dict(
            {**inputs.config.model_dump(), **updates}, source="command line"
        )
    inputs.endpoint_url = args.endpoint_url or inputs.endpoint_url
    inputs.region = args.region or inputs.region  # CLOUDFRONT scope: us-east-1 regardless
    inputs.database_url = args.database_url or inputs.database_url
    return inputs


def _open_ledger(inputs: _Inputs, clock: SystemClock) -> Any:
    if not (inputs.database_url or os.environ.get("WAFSMITH_DATABASE_URL")):
        raise ConfigError(
            "no decisions: give --decisions FILE.json, or a ledger with "
            "--database-url / WAFSMITH_DATABASE_URL"
        )
    from engine.decisions.ledger import Ledger

    return Ledger.open(inputs.database_url, clock=clock)


def run(args: argparse.Namespace) -> int:
    if args.writes_per_second <= 0 or args.reads_per_second <= 0:
        print("wafsmith enforce: --writes/--reads-per-second must be > 0", file=sys.stderr)
        return 2
    if not args.once:
        print(
            "wafsmith enforce: only --once is supported here; the continuous loop is "
            "`wafsmith run`",
            file=sys.stderr,
        )
        return 2
    clock = SystemClock()
    ledger = None
    try:
        inputs = _load_inputs(args)
        now = parse_time(args.now) if args.now else clock.now()
        if args.decisions:
            refused: list[str] = []
            decisions: list[Decision] = select_enforceable(
                load_decisions(args.decisions, refused), now, approve_all=args.approve_all
            )
            warn_refused("enforce", args.decisions, refused)
            if inputs.config.ip_sets_forwarded_ip is None and read_behind_cloudfront(
                args.decisions
            ):  # viewers read from X-Forwarded-For: WAF sees the CloudFront edge as source
                inputs.config = inputs.config.model_copy(
                    update={"ip_sets_forwarded_ip": CLOUDFRONT_FORWARDED}
                )
        else:
            ledger = _open_ledger(inputs, clock)
            decisions = ledger.enforceable(now)
    except (WafsmithError, DecisionError) as exc:
        print(f"wafsmith enforce: {exc}", file=sys.stderr)
        return 2
    try:
        return _cycle(args, inputs, decisions, now, clock, ledger)
    finally:
        if ledger is not None:
            ledger.close()


def _cycle(
    args: argparse.Namespace,
    inputs: _Inputs,
    decisions: list[Decision],
    now: Any,
    clock: SystemClock,
    ledger: Any,
) -> int:
    mode = enforcement_mode(inputs.config, dry_run=args.dry_run)
    lease = None
    if ledger is not None and mode is not Mode.DRY_RUN:
        from engine.decisions import DatabaseLease

        lease = DatabaseLease(
            ledger.engine,
            name=inputs.lease_name,
            instance_id=f"wafsmith-enforce:{os.getpid()}",
            clock=clock,
        )
        try:
            acquired = lease.try_acquire()
        except LeaseUnavailable as exc:
            print(f"wafsmith enforce: {exc}", file=sys.stderr)
            return 2
        if not acquired:
            holder = ledger.lease_holder(inputs.lease_name)
            who = "another engine"
            if holder is not None:
                who = f"{holder.instance_id} (epoch {holder.epoch})"
            print(
                f"wafsmith enforce: {who} holds the enforcer lease {inputs.lease_name!r}: "
                "nothing was sent (use --dry-run to plan)",
                file=sys.stderr,
            )
            return 3
    try:
        return _enforce(args, inputs, decisions, now, clock, ledger, mode, lease)
    except LeaseLost as exc:
        print(f"wafsmith enforce: {exc}; the cycle stopped", file=sys.stderr)
        return 3
    finally:
        if lease is not None:
            lease.release()


def _enforce(
    args: argparse.Namespace,
    inputs: _Inputs,
    decisions: list[Decision],
    now: Any,
    clock: SystemClock,
    ledger: Any,
    mode: Mode,
    lease: Any,
) -> int:
    reconciler = build_reconciler(
        inputs.config,
        region=inputs.region,
        endpoint_url=inputs.endpoint_url,
        clock=clock,
        shield_kind=args.shield,
        writes_per_s=args.writes_per_second,
        reads_per_s=args.reads_per_second,
        fence=lease,
    )
    done = enforce_once(
        decisions,
        config=inputs.config,
        reconciler=reconciler,
        mode=mode,
        now=now,
        ledger=ledger,
        publish=mode is not Mode.DRY_RUN,
        fence=lease,
    )
    if done.result is None:
        print(
            f"wafsmith enforce: the compiled document breaks {len(done.violations)} WAFv2 "
            "constraint(s); nothing was sent:",
            file=sys.stderr,
        )
        for v in done.violations:
            print(f"  - {v}", file=sys.stderr)
        return 2
    result = done.result
    summary = _summary(result.to_dict(), decisions, done.state.overflow)
    if ledger is not None and result.ok and mode is Mode.ENFORCE:
        summary["marked_applied"] = len(done.applied)
    json.dump(summary, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")
    for line in error_lines(summary["errors"]):
        print(f"wafsmith enforce: {line}", file=sys.stderr)
    return 0 if result.ok else 1


def error_lines(errors: list[dict[str, Any]]) -> list[str]:
    """The cycle's errors as one line per distinct cause (no credentials, access denied, an
    unreachable endpoint, ...), the full list staying in the JSON summary."""
    out: dict[tuple[str, str], str] = {}
    for error in errors:
        code, message = str(error.get("code", "error")), str(error.get("message", ""))
        hint = AWS_HINTS.get(code)
        where = f"{error.get('resource', '?')} {error.get('operation', '')}".strip()
        text = f"{hint}: {message}" if hint else f"{code}: {message}"
        out.setdefault((code, message), f"{where}: {text}")
    return list(out.values())


def _summary(result: dict[str, Any], decisions: list[Decision], overflow: Any) -> dict[str, Any]:
    return {
        "ok": result["ok"],
        "mode": result["mode"],
        "decisions": len(decisions),
        "not_enforced": len(overflow),
        "calls": result["calls"]["calls"],
        "writes": result["writes"],
        "retries": result["calls"]["retries"],
        "lock_conflicts": result["calls"]["lock_conflicts"],
        "entries": result["entries"],
        "plan": [s for s in result["plan"] if s["status"] != "converged"],
        "drift": result["drift"],
        "errors": result["errors"],
        "shield": result["shield"],
        "next_expiry": result["next_expiry"],
    }
