"""The shipped starter model: a safe, versioned file the engine scores with until the stream
has a model of its own, refused with a clear error when it does not match."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.core.errors import ConfigError
from engine.detectors.anomaly import load_starter, model_from_artifact
from engine.detectors.portable import (
    PortableModelError,
    content_hash,
    load_portable,
    save_portable,
)
from engine.pipeline import AnalysisConfig, Analyzer
from engine.schema.features import MODEL_FEATURE_NAMES, SPEC_HASH
from models.iforest import ClientIsolationForest

D = len(MODEL_FEATURE_NAMES)
T = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
STARTER = "models:starter/iforest-starter.npz"


def fitted(seed: int = 0) -> ClientIsolationForest:
    rng = np.random.default_rng(seed)
    return ClientIsolationForest(n_estimators=40, random_state=seed).fit(
        np.abs(rng.normal(1.0, 0.3, size=(600, D)))
    )


def shipped(est: ClientIsolationForest, path):
    loaded = model_from_artifact(est.to_artifact(), est.card(fitted_at=T))
    return save_portable(path, loaded.arrays(), est.card(fitted_at=T))


FOREST = fitted()
FLAT = model_from_artifact(FOREST.to_artifact(), FOREST.card(fitted_at=T))


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, (7, D), elements=st.floats(-1e3, 1e3, allow_nan=False, width=32)))
def test_the_flat_forest_scores_exactly_as_scikit_learn(X):
    np.testing.assert_allclose(FLAT.raw_scores(X), -FOREST.score_samples(X), rtol=1e-12)


def test_the_shipped_starter_loads_from_the_package_with_its_card():
    model = load_starter(STARTER)
    card = model.card
    assert card["feature_spec_hash"] == SPEC_HASH and card["features"] == list(MODEL_FEATURE_NAMES)
    data = card["training_data"]
    assert data["seeds"] == [1, 2, 3] and data["labels"].startswith("ground truth")
    assert set(data["logs"]) == {"alb", "waf", "cloudfront"}
    assert card["contamination"] == "auto" and card["fitted_at"] and card["sklearn_version"]
    assert card["heldout"]["seeds"] == [101, 102, 103]
    assert card["training_window"]["clients"] > 1000
    # A typical baseline client is not anomalous to it; one far outside every range is.
    center = model.center[None, :]
    assert model.combined(center, 2.5)[0][0] < 0.5
    assert model.combined(center + 50.0, 2.5)[0][0] > 0.9


def test_a_round_trip_scores_the_same_and_is_content_addressed(tmp_path):
    path = shipped(FOREST, tmp_path / "m")
    again = load_starter(str(path))
    X = np.abs(np.random.default_rng(3).normal(1.0, 0.6, size=(50, D)))
    np.testing.assert_allclose(again.combined(X, 2.5)[0], FLAT.combined(X, 2.5)[0])
    # same seed, same data: the same arrays, whatever the file's zip timestamps
    other = shipped(fitted(), tmp_path / "n")
    assert json.loads(path.with_suffix(".json").read_text())["content_sha256"] == json.loads(
        other.with_suffix(".json").read_text()
    )["content_sha256"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.update(feature_spec_hash="0123456789abcdef"), "feature spec"),
        (lambda c: c.update(format="wafsmith-iforest-npz/0"), "model format"),
        (lambda c: c.update(content_sha256="0" * 64), "damaged or was changed"),
    ],
)
def test_a_model_that_does_not_match_is_refused_with_a_clear_error(tmp_path, edit, message):
    path = shipped(FOREST, tmp_path / "m")
    card = json.loads(path.with_suffix(".json").read_text())
    edit(card)
    path.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(PortableModelError, match=message):
        load_portable(path)
    with pytest.raises(ConfigError, match=message):  # and the detector will not start with it
        Analyzer(AnalysisConfig.model_validate({"anomaly": {"starter_model": str(path)}}))


def test_changed_arrays_and_pickled_objects_are_refused(tmp_path):
    path = shipped(FOREST, tmp_path / "m")
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    data["threshold"] = data["threshold"] + 1.0
    np.savez(path, **data)
    with pytest.raises(PortableModelError, match="damaged"):
        load_portable(path)
    data["leaf_path"] = np.array([object()], dtype=object)  # would need pickle to read
    np.savez(path, **data)
    with pytest.raises(PortableModelError, match="cannot read model arrays"):
        load_portable(path)


def test_the_content_hash_sees_names_shapes_and_values():
    a = {"x": np.arange(4.0)}
    assert content_hash(a) == content_hash({"x": np.arange(4.0)})
    assert content_hash(a) != content_hash({"y": np.arange(4.0)})
    assert content_hash(a) != content_hash({"x": np.arange(4.0).reshape(2, 2)})
    assert content_hash(a) != content_hash({"x": np.arange(1.0, 5.0)})


def test_analysis_scores_with_the_starter_until_its_own_model_exists():
    res = Analyzer().result()  # nothing seen yet: no baseline of its own
    assert res.stats["anomaly"]["state"] == "scoring"
    assert res.stats["anomaly"]["source"] == "starter model"
    assert res.stats["anomaly"]["starter_model"] == STARTER
    off = Analyzer(AnalysisConfig.model_validate({"anomaly": {"starter_model": ""}})).result()
    assert off.stats["anomaly"]["state"] == "bootstrapping"
    assert off.stats["anomaly"]["source"] is None


def test_a_missing_starter_file_is_a_configuration_error(tmp_path):
    gone = tmp_path / "nowhere.npz"
    with pytest.raises(ConfigError, match="cannot read model card"):
        Analyzer(AnalysisConfig.model_validate({"anomaly": {"starter_model": str(gone)}}))


def test_a_starter_that_finds_much_of_the_site_odd_is_retired():
    from tests.support.traffic import BROWSER_UAS, Traffic

    tr = Traffic(5)  # a site unlike the simulator's: every client posts to deep paths, 5xx
    for c in range(40):
        for i in range(60):
            tr.add(f"198.51.100.{c + 1}", 10 * i + c, f"/a/b/c/d/{i}/x", method="POST",
                   status=500 if i % 3 == 0 else 200, ua=BROWSER_UAS[c % 40])
    analyzer = Analyzer()
    analyzer.feed(tr.table())
    analyzer.finish()
    res = analyzer.result()
    status = res.stats["anomaly"]
    assert status["starter_retired"] and "starter model retired" in status["starter_retired"]
    assert status["source"] != "starter model"
    assert not [v for v in res.verdicts if v.detector == "anomaly"]
