"""Derive the simulator's curated inputs from the shared corpora (run once; output committed).

``python -m engine.demo.simulator.derive_profile --corpora DIR [--out DIR]`` writes (by
default into the package's ``engine/demo/simulator/data``):

- ``benign_profile.json``: empirical distributions of benign browsing learnt from the real
  logs (elastic-apache-logs, Apache-2.0; secrepo-weblogs 2021 and 2022, "Web logs of
  www.secrepo.com, by Mike Sconzo, CC BY 4.0"): page and asset popularity, page→asset
  fan-out, think times, session lengths, user-agent mix, status mix, response sizes.
  Only aggregates and path/UA strings are kept: no client addresses.
- ``attack_material.json``: paths and payloads sampled from seclists-web (MIT) and
  fuzzdb-attack (BSD-3 / CC BY 3.0), tool tokens from bad-bot-lists (MIT).

Corpora without a licence (scanner-logs-dvwa, csic2010, honeynet) are never copied here;
the simulator reads them from a corpora folder at run time when it is given one.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from engine.demo.simulator.combined import read_combined, split_target
from engine.demo.simulator.config import DATA_DIR

STATIC_EXT = frozenset(
    [
        ".jpg",
        ".css",
        ".js",
        ".jpeg",
        ".png",
        ".svg",
        ".map",
        ".ico",
        ".otf",
        ".gif",
        ".mp3",
        ".mp4",
        ".woff",
        ".woff2",
        ".ttf",
        ".eot",
        ".webp",
        ".wav",
        ".gz",
        ".brotli",
        ".bvr",
        ".ts",
        ".bmp",
        ".avif",
        ".mjs",
    ]
)
# Weak labels of corpora.md §3: probes on these sites, not benign browsing.
_PROBE = re.compile(
    r"wp-login|wp-admin|xmlrpc|\.env|\.git|phpmyadmin|/self\.logs|\.php|cgi-bin|/admin", re.I
)
_BROWSER = re.compile(r"^Mozilla/5\.0 \((Windows|Macintosh|X11|Linux|iPhone|iPad)")
_NOT_BROWSER = re.compile(r"bot|crawl|spider|feed|python|curl|java|http", re.I)
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9/._~-]*$")
SESSION_GAP_MS = 30 * 60 * 1000
BENIGN_SOURCES = (
    "elastic-apache-logs/apache_logs.log",
    "secrepo-weblogs/access-2021-10-22_to_27.log",
    "secrepo-weblogs/access-2022-12-22.log",
)


def is_static(path: str) -> bool:
    """CrowdSec's static-resource rule (``peer-baselines.md`` §2.5)."""
    name = path.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return dot >= 0 and name[dot:].lower() in STATIC_EXT


def crawler_regex(corpora: Path, exclude_tags: frozenset[str] = frozenset()) -> re.Pattern[str]:
    """One regex over crawler-user-agents patterns, minus entries carrying ``exclude_tags``."""
    entries = json.loads((corpora / "crawler-user-agents/crawler-user-agents.json").read_text())
    keep = [e for e in entries if not exclude_tags & set(e.get("tags", ()))]
    return re.compile("|".join(f"(?:{e['pattern']})" for e in keep))


def _weights(counter: Counter, top: int) -> list[list]:
    return [[k, int(v)] for k, v in counter.most_common(top)]


def _sample(values: list[float], n: int, rng: np.random.Generator) -> list[float]:
    arr = np.asarray(values, dtype=float)
    if arr.size > n:
        arr = np.sort(rng.choice(arr, size=n, replace=False))
    return [round(float(x), 3) for x in arr]


def benign_profile(corpora: Path) -> dict:
    """Empirical browsing distributions from human (non-crawler, non-probe) clients."""
    crawler = crawler_regex(corpora)
    rng = np.random.default_rng(20260301)
    pages: Counter = Counter()
    assets: Counter = Counter()
    agents: Counter = Counter()
    status = {"page": Counter(), "asset": Counter()}
    size = {"page": [], "asset": []}
    methods: Counter = Counter()
    by_client: dict[tuple[str, str], list] = defaultdict(list)
    probers: set[str] = set()
    for name in BENIGN_SOURCES:
        log = read_combined(corpora / name)
        for rec in log.records:
            path, _ = split_target(rec.target)
            if path and _PROBE.search(path):
                probers.add(rec.ip)
        for rec in log.records:
            ua = rec.user_agent or ""
            path, _ = split_target(rec.target)
            if rec.ip in probers or not ua or crawler.search(ua) or path is None:
                continue
            if not _SAFE_PATH.match(path) or len(path) > 120:
                continue
            kind = "asset" if is_static(path) else "page"
            methods[rec.method or "-"] += 1
            if rec.status is not None:
                status[kind][str(rec.status)] += 1
            if rec.bytes_out:
                size[kind].append(rec.bytes_out)
            if rec.status in (200, 304):
                (assets if kind == "asset" else pages)[path] += 1
            if _BROWSER.match(ua) and not _NOT_BROWSER.search(ua):
                agents[ua] += 1
            by_client[(rec.ip, ua)].append((rec.time_ms, kind))
    think, session_pages, fanout, asset_gap = [], [], [], []
    for events in by_client.values():
        events.sort()
        n_pages, last_page, pending_assets = 0, None, 0
        for t, kind in events:
            if last_page is not None and t - last_page > SESSION_GAP_MS:
                session_pages.append(n_pages)
                fanout.append(pending_assets)
                n_pages, last_page, pending_assets = 0, None, 0
            if kind == "page":
                if last_page is not None:
                    think.append((t - last_page) / 1000.0)
                    fanout.append(pending_assets)
                n_pages, last_page, pending_assets = n_pages + 1, t, 0
            elif last_page is not None:
                pending_assets += 1
                asset_gap.append((t - last_page) / 1000.0)
        if n_pages:
            session_pages.append(n_pages)
            fanout.append(pending_assets)
    return {
        "provenance": {
            "script": "engine/demo/simulator/derive_profile.py",
            "sources": [
                "corpora/elastic-apache-logs/apache_logs.log (elastic/examples 6d86454, "
                "Apache-2.0; the real log of semicomplete.com, 2015)",
                "corpora/secrepo-weblogs/access-2021-10-22_to_27.log and access-2022-12-22.log "
                "(Web logs of www.secrepo.com, by Mike Sconzo, CC BY 4.0)",
            ],
            "selection": "clients whose UA matches no crawler-user-agents pattern and that sent "
            "no probe (wp-login, .env, .git, phpmyadmin, .php, cgi-bin, /admin, /self.logs); "
            "paths limited to [A-Za-z0-9/._~-]",
            "notes": "aggregates only: no client addresses are stored",
        },
        "pages": _weights(pages, 400),
        "assets": _weights(assets, 400),
        "user_agents": _weights(agents, 150),
        "methods": dict(methods),
        "status": {k: dict(v) for k, v in status.items()},
        "bytes": {k: _sample(v, 400, rng) for k, v in size.items()},
        "think_time_s": _sample([x for x in think if x > 0], 600, rng),
        "session_pages": _sample(session_pages, 600, rng),
        "asset_fanout": _sample(fanout, 600, rng),
        "asset_delay_s": _sample([x for x in asset_gap if x < 30], 600, rng),
    }


