"""The records between the features stage and its readers: feature frames and snapshots, the
name of every feature column, and the model feature spec a persisted model is built against.

The features stage builds ``FeatureFrame``s whose columns are exactly ``ALL_FEATURES``;
detectors, the pipeline, the runner and ``models/`` read them through the constants below, so
a misspelt feature name is an ``AttributeError``/``ImportError`` at import time instead of a
``KeyError`` (or a silent ``None``) at run time.

Model feature spec: rows 1–22 of ``detection.md`` §3 (counts log1p-transformed, ratios raw).
``SPEC_HASH`` identifies this exact spec; a persisted model records the hash it was trained
on and the loader refuses an artifact whose hash differs, so a model never scores columns it
was not trained on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

# --- feature names: one constant per column of a FeatureFrame ------------------------------
# volume and pacing
REQ_COUNT = "req_count"
PEAK_REQ_PER_MIN = "peak_req_per_min"
ACTIVE_MINUTES_FRAC = "active_minutes_frac"
REQ_PER_MIN = "req_per_min"
INTERARRIVAL_CV = "interarrival_cv"
INTERARRIVAL_MEAN_S = "interarrival_mean_s"
SPAN_S = "span_s"
BYTES_OUT_MEAN = "bytes_out_mean"
# responses
ERR3XX_RATIO = "err3xx_ratio"
ERR4XX_RATIO = "err4xx_ratio"
ERR404_RATIO = "err404_ratio"
ERR5XX_RATIO = "err5xx_ratio"
AUTH_FAIL_RATIO = "auth_fail_ratio"
S404_COUNT = "s404_count"
S4XX_COUNT = "s4xx_count"
# paths
DISTINCT_PATHS = "distinct_paths"
PATH_BREADTH = "path_breadth"
PATH_ENTROPY = "path_entropy"
TOP_BUCKET = "top_bucket"
TOP_BUCKET_SHARE = "top_bucket_share"
DEPTH_STD = "depth_std"
ASSET_FRAC = "asset_frac"
ASSET_COUNT = "asset_count"
HTML_TO_ASSET_RATIO = "html_to_asset_ratio"
ROBOTS_TXT_HIT = "robots_txt_hit"
QUERY_FRAC = "query_frac"
PROBE_404_DISTINCT = "probe_404_distinct"
SENSITIVE_PATH_HITS = "sensitive_path_hits"
SENSITIVE_REQ = "sensitive_req"
INJECTION_HITS = "injection_hits"
HEALTH_FRAC = "health_frac"
# methods and logins
GET_FRAC = "get_frac"
HEAD_FRAC = "head_frac"
POST_FRAC = "post_frac"
OTHER_METHOD_FRAC = "other_method_frac"
LOGIN_POST_COUNT = "login_post_count"
LOGIN_FAIL_COUNT = "login_fail_count"
LOGIN_FAIL_RATIO = "login_fail_ratio"
LOGIN_POST_FRAC = "login_post_frac"
LOGIN_PATH_FRAC = "login_path_frac"
# headers, agents and the WAF
NO_REFERER_FRAC = "no_referer_frac"
UA_DISTINCT = "ua_distinct"
FINGERPRINT_DISTINCT = "fingerprint_distinct"
TOOL_UA_HITS = "tool_ua_hits"
TOOL_UA = "tool_ua"
CRAWLER_UA_FRAC = "crawler_ua_frac"
CRAWLER_VERIFIED_FRAC = "crawler_verified_frac"
DECLARED_BOT_FRAC = "declared_bot_frac"  # UA declares a bot with a contact URL (AhrefsBot…)
ROBOTS_DISALLOWED_HITS = "robots_disallowed_hits"  # requests under the site's Disallow rules
BROWSER_UA_FRAC = "browser_ua_frac"
WAF_ACTED_FRAC = "waf_acted_frac"
# behaviour (engine/features/behaviour.py): how a client acts, for the anomaly model
ID_STEP_FRAC = "id_step_frac"  # share of requests walking a numeric id up by 1-3
GAP_REPEAT = "gap_repeat"  # inter-arrival gaps per distinct gap (100 ms): metronome > 10
TARGET_DISTINCT_FRAC = "target_distinct_frac"  # distinct path+query per request
QUERY_VARIANTS_PER_PATH = "query_variants_per_path"  # distinct path+query per distinct path
LOGIN_SUCCESS_COUNT = "login_success_count"  # successful login POSTs
SLOW_REQ_FRAC = "slow_req_frac"  # share of requests processed for 5 s or more
DURATION_MEAN_MS = "duration_mean_ms"  # mean processing time
BYTES_OUT_LOG2_STD = "bytes_out_log2_std"  # spread of response sizes (log2 bytes)

# Every column of a finalized FeatureFrame, no more, no less (a test holds the features
# stage to it).
ALL_FEATURES: tuple[str, ...] = (
    REQ_COUNT,
    PEAK_REQ_PER_MIN,
    ACTIVE_MINUTES_FRAC,
    REQ_PER_MIN,
    INTERARRIVAL_CV,
    INTERARRIVAL_MEAN_S,
    SPAN_S,
    BYTES_OUT_MEAN,
    ERR3XX_RATIO,
    ERR4XX_RATIO,
    ERR404_RATIO,
    ERR5XX_RATIO,
    AUTH_FAIL_RATIO,
    S404_COUNT,
    S4XX_COUNT,
    DISTINCT_PATHS,
    PATH_BREADTH,
    PATH_ENTROPY,
    TOP_BUCKET,
    TOP_BUCKET_SHARE,
    DEPTH_STD,
    ASSET_FRAC,
    ASSET_COUNT,
    HTML_TO_ASSET_RATIO,
    ROBOTS_TXT_HIT,
    QUERY_FRAC,
    PROBE_404_DISTINCT,
    SENSITIVE_PATH_HITS,
    SENSITIVE_REQ,
    INJECTION_HITS,
    HEALTH_FRAC,
    GET_FRAC,
    HEAD_FRAC,
    POST_FRAC,
    OTHER_METHOD_FRAC,
    LOGIN_POST_COUNT,
    LOGIN_FAIL_COUNT,
    LOGIN_FAIL_RATIO,
    LOGIN_POST_FRAC,
    LOGIN_PATH_FRAC,
    NO_REFERER_FRAC,
    UA_DISTINCT,
    FINGERPRINT_DISTINCT,
    TOOL_UA_HITS,
    TOOL_UA,
    CRAWLER_UA_FRAC,
    CRAWLER_VERIFIED_FRAC,
    DECLARED_BOT_FRAC,
    ROBOTS_DISALLOWED_HITS,
    BROWSER_UA_FRAC,
    WAF_ACTED_FRAC,
    ID_STEP_FRAC,
    GAP_REPEAT,
    TARGET_DISTINCT_FRAC,
    QUERY_VARIANTS_PER_PATH,
    LOGIN_SUCCESS_COUNT,
    SLOW_REQ_FRAC,
    DURATION_MEAN_MS,
    BYTES_OUT_LOG2_STD,
)

# Keys a verdict's ``features`` carries beside frame columns (campaign-level figures).
VERDICT_WINDOW_MIN = "window_min"
CAMPAIGN_MEMBERS = "members"
POPULATION_REQ_PER_MIN = "population_req_per_min"
BASELINE_REQ_PER_MIN = "baseline_req_per_min"
SITE_LOGIN_FAILS = "site_login_fails"
SITE_LOGIN_POSTS = "site_login_posts"
SITE_FAILURE_Z = "z"
VERDICT_KEYS: tuple[str, ...] = (
    VERDICT_WINDOW_MIN,
    CAMPAIGN_MEMBERS,
    POPULATION_REQ_PER_MIN,
    BASELINE_REQ_PER_MIN,
    SITE_LOGIN_FAILS,
    SITE_LOGIN_POSTS,
    SITE_FAILURE_Z,
)

_LOW32 = np.uint64(0xFFFFFFFF)


# --- records ---------------------------------------------------------------------------------
@dataclass
class FeatureFrame:
    """Features of every client active in one window ending at ``window_end_ms``.

    ``columns`` maps each name of ``ALL_FEATURES`` to a float64 array aligned with ``codes``
    (an empty frame has no columns). ``fingerprint_keys`` and ``path_keys`` are the sorted
    ``code << 32 | hash`` keys of the window's bottom-k fingerprint and path sets.
    """

    window_min: int
    window_end_ms: int
    codes: np.ndarray  # global client codes (int64), sorted
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    fingerprint_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    path_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def fingerprints(self) -> tuple[np.ndarray, np.ndarray]:
        """(row, fingerprint hash) pairs, sorted by row then hash (built on demand)."""
        return key_pairs(self.fingerprint_keys, self.codes)

    @property
    def paths(self) -> tuple[np.ndarray, np.ndarray]:
        """(row, path hash) pairs of each client's bottom-k path set (exact below k)."""
        return key_pairs(self.path_keys, self.codes)


