"""Probability of collision (Pc) of a conjunction between two space objects, as NASA CARA computes it.

Conventions (those of CARA's Pc2D_Foster, PcCircle and PcElrod):

* States are position (m) and velocity (m/s) of both objects at the time of closest approach (TCA) in any
  one inertial frame; covariances are 3x3 (position) or 6x6 (position-velocity, m and s) in that frame.
  The 2-D methods only need consistent units (CARA's own test vectors are in km), the 3-D and Monte Carlo
  methods need metres because of the Earth's GM.
* Relative state r = r1 - r2, v = v1 - v2. Encounter frame: y along v, z along r x v (normal to the
  relative orbit), x = y x z (along the miss vector at TCA). The conjunction plane is (x, z); the
  combined covariance C1 + C2 (objects uncorrelated) is projected onto it.
* The 2x2 projected covariance is remediated as CARA does when it is not positive definite: eigenvalues
  below (1e-4 HBR)^2 are raised to that value (eigenvalue clipping) and the flag NPD_REMEDIATED is set.
* Methods: :func:`pc_foster` (Foster & Estes 1992: the 2-D Gaussian integrated over the hard-body circle
  by nested adaptive quadrature); :func:`pc_elrod` (error-function form, CARA's PcCircle/PcElrod:
  Gauss-Chebyshev quadrature of order 64 along the major axis, exact erf along the other); :func:`pc_chan`
  (Chan's series for the equivalent-area circle: exact for isotropic covariances, approximate otherwise);
  :func:`kizuna.ssa.pc3d.pc_3d_hall` and :func:`kizuna.ssa.pc3d.pc_monte_carlo` where the 2-D assumptions
  fail; :func:`pc_max_alfano` and :func:`pc_max_frisbee` when covariances are unknown.

:func:`collision_probability` runs CARA's checks and returns a :class:`PcResult` with flags; with
``method="auto"`` it uses Foster's 2-D Pc unless CARA's usage-violation indicators (extended duration
> 0.02, offset > 0.01 of the shorter orbital period) or a zero relative velocity rule it out, then Hall's 3-D.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import integrate, optimize, special

from kizuna.errors import InputError
from kizuna.ssa import pc3d
from kizuna.ssa.pc3d import Cov, Vec, Window

Pcs: TypeAlias = float | NDArray[np.float64]  # one Pc, or an array of them for array inputs

__all__ = [
    "FLAGS",
    "PcResult",
    "encounter_frame",
    "pc_foster",
    "pc_elrod",
    "pc_chan",
    "pc_max_alfano",
    "pc_max_isotropic",
    "pc_max_frisbee",
    "collision_probability",
]

FCLIP = pc3d.FCLIP  # CARA's eigenvalue clipping factor
PC_FLOOR = 1e-300  # CARA's Pc_tiny: smaller Pc values are reported as 0
EXTENDED_CUTOFF = 0.02  # CARA PcMultiStep Pc2DExtendedCutoff
OFFSET_CUTOFF = 0.01  # CARA PcMultiStep Pc2DOffsetCutoff
# CARA PcMultiStep: a position variance of (99 % of 10 Earth radii)^2 or more marks a default covariance
DEFAULT_COV_M2 = (0.99 * 10.0 * 6378135.0) ** 2
NOT_AT_TCA_COS = 1e-3  # |cos| of the miss-vector / relative-velocity angle above which states are off TCA

FLAGS = {
    "COVARIANCE_MISSING_PRIMARY": "no covariance for object 1: the combined covariance is object 2's",
    "COVARIANCE_MISSING_SECONDARY": "no covariance for object 2: the combined covariance is object 1's",
    "NO_COVARIANCE": "no covariance for either object: no Pc",
    "DEFAULT_COVARIANCE": "a position variance >= (9.9 Earth radii)^2, a default covariance (CARA): no Pc",
    "NEGATIVE_VARIANCE": "a negative diagonal covariance term (CARA data-quality error): no Pc",
    "NPD_PRIMARY": "object 1's 3x3 position covariance is not positive definite",
    "NPD_SECONDARY": "object 2's 3x3 position covariance is not positive definite",
    "NPD_REMEDIATED": "conjunction-plane covariance eigenvalues clipped at (1e-4 HBR)^2 (CARA remediation)",
    "ZERO_MISS": "miss distance below max(10 eps, 1e-6 HBR): moved off zero along (r1+r2) x v (CARA)",
    "ZERO_RELATIVE_VELOCITY": "no relative velocity: no conjunction plane, the 2-D Pc is undefined",
    "HBR_EXCEEDS_MISS": "hard-body radius larger than the miss distance",
    "NOT_AT_TCA": "miss vector not perpendicular to the relative velocity: states are not at TCA",
    "TWO_D_EXTENDED": "encounter longer than 0.02 of the shorter orbital period: 2-D Pc not valid (CARA)",
    "TWO_D_OFFSET": "encounter offset from TCA by over 0.01 of the shorter period: 2-D Pc not valid (CARA)",
    "NO_VELOCITY_COVARIANCE": "3x3 covariances: velocity uncertainty taken as zero by the 3-D / MC method",
    "PC_BELOW_FLOOR": "Pc below 1e-300 (CARA Pc_tiny) reported as 0",
    "MC_NO_HITS": "Monte Carlo found no hits: the Pc is below the confidence interval's upper end",
    "NOT_CONVERGED": "the chosen method did not return a finite Pc",
}


@dataclass(frozen=True)
class PcResult:
    """Collision probability of one conjunction, with CARA's flags and conjunction-plane quantities (SI)."""

    pc: float
    method: str  # "foster", "elrod", "chan", "3d", "mc" or "none"
    flags: tuple[str, ...]
    miss_m: float  # |r1 - r2| at TCA
    rel_speed_m_s: float  # |v1 - v2| at TCA
    sigma_x_m: float  # conjunction-plane 1-sigma along the major principal axis (CARA sx)
    sigma_z_m: float  # conjunction-plane 1-sigma along the minor principal axis (CARA sz)
    hbr_m: float
    x_miss_m: float  # miss distance projected on the major axis (CARA xm)
    z_miss_m: float  # miss distance projected on the minor axis (CARA zm)
    pc_2d: float  # Foster 2-D Pc (nan where undefined)
    extended_indicator: float  # CARA usage-violation indicators (fractions of the shorter period)
    offset_indicator: float
    t_start_s: float  # window of the 3-D / MC methods, or the linear conjunction bounds, s from TCA
    t_end_s: float
    pc_ci_low: float = math.nan  # Monte Carlo 95 % binomial interval
    pc_ci_high: float = math.nan
    n_samples: int = 0
    n_hits: int = 0


