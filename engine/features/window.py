"""Finalize: merge the panes of a sliding window into one feature vector per client.

Panes combine differently from same-pane partials (``detection.md`` §2): counts add, the
per-minute peak is a max over panes, active minutes count non-empty panes, bottom-k sets
union, and inter-arrival sums add plus the boundary gaps between consecutive active panes.
Everything is a sort by client code plus ``reduceat`` — no loop over clients.
"""

from __future__ import annotations

import numpy as np

from engine.features import behaviour, kmv
from engine.features.row_signals import COUNTERS, DISTINCT
from engine.schema import features as F
from engine.schema.features import FeatureFrame

C = {name: i for i, name in enumerate(COUNTERS)}
MIN_GAPS_FOR_CV = 3  # fewer gaps say nothing about regularity: report the Poisson value 1


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
    # Summed per client, held column-major (one row per counter): ``reduceat`` along the
    # contiguous axis is several times faster than down the columns of a row-major matrix,
    # and integer sums are exact in any order.
    matrix = np.concatenate([cat("counts"), cat("entropy")], axis=1)
    matrix = np.ascontiguousarray(matrix.T, dtype=np.int64)
    scalars = np.stack([cat("bytes_out"), cat("gap_n"), cat("gap_sum"), cat("gap_sq")])
    scalars = scalars.astype(np.int64, order="C")
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
        starts = kmv.run_starts(wcs)
        ends = np.append(starts[1:], len(wcs))
        wmat = matrix[:, m]
        sums = np.add.reduceat(wmat, starts, axis=1)
        sc = np.add.reduceat(scalars[:, m], starts, axis=1)
        same = wcs[1:] == wcs[:-1]  # consecutive panes of one client: the boundary gaps
        link = (wfirst[1:] - wlast[:-1])[same]
        owner = np.cumsum(np.r_[True, ~same])[1:][same] - 1
        n = len(starts)
        agg = {
            "uniq": wcs[starts],
            "counts": np.ascontiguousarray(sums[:nc].T),
            "entropy": np.ascontiguousarray(sums[nc : nc + nb].T),
            "bytes_out": sc[0],
            "gap_n": sc[1] + np.bincount(owner, minlength=n),
            "gap_sum": sc[2] + np.bincount(owner, weights=link, minlength=n),
            "gap_sq": sc[3]
            + np.bincount(owner, weights=link.astype(np.float64) ** 2, minlength=n),
            "first": wfirst[starts],
            "last": wlast[ends - 1],
            "active": ends - starts,
            "peak": np.maximum.reduceat(wmat[C["req"]], starts),
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
    keys = keys[kmv.run_starts(keys)]
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
    f[F.REQ_COUNT] = req
    f[F.PEAK_REQ_PER_MIN] = agg["peak"].astype(np.float64)
    f[F.ACTIVE_MINUTES_FRAC] = agg["active"] / float(window_min)
    f[F.REQ_PER_MIN] = req / float(window_min)
    mean_gap = _ratio(gap_sum, gap_n)
    var_gap = np.maximum(_ratio(gap_sq, gap_n) - mean_gap**2, 0.0)
    cv = np.where(mean_gap > 0, np.sqrt(var_gap) / np.where(mean_gap > 0, mean_gap, 1.0), 0.0)
    f[F.INTERARRIVAL_CV] = np.where(gap_n >= MIN_GAPS_FOR_CV, cv, 1.0)
    f[F.INTERARRIVAL_MEAN_S] = mean_gap / 1000.0
    f[F.SPAN_S] = (agg["last"] - agg["first"]) / 1e3
    f[F.BYTES_OUT_MEAN] = _ratio(agg["bytes_out"], req)
    known = col["has_status"]
    f[F.ERR3XX_RATIO] = _ratio(col["s3xx"], known)
    f[F.ERR4XX_RATIO] = _ratio(col["s4xx"], known)
    f[F.ERR404_RATIO] = _ratio(col["s404"], known)
    f[F.ERR5XX_RATIO] = _ratio(col["s5xx"], known)
    f[F.AUTH_FAIL_RATIO] = _ratio(col["auth_fail"], known)
    f[F.DISTINCT_PATHS] = est["path"]
    f[F.PATH_BREADTH] = _ratio(est["path"], req)
    p = _ratio(entropy, entropy.sum(axis=1, keepdims=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        f[F.PATH_ENTROPY] = -np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0).sum(axis=1)
    f[F.TOP_BUCKET] = entropy.argmax(axis=1).astype(np.float64)
    f[F.TOP_BUCKET_SHARE] = _ratio(entropy.max(axis=1), req)
    mean_d = _ratio(col["depth_sum"], req)
    f[F.DEPTH_STD] = np.sqrt(np.maximum(_ratio(col["depth_sq"], req) - mean_d**2, 0.0))
    f[F.ASSET_FRAC] = _ratio(col["asset"], req)
    f[F.HTML_TO_ASSET_RATIO] = (req - col["asset"]) / (col["asset"] + 1.0)
    f[F.ROBOTS_TXT_HIT] = (col["robots"] > 0).astype(np.float64)
    for counter, name in (
        ("get", F.GET_FRAC),
        ("head", F.HEAD_FRAC),
        ("post", F.POST_FRAC),
        ("other_method", F.OTHER_METHOD_FRAC),
    ):
        f[name] = _ratio(col[counter], req)
    f[F.LOGIN_POST_COUNT] = col["login_post"]
    f[F.LOGIN_FAIL_COUNT] = col["login_fail"]
    f[F.LOGIN_FAIL_RATIO] = _ratio(col["login_fail"], col["login_post"])
    f[F.LOGIN_POST_FRAC] = _ratio(col["login_post"], req)
    f[F.LOGIN_PATH_FRAC] = _ratio(col["login_path"], req)
    f[F.QUERY_FRAC] = _ratio(col["has_query"], req)
    f[F.NO_REFERER_FRAC] = _ratio(col["no_referer"], col["referer_known"])
    f[F.UA_DISTINCT] = est["ua"]
    f[F.FINGERPRINT_DISTINCT] = est["fingerprint"]
    f[F.PROBE_404_DISTINCT] = est["probe"]
    f[F.SENSITIVE_PATH_HITS] = est["sensitive_path"]
    f[F.SENSITIVE_REQ] = col["sensitive"]
    f[F.INJECTION_HITS] = col["injection"]
    f[F.TOOL_UA_HITS] = col["tool_ua"]
    f[F.TOOL_UA] = (col["tool_ua"] > 0).astype(np.float64)
    f[F.CRAWLER_UA_FRAC] = _ratio(col["crawler_ua"], req)
    f[F.CRAWLER_VERIFIED_FRAC] = _ratio(col["crawler_verified"], req)
    f[F.DECLARED_BOT_FRAC] = _ratio(col["declared_bot"], req)
    f[F.ROBOTS_DISALLOWED_HITS] = col["robots_disallowed"]
    f[F.HEALTH_FRAC] = _ratio(col["health"], req)
    f[F.WAF_ACTED_FRAC] = _ratio(col["waf_acted"], req)
    f[F.BROWSER_UA_FRAC] = _ratio(col["browser_ua"], req)
    f[F.S404_COUNT] = col["s404"]
    f[F.S4XX_COUNT] = col["s4xx"]
    f[F.ASSET_COUNT] = col["asset"]
    f.update(behaviour.features(col, est, req))
    return FeatureFrame(window_min, end_ms, uniq, f, dkeys["fingerprint"], dkeys["path"])


def rescale(frame: FeatureFrame, window_min: int) -> FeatureFrame:
    """``frame`` as a longer window over the very same panes: only the per-minute
    normalisations change (no activity in the extra minutes)."""
    cols = dict(frame.columns)
    factor = frame.window_min / float(window_min)
    cols[F.ACTIVE_MINUTES_FRAC] = cols[F.ACTIVE_MINUTES_FRAC] * factor
    cols[F.REQ_PER_MIN] = cols[F.REQ_PER_MIN] * factor
    return FeatureFrame(
        window_min, frame.window_end_ms, frame.codes, cols, frame.fingerprint_keys, frame.path_keys
    )
