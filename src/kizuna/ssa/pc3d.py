"""Collision probability beyond the conjunction plane: two-body propagation, Monte Carlo and Hall's 3-D Nc.

The 2-D methods of :mod:`kizuna.ssa.pc` assume straight-line relative motion, a fixed covariance and an
encounter short against the orbital period. Slow encounters (co-orbiting objects, GEO neighbours) break
that; NASA CARA then uses Hall's 3-D Nc (Hall 2021, "Expected Collision Rates for Tracked Satellites",
JSR 58(3)) or a two-body Monte Carlo. Here:

* :func:`propagate_two_body`: Kepler propagation in universal variables, vectorised in numba.
* :func:`pc_monte_carlo`: both objects' 6-D states sampled at TCA, propagated by two-body motion over the
  window; the Pc is the fraction of pairs entering the hard-body sphere, with its exact binomial interval.
* :func:`pc_3d_hall`: the time integral of the collision rate, the inward flux of the relative-state PDF
  through the hard-body sphere. Means follow two-body motion and covariances the two-body state transition
  matrix (Cartesian linearisation about the mean orbits; CARA expands about the peak-overlap point in
  equinoctial elements, which differs only for covariances comparable to the orbit's curvature).

SI units (m, m/s, m^2, s) in one Earth-centred inertial frame; ``gm`` defaults to EGM-96's value, as in
CARA's Pc3D_Hall. Relative state here is r2 - r1, v2 - v1 (CARA's 3-D convention).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TypeAlias

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import integrate, optimize, special, stats

from kizuna.errors import InputError

__all__ = [
    "GM_EARTH_M3_S2",
    "MonteCarloResult",
    "propagate_two_body",
    "orbital_period_s",
    "conjunction_time_bounds",
    "default_window_s",
    "clopper_pearson",
    "pc_monte_carlo",
    "pc_3d_hall",
]

Vec: TypeAlias = ArrayLike  # inertial 3-vector(s), m or m/s
Cov: TypeAlias = ArrayLike | None  # 3x3 or 6x6 covariance(s), m and s; None = unknown / exact state
Window: TypeAlias = float | tuple[float, float] | None  # half-width T of [-T, T] s about TCA, or (start, end)

GM_EARTH_M3_S2 = 3.986004418e14  # EGM-96, the default of CARA's Pc3D_Hall and UsageViolationPc2D
FCLIP = 1e-4  # CARA eigenvalue clipping: eigenvalues below (FCLIP * HBR)^2 are raised to it
_SQRT2PI = math.sqrt(2.0 * math.pi)
_SQRTPI = math.sqrt(math.pi)


@dataclass(frozen=True)
class MonteCarloResult:
    """Monte Carlo collision probability with its binomial confidence interval (window in s from TCA)."""

    pc: float
    ci_low: float
    ci_high: float
    n_hits: int
    n_samples: int
    n_inside_at_start: int  # pairs already overlapping at the window start: not counted as hits
    confidence: float
    t_start_s: float
    t_end_s: float
    npd_clipped: bool  # a covariance had negative eigenvalues, set to zero before sampling


# ----------------------------------------------------------------------------------------------------------
# Two-body propagation by universal variables


@numba.njit(cache=True)
def _norm(a):  # pragma: no cover - numba
    return math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])


@numba.njit(cache=True)
def _stumpff(z):  # pragma: no cover - numba
    """Stumpff functions c2(z), c3(z)."""
    if abs(z) < 1e-2:
        c2 = 0.5 + z * (-1.0 / 24 + z * (1.0 / 720 + z * (-1.0 / 40320 + z * (1.0 / 3628800))))
        c3 = 1.0 / 6 + z * (-1.0 / 120 + z * (1.0 / 5040 + z * (-1.0 / 362880 + z * (1.0 / 39916800))))
        return c2, c3
    s = math.sqrt(abs(z))
    if z > 0.0:
        return (1.0 - math.cos(s)) / z, (s - math.sin(s)) / (s * z)
    return (math.cosh(s) - 1.0) / -z, (math.sinh(s) - s) / (s * -z)


@numba.njit(cache=True)
def _kepler(r0, v0, dt, gm, x, out_r, out_v):  # pragma: no cover - numba
    """Propagate (r0, v0) by dt into out_r, out_v by Newton on the universal anomaly from guess x.

    Returns the converged anomaly, or NaN (with NaN states) when the iteration fails.
    """
    sq = math.sqrt(gm)
    rn = _norm(r0)
    alpha = 2.0 / rn - (v0[0] ** 2 + v0[1] ** 2 + v0[2] ** 2) / gm
    a1 = (r0[0] * v0[0] + r0[1] * v0[1] + r0[2] * v0[2]) / sq
    a2 = 1.0 - alpha * rn
    for _ in range(60):
        z = alpha * x * x
        c2, c3 = _stumpff(z)
        dx = (a1 * x * x * c2 + a2 * x**3 * c3 + rn * x - sq * dt) / (
            a1 * x * (1.0 - z * c3) + a2 * x * x * c2 + rn
        )
        x -= dx
        if abs(dx) <= 1e-10 * (abs(x) + 1.0):  # quadratic convergence: x is now exact to rounding
            break
    else:
        out_r[:] = math.nan
        out_v[:] = math.nan
        return math.nan
    z = alpha * x * x
    c2, c3 = _stumpff(z)
    f, g = 1.0 - x * x / rn * c2, dt - x**3 * c3 / sq
    for c in range(3):
        out_r[c] = f * r0[c] + g * v0[c]
    r = _norm(out_r)
    fd, gd = sq / (r * rn) * (z * x * c3 - x), 1.0 - x * x / r * c2
    for c in range(3):
        out_v[c] = fd * r0[c] + gd * v0[c]
    return x


@numba.njit(cache=True)
def _next_guess(x, r0, v0, rprev, dt, t, gm):  # pragma: no cover - numba
    """Warm start: last anomaly plus sqrt(gm) dt / |r| (its rate), or sqrt(gm) t / |r0| afresh."""
    if x == x:
        return x + math.sqrt(gm) * dt / _norm(rprev)
    return math.sqrt(gm) * t / _norm(r0)


@numba.njit(cache=True)
def _propagate_one(r0, v0, T, gm, R, V):  # pragma: no cover - numba
    x = math.nan
    for j in range(T.shape[0]):
        x = _next_guess(x, r0, v0, R[j - 1], T[j] - T[j - 1] if j else 0.0, T[j], gm)
        x = _kepler(r0, v0, T[j], gm, x, R[j], V[j])


@numba.njit(cache=True)
def _propagate_serial(R0, V0, T, gm, R, V):  # pragma: no cover - numba
    for i in range(R0.shape[0]):
        _propagate_one(R0[i], V0[i], T, gm, R[i], V[i])


@numba.njit(parallel=True, cache=True)
def _propagate_parallel(R0, V0, T, gm, R, V):  # pragma: no cover - numba
    for i in numba.prange(R0.shape[0]):
        _propagate_one(R0[i], V0[i], T, gm, R[i], V[i])


def propagate_two_body(
    r_m: Vec, v_m_s: Vec, dt_s: ArrayLike, *, gm: float = GM_EARTH_M3_S2
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Propagate inertial states (m, m/s) by two-body motion to times dt_s (s); returns r, v (n, nt, 3).

    ``r_m``, ``v_m_s``: (3,) or (n, 3); ``dt_s``: scalar or (nt,) offsets from the states' epoch (any sign
    and order). Kepler's equation in universal variables (any conic); a failed iteration gives NaN.
    """
    r = np.atleast_2d(np.asarray(r_m, dtype=np.float64))
    v = np.atleast_2d(np.asarray(v_m_s, dtype=np.float64))
    t = np.atleast_1d(np.asarray(dt_s, dtype=np.float64))
    if r.shape != v.shape or r.shape[-1] != 3 or r.ndim != 2 or t.ndim != 1:
        raise InputError(f"propagate_two_body: r_m {r.shape} and v_m_s {v.shape} must both be (3,) or (n, 3)")
    out_r = np.empty((r.shape[0], t.size, 3))
    out_v = np.empty_like(out_r)
    kernel = _propagate_parallel if r.shape[0] * t.size > 20000 else _propagate_serial
    kernel(np.ascontiguousarray(r), np.ascontiguousarray(v), t, float(gm), out_r, out_v)
    return out_r, out_v


