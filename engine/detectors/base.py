"""What every detector sees (``DetectionContext``) and the ``DETECTORS`` registry.

A detector is a class built from the whole ``DetectionConfig`` that returns verdicts for the
clients of one snapshot. Detectors read window features through ``ctx.frame(w)`` and never
loop over all clients in Python: they compute masks with numpy and only build verdicts for
the few clients a mask selects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import numpy as np

from engine.core.registry import Registry
from engine.detectors.config import DetectionConfig
from engine.schema import features as F
from engine.schema.evidence import EvidenceSample
from engine.schema.features import FeatureFrame, Snapshot
from engine.schema.verdict import ClientVerdict, severity_for


class Detector(Protocol):
    name: str

    def detect(self, ctx: DetectionContext) -> list[ClientVerdict]: ...


DETECTORS: Registry[Callable[[DetectionConfig], Detector]] = Registry("detector")


@dataclass
class DetectionContext:
    """One evaluation: all windows ending at ``window_end``, gates, and an evidence lookup."""

    snapshot: Snapshot
    cfg: DetectionConfig
    samples: Callable[[str], list[EvidenceSample]] = lambda client: []
    gates: dict[str, np.ndarray] = field(default_factory=dict)  # name -> mask over codes

    @property
    def window_end(self) -> datetime:
        return datetime.fromtimestamp(self.snapshot.window_end_ms / 1000, UTC)

    def frame(self, window_min: int) -> FeatureFrame:
        try:
            return self.snapshot.frames[window_min]
        except KeyError:
            known = sorted(self.snapshot.frames)
            raise KeyError(f"no {window_min}-minute window; configured: {known}") from None

    def names(self, frame: FeatureFrame) -> np.ndarray:
        return self.snapshot.clients[frame.codes]

    def gate(self, name: str, frame: FeatureFrame) -> np.ndarray:
        """Gate mask ``name`` aligned with ``frame`` (False for clients the gate never saw)."""
        codes_mask = self.gates.get(name)
        if codes_mask is None:
            return np.zeros(len(frame), dtype=bool)
        return codes_mask[frame.codes]

    def fresh(self, frame: FeatureFrame) -> np.ndarray:
        """Clients not already under a block in force (no point re-judging them each pane)."""
        return ~self.gate("covered", frame)

    def safe(self, frame: FeatureFrame, *names: str) -> np.ndarray:
        out = np.zeros(len(frame), dtype=bool)
        for name in names or ("allowlisted", "verified_crawler", "health_checker", "api_poller"):
            out |= self.gate(name, frame)
        return out

    def verdict(
        self,
        frame: FeatureFrame,
        row: int,
        *,
        detector: str,
        kind: str,
        score: float,
        reasons: list[str],
        keys: tuple[str, ...] = (),
    ) -> ClientVerdict:
        client = str(self.snapshot.clients[frame.codes[row]])
        score = float(min(max(score, 0.0), 1.0))
        feats = {k: float(frame.columns[k][row]) for k in keys}
        feats[F.VERDICT_WINDOW_MIN] = float(frame.window_min)
        return ClientVerdict(
            client=client,
            score=score,
            kind=kind,
            severity=severity_for(score),
            detector=detector,
            reasons=tuple(reasons),
            evidence=tuple(self.samples(client)),
            window_end=self.window_end,
            features=feats,
        )

    def verdicts(
        self,
        frame: FeatureFrame,
        hit: np.ndarray,
        explain: Callable[[int], tuple[float, list[str]]],
        *,
        detector: str,
        kind: str,
        keys: tuple[str, ...] = (),
    ) -> list[ClientVerdict]:
        """One verdict per row of ``frame`` that the mask ``hit`` selects, in row order:
        ``explain(row)`` gives its score and reasons. The loop a per-client detector ends
        with, once its thresholds have been applied to whole columns."""
        out = []
        for row in np.flatnonzero(hit):
            score, reasons = explain(row)
            verdict = self.verdict(
                frame, row, detector=detector, kind=kind, score=score, reasons=reasons, keys=keys
            )
            out.append(verdict)
        return out

    def member_names(self, frame: FeatureFrame, rows: np.ndarray) -> list[str]:
        """A campaign's member keys, sorted: the order its label and evidence are taken in."""
        return sorted(str(x) for x in self.snapshot.clients[frame.codes[rows]])

    def campaign_verdict(
        self,
        *,
        label: str,
        names: list[str],
        detector: str,
        kind: str,
        score: float,
        reasons: tuple[str, ...],
        features: dict[str, float],
    ) -> ClientVerdict:
        """One verdict over a whole campaign: ``label`` names it (kept by the detector while
        the campaign lasts, so its decision merges), ``names`` are its members, the first
        member's requests its evidence."""
        return ClientVerdict(
            client=label,
            score=score,
            kind=kind,
            severity=severity_for(score),
            detector=detector,
            reasons=reasons,
            evidence=tuple(self.samples(names[0])),
            window_end=self.window_end,
            features={F.CAMPAIGN_MEMBERS: float(len(names)), **features},
            members=tuple(names),
        )


def saturating(value: float | np.ndarray, threshold: float) -> float | np.ndarray:
    """0.5 at the threshold, approaching 1 as ``value`` grows past it (a readable score)."""
    ratio = np.asarray(value, dtype=np.float64) / max(threshold, 1e-9)
    return np.clip(1.0 - 0.5 / np.maximum(ratio, 1e-9), 0.0, 1.0)


def fmt(x: float) -> str:
    """Numbers as analysts read them: integers without decimals, ratios with two."""
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.2f}"
