"""Conservative regridding of pixel quadrilaterals: areas against PROJ and GeographicLib, analytic splits,
the conservation invariant on real TROPOMI pixels, the antimeridian, grid edges and the 10 km India grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyproj import CRS, Geod, Transformer

from kizuna.eo.regrid import (
    combine,
    equal_area_xy,
    latlon_grid,
    polygon_area,
    read_cell_grid,
    regrid_conservative,
)
from kizuna.eo.tropomi import No2Pixels, pixel_extent_deg, read_no2_l2
from kizuna.errors import InputError

CROP = Path("eo") / "tropomi_no2_l2_crop_matimba" / "Matimba_S5P_RPRO_L2__NO2____20210725T110715.nc"
INDIA = Path("eo") / "india_grid_10km"

# Total area of the WGS84 ellipsoid (m^2), from GeographicLib's test suite (Karney 2013, planimeter tests:
# "a0 = 510065621724088.5093; ellipsoid area").
WGS84_AREA_M2 = 510065621724088.5093


def square(lat0: float, lon0: float, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the corners (1, 4) of a lat/lon square, counter-clockwise from its south-west corner."""
    lat = np.array([[lat0, lat0, lat0 + size, lat0 + size]])
    lon = np.array([[lon0, lon0 + size, lon0 + size, lon0]])
    return lat, lon


@pytest.fixture(scope="module")
def crop(shared_data: Path) -> No2Pixels:
    """The real TROPOMI pixels of the Matimba crop (10,310 valid)."""
    return read_no2_l2(shared_data / CROP)


def test_equal_area_plane_is_proj_cea_and_global_area() -> None:
    # PROJ's Lambert cylindrical equal-area on WGS84 (true scale at the equator) is the same plane
    lon = np.array([0.0, 10.0, -120.0, 179.9, 45.0])
    lat = np.array([0.0, 30.0, -60.0, 89.0, 23.5])
    cea = CRS.from_proj4("+proj=cea +ellps=WGS84 +lat_ts=0 +lon_0=0 +units=m")
    xp, yp = Transformer.from_crs(4326, cea, always_xy=True).transform(lon, lat)
    x, y = equal_area_xy(lon, lat)
    np.testing.assert_allclose(x, xp, atol=1e-6)
    np.testing.assert_allclose(y, yp, atol=1e-6)
    # a global 1 deg grid covers the whole ellipsoid: GeographicLib's WGS84 area
    cells = latlon_grid(1.0, (-90.0, 90.0, -180.0, 180.0)).cell_area_m2
    assert cells.shape == (180, 360)
    assert cells.sum() == pytest.approx(WGS84_AREA_M2, rel=1e-12)


def test_cell_area_against_geodesic_polygon() -> None:
    # A cell bounded by two meridians and two parallels: GeographicLib's polygon area with the parallels
    # traced by 8001 points each (the geodesic chords then differ from the parallels by < 1e-12 relative).
    lon = np.linspace(80.0, 81.0, 8001)
    plon = np.concatenate([lon, lon[::-1]])
    plat = np.concatenate([np.full(lon.size, 20.0), np.full(lon.size, 21.0)])
    ref = abs(Geod(ellps="WGS84").polygon_area_perimeter(plon, plat)[0])
    area = latlon_grid(1.0, (20.0, 21.0, 80.0, 81.0)).cell_area_m2
    assert area.shape == (1, 1)
    assert area[0, 0] == pytest.approx(ref, rel=1e-11)


def test_pixel_equal_to_a_cell_and_quarter_split() -> None:
    grid = latlon_grid(1.0, (-2.0, 2.0, -2.0, 2.0))
    # a pixel that is exactly cell (row 2, col 3): all of its value and area land there
    lat, lon = square(0.0, 1.0, 1.0)
    r = regrid_conservative(np.array([5e-5]), lat, lon, grid)
    assert np.count_nonzero(r.weight_m2) == 1
    assert r.weight_m2[2, 3] == pytest.approx(grid.cell_area_m2[2, 3], rel=1e-13)
    assert r.mean_mol_m2[2, 3] == pytest.approx(5e-5, rel=1e-13)
    # a square centred on the node (0, 0): by symmetry about the equator and the meridian, each of the
    # four cells around the node gets a quarter of it
    lat, lon = square(-0.5, -0.5, 1.0)
    r = regrid_conservative(np.array([1.0]), lat, lon, grid)
    quarters = r.weight_m2[1:3, 1:3]
    np.testing.assert_allclose(quarters, r.pixels_area_m2 / 4, rtol=1e-12)
    assert np.count_nonzero(r.weight_m2) == 4


