"""Views of the whole Moon rendered from a global DEM (e.g. LOLA LDEM_4), and catalogue craters projected
into them.

How a view is rendered, and why this way. The surface is the reference sphere (1737.4 km) raised by the
DEM heights, sampled with bicubic (Keys 1981, a = -0.5) interpolation on the longitude/latitude grid,
which wraps at 0/360 E and continues across a pole onto the meridian 180 deg away (within half a cell of
a pole it blends into the mean of the row around it, so that a pole has one height). It is resampled
onto a height field over the tangent plane at the view centre (frame L: x east, y north, z up, origin on
the sphere below the centre; the height z of each cell includes the sphere's curvature drop, solved
exactly for the surface point above that cell). On that grid the project's navigation-camera renderer
(:mod:`kizuna.lunar.nav.render`) does the rest: lunar-Lambert shading (McEwen 1991) with the phase angle
of every cell, cast shadows by a sweep along the Sun's azimuth (a tangent-plane height field that
carries the curvature drop casts and receives shadows exactly for a distant Sun), and a ray through every
pixel marched to its first crossing of the surface. A ray-marcher on the sphere would do the same work
with a trigonometric DEM look-up at every step; the tangent-plane grid does the look-ups once per cell
and reuses the renderer the synthetic-terrain frames are made with, so that real and synthetic images
share one photometric and sensor model. A height field over a plane holds a cap of the sphere up to about
60 deg from its centre, far more than a navigation camera sees; wider views, and views past the limb,
are refused. Albedo is uniform: the DEM carries topography only, so maria and highlands are equally
bright.

Catalogue craters are projected as rim circles on the local horizontal plane of the sphere (at the
DEM's mean height along the rim, when a DEM is given) with the exact conic projection of
:mod:`kizuna.lunar.nav.conics`. Detection in such views and its scoring against a catalogue are in
:mod:`kizuna.lunar.nav.globe_detect`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numba as nb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from kizuna.core.camera import Camera
from kizuna.core.constants import MOON_RADIUS_M
from kizuna.core.ephemeris import enu_basis_me, latlon_to_moon_me, moon_me_to_latlon
from kizuna.core.raster import Raster, read_dem
from kizuna.core.rotations import look_at
from kizuna.errors import InputError
from kizuna.lunar.nav.conics import project_circles
from kizuna.lunar.nav.render import SensorSpec, _raycast, _shade_grid, sun_direction_l
from kizuna.lunar.nav.terrain import Grid

__all__ = [
    "GlobalDEM",
    "GlobeView",
    "load_global_dem",
    "nadir_pose",
    "render_view",
    "render_nadir",
    "project_craters",
    "crater_relief",
]

_R = MOON_RADIUS_M
_MAX_CAP_RAD = math.radians(60.0)  # widest view: ground within 60 deg of arc of the view centre


# ------------------------------------------------------------------------------------------------ the DEM


@dataclass(frozen=True, eq=False)
class GlobalDEM:
    """A global height grid (m above the 1737.4 km sphere) on planetocentric latitude / east longitude.

    Row 0 is the northernmost; cell (row, col) has its centre at latitude ``90 - (row + 0.5) step`` and
    longitude ``lon_west_deg + (col + 0.5) step`` (deg), as in pixel-registered PDS products such as LOLA
    LDEM_4 (``lon_west_deg`` 0, step 0.25 deg). Each pole's height is the mean of the row around it.
    """

    heights_m: NDArray[np.float64]
    lon_west_deg: float
    step_deg: float
    pole_heights_m: NDArray[np.float64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        h = np.ascontiguousarray(self.heights_m, dtype=np.float64)
        if h.ndim != 2 or h.shape[1] != 2 * h.shape[0] or h.shape[0] < 8:
            raise InputError(
                f"global DEM of shape {h.shape}: expected n x 2n cells (n >= 8) covering 180 x 360 deg"
            )
        if abs(self.step_deg * h.shape[0] - 180.0) > 1e-6 * 180.0:
            raise InputError(
                f"global DEM step {self.step_deg} deg x {h.shape[0]} rows: expected rows x step = 180 deg"
            )
        bad = ~np.isfinite(h)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise InputError(
                f"global DEM: {int(bad.sum())} NaN or infinite heights (first at row {r}, column {c}); "
                "expected finite heights everywhere"
            )
        object.__setattr__(self, "heights_m", h)
        object.__setattr__(self, "pole_heights_m", np.array([h[0].mean(), h[-1].mean()]))

    @classmethod
    def from_raster(cls, raster: Raster) -> GlobalDEM:
        """Build from a Raster in lon/lat degrees covering the globe (e.g. ``read_dem`` of LOLA LDEM_4)."""
        t = raster.transform
        rows, cols = raster.shape
        if t.b != 0.0 or t.d != 0.0 or t.e >= 0.0 or abs(t.a + t.e) > 1e-9 * abs(t.a):
            raise InputError(
                f"DEM transform {tuple(t)[:6]}: expected a north-up lon/lat grid with square cells (deg)"
            )
        if abs(t.f - 90.0) > 1e-6 or abs(t.a * cols - 360.0) > 1e-6 or abs(-t.e * rows - 180.0) > 1e-6:
            left, bottom, right, top = raster.bounds
            raise InputError(
                f"DEM bounds lon {left:g}..{right:g}, lat {bottom:g}..{top:g} deg: "
                "expected a global grid (360 deg of longitude, latitude 90..-90)"
            )
        return cls(raster.data, float(t.c), float(t.a))

    def height(self, lat_deg: ArrayLike, lon_deg: ArrayLike) -> NDArray[np.float64]:
        """Return heights (m above 1737.4 km) at planetocentric latitudes / east longitudes (deg), bicubic."""
        lat, lon = np.broadcast_arrays(np.asarray(lat_deg, dtype=float), np.asarray(lon_deg, dtype=float))
        if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(lon))):
            raise InputError("DEM look-up: expected finite latitudes and longitudes (deg)")
        out = _sample_many(
            self.heights_m, self.lon_west_deg, self.step_deg, lat.ravel(), lon.ravel(), self.pole_heights_m
        )
        return out.reshape(lat.shape)


def load_global_dem(path: str | os.PathLike[str]) -> GlobalDEM:
    """Read a global DEM file (PDS3 IMG/LBL or GeoTIFF, heights in m, lon/lat degrees) as a GlobalDEM."""
    return GlobalDEM.from_raster(read_dem(path))


@nb.njit(cache=True, inline="always")
def _keys(t):
    """Keys (1981) cubic convolution weight, a = -0.5 (Catmull-Rom), at offset t (cells)."""
    t = abs(t)
    if t <= 1.0:
        return (1.5 * t - 2.5) * t * t + 1.0
    if t < 2.0:
        return ((-0.5 * t + 2.5) * t - 4.0) * t + 2.0
    return 0.0


@nb.njit(cache=True)
def _sample(h, lon_west, step, lat_deg, lon_deg, poles):
    """Bicubic height at (lat, lon) deg; columns wrap, rows past a pole continue 180 deg of lon away.

    Between the first (last) row's centres and the pole the value is blended linearly in latitude into
    the mean of that row (poles[0], poles[1]), so that each pole has a single height.
    """
    nr, nc = h.shape
    fr = (90.0 - lat_deg) / step - 0.5
    fc = (lon_deg - lon_west) / step - 0.5
    r0 = math.floor(fr)
    c0 = math.floor(fc)
    tr = fr - r0
    tc = fc - c0
    acc = 0.0
    for a in range(-1, 3):
        wr = _keys(a - tr)
        r = r0 + a
        shift = 0
        if r < 0:
            r = -1 - r
            shift = nc // 2
        elif r > nr - 1:
            r = 2 * nr - 1 - r
            shift = nc // 2
        row = 0.0
        for b in range(-1, 3):
            c = (c0 + b + shift) % nc
            row += _keys(b - tc) * h[r, c]
        acc += wr * row
    if fr < 0.0:
        w = min(1.0, -2.0 * fr)
        acc += w * (poles[0] - acc)
    elif fr > nr - 1.0:
        w = min(1.0, 2.0 * (fr - (nr - 1.0)))
        acc += w * (poles[1] - acc)
    return acc


@nb.njit(cache=True, parallel=True)
def _sample_many(h, lon_west, step, lat, lon, poles):
    out = np.empty(lat.size)
    for k in nb.prange(lat.size):
        out[k] = _sample(h, lon_west, step, lat[k], lon[k], poles)
    return out


@nb.njit(cache=True, parallel=True)
def _height_field(h, lon_west, step, poles, B, x0, y0, dx, nx, ny):
    """Heights z (m, frame L) of the DEM surface above each cell of a tangent-plane grid.

    B holds the local east, north and up unit vectors (rows, MOON_ME). The surface point above the cell
    (x, y) is (x, y, z) with |(x, y, R + z)| = R + h(direction); two fixed-point steps on h converge to
    well under a metre (h moves the point sideways by only rho h / R).
    """
    R = _R
    out = np.empty((ny, nx))
    for j in nb.prange(ny):
        y = y0 + j * dx
        for i in range(nx):
            x = x0 + i * dx
            rho2 = x * x + y * y
            z = math.sqrt(max(R * R - rho2, 0.0)) - R
            for _ in range(3):
                w = R + z
                vx = x * B[0, 0] + y * B[1, 0] + w * B[2, 0]
                vy = x * B[0, 1] + y * B[1, 1] + w * B[2, 1]
                vz = x * B[0, 2] + y * B[1, 2] + w * B[2, 2]
                lat = math.degrees(math.atan2(vz, math.hypot(vx, vy)))
                lon = math.degrees(math.atan2(vy, vx))
                r = R + _sample(h, lon_west, step, lat, lon, poles)
                z = math.sqrt(max(r * r - rho2, 0.0)) - R
            out[j, i] = z
    return out


# ------------------------------------------------------------------------------------------------ views


@dataclass(frozen=True, eq=False)
class GlobeView:
    """A rendered view: image in [0, 1] (float32, H x W), camera and pose in MOON_ME (``x_cam = R (x - r)``),
    the unit vector toward the Sun (MOON_ME), and the ground point of every pixel (H x W x 3, MOON_ME m)."""

    image: NDArray[np.float32]
    camera: Camera
    R_cam_from_me: NDArray[np.float64]
    r_me_m: NDArray[np.float64]
    sun_dir_me: NDArray[np.float64]
    ground_me_m: NDArray[np.float64]
    centre_lat_deg: float
    centre_lon_deg: float
    grid_dx_m: float

    @property
    def lat_lon_deg(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Return the planetocentric latitude and east longitude (deg, [-180, 180)) of every pixel."""
        lat, lon, _ = moon_me_to_latlon(self.ground_me_m)
        return np.degrees(lat), (np.degrees(lon) + 180.0) % 360.0 - 180.0

    @property
    def sun_azimuth_image_deg(self) -> float:
        """Return the image direction from which light comes (deg from +x toward +y), for detection."""
        s = self.R_cam_from_me @ self.sun_dir_me
        return float(math.degrees(math.atan2(s[1], s[0])) % 360.0)

    def ground_sample_m(self, x_px: ArrayLike, y_px: ArrayLike) -> NDArray[np.float64]:
        """Return the ground distance (m) one pixel spans at image points (px): geometric mean of x, y."""
        g = self.ground_me_m
        h, w = g.shape[:2]
        xi = np.clip(np.rint(np.asarray(x_px, dtype=float)).astype(int), 1, w - 2)
        yi = np.clip(np.rint(np.asarray(y_px, dtype=float)).astype(int), 1, h - 2)
        sx = 0.5 * np.linalg.norm(g[yi, xi + 1] - g[yi, xi - 1], axis=-1)
        sy = 0.5 * np.linalg.norm(g[yi + 1, xi] - g[yi - 1, xi], axis=-1)
        return np.sqrt(sx * sy)


