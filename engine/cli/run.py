"""``wafsmith run``: the whole engine in one process, with the API and dashboard beside it.

Configuration comes from ``--config FILE.toml`` plus ``WAFSMITH_*`` environment variables and
is validated before anything starts; then the preflight checks of ``wafsmith check`` run, and
a failed one (no credentials, no queue, no web ACL, a denied permission, an unreachable ledger,
a skewed clock) refuses the start with exit code 2. Logs are JSON lines on stderr. SIGTERM or
SIGINT stops the loop after the in-flight object; nothing in AWS WAF is torn down.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.cli.config import config_path, load_engine_settings
from engine.core.clock import SYSTEM_CLOCK, Clock
from engine.core.errors import ConfigError, WafsmithError
from engine.core.logging import configure_json_logging
from engine.settings import Settings

if TYPE_CHECKING:
    from api.server import ApiThread


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the engine continuously: ingest, detect, decide, enforce, serve the API",
        description=__doc__,
        epilog="""examples:
  wafsmith run --config /etc/wafsmith/wafsmith.toml
  WAFSMITH_ENFORCEMENT__MODE=count_only wafsmith run --config wafsmith.toml --no-api
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", type=Path, help="TOML settings file (default: $WAFSMITH_CONFIG)",
    )
    parser.add_argument("--no-api", action="store_true", help="do not serve the API/dashboard")
    parser.add_argument(
        "--skip-check",
        action="store_true",
        help="start without the preflight checks of `wafsmith check`",
    )
    parser.add_argument("--engine", choices=["single", "spark"], default="single",
                        help="spark: Structured Streaming from the SQS queue to the ledger")
    parser.add_argument("--master", help="Spark master URL (default local[*])")
    parser.add_argument("--checkpoint", type=Path, help="Spark checkpoint directory")
    parser.set_defaults(func=run)


def start_api(
    settings: Settings,
    *,
    clock: Clock,
    instance_id: str | None = None,
    options: dict | None = None,
) -> ApiThread:
    """The API and dashboard on a background thread, over the ledger ``settings`` name;
    ``instance_id`` is the engine's, so the status says whether it holds the lease.

    ``options``: ``create_app``'s options (default: from ``settings.api``).
    """
    from api.server import ApiThread
    from engine.service import Service, app_options

    service = Service.from_settings(
        settings, clock=clock, beside_engine=True, instance_id=instance_id
    )
    api = ApiThread(
        service,
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
        settings = load_engine_settings(config_path(args.config))
    except ConfigError as exc:
        print(f"wafsmith run: {exc}", file=sys.stderr)
        return 2
    if not args.skip_check:
        from engine.cli.check import run_checks

        checks = run_checks(settings, config_file=config_path(args.config))
        failed = [c for c in checks if c.failed]
        for check in checks if failed else []:
            print(check.line(), file=sys.stderr)
        if failed:
            print(
                f"wafsmith run: refusing to start: {len(failed)} preflight check(s) failed "
                "(`wafsmith check` repeats them)",
                file=sys.stderr,
            )
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
    if getattr(args, "engine", "single") == "spark":
        from engine.spark.streaming import run_stream

        return run_stream(settings, stop, master=args.master, checkpoint=args.checkpoint)
    try:
        runner = EngineRunner.from_settings(settings, clock=SYSTEM_CLOCK)
    except (WafsmithError, ValueError) as exc:
        print(f"wafsmith run: cannot start: {exc}", file=sys.stderr)
        return 2
    instance_id = None if runner.lease is None else runner.lease.instance_id
    api = listener = None
    if serve:
        options = {**(options or {}), "engine_registry": runner.metrics.registry}
        api = start_api(
            settings, clock=SYSTEM_CLOCK, instance_id=instance_id, options=options
        )
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
