"""Inertial measurement unit: error specification, measurement simulator and strapdown mechanisation.

All vectors of the navigation state are in the landing frame L (x east, y north, z up, origin on the
reference sphere below the target; see ``dynamics.py``), which is treated as inertial. IMU outputs are
in the body frame B; ``q_lb`` is the Hamilton scalar-first quaternion that rotates body vectors into L.

Integration scheme (one IMU step of length dt, used by the filter and inverted exactly by the simulator):

    q_{k+1} = q_k * Exp(w_b dt)                       body rate w_b constant over the step
    q_mid   = q_k * Exp(w_b dt / 2)                   attitude at mid-step
    a       = R(q_mid) f_b + g(r_k + v_k dt / 2)      specific force rotated at mid-step, gravity at a
                                                      predicted mid-step position
    v_{k+1} = v_k + a dt
    r_{k+1} = r_k + (v_k + v_{k+1}) dt / 2            trapezoid, exact for constant acceleration

``f_b`` is the mean specific force over the step (what an IMU's velocity increment divided by dt gives)
and ``w_b`` the mean body rate. Coning and sculling corrections are not modelled: the simulator produces
measurements from the same scheme, so simulated data and filter agree; at the 20-50 Hz rates of the filter
and the slow attitude motion of a lander the neglected terms are far below the sensor noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from kizuna.core.constants import STANDARD_GRAVITY_M_S2
from kizuna.core.rotations import (
    quat_conjugate,
    quat_multiply,
    quat_to_matrix,
    quat_to_rotvec,
    rotvec_to_quat,
)
from kizuna.errors import InputError
from kizuna.lunar.nav.dynamics import gravity_l, gravity_xyz

__all__ = ["ImuSpec", "ImuBiases", "simulate_imu", "strapdown_step"]

_DEG = math.pi / 180.0
_HOUR_S = 3600.0
_MICRO_G = 1.0e-6 * STANDARD_GRAVITY_M_S2


@dataclass(frozen=True)
class ImuSpec:
    """IMU error model: output rate (Hz), white noise densities, turn-on biases and bias random walks (SI)."""

    rate_hz: float
    accel_noise_density_m_s2_rthz: float  # velocity random walk, (m/s^2)/sqrt(Hz)
    gyro_noise_density_rad_s_rthz: float  # angle random walk, (rad/s)/sqrt(Hz)
    accel_bias_sigma_m_s2: float  # 1-sigma turn-on (constant) accelerometer bias per axis, m/s^2
    gyro_bias_sigma_rad_s: float  # 1-sigma turn-on (constant) gyro bias per axis, rad/s
    accel_bias_walk_m_s2_rts: float  # accelerometer bias random-walk density, (m/s^2)/sqrt(s)
    gyro_bias_walk_rad_s_rts: float  # gyro bias random-walk density, (rad/s)/sqrt(s)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate_hz) and self.rate_hz > 0.0):
            raise InputError(f"ImuSpec.rate_hz: expected a positive rate in Hz, got {self.rate_hz!r}")
        for name in (
            "accel_noise_density_m_s2_rthz",
            "gyro_noise_density_rad_s_rthz",
            "accel_bias_sigma_m_s2",
            "gyro_bias_sigma_rad_s",
            "accel_bias_walk_m_s2_rts",
            "gyro_bias_walk_rad_s_rts",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise InputError(f"ImuSpec.{name}: expected a finite non-negative value, got {value!r}")

    @property
    def dt_s(self) -> float:
        """Return the sample interval 1/rate_hz (s)."""
        return 1.0 / self.rate_hz

    @classmethod
    def default(cls, rate_hz: float = 50.0) -> ImuSpec:
        """Return a navigation-grade (LN-200-class fibre-optic) IMU spec at rate_hz (Hz), SI units.

        Northrop Grumman LN-200 datasheet-level figures: gyro angle random walk 0.07 deg/sqrt(h), gyro bias
        repeatability 1 deg/h (1 sigma), accelerometer white noise 50 micro-g/sqrt(Hz), accelerometer bias
        repeatability 300 micro-g (1 sigma). The datasheet gives no bias random walk; the values here are
        assumptions of this model: an in-run drift of 0.1 deg/h and 30 micro-g (1 sigma) over a 600 s
        descent. The unit samples at 400 Hz; ``rate_hz`` is the rate at which summed increments reach the
        filter, which leaves the noise densities unchanged.
        """
        descent_s = 600.0
        return cls(
            rate_hz=rate_hz,
            accel_noise_density_m_s2_rthz=50.0 * _MICRO_G,
            gyro_noise_density_rad_s_rthz=0.07 * _DEG / math.sqrt(_HOUR_S),
            accel_bias_sigma_m_s2=300.0 * _MICRO_G,
            gyro_bias_sigma_rad_s=1.0 * _DEG / _HOUR_S,
            accel_bias_walk_m_s2_rts=30.0 * _MICRO_G / math.sqrt(descent_s),
            gyro_bias_walk_rad_s_rts=0.1 * _DEG / _HOUR_S / math.sqrt(descent_s),
        )


@dataclass(frozen=True)
class ImuBiases:
    """True IMU biases applied to each simulated sample: accel (m/s^2) and gyro (rad/s), body frame."""

    accel_m_s2: NDArray[np.float64]  # shape (N-1, 3)
    gyro_rad_s: NDArray[np.float64]  # shape (N-1, 3)


# --------------------------------------------------------------------------------------------------
# Strapdown mechanisation (compiled; shared with the filter)
# --------------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def quat_exp_mul(
    q: NDArray[np.float64], px: float, py: float, pz: float
) -> tuple[float, float, float, float]:
    """Return q * Exp(p) for a scalar-first quaternion q and a rotation vector p (rad), as a 4-tuple."""
    angle = math.sqrt(px * px + py * py + pz * pz)
    half = 0.5 * angle
    if angle < 1e-8:
        k = 0.5 - angle * angle / 48.0
    else:
        k = math.sin(half) / angle
    dw = math.cos(half)
    dx = k * px
    dy = k * py
    dz = k * pz
    qw, qx, qy, qz = q[0], q[1], q[2], q[3]
    return (
        qw * dw - qx * dx - qy * dy - qz * dz,
        qw * dx + qx * dw + qy * dz - qz * dy,
        qw * dy - qx * dz + qy * dw + qz * dx,
        qw * dz + qx * dy - qy * dx + qz * dw,
    )


@numba.njit(cache=True)
def quat_matrix_into(w: float, x: float, y: float, z: float, out: NDArray[np.float64]) -> None:
    """Write the rotation matrix of the quaternion (w, x, y, z) (normalised here) into a 3x3 array."""
    n = math.sqrt(w * w + x * x + y * y + z * z)
    w /= n
    x /= n
    y /= n
    z /= n
    out[0, 0] = 1.0 - 2.0 * (y * y + z * z)
    out[0, 1] = 2.0 * (x * y - w * z)
    out[0, 2] = 2.0 * (x * z + w * y)
    out[1, 0] = 2.0 * (x * y + w * z)
    out[1, 1] = 1.0 - 2.0 * (x * x + z * z)
    out[1, 2] = 2.0 * (y * z - w * x)
    out[2, 0] = 2.0 * (x * z - w * y)
    out[2, 1] = 2.0 * (y * z + w * x)
    out[2, 2] = 1.0 - 2.0 * (x * x + y * y)


@numba.njit(cache=True)
def strapdown_into(
    r: NDArray[np.float64],
    v: NDArray[np.float64],
    q: NDArray[np.float64],
    f: NDArray[np.float64],
    w: NDArray[np.float64],
    dt: float,
    r_out: NDArray[np.float64],
    v_out: NDArray[np.float64],
    q_out: NDArray[np.float64],
    rmid_out: NDArray[np.float64],
    a_out: NDArray[np.float64],
) -> None:
    """Advance (r, v, q) by one step of the documented scheme; outputs may alias inputs.

    Also writes the mid-step attitude matrix R(q_mid) into ``rmid_out`` and the mid-step specific force in
    L, R(q_mid) f, into ``a_out`` (m/s^2), which the filter's error model needs.
    """
    hx = 0.5 * dt * w[0]
    hy = 0.5 * dt * w[1]
    hz = 0.5 * dt * w[2]
    mw, mx, my, mz = quat_exp_mul(q, hx, hy, hz)
    nw, nx, ny, nz = quat_exp_mul(q, 2.0 * hx, 2.0 * hy, 2.0 * hz)
    nn = math.sqrt(nw * nw + nx * nx + ny * ny + nz * nz)
    quat_matrix_into(mw, mx, my, mz, rmid_out)
    fl0 = rmid_out[0, 0] * f[0] + rmid_out[0, 1] * f[1] + rmid_out[0, 2] * f[2]
    fl1 = rmid_out[1, 0] * f[0] + rmid_out[1, 1] * f[1] + rmid_out[1, 2] * f[2]
    fl2 = rmid_out[2, 0] * f[0] + rmid_out[2, 1] * f[1] + rmid_out[2, 2] * f[2]
    gx, gy, gz = gravity_xyz(r[0] + 0.5 * dt * v[0], r[1] + 0.5 * dt * v[1], r[2] + 0.5 * dt * v[2])
    v0x, v0y, v0z = v[0], v[1], v[2]
    v1x = v0x + (fl0 + gx) * dt
    v1y = v0y + (fl1 + gy) * dt
    v1z = v0z + (fl2 + gz) * dt
    r_out[0] = r[0] + 0.5 * (v0x + v1x) * dt
    r_out[1] = r[1] + 0.5 * (v0y + v1y) * dt
    r_out[2] = r[2] + 0.5 * (v0z + v1z) * dt
    v_out[0] = v1x
    v_out[1] = v1y
    v_out[2] = v1z
    q_out[0] = nw / nn
    q_out[1] = nx / nn
    q_out[2] = ny / nn
    q_out[3] = nz / nn
    a_out[0] = fl0
    a_out[1] = fl1
    a_out[2] = fl2


@numba.njit(cache=True)
def _strapdown_rows(
    r: NDArray[np.float64],
    v: NDArray[np.float64],
    q: NDArray[np.float64],
    f: NDArray[np.float64],
    w: NDArray[np.float64],
    dt: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    n = r.shape[0]
    r1 = np.empty((n, 3))
    v1 = np.empty((n, 3))
    q1 = np.empty((n, 4))
    rmid = np.empty((3, 3))
    a = np.empty(3)
    for i in range(n):
        strapdown_into(r[i], v[i], q[i], f[i], w[i], dt[i], r1[i], v1[i], q1[i], rmid, a)
    return r1, v1, q1


def _vectors(x: ArrayLike, name: str, size: int) -> NDArray[np.float64]:
    a = np.asarray(x, dtype=float)
    if a.ndim == 0 or a.shape[-1] != size:
        raise InputError(f"{name}: expected an array of shape (..., {size}), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise InputError(f"{name}: expected finite values, got NaN or infinity")
    return a


def strapdown_step(
    r_l: ArrayLike, v_l: ArrayLike, q_lb: ArrayLike, f_b: ArrayLike, w_b: ArrayLike, dt_s: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Advance position (m, L), velocity (m/s, L) and attitude q_lb by one IMU step of dt_s (s).

    ``f_b`` is the mean specific force (m/s^2, body) and ``w_b`` the mean body rate (rad/s, body) over the
    step; the scheme is the one in this module's docstring. All inputs broadcast over leading axes.
    Returns (r_l, v_l, q_lb) after the step; the quaternion is renormalised.
    """
    r = _vectors(r_l, "r_l", 3)
    v = _vectors(v_l, "v_l", 3)
    q = _vectors(q_lb, "q_lb", 4)
    f = _vectors(f_b, "f_b", 3)
    w = _vectors(w_b, "w_b", 3)
    dt = np.asarray(dt_s, dtype=float)
    if not (np.isfinite(dt) & (dt > 0.0)).all():
        raise InputError("dt_s: expected positive finite step lengths in seconds")
    if r.ndim == v.ndim == q.ndim == f.ndim == w.ndim == 1 and dt.ndim == 0:
        # One state: call the compiled step directly.
        r1, v1, q1 = np.empty(3), np.empty(3), np.empty(4)
        c = np.ascontiguousarray
        strapdown_into(c(r), c(v), c(q), c(f), c(w), float(dt), r1, v1, q1, np.empty((3, 3)), np.empty(3))
        return r1, v1, q1
    shape = np.broadcast_shapes(
        r.shape[:-1], v.shape[:-1], q.shape[:-1], f.shape[:-1], w.shape[:-1], dt.shape
    )
    n = math.prod(shape)

    def rows(a: NDArray[np.float64], size: int) -> NDArray[np.float64]:
        return np.ascontiguousarray(np.broadcast_to(a, shape + (size,)).reshape(n, size))

    r1, v1, q1 = _strapdown_rows(
        rows(r, 3),
        rows(v, 3),
        rows(q, 4),
        rows(f, 3),
        rows(w, 3),
        np.broadcast_to(dt, shape).reshape(n).copy(),
    )
    return r1.reshape(shape + (3,)), v1.reshape(shape + (3,)), q1.reshape(shape + (4,))