def test_area_weighted_mean_of_two_pixels() -> None:
    # Two pixels share one 1 x 1 deg cell: 0.75 and 0.25 of its width (x = a lon is linear in longitude,
    # so these are area fractions exactly); the cell's mean is 0.75 x 1 + 0.25 x 3 = 1.5.
    grid = latlon_grid(1.0, (10.0, 11.0, 20.0, 21.0))
    lat = np.array([[10.0, 10.0, 11.0, 11.0], [10.0, 10.0, 11.0, 11.0]])
    lon = np.array([[20.0, 20.75, 20.75, 20.0], [20.75, 21.0, 21.0, 20.75]])
    r = regrid_conservative(np.array([1.0, 3.0]), lat, lon, grid)
    assert r.mean_mol_m2[0, 0] == pytest.approx(1.5, rel=1e-13)
    assert r.n_pixels[0, 0] == 2
    assert r.weight_m2[0, 0] == pytest.approx(grid.cell_area_m2[0, 0], rel=1e-13)


def test_antimeridian_pixel() -> None:
    # A 0.2 deg square from 179.9 E to 179.9 W, symmetric about 180: half of it on each side.
    lat, lon = square(-0.1, 179.9, 0.2)
    lon = np.where(lon > 180.0, lon - 360.0, lon)  # as written in L2 files: 179.9 and -179.9
    world = latlon_grid(1.0, (-1.0, 1.0, -180.0, 180.0))
    r = regrid_conservative(np.array([2.0]), lat, lon, world)
    assert r.n_partly_outside == 0 and r.n_outside == 0
    west_end = r.weight_m2[:, -1].sum()  # the column 179..180
    east_end = r.weight_m2[:, 0].sum()  # the column -180..-179
    assert west_end == pytest.approx(r.pixels_area_m2 / 2, rel=1e-12)
    assert east_end == pytest.approx(r.pixels_area_m2 / 2, rel=1e-12)
    # a box across the antimeridian (LONMIN > LONMAX) holds it whole in its middle columns
    box = latlon_grid(0.1, (-0.2, 0.2, 179.8, -179.8))
    assert box.lon_edges_deg[0] == pytest.approx(179.8) and box.lon_edges_deg[-1] == pytest.approx(180.2)
    rb = regrid_conservative(np.array([2.0]), lat, lon, box)
    assert rb.conservation_rel < 1e-12 and rb.outside_area_m2 == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(rb.weight_m2.sum(axis=0)[1:3], r.pixels_area_m2 / 2, rtol=1e-12)


def test_pixel_partly_outside_is_reported() -> None:
    # A square straddling the grid's western edge by exactly half its width (x linear in longitude)
    grid = latlon_grid(0.5, (0.0, 1.0, 10.0, 11.0))
    lat, lon = square(0.25, 9.75, 0.5)
    r = regrid_conservative(np.array([1e-4]), lat, lon, grid)
    assert r.n_partly_outside == 1 and r.n_outside == 0
    assert r.outside_area_m2 == pytest.approx(r.pixels_area_m2 / 2, rel=1e-12)
    assert r.grid_total_mol + r.outside_mol == pytest.approx(r.pixels_total_mol, rel=1e-12)
    # a pixel wholly beyond the grid, and one whose corners cross (a bow tie), are counted
    lat2, lon2 = square(5.0, 5.0, 0.5)
    bow = (np.array([[0.3, 0.3, 0.6, 0.6]]), np.array([[10.2, 10.6, 10.2, 10.6]]))
    r2 = regrid_conservative(
        np.array([1.0, 1.0, 1.0]),
        np.concatenate([lat, lat2, bow[0]]),
        np.concatenate([lon, lon2, bow[1]]),
        grid,
    )
    assert (r2.n_valid, r2.n_outside, r2.n_bad_corners) == (2, 1, 1)


