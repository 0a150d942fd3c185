"""Point-mass lunar gravity in the landing frame L.

Frame L is a local frame at the landing target: origin on the 1737.4 km reference sphere below the
target, x east, y north, z up, so the Moon's centre is at ``c = (0, 0, -MOON_RADIUS_M)``. The navigation
filter treats L as inertial: the Moon's rotation (2.66e-6 rad/s) is neglected. The terms dropped are the
Coriolis acceleration 2 w x v (up to about 9e-3 m/s^2 at the 1.7 km/s of the start of powered descent, below
1e-4 m/s^2 in the last few hundred metres) and the centripetal w x (w x r) (about 1.2e-5 m/s^2). The IMU
simulator in ``imu.py`` makes the same assumption, so simulated data are consistent with the filter; real
data would need these terms.

The scalar kernels ``gravity_xyz`` and ``gravity_gradient_into`` are compiled with numba so that the
strapdown mechanisation and the filter call the same formula as the public array functions.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from kizuna.core.constants import MOON_GM_M3_S2, MOON_RADIUS_M
from kizuna.errors import InputError

__all__ = ["MOON_CENTRE_L_M", "gravity_l", "gravity_gradient_l"]

# Position of the Moon's centre in frame L (m).
MOON_CENTRE_L_M = np.array([0.0, 0.0, -MOON_RADIUS_M])
MOON_CENTRE_L_M.flags.writeable = False

_GM = MOON_GM_M3_S2
_R = MOON_RADIUS_M
# Points closer than this to the centre are rejected: the point-mass field is meant for the outside.
_MIN_RADIUS_M = 1.0e3


@numba.njit(cache=True)
def gravity_xyz(x: float, y: float, z: float) -> tuple[float, float, float]:
    """Return the point-mass gravity (m/s^2, frame L) at the point (x, y, z) (m, frame L)."""
    dx = x
    dy = y
    dz = z + _R
    d2 = dx * dx + dy * dy + dz * dz
    k = -_GM / (d2 * np.sqrt(d2))
    return k * dx, k * dy, k * dz


@numba.njit(cache=True)
def gravity_gradient_into(x: float, y: float, z: float, out: NDArray[np.float64]) -> None:
    """Write the gravity gradient dg/dr (1/s^2, frame L) at (x, y, z) (m, frame L) into a 3x3 array."""
    d0 = x
    d1 = y
    d2_ = z + _R
    rr = d0 * d0 + d1 * d1 + d2_ * d2_
    k = -_GM / (rr * np.sqrt(rr))
    k3 = -3.0 * k / rr
    d = (d0, d1, d2_)
    for i in range(3):
        for j in range(3):
            out[i, j] = k3 * d[i] * d[j]
        out[i, i] += k


@numba.njit(cache=True)
def _gravity_rows(r: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.empty_like(r)
    for n in range(r.shape[0]):
        gx, gy, gz = gravity_xyz(r[n, 0], r[n, 1], r[n, 2])
        out[n, 0] = gx
        out[n, 1] = gy
        out[n, 2] = gz
    return out


@numba.njit(cache=True)
def _gradient_rows(r: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.empty((r.shape[0], 3, 3))
    for n in range(r.shape[0]):
        gravity_gradient_into(r[n, 0], r[n, 1], r[n, 2], out[n])
    return out


def _as_points(r_l: ArrayLike, name: str) -> NDArray[np.float64]:
    r = np.asarray(r_l, dtype=float)
    if r.ndim == 0 or r.shape[-1] != 3:
        raise InputError(f"{name}: expected positions of shape (..., 3) in metres, got shape {r.shape}")
    if not np.all(np.isfinite(r)):
        raise InputError(f"{name}: expected finite positions (m), got NaN or infinity")
    dist = np.linalg.norm(r - MOON_CENTRE_L_M, axis=-1)
    if np.any(dist < _MIN_RADIUS_M):
        raise InputError(
            f"{name}: expected points at least {_MIN_RADIUS_M:.0f} m from the Moon's centre (0, 0, -R) "
            "where the point-mass field is defined"
        )
    return r


def gravity_l(r_l: ArrayLike) -> NDArray[np.float64]:
    """Return point-mass lunar gravity g = -GM (r - c)/|r - c|^3 (m/s^2, frame L) at r_l (m, frame L).

    ``r_l`` has shape (..., 3); the result has the same shape.
    """
    r = _as_points(r_l, "r_l")
    flat = np.ascontiguousarray(r.reshape(-1, 3))
    return _gravity_rows(flat).reshape(r.shape)


def gravity_gradient_l(r_l: ArrayLike) -> NDArray[np.float64]:
    """Return the gravity gradient dg/dr (1/s^2, frame L) at r_l (m, frame L), shape (..., 3, 3).

    G = -GM/d^3 (I - 3 u u^T) with d = |r - c| and u = (r - c)/d; symmetric and trace-free.
    """
    r = _as_points(r_l, "r_l")
    flat = np.ascontiguousarray(r.reshape(-1, 3))
    return _gradient_rows(flat).reshape(r.shape[:-1] + (3, 3))