@dataclass
class Snapshot:
    """All windows ending at one pane boundary, plus the client keys behind the codes."""

    window_end_ms: int
    frames: dict[int, FeatureFrame]
    clients: np.ndarray  # object array: client key of each global code


def key_pairs(keys: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``code << 32 | hash`` keys → distinct (frame row, hash) pairs."""
    if len(keys):
        keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
    rows = np.searchsorted(codes, (keys >> np.uint64(32)).astype(np.int64))
    return rows, (keys & _LOW32).astype(np.uint32)


# --- the model feature spec and its artifact -----------------------------------------------
SPEC_VERSION = 3
MODEL_WINDOW_MIN = 15
MODEL_ARTIFACT_NAME = "iforest"  # <directory>/iforest.joblib + iforest.json (the model card)
MODEL_ARTIFACT_FORMAT = "wafsmith-iforest/1"
SPEC_HASH_KEY = "feature_spec_hash"  # where a model card and its artifact record the spec
CARD_FITTED_AT = "fitted_at"  # model card key: ISO time of the fit
# (feature name, transform) in column order.
MODEL_FEATURES: tuple[tuple[str, str], ...] = (
    (REQ_COUNT, "log1p"),
    (PEAK_REQ_PER_MIN, "log1p"),
    (ACTIVE_MINUTES_FRAC, "raw"),
    (INTERARRIVAL_CV, "raw"),
    (BYTES_OUT_MEAN, "log1p"),
    (ERR4XX_RATIO, "raw"),
    (ERR404_RATIO, "raw"),
    (ERR5XX_RATIO, "raw"),
    (DISTINCT_PATHS, "log1p"),
    (PATH_BREADTH, "raw"),
    (PATH_ENTROPY, "raw"),
    (DEPTH_STD, "raw"),
    (HTML_TO_ASSET_RATIO, "log1p"),
    (ROBOTS_TXT_HIT, "raw"),
    (HEAD_FRAC, "raw"),
    (POST_FRAC, "raw"),
    (LOGIN_POST_COUNT, "log1p"),
    (LOGIN_FAIL_RATIO, "raw"),
    (NO_REFERER_FRAC, "raw"),
    (UA_DISTINCT, "log1p"),
    (FINGERPRINT_DISTINCT, "log1p"),
    (ID_STEP_FRAC, "raw"),
    (GAP_REPEAT, "log1p"),
    (TARGET_DISTINCT_FRAC, "raw"),
    (QUERY_VARIANTS_PER_PATH, "log1p"),
    (QUERY_FRAC, "raw"),
    (ASSET_FRAC, "raw"),
    (LOGIN_SUCCESS_COUNT, "log1p"),
    (SLOW_REQ_FRAC, "raw"),
    (DURATION_MEAN_MS, "log1p"),
    (BYTES_OUT_LOG2_STD, "raw"),
)
MODEL_FEATURE_NAMES: tuple[str, ...] = tuple(name for name, _ in MODEL_FEATURES)


def spec_document() -> dict:
    return {
        "version": SPEC_VERSION,
        "window_min": MODEL_WINDOW_MIN,
        "features": [list(f) for f in MODEL_FEATURES],
    }


SPEC_HASH = hashlib.sha256(json.dumps(spec_document(), sort_keys=True).encode()).hexdigest()[:16]


def model_matrix(frame: FeatureFrame) -> np.ndarray:
    """(clients, features) float64 matrix of ``frame`` in spec order and transforms."""
    if len(frame) == 0:
        return np.zeros((0, len(MODEL_FEATURES)))
    cols = []
    for name, transform in MODEL_FEATURES:
        x = np.asarray(frame.columns[name], dtype=np.float64)
        cols.append(np.log1p(np.maximum(x, 0.0)) if transform == "log1p" else x)
    return np.column_stack(cols)
