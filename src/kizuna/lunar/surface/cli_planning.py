"""Planning commands of ``kizuna lunar surface`` that read an illumination map folder: sites, traverse,
night and drill.

:func:`register` adds them to the surface command group. Each reads the folder written by
``kizuna lunar surface illumination --out DIR`` (``--from DIR``), calls the library, writes its outputs
into a folder that replaces ``--out`` whole at the end (nothing partial is left on error) and prints a
one-line summary on stderr (not with ``kizuna --quiet``). Errors are raised, not printed: the top-level
``kizuna`` command turns :class:`kizuna.errors.InputError` into one line and exit code 2.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kizuna.core.console import quiet_enabled, say
from kizuna.core.progress import progress_bar
from kizuna.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from kizuna.core.raster import Raster
    from kizuna.lunar.surface.illumination_map import IlluminationMap

# The library modules (numpy, pandas, numba kernels, rasterio, matplotlib) are imported inside the commands,
# so that starting ``kizuna`` does not pay for them.

__all__ = ["drill", "night", "register", "sites", "traverse"]

# Option defaults restated from the library so that the help needs no import of it; a test checks that
# they stay equal to kizuna.lunar.surface.drill.DEFAULT_BACKGROUND_W_M2 and thermal.DRILL_DEPTH_M.
DEFAULT_BACKGROUND_W_M2 = 0.5
DRILL_DEPTH_M = 1.5

FromDir = Annotated[
    Path,
    typer.Option(
        "--from", help="Folder written by `kizuna lunar surface illumination --out` (summary.json, *.tif)."
    ),
]
OutDir = Annotated[Path, typer.Option("--out", "-o", help="Output folder (replaced whole when done).")]


def register(app: typer.Typer) -> None:
    """Add the sites, traverse, night and drill commands to a ``kizuna lunar surface`` typer app."""
    app.command("sites")(sites)
    app.command("traverse")(traverse)
    app.command("night")(night)
    app.command("drill")(drill)


# ------------------------------------------------------------------------------------------------ helpers


def _check_out(out: Path) -> None:
    """Refuse an output path that is an existing file (a folder is replaced whole at the end)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder; expected a folder path")


def _load(folder: Path) -> IlluminationMap:
    """Read the illumination map folder given with --from."""
    from kizuna.lunar.surface.illumination_map import load_illumination

    if not folder.is_dir():
        raise InputError(
            f"--from {folder}: no such folder; expected the output folder of "
            "`kizuna lunar surface illumination --out`"
        )
    return load_illumination(folder)


def _num(option: str, value: float, lo: float = -math.inf, hi: float = math.inf, *, open_lo=False) -> float:
    """InputError unless value is finite and in [lo, hi] ((lo, hi] with open_lo); return it."""
    ok = math.isfinite(value) and (value > lo if open_lo else value >= lo) and value <= hi
    if not ok:
        rng = f"{'(' if open_lo else '['}{lo:g}, {hi:g}]"
        raise InputError(f"{option} {value}: expected a finite number in {rng}")
    return float(value)


def _opt_num(option: str, value: float | None, lo: float, hi: float = math.inf) -> float | None:
    return None if value is None else _num(option, value, lo, hi)


def _point(imap: IlluminationMap, lat: float, lon: float, option: str) -> tuple[int, int]:
    """DEM cell of a lat/lon option pair that must have horizons (lie in the map's region)."""
    from kizuna.lunar.surface.sites import cell_of, has_horizons

    _num(f"{option} latitude", lat, -90.0, 90.0)
    _num(f"{option} longitude", lon)
    r, c = cell_of(imap.dem, lat, lon, option)
    if not has_horizons(imap, [r], [c])[0]:
        r0, r1, c0, c1 = imap.window
        raise InputError(
            f"{option} latitude {lat:g}, longitude {lon:g} deg: cell ({r}, {c}) is outside the illumination "
            f"map's region (horizons cover rows {r0}..{r1 - 1}, columns {c0}..{c1 - 1}); expected a point "
            "near the pole inside it"
        )
    return r, c


def _utc(t: Any) -> str:
    """ISO UTC text of a datetime64."""
    import numpy as np

    return str(np.datetime64(t, "s")) + "Z"


def _period(imap: IlluminationMap) -> tuple[np.datetime64, np.datetime64]:
    """Start and end (exclusive) of the illumination period."""
    import numpy as np

    step = np.timedelta64(int(round(imap.step_hours * 3600.0)), "s")
    return imap.times[0], imap.times[-1] + step


def _extent_km(dem: Raster, window: tuple[int, int, int, int]) -> list[float]:
    """imshow extent (left, right, bottom, top) in map km of a DEM window."""
    t = dem.transform
    r0, r1, c0, c1 = window
    x0, x1 = t.c + t.a * c0, t.c + t.a * c1
    y0, y1 = t.f + t.e * r0, t.f + t.e * r1
    return [x0 / 1000.0, x1 / 1000.0, y1 / 1000.0, y0 / 1000.0]