def orbital_period_s(r_m: Vec, v_m_s: Vec, *, gm: float = GM_EARTH_M3_S2) -> NDArray[np.float64]:
    """Two-body orbital period (s) of inertial states (m, m/s); inf for unbound orbits."""
    r, v = np.asarray(r_m, dtype=np.float64), np.asarray(v_m_s, dtype=np.float64)
    alpha = 2.0 / np.linalg.norm(r, axis=-1) - np.sum(v * v, axis=-1) / gm
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(alpha > 0, 2.0 * np.pi / np.sqrt(np.abs(alpha) ** 3 * gm), np.inf)


def _stm(r0: NDArray, v0: NDArray, t: NDArray, gm: float) -> tuple[NDArray, NDArray, NDArray]:
    """Mean r, v (nt, 3) and 6x6 state transition matrices (nt, 6, 6) by central differences of Kepler."""
    h = np.repeat([1e-5 * np.linalg.norm(r0), 1e-5 * np.linalg.norm(v0)], 3)
    states = np.repeat(np.concatenate([r0, v0])[None], 13, axis=0)
    states[1::2][np.arange(6), np.arange(6)] += h
    states[2::2][np.arange(6), np.arange(6)] -= h
    R, V = propagate_two_body(states[:, :3], states[:, 3:], t, gm=gm)
    X = np.concatenate([R, V], axis=-1)  # (13, nt, 6)
    phi = np.moveaxis((X[1::2] - X[2::2]) / (2.0 * h[:, None, None]), 0, -1)
    return R[0], V[0], phi


