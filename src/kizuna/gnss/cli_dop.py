"""``kizuna gnss dop``: DOP and availability maps over a region for any mix of constellations from a
navigation file, written as NetCDF and GeoTIFF with figures and a report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from kizuna.core.console import quiet_enabled, say
from kizuna.core.progress import progress_bar
from kizuna.errors import InputError

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``dop`` command to the gnss command group."""

    @app.command()
    def dop(
        nav: Annotated[list[Path], typer.Argument(help="RINEX navigation file(s) covering the day.")],
        out: Annotated[Path, typer.Option("--out", help="Output folder (replaced whole when done).")],
        date: Annotated[str, typer.Option("--date", help="Day (GPS time) to map: YYYY-MM-DD.")],
        region: Annotated[
            str, typer.Option("--region", help="india, japan, or LATMIN,LATMAX,LONMIN,LONMAX in degrees.")
        ] = "india",
        systems: Annotated[
            str, typer.Option("--systems", help="Constellations: G R E J C I, e.g. I or GJI.")
        ] = "I",
        step_deg: Annotated[float, typer.Option("--step-deg", help="Grid spacing (deg).")] = 0.5,
        step_min: Annotated[float, typer.Option("--step-min", help="Time step (minutes).")] = 5.0,
        elev_mask_deg: Annotated[float, typer.Option("--elev-mask-deg", help="Elevation mask (deg).")] = 10.0,
        hours: Annotated[float, typer.Option("--hours", help="Length of the map in hours.")] = 24.0,
        pdop_max: Annotated[
            float,
            typer.Option("--pdop-max", help="Availability: fraction of time with PDOP at or below this."),
        ] = 6.0,
        site: Annotated[
            str | None,
            typer.Option(
                "--site", help="Also a DOP time series and sky plot at LAT,LON (deg) on the ellipsoid."
            ),
        ] = None,
    ) -> None:
        """Map DOP and availability over a region for one day from broadcast orbits.

        Writes OUT/dop.nc (NetCDF: n_sats, gdop, pdop, hdop, vdop, tdop on time x lat x lon),
        pdop_median.tif and availability.tif (GeoTIFF, EPSG:4326), summary.json (pdop_median, pdop_p95,
        availability_fraction, ...), figures and report.html; with --site also site_dop.csv (time, n_sats,
        DOPs), site_dop.png and site_sky.png.
        """
        from kizuna.core.io import atomic_write, output_dir, png_bytes, write_csv, write_json, write_netcdf
        from kizuna.core.raster import raster_from_centres, write_geotiff
        from kizuna.core.report import Report
        from kizuna.gnss.cli import load_nav, warn_problems
        from kizuna.gnss.dop import (
            availability_map,
            dop_map,
            dop_series,
            parse_region,
            parse_systems,
            sky_tracks,
            summarise_dop_map,
        )
        from kizuna.gnss.gtime import parse_date
        from kizuna.gnss.plots import (
            availability_map_figure,
            dop_map_figure,
            dop_series_figure,
            sky_plot_figure,
        )

        box = parse_region(region, "--region")
        letters = parse_systems(systems.upper(), "--systems")
        day = parse_date(date, "--date")
        if not 0.0 < step_deg <= 10.0:
            raise InputError(f"--step-deg {step_deg}: expected a grid spacing in (0, 10] degrees")
        if not 0.0 < step_min <= 180.0:
            raise InputError(f"--step-min {step_min}: expected a time step in (0, 180] minutes")
        if not 0.0 < hours <= 168.0:
            raise InputError(f"--hours {hours}: expected a length in (0, 168] hours")
        site_ll = None
        if site is not None:
            try:
                site_ll = tuple(float(v) for v in site.split(","))
            except ValueError:
                site_ll = ()
            if len(site_ll) != 2 or not (-90 <= site_ll[0] <= 90 and -180 <= site_ll[1] <= 360):
                raise InputError(f"--site {site!r}: expected LAT,LON in degrees")
        t0 = time.perf_counter()
        nav_data = load_nav(nav)
        warn_problems(nav_data.problems)
        with progress_bar("dop map", 1.0, quiet=quiet_enabled()) as advance:
            ds = dop_map(
                nav_data,
                systems=letters,
                date=day,
                region=box,
                step_deg=step_deg,
                step_s=step_min * 60.0,
                elev_mask_deg=elev_mask_deg,
                duration_s=hours * 3600.0,
                progress=advance,
            )
        summary = summarise_dop_map(ds, pdop_max)
        avail = availability_map(ds, pdop_max)
        summary.update(
            nav_files=[str(p) for p in nav],
            region_deg=list(box),
            step_deg=step_deg,
            step_s=step_min * 60.0,
            seconds=round(time.perf_counter() - t0, 3),
        )
        if summary.get("solution_fraction", 0.0) == 0.0:
            raise InputError(
                f"{', '.join(map(str, nav))}: no valid ephemeris of systems {letters!r} "
                f"gives a solution on {date}"
            )
        lats, lons = ds["lat"].values, ds["lon"].values
        with output_dir(out) as tmp:
            write_netcdf(tmp / "dop.nc", ds.assign(availability=avail))
            pdop_med = ds["pdop"].median("time", skipna=True).values
            write_geotiff(
                tmp / "pdop_median.tif",
                raster_from_centres(pdop_med, lats, lons, "EPSG:4326"),
                dtype="float32",
            )
            write_geotiff(
                tmp / "availability.tif",
                raster_from_centres(avail.values, lats, lons, "EPSG:4326"),
                dtype="float32",
            )
            write_json(tmp / "summary.json", summary)
            report = Report(f"DOP and availability: {letters} on {date}")
            report.add_key_figures(
                {
                    "median PDOP": summary.get("pdop_median"),
                    "95 % PDOP": summary.get("pdop_p95"),
                    f"time with PDOP <= {pdop_max:g}": summary.get("availability_fraction"),
                    "mean satellites": summary.get("n_sats_mean"),
                }
            )
            report.add_text(
                f"Systems {letters}; region {box[0]:g}..{box[1]:g} N, {box[2]:g}..{box[3]:g} E every "
                f"{step_deg:g} deg; {ds.sizes['time']} epochs every {step_min:g} min from {date} (GPST); "
                f"elevation mask {elev_mask_deg:g} deg; one receiver clock per constellation (QZSS with GPS)."
            )
            figs = {
                "pdop_median.png": dop_map_figure(ds, "pdop", "median"),
                "pdop_p95.png": dop_map_figure(ds, "pdop", "p95"),
                "n_sats_median.png": dop_map_figure(ds, "n_sats", "median"),
                "availability.png": availability_map_figure(ds, pdop_max),
            }
            if site_ll is not None:
                where = dict(lat_deg=site_ll[0], lon_deg=site_ll[1], systems=letters, start=day)
                common = dict(duration_s=hours * 3600.0, step_s=step_min * 60.0)
                series = dop_series(nav_data, **where, **common, elev_mask_deg=elev_mask_deg)
                write_csv(tmp / "site_dop.csv", series)
                figs["site_dop.png"] = dop_series_figure(series)
                figs["site_sky.png"] = sky_plot_figure(
                    sky_tracks(nav_data, **where, **common), elev_mask_deg=elev_mask_deg
                )
            import matplotlib.pyplot as plt

            for name, fig in figs.items():
                png = png_bytes(fig, dpi=110)  # rendered once, for the file and for the report
                plt.close(fig)
                atomic_write(tmp / name, png)
                report.add_figure(png, name.removesuffix(".png").replace("_", " "))
            report.add_table(
                {k: v for k, v in summary.items() if not isinstance(v, list | dict)}, caption="summary.json"
            )
            report.write(tmp / "report.html")
        med = summary.get("pdop_median")
        say(
            f"kizuna: DOP map {letters} {date}: {ds.sizes['time']} epochs x {len(lats)} x {len(lons)} "
            "points, "
            f"median PDOP {med if med is None else round(med, 2)}, PDOP <= {pdop_max:g} "
            f"{100 * summary['availability_fraction']:.1f} % in {summary['seconds']:.1f} s -> {out}"
        )
