"""The isolation-forest detector and its artifact loader.

``load_artifact`` reads a persisted model (``.joblib`` of plain objects + ``.json`` card)
by path and refuses one whose feature-spec hash differs from ``engine.schema.features``. The
detector scores clients with enough requests in the model window, reloads the artifact when
the file is replaced by a refit, and explains each verdict by the features furthest above
the training baseline (robust z-scores), with their values.
"""

from __future__ import annotations

import importlib.resources
import json
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np

from engine.core.errors import ConfigError
from engine.detectors.base import DETECTORS, DetectionContext, fmt, saturating
from engine.detectors.config import DetectionConfig
from engine.detectors.portable import MODEL_ARRAYS, FlatForest, load_portable
from engine.schema import features as F
from engine.schema.features import (
    MODEL_ARTIFACT_FORMAT,
    MODEL_FEATURE_NAMES,
    MODEL_FEATURES,
    MODEL_WINDOW_MIN,
    SPEC_HASH,
    SPEC_HASH_KEY,
    model_matrix,
)
from engine.schema.verdict import ClientVerdict


class ModelSpecError(ConfigError):
    """The artifact was built for another feature spec (or is not a wafsmith model)."""


STARTER = "starter model"


@dataclass(frozen=True)
class LoadedModel:
    trees: FlatForest
    center: np.ndarray
    scale: np.ndarray
    raw_median: float
    raw_q999: float
    baseline_median: np.ndarray
    baseline_mad: np.ndarray
    card: dict
    train_min: np.ndarray | None = None  # the baseline's range (model-matrix units) and the
    train_max: np.ndarray | None = None  # step that counts as leaving it; None: an artifact
    novelty_unit: np.ndarray | None = None  # from before the novelty side existed

    def raw_scores(self, X: np.ndarray) -> np.ndarray:
        """The isolation forest's anomaly score 2^(−E[h(x)]/c(ψ)) (sklearn's
        ``-score_samples``), walking every tree at once on flat arrays (``portable.py``)."""
        return self.trees.raw_scores(self._scaled(X))

    def score01(self, X: np.ndarray) -> np.ndarray:
        raw = self.raw_scores(X)
        return np.clip(
            0.5 * (raw - self.raw_median) / max(self.raw_q999 - self.raw_median, 1e-9), 0.0, 1.0
        )

    def novelty(self, X: np.ndarray) -> np.ndarray:
        """Per client and feature, how many steps outside the baseline's range it lies
        (0 inside): what the forest cannot see on features constant in training."""
        if self.train_min is None:
            return np.zeros_like(X)
        above = (X - self.train_max) / self.novelty_unit
        below = (self.train_min - X) / self.novelty_unit
        return np.maximum(np.maximum(above, below), 0.0)

    def combined(self, X: np.ndarray, novelty_steps: float):
        """(score, forest score, novelty steps per feature): the higher of the forest's score
        and the novelty score (0.5 at ``novelty_steps`` steps outside the range)."""
        forest = self.score01(X)
        steps = self.novelty(X)
        worst = steps.max(axis=1) if steps.size else np.zeros(len(X))
        novel = np.where(worst > 0, saturating(worst, novelty_steps), 0.0)
        return np.maximum(forest, novel), forest, steps

    def zscores(self, X: np.ndarray) -> np.ndarray:
        return (self._scaled(X) - self.baseline_median) / self.baseline_mad

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        return (X - self.center) / self.scale

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything the model scores with, as plain arrays (``portable.save_portable``)."""
        if self.train_min is None:
            raise ModelSpecError("a model without its baseline range cannot be shipped")
        return {
            **self.trees.arrays(),
            **{k: np.asarray(getattr(self, k), dtype=np.float64) for k in MODEL_ARRAYS},
            "calibration": np.array([self.raw_median, self.raw_q999], dtype=np.float64),
        }


def load_starter(ref: str) -> LoadedModel:
    """The shipped starter model, named ``package:resource`` (``models:starter/iforest-
    starter.npz``, found with importlib.resources so it is read from the installed wheel) or
    as a file path."""
    package, sep, resource = ref.partition(":")
    if sep and "/" not in package:
        path = Path(str(importlib.resources.files(package).joinpath(resource)))
    else:
        path = Path(ref)
    arrays, card = load_portable(path)
    median, q999 = arrays["calibration"]
    return LoadedModel(
        FlatForest.from_arrays(arrays),
        *(arrays[k] for k in ("center", "scale")),
        float(median),
        float(q999),
        arrays["baseline_median"],
        arrays["baseline_mad"],
        card,
        *(arrays[k] for k in ("train_min", "train_max", "novelty_unit")),
    )


def load_artifact(path: str | Path) -> LoadedModel:
    """Load a model artifact; refuse a missing card, another format or another feature spec."""
    path = Path(path)
    card_path = path.with_suffix(".json")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read model card {card_path}: {exc}") from None
    if card.get(SPEC_HASH_KEY) != SPEC_HASH:
        raise ModelSpecError(
            f"{path}: model trained on feature spec {card.get(SPEC_HASH_KEY)!r}, this "
            f"engine builds {SPEC_HASH!r}; refusing it (refit the model)"
        )
    try:
        art = joblib.load(path)
    except Exception as exc:  # unreadable pickle of any kind: name the file, keep the cause
        raise ConfigError(f"cannot load model artifact {path}: {exc}") from exc
    if not isinstance(art, dict) or art.get("format") != MODEL_ARTIFACT_FORMAT:
        raise ModelSpecError(f"{path} is not a {MODEL_ARTIFACT_FORMAT} artifact")
    return model_from_artifact(art, card, source=str(path))


def model_from_artifact(art: dict, card: dict, *, source: str = "artifact") -> LoadedModel:
    """A ``LoadedModel`` from the plain objects of ``ClientIsolationForest.to_artifact`` (a
    file's content or a model fitted in this process); refuses another feature spec."""
    if art.get(SPEC_HASH_KEY) != SPEC_HASH or list(art["features"]) != list(MODEL_FEATURE_NAMES):
        raise ModelSpecError(f"{source}: artifact feature spec differs from {SPEC_HASH!r}")
    return LoadedModel(
        FlatForest.from_sklearn(art["forest"]),
        art["center"],
        art["scale"],
        float(art["raw_median"]),
        float(art["raw_q999"]),
        art["baseline_median"],
        art["baseline_mad"],
        card,
        art.get("train_min"),
        art.get("train_max"),
        art.get("novelty_unit"),
    )


def plain_value(j: int, x: float) -> float:
    """Feature ``j`` of a model matrix back in its own units (undo the spec's transform)."""
    return float(np.expm1(x)) if MODEL_FEATURES[j][1] == "log1p" else float(x)


@DETECTORS.register("anomaly")
class AnomalyDetector:
    """Scores clients with the isolation forest once a model exists.

    The model comes from ``model_path`` (a persisted artifact, reloaded when a refit replaces
    it) or, without one, from the composition root through ``use`` (a model bootstrapped
    from the stream's own benign-looking clients). Until then it runs and finds nothing;
    ``state`` says which (for the analysis stats and the status).
    """

    name = "anomaly"

    def __init__(self, cfg: DetectionConfig) -> None:
        self.c = cfg.anomaly
        self.own: LoadedModel | None = None  # the stream's: bootstrapped, or the artifact
        self.own_source: str | None = None  # "stream bootstrap" or "artifact"
        self.starter: LoadedModel | None = None  # the shipped one, until retired
        self.retired: str | None = None  # why the starter model stopped scoring, if it did
        self.models_used = 0
        self.drift: dict | None = None  # the latest window against the training window
        self._mtime: float | None = None
        if self.c.window_min != MODEL_WINDOW_MIN:
            raise ConfigError(f"anomaly.window_min must be the spec's {MODEL_WINDOW_MIN}")
        if self.c.enabled and self.c.starter_model:
            self.starter = load_starter(self.c.starter_model)
        if self.c.enabled and self.c.model_path is not None:
            self._reload()

    @property
    def model(self) -> LoadedModel | None:
        """The model that leads: the stream's own once it exists, else the starter."""
        return self.own if self.own is not None else self.starter

    @property
    def source(self) -> str | None:
        return self.own_source if self.own is not None else (STARTER if self.starter else None)

    @property
    def state(self) -> str:
        if self.model is not None:
            return "scoring"
        return "waiting for a model" if self.c.model_path is not None else "bootstrapping"

    def use(self, model: LoadedModel, source: str = "stream bootstrap") -> None:
        """Score with ``model`` from now on (a fit made in this process, or a reloaded
        artifact). The starter keeps scoring beside it (a client either finds odd is
        judged; the higher score explains it) unless it was retired."""
        self.own, self.own_source = model, source
        self.models_used += 1

    def _reload(self) -> None:
        path = Path(self.c.model_path)
        try:
            mtime = path.stat().st_mtime
        except OSError:
            # Off until a first fit writes the artifact; while a refit replaces the file, keep
            # scoring with the model already loaded.
            return
        if mtime != self._mtime:
            self.use(load_artifact(path), "artifact")
            self._mtime = mtime

    def detect(self, ctx: DetectionContext) -> list[ClientVerdict]:
        if self.c.enabled and self.c.model_path is not None:
            self._reload()
        if self.model is None:
            return []
        fr = ctx.frame(self.c.window_min)
        if not len(fr):
            return []
        rows = np.flatnonzero(scorable(fr, ctx, self.c.min_requests) & ctx.fresh(fr))
        # Score only clients seen in the newest pane: the others' windows only lost old
        # requests since they were last scored (keeps scoring a small share of the pipeline).
        newest = ctx.frame(1).codes if 1 in ctx.snapshot.frames else fr.codes
        rows = rows[np.isin(fr.codes[rows], newest, assume_unique=True)]
        if not len(rows):
            return []
        X = model_matrix(fr)[rows]
        best: dict[int, ClientVerdict] = {}
        for model, source in ((self.own, self.own_source), (self.starter, STARTER)):
            if model is None:
                continue
            for i, v in self._judge(model, source, ctx, fr, rows, X).items():
                if i not in best or v.score > best[i].score:
                    best[i] = v
        return [best[i] for i in sorted(best)]

    def _judge(self, m: LoadedModel, source, ctx, fr, rows, X) -> dict[int, ClientVerdict]:
        """Verdicts of one model on the scored rows, each explained by its top features."""
        scores, forest, steps = m.combined(X, self.c.novelty_steps)
        if m is self.model:
            self.drift = drift(m, X, steps, ctx.window_end.isoformat())
        hot = np.flatnonzero(scores >= self.c.min_score)
        if source == STARTER and len(hot) >= 10 and len(hot) > self.c.starter_max_share * len(rows):
            # Not this site's model: it finds a large share of its clients odd. Stop using it
            # (and let those clients train the stream's own baseline) rather than challenge them.
            self.retired = (f"starter model retired at {ctx.window_end.isoformat()}: it flagged "
                            f"{len(hot)} of {len(rows)} clients scored")
            self.starter = None
            return {}
        if not len(hot):
            return {}
        z = m.zscores(X[hot])
        f, center = fr.columns, m.center
        out = {}
        for k, i in enumerate(hot):
            # the features furthest outside the baseline's range first, then by robust z
            order = np.lexsort((-np.abs(z[k]), -steps[i]))
            top = order[: self.c.explain_top]
            reasons = [
                f"anomaly score {scores[i]:.2f} (threshold {self.c.min_score:.2f}; isolation "
                f"forest {forest[i]:.2f}, {steps[i].max():.1f} steps outside the baseline "
                f"range; {source})"
            ]
            for j in top:
                name = MODEL_FEATURE_NAMES[j]
                where = f"a baseline median of {_num(plain_value(j, center[j]))}"
                if steps[i, j] > 0:
                    where += (f", range {_num(plain_value(j, m.train_min[j]))}–"
                              f"{_num(plain_value(j, m.train_max[j]))}")
                reasons.append(f"{name} = {_num(f[name][rows[i]])} against {where} "
                               f"({z[k, j]:+.1f} robust z against the baseline)")
            out[int(i)] = ctx.verdict(
                fr,
                int(rows[i]),
                detector=self.name,
                kind="anomaly",
                score=float(scores[i]),
                reasons=reasons,
                keys=tuple(MODEL_FEATURE_NAMES[j] for j in top),
            )
        return out


def drift(model: LoadedModel, X: np.ndarray, steps: np.ndarray, at: str) -> dict:
    """How far the clients scored now sit from the training window: the share outside its
    range on some feature, and the median feature's shift of the median, in the feature's
    interquartile ranges (0 = the same population; 1 = shifted by a whole IQR)."""
    shift = np.abs(np.median(X, axis=0) - model.center) / model.scale
    return {
        "window_end": at,
        "clients": len(X),
        "outside_range_share": round(float((steps.max(axis=1) > 0).mean()), 4),
        "median_shift_iqr": round(float(np.median(shift)), 4),
        "most_shifted": MODEL_FEATURE_NAMES[int(np.argmax(shift))],
    }


def _num(x: float) -> str:
    return fmt(round(float(x), 2))


def scorable(fr, ctx: DetectionContext, min_requests: float) -> np.ndarray:
    """Clients the model judges — and the only ones it learns from: enough requests in the
    window, and none of the known false-positive populations (allowlist, verified crawlers,
    health checkers, API pollers, NAT gateways, declared crawlers: an unverified one is the
    attack-tools detector's)."""
    return (
        (fr.columns[F.REQ_COUNT] >= min_requests)
        & ~ctx.safe(fr)
        & ~ctx.gate("nat_gateway", fr)
        & (fr.columns[F.CRAWLER_UA_FRAC] < ctx.cfg.gates.crawler_min_verified_frac)
    )