def nadir_pose(lat_deg: float, lon_deg: float, altitude_m: float) -> tuple[NDArray, NDArray]:
    """Return (R_cam_from_me, r_me_m) of a camera altitude_m above the 1737.4 km sphere at lat/lon (deg),
    looking straight down with north up in the image (east to the right)."""
    for name, v in (("lat_deg", lat_deg), ("lon_deg", lon_deg), ("altitude_m", altitude_m)):
        if not math.isfinite(v):
            raise InputError(f"{name}={v}: expected a finite value")
    if abs(lat_deg) > 90.0:
        raise InputError(f"lat_deg={lat_deg}: expected a latitude in [-90, 90] deg")
    if altitude_m <= 0.0:
        raise InputError(f"altitude_m={altitude_m}: expected a positive altitude above the sphere (m)")
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    east, north, up = enu_basis_me(lat, lon)
    r = (MOON_RADIUS_M + altitude_m) * up
    return look_at(r, r - up, up=north), r


def _ray_sphere(p: NDArray, d: NDArray, radius: float) -> NDArray[np.float64]:
    """Distance along unit rays d (N, 3) from p to their first crossing of a sphere; NaN when they miss."""
    b = d @ p
    c = p @ p - radius * radius
    disc = b * b - c
    with np.errstate(invalid="ignore"):
        t = -b - np.sqrt(disc)
    return np.where((disc >= 0.0) & (t > 0.0), t, np.nan)


