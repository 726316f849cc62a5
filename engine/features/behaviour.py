"""Behaviour signals for the anomaly model: how a client acts, not what it asks for (issue 15).

A family of per-row counters and bottom-k sets, folded into panes and windows by the same
machinery as every other one (counters add, sets union), so it merges across objects, nodes
and workers:

- ``id_step``: the request's numeric last path segment is 1–3 above the client's previous
  request on the same path template (``/orders/41`` then ``/orders/42``): id walking.
- ``gap`` set: the client's inter-arrival gaps quantized to ``GAP_QUANTUM_MS``; a metronome
  repeats a handful of distinct gaps (gaps per distinct gap in the hundreds), a human rarely
  repeats one.
- ``target`` set: distinct path + query; a cache-busting client makes every request unique.
- ``login_ok``: successful (2xx/3xx) POSTs to a login path: many accounts from one client.
- ``slow`` and ``dur_10ms``: requests the origin took ``SLOW_REQUEST_MS`` or more to answer,
  and the summed processing time (10 ms units, each request capped at ``DURATION_CAP_MS``).
- ``lb_sum``/``lb_sq``: Σ and Σ² of ``LOG_BYTES_SCALE · log2(1 + bytes out)``, for the
  spread of response sizes.

Sequence signals (``id_step``, ``gap``) compare consecutive requests of a client inside one
batch: the first request of a client in each batch has no predecessor, so a client's counts
are exact within an object and slightly low across object boundaries.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.features.hashing import hash64
from engine.schema import features as F
from engine.schema import request as R

COUNTERS = ("id_step", "login_ok", "slow", "dur_10ms", "lb_sum", "lb_sq")
DISTINCT = ("gap", "target")
GAP_QUANTUM_MS = 100
SLOW_REQUEST_MS = 5_000.0
DURATION_CAP_MS = 600_000.0
LOG_BYTES_SCALE = 8.0
_ID_RE = r"^.*/(?P<id>[0-9]{1,12})/?$"


def signals(
    table: pa.Table,
    ts: np.ndarray,
    client_idx: np.ndarray,
    plow: pa.Array,
    pidx: np.ndarray,
    login_post: np.ndarray,
    status: np.ndarray,
    path_h: np.ndarray,
) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per-row counter columns (``COUNTERS``) and (mask, hash) sets (``DISTINCT``);
    ``path_h`` is each row's hash in the ``path`` distinct family."""
    n = len(ts)
    order = np.lexsort((ts, client_idx))
    prev = np.full(n, -1, dtype=np.int64)  # each row's predecessor of the same client
    same = client_idx[order][1:] == client_idx[order][:-1]
    prev[order[1:][same]] = order[:-1][same]
    has_prev = prev >= 0

    # id walking: numeric last segment, one template (digits folded) per unique path
    digits = pc.extract_regex(plow, _ID_RE)
    ids_u = pc.fill_null(pc.cast(pc.struct_field(digits, [0]), pa.int64()), -1).to_numpy(
        zero_copy_only=False
    )
    tmpl_u = hash64(pc.replace_substring_regex(plow, r"[0-9]+", "0"))
    ids, tmpl = ids_u[pidx], tmpl_u[pidx]
    p = np.where(has_prev, prev, 0)
    step = ids - ids[p]
    id_step = has_prev & (ids >= 0) & (ids[p] >= 0) & (tmpl == tmpl[p]) & (step >= 1) & (step <= 3)

    gaps = np.where(has_prev, ts - ts[p], 0) // GAP_QUANTUM_MS
    gap_h = _mix32(gaps.astype(np.uint64), np.uint64(0x9E3779B97F4A7C15))

    # path + query: hashed per unique path and per unique query, combined per row. A row
    # without a query keeps its path hash, so a client that sends none has the very same
    # bottom-k set in both families and exactly one variant per path (no estimator noise).
    quniq, qidx = _encode(table.column(R.QUERY))
    has_query = pc.not_equal(quniq, "").to_numpy(zero_copy_only=False)[qidx]
    target_h = np.where(has_query, _mix32(hash64(plow)[pidx], hash64(quniq)[qidx]), path_h)

    dur = pc.fill_null(table.column(R.DURATION_MS), 0.0).to_numpy(zero_copy_only=False)
    dur = np.clip(np.nan_to_num(dur.astype(np.float64)), 0.0, DURATION_CAP_MS)
    nbytes = pc.fill_null(table.column(R.BYTES_OUT), 0).to_numpy().astype(np.float64)
    lb = np.round(LOG_BYTES_SCALE * np.log2(1.0 + np.maximum(nbytes, 0.0)))
    counters = {
        "id_step": id_step,
        "login_ok": login_post & (status >= 200) & (status < 400),
        "slow": dur >= SLOW_REQUEST_MS,
        "dur_10ms": np.round(dur / 10.0),
        "lb_sum": lb,
        "lb_sq": lb * lb,
    }
    hashes = {"gap": (has_prev, gap_h), "target": (np.ones(n, dtype=bool), target_h)}
    return counters, hashes


def _encode(col) -> tuple[pa.Array, np.ndarray]:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    enc = pc.dictionary_encode(col, null_encoding="encode")
    return pc.fill_null(enc.dictionary, ""), enc.indices.to_numpy(zero_copy_only=False)


def _mix32(a: np.ndarray, b: np.ndarray | np.uint64) -> np.ndarray:
    """A 32-bit hash of two uint64 values (splitmix64's finaliser over a ^ rotated b):
    numpy arithmetic on every row, no strings."""
    with np.errstate(over="ignore"):
        x = a ^ ((b << np.uint64(31)) | (b >> np.uint64(33)))
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(32)).astype(np.uint32)


def features(col: dict[str, np.ndarray], est: dict[str, np.ndarray], req: np.ndarray):
    """The family's window features from summed counters and distinct estimates."""
    safe = np.where(req > 0, req, 1.0)
    mean_lb = col["lb_sum"] / safe
    var_lb = np.maximum(col["lb_sq"] / safe - mean_lb**2, 0.0)
    return {
        F.ID_STEP_FRAC: col["id_step"] / safe,
        F.GAP_REPEAT: np.maximum(req - 1.0, 0.0) / np.maximum(est["gap"], 1.0),
        F.TARGET_DISTINCT_FRAC: est["target"] / safe,
        # a cache buster's fresh query on every request of a few pages: hundreds of variants
        # of each path, where a browser's paths carry one query or none
        F.QUERY_VARIANTS_PER_PATH: est["target"] / np.maximum(est["path"], 1.0),
        F.LOGIN_SUCCESS_COUNT: col["login_ok"],
        F.SLOW_REQ_FRAC: col["slow"] / safe,
        F.DURATION_MEAN_MS: 10.0 * col["dur_10ms"] / safe,
        F.BYTES_OUT_LOG2_STD: np.sqrt(var_lb) / LOG_BYTES_SCALE,
    }
