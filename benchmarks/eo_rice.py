"""Benchmark of rice mapping (kizuna.eo.rice) on the An Giang point set (EY challenge 2023, Mekong Delta).

Prints one line per figure: leave-one-site-out accuracy of the trained classifier (target >= 0.99; a
phase-invariant baseline reaches 0.988), the rule-based mode without labels (target >= 0.90), random-fold
accuracy beside it, a raw time-series classifier as the naive peer (random folds against sites left out),
the rice area with its 95 % confidence interval, and the time to classify 1000 points or pixels.

Run: .venv/bin/python benchmarks/eo_rice.py [DATA_DIR]
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

from kizuna.eo.area import (
    classification_metrics,
    error_matrix,
    group_cross_val_predict,
    random_cross_val_predict,
    site_clusters,
    stratified_area_estimate,
)
from kizuna.eo.rice import (
    FeatureConfig,
    classify_raster,
    classify_rules,
    fill_gaps,
    make_estimator,
    point_features,
    train_classifier,
)
from kizuna.eo.rice_io import read_point_dataset

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "eo" / "rice_s1_s2_angiang_vietnam"
STEP_DAYS = 3.75  # 76 acquisitions in about 285 days
PIXEL_AREA_KM2 = 0.0025  # one point = 5 x 5 Sentinel-1 pixels of 10 m


def _line(name: str, value: float, unit: str = "", target: str = "") -> None:
    """Print one figure as 'name: value unit (target ...)'."""
    tail = f" ({target})" if target else ""
    print(f"{name}: {value:.4f}" + (f" {unit}" if unit else "") + tail)


def main(data_dir: str | Path | None = None) -> None:
    """Measure the issue's rice figures on the real point data set and print them."""
    d = Path(data_dir) if data_dir else DEFAULT_DATA
    pts = read_point_dataset(d, with_s2=True)
    test = read_point_dataset(d, split="test")
    y = pts.label.astype(int)
    sites = site_clusters(pts.lat_deg, pts.lon_deg, eps_deg=0.03)
    t_days = np.arange(pts.s1_db.shape[2]) * STEP_DAYS
    factory = partial(make_estimator, "random_forest", 0, 300)
    print(f"data: {len(y)} labelled points ({int(y.sum())} rice) in {len(np.unique(sites))} sites, {d}")

    # Trained classifier on the value distributions (the default features).
    X, names = point_features(pts, t_days=t_days)
    t0 = time.perf_counter()
    p_site = group_cross_val_predict(factory, X, y, sites)
    loso_s = time.perf_counter() - t0
    m = classification_metrics(y, p_site >= 0.5)
    _line("rice_leave_site_out_overall_accuracy", m["overall_accuracy"], "", "target >= 0.99; baseline 0.988")
    _line("rice_leave_site_out_f1", m["f1"])
    p_rand = random_cross_val_predict(factory, X, y, n_folds=5, seed=0)
    _line("rice_random_fold_overall_accuracy", float(np.mean((p_rand >= 0.5) == y)), "", "spatially leaky")
    _line("rice_leave_site_out_fit_time", loso_s, "s", "7 random forests of 300 trees")

    # Other feature sets, for the record.
    for label, groups, s2 in (
        ("dynamics", ("dynamics",), False),
        ("distribution+dynamics", ("distribution", "dynamics"), False),
        ("distribution+s2", ("distribution",), True),
    ):
        Xg, _ = point_features(pts, t_days=t_days, groups=groups, with_s2=s2)
        pg = group_cross_val_predict(factory, Xg, y, sites)
        _line(
            f"rice_leave_site_out_overall_accuracy_{label.replace('+', '_')}",
            float(np.mean((pg >= 0.5) == y)),
        )

    # Rules: no labels used at all.
    Xr, nr = point_features(pts, t_days=t_days, groups=("dynamics",))
    rule_pred, _ = classify_rules(Xr, nr)
    _line("rice_rules_overall_accuracy", float(np.mean(rule_pred == y)), "", "target >= 0.90, no labels")
    _line("rice_rules_f1", classification_metrics(y, rule_pred)["f1"])

    # Naive peer: a random forest on the raw gap-filled dB series (tied to the crop calendar).
    raw = np.hstack([fill_gaps(pts.band_db(b), t_days) for b in ("vh", "vv")])
    pr_site = group_cross_val_predict(factory, raw, y, sites)
    pr_rand = random_cross_val_predict(factory, raw, y, n_folds=5, seed=0)
    _line("raw_series_random_fold_overall_accuracy", float(np.mean((pr_rand >= 0.5) == y)), "", "peer")
    _line("raw_series_leave_site_out_overall_accuracy", float(np.mean((pr_site >= 0.5) == y)), "", "peer")

    # Area: map = every point (labelled: site-out prediction; unlabelled: final model), 0.0025 km2 each.
    model = train_classifier(X, y, names, step_days=STEP_DAYS)
    Xt, _ = point_features(test, t_days=np.arange(test.s1_db.shape[2]) * STEP_DAYS)
    all_map = np.concatenate([(p_site >= 0.5).astype(int), (model.predict_proba(Xt) >= 0.5).astype(int)])
    mapped = np.array([np.sum(all_map == 0), np.sum(all_map == 1)]) * PIXEL_AREA_KM2
    est = stratified_area_estimate(error_matrix(p_site >= 0.5, y, 2), mapped, classes=["non_rice", "rice"])
    _line("rice_mapped_area", float(mapped[1]), "km2")
    _line("rice_area_adjusted", float(est.area[1]), "km2")
    _line("rice_area_ci95_half_width", float(est.area_ci[1]), "km2")

    # Time to classify 1000 points: features + prediction, on the unlabelled points tiled to 20,000.
    big = np.tile(test.s1_db, (80, 1, 1))
    tb = np.arange(big.shape[2]) * STEP_DAYS
    from kizuna.eo.rice import s1_features

    t0 = time.perf_counter()
    Xb, _ = s1_features(big[:, 0], big[:, 1], tb)
    model.predict_proba(Xb)
    _line("rice_trained_time_per_1000_points", 1000 * (time.perf_counter() - t0) / len(big), "s")
    t0 = time.perf_counter()
    Xb, nb = s1_features(big[:, 0], big[:, 1], tb, groups=("dynamics",))
    classify_rules(Xb, nb)
    _line("rice_rules_time_per_1000_points", 1000 * (time.perf_counter() - t0) / len(big), "s")

    # Raster throughput: the same series as a 200 x 100 stack in linear power, Dask chunks of 50 x 50.
    import xarray as xr

    lin = 10 ** (big / 10)
    cube = lin.reshape(200, 100, 2, -1).transpose(3, 2, 0, 1)
    da = xr.DataArray(cube, dims=("time", "band", "y", "x"), coords={"band": ["vh", "vv"]}).chunk(
        {"y": 50, "x": 50}
    )
    t0 = time.perf_counter()
    classify_raster(da, model=model, config=FeatureConfig()).compute()
    _line(
        "rice_raster_time_per_1000_pixels",
        1000 * (time.perf_counter() - t0) / (200 * 100),
        "s",
        "dask, 8 chunks",
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
