"""Crater detection in shaded relief by the rim-height ring transform, for large, complex and worn craters.

Why a second detector. The shading signature of :mod:`kizuna.lunar.nav.detect` describes a fresh bowl:
dark near wall, bright far wall, and flanks that do the opposite. Craters of tens of kilometres and more
are flat-floored, terraced, worn and overlapped, and most of them fail that test. What every crater still
has is a floor lower than its rim. This detector measures that, and only that, from the shading:

1. **Slope from shading** (linear photoclinometry). With the Sun at elevation e above the local horizon
   and a Lambert-like law, a level surface has brightness k sin e, and a slope s rising along the anti-Sun
   direction u (away from the light) brightens it by about k cos e s: s = (I - k sin e) / (k cos e), with
   the gain k the median of I / sin e over the image. Only the slope along u is seen; a slope across the
   light leaves the brightness unchanged.
2. **Rim-height transform.** Around a centre c, an axisymmetric relief h(rho) has slope along u
   s = h'(rho) cos(phi), phi measured from u. The mean height on a rim band (0.9 to 1.3 R, area-weighted)
   less the mean height of the floor (the disc of 0.6 R) is the integral of h'(rho) g(rho), g the
   difference of the two bands' cumulative area weights; it equals the correlation of s with the kernel
   (x . u) g(|x|) / (pi |x|^2). It is linear in the image, so it is evaluated for every centre at once with
   FFTs, at 8 radii per octave, and reported over R (dimensionless): it is blind to a level or uniformly
   tilted surface and to central peaks and terraces, which sit inside the floor or the rim band.
3. **Candidates**: at each radius, the local maxima of the transform over a window of half the radius.
4. **Ring profile** of each candidate: the slope sampled on 20 rings (0.1 to 2 R) of 32 points, its mean
   and first angular harmonics along and across u, the residual, and the radial height profile
   h(q) = integral of the along-u harmonic; the same height profile in six sectors facing toward and
   away from the light, and the rim's height above the floor in each (a crater's rim stands all round);
   and the transform value over its spread across the image and within two radii (how much the
   candidate stands out from the terrain around it).
5. **Classifier**: a gradient-boosted tree ensemble (:class:`RingModel`) gives each candidate the
   probability of being a crater; the likely ones are kept and duplicates (a kept candidate of similar
   size nearby) suppressed.

Output conventions are those of :func:`kizuna.lunar.nav.detect.detect_craters`: centre (x right, y down,
pixel centres at integer coordinates), semi-axes a >= b (px), angle of the a axis (rad), and ``score``,
the crater probability.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage, signal

from kizuna.errors import InputError
from kizuna.lunar.nav.detect import DETECTION_COLUMNS, _suppression_mask
from kizuna.lunar.nav.detect_model import _tree_arrays, _trees_raw, check_tree_arrays

__all__ = [
    "RING_FEATURES",
    "RingDetectorSpec",
    "RingModel",
    "slope_from_shading",
    "rim_height_transform",
    "ring_candidates",
    "ring_features",
    "detect_rings",
    "ring_model_from_sklearn",
]

# Radial bands of the transform, in units of the radius: the floor disc and the rim band.
FLOOR_Q = 0.6
RIM_Q = (0.9, 1.3)
# Rings of the profile (units of the radius) and points per ring.
PROFILE_Q = np.round(np.arange(1, 21) * 0.1, 10)
N_RING_POINTS = 32
# Scale offsets (in steps of the radius grid) at which the transform is read for context.
CONTEXT_STEPS = (-8, -4, -2, -1, 1, 2, 4, 8)
# Angular sectors of the ring profile (deg from the anti-Sun direction u) in which a radial height profile
# is integrated: those facing toward and away from the light; across it the slope is not seen.
SECTOR_DEG = (0.0, 45.0, 135.0, 180.0, 225.0, 315.0)
# Suppression of duplicates among kept candidates: radius ratio and distance over the larger radius.
NMS_RATIO = 2.0
NMS_DIST = 0.6


def _feature_names() -> tuple[str, ...]:
    q = [f"{v:.1f}" for v in PROFILE_Q]
    names = ["log_score", "log_radius_px", "sun_elevation_deg"]
    names += [f"score_ratio_step_{k:+d}" for k in CONTEXT_STEPS]
    names += [f"height_q{v}" for v in q]  # h(q) / R
    names += [f"cross_over_along_q{v}" for v in q]  # across-u harmonic over the mean |along-u| one
    names += [f"residual_rel_q{v}" for v in q]  # residual RMS over the ring's RMS slope
    names += [f"mean_slope_q{v}" for v in q]
    names += [f"along_rel_q{v}" for v in q]  # along-u harmonic over the ring's RMS slope
    names += ["height_max", "height_max_q"]
    names += ["log_significance", "log_significance_local"]  # score over the image's / area's spread
    names += [f"sector_rim_sorted_{k}" for k in range(len(SECTOR_DEG))]  # rim - floor / R, ascending
    names += ["sector_rim_positive"]
    return tuple(names)


RING_FEATURES = _feature_names()
MODEL_FORMAT = "kizuna crater ring model 1"
MODEL_RESOURCE = "crater_ring_model_globe.json"


@dataclass(frozen=True)
class RingDetectorSpec:
    """Ring-detector settings: radius range (px; the largest defaults to 0.26 of the image's smaller side),
    radii per octave, the transform threshold of a candidate (rim height over radius), the classifier
    (``model_path``: None for the shipped one trained on rendered LOLA views) and its probability
    threshold (None: the model's own)."""

    min_radius_px: float = 6.0
    max_radius_px: float | None = None
    scales_per_octave: int = 8
    threshold: float = 0.003
    min_probability: float | None = None
    model_path: str | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.min_radius_px) and self.min_radius_px >= 2.0):
            raise InputError(f"min_radius_px={self.min_radius_px}: expected >= 2 px")
        if self.max_radius_px is not None and not (self.max_radius_px >= self.min_radius_px):
            raise InputError(
                f"max_radius_px={self.max_radius_px}: expected at least min_radius_px={self.min_radius_px}"
            )
        if self.scales_per_octave < 1:
            raise InputError(f"scales_per_octave={self.scales_per_octave}: expected at least 1")
        if not (self.threshold >= 0.0):
            raise InputError(f"threshold={self.threshold}: expected a rim height over radius >= 0")
        if self.min_probability is not None and not (0.0 <= self.min_probability <= 1.0):
            raise InputError(f"min_probability={self.min_probability}: expected a probability in [0, 1]")

    def radii_px(self, shape: tuple[int, int]) -> NDArray[np.float64]:
        """Return the radii (px) searched in an image of the given shape (rows, columns)."""
        top = self.max_radius_px if self.max_radius_px is not None else 0.26 * min(shape)
        octaves = math.log2(max(top, self.min_radius_px) / self.min_radius_px)
        n = int(math.floor(self.scales_per_octave * octaves))
        return self.min_radius_px * 2.0 ** (np.arange(n + 1) / self.scales_per_octave)

    def model(self) -> RingModel:
        """Return the classifier these settings use (the shipped one unless model_path)."""
        if self.model_path is None:
            return RingModel.load(str(resources.files("kizuna") / "data" / MODEL_RESOURCE))
        return RingModel.load(self.model_path)


