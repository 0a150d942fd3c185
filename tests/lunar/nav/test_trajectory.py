"""Tests of the true descent trajectory: guidance requirements, attitude, camera mounting, and its
consistency with the IMU simulator and strapdown mechanisation (two independent codes)."""

from __future__ import annotations

import numpy as np
import pytest

from kizuna.core.rotations import quat_to_matrix
from kizuna.errors import InputError
from kizuna.lunar.nav.imu import ImuSpec, simulate_imu, strapdown_step
from kizuna.lunar.nav.trajectory import R_CAM_FROM_BODY, DescentProfile, camera_pose, fly_profile

PROFILE = DescentProfile()
TARGET = np.array([10.0, -20.0, -3.0])
DT = 0.05


@pytest.fixture(scope="module")
def nominal():
    return fly_profile(PROFILE, TARGET, DT)


@pytest.fixture(scope="module")
def dispersed():
    return fly_profile(
        PROFILE,
        TARGET,
        DT,
        initial_offset_l=np.array([-800.0, 500.0, -300.0]),
        initial_velocity_offset_l=np.array([-5.0, 3.0, -2.0]),
    )


@pytest.mark.parametrize("which", ["nominal", "dispersed"])
def test_reaches_hover_point_at_rest(which: str, request) -> None:
    # Design requirement of the ZEM/ZEV law (Ebrahimi et al. 2008): the lander arrives at the hover point
    # (50 m above the target) with zero velocity, from the nominal start or a dispersed one, and holds it.
    tr = request.getfixturevalue(which)
    hover = TARGET + [0.0, 0.0, PROFILE.hover_altitude_m]
    i = tr.index_at(PROFILE.braking_duration_s + PROFILE.terminal_duration_s)
    assert np.linalg.norm(tr.r_l[i] - hover) < 0.1
    assert np.linalg.norm(tr.v_l[i]) < 0.1
    # through the hover
    assert np.max(np.linalg.norm(tr.r_l[i:] - hover, axis=1)) < 0.1
    assert np.linalg.norm(tr.v_l[-1]) < 0.01


@pytest.mark.parametrize("which", ["nominal", "dispersed"])
def test_never_below_hover_altitude(which: str, request) -> None:
    tr = request.getfixturevalue(which)
    alt = tr.altitude_over_target()
    assert alt.min() > PROFILE.hover_altitude_m - 1.0
    np.testing.assert_allclose(alt, tr.r_l[:, 2] - TARGET[2])


def test_start_state_and_time_grid(dispersed) -> None:
    # The start is the profile's: 40 km uprange (-x), 15 km up, 250 m/s forward, 15 m/s down, plus offsets.
    np.testing.assert_allclose(dispersed.r_l[0], TARGET + [-40_000.0 - 800.0, 500.0, 15_000.0 - 300.0])
    np.testing.assert_allclose(dispersed.v_l[0], [250.0 - 5.0, 3.0, -15.0 - 2.0])
    assert dispersed.t_s[-1] == pytest.approx(PROFILE.duration_s)
    np.testing.assert_allclose(np.diff(dispersed.t_s), DT, rtol=1e-9)
    assert dispersed.index_at(123.4) == round(123.4 / DT)


def test_passes_the_approach_gate(nominal) -> None:
    # Braking ends at the approach gate, 1 km straight above the target, sinking at 10 m/s (the guidance
    # hands over to the terminal phase 1 s early, hence the metre-level tolerance).
    i = nominal.index_at(PROFILE.braking_duration_s)
    np.testing.assert_allclose(nominal.r_l[i], TARGET + [0.0, 0.0, 1000.0], atol=1.0)
    np.testing.assert_allclose(nominal.v_l[i], [0.0, 0.0, -10.0], atol=1.0)


def test_attitude_quaternions_are_unit(dispersed) -> None:
    np.testing.assert_allclose(np.linalg.norm(dispersed.q_lb, axis=1), 1.0, atol=1e-12)


def test_camera_mounting_is_proper_rotation() -> None:
    np.testing.assert_allclose(R_CAM_FROM_BODY @ R_CAM_FROM_BODY.T, np.eye(3), atol=0)
    assert np.linalg.det(R_CAM_FROM_BODY) == pytest.approx(1.0, abs=1e-15)
    # boresight (camera +z) along body -z, image top (camera -y) along body +x
    np.testing.assert_array_equal(R_CAM_FROM_BODY.T @ [0.0, 0.0, 1.0], [0.0, 0.0, -1.0])
    np.testing.assert_array_equal(R_CAM_FROM_BODY.T @ [0.0, -1.0, 0.0], [1.0, 0.0, 0.0])


