"""GLONASS satellite position, velocity and clock from FDMA broadcast ephemerides (PZ-90.11, treated as ITRF).

The broadcast state vector (position, velocity and the luni-solar acceleration at the record's epoch) is
carried to the wanted instant by integrating the equations of motion of the GLONASS ICD (edition 5.1,
2008, Appendix A.3.1.2: central body, J2, the broadcast luni-solar acceleration held constant, written in
the rotating Earth-fixed frame) with the classical 4th-order Runge-Kutta method in steps of 60 s, as
RTKLIB 2.4.3 does (``geph2pos``). The clock is ``-TauN + gammaN (t - tb)``; RINEX writes -TauN.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "MU_GLO_M3_S2",
    "J2_GLO",
    "RE_GLO_M",
    "OMEGA_E_GLO_RAD_S",
    "RK4_STEP_S",
    "glonass_propagate",
]

# PZ-90 constants of the GLONASS ICD (edition 5.1, 2008, Table 3.2 and A.3.1.2).
MU_GLO_M3_S2 = 3.9860044e14
J2_GLO = 1.0826257e-3
RE_GLO_M = 6378136.0
OMEGA_E_GLO_RAD_S = 7.292115e-5
# Integration step of RTKLIB 2.4.3 (ephemeris.c, TSTEP).
RK4_STEP_S = 60.0


@numba.njit(cache=True)
def _accel(x: float, y: float, z: float, vx: float, vy: float, ax: float, ay: float, az: float) -> tuple:
    """Return the Earth-fixed acceleration (m/s^2) of the ICD's equations of motion at one state."""
    r2 = x * x + y * y + z * z
    r3 = r2 * np.sqrt(r2)
    a = 1.5 * J2_GLO * MU_GLO_M3_S2 * RE_GLO_M * RE_GLO_M / (r2 * r3)  # 3/2 J2 mu ae^2 / r^5
    c = -MU_GLO_M3_S2 / r3 - a * (1.0 - 5.0 * z * z / r2)
    w = OMEGA_E_GLO_RAD_S
    return (
        (c + w * w) * x + 2.0 * w * vy + ax,
        (c + w * w) * y - 2.0 * w * vx + ay,
        (c - 2.0 * a) * z + az,
    )


@numba.njit(cache=True)
def _propagate(state0: NDArray[np.float64], acc: NDArray[np.float64], dt_s: NDArray[np.float64]) -> NDArray:
    """Return the states (n, 6) carried dt_s by RK4 in 60 s steps and one last shorter step each."""
    out = np.empty_like(state0)
    for i in range(state0.shape[0]):
        x, y, z = state0[i, 0], state0[i, 1], state0[i, 2]
        vx, vy, vz = state0[i, 3], state0[i, 4], state0[i, 5]
        ax, ay, az = acc[i, 0], acc[i, 1], acc[i, 2]
        left = dt_s[i]
        if not np.isfinite(left):
            out[i, :] = np.nan
            continue
        step = -RK4_STEP_S if left < 0.0 else RK4_STEP_S
        while abs(left) > 1e-9:
            if abs(left) < RK4_STEP_S:
                step = left
            h2 = step / 2.0
            a1x, a1y, a1z = _accel(x, y, z, vx, vy, ax, ay, az)
            a2x, a2y, a2z = _accel(
                x + vx * h2, y + vy * h2, z + vz * h2, vx + a1x * h2, vy + a1y * h2, ax, ay, az
            )
            v2x, v2y, v2z = vx + a1x * h2, vy + a1y * h2, vz + a1z * h2
            a3x, a3y, a3z = _accel(
                x + v2x * h2, y + v2y * h2, z + v2z * h2, vx + a2x * h2, vy + a2y * h2, ax, ay, az
            )
            v3x, v3y, v3z = vx + a2x * h2, vy + a2y * h2, vz + a2z * h2
            v4x, v4y, v4z = vx + a3x * step, vy + a3y * step, vz + a3z * step
            a4x, a4y, a4z = _accel(x + v3x * step, y + v3y * step, z + v3z * step, v4x, v4y, ax, ay, az)
            x += (vx + 2.0 * v2x + 2.0 * v3x + v4x) * step / 6.0
            y += (vy + 2.0 * v2y + 2.0 * v3y + v4y) * step / 6.0
            z += (vz + 2.0 * v2z + 2.0 * v3z + v4z) * step / 6.0
            vx += (a1x + 2.0 * a2x + 2.0 * a3x + a4x) * step / 6.0
            vy += (a1y + 2.0 * a2y + 2.0 * a3y + a4y) * step / 6.0
            vz += (a1z + 2.0 * a2z + 2.0 * a3z + a4z) * step / 6.0
            left -= step
        out[i, 0], out[i, 1], out[i, 2], out[i, 3], out[i, 4], out[i, 5] = x, y, z, vx, vy, vz
    return out


def glonass_propagate(
    state0: NDArray[np.float64], acc: NDArray[np.float64], dt_s: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Return PZ-90 Earth-fixed states (m, m/s; (n, 6)) carried ``dt_s`` seconds from ``state0`` by RK4.

    ``acc`` (n, 3) is the broadcast luni-solar acceleration (m/s^2), held constant. Each state takes steps
    of 60 s towards its target and a last shorter step, exactly the steps of RTKLIB's ``geph2pos``.
    """
    state0 = np.ascontiguousarray(state0, dtype=np.float64).reshape(-1, 6)
    acc = np.ascontiguousarray(acc, dtype=np.float64).reshape(-1, 3)
    dt_s = np.ascontiguousarray(dt_s, dtype=np.float64).reshape(-1)
    return _propagate(state0, acc, dt_s)