# ------------------------------------------------------------------------------------- slope and transform


def slope_from_shading(image: ArrayLike, sun_elevation_rad: ArrayLike) -> NDArray[np.float64]:
    """Return the surface slope (m/m) rising along the anti-Sun direction at every pixel of a shaded image
    (any brightness scale), given the Sun's elevation above the local horizon (rad, scalar or per pixel).

    Linear photoclinometry with a Lambert-like law: s = (I - k sin e) / (k cos e), k the median of
    I / sin e. Pixels with the Sun at or below the horizon carry no slope (about 0).
    """
    img = np.asarray(image, dtype=float)
    if img.ndim != 2 or min(img.shape) < 8:
        raise InputError(f"image of shape {img.shape}: expected a 2-D grayscale array of at least 8 x 8 px")
    if not np.all(np.isfinite(img)):
        raise InputError("image contains NaN or infinite values: expected finite brightness")
    e = np.broadcast_to(np.asarray(sun_elevation_rad, dtype=float), img.shape)
    if not np.all(np.isfinite(e)) or np.any(np.abs(e) > math.pi / 2):
        raise InputError("sun_elevation_rad: expected finite elevations in [-pi/2, pi/2] rad")
    se = np.sin(np.maximum(e, 1e-3))
    k = float(np.median(img / se))
    if not k > 0:
        raise InputError("image is black where the Sun is up: expected a lit image")
    return (img - k * se) / (k * np.cos(e))