def _xy_km(dem: Raster, rows: Any, cols: Any) -> tuple[np.ndarray, np.ndarray]:
    """Map x, y (km) of DEM cell centres."""
    import numpy as np

    t = dem.transform
    r = np.asarray(rows, dtype=np.float64)
    c = np.asarray(cols, dtype=np.float64)
    return (t.c + t.a * (c + 0.5)) / 1000.0, (t.f + t.e * (r + 0.5)) / 1000.0


def _map_figure(imap: IlluminationMap, layer: np.ndarray, window, title: str, label: str, cmap="inferno"):
    """A Figure with a layer of the DEM grid shown over a window (map km), and its axes."""
    from matplotlib.figure import Figure

    r0, r1, c0, c1 = window
    fig = Figure(figsize=(7.0, 6.0))
    ax = fig.add_subplot()
    ext = _extent_km(imap.dem, window)
    ax.imshow(imap.dem.data[r0:r1, c0:c1], extent=ext, cmap="gray", origin="upper", alpha=0.6)  # terrain
    im = ax.imshow(layer[r0:r1, c0:c1], extent=ext, cmap=cmap, origin="upper")
    fig.colorbar(im, ax=ax, label=label)
    ax.set_xlabel("map x (km)")
    ax.set_ylabel("map y (km)")
    ax.set_title(title)
    return fig, ax


# -------------------------------------------------------------------------------------------------- sites


def sites(
    from_dir: FromDir,
    out: OutDir,
    min_sun: Annotated[
        float | None, typer.Option(help="Least mean visible fraction of the solar disc (0-1).")
    ] = None,
    max_darkness_hours: Annotated[
        float | None, typer.Option(help="Longest allowed run without any Sun (h).")
    ] = None,
    min_earth: Annotated[
        float | None, typer.Option(help="Least mean visible fraction of the Earth's disc (0-1).")
    ] = None,
    max_slope_deg: Annotated[float | None, typer.Option(help="Steepest allowed terrain slope (deg).")] = None,
    max_psr_distance_km: Annotated[
        float | None, typer.Option(help="Farthest allowed distance to a permanently shadowed cell (km).")
    ] = None,
    min_psr_distance_km: Annotated[
        float | None, typer.Option(help="Nearest allowed distance to a permanently shadowed cell (km).")
    ] = None,
    n: Annotated[int, typer.Option("--n", help="Number of sites to list.")] = 20,
    min_separation_km: Annotated[float, typer.Option(help="Least distance between listed sites (km).")] = 3.0,
) -> None:
    """Rank the cells of an illumination map that meet site requirements (score: sun_fraction times one
    minus the longest darkness over the period).

    Writes OUT/sites.csv (lat_deg, lon_deg, row, col, sun_fraction, max_darkness_hours, earth_fraction,
    slope_deg, psr_distance_km, score), sites_ok.tif (1 meets all, 0 not, NaN outside the region),
    summary.json (requirements in SI units, n_ok_cells, ok_area_m2, sites), map.png and report.html.
    """
    import numpy as np

    from kizuna.core.io import output_dir, write_csv, write_json, write_png
    from kizuna.core.raster import Raster, write_geotiff
    from kizuna.core.report import Report
    from kizuna.lunar.surface.sites import SiteRequirements, rank_sites, site_mask

    _check_out(out)
    req = SiteRequirements(
        min_sun_fraction=_opt_num("--min-sun", min_sun, 0.0, 1.0),
        max_darkness_hours=_opt_num("--max-darkness-hours", max_darkness_hours, 0.0),
        min_earth_fraction=_opt_num("--min-earth", min_earth, 0.0, 1.0),
        max_slope_deg=_opt_num("--max-slope-deg", max_slope_deg, 0.0, 90.0),
        max_psr_distance_m=None
        if max_psr_distance_km is None
        else 1000.0 * _num("--max-psr-distance-km", max_psr_distance_km, 0.0),
        min_psr_distance_m=None
        if min_psr_distance_km is None
        else 1000.0 * _num("--min-psr-distance-km", min_psr_distance_km, 0.0),
    )
    if n < 1:
        raise InputError(f"--n {n}: expected at least 1 site")
    _num("--min-separation-km", min_separation_km, 0.0)
    imap = _load(from_dir)
    ranked = rank_sites(imap, req, n=n, min_separation_km=min_separation_km)
    ok = site_mask(imap, req)
    ok_map = np.where(imap.region, ok.astype(np.float64), np.nan)
    t0, t1 = _period(imap)
    summary = {
        "source": str(from_dir),
        "period_start_utc": _utc(t0),
        "period_end_utc": _utc(t1),
        "step_s": imap.step_hours * 3600.0,
        "requirements": req,
        "n_region_cells": int(imap.region.sum()),
        "n_ok_cells": int(ok.sum()),
        "ok_area_m2": float(ok.sum()) * imap.cell_area_m2,
        "n_sites": len(ranked),
        "sites": ranked.to_dict(orient="records"),
    }
    fig, ax = _map_figure(imap, imap.layers["sun_fraction"], imap.window, "Sites", "mean sun fraction")
    r0, r1, c0, c1 = imap.window
    ax.contour(
        ok[r0:r1, c0:c1].astype(float), levels=[0.5], colors="cyan", linewidths=1.0,
        extent=_extent_km(imap.dem, imap.window), origin="upper",
    )  # fmt: skip
    x, y = _xy_km(imap.dem, ranked["row"], ranked["col"])
    ax.plot(x, y, "o", mfc="none", mec="lime", ms=9)
    for k, (xi, yi) in enumerate(zip(x, y, strict=True)):
        ax.annotate(str(k + 1), (xi, yi), color="lime", fontsize=8, xytext=(4, 4), textcoords="offset points")
    with output_dir(out) as tmp:
        write_csv(tmp / "sites.csv", ranked)
        write_geotiff(
            tmp / "sites_ok.tif", Raster(ok_map, imap.dem.transform, imap.dem.crs, ""), dtype="float32"
        )
        write_json(tmp / "summary.json", summary)
        write_png(tmp / "map.png", fig, dpi=110)
        rep = Report("kizuna: landing and base sites")
        rep.add_text(
            "Cells of the illumination map that meet every requirement, ranked by score = sun_fraction x "
            "(1 - max_darkness_hours / period), at least the given separation apart. Cyan outlines the cells "
            "that meet the requirements; green circles the listed sites."
        )
        rep.add_key_figures(
            {
                "period": f"{_utc(t0)} .. {_utc(t1)}",
                "cells meeting all requirements": f"{int(ok.sum())} / {int(imap.region.sum())}",
                "best score": float(ranked["score"].iloc[0]) if len(ranked) else None,
            }
        )
        rep.add_table({k: v for k, v in vars(req).items()}, caption="Requirements (None: not applied)")
        rep.add_figure(fig)
        rep.add_table(ranked.round(4), caption="Ranked sites")
        rep.write(tmp / "report.html")
    say(
        f"kizuna lunar surface sites: {int(ok.sum())} cells meet the requirements, {len(ranked)} sites listed"
        f" -> {out}/report.html"
    )


