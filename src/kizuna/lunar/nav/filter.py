"""Error-state (multiplicative, indirect) Kalman filter for lunar landing navigation in frame L.

Nominal state: position r_l (m, L), velocity v_l (m/s, L), attitude q_lb (body to L), accelerometer bias
b_a (m/s^2, body) and gyro bias b_g (rad/s, body). Error state, 15 components in this order:

    dr (m, L), dv (m/s, L), dtheta (rad, L), db_a (m/s^2, body), db_g (rad/s, body)

with r = r_hat + dr, v = v_hat + dv, b = b_hat + db and the attitude error a small rotation *in frame L*
(global error): q_true = Exp(dtheta) * q_hat. Frame L is treated as inertial (the Moon's rotation is
neglected, see ``dynamics.py``). IMU model: f_meas = f + b_a + n_a, w_meas = w + b_g + n_g, biases
random walks. Linearised error dynamics (a = R(q) (f_meas - b_a) the specific force in L, G the gravity
gradient):

    d(dr)/dt = dv
    d(dv)/dt = G dr - [a]x dtheta - R db_a - R n_a
    d(dtheta)/dt = -R db_g - R n_g
    d(db_a)/dt = w_a,   d(db_g)/dt = w_g

The discrete transition is the second-order series Phi = I + F dt + (F dt)^2 / 2 with F evaluated at
mid-step; it is the exact linearisation of the mechanisation in ``imu.py`` except for the dropped
G dt^3/4 term of the position row (relative size 1e-9 at 50 Hz). The discrete process noise is that of
the IMU as sampled (and as ``simulate_imu`` makes it): white noise on each step's mean specific force
and rate, so Q_vv = N_a^2 dt, Q_rv = N_a^2 dt^2/2, Q_rr = N_a^2 dt^3/4 (the trapezoid carries dt/2 of
the velocity increment), Q_thth = N_g^2 dt, and bias random walks with Q_b = K^2 dt per step. The
second-order effect of gyro noise on the rotation of the specific force within a step is neglected.

Every measurement update is gated: the update is rejected, and the filter left untouched, when the
normalised innovation squared NIS = y^T S^-1 y exceeds the chi-square quantile chi2.ppf(gate_prob, dof).
Accepted updates use the Joseph form and keep P symmetric.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import chi2

from kizuna.core.rotations import (
    quat_conjugate,
    quat_multiply,
    quat_to_rotvec,
)
from kizuna.errors import ComputationError, InputError
from kizuna.lunar.nav.dynamics import gravity_gradient_into
from kizuna.lunar.nav.imu import ImuSpec, quat_exp_mul, quat_matrix_into, strapdown_into

__all__ = ["NavFilter", "NavState", "UpdateResult", "altimeter_range", "average_nees_bounds"]

N_ERR = 15
_IR = slice(0, 3)
_IV = slice(3, 6)
_ITH = slice(6, 9)
_IBA = slice(9, 12)
_IBG = slice(12, 15)

# Measurement Jacobians that do not depend on the state: position fix, and pose (position + attitude).
_H_POSITION = np.zeros((3, 15))
_H_POSITION[:, 0:3] = np.eye(3)
_H_POSE = np.zeros((6, 15))
_H_POSE[0:3, 0:3] = np.eye(3)
_H_POSE[3:6, 6:9] = np.eye(3)


@dataclass(frozen=True)
class UpdateResult:
    """Outcome of one gated measurement update: NIS, chi-square gate and innovation (measurement units)."""

    accepted: bool
    nis: float  # normalised innovation squared y^T S^-1 y (dimensionless)
    dof: int  # measurement dimension
    gate: float  # chi2.ppf(gate_prob, dof); rejected when nis > gate
    innovation: NDArray[np.float64]  # y = z - h(x_hat), shape (dof,)
    S: NDArray[np.float64]  # innovation covariance H P H^T + R, shape (dof, dof)


@dataclass(frozen=True)
class NavState:
    """Nominal navigation state: r_l (m, L), v_l (m/s, L), q_lb (body to L), biases (body, SI)."""

    r_l: NDArray[np.float64]
    v_l: NDArray[np.float64]
    q_lb: NDArray[np.float64]
    accel_bias_b: NDArray[np.float64]  # m/s^2
    gyro_bias_b: NDArray[np.float64]  # rad/s


def average_nees_bounds(n_runs: int, dof: int, prob: float = 0.95) -> tuple[float, float]:
    """Return the two-sided prob region of the N-run average NEES of a dof-dimensional state (dimensionless).

    Bar-Shalom, Li and Kirubarajan, "Estimation with Applications to Tracking and Navigation" (2001),
    sec. 5.4.2: N times the average NEES over N independent runs is chi-square with N*dof degrees of freedom.
    """
    if n_runs < 1 or dof < 1:
        raise InputError(f"n_runs, dof: expected positive integers, got {n_runs}, {dof}")
    if not 0.0 < prob < 1.0:
        raise InputError(f"prob: expected a probability in (0, 1), got {prob}")
    k = n_runs * dof
    tail = 0.5 * (1.0 - prob)
    return float(chi2.ppf(tail, k) / n_runs), float(chi2.ppf(1.0 - tail, k) / n_runs)


# --------------------------------------------------------------------------------------------------
# Compiled prediction step
# --------------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _predict_kernel(
    r: NDArray[np.float64],
    v: NDArray[np.float64],
    q: NDArray[np.float64],
    ba: NDArray[np.float64],
    bg: NDArray[np.float64],
    p: NDArray[np.float64],
    f_meas: NDArray[np.float64],
    w_meas: NDArray[np.float64],
    dt: float,
    noise: NDArray[np.float64],
    phi: NDArray[np.float64],
    tmp: NDArray[np.float64],
    rm: NDArray[np.float64],
    gg: NDArray[np.float64],
    fa: NDArray[np.float64],
    wa: NDArray[np.float64],
    a: NDArray[np.float64],
) -> bool:
    """Strapdown the nominal state and propagate P = Phi P Phi^T + Q in place (see the module docstring).

    Returns False, having changed nothing, when an input is not finite.
    """
    if not math.isfinite(dt):
        return False
    for i in range(3):
        if not (math.isfinite(f_meas[i]) and math.isfinite(w_meas[i])):
            return False
    na2, ng2, ka2, kg2 = noise[0], noise[1], noise[2], noise[3]
    for i in range(3):
        fa[i] = f_meas[i] - ba[i]
        wa[i] = w_meas[i] - bg[i]
    # Gravity gradient at the predicted mid-step position (before r, v are overwritten).
    gravity_gradient_into(r[0] + 0.5 * dt * v[0], r[1] + 0.5 * dt * v[1], r[2] + 0.5 * dt * v[2], gg)
    strapdown_into(r, v, q, fa, wa, dt, r, v, q, rm, a)

    # Phi = I + F dt + F^2 dt^2 / 2, written block by block (F blocks: rv = I, vr = G, vth = -[a]x,
    # vba = -R, thbg = -R).
    h = dt
    h2 = 0.5 * dt * dt
    for i in range(N_ERR):
        for j in range(N_ERR):
            phi[i, j] = 0.0
        phi[i, i] = 1.0
    ax, ay, az = a[0], a[1], a[2]
    # skew(a) rows
    sa = ((0.0, -az, ay), (az, 0.0, -ax), (-ay, ax, 0.0))
    for i in range(3):
        phi[i, 3 + i] = h
        for j in range(3):
            phi[i, j] += gg[i, j] * h2  # rr
            phi[3 + i, 3 + j] += gg[i, j] * h2  # vv
            phi[3 + i, j] = gg[i, j] * h  # vr
            phi[i, 6 + j] = -sa[i][j] * h2  # r-theta
            phi[3 + i, 6 + j] = -sa[i][j] * h  # v-theta
            phi[i, 9 + j] = -rm[i, j] * h2  # r-ba
            phi[3 + i, 9 + j] = -rm[i, j] * h  # v-ba
            phi[6 + i, 12 + j] = -rm[i, j] * h  # theta-bg
            # v-bg: ([a]x R) dt^2 / 2
            phi[3 + i, 12 + j] = (sa[i][0] * rm[0, j] + sa[i][1] * rm[1, j] + sa[i][2] * rm[2, j]) * h2

    # tmp = Phi P
    for i in range(N_ERR):
        for j in range(N_ERR):
            s = 0.0
            for k in range(N_ERR):
                pik = phi[i, k]
                if pik != 0.0:
                    s += pik * p[k, j]
            tmp[i, j] = s
    # P = tmp Phi^T, symmetric: compute the upper triangle and mirror
    for i in range(N_ERR):
        for j in range(i, N_ERR):
            s = 0.0
            for k in range(N_ERR):
                pjk = phi[j, k]
                if pjk != 0.0:
                    s += tmp[i, k] * pjk
            p[i, j] = s
            p[j, i] = s

    # Discrete process noise of the IMU as it is sampled: white noise on the step means (velocity
    # increment variance N_a^2 dt, reaching position through the trapezoid as dt/2 of it) and bias
    # random walks with one increment of variance K^2 dt per step.
    dt2 = dt * dt
    for i in range(3):
        p[i, i] += 0.25 * na2 * dt2 * dt
        p[i, 3 + i] += 0.5 * na2 * dt2
        p[3 + i, i] += 0.5 * na2 * dt2
        p[3 + i, 3 + i] += na2 * dt
        p[6 + i, 6 + i] += ng2 * dt
        p[9 + i, 9 + i] += ka2 * dt
        p[12 + i, 12 + i] += kg2 * dt
    return True


@numba.njit(cache=True)
def _predict_many_kernel(
    r: NDArray[np.float64],
    v: NDArray[np.float64],
    q: NDArray[np.float64],
    ba: NDArray[np.float64],
    bg: NDArray[np.float64],
    p: NDArray[np.float64],
    f_meas: NDArray[np.float64],
    w_meas: NDArray[np.float64],
    dt: NDArray[np.float64],
    noise: NDArray[np.float64],
    phi: NDArray[np.float64],
    tmp: NDArray[np.float64],
    rm: NDArray[np.float64],
    gg: NDArray[np.float64],
    fa: NDArray[np.float64],
    wa: NDArray[np.float64],
    a: NDArray[np.float64],
) -> bool:
    """Run ``_predict_kernel`` over consecutive IMU samples (rows of f_meas, w_meas, dt).

    Returns False, having changed nothing, when any input is not finite.
    """
    for k in range(f_meas.shape[0]):
        if not math.isfinite(dt[k]):
            return False
        for i in range(3):
            if not (math.isfinite(f_meas[k, i]) and math.isfinite(w_meas[k, i])):
                return False
    for k in range(f_meas.shape[0]):
        _predict_kernel(r, v, q, ba, bg, p, f_meas[k], w_meas[k], dt[k], noise, phi, tmp, rm, gg, fa, wa, a)
    return True


@numba.njit(cache=True)
def _mm(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return a @ b for small matrices (plain loops beat a BLAS call at these sizes)."""
    n, m = a.shape
    k = b.shape[1]
    out = np.zeros((n, k))
    for i in range(n):
        for j in range(m):
            aij = a[i, j]
            if aij != 0.0:
                for c in range(k):
                    out[i, c] += aij * b[j, c]
    return out


