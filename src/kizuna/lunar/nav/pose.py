"""Camera pose from crater centres: P3P (Grunert), RANSAC, Levenberg-Marquardt refinement and covariance.

Pose: ``(R_cw, p_w)`` with ``x_cam = R_cw (x_w - p_w)`` as in :class:`kizuna.core.camera.Camera`; the
world frame is the landing-site frame L (x east, y north, z up, m).

Pose error convention (used by every 6x6 covariance in ``lunar.nav``): the error state is
``delta = [dtheta (rad, rotation vector in L), dp (m, in L)]`` and a pose ``a`` equals ``b (+) delta`` when

    R_wc_a = Exp(dtheta) R_wc_b,  i.e.  R_cw_a = R_cw_b Exp(-dtheta),   and   p_a = p_b + dp,

with ``R_wc = R_cw^T`` (the camera attitude in L) and ``Exp`` the rotation-vector exponential. A
covariance ``P`` of a pose estimate is the covariance of ``delta`` in ``true = estimate (+) delta``.

Method: bearings are undistorted through the camera model; RANSAC draws minimal sets of three points,
solves each with Grunert's P3P (up to four poses, from the quartic in Haralick et al. 1994, "Review and
analysis of solutions of the three point perspective pose estimation problem", IJCV 13(3)), scores all
points (MSAC), and keeps the best; Levenberg-Marquardt then minimises the pixel reprojection error of the
inliers through the full camera model (distortion included) with an analytic Jacobian. The covariance is
``s0^2 (J^T W J)^-1`` with ``W = diag(1 / sigma_px^2)`` (per point) and the a posteriori variance factor
``s0 = max(sqrt(RSS_w / (2 n - 6)), 0.5)`` from the weighted residuals, floored so that the assumed pixel
noise is never less than half its nominal value. For one common sigma_px this is ``s^2 (J^T J)^-1`` with
``s = max(sqrt(RSS / (2 n - 6)), 0.5 sigma_px)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import chi2

from kizuna.core.camera import Camera
from kizuna.core.rotations import matrix_to_quat, quat_to_matrix, quat_to_rotvec, rotvec_to_quat
from kizuna.errors import InputError
from kizuna.lunar.nav.conics import distortion_jacobian

if TYPE_CHECKING:
    from kizuna.lunar.nav.match import MatchResult

__all__ = [
    "PoseFix",
    "pose_compose",
    "pose_difference",
    "projection_jacobian",
    "p3p_grunert",
    "estimate_pose",
    "pose_from_matches",
]


@lru_cache(maxsize=64)
def _chi2_ppf(prob: float, dof: int) -> float:
    return float(chi2.ppf(prob, dof))


# -- pose algebra -----------------------------------------------------------------------------------
def pose_compose(
    R_cw: ArrayLike, p_w: ArrayLike, delta: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return the pose (R_cw, p_w) (+) delta, delta = [dtheta (rad, in L), dp (m, in L)]."""
    d = np.asarray(delta, dtype=float)
    if d.shape != (6,):
        raise InputError(f"delta: expected shape (6,) [dtheta_rad (3), dp_m (3)], got {d.shape}")
    R_new = np.asarray(R_cw, dtype=float) @ quat_to_matrix(rotvec_to_quat(-d[:3]))
    return R_new, np.asarray(p_w, dtype=float) + d[3:]


def pose_difference(
    R_cw_a: ArrayLike, p_w_a: ArrayLike, R_cw_b: ArrayLike, p_w_b: ArrayLike
) -> NDArray[np.float64]:
    """Return delta (6,) [dtheta (rad, in L), dp (m, in L)] with pose a = pose b (+) delta."""
    Ra = np.asarray(R_cw_a, dtype=float)
    Rb = np.asarray(R_cw_b, dtype=float)
    dtheta = quat_to_rotvec(matrix_to_quat(Ra.T @ Rb))
    return np.concatenate([dtheta, np.asarray(p_w_a, dtype=float) - np.asarray(p_w_b, dtype=float)])


