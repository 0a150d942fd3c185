"""Tracking-mode association of detected crater ellipses with a crater catalogue, given a predicted pose.

Frames and conventions: world frame L (landing-site local frame, x east, y north, z up, m); pose
``(R_cw, p_w)`` with ``x_cam = R_cw (x_w - p_w)``; image ellipses ``[x, y, a, b, theta]`` (px, rad) as
in :mod:`kizuna.lunar.nav.conics`; pose covariances are 6x6 over ``delta = [dtheta (rad, rotation vector
in L), dp (m, in L)]`` with ``R_cw_true = R_cw_est Exp(-dtheta)`` and ``p_true = p_est + dp`` (see
:mod:`kizuna.lunar.nav.pose`).

Method. A pose error moves every predicted crater together, so gating each crater on its own is weak
when the pose is uncertain. The association runs in three stages:

1. *Wide gate.* Catalogue rims are projected with the predicted pose (exact conic projection); their
   centre covariance ``S_j = J_j P J_j^T + N_j`` (``J_j`` the analytic projection Jacobian, ``N_j`` the
   detection noise plus any map error) and log-size variance are propagated. A pair (detection i,
   crater j) is a candidate when its centre offset passes the chi-square gate with **6** degrees of
   freedom (the pose error is one 6-vector, so with probability ``gate_prob`` all true pairs pass
   together) and its log-size ratio passes a 1-dof gate.
2. *Common correction.* Every candidate pair, alone with the prior, gives a one-point MAP pose
   correction ``K_j r_k`` (the idea of Civera et al. 2010, "1-point RANSAC for EKF filtering") and the
   shift of the image centre it implies. True pairs agree on that shift, up to the one pose mode that a
   single point leaves open (typically altitude, i.e. scale, or roll); a Hough vote over (shift, amplitude
   of that mode) finds where they meet. Inside each of the best few peaks a small RANSAC over two-pair
   MAP corrections picks the consensus, each crater gated with its own post-correction covariance.
3. *Tight re-association.* From each consensus an iterated MAP (Gauss-Newton from the prior; the first
   pass Huber-weighted with a 9x inflated gate) re-estimates the pose; craters are re-predicted with the
   posterior covariance, gated with 2 dof and assigned one-to-one by ``linear_sum_assignment`` with a
   "leave unassigned" option. Pairs that an alternative (another crater, another detection, or a swap)
   explains almost as well (cost within ``ambiguity_margin``) are dropped. This repeats until stable.

The result is refused (no pairs) when its number of matches is not significantly above what chance gives
(Poisson tail below ``false_alarm`` for the expected number of size-compatible detections falling at
random into the tight gates), or when a different set of correspondences is nearly as well supported
(``ambiguous``, e.g. a regular pattern of similar craters). A spurious detection that falls,
size-compatible, inside the tight gate of a catalogue crater that was not itself detected cannot be told
apart from a detection of it; its error is then bounded by the gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import uniform_filter
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.stats import chi2, poisson

from kizuna.core.camera import Camera
from kizuna.errors import InputError
from kizuna.lunar.nav.conics import project_circles
from kizuna.lunar.nav.pose import pose_compose, pose_difference, projection_jacobian

__all__ = ["MatchResult", "match_craters"]


@lru_cache(maxsize=64)
def _chi2_ppf(prob: float, dof: int) -> float:
    return float(chi2.ppf(prob, dof))


@dataclass(frozen=True)
class MatchResult:
    """Associations of detections (rows of det) with catalogue craters, and the pose they imply (L, m).

    ``mahalanobis``: centre Mahalanobis distance (dimensionless, not squared) in the final gate;
    ``predicted_uv``: ellipse centres (px) predicted with the input pose; ``centre_bias_px``: predicted
    ellipse centre minus the image of the rim centre (px) at the refined pose, to subtract from a
    detected centre to get an image of the catalogue point; ``R_cw``, ``p_w``, ``P_pose``: the pose
    refined by the association (iterated MAP with the prior) and its linearised 6x6 covariance
    (convention of :mod:`kizuna.lunar.nav.pose`); ``n_support``: detections behind the winning
    correction; ``ambiguous``: True when two different corrections were about equally supported (no
    pairs are then returned).
    """

    det_idx: NDArray[np.int64]
    cat_idx: NDArray[np.int64]
    mahalanobis: NDArray[np.float64]
    predicted_uv: NDArray[np.float64]
    centre_bias_px: NDArray[np.float64]
    R_cw: NDArray[np.float64]
    p_w: NDArray[np.float64]
    P_pose: NDArray[np.float64]
    n_support: int
    ambiguous: bool

    @property
    def n_matches(self) -> int:
        """Return the number of associated pairs."""
        return int(self.det_idx.size)


@dataclass
class _Prediction:
    idx: NDArray[np.int64]  # catalogue rows
    ell: NDArray[np.float64]  # (N, 5) predicted ellipses
    uv_pt: NDArray[np.float64]  # (N, 2) image of the rim centre
    J: NDArray[np.float64]  # (N, 2, 6)
    S: NDArray[np.float64]  # (N, 2, 2) centre covariance
    Nn: NDArray[np.float64]  # (N, 2, 2) measurement noise of a centre: detection plus map error
    var_log: NDArray[np.float64]  # (N,) variance of log apparent size (without detection term)


def _predict(
    idx: NDArray[np.int64],
    X: NDArray[np.float64],
    radii: NDArray[np.float64],
    normal: NDArray[np.float64],
    camera: Camera,
    R: NDArray[np.float64],
    p: NDArray[np.float64],
    P: NDArray[np.float64],
    sigma_px: float,
    size_sigma_rel: float,
    cat_var: NDArray[np.float64],
) -> _Prediction:
    Xs = X[idx]
    ell = project_circles(Xs, radii[idx], camera, R, p, normal)
    uv_pt, J, z = projection_jacobian(Xs, camera, R, p)
    Nn = _noise_cov(J, sigma_px**2, cat_var[idx])
    S = _sandwich(J, P) + Nn
    # Apparent size ~ 1/depth: d log(a) / d delta = -(d z / d delta) / z.
    d = Xs - p
    g = np.concatenate([np.cross(R[2], d), np.broadcast_to(-R[2], d.shape)], -1) / -z[:, None]
    var_log = np.einsum("ni,ni->n", g @ P, g) + size_sigma_rel**2
    return _Prediction(idx, ell, uv_pt, J, S, Nn, var_log)


def _noise_cov(J: NDArray[np.float64], sig2: float, cat_var: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return the centre noise (N, 2, 2) (px^2): sig2 I plus map variance (m^2) times B B^T, B = duv/dX_w."""
    B = J[:, :, 3:]  # d uv / d p = -d uv / d X_w; the sign cancels in B B^T
    Nn = cat_var[:, None, None] * _sandwich(B, np.eye(3))
    Nn[:, 0, 0] += sig2
    Nn[:, 1, 1] += sig2
    return Nn


