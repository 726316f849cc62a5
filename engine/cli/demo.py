"""``wafsmith demo``: the engine's main job on its embedded default, no AWS account needed.

Starts a moto server on 127.0.0.1 (S3, SQS, WAFv2) and the Shield stand-in, creates a bucket
with S3 → SQS notifications and a web ACL holding an operator's rules, streams the simulator's
labelled traffic into the bucket as ALB, CloudFront and WAF log objects (accelerated), and
runs the engine against it with the API and dashboard on http://127.0.0.1:PORT/.

With ``--minutes N`` it plays N simulated minutes and prints a JSON summary (objects, lines,
decisions by state, attackers and benign clients blocked, WAF entries); without it, it runs
until interrupted (Ctrl-C), then prints the summary.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from engine.core.logging import configure_json_logging


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole engine against a local AWS stand-in with simulated traffic",
        description=__doc__,
        epilog="""examples:
  wafsmith demo                      # until Ctrl-C; dashboard on http://127.0.0.1:8080/
  wafsmith demo --minutes 5 --no-api
  wafsmith demo --minutes 30 --speed 60 --seed 11
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--minutes", type=int, help="simulated minutes to play, then exit")
    parser.add_argument(
        "--speed", type=float, default=30.0, help="simulated seconds per real second (default 30)"
    )
    parser.add_argument("--seed", type=int, default=7, help="simulator seed")
    parser.add_argument("--port", type=int, default=8080, help="API and dashboard port")
    parser.add_argument("--no-api", action="store_true", help="do not serve the dashboard")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("var/demo"),
        help="where the demo's ledger and history go (emptied first)",
    )
    parser.add_argument(
        "--corpora",
        type=Path,
        help="corpora folder whose real scan traces the scanners replay (default: the "
        "packaged profiles only, the same demo on every machine)",
    )
    parser.add_argument("--log-level", default="WARNING", help="engine log level (JSON on stderr)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.demo.session import DemoOptions, run_demo

    if args.minutes is not None and args.minutes < 1:
        print("wafsmith demo: --minutes must be at least 1", file=sys.stderr)
        return 2
    if args.speed <= 0:
        print("wafsmith demo: --speed must be > 0", file=sys.stderr)
        return 2
    if args.corpora is not None and not args.corpora.is_dir():
        print(f"wafsmith demo: --corpora {args.corpora}: not a directory", file=sys.stderr)
        return 2
    configure_json_logging(args.log_level)
    options = DemoOptions(
        minutes=args.minutes,
        speed=args.speed,
        seed=args.seed,
        port=args.port,
        data_dir=args.data_dir,
        serve_api=not args.no_api,
        corpora_dir=args.corpora,
    )
    interrupted = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: interrupted.set())
    summary = run_demo(
        options,
        announce=lambda text: print(text, file=sys.stderr, flush=True),
        interrupt=interrupted,
    )
    json.dump(summary, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0
