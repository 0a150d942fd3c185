"""Tests of the crater candidate classifier: its tree evaluation against scikit-learn, its file format
and the shipped model's provenance."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from kizuna.errors import InputError
from kizuna.lunar.nav.detect import DetectorSpec, detect_craters
from kizuna.lunar.nav.detect_model import (
    FEATURES,
    CandidateModel,
    candidate_features,
    default_model,
    from_sklearn,
)


def _fitted(seed: int = 0) -> tuple[GradientBoostingClassifier, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((600, len(FEATURES)))
    y = (X[:, 0] + 0.5 * X[:, 4] ** 2 - X[:, 6] * X[:, 1] + 0.3 * rng.standard_normal(600) > 0.4).astype(int)
    clf = GradientBoostingClassifier(n_estimators=40, max_depth=3, subsample=0.8, random_state=0).fit(X, y)
    return clf, X


def test_tree_evaluation_reproduces_scikit_learn() -> None:
    # The exported ensemble evaluated by kizuna gives scikit-learn's own predict_proba (the peer) to
    # rounding, on points it was not trained on.
    clf, X = _fitted()
    model = from_sklearn(clf, X[:1], 0.5, {})
    Xt = np.random.default_rng(9).standard_normal((500, len(FEATURES)))
    np.testing.assert_allclose(model.probability(Xt), clf.predict_proba(Xt)[:, 1], rtol=0, atol=1e-12)


def test_model_json_round_trip(tmp_path) -> None:
    clf, X = _fitted(1)
    model = from_sklearn(clf, X[:1], 0.6, {"note": "test"})
    path = tmp_path / "m.json"
    path.write_text(json.dumps(model.to_json()))
    back = CandidateModel.load(path)
    np.testing.assert_array_equal(back.probability(X), model.probability(X))
    assert back.min_probability == 0.6


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("value"),
        lambda d: d.update(format="something else"),
        lambda d: d.update(features=["a", "b"]),
        lambda d: d.update(left=d["left"][:-1]),
        lambda d: d.update(roots=[10**9]),
    ],
)
def test_malformed_model_is_a_clear_error(tmp_path, mutate) -> None:
    clf, X = _fitted(2)
    d = from_sklearn(clf, X[:1], 0.5, {}).to_json()
    mutate(d)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    with pytest.raises(InputError, match="bad.json"):
        CandidateModel.load(path)


def test_unreadable_model_file_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="broken.json"):
        detect_craters(np.zeros((64, 64)) + 0.5, 0.0, DetectorSpec(model_path=str(path)))


def test_shipped_model_was_trained_on_terrains_the_tests_and_benchmarks_do_not_use() -> None:
    # The benchmarks and tests use terrain seeds below 1000 (campaigns: 1..N, detection: 1, 2).
    m = default_model()
    lo, hi = m.provenance["terrain_seeds"]
    assert lo >= 1000 and hi >= lo
    assert 0.0 < m.min_probability < 1.0
    assert m.provenance["candidates"] > 10_000


def test_features_do_not_depend_on_position() -> None:
    # Rows as _refine_kernel writes them: x, y, r, score, far, near, inlier fraction, residual/r,
    # radius ratio, shift/r. Position never enters; radius only through its log.
    rows = np.array([[10.0, 20.0, 8.0, 2.0, 0.2, 0.1, 0.9, 0.05, 1.1, 0.1],
                     [500.0, 40.0, 16.0, 1.0, 0.05, 0.3, 0.5, 0.1, 0.9, 0.2]])  # fmt: skip
    f = candidate_features(rows)
    assert f.shape == (2, len(FEATURES))
    np.testing.assert_allclose(f[:, FEATURES.index("edge_min_rel")], [0.1, 0.05] / np.median([0.1, 0.05]))
    np.testing.assert_allclose(f[:, FEATURES.index("log_radius_px")], np.log([8.0, 16.0]))
    shifted = rows.copy()
    shifted[:, :2] += 100.0
    np.testing.assert_array_equal(candidate_features(shifted), f)


def test_min_probability_out_of_range_is_rejected() -> None:
    with pytest.raises(InputError, match="min_probability"):
        DetectorSpec(min_probability=1.5)
    with pytest.raises(InputError, match="refine"):
        DetectorSpec(refine=False)
