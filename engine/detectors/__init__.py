"""detectors stage: feature snapshots → ``ClientVerdict``s.

``DETECTORS`` maps names to detector classes built from one ``DetectionConfig``; gates
protect the false-positive populations; the anomaly detector loads a persisted
isolation-forest artifact (it never imports ``models/``).
"""

from engine.detectors import (  # noqa: F401  (register them)
    anomaly,
    auth_posts,
    crawlers,
    per_client,
    population,
    unseen_paths,
)
from engine.detectors.anomaly import LoadedModel, ModelSpecError, load_artifact
from engine.detectors.base import DETECTORS, DetectionContext, Detector
from engine.detectors.config import DetectionConfig
from engine.detectors.gates import GATES, compute_gates, gate_crawler_verdicts

__all__ = [
    "DETECTORS",
    "GATES",
    "DetectionConfig",
    "DetectionContext",
    "Detector",
    "LoadedModel",
    "ModelSpecError",
    "compute_gates",
    "gate_crawler_verdicts",
    "load_artifact",
]
