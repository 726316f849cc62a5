"""Pane partials on the wire: split by client shard, shipped as bytes, folded back.

A Spark executor aggregates its objects into ``PanePartial``s with the features stage's own
``from_batch``/``merge`` (through a task-local ``FeatureStore``). Each partial is cut into
client shards (``stable_hash64(client) % shards``, the sharding rule of ``detection.md`` §2)
so that the shuffle groups a client's partials of one pane on one reducer, which folds them
with ``merge`` again. Nothing here computes a feature: it only selects rows and moves them.

Partials travel pickled (protocol 5: numpy buffers and Arrow arrays out of band, no copy per
element); both ends are the same wafsmith build, as PySpark requires of its own closures.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.features import PanePartial, merge
from engine.features.hashing import hash64

_ROW_ARRAYS = (
    "counts", "entropy", "bytes_out", "first_ms", "last_ms", "gap_n", "gap_sum", "gap_sq"
)


def take_clients(part: PanePartial, rows: np.ndarray) -> PanePartial:
    """The partial restricted to ``rows`` (sorted row indices): clients stay sorted, bottom-k
    pairs are renumbered to the new rows, evidence keeps only those clients' samples."""
    rows = np.asarray(rows, dtype=np.int64)
    clients = part.clients.take(pa.array(rows))
    distinct = {}
    for fam, (g, h) in part.distinct.items():
        keep = np.isin(g, rows)
        distinct[fam] = (np.searchsorted(rows, g[keep]).astype(np.int32), h[keep])
    samples = part.samples
    if samples is not None:
        samples = samples.filter(pc.is_in(samples.column("client"), value_set=clients))
    return PanePartial(
        pane=part.pane,
        clients=clients,
        **{name: getattr(part, name)[rows] for name in _ROW_ARRAYS},
        distinct=distinct,
        samples=samples,
    )


def shards_of(clients: pa.Array, shards: int) -> np.ndarray:
    """Shard number of each client key (stable across processes and hosts)."""
    return (hash64(clients) % np.uint64(shards)).astype(np.int64)


def split_by_shard(part: PanePartial, shards: int) -> dict[int, PanePartial]:
    """One partial per client shard that has clients in ``part``."""
    shard = shards_of(part.clients, shards)
    return {int(s): take_clients(part, np.flatnonzero(shard == s)) for s in np.unique(shard)}


def fold(parts: Iterable[PanePartial], k: int, samples_per_client: int) -> PanePartial:
    """Merge partials of one pane in the order given (``merge`` is associative and
    commutative; the order only matters for the inter-arrival boundary of interleaving
    ranges, see ``engine.features.pane``)."""
    acc: PanePartial | None = None
    for part in parts:
        acc = part if acc is None else merge(acc, part, k, samples_per_client)
    if acc is None:
        raise ValueError("nothing to fold")
    return acc


def dumps(part: PanePartial) -> bytes:
    return pickle.dumps(part, protocol=5)


def loads(blob: bytes) -> PanePartial:
    part = pickle.loads(blob)
    if not isinstance(part, PanePartial):
        raise TypeError(f"expected a PanePartial, got {type(part).__name__}")
    return part
