"""Velocimeter and star-tracker measurement models of the landing filter (kizuna.lunar.nav.sensors).

Expected values are analytic: the Jacobian against central finite differences of the exact measurement
function over the filter's error-state definition (R_true = Exp(dtheta) R_hat), and the posterior
attitude variance of one linear Kalman update, 1 / (1/P + 1/R).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from kizuna.core.rotations import quat_multiply, quat_to_matrix, rotvec_to_quat
from kizuna.errors import InputError
from kizuna.lunar.nav.descent import Scenario
from kizuna.lunar.nav.filter import NavFilter
from kizuna.lunar.nav.imu import ImuSpec
from kizuna.lunar.nav.sensors import star_tracker_residual, velocimeter_model

Q = rotvec_to_quat([0.3, -0.2, 1.1])
V = np.array([35.0, -12.0, -18.0])


def test_velocimeter_jacobian_matches_finite_differences() -> None:
    h0, H = velocimeter_model(V, Q)
    np.testing.assert_allclose(h0, quat_to_matrix(Q).T @ V, rtol=0, atol=1e-12)
    step = 1e-6
    for i in range(15):
        dx = np.zeros(15)
        dx[i] = step

        def h(d: np.ndarray) -> np.ndarray:
            R = quat_to_matrix(quat_multiply(rotvec_to_quat(d[6:9]), Q))
            return R.T @ (V + d[3:6])

        num = (h(dx) - h(-dx)) / (2 * step)
        np.testing.assert_allclose(H[:, i], num, rtol=0, atol=1e-6)


def test_star_tracker_residual_is_the_attitude_error() -> None:
    dtheta = np.array([2e-4, -1e-4, 3e-4])
    q_true = quat_multiply(rotvec_to_quat(dtheta), Q)
    y, H = star_tracker_residual(q_true, Q)
    np.testing.assert_allclose(y, dtheta, rtol=1e-6, atol=1e-12)
    assert np.array_equal(H[:, 6:9], np.eye(3)) and not H[:, :6].any() and not H[:, 9:].any()


def test_star_tracker_update_gives_the_kalman_posterior_variance() -> None:
    P0 = np.diag([100.0] * 3 + [1.0] * 3 + [math.radians(0.05) ** 2] * 3 + [1e-6] * 3 + [1e-10] * 3)
    nav = NavFilter([0.0, 0.0, 1000.0], V, Q, P0, ImuSpec.default(50.0))
    sig = math.radians(0.003)
    y, H = star_tracker_residual(Q, Q)
    res = nav.update(y, np.zeros(3), H, np.eye(3) * sig**2)
    assert res.accepted
    expected = 1.0 / (1.0 / P0[6, 6] + 1.0 / sig**2)
    np.testing.assert_allclose(np.diag(nav.covariance)[6:9], expected, rtol=1e-9)


def test_sensor_options_are_checked_and_the_polar_preset_keeps_its_sensors() -> None:
    with pytest.raises(InputError, match="velocimeter_sigma_m_s"):
        Scenario(velocimeter_sigma_m_s=-1.0)
    with pytest.raises(InputError, match="star_tracker_sigma_deg"):
        replace(Scenario(), star_tracker_sigma_deg=float("nan"))
    polar = Scenario.polar()
    assert polar.velocimeter_sigma_m_s == 0.0 and polar.star_tracker_sigma_deg == 0.0
    assert polar.fix_altitudes_m[-2:] == (400.0, 200.0)
