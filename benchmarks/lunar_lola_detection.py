"""Benchmark of crater detection on views rendered from the real LOLA global DEM, scored against the
Head et al. (2010) catalogue of lunar craters D >= 20 km.

Views: nadir, 3000 km above the sphere, 200 x 200 px, 12 deg field of view (about 3.3 km per pixel),
centred on latitude rows -55 to +55 deg in the longitude sectors 90-180 and 270-360 deg E, which hold
none of the views the globe ring classifier was trained or tuned on; each at Sun elevations 10, 20, 30
and 45 deg at the view centre (the elevation varies by about +-11 deg across a view), with a different
Sun azimuth for every view. Detector: the rim-height ring detector (:mod:`kizuna.lunar.nav.ring_detect`)
through :func:`kizuna.lunar.nav.globe_detect.detect_view`. Recall: Head craters >= 80 km wholly in the
frame matched by a detection; precision: detections of at least 0.7 x 80 km that match any Head crater
(match rule of :func:`kizuna.lunar.nav.globe_detect.match_catalog`). The baseline beside it is
``detect_craters`` with its default settings on the plain rendered image. Recall is also given by
each crater's relief in the DEM over its diameter (:func:`kizuna.lunar.nav.globe.crater_relief`), over all
elevations: how much of a crater there is to see in shading at all.

Prints one line per figure (``name: value unit``).

    python benchmarks/lunar_lola_detection.py
    python benchmarks/lunar_lola_detection.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from kizuna.lunar.nav.catalog import read_catalog
from kizuna.lunar.nav.detect import detect_craters
from kizuna.lunar.nav.globe import crater_relief, load_global_dem, render_nadir
from kizuna.lunar.nav.globe_detect import (
    TRAIN_LON_SECTORS_DEG,
    VIEW_ALTITUDE_M,
    VIEW_FOV_DEG,
    VIEW_SIZE_PX,
    complement_sectors,
    detect_view,
    match_catalog,
    sector_view_centres,
    view_extent_m,
)

LAT_ROWS_DEG = (-55.0, -33.0, -11.0, 11.0, 33.0, 55.0)
SUN_ELEVATIONS_DEG = (10.0, 20.0, 30.0, 45.0)
MIN_DIAMETER_M = 80e3
# bins of a crater's relief in the DEM over its diameter (rim band less floor, globe.crater_relief)
RELIEF_BINS = (0.0, 0.01, 0.02, 0.03)


def line(name: str, value: object, unit: str = "") -> None:
    """Print one figure."""
    if isinstance(value, float):
        value = f"{value:.4g}"
    print(f"{name}: {value} {unit}".rstrip(), flush=True)


def _totals(scores: list) -> tuple[int, int, int, int, float, float]:
    nt = sum(s.n_true for s in scores)
    nd = sum(s.n_detections for s in scores)
    recall = sum(s.n_true_matched for s in scores) / nt if nt else float("nan")
    precision = sum(s.n_detections_matched for s in scores) / nd if nd else float("nan")
    err_m = np.concatenate([s.centre_error_m for s in scores])
    err_px = np.concatenate([s.centre_error_px for s in scores])
    med_m = float(np.median(err_m)) if err_m.size else float("nan")
    med_px = float(np.median(err_px)) if err_px.size else float("nan")
    return nt, nd, recall, precision, med_m, med_px


def bench(data: Path) -> None:
    """Render the views, detect, score per Sun elevation, and time each step."""
    dem = load_global_dem(data / "lunar" / "lola" / "LDEM_4.IMG")
    head = read_catalog(data / "lunar" / "deepmoon" / "HeadCraters.csv")
    margin, side = view_extent_m()
    centres = sector_view_centres(complement_sectors(TRAIN_LON_SECTORS_DEG), LAT_ROWS_DEG, margin, side)
    t_render, t_detect, t_base = [], [], []
    relief, found = [], []
    for el in SUN_ELEVATIONS_DEG:
        scores, base = [], []
        for k, (lat, lon) in enumerate(centres):
            az = (41.0 * k + 13.0 * el) % 360.0
            t0 = time.perf_counter()
            view = render_nadir(
                dem, lat, lon, VIEW_ALTITUDE_M, VIEW_SIZE_PX, VIEW_FOV_DEG, el, az,
                rng=np.random.default_rng(k),
            )  # fmt: skip
            t1 = time.perf_counter()
            det = detect_view(view)
            t2 = time.perf_counter()
            det0 = detect_craters(view.image, view.sun_azimuth_image_deg)
            t3 = time.perf_counter()
            t_render.append(t1 - t0)
            t_detect.append(t2 - t1)
            t_base.append(t3 - t2)
            scores.append(match_catalog(det, head, view, MIN_DIAMETER_M, dem=dem))
            t = scores[-1].true_craters
            relief.append(crater_relief(dem, t.lat_deg, t.lon_deg, t.diameter_m))
            found.append(scores[-1].true_matched)
            base.append(match_catalog(det0, head, view, MIN_DIAMETER_M, dem=dem))
        nt, nd, recall, precision, med_m, med_px = _totals(scores)
        tag = f"sun_el_{el:g}deg"
        line(f"lola_views_{tag}", len(centres))
        line(f"lola_true_craters_ge_80km_{tag}", nt)
        line(f"lola_detections_ge_56km_{tag}", nd)
        line(f"lola_recall_{tag}", recall)
        line(f"lola_precision_{tag}", precision)
        line(f"lola_centre_error_median_{tag}", med_m / 1e3, "km")
        line(f"lola_centre_error_median_px_{tag}", med_px, "px")
        _, nd0, recall0, precision0, _, _ = _totals(base)
        line(f"baseline_default_detector_recall_{tag}", recall0)
        line(f"baseline_default_detector_precision_{tag}", precision0)
    # recall against what the DEM itself holds of each crater (all elevations together)
    relief_all, found_all = np.concatenate(relief), np.concatenate(found)
    edges = (*RELIEF_BINS, np.inf)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (relief_all >= lo) & (relief_all < hi)
        tag = f"relief_over_d_{lo:g}_to_{hi:g}".replace("inf", "max")
        line(f"lola_true_craters_{tag}", int(sel.sum()))
        line(f"lola_recall_{tag}", float(found_all[sel].mean()) if sel.any() else float("nan"))
    line("lola_share_of_craters_relief_over_d_below_0.02", float(np.mean(relief_all < 0.02)))
    n = len(t_render)
    line("lola_render_time_per_view_median", float(np.median(t_render)), "s")
    line("lola_detect_time_per_view_median", float(np.median(t_detect)), "s")
    line("lola_seconds_per_view", float((np.sum(t_render) + np.sum(t_detect)) / n), "s")
    line("baseline_default_detector_time_per_view_median", float(np.median(t_base)), "s")


def main() -> None:
    """Run the benchmark on the shared data folder."""
    ap = argparse.ArgumentParser(description=__doc__)
    default = Path(
        os.environ.get("KIZUNA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    ap.add_argument("--data", type=Path, default=default, help="shared data folder (holds lunar/lola, ...)")
    args = ap.parse_args()
    py = platform.python_version()
    line("machine", f"{platform.node()} {platform.machine()} cpus={os.cpu_count()} python={py}")
    commit = os.environ.get("KIZUNA_COMMIT", "")
    if not commit:
        try:
            git = ["git", "rev-parse", "--short", "HEAD"]
            commit = subprocess.run(git, capture_output=True, text=True).stdout.strip()
        except OSError:
            commit = "unknown"
    line("commit", commit)
    t0 = time.perf_counter()
    bench(args.data)
    line("lola_benchmark_wall_time", time.perf_counter() - t0, "s")


if __name__ == "__main__":
    main()