@numba.njit(cache=True)
def _cholesky_into(a: NDArray[np.float64], out: NDArray[np.float64]) -> bool:
    """Write the lower Cholesky factor of a symmetric matrix into out; False if not positive definite."""
    m = a.shape[0]
    for i in range(m):
        for j in range(m):
            out[i, j] = 0.0
    for j in range(m):
        s = a[j, j]
        for k in range(j):
            s -= out[j, k] * out[j, k]
        if not s > 0.0:
            return False
        d = math.sqrt(s)
        out[j, j] = d
        for i in range(j + 1, m):
            s = a[i, j]
            for k in range(j):
                s -= out[i, k] * out[j, k]
            out[i, j] = s / d
    return True


@numba.njit(cache=True)
def _forward_into(lo: NDArray[np.float64], b: NDArray[np.float64], out: NDArray[np.float64]) -> None:
    """Solve lo x = b (lo lower triangular, b of shape (m,) or (m, n)) into out by forward substitution."""
    m = lo.shape[0]
    for i in range(m):
        out[i] = b[i]
        for k in range(i):
            out[i] -= lo[i, k] * out[k]
        out[i] /= lo[i, i]


@numba.njit(cache=True)
def _update_kernel(
    r: NDArray[np.float64],
    v: NDArray[np.float64],
    q: NDArray[np.float64],
    ba: NDArray[np.float64],
    bg: NDArray[np.float64],
    p: NDArray[np.float64],
    y: NDArray[np.float64],
    h: NDArray[np.float64],
    rn: NDArray[np.float64],
    gate: float,
    s_out: NDArray[np.float64],
) -> tuple[int, float]:
    """Gated Joseph-form update and error injection, in place; returns (status, NIS).

    status: 0 accepted, 1 rejected by the gate (nothing changed), 2 R not positive definite, 3 S not
    positive definite, 4 non-finite y, H or R, 5 R not symmetric. Only status 0 changes anything.
    """
    m = y.shape[0]
    scale = 0.0
    for i in range(m):
        if not math.isfinite(y[i]):
            return 4, math.nan
        for j in range(N_ERR):
            if not math.isfinite(h[i, j]):
                return 4, math.nan
        for j in range(m):
            if not math.isfinite(rn[i, j]):
                return 4, math.nan
            scale = max(scale, abs(rn[i, j]))
    for i in range(m):
        for j in range(i):
            if abs(rn[i, j] - rn[j, i]) > 1e-9 * scale:
                return 5, math.nan
    lr = np.empty((m, m))
    if not _cholesky_into(rn, lr):
        return 2, math.nan
    pht = _mm(p, h.T.copy())  # (15, m)
    s = _mm(h, pht)
    for i in range(m):
        for j in range(m):
            s_out[i, j] = 0.5 * (s[i, j] + s[j, i]) + 0.5 * (rn[i, j] + rn[j, i])
    lo = np.empty((m, m))
    if not _cholesky_into(s_out, lo):
        return 3, math.nan
    u = np.empty(m)
    _forward_into(lo, y, u)
    nis = 0.0
    for i in range(m):
        nis += u[i] * u[i]
    if not nis <= gate:
        return 1, nis
    # K^T = S^-1 (P H^T)^T = lo^-T lo^-1 (P H^T)^T
    kt = np.empty((m, N_ERR))
    _forward_into(lo, pht.T.copy(), kt)
    for i in range(m - 1, -1, -1):
        for k in range(i + 1, m):
            kt[i] -= lo[k, i] * kt[k]
        kt[i] /= lo[i, i]
    k_gain = kt.T.copy()  # (15, m)
    dx = np.zeros(N_ERR)
    for i in range(N_ERR):
        for j in range(m):
            dx[i] += k_gain[i, j] * y[j]
    a = -_mm(k_gain, h)
    for i in range(N_ERR):
        a[i, i] += 1.0
    p_new = _mm(_mm(a, p), a.T.copy()) + _mm(_mm(k_gain, rn), kt)
    # Reset of the attitude error to the corrected attitude: G = I + [dtheta/2]x on the attitude block.
    tx, ty, tz = 0.5 * dx[6], 0.5 * dx[7], 0.5 * dx[8]
    g = np.array(((1.0, -tz, ty), (tz, 1.0, -tx), (-ty, tx, 1.0)))
    p_new[6:9, :] = _mm(g, p_new[6:9, :].copy())
    p_new[:, 6:9] = _mm(p_new[:, 6:9].copy(), g.T.copy())
    for i in range(N_ERR):
        for j in range(N_ERR):
            p[i, j] = 0.5 * (p_new[i, j] + p_new[j, i])
    # Inject the correction into the nominal state; attitude q <- Exp(dtheta) * q.
    for i in range(3):
        r[i] += dx[i]
        v[i] += dx[3 + i]
        ba[i] += dx[9 + i]
        bg[i] += dx[12 + i]
    ew, ex, ey, ez = quat_exp_mul(np.array((1.0, 0.0, 0.0, 0.0)), dx[6], dx[7], dx[8])
    qw, qx, qy, qz = q[0], q[1], q[2], q[3]
    nw = ew * qw - ex * qx - ey * qy - ez * qz
    nx = ew * qx + ex * qw + ey * qz - ez * qy
    ny = ew * qy - ex * qz + ey * qw + ez * qx
    nz = ew * qz + ex * qy - ey * qx + ez * qw
    nn = math.sqrt(nw * nw + nx * nx + ny * ny + nz * nz)
    q[0] = nw / nn
    q[1] = nx / nn
    q[2] = ny / nn
    q[3] = nz / nn
    return 0, nis