def _boundary_uv(camera: Camera, n_edge: int = 24) -> NDArray[np.float64]:
    w, h = camera.width, camera.height
    t = np.linspace(0.0, 1.0, n_edge)
    u = np.concatenate([t * (w - 1), np.full(n_edge, w - 1.0), t[::-1] * (w - 1), np.zeros(n_edge)])
    v = np.concatenate([np.zeros(n_edge), t * (h - 1), np.full(n_edge, h - 1.0), t[::-1] * (h - 1)])
    return np.stack([np.append(u, camera.cx), np.append(v, camera.cy)], -1)


def _sun_me(
    B: NDArray, sun_dir_me: ArrayLike | None, sun_elevation_deg: float | None, sun_azimuth_deg: float | None
) -> NDArray[np.float64]:
    """The unit vector toward the Sun (MOON_ME) from a direction, or from elevation/azimuth in frame B."""
    if sun_dir_me is not None:
        if sun_elevation_deg is not None or sun_azimuth_deg is not None:
            raise InputError(
                "Sun given twice: pass sun_dir_me or sun_elevation_deg/sun_azimuth_deg, not both"
            )
        s = np.asarray(sun_dir_me, dtype=float)
        n = np.linalg.norm(s) if s.shape == (3,) else 0.0
        if not (np.all(np.isfinite(s)) and n > 0):
            raise InputError(f"sun_dir_me={s.tolist()}: expected a finite non-zero 3-vector (MOON_ME)")
        return s / n
    if sun_elevation_deg is None or sun_azimuth_deg is None:
        raise InputError("Sun missing: pass sun_dir_me, or both sun_elevation_deg and sun_azimuth_deg")
    if not (0.0 < sun_elevation_deg <= 90.0):
        raise InputError(f"sun_elevation_deg={sun_elevation_deg}: expected a value in (0, 90] deg")
    if not math.isfinite(sun_azimuth_deg):
        raise InputError(f"sun_azimuth_deg={sun_azimuth_deg}: expected a finite azimuth (deg)")
    return sun_direction_l(sun_azimuth_deg, sun_elevation_deg) @ B