def test_conservation_on_real_pixels(crop: No2Pixels) -> None:
    # Issue 7: the column total (sum of column x pixel area) is conserved to 1e-9 relative when the grid
    # covers all pixels; the cell weights add up to the pixel areas.
    v, lat, lon = crop.no2_mol_m2, crop.lat_corners_deg, crop.lon_corners_deg
    extent = pixel_extent_deg(lat, lon)
    for res in (0.05, 0.137):
        grid = latlon_grid(res, extent)
        r = regrid_conservative(v, lat, lon, grid)
        assert r.n_valid == 10_310 and r.n_bad_corners == 0 and r.n_outside == 0
        assert abs(r.grid_total_mol - r.pixels_total_mol) <= 1e-9 * abs(r.pixels_total_mol)
        assert r.weight_m2.sum() == pytest.approx(r.pixels_area_m2, rel=1e-9)
        # no cell is covered more than once over (pixels of one orbit tile the ground; their corners
        # are shared up to float32 rounding of the file)
        assert (r.weight_m2 / grid.cell_area_m2).max() < 1.001
    # a box that cuts the swath: what stays plus what is reported outside is the pixel total
    sub = latlon_grid(0.05, (-25.0, -22.0, 26.0, 30.0), snap=False)
    rs = regrid_conservative(v, lat, lon, sub)
    assert rs.n_partly_outside > 0 and rs.n_outside > 0
    assert abs(rs.grid_total_mol + rs.outside_mol - rs.pixels_total_mol) <= 1e-9 * rs.pixels_total_mol
    # pixel areas against GeographicLib's geodesic polygons (edges straight in the equal-area plane
    # instead of geodesics: a difference of order 1e-7 for 5 x 4 km pixels)
    geod = Geod(ellps="WGS84")
    k = np.arange(0, crop.n, 500)
    ref = np.array([abs(geod.polygon_area_perimeter(lon[i], lat[i])[0]) for i in k])
    x, y = equal_area_xy(lon[k], lat[k])
    np.testing.assert_allclose(np.abs(polygon_area(x, y)), ref, rtol=2e-7)
    # two orbits summed: the combined mean is their area-weighted mean
    both = combine([r, r])
    np.testing.assert_allclose(both.mean_mol_m2, r.mean_mol_m2, rtol=1e-12)
    assert both.n_orbits.max() == 2


def test_latlon_grid_rejects_bad_options() -> None:
    with pytest.raises(InputError, match="res_deg"):
        latlon_grid(0.0, (0.0, 1.0, 0.0, 1.0))
    with pytest.raises(InputError, match="latitudes"):
        latlon_grid(0.1, (10.0, 5.0, 0.0, 1.0))


