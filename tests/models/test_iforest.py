"""The isolation-forest model: estimator contract, persistence, spec-hash refusal, baseline."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest
from sklearn.base import clone

from engine.core.clock import FakeClock
from engine.detectors import ModelSpecError, load_artifact
from engine.schema import features as F
from engine.schema.features import MODEL_FEATURE_NAMES, SPEC_HASH
from models import artifacts
from models.baseline import RollingBaseline
from models.iforest import ClientIsolationForest, NotFittedError

D = len(MODEL_FEATURE_NAMES)
T = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def benign(n=800, seed=0):
    rng = np.random.default_rng(seed)
    return np.abs(rng.normal(1.0, 0.3, size=(n, D)))


def outlier():
    """A scanner-like client: far out on several features at once."""
    x = benign(1, seed=7)[0].copy()
    for name, value in (
        (F.DISTINCT_PATHS, 8.0),
        (F.PATH_BREADTH, 4.0),
        (F.ERR4XX_RATIO, 4.0),
        (F.ERR404_RATIO, 4.0),
        (F.REQ_COUNT, 6.0),
        (F.PATH_ENTROPY, 4.0),
    ):
        x[MODEL_FEATURE_NAMES.index(name)] = value
    return x[None, :]


def test_follows_the_estimator_contract():
    est = ClientIsolationForest(n_estimators=50, random_state=0)
    assert est.get_params() == {
        "n_estimators": 50,
        "max_samples": "auto",
        "contamination": "auto",
        "random_state": 0,
    }
    assert not [k for k in vars(est) if k.endswith("_")]  # nothing learned in __init__
    assert est.fit(benign()) is est
    learned = [k for k in vars(est) if k.endswith("_")]
    assert {"forest_", "center_", "scale_", "feature_spec_hash_", "n_features_in_"} <= set(learned)
    twin = clone(est).set_params(n_estimators=20)
    assert twin.n_estimators == 20 and not hasattr(twin, "forest_")
    assert set(np.unique(est.predict(benign(50, 1)))) <= {-1, 1}


def test_outliers_score_high_and_are_explained_by_the_features_that_moved():
    est = ClientIsolationForest(random_state=0).fit(benign())
    normal = est.score01(benign(200, 2))
    weird = est.score01(outlier())
    assert np.median(normal) < 0.1 and weird[0] > np.quantile(normal, 0.99)
    # with the novelty side (what the detector scores): past the training 99.9th percentile
    assert est.anomaly_score01(outlier())[0] > 0.5
    assert np.quantile(est.anomaly_score01(benign(200, 2)), 0.99) < 0.5
    assert est.score_samples(outlier())[0] < np.median(est.score_samples(benign(200, 2)))
    names = [name for name, _ in est.explain(outlier())[0]]
    assert F.DISTINCT_PATHS in names


def test_refuses_use_before_fit_and_wrong_shapes():
    with pytest.raises(NotFittedError):
        ClientIsolationForest().score01(benign(3))
    est = ClientIsolationForest(random_state=0).fit(benign())
    with pytest.raises(ValueError, match="features"):
        est.score01(np.zeros((2, D - 1)))
    with pytest.raises(ValueError, match="NaN"):
        est.fit(np.full((5, D), np.nan))


def test_persistence_round_trip_through_the_engine_loader(tmp_path):
    est = ClientIsolationForest(random_state=0).fit(benign())
    path = artifacts.save(est, tmp_path, fitted_at=T, training_start=T, training_end=T)
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["feature_spec_hash"] == SPEC_HASH and card["features"] == list(MODEL_FEATURE_NAMES)
    assert card["fitted_at"] == "2026-03-02T10:00:00Z" and card["training_window"]["clients"] == 800
    loaded = load_artifact(path)
    X = np.vstack([benign(20, 5), outlier()])
    np.testing.assert_allclose(loaded.score01(X), est.score01(X))


def test_loader_refuses_an_artifact_built_for_another_feature_spec(tmp_path):
    est = ClientIsolationForest(random_state=0).fit(benign())
    path = artifacts.save(est, tmp_path, fitted_at=T)
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["feature_spec_hash"] = "0123456789abcdef"
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelSpecError, match="refusing"):
        load_artifact(path)
    with pytest.raises(artifacts.ArtifactError):
        artifacts.check_spec(card)


def test_rolling_baseline_excludes_hostile_clients_and_refits_on_schedule(tmp_path):
    clock = FakeClock(T)
    base = RollingBaseline(
        capacity=500,
        min_rows=100,
        refit_every_s=600,
        directory=tmp_path,
        clock=clock,
        random_state=0,
    )
    X = benign(120)
    hostile = np.zeros(120, dtype=bool)
    hostile[:20] = True
    X[:20] = 50.0  # hostile rows are extreme; they must not shape the baseline
    base.observe(X, hostile, T)
    assert base.size == 100
    assert base.maybe_refit() is not None
    assert base.maybe_refit() is None  # not due yet
    clock.advance(601)
    base.observe(benign(50, 9), np.zeros(50, dtype=bool), T)
    assert base.maybe_refit() is not None
    loaded = load_artifact(base.path)
    assert loaded.score01(np.full((1, D), 50.0))[0] > 0.8
    assert loaded.card["training_window"]["clients"] == 150
