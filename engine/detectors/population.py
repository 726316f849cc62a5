"""Population-level detectors: aggregate first, attribute second (``detection.md`` §4).

Distributed flood: clients whose window looks like a flood member (a few URLs, no assets,
no logins) are grouped into populations — their /24 (or /48), their fingerprint (JA4 or
user-agent family) and their dominant path group. A population whose request rate exceeds
both an absolute floor and a multiple of its own trailing baseline is a campaign; its
members are the candidates in it, each possibly far below any per-IP threshold.

Distributed credential stuffing: the site-wide login-failure count is compared with its
trailing failure ratio (a binomial z-score); while it is significant, the members are the
clients whose traffic is mostly failed login POSTs.

Both emit ONE verdict per campaign, with the member addresses in ``members``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pyarrow as pa

from engine.core.netaddr import subnet_keys
from engine.detectors.base import DETECTORS, DetectionContext, fmt
from engine.detectors.config import DetectionConfig
from engine.schema import features as F
from engine.schema.verdict import ClientVerdict


def _groups(keys: np.ndarray, min_size: int = 1) -> list[tuple[object, np.ndarray]]:
    """(key, row indices) per distinct key with at least ``min_size`` rows (hash-factorized,
    so only the populations big enough to matter reach Python)."""
    if len(keys) == 0:
        return []
    codes, uniques = pd.factorize(keys)
    big = np.bincount(codes) >= min_size
    sel = np.flatnonzero(big[codes])
    if not len(sel):
        return []
    order = sel[np.argsort(codes[sel], kind="stable")]
    cs = codes[order]
    bounds = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1], True])
    return [(uniques[cs[a]], order[a:b]) for a, b in itertools.pairwise(bounds)]


@DETECTORS.register("distributed_flood")
class DistributedFlood:
    name = "distributed_flood"

    def __init__(self, cfg: DetectionConfig) -> None:
        self.c = cfg.distributed_flood
        self.baseline: dict[tuple[str, object], float] = {}
        self.labels: dict[tuple[str, object], str] = {}  # campaign -> stable decision label

    def detect(self, ctx: DetectionContext) -> list[ClientVerdict]:
        c = self.c
        fr = ctx.frame(c.window_min)
        if not len(fr):
            return []
        f = fr.columns
        cand = (
            (f[F.REQ_COUNT] >= c.member_min_req)
            & (f[F.ASSET_FRAC] <= c.member_max_asset_frac)
            & (f[F.DISTINCT_PATHS] <= c.member_max_distinct_paths)
            & (f[F.LOGIN_POST_COUNT] == 0)
        )
        cand &= ~ctx.safe(fr, "allowlisted", "verified_crawler", "health_checker")
        cand &= ~ctx.gate("nat_gateway", fr)
        rows = np.flatnonzero(cand)
        if not len(rows):
            self._decay(set())
            return []
        names = ctx.snapshot.clients[fr.codes]
        pg, ph = fr.paths
        keep = cand[pg]
        pg, ph = pg[keep], ph[keep]  # exact path sets of the candidates (≤ k paths each)
        # Populations: the /24 (/48), the fingerprint, and the exact target path. Steady
        # pollers are spared in site-wide path populations (their cadence is their
        # signature); in a subnet or fingerprint population many of them at once is the
        # attack, and a steady benign population is absorbed by its own baseline.
        floor = max(2, c.min_members // 2)  # smaller populations cannot become campaigns
        subnet = np.asarray(
            subnet_keys(pa.array(names[rows].tolist(), pa.string())).to_pylist(), dtype=object
        )
        groups = {
            "subnet": [(k, rows[i]) for k, i in _groups(subnet, floor)],
            "fingerprint": [(k, rows[i]) for k, i in _groups(_fingerprint_of(fr, rows), floor)],
            "path": [(k, pg[i]) for k, i in _groups(ph, floor)],
        }
        poller = ctx.gate("api_poller", fr)
        covered = ctx.gate("covered", fr)
        taken = np.zeros(len(fr), dtype=bool)
        out, seen = [], set()
        for kind, pops in groups.items():
            for key, members in pops:
                members = members[~taken[members]]
                if kind == "path":
                    members = members[~poller[members]]
                bkey = (kind, key)
                seen.add(bkey)
                base = self.baseline.get(bkey, 0.0)
                if len(members) >= c.min_members:
                    members = _sharing_targets(members, pg, ph, c.min_target_share)
                if len(members) >= c.min_members:
                    # Acting together: a member's volume is comparable to the population's
                    # (a visitor who opened the same popular page twice is not a bot).
                    volume = f[F.REQ_COUNT][members]
                    members = members[volume >= c.member_min_share_of_median * np.median(volume)]
                    # ... and the same request shape (e.g. cache-busting query strings).
                    shape = f[F.QUERY_FRAC][members]
                    members = members[np.abs(shape - np.median(shape)) <= c.member_max_shape_gap]
                rate = f[F.REQ_COUNT][members].sum() / c.window_min
                # The baseline learns only from addresses not already blocked, so a campaign
                # in progress never teaches it that its own rate is normal.
                quiet = members[~covered[members]]
                quiet_rate = f[F.REQ_COUNT][quiet].sum() / c.window_min
                hot = (
                    len(members) >= c.min_members
                    and rate >= c.min_population_req_per_min
                    and rate >= c.baseline_multiplier * base
                )
                if not hot:
                    # A ramping campaign must not lift its own bar before it crosses it:
                    # each observation counts for at most twice the current baseline.
                    obs = min(quiet_rate, 2 * max(base, c.min_population_req_per_min / 4))
                    self.baseline[bkey] = (1 - c.baseline_alpha) * base + c.baseline_alpha * obs
                    continue
                taken[members] = True
                out.append(self._verdict(ctx, fr, kind, key, members, rate, base))
        self._decay(seen)
        return out

    def _decay(self, seen: set) -> None:
        """Populations not seen this pane decay toward zero (and are forgotten)."""
        alpha = self.c.baseline_alpha
        for bkey in list(self.baseline):
            if bkey not in seen:
                self.baseline[bkey] *= 1 - alpha
                if self.baseline[bkey] < 1e-3:
                    del self.baseline[bkey]

    def _verdict(self, ctx, fr, kind, key, members, rate, base) -> ClientVerdict:
        c, f = self.c, fr.columns
        names = ctx.member_names(fr, members)
        per_ip = f[F.REQ_COUNT][members]
        label = key if kind == "subnet" else f"{kind}#{key}"
        client = self.labels.setdefault((kind, key), key if kind == "subnet" else names[0])
        score = float(min(1.0, 0.6 + 0.4 * min(1.0, rate / (4 * c.min_population_req_per_min))))
        reasons = (
            f"{len(names):,} addresses sharing {kind} {label} sent {fmt(per_ip.sum())} requests "
            f"in {c.window_min} min ({fmt(round(rate, 1))}/min; threshold "
            f"{fmt(c.min_population_req_per_min)}/min and {fmt(c.baseline_multiplier)}× the "
            f"trailing baseline {fmt(round(base, 1))}/min)",
            f"each address stays low: median {fmt(float(np.median(per_ip)))}, max "
            f"{fmt(float(per_ip.max()))} requests in {c.window_min} min, at most "
            f"{fmt(c.member_max_distinct_paths)} distinct URLs and no static assets",
        )
        return ctx.campaign_verdict(
            label=client,
            names=names,
            detector=self.name,
            kind="distributed_flood",
            score=score,
            reasons=reasons,
            features={
                F.POPULATION_REQ_PER_MIN: float(rate),
                F.BASELINE_REQ_PER_MIN: float(base),
                F.VERDICT_WINDOW_MIN: float(c.window_min),
            },
        )


def _sharing_targets(
    members: np.ndarray, pg: np.ndarray, ph: np.ndarray, min_share: float
) -> np.ndarray:
    """The members whose every URL is one of the campaign's targets: the paths that at
    least ``min_share`` of the members request (a real user in the same /24 is not)."""
    mark = np.zeros(int(max(pg.max(initial=-1), members.max(initial=-1))) + 1, dtype=bool)
    mark[members] = True  # a gather per population instead of np.isin's sort of all paths
    in_pop = mark[pg]
    mpg, mph = pg[in_pop], ph[in_pop]
    if not len(mph):
        return members[:0]
    uniq, counts = np.unique(mph, return_counts=True)
    targets = uniq[counts >= min_share * len(members)]
    off = ~np.isin(mph, targets)
    bad = np.unique(mpg[off])
    return members[~np.isin(members, bad) & np.isin(members, mpg)]


def _fingerprint_of(fr, rows: np.ndarray) -> np.ndarray:
    """The smallest fingerprint hash of each row's client (its dominant one for bots)."""
    g, h = fr.fingerprints
    out = np.full(len(fr), -1, dtype=np.int64)
    if len(g):
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        out[g[starts]] = h[starts]
    return out[rows]


