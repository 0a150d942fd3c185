"""Site layers, requirements and ranking against analytic answers and independent computations.

Sources of truth:
- the slope of a tilted plane z = a x + b y is atan(hypot(a, b)) and its unit normal (-a, -b, 1) / norm
  (analytic; central and one-sided differences are exact on a plane);
- the distance to the nearest PSR cell is the Euclidean distance min over all PSR cells, by brute force;
- the south polar stereographic projection on the sphere (Snyder 1987, "Map Projections - A Working
  Manual", USGS PP 1395, eqs. 21-33, 21-34 with k0 = 1): x = rho sin(lon), y = rho cos(lon),
  rho = 2 R tan(45 deg + lat / 2), lat < 0;
- the Sun's topocentric elevation from SPICE (kizuna.core.ephemeris.sun_azel_at_site, light time from the
  site and stellar aberration), and the mean sun fraction of the illumination statistics kernel;
- requirement filters and scores written out by hand for a hand-built map.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from rasterio import Affine

from kizuna.core import ephemeris as eph
from kizuna.core.raster import Raster
from kizuna.errors import InputError
from kizuna.lunar.surface.horizon import HorizonTable
from kizuna.lunar.surface.illumination import time_grid
from kizuna.lunar.surface.illumination_map import STAT_LAYERS, IlluminationMap, illumination_map
from kizuna.lunar.surface.sites import (
    SITE_COLUMNS,
    SiteRequirements,
    cell_latlon,
    cell_of,
    psr_distance_m,
    rank_sites,
    site_mask,
    sky_series,
    slope_deg,
    terrain_normal,
)

R = 1_737_400.0
CRS = "+proj=stere +lat_0=-90 +lat_ts=-90 +lon_0=0 +R=1737400 +units=m +no_defs"


def polar_raster(z: np.ndarray, dx: float, x0: float | None = None, y0: float | None = None) -> Raster:
    """A north-up polar stereographic raster of cell size dx whose centre is the pole unless x0/y0 given."""
    nr, nc = z.shape
    left = -nc * dx / 2.0 if x0 is None else x0
    top = nr * dx / 2.0 if y0 is None else y0
    return Raster(np.asarray(z, dtype=float), Affine(dx, 0.0, left, 0.0, -dx, top), CRS, "m")


def hand_map(
    dem: Raster, layers: dict[str, np.ndarray], psr: np.ndarray, n_times: int = 100
) -> IlluminationMap:
    """An IlluminationMap with hand-set layers (horizons flat, 6-hour steps)."""
    full = {name: np.full(dem.shape, 0.5) for name in STAT_LAYERS}
    full.update(layers)
    region = psr != 255
    for v in full.values():
        v[~region] = np.nan
    times = time_grid("2027-01-01", "2027-12-31", 6.0)[:n_times]
    hz = HorizonTable(np.zeros((8,) + dem.shape, np.int16), abs(dem.transform.a))
    return IlluminationMap(
        dem, region, full, psr.astype(np.uint8), hz, (0, dem.shape[0], 0, dem.shape[1]), times, 6.0, 0.0, {}
    )


# ---------------------------------------------------------------------------------------- terrain layers


def test_slope_and_normal_of_a_tilted_plane():
    dx = 250.0
    a, b = 0.12, -0.05  # dz/dx, dz/dy (map axes)
    dem0 = polar_raster(np.zeros((12, 15)), dx)
    x, y = dem0.xy()
    z = a * x[None, :] + b * y[:, None]
    dem = polar_raster(z, dx)
    np.testing.assert_allclose(slope_deg(dem), math.degrees(math.atan(math.hypot(a, b))), atol=1e-10)
    n = np.array([-a, -b, 1.0]) / math.sqrt(a * a + b * b + 1.0)
    np.testing.assert_allclose(terrain_normal(dem), np.broadcast_to(n, (12, 15, 3)), atol=1e-12)
    # a flat DEM has slope 0 and the normal 'up'
    assert np.all(slope_deg(dem0) == 0.0)


def test_psr_distance_is_the_brute_force_euclidean_distance():
    rng = np.random.default_rng(3)
    psr = np.zeros((23, 17), np.uint8)
    psr[rng.integers(0, 23, 6), rng.integers(0, 17, 6)] = 1
    psr[:2, :] = 255  # outside the region: not PSR
    dx = 1600.0
    got = psr_distance_m(psr, dx)
    pr, pc = np.nonzero(psr == 1)
    rr, cc = np.indices(psr.shape)
    want = dx * np.min(np.hypot(rr[..., None] - pr, cc[..., None] - pc), axis=-1)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.all(got[psr == 1] == 0.0)
    np.testing.assert_allclose(psr_distance_m(psr == 1, dx), want, rtol=1e-12)  # a boolean map too
    assert np.all(np.isinf(psr_distance_m(np.zeros((4, 4), bool), dx)))
    with pytest.raises(InputError):
        psr_distance_m(psr, 0.0)


# ------------------------------------------------------------------------------------ requirements, rank


@pytest.fixture(scope="module")
def built():
    """A 9 x 9 map of 1 km cells with hand-set statistics, a steep corner and two PSR cells."""
    dx = 1000.0
    z = np.zeros((9, 9))
    z[:, 7:] = np.arange(2)[None, :] * 400.0  # a 400 m step between columns 7 and 8
    dem = polar_raster(z, dx)
    rng = np.random.default_rng(7)
    sun = np.round(rng.uniform(0.0, 1.0, (9, 9)), 3)
    dark = np.round(rng.uniform(0.0, 200.0, (9, 9)), 1)
    earth = np.round(rng.uniform(0.0, 1.0, (9, 9)), 3)
    psr = np.zeros((9, 9), np.uint8)
    psr[4, 0] = psr[8, 8] = 1
    sun[psr == 1] = 0.0
    psr[0, :] = 255  # first row outside the region
    imap = hand_map(dem, {"sun_fraction": sun, "max_darkness_hours": dark, "earth_fraction": earth}, psr)
    return imap, sun, dark, earth


def _slope_by_hand(z: np.ndarray, dx: float) -> np.ndarray:
    """Central differences inside, one-sided at the edges, written out."""
    gx = np.empty_like(z)
    gy = np.empty_like(z)
    gx[:, 1:-1] = (z[:, 2:] - z[:, :-2]) / (2 * dx)
    gx[:, 0] = (z[:, 1] - z[:, 0]) / dx
    gx[:, -1] = (z[:, -1] - z[:, -2]) / dx
    gy[1:-1] = (z[2:] - z[:-2]) / (2 * dx)
    gy[0] = (z[1] - z[0]) / dx
    gy[-1] = (z[-1] - z[-2]) / dx
    return np.degrees(np.arctan(np.hypot(gx, gy)))


def test_each_requirement_filters_as_written(built):
    imap, sun, dark, earth = built
    region = np.ones((9, 9), bool)
    region[0] = False
    slope = _slope_by_hand(imap.dem.data, 1000.0)
    rr, cc = np.indices((9, 9))
    dpsr = 1000.0 * np.minimum(np.hypot(rr - 4, cc - 0), np.hypot(rr - 8, cc - 8))
    cases = [
        (SiteRequirements(), region),
        (SiteRequirements(min_sun_fraction=0.6), region & (sun >= 0.6)),
        (SiteRequirements(max_darkness_hours=50.0), region & (dark <= 50.0)),
        (SiteRequirements(min_earth_fraction=0.3), region & (earth >= 0.3)),
        (SiteRequirements(max_slope_deg=5.0), region & (slope <= 5.0)),
        (SiteRequirements(max_psr_distance_m=3000.0), region & (dpsr <= 3000.0)),
        (SiteRequirements(min_psr_distance_m=2500.0), region & (dpsr >= 2500.0)),
        (
            SiteRequirements(min_sun_fraction=0.3, max_darkness_hours=120.0, max_slope_deg=5.0),
            region & (sun >= 0.3) & (dark <= 120.0) & (slope <= 5.0),
        ),
    ]
    for req, want in cases:
        np.testing.assert_array_equal(site_mask(imap, req), want, err_msg=str(req))
    # the 400 m step between columns 7 and 8: atan(400 / 2000) = 11.3 deg at column 7 (central difference),
    # atan(400 / 1000) = 21.8 deg at column 8 (one-sided at the edge); column 6 is flat
    slope_ok = site_mask(imap, SiteRequirements(max_slope_deg=5.0))
    assert not slope_ok[1:, 7:].any() and slope_ok[1:, 6].all()


def test_ranking_follows_the_documented_score_and_separation(built):
    imap, sun, dark, earth = built
    req = SiteRequirements(min_sun_fraction=0.2)
    period = 100 * 6.0  # 100 steps of 6 h
    got = rank_sites(imap, req, n=200, min_separation_km=0.0)
    assert list(got.columns) == list(SITE_COLUMNS)
    rows, cols = np.nonzero(site_mask(imap, req))
    score = sun[rows, cols] * (1.0 - dark[rows, cols] / period)
    order = sorted(range(rows.size), key=lambda k: (-score[k], -earth[rows[k], cols[k]], rows[k], cols[k]))
    assert got.attrs["n_ok_cells"] == rows.size == len(got)
    np.testing.assert_array_equal(got["row"], rows[order])
    np.testing.assert_array_equal(got["col"], cols[order])
    np.testing.assert_allclose(got["score"], score[order], rtol=1e-12)
    # with 2.5 km separation: greedy by score, each new site at least 2.5 cells from those kept
    sep = rank_sites(imap, req, n=5, min_separation_km=2.5)
    kept: list[tuple[int, int]] = []
    for k in order:
        r, c = rows[k], cols[k]
        if all(math.hypot(r - a, c - b) >= 2.5 for a, b in kept):
            kept.append((r, c))
        if len(kept) == 5:
            break
    assert list(zip(sep["row"], sep["col"], strict=True)) == kept
    # lat/lon columns are those of the cell centres (south polar stereographic, Snyder 1987)
    x = imap.dem.transform.c + 1000.0 * (sep["col"].to_numpy() + 0.5)
    y = imap.dem.transform.f - 1000.0 * (sep["row"].to_numpy() + 0.5)
    lat = -(90.0 - 2.0 * np.degrees(np.arctan(np.hypot(x, y) / (2.0 * R))))
    np.testing.assert_allclose(sep["lat_deg"], lat, atol=1e-9)
    np.testing.assert_allclose(sep["lon_deg"], np.degrees(np.arctan2(x, y)) % 360.0, atol=1e-7)
    np.testing.assert_allclose(
        sep["psr_distance_km"],
        np.minimum(np.hypot(sep["row"] - 4, sep["col"]), np.hypot(sep["row"] - 8, sep["col"] - 8)),
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_sun_fraction": 1.5},
        {"min_sun_fraction": math.nan},
        {"max_darkness_hours": -1.0},
        {"min_earth_fraction": -0.1},
        {"max_slope_deg": 91.0},
        {"max_psr_distance_m": -5.0},
        {"min_psr_distance_m": 5000.0, "max_psr_distance_m": 1000.0},
        {"max_slope_deg": True},
    ],
)
def test_bad_requirements_raise_input_error(kwargs):
    with pytest.raises(InputError, match="SiteRequirements"):
        SiteRequirements(**kwargs)


def test_bad_ranking_arguments(built):
    imap = built[0]
    with pytest.raises(InputError):
        rank_sites(imap, n=0)
    with pytest.raises(InputError):
        rank_sites(imap, min_separation_km=-1.0)
    with pytest.raises(InputError):
        rank_sites("not a map")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------- cells and sky


def test_cell_of_and_cell_latlon_follow_the_projection():
    dem = polar_raster(np.zeros((40, 40)), 1000.0)
    # Snyder 1987 eqs. 21-33/34: lat -89.5, lon 30 -> rho = 2 R tan(0.25 deg)
    rho = 2.0 * R * math.tan(math.radians(0.25))
    x, y = rho * math.sin(math.radians(30.0)), rho * math.cos(math.radians(30.0))
    want = (int(math.floor(20.0 - y / 1000.0)), int(math.floor(20.0 + x / 1000.0)))
    assert cell_of(dem, -89.5, 30.0) == want
    assert cell_of(dem, -89.5, 390.0) == want
    lat, lon = cell_latlon(dem, [want[0]], [want[1]])
    assert cell_of(dem, float(lat[0]), float(lon[0])) == want
    assert cell_of(dem, -90.0, 0.0) == (20, 20)
    with pytest.raises(InputError, match="outside"):
        cell_of(dem, -85.0, 0.0)  # 152 km from the pole, off the 40 km map
    with pytest.raises(InputError, match="latitude"):
        cell_of(dem, -95.0, 0.0)


@pytest.fixture(scope="module")
def computed():
    """A small synthetic map with hills, and its illumination statistics over two weeks."""
    nr = 41
    rr, cc = np.indices((nr, nr), dtype=float)
    z = 600.0 * np.exp(-((rr - 12) ** 2 + (cc - 28) ** 2) / 18.0) + 900.0 * np.exp(
        -((rr - 30) ** 2 + (cc - 10) ** 2) / 30.0
    )
    dem = polar_raster(z, 400.0)
    imap = illumination_map(dem, "2027-01-01", "2027-01-15", 6.0, max_colatitude_deg=0.25, tile_cells=16)
    return imap


def test_sky_series_matches_the_statistics_and_spice(computed):
    imap = computed
    rows, cols = np.nonzero(imap.region)
    pick = np.linspace(0, rows.size - 1, 25).astype(int)
    r, c = rows[pick], cols[pick]
    sky = sky_series(imap, r, c, eph.sun_position_me(imap.times), eph.earth_position_me(imap.times))
    # the time mean of the series is the statistics kernel's mean sun (and Earth) fraction
    np.testing.assert_allclose(sky.sun_fraction.mean(axis=0), imap.layers["sun_fraction"][r, c], atol=1e-12)
    np.testing.assert_allclose(
        sky.earth_fraction.mean(axis=0), imap.layers["earth_fraction"][r, c], atol=1e-12
    )
    # elevation above the local horizontal: SPICE topocentric (site light time, aberration), 0.001 deg
    lat, lon = cell_latlon(imap.dem, r, c)
    k = [0, 7, 31]
    _, el = eph.sun_azel_at_site(
        imap.times[k][:, None], lat[None, :], lon[None, :], imap.dem.data[r, c][None, :]
    )
    np.testing.assert_allclose(np.degrees(sky.sun_elevation_rad[k]), np.degrees(el), atol=1e-3)
    # distance to the Sun: that from the Moon's centre, to within the Moon's radius and the cell's height
    d_centre = np.linalg.norm(eph.sun_position_me(imap.times), axis=-1)
    assert np.all(np.abs(sky.sun_distance_m - d_centre[:, None]) < R + 1000.0)
    # a cell outside the region has no horizons
    out = np.argwhere(~imap.region)[0]
    with pytest.raises(InputError, match="horizons|outside"):
        sky_series(imap, [out[0]], [out[1]], eph.sun_position_me(imap.times[:2]))


def test_direction_vectors_are_unit_and_give_the_elevation(computed):
    imap = computed
    r, c = np.nonzero(imap.region)
    sky = sky_series(imap, r[:5], c[:5], eph.sun_position_me(imap.times[:4]), sun_direction=True)
    np.testing.assert_allclose(np.linalg.norm(sky.sun_local, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.arcsin(sky.sun_local[..., 2]), sky.sun_elevation_rad, atol=1e-12)
