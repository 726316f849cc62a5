"""fail2ban-style HTTP jails (``peer-baselines.md`` §3) over canonical rows.

Three jails with fail2ban's defaults: a host is banned when ≥ ``maxretry`` (5) failures fall
within ``findtime`` (10 min), for ``bantime`` (10 min):
1. ``botsearch``: 404 on probe-like paths (an ``nginx-botsearch``-like pattern);
2. ``http-auth``: POST answered 401 or 403 (``nginx-http-auth``-like);
3. ``badbots``: a listed bad user agent, ``maxretry`` 1 (``apache-badbots``; the list is
   ``corpora/bad-bot-lists/bad-user-agents.list``).
fail2ban has no AWS WAF action; the baseline measures its detection only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.baselines.common import BaselineResult, Flag, Rows, file_end, nth_in_window
from benchmarks.baselines.crowdsec import bad_agent_regex, matches
from engine.schema import request as rq

VERSION = "fail2ban deffcbcd defaults (maxretry 5, findtime 10m, bantime 10m), HTTP jails"
MAXRETRY = 5
FINDTIME_MS = 600_000
POLL_DELAY_MS = 60_000
BOTSEARCH = (
    r"(?i)(admin|phpmyadmin|pma|myadmin|mysql|wp-login|wp-admin|xmlrpc|\.env|\.git|cgi-bin|"
    r"manager/html|\.php|backup|config|shell|setup|install)"
)


def fail2ban_http(alb_rows: pa.Table, corpora: Path | None = None) -> BaselineResult:
    """``fail2ban-http``: earliest ban over the three jails."""
    result = BaselineResult("fail2ban-http", VERSION)
    status = np.asarray(pc.fill_null(alb_rows[rq.STATUS], 0).to_numpy(zero_copy_only=False))
    method = np.asarray(pc.fill_null(alb_rows[rq.METHOD], "").to_pylist(), dtype=object)
    probe = np.asarray(
        pc.fill_null(
            pc.match_substring_regex(
                pc.fill_null(alb_rows[rq.PATH], ""),
                BOTSEARCH.removeprefix("(?i)"),
                ignore_case=True,
            ),
            False,
        )
    )
    jails = {
        "botsearch": ((status == 404) & probe, MAXRETRY),
        "http-auth": ((method == "POST") & np.isin(status, (401, 403)), MAXRETRY),
    }
    if corpora is not None:
        bad = matches(alb_rows[rq.USER_AGENT], bad_agent_regex(corpora))
        jails["badbots"] = (bad, 1)
    for name, (mask, maxretry) in jails.items():
        rows = Rows.of(alb_rows, mask)
        for code, (t, _) in nth_in_window(rows, maxretry, FINDTIME_MS).items():
            result.add(
                rows.ips[code],
                Flag(
                    t,
                    file_end(t) + POLL_DELAY_MS,
                    f"jail {name}: {maxretry} failures within 10 min",
                ),
            )
    return result
