"""Benchmark of south-pole surface planning on the built-in 1.6 km LOLA south-polar DEM.

Prints one line per figure (``name: value unit``):
- the main job: horizons (360 azimuths) and Sun/Earth statistics for every cell poleward of 85 S over
  one 18.6-year nodal cycle (2027-01-01 .. 2045-08-01) at 6-h steps, seconds (median of ``--repeats``);
  the horizon table's size in memory and on disk (compressed .npz);
- the baseline beside it: a plain numpy horizon method (every cell at once, one azimuth at a time,
  bilinear heights at half-cell steps to the map edge) on ``--baseline-azimuths`` of the 360
  azimuths, timed and scaled to 360;
- where the best-lit cell lies against Gläser et al. (2014): 89.45 S, 222.7 E on the
  Shackleton-de Gerlache connecting ridge (figure: within 2 cells);
- the total PSR area poleward of 85 S;
- Sun and Earth directions against SPICE's spkcpo (figure: within 0.001 deg);
- route costs against a Dijkstra reference (scipy.sparse.csgraph) on a DEM window (figure: 0 % gap).

    python benchmarks/lunar_surface.py             # about 3 min on 2 cores
    python benchmarks/lunar_surface.py --repeats 1 --baseline-azimuths 6
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from kizuna.core import ephemeris as eph
from kizuna.core.raster import read_dem
from kizuna.lunar.surface import illumination as ill
from kizuna.lunar.surface.cli import builtin_dem_path
from kizuna.lunar.surface.illumination_map import best_sites, illumination_map
from kizuna.lunar.surface.traverse import RoverModel, plan_static

GLASER_2014 = (-89.45, 222.7)  # best-lit point on the connecting ridge (lat, lon E), Gläser et al. 2014


def line(name: str, value: object, unit: str = "") -> None:
    """Print one figure."""
    if isinstance(value, float):
        value = f"{value:.4g}"
    print(f"{name}: {value} {unit}".rstrip(), flush=True)


def numpy_horizons(
    z: np.ndarray, dx: float, rows: np.ndarray, cols: np.ndarray, az: np.ndarray
) -> np.ndarray:
    """The plain numpy baseline: horizon elevation (rad) of the given nodes in the given grid azimuths."""
    from scipy.ndimage import map_coordinates

    radius = 1_737_400.0
    nr, nc = z.shape
    zo = z[rows, cols]
    out = np.full((az.size, rows.size), -np.pi / 2)
    tau = np.arange(0.5, math.hypot(nr, nc), 0.5)
    for k, a in enumerate(az):
        du, dv = math.sin(a), -math.cos(a)
        best = np.full(rows.size, -np.inf)
        for t in tau:
            v = rows + t * dv
            u = cols + t * du
            ok = (v >= 0) & (v <= nr - 1) & (u >= 0) & (u <= nc - 1)
            if not ok.any():
                break
            h = map_coordinates(z, [v[ok], u[ok]], order=1)
            th = t * dx / radius
            el = np.arctan2(h * np.cos(th) - radius * (1 - np.cos(th)) - zo[ok], (radius + h) * np.sin(th))
            best[ok] = np.maximum(best[ok], el)
        out[k] = best
    return out


def main() -> None:
    """Run the surface-planning benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=2, help="runs of the main job (median reported)")
    ap.add_argument("--baseline-azimuths", type=int, default=12, help="azimuths the numpy baseline runs")
    args = ap.parse_args()
    line(
        "machine",
        f"{platform.node()} {platform.machine()} cpus={os.cpu_count()} python={platform.python_version()}",
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    line("commit", commit or "unknown")
    dem = read_dem(builtin_dem_path())
    dx = abs(dem.transform.a)
    # warm the compiled kernels on a small job, so that the timings below are of the work itself
    illumination_map(dem, "2027-01-01", "2027-01-05", 6.0, max_colatitude_deg=0.2)
    times_s = []
    imap = None
    for _ in range(max(1, args.repeats)):
        imap = illumination_map(dem, "2027-01-01", "2045-08-01", 6.0, max_colatitude_deg=5.0, tile_cells=256)
        times_s.append(imap.timings_s["total_s"])
    assert imap is not None
    cells = int(imap.region.sum())
    line("cells poleward of 85 S", cells)
    line("time steps (2027-01-01 .. 2045-08-01, 6 h)", int(imap.times.size))
    line("horizons + illumination statistics, median", float(np.median(times_s)), "s")
    line("  of which horizons (last run)", imap.timings_s["horizons_task_s"], "s")
    line("  of which statistics (last run)", imap.timings_s["statistics_task_s"], "s")
    line("  of which ephemeris (last run)", imap.timings_s["ephemeris_s"], "s")
    hz = imap.horizons.elevation_q
    line("horizon table in memory (window, int16)", hz.nbytes / 1e6, "MB")
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "h.npz"
        imap.horizons.save(p)
        line("horizon table on disk (.npz)", p.stat().st_size / 1e6, "MB")

    # baseline: plain numpy horizons on a subset of azimuths, scaled to 360
    rows, cols = np.nonzero(imap.region)
    az = np.arange(args.baseline_azimuths) * (2 * np.pi / args.baseline_azimuths) + 0.01
    t0 = time.perf_counter()
    base = numpy_horizons(dem.data, dx, rows, cols, az)
    t_base = (time.perf_counter() - t0) * 360 / az.size
    line(f"numpy baseline horizons, {az.size} azimuths scaled to 360", t_base, "s")
    from kizuna.lunar.surface.horizon import horizon_points

    horizon_points(dem.data, dx, rows[:4], cols[:4], az[:1])  # compile before timing
    t0 = time.perf_counter()
    mine = horizon_points(dem.data, dx, rows, cols, az)
    t_mine = (time.perf_counter() - t0) * 360 / az.size
    line(f"kizuna horizons, same {az.size} azimuths scaled to 360", t_mine, "s")
    line("speed-up of kizuna horizons over the numpy baseline", t_base / t_mine, "x")
    diff = np.degrees(mine.T - base)
    diff = diff[np.isfinite(diff)]
    line("kizuna minus baseline horizon, median", float(np.median(diff)), "deg")
    line(
        "kizuna minus baseline horizon, 1st and 99th percentiles",
        f"{np.percentile(diff, 1):.4f} {np.percentile(diff, 99):.4f}",
        "deg",
    )
    # the baseline samples heights every half cell; the exact march also takes every grid-line crossing,
    # the peaks inside cells and the slope at the observer's own cell, so it sees at least as high
    line("kizuna minus baseline horizon, min", float(diff.min()), "deg")

    # best-lit cell against Gläser et al. 2014
    best = best_sites(imap, 5)
    import pyproj

    crs = ill._polar_crs(dem)
    to_map = pyproj.Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True)
    gx, gy = to_map.transform(GLASER_2014[1], GLASER_2014[0])
    bx, by = to_map.transform(best[0]["lon_deg"], best[0]["lat_deg"])
    line("best-lit cell (lat, lon E)", f"{best[0]['lat_deg']:.3f}, {best[0]['lon_deg']:.2f}")
    line("best-lit cell mean solar-disc fraction", best[0]["sun_fraction"])
    line("best-lit cell longest darkness", best[0]["max_darkness_hours"] / 24.0, "d")
    line("best-lit cell distance to Glaser 2014 ridge point", math.hypot(gx - bx, gy - by) / dx, "cells")
    for k, s in enumerate(best[1:], start=2):
        line(f"site {k}", f"{s['lat_deg']:.3f}, {s['lon_deg']:.2f} lit {s['sun_fraction']:.3f}")
    psr = int((imap.psr == 1).sum())
    line("PSR area poleward of 85 S", psr * imap.cell_area_m2 / 1e6, "km^2")
    line("PSR cells poleward of 85 S", psr)

    # directions against SPICE
    import spiceypy as spice

    geo = imap.geometry()
    rng = np.random.default_rng(0)
    win_cells = np.flatnonzero(imap.region[imap.window[0] : imap.window[1], imap.window[2] : imap.window[3]])
    tsel = imap.times[rng.choice(imap.times.size, 40, replace=False)]
    worst = {"SUN": 0.0, "EARTH": 0.0}
    for target, func in (("SUN", eph.sun_position_me), ("EARTH", eph.earth_position_me)):
        centre = func(tsel)
        for k, t in enumerate(tsel):
            c = rng.choice(win_cells, 5, replace=False)
            azs, els = ill.sky_azel(geo, np.repeat(centre[k][None], 5, 0), c)
            b = geo.basis.reshape(-1, 3, 3)[c]
            v = (np.cos(els) * np.sin(azs))[:, None] * b[:, 0] + (np.cos(els) * np.cos(azs))[:, None] * b[
                :, 1
            ]
            v += np.sin(els)[:, None] * b[:, 2]
            et = float(eph.utc_to_et(t))
            for j, cell in enumerate(c):
                site_km = geo.r_me_m.reshape(-1, 3)[cell] / 1000.0
                ref = spice.spkcpo(target, et, "MOON_ME", "OBSERVER", "LT+S", site_km, "MOON", "MOON_ME")[0][
                    :3
                ]
                ang = math.degrees(math.atan2(np.linalg.norm(np.cross(v[j], ref)), np.dot(v[j], ref)))
                worst[target] = max(worst[target], ang)
    line("Sun direction vs SPICE spkcpo, max over 200 cell-times", worst["SUN"], "deg")
    line("Earth direction vs SPICE spkcpo, max over 200 cell-times", worst["EARTH"], "deg")

    # routes against scipy's Dijkstra on a window of the DEM
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    z = dem.data[300:460, 300:460]
    rover = RoverModel(speed_m_s=0.2, max_slope_deg=12.0)
    nr, nc = z.shape
    src, dst, w = [], [], []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1), (0, -1), (-1, 0), (-1, -1), (-1, 1)):
        r0, r1 = max(0, -dr), nr - max(0, dr)
        c0, c1 = max(0, -dc), nc - max(0, dc)
        a = z[r0:r1, c0:c1]
        b2 = z[r0 + dr : r1 + dr, c0 + dc : c1 + dc]
        horiz = dx * math.hypot(dr, dc)
        ok = np.degrees(np.arctan(np.abs(b2 - a) / horiz)) <= rover.max_slope_deg
        rr, cc = np.nonzero(ok)
        src.append((rr + r0) * nc + cc + c0)
        dst.append((rr + r0 + dr) * nc + cc + c0 + dc)
        w.append(np.hypot(horiz, (b2 - a)[ok]) / rover.speed_m_s)
    g = coo_matrix(
        (np.concatenate(w), (np.concatenate(src), np.concatenate(dst))), shape=(nr * nc,) * 2
    ).tocsr()
    ref = dijkstra(g, indices=[80 * nc + 80])[0]
    gaps = []
    for goal in rng.choice(nr * nc, 30, replace=False):
        route = plan_static(z, dx, (80, 80), divmod(int(goal), nc), rover)
        if np.isfinite(ref[goal]):
            gaps.append(abs(route.total_time_s - ref[goal]) / ref[goal] if ref[goal] > 0 else 0.0)
        else:
            gaps.append(0.0 if not route.reachable else 1.0)
    line("static route cost vs scipy Dijkstra, max gap over 30 goals", 100.0 * max(gaps), "%")


if __name__ == "__main__":
    main()
