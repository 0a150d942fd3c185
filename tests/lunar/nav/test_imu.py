"""Tests of the IMU model: datasheet spec, measurement simulator and strapdown mechanisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2

from kizuna.core.rotations import quat_multiply, quat_to_matrix, rotvec_to_quat
from kizuna.errors import InputError
from kizuna.lunar.nav.dynamics import gravity_l
from kizuna.lunar.nav.imu import ImuSpec, simulate_imu, strapdown_step

# GRAIL GM (Konopliv et al. 2013) and LOLA reference radius, typed in from the publications.
GM = 4902.8001e9
R_MOON = 1737.4e3
CENTRE = np.array([0.0, 0.0, -R_MOON])


def _noise_free(rate_hz: float) -> ImuSpec:
    return ImuSpec(rate_hz, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def _integrate(
    r0: np.ndarray, v0: np.ndarray, q0: np.ndarray, f_b: np.ndarray, w_b: np.ndarray, dt: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run strapdown_step over rows of f_b, w_b; return (N+1, ...) arrays of r, v, q."""
    n = f_b.shape[0]
    r = np.empty((n + 1, 3))
    v = np.empty((n + 1, 3))
    q = np.empty((n + 1, 4))
    r[0], v[0], q[0] = r0, v0, q0
    for k in range(n):
        r[k + 1], v[k + 1], q[k + 1] = strapdown_step(r[k], v[k], q[k], f_b[k], w_b[k], dt)
    return r, v, q


def _same_rotation(q1: np.ndarray, q2: np.ndarray, atol: float) -> None:
    np.testing.assert_allclose(quat_to_matrix(q1), quat_to_matrix(q2), atol=atol)


def test_default_spec_is_ln200_datasheet_in_si() -> None:
    # LN-200 datasheet figures converted by hand: 0.07 deg/sqrt(h) = 0.07 * (pi/180) / 60 rad/sqrt(s)
    # = 2.0362e-5 rad/s/sqrt(Hz); 1 deg/h = 4.8481e-6 rad/s; 50 micro-g/sqrt(Hz) = 4.9033e-4 m/s^2/sqrt(Hz);
    # 300 micro-g = 2.9420e-3 m/s^2 (g = 9.80665 m/s^2).
    spec = ImuSpec.default()
    assert spec.gyro_noise_density_rad_s_rthz == pytest.approx(2.0362e-5, rel=1e-4)
    assert spec.gyro_bias_sigma_rad_s == pytest.approx(4.8481e-6, rel=1e-4)
    assert spec.accel_noise_density_m_s2_rthz == pytest.approx(4.9033e-4, rel=1e-4)
    assert spec.accel_bias_sigma_m_s2 == pytest.approx(2.9420e-3, rel=1e-4)
    assert ImuSpec.default(20.0).dt_s == pytest.approx(0.05)


@pytest.mark.parametrize("field", [0, 1, 2, 3, 4, 5, 6])
def test_spec_rejects_negative_or_nan_values(field: int) -> None:
    values = [50.0, 1e-4, 1e-5, 1e-3, 1e-6, 1e-5, 1e-8]
    values[field] = -1.0 if field else 0.0
    with pytest.raises(InputError, match="ImuSpec"):
        ImuSpec(*values)
    values[field] = math.nan
    with pytest.raises(InputError, match="ImuSpec"):
        ImuSpec(*values)


def test_noise_free_imu_reproduces_a_strapdown_trajectory() -> None:
    # Round trip: a trajectory integrated with the mechanisation from an arbitrary IMU profile, turned
    # back into IMU samples by simulate_imu, must be re-integrated to the same trajectory.
    dt = 0.02
    n = 3000  # 60 s at 50 Hz
    t = np.arange(n + 1) * dt
    tm = t[:-1]
    f = np.column_stack([0.3 * np.sin(0.1 * tm), 0.2 * np.cos(0.05 * tm), 1.6 + 0.5 * np.sin(0.02 * tm)])
    w = np.column_stack([0.01 * np.sin(0.3 * tm), 0.02 * np.cos(0.1 * tm), 0.005 + 0.0 * tm])
    q0 = rotvec_to_quat([0.3, -0.2, 0.1])
    r, v, q = _integrate(np.array([1000.0, -2000.0, 3000.0]), np.array([50.0, 10.0, -40.0]), q0, f, w, dt)
    f_m, w_m, biases = simulate_imu(t, r, v, q, _noise_free(50.0), np.random.default_rng(0))
    np.testing.assert_allclose(f_m, f, atol=1e-11)
    np.testing.assert_allclose(w_m, w, atol=1e-12)
    assert np.all(biases.accel_m_s2 == 0.0) and np.all(biases.gyro_rad_s == 0.0)
    r2, v2, q2 = _integrate(r[0], v[0], q[0], f_m, w_m, dt)
    np.testing.assert_allclose(r2, r, atol=1e-8)
    np.testing.assert_allclose(v2, v, atol=1e-10)
    _same_rotation(q2, q, atol=1e-12)


