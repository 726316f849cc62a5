"""Explainable per-client detectors: flood, scanner, credential stuffing, scraper, known
attack tools (and fake crawlers), injection probes. Each reads one window, compares
features against its configured thresholds with numpy, and writes the numbers into reasons.
"""

from __future__ import annotations

import numpy as np

from engine.detectors.base import DETECTORS, DetectionContext, fmt, saturating
from engine.detectors.config import DetectionConfig
from engine.schema import features as F
from engine.schema.verdict import ClientVerdict


@DETECTORS.register("volumetric_flood")
class VolumetricFlood:
    name = "volumetric_flood"

    def __init__(self, cfg: DetectionConfig) -> None:
        self.c = cfg.volumetric_flood

    def detect(self, ctx: DetectionContext) -> list[ClientVerdict]:
        c = self.c
        fr = ctx.frame(c.window_min)
        f = fr.columns
        if not len(fr):
            return []
        room = np.where(ctx.gate("nat_gateway", fr), c.nat_multiplier, 1.0)
        peak = f[F.PEAK_REQ_PER_MIN]
        f5 = ctx.frame(5).columns if 5 in ctx.snapshot.frames else None
        req5 = np.zeros(len(fr))
        if f5 is not None:
            req5 = _align(ctx, ctx.frame(5), fr, f5[F.REQ_COUNT])
        hit = (peak >= c.min_req_per_min * room) | (req5 >= c.min_req_5m * room)
        # A CGNAT pool's rate is hundreds of phones' (blocking it blocks them all).
        hit &= ctx.fresh(fr) & ~ctx.safe(
            fr, "allowlisted", "verified_crawler", "health_checker", "cgnat_pool"
        )

        def explain(i: int) -> tuple[float, list[str]]:
            score = max(
                saturating(peak[i], c.min_req_per_min * room[i]),
                saturating(req5[i], c.min_req_5m * room[i]),
            )
            return float(score), [
                f"{fmt(peak[i])} requests in one minute "
                f"(threshold {fmt(c.min_req_per_min * room[i])})",
                f"{fmt(req5[i])} requests in 5 min (threshold {fmt(c.min_req_5m * room[i])})",
                f"{f[F.TOP_BUCKET_SHARE][i]:.0%} of requests to one path group, "
                f"path entropy {f[F.PATH_ENTROPY][i]:.2f} bits",
            ]

        return ctx.verdicts(
            fr, hit, explain, detector=self.name, kind="volumetric_flood",
            keys=(F.PEAK_REQ_PER_MIN, F.REQ_COUNT, F.PATH_ENTROPY),
        )  # fmt: skip


@DETECTORS.register("scanner")
class Scanner:
    """Fast scanners (many distinct probe paths in minutes) and low-and-slow ones (over an hour)."""

    name = "scanner"

    def __init__(self, cfg: DetectionConfig) -> None:
        self.c = cfg.scanner

    def detect(self, ctx: DetectionContext) -> list[ClientVerdict]:
        c = self.c
        out: dict[str, ClientVerdict] = {}  # a client found by the fast scan is not judged again
        for window, min_probe, min_err, label in (
            (c.window_min, c.min_probe_paths, c.min_err4xx_ratio, "fast"),
            (c.slow_window_min, c.slow_min_probe_paths, c.slow_min_err4xx_ratio, "low-and-slow"),
        ):
            for v in self._scan(ctx, window, min_probe, min_err, label, judged=out):
                out[v.client] = v
        return list(out.values())

    def _scan(
        self, ctx: DetectionContext, window: int, min_probe: float, min_err: float, label: str,
        judged: dict[str, ClientVerdict],
    ) -> list[ClientVerdict]:  # fmt: skip
        """The verdicts of one window's scan on the clients not ``judged`` already."""
        c = self.c
        fr = ctx.frame(window)
        if not len(fr):
            return []
        f = fr.columns
        probe, err, sens = f[F.PROBE_404_DISTINCT], f[F.ERR4XX_RATIO], f[F.SENSITIVE_PATH_HITS]
        errors = f[F.S4XX_COUNT]
        fast = label == "fast"
        hit = ((probe >= min_probe) & (err >= min_err)) | (sens >= c.min_sensitive_paths)
        if fast:
            hit |= (errors >= c.min_errors) & (err >= c.min_errors_ratio)
        hit &= ctx.fresh(fr) & ~ctx.safe(fr)
        rows = np.flatnonzero(hit)
        hit[rows] = [str(name) not in judged for name in ctx.names(fr)[rows]]

        def explain(i: int) -> tuple[float, list[str]]:
            score = max(
                float(saturating(probe[i], min_probe)) * min(1.0, err[i] / min_err),
                float(saturating(sens[i], c.min_sensitive_paths)),
                float(saturating(errors[i], c.min_errors)) if fast else 0.0,
            )
            reasons = [
                f"{label} scan: {fmt(probe[i])} distinct paths answered 400/403/404 in "
                f"{window} min (threshold {fmt(min_probe)})",
                f"{err[i]:.0%} of {fmt(f[F.REQ_COUNT][i])} responses were 4xx "
                f"(threshold {min_err:.0%})",
                f"{fmt(sens[i])} distinct sensitive paths probed "
                f"(threshold {fmt(c.min_sensitive_paths)})",
            ]
            if fast:
                reasons.append(
                    f"{fmt(errors[i])} 4xx answers in {window} min "
                    f"(threshold {fmt(c.min_errors)} at ≥ {c.min_errors_ratio:.0%} 4xx)"
                )
            return score, reasons

        return ctx.verdicts(
            fr, hit, explain, detector=self.name, kind="vulnerability_scanner",
            keys=(F.PROBE_404_DISTINCT, F.ERR4XX_RATIO, F.SENSITIVE_PATH_HITS, F.REQ_COUNT),
        )  # fmt: skip


