"""Per-client partial aggregates of one one-minute event-time pane.

``from_batch`` turns a canonical request batch into one ``PanePartial`` per pane it touches;
``merge`` combines two partials of the same pane (from different objects, log nodes or
workers). Counters add, first/last timestamps take min/max, bottom-k sets union, and the
inter-arrival sums add plus the boundary gap between the two partials' time ranges — exact
when the partials cover disjoint time ranges and are merged as adjacent ranges (the order
objects arrive in), approximate when they interleave
(``detection.md`` §2). Partials are canonical (clients sorted), so equal inputs merged in any
order compare equal.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.features import kmv
from engine.features.row_signals import DISTINCT, RowSignals
from engine.schema import request as R
from engine.schema.evidence import PRIORITY, SAMPLE_COLUMNS

PANE_MS = 60_000
_BIG = np.iinfo(np.int64).max
_SMALL = np.iinfo(np.int64).min


@dataclass
class PanePartial:
    """Columnar state of one pane: row i of every array belongs to ``clients[i]``."""

    pane: int  # minutes since the epoch
    clients: pa.Array  # sorted unique client keys
    counts: np.ndarray  # (n, len(COUNTERS)) uint32
    entropy: np.ndarray  # (n, buckets) uint32 path-template histogram
    bytes_out: np.ndarray  # int64
    first_ms: np.ndarray  # int64
    last_ms: np.ndarray  # int64
    gap_n: np.ndarray  # int64 number of inter-arrival gaps
    gap_sum: np.ndarray  # int64 Σ gap (ms)
    gap_sq: np.ndarray  # int64 Σ gap² (ms²)
    distinct: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    samples: pa.Table | None = None  # evidence rows with "client" and "priority" columns

    @property
    def size(self) -> int:
        return len(self.clients)

    def nbytes(self) -> int:
        """Bytes of feature state (evidence samples excluded; reported separately)."""
        arrays = [
            self.counts,
            self.entropy,
            self.bytes_out,
            self.first_ms,
            self.last_ms,
            self.gap_n,
            self.gap_sum,
            self.gap_sq,
        ]
        total = sum(a.nbytes for a in arrays) + self.clients.nbytes
        return total + sum(g.nbytes + h.nbytes for g, h in self.distinct.values())


def from_batch(
    sig: RowSignals, k: int, buckets: int, samples_per_client: int, source: pa.Table
) -> list[PanePartial]:
    """Partials of every pane the batch touches (rows already resolved to clients)."""
    n = len(sig.ts_ms)
    if n == 0:
        return []
    pane = sig.ts_ms // PANE_MS
    pane0 = int(pane.min())
    ncl = len(sig.clients)
    # Sort clients so group ids (pane-major, then client) come out canonical.
    order_c = pc.sort_indices(sig.clients).to_numpy()
    rank_c = np.empty(ncl, dtype=np.int64)
    rank_c[order_c] = np.arange(ncl)
    sorted_clients = pc.take(sig.clients, pa.array(order_c))
    gkey = (pane - pane0) * ncl + rank_c[sig.client_idx]
    ukeys, g = np.unique(gkey, return_inverse=True)
    ng = len(ukeys)
    order = np.lexsort((sig.ts_ms, g))
    gs = g[order]
    starts = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
    counts = np.add.reduceat(sig.counters[order], starts, axis=0, dtype=np.uint32)
    entropy = np.bincount(g * buckets + sig.bucket, minlength=ng * buckets)
    entropy = entropy.reshape(ng, buckets).astype(np.uint32)
    bytes_col = pc.fill_null(source.column(R.BYTES_OUT), 0).to_numpy().astype(np.int64)
    bytes_out = np.bincount(g, weights=bytes_col, minlength=ng).astype(np.int64)
    ts = sig.ts_ms[order]
    ends = np.r_[starts[1:], n] - 1
    first_ms, last_ms = ts[starts], ts[ends]
    same = gs[1:] == gs[:-1]
    gaps = np.diff(ts)[same]
    gap_owner = gs[1:][same]
    gap_n = np.bincount(gap_owner, minlength=ng).astype(np.int64)
    gap_sum = np.bincount(gap_owner, weights=gaps, minlength=ng).astype(np.int64)
    gap_sq = np.bincount(gap_owner, weights=gaps.astype(np.float64) ** 2, minlength=ng)
    distinct = {}
    for fam in DISTINCT:
        mask, h = sig.hashes[fam]
        distinct[fam] = kmv.bottom_k(g[mask], h[mask], k)
    samples = _samples(source, sig, g, samples_per_client, sorted_clients, ukeys % ncl)

    out = []
    group_pane = ukeys // ncl + pane0
    bounds = np.flatnonzero(np.r_[True, group_pane[1:] != group_pane[:-1], True])
    for lo, hi in itertools.pairwise(bounds):
        sl = slice(lo, hi)
        dist = {}
        for fam, (dg, dh) in distinct.items():
            a, b = np.searchsorted(dg, [lo, hi])
            dist[fam] = ((dg[a:b] - lo).astype(np.int32), dh[a:b])
        out.append(
            PanePartial(
                pane=int(group_pane[lo]),
                clients=pc.take(sorted_clients, pa.array(ukeys[sl] % ncl)),
                counts=counts[sl],
                entropy=entropy[sl],
                bytes_out=bytes_out[sl],
                first_ms=first_ms[sl],
                last_ms=last_ms[sl],
                gap_n=gap_n[sl],
                gap_sum=gap_sum[sl],
                gap_sq=gap_sq[sl].astype(np.int64),
                distinct=dist,
                samples=_pane_samples(samples, int(group_pane[lo])),
            )
        )
    return out


def _samples(source, sig, g, per_client, sorted_clients, client_of_group):
    if per_client <= 0:
        return None
    rows = _sample_rows(source, sig.ts_ms, -sig.priority.astype(np.int64), g, per_client)
    tbl = source.select(list(SAMPLE_COLUMNS)).take(pa.array(rows))
    names = pc.take(sorted_clients, pa.array(client_of_group[g[rows]]))
    tbl = tbl.append_column("client", names)
    tbl = tbl.append_column(PRIORITY, pa.array(sig.priority[rows], pa.int16()))
    return tbl.append_column("pane", pa.array(sig.ts_ms[rows] // PANE_MS))


def _sample_rows(source, ts, neg_prio, g, per_client) -> np.ndarray:
    """Each group's ``per_client`` most telling rows in ``merge_samples``' total order
    (priority, time, then path, query and user agent), so the evidence kept does not depend
    on how rows were cut into batches. Strings are ranked only for the rows still in the
    running: the best ``per_client`` of each group and those tied with the last of them."""
    order = np.lexsort((ts, neg_prio, g))
    gs = g[order]
    rank = kmv._rank_in_group(gs)
    starts = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
    sizes = np.diff(np.r_[starts, len(gs)])
    last = np.repeat(order[starts + np.minimum(sizes, per_client) - 1], sizes)
    tied = (neg_prio[order] == neg_prio[last]) & (ts[order] == ts[last])
    cand = order[(rank < per_client) | tied]
    sub = source.take(pa.array(cand))
    ranks = [
        pc.rank(sub.column(c), sort_keys="ascending", tiebreaker="dense").to_numpy()
        for c in (R.USER_AGENT, R.QUERY, R.PATH)
    ]
    cand = cand[np.lexsort((*ranks, ts[cand], neg_prio[cand], g[cand]))]
    return cand[kmv._rank_in_group(g[cand]) < per_client]


def _pane_samples(samples: pa.Table | None, pane: int) -> pa.Table | None:
    if samples is None:
        return None
    return samples.filter(pc.equal(samples.column("pane"), pane))


def merge(a: PanePartial, b: PanePartial, k: int, samples_per_client: int = 3) -> PanePartial:
    """Combine two partials of the same pane; associative and commutative."""
    if a.pane != b.pane:
        raise ValueError(f"cannot merge pane {a.pane} with pane {b.pane}")
    uniq = pc.unique(pa.concat_arrays([a.clients, b.clients]))
    clients = uniq.take(pc.sort_indices(uniq))
    ia = pc.index_in(a.clients, value_set=clients).to_numpy().astype(np.int64)
    ib = pc.index_in(b.clients, value_set=clients).to_numpy().astype(np.int64)
    n = len(clients)

    def summed(x, y):
        out = np.zeros((n, *x.shape[1:]), dtype=x.dtype)
        out[ia] += x
        out[ib] += y
        return out

    def placed(x, fill):
        out = np.full(n, fill, dtype=np.int64)
        out[ia] = x
        return out

    fa, la = placed(a.first_ms, _BIG), placed(a.last_ms, _SMALL)
    fb = np.full(n, _BIG, dtype=np.int64)
    lb = np.full(n, _SMALL, dtype=np.int64)
    fb[ib], lb[ib] = b.first_ms, b.last_ms
    both = (fa != _BIG) & (fb != _BIG)
    a_first = (fa < fb) | ((fa == fb) & (la <= lb))
    boundary = np.where(a_first, fb - la, fa - lb)
    boundary = np.where(both, np.maximum(boundary, 0), 0)
    dist = {}
    for fam in a.distinct:
        ag, ah = a.distinct[fam]
        bg, bh = b.distinct[fam]
        dist[fam] = kmv.bottom_k(np.r_[ia[ag], ib[bg]], np.r_[ah, bh], k)
    return PanePartial(
        pane=a.pane,
        clients=clients,
        counts=summed(a.counts, b.counts),
        entropy=summed(a.entropy, b.entropy),
        bytes_out=summed(a.bytes_out, b.bytes_out),
        first_ms=np.minimum(fa, fb),
        last_ms=np.maximum(la, lb),
        gap_n=summed(a.gap_n, b.gap_n) + both,
        gap_sum=summed(a.gap_sum, b.gap_sum) + boundary,
        gap_sq=summed(a.gap_sq, b.gap_sq) + boundary * boundary,
        distinct=dist,
        samples=merge_samples(a.samples, b.samples, samples_per_client),
    )


def merge_samples(a: pa.Table | None, b: pa.Table | None, per_client: int) -> pa.Table | None:
    """Keep each client's ``per_client`` most telling sample rows (a total order, so merging
    in any order keeps the same rows)."""
    if a is None or b is None:
        return a if b is None else b
    tbl = pa.concat_tables([a, b])
    if tbl.num_rows == 0:
        return tbl
    keys = [
        ("client", "ascending"),
        (PRIORITY, "descending"),
        (R.EVENT_TIME, "ascending"),
        (R.PATH, "ascending"),
        (R.QUERY, "ascending"),
        (R.USER_AGENT, "ascending"),
    ]
    tbl = tbl.take(pc.sort_indices(tbl, sort_keys=keys))
    cl = pc.dictionary_encode(tbl.column("client").combine_chunks()).indices.to_numpy()
    rank = kmv._rank_in_group(cl)
    return tbl.filter(pa.array(rank < per_client))