def render_view(
    dem: GlobalDEM,
    camera: Camera,
    R_cam_from_me: ArrayLike,
    r_me_m: ArrayLike,
    *,
    sun_dir_me: ArrayLike | None = None,
    sun_elevation_deg: float | None = None,
    sun_azimuth_deg: float | None = None,
    sensor: SensorSpec | None = None,
    rng: np.random.Generator | None = None,
    max_grid_cells: int = 6_000_000,
) -> GlobeView:
    """Render the DEM surface seen by a camera at r_me_m (MOON_ME, m) with rotation R_cam_from_me.

    The Sun is a unit vector ``sun_dir_me`` (MOON_ME), or an elevation and azimuth (deg, azimuth from north
    toward east) at the view centre, the point where the image centre's ray meets the sphere. ``sensor``
    (default ``SensorSpec()``) sets exposure and blur; with ``rng`` shot and read noise are added. The
    whole view must lie on the Moon within 60 deg of arc of its centre.
    """
    R_cm = np.asarray(R_cam_from_me, dtype=float)
    p_me = np.asarray(r_me_m, dtype=float)
    if R_cm.shape != (3, 3) or p_me.shape != (3,):
        raise InputError(
            f"pose: expected R_cam_from_me (3, 3) and r_me_m (3,), got {R_cm.shape}, {p_me.shape}"
        )
    if not (np.all(np.isfinite(R_cm)) and np.all(np.isfinite(p_me))):
        raise InputError("camera pose contains NaN or infinity: expected a finite position and rotation")
    if not np.allclose(R_cm @ R_cm.T, np.eye(3), atol=1e-6) or np.linalg.det(R_cm) < 0:
        raise InputError("R_cam_from_me: expected a proper rotation matrix (orthonormal, det +1)")
    lat_c, lon_c, alt = moon_me_to_latlon(p_me)
    ground = float(dem.height(np.degrees(lat_c), np.degrees(lon_c)))
    if alt <= ground + 1.0:
        raise InputError(
            f"camera at {alt:.1f} m above the 1737.4 km sphere is at or below the surface there "
            f"({ground:.1f} m): expected a camera above the ground"
        )
    h_lo = float(dem.heights_m.min())
    h_range = float(dem.heights_m.max()) - h_lo

    # rays of the image boundary and centre, down to the lowest surface the DEM holds
    uv = _boundary_uv(camera)
    d_me = camera.rays_cam(uv) @ R_cm
    t = _ray_sphere(p_me, d_me, MOON_RADIUS_M + h_lo)
    if np.any(~np.isfinite(t)):
        raise InputError("camera view reaches past the Moon's limb: expected a view wholly on the surface")
    hits = p_me + t[:, None] * d_me
    t_c = _ray_sphere(p_me, d_me[-1:], MOON_RADIUS_M)[0]
    centre = p_me + t_c * d_me[-1]
    lat0, lon0, _ = moon_me_to_latlon(centre)
    B = enu_basis_me(lat0, lon0)  # rows east, north, up: x_L = B (x_me - origin)
    origin = MOON_RADIUS_M * B[2]
    cap = np.arccos(np.clip(hits @ B[2] / np.linalg.norm(hits, axis=1), -1.0, 1.0)).max()
    if cap > _MAX_CAP_RAD:
        raise InputError(
            f"view spans {math.degrees(cap):.1f} deg of arc from its centre: expected at most 60 deg "
            "(a narrower field of view or a lower camera)"
        )
    sun_me = _sun_me(B, sun_dir_me, sun_elevation_deg, sun_azimuth_deg)
    sun_l = B @ sun_me
    p_l = B @ (p_me - origin)
    hit_l = (hits - origin) @ B.T

    # grid spacing: the finest ground sample of the image; grown toward the Sun by the reach of shadows
    dx = float(np.nanmin(t) / max(camera.fx, camera.fy))
    horiz = math.hypot(sun_l[0], sun_l[1])
    up_hits = hits / np.linalg.norm(hits, axis=1, keepdims=True)
    el_min = math.asin(float(np.clip((up_hits @ sun_me).min(), -1.0, 1.0)))
    # a caster farther than sqrt(2 R dh) lies below the horizon of any point it could shade
    reach = math.sqrt(2.0 * MOON_RADIUS_M * h_range)
    if el_min > 0:
        reach = min(reach, h_range / math.tan(el_min))
    pad = 4.0 * dx
    x_lo, x_hi = hit_l[:, 0].min() - pad, hit_l[:, 0].max() + pad
    y_lo, y_hi = hit_l[:, 1].min() - pad, hit_l[:, 1].max() + pad
    if horiz > 1e-9:
        x_lo, x_hi = x_lo + min(0.0, sun_l[0] / horiz) * reach, x_hi + max(0.0, sun_l[0] / horiz) * reach
        y_lo, y_hi = y_lo + min(0.0, sun_l[1] / horiz) * reach, y_hi + max(0.0, sun_l[1] / horiz) * reach
    lim = MOON_RADIUS_M * math.sin(_MAX_CAP_RAD + 0.1)
    x_lo, x_hi, y_lo, y_hi = max(x_lo, -lim), min(x_hi, lim), max(y_lo, -lim), min(y_hi, lim)
    cells = (x_hi - x_lo) * (y_hi - y_lo) / dx**2
    if cells > max_grid_cells:
        dx *= math.sqrt(cells / max_grid_cells)
    grid = Grid.covering(x_lo, x_hi, y_lo, y_hi, dx)
    z = _height_field(
        dem.heights_m, dem.lon_west_deg, dem.step_deg, dem.pole_heights_m, B,
        grid.x0, grid.y0, grid.dx, grid.nx, grid.ny,
    )  # fmt: skip
    shade = _shade_grid(z, grid, sun_l, p_l)

    dirs = np.ascontiguousarray(camera.rays_cam(camera.pixel_grid().reshape(-1, 2)) @ (R_cm @ B.T))
    out = np.empty(dirs.shape[0])
    hit = np.empty((dirs.shape[0], 3))
    _raycast(dirs, p_l, z, shade, grid.x0, grid.y0, grid.dx, float(z.min()), float(z.max()), out, hit)
    radiance = out.reshape(camera.height, camera.width)
    image = _expose(radiance, sensor or SensorSpec(), rng)
    ground = (origin + hit @ B).reshape(camera.height, camera.width, 3)
    return GlobeView(
        image=image,
        camera=camera,
        R_cam_from_me=R_cm,
        r_me_m=p_me,
        sun_dir_me=sun_me,
        ground_me_m=ground,
        centre_lat_deg=float(np.degrees(lat0)),
        centre_lon_deg=float((np.degrees(lon0) + 180.0) % 360.0 - 180.0),
        grid_dx_m=float(grid.dx),
    )