# ----------------------------------------------------------------------------------------------- traverse


def traverse(
    from_dir: FromDir,
    from_lat: Annotated[float, typer.Option(help="Start latitude (deg).")],
    from_lon: Annotated[float, typer.Option(help="Start east longitude (deg).")],
    to_lat: Annotated[float, typer.Option(help="Goal latitude (deg).")],
    to_lon: Annotated[float, typer.Option(help="Goal east longitude (deg).")],
    hours: Annotated[float, typer.Option(help="Planning horizon from --start (h).")],
    out: OutDir,
    start: Annotated[
        str | None, typer.Option(help="Departure time, UTC ISO 8601 (default: the map's period start).")
    ] = None,
    step_hours: Annotated[float, typer.Option(help="Time step of the plan (h).")] = 1.0,
    speed_m_s: Annotated[float, typer.Option(help="Rover driving speed (m/s).")] = 0.2,
    max_slope_deg: Annotated[float, typer.Option(help="Steepest drivable move (deg).")] = 15.0,
    min_sun: Annotated[float, typer.Option(help="Least visible solar-disc fraction to drive (0-1).")] = 0.5,
    need_earth: Annotated[bool, typer.Option(help="Drive only with the Earth in view.")] = False,
    array_area_m2: Annotated[float, typer.Option(help="Solar array area (m^2), kept facing the Sun.")] = 1.5,
    array_efficiency: Annotated[float, typer.Option(help="Solar array efficiency (0-1).")] = 0.28,
    battery_wh: Annotated[float, typer.Option(help="Battery capacity (Wh).")] = 3000.0,
    initial_wh: Annotated[
        float | None, typer.Option(help="Battery energy at departure (Wh; default full).")
    ] = None,
    floor_wh: Annotated[float, typer.Option(help="Battery energy never to go below (Wh).")] = 600.0,
    drive_w: Annotated[float, typer.Option(help="Electrical load while driving (W).")] = 350.0,
    park_w: Annotated[float, typer.Option(help="Electrical load while parked (W).")] = 120.0,
    margin_km: Annotated[
        float, typer.Option(help="Corridor margin around the two points' bounding box (km).")
    ] = 3.0,
) -> None:
    """Plan the earliest-arrival rover traverse between two points, driving only in sunlight (and with
    the Earth in view if asked), with a solar-charged battery, over a corridor of the illumination map.

    Sun and Earth visibility come from the map's horizons at every step. Writes OUT/route.csv (step,
    time_utc, row, col, lat_deg, lon_deg, energy_wh, sun_fraction, earth_fraction), summary.json
    (reachable, reason, total_time_s, total_time_h, distance_m, distance_km, min_energy_wh,
    static_time_s, static_distance_m, ...), map.png and report.html. An unreachable goal is a result
    (reachable false, with the reason), not an error.
    """
    import numpy as np
    import pandas as pd

    from kizuna.core import ephemeris as eph
    from kizuna.core.io import output_dir, write_csv, write_json, write_png
    from kizuna.core.report import Report
    from kizuna.lunar.surface.illumination import time_grid
    from kizuna.lunar.surface.sites import cell_latlon, has_horizons, sky_series
    from kizuna.lunar.surface.traverse import BatteryModel, RoverModel, plan_static, plan_time_expanded

    _check_out(out)
    _num("--hours", hours, 0.0, open_lo=True)
    _num("--step-hours", step_hours, 0.0, open_lo=True)
    _num("--margin-km", margin_km, 0.0)
    for opt, v in (("--min-sun", min_sun), ("--array-efficiency", array_efficiency)):
        _num(opt, v, 0.0, 1.0)
    _num("--speed-m-s", speed_m_s, 0.0, open_lo=True)
    _num("--max-slope-deg", max_slope_deg, 0.0, 90.0, open_lo=True)
    _num("--array-area-m2", array_area_m2, 0.0)
    _num("--battery-wh", battery_wh, 0.0, open_lo=True)
    _num("--floor-wh", floor_wh, 0.0, battery_wh)
    e0 = battery_wh if initial_wh is None else _num("--initial-wh", initial_wh, floor_wh, battery_wh)
    _num("--drive-w", drive_w, 0.0)
    _num("--park-w", park_w, 0.0)
    if hours / step_hours > 20_000:
        raise InputError(f"--hours {hours} / --step-hours {step_hours}: expected at most 20000 steps")
    rover = RoverModel(speed_m_s, max_slope_deg, min_sun, bool(need_earth))
    battery = BatteryModel(array_area_m2, array_efficiency, battery_wh, floor_wh, e0, drive_w, park_w)

    imap = _load(from_dir)
    s_cell = _point(imap, from_lat, from_lon, "--from-lat/--from-lon")
    g_cell = _point(imap, to_lat, to_lon, "--to-lat/--to-lon")
    t_start = _period(imap)[0] if start is None else start
    try:
        t0 = np.datetime64(str(t_start).rstrip("Z"), "s")
    except ValueError as exc:
        raise InputError(f"--start {t_start!r}: {exc}; expected a UTC ISO 8601 time") from exc
    times = time_grid(t0, t0 + np.timedelta64(int(round(hours * 3600.0)), "s"), step_hours)
    step_s = step_hours * 3600.0

    dx = abs(imap.dem.transform.a)
    m = int(math.ceil(margin_km * 1000.0 / dx))
    wr0, wr1, wc0, wc1 = imap.window
    win = (
        max(wr0, min(s_cell[0], g_cell[0]) - m),
        min(wr1, max(s_cell[0], g_cell[0]) + m + 1),
        max(wc0, min(s_cell[1], g_cell[1]) - m),
        min(wc1, max(s_cell[1], g_cell[1]) + m + 1),
    )
    rr, cc = np.mgrid[win[0] : win[1], win[2] : win[3]]
    known = has_horizons(imap, rr, cc)
    sky = sky_series(imap, rr[known], cc[known], eph.sun_position_me(times), eph.earth_position_me(times))
    shape = (times.size, win[1] - win[0], win[3] - win[2])
    sun = np.full(shape, np.nan)
    earth = np.full(shape, np.nan)
    sun[:, known] = sky.sun_fraction
    earth[:, known] = sky.earth_fraction
    heights = np.where(known, imap.dem.data[win[0] : win[1], win[2] : win[3]], np.nan)
    s_loc = (s_cell[0] - win[0], s_cell[1] - win[2])
    g_loc = (g_cell[0] - win[0], g_cell[1] - win[2])
    route = plan_time_expanded(heights, dx, sun, step_s, s_loc, g_loc, rover, battery, earth_fraction=earth)
    static = plan_static(heights, dx, s_loc, g_loc, rover, cost="time")
    reason = route.reason  # name the cells by their DEM row and column, not the corridor's
    for loc, cell in ((g_loc, g_cell), (s_loc, s_cell)):
        reason = reason.replace(f"({loc[0]}, {loc[1]})", f"(DEM row {cell[0]}, col {cell[1]})")

    rows_out = []
    if route.reachable:
        k0 = int(route.steps[0])
        for (r, c), k in zip(route.cells, route.steps, strict=True):
            rows_out.append(
                {
                    "step": int(k),
                    "time_utc": _utc(times[0] + np.timedelta64(int(round(k * step_s)), "s")),
                    "row": int(r) + win[0],
                    "col": int(c) + win[2],
                    "energy_wh": float(route.energy_wh[k - k0]),
                    "sun_fraction": float(sun[k, r, c]) if k < times.size else math.nan,
                    "earth_fraction": float(earth[k, r, c]) if k < times.size else math.nan,
                }
            )
    table = pd.DataFrame(
        rows_out,
        columns=["step", "time_utc", "row", "col", "energy_wh", "sun_fraction", "earth_fraction"],
    )
    lat, lon = cell_latlon(imap.dem, table["row"].to_numpy(), table["col"].to_numpy())
    table.insert(4, "lat_deg", lat)
    table.insert(5, "lon_deg", lon)
    summary = {
        "source": str(from_dir),
        "reachable": bool(route.reachable),
        "reason": reason,
        "start_utc": _utc(times[0]),
        "hours": float(hours),
        "step_s": step_s,
        "n_steps": int(times.size),
        "start_cell": list(s_cell),
        "goal_cell": list(g_cell),
        "corridor_window": list(win),
        "total_time_s": route.total_time_s,
        "total_time_h": route.total_time_s / 3600.0,
        "distance_m": route.distance_m,
        "distance_km": route.distance_m / 1000.0,
        "min_energy_wh": float(route.energy_wh.min()) if route.reachable else None,
        "static_reachable": bool(static.reachable),
        "static_time_s": static.total_time_s,
        "static_time_h": static.total_time_s / 3600.0,
        "static_distance_m": static.distance_m,
        "static_distance_km": static.distance_m / 1000.0,
        "rover": rover,
        "battery": battery,
    }
    fig, ax = _map_figure(
        imap, imap.layers["sun_fraction"], win, "Traverse over the mean sun fraction", "mean sun fraction"
    )
    if static.reachable:
        x, y = _xy_km(imap.dem, static.cells[:, 0] + win[0], static.cells[:, 1] + win[2])
        ax.plot(x, y, "--", color="white", lw=1.2, label="static (least time, no sunlight limit)")
    if route.reachable:
        x, y = _xy_km(imap.dem, table["row"], table["col"])
        ax.plot(x, y, "-", color="cyan", lw=2.0, label="time-expanded")
    sx, sy = _xy_km(imap.dem, [s_cell[0], g_cell[0]], [s_cell[1], g_cell[1]])
    ax.plot(sx[:1], sy[:1], "o", color="lime", label="start")
    ax.plot(sx[1:], sy[1:], "*", color="lime", ms=12, label="goal")
    ax.legend(loc="lower right", fontsize=8)
    with output_dir(out) as tmp:
        write_csv(tmp / "route.csv", table)
        write_json(tmp / "summary.json", summary)
        write_png(tmp / "map.png", fig, dpi=110)
        rep = Report("kizuna: rover traverse")
        rep.add_text(
            "Earliest arrival when the rover drives only with at least the given fraction of the solar disc "
            "in view (and the Earth, if asked), may wait in place, and keeps its battery above the floor; "
            "compared with the least-time route that ignores sunlight and the battery."
        )
        keys = {"reachable": route.reachable}
        if route.reachable:
            keys.update(
                {
                    "total time": f"{route.total_time_s / 3600.0:.1f} h",
                    "distance": f"{route.distance_m / 1000.0:.2f} km",
                    "lowest battery": f"{summary['min_energy_wh']:.0f} Wh",
                }
            )
        else:
            keys["reason"] = reason
        if static.reachable:
            keys["static route"] = f"{static.distance_m / 1000.0:.2f} km, {static.total_time_s / 3600:.1f} h"
        rep.add_key_figures(keys)
        rep.add_figure(fig)
        if route.reachable:
            rep.add_table(table.round(4), caption="Route, one row per step reached")
        rep.add_table({k: v for k, v in summary.items() if not isinstance(v, RoverModel | BatteryModel)})
        rep.write(tmp / "report.html")
    if route.reachable:
        what = f"arrives after {route.total_time_s / 3600.0:.1f} h over {route.distance_m / 1000.0:.2f} km"
    else:
        what = f"unreachable ({reason})"
    say(f"kizuna lunar surface traverse: {what} -> {out}/report.html")


