"""Benchmark of TROPOMI NO2 regridding on ../shared/data/eo/tropomi_no2_l2_crop_matimba (real L2 pixels of
orbit 19594 around the Matimba power station, qa_value > 0.75 already applied).

Prints one line per figure (``name: value unit (target ...)``), issue 7's targets beside them:
- conservation of the column total (sum of column x pixel area, mol) on the 0.05 deg grid, in memory and
  read back from the written L3 NetCDF (target: 1e-9 relative), on a box that cuts the swath (grid total +
  the amount reported outside = pixel total), and on the 10 km India grid (the crop moved by +50 deg in
  latitude and longitude so that it falls on India);
- the overlap areas against an independent clipping engine (GEOS through shapely, which pyresample
  installs) in the same equal-area plane, and the pixel areas against geodesic polygon areas (PROJ's
  GeographicLib);
- throughput (valid pixels per second, best of several runs, setup included) on the crop and on a
  25-fold tiling of it, beside pyresample on the same input and grid: bucket averaging of pixel centres,
  elliptical weighted averaging (EWA, its swath-to-grid averaging) and nearest neighbour; with each peer's
  error in the column total (sum over cells of value x cell area, against the pixel total).

    python benchmarks/eo_no2.py
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kizuna.core.io import write_netcdf
from kizuna.eo.regrid import (
    Grid,
    equal_area_xy,
    latlon_grid,
    polygon_area,
    read_cell_grid,
    regrid_conservative,
)
from kizuna.eo.tropomi import l3_dataset, pixel_extent_deg, read_no2_l2

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("KIZUNA_SHARED_DATA", HERE.parents[1] / "shared" / "data")) / "eo"
CROP = DATA / "tropomi_no2_l2_crop_matimba" / "Matimba_S5P_RPRO_L2__NO2____20210725T110715.nc"
INDIA = DATA / "india_grid_10km" / "grid_india_10km_shapefiles.zip"
RES_DEG = 0.05
TARGET_REL = 1e-9


def line(name: str, value: object, unit: str = "", note: str = "") -> None:
    """Print one figure."""
    text = f"{name}: {value}" + (f" {unit}" if unit else "")
    print(text + (f" ({note})" if note else ""), flush=True)


def best_time(func: Callable[[], object], repeat: int) -> float:
    """Return the shortest wall time (s) of ``repeat`` calls."""
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - t0)
    return best


def tiled(lat_c: np.ndarray, lon_c: np.ndarray, values: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """Return k x k copies of the pixels shifted by the crop's extent (real values, more of them)."""
    la0, la1, lo0, lo1 = pixel_extent_deg(lat_c, lon_c)
    lats, lons, vals = [], [], []
    for a in range(k):
        for b in range(k):
            lats.append(lat_c + a * (la1 - la0))
            lons.append(lon_c + b * (lo1 - lo0))
            vals.append(values)
    return np.concatenate(lats), np.concatenate(lons), np.concatenate(vals)


def shapely_weights(lat_c: np.ndarray, lon_c: np.ndarray, grid: Grid) -> np.ndarray:
    """Return the overlap area of each cell with the pixels (m^2), clipped by GEOS in the equal-area plane."""
    import shapely

    x, y = equal_area_xy(lon_c, lat_c)
    pixels = shapely.polygons(np.stack([x, y], axis=-1))
    xe, ye = grid.x_edges, grid.y_edges
    weights = np.zeros(grid.shape)
    tree = shapely.STRtree(pixels)
    for i in range(grid.shape[0]):
        cells = shapely.box(xe[:-1], ye[i], xe[1:], ye[i + 1])
        cell_idx, pix_idx = tree.query(cells, predicate="intersects")
        areas = shapely.area(shapely.intersection(cells[cell_idx], pixels[pix_idx]))
        np.add.at(weights[i], cell_idx, areas)
    return weights


