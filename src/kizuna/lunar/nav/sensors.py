"""Measurement models of the lander's velocimeter and star tracker for the navigation filter.

The filter's error state is (dr, dv, dtheta, db_a, db_g) (SI; dtheta a small rotation in frame L, with
R_true = Exp(dtheta) R_hat for R = R_lb, body to L); see :mod:`kizuna.lunar.nav.filter`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from kizuna.core.rotations import quat_conjugate, quat_multiply, quat_to_matrix, quat_to_rotvec
from kizuna.lunar.nav.filter import N_ERR

__all__ = ["velocimeter_model", "star_tracker_residual"]


def _skew(v: NDArray) -> NDArray[np.float64]:
    """Return the cross-product matrix [v x]."""
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def velocimeter_model(v_l_m_s: ArrayLike, q_lb: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return the predicted velocimeter output v_b = R_lb^T v_l (m/s, body axes) and its Jacobian (3, 15).

    A Doppler velocimeter measures the velocity over the ground along its beams, i.e. in body axes. To first
    order in the error state, v_b = R_hat^T v_hat + R_hat^T dv + R_hat^T [v_hat x] dtheta.
    """
    v = np.asarray(v_l_m_s, dtype=float)
    R = quat_to_matrix(q_lb)
    H = np.zeros((3, N_ERR))
    H[:, 3:6] = R.T
    H[:, 6:9] = R.T @ _skew(v)
    return R.T @ v, H


def star_tracker_residual(
    q_meas_lb: ArrayLike, q_hat_lb: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return the attitude residual Log(q_meas q_hat^-1) (rad, frame L) and its Jacobian (3, 15).

    With q_meas = Exp(eta) q_true the residual is dtheta + eta, so the Jacobian selects dtheta.
    """
    y = quat_to_rotvec(quat_multiply(np.asarray(q_meas_lb, float), quat_conjugate(q_hat_lb)))
    H = np.zeros((3, N_ERR))
    H[:, 6:9] = np.eye(3)
    return y, H
