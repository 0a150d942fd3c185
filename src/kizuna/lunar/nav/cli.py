"""Command line of crater-based landing navigation, mounted as ``kizuna lunar``.

A thin edge: each command parses its options, calls the library, writes its outputs atomically and
prints a one-line summary on stderr (not with ``kizuna --quiet``). Errors are raised, not printed: the
top-level ``kizuna`` command turns them into one line and an exit code.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated

import typer

from kizuna.core.console import quiet_enabled, say
from kizuna.core.progress import progress_bar
from kizuna.errors import InputError
from kizuna.lunar.nav.detect_spec import DetectorSpec

# The library modules (numpy, numba kernels, scipy, matplotlib) are imported inside the commands, so that
# starting ``kizuna`` does not pay for them.

__all__ = ["app", "detect", "land", "campaign", "identify_cmd"]

app = typer.Typer(
    help="Crater-based lunar landing navigation: simulate landings and campaigns, detect craters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command("detect")
def detect(
    image: Annotated[Path, typer.Argument(help="8- or 16-bit grayscale PNG, TIFF or PGM image.")],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="CSV to write, columns x_px,y_px,a_px,b_px,theta_rad,score."),
    ],
    sun_azimuth_deg: Annotated[
        float | None,
        typer.Option(
            help="Image direction the light comes from (deg from +x toward +y, y down); estimated if omitted."
        ),
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="Minimum shading-signature strength of a candidate.")
    ] = DetectorSpec.threshold,
    min_probability: Annotated[
        float | None,
        typer.Option(help="Minimum crater probability (0-1) to keep a candidate; default the model's own."),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(help="Candidate classifier (JSON) to use instead of the shipped one."),
    ] = None,
    min_radius_px: Annotated[
        float, typer.Option(help="Smallest crater radius to look for (px, >= 2).")
    ] = DetectorSpec.min_radius_px,
    max_radius_px: Annotated[
        float | None,
        typer.Option(
            help="Largest crater radius to look for (px); default a quarter of the image's short side."
        ),
    ] = None,
) -> None:
    """Detect craters in an image and write their ellipses (px, rad; x right, y down) to a CSV."""
    from kizuna.core.io import atomic_write, read_image
    from kizuna.lunar.nav.detect import DETECTION_COLUMNS, detect_craters

    t0 = time.perf_counter()
    if sun_azimuth_deg is not None and not math.isfinite(sun_azimuth_deg):
        raise InputError(f"--sun-azimuth-deg {sun_azimuth_deg}: expected a finite angle in degrees")
    if max_radius_px is not None and not (math.isfinite(max_radius_px) and max_radius_px > min_radius_px):
        raise InputError(f"--max-radius-px {max_radius_px}: expected a radius above --min-radius-px")
    spec = DetectorSpec(
        min_radius_px=min_radius_px, max_radius_px=max_radius_px, threshold=threshold,
        min_probability=min_probability, model_path=None if model is None else str(model),
    )  # fmt: skip
    img = read_image(image)
    if img.ndim != 2:
        raise InputError(f"{image}: image array of shape {img.shape}; expected a 2-D grayscale image")
    try:
        craters = detect_craters(img, sun_azimuth_deg=sun_azimuth_deg, spec=spec)
    except InputError as exc:
        raise InputError(f"{image}: {exc}") from exc
    text = craters[DETECTION_COLUMNS].to_csv(index=False, float_format="%.6f", lineterminator="\n")
    atomic_write(out, text)
    if sun_azimuth_deg is not None:
        sun = f"sun azimuth {sun_azimuth_deg:.1f} deg (given)"
    elif "sun_azimuth_deg" in craters.attrs:
        sun = f"sun azimuth {craters.attrs['sun_azimuth_deg']:.1f} deg (estimated)"
    else:
        sun = "sun azimuth estimated"
    h, w = img.shape
    say(
        f"kizuna lunar detect: {len(craters)} craters in {image} ({w}x{h} px), {sun}, "
        f"{time.perf_counter() - t0:.2f} s -> {out}"
    )


def _check_out(out: Path) -> None:
    """Refuse an output path that is an existing file (a folder is replaced whole at the end)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder; expected a folder path")


