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
    parser.add_argument("--engine", choices=["single", "spark"], default="single",
                        help="spark: Structured Streaming from the SQS queue to the ledger")
    parser.add_argument("--master", help="Spark master URL (default local[*])")
    parser.add_argument("--checkpoint", type=Path, help="Spark checkpoint directory")
    parser.set_defaults(func=run)


def start_api(settings: Settings, *, clock: Clock) -> ApiThread:
    """The API and dashboard on a background thread, over the ledger ``settings`` name."""
    from api.server import ApiThread
    from engine.service import Service

    api = ApiThread(
        Service.from_settings(settings, clock=clock, beside_engine=True),
        host=settings.api.host,
        port=settings.api.port,
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
    serve = settings.api.enabled and not args.no_api
    api = start_api(settings, clock=SYSTEM_CLOCK) if serve else None
    try:
        runner.run(stop)
    finally:
        if api is not None:
            api.stop()
            api.service.ledger.close()
        runner.close()
    return 0
