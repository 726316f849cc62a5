"""features stage: canonical request batches → per-client, per-minute mergeable partials →
sliding-window feature frames (1, 5, 15, 60 min). Imports only engine.schema and engine.core.
"""

from engine.features.config import FeatureConfig
from engine.features.pane import PanePartial, from_batch, merge
from engine.features.store import FeatureStore, Snapshot
from engine.features.window import FeatureFrame, finalize

__all__ = [
    "FeatureConfig",
    "FeatureFrame",
    "FeatureStore",
    "PanePartial",
    "Snapshot",
    "finalize",
    "from_batch",
    "merge",
]
