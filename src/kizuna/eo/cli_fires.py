"""The ``kizuna eo fires`` commands: count active-fire detections (``count``) and compare daily counts with
official ones (``compare``), from Bhuvan, PRSC or NASA FIRMS tables; and the figures of the fire season.

``count`` writes one file atomically; ``compare`` writes a folder replaced whole at the end. Malformed
records are printed one line each (file:line) and counted in the summary line; bad input raises
:class:`kizuna.errors.InputError`, which the top-level ``kizuna`` command turns into one line and exit
code 2.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kizuna.core.console import say
from kizuna.errors import InputError

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr
    from matplotlib.figure import Figure

    from kizuna.eo.fires import FireDetections

__all__ = ["app", "count", "compare", "season_figure", "district_figure", "fire_map_figure"]

app = typer.Typer(
    help="Crop-residue fires: count Bhuvan, PRSC or FIRMS active-fire detections per district, day, "
    "satellite or grid cell, and compare with official daily counts.",
    no_args_is_help=True,
)

MAX_WARNINGS = 20
SATELLITE_COLOURS = {"S-NPP": "#d95f02", "NOAA-20": "#e6ab02", "NOAA-21": "#a6761d", "Aqua": "#1b9e77"}
SATELLITE_COLOURS.update({"Terra": "#7570b3", "MODIS": "#66a61e"})


def _read(files: Sequence[Path], fmt: str, tz: str | None, date: str | None) -> FireDetections:
    """Read the detection files, print their problems, and return the detections."""
    from kizuna.eo.fires import read_fires

    det = read_fires(list(files), fmt=None if fmt == "auto" else fmt.lower(), tz=tz, date=date)
    for p in det.problems[:MAX_WARNINGS]:
        say(f"kizuna: warning: {p}")
    if len(det.problems) > MAX_WARNINGS:
        say(f"kizuna: warning: ... and {len(det.problems) - MAX_WARNINGS} more")
    return det


def _bounds(text: str | None) -> tuple[float, ...] | None:
    """Return LATMIN,LATMAX,LONMIN,LONMAX (deg) of a --bounds option, or None."""
    if text is None:
        return None
    try:
        box = tuple(float(v) for v in text.split(","))
    except ValueError:
        box = ()
    if len(box) != 4:
        raise InputError(f"--bounds {text!r}: expected LATMIN,LATMAX,LONMIN,LONMAX in degrees")
    return box


def _raster(ds: xr.Dataset, name: str) -> Any:
    """Return the total of a gridded variable over all dates as a north-up EPSG:4326 Raster."""
    from kizuna.core.raster import raster_from_centres

    values = ds[name].sum("date") if "date" in ds[name].dims else ds[name]
    return raster_from_centres(
        values.values, ds["lat"].values, ds["lon"].values, "EPSG:4326", ds[name].attrs["units"]
    )


def _files_note(det: FireDetections) -> str:
    """Return 'N detections (formats; R repeated, M malformed dropped)' for summary lines."""
    dropped = sum(1 for p in det.problems if "expected" in p and "left empty" not in p)
    return (
        f"{len(det.table)} detections ({', '.join(det.formats)}; {det.n_duplicates} repeated and "
        f"{dropped} malformed records dropped)"
    )


Files = Annotated[
    list[Path], typer.Argument(help="Active-fire files: Bhuvan, PRSC or NASA FIRMS (CSV, or JSON records).")
]
Fmt = Annotated[str, typer.Option("--format", help="auto (from the header), bhuvan, prsc or firms.")]
Tz = Annotated[
    str | None,
    typer.Option(
        "--tz", help="Time zone of the files' times (default IST for Bhuvan and PRSC, UTC for FIRMS)."
    ),
]
DayTz = Annotated[
    str, typer.Option("--day-tz", help="Days are counted in this time zone: IST (official counts) or UTC.")
]
Date = Annotated[
    str | None, typer.Option("--date", help="Date (YYYY-MM-DD) of a PRSC table whose file name holds none.")
]


@app.command()
def count(
    files: Files,
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="File to write: .csv or .parquet (table); with --grid-deg also .nc or .tif (map)."
        ),
    ],
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Count per these keys, comma-separated: district, day, satellite, instrument, tehsil, "
            "state, daynight, cell (default: district,day for a table, day for .nc, none for .tif).",
        ),
    ] = None,
    grid_deg: Annotated[
        float | None, typer.Option("--grid-deg", help="Also count per lat/lon cell of this size (deg).")
    ] = None,
    bounds: Annotated[
        str | None,
        typer.Option(
            "--bounds", help="Grid extent LATMIN,LATMAX,LONMIN,LONMAX (deg); default: the detections'."
        ),
    ] = None,
    fmt: Fmt = "auto",
    tz: Tz = None,
    day_tz: DayTz = "IST",
    date: Date = None,
) -> None:
    """Count active-fire detections per district and day (or any --by keys, or per grid cell).

    A .csv or .parquet table has one column per key (day -> date, YYYY-MM-DD; cell -> lat_deg, lon_deg of
    the cell centre), count and frp_mw_sum (MW); every combination of district, satellite and day from the
    first to the last day gets a row, 0 where nothing was detected. With --grid-deg, a .nc file holds
    fire_count and frp_mw_sum on (lat, lon), or on (date, lat, lon) when --by has day; a .tif holds the
    total count per cell (EPSG:4326).
    """
    from kizuna.core.io import write_csv, write_netcdf, write_parquet
    from kizuna.core.raster import write_geotiff
    from kizuna.eo.fires import count_fires, fire_count_grid, parse_by, utc_offset_min

    utc_offset_min(day_tz)
    suffix = out.suffix.lower()
    if by is None:
        by = {".nc": "day", ".tif": "", ".tiff": ""}.get(suffix, "district,day")
    keys = parse_by(by)
    if suffix not in (".csv", ".parquet", ".nc", ".tif", ".tiff"):
        raise InputError(f"--out {out}: expected a .csv, .parquet, .nc or .tif file")
    if suffix in (".nc", ".tif", ".tiff"):
        if grid_deg is None:
            raise InputError(f"--out {out}: a map needs --grid-deg (cell size in degrees)")
        extra = [k for k in keys if k not in ("day", "cell")]
        if extra or (suffix != ".nc" and "day" in keys):
            allowed = "--by day or none" if suffix == ".nc" else "no --by key (use .nc for daily maps)"
            raise InputError(f"--by {by!r} with --out {out}: a {suffix} map takes {allowed}")
    box = _bounds(bounds)
    t0 = time.perf_counter()
    det = _read(files, fmt, tz, date)
    if suffix in (".nc", ".tif", ".tiff"):
        ds = fire_count_grid(det, float(grid_deg), by_day="day" in keys, bounds=box, day_tz=day_tz)  # type: ignore[arg-type]
        if suffix == ".nc":
            write_netcdf(out, ds)
        else:
            write_geotiff(out, _raster(ds, "fire_count"), dtype="float32")
        what = f"{ds.sizes['lat']} x {ds.sizes['lon']} cells of {grid_deg:g} deg"
    else:
        table = count_fires(det, keys, day_tz=day_tz, grid_deg=grid_deg, bounds=box)
        (write_csv if suffix == ".csv" else write_parquet)(out, table)
        what = f"{len(table)} rows by {','.join(keys) or 'total'}"
    dt = time.perf_counter() - t0
    say(f"kizuna: {_files_note(det)} counted into {what} in {dt:.2f} s -> {out}")


@app.command()
def compare(
    files: Files,
    official: Annotated[
        Path, typer.Option("--official", help="Official daily counts: CSV with columns date, count.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output folder (replaced whole when done).")],
    grid_deg: Annotated[
        float, typer.Option("--grid-deg", help="Cell size (deg) of the fire-count map; 0 for no map.")
    ] = 0.1,
    fmt: Fmt = "auto",
    tz: Tz = None,
    day_tz: DayTz = "IST",
    date: Date = None,
) -> None:
    """Compare daily detection counts with official daily counts, and plot the season.

    Writes OUT/daily.csv (date, detections, official, difference, complete, status, detections per
    satellite), counts_district_day.csv, detections.parquet (the normalised detections), summary.json
    (days_complete, days_partial, days_excess, days_without_official, n_days_complete, detections,
    repeated_dropped, malformed_dropped, ...), season.png (daily counts stacked by satellite against the
    official counts), districts.png, with --grid-deg fire_count.nc, fire_count.tif and fire_map.png, and
    report.html. A day is complete when the detections equal the official count.
    """
    from kizuna.core.io import (
        atomic_write,
        output_dir,
        png_bytes,
        write_csv,
        write_json,
        write_netcdf,
        write_parquet,
    )
    from kizuna.core.raster import write_geotiff
    from kizuna.core.report import Report
    from kizuna.eo.fires import (
        compare_daily,
        comparison_summary,
        count_fires,
        fire_count_grid,
        read_official_counts,
        utc_offset_min,
    )

    utc_offset_min(day_tz)
    if grid_deg < 0:
        raise InputError(f"--grid-deg {grid_deg}: expected a cell size > 0 degrees, or 0 for no map")
    t0 = time.perf_counter()
    off = read_official_counts(official)
    det = _read(files, fmt, tz, date)
    daily = compare_daily(det, off, day_tz=day_tz)
    summary = comparison_summary(daily)
    by_district = count_fires(det, ("district", "day"), day_tz=day_tz)
    by_sat = count_fires(det, ("district", "satellite"), day_tz=day_tz)
    sats = det.table["satellite"].value_counts()
    malformed = sum(1 for p in det.problems if "expected" in p and "left empty" not in p)
    summary.update(
        files=[str(f) for f in files],
        official_file=str(official),
        formats=list(det.formats),
        records=det.n_records,
        detections=len(det.table),
        repeated_dropped=det.n_duplicates,
        malformed_dropped=malformed,
        problems=len(det.problems),
        day_time_zone=day_tz,
        detections_per_satellite={str(k): int(v) for k, v in sats.items()},
        districts=len(set(det.table["district"]) - {""}),
        grid_deg=grid_deg or None,
    )
    figs = {"season.png": season_figure(daily), "districts.png": district_figure(by_sat)}
    with output_dir(out) as tmp:
        write_csv(tmp / "daily.csv", daily)
        write_csv(tmp / "counts_district_day.csv", by_district)
        write_parquet(tmp / "detections.parquet", det.table)
        if grid_deg > 0:
            ds = fire_count_grid(det, grid_deg, by_day=True, day_tz=day_tz)
            write_netcdf(tmp / "fire_count.nc", ds)
            write_geotiff(tmp / "fire_count.tif", _raster(ds, "fire_count"), dtype="float32")
            figs["fire_map.png"] = fire_map_figure(ds)
        summary["seconds"] = round(time.perf_counter() - t0, 3)
        write_json(tmp / "summary.json", summary)
        report = Report("Active-fire detections against official daily counts")
        report.add_key_figures(
            {
                "detections": summary["detections"],
                "days compared": summary["days_compared"],
                "complete days": summary["n_days_complete"],
                "detections on compared days": summary["detections_on_compared_days"],
                "official on compared days": summary["official_on_compared_days"],
                "repeated records dropped": det.n_duplicates,
            }
        )
        report.add_text(
            f"Files: {', '.join(f.name for f in files)} ({', '.join(det.formats)}); official counts: "
            f"{official.name}. Days are counted in {day_tz}. A day is complete when the detections equal "
            "the official count; partial when fewer were detected (an incomplete snapshot of the feed); "
            "'not covered' outside the first..last day of the detections."
        )
        captions = {
            "season.png": "Daily detections stacked by satellite, and the official daily counts",
            "districts.png": "Detections per district, stacked by satellite",
            "fire_map.png": f"Detections per {grid_deg:g} deg cell over the whole period",
        }
        for name, fig in figs.items():
            png = png_bytes(fig, dpi=110)
            atomic_write(tmp / name, png)
            report.add_figure(png, captions[name])
        report.add_table(daily.set_index("date"), caption="daily.csv")
        report.add_table(
            {k: v for k, v in summary.items() if not isinstance(v, list | dict)}, caption="summary.json"
        )
        report.write(tmp / "report.html")
    say(
        f"kizuna: {_files_note(det)}; {summary['n_days_complete']}/{summary['days_compared']} days equal the "
        f"official counts in {summary['seconds']:.2f} s -> {out}"
    )


# ------------------------------------------------------------------------------------------------- figures


def _figure(width_in: float, height_in: float) -> tuple[Figure, Any]:
    """Return a Figure on the Agg canvas with one axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def season_figure(daily: pd.DataFrame) -> Figure:
    """Return the season plot of a daily comparison: detections per day stacked by satellite (bars), the
    official daily counts (line), and the complete days (circled)."""
    import numpy as np
    import pandas as pd

    fig, ax = _figure(10.0, 4.5)
    days = pd.to_datetime(daily["date"]).to_numpy()
    bottom = np.zeros(len(daily))
    for col in [c for c in daily.columns if c.startswith("detections_")]:
        sat = col.removeprefix("detections_")
        values = daily[col].to_numpy(dtype=float)
        colour = SATELLITE_COLOURS.get(sat)
        ax.bar(days, values, bottom=bottom, width=0.8, label=f"detections: {sat}", color=colour)
        bottom += values
    official = daily["official"].astype(float).to_numpy()
    ax.plot(days, official, "k.-", lw=1.2, label="official daily count")
    done = daily["complete"].to_numpy(dtype=bool)
    ax.scatter(
        days[done],
        official[done],
        s=90,
        facecolors="none",
        edgecolors="#2ca02c",
        lw=1.8,
        label="complete day (equal counts)",
        zorder=3,
    )
    ax.set_ylabel("active-fire detections per day")
    ax.set_title("Fire season: detections and official daily counts")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.autofmt_xdate()
    return fig


