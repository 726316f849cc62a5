"""Run wafsmith's analysis over the real (unlabelled) corpora and say what it flags and why.

    python -m benchmarks.analyze_corpora [--corpora DIR] [--json FILE] [--max-rows N]

The corpora are Apache combined logs, so they are read with the benchmark's own reader
(``engine.demo.simulator.combined``) into canonical tables (``source`` = alb, the Apache status
in both status columns). There are no labels; the report gives the weak expectations of
``corpora.md`` §3–§4 next to what was flagged:

- elastic: Googlebot ``66.249.73.135`` and the feed reader ``46.105.14.53`` must stay
  unblocked; the WordPress probers are the only expected blocks.
- secrepo: clients probing ``/.env``, ``/.git``, ``wp-login.php``, ``phpmyadmin`` should be
  flagged; crawler-list matches should not be blocked (these weak labels are derived by rules,
  so agreement partly measures the engine against the same rules it encodes).
- honeynet: attack-only; scanner logs: one file = one tool = (almost) one client.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from benchmarks import SHARED_CORPORA
from engine.demo.simulator.combined import read_combined, to_canonical
from engine.demo.simulator.derive_profile import crawler_regex
from engine.schema import request as rq

FILES = (
    "elastic-apache-logs/apache_logs.log",
    "secrepo-weblogs/access-2018-12-15.log",
    "secrepo-weblogs/access-2021-10-22_to_27.log",
    "secrepo-weblogs/access-2022-12-22.log",
    "honeynet-2004-httpd/access_log_2004-07-13_to_2004-10-11.log",
    "scanner-logs-dvwa/acunetix.txt",
    "scanner-logs-dvwa/netsparker.txt",
    "scanner-logs-dvwa/w3af.txt",
)
MUST_NOT_BLOCK = {"66.249.73.135": "Googlebot (elastic)", "46.105.14.53": "feed reader (elastic)"}
PROBE = re.compile(r"/\.env|/\.git|wp-login\.php|phpmyadmin", re.I)


def weak_labels(table, crawler: re.Pattern[str]) -> tuple[set[str], set[str]]:
    """(probers, declared crawlers) by the rules of ``corpora.md`` §3."""
    ips = table[rq.CLIENT_IP].to_pylist()
    paths = pc.fill_null(table[rq.PATH], "").to_pylist()
    agents = pc.fill_null(table[rq.USER_AGENT], "").to_pylist()
    probers = {ip for ip, p in zip(ips, paths, strict=True) if PROBE.search(p)}
    crawlers = {ip for ip, a in zip(ips, agents, strict=True) if a and crawler.search(a)}
    return probers, crawlers - probers


def analyze_file(path: Path, crawler: re.Pattern[str], analyze) -> dict[str, Any]:
    log = read_combined(path)
    table = to_canonical(log)
    probers, crawlers = weak_labels(table, crawler)
    t0 = time.perf_counter()
    result = analyze([table])
    seconds = time.perf_counter() - t0
    flagged: dict[str, dict[str, Any]] = {}
    for d in result.decisions:
        action = str(getattr(d.action, "value", d.action))
        for ip in {d.client, *d.members}:
            if ip not in flagged or action == "block":
                flagged[ip] = {
                    "action": action,
                    "detector": d.detector,
                    "reason": d.reasons[0] if d.reasons else "",
                    "decided_at": d.decided_at.isoformat(),
                }
    enforcing = {ip for ip, f in flagged.items() if f["action"] != "count"}
    blocked = {ip for ip, f in flagged.items() if f["action"] == "block"}
    return {
        "file": str(path),
        "lines": len(log.records) + log.malformed,
        "unparsed_lines": log.malformed,
        "rows": table.num_rows,
        "clients": len(set(table[rq.CLIENT_IP].to_pylist())),
        "seconds": round(seconds, 2),
        "decisions": len(result.decisions),
        "by_detector": dict(Counter(f["detector"] for f in flagged.values())),
        "by_action": dict(Counter(f["action"] for f in flagged.values())),
        "weak_probers": len(probers),
        "weak_probers_flagged": len(probers & enforcing),
        "declared_crawlers": len(crawlers),
        "declared_crawlers_blocked": sorted(crawlers & blocked),
        "must_not_block_blocked": sorted(set(MUST_NOT_BLOCK) & blocked),
        "flagged": flagged,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--corpora",
        type=Path,
        default=SHARED_CORPORA,
        help="the corpora folder (default: ../shared/corpora beside the checkout)",
    )
    ap.add_argument("--json", type=Path)
    ap.add_argument("--show", type=int, default=8, help="flagged clients listed per file")
    args = ap.parse_args(argv)
    try:
        from engine.pipeline import analyze_tables
    except ImportError as exc:
        print(f"wafsmith analysis is missing ({exc}); nothing to report")
        return 1
    # "declared crawler" = a crawler-list match that is not an HTTP library or a scanner
    crawler = crawler_regex(args.corpora, frozenset({"http-library", "scanner"}))
    reports = []
    for name in FILES:
        path = args.corpora / name
        if not path.is_file():
            print(f"skip {name}: not found")
            continue
        rep = analyze_file(path, crawler, analyze_tables)
        reports.append(rep)
        print(
            f"\n== {name}: {rep['rows']} rows ({rep['unparsed_lines']} unparsed), "
            f"{rep['clients']} clients, {rep['decisions']} decisions in {rep['seconds']} s"
        )
        print(f"   actions {rep['by_action']}  detectors {rep['by_detector']}")
        print(
            f"   weak-label probers flagged {rep['weak_probers_flagged']}/{rep['weak_probers']}"
            f"; declared crawlers blocked {len(rep['declared_crawlers_blocked'])}"
            f"/{rep['declared_crawlers']}; must-not-block blocked: "
            f"{rep['must_not_block_blocked'] or 'none'}"
        )
        shown = sorted(rep["flagged"].items(), key=lambda kv: kv[1]["decided_at"])[: args.show]
        for ip, f in shown:
            print(f"   {ip:16} {f['action']:10} {f['detector']:22} {f['reason'][:90]}")
    if args.json:
        args.json.write_text(json.dumps(reports, indent=1) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
