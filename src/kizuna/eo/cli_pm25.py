"""The ``kizuna eo pm25`` commands: fit a surface PM2.5 model on station data (``fit``), predict at new
stations or grid points (``predict``), and evaluate it leaving whole stations out (``evaluate``); and the
figures of the evaluation.

Tables use the column names of the Delhi 2019 data set as they are (``Corrected_PM25DailyMean_2019``,
``Corrected_DailyMeanAOD_2019``, ``TempDailyMean_2019``, ...). ``fit`` writes a model folder and
``evaluate`` an output folder, each replaced whole at the end; ``predict`` writes one CSV atomically. Bad
input raises :class:`kizuna.errors.InputError`, which the top-level ``kizuna`` command turns into one line
and exit code 2.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kizuna.core.console import quiet_enabled, say
from kizuna.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["app", "fit", "predict", "evaluate", "scatter_figure", "importance_figure", "dependence_figure"]

app = typer.Typer(
    help="Surface PM2.5 from MAIAC AOD, meteorology and the monitoring network: fit, predict at new "
    "stations or grid points, evaluate leaving whole stations out.",
    no_args_is_help=True,
)

PRED_COLUMN = "pm25_pred"
# The satellite model's partial dependence: AOD and the meteorology that dilutes or traps aerosol.
SATELLITE_PD = (
    "Corrected_DailyMeanAOD_2019",
    "BLHDailyMean_2019",
    "RHDailyMean_2019",
    "TempDailyMean_2019",
    "WSDailyMean_2019",
    "NDVI_2019",
)
MODES = ("serial", "processes", "dask")


def _params(n_models: int, max_iter: int, seed: int) -> Any:
    """Return the default hyperparameters with the ensemble size, iterations and seed of the command line."""
    from kizuna.eo.pm25 import Pm25Params

    if not 1 <= n_models <= 50:
        raise InputError(f"--n-models {n_models}: expected 1 to 50 ensemble members")
    if not 1 <= max_iter <= 10_000:
        raise InputError(f"--max-iter {max_iter}: expected 1 to 10000 boosting iterations")
    return Pm25Params(n_models=n_models, max_iter=max_iter, seed=seed)


@app.command()
def fit(
    data: Annotated[Path, typer.Option("--data", help="Training CSV: station-days with the Delhi columns.")],
    model: Annotated[Path, typer.Option("--model", help="Model folder to write (replaced whole).")],
    network: Annotated[
        bool,
        typer.Option(
            "--network/--no-network",
            help="Also use PM2.5 measured the same day at the other stations (the network model).",
        ),
    ] = True,
    tune: Annotated[
        bool, typer.Option("--tune/--no-tune", help="Choose tree sizes by 3-fold leave-stations-out CV.")
    ] = False,
    n_models: Annotated[int, typer.Option("--n-models", help="Ensemble members per model.")] = 5,
    max_iter: Annotated[int, typer.Option("--max-iter", help="Boosting iterations per member.")] = 300,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the ensembles.")] = 0,
) -> None:
    """Fit a PM2.5 model (ug/m3) on station-days and write it as a folder.

    Writes MODEL/model.joblib (the gradient-boosting ensembles), MODEL/network.parquet (the training
    stations' daily PM2.5 and AOD, the context of predictions on those dates) and MODEL/manifest.json
    (input columns, features, versions, hyperparameters, training statistics, file checksums).
    """
    from kizuna.eo.pm25 import fit_pm25, save_pm25_model, tune_pm25
    from kizuna.eo.pm25_features import read_pm25_table

    table = read_pm25_table(data, need_target=True)
    params = _params(n_models, max_iter, seed)
    t0 = time.perf_counter()
    tuning = None
    if tune:
        params, tuning = tune_pm25(table, base=params, use_network=network, source=str(data))
    fitted = fit_pm25(table, params=params, use_network=network, source=str(data))
    if tuning is not None:
        fitted.training["tuning_rmse_ug_m3"] = tuning.to_dict("records")
    fitted.training["fit_seconds"] = round(time.perf_counter() - t0, 3)
    fitted.training["data"] = str(data)
    save_pm25_model(fitted, model)
    tr = fitted.training
    say(
        f"kizuna: PM2.5 model fitted on {tr['rows_with_pm25']} station-days at {tr['stations']} stations "
        f"({tr['dates']} dates, AOD on {tr['rows_with_aod']} rows), network model "
        f"{'on' if fitted.use_network else 'off'}, in {tr['fit_seconds']:.1f} s -> {model}"
    )


@app.command()
def predict(
    model: Annotated[Path, typer.Option("--model", help="Model folder written by 'kizuna eo pm25 fit'.")],
    data: Annotated[
        Path, typer.Option("--data", help="CSV of stations or grid points and days with the input columns.")
    ],
    out: Annotated[Path, typer.Option("--out", help="CSV to write: the input columns plus pm25_pred.")],
    network: Annotated[
        Path | None,
        typer.Option(
            "--network",
            help="CSV of monitors' PM2.5 on the days to predict (default: the training stations' own).",
        ),
    ] = None,
    max_km: Annotated[
        float | None,
        typer.Option(
            "--max-km",
            help="Refuse rows farther than this (km) from every training station (default: the training "
            "network's extent, at least 50 km).",
        ),
    ] = None,
    map_out: Annotated[
        Path | None,
        typer.Option(
            "--map",
            help="Also write the predictions as daily maps (NetCDF, time x lat x lon) when the rows are the "
            "points of a regular lat/lon grid.",
        ),
    ] = None,
) -> None:
    """Predict daily mean PM2.5 (ug/m3) at each row of a table of stations or grid points.

    PRED.csv repeats the input table's columns as read and adds ``pm25_pred`` (ug/m3). On dates the
    network measured, the prediction uses the PM2.5 of the network stations other than the row's own
    station; on other dates it uses AOD and meteorology only. Rows outside the training network's area
    (see --max-km) are refused: nothing is written. With --map, rows on a regular grid also become a
    NetCDF cube of daily maps (NaN where a point has no row that day).
    """
    import numpy as np

    from kizuna.core.io import write_csv
    from kizuna.eo.pm25 import load_pm25_model, predict_pm25_detail
    from kizuna.eo.pm25_features import check_pm25_table, read_table, station_network

    fitted = load_pm25_model(model)
    raw = read_table(data)
    if PRED_COLUMN in raw.columns:
        raise InputError(f"{data}: already has a column {PRED_COLUMN!r}; give the table without it")
    table = check_pm25_table(raw, str(data), need_target=False)
    net = fitted.network
    if network is not None:
        net = station_network(read_table(network), str(network))
    if max_km is not None and not max_km > 0:
        raise InputError(f"--max-km {max_km}: expected a positive distance in km")
    pred, used = predict_pm25_detail(fitted, table, network=net, source=str(data), max_km=max_km)
    result = raw.copy()
    result[PRED_COLUMN] = pred
    if map_out is None:
        write_csv(out, result)
    else:
        from kizuna.core.io import write_netcdf
        from kizuna.eo.pm25_map import pm25_map_dataset

        cube = pm25_map_dataset(table, pred, str(data))  # checks the grid before anything is written
        write_netcdf(map_out, cube)
        try:
            write_csv(out, result)
        except BaseException:
            map_out.unlink(missing_ok=True)
            raise
    n_ctx = int(used.sum())
    say(
        f"kizuna: PM2.5 predicted at {len(result)} rows ({n_ctx} with network context), mean "
        f"{float(np.mean(pred)):.1f} ug/m3, range {float(np.min(pred)):.1f}..{float(np.max(pred)):.1f} "
        f"-> {out}"
    )


def scatter_figure(predictions: pd.DataFrame, title: str) -> Figure:
    """Return a figure of observed against predicted PM2.5 (ug/m3), station-days as a 2-D histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from kizuna.eo.pm25 import score_pm25

    o = predictions["pm25_obs_ug_m3"].to_numpy(float)
    p = predictions["pm25_pred_ug_m3"].to_numpy(float)
    ok = np.isfinite(o) & np.isfinite(p)
    s = score_pm25(o, p)
    top = float(np.nanmax(np.r_[o[ok], p[ok]])) * 1.05
    fig, ax = plt.subplots(figsize=(5.6, 5.2))
    fig.subplots_adjust(left=0.13, right=0.98, bottom=0.1, top=0.88)
    hb = ax.hexbin(o[ok], p[ok], gridsize=60, extent=(0, top, 0, top), mincnt=1, bins="log", cmap="viridis")
    ax.plot([0, top], [0, top], color="k", lw=0.8)
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="observed PM2.5 (ug/m3)", ylabel="predicted PM2.5 (ug/m3)")
    ax.set_title(f"{title}\nR2 {s['r2']:.3f}, RMSE {s['rmse_ug_m3']:.1f} ug/m3, n {s['n']}", fontsize=10)
    fig.colorbar(hb, ax=ax, label="station-days")
    return fig


