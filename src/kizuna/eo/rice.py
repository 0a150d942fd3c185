"""Rice mapping from Sentinel-1 VH/VV backscatter time series (dB): phase-invariant features, a rule-based
mode that needs no labels, a trained classifier (scikit-learn), and the same on raster stacks (xarray,
Dask-chunked or not).

No feature depends on the exact planting date. Two groups:

* ``distribution``: quantiles of the VH, VV and VH-VV values over all valid acquisitions. They are
  exactly unchanged by any shift or reordering in time, and they carry the flooded lows, the canopy highs
  and how long each lasts.
* ``dynamics``: the flood-and-growth cycle. A paddy is flooded before transplanting (low backscatter from
  the specular water surface), its backscatter rises as the canopy grows to heading and drops at harvest.
  Features are taken over all start times (the largest rise within a growing window, its start level, end
  level and duration; the largest drop), over fixed seasons (amplitudes sorted, so their order does not
  matter), and as harmonic amplitudes; levels and spreads come from a running median that removes speckle
  spikes.

NaN and nodata are skipped (``distribution``) or filled by linear interpolation in time (``dynamics``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kizuna.errors import InputError

__all__ = [
    "DEFAULT_STEP_DAYS",
    "FEATURE_GROUPS",
    "FeatureConfig",
    "RiceRules",
    "RiceClassifier",
    "time_axis_days",
    "fill_gaps",
    "nan_quantiles",
    "s1_features",
    "s2_features",
    "point_features",
    "classify_rules",
    "make_estimator",
    "train_classifier",
    "load_classifier",
    "classify_raster",
]

PathLike = str | os.PathLike[str]

DEFAULT_STEP_DAYS = 12.0
"""Spacing (days) assumed between acquisitions when no dates are given: the repeat cycle of one Sentinel-1
satellite. Stacks that merge orbits are denser (the An Giang set: 76 acquisitions in about 285 days)."""

FEATURE_GROUPS = ("distribution", "dynamics")


@dataclass(frozen=True)
class FeatureConfig:
    """Settings of the phase-invariant features (time spans in days)."""

    groups: tuple[str, ...] = ("distribution",)
    """Feature groups fed to the classifier: 'distribution' and/or 'dynamics'."""
    quantiles_pct: tuple[float, ...] = tuple(float(q) for q in np.arange(2.5, 98.0, 2.5))
    """Quantile levels (percent) of the distribution features."""
    rise_window_days: float = 120.0
    """Longest span over which the rise from flooding to heading is sought (transplanting to heading is
    about 60-90 days for the short-duration varieties of the Mekong Delta)."""
    season_days: float = 120.0
    """Length of the windows of the per-season statistics (one rice season)."""
    cycle_db: float = 5.0
    """A season whose backscatter amplitude exceeds this (dB) counts as one crop cycle."""
    n_harmonics: int = 4
    """Harmonic amplitudes 1..n of the series over its record length."""
    smooth_days: float = 20.0
    """Span of the running median that removes bright spikes (speckle, boats, orbit-to-orbit jumps) before
    high levels are read (at least 3 acquisitions); lows use a 3-acquisition median so a short flood stays."""

    def __post_init__(self) -> None:
        bad = [g for g in self.groups if g not in FEATURE_GROUPS]
        if bad or not self.groups:
            raise InputError(f"feature groups {list(self.groups)}: expected one or more of {FEATURE_GROUPS}")


@dataclass(frozen=True)
class RiceRules:
    """INAHOR-style thresholds on the VH series (dB): rice when a flooded low is followed by a rise.

    The scheme follows JAXA's INAHOR (Oyoshi et al. 2016, Paddy Water Environ. 14, 463-472: a pixel is
    paddy when its backscatter falls to a water level at transplanting and then rises with the canopy)
    and the rule-based MAPscape-RICE (Nelson et al. 2014, Remote Sens. 6, 10773-10812). The defaults are
    C-band cross-polarised levels: calm open water and freshly flooded fields lie below about -20 dB in VH,
    rice canopies near heading above about -18 dB, and the seasonal VH rise of transplanted rice is well
    above the few dB of speckle and wind on open water. They were set from these physical levels, not
    fitted to labelled data; calibrate them for another sensor, incidence angle or region.
    """

    flood_max_db: float = -20.0
    """The low before the rise must be at or below this VH level (flooded field)."""
    rise_min_db: float = 6.0
    """The VH rise within ``FeatureConfig.rise_window_days`` must be at least this."""
    peak_min_db: float = -18.0
    """The VH level reached at the end of the rise must be at or above this (a canopy, not water)."""
    scale_db: float = 2.0
    """Margin (dB) that maps to one logit of the rule score."""


def time_axis_days(n_times: int, t_days: Any = None, step_days: float | None = None) -> NDArray[np.float64]:
    """Return acquisition times in days from the first, from given times or an even ``step_days`` spacing."""
    if t_days is None:
        step = DEFAULT_STEP_DAYS if step_days is None else float(step_days)
        if not np.isfinite(step) or step <= 0:
            raise InputError(f"step_days {step_days!r}: expected a positive spacing in days")
        return np.arange(n_times, dtype=float) * step
    t = np.asarray(t_days, dtype=float).ravel()
    if t.size != n_times:
        raise InputError(f"acquisition times: {t.size} values for {n_times} acquisitions; expected equal")
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise InputError("acquisition times: expected finite, strictly increasing days")
    return t - t[0]


def _empty_rows(a: NDArray, where: str, allow_empty: bool) -> NDArray[np.bool_]:
    """Return the rows without any finite value; raise InputError naming the first unless allowed."""
    empty = ~np.isfinite(a).any(axis=1)
    if empty.any() and not allow_empty:
        i, k = int(np.flatnonzero(empty)[0]), int(empty.sum())
        more = f" ({k} such rows)" if k > 1 else ""
        raise InputError(
            f"{where}: row {i}: all {a.shape[1]} values are NaN or nodata; expected at least one valid "
            f"acquisition{more}"
        )
    return empty


def fill_gaps(
    y: NDArray, t_days: NDArray | None = None, *, where: str = "series", allow_empty: bool = False
) -> NDArray[np.float64]:
    """Return (n, T) series with NaN filled by linear interpolation in time (ends held at the nearest value).

    A row with no valid value raises InputError naming the row, unless ``allow_empty`` (then it stays NaN).
    """
    a = np.asarray(y, dtype=np.float64)
    if a.ndim != 2:
        raise InputError(f"{where}: shape {a.shape}: expected (points, time)")
    n, T = a.shape
    t = time_axis_days(T, t_days)
    _empty_rows(a, where, allow_empty)
    valid = np.isfinite(a)
    if valid.all():
        return a.copy()
    idx = np.broadcast_to(np.arange(T), (n, T))
    prev = np.maximum.accumulate(np.where(valid, idx, -1), axis=1)
    nxt = np.minimum.accumulate(np.where(valid, idx, T)[:, ::-1], axis=1)[:, ::-1]
    lo = np.clip(np.where(prev < 0, nxt, prev), 0, T - 1)
    hi = np.clip(np.where(nxt >= T, prev, nxt), 0, T - 1)
    ylo = np.take_along_axis(a, lo, axis=1)
    yhi = np.take_along_axis(a, hi, axis=1)
    span = t[hi] - t[lo]
    w = np.divide(t[None, :] - t[lo], span, out=np.zeros_like(span), where=span > 0)
    return ylo + w * (yhi - ylo)


def nan_quantiles(a: NDArray, q_pct: Sequence[float]) -> NDArray[np.float64]:
    """Return (n, len(q)) quantiles of each row over its finite values (linear interpolation; NaN if none)."""
    x = np.sort(np.asarray(a, dtype=np.float64), axis=1)  # NaN sorts last
    k = np.isfinite(x).sum(axis=1)
    pos = (np.asarray(q_pct, dtype=float)[None, :] / 100.0) * np.maximum(k - 1, 0)[:, None]
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, np.maximum(k - 1, 0)[:, None])
    frac = pos - lo
    out = np.take_along_axis(x, lo, axis=1) * (1 - frac) + np.take_along_axis(x, hi, axis=1) * frac
    out[k == 0] = np.nan
    return out


def _running_median(
    a: NDArray[np.float64], t: NDArray[np.float64], window_days: float
) -> NDArray[np.float64]:
    """Return a running median over an odd number (>= 3) of acquisitions spanning about window_days; near
    the ends the window shrinks symmetrically."""
    T = a.shape[1]
    step = float(np.median(np.diff(t))) if T > 1 else 1.0
    half = min(max(1, int(round(window_days / step / 2.0))), (T - 1) // 2)
    if half < 1:
        return a.copy()
    out = a.copy()
    out[:, half : T - half] = np.median(
        np.stack([a[:, half + k : T - half + k] for k in range(-half, half + 1)]), axis=0
    )
    for i in range(half):
        out[:, i] = np.median(a[:, : 2 * i + 1], axis=1)
        out[:, T - 1 - i] = np.median(a[:, T - 1 - 2 * i :], axis=1)
    return out


def _largest_change(
    first: NDArray[np.float64], second: NDArray[np.float64], t: NDArray[np.float64], window_days: float
) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """Return the largest second[j] - first[i] over i < j with t[j] - t[i] <= window_days, as
    (change_db, span_days, first_db, second_db); 0 when nothing increases."""
    n, T = first.shape
    best, span = np.zeros(n), np.zeros(n)
    start, end = first[:, 0].copy(), second[:, 0].copy()
    rows = np.arange(n)
    for k in range(1, T):
        dt = t[k:] - t[:-k]
        ok = dt <= window_days
        if not ok.any():
            break
        d = second[:, k:] - first[:, :-k]
        d[:, ~ok] = -np.inf
        j = np.argmax(d, axis=1)
        v = d[rows, j]
        better = v > best
        if better.any():
            best = np.where(better, v, best)
            span = np.where(better, dt[j], span)
            start = np.where(better, first[rows, j], start)
            end = np.where(better, second[rows, j + k], end)
    return best, span, start, end


def _harmonic_amplitudes(f: NDArray[np.float64], t: NDArray[np.float64], n_harm: int) -> NDArray[np.float64]:
    """Return (n, n_harm) amplitudes (dB) of harmonics 1..n_harm over the record, on a uniform resampling."""
    n_grid = max(2 * n_harm + 2, 64)
    grid = np.linspace(t[0], t[-1], n_grid, endpoint=False)
    j = np.clip(np.searchsorted(t, grid, side="right") - 1, 0, len(t) - 2)
    w = (grid - t[j]) / (t[j + 1] - t[j])
    u = f[:, j] * (1 - w) + f[:, j + 1] * w
    spec = np.fft.rfft(u - u.mean(axis=1, keepdims=True), axis=1)
    return 2.0 * np.abs(spec[:, 1 : n_harm + 1]) / n_grid


def _season_stats(
    low: NDArray[np.float64], high: NDArray[np.float64], t: NDArray[np.float64], config: FeatureConfig
) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray]:
    """Return per-season amplitudes sorted (max, median, min), the mean season low and the cycle count."""
    edges = np.arange(t[0], t[-1] + config.season_days, config.season_days)
    amps, lows = [], []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        m = (t >= a) & (t < b)
        if m.sum() >= 2:
            amps.append(high[:, m].max(axis=1) - low[:, m].min(axis=1))
            lows.append(low[:, m].min(axis=1))
    if not amps:
        amps, lows = [high.max(axis=1) - low.min(axis=1)], [low.min(axis=1)]
    A, L = np.stack(amps, axis=1), np.stack(lows, axis=1)
    n_cycles = (config.cycle_db < A).sum(axis=1).astype(float)
    return A.max(axis=1), np.median(A, axis=1), A.min(axis=1), L.mean(axis=1), n_cycles


def _dynamics(f: NDArray[np.float64], t: NDArray[np.float64], config: FeatureConfig) -> tuple[dict, NDArray]:
    """Return the named dynamics features of one gap-filled (n, T) band in dB and its smoothed series."""
    low = _running_median(f, t, 0.0)
    s = _running_median(f, t, config.smooth_days)
    p10, p50, p90 = np.percentile(s, [10, 50, 90], axis=1)
    lo_min, hi_max = low.min(axis=1), s.max(axis=1)
    rise, rise_days, rise_start, rise_end = _largest_change(low, s, t, config.rise_window_days)
    drop, drop_days, _, _ = _largest_change(-s, -low, t, config.rise_window_days)
    amp_max, amp_med, amp_min, low_mean, n_cycles = _season_stats(low, s, t, config)
    harm = _harmonic_amplitudes(s, t, config.n_harmonics)
    stats = {
        "mean_db": s.mean(axis=1),
        "std_db": s.std(axis=1),
        "p10_db": p10,
        "median_db": p50,
        "p90_db": p90,
        "min_db": lo_min,
        "max_db": hi_max,
        "flood_depth_db": p50 - lo_min,
        "peak_height_db": hi_max - p50,
        "rise_db": rise,
        "rise_days": rise_days,
        "rise_start_db": rise_start,
        "rise_peak_db": rise_end,
        "rise_rate_db_per_day": np.divide(rise, rise_days, out=np.zeros_like(rise), where=rise_days > 0),
        "drop_db": drop,
        "drop_days": drop_days,
        "season_amp_max_db": amp_max,
        "season_amp_median_db": amp_med,
        "season_amp_min_db": amp_min,
        "season_low_mean_db": low_mean,
        "n_cycles": n_cycles,
    }
    for k in range(config.n_harmonics):
        stats[f"harmonic{k + 1}_db"] = harm[:, k]
    return stats, s


def s1_features(
    vh_db: NDArray,
    vv_db: NDArray,
    t_days: NDArray | None = None,
    *,
    config: FeatureConfig = FeatureConfig(),
    groups: Sequence[str] | None = None,
    where: str = "S1",
    allow_empty: bool = False,
) -> tuple[NDArray[np.float64], list[str]]:
    """Return (n, F) phase-invariant features and their names from (n, T) VH and VV series in dB.

    ``groups`` (default ``config.groups``) picks 'distribution' and/or 'dynamics'. A point with no valid
    value in a band raises InputError naming the row, or with ``allow_empty`` gets NaN features.
    """
    vh = np.asarray(vh_db, dtype=np.float64)
    vv = np.asarray(vv_db, dtype=np.float64)
    if vh.ndim != 2 or vh.shape != vv.shape:
        raise InputError(f"{where}: VH {vh.shape} and VV {vv.shape}: expected two (points, time) arrays")
    groups = tuple(config.groups if groups is None else groups)
    FeatureConfig(groups=groups)  # validates the names
    t = time_axis_days(vh.shape[1], t_days)
    empty = _empty_rows(vh, f"{where} VH", allow_empty) | _empty_rows(vv, f"{where} VV", allow_empty)
    cols: list[NDArray] = []
    names: list[str] = []
    if "distribution" in groups:
        q = config.quantiles_pct
        for name, x in (("vh", vh), ("vv", vv), ("vh_vv_ratio", vh - vv)):
            cols.extend(nan_quantiles(x, q).T)
            names.extend(f"{name}_q{v:g}_db" for v in q)
    if "dynamics" in groups:
        smooth = {}
        for name, x in (("vh", vh), ("vv", vv)):
            f = fill_gaps(x, t, where=f"{where} {name.upper()}", allow_empty=True)
            stats, smooth[name] = _dynamics(np.where(np.isfinite(f), f, 0.0), t, config)
            names.extend(f"{name}_{k}" for k in stats)
            cols.extend(stats.values())
        ratio = smooth["vh"] - smooth["vv"]
        r10, r90 = np.percentile(ratio, [10, 90], axis=1)
        names.extend(f"vh_vv_ratio_{k}" for k in ("mean_db", "std_db", "p10_db", "p90_db"))
        cols.extend([ratio.mean(axis=1), ratio.std(axis=1), r10, r90])
    X = np.stack(cols, axis=1)
    X[empty] = np.nan
    return X, names


def s2_features(s2_reflectance: NDArray, *, where: str = "S2") -> tuple[NDArray[np.float64], list[str]]:
    """Return (n, F) NDVI features (unitless) from (n, 4, T) Sentinel-2 red, green, blue, NIR reflectance.

    Clouds lower NDVI, so the features are quantiles, of which the upper ones are least disturbed, and the
    fraction of water-like (negative NDVI) dates. NaN or 0 reflectance is no data; a point without any
    valid date gets NaN features.
    """
    r = np.asarray(s2_reflectance, dtype=np.float64)
    if r.ndim != 3 or r.shape[1] != 4:
        raise InputError(f"{where}: shape {r.shape}: expected (points, 4 bands red/green/blue/NIR, time)")
    red, nir = r[:, 0], r[:, 3]
    ok = np.isfinite(red) & np.isfinite(nir) & (red > 0) & (nir > 0)
    ndvi = np.where(ok, (nir - red) / np.where(ok, nir + red, 1.0), np.nan)
    q = nan_quantiles(ndvi, [10, 25, 50, 75, 90, 100])
    water = np.where(ok, ndvi < 0.0, False).sum(axis=1) / np.maximum(ok.sum(axis=1), 1)
    X = np.column_stack([q, q[:, 4] - q[:, 0], water])
    X[~ok.any(axis=1)] = np.nan
    names = [
        "ndvi_q10",
        "ndvi_q25",
        "ndvi_q50",
        "ndvi_q75",
        "ndvi_q90",
        "ndvi_max",
        "ndvi_range",
        "ndvi_water",
    ]
    return X, [f"s2_{n}" for n in names]


def point_features(
    points: Any,
    *,
    t_days: NDArray | None = None,
    config: FeatureConfig = FeatureConfig(),
    groups: Sequence[str] | None = None,
    with_s2: bool = False,
) -> tuple[NDArray[np.float64], list[str]]:
    """Return the feature table (n, F) and names of a :class:`kizuna.eo.rice_io.RicePoints` set."""
    where = points.source or "S1"
    X, names = s1_features(
        points.band_db("vh"), points.band_db("vv"), t_days, config=config, groups=groups, where=where
    )
    if with_s2:
        if points.s2_reflectance is None:
            raise InputError(f"{where}: no Sentinel-2 data loaded; expected the S2 arrays")
        X2, n2 = s2_features(points.s2_reflectance, where=where)
        X, names = np.hstack([X, X2]), names + n2
    return X, names


def classify_rules(
    X: NDArray, names: Sequence[str], rules: RiceRules = RiceRules()
) -> tuple[NDArray[np.int8], NDArray[np.float64]]:
    """Return (label 1 rice / 0 not, score 0..1) from the VH dynamics features by the INAHOR-style rules.

    The score is a logistic function of the smallest margin (in units of ``rules.scale_db``) to the three
    thresholds, at least 0.5 exactly when all three hold (each threshold counts as met when reached, as
    :class:`RiceRules` states), so ``score >= 0.5`` and the label agree. It ranks pixels; it is not a
    calibrated probability. Rows with NaN features get label 0 and a NaN score.
    """
    idx = {n: i for i, n in enumerate(names)}
    need = ("vh_rise_db", "vh_rise_start_db", "vh_rise_peak_db")
    missing = [k for k in need if k not in idx]
    if missing:
        raise InputError(f"feature table: missing {missing}; expected the 'dynamics' features of s1_features")
    X = np.asarray(X, dtype=float)
    rise, start, peak = (X[:, idx[k]] for k in need)
    margin = np.minimum.reduce(
        [rise - rules.rise_min_db, rules.flood_max_db - start, peak - rules.peak_min_db]
    )
    with np.errstate(over="ignore", invalid="ignore"):
        score = 1.0 / (1.0 + np.exp(-margin / float(rules.scale_db)))
    return (margin >= 0).astype(np.int8), score


def make_estimator(kind: str = "random_forest", seed: int = 0, n_trees: int = 300) -> Any:
    """Return an unfitted scikit-learn classifier: 'random_forest' (default) or 'gradient_boosting'."""
    if kind == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=n_trees, min_samples_leaf=5, n_jobs=1, random_state=seed)
    if kind == "gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=n_trees, learning_rate=0.05, random_state=seed)
    raise InputError(f"classifier {kind!r}: expected 'random_forest' or 'gradient_boosting'")


@dataclass
class RiceClassifier:
    """A fitted rice / not-rice classifier on phase-invariant features, with the settings it needs."""

    estimator: Any
    feature_names: list[str]
    config: FeatureConfig = field(default_factory=FeatureConfig)
    with_s2: bool = False
    kind: str = "random_forest"
    step_days: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def predict_proba(self, X: NDArray) -> NDArray[np.float64]:
        """Return the probability of rice (0..1) per row of a feature table in ``feature_names`` order
        (NaN for rows with NaN features)."""
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise InputError(
                f"feature table of shape {X.shape}: expected {len(self.feature_names)} columns "
                f"(groups {list(self.config.groups)}, {'with' if self.with_s2 else 'without'} Sentinel-2)"
            )
        out = np.full(X.shape[0], np.nan)
        ok = np.all(np.isfinite(X), axis=1)
        if ok.any():
            proba = self.estimator.predict_proba(X[ok])
            classes = list(self.estimator.classes_)
            out[ok] = proba[:, classes.index(1)] if 1 in classes else 0.0
        return out

    def importances(self) -> dict[str, float]:
        """Return impurity-based feature importances (sum 1) of tree ensembles, else an empty mapping."""
        imp = getattr(self.estimator, "feature_importances_", None)
        return {} if imp is None else dict(zip(self.feature_names, map(float, imp), strict=True))

    def save(self, path: PathLike) -> Path:
        """Write the model to one joblib file, atomically; return the path."""
        import joblib

        from kizuna.core.io import atomic_path

        payload = {
            "format": "kizuna.eo.rice/1",
            "estimator": self.estimator,
            "feature_names": list(self.feature_names),
            "config": asdict(self.config),
            "with_s2": self.with_s2,
            "kind": self.kind,
            "step_days": self.step_days,
            "meta": dict(self.meta),
        }
        dest = Path(path)
        with atomic_path(dest) as tmp:
            joblib.dump(payload, tmp, compress=3)
        return dest


def load_classifier(path: PathLike) -> RiceClassifier:
    """Read a model written by :meth:`RiceClassifier.save` (a joblib pickle: load only files you trust)."""
    import joblib

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: model file not found")
    try:
        d = joblib.load(p)
    except Exception as exc:  # joblib raises many error types for a file that is not a model
        first = (str(exc).splitlines() or [""])[0]
        raise InputError(f"{p}: cannot read the model ({type(exc).__name__}: {first})") from exc
    if not isinstance(d, dict) or d.get("format") != "kizuna.eo.rice/1":
        raise InputError(f"{p}: not a kizuna rice model (expected format 'kizuna.eo.rice/1')")
    cfg = dict(d["config"])
    cfg["groups"] = tuple(cfg["groups"])
    cfg["quantiles_pct"] = tuple(cfg["quantiles_pct"])
    return RiceClassifier(
        estimator=d["estimator"],
        feature_names=list(d["feature_names"]),
        config=FeatureConfig(**cfg),
        with_s2=bool(d["with_s2"]),
        kind=str(d["kind"]),
        step_days=d.get("step_days"),
        meta=dict(d.get("meta", {})),
    )


def train_classifier(
    X: NDArray,
    y: NDArray,
    feature_names: Sequence[str],
    *,
    kind: str = "random_forest",
    seed: int = 0,
    n_trees: int = 300,
    config: FeatureConfig = FeatureConfig(),
    with_s2: bool = False,
    step_days: float | None = None,
) -> RiceClassifier:
    """Fit a rice classifier on a feature table and labels 1/0 (rows with NaN features or label -1 are
    left out)."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y).astype(int)
    ok = np.all(np.isfinite(X), axis=1) & (y >= 0)
    if len(np.unique(y[ok])) < 2:
        raise InputError(
            f"training labels: {int(ok.sum())} usable points of one class; expected rice and not"
        )
    est = make_estimator(kind, seed, n_trees).fit(X[ok], y[ok])
    return RiceClassifier(est, list(feature_names), config, with_s2, kind, step_days)


