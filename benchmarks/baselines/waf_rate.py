"""AWS WAF's native per-IP rate-based rule (``peer-baselines.md`` §5).

Semantics simulated: key = client IP; every 10 s tick *t* (epoch-aligned) WAF counts the key's
requests with ``t - W < ts <= t``; the key is limited from the first tick where the count
*exceeds* ``Limit``. All requests count (including ones the rule itself would block) and the
boundary is ``>``: both are (unverified) in AWS's documentation, so they are stated here.
The rule acts inline, so the block is in force at the tick itself.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from benchmarks.baselines.common import BaselineResult, Flag, Rows

TICK_MS = 10_000
VERSION = "AWS WAF rate-based rule, AggregateKeyType IP, evaluated every 10 s (simulated)"


def waf_rate_rule(
    table: pa.Table, limit: int, window_s: int = 300, tick_ms: int = TICK_MS
) -> BaselineResult:
    """Clients a rate-based rule with ``limit`` per ``window_s`` seconds would block."""
    if window_s not in (60, 120, 300, 600):
        raise ValueError(f"WAF rate rules allow windows of 60/120/300/600 s, not {window_s}")
    result = BaselineResult(f"waf-rbr-{limit}", f"{VERSION}; Limit {limit} per {window_s} s")
    rows = Rows.of(table)
    if len(rows) == 0:
        return result
    window = window_s * 1000
    base = int(rows.ts.min()) - window
    rel = rows.ts - base
    span = int(rel.max()) + 2 * window + tick_ms
    key = rows.code * span + rel
    tick = -(-rows.ts // tick_ms) * tick_ms  # first tick at or after each request
    tick_rel = tick - base
    hi = np.searchsorted(key, rows.code * span + tick_rel, side="right")
    lo = np.searchsorted(key, rows.code * span + tick_rel - window, side="right")
    count = hi - lo
    over = np.flatnonzero(count > limit)
    if over.size == 0:
        return result
    order = np.lexsort((tick[over], rows.code[over]))
    over = over[order]
    codes, first = np.unique(rows.code[over], return_index=True)
    for c, f in zip(codes.tolist(), first.tolist(), strict=True):
        i = over[f]
        t = int(tick[i])
        result.add(rows.ips[c], Flag(t, t, f"{int(count[i])} requests in {window_s} s > {limit}"))
    return result
