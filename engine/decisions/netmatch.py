"""Vectorized "is this address inside any of these networks" over an Arrow string column.

Addresses are dictionary-encoded first, so each distinct address is converted once. IPv4
text becomes 32-bit integers entirely in Arrow/NumPy (split on dots, cast, shift); IPv6 text is
parsed once per distinct address into two 64-bit halves and compared under the prefix masks.
Text that is neither (or null) matches nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_IPV4_RE = r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$"
_U64 = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


def ipv4_to_int(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Dotted quads → (uint32 array, validity mask); non-IPv4 text is invalid."""
    looks = pc.fill_null(pc.match_substring_regex(values, _IPV4_RE), False)
    valid = looks.to_numpy(zero_copy_only=False).astype(bool)
    out = np.zeros(len(values), dtype=np.uint32)
    if not valid.any():
        return out, valid
    quads = pc.list_flatten(pc.split_pattern(pc.filter(values, looks), "."))
    octets = pc.cast(quads, pa.int64()).to_numpy().reshape(-1, 4)
    in_range = (octets <= 255).all(axis=1)
    ints = (octets[:, 0] << 24) | (octets[:, 1] << 16) | (octets[:, 2] << 8) | octets[:, 3]
    idx = np.flatnonzero(valid)
    out[idx] = ints.astype(np.uint32)
    valid[idx[~in_range]] = False
    return out, valid


def ipv6_halves(values: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IPv6 text → (high uint64, low uint64, validity mask), parsed once per value."""
    n = len(values)
    hi = np.zeros(n, dtype=np.uint64)
    lo = np.zeros(n, dtype=np.uint64)
    valid = np.zeros(n, dtype=bool)
    has_colon = pc.fill_null(pc.match_substring(values, ":"), False)
    idx = np.flatnonzero(has_colon.to_numpy(zero_copy_only=False))
    if idx.size == 0:
        return hi, lo, valid
    packed = []
    for i, text in zip(idx, pc.take(values, pa.array(idx)).to_pylist(), strict=True):
        try:
            packed.append(ipaddress.IPv6Address(text).packed)
            valid[i] = True
        except ValueError:
            packed.append(bytes(16))
    words = np.frombuffer(b"".join(packed), dtype=">u8").reshape(-1, 2).astype(np.uint64)
    hi[idx], lo[idx] = words[:, 0], words[:, 1]
    return hi, lo, valid


def _distinct_mask(values: pa.Array, networks: list[Network]) -> np.ndarray:
    mask = np.zeros(len(values), dtype=bool)
    v4 = [n for n in networks if n.version == 4]
    v6 = [n for n in networks if n.version == 6]
    if v4:
        ints, ok = ipv4_to_int(values)
        for net in v4:
            first, last = int(net.network_address), int(net.broadcast_address)
            mask |= ok & (ints >= first) & (ints <= last)
    if v6:
        hi, lo, ok = ipv6_halves(values)
        for net in v6:
            bits = int(net.netmask)
            mask_hi, mask_lo = np.uint64(bits >> 64), np.uint64(bits & int(_U64))
            addr = int(net.network_address)
            net_hi, net_lo = np.uint64(addr >> 64), np.uint64(addr & int(_U64))
            mask |= ok & ((hi & mask_hi) == net_hi) & ((lo & mask_lo) == net_lo)
    return mask


def in_networks(column: pa.Array | pa.ChunkedArray, networks: Iterable[Network]) -> pa.Array:
    """Boolean array: row's address lies in any of ``networks`` (null/garbage → False)."""
    nets = list(networks)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not nets or len(column) == 0:
        return pa.array(np.zeros(len(column), dtype=bool))
    encoded = pc.dictionary_encode(column)
    distinct = _distinct_mask(encoded.dictionary, nets)
    indices = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
    rows = distinct[indices] if distinct.size else np.zeros(len(column), dtype=bool)
    if encoded.indices.null_count:
        rows &= encoded.indices.is_valid().to_numpy(zero_copy_only=False)
    return pa.array(rows)
