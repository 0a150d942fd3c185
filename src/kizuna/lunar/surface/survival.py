"""Lunar-night survival: the heater and hibernation energy a lander or rover needs through the longest
darkness at a site, with the ground temperature from the regolith model of :mod:`.thermal`, and whether
its battery holds out."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from kizuna.errors import InputError
from kizuna.lunar.surface.thermal import (
    DEEP_SPACE_K,
    SOLAR_CONSTANT_W_M2,
    STEFAN_BOLTZMANN,
    RegolithModel,
    _check_positive,
    _series,
    regolith_temperature,
)

__all__ = ["NightSurvival", "SurvivalEquipment", "night_survival"]


@dataclass(frozen=True)
class SurvivalEquipment:
    """Thermal/electrical model of a lander or rover in hibernation through the lunar night.

    Simple steady model (documented on purpose, for sizing): the warm enclosure at
    ``min_internal_temperature_k`` radiates from ``radiator_area_m2`` with ``emissivity`` to a sink made
    of the regolith surface, filling the fraction ``view_factor_ground`` of its view (at the surface
    temperature of the site), and deep space (3 K) filling the rest. Heaters replace that loss, so the
    heater electrical power is ``emissivity sigma A (T_in^4 - T_env^4) / heater_efficiency`` with
    ``T_env^4 = F T_ground^4 + (1 - F) T_space^4`` (zero when the sink is warmer than ``T_in``).
    Conduction through legs/wheels, insulation leaks and the heat of the hibernation electronics are not
    modelled (the last is conservative). The hibernation electrical load ``hibernation_load_w`` adds to it,
    and the battery may deliver ``battery_capacity_wh * depth_of_discharge``.
    """

    radiator_area_m2: float
    emissivity: float
    min_internal_temperature_k: float
    heater_efficiency: float
    hibernation_load_w: float
    battery_capacity_wh: float
    depth_of_discharge: float
    view_factor_ground: float = 0.5

    def __post_init__(self) -> None:
        _check_positive("SurvivalEquipment.radiator_area_m2", self.radiator_area_m2)
        _check_positive("SurvivalEquipment.min_internal_temperature_k", self.min_internal_temperature_k)
        for name in ("emissivity", "heater_efficiency", "depth_of_discharge"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and 0.0 < value <= 1.0):
                raise InputError(f"SurvivalEquipment.{name}: expected 0 < value <= 1, got {value!r}")
        for name in ("hibernation_load_w", "battery_capacity_wh"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0.0):
                raise InputError(f"SurvivalEquipment.{name}: expected a finite number >= 0, got {value!r}")
        f = self.view_factor_ground
        if not (isinstance(f, int | float) and math.isfinite(f) and 0.0 <= f <= 1.0):
            raise InputError(f"SurvivalEquipment.view_factor_ground: expected 0 <= value <= 1, got {f!r}")

    def heater_power_w(self, ground_temperature_k: ArrayLike) -> NDArray[np.float64]:
        """Heater electrical power (W) needed at the given regolith surface temperature(s) (K)."""
        tg = np.asarray(ground_temperature_k, dtype=float)
        f = self.view_factor_ground
        sink4 = f * tg**4 + (1.0 - f) * DEEP_SPACE_K**4
        loss = (
            self.emissivity
            * STEFAN_BOLTZMANN
            * self.radiator_area_m2
            * (self.min_internal_temperature_k**4 - sink4)
        )
        return np.maximum(loss, 0.0) / self.heater_efficiency


@dataclass(frozen=True)
class NightSurvival:
    """Energy needed through the longest darkness of a series and whether the battery covers it (h, Wh, K)."""

    longest_darkness_h: float
    darkness_start_index: int
    heater_energy_wh: float
    hibernation_energy_wh: float
    total_energy_wh: float
    usable_battery_wh: float
    survives: bool
    margin_wh: float
    mean_ground_temperature_k: float
    min_ground_temperature_k: float


def _longest_run(dark: NDArray[np.bool_], periodic: bool) -> tuple[int, int]:
    """(start index, length) of the longest run of True; wraps around the end when periodic."""
    n = dark.size
    if not dark.any():
        return 0, 0
    if dark.all():
        return 0, n
    d = np.concatenate(([False], dark, [False])).astype(np.int8)
    starts = np.flatnonzero(np.diff(d) == 1)
    ends = np.flatnonzero(np.diff(d) == -1)
    lengths = ends - starts
    if periodic and dark[0] and dark[-1]:
        # Join the run at the end with the run at the start.
        lengths = lengths.copy()
        lengths[-1] += lengths[0]
        lengths[0] = 0
    k = int(np.argmax(lengths))
    return int(starts[k]), int(lengths[k])


def night_survival(
    sun_visible_fraction: ArrayLike,
    dt_s: float,
    equipment: SurvivalEquipment,
    *,
    sun_elevation_rad: ArrayLike | None = None,
    ground_temperature_k: ArrayLike | None = None,
    model: RegolithModel | None = None,
    solar_flux_w_m2: float = SOLAR_CONSTANT_W_M2,
    background_w_m2: float = 0.0,
    dark_fraction: float = 0.0,
    periodic: bool = False,
) -> NightSurvival:
    """Heater and battery energy (Wh) to survive the longest darkness (h) of a site's sun-visibility series.

    Darkness is where ``sun_visible_fraction`` (0-1, the visible fraction of the solar disc, one value
    per ``dt_s`` seconds) is <= ``dark_fraction``; ``periodic=True`` joins a darkness that wraps around
    the end of the series. The ground temperature is either given (``ground_temperature_k``, K) or
    computed with :func:`regolith_temperature` from the flux ``solar_flux_w_m2 * fraction * sin(elev)``
    with ``sun_elevation_rad`` (the series is also used to spin the column up).
    """
    frac = _series("sun_visible_fraction", sun_visible_fraction, lo=0.0, hi=1.0)
    _check_positive("dt_s", dt_s)
    if not isinstance(equipment, SurvivalEquipment):
        raise InputError(f"equipment: expected a SurvivalEquipment, got {type(equipment).__name__}")
    if not (math.isfinite(dark_fraction) and 0.0 <= dark_fraction < 1.0):
        raise InputError(f"dark_fraction: expected 0 <= value < 1, got {dark_fraction!r}")
    if (sun_elevation_rad is None) == (ground_temperature_k is None):
        raise InputError("sun_elevation_rad / ground_temperature_k: expected exactly one of the two")
    if ground_temperature_k is not None:
        tg = _series("ground_temperature_k", ground_temperature_k, lo=0.0)
        if tg.shape != frac.shape:
            raise InputError(
                f"ground_temperature_k: expected {frac.size} values (as sun_visible_fraction), got {tg.size}"
            )
    else:
        elev = _series("sun_elevation_rad", sun_elevation_rad, lo=-0.5 * math.pi, hi=0.5 * math.pi)
        if elev.shape != frac.shape:
            raise InputError(
                f"sun_elevation_rad: expected {frac.size} values (as sun_visible_fraction), got {elev.size}"
            )
        if not (math.isfinite(solar_flux_w_m2) and solar_flux_w_m2 >= 0.0):
            raise InputError(f"solar_flux_w_m2: expected a finite number >= 0, got {solar_flux_w_m2!r}")
        flux = solar_flux_w_m2 * frac * np.maximum(np.sin(elev), 0.0)
        thermal = regolith_temperature(
            flux, dt_s, 0.5 * math.pi - np.maximum(elev, 0.0), model=model, background_w_m2=background_w_m2
        )
        tg = thermal.surface_k

    start, length = _longest_run(frac <= dark_fraction, periodic)
    usable = equipment.battery_capacity_wh * equipment.depth_of_discharge
    if length == 0:
        return NightSurvival(0.0, -1, 0.0, 0.0, 0.0, usable, True, usable, math.nan, math.nan)
    sel = (start + np.arange(length)) % frac.size
    ground = tg[sel]
    hours = length * dt_s / 3600.0
    heater_wh = float(np.sum(equipment.heater_power_w(ground)) * dt_s / 3600.0)
    hib_wh = equipment.hibernation_load_w * hours
    total = heater_wh + hib_wh
    return NightSurvival(
        longest_darkness_h=hours,
        darkness_start_index=start,
        heater_energy_wh=heater_wh,
        hibernation_energy_wh=hib_wh,
        total_energy_wh=total,
        usable_battery_wh=usable,
        survives=bool(total <= usable),
        margin_wh=usable - total,
        mean_ground_temperature_k=float(ground.mean()),
        min_ground_temperature_k=float(ground.min()),
    )