@DETECTORS.register("credential_stuffing")
class CredentialStuffing:
    name = "credential_stuffing"

    def __init__(self, cfg: DetectionConfig) -> None:
        self.c = cfg.credential_stuffing

    def detect(self, ctx: DetectionContext) -> list[ClientVerdict]:
        c = self.c
        fr = ctx.frame(c.window_min)
        if not len(fr):
            return []
        f = fr.columns
        posts, ratio = f[F.LOGIN_POST_COUNT], f[F.LOGIN_FAIL_RATIO]
        hit = (posts >= c.min_login_posts) & (ratio >= c.min_fail_ratio)
        hit &= ctx.fresh(fr) & ~ctx.safe(fr, "allowlisted", "verified_crawler")

        def explain(i: int) -> tuple[float, list[str]]:
            score = float(saturating(posts[i], c.min_login_posts)) * min(1.0, ratio[i] / 0.8 + 0.2)
            return score, [
                f"{fmt(posts[i])} login POSTs in {c.window_min} min "
                f"(threshold {fmt(c.min_login_posts)})",
                f"{ratio[i]:.0%} of them failed (threshold {c.min_fail_ratio:.0%})",
            ]

        return ctx.verdicts(
            fr, hit, explain, detector=self.name, kind="credential_stuffing",
            keys=(F.LOGIN_POST_COUNT, F.LOGIN_FAIL_RATIO, F.REQ_COUNT),
        )  # fmt: skip


@DETECTORS.register("scraper")
class Scraper:
    name = "scraper"

    def __init__(self, cfg: DetectionConfig) -> None:
        self.c = cfg.scraper

    def detect(self, ctx: DetectionContext) -> list[ClientVerdict]:
        c = self.c
        fr = ctx.frame(c.window_min)
        if not len(fr):
            return []
        f = fr.columns
        hit = (
            (f[F.REQ_COUNT] >= c.min_req)
            & (f[F.DISTINCT_PATHS] >= c.min_distinct_paths)
            & (f[F.ASSET_FRAC] <= c.max_asset_frac)
            & (f[F.PATH_BREADTH] >= c.min_path_breadth)
        )
        hit &= ctx.fresh(fr) & ~ctx.safe(fr) & ~ctx.gate("nat_gateway", fr)

        def explain(i: int) -> tuple[float, list[str]]:
            return float(saturating(f[F.DISTINCT_PATHS][i], c.min_distinct_paths)), [
                f"{fmt(f[F.REQ_COUNT][i])} requests for {fmt(f[F.DISTINCT_PATHS][i])} distinct "
                f"pages in {c.window_min} min (thresholds {fmt(c.min_req)}, "
                f"{fmt(c.min_distinct_paths)})",
                f"{f[F.ASSET_FRAC][i]:.0%} static assets (a browser fetches them; "
                f"threshold ≤ {c.max_asset_frac:.0%})",
                f"path breadth {f[F.PATH_BREADTH][i]:.2f} (threshold {c.min_path_breadth:.2f})",
            ]

        return ctx.verdicts(
            fr, hit, explain, detector=self.name, kind="scraper",
            keys=(F.REQ_COUNT, F.DISTINCT_PATHS, F.ASSET_FRAC),
        )  # fmt: skip


