"""Gates for the false-positive populations of ``detection.md`` §5.

Each gate is a boolean mask over global client codes, computed once per snapshot:
allowlisted ranges, verified crawlers (declared crawler agent from its published networks),
declared crawlers that behave (a bot user agent with a contact URL, within its crawl-rate
budget, no probing, no robots.txt Disallow, no login or injection traffic), NAT/corporate
gateways (many browser user agents with human pacing and assets), CGNAT app fleets
(``cgnat_pool``: many app user agents, each at an app's cadence, on one endpoint, answered
2xx — a carrier address in front of hundreds of phones; it is a NAT gateway of apps, so it
also sets ``nat_gateway``), steady API pollers, and health checkers. Detectors consult
them; a gate is never a model input.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa

from engine.core.netaddr import CidrSet
from engine.detectors.config import DetectionConfig
from engine.schema import features as F
from engine.schema.features import Snapshot
from engine.schema.verdict import ClientVerdict

GATES = (
    "allowlisted",
    "verified_crawler",
    "declared_crawler",
    "nat_gateway",
    "cgnat_pool",
    "api_poller",
    "health_checker",
)
CRAWLER_GATES = ("verified_crawler", "declared_crawler")
# Detectors whose verdicts on crawlers stand (they judge crawlers by crawlers' standards).
CRAWLER_JUDGES = ("crawler_conduct",)


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
            # people load assets; behind a CDN that caches them, they still navigate (referers)
            & (
                (c[F.ASSET_FRAC] >= g.nat_min_asset_frac)
                | (c[F.NO_REFERER_FRAC] <= g.nat_max_no_referer_frac)
            )
            & ~hostile
        )
        local["cgnat_pool"] = cgnat_pool(c, cfg) & ~hostile
        local["nat_gateway"] |= local["cgnat_pool"]
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


def cgnat_pool(c: dict[str, np.ndarray], cfg: DetectionConfig) -> np.ndarray:
    """Carrier-grade NAT addresses fronting an app fleet, from what the logs carry.

    A single-address flood sends one agent (or a handful) at a rate no app timer reaches;
    a CGNAT pool carries many phones, each its own agent (app version, OS, device model)
    polling at the app's cadence, so the rate *per agent* stays low however high the
    address's total is. Few 4xx answers and no failing logins: a stuffer rotating agents
    behind one address fails its logins, a scraper walks many templates."""
    g = cfg.gates
    ua = np.maximum(c[F.UA_DISTINCT], 1.0)
    return (
        (c[F.UA_DISTINCT] >= g.cgnat_min_user_agents)
        & (c[F.BROWSER_UA_FRAC] <= g.cgnat_max_browser_frac)
        & (c[F.REQ_PER_MIN] / ua <= g.cgnat_max_req_per_min_per_ua)
        & (c[F.TOP_BUCKET_SHARE] >= g.cgnat_min_top_share)
        & (c[F.ERR4XX_RATIO] <= g.cgnat_max_err4xx)
        & (c[F.LOGIN_FAIL_RATIO] <= g.cgnat_max_login_fail_ratio)
    )


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
    declared = np.zeros(n_codes, dtype=bool)
    if len(frame):
        c, g = frame.columns, cfg.gates
        declared[frame.codes] = (
            (c[F.DECLARED_BOT_FRAC] >= g.declared_min_frac)
            & (c[F.CRAWLER_UA_FRAC] == 0)  # a search engine's name: verified or impersonated
            & (c[F.TOOL_UA_HITS] == 0)
            & (c[F.INJECTION_HITS] == 0)
            & (c[F.LOGIN_POST_COUNT] == 0)
            & ~crawler_misconduct(c, cfg).any(axis=0)
        )
    return {"allowlisted": allowed, "verified_crawler": crawler, "declared_crawler": declared}


def crawler_misconduct(c: dict[str, np.ndarray], cfg: DetectionConfig) -> np.ndarray:
    """(3, clients) masks of a crawler breaking its own standards: over its crawl-rate budget,
    probing sensitive paths, fetching robots.txt-disallowed ones. Missing pages are not
    misconduct: crawlers follow stale links."""
    g = cfg.gates
    return np.vstack(
        [
            c[F.PEAK_REQ_PER_MIN] > g.crawler_max_req_per_min,
            c[F.SENSITIVE_PATH_HITS] >= g.crawler_max_sensitive_paths,
            c[F.ROBOTS_DISALLOWED_HITS] > g.crawler_max_disallowed,
        ]
    )


def gate_crawler_verdicts(
    verdicts: list[ClientVerdict], snap: Snapshot, gates: dict[str, np.ndarray]
) -> tuple[list[ClientVerdict], int]:
    """Every detector's verdicts minus the gated crawlers (campaigns lose them as members);
    only ``CRAWLER_JUDGES`` speak about crawlers. Returns (kept verdicts, verdicts dropped)."""
    mask = np.zeros(len(snap.clients), dtype=bool)
    for name in CRAWLER_GATES:
        if name in gates:
            mask |= gates[name]
    if not mask.any():
        return verdicts, 0
    crawlers = {str(x) for x in snap.clients[np.flatnonzero(mask)]}
    kept, dropped = [], 0
    for v in verdicts:
        if v.detector in CRAWLER_JUDGES:
            kept.append(v)
        elif v.members:
            members = tuple(m for m in v.members if m not in crawlers)
            if not members:
                dropped += 1
            elif len(members) == len(v.members):
                kept.append(v)
            else:
                client = v.client if v.client not in crawlers else members[0]
                kept.append(replace(v, client=client, members=members))
        elif v.client in crawlers:
            dropped += 1
        else:
            kept.append(v)
    return kept, dropped
