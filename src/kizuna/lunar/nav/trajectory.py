"""True descent trajectory of a SLIM-like lander: guidance, attitude and the camera mounting.

The profile (frame L, target at the origin): powered descent from ``start_altitude_m`` (15 km) at
``start_downrange_m`` uprange of the target, braking to an approach gate straight above the target, a
vertical terminal descent to a hover at ``hover_altitude_m`` (50 m), then a hover. Each phase is flown
with zero-effort-miss / zero-effort-velocity guidance (the energy-optimal feedback law for a uniform
field; Ebrahimi, Bahrami & Roshanian 2008), the last seconds and the hover with a PD hold.

The guidance flies the *true* state, so the truth reaches the target exactly and the navigation error
at the hover is the landing error that guidance flying the estimate would make. Attitude keeps the body
+z axis along the (smoothed) thrust and +x toward the direction of flight; the navigation camera looks
along -z with the top of its image toward +x, so it sees the ground ahead while braking and straight
down in the terminal descent.

The integration is the same mid-point scheme as ``imu.strapdown_step`` so that the simulated IMU
reproduces this trajectory exactly when noise-free. The loop is a numba kernel: 20-30 thousand steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from kizuna.core.rotations import matrix_to_quat, quat_to_matrix
from kizuna.errors import InputError
from kizuna.lunar.nav.dynamics import gravity_xyz

__all__ = ["DescentProfile", "TruthTrajectory", "fly_profile", "camera_pose", "R_CAM_FROM_BODY"]

# Camera mounting: x_cam = -y_body, y_cam = -x_body, z_cam (boresight) = -z_body.
R_CAM_FROM_BODY = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])


@dataclass(frozen=True)
class DescentProfile:
    """Descent profile: start state, approach gate, hover and phase durations (m, m/s, s; frame L)."""

    start_altitude_m: float = 15_000.0
    start_downrange_m: float = 40_000.0
    start_speed_m_s: float = 250.0
    start_sink_rate_m_s: float = 15.0
    gate_altitude_m: float = 1_000.0
    gate_sink_rate_m_s: float = 10.0
    braking_duration_s: float = 330.0
    terminal_duration_s: float = 120.0
    hover_altitude_m: float = 50.0
    hover_duration_s: float = 10.0

    def __post_init__(self) -> None:
        if not (self.start_altitude_m > self.gate_altitude_m > self.hover_altitude_m > 0):
            raise InputError(
                "descent profile altitudes: expected start_altitude_m > gate_altitude_m"
                " > hover_altitude_m > 0"
            )
        for name in ("braking_duration_s", "terminal_duration_s", "hover_duration_s"):
            if not getattr(self, name) > 0:
                raise InputError(f"descent profile {name}={getattr(self, name)}: expected > 0 s")

    @property
    def duration_s(self) -> float:
        """Return the total duration of the profile (s)."""
        return self.braking_duration_s + self.terminal_duration_s + self.hover_duration_s


@dataclass(frozen=True)
class TruthTrajectory:
    """True states at the IMU rate: time (s), position (m, L), velocity (m/s, L), attitude q_lb, thrust."""

    t_s: NDArray[np.float64]
    r_l: NDArray[np.float64]
    v_l: NDArray[np.float64]
    q_lb: NDArray[np.float64]
    thrust_l: NDArray[np.float64]
    target_l: NDArray[np.float64]

    def index_at(self, t: float) -> int:
        """Return the sample index nearest to time t (s)."""
        return int(np.clip(np.rint(t / (self.t_s[1] - self.t_s[0])), 0, self.t_s.size - 1))

    def altitude_over_target(self) -> NDArray[np.float64]:
        """Return the height (m) above the target's ground point (z_l minus the target surface z)."""
        return self.r_l[:, 2] - self.target_l[2]