# -------------------------------------------------------------------------------------------------- night


def night(
    from_dir: FromDir,
    lat: Annotated[float, typer.Option(help="Site latitude (deg).")],
    lon: Annotated[float, typer.Option(help="Site east longitude (deg).")],
    out: OutDir,
    start: Annotated[str | None, typer.Option(help="UTC ISO start (default: the map's period).")] = None,
    end: Annotated[str | None, typer.Option(help="UTC ISO end, exclusive (default: the map's).")] = None,
    step_hours: Annotated[float | None, typer.Option(help="Time step (h; default: the map's step).")] = None,
    radiator_area_m2: Annotated[float, typer.Option(help="Radiating enclosure area (m^2).")] = 1.0,
    emissivity: Annotated[
        float, typer.Option(help="Effective infrared emissivity of the enclosure (0-1; MLI ~0.05).")
    ] = 0.05,
    min_internal_k: Annotated[float, typer.Option(help="Lowest allowed internal temperature (K).")] = 253.0,
    heater_efficiency: Annotated[float, typer.Option(help="Heater efficiency (0-1).")] = 1.0,
    hibernation_load_w: Annotated[float, typer.Option(help="Electrical load in hibernation (W).")] = 10.0,
    battery_wh: Annotated[float, typer.Option(help="Battery capacity (Wh).")] = 3000.0,
    depth_of_discharge: Annotated[float, typer.Option(help="Usable fraction of the battery (0-1).")] = 0.8,
    view_factor_ground: Annotated[
        float, typer.Option(help="Fraction of the enclosure's view on ground.")
    ] = 0.5,
    dark_fraction: Annotated[
        float, typer.Option(help="Visible solar-disc fraction at or below which it counts as dark.")
    ] = 0.0,
    background_w_m2: Annotated[
        float, typer.Option(help="Flux absorbed by the ground besides direct sunlight (W/m^2).")
    ] = DEFAULT_BACKGROUND_W_M2,
    terrain_slopes: Annotated[
        bool, typer.Option(help="Heat the ground by the DEM slope's incidence angle (default: flat ground).")
    ] = False,
) -> None:
    """Energy to survive the longest darkness at a site, from its Sun-visibility series over the period.

    The ground temperature comes from the regolith thermal model driven by the site's insolation. Writes
    OUT/summary.json (longest_darkness_h, heater_energy_wh, hibernation_energy_wh, total_energy_wh,
    usable_battery_wh, survives, margin_wh, ...), series.csv (time_utc, sun_fraction, sun_elevation_deg,
    flux_w_m2, surface_temperature_k, dark), night.png and report.html.
    """
    import numpy as np
    import pandas as pd

    from kizuna.core.io import output_dir, write_csv, write_json, write_png
    from kizuna.core.report import Report
    from kizuna.lunar.surface.drill import cell_insolation
    from kizuna.lunar.surface.illumination import time_grid
    from kizuna.lunar.surface.sites import cell_latlon
    from kizuna.lunar.surface.survival import NightSurvival, SurvivalEquipment, night_survival
    from kizuna.lunar.surface.thermal import regolith_temperature

    _check_out(out)
    eq_opts = {
        "--radiator-area-m2": (radiator_area_m2, 0.0, math.inf, True),
        "--emissivity": (emissivity, 0.0, 1.0, True),
        "--min-internal-k": (min_internal_k, 0.0, math.inf, True),
        "--heater-efficiency": (heater_efficiency, 0.0, 1.0, True),
        "--hibernation-load-w": (hibernation_load_w, 0.0, math.inf, False),
        "--battery-wh": (battery_wh, 0.0, math.inf, False),
        "--depth-of-discharge": (depth_of_discharge, 0.0, 1.0, True),
        "--view-factor-ground": (view_factor_ground, 0.0, 1.0, False),
        "--background-w-m2": (background_w_m2, 0.0, math.inf, False),
    }
    for opt, (v, lo, hi, open_lo) in eq_opts.items():
        _num(opt, v, lo, hi, open_lo=open_lo)
    _num("--dark-fraction", dark_fraction, 0.0, 1.0)
    if dark_fraction >= 1.0:
        raise InputError(f"--dark-fraction {dark_fraction}: expected a value below 1")
    equipment = SurvivalEquipment(
        radiator_area_m2, emissivity, min_internal_k, heater_efficiency, hibernation_load_w, battery_wh,
        depth_of_discharge, view_factor_ground,
    )  # fmt: skip
    imap = _load(from_dir)
    cell = _point(imap, lat, lon, "--lat/--lon")
    p0, p1 = _period(imap)
    step = imap.step_hours if step_hours is None else _num("--step-hours", step_hours, 0.0, open_lo=True)
    times = time_grid(
        p0 if start is None else str(start).rstrip("Z"), p1 if end is None else str(end).rstrip("Z"), step
    )
    if times.size < 2:
        raise InputError(f"--start/--end/--step-hours: {times.size} time step; expected at least 2")
    dt = step * 3600.0
    flux, incidence, sky = cell_insolation(imap, [cell[0]], [cell[1]], times, terrain_slopes=terrain_slopes)
    frac = sky.sun_fraction[:, 0]
    thermal = regolith_temperature(flux[:, 0], dt, incidence[:, 0], background_w_m2=background_w_m2)
    result: NightSurvival = night_survival(
        frac, dt, equipment, ground_temperature_k=thermal.surface_k, dark_fraction=dark_fraction
    )
    series = pd.DataFrame(
        {
            "time_utc": [_utc(t) for t in times],
            "sun_fraction": frac,
            "sun_elevation_deg": np.degrees(sky.sun_elevation_rad[:, 0]),
            "flux_w_m2": flux[:, 0],
            "surface_temperature_k": thermal.surface_k,
            "dark": frac <= dark_fraction,
        }
    )
    (slat,), (slon,) = cell_latlon(imap.dem, [cell[0]], [cell[1]])
    summary = {
        "source": str(from_dir),
        "lat_deg": float(slat),
        "lon_deg": float(slon),
        "row": cell[0],
        "col": cell[1],
        "start_utc": _utc(times[0]),
        "end_utc": _utc(times[-1] + np.timedelta64(int(round(dt)), "s")),
        "step_s": dt,
        "sun_fraction_mean": float(frac.mean()),
        "longest_darkness_h": result.longest_darkness_h,
        "longest_darkness_start_utc": _utc(times[result.darkness_start_index])
        if result.darkness_start_index >= 0
        else None,
        "heater_energy_wh": result.heater_energy_wh,
        "hibernation_energy_wh": result.hibernation_energy_wh,
        "total_energy_wh": result.total_energy_wh,
        "usable_battery_wh": result.usable_battery_wh,
        "survives": result.survives,
        "margin_wh": result.margin_wh,
        "mean_ground_temperature_k": result.mean_ground_temperature_k,
        "min_ground_temperature_k": result.min_ground_temperature_k,
        "equipment": equipment,
        "terrain_slopes": terrain_slopes,
    }
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 6.0))
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    hours_axis = (times - times[0]) / np.timedelta64(1, "h")
    ax1.plot(hours_axis, frac, color="orange")
    ax1.set_ylabel("visible sun fraction")
    ax2.plot(hours_axis, thermal.surface_k, color="tab:red")
    ax2.set_ylabel("ground surface T (K)")
    ax2.set_xlabel(f"hours since {_utc(times[0])}")
    if result.darkness_start_index >= 0:
        a = hours_axis[result.darkness_start_index]
        for ax in (ax1, ax2):
            ax.axvspan(a, a + result.longest_darkness_h, color="0.8", zorder=0)
    ax1.set_title("Sunlight and ground temperature; the longest darkness shaded")
    with output_dir(out) as tmp:
        write_json(tmp / "summary.json", summary)
        write_csv(tmp / "series.csv", series)
        write_png(tmp / "night.png", fig, dpi=110)
        rep = Report("kizuna: lunar night survival")
        rep.add_text(
            "Heater energy to keep the enclosure at its minimum temperature through the site's longest "
            "darkness, against a sink of the ground (regolith thermal model driven by the site's sunlight) "
            "and deep space, plus the hibernation load, compared with the usable battery energy."
        )
        rep.add_key_figures(
            {
                "survives": result.survives,
                "longest darkness": f"{result.longest_darkness_h:.0f} h",
                "energy needed": f"{result.total_energy_wh:.0f} Wh",
                "usable battery": f"{result.usable_battery_wh:.0f} Wh",
                "margin": f"{result.margin_wh:.0f} Wh",
            }
        )
        rep.add_figure(fig)
        rep.add_table({k: v for k, v in summary.items() if k != "equipment"}, caption="Summary")
        rep.add_table(vars(equipment), caption="Equipment")
        rep.write(tmp / "report.html")
    say(
        f"kizuna lunar surface night: longest darkness {result.longest_darkness_h:.0f} h, needs "
        f"{result.total_energy_wh:.0f} Wh of {result.usable_battery_wh:.0f} Wh usable: "
        f"{'survives' if result.survives else 'does not survive'} -> {out}/report.html"
    )


