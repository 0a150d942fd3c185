"""Image ellipses of crater rims: projection of 3-D circles and ellipse <-> conic-matrix conversions.

Conventions (shared by the whole ``lunar.nav`` package):

- An image ellipse is a row ``[x, y, a, b, theta]``: centre (px, u right / v down, pixel centres at
  integers), semi-major and semi-minor axes ``a >= b`` (px), and ``theta`` (rad), the angle of the major
  axis measured from the image +x (u) axis toward +y (v), wrapped to ``[-pi/2, pi/2)``.
- A conic matrix ``C`` (3x3, symmetric) holds the points ``x = (u, v, 1)`` with ``x^T C x = 0``. The
  matrices returned here are normalised so that ``x^T C x = (x - c)^T M (x - c) - 1``: -1 at the centre,
  0 on the rim, positive outside, so the value at a point is a dimensionless algebraic residual.
- A crater rim is a circle of radius ``r`` (m) about its centre ``X_w`` (m, world frame) in the plane with
  unit normal ``n_w``. Poses follow :class:`kizuna.core.camera.Camera`: ``x_cam = R_cw (x_w - p_w)``.

The projection is exact for a pinhole camera: the plane of the rim maps to the image by the homography
``H = K R_cw [e1, e2, X_w - p_w]`` (``e1, e2`` an orthonormal basis of the plane), so the rim's dual conic
``diag(1, 1, -1/r^2)`` maps to ``H diag(1, 1, -1/r^2) H^T``, from which centre and axes follow without
any matrix inverse. With lens distortion the image of a circle is no longer an ellipse; the ellipse of
the ideal pinhole image is then carried into the distorted image to first order (its centre mapped
exactly by the distortion, its shape by the local Jacobian of the distortion).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from kizuna.core.camera import Camera
from kizuna.errors import InputError

__all__ = [
    "ellipse_to_conic",
    "conic_to_ellipse",
    "project_circles",
    "ellipse_residual",
    "distortion_jacobian",
]


def _as_ellipses(ellipses: ArrayLike, name: str) -> NDArray[np.float64]:
    e = np.asarray(ellipses, dtype=float)
    if e.ndim < 1 or e.shape[-1] != 5:
        raise InputError(
            f"{name}: expected shape (..., 5) rows [x_px, y_px, a_px, b_px, theta_rad], got {e.shape}"
        )
    return e


def _wrap_half_pi(theta: NDArray[np.float64]) -> NDArray[np.float64]:
    return (theta + 0.5 * np.pi) % np.pi - 0.5 * np.pi


def ellipse_to_conic(ellipses: ArrayLike) -> NDArray[np.float64]:
    """Return conic matrices (..., 3, 3) of image ellipses [x, y, a, b, theta] (px, rad); -1 at the centre."""
    e = _as_ellipses(ellipses, "ellipses")
    x0, y0, a, b, th = np.moveaxis(e, -1, 0)
    if np.any(~(a > 0)) or np.any(~(b > 0)):
        raise InputError("ellipses: expected positive semi-axes a, b (px)")
    c, s = np.cos(th), np.sin(th)
    ia2, ib2 = 1.0 / (a * a), 1.0 / (b * b)
    m11 = c * c * ia2 + s * s * ib2
    m22 = s * s * ia2 + c * c * ib2
    m12 = c * s * (ia2 - ib2)
    l1 = -(m11 * x0 + m12 * y0)
    l2 = -(m12 * x0 + m22 * y0)
    f = m11 * x0 * x0 + 2.0 * m12 * x0 * y0 + m22 * y0 * y0 - 1.0
    return np.stack(
        [np.stack([m11, m12, l1], -1), np.stack([m12, m22, l2], -1), np.stack([l1, l2, f], -1)],
        -2,
    )


def conic_to_ellipse(conics: ArrayLike) -> NDArray[np.float64]:
    """Return ellipses [x, y, a, b, theta] (px, rad) of conic matrices (..., 3, 3), any scale; NaN if none."""
    C = np.asarray(conics, dtype=float)
    if C.ndim < 2 or C.shape[-2:] != (3, 3):
        raise InputError(f"conics: expected shape (..., 3, 3), got {C.shape}")
    C = 0.5 * (C + np.swapaxes(C, -1, -2))
    p, q, s = C[..., 0, 0], C[..., 0, 1], C[..., 1, 1]
    l1, l2, f = C[..., 0, 2], C[..., 1, 2], C[..., 2, 2]
    det = p * s - q * q
    with np.errstate(divide="ignore", invalid="ignore"):
        x0 = (-s * l1 + q * l2) / det
        y0 = (q * l1 - p * l2) / det
        k = f + l1 * x0 + l2 * y0  # conic value at the centre
        # Normalise to (x - c)^T M (x - c) = 1: M = C[:2, :2] / (-k).
        mp, mq, ms = p / -k, q / -k, s / -k
        mean = 0.5 * (mp + ms)
        half = np.sqrt(0.25 * (mp - ms) ** 2 + mq * mq)
        lam_small, lam_big = mean - half, mean + half
        ok = (det > 0) & (lam_small > 0) & np.isfinite(lam_small)
        a = 1.0 / np.sqrt(np.where(ok, lam_small, np.nan))
        b = 1.0 / np.sqrt(np.where(ok, lam_big, np.nan))
        # The major axis is the eigenvector of M with the smaller eigenvalue.
        th = _wrap_half_pi(0.5 * np.arctan2(-2.0 * mq, ms - mp))
    out = np.stack([x0, y0, a, b, th], -1)
    out[~ok] = np.nan
    return out


def ellipse_residual(ellipses: ArrayLike, uv: ArrayLike) -> NDArray[np.float64]:
    """Return the algebraic residual (x - c)^T M (x - c) - 1 (dimensionless) of points uv (px) on ellipses.

    ``ellipses`` (..., 5) and ``uv`` (..., 2) broadcast; the residual is 0 on the rim, -1 at the centre.
    """
    C = ellipse_to_conic(ellipses)
    uv = np.asarray(uv, dtype=float)
    x = np.concatenate([uv, np.ones(uv.shape[:-1] + (1,))], -1)
    return np.einsum("...i,...ij,...j->...", x, C, x)


def distortion_jacobian(camera: Camera, xn: ArrayLike) -> NDArray[np.float64]:
    """Return d(distorted)/d(undistorted) normalised coordinates (..., 2, 2) of the Brown-Conrady model."""
    xn = np.asarray(xn, dtype=float)
    out = np.zeros(xn.shape[:-1] + (2, 2))
    if not camera.has_distortion:
        out[..., 0, 0] = 1.0
        out[..., 1, 1] = 1.0
        return out
    k1, k2, p1, p2, k3 = camera.dist
    x, y = xn[..., 0], xn[..., 1]
    r2 = x * x + y * y
    rad = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    drad = k1 + r2 * (2.0 * k2 + 3.0 * k3 * r2)  # d(rad)/d(r2)
    out[..., 0, 0] = rad + 2.0 * x * x * drad + 2.0 * p1 * y + 6.0 * p2 * x
    out[..., 0, 1] = 2.0 * x * y * drad + 2.0 * p1 * x + 2.0 * p2 * y
    out[..., 1, 0] = out[..., 0, 1]
    out[..., 1, 1] = rad + 2.0 * y * y * drad + 6.0 * p1 * y + 2.0 * p2 * x
    return out


def _plane_basis(n: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    helper = np.where((np.abs(n[..., 0]) < 0.9)[..., None], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    e2 = np.cross(n, helper)
    e2 /= np.linalg.norm(e2, axis=-1, keepdims=True)
    e1 = np.cross(e2, n)
    return e1, e2


def project_circles(
    centres_w: ArrayLike,
    radii_m: ArrayLike,
    camera: Camera,
    R_cw: ArrayLike,
    p_w: ArrayLike,
    normals_w: ArrayLike = (0.0, 0.0, 1.0),
) -> NDArray[np.float64]:
    """Return image ellipses (N, 5) [x, y, a, b, theta] (px, rad) of 3-D circles (world frame, m) from a pose.

    ``centres_w`` (N, 3) and ``normals_w`` (3,) or (N, 3) are in the world frame, ``radii_m`` (N,) in
    metres; the pose is ``x_cam = R_cw (x_w - p_w)``. Rows are NaN where the circle is not entirely in
    front of the camera (its image is then not an ellipse). Exact for a pinhole camera; with distortion
    the ellipse is mapped into the distorted image to first order (see the module docstring).
    """
    X = np.asarray(centres_w, dtype=float)
    if X.ndim != 2 or X.shape[1] != 3:
        raise InputError(f"centres_w: expected shape (N, 3) in metres, got {X.shape}")
    r = np.broadcast_to(np.asarray(radii_m, dtype=float), X.shape[:1])
    if np.any(~(r > 0)):
        raise InputError("radii_m: expected positive finite radii (m)")
    n = np.broadcast_to(np.asarray(normals_w, dtype=float), X.shape)
    nn = np.linalg.norm(n, axis=-1, keepdims=True)
    if np.any(~(nn > 0)):
        raise InputError("normals_w: expected non-zero normal vectors")
    n = n / nn
    R = np.asarray(R_cw, dtype=float)
    p = np.asarray(p_w, dtype=float)
    if R.shape != (3, 3) or p.shape != (3,):
        raise InputError(f"pose: expected R_cw (3, 3) and p_w (3,), got {R.shape} and {p.shape}")
    e1, e2 = _plane_basis(n)
    # Columns of H = K R [e1, e2, X - p]; keep the camera-frame vectors and apply K afterwards.
    g1, g2, g3 = e1 @ R.T, e2 @ R.T, (X - p) @ R.T
    r2 = r * r

    # Dual conic in normalised camera coordinates: D = r^2 (g1 g1^T + g2 g2^T) - g3 g3^T (entries as needed).
    def dual(i: int, j: int) -> NDArray[np.float64]:
        return r2 * (g1[:, i] * g1[:, j] + g2[:, i] * g2[:, j]) - g3[:, i] * g3[:, j]

    d33 = dual(2, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (d33 < 0.0) & (g3[:, 2] > 0.0)  # the whole circle lies on one side, the centre in front
        d33s = np.where(ok, d33, np.nan)
        cx = dual(0, 2) / d33s
        cy = dual(1, 2) / d33s
        # Shape matrix S = M^-1 (eigenvalues a^2, b^2) in normalised coordinates.
        s11 = -dual(0, 0) / d33s + cx * cx
        s22 = -dual(1, 1) / d33s + cy * cy
        s12 = -dual(0, 1) / d33s + cx * cy
    xn = np.stack([cx, cy], -1)
    if camera.has_distortion:
        # Carry the shape through the local Jacobian of the distortion (first order).
        Jd = distortion_jacobian(camera, xn)
        S = np.stack([np.stack([s11, s12], -1), np.stack([s12, s22], -1)], -2)
        S = Jd @ S @ np.swapaxes(Jd, -1, -2)
        s11, s12, s22 = S[:, 0, 0], S[:, 0, 1], S[:, 1, 1]
        xd = camera.distort(xn)
    else:
        xd = xn
    u0 = camera.fx * xd[:, 0] + camera.cx
    v0 = camera.fy * xd[:, 1] + camera.cy
    p_ = camera.fx * camera.fx * s11
    q_ = camera.fx * camera.fy * s12
    s_ = camera.fy * camera.fy * s22
    mean = 0.5 * (p_ + s_)
    half = np.sqrt(0.25 * (p_ - s_) ** 2 + q_ * q_)
    with np.errstate(invalid="ignore"):
        a = np.sqrt(mean + half)
        b = np.sqrt(mean - half)
    th = _wrap_half_pi(0.5 * np.arctan2(2.0 * q_, p_ - s_))
    out = np.stack([u0, v0, a, b, th], -1)
    bad = ~ok | ~np.all(np.isfinite(out), axis=-1) | ~(b > 0)
    out[bad] = np.nan
    return out