def _cov6(C: NDArray | None) -> NDArray:
    """6x6 covariance: zeros for None, a 3x3 padded with zero velocity terms."""
    out = np.zeros((6, 6))
    if C is not None:
        out[: C.shape[0], : C.shape[0]] = C
    return out


def _check_event(r1, v1, C1, r2, v2, C2, hbr_m) -> tuple:
    """Validate one conjunction's inputs; return float arrays (symmetrised covariances) and the HBR."""
    out = []
    for name, x in (("r1", r1), ("v1", v1), ("C1", C1), ("r2", r2), ("v2", v2), ("C2", C2)):
        if x is None and name[0] == "C":
            out.append(None)
            continue
        a = np.asarray(x, dtype=np.float64)
        cov = name[0] == "C"
        if (a.shape not in ((3, 3), (6, 6)) if cov else a.shape != (3,)) or not np.all(np.isfinite(a)):
            what = "a 3x3 or 6x6 covariance (m, s)" if cov else "3 numbers (m or m/s)"
            raise InputError(f"{name}: expected {what}, finite, got shape {a.shape}")
        out.append(0.5 * (a + a.T) if cov else a)
    hbr = float(hbr_m)
    if not hbr >= 0.0:
        raise InputError(f"hbr_m: expected a non-negative hard-body radius in m, got {hbr_m}")
    return (*out, hbr)


def conjunction_time_bounds(
    r1: Vec, v1: Vec, C1: Cov, r2: Vec, v2: Vec, C2: Cov, hbr_m: float, *, gamma: float = 1e-16
) -> tuple[float, float]:
    """Linear-motion conjunction time bounds (s from TCA) outside which at most gamma of the Pc accrues.

    CARA's rectilinear bounds (UsageViolationPc2D; Coppola 2012b, position covariance only): with A the
    combined 3x3 position covariance (eigenvalues clipped at (1e-4 HBR)^2), the Mahalanobis distance of
    r + v t is least at T = -r'A^-1 v / v'A^-1 v, 1-sigma width 1/sqrt(v'A^-1 v); the bounds are T -/+
    sqrt(2) erfcinv(gamma) widths. Zero relative velocity gives (-inf, inf).
    """
    r1, v1, C1, r2, v2, C2, hbr = _check_event(r1, v1, C1, r2, v2, C2, hbr_m)
    w, V = np.linalg.eigh(_cov6(C1)[:3, :3] + _cov6(C2)[:3, :3])
    Ainv = (V / np.maximum(w, max((FCLIP * hbr) ** 2, 1e-30 * max(float(np.max(np.abs(w))), 1e-300)))) @ V.T
    r, v = r2 - r1, v2 - v1
    vAv = float(v @ Ainv @ v)
    if not vAv > 0.0:
        return -math.inf, math.inf
    T = -float(r @ Ainv @ v) / vAv
    half = math.sqrt(2.0) * float(special.erfcinv(gamma)) / math.sqrt(vAv)
    return T - half, T + half


def _period_min(r1, v1, r2, v2, gm) -> float:
    return float(np.min(orbital_period_s(np.stack([r1, r2]), np.stack([v1, v2]), gm=gm)))


def default_window_s(
    r1: Vec, v1: Vec, C1: Cov, r2: Vec, v2: Vec, C2: Cov, hbr_m: float, *, gm: float = GM_EARTH_M3_S2
) -> tuple[float, float]:
    """Window (start, end) in s about TCA covering the encounter: linear bounds widened by half their span.

    :func:`conjunction_time_bounds` (gamma = 1e-16, CARA's default) widened by half their span, when that
    holds TCA and lies within half the shorter orbital period; otherwise (slow encounters, where straight
    lines say little, or zero relative velocity) plus or minus half that period, the whole encounter.
    CARA's published 3-D values use windows of their own (A09_FinalTime_s): pass ``duration_s`` to match.
    """
    half = 0.5 * _period_min(np.asarray(r1), np.asarray(v1), np.asarray(r2), np.asarray(v2), gm)
    half = half if np.isfinite(half) else 86400.0
    ta, tb = conjunction_time_bounds(r1, v1, C1, r2, v2, C2, hbr_m)
    if not (np.isfinite(ta) and np.isfinite(tb)):
        return -half, half
    a, b = 1.5 * ta - 0.5 * tb, 1.5 * tb - 0.5 * ta
    if a < 0.0 < b and a > -half and b < half:
        return a, b
    return -half, half


def _window(duration_s: Window, r1, v1, C1, r2, v2, C2, hbr, gm) -> tuple[float, float]:
    if duration_s is None:
        t0, t1 = default_window_s(r1, v1, C1, r2, v2, C2, hbr, gm=gm)
    elif np.ndim(duration_s) == 0:
        t0, t1 = -abs(float(duration_s)), abs(float(duration_s))
    else:
        t0, t1 = (float(x) for x in duration_s)
    if not t0 <= 0.0 <= t1 or t0 == t1:
        raise InputError(f"duration_s: the window ({t0}, {t1}) s must contain TCA (0 s) and not be empty")
    return t0, t1


