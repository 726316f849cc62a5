"""The isolation forest as plain arrays: how the engine scores it, and the shipped file form.

``FlatForest`` holds every fitted tree's nodes in one set of arrays (feature, threshold,
children, the path length a leaf stands for), so scoring walks all trees at once with a few
numpy gathers per level instead of one call per tree. It is built from a fitted
``sklearn.ensemble.IsolationForest`` by attribute access only (the engine never imports
scikit-learn) and written as a ``.npz`` of those arrays beside a ``.json`` card:

- safe: read with ``allow_pickle=False`` (no code runs when a model is loaded);
- dependency-stable: scoring needs numpy only, whatever scikit-learn trained it;
- versioned: the card names ``PORTABLE_FORMAT``, the feature-spec hash and a SHA-256 of the
  arrays' content; ``load_portable`` refuses any mismatch with a message saying which.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.core.errors import ConfigError
from engine.schema.features import MODEL_FEATURE_NAMES, SPEC_HASH, SPEC_HASH_KEY

PORTABLE_FORMAT = "wafsmith-iforest-npz/1"
CONTENT_HASH_KEY = "content_sha256"
# The arrays of a model besides its trees (model-matrix units; see ``LoadedModel``).
MODEL_ARRAYS = ("center", "scale", "baseline_median", "baseline_mad", "train_min", "train_max",
                "novelty_unit")  # fmt: skip
TREE_ARRAYS = ("feature", "threshold", "left", "right", "leaf_path", "roots")


class PortableModelError(ConfigError):
    """A shipped model file that cannot be used: other format, feature spec or content."""


def average_path_length(n: float | np.ndarray) -> np.ndarray:
    """c(n): the mean path length of an unsuccessful BST search among n points."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


@dataclass(frozen=True)
class FlatForest:
    """All trees' nodes, concatenated. A leaf points at itself (threshold +inf), so every
    row walks ``depth`` levels and stays on its leaf once there."""

    feature: np.ndarray  # int32, column of the model matrix each node splits on
    threshold: np.ndarray  # float64; go left when x <= threshold (as scikit-learn does)
    left: np.ndarray  # int64, global node ids
    right: np.ndarray
    leaf_path: np.ndarray  # float64: edges from the root + c(samples left in the leaf)
    roots: np.ndarray  # int64, each tree's root node
    depth: int  # the deepest leaf's level
    norm: float  # c(max_samples): the path length that maps to a score of 0.5

    @classmethod
    def from_sklearn(cls, forest) -> FlatForest:
        """From a fitted ``IsolationForest`` (its ``estimators_`` and feature subsets)."""
        feats, thrs, lefts, rights, paths, roots = [], [], [], [], [], []
        offset, deepest = 0, 0
        for est, subset in zip(forest.estimators_, forest.estimators_features_, strict=True):
            t = est.tree_
            n = t.node_count
            level = np.zeros(n)
            for node in range(n):  # parents precede children in scikit-learn's node order
                for child in (t.children_left[node], t.children_right[node]):
                    if child != -1:
                        level[child] = level[node] + 1
            leaf = t.children_left == -1
            ids = np.arange(n) + offset
            feats.append(np.where(leaf, 0, np.asarray(subset)[np.maximum(t.feature, 0)]))
            thrs.append(np.where(leaf, np.inf, t.threshold))
            lefts.append(np.where(leaf, ids, t.children_left + offset))
            rights.append(np.where(leaf, ids, t.children_right + offset))
            paths.append(level + average_path_length(t.n_node_samples))
            roots.append(offset)
            deepest = max(deepest, int(level.max()))
            offset += n
        return cls(
            np.concatenate(feats).astype(np.int32),
            np.concatenate(thrs).astype(np.float64),
            np.concatenate(lefts).astype(np.int64),
            np.concatenate(rights).astype(np.int64),
            np.concatenate(paths),
            np.asarray(roots, dtype=np.int64),
            deepest,
            float(average_path_length(forest.max_samples_)),
        )

    def raw_scores(self, Xs: np.ndarray) -> np.ndarray:
        """The isolation forest's anomaly score 2^(−E[h(x)]/c(ψ)) of scaled rows (equal to
        scikit-learn's ``-score_samples``; rows compared in float32, as its trees do)."""
        x = np.asarray(Xs, dtype=np.float32)
        node = np.broadcast_to(self.roots, (len(x), len(self.roots))).copy()
        rows = np.arange(len(x))[:, None]
        for _ in range(self.depth):
            go_left = x[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(go_left, self.left[node], self.right[node])
        mean_path = self.leaf_path[node].mean(axis=1) if len(x) else np.zeros(0)
        return 2.0 ** (-mean_path / self.norm)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "feature": self.feature, "threshold": self.threshold, "left": self.left,
            "right": self.right, "leaf_path": self.leaf_path, "roots": self.roots,
            "depth_norm": np.array([self.depth, self.norm], dtype=np.float64),
        }  # fmt: skip

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> FlatForest:
        depth, norm = a["depth_norm"]
        return cls(
            a["feature"].astype(np.int32), a["threshold"], a["left"].astype(np.int64),
            a["right"].astype(np.int64), a["leaf_path"], a["roots"].astype(np.int64),
            int(depth), float(norm),
        )  # fmt: skip


def content_hash(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, in name order (the file's own
    bytes carry zip timestamps; this is the same for the same model)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_portable(path: Path, arrays: dict[str, np.ndarray], card: dict) -> Path:
    """Write ``<path>.npz`` and ``<path>.json``; the card gains format, spec and content hash."""
    path = Path(path).with_suffix(".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    card = {
        **card,
        "format": PORTABLE_FORMAT,
        SPEC_HASH_KEY: SPEC_HASH,
        "features": list(MODEL_FEATURE_NAMES),
        CONTENT_HASH_KEY: content_hash(arrays),
    }
    np.savez_compressed(path, **arrays)
    path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return path


def load_portable(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, card) of a shipped model; refuses another format, another feature spec, or
    arrays whose content hash differs from the card's (a damaged or edited file)."""
    path = Path(path)
    card_path = path.with_suffix(".json")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PortableModelError(f"cannot read model card {card_path}: {exc}") from None
    if card.get("format") != PORTABLE_FORMAT:
        raise PortableModelError(
            f"{path}: model format {card.get('format')!r}, this engine reads {PORTABLE_FORMAT!r}"
        )
    if card.get(SPEC_HASH_KEY) != SPEC_HASH or card.get("features") != list(MODEL_FEATURE_NAMES):
        raise PortableModelError(
            f"{path}: model trained on feature spec {card.get(SPEC_HASH_KEY)!r}, this engine "
            f"builds {SPEC_HASH!r}; refusing it (retrain: python -m benchmarks.train_starter_model)"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise PortableModelError(f"cannot read model arrays {path}: {exc}") from None
    got = content_hash(arrays)
    if got != card.get(CONTENT_HASH_KEY):
        raise PortableModelError(
            f"{path}: arrays hash {got[:16]}…, the card says "
            f"{str(card.get(CONTENT_HASH_KEY))[:16]}…; the file is damaged or was "
            "changed after training"
        )
    needed = (*MODEL_ARRAYS, *TREE_ARRAYS, "depth_norm", "calibration")
    missing = [k for k in needed if k not in arrays]
    if missing:
        raise PortableModelError(f"{path}: missing arrays {missing}")
    return arrays, card
