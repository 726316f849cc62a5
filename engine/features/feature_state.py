"""The streaming feature state: panes by event time, a watermark, and bounded memory.

``add`` folds a request batch into its panes (late rows land in their own, older panes);
the watermark is the newest event time seen minus the allowed lateness, and a pane is final
once the watermark passes its end. An idle source lets the caller close panes early
(``closable(final=True)``): a pane closed before the watermark passed it is reopened by rows
that arrive for it later and closed — evaluated — again once the watermark passes it.
``snapshot`` finalizes every configured window ending at a pane; ``evict`` drops panes older
than the longest window behind the last closed pane, so memory follows the active clients,
not the history.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.core.feeds import CLOUDFRONT, load_feed
from engine.features import pane as P
from engine.features.config import FeatureConfig
from engine.features.identity import ClientResolver
from engine.features.incremental import IncrementalWindows
from engine.features.patterns import Patterns
from engine.features.row_signals import row_signals
from engine.features.window import finalize_windows, pane_keys
from engine.schema.evidence import PRIORITY, EvidenceSample
from engine.schema.features import Snapshot
from engine.schema.request import EVENT_TIME, SOURCE


@dataclass
class StoreStats:
    rows: int = 0
    # rows by log family (``source``): a web ACL's log beside its ALB's or CloudFront's, not
    # joined, means every request twice (``engine.pipeline.topology_notices``)
    rows_by_source: dict[str, int] = field(default_factory=dict)
    edge_rows: int = 0
    forwarded_rows: int = 0  # viewer read from X-Forwarded-For behind CloudFront
    no_identity_rows: dict[str, int] = field(default_factory=dict)  # reason -> proxied rows
    late_rows: int = 0
    dropped_too_late: int = 0
    panes_closed: int = 0
    panes_evicted: int = 0
    extra: dict = field(default_factory=dict)


class FeatureStore:
    """Pane state for one worker (or one shard of clients)."""

    def __init__(self, cfg: FeatureConfig | None = None, *, incremental: bool = True) -> None:
        """``incremental=False`` re-reduces every window from all its panes at every
        evaluation: the oracle the incremental windows are tested against."""
        self.cfg = cfg or FeatureConfig()
        self.patterns = Patterns(self.cfg)
        edges = list(self.cfg.cloudfront_origin_cidrs)
        if self.cfg.cloudfront_feed:
            edges += load_feed(CLOUDFRONT, self.cfg.feeds_dir).networks
        self.resolver = ClientResolver(
            self.cfg.trusted_proxies, edges, ipv6_prefix=self.cfg.ipv6_client_prefix
        )
        self.panes: dict[int, P.PanePartial] = {}
        self._codes: dict[int, np.ndarray] = {}
        self._name_arr = pa.array([], pa.string())
        self._names: list[str] = []
        self.max_event_ms: int | None = None
        self.closed_through: int | None = None  # last pane finalized
        self.stats = StoreStats()
        self._evidence_cache: dict[int, tuple] = {}  # pane -> (samples, table, index)
        self._keys: dict[int, dict[str, np.ndarray]] = {}  # sorted distinct keys per pane
        self._early: set[int] = set()  # panes closed before the watermark passed their end
        self._reopened: set[int] = set()  # early-closed panes that received rows since
        self._versions: dict[int, int] = {}  # pane -> count of merges into it
        self._windows = (
            IncrementalWindows(self.cfg.windows_min, self.cfg.distinct_k) if incremental else None
        )
        self._names_obj: np.ndarray | None = None  # _names as an object array, until it grows

    # --- ingest ------------------------------------------------------------------------
    @property
    def watermark_ms(self) -> int | None:
        if self.max_event_ms is None:
            return None
        return self.max_event_ms - self.cfg.allowed_lateness_s * 1000

    def add(self, table: pa.Table) -> None:
        """Fold one canonical batch into its panes."""
        if table.num_rows == 0:
            return
        self.stats.rows += table.num_rows
        for row in pc.value_counts(table.column(SOURCE)).to_pylist():
            by_source = self.stats.rows_by_source
            by_source[row["values"]] = by_source.get(row["values"], 0) + row["counts"]
        clients, edge, unknown, forwarded = self.resolver.resolve(table)
        drop = edge.copy()
        self.stats.edge_rows += int(edge.sum())
        self.stats.forwarded_rows += int(forwarded.sum())
        for reason, rows in unknown.items():
            n = int((rows & ~edge).sum())
            self.stats.no_identity_rows[reason] = self.stats.no_identity_rows.get(reason, 0) + n
            drop |= rows
        if drop.any():
            keep = pa.array(~drop)
            table, clients = table.filter(keep), pc.filter(clients, keep)
        ts = table.column(EVENT_TIME).cast(pa.int64()).to_numpy()
        if self.closed_through is not None and len(ts):
            pane = ts // P.PANE_MS
            oldest = self.closed_through - self.cfg.longest_window + 1
            too_old = pane < oldest
            closed = pane <= self.closed_through
            if self._early:
                early = np.isin(pane, np.fromiter(self._early, np.int64, len(self._early)))
                self._reopened.update(int(p) for p in np.unique(pane[early & ~too_old]))
                closed &= ~early  # rows of a pane closed early are on time, not late
            self.stats.late_rows += int(closed.sum())
            if too_old.any():
                self.stats.dropped_too_late += int(too_old.sum())
                keep = pa.array(~too_old)
                table, clients, ts = table.filter(keep), pc.filter(clients, keep), ts[~too_old]
        if table.num_rows == 0:
            return
        sig = row_signals(table, clients, self.cfg, self.patterns)
        for part in P.from_batch(
            sig, self.cfg.distinct_k, self.cfg.entropy_buckets, self.cfg.evidence_per_client, table
        ):
            self._put(part)
        newest = int(ts.max())
        self.max_event_ms = newest if self.max_event_ms is None else max(self.max_event_ms, newest)

    def partials(self) -> list[P.PanePartial]:
        """Every pane's partial in pane order, bottom-k sets restored: what a worker that only
        aggregates (a Spark executor) ships on to be merged by client key elsewhere."""
        return [
            dataclasses.replace(self.panes[p], distinct=self._distinct_from_keys(p))
            for p in sorted(self.panes)
        ]

    def add_partial(self, part: P.PanePartial) -> None:
        """Fold in a partial aggregated elsewhere (merged by ``P.merge`` when the pane exists);
        the watermark follows its newest request."""
        if part.size == 0:
            return
        self._put(part)
        newest = int(part.last_ms.max())
        self.max_event_ms = newest if self.max_event_ms is None else max(self.max_event_ms, newest)

    def _put(self, part: P.PanePartial) -> None:
        old = self.panes.get(part.pane)
        if old is not None:
            old.distinct = self._distinct_from_keys(part.pane)
            part = P.merge(old, part, self.cfg.distinct_k, self.cfg.evidence_per_client)
        self.panes[part.pane] = part
        self._versions[part.pane] = self._versions.get(part.pane, 0) + 1
        self._codes[part.pane] = self._intern(part.clients)
        self._keys[part.pane] = pane_keys(part, self._codes[part.pane])
        # The bottom-k sets live on only as sorted global keys (one copy, 8 bytes an entry);
        # the per-pane (row, hash) form is rebuilt when a late partial must merge in.
        part.distinct = {}

    def _distinct_from_keys(self, pane: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """A stored pane's bottom-k sets back in ``PanePartial`` (row, hash) form."""
        codes = self._codes[pane]
        order = np.argsort(codes)
        out = {}
        for fam, keys in self._keys[pane].items():
            code = (keys >> np.uint64(32)).astype(np.int64)
            g = order[np.searchsorted(codes[order], code)].astype(np.int32)
            h = (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)
            o = np.lexsort((h, g))
            out[fam] = (g[o], h[o])
        return out

    def _intern(self, clients: pa.Array) -> np.ndarray:
        """Global codes of a pane's (unique) client keys; new keys are appended."""
        clients = clients.cast(pa.string())
        idx = pc.index_in(clients, value_set=self._name_arr)
        out = pc.fill_null(idx, -1).to_numpy().astype(np.int64)
        new = out < 0
        if new.any():
            fresh = pc.filter(clients, pa.array(new))
            out[new] = len(self._names) + np.arange(len(fresh))
            self._names.extend(fresh.to_pylist())
            self._names_obj = None
            self._name_arr = pa.concat_arrays([self._name_arr, fresh])
        return out

    # --- panes and windows -----------------------------------------------------------------
    def closable(self, final: bool = False) -> list[int]:
        """Panes (with data) whose end the watermark has passed and that are not closed yet,
        or were closed early and received rows since; ``final`` takes every one of them
        however far the watermark is (end of input, or a source gone idle)."""
        wm = self.watermark_ms
        if wm is None:
            return []
        self._early = {p for p in self._early if (p + 1) * P.PANE_MS > wm}
        done = self.closed_through if self.closed_through is not None else -(2**62)
        return sorted(
            p
            for p in self.panes
            if (p > done or p in self._reopened) and (final or (p + 1) * P.PANE_MS <= wm)
        )

    def has_open_panes(self) -> bool:
        """Whether any pane holds rows that no evaluation has seen yet."""
        return bool(self.closable(final=True))

    def snapshot(self, pane: int) -> Snapshot:
        """Finalize every configured window ending at the end of ``pane``; mark it closed."""
        end_ms = (pane + 1) * P.PANE_MS
        if self._windows is not None:
            frames = self._windows.finalize(
                self.panes, self._codes, self._keys, self._versions, pane, end_ms, len(self._names)
            )
        else:
            reach = range(pane - self.cfg.longest_window + 1, pane + 1)
            ids = [p for p in reach if p in self.panes]
            frames = finalize_windows(
                [self.panes[p] for p in ids],
                [self._codes[p] for p in ids],
                ids,
                self.cfg.windows_min,
                pane,
                end_ms,
                self.cfg.distinct_k,
                [self._keys[p] for p in ids],
            )
        self.closed_through = (
            pane if self.closed_through is None else max(self.closed_through, pane)
        )
        self._reopened.discard(pane)
        wm = self.watermark_ms
        if wm is not None and end_ms > wm:
            self._early.add(pane)
        self.stats.panes_closed += 1
        if self._names_obj is None:
            self._names_obj = np.asarray(self._names, dtype=object)
        return Snapshot(end_ms, frames, self._names_obj)

    def evict(self) -> None:
        """Drop panes that no window can reach any more, and compact the client interner."""
        if self.closed_through is None:
            return
        oldest = self.closed_through - self.cfg.longest_window + 1
        for p in [p for p in self.panes if p < oldest]:
            del self.panes[p], self._codes[p], self._keys[p], self._versions[p]
            self._early.discard(p)
            self._reopened.discard(p)
            self._evidence_cache.pop(p, None)
            self.stats.panes_evicted += 1
        live = self.active_clients()
        if len(self._names) > 2 * live + 1024:
            self._compact()

    def _compact(self) -> None:
        restored = {p: self._distinct_from_keys(p) for p in self.panes}  # under the old codes
        self._names = []
        self._names_obj = None
        self._name_arr = pa.array([], pa.string())
        if self._windows is not None:
            self._windows.invalidate()  # the kept frames speak the old codes
        for p, part in self.panes.items():
            part.distinct = restored[p]
            self._codes[p] = self._intern(part.clients)
            self._keys[p] = pane_keys(part, self._codes[p])
            part.distinct = {}

    def samples(self, client: str, panes: int = 5) -> list[EvidenceSample]:
        """Evidence for a client from its most recent panes, most telling first."""
        upto = self.closed_through if self.closed_through is not None else max(self.panes)
        recent = sorted((p for p in self.panes if p <= upto), reverse=True)[:panes]
        rows: list[dict] = []
        for p in recent:
            table, index = self._evidence_index(p)
            where = index.get(client)
            if where is not None:
                rows.extend(table.take(pa.array(where)).to_pylist())
        rows.sort(key=lambda r: -r[PRIORITY])
        return [EvidenceSample.from_dict(r) for r in rows[: self.cfg.evidence_per_client]]

    def _evidence_index(self, pane: int) -> tuple[pa.Table, dict[str, np.ndarray]]:
        """One pane's sample rows and a client → row-indices map, built once per pane state
        (detectors ask for evidence one verdict at a time, pane after pane)."""
        samples = self.panes[pane].samples
        cached = self._evidence_cache.get(pane)
        if cached is not None and cached[0] is samples:
            return cached[1], cached[2]
        if samples is None or samples.num_rows == 0:
            table, index = pa.table({}), {}
        else:
            enc = pc.dictionary_encode(samples.column("client").combine_chunks())
            codes = enc.indices.to_numpy()
            order = np.argsort(codes, kind="stable")
            bounds = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0, True])
            names = enc.dictionary.to_pylist()
            index = {names[codes[order[a]]]: order[a:b] for a, b in itertools.pairwise(bounds)}
            table = samples.drop_columns(["client", "pane"]).combine_chunks()
            stamps = pc.strftime(table.column(EVENT_TIME), format="%Y-%m-%dT%H:%M:%SZ")
            table = table.set_column(table.schema.get_field_index(EVENT_TIME), EVENT_TIME, stamps)
        self._evidence_cache[pane] = (samples, table, index)
        return table, index

    @property
    def client_names(self) -> pa.Array:
        """Client key of every global code (index = code)."""
        return self._name_arr

    # --- accounting --------------------------------------------------------------------
    def active_clients(self) -> int:
        if not self._codes:
            return 0
        return len(np.unique(np.concatenate(list(self._codes.values()))))

    def state_bytes(self) -> int:
        """Bytes of feature state held in panes (evidence samples excluded)."""
        keys = sum(a.nbytes for kp in self._keys.values() for a in kp.values())
        return keys + sum(p.nbytes() + self._codes[k].nbytes for k, p in self.panes.items())

    def window_cache_bytes(self) -> int:
        """Bytes the incremental windows keep between evaluations (their last frames: about
        8 B per feature per window per active client)."""
        return 0 if self._windows is None else self._windows.nbytes()

    def sample_bytes(self) -> int:
        return sum(p.samples.nbytes for p in self.panes.values() if p.samples is not None)
