"""Rotations and attitude: Hamilton unit quaternions (scalar first), rotation matrices, skew matrices.

Convention: a quaternion ``q_ab`` rotates vectors from frame b into frame a, ``v_a = R(q_ab) v_b``.
All functions broadcast over leading axes, as numpy does.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "skew",
    "quat_multiply",
    "quat_conjugate",
    "quat_normalize",
    "quat_to_matrix",
    "matrix_to_quat",
    "rotvec_to_quat",
    "quat_to_rotvec",
    "rot_x",
    "rot_y",
    "rot_z",
    "look_at",
]


def skew(v: ArrayLike) -> NDArray[np.float64]:
    """Return the 3x3 cross-product matrix [v]x with [v]x w = v x w (same units as v)."""
    v = np.asarray(v, dtype=float)
    z = np.zeros(v.shape[:-1])
    return np.stack(
        [
            np.stack([z, -v[..., 2], v[..., 1]], -1),
            np.stack([v[..., 2], z, -v[..., 0]], -1),
            np.stack([-v[..., 1], v[..., 0], z], -1),
        ],
        -2,
    )


def quat_multiply(p: ArrayLike, q: ArrayLike) -> NDArray[np.float64]:
    """Return the Hamilton product p * q of scalar-first quaternions (so R(p*q) = R(p) R(q))."""
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    pw, px, py, pz = np.moveaxis(p, -1, 0)
    qw, qx, qy, qz = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            pw * qw - px * qx - py * qy - pz * qz,
            pw * qx + px * qw + py * qz - pz * qy,
            pw * qy - px * qz + py * qw + pz * qx,
            pw * qz + px * qy - py * qx + pz * qw,
        ],
        -1,
    )


def quat_conjugate(q: ArrayLike) -> NDArray[np.float64]:
    """Return the conjugate (inverse for unit quaternions) of scalar-first quaternions."""
    q = np.array(q, dtype=float)
    q[..., 1:] *= -1.0
    return q


def quat_normalize(q: ArrayLike) -> NDArray[np.float64]:
    """Return unit quaternions with a non-negative scalar part."""
    q = np.asarray(q, dtype=float)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def quat_to_matrix(q: ArrayLike) -> NDArray[np.float64]:
    """Return the rotation matrix R(q) of scalar-first unit quaternions (shape (..., 3, 3))."""
    q = np.asarray(q, dtype=float)
    w, x, y, z = np.moveaxis(q / np.linalg.norm(q, axis=-1, keepdims=True), -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def matrix_to_quat(m: ArrayLike) -> NDArray[np.float64]:
    """Return scalar-first unit quaternions of rotation matrices (shape (..., 3, 3) -> (..., 4))."""
    from scipy.spatial.transform import Rotation

    m = np.asarray(m, dtype=float)
    xyzw = Rotation.from_matrix(m.reshape(-1, 3, 3)).as_quat()
    q = np.concatenate([xyzw[:, 3:], xyzw[:, :3]], axis=-1).reshape(m.shape[:-2] + (4,))
    return quat_normalize(q)


def rotvec_to_quat(phi: ArrayLike) -> NDArray[np.float64]:
    """Return scalar-first quaternions exp(phi/2) of rotation vectors phi (rad)."""
    phi = np.asarray(phi, dtype=float)
    angle = np.linalg.norm(phi, axis=-1, keepdims=True)
    half = 0.5 * angle
    # sin(a/2)/a with its series near zero, so tiny rotations stay accurate.
    k = np.where(angle < 1e-8, 0.5 - angle**2 / 48.0, np.sin(half) / np.where(angle < 1e-8, 1.0, angle))
    return np.concatenate([np.cos(half), k * phi], axis=-1)


def quat_to_rotvec(q: ArrayLike) -> NDArray[np.float64]:
    """Return rotation vectors (rad) of scalar-first unit quaternions, angle in [0, pi]."""
    q = quat_normalize(q)
    s = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, q[..., :1])
    k = np.where(s < 1e-12, 2.0, angle / np.where(s < 1e-12, 1.0, s))
    return k * q[..., 1:]


def _axis_rotation(angle: ArrayLike, i: int) -> NDArray[np.float64]:
    a = np.asarray(angle, dtype=float)
    c, s = np.cos(a), np.sin(a)
    m = np.zeros(a.shape + (3, 3))
    j, k = (i + 1) % 3, (i + 2) % 3
    m[..., i, i] = 1.0
    m[..., j, j] = c
    m[..., k, k] = c
    m[..., k, j] = s
    m[..., j, k] = -s
    return m


def rot_x(angle_rad: ArrayLike) -> NDArray[np.float64]:
    """Return the matrix that rotates vectors by angle_rad (rad) about +x (active, right-handed)."""
    return _axis_rotation(angle_rad, 0)


def rot_y(angle_rad: ArrayLike) -> NDArray[np.float64]:
    """Return the matrix that rotates vectors by angle_rad (rad) about +y (active, right-handed)."""
    return _axis_rotation(angle_rad, 1)


def rot_z(angle_rad: ArrayLike) -> NDArray[np.float64]:
    """Return the matrix that rotates vectors by angle_rad (rad) about +z (active, right-handed)."""
    return _axis_rotation(angle_rad, 2)


def look_at(eye: ArrayLike, target: ArrayLike, up: ArrayLike = (0.0, 1.0, 0.0)) -> NDArray[np.float64]:
    """Return R_cam_from_world for a camera at eye looking at target (camera x right, y down, z forward).

    ``up`` is the world direction that should appear toward the top of the image.
    """
    eye = np.asarray(eye, dtype=float)
    z = np.asarray(target, dtype=float) - eye
    z = z / np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=float))
    n = np.linalg.norm(x)
    if n < 1e-9:  # looking along 'up': any perpendicular will do
        x = np.cross(z, [1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.cross(z, [0.0, 1.0, 0.0])
        n = np.linalg.norm(x)
    x = x / n
    y = np.cross(z, x)
    return np.stack([x, y, z])
