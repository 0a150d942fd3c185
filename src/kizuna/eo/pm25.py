"""Surface PM2.5 (daily mean, ug/m3) from MAIAC aerosol optical depth, meteorology and the monitoring
network: gap-aware gradient-boosting models, prediction at new stations or grid points, evaluation that
leaves whole stations out, feature importance, partial dependence, and a model folder on disk.

A model holds two ensembles of histogram gradient-boosting regressors (scikit-learn), both trained on
ln(PM2.5) so that errors are relative and predictions stay positive:

* the **network model** predicts ln(PM2.5) minus the geometric mean of the PM2.5 measured that day at the
  OTHER network stations, from the row's own AOD (NaN allowed: AOD is missing about half the time, and
  the trees send NaN down a learnt branch), an AOD-missing flag, meteorology, NDVI, position, day of year,
  and the network context of :mod:`kizuna.eo.pm25_features`. It is used on dates the network measured.
* the **satellite model** uses the same inputs without any PM2.5 (AOD and meteorology only). It is used
  on dates the network did not measure, and everywhere when the model is fitted with
  ``use_network=False``.

Neither model ever sees a row's own station's PM2.5 of that day: in training each row's context comes from
the other stations, and in cross-validation the held-out stations are removed from the network.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from kizuna.eo.pm25_features import (
    AOD,
    AOD_CONTEXT_FEATURES,
    BASE_FEATURES,
    DOY,
    INPUT_COLUMNS,
    PM25,
    PM_CONTEXT_FEATURES,
    STATION_CODE,
    STATION_NAME,
    TRAIN_COLUMNS,
    YEAR,
    StationNetwork,
    build_features,
    check_domain,
    check_pm25_table,
    network_table,
    season_of,
    station_network,
)
from kizuna.errors import InputError

__all__ = [
    "Pm25Params",
    "Pm25Model",
    "CvResult",
    "SATELLITE_FEATURES",
    "NETWORK_FEATURES",
    "TUNING_GRID",
    "fit_pm25",
    "predict_pm25",
    "predict_pm25_detail",
    "score_pm25",
    "breakdown_pm25",
    "cross_validate_pm25",
    "tune_pm25",
    "permutation_importance_pm25",
    "partial_dependence_pm25",
    "save_pm25_model",
    "load_pm25_model",
]

SATELLITE_FEATURES = (*BASE_FEATURES, *AOD_CONTEXT_FEATURES)
NETWORK_FEATURES = (*SATELLITE_FEATURES, *PM_CONTEXT_FEATURES)
SCHEMES = ("stations", "random", "days")
SMALL_ROWS = 200_000
_CONTROLLER: Any = None
_BATCH_ROWS = 500_000


@dataclass(frozen=True)
class Pm25Params:
    """Hyperparameters of the gradient-boosting ensembles (scikit-learn HistGradientBoostingRegressor)."""

    max_iter: int = 300
    learning_rate: float = 0.05
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0
    max_features: float = 0.5  # fraction of features each split may choose from
    n_models: int = 5  # ensemble members (seeds seed .. seed + n_models - 1), predictions averaged in ln
    seed: int = 0


# Candidates for inner cross-validation (by station): tree size and leaf size, the two that matter most.
TUNING_GRID: tuple[dict[str, Any], ...] = tuple(
    {"max_leaf_nodes": leaves, "min_samples_leaf": leaf} for leaves in (15, 31) for leaf in (20, 80)
)


@dataclass
class Pm25Model:
    """A fitted PM2.5 model: the two ensembles, the training network and what they were trained on."""

    params: Pm25Params
    satellite_models: list[Any]
    network_models: list[Any]  # empty when fitted with use_network=False
    network: StationNetwork
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def use_network(self) -> bool:
        """True when the network model is used on dates the network measured."""
        return bool(self.network_models)


def _ensemble(x: pd.DataFrame, y: NDArray[np.float64], params: Pm25Params, sample_label: str) -> list[Any]:
    """Fit ``params.n_models`` gradient-boosting regressors of y on x (features may hold NaN)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    if len(y) < 2 * params.min_samples_leaf:
        raise InputError(
            f"{sample_label}: {len(y)} rows with PM2.5: too few to fit (need at least "
            f"{2 * params.min_samples_leaf})"
        )
    models = []
    for k in range(params.n_models):
        m = HistGradientBoostingRegressor(
            max_iter=params.max_iter,
            learning_rate=params.learning_rate,
            max_leaf_nodes=params.max_leaf_nodes,
            min_samples_leaf=params.min_samples_leaf,
            l2_regularization=params.l2_regularization,
            max_features=params.max_features,
            early_stopping=False,
            random_state=params.seed + k,
        )
        with _threads(len(y)):
            m.fit(x, y)
        models.append(m)
    return models