def district_figure(counts: pd.DataFrame) -> Figure:
    """Return a horizontal bar chart of detections per district stacked by satellite, from a table counted
    by district and satellite."""
    import numpy as np

    wide = counts.pivot_table(index="district", columns="satellite", values="count", aggfunc="sum").fillna(0)
    wide.index = [d or "(no district)" for d in wide.index]
    wide = wide.loc[wide.sum(axis=1).sort_values().index]
    fig, ax = _figure(8.0, max(3.0, 0.28 * len(wide) + 1.2))
    left = np.zeros(len(wide))
    for sat in wide.columns:
        ax.barh(wide.index, wide[sat], left=left, label=sat, color=SATELLITE_COLOURS.get(sat))
        left += wide[sat].to_numpy()
    ax.set_xlabel("active-fire detections")
    ax.set_title("Detections per district")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return fig


def fire_map_figure(ds: xr.Dataset) -> Figure:
    """Return a map of the detections per grid cell summed over all dates (lat/lon in degrees, WGS84)."""
    import numpy as np

    total = ds["fire_count"].sum("date") if "date" in ds["fire_count"].dims else ds["fire_count"]
    values = np.ma.masked_equal(np.asarray(total.values, dtype=float), 0.0)
    res = float(ds.attrs["grid_deg"])
    lat, lon = ds["lat"].values, ds["lon"].values
    fig, ax = _figure(7.0, 6.0)
    mesh = ax.pcolormesh(
        np.append(lon - res / 2, lon[-1] + res / 2),
        np.append(lat - res / 2, lat[-1] + res / 2),
        values,
        cmap="inferno_r",
        shading="flat",
    )
    fig.colorbar(mesh, ax=ax, label=f"detections per {res:g} deg cell")
    ax.set_xlabel("longitude (deg E)")
    ax.set_ylabel("latitude (deg N)")
    ax.set_aspect(1.0 / np.cos(np.deg2rad(float(np.mean(lat)))))
    ax.set_title("Active-fire detections per cell")
    return fig
