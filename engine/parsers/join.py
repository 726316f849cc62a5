"""Join a web ACL's log with the ALB or CloudFront log of the same requests, by request id.

A web ACL's log names the client (behind CloudFront, the viewer through X-Forwarded-For)
and carries the WAF's labels and actions, but no response status: without it, failed logins
are invisible and credential stuffing goes unseen. When the load balancer's or the
distribution's log of the same traffic is delivered too, each WAF record gets its status
back from its partner (``log-formats.md`` §8):

- WAF ``httpRequest.requestId`` of an ALB-attached web ACL is the ALB's trace id: the
  ``Root=1-…`` component of the ALB ``trace_id`` field (which may carry ``Self=``, ``Root=``
  and other ``;``-separated fields);
- WAF ``requestId`` of a CloudFront web ACL is CloudFront's ``x-edge-request-id``.

Both logs land in their own time (ALB and WAF every 5 minutes, CloudFront within the hour),
so each side waits in a buffer bounded by rows and by event-time age. A WAF record leaves
when its partner arrives (status, origin status, bytes and duration filled where it had
none) or, unmatched, when it has waited ``max_wait_s`` or the buffer is full — never
dropped. Partner records are the same requests: they are consumed by the join, and those
that never meet a WAF record are counted when they expire. One hash lookup per batch
(``pyarrow.compute.index_in``) over the columns; no per-row Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.schema import request as rq

FILLED = (rq.STATUS, rq.ORIGIN_STATUS, rq.BYTES_OUT, rq.DURATION_MS)  # taken from the partner
PARTNERS = (rq.SOURCE_ALB, rq.SOURCE_CLOUDFRONT)
_KEY = "_join_key"
_ROOT = r"(?:^|;)\s*Root=(?P<root>[^;\s]+)"


def join_key(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The part of a request id both logs share: the ``Root=`` component of an ALB trace id,
    any other id as it is; empty ids are null (they join nothing)."""
    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    ids = pc.if_else(pc.equal(ids, ""), pa.scalar(None, pa.string()), ids)
    root = pc.struct_field(pc.extract_regex(ids, _ROOT), "root")
    return pc.coalesce(root, ids)


@dataclass
class JoinCounts:
    """What the join did so far (for status and logs)."""

    matched: int = 0  # WAF records that got their partner's status
    unmatched: int = 0  # WAF records released without a partner (waited too long, or full)
    partners_expired: int = 0  # ALB / CloudFront records no WAF record claimed
    passed: int = 0  # rows of any other source, passed through unchanged


