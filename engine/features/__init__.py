"""features stage: canonical request batches → per-client, per-minute mergeable partials →
sliding-window feature frames (1, 5, 15, 60 min), the ``FeatureFrame``/``Snapshot`` records of
``engine.schema.features``. Imports only engine.schema and engine.core.

Exact and approximate state (``detection.md`` §2):

- Exact: every counter (requests, status classes, methods, assets, logins, pattern hits, bytes,
  path depth), the per-minute peak, active minutes, first/last time, inter-arrival sums (exact
  when partials of a pane cover adjacent time ranges, approximate when they interleave).
- Bottom-k (KMV) sets of 32-bit hashes, k = ``FeatureConfig.distinct_k`` (16): distinct paths,
  user agents, fingerprints (JA4 or UA family), probe paths (non-asset 400/403/404) and
  sensitive paths. Exact up to k distinct values per client and window, estimated beyond
  (standard error ≈ 1/√(k − 2) ≈ 27 %); mergeable by union-then-truncate.
- Hashed histogram: path entropy over 8 buckets of path templates (a lower bound of the
  template entropy, exactly mergeable).
- Population aggregates (per /24 or /48, per fingerprint, per target path) are built from
  the client window features at detection time, so distinct addresses per population are
  exact.

State is dropped once no window can reach it; ``FeatureStore.state_bytes`` measures it
(≈ 0.75–0.95 KB per active client over an hour of Zipf-like ALB traffic, see
``benchmarks/bench_features.py``).
"""

from engine.features.config import FeatureConfig
from engine.features.feature_state import FeatureStore
from engine.features.pane import PanePartial, from_batch, merge
from engine.features.window import finalize

__all__ = [
    "FeatureConfig",
    "FeatureStore",
    "PanePartial",
    "finalize",
    "from_batch",
    "merge",
]
