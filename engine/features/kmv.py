"""Bottom-k (KMV) distinct-value sets, vectorized over many groups at once.

A set is the k smallest distinct 32-bit hashes a group has seen, stored as sorted
``(group, hash)`` pairs. The union of two sets truncated to k is the set of the union, so
merging is associative and commutative; the count is exact while a group holds fewer than
k hashes and the KMV estimate ``(k − 1) · 2³² / h_k`` beyond (standard error ≈ 1/√(k − 2)).
"""

from __future__ import annotations

import numpy as np

HASH_SPACE = float(2**32)


def bottom_k(groups: np.ndarray, hashes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (group, hash) pairs, sorted, keeping each group's k smallest hashes."""
    if len(groups) == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.uint32)
    keys = (groups.astype(np.uint64) << np.uint64(32)) | hashes.astype(np.uint64)
    keys = np.unique(keys)
    g = (keys >> np.uint64(32)).astype(np.int32)
    h = (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    rank = _rank_in_group(g)
    keep = rank < k
    return g[keep], h[keep]


def run_starts(sorted_values: np.ndarray) -> np.ndarray:
    """Where each run of equal values starts (``[0]`` for an empty array, as
    ``flatnonzero(r_[True, a[1:] != a[:-1]])``, without ``np.r_``'s per-call overhead on the
    hot path of every evaluation)."""
    flag = np.empty(max(len(sorted_values), 1), dtype=bool)
    flag[0] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=flag[1 : len(sorted_values)])
    return np.flatnonzero(flag)


def _rank_in_group(sorted_groups: np.ndarray) -> np.ndarray:
    n = len(sorted_groups)
    starts = run_starts(sorted_groups)
    sizes = np.empty(len(starts), dtype=np.intp)
    np.subtract(starts[1:], starts[:-1], out=sizes[:-1])
    sizes[-1] = n - starts[-1]
    return np.arange(n) - np.repeat(starts, sizes)


def estimate(groups: np.ndarray, hashes: np.ndarray, k: int, n_groups: int) -> np.ndarray:
    """Distinct-count estimate per group (0..n_groups−1) from sorted bottom-k pairs."""
    out = np.zeros(n_groups, dtype=np.float64)
    if len(groups) == 0:
        return out
    counts = np.bincount(groups, minlength=n_groups).astype(np.float64)
    out[:] = counts
    full = counts >= k
    if full.any():
        starts = run_starts(groups)
        group_ids = groups[starts]
        kth = hashes[np.minimum(starts + k - 1, len(hashes) - 1)].astype(np.float64)
        sel = full[group_ids]
        est = (k - 1) * HASH_SPACE / np.maximum(kth[sel] + 1.0, 1.0)
        out[group_ids[sel]] = np.maximum(est, k)
    return out