def test_constant_acceleration_trajectory_is_reproduced_exactly() -> None:
    # Analytic truth: r = r0 + v0 t + a t^2 / 2 and a constant body rate, q(t) = q0 * Exp(w t). The
    # gyro must read w, the accelerometer a - g in the body frame (the definition of specific force),
    # and the trapezoid of the strapdown is exact for constant acceleration.
    rate = 50.0
    t = np.arange(0, 6001) / rate  # 120 s
    r0 = np.array([-3000.0, 1000.0, 2000.0])
    v0 = np.array([40.0, -5.0, -30.0])
    acc = np.array([-0.3, 0.04, 0.25])
    w_body = np.array([0.002, -0.004, 0.01])
    r = r0 + v0 * t[:, None] + 0.5 * acc * t[:, None] ** 2
    v = v0 + acc * t[:, None]
    q0 = rotvec_to_quat([0.2, 0.1, -0.4])
    q = quat_multiply(q0, rotvec_to_quat(w_body * t[:, None]))
    f_m, w_m, _ = simulate_imu(t, r, v, q, _noise_free(rate), np.random.default_rng(1))
    np.testing.assert_allclose(w_m, np.broadcast_to(w_body, w_m.shape), atol=1e-12)
    t_mid = 0.5 * (t[:-1] + t[1:])
    r_mid = r0 + v0 * t_mid[:, None] + 0.5 * acc * t_mid[:, None] ** 2
    q_mid = quat_multiply(q0, rotvec_to_quat(w_body * t_mid[:, None]))
    f_expected = np.einsum("nji,nj->ni", quat_to_matrix(q_mid), acc - gravity_l(r_mid))
    # The simulator takes gravity at r_k + v_k dt/2, a * dt^2 / 8 = 2e-5 m from r(t_mid); times the
    # gravity gradient (2e-6 s^-2) that is 4e-11 m/s^2.
    np.testing.assert_allclose(f_m, f_expected, atol=1e-10)
    r2, v2, q2 = _integrate(r[0], v[0], q[0], f_m, w_m, 1.0 / rate)
    np.testing.assert_allclose(r2, r, atol=1e-7)
    np.testing.assert_allclose(v2, v, atol=1e-9)
    _same_rotation(q2, q, atol=1e-11)


def test_free_fall_reads_zero_specific_force() -> None:
    # An accelerometer in free fall reads zero (equivalence principle). Analytic circular orbit 15 km
    # above the reference sphere (speed sqrt(GM/a)), sampled at 50 Hz for 60 s.
    a = R_MOON + 15e3
    n = math.sqrt(GM / a**3)
    t = np.arange(3001) / 50.0
    ang = n * t
    r = CENTRE + a * np.column_stack([np.sin(ang), np.zeros_like(ang), np.cos(ang)])
    v = a * n * np.column_stack([np.cos(ang), np.zeros_like(ang), -np.sin(ang)])
    q = np.tile([1.0, 0.0, 0.0, 0.0], (t.size, 1))
    f_m, w_m, _ = simulate_imu(t, r, v, q, _noise_free(50.0), np.random.default_rng(2))
    # Finite-difference error of the scheme: ~ g (n dt)^2 = 1.45 * (9.5e-4 * 0.02)^2 = 5e-10 m/s^2.
    assert np.max(np.abs(f_m)) < 5e-9
    np.testing.assert_array_equal(w_m, 0.0)


def test_circular_orbit_period_and_energy_under_strapdown() -> None:
    # Kepler: a circular orbit of radius a has period 2 pi sqrt(a^3 / GM) and constant energy
    # v^2/2 - GM/|r - c|. Strapdown of a free-falling IMU (f = 0, w = 0) at 1 Hz for one period.
    a = R_MOON + 15e3
    period = 2.0 * math.pi * math.sqrt(a**3 / GM)  # 6582.75 s
    dt = 1.0
    steps = int(period / dt) + 3
    zeros = np.zeros((steps, 3))
    r, v, _ = _integrate(
        np.array([0.0, 0.0, 15e3]),
        np.array([math.sqrt(GM / a), 0.0, 0.0]),
        np.array([1.0, 0, 0, 0]),
        zeros,
        zeros,
        dt,
    )
    d = r - CENTRE
    energy = 0.5 * np.sum(v * v, axis=1) - GM / np.linalg.norm(d, axis=1)
    assert np.max(np.abs(energy / energy[0] - 1.0)) < 1e-9
    assert np.ptp(np.linalg.norm(d, axis=1)) < 1.0  # m, out of a = 1752.4 km
    # Time of return to the start direction, interpolated between steps.
    phase = np.unwrap(np.arctan2(d[:, 0], d[:, 2]))
    k = int(np.searchsorted(phase, 2.0 * math.pi))
    t_return = (k - 1 + (2.0 * math.pi - phase[k - 1]) / (phase[k] - phase[k - 1])) * dt
    # A second-order scheme at n dt = 9.5e-4 rad per step: relative period error ~ (n dt)^2 = 1e-6.
    assert abs(t_return / period - 1.0) < 1e-6