def _mean_prediction(models: Sequence[Any], x: pd.DataFrame) -> NDArray[np.float64]:
    """Return the ensemble mean prediction (in the models' own units)."""
    with _threads(len(x)):
        return np.mean([m.predict(x) for m in models], axis=0)


def _threads(n_rows: int) -> Any:
    """Return a context that runs scikit-learn's OpenMP loops on one thread for tables of fewer than
    ``SMALL_ROWS`` rows, where starting and synchronising threads costs more than it saves."""
    import contextlib

    global _CONTROLLER
    if n_rows >= SMALL_ROWS:
        return contextlib.nullcontext()
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()  # scanning the loaded libraries is the slow part: done once
    return _CONTROLLER.limit(limits=1, user_api="openmp")


def fit_pm25(
    table: pd.DataFrame,
    *,
    params: Pm25Params | None = None,
    use_network: bool = True,
    source: str = "training table",
) -> Pm25Model:
    """Fit a PM2.5 model (ug/m3) on a station-day table with the Delhi data set's columns; rows without
    PM2.5 are used only as network context (their AOD)."""
    params = params or Pm25Params()
    t0 = time.perf_counter()
    t = check_pm25_table(table, source, need_target=True)
    net = station_network(t, source)
    feats = build_features(t, net)
    pm = t[PM25].to_numpy(float)
    has = np.isfinite(pm)
    y = np.log(pm[has])
    sat = _ensemble(feats.loc[has, list(SATELLITE_FEATURES)], y, params, source)
    net_models: list[Any] = []
    if use_network:
        ctx = feats["net_log_pm25_mean"].to_numpy()
        rows = has & np.isfinite(ctx)
        if rows.sum() >= 2 * params.min_samples_leaf:
            net_models = _ensemble(
                feats.loc[rows, list(NETWORK_FEATURES)], np.log(pm[rows]) - ctx[rows], params, source
            )
    training = {
        "rows": len(t),
        "rows_with_pm25": int(has.sum()),
        "rows_with_aod": int(np.isfinite(t[AOD].to_numpy(float)).sum()),
        "stations": int(net.n_stations),
        "dates": int(len(net.date_key)),
        "first_date": _key_text(int(net.date_key.min())),
        "last_date": _key_text(int(net.date_key.max())),
        "pm25_mean_ug_m3": float(np.mean(pm[has])),
        "pm25_std_ug_m3": float(np.std(pm[has])),
        "pm25_min_ug_m3": float(np.min(pm[has])),
        "pm25_max_ug_m3": float(np.max(pm[has])),
        "use_network": bool(net_models),
        "fit_seconds": round(time.perf_counter() - t0, 3),
    }
    return Pm25Model(params, sat, net_models, net, training)


def _key_text(key: int) -> str:
    """Return 'YYYY-DDD' for a date key year * 1000 + day of year."""
    return f"{key // 1000:04d}-{key % 1000:03d}"


