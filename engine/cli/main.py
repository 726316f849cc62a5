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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wafsmith",
        description="Adaptive WAF rule engine for AWS: logs in, WAF rules out.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
