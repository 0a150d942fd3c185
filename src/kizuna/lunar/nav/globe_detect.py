"""Crater detection in views of a global DEM, scored against a crater catalogue, and the candidate
classifier trained for such views.

The detector (:mod:`kizuna.lunar.nav.detect`) was laid out and its classifier trained on the procedural
terrain's fresh bowl craters. Craters of 80 km and more on the real Moon are mostly complex and worn:
flat floors, terraced walls near the rim, central peaks, other craters on top. For views rendered from a
global DEM (:mod:`kizuna.lunar.nav.globe`) three things change, none of them the detector itself:

1. the image is blurred by about 10 km on the ground, which spreads the wall shading inward where the
   detector's shading signature looks for it;
2. it is padded by mirroring, so that the signature template (1.6 radii from a centre) fits craters
   near the frame edge as well;
3. candidates are classified by a model of the same form as the shipped one, trained on rendered LOLA
   LDEM_4 views whose craters are known from the Head et al. (2010) and LROC catalogues
   (:func:`train_globe_candidate_model`; the views lie in the longitude sectors TRAIN_LON_SECTORS_DEG,
   disjoint from those of the tests and benchmarks).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import ndimage

from kizuna.core.constants import MOON_RADIUS_M
from kizuna.core.ephemeris import latlon_to_moon_me
from kizuna.errors import InputError
from kizuna.lunar.nav.detect import DetectorSpec, detect_craters
from kizuna.lunar.nav.detect_model import CandidateModel
from kizuna.lunar.nav.globe import GlobalDEM, GlobeView, project_craters, render_nadir

__all__ = [
    "GLOBE_MODEL_RESOURCE",
    "TRAIN_LON_SECTORS_DEG",
    "DETECT_BLUR_M",
    "VIEW_ALTITUDE_M",
    "VIEW_SIZE_PX",
    "VIEW_FOV_DEG",
    "MatchScore",
    "globe_detector_spec",
    "detection_image",
    "detect_view",
    "match_catalog",
    "sector_view_centres",
    "view_extent_m",
    "complement_sectors",
    "train_globe_candidate_model",
]

GLOBE_MODEL_RESOURCE = "crater_candidate_model_globe.json"
# Longitude sectors (deg east, [start, end)) whose views trained the shipped globe model; tests and
# benchmarks of that model use views lying wholly in the other two quarters of the globe.
TRAIN_LON_SECTORS_DEG = ((0.0, 90.0), (180.0, 270.0))
# Gaussian blur before detection (sigma on the ground at the view centre, m).
DETECT_BLUR_M = 10e3
# The views the globe model was trained on: nadir, 3000 km above the sphere, 200 x 200 px, 12 deg field
# of view (about 3.3 km per pixel, 660 km across): an 80 km crater is about 24 px across, and seen from
# this high the ground is viewed at most 24 deg from the vertical (17 deg at the middle of the edges).
VIEW_ALTITUDE_M = 3000e3
VIEW_SIZE_PX = 200
VIEW_FOV_DEG = 12.0


def globe_detector_spec(**overrides: object) -> DetectorSpec:
    """Return detector settings for views of a global DEM: the candidate classifier trained on rendered
    LOLA views, radii from 6 px, a low signature threshold (the classifier decides); keyword arguments
    override any DetectorSpec field."""
    path = str(resources.files("kizuna") / "data" / GLOBE_MODEL_RESOURCE)
    base: dict[str, object] = {"min_radius_px": 6.0, "threshold": 0.1, "model_path": path}
    return DetectorSpec(**{**base, **overrides})  # type: ignore[arg-type]


def detection_image(view: GlobeView, blur_m: float = DETECT_BLUR_M) -> tuple[NDArray[np.float64], int]:
    """Return the image the detector reads for a view (blurred by blur_m on the ground, m, and padded by
    mirroring) and the padding (px on each side)."""
    if not (math.isfinite(blur_m) and blur_m >= 0):
        raise InputError(f"blur_m={blur_m}: expected a finite ground distance >= 0 m")
    h, w = view.image.shape
    img = view.image.astype(np.float64)
    sigma = blur_m / float(view.ground_sample_m((w - 1) / 2.0, (h - 1) / 2.0))
    if sigma > 0.3:
        img = ndimage.gaussian_filter(img, sigma, mode="nearest")
    pad = int(math.ceil(0.15 * min(h, w)))
    return np.pad(img, pad, mode="symmetric"), pad


def _view_spec(view: GlobeView, spec: DetectorSpec | None) -> DetectorSpec:
    spec = spec or globe_detector_spec()
    if spec.max_radius_px is None:  # a quarter of the view, not of the padded image
        spec = replace(spec, max_radius_px=0.25 * min(view.image.shape))
    return spec


def detect_view(
    view: GlobeView, spec: DetectorSpec | None = None, blur_m: float = DETECT_BLUR_M
) -> pd.DataFrame:
    """Detect craters in a view with ``detect_craters`` given the view's Sun direction; return its table
    (x_px, y_px, a_px, b_px, theta_rad, score, ...; px in the view's image) for centres in the frame."""
    spec = _view_spec(view, spec)
    img, pad = detection_image(view, blur_m)
    det = detect_craters(img, view.sun_azimuth_image_deg, spec)
    det["x_px"] -= pad
    det["y_px"] -= pad
    h, w = view.image.shape
    inside = (det.x_px >= -0.5) & (det.x_px <= w - 0.5) & (det.y_px >= -0.5) & (det.y_px <= h - 0.5)
    return det[inside].reset_index(drop=True)


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


def train_globe_candidate_model(
    dem: GlobalDEM,
    catalog: pd.DataFrame,
    centres: Sequence[tuple[float, float]],
    sun_elevations_deg: Sequence[float] = (5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0),
    seed: int = 0,
    min_probability: float = 0.5,
    n_estimators: int = 200,
    max_depth: int = 3,
    learning_rate: float = 0.1,
) -> tuple[CandidateModel, dict]:
    """Train the candidate classifier on standard nadir views (VIEW_*) of the DEM at the given centres
    (lat, lon deg), one random Sun azimuth per centre and elevation (deg).

    A candidate is labelled a crater when it matches (rule of :func:`match_catalog`) any crater of the
    catalogue (a complete one, e.g. Head 2010 D >= 20 km with LROC 5-20 km). Needs scikit-learn. Returns
    the model and a dictionary of training counts.
    """
    from sklearn.ensemble import GradientBoostingClassifier

    from kizuna.lunar.nav.detect import _as_image, _candidates, _normalise
    from kizuna.lunar.nav.detect_model import candidate_features, from_sklearn

    rng = np.random.default_rng(seed)
    Xs, ys = [], []
    for lat, lon in centres:
        for el in sun_elevations_deg:
            view = render_nadir(
                dem, lat, lon, VIEW_ALTITUDE_M, VIEW_SIZE_PX, VIEW_FOV_DEG, el, float(rng.uniform(0, 360)),
                rng=rng,
            )  # fmt: skip
            spec = _view_spec(view, None)
            img, pad = detection_image(view)
            az = math.radians(view.sun_azimuth_image_deg)
            ref, (cx, cy, ux, uy, vx, vy, ox, oy) = _candidates(_normalise(_as_image(img)), az, spec)
            # as detect._detect does before classifying: the radius range asked for
            ref = ref[(ref[:, 2] >= spec.min_radius_px) & (ref[:, 2] <= spec.max_radius_px)]
            if len(ref) == 0:
                continue
            X = candidate_features(ref)
            xt, yt = ref[:, 0] - ox, ref[:, 1] - oy
            xy = np.column_stack([cx + xt * ux + yt * vx - pad, cy + xt * uy + yt * vy - pad])
            n = VIEW_SIZE_PX
            inside = np.all((xy >= -0.5) & (xy <= n - 0.5), axis=1)
            truth = project_craters(catalog, view, dem, keep="any")
            t_xy = truth[["x_px", "y_px"]].to_numpy()
            t_d = (truth["a_px"] + truth["b_px"]).to_numpy()
            y = _match_matrix(xy, 2.0 * ref[:, 2], t_xy, t_d).any(axis=1)
            Xs.append(X[inside])
            ys.append(y[inside].astype(int))
    X, y = np.vstack(Xs), np.concatenate(ys)
    if len(np.unique(y)) < 2:
        raise InputError("training views gave candidates of one class only: use more views")
    clf = GradientBoostingClassifier(
        n_estimators=n_estimators, max_depth=max_depth, learning_rate=learning_rate, subsample=0.8,
        random_state=seed,
    )  # fmt: skip
    clf.fit(X, y)
    info = {
        "views": len(centres) * len(sun_elevations_deg),
        "candidates": int(len(y)),
        "craters": int(y.sum()),
    }
    provenance = {
        "trained_on": "LOLA LDEM_4 rendered by kizuna.lunar.nav.globe, nadir views "
        f"{VIEW_SIZE_PX} px, {VIEW_FOV_DEG} deg, {VIEW_ALTITUDE_M / 1e3:g} km; labels Head 2010 + LROC",
        "lon_sectors_deg": [list(s) for s in TRAIN_LON_SECTORS_DEG],
        "centres": [list(c) for c in centres],
        "sun_elevations_deg": list(sun_elevations_deg),
        "blur_m": DETECT_BLUR_M,
        "n_estimators": n_estimators,
        "max_depth": max_depth,
        **info,
    }
    return from_sklearn(clf, X[:1], min_probability, provenance), info


TRAIN_LAT_ROWS_DEG = (-55.0, -40.0, -25.0, -10.0, 5.0, 20.0, 35.0, 50.0)
# The shipped model's probability threshold: the lowest that gave a precision of at least 0.85 for
# craters >= 80 km at every Sun elevation of 10, 20, 30 and 45 deg on views in the training sectors.
TRAIN_MIN_PROBABILITY = 0.6


def main() -> None:  # pragma: no cover - run by hand to retrain the shipped model
    """Train the shipped globe model.

    python -m kizuna.lunar.nav.globe_detect LDEM_4.IMG HeadCraters.csv LROCCraters.csv OUT.json
    """
    import sys

    from kizuna.lunar.nav.catalog import read_catalog
    from kizuna.lunar.nav.globe import load_global_dem

    dem_path, head, lroc, out = sys.argv[1:5]
    dem = load_global_dem(dem_path)
    catalog = pd.concat([read_catalog(head), read_catalog(lroc)], ignore_index=True)
    margin, side = view_extent_m()
    centres = sector_view_centres(TRAIN_LON_SECTORS_DEG, TRAIN_LAT_ROWS_DEG, margin, 0.75 * side)
    model, info = train_globe_candidate_model(dem, catalog, centres, min_probability=TRAIN_MIN_PROBABILITY)
    Path(out).write_text(json.dumps(model.to_json()) + "\n")
    print(json.dumps(info))


if __name__ == "__main__":  # pragma: no cover
    main()