def test_strapdown_step_broadcasts_like_a_loop() -> None:
    rng = np.random.default_rng(4)
    r = rng.normal(0, 1000, (5, 3)) + [0, 0, 5000]
    v = rng.normal(0, 30, (5, 3))
    q = rotvec_to_quat(rng.normal(0, 0.5, (5, 3)))
    f = rng.normal(0, 1, (5, 3))
    w = rng.normal(0, 0.05, (5, 3))
    rb, vb, qb = strapdown_step(r, v, q, f, w, 0.05)
    for i in range(5):
        ri, vi, qi = strapdown_step(r[i], v[i], q[i], f[i], w[i], 0.05)
        np.testing.assert_array_equal(rb[i], ri)
        np.testing.assert_array_equal(vb[i], vi)
        np.testing.assert_array_equal(qb[i], qi)
    # A constant rate turns the attitude by exactly w dt about the body axis.
    _, _, q1 = strapdown_step(r[0], v[0], q[0], f[0], w[0], 0.05)
    _same_rotation(q1, quat_multiply(q[0], rotvec_to_quat(w[0] * 0.05)), atol=1e-15)


def _static(n: int, rate: float) -> tuple[np.ndarray, ...]:
    t = np.arange(n) / rate
    r = np.tile([10.0, -20.0, 0.0], (n, 1))
    v = np.zeros((n, 3))
    q = np.tile(rotvec_to_quat([0.1, 0.2, 0.3]), (n, 1))
    return t, r, v, q


def _variance_within_chi2(samples: np.ndarray, sigma: float, prob: float = 0.999) -> None:
    """Assert the sample variance about a known zero mean is within the two-sided chi-square region."""
    k = samples.size
    ratio = np.sum(samples**2) / (k * sigma**2)
    lo, hi = chi2.ppf(0.5 * (1 - prob), k) / k, chi2.ppf(0.5 * (1 + prob), k) / k
    assert lo < ratio < hi, (ratio, lo, hi)


def test_white_noise_has_the_density_of_the_spec() -> None:
    # Sum of squares of n independent N(0, s^2) samples over s^2 is chi-square with n dof.
    rate = 50.0
    spec = ImuSpec(rate, 5e-4, 2e-5, 0.0, 0.0, 0.0, 0.0)
    t, r, v, q = _static(20001, rate)
    f_clean, w_clean, _ = simulate_imu(t, r, v, q, _noise_free(rate), np.random.default_rng(5))
    f_m, w_m, _ = simulate_imu(t, r, v, q, spec, np.random.default_rng(5))
    # A density N gives a step-mean variance N^2 / dt = N^2 * rate.
    _variance_within_chi2(f_m - f_clean, 5e-4 * math.sqrt(rate))
    _variance_within_chi2(w_m - w_clean, 2e-5 * math.sqrt(rate))


def test_bias_random_walk_and_turn_on_bias_statistics() -> None:
    rate = 20.0
    spec = ImuSpec(rate, 0.0, 0.0, 3e-3, 5e-6, 1e-5, 2e-8)
    t, r, v, q = _static(4001, rate)
    f_clean, w_clean, _ = simulate_imu(t, r, v, q, _noise_free(rate), np.random.default_rng(6))
    f_m, w_m, b = simulate_imu(t, r, v, q, spec, np.random.default_rng(6))
    # Without white noise, the measurement error is the bias itself.
    np.testing.assert_allclose(f_m - f_clean, b.accel_m_s2, atol=1e-15)
    np.testing.assert_allclose(w_m - w_clean, b.gyro_rad_s, atol=1e-15)
    # Random-walk increments have variance K^2 dt.
    _variance_within_chi2(np.diff(b.accel_m_s2, axis=0), 1e-5 / math.sqrt(rate))
    _variance_within_chi2(np.diff(b.gyro_rad_s, axis=0), 2e-8 / math.sqrt(rate))
    # Turn-on biases over many independent runs have the spec's sigma.
    t2, r2, v2, q2 = _static(2, rate)
    rng = np.random.default_rng(8)
    b0 = np.array([simulate_imu(t2, r2, v2, q2, spec, rng)[2].accel_m_s2[0] for _ in range(1000)])
    _variance_within_chi2(b0, 3e-3)


def test_simulate_imu_rejects_bad_input() -> None:
    t, r, v, q = _static(11, 50.0)
    spec = ImuSpec.default(50.0)
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="t_s"):
        simulate_imu(t * 1.01, r, v, q, spec, rng)  # wrong sample spacing for rate_hz
    with pytest.raises(InputError, match="r_l"):
        simulate_imu(t, r[:-1], v, q, spec, rng)
    with pytest.raises(InputError, match="q_lb"):
        simulate_imu(t, r, v, 2.0 * q, spec, rng)
    with pytest.raises(InputError, match="rng"):
        simulate_imu(t, r, v, q, spec, 0)
    with pytest.raises(InputError, match="dt_s"):
        strapdown_step(r[0], v[0], q[0], r[0], r[0], 0.0)
