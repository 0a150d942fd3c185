"""Views of a crater catalogue for testing identification: camera poses, exact rim ellipses, and detection
lists with centre and axis noise, missed craters and false detections.

A view is a pinhole camera above the lunar sphere: ``x_cam = R_cam_from_me @ (X_me - r_me)``, camera +z
along the boresight, +x along image +x (right), +y along image +y (down). Rims are circles on the local
horizontal plane of the sphere, projected exactly (:func:`kizuna.lunar.nav.conics.project_circles`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from kizuna.core.camera import Camera
from kizuna.core.constants import MOON_RADIUS_M
from kizuna.core.ephemeris import enu_basis_me
from kizuna.errors import InputError
from kizuna.lunar.nav.conics import project_circles
from kizuna.lunar.nav.id_index import CraterIndex, IdCatalog

__all__ = [
    "camera_for_view",
    "view_pose",
    "visible_craters",
    "NoiseSpec",
    "noisy_detections",
    "SimulatedView",
]


def camera_for_view(width: int = 1024, height: int = 1024, fov_deg: float = 60.0) -> Camera:
    """Return a camera of the identification convention: fov (deg) across the width, centre (W/2, H/2)."""
    if not (0.0 < fov_deg < 180.0):
        raise InputError(f"field of view {fov_deg} deg: expected a value in (0, 180)")
    f = 0.5 * width / math.tan(math.radians(fov_deg) / 2.0)
    return Camera(int(width), int(height), f, f, width / 2.0, height / 2.0)


def view_pose(
    lat_deg: float,
    lon_deg: float,
    altitude_m: float,
    off_nadir_deg: float = 0.0,
    tilt_azimuth_deg: float = 0.0,
    roll_deg: float = 0.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return (R_cam_from_me, r_me) of a camera above (lat, lon) at an altitude (m), tilted off nadir.

    The boresight leans ``off_nadir_deg`` from straight down toward ``tilt_azimuth_deg`` (from north
    toward east); ``roll_deg`` turns the image about the boresight.
    """
    if not altitude_m > 0:
        raise InputError(f"altitude {altitude_m} m: expected a camera above the surface (> 0 m)")
    east, north, up = enu_basis_me(math.radians(lat_deg), math.radians(lon_deg))
    r = (MOON_RADIUS_M + altitude_m) * up
    o, az = math.radians(off_nadir_deg), math.radians(tilt_azimuth_deg)
    horiz = math.cos(az) * north + math.sin(az) * east
    z = -math.cos(o) * up + math.sin(o) * horiz
    x0 = np.cross(z, horiz) if o > 1e-9 else east
    x0 = x0 / np.linalg.norm(x0)
    y0 = np.cross(z, x0)
    c, s = math.cos(math.radians(roll_deg)), math.sin(math.radians(roll_deg))
    x = c * x0 + s * y0
    y = np.cross(z, x)
    return np.stack([x, y, z]), r


