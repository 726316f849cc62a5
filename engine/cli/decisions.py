"""``wafsmith decisions``: the analyst's view of the ledger from a terminal.

``list`` and ``show`` read decisions and their audit trail; ``approve``, ``reject`` and
``revoke`` move one through its life; ``add`` records an analyst's own decision (a manual ban:
client, action, TTL, reason), approved at once. Every change goes through the service facade
and is audited with the operator's identity (``--actor``, default ``$USER``). The ledger is the
one the settings name (``--config`` / ``$WAFSMITH_CONFIG`` / ``WAFSMITH_DATABASE_URL``), or
``--database-url``: SQLite or PostgreSQL.

Exit codes: 0 done; 1 the ledger refused (unknown id, illegal move, allowlisted client, bad
input); 2 configuration.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
from pathlib import Path
from typing import Any

from engine.cli.config import config_path, load_engine_settings
from engine.cli.output import STDOUT, write_json
from engine.core.errors import ConfigError
from engine.schema.decision import Action, Decision, DecisionError, Status

EPILOG = """examples:
  wafsmith decisions list --status proposed
  wafsmith decisions show 3f2a9c...
  wafsmith decisions approve 3f2a9c... --comment "confirmed scanner"
  wafsmith decisions revoke 3f2a9c... --comment "customer's office NAT"
  wafsmith decisions add --client 203.0.113.0/24 --action block --ttl 6h \\
      --reason "credential stuffing seen in the app logs"
"""
MANUAL_DETECTOR = "manual"
_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
PAST = {"approve": "approved", "reject": "rejected", "revoke": "revoked"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "decisions",
        help="list, show, approve, reject, revoke and add decisions in the ledger",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="settings TOML (default: $WAFSMITH_CONFIG)")
    common.add_argument("--database-url", help="ledger URL (default: the settings')")
    common.add_argument("-o", "--output", choices=("table", "json"), default="table")
    common.add_argument("--json", dest="output", action="store_const", const="json",
                        help="same as -o json")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    listing = verbs.add_parser("list", parents=[common], help="decisions, newest first")
    listing.add_argument("--status", choices=[s.value for s in Status])
    listing.add_argument("--client", help="only this exact IP or CIDR")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (1..1000)")

    show = verbs.add_parser("show", parents=[common], help="one decision and its audit trail")
    show.add_argument("id")

    for verb, text in (
        ("approve", "proposed → approved (enforced at the next cycle)"),
        ("reject", "proposed → rejected"),
        ("revoke", "approved or applied → revoked (lifted at the next cycle)"),
    ):
        move = verbs.add_parser(verb, parents=[common], help=text)
        move.add_argument("id")
        move.add_argument("--comment", help="why (recorded in the audit trail)")
        _actor_argument(move)

    add = verbs.add_parser("add", parents=[common], help="an analyst's own decision, approved")
    add.add_argument("--client", required=True, help="IP address or CIDR")
    add.add_argument("--action", required=True, choices=[a.value for a in Action])
    add.add_argument("--ttl", required=True, type=duration, help="e.g. 3600, 90m, 6h, 7d")
    add.add_argument("--reason", required=True, help="why (shown with the decision, audited)")
    _actor_argument(add)
    parser.set_defaults(func=run)


def _actor_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--actor", default=default_actor(), help="who does this, for the audit (default: $USER)"
    )


def default_actor() -> str:
    """The operator's identity: ``$USER``, else the login name, else ``cli``."""
    try:
        return os.environ.get("USER") or getpass.getuser() or "cli"
    except (OSError, KeyError):  # no passwd entry (e.g. an arbitrary container uid)
        return "cli"