def _unit_away_from_sun(sun_azimuth_deg: float) -> NDArray[np.float64]:
    """Image unit vector along which light travels (from the Sun's image azimuth, deg from +x to +y)."""
    if not math.isfinite(sun_azimuth_deg):
        raise InputError(f"sun_azimuth_deg={sun_azimuth_deg}: expected a finite image direction (deg)")
    az = math.radians(sun_azimuth_deg)
    return np.array([-math.cos(az), -math.sin(az)])


def _rim_kernel(radius: float, u: NDArray) -> NDArray[np.float64]:
    """Correlation kernel whose response to a slope field is (rim-band height - floor height) / R."""
    n = int(math.ceil(RIM_Q[1] * radius)) + 1
    y, x = np.mgrid[-n : n + 1, -n : n + 1].astype(float)
    rho = np.hypot(x, y) / radius
    proj = (x * u[0] + y * u[1]) / radius
    b0, b1 = RIM_Q
    g = np.clip(rho**2 / FLOOR_Q**2, 0.0, 1.0) - np.clip((rho**2 - b0**2) / (b1**2 - b0**2), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        kern = np.where(rho > 0, proj * g / (math.pi * rho**2), 0.0)
    return kern / radius**2  # a pixel is 1 / R^2 of the unit of area


def rim_height_transform(
    slope: ArrayLike, sun_azimuth_deg: float, radii_px: ArrayLike
) -> NDArray[np.float64]:
    """Return, for every radius (px) and pixel, the mean height of the rim band (0.9-1.3 R) above the mean
    height of the floor (disc of 0.6 R) around that pixel, over R, from a slope field along the anti-Sun
    direction (:func:`slope_from_shading`); ``sun_azimuth_deg`` is the image direction from which light
    comes (deg from +x toward +y). Shape (n_radii, H, W); slope outside the image is taken as 0."""
    s = np.asarray(slope, dtype=float)
    radii = np.atleast_1d(np.asarray(radii_px, dtype=float))
    if s.ndim != 2:
        raise InputError(f"slope of shape {s.shape}: expected a 2-D array")
    if radii.size == 0 or not np.all(radii > 0):
        raise InputError("radii_px: expected one or more positive radii (px)")
    u = _unit_away_from_sun(sun_azimuth_deg)
    h, w = s.shape
    pad = int(math.ceil(RIM_Q[1] * radii.max())) + 2
    sp = np.pad(s, pad)
    out = np.empty((radii.size, h, w))
    for i, r in enumerate(radii):
        k = _rim_kernel(float(r), u)
        out[i] = signal.fftconvolve(sp, k[::-1, ::-1], mode="same")[pad : pad + h, pad : pad + w]
    return out


# ---------------------------------------------------------------------------------- candidates and features


@dataclass(frozen=True, eq=False)
class RingCandidates:
    """Candidate craters of one image: centres and radii (px), transform value, its values at other
    scales (CONTEXT_STEPS), the Sun's elevation (rad), the transform's spread (RMS) at the candidate's
    scale over the image and within 2 radii, and the ring-profile arrays that :func:`ring_features` turns
    into features."""

    x_px: NDArray[np.float64]
    y_px: NDArray[np.float64]
    r_px: NDArray[np.float64]
    score: NDArray[np.float64]
    context: NDArray[np.float64]
    sun_elevation_rad: NDArray[np.float64]
    spread: NDArray[np.float64]
    spread_local: NDArray[np.float64]
    profile: dict[str, NDArray[np.float64]] = field(repr=False)

    def __len__(self) -> int:
        return int(self.x_px.size)


def ring_candidates(
    image: ArrayLike,
    sun_azimuth_deg: float,
    sun_elevation_deg: ArrayLike,
    spec: RingDetectorSpec | None = None,
) -> RingCandidates:
    """Return the candidate craters of a shaded image before classification: local maxima of the
    rim-height transform at each radius (window of half the radius) above ``spec.threshold``, with their
    ring profiles. Sun azimuth: image direction the light comes from (deg from +x toward +y); elevation
    above the local horizon (deg, scalar or per pixel)."""
    spec = spec or RingDetectorSpec()
    img = np.asarray(image, dtype=float)
    e = np.radians(np.broadcast_to(np.asarray(sun_elevation_deg, dtype=float), img.shape))
    s = slope_from_shading(img, e)
    radii = spec.radii_px(img.shape)
    T = rim_height_transform(s, sun_azimuth_deg, radii)
    ks, ys, xs, loc = [], [], [], []
    spread = np.sqrt(np.mean(T**2, axis=(1, 2))) + 1e-12
    for i, r in enumerate(radii):
        win = max(3, int(2 * round(0.25 * r) + 1))
        peak = ndimage.maximum_filter(T[i], size=win, mode="constant", cval=-np.inf)
        y, x = np.nonzero((T[i] >= peak) & (T[i] > spec.threshold))
        ks.append(np.full(y.size, i))
        ys.append(y)
        xs.append(x)
        area = max(3, int(2 * round(2.0 * r) + 1))
        local = ndimage.uniform_filter(T[i] ** 2, size=area, mode="reflect")
        loc.append(np.sqrt(np.maximum(local[y, x], 0.0)) + 1e-12)
    k, y, x = np.concatenate(ks), np.concatenate(ys), np.concatenate(xs)
    kk = np.clip(k[:, None] + np.array(CONTEXT_STEPS)[None, :], 0, radii.size - 1)
    xf, yf, r = x.astype(float), y.astype(float), radii[k]
    u = _unit_away_from_sun(sun_azimuth_deg)
    if k.size:
        profile = _ring_profile(s, xf, yf, r, u)
    else:
        profile = {name: np.empty((0, PROFILE_Q.size)) for name in _PROFILE_KEYS}
        profile["sector_rim"] = np.empty((0, len(SECTOR_DEG)))
    return RingCandidates(
        x_px=xf,
        y_px=yf,
        r_px=r,
        score=T[k, y, x],
        context=T[kk, y[:, None], x[:, None]],
        sun_elevation_rad=e[y, x],
        spread=spread[k],
        spread_local=np.concatenate(loc),
        profile=profile,
    )


_PROFILE_KEYS = ("mean", "along", "across", "residual", "rms", "height")


def _ring_profile(s: NDArray, x: NDArray, y: NDArray, r: NDArray, u: NDArray) -> dict[str, NDArray]:
    """Slope on rings around each candidate, reduced to its mean, first harmonics along and across u,
    residual and RMS per ring, and the radial height profile h(q) / R."""
    th = np.arange(N_RING_POINTS) * (2.0 * math.pi / N_RING_POINTS)
    c, sn = np.cos(th), np.sin(th)
    dx = c * u[0] - sn * u[1]  # ring point directions, angle th from u
    dy = c * u[1] + sn * u[0]
    rq = r[:, None, None] * PROFILE_Q[None, :, None]
    px = x[:, None, None] + rq * dx[None, None, :]
    py = y[:, None, None] + rq * dy[None, None, :]
    v = ndimage.map_coordinates(s, [py.ravel(), px.ravel()], order=1, mode="constant", cval=0.0)
    v = v.reshape(px.shape)
    a0 = v.mean(axis=2)
    a1 = (v * c).sum(axis=2) / (c**2).sum()
    b1 = (v * sn).sum(axis=2) / (sn**2).sum()
    res = v - a0[..., None] - a1[..., None] * c - b1[..., None] * sn
    # per sector: h'(rho) by least squares from s = h'(rho) cos(theta) over the sector's points, then
    # its height profile, and the rim (highest at 0.8-1.3 R) above the floor (mean at 0.1-0.6 R), over R
    dq = PROFILE_Q[1] - PROFILE_Q[0]
    rim_q = (PROFILE_Q >= 0.8 - 1e-9) & (PROFILE_Q <= 1.3 + 1e-9)
    floor_q = PROFILE_Q <= 0.6 + 1e-9
    sector_rim = np.empty((v.shape[0], len(SECTOR_DEG)))
    for j, centre in enumerate(SECTOR_DEG):
        off = np.abs((np.degrees(th) - centre + 180.0) % 360.0 - 180.0)
        w = np.where(off <= 22.5 + 1e-9, c, 0.0)
        hs = np.cumsum((v * w).sum(axis=2) / (w**2).sum(), axis=1) * dq
        sector_rim[:, j] = hs[:, rim_q].max(axis=1) - hs[:, floor_q].mean(axis=1)
    return {
        "sector_rim": sector_rim,
        "mean": a0,
        "along": a1,
        "across": b1,
        "residual": np.sqrt((res**2).mean(axis=2)),
        "rms": np.sqrt((v**2).mean(axis=2)) + 1e-12,
        "height": np.cumsum(a1, axis=1) * (PROFILE_Q[1] - PROFILE_Q[0]),
    }


def ring_features(cands: RingCandidates) -> NDArray[np.float64]:
    """Return the (n, len(RING_FEATURES)) feature matrix of candidates (see RING_FEATURES)."""
    p = cands.profile
    n = len(cands)
    h, rms = p["height"], p["rms"]
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = [
            np.log(np.maximum(cands.score, 1e-12))[:, None],
            np.log(cands.r_px)[:, None],
            np.degrees(cands.sun_elevation_rad)[:, None],
            cands.context / cands.score[:, None],
            h,
            p["across"] / (np.abs(p["along"]).mean(axis=1, keepdims=True) + 1e-9),
            p["residual"] / (rms + 1e-9),
            p["mean"],
            p["along"] / (rms + 1e-9),
            h.max(axis=1, initial=-np.inf)[:, None] if n else np.empty((0, 1)),
            PROFILE_Q[h.argmax(axis=1)][:, None] if n else np.empty((0, 1)),
            np.log(np.maximum(cands.score, 1e-12) / cands.spread)[:, None],
            np.log(np.maximum(cands.score, 1e-12) / cands.spread_local)[:, None],
            np.sort(p["sector_rim"], axis=1),
            (p["sector_rim"] > 0).mean(axis=1)[:, None],
        ]
    X = np.column_stack(cols) if n else np.empty((0, len(RING_FEATURES)))
    return np.nan_to_num(X, nan=0.0, posinf=0.0, neginf=0.0)


# ------------------------------------------------------------------------------------------ the classifier


@dataclass(frozen=True)
class RingModel:
    """A gradient-boosted tree ensemble over RING_FEATURES; nodes of all trees in flat arrays (a node
    sends a value <= its threshold to ``left``; leaves have left = -1)."""

    feature: NDArray[np.int64]
    threshold: NDArray[np.float64]
    left: NDArray[np.int64]
    right: NDArray[np.int64]
    value: NDArray[np.float64]
    roots: NDArray[np.int64]
    base_log_odds: float
    min_probability: float
    provenance: dict

    def probability(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return the probability (0..1) that each row of the feature matrix X is a crater."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(RING_FEATURES):
            raise InputError(f"features of shape {X.shape}: expected (n, {len(RING_FEATURES)})")
        raw = _trees_raw(
            X, self.feature, self.threshold, self.left, self.right, self.value, self.roots,
            float(self.base_log_odds), 1.0,
        )  # fmt: skip
        return 1.0 / (1.0 + np.exp(-raw))

    def to_json(self) -> dict:
        """Return the model as a JSON-ready dictionary."""
        return {
            "format": MODEL_FORMAT,
            "features": list(RING_FEATURES),
            "base_log_odds": self.base_log_odds,
            "min_probability": self.min_probability,
            "roots": self.roots.tolist(),
            "feature": self.feature.tolist(),
            "threshold": [float(v) for v in self.threshold],
            "left": self.left.tolist(),
            "right": self.right.tolist(),
            "value": [float(v) for v in self.value],
            "provenance": self.provenance,
        }

    @classmethod
    def from_json(cls, d: dict, source: str = "model") -> RingModel:
        """Build a model from its JSON dictionary; a malformed one is an InputError naming source."""
        try:
            if d["format"] != MODEL_FORMAT or list(d["features"]) != list(RING_FEATURES):
                raise ValueError("unknown format or feature list")
            m = cls(
                **_tree_arrays(d),
                base_log_odds=float(d["base_log_odds"]),
                min_probability=float(d["min_probability"]),
                provenance=dict(d.get("provenance", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source}: not a kizuna crater ring model ({exc})") from None
        check_tree_arrays(m, len(RING_FEATURES), f"{source}: the crater ring model")
        return m

    @classmethod
    def load(cls, path: str | Path) -> RingModel:
        """Read a model from a JSON file (each file is read once per process)."""
        return _load_cached(str(Path(path).resolve()), str(path))


@functools.lru_cache(maxsize=8)
def _load_cached(resolved: str, given: str) -> RingModel:
    try:
        d = json.loads(Path(resolved).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{given}: cannot read the crater ring model ({exc})") from None
    return RingModel.from_json(d, given)


def ring_model_from_sklearn(
    clf: Any, X_check: NDArray, min_probability: float, provenance: dict
) -> RingModel:
    """Return the RingModel of a fitted binary scikit-learn HistGradientBoostingClassifier (numeric
    features, no missing values), checked against its own decision function on the rows X_check."""
    feature, threshold, left, right, value, roots = [], [], [], [], [], []
    offset = 0
    for it in clf._predictors:  # one tree per iteration for a binary problem
        nodes = it[0].nodes
        leaf = nodes["is_leaf"].astype(bool)
        roots.append(offset)
        feature.extend(np.where(leaf, -1, nodes["feature_idx"]).tolist())
        threshold.extend(nodes["num_threshold"].astype(float).tolist())
        left.extend(np.where(leaf, -1, nodes["left"].astype(np.int64) + offset).tolist())
        right.extend(np.where(leaf, -1, nodes["right"].astype(np.int64) + offset).tolist())
        value.extend(nodes["value"].astype(float).tolist())
        offset += len(nodes)
    model = RingModel(
        feature=np.asarray(feature, dtype=np.int64), threshold=np.asarray(threshold, dtype=float),
        left=np.asarray(left, dtype=np.int64), right=np.asarray(right, dtype=np.int64),
        value=np.asarray(value, dtype=float), roots=np.asarray(roots, dtype=np.int64),
        base_log_odds=float(np.ravel(clf._baseline_prediction)[0]), min_probability=min_probability,
        provenance=provenance,
    )  # fmt: skip
    want = clf.decision_function(X_check)
    got = np.log(model.probability(X_check)) - np.log1p(-model.probability(X_check))
    if not np.allclose(got, want, rtol=1e-6, atol=1e-6):
        raise InputError("converted ring model disagrees with scikit-learn: unsupported estimator version")
    return model


# ---------------------------------------------------------------------------------------------- detection


def detect_rings(
    image: ArrayLike,
    sun_azimuth_deg: float,
    sun_elevation_deg: ArrayLike,
    spec: RingDetectorSpec | None = None,
) -> pd.DataFrame:
    """Detect craters in a shaded image; return a table of circles (x_px, y_px, a_px = b_px, theta_rad,
    score: the crater probability; ring_score: the rim height over radius), most likely first.

    ``sun_azimuth_deg`` is the image direction from which light comes (deg from +x toward +y);
    ``sun_elevation_deg`` the Sun's elevation above the local horizon (deg), one value or one per pixel.
    """
    spec = spec or RingDetectorSpec()
    model = spec.model()  # a missing or malformed model file is reported before any work
    cands = ring_candidates(image, float(sun_azimuth_deg), sun_elevation_deg, spec)
    p = model.probability(ring_features(cands))
    p_min = model.min_probability if spec.min_probability is None else spec.min_probability
    keep = np.flatnonzero(p >= p_min)
    rows = np.column_stack([cands.x_px[keep], cands.y_px[keep], cands.r_px[keep]])
    keep = keep[_suppression_mask(rows, p[keep], NMS_RATIO, NMS_DIST)] if keep.size else keep
    keep = keep[np.argsort(-p[keep], kind="stable")]
    df = pd.DataFrame(
        {
            "x_px": cands.x_px[keep],
            "y_px": cands.y_px[keep],
            "a_px": cands.r_px[keep],
            "b_px": cands.r_px[keep],
            "theta_rad": np.zeros(keep.size),
            "score": p[keep],
            "ring_score": cands.score[keep],
        },
        columns=[*DETECTION_COLUMNS, "ring_score"],
    )
    df.attrs["sun_azimuth_deg"] = float(sun_azimuth_deg)
    return df
