"""The model feature spec: which window features feed the isolation forest, transformed how.

Rows 1–22 of ``detection.md`` §3 (counts log1p-transformed, ratios raw). ``SPEC_HASH``
identifies this exact spec; a persisted model records the hash it was trained on and the
loader refuses an artifact whose hash differs, so a model never scores columns it was not
trained on.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from engine.features.window import FeatureFrame

SPEC_VERSION = 1
MODEL_WINDOW_MIN = 15
MODEL_ARTIFACT_NAME = "iforest"  # <directory>/iforest.joblib + iforest.json (the model card)
# (feature name, transform) in column order.
MODEL_FEATURES: tuple[tuple[str, str], ...] = (
    ("req_count", "log1p"),
    ("peak_req_per_min", "log1p"),
    ("active_minutes_frac", "raw"),
    ("interarrival_cv", "raw"),
    ("bytes_out_mean", "log1p"),
    ("err4xx_ratio", "raw"),
    ("err404_ratio", "raw"),
    ("err5xx_ratio", "raw"),
    ("distinct_paths", "log1p"),
    ("path_breadth", "raw"),
    ("path_entropy", "raw"),
    ("depth_std", "raw"),
    ("html_to_asset_ratio", "log1p"),
    ("robots_txt_hit", "raw"),
    ("head_frac", "raw"),
    ("post_frac", "raw"),
    ("login_post_count", "log1p"),
    ("login_fail_ratio", "raw"),
    ("no_referer_frac", "raw"),
    ("ua_distinct", "log1p"),
    ("fingerprint_distinct", "log1p"),
)
FEATURE_NAMES = tuple(name for name, _ in MODEL_FEATURES)


def spec_document() -> dict:
    return {
        "version": SPEC_VERSION,
        "window_min": MODEL_WINDOW_MIN,
        "features": [list(f) for f in MODEL_FEATURES],
    }


SPEC_HASH = hashlib.sha256(json.dumps(spec_document(), sort_keys=True).encode()).hexdigest()[:16]


def model_matrix(frame: FeatureFrame) -> np.ndarray:
    """(clients, features) float64 matrix of ``frame`` in spec order and transforms."""
    cols = []
    for name, transform in MODEL_FEATURES:
        x = np.asarray(frame.columns[name], dtype=np.float64)
        cols.append(np.log1p(np.maximum(x, 0.0)) if transform == "log1p" else x)
    if not cols or len(frame) == 0:
        return np.zeros((len(frame), len(MODEL_FEATURES)))
    return np.column_stack(cols)
