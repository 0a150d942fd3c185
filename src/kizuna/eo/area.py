"""Honest accuracy and area: error matrices, spatial sites for leave-site-out validation, and the stratified
area estimator with confidence intervals of Olofsson et al. (2014).

Olofsson, P., Foody, G. M., Herold, M., Stehman, S. V., Woodcock, C. E., Wulder, M. A. (2014). Good
practices for estimating area and assessing accuracy of land change. Remote Sensing of Environment 148,
42-57. With map classes as strata, mapped area A_i (weight W_i = A_i / A) and a reference sample of n_i
units in stratum i of which n_ij have reference class j:

* p_ij = W_i n_ij / n_i (eq. 4), the estimated area proportion of map class i and reference class j;
* area proportion of class j: p_.j = sum_i p_ij (eq. 9), area A p_.j;
* SE(p_.j) = sqrt(sum_i W_i^2 (n_ij/n_i)(1 - n_ij/n_i) / (n_i - 1)) (eq. 10); SE of area = A SE(p_.j);
* overall accuracy O = sum_j p_jj, V(O) = sum_i W_i^2 U_i (1 - U_i) / (n_i - 1) (eqs. 1, 5);
* user's accuracy U_i = p_ii / p_i. with V(U_i) = U_i (1 - U_i) / (n_i - 1) (eqs. 2, 6);
* producer's accuracy P_j = p_jj / p_.j with the variance of eq. 7.

The confidence interval is estimate +/- z SE (z = 1.96 for 95 %).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kizuna.errors import InputError

__all__ = [
    "AreaEstimate",
    "error_matrix",
    "stratified_area_estimate",
    "classification_metrics",
    "site_clusters",
    "per_site_accuracy",
    "group_cross_val_predict",
    "random_cross_val_predict",
    "cell_area_km2",
]

EARTH_MEAN_RADIUS_KM = 6371.0088
"""IUGG mean Earth radius R1 (km), for cell areas on a sphere."""


def error_matrix(map_class: NDArray, ref_class: NDArray, n_classes: int) -> NDArray[np.int64]:
    """Return the (n_classes, n_classes) count matrix: rows map class, columns reference class (0..K-1)."""
    m = np.asarray(map_class).astype(int).ravel()
    r = np.asarray(ref_class).astype(int).ravel()
    if m.shape != r.shape:
        raise InputError(f"error matrix: {m.size} map labels and {r.size} reference labels; expected equal")
    bad = (m < 0) | (m >= n_classes) | (r < 0) | (r >= n_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"error matrix: sample {i}: labels ({m[i]}, {r[i]}); expected 0..{n_classes - 1}")
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (m, r), 1)
    return counts


@dataclass(frozen=True)
class AreaEstimate:
    """Stratified (map classes as strata) estimates of area and accuracy with standard errors and 95 % CIs.

    Index i is the map class (stratum) and j the reference class; areas are in the units of the mapped
    areas given (km2 in this package).
    """

    classes: tuple[str, ...]
    counts: NDArray[np.int64]
    mapped_area: NDArray[np.float64]
    proportions: NDArray[np.float64]
    """p_ij, the estimated area proportion of each (map, reference) cell (eq. 4)."""
    area: NDArray[np.float64]
    """Error-adjusted area of each reference class."""
    area_se: NDArray[np.float64]
    area_ci: NDArray[np.float64]
    """Half-width of the confidence interval (z SE)."""
    users_accuracy: NDArray[np.float64]
    users_se: NDArray[np.float64]
    producers_accuracy: NDArray[np.float64]
    producers_se: NDArray[np.float64]
    overall_accuracy: float
    overall_se: float
    z: float

    def as_dict(self) -> dict[str, Any]:
        """Return the estimate as plain lists and numbers, keyed by class name, for summary.json."""
        out: dict[str, Any] = {
            "classes": list(self.classes),
            "error_matrix_counts_rows_map_cols_reference": self.counts.tolist(),
            "proportions_rows_map_cols_reference": self.proportions.tolist(),
            "overall_accuracy": self.overall_accuracy,
            "overall_accuracy_se": self.overall_se,
            "overall_accuracy_ci": self.z * self.overall_se,
            "z": self.z,
        }
        for k, name in enumerate(self.classes):
            out[name] = {
                "mapped_area": float(self.mapped_area[k]),
                "area": float(self.area[k]),
                "area_se": float(self.area_se[k]),
                "area_ci_low": float(self.area[k] - self.area_ci[k]),
                "area_ci_high": float(self.area[k] + self.area_ci[k]),
                "users_accuracy": float(self.users_accuracy[k]),
                "users_accuracy_se": float(self.users_se[k]),
                "producers_accuracy": float(self.producers_accuracy[k]),
                "producers_accuracy_se": float(self.producers_se[k]),
            }
        return out


def stratified_area_estimate(
    counts: NDArray,
    mapped_area: Sequence[float] | NDArray,
    *,
    classes: Sequence[str] | None = None,
    z: float = 1.96,
) -> AreaEstimate:
    """Return error-adjusted areas, accuracies, their standard errors and CIs (Olofsson et al. 2014).

    ``counts`` is the sample error matrix (rows map class = stratum, columns reference class) of a
    stratified random (or simple random / systematic, then post-stratified) sample; ``mapped_area`` the
    area each map class covers on the map (any unit, e.g. km2). A stratum with one sample unit gets NaN
    standard errors; a stratum with mapped area but no sample unit cannot be estimated (InputError).
    """
    n = np.asarray(counts, dtype=float)
    K = n.shape[0]
    if n.ndim != 2 or n.shape != (K, K) or K < 2 or np.any(n < 0) or not np.all(np.isfinite(n)):
        raise InputError(f"error matrix of shape {n.shape}: expected a square matrix of counts >= 0, K >= 2")
    A_i = np.asarray(mapped_area, dtype=float).ravel()
    if A_i.size != K or np.any(~np.isfinite(A_i)) or np.any(A_i < 0) or A_i.sum() <= 0:
        raise InputError(f"mapped areas {A_i.tolist()}: expected {K} areas >= 0 with a positive total")
    names = tuple(classes) if classes is not None else tuple(str(k) for k in range(K))
    if len(names) != K:
        raise InputError(f"class names {list(names)}: expected {K}")
    n_i = n.sum(axis=1)
    empty = (n_i == 0) & (A_i > 0)
    if empty.any():
        k = int(np.flatnonzero(empty)[0])
        raise InputError(
            f"map class {names[k]!r}: mapped area {A_i[k]:g} but no reference sample; expected >= 1"
        )
    A = A_i.sum()
    W = A_i / A
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(n_i[:, None] > 0, n / np.where(n_i > 0, n_i, 1.0)[:, None], 0.0)  # n_ij / n_i
        p = W[:, None] * f
        dof = np.where(n_i > 1, n_i - 1.0, np.nan)[:, None]
        var_cell = np.where(W[:, None] > 0, W[:, None] ** 2 * f * (1 - f) / dof, 0.0)
        p_col = p.sum(axis=0)
        p_row = p.sum(axis=1)
        se_p = np.sqrt(var_cell.sum(axis=0))
        U = np.where(p_row > 0, np.diag(p) / p_row, np.nan)
        var_U = U * (1 - U) / dof[:, 0]
        P = np.where(p_col > 0, np.diag(p) / p_col, np.nan)
        O = float(np.trace(p))
        var_O = float(np.nansum(np.where(W > 0, W**2 * U * (1 - U) / dof[:, 0], 0.0)))
        if np.any((W > 0) & (n_i == 1)):
            var_O = float("nan")
        # eq. 7 with N_i. the mapped areas and N_.j the estimated reference area of class j
        N_col = (A_i[:, None] * f).sum(axis=0)
        var_P = np.full(K, np.nan)
        for j in range(K):
            others = np.array([i for i in range(K) if i != j and A_i[i] > 0])
            term_j = A_i[j] ** 2 * (1 - P[j]) ** 2 * U[j] * (1 - U[j]) / dof[j, 0] if A_i[j] > 0 else 0.0
            term_o = (
                P[j] ** 2 * np.sum(A_i[others] ** 2 * f[others, j] * (1 - f[others, j]) / dof[others, 0])
                if others.size
                else 0.0
            )
            var_P[j] = (term_j + term_o) / N_col[j] ** 2 if N_col[j] > 0 else np.nan
    area = A * p_col
    area_se = A * se_p
    return AreaEstimate(
        classes=names,
        counts=np.asarray(counts, dtype=np.int64),
        mapped_area=A_i,
        proportions=p,
        area=area,
        area_se=area_se,
        area_ci=z * area_se,
        users_accuracy=U,
        users_se=np.sqrt(var_U),
        producers_accuracy=P,
        producers_se=np.sqrt(var_P),
        overall_accuracy=O,
        overall_se=float(np.sqrt(var_O)),
        z=float(z),
    )


def classification_metrics(y_true: NDArray, y_pred: NDArray, positive: int = 1) -> dict[str, Any]:
    """Return overall accuracy, precision, recall and F1 of the positive class, kappa, and the 2x2
    confusion matrix (rows reference 0/1, columns predicted 0/1) of binary labels."""
    t = np.asarray(y_true).astype(int).ravel()
    p = np.asarray(y_pred).astype(int).ravel()
    if t.shape != p.shape or t.size == 0:
        raise InputError(f"metrics: {t.size} reference and {p.size} predicted labels; expected equal, > 0")
    tp = int(np.sum((t == positive) & (p == positive)))
    fp = int(np.sum((t != positive) & (p == positive)))
    fn = int(np.sum((t == positive) & (p != positive)))
    tn = int(t.size - tp - fp - fn)
    oa = (tp + tn) / t.size
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    pe = ((tp + fp) * (tp + fn) + (tn + fn) * (tn + fp)) / t.size**2
    kappa = (oa - pe) / (1 - pe) if pe < 1 else float("nan")
    return {
        "n": int(t.size),
        "overall_accuracy": oa,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "kappa": kappa,
        "confusion_matrix_rows_reference_cols_predicted": [[tn, fp], [fn, tp]],
    }


def site_clusters(lat_deg: NDArray, lon_deg: NDArray, *, eps_deg: float = 0.03) -> NDArray[np.int64]:
    """Return a site number (0, 1, ...) per point: DBSCAN clusters of the (lat, lon) coordinates in plain
    degrees with radius eps_deg and one point per core, i.e. the connected components of the graph that
    links points at most eps_deg apart. Sites are numbered in order of their first point."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    lat = np.asarray(lat_deg, dtype=float).ravel()
    lon = np.asarray(lon_deg, dtype=float).ravel()
    if lat.shape != lon.shape or lat.size == 0:
        raise InputError(
            f"site clusters: {lat.size} latitudes and {lon.size} longitudes; expected equal, > 0"
        )
    if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(lon))):
        raise InputError("site clusters: coordinates with NaN; expected a position for every point")
    if not eps_deg > 0:
        raise InputError(f"eps_deg {eps_deg!r}: expected a positive radius in degrees")
    pairs = cKDTree(np.column_stack([lat, lon])).query_pairs(eps_deg, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(lat.size, lat.size))
    _, lab = connected_components(graph, directed=False)
    _, first = np.unique(lab, return_index=True)
    order = np.argsort(np.argsort(first))  # renumber by first appearance
    return order[lab].astype(np.int64)