@app.command("land")
def land(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (replaced whole when done).")],
    seed: Annotated[int, typer.Option(help="Seed of the terrain, map error, noise and dispersions.")] = 1,
    sun_elevation_deg: Annotated[
        float | None,
        typer.Option(
            help="Sun elevation at the target (deg); default 20 (nominal), drawn in 0.5-3 by seed (polar)."
        ),
    ] = None,
    sun_azimuth_deg: Annotated[
        float | None,
        typer.Option(
            help="Sun azimuth at the target (deg from north to east); default 90 (nominal), drawn (polar)."
        ),
    ] = None,
    scenario: Annotated[
        str,
        typer.Option(
            help="nominal, or polar: LUPEX's south-pole low Sun (run SEED of `kizuna lunar campaign "
            "--scenario polar`: Sun, camera noise and map error drawn from the seed)."
        ),
    ] = "nominal",
    fov_deg: Annotated[float, typer.Option(help="Navigation camera horizontal field of view (deg).")] = 30.0,
    image_px: Annotated[int, typer.Option(help="Navigation camera image width and height (px).")] = 1024,
    epoch_utc: Annotated[
        str | None,
        typer.Option(help="UTC time of the landing (ISO 8601); the Sun then comes from the DE421 ephemeris."),
    ] = None,
    site_lat_deg: Annotated[
        float, typer.Option(help="Target latitude (deg), used with --epoch-utc.")
    ] = -85.0,
    site_lon_deg: Annotated[
        float, typer.Option(help="Target east longitude (deg), used with --epoch-utc.")
    ] = 30.0,
    fix_altitudes_m: Annotated[
        str | None,
        typer.Option(
            help="Altitudes of the image-fix points (m above the target), comma-separated; default "
            "14000,9000,5000,2500,1000,400,200 (two images at each)."
        ),
    ] = None,
    velocimeter_sigma_m_s: Annotated[
        float | None,
        typer.Option(
            help="Add a Doppler velocimeter below 5 km with this noise per body axis (m/s), e.g. 0.02; "
            "default none."
        ),
    ] = None,
    star_tracker_sigma_deg: Annotated[
        float | None,
        typer.Option(
            help="Add a star tracker with this attitude noise per axis (deg), e.g. 0.003; default none."
        ),
    ] = None,
) -> None:
    """Simulate one SLIM-like descent from 15 km to a 50 m hover, navigated by crater matching.

    With --scenario polar, where the crater fix fails (low Sun) the image is matched against a map image
    rendered from the onboard DEM. Writes OUT/summary.json (final_position_error_m, final_altitude_m,
    fixes_attempted, fixes_accepted, fixes_rejected, false_fixes, fixes_accepted_craters,
    fixes_accepted_correlation, median_fix_latency_s, ... in SI units), trajectory.parquet/csv, fixes.csv
    (with the method of each fix), figures and report.html.
    """
    from dataclasses import replace

    from kizuna.lunar.nav.campaign import campaign_scenarios, preset
    from kizuna.lunar.nav.descent import POLAR_SUN_ELEVATION_DEG, simulate_landing
    from kizuna.lunar.nav.outputs import write_landing_outputs

    _check_out(out)
    base, dispersions = preset(scenario.strip().lower())
    polar = scenario.strip().lower() == "polar"
    if not (math.isfinite(fov_deg) and 0.0 < fov_deg < 180.0):
        raise InputError(f"--fov-deg {fov_deg}: expected a field of view in (0, 180) deg")
    if sun_elevation_deg is not None:
        lo, hi = POLAR_SUN_ELEVATION_DEG if polar else (-90.0, 90.0)
        if not (
            math.isfinite(sun_elevation_deg) and lo <= sun_elevation_deg <= hi and sun_elevation_deg > -90
        ):
            where = f"[{lo:g}, {hi:g}] deg for --scenario polar" if polar else "(-90, 90] deg"
            raise InputError(f"--sun-elevation-deg {sun_elevation_deg}: expected a value in {where}")
    if sun_azimuth_deg is not None and not math.isfinite(sun_azimuth_deg):
        raise InputError(f"--sun-azimuth-deg {sun_azimuth_deg}: expected a finite angle in degrees")
    if image_px < 64:
        raise InputError(f"--image-px {image_px}: expected at least 64 px")
    if not -90.0 <= site_lat_deg <= 90.0:
        raise InputError(f"--site-lat-deg {site_lat_deg}: expected a latitude in [-90, 90] deg")
    sc = replace(
        base,
        epoch_utc=epoch_utc,
        site_lat_deg=site_lat_deg,
        site_lon_deg=site_lon_deg,
        fov_deg=fov_deg,
        image_width_px=image_px,
        image_height_px=image_px,
    ).with_seed(seed)
    if polar:  # the run of the polar campaign with this seed
        sc = campaign_scenarios(sc, 1, dispersions, first_seed=seed)[0]
    if sun_elevation_deg is not None:
        sc = replace(sc, sun_elevation_deg=sun_elevation_deg)
    if sun_azimuth_deg is not None:
        sc = replace(sc, sun_azimuth_deg=sun_azimuth_deg)
    if fix_altitudes_m is not None:
        sc = replace(sc, fix_altitudes_m=_altitudes(fix_altitudes_m))
    for option, value, name in (
        ("--velocimeter-sigma-m-s", velocimeter_sigma_m_s, "velocimeter_sigma_m_s"),
        ("--star-tracker-sigma-deg", star_tracker_sigma_deg, "star_tracker_sigma_deg"),
    ):
        if value is not None:
            if not (math.isfinite(value) and value > 0.0):
                raise InputError(f"{option} {value}: expected a positive noise (1 sigma per axis)")
            sc = replace(sc, **{name: value})
    az, el = sc.sun_azel_deg()
    if el <= 0.0:
        raise InputError(
            f"--epoch-utc {epoch_utc}: the Sun is {el:.2f} deg below the horizon at latitude "
            f"{site_lat_deg} deg, longitude {site_lon_deg} deg; expected a sunlit landing"
        )
    with progress_bar("landing", total=1.0, quiet=quiet_enabled()) as advance:
        result = simulate_landing(sc, progress=lambda f, text: advance(f, text))
    summary = write_landing_outputs(result, out)
    say(
        f"kizuna lunar land: final position error {summary['final_position_error_m']:.2f} m at "
        f"{summary['final_altitude_m']:.1f} m, fixes {summary['fixes_accepted']}/{summary['fixes_attempted']}"
        f" accepted, {summary['false_fixes']} false, {summary['runtime_s']:.0f} s -> {out}/report.html"
    )