# --------------------------------------------------------------------------------------------------
# Measurement simulator
# --------------------------------------------------------------------------------------------------


def simulate_imu(
    t_s: ArrayLike,
    r_l: ArrayLike,
    v_l: ArrayLike,
    q_lb: ArrayLike,
    spec: ImuSpec,
    rng: np.random.Generator,
) -> tuple[NDArray[np.float64], NDArray[np.float64], ImuBiases]:
    """Simulate IMU specific force (m/s^2, body) and body rate (rad/s, body) along a truth trajectory.

    ``t_s`` (N,) are sample times (s) spaced 1/spec.rate_hz; ``r_l`` (N, 3) position (m, L), ``v_l`` (N, 3)
    velocity (m/s, L), ``q_lb`` (N, 4) attitude. Sample k of the output (k = 0..N-2) is the measurement
    for the step t_k -> t_{k+1}: the exact inverse of ``strapdown_step``,

        w_k = Log(q_k^-1 * q_{k+1}) / dt,   a_k = (v_{k+1} - v_k) / dt,
        f_k = R(q_k * Exp(w_k dt / 2))^T (a_k - g(r_k + v_k dt / 2)),

    plus a turn-on bias drawn from N(0, sigma^2) per axis, a bias random walk (increments with variance
    walk^2 dt, the bias of step k being the value at t_k) and white noise of variance density^2 / dt.
    Returns (f_b, w_b, ImuBiases) with arrays of shape (N-1, 3).
    """
    if not isinstance(spec, ImuSpec):
        raise InputError(f"spec: expected an ImuSpec, got {type(spec).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise InputError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    t = np.asarray(t_s, dtype=float)
    if t.ndim != 1 or t.size < 2 or not np.all(np.isfinite(t)):
        raise InputError(f"t_s: expected a 1-D array of at least 2 finite times (s), got shape {t.shape}")
    n = t.size
    r = _vectors(r_l, "r_l", 3)
    v = _vectors(v_l, "v_l", 3)
    q = _vectors(q_lb, "q_lb", 4)
    for name, arr, size in (("r_l", r, 3), ("v_l", v, 3), ("q_lb", q, 4)):
        if arr.shape != (n, size):
            raise InputError(f"{name}: expected shape ({n}, {size}) to match t_s, got {arr.shape}")
    norm = np.linalg.norm(q, axis=-1)
    if np.any(np.abs(norm - 1.0) > 1e-6):
        raise InputError("q_lb: expected unit quaternions (|q| = 1 within 1e-6)")
    dt = np.diff(t)
    if np.any(np.abs(dt * spec.rate_hz - 1.0) > 1e-6):
        raise InputError(
            f"t_s: expected samples spaced 1/rate_hz = {spec.dt_s:.6g} s "
            f"(spec.rate_hz = {spec.rate_hz:g} Hz), "
            f"got steps from {dt.min():.6g} to {dt.max():.6g} s"
        )

    q = q / norm[:, None]
    dq = quat_multiply(quat_conjugate(q[:-1]), q[1:])
    w_true = quat_to_rotvec(dq) / dt[:, None]
    q_mid = quat_multiply(q[:-1], rotvec_to_quat(0.5 * dt[:, None] * w_true))
    a = (v[1:] - v[:-1]) / dt[:, None]
    g_mid = gravity_l(r[:-1] + 0.5 * dt[:, None] * v[:-1])
    f_true = np.einsum("nji,nj->ni", quat_to_matrix(q_mid), a - g_mid)

    m = n - 1
    ba = _bias_path(rng, m, dt, spec.accel_bias_sigma_m_s2, spec.accel_bias_walk_m_s2_rts)
    bg = _bias_path(rng, m, dt, spec.gyro_bias_sigma_rad_s, spec.gyro_bias_walk_rad_s_rts)
    sqrt_dt = np.sqrt(dt)[:, None]
    f_meas = f_true + ba + rng.standard_normal((m, 3)) * (spec.accel_noise_density_m_s2_rthz / sqrt_dt)
    w_meas = w_true + bg + rng.standard_normal((m, 3)) * (spec.gyro_noise_density_rad_s_rthz / sqrt_dt)
    return f_meas, w_meas, ImuBiases(accel_m_s2=ba, gyro_rad_s=bg)


def _bias_path(
    rng: np.random.Generator, m: int, dt: NDArray[np.float64], sigma: float, walk: float
) -> NDArray[np.float64]:
    """Return a turn-on bias plus random walk, value at the start of each of m steps, shape (m, 3)."""
    b0 = rng.standard_normal(3) * sigma
    steps = rng.standard_normal((m, 3)) * (walk * np.sqrt(dt)[:, None])
    path = np.empty((m, 3))
    path[0] = b0
    if m > 1:
        path[1:] = b0 + np.cumsum(steps[:-1], axis=0)
    return path