@nb.njit(cache=True)
def _fly(r0, v0, dt, n, gate, v_gate, t_gate, hover, t_hover_arrive):
    r = np.empty((n + 1, 3))
    v = np.empty((n + 1, 3))
    acc = np.empty((n + 1, 3))
    r[0] = r0
    v[0] = v0
    zero = np.zeros(3)
    for k in range(n + 1):
        t = k * dt
        gx, gy, gz = gravity_xyz(r[k, 0], r[k, 1], r[k, 2])
        g = np.array([gx, gy, gz])
        if t < t_gate - 1.0:
            rf, vf, tgo = gate, v_gate, t_gate - t
        elif t < t_hover_arrive - 1.0:
            rf, vf, tgo = hover, zero, t_hover_arrive - t
        else:
            rf, vf, tgo = hover, zero, 0.0
        if tgo > 0.0:
            zem = rf - (r[k] + v[k] * tgo + 0.5 * g * tgo * tgo)
            zev = vf - (v[k] + g * tgo)
            a = 6.0 * zem / (tgo * tgo) - 2.0 * zev / tgo
        else:  # PD hold, natural period ~ 9 s, critically damped
            a = 0.5 * (rf - r[k]) + 1.4 * (vf - v[k]) - g
        acc[k] = a
        if k == n:
            break
        # same scheme as the strapdown: gravity at the mid-point predicted from r_k, v_k
        mx = r[k, 0] + 0.5 * dt * v[k, 0]
        my = r[k, 1] + 0.5 * dt * v[k, 1]
        mz = r[k, 2] + 0.5 * dt * v[k, 2]
        hx, hy, hz = gravity_xyz(mx, my, mz)
        v[k + 1, 0] = v[k, 0] + (a[0] + hx) * dt
        v[k + 1, 1] = v[k, 1] + (a[1] + hy) * dt
        v[k + 1, 2] = v[k, 2] + (a[2] + hz) * dt
        r[k + 1] = r[k] + 0.5 * (v[k] + v[k + 1]) * dt
    return r, v, acc


def _attitude(thrust: NDArray, dt: float, smooth_s: float = 4.0) -> NDArray[np.float64]:
    """Body attitude q_lb: +z along the smoothed thrust, +x toward +x of frame L (flight direction)."""
    z = ndimage.gaussian_filter1d(thrust, smooth_s / dt, axis=0, mode="nearest")
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    ex = np.array([1.0, 0.0, 0.0])
    x = ex - (z @ ex)[:, None] * z
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.cross(z, x)
    R_lb = np.stack([x, y, z], axis=-1)  # columns: body axes in L
    return matrix_to_quat(R_lb)


def fly_profile(
    profile: DescentProfile, target_l: NDArray, dt: float, initial_offset_l: NDArray | None = None,
    initial_velocity_offset_l: NDArray | None = None,
) -> TruthTrajectory:  # fmt: skip
    """Fly the profile with guidance on the true state; ``target_l`` is the target's ground point (m, L).

    ``initial_offset_l`` and ``initial_velocity_offset_l`` displace the true start from the nominal one
    (the dispersions the navigation must discover).
    """
    target = np.asarray(target_l, dtype=float)
    r0 = target + np.array([-profile.start_downrange_m, 0.0, profile.start_altitude_m])
    v0 = np.array([profile.start_speed_m_s, 0.0, -profile.start_sink_rate_m_s])
    if initial_offset_l is not None:
        r0 = r0 + np.asarray(initial_offset_l, dtype=float)
    if initial_velocity_offset_l is not None:
        v0 = v0 + np.asarray(initial_velocity_offset_l, dtype=float)
    gate = target + np.array([0.0, 0.0, profile.gate_altitude_m])
    v_gate = np.array([0.0, 0.0, -profile.gate_sink_rate_m_s])
    hover = target + np.array([0.0, 0.0, profile.hover_altitude_m])
    n = int(math.ceil(profile.duration_s / dt))
    t_gate = profile.braking_duration_s
    t_hover = t_gate + profile.terminal_duration_s
    r, v, acc = _fly(r0, v0, dt, n, gate, v_gate, t_gate, hover, t_hover)
    q = _attitude(acc, dt)
    t = dt * np.arange(n + 1)
    return TruthTrajectory(t_s=t, r_l=r, v_l=v, q_lb=q, thrust_l=acc, target_l=target)


def camera_pose(q_lb: NDArray, r_l: NDArray) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return the camera pose (R_cw, p_w) of the body attitude q_lb and position r_l (frame L)."""
    return R_CAM_FROM_BODY @ np.swapaxes(quat_to_matrix(q_lb), -1, -2), np.asarray(r_l, dtype=float)