def importance_figure(importance: pd.DataFrame) -> Figure:
    """Return a bar chart of permutation importance: RMSE increase (ug/m3) on held-out stations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mean = importance.groupby("feature")["rmse_increase_ug_m3"].agg(["mean", "std"]).sort_values("mean")
    height = 0.3 * len(mean) + 1.2
    fig, ax = plt.subplots(figsize=(6.5, height))
    fig.subplots_adjust(left=0.33, right=0.97, bottom=0.6 / height, top=1 - 0.4 / height)
    ax.barh(mean.index, mean["mean"], xerr=mean["std"].fillna(0.0), color="#2f5d9b", ecolor="#888")
    ax.set(xlabel="RMSE increase when shuffled (ug/m3), held-out stations", title="Permutation importance")
    ax.tick_params(axis="y", labelsize=8)
    return fig


def dependence_figure(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    title: str = "Partial dependence (model fitted on all data)",
) -> Figure:
    """Return partial-dependence panels: mean predicted PM2.5 (ug/m3) against each feature's value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(len(curves), 1)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    height = 2.9 * rows
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, height), squeeze=False)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.5 / height, top=1 - 0.45 / height)
    fig.subplots_adjust(wspace=0.38, hspace=0.45)
    for ax, (name, (grid, pm)) in zip(axes.ravel(), curves.items(), strict=False):
        ax.plot(grid, pm, color="#2f5d9b", lw=1.8)
        ax.set_xlabel(name, fontsize=8)
        ax.set_ylabel("mean PM2.5 (ug/m3)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(curves) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    return fig


def _table_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Return a table as JSON-able records."""
    return df.to_dict("records")


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="Training CSV: station-days with the Delhi columns.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (replaced whole when done).")],
    folds: Annotated[
        int, typer.Option("--folds", help="Folds leaving whole stations out; 0 = leave one station out.")
    ] = 10,
    random_folds: Annotated[
        int, typer.Option("--random-folds", help="Random station-day folds for comparison; 0 = none.")
    ] = 10,
    network: Annotated[
        bool,
        typer.Option("--network/--no-network", help="Use PM2.5 of the other stations the same day."),
    ] = True,
    tune: Annotated[
        bool,
        typer.Option("--tune/--no-tune", help="Choose tree sizes by inner CV inside each training fold."),
    ] = False,
    importance: Annotated[
        bool, typer.Option("--importance/--no-importance", help="Permutation importance on held-out folds.")
    ] = True,
    n_models: Annotated[int, typer.Option("--n-models", help="Ensemble members per model.")] = 5,
    max_iter: Annotated[int, typer.Option("--max-iter", help="Boosting iterations per member.")] = 300,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    mode: Annotated[str, typer.Option("--mode", help="Run folds: serial, processes or dask.")] = "serial",
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="Dask scheduler (tcp://HOST:8786); implies --mode dask.")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Local worker processes.")] = None,
) -> None:
    """Evaluate the PM2.5 model leaving whole stations out (their PM2.5 is never used), beside random folds.

    Writes OUT/summary.json (scheme, n_folds, r2, rmse_ug_m3, mae_ug_m3, bias_ug_m3, n on all days with
    measurements; aod_available and aod_missing scores; random_folds scores; per_station and per_season
    tables; fit_seconds), predictions.csv (out-of-fold), per_station.csv, per_season.csv, importance.csv,
    figures (obs_vs_pred.png, obs_vs_pred_random.png, importance.png, partial_dependence.png,
    partial_dependence_satellite.png) and report.html.
    """
    if scheduler:
        mode = "dask"
    if mode not in MODES:
        raise InputError(f"--mode {mode!r}: expected one of {', '.join(MODES)}")
    if folds < 0 or folds == 1 or random_folds < 0 or random_folds == 1:
        raise InputError(f"--folds {folds} / --random-folds {random_folds}: expected 0 or at least 2")
    import matplotlib.pyplot as plt

    from kizuna.core.io import atomic_write, output_dir, png_bytes, write_csv, write_json
    from kizuna.core.progress import progress_bar
    from kizuna.core.report import Report
    from kizuna.eo.pm25 import breakdown_pm25, cross_validate_pm25, fit_pm25, partial_dependence_pm25
    from kizuna.eo.pm25_features import AOD, STATION_CODE, read_pm25_table

    table = read_pm25_table(data, need_target=True)
    params = _params(n_models, max_iter, seed)
    n_st = table[STATION_CODE].nunique()
    k = n_st if folds == 0 else folds
    t0 = time.perf_counter()
    common = dict(params=params, use_network=network, tune=tune, mode=mode, scheduler=scheduler)
    common.update(n_workers=workers, source=str(data))
    total = k + random_folds + 1
    with progress_bar("pm25 evaluate", total, quiet=quiet_enabled()) as advance:
        cv = cross_validate_pm25(
            table, scheme="stations", n_folds=k, importance=importance, **common,
            progress=lambda d, n: advance(d, f"stations fold {d}/{n}"),
        )  # fmt: skip
        rnd = None
        if random_folds:
            rnd = cross_validate_pm25(
                table, scheme="random", n_folds=random_folds, **common,
                progress=lambda d, n: advance(k + d, f"random fold {d}/{n}"),
            )  # fmt: skip
        final = fit_pm25(table, params=_cv_params(cv, params), use_network=network, source=str(data))
        advance(total, "partial dependence")
        if cv.importance is not None:
            ranked = (
                cv.importance.groupby("feature")["rmse_increase_ug_m3"].mean().sort_values(ascending=False)
            )
            names = [n for n in ranked.index if n != "aod_missing"][:5]
        else:
            names = ["net_log_pm25_mean", "BLHDailyMean_2019", "TempDailyMean_2019", "RHDailyMean_2019"]
            names = names if network else names[1:]
        names = names if AOD in names else [*names, AOD]
        curves = partial_dependence_pm25(final, table, names, seed=seed, source=str(data))
        sat_curves = partial_dependence_pm25(
            final, table, SATELLITE_PD, seed=seed, satellite_only=True, source=str(data)
        )
    per_station = breakdown_pm25(cv.predictions, "station")
    per_season = breakdown_pm25(cv.predictions, "season")
    seconds = time.perf_counter() - t0
    s = cv.scores["all"]
    summary = {
        "data": str(data),
        "scheme": "leave whole stations out" if folds else "leave one station out",
        "n_folds": cv.n_folds,
        "stations": int(n_st),
        "network_context": network,
        "tuned": tune,
        "n": s["n"],
        "r2": s["r2"],
        "rmse_ug_m3": s["rmse_ug_m3"],
        "mae_ug_m3": s["mae_ug_m3"],
        "bias_ug_m3": s["bias_ug_m3"],
        "aod_available": cv.scores["aod_available"],
        "aod_missing": cv.scores["aod_missing"],
        "random_folds": None if rnd is None else {"n_folds": rnd.n_folds, **rnd.scores["all"]},
        "per_station": _table_records(per_station),
        "per_season": _table_records(per_season),
        "fold_params": cv.fold_params,
        "fit_seconds_full_data": final.training["fit_seconds"],
        "seconds": round(seconds, 3),
    }
    with output_dir(out) as tmp:
        write_json(tmp / "summary.json", summary)
        write_csv(tmp / "predictions.csv", cv.predictions)
        write_csv(tmp / "per_station.csv", per_station)
        write_csv(tmp / "per_season.csv", per_season)
        figs = {
            "obs_vs_pred.png": scatter_figure(
                cv.predictions, f"Leaving whole stations out ({cv.n_folds} folds)"
            )
        }
        if rnd is not None:
            write_csv(tmp / "predictions_random.csv", rnd.predictions)
            figs["obs_vs_pred_random.png"] = scatter_figure(rnd.predictions, f"Random folds ({rnd.n_folds})")
        if cv.importance is not None:
            write_csv(tmp / "importance.csv", cv.importance)
            figs["importance.png"] = importance_figure(cv.importance)
        figs["partial_dependence.png"] = dependence_figure(curves)
        figs["partial_dependence_satellite.png"] = dependence_figure(
            sat_curves, "Partial dependence of the satellite model (no PM2.5 context), fitted on all data"
        )
        report = Report("Surface PM2.5 from AOD and meteorology: evaluation")
        key = {
            "R2, stations left out": s["r2"],
            "RMSE, stations left out (ug/m3)": s["rmse_ug_m3"],
            "station-days with PM2.5": s["n"],
            "stations": int(n_st),
        }
        if rnd is not None:
            key.update({"R2, random folds": rnd.scores["all"]["r2"]})
            key.update({"RMSE, random folds (ug/m3)": rnd.scores["all"]["rmse_ug_m3"]})
        report.add_key_figures(key)
        report.add_text(_method_text(cv.n_folds, network, tune))
        pngs = {}
        for name, fig in figs.items():
            pngs[name] = png_bytes(fig, dpi=110)
            plt.close(fig)
            atomic_write(tmp / name, pngs[name])
        for name in figs:
            report.add_figure(pngs[name], name.removesuffix(".png").replace("_", " "))
        report.add_table(
            {k2: v for k2, v in summary.items() if not isinstance(v, list | dict)}, caption="summary.json"
        )
        by_aod = {
            f"{k2}: {m}": cv.scores[k2][m]
            for k2 in ("aod_available", "aod_missing")
            for m in ("n", "r2", "rmse_ug_m3")
        }
        report.add_table(by_aod, caption="Scores on days with and without MAIAC AOD (stations left out)")
        report.add_table(per_season, caption="Per season (stations left out)")
        report.add_table(per_station, caption="Per station (stations left out)")
        report.write(tmp / "report.html")
    rtxt = (
        ""
        if rnd is None
        else f"; random folds R2 {rnd.scores['all']['r2']:.3f}, RMSE {rnd.scores['all']['rmse_ug_m3']:.1f}"
    )
    say(
        f"kizuna: PM2.5 leaving whole stations out ({cv.n_folds} folds): R2 {s['r2']:.3f}, RMSE "
        f"{s['rmse_ug_m3']:.1f} ug/m3 on {s['n']} station-days{rtxt} in {seconds:.0f} s -> {out}"
    )


def _cv_params(cv: Any, params: Any) -> Any:
    """Return the hyperparameters most folds chose (the defaults when none were tuned)."""
    from collections import Counter

    from kizuna.eo.pm25 import Pm25Params

    chosen = Counter(
        (fp["max_leaf_nodes"], fp["min_samples_leaf"])
        for fp in cv.fold_params
        if fp.get("tuning") is not None
    )
    if not chosen:
        return params
    (leaves, leaf), _ = chosen.most_common(1)[0]
    return Pm25Params(**{**params.__dict__, "max_leaf_nodes": leaves, "min_samples_leaf": leaf})


def _method_text(n_folds: int, network: bool, tune: bool) -> str:
    """Return the report's paragraph on what the model uses and how it was evaluated."""
    ctx = (
        "Each station-day's prediction uses its own MAIAC AOD (missing about half the time; the trees "
        "take NaN), an AOD-missing flag, meteorology, NDVI, position and day of year, and the PM2.5 "
        "measured the same day at the OTHER stations of the training folds (geometric mean, "
        "inverse-distance-squared mean, nearest station). "
        if network
        else "Each station-day's prediction uses its own MAIAC AOD (missing about half the time), an "
        "AOD-missing flag, meteorology, NDVI, position and day of year; no PM2.5 at all. "
    )
    how = (
        f"Stations are split into {n_folds} groups; each group is predicted by a model trained on the "
        "others, so a held-out station's own PM2.5 is never used, in training or as context. "
        "Random folds (station-days drawn at random) are shown beside it: they let the model see the same "
        "station on neighbouring days and score higher."
    )
    fallback = (
        " On dates when no network station measured, the satellite model (AOD and meteorology only) "
        "predicts alone; its skill there is lower (benchmarks/eo_pm25.py, leaving whole days out)."
        if network
        else ""
    )
    tuned = (
        " Tree sizes were chosen in each training fold by an inner 3-fold leave-stations-out CV."
        if tune
        else " Hyperparameters are the package defaults."
    )
    return ctx + how + fallback + tuned