def _raster_t_days(da: Any, time_dim: str, step_days: float | None) -> NDArray[np.float64]:
    """Return days from the first acquisition from a datetime time coordinate, else an even spacing."""
    T = da.sizes[time_dim]
    if time_dim in da.coords and np.issubdtype(da[time_dim].dtype, np.datetime64):
        t = da[time_dim].values.astype("datetime64[s]").astype(np.int64) / 86400.0
        return time_axis_days(T, t)
    return time_axis_days(T, None, step_days)


def classify_raster(
    s1: Any,
    *,
    model: RiceClassifier | None = None,
    rules: RiceRules = RiceRules(),
    units: str = "linear",
    nodata: float | None = -32768.0,
    time_dim: str = "time",
    band_dim: str = "band",
    step_days: float | None = None,
    config: FeatureConfig = FeatureConfig(),
) -> Any:
    """Map a (time, band, y, x) Sentinel-1 stack (xarray, band labels 'vh'/'vv') to rice classes.

    Returns an xarray Dataset on the stack's spatial grid with ``rice_class`` (uint8: 1 rice, 0 not, 255 no
    data) and ``rice_probability`` (float32, NaN where no data): the classifier's probability with
    ``model``, else the rule score of :func:`classify_rules`. Dask-backed input stays lazy (one task per
    spatial chunk; time and band are gathered into one chunk). Times come from a datetime ``time``
    coordinate, else from ``step_days`` (or the model's).
    """
    import xarray as xr

    from kizuna.eo.rice_io import s1_bands_db

    if not isinstance(s1, xr.DataArray):
        raise InputError(f"S1 stack: got {type(s1).__name__}; expected an xarray.DataArray")
    for d in (time_dim, band_dim):
        if d not in s1.dims:
            raise InputError(f"S1 stack: dims {list(s1.dims)}: expected {time_dim!r} and {band_dim!r}")
    if band_dim not in s1.coords:
        raise InputError(f"S1 stack: no {band_dim!r} coordinate; expected band labels 'vh' and 'vv'")
    bands = [str(b).strip().lower() for b in s1[band_dim].values]
    if "vh" not in bands or "vv" not in bands:
        raise InputError(f"S1 stack: band labels {bands}: expected 'vh' and 'vv'")
    if model is not None and model.with_s2:
        raise InputError("model uses Sentinel-2 features; a Sentinel-1 raster stack cannot feed it")
    ivh, ivv = bands.index("vh"), bands.index("vv")
    step = step_days if step_days is not None else (model.step_days if model is not None else None)
    t = _raster_t_days(s1, time_dim, step)
    cfg = model.config if model is not None else config

    def block(arr: NDArray) -> tuple[NDArray, NDArray]:
        shape = arr.shape[:-2]
        flat = np.moveaxis(arr.reshape(-1, arr.shape[-2], arr.shape[-1]), 2, 1)  # (n, band, time)
        db = s1_bands_db(flat[:, [ivh, ivv], :], units=units, nodata=nodata, where="S1 stack")
        if model is not None:
            X, _ = s1_features(db[:, 0], db[:, 1], t, config=cfg, allow_empty=True)
            p = model.predict_proba(X)
        else:
            X, names = s1_features(db[:, 0], db[:, 1], t, config=cfg, groups=("dynamics",), allow_empty=True)
            p = classify_rules(X, names, rules)[1]
        cls = np.where(np.isfinite(p), (p >= 0.5).astype(np.uint8), np.uint8(255)).astype(np.uint8)
        return cls.reshape(shape), p.astype(np.float32).reshape(shape)

    da = s1.transpose(..., time_dim, band_dim)
    if da.chunks is not None:
        da = da.chunk({time_dim: -1, band_dim: -1})
    cls, prob = xr.apply_ufunc(
        block,
        da,
        input_core_dims=[[time_dim, band_dim]],
        output_core_dims=[[], []],
        dask="parallelized",
        output_dtypes=[np.uint8, np.float32],
    )
    mode = f"trained {model.kind}" if model is not None else "INAHOR-style rules"
    cls.attrs.update(long_name="rice class", flag_values="0 1", flag_meanings="not_rice rice", nodata=255)
    prob.attrs.update(long_name=f"rice probability ({mode})", units="1")
    return xr.Dataset({"rice_class": cls, "rice_probability": prob}, attrs={"rice_mode": mode})
