"""Gates for the false-positive populations of ``detection.md`` §5.

Each gate is a boolean mask over global client codes, computed once per snapshot:
allowlisted ranges, verified crawlers (declared crawler agent from its published networks),
NAT/corporate gateways (many browser user agents with human pacing and assets), steady API
pollers, and health checkers. Detectors consult them; a gate is never a model input.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from engine.core.netaddr import CidrSet
from engine.detectors.config import DetectionConfig
from engine.schema import features as F
from engine.schema.features import Snapshot

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
        hostile = (c[F.TOOL_UA_HITS] > 0) | (c[F.INJECTION_HITS] > 0) | (c[F.SENSITIVE_REQ] > 0)
        local["nat_gateway"] = (
            (c[F.UA_DISTINCT] >= g.nat_min_user_agents)
            & (c[F.BROWSER_UA_FRAC] >= g.nat_min_browser_frac)
            & (c[F.ASSET_FRAC] >= g.nat_min_asset_frac)
            & ~hostile
        )
        local["api_poller"] = (
            (c[F.INTERARRIVAL_CV] <= g.poller_max_cv)
            & (c[F.DISTINCT_PATHS] <= g.poller_max_distinct_paths)
            & (c[F.REQ_PER_MIN] <= g.poller_max_req_per_min)
            & (c[F.ERR4XX_RATIO] < 0.2)
            & (c[F.LOGIN_POST_COUNT] == 0)
            & ~hostile
        )
        local["health_checker"] = (c[F.HEALTH_FRAC] >= g.health_min_frac) & ~hostile
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
        verified = frame.columns[F.CRAWLER_VERIFIED_FRAC] >= cfg.gates.crawler_min_verified_frac
        crawler[frame.codes] = verified
    return {"allowlisted": allowed, "verified_crawler": crawler}
