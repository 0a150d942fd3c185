"""The ``kizuna eo rice`` commands: leave-site-out evaluation of rice mapping on a labelled point set
(``evaluate``) and classification of points or raster stacks (``classify``).

Each command reads its inputs, calls :mod:`kizuna.eo.rice` and :mod:`kizuna.eo.area`, writes an output
folder that replaces any old one only when complete, and prints a one-line summary on stderr.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from kizuna.core.console import quiet_enabled, say
from kizuna.errors import InputError

__all__ = ["app", "evaluate", "classify"]

app = typer.Typer(
    help="Rice mapping from Sentinel-1 VH/VV time series: leave-site-out evaluation with area estimates "
    "(Olofsson et al. 2014), and classification of point tables or raster stacks.",
    no_args_is_help=True,
)

MODES = ("trained", "rules")
CLASS_NAMES = ("non_rice", "rice")
DEFAULT_STEP_DAYS = 3.75  # the An Giang stack: 76 acquisitions in about 285 days
DEFAULT_PIXEL_AREA_KM2 = 0.0025  # one point = a 5 x 5 box of 10 m Sentinel-1 pixels


def _check_mode(mode: str) -> str:
    """Return the mode if valid, else raise InputError."""
    if mode not in MODES:
        raise InputError(f"--mode {mode!r}: expected one of {', '.join(MODES)}")
    return mode


def _parse_groups(text: str) -> tuple[str, ...]:
    """Return feature groups from 'distribution', 'dynamics' or 'all'."""
    from kizuna.eo.rice import FEATURE_GROUPS

    if text.strip().lower() == "all":
        return FEATURE_GROUPS
    groups = tuple(g.strip().lower() for g in text.split(",") if g.strip())
    bad = [g for g in groups if g not in FEATURE_GROUPS]
    if bad or not groups:
        raise InputError(
            f"--features {text!r}: expected distribution, dynamics, a comma list of them, or all"
        )
    return groups


def _parse_pair(text: str | None, option: str) -> tuple[float, float] | None:
    """Return two non-negative numbers from 'A,B', or None."""
    if text is None:
        return None
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        a = b = float("nan")
    if not (math.isfinite(a) and math.isfinite(b) and a >= 0 and b >= 0 and a + b > 0):
        raise InputError(f"{option} {text!r}: expected RICE,NON_RICE areas in km2 (>= 0, positive total)")
    return a, b


def _figures(report: Any, tmp: Path, figs: dict[str, Any]) -> None:
    """Write each figure as PNG and add it to the report."""
    from kizuna.core.io import atomic_write, png_bytes

    for name, fig in figs.items():
        png = png_bytes(fig, dpi=90)
        atomic_write(tmp / name, png)
        report.add_figure(png, name.removesuffix(".png").replace("_", " "))


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="Point data folder (label CSV + sar_data*.npy).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (replaced whole when done).")],
    mode: Annotated[
        str, typer.Option("--mode", help="trained (classifier) or rules (no labels used).")
    ] = "trained",
    with_s2: Annotated[bool, typer.Option("--with-s2", help="Add Sentinel-2 NDVI features.")] = False,
    features: Annotated[
        str, typer.Option("--features", help="Classifier features: distribution, dynamics or all.")
    ] = "distribution",
    classifier: Annotated[
        str, typer.Option("--classifier", help="random_forest or gradient_boosting.")
    ] = "random_forest",
    trees: Annotated[int, typer.Option("--trees", help="Trees (boosting iterations) per model.")] = 300,
    eps_deg: Annotated[float, typer.Option("--eps-deg", help="DBSCAN radius of the sites (deg).")] = 0.03,
    folds: Annotated[int, typer.Option("--folds", help="Random folds shown for contrast.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of models and folds.")] = 0,
    s1_bands: Annotated[str, typer.Option("--s1-bands", help="Band order of the S1 arrays.")] = "VH,VV",
    step_days: Annotated[
        float, typer.Option("--step-days", help="Days between acquisitions (no dates are stored).")
    ] = DEFAULT_STEP_DAYS,
    map_area_km2: Annotated[
        str | None,
        typer.Option(
            "--map-area-km2", help="RICE,NON_RICE mapped areas (km2) of a real map for the estimate."
        ),
    ] = None,
    pixel_area_km2: Annotated[
        float, typer.Option("--pixel-area-km2", help="Area of one point's footprint (km2).")
    ] = DEFAULT_PIXEL_AREA_KM2,
) -> None:
    """Evaluate rice mapping by leaving whole spatial sites out (DBSCAN clusters of the points).

    Writes OUT/summary.json with overall_accuracy, f1, precision, recall, kappa, confusion_matrix (rows
    reference, columns predicted, order non_rice, rice), per_site, random_fold_accuracy,
    rules_overall_accuracy and area (the stratified estimate of Olofsson et al. 2014: rice_area_km2,
    rice_area_se_km2, rice_area_ci95_km2, user's and producer's accuracy); predictions.csv (one row per
    point); figures; report.html; and in trained mode model.joblib (fitted on all labelled points) for
    classify.

    The strata of the area estimate are the map classes of every point in the folder (labelled points by
    their leave-site-out prediction, unlabelled ones by the final model), each covering --pixel-area-km2,
    unless --map-area-km2 gives the class areas of a real map.
    """
    from functools import partial

    import numpy as np
    import pandas as pd

    from kizuna.core.io import output_dir, write_csv, write_json
    from kizuna.core.progress import progress_bar
    from kizuna.core.report import Report
    from kizuna.eo.area import (
        classification_metrics,
        error_matrix,
        group_cross_val_predict,
        per_site_accuracy,
        random_cross_val_predict,
        site_clusters,
        stratified_area_estimate,
    )
    from kizuna.eo.rice import (
        FeatureConfig,
        RiceRules,
        classify_rules,
        make_estimator,
        point_features,
        time_axis_days,
        train_classifier,
    )
    from kizuna.eo.rice_io import (
        LABEL_FILE,
        S1_TEST_FILE,
        confusion_figure,
        cross_pol_excess_db,
        importance_figure,
        read_point_dataset,
        rules_figure,
        series_figure,
        site_accuracy_figure,
    )

    _check_mode(mode)
    groups = _parse_groups(features)
    area_given = _parse_pair(map_area_km2, "--map-area-km2")
    if not pixel_area_km2 > 0:
        raise InputError(f"--pixel-area-km2 {pixel_area_km2}: expected a positive area")
    if trees < 1 or folds < 2:
        raise InputError(f"--trees {trees} / --folds {folds}: expected >= 1 tree and >= 2 folds")
    t_start = time.perf_counter()
    pts = read_point_dataset(data, split="train", s1_bands=s1_bands, with_s2=with_s2, require_labels=True)
    y = pts.label.astype(int)
    if len(np.unique(y)) < 2:
        raise InputError(
            f"{Path(data) / LABEL_FILE}: column 'Class of Land': only {CLASS_NAMES[int(y[0])]} points; "
            "expected both Rice and Non Rice"
        )
    test_file = Path(data) / S1_TEST_FILE
    test = (
        read_point_dataset(data, split="test", s1_bands=s1_bands, with_s2=with_s2)
        if test_file.is_file()
        else None
    )
    t_days = time_axis_days(pts.s1_db.shape[2], None, step_days)
    config = FeatureConfig(groups=groups)
    rules = RiceRules()
    sites = site_clusters(pts.lat_deg, pts.lon_deg, eps_deg=eps_deg)
    n_sites = int(len(np.unique(sites)))
    if n_sites < 2:
        raise InputError(
            f"{data}: the points form {n_sites} site at --eps-deg {eps_deg}; expected >= 2 sites"
        )

    t0 = time.perf_counter()
    Xr, names_r = point_features(pts, t_days=t_days, config=config, groups=("dynamics",))
    rule_pred, rule_score = classify_rules(Xr, names_r, rules)
    rules_seconds = time.perf_counter() - t0
    rules_metrics = classification_metrics(y, rule_pred)
    p_random = None
    model = None
    if mode == "rules":
        p_site = rule_score
        feat_seconds = rules_seconds
    else:
        t0 = time.perf_counter()
        X, names = point_features(pts, t_days=t_days, config=config, with_s2=with_s2)
        feat_seconds = time.perf_counter() - t0
        factory = partial(make_estimator, classifier, seed, trees)
        with progress_bar("leave-site-out", n_sites, quiet=quiet_enabled()) as advance:
            p_site = group_cross_val_predict(factory, X, y, sites, progress=advance)
        p_random = random_cross_val_predict(factory, X, y, n_folds=folds, seed=seed)
        model = train_classifier(
            X,
            y,
            names,
            kind=classifier,
            seed=seed,
            n_trees=trees,
            config=config,
            with_s2=with_s2,
            step_days=step_days,
        )
        model.meta.update(s1_bands=list(pts.s1_bands), trained_on=str(data), n_points=int(len(y)))
    pred = (p_site >= 0.5).astype(int)
    metrics = classification_metrics(y, pred)
    per_site = per_site_accuracy(y, pred, sites)

    # Map classes of every point in the folder: the strata of the stratified area estimate.
    t0 = time.perf_counter()
    test_pred = np.zeros(0, dtype=int)
    test_p = np.zeros(0)
    if test is not None:
        tt = time_axis_days(test.s1_db.shape[2], None, step_days)
        if mode == "rules":
            Xt, nt = point_features(test, t_days=tt, config=config, groups=("dynamics",))
            test_pred, test_p = classify_rules(Xt, nt, rules)
        else:
            Xt, _ = point_features(test, t_days=tt, config=config, with_s2=with_s2)
            test_p = model.predict_proba(Xt)
            test_pred = (test_p >= 0.5).astype(int)
    predict_seconds = time.perf_counter() - t0
    all_map = np.concatenate([pred, test_pred.astype(int)])
    if area_given is not None:
        mapped = np.array([area_given[1], area_given[0]])  # order non_rice, rice
        map_source = "--map-area-km2"
    else:
        mapped = np.array([np.sum(all_map == 0), np.sum(all_map == 1)], dtype=float) * pixel_area_km2
        map_source = (
            f"{len(all_map)} points x {pixel_area_km2:g} km2 (labelled: leave-site-out; unlabelled: final)"
        )
    est = stratified_area_estimate(error_matrix(pred, y, 2), mapped, classes=CLASS_NAMES)
    rice = est.as_dict()["rice"]
    n_timed = len(y) + len(test_pred)
    seconds_per_1000 = 1000.0 * (feat_seconds + predict_seconds) / max(n_timed, 1)

    summary: dict[str, Any] = {
        "data": str(data),
        "mode": mode,
        "feature_groups": list(groups) if mode == "trained" else ["dynamics"],
        "with_s2": with_s2 and mode == "trained",
        "classifier": classifier if mode == "trained" else "INAHOR-style rules",
        "n_points": int(len(y)),
        "n_rice": int(np.sum(y == 1)),
        "n_sites": n_sites,
        "site_eps_deg": eps_deg,
        "validation": "leave-one-site-out",
        **{k: metrics[k] for k in ("overall_accuracy", "f1", "precision", "recall", "kappa")},
        "confusion_matrix": metrics["confusion_matrix_rows_reference_cols_predicted"],
        "confusion_matrix_layout": "rows reference [non_rice, rice], columns predicted [non_rice, rice]",
        "per_site": per_site,
        "random_fold_accuracy": None if p_random is None else float(np.mean((p_random >= 0.5) == y)),
        "random_fold_f1": None if p_random is None else classification_metrics(y, p_random >= 0.5)["f1"],
        "random_folds": folds,
        "rules_overall_accuracy": rules_metrics["overall_accuracy"],
        "rules_f1": rules_metrics["f1"],
        "rules_thresholds_db": {
            "flood_max_db": rules.flood_max_db,
            "rise_min_db": rules.rise_min_db,
            "peak_min_db": rules.peak_min_db,
        },
        "area": {
            "method": "stratified estimator, Olofsson et al. (2014), map classes as strata",
            "map_source": map_source,
            "mapped_area_km2": {"non_rice": float(mapped[0]), "rice": float(mapped[1])},
            "rice_area_km2": rice["area"],
            "rice_area_se_km2": rice["area_se"],
            "rice_area_ci95_km2": [rice["area_ci_low"], rice["area_ci_high"]],
            "rice_users_accuracy": rice["users_accuracy"],
            "rice_producers_accuracy": rice["producers_accuracy"],
            "estimate": est.as_dict(),
        },
        "s1_bands": list(pts.s1_bands),
        "median_vh_minus_vv_db": cross_pol_excess_db(pts.s1_db, pts.s1_bands),
        "step_days": step_days,
        "n_unlabelled_points": int(len(test_pred)),
        "seconds_per_1000_points": seconds_per_1000,
        "seconds": round(time.perf_counter() - t_start, 3),
    }
    table = pd.DataFrame(
        {
            "point": np.arange(len(y)),
            "split": "labelled",
            "lat_deg": pts.lat_deg,
            "lon_deg": pts.lon_deg,
            "site": sites,
            "label": y,
            "p_rice_site_out": p_site,
            "rice_site_out": pred,
            "p_rice_random_fold": np.nan if p_random is None else p_random,
            "rule_score": rule_score,
            "rice_rules": rule_pred,
        }
    )
    if len(test_pred):
        table = pd.concat(
            [
                table,
                pd.DataFrame(
                    {
                        "point": np.arange(len(test_pred)),
                        "split": "unlabelled",
                        "label": -1,
                        "site": -1,
                        "p_rice_final": test_p,
                        "rice_final": test_pred,
                    }
                ),
            ],
            ignore_index=True,
        )
    for col in ("rice_site_out", "rice_rules", "rice_final"):
        if col in table:
            table[col] = table[col].astype("Int64")
    with output_dir(out) as tmp:
        write_json(tmp / "summary.json", summary)
        write_csv(tmp / "predictions.csv", table)
        if model is not None:
            model.save(tmp / "model.joblib")
        rep = Report(f"Rice mapping, leave-site-out evaluation ({mode})")
        lo, hi = summary["area"]["rice_area_ci95_km2"]
        rep.add_key_figures(
            {
                "overall accuracy (site left out)": metrics["overall_accuracy"],
                "F1 rice (site left out)": metrics["f1"],
                "overall accuracy (random folds)": summary["random_fold_accuracy"],
                "overall accuracy (rules, no labels)": rules_metrics["overall_accuracy"],
                "rice area (km2)": rice["area"],
                "95 % CI (km2)": f"{lo:.4g} .. {hi:.4g}",
            }
        )
        rep.add_text(
            f"{len(y)} labelled points in {n_sites} sites (DBSCAN, eps {eps_deg:g} deg). Each site was "
            "predicted by a model that never saw it. Random folds put points of the same site in training "
            "and test and are shown only to show how much they flatter the accuracy. The area estimate "
            "treats the points as a stratified sample of the map; it is only as good as that assumption. "
            f"S1 bands read as {','.join(b.upper() for b in pts.s1_bands)}; median VH - VV "
            f"{summary['median_vh_minus_vv_db']:.2f} dB (negative for the usual cross-/co-polarised order)."
        )
        rp = (
            None
            if p_random is None
            else [
                float(np.mean((p_random >= 0.5)[sites == r["site"]] == y[sites == r["site"]]))
                for r in per_site
            ]
        )
        figs = {
            "mean_series.png": series_figure(
                pts, t_days, y, "Mean Sentinel-1 series per reference class (+/- 1 sd)"
            ),
            "confusion_matrix.png": confusion_figure(
                metrics["confusion_matrix_rows_reference_cols_predicted"], "site left out"
            ),
            "site_accuracy.png": site_accuracy_figure(per_site, rp),
        }
        if model is not None and model.importances():
            figs["feature_importance.png"] = importance_figure(model.importances())
        figs["rules.png"] = rules_figure(Xr, names_r, y, rules)
        _figures(rep, tmp, figs)
        rep.add_table(pd.DataFrame(per_site), caption="per-site accuracy, site left out")
        rep.add_table(
            {k: v for k, v in summary.items() if not isinstance(v, list | dict)},
            caption="summary.json (scalars)",
        )
        rep.write(tmp / "report.html")
    rf = summary["random_fold_accuracy"]
    say(
        f"kizuna: rice {mode}: {len(y)} points, {n_sites} sites: site-out accuracy "
        f"{metrics['overall_accuracy']:.4f} F1 {metrics['f1']:.4f}"
        + ("" if rf is None else f", random folds {rf:.4f}")
        + f", rules {rules_metrics['overall_accuracy']:.4f}; rice area {rice['area']:.4g} km2 "
        f"[{lo:.4g}, {hi:.4g}] -> {out}"
    )


@app.command()
def classify(
    out: Annotated[Path, typer.Option("--out", help="Output folder (replaced whole when done).")],
    data: Annotated[Path | None, typer.Option("--data", help="Point data folder (as for evaluate).")] = None,
    raster: Annotated[
        Path | None,
        typer.Option("--raster", help="NetCDF S1 stack: vh, vv (time,y,x) or one (time,band,y,x)."),
    ] = None,
    model: Annotated[
        Path | None, typer.Option("--model", help="model.joblib from evaluate (trained).")
    ] = None,
    mode: Annotated[str, typer.Option("--mode", help="trained (needs --model) or rules.")] = "trained",
    split: Annotated[str, typer.Option("--split", help="Points: test (unlabelled) or train.")] = "test",
    var: Annotated[
        str | None, typer.Option("--var", help="Raster: name of a (time,band,y,x) variable.")
    ] = None,
    s1_bands: Annotated[
        str, typer.Option("--s1-bands", help="Points: band order of the S1 arrays.")
    ] = "VH,VV",
    step_days: Annotated[
        float | None,
        typer.Option(
            "--step-days",
            help="Days between acquisitions when no dates are stored (default: the model's, else 3.75).",
        ),
    ] = None,
    pixel_area_km2: Annotated[
        float | None,
        typer.Option("--pixel-area-km2", help="Area of one point or pixel (km2); rasters: from the grid."),
    ] = None,
    chunk: Annotated[int, typer.Option("--chunk", help="Raster: pixels per Dask chunk side.")] = 256,
) -> None:
    """Classify points (--data) or a raster stack (--raster) as rice / not rice.

    Points: OUT/predictions.csv (point, lat_deg, lon_deg, p_rice, rice), summary.json (n_points, n_rice,
    mapped_area_km2), a figure and report.html.

    Raster: OUT/rice_map.nc (rice_class uint8: 1 rice, 0 not, 255 no data; rice_probability),
    rice_class.tif and rice_probability.tif, summary.json (n_pixels, nodata_pixels, rice_pixels,
    mapped_area_km2 per class), a map figure and report.html. In rules mode the probability is the rule
    score.
    """
    import numpy as np
    import pandas as pd

    from kizuna.core.io import output_dir, write_csv, write_json, write_netcdf
    from kizuna.core.raster import write_geotiff
    from kizuna.core.report import Report
    from kizuna.eo.rice import (
        FeatureConfig,
        classify_raster,
        classify_rules,
        load_classifier,
        point_features,
        time_axis_days,
    )

    _check_mode(mode)
    if (data is None) == (raster is None):
        raise InputError("give exactly one of --data (points) or --raster (NetCDF stack)")
    if mode == "trained" and model is None:
        raise InputError("--mode trained needs --model (model.joblib written by `kizuna eo rice evaluate`)")
    if pixel_area_km2 is not None and not pixel_area_km2 > 0:
        raise InputError(f"--pixel-area-km2 {pixel_area_km2}: expected a positive area")
    clf = load_classifier(model) if mode == "trained" else None
    step = (
        step_days
        if step_days is not None
        else (clf.step_days if clf is not None and clf.step_days else DEFAULT_STEP_DAYS)
    )
    t0 = time.perf_counter()
    summary: dict[str, Any] = {
        "mode": mode,
        "model": None if model is None else str(model),
        "step_days": step,
    }
    if data is not None:
        from kizuna.eo.rice_io import read_point_dataset, series_figure

        if split not in ("test", "train"):
            raise InputError(f"--split {split!r}: expected test or train")
        with_s2 = bool(clf.with_s2) if clf is not None else False
        pts = read_point_dataset(data, split=split, s1_bands=s1_bands, with_s2=with_s2)
        t_days = time_axis_days(pts.s1_db.shape[2], None, step)
        if clf is not None:
            X, _ = point_features(pts, t_days=t_days, config=clf.config, with_s2=with_s2)
            p = clf.predict_proba(X)
        else:
            X, names = point_features(pts, t_days=t_days, config=FeatureConfig(), groups=("dynamics",))
            p = classify_rules(X, names)[1]
        rice = (p >= 0.5).astype(int)
        area = DEFAULT_PIXEL_AREA_KM2 if pixel_area_km2 is None else pixel_area_km2
        summary.update(
            data=str(data),
            split=split,
            n_points=int(pts.n),
            n_rice=int(rice.sum()),
            pixel_area_km2=area,
            mapped_area_km2={
                "rice": float(rice.sum() * area),
                "non_rice": float((pts.n - rice.sum()) * area),
            },
            seconds=round(time.perf_counter() - t0, 3),
        )
        summary["seconds_per_1000_points"] = 1000.0 * summary["seconds"] / max(pts.n, 1)
        table = pd.DataFrame(
            {
                "point": np.arange(pts.n),
                "lat_deg": pts.lat_deg,
                "lon_deg": pts.lon_deg,
                "p_rice": p,
                "rice": rice,
            }
        )
        with output_dir(out) as tmp:
            write_json(tmp / "summary.json", summary)
            write_csv(tmp / "predictions.csv", table)
            rep = Report(f"Rice classification of points ({mode})")
            rep.add_key_figures(
                {
                    "points": pts.n,
                    "rice": int(rice.sum()),
                    "rice area (km2)": summary["mapped_area_km2"]["rice"],
                }
            )
            _figures(
                rep,
                tmp,
                {"mean_series.png": series_figure(pts, t_days, rice, "Mean series per predicted class")},
            )
            rep.add_table(
                {k: v for k, v in summary.items() if not isinstance(v, dict)}, caption="summary.json"
            )
            rep.write(tmp / "report.html")
        say(
            f"kizuna: rice {mode}: {pts.n} points, {int(rice.sum())} rice "
            f"in {summary['seconds']:.2f} s -> {out}"
        )
        return

    from kizuna.core.raster import raster_from_centres
    from kizuna.eo.rice_io import new_figure, read_s1_stack, stack_grid

    if chunk < 1:
        raise InputError(f"--chunk {chunk}: expected a positive number of pixels")
    stack, units = read_s1_stack(raster, var=var)
    ydim, xdim = stack.dims[2], stack.dims[3]
    stack = stack.chunk({"time": -1, "band": -1, ydim: chunk, xdim: chunk})
    ds = classify_raster(stack, model=clf, units=units, step_days=step).compute()
    crs, px, area_src = stack_grid(stack, pixel_area_km2, where=str(raster))
    yc, xc = np.asarray(stack[ydim].values, float), np.asarray(stack[xdim].values, float)
    cls = ds["rice_class"].values
    summary.update(
        raster=str(raster),
        units=units,
        n_pixels=int(cls.size),
        nodata_pixels=int(np.sum(cls == 255)),
        rice_pixels=int(np.sum(cls == 1)),
        pixel_area_source=area_src,
        mapped_area_km2={"rice": float(px[cls == 1].sum()), "non_rice": float(px[cls == 0].sum())},
        seconds=round(time.perf_counter() - t0, 3),
    )
    with output_dir(out) as tmp:
        write_netcdf(tmp / "rice_map.nc", ds)
        write_geotiff(
            tmp / "rice_class.tif", raster_from_centres(cls, yc, xc, crs, "1"), dtype="uint8", nodata=255
        )
        write_geotiff(
            tmp / "rice_probability.tif",
            raster_from_centres(ds["rice_probability"].values, yc, xc, crs, "1"),
            dtype="float32",
        )
        write_json(tmp / "summary.json", summary)
        rep = Report(f"Rice map ({mode})")
        rep.add_key_figures(
            {
                "pixels": cls.size,
                "rice pixels": summary["rice_pixels"],
                "rice area (km2)": summary["mapped_area_km2"]["rice"],
            }
        )
        fig, ax = new_figure(1, 6.0, 5.0)
        im = ax.imshow(
            np.where(cls == 255, np.nan, ds["rice_probability"].values),
            cmap="YlGn",
            vmin=0,
            vmax=1,
            extent=(xc[0], xc[-1], yc[-1], yc[0]) if xc.size > 1 else None,
            aspect="auto",
        )
        fig.colorbar(im, ax=ax, label="rice probability")
        ax.set_xlabel(xdim)
        ax.set_ylabel(ydim)
        _figures(rep, tmp, {"rice_map.png": fig})
        rep.add_table({k: v for k, v in summary.items() if not isinstance(v, dict)}, caption="summary.json")
        rep.write(tmp / "report.html")
    say(
        f"kizuna: rice map {mode}: {cls.size} pixels, {summary['rice_pixels']} rice "
        f"({summary['mapped_area_km2']['rice']:.4g} km2) in {summary['seconds']:.2f} s -> {out}"
    )