@DETECTORS.register("distributed_stuffing")
class DistributedStuffing:
    name = "distributed_stuffing"

    def __init__(self, cfg: DetectionConfig) -> None:
        self.c = cfg.distributed_stuffing
        self.posts = 0.0  # EWMA of login POSTs per window while quiet
        self.label: str | None = None  # stable decision label of the current campaign
        self.fails = 0.0

    def _ratio(self) -> float:
        prior = 20.0  # pseudo-observations of the prior ratio
        return (self.fails + prior * self.c.prior_fail_ratio) / (self.posts + prior)

    def detect(self, ctx: DetectionContext) -> list[ClientVerdict]:
        c = self.c
        fr = ctx.frame(c.window_min)
        posts = float(fr.columns[F.LOGIN_POST_COUNT].sum()) if len(fr) else 0.0
        fails = float(fr.columns[F.LOGIN_FAIL_COUNT].sum()) if len(fr) else 0.0
        p0 = self._ratio()
        z = (fails - posts * p0) / np.sqrt(max(posts * p0 * (1 - p0), 1e-9))
        if fails < c.min_site_fails or z < c.min_z:
            self.label = None
            self.posts = (1 - c.baseline_alpha) * self.posts + c.baseline_alpha * posts
            self.fails = (1 - c.baseline_alpha) * self.fails + c.baseline_alpha * fails
            return []
        mf = ctx.frame(c.member_window_min)
        g = mf.columns
        # Members: mostly failed login POSTs, or nothing but the login endpoint without the
        # page's assets (a bot fetching a fresh form token; a human's browser loads assets).
        member = (g[F.LOGIN_FAIL_COUNT] >= 1) & (
            g[F.LOGIN_POST_FRAC] >= c.member_min_login_post_frac
        )
        member |= (g[F.LOGIN_PATH_FRAC] == 1.0) & (g[F.ASSET_COUNT] == 0)
        member &= ~ctx.safe(mf) & ~ctx.gate("nat_gateway", mf)
        rows = np.flatnonzero(member)
        if len(rows) < c.min_members:
            return []
        names = ctx.member_names(mf, rows)
        self.label = self.label or names[0]
        per_ip = g[F.LOGIN_POST_COUNT][rows]
        score = float(min(1.0, 0.6 + 0.05 * (z - c.min_z)))
        reasons = (
            f"site-wide {fmt(fails)} failed of {fmt(posts)} login POSTs in {c.window_min} min: "
            f"z = {z:.1f} against the trailing failure ratio {p0:.0%} (threshold z ≥ "
            f"{fmt(c.min_z)}, at least {fmt(c.min_site_fails)} failures)",
            f"{len(names):,} addresses whose traffic is ≥ {c.member_min_login_post_frac:.0%} "
            f"login POSTs with failures; median {fmt(float(np.median(per_ip)))} attempts each "
            f"in {c.member_window_min} min",
        )
        return [
            ctx.campaign_verdict(
                label=self.label,
                names=names,
                detector=self.name,
                kind="distributed_credential_stuffing",
                score=score,
                reasons=reasons,
                features={
                    F.SITE_LOGIN_FAILS: fails,
                    F.SITE_LOGIN_POSTS: posts,
                    F.SITE_FAILURE_Z: float(z),
                },
            )
        ]
