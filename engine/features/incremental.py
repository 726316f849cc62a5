"""Incremental sliding windows: each evaluation re-reduces only the clients whose panes changed.

The 1/5/15/60-minute frames of the last evaluation are kept. Moving to the next pane boundary
changes a window only for the clients of the panes that enter it, the panes that leave it,
and the panes that received rows since (late rows, a pane closed early and reopened). Those
clients — usually a small share of the hour's active clients — are re-reduced from their
pane rows with the very same ``finalize_windows`` (so every feature, bottom-k set and
histogram is exact), and spliced into the kept frames by client code. Everyone else's
feature row is carried over unchanged: a client's window features depend on its own panes
only. ``finalize_windows`` over every pane stays the oracle the tests compare with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.features.window import finalize_windows
from engine.schema.features import FeatureFrame

# Above this share of the longest window's clients changed, a full re-reduction is cheaper.
FULL_SHARE = 0.6


@dataclass
class _Rows:
    """The rows of some clients of one pane, in the attribute form ``finalize_windows`` reads."""

    counts: np.ndarray
    entropy: np.ndarray
    bytes_out: np.ndarray
    first_ms: np.ndarray
    last_ms: np.ndarray
    gap_n: np.ndarray
    gap_sum: np.ndarray
    gap_sq: np.ndarray

    @property
    def size(self) -> int:
        return len(self.first_ms)

    @classmethod
    def select(cls, part, rows: np.ndarray) -> _Rows:
        return cls(
            part.counts[rows],
            part.entropy[rows],
            part.bytes_out[rows],
            part.first_ms[rows],
            part.last_ms[rows],
            part.gap_n[rows],
            part.gap_sum[rows],
            part.gap_sq[rows],
        )


class IncrementalWindows:
    """The frames of the last evaluation and the pane versions they were built from."""

    def __init__(self, windows, k: int, full_share: float = FULL_SHARE) -> None:
        self.windows = tuple(sorted(windows))
        self.k = k
        self.full_share = full_share
        self.kept: dict[int, _Kept] = {}
        self.end_pane: int | None = None
        self.seen: dict[int, int] = {}  # pane -> version the frames include
        # pane -> (version, {family: client code of each key}), built once per pane version
        # so that picking the touched clients' keys needs no shift
        self._owners: dict[int, tuple[int, dict[str, np.ndarray]]] = {}
        self.full_evaluations = 0
        self.incremental_evaluations = 0

    def invalidate(self) -> None:
        """Client codes were renumbered: the next evaluation re-reduces everything."""
        self.kept, self.end_pane, self.seen, self._owners = {}, None, {}, {}

    def finalize(
        self,
        panes: dict,
        codes: dict[int, np.ndarray],
        keys: dict[int, dict[str, np.ndarray]],
        versions: dict[int, int],
        end_pane: int,
        end_ms: int,
        n_codes: int,
    ) -> dict[int, FeatureFrame]:
        """Every window ending at ``end_pane``, equal to ``finalize_windows`` over all panes."""
        longest = self.windows[-1]
        ids = [p for p in range(end_pane - longest + 1, end_pane + 1) if p in panes]
        changed = self._changed_panes(ids, versions, end_pane)
        if changed is None or any(p not in panes for p in changed):
            return self._full(panes, codes, keys, versions, ids, end_pane, end_ms)
        touched = np.zeros(n_codes, dtype=bool)
        for p in changed:
            touched[codes[p]] = True
        touched_codes = np.flatnonzero(touched)
        if len(touched_codes) > self.full_share * max(len(self.kept[longest].codes), 1):
            return self._full(panes, codes, keys, versions, ids, end_pane, end_ms)
        sub_panes, sub_codes, sub_ids, sub_keys = [], [], [], []
        for p in ids:
            rows = np.flatnonzero(touched[codes[p]])
            if len(rows) == 0:
                continue
            sub_panes.append(_Rows.select(panes[p], rows))
            sub_codes.append(codes[p][rows])
            sub_ids.append(p)
            owners = self._key_owners(p, versions[p], keys[p])
            sub_keys.append({fam: k[touched[owners[fam]]] for fam, k in keys[p].items()})
        fresh = finalize_windows(
            sub_panes, sub_codes, sub_ids, self.windows, end_pane, end_ms, self.k, sub_keys
        )
        self.kept = {
            w: self.kept[w].splice(fresh[w], touched, touched_codes) for w in self.windows
        }
        self._remember(ids, versions, end_pane)
        self.incremental_evaluations += 1
        return {w: kept.frame(w, end_ms) for w, kept in self.kept.items()}

    def _changed_panes(self, ids, versions, end_pane) -> set[int] | None:
        """Panes whose clients' features may differ from the kept frames (None: no frames)."""
        if self.end_pane is None:
            return None
        changed: set[int] = set()
        for w in self.windows:
            now = {p for p in ids if p > end_pane - w}
            before = {p for p in self.seen if p > self.end_pane - w}
            changed |= now ^ before
            changed |= {p for p in now & before if versions[p] != self.seen[p]}
        return changed

    def _full(self, panes, codes, keys, versions, ids, end_pane, end_ms):
        frames = finalize_windows(
            [panes[p] for p in ids],
            [codes[p] for p in ids],
            ids,
            self.windows,
            end_pane,
            end_ms,
            self.k,
            [keys[p] for p in ids],
        )
        self.kept = {w: _Kept.of(frame) for w, frame in frames.items()}
        self._remember(ids, versions, end_pane)
        self.full_evaluations += 1
        return frames

    def _remember(self, ids, versions, end_pane) -> None:
        self.end_pane = end_pane
        self.seen = {p: versions[p] for p in ids}
        for p in [p for p in self._owners if p not in self.seen]:
            del self._owners[p]

    def _key_owners(self, pane: int, version: int, keys: dict[str, np.ndarray]):
        """The client code of each of a pane's bottom-k keys (``code << 32 | hash``), kept
        per pane version: picking the touched clients' keys is then one mask per family."""
        cached = self._owners.get(pane)
        if cached is not None and cached[0] == version:
            return cached[1]
        owners = {fam: (k >> np.uint64(32)).astype(np.int32) for fam, k in keys.items()}
        self._owners[pane] = (version, owners)
        return owners

    def nbytes(self) -> int:
        """Bytes of the kept frames and key owners (a cache beside the pane state)."""
        frames = sum(
            k.codes.nbytes + k.matrix.nbytes + k.fingerprint_keys.nbytes + k.path_keys.nbytes
            for k in self.kept.values()
        )
        owners = sum(a.nbytes for _, fams in self._owners.values() for a in fams.values())
        return frames + owners


