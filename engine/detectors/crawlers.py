"""Crawlers judged by crawlers' standards (``crawler_conduct``).

Verified crawlers (a search engine's user agent from its published networks) are gated for
every other detector: following a link an attacker planted (``?id=1' OR 1=1``) or crawling
a large site fast is not an attack. They misbehave only by their own standards — exceeding a
crawl-rate budget, probing sensitive or missing paths, fetching what robots.txt disallows —
and then this detector proposes them, for a human: the policy never auto-approves it.
Impersonators (a search engine's user agent from elsewhere) are ``attack_tools``' business.
"""

from __future__ import annotations

from engine.detectors.base import DETECTORS, DetectionContext, fmt
from engine.detectors.config import DetectionConfig
from engine.detectors.gates import crawler_misconduct
from engine.schema import features as F
from engine.schema.verdict import ClientVerdict

KIND = "misbehaving_crawler"


@DETECTORS.register("crawler_conduct")
class CrawlerConduct:
    name = "crawler_conduct"

    def __init__(self, cfg: DetectionConfig) -> None:
        self.cfg = cfg

    def detect(self, ctx: DetectionContext) -> list[ClientVerdict]:
        g = self.cfg.gates
        fr = ctx.frame(g.window_min)
        if not len(fr):
            return []
        c = fr.columns
        bad = crawler_misconduct(c, self.cfg)
        hit = ctx.gate("verified_crawler", fr) & bad.any(axis=0) & ctx.fresh(fr)
        hit &= ~ctx.gate("allowlisted", fr)

        def explain(i: int) -> tuple[float, list[str]]:
            reasons = ["verified crawler (published networks) breaking its own standards:"]
            if bad[0, i]:
                reasons.append(
                    f"{fmt(c[F.PEAK_REQ_PER_MIN][i])} requests in one minute, over the crawl-rate "
                    f"budget of {fmt(g.crawler_max_req_per_min)}"
                )
            if bad[1, i]:
                sens = c[F.SENSITIVE_PATH_HITS][i]
                reasons.append(f"{fmt(sens)} distinct sensitive paths probed")
            if bad[2, i]:
                reasons.append(
                    f"{fmt(c[F.ROBOTS_DISALLOWED_HITS][i])} requests under robots.txt Disallow"
                )
            reasons.append("never auto-approved: an analyst decides")
            return 0.7, reasons

        keys = (F.PEAK_REQ_PER_MIN, F.SENSITIVE_PATH_HITS, F.ROBOTS_DISALLOWED_HITS)
        return ctx.verdicts(fr, hit, explain, detector=self.name, kind=KIND, keys=keys)
