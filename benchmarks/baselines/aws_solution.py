"""AWS "Security Automations for AWS WAF" v4.0.4 log-parser detectors (``peer-baselines.md`` §1).

- HTTP flood, Lambda parser (§1.4b): per WAF-log object, per-(minute, IP) request counts;
  offender when a minute's count ≥ threshold. ``documented`` uses ``RequestThreshold / 5``
  (20), ``as-shipped`` the verified bug ``RequestThreshold`` (100). Objects are the 300 s
  Firehose buffers, so the block is in force at buffer end + parse/update delay.
- HTTP flood, Athena parser (§1.4c): the same per-minute test with ``RequestThreshold / 5``,
  seen by the first 5-minute schedule tick after the records' buffer has landed.
- Scanners & probes (§1.5): per-(minute, IP) count of origin statuses 400/401/403/404/405
  (ALB ``target_status_code``) ≥ ``ErrorThreshold`` (50), from ALB files (5 min per node).
- The 10,000-address cap (§1.8): ``as-shipped`` Lambda stops updating the set once offenders
  exceed it (``UnboundLocalError`` swallowed); the others keep the top 10,000.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.baselines.common import (
    FIVE_MIN_MS,
    MINUTE_MS,
    BaselineResult,
    Flag,
    Rows,
    file_end,
    nth_in_bucket,
)
from engine.schema import request as rq

VERSION = "aws-waf-security-automations v4.0.4 (28b94cf)"
REQUEST_THRESHOLD = 100  # per 5 minutes, documented
ERROR_THRESHOLD = 50  # per minute
ERROR_CODES = (400, 401, 403, 404, 405)
IP_SET_CAP = 10_000
PARSE_DELAY_MS = 60_000  # S3 event + Lambda parse + 3 WAF calls per set + sleep(5)
ATHENA_SCHEDULE_MS = FIVE_MIN_MS
QUERY_DELAY_MS = 60_000


def _apply_cap(result: BaselineResult, shipped: bool) -> BaselineResult:
    """Enforce the 10,000-entry cap in order of the times blocks would land."""
    if len(result.flagged) <= IP_SET_CAP:
        return result
    ordered = sorted(result.flagged.items(), key=lambda kv: (kv[1].effective_ms, kv[0]))
    if shipped:  # the update that would exceed the cap fails, and every later one too
        cutoff = ordered[IP_SET_CAP][1].effective_ms
        result.flagged = {ip: f for ip, f in ordered if f.effective_ms < cutoff}
    else:
        result.flagged = dict(ordered[:IP_SET_CAP])
    return result


def flood_lambda(waf_rows: pa.Table, variant: str = "documented") -> BaselineResult:
    """``aws-sa-flood-lambda`` over WAF-log rows; ``variant`` is documented or as-shipped."""
    if variant not in ("documented", "as-shipped"):
        raise ValueError(f"unknown variant {variant!r}")
    threshold = REQUEST_THRESHOLD // 5 if variant == "documented" else REQUEST_THRESHOLD
    result = BaselineResult(
        f"aws-sa-flood-lambda-{variant}", f"{VERSION}; {threshold} requests in one minute"
    )
    rows = Rows.of(waf_rows)
    for code, (t, _) in nth_in_bucket(rows, threshold, MINUTE_MS).items():
        result.add(
            rows.ips[code],
            Flag(t, file_end(t) + PARSE_DELAY_MS, f"≥ {threshold} requests in one minute"),
        )
    return _apply_cap(result, shipped=variant == "as-shipped")


def flood_athena(waf_rows: pa.Table) -> BaselineResult:
    """``aws-sa-flood-athena``: COUNT(*) per (IP, minute) ≥ RequestThreshold/5 (20.0)."""
    threshold = REQUEST_THRESHOLD / (ATHENA_SCHEDULE_MS // MINUTE_MS)
    result = BaselineResult("aws-sa-flood-athena", f"{VERSION}; ≥ {threshold} per minute")
    rows = Rows.of(waf_rows)
    for code, (t, _) in nth_in_bucket(rows, int(np.ceil(threshold)), MINUTE_MS).items():
        tick = file_end(t) + ATHENA_SCHEDULE_MS  # first schedule after the buffer landed
        result.add(
            rows.ips[code],
            Flag(t, tick + QUERY_DELAY_MS, f"≥ {threshold:g} requests in one minute"),
        )
    return _apply_cap(result, shipped=False)


def _errors(alb_rows: pa.Table) -> np.ndarray:
    return np.asarray(
        pc.fill_null(
            pc.is_in(alb_rows[rq.ORIGIN_STATUS], value_set=pa.array(ERROR_CODES, pa.int16())), False
        )
    )


def scanner(alb_rows: pa.Table, mode: str = "lambda") -> BaselineResult:
    """``aws-sa-scanner-lambda`` / ``-athena``: ≥ 50 origin 4xx errors in one minute."""
    if mode not in ("lambda", "athena"):
        raise ValueError(f"unknown mode {mode!r}")
    result = BaselineResult(
        f"aws-sa-scanner-{mode}", f"{VERSION}; ≥ {ERROR_THRESHOLD} errors {ERROR_CODES} per minute"
    )
    rows = Rows.of(alb_rows, _errors(alb_rows))
    delay = PARSE_DELAY_MS if mode == "lambda" else ATHENA_SCHEDULE_MS + QUERY_DELAY_MS
    for code, (t, _) in nth_in_bucket(rows, ERROR_THRESHOLD, MINUTE_MS).items():
        result.add(
            rows.ips[code],
            Flag(t, file_end(t) + delay, f"≥ {ERROR_THRESHOLD} error responses in one minute"),
        )
    return _apply_cap(result, shipped=mode == "lambda")
