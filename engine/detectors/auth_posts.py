"""Credential stuffing without status codes (WAF-only logs): who logs in without browsing.

A web ACL's log has no response status, so the failure-based detectors (``credential_stuffing``,
``distributed_stuffing``) never see a failed login there. Two signals remain:

- ``auth_post_bot`` (per client): a client whose window is mostly POSTs to login/auth paths,
  with almost no page views or assets, and enough attempts. A person logs in once or twice
  after loading the page and its assets; a stuffer only posts.
- ``login_surge`` (site-wide): the site's login-POST count in a short window against its own
  trailing baseline (an EWMA of quiet windows, seeded by a prior); while it surges, the
  members are the clients that only touch the login endpoint, without assets. One verdict
  per campaign, like ``distributed_stuffing``.

Both stay quiet where failures are visible (status codes present): a client (or a site
window) with any counted login failure belongs to the failure-based detectors, so ALB and
CloudFront logs are judged exactly as before. Gates (allowlist, crawlers, health checks,
NAT gateways, API pollers) apply, and a device re-authenticating on a steady timer is spared.
"""

from __future__ import annotations

import numpy as np

from engine.detectors.base import DETECTORS, DetectionContext, fmt, saturating
from engine.detectors.config import DetectionConfig
from engine.schema import features as F
from engine.schema.verdict import ClientVerdict


@DETECTORS.register("auth_post_bot")
class AuthPostBot:
    name = "auth_post_bot"

    def __init__(self, cfg: DetectionConfig) -> None:
        self.c = cfg.auth_post_bot

    def detect(self, ctx: DetectionContext) -> list[ClientVerdict]:
        c = self.c
        fr = ctx.frame(c.window_min)
        if not len(fr):
            return []
        f = fr.columns
        posts = f[F.LOGIN_POST_COUNT]
        other = f[F.REQ_COUNT] * (1.0 - f[F.LOGIN_PATH_FRAC])  # pages, assets, API calls
        hit = (
            (posts >= c.min_auth_posts)
            & (f[F.LOGIN_POST_FRAC] >= c.min_auth_post_frac)
            & (other <= np.maximum(c.max_other_requests, c.max_other_frac * f[F.REQ_COUNT]))
            & (f[F.LOGIN_FAIL_COUNT] == 0)  # failures visible: credential_stuffing's case
        )
        # A device re-authenticating on a timer (steady cadence, few attempts) is spared; the
        # api_poller gate never covers it (it excludes login POSTs), so the test is here.
        poller = (f[F.INTERARRIVAL_CV] <= c.timer_max_cv) & (posts < c.poller_max_auth_posts)
        poller |= ctx.gate("api_poller", fr)
        hit &= ctx.fresh(fr) & ~ctx.safe(fr, "allowlisted", "verified_crawler", "health_checker")
        hit &= ~poller & ~ctx.gate("nat_gateway", fr)

        def explain(i: int) -> tuple[float, list[str]]:
            reasons = [
                f"{fmt(posts[i])} login POSTs in {c.window_min} min without response codes "
                f"(threshold {fmt(c.min_auth_posts)})",
                f"{f[F.LOGIN_POST_FRAC][i]:.0%} of its {fmt(f[F.REQ_COUNT][i])} requests are "
                f"login POSTs (threshold {c.min_auth_post_frac:.0%}); "
                f"{fmt(round(other[i]))} other requests, {fmt(f[F.ASSET_COUNT][i])} assets: "
                "no pages browsed",
            ]
            if f[F.WAF_ACTED_FRAC][i] > 0:  # the web ACL's own rules (rate, ATP) already acted
                reasons.append(
                    f"the web ACL already blocked or challenged {f[F.WAF_ACTED_FRAC][i]:.0%} "
                    "of its requests (its terminating rules; an address block stops the rest)"
                )
            return float(saturating(posts[i], c.min_auth_posts)) * 0.5 + 0.4, reasons

        keys = (F.LOGIN_POST_COUNT, F.LOGIN_POST_FRAC, F.ASSET_COUNT, F.REQ_COUNT, F.WAF_ACTED_FRAC)
        return ctx.verdicts(
            fr, hit, explain, detector=self.name, kind="credential_stuffing", keys=keys
        )


@DETECTORS.register("login_surge")
class LoginSurge:
    name = "login_surge"

    def __init__(self, cfg: DetectionConfig) -> None:
        self.c = cfg.login_surge
        self.baseline = self.c.prior_posts  # EWMA of the site's login POSTs per quiet window
        self.label: str | None = None  # stable decision label of the current campaign

    def detect(self, ctx: DetectionContext) -> list[ClientVerdict]:
        c = self.c
        fr = ctx.frame(c.window_min)
        posts = float(fr.columns[F.LOGIN_POST_COUNT].sum()) if len(fr) else 0.0
        fails = float(fr.columns[F.LOGIN_FAIL_COUNT].sum()) if len(fr) else 0.0
        base = self.baseline
        z = (posts - base) / np.sqrt(base + 1.0)  # Poisson-like excess over the baseline
        surging = (
            posts >= c.min_site_posts
            and posts >= c.baseline_multiplier * base
            and z >= c.min_z
            and fails == 0  # failures visible: distributed_stuffing's case
        )
        if not surging:
            self.label = None
            self.baseline = (1 - c.baseline_alpha) * base + c.baseline_alpha * posts
            return []
        mf = ctx.frame(c.member_window_min)
        g = mf.columns
        member = (
            (g[F.LOGIN_POST_COUNT] >= 1)
            & (g[F.LOGIN_PATH_FRAC] >= c.member_min_login_path_frac)
            & (g[F.ASSET_COUNT] <= c.member_max_assets)
            & (g[F.LOGIN_FAIL_COUNT] == 0)
        )
        member &= ~ctx.safe(mf) & ~ctx.gate("nat_gateway", mf)
        rows = np.flatnonzero(member)
        if len(rows) < c.min_members:
            return []
        names = ctx.member_names(mf, rows)
        self.label = self.label or names[0]
        per_ip = g[F.LOGIN_POST_COUNT][rows]
        score = float(min(1.0, 0.6 + 0.02 * (z - c.min_z)))
        reasons = (
            f"site-wide {fmt(posts)} login POSTs in {c.window_min} min against a trailing "
            f"{fmt(round(base, 2))} (threshold ≥ {fmt(c.baseline_multiplier)}× and "
            f"≥ {fmt(c.min_site_posts)}, z = {z:.1f} ≥ {fmt(c.min_z)}); no response codes",
            f"{len(names):,} addresses that only touch the login endpoint, without assets; "
            f"median {fmt(float(np.median(per_ip)))} login POSTs each in "
            f"{c.member_window_min} min",
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
                    F.SITE_LOGIN_POSTS: posts,
                    F.SITE_FAILURE_Z: float(z),
                },
            )
        ]
