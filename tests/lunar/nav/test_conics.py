"""Tests of crater-rim ellipses: 3-D circle projection and ellipse <-> conic conversions.

The reference is geometry constructed in the test: points sampled on each 3-D circle and projected with
``Camera.project`` (an independent code path: plain pinhole division plus the distortion polynomial), and
closed-form images of circles seen head-on or at a known tilt.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from kizuna.core.camera import Camera
from kizuna.core.rotations import look_at
from kizuna.errors import InputError
from kizuna.lunar.nav.conics import (
    conic_to_ellipse,
    distortion_jacobian,
    ellipse_residual,
    ellipse_to_conic,
    project_circles,
)


def _rim_points(centres: np.ndarray, normals: np.ndarray, radii: np.ndarray, n: int = 64) -> np.ndarray:
    """Points (N, n, 3) on 3-D circles, built from an orthonormal basis of each circle's plane."""
    helper = np.where(np.abs(normals[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    u = np.cross(normals, helper)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    w = np.cross(normals, u)
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return (
        centres[:, None, :]
        + radii[:, None, None] * np.cos(t)[None, :, None] * u[:, None, :]
        + radii[:, None, None] * np.sin(t)[None, :, None] * w[:, None, :]
    )


def _param_residual(ell: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Residual of the parametric ellipse equation, written out here from the stated conventions."""
    x0, y0, a, b, th = (ell[..., k][..., None] for k in range(5))
    dx, dy = uv[..., 0] - x0, uv[..., 1] - y0
    along = dx * np.cos(th) + dy * np.sin(th)  # theta measured from image +x toward +y
    across = -dx * np.sin(th) + dy * np.cos(th)
    return (along / a) ** 2 + (across / b) ** 2 - 1.0


def _scene(rng: np.random.Generator, tilt_deg: float, n: int = 40) -> tuple:
    cam = Camera.from_fov(1024, 1024, 40.0)
    alt = 2000.0
    eye = np.array([0.0, -alt * math.tan(math.radians(tilt_deg)), alt])
    R = look_at(eye, [0.0, 0.0, 0.0], up=[0.0, 1.0, 0.0])
    centres = np.c_[rng.uniform(-400, 400, (n, 2)), rng.normal(0.0, 20.0, n)]
    normals = rng.normal(0.0, 0.15, (n, 3)) + [0.0, 0.0, 1.0]  # rims on gently sloping ground
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    radii = rng.uniform(5.0, 120.0, n)
    return cam, R, eye, centres, normals, radii


@pytest.mark.parametrize("tilt_deg", [0.0, 30.0, 55.0])
def test_projected_rim_points_lie_on_the_ellipse(tilt_deg: float) -> None:
    rng = np.random.default_rng(1)
    cam, R, eye, centres, normals, radii = _scene(rng, tilt_deg)
    ell = project_circles(centres, radii, cam, R, eye, normals)
    assert np.all(np.isfinite(ell))
    uv = cam.project(_rim_points(centres, normals, radii), R, eye)
    # Exact pinhole geometry: the residual is rounding only.
    assert np.max(np.abs(_param_residual(ell, uv))) < 1e-9
    assert np.max(np.abs(ellipse_residual(ell[:, None, :], uv))) < 1e-9
    assert np.all(ell[:, 2] >= ell[:, 3])
    assert np.all((ell[:, 4] >= -np.pi / 2) & (ell[:, 4] < np.pi / 2))


def test_head_on_circle_is_a_circle_of_radius_f_r_over_h() -> None:
    # Analytic: a circle of radius r in a plane parallel to the image at depth h images as a circle of
    # radius f r / h centred at the projection of its centre.
    cam = Camera.from_fov(1024, 768, 50.0)
    h, r = 1500.0, 40.0
    eye = np.array([0.0, 0.0, h])
    R = look_at(eye, [0.0, 0.0, 0.0], up=[0.0, 1.0, 0.0])
    X = np.array([[0.0, 0.0, 0.0], [120.0, -75.0, 0.0]])
    ell = project_circles(X, np.array([r, r]), cam, R, eye)
    np.testing.assert_allclose(ell[:, 2], cam.fx * r / h, rtol=1e-12)
    np.testing.assert_allclose(ell[:, 3], cam.fx * r / h, rtol=1e-12)
    np.testing.assert_allclose(ell[0, :2], [cam.cx, cam.cy], atol=1e-9)
    xc = R @ (X[1] - eye)
    np.testing.assert_allclose(ell[1, :2], [cam.fx * xc[0] / xc[2] + cam.cx, cam.fy * xc[1] / xc[2] + cam.cy])


@pytest.mark.parametrize(("axis", "theta_expected"), [("x", 0.0), ("y", -np.pi / 2)])
def test_tilted_small_circle_axis_ratio_and_angle(axis: str, theta_expected: float) -> None:
    # Analytic: a small circle at the boresight viewed at angle t from its normal is foreshortened by cos t
    # along the direction of the tilt. With image u along world x, a tilt toward -y squeezes image v, so
    # the major axis lies along u (theta = 0); a tilt toward +x squeezes u and puts the major axis along v
    # (theta = -pi/2 after wrapping to [-pi/2, pi/2)).
    cam = Camera.from_fov(1024, 1024, 40.0)
    t = math.radians(35.0)
    d = 1000.0
    if axis == "x":
        eye = np.array([0.0, -d * math.sin(t), d * math.cos(t)])
    else:
        eye = np.array([d * math.sin(t), 0.0, d * math.cos(t)])
    R = look_at(eye, [0.0, 0.0, 0.0], up=[0.0, 1.0, 0.0])
    ell = project_circles(np.zeros((1, 3)), np.array([0.01]), cam, R, eye)[0]
    assert ell[3] / ell[2] == pytest.approx(math.cos(t), rel=1e-6)
    assert ell[2] == pytest.approx(cam.fx * 0.01 / d, rel=1e-6)
    assert abs(ell[4] - theta_expected) < 1e-6


def test_circle_not_entirely_in_front_gives_nan() -> None:
    cam = Camera.from_fov(1024, 1024, 40.0)
    eye = np.array([0.0, 0.0, 100.0])
    R = look_at(eye, [0.0, 1000.0, 100.0], up=[0.0, 0.0, 1.0])  # looking horizontally along +y
    X = np.array([[0.0, 500.0, 0.0], [0.0, 50.0, 0.0], [0.0, -300.0, 0.0]])
    # The first circle is in front; the second straddles the camera plane; the third is behind.
    ell = project_circles(X, np.array([20.0, 80.0, 20.0]), cam, R, eye)
    assert np.all(np.isfinite(ell[0]))
    assert np.all(np.isnan(ell[1:]))


def test_ellipse_conic_round_trip_and_scale_invariance() -> None:
    rng = np.random.default_rng(7)
    a = rng.uniform(2.0, 300.0, 500)
    ell = np.c_[
        rng.uniform(-100, 1100, (500, 2)),
        a,
        a * rng.uniform(0.05, 1.0, 500),
        rng.uniform(-np.pi / 2, np.pi / 2, 500),
    ]
    C = ellipse_to_conic(ell)
    scale = rng.choice([-1.0, 1.0], 500) * rng.uniform(1e-3, 1e3, 500)
    back = conic_to_ellipse(C * scale[:, None, None])
    np.testing.assert_allclose(back[:, :4], ell[:, :4], rtol=1e-9, atol=1e-7)
    # Theta is defined modulo pi; compare on the circle (only meaningful when a != b).
    dth = np.angle(np.exp(2j * (back[:, 4] - ell[:, 4]))) / 2.0
    assert np.max(np.abs(dth)) < 1e-7
    # Normalisation: -1 at the centre, 0 on the rim.
    centre = ellipse_residual(ell, ell[:, :2])
    np.testing.assert_allclose(centre, -1.0, atol=1e-9)


def test_non_ellipse_conics_give_nan() -> None:
    hyperbola = np.diag([1.0, -1.0, -1.0])  # x^2 - y^2 = 1
    imaginary = np.diag([1.0, 1.0, 1.0])  # x^2 + y^2 = -1
    out = conic_to_ellipse(np.stack([hyperbola, imaginary]))
    assert np.all(np.isnan(out))


def test_distortion_jacobian_matches_finite_differences_of_camera_distort() -> None:
    cam = Camera.from_fov(1024, 1024, 60.0, dist=(-0.2, 0.05, 0.001, -0.002, 0.01))
    rng = np.random.default_rng(3)
    xn = rng.uniform(-0.5, 0.5, (50, 2))
    J = distortion_jacobian(cam, xn)
    h = 1e-6
    for k in range(2):
        step = np.zeros(2)
        step[k] = h
        fd = (cam.distort(xn + step) - cam.distort(xn - step)) / (2 * h)
        np.testing.assert_allclose(J[:, :, k], fd, atol=1e-8)


def test_with_distortion_small_rims_stay_within_a_small_fraction_of_a_pixel() -> None:
    # With distortion the image of a circle is not an ellipse; the first-order mapping leaves an error of
    # order |d2(distortion)| a^2 / f. For k1 = -0.2 at the image corner and a <= 15 px that is ~0.03 px.
    cam = Camera.from_fov(1024, 1024, 40.0, dist=(-0.2, 0.02, 0.0005, -0.0005, 0.0))
    eye = np.array([0.0, -1000.0, 2500.0])
    R = look_at(eye, [0.0, 0.0, 0.0], up=[0.0, 1.0, 0.0])
    rng = np.random.default_rng(5)
    centres = np.c_[rng.uniform(-500, 500, (60, 2)), np.zeros(60)]
    radii = rng.uniform(3.0, 12.0, 60)
    normals = np.tile([0.0, 0.0, 1.0], (60, 1))
    ell = project_circles(centres, radii, cam, R, eye)
    ok = cam.in_image(ell[:, :2])
    uv = cam.project(_rim_points(centres, normals, radii), R, eye)
    res = _param_residual(ell, uv)[ok]
    # Convert the algebraic residual to a radial distance: |res| ~ 2 d / b at the rim.
    dist_px = np.abs(res) * ell[ok, 3][:, None] / 2.0
    assert ell[ok, 2].max() < 16.0
    assert dist_px.max() < 0.05
    # Without the distortion term the same rims are off by far more, so the test can see it.
    plain = project_circles(centres, radii, Camera.from_fov(1024, 1024, 40.0), R, eye)
    res_plain = np.abs(_param_residual(plain, uv)[ok]) * plain[ok, 3][:, None] / 2.0
    assert res_plain.max() > 1.0


def test_bad_input_raises_input_error() -> None:
    cam = Camera.from_fov(1024, 1024, 40.0)
    R, p = np.eye(3), np.zeros(3)
    with pytest.raises(InputError, match="centres_w"):
        project_circles(np.zeros((3, 2)), np.ones(3), cam, R, p)
    with pytest.raises(InputError, match="radii_m"):
        project_circles(np.zeros((2, 3)), np.array([1.0, -1.0]), cam, R, p)
    with pytest.raises(InputError, match="normals_w"):
        project_circles(np.zeros((2, 3)), np.ones(2), cam, R, p, normals_w=(0.0, 0.0, 0.0))
    with pytest.raises(InputError, match="ellipses"):
        ellipse_to_conic(np.ones((2, 4)))
    with pytest.raises(InputError, match="semi-axes"):
        ellipse_to_conic(np.array([[0.0, 0.0, -1.0, 1.0, 0.0]]))
    with pytest.raises(InputError, match="conics"):
        conic_to_ellipse(np.eye(2))
