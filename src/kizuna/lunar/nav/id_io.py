"""Files of ``kizuna lunar identify``: detection CSV, camera JSON and attitude-prior JSON, read strictly.

- Detections: ``x_px,y_px,a_px,b_px,theta_rad`` as ``kizuna lunar detect`` writes them (other columns,
  such as ``score``, are ignored): centre (x right, y down, pixel centres at integers), semi-axes
  a >= b > 0 (px), angle from image +x toward +y (rad).
- Camera: ``{"width": W, "height": H, "fov_deg": F}`` (full angle across the width, principal point at
  ``(W/2, H/2)``) or ``{"fx": .., "fy": .., "cx": .., "cy": .., "width": W, "height": H}`` (px).
- Attitude prior: ``{"R_cam_from_me": [[...], [...], [...]], "sigma_deg": S}``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from kizuna.core.camera import Camera
from kizuna.errors import InputError
from kizuna.lunar.nav.conics import project_circles
from kizuna.lunar.nav.id_index import CraterIndex
from kizuna.lunar.nav.identify import AttitudePrior, IdResult

__all__ = [
    "DETECTION_FIELDS",
    "read_detections",
    "read_camera",
    "read_attitude_prior",
    "identification_figure",
]

DETECTION_FIELDS = ["x_px", "y_px", "a_px", "b_px", "theta_rad"]


def read_detections(path: str | os.PathLike[str]) -> NDArray[np.float64]:
    """Read a detection CSV into an (N, 5) array [x, y, a, b, theta] (px, rad), checking every row."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: detection file not found")
    try:
        df = pd.read_csv(p, dtype=str, encoding="utf-8-sig", skip_blank_lines=True)
    except pd.errors.EmptyDataError as exc:
        raise InputError(
            f"{p}: empty file; expected a CSV with columns {','.join(DETECTION_FIELDS)}"
        ) from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"{p}: cannot parse the CSV ({exc})") from exc
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in DETECTION_FIELDS if c not in df.columns]
    if missing:
        raise InputError(f"{p}: missing columns {missing}; expected {','.join(DETECTION_FIELDS)}")
    out = np.empty((len(df), 5))
    for k, col in enumerate(DETECTION_FIELDS):
        v = pd.to_numeric(df[col].str.strip(), errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(v))
        if bad.size:
            i = bad[0]
            raise InputError(
                f"{p}: line {i + 2}, column {col}: {df[col].iloc[i]!r}; expected a finite number"
            )
        out[:, k] = v
    bad = np.flatnonzero(~(out[:, 3] > 0) | (out[:, 2] < out[:, 3]))
    if bad.size:
        i = bad[0]
        raise InputError(
            f"{p}: line {i + 2}: a_px={out[i, 2]:g}, b_px={out[i, 3]:g}; expected semi-axes a >= b > 0 (px)"
        )
    return out


def _load_json(p: Path, what: str) -> dict[str, Any]:
    if not p.is_file():
        raise InputError(f"{p}: {what} file not found")
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not valid JSON ({exc}); expected a {what} object") from exc
    if not isinstance(obj, dict):
        raise InputError(f"{p}: expected a JSON object for the {what}")
    return obj


def _number(p: Path, obj: dict[str, Any], key: str, positive: bool = True) -> float:
    if key not in obj:
        raise InputError(f"{p}: missing field {key!r}")
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InputError(f"{p}: field {key!r} = {v!r}; expected a finite number")
    if positive and not v > 0:
        raise InputError(f"{p}: field {key!r} = {v!r}; expected a positive value")
    return float(v)


def read_camera(path: str | os.PathLike[str]) -> Camera:
    """Read a camera JSON (size and field of view, or focal lengths and principal point; px)."""
    p = Path(path)
    obj = _load_json(p, "camera")
    w = _number(p, obj, "width")
    h = _number(p, obj, "height")
    if w != int(w) or h != int(h):
        raise InputError(f"{p}: width={w}, height={h}; expected whole numbers of pixels")
    if "fov_deg" in obj:
        fov = _number(p, obj, "fov_deg")
        if not fov < 180.0:
            raise InputError(f"{p}: field 'fov_deg' = {fov}; expected a field of view in (0, 180) deg")
        f = 0.5 * w / math.tan(math.radians(fov) / 2.0)
        return Camera(int(w), int(h), f, f, w / 2.0, h / 2.0)
    if "fx" not in obj:
        raise InputError(f"{p}: expected either 'fov_deg' or 'fx', 'fy', 'cx', 'cy' besides width and height")
    fx, fy = _number(p, obj, "fx"), _number(p, obj, "fy")
    cx, cy = _number(p, obj, "cx", positive=False), _number(p, obj, "cy", positive=False)
    return Camera(int(w), int(h), fx, fy, cx, cy)


def read_attitude_prior(path: str | os.PathLike[str]) -> AttitudePrior:
    """Read an attitude prior JSON: R_cam_from_me (3x3) and sigma_deg (deg)."""
    p = Path(path)
    obj = _load_json(p, "attitude prior")
    if "R_cam_from_me" not in obj:
        raise InputError(f"{p}: missing field 'R_cam_from_me'; expected a 3x3 rotation matrix")
    try:
        R = np.asarray(obj["R_cam_from_me"], dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{p}: field 'R_cam_from_me': expected a 3x3 array of numbers") from exc
    if R.shape != (3, 3):
        raise InputError(f"{p}: field 'R_cam_from_me' has shape {R.shape}; expected 3x3")
    sigma = _number(p, obj, "sigma_deg")
    try:
        return AttitudePrior(R, sigma)
    except InputError as exc:
        raise InputError(f"{p}: {exc}") from exc


def identification_figure(
    detections: NDArray[np.float64],
    camera: Camera,
    result: IdResult,
    index: CraterIndex | None,
    image: Any = None,
) -> Any:
    """Return a matplotlib Figure of the image plane (px): detections, and the matched catalogue rims
    projected with the identified pose, labelled with their IDs."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Ellipse

    fig = Figure(figsize=(7.5, 7.5 * camera.height / camera.width))
    ax = fig.add_subplot(1, 1, 1)
    if image is not None:
        ax.imshow(image, cmap="gray", origin="upper")
    for x, y, a, b, th in detections:
        ax.add_patch(Ellipse((x, y), 2 * a, 2 * b, angle=np.degrees(th), fill=False, lw=0.6, ec="tab:red"))
    if result.status == "ok" and result.n_matches and index is not None:
        cat = index.catalog
        rows = result.match_rows
        X = cat.centres_me_m[rows]
        E = project_circles(X, cat.radius_m[rows], camera, result.R_cam_from_me, result.position_m,
                            normals_w=cat.unit_me[rows])  # fmt: skip
        for (x, y, a, b, th), (_, cid) in zip(E, result.matches, strict=True):
            ax.add_patch(
                Ellipse((x, y), 2 * a, 2 * b, angle=np.degrees(th), fill=False, lw=1.0, ec="tab:green")
            )
            if result.n_matches <= 60:
                ax.annotate(cid, (x, y - b), fontsize=5, color="tab:green", ha="center", va="bottom")
        title = (
            f"{result.n_matches} of {len(detections)} detections identified (red: detected, green: catalogue)"
        )
    else:
        title = f"no fix: {result.reason}"[:110]
    ax.set_xlim(-0.5, camera.width - 0.5)
    ax.set_ylim(camera.height - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig
