"""Score any detector's output against the simulator's labels (``detection.md`` §6).

Clients are the units. A system's output is reduced to a ``Coverage``: for every simulated
client some enforcing output covers, the earliest event time it was covered
(``detected_ms``), when that would be in force given delivery delays (``effective_ms``), and
whether the action was a hard block. A decision over a CIDR counts for every simulated client
inside it (attack clients as hits, benign ones as collateral); a campaign decision counts for
its listed members. ``count`` decisions are observations, not enforcement, and are ignored.

Rule entries: a baseline uses one IP-set entry per flagged address. A wafsmith decision uses
one entry per listed member when it has members, else one (its IP or CIDR); the total is the
number of distinct entries (an upper bound: the compiler may aggregate members into CIDRs).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.baselines.common import BaselineResult, file_end
from engine.demo.simulator.simulate import (
    C_CLIENTS,
    C_ID,
    C_KIND,
    C_START,
    L_CAMPAIGN,
    L_CLIENT,
    L_KIND,
    L_LABEL,
    L_USERS,
)
from engine.schema import request as rq

ENGINE_DELAY_MS = 60_000  # after the ALB file lands: fetch, parse, decide, first WAF write
FLOOD_KINDS = ("volumetric_flood", "distributed_flood")


@dataclass
class Coverage:
    """Which simulated clients a system's output covers, and when."""

    system: str
    detected_ms: dict[str, int] = field(default_factory=dict)
    effective_ms: dict[str, int] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)  # covered by a hard block
    entries: int = 0

    def cover(self, ip: str, detected: int, effective: int, block: bool) -> None:
        if ip not in self.detected_ms or detected < self.detected_ms[ip]:
            self.detected_ms[ip] = detected
        if ip not in self.effective_ms or effective < self.effective_ms[ip]:
            self.effective_ms[ip] = effective
        if block:
            self.blocked.add(ip)


def from_baseline(result: BaselineResult) -> Coverage:
    cov = Coverage(result.baseline_id, entries=len(result.flagged))
    for ip, flag in result.flagged.items():
        cov.cover(ip, flag.detected_ms, flag.effective_ms, block=True)
    return cov


class ClientIndex:
    """Simulated clients by address, for CIDR coverage lookups without per-client loops."""

    def __init__(self, clients: list[str]) -> None:
        self.clients = clients
        v4 = [(i, int(ipaddress.IPv4Address(c))) for i, c in enumerate(clients) if ":" not in c]
        self._v4_idx = np.array([i for i, _ in v4], dtype=np.int64)
        self._v4_int = np.array([n for _, n in v4], dtype=np.int64)
        self._v6 = [(c, ipaddress.IPv6Address(c)) for c in clients if ":" in c]
        self._known = set(clients)

    def covered(self, client: str) -> list[str]:
        net = ipaddress.ip_network(client, strict=False)
        if net.num_addresses == 1:
            ip = str(net.network_address)
            return [ip] if ip in self._known else []
        if net.version == 4:
            lo, hi = int(net.network_address), int(net.broadcast_address)
            hit = (self._v4_int >= lo) & (self._v4_int <= hi)
            return [self.clients[i] for i in self._v4_idx[hit]]
        return [c for c, a in self._v6 if a in net]


DELIVERY_MS = {"alb": 300_000, "waf": 300_000, "cloudfront": 3_600_000}


def from_decisions(
    system: str, decisions: list[Any], index: ClientIndex, log: str = "alb"
) -> Coverage:
    """Coverage of engine ``Decision`` proposals (any action but ``count``).

    ``effective_ms`` assumes the engine sees an event when the object holding it lands: ALB
    and WAF objects cover 5 minutes, CloudFront standard logs about an hour.
    """
    step = DELIVERY_MS[log]
    cov = Coverage(system)
    entries: set[str] = set()
    for d in decisions:
        action = str(getattr(d.action, "value", d.action))
        if action == "count":
            continue
        t = int(d.decided_at.timestamp() * 1000)
        members = list(d.members)
        covered = set(index.covered(d.client))
        for m in members:
            covered.update(index.covered(m))
        entries.update(members if members else [d.client])
        for ip in covered:
            cov.cover(ip, t, file_end(t, step) + ENGINE_DELAY_MS, block=action == "block")
    cov.entries = len(entries)
    return cov


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 6) if b else None


