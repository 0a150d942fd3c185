"""Carrier-smoothed code (Hatch filter): its noise against the recursion's analytic variance, its restarts,
option checks, and the accuracy it brings to single-point positioning on the Japan file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from kizuna.core.constants import SPEED_OF_LIGHT_M_S
from kizuna.errors import InputError
from kizuna.gnss.rinex_nav import read_nav
from kizuna.gnss.rinex_obs import read_obs
from kizuna.gnss.smoothing import MAX_JUMP_M, band_frequency_hz, hatch_filter
from kizuna.gnss.spp import SppOptions, accuracy, solve_spp

# Surveyed antenna position of SEPT078M (cssrlib-data samples test_rtk.py xyz_ref; reference_stations.csv).
TRUTH = np.array([-3962108.6730, 3381309.5740, 3668678.6380])
TRUTH_TEXT = "-3962108.6730,3381309.5740,3668678.6380"
LAMBDA_L1_M = SPEED_OF_LIGHT_M_S / 1_575.42e6


def _synthetic(n_epochs: int, n_sats: int, sigma_m: float, seed: int = 1):
    """Return (t, code, phase_m, range): code = range + white noise, carrier = range + an ambiguity."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_epochs, dtype=float)
    rho = 2.2e7 + 1.0e5 * np.arange(n_sats)[None, :] + 600.0 * t[:, None] - 0.05 * t[:, None] ** 2
    phase = (rho / LAMBDA_L1_M + 1_234_567.25) * LAMBDA_L1_M  # cycles (with an ambiguity) times lambda
    return t, rho + rng.normal(0.0, sigma_m, rho.shape), phase, rho


@pytest.mark.parametrize("window", [4, 20])
def test_noise_follows_the_recursion_variance(window):
    # Analytic: with an exact carrier the error e(k) = P_s(k) - range(k) obeys e(k) = eps(k)/n + (n-1)/n
    # e(k-1). While the window grows (n = k + 1 <= N) P_s is the plain mean of n codes: var = sigma^2 / n.
    # With n = N fixed, a = (N-1)/N, the stationary variance V solves V = sigma^2/N^2 + a^2 V, so
    # V = sigma^2 / (N^2 (1 - a)(1 + a)) = sigma^2 / (2N - 1): below sigma^2 / N (the exponential filter
    # remembers about 2N - 1 epochs), so the std is about sigma / sqrt(2N) rather than sigma / sqrt(N).
    sigma, n_sats = 1.0, 20_000
    a = (window - 1) / window
    settle = window + math.ceil(math.log(1e-4) / (2.0 * math.log(a)))  # transient below 1e-4 of V
    n_epochs = settle + 10 * window
    t, code, phase, rho = _synthetic(n_epochs, n_sats, sigma)
    out, resets = hatch_filter(code, phase, t, smoothing_s=float(window), interval_s=1.0)
    assert (resets == 0).all()
    err = out - rho
    # At n = N: the mean of N independent codes; 20 000 satellites give the variance to 1 % (1 sigma).
    assert np.var(err[window - 1]) == pytest.approx(sigma**2 / window, rel=0.05)
    # Steady state, pooled over 10 N epochs: the AR(1) correlation leaves about
    # n (1 - a^2) / (1 + a^2) > 2e5 independent samples, a 0.3 % (1 sigma) error on the variance.
    steady = err[settle:]
    assert np.mean(steady**2) == pytest.approx(sigma**2 / (2 * window - 1), rel=0.015)
    assert abs(steady.mean()) < 0.005  # unbiased: the carrier's ambiguity cancels
    # Without smoothing (window 1) the codes come back unchanged.
    raw, _ = hatch_filter(code, phase, t, smoothing_s=0.0, interval_s=1.0)
    np.testing.assert_array_equal(raw, code)


