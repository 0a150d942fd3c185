"""Illumination maps of a polar DEM: horizons and Sun/Earth statistics for every cell near the pole,
split into map tiles that run through :func:`kizuna.core.parallel.run_tasks` (serially with all cores,
on local processes, or on a Dask cluster), and read back from the folder they are written to.

Each tile task carries the DEM it needs: the whole map, or (``pad_km``) the tile with a margin wide
enough to hold every slope that can rise above the tile's horizon (terrain 100-300 km away sets the
polar skyline), so that a 20 m map of 400 x 400 km can be cut into tasks of modest size.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from numpy.typing import NDArray

from kizuna.core import ephemeris as eph
from kizuna.core.parallel import run_tasks
from kizuna.core.raster import Raster, read_dem
from kizuna.errors import InputError
from kizuna.lunar.surface.horizon import NOT_COMPUTED, HorizonTable, compute_horizons, polar_map_frame
from kizuna.lunar.surface.illumination import (
    MapGeometry,
    VisibilityStats,
    _polar_crs,
    map_geometry,
    time_grid,
    visibility_stats,
)

__all__ = [
    "IlluminationMap",
    "STAT_LAYERS",
    "best_sites",
    "illumination_map",
    "load_illumination",
    "region_mask",
]

# Map layers written as GeoTIFF (file stem -> VisibilityStats field, and a unit conversion applied).
STAT_LAYERS = {
    "sun_fraction": "sun_fraction",
    "sun_time_fraction": "sun_time_fraction",
    "max_darkness_hours": "max_darkness_steps",
    "earth_fraction": "earth_fraction",
    "earth_time_fraction": "earth_time_fraction",
    "max_earth_outage_hours": "max_earth_outage_steps",
    "both_time_fraction": "both_time_fraction",
}


@dataclass(frozen=True, eq=False)
class IlluminationMap:
    """Sun and Earth visibility statistics of the cells near a pole of a DEM, with their horizons.

    ``layers`` maps each name of :data:`STAT_LAYERS` to a float array of the DEM's shape (hours for
    durations, fractions otherwise; NaN outside the region); ``psr`` is uint8 (1 never lit, 0 lit, 255
    outside the region). ``horizons`` covers ``window`` = (row0, row1, col0, col1) of the DEM.
    """

    dem: Raster
    region: NDArray[np.bool_]
    layers: dict[str, NDArray[np.float64]]
    psr: NDArray[np.uint8]
    horizons: HorizonTable
    window: tuple[int, int, int, int]
    times: NDArray[np.datetime64]
    step_hours: float
    observer_height_m: float
    timings_s: dict[str, float]

    def geometry(self) -> MapGeometry:
        """Return the MOON_ME geometry of the horizon window's cells (at the observer height)."""
        return map_geometry(self.dem, self.window, self.observer_height_m)

    @property
    def cell_area_m2(self) -> float:
        """Return the area of one grid cell in the map plane (m^2)."""
        t = self.dem.transform
        return abs(t.a * t.e)


def region_mask(dem: Raster, max_colatitude_deg: float) -> NDArray[np.bool_]:
    """Return True for DEM cells within max_colatitude_deg of the pole (e.g. 5 for poleward of 85 deg)."""
    import pyproj

    if not (math.isfinite(max_colatitude_deg) and 0.0 < max_colatitude_deg <= 90.0):
        raise InputError(f"max colatitude {max_colatitude_deg!r} deg: expected a number in (0, 90]")
    crs = _polar_crs(dem)
    x, y = dem.xy()
    xx, yy = np.meshgrid(x, y)
    _, lat = pyproj.Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True).transform(xx, yy)
    return np.abs(lat) >= 90.0 - max_colatitude_deg


def _tile_job(task: dict[str, Any]) -> dict[str, Any]:
    """Horizons and statistics of one tile (run by core.parallel); see illumination_map."""
    dem: Raster = task["dem"]
    r_off, c_off = task["offset"]
    r0, r1, c0, c1 = task["window"]
    local = (r0 - r_off, r1 - r_off, c0 - c_off, c1 - c_off)
    t0 = time.perf_counter()
    table = compute_horizons(
        dem.data,
        abs(dem.transform.a),
        task["n_azimuths"],
        task["observer_height_m"],
        window=local,
        mask=task["mask"],
        map_frame=polar_map_frame(dem),
    )
    t1 = time.perf_counter()
    geo = map_geometry(dem, local, task["observer_height_m"])
    cells = np.flatnonzero(task["mask"])
    st = visibility_stats(table, geo, task["sun"], task["earth"], task["step_s"], cells=cells)
    t2 = time.perf_counter()
    return {
        "window": task["window"],
        "horizons": table.elevation_q,
        "cells": cells,
        "stats": st,
        "seconds": (t1 - t0, t2 - t1),
    }


