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

from kizuna.core.io import atomic_write, read_image
from kizuna.errors import InputError
from kizuna.lunar.nav.detect import DETECTION_COLUMNS, DetectorSpec, detect_craters

__all__ = ["app", "detect"]

app = typer.Typer(
    help="Crater-based lunar landing navigation: detect craters in descent images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _quiet() -> bool:
    """Return True when the top-level ``--quiet`` option was given."""
    # Imported here, not at the top: kizuna.cli imports this module to mount it.
    from kizuna.cli import quiet_enabled

    return quiet_enabled()


def _say(message: str) -> None:
    """Print a one-line summary on stderr unless ``--quiet``."""
    if not _quiet():
        typer.echo(message, err=True)


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
    threshold: Annotated[float, typer.Option(help="Minimum detection score.")] = DetectorSpec.threshold,
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
    t0 = time.perf_counter()
    if sun_azimuth_deg is not None and not math.isfinite(sun_azimuth_deg):
        raise InputError(f"--sun-azimuth-deg {sun_azimuth_deg}: expected a finite angle in degrees")
    if max_radius_px is not None and not (math.isfinite(max_radius_px) and max_radius_px > min_radius_px):
        raise InputError(f"--max-radius-px {max_radius_px}: expected a radius above --min-radius-px")
    spec = DetectorSpec(min_radius_px=min_radius_px, max_radius_px=max_radius_px, threshold=threshold)
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
    _say(
        f"kizuna lunar detect: {len(craters)} craters in {image} ({w}x{h} px), {sun}, "
        f"{time.perf_counter() - t0:.2f} s -> {out}"
    )
