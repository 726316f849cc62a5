"""Entry point of the ``wafsmith`` command.

Each subcommand lives in its own module under ``engine.cli`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the
parsed arguments and returning the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import PackageNotFoundError, version

from engine.cli.output import aws_error_line
from engine.core.errors import ConfigError

# Subcommand modules, in the order ``wafsmith --help`` lists them.
COMMAND_MODULES = (
    "engine.cli.parse",
    "engine.cli.analyze",
    "engine.cli.compile",
    "engine.cli.enforce",
    "engine.cli.serve",
    "engine.cli.token",
    "engine.cli.run",
    "engine.cli.demo",
    "engine.cli.config",
    "engine.cli.decisions",
    "engine.cli.feeds",
    "engine.cli.check",
)


def installed_version() -> str:
    """The version of the installed ``wafsmith`` distribution (its package metadata)."""
    try:
        return version("wafsmith")
    except PackageNotFoundError:  # running from a tree that was never installed
        return "unknown (not installed)"


# What ``wafsmith --help`` says of each command, so that listing the commands (or running one)
# imports only the module of the command run: ``wafsmith parse`` never loads the ledger, the
# API server or the models. A test checks that each module registers exactly this text.
COMMAND_HELP = {
    "parse": "parse ALB / CloudFront / WAF log objects and print a JSON summary",
    "analyze": "replay logs and propose decisions",
    "compile": "compile approved decisions into the desired WAF state (JSON)",
    "enforce": "converge AWS WAF (and Shield) on the approved decisions, once",
    "serve": "run the status API and the analyst dashboard against the ledger",
    "token": "create, list and revoke API tokens",
    "run": "run the engine continuously: ingest, detect, decide, enforce, serve the API",
    "demo": "run the whole engine against a local AWS stand-in with simulated traffic",
    "config": "show the effective settings (file + WAFSMITH_* environment), secrets redacted",
    "decisions": "list, show, approve, reject, revoke and add decisions in the ledger",
    "feeds": "list or update the published address feeds",
    "check": "preflight: credentials, queue, bucket, web ACL, permissions, ledger, clock skew",
}


def chosen_command(argv: list[str] | None) -> str | None:
    """The subcommand named in ``argv`` (the first argument not starting with ``-``)."""
    args = sys.argv[1:] if argv is None else argv
    first = next((a for a in args if not a.startswith("-")), None)
    return first if first in COMMAND_HELP else None


def build_parser(argv: list[str] | None = None, *, every: bool = False) -> argparse.ArgumentParser:
    """The ``wafsmith`` parser. Only the module of the command in ``argv`` is imported (all of
    them with ``every``); the others are listed with their help text alone."""
    parser = argparse.ArgumentParser(
        prog="wafsmith",
        description="Adaptive WAF rule engine for AWS: logs in, WAF rules out.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = chosen_command(argv)
    for name in COMMAND_MODULES:
        command = name.rsplit(".", 1)[1]
        if every or command == chosen:
            importlib.import_module(name).register(sub)
        else:
            sub.add_parser(command, help=COMMAND_HELP[command])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:  # a command that did not catch its own: still one line
        print(f"wafsmith {args.command}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        line = aws_error_line(exc)  # no credentials, access denied, endpoint unreachable
        if line is None:
            raise
        print(f"wafsmith {args.command}: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    sys.exit(main())