def _expose(radiance: NDArray, sensor: SensorSpec, rng: np.random.Generator | None) -> NDArray[np.float32]:
    """Auto-exposure, PSF blur, optional shot/read noise and quantisation: the sensor model of render.py."""
    lit = radiance[radiance > 0]
    ref = np.percentile(lit, sensor.exposure_percentile) if lit.size else 1.0
    signal = radiance * (sensor.exposure_level / max(ref, 1e-12))
    if sensor.psf_sigma_px > 0:
        signal = ndimage.gaussian_filter(signal, sensor.psf_sigma_px, mode="nearest")
    if rng is not None:
        electrons = rng.poisson(np.clip(signal, 0, None) * sensor.full_well_e).astype(float)
        electrons += rng.normal(0.0, sensor.read_noise_e, electrons.shape)
        top = (1 << sensor.bits) - 1
        signal = np.clip(np.rint(electrons / sensor.full_well_e * top), 0, top) / top
    return np.clip(signal, 0.0, 1.0).astype(np.float32)


def render_nadir(
    dem: GlobalDEM,
    lat_deg: float,
    lon_deg: float,
    altitude_m: float,
    size_px: int,
    fov_deg: float,
    sun_elevation_deg: float,
    sun_azimuth_deg: float,
    sensor: SensorSpec | None = None,
    rng: np.random.Generator | None = None,
) -> GlobeView:
    """Render a square nadir view (north up) from altitude_m above the sphere at lat/lon (deg), with the
    given image size (px), horizontal field of view (deg) and Sun elevation/azimuth (deg) at its centre."""
    camera = Camera.from_fov(size_px, size_px, fov_deg)
    R, r = nadir_pose(lat_deg, lon_deg, altitude_m)
    return render_view(
        dem, camera, R, r, sun_elevation_deg=sun_elevation_deg, sun_azimuth_deg=sun_azimuth_deg,
        sensor=sensor, rng=rng,
    )  # fmt: skip


