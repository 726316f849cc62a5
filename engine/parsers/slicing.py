"""Byte-level string splitting with numpy, for the hot columns of the ALB log.

Arrow's string kernels split by building list arrays, and regex extraction is slower still;
both cost more than the CSV read itself on the request column. Here a column's raw buffers are
viewed as numpy arrays, the positions of a delimiter byte are found once per column, each
row's first/last occurrence is located by binary search, and the wanted substrings are
gathered into a new Arrow string array. Delimiters are ASCII, so cuts never split a UTF-8
sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NOT_FOUND = -1


@dataclass(frozen=True)
class Column:
    """A string column as numpy views: bytes, row start/end offsets, validity."""

    data: np.ndarray  # uint8
    starts: np.ndarray  # int64, absolute positions in data
    ends: np.ndarray
    valid: np.ndarray  # bool

    @classmethod
    def of(cls, values: pa.Array | pa.ChunkedArray) -> Column:
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if values.type == pa.large_string():
            offsets_type = np.int64
        elif values.type == pa.string():
            offsets_type = np.int32
        else:
            raise TypeError(f"expected a string column, got {values.type}")
        n = len(values)
        _, offsets_buf, data_buf = values.buffers()
        offsets = np.frombuffer(offsets_buf, dtype=offsets_type)
        offsets = offsets[values.offset : values.offset + n + 1].astype(np.int64)
        if data_buf is None:
            data = np.zeros(0, dtype=np.uint8)
        else:
            data = np.frombuffer(data_buf, dtype=np.uint8)
        valid = np.asarray(values.is_valid()) if values.null_count else np.ones(n, dtype=bool)
        return cls(data, offsets[:-1], offsets[1:], valid)

    def positions(self, byte: int) -> np.ndarray:
        return np.flatnonzero(self.data == byte)

    def delimiters(self, wanted: bytes) -> dict[int, np.ndarray]:
        """Positions of each byte of ``wanted`` (one vectorised compare per byte)."""
        return {byte: self.positions(byte) for byte in wanted}

    def first(self, byte: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Per row, the first ``byte`` in ``[lo, hi)``, or ``NOT_FOUND``: what
        ``first_in(self.positions(byte), lo, hi)`` answers, without listing every occurrence.

        Row *i* is searched by Arrow's ``find_substring`` (memchr-fast, C++) over a binary
        array laid on the column's own bytes whose row *i* runs from ``lo[i]`` to the next
        row's start: offsets that only grow, so nothing is copied, and a hit at or past
        ``hi[i]`` is discarded. A range outside its row (never produced here) is answered
        the listing way. ASCII bytes only: the pattern goes to Arrow as a one-character
        string, and a character above 127 would be two bytes in UTF-8.
        """
        if not 0 <= byte < 128:
            raise ValueError(f"Column.first searches for an ASCII byte, not {byte}")
        n = len(lo)
        inside = (lo < hi) & (lo >= self.starts) & (hi <= self.ends)
        start = np.where(inside, lo, self.starts)
        offsets = np.empty(n + 1, dtype=np.int64)
        offsets[:-1] = start
        offsets[-1] = len(self.data)
        if len(self.data) < 2**31 - 1:
            kind, offsets = pa.binary(), offsets.astype(np.int32)
        else:
            kind = pa.large_binary()
        spans = pa.Array.from_buffers(
            kind, n, [None, pa.py_buffer(offsets), pa.py_buffer(self.data)]
        )  # fmt: skip
        at = pc.find_substring(spans, pattern=chr(byte)).to_numpy().astype(np.int64)
        found = np.where(inside & (at >= 0) & (start + at < hi), start + at, NOT_FOUND)
        odd = (lo < hi) & ~inside
        if odd.any():
            found[odd] = first_in(self.positions(byte), lo[odd], hi[odd])
        return found

    def byte_at(self, where: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """The byte at ``where`` (0 where not ``ok`` or out of the row's bounds)."""
        ok = ok & (where >= self.starts) & (where < self.ends)
        if not len(self.data):
            return np.zeros(len(where), dtype=np.uint8)
        return np.where(ok, self.data[np.where(ok, where, 0)], 0)

    def is_dash(self, lo: np.ndarray, hi: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """Rows whose ``[lo, hi)`` is exactly ``-`` (the logs' "no value")."""
        return ok & (hi - lo == 1) & (self.byte_at(lo, ok) == ord("-"))


def first_in(hits: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per row, the first hit in ``[lo, hi)``, or ``NOT_FOUND``."""
    if not len(hits):
        return np.full(len(lo), NOT_FOUND, dtype=np.int64)
    i = np.searchsorted(hits, lo, side="left")
    found = hits[np.minimum(i, len(hits) - 1)]
    return np.where((i < len(hits)) & (found >= lo) & (found < hi), found, NOT_FOUND)


def last_in(hits: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per row, the last hit in ``[lo, hi)``, or ``NOT_FOUND``."""
    if not len(hits):
        return np.full(len(lo), NOT_FOUND, dtype=np.int64)
    i = np.searchsorted(hits, hi, side="left") - 1
    found = np.where(i >= 0, hits[np.maximum(i, 0)], NOT_FOUND)
    return np.where((found >= lo) & (found < hi), found, NOT_FOUND)


def gather(column: Column, lo: np.ndarray, hi: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Substrings ``data[lo:hi]`` per row as a string array (null where not ``valid``)."""
    valid = valid & (hi >= lo)
    lengths = np.where(valid, hi - lo, 0)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    if total:
        shift = np.repeat(lo - offsets[:-1], lengths)
        data = column.data[np.arange(total, dtype=np.int64) + shift]
    else:
        data = np.zeros(0, dtype=np.uint8)
    n = len(lengths)
    validity = None
    null_count = int(n - np.count_nonzero(valid))
    if null_count:
        validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    if total < 2**31 - 1:
        return pa.Array.from_buffers(
            pa.string(), n, [validity, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)],
            null_count=null_count,
        )  # fmt: skip
    return pa.Array.from_buffers(
        pa.large_string(),
        n,
        [validity, pa.py_buffer(offsets), pa.py_buffer(data)],
        null_count=null_count,
    ).cast(pa.string())


def split_host_port(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """``ip:port`` / ``[v6]:port`` → (address text without brackets, port text or null)."""
    col = Column.of(values)
    colon = last_in(col.positions(ord(":")), col.starts, col.ends)
    bracket = col.byte_at(col.starts, col.valid) == ord("[")
    has_port = col.valid & (colon >= 0)
    if bracket.any():  # "[v6]" without a port: the last colon is inside the brackets
        closing = first_in(col.positions(ord("]")), col.starts, col.ends)
        has_port &= ~bracket | ((closing >= 0) & (colon > closing))
    ip_lo = col.starts + bracket
    ip_hi = np.where(has_port, colon, col.ends)
    ip_hi = ip_hi - (col.byte_at(ip_hi - 1, col.valid) == ord("]"))
    return gather(col, ip_lo, ip_hi, col.valid), gather(col, colon + 1, col.ends, has_port)


def split_request(values: pa.Array | pa.ChunkedArray) -> dict[str, pa.Array]:
    """``METHOD scheme://host:port/path?query PROTO`` → method/host/path/query/protocol texts.

    ``-`` parts are null (``"- - -"`` is ALB's request it could not parse); a URL without
    ``?`` has a null query, one ending in ``?`` an empty one; a URL without a scheme is taken
    as a path.
    """
    col = Column.of(values)
    rs, re_, ok = col.starts, col.ends, col.valid
    spaces, colons = col.positions(ord(" ")), col.positions(ord(":"))  # for the last ones
    sp1, sp2 = col.first(ord(" "), rs, re_), last_in(spaces, rs, re_)
    parts = ok & (sp1 >= 0) & (sp2 > sp1)
    us, ue = sp1 + 1, sp2
    url = parts & (ue > us) & ~col.is_dash(us, ue, parts)
    colon = col.first(ord(":"), us, ue)
    scheme = url & (colon >= 0)
    scheme &= (col.byte_at(colon + 1, scheme) == ord("/")) & (
        col.byte_at(colon + 2, scheme) == ord("/")
    )
    auth = np.where(scheme, colon + 3, us)
    query_at = col.first(ord("?"), auth, ue)
    slash = col.first(ord("/"), auth, np.where(query_at >= 0, query_at, ue))
    path_lo = np.where(slash >= 0, slash, np.where(query_at >= 0, query_at, ue))
    path_hi = np.where(query_at >= 0, query_at, ue)
    port_colon = last_in(colons, auth, path_lo)
    host_hi = np.where(
        (port_colon >= 0) & (col.byte_at(path_lo - 1, url) != ord("]")), port_colon, path_lo
    )
    return {
        "method": gather(col, rs, sp1, parts & ~col.is_dash(rs, sp1, parts)),
        "host": gather(col, auth, host_hi, url & (host_hi > auth)),
        "path": gather(col, path_lo, path_hi, url & (path_hi > path_lo)),
        "query": gather(col, query_at + 1, ue, url & (query_at >= 0)),
        "protocol": gather(col, sp2 + 1, re_, parts & ~col.is_dash(sp2 + 1, re_, parts)),
    }