# ----------------------------------------------------------------------------------------------------------
# Monte Carlo


@numba.njit(cache=True)
def _hermite(p0, w0, p1, w1, h, s):  # pragma: no cover - numba
    """|p(s)| on the cubic Hermite segment of relative motion, s in [0, 1]."""
    h00, h10, h01, h11 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s, 3 * s**2 - 2 * s**3, s**3 - s**2
    acc = 0.0
    for c in range(3):
        acc += (h00 * p0[c] + h10 * h * w0[c] + h01 * p1[c] + h11 * h * w1[c]) ** 2
    return math.sqrt(acc)


@numba.njit(cache=True)
def _segment_hits(p0, w0, p1, w1, h, R):  # pragma: no cover - numba
    """Whether the Hermite segment of relative motion comes within R.

    Quick test: the chord's distance less a bound on the cubic's departure from it (the Hermite basis
    weights of the end-slope mismatches are at most 4/27); then a 64-point scan and golden-section search.
    """
    dd = pd = e0 = e1 = 0.0
    for c in range(3):
        dp = p1[c] - p0[c]
        dd += dp * dp
        pd += p0[c] * dp
        e0 += (h * w0[c] - dp) ** 2
        e1 += (h * w1[c] - dp) ** 2
    s = min(1.0, max(0.0, -pd / dd)) if dd > 0.0 else 0.0
    chord = math.sqrt(max(0.0, (p0[0] ** 2 + p0[1] ** 2 + p0[2] ** 2) + 2.0 * s * pd + s * s * dd))
    if chord - 4.0 / 27.0 * (math.sqrt(e0) + math.sqrt(e1)) >= R:
        return False
    sb, best = 0.0, 1e300
    for k in range(65):
        d = _hermite(p0, w0, p1, w1, h, k / 64.0)
        if d < best:
            sb, best = k / 64.0, d
    a, b = max(0.0, sb - 1.0 / 64), min(1.0, sb + 1.0 / 64)
    for _ in range(40):
        c, d = b - 0.618034 * (b - a), a + 0.618034 * (b - a)
        if _hermite(p0, w0, p1, w1, h, c) < _hermite(p0, w0, p1, w1, h, d):
            b = d
        else:
            a = c
    return min(best, _hermite(p0, w0, p1, w1, h, 0.5 * (a + b))) < R


@numba.njit(parallel=True, cache=True)
def _mc_kernel(X1, X2, T, gm, hbr, hit):  # pragma: no cover - numba
    """hit[i] = 1 when pair i enters the radius-hbr sphere over the sorted times T, 2 if inside at T[0]."""
    for i in numba.prange(X1.shape[0]):
        S = np.empty((4, 3))  # r1, v1, r2, v2 at T[j]
        pw = np.empty((4, 3))  # relative position, velocity at T[j - 1] and T[j]
        x1 = x2 = math.nan
        for j in range(T.shape[0]):
            dt = T[j] - T[j - 1] if j else 0.0
            g1 = _next_guess(x1, X1[i, :3], X1[i, 3:], S[0], dt, T[j], gm)
            g2 = _next_guess(x2, X2[i, :3], X2[i, 3:], S[2], dt, T[j], gm)
            x1 = _kepler(X1[i, :3], X1[i, 3:], T[j], gm, g1, S[0], S[1])
            x2 = _kepler(X2[i, :3], X2[i, 3:], T[j], gm, g2, S[2], S[3])
            if x1 != x1 or x2 != x2:
                break
            for c in range(3):
                pw[2, c], pw[3, c] = S[2, c] - S[0, c], S[3, c] - S[1, c]
            if _norm(pw[2]) < hbr:
                hit[i] = 1 if j else 2
                break
            if j and _segment_hits(pw[0], pw[1], pw[2], pw[3], dt, hbr):
                hit[i] = 1
                break
            pw[:2] = pw[2:]


