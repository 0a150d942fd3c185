"""Tests of the pose solver: P3P, the projection Jacobian, robust PnP and its covariance.

Ground truth is synthetic: a camera pose chosen in the test, crater rim centres placed on the ground and
imaged with ``Camera.project``; noise and outliers are drawn with known statistics. Expected values are
therefore either the constructed pose itself or quantiles of the chi-square / F distributions that an
unbiased, consistent estimator must follow.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from scipy.stats import chi2

from kizuna.core.camera import Camera
from kizuna.core.rotations import look_at
from kizuna.errors import InputError
from kizuna.lunar.nav.match import MatchResult
from kizuna.lunar.nav.pose import (
    estimate_pose,
    p3p_grunert,
    pose_compose,
    pose_difference,
    pose_from_matches,
    projection_jacobian,
)

DIST = (-0.12, 0.03, 0.0008, -0.0006, 0.0)


def _view(tilt_deg: float, alt: float = 3000.0, yaw_deg: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    """Camera at altitude alt (m) looking at the origin, tilted by tilt_deg from nadir."""
    t = math.radians(tilt_deg)
    y = math.radians(yaw_deg)
    eye = np.array([-alt * math.tan(t) * math.sin(y), -alt * math.tan(t) * math.cos(y), alt])
    up = [math.sin(y + 0.3), math.cos(y + 0.3), 0.0]
    return look_at(eye, [0.0, 0.0, 0.0], up=up), eye


def _ground_points(cam: Camera, R: np.ndarray, p: np.ndarray, uv: np.ndarray, rng: np.random.Generator):
    """World points on rough ground (z ~ N(0, 15 m)) seen at the pixels uv."""
    d = cam.rays_cam(uv) @ R  # world directions
    z = rng.normal(0.0, 15.0, len(uv))
    s = (z - p[2]) / d[:, 2]
    return p + s[:, None] * d


def test_pose_compose_follows_the_documented_convention() -> None:
    # R_wc_new = Exp(dtheta) R_wc with R_wc = R_cw^T, built here with scipy's own rotation vectors.
    rng = np.random.default_rng(0)
    R, p = _view(25.0)
    delta = np.r_[rng.normal(0, 0.05, 3), rng.normal(0, 10.0, 3)]
    R2, p2 = pose_compose(R, p, delta)
    R_wc_expected = Rotation.from_rotvec(delta[:3]).as_matrix() @ R.T
    np.testing.assert_allclose(R2.T, R_wc_expected, atol=1e-12)
    np.testing.assert_allclose(p2, p + delta[3:], atol=1e-12)
    np.testing.assert_allclose(pose_difference(R2, p2, R, p), delta, atol=1e-12)


def test_projection_jacobian_matches_finite_differences_of_camera_project() -> None:
    cam = Camera.from_fov(1024, 1024, 45.0, dist=DIST)
    R, p = _view(30.0)
    rng = np.random.default_rng(1)
    X = _ground_points(cam, R, p, rng.uniform(0, 1023, (30, 2)), rng)
    uv, J, z = projection_jacobian(X, cam, R, p)
    np.testing.assert_allclose(uv, cam.project(X, R, p), atol=1e-9)
    np.testing.assert_allclose(z, (X - p) @ R.T[:, 2], rtol=1e-12)
    for k, h in enumerate([1e-7] * 3 + [1e-3] * 3):
        d = np.zeros(6)
        d[k] = h
        fd = (cam.project(X, *pose_compose(R, p, d)) - cam.project(X, *pose_compose(R, p, -d))) / (2 * h)
        np.testing.assert_allclose(J[:, :, k], fd, rtol=1e-5, atol=1e-6 * np.abs(J).max())


def test_p3p_returns_the_true_pose_among_its_solutions() -> None:
    # Noise-free minimal sets from random poses: one of the (at most four) solutions is the truth, and
    # every returned solution reprojects the three points exactly (it is a genuine P3P solution).
    rng = np.random.default_rng(2)
    cam = Camera.from_fov(1024, 1024, 50.0)
    n_found = 0
    for trial in range(200):
        R, p = _view(rng.uniform(0, 50), alt=rng.uniform(100, 15000), yaw_deg=rng.uniform(0, 360))
        X = _ground_points(cam, R, p, rng.uniform(0, 1023, (3, 2)), rng)
        bearings = (X - p) @ R.T
        Rs, ps, ok = p3p_grunert(bearings, X)
        assert ok.sum() >= 1, trial
        scale = np.linalg.norm(p)
        err = [np.abs(Rs[k] - R).max() + np.abs(ps[k] - p).max() / scale for k in range(4) if ok[k]]
        n_found += min(err) < 1e-6
        for k in np.flatnonzero(ok):
            xc = (X - ps[k]) @ Rs[k].T
            unit = bearings / np.linalg.norm(bearings, axis=1, keepdims=True)
            np.testing.assert_allclose(xc / np.linalg.norm(xc, axis=1, keepdims=True), unit, atol=1e-6)
    # Near-degenerate random triplets may lose a few digits; the truth must be found in all but a few.
    assert n_found >= 198


def _nees_trials(tilt_deg: float, dist: tuple, n_trials: int = 200, seed: int = 3):
    cam = Camera.from_fov(1024, 1024, 40.0, dist=dist)
    rng = np.random.default_rng(seed)
    R, p = _view(tilt_deg)
    nees_known, nees_est, s2, nu = [], [], [], []
    for _ in range(n_trials):
        uv_true = rng.uniform(20, 1003, (20, 2))
        X = _ground_points(cam, R, p, uv_true, rng)
        uv = cam.project(X, R, p) + rng.normal(0.0, 1.0, (20, 2))
        fix = estimate_pose(uv, X, cam, sigma_px=1.0, rng=rng)
        # A good point is dropped only when its noise is in the far tail (chi-square 0.9999 gate).
        assert fix is not None and fix.n_inliers >= 19
        e = pose_difference(R, p, fix.R_cw, fix.p_w)
        nees_est.append(e @ np.linalg.solve(fix.cov, e))
        # The same covariance with the known pixel noise (1 px) instead of the a posteriori estimate.
        nees_known.append(e @ np.linalg.solve(fix.cov / fix.sigma0_px**2, e))
        s2.append(fix.sigma0_px**2 * (2 * fix.n_inliers - 6))
        nu.append(2 * fix.n_inliers - 6)
    return np.array(nees_known), np.array(nees_est), np.sum(s2) / np.sum(nu), int(np.sum(nu))


@pytest.mark.parametrize(("tilt_deg", "dist"), [(3.0, DIST), (30.0, (0.0,) * 5)])
def test_pnp_error_is_consistent_with_its_covariance(tilt_deg: float, dist: tuple) -> None:
    n = 200
    nees_known, nees_est, s2, nu_total = _nees_trials(tilt_deg, dist, n)
    # With the true noise level, sum of NEES over n trials ~ chi2(6 n): two-sided 95 % bounds.
    lo, hi = chi2.ppf([0.025, 0.975], 6 * n) / n
    assert lo < nees_known.mean() < hi
    # The a posteriori variance factor: sum of s^2 (2K - 6) over the trials ~ chi2(sum of (2K - 6)).
    lo, hi = chi2.ppf([0.025, 0.975], nu_total) / nu_total
    assert lo < s2 < hi
    # With the estimated factor the NEES is 6 F(6, nu) (nu = 2 * 20 - 6 for 20 points): mean
    # 6 nu / (nu - 2), variance from the F law; 95 % bounds on the mean of n trials by the central
    # limit theorem.
    nu = 2 * 20 - 6
    mean = 6 * nu / (nu - 2)
    var = 36 * 2 * nu**2 * (6 + nu - 2) / (6 * (nu - 2) ** 2 * (nu - 4))
    half = 1.96 * math.sqrt(var / n)
    assert mean - half < nees_est.mean() < mean + half


def test_thirty_percent_outliers_are_rejected() -> None:
    cam = Camera.from_fov(1024, 1024, 40.0, dist=DIST)
    rng = np.random.default_rng(4)
    for trial in range(10):
        R, p = _view(rng.uniform(0, 35), alt=rng.uniform(200, 12000), yaw_deg=rng.uniform(0, 360))
        X = _ground_points(cam, R, p, rng.uniform(20, 1003, (40, 2)), rng)
        noise = rng.normal(0.0, 1.0, (40, 2))
        uv = cam.project(X, R, p) + noise
        bad = np.zeros(40, dtype=bool)
        bad[rng.choice(40, 12, replace=False)] = True
        # Outliers: gross mismatches, 20 to 400 px from the true image (clipped to the image).
        ang = rng.uniform(0, 2 * np.pi, 12)
        uv[bad] = np.clip(uv[bad] + rng.uniform(20, 400, (12, 1)) * np.c_[np.cos(ang), np.sin(ang)], 0, 1023)
        far = np.linalg.norm(uv - cam.project(X, R, p), axis=1) > 15.0
        fix = estimate_pose(uv, X, cam, rng=trial)
        assert fix is not None
        assert not np.any(fix.inliers[bad & far])
        # Every good point whose noise is not in the far tail (> 3.5 sigma) is kept.
        assert np.all(fix.inliers[~bad & (np.linalg.norm(noise, axis=1) < 3.5)])
        e = pose_difference(R, p, fix.R_cw, fix.p_w)
        assert e @ np.linalg.solve(fix.cov, e) < chi2.ppf(0.9999, 6)


def test_prior_seeds_the_search() -> None:
    # 80 % outliers and a budget of 16 random triplets: a clean triplet turns up with probability
    # 1 - (1 - 0.2^3)^16 ~ 12 % per trial, so the fix must come from scoring the prior pose.
    cam = Camera.from_fov(1024, 1024, 40.0)
    rng = np.random.default_rng(8)
    for trial in range(5):
        R, p = _view(20.0, yaw_deg=rng.uniform(0, 360))
        X = _ground_points(cam, R, p, rng.uniform(20, 1003, (50, 2)), rng)
        uv = cam.project(X, R, p) + rng.normal(0.0, 1.0, (50, 2))
        bad = np.arange(50) >= 10
        uv[bad] = rng.uniform(0, 1023, (40, 2))
        R_prior, p_prior = pose_compose(R, p, np.r_[np.full(3, 2e-4), np.full(3, 1.0)])
        fix = estimate_pose(uv, X, cam, R_prior, p_prior, max_iterations=16, rng=trial)
        assert fix is not None
        far = np.linalg.norm(uv - cam.project(X, R, p), axis=1) > 15.0
        assert np.all(fix.inliers[:10]) and not np.any(fix.inliers[bad & far])


def test_degenerate_geometry_returns_none() -> None:
    cam = Camera.from_fov(1024, 1024, 40.0)
    R, p = _view(10.0)
    rng = np.random.default_rng(5)
    # All points on one straight line on the ground: rotation about the line is unobservable.
    s = rng.uniform(-400, 400, 25)
    X = np.c_[s, 0.3 * s + 20.0, np.zeros(25)]
    uv = cam.project(X, R, p) + rng.normal(0.0, 0.5, (25, 2))
    assert estimate_pose(uv, X, cam, rng=0) is None
    # Fewer points than min_inliers.
    X4 = _ground_points(cam, R, p, rng.uniform(0, 1023, (4, 2)), rng)
    assert estimate_pose(cam.project(X4, R, p), X4, cam, min_inliers=5) is None
    # Every point an outlier: no consensus.
    X = _ground_points(cam, R, p, rng.uniform(0, 1023, (30, 2)), rng)
    assert estimate_pose(rng.uniform(0, 1023, (30, 2)), X, cam, rng=0) is None


def _match_result(det_idx: np.ndarray, cat_idx: np.ndarray, R: np.ndarray, p: np.ndarray) -> MatchResult:
    k = det_idx.size
    z2 = np.zeros((k, 2))
    return MatchResult(det_idx, cat_idx, np.zeros(k), z2, z2, R, p, np.eye(6), k, False)


def test_pose_from_matches_uses_the_prior_gate() -> None:
    cam = Camera.from_fov(1024, 1024, 40.0)
    R, p = _view(15.0)
    rng = np.random.default_rng(6)
    X = _ground_points(cam, R, p, rng.uniform(20, 1003, (30, 2)), rng)
    det = np.c_[cam.project(X, R, p) + rng.normal(0.0, 1.0, (30, 2)), np.full((30, 2), 8.0), np.zeros(30)]
    m = _match_result(np.arange(30), np.arange(30), R, p)
    P = np.diag([1e-3] * 3 + [20.0] * 3) ** 2
    # A prior 1 sigma off in every axis is accepted ...
    R1, p1 = pose_compose(R, p, np.sqrt(np.diag(P)))
    fix = pose_from_matches(m, det, X, cam, R1, p1, P, rng=0)
    assert fix is not None
    e = pose_difference(R, p, fix.R_cw, fix.p_w)
    assert e @ np.linalg.solve(fix.cov, e) < chi2.ppf(0.9999, 6)
    # ... one 10 sigma off (by the chi-square gate on fix minus prior) is rejected.
    R10, p10 = pose_compose(R, p, 10 * np.sqrt(np.diag(P)))
    assert pose_from_matches(m, det, X, cam, R10, p10, P, rng=0) is None


def test_bad_input_raises_input_error() -> None:
    cam = Camera.from_fov(1024, 1024, 40.0)
    with pytest.raises(InputError, match="uv_px"):
        estimate_pose(np.zeros((5, 3)), np.zeros((5, 3)), cam)
    with pytest.raises(InputError, match="X_w"):
        estimate_pose(np.zeros((5, 2)), np.zeros((5, 2)), cam)
    with pytest.raises(InputError, match="same number"):
        estimate_pose(np.zeros((5, 2)), np.zeros((6, 3)), cam)
    with pytest.raises(InputError, match="min_inliers"):
        estimate_pose(np.zeros((5, 2)), np.zeros((5, 3)), cam, min_inliers=3)
    with pytest.raises(InputError, match="R_prior"):
        estimate_pose(np.zeros((5, 2)), np.zeros((5, 3)), cam, R_prior=np.eye(3))
    with pytest.raises(InputError, match="delta"):
        pose_compose(np.eye(3), np.zeros(3), np.zeros(5))


def test_size_dependent_centre_noise_keeps_the_fix_consistent_and_better() -> None:
    # Centres of large craters wander by a share of their radius (10 % here, per axis) while small ones
    # are good to about a pixel. Weighting by sigma^2 = sigma_px^2 + (sigma_rel a)^2 (the best linear
    # unbiased estimate for that noise, Gauss-Markov) keeps the fix error within its covariance
    # (chi-square, 6 dof) and makes it smaller than weighting every centre alike.
    cam = Camera.from_fov(1024, 1024, 40.0)
    R, p = _view(10.0)
    P = np.diag([1e-2] * 3 + [200.0] * 3) ** 2
    d2, err = [], {0.1: [], 0.0: []}
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        X = _ground_points(cam, R, p, rng.uniform(40, 983, (24, 2)), rng)
        a = np.where(np.arange(24) < 12, 4.0, 80.0)  # 12 small craters, 12 large ones (px)
        noise = rng.normal(0.0, 1.0, (24, 2)) * np.hypot(1.0, 0.1 * a)[:, None]
        det = np.c_[cam.project(X, R, p) + noise, a, a, np.zeros(24)]
        m = _match_result(np.arange(24), np.arange(24), R, p)
        for rel in (0.1, 0.0):
            fix = pose_from_matches(m, det, X, cam, R, p, P, rng=0, sigma_rel=rel, ransac_threshold_px=100.0)
            assert fix is not None
            e = pose_difference(R, p, fix.R_cw, fix.p_w)
            err[rel].append(float(np.linalg.norm(e[3:])))
            if rel > 0:
                d2.append(float(e @ np.linalg.solve(fix.cov, e)))
    assert max(d2) < chi2.ppf(0.9999, 6)
    # consistent on average: the mean of a chi-square with 6 dof is 6 (loose bounds for 40 draws)
    assert 3.0 < np.mean(d2) < 9.0
    assert np.median(err[0.1]) < 0.8 * np.median(err[0.0])
    with pytest.raises(InputError, match="sigma_rel"):
        pose_from_matches(m, det, X, cam, R, p, P, rng=0, sigma_rel=-0.1)
