"""Finalize: merge the panes of a sliding window into one feature vector per client.

Panes combine differently from same-pane partials (``detection.md`` §2): counts add, the
per-minute peak is a max over panes, active minutes count non-empty panes, bottom-k sets
union, and inter-arrival sums add plus the boundary gaps between consecutive active panes.
Everything is a sort by client code plus ``reduceat`` — no loop over clients.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.features import kmv
from engine.features.rows import COUNTERS, DISTINCT

C = {name: i for i, name in enumerate(COUNTERS)}
MIN_GAPS_FOR_CV = 3  # fewer gaps say nothing about regularity: report the Poisson value 1


@dataclass
class FeatureFrame:
    """Features of every client active in one window ending at ``window_end_ms``."""

    window_min: int
    window_end_ms: int
    codes: np.ndarray  # global client codes (int64), sorted
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    fingerprints: tuple[np.ndarray, np.ndarray] = (np.zeros(0, np.int32), np.zeros(0, np.uint32))

    def __len__(self) -> int:
        return len(self.codes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = num.astype(np.float64)
    den = den.astype(np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def finalize(
    panes: list, codes_by_pane: list[np.ndarray], window_min: int, end_ms: int, k: int
) -> FeatureFrame:
    """Features over ``panes`` (PanePartials in pane order) and their global client codes."""
    if not panes:
        return FeatureFrame(window_min, end_ms, np.zeros(0, np.int64))
    codes = np.concatenate(codes_by_pane)
    order = np.argsort(codes, kind="stable")  # stable: rows of one client stay in pane order
    cs = codes[order]
    starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
    uniq = cs[starts]
    n = len(uniq)
    counts = np.concatenate([p.counts for p in panes]).astype(np.int64)[order]
    sums = np.add.reduceat(counts, starts, axis=0)
    req_pane = counts[:, C["req"]]
    entropy = np.add.reduceat(
        np.concatenate([p.entropy for p in panes])[order].astype(np.int64), starts, axis=0
    )

    def cat(attr):
        return np.concatenate([getattr(p, attr) for p in panes])[order]

    first, last = cat("first_ms"), cat("last_ms")
    gap_n = np.add.reduceat(cat("gap_n"), starts).astype(np.float64)
    gap_sum = np.add.reduceat(cat("gap_sum"), starts).astype(np.float64)
    gap_sq = np.add.reduceat(cat("gap_sq"), starts).astype(np.float64)
    same = cs[1:] == cs[:-1]
    boundary = (first[1:] - last[:-1])[same].astype(np.float64)
    owner = np.searchsorted(uniq, cs[1:][same])
    gap_n += np.bincount(owner, minlength=n)
    gap_sum += np.bincount(owner, weights=boundary, minlength=n)
    gap_sq += np.bincount(owner, weights=boundary**2, minlength=n)

    group_of_row = np.repeat(np.arange(n), np.diff(np.r_[starts, len(cs)]))
    inv = np.empty(len(codes), dtype=np.int64)
    inv[order] = group_of_row
    distinct = {}
    offsets = np.cumsum([0] + [p.size for p in panes])
    for fam in DISTINCT:
        gs = np.concatenate(
            [inv[off + p.distinct[fam][0]] for off, p in zip(offsets[:-1], panes, strict=True)]
        )
        hs = np.concatenate([p.distinct[fam][1] for p in panes])
        distinct[fam] = kmv.bottom_k(gs, hs, k)

    col = {name: sums[:, i].astype(np.float64) for name, i in C.items()}
    req = col["req"]
    f: dict[str, np.ndarray] = {}
    f["req_count"] = req
    f["peak_req_per_min"] = np.maximum.reduceat(req_pane, starts).astype(np.float64)
    f["active_minutes_frac"] = np.diff(np.r_[starts, len(cs)]) / float(window_min)
    f["req_per_min"] = req / float(window_min)
    mean_gap = _ratio(gap_sum, gap_n)
    var_gap = np.maximum(_ratio(gap_sq, gap_n) - mean_gap**2, 0.0)
    cv = np.where(mean_gap > 0, np.sqrt(var_gap) / np.where(mean_gap > 0, mean_gap, 1.0), 0.0)
    f["interarrival_cv"] = np.where(gap_n >= MIN_GAPS_FOR_CV, cv, 1.0)
    f["interarrival_mean_s"] = mean_gap / 1000.0
    f["span_s"] = (np.maximum.reduceat(last, starts) - np.minimum.reduceat(first, starts)) / 1e3
    f["bytes_out_mean"] = _ratio(np.add.reduceat(cat("bytes_out"), starts), req)
    known = col["has_status"]
    f["err3xx_ratio"] = _ratio(col["s3xx"], known)
    f["err4xx_ratio"] = _ratio(col["s4xx"], known)
    f["err404_ratio"] = _ratio(col["s404"], known)
    f["err5xx_ratio"] = _ratio(col["s5xx"], known)
    f["auth_fail_ratio"] = _ratio(col["auth_fail"], known)
    est = {fam: kmv.estimate(*distinct[fam], k, n) for fam in DISTINCT}
    f["distinct_paths"] = est["path"]
    f["path_breadth"] = _ratio(est["path"], req)
    p = _ratio(entropy, entropy.sum(axis=1, keepdims=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        f["path_entropy"] = -np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0).sum(axis=1)
    f["top_bucket"] = entropy.argmax(axis=1).astype(np.float64)
    f["top_bucket_share"] = _ratio(entropy.max(axis=1), req)
    mean_d = _ratio(col["depth_sum"], req)
    f["depth_std"] = np.sqrt(np.maximum(_ratio(col["depth_sq"], req) - mean_d**2, 0.0))
    f["asset_frac"] = _ratio(col["asset"], req)
    f["html_to_asset_ratio"] = (req - col["asset"]) / (col["asset"] + 1.0)
    f["robots_txt_hit"] = (col["robots"] > 0).astype(np.float64)
    for m in ("get", "head", "post", "other_method"):
        f[f"{m}_frac"] = _ratio(col[m], req)
    f["login_post_count"] = col["login_post"]
    f["login_fail_count"] = col["login_fail"]
    f["login_fail_ratio"] = _ratio(col["login_fail"], col["login_post"])
    f["login_post_frac"] = _ratio(col["login_post"], req)
    f["login_path_frac"] = _ratio(col["login_path"], req)
    f["no_referer_frac"] = _ratio(col["no_referer"], col["referer_known"])
    f["ua_distinct"] = est["ua"]
    f["fingerprint_distinct"] = est["fingerprint"]
    f["probe_404_distinct"] = est["probe"]
    f["sensitive_path_hits"] = est["sensitive_path"]
    f["sensitive_req"] = col["sensitive"]
    f["injection_hits"] = col["injection"]
    f["tool_ua_hits"] = col["tool_ua"]
    f["tool_ua"] = (col["tool_ua"] > 0).astype(np.float64)
    f["crawler_ua_frac"] = _ratio(col["crawler_ua"], req)
    f["crawler_verified_frac"] = _ratio(col["crawler_verified"], req)
    f["health_frac"] = _ratio(col["health"], req)
    f["waf_acted_frac"] = _ratio(col["waf_acted"], req)
    f["browser_ua_frac"] = _ratio(col["browser_ua"], req)
    f["s404_count"] = col["s404"]
    f["s4xx_count"] = col["s4xx"]
    f["asset_count"] = col["asset"]
    return FeatureFrame(window_min, end_ms, uniq, f, distinct["fingerprint"])


def rescale(frame: FeatureFrame, window_min: int) -> FeatureFrame:
    """``frame`` as a longer window over the very same panes: only the per-minute
    normalisations change (no activity in the extra minutes)."""
    cols = dict(frame.columns)
    factor = frame.window_min / float(window_min)
    cols["active_minutes_frac"] = cols["active_minutes_frac"] * factor
    cols["req_per_min"] = cols["req_per_min"] * factor
    return FeatureFrame(window_min, frame.window_end_ms, frame.codes, cols, frame.fingerprints)
