"""Navigation-camera images of the synthetic terrain: lunar-Lambert shading, cast shadows, sensor model.

Pipeline for one frame:
1. the camera footprint on the ground fixes a height grid (frame L) at the image's finest ground sample
   distance, grown toward the Sun so that terrain outside the view can cast shadows into it;
2. each cell is shaded with the lunar-Lambert law (McEwen 1991), with the limb-darkening weight L(phase)
   of McEwen's polynomial, and darkened where a sweep along the Sun's azimuth finds it in shadow;
3. a ray through every pixel is marched to its first crossing of the height field (occlusion included)
   and takes the shade there;
4. the sensor adds a Gaussian point-spread function, shot and read noise, and quantises.

The grid sweep and the ray marching are written by hand with numba: no library ray-casts a height field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from kizuna.core.camera import Camera
from kizuna.errors import InputError
from kizuna.lunar.nav.terrain import Grid, Terrain

__all__ = ["SensorSpec", "Frame", "render", "sun_direction_l", "lunar_lambert_weight", "ground_footprint"]


def sun_direction_l(azimuth_deg: float, elevation_deg: float) -> NDArray[np.float64]:
    """Return the unit vector toward the Sun in frame L from azimuth (deg from north toward east) and
    elevation (deg)."""
    az = math.radians(azimuth_deg)
    el = math.radians(elevation_deg)
    return np.array([math.cos(el) * math.sin(az), math.cos(el) * math.cos(az), math.sin(el)])


def lunar_lambert_weight(phase_rad: ArrayLike) -> NDArray[np.float64]:
    """Return the lunar-Lambert limb-darkening weight L(phase) of McEwen (1991), phase in rad.

    McEwen, A. S. (1991), Photometric functions for photoclinometry and other applications, Icarus 92,
    298-311: L(a) = 1 - 0.019 a + 2.42e-4 a^2 - 1.46e-6 a^3 with a in degrees.
    """
    a = np.degrees(np.asarray(phase_rad, dtype=float))
    return np.vectorize(_ll_weight_deg, otypes=[float])(a)


@nb.njit(cache=True)
def _ll_weight_deg(a: float) -> float:
    return min(1.0, max(0.0, 1.0 - 0.019 * a + 2.42e-4 * a * a - 1.46e-6 * a * a * a))


@dataclass(frozen=True)
class SensorSpec:
    """Image sensor: full well (e-), read noise (e-), bits, PSF sigma (px), auto-exposure target."""

    full_well_e: float = 20_000.0
    read_noise_e: float = 15.0
    bits: int = 10
    psf_sigma_px: float = 0.6
    exposure_percentile: float = 99.5
    exposure_level: float = 0.8

    def __post_init__(self) -> None:
        if not (1 <= self.bits <= 16):
            raise InputError(f"sensor bits={self.bits}: expected 1..16")
        if self.full_well_e <= 0 or self.read_noise_e < 0 or self.psf_sigma_px < 0:
            raise InputError("sensor full_well_e must be > 0, read_noise_e and psf_sigma_px >= 0")


@dataclass(frozen=True)
class Frame:
    """A rendered frame: image in [0, 1] (float32, H x W), its pose and the grid spacing used (m)."""

    image: NDArray[np.float32]
    camera: Camera
    R_cw: NDArray[np.float64]
    p_w: NDArray[np.float64]
    sun_dir_l: NDArray[np.float64]
    grid_dx_m: float
    hit_l: NDArray[np.float32]

    def to_uint(self, bits: int = 16) -> NDArray[np.uint16]:
        """Return the image as unsigned integers with the given bit depth (8 or 16)."""
        top = (1 << bits) - 1
        dtype = np.uint8 if bits <= 8 else np.uint16
        return np.clip(np.rint(self.image * top), 0, top).astype(dtype)


def ground_footprint(
    camera: Camera, R_cw: NDArray, p_w: NDArray, z_ground: float, n_edge: int = 16
) -> tuple[float, float, float, float, float]:
    """Return (x_min, x_max, y_min, y_max, gsd_min) of the view on the plane z = z_ground (m, frame L).

    Rays that miss the plane (above the horizon) raise InputError: the renderer wants a downward view.
    """
    w, h = camera.width, camera.height
    t = np.linspace(0.0, 1.0, n_edge)
    u = np.concatenate([t * (w - 1), np.full(n_edge, w - 1.0), t[::-1] * (w - 1), np.zeros(n_edge)])
    v = np.concatenate([np.zeros(n_edge), t * (h - 1), np.full(n_edge, h - 1.0), t[::-1] * (h - 1)])
    uv = np.stack([np.append(u, camera.cx), np.append(v, camera.cy)], -1)
    d_w = camera.rays_cam(uv) @ np.asarray(R_cw)
    height = p_w[2] - z_ground
    if height <= 0:
        raise InputError(
            f"camera height {height:.1f} m above the ground: expected the camera above the terrain"
        )
    if np.any(d_w[:, 2] >= -1e-3):
        raise InputError("camera view reaches above the horizon: expected a downward-looking camera")
    s = height / -d_w[:, 2]
    pts = p_w[None, :2] + s[:, None] * d_w[:, :2]
    # ground sample distance: range / focal length, shortest range is the finest
    gsd = float(np.min(s) / max(camera.fx, camera.fy))
    return float(pts[:, 0].min()), float(pts[:, 0].max()), float(pts[:, 1].min()), float(pts[:, 1].max()), gsd


@nb.njit(cache=True)
def _sweep_shadow(z, step, drop):
    """Lit (1) / shadowed (0) along rows; the Sun lies toward row index 0; drop = step * tan(el)."""
    ny, nx = z.shape
    lit = np.ones((ny, nx), dtype=np.float32)
    for j in range(ny):
        m = -np.inf
        for i in range(nx):
            m = m - drop
            if z[j, i] < m:
                lit[j, i] = 0.0
            else:
                m = z[j, i]
    return lit


@nb.njit(cache=True, inline="always")
def _bilinear(a, gx, gy):
    ny, nx = a.shape
    if gx < 0.0:
        gx = 0.0
    if gy < 0.0:
        gy = 0.0
    if gx > nx - 1.000001:
        gx = nx - 1.000001
    if gy > ny - 1.000001:
        gy = ny - 1.000001
    i = int(gx)
    j = int(gy)
    fx = gx - i
    fy = gy - j
    top = a[j, i] + fx * (a[j, i + 1] - a[j, i])
    bot = a[j + 1, i] + fx * (a[j + 1, i + 1] - a[j + 1, i])
    return top + fy * (bot - top)


@nb.njit(cache=True, parallel=True)
def _rotated_sample(a, cx, cy, ax0, ax1, p0, p1, half, n, fill):
    """Sample grid a bilinearly on an n x n grid rotated so that columns run along (ax0, ax1)."""
    ny, nx = a.shape
    out = np.empty((n, n))
    for r in nb.prange(n):
        sr = r - half
        for c in range(n):
            sc = c - half
            gx = cx + sc * ax0 + sr * p0
            gy = cy + sc * ax1 + sr * p1
            if gx < 0.0 or gy < 0.0 or gx > nx - 1 or gy > ny - 1:
                out[r, c] = fill
            else:
                out[r, c] = _bilinear(a, gx, gy)
    return out


@nb.njit(cache=True, parallel=True)
def _unrotate(lit_r, ny, nx, cx, cy, ax0, ax1, p0, p1, half):
    """Sample the rotated grid lit_r back at every cell of an ny x nx grid."""
    out = np.empty((ny, nx))
    for j in nb.prange(ny):
        for i in range(nx):
            col = (i - cx) * ax0 + (j - cy) * ax1 + half
            row = (i - cx) * p0 + (j - cy) * p1 + half
            out[j, i] = _bilinear(lit_r, col, row)
    return out


def _shadow_mask(z: NDArray, dx: float, sun_dir: NDArray) -> NDArray[np.float64]:
    """Return the lit fraction (0..1) of each cell of a height grid for a Sun direction in frame L.

    The grid is resampled so that rows run away from the Sun, swept once with a running maximum of the
    shadow line, and sampled back (bilinear, which softens the edge much as the Sun's 0.5 deg disc does).
    """
    horiz = math.hypot(sun_dir[0], sun_dir[1])
    el = math.atan2(sun_dir[2], horiz)
    if horiz < 1e-9:
        return np.ones_like(z)
    ax0, ax1 = -sun_dir[0] / horiz, -sun_dir[1] / horiz  # direction of travel, away from the Sun
    p0, p1 = -ax1, ax0
    ny, nx = z.shape
    cx, cy = (nx - 1) / 2.0, (ny - 1) / 2.0
    half = 0.5 * math.hypot(nx, ny) + 1.0
    n = int(math.ceil(2 * half)) + 1
    zr = _rotated_sample(z, cx, cy, ax0, ax1, p0, p1, half, n, -1e30)
    lit_r = _sweep_shadow(zr, dx, dx * math.tan(el))
    return _unrotate(lit_r.astype(np.float64), ny, nx, cx, cy, ax0, ax1, p0, p1, half)


@nb.njit(cache=True)
def _block_max(z, B):
    """Maximum of z over each B x B block, dilated by one block (a conservative ceiling)."""
    ny, nx = z.shape
    my = (ny + B - 1) // B
    mx = (nx + B - 1) // B
    m = np.full((my, mx), -np.inf)
    for j in range(ny):
        for i in range(nx):
            v = z[j, i]
            if v > m[j // B, i // B]:
                m[j // B, i // B] = v
    d = m.copy()
    for j in range(my):
        for i in range(mx):
            v = m[j, i]
            for jj in range(max(0, j - 1), min(my, j + 2)):
                for ii in range(max(0, i - 1), min(mx, i + 2)):
                    v = max(v, m[jj, ii])
            d[j, i] = v
    return d


@nb.njit(cache=True, inline="always")
def _ray_f(p, t, dxr, dyr, dzr, z, x0, y0, dx):
    return p[2] + t * dzr - _bilinear(z, (p[0] + t * dxr - x0) / dx, (p[1] + t * dyr - y0) / dx)


@nb.njit(cache=True, parallel=True)
def _raycast(dirs, p, z, shade, x0, y0, dx, zmin, zmax, out, hit):
    """March each ray from p along dirs (frame L) to the height field; take the shade at the crossing.

    Steps of 0.7 cell find the first crossing (so nearer terrain occludes farther terrain); blocks whose
    ceiling lies below the ray are skipped whole; bisection refines the crossing.
    """
    B = 16
    ceil = _block_max(z, B)
    ny, nx = z.shape
    n = dirs.shape[0]
    for k in nb.prange(n):
        dxr = dirs[k, 0]
        dyr = dirs[k, 1]
        dzr = dirs[k, 2]
        if dzr >= 0.0:
            out[k] = 0.0
            hit[k, 0] = np.nan
            hit[k, 1] = np.nan
            hit[k, 2] = np.nan
            continue
        t0 = max(0.0, (zmax - p[2]) / dzr)
        t_end = (zmin - p[2]) / dzr
        horiz = math.sqrt(dxr * dxr + dyr * dyr)
        dt = 0.7 * dx / horiz if horiz > 1e-12 else t_end - t0
        dt = min(dt, t_end - t0 + 1e-9)
        big = dt * (B - 1)
        ta = t0
        found = False
        tb = ta
        while ta < t_end + dt:
            # skip ahead while the ray is above the ceiling of its block
            gx = (p[0] + ta * dxr - x0) / dx
            gy = (p[1] + ta * dyr - y0) / dx
            bi = min(max(int(gx) // B, 0), ceil.shape[1] - 1)
            bj = min(max(int(gy) // B, 0), ceil.shape[0] - 1)
            if p[2] + (ta + big) * dzr > ceil[bj, bi] and ta + big < t_end:
                ta += big
                continue
            tb = ta + dt
            if _ray_f(p, tb, dxr, dyr, dzr, z, x0, y0, dx) <= 0.0:
                found = True
                break
            ta = tb
        if not found:
            tb = t_end
        for _ in range(14):  # bisection on the bracketing step
            tm = 0.5 * (ta + tb)
            if _ray_f(p, tm, dxr, dyr, dzr, z, x0, y0, dx) > 0.0:
                ta = tm
            else:
                tb = tm
        t = 0.5 * (ta + tb)
        hx = p[0] + t * dxr
        hy = p[1] + t * dyr
        out[k] = _bilinear(shade, (hx - x0) / dx, (hy - y0) / dx)
        hit[k, 0] = hx
        hit[k, 1] = hy
        hit[k, 2] = p[2] + t * dzr


@nb.njit(cache=True, parallel=True)
def _shade_kernel(z, x0, y0, dx, sx, sy, sz, px, py, pz, lit):
    """Lunar-Lambert radiance (normal albedo 1) of every cell, times its lit fraction."""
    ny, nx = z.shape
    out = np.empty((ny, nx))
    for j in nb.prange(ny):
        jm = max(j - 1, 0)
        jp = min(j + 1, ny - 1)
        for i in range(nx):
            im = max(i - 1, 0)
            ip = min(i + 1, nx - 1)
            gx = (z[j, ip] - z[j, im]) / ((ip - im) * dx)
            gy = (z[jp, i] - z[jm, i]) / ((jp - jm) * dx)
            inv = 1.0 / math.sqrt(gx * gx + gy * gy + 1.0)
            nxv, nyv, nzv = -gx * inv, -gy * inv, inv
            mu0 = nxv * sx + nyv * sy + nzv * sz
            if mu0 <= 0.0 or lit[j, i] <= 0.0:
                out[j, i] = 0.0
                continue
            vx = px - (x0 + i * dx)
            vy = py - (y0 + j * dx)
            vz = pz - z[j, i]
            vn = 1.0 / math.sqrt(vx * vx + vy * vy + vz * vz)
            vx *= vn
            vy *= vn
            vz *= vn
            mu = max(nxv * vx + nyv * vy + nzv * vz, 1e-3)
            cosg = min(1.0, max(-1.0, vx * sx + vy * sy + vz * sz))
            L = _ll_weight_deg(math.degrees(math.acos(cosg)))
            out[j, i] = (2.0 * L * mu0 / (mu0 + mu) + (1.0 - L) * mu0) * lit[j, i]
    return out


def _shade_grid(z: NDArray, grid: Grid, sun_dir: NDArray, p_w: NDArray) -> NDArray[np.float64]:
    """Return lunar-Lambert radiance (relative, normal albedo 1) of each cell, shadows applied."""
    lit = _shadow_mask(z, grid.dx, sun_dir)
    return _shade_kernel(z, grid.x0, grid.y0, grid.dx, *map(float, sun_dir), *map(float, p_w), lit)


def render(
    terrain: Terrain,
    camera: Camera,
    R_cw: ArrayLike,
    p_w: ArrayLike,
    sun_dir_l: ArrayLike,
    sensor: SensorSpec | None = None,
    rng: np.random.Generator | None = None,
    max_grid_cells: int = 6_000_000,
) -> Frame:
    """Render the terrain seen by a camera at pose (R_cw, p_w) in frame L, lit from sun_dir_l.

    ``sensor`` (default ``SensorSpec()``) sets the auto-exposure and the PSF blur; with ``rng``, shot and
    read noise and quantisation are added too. ``Frame.hit_l`` holds the ground point of every pixel.
    """
    R_cw = np.asarray(R_cw, dtype=float)
    p_w = np.asarray(p_w, dtype=float)
    sun = np.asarray(sun_dir_l, dtype=float)
    sun = sun / np.linalg.norm(sun)
    if not np.all(np.isfinite(p_w)) or not np.all(np.isfinite(R_cw)):
        raise InputError("camera pose contains NaN or infinity: expected finite position and rotation")
    z_below = float(terrain.height(p_w[0], p_w[1], resolution_m=1.0))
    if p_w[2] <= z_below + 0.5:
        raise InputError(
            f"camera at z={p_w[2]:.2f} m is below or on the terrain (surface z={z_below:.2f} m): "
            "expected a pose above the ground"
        )
    x_min, x_max, y_min, y_max, gsd = ground_footprint(camera, R_cw, p_w, z_below)
    dx = gsd
    width = max(x_max - x_min, y_max - y_min)
    # terrain upsun of the view can shadow it: grow the grid toward the Sun
    el = math.atan2(sun[2], math.hypot(sun[0], sun[1]))
    reach = min(0.5 * width, 0.08 * width / max(math.tan(el), 1e-3))
    pad = 4.0 * dx
    bx = (x_min - pad + min(0.0, sun[0]) * reach, x_max + pad + max(0.0, sun[0]) * reach)
    by = (y_min - pad + min(0.0, sun[1]) * reach, y_max + pad + max(0.0, sun[1]) * reach)
    cells = (bx[1] - bx[0]) * (by[1] - by[0]) / dx**2
    if cells > max_grid_cells:
        dx *= math.sqrt(cells / max_grid_cells)
    grid = Grid.covering(bx[0], bx[1], by[0], by[1], dx)
    z = terrain.height_grid(grid)
    shade = _shade_grid(z, grid, sun, p_w)

    uv = camera.pixel_grid().reshape(-1, 2)
    dirs = np.ascontiguousarray(camera.rays_cam(uv) @ R_cw)
    out = np.empty(dirs.shape[0])
    hit = np.empty((dirs.shape[0], 3))
    _raycast(dirs, p_w, z, shade, grid.x0, grid.y0, grid.dx, float(z.min()), float(z.max()), out, hit)
    radiance = out.reshape(camera.height, camera.width)

    sensor = sensor or SensorSpec()
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
    image = np.clip(signal, 0.0, 1.0).astype(np.float32)
    return Frame(
        image=image,
        camera=camera,
        R_cw=R_cw,
        p_w=p_w,
        sun_dir_l=sun,
        grid_dx_m=float(grid.dx),
        hit_l=hit.reshape(camera.height, camera.width, 3).astype(np.float32),
    )