# --------------------------------------------------------------------------------------------------
# The filter
# --------------------------------------------------------------------------------------------------


def _vector(x: ArrayLike, name: str, size: int) -> NDArray[np.float64]:
    a = np.asarray(x, dtype=float)
    if a.shape != (size,):
        raise InputError(f"{name}: expected a vector of shape ({size},), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name}: expected finite values, got NaN or infinity")
    return a


def _covariance(x: ArrayLike, name: str, size: int) -> NDArray[np.float64]:
    m = np.asarray(x, dtype=float)
    if m.shape != (size, size):
        raise InputError(f"{name}: expected a covariance matrix of shape ({size}, {size}), got {m.shape}")
    if not np.all(np.isfinite(m)):
        raise InputError(f"{name}: expected finite values, got NaN or infinity")
    scale = max(float(np.max(np.abs(m))), 1e-300)
    if np.max(np.abs(m - m.T)) > 1e-9 * scale:
        raise InputError(f"{name}: expected a symmetric matrix")
    m = 0.5 * (m + m.T)
    if np.min(np.linalg.eigvalsh(m)) < -1e-12 * scale:
        raise InputError(f"{name}: expected a positive semi-definite matrix")
    return m


class NavFilter:
    """Error-state Kalman filter of position (m, L), velocity (m/s, L), attitude q_lb and IMU biases (body).

    ``P0`` is the 15x15 covariance of the error state (dr, dv, dtheta, db_a, db_g) in SI units, attitude
    error in frame L (q_true = Exp(dtheta) * q_hat). ``gate_prob`` sets the chi-square gate of every update.
    """

    def __init__(
        self,
        r0: ArrayLike,
        v0: ArrayLike,
        q0: ArrayLike,
        P0: ArrayLike,
        imu: ImuSpec,
        *,
        accel_bias0_b: ArrayLike = (0.0, 0.0, 0.0),
        gyro_bias0_b: ArrayLike = (0.0, 0.0, 0.0),
        gate_prob: float = 0.9999,
    ) -> None:
        """Start the filter at r0 (m, L), v0 (m/s, L), q0 (q_lb), biases (body, SI) with covariance P0."""
        if not isinstance(imu, ImuSpec):
            raise InputError(f"imu: expected an ImuSpec, got {type(imu).__name__}")
        if not (isinstance(gate_prob, float | int) and 0.0 < gate_prob < 1.0):
            raise InputError(f"gate_prob: expected a probability in (0, 1), got {gate_prob!r}")
        q = _vector(q0, "q0", 4)
        qn = float(np.linalg.norm(q))
        if abs(qn - 1.0) > 1e-6:
            raise InputError(f"q0: expected a unit quaternion (|q| = 1 within 1e-6), got |q| = {qn}")
        self._r = _vector(r0, "r0", 3).copy()
        self._v = _vector(v0, "v0", 3).copy()
        self._q = q / qn
        self._ba = _vector(accel_bias0_b, "accel_bias0_b", 3).copy()
        self._bg = _vector(gyro_bias0_b, "gyro_bias0_b", 3).copy()
        self._P = np.ascontiguousarray(_covariance(P0, "P0", N_ERR))
        self._imu = imu
        self._gate_prob = float(gate_prob)
        self._gates: dict[int, float] = {}
        self._noise = np.array(
            [
                imu.accel_noise_density_m_s2_rthz**2,
                imu.gyro_noise_density_rad_s_rthz**2,
                imu.accel_bias_walk_m_s2_rts**2,
                imu.gyro_bias_walk_rad_s_rts**2,
            ]
        )
        # Work buffers of the compiled prediction step.
        self._phi = np.zeros((N_ERR, N_ERR))
        self._tmp = np.zeros((N_ERR, N_ERR))
        self._rm = np.zeros((3, 3))
        self._gg = np.zeros((3, 3))
        self._fa = np.zeros(3)
        self._wa = np.zeros(3)
        self._a = np.zeros(3)

    # ---------------------------------------------------------------------------------------------
    # State access
    # ---------------------------------------------------------------------------------------------

    @property
    def imu(self) -> ImuSpec:
        """Return the IMU error model used for process noise."""
        return self._imu

    @property
    def gate_prob(self) -> float:
        """Return the chi-square gate probability of the measurement updates."""
        return self._gate_prob

    @property
    def state(self) -> NavState:
        """Return a copy of the nominal state (r_l m, v_l m/s in L; q_lb; biases in body, SI)."""
        return NavState(self._r.copy(), self._v.copy(), self._q.copy(), self._ba.copy(), self._bg.copy())

    @property
    def r_l(self) -> NDArray[np.float64]:
        """Return the estimated position (m, frame L)."""
        return self._r.copy()

    @property
    def v_l(self) -> NDArray[np.float64]:
        """Return the estimated velocity (m/s, frame L)."""
        return self._v.copy()

    @property
    def q_lb(self) -> NDArray[np.float64]:
        """Return the estimated attitude quaternion q_lb (body to L, scalar first)."""
        return self._q.copy()

    @property
    def covariance(self) -> NDArray[np.float64]:
        """Return a copy of the 15x15 error covariance (dr m, dv m/s, dtheta rad in L; db_a, db_g body)."""
        return self._P.copy()

    @property
    def position_3sigma_m(self) -> NDArray[np.float64]:
        """Return the 3-sigma position uncertainty along x east, y north, z up of frame L (m)."""
        return 3.0 * np.sqrt(np.diag(self._P)[_IR])

    def position_nees(self, r_true_l: ArrayLike) -> float:
        """Return the position NEES e^T P_rr^-1 e with e = r_true - r_hat (m, L); chi-square with 3 dof."""
        e = _vector(r_true_l, "r_true_l", 3) - self._r
        return float(e @ np.linalg.solve(self._P[_IR, _IR], e))

    def nees(self, r_true_l: ArrayLike, v_true_l: ArrayLike, q_true_lb: ArrayLike) -> float:
        """Return the 9-dof NEES of (dr m, dv m/s, dtheta rad) in frame L against a true state."""
        e = np.empty(9)
        e[0:3] = _vector(r_true_l, "r_true_l", 3) - self._r
        e[3:6] = _vector(v_true_l, "v_true_l", 3) - self._v
        q_true = _vector(q_true_lb, "q_true_lb", 4)
        e[6:9] = quat_to_rotvec(quat_multiply(q_true, quat_conjugate(self._q)))
        return float(e @ np.linalg.solve(self._P[:9, :9], e))

    # ---------------------------------------------------------------------------------------------
    # Prediction
    # ---------------------------------------------------------------------------------------------

    def predict(self, f_b: ArrayLike, w_b: ArrayLike, dt: float) -> None:
        """Propagate one IMU step: specific force f_b (m/s^2, body), rate w_b (rad/s, body), step dt (s)."""
        f = np.ascontiguousarray(f_b, dtype=float)
        w = np.ascontiguousarray(w_b, dtype=float)
        if f.shape != (3,) or w.shape != (3,):
            raise InputError(f"f_b, w_b: expected vectors of shape (3,), got {f.shape} and {w.shape}")
        if not dt > 0.0:
            raise InputError(f"dt: expected a positive step in seconds, got {dt!r}")
        ok = _predict_kernel(
            self._r, self._v, self._q, self._ba, self._bg, self._P, f, w, float(dt), self._noise,
            self._phi, self._tmp, self._rm, self._gg, self._fa, self._wa, self._a,
        )  # fmt: skip
        if not ok:
            raise InputError("f_b, w_b, dt: expected finite values, got NaN or infinity")

    def predict_many(self, f_b: ArrayLike, w_b: ArrayLike, dt: ArrayLike) -> None:
        """Propagate K IMU steps: f_b, w_b of shape (K, 3) (body, SI) and dt (s), a scalar or shape (K,).

        Same result as K calls of ``predict`` in one compiled loop; checks all inputs before the first step.
        """
        f = np.ascontiguousarray(f_b, dtype=float)
        w = np.ascontiguousarray(w_b, dtype=float)
        if f.ndim != 2 or f.shape[1] != 3 or w.shape != f.shape:
            raise InputError(f"f_b, w_b: expected arrays of shape (K, 3), got {f.shape} and {w.shape}")
        d = np.ascontiguousarray(np.broadcast_to(np.asarray(dt, dtype=float), (f.shape[0],)))
        if not np.all(d > 0.0):
            raise InputError("dt: expected positive steps in seconds")
        ok = _predict_many_kernel(
            self._r, self._v, self._q, self._ba, self._bg, self._P, f, w, d, self._noise,
            self._phi, self._tmp, self._rm, self._gg, self._fa, self._wa, self._a,
        )  # fmt: skip
        if not ok:
            raise InputError("f_b, w_b, dt: expected finite values, got NaN or infinity")

    # ---------------------------------------------------------------------------------------------
    # Updates
    # ---------------------------------------------------------------------------------------------

    def _gate(self, dof: int) -> float:
        g = self._gates.get(dof)
        if g is None:
            g = float(chi2.ppf(self._gate_prob, dof))
            self._gates[dof] = g
        return g

    def _apply(
        self, y: NDArray[np.float64], H: NDArray[np.float64], R: NDArray[np.float64], fields: str
    ) -> UpdateResult:
        """Gate, then apply a Joseph-form update with innovation y, Jacobian H (m x 15), noise R (m x m)."""
        m = y.shape[0]
        gate = self._gate(m)
        S = np.zeros((m, m))
        status, nis = _update_kernel(
            self._r, self._v, self._q, self._ba, self._bg, self._P,
            np.ascontiguousarray(y), np.ascontiguousarray(H), np.ascontiguousarray(R), gate, S,
        )  # fmt: skip
        if status == 4:
            raise InputError(f"{fields}: expected finite values, got NaN or infinity")
        if status == 5:
            raise InputError(f"{fields}: expected a symmetric measurement covariance")
        if status == 2:
            raise InputError(f"{fields}: expected a positive definite measurement covariance")
        if status == 3:
            raise ComputationError("innovation covariance S = H P H^T + R is not positive definite")
        y_out = y.copy()
        y_out.flags.writeable = False
        S.flags.writeable = False
        return UpdateResult(status == 0, float(nis), m, gate, y_out, S)

    def update(self, z: ArrayLike, h: ArrayLike, H: ArrayLike, R: ArrayLike) -> UpdateResult:
        """Gated update with measurement z, prediction h(x_hat) (m,), Jacobian H (m, 15) and noise R (m, m).

        Units of z, h and R are those of the measurement; H maps the error state (dr, dv, dtheta, db_a,
        db_g; SI, dtheta in L) to it.
        """
        zz = np.atleast_1d(np.asarray(z, dtype=float))
        if zz.ndim != 1:
            raise InputError(f"z: expected a 1-D measurement vector, got shape {zz.shape}")
        m = zz.shape[0]
        hh = np.atleast_1d(np.asarray(h, dtype=float))
        if hh.shape != (m,):
            raise InputError(f"h: expected shape ({m},) like z, got {hh.shape}")
        HH = np.asarray(H, dtype=float)
        if HH.ndim == 1 and m == 1:
            HH = HH[None, :]
        if HH.shape != (m, N_ERR):
            raise InputError(f"H: expected a Jacobian of shape ({m}, {N_ERR}), got {HH.shape}")
        RR = np.atleast_2d(np.asarray(R, dtype=float))
        if RR.shape != (m, m):
            raise InputError(f"R: expected a covariance of shape ({m}, {m}), got {RR.shape}")
        return self._apply(zz - hh, HH, RR, "z, h, H, R")

    def update_position(self, r_meas_l: ArrayLike, R_cov: ArrayLike) -> UpdateResult:
        """Gated update with a 3-D position fix r_meas_l (m, L) of covariance R_cov (3x3, m^2, L)."""
        z = np.asarray(r_meas_l, dtype=float)
        if z.shape != (3,):
            raise InputError(f"r_meas_l: expected a position of shape (3,) in metres, got {z.shape}")
        R = np.asarray(R_cov, dtype=float)
        if R.shape != (3, 3):
            raise InputError(f"R_cov: expected a covariance of shape (3, 3) in m^2, got {R.shape}")
        return self._apply(z - self._r, _H_POSITION, R, "r_meas_l, R_cov")

    def update_pose(self, r_meas_l: ArrayLike, q_meas_lb: ArrayLike, R_cov: ArrayLike) -> UpdateResult:
        """Gated update with a camera pose: position r_meas_l (m, L) and attitude q_meas_lb (body to L).

        The attitude residual is the rotation vector Log(q_meas * q_hat^-1) (rad, frame L), so the
        attitude noise is a small rotation in L: q_meas = Exp(eta) * q_true. ``R_cov`` (6x6) is the
        covariance of (position m, eta rad), both in frame L.
        """
        z = np.asarray(r_meas_l, dtype=float)
        if z.shape != (3,):
            raise InputError(f"r_meas_l: expected a position of shape (3,) in metres, got {z.shape}")
        qm = _vector(q_meas_lb, "q_meas_lb", 4)
        if abs(float(np.linalg.norm(qm)) - 1.0) > 1e-6:
            raise InputError("q_meas_lb: expected a unit quaternion (|q| = 1 within 1e-6)")
        R = np.asarray(R_cov, dtype=float)
        if R.shape != (6, 6):
            raise InputError(f"R_cov: expected a covariance of shape (6, 6) (m^2, rad^2), got {R.shape}")
        y = np.empty(6)
        y[0:3] = z - self._r
        y[3:6] = quat_to_rotvec(quat_multiply(qm, quat_conjugate(self._q)))
        return self._apply(y, _H_POSE, R, "r_meas_l, R_cov")

    def update_image_shift(
        self, shift_px: ArrayLike, H_r: ArrayLike, H_theta: ArrayLike, R_px2: ArrayLike
    ) -> UpdateResult:
        """Gated update with an image shift (px) between the camera image and the map's predicted view.

        The map image is rendered from the filter's own prediction, so the predicted shift is zero and
        the model is ``shift = H_r dr + H_theta dtheta + noise`` with dr (m, L) and dtheta (rad, L) the
        filter's position and attitude errors; ``H_r`` and ``H_theta`` are (k, 3) in px/m and px/rad
        and ``R_px2`` (k, k) the shift's covariance (px^2).
        """
        z = np.atleast_1d(np.asarray(shift_px, dtype=float))
        k = z.shape[0]
        if z.ndim != 1 or k < 1:
            raise InputError(f"shift_px: expected a 1-D shift vector in pixels, got shape {z.shape}")
        Hr = np.asarray(H_r, dtype=float)
        Ht = np.asarray(H_theta, dtype=float)
        if Hr.shape != (k, 3) or Ht.shape != (k, 3):
            raise InputError(f"H_r, H_theta: expected shapes ({k}, 3), got {Hr.shape} and {Ht.shape}")
        R = np.asarray(R_px2, dtype=float)
        if R.shape != (k, k):
            raise InputError(f"R_px2: expected a covariance of shape ({k}, {k}) in px^2, got {R.shape}")
        H = np.zeros((k, N_ERR))
        H[:, _IR] = Hr
        H[:, _ITH] = Ht
        return self._apply(z, H, R, "shift_px, H_r, H_theta, R_px2")

    def update_altimeter(
        self,
        range_m: float,
        sigma_m: float,
        beam_dir_b: ArrayLike,
        terrain_height_fn: Callable[[NDArray[np.float64], NDArray[np.float64]], ArrayLike],
        *,
        fd_step_m: float = 1.0,
    ) -> UpdateResult:
        """Gated update with a slant range (m) along the body-fixed beam beam_dir_b to the terrain.

        ``terrain_height_fn(x, y)`` takes arrays of x east and y north (m, frame L) and returns the terrain's
        z (m, frame L) at those points (the caller includes the sphere's curvature if it wants it). The
        predicted range is found by Newton iteration along the beam; the Jacobian treats the terrain as a
        plane whose slope comes from central differences of step ``fd_step_m`` (m) at the beam's foot.
        Raises ComputationError when the estimated beam cannot meet the terrain (pointing up, grazing, or
        the estimated position below the terrain); the filter is then left unchanged.
        """
        if not (math.isfinite(range_m) and range_m > 0.0):
            raise InputError(f"range_m: expected a positive finite range in metres, got {range_m!r}")
        if not (math.isfinite(sigma_m) and sigma_m > 0.0):
            raise InputError(f"sigma_m: expected a positive finite 1-sigma in metres, got {sigma_m!r}")
        rho, H = _altimeter_model(self._r, self._q, beam_dir_b, terrain_height_fn, fd_step_m)
        y = np.array([range_m - rho])
        return self._apply(y, H[None, :], np.array([[sigma_m * sigma_m]]), "range_m, sigma_m")