def test_india_grid(shared_data: Path, crop: No2Pixels) -> None:
    grid = read_cell_grid(shared_data / INDIA / "grid_india_10km_shapefiles.zip")
    # the grid's own files: 33,074 cells (one row each in grid_region.parquet, the same ids), 10 km
    # squares on a 328 x 287 lattice in the .prj's Lambert conformal conic
    ids = pd.read_parquet(shared_data / INDIA / "grid_region.parquet")["grid_id"].to_numpy()
    assert int(grid.cell_ok.sum()) == 33_074 == ids.size
    assert set(grid.cell_id[grid.cell_ok].tolist()) == set(ids.tolist())
    assert np.allclose(np.diff(grid.x_edges), 10_000.0) and np.allclose(np.diff(grid.y_edges), 10_000.0)
    assert grid.shape == (328, 287) and "Lambert" in grid.crs
    # two cells, one above the other, near Kanyakumari (8.5 N 77.5 E), where the projection's area scale
    # changes fastest (1 % per degree of latitude)
    ok2 = grid.cell_ok[:-1] & grid.cell_ok[1:]
    i, j = np.unravel_index(
        np.argmin(np.where(ok2, np.abs(grid.lat_deg[:-1] - 8.5) + np.abs(grid.lon_deg[:-1] - 77.5), 1e9)),
        ok2.shape,
    )
    to_ll = Transformer.from_crs(CRS.from_user_input(grid.crs), 4326, always_xy=True)
    # a cell's area on the ellipsoid: GeographicLib's area of its outline (edges traced by 200 points)
    t = np.linspace(0.0, 1.0, 201)[:-1]
    x0, x1, y0, y1 = grid.x_edges[j], grid.x_edges[j + 1], grid.y_edges[i], grid.y_edges[i + 1]
    xs = np.concatenate([x0 + (x1 - x0) * t, np.full(t.size, x1), x1 - (x1 - x0) * t, np.full(t.size, x0)])
    ys = np.concatenate([np.full(t.size, y0), y0 + (y1 - y0) * t, np.full(t.size, y1), y1 - (y1 - y0) * t])
    ref = abs(Geod(ellps="WGS84").polygon_area_perimeter(*to_ll.transform(xs, ys))[0])
    assert grid.cell_area_m2[i, j] == pytest.approx(ref, rel=2e-6)
    # a pixel that is exactly these two cells (corners mapped to lat/lon) covers each of them once: the
    # area factor is taken linear across the pixel (a constant factor would give 1 -+ 4e-4 here)
    clon, clat = to_ll.transform([x0, x1, x1, x0], [y0, y0, grid.y_edges[i + 2], grid.y_edges[i + 2]])
    two = regrid_conservative(np.array([1e-4]), np.array([clat]), np.array([clon]), grid)
    cover = two.weight_m2[i : i + 2, j] / grid.cell_area_m2[i : i + 2, j]
    np.testing.assert_allclose(cover, 1.0, atol=2e-6)
    assert two.weight_m2.sum() == pytest.approx(two.weight_m2[i : i + 2, j].sum(), rel=1e-12)
    # the Matimba pixels moved 50 deg north and east fall on India: the total is conserved there too,
    # and equals their total on a latitude/longitude grid (the same pixel areas)
    v, plat, plon = crop.no2_mol_m2, crop.lat_corners_deg + 50.0, crop.lon_corners_deg + 50.0
    r = regrid_conservative(v, plat, plon, grid)
    assert r.n_outside == 0 and r.n_partly_outside == 0
    assert abs(r.grid_total_mol - r.pixels_total_mol) <= 1e-9 * abs(r.pixels_total_mol)
    rl = regrid_conservative(v, plat, plon, latlon_grid(0.1, pixel_extent_deg(plat, plon)))
    assert r.pixels_total_mol == pytest.approx(rl.pixels_total_mol, rel=1e-12)


def test_conservation_check_sees_a_lossy_clipping(monkeypatch: pytest.MonkeyPatch) -> None:
    # conservation_rel compares the clipped pieces with the pixel areas from the corners (computed apart),
    # so a clipping that loses 0.1 % of every piece shows as 1e-3, although the grid total plus the amount
    # reported outside still equals the pixel total (outside_mol is defined as what the grid did not get).
    import kizuna.eo.regrid as regrid

    grid = latlon_grid(0.5, (0.0, 2.0, 10.0, 12.0))
    lat, lon = square(0.3, 10.3, 0.9)
    exact = regrid_conservative(np.array([2e-4]), lat, lon, grid)
    assert exact.conservation_rel < 1e-14
    real = regrid._run_kernel

    def lossy(xg, yg, v, s0, sx, sy, g, period):
        return real(xg, yg, v, 0.999 * s0, 0.999 * sx, 0.999 * sy, g, period)

    monkeypatch.setattr(regrid, "_run_kernel", lossy)
    r = regrid_conservative(np.array([2e-4]), lat, lon, grid)
    assert r.conservation_rel == pytest.approx(1e-3, rel=1e-9)
    assert r.grid_total_mol + r.outside_mol == pytest.approx(r.pixels_total_mol, rel=1e-12)
