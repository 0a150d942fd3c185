"""Horizons against analytic answers on synthetic terrain (plains, cones, pits, ridges) on the sphere.

Every expected elevation comes from the exact geometry of two points on a sphere of radius R, with the
observer at radius r_o and the target at radius r_t separated by the central angle theta = d / R:

    el = atan2(r_t cos(theta) - r_o, r_t sin(theta))          (target in the plane through the centre)

and, for the bare sphere, the textbook dip of the horizon -acos(R / (R + h)). Required: 0.01 deg.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from rasterio import Affine
from scipy.ndimage import map_coordinates

from kizuna.core.raster import Raster
from kizuna.errors import InputError
from kizuna.lunar.surface.horizon import (
    NOT_COMPUTED,
    HorizonTable,
    compute_horizons,
    horizon_points,
    horizons_from_raster,
)

R = 1_737_400.0  # reference sphere of the LOLA polar maps (m)
TOL = math.radians(0.01)  # the required tolerance


def sphere_elevation(r_obs: float, r_target: float, d: float) -> float:
    """Exact elevation (rad) of a target at radius r_target seen from radius r_obs at ground distance d."""
    th = d / R
    return math.atan2(r_target * math.cos(th) - r_obs, r_target * math.sin(th))


def test_bare_sphere_dip_of_the_horizon():
    # A flat plain on the sphere (all heights 0): the skyline is the geometric horizon, whose dip below
    # the horizontal is acos(R / (R + h)) for an eye h above the ground (tangent line to a circle).
    z = np.zeros((81, 81))
    for h_obs, dx in [(2.0, 100.0), (100.0, 500.0)]:  # tangent points at 2.6 km and 18.6 km: on the map
        expected = -math.acos(R / (R + h_obs))
        az = np.radians(np.arange(0.0, 360.0, 7.5))
        got = horizon_points(z, dx, [40], [40], az, observer_height_m=h_obs)
        np.testing.assert_allclose(got, expected, atol=TOL)
    table = compute_horizons(np.zeros((61, 61)), 100.0, 360, observer_height_m=2.0)
    np.testing.assert_allclose(
        table.elevation_q[:, 30, 30] * table.unit_rad, -math.acos(R / (R + 2.0)), atol=TOL
    )


def _cone(shape, peak_rc, height, radius, dx):
    rr, cc = np.indices(shape, dtype=float)
    d = np.hypot(rr - peak_rc[0], cc - peak_rc[1]) * dx
    return height * np.clip(1.0 - d / radius, 0.0, None)


def test_cone_tip_from_afar():
    # A cone 300 m high and 1.5 km in radius on a flat plain, seen from 6 km: its tip (flank slope 0.2,
    # steeper than the line of sight) sets the horizon, at the exact spherical elevation of the tip.
    dx, H = 20.0, 300.0
    z = _cone((401, 401), (200, 300), H, 1500.0, dx)
    expected = sphere_elevation(R, R + H, 6000.0)
    # along a grid axis (due +col) and along a 3-4-5 direction (240 cells +col, 180 cells -row)
    got_axis = horizon_points(z, dx, [200], [0], [math.pi / 2])[0, 0]
    got_oblique = horizon_points(z, dx, [380], [60], [math.atan2(240, 180)])[0, 0]
    assert abs(got_axis - expected) < TOL
    assert abs(got_oblique - expected) < TOL
    # curvature matters here: the planar answer atan(H / D) is off by 0.1 deg
    assert abs(math.atan(H / 6000.0) - expected) > 5 * TOL


def test_flat_floored_pit_from_its_centre():
    # A flat-floored circular pit, depth h = 400 m and radius a = 2 km (floor nodes r < a, plain r >= a).
    # From the centre of the floor the skyline is the rim: el = atan2(R cos(a/R) - (R - h), R sin(a/R)),
    # i.e. atan(h / a) less the curvature drop. Along the grid axes and the 3-4-5 lattice directions the
    # gridded rim lies exactly on the circle (a = 100 cells = 5 x 20), so the answer is exact there.
    dx, h, n = 20.0, 400.0, 100
    rr, cc = np.indices((241, 241), dtype=float)
    z = np.where(np.hypot(rr - 120, cc - 120) < n, -h, 0.0)
    expected = sphere_elevation(R - h, R, n * dx)
    az = [0.0, math.pi / 2, math.pi, 1.5 * math.pi, math.atan2(3, 4), math.atan2(4, 3), math.atan2(-4, -3)]
    got = horizon_points(z, dx, [120], [120], az)
    np.testing.assert_allclose(got, expected, atol=TOL)
    assert abs(math.atan(h / (n * dx)) - expected) < math.radians(0.05)  # the near-planar answer


def test_long_straight_ridge_in_any_azimuth():
    # A straight ridge along the rows (crest height 3 km on column 70, flanks slope 0.3) seen from 60 km
    # across a 1 km grid: along an azimuth phi from the ridge normal the crest is d = D / cos(phi) away.
    # The curvature drop at 60-78 km (1.0-1.8 km) is a large part of the ridge: the planar answer is
    # 1 deg off.
    dx, H, D = 1000.0, 3000.0, 60_000.0
    cols = np.arange(91, dtype=float)
    profile = np.clip(H - 0.3 * np.abs(cols - 70) * dx, 0.0, None)
    z = np.tile(profile, (301, 1))
    phis = np.radians([0.0, 10.0, 25.0, 40.0])
    for sign in (1.0, -1.0):
        az = math.pi / 2 - sign * phis  # toward +col, turned toward -row / +row
        got = horizon_points(z, dx, [150], [10], az)[0]
        expected = [sphere_elevation(R, R + H, D / math.cos(p)) for p in phis]
        np.testing.assert_allclose(got, expected, atol=TOL)
    assert abs(math.atan(H / D) - sphere_elevation(R, R + H, D)) > math.radians(0.9)
    # the table holds the same values at its tabulated azimuths (within the int16 rounding)
    table = compute_horizons(z[140:161], dx, 36)
    np.testing.assert_allclose(table.elevation(math.pi / 2)[10, 10], sphere_elevation(R, R + H, D), atol=TOL)


def _brute_force(z, dx, r, c, az, h_obs, step=0.0005):
    """Independent reference: plain numpy march at 1/2000 cell with scipy's bilinear interpolation."""
    rows, cols = z.shape
    tau = np.arange(1, int(np.hypot(rows, cols) / step)) * step
    u, v = c + tau * math.sin(az), r - tau * math.cos(az)
    inside = (u >= 0) & (u <= cols - 1) & (v >= 0) & (v <= rows - 1)
    tau, u, v = tau[inside], u[inside], v[inside]
    h = map_coordinates(z, [v, u], order=1)
    th = tau * dx / R
    el = np.arctan2((R + h) * np.cos(th) - (R + z[r, c] + h_obs), (R + h) * np.sin(th))
    return el.max()


