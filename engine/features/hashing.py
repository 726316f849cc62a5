"""Stable hashes of strings, computed on unique values only.

``pandas.util.hash_array`` is SipHash with a fixed key: the same bytes give the same 64-bit
value in every process and on every run (unlike Python's salted ``hash()``), so shard numbers
and sketch contents agree across workers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def hash64(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """uint64 hash of each string (null hashes like the empty string)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    arr = pc.fill_null(values, "").to_numpy(zero_copy_only=False)
    if len(arr) == 0:
        return np.zeros(0, dtype=np.uint64)
    return pd.util.hash_array(arr.astype(object), categorize=False)


def hash32(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """uint32 hash (the high half of :func:`hash64`), for the bottom-k distinct sets."""
    return (hash64(values) >> np.uint64(32)).astype(np.uint32)


def shard_of(client: str, shards: int) -> int:
    """The worker shard a client key belongs to (``stable_hash64(key) % shards``)."""
    return int(hash64(pa.array([client]))[0] % np.uint64(shards))
