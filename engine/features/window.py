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
    # sorted ``code << 32 | hash`` keys of the window's fingerprint and path sets
    fingerprint_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    path_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def fingerprints(self) -> tuple[np.ndarray, np.ndarray]:
        """(row, fingerprint hash) pairs, sorted by row then hash (built on demand)."""
        return _pairs(self.fingerprint_keys, self.codes)

    @property
    def paths(self) -> tuple[np.ndarray, np.ndarray]:
        """(row, path hash) pairs of each client's bottom-k path set (exact below k)."""
        return _pairs(self.path_keys, self.codes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = num.astype(np.float64)
    den = den.astype(np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


ROW_ATTRS = ("counts", "entropy", "first_ms", "last_ms", "gap_n", "gap_sum", "gap_sq", "bytes_out")
_LOW32 = np.uint64(0xFFFFFFFF)


def pane_keys(part, codes: np.ndarray) -> dict[str, np.ndarray]:
    """A pane's bottom-k entries as sorted ``code << 32 | hash`` keys (global codes)."""
    out = {}
    for fam in DISTINCT:
        g, h = part.distinct[fam]
        keys = (codes[g].astype(np.uint64) << np.uint64(32)) | h.astype(np.uint64)
        out[fam] = np.sort(keys)
    return out


def finalize(
    panes: list, codes_by_pane: list[np.ndarray], window_min: int, end_ms: int, k: int
) -> FeatureFrame:
    """Features over ``panes`` (PanePartials in pane order) and their global client codes."""
    ids = list(range(len(panes)))
    frames = finalize_windows(panes, codes_by_pane, ids, (window_min,), len(panes) - 1, end_ms, k)
    return frames[window_min]


def finalize_windows(
    panes: list,
    codes_by_pane: list[np.ndarray],
    pane_ids: list[int],
    windows,
    end_pane: int,
    end_ms: int,
    k: int,
    keys_by_pane: list[dict[str, np.ndarray]] | None = None,
) -> dict[int, FeatureFrame]:
    """Every window ending at ``end_pane`` from ONE sort of the longest window's rows.

    Rows are sorted once by (client code, pane); distinct keys once by key (the per-pane
    runs are already sorted, so the stable sort merges runs). Each shorter window is a mask
    on pane ids of those sorted arrays, which stay sorted — no per-window sort.
    """
    windows = sorted(windows)
    if not panes:
        return {w: FeatureFrame(w, end_ms, np.zeros(0, np.int64)) for w in windows}
    codes = np.concatenate(codes_by_pane)
    pane_of_row = np.repeat(np.asarray(pane_ids, dtype=np.int64), [p.size for p in panes])
    order = np.argsort(codes, kind="stable")  # stable: rows of one client stay in pane order
    cs, ps = codes[order], pane_of_row[order]

    def cat(attr):
        return np.concatenate([getattr(p, attr) for p in panes])[order]

    first, last = cat("first_ms"), cat("last_ms")
    matrix = np.concatenate([cat("counts"), cat("entropy")], axis=1)  # summed per client
    scalars = np.column_stack([cat("bytes_out"), cat("gap_n"), cat("gap_sum"), cat("gap_sq")])
    if keys_by_pane is None:
        keys_by_pane = [pane_keys(p, c) for p, c in zip(panes, codes_by_pane, strict=True)]
    keys = {}
    for fam in DISTINCT:
        kcat = np.concatenate([kp[fam] for kp in keys_by_pane])
        kpane = np.repeat(
            np.asarray(pane_ids, dtype=np.int64), [len(kp[fam]) for kp in keys_by_pane]
        )
        o = np.argsort(kcat, kind="stable")
        keys[fam] = (kcat[o], kpane[o])
    nc, nb = len(COUNTERS), panes[0].entropy.shape[1]
    out = {}
    for w in windows:
        thr = end_pane - w + 1
        m = ps >= thr  # per client a suffix of its (pane-ordered) rows: stays sorted
        if m.all():
            m = slice(None)
        wcs, wfirst, wlast = cs[m], first[m], last[m]
        if len(wcs) == 0:
            out[w] = FeatureFrame(w, end_ms, np.zeros(0, np.int64))
            continue
        starts = np.flatnonzero(np.r_[True, wcs[1:] != wcs[:-1]])
        ends = np.r_[starts[1:], len(wcs)]
        wmat = matrix[m]
        sums = np.add.reduceat(wmat, starts, axis=0, dtype=np.int64)
        sc = np.add.reduceat(scalars[m], starts, axis=0, dtype=np.int64)
        same = wcs[1:] == wcs[:-1]  # consecutive panes of one client: the boundary gaps
        link = (wfirst[1:] - wlast[:-1])[same]
        owner = np.cumsum(np.r_[True, ~same])[1:][same] - 1
        n = len(starts)
        agg = {
            "uniq": wcs[starts],
            "counts": sums[:, :nc],
            "entropy": sums[:, nc : nc + nb],
            "bytes_out": sc[:, 0],
            "gap_n": sc[:, 1] + np.bincount(owner, minlength=n),
            "gap_sum": sc[:, 2] + np.bincount(owner, weights=link, minlength=n),
            "gap_sq": sc[:, 3]
            + np.bincount(owner, weights=link.astype(np.float64) ** 2, minlength=n),
            "first": wfirst[starts],
            "last": wlast[ends - 1],
            "active": ends - starts,
            "peak": np.maximum.reduceat(wmat[:, C["req"]], starts),
        }
        dsub = {}
        for fam, (kk, kpn) in keys.items():
            km = kpn >= thr
            dsub[fam] = kk if km.all() else kk[km]
        out[w] = _frame(agg, dsub, w, end_ms, k)
    return out


def _distinct_estimate(keys: np.ndarray, uniq_codes: np.ndarray, k: int) -> np.ndarray:
    """Bottom-k distinct estimate per client from sorted (possibly repeated) keys."""
    n = len(uniq_codes)
    if len(keys) == 0:
        return np.zeros(n)
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
    codes = (keys >> np.uint64(32)).astype(np.int64)
    hashes = (keys & _LOW32).astype(np.uint32)
    keep = kmv._rank_in_group(codes) < k
    groups = np.searchsorted(uniq_codes, codes[keep])
    return kmv.estimate(groups, hashes[keep], k, n)


def _frame(agg: dict, dkeys: dict, window_min: int, end_ms: int, k: int) -> FeatureFrame:
    uniq = agg["uniq"]
    n = len(uniq)
    if n == 0:
        return FeatureFrame(window_min, end_ms, np.zeros(0, np.int64))
    sums, entropy = agg["counts"], agg["entropy"]
    gap_n, gap_sum, gap_sq = agg["gap_n"], agg["gap_sum"], agg["gap_sq"]
    est = {fam: _distinct_estimate(dkeys[fam], uniq, k) for fam in DISTINCT}

    col = {name: sums[:, i].astype(np.float64) for name, i in C.items()}
    req = col["req"]
    f: dict[str, np.ndarray] = {}
    f["req_count"] = req
    f["peak_req_per_min"] = agg["peak"].astype(np.float64)
    f["active_minutes_frac"] = agg["active"] / float(window_min)
    f["req_per_min"] = req / float(window_min)
    mean_gap = _ratio(gap_sum, gap_n)
    var_gap = np.maximum(_ratio(gap_sq, gap_n) - mean_gap**2, 0.0)
    cv = np.where(mean_gap > 0, np.sqrt(var_gap) / np.where(mean_gap > 0, mean_gap, 1.0), 0.0)
    f["interarrival_cv"] = np.where(gap_n >= MIN_GAPS_FOR_CV, cv, 1.0)
    f["interarrival_mean_s"] = mean_gap / 1000.0
    f["span_s"] = (agg["last"] - agg["first"]) / 1e3
    f["bytes_out_mean"] = _ratio(agg["bytes_out"], req)
    known = col["has_status"]
    f["err3xx_ratio"] = _ratio(col["s3xx"], known)
    f["err4xx_ratio"] = _ratio(col["s4xx"], known)
    f["err404_ratio"] = _ratio(col["s404"], known)
    f["err5xx_ratio"] = _ratio(col["s5xx"], known)
    f["auth_fail_ratio"] = _ratio(col["auth_fail"], known)
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
    f["query_frac"] = _ratio(col["has_query"], req)
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
    return FeatureFrame(window_min, end_ms, uniq, f, dkeys["fingerprint"], dkeys["path"])


def _pairs(keys: np.ndarray, uniq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted keys → distinct (frame row, hash) pairs."""
    if len(keys):
        keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
    rows = np.searchsorted(uniq, (keys >> np.uint64(32)).astype(np.int64))
    return rows, (keys & _LOW32).astype(np.uint32)


def rescale(frame: FeatureFrame, window_min: int) -> FeatureFrame:
    """``frame`` as a longer window over the very same panes: only the per-minute
    normalisations change (no activity in the extra minutes)."""
    cols = dict(frame.columns)
    factor = frame.window_min / float(window_min)
    cols["active_minutes_frac"] = cols["active_minutes_frac"] * factor
    cols["req_per_min"] = cols["req_per_min"] * factor
    return FeatureFrame(
        window_min, frame.window_end_ms, frame.codes, cols, frame.fingerprint_keys, frame.path_keys
    )
