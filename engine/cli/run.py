"""``wafsmith run``: the whole engine in one process, with the API and dashboard beside it.

Configuration comes from ``--config FILE.toml`` plus ``WAFSMITH_*`` environment variables and
is validated before anything starts. Logs are JSON lines on stderr. SIGTERM or SIGINT stops
the loop after the in-flight object; nothing in AWS WAF is torn down.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.core.clock import SYSTEM_CLOCK, Clock
from engine.core.errors import ConfigError, WafsmithError
from engine.core.logging import configure_json_logging
from engine.settings import Settings, load_settings

if TYPE_CHECKING:
    from api.server import ApiThread


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the engine continuously: ingest, detect, decide, enforce, serve the API",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="TOML settings file")
    parser.add_argument("--no-api", action="store_true", help="do not serve the API/dashboard")
    parser.set_defaults(func=run)


def start_api(settings: Settings, *, clock: Clock, options: dict | None = None) -> ApiThread:
    """The API and dashboard on a background thread, over the ledger ``settings`` name.

    ``options``: ``create_app``'s options (default: from ``settings.api``).
    """
    from api.server import ApiThread
    from engine.service import Service, app_options

    api = ApiThread(
        Service.from_settings(settings, clock=clock, beside_engine=True),
        host=settings.api.host,
        port=settings.api.port,
        options=app_options(settings.api) if options is None else options,
    )
    api.start()
    return api


def install_stop_handlers(stop: threading.Event) -> None:
    """SIGTERM/SIGINT set ``stop``: the loop finishes its in-flight object and returns."""

    def handler(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run(args: argparse.Namespace) -> int:
    from engine.runner import EngineRunner

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"wafsmith run: {exc}", file=sys.stderr)
        return 2
    configure_json_logging(settings.log_level)
    serve = settings.api.enabled and not args.no_api
    try:
        options = _api_options(settings) if serve else None
    except ConfigError as exc:
        print(f"wafsmith run: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    install_stop_handlers(stop)
    try:
        runner = EngineRunner.from_settings(settings, clock=SYSTEM_CLOCK)
    except (WafsmithError, ValueError) as exc:
        print(f"wafsmith run: cannot start: {exc}", file=sys.stderr)
        return 2
    api = listener = None
    if serve:
        options = {**(options or {}), "engine_registry": runner.metrics.registry}
        api = start_api(settings, clock=SYSTEM_CLOCK, options=options)
    elif settings.metrics.enabled:
        try:
            listener = start_metrics_listener(settings, runner.metrics.registry)
        except OSError as exc:
            runner.close()
            where = f"{settings.metrics.host}:{settings.metrics.port}"
            print(f"wafsmith run: cannot serve metrics on {where}: {exc.strerror}", file=sys.stderr)
            return 2
    try:
        runner.run(stop)
    finally:
        if api is not None:
            api.stop()
            api.service.ledger.close()
        if listener is not None:
            listener.shutdown()
        runner.close()
    return 0


def _api_options(settings: Settings) -> dict:
    """The API's options, checked before the engine starts (a bad secret file stops here)."""
    from engine.service import app_options

    return app_options(settings.api)


def start_metrics_listener(settings: Settings, registry: Any) -> Any:
    """Prometheus' own HTTP listener on ``[metrics] host:port``, serving the engine's registry
    (the engine without the API still reports its counters). Returns the server to shut down."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(
        settings.metrics.port, addr=settings.metrics.host, registry=registry
    )
    return server
