"""Drill-site ranking on constructed maps with analytic answers.

Sources of truth:
- a shadowed floor that absorbs only a constant background flux F settles at the radiative balance
  T = ((F + Q_geo) / (emissivity sigma))^(1/4) (Stefan-Boltzmann; Q_geo = 0.018 W m^-2, emissivity 0.95
  as in Hayne et al. 2017), far below the 110 K ice-stability threshold (Schorghofer & Taylor 2007), so
  ice is stable at the surface of a permanently shadowed cell;
- on flat ground the least-time 8-connected route has the octile length dx (max + (sqrt(2) - 1) min) of
  the row/column offsets (analytic), and the route planner is kizuna.lunar.surface.traverse.plan_static;
- flat sunlit ground at 80 deg S holds no stable ice within the top metre or two (Paige et al. 2010,
  Science 330, 479, Fig. 4: outside shadowed terrain, ice stability depths within 2 m start poleward of
  about 85 deg), so only the shadowed cells are candidates there;
- the number of grid cells within 4 cells of a cell is Gauss's circle count N(4) = 49;
- a plane of slope beta facing the Sun's azimuth receives sunlight at incidence 90 deg - (el + beta).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from rasterio import Affine

from kizuna.core import ephemeris as eph
from kizuna.core.raster import Raster
from kizuna.errors import InputError
from kizuna.lunar.surface.drill import (
    DRILL_COLUMNS,
    cell_insolation,
    insolation_w_m2,
    rank_drill_sites,
)
from kizuna.lunar.surface.horizon import HorizonTable
from kizuna.lunar.surface.illumination import map_geometry, sky_azel, time_grid
from kizuna.lunar.surface.illumination_map import STAT_LAYERS, IlluminationMap
from kizuna.lunar.surface.sites import cell_latlon
from kizuna.lunar.surface.traverse import RoverModel, plan_static

R = 1_737_400.0
AU = 149_597_870_700.0
SIGMA = 5.670_374_419e-8
CRS = "+proj=stere +lat_0=-90 +lat_ts=-90 +lon_0=0 +R=1737400 +units=m +no_defs"
DX = 500.0
N = 21
BASE = (10, 10)
PSR_NEAR = (10, 13)  # 1.5 km east of the base: octile route 3 cells
PSR_SECOND = (13, 12)  # 1.80 km away: octile route (3 + (sqrt 2 - 1) 2) cells = 1.914 km
PSR_FAR = (10, 19)  # 4.5 km away: out of a 2 km reach
PSR_PILLAR = (8, 9)  # within reach, on top of a 1 km pillar: no drivable move reaches it
ROVER = RoverModel(speed_m_s=0.2, max_slope_deg=20.0)
# 80 deg S: rho = 2 R tan(5 deg) (Snyder 1987, eq. 21-33); the map's centre at longitude 180 (x = 0, y < 0)
Y_CENTRE = -2.0 * R * math.tan(math.radians(5.0))


def constructed_map(heights: np.ndarray | None = None, psr_cells=(PSR_NEAR, PSR_SECOND, PSR_FAR)):
    """A 21 x 21 map of 500 m cells around 80 deg S: flat horizons (0 deg) except at the PSR cells (30 deg).

    The Sun never rises above ~12 deg at 80 deg S, so a 30 deg horizon all round keeps a cell dark.
    """
    z = np.zeros((N, N)) if heights is None else heights
    dem = Raster(z, Affine(DX, 0.0, -N * DX / 2, 0.0, -DX, Y_CENTRE + N * DX / 2), CRS, "m")
    q = np.zeros((16, N, N), np.int16)
    psr = np.zeros((N, N), np.uint8)
    for r, c in psr_cells:
        q[:, r, c] = round(math.radians(30.0) / 5e-5)
        psr[r, c] = 1
    layers = {name: np.full((N, N), 0.5) for name in STAT_LAYERS}
    layers["sun_fraction"][psr == 1] = 0.0
    times = time_grid("2027-01-01", "2027-03-01", 6.0)
    table = HorizonTable(q, DX)
    return IlluminationMap(dem, psr != 255, layers, psr, table, (0, N, 0, N), times, 6.0, 0.0, {})


def base_latlon(imap: IlluminationMap) -> tuple[float, float]:
    lat, lon = cell_latlon(imap.dem, [BASE[0]], [BASE[1]])
    return float(lat[0]), float(lon[0])


def octile_m(a: tuple[int, int], b: tuple[int, int]) -> float:
    dr, dc = abs(a[0] - b[0]), abs(a[1] - b[1])
    return DX * (max(dr, dc) + (math.sqrt(2.0) - 1.0) * min(dr, dc))


@pytest.fixture(scope="module")
def flat_result():
    imap = constructed_map()
    lat, lon = base_latlon(imap)
    return imap, rank_drill_sites(imap, lat, lon, 2.0, ROVER)


def test_reachable_psr_ranks_first_and_out_of_reach_is_left_out(flat_result):
    imap, df = flat_result
    assert list(df.columns) == list(DRILL_COLUMNS)
    cells = list(zip(df["row"], df["col"], strict=True))
    assert cells == [PSR_NEAR, PSR_SECOND]  # the lit flat cells at 80 S are no candidates (Paige 2010)
    assert PSR_FAR not in cells
    assert df["psr"].all() and df["ice_within_drill"].all()
    np.testing.assert_array_equal(df["rank"], [1, 2])
    np.testing.assert_allclose(df["ice_depth_m"], 0.0)
    # shadowed floor: radiative balance with the background flux and the geothermal flux
    t_floor = ((0.5 + 0.018) / (0.95 * SIGMA)) ** 0.25
    np.testing.assert_allclose(df["max_surface_k"], t_floor, atol=0.05)
    assert np.all(df["max_k_at_drill_depth"] < 110.0)
    # 49 cells lie within 4 cells (2 km) of the base: Gauss's circle count N(4)
    assert df.attrs["n_cells_modelled"] == 49 and df.attrs["cell_stride"] == 1
    assert df.attrs["n_candidates"] == 2 and df.attrs["n_unreachable"] == 0


def test_routes_are_the_octile_least_time_routes_of_plan_static(flat_result):
    imap, df = flat_result
    for row in df.itertuples():
        want = octile_m(BASE, (row.row, row.col))
        assert row.route_distance_km * 1000.0 == pytest.approx(want, rel=1e-12)
        assert row.route_time_h * 3600.0 == pytest.approx(want / ROVER.speed_m_s, rel=1e-12)
        full = plan_static(imap.dem.data, DX, BASE, (row.row, row.col), ROVER, cost="time")
        assert row.route_distance_km * 1000.0 == pytest.approx(full.distance_m, rel=1e-12)
        assert row.distance_km * 1000.0 == pytest.approx(DX * math.hypot(row.row - 10, row.col - 10))


def test_unreachable_psr_is_counted_not_listed():
    z = np.zeros((N, N))
    z[PSR_PILLAR] = 1000.0  # atan(1000 / 500) = 63 deg from every neighbour: no drivable move
    imap = constructed_map(z, (PSR_NEAR, PSR_PILLAR))
    df = rank_drill_sites(imap, *base_latlon(imap), 2.0, ROVER)
    assert list(zip(df["row"], df["col"], strict=True)) == [PSR_NEAR]
    assert df.attrs["n_candidates"] == 2 and df.attrs["n_unreachable"] == 1


def test_flat_dem_gives_the_same_answer_with_terrain_slopes(flat_result):
    imap, df = flat_result
    sloped = rank_drill_sites(imap, *base_latlon(imap), 2.0, ROVER, terrain_slopes=True)
    pd.testing.assert_frame_equal(df, sloped)


def test_sub_lattice_keeps_at_most_max_cells():
    imap = constructed_map()
    df = rank_drill_sites(imap, *base_latlon(imap), 2.0, ROVER, max_cells=10)
    # stride 2 would leave 13 cells within 4 cells of the base; stride 3 leaves (0,0), (0,+-3), (+-3,0)
    assert df.attrs["cell_stride"] == 3 and df.attrs["n_cells_modelled"] == 5
    assert list(zip(df["row"], df["col"], strict=True)) == [PSR_NEAR]
    assert len(rank_drill_sites(imap, *base_latlon(imap), 2.0, ROVER, n=1)) == 1


def test_insolation_formula():
    # S0 (1 AU / d)^2 f max(cos i, 0)
    got = insolation_w_m2([1.0, 0.5, 1.0, 1.0], [1.0, 0.5, -0.2, 1.0], [AU, AU, AU, 2.0 * AU])
    np.testing.assert_allclose(got, [1361.0, 1361.0 * 0.25, 0.0, 1361.0 / 4.0], rtol=1e-12)


def test_slope_facing_the_sun_adds_its_angle_to_the_elevation():
    imap = constructed_map()
    times = imap.times[:60]
    sun = eph.sun_position_me(times)
    geo = map_geometry(imap.dem, None, 0.0)
    centre = BASE[0] * N + BASE[1]
    az, el = sky_azel(geo, sun, np.full(times.size, centre))
    k = int(np.argmax(el))  # the Sun highest over the centre cell
    beta = math.radians(10.0)
    x, y = imap.dem.xy()
    xx, yy = np.meshgrid(x - x[BASE[1]], y - y[BASE[0]])
    # the ground falls toward the Sun's grid azimuth: the normal leans toward the Sun by beta
    z = -math.tan(beta) * (xx * math.sin(az[k]) + yy * math.cos(az[k]))
    tilted = constructed_map(z, ())
    flux, inc, _ = cell_insolation(tilted, [BASE[0]], [BASE[1]], times[k : k + 1], terrain_slopes=True)
    d = np.linalg.norm(sun[k])
    assert flux[0, 0] == pytest.approx(1361.0 * (AU / d) ** 2 * math.sin(el[k] + beta), rel=1e-4)
    assert inc[0, 0] == pytest.approx(0.5 * math.pi - (el[k] + beta), abs=1e-4)
    flat, _, _ = cell_insolation(imap, [BASE[0]], [BASE[1]], times[k : k + 1])
    assert flat[0, 0] == pytest.approx(1361.0 * (AU / d) ** 2 * math.sin(el[k]), rel=1e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"reach_km": 0.0}, "reach_km"),
        ({"reach_km": math.nan}, "reach_km"),
        ({"base_lat_deg": -60.0}, "outside"),
        ({"rover": "fast"}, "RoverModel"),
        ({"max_cells": 0}, "max_cells"),
        ({"n": 0}, "n = 0"),
        ({"background_w_m2": -1.0}, "background"),
        ({"thermal_step_hours": 0.0}, "thermal_step_hours"),
    ],
)
def test_bad_input_raises_input_error(kwargs, match):
    imap = constructed_map()
    lat, lon = base_latlon(imap)
    args = {"base_lat_deg": lat, "base_lon_deg": lon, "reach_km": 2.0, "rover": ROVER}
    keys = list(args)
    args.update(kwargs)
    extra = {k: args.pop(k) for k in list(args) if k not in keys}
    with pytest.raises(InputError, match=match):
        rank_drill_sites(imap, *(args[k] for k in keys), **extra)