def _key_rows(keys: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Indices of the sorted ``code << 32 | hash`` keys that belong to ``codes`` (sorted),
    found by binary search: no pass over the other clients' keys."""
    c = codes.astype(np.uint64)
    lo = np.searchsorted(keys, c << np.uint64(32))
    hi = np.searchsorted(keys, (c + np.uint64(1)) << np.uint64(32))
    lens = hi - lo
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(lo - (np.cumsum(lens) - lens), lens)
    return np.arange(total, dtype=np.int64) + offsets


@dataclass
class _Kept:
    """One window's frame in splice-friendly form: columns as rows of one matrix."""

    codes: np.ndarray
    names: list[str]
    matrix: np.ndarray  # (len(names), len(codes)) float64
    fingerprint_keys: np.ndarray
    path_keys: np.ndarray

    @classmethod
    def of(cls, frame: FeatureFrame) -> _Kept:
        names = list(frame.columns)
        matrix = (
            np.stack([frame.columns[n] for n in names])
            if names
            else np.zeros((0, len(frame)), dtype=np.float64)
        )
        return cls(frame.codes, names, matrix, frame.fingerprint_keys, frame.path_keys)

    def frame(self, window_min: int, end_ms: int) -> FeatureFrame:
        if len(self.codes) == 0:
            return FeatureFrame(window_min, end_ms, np.zeros(0, np.int64))
        cols = {name: self.matrix[i] for i, name in enumerate(self.names)}
        return FeatureFrame(
            window_min, end_ms, self.codes, cols, self.fingerprint_keys, self.path_keys
        )

    def splice(self, new: FeatureFrame, touched: np.ndarray, touched_codes: np.ndarray) -> _Kept:
        """Without the touched clients, plus their re-reduced rows (``new``), by code."""
        if len(self.codes) == 0:
            return _Kept.of(new)
        keep = ~touched[self.codes]
        kept_codes = self.codes[keep]
        if len(new) == 0 and len(kept_codes) == len(self.codes):
            return self
        if len(kept_codes) == 0:
            return _Kept.of(new)
        n = len(kept_codes) + len(new)
        at = np.searchsorted(kept_codes, new.codes) + np.arange(len(new))
        old_at = np.ones(n, dtype=bool)
        old_at[at] = False
        # One gather over [old | new] columns: cheaper than a masked gather and scatter.
        source = np.empty(n, dtype=np.int64)
        source[old_at] = np.flatnonzero(keep)
        source[at] = len(self.codes) + np.arange(len(new))
        codes = np.concatenate([self.codes, new.codes])[source]
        if len(new):
            fresh = np.stack([new.columns[name] for name in self.names])
            matrix = np.concatenate([self.matrix, fresh], axis=1).take(source, axis=1)
        else:
            matrix = self.matrix.take(source, axis=1)
        return _Kept(
            codes,
            self.names,
            matrix,
            _splice_keys(self.fingerprint_keys, new.fingerprint_keys, touched_codes),
            _splice_keys(self.path_keys, new.path_keys, touched_codes),
        )


def _splice_keys(old: np.ndarray, new: np.ndarray, touched_codes: np.ndarray) -> np.ndarray:
    keep = np.ones(len(old), dtype=bool)
    keep[_key_rows(old, touched_codes)] = False
    kept = old[keep]
    return np.insert(kept, np.searchsorted(kept, new), new)