def test_table_matches_an_independent_fine_march_on_rough_terrain():
    rng = np.random.default_rng(7)
    z = rng.normal(0.0, 150.0, (41, 47))
    z = (z + np.roll(z, 1, 0) + np.roll(z, 1, 1) + np.roll(z, (1, 1), (0, 1))) / 4  # some smoothing
    table = compute_horizons(z, 100.0, 64, observer_height_m=2.0)
    for r, c in [(20, 23), (5, 40), (33, 3)]:
        for k in (0, 5, 16, 27, 45):
            az = 2 * math.pi * k / 64
            ref = _brute_force(z, 100.0, r, c, az, 2.0)
            assert abs(table.elevation_q[k, r, c] * table.unit_rad - ref) < TOL, (r, c, k)


def test_mirror_symmetry_and_edges():
    # Mirroring the map left-right mirrors every azimuth: az -> 2 pi - az (an invariant of the geometry).
    rng = np.random.default_rng(3)
    z = rng.normal(0.0, 100.0, (20, 25))
    a = compute_horizons(z, 50.0, 16).elevation_q
    b = compute_horizons(z[:, ::-1], 50.0, 16).elevation_q
    mirrored = b[(-np.arange(16)) % 16][:, :, ::-1]
    assert np.max(np.abs(a.astype(int) - mirrored)) <= 1
    # a cell on the top edge looking up (azimuth 0) sees no terrain: -pi/2 by convention
    assert a[0, 0, 5] * 5e-5 == pytest.approx(-math.pi / 2, abs=1e-4)


