"""Tracking-mode association of detected crater ellipses with a crater catalogue, given a predicted pose.

Frames and conventions: world frame L (landing-site local frame, x east, y north, z up, m); pose
``(R_cw, p_w)`` with ``x_cam = R_cw (x_w - p_w)``; image ellipses ``[x, y, a, b, theta]`` (px, rad) as
in :mod:`kizuna.lunar.nav.conics`; pose covariances are 6x6 over ``delta = [dtheta (rad, rotation vector
in L), dp (m, in L)]`` with ``R_cw_true = R_cw_est Exp(-dtheta)`` and ``p_true = p_est + dp`` (see
:mod:`kizuna.lunar.nav.pose`).

Method. A pose error moves every predicted crater together, so gating each crater on its own is weak
when the pose is uncertain. The association therefore runs in three stages:

1. *Wide gate.* Catalogue rims are projected with the predicted pose (exact conic projection) and their
   centre covariance ``S_j = J_j P J_j^T + sigma^2 I`` and log-size variance are propagated with the
   analytic projection Jacobian ``J_j``. A pair (detection i, crater j) is a candidate when its centre
   offset passes the chi-square gate with **6** degrees of freedom (the pose error is one 6-vector, so
   with probability ``gate_prob`` all true pairs pass together) and its log-size ratio passes a 1-dof gate.
2. *Common correction.* Every candidate pair, alone with the prior, gives a one-point MAP pose correction
   ``delta_k = P J_j^T S_j^-1 r_k`` (the idea of Civera et al. 2010, "1-point RANSAC for EKF filtering").
   True pairs agree on it: their implied shift of the image centre clusters, which a 2-D vote finds. The
   best-voted corrections (and the prior itself) are scored by the log-likelihood ratio of their
   consensus against uniform clutter, each crater gated with its own post-correction covariance.
3. *Tight re-association.* From the winning consensus an iterated MAP (Gauss-Newton from the prior)
   re-estimates the pose; all craters are re-predicted with the posterior covariance, gated with 2 dof
   and assigned one-to-one by ``scipy.optimize.linear_sum_assignment`` (with a "leave unassigned"
   option). Pairs that a nearby alternative (another crater, another detection, or a swap) explains
   almost as well (cost within ``ambiguity_margin``) are dropped. This repeats until the set is stable.

A spurious detection that falls, size-compatible, inside the tight gate of a catalogue crater that was
not itself detected cannot be told apart from a detection of it; its error is then bounded by the gate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.stats import poisson

from kizuna.core.camera import Camera
from kizuna.errors import InputError
from kizuna.lunar.nav.conics import project_circles
from kizuna.lunar.nav.pose import _chi2_ppf, pose_compose, pose_difference, projection_jacobian

__all__ = ["MatchResult", "match_craters"]


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
) -> _Prediction:
    Xs = X[idx]
    ell = project_circles(Xs, radii[idx], camera, R, p, normal)
    uv_pt, J, z = projection_jacobian(Xs, camera, R, p)
    JP = (J.reshape(-1, 6) @ P).reshape(J.shape)
    S = np.einsum("nik,njk->nij", JP, J)
    S[:, 0, 0] += sigma_px**2
    S[:, 1, 1] += sigma_px**2
    # Apparent size ~ 1/depth: d log(a) / d delta = -(d z / d delta) / z.
    d = Xs - p
    g = np.concatenate([np.cross(R[2], d), np.broadcast_to(-R[2], d.shape)], -1) / -z[:, None]
    var_log = np.einsum("ni,ni->n", g @ P, g) + size_sigma_rel**2
    return _Prediction(idx, ell, uv_pt, J, S, var_log)


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
    sig2: float,
    w: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Gauss-Newton step eps of the MAP problem with prior P0 and the posterior covariance (P0 may be singular).

    Minimises ``|e + eps|^2_{P0^-1} + sum w |res - J eps|^2 / sig2``; ``e`` is the current error from the prior.
    """
    Jw = J if w is None else J * w[:, None]
    A = Jw.T @ J / sig2
    M = np.eye(6) + P0 @ A
    eps = np.linalg.solve(M, P0 @ (Jw.T @ res) / sig2 - e)
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

    ``cat_centres_w`` (N, 3) and ``cat_radii_m`` (N,) are rim centres and radii in L (m) of circles with
    normal ``normal_w``; ``(R_cw, p_w)`` is the predicted pose and ``P_pose`` its 6x6 covariance over
    [dtheta (rad, L), dp (m, L)]. ``sigma_px``: detected-centre noise (px); ``size_sigma_rel``: relative
    error of a detected semi-major axis. Returns a :class:`MatchResult`; see the module docstring for the
    method. Deterministic (the internal sampling uses a fixed seed).
    """
    det, X, radii, R0, p0, P0 = _check_inputs(det, cat_centres_w, cat_radii_m, R_cw, p_w, P_pose)
    if not sigma_px > 0:
        raise InputError(f"sigma_px={sigma_px}: expected a positive pixel noise")
    if not 0.0 < gate_prob < 1.0:
        raise InputError(f"gate_prob={gate_prob}: expected a probability in (0, 1)")
    if not size_sigma_rel > 0:
        raise InputError(f"size_sigma_rel={size_sigma_rel}: expected a positive relative size error")
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
    s_u = np.einsum("ni,ij,nj->n", J_all[:, 0], P0, J_all[:, 0]) + sig2
    s_v = np.einsum("ni,ij,nj->n", J_all[:, 1], P0, J_all[:, 1]) + sig2
    with np.errstate(invalid="ignore"):
        slack_u = np.sqrt(g6 * s_u) + 0.1 * camera.width
        slack_v = np.sqrt(g6 * s_v) + 0.1 * camera.height
        pre = (z_all > 0) & (np.abs(uv_all[:, 0] - 0.5 * camera.width) <= 0.5 * camera.width + slack_u)
        pre &= np.abs(uv_all[:, 1] - 0.5 * camera.height) <= 0.5 * camera.height + slack_v
    pre = np.flatnonzero(pre)
    if pre.size == 0:
        return _empty(R0, p0, P0, 0, False)
    pred = _predict(pre, X, radii, normal, camera, R0, p0, P0, sigma_px, size_sigma_rel)
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
    pred = _Prediction(vis, pred.ell[keep], pred.uv_pt[keep], pred.J[keep], pred.S[keep], pred.var_log[keep])
    Sinv, _ = _inv2(pred.S)
    r_all = det[:, None, :2] - pred.ell[None, :, :2]  # (M, N, 2)
    d2_all = _mahal2(r_all, Sinv[None])
    lr = log_a_det[:, None] - np.log(pred.ell[None, :, 2])
    size_ok = lr**2 <= g1 * (pred.var_log[None, :] + var_det[:, None])
    pi, pj = np.nonzero((d2_all <= g6) & size_ok)  # candidate pairs, sorted by detection
    if pi.size < min_support:
        return _empty(R0, p0, P0, 0, False)
    r = r_all[pi, pj]  # (G, 2) offsets from the prior prediction
    del r_all, d2_all, lr, size_ok
    J = pred.J

    # -- stage 2: vote for the common correction, then a small RANSAC inside each peak ----------------
    PJt = P0 @ np.swapaxes(J, -1, -2)  # (N, 6, 2)
    Kg = PJt @ Sinv  # one-point gains
    delta_k = np.einsum("kab,kb->ka", Kg[pj], r)  # (G, 6) one-point MAP corrections
    Jbar = J.mean(0)  # (2, 6): response of the image centre to a pose correction
    q = delta_k @ Jbar.T  # (G, 2) implied shift of the image centre
    Pj = P0[None] - Kg @ np.swapaxes(PJt, -1, -2)
    # Within one frame the pose error is one fixed vector, so true pairs scatter about their common
    # q by the variation over craters of A_j = Jbar (K_j J_j - I), plus the centre noise.
    Aj = Jbar @ (Kg @ J - np.eye(6))  # (N, 2, 6)
    Dj = Aj - Aj.mean(0)
    JK = Jbar @ Kg  # (N, 2, 2)
    spread2 = np.einsum("nik,kl,nil->n", Dj, P0, Dj) + sig2 * np.einsum("nik,nik->n", JK, JK)
    spread = float(np.sqrt(0.5 * np.median(spread2)))
    qmin = q.min(0)
    b = max(2.0 * max(0.5 * sigma_px, spread), float(np.max(q.max(0) - qmin)) / 1000.0)
    bins = np.floor((q - qmin) / b).astype(np.int64)
    nx, ny = int(bins[:, 0].max()) + 1, int(bins[:, 1].max()) + 1
    ukey = np.unique(pi * (nx * ny) + bins[:, 0] * ny + bins[:, 1]) % (nx * ny)  # one vote per detection
    hist = np.bincount(ukey, minlength=nx * ny).reshape(nx, ny).astype(float)
    pad = np.pad(hist, 1)
    work = sum(pad[i : i + nx, j : j + ny] for i in range(3) for j in range(3))
    Jpair = J[pj]
    candidates = []
    top_votes = float(work.max())
    for _ in range(n_peaks):
        flat = int(np.argmax(work))
        if work.flat[flat] < max(min_support, 0.5 * top_votes):
            break
        bx, by = divmod(flat, ny)
        work[max(bx - 2, 0) : bx + 3, max(by - 2, 0) : by + 3] = 0.0
        near = np.flatnonzero((np.abs(bins[:, 0] - bx) <= 1) & (np.abs(bins[:, 1] - by) <= 1))
        centre = qmin + (np.array([bx, by]) + 0.5) * b
        near = near[np.argsort(np.sum((q[near] - centre) ** 2, -1), kind="stable")]
        _, first = np.unique(pi[near], return_index=True)  # one pair per detection, nearest the peak
        pool = near[np.sort(first)][:400]
        if pool.size < min_support:
            continue
        candidates.append(_peak_consensus(pool, r, Jpair, pi, pj, P0, sig2, g2, n_hypotheses, rng))
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
            pi[inl], pj[inl], pi, pj, det, X, radii, normal, vis, camera, R0, p0, P0, sigma_px,
            size_sigma_rel, g1, g2, ambiguity_margin, min_support, max_iterations,
        )  # fmt: skip
        if out is not None:
            outcomes.append((support, out))
    if not outcomes:
        return _empty(R0, p0, P0, best_support, False)
    outcomes.sort(key=lambda t: -t[1][4].size)
    n_support, (R, p, P_post, pred, a_det, a_cat) = outcomes[0]
    # Reject a consensus no larger than what chance alone gives: the expected number of detections
    # that would fall, size-compatible, into the tight gates of the visible craters at random.
    in_img = camera.in_image(pred.ell[:, :2])
    _, Sdet = _inv2(pred.S)
    lr_all = log_a_det[:, None] - np.log(pred.ell[None, :, 2])
    size_frac = np.mean(lr_all**2 <= g1 * (pred.var_log[None, :] + var_det[:, None]), axis=0)
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
    Sinv, _ = _inv2(pred.S[a_cat])
    maha = np.sqrt(_mahal2(det[a_det, :2] - pred.ell[a_cat, :2], Sinv))
    ell0 = project_circles(X[vis[a_cat]], radii[vis[a_cat]], camera, R0, p0, normal)
    return MatchResult(
        det_idx=a_det.astype(np.int64),
        cat_idx=vis[a_cat].astype(np.int64),
        mahalanobis=maha,
        predicted_uv=ell0[:, :2],
        centre_bias_px=pred.ell[a_cat, :2] - pred.uv_pt[a_cat],
        R_cw=R,
        p_w=p,
        P_pose=P_post,
        n_support=int(n_support),
        ambiguous=False,
    )


def _peak_consensus(
    pool: NDArray[np.int64],
    r: NDArray[np.float64],
    Jpair: NDArray[np.float64],
    pi: NDArray[np.int64],
    pj: NDArray[np.int64],
    P0: NDArray[np.float64],
    sig2: float,
    g2: float,
    n_hyp: int,
    rng: np.random.Generator,
) -> tuple[int, NDArray[np.int64]]:
    """RANSAC over two-pair MAP corrections inside one vote peak; returns (support, inlier pair indices)."""
    G = pool.size
    Jp, rp = Jpair[pool], r[pool]
    k1 = rng.integers(0, G, n_hyp)
    k2 = rng.integers(0, G, n_hyp)
    ok = (pi[pool[k1]] != pi[pool[k2]]) & (pj[pool[k1]] != pj[pool[k2]])
    k1, k2 = k1[ok], k2[ok]
    if k1.size == 0:
        k1 = k2 = np.zeros(1, dtype=np.int64)
    Jh = np.concatenate([Jp[k1], Jp[k2]], 1)  # (T, 4, 6)
    rh = np.concatenate([rp[k1], rp[k2]], 1)  # (T, 4)
    A = np.swapaxes(Jh, 1, 2) @ Jh / sig2
    bh = np.einsum("tki,tk->ti", Jh, rh) / sig2
    Mh = np.eye(6)[None] + P0[None] @ A
    dh = np.linalg.solve(Mh, (bh @ P0.T)[..., None])[..., 0]  # (T, 6)
    Ph = np.linalg.solve(Mh, np.broadcast_to(P0, Mh.shape))  # (T, 6, 6)
    T = dh.shape[0]
    C = (_sym_outer(Jp).reshape(G * 3, 36) @ Ph.reshape(T, 36).T).reshape(G, 3, T)
    C[:, 0] += sig2
    C[:, 2] += sig2
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
    pred = None
    P_post = P0
    # The first passes gate with an inflated covariance and down-weight large residuals (Huber), so that
    # a consensus biased by a few wrong pairs is pulled back by the many right ones before the gate tightens.
    inflation = [16.0, 4.0]
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
        for _gn in range(6):
            uv_pt, Jm, _ = projection_jacobian(Xa, camera, R, p)
            res2 = target - uv_pt
            if not np.all(np.isfinite(res2)):
                return None
            w = None
            if infl > 1.0:
                rn = np.sqrt(np.sum(res2**2, -1) / sig2)
                w = np.repeat(np.minimum(1.0, 2.0 / np.maximum(rn, 1e-12)), 2)
            eps, P_step = _map_update(Jm.reshape(-1, 6), res2.reshape(-1), e, P0, sig2, w)
            R, p = pose_compose(R, p, eps)
            e = e + eps  # first order in the (small) rotation steps
            if np.all(eps**2 <= 1e-6 * np.diag(P_step) + 1e-30):  # step below 0.1 % of a sigma
                break
        _, Jm, _ = projection_jacobian(Xa, camera, R, p)
        _, P_post = _map_update(Jm.reshape(-1, 6), np.zeros(Jm.shape[0] * 2), np.zeros(6), P0, sig2)
        pred = _predict(vis, X, radii, normal, camera, R, p, infl * P_post, sigma_px, size_sigma_rel)
        Sinv, _ = _inv2(pred.S[pj])
        d2 = _mahal2(det[pi, :2] - pred.ell[pj, :2], Sinv)
        lr = log_a_det[pi] - np.log(pred.ell[pj, 2])
        vl = pred.var_log[pj] + var_det[pi]
        with np.errstate(invalid="ignore"):
            gate = (d2 <= g2) & (lr**2 <= g1 * vl)
        cost = d2 + lr**2 / vl
        a_det, a_cat = _assign(pi[gate], pj[gate], cost[gate], g2 + g1, margin)
        if a_det.size < min_support:
            return None
        cur = set(zip(a_det.tolist(), a_cat.tolist(), strict=True))
        if cur == prev and infl == 1.0:
            break
        prev = cur
    return R, p, P_post, pred, a_det, a_cat