def score(
    coverage: Coverage, labels: pa.Table, campaigns: pa.Table, requests: pa.Table | None = None
) -> dict[str, Any]:
    """All metrics of one system on one simulated run."""
    rows = labels.to_pylist()
    covered = coverage.detected_ms
    attack = [r for r in rows if r[L_LABEL] == "attack"]
    benign = [r for r in rows if r[L_LABEL] == "benign"]
    tp = sum(r[L_CLIENT] in covered for r in attack)
    fp = sum(r[L_CLIENT] in covered for r in benign)
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, len(attack))
    f1 = round(2 * precision * recall / (precision + recall), 6) if precision and recall else 0.0
    per_kind: dict[str, dict[str, Any]] = {}
    for r in rows:
        k = per_kind.setdefault(
            r[L_KIND],
            {"label": r[L_LABEL], "clients": 0, "flagged": 0, "blocked": 0, "users_affected": 0},
        )
        k["clients"] += 1
        if r[L_CLIENT] in covered:
            k["flagged"] += 1
            k["users_affected"] += int(r[L_USERS])
        if r[L_CLIENT] in coverage.blocked:
            k["blocked"] += 1
    for k in per_kind.values():
        k["rate"] = _ratio(k["flagged"], k["clients"])
    camp = []
    members: dict[str, list[str]] = {}
    for r in attack:
        members.setdefault(r[L_CAMPAIGN], []).append(r[L_CLIENT])
    for c in campaigns.to_pylist():
        start = int(c[C_START].timestamp() * 1000)
        ips = members.get(c[C_ID], [])
        hit = [covered[ip] for ip in ips if ip in covered]
        eff = [coverage.effective_ms[ip] for ip in ips if ip in covered]
        camp.append(
            {
                "campaign": c[C_ID],
                "kind": c[C_KIND],
                "clients": c[C_CLIENTS],
                "detected_clients": len(hit),
                "ttd_s": round((min(hit) - start) / 1000, 1) if hit else None,
                "ttd_effective_s": round((min(eff) - start) / 1000, 1) if eff else None,
            }
        )
    out = {
        "system": coverage.system,
        "attack_clients": len(attack),
        "benign_clients": len(benign),
        "tp": tp,
        "fp": fp,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "benign_fpr": _ratio(fp, len(benign)),
        "crawlers_flagged": per_kind.get("crawler", {}).get("flagged", 0),
        "crawlers_blocked": per_kind.get("crawler", {}).get("blocked", 0),
        "nat_flagged": per_kind.get("nat_gateway", {}).get("flagged", 0),
        "nat_blocked": per_kind.get("nat_gateway", {}).get("blocked", 0),
        "nat_users_affected": per_kind.get("nat_gateway", {}).get("users_affected", 0),
        "rule_entries": coverage.entries,
        "flood_ttd_s": _worst([c["ttd_s"] for c in camp if c["kind"] in FLOOD_KINDS]),
        "flood_ttd_effective_s": _worst(
            [c["ttd_effective_s"] for c in camp if c["kind"] in FLOOD_KINDS]
        ),
        "per_kind": per_kind,
        "campaigns": camp,
    }
    if requests is not None:
        out.update(_request_weighted(coverage, labels, requests))
    return out


def _worst(values: list[float | None]) -> float | None:
    """The slowest detection among campaigns; None (never) if any was missed."""
    if not values or any(v is None for v in values):
        return None
    return max(values)


def _request_weighted(coverage: Coverage, labels: pa.Table, requests: pa.Table) -> dict:
    """Share of attack / benign requests sent after the client's block was in force."""
    ips = requests[rq.CLIENT_IP]
    ts = requests[rq.EVENT_TIME].cast(pa.int64()).to_numpy()
    eff_keys = pa.array(list(coverage.effective_ms), pa.string())
    eff_vals = np.array([*coverage.effective_ms.values(), np.iinfo(np.int64).max])
    never = len(eff_vals) - 1  # clients never covered point at +infinity
    pos = pc.fill_null(pc.index_in(ips, value_set=eff_keys), never).to_numpy()
    blocked = ts >= eff_vals[pos]
    attackers = pc.filter(labels[L_CLIENT], pc.equal(labels[L_LABEL], "attack"))
    is_attack = np.asarray(pc.is_in(ips, value_set=attackers))
    return {
        "request_recall": _ratio(int((blocked & is_attack).sum()), int(is_attack.sum())),
        "request_collateral": _ratio(int((blocked & ~is_attack).sum()), int((~is_attack).sum())),
    }