def altimeter_range(
    r_l: ArrayLike,
    q_lb: ArrayLike,
    beam_dir_b: ArrayLike,
    terrain_height_fn: Callable[[NDArray[np.float64], NDArray[np.float64]], ArrayLike],
    *,
    fd_step_m: float = 1.0,
) -> tuple[float, NDArray[np.float64]]:
    """Return the slant range (m) from r_l (m, L) along the body beam to the terrain, and its Jacobian.

    The beam is ``R(q_lb) beam_dir_b`` in frame L; ``terrain_height_fn(x, y)`` gives the terrain's z
    (m, frame L) at arrays of x east, y north (m, L). The Jacobian (15,) is the derivative of the range
    with respect to the filter's error state (dr, dv, dtheta in L, db_a, db_g), treating the terrain as
    the plane through the beam's foot with the slope of central differences of step ``fd_step_m`` (m).
    Raises ComputationError when the beam cannot meet the terrain (pointing up, grazing, or r_l below it).
    """
    r = _vector(r_l, "r_l", 3)
    q = _vector(q_lb, "q_lb", 4)
    return _altimeter_model(r, q, beam_dir_b, terrain_height_fn, fd_step_m)


def _altimeter_model(
    r: NDArray[np.float64],
    q: NDArray[np.float64],
    beam_dir_b: ArrayLike,
    terrain_height_fn: Callable[..., ArrayLike],
    fd_step_m: float,
) -> tuple[float, NDArray[np.float64]]:
    """``altimeter_range`` for a state already checked (r (3,), q (4,) finite)."""
    if not (math.isfinite(fd_step_m) and fd_step_m > 0.0):
        raise InputError(f"fd_step_m: expected a positive step in metres, got {fd_step_m!r}")
    ub = _vector(beam_dir_b, "beam_dir_b", 3)
    nb = math.sqrt(float(ub @ ub))
    if nb == 0.0:
        raise InputError("beam_dir_b: expected a non-zero direction")
    rm = np.empty((3, 3))
    quat_matrix_into(q[0], q[1], q[2], q[3], rm)
    u = rm @ (ub / nb)
    rho, n, nu = _ray_terrain(r, u, terrain_height_fn, fd_step_m)
    # d(rho)/dr = -n^T / (n.u); the beam turns by du = dtheta x u, so
    # d(rho)/dtheta = rho (n x u)^T / (n.u).
    H = np.zeros(N_ERR)
    H[_IR] = -n / nu
    H[_ITH] = (rho / nu) * np.array(
        [n[1] * u[2] - n[2] * u[1], n[2] * u[0] - n[0] * u[2], n[0] * u[1] - n[1] * u[0]]
    )
    return rho, H


