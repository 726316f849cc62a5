"""``wafsmith token create|list|revoke``: bearer tokens for the API and dashboard.

A token is printed once at creation and stored only as a hash; roles are ``viewer``
(reads), ``analyst`` (approves, rejects, revokes) and ``admin`` (policy and allowlists).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.core.errors import ConfigError

ROLES = ("viewer", "analyst", "admin")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "token",
        help="create, list and revoke API tokens",
        description=__doc__,
        epilog="""examples:
  wafsmith token --config wafsmith.toml create --name alice --role analyst
  wafsmith token --database-url sqlite:///var/wafsmith.db list
  wafsmith token revoke alice
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--database-url", default=None, help="ledger URL (default: settings)")
    parser.add_argument(
        "--config", type=Path, default=None, help="TOML settings file (default: $WAFSMITH_CONFIG)",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    create = verbs.add_parser("create", help="make a token and print it once")
    create.add_argument("--name", required=True, help="who holds it (recorded in the audit log)")
    create.add_argument("--role", required=True, choices=ROLES)
    verbs.add_parser("list", help="list tokens (never their secret)")
    revoke = verbs.add_parser("revoke", help="revoke a token by id or name")
    revoke.add_argument("token", help="token id or name")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli.config import config_path, load_engine_settings
    from engine.service import Service, ServiceError

    try:
        overrides = {"database_url": args.database_url} if args.database_url else {}
        settings = load_engine_settings(config_path(args.config), **overrides)
        service = Service.from_settings(settings)
    except ConfigError as exc:
        print(f"wafsmith token: {exc}", file=sys.stderr)
        return 2
    try:
        if args.verb == "create":
            plaintext, record = service.create_token(name=args.name, role=args.role)
            print(plaintext)
            print(
                f"token {record.token_id} for {record.name!r} ({record.role}); "
                "store it now, it is not shown again",
                file=sys.stderr,
            )
        elif args.verb == "list":
            for record in service.list_tokens():
                state = "revoked" if record.revoked else "active"
                print(f"{record.token_id}\t{record.name}\t{record.role}\t{state}")
        else:
            record = service.revoke_token(args.token)
            print(f"revoked token {record.token_id} ({record.name})", file=sys.stderr)
    except ServiceError as exc:
        print(f"wafsmith token {args.verb}: {exc}", file=sys.stderr)
        return 1
    return 0
