"""``wafsmith feeds``: the published address lists the engine trusts (CloudFront, crawlers).

``feeds list`` shows each feed's networks, publication date, source and whether it is the
packaged copy or an update; ``feeds update --from FILE`` validates a file downloaded from the
publisher (AWS's ip-ranges.json, Google's googlebot.json, Bing's bingbot.json) and installs it
into the feeds folder, which the engine reads in preference to the packaged copy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.core.clock import SystemClock
from engine.core.feeds import (
    AWS_FORMAT,
    CLOUDFRONT,
    CRAWLER_FEEDS,
    FEED_KINDS,
    FeedError,
    default_feeds_dir,
    detect_format,
    feed_from_document,
    install_feed,
    load_feed,
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "feeds",
        help="list or update the published address feeds",
        description=__doc__.splitlines()[0],
        epilog="""examples:
  wafsmith feeds list
  wafsmith feeds update --from ip-ranges.json
  wafsmith feeds update --from googlebot.json --kind googlebot
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    ls = sub.add_parser("list", help="each feed's networks, date and source")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    up = sub.add_parser("update", help="install a newer copy of a feed from a file")
    up.add_argument("--from", dest="source", type=Path, required=True, metavar="FILE")
    up.add_argument("--kind", choices=("auto", *FEED_KINDS), default="auto",
                    help="which feed FILE is (auto: AWS format is cloudfront; a crawler list "
                    "is named by its file name, e.g. googlebot.json)")
    for q in (ls, up):
        q.add_argument("--feeds-dir", type=Path,
                       help="folder of updated feeds (default $WAFSMITH_FEEDS_DIR or "
                       "~/.local/share/wafsmith/feeds)")
    ls.set_defaults(func=run_list)
    up.set_defaults(func=run_update)


def run_list(args: argparse.Namespace) -> int:
    folder = args.feeds_dir or default_feeds_dir()
    try:
        feeds = [load_feed(kind, folder).summary() for kind in FEED_KINDS]
    except FeedError as exc:
        print(f"wafsmith feeds: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"feeds_dir": str(folder), "feeds": feeds}, indent=2))
        return 0
    print(f"{'feed':<11} {'ipv4':>5} {'ipv6':>5}  {'published':<27} origin / source")
    for f in feeds:
        print(f"{f['kind']:<11} {f['ipv4']:>5} {f['ipv6']:>5}  {f['published'] or '-':<27} "
              f"{f['origin']}: {f['source']}")
    return 0


def _kind_of(path: Path, fmt: str, asked: str) -> str:
    if asked != "auto":
        return asked
    if fmt == AWS_FORMAT:
        return CLOUDFRONT
    named = [k for k in CRAWLER_FEEDS if k in path.name.lower()]
    if len(named) != 1:
        raise FeedError(f"{path.name}: a crawler list; say which with --kind "
                        f"({' or '.join(CRAWLER_FEEDS)})")
    return named[0]


def run_update(args: argparse.Namespace) -> int:
    folder = args.feeds_dir or default_feeds_dir()
    try:
        try:
            doc = json.loads(args.source.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FeedError(f"cannot read {args.source}: {exc}") from None
        kind = _kind_of(args.source, detect_format(doc), args.kind)
        feed = feed_from_document(kind, doc, source=str(args.source.resolve()), origin="update")
        before = load_feed(kind, folder)
        now = SystemClock().now().isoformat(timespec="seconds")
        path = install_feed(feed, doc, folder, updated_at=now)
    except FeedError as exc:
        print(f"wafsmith feeds update: {exc}", file=sys.stderr)
        return 2
    old, new = set(before.networks), set(feed.networks)
    print(json.dumps({
        "kind": kind,
        "written": str(path),
        **{k: v for k, v in feed.summary().items() if k not in ("kind", "origin")},
        "added": len(new - old),
        "removed": len(old - new),
        "replaced": before.origin,
    }, indent=2))
    return 0
