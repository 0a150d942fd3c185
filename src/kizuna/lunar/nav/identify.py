"""Lost-in-space crater identification: which catalogue craters an image shows, and the camera pose.

Projective invariants of crater-rim conics (Christian et al. 2021) need the ellipse shapes to a precision
that detected rims seldom have: with 5 % axis noise their logarithms scatter by 0.2-2. This module uses
the shapes only jointly and leans on the centres, which detectors place to a few pixels:

1. **The sphere under the camera.** Every rim is a circle on the local horizontal of a sphere of known
   radius, so each ellipse's elongation and orientation follow from where its line of sight meets the
   sphere. A robust fit of the direction of the Moon's centre in the camera frame and of the camera's
   distance to it, over all ellipses at once, carries every detection onto the sphere: its centre as a
   point on the sphere (camera frame) and its rim radius from the ellipse's area. False detections,
   whose shapes do not fit, are mostly set aside here.
2. **Triads.** Each large detection (a pivot) and pairs of its nearest neighbours on the sphere form
   triads, described as in the index (:mod:`kizuna.lunar.nav.id_index`): the triangle's shape, its size in
   crater radii, and the radius ratios. The index returns catalogue triads with close descriptors.
3. **Pose and verification.** Each candidate gives up to four poses by P3P on the crater centres or,
   with an attitude prior, one: the prior's attitude and the least-squares position. A pose must see the
   Moon's centre where the sphere fit put it (when that fit is sound). A cheap look at the catalogue
   craters nearest the triad screens all poses at once; for the survivors, matches grow outward from the
   triad, the pose refined at each ring (Levenberg-Marquardt on the centres, with the perspective offset
   of an ellipse's centre from its rim centre taken out), then every predicted crater is matched with a
   gate on centre, size and elongation together.
4. **Decision.** The fix is reported only when enough craters match, at least half of those predicted,
   and the matches beyond the four a pose fit can make for itself would arise by chance (Poisson, with
   the number of hypotheses tried counted in) less than once in a thousand; with a prior, the attitude
   found must also agree with it. Otherwise the answer is "no fix", with the reason.

Camera model: ``x_cam = R_cam_from_me @ (X_me - r_me)``, camera +z along the boresight, +x along image +x,
+y along image +y; MOON_ME coordinates in metres.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import least_squares

from kizuna.core.camera import Camera
from kizuna.core.constants import MOON_RADIUS_M
from kizuna.errors import InputError
from kizuna.lunar.nav.conics import conic_to_ellipse, ellipse_to_conic
from kizuna.lunar.nav.id_index import DESCRIPTOR_SIGMA, CraterIndex, IdCatalog, triad_descriptors
from kizuna.lunar.nav.id_verify import Check, Verifier
from kizuna.lunar.nav.pose import p3p_grunert

__all__ = ["AttitudePrior", "IdentifyConfig", "IdResult", "identify", "rotation_angle_deg"]


@dataclass(frozen=True)
class AttitudePrior:
    """Prior camera attitude: R_cam_from_me (3x3) and its 1-sigma error (deg, any axis)."""

    R_cam_from_me: NDArray[np.float64]
    sigma_deg: float

    def __post_init__(self) -> None:
        R = np.asarray(self.R_cam_from_me, dtype=float)
        if R.shape != (3, 3) or not np.all(np.isfinite(R)):
            raise InputError("attitude prior R_cam_from_me: expected a finite 3x3 matrix")
        if np.abs(R @ R.T - np.eye(3)).max() > 1e-3 or np.linalg.det(R) < 0:
            raise InputError("attitude prior R_cam_from_me: expected a rotation matrix (orthonormal, det +1)")
        if not (np.isfinite(self.sigma_deg) and 0.0 < self.sigma_deg <= 30.0):
            raise InputError(f"attitude prior sigma_deg={self.sigma_deg}: expected a value in (0, 30] deg")


@dataclass(frozen=True)
class IdentifyConfig:
    """Tuning of the identification (pixel noise it is built for, search effort, decision thresholds)."""

    centre_sigma_px: float = 3.0
    axis_sigma_frac: float = 0.05
    max_pivots: int = 24
    neighbours: int = 6
    query_sigmas: float = 3.5
    max_candidates: int = 48
    min_matches: int = 6
    min_match_share: float = 0.5
    max_chance_log10: float = -3.0
    time_budget_s: float = 5.0


@dataclass
class IdResult:
    """Outcome of an identification: status "ok" or "no_fix", pose (MOON_ME, m) and matches."""

    status: str
    reason: str = ""
    position_m: NDArray[np.float64] | None = None
    R_cam_from_me: NDArray[np.float64] | None = None
    matches: list[tuple[int, str]] = field(default_factory=list)
    match_rows: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    reprojection_rms_px: float = float("nan")
    elapsed_s: float = 0.0
    hypotheses: int = 0
    chance_log10: float = float("nan")
    covariance: NDArray[np.float64] | None = None  # [dtheta (rad), dp (m)], MOON_ME, as in pose.py

    @property
    def n_matches(self) -> int:
        """Return the number of matched detections."""
        return len(self.matches)

    def to_json(self) -> dict:
        """Return the result as the JSON object of ``kizuna lunar identify`` (m, MOON_ME)."""
        ok = self.status == "ok"
        return {
            "status": self.status,
            "reason": self.reason,
            "position_m": [float(v) for v in self.position_m] if ok else None,
            "R_cam_from_me": [[float(v) for v in row] for row in self.R_cam_from_me] if ok else None,
            "matches": [[int(i), str(c)] for i, c in self.matches],
            "n_matches": self.n_matches,
            "reprojection_rms_px": float(self.reprojection_rms_px) if ok else None,
            "elapsed_s": float(self.elapsed_s),
        }


def rotation_angle_deg(Ra: ArrayLike, Rb: ArrayLike) -> NDArray[np.float64] | float:
    """Return the angle (deg) of the rotation between two rotation matrices (broadcasts over leading axes)."""
    Ra, Rb = np.asarray(Ra, dtype=float), np.asarray(Rb, dtype=float)
    tr = np.einsum("...ij,...ij->...", Ra, Rb)
    return np.degrees(np.arccos(np.clip(0.5 * (tr - 1.0), -1.0, 1.0)))


# -- 1. the sphere under the camera -----------------------------------------------------------------
def _normalised_ellipses(det: NDArray[np.float64], camera: Camera) -> NDArray[np.float64]:
    """Ellipses in normalised image coordinates (x/z, y/z): centre, semi-axes, angle."""
    K = camera.K
    C = ellipse_to_conic(det)
    Cn = np.einsum("ji,njk,kl->nil", K, C, K)
    return conic_to_ellipse(Cn)


def _embed(kappa: NDArray, two_theta_c: NDArray, two_theta_s: NDArray) -> NDArray[np.float64]:
    return np.stack([kappa * two_theta_c, kappa * two_theta_s], axis=-1)


def _observed_shape(En: NDArray[np.float64]) -> NDArray[np.float64]:
    """Elongation embedding (log(a/b) cos 2theta, log(a/b) sin 2theta) of normalised ellipses."""
    k = np.log(En[:, 2] / En[:, 3])
    return _embed(k, np.cos(2.0 * En[:, 4]), np.sin(2.0 * En[:, 4]))


def _on_sphere(u: NDArray, nu: NDArray, D: float | NDArray, R: float = MOON_RADIUS_M):
    """Where the lines of sight u (N,3) meet the sphere of radius R whose centre is at D*nu (camera frame).

    Returns the points P (N, 3), the predicted elongation embedding (N, 2), the Jacobian determinant of
    the projection on the local horizontal (1/m^2), and a mask of the rays that meet the sphere. Many
    spheres at once: nu (S, 1, 3) and D (S, 1) give results shaped (S, N, ...).
    """
    D = np.asarray(D, dtype=float)
    b = np.sum(u * nu, axis=-1)
    disc = (D * b) ** 2 - (D * D - R * R)
    hit = (disc > 0) & (b > 0)
    t = D * b - np.sqrt(np.where(hit, disc, 0.0))
    P = t[..., None] * u
    N = (P - D[..., None] * nu) / R
    helper = np.where((np.abs(N[..., 0]) < 0.9)[..., None], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    e1 = np.cross(N, helper)
    e1 /= np.linalg.norm(e1, axis=-1, keepdims=True)
    e2 = np.cross(N, e1)
    z = np.where(hit, P[..., 2], 1.0)
    x, y = P[..., 0] / z, P[..., 1] / z
    # d(x/z, y/z)/dP restricted to the plane spanned by e1, e2
    j11 = (e1[..., 0] - x * e1[..., 2]) / z
    j12 = (e2[..., 0] - x * e2[..., 2]) / z
    j21 = (e1[..., 1] - y * e1[..., 2]) / z
    j22 = (e2[..., 1] - y * e2[..., 2]) / z
    p = j11 * j11 + j12 * j12
    q = j11 * j21 + j12 * j22
    s = j21 * j21 + j22 * j22
    half = np.sqrt(0.25 * (p - s) ** 2 + q * q)
    mean = 0.5 * (p + s)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        kappa = 0.5 * np.log((mean + half) / np.maximum(mean - half, 1e-300))
        scale = np.where(half > 0, kappa / half, 0.0)
    emb = np.stack([scale * 0.5 * (p - s), scale * q], axis=-1)
    detJ = np.abs(j11 * j22 - j12 * j21)
    return P, emb, detJ, hit


@dataclass(frozen=True)
class _Sphere:
    nu: NDArray[np.float64]
    D: float
    P: NDArray[np.float64]
    radius: NDArray[np.float64]
    valid: NDArray[np.bool_]
    cost: float
    trusted: bool = True  # False when the fit ran onto its lowest altitude: its centre direction is not used


def _fit_sphere(u: NDArray, En: NDArray, sig_k: NDArray) -> _Sphere:
    """Fit the Moon's centre direction and distance (camera frame) to the ellipse shapes (robust)."""
    obs = _observed_shape(En)
    R = MOON_RADIUS_M

    def unpack(x: NDArray) -> tuple[NDArray, float]:
        nu = np.array([x[0], x[1], 1.0])
        return nu / np.linalg.norm(nu), R + math.exp(x[2])

    def cost_of(nu: NDArray, D: float, sub: NDArray | slice = slice(None)) -> float:
        _, emb, _, hit = _on_sphere(u[sub], nu, D)
        z = np.sum(((emb - obs[sub]) / sig_k[sub, None]) ** 2, axis=1)
        z = np.where(hit, z, 50.0)
        return float(np.sum(np.log1p(z / 4.0)))

    # coarse grid: directions up to 75 deg off the boresight, distances for 30-1500 km altitude, on the
    # 200 most elongation-telling ellipses (smallest shape noise)
    few = np.argsort(sig_k)[:200]
    grid = []
    for phi in np.radians(np.arange(0.0, 76.0, 7.5)):
        for psi in np.radians(np.arange(0.0, 360.0, 30.0 if phi > 0 else 360.0)):
            tp = math.tan(phi)
            for h in (30e3, 100e3, 250e3, 600e3, 1500e3):
                grid.append((tp * math.cos(psi), tp * math.sin(psi), math.log(h)))
    G = np.array(grid)
    nus = np.column_stack([G[:, 0], G[:, 1], np.ones(len(G))])
    nus /= np.linalg.norm(nus, axis=1, keepdims=True)
    _, emb, _, hit = _on_sphere(u[few], nus[:, None, :], (R + np.exp(G[:, 2]))[:, None])
    z = np.sum(((emb - obs[few]) / sig_k[few, None]) ** 2, axis=-1)
    costs = np.sum(np.log1p(np.where(hit, z, 50.0) / 4.0), axis=1)
    starts = [(costs[i], G[i]) for i in np.argsort(costs)[:3]]

    def residuals(x: NDArray) -> NDArray:
        nu, D = unpack(x)
        _, emb, _, hit = _on_sphere(u, nu, D)
        r = (emb - obs) / sig_k[:, None]
        r[~hit] = 7.0
        return r.reshape(-1)

    best = None
    for _, x0 in starts[:3]:
        sol = least_squares(
            residuals,
            x0,
            loss="cauchy",
            f_scale=2.0,
            bounds=([-4.0, -4.0, math.log(5e3)], [4.0, 4.0, math.log(5e6)]),
            max_nfev=60,
        )
        c = cost_of(*unpack(sol.x))
        if best is None or c < best[0]:
            best = (c, sol.x)
    nu, D = unpack(best[1])
    P, emb, detJ, hit = _on_sphere(u, nu, D)
    resid = np.sqrt(np.sum(((emb - obs) / sig_k[:, None]) ** 2, axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        radius = np.sqrt(En[:, 2] * En[:, 3] / detJ)
    valid = hit & (resid < 4.0) & np.isfinite(radius)
    return _Sphere(nu, D, P, radius, valid, best[0], trusted=bool(D - R > 10e3))


# -- 2. hypotheses ----------------------------------------------------------------------------------
def _check_detections(det: ArrayLike) -> NDArray[np.float64]:
    d = np.asarray(det, dtype=float)
    if d.ndim != 2 or d.shape[1] != 5:
        raise InputError(
            f"detections: expected rows [x_px, y_px, a_px, b_px, theta_rad], got shape {d.shape}"
        )
    if not np.all(np.isfinite(d)):
        raise InputError("detections: expected finite values (found NaN or infinity)")
    if np.any(d[:, 3] <= 0) or np.any(d[:, 2] < d[:, 3]):
        raise InputError("detections: expected semi-axes a >= b > 0 (px)")
    return d


def identify(
    detections: ArrayLike,
    camera: Camera,
    index: CraterIndex,
    attitude_prior: AttitudePrior | None = None,
    config: IdentifyConfig | None = None,
) -> IdResult:
    """Identify detected crater ellipses (px) in the catalogue with no position prior; pose in MOON_ME (m).

    ``detections`` (N, 5): rows [x, y, a, b, theta] in the ``kizuna lunar detect`` convention. Returns
    status "ok" with the camera position, R_cam_from_me and the matches, or "no_fix" with the reason.
    """
    t0 = time.perf_counter()
    cfg = config or IdentifyConfig()
    det = _check_detections(detections)
    if det.shape[0] < 3:
        return IdResult("no_fix", f"{det.shape[0]} detections: at least 3 are needed", elapsed_s=0.0)
    En = _normalised_ellipses(det, camera)
    if not np.all(np.isfinite(En)):
        raise InputError("detections: an ellipse could not be carried to normalised coordinates")
    u = np.column_stack([En[:, 0], En[:, 1], np.ones(len(En))])
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    sig_k = np.hypot(math.sqrt(2.0) * cfg.axis_sigma_frac, 1.0 / det[:, 3])
    sph = _fit_sphere(u, En, sig_k)
    Q = sph.P - sph.D * sph.nu  # detections on the sphere, from its centre (camera frame)
    ver = Verifier(det, index, camera, cfg)
    cat = index.catalog

    valid = np.flatnonzero(sph.valid)
    if valid.size < 3:
        return IdResult("no_fix", "fewer than 3 detections fit a view of the lunar sphere",
                        elapsed_s=time.perf_counter() - t0)  # fmt: skip
    tried: set[tuple[int, ...]] = set()
    best: Check | None = None
    n_hyp = 0
    for tri in _image_triads(det, Q, sph.radius, valid, cfg):
        if time.perf_counter() - t0 > cfg.time_budget_s:
            return _no_fix(best, t0, n_hyp, "time budget spent")
        ctri, Rs, ps = _candidate_poses(tri, det, Q, sph, u, index, attitude_prior, cfg)
        if ctri.shape[0] == 0:
            continue
        promising = ver.quick_look(Rs, ps, ctri[:, 0])
        for c_rows, R, p, go in zip(ctri, Rs, ps, promising, strict=True):
            key = (*tri, *c_rows)
            if key in tried:
                continue
            tried.add(key)
            n_hyp += 1
            if not go:
                continue
            chk = ver.grow(R, p, c_rows.astype(np.int64), np.asarray(tri, dtype=np.int64))
            if chk is None:
                continue
            if best is None or (chk.chance_log10, -chk.det_idx.size) < (
                best.chance_log10,
                -best.det_idx.size,
            ):
                best = chk
            if _accepted(chk, cfg, n_hyp):
                if attitude_prior is not None:
                    off = float(rotation_angle_deg(chk.R, attitude_prior.R_cam_from_me))
                    if off > 3.0 * attitude_prior.sigma_deg + 0.5:
                        why = f"the craters give an attitude {off:.1f} deg from the prior (sigma "
                        return _no_fix(None, t0, n_hyp, why + f"{attitude_prior.sigma_deg:g} deg)")
                return _result(chk, cat, t0, n_hyp)
    return _no_fix(best, t0, n_hyp, "no hypothesis verified")


def _candidate_poses(
    tri: list[int],
    det: NDArray,
    Q: NDArray,
    sph: _Sphere,
    u: NDArray,
    index: CraterIndex,
    prior: AttitudePrior | None,
    cfg: IdentifyConfig,
) -> tuple[NDArray, NDArray, NDArray]:
    """Catalogue triads whose descriptors are close to an image triad's, and the poses they give.

    Returns (catalogue rows (n, 3), R_cam_from_me (n, 3, 3), position (n, 3) m), best descriptor match
    first, keeping poses 5-5000 km above the surface that see the Moon's centre within 25 deg of where
    the sphere fit put it (when the fit is to be trusted).
    """
    none = (np.empty((0, 3), dtype=np.int64), np.empty((0, 3, 3)), np.empty((0, 3)))
    xy = det[tri, :2]
    side_px = float(np.min(np.hypot(*(xy - xy[[1, 2, 0]]).T)))
    if side_px < 6.0 * cfg.centre_sigma_px:
        return none
    desc = triad_descriptors(Q[tri][None], sph.radius[tri][None])[0]
    if not np.all(np.isfinite(desc)):
        return none
    # the shape terms loosen for short sides: about sqrt(2) sigma_c / side per side ratio
    s_shape = math.sqrt(2.0) * cfg.centre_sigma_px / side_px / DESCRIPTOR_SIGMA[0]
    radius_q = cfg.query_sigmas * max(1.0, s_shape)
    dist, cand = index.tree.query(
        desc / DESCRIPTOR_SIGMA, k=cfg.max_candidates, distance_upper_bound=radius_q
    )
    cand = cand[np.isfinite(dist)]
    if cand.size == 0:
        return none
    ctri = index.triads[cand]
    X = index.catalog.centres_me_m[ctri]
    if prior is None:
        Rs, ps, ok = p3p_grunert(np.broadcast_to(u[tri], (cand.size, 3, 3)), X)
    else:
        Rs, ps, ok = _poses_with_attitude(u[tri], X, prior)
    owner = np.nonzero(ok)[0]
    Rs, ps = Rs[ok], ps[ok]
    if Rs.shape[0] == 0:
        return none
    dist_c = np.linalg.norm(ps, axis=1)
    nu_pose = np.einsum("nij,nj->ni", Rs, -ps) / dist_c[:, None]
    keep = (dist_c - MOON_RADIUS_M > 5e3) & (dist_c - MOON_RADIUS_M < 5e6)
    if sph.trusted:
        keep &= nu_pose @ sph.nu > math.cos(math.radians(25.0))
    return ctri[owner[keep]].astype(np.int64), Rs[keep], ps[keep]


def _poses_with_attitude(
    u_tri: NDArray, X: NDArray, prior: AttitudePrior
) -> tuple[NDArray, NDArray, NDArray]:
    """Camera positions (m, MOON_ME) from three bearings and candidate craters, attitude from the prior.

    Solves X_k = r + rho_k d_k (d_k the bearings turned into MOON_ME by the prior) by least squares for
    each candidate triad (X: (n, 3, 3)); keeps positions with every range positive and residuals within
    what three times the prior's error (plus half a degree) allows. Returns (R, p, ok) shaped like P3P's.
    """
    R0 = np.asarray(prior.R_cam_from_me, dtype=float)
    d = u_tri @ R0  # rows: bearings in MOON_ME
    A = np.zeros((9, 6))
    for k in range(3):
        A[3 * k : 3 * k + 3, 0:3] = np.eye(3)
        A[3 * k : 3 * k + 3, 3 + k] = d[k]
    pinv = np.linalg.pinv(A)
    z = X.reshape(-1, 9) @ pinv.T  # (n, 6): r, rho_1..3
    res = X.reshape(-1, 9) - z @ A.T
    rho = z[:, 3:]
    tol = math.radians(3.0 * prior.sigma_deg + 0.5)
    with np.errstate(invalid="ignore"):
        ok = np.all(rho > 0, axis=1) & (
            np.sqrt(np.mean(res**2, axis=1) * 3.0) <= tol * np.mean(np.abs(rho), axis=1)
        )
    n = X.shape[0]
    return np.broadcast_to(R0, (n, 3, 3)).copy(), z[:, :3].copy(), ok


def _image_triads(det: NDArray, Q: NDArray, radius: NDArray, valid: NDArray, cfg: IdentifyConfig):
    """Yield image triads (counter-clockwise seen from outside the Moon), pivot by pivot, largest first.

    Each pivot is tried with its nearest neighbours among detections at least half its size (wide,
    well-conditioned triads, matching a higher size tier of the index), then among all detections.
    """
    order = valid[np.argsort(-det[valid, 2])]
    min_sep = 6.0 * cfg.centre_sigma_px
    seen: set[tuple[int, int, int]] = set()
    for i in order[: cfg.max_pivots]:
        lists: list[list[int]] = []
        for pool in (valid[radius[valid] >= 0.5 * radius[i]], valid):
            d = np.linalg.norm(Q[pool] - Q[i], axis=1)
            sep = np.hypot(*(det[pool, :2] - det[i, :2]).T)
            cand = pool[np.argsort(d)]
            cand_sep = sep[np.argsort(d)]
            nb = [int(j) for j, s_ in zip(cand, cand_sep, strict=True) if j != i and s_ >= min_sep][
                : cfg.neighbours
            ]
            if len(nb) >= 2 and nb not in lists:
                lists.append(nb)
        for nb in lists:
            for a in range(len(nb)):
                for b in range(a + 1, len(nb)):
                    key = tuple(sorted((int(i), nb[a], nb[b])))
                    if key in seen:
                        continue
                    seen.add(key)
                    tri = [int(i), nb[a], nb[b]]
                    if np.dot(Q[tri[0]], np.cross(Q[tri[1]], Q[tri[2]])) < 0:
                        tri = [int(i), nb[b], nb[a]]
                    yield tri


def _accepted(chk: Check, cfg: IdentifyConfig, n_hyp: int) -> bool:
    """Enough matches, a fair share of the predicted craters, and beyond chance over every hypothesis."""
    n = chk.det_idx.size
    return (
        n >= cfg.min_matches
        and n >= cfg.min_match_share * chk.n_pred
        and chk.chance_log10 + math.log10(max(n_hyp, 1)) <= cfg.max_chance_log10
    )


def _result(chk: Check, cat: IdCatalog, t0: float, n_hyp: int) -> IdResult:
    order = np.argsort(chk.det_idx)
    matches = [(int(chk.det_idx[k]), str(cat.ids[chk.rows[k]])) for k in order]
    return IdResult(
        "ok",
        "",
        chk.p.copy(),
        chk.R.copy(),
        matches,
        chk.rows[order].copy(),
        chk.rms_px,
        time.perf_counter() - t0,
        n_hyp,
        chk.chance_log10,
        chk.cov,
    )


def _no_fix(best: Check | None, t0: float, n_hyp: int, why: str) -> IdResult:
    if best is not None:
        why = (
            f"{why}; best hypothesis matched {best.det_idx.size} of {best.n_pred} predicted craters "
            f"(chance 1e{best.chance_log10:.1f})"
        )
    return IdResult("no_fix", why, elapsed_s=time.perf_counter() - t0, hypotheses=n_hyp)
