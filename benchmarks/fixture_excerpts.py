"""Rebuild the corpus copies and excerpts under ``data/fixtures`` from the shared corpora.

    python -m benchmarks.fixture_excerpts [--shared ../shared] [--out data/fixtures]

Run once when a source changes; the output is committed, so tests never read ``../shared``.
What is copied verbatim and what is cut or rewritten (and why) is listed in
``data/fixtures/README.md``; this script is the exact recipe. Byte-deterministic: gzip
members carry mtime 0, and address remapping depends only on the input's line order.
"""

from __future__ import annotations

import argparse
import gzip
import ipaddress
import json
import shutil
from pathlib import Path

from benchmarks import SHARED_CORPORA
from engine.features.config import PATTERN_DIR

REPO = Path(__file__).resolve().parents[1]
# Verbatim copies: (folder under shared, file names or None for all, folder under fixtures).
VERBATIM: tuple[tuple[str, tuple[str, ...] | None, str], ...] = (
    ("samples/aws-docs", None, "samples/aws-docs"),
    ("samples/aws-solution", None, "samples/aws-solution"),
    ("corpora/aws-log-fixtures", ("LICENSE-Apache-2.0.txt",), "samples/aws-solution"),
    ("corpora/bad-bot-lists", ("bad-user-agents.list", "LICENSE-MIT.md"), "corpora/bad-bot-lists"),
    ("corpora/crawler-user-agents", ("LICENSE-MIT.txt",), "corpora/crawler-user-agents"),
    ("corpora/elastic-apache-logs", ("LICENSE-Apache-2.0.txt",), "corpora/elastic-apache-logs"),
)
CF_SAMPLE = "cf-access-log-sample.gz"
# Lines kept of the 28,949-line synthetic CloudFront sample: a head and its IPv6 tail.
CF_KEEP = (range(0, 3000), range(28700, 28949))
ELASTIC_LINES = 1000
SECREPO_LINES = 1200
# Clients are renumbered into 198.18.0.0/15 (RFC 2544), one /24 per original /24.
REMAP_BASE = int(ipaddress.IPv4Address("198.18.0.0"))
REMAP_SUBNETS = 512


def gzip_bytes(data: bytes) -> bytes:
    """gzip with mtime 0 and no file name: the same input always gives the same bytes."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def crawler_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The verified-crawler networks the engine ships (their addresses are kept as they are)."""
    nets = []
    for line in (PATTERN_DIR / "crawler_networks.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            nets.append(ipaddress.ip_network(line.split()[-1]))
    return nets


def remap_clients(lines: list[str], keep: list) -> list[str]:
    """Each combined-log line with its client address renumbered, /24 structure preserved.

    Addresses inside ``keep`` (published crawler networks) stay, so verified crawlers stay
    verified; anything that is not an IPv4 address is left as it is.
    """
    subnets: dict[int, int] = {}
    out = []
    for line in lines:
        head, sep, rest = line.partition(" ")
        try:
            addr = ipaddress.IPv4Address(head)
        except ValueError:
            out.append(line)
            continue
        if any(addr in net for net in keep):
            out.append(line)
            continue
        prefix = int(addr) >> 8
        index = subnets.setdefault(prefix, len(subnets))
        if index >= REMAP_SUBNETS:
            raise ValueError("more /24s than 198.18.0.0/15 holds")
        new = ipaddress.IPv4Address(REMAP_BASE + (index << 8) + (int(addr) & 0xFF))
        out.append(f"{new}{sep}{rest}")
    return out


def head_lines(path: Path, n: int) -> list[str]:
    with path.open(encoding="utf-8", newline="") as f:
        return [line for _, line in zip(range(n), f, strict=False)]


def build(shared: Path, out: Path) -> list[Path]:
    written: list[Path] = []

    def write(rel: str, data: bytes) -> None:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(target)

    for folder, names, dest in VERBATIM:
        src = shared / folder
        for name in names or sorted(p.name for p in src.iterdir() if p.name != CF_SAMPLE):
            target = out / dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / name, target)
            written.append(target)

    cf = gzip.decompress((shared / "samples/aws-solution" / CF_SAMPLE).read_bytes())
    cf_lines = cf.splitlines(keepends=True)
    kept = b"".join(cf_lines[i] for r in CF_KEEP for i in r)
    write("samples/aws-solution/cf-access-log-sample-excerpt.gz", gzip_bytes(kept))

    crawlers = shared / "corpora/crawler-user-agents/crawler-user-agents.json"
    entries = json.loads(crawlers.read_text(encoding="utf-8"))
    slim = [{"pattern": e["pattern"], "tags": e.get("tags", [])} for e in entries]
    text = "[\n" + ",\n".join(json.dumps(e, ensure_ascii=False) for e in slim) + "\n]\n"
    write("corpora/crawler-user-agents/crawler-user-agents.json", text.encode())

    keep = crawler_networks()
    for rel, n in (
        ("corpora/elastic-apache-logs/apache_logs.log", ELASTIC_LINES),
        ("corpora/secrepo-weblogs/access-2018-12-15.log", SECREPO_LINES),
    ):
        lines = remap_clients(head_lines(shared / rel, n), keep)
        name = rel.replace(".log", f"-first{n}.log")
        write(name, "".join(lines).encode("utf-8"))
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=SHARED_CORPORA.parent, help="shared folder")
    ap.add_argument("--out", type=Path, default=REPO / "data" / "fixtures")
    args = ap.parse_args(argv)
    if not (args.shared / "corpora").is_dir():
        ap.error(f"{args.shared}: no corpora folder there")
    for path in build(args.shared, args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