class RequestJoin:
    """Bounded, event-time join of WAF records with their ALB / CloudFront partners.

    ``feed`` takes parsed tables of any source mix and returns the rows ready to analyse:
    matched WAF records, WAF records released unmatched, and rows of sources the join does
    not pair (passed through). ``flush`` releases everything still waiting."""

    def __init__(self, max_rows: int = 500_000, max_wait_s: float = 3_900.0) -> None:
        if max_rows < 1 or max_wait_s <= 0:
            raise ValueError("max_rows must be ≥ 1 and max_wait_s > 0")
        self.max_rows = max_rows
        self.max_wait_ms = int(max_wait_s * 1000)
        self.counts = JoinCounts()
        self._waf = rq.REQUEST_SCHEMA.empty_table().append_column(_KEY, pa.array([], pa.string()))
        self._partners = pa.table(
            {
                _KEY: pa.array([], pa.string()),
                rq.EVENT_TIME: pa.array([], rq.TIMESTAMP_TYPE),
                **{c: pa.array([], rq.REQUEST_SCHEMA.field(c).type) for c in FILLED},
            }
        )
        self._clock_ms: int | None = None  # the latest event time seen

    def feed(self, table: pa.Table) -> pa.Table:
        table = table.select(rq.COLUMNS)
        if table.num_rows:
            latest = pc.max(table[rq.EVENT_TIME]).cast(pa.int64()).as_py()
            self._clock_ms = latest if self._clock_ms is None else max(self._clock_ms, latest)
        source = table[rq.SOURCE]
        is_waf = pc.equal(source, rq.SOURCE_WAF)
        is_partner = pc.is_in(source, value_set=pa.array(PARTNERS))
        waf = table.filter(is_waf)
        partners = table.filter(is_partner)
        other = table.filter(pc.invert(pc.or_(is_waf, is_partner)))
        self.counts.passed += other.num_rows
        keyed = waf.cast(rq.REQUEST_SCHEMA).append_column(_KEY, join_key(waf[rq.REQUEST_ID]))
        self._waf = pa.concat_tables([self._waf, keyed.cast(self._waf.schema)])
        keys = join_key(partners[rq.REQUEST_ID])
        fresh = partners.select([rq.EVENT_TIME, *FILLED]).append_column(_KEY, keys)
        self._partners = pa.concat_tables(
            [
                self._partners,
                fresh.filter(pc.is_valid(keys))
                .select(self._partners.schema.names)
                .cast(self._partners.schema),
            ]
        )
        out = [other, self._match()]
        out.append(self._expire())
        return _ordered(out)

    def flush(self) -> pa.Table:
        """Every WAF record still waiting, unmatched; the partners left are counted."""
        rest = self._waf.drop_columns([_KEY])
        self.counts.unmatched += rest.num_rows
        self.counts.partners_expired += self._partners.num_rows
        self._waf = self._waf.slice(0, 0)
        self._partners = self._partners.slice(0, 0)
        return _ordered([rest])

    @property
    def waiting(self) -> tuple[int, int]:
        """(WAF records, partner records) in the buffers."""
        return self._waf.num_rows, self._partners.num_rows

    def _match(self) -> pa.Table:
        if not self._waf.num_rows or not self._partners.num_rows:
            return _empty()
        pkeys = self._partners[_KEY].combine_chunks()
        at = pc.index_in(self._waf[_KEY], value_set=pkeys)  # first partner of each key
        hit = pc.is_valid(at)
        if not pc.any(hit).as_py():
            return _empty()
        matched = self._waf.filter(hit)
        rows = pc.filter(at, hit)
        partner = self._partners.take(rows)
        for col in FILLED:
            i = matched.schema.get_field_index(col)
            filled = pc.coalesce(matched[col], partner[col].cast(matched.schema.field(col).type))
            matched = matched.set_column(i, matched.schema.field(col), filled)
        used = np.zeros(self._partners.num_rows, dtype=bool)
        used[rows.to_numpy(zero_copy_only=False)] = True
        # every partner sharing a claimed key goes (a log delivered twice adds no requests)
        used |= pc.is_in(pkeys, value_set=pc.unique(pc.take(pkeys, rows))).to_numpy(
            zero_copy_only=False
        )
        self._partners = self._partners.filter(pa.array(~used))
        self._waf = self._waf.filter(pc.invert(hit))
        self.counts.matched += matched.num_rows
        return matched.drop_columns([_KEY])

    def _expire(self) -> pa.Table:
        """Release WAF records past their wait (or beyond the bound), oldest first; drop
        partners likewise."""
        if self._clock_ms is None:
            return _empty()
        horizon = pa.scalar(self._clock_ms - self.max_wait_ms, pa.int64()).cast(rq.TIMESTAMP_TYPE)
        self._partners = _keep_newest(
            self._partners, horizon, self.max_rows, self.counts, "partners_expired"
        )
        old = self._waf.filter(pc.less(self._waf[rq.EVENT_TIME], horizon))
        self._waf = self._waf.filter(pc.greater_equal(self._waf[rq.EVENT_TIME], horizon))
        over = self._waf.num_rows - self.max_rows
        if over > 0:
            self._waf = self._waf.sort_by([(rq.EVENT_TIME, "ascending")])
            old = pa.concat_tables([old, self._waf.slice(0, over)])
            self._waf = self._waf.slice(over)
        self.counts.unmatched += old.num_rows
        return old.drop_columns([_KEY])


def _keep_newest(t: pa.Table, horizon, max_rows: int, counts: JoinCounts, name: str) -> pa.Table:
    kept = t.filter(pc.greater_equal(t[rq.EVENT_TIME], horizon))
    if kept.num_rows > max_rows:
        kept = kept.sort_by([(rq.EVENT_TIME, "ascending")]).slice(kept.num_rows - max_rows)
    setattr(counts, name, getattr(counts, name) + t.num_rows - kept.num_rows)
    return kept


def _empty() -> pa.Table:
    return rq.REQUEST_SCHEMA.empty_table()


def _ordered(tables: list[pa.Table]) -> pa.Table:
    t = pa.concat_tables([x.select(rq.COLUMNS).cast(rq.REQUEST_SCHEMA) for x in tables])
    return t.sort_by([(rq.EVENT_TIME, "ascending")]) if t.num_rows else t