# ----------------------------------------------------------------------------------------------------------
# Conjunction plane


def _vec(x: ArrayLike, name: str) -> NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim < 1 or a.shape[-1] != 3 or not np.all(np.isfinite(a)):
        raise InputError(f"{name}: expected finite vectors of shape (..., 3), got shape {a.shape}")
    return a


def _pos_cov(C: ArrayLike | None, name: str) -> NDArray[np.float64] | None:
    if C is None:
        return None
    a = np.asarray(C, dtype=np.float64)
    if a.ndim < 2 or a.shape[-2:] not in ((3, 3), (6, 6)) or not np.all(np.isfinite(a)):
        raise InputError(f"{name}: expected finite 3x3 or 6x6 covariances (..., n, n), got shape {a.shape}")
    return a[..., :3, :3]


def _hbr(h: ArrayLike) -> NDArray[np.float64]:
    a = np.asarray(h, dtype=np.float64)
    if np.any(np.isnan(a)) or np.any(a < 0):
        raise InputError(f"hbr_m: expected non-negative hard-body radii, got {h}")
    return a


def _relative(r1, v1, r2, v2, hbr):
    """Relative r, v (CARA r1 - r2), with CARA's zero-miss perturbation; returns r, v, zero-miss mask."""
    r = r1 - r2
    v = v1 - v2
    rm = np.linalg.norm(r, axis=-1)
    reps = np.maximum(10.0 * np.spacing(rm), 1e-6 * np.where(np.isfinite(hbr), hbr, 0.0))
    small = rm < reps
    if np.any(small):
        rsum = r1 + r2
        d = np.cross(rsum, v)
        norm = np.linalg.norm(rsum, axis=-1) * np.linalg.norm(v, axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where((norm > 0)[..., None], d / norm[..., None], 0.0)
        r = np.where(small[..., None], r + reps[..., None] * d, r)
    return r, v, small


def _frame(r: NDArray, v: NDArray) -> NDArray:
    """Rows x, y, z of the encounter frame (NaN where the relative velocity is zero)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        y = v / np.linalg.norm(v, axis=-1, keepdims=True)
        h = np.cross(r, v)
        hn = np.linalg.norm(h, axis=-1, keepdims=True)
        # r parallel to v (or zero): any normal to v will do
        alt = np.cross(y, np.where(np.abs(y[..., :1]) < 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]))
        h = np.where(hn > 0, h, alt)
        z = h / np.linalg.norm(h, axis=-1, keepdims=True)
        x = np.cross(y, z)
    return np.stack([x, y, z], axis=-2)


def encounter_frame(
    r1: Vec, v1: Vec, r2: Vec, v2: Vec
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """CARA encounter frame of conjunctions (inertial m, m/s in): rotation, 2-D miss vector (m), speed (m/s).

    r = r1 - r2, v = v1 - v2 (object 1 relative to object 2, as CARA's Pc2D_Foster). Returns ``R``
    (..., 3, 3) whose rows are x (along the miss vector), y (along v) and z (along r x v), so ``R @ a``
    takes an inertial vector into the frame; ``miss_2d`` (..., 2), the miss vector's (x, z) components in
    the conjunction plane (|r|, 0 at TCA); and ``rel_speed`` |v|. A zero relative velocity gives NaN axes.
    """
    r, v, _ = _relative(_vec(r1, "r1"), _vec(v1, "v1"), _vec(r2, "r2"), _vec(v2, "v2"), np.float64(0.0))
    R = _frame(r, v)
    rr = np.einsum("...ij,...j->...i", R, r)
    return R, rr[..., [0, 2]], np.linalg.norm(v, axis=-1)


def _eig2(a, b, c):
    """Eigenvalues L1 >= L2 and unit major eigenvector (vx, vz) of [[a, b], [b, c]] (vectorised)."""
    m = 0.5 * (a + c)
    d = np.hypot(0.5 * (a - c), b)
    L1 = m + d
    L2 = m - d
    u = np.stack([b, L1 - a], axis=-1)
    w = np.stack([L1 - c, b], axis=-1)
    vec = np.where((np.linalg.norm(u, axis=-1) >= np.linalg.norm(w, axis=-1))[..., None], u, w)
    n = np.linalg.norm(vec, axis=-1, keepdims=True)
    diag = np.where((a >= c)[..., None], [1.0, 0.0], [0.0, 1.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        vec = np.where(n > 0, vec / n, diag)
    return L1, L2, vec


def _plane(r1, v1, C1, r2, v2, C2, hbr_m) -> dict:
    """Project one or many conjunctions on the conjunction plane, with CARA's checks and remediation."""
    r1, v1, r2, v2 = _vec(r1, "r1"), _vec(v1, "v1"), _vec(r2, "r2"), _vec(v2, "v2")
    A1, A2 = _pos_cov(C1, "C1"), _pos_cov(C2, "C2")
    hbr = _hbr(hbr_m)
    shape = np.broadcast_shapes(
        r1.shape[:-1],
        v1.shape[:-1],
        r2.shape[:-1],
        v2.shape[:-1],
        hbr.shape,
        *(A.shape[:-2] for A in (A1, A2) if A is not None),
    )
    zero = np.zeros((*shape, 3, 3))
    A = (zero if A1 is None else A1 + zero) + (zero if A2 is None else A2)
    r1, v1, r2, v2 = (np.broadcast_to(x, (*shape, 3)) for x in (r1, v1, r2, v2))
    hbr = np.broadcast_to(hbr, shape)
    r, v, zero_miss = _relative(r1, v1, r2, v2, hbr)
    R = _frame(r, v)
    P = R @ A @ np.swapaxes(R, -1, -2)
    a, b, c = P[..., 0, 0], 0.5 * (P[..., 0, 2] + P[..., 2, 0]), P[..., 2, 2]
    L1, L2, V1 = _eig2(a, b, c)
    lclip = np.where(np.isfinite(hbr), (FCLIP * hbr) ** 2, 0.0)
    remediated = (L1 < lclip) | (L2 < lclip)
    usable = L1 > 0  # CARA PcCircle: two non-positive eigenvalues cannot be remediated
    L1c = np.maximum(L1, lclip)
    L2c = np.maximum(L2, lclip)
    miss = np.linalg.norm(r, axis=-1)
    speed = np.linalg.norm(v, axis=-1)
    return {
        "r": r,
        "v": v,
        "R": R,
        "miss": miss,
        "speed": speed,
        "hbr": hbr,
        "V1": V1,
        "L1": L1c,
        "L2": L2c,
        "remediated": remediated & usable,
        "usable": usable & (speed > 0),
        "zero_miss": zero_miss,
        "zero_vel": speed == 0,
        "xm": miss * np.abs(V1[..., 0]),
        "zm": miss * np.abs(V1[..., 1]),
    }


def _special(pc: NDArray, g: dict) -> NDArray:
    """Apply CARA's special values: NaN where no plane, 0 for HBR 0, 1 for infinite HBR."""
    pc = np.where(g["usable"], pc, np.nan)
    pc = np.where(g["hbr"] == 0, 0.0, pc)
    pc = np.where(np.isinf(g["hbr"]) & g["usable"], 1.0, pc)
    return pc


def _out(pc: NDArray) -> Pcs:
    return float(pc) if np.ndim(pc) == 0 else pc


# ----------------------------------------------------------------------------------------------------------
# 2-D methods


def _foster_one(x0, V1, L1, L2, R, rel_tol, shape):
    """Foster's 2-D integral over the hard-body region centred at (x0, 0), nested adaptive quadrature."""
    vx, vz = V1
    # inverse covariance in the (x, z) frame: V diag(1/L) V^T with V = [[vx, -vz], [vz, vx]]
    ia = vx * vx / L1 + vz * vz / L2
    ib = vx * vz * (1.0 / L1 - 1.0 / L2)
    ic = vz * vz / L1 + vx * vx / L2
    norm = 1.0 / (2.0 * math.pi * math.sqrt(L1 * L2))
    half = {"circle": R, "square": R, "square_equal_area": 0.5 * math.sqrt(math.pi) * R}[shape]
    rel_tol = max(rel_tol, 2e-14)
    inner_tol = max(rel_tol * 1e-2, 2e-14)

    def inner(x: float) -> float:
        h = math.sqrt(max(R * R - (x - x0) ** 2, 0.0)) if shape == "circle" else half
        if h <= 0.0:
            return 0.0
        zs = -ib * x / ic
        pts = [zs] if -h < zs < h else None
        f = lambda z: math.exp(-0.5 * (ia * x * x + 2.0 * ib * x * z + ic * z * z))  # noqa: E731
        return integrate.quad(f, -h, h, points=pts, epsabs=0.0, epsrel=inner_tol, limit=200)[0]

    # Breakpoints where the chord [-h(x), h(x)] passes the ridge z = beta x of the density (within a few
    # conditional sigmas): there the inner integral steps, too sharply for a first Gauss-Kronrod pass.
    lo, hi = x0 - half, x0 + half
    beta, s = -ib / ic, 1.0 / math.sqrt(ic)
    pts = [0.0]
    for c in (0.0, -4.0 * s, 4.0 * s):
        if shape == "circle":
            qa, qb, qc = 1.0 + beta * beta, -2.0 * (x0 - beta * c), x0 * x0 + c * c - R * R
            disc = qb * qb - 4.0 * qa * qc
            if disc >= 0.0:
                pts += [(-qb - math.sqrt(disc)) / (2.0 * qa), (-qb + math.sqrt(disc)) / (2.0 * qa)]
        elif beta != 0.0:
            pts += [(half - c) / beta, (-half - c) / beta]
    pts = sorted(p for p in set(pts) if lo < p < hi)
    val = integrate.quad(inner, lo, hi, points=pts or None, epsabs=0.0, epsrel=rel_tol, limit=400)[0]
    return norm * val


def pc_foster(
    r1: Vec,
    v1: Vec,
    C1: Cov,
    r2: Vec,
    v2: Vec,
    C2: Cov,
    hbr_m: ArrayLike,
    *,
    rel_tol: float = 1e-8,
    hbr_shape: str = "circle",
) -> Pcs:
    """Foster & Estes (1992) 2-D Pc of conjunctions (inertial states in m, m/s; covariances in m^2).

    The combined position covariance is projected onto the conjunction plane (CARA's Pc2D_Foster frame,
    NPD remediation by eigenvalue clipping) and the 2-D Gaussian is integrated over the hard-body circle
    (or the circumscribing square, ``"square"``, or the square of equal area, ``"square_equal_area"``,
    CARA's other HBRType values) by nested adaptive Gauss-Kronrod quadrature with relative tolerance
    ``rel_tol``. Arrays of shape (..., 3) / (..., n, n) give an array of Pc. NaN where the relative
    velocity is zero or the covariance is zero in the plane.
    """
    if hbr_shape not in ("circle", "square", "square_equal_area"):
        raise InputError(f"hbr_shape: expected 'circle', 'square' or 'square_equal_area', got {hbr_shape!r}")
    g = _plane(r1, v1, C1, r2, v2, C2, hbr_m)
    pc = np.full(g["miss"].shape, np.nan)
    ok = g["usable"] & (g["hbr"] > 0) & np.isfinite(g["hbr"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        for idx in zip(*np.nonzero(ok), strict=True) if pc.ndim else ([()] if ok else []):
            pc[idx] = _foster_one(
                float(g["miss"][idx]),
                g["V1"][idx],
                float(g["L1"][idx]),
                float(g["L2"][idx]),
                float(g["hbr"][idx]),
                rel_tol,
                hbr_shape,
            )
    return _out(_special(np.minimum(pc, 1.0), g))


def _erf_diff(a: NDArray, b: NDArray) -> NDArray:
    """erf(a) - erf(b) without cancellation where both arguments share a sign."""
    pos = (a > 0) & (b > 0)
    neg = (a < 0) & (b < 0)
    return np.where(
        pos,
        special.erfc(b) - special.erfc(a),
        np.where(neg, special.erfc(-a) - special.erfc(-b), special.erf(a) - special.erf(b)),
    )


def _principal_integrand(x, xm, zm, sx, sz, R):
    """Integrand of the principal-axis Pc along x: exp(-x^2 / 2 sx^2) * (erf difference across z)."""
    h = np.sqrt(np.maximum(R * R - (x - xm) ** 2, 0.0))
    s2 = math.sqrt(2.0)
    return np.exp(-0.5 * (x / sx) ** 2) * _erf_diff((zm + h) / (s2 * sz), (zm - h) / (s2 * sz))


def _pc_principal(xm: float, zm: float, sx: float, sz: float, R: float, rel_tol: float = 1e-12) -> float:
    """Pc in the principal frame by adaptive 1-D quadrature of the error-function integrand.

    Breakpoints go where the chord half-width h(x) equals |zm| (+- a few sz): the erf difference steps
    there, too sharply for a first Gauss-Kronrod pass when sz << HBR.
    """
    lo, hi = xm - R, xm + R
    pts = [0.0]
    for k in (0.0, -1.0, 1.0, -3.0, 3.0, -8.0, 8.0):
        hk = abs(zm) + k * sz
        if 0.0 <= hk < R:
            d = math.sqrt(R * R - hk * hk)
            pts += [xm - d, xm + d]
    pts = sorted(p for p in set(pts) if lo < p < hi)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        val = integrate.quad(
            _principal_integrand,
            lo,
            hi,
            args=(xm, zm, sx, sz, R),
            points=pts or None,
            epsabs=0.0,
            epsrel=rel_tol,
            limit=400,
        )[0]
    return val / (2.0 * math.sqrt(2.0 * math.pi) * sx)


def pc_elrod(
    r1: Vec,
    v1: Vec,
    C1: Cov,
    r2: Vec,
    v2: Vec,
    C2: Cov,
    hbr_m: ArrayLike,
    *,
    order: int = 64,
    cara_compatible: bool = False,
) -> Pcs:
    """Error-function 2-D Pc (Elrod; CARA's PcCircle) of conjunctions (inertial m, m/s, m^2), vectorised.

    In the principal axes of the conjunction-plane covariance the integral across the minor axis is an
    exact error-function difference; along the major axis it is a Gauss-Chebyshev (second kind) rule of
    ``order`` points, whose integrand is smooth because the chord half-width enters only squared. As in
    CARA's PcCircle the rule is used where the hard-body circle lies within 4 sigma of the major axis, and
    here also only where HBR < (order + 1) sz / (2 pi) (a narrower minor axis makes the erf step near the
    circle's ends too sharp for the rule); adaptive quadrature of the same integrand is used elsewhere.
    ``cara_compatible=True`` drops that second test and so reproduces CARA's PcCircle values, including
    its quadrature error for HBR >> sz (about 3e-4 relative at HBR / sz = 160 in CARA's own test vectors).
    """
    g = _plane(r1, v1, C1, r2, v2, C2, hbr_m)
    R = np.where(np.isfinite(g["hbr"]), g["hbr"], 0.0)
    sx, sz, xm, zm = np.sqrt(g["L1"]), np.sqrt(g["L2"]), g["xm"], g["zm"]
    k = np.arange(1, order + 1)
    th = k * np.pi / (order + 1)
    u, w = np.cos(th), np.pi / (order + 1) * np.sin(th)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = xm[..., None] + R[..., None] * u
        f = _principal_integrand(x, xm[..., None], zm[..., None], sx[..., None], sz[..., None], R[..., None])
        pc = R * np.sum(w * f, axis=-1) / (2.0 * math.sqrt(2.0 * math.pi) * sx)
    xlo, xhi = xm - R, xm + R
    # CARA's 4-sigma test on the major axis; and the chord's erf step (width sz) must span several nodes
    gc_ok = (xlo > -4.0 * sx) & (xhi < np.maximum(xlo, 0.0) + 4.0 * sx)
    if not cara_compatible:
        gc_ok &= R * math.pi < 0.5 * (order + 1) * sz
    pc = np.asarray(pc, dtype=np.float64)
    redo = g["usable"] & (R > 0) & ~gc_ok
    for idx in zip(*np.nonzero(redo), strict=True) if pc.ndim else ([()] if redo else []):
        pc[idx] = _pc_principal(float(xm[idx]), float(zm[idx]), float(sx[idx]), float(sz[idx]), float(R[idx]))
    return _out(_special(np.minimum(pc, 1.0), g))


def pc_chan(r1: Vec, v1: Vec, C1: Cov, r2: Vec, v2: Vec, C2: Cov, hbr_m: ArrayLike) -> Pcs:
    """Chan's series 2-D Pc of conjunctions (inertial m, m/s, m^2): exact for isotropic covariances only.

    Chan (1997, 2008) replaces the hard-body circle by the circle of equal Mahalanobis area, u = R^2 /
    (sx sz), with v = (xm/sx)^2 + (zm/sz)^2 the squared Mahalanobis miss, and sums
    Pc = exp(-v/2) sum_m (v/2)^m / m! [1 - exp(-u/2) sum_{k<=m} (u/2)^k / k!], i.e. the probability that a
    Poisson(u/2) count exceeds an independent Poisson(v/2) one (computed with regularised gamma functions).
    """
    g = _plane(r1, v1, C1, r2, v2, C2, hbr_m)
    R = np.where(np.isfinite(g["hbr"]), g["hbr"], 0.0)
    sx, sz = np.sqrt(g["L1"]), np.sqrt(g["L2"])
    hu = 0.5 * R * R / (sx * sz)
    hv = 0.5 * ((g["xm"] / sx) ** 2 + (g["zm"] / sz) ** 2)
    pc = np.full(hu.shape, np.nan)
    for idx in np.ndindex(hu.shape):
        a, b = float(hu[idx]), float(hv[idx])
        if not (np.isfinite(a) and np.isfinite(b)):
            continue
        spread = 12.0 * math.sqrt(b) + 40.0
        m = np.arange(max(0, int(b - spread)), int(b + spread) + 1, dtype=np.float64)
        with np.errstate(divide="ignore"):
            logp = m * math.log(b) - b - special.gammaln(m + 1) if b > 0 else np.where(m == 0, 0.0, -np.inf)
        pc[idx] = float(np.sum(np.exp(logp) * special.gammainc(m + 1, a)))
    return _out(_special(np.minimum(pc, 1.0), g))


# ----------------------------------------------------------------------------------------------------------
# Maximum Pc when covariances are unknown


def pc_max_alfano(miss_m: ArrayLike, hbr_m: ArrayLike, *, aspect_ratio: float = 1.0) -> tuple[Pcs, Pcs]:
    """Maximum conjunction-plane Pc over covariance size (Alfano 2005) for miss, HBR in m; and its sigma (m).

    Alfano (2005, "Relating position uncertainty to maximum conjunction probability", JAS 53(2)): for a
    miss distance d and hard-body radius R (m, conjunction plane), the conjunction-plane covariance of fixed
    shape (major / minor sigma = ``aspect_ratio``, major axis along the miss vector, the orientation that
    maximises Pc) is scaled until the Pc is largest. The Pc is integrated exactly (not the small-HBR form
    aspect_ratio R^2 / (e d^2), reached when R << d) and maximised over log(sigma) by bounded Brent
    search; sigma_major returned, minor = major / aspect_ratio. CelesTrak SOCRATES reports this maximum
    with aspect ratio 3 (radial, in-track, cross-track sigmas of 100, 300, 100 m). R >= d gives Pc 1 at
    sigma 0.
    """
    d = np.asarray(miss_m, dtype=np.float64)
    R = _hbr(hbr_m)
    if np.any(~np.isfinite(d)) or np.any(d < 0) or not aspect_ratio >= 1.0:
        raise InputError(
            f"pc_max_alfano: expected miss_m >= 0 and aspect_ratio >= 1, got {miss_m}, {aspect_ratio}"
        )
    d, R = np.broadcast_arrays(d, R)
    pmax = np.empty(d.shape)
    smax = np.empty(d.shape)
    for idx in np.ndindex(d.shape):
        dd, rr = float(d[idx]), float(R[idx])
        if rr >= dd:
            pmax[idx], smax[idx] = 1.0, 0.0
            continue
        if rr == 0.0:
            pmax[idx], smax[idx] = 0.0, math.nan
            continue

        def neg(ls: float, dd=dd, rr=rr) -> float:
            sx = math.exp(ls)
            return -_pc_principal(dd, 0.0, sx, sx / aspect_ratio, rr)

        s0 = math.log(dd / math.sqrt(2.0))  # small-HBR optimum sigma = d / sqrt(2)
        res = optimize.minimize_scalar(
            neg, bounds=(s0 - 4.0, s0 + 4.0), method="bounded", options={"xatol": 1e-9}
        )
        pmax[idx], smax[idx] = -float(res.fun), math.exp(float(res.x))
    return _out(pmax), _out(smax)


def pc_max_isotropic(miss_m: ArrayLike, hbr_m: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Maximum Pc over isotropic conjunction-plane covariances (Alfano 2005) for miss distances (m); sigma.

    The aspect-ratio-1 case of :func:`pc_max_alfano`, vectorised for screening output: with an isotropic
    sigma the Pc is a non-central chi-square probability, P(chi'^2_2(d^2/s^2) <= R^2/s^2) (scipy's ncx2), and
    the maximum over log(sigma) is found by golden-section search on all events at once (to 1e-9 in
    log sigma). R >= d gives Pc 1 at sigma 0; R = 0 gives 0.
    """
    from scipy.stats import ncx2

    d, R = np.broadcast_arrays(np.asarray(miss_m, dtype=np.float64), _hbr(hbr_m))
    if np.any(~np.isfinite(d)) or np.any(d < 0):
        raise InputError("pc_max_isotropic: expected finite miss distances >= 0 m")
    shape = d.shape
    d = d.ravel()
    R = R.ravel()
    pmax = np.where(R >= d, 1.0, 0.0)
    smax = np.where(R >= d, 0.0, np.nan)
    live = (R < d) & (R > 0)
    if live.any():
        dd, rr = d[live], R[live]

        def pc(ls: NDArray[np.float64]) -> NDArray[np.float64]:
            s2 = np.exp(2.0 * ls)
            return ncx2.cdf(rr * rr / s2, 2, dd * dd / s2)

        lo = np.log(dd / math.sqrt(2.0)) - 4.0  # small-HBR optimum sigma = d / sqrt(2), bracketed widely
        hi = lo + 8.0
        g = (math.sqrt(5.0) - 1.0) / 2.0
        x1 = hi - g * (hi - lo)
        x2 = lo + g * (hi - lo)
        f1, f2 = pc(x1), pc(x2)
        while np.max(hi - lo) > 1e-9:
            left = f1 > f2  # the maximum lies in [lo, x2]: x2 becomes hi, x1 becomes x2
            hi = np.where(left, x2, hi)
            lo = np.where(left, lo, x1)
            nx1 = np.where(left, hi - g * (hi - lo), x2)
            nx2 = np.where(left, x1, lo + g * (hi - lo))
            fe = pc(np.where(left, nx1, nx2))
            f1, f2 = np.where(left, fe, f2), np.where(left, f1, fe)
            x1, x2 = nx1, nx2
        best = 0.5 * (lo + hi)
        pmax[live] = pc(best)
        smax[live] = np.exp(best)
    return pmax.reshape(shape), smax.reshape(shape)


def pc_max_frisbee(
    r1: Vec, v1: Vec, C1: Cov, r2: Vec, v2: Vec, C2: Cov, hbr_m: float, *, rel_tol: float = 1e-8
) -> float:
    """Maximum 2-D Pc of a conjunction (inertial m, m/s, m^2) with one covariance unknown (CARA FrisbeeMaxPc).

    One of C1, C2 is None or all zeros. Frisbee's construction: with K^2 the squared Mahalanobis miss
    distance under the known conjunction-plane covariance, the unknown object is given the variance
    V = d^2 (K^2 - 1) / K^2 along the miss vector (zero across it) when K > 1 -- the rank-one covariance
    that maximises the Pc -- and none when K <= 1; the Pc of the sum is Foster's (inertial m, m/s, m^2).
    """
    zero = [C is None or not np.any(np.asarray(C, dtype=np.float64)) for C in (C1, C2)]
    if zero[0] == zero[1]:
        raise InputError("pc_max_frisbee: exactly one of C1, C2 must be missing (None or all zeros)")
    known = C2 if zero[0] else C1
    g = _plane(r1, v1, known, r2, v2, None, hbr_m)
    if g["miss"].ndim or not bool(g["usable"]):
        if g["miss"].ndim:
            raise InputError("pc_max_frisbee: one conjunction at a time (vectors of shape (3,))")
        return math.nan
    d, V1, L1, L2 = float(g["miss"]), g["V1"], float(g["L1"]), float(g["L2"])
    vx, vz = V1
    k2 = d * d * (vx * vx / L1 + vz * vz / L2)
    a = vx * vx * L1 + vz * vz * L2 + (d * d * (k2 - 1.0) / k2 if k2 > 1.0 else 0.0)
    b = vx * vz * (L1 - L2)
    c = vz * vz * L1 + vx * vx * L2
    M1, M2, W = _eig2(np.float64(a), np.float64(b), np.float64(c))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        return min(1.0, _foster_one(d, W, float(M1), float(M2), float(g["hbr"]), rel_tol, "circle"))


# ----------------------------------------------------------------------------------------------------------
# One conjunction, CARA's checks and method choice


def collision_probability(
    r1: ArrayLike,
    v1: ArrayLike,
    C1: ArrayLike | None,
    r2: ArrayLike,
    v2: ArrayLike,
    C2: ArrayLike | None,
    hbr_m: float,
    *,
    method: str = "auto",
    rel_tol: float = 1e-8,
    duration_s: Window = None,
    n_samples: int = 100_000,
    seed: int | None = None,
    gm: float = pc3d.GM_EARTH_M3_S2,
    pc_floor: float = PC_FLOOR,
) -> PcResult:
    """Collision probability of one conjunction (inertial m, m/s, m^2) with CARA's checks as flags.

    ``method``: "foster", "elrod", "chan" (2-D), "3d" (Hall's Nc, :func:`kizuna.ssa.pc3d.pc_3d_hall`),
    "mc" (:func:`kizuna.ssa.pc3d.pc_monte_carlo` with ``n_samples`` and ``seed``) or "auto": Foster unless
    CARA's 2-D usage-violation indicators fail (extended duration, offset from TCA, zero relative
    velocity), then 3-D. ``duration_s`` is the 3-D / MC window (half-width or (start, end) in s from TCA).
    A missing covariance (None) makes the combined covariance the other object's; CARA's data-quality
    errors (negative variance, default covariance, none at all) give pc NaN and method "none". Pc below
    ``pc_floor`` is reported as 0. See :data:`FLAGS` for every flag.
    """
    if method not in ("auto", "foster", "elrod", "chan", "3d", "mc"):
        raise InputError(f"method: expected auto, foster, elrod, chan, 3d or mc, got {method!r}")
    r1, v1, C1, r2, v2, C2, hbr = pc3d._check_event(r1, v1, C1, r2, v2, C2, hbr_m)
    flags: list[str] = []
    bad = False
    for tag, C, npd in (("PRIMARY", C1, "NPD_PRIMARY"), ("SECONDARY", C2, "NPD_SECONDARY")):
        if C is None or not np.any(C[:3, :3]):
            flags.append(f"COVARIANCE_MISSING_{tag}")
            continue
        if np.any(np.diag(C) < 0):
            flags.append("NEGATIVE_VARIANCE")
            bad = True
        if np.any(np.diag(C)[:3] >= DEFAULT_COV_M2):
            flags.append("DEFAULT_COVARIANCE")
            bad = True
        if np.min(np.linalg.eigvalsh(C[:3, :3])) <= 0:
            flags.append(npd)
    if "COVARIANCE_MISSING_PRIMARY" in flags and "COVARIANCE_MISSING_SECONDARY" in flags:
        flags.append("NO_COVARIANCE")
        bad = True
    C1u = None if "COVARIANCE_MISSING_PRIMARY" in flags else C1
    C2u = None if "COVARIANCE_MISSING_SECONDARY" in flags else C2
    g = _plane(r1, v1, C1u, r2, v2, C2u, hbr)
    miss, speed = float(np.linalg.norm(r1 - r2)), float(np.linalg.norm(v1 - v2))
    if bool(g["zero_miss"]):
        flags.append("ZERO_MISS")
    if bool(g["zero_vel"]):
        flags.append("ZERO_RELATIVE_VELOCITY")
    if hbr > miss:
        flags.append("HBR_EXCEEDS_MISS")
    if miss > 0 and speed > 0 and abs(float((r1 - r2) @ (v1 - v2))) > NOT_AT_TCA_COS * miss * speed:
        flags.append("NOT_AT_TCA")
    if bool(g["remediated"]) and not bad:
        flags.append("NPD_REMEDIATED")
    # CARA's rectilinear usage-violation indicators (UsageViolationPc2D)
    ta, tb = pc3d.conjunction_time_bounds(r1, v1, C1u, r2, v2, C2u, hbr)
    pmin = float(np.min(pc3d.orbital_period_s(np.stack([r1, r2]), np.stack([v1, v2]), gm=gm)))
    if np.isfinite(ta) and np.isfinite(tb):
        ext = min(1.0, (tb - ta) / pmin) if np.isfinite(pmin) else 0.0
        off = min(1.0, max(abs(ta), abs(tb)) / pmin) if np.isfinite(pmin) else 0.0
    else:
        ext = off = 1.0
    if ext > EXTENDED_CUTOFF:
        flags.append("TWO_D_EXTENDED")
    if off > OFFSET_CUTOFF:
        flags.append("TWO_D_OFFSET")
    pc2d = math.nan
    if not bad and not bool(g["zero_vel"]):
        pc2d = float(pc_foster(r1, v1, C1u, r2, v2, C2u, hbr, rel_tol=rel_tol))
    if method == "auto":
        valid2d = not ({"TWO_D_EXTENDED", "TWO_D_OFFSET", "ZERO_RELATIVE_VELOCITY"} & set(flags))
        method = "foster" if valid2d else "3d"
    base = {
        "miss_m": miss,
        "rel_speed_m_s": speed,
        "sigma_x_m": float(np.sqrt(g["L1"])),
        "sigma_z_m": float(np.sqrt(g["L2"])),
        "hbr_m": hbr,
        "x_miss_m": float(g["xm"]),
        "z_miss_m": float(g["zm"]),
        "pc_2d": pc2d,
        "extended_indicator": ext,
        "offset_indicator": off,
        "t_start_s": ta,
        "t_end_s": tb,
    }
    if bad:
        return PcResult(pc=math.nan, method="none", flags=tuple(dict.fromkeys(flags)), **base)
    extra: dict = {}
    if method in ("3d", "mc") and not any(C is not None and C.shape == (6, 6) for C in (C1u, C2u)):
        flags.append("NO_VELOCITY_COVARIANCE")
    if method == "foster":
        pc = pc2d
    elif method == "elrod":
        pc = float(pc_elrod(r1, v1, C1u, r2, v2, C2u, hbr))
    elif method == "chan":
        pc = float(pc_chan(r1, v1, C1u, r2, v2, C2u, hbr))
    elif method == "3d":
        pc, info = pc3d.pc_3d_hall(
            r1, v1, C1u, r2, v2, C2u, hbr, duration_s=duration_s, gm=gm, full_output=True
        )
        base.update(t_start_s=info["t_start_s"], t_end_s=info["t_end_s"])
    else:
        mc = pc3d.pc_monte_carlo(
            r1, v1, C1u, r2, v2, C2u, hbr, n=n_samples, seed=seed, duration_s=duration_s, gm=gm
        )
        pc = mc.pc
        base.update(t_start_s=mc.t_start_s, t_end_s=mc.t_end_s)
        extra = {
            "pc_ci_low": mc.ci_low,
            "pc_ci_high": mc.ci_high,
            "n_samples": mc.n_samples,
            "n_hits": mc.n_hits,
        }
        if mc.n_hits == 0:
            flags.append("MC_NO_HITS")
    if not np.isfinite(pc):
        flags.append("NOT_CONVERGED")
    elif 0.0 < pc < pc_floor:
        flags.append("PC_BELOW_FLOOR")
        pc = 0.0
    return PcResult(pc=float(pc), method=method, flags=tuple(dict.fromkeys(flags)), **base, **extra)