def _lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def attack_material(corpora: Path) -> dict:
    rng = np.random.default_rng(20260302)

    def pick(rel: str, n: int) -> list[str]:
        lines = _lines(corpora / rel)
        if len(lines) > n:
            idx = np.sort(rng.choice(len(lines), size=n, replace=False))
            lines = [lines[i] for i in idx]
        return lines

    def paths(rel: str, n: int) -> list[str]:
        out = []
        for p in pick(rel, n):
            p = p if p.startswith("/") else "/" + p
            out.append(p.replace(" ", "%20"))
        return out

    traversal = [
        t.replace("{FILE}", "etc/passwd")
        for t in pick(
            "fuzzdb-attack/attack_path-traversal_traversals-8-deep-exotic-encoding.txt", 80
        )
    ]
    bad_tokens = _lines(corpora / "bad-bot-lists/bad-user-agents.list")
    tools = ("Nikto", "Sqlmap", "Nuclei", "WPScan", "zgrab", "Masscan", "Nmap", "Dirbuster")
    return {
        "provenance": {
            "script": "engine/demo/simulator/derive_profile.py",
            "sources": [
                "corpora/seclists-web (danielmiessler/SecLists dd5960e, MIT)",
                "corpora/fuzzdb-attack (fuzzdb-project/fuzzdb 5656ab2, BSD-3 / CC BY 3.0)",
                "corpora/bad-bot-lists (mitchellkrogza/apache-ultimate-bad-bot-blocker "
                "82d5d73, MIT)",
            ],
            "tool_user_agents": "tool names are tokens of bad-user-agents.list; the full "
            "strings are the tools' default User-Agent headers, curated by hand",
        },
        "scan_paths_quickhits": paths("seclists-web/Discovery_Web-Content_quickhits.txt", 700),
        "scan_paths_common": paths("seclists-web/Discovery_Web-Content_common.txt", 700),
        "scan_paths_cgi": paths("seclists-web/Discovery_Web-Content_CGIs.txt", 200),
        "scan_paths_wordpress": paths(
            "seclists-web/Discovery_Web-Content_CMS_wordpress.fuzz.txt", 200
        ),
        "scan_paths_backdoors": paths(
            "fuzzdb-attack/discovery_predictable-filepaths_backdoors_shells.txt", 150
        ),
        "sqli": pick("seclists-web/Fuzzing_SQLi_Generic-SQLi.txt", 200)
        + _lines(corpora / "seclists-web/Fuzzing_Databases_sqli.auth.bypass.txt"),
        "xss": pick("seclists-web/Fuzzing_XSS_XSS-BruteLogic.txt", 100)
        + pick("fuzzdb-attack/attack_xss_xss-rsnake.txt", 60),
        "lfi": pick("seclists-web/Fuzzing_LFI_LFI-gracefulsecurity-linux.txt", 80) + traversal,
        "cmd": _lines(corpora / "fuzzdb-attack/attack_os-cmd-execution_command-execution-unix.txt"),
        "tool_tokens": [t for t in bad_tokens if t in tools],
        "tool_user_agents": [
            "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:Port Check)",
            "sqlmap/1.7.2#stable (https://sqlmap.org)",
            "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
            "WPScan v3.8.22 (https://wpscan.com/wordpress-security-scanner)",
            "Mozilla/5.0 zgrab/0.x",
            "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
            "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
            "DirBuster-1.0-RC1 (http://www.owasp.org/index.php/Category:OWASP_DirBuster_Project)",
        ],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", type=Path, required=True, help="e.g. ../shared/corpora")
    ap.add_argument("--out", type=Path, default=Path(str(DATA_DIR)))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, doc in (
        ("benign_profile.json", benign_profile(args.corpora)),
        ("attack_material.json", attack_material(args.corpora)),
    ):
        (args.out / name).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