# ------------------------------------------------------------------------------------ catalogue craters

_KEEP = ("whole", "centre", "any")


def project_craters(
    catalog: pd.DataFrame, view: GlobeView, dem: GlobalDEM | None = None, keep: str = "whole"
) -> pd.DataFrame:
    """Return the catalogue craters (lat_deg, lon_deg, diameter_m columns) facing the camera as image
    ellipses x_px, y_px, a_px, b_px, theta_rad (px, rad; conventions of ``kizuna lunar detect``).

    The rim is a circle of the catalogue diameter on the sphere's local horizontal plane, raised to the
    DEM's mean height along the rim when ``dem`` is given. ``keep``: "whole" keeps craters whose ellipse
    lies wholly inside the frame, "centre" those whose centre does, "any" every crater facing the camera
    near the view. The rows keep the catalogue's columns and index.
    """
    if keep not in _KEEP:
        raise InputError(f"keep={keep!r}: expected one of {', '.join(_KEEP)}")
    missing = [c for c in ("lat_deg", "lon_deg", "diameter_m") if c not in catalog.columns]
    if missing:
        raise InputError(f"catalogue table: missing columns {missing}; expected read_catalog's columns")
    lat = np.radians(catalog["lat_deg"].to_numpy(dtype=float))
    lon = np.radians(catalog["lon_deg"].to_numpy(dtype=float))
    diam = catalog["diameter_m"].to_numpy(dtype=float)
    up = latlon_to_moon_me(lat, lon) / MOON_RADIUS_M
    # near the view: within the ground's angular reach of the view centre, plus the crater's radius
    g = view.ground_me_m.reshape(-1, 3)
    c_up = latlon_to_moon_me(math.radians(view.centre_lat_deg), math.radians(view.centre_lon_deg))
    c_up = c_up / MOON_RADIUS_M
    reach = np.arccos(np.clip((g @ c_up) / np.linalg.norm(g, axis=1), -1.0, 1.0)).max()
    near = np.arccos(np.clip(up @ c_up, -1.0, 1.0)) <= reach + 0.5 * diam / MOON_RADIUS_M + 1e-3
    # facing: the camera above the rim's horizontal plane (the limb bounds what a sphere shows)
    near &= (up @ view.r_me_m - MOON_RADIUS_M) > 0
    height = np.zeros(len(catalog))
    if dem is not None and near.any():
        height[near] = _rim_height(dem, lat[near], lon[near], diam[near])
    X = up * (MOON_RADIUS_M + height)[:, None]
    ell = np.full((len(catalog), 5), np.nan)
    if near.any():
        ell[near] = project_circles(
            X[near], 0.5 * diam[near], view.camera, view.R_cam_from_me, view.r_me_m, up[near]
        )
    x, y, a, b, th = ell.T
    w, h = view.camera.width, view.camera.height
    ok = near & np.all(np.isfinite(ell), axis=1)
    with np.errstate(invalid="ignore"):
        if keep == "whole":
            hx = np.sqrt((a * np.cos(th)) ** 2 + (b * np.sin(th)) ** 2)
            hy = np.sqrt((a * np.sin(th)) ** 2 + (b * np.cos(th)) ** 2)
            ok &= (x - hx >= -0.5) & (x + hx <= w - 0.5) & (y - hy >= -0.5) & (y + hy <= h - 0.5)
        elif keep == "centre":
            ok &= (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)
    out = catalog.loc[ok].copy()
    for k, name in enumerate(("x_px", "y_px", "a_px", "b_px", "theta_rad")):
        out[name] = ell[ok, k]
    return out


