"""Correlation fix: image shifts against a map image rendered from the onboard DEM, at polar low Sun."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.stats import chi2

from kizuna.core.camera import Camera
from kizuna.core.rotations import look_at
from kizuna.lunar.nav.correlate import (
    OnboardDem,
    correlation_fix,
    horizontal_position_from_shift,
    shift_jacobian,
)
from kizuna.lunar.nav.filter import NavFilter
from kizuna.lunar.nav.imu import ImuSpec
from kizuna.lunar.nav.registration import bin_image, ncc_surface
from kizuna.lunar.nav.render import SensorSpec, render, sun_direction_l
from kizuna.lunar.nav.terrain import Terrain, TerrainSpec

ALT_M = 600.0
SUN = sun_direction_l(120.0, 1.5)  # 1.5 deg: the Sun's height at LUPEX's south-pole site


@pytest.fixture(scope="module")
def scene():
    """A 256 x 256 nadir camera 600 m above a synthetic terrain, and the terrain's 2 m onboard DEM."""
    terrain = Terrain(TerrainSpec(seed=21))
    dem = OnboardDem(terrain, 2.0)
    cam = Camera.from_fov(256, 256, 30.0)
    z0 = float(terrain.height(0.0, 0.0, resolution_m=5.0))
    p = np.array([0.0, 0.0, z0 + ALT_M])
    R = look_at(p, p - [0.0, 0.0, ALT_M])
    # predicted pose covariance [dtheta rad, dr m]: 0.01 deg and 5 m
    P = np.diag([np.radians(0.01) ** 2] * 3 + [25.0, 25.0, 1.0])
    return terrain, dem, cam, R, p, z0, P


def test_ncc_surface_matches_direct_correlation_coefficients():
    # The normalised cross-correlation at each offset is Pearson's correlation coefficient of the
    # template and the window (its definition); numpy's corrcoef computes it directly.
    rng = np.random.default_rng(3)
    search = rng.normal(size=(20, 23))
    tmpl = rng.normal(size=(7, 9))
    ncc = ncc_surface(search, tmpl)
    assert ncc.shape == (14, 15)
    for j, i in [(0, 0), (5, 7), (13, 14), (9, 2)]:
        ref = np.corrcoef(search[j : j + 7, i : i + 9].ravel(), tmpl.ravel())[0, 1]
        assert ncc[j, i] == pytest.approx(ref, abs=1e-9)
    # an exact copy correlates perfectly where it was cut from
    assert ncc_surface(search, search[4:11, 6:15])[4, 6] == pytest.approx(1.0, abs=1e-9)


def test_shift_jacobian_of_a_nadir_camera(scene):
    # Pinhole geometry straight down over a point at height h: moving the camera horizontally by 1 m
    # moves the image by fx / h px (both axes, in some orientation), and moving it vertically does not
    # move the point on the boresight.
    _, _, cam, R, p, z0, _ = scene
    X = np.array([p[0], p[1], z0])
    J = shift_jacobian(cam, R, p, X)
    H_r = J[:, 3:6]
    assert abs(np.linalg.det(H_r[:, :2])) == pytest.approx((cam.fx / ALT_M) ** 2, rel=1e-4)
    assert np.abs(H_r[:, 2]).max() < 1e-6


def test_correlation_recovers_a_known_image_shift(scene):
    # Moving a pinhole camera's principal point by (a, b) px moves every image point by exactly (a, b)
    # px: the expected shift is the applied one, divided by the bin factor of the matched image.
    _, dem, cam, R, p, z0, P = scene
    a, b = 2.6, -1.4
    shifted = replace(cam, cx=cam.cx + a, cy=cam.cy + b)
    image = render(dem, shifted, R, p, SUN, SensorSpec(psf_sigma_px=0.6)).image
    out = correlation_fix(image, cam, R, p, P, SUN, dem, z0)
    assert out.fix is not None, out.reason
    f = out.bin_factor
    assert f == 2  # 1.26 m camera pixels at 600 m, matched at the DEM's 2 m: 2 x 2 bins
    np.testing.assert_allclose(out.fix.shift_px, [a / f, b / f], atol=0.05)
    # the stated uncertainty covers the error
    e = out.fix.shift_px - [a / f, b / f]
    assert float(e @ np.linalg.solve(out.fix.cov_px2, e)) < chi2.ppf(0.999, 2)