def _sampler(C: NDArray) -> tuple[NDArray, bool]:
    """Square-root factor S (C = S S^T) with negative eigenvalues set to zero, and whether any were."""
    w, V = np.linalg.eigh(C)
    return V * np.sqrt(np.clip(w, 0.0, None)), bool(np.any(w < -1e-12 * max(1.0, float(np.max(np.abs(w))))))


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) binomial confidence interval for k successes in n trials."""
    a = 1.0 - confidence
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a / 2, k + 1, n - k))
    return lo, hi


def pc_monte_carlo(
    r1: Vec,
    v1: Vec,
    C1: Cov,
    r2: Vec,
    v2: Vec,
    C2: Cov,
    hbr_m: float,
    *,
    n: int,
    seed: int | None,
    duration_s: Window = None,
    gm: float = GM_EARTH_M3_S2,
    confidence: float = 0.95,
    chunk: int = 1 << 16,
) -> MonteCarloResult:
    """Monte Carlo Pc of one conjunction by two-body propagation of sampled TCA states (m, m/s, inertial).

    Both 6-D states are drawn from N(state, C) at TCA (3x3: velocity exact; None: state exact), every pair
    is propagated by Kepler's equation over the window and is a hit when its separation falls below
    ``hbr_m`` (cubic Hermite interpolation of the relative motion between grid times at most 1/100 of the
    shorter period apart, refined wherever the pair could come within the radius). A pair already closer
    than the radius at the window start collided before it and is not counted (their number is returned),
    so the estimate is the probability of entering the sphere, as Hall's Nc and CARA's Monte Carlo.
    ``duration_s``: half-width T of [-T, T] about TCA (CARA's Alfano 2009 time limits) or (start, end);
    None uses :func:`default_window_s`.
    """
    r1, v1, C1, r2, v2, C2, hbr = _check_event(r1, v1, C1, r2, v2, C2, hbr_m)
    if int(n) < 1:
        raise InputError(f"n: expected a positive number of samples, got {n}")
    t0, t1 = _window(duration_s, r1, v1, C1, r2, v2, C2, hbr, gm)
    period = _period_min(r1, v1, r2, v2, gm)
    step = min(period / 100.0 if np.isfinite(period) else 60.0, (t1 - t0) / 8.0)
    T = np.unique(
        np.concatenate(
            [np.linspace(t0, 0.0, math.ceil(-t0 / step) + 1), np.linspace(0.0, t1, math.ceil(t1 / step) + 1)]
        )
    )
    (S1, npd1), (S2, npd2) = _sampler(_cov6(C1)), _sampler(_cov6(C2))
    x1, x2 = np.concatenate([r1, v1]), np.concatenate([r2, v2])
    rng = np.random.default_rng(seed)
    counts = np.zeros(3, dtype=np.int64)
    for start in range(0, int(n), chunk):
        m = min(chunk, int(n) - start)
        hit = np.zeros(m, dtype=np.int8)
        X1 = x1 + rng.standard_normal((m, 6)) @ S1.T
        X2 = x2 + rng.standard_normal((m, 6)) @ S2.T
        _mc_kernel(X1, X2, T, float(gm), hbr, hit)
        counts += np.bincount(hit, minlength=3)
    hits = int(counts[1])
    lo, hi = clopper_pearson(hits, int(n), confidence)
    return MonteCarloResult(hits / n, lo, hi, hits, int(n), int(counts[2]), confidence, t0, t1, npd1 or npd2)


# ----------------------------------------------------------------------------------------------------------
# Hall (2021) 3-D Nc: time integral of the collision rate through the hard-body sphere

_GL5 = np.polynomial.legendre.leggauss(5)
_GL3 = np.polynomial.legendre.leggauss(3)
_X5, _W5, _X3, _W3 = _GL5[0], _GL5[1], _GL3[0], _GL3[1]


@numba.njit(cache=True)
def _flux(rh, par):  # pragma: no cover - numba
    """Inward flux density nu(rhat) N3(R rhat) at unit vector rh (Coppola 2012a eqs 31-39, Hall 2021).

    par packs mean relative position (0:3) and velocity (3:6), A^-1 (6:15), B A^-1 (15:24), the velocity
    covariance conditional on position C - B A^-1 B' (24:33), log of the Gaussian normaliser (33) and R (34).
    """
    R = par[34]
    d = (R * rh[0] - par[0], R * rh[1] - par[1], R * rh[2] - par[2])
    md2 = 0.0
    nu0 = 0.0
    sig2 = 0.0
    for a in range(3):
        ad = 0.0
        qd = 0.0
        for b in range(3):
            ad += par[6 + 3 * a + b] * d[b]
            qd += par[15 + 3 * a + b] * d[b]
            sig2 += rh[a] * par[24 + 3 * a + b] * rh[b]
        md2 += d[a] * ad
        nu0 += rh[a] * (par[3 + a] + qd)
    e = -par[33] - 0.5 * md2
    if e < -745.0:
        return 0.0
    if sig2 <= 0.0:
        return max(0.0, -nu0) * math.exp(e)
    sig = math.sqrt(sig2)
    x = nu0 / (sig * math.sqrt(2.0))
    if x < 5.0:
        h = math.exp(-x * x) - _SQRTPI * x * math.erfc(x)
    else:  # exp(-x^2) (1 - sqrt(pi) x erfcx(x)) by its asymptotic series, free of cancellation
        u = 1.0 / (2.0 * x * x)
        h = math.exp(-x * x) * u * (1.0 - 3.0 * u * (1.0 - 5.0 * u * (1.0 - 7.0 * u * (1.0 - 9.0 * u))))
    return sig * h / _SQRT2PI * math.exp(e)


@numba.njit(cache=True)
def _gauss(c, E, par, X, W):  # pragma: no cover - numba
    """Tensor Gauss-Legendre rule for the flux density over cell c = (u0, u1, phi0, phi1) of (cos th, phi)."""
    um, uh = 0.5 * (c[0] + c[1]), 0.5 * (c[1] - c[0])
    pm, ph = 0.5 * (c[2] + c[3]), 0.5 * (c[3] - c[2])
    rh = np.empty(3)
    acc = 0.0
    for i in range(X.size):
        u = um + uh * X[i]
        s = math.sqrt(max(0.0, 1.0 - u * u))
        for j in range(X.size):
            p = pm + ph * X[j]
            cx, cy = s * math.cos(p), s * math.sin(p)
            for a in range(3):
                rh[a] = E[a, 0] * cx + E[a, 1] * cy + E[a, 2] * u
            acc += W[i] * W[j] * _flux(rh, par)
    return acc * uh * ph


@numba.njit(cache=True)
def _set_cell(reg, k, u0, u1, p0, p1, E, par):  # pragma: no cover - numba
    """Store cell k with its 5x5 Gauss value and |5x5 - 3x3| as error estimate."""
    reg[k, 0], reg[k, 1], reg[k, 2], reg[k, 3] = u0, u1, p0, p1
    v = np.empty(2)
    for m in range(2):
        v[m] = _gauss(reg[k], E, par, _X5 if m == 0 else _X3, _W5 if m == 0 else _W3)
    reg[k, 4], reg[k, 5] = v[0], abs(v[0] - v[1])


@numba.njit(cache=True)
def _split(reg, k, n, E, par):  # pragma: no cover - numba
    """Split cell k into four (k, n, n + 1, n + 2); return the new cell count."""
    u0, u1, p0, p1 = reg[k, 0], reg[k, 1], reg[k, 2], reg[k, 3]
    um, pm = 0.5 * (u0 + u1), 0.5 * (p0 + p1)
    for m in range(4):
        lo_u, lo_p = m % 2 == 0, m < 2
        dst = k if m == 0 else n + m - 1
        _set_cell(
            reg, dst, u0 if lo_u else um, um if lo_u else u1, p0 if lo_p else pm, pm if lo_p else p1, E, par
        )
    return n + 3


@numba.njit(cache=True)
def _unit_cross(a, b, out):  # pragma: no cover - numba
    """out = a x b normalised; returns the norm of a x b."""
    out[0], out[1], out[2] = a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]
    n = _norm(out)
    if n > 0.0:
        out /= n
    return n


@numba.njit(cache=True)
def _peak(p, par):  # pragma: no cover - numba
    """Climb to a local maximum of the flux density on the unit sphere (shrinking 8-direction search)."""
    best, t1, t2, q, ax = np.empty(3), np.empty(3), np.empty(3), np.empty(3), np.empty(3)
    pn = _norm(p)
    for c in range(3):
        best[c] = p[c] / pn
    fb = _flux(best, par)
    step = 0.08
    while step > 1e-5:
        for c in range(3):
            ax[c] = 1.0 if c == (0 if abs(best[0]) < 0.9 else 1) else 0.0
        _unit_cross(best, ax, t1)
        _unit_cross(best, t1, t2)
        moved = False
        for k in range(8):
            ck, sk = step * math.cos(k * math.pi / 4), step * math.sin(k * math.pi / 4)
            for c in range(3):
                q[c] = best[c] + ck * t1[c] + sk * t2[c]
            qn = _norm(q)
            for c in range(3):
                q[c] /= qn
            f = _flux(q, par)
            if f > fb:
                fb, moved = f, True
                for c in range(3):
                    best[c] = q[c]
        if not moved:
            step *= 0.5
    return best, fb


@numba.njit(cache=True)
def _sphere_rate(par, width, rtol, cap):  # pragma: no cover - numba
    """Collision rate (1/s): R^2 times the integral of the inward flux density over the unit sphere.

    The sphere is parametrised by (u = cos theta, phi), whose area element is du dphi. The brightest point
    and the brightest one over 0.5 rad away (entry and exit points), found by a Fibonacci scan and a local
    search, are put on the equator; the cells holding them are split down to ``width`` (sigma_min / R /
    4), then cells are split where the 5x5 and 3x3 Gauss rules disagree most until the summed
    disagreement is below ``rtol`` of the total.
    """
    nf = 1500
    pts = np.empty((nf, 3))
    vals = np.empty(nf)
    for k in range(nf):
        z = 1.0 - (2.0 * k + 1.0) / nf
        s = math.sqrt(max(0.0, 1.0 - z * z))
        pts[k, 0], pts[k, 1], pts[k, 2] = s * math.cos(2.39996323 * k), s * math.sin(2.39996323 * k), z
        vals[k] = _flux(pts[k], par)
    k1 = np.argmax(vals)
    p1 = np.empty(3)
    for c in range(3):
        p1[c] = pts[k1, c]
    mn = _norm(par)  # par[:3] is the mean relative position: try it and its opposite too
    for sgn in (1.0, -1.0):
        q = np.empty(3)
        for c in range(3):
            q[c] = sgn * par[c] / mn if mn > 0.0 else p1[c]
        if _flux(q, par) > _flux(p1, par):
            p1 = q
    p1, f1 = _peak(p1, par)
    i2, f2 = -1, 1e-8 * f1
    for k in range(nf):
        if pts[k, 0] * p1[0] + pts[k, 1] * p1[1] + pts[k, 2] * p1[2] < math.cos(0.5) and vals[k] > f2:
            i2, f2 = k, vals[k]
    p2 = _peak(pts[i2], par)[0] if i2 >= 0 else p1
    E = np.empty((3, 3))  # columns: p1, e2, pole (both peaks on the equator u = 0)
    pole, e2, ax = np.empty(3), np.empty(3), np.zeros(3)
    if _unit_cross(p1, p2, pole) < 1e-3:
        ax[0 if abs(p1[0]) < 0.9 else 1] = 1.0
        _unit_cross(p1, ax, pole)
    _unit_cross(pole, p1, e2)
    for c in range(3):
        E[c, 0], E[c, 1], E[c, 2] = p1[c], e2[c], pole[c]
    targets = np.zeros((2, 2))  # (u, phi) of the two peaks
    targets[1, 0], targets[1, 1] = p2 @ pole, math.atan2(p2 @ e2, p2 @ p1)
    reg = np.empty((cap, 6))
    n = 0
    for i in range(128):
        u0, p0 = (i // 16) / 4.0 - 1.0, (i % 16 / 8.0 - 1.0) * math.pi
        _set_cell(reg, n, u0, u0 + 0.25, p0, p0 + math.pi / 8.0, E, par)
        n += 1
    for t in range(2 if i2 >= 0 else 1):
        for _ in range(60):
            k = 0
            while k < n and not (
                reg[k, 0] <= targets[t, 0] <= reg[k, 1] and reg[k, 2] <= targets[t, 1] <= reg[k, 3]
            ):
                k += 1
            if k == n or n + 3 > cap or (reg[k, 1] - reg[k, 0] <= width and reg[k, 3] - reg[k, 2] <= width):
                break
            n = _split(reg, k, n, E, par)
    while True:
        tot, err = np.sum(reg[:n, 4]), np.sum(reg[:n, 5])
        if err <= rtol * tot or err <= 1e-300 or n + 3 > cap:
            return par[34] ** 2 * tot
        # split every cell whose error exceeds a quarter of its share of the tolerance, worst first
        order = np.argsort(reg[:n, 5])[::-1]
        m0 = n
        for k in order:
            if (reg[k, 5] <= 0.25 * rtol * tot / m0 and k != order[0]) or n + 3 > cap or n - m0 > m0:
                break
            n = _split(reg, k, n, E, par)


def _clip_inv(A: NDArray, lclip: float) -> tuple[NDArray, float, bool]:
    """Inverse and log-determinant of a symmetric matrix with eigenvalues clipped below at lclip."""
    w, V = np.linalg.eigh(0.5 * (A + A.T))
    return (
        (V / np.maximum(w, lclip)) @ V.T,
        float(np.sum(np.log(np.maximum(w, lclip)))),
        bool(np.any(w < lclip)),
    )


def _relative(t: NDArray, ctx: dict) -> tuple[NDArray, NDArray, NDArray]:
    """Mean relative position, velocity (nt, 3) and 6x6 relative covariance (nt, 6, 6) at times t."""
    ra, va, pa = _stm(ctx["r1"], ctx["v1"], t, ctx["gm"])
    rb, vb, pb = _stm(ctx["r2"], ctx["v2"], t, ctx["gm"])
    P = pa @ ctx["C1"] @ np.swapaxes(pa, 1, 2) + pb @ ctx["C2"] @ np.swapaxes(pb, 1, 2)
    return rb - ra, vb - va, P


def _rate_at(t: float, ctx: dict) -> float:
    """Collision rate dNc/dt (1/s) at t seconds from TCA."""
    dr, dv, P = (x[0] for x in _relative(np.array([t]), ctx))
    Ainv, logdet, clipped = _clip_inv(P[:3, :3], ctx["lclip"])
    ctx["clipped"] |= clipped
    Q1 = P[3:, :3] @ Ainv
    logz = 0.5 * (3.0 * math.log(2.0 * math.pi) + logdet)
    par = np.concatenate(
        [dr, dv, Ainv.ravel(), Q1.ravel(), (P[3:, 3:] - Q1 @ P[3:, :3].T).ravel(), [logz, ctx["hbr"]]]
    )
    ctx["evaluations"] += 1
    width = 0.25 / math.sqrt(float(np.max(np.linalg.eigvalsh(Ainv)))) / ctx["hbr"]
    return _sphere_rate(par, width, ctx["sphere_rtol"], 20000)


def _md2_at(t: NDArray, ctx: dict) -> tuple[NDArray, NDArray]:
    """Mean Mahalanobis distance squared of the relative position at times t, and its time scale (s).

    The scale is the shorter of the rectilinear 1-sigma duration 1/sqrt(v'A^-1 v) and HBR / |v|.
    """
    dr, dv, P = _relative(t, ctx)
    md2, scale = np.empty(t.size), np.empty(t.size)
    for k in range(t.size):
        Ainv = _clip_inv(P[k, :3, :3], ctx["lclip"])[0]
        wAw, speed = float(dv[k] @ Ainv @ dv[k]), float(np.linalg.norm(dv[k]))
        md2[k] = dr[k] @ Ainv @ dr[k]
        scale[k] = min(
            1.0 / math.sqrt(wAw) if wAw > 0 else math.inf, ctx["hbr"] / speed if speed > 0 else math.inf
        )
    return md2, scale


def _breakpoints(ctx: dict, t0: float, t1: float) -> NDArray:
    """Breakpoints (s from TCA) of the time integral about minima of the mean Mahalanobis distance.

    Each significant minimum and +-1, 4, 16 time scales about it: the rate can be a spike far narrower
    than the window, which a first Gauss-Kronrod pass over the whole window would miss.
    """
    ts = np.unique(np.append(np.linspace(t0, t1, 401), 0.0))
    md2 = _md2_at(ts, ctx)[0]
    k = np.concatenate(
        [np.flatnonzero((md2[1:-1] <= md2[:-2]) & (md2[1:-1] <= md2[2:])) + 1, [0, ts.size - 1]]
    )
    k = k[np.argsort(md2[k])]
    pts = []
    for i in k[md2[k] <= md2[k[0]] + 50.0][:6]:  # rate within exp(-25) of the deepest minimum's
        lo, hi = ts[max(i - 1, 0)], ts[min(i + 1, ts.size - 1)]
        tm = float(
            optimize.minimize_scalar(
                lambda x: float(_md2_at(np.array([x]), ctx)[0][0]),
                bounds=(lo, hi),
                method="bounded",
                options={"xatol": 1e-6 * (hi - lo) + 1e-9},
            ).x
        )
        scale = float(_md2_at(np.array([tm]), ctx)[1][0])
        pts += [tm] + ([tm + f * scale for f in (-16, -4, -1, 1, 4, 16)] if np.isfinite(scale) else [])
    pts = np.unique(np.clip(pts, t0, t1))
    return pts[(pts > t0) & (pts < t1)]


def pc_3d_hall(
    r1: Vec,
    v1: Vec,
    C1: Cov,
    r2: Vec,
    v2: Vec,
    C2: Cov,
    hbr_m: float,
    *,
    duration_s: Window = None,
    gm: float = GM_EARTH_M3_S2,
    rel_tol: float = 1e-4,
    full_output: bool = False,
) -> float | tuple[float, dict]:
    """Hall (2021) 3-D Nc collision probability of one conjunction (m, m/s, m^2, inertial frame).

    The expected number of collisions over the window is the time integral of the collision rate, the
    inward flux of the relative position-velocity PDF through the hard-body sphere (Coppola 2012a; Hall
    2021). Mean states follow two-body motion from TCA and both 6x6 covariances the two-body state
    transition matrix, so curved relative motion and covariance growth over long, slow encounters are
    kept. Sphere integral: adaptive Gauss-Legendre cells in (cos theta, phi); time integral: adaptive
    Gauss-Kronrod with breakpoints about minima of the mean Mahalanobis distance; ``rel_tol`` for both.
    Returns min(1, Nc) as CARA's Pc3D_Hall; ``full_output`` adds a dict (``nc``, window, number of rate
    evaluations, whether CARA's eigenvalue clipping was used). ``duration_s``: half-width T of [-T, T]
    about TCA, or (start, end); None uses :func:`default_window_s`.
    """
    r1, v1, C1, r2, v2, C2, hbr = _check_event(r1, v1, C1, r2, v2, C2, hbr_m)
    t0, t1 = _window(duration_s, r1, v1, C1, r2, v2, C2, hbr, gm)
    ctx = {
        "r1": r1,
        "v1": v1,
        "r2": r2,
        "v2": v2,
        "C1": _cov6(C1),
        "C2": _cov6(C2),
        "gm": float(gm),
        "hbr": hbr,
        "lclip": (FCLIP * hbr) ** 2,
        "sphere_rtol": rel_tol / 3.0,
        "evaluations": 0,
        "clipped": False,
    }
    nc = 0.0 if hbr == 0.0 else math.inf
    if 0.0 < hbr < math.inf:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", integrate.IntegrationWarning)
            nc = integrate.quad(
                _rate_at,
                t0,
                t1,
                args=(ctx,),
                points=_breakpoints(ctx, t0, t1),
                epsabs=0.0,
                epsrel=rel_tol,
                limit=1000,
            )[0]
    info = {
        "t_start_s": t0,
        "t_end_s": t1,
        "nc": float(nc),
        "evaluations": ctx["evaluations"],
        "clipped": ctx["clipped"],
    }
    pc = min(1.0, max(0.0, float(nc)))
    return (pc, info) if full_output else pc