def _terrain(
    fn: Callable[..., ArrayLike], x: NDArray[np.float64], y: NDArray[np.float64]
) -> NDArray[np.float64]:
    zz = np.asarray(fn(x, y), dtype=float)
    if zz.shape != x.shape:
        try:
            zz = np.broadcast_to(zz, x.shape)
        except ValueError as exc:
            raise InputError(
                f"terrain_height_fn: expected heights of shape {x.shape} for inputs of that shape, "
                f"got {zz.shape}"
            ) from exc
    if not np.isfinite(zz).all():
        raise InputError("terrain_height_fn: expected finite heights (m), got NaN or infinity")
    return zz


def _ray_terrain(
    r: NDArray[np.float64], u: NDArray[np.float64], fn: Callable[..., ArrayLike], d: float
) -> tuple[float, NDArray[np.float64], float]:
    """Return range rho (m) to where r + rho u meets z = h(x, y), the terrain normal (-h_x, -h_y, 1), n.u."""
    if u[2] >= 0.0:
        raise ComputationError("altimeter: the estimated beam points above the horizontal of frame L")
    offs_x = np.array([0.0, d, -d, 0.0, 0.0])
    offs_y = np.array([0.0, 0.0, 0.0, d, -d])
    h0 = float(_terrain(fn, r[:1], r[1:2])[0])
    rho = (r[2] - h0) / -u[2]
    if rho <= 0.0:
        raise ComputationError("altimeter: the estimated position is below the terrain")
    for _ in range(50):
        px = r[0] + rho * u[0]
        py = r[1] + rho * u[1]
        hs = _terrain(fn, px + offs_x, py + offs_y)
        hx = (hs[1] - hs[2]) / (2.0 * d)
        hy = (hs[3] - hs[4]) / (2.0 * d)
        n = np.array([-hx, -hy, 1.0])
        nu = float(n @ u)
        if nu >= 0.0:
            raise ComputationError("altimeter: the estimated beam grazes or leaves the local terrain plane")
        fval = r[2] + rho * u[2] - hs[0]
        step = fval / nu
        rho -= step
        if abs(step) < 1e-6:
            if rho <= 0.0:
                raise ComputationError("altimeter: the estimated beam meets the terrain behind the sensor")
            return rho, n, nu
    raise ComputationError("altimeter ray-terrain intersection did not converge in 50 Newton steps")