def test_lookup_interpolates_and_save_load_round_trip(tmp_path):
    q = np.zeros((4, 2, 3), dtype=np.int16)
    q[1] = 1000  # 0.05 rad at azimuth 90 deg, 0 at 0 deg and 180 deg
    table = HorizonTable(q, 10.0, 2.0)
    assert table.elevation(math.radians(45.0))[0, 0] == pytest.approx(0.025)
    assert table.elevation(math.radians(-270.0))[1, 2] == pytest.approx(0.05)  # wraps around
    per_cell = table.elevation(np.full((2, 3), math.radians(135.0)))
    np.testing.assert_allclose(per_cell, 0.025)
    table.save(tmp_path / "h.npz")
    back = HorizonTable.load(tmp_path / "h.npz")
    np.testing.assert_array_equal(back.elevation_q, q)
    assert (back.dx_m, back.observer_height_m, back.unit_rad) == (10.0, 2.0, table.unit_rad)
    (tmp_path / "bad.npz").write_bytes(b"not a table")
    with pytest.raises(InputError, match="bad.npz"):
        HorizonTable.load(tmp_path / "bad.npz")


def test_raster_orientation_gives_map_azimuths():
    # A ridge along the map's x axis, north of a cell in a north-up raster, must appear at azimuth 0 (+y);
    # the same map stored south-up (e > 0) must give the same answer.
    z = np.zeros((21, 21))
    z[2] = 500.0  # row 2 of a north-up raster is 8 cells toward +y from row 10
    north_up = Raster(z, Affine(100.0, 0, 0, 0, -100.0, 2100.0), crs="EPSG:3031")
    south_up = Raster(z[::-1].copy(), Affine(100.0, 0, 0, 0, 100.0, 0.0), crs="EPSG:3031")
    expected = sphere_elevation(R, R + 500.0, 800.0)
    for raster, row in [(north_up, 10), (south_up, 10)]:
        table = horizons_from_raster(raster, 8)
        assert abs(table.elevation(0.0)[row, 10] - expected) < TOL
        assert table.elevation(math.pi)[row, 10] < expected - math.radians(10.0)  # open plain to the south


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"heights_m": np.array([[0.0, np.nan], [0.0, 0.0]])}, "NaN"),
        ({"dx_m": 0.0}, "positive"),
        ({"dx_m": -5.0}, "positive"),
        ({"n_azimuths": 3}, "n_azimuths"),
        ({"observer_height_m": -1.0}, "observer_height_m"),
        ({"heights_m": np.zeros(5)}, "2-D"),
    ],
)
def test_bad_input(kwargs, match):
    args = {"heights_m": np.zeros((5, 5)), "dx_m": 10.0, "n_azimuths": 8} | kwargs
    with pytest.raises(InputError, match=match):
        compute_horizons(**args)


def test_bad_raster():
    z = np.zeros((5, 5))
    with pytest.raises(InputError, match="projected"):
        horizons_from_raster(Raster(z, Affine(1.0, 0, 0, 0, -1.0, 0), crs="EPSG:4326"))
    with pytest.raises(InputError, match="square"):
        horizons_from_raster(Raster(z, Affine(10.0, 0, 0, 0, -20.0, 0), crs="EPSG:3031"))


def test_ground_observer_on_a_slope_gets_the_exact_limit():
    # A plane rising at s = 0.6 (m/m) toward +col, 5 km above the sphere. For an observer on it the
    # elevation is highest right at the observer: as d -> 0, el -> atan(s R / (R + H)), the slope
    # measured over the horizontal distance at the observer's radius R + H (atan(s) is 0.07 deg off).
    dx, H, s = 100.0, 5000.0, 0.6
    cols = np.arange(41, dtype=float)
    z = np.tile(H + s * dx * (cols - 20), (41, 1))
    expected = math.atan(s * R / (R + H))
    got = horizon_points(z, dx, [20], [20], [math.pi / 2])[0, 0]
    assert abs(got - expected) < 1e-9
    assert abs(math.atan(s) - expected) > 5 * TOL
    # the exact elevation of points up the slope approaches it from below
    near = [sphere_elevation(R + H, R + H + s * d, d) for d in (1.0, 10.0, 100.0)]
    assert all(e < expected for e in near) and expected - near[0] < 1e-5
    # obliquely, the slope along the ray is s sin(az)
    az = math.radians(60.0)
    got = horizon_points(z, dx, [20], [20], [az])[0, 0]
    assert abs(got - math.atan(s * math.sin(az) * R / (R + H))) < 1e-9


