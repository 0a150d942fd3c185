"""Tests of kizuna.core.rotations: Hamilton scalar-first quaternions, matrices and look_at.

The independent peer is scipy.spatial.transform.Rotation (scalar-last quaternions, active rotations):
its matrices and rotation vectors are the reference for ours.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from kizuna.core.rotations import (
    look_at,
    matrix_to_quat,
    quat_conjugate,
    quat_multiply,
    quat_normalize,
    quat_to_matrix,
    quat_to_rotvec,
    rot_x,
    rot_y,
    rot_z,
    rotvec_to_quat,
    skew,
)


def _random_quats(n: int, seed: int) -> np.ndarray:
    q = np.random.default_rng(seed).standard_normal((n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def _xyzw(q: np.ndarray) -> np.ndarray:
    return np.concatenate([q[..., 1:], q[..., :1]], axis=-1)


def test_quat_to_matrix_matches_scipy() -> None:
    # scipy's Rotation.from_quat takes (x, y, z, w): the same rotation must give the same matrix.
    q = _random_quats(50, 1)
    np.testing.assert_allclose(quat_to_matrix(q), Rotation.from_quat(_xyzw(q)).as_matrix(), atol=1e-14)


def test_quat_to_matrix_is_proper_rotation() -> None:
    # Invariant of SO(3): R R^T = I and det R = +1 (also for a non-unit input, which is normalised).
    m = quat_to_matrix(3.7 * _random_quats(20, 2))
    np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape), atol=1e-14)
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-13)


def test_quat_product_is_matrix_product() -> None:
    # Hamilton convention: R(p * q) = R(p) R(q) (composition of active rotations, q applied first).
    p = _random_quats(30, 3)
    q = _random_quats(30, 4)
    np.testing.assert_allclose(
        quat_to_matrix(quat_multiply(p, q)), quat_to_matrix(p) @ quat_to_matrix(q), atol=1e-14
    )
    # and the same composition in scipy: (P * Q).apply(v) = P.apply(Q.apply(v))
    ref = (Rotation.from_quat(_xyzw(p)) * Rotation.from_quat(_xyzw(q))).as_matrix()
    np.testing.assert_allclose(quat_to_matrix(quat_multiply(p, q)), ref, atol=1e-14)


def test_quat_multiply_by_hand() -> None:
    # Hamilton's rules i j = k, j i = -k, i i = -1 (Hamilton 1843), written as scalar-first quaternions.
    i, j, k = np.eye(4)[1], np.eye(4)[2], np.eye(4)[3]
    np.testing.assert_array_equal(quat_multiply(i, j), k)
    np.testing.assert_array_equal(quat_multiply(j, i), -k)
    np.testing.assert_array_equal(quat_multiply(i, i), [-1.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(quat_multiply(j, k), i)


def test_quat_multiply_broadcasts() -> None:
    p = _random_quats(6, 5).reshape(2, 3, 4)
    q = _random_quats(1, 6)[0]
    out = quat_multiply(p, q)
    assert out.shape == (2, 3, 4)
    np.testing.assert_allclose(out[1, 2], quat_multiply(p[1, 2], q), atol=0)


def test_conjugate_is_inverse() -> None:
    q = _random_quats(10, 7)
    ident = quat_multiply(q, quat_conjugate(q))
    np.testing.assert_allclose(ident, np.tile([1.0, 0.0, 0.0, 0.0], (10, 1)), atol=1e-15)
    # the input is not modified in place
    q2 = q.copy()
    quat_conjugate(q)
    np.testing.assert_array_equal(q, q2)


def test_normalize_gives_unit_non_negative_scalar() -> None:
    q = 5.0 * _random_quats(40, 8)
    n = quat_normalize(q)
    np.testing.assert_allclose(np.linalg.norm(n, axis=-1), 1.0, atol=1e-15)
    assert np.all(n[:, 0] >= 0)
    # q and -q are the same rotation
    np.testing.assert_allclose(quat_to_matrix(n), quat_to_matrix(q), atol=1e-14)


def test_rotvec_to_quat_matches_scipy() -> None:
    phi = np.random.default_rng(9).uniform(-2.0, 2.0, (50, 3))
    q = rotvec_to_quat(phi)
    ref = Rotation.from_rotvec(phi).as_quat()  # (x, y, z, w), w >= 0 for angles below pi
    np.testing.assert_allclose(_xyzw(q), ref, atol=1e-15)


def test_rotvec_round_trip() -> None:
    phi = np.random.default_rng(10).standard_normal((100, 3))
    phi *= (np.random.default_rng(11).uniform(0.0, 3.1, 100) / np.linalg.norm(phi, axis=1))[:, None]
    np.testing.assert_allclose(quat_to_rotvec(rotvec_to_quat(phi)), phi, atol=1e-14)
    np.testing.assert_allclose(quat_to_rotvec(rotvec_to_quat(phi)), Rotation.from_rotvec(phi).as_rotvec())


@pytest.mark.parametrize("angle", [0.0, 1e-15, 1e-10, 1e-8, 1e-7, 1e-4])
def test_rotvec_tiny_angles_keep_relative_accuracy(angle: float) -> None:
    # Series sin(a/2)/a = 1/2 - a^2/48: q = (cos(a/2), axis sin(a/2)) to full relative precision.
    axis = np.array([2.0, -3.0, 6.0]) / 7.0
    phi = angle * axis
    q = rotvec_to_quat(phi)
    np.testing.assert_allclose(q[1:], math.sin(angle / 2) * axis, rtol=1e-15, atol=1e-300)
    assert q[0] == pytest.approx(math.cos(angle / 2), abs=1e-16)
    np.testing.assert_allclose(quat_to_rotvec(q), phi, rtol=1e-13, atol=1e-300)


def test_rotvec_at_pi() -> None:
    # A half turn about x is the quaternion (0, 1, 0, 0) (cos(pi/2), sin(pi/2) x): rotvec of norm pi.
    np.testing.assert_allclose(quat_to_rotvec([0.0, 1.0, 0.0, 0.0]), [math.pi, 0.0, 0.0], atol=1e-15)
    q = rotvec_to_quat([0.0, math.pi, 0.0])
    np.testing.assert_allclose(q, [0.0, 0.0, 1.0, 0.0], atol=1e-16)
    np.testing.assert_allclose(quat_to_matrix(q), np.diag([-1.0, 1.0, -1.0]), atol=1e-15)


def test_rotvec_beyond_pi_wraps_to_shorter_rotation() -> None:
    # A rotation by a > pi about u is the rotation by 2 pi - a about -u (angle in [0, pi] on output).
    u = np.array([0.0, 0.6, 0.8])
    a = 4.0
    np.testing.assert_allclose(quat_to_rotvec(rotvec_to_quat(a * u)), -(2 * math.pi - a) * u, atol=1e-14)


def test_matrix_to_quat_round_trip() -> None:
    q = quat_normalize(_random_quats(30, 12))
    np.testing.assert_allclose(matrix_to_quat(quat_to_matrix(q)), q, atol=1e-14)
    m = quat_to_matrix(q).reshape(5, 6, 3, 3)
    assert matrix_to_quat(m).shape == (5, 6, 4)


def test_axis_rotations_are_active_right_handed() -> None:
    # A right-handed active quarter turn about z takes x to y, about x takes y to z, about y takes z to x.
    ex, ey, ez = np.eye(3)
    np.testing.assert_allclose(rot_z(math.pi / 2) @ ex, ey, atol=1e-16)
    np.testing.assert_allclose(rot_x(math.pi / 2) @ ey, ez, atol=1e-16)
    np.testing.assert_allclose(rot_y(math.pi / 2) @ ez, ex, atol=1e-16)
    # and agree with scipy's elementary rotations, broadcast over angles
    a = np.linspace(-3.0, 3.0, 7)
    for f, ax in ((rot_x, "x"), (rot_y, "y"), (rot_z, "z")):
        np.testing.assert_allclose(f(a), Rotation.from_euler(ax, a[:, None]).as_matrix(), atol=1e-15)


def test_skew_is_cross_product() -> None:
    rng = np.random.default_rng(13)
    v = rng.standard_normal((8, 3))
    w = rng.standard_normal((8, 3))
    np.testing.assert_allclose(np.einsum("nij,nj->ni", skew(v), w), np.cross(v, w), atol=1e-15)
    np.testing.assert_array_equal(skew(v[0]), -skew(v[0]).T)


def test_look_at_frame() -> None:
    eye = np.array([10.0, -20.0, 300.0])
    target = np.array([40.0, 15.0, 0.0])
    R = look_at(eye, target, up=(0.0, 1.0, 0.0))
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-15)
    assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-14)
    # third row (camera z) is the unit direction to the target
    d = (target - eye) / np.linalg.norm(target - eye)
    np.testing.assert_allclose(R[2], d, atol=1e-15)
    # 'up' appears toward the top of the image: negative camera y
    assert (R @ np.array([0.0, 1.0, 0.0]))[1] < 0


def test_look_at_nadir_east_right_north_up() -> None:
    # Camera above the origin looking straight down with north (+y) up: in the camera frame (x right,
    # y down, z forward) east is +x, north is -y and down is +z.
    R = look_at([0.0, 0.0, 100.0], [0.0, 0.0, 0.0], up=(0.0, 1.0, 0.0))
    np.testing.assert_allclose(R, [[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]], atol=1e-15)


def test_look_at_along_up_still_gives_rotation() -> None:
    R = look_at([0.0, 0.0, 0.0], [0.0, 5.0, 0.0], up=(0.0, 1.0, 0.0))
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-15)
    assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(R[2], [0.0, 1.0, 0.0], atol=1e-15)
