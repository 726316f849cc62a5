"""``wafsmith serve``: the API and dashboard alone, against the ledger (no pipeline)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.core.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the status API and the analyst dashboard against the ledger",
        description="Serve the wafsmith API and dashboard (uvicorn) against the ledger. "
        "Create tokens first with `wafsmith token create`.",
        epilog="""examples:
  wafsmith serve --config wafsmith.toml
  wafsmith serve --database-url sqlite:///var/wafsmith.db --port 8081
  wafsmith serve --session-secret-file /etc/wafsmith/session.key --secure-cookies
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default=None, help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="TCP port (default 8080)")
    parser.add_argument("--database-url", default=None, help="ledger URL (default: settings)")
    parser.add_argument(
        "--config", type=Path, default=None, help="TOML settings file (default: $WAFSMITH_CONFIG)",
    )
    parser.add_argument(
        "--session-secret-file",
        type=Path,
        default=None,
        help="file holding the secret that signs dashboard cookies "
        "(default: [api] session_secret(_file), else random per run)",
    )
    parser.add_argument(
        "--secure-cookies",
        action="store_true",
        help="mark cookies HTTPS-only (behind TLS; default: [api] secure_cookies)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from api.main import create_app
    from engine.cli.config import config_path, load_engine_settings
    from engine.service import Service, app_options, read_secret_file

    try:
        overrides = {"database_url": args.database_url} if args.database_url else {}
        settings = load_engine_settings(config_path(args.config), **overrides)
        options = app_options(settings.api)
        if args.session_secret_file is not None:
            path = args.session_secret_file
            options["session_secret"] = read_secret_file(path, what="--session-secret-file")
        options["secure_cookies"] = options["secure_cookies"] or args.secure_cookies
        service = Service.from_settings(settings)
    except ConfigError as exc:
        print(f"wafsmith serve: {exc}", file=sys.stderr)
        return 2
    host = args.host or settings.api.host
    port = settings.api.port if args.port is None else args.port
    app = create_app(service, **options)
    print(f"wafsmith API and dashboard on http://{host}:{port}/ (ledger: {service.ledger_url})")
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower())
    return 0