def _exact_fine_march(z, dx, r, c, az, h_obs, step):
    """Independent reference with the exact elevation formula, marched at `step` cells."""
    rows, cols = z.shape
    tau = np.arange(1, int(np.hypot(rows, cols) / step)) * step
    u, v = c + tau * math.sin(az), r - tau * math.cos(az)
    inside = (u >= 0) & (u <= cols - 1) & (v >= 0) & (v <= rows - 1)
    tau, u, v = tau[inside], u[inside], v[inside]
    h = map_coordinates(z, [v, u], order=1)
    th = tau * dx / R
    num = h * np.cos(th) - 2.0 * R * np.sin(0.5 * th) ** 2 - (z[r, c] + h_obs)
    return np.arctan2(num, (R + h) * np.sin(th)).max()


def test_peaks_between_crossings_on_steep_terrain():
    # Very steep random terrain (heights of +-3 km on a 1.6 km grid): the skyline often peaks inside a
    # cell, close to the observer, where the elevation is far from its small-angle form. The horizon
    # must never fall below any point of the terrain (a fine exact march) and stay close to its maximum.
    rng = np.random.default_rng(11)
    z = rng.normal(0.0, 3000.0, (9, 9))
    az = [0.0, math.pi / 2, math.pi, 1.5 * math.pi, 0.4, 2.0, 3.7, 5.5]
    for h_obs in (0.0, 2.0):
        got = horizon_points(z, 1600.0, [4, 2, 6], [4, 5, 3], az, observer_height_m=h_obs)
        for p, (r, c) in enumerate([(4, 4), (2, 5), (6, 3)]):
            for j, a in enumerate(az):
                ref = _exact_fine_march(z, 1600.0, r, c, a, h_obs, 2e-5)
                assert -1e-10 < got[p, j] - ref < 1e-4, (h_obs, r, c, a, got[p, j] - ref)


def test_rays_along_the_edges_of_the_map():
    # Rays along the last row or column run on the map's edge and still see the terrain there.
    dx, H = 100.0, 500.0
    expected = sphere_elevation(R, R + H, 8 * dx)
    z = np.zeros((21, 21))
    z[2, 20] = H  # on the last column, 8 cells toward -row from (10, 20)
    z[20, 18] = H  # on the last row, 8 cells toward +col from (20, 10)
    z[20, 2] = H  # ... and toward -col
    got = horizon_points(z, dx, [10, 20, 20], [20, 10, 10], [0.0, math.pi / 2, 1.5 * math.pi])
    np.testing.assert_allclose(np.diag(got), expected, atol=1e-12)
    table = compute_horizons(z, dx, 4)
    assert abs(table.elevation_q[0, 10, 20] * table.unit_rad - expected) < TOL
    assert abs(table.elevation_q[1, 20, 10] * table.unit_rad - expected) < TOL


def test_window_and_mask():
    rng = np.random.default_rng(5)
    z = rng.normal(0.0, 200.0, (30, 34))
    full = compute_horizons(z, 100.0, 16, observer_height_m=1.0).elevation_q
    mask = rng.random((10, 12)) < 0.6
    part = compute_horizons(z, 100.0, 16, observer_height_m=1.0, window=(5, 15, 20, 32), mask=mask)
    q = part.elevation_q
    assert q.shape == (16, 10, 12)
    np.testing.assert_array_equal(q[:, mask], full[:, 5:15, 20:32][:, mask])
    assert np.all(q[:, ~mask] == NOT_COMPUTED)
    with pytest.raises(InputError, match="window"):
        compute_horizons(z, 100.0, 16, window=(5, 40, 0, 10))
    with pytest.raises(InputError, match="mask"):
        compute_horizons(z, 100.0, 16, window=(5, 15, 20, 32), mask=np.ones((3, 3), bool))


