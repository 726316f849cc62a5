"""Low-and-slow scanning without status codes (WAF-only logs): paths nobody else asks for.

The scanner detector counts distinct paths answered 400/403/404, which a web ACL's log cannot
tell. What it can tell: a scanner walks a wordlist of paths the site does not serve, so nearly
every path it requests is requested by no other client in the window, one request each, and
it loads no assets. A browsing person shares most pages with others and loads assets; a
crawler is gated. Quiet where 4xx answers are visible (status codes present): the scanner
detector owns that case, so ALB and CloudFront logs are judged as before.
"""

from __future__ import annotations

import numpy as np

from engine.detectors.base import DETECTORS, DetectionContext, fmt, saturating
from engine.detectors.config import DetectionConfig
from engine.schema import features as F
from engine.schema.features import FeatureFrame
from engine.schema.verdict import ClientVerdict


def unseen_share(fr: FeatureFrame) -> np.ndarray:
    """Per client, the share of its (bottom-k sampled) paths that no other client requested."""
    rows, hashes = fr.paths
    out = np.zeros(len(fr))
    if not len(hashes):
        return out
    _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    solo = counts[inverse] == 1
    sampled = np.bincount(rows, minlength=len(fr))
    alone = np.bincount(rows[solo], minlength=len(fr))
    np.divide(alone, sampled, out=out, where=sampled > 0)
    return out


@DETECTORS.register("unseen_paths")
class UnseenPaths:
    name = "unseen_paths"

    def __init__(self, cfg: DetectionConfig) -> None:
        self.c = cfg.unseen_paths

    def detect(self, ctx: DetectionContext) -> list[ClientVerdict]:
        c = self.c
        fr = ctx.frame(c.window_min)
        if not len(fr):
            return []
        f = fr.columns
        distinct = f[F.DISTINCT_PATHS]
        cand = (
            (distinct >= c.min_distinct_paths)
            & (distinct >= c.min_distinct_per_request * f[F.REQ_COUNT])
            & (f[F.ASSET_COUNT] <= c.max_assets)
            & (f[F.S4XX_COUNT] == 0)  # 4xx visible: the scanner detector's case
            & (f[F.LOGIN_POST_COUNT] == 0)
        )
        cand &= ctx.fresh(fr) & ~ctx.safe(fr) & ~ctx.gate("nat_gateway", fr)
        if not cand.any():
            return []
        share = unseen_share(fr)

        def explain(i: int) -> tuple[float, list[str]]:
            return float(saturating(distinct[i], c.min_distinct_paths)) * 0.4 + 0.35, [
                f"{fmt(distinct[i])} distinct paths in {fmt(f[F.REQ_COUNT][i])} requests over "
                f"{c.window_min} min without response codes "
                f"(threshold {fmt(c.min_distinct_paths)})",
                f"{share[i]:.0%} of them requested by no other client (threshold "
                f"{c.min_unseen_share:.0%}), {fmt(f[F.ASSET_COUNT][i])} assets: a wordlist, "
                "not the site's pages",
            ]

        return ctx.verdicts(
            fr, cand & (share >= c.min_unseen_share), explain, detector=self.name,
            kind="vulnerability_scanner", keys=(F.DISTINCT_PATHS, F.REQ_COUNT, F.ASSET_COUNT),
        )  # fmt: skip