def _rim_height(
    dem: GlobalDEM, lat: NDArray, lon: NDArray, diam: NDArray, n: int = 24
) -> NDArray[np.float64]:
    """Mean DEM height (m) along each rim: n points at D/2 of great-circle distance around the centre."""
    d = (0.5 * diam / MOON_RADIUS_M)[:, None]
    az = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)[None, :]
    la = lat[:, None]
    lat_r = np.arcsin(np.sin(la) * np.cos(d) + np.cos(la) * np.sin(d) * np.cos(az))
    lon_r = lon[:, None] + np.arctan2(
        np.sin(az) * np.sin(d) * np.cos(la), np.cos(d) - np.sin(la) * np.sin(lat_r)
    )
    return dem.height(np.degrees(lat_r), np.degrees(lon_r)).mean(axis=1)


def crater_relief(
    dem: GlobalDEM, lat_deg: ArrayLike, lon_deg: ArrayLike, diameter_m: ArrayLike
) -> NDArray[np.float64]:
    """Return each crater's relief in the DEM over its diameter: mean height (m) on the rim band 0.9-1.3 R
    less that of the floor disc within 0.6 R (area-weighted rings of 32 points), divided by D (m).

    These are the bands of :mod:`kizuna.lunar.nav.ring_detect`'s rim-height transform, measured on the
    heights themselves rather than through shading: what a shading detector can at best see of a crater.
    """
    lat = np.radians(np.atleast_1d(np.asarray(lat_deg, dtype=float)))
    lon = np.radians(np.atleast_1d(np.asarray(lon_deg, dtype=float)))
    diam = np.atleast_1d(np.asarray(diameter_m, dtype=float))
    if not (lat.shape == lon.shape == diam.shape) or np.any(~(diam > 0)):
        raise InputError("crater_relief: expected matching lat_deg, lon_deg and positive diameter_m (m)")

    def band(qs: NDArray) -> NDArray[np.float64]:
        w = np.maximum(qs, 0.05)  # ring weights by radius (area), the centre point a small disc
        total = np.zeros(lat.shape)
        for q, wq in zip(qs, w, strict=True):
            d = (q * 0.5 * diam / MOON_RADIUS_M)[:, None]
            az = np.linspace(0.0, 2.0 * math.pi, 32, endpoint=False)[None, :]
            la = lat[:, None]
            lat_r = np.arcsin(np.sin(la) * np.cos(d) + np.cos(la) * np.sin(d) * np.cos(az))
            lon_r = lon[:, None] + np.arctan2(
                np.sin(az) * np.sin(d) * np.cos(la), np.cos(d) - np.sin(la) * np.sin(lat_r)
            )
            total += wq * dem.height(np.degrees(lat_r), np.degrees(lon_r)).mean(axis=1)
        return total / w.sum()

    rim = band(np.round(np.arange(0.9, 1.31, 0.1), 10))
    floor = band(np.round(np.arange(0.0, 0.61, 0.1), 10))
    return (rim - floor) / diam
