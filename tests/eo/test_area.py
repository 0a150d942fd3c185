"""Accuracy assessment and the stratified area estimator (kizuna.eo.area)."""

from __future__ import annotations

import numpy as np
import pytest

from kizuna.eo.area import (
    EARTH_MEAN_RADIUS_KM,
    cell_area_km2,
    classification_metrics,
    error_matrix,
    group_cross_val_predict,
    per_site_accuracy,
    site_clusters,
    stratified_area_estimate,
)
from kizuna.errors import InputError

# The worked example of Olofsson et al. (2014), Remote Sensing of Environment 148, 42-57, section 5: a
# stratified random sample of 640 units over a change map of 10 million ha. Rows are map classes
# (deforestation, forest gain, stable forest, stable non-forest), columns reference classes; mapped areas in
# ha. Published results: deforestation area 235,086 ha +/- 68,418 ha (95 % CI), its user's accuracy
# 0.88 +/- 0.07 and producer's accuracy 0.75 +/- 0.21, overall accuracy 0.947 +/- 0.018.
OLOFSSON_COUNTS = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
OLOFSSON_MAPPED_HA = [200_000, 150_000, 3_200_000, 6_450_000]


def test_olofsson_2014_worked_example():
    est = stratified_area_estimate(OLOFSSON_COUNTS, OLOFSSON_MAPPED_HA)
    assert est.area[0] == pytest.approx(235_086, abs=1.0)
    assert est.area_ci[0] == pytest.approx(68_418, abs=1.0)
    assert est.users_accuracy[0] == pytest.approx(0.88, abs=0.005)
    assert 1.96 * est.users_se[0] == pytest.approx(0.07, abs=0.005)
    assert est.producers_accuracy[0] == pytest.approx(0.75, abs=0.005)
    assert 1.96 * est.producers_se[0] == pytest.approx(0.21, abs=0.005)
    assert est.overall_accuracy == pytest.approx(0.947, abs=0.0005)
    assert 1.96 * est.overall_se == pytest.approx(0.018, abs=0.0005)
    # The adjusted areas redistribute the map total; nothing is created or lost.
    assert est.area.sum() == pytest.approx(sum(OLOFSSON_MAPPED_HA), rel=1e-12)


def test_two_class_estimate_by_hand():
    # Hand evaluation of eqs. 4, 9 and 10 of Olofsson et al. (2014): W = (0.3, 0.7), n_i = 50, so
    # p = [[0.24, 0.06], [0.07, 0.63]]; class-0 proportion 0.31 with
    # SE = sqrt((0.09 * 0.8 * 0.2 + 0.49 * 0.1 * 0.9) / 49) = sqrt(0.0585 / 49).
    est = stratified_area_estimate([[40, 10], [5, 45]], [300.0, 700.0], classes=["a", "b"])
    np.testing.assert_allclose(est.proportions, [[0.24, 0.06], [0.07, 0.63]], rtol=1e-12)
    np.testing.assert_allclose(est.area, [310.0, 690.0], rtol=1e-12)
    np.testing.assert_allclose(est.area_se, 1000 * np.sqrt(0.0585 / 49) * np.ones(2), rtol=1e-12)
    assert est.users_accuracy[0] == pytest.approx(0.8) and est.producers_accuracy[0] == pytest.approx(
        0.24 / 0.31
    )
    d = est.as_dict()
    assert d["a"]["area_ci_low"] == pytest.approx(310 - 1.96 * 1000 * np.sqrt(0.0585 / 49))


def test_perfect_map_keeps_mapped_areas_with_zero_error():
    est = stratified_area_estimate(np.diag([30, 20, 10]), [5.0, 3.0, 2.0])
    np.testing.assert_allclose(est.area, [5.0, 3.0, 2.0])
    np.testing.assert_allclose(est.area_se, 0.0, atol=1e-15)
    np.testing.assert_allclose(est.users_accuracy, 1.0)
    np.testing.assert_allclose(est.producers_accuracy, 1.0)
    assert est.overall_accuracy == pytest.approx(1.0)


def test_estimator_rejects_unsampled_stratum_and_bad_shapes():
    with pytest.raises(InputError, match="map class 'b'.*no reference sample"):
        stratified_area_estimate([[5, 1], [0, 0]], [1.0, 2.0], classes=["a", "b"])
    with pytest.raises(InputError, match="square"):
        stratified_area_estimate([[1, 2, 3], [4, 5, 6]], [1.0, 2.0])
    with pytest.raises(InputError, match="mapped areas"):
        stratified_area_estimate([[1, 2], [3, 4]], [1.0, -2.0])


def test_error_matrix_and_metrics_by_hand():
    ref = np.array([1, 1, 1, 0, 0])
    pred = np.array([1, 1, 0, 0, 1])
    np.testing.assert_array_equal(error_matrix(pred, ref, 2), [[1, 1], [1, 2]])  # rows map, cols reference
    m = classification_metrics(ref, pred)
    # tp = 2, fp = 1, fn = 1, tn = 1
    assert m["overall_accuracy"] == pytest.approx(0.6)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert m["confusion_matrix_rows_reference_cols_predicted"] == [[1, 1], [1, 2]]
    with pytest.raises(InputError, match="sample 1"):
        error_matrix([0, 2], [0, 1], 2)


def test_site_clusters_split_at_eps():
    # Two lines of points 0.01 deg apart, the lines 0.1 deg apart: DBSCAN with eps 0.03 deg links each line.
    lat = np.r_[np.full(5, 10.0), np.full(5, 10.1)]
    lon = np.r_[105 + 0.01 * np.arange(5), 105 + 0.01 * np.arange(5)]
    sites = site_clusters(lat, lon, eps_deg=0.03)
    assert len(np.unique(sites[:5])) == 1 and len(np.unique(sites[5:])) == 1 and sites[0] != sites[5]
    assert len(np.unique(site_clusters(lat, lon, eps_deg=0.005))) == 10
    rows = per_site_accuracy(np.r_[np.ones(5), np.zeros(5)], np.r_[np.ones(4), 0, np.zeros(5)], sites)
    assert [r["accuracy"] for r in rows] == [0.8, 1.0]


def test_group_cross_val_never_trains_on_the_left_out_group():
    from sklearn.neighbors import KNeighborsClassifier

    # Groups at x = 0, 10, 20, 30 with labels 0, 1, 0, 1. A 1-nearest-neighbour model that saw the group
    # would return its own label; left out, the nearest other groups carry the opposite label.
    x = np.repeat([0.0, 10.0, 20.0, 30.0], 3)[:, None]
    y = np.repeat([0, 1, 0, 1], 3)
    groups = np.repeat([0, 1, 2, 3], 3)
    p = group_cross_val_predict(lambda: KNeighborsClassifier(1), x, y, groups)
    np.testing.assert_array_equal(p, 1 - y)


def test_cell_areas_sum_to_the_sphere():
    # A whole-globe 1-degree grid covers 4 pi R^2.
    lat = np.arange(-89.5, 90.0, 1.0)
    lon = np.arange(0.5, 360.0, 1.0)
    total = cell_area_km2(lat, lon).sum()
    assert total == pytest.approx(4 * np.pi * EARTH_MEAN_RADIUS_KM**2, rel=1e-12)
