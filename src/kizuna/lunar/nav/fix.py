"""One crater fix: detect craters in an image, match them to the onboard map, and solve the camera pose.

Tracking mode: the navigation filter's predicted pose and its covariance choose the part of the map to
look at, seed the association and gate the resulting pose.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from kizuna.core.camera import Camera
from kizuna.errors import InputError
from kizuna.lunar.nav.crater_map import CraterMap
from kizuna.lunar.nav.detect import DetectorSpec, detect_craters
from kizuna.lunar.nav.match import match_craters
from kizuna.lunar.nav.pose import PoseFix, pose_from_matches, projection_jacobian
from kizuna.lunar.nav.render import ground_footprint

__all__ = ["FixOutcome", "crater_fix", "sun_azimuth_in_image", "with_common_shift"]


@dataclass
class FixOutcome:
    """Result of one crater fix: the pose (or None) and what led to it, with timings (s).

    ``latency_s`` is the onboard processing time: detection, matching and pose. The map query is timed
    apart (``timings_s["map"]``): here it draws the craters from the procedural terrain, where a lander
    would look them up in the map it carries.
    """

    pose: PoseFix | None
    detections: pd.DataFrame
    map_craters: pd.DataFrame
    det_idx: NDArray[np.int64]
    map_idx: NDArray[np.int64]
    gsd_m: float
    latency_s: float
    reason: str = ""
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def n_matched(self) -> int:
        """Return the number of detection-map pairs used by the pose (inliers), 0 without a pose."""
        return 0 if self.pose is None else int(self.pose.n_inliers)


def sun_azimuth_in_image(R_cw: NDArray, sun_dir_l: NDArray) -> float:
    """Return the image direction (deg from +x toward +y) from which sunlight comes, for a pose R_cw."""
    s = np.asarray(R_cw) @ np.asarray(sun_dir_l, dtype=float)
    return math.degrees(math.atan2(s[1], s[0])) % 360.0


def with_common_shift(fix: PoseFix, X_w: NDArray, camera: Camera, sigma_px: float) -> PoseFix:
    """Return the fix with the pose uncertainty that a common image offset of sigma_px (px, per axis) adds.

    Crater centres found from shading carry a small offset shared by all craters of an image (it depends
    on the light and on how worn the rims are). Least squares turns a common offset b into a pose error
    G b with G = -(J^T J)^-1 J^T 1 (J: the (2N, 6) projection Jacobian of the inliers), so the
    covariance gains sigma^2 G G^T.
    """
    if sigma_px <= 0:
        return fix
    _, J, _ = projection_jacobian(X_w, camera, fix.R_cw, fix.p_w)
    J = J[np.all(np.isfinite(J), axis=(1, 2))]
    JtJ = np.einsum("nki,nkj->ij", J, J)
    Jt1 = J.sum(axis=0).T  # (6, 2): response to a shift of every point by one pixel in x or y
    G = -np.linalg.solve(JtJ, Jt1)
    return replace(fix, cov=fix.cov + sigma_px**2 * (G @ G.T))


def crater_fix(
    image: NDArray,
    camera: Camera,
    R_cw_pred: NDArray,
    p_pred: NDArray,
    P_pose_pred: NDArray,
    sun_dir_l: NDArray,
    crater_map: CraterMap,
    ground_z_m: float,
    detector: DetectorSpec | None = None,
    sigma_px: float = 1.0,
    gate_prob: float = 0.9999,
    rng: np.random.Generator | None = None,
    common_shift_px: float = 1.0,
    max_detections: int = 300,
    centre_sigma_rel: float = 0.1,
) -> FixOutcome:
    """Run detection, map query, matching and pose for one image (frame L, m; pose covariance as in pose.py).

    ``ground_z_m`` is the onboard estimate of the ground height (m, L) below the predicted position; it
    fixes the map query box together with the predicted footprint grown by 3 sigma of position.
    ``common_shift_px`` is the sigma (px) of the offset shared by all detected centres (see
    :func:`with_common_shift`). Matching uses the ``max_detections`` most likely craters: a fix's error
    is set by what all craters share (attitude, common offset, map), not by their number beyond a few
    hundred, while matching time grows with it. ``centre_sigma_rel`` is the detected-centre noise that
    grows with a crater's apparent size (fraction of the semi-axis, per axis): on rendered frames the
    detector's centre error per axis is about 0.3 px for radii of 4-8 px, 2 px at 16-32 px, 5 px at
    32-64 px and 14 px beyond (about a tenth of the radius for large craters).
    """
    P = np.asarray(P_pose_pred, dtype=float)
    if P.shape != (6, 6):
        raise InputError(f"P_pose_pred: expected a 6x6 pose covariance, got {P.shape}")
    detector = detector or DetectorSpec()
    t0 = time.perf_counter()
    az = sun_azimuth_in_image(R_cw_pred, sun_dir_l)
    det = detect_craters(image, az, detector)
    t1 = time.perf_counter()
    x0, x1, y0, y1, gsd = ground_footprint(camera, R_cw_pred, p_pred, ground_z_m)
    grow = 3.0 * math.sqrt(max(P[3, 3], P[4, 4])) + 0.05 * max(x1 - x0, y1 - y0)
    gsd_centre = (p_pred[2] - ground_z_m) / max(-float(np.asarray(R_cw_pred)[2, 2]), 0.1) / camera.fx
    d_min = max(2.0 * detector.min_radius_px * gsd_centre, crater_map.error.min_diameter_m)
    d_max = 0.5 * camera.width * gsd_centre
    cmap = crater_map.query(x0 - grow, x1 + grow, y0 - grow, y1 + grow, d_min, d_max)
    t2 = time.perf_counter()
    empty = np.empty(0, dtype=np.int64)
    timings = {"detect": t1 - t0, "map": t2 - t1}

    def onboard_time() -> float:
        return time.perf_counter() - t0 - timings["map"]

    def no_fix(reason: str, det_idx: NDArray = empty, map_idx: NDArray = empty) -> FixOutcome:
        return FixOutcome(None, det, cmap, det_idx, map_idx, gsd_centre, onboard_time(), reason, timings)

    if len(det) < 5 or len(cmap) < 5:
        return no_fix(f"too few craters (detected {len(det)}, mapped {len(cmap)})")
    # Detections too small to be in the map cannot match (half the smallest mapped size at the centre's
    # scale: the slant of the view makes far craters smaller); of the rest, the most likely (detections
    # come sorted by decreasing score). det keeps every detection; det_idx indexes it.
    usable = np.flatnonzero(2.0 * det["a_px"].to_numpy() * gsd_centre >= 0.5 * d_min)[:max_detections]
    if len(usable) < 5:
        return no_fix(f"too few craters of mapped size (detected {len(usable)} of {len(det)})")
    D = det[["x_px", "y_px", "a_px", "b_px", "theta_rad"]].to_numpy()[usable]
    Xc = cmap[["x_m", "y_m", "z_m"]].to_numpy()
    radii = 0.5 * cmap["diameter_m"].to_numpy()
    cat_sigma = cmap["sigma_m"].to_numpy()
    m = match_craters(D, Xc, radii, camera, R_cw_pred, p_pred, P, sigma_px=sigma_px, cat_sigma_m=cat_sigma)
    t3 = time.perf_counter()
    timings["match"] = t3 - t2
    if m.n_matches < 5:
        return no_fix("ambiguous association" if m.ambiguous else f"only {m.n_matches} matches")
    fix = pose_from_matches(
        m, D, Xc, camera, R_cw_pred, p_pred, P, sigma_px=sigma_px, gate_prob=gate_prob, rng=rng,
        cat_sigma_m=cat_sigma, sigma_rel=centre_sigma_rel,
    )  # fmt: skip
    timings["pose"] = time.perf_counter() - t3
    if fix is None:
        return no_fix("pose failed or disagreed with the prediction", usable[m.det_idx], m.cat_idx)
    fix = with_common_shift(fix, Xc[m.cat_idx[fix.inliers]], camera, common_shift_px)
    return FixOutcome(
        fix,
        det,
        cmap,
        usable[m.det_idx[fix.inliers]],
        m.cat_idx[fix.inliers],
        gsd_centre,
        onboard_time(),
        "",
        timings,
    )