@DETECTORS.register("attack_tools")
class AttackTools:
    """Known attack-tool user agents, and crawler user agents from outside the crawler's
    published networks (fake crawlers)."""

    name = "attack_tools"

    def __init__(self, cfg: DetectionConfig) -> None:
        self.c = cfg.attack_tools

    def detect(self, ctx: DetectionContext) -> list[ClientVerdict]:
        c = self.c
        fr = ctx.frame(c.window_min)
        if not len(fr):
            return []
        f = fr.columns
        # A verified crawler sends no tool user agent, and is by definition no fake one.
        safe = ctx.safe(fr, "allowlisted", "verified_crawler") | ~ctx.fresh(fr)
        tool = (f[F.TOOL_UA_HITS] >= c.min_tool_requests) & ~safe
        declared = f[F.CRAWLER_UA_FRAC] * f[F.REQ_COUNT]
        fake = (
            (declared >= c.min_fake_crawler_requests)
            & (f[F.CRAWLER_VERIFIED_FRAC] == 0)
            & ~safe
            & ~tool
        )

        def tool_ua(i: int) -> tuple[float, list[str]]:
            return 0.6 + 0.4 * min(1.0, f[F.TOOL_UA_HITS][i] / 20), [
                f"{fmt(f[F.TOOL_UA_HITS][i])} of {fmt(f[F.REQ_COUNT][i])} requests in "
                f"{c.window_min} min carry a known attack-tool user agent"
            ]

        def fake_crawler(i: int) -> tuple[float, list[str]]:
            return 0.75, [
                f"{fmt(declared[i])} requests in {c.window_min} min declare a search "
                "crawler user agent from an address outside that crawler's published "
                "networks"
            ]

        return ctx.verdicts(
            fr, tool, tool_ua, detector=self.name, kind="attack_tool",
            keys=(F.TOOL_UA_HITS, F.REQ_COUNT),
        ) + ctx.verdicts(
            fr, fake, fake_crawler, detector=self.name, kind="fake_crawler",
            keys=(F.CRAWLER_UA_FRAC, F.REQ_COUNT),
        )  # fmt: skip


@DETECTORS.register("injection")
class InjectionProbe:
    name = "injection"

    def __init__(self, cfg: DetectionConfig) -> None:
        self.c = cfg.injection

    def detect(self, ctx: DetectionContext) -> list[ClientVerdict]:
        c = self.c
        fr = ctx.frame(c.window_min)
        if not len(fr):
            return []
        f = fr.columns
        hits = f[F.INJECTION_HITS]
        # Verified crawlers follow links: an injection string in a URL someone else published
        # is not the crawler's attack (and blocking it costs the site its search listing).
        safe = ctx.safe(fr, "allowlisted", "verified_crawler")
        hit = (hits >= c.min_hits) & ctx.fresh(fr) & ~safe

        def explain(i: int) -> tuple[float, list[str]]:
            return float(saturating(hits[i], c.min_hits)) * 0.4 + 0.6, [
                f"{fmt(hits[i])} requests in {c.window_min} min match SQL-injection, XSS, "
                f"traversal or command-injection patterns (threshold {fmt(c.min_hits)})"
            ]

        return ctx.verdicts(
            fr, hit, explain, detector=self.name, kind="injection_probe",
            keys=(F.INJECTION_HITS, F.REQ_COUNT),
        )  # fmt: skip


def _align(ctx: DetectionContext, src, dst, values: np.ndarray) -> np.ndarray:
    """Values of frame ``src`` re-indexed onto the clients of frame ``dst`` (0 if absent)."""
    pos = np.searchsorted(src.codes, dst.codes)
    pos = np.minimum(pos, max(len(src.codes) - 1, 0))
    out = np.zeros(len(dst.codes))
    if len(src.codes):
        found = src.codes[pos] == dst.codes
        out[found] = values[pos[found]]
    return out