def projection_jacobian(
    X_w: ArrayLike, camera: Camera, R_cw: ArrayLike, p_w: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Return pixels (N, 2), their Jacobian (N, 2, 6) w.r.t. the pose error delta, and depths z (N,) (m).

    ``delta = [dtheta (rad, L), dp (m, L)]`` in the module convention; distortion is included. Points
    behind the camera give NaN.
    """
    X = np.asarray(X_w, dtype=float)
    R = np.asarray(R_cw, dtype=float)
    d = X - np.asarray(p_w, dtype=float)
    xc = d @ R.T
    z = xc[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        iz = 1.0 / np.where(z > 0, z, np.nan)
    xn = xc[:, :2] * iz[:, None]
    Dd = distortion_jacobian(camera, xn)
    A = np.zeros((X.shape[0], 2, 3))  # d(normalised)/d(camera point)
    A[:, 0, 0] = iz
    A[:, 1, 1] = iz
    A[:, :, 2] = -xn * iz[:, None]
    if camera.has_distortion:
        A = Dd @ A
    A = A * np.array([[camera.fx], [camera.fy]])  # d(pixel)/d(camera point)
    B = A @ R  # d(pixel)/d(world point)
    J = np.empty((X.shape[0], 2, 6))
    # x_cam = R Exp(-dtheta)(X - p): d x_cam / d dtheta = R [X - p]x, so row b -> b x (X - p).
    bx, by, bz = B[:, :, 0], B[:, :, 1], B[:, :, 2]
    dx, dy, dz = d[:, None, 0], d[:, None, 1], d[:, None, 2]
    J[:, :, 0] = by * dz - bz * dy
    J[:, :, 1] = bz * dx - bx * dz
    J[:, :, 2] = bx * dy - by * dx
    J[:, :, 3:] = -B
    xd = camera.distort(xn)
    uv = np.stack([camera.fx * xd[:, 0] + camera.cx, camera.fy * xd[:, 1] + camera.cy], -1)
    return uv, J, z


# -- P3P --------------------------------------------------------------------------------------------
def p3p_grunert(
    bearings_cam: ArrayLike, X_w: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Solve P3P by Grunert's method: up to 4 poses per triplet of camera bearings and world points (m).

    ``bearings_cam`` (..., 3, 3): rows are ray directions in the camera frame (any length);
    ``X_w`` (..., 3, 3): rows are the matching world points. Returns ``R_cw`` (..., 4, 3, 3), ``p_w``
    (..., 4, 3) and a validity mask (..., 4); invalid slots hold NaN.
    """
    f = np.asarray(bearings_cam, dtype=float)
    P = np.asarray(X_w, dtype=float)
    if f.shape[-2:] != (3, 3) or P.shape != f.shape:
        raise InputError(
            f"p3p: expected bearings and world points of equal shape (..., 3, 3), got {f.shape}, {P.shape}"
        )
    batch = f.shape[:-2]
    f = f.reshape(-1, 3, 3)
    P = P.reshape(-1, 3, 3)
    T = f.shape[0]
    f = f / np.linalg.norm(f, axis=-1, keepdims=True)
    a2 = np.sum((P[:, 1] - P[:, 2]) ** 2, -1)
    b2 = np.sum((P[:, 0] - P[:, 2]) ** 2, -1)
    c2 = np.sum((P[:, 0] - P[:, 1]) ** 2, -1)
    ca = np.sum(f[:, 1] * f[:, 2], -1)
    cb = np.sum(f[:, 0] * f[:, 2], -1)
    cg = np.sum(f[:, 0] * f[:, 1], -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = (a2 - c2) / b2
        q = (a2 + c2) / b2
        A4 = (m - 1.0) ** 2 - 4.0 * c2 / b2 * ca**2
        A3 = 4.0 * (m * (1.0 - m) * cb - (1.0 - q) * ca * cg + 2.0 * c2 / b2 * ca**2 * cb)
        A2 = 2.0 * (
            m**2
            - 1.0
            + 2.0 * m**2 * cb**2
            + 2.0 * (b2 - c2) / b2 * ca**2
            - 4.0 * q * ca * cb * cg
            + 2.0 * (b2 - a2) / b2 * cg**2
        )
        A1 = 4.0 * (-m * (1.0 + m) * cb + 2.0 * a2 / b2 * cg**2 * cb - (1.0 - q) * ca * cg)
        A0 = (1.0 + m) ** 2 - 4.0 * a2 / b2 * cg**2
        coef = np.stack([A4, A3, A2, A1, A0], -1)
        scale = np.max(np.abs(coef), axis=-1, keepdims=True)
        coef = coef / scale
        good = np.all(np.isfinite(coef), -1) & (np.abs(coef[:, 0]) > 1e-12)
        lead = np.where(good, coef[:, 0], 1.0)
        comp = np.zeros((T, 4, 4))
        comp[:, 0, :] = -np.where(good[:, None], coef[:, 1:], 0.0) / lead[:, None]
        comp[:, 1, 0] = comp[:, 2, 1] = comp[:, 3, 2] = 1.0
        roots = np.linalg.eigvals(comp)
        v = roots.real
        real = np.abs(roots.imag) <= 1e-6 * (1.0 + np.abs(v))
        # Two Newton steps polish the roots of the quartic.
        c = coef[:, :, None]
        for _ in range(2):
            pv = (((c[:, 0] * v + c[:, 1]) * v + c[:, 2]) * v + c[:, 3]) * v + c[:, 4]
            dv = ((4.0 * c[:, 0] * v + 3.0 * c[:, 1]) * v + 2.0 * c[:, 2]) * v + c[:, 3]
            step = np.where(np.abs(dv) > 1e-300, pv / dv, 0.0)
            v = v - np.where(np.abs(step) < 1e-2 * (1.0 + np.abs(v)), step, 0.0)
        mm, cbb, caa, cgg = m[:, None], cb[:, None], ca[:, None], cg[:, None]
        u = ((mm - 1.0) * v**2 - 2.0 * mm * cbb * v + 1.0 + mm) / (2.0 * (cgg - v * caa))
        s1sq = b2[:, None] / (1.0 + v**2 - 2.0 * v * cbb)
        s1 = np.sqrt(s1sq)
        dist = np.stack([s1, u * s1, v * s1], -1)  # (T, 4, 3) distances along the bearings
        valid = good[:, None] & real & (v > 0) & (u > 0) & (s1sq > 0) & np.all(np.isfinite(dist), -1)
        Q = dist[..., None] * f[:, None, :, :]  # (T, 4, 3, 3) points in the camera frame
        # Keep roots whose three points reproduce the world side lengths (rejects spurious roots).
        for i, j, L2 in ((1, 2, a2), (0, 2, b2), (0, 1, c2)):
            d2 = np.sum((Q[:, :, i] - Q[:, :, j]) ** 2, -1)
            valid &= np.abs(d2 - L2[:, None]) <= 1e-4 * L2[:, None]
    R, p = _align_triangles(np.broadcast_to(P[:, None], Q.shape), Q)
    valid &= np.all(np.isfinite(R), (-1, -2)) & np.all(np.isfinite(p), -1)
    R[~valid] = np.nan
    p[~valid] = np.nan
    return R.reshape(batch + (4, 3, 3)), p.reshape(batch + (4, 3)), valid.reshape(batch + (4,))


def _triangle_frame(Q: NDArray[np.float64]) -> NDArray[np.float64]:
    e1 = Q[..., 1, :] - Q[..., 0, :]
    e1 = e1 / np.linalg.norm(e1, axis=-1, keepdims=True)
    e3 = np.cross(e1, Q[..., 2, :] - Q[..., 0, :])
    e3 = e3 / np.linalg.norm(e3, axis=-1, keepdims=True)
    e2 = np.cross(e3, e1)
    return np.stack([e1, e2, e3], -1)  # columns


def _align_triangles(
    P: NDArray[np.float64], Q: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Rigid (R, p) with Q_i = R (P_i - p) from congruent triangles P (world) and Q (camera), (..., 3, 3)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        Fw = _triangle_frame(P)
        Fc = _triangle_frame(Q)
        R = Fc @ np.swapaxes(Fw, -1, -2)
        p = P.mean(-2) - np.einsum("...ji,...j->...i", R, Q.mean(-2))
    return R, p


# -- robust PnP -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PoseFix:
    """A camera pose fix: R_cw (3x3), p_w (m, in L), cov (6x6 of [dtheta rad in L, dp m in L]), inlier stats.

    ``sigma0_px``: the a posteriori standard deviation of a pixel coordinate (variance factor times the
    nominal sigma, RMS over inliers when sigmas differ); ``rms_px``: RMS reprojection error of an inlier
    (px, 2-D); ``cond``: condition number of the column-normalised normal matrix J^T W J (geometry).
    """

    R_cw: NDArray[np.float64]
    p_w: NDArray[np.float64]
    cov: NDArray[np.float64]
    inliers: NDArray[np.bool_]
    n_inliers: int
    rms_px: float
    sigma0_px: float
    cond: float


def _exp_rotvec(phi: NDArray[np.float64]) -> NDArray[np.float64]:
    return quat_to_matrix(rotvec_to_quat(phi))


def _lm_refine(
    R: NDArray[np.float64],
    p: NDArray[np.float64],
    X: NDArray[np.float64],
    uv: NDArray[np.float64],
    camera: Camera,
    sig: NDArray[np.float64],
    max_iter: int = 30,
) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """Minimise the reprojection error over sig (px per point; Levenberg-Marquardt); return pose and RSS."""
    wsig = np.repeat(1.0 / sig, 2)

    def evaluate(
        R_: NDArray[np.float64], p_: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
        pred, J, _ = projection_jacobian(X, camera, R_, p_)
        r = (pred - uv).reshape(-1) * wsig
        cost = float(r @ r) if np.all(np.isfinite(r)) else np.inf
        return r, J.reshape(-1, 6) * wsig[:, None], cost

    r, J, cost = evaluate(R, p)
    if not np.isfinite(cost):
        return R, p, cost
    lam = 1e-4
    for _ in range(max_iter):
        A = J.T @ J
        g = J.T @ r
        improved = False
        for _ in range(10):
            try:
                step = np.linalg.solve(A + lam * np.diag(np.diag(A) + 1e-12), -g)
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            R_new = R @ _exp_rotvec(-step[:3])
            p_new = p + step[3:]
            r_new, J_new, cost_new = evaluate(R_new, p_new)
            if cost_new < cost:
                R, p, r, J = R_new, p_new, r_new, J_new
                converged = cost - cost_new < 1e-10 * (cost + 1e-12)
                cost = cost_new
                lam = max(lam * 0.1, 1e-9)
                improved = True
                break
            lam *= 10.0
        if not improved or converged:
            break
    return R, p, cost


def _check_pose_inputs(uv: ArrayLike, X: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    uv = np.asarray(uv, dtype=float)
    X = np.asarray(X, dtype=float)
    if uv.ndim != 2 or uv.shape[1] != 2:
        raise InputError(f"uv_px: expected shape (K, 2) pixel coordinates, got {uv.shape}")
    if X.ndim != 2 or X.shape[1] != 3:
        raise InputError(f"X_w: expected shape (K, 3) world points in metres, got {X.shape}")
    if uv.shape[0] != X.shape[0]:
        raise InputError(
            f"uv_px and X_w: expected the same number of rows, got {uv.shape[0]} and {X.shape[0]}"
        )
    if not (np.all(np.isfinite(uv)) and np.all(np.isfinite(X))):
        raise InputError("uv_px, X_w: expected finite values")
    return uv, X


def _draw_triplets(rng: np.random.Generator, K: int, n: int) -> NDArray[np.int64]:
    out = np.empty((0, 3), dtype=np.int64)
    while out.shape[0] < n:
        idx = rng.integers(0, K, size=(2 * n, 3))
        ok = (idx[:, 0] != idx[:, 1]) & (idx[:, 0] != idx[:, 2]) & (idx[:, 1] != idx[:, 2])
        out = np.concatenate([out, idx[ok]])
    return out[:n]


def estimate_pose(
    uv_px: ArrayLike,
    X_w: ArrayLike,
    camera: Camera,
    R_prior: ArrayLike | None = None,
    p_prior: ArrayLike | None = None,
    sigma_px: float | ArrayLike = 1.0,
    ransac_threshold_px: float = 3.0,
    min_inliers: int = 5,
    rng: int | np.random.Generator | None = None,
    confidence: float = 0.999,
    max_iterations: int = 2000,
    max_cond: float = 1e10,
    inlier_prob: float = 0.9999,
) -> PoseFix | None:
    """Estimate the camera pose (R_cw, p_w in L, m) from pixels uv_px (K, 2) of world points X_w (K, 3, m).

    Robust: RANSAC over Grunert P3P minimal sets (MSAC score with ``ransac_threshold_px``, adaptive stop
    at ``confidence``), then Levenberg-Marquardt on all inliers, repeated until the inlier set is stable.
    A point is an inlier when its reprojection error is below ``ransac_threshold_px`` or passes the
    chi-square gate ``inlier_prob`` (2 dof) against its prediction covariance
    ``sigma_px^2 (I + J_i (J^T J)^-1 J_i^T)``: a gate that cuts into the Gaussian tail would drop good
    points, and the remaining fit would then be worse than its covariance says. The prior
    pose, when given, is scored as one more hypothesis and breaks ties between equally supported
    solutions. Returns None when fewer than ``min_inliers`` inliers remain or the geometry is
    degenerate (condition number of the column-normalised J^T J above ``max_cond``). ``rng`` seeds the
    sampling (numpy convention: None draws fresh entropy).
    """
    uv, X = _check_pose_inputs(uv_px, X_w)
    sig = np.broadcast_to(np.asarray(sigma_px, dtype=float), uv.shape[:1]).copy()
    if not (np.all(np.isfinite(sig)) and np.all(sig > 0)):
        raise InputError("sigma_px: expected positive pixel noise (px), a scalar or one per point")
    if not ransac_threshold_px > 0:
        raise InputError(f"ransac_threshold_px={ransac_threshold_px}: expected a positive threshold (px)")
    if min_inliers < 4:
        raise InputError(
            f"min_inliers={min_inliers}: expected at least 4 (6 pose parameters need redundancy)"
        )
    if (R_prior is None) != (p_prior is None):
        raise InputError("R_prior, p_prior: expected both or neither")
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence={confidence}: expected a value in (0, 1)")
    if not 0.0 < inlier_prob < 1.0:
        raise InputError(f"inlier_prob={inlier_prob}: expected a probability in (0, 1)")
    K = uv.shape[0]
    if K < min_inliers:
        return None
    rng = np.random.default_rng(rng)
    f = camera.rays_cam(uv)
    xm = f[:, :2] / f[:, 2:]
    # Consensus threshold per point: ransac_threshold_px, widened to 3 sigma for noisier points.
    thr_px = np.maximum(ransac_threshold_px, 3.0 * sig)
    thr_n2 = (thr_px / np.sqrt(camera.fx * camera.fy)) ** 2

    def score(
        R: NDArray[np.float64], p: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        xc = (X[None] - p[:, None, :]) @ np.swapaxes(R, -1, -2)
        z = xc[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            e2 = np.sum((xc[..., :2] / z[..., None] - xm) ** 2, -1)
        e2 = np.where((z > 0) & np.isfinite(e2), e2, np.inf)
        inl = e2 < thr_n2
        return np.sum(np.minimum(e2, thr_n2), -1), np.sum(inl, -1)

    best_cost, best_count = np.inf, -1
    best_R = best_p = None
    if R_prior is not None:
        R0 = np.asarray(R_prior, dtype=float)[None]
        p0 = np.asarray(p_prior, dtype=float)[None]
        c0, n0 = score(R0, p0)
        best_cost, best_count, best_R, best_p = float(c0[0]), int(n0[0]), R0[0], p0[0]

    def n_needed(count: int) -> int:
        w = count / K
        if w >= 1.0:
            return 1
        return int(np.ceil(np.log(1.0 - confidence) / np.log(max(1.0 - w**3, 1e-12))))

    drawn = 0
    needed = n_needed(best_count) if best_count > 0 else max_iterations
    while drawn < min(needed, max_iterations):
        batch = int(np.clip(needed - drawn, 16, 64))
        tri = _draw_triplets(rng, K, batch)
        drawn += batch
        Pw = X[tri]
        area = np.linalg.norm(np.cross(Pw[:, 1] - Pw[:, 0], Pw[:, 2] - Pw[:, 0]), axis=-1)
        side = np.max(np.sum((Pw - np.roll(Pw, 1, axis=1)) ** 2, -1), -1)
        keep = area > 1e-4 * side
        if not np.any(keep):
            continue
        Rs, ps, ok = p3p_grunert(f[tri[keep]], Pw[keep])
        Rs, ps = Rs[ok], ps[ok]
        if Rs.shape[0] == 0:
            continue
        cost, count = score(Rs, ps)
        if R_prior is not None:
            # Among hypotheses as well supported as the best, prefer the one nearest the prior.
            best_rows = count == count.max()
            top = np.flatnonzero(best_rows & (cost <= 2.0 * cost[best_rows].min() + 1e-30))
            # Rotation angle between each candidate and the prior: cos = (trace(R_k^T R_prior) - 1) / 2.
            cos_angle = 0.5 * (np.einsum("kij,ij->k", Rs[top], R0[0]) - 1.0)
            k = int(top[int(np.argmax(cos_angle))])
        else:
            k = int(np.argmin(cost))
        if count[k] > best_count or (count[k] == best_count and cost[k] < best_cost):
            best_cost, best_count, best_R, best_p = float(cost[k]), int(count[k]), Rs[k], ps[k]
            needed = n_needed(best_count)
    if best_R is None or best_count < min(min_inliers, 3):
        return None
    R, p = best_R, best_p
    g2 = _chi2_ppf(inlier_prob, 2)
    inl = None
    prev_N = None
    for _ in range(6):
        pred, J_all, z = projection_jacobian(X, camera, R, p)
        res = pred - uv
        err2 = np.sum(res**2, -1)
        if prev_N is None:
            new_inl = err2 < np.maximum(thr_px**2, g2 * sig**2)
        else:
            # Residuals are tested against their prediction covariance sigma^2 (I + J_i N^-1 J_i^T):
            # a point left out of the fit has a larger residual than one inside it, and would otherwise
            # stay out once dropped.
            try:
                Ninv = np.linalg.inv(prev_N)
            except np.linalg.LinAlgError:
                return None
            C = np.einsum("kia,ab,kjb->kij", J_all, Ninv, J_all)
            C[:, 0, 0] += sig**2
            C[:, 1, 1] += sig**2
            detC = C[:, 0, 0] * C[:, 1, 1] - C[:, 0, 1] ** 2
            d2 = (
                C[:, 1, 1] * res[:, 0] ** 2
                - 2 * C[:, 0, 1] * res[:, 0] * res[:, 1]
                + C[:, 0, 0] * res[:, 1] ** 2
            ) / detC
            new_inl = (err2 < thr_px**2) | (d2 < g2)
        new_inl &= (z > 0) & np.isfinite(err2)
        if inl is not None and np.array_equal(new_inl, inl):
            break
        inl = new_inl
        if inl.sum() < min_inliers:
            return None
        R, p, _ = _lm_refine(R, p, X[inl], uv[inl], camera, sig[inl])
        _, Jin, _ = projection_jacobian(X[inl], camera, R, p)
        Jin = (Jin / sig[inl, None, None]).reshape(-1, 6)
        prev_N = Jin.T @ Jin
    pred, J, z = projection_jacobian(X[inl], camera, R, p)
    if not np.all(z > 0):
        return None
    r = pred - uv[inl]
    n = int(inl.sum())
    si = sig[inl]
    Jw = (J / si[:, None, None]).reshape(-1, 6)
    N = Jw.T @ Jw
    d = np.sqrt(np.diag(N))
    if not np.all(d > 0):
        return None
    cond = float(np.linalg.cond(N / np.outer(d, d)))
    if not np.isfinite(cond) or cond > max_cond:
        return None
    # A posteriori variance factor (dimensionless), floored at 0.5^2: cov = s0^2 (J^T W J)^-1.
    s0 = max(float(np.sqrt(np.sum((r / si[:, None]) ** 2) / max(2 * n - 6, 1))), 0.5)
    cov = s0**2 * np.linalg.inv(N)
    cov = 0.5 * (cov + cov.T)
    return PoseFix(
        R_cw=R,
        p_w=p,
        cov=cov,
        inliers=inl,
        n_inliers=n,
        rms_px=float(np.sqrt(np.sum(r**2) / n)),
        sigma0_px=float(s0 * np.sqrt(np.mean(si**2))),
        cond=cond,
    )


def pose_from_matches(
    match: MatchResult,
    det: ArrayLike,
    cat_centres_w: ArrayLike,
    camera: Camera,
    R_prior: ArrayLike,
    p_prior: ArrayLike,
    P_prior: ArrayLike,
    sigma_px: float = 1.0,
    ransac_threshold_px: float = 3.0,
    min_inliers: int = 5,
    gate_prob: float = 0.999,
    rng: int | np.random.Generator | None = None,
    cat_sigma_m: ArrayLike = 0.0,
    sigma_rel: float = 0.0,
) -> PoseFix | None:
    """Estimate the pose (L, m) from crater matches; None if it fails or disagrees with the prior pose.

    The detected ellipse centres are corrected for the perspective offset between an ellipse centre and
    the image of the rim centre (``match.centre_bias_px``) and paired with the catalogue rim centres; the
    pose refined by the association seeds the RANSAC. ``cat_sigma_m`` (scalar or one per catalogue row):
    isotropic 1-sigma error of the catalogue rim centres (m), added to each point's pixel noise.
    ``sigma_rel``: the part of a detected centre's noise that grows with the crater, as a fraction of its
    semi-major axis (a rim fit on a large, worn rim wanders by a share of its radius), added in
    quadrature to ``sigma_px``. The fix
    is rejected when ``delta^T (P_prior + cov)^-1 delta`` exceeds the chi-square quantile ``gate_prob``
    (6 dof), with ``delta = fix (-) prior`` in the module convention.
    """
    det = np.asarray(det, dtype=float)
    if det.ndim != 2 or det.shape[1] < 2:
        raise InputError(
            f"det: expected shape (M, 5) rows [x_px, y_px, a_px, b_px, theta_rad], got {det.shape}"
        )
    Xc = np.asarray(cat_centres_w, dtype=float)
    P0 = np.asarray(P_prior, dtype=float)
    if P0.shape != (6, 6):
        raise InputError(f"P_prior: expected a 6x6 covariance, got {P0.shape}")
    if not 0.0 < gate_prob < 1.0:
        raise InputError(f"gate_prob={gate_prob}: expected a probability in (0, 1)")
    if not sigma_px > 0:
        raise InputError(f"sigma_px={sigma_px}: expected a positive pixel noise")
    cat_var = np.broadcast_to(np.asarray(cat_sigma_m, dtype=float), Xc.shape[:1]) ** 2
    if not (np.all(np.isfinite(cat_var)) and np.all(cat_var >= 0)):
        raise InputError("cat_sigma_m: expected finite values >= 0 (m), a scalar or one per crater")
    if match.det_idx.size < min_inliers:
        return None
    if not (np.isfinite(sigma_rel) and sigma_rel >= 0):
        raise InputError(f"sigma_rel={sigma_rel}: expected a fraction >= 0 of the semi-major axis")
    uv = det[match.det_idx, :2] - match.centre_bias_px
    Xm = Xc[match.cat_idx]
    var_px = np.full(len(uv), sigma_px**2)
    if sigma_rel > 0 and det.shape[1] >= 3:
        var_px += (sigma_rel * det[match.det_idx, 2]) ** 2
    if np.any(cat_var[match.cat_idx] > 0):
        # Map error seen in the image: sigma_X^2 |d uv / d X_w|_F^2 / 2 per coordinate.
        _, Jm, _ = projection_jacobian(Xm, camera, match.R_cw, match.p_w)
        var_px += 0.5 * cat_var[match.cat_idx] * np.sum(Jm[:, :, 3:] ** 2, (1, 2))
    sig = np.sqrt(var_px)
    fix = estimate_pose(
        uv,
        Xm,
        camera,
        R_prior=match.R_cw,
        p_prior=match.p_w,
        sigma_px=sig,
        ransac_threshold_px=ransac_threshold_px,
        min_inliers=min_inliers,
        rng=rng,
    )
    if fix is None:
        return None
    delta = pose_difference(fix.R_cw, fix.p_w, R_prior, p_prior)
    S = P0 + fix.cov
    try:
        d2 = float(delta @ np.linalg.solve(S, delta))
    except np.linalg.LinAlgError:
        return None
    if not d2 <= _chi2_ppf(gate_prob, 6):
        return None
    return fix
