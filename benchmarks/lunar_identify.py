"""Benchmark of lost-in-space crater identification against the Head 2010 + LROC 5-20 km catalogues.

Test set (generated from the real catalogue): cameras 100-600 km above the surface over points drawn
uniformly on the sphere within +-60 deg latitude (where both catalogues cover), 0/30/60 deg off nadir
toward a random azimuth, random roll, 60 deg field of view, 1024 x 1024 px; the rims projected exactly,
then Gaussian centre noise (sigma 0.5, 1.5 or 3 px), axis noise (1, 2.5 or 5 %), false detections making
up 0, 20 or 40 % of the list, and 0 or 20 % of the true craters dropped; attitude prior error uniform in
0-1 deg (sigma given as 1 deg), or no prior. A drawn view showing fewer than 8 catalogued craters (the
maria at 100 km) is drawn again; how many were redrawn is printed.

A case succeeds when at least 95 % of its matches name the right crater (a matched false detection
counts as wrong) and the camera position is within 2 ground pixels (median range to the visible craters
over the focal length). "Wrong ok" is a case reported "ok" whose matches are not 95 % right.

Run: ``python benchmarks/lunar_identify.py [--per-cell N] [--workers W]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from itertools import product
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

DATA = Path(os.environ.get("KIZUNA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CATALOGUES = [
    DATA / "lunar" / "deepmoon" / "HeadCraters.csv",
    DATA / "lunar" / "deepmoon" / "LROCCraters.csv",
]
ALTITUDES_KM = (100, 250, 400, 600)
OFF_NADIR_DEG = (0, 30, 60)
NOISE = ((0.5, 0.01), (1.5, 0.025), (3.0, 0.05))
FALSE = (0.0, 0.2, 0.4)
DROP = (0.0, 0.2)
MIN_VISIBLE = 8

_INDEX = None


def line(name: str, value: object, unit: str = "") -> None:
    """Print one figure as 'name: value unit'."""
    print(f"  {name}: {value}{(' ' + unit) if unit else ''}", flush=True)


def _index():
    global _INDEX
    if _INDEX is None:
        from kizuna.lunar.nav.id_index import load_or_build_index, read_id_catalog

        _INDEX = load_or_build_index(read_id_catalog(CATALOGUES))
    return _INDEX


def run_case(args: tuple) -> dict:
    """Draw and run one case; return its outcome."""
    from kizuna.lunar.nav.id_sim import NoiseSpec, camera_for_view, noisy_detections, view_pose
    from kizuna.lunar.nav.identify import AttitudePrior, identify, rotation_angle_deg

    seed, alt_km, off, (sc, sa), ff, dr, with_prior = args
    index = _index()
    cam = camera_for_view()
    rng = np.random.default_rng(seed)
    redraws = 0
    while True:
        lat = float(np.degrees(np.arcsin(rng.uniform(-np.sin(np.radians(60)), np.sin(np.radians(60))))))
        lon = float(rng.uniform(-180.0, 180.0))
        R, r = view_pose(lat, lon, alt_km * 1e3, off, rng.uniform(0, 360), rng.uniform(0, 360))
        v = noisy_detections(index, cam, R, r, NoiseSpec(sc, sa, ff, dr), rng)
        if v.n_visible >= MIN_VISIBLE:
            break
        redraws += 1
    prior = None
    if with_prior:
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        tilt = Rotation.from_rotvec(np.radians(rng.uniform(0.0, 1.0)) * axis).as_matrix()
        prior = AttitudePrior(tilt @ R, 1.0)
    t0 = time.perf_counter()
    res = identify(v.detections, cam, index, prior)
    dt = time.perf_counter() - t0
    out = dict(seed=seed, alt=alt_km, off=off, noise=sc, axis=sa, false=ff, drop=dr, prior=with_prior,
               time_s=dt, n_visible=v.n_visible, redraws=redraws, status=res.status)  # fmt: skip
    if res.status == "ok":
        row_of = {str(c): k for k, c in enumerate(index.catalog.ids)}
        good = sum(v.truth_row[i] == row_of[c] for i, c in res.matches)
        out.update(
            n_matches=res.n_matches,
            id_share=good / res.n_matches,
            err_gsd=float(np.linalg.norm(res.position_m - r) / v.gsd_m),
            att_deg=float(rotation_angle_deg(res.R_cam_from_me, R)),
            # the error in units of the fix's own 3-D sigma: median 0.67 (one dominant axis) to 0.89
            # (isotropic) when the covariance is right
            err_over_sigma=float(
                np.linalg.norm(res.position_m - r) / np.sqrt(np.trace(res.covariance[3:, 3:]))
            ),
            sigma_gsd=float(np.sqrt(np.trace(res.covariance[3:, 3:])) / v.gsd_m),
        )
    return out


def summarise(rows: list[dict], label: str) -> None:
    """Print the figures of a list of case outcomes."""
    import pandas as pd

    df = pd.DataFrame(rows)
    ok = df[df.status == "ok"]
    ids_ok = ok.id_share >= 0.95
    success = ids_ok & (ok.err_gsd <= 2.0)
    print(f"{label}:", flush=True)
    line("cases", len(df))
    line("reported ok", f"{len(ok)} ({100 * len(ok) / len(df):.1f} %)")
    line("identification success (IDs >= 95 % right and position <= 2 GSD)",
         f"{100 * success.sum() / len(df):.1f} %")  # fmt: skip
    line("IDs right (>= 95 % of matches), any position error", f"{100 * ids_ok.sum() / len(df):.1f} %")
    line(
        "wrong identifications reported ok",
        f"{int((~ids_ok).sum())} ({100 * (~ids_ok).sum() / len(df):.2f} %)",
    )
    if len(ok):
        line("median position error", f"{ok.err_gsd.median():.2f}", "GSD")
        line("median attitude error", f"{ok.att_deg.median():.3f}", "deg")
        line(
            "median predicted position sigma (3-D, from the fit's covariance)",
            f"{ok.sigma_gsd.median():.2f}",
            "GSD",
        )
        line("median error / predicted sigma (0.67-0.89 if the covariance is right)",
             f"{ok.err_over_sigma.median():.2f}")  # fmt: skip
    line("time per case median / p95", f"{df.time_s.median():.2f} / {df.time_s.quantile(0.95):.2f}", "s")
    for key, name in (("noise", "centre sigma px"), ("alt", "altitude km"), ("off", "off-nadir deg")):
        parts = []
        for val, g in df.groupby(key):
            o = g[g.status == "ok"]
            s = ((o.id_share >= 0.95) & (o.err_gsd <= 2.0)).sum()
            ids = (o.id_share >= 0.95).sum()
            med = f"{o.err_gsd.median():.2f}" if len(o) else "-"
            att = f"{o.att_deg.median():.3f}" if len(o) else "-"
            parts.append(f"{val}: success {100 * s / len(g):.0f} %, IDs {100 * ids / len(g):.0f} %, "
                         f"pos {med} GSD, att {att} deg")  # fmt: skip
        line(f"by {name}", "; ".join(parts))


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-cell", type=int, default=1, help="cases per grid cell and prior mode")
    ap.add_argument("--workers", type=int, default=2, help="worker processes")
    ap.add_argument("--out", type=Path, default=None, help="CSV of every case (optional)")
    args = ap.parse_args()
    from kizuna.lunar.nav.id_index import build_index, load_or_build_index, read_id_catalog

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    print(f"kizuna lunar identification benchmark ({platform.node()}, {os.cpu_count()} cores, "
          f"commit {commit.strip() or '?'})", flush=True)  # fmt: skip
    t0 = time.perf_counter()
    cat = read_id_catalog(CATALOGUES)
    idx = build_index(cat)
    print("index:", flush=True)
    line("catalogue craters", len(cat))
    line("triads (x3 rotations)", len(idx))
    line("build time, no cache (read + build + trees)", f"{time.perf_counter() - t0:.1f}", "s")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["KIZUNA_CACHE_DIR"] = cache
        load_or_build_index(cat)  # fill the cache for the workers
        t1 = time.perf_counter()
        load_or_build_index(cat)
        line("load from cache", f"{time.perf_counter() - t1:.1f}", "s")
        cells = list(product(ALTITUDES_KM, OFF_NADIR_DEG, NOISE, FALSE, DROP))
        tasks = []
        seed = 1000
        for with_prior in (True, False):
            for cell in cells:
                for _ in range(args.per_cell):
                    seed += 1
                    tasks.append((seed, *cell, with_prior))
        t2 = time.perf_counter()
        with ProcessPoolExecutor(args.workers) as ex:
            rows = list(ex.map(run_case, tasks, chunksize=4))
    redrawn = sum(r["redraws"] for r in rows)
    print(f"grid: {len(cells)} cells x {args.per_cell} per prior mode, {len(rows)} cases in "
          f"{time.perf_counter() - t2:.0f} s on {args.workers} workers; "
          f"{redrawn} views redrawn for showing < {MIN_VISIBLE} craters", flush=True)  # fmt: skip
    if args.out is not None:
        import pandas as pd

        args.out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(args.out, index=False)
    summarise([r for r in rows if r["prior"]], "with attitude prior (error <= 1 deg)")
    summarise([r for r in rows if not r["prior"]], "without attitude prior")


if __name__ == "__main__":
    main()
