"""Tests of tracking-mode crater association and the pose fix built on it.

Ground truth is a synthetic crater field and a camera pose chosen in the test. Detections are made by
projecting 48 points of each rim with ``Camera.project`` and fitting an ellipse to them (an independent
route from the conic projection under test), then adding centre and size noise; 30 % of the visible
craters are missed and 20 % of the detections are spurious (random position and size). The navigation
prior is the true pose moved by a 2-sigma error (Mahalanobis length 2 in a random direction of its
covariance). Expected outcomes are facts of this construction: which catalogue crater each detection
images, and the true pose.

The synthetic catalogue holds no two craters of similar size (ratio < 2) whose rims overlap: such a pair
would be one blurred entry in a real map, and seen 1 px apart with 1 px noise the two are geometrically
indistinguishable. A spurious detection that lands, size-compatible, within the centre gate of a
catalogue crater that was not itself detected is indistinguishable from a detection of it; the tests
allow such coincidences only with an error inside the gate and at a rate of at most 1 % of the matches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from scipy.stats import chi2

from kizuna.core.camera import Camera
from kizuna.core.rotations import look_at
from kizuna.errors import InputError
from kizuna.lunar.nav.conics import conic_to_ellipse, project_circles
from kizuna.lunar.nav.match import match_craters
from kizuna.lunar.nav.pose import pose_compose, pose_difference, pose_from_matches


@dataclass
class Frame:
    cam: Camera
    R: np.ndarray
    p: np.ndarray
    X: np.ndarray
    radii: np.ndarray
    det: np.ndarray
    truth: np.ndarray  # catalogue row imaged by each detection, -1 for spurious ones
    R_prior: np.ndarray
    p_prior: np.ndarray
    P: np.ndarray


def _fit_ellipses(uv: np.ndarray) -> np.ndarray:
    """Algebraic least-squares conic through the points of each rim (N, n, 2), as ellipses (N, 5)."""
    c = uv.mean(1, keepdims=True)
    s = np.sqrt(np.mean(np.sum((uv - c) ** 2, -1), 1))[:, None]
    x = (uv[..., 0] - c[..., 0]) / s
    y = (uv[..., 1] - c[..., 1]) / s
    D = np.stack([x * x, x * y, y * y, x, y, np.ones_like(x)], -1)
    k = np.linalg.svd(D)[2][:, -1]
    C = np.stack(
        [
            np.stack([k[:, 0], k[:, 1] / 2, k[:, 3] / 2], -1),
            np.stack([k[:, 1] / 2, k[:, 2], k[:, 4] / 2], -1),
            np.stack([k[:, 3] / 2, k[:, 4] / 2, k[:, 5]], -1),
        ],
        -2,
    )
    e = conic_to_ellipse(C)
    e[:, :2] = e[:, :2] * s + c[:, 0]
    e[:, 2:4] *= s
    return e


def _frame(
    seed: int,
    alt: float = 3000.0,
    tilt_deg: float = 0.0,
    fov_deg: float = 40.0,
    dist: tuple = (0.0,) * 5,
    n_visible: int = 400,
    sig_att: float = 1e-3,
    sig_pos_rel: float = 0.02,
    k_sigma: float = 2.0,
    miss: float = 0.3,
    spurious: float = 0.2,
    map_sigma_m: float = 0.0,
) -> Frame:
    rng = np.random.default_rng(seed)
    cam = Camera.from_fov(1024, 1024, fov_deg, dist=dist)
    t = math.radians(tilt_deg)
    yaw = rng.uniform(0, 2 * np.pi)
    eye = np.array([-alt * math.tan(t) * math.sin(yaw), -alt * math.tan(t) * math.cos(yaw), alt])
    R = look_at(eye, [0.0, 0.0, 0.0], up=[math.cos(yaw), math.sin(yaw), 0.0])
    # Ground footprint: the image corners on z = 0, padded so craters also lie around the image.
    corners = np.array([[0, 0], [1023, 0], [0, 1023], [1023, 1023]], float)
    d = cam.rays_cam(corners) @ R
    foot = eye[:2] + (-eye[2] / d[:, 2])[:, None] * d[:, :2]
    lo, hi = foot.min(0), foot.max(0)
    pad = 0.3 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    gsd = alt / math.cos(t) / cam.fx  # metres per pixel at the image centre
    r_min, r_max = 2.0 * gsd, 60.0 * gsd
    # Crater sizes: cumulative number above r ~ r^-2 (a typical lunar size-frequency slope).
    n_total = int(n_visible * 2.2 * (hi - lo).prod() / (foot.max(0) - foot.min(0)).prod())
    radii = r_min * (1.0 - rng.random(n_total) * (1.0 - (r_min / r_max) ** 2)) ** -0.5
    X = np.c_[rng.uniform(lo, hi, (n_total, 2)), rng.normal(0.0, 3.0 * gsd, n_total)]
    # No two similar-sized craters with overlapping rims (larger craters win).
    order = np.argsort(-radii)
    X, radii = X[order], radii[order]
    keep = np.ones(n_total, dtype=bool)
    for j in range(n_total):
        if keep[j]:
            dd = np.linalg.norm(X[j + 1 :, :2] - X[j, :2], axis=1)
            clash = (dd < radii[j] + radii[j + 1 :]) & (radii[j] < 2.0 * radii[j + 1 :])
            keep[j + 1 :] &= ~clash
    X, radii = X[keep], radii[keep]
    # Detections: ellipses fitted to rim points projected by the camera model.
    tt = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    rim = X[:, None, :] + radii[:, None, None] * np.stack([np.cos(tt), np.sin(tt), 0 * tt], -1)[None]
    uv = cam.project(rim, R, eye)
    seen = np.all(np.isfinite(uv), (1, 2)) & np.all(cam.in_image(uv), 1)
    idx = np.flatnonzero(seen)
    ell = _fit_ellipses(uv[idx])
    big = ell[:, 3] >= 2.5  # detector size limit (px)
    idx, ell = idx[big], ell[big]
    found = rng.random(idx.size) >= miss
    idx, ell = idx[found], ell[found].copy()
    ell[:, :2] += rng.normal(0.0, 1.0, (idx.size, 2))
    ell[:, 2:4] *= np.exp(rng.normal(0.0, 0.05, (idx.size, 1)))
    n_sp = int(round(spurious / (1.0 - spurious) * idx.size))
    a = np.exp(rng.uniform(np.log(2.5), np.log(ell[:, 2].max()), n_sp))
    sp = np.c_[
        rng.uniform(0, 1023, (n_sp, 2)), a, a * rng.uniform(0.6, 1.0, n_sp), rng.uniform(-1.5, 1.5, n_sp)
    ]
    det = np.r_[ell, sp]
    truth = np.r_[idx, -np.ones(n_sp, dtype=int)]
    perm = rng.permutation(det.shape[0])
    # Prior: the true pose moved by k_sigma along a random direction of P (Mahalanobis length k_sigma).
    sd = np.r_[np.full(3, sig_att), np.full(3, sig_pos_rel * alt)]
    P = np.diag(sd**2)
    u = rng.normal(size=6)
    R_prior, p_prior = pose_compose(R, eye, k_sigma * sd * u / np.linalg.norm(u))
    # The onboard map: true rim centres seen through an isotropic position error (m).
    X_map = X + rng.normal(0.0, map_sigma_m, X.shape)
    return Frame(cam, R, eye, X_map, radii, det[perm], truth[perm], R_prior, p_prior, P)


def _check_frame(f: Frame, cat_sigma_m: float = 0.0) -> tuple[int, int]:
    """Match and fix one frame; assert no wrong association; return (correct matches, coincidences)."""
    m = match_craters(f.det, f.X, f.radii, f.cam, f.R_prior, f.p_prior, f.P, cat_sigma_m=cat_sigma_m)
    assert not m.ambiguous
    tr = f.truth[m.det_idx]
    real = tr >= 0
    # Zero wrong associations of real detections.
    np.testing.assert_array_equal(m.cat_idx[real], tr[real])
    # Spurious detections matched by coincidence lie inside the centre gate of the crater's true image.
    true_ell = project_circles(f.X[m.cat_idx[~real]], f.radii[m.cat_idx[~real]], f.cam, f.R, f.p)
    err = np.linalg.norm(f.det[m.det_idx[~real], :2] - true_ell[:, :2], axis=1)
    gate_px = math.sqrt(chi2.ppf(0.999, 2)) * math.hypot(1.0, cat_sigma_m * f.cam.fx / f.p[2])
    assert np.all(err < 1.2 * gate_px)
    # Most of the detectable real craters are found (the matcher is not merely cautious).
    n_real = int(np.sum(f.truth >= 0))
    assert real.sum() >= 0.9 * n_real
    fix = pose_from_matches(m, f.det, f.X, f.cam, f.R_prior, f.p_prior, f.P, rng=0, cat_sigma_m=cat_sigma_m)
    assert fix is not None
    # No wrong association of a real detection survives into the fix (none was made above), and the
    # fix agrees with the true pose within its covariance.
    e = pose_difference(f.R, f.p, fix.R_cw, fix.p_w)
    assert e @ np.linalg.solve(fix.cov, e) < chi2.ppf(0.9999, 6)
    return int(real.sum()), int((~real & fix.inliers).sum())


CASES = {
    "nadir_3km": dict(),
    "oblique30_5km": dict(alt=5000.0, tilt_deg=30.0),
    "distortion_oblique15": dict(tilt_deg=15.0, dist=(-0.15, 0.03, 0.0005, -0.0005, 0.0)),
    "high_15km_fov20": dict(alt=15000.0, fov_deg=20.0, tilt_deg=5.0),
    "low_60m_fov60": dict(alt=60.0, fov_deg=60.0, tilt_deg=10.0, n_visible=120),
    "prior_pos_5pct": dict(sig_pos_rel=0.05),
}


@pytest.mark.parametrize("case", list(CASES))
def test_zero_wrong_associations_over_many_seeds(case: str) -> None:
    n_ok = n_coincidence = 0
    for seed in range(6):
        ok, coincidence = _check_frame(_frame(100 * seed + 7, **CASES[case]))
        n_ok += ok
        n_coincidence += coincidence
    assert n_coincidence <= 0.01 * n_ok


def test_map_position_errors_of_several_pixels() -> None:
    # 0.4 m map error seen from 150 m with f ~ 1400 px is ~4 px, four times the detection noise. The
    # gates widen accordingly, so chance coincidences grow with the gate area; _check_frame still
    # requires every real detection to get its own crater and the fix to agree with the true pose.
    for seed in range(4):
        f = _frame(seed + 300, alt=150.0, tilt_deg=20.0, n_visible=200, map_sigma_m=0.4)
        _check_frame(f, cat_sigma_m=0.4)


def test_three_sigma_prior_error() -> None:
    for seed in range(3):
        _check_frame(_frame(seed + 900, k_sigma=3.0, tilt_deg=20.0))


def test_clutter_only_gives_no_matches() -> None:
    # Detections unrelated to the map (all spurious): a consensus must not be invented from chance.
    for seed in range(4):
        f = _frame(seed + 500, spurious=0.0)
        rng = np.random.default_rng(seed)
        n = f.det.shape[0]
        a = np.exp(rng.uniform(np.log(2.5), np.log(40.0), n))
        det = np.c_[rng.uniform(0, 1023, (n, 2)), a, a * rng.uniform(0.6, 1.0, n), rng.uniform(-1.5, 1.5, n)]
        m = match_craters(det, f.X, f.radii, f.cam, f.R_prior, f.p_prior, f.P)
        assert m.n_matches == 0


@pytest.mark.parametrize(("sigma_spacing", "expect_matches"), [(1.0, False), (0.1, True)])
def test_repetitive_lattice_is_ambiguous_unless_the_prior_resolves_it(
    sigma_spacing: float, expect_matches: bool
) -> None:
    # Identical craters on a square lattice 50 px apart: a position prior of one spacing cannot tell
    # the lattice shifts apart, so the only safe answer is "ambiguous" (no pairs); a prior of a tenth
    # of a spacing can, and then every crater must get its own detection.
    cam = Camera.from_fov(1024, 1024, 40.0)
    alt = 3000.0
    gsd = alt / cam.fx
    spacing = 50.0 * gsd
    g = np.arange(-20, 21) * spacing
    X = np.stack(np.meshgrid(g, g, [0.0], indexing="ij"), -1).reshape(-1, 3)
    radii = np.full(len(X), 8.0 * gsd)
    eye = np.array([0.0, 0.0, alt])
    R = look_at(eye, [0.0, 0.0, 0.0], up=[0.0, 1.0, 0.0])
    tt = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    rim = X[:, None, :] + radii[:, None, None] * np.stack([np.cos(tt), np.sin(tt), 0 * tt], -1)[None]
    uv = cam.project(rim, R, eye)
    idx = np.flatnonzero(np.all(cam.in_image(uv), 1))
    for seed in range(3):
        rng = np.random.default_rng(seed)
        det = _fit_ellipses(uv[idx])
        det[:, :2] += rng.normal(0.0, 1.0, (idx.size, 2))
        sd = np.r_[np.full(3, 1e-4), np.full(3, sigma_spacing * spacing)]
        u = rng.normal(size=6)
        R_prior, p_prior = pose_compose(R, eye, 2.0 * sd * u / np.linalg.norm(u))
        m = match_craters(det, X, radii, cam, R_prior, p_prior, np.diag(sd**2))
        np.testing.assert_array_equal(m.cat_idx, idx[m.det_idx])
        if expect_matches:
            assert not m.ambiguous and m.n_matches >= 0.95 * idx.size
        else:
            assert m.n_matches == 0


def test_exact_prior_matches_everything_detected() -> None:
    f = _frame(11, tilt_deg=25.0, miss=0.0, spurious=0.0, k_sigma=0.0)
    m = match_craters(f.det, f.X, f.radii, f.cam, f.R, f.p, np.zeros((6, 6)))
    np.testing.assert_array_equal(m.cat_idx, f.truth[m.det_idx])
    assert m.n_matches >= 0.97 * f.det.shape[0]
    # With a zero prior covariance the pose is not moved.
    np.testing.assert_allclose(m.R_cw, f.R, atol=1e-12)


def test_bad_input_raises_input_error() -> None:
    f = _frame(3, n_visible=60)
    with pytest.raises(InputError, match="det"):
        match_craters(f.det[:, :4], f.X, f.radii, f.cam, f.R_prior, f.p_prior, f.P)
    with pytest.raises(InputError, match="cat_radii_m"):
        match_craters(f.det, f.X, f.radii[:-1], f.cam, f.R_prior, f.p_prior, f.P)
    with pytest.raises(InputError, match="P_pose"):
        match_craters(f.det, f.X, f.radii, f.cam, f.R_prior, f.p_prior, -f.P)
    with pytest.raises(InputError, match="R_cw"):
        match_craters(f.det, f.X, f.radii, f.cam, 2.0 * f.R_prior, f.p_prior, f.P)
