"""Crater detection in views of a global DEM, scored against a crater catalogue, and the ring classifier
trained for such views.

Craters of 80 km and more on the real Moon are mostly complex and worn: flat floors, terraced walls,
central peaks, other craters on top. Views of a global DEM (:mod:`kizuna.lunar.nav.globe`) are read with
the rim-height ring detector of :mod:`kizuna.lunar.nav.ring_detect`, which asks of a crater only that
its floor lies below its rim, given the Sun's direction in the image and its elevation above the local
horizon at every pixel (both known from the view's geometry, as a navigation camera knows them from its
attitude and the ephemeris). Its candidate classifier is trained on rendered LOLA LDEM_4 views whose
craters are known from the Head et al. (2010) and LROC catalogues (:func:`train_globe_ring_model`); the
training views lie in the longitude sectors TRAIN_LON_SECTORS_DEG, disjoint from those of the tests and
benchmarks.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from kizuna.core.constants import MOON_RADIUS_M
from kizuna.core.ephemeris import latlon_to_moon_me
from kizuna.errors import InputError
from kizuna.lunar.nav.detect import _suppression_mask
from kizuna.lunar.nav.globe import GlobalDEM, GlobeView, project_craters, render_nadir
from kizuna.lunar.nav.ring_detect import (
    NMS_DIST,
    NMS_RATIO,
    RingCandidates,
    RingDetectorSpec,
    RingModel,
    detect_rings,
    ring_candidates,
    ring_features,
    ring_model_from_sklearn,
)

__all__ = [
    "TRAIN_LON_SECTORS_DEG",
    "VIEW_ALTITUDE_M",
    "VIEW_SIZE_PX",
    "VIEW_FOV_DEG",
    "MatchScore",
    "sun_elevation_map_deg",
    "detect_view",
    "match_catalog",
    "sector_view_centres",
    "view_extent_m",
    "complement_sectors",
    "random_sector_geometry",
    "ring_training_set",
    "train_globe_ring_model",
]

# Longitude sectors (deg east, [start, end)) whose views trained the shipped globe model; tests and
# benchmarks of that model use views lying wholly in the other two quarters of the globe.
TRAIN_LON_SECTORS_DEG = ((0.0, 90.0), (180.0, 270.0))
# The standard views: nadir, 3000 km above the sphere, 200 x 200 px, 12 deg field of view (about 3.3 km
# per pixel, 660 km across): an 80 km crater is about 24 px across, and seen from this high the ground is
# viewed at most 24 deg from the vertical (17 deg at the middle of the edges).
VIEW_ALTITUDE_M = 3000e3
VIEW_SIZE_PX = 200
VIEW_FOV_DEG = 12.0


def sun_elevation_map_deg(view: GlobeView) -> NDArray[np.float64]:
    """Return the Sun's elevation (deg) above the local horizontal of the sphere at every pixel's ground
    point (H x W)."""
    g = view.ground_me_m
    up = g / np.linalg.norm(g, axis=2, keepdims=True)
    return np.degrees(np.arcsin(np.clip(up @ view.sun_dir_me, -1.0, 1.0)))


def detect_view(view: GlobeView, spec: RingDetectorSpec | None = None) -> pd.DataFrame:
    """Detect craters in a view with the ring detector, given the view's Sun direction; return its table
    (x_px, y_px, a_px, b_px, theta_rad, score, ring_score; px in the view's image)."""
    return detect_rings(view.image, view.sun_azimuth_image_deg, sun_elevation_map_deg(view), spec)


# ------------------------------------------------------------------------------------------------ scoring


@dataclass(frozen=True)
class MatchScore:
    """Detections scored against a catalogue in one view: the counts behind recall and precision, and
    the centre errors of the matched craters (px and m)."""

    n_true: int
    n_true_matched: int
    n_detections: int
    n_detections_matched: int
    centre_error_px: NDArray[np.float64]
    centre_error_m: NDArray[np.float64]
    true_craters: pd.DataFrame | None = None  # the catalogue rows behind n_true (lat_deg, lon_deg, ...)
    true_matched: NDArray[np.bool_] | None = None  # whether each of them is matched

    @property
    def recall(self) -> float:
        """Return the share of true craters matched (NaN with none)."""
        return self.n_true_matched / self.n_true if self.n_true else float("nan")

    @property
    def precision(self) -> float:
        """Return the share of detections that match a catalogue crater (NaN with none)."""
        return self.n_detections_matched / self.n_detections if self.n_detections else float("nan")


def _match_matrix(det: NDArray, det_d: NDArray, true: NDArray, true_d: NDArray) -> NDArray[np.bool_]:
    """Whether detection i matches true crater j: centre within D_true / 4, diameter ratio in [1/1.5, 1.5]."""
    if len(det) == 0 or len(true) == 0:
        return np.zeros((len(det), len(true)), dtype=bool)
    dist = np.hypot(det[:, None, 0] - true[None, :, 0], det[:, None, 1] - true[None, :, 1])
    ratio = det_d[:, None] / true_d[None, :]
    return (dist <= 0.25 * true_d[None, :]) & (ratio >= 1.0 / 1.5) & (ratio <= 1.5)


def match_catalog(
    detections: pd.DataFrame,
    catalog: pd.DataFrame,
    view: GlobeView,
    min_diameter_m: float = 80e3,
    size_tolerance: float = 0.7,
    dem: GlobalDEM | None = None,
) -> MatchScore:
    """Score detections (``detect_craters`` table, px) against a complete catalogue in one view.

    Match rule (in image pixels; the centre and size tests of DeepMoon, Silburt et al. 2019, with the
    tolerances of the lunar-nav benchmarks): a detection matches a catalogue crater when the centres are
    within a quarter of the crater's apparent diameter and the diameter ratio lies in [1/1.5, 1.5];
    apparent diameters are a + b of the projected rim ellipse and 2 a of the detection. Recall: catalogue
    craters of diameter >= min_diameter_m (m) wholly in the frame that some detection matches.
    Precision: detections whose size (px times the local ground sample) is at least size_tolerance x
    min_diameter_m that match any catalogue crater facing the camera, of any size (the catalogue is taken
    as complete, so a detected smaller crater is not a false one).
    """
    if not (min_diameter_m > 0 and 0 < size_tolerance <= 1):
        raise InputError(
            f"min_diameter_m={min_diameter_m}, size_tolerance={size_tolerance}: expected > 0 and in (0, 1]"
        )
    near = project_craters(catalog, view, dem, keep="any")
    whole = project_craters(near.loc[near["diameter_m"] >= min_diameter_m], view, dem, keep="whole")
    d_xy = detections[["x_px", "y_px"]].to_numpy(dtype=float)
    d_d = 2.0 * detections["a_px"].to_numpy(dtype=float)
    big = d_d * view.ground_sample_m(d_xy[:, 0], d_xy[:, 1]) >= size_tolerance * min_diameter_m
    a_xy = near[["x_px", "y_px"]].to_numpy()
    a_d = (near["a_px"] + near["b_px"]).to_numpy()
    det_ok = _match_matrix(d_xy[big], d_d[big], a_xy, a_d).any(axis=1)
    t_xy = whole[["x_px", "y_px"]].to_numpy()
    t_d = (whole["a_px"] + whole["b_px"]).to_numpy()
    m = _match_matrix(d_xy, d_d, t_xy, t_d)
    hit = m.any(axis=0)
    err_px = np.empty(0)
    err_m = np.empty(0)
    if hit.any():
        dist = np.hypot(d_xy[:, None, 0] - t_xy[None, :, 0], d_xy[:, None, 1] - t_xy[None, :, 1])
        best = np.where(m, dist, np.inf).argmin(axis=0)[hit]
        err_px = dist[best, np.flatnonzero(hit)]
        # on the ground: the ground point under the detection's centre pixel against the catalogue centre
        g = view.ground_me_m
        xi = np.clip(np.rint(d_xy[best, 0]).astype(int), 0, g.shape[1] - 1)
        yi = np.clip(np.rint(d_xy[best, 1]).astype(int), 0, g.shape[0] - 1)
        c_me = latlon_to_moon_me(
            np.radians(whole["lat_deg"].to_numpy(dtype=float)[hit]),
            np.radians(whole["lon_deg"].to_numpy(dtype=float)[hit]),
        )
        gp = g[yi, xi]
        err_m = np.linalg.norm(gp / np.linalg.norm(gp, axis=1, keepdims=True) * MOON_RADIUS_M - c_me, axis=1)
    return MatchScore(
        n_true=len(whole),
        n_true_matched=int(hit.sum()),
        n_detections=int(big.sum()),
        n_detections_matched=int(det_ok.sum()),
        centre_error_px=err_px,
        centre_error_m=err_m,
        true_craters=whole,
        true_matched=hit,
    )


# ------------------------------------------------------------------------------------- views and training


def sector_view_centres(
    lon_sectors_deg: Sequence[tuple[float, float]],
    lat_rows_deg: Sequence[float],
    margin_m: float,
    spacing_m: float,
) -> list[tuple[float, float]]:
    """Return view centres (lat, lon deg) along the given latitude rows, spaced by about spacing_m (m)
    on the ground and at least margin_m (m) inside one of the longitude sectors (deg east, [start, end))."""
    if not (margin_m >= 0 and spacing_m > 0):
        raise InputError(f"margin_m={margin_m}, spacing_m={spacing_m}: expected >= 0 and > 0 m")
    out = []
    for lat in lat_rows_deg:
        m_per_deg = math.radians(1.0) * MOON_RADIUS_M * math.cos(math.radians(lat))
        hw, step = margin_m / m_per_deg, spacing_m / m_per_deg
        for s0, s1 in lon_sectors_deg:
            span = (s1 - s0) - 2.0 * hw
            if span < 0:
                continue
            n = int(span // step) + 1
            lons = [s0 + hw + 0.5 * span] if n == 1 else np.linspace(s0 + hw, s1 - hw, n).tolist()
            out.extend((float(lat), float((lon + 180.0) % 360.0 - 180.0)) for lon in lons)
    return out


def view_extent_m() -> tuple[float, float]:
    """Return (half-diagonal with a 5 % margin, side) of the ground of a standard view (m): the margin
    that keeps a view inside a sector and the spacing of views that do not overlap."""
    half = VIEW_ALTITUDE_M * math.tan(math.radians(VIEW_FOV_DEG) / 2.0)
    half *= 1.05  # the sphere falls away: the ground reaches a little past the tangent plane's footprint
    return 1.05 * math.sqrt(2.0) * half, 2.0 * half


def complement_sectors(sectors: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Return the longitude sectors (deg east, [start, end)) of the globe not covered by ``sectors``."""
    edges = sorted((s0 % 360.0, (s0 % 360.0) + (s1 - s0)) for s0, s1 in sectors)
    out, at = [], 0.0
    for s0, s1 in edges:
        if s0 > at:
            out.append((at, s0))
        at = max(at, s1)
    if at < 360.0:
        out.append((at, 360.0))
    return out


def random_sector_geometry(
    lon_sectors_deg: Sequence[tuple[float, float]],
    n_views: int,
    seed: int = 0,
    max_abs_lat_deg: float = 60.0,
    sun_elevation_range_deg: tuple[float, float] = (5.0, 60.0),
) -> NDArray[np.float64]:
    """Return (n_views, 4) random standard-view geometries (centre lat, lon deg east; Sun elevation and
    azimuth, deg): centres such that the view lies wholly in one of the longitude sectors (deg east,
    [start, end)) within max_abs_lat_deg of the equator, Sun elevation uniform in the range."""
    if n_views < 1 or not (0 < max_abs_lat_deg <= 80):
        raise InputError(
            f"n_views={n_views}, max_abs_lat_deg={max_abs_lat_deg}: expected >= 1 and in (0, 80]"
        )
    rng = np.random.default_rng(seed)
    margin, _ = view_extent_m()
    out: list[tuple[float, float, float, float]] = []
    for _ in range(100 * n_views):
        if len(out) == n_views:
            break
        lat = float(rng.uniform(-max_abs_lat_deg, max_abs_lat_deg))
        half = math.degrees(margin / (MOON_RADIUS_M * math.cos(math.radians(lat))))
        s0, s1 = lon_sectors_deg[int(rng.integers(len(lon_sectors_deg)))]
        if s1 - s0 < 2.0 * half:
            continue
        lon = float(rng.uniform(s0 + half, s1 - half))
        out.append((lat, lon, float(rng.uniform(*sun_elevation_range_deg)), float(rng.uniform(0.0, 360.0))))
    if len(out) < n_views:
        raise InputError("longitude sectors too narrow for a standard view: widen them or lower the latitude")
    return np.asarray(out, dtype=np.float64)


def ring_training_set(
    views: Sequence[GlobeView],
    catalog: pd.DataFrame,
    dem: GlobalDEM | None = None,
    spec: RingDetectorSpec | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.int64]]:
    """Return the ring features of every candidate in the views, its label (it matches a catalogue crater
    by the rule of :func:`match_catalog`; the catalogue should be complete, e.g. Head 2010 D >= 20 km with
    LROC 5-20 km) and the index of its view."""
    Xs, ys, vs = [], [], []
    for k, view in enumerate(views):
        c = ring_candidates(view.image, view.sun_azimuth_image_deg, sun_elevation_map_deg(view), spec)
        truth = project_craters(catalog, view, dem, keep="any")
        t_xy = truth[["x_px", "y_px"]].to_numpy()
        t_d = (truth["a_px"] + truth["b_px"]).to_numpy()
        Xs.append(ring_features(c))
        ys.append(_match_matrix(np.column_stack([c.x_px, c.y_px]), 2.0 * c.r_px, t_xy, t_d).any(axis=1))
        vs.append(np.full(len(c), k))
    return np.vstack(Xs), np.concatenate(ys), np.concatenate(vs)


def train_globe_ring_model(
    X: NDArray,
    y: NDArray,
    min_probability: float = 0.5,
    provenance: dict | None = None,
    max_iter: int = 200,
    max_leaf_nodes: int = 15,
    learning_rate: float = 0.1,
    seed: int = 0,
) -> RingModel:
    """Fit the ring classifier (a scikit-learn HistGradientBoostingClassifier, stored as a RingModel) on
    a training set of :func:`ring_training_set`. Needs scikit-learn."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    y = np.asarray(y, dtype=bool)
    if len(np.unique(y)) < 2:
        raise InputError("training views gave candidates of one class only: use more views")
    clf = HistGradientBoostingClassifier(
        max_iter=max_iter, max_leaf_nodes=max_leaf_nodes, learning_rate=learning_rate, early_stopping=False,
        random_state=seed,
    )  # fmt: skip
    clf.fit(X, y)
    info = {"candidates": int(len(y)), "craters": int(y.sum()), "max_iter": max_iter,
            "max_leaf_nodes": max_leaf_nodes, "learning_rate": learning_rate}  # fmt: skip
    check = np.asarray(X)[np.linspace(0, len(y) - 1, 500).astype(int)]
    return ring_model_from_sklearn(clf, check, min_probability, {**(provenance or {}), **info})


def _precision_threshold(
    probs: Sequence[NDArray],
    cands: Sequence,
    views: Sequence[GlobeView],
    els: Sequence[float],
    catalog: pd.DataFrame,
    dem: GlobalDEM,
    target: float,
) -> tuple[float, dict]:
    """Lowest probability threshold (0.05 steps) whose detections reach the target precision for craters
    >= 80 km at every Sun elevation, and the recall and precision there per elevation."""
    for p_min in np.arange(0.3, 0.951, 0.05):
        per_el: dict[float, list[int]] = {}
        for p, c, view, el in zip(probs, cands, views, els, strict=True):
            det = _kept(p, c, p_min)
            s = match_catalog(det, catalog, view, dem=dem)
            acc = per_el.setdefault(float(el), [0, 0, 0, 0])
            acc[0] += s.n_true
            acc[1] += s.n_true_matched
            acc[2] += s.n_detections
            acc[3] += s.n_detections_matched
        figs = {el: (a[1] / max(a[0], 1), a[3] / max(a[2], 1)) for el, a in per_el.items()}
        if all(prec >= target for _, prec in figs.values()):
            return round(float(p_min), 2), figs
    return 0.95, figs


def _kept(p: NDArray, c: RingCandidates, p_min: float) -> pd.DataFrame:
    """Detections of a candidate set at a probability threshold, as detect_rings keeps them."""
    keep = np.flatnonzero(p >= p_min)
    rows = np.column_stack([c.x_px[keep], c.y_px[keep], c.r_px[keep]])
    keep = keep[_suppression_mask(rows, p[keep], NMS_RATIO, NMS_DIST)] if keep.size else keep
    return pd.DataFrame({"x_px": c.x_px[keep], "y_px": c.y_px[keep], "a_px": c.r_px[keep]})


@functools.lru_cache(maxsize=1)
def _training_data(dem_path: str, head_path: str, lroc_path: str) -> tuple[GlobalDEM, pd.DataFrame]:
    """The DEM and the complete catalogue (Head 2010 with LROC), read once per process."""
    from kizuna.lunar.nav.catalog import read_catalog
    from kizuna.lunar.nav.globe import load_global_dem

    catalog = pd.concat([read_catalog(head_path), read_catalog(lroc_path)], ignore_index=True)
    return load_global_dem(dem_path), catalog


def _training_view(task: tuple) -> tuple:
    """Render one standard view (task: DEM, Head and LROC paths, lat, lon, Sun elevation and azimuth deg,
    noise seed, whether to return the view) and return its training set, candidates and view."""
    dem_path, head_path, lroc_path, lat, lon, el, az, seed, keep_view = task
    dem, catalog = _training_data(dem_path, head_path, lroc_path)
    view = render_nadir(
        dem, lat, lon, VIEW_ALTITUDE_M, VIEW_SIZE_PX, VIEW_FOV_DEG, el, az, rng=np.random.default_rng(seed)
    )
    cands = ring_candidates(view.image, view.sun_azimuth_image_deg, sun_elevation_map_deg(view))
    X, y, _ = ring_training_set([view], catalog, dem)
    return X, y, (cands if keep_view else None), (view if keep_view else None)


TRAIN_VIEWS = 400
PROTOCOL_LAT_ROWS_DEG = (-55.0, -33.0, -11.0, 11.0, 33.0, 55.0)
PROTOCOL_SUN_ELEVATIONS_DEG = (10.0, 20.0, 30.0, 45.0)


def main() -> None:  # pragma: no cover - run by hand to retrain the shipped model
    """Train the shipped globe ring model.

    python -m kizuna.lunar.nav.globe_detect LDEM_4.IMG HeadCraters.csv LROCCraters.csv OUT.json

    Views: TRAIN_VIEWS random standard views in the training sectors (Sun 5-60 deg), rendered on local
    processes. The probability threshold is chosen by cross-validation between the two training
    sectors: a model fitted on the random views of one sector scores the benchmark-like views (latitude
    rows PROTOCOL_LAT_ROWS_DEG, Sun elevations PROTOCOL_SUN_ELEVATIONS_DEG) of the other, and the
    threshold is the lowest that reaches a precision of 0.85 for craters >= 80 km at every elevation.
    The shipped model is then fitted on all.
    """
    import sys

    from kizuna.core.parallel import run_tasks
    from kizuna.lunar.nav.catalog import read_catalog
    from kizuna.lunar.nav.globe import load_global_dem

    dem_path, head_path, lroc_path, out = sys.argv[1:5]
    dem = load_global_dem(dem_path)
    head = read_catalog(head_path)
    paths = (dem_path, head_path, lroc_path)
    geo = random_sector_geometry(TRAIN_LON_SECTORS_DEG, TRAIN_VIEWS, seed=1)
    tasks = [(*paths, *map(float, g), 1000 + i, False) for i, g in enumerate(geo)]
    # benchmark-like views in the training sectors, Sun azimuth as in the benchmark
    margin, side = view_extent_m()
    centres = sector_view_centres(TRAIN_LON_SECTORS_DEG, PROTOCOL_LAT_ROWS_DEG, margin, side)
    pel = [el for el in PROTOCOL_SUN_ELEVATIONS_DEG for _ in centres]
    psec = [0 if (lon % 360.0) < 180.0 else 1 for _ in PROTOCOL_SUN_ELEVATIONS_DEG for _, lon in centres]
    tasks += [
        (*paths, lat, lon, el, (41.0 * k + 13.0 * el) % 360.0, k, True)
        for el in PROTOCOL_SUN_ELEVATIONS_DEG
        for k, (lat, lon) in enumerate(centres)
    ]
    res = run_tasks(_training_view, tasks, mode="processes")
    train, prot = res[:TRAIN_VIEWS], res[TRAIN_VIEWS:]
    X = np.vstack([r[0] for r in train])
    y = np.concatenate([r[1] for r in train])
    sector = np.concatenate(
        [np.full(len(r[1]), 0 if (g[1] % 360.0) < 180.0 else 1) for r, g in zip(train, geo, strict=True)]
    )
    pc = [r[2] for r in prot]
    pv = [r[3] for r in prot]
    probs: list = [None] * len(pv)
    for fold in (0, 1):
        m = train_globe_ring_model(X[sector == fold], y[sector == fold])
        for i in range(len(pv)):
            if psec[i] != fold:
                probs[i] = m.probability(ring_features(pc[i]))
    p_min, figs = _precision_threshold(probs, pc, pv, pel, head, dem, 0.85)
    provenance = {
        "trained_on": "LOLA LDEM_4 rendered by kizuna.lunar.nav.globe, nadir views "
        f"{VIEW_SIZE_PX} px, {VIEW_FOV_DEG} deg, {VIEW_ALTITUDE_M / 1e3:g} km; labels Head 2010 + LROC",
        "lon_sectors_deg": [list(s) for s in TRAIN_LON_SECTORS_DEG],
        "views": TRAIN_VIEWS,
        "geometry_seed": 1,
        "min_probability_from": "cross-validation between the training sectors, precision >= 0.85",
        "cross_validation_recall_precision": {
            f"{el:g}": [round(r, 4), round(p, 4)] for el, (r, p) in figs.items()
        },
    }
    model = train_globe_ring_model(X, y, p_min, provenance)
    Path(out).write_text(json.dumps(model.to_json()) + "\n")
    print(json.dumps({"min_probability": p_min, "candidates": int(len(y)), "craters": int(y.sum()),
                      "cv": provenance["cross_validation_recall_precision"]}))  # fmt: skip


if __name__ == "__main__":  # pragma: no cover
    main()
