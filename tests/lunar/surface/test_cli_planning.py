"""The planning commands (sites, traverse, night, drill) on a small real illumination map.

The map: LOLA LDEM 256 ppd south polar DEM (1.6 km), cells within 0.6 deg of the pole, Jan-Feb 2027 in
6-hour steps, written to a folder in the layout of `kizuna lunar surface illumination --out`. Expected
values come from that folder's own layers (computed by the illumination statistics kernel, not by these
commands), from the horizon visibility of kizuna.lunar.surface.illumination on the whole horizon window,
from slopes written out by hand, from the heater law P = emissivity sigma A (T_in^4 - T_sink^4) /
efficiency (Stefan-Boltzmann) and from kizuna.lunar.surface.traverse.plan_static on the whole DEM.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import typer
from typer.testing import CliRunner

from kizuna.core import ephemeris as eph
from kizuna.core.constants import SUN_RADIUS_M
from kizuna.core.raster import Raster, read_dem, write_geotiff
from kizuna.errors import InputError
from kizuna.lunar.surface.cli_planning import register
from kizuna.lunar.surface.illumination import time_grid, visibility_series
from kizuna.lunar.surface.illumination_map import STAT_LAYERS, illumination_map, load_illumination
from kizuna.lunar.surface.sites import cell_latlon
from kizuna.lunar.surface.traverse import RoverModel, plan_static

SIGMA = 5.670_374_419e-8
START = (378, 383)  # sunlit cells near the pole (mean sun fraction 0.77 and 0.88)
GOAL = (385, 379)
POINTS = ["--from-lat", -89.8, "--from-lon", 45, "--to-lat", -89.77, "--to-lon", 200]
FAR_POINTS = ["--from-lat", -85, "--from-lon", 0, "--to-lat", -89.8, "--to-lon", 45]  # 150 km off the pole


@pytest.fixture(scope="module")
def folder(shared_data: Path, tmp_path_factory) -> Path:
    dem_path = shared_data / "moon-surface" / "dem" / "lola_ldem256_south_polar_1600m.tif"
    dem = read_dem(dem_path)
    imap = illumination_map(dem, "2027-01-01", "2027-03-01", 6.0, max_colatitude_deg=0.6, tile_cells=32)
    d = tmp_path_factory.mktemp("illumination")
    for name in STAT_LAYERS:
        write_geotiff(d / f"{name}.tif", Raster(imap.layers[name], dem.transform, dem.crs, ""))
    write_geotiff(d / "psr.tif", Raster(imap.psr.astype(float), dem.transform, dem.crs, ""))
    imap.horizons.save(d / "horizons.npz")
    meta = {
        "dem": str(dem_path),
        "horizon_window": list(imap.window),
        "step_hours": 6.0,
        "observer_height_m": 0.0,
        "start": "2027-01-01",
        "end": "2027-03-01",
    }
    (d / "summary.json").write_text(json.dumps(meta))
    return d


@pytest.fixture(scope="module")
def imap(folder):
    return load_illumination(folder)


def app() -> typer.Typer:
    a = typer.Typer(pretty_exceptions_enable=False)
    register(a)
    return a


def run(args: list[str]):
    return CliRunner().invoke(app(), [str(a) for a in args])


def latlon(imap, cell) -> list[str]:
    lat, lon = cell_latlon(imap.dem, [cell[0]], [cell[1]])
    return [f"{lat[0]:.12f}", f"{lon[0]:.12f}"]


def layer(folder: Path, name: str) -> np.ndarray:
    with rasterio.open(folder / f"{name}.tif") as ds:
        return ds.read(1).astype(float)


# -------------------------------------------------------------------------------------------------- sites


def test_sites_writes_the_cells_that_meet_the_requirements(folder, imap, tmp_path):
    out = tmp_path / "sites"
    res = run(["sites", "--from", folder, "--out", out, "--min-sun", 0.5, "--max-slope-deg", 10, "--n", 5])
    assert res.exit_code == 0, res.output
    for f in ("sites.csv", "sites_ok.tif", "summary.json", "map.png", "report.html"):
        assert (out / f).is_file()
    # expected mask from the folder's layers and slopes written out by hand (central differences)
    psr = layer(folder, "psr")
    z = imap.dem.data
    gx = (z[1:-1, 2:] - z[1:-1, :-2]) / 3200.0
    gy = (z[2:, 1:-1] - z[:-2, 1:-1]) / 3200.0
    slope = np.full(z.shape, np.nan)
    slope[1:-1, 1:-1] = np.degrees(np.arctan(np.hypot(gx, gy)))
    region = psr != 255
    want = region & (layer(folder, "sun_fraction") >= 0.5) & (slope <= 10.0)
    with rasterio.open(out / "sites_ok.tif") as ds:
        ok = ds.read(1)
    assert np.all(np.isnan(ok[~region]))
    np.testing.assert_array_equal(ok[region] == 1.0, want[region])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_ok_cells"] == int(want.sum()) > 5
    assert summary["requirements"]["min_sun_fraction"] == 0.5
    assert summary["requirements"]["max_slope_deg"] == 10.0
    sites = pd.read_csv(out / "sites.csv")
    assert len(sites) == summary["n_sites"] <= 5
    assert np.all(want[sites["row"], sites["col"]])
    assert np.all(np.diff(sites["score"]) <= 0.0)
    period_h = 236 * 6.0  # 2027-01-01 .. 2027-03-01 in 6-hour steps
    sf, dark = layer(folder, "sun_fraction"), layer(folder, "max_darkness_hours")
    np.testing.assert_allclose(
        sites["score"], (sf * (1.0 - dark / period_h))[sites["row"], sites["col"]], rtol=1e-6
    )
    rc = sites[["row", "col"]].to_numpy()
    d = np.hypot(*(rc[:, None, :] - rc[None, :, :]).transpose(2, 0, 1)) * 1.6
    assert np.all(d[~np.eye(len(rc), dtype=bool)] >= 3.0)


# ----------------------------------------------------------------------------------------------- traverse


def test_traverse_drives_in_sunlight_and_is_no_shorter_than_the_static_route(folder, imap, tmp_path):
    out = tmp_path / "trav"
    args = ["traverse", "--from", folder, "--out", out, "--hours", 240, "--step-hours", 2]
    args += ["--from-lat", latlon(imap, START)[0], "--from-lon", latlon(imap, START)[1]]
    args += ["--to-lat", latlon(imap, GOAL)[0], "--to-lon", latlon(imap, GOAL)[1]]
    args += ["--start", "2027-01-03T00:00"]
    res = run(args)
    assert res.exit_code == 0, res.output
    for f in ("route.csv", "summary.json", "map.png", "report.html"):
        assert (out / f).is_file()
    s = json.loads((out / "summary.json").read_text())
    route = pd.read_csv(out / "route.csv")
    assert s["reachable"] is True and s["reason"] == ""
    assert tuple(route.iloc[0][["row", "col"]]) == START and tuple(route.iloc[-1][["row", "col"]]) == GOAL
    steps = np.abs(np.diff(route[["row", "col"]].to_numpy(), axis=0))
    assert np.all(steps.max(axis=1) <= 1)  # 8-neighbour moves or waits
    assert s["distance_m"] >= s["static_distance_m"] - 1e-6
    assert s["total_time_s"] >= s["static_time_s"] - 1e-6
    assert s["total_time_s"] == pytest.approx((route["step"].iloc[-1] - route["step"].iloc[0]) * 7200.0)
    assert route["energy_wh"].min() >= 600.0 - 1e-9 and s["min_energy_wh"] >= 600.0 - 1e-9
    # the sun fraction at each departure, from the horizon visibility over the whole window
    times = time_grid("2027-01-03", "2027-01-13", 2.0)
    r0, r1, c0, c1 = imap.window
    geo = imap.geometry()
    moved = np.flatnonzero(np.any(steps > 0, axis=1))
    flat = (route["row"].to_numpy() - r0) * (c1 - c0) + (route["col"].to_numpy() - c0)
    vis = visibility_series(imap.horizons, geo, eph.sun_position_me(times), SUN_RADIUS_M, flat[moved])
    want = vis[route["step"].to_numpy()[moved], np.arange(moved.size)]
    np.testing.assert_allclose(route["sun_fraction"].to_numpy()[moved], want, atol=1e-12)
    assert np.all(want >= 0.5)  # drives only with at least half the Sun in view


def test_traverse_without_time_enough_is_an_unreachable_result(folder, imap, tmp_path):
    out = tmp_path / "late"
    args = ["traverse", "--from", folder, "--out", out, "--hours", 2]
    args += ["--from-lat", latlon(imap, START)[0], "--from-lon", latlon(imap, START)[1]]
    args += ["--to-lat", latlon(imap, GOAL)[0], "--to-lon", latlon(imap, GOAL)[1]]
    res = run(args)
    assert res.exit_code == 0, res.output
    s = json.loads((out / "summary.json").read_text())
    assert s["reachable"] is False and "not reachable" in s["reason"]
    assert s["total_time_s"] is None and s["static_reachable"] is True
    assert len(pd.read_csv(out / "route.csv")) == 0


# -------------------------------------------------------------------------------------------------- night


def test_night_energy_follows_the_heater_law_over_the_longest_darkness(folder, imap, tmp_path):
    out = tmp_path / "night"
    lat, lon = latlon(imap, START)
    res = run(["night", "--from", folder, "--lat", lat, "--lon", lon, "--out", out, "--battery-wh", 1000])
    assert res.exit_code == 0, res.output
    for f in ("summary.json", "series.csv", "night.png", "report.html"):
        assert (out / f).is_file()
    s = json.loads((out / "summary.json").read_text())
    # same period and step as the map: the longest darkness is the statistics kernel's
    assert s["longest_darkness_h"] == pytest.approx(layer(folder, "max_darkness_hours")[START])
    series = pd.read_csv(out / "series.csv")
    assert len(series) == 236
    k0 = round(s["longest_darkness_h"] / 6.0)
    i0 = int(np.flatnonzero(series["time_utc"] == s["longest_darkness_start_utc"])[0])
    assert series["dark"][i0 : i0 + k0].all() and series["sun_fraction"][i0 : i0 + k0].max() == 0.0
    tg = series["surface_temperature_k"][i0 : i0 + k0].to_numpy()
    # heater law with the defaults: emissivity 0.05, 1 m^2, 253 K inside, half the view on the ground
    p = 0.05 * SIGMA * 1.0 * (253.0**4 - 0.5 * tg**4 - 0.5 * 3.0**4)
    assert s["heater_energy_wh"] == pytest.approx(p.sum() * 6.0, rel=1e-9)
    assert s["hibernation_energy_wh"] == pytest.approx(10.0 * s["longest_darkness_h"])
    total = s["heater_energy_wh"] + s["hibernation_energy_wh"]
    assert s["total_energy_wh"] == pytest.approx(total)
    assert s["usable_battery_wh"] == pytest.approx(800.0)
    assert s["survives"] is (total <= 800.0)
    assert s["margin_wh"] == pytest.approx(800.0 - total)


# -------------------------------------------------------------------------------------------------- drill


def test_drill_ranks_candidates_within_reach(folder, imap, tmp_path):
    out = tmp_path / "drill"
    lat, lon = latlon(imap, START)
    res = run(["drill", "--from", folder, "--lat", lat, "--lon", lon, "--reach-km", 8, "--out", out])
    assert res.exit_code == 0, res.output
    for f in ("drill_sites.csv", "summary.json", "map.png", "report.html"):
        assert (out / f).is_file()
    s = json.loads((out / "summary.json").read_text())
    df = pd.read_csv(out / "drill_sites.csv")
    assert 0 < len(df) == s["n_sites"] <= 20
    rc = df[["row", "col"]].to_numpy()
    np.testing.assert_allclose(df["distance_km"], 1.6 * np.hypot(rc[:, 0] - START[0], rc[:, 1] - START[1]))
    assert np.all(df["distance_km"] <= 8.0)
    psr = layer(folder, "psr")
    np.testing.assert_array_equal(df["psr"], psr[rc[:, 0], rc[:, 1]] == 1)
    assert np.all(df["psr"] | df["ice_within_drill"])
    # ranked by (ice within the drill depth, shallower ice, shorter route)
    key = list(
        zip(~df["ice_within_drill"], df["ice_depth_m"].fillna(np.inf), df["route_time_h"], strict=True)
    )
    assert key == sorted(key)
    rover = RoverModel(0.2, 15.0)
    for row in df.head(4).itertuples():
        full = plan_static(imap.dem.data, 1600.0, START, (row.row, row.col), rover, cost="time")
        assert row.route_distance_km == pytest.approx(full.distance_m / 1000.0, rel=1e-9)


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "command, extra, match",
    [
        ("sites", ["--min-sun", 1.5], "--min-sun"),
        ("sites", ["--max-slope-deg", "nan"], "--max-slope-deg"),
        ("night", ["--lat", -85.0, "--lon", 0.0], "outside"),
        ("night", ["--lat", -89.8, "--lon", 45.0, "--emissivity", 0.0], "--emissivity"),
        ("drill", ["--lat", -89.8, "--lon", 45.0, "--reach-km", -1], "--reach-km"),
        ("drill", ["--lat", -60.0, "--lon", 45.0], "outside"),
        ("traverse", [*FAR_POINTS, "--hours", 5], "outside"),
        ("traverse", [*POINTS, "--hours", 0], "--hours"),
        ("traverse", [*POINTS, "--hours", 5, "--start", "soon"], "soon"),
        ("traverse", [*POINTS, "--hours", 5, "--min-sun", 2], "--min-sun"),
    ],
)
def test_bad_input_raises_input_error_and_leaves_no_output(folder, tmp_path, command, extra, match):
    out = tmp_path / "out"
    res = run([command, "--from", folder, "--out", out, *extra])
    assert isinstance(res.exception, InputError), res.output
    assert match in str(res.exception)
    assert not out.exists() and not any(tmp_path.iterdir())


def test_missing_folder_and_file_output_are_input_errors(folder, tmp_path):
    res = run(["sites", "--from", tmp_path / "nothing", "--out", tmp_path / "o"])
    assert isinstance(res.exception, InputError) and "--from" in str(res.exception)
    (tmp_path / "afile").write_text("x")
    res = run(["sites", "--from", folder, "--out", tmp_path / "afile"])
    assert isinstance(res.exception, InputError) and "not a folder" in str(res.exception)
    res = run(["drill", "--from", folder, "--out", tmp_path / "o"])  # --lat/--lon missing: usage error
    assert res.exit_code == 2
    assert not (tmp_path / "o").exists()


def test_option_defaults_are_the_library_defaults():
    # The commands restate these defaults so that their help needs no import of the numba kernels.
    from kizuna.lunar.surface import cli_planning, drill, thermal

    assert cli_planning.DEFAULT_BACKGROUND_W_M2 == drill.DEFAULT_BACKGROUND_W_M2
    assert cli_planning.DRILL_DEPTH_M == thermal.DRILL_DEPTH_M
