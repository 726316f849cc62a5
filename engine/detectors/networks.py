"""IPv6 network aggregation of verdicts: several /64s of one /56 acting as one campaign.

An end site is delegated a /56 (RFC 6177), so an attacker rotating over the /64s of its own
/56 looks like several flagged /64s (or addresses) side by side. When at least
``min_subnets`` of the /64s seen in a /56 during the window are flagged and they *fill* it
(at least ``min_fill`` of the /64s seen there), their verdicts become one verdict on the
/56: one decision that also covers the /64s the attacker has not used yet. A /56 where
benign /64s are active beside the flagged ones (a household with several networks, a
neighbour in a shared delegation) keeps its per-/64 verdicts. Verdicts on campaigns
(with members) and on IPv4 clients pass through unchanged.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace

from engine.core.netaddr import AddressError, network_text, parse_address
from engine.detectors.config import NetworkAggConfig
from engine.schema.features import Snapshot
from engine.schema.verdict import ClientVerdict

SUBNET = 64  # the unit inside the /56: one LAN


def v6_network(client: str, prefix: int) -> int | None:
    """The /``prefix`` network (as an integer) of an IPv6 address or of an IPv6 network at
    least that long; None for IPv4, shorter networks and anything else."""
    text, _, plen = client.partition("/")
    try:
        version, value = parse_address(text)
    except AddressError:
        return None
    if version != 6 or (plen and int(plen) < prefix):
        return None
    return value >> (128 - prefix) << (128 - prefix)


def aggregate_v6(
    verdicts: list[ClientVerdict], snap: Snapshot, cfg: NetworkAggConfig
) -> list[ClientVerdict]:
    """``verdicts`` with the per-/64 verdicts of each filled /56 replaced by one /56 verdict."""
    if not cfg.enabled:
        return verdicts
    flagged: dict[int, dict[int, list[ClientVerdict]]] = defaultdict(lambda: defaultdict(list))
    for v in verdicts:
        if v.members:
            continue
        net = v6_network(v.client, cfg.prefix)
        if net is not None:
            flagged[net][v6_network(v.client, SUBNET) or 0].append(v)
    candidates = {n for n, subs in flagged.items() if len(subs) >= cfg.min_subnets}
    if not candidates:
        return verdicts
    seen: dict[int, set[int]] = defaultdict(set)
    longest = snap.frames[max(snap.frames)]
    for name in snap.clients[longest.codes]:
        net = v6_network(str(name), cfg.prefix)
        if net in candidates:
            seen[net].add(v6_network(str(name), SUBNET) or 0)
    merged: dict[int, ClientVerdict] = {}
    for net in candidates:
        subs = flagged[net]
        active = seen[net] | set(subs)
        if len(subs) / len(active) < cfg.min_fill:
            continue
        merged[net] = _one(net, subs, len(active), cfg.prefix)
    if not merged:
        return verdicts
    out = [v for v in verdicts if v.members or v6_network(v.client, cfg.prefix) not in merged]
    return out + list(merged.values())


def _one(net: int, subs: dict[int, list[ClientVerdict]], active: int, prefix: int):
    vs = [v for group in subs.values() for v in group]
    lead = max(vs, key=lambda v: v.score)
    kinds = Counter(v.kind for v in vs)
    label = network_text(6, net, prefix)
    reasons = (
        f"{len(subs)} of the {active} /64s active in {label} flagged "
        f"({', '.join(f'{k} ×{n}' for k, n in kinds.most_common())}): the network acts as "
        "one campaign, so the decision covers the /64s it has not used yet",
        *lead.reasons,
    )
    return replace(
        lead,
        client=label,
        reasons=reasons,
        evidence=tuple(e for v in vs for e in v.evidence)[:5],
    )