def _events(n_epochs=200, k=120):
    """Eight satellites, each with one event at epoch k (or none); code noise 0.3 m, window 10 epochs."""
    t, code, phase, _ = _synthetic(n_epochs, 8, 0.3, seed=2)
    lli = np.zeros(code.shape, dtype=np.int8)
    code_id = np.zeros(code.shape, dtype=np.int64)
    lli[k, 0] = 1  # loss of lock (bit 0): restart
    lli[k, 1] = 2  # bit 1 only (half-cycle ambiguity): no restart
    slip = 106  # 106 L1 cycles = 20.2 m, twice MAX_JUMP_M, with no loss-of-lock flag
    phase[k:, 2] += slip * LAMBDA_L1_M
    phase[k:, 3] += 26 * LAMBDA_L1_M  # 4.9 m, under the threshold: not detected
    code_id[k:, 4] = 1  # another code picked from epoch k
    phase[k, 5] = np.nan  # no phase at epoch k: raw code there, restart at k + 1
    code[k, 6] = np.nan  # no code at epoch k: nothing there, restart at k + 1
    return t, code, phase, lli, code_id


def test_restarts_on_loss_of_lock_slip_code_change_and_missing_data():
    k = 120
    t, code, phase, lli, code_id = _events(k=k)
    assert 106 * LAMBDA_L1_M == pytest.approx(20.17, abs=0.01) and MAX_JUMP_M > 26 * LAMBDA_L1_M
    out, resets = hatch_filter(code, phase, t, 10.0, 1.0, lli=lli, code_id=code_id)
    np.testing.assert_array_equal(resets, [1, 0, 1, 0, 1, 1, 1, 0])
    # A restart takes the raw pseudorange (n = 1); a running filter does not.
    for j in (0, 2, 4, 5):
        assert out[k, j] == code[k, j]
    for j in (1, 3, 7):
        assert out[k, j] != code[k, j]
    assert np.isnan(out[k, 6]) and out[k + 1, 6] == code[k + 1, 6] and out[k + 1, 5] == code[k + 1, 5]
    # After a restart the window grows again: P_s(k+1) = P(k+1)/2 + (P_s(k) + L(k+1) - L(k))/2.
    j = 2
    expect = code[k + 1, j] / 2 + (out[k, j] + phase[k + 1, j] - phase[k, j]) / 2
    assert out[k + 1, j] == pytest.approx(expect, abs=1e-6)
    # The undetected 4.9 m slip biases the smoothed range by up to the slip, fading over the window.
    # Analytic: the slip d enters once, as (N-1)/N d, then decays by (N-1)/N per epoch.
    _, code0, phase0, _ = _synthetic(200, 8, 0.3, seed=2)
    clean, _ = hatch_filter(code0, phase0, t, 10.0, 1.0)
    bias = out[:, 3] - clean[:, 3]
    assert bias[k - 1] == 0.0
    assert bias[k] == pytest.approx(26 * LAMBDA_L1_M * 0.9, abs=1e-6)
    assert bias[k + 30] == pytest.approx(26 * LAMBDA_L1_M * 0.9**31, abs=1e-6)


def test_restarts_on_a_time_gap_not_on_jitter():
    t, code, phase, _, _ = _events()
    gap, jitter = t.copy(), t.copy()
    gap[120:] += 1.0  # 2 s between epochs 119 and 120: more than 1.5 intervals
    jitter[120:] += 0.4  # 1.4 s: under 1.5 intervals
    out, resets = hatch_filter(code, phase, gap, 10.0, 1.0)
    assert (resets == 1).all()  # satellites 5 and 6 (no phase, no code at 120) restart at 121 instead
    assert out[120, 0] == code[120, 0] and out[119, 0] != code[119, 0]
    _, resets = hatch_filter(code, phase, jitter, 10.0, 1.0)
    assert (resets == [0, 0, 1, 0, 0, 1, 1, 0]).all()  # only the 20 m slip and the missing data