def _inv2(S: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    det = S[..., 0, 0] * S[..., 1, 1] - S[..., 0, 1] * S[..., 1, 0]
    inv = np.empty_like(S)
    inv[..., 0, 0] = S[..., 1, 1] / det
    inv[..., 1, 1] = S[..., 0, 0] / det
    inv[..., 0, 1] = -S[..., 0, 1] / det
    inv[..., 1, 0] = -S[..., 1, 0] / det
    return inv, det


def _mahal2(r: NDArray[np.float64], Sinv: NDArray[np.float64]) -> NDArray[np.float64]:
    return (
        Sinv[..., 0, 0] * r[..., 0] ** 2
        + 2.0 * Sinv[..., 0, 1] * r[..., 0] * r[..., 1]
        + Sinv[..., 1, 1] * r[..., 1] ** 2
    )


def _sandwich(J: NDArray[np.float64], P: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return J P J^T (N, 2, 2) for J (N, 2, k) and a common k x k P (one BLAS product, then row dots)."""
    JP = (J.reshape(-1, J.shape[-1]) @ P).reshape(J.shape)
    s00 = np.sum(JP[:, 0] * J[:, 0], -1)
    s01 = np.sum(JP[:, 0] * J[:, 1], -1)
    s11 = np.sum(JP[:, 1] * J[:, 1], -1)
    return np.stack([np.stack([s00, s01], -1), np.stack([s01, s11], -1)], -2)


def _mul22(A: NDArray[np.float64], B: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return A B for stacks of 2x2 (A) and 2xk (B) matrices, written out (faster than matmul here)."""
    return A[..., :, 0, None] * B[..., None, 0, :] + A[..., :, 1, None] * B[..., None, 1, :]


def _check_inputs(
    det: ArrayLike, X: ArrayLike, radii: ArrayLike, R: ArrayLike, p: ArrayLike, P: ArrayLike
) -> tuple[NDArray[np.float64], ...]:
    det = np.asarray(det, dtype=float)
    if det.ndim != 2 or det.shape[1] != 5:
        raise InputError(
            f"det: expected shape (M, 5) rows [x_px, y_px, a_px, b_px, theta_rad], got {det.shape}"
        )
    if not np.all(np.isfinite(det)) or np.any(~(det[:, 3] > 0)) or np.any(det[:, 2] < det[:, 3]):
        raise InputError("det: expected finite rows with semi-axes a >= b > 0 (px)")
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 3 or not np.all(np.isfinite(X)):
        raise InputError(f"cat_centres_w: expected finite shape (N, 3) rim centres in L (m), got {X.shape}")
    radii = np.asarray(radii, dtype=float)
    if radii.shape != X.shape[:1] or np.any(~(radii > 0)) or not np.all(np.isfinite(radii)):
        raise InputError(
            f"cat_radii_m: expected {X.shape[0]} positive finite radii (m), got shape {radii.shape}"
        )
    R = np.asarray(R, dtype=float)
    if R.shape != (3, 3) or not np.allclose(R @ R.T, np.eye(3), atol=1e-6):
        raise InputError("R_cw: expected a 3x3 rotation matrix (world L to camera)")
    p = np.asarray(p, dtype=float)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise InputError(f"p_w: expected a finite camera position (3,) in L (m), got shape {p.shape}")
    P = np.asarray(P, dtype=float)
    if P.shape != (6, 6) or not np.all(np.isfinite(P)):
        raise InputError(f"P_pose: expected a finite 6x6 covariance, got shape {P.shape}")
    P = 0.5 * (P + P.T)
    if np.linalg.eigvalsh(P)[0] < -1e-9 * max(1.0, float(np.abs(P).max())):
        raise InputError("P_pose: expected a positive semi-definite covariance")
    return det, X, radii, R, p, P


def _empty(
    R: NDArray[np.float64], p: NDArray[np.float64], P: NDArray[np.float64], support: int, ambiguous: bool
) -> MatchResult:
    return MatchResult(
        det_idx=np.zeros(0, dtype=np.int64),
        cat_idx=np.zeros(0, dtype=np.int64),
        mahalanobis=np.zeros(0),
        predicted_uv=np.zeros((0, 2)),
        centre_bias_px=np.zeros((0, 2)),
        R_cw=R,
        p_w=p,
        P_pose=P,
        n_support=support,
        ambiguous=ambiguous,
    )


def _sym_outer(J: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rows (G, 3, 36) with (J P J^T)[00, 01, 11] = rows @ vec(P), for many 2x6 Jacobians J (G, 2, 6)."""
    G = J.shape[0]
    o00 = (J[:, 0, :, None] * J[:, 0, None, :]).reshape(G, 36)
    o01 = (J[:, 0, :, None] * J[:, 1, None, :]).reshape(G, 36)
    o11 = (J[:, 1, :, None] * J[:, 1, None, :]).reshape(G, 36)
    return np.stack([o00, o01, o11], 1)


def _assign(
    pi: NDArray[np.int64],
    pj: NDArray[np.int64],
    cost: NDArray[np.float64],
    c_unassigned: float,
    margin: float,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """One-to-one assignment on sparse candidate pairs; drops pairs an alternative explains almost as well.

    Each connected group of candidates is solved by ``linear_sum_assignment`` with a "leave unassigned"
    option of cost ``c_unassigned``. A kept pair is dropped when some other configuration (the row takes
    another column, the column another row, or two rows swap) costs less than ``margin`` more.
    """
    if pi.size == 0:
        return pi, pj
    rows, ri = np.unique(pi, return_inverse=True)
    cols, ci = np.unique(pj, return_inverse=True)
    nr, nc = rows.size, cols.size
    graph = coo_matrix((np.ones(pi.size), (ri, nr + ci)), shape=(nr + nc, nr + nc))
    _, label = connected_components(graph, directed=False)
    comp = label[ri]
    per_comp = np.bincount(comp)
    chosen = per_comp[comp] == 1  # isolated candidate pairs are taken as they are
    multi = np.flatnonzero(per_comp[comp] > 1)
    if multi.size:
        order = multi[np.argsort(comp[multi], kind="stable")]
        bounds = np.flatnonzero(np.r_[True, comp[order][1:] != comp[order][:-1], True])
        for s, e in zip(bounds[:-1], bounds[1:], strict=True):
            k = order[s:e]
            rr, rinv = np.unique(ri[k], return_inverse=True)
            cc, cinv = np.unique(ci[k], return_inverse=True)
            C = np.full((rr.size, cc.size + rr.size), 1e9)
            C[rinv, cinv] = cost[k]
            C[np.arange(rr.size), cc.size + np.arange(rr.size)] = c_unassigned
            r_sel, c_sel = linear_sum_assignment(C)
            ok = c_sel < cc.size
            lookup = {(int(a), int(b)): int(kk) for a, b, kk in zip(rinv, cinv, k, strict=True)}
            for a, b in zip(r_sel[ok], c_sel[ok], strict=True):
                chosen[lookup[(int(a), int(b))]] = True
    sel = np.flatnonzero(chosen)
    if margin > 0 and sel.size:
        row_to_col = np.full(nr, -1)
        row_to_col[ri[sel]] = ci[sel]
        col_to_row = np.full(nc, -1)
        col_to_row[ci[sel]] = ri[sel]
        own_row = np.full(nr, np.inf)
        own_row[ri[sel]] = cost[sel]
        pair_cost = {(int(a), int(b)): float(c) for a, b, c in zip(ri, ci, cost, strict=True)}
        alt = np.flatnonzero(row_to_col[ri] != ci)  # candidate pairs outside the assignment
        bad = np.zeros(nr, dtype=bool)
        for k in alt:
            r, c = int(ri[k]), int(ci[k])
            own_c, other_r = int(row_to_col[r]), int(col_to_row[c])
            # Configuration change: row r takes column c; column c's owner falls back to r's column
            # (if it is a candidate) or to unassigned.
            before = (own_row[r] if own_c >= 0 else c_unassigned) + (
                own_row[other_r] if other_r >= 0 else 0.0
            )
            after = cost[k]
            if other_r >= 0:
                after += (
                    min(pair_cost.get((other_r, own_c), np.inf), c_unassigned) if own_c >= 0 else c_unassigned
                )
            if after - before < margin:
                if own_c >= 0:
                    bad[r] = True
                if other_r >= 0:
                    bad[other_r] = True
        sel = sel[~bad[ri[sel]]]
    return pi[sel], pj[sel]


def _map_update(
    J: NDArray[np.float64],
    res: NDArray[np.float64],
    e: NDArray[np.float64],
    P0: NDArray[np.float64],
    Ninv: NDArray[np.float64],
    w: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return the Gauss-Newton step of the MAP problem with prior P0, and the posterior (P0 may be singular).

    Minimises ``|e + eps|^2_{P0^-1} + sum_k w_k (r_k - J_k eps)^T Ninv_k (r_k - J_k eps)`` over the points
    k (J (K, 2, 6), res (K, 2), Ninv (K, 2, 2)); ``e`` is the current error from the prior.
    """
    # Whiten with the Cholesky factor of each 2x2 information matrix: Ninv = L L^T, rows L^T (J, r).
    a, b, c = Ninv[:, 0, 0], Ninv[:, 0, 1], Ninv[:, 1, 1]
    l00 = np.sqrt(a)
    l10 = b / l00
    l11 = np.sqrt(np.maximum(c - l10 * l10, 0.0))
    if w is not None:
        sw = np.sqrt(w)
        l00, l10, l11 = l00 * sw, l10 * sw, l11 * sw
    Jt = np.concatenate([l00[:, None] * J[:, 0] + l10[:, None] * J[:, 1], l11[:, None] * J[:, 1]])
    rt = np.concatenate([l00 * res[:, 0] + l10 * res[:, 1], l11 * res[:, 1]])
    A = Jt.T @ Jt
    M = np.eye(6) + P0 @ A
    eps = np.linalg.solve(M, P0 @ (Jt.T @ rt) - e)
    P_post = np.linalg.solve(M, P0)
    return eps, 0.5 * (P_post + P_post.T)


def match_craters(
    det: ArrayLike,
    cat_centres_w: ArrayLike,
    cat_radii_m: ArrayLike,
    camera: Camera,
    R_cw: ArrayLike,
    p_w: ArrayLike,
    P_pose: ArrayLike,
    sigma_px: float = 1.0,
    gate_prob: float = 0.999,
    size_sigma_rel: float = 0.1,
    cat_sigma_m: ArrayLike = 0.0,
    normal_w: ArrayLike = (0.0, 0.0, 1.0),
    min_support: int = 5,
    ambiguity_margin: float = 4.0,
    ambiguity_ratio: float = 0.7,
    n_peaks: int = 3,
    n_hypotheses: int = 128,
    max_iterations: int = 8,
    false_alarm: float = 1e-9,
) -> MatchResult:
    """Associate detected ellipses det (M, 5) [px, rad] with catalogue rims (L, m) given a predicted pose.

    ``cat_centres_w`` (N, 3) and ``cat_radii_m`` (N,): rim centres and radii in L (m) of circles with
    normal ``normal_w``. ``(R_cw, p_w)``: predicted pose; ``P_pose``: its 6x6 covariance over
    [dtheta (rad, L), dp (m, L)] (module convention; may be singular). ``sigma_px``: detected-centre
    noise (px). ``size_sigma_rel``: relative error of a detected semi-major axis. ``cat_sigma_m``
    (scalar or (N,)): isotropic 1-sigma error of the catalogue rim centres (m), carried into the image
    and added to the centre noise. ``gate_prob``: probability of the chi-square gates (6 dof for the
    wide first gate, 2 dof for centres and 1 dof for sizes afterwards). ``min_support``: fewest
    detections a correction needs. ``ambiguity_margin``: cost margin (chi-square units) under which an
    alternative explanation drops a pair. ``ambiguity_ratio``: a second, different set of
    correspondences at least this large relative to the best makes the frame ambiguous (no pairs).
    ``false_alarm``: largest Poisson probability that chance alone gives the final number of matches.
    ``n_peaks``, ``n_hypotheses``, ``max_iterations``: vote peaks examined, two-pair hypotheses per
    peak, re-association passes. Returns a :class:`MatchResult`; deterministic (fixed internal seed).
    """
    det, X, radii, R0, p0, P0 = _check_inputs(det, cat_centres_w, cat_radii_m, R_cw, p_w, P_pose)
    if not sigma_px > 0:
        raise InputError(f"sigma_px={sigma_px}: expected a positive pixel noise")
    if not 0.0 < gate_prob < 1.0:
        raise InputError(f"gate_prob={gate_prob}: expected a probability in (0, 1)")
    if not size_sigma_rel > 0:
        raise InputError(f"size_sigma_rel={size_sigma_rel}: expected a positive relative size error")
    cat_var = np.broadcast_to(np.asarray(cat_sigma_m, dtype=float), X.shape[:1]) ** 2
    if not (np.all(np.isfinite(cat_var)) and np.all(cat_var >= 0)):
        raise InputError("cat_sigma_m: expected finite values >= 0 (m), a scalar or one per crater")
    if min_support < 3:
        raise InputError(f"min_support={min_support}: expected at least 3 supporting detections")
    normal = np.asarray(normal_w, dtype=float)
    if normal.shape != (3,) or not np.linalg.norm(normal) > 0:
        raise InputError("normal_w: expected a non-zero 3-vector (L)")
    normal = normal / np.linalg.norm(normal)
    M = det.shape[0]
    if M == 0 or X.shape[0] == 0:
        return _empty(R0, p0, P0, 0, False)
    rng = np.random.default_rng(0)
    g1 = _chi2_ppf(gate_prob, 1)
    g2 = _chi2_ppf(gate_prob, 2)
    g6 = _chi2_ppf(gate_prob, 6)
    sig2 = sigma_px**2
    area = float(camera.width * camera.height)
    log_a_det = np.log(det[:, 2])
    var_det = (sigma_px / det[:, 2]) ** 2

    # -- stage 1: predict with the prior, wide (6-dof) gate -----------------------------------------
    # Cheap pre-selection on the rim-centre points, then the exact ellipses of the survivors.
    uv_all, J_all, z_all = projection_jacobian(X, camera, R0, p0)
    S_all = _sandwich(J_all, P0)
    s_u = S_all[:, 0, 0] + sig2
    s_v = S_all[:, 1, 1] + sig2
    s_u = s_u + cat_var * np.sum(J_all[:, 0, 3:] ** 2, -1)
    s_v = s_v + cat_var * np.sum(J_all[:, 1, 3:] ** 2, -1)
    with np.errstate(invalid="ignore"):
        slack_u = np.sqrt(g6 * s_u) + 0.1 * camera.width
        slack_v = np.sqrt(g6 * s_v) + 0.1 * camera.height
        pre = (z_all > 0) & (np.abs(uv_all[:, 0] - 0.5 * camera.width) <= 0.5 * camera.width + slack_u)
        pre &= np.abs(uv_all[:, 1] - 0.5 * camera.height) <= 0.5 * camera.height + slack_v
    pre = np.flatnonzero(pre)
    if pre.size == 0:
        return _empty(R0, p0, P0, 0, False)
    pred = _predict(pre, X, radii, normal, camera, R0, p0, P0, sigma_px, size_sigma_rel, cat_var)
    ok = np.all(np.isfinite(pred.ell), -1) & np.all(np.isfinite(pred.uv_pt), -1)
    c = pred.ell[:, :2]
    half_u = np.sqrt(g6 * np.maximum(pred.S[:, 0, 0], 0))
    half_v = np.sqrt(g6 * np.maximum(pred.S[:, 1, 1], 0))
    with np.errstate(invalid="ignore"):
        ok &= (c[:, 0] >= -0.5 - half_u) & (c[:, 0] <= camera.width - 0.5 + half_u)
        ok &= (c[:, 1] >= -0.5 - half_v) & (c[:, 1] <= camera.height - 0.5 + half_v)
        ks = np.sqrt(g1 * (pred.var_log + var_det.max()))
        la = np.log(pred.ell[:, 2])
        ok &= (la + ks >= log_a_det.min()) & (la - ks <= log_a_det.max())
    keep = np.flatnonzero(ok)
    vis = pre[keep]
    if vis.size == 0:
        return _empty(R0, p0, P0, 0, False)
    pred = _Prediction(
        vis, pred.ell[keep], pred.uv_pt[keep], pred.J[keep], pred.S[keep], pred.Nn[keep], pred.var_log[keep]
    )
    Sinv, _ = _inv2(pred.S)
    pi, pj, r = _gate_pairs(
        np.ascontiguousarray(det[:, :2]), log_a_det, var_det, np.ascontiguousarray(pred.ell[:, :2]),
        np.ascontiguousarray(Sinv), np.log(pred.ell[:, 2]), pred.var_log, g6, g1,
    )  # fmt: skip
    if pi.size < min_support:
        return _empty(R0, p0, P0, 0, False)
    J = pred.J

    # -- stage 2: vote for the common correction, then a small RANSAC inside each peak ----------------
    Nn = pred.Nn
    candidates = []
    for pool in _vote_pools(pi, pj, r, J, Nn, P0, sigma_px, n_peaks, min_support):
        candidates.append(_peak_consensus(pool, r, J, Nn, pi, pj, P0, g2, n_hypotheses, rng))
    if not candidates:
        return _empty(R0, p0, P0, 0, False)
    candidates.sort(key=lambda t: -t[0])
    best_support = candidates[0][0]
    if best_support < min_support:
        return _empty(R0, p0, P0, best_support, False)

    # -- stage 3: iterated MAP + tight one-to-one re-association ------------------------------------
    outcomes = []
    done: set[tuple[int, int]] = set()
    for support, inl in candidates:
        if support < max(min_support, ambiguity_ratio * best_support):
            continue
        pairs = set(zip(pi[inl].tolist(), pj[inl].tolist(), strict=True))
        if len(pairs & done) > 0.5 * len(pairs):
            continue  # the same correction as one already refined
        done |= pairs
        out = _refine(
            pi[inl], pj[inl], pi, pj, det, X, radii, normal, vis, camera, R0, p0, P0, sigma_px, cat_var,
            size_sigma_rel, g1, g2, ambiguity_margin, min_support, max_iterations,
        )  # fmt: skip
        if out is not None:
            outcomes.append((support, out))
    if not outcomes:
        return _empty(R0, p0, P0, best_support, False)
    outcomes.sort(key=lambda t: -t[1][4].size)
    n_support, (R, p, P_post, (ell_a, uvpt_a, S_a), a_det, a_cat) = outcomes[0]
    # Reject a consensus no larger than what chance alone gives: the expected number of detections
    # that would fall, size-compatible, into the tight gates of the visible craters at random.
    pred = _predict(vis, X, radii, normal, camera, R, p, P_post, sigma_px, size_sigma_rel, cat_var)
    in_img = camera.in_image(pred.ell[:, :2])
    _, Sdet = _inv2(pred.S)
    # Fraction of the detections whose size passes each crater's size gate (detection term at its
    # smallest, which slightly overstates the fraction).
    half = np.sqrt(g1 * (pred.var_log + var_det.min()))
    la_sorted = np.sort(log_a_det)
    la_pred = np.log(pred.ell[:, 2])
    n_in = np.searchsorted(la_sorted, la_pred + half, "right") - np.searchsorted(la_sorted, la_pred - half)
    size_frac = n_in / M
    lam = float(np.sum((np.pi * g2 * np.sqrt(Sdet) * size_frac)[in_img])) * M / area
    if poisson.sf(a_det.size - 1, lam) > false_alarm:
        return _empty(R0, p0, P0, n_support, False)
    best_pairs = set(zip(a_det.tolist(), a_cat.tolist(), strict=True))
    for _, other in outcomes[1:]:
        if other[4].size < ambiguity_ratio * a_det.size:
            continue
        shared = len(best_pairs & set(zip(other[4].tolist(), other[5].tolist(), strict=True)))
        if shared < 0.5 * other[4].size:  # a different set of correspondences, nearly as large
            return _empty(R0, p0, P0, n_support, True)
    order = np.argsort(a_det)
    a_det, a_cat = a_det[order], a_cat[order]
    ell_a, uvpt_a, S_a = ell_a[order], uvpt_a[order], S_a[order]
    Sinv, _ = _inv2(S_a)
    maha = np.sqrt(_mahal2(det[a_det, :2] - ell_a[:, :2], Sinv))
    ell0 = project_circles(X[vis[a_cat]], radii[vis[a_cat]], camera, R0, p0, normal)
    return MatchResult(
        det_idx=a_det.astype(np.int64),
        cat_idx=vis[a_cat].astype(np.int64),
        mahalanobis=maha,
        predicted_uv=ell0[:, :2],
        centre_bias_px=ell_a[:, :2] - uvpt_a,
        R_cw=R,
        p_w=p,
        P_pose=P_post,
        n_support=int(n_support),
        ambiguous=False,
    )


def _one_point(
    J: NDArray[np.float64], P: NDArray[np.float64], Jbar: NDArray[np.float64], Nn: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """Return Jbar K_j (N, 2, 2) (K_j: one-point MAP gains), modes D_j (N, 2, 6) and the vote spread (px)."""
    JP = (J.reshape(-1, 6) @ P).reshape(J.shape)
    Sinv, _ = _inv2(_sandwich(J, P) + Nn)
    JbPJt = np.swapaxes((JP.reshape(-1, 6) @ Jbar.T).reshape(-1, 2, 2), 1, 2)  # Jbar P J_j^T
    JbK = _mul22(JbPJt, Sinv)  # Jbar K_j
    # Within one frame the pose error is one fixed vector, so true pairs scatter about their common
    # vote by the variation over craters of A_j = Jbar (K_j J_j - I), plus the centre noise.
    A = _mul22(JbK, J) - Jbar
    D = A - A.mean(0)
    DP = (D.reshape(-1, 6) @ P).reshape(D.shape)
    spread2 = np.sum(DP * D, (1, 2)) + np.sum(_mul22(JbK, Nn) * JbK, (1, 2))
    return JbK, D, float(np.sqrt(0.5 * np.median(spread2)))


@njit(cache=True)
def _gate_pairs(
    det_xy: NDArray[np.float64],
    log_a_det: NDArray[np.float64],
    var_det: NDArray[np.float64],
    pred_xy: NDArray[np.float64],
    Sinv: NDArray[np.float64],
    log_a_pred: NDArray[np.float64],
    var_log: NDArray[np.float64],
    g_centre: float,
    g_size: float,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Return (det, crater) pairs inside the centre and log-size gates (sorted by det) and offsets (px)."""
    M, N = det_xy.shape[0], pred_xy.shape[0]
    keep = np.zeros((M, N), dtype=np.bool_)
    n = 0
    for i in range(M):
        for j in range(N):
            dx = det_xy[i, 0] - pred_xy[j, 0]
            dy = det_xy[i, 1] - pred_xy[j, 1]
            d2 = Sinv[j, 0, 0] * dx * dx + 2.0 * Sinv[j, 0, 1] * dx * dy + Sinv[j, 1, 1] * dy * dy
            lr = log_a_det[i] - log_a_pred[j]
            if d2 <= g_centre and lr * lr <= g_size * (var_log[j] + var_det[i]):
                keep[i, j] = True
                n += 1
    pi = np.empty(n, dtype=np.int64)
    pj = np.empty(n, dtype=np.int64)
    rr = np.empty((n, 2))
    k = 0
    for i in range(M):
        for j in range(N):
            if keep[i, j]:
                pi[k] = i
                pj[k] = j
                rr[k, 0] = det_xy[i, 0] - pred_xy[j, 0]
                rr[k, 1] = det_xy[i, 1] - pred_xy[j, 1]
                k += 1
    return pi, pj, rr


@njit(cache=True)
def _vote_histogram(
    q0: NDArray[np.float64],
    sl: NDArray[np.float64],
    t: NDArray[np.float64],
    qmin: NDArray[np.float64],
    b: float,
    nx: int,
    ny: int,
) -> NDArray[np.float32]:
    """Count votes q0 + t_m sl (px) of every pair in cells of size b (px) for every grid value t_m."""
    hist = np.zeros((t.size, nx, ny), dtype=np.float32)
    ib = 1.0 / b
    for k in range(q0.shape[0]):
        x0 = (q0[k, 0] - qmin[0]) * ib
        y0 = (q0[k, 1] - qmin[1]) * ib
        sx = sl[k, 0] * ib
        sy = sl[k, 1] * ib
        for m in range(t.size):
            x = x0 + t[m] * sx
            y = y0 + t[m] * sy
            ix = min(max(int(x) if x >= 0.0 else -1, 0), nx - 1)
            iy = min(max(int(y) if y >= 0.0 else -1, 0), ny - 1)
            hist[m, ix, iy] += 1.0
    return hist


def _vote_pools(
    pi: NDArray[np.int64],
    pj: NDArray[np.int64],
    r: NDArray[np.float64],
    J: NDArray[np.float64],
    Nn: NDArray[np.float64],
    P0: NDArray[np.float64],
    sigma_px: float,
    n_peaks: int,
    min_support: int,
    max_pool: int = 400,
) -> list[NDArray[np.int64]]:
    """Hough vote of the candidate pairs for the common pose correction; returns the pairs of each peak.

    Each pair votes for the image-centre shift ``q`` that its one-point MAP correction implies. When one
    mode of the pose error (typically altitude, i.e. scale, or roll) spreads the votes of true pairs,
    the vote runs over (q, t): t is that mode's amplitude on a grid, the rest of the correction being
    the one-point update given t, so that the true pairs meet in one cell.
    """
    Jbar = J.mean(0)  # (2, 6): response of the image centre to a pose correction
    JK0, D0, spread0 = _one_point(J, P0, Jbar, Nn)
    w, V = np.linalg.eigh(P0)
    Lw = V * np.sqrt(np.maximum(w, 0.0))  # P0 = Lw Lw^T
    D0f = D0.reshape(-1, 6)
    W = D0f.T @ D0f / J.shape[0]
    _, U = np.linalg.eigh(Lw.T @ W @ Lw)
    v = Lw @ U[:, -1]  # the pose direction (one prior sigma) that spreads the votes most
    P1 = P0 - np.outer(v, v)
    JK1, _, spread1 = _one_point(J, P1, Jbar, Nn)
    if spread0 > 1.5 * max(spread1, 0.5 * sigma_px):
        spread = max(spread1, 0.5 * sigma_px)
        # d q / d t per crater: Jbar (I - K_j J_j) v.
        slope = (Jbar @ v)[:, None] - np.einsum("nab,nb->an", JK1, J @ v)  # (2, N)
        step = 2.0 * spread / max(float(np.median(np.linalg.norm(slope, axis=0))), 1e-12)
        n_t = int(np.clip(np.ceil(6.0 / step) + 1, 1, 13))
        t = np.linspace(-3.0, 3.0, n_t) if n_t > 1 else np.zeros(1)
        q0 = np.einsum("kab,kb->ka", JK1[pj], r)
        sl = np.ascontiguousarray(slope.T[pj])  # (G, 2)
    else:
        spread = max(spread0, 0.5 * sigma_px)
        t = np.zeros(1)
        q0 = np.einsum("kab,kb->ka", JK0[pj], r)
        sl = np.zeros_like(q0)
    n_t = t.size
    # Votes q(t) = q0 + t sl are linear in t, so their bounding box comes from the end points.
    qmin = np.minimum(q0 + t[0] * sl, q0 + t[-1] * sl).min(0)
    qmax = np.maximum(q0 + t[0] * sl, q0 + t[-1] * sl).max(0)
    span = qmax - qmin
    b = max(2.0 * spread, float(np.sqrt(n_t * (span[0] + 1.0) * (span[1] + 1.0) / 2.5e5)))  # <= ~2.5e5 cells
    nx, ny = int(span[0] // b) + 1, int(span[1] // b) + 1
    hist = _vote_histogram(q0, sl, t, qmin, b, nx, ny)
    work = uniform_filter(hist, size=3, mode="constant") * 27.0  # votes in the 3x3x3 neighbourhood
    pools = []
    top = float(work.max())
    for _ in range(n_peaks):
        m, bx, by = np.unravel_index(int(np.argmax(work)), work.shape)
        if work[m, bx, by] < max(min_support, 0.5 * top):
            break
        work[max(m - 2, 0) : m + 3, max(bx - 2, 0) : bx + 3, max(by - 2, 0) : by + 3] = 0.0
        qm = q0 + t[m] * sl
        bxm = np.floor((qm[:, 0] - qmin[0]) / b)
        bym = np.floor((qm[:, 1] - qmin[1]) / b)
        near = np.flatnonzero((np.abs(bxm - bx) <= 1) & (np.abs(bym - by) <= 1))
        centre = qmin + (np.array([bx, by]) + 0.5) * b
        qn = qm[near]
        near = near[np.argsort(np.sum((qn - centre) ** 2, -1), kind="stable")]
        _, first = np.unique(pi[near], return_index=True)  # one pair per detection, nearest the peak
        pool = near[np.sort(first)][:max_pool]
        if pool.size >= min_support:
            pools.append(pool)
    return pools


def _peak_consensus(
    pool: NDArray[np.int64],
    r: NDArray[np.float64],
    J: NDArray[np.float64],
    Nn: NDArray[np.float64],
    pi: NDArray[np.int64],
    pj: NDArray[np.int64],
    P0: NDArray[np.float64],
    g2: float,
    n_hyp: int,
    rng: np.random.Generator,
) -> tuple[int, NDArray[np.int64]]:
    """RANSAC over two-pair MAP corrections inside one vote peak; returns (support, inlier pair indices)."""
    G = pool.size
    jj = pj[pool]
    Jp, rp, Np = J[jj], r[pool], Nn[jj]
    JtN = np.einsum("kai,kab->kib", Jp, _inv2(Np)[0])  # (G, 6, 2)
    Ak = JtN @ Jp  # (G, 6, 6) information of each pair
    bk = np.einsum("kib,kb->ki", JtN, rp)
    k1 = rng.integers(0, G, n_hyp)
    k2 = rng.integers(0, G, n_hyp)
    ok = (pi[pool[k1]] != pi[pool[k2]]) & (jj[k1] != jj[k2])
    k1, k2 = k1[ok], k2[ok]
    if k1.size == 0:
        k1 = k2 = np.zeros(1, dtype=np.int64)
    A = Ak[k1] + np.where((k1 != k2)[:, None, None], Ak[k2], 0.0)
    bh = bk[k1] + np.where((k1 != k2)[:, None], bk[k2], 0.0)
    Mh = np.eye(6)[None] + P0[None] @ A
    dh = np.linalg.solve(Mh, (bh @ P0.T)[..., None])[..., 0]  # (T, 6) two-pair MAP corrections
    Ph = np.linalg.solve(Mh, np.broadcast_to(P0, Mh.shape))  # (T, 6, 6)
    T = dh.shape[0]
    C = (_sym_outer(Jp).reshape(G * 3, 36) @ Ph.reshape(T, 36).T).reshape(G, 3, T)
    C[:, 0] += Np[:, 0, 0, None]
    C[:, 1] += Np[:, 0, 1, None]
    C[:, 2] += Np[:, 1, 1, None]
    res = rp[:, :, None] - (Jp.reshape(G * 2, 6) @ dh.T).reshape(G, 2, T)
    det = C[:, 0] * C[:, 2] - C[:, 1] ** 2
    d2 = (C[:, 2] * res[:, 0] ** 2 - 2.0 * C[:, 1] * res[:, 0] * res[:, 1] + C[:, 0] * res[:, 1] ** 2) / det
    inl = d2 <= g2
    count = inl.sum(0)
    tie = np.where(inl, d2, 0.0).sum(0)
    best = int(np.lexsort((tie, -count))[0])
    return int(count[best]), pool[inl[:, best]]


def _refine(
    a_det: NDArray[np.int64],
    a_cat: NDArray[np.int64],
    pi: NDArray[np.int64],
    pj: NDArray[np.int64],
    det: NDArray[np.float64],
    X: NDArray[np.float64],
    radii: NDArray[np.float64],
    normal: NDArray[np.float64],
    vis: NDArray[np.int64],
    camera: Camera,
    R0: NDArray[np.float64],
    p0: NDArray[np.float64],
    P0: NDArray[np.float64],
    sigma_px: float,
    cat_var: NDArray[np.float64],
    size_sigma_rel: float,
    g1: float,
    g2: float,
    margin: float,
    min_support: int,
    max_iterations: int,
) -> tuple | None:
    """Iterate MAP pose (Gauss-Newton from the prior) and tight one-to-one association until stable."""
    sig2 = sigma_px**2
    log_a_det = np.log(det[:, 2])
    var_det = (sigma_px / det[:, 2]) ** 2
    R, p = R0, p0
    prev: set[tuple[int, int]] | None = None
    final = None
    P_post = P0
    # The first passes gate with an inflated covariance and down-weight large residuals (Huber), so that
    # a consensus biased by a few wrong pairs is pulled back by the many right ones before the gate tightens.
    inflation = [9.0]
    for it in range(max_iterations):
        infl = inflation[it] if it < len(inflation) else 1.0
        # a_det/a_cat need not be one-to-one here (seed consensus); the MAP tolerates it.
        Xa, ra = X[vis[a_cat]], radii[vis[a_cat]]
        # The offset of an ellipse centre from the image of the rim centre changes little over these
        # steps: take it once, then iterate on point projections.
        ell = project_circles(Xa, ra, camera, R, p, normal)
        uv_pt, _, _ = projection_jacobian(Xa, camera, R, p)
        target = det[a_det, :2] - (ell[:, :2] - uv_pt)
        if not np.all(np.isfinite(target)):
            return None
        e = pose_difference(R, p, R0, p0)
        var_a = cat_var[vis[a_cat]]
        for _gn in range(6):
            uv_pt, Jm, _ = projection_jacobian(Xa, camera, R, p)
            res2 = target - uv_pt
            if not np.all(np.isfinite(res2)):
                return None
            Ninv, _ = _inv2(_noise_cov(Jm, sig2, var_a))
            w = None
            if infl > 1.0:
                rn = np.sqrt(_mahal2(res2, Ninv))
                w = np.minimum(1.0, 2.0 / np.maximum(rn, 1e-12))
            eps, P_step = _map_update(Jm, res2, e, P0, Ninv, w)
            R, p = pose_compose(R, p, eps)
            e = e + eps  # first order in the (small) rotation steps
            if np.all(eps**2 <= 1e-4 * np.diag(P_step) + 1e-30):  # step below 1 % of a sigma
                break
        _, Jm, _ = projection_jacobian(Xa, camera, R, p)
        Ninv, _ = _inv2(_noise_cov(Jm, sig2, var_a))
        _, P_post = _map_update(Jm, np.zeros((Jm.shape[0], 2)), np.zeros(6), P0, Ninv)
        # Predict only the craters that still have candidate detections.
        cand, loc = np.unique(pj, return_inverse=True)
        pred = _predict(
            vis[cand], X, radii, normal, camera, R, p, infl * P_post, sigma_px, size_sigma_rel, cat_var
        )
        Sinv, _ = _inv2(pred.S[loc])
        d2 = _mahal2(det[pi, :2] - pred.ell[loc, :2], Sinv)
        lr = log_a_det[pi] - np.log(pred.ell[loc, 2])
        vl = pred.var_log[loc] + var_det[pi]
        with np.errstate(invalid="ignore"):
            gate = (d2 <= g2) & (lr**2 <= g1 * vl)
            near = d2 <= 16.0 * g2  # later passes only tighten: drop far candidates for speed
        cost = d2 + lr**2 / vl
        a_det, a_cat = _assign(pi[gate], pj[gate], cost[gate], g2 + g1, margin)
        if a_det.size < min_support:
            return None
        # Rows of the prediction for the assigned craters (cand is sorted).
        a_row = np.searchsorted(cand, a_cat)
        final = (pred.ell[a_row], pred.uv_pt[a_row], pred.S[a_row])
        pi, pj = pi[near], pj[near]
        cur = set(zip(a_det.tolist(), a_cat.tolist(), strict=True))
        if cur == prev and infl == 1.0:
            break
        prev = cur
    return R, p, P_post, final, a_det, a_cat