def _altitudes(text: str) -> tuple[float, ...]:
    """Parse the --fix-altitudes-m list (m above the target)."""
    try:
        alts = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        alts = ()
    if not alts or not all(math.isfinite(a) and 0.0 < a < 15_000.0 for a in alts):
        raise InputError(
            f"--fix-altitudes-m {text!r}: expected comma-separated altitudes in (0, 15000) m, e.g. 9000,1000"
        )
    return alts


@app.command("campaign")
def campaign(
    runs: Annotated[int, typer.Option(help="Number of landing runs.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (replaced whole when done).")],
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Dask scheduler address (tcp://HOST:PORT); default KIZUNA_SCHEDULER or a local cluster."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Workers of the local cluster (default: all cores).")
    ] = None,
    first_seed: Annotated[int, typer.Option(help="Seed of the first run; run i uses first_seed + i.")] = 1,
    image_px: Annotated[int, typer.Option(help="Navigation camera image width and height (px).")] = 1024,
    serial: Annotated[bool, typer.Option(help="Run in this process instead of on Dask.")] = False,
    scenario: Annotated[
        str,
        typer.Option(help="nominal (Sun 5-45 deg) or polar (LUPEX's south pole: Sun 0.5-3 deg)."),
    ] = "nominal",
) -> None:
    """Run a Monte Carlo campaign of landings over dispersions (initial state, Sun, camera noise, map error).

    Writes OUT/summary.json (final_position_error_m_median, final_position_error_m_p95, false_fixes, runs,
    fix_availability, fix_availability_craters, fix_availability_correlation, final NEES test, ...),
    runs.parquet, fixes.parquet, figures and report.html.
    """
    from dataclasses import replace

    from kizuna.lunar.nav.campaign import preset, run_campaign
    from kizuna.lunar.nav.outputs import write_campaign_outputs

    _check_out(out)
    if runs < 1:
        raise InputError(f"--runs {runs}: expected at least 1 run")
    if image_px < 64:
        raise InputError(f"--image-px {image_px}: expected at least 64 px")
    base, dispersions = preset(scenario.strip().lower())
    base = replace(base, image_width_px=image_px, image_height_px=image_px)
    t0 = time.perf_counter()
    with progress_bar("campaign runs", total=runs, quiet=quiet_enabled()) as advance:
        runs_df, fixes, summary = run_campaign(
            base,
            runs,
            dispersions,
            first_seed=first_seed,
            mode="serial" if serial else "dask",
            scheduler=scheduler,
            n_workers=workers,
            progress=lambda done, total: advance(done, f"{done}/{total} runs"),
        )
    write_campaign_outputs(runs_df, fixes, summary, out)
    say(
        f"kizuna lunar campaign: {runs} runs, final error median "
        f"{summary['final_position_error_m_median']:.2f} m, 95th percentile "
        f"{summary['final_position_error_m_p95']:.2f} m, {summary['false_fixes']} false fixes, "
        f"{time.perf_counter() - t0:.0f} s -> {out}/report.html"
    )


