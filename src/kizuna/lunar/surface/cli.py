"""Command line of south-pole surface planning, mounted as ``kizuna lunar surface``.

A thin edge: each command parses its options, calls the library, writes its outputs into a fresh folder
(nothing partial is left on error) and prints a one-line summary on stderr (not with ``kizuna --quiet``).
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from kizuna.core.console import quiet_enabled, say
from kizuna.core.progress import progress_bar
from kizuna.lunar.surface.cli_planning import _map_figure
from kizuna.lunar.surface.cli_planning import register as _register_planning

# The library modules (numpy, numba kernels, rasterio, matplotlib) are imported inside the commands, so that
# starting ``kizuna`` does not pay for them.

__all__ = ["app", "builtin_dem_path", "illumination"]

app = typer.Typer(
    help="Lunar south-pole surface planning: sunlight, Earth visibility, shadowed regions, sites, traverses.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def builtin_dem_path() -> Path:
    """Return the path of the built-in 1.6 km LOLA south-polar DEM carried by the package."""
    return Path(str(resources.files("kizuna") / "data" / "moon" / "lola_ldem256_south_polar_1600m.tif"))


@app.command("illumination")
def illumination(
    start: Annotated[str, typer.Option(help="Start of the period, UTC (ISO date or date-time).")],
    end: Annotated[str, typer.Option(help="End of the period (exclusive), UTC.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (replaced if it exists).")],
    dem: Annotated[
        Path | None,
        typer.Option(
            help="Polar stereographic GeoTIFF DEM (m above 1737.4 km); default the built-in 1.6 km map."
        ),
    ] = None,
    step_hours: Annotated[float, typer.Option(help="Time step (h).")] = 6.0,
    max_colatitude_deg: Annotated[
        float, typer.Option(help="Map the cells within this angle of the pole (deg; 5 = poleward of 85).")
    ] = 5.0,
    observer_height_m: Annotated[
        float, typer.Option(help="Height above the ground of the point that must see the Sun (m).")
    ] = 0.0,
    n_azimuths: Annotated[int, typer.Option(help="Horizon azimuths per cell (>= 360 recommended).")] = 360,
    tile_cells: Annotated[int, typer.Option(help="Tile size (cells) of the parallel tasks.")] = 128,
    pad_km: Annotated[
        float | None, typer.Option(help="Terrain margin each tile task carries (km); default the whole map.")
    ] = None,
    mode: Annotated[str, typer.Option(help="serial (all cores), processes or dask.")] = "serial",
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (tcp://HOST:8786) for --mode dask.")
    ] = None,
    n_sites: Annotated[int, typer.Option(help="Best-lit sites to list in summary.json.")] = 10,
) -> None:
    """Map sunlight, Earth visibility and permanent shadow near the pole of a DEM over a period.

    Writes, in the DEM's grid: sun_fraction.tif (mean visible fraction of the solar disc), earth_fraction.tif,
    max_darkness_hours.tif, psr.tif (uint8: 1 never lit, 0 lit, 255 outside the mapped region), the other
    statistics, horizons.npz, summary.json (best_sites, psr_area_km2, the period) and report.html.
    """
    import numpy as np

    from kizuna.core.io import output_dir, write_json, write_png
    from kizuna.core.raster import Raster, read_dem, write_geotiff
    from kizuna.core.report import Report
    from kizuna.lunar.surface.illumination_map import STAT_LAYERS, best_sites, illumination_map

    dem_path = (dem or builtin_dem_path()).resolve()
    raster = read_dem(dem_path)
    with progress_bar("illumination tiles", 1.0, quiet=quiet_enabled()) as advance:
        imap = illumination_map(
            raster,
            start,
            end,
            step_hours,
            max_colatitude_deg=max_colatitude_deg,
            observer_height_m=observer_height_m,
            n_azimuths=n_azimuths,
            tile_cells=tile_cells,
            pad_km=pad_km,
            mode=mode,
            scheduler=scheduler,
            progress=lambda done, total: advance(done / total, f"{done}/{total}"),
        )
    sites = best_sites(imap, n_sites)
    psr_cells = int((imap.psr == 1).sum())
    summary = {
        "dem": str(dem_path),
        "start": str(imap.times[0]),
        "end": str(np.datetime64(end, "s")),
        "step_hours": imap.step_hours,
        "n_steps": int(imap.times.size),
        "observer_height_m": imap.observer_height_m,
        "max_colatitude_deg": max_colatitude_deg,
        "n_azimuths": imap.horizons.n_azimuths,
        "horizon_window": list(imap.window),
        "cells": int(imap.region.sum()),
        "cell_size_m": abs(imap.dem.transform.a),
        "psr_cells": psr_cells,
        "psr_area_km2": psr_cells * imap.cell_area_m2 / 1e6,
        "region_area_km2": float(imap.region.sum()) * imap.cell_area_m2 / 1e6,
        "best_sites": sites,
        "timings_s": imap.timings_s,
    }
    with output_dir(out) as tmp:
        for name in STAT_LAYERS:
            write_geotiff(
                tmp / f"{name}.tif",
                Raster(imap.layers[name], raster.transform, raster.crs, ""),
                dtype="float32",
            )
        write_geotiff(
            tmp / "psr.tif",
            Raster(imap.psr.astype(np.float64), raster.transform, raster.crs, ""),
            dtype="uint8",
            nodata=255,
        )
        imap.horizons.save(tmp / "horizons.npz")
        write_json(tmp / "summary.json", summary)
        rep = Report("Sunlight and Earth visibility near the pole")
        best = sites[0] if sites else None
        rep.add_key_figures(
            {
                "period": f"{summary['start'][:10]} .. {end}",
                "time steps": summary["n_steps"],
                "cells mapped": summary["cells"],
                "PSR area (km²)": round(summary["psr_area_km2"], 1),
                "best mean sunlit fraction": round(best["sun_fraction"], 4) if best else "n/a",
                "best site (lat, lon E)": f"{best['lat_deg']:.3f}, {best['lon_deg']:.2f}" if best else "n/a",
            }
        )
        figs = [
            ("sun_fraction", "Mean visible fraction of the solar disc", "fraction", "magma"),
            ("max_darkness_hours", "Longest darkness", "h", "viridis_r"),
            ("earth_fraction", "Mean visible fraction of the Earth disc", "fraction", "cividis"),
        ]
        for name, title, unit, cmap in figs:
            fig, _ = _map_figure(imap, imap.layers[name], imap.window, title, unit, cmap)
            write_png(tmp / f"{name}.png", fig)
            rep.add_figure(fig, caption=f"{title} ({unit}).")
        psr_layer = np.where(imap.psr == 255, np.nan, imap.psr.astype(float))
        fig, _ = _map_figure(imap, psr_layer, imap.window, "Permanently shadowed cells (1)", "PSR", "Blues")
        write_png(tmp / "psr.png", fig)
        rep.add_figure(fig, caption="Cells that never saw any part of the Sun over the period.")
        if sites:
            rep.add_table(
                {
                    k: [round(s[k], 4) for s in sites]
                    for k in ("lat_deg", "lon_deg", "sun_fraction", "max_darkness_hours", "earth_fraction")
                },
                caption="Best-lit sites (at least 5 km apart).",
            )
        rep.write(tmp / "report.html")
    lead = (
        f"best site {best['lat_deg']:.3f}, {best['lon_deg']:.2f} E lit {best['sun_fraction']:.3f}; "
        if best
        else ""
    )
    say(
        f"kizuna: {summary['cells']} cells x {summary['n_steps']} steps: {lead}"
        f"PSR {summary['psr_area_km2']:.0f} km^2; {math.ceil(imap.timings_s['total_s'])} s -> {out}"
    )


_register_planning(app)  # sites, traverse, night, drill