def pyresample_peers(
    lat2d: np.ndarray, lon2d: np.ndarray, no2_2d: np.ndarray, grid: Grid, repeat: int
) -> dict[str, tuple[float, np.ndarray]]:
    """Run pyresample's bucket average, EWA and nearest neighbour onto the lat/lon grid; return
    {method: (best time s, values on the grid (ny, nx) south to north)}."""
    import dask.array as da
    from pyresample import create_area_def, kd_tree
    from pyresample.bucket import BucketResampler
    from pyresample.ewa import fornav, ll2cr
    from pyresample.geometry import SwathDefinition

    ny, nx = grid.shape
    lo0, lo1 = grid.lon_edges_deg[0], grid.lon_edges_deg[-1]
    la0, la1 = grid.lat_edges_deg[0], grid.lat_edges_deg[-1]
    area = create_area_def("grid", "EPSG:4326", area_extent=(lo0, la0, lo1, la1), shape=(ny, nx))
    valid = np.isfinite(no2_2d)
    out: dict[str, tuple[float, np.ndarray]] = {}

    def bucket() -> np.ndarray:
        res = BucketResampler(area, da.from_array(lon2d[valid]), da.from_array(lat2d[valid]))
        return np.asarray(res.get_average(da.from_array(no2_2d[valid])).compute())

    def ewa() -> np.ndarray:
        swath = SwathDefinition(lons=lon2d.copy(), lats=lat2d.copy())
        _, cols, rows = ll2cr(swath, area)
        _, result = fornav(cols, rows, area, no2_2d.copy(), rows_per_scan=no2_2d.shape[0])
        return result

    def nearest() -> np.ndarray:
        swath = SwathDefinition(lons=lon2d[valid], lats=lat2d[valid])
        return kd_tree.resample_nearest(
            swath, no2_2d[valid], area, radius_of_influence=5000.0, fill_value=np.nan
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, func in (("bucket_average", bucket), ("ewa", ewa), ("nearest", nearest)):
            result = func()
            out[name] = (
                best_time(func, repeat),
                np.asarray(result, dtype=float)[::-1],
            )  # north-up -> south-up
    return out


def main() -> None:
    """Measure and print the NO2 regridding figures."""
    print(
        f"# eo_no2 on {platform.node()} ({platform.processor() or platform.machine()}), "
        f"{time.strftime('%Y-%m-%d %H:%M')}"
    )
    if not CROP.is_file():
        print(f"# data not found: {CROP} (set KIZUNA_SHARED_DATA)")
        return
    t0 = time.perf_counter()
    px = read_no2_l2(CROP)
    line(
        "no2_read_crop", f"{time.perf_counter() - t0:.3f}", "s", f"{px.n} valid of {px.n_pixels_file} pixels"
    )
    lat_c, lon_c, v = px.lat_corners_deg, px.lon_corners_deg, px.no2_mol_m2
    grid = latlon_grid(RES_DEG, pixel_extent_deg(lat_c, lon_c))
    regrid_conservative(v, lat_c, lon_c, grid)  # compile (numba cache) before timing
    r = regrid_conservative(v, lat_c, lon_c, grid)
    ny, nx = grid.shape
    line("no2_column_total_pixels", f"{r.pixels_total_mol:.10g}", "mol", f"{r.n_valid} pixels")
    line(
        "no2_conservation_latlon_0.05deg",
        f"{r.conservation_rel:.2e}",
        "relative",
        f"target <= {TARGET_REL:g}",
    )
    with tempfile.TemporaryDirectory() as tmp:
        import xarray as xr

        path = Path(tmp) / "L3.nc"
        write_netcdf(path, l3_dataset(r, grid, {"files": [{"file": CROP.name}], "qa_filter": px.qa_filter}))
        with xr.open_dataset(path) as ds:
            total_file = float((ds["nitrogendioxide_tropospheric_column"] * ds["weight"]).sum())
    rel_file = abs(total_file - r.pixels_total_mol) / abs(r.pixels_total_mol)
    line("no2_conservation_from_L3_netcdf", f"{rel_file:.2e}", "relative", "sum of mean x weight read back")
    sub = latlon_grid(RES_DEG, (-25.0, -22.0, 26.0, 30.0), snap=False)
    rs = regrid_conservative(v, lat_c, lon_c, sub)
    line(
        "no2_conservation_subbox",
        f"{rs.conservation_rel:.2e}",
        "relative",
        f"pieces kept + dropped = pixel areas; {rs.n_partly_outside} pixels partly, "
        f"{rs.n_outside} wholly outside, "
        f"{100 * rs.outside_mol / rs.pixels_total_mol:.1f} % of the total outside",
    )

    try:
        import shapely  # noqa: F401

        w_ref = shapely_weights(lat_c, lon_c, grid)
        diff = np.abs(r.weight_m2 - w_ref) / grid.cell_area_m2
        line("no2_overlap_vs_geos_max", f"{diff.max():.2e}", "of a cell area", "GEOS clipping, same plane")
    except ImportError:
        line("no2_overlap_vs_geos_max", "n/a", "", "shapely not installed")
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    a_geo = np.array(
        [abs(geod.polygon_area_perimeter(lo, la)[0]) for lo, la in zip(lon_c, lat_c, strict=True)]
    )
    xe, ye = equal_area_xy(lon_c, lat_c)
    rel_area = np.abs(np.abs(polygon_area(xe, ye)) / a_geo - 1.0)
    line("no2_pixel_area_vs_geodesic_max", f"{rel_area.max():.2e}", "relative", "GeographicLib polygons")

    repeat = 7
    t_ours = best_time(lambda: regrid_conservative(v, lat_c, lon_c, grid), repeat)
    line("no2_throughput_kizuna_latlon_crop", f"{px.n / t_ours:,.0f}", "pixels/s", f"{1e3 * t_ours:.1f} ms")
    if INDIA.is_file():
        india = read_cell_grid(INDIA)
        lat_i, lon_i = lat_c + 50.0, lon_c + 50.0
        ri = regrid_conservative(v, lat_i, lon_i, india)
        line(
            "no2_conservation_india10km",
            f"{ri.conservation_rel:.2e}",
            "relative",
            f"target <= {TARGET_REL:g}",
        )
        t_i = best_time(lambda: regrid_conservative(v, lat_i, lon_i, india), repeat)
        line("no2_throughput_kizuna_india10km_crop", f"{px.n / t_i:,.0f}", "pixels/s", f"{1e3 * t_i:.1f} ms")

    # the same input for kizuna and pyresample: the 2-D swath (pixel centres; NaN where qa failed)
    import netCDF4

    with netCDF4.Dataset(CROP) as ds:
        no2_2d = np.ma.filled(ds["NO2"][:].astype(float), np.nan)
        lat2d = np.ma.filled(ds["lat"][:].astype(float), np.nan)
        lon2d = np.ma.filled(ds["lon"][:].astype(float), np.nan)
    try:
        peers = pyresample_peers(lat2d, lon2d, no2_2d, grid, repeat)
    except ImportError:
        peers = {}
        line("no2_peer", "n/a", "", "pyresample not installed")
    ours_cell = float(np.nansum(r.mean_mol_m2 * grid.cell_area_m2))
    line(
        "no2_total_error_kizuna_cell_area",
        f"{(ours_cell - r.pixels_total_mol) / r.pixels_total_mol:+.2e}",
        "relative",
        "sum of mean x full cell area; partly covered edge cells count whole",
    )
    for name, (t, vals) in peers.items():
        total = float(np.nansum(vals * grid.cell_area_m2))
        err = (total - r.pixels_total_mol) / r.pixels_total_mol
        cells = int(np.isfinite(vals).sum())
        line(
            f"no2_throughput_pyresample_{name}_crop",
            f"{px.n / t:,.0f}",
            "pixels/s",
            f"{1e3 * t:.1f} ms; kizuna {t / t_ours:.2f}x as fast",
        )
        line(
            f"no2_total_error_pyresample_{name}",
            f"{err:+.2e}",
            "relative",
            f"{cells} cells with a value vs {int((r.weight_m2 > 0).sum())} for kizuna",
        )

    k = 5
    lat_t, lon_t, v_t = tiled(lat_c, lon_c, v, k)
    grid_t = latlon_grid(RES_DEG, pixel_extent_deg(lat_t, lon_t))
    rt = regrid_conservative(v_t, lat_t, lon_t, grid_t)
    t_big = best_time(lambda: regrid_conservative(v_t, lat_t, lon_t, grid_t), 3)
    line(
        "no2_conservation_tiled",
        f"{rt.conservation_rel:.2e}",
        "relative",
        f"{v_t.size} pixels, {grid_t.shape}",
    )
    line(
        "no2_throughput_kizuna_latlon_tiled", f"{v_t.size / t_big:,.0f}", "pixels/s", f"{1e3 * t_big:.0f} ms"
    )
    if peers:
        la0, la1, lo0, lo1 = pixel_extent_deg(lat_c, lon_c)
        rows, cols = lat2d.shape
        la = np.tile(lat2d, (k, k)) + np.repeat(np.arange(k) * (la1 - la0), rows)[:, None]
        lo = np.tile(lon2d, (k, k)) + np.repeat(np.arange(k) * (lo1 - lo0), cols)[None, :]
        no2 = np.tile(no2_2d, (k, k))
        peers_t = pyresample_peers(la, lo, no2, grid_t, 3)
        for name, (t, _) in peers_t.items():
            line(
                f"no2_throughput_pyresample_{name}_tiled",
                f"{v_t.size / t:,.0f}",
                "pixels/s",
                f"{1e3 * t:.0f} ms; kizuna {t / t_big:.2f}x as fast",
            )
    ny, nx = grid.shape
    print(f"# grid {ny} x {nx} cells at {RES_DEG} deg; pixel total {r.pixels_total_mol:.6g} mol")


if __name__ == "__main__":
    main()