# -------------------------------------------------------------------------------------------------- drill


def drill(
    from_dir: FromDir,
    lat: Annotated[float, typer.Option(help="Base latitude (deg).")],
    lon: Annotated[float, typer.Option(help="Base east longitude (deg).")],
    out: OutDir,
    reach_km: Annotated[float, typer.Option(help="Rover reach from the base, straight line (km).")] = 10.0,
    speed_m_s: Annotated[float, typer.Option(help="Rover driving speed (m/s).")] = 0.2,
    max_slope_deg: Annotated[float, typer.Option(help="Steepest drivable move (deg).")] = 15.0,
    n: Annotated[int, typer.Option("--n", help="Number of drill sites to list.")] = 20,
    drill_depth_m: Annotated[float, typer.Option(help="Drill reach below the surface (m).")] = DRILL_DEPTH_M,
    background_w_m2: Annotated[
        float, typer.Option(help="Flux absorbed by the ground besides direct sunlight (W/m^2).")
    ] = DEFAULT_BACKGROUND_W_M2,
    thermal_step_hours: Annotated[float, typer.Option(help="Time step of the thermal model (h).")] = 6.0,
    max_cells: Annotated[int, typer.Option(help="Most cells to model (a sub-lattice beyond).")] = 400,
    terrain_slopes: Annotated[
        bool, typer.Option(help="Heat the ground by the DEM slope's incidence angle (default: flat ground).")
    ] = False,
) -> None:
    """Rank drill sites for water ice within reach of a base: permanently shadowed cells and cells whose
    modelled maximum temperature stays below 110 K within the drill depth, by (ice within the drill depth,
    shallower ice, shorter route).

    Writes OUT/drill_sites.csv (rank, lat_deg, lon_deg, row, col, psr, distance_km, sun_fraction,
    max_surface_k, max_k_at_drill_depth, ice_depth_m, ice_within_drill, route_time_h, route_distance_km),
    summary.json (base, reach_m, n_cells_modelled, n_candidates, n_unreachable, sites), map.png and
    report.html.
    """
    import numpy as np

    from kizuna.core.io import output_dir, write_csv, write_json, write_png
    from kizuna.core.report import Report
    from kizuna.lunar.surface.drill import rank_drill_sites
    from kizuna.lunar.surface.sites import cell_latlon, cell_of
    from kizuna.lunar.surface.traverse import RoverModel

    _check_out(out)
    _num("--reach-km", reach_km, 0.0, open_lo=True)
    _num("--speed-m-s", speed_m_s, 0.0, open_lo=True)
    _num("--max-slope-deg", max_slope_deg, 0.0, 90.0, open_lo=True)
    _num("--drill-depth-m", drill_depth_m, 0.0, open_lo=True)
    _num("--background-w-m2", background_w_m2, 0.0)
    _num("--thermal-step-hours", thermal_step_hours, 0.0, open_lo=True)
    if n < 1:
        raise InputError(f"--n {n}: expected at least 1 site")
    if max_cells < 1:
        raise InputError(f"--max-cells {max_cells}: expected at least 1")
    _num("--lat", lat, -90.0, 90.0)
    _num("--lon", lon)
    rover = RoverModel(speed_m_s, max_slope_deg)
    imap = _load(from_dir)
    base = cell_of(imap.dem, lat, lon, "--lat/--lon")
    with progress_bar("thermal model", total=1.0, quiet=quiet_enabled()) as advance:
        ranked = rank_drill_sites(
            imap, lat, lon, reach_km, rover, n=n, background_w_m2=background_w_m2,
            thermal_step_hours=thermal_step_hours, drill_depth_m=drill_depth_m, max_cells=max_cells,
            terrain_slopes=terrain_slopes, progress=lambda i, k: advance(i / k, f"{i}/{k} cells"),
        )  # fmt: skip
    (blat,), (blon,) = cell_latlon(imap.dem, [base[0]], [base[1]])
    summary = {
        "source": str(from_dir),
        "base_lat_deg": float(blat),
        "base_lon_deg": float(blon),
        "base_row": base[0],
        "base_col": base[1],
        "reach_m": reach_km * 1000.0,
        "drill_depth_m": drill_depth_m,
        "background_w_m2": background_w_m2,
        "terrain_slopes": terrain_slopes,
        **{k: v for k, v in ranked.attrs.items() if k not in ("base_row", "base_col")},
        "n_sites": len(ranked),
        "sites": ranked.to_dict(orient="records"),
    }
    dx = abs(imap.dem.transform.a)
    half = int(math.ceil(reach_km * 1000.0 / dx)) + 2
    nr, nc = imap.dem.shape
    win = (
        max(0, base[0] - half),
        min(nr, base[0] + half + 1),
        max(0, base[1] - half),
        min(nc, base[1] + half + 1),
    )
    psr_layer = np.where(imap.psr == 255, np.nan, (imap.psr == 1).astype(float))
    fig, ax = _map_figure(
        imap, psr_layer, win, "Drill sites (PSR cells light)", "permanently shadowed", "Blues_r"
    )
    bx, by = _xy_km(imap.dem, [base[0]], [base[1]])
    theta = np.linspace(0.0, 2.0 * np.pi, 181)
    ax.plot(bx[0] + reach_km * np.cos(theta), by[0] + reach_km * np.sin(theta), ":", color="orange", lw=1.0)
    ax.plot(bx, by, "*", color="orange", ms=14, label="base")
    if len(ranked):
        x, y = _xy_km(imap.dem, ranked["row"], ranked["col"])
        ax.scatter(x, y, c=ranked["ice_depth_m"].fillna(drill_depth_m), cmap="viridis_r", vmin=0.0,
                   vmax=drill_depth_m, edgecolors="k", s=40, label="drill sites")  # fmt: skip
        for k, (xi, yi) in enumerate(zip(x, y, strict=True)):
            ax.annotate(str(k + 1), (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.legend(loc="lower right", fontsize=8)
    with output_dir(out) as tmp:
        write_csv(tmp / "drill_sites.csv", ranked)
        write_json(tmp / "summary.json", summary)
        write_png(tmp / "map.png", fig, dpi=110)
        rep = Report("kizuna: drill sites for water ice")
        rep.add_text(
            "Cells within the rover's reach of the base where water ice is stable within the drill depth "
            "(maximum modelled temperature below 110 K; Schorghofer & Taylor 2007, Paige et al. 2010), "
            "and permanently shadowed cells, ranked by (ice within the drill depth, shallower ice, shorter "
            "least-time route). The regolith model is that of Hayne et al. (2017), driven by each cell's "
            "sunlight over the illumination period."
        )
        rep.add_key_figures(
            {
                "cells modelled": ranked.attrs.get("n_cells_modelled"),
                "candidates": ranked.attrs.get("n_candidates"),
                "unreachable": ranked.attrs.get("n_unreachable"),
                "best route": f"{ranked['route_time_h'].iloc[0]:.1f} h" if len(ranked) else None,
            }
        )
        rep.add_figure(fig)
        rep.add_table(ranked.round(4), caption="Drill sites, best first")
        rep.write(tmp / "report.html")
    say(
        f"kizuna lunar surface drill: {len(ranked)} drill sites within {reach_km:g} km of the base "
        f"({ranked.attrs.get('n_cells_modelled')} cells modelled) -> {out}/report.html"
    )