def test_compiled_march_matches_its_python_source():
    # numba has miscompiled inlined loops here before; the compiled kernel must give what its Python
    # source gives, to rounding.
    from kizuna.lunar.surface import horizon as hz

    rng = np.random.default_rng(2)
    z = rng.normal(0.0, 800.0, (24, 20))
    bmax, bbend, zmax = hz._block_max(z), hz._block_bend(z, 100.0 / R), float(z.max())
    points = [(12, 10), (0, 0), (23, 19), (5, 17)]
    for h_obs in (0.0, 3.0):
        for a in (0.0, 0.7, math.pi / 2, 2.9, 4.4):
            du, dv = hz._direction(a)
            samples = hz._ray_samples(du, dv, math.hypot(23, 19) + 1.0, 100.0, R)
            got = horizon_points(z, 100.0, [p[0] for p in points], [p[1] for p in points], [a], h_obs)[:, 0]
            for (r, c), g in zip(points, got, strict=True):
                zo = z[r, c] + h_obs
                tt = hz._theta_tangent.py_func(zo, zmax, R)
                best = hz._ray_max_tan.py_func(
                    z, bmax, bbend, r, c, zo, du, dv, 100.0, samples, zmax, tt, R, np.zeros(5)
                )
                ref = math.atan(best) if best > -np.inf else -0.5 * math.pi
                assert abs(g - ref) < 1e-12, (r, c, a, h_obs)


def _stereo_unit(x, y, two_rk0):
    """Unit vectors of south polar stereographic map points (m): the projection's exact inverse."""
    xp, yp = x / two_rk0, y / two_rk0
    d = 1.0 + xp * xp + yp * yp
    return np.stack([2.0 * xp / d, 2.0 * yp / d, -(1.0 - xp * xp - yp * yp) / d], axis=-1)


def test_polar_stereographic_frame_gives_true_central_angles():
    # A rough DEM 520 km from the pole, where the stereographic scale is 1.022: the reference is a
    # brute-force march in 3-D (points every 0.004 cell along the ray, denser toward the observer,
    # placed on the sphere by the projection's exact inverse, elevation from the observer's radial up),
    # independent of the kernel.
    rng = np.random.default_rng(7)
    n, dx = 60, 2000.0
    z = np.cumsum(np.cumsum(rng.normal(0.0, 60.0, (n, n)), 0), 1) * 0.05
    z += 3000.0 * np.exp(-(((np.arange(n)[:, None] - 10) ** 2 + (np.arange(n)[None, :] - 45) ** 2) / 30.0))
    x0, y0 = 400_000.0, 300_000.0  # node (0, 0) from the pole; rows go toward -y (north-up)
    frame = (x0, y0, dx, -dx, 2.0 * R)
    pts = [(30, 30), (50, 12), (8, 20), (40, 55)]
    az = np.radians([10.0, 77.0, 145.0, 200.0, 290.0, 333.0])
    h_obs = 5.0  # a mast, so that no maximum sits at the observer's own node (where sampling cancels)
    got = horizon_points(z, dx, [p[0] for p in pts], [p[1] for p in pts], az, h_obs, map_frame=frame)
    flat = horizon_points(z, dx, [p[0] for p in pts], [p[1] for p in pts], az, h_obs)
    from scipy.ndimage import map_coordinates

    worst_new = worst_flat = 0.0
    for k, (r, c) in enumerate(pts):
        o = _stereo_unit(x0 + c * dx, y0 - r * dx, 2.0 * R) * (R + z[r, c] + h_obs)
        up = o / np.linalg.norm(o)
        for j, a in enumerate(az):
            du, dv = math.sin(a), -math.cos(a)
            tau = np.concatenate([np.geomspace(1e-3, 0.02, 100), np.arange(0.02, 2.0 * n, 0.004)])
            rr, cc = r + tau * dv, c + tau * du
            ok = (rr >= 0) & (rr <= n - 1) & (cc >= 0) & (cc <= n - 1)
            h = map_coordinates(z, [rr[ok], cc[ok]], order=1)
            p = _stereo_unit(x0 + cc[ok] * dx, y0 - rr[ok] * dx, 2.0 * R) * (R + h)[:, None]
            v = p - o
            ref = np.arcsin((v @ up) / np.linalg.norm(v, axis=1)).max()
            assert got[k, j] >= ref - 1e-9  # the exact march sees at least what fine sampling sees
            worst_new = max(worst_new, got[k, j] - ref)
            worst_flat = max(worst_flat, abs(flat[k, j] - ref))
    assert worst_new < 1e-5  # rad; what fine sampling can miss between its points
    assert worst_flat > 1e-3  # taking map distance as ground distance is wrong by more here
