"""``kizuna eo no2``: TROPOMI L2 NO2 regridded conservatively (area-weighted from pixel corners) onto a
latitude/longitude grid or the 10 km India grid (``grid``), and monthly means of many L2 files
(``monthly``), written as CF NetCDF with an optional PNG map.

Each command writes its NetCDF (and GeoTIFF and PNG) atomically: a failure leaves no partial output.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kizuna.core.console import quiet_enabled, say
from kizuna.errors import InputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from kizuna.eo.regrid import Grid, Regridded

__all__ = ["app", "parse_bbox", "resolve_grid", "map_figure", "INDIA_GRID_FILE"]

app = typer.Typer(
    help="TROPOMI NO2: regrid L2 files conservatively to L3 maps (lat/lon or the 10 km India grid), "
    "monthly means.",
    no_args_is_help=True,
)

# The 10 km India grid (Kawano et al. 2025, Zenodo 13694585) as staged in ../shared/data.
INDIA_GRID_FILE = Path("eo") / "india_grid_10km" / "grid_india_10km_shapefiles.zip"


def parse_bbox(text: str | None, option: str = "--bbox") -> tuple[float, float, float, float] | None:
    """Return (lat_min, lat_max, lon_min, lon_max) in degrees from ``LATMIN,LATMAX,LONMIN,LONMAX``; a box
    across the antimeridian has LONMIN > LONMAX (e.g. 170,-170)."""
    if text is None:
        return None
    try:
        v = [float(t) for t in text.replace(" ", "").split(",")]
    except ValueError:
        v = []
    if len(v) != 4 or not (-90.0 <= v[0] < v[1] <= 90.0) or not all(-180.0 <= t <= 360.0 for t in v[2:]):
        raise InputError(
            f"{option} {text!r}: expected LATMIN,LATMAX,LONMIN,LONMAX in degrees with LATMIN < LATMAX"
        )
    if v[2] == v[3]:
        raise InputError(f"{option} {text!r}: LONMIN equals LONMAX; expected a box of some width")
    return v[0], v[1], v[2], v[3]


def _india_grid_path(grid_file: Path | None) -> Path:
    """Return the India grid file: --grid-file, else $KIZUNA_SHARED_DATA or ../shared/data."""
    if grid_file is not None:
        return Path(grid_file)
    roots = [Path(os.environ["KIZUNA_SHARED_DATA"])] if os.environ.get("KIZUNA_SHARED_DATA") else []
    roots.append(Path.cwd().parent / "shared" / "data")
    for root in roots:
        if (root / INDIA_GRID_FILE).is_file():
            return root / INDIA_GRID_FILE
    raise InputError(
        f"--grid india10km: {INDIA_GRID_FILE.name} not found under {', '.join(map(str, roots))}; "
        "give its path with --grid-file"
    )


def resolve_grid(
    grid: str,
    res_deg: float,
    bbox: tuple[float, float, float, float] | None,
    extent: tuple[float, ...] | None,
    grid_file: Path | None = None,
) -> Grid:
    """Return the target grid of an option: ``latlon`` (res_deg cells over bbox or the pixels' extent),
    ``india10km`` (the 10 km India grid) or a path to a square-cell grid shapefile (.shp or .zip)."""
    from kizuna.eo.regrid import latlon_grid, read_cell_grid

    key = grid.strip().lower()
    if key == "latlon":
        box = bbox if bbox is not None else extent
        if box is None:
            raise InputError("--grid latlon: no --bbox and no valid pixel to take the extent from")
        try:
            return latlon_grid(res_deg, box, snap=bbox is None)
        except InputError as exc:
            raise InputError(f"--res-deg/--bbox: {exc}") from exc
    if bbox is not None:
        raise InputError(f"--bbox applies to --grid latlon only; --grid {grid} has its own cells")
    if key == "india10km":
        return read_cell_grid(_india_grid_path(grid_file), name="India 10 km (Kawano et al. 2025)")
    path = Path(grid)
    if path.suffix.lower() in (".zip", ".shp"):
        return read_cell_grid(path)
    raise InputError(f"--grid {grid!r}: expected latlon, india10km, or a path to a .shp or .zip grid")


def map_figure(ds: Any, title: str) -> Figure:
    """Return a map of the NO2 column (umol m-2) of an L3 dataset: lon/lat, or the grid's x/y in km."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    no2 = ds["nitrogendioxide_tropospheric_column"].values * 1e6
    fig, ax = plt.subplots(figsize=(7.5, 6.0), layout="constrained")
    finite = no2[np.isfinite(no2)]
    vmax = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    if "lat_bnds" in ds:
        x = np.append(ds["lon_bnds"].values[:, 0], ds["lon_bnds"].values[-1, 1])
        y = np.append(ds["lat_bnds"].values[:, 0], ds["lat_bnds"].values[-1, 1])
        ax.set_xlabel("longitude (deg E)")
        ax.set_ylabel("latitude (deg N)")
        ax.set_aspect(1.0 / max(np.cos(np.radians(np.mean(y))), 0.1))
    else:
        dx = float(ds["x"].values[1] - ds["x"].values[0]) if ds.sizes["x"] > 1 else 1.0
        dy = float(ds["y"].values[1] - ds["y"].values[0]) if ds.sizes["y"] > 1 else 1.0
        x = (np.append(ds["x"].values - dx / 2, ds["x"].values[-1] + dx / 2)) / 1e3
        y = (np.append(ds["y"].values - dy / 2, ds["y"].values[-1] + dy / 2)) / 1e3
        ax.set_xlabel("x (km, grid projection)")
        ax.set_ylabel("y (km, grid projection)")
        ax.set_aspect(1.0)
    mesh = ax.pcolormesh(x, y, np.ma.masked_invalid(no2), cmap="viridis", vmin=min(0.0, vmax), vmax=vmax)
    fig.colorbar(mesh, ax=ax, label="tropospheric NO2 column (umol m-2)", shrink=0.85)
    ax.set_title(title, fontsize=10)
    return fig


def _raster(ds: Any, grid: Grid) -> Any:
    """Return the mean NO2 column (mol m-2) of an L3 dataset as a north-up Raster in the grid's CRS."""
    from kizuna.core.raster import raster_from_centres

    no2 = ds["nitrogendioxide_tropospheric_column"].values
    try:
        if grid.is_latlon:
            return raster_from_centres(no2, ds["lat"].values, ds["lon"].values, "EPSG:4326", "mol m-2")
        return raster_from_centres(no2, ds["y"].values, ds["x"].values, grid.crs, "mol m-2")
    except InputError as exc:
        raise InputError(f"--tif: {exc}") from exc


def _write_outputs(
    result: Regridded,
    grid: Grid,
    info: dict[str, Any],
    out: Path,
    png: Path | None,
    tif: Path | None = None,
) -> Any:
    """Write the L3 NetCDF (and the GeoTIFF and PNG map) atomically, removing what was written when a later
    file fails; return the dataset."""
    import matplotlib.pyplot as plt

    from kizuna.core.io import atomic_write, png_bytes, write_netcdf
    from kizuna.core.raster import write_geotiff
    from kizuna.eo.tropomi import l3_dataset

    if result.n_valid == 0 or not (result.weight_m2 > 0).any():
        raise InputError(
            f"{', '.join(f['file'] for f in info['files'])}: no valid pixel falls on the grid "
            f"({grid.name}); expected pixels inside it (qa filter: {info['qa_filter']})"
        )
    ds = l3_dataset(result, grid, info)
    raster = _raster(ds, grid) if tif is not None else None
    image = None
    if png is not None:
        when = (info.get("time_coverage_start") or "")[:10]
        names = [f["file"] for f in info["files"]]
        label = names[0] if len(names) == 1 else f"{len(names)} L2 files"
        fig = map_figure(ds, f"TROPOMI tropospheric NO2 {when}: {label}\n{grid.name}")
        image = png_bytes(fig, dpi=110)
        plt.close(fig)
    written: list[Path] = []
    try:
        written.append(write_netcdf(out, ds))
        if raster is not None:
            written.append(write_geotiff(tif, raster, dtype="float32"))
        if image is not None:
            written.append(atomic_write(png, image))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return ds


def _summary(result: Regridded, grid: Grid, out: Path, seconds: float, what: str) -> str:
    """Return the one-line summary of a run."""
    ny, nx = grid.shape
    line = (
        f"kizuna: {what}: {result.n_valid} valid pixels onto {grid.name} ({ny} x {nx} cells, "
        f"{int((result.weight_m2 > 0).sum())} covered); column total {result.grid_total_mol:.6g} mol, "
        f"conserved to {result.conservation_rel:.1e}"
    )
    if result.n_partly_outside or result.n_outside:
        line += (
            f"; {result.n_partly_outside} pixels partly and {result.n_outside} wholly outside the grid "
            f"({result.outside_mol:.4g} mol left out)"
        )
    return line + f" in {seconds:.2f} s -> {out}"


_RES = typer.Option("--res-deg", help="Cell size of a latitude/longitude grid (deg).")
_QA = typer.Option("--qa-min", help="Keep pixels with qa_value above this (S5P NO2 PUM: 0.75).")
_BBOX = typer.Option(
    "--bbox", help="LATMIN,LATMAX,LONMIN,LONMAX (deg) of a lat/lon grid; default: the pixels' extent."
)
_GRID = typer.Option(
    "--grid", help="latlon, india10km (the 10 km India grid), or a .shp/.zip grid of square cells."
)
_GRID_FILE = typer.Option(
    "--grid-file",
    help="grid_india_10km_shapefiles.zip for --grid india10km (default: under $KIZUNA_SHARED_DATA or "
    "../shared/data).",
)
_PNG = typer.Option("--png", help="Also write a PNG map of the NO2 column.")
_TIF = typer.Option(
    "--tif", help="Also write the mean NO2 column (mol m-2) as a GeoTIFF (EPSG:4326 or the grid's CRS)."
)


@app.command()
def grid(
    l2: Annotated[Path, typer.Argument(help="TROPOMI L2 NO2 file (official S5P layout or flattened crop).")],
    out: Annotated[Path, typer.Option("--out", help="L3 NetCDF file to write.")],
    res_deg: Annotated[float, _RES] = 0.05,
    qa_min: Annotated[float, _QA] = 0.75,
    bbox: Annotated[str | None, _BBOX] = None,
    grid_name: Annotated[str, _GRID] = "latlon",
    grid_file: Annotated[Path | None, _GRID_FILE] = None,
    png: Annotated[Path | None, _PNG] = None,
    tif: Annotated[Path | None, _TIF] = None,
) -> None:
    """Regrid one L2 file conservatively: each pixel's column is spread over the cells it overlaps in
    proportion to the overlap area.

    Writes OUT (NetCDF, CF-1.8): nitrogendioxide_tropospheric_column (mol m-2, area-weighted mean),
    weight (m2, sum of overlap areas), coverage, n_pixels, n_orbits, cell_area (m2) on lat/lon (or x/y
    with lat/lon and the grid mapping); global attributes pixels_total_mol (sum of column x pixel area),
    grid_total_mol (sum of mean x weight; pixels_total_mol less outside_grid_mol), conservation_relative_error
    (the clipped pieces against the pixel areas), pixels_partly_outside_grid, pixels_outside_grid,
    qa_filter, sources. With --tif, the mean column as a GeoTIFF; with --png, a map.
    """
    from kizuna.eo.tropomi import files_extent_deg, regrid_no2_files

    t0 = time.perf_counter()
    box = parse_bbox(bbox)
    extent = files_extent_deg([l2], qa_min) if grid_name.strip().lower() == "latlon" and box is None else None
    target = resolve_grid(grid_name, res_deg, box, extent, grid_file)
    result, info = regrid_no2_files([l2], target, qa_min=qa_min)
    _write_outputs(result, target, info, out, png, tif)
    say(_summary(result, target, out, time.perf_counter() - t0, Path(l2).name))


@app.command()
def monthly(
    l2: Annotated[list[Path], typer.Argument(help="TROPOMI L2 NO2 files (the orbits of a month).")],
    out: Annotated[Path, typer.Option("--out", help="NetCDF file of the monthly mean to write.")],
    res_deg: Annotated[float, _RES] = 0.05,
    qa_min: Annotated[float, _QA] = 0.75,
    bbox: Annotated[str | None, _BBOX] = None,
    grid_name: Annotated[str, _GRID] = "latlon",
    grid_file: Annotated[Path | None, _GRID_FILE] = None,
    month: Annotated[
        str | None, typer.Option("--month", help="Keep only pixels observed in this month (YYYY-MM, UTC).")
    ] = None,
    png: Annotated[Path | None, _PNG] = None,
    tif: Annotated[Path | None, _TIF] = None,
) -> None:
    """Monthly mean of many L2 files: every file is regridded conservatively and the cell means are
    weighted by each file's overlap area (coverage), so the mean is that of all valid pixels over the cell.

    Writes OUT as ``kizuna eo no2 grid`` does, with n_orbits counting the files that cover each cell and
    time_coverage_start/end the first and last pixel times.
    """
    from kizuna.core.progress import progress_bar
    from kizuna.eo.tropomi import files_extent_deg, regrid_no2_files

    t0 = time.perf_counter()
    if not l2:
        raise InputError("no L2 file given; expected one or more TROPOMI L2 NO2 files")
    box = parse_bbox(bbox)
    extent = files_extent_deg(l2, qa_min) if grid_name.strip().lower() == "latlon" and box is None else None
    target = resolve_grid(grid_name, res_deg, box, extent, grid_file)
    with progress_bar("no2 monthly", len(l2), quiet=quiet_enabled()) as advance:
        result, info = regrid_no2_files(
            l2, target, qa_min=qa_min, month=month, progress=lambda d, n: advance(d, f"{d}/{n} files")
        )
    _write_outputs(result, target, info, out, png, tif)
    say(_summary(result, target, out, time.perf_counter() - t0, f"{len(l2)} L2 files"))
