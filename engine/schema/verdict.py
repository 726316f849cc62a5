"""The verdict record: what one detector concluded about one client at one window end.

Detectors emit ``ClientVerdict``s; the proposal policy turns them into ``Decision``s. Reasons
are human-readable and carry the numbers behind them; evidence is a handful of sample
requests (``EvidenceSample``); ``features`` are the window features the detector read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.schema.evidence import EvidenceError, EvidenceSample

SEVERITIES = ("low", "medium", "high", "critical")


class VerdictError(ValueError):
    """A verdict that cannot exist (score out of range, unknown severity, naive time)."""


@dataclass(frozen=True, slots=True)
class ClientVerdict:
    """One detector's judgement of one client (an IP, or a campaign's CIDR/population key)."""

    client: str
    score: float
    kind: str
    severity: str
    detector: str
    reasons: tuple[str, ...] = ()
    evidence: tuple[EvidenceSample, ...] = ()  # most telling first
    window_end: datetime = field(default_factory=lambda: datetime.fromtimestamp(0, UTC))
    features: dict[str, float] = field(default_factory=dict)
    members: tuple[str, ...] = ()  # a distributed campaign: the addresses it covers

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.score) <= 1.0:
            raise VerdictError(f"score must be within 0..1, got {self.score!r}")
        if self.severity not in SEVERITIES:
            raise VerdictError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")
        if self.window_end.tzinfo is None:
            raise VerdictError("window_end must be timezone-aware (UTC)")
        object.__setattr__(self, "score", float(self.score))
        object.__setattr__(self, "reasons", tuple(self.reasons))
        try:
            evidence = tuple(EvidenceSample.coerce(e) for e in self.evidence)
        except EvidenceError as exc:
            raise VerdictError(str(exc)) from None
        object.__setattr__(self, "evidence", evidence)
        object.__setattr__(self, "members", tuple(self.members))

    def to_dict(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "score": self.score,
            "kind": self.kind,
            "severity": self.severity,
            "detector": self.detector,
            "reasons": list(self.reasons),
            "evidence": [e.to_dict() for e in self.evidence],
            "window_end": self.window_end.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "features": {k: float(v) for k, v in self.features.items()},
            "members": list(self.members),
        }


def severity_for(score: float) -> str:
    """The conventional severity band of a 0..1 score."""
    if score >= 0.9:
        return "critical"
    if score >= 0.7:
        return "high"
    if score >= 0.4:
        return "medium"
    return "low"