def test_band_frequencies():
    # Phase of C1C is L1C on 1575.42 MHz; BeiDou C2I on B1I 1561.098 MHz, NavIC C5A on L5 1176.45 MHz,
    # GLONASS G1 1602 + k 0.5625 MHz and G2 1246 + k 0.4375 MHz (GLONASS ICD 5.1, 3.3.1.1).
    assert band_frequency_hz("G05", "C1C") == 1_575.42e6
    assert band_frequency_hz("C11", "C2I") == 1_561.098e6
    assert band_frequency_hz("I02", "C5A") == 1_176.45e6
    f1 = {"R07": 1_602.0e6 + 5 * 0.5625e6}
    assert band_frequency_hz("R07", "C1C", f1) == f1["R07"]
    assert band_frequency_hz("R07", "C2C", f1) == pytest.approx(1_246.0e6 + 5 * 0.4375e6, abs=1e-3)
    assert math.isnan(band_frequency_hz("R08", "C1C", f1))


@pytest.mark.parametrize("value", [-1.0, 0.5, 3600.5, float("nan"), float("inf")])
def test_bad_smoothing_option(value):
    with pytest.raises(InputError, match="smoothing_s"):
        SppOptions(smoothing_s=value)


def test_accepted_smoothing_options():
    for value in (0.0, 1.0, 100.0, 3600.0):
        assert SppOptions(smoothing_s=value).smoothing_s == value


def test_bad_smooth_s_on_the_command_line(capsys, tmp_path):
    from kizuna.cli import main

    for cmd in (["spp", "a.obs", "b.nav"], ["spp-many", "a.obs", "--nav", "b.nav"]):
        with pytest.raises(SystemExit) as exc:
            main(["gnss", *cmd, "--out", str(tmp_path / "o"), "--smooth-s", "7200"])
        assert exc.value.code == 2
        assert "--smooth-s 7200" in capsys.readouterr().err


@pytest.fixture(scope="module")
def japan(shared_data):
    d = shared_data / "gnss" / "japan_cssrlib_2021078"
    return read_obs(d / "SEPT078M.21O", cache=False), read_nav(d / "SEPT078M.21P")


@pytest.mark.parametrize("rtklib", [False, True])
def test_smoothing_improves_spp_on_the_japan_file(japan, rtklib):
    obs, nav = japan
    # Physical expectation: the Septentrio receiver's L1 code noise and multipath (decimetres) average down
    # over 100 s of carrier, while ionospheric divergence over 15 minutes of a quiet March day is
    # centimetres; so the 95 % errors against the surveyed antenna shrink.
    off = solve_spp(obs, nav, SppOptions(systems="GEJ", rtklib_compatible=rtklib))
    on = solve_spp(obs, nav, SppOptions(systems="GEJ", rtklib_compatible=rtklib, smoothing_s=100.0))
    a_off, a_on = accuracy(off, TRUTH), accuracy(on, TRUTH)
    assert on.solved.all() and off.smoothing_resets is None
    assert a_on["h95_m"] < a_off["h95_m"] and a_on["v95_m"] < a_off["v95_m"]
    # The file's only loss-of-lock flags (G02 and G12 on L1C) mark each one's first phase epoch, and nothing
    # is missing mid-pass: no filter restarts.
    assert on.smoothing_resets.shape == on.sats.shape and (on.smoothing_resets == 0).all()


def test_smooth_s_reaches_the_solution(japan, shared_data, tmp_path, capsys, monkeypatch):
    from kizuna.cli import main

    monkeypatch.setenv("KIZUNA_CACHE_DIR", str(tmp_path / "cache"))
    obs, nav = japan
    d = shared_data / "gnss" / "japan_cssrlib_2021078"
    out = tmp_path / "spp"
    args = ["gnss", "spp", d / "SEPT078M.21O", d / "SEPT078M.21P", "--systems", "GEJ", "--smooth-s", "100"]
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in [*args, f"--truth={TRUTH_TEXT}", "--out", out]])
    assert exc.value.code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    lib = accuracy(solve_spp(obs, nav, SppOptions(systems="GEJ", smoothing_s=100.0)), TRUTH)
    raw = accuracy(solve_spp(obs, nav, SppOptions(systems="GEJ")), TRUTH)
    assert summary["h95_m"] == pytest.approx(lib["h95_m"], abs=1e-6) and lib["h95_m"] < raw["h95_m"]