def _tiles(region: NDArray[np.bool_], tile_cells: int) -> list[tuple[int, int, int, int]]:
    """Windows of at most tile_cells x tile_cells covering the region's bounding box, skipping empty ones."""
    rows, cols = np.nonzero(region)
    if rows.size == 0:
        raise InputError("no DEM cell lies within the requested distance of the pole")
    out = []
    for a in range(rows.min(), rows.max() + 1, tile_cells):
        for b in range(cols.min(), cols.max() + 1, tile_cells):
            w = (a, min(a + tile_cells, rows.max() + 1), b, min(b + tile_cells, cols.max() + 1))
            if region[w[0] : w[1], w[2] : w[3]].any():
                out.append(w)
    return out


def _sub_dem(
    dem: Raster, window: tuple[int, int, int, int], pad: int | None
) -> tuple[Raster, tuple[int, int]]:
    """The DEM a tile needs: all of it (pad None), or the tile grown by pad cells, and its offset."""
    if pad is None:
        return dem, (0, 0)
    nr, nc = dem.shape
    a, b = max(0, window[0] - pad), min(nr, window[1] + pad)
    c, d = max(0, window[2] - pad), min(nc, window[3] + pad)
    t = dem.transform
    sub_t = t @ Affine.translation(c, a)
    return Raster(dem.data[a:b, c:d].copy(), sub_t, dem.crs, dem.units), (a, c)


