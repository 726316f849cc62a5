"""Shared shapes and columnar helpers for the baseline re-implementations.

Every baseline is a pure function of canonical request rows (in any order) that returns a
``BaselineResult``: for each client IP it would have blocked, the *event time* at which its
rule condition was met (``detected_ms``) and the time the block would actually be in force
given the system's structural delays (``effective_ms``: log delivery, schedules, polling),
as ``peer-baselines.md`` §0 asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.schema import request as rq

MINUTE_MS = 60_000
FIVE_MIN_MS = 300_000


@dataclass(frozen=True, slots=True)
class Flag:
    """One client a baseline blocks: when the condition held, when the block is in force."""

    detected_ms: int
    effective_ms: int
    reason: str


@dataclass
class BaselineResult:
    """The clients one baseline flags over a stream."""

    baseline_id: str
    version: str  # what it reproduces (release, hub commit) and any substitution made
    flagged: dict[str, Flag] = field(default_factory=dict)

    def add(self, ip: str, flag: Flag) -> None:
        """Keep the earliest flag per client."""
        old = self.flagged.get(ip)
        if old is None or flag.detected_ms < old.detected_ms:
            self.flagged[ip] = flag


@dataclass(frozen=True)
class Rows:
    """Rows of a table as numpy arrays sorted by (client, time); clients dictionary-coded."""

    code: np.ndarray  # int64 client code per row
    ts: np.ndarray  # int64 epoch ms per row
    ips: list[str]  # code -> client IP
    index: np.ndarray  # original row index per sorted row

    @classmethod
    def of(cls, table: pa.Table, mask: pa.Array | np.ndarray | None = None) -> Rows:
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            keep = np.flatnonzero(mask)
        else:
            keep = np.arange(table.num_rows)
        enc = pc.dictionary_encode(table[rq.CLIENT_IP]).combine_chunks()
        codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)[keep]
        ts = table[rq.EVENT_TIME].cast(pa.int64()).to_numpy()[keep]
        order = np.lexsort((ts, codes))
        return cls(codes[order], ts[order], enc.dictionary.to_pylist(), keep[order])

    def __len__(self) -> int:
        return int(self.ts.size)


def group_start(code: np.ndarray) -> np.ndarray:
    """For each sorted row, the index of the first row of its group."""
    if code.size == 0:
        return code
    starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
    return starts[np.searchsorted(starts, np.arange(code.size), side="right") - 1]


def nth_in_window(rows: Rows, n: int, window_ms: int) -> dict[int, tuple[int, int]]:
    """Per client: the earliest time its n-th event within a trailing window occurs.

    Returns ``code -> (time_ms, sorted_row)``: row i qualifies when the event n-1 places
    earlier belongs to the same client and is less than ``window_ms`` older.
    """
    if len(rows) == 0 or n < 1:
        return {}
    i = np.arange(len(rows))
    j = i - (n - 1)
    ok = j >= group_start(rows.code)
    jj = np.where(ok, j, 0)
    ok &= rows.ts - rows.ts[jj] < window_ms
    return _first_per_code(rows, np.flatnonzero(ok))


def nth_in_bucket(rows: Rows, n: int, bucket_ms: int) -> dict[int, tuple[int, int]]:
    """Per client: the earliest n-th event inside one fixed time bucket (e.g. a minute)."""
    if len(rows) == 0:
        return {}
    bucket = rows.ts // bucket_ms
    key_change = np.r_[True, (rows.code[1:] != rows.code[:-1]) | (bucket[1:] != bucket[:-1])]
    starts = np.flatnonzero(key_change)
    rank = np.arange(len(rows)) - starts[np.searchsorted(starts, np.arange(len(rows)), "right") - 1]
    return _first_per_code(rows, np.flatnonzero(rank == n - 1))


def _first_per_code(rows: Rows, hits: np.ndarray) -> dict[int, tuple[int, int]]:
    out: dict[int, tuple[int, int]] = {}
    if hits.size == 0:
        return out
    order = np.lexsort((rows.ts[hits], rows.code[hits]))
    hits = hits[order]
    codes, first = np.unique(rows.code[hits], return_index=True)
    for c, f in zip(codes.tolist(), first.tolist(), strict=True):
        out[c] = (int(rows.ts[hits[f]]), int(hits[f]))
    return out


def ceil_to(ms: int, step_ms: int) -> int:
    """The next multiple of ``step_ms`` at or after ``ms``."""
    return -(-ms // step_ms) * step_ms


def file_end(ms: int, step_ms: int = FIVE_MIN_MS) -> int:
    """End of the log file interval holding an event at ``ms`` (files cover (end-5min, end])."""
    return (ms // step_ms + 1) * step_ms
