"""Regolith thermal model, night survival and ice stability against analytic and published values.

Sources of the expected numbers:

* Analytic: steady conduction with constant k carries the geothermal flux q with a linear profile of
  slope q / k; a surface in steady state radiates what it absorbs plus q,
  ``eps sigma T^4 = (1 - A) F + q``; a periodic column loses on average exactly q through its surface.
* Hayne et al. (2017), JGR Planets 122, 2371, Table A2 (the validation constraints heat1d encodes in
  ``python/heat1d/validation.py``): equator peak noon 385 +- 5 K, midnight 101 +- 5 K, minimum night
  95 +- 5 K; Apollo 15 (26 N, mare) diurnal-mean surface 211 +- 5 K and 252 +- 5 K at 0.83 m depth
  (Langseth et al. 1976 heat-flow probe); Apollo 17 (20 N, mare) surface mean 216 +- 5 K.
* Diviner equatorial nighttime regolith temperatures vs hours past noon, digitised from Hayne et al.
  (2017) in heat1d ``data/diviner_regtemp_lat00.csv``.
* Paige et al. (2010), Science 330, 479: Diviner temperatures in permanently shadowed regions of about
  25-70 K, and the 110 K ice-stability threshold (Schorghofer & Taylor 2007, JGR 112, E02010).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from kizuna.errors import InputError
from kizuna.lunar.surface.survival import SurvivalEquipment, night_survival
from kizuna.lunar.surface.thermal import (
    DEEP_SPACE_K,
    STEFAN_BOLTZMANN,
    SYNODIC_DAY_S,
    RegolithModel,
    diurnal_insolation,
    ice_stable_depth,
    regolith_grid,
    regolith_temperature,
)

SIGMA = 5.670374419e-8  # CODATA 2018


@pytest.fixture(scope="module")
def equator():
    ins = diurnal_insolation(0.0, steps_per_day=720)
    return ins, regolith_temperature(ins.flux_w_m2, ins.dt_s, ins.incidence_rad, output_depths_m=[0.0, 0.5])


# ------------------------------------------------------------------------------------------- analytic


def test_constant_conductivity_steady_state_is_linear_with_slope_q_over_k():
    # chi = 0, ks = kd, constant density: k is constant, so steady conduction of the geothermal flux q
    # gives T(z) = T(0) + q z / k, and the surface radiates q: eps sigma T(0)^4 = (1 - A) F + q.
    k, q, f = 2.0e-3, 0.03, 50.0
    m = RegolithModel(
        chi=0.0, k_surface_w_m_k=k, k_deep_w_m_k=k, rho_surface_kg_m3=1500.0, rho_deep_kg_m3=1500.0,
        geothermal_flux_w_m2=q, albedo_a=0.0, albedo_b=0.0,
    )  # fmt: skip
    r = regolith_temperature(np.full(50, f), 86_400.0, model=m, spinup_tol_k=1e-7)
    assert r.spinup_converged
    z, t = r.depths_m, r.final_profile_k
    assert z[-1] >= 1.5  # covers the drill depth
    np.testing.assert_allclose(t - t[0], q * z / k, atol=1e-5)
    t_surface = (((1.0 - 0.12) * f + q) / (0.95 * SIGMA)) ** 0.25
    assert r.surface_k[-1] == pytest.approx(t_surface, abs=1e-5)
    # The check can fail: without the geothermal flux the profile would be flat.
    assert t[-1] - t[0] > 40.0


def test_constant_insolation_spun_up_surface_is_radiative_equilibrium_plus_geothermal():
    # Standard (non-linear) model: at steady state eps sigma T^4 = (1 - A0) F + q exactly.
    m = RegolithModel()
    f = 1361.0
    r = regolith_temperature(np.full(30, f), 86_400.0, np.zeros(30), model=m, spinup_tol_k=1e-6)
    expected = (((1.0 - 0.12) * f + 0.018) / (0.95 * SIGMA)) ** 0.25
    assert r.surface_k[-1] == pytest.approx(expected, abs=1e-4)
    # and the interior carries q upward with the temperature-dependent k: k(T) dT/dz = q everywhere.
    z, t = r.depths_m, r.final_profile_k
    k_face = 0.5 * (m.conductivity(z[:-1], t[:-1]) + m.conductivity(z[1:], t[1:]))
    np.testing.assert_allclose(k_face * np.diff(t) / np.diff(z), 0.018, rtol=1e-4)


def test_constant_insolation_long_run_tends_to_radiative_equilibrium_from_below():
    # From a cold start (200 K) without spin-up, after ten years of constant sun the surface is within a
    # fraction of a kelvin of ((1 - A) F / (eps sigma))^(1/4), just below it: heat still soaks downward.
    f = 1361.0
    t_rad = ((1.0 - 0.12) * f / (0.95 * SIGMA)) ** 0.25
    r = regolith_temperature(np.full(3653, f), 86_400.0, spinup=False, initial_temperature_k=200.0)
    assert t_rad - 0.5 < r.surface_k[-1] < t_rad
    assert r.surface_k[0] < r.surface_k[-1]  # approaches from below


def test_periodic_cycle_loses_the_geothermal_flux_and_closes_the_energy_budget(equator):
    _, r = equator
    assert r.spinup_converged
    # Over one periodic cycle the ground neither gains nor loses heat: mean(emitted - absorbed) = q.
    assert np.mean(r.emitted_w_m2 - r.absorbed_w_m2) == pytest.approx(0.018, abs=2e-4)
    # The conservative scheme closes the budget step by step: integral of net flux = enthalpy change.
    net = np.sum(r.absorbed_w_m2 - r.emitted_w_m2 + r.geothermal_flux_w_m2) * r.dt_s
    scale = np.sum(r.absorbed_w_m2) * r.dt_s
    assert abs(net - r.stored_energy_change_j_m2) < 1e-7 * scale


def test_unconverged_spinup_is_flagged_and_warned():
    ins = diurnal_insolation(0.0, steps_per_day=48)
    with pytest.warns(RuntimeWarning, match="spin-up did not converge"):
        r = regolith_temperature(ins.flux_w_m2, ins.dt_s, ins.incidence_rad, max_spinup_cycles=1)
    assert not r.spinup_converged and r.spinup_cycles == 1 and r.spinup_residual_k > 1e-3


# ------------------------------------------------------------------------------------------- published


def test_equator_matches_hayne_2017_table_a2(equator):
    ins, r = equator
    lt = ins.local_time_h
    night = (lt > 6.0) & (lt < 18.0)
    assert r.surface_k.max() == pytest.approx(385.0, abs=5.0)  # peak noon
    assert r.surface_k[np.argmin(np.abs(lt - 12.0))] == pytest.approx(101.0, abs=5.0)  # midnight
    assert r.surface_k[night].min() == pytest.approx(95.0, abs=5.0)  # minimum night (pre-dawn)
    # Peak at noon, minimum just before sunrise.
    assert lt[np.argmax(r.surface_k)] == pytest.approx(0.0, abs=0.1)
    assert 15.0 < lt[np.argmin(r.surface_k)] <= 18.0
    # Output depth 0 is the surface node.
    np.testing.assert_allclose(r.depth_series_k[:, 0], r.surface_k)


def test_equator_night_cooling_matches_diviner():
    # Diviner equatorial nighttime temperatures (hours past noon, K), heat1d data/diviner_regtemp_lat00.csv.
    diviner = [
        (8.483, 107.50), (9.478, 104.60), (10.460, 102.39), (11.507, 100.38), (12.481, 98.95),
        (13.481, 97.67), (14.494, 96.31), (15.485, 95.09), (16.487, 94.13),
    ]  # fmt: skip
    ins = diurnal_insolation(0.0, steps_per_day=720)
    r = regolith_temperature(ins.flux_w_m2, ins.dt_s, ins.incidence_rad)
    for hours, t_obs in diviner:
        assert np.interp(hours, ins.local_time_h, r.surface_k) == pytest.approx(t_obs, abs=3.0), hours


def test_apollo_sites_match_hayne_2017_table_a2():
    # Mare albedo 0.06 with the incidence coefficients scaled by 0.06 / 0.12 (heat1d validation choice).
    mare = RegolithModel(albedo=0.06, albedo_a=0.03, albedo_b=0.125)
    ins15 = diurnal_insolation(26.0, steps_per_day=720)
    r15 = regolith_temperature(ins15.flux_w_m2, ins15.dt_s, ins15.incidence_rad, model=mare)
    assert r15.surface_k.mean() == pytest.approx(211.0, abs=5.0)
    assert r15.at_depth(0.83, "mean") == pytest.approx(252.0, abs=5.0)
    ins17 = diurnal_insolation(20.0, steps_per_day=720)
    r17 = regolith_temperature(ins17.flux_w_m2, ins17.dt_s, ins17.incidence_rad, model=mare)
    assert r17.surface_k.mean() == pytest.approx(216.0, abs=5.0)


@pytest.mark.parametrize("background", [0.1, 1.0])
def test_psr_with_background_flux_is_25_to_70_k_and_ice_stable_at_surface(background):
    r = regolith_temperature(np.zeros(60), 86_400.0, background_w_m2=background)
    expected = ((background + 0.018) / (0.95 * SIGMA)) ** 0.25  # steady radiative balance
    assert r.surface_k[-1] == pytest.approx(expected, abs=0.01)
    assert 25.0 <= r.surface_k.max() <= 70.0  # Paige et al. 2010 PSR range
    ice = ice_stable_depth(r.depths_m, r.max_k)
    assert ice.depth_m == 0.0 and ice.within_drill_depth


def test_year_of_hourly_steps_runs_well_under_a_second():
    n = int(365.25 * 24)
    t = np.arange(n) * 3600.0
    cos_i = math.cos(math.radians(85.0)) * np.cos(2.0 * math.pi * t / SYNODIC_DAY_S)
    flux, inc = 1361.0 * np.maximum(cos_i, 0.0), np.arccos(cos_i)
    regolith_temperature(flux[:24], 3600.0, inc[:24], spinup=False)  # compile outside the timing
    start = time.perf_counter()
    r = regolith_temperature(flux, 3600.0, inc, spinup=False, initial_temperature_k=150.0)
    assert time.perf_counter() - start < 1.0
    assert r.surface_k.shape == (n,) and np.all(np.isfinite(r.surface_k))


def test_grid_follows_heat1d_skin_depth_rule():
    # Hayne et al. 2017 Eqs. A31-A33: first layer = skin depth / 10 with the surface diffusivity
    # ks / (rho_s cp0), cp0 = 600 J/kg/K, over one synodic day; growth factor 1 + 1/5.
    z = regolith_grid()
    skin = math.sqrt(7.4e-4 / (1100.0 * 600.0) * SYNODIC_DAY_S / math.pi)
    assert z[1] == pytest.approx(skin / 10.0, rel=1e-12)
    assert (z[2] - z[1]) / z[1] == pytest.approx(1.2, rel=1e-12)
    assert z[-1] >= 1.5


# ---------------------------------------------------------------------------------------- night survival


def _equipment(**kw):
    base = dict(
        radiator_area_m2=2.0, emissivity=0.8, min_internal_temperature_k=253.0, heater_efficiency=0.9,
        hibernation_load_w=15.0, battery_capacity_wh=10_000.0, depth_of_discharge=0.8, view_factor_ground=1.0,
    )  # fmt: skip
    base.update(kw)
    return SurvivalEquipment(**base)


def test_night_energy_equals_analytic_value_for_constant_environment():
    dt = 3600.0
    frac = np.concatenate([np.ones(50), np.zeros(300), np.ones(20), np.zeros(100)])
    eq = _equipment()
    res = night_survival(frac, dt, eq, ground_temperature_k=np.full(frac.size, 100.0))
    power = 0.8 * SIGMA * 2.0 * (253.0**4 - 100.0**4) / 0.9  # W, analytic
    assert res.longest_darkness_h == 300.0
    assert res.darkness_start_index == 50
    assert res.heater_energy_wh == pytest.approx(power * 300.0, rel=1e-12)
    assert res.total_energy_wh == pytest.approx((power + 15.0) * 300.0, rel=1e-12)
    assert res.margin_wh == pytest.approx(10_000.0 * 0.8 - res.total_energy_wh, rel=1e-12)
    # Half the view on deep space at 3 K: T_env^4 = 0.5 T_g^4 + 0.5 (3 K)^4.
    half = night_survival(
        frac, dt, _equipment(view_factor_ground=0.5), ground_temperature_k=np.full(470, 100.0)
    )
    p_half = 0.8 * SIGMA * 2.0 * (253.0**4 - 0.5 * 100.0**4 - 0.5 * DEEP_SPACE_K**4) / 0.9
    assert half.heater_energy_wh == pytest.approx(p_half * 300.0, rel=1e-12)


def test_battery_survival_flips_at_the_needed_capacity():
    frac = np.concatenate([np.ones(10), np.zeros(354), np.ones(10)])
    ground = np.full(frac.size, 95.0)
    need = night_survival(frac, 3600.0, _equipment(), ground_temperature_k=ground).total_energy_wh
    exact = need / 0.8  # capacity whose usable part equals the need
    assert night_survival(
        frac, 3600.0, _equipment(battery_capacity_wh=exact * 1.001), ground_temperature_k=ground
    ).survives
    low = night_survival(
        frac, 3600.0, _equipment(battery_capacity_wh=exact * 0.999), ground_temperature_k=ground
    )
    assert not low.survives and low.margin_wh < 0.0


def test_periodic_darkness_wraps_around():
    frac = np.concatenate([np.zeros(30), np.ones(40), np.zeros(50)])
    ground = np.full(frac.size, 100.0)
    assert night_survival(frac, 3600.0, _equipment(), ground_temperature_k=ground).longest_darkness_h == 50.0
    wrapped = night_survival(frac, 3600.0, _equipment(), ground_temperature_k=ground, periodic=True)
    assert wrapped.longest_darkness_h == 80.0 and wrapped.darkness_start_index == 70


def test_equatorial_night_from_the_thermal_model():
    # The lunar night at the equator lasts half a synodic day (354.4 h); the ground is 93-130 K then,
    # so the heater power lies between the analytic values for the warmest and coldest ground.
    ins = diurnal_insolation(0.0, steps_per_day=720)
    elev = 0.5 * math.pi - ins.incidence_rad
    frac = (elev > 0.0).astype(float)
    eq = _equipment()
    res = night_survival(frac, ins.dt_s, eq, sun_elevation_rad=elev, periodic=True)
    assert res.longest_darkness_h == pytest.approx(SYNODIC_DAY_S / 2.0 / 3600.0, abs=2.0 * ins.dt_s / 3600.0)
    assert res.min_ground_temperature_k == pytest.approx(95.0, abs=5.0)  # Hayne et al. 2017 Table A2
    hours = res.longest_darkness_h
    p_cold = float(eq.heater_power_w(res.min_ground_temperature_k))
    p_warm = float(eq.heater_power_w(res.mean_ground_temperature_k + 40.0))
    assert p_warm * hours < res.heater_energy_wh < p_cold * hours


# ----------------------------------------------------------------------------------------- ice stability


def test_ice_stable_depth_interpolates_the_110_k_crossing():
    z = np.array([0.0, 0.1, 0.2, 0.5, 1.0, 2.0])
    tmax = np.array([300.0, 200.0, 130.0, 100.0, 95.0, 98.0])
    ice = ice_stable_depth(z, tmax)
    assert ice.depth_m == pytest.approx(0.2 + 0.3 * (130.0 - 110.0) / (130.0 - 100.0), rel=1e-12)
    assert ice.within_drill_depth
    deep = ice_stable_depth(z, np.array([300.0, 200.0, 150.0, 130.0, 130.0, 100.0]))
    assert deep.depth_m == pytest.approx(1.0 + 1.0 * 20.0 / 30.0) and not deep.within_drill_depth
    # A warm bottom (geothermal gradient) leaves no stable depth in the column...
    warm_bottom = np.array([300.0, 200.0, 150.0, 100.0, 105.0, 111.0])
    none = ice_stable_depth(z, warm_bottom)
    assert math.isnan(none.depth_m) and not none.within_drill_depth
    # ...unless only the top metre is considered.
    top = ice_stable_depth(z, warm_bottom, max_depth_m=1.0)
    assert top.depth_m == pytest.approx(0.2 + 0.3 * 40.0 / 50.0) and top.within_drill_depth
    assert ice_stable_depth(z, np.full(6, 50.0)).depth_m == 0.0


def test_ice_stable_depth_of_a_modelled_polar_site_is_below_the_surface():
    # A flat site at 87 deg latitude (declination 0): its surface peaks above 110 K but the maximum
    # temperature drops below 110 K within centimetres, as in the ice-stability depth maps of Paige et al.
    # (2010, Fig. 4) where sunlit polar terrain holds stable ice at shallow depth.
    ins = diurnal_insolation(87.0, steps_per_day=360)
    r = regolith_temperature(ins.flux_w_m2, ins.dt_s, ins.incidence_rad)
    assert r.max_k[0] > 110.0
    ice = ice_stable_depth(r.depths_m, r.max_k)
    assert 0.0 < ice.depth_m < 0.5 and ice.within_drill_depth
    assert r.at_depth(ice.depth_m, "max") == pytest.approx(110.0, abs=0.5)


# ----------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call",
    [
        lambda: regolith_temperature([-1.0, 2.0], 3600.0),
        lambda: regolith_temperature([1.0, np.nan], 3600.0),
        lambda: regolith_temperature([], 3600.0),
        lambda: regolith_temperature([1.0, 2.0], 0.0),
        lambda: regolith_temperature([1.0, 2.0], 3600.0, [0.1]),
        lambda: regolith_temperature([1.0, 2.0], 3600.0, [0.1, 4.0]),
        lambda: regolith_temperature([1.0, 2.0], 3600.0, background_w_m2=-1.0),
        lambda: regolith_temperature([1.0, 2.0], 3600.0, output_depths_m=[10.0]),
        lambda: RegolithModel(emissivity=1.5),
        lambda: RegolithModel(h_m=0.0),
        lambda: RegolithModel(heat_capacity_coeffs=(1.0, 2.0)),
        lambda: diurnal_insolation(95.0),
        lambda: diurnal_insolation(0.0, steps_per_day=0),
        lambda: _equipment(heater_efficiency=0.0),
        lambda: _equipment(view_factor_ground=1.5),
        lambda: night_survival([0.0, 1.2], 3600.0, _equipment(), ground_temperature_k=[100.0, 100.0]),
        lambda: night_survival([0.0, 1.0], 3600.0, _equipment()),
        lambda: night_survival([0.0, 1.0], 3600.0, _equipment(), ground_temperature_k=[100.0]),
        lambda: ice_stable_depth([0.0, 0.0], [100.0, 100.0]),
        lambda: ice_stable_depth([0.0, 1.0], [100.0]),
    ],
)
def test_bad_input_raises_input_error(call):
    with pytest.raises(InputError):
        call()


def test_input_error_names_the_field():
    with pytest.raises(InputError, match="dt_s"):
        regolith_temperature([1.0], -5.0)
    with pytest.raises(InputError, match="incidence_rad"):
        regolith_temperature([1.0, 2.0], 3600.0, [0.1])
    assert STEFAN_BOLTZMANN == SIGMA
