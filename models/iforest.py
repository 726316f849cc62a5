"""Isolation forest over the scaled client feature vector, scikit-learn style.

``ClientIsolationForest`` follows the estimator contract: ``__init__`` only stores keyword
hyperparameters, ``fit`` returns ``self``, learned state ends in ``_``. It scales features
robustly (median / IQR), fits ``sklearn.ensemble.IsolationForest``, and calibrates a 0..1
score on its training data: the training median maps to 0, the 99.9th percentile to 0.5.
``explain`` names the features that pushed a client's score up, as robust z-scores against
the training baseline. ``to_artifact`` returns plain objects (numpy arrays, the sklearn
forest) so the engine can load a model without importing this package.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import sklearn
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.ensemble import IsolationForest

from engine.schema.features import (
    CARD_FITTED_AT,
    MODEL_ARTIFACT_FORMAT,
    MODEL_FEATURE_NAMES,
    MODEL_FEATURES,
    MODEL_WINDOW_MIN,
    SPEC_HASH,
    SPEC_HASH_KEY,
)

_EPS = 1e-9
# The smallest step that counts as "outside the baseline's range", per transform: a tenth of a
# ratio, or a factor of e^0.5 ≈ 1.6 for a log1p count (a feature constant in training has
# no spread of its own to measure the step in).
NOVELTY_FLOOR = {"raw": 0.1, "log1p": 0.5}


class NotFittedError(RuntimeError):
    """The model was used before ``fit``."""


class ClientIsolationForest(OutlierMixin, BaseEstimator):
    """Per-client anomaly model; X has one column per entry of
    ``engine.schema.features.MODEL_FEATURES``."""

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        max_samples: int | str = "auto",
        contamination: float | str = "auto",
        random_state: int | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.contamination = contamination
        self.random_state = random_state

    # --- fitting -----------------------------------------------------------------------
    def fit(self, X, y=None) -> ClientIsolationForest:
        X = self._check(X, fitted=False)
        if X.shape[0] < 2:
            raise ValueError(f"need at least 2 baseline clients to fit, got {X.shape[0]}")
        self.n_features_in_ = X.shape[1]
        self.center_ = np.median(X, axis=0)
        q75, q25 = np.percentile(X, [75, 25], axis=0)
        self.scale_ = np.where(q75 - q25 > _EPS, q75 - q25, 1.0)
        Xs = (X - self.center_) / self.scale_
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            contamination=self.contamination,
            random_state=self.random_state,
            n_jobs=1,
        ).fit(Xs)
        self.offset_ = self.forest_.offset_
        raw = -self.forest_.score_samples(Xs)
        self.raw_median_ = float(np.median(raw))
        self.raw_q999_ = float(max(np.quantile(raw, 0.999), self.raw_median_ + 1e-3))
        self.baseline_median_ = np.median(Xs, axis=0)
        mad = np.median(np.abs(Xs - self.baseline_median_), axis=0) * 1.4826
        self.baseline_mad_ = np.where(mad > _EPS, mad, 1.0)
        # The novelty side: the baseline's range per feature and the step to measure leaving
        # it in. The forest cannot split on a feature that never varied in training, so a
        # client walking ids when no baseline client did is invisible to it; this is not.
        self.train_min_ = X.min(axis=0)
        self.train_max_ = X.max(axis=0)
        floor = np.array([NOVELTY_FLOOR[t] for _, t in MODEL_FEATURES])
        self.novelty_unit_ = np.maximum(q75 - q25, floor)
        self.feature_names_in_ = np.asarray(MODEL_FEATURE_NAMES, dtype=object)
        self.feature_spec_hash_ = SPEC_HASH
        self.n_samples_fit_ = X.shape[0]
        return self

    # --- scoring -----------------------------------------------------------------------
    def score_samples(self, X) -> np.ndarray:
        """sklearn convention: lower is more abnormal."""
        Xs = self._scaled(X)
        return self.forest_.score_samples(Xs)

    def decision_function(self, X) -> np.ndarray:
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        return np.where(self.decision_function(X) < 0, -1, 1)

    def score01(self, X) -> np.ndarray:
        """Normalized anomaly score: 0 at the training median, 0.5 at its 99.9th percentile."""
        raw = -self.score_samples(X)
        return _calibrate(raw, self.raw_median_, self.raw_q999_)

    def novelty(self, X) -> np.ndarray:
        """Per row and feature, steps (``novelty_unit_``) outside the training range (0 inside)."""
        self._fitted()
        X = self._check(X)
        above = (X - self.train_max_) / self.novelty_unit_
        below = (self.train_min_ - X) / self.novelty_unit_
        return np.maximum(np.maximum(above, below), 0.0)

    def anomaly_score01(self, X, novelty_steps: float = 2.5) -> np.ndarray:
        """What the engine's detector scores: the higher of ``score01`` and the novelty score
        (0.5 at ``novelty_steps`` steps outside the training range on some feature)."""
        worst = self.novelty(X).max(axis=1)
        ratio = np.maximum(worst / novelty_steps, _EPS)
        novel = np.where(worst > 0, np.clip(1.0 - 0.5 / ratio, 0.0, 1.0), 0.0)
        return np.maximum(self.score01(X), novel)

    def explain(self, X, top: int = 3) -> list[list[tuple[str, float]]]:
        """Per row, the ``top`` features furthest above the baseline, as robust z-scores."""
        z = (self._scaled(X) - self.baseline_median_) / self.baseline_mad_
        order = np.argsort(-np.abs(z), axis=1)[:, :top]
        names = MODEL_FEATURE_NAMES
        return [[(names[j], float(z[i, j])) for j in row] for i, row in enumerate(order)]

    # --- persistence -------------------------------------------------------------------
    def to_artifact(self) -> dict:
        self._fitted()
        return {
            "format": MODEL_ARTIFACT_FORMAT,
            SPEC_HASH_KEY: self.feature_spec_hash_,
            "features": list(MODEL_FEATURE_NAMES),
            "forest": self.forest_,
            "center": self.center_,
            "scale": self.scale_,
            "raw_median": self.raw_median_,
            "raw_q999": self.raw_q999_,
            "baseline_median": self.baseline_median_,
            "baseline_mad": self.baseline_mad_,
            "train_min": self.train_min_,
            "train_max": self.train_max_,
            "novelty_unit": self.novelty_unit_,
        }

    def card(
        self,
        *,
        fitted_at: datetime,
        training_start: datetime | None = None,
        training_end: datetime | None = None,
    ) -> dict:
        """The model card: what it was trained on, how, and against which feature spec."""
        self._fitted()
        return {
            "model": type(self).__name__,
            "format": MODEL_ARTIFACT_FORMAT,
            "features": list(MODEL_FEATURE_NAMES),
            "window_min": MODEL_WINDOW_MIN,
            SPEC_HASH_KEY: self.feature_spec_hash_,
            "training_window": {
                "start": _iso(training_start),
                "end": _iso(training_end),
                "clients": int(self.n_samples_fit_),
            },
            "contamination": self.contamination,
            "n_estimators": self.n_estimators,
            "max_samples": self.max_samples,
            "random_state": self.random_state,
            CARD_FITTED_AT: _iso(fitted_at),
            "sklearn_version": sklearn.__version__,
        }

    # --- helpers -----------------------------------------------------------------------
    def _fitted(self) -> None:
        if not hasattr(self, "forest_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit first")

    def _check(self, X, fitted: bool = True) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (clients × features), got shape {X.shape}")
        expected = self.n_features_in_ if fitted else len(MODEL_FEATURE_NAMES)
        if X.shape[1] != expected:
            raise ValueError(
                f"X has {X.shape[1]} features; this model expects {expected} "
                f"(feature spec {SPEC_HASH})"
            )
        if not np.isfinite(X).all():
            raise ValueError("X contains NaN or infinite values")
        return X

    def _scaled(self, X) -> np.ndarray:
        self._fitted()
        return (self._check(X) - self.center_) / self.scale_


def _calibrate(raw: np.ndarray, median: float, q999: float) -> np.ndarray:
    return np.clip(0.5 * (raw - median) / max(q999 - median, _EPS), 0.0, 1.0)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).isoformat().replace("+00:00", "Z")
