"""End-to-end landing runs on a small scenario (256 x 256 images, three fix points)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.stats import chi2

from kizuna.lunar.nav.crater_map import CraterMap, MapErrorSpec
from kizuna.lunar.nav.descent import Scenario, simulate_landing
from kizuna.lunar.nav.terrain import Terrain


def small_scenario(seed: int = 3, **kw) -> Scenario:
    """A quick scenario: small images and few fixes, same descent profile and sensors."""
    sc = Scenario(
        image_width_px=256,
        image_height_px=256,
        fix_altitudes_m=(9000.0, 3000.0, 900.0, 300.0),
        images_per_point=1,
        example_frames=1,
    ).with_seed(seed)
    return replace(sc, **kw)


@pytest.fixture(scope="module")
def run():
    return simulate_landing(small_scenario())


def test_truth_reaches_hover_point(run):
    # Design requirement of the guidance (zero-effort-miss law with a PD hold): 50 m above the target.
    assert run.truth.r_l[-1, 2] - run.truth.target_l[2] == pytest.approx(50.0, abs=0.05)
    assert np.hypot(*(run.truth.r_l[-1, :2] - run.truth.target_l[:2])) < 0.05


def test_fixes_accepted_and_consistent(run):
    s = run.summary()
    assert s["fixes_attempted"] == 4
    assert s["fixes_accepted"] >= 3
    assert s["false_fixes"] == 0
    # Each accepted fix is consistent with its own covariance: squared Mahalanobis error below the
    # chi-square 99.99 % quantile with 3 degrees of freedom (21.1, from the chi-square table).
    gate = chi2.ppf(0.9999, 3)
    for f in run.fixes:
        if f.status == "accepted":
            e = np.asarray(f.error_l_m) / np.asarray(f.sigma_l_m)
            assert float(e @ e) < gate


def test_final_error_within_filter_uncertainty(run):
    # Final position NEES below the 99.9 % chi-square quantile for 3 dof (16.27, chi-square table).
    assert run.final_nees < chi2.ppf(0.999, 3)


def test_crater_fixes_beat_inertial_only(run):
    # The same run without image fixes: IMU and altimeter only. Horizontal errors then grow with the
    # initial 300 m dispersion that only the crater fixes can observe.
    blind = simulate_landing(replace(small_scenario(), fix_altitudes_m=(), example_frames=0))
    assert np.hypot(*run.final_error_l_m[:2]) < 0.1 * np.hypot(*blind.final_error_l_m[:2])


def test_wrong_map_is_never_used():
    # A map registered 3 km off (30 sigma of the initial position): every fix must be refused.
    sc = small_scenario(seed=4, map_error=MapErrorSpec(tie_sigma_m=3000.0, seed=11))
    assert np.linalg.norm(CraterMap(Terrain(sc.terrain), sc.map_error).tie_offset_m[:2]) > 1000.0
    res = simulate_landing(replace(sc, example_frames=0))
    s = res.summary()
    assert s["fixes_accepted"] == 0
    assert s["fixes_attempted"] == 4


def test_sun_from_the_ephemeris_at_the_south_pole():
    # At 89.9 S the Sun never rises more than the Moon's 1.54 deg axis tilt to the ecliptic (IAU value)
    # plus 0.1 deg of latitude and about 0.27 deg of solar radius and parallax: elevation within 2 deg.
    sc = Scenario(epoch_utc="2026-11-27T00:00:00", site_lat_deg=-89.9, site_lon_deg=0.0)
    az, el = sc.sun_azel_deg()
    assert abs(el) < 2.0
    assert 0.0 <= az < 360.0
    # without an epoch the given angles are used
    assert Scenario(sun_azimuth_deg=12.0, sun_elevation_deg=34.0).sun_azel_deg() == (12.0, 34.0)