def duration(text: str) -> int:
    """``3600``, ``90m``, ``6h``, ``7d`` → seconds (> 0)."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"not a positive duration: {text!r} (e.g. 3600, 6h)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def run(args: argparse.Namespace) -> int:
    from engine.service import Service, ServiceError

    try:
        overrides = {"database_url": args.database_url} if args.database_url else {}
        settings = load_engine_settings(config_path(args.config), **overrides)
        service = Service.from_settings(settings)
    except ConfigError as exc:
        print(f"wafsmith decisions: {exc}", file=sys.stderr)
        return 2
    try:
        return VERBS[args.verb](service, args)
    except (ServiceError, DecisionError) as exc:
        print(f"wafsmith decisions {args.verb}: {exc}", file=sys.stderr)
        return 1
    finally:
        service.ledger.close()


def _list(service: Any, args: argparse.Namespace) -> int:
    if args.client:
        page = service.ledger.list(state=args.status, client=args.client, limit=args.limit)
    else:
        page = service.list_decisions(state=args.status, limit=args.limit)
    if args.output == "json":
        write_json({"decisions": [d.to_dict() for d in page.items], "total": page.total}, STDOUT)
        return 0
    print(f"{'id':<32}  {'status':<9} {'action':<10} {'client':<20} {'score':>5}  "
          f"{'expires':<20} {'detector':<22} reason")
    for d in page.items:
        reason = d.reasons[0] if d.reasons else ""
        print(f"{d.id:<32}  {d.status.value:<9} {d.action.value:<10} {d.client:<20} "
              f"{d.score:>5.2f}  {_iso(d.expires_at):<20} {d.detector:<22} {reason[:80]}")
    shown = len(page.items)
    more = f" (showing {shown}; --limit for more)" if page.total > shown else ""
    print(f"{page.total} decision(s){more}", file=sys.stderr)
    return 0


def _show(service: Any, args: argparse.Namespace) -> int:
    detail = service.get_decision(args.id)
    d = detail.decision
    if args.output == "json":
        write_json({"decision": d.to_dict(), "audit": [e.to_dict() for e in detail.audit]},
                   STDOUT)
        return 0
    rows = [("id", d.id), ("status", d.status.value), ("client", d.client),
            ("action", d.action.value), ("score", f"{d.score:.2f}"), ("detector", d.detector),
            ("decided at", _iso(d.decided_at)), ("expires at", _iso(d.expires_at)),
            ("members", ", ".join(d.members) or "-")]
    if d.rule is not None:  # a rule-level decision: its scope and limit, then its members
        rows[-1:] = [*_rule_rows(d), ("members", f"{len(d.members):,} address(es)")]
    for key, value in rows:
        print(f"{key:<11} {value}")
    print("reasons")
    for reason in d.reasons:
        print(f"  - {reason}")
    print("audit")
    for e in detail.audit:
        moved = f"{e.from_status or '-'} → {e.to_status or '-'}"
        print(f"  {_iso(e.at)}  {e.actor:<20} {moved:<22} {e.comment or ''}")
    return 0


def _move(service: Any, args: argparse.Namespace) -> int:
    decision = getattr(service, args.verb)(args.id, by=args.actor, comment=args.comment)
    return _report(decision, args, PAST[args.verb])


def _add(service: Any, args: argparse.Namespace) -> int:
    decision = add_manual(service, client=args.client, action=Action(args.action),
                          ttl_s=args.ttl, reason=args.reason, actor=args.actor)
    return _report(decision, args, "added")


def add_manual(
    service: Any, *, client: str, action: Action, ttl_s: int, reason: str, actor: str
) -> Decision:
    """An analyst's decision: proposed and approved by ``actor`` (both audited).

    A proposal for the same client and action that is already open merges into it (the
    ledger's rule), so the open one is approved with the longer TTL. If the approval is
    refused (an allowlisted client), the proposal it left is rejected: nothing half-done.
    """
    from engine.service import ServiceError

    proposal = Decision(
        client=client, action=action, ttl_s=ttl_s, score=1.0, confidence=1.0,
        detector=MANUAL_DETECTOR, reasons=(reason,), decided_at=service.now(),
    )
    stored = service.ledger.propose(proposal, by=actor)
    if stored.status is not Status.PROPOSED:
        return stored  # merged into an approved or applied decision: already in force
    try:
        return service.approve(stored.id, by=actor, comment=reason)
    except ServiceError:
        service.reject(stored.id, by=actor, comment="manual decision refused on approval")
        raise


def _report(decision: Decision, args: argparse.Namespace, verb: str) -> int:
    if args.output == "json":
        write_json(decision.to_dict(), STDOUT)
    else:
        print(f"{verb} {decision.id}: {decision.action.value} {decision.client} "
              f"({decision.status.value}, expires {_iso(decision.expires_at)})")
    return 0


def _iso(when: Any) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


VERBS = {"list": _list, "show": _show, "approve": _move, "reject": _move, "revoke": _move,
         "add": _add}


def rule_summary(d: Any) -> str:
    """A rule-level decision's rule in one line, e.g. ``rate_based POST /login: ≤ 20/300 s``."""
    r = d.rule
    if r.kind != "rate_based":
        return f"{r.kind} on {r.scope}"
    per = "in all" if r.aggregate == "CONSTANT" else f"per {r.aggregate}"
    return f"rate_based {r.scope}: at most {r.limit} requests per {r.window_s} s {per}"


def _rule_rows(d: Any) -> list[tuple[str, str]]:
    r = d.rule
    match = "starts with" if r.path_match == "STARTS_WITH" else "exactly"
    rows = [("rule", rule_summary(d)), ("scope", f"{r.method or 'any method'}, path {match} "
                                                 f"{r.path}, host {r.host or 'any'}")]
    if r.kind == "rate_based":
        rows.append(("limit", f"{r.limit} per {r.window_s} s, key {r.aggregate}"))
    return rows
