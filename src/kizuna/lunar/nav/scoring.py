"""Scoring crater detections against the terrain's true craters (for validation and benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from kizuna.lunar.nav.conics import project_circles
from kizuna.lunar.nav.render import Frame
from kizuna.lunar.nav.terrain import Terrain

__all__ = ["DetectionScore", "true_craters_in_view", "score_detections"]


@dataclass(frozen=True)
class DetectionScore:
    """Precision and recall of detections against true craters, with the counts behind them."""

    precision: float
    recall: float
    n_detections: int
    n_true: int
    centre_error_px_median: float


def true_craters_in_view(terrain: Terrain, frame: Frame, min_diameter_px: float = 5.0) -> pd.DataFrame:
    """Return the true craters whose projected rim lies wholly inside the frame: x_px, y_px, a_px (px).

    Craters are projected as circles on the local horizontal (exact conic projection); the apparent
    diameter is twice the semi-major axis.
    """
    hit = frame.hit_l.reshape(-1, 3)
    hit = hit[np.isfinite(hit[:, 0])]
    x0, y0 = hit[:, 0].min(), hit[:, 1].min()
    x1, y1 = hit[:, 0].max(), hit[:, 1].max()
    max_range_m = np.linalg.norm(hit - frame.p_w, axis=1).max()
    # query down to half the size threshold at the mean range, so that nearer craters are not missed
    d_min = 0.5 * min_diameter_px * np.linalg.norm(frame.p_w - hit.mean(axis=0)) / frame.camera.fx
    c = terrain.craters(x0, x1, y0, y1, d_min)
    if c.empty:
        return pd.DataFrame({"x_px": [], "y_px": [], "a_px": []})
    X = c[["x_m", "y_m", "z_m"]].to_numpy()
    ell = project_circles(X, 0.5 * c.diameter_m.to_numpy(), frame.camera, frame.R_cw, frame.p_w)
    out = pd.DataFrame({"x_px": ell[:, 0], "y_px": ell[:, 1], "a_px": ell[:, 2]})
    inside = frame.camera.in_image(ell[:, :2], margin_px=0.0)
    inside &= (
        (out.x_px - out.a_px >= -0.5)
        & (out.y_px - out.a_px >= -0.5)
        & (out.x_px + out.a_px <= frame.camera.width - 0.5)
        & (out.y_px + out.a_px <= frame.camera.height - 0.5)
    ).to_numpy()
    inside &= np.linalg.norm(X - frame.p_w, axis=1) <= max_range_m
    out = out[inside & (2.0 * out.a_px >= min_diameter_px)]
    return out.reset_index(drop=True)


def _pairs(a_xy: NDArray, a_r: NDArray, b_xy: NDArray, b_r: NDArray) -> tuple[NDArray, NDArray]:
    """For each row of a: whether some b is within half the smaller radius with a size ratio < 1.5."""
    if len(a_xy) == 0 or len(b_xy) == 0:
        return np.zeros(len(a_xy), dtype=bool), np.full(len(a_xy), np.nan)
    d = np.hypot(a_xy[:, None, 0] - b_xy[None, :, 0], a_xy[:, None, 1] - b_xy[None, :, 1])
    lo = np.minimum(a_r[:, None], b_r[None, :])
    ratio = np.maximum(a_r[:, None], b_r[None, :]) / lo
    ok = (d < 0.5 * lo) & (ratio < 1.5)
    dd = np.where(ok, d, np.inf).min(axis=1)
    return ok.any(axis=1), dd


def score_detections(
    detections: pd.DataFrame, truth: pd.DataFrame, min_diameter_px: float = 10.0
) -> DetectionScore:
    """Score detections against true craters for craters at least min_diameter_px across.

    Precision: detections at least min_diameter_px across that match any true crater at least
    min_diameter_px / 2 across (a small true crater slightly oversized still counts); recall: true craters
    at least min_diameter_px across that are matched by some detection. A match is a centre within half
    the smaller radius and a radius ratio below 1.5.
    """
    d_xy = detections[["x_px", "y_px"]].to_numpy()
    d_r = detections["a_px"].to_numpy()
    t_xy = truth[["x_px", "y_px"]].to_numpy()
    t_r = truth["a_px"].to_numpy()
    sel_d = 2.0 * d_r >= min_diameter_px
    sel_t = 2.0 * t_r >= min_diameter_px
    ok_d, _ = _pairs(d_xy[sel_d], d_r[sel_d], t_xy, t_r)
    ok_t, dist = _pairs(t_xy[sel_t], t_r[sel_t], d_xy, d_r)
    return DetectionScore(
        precision=float(ok_d.mean()) if ok_d.size else float("nan"),
        recall=float(ok_t.mean()) if ok_t.size else float("nan"),
        n_detections=int(sel_d.sum()),
        n_true=int(sel_t.sum()),
        centre_error_px_median=float(np.median(dist[ok_t])) if ok_t.any() else float("nan"),
    )