def visible_craters(
    index: CraterIndex,
    camera: Camera,
    R_cam_from_me: NDArray[np.float64],
    r_me: NDArray[np.float64],
    min_semi_major_px: float = 5.0,
    min_semi_minor_px: float = 3.0,
    max_emission_deg: float = 70.0,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Return catalogue rows of the craters wholly in the frame and facing the camera, and their ellipses.

    Ellipses are rows [x, y, a, b, theta] (px, rad) of the exact rim projections; craters seen at more
    than ``max_emission_deg`` from their local vertical, or smaller than the given semi-axes, are left out.
    """
    cat: IdCatalog = index.catalog
    dist = float(np.linalg.norm(r_me))
    if dist <= MOON_RADIUS_M:
        raise InputError(f"camera at {dist - MOON_RADIUS_M:.0f} m altitude: expected one above the surface")
    horizon = math.acos(MOON_RADIUS_M / dist)
    chord = 2.0 * math.sin(0.5 * horizon)
    rows = np.array(index.unit_tree.query_ball_point(r_me / dist, chord), dtype=np.int64)
    if rows.size == 0:
        return rows, np.empty((0, 5))
    X = cat.centres_me_m[rows]
    n = X / np.linalg.norm(X, axis=1, keepdims=True)
    to_cam = r_me - X
    cos_e = np.einsum("ij,ij->i", n, to_cam) / np.linalg.norm(to_cam, axis=1)
    keep = cos_e >= math.cos(math.radians(max_emission_deg))
    rows, X, n = rows[keep], X[keep], n[keep]
    E = project_circles(X, cat.radius_m[rows], camera, R_cam_from_me, r_me, normals_w=n)
    x, y, a, b = E[:, 0], E[:, 1], E[:, 2], E[:, 3]
    with np.errstate(invalid="ignore"):
        ok = (
            np.isfinite(x)
            & (x - a >= -0.5)
            & (y - a >= -0.5)
            & (x + a <= camera.width - 0.5)
            & (y + a <= camera.height - 0.5)
            & (a >= min_semi_major_px)
            & (b >= min_semi_minor_px)
        )
    return rows[ok], E[ok]


@dataclass(frozen=True)
class NoiseSpec:
    """Detection errors: centre sigma (px), axis sigma (fraction), share of false detections in the list,
    share of true craters missed."""

    centre_sigma_px: float = 0.0
    axis_sigma_frac: float = 0.0
    false_fraction: float = 0.0
    drop_fraction: float = 0.0

    def __post_init__(self) -> None:
        if not (self.centre_sigma_px >= 0 and self.axis_sigma_frac >= 0):
            raise InputError("noise: expected centre_sigma_px >= 0 and axis_sigma_frac >= 0")
        if not (0 <= self.false_fraction < 1 and 0 <= self.drop_fraction < 1):
            raise InputError("noise: expected false_fraction and drop_fraction in [0, 1)")


@dataclass(frozen=True)
class SimulatedView:
    """A simulated detection list with its truth: catalogue row per detection (-1: false detection)."""

    detections: NDArray[np.float64]
    truth_row: NDArray[np.int64]
    R_cam_from_me: NDArray[np.float64]
    r_me: NDArray[np.float64]
    n_visible: int
    gsd_m: float


def noisy_detections(
    index: CraterIndex,
    camera: Camera,
    R_cam_from_me: NDArray[np.float64],
    r_me: NDArray[np.float64],
    noise: NoiseSpec,
    rng: np.random.Generator,
) -> SimulatedView:
    """Simulate a detector's output for a view: the visible rims with noise, some missed, some false.

    False detections copy the size and shape of a random true rim (jittered) at a random place, so they
    look like craters. The ground pixel ``gsd_m`` is the median range to the visible craters over fx.
    """
    rows, E = visible_craters(index, camera, R_cam_from_me, r_me)
    n_vis = rows.size
    if n_vis:
        rng_m = np.linalg.norm(index.catalog.centres_me_m[rows] - r_me, axis=1)
        gsd = float(np.median(rng_m)) / camera.fx
    else:
        gsd = float(np.linalg.norm(r_me) - MOON_RADIUS_M) / camera.fx
    keep = rng.permutation(n_vis)[: n_vis - int(round(noise.drop_fraction * n_vis))]
    keep.sort()
    rows, E = rows[keep], E[keep].copy()
    n = rows.size
    if n:
        E[:, 0:2] += rng.normal(0.0, noise.centre_sigma_px, (n, 2))
        E[:, 2:4] *= np.exp(rng.normal(0.0, noise.axis_sigma_frac, (n, 2)))
        E[:, 4] += rng.normal(0.0, noise.axis_sigma_frac, n)
    n_false = int(round(noise.false_fraction / (1.0 - noise.false_fraction) * n)) if n else 0
    F = np.empty((n_false, 5))
    if n_false:
        src = E[rng.integers(0, n, n_false)]
        F[:, 2:5] = src[:, 2:5]
        F[:, 2:4] *= np.exp(rng.normal(0.0, 0.2, (n_false, 1)))
        a = F[:, 2]
        F[:, 0] = rng.uniform(a, camera.width - a)
        F[:, 1] = rng.uniform(a, camera.height - a)
    D = np.concatenate([E, F])
    truth = np.concatenate([rows, -np.ones(n_false, dtype=np.int64)])
    swap = D[:, 3] > D[:, 2]
    D[swap, 2], D[swap, 3] = D[swap, 3], D[swap, 2].copy()
    D[swap, 4] += 0.5 * np.pi
    D[:, 4] = (D[:, 4] + 0.5 * np.pi) % np.pi - 0.5 * np.pi
    order = rng.permutation(D.shape[0])
    return SimulatedView(D[order], truth[order], R_cam_from_me, r_me, n_vis, gsd)
