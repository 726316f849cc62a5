"""From decisions to IP-set entries: allowlist, precedence, aggregation, budget and shards.

Networks are handled as integer ranges (family, first, last), which is ~10x faster than
``ipaddress`` objects at 100,000 decisions and makes the set algebra explicit. Each step is a
pure function over ``Candidate`` (one decided CIDR) or ``Entry`` (one IP-set line) lists and
returns what it keeps plus ``OverflowEntry`` records for what it does not, so nothing a
decision asked for disappears without a reason in the document.

Invariants (tested with hypothesis):
- no entry overlaps an allowlisted range (overlapping decided CIDRs are split around it);
- aggregation never widens: entries are the minimal CIDR cover of exactly the decided
  addresses (what ``ipaddress.collapse_addresses`` returns for the same networks);
- the output depends only on the input *set*: every ordering is explicit.
"""

from __future__ import annotations

import zlib
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from engine.core import netaddr
from engine.schema.decision import Decision
from engine.schema.rule import OverflowEntry

# Stronger first: an address listed by a stronger category is dropped from weaker ones.
PRECEDENCE = ("block", "captcha", "challenge", "rate_limit", "count")
BITS = netaddr.BITS


@dataclass(frozen=True, slots=True)
class Candidate:
    """One CIDR a decision covers (its client, one campaign member, or a piece of either)."""

    version: int
    start: int
    prefixlen: int
    category: str
    score: float
    ts: float  # decided_at, epoch seconds
    decision_id: str

    @property
    def end(self) -> int:
        return self.start + (1 << (BITS[self.version] - self.prefixlen)) - 1


@dataclass(frozen=True, slots=True)
class Entry:
    """One IP-set line: a canonical CIDR with the strongest evidence behind it."""

    version: int
    start: int
    prefixlen: int
    category: str
    score: float
    ts: float
    decision_ids: tuple[str, ...]

    @property
    def cidr(self) -> str:
        return netaddr.network_text(self.version, self.start, self.prefixlen)

    @property
    def rank_key(self) -> tuple:
        """Best first: score, then recency, then a total order for determinism."""
        return (-self.score, -self.ts, self.version, self.start, self.prefixlen, self.category)


def address_key(text: str) -> tuple[int, int, int, int, str]:
    """Sort key of an IP or CIDR text: family, network number, prefix length; text the
    address rules refuse sorts last, by its text."""
    try:
        return (0, *netaddr.parse_network(text), "")
    except netaddr.AddressError:
        return (1, 0, 0, 0, text)


def range_to_cidrs(start: int, end: int, bits: int) -> list[tuple[int, int]]:
    """The minimal CIDR cover of [start, end] as (network, prefix length), in order."""
    out = []
    while start <= end:
        size = start & -start if start else 1 << (bits - 1)  # largest aligned block, never /0
        while size > end - start + 1:
            size >>= 1
        out.append((start, bits - size.bit_length() + 1))
        start += size
    return out


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _overflow(
    client: str,
    category: str,
    reason: str,
    score: float,
    ts: float,
    ids: Iterable[str],
    detail: str = "",
) -> OverflowEntry:
    return OverflowEntry(
        client=client,
        category=category,
        reason=reason,
        score=float(score),
        decided_at=_iso(ts),
        decision_ids=tuple(sorted(set(ids))),
        detail=detail,
    )


def decision_key(decision: Decision) -> str:
    """A stable identity for a decision without an id (client, action, time)."""
    if decision.id:
        return decision.id
    return f"{decision.client}|{decision.action.value}|{_iso(decision.decided_at.timestamp())}"


def collect(
    decisions: Iterable[Decision], now: datetime, categories: Sequence[str]
) -> tuple[list[Candidate], list[OverflowEntry]]:
    """Active decisions → candidates. A campaign with ``members`` contributes exactly its
    members (the client is then only the campaign's label); otherwise the client itself."""
    enabled = set(categories)
    out: list[Candidate] = []
    overflow: list[OverflowEntry] = []
    for d in decisions:
        if not d.is_active(now) or d.is_rule:  # rule-level decisions: ``rule_decisions``
            continue
        key, category, ts = decision_key(d), d.action.value, d.decided_at.timestamp()
        if category not in enabled:
            overflow.append(
                _overflow(
                    d.client,
                    category,
                    "action_disabled",
                    d.score,
                    ts,
                    [key],
                    f"category {category!r} is not in the compiler's categories",
                )
            )
            continue
        for target in d.members or (d.client,):
            try:
                version, start, plen = netaddr.parse_network(target)
            except netaddr.AddressError as exc:  # e.g. a row stored before today's rules
                overflow.append(
                    _overflow(target, category, "invalid_address", d.score, ts, [key], str(exc))
                )
                continue
            out.append(Candidate(version, start, plen, category, float(d.score), ts, key))
    return out, overflow


