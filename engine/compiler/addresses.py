"""From decisions to IP-set entries: allowlist, precedence, aggregation, budget and shards.

Each step is a pure function over ``Candidate`` (one decided network) or ``Entry`` (one IP-set
line) lists and returns what it keeps plus ``OverflowEntry`` records for what it does not, so
nothing a decision asked for disappears without a reason in the document.

Invariants (tested with hypothesis):
- no entry overlaps an allowlisted range (overlapping decided CIDRs are split around it);
- aggregation never widens: an entry covers only addresses some decision covers
  (``collapse_addresses`` on exactly the decided networks);
- the output depends only on the input *set*: every ordering is explicit.
"""

from __future__ import annotations

import ipaddress
import zlib
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from engine.schema.decision import Decision
from engine.schema.rule import OverflowEntry

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Stronger first: an address listed by a stronger category is dropped from weaker ones.
PRECEDENCE = ("block", "captcha", "challenge", "rate_limit", "count")
_EPOCH = datetime.fromtimestamp(0, UTC)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One network a decision covers (its client, or one campaign member)."""

    net: Network
    category: str
    score: float
    decided_at: datetime
    decision_id: str


@dataclass(frozen=True, slots=True)
class Entry:
    """One IP-set line: a canonical CIDR with the strongest evidence behind it."""

    net: Network
    category: str
    score: float
    decided_at: datetime
    decision_ids: tuple[str, ...]

    @property
    def rank_key(self) -> tuple:
        """Best first: score, then recency, then a total order for determinism."""
        return (-self.score, -self.decided_at.timestamp(), *_net_key(self.net), self.category)


def _net_key(net: Network) -> tuple[int, int, int]:
    return (net.version, int(net.network_address), net.prefixlen)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _overflow(
    client: str,
    category: str,
    reason: str,
    score: float,
    decided_at: datetime,
    ids: Iterable[str],
    detail: str = "",
) -> OverflowEntry:
    return OverflowEntry(
        client=client,
        category=category,
        reason=reason,
        score=float(score),
        decided_at=_iso(decided_at),
        decision_ids=tuple(sorted(set(ids))),
        detail=detail,
    )


def decision_key(decision: Decision) -> str:
    """A stable identity for a decision without an id (client, action, time)."""
    if decision.id:
        return decision.id
    return f"{decision.client}|{decision.action.value}|{_iso(decision.decided_at)}"


def collect(
    decisions: Iterable[Decision], now: datetime, categories: Sequence[str]
) -> tuple[list[Candidate], list[OverflowEntry]]:
    """Active decisions → candidates. A campaign with ``members`` contributes exactly its
    members (the client is then only the campaign's label); otherwise the client itself."""
    enabled = set(categories)
    out: list[Candidate] = []
    overflow: list[OverflowEntry] = []
    for d in decisions:
        if not d.is_active(now):
            continue
        key = decision_key(d)
        category = d.action.value
        targets = d.members or (d.client,)
        if category not in enabled:
            overflow.append(
                _overflow(
                    d.client,
                    category,
                    "action_disabled",
                    d.score,
                    d.decided_at,
                    [key],
                    f"category {category!r} is not in the compiler's categories",
                )
            )
            continue
        for target in targets:
            net = ipaddress.ip_network(target, strict=True)
            out.append(Candidate(net, category, float(d.score), d.decided_at, key))
    return out, overflow


def _intervals(nets: Iterable[Network]) -> tuple[list[int], list[int]]:
    """Merge networks into sorted, disjoint, non-adjacent integer ranges (starts, ends)."""
    spans = sorted((int(n.network_address), int(n.broadcast_address)) for n in nets)
    starts: list[int] = []
    ends: list[int] = []
    for s, e in spans:
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
    allow: dict[int, list[Network]] = defaultdict(list)
    for text in allowlist:
        net = ipaddress.ip_network(text, strict=False)
        allow[net.version].append(net)
    index = {}
    for version, nets in allow.items():
        collapsed = sorted(ipaddress.collapse_addresses(nets), key=_net_key)
        index[version] = (
            [int(n.network_address) for n in collapsed],
            [int(n.broadcast_address) for n in collapsed],
            collapsed,
        )
    kept: list[Candidate] = []
    overflow: list[OverflowEntry] = []
    for cand in candidates:
        if cand.net.version not in index:
            kept.append(cand)
            continue
        starts, ends, nets = index[cand.net.version]
        s, e = int(cand.net.network_address), int(cand.net.broadcast_address)
        hits = []
        i = bisect_right(starts, e) - 1
        while i >= 0 and ends[i] >= s:
            hits.append(nets[i])
            i -= 1
        if not hits:
            kept.append(cand)
            continue
        ids = [cand.decision_id]
        if any(cand.net.subnet_of(h) for h in hits):
            overflow.append(
                _overflow(
                    str(cand.net),
                    cand.category,
                    "allowlisted",
                    cand.score,
                    cand.decided_at,
                    ids,
                    "inside an allowlisted range",
                )
            )
            continue
        pieces = [cand.net]
        for hole in hits:  # every hit lies inside the candidate (CIDRs nest or are disjoint)
            pieces = [
                q for p in pieces for q in (p.address_exclude(hole) if hole.subnet_of(p) else (p,))
            ]
            overflow.append(
                _overflow(
                    str(hole),
                    cand.category,
                    "allowlisted",
                    cand.score,
                    cand.decided_at,
                    ids,
                    f"excluded from {cand.net}",
                )
            )
        kept.extend(
            Candidate(p, cand.category, cand.score, cand.decided_at, cand.decision_id)
            for p in pieces
        )
    return kept, overflow


def drop_superseded(candidates: list[Candidate]) -> tuple[list[Candidate], list[OverflowEntry]]:
    """Drop a candidate wholly covered by stronger categories (``PRECEDENCE``): a blocked
    address needs no challenge entry. Partial overlaps stay (no widening, no splitting)."""
    by_cat: dict[tuple[str, int], list[Candidate]] = defaultdict(list)
    for cand in candidates:
        by_cat[(cand.category, cand.net.version)].append(cand)
    kept: list[Candidate] = []
    overflow: list[OverflowEntry] = []
    for version in (4, 6):
        stronger: list[Network] = []
        starts: list[int] = []
        ends: list[int] = []
        for category in PRECEDENCE:
            group = by_cat.get((category, version), [])
            for cand in group:
                s, e = int(cand.net.network_address), int(cand.net.broadcast_address)
                i = bisect_right(starts, s) - 1
                if i >= 0 and ends[i] >= e:
                    overflow.append(
                        _overflow(
                            str(cand.net),
                            category,
                            "superseded",
                            cand.score,
                            cand.decided_at,
                            [cand.decision_id],
                            "covered by a stronger category",
                        )
                    )
                else:
                    kept.append(cand)
                    stronger.append(cand.net)
            starts, ends = _intervals(stronger)
    return kept, overflow


def aggregate(candidates: list[Candidate], *, collapse: bool = True) -> list[Entry]:
    """Per (category, family): the minimal CIDR list covering exactly the decided networks.

    With ``collapse=False`` only exact duplicates and networks nested in another are merged.
    Each entry keeps the best score, newest time and every decision id behind it.
    """
    groups: dict[tuple[str, int], list[Candidate]] = defaultdict(list)
    for cand in candidates:
        groups[(cand.category, cand.net.version)].append(cand)
    entries: list[Entry] = []
    for (category, _version), group in sorted(groups.items()):
        group.sort(key=lambda c: (int(c.net.network_address), c.net.prefixlen))
        nets = [c.net for c in group]
        merged = list(ipaddress.collapse_addresses(nets)) if collapse else _outermost(nets)
        merged.sort(key=_net_key)
        j = 0
        for net in merged:
            end = int(net.broadcast_address)
            score, newest, ids = 0.0, _EPOCH, []
            while j < len(group) and int(group[j].net.network_address) <= end:
                c = group[j]
                score = max(score, c.score)
                newest = max(newest, c.decided_at)
                ids.append(c.decision_id)
                j += 1
            entries.append(Entry(net, category, score, newest, tuple(sorted(set(ids)))))
    return entries


def _outermost(sorted_nets: list[Network]) -> list[Network]:
    out: list[Network] = []
    end = -1
    for net in sorted_nets:  # sorted by (start, prefixlen): a container comes first
        if int(net.network_address) > end:
            out.append(net)
            end = int(net.broadcast_address)
    return out


def apply_budget(entries: list[Entry], max_entries: int) -> tuple[list[Entry], list[OverflowEntry]]:
    """Keep the ``max_entries`` best entries (score, then recency); report the rest."""
    if len(entries) <= max_entries:
        return entries, []
    ranked = sorted(entries, key=lambda e: e.rank_key)
    dropped = ranked[max_entries:]
    overflow = [
        _overflow(
            str(e.net),
            e.category,
            "budget",
            e.score,
            e.decided_at,
            e.decision_ids,
            f"over the budget of {max_entries} entries",
        )
        for e in dropped
    ]
    return ranked[:max_entries], overflow


def shard_hash(net: Network) -> int:
    """Stable 32-bit hash of an entry's canonical text; decides its shard."""
    return zlib.crc32(str(net).encode("ascii"))


def shard(
    entries: list[Entry], *, per_set: int, max_shards: int
) -> tuple[list[list[Entry]], list[OverflowEntry]]:
    """Split one (category, family) into N = 2^k shards by ``shard_hash(entry) mod N``.

    Why hashing: IP-set updates replace the whole set, so the cost of a change is the number
    of shards it touches. With a fixed N an added or removed address touches exactly one
    shard, wherever it sorts (range sharding would shift boundaries and rewrite every shard
    after the insertion point). N is the smallest power of two whose fullest shard fits
    ``per_set``; it only changes on doubling/halving, when each shard splits in two (entries
    stay or move to ``k + N``), and the compiler needs no memory of the previous layout.
    Entries that do not fit even at ``max_shards`` go to overflow (lowest ranked first).
    """
    hashes = np.fromiter((shard_hash(e.net) for e in entries), dtype=np.uint64, count=len(entries))
    n = 1
    while n < max_shards and len(entries) and np.bincount(hashes % n).max() > per_set:
        n *= 2
    buckets: list[list[Entry]] = [[] for _ in range(n)]
    for entry, h in zip(entries, (hashes % n).tolist(), strict=True):
        buckets[h].append(entry)
    overflow: list[OverflowEntry] = []
    for k, bucket in enumerate(buckets):
        if len(bucket) > per_set:
            bucket.sort(key=lambda e: e.rank_key)
            for e in bucket[per_set:]:
                overflow.append(
                    _overflow(
                        str(e.net),
                        e.category,
                        "ip_set_limit",
                        e.score,
                        e.decided_at,
                        e.decision_ids,
                        f"shard {k} of {n} is full ({per_set} entries)",
                    )
                )
            del bucket[per_set:]
        bucket.sort(key=lambda e: _net_key(e.net))
    return buckets, overflow


def address_key(text: str) -> tuple[int, int, int]:
    """Sort key of an IP or CIDR text: family, network number, prefix length."""
    return _net_key(ipaddress.ip_network(text, strict=False))
