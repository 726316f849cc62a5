"""Persisted model artifacts: ``<name>.joblib`` (plain objects) + ``<name>.json`` (model card).

Both files are written to temporary names and moved into place, so a reader never sees a
half-written model. The default directory is ``var/models/`` (git-ignored).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import joblib

from engine.schema.features import MODEL_ARTIFACT_NAME, SPEC_HASH, SPEC_HASH_KEY
from models.iforest import ClientIsolationForest

DEFAULT_DIR = Path("var/models")
DEFAULT_NAME = MODEL_ARTIFACT_NAME


class ArtifactError(ValueError):
    """A model artifact that cannot be used (missing, unreadable, other feature spec)."""


def save(
    model: ClientIsolationForest,
    directory: Path = DEFAULT_DIR,
    *,
    fitted_at: datetime,
    training_start: datetime | None = None,
    training_end: datetime | None = None,
    name: str = DEFAULT_NAME,
) -> Path:
    """Write artifact and card; returns the ``.joblib`` path the engine's loader takes."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.joblib"
    card_path = path.with_suffix(".json")
    card = model.card(fitted_at=fitted_at, training_start=training_start, training_end=training_end)
    tmp_model, tmp_card = path.with_suffix(".joblib.tmp"), card_path.with_suffix(".json.tmp")
    joblib.dump(model.to_artifact(), tmp_model)
    tmp_card.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp_card, card_path)
    os.replace(tmp_model, path)
    return path


def load_card(path: Path) -> dict:
    card_path = Path(path).with_suffix(".json")
    try:
        return json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot read model card {card_path}: {exc}") from None


def check_spec(card: dict, expected: str = SPEC_HASH) -> None:
    got = card.get(SPEC_HASH_KEY)
    if got != expected:
        raise ArtifactError(
            f"model was trained on feature spec {got!r}, this engine builds {expected!r}; "
            "refit the model"
        )