def per_site_accuracy(y_true: NDArray, y_pred: NDArray, sites: NDArray) -> list[dict[str, Any]]:
    """Return, per site, its number of points, majority reference class and accuracy."""
    t, p, s = (np.asarray(a).ravel() for a in (y_true, y_pred, sites))
    rows = []
    for site in np.unique(s):
        m = s == site
        vals, cnt = np.unique(t[m], return_counts=True)
        rows.append(
            {
                "site": int(site),
                "n": int(m.sum()),
                "majority_class": int(vals[np.argmax(cnt)]),
                "accuracy": float(np.mean(t[m] == p[m])),
            }
        )
    return rows


def group_cross_val_predict(
    factory: Callable[[], Any],
    X: NDArray,
    y: NDArray,
    groups: NDArray,
    *,
    progress: Callable[[float, str], None] | None = None,
) -> NDArray[np.float64]:
    """Return out-of-group probabilities of class 1: each group is predicted by a fresh estimator from
    ``factory()`` fitted on all other groups. A group whose training rest holds one class only gets that
    class as a constant prediction."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y).astype(int)
    g = np.asarray(groups)
    out = np.full(len(y), np.nan)
    uniq = np.unique(g)
    for k, s in enumerate(uniq):
        test = g == s
        train = ~test
        if len(np.unique(y[train])) < 2:
            out[test] = float(y[train][0]) if train.any() else np.nan
        else:
            est = factory().fit(X[train], y[train])
            out[test] = est.predict_proba(X[test])[:, list(est.classes_).index(1)]
        if progress is not None:
            progress(k + 1, f"site {s}")
    return out


def random_cross_val_predict(
    factory: Callable[[], Any], X: NDArray, y: NDArray, *, n_folds: int = 5, seed: int = 0
) -> NDArray[np.float64]:
    """Return out-of-fold probabilities of class 1 from stratified random folds (spatially leaky when points
    cluster: shown beside leave-site-out results, never instead of them)."""
    from sklearn.model_selection import StratifiedKFold

    X = np.asarray(X, dtype=float)
    y = np.asarray(y).astype(int)
    out = np.full(len(y), np.nan)
    for train, test in StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(X, y):
        est = factory().fit(X[train], y[train])
        out[test] = est.predict_proba(X[test])[:, list(est.classes_).index(1)]
    return out


def cell_area_km2(lat_deg: NDArray, lon_deg: NDArray) -> NDArray[np.float64]:
    """Return (ny, nx) areas (km2) on the mean-Earth sphere of cells centred on regular lat/lon centres (deg).

    A cell spanning latitudes phi1..phi2 and longitude width dlon has area R^2 dlon (sin phi2 - sin phi1).
    """
    lat = np.asarray(lat_deg, dtype=float).ravel()
    lon = np.asarray(lon_deg, dtype=float).ravel()
    if lat.size < 2 or lon.size < 2:
        raise InputError("cell areas: need at least 2 latitudes and 2 longitudes to know the cell size")
    dlat = np.abs(np.diff(lat)).mean()
    dlon = np.abs(np.diff(lon)).mean()
    phi1 = np.radians(np.clip(lat - dlat / 2, -90, 90))
    phi2 = np.radians(np.clip(lat + dlat / 2, -90, 90))
    strip = EARTH_MEAN_RADIUS_KM**2 * np.radians(dlon) * np.abs(np.sin(phi2) - np.sin(phi1))
    return np.repeat(strip[:, None], lon.size, axis=1)