def _predict_features(model: Pm25Model, feats: pd.DataFrame) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Return PM2.5 (ug/m3) from a feature table and where the network model was used."""
    log_pm = _mean_prediction(model.satellite_models, feats[list(SATELLITE_FEATURES)])
    ctx = feats["net_log_pm25_mean"].to_numpy(float)
    use = np.isfinite(ctx) if model.use_network else np.zeros(len(feats), bool)
    if use.any():
        resid = _mean_prediction(model.network_models, feats.loc[use, list(NETWORK_FEATURES)])
        log_pm[use] = ctx[use] + resid
    return np.exp(log_pm), use


def predict_pm25(
    model: Pm25Model,
    table: pd.DataFrame,
    *,
    network: StationNetwork | None = None,
    source: str = "table",
    max_km: float | None = None,
) -> NDArray[np.float64]:
    """Return daily mean PM2.5 (ug/m3) at each row (station or grid point, lat/lon in deg) of a table with
    the input columns; the network context comes from the model's training network unless another is
    given (e.g. the monitors of a later year). A row farther than ``max_km`` (default: the training
    network's extent, at least 50 km) from every training station raises InputError."""
    return predict_pm25_detail(model, table, network=network, source=source, max_km=max_km)[0]


def predict_pm25_detail(
    model: Pm25Model,
    table: pd.DataFrame,
    *,
    network: StationNetwork | None = None,
    source: str = "table",
    max_km: float | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Return PM2.5 (ug/m3) at each row as :func:`predict_pm25` and, per row, True where the network model
    (same-day PM2.5 of other stations) made the prediction, False where the satellite model did."""
    t = check_pm25_table(table, source, need_target=False)
    check_domain(t, model.network, source, max_km)
    feats = build_features(t, model.network if network is None else network)
    return _predict_features(model, feats)


def score_pm25(obs_ug_m3: NDArray, pred_ug_m3: NDArray) -> dict[str, float]:
    """Return R^2, RMSE, MAE and mean bias (ug/m3) of predictions over rows with an observation."""
    o = np.asarray(obs_ug_m3, float)
    p = np.asarray(pred_ug_m3, float)
    ok = np.isfinite(o) & np.isfinite(p)
    o, p = o[ok], p[ok]
    n = int(ok.sum())
    if n < 2:
        return {"n": n, "r2": float("nan"), "rmse_ug_m3": float("nan"), "mae_ug_m3": float("nan"),
                "bias_ug_m3": float("nan"), "mean_obs_ug_m3": float("nan")}  # fmt: skip
    err = p - o
    sst = float(np.sum((o - o.mean()) ** 2))
    return {
        "n": n,
        "r2": 1.0 - float(np.sum(err**2)) / sst if sst > 0 else float("nan"),
        "rmse_ug_m3": float(np.sqrt(np.mean(err**2))),
        "mae_ug_m3": float(np.mean(np.abs(err))),
        "bias_ug_m3": float(np.mean(err)),
        "mean_obs_ug_m3": float(o.mean()),
    }


def breakdown_pm25(predictions: pd.DataFrame, by: str) -> pd.DataFrame:
    """Return scores (R^2, RMSE in ug/m3, ...) per value of column ``by`` of a predictions table with
    columns ``pm25_obs_ug_m3`` and ``pm25_pred_ug_m3``."""
    rows = []
    for key, g in predictions.groupby(by, sort=True):
        rows.append({by: key, **score_pm25(g["pm25_obs_ug_m3"].to_numpy(), g["pm25_pred_ug_m3"].to_numpy())})
    return pd.DataFrame(rows)


@dataclass
class CvResult:
    """Out-of-fold predictions and scores of a cross-validation."""

    scheme: str
    n_folds: int
    predictions: pd.DataFrame  # one row per input row: obs, pred (ug/m3), fold, station, season, ...
    scores: dict[str, Any]  # all days with measurements, and with / without AOD
    importance: pd.DataFrame | None  # RMSE increase (ug/m3) when each feature is permuted, by fold
    fold_params: list[dict[str, Any]]
    fit_seconds: float


def _splits(table: pd.DataFrame, scheme: str, n_folds: int, seed: int) -> list[tuple[NDArray, NDArray]]:
    """Return (train, test) positional index pairs of a cross-validation scheme."""
    from sklearn.model_selection import GroupKFold, KFold

    if scheme == "stations":
        groups = table[STATION_CODE].astype(str).to_numpy()
    elif scheme == "days":
        groups = (table[YEAR].to_numpy(float) * 1000 + table[DOY].to_numpy(float)).astype(np.int64)
    elif scheme == "random":
        return list(KFold(n_folds, shuffle=True, random_state=seed).split(table))
    else:
        raise InputError(f"cross-validation scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")
    n_groups = len(np.unique(groups))
    if n_folds < 2 or n_folds > n_groups:
        raise InputError(f"{n_folds} folds: expected 2 to {n_groups} (the number of {scheme})")
    return list(GroupKFold(n_folds).split(table, groups=groups))


def _oof(
    table: pd.DataFrame, splits: Sequence[tuple[NDArray, NDArray]], params: Pm25Params, use_network: bool
) -> NDArray[np.float64]:
    """Return out-of-fold PM2.5 predictions (ug/m3) of a checked table."""
    pred = np.full(len(table), np.nan)
    for train, test in splits:
        model = fit_pm25(table.iloc[train], params=params, use_network=use_network, source="inner fold")
        feats = build_features(table.iloc[test], model.network)
        pred[test] = _predict_features(model, feats)[0]
    return pred


def tune_pm25(
    table: pd.DataFrame,
    *,
    grid: Sequence[dict[str, Any]] = TUNING_GRID,
    base: Pm25Params | None = None,
    n_folds: int = 3,
    use_network: bool = True,
    source: str = "training table",
) -> tuple[Pm25Params, pd.DataFrame]:
    """Choose hyperparameters by cross-validation leaving whole stations out (RMSE in ug/m3) within the
    table, one ensemble member per candidate; return the best and the table of candidates."""
    base = base or Pm25Params()
    t = check_pm25_table(table, source, need_target=True)
    splits = _splits(t, "stations", n_folds, base.seed)
    obs = t[PM25].to_numpy(float)
    rows = []
    for cand in grid:
        p = replace(base, **cand, n_models=1)
        rows.append({**cand, **score_pm25(obs, _oof(t, splits, p, use_network))})
    scores = pd.DataFrame(rows)
    best = grid[int(np.nanargmin(scores["rmse_ug_m3"].to_numpy()))]
    return replace(base, **best), scores


def permutation_importance_pm25(
    model: Pm25Model, feats: pd.DataFrame, obs_ug_m3: NDArray, *, n_repeats: int = 3, seed: int = 0
) -> pd.DataFrame:
    """Return, for each model feature, the increase of RMSE (ug/m3) when that feature is shuffled across
    the rows of a feature table (rows with an observation only)."""
    obs = np.asarray(obs_ug_m3, float)
    keep = np.isfinite(obs)
    x = feats.loc[keep].reset_index(drop=True)
    o = obs[keep]
    base = score_pm25(o, _predict_features(model, x)[0])["rmse_ug_m3"]
    rng = np.random.default_rng(seed)
    names = NETWORK_FEATURES if model.use_network else SATELLITE_FEATURES
    frames, labels = [], []
    for name in names:
        for _ in range(n_repeats):
            xp = x.copy()
            xp[name] = x[name].to_numpy()[rng.permutation(len(x))]
            frames.append(xp)
            labels.append(name)
    rmse = [score_pm25(o, p)["rmse_ug_m3"] - base for p in _predict_many(model, frames)]
    imp = pd.DataFrame({"feature": labels, "rmse_increase_ug_m3": rmse})
    return imp.groupby("feature", sort=False, as_index=False)["rmse_increase_ug_m3"].mean()


def _predict_many(model: Pm25Model, frames: Sequence[pd.DataFrame]) -> list[NDArray[np.float64]]:
    """Return PM2.5 (ug/m3) of many feature tables, predicted in batches of stacked tables (one model call
    per batch instead of one per table)."""
    out: list[NDArray[np.float64]] = []
    batch: list[pd.DataFrame] = []
    rows = 0
    for i, f in enumerate(frames):
        batch.append(f)
        rows += len(f)
        if rows >= _BATCH_ROWS or i == len(frames) - 1:
            pred = _predict_features(model, pd.concat(batch, ignore_index=True))[0]
            out.extend(np.split(pred, np.cumsum([len(b) for b in batch])[:-1]))
            batch, rows = [], 0
    return out


def _cv_fold(task: dict[str, Any]) -> dict[str, Any]:
    """Fit on one fold's training rows (tuning inside them if asked) and predict its test rows."""
    table, train, test = task["table"], task["train"], task["test"]
    params: Pm25Params = task["params"]
    tuned = None
    if task["tune"]:
        params, tuned = tune_pm25(
            table.iloc[train], base=params, n_folds=task["inner_folds"], use_network=task["use_network"]
        )
    t0 = time.perf_counter()
    model = fit_pm25(table.iloc[train], params=params, use_network=task["use_network"], source="fold")
    fit_s = time.perf_counter() - t0
    feats = build_features(table.iloc[test], model.network)
    pred, used = _predict_features(model, feats)
    imp = None
    if task["importance"]:
        obs = table[PM25].to_numpy(float)[test]
        imp = permutation_importance_pm25(model, feats, obs, n_repeats=task["n_repeats"], seed=task["fold"])
        imp["fold"] = task["fold"]
    return {"pred": pred, "used_network": used, "importance": imp, "params": asdict(params),
            "tuning": None if tuned is None else tuned.to_dict("records"), "fit_s": fit_s}  # fmt: skip


def cross_validate_pm25(
    table: pd.DataFrame,
    *,
    scheme: str = "stations",
    n_folds: int = 10,
    params: Pm25Params | None = None,
    use_network: bool = True,
    tune: bool = False,
    inner_folds: int = 3,
    importance: bool = False,
    n_repeats: int = 3,
    mode: str = "serial",
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    source: str = "training table",
) -> CvResult:
    """Cross-validate the PM2.5 model: leaving whole stations out (``scheme='stations'``, GroupKFold by
    station code), whole days out (``'days'``) or random station-days (``'random'``); folds run through
    :func:`kizuna.core.parallel.run_tasks`. Hyperparameters, when tuned, are chosen inside each training
    fold, never on its test stations."""
    from kizuna.core.parallel import run_tasks

    params = params or Pm25Params()
    t = check_pm25_table(table, source, need_target=True).reset_index(drop=True)
    splits = _splits(t, scheme, n_folds, params.seed)
    tasks = [
        {"table": t, "train": tr, "test": te, "params": params, "use_network": use_network, "tune": tune,
         "inner_folds": inner_folds, "importance": importance, "n_repeats": n_repeats, "fold": k}
        for k, (tr, te) in enumerate(splits)
    ]  # fmt: skip
    results = run_tasks(
        _cv_fold, tasks, mode=mode, scheduler=scheduler, n_workers=n_workers, progress=progress
    )
    pred = np.full(len(t), np.nan)
    used = np.zeros(len(t), bool)
    fold = np.full(len(t), -1)
    for k, ((_, te), r) in enumerate(zip(splits, results, strict=True)):
        pred[te], used[te], fold[te] = r["pred"], r["used_network"], k
    obs = t[PM25].to_numpy(float)
    has_aod = np.isfinite(t[AOD].to_numpy(float))
    out = pd.DataFrame(
        {
            STATION_CODE: t[STATION_CODE].to_numpy(),
            "station": (t[STATION_NAME] if STATION_NAME in t.columns else t[STATION_CODE])
            .astype(str)
            .to_numpy(),
            YEAR: t[YEAR].astype(int).to_numpy(),
            DOY: t[DOY].astype(int).to_numpy(),
            "season": season_of(t),
            "aod_available": has_aod,
            "network_model": used,
            "fold": fold,
            "pm25_obs_ug_m3": obs,
            "pm25_pred_ug_m3": pred,
        }
    )
    scores = {
        "all": score_pm25(obs, pred),
        "aod_available": score_pm25(obs[has_aod], pred[has_aod]),
        "aod_missing": score_pm25(obs[~has_aod], pred[~has_aod]),
    }
    imps = [r["importance"] for r in results if r["importance"] is not None]
    return CvResult(
        scheme=scheme,
        n_folds=len(splits),
        predictions=out,
        scores=scores,
        importance=pd.concat(imps, ignore_index=True) if imps else None,
        fold_params=[{**r["params"], "tuning": r["tuning"]} for r in results],
        fit_seconds=float(sum(r["fit_s"] for r in results)),
    )


def partial_dependence_pm25(
    model: Pm25Model,
    table: pd.DataFrame,
    features: Sequence[str],
    *,
    n_grid: int = 20,
    max_rows: int = 2000,
    seed: int = 0,
    satellite_only: bool = False,
    source: str = "table",
) -> dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """Return, for each feature, a grid of its values (5th to 95th percentile) and the mean predicted
    PM2.5 (ug/m3) over the table's rows with that feature set to each value (partial dependence); with
    ``satellite_only`` the PM2.5 context is withheld, so the curves are those of the satellite model."""
    t = check_pm25_table(table, source, need_target=False)
    feats = build_features(t, model.network)
    if len(feats) > max_rows:
        feats = feats.iloc[np.sort(np.random.default_rng(seed).choice(len(feats), max_rows, replace=False))]
    use_net = model.use_network and not satellite_only
    if not use_net:
        feats = feats.assign(**{c: np.nan for c in PM_CONTEXT_FEATURES})
    known = NETWORK_FEATURES if use_net else SATELLITE_FEATURES
    out = {}
    for name in features:
        if name not in known:
            raise InputError(f"partial dependence: feature {name!r}: expected one of {', '.join(known)}")
        v = feats[name].to_numpy(float)
        v = v[np.isfinite(v)]
        if len(v) == 0:
            continue
        grid = np.unique(np.quantile(v, np.linspace(0.05, 0.95, n_grid)))
        frames = []
        for g in grid:
            x = feats.copy()
            x[name] = g
            if name == AOD:
                x["aod_missing"] = 0.0
            frames.append(x)
        out[name] = (grid, np.array([float(np.mean(p)) for p in _predict_many(model, frames)]))
    return out


MODEL_KIND = "kizuna.eo.pm25.model"
MODEL_FORMAT = 1
_MODEL_FILES = ("model.joblib", "network.parquet")


def _sha256(path: Path) -> str:
    """Return the SHA-256 hex digest of a file."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_pm25_model(model: Pm25Model, path: str | os.PathLike[str]) -> Path:
    """Write a model folder (replaced whole): model.joblib (the ensembles), network.parquet (the training
    network's daily PM2.5 and AOD) and manifest.json (feature columns, versions, training statistics)."""
    import joblib
    import sklearn

    from kizuna import __version__
    from kizuna.core.io import output_dir, write_json, write_parquet

    dest = Path(path)
    with output_dir(dest) as tmp:
        joblib.dump(
            {"satellite_models": model.satellite_models, "network_models": model.network_models},
            tmp / "model.joblib",
            compress=3,
        )
        write_parquet(tmp / "network.parquet", network_table(model.network))
        manifest = {
            "kind": MODEL_KIND,
            "format_version": MODEL_FORMAT,
            "kizuna_version": __version__,
            "sklearn_version": sklearn.__version__,
            "target_column": PM25,
            "target_units": "ug/m3",
            "input_columns": list(INPUT_COLUMNS),
            "training_columns": list(TRAIN_COLUMNS),
            "satellite_features": list(SATELLITE_FEATURES),
            "network_features": list(NETWORK_FEATURES) if model.use_network else [],
            "params": asdict(model.params),
            "training": model.training,
            "files": {name: _sha256(tmp / name) for name in _MODEL_FILES},
        }
        write_json(tmp / "manifest.json", manifest)
    return dest


def load_pm25_model(path: str | os.PathLike[str]) -> Pm25Model:
    """Read a model folder written by :func:`save_pm25_model`, checking its manifest and file checksums;
    raise InputError naming the folder and what is wrong. Only load folders you trust (joblib unpickles)."""
    import joblib

    p = Path(path)
    if not p.is_dir():
        raise InputError(
            f"{p}: no such model folder (expected the --model folder written by 'kizuna eo pm25 fit')"
        )
    mpath = p / "manifest.json"
    if not mpath.is_file():
        raise InputError(f"{p}: not a PM2.5 model folder (no manifest.json)")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{mpath}: cannot read the manifest ({' '.join(str(exc).split())})") from exc
    if not isinstance(manifest, dict) or manifest.get("kind") != MODEL_KIND:
        kind = manifest.get("kind") if isinstance(manifest, dict) else None
        raise InputError(f"{mpath}: kind {kind!r}: expected {MODEL_KIND!r} (a PM2.5 model folder)")
    if manifest.get("format_version") != MODEL_FORMAT:
        raise InputError(
            f"{mpath}: format_version {manifest.get('format_version')!r}: expected {MODEL_FORMAT} "
            "(refit the model with this version of kizuna)"
        )
    expected = {
        "satellite_features": list(SATELLITE_FEATURES),
        "input_columns": list(INPUT_COLUMNS),
        "target_column": PM25,
    }
    for key, value in expected.items():
        if manifest.get(key) != value:
            raise InputError(f"{mpath}: {key} differs from this version of kizuna's (refit the model)")
    files = manifest.get("files") or {}
    for name in _MODEL_FILES:
        f = p / name
        if not f.is_file():
            raise InputError(f"{p}: model file {name} is missing")
        if files.get(name) != _sha256(f):
            raise InputError(f"{f}: checksum differs from manifest.json (the file was changed or is damaged)")
    try:
        fields = {k: v for k, v in manifest.get("params", {}).items() if k in Pm25Params.__dataclass_fields__}
        params = Pm25Params(**fields)
        blob = joblib.load(p / "model.joblib")
        net = station_network(pd.read_parquet(p / "network.parquet"), str(p / "network.parquet"))
    except (TypeError, ValueError, KeyError, OSError, EOFError, AttributeError, ImportError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(
            f"{p}: cannot read the model ({type(exc).__name__}: {' '.join(str(exc).split())})"
        ) from exc
    sat, netm = blob.get("satellite_models"), blob.get("network_models")
    want_net = len(manifest.get("network_features") or [])
    for models, n_feat, what in ((sat, len(SATELLITE_FEATURES), "satellite"), (netm, want_net, "network")):
        if not isinstance(models, list) or any(getattr(m, "n_features_in_", None) != n_feat for m in models):
            raise InputError(f"{p / 'model.joblib'}: the {what} models do not match manifest.json")
    if not sat:
        raise InputError(f"{p / 'model.joblib'}: no satellite models")
    return Pm25Model(params, sat, netm, net, dict(manifest.get("training", {})))
