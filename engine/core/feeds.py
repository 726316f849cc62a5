"""Published address feeds: CloudFront's ranges and the search engines' crawler networks.

The engine ships a dated copy of each feed as package data (``engine/data/feeds/``, with its
source in ``sources.json``); ``wafsmith feeds update --from FILE`` validates a newer copy and
writes it into a feeds folder (``WAFSMITH_FEEDS_DIR``, or ``~/.local/share/wafsmith/feeds``)
that takes precedence over the packaged one. Verification is by published networks only,
never by reverse DNS at run time.

Two formats are understood: AWS's ``ip-ranges.json`` (``prefixes[].ip_prefix`` /
``ipv6_prefixes[].ipv6_prefix`` with a ``service``), and the crawler format Google and Bing
share (``prefixes[].ipv4Prefix`` / ``ipv6Prefix``, ``creationTime``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from engine.core.errors import ConfigError
from engine.core.netaddr import AddressError, CidrSet, parse_network

CLOUDFRONT = "cloudfront"
CRAWLER_FEEDS = {"googlebot": "googlebot", "bingbot": "bingbot"}  # feed kind -> UA token
FEED_KINDS = (CLOUDFRONT, *CRAWLER_FEEDS)
CLOUDFRONT_SERVICES = ("CLOUDFRONT", "CLOUDFRONT_ORIGIN_FACING")
AWS_FORMAT = "aws-ip-ranges"
CRAWLER_FORMAT = "crawler-prefixes"
FEEDS_DIR_ENV = "WAFSMITH_FEEDS_DIR"
SOURCES = "sources.json"
# A feed entry wider than this is refused: no publisher's network is that broad, and a typo
# such as 0.0.0.0/0 would otherwise exempt (or trust) the whole Internet.
MIN_PREFIX = {4: 8, 6: 16}


class FeedError(ConfigError):
    """A feed file that cannot be used: unreadable, of an unknown format, or with a bad entry."""


@dataclass(frozen=True)
class Feed:
    """One feed as loaded: its networks and where they come from."""

    kind: str
    networks: tuple[str, ...]
    source: str
    published: str | None
    origin: str  # "packaged" or the path of the updated copy
    by_service: tuple[tuple[str, int], ...] = ()

    def cidrs(self) -> CidrSet:
        return _cidr_set(self.networks)

    def summary(self) -> dict[str, Any]:
        v6 = sum(":" in n for n in self.networks)
        return {
            "kind": self.kind,
            "networks": len(self.networks),
            "ipv4": len(self.networks) - v6,
            "ipv6": v6,
            "published": self.published,
            "source": self.source,
            "origin": self.origin,
            **({"services": dict(self.by_service)} if self.by_service else {}),
        }


@lru_cache(maxsize=16)
def _cidr_set(networks: tuple[str, ...]) -> CidrSet:
    return CidrSet(networks)


def packaged_dir() -> Path:
    return Path(str(resources.files("engine.data") / "feeds"))


def default_feeds_dir() -> Path:
    """Where updated feeds live: ``$WAFSMITH_FEEDS_DIR``, else the user's data folder."""
    env = os.environ.get(FEEDS_DIR_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "wafsmith" / "feeds"


# --- parsing ---------------------------------------------------------------------------------
def detect_format(doc: Any) -> str:
    if not isinstance(doc, dict) or not isinstance(doc.get("prefixes"), list):
        raise FeedError("not a feed: expected a JSON object with a 'prefixes' list")
    first = next((p for p in doc["prefixes"] if isinstance(p, dict)), {})
    if "ip_prefix" in first or "syncToken" in doc or "ipv6_prefixes" in doc:
        return AWS_FORMAT
    if "ipv4Prefix" in first or "ipv6Prefix" in first or "creationTime" in doc:
        return CRAWLER_FORMAT
    raise FeedError("unknown feed format: neither AWS ip-ranges.json nor a crawler list")


def _network(text: Any, where: str) -> str:
    try:
        version, _, plen = parse_network(text, strict=True)
    except AddressError as exc:
        raise FeedError(f"{where}: {exc}") from None
    if plen < MIN_PREFIX[version]:
        raise FeedError(f"{where}: {text!r} is wider than /{MIN_PREFIX[version]}: refused")
    return str(text).strip()


def parse_aws(doc: dict, services: tuple[str, ...] = CLOUDFRONT_SERVICES) -> dict[str, list[str]]:
    """Per service in ``services``, its networks from an ``ip-ranges.json`` document."""
    out: dict[str, list[str]] = {s: [] for s in services}
    for key, field in (("prefixes", "ip_prefix"), ("ipv6_prefixes", "ipv6_prefix")):
        entries = doc.get(key, [])
        if not isinstance(entries, list):
            raise FeedError(f"'{key}' must be a list")
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or field not in entry or "service" not in entry:
                raise FeedError(f"{key}[{i}]: expected an object with '{field}' and 'service'")
            if entry["service"] in out:
                out[entry["service"]].append(_network(entry[field], f"{key}[{i}]"))
    return out


def parse_crawler(doc: dict) -> list[str]:
    """The networks of a Google/Bing crawler list."""
    out = []
    for i, entry in enumerate(doc["prefixes"]):
        text = entry.get("ipv4Prefix", entry.get("ipv6Prefix")) if isinstance(entry, dict) else None
        if text is None:
            raise FeedError(f"prefixes[{i}]: expected 'ipv4Prefix' or 'ipv6Prefix'")
        out.append(_network(text, f"prefixes[{i}]"))
    return out


def feed_from_document(kind: str, doc: Any, *, source: str, origin: str) -> Feed:
    """Validate ``doc`` as feed ``kind``; raises ``FeedError`` naming the bad entry."""
    fmt = detect_format(doc)
    if kind == CLOUDFRONT:
        if fmt != AWS_FORMAT:
            raise FeedError("the cloudfront feed must be in AWS's ip-ranges.json format")
        per = parse_aws(doc)
        nets = tuple(dict.fromkeys(n for s in CLOUDFRONT_SERVICES for n in per[s]))
        published = _aws_date(doc.get("createDate"))
        by_service = tuple((s, len(per[s])) for s in CLOUDFRONT_SERVICES)
    elif kind in CRAWLER_FEEDS:
        if fmt != CRAWLER_FORMAT:
            raise FeedError(f"the {kind} feed must be a crawler list (prefixes[].ipv4Prefix)")
        nets = tuple(dict.fromkeys(parse_crawler(doc)))
        published, by_service = doc.get("creationTime"), ()
    else:
        raise FeedError(f"unknown feed kind {kind!r}; known: {', '.join(FEED_KINDS)}")
    if not nets:
        raise FeedError(f"the {kind} feed holds no networks")
    return Feed(kind, nets, source, published, origin, by_service)


def _aws_date(text: Any) -> str | None:
    """AWS's ``createDate`` (``YYYY-MM-DD-hh-mm-ss``, UTC) as ISO 8601."""
    if not isinstance(text, str) or len(text.split("-")) != 6:
        return None
    y, mo, d, h, mi, s = text.split("-")
    return f"{y}-{mo}-{d}T{h}:{mi}:{s}Z"


# --- loading -----------------------------------------------------------------------------------
def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedError(f"cannot read feed {path}: {exc}") from None


def load_feed(kind: str, feeds_dir: Path | None = None) -> Feed:
    """Feed ``kind``: the updated copy in ``feeds_dir`` when there is one, else the packaged."""
    if kind not in FEED_KINDS:
        raise FeedError(f"unknown feed kind {kind!r}; known: {', '.join(FEED_KINDS)}")
    folder = Path(feeds_dir) if feeds_dir is not None else default_feeds_dir()
    updated = folder / f"{kind}.json"
    if updated.is_file():
        meta = _read_json(folder / SOURCES).get(kind, {}) if (folder / SOURCES).is_file() else {}
        return _load(updated, kind, meta.get("source", str(updated)), str(updated),
                     updated.stat().st_mtime_ns)
    meta = _read_json(packaged_dir() / SOURCES)[kind]
    return _load(packaged_dir() / meta["file"], kind, meta["source"], "packaged", 0)


@lru_cache(maxsize=32)
def _load(path: Path, kind: str, source: str, origin: str, _mtime: int) -> Feed:
    return feed_from_document(kind, _read_json(path), source=source, origin=origin)


def cloudfront_services(feeds_dir: Path | None = None) -> dict[str, list[str]]:
    """CloudFront's networks per service (CLOUDFRONT edges, CLOUDFRONT_ORIGIN_FACING)."""
    folder = Path(feeds_dir) if feeds_dir is not None else default_feeds_dir()
    path = folder / f"{CLOUDFRONT}.json"
    if not path.is_file():
        path = packaged_dir() / f"{CLOUDFRONT}.json"
    return parse_aws(_read_json(path))


def feed_networks(kinds: tuple[str, ...], feeds_dir: Path | None = None) -> list[str]:
    return [n for k in kinds for n in load_feed(k, feeds_dir).networks]


def install_feed(feed: Feed, doc: Any, feeds_dir: Path, *, updated_at: str) -> Path:
    """Write a validated feed into ``feeds_dir`` (only the entries the engine reads) and record
    its source beside it; returns the written path."""
    feeds_dir.mkdir(parents=True, exist_ok=True)
    if feed.kind == CLOUDFRONT:
        keep = set(CLOUDFRONT_SERVICES)
        doc = {
            **{k: v for k, v in doc.items() if k not in ("prefixes", "ipv6_prefixes")},
            "prefixes": [p for p in doc.get("prefixes", []) if p["service"] in keep],
            "ipv6_prefixes": [p for p in doc.get("ipv6_prefixes", []) if p["service"] in keep],
        }
    path = feeds_dir / f"{feed.kind}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    sources_path = feeds_dir / SOURCES
    sources = _read_json(sources_path) if sources_path.is_file() else {}
    sources[feed.kind] = {
        "file": path.name,
        "source": feed.source,
        "published": feed.published,
        "updated_at": updated_at,
    }
    os.replace(tmp, path)
    sources_tmp = sources_path.with_suffix(".json.tmp")
    sources_tmp.write_text(json.dumps(sources, indent=1) + "\n", encoding="utf-8")
    os.replace(sources_tmp, sources_path)
    return path
