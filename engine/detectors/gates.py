"""Gates for the false-positive populations of ``detection.md`` §5.

Each gate is a boolean mask over global client codes, computed once per snapshot:
allowlisted ranges, verified crawlers (declared crawler agent from its published networks),
NAT/corporate gateways (many browser user agents with human pacing and assets), steady API
pollers, and health checkers. Detectors consult them; a gate is never a model input.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from engine.detectors.config import DetectionConfig
from engine.features.identity import CidrSet
from engine.features.store import Snapshot

GATES = ("allowlisted", "verified_crawler", "nat_gateway", "api_poller", "health_checker")


def compute_gates(snap: Snapshot, cfg: DetectionConfig, allow: CidrSet) -> dict[str, np.ndarray]:
    g = cfg.gates
    frame = snap.frames[g.window_min]
    n_codes = len(snap.clients)
    c = frame.columns
    masks: dict[str, np.ndarray] = {}
    longest = snap.frames[max(snap.frames)]
    for name, mask in _identity_gates(snap, longest, cfg, allow).items():
        masks[name] = mask
    if len(frame):
        local = {}
        hostile = (c["tool_ua_hits"] > 0) | (c["injection_hits"] > 0) | (c["sensitive_req"] > 0)
        local["nat_gateway"] = (
            (c["ua_distinct"] >= g.nat_min_user_agents)
            & (c["browser_ua_frac"] >= g.nat_min_browser_frac)
            & (c["asset_frac"] >= g.nat_min_asset_frac)
            & ~hostile
        )
        local["api_poller"] = (
            (c["interarrival_cv"] <= g.poller_max_cv)
            & (c["distinct_paths"] <= g.poller_max_distinct_paths)
            & (c["req_per_min"] <= g.poller_max_req_per_min)
            & (c["err4xx_ratio"] < 0.2)
            & (c["login_post_count"] == 0)
            & ~hostile
        )
        local["health_checker"] = (c["health_frac"] >= g.health_min_frac) & ~hostile
        for name, local_mask in local.items():
            mask = np.zeros(n_codes, dtype=bool)
            mask[frame.codes] = local_mask
            masks[name] = mask
    for name in GATES:
        masks.setdefault(name, np.zeros(n_codes, dtype=bool))
    return masks


def _identity_gates(snap: Snapshot, frame, cfg: DetectionConfig, allow: CidrSet):
    """Allowlist and verified crawlers hold over the longest window (they are who, not how)."""
    n_codes = len(snap.clients)
    allowed = np.zeros(n_codes, dtype=bool)
    crawler = np.zeros(n_codes, dtype=bool)
    if len(frame):
        if allow:
            names = snap.clients[frame.codes]
            allowed[frame.codes] = allow.contains(pa.array(names.tolist(), pa.string()))
        verified = frame.columns["crawler_verified_frac"] >= cfg.gates.crawler_min_verified_frac
        crawler[frame.codes] = verified
    return {"allowlisted": allowed, "verified_crawler": crawler}