def illumination_map(
    dem: Raster,
    start: Any,
    end: Any,
    step_hours: float = 6.0,
    *,
    max_colatitude_deg: float = 5.0,
    observer_height_m: float = 0.0,
    n_azimuths: int = 360,
    tile_cells: int = 128,
    pad_km: float | None = None,
    mode: str = "serial",
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> IlluminationMap:
    """Return Sun/Earth visibility statistics over [start, end) every step_hours for cells near the pole.

    Cells within ``max_colatitude_deg`` of the pole get horizons in ``n_azimuths`` azimuths at
    ``observer_height_m`` above the ground and statistics from DE421 + MOON_ME; the work is split into
    tiles of ``tile_cells`` square run by core.parallel (``mode``: serial, processes or dask).
    """
    t_start = time.perf_counter()
    _polar_crs(dem)
    if not np.all(np.isfinite(dem.data)):
        bad = np.argwhere(~np.isfinite(dem.data))[0]
        raise InputError(
            f"DEM has {int((~np.isfinite(dem.data)).sum())} NaN heights (first at row {bad[0]}, column "
            f"{bad[1]}): expected a DEM without holes (fill them first)"
        )
    t = dem.transform
    if abs(abs(t.a) - abs(t.e)) > 1e-9 * abs(t.a) or t.b != 0.0 or t.d != 0.0:
        raise InputError(f"DEM transform {tuple(t)[:6]}: expected square, axis-aligned cells")
    if not (math.isfinite(observer_height_m) and observer_height_m >= 0.0):
        raise InputError(f"observer height {observer_height_m!r} m: expected >= 0")
    if int(tile_cells) != tile_cells or tile_cells < 8:
        raise InputError(f"tile size {tile_cells!r} cells: expected an integer >= 8")
    times = time_grid(start, end, step_hours)
    sun = eph.sun_position_me(times)
    earth = eph.earth_position_me(times)
    t_eph = time.perf_counter()
    region = region_mask(dem, max_colatitude_deg)
    windows = _tiles(region, int(tile_cells))
    pad = None if pad_km is None else int(math.ceil(pad_km * 1000.0 / abs(t.a)))
    if pad is not None and pad < 0:
        raise InputError(f"tile pad {pad_km!r} km: expected >= 0")
    tasks = []
    for w in windows:
        sub, off = _sub_dem(dem, w, pad)
        tasks.append(
            {
                "dem": sub,
                "offset": off,
                "window": w,
                "mask": region[w[0] : w[1], w[2] : w[3]],
                "n_azimuths": int(n_azimuths),
                "observer_height_m": float(observer_height_m),
                "sun": sun,
                "earth": earth,
                "step_s": step_hours * 3600.0,
            }
        )
    results = run_tasks(
        _tile_job, tasks, mode=mode, scheduler=scheduler, n_workers=n_workers, progress=progress
    )
    rows, cols = np.nonzero(region)
    win = (int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1)
    hz = np.full((int(n_azimuths), win[1] - win[0], win[3] - win[2]), NOT_COMPUTED, dtype=np.int16)
    layers = {name: np.full(dem.shape, np.nan) for name in STAT_LAYERS}
    psr = np.full(dem.shape, 255, dtype=np.uint8)
    t_hz = t_st = 0.0
    for res in results:
        r0, r1, c0, c1 = res["window"]
        hz[:, r0 - win[0] : r1 - win[0], c0 - win[2] : c1 - win[2]] = res["horizons"]
        rr, cc = np.unravel_index(res["cells"], (r1 - r0, c1 - c0))
        rr, cc = rr + r0, cc + c0
        st: VisibilityStats = res["stats"]
        for name, field in STAT_LAYERS.items():
            v = getattr(st, field)
            layers[name][rr, cc] = v * step_hours if name.endswith("_hours") else v
        psr[rr, cc] = st.psr.astype(np.uint8)
        t_hz += res["seconds"][0]
        t_st += res["seconds"][1]
    table = HorizonTable(hz, abs(t.a), float(observer_height_m))
    timings = {
        "ephemeris_s": t_eph - t_start,
        "horizons_task_s": t_hz,
        "statistics_task_s": t_st,
        "total_s": time.perf_counter() - t_start,
    }
    return IlluminationMap(
        dem, region, layers, psr, table, win, times, float(step_hours), float(observer_height_m), timings
    )


def best_sites(imap: IlluminationMap, n: int = 10, min_separation_km: float = 5.0) -> list[dict[str, float]]:
    """Return the n best-lit cells (highest mean solar-disc fraction), at least min_separation_km apart."""
    import pyproj

    sf = imap.layers["sun_fraction"]
    order = np.argsort(np.where(np.isfinite(sf), -sf, np.inf), axis=None)
    x, y = imap.dem.xy()
    crs = _polar_crs(imap.dem)
    to_geo = pyproj.Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    picked: list[tuple[float, float]] = []
    out = []
    sep = min_separation_km * 1000.0
    for flat in order:
        r, c = np.unravel_index(flat, sf.shape)
        if not np.isfinite(sf[r, c]):
            break
        px, py = float(x[c]), float(y[r])
        if any(math.hypot(px - qx, py - qy) < sep for qx, qy in picked):
            continue
        picked.append((px, py))
        lon, lat = to_geo.transform(px, py)
        out.append(
            {
                "lat_deg": float(lat),
                "lon_deg": float(lon % 360.0),
                "row": int(r),
                "col": int(c),
                "sun_fraction": float(sf[r, c]),
                "max_darkness_hours": float(imap.layers["max_darkness_hours"][r, c]),
                "earth_fraction": float(imap.layers["earth_fraction"][r, c]),
                "both_time_fraction": float(imap.layers["both_time_fraction"][r, c]),
            }
        )
        if len(out) >= n:
            break
    return out


def load_illumination(folder: str | Path) -> IlluminationMap:
    """Read an illumination map written by ``kizuna lunar surface illumination`` (its output folder)."""
    import rasterio

    d = Path(folder)
    meta_path = d / "summary.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{meta_path}: cannot read ({exc}); expected an illumination output folder") from exc
    try:
        dem_path = Path(meta["dem"])
        window = tuple(int(v) for v in meta["horizon_window"])
        step_hours = float(meta["step_hours"])
        observer_height_m = float(meta["observer_height_m"])
        start, end = meta["start"], meta["end"]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"{meta_path}: field {exc} missing or malformed; expected an illumination summary"
        ) from exc
    dem = read_dem(dem_path)
    layers = {}
    for name in STAT_LAYERS:
        p = d / f"{name}.tif"
        try:
            with rasterio.open(p) as ds:
                layers[name] = ds.read(1).astype(np.float64)
        except rasterio.errors.RasterioIOError as exc:
            raise InputError(
                f"{p}: cannot read ({exc}); expected the layer written with the summary"
            ) from exc
        if layers[name].shape != dem.shape:
            raise InputError(f"{p}: shape {layers[name].shape}; expected the DEM's {dem.shape}")
    try:
        with rasterio.open(d / "psr.tif") as ds:
            psr = ds.read(1).astype(np.uint8)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(
            f"{d / 'psr.tif'}: cannot read ({exc}); expected the PSR map written with the summary"
        ) from exc
    if psr.shape != dem.shape:
        raise InputError(f"{d / 'psr.tif'}: shape {psr.shape}; expected the DEM's {dem.shape}")
    table = HorizonTable.load(d / "horizons.npz")
    if table.shape != (window[1] - window[0], window[3] - window[2]):
        raise InputError(f"{d / 'horizons.npz'}: shape {table.shape} does not match the window {window}")
    return IlluminationMap(
        dem,
        psr != 255,
        layers,
        psr,
        table,
        window,  # type: ignore[arg-type]
        time_grid(start, end, step_hours),
        step_hours,
        observer_height_m,
        {},
    )
