"""Benchmark of crater-matching landing navigation: accuracy, availability, detection quality and speed.

Prints one line per figure (``name: value unit``). The baselines beside the crater-matching navigation
are the same descent navigated without image fixes (the scenario's other sensors) and by IMU and
altimeter alone.

    python benchmarks/lunar_nav.py                 # full: 100-run campaign (about an hour on 2 cores)
    python benchmarks/lunar_nav.py --runs 10 --availability-seeds 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from kizuna.core.camera import Camera
from kizuna.core.rotations import look_at
from kizuna.lunar.nav.campaign import run_campaign
from kizuna.lunar.nav.descent import Scenario, simulate_landing
from kizuna.lunar.nav.detect import detect_craters
from kizuna.lunar.nav.outputs import write_campaign_outputs
from kizuna.lunar.nav.render import render, sun_direction_l
from kizuna.lunar.nav.scoring import score_detections, true_craters_in_view
from kizuna.lunar.nav.terrain import Terrain, TerrainSpec


def line(name: str, value: object, unit: str = "") -> None:
    """Print one figure."""
    if isinstance(value, float):
        value = f"{value:.4g}"
    print(f"{name}: {value} {unit}".rstrip(), flush=True)


def bench_detection(seeds: list[int]) -> None:
    """Precision/recall on rendered nadir 1024 x 1024 frames, and render and detect times."""
    cam = Camera.from_fov(1024, 1024, 30.0)
    scores: dict[float, list] = {}
    t_render, t_detect = [], []
    for seed in seeds:
        terrain = Terrain(TerrainSpec(seed=seed))
        for alt in (3000.0, 1000.0, 300.0):
            p = np.array([37.0 * seed, -11.0 * seed, alt])
            R = look_at(p, p - [0, 0, alt])
            for el in (5.0, 10.0, 20.0, 45.0):
                az = 40.0 + 77.0 * seed + 13.0 * el
                sun = sun_direction_l(az, el)
                t0 = time.perf_counter()
                frame = render(terrain, cam, R, p, sun, rng=np.random.default_rng(seed))
                t1 = time.perf_counter()
                s = R @ sun
                det = detect_craters(frame.image, math.degrees(math.atan2(s[1], s[0])))
                t2 = time.perf_counter()
                t_render.append(t1 - t0)
                t_detect.append(t2 - t1)
                truth = true_craters_in_view(terrain, frame, 5.0)
                scores.setdefault(el, []).append(score_detections(det, truth, 10.0))
    for el, sc in scores.items():
        tp_d = sum(s.precision * s.n_detections for s in sc)
        tp_t = sum(s.recall * s.n_true for s in sc)
        line(f"detection_precision_sun_el_{el:g}deg", tp_d / sum(s.n_detections for s in sc))
        line(f"detection_recall_sun_el_{el:g}deg", tp_t / sum(s.n_true for s in sc))
    all10 = [s for el, sc in scores.items() if el >= 10 for s in sc]
    line("detection_precision_sun_el_ge_10deg", sum(s.precision * s.n_detections for s in all10)
         / sum(s.n_detections for s in all10))  # fmt: skip
    line("detection_recall_sun_el_ge_10deg", sum(s.recall * s.n_true for s in all10)
         / sum(s.n_true for s in all10))  # fmt: skip
    line("render_time_per_1024_frame_median", float(np.median(t_render)), "s")
    line("detect_time_per_1024_frame_median", float(np.median(t_detect)), "s")


def bench_landing_cli() -> None:
    """Wall time and peak memory of `kizuna lunar land` on the built-in scenario."""
    exe = Path(sys.executable).with_name("kizuna")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [str(exe), "--quiet", "lunar", "land", "--out", f"{tmp}/land", "--seed", "1"],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if proc.returncode != 0:
            line("land_cli_error", proc.stderr.strip().splitlines()[-1] if proc.stderr else proc.returncode)
            return
        summary = json.loads(Path(f"{tmp}/land/summary.json").read_text())
    line("land_cli_wall_time", wall, "s")
    line("land_cli_peak_memory", peak_kib / 1024.0, "MiB")
    line("land_final_position_error", summary["final_position_error_m"], "m")
    line("land_median_fix_latency_detect_match_pose", summary["median_fix_latency_s"], "s")


def bench_baseline(seed: int) -> None:
    """The same descent navigated with crater fixes, without them, and by IMU and altimeter alone."""
    sc = Scenario().with_seed(seed)
    with_fix = simulate_landing(replace(sc, example_frames=0))
    e_with = with_fix.summary()["final_position_error_m"]
    line("crater_nav_final_error_seed", f"{seed} {e_with:.3f}", "m")
    without = simulate_landing(replace(sc, fix_altitudes_m=(), example_frames=0))
    e_without = without.summary()["final_position_error_m"]
    line(
        "baseline_no_image_fixes_final_error_seed",
        f"{seed} {e_without:.3f}",
        "m (IMU, altimeter, and the velocimeter and star tracker if configured)",
    )
    if sc.velocimeter_sigma_m_s > 0 or sc.star_tracker_sigma_deg > 0:
        bare = replace(without.scenario, velocimeter_sigma_m_s=0.0, star_tracker_sigma_deg=0.0)
        e_bare = simulate_landing(bare).summary()["final_position_error_m"]
    else:  # the scenario has no other sensors: the run without fixes is the IMU-and-altimeter one
        e_bare = e_without
    line("baseline_imu_altimeter_final_error_seed", f"{seed} {e_bare:.3f}", "m")
    line("crater_nav_vs_no_image_fixes_error_ratio", e_with / e_without)
    line("crater_nav_vs_baseline_error_ratio", e_with / e_bare)


def bench_availability(seeds: list[int]) -> None:
    """Fraction of attempted fixes accepted, and false fixes, at fixed Sun elevations."""
    for el in (3.0, 5.0, 10.0, 20.0, 45.0):
        att = acc = false = 0
        for seed in seeds:
            sc = replace(Scenario().with_seed(seed), sun_elevation_deg=el, example_frames=0)
            s = simulate_landing(sc).summary()
            att += s["fixes_attempted"]
            acc += s["fixes_accepted"]
            false += s["false_fixes"]
        line(f"fix_availability_sun_el_{el:g}deg", acc / max(att, 1))
        line(f"false_fixes_sun_el_{el:g}deg", false)


def bench_campaign(runs: int, scheduler: str | None, out: Path) -> None:
    """A Monte Carlo campaign over the default dispersions; its tables and report go to ``out``."""
    t0 = time.perf_counter()
    runs_df, fixes, summary = run_campaign(Scenario(), runs, mode="dask", scheduler=scheduler)
    write_campaign_outputs(runs_df, fixes, summary, out)
    line("campaign_runs", summary["runs"])
    line("campaign_wall_time", time.perf_counter() - t0, "s")
    for key in (
        "final_position_error_m_median",
        "final_position_error_m_p95",
        "final_position_error_m_max",
        "false_fixes",
        "false_fixes_strict",
        "fix_availability",
        "median_fix_error_gsd",
        "median_fix_error_onboard_attitude_gsd",
        "final_nees_mean",
        "final_nees_bound_low",
        "final_nees_bound_high",
        "final_nees_consistent",
        "median_fix_latency_s",
    ):
        line(f"campaign_{key}", summary[key])


def main() -> None:
    """Run the benchmark sections chosen on the command line."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=100, help="campaign runs (0 to skip)")
    ap.add_argument("--availability-seeds", type=int, default=3, help="runs per Sun elevation (0 to skip)")
    ap.add_argument("--detection-seeds", type=int, default=2, help="terrains for detection scoring")
    ap.add_argument("--scheduler", default=None, help="Dask scheduler address for the campaign")
    ap.add_argument("--skip-cli", action="store_true", help="skip the `kizuna lunar land` timing")
    ap.add_argument("--out", type=Path, default=Path("bench-out/lunar_nav_campaign"), help="campaign folder")
    args = ap.parse_args()
    py = platform.python_version()
    line("machine", f"{platform.node()} {platform.machine()} cpus={os.cpu_count()} python={py}")
    try:
        git = ["git", "rev-parse", "--short", "HEAD"]
        commit = subprocess.run(git, capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "unknown"
    line("commit", commit)
    if args.detection_seeds:
        bench_detection(list(range(1, args.detection_seeds + 1)))
    if not args.skip_cli:
        bench_landing_cli()
    bench_baseline(1)
    if args.availability_seeds:
        bench_availability(list(range(101, 101 + args.availability_seeds)))
    if args.runs:
        bench_campaign(args.runs, args.scheduler, args.out)


if __name__ == "__main__":
    main()