def merge_ranges(spans: Iterable[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Sorted, disjoint, non-adjacent ranges (starts, ends) covering the given spans."""
    starts: list[int] = []
    ends: list[int] = []
    for s, e in sorted(spans):
        if ends and s <= ends[-1] + 1:
            ends[-1] = max(ends[-1], e)
        else:
            starts.append(s)
            ends.append(e)
    return starts, ends


def remove_allowlisted(
    candidates: list[Candidate], allowlist: Sequence[str]
) -> tuple[list[Candidate], list[OverflowEntry]]:
    """Drop candidates inside an allowlisted range; split larger ones around it."""
    if not allowlist:
        return candidates, []
    spans: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for text in allowlist:
        version, first, last = netaddr.network_range(text, strict=False)
        spans[version].append((first, last))
    index = {version: merge_ranges(s) for version, s in spans.items()}
    kept: list[Candidate] = []
    overflow: list[OverflowEntry] = []
    for c in candidates:
        starts, ends = index.get(c.version, ([], []))
        s, e = c.start, c.end
        i = bisect_right(starts, e) - 1
        holes = []
        while i >= 0 and ends[i] >= s:
            holes.append((max(starts[i], s), min(ends[i], e)))
            i -= 1
        if not holes:
            kept.append(c)
            continue
        own = netaddr.network_text(c.version, c.start, c.prefixlen)
        if holes == [(s, e)]:
            overflow.append(
                _overflow(
                    own,
                    c.category,
                    "allowlisted",
                    c.score,
                    c.ts,
                    [c.decision_id],
                    "inside an allowlisted range",
                )
            )
            continue
        cursor = s
        for hs, he in sorted(holes):
            for net, plen in range_to_cidrs(hs, he, BITS[c.version]):
                overflow.append(
                    _overflow(
                        netaddr.network_text(c.version, net, plen),
                        c.category,
                        "allowlisted",
                        c.score,
                        c.ts,
                        [c.decision_id],
                        f"excluded from {own}",
                    )
                )
            kept.extend(_pieces(c, cursor, hs - 1))
            cursor = he + 1
        kept.extend(_pieces(c, cursor, e))
    return kept, overflow


def _pieces(c: Candidate, start: int, end: int) -> list[Candidate]:
    return [
        Candidate(c.version, net, plen, c.category, c.score, c.ts, c.decision_id)
        for net, plen in range_to_cidrs(start, end, BITS[c.version])
    ]


def drop_superseded(candidates: list[Candidate]) -> tuple[list[Candidate], list[OverflowEntry]]:
    """Drop a candidate wholly covered by stronger categories (``PRECEDENCE``): a blocked
    address needs no challenge entry. Partial overlaps stay (no widening, no splitting)."""
    groups: dict[tuple[str, int], list[Candidate]] = defaultdict(list)
    for c in candidates:
        groups[(c.category, c.version)].append(c)
    kept: list[Candidate] = []
    overflow: list[OverflowEntry] = []
    for version in (4, 6):
        stronger: list[tuple[int, int]] = []
        starts: list[int] = []
        ends: list[int] = []
        for category in PRECEDENCE:
            for c in groups.get((category, version), []):
                i = bisect_right(starts, c.start) - 1
                if i >= 0 and ends[i] >= c.end:
                    overflow.append(
                        _overflow(
                            netaddr.network_text(c.version, c.start, c.prefixlen),
                            category,
                            "superseded",
                            c.score,
                            c.ts,
                            [c.decision_id],
                            "covered by a stronger category",
                        )
                    )
                else:
                    kept.append(c)
                    stronger.append((c.start, c.end))
            starts, ends = merge_ranges(stronger)
    return kept, overflow


def aggregate(candidates: list[Candidate], *, collapse: bool = True) -> list[Entry]:
    """Per (category, family): the minimal CIDR list covering exactly the decided networks.

    With ``collapse=False`` only exact duplicates and networks nested in another are merged.
    Each entry keeps the best score, newest time and every decision id behind it.
    """
    groups: dict[tuple[str, int], list[Candidate]] = defaultdict(list)
    for c in candidates:
        groups[(c.category, c.version)].append(c)
    entries: list[Entry] = []
    for (category, version), group in sorted(groups.items()):
        group.sort(key=lambda c: (c.start, c.prefixlen))
        if collapse:
            starts, ends = merge_ranges((c.start, c.end) for c in group)
            blocks = [
                b
                for s, e in zip(starts, ends, strict=True)
                for b in range_to_cidrs(s, e, BITS[version])
            ]
        else:
            blocks = _outermost(group)
        j = 0
        for start, plen in blocks:  # every candidate lies inside exactly one block, in order
            end = start + (1 << (BITS[version] - plen)) - 1
            score, newest, ids = 0.0, float("-inf"), []
            while j < len(group) and group[j].start <= end:
                c = group[j]
                score, newest = max(score, c.score), max(newest, c.ts)
                ids.append(c.decision_id)
                j += 1
            entries.append(
                Entry(version, start, plen, category, score, newest, tuple(sorted(set(ids))))
            )
    return entries


def _outermost(sorted_group: list[Candidate]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    end = -1
    for c in sorted_group:  # sorted by (start, prefixlen): a container comes first
        if c.start > end:
            out.append((c.start, c.prefixlen))
            end = c.end
    return out


def apply_budget(entries: list[Entry], max_entries: int) -> tuple[list[Entry], list[OverflowEntry]]:
    """Keep the ``max_entries`` best entries (score, then recency); report the rest."""
    if len(entries) <= max_entries:
        return entries, []
    ranked = sorted(entries, key=lambda e: e.rank_key)
    overflow = [
        _overflow(
            e.cidr,
            e.category,
            "budget",
            e.score,
            e.ts,
            e.decision_ids,
            f"over the budget of {max_entries} entries",
        )
        for e in ranked[max_entries:]
    ]
    return ranked[:max_entries], overflow


def shard_hash(cidr: str) -> int:
    """Stable 32-bit hash of an entry's canonical CIDR text; decides its shard."""
    return zlib.crc32(cidr.encode("ascii"))


def shard(
    entries: list[Entry], *, per_set: int, max_shards: int, min_shards: int = 1
) -> tuple[list[list[tuple[Entry, str]]], list[OverflowEntry]]:
    """Split one (category, family) into N = 2^k shards by ``shard_hash(cidr) mod N``.

    Why hashing: IP-set updates replace the whole set, so the cost of a change is the number
    of shards it touches. With a fixed N an added or removed address touches exactly one
    shard, wherever it sorts (range sharding would shift boundaries and rewrite every shard
    after the insertion point). N is the smallest power of two whose fullest shard fits
    ``per_set``; it only changes on doubling/halving, when each shard splits in two (entries
    stay or move to ``k + N``), and the compiler needs no memory of the previous layout.
    ``min_shards`` pre-provisions shards so that growth up to that size never reshuffles.
    Entries that do not fit even at ``max_shards`` go to overflow (lowest ranked first).
    Returns, per shard, (entry, cidr text) pairs in address order.
    """
    texts = [e.cidr for e in entries]
    hashes = np.fromiter((shard_hash(t) for t in texts), dtype=np.uint64, count=len(texts))
    n = min_shards
    while n < max_shards and len(texts) and np.bincount(hashes % n).max() > per_set:
        n *= 2
    buckets: list[list[tuple[Entry, str]]] = [[] for _ in range(n)]
    for entry, text, h in zip(entries, texts, (hashes % n).tolist(), strict=True):
        buckets[h].append((entry, text))
    overflow: list[OverflowEntry] = []
    for k, bucket in enumerate(buckets):
        if len(bucket) > per_set:
            bucket.sort(key=lambda pair: pair[0].rank_key)
            for e, text in bucket[per_set:]:
                overflow.append(
                    _overflow(
                        text,
                        e.category,
                        "ip_set_limit",
                        e.score,
                        e.ts,
                        e.decision_ids,
                        f"shard {k} of {n} is full ({per_set} entries)",
                    )
                )
            del bucket[per_set:]
        bucket.sort(key=lambda pair: (pair[0].start, pair[0].prefixlen))
    return buckets, overflow
