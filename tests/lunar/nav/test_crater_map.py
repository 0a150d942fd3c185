"""Tests of the onboard crater map: content, reproducibility and the statistics of its errors.

The map error model is documented in crater_map.py: each centre coordinate is off by a normal error of
sigma = sqrt(centre_sigma_m^2 + (centre_sigma_frac D)^2), the centre height by half that, the diameter by
a log-normal factor exp(diameter_sigma_frac N(0, 1)). Sums of squared normalised errors then follow
chi-square distributions (scipy.stats.chi2 gives the bounds).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2

from kizuna.errors import InputError
from kizuna.lunar.nav.crater_map import CraterMap, MapErrorSpec
from kizuna.lunar.nav.terrain import Terrain, TerrainSpec

TERRAIN = Terrain(TerrainSpec(seed=9))
BOX = (-600.0, 600.0, -600.0, 600.0)


@pytest.fixture(scope="module")
def default_map():
    cm = CraterMap(TERRAIN)
    return cm, cm.query(*BOX, 0.0)


def _chi2_ok(sum_sq: float, dof: int, p: float = 1e-4) -> bool:
    return chi2.ppf(p / 2, dof) < sum_sq < chi2.ppf(1 - p / 2, dof)


def test_errors_follow_documented_sigmas(default_map) -> None:
    cm, m = default_map
    e = cm.error
    n = len(m)
    assert n > 1000
    D = m.true_diameter_m.to_numpy()
    s = np.hypot(e.centre_sigma_m, e.centre_sigma_frac * D)
    ex = ((m.x_m - m.true_x_m) / s).to_numpy()
    ey = ((m.y_m - m.true_y_m) / s).to_numpy()
    ez = ((m.z_m - m.true_z_m) / (0.5 * s)).to_numpy()
    ed = (np.log(m.diameter_m / D) / e.diameter_sigma_frac).to_numpy()
    # chi-square with 2n (x and y) and n degrees of freedom, two-sided at p = 1e-4
    assert _chi2_ok(np.sum(ex**2) + np.sum(ey**2), 2 * n)
    assert _chi2_ok(np.sum(ez**2), n)
    assert _chi2_ok(np.sum(ed**2), n)
    # zero mean (standard error 1/sqrt(n)) and no correlation between axes or between craters
    for v in (ex, ey, ez, ed):
        assert abs(v.mean()) < 4.0 / math.sqrt(n)
    order = np.argsort(m.true_x_m.to_numpy())
    for a, b in ((ex, ey), (ex, ed), (ex[order][:-1], ex[order][1:])):
        assert abs(np.corrcoef(a, b)[0, 1]) < 4.0 / math.sqrt(n)


def test_error_grows_with_diameter(default_map) -> None:
    # The fractional term dominates for large craters: 2 % of D at D = 50 m is 1 m against 0.5 m.
    cm, m = default_map
    big = m[m.true_diameter_m > 40.0]
    small = m[m.true_diameter_m < 8.0]
    assert len(big) > 20 and len(small) > 200
    rms = {k: math.sqrt(np.mean((v.x_m - v.true_x_m) ** 2)) for k, v in (("big", big), ("small", small))}
    s_small = math.hypot(0.5, 0.02 * small.true_diameter_m.mean())
    assert rms["small"] == pytest.approx(s_small, rel=0.2)
    assert rms["big"] > 1.5 * rms["small"]


def test_same_crater_same_error_in_overlapping_queries() -> None:
    cm = CraterMap(TERRAIN)
    a = cm.query(-300.0, 100.0, -200.0, 200.0, 0.0)
    b = cm.query(0.0, 400.0, -100.0, 300.0, 0.0)
    both = a.merge(b, on=["true_x_m", "true_y_m"], suffixes=("_a", "_b"))
    assert len(both) > 30  # ~48 expected in the 100 m x 300 m overlap
    for c in ("x_m", "y_m", "z_m", "diameter_m"):
        np.testing.assert_array_equal(both[c + "_a"], both[c + "_b"])
    # and a new map object with the same seed is the same map
    c = CraterMap(TERRAIN).query(-300.0, 100.0, -200.0, 200.0, 0.0)
    np.testing.assert_array_equal(
        c[["x_m", "y_m", "z_m", "diameter_m"]], a[["x_m", "y_m", "z_m", "diameter_m"]]
    )


def test_other_seed_gives_independent_errors(default_map) -> None:
    cm, m = default_map
    other = CraterMap(TERRAIN, MapErrorSpec(seed=8)).query(*BOX, 0.0)
    np.testing.assert_array_equal(other.true_x_m, m.true_x_m)
    r = np.corrcoef(m.x_m - m.true_x_m, other.x_m - other.true_x_m)[0, 1]
    assert abs(r) < 4.0 / math.sqrt(len(m))


def test_zero_error_map_is_truth() -> None:
    zero = MapErrorSpec(centre_sigma_m=0.0, centre_sigma_frac=0.0, diameter_sigma_frac=0.0, tie_sigma_m=0.0)
    for spec in (zero, MapErrorSpec(tie_sigma_m=3.0).scaled(0.0)):
        m = CraterMap(TERRAIN, spec).query(-200.0, 200.0, -200.0, 200.0, 0.0)
        assert len(m) > 50
        for c in ("x_m", "y_m", "z_m", "diameter_m"):
            np.testing.assert_array_equal(m[c], m["true_" + c])


def test_truth_columns_are_the_terrain_craters() -> None:
    m = CraterMap(TERRAIN).query(-200.0, 200.0, -200.0, 200.0, 6.0)
    c = TERRAIN.craters(-200.0, 200.0, -200.0, 200.0, 6.0)
    np.testing.assert_array_equal(m.true_x_m, c.x_m)
    np.testing.assert_array_equal(m.true_y_m, c.y_m)
    np.testing.assert_array_equal(m.true_z_m, c.z_m)
    np.testing.assert_array_equal(m.true_diameter_m, c.diameter_m)


@pytest.mark.parametrize(
    ("min_d", "query_d", "expected_min"), [(5.0, 0.0, 5.0), (12.0, 3.0, 12.0), (5.0, 20.0, 20.0)]
)
def test_min_diameter_respected(min_d: float, query_d: float, expected_min: float) -> None:
    cm = CraterMap(TERRAIN, MapErrorSpec(min_diameter_m=min_d))
    m = cm.query(-300.0, 300.0, -300.0, 300.0, query_d)
    assert len(m) > 10
    assert m.true_diameter_m.min() >= expected_min
    # nothing left out either: every terrain crater of that size is mapped
    assert len(m) == len(TERRAIN.craters(-300.0, 300.0, -300.0, 300.0, expected_min))


def test_tie_offset_is_common_to_all_craters() -> None:
    # A registration error moves the whole map by one vector: with and without it, the mapped positions
    # differ by the same offset for every crater.
    base = CraterMap(TERRAIN).query(-200.0, 200.0, -200.0, 200.0, 0.0)
    cm = CraterMap(TERRAIN, MapErrorSpec(tie_sigma_m=5.0))
    tied = cm.query(-200.0, 200.0, -200.0, 200.0, 0.0)
    d = (tied[["x_m", "y_m", "z_m"]] - base[["x_m", "y_m", "z_m"]]).to_numpy()
    np.testing.assert_allclose(d, np.tile(cm.tie_offset_m, (len(d), 1)), atol=1e-9)
    assert np.linalg.norm(cm.tie_offset_m) > 0.0
    np.testing.assert_array_equal(tied.diameter_m, base.diameter_m)


def test_empty_query_has_the_columns() -> None:
    m = CraterMap(TERRAIN).query(0.0, 1.0, 0.0, 1.0, 1000.0)
    assert len(m) == 0
    for c in ("x_m", "y_m", "z_m", "diameter_m", "true_x_m", "true_y_m", "true_z_m", "true_diameter_m"):
        assert c in m.columns


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_diameter_m": -1.0},
        {"centre_sigma_m": math.nan},
        {"centre_sigma_frac": -0.1},
        {"tie_sigma_m": math.inf},
    ],
)
def test_bad_spec_raises(kwargs: dict) -> None:
    with pytest.raises(InputError, match="map error"):
        MapErrorSpec(**kwargs)