def test_correlation_recovers_a_known_position_offset(scene):
    # The camera truly flies 4 m east and 3 m south of the predicted position (same attitude, same
    # height): the fix's horizontal position must be the predicted one plus that offset. The image is
    # rendered from the true terrain with sensor noise, so detail finer than the DEM is unmodelled.
    terrain, dem, cam, R, p, z0, P = scene
    offset = np.array([4.0, -3.0, 0.0])
    frame = render(terrain, cam, R, p + offset, SUN, SensorSpec(), np.random.default_rng(5))
    out = correlation_fix(frame.image, cam, R, p, P, SUN, dem, z0)
    assert out.fix is not None, out.reason
    pos, cov = horizontal_position_from_shift(out.fix, p, P)
    err = pos[:2] - (p + offset)[:2]
    assert np.hypot(*err) < 0.5 * out.work_gsd_m  # half a matched pixel
    assert float(err @ np.linalg.solve(cov[:2, :2], err)) < chi2.ppf(0.999, 2)


def test_featureless_image_gives_no_fix(scene):
    _, dem, cam, R, p, z0, P = scene
    out = correlation_fix(np.full((256, 256), 0.3), cam, R, p, P, SUN, dem, z0)
    assert out.fix is None and "featureless" in out.reason


def test_image_of_another_place_gives_no_fix(scene):
    # A camera image of terrain 5 km away, matched with a map of the predicted place: nothing in the
    # map resembles it, so the match must refuse rather than return a position.
    terrain, dem, cam, R, p, z0, P = scene
    far = p + [5000.0, 0.0, 0.0]
    far[2] = float(terrain.height(far[0], far[1], resolution_m=5.0)) + ALT_M
    img = render(terrain, cam, look_at(far, far - [0.0, 0.0, ALT_M]), far, SUN, SensorSpec(),
                 np.random.default_rng(6)).image  # fmt: skip
    assert bin_image(img, 2).std() > 0.01  # the image has content
    out = correlation_fix(img, cam, R, p, P, SUN, dem, z0)
    assert out.fix is None, f"false match: {out.fix}"


def test_wrong_shift_is_refused_by_the_filter_gate():
    # A shift 10 sigma away from what the filter predicts must be refused and leave the filter as it
    # was; a consistent one is used, and for H = k [I 0] on an isotropic prior the posterior variance
    # is the scalar Kalman result 1 / (1/s^2 + k^2/r^2).
    s, k, r = 5.0, 2.0, 0.5
    P0 = np.eye(15) * 1e-6
    P0[0:3, 0:3] = np.eye(3) * s**2
    nav = NavFilter(np.zeros(3), np.zeros(3), np.array([1.0, 0, 0, 0]), P0, ImuSpec.default(50.0))
    H_r = np.array([[k, 0.0, 0.0], [0.0, k, 0.0]])
    S_sigma = np.sqrt(k**2 * s**2 + r**2)
    bad = nav.update_image_shift([10.0 * S_sigma, 0.0], H_r, np.zeros((2, 3)), np.eye(2) * r**2)
    assert not bad.accepted
    np.testing.assert_array_equal(nav.r_l, 0.0)
    good = nav.update_image_shift([1.0, -1.0], H_r, np.zeros((2, 3)), np.eye(2) * r**2)
    assert good.accepted
    post = 1.0 / (1.0 / s**2 + k**2 / r**2)
    np.testing.assert_allclose(np.diag(nav.covariance)[:2], post, rtol=1e-9)
    np.testing.assert_allclose(nav.r_l[:2], post * k / r**2 * np.array([1.0, -1.0]), rtol=1e-9)