@pytest.mark.parametrize("which", ["nominal", "dispersed"])
def test_boresight_looks_down(which: str, request) -> None:
    tr = request.getfixturevalue(which)
    R_lb = quat_to_matrix(tr.q_lb)
    # x_cam = R_cb R_lb^T x_l, so the camera's +z (boresight) and -y (image top) in frame L are
    # R_lb R_cb^T e_z and R_lb R_cb^T (-e_y)
    boresight_l = R_lb @ (R_CAM_FROM_BODY.T @ [0.0, 0.0, 1.0])
    top_l = R_lb @ (R_CAM_FROM_BODY.T @ [0.0, -1.0, 0.0])
    assert boresight_l[:, 2].max() < -0.5
    # In the hover the thrust cancels gravity, which points at the Moon's centre straight below: the
    # camera looks at nadir with the image top toward +x (east). The 4 s attitude smoothing still carries
    # the last corrections of the descent: allow 2 mrad.
    hover = slice(tr.index_at(PROFILE.duration_s - 5.0), None)
    n = tr.t_s[hover].size
    np.testing.assert_allclose(boresight_l[hover], np.tile([0.0, 0.0, -1.0], (n, 1)), atol=2e-3)
    np.testing.assert_allclose(top_l[hover], np.tile([1.0, 0.0, 0.0], (n, 1)), atol=2e-3)
    # camera_pose of one sample is this rotation and the position unchanged
    for k in (0, tr.t_s.size // 2, tr.t_s.size - 1):
        R_cw, p_w = camera_pose(tr.q_lb[k], tr.r_l[k])
        np.testing.assert_allclose(R_cw.T @ [0.0, 0.0, 1.0], boresight_l[k], atol=1e-15)
        np.testing.assert_array_equal(p_w, tr.r_l[k])


def test_camera_pose_broadcasts_over_samples(nominal) -> None:
    # Arrays first (design guide): a batch of attitudes gives the batch of per-sample poses.
    idx = [0, 1000, 5000, nominal.t_s.size - 1]
    R_cw, p_w = camera_pose(nominal.q_lb[idx], nominal.r_l[idx])
    expected = np.stack([camera_pose(nominal.q_lb[k], nominal.r_l[k])[0] for k in idx])
    assert R_cw.shape == (4, 3, 3)
    np.testing.assert_allclose(R_cw, expected, atol=1e-15)


def test_body_z_follows_thrust_in_hover(nominal) -> None:
    # Body +z along the (4 s smoothed) thrust: in the steady hover, the instantaneous thrust within 2 mrad.
    hover = slice(nominal.index_at(PROFILE.duration_s - 5.0), None)
    z_body = quat_to_matrix(nominal.q_lb[hover])[:, :, 2]
    thrust = nominal.thrust_l[hover] / np.linalg.norm(nominal.thrust_l[hover], axis=1, keepdims=True)
    np.testing.assert_allclose(z_body, thrust, atol=2e-3)
    # and the thrust per unit mass there balances lunar gravity, GM / r^2 = 1.6242 m/s^2 (GRAIL GM, 1737.4 km
    # radius, 47 m above it), up to the PD hold's last millimetre-level corrections (< 0.5 %)
    g0 = 4902.8001e9 / (1_737_400.0 + TARGET[2] + PROFILE.hover_altitude_m) ** 2
    np.testing.assert_allclose(np.linalg.norm(nominal.thrust_l[hover], axis=1), g0, rtol=5e-3)


def test_noise_free_imu_reproduces_trajectory(nominal) -> None:
    # The trajectory and the strapdown mechanisation use the same integration scheme (imu.py docstring):
    # noise-free IMU samples from simulate_imu, integrated with strapdown_step from the true initial state,
    # give back the true trajectory to round-off.
    tr = nominal
    spec = ImuSpec(1.0 / DT, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    f_b, w_b, _ = simulate_imu(tr.t_s, tr.r_l, tr.v_l, tr.q_lb, spec, np.random.default_rng(0))
    r, v, q = tr.r_l[0].copy(), tr.v_l[0].copy(), tr.q_lb[0].copy()
    err_r = err_v = err_q = 0.0
    for k in range(f_b.shape[0]):
        r, v, q = strapdown_step(r, v, q, f_b[k], w_b[k], DT)
        err_r = max(err_r, np.abs(r - tr.r_l[k + 1]).max())
        err_v = max(err_v, np.abs(v - tr.v_l[k + 1]).max())
        err_q = max(err_q, np.abs(quat_to_matrix(q) - quat_to_matrix(tr.q_lb[k + 1])).max())
    assert err_r < 1e-5
    assert err_v < 1e-8
    assert err_q < 1e-10


@pytest.mark.parametrize(
    "kwargs",
    [
        {"gate_altitude_m": 20_000.0},
        {"hover_altitude_m": 2_000.0},
        {"hover_altitude_m": 0.0},
        {"braking_duration_s": 0.0},
        {"terminal_duration_s": -5.0},
        {"hover_duration_s": 0.0},
    ],
)
def test_bad_profile_raises(kwargs: dict) -> None:
    with pytest.raises(InputError, match="descent profile"):
        DescentProfile(**kwargs)