@app.command("identify")
def identify_cmd(
    catalog: Annotated[
        list[Path],
        typer.Option(
            "--catalog",
            help="Crater catalogue CSV (id,lat_deg,lon_deg,diam_km[,elev_m], or the Head 2010 / LROC lists "
            "as staged); repeat to combine several.",
        ),
    ],
    detections: Annotated[
        Path, typer.Option(help="Detected ellipses: CSV x_px,y_px,a_px,b_px,theta_rad (kizuna lunar detect).")
    ],
    camera: Annotated[
        Path,
        typer.Option(
            help='Camera JSON: {"width","height","fov_deg"} or {"fx","fy","cx","cy","width","height"}.'
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Result JSON to write.")],
    attitude_prior: Annotated[
        Path | None,
        typer.Option(help='Attitude prior JSON: {"R_cam_from_me": 3x3, "sigma_deg": S}.'),
    ] = None,
    cache: Annotated[
        bool, typer.Option(help="Keep the catalogue's identification index in the on-disk cache.")
    ] = True,
    plot: Annotated[
        Path | None,
        typer.Option(help="Also write a PNG of the detections and the identified catalogue rims."),
    ] = None,
) -> None:
    """Identify detected craters in a catalogue with no position prior; write the pose (MOON_ME, m)."""
    from kizuna.core.io import write_json
    from kizuna.lunar.nav.id_index import load_or_build_index, read_id_catalog
    from kizuna.lunar.nav.id_io import read_attitude_prior, read_camera, read_detections
    from kizuna.lunar.nav.identify import IdResult, identify

    det = read_detections(detections)
    cam = read_camera(camera)
    prior = None if attitude_prior is None else read_attitude_prior(attitude_prior)
    cat = read_id_catalog(catalog)
    if cat.merged:
        say(f"{len(cat.merged)} near-duplicate catalogue entries merged (first: {cat.merged[0][0]} into "
             f"{cat.merged[0][1]})")  # fmt: skip
    index = None
    if len(det) < 3:  # nothing to identify: no index needed
        result = IdResult("no_fix", f"{len(det)} detections: at least 3 are needed")
    else:
        index = load_or_build_index(cat, cache=cache, log=say)
        result = identify(det, cam, index, prior)
    if plot is not None:
        from kizuna.core.io import write_png
        from kizuna.lunar.nav.id_io import identification_figure

        write_png(plot, identification_figure(det, cam, result, index), dpi=160)
    write_json(out, result.to_json())
    if result.status == "ok":
        lat, lon = _latlon_deg(result.position_m)
        alt_km = (float((result.position_m**2).sum()) ** 0.5 - 1_737_400.0) / 1e3
        where = f"over {lat:.3f} deg, {lon:.3f} deg at {alt_km:.1f} km, {result.n_matches} craters matched"
    else:
        where = f"no fix ({result.reason})"
    say(f"kizuna lunar identify: {len(det)} detections, {where}, {result.elapsed_s:.2f} s -> {out}")


def _latlon_deg(r_me: object) -> tuple[float, float]:
    """Planetocentric latitude and east longitude (deg) of a MOON_ME position."""
    x, y, z = (float(v) for v in r_me)  # type: ignore[union-attr]
    return math.degrees(math.atan2(z, math.hypot(x, y))), math.degrees(math.atan2(y, x))
