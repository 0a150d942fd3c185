"""Terrain horizons: the elevation angle of the skyline in many azimuths for every cell of a DEM.

Grid and azimuth convention
---------------------------
Heights ``heights_m[row, col]`` (m above the 1,737,400 m reference sphere) sit on the nodes of a
square grid of spacing ``dx_m`` (a cell centre is a node). The azimuth is a *grid* azimuth, measured
from the direction of decreasing row index toward increasing column index (clockwise as the array is
displayed with row 0 on top). For a north-up raster (transform ``e < 0``), as polar stereographic
GeoTIFFs are, that is from the map's +y axis toward its +x axis; :func:`horizons_from_raster` flips
other raster orientations so this holds. Turning grid azimuths into true azimuths is left to the
illumination step, which knows the projection.

Geometry (exact on the sphere)
------------------------------
The grid distance ``d`` between the observer and a terrain point is taken as the arc length on the
sphere, so the central angle is ``theta = d / R``. In the plane through the Moon's centre, the observer
(radius ``r_o = R + h_o``, ``h_o`` = ground height + observer height) and the target (radius
``r_t = R + h_t``), the observer is at ``(0, r_o)`` and the target at ``(r_t sin theta, r_t cos theta)``.
The elevation of the target above the observer's local horizontal plane is therefore exactly

    el = atan2(r_t cos(theta) - r_o, r_t sin(theta))
       = atan2(h_t cos(theta) - R (1 - cos(theta)) - h_o, (R + h_t) sin(theta)),

the second form being the one evaluated (``1 - cos`` as ``2 sin^2(theta/2)`` keeps full precision). For
small angles it reduces to ``(h_t - h_o - d^2 / (2R)) / d``: the familiar curvature drop. The horizon
in an azimuth is the maximum of ``el`` over the whole ray, to the edge of the map.

Ray march
---------
Terrain between nodes is the bilinear interpolant. Each ray is sampled at every crossing of a grid line
(where the bilinear surface is linear along the line, so ridges and rims that lie on grid lines are
hit exactly) and between consecutive crossings at sub-cell steps of at most half a cell (about 2.5
samples per cell). Inside a cell the bilinear surface is quadratic along the ray, h = h_i + g s + q s^2,
so the elevation can peak between samples only where q < dx^2 / (2R) (the curvature term); there the
peak is found in closed form, tau* = sqrt(A / (q - dx^2 / 2R)), and evaluated exactly. Observers on
the ground also get the tau -> 0 limit (the slope of the first cell). Because observers sit on nodes,
the sample offsets depend only on the azimuth and are computed once per azimuth. A ray stops early
when even the highest point of the map could no longer rise above the horizon found so far. Rays that
leave the map at once (edge cells looking outward) get -pi/2: no terrain was seen; pad maps (tiles
with overlap) so that the cells of interest see all of it.

Storage
-------
:class:`HorizonTable` keeps the elevations as int16 in units of :data:`ELEVATION_UNIT_RAD` (5e-5 rad,
0.0029 deg; rounding error <= 0.0014 deg, range +-93.9 deg), shaped (n_azimuths, rows, cols), and
reads and writes compressed ``.npz``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numba as nb
import numpy as np
from numpy.typing import ArrayLike, NDArray

from kizuna.core.constants import MOON_RADIUS_M
from kizuna.core.raster import Raster
from kizuna.errors import InputError

__all__ = [
    "ELEVATION_UNIT_RAD",
    "NOT_COMPUTED",
    "HorizonTable",
    "compute_horizons",
    "horizon_points",
    "horizons_from_raster",
]

ELEVATION_UNIT_RAD = 5e-5  # int16 storage unit of HorizonTable elevations (rad)
NOT_COMPUTED = -32768  # HorizonTable value of nodes left out by a mask
_FORMAT = "kizuna.horizon/1"
_NO_TERRAIN = -0.5 * math.pi
_SNAP = 1e-9  # cells: sample coordinates this close to a grid line are put on it
_BLOCK_SHIFT = 3  # rays pass over blocks of 2**_BLOCK_SHIFT cells square that cannot raise the horizon


# ------------------------------------------------------------------------------------------- numba kernels


@nb.njit(cache=True)
def _ray_samples(du, dv, tau_max, dx, radius):
    """Sample offsets of a ray from a node: crossings of grid lines and points between them.

    (du, dv) is the unit direction in (column, row) cells; tau is the distance in cells. Returns integer
    offsets (dr, dc), fractions (fr, fc) in [0, 1), tau, cos(theta), 1 - cos(theta) and sin(theta).
    """
    adu, adv = abs(du), abs(dv)
    su = 1 if du > 0 else -1
    sv = 1 if dv > 0 else -1
    nmax = 3 * (int(tau_max * adu) + int(tau_max * adv)) + 400
    dr = np.empty(nmax, np.int64)
    dc = np.empty(nmax, np.int64)
    fr = np.empty(nmax, np.float64)
    fc = np.empty(nmax, np.float64)
    tau = np.empty(nmax, np.float64)
    inf = np.inf
    kx, ky = 1, 1
    tx = kx / adu if adu > 0 else inf
    ty = ky / adv if adv > 0 else inf
    prev = 0.0
    n = 0
    while True:
        t = min(tx, ty)
        if t > tau_max:
            break
        # points inside the segment since the previous crossing (at least one), at most 0.5 cell apart
        seg = t - prev
        spacing = 0.5
        m = max(1, int(math.ceil(seg / spacing)) - 1)
        for j in range(m + 1):
            if j < m:
                tt = prev + seg * (j + 1) / (m + 1)
                u, v = tt * du, tt * dv
            else:  # the crossing itself, with the crossed coordinate exactly integral
                tt = t
                u, v = tt * du, tt * dv
                if tx <= ty * (1.0 + 1e-12):
                    u = float(kx * su)
                if ty <= tx * (1.0 + 1e-12):
                    v = float(ky * sv)
            ru, rv = float(round(u)), float(round(v))
            if abs(u - ru) < _SNAP:
                u = ru
            if abs(v - rv) < _SNAP:
                v = rv
            iu, iv = math.floor(u), math.floor(v)
            dc[n], fc[n] = iu, u - iu
            dr[n], fr[n] = iv, v - iv
            tau[n] = tt
            n += 1
        if abs(ty - tx) < 1e-12 * t:  # a node: both lines crossed at once
            kx += 1
            ky += 1
        elif tx < ty:
            kx += 1
        else:
            ky += 1
        tx = kx / adu if adu > 0 else inf
        ty = ky / adv if adv > 0 else inf
        prev = t
    theta = tau[:n] * (dx / radius)
    cs = np.cos(theta)
    omc = 2.0 * np.sin(0.5 * theta) ** 2
    sn = np.sin(theta)
    return dr[:n], dc[:n], fr[:n], fc[:n], tau[:n], cs, omc, sn


@nb.njit(cache=True, inline="always")
def _trig(th):
    """Return (cos, 1 - cos, sin) of th (rad): Taylor series to th^10 for |th| < 0.5 (error < 3e-13)."""
    if abs(th) >= 0.5:
        return math.cos(th), 2.0 * math.sin(0.5 * th) ** 2, math.sin(th)
    t2 = th * th
    omc = t2 * (0.5 - t2 * (1.0 / 24.0 - t2 * (1.0 / 720.0 - t2 * (1.0 / 40320.0 - t2 / 3628800.0))))
    sn = th * (1.0 - t2 * (1.0 / 6.0 - t2 * (1.0 / 120.0 - t2 * (1.0 / 5040.0 - t2 / 362880.0))))
    return 1.0 - omc, omc, sn


@nb.njit(cache=True, inline="always")
def _bilinear(z, v, u):
    """Bilinear height at fractional (row v, column u), or NaN outside the grid's nodes."""
    rows, cols = z.shape
    if not (0.0 <= v <= rows - 1 and 0.0 <= u <= cols - 1):
        return np.nan
    r0 = min(int(v), rows - 2)
    c0 = min(int(u), cols - 2)
    a = v - r0
    b = u - c0
    return (1.0 - a) * ((1.0 - b) * z[r0, c0] + b * z[r0, c0 + 1]) + a * (
        (1.0 - b) * z[r0 + 1, c0] + b * z[r0 + 1, c0 + 1]
    )


@nb.njit(cache=True, inline="always")
def _ray_max_tan(z, bmax, r, c, zo, du, dv, dx, dr, dc, fr, fc, tau, cs, omc, sn, hmax, tau_tan, radius):
    """Largest tan(elevation) along one ray from node (r, c) at height zo; -inf if no sample is inside."""
    rows, cols = z.shape
    best = -np.inf
    curv = dx * dx / (2.0 * radius)  # curvature drop per cell^2 of distance (m), small-angle
    cur_b = -1
    skip = False
    for i in range(dr.shape[0]):
        rr = r + dr[i]
        cc = c + dc[i]
        a = fr[i]
        b = fc[i]
        if rr < 0 or cc < 0 or rr >= rows or cc >= cols:
            break
        if (rr == rows - 1 and a > 0.0) or (cc == cols - 1 and b > 0.0):
            break
        # Blocks of _BLOCK x _BLOCK cells whose highest node cannot rise above the horizon found so far
        # are passed over. Seen from a lower observer, points at one height drop in elevation with
        # distance, so the bound is taken at the previous sample, before the ray entered the block; a
        # block no higher than the observer cannot beat a horizon at or above 0.
        blk = (rr >> _BLOCK_SHIFT) * bmax.shape[1] + (cc >> _BLOCK_SHIFT)
        if blk != cur_b:
            cur_b = blk
            hb = bmax[rr >> _BLOCK_SHIFT, cc >> _BLOCK_SHIFT]
            if i == 0 or best == -np.inf:
                skip = False
            elif hb <= zo:
                skip = best >= 0.0
            else:
                skip = hb * cs[i - 1] - radius * omc[i - 1] - zo < best * (radius + hb) * sn[i - 1]
        if skip:
            if (i & 7) == 0 and tau[i] > tau_tan:
                yb = hmax * cs[i] - radius * omc[i] - zo
                if yb < best * (radius + hmax) * sn[i]:
                    break
            continue
        r1 = rr + 1 if a > 0.0 else rr
        c1 = cc + 1 if b > 0.0 else cc
        z00, z01, z10, z11 = z[rr, cc], z[rr, c1], z[r1, cc], z[r1, c1]
        h = (1.0 - a) * ((1.0 - b) * z00 + b * z01) + a * ((1.0 - b) * z10 + b * z11)
        y = h * cs[i] - radius * omc[i] - zo
        x = (radius + h) * sn[i]
        t = y / x
        if t > best:
            best = t
        elif (i & 7) == 0 and tau[i] > tau_tan:
            # beyond the tangent distance of the highest terrain, its elevation only falls with distance
            yb = hmax * cs[i] - radius * omc[i] - zo
            if yb < best * (radius + hmax) * sn[i]:
                break
        # Inside the cell the bilinear height along the ray is h_i + g s + q s^2 (s = tau - tau_i), so the
        # elevation ~ (h - zo - curv tau^2) / tau peaks inside the cell only where q - curv < 0, at
        # tau* = sqrt(A / (q - curv)) with A the value of the numerator's constant term (A < 0).
        qq = z00 - z01 - z10 + z11
        q = qq * du * dv
        qe = q - curv
        if i == 0 and zo == z[r, c]:
            # an observer on the ground: as tau -> 0 the elevation tends to the slope of the first cell
            g0 = (z01 - z00 + qq * a) * du + (z10 - z00 + qq * b) * dv - 2.0 * q * tau[0]
            best = max(best, g0 / dx)
        if qe < 0.0 and r1 > rr and c1 > cc and (y - 2.0 * qe) > best * x:
            ti = tau[i]
            g = (z01 - z00 + qq * a) * du + (z10 - z00 + qq * b) * dv
            a0 = h - g * ti + q * ti * ti - zo
            if a0 < 0.0:
                ts = math.sqrt(a0 / qe)
                aa = a + (ts - ti) * dv
                bb = b + (ts - ti) * du
                if 0.0 <= aa <= 1.0 and 0.0 <= bb <= 1.0:
                    hs = (1.0 - aa) * ((1.0 - bb) * z00 + bb * z01) + aa * ((1.0 - bb) * z10 + bb * z11)
                    ct, omct, st = _trig(ts * dx / radius)
                    ts_tan = (hs * ct - radius * omct - zo) / ((radius + hs) * st)
                    if ts_tan > best:
                        best = ts_tan
    return best


@nb.njit(cache=True, inline="always")
def _tau_tangent(zo, hmax, radius, dx):
    """Distance (cells) past which the elevation of points at height hmax decreases, seen from zo."""
    if zo <= hmax:
        return 0.0
    return 2.0 * math.asin(math.sqrt((zo - hmax) / (2.0 * (radius + zo)))) * radius / dx


@nb.njit(cache=True, parallel=True)
def _grid_azimuth(
    z, bmax, h_obs, r0, c0, mask, du, dv, dr, dc, fr, fc, tau, cs, omc, sn, hmax, radius, dx, unit, out
):
    """Quantised horizon elevation in one azimuth of the nodes of a window whose first node is (r0, c0).

    Written into out (int16, window rows x cols), NOT_COMPUTED where mask is 0; rays run over all of z.
    """
    for i in nb.prange(out.shape[0]):
        r = r0 + i
        for j in range(out.shape[1]):
            if not mask[i, j]:
                out[i, j] = NOT_COMPUTED
                continue
            c = c0 + j
            zo = z[r, c] + h_obs
            tt = _tau_tangent(zo, hmax, radius, dx)
            best = _ray_max_tan(
                z, bmax, r, c, zo, du, dv, dx, dr, dc, fr, fc, tau, cs, omc, sn, hmax, tt, radius
            )
            el = math.atan(best) if best > -np.inf else -0.5 * math.pi
            q = round(el / unit)
            out[i, j] = max(-32767, min(32767, q))


@nb.njit(cache=True, parallel=True)
def _points_azimuth(
    z, bmax, h_obs, du, dv, rows_i, cols_i, dr, dc, fr, fc, tau, cs, omc, sn, hmax, radius, dx, out
):
    """Horizon elevation (rad) of the given nodes in one azimuth, written into out (float64, n_points)."""
    for k in nb.prange(rows_i.shape[0]):
        r, c = rows_i[k], cols_i[k]
        zo = z[r, c] + h_obs
        tt = _tau_tangent(zo, hmax, radius, dx)
        best = _ray_max_tan(z, bmax, r, c, zo, du, dv, dx, dr, dc, fr, fc, tau, cs, omc, sn, hmax, tt, radius)
        out[k] = math.atan(best) if best > -np.inf else -0.5 * math.pi


# ------------------------------------------------------------------------------------------------ checks


def _check_inputs(heights_m: ArrayLike, dx_m: float, observer_height_m: float) -> NDArray[np.float64]:
    """Return the heights as a C-contiguous float64 array; InputError for anything unusable."""
    z = np.ascontiguousarray(heights_m, dtype=np.float64)
    if z.ndim != 2 or min(z.shape) < 2:
        raise InputError(f"horizon DEM of shape {z.shape}: expected a 2-D grid of at least 2 x 2 heights (m)")
    bad = ~np.isfinite(z)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise InputError(
            f"horizon DEM: {int(bad.sum())} NaN or infinite heights (first at row {r}, column {c}); "
            "expected finite heights everywhere (fill the holes first)"
        )
    if not (math.isfinite(dx_m) and dx_m > 0.0):
        raise InputError(f"horizon grid spacing dx_m = {dx_m!r}: expected a positive number of metres")
    if not (math.isfinite(observer_height_m) and observer_height_m >= 0.0):
        raise InputError(
            f"horizon observer_height_m = {observer_height_m!r}: expected a height >= 0 m above the ground"
        )
    return z


def _block_max(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """Highest node of each block of cells (nodes 8i .. 8i+8 inclusive, so a block covers its cells)."""
    b = 1 << _BLOCK_SHIFT
    nr, nc = z.shape
    br, bc = (nr + b - 1) // b, (nc + b - 1) // b
    pad = np.full((br * b + 1, bc * b + 1), -np.inf)
    pad[:nr, :nc] = z
    core = pad[: br * b, : bc * b].reshape(br, b, bc, b).max(axis=(1, 3))
    # the next block's first row and column of nodes also bound the cells on this block's far edges
    edge_r = pad[b::b, : bc * b].reshape(br, bc, b).max(axis=2)
    edge_c = pad[: br * b, b::b].reshape(br, b, bc).max(axis=1)
    corner = pad[b::b, b::b]
    return np.maximum(np.maximum(core, edge_r), np.maximum(edge_c, corner))


def _direction(az: float) -> tuple[float, float]:
    """Unit step (columns, rows) of grid azimuth az (rad), with round-off below 1e-15 set to zero."""
    du, dv = math.sin(az), -math.cos(az)
    return (0.0 if abs(du) < 1e-15 else du), (0.0 if abs(dv) < 1e-15 else dv)


# -------------------------------------------------------------------------------------------- public API


@dataclass(frozen=True, eq=False)
class HorizonTable:
    """Horizon elevations of every grid node in n equally spaced grid azimuths, int16-quantised.

    ``elevation_q[k, row, col] * unit_rad`` is the horizon elevation (rad) at grid azimuth
    ``2 pi k / n`` (from the direction of decreasing row, i.e. map +y for north-up rasters, toward
    increasing column, map +x); -pi/2 where no terrain lies in that direction.
    """

    elevation_q: NDArray[np.int16]
    dx_m: float
    observer_height_m: float = 0.0
    unit_rad: float = ELEVATION_UNIT_RAD

    def __post_init__(self) -> None:
        q = np.asarray(self.elevation_q)
        if q.ndim != 3 or q.shape[0] < 4 or q.dtype != np.int16:
            raise InputError(
                f"horizon table of shape {q.shape} and type {q.dtype}: "
                "expected int16 of shape (n_azimuths >= 4, rows, cols)"
            )
        object.__setattr__(self, "elevation_q", q)

    @property
    def n_azimuths(self) -> int:
        """Return the number of azimuths."""
        return int(self.elevation_q.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """Return the grid shape (rows, cols)."""
        return int(self.elevation_q.shape[1]), int(self.elevation_q.shape[2])

    @property
    def azimuths_rad(self) -> NDArray[np.float64]:
        """Return the grid azimuths of the table (rad, 0 .. 2 pi)."""
        return 2.0 * np.pi * np.arange(self.n_azimuths) / self.n_azimuths

    def elevation(self, az_rad: ArrayLike) -> NDArray[np.float64]:
        """Return horizon elevation (rad) at grid azimuth az_rad, linear between the tabulated azimuths.

        A scalar azimuth gives a (rows, cols) map; an array of shape (rows, cols) gives each cell's
        horizon in its own azimuth.
        """
        az = np.asarray(az_rad, dtype=np.float64)
        if not np.all(np.isfinite(az)):
            raise InputError("horizon look-up: expected finite azimuths (rad)")
        n = self.n_azimuths
        k = np.mod(az, 2.0 * np.pi) * (n / (2.0 * np.pi))
        k0 = np.floor(k).astype(np.int64) % n
        w = k - np.floor(k)
        k1 = (k0 + 1) % n
        q = self.elevation_q
        if az.ndim == 0:
            e0, e1 = q[int(k0)].astype(np.float64), q[int(k1)].astype(np.float64)
        elif az.shape == self.shape:
            rr, cc = np.indices(self.shape)
            e0, e1 = q[k0, rr, cc].astype(np.float64), q[k1, rr, cc].astype(np.float64)
        else:
            raise InputError(
                f"horizon look-up: azimuths of shape {az.shape}; "
                f"expected a scalar or the grid shape {self.shape}"
            )
        return ((1.0 - w) * e0 + w * e1) * self.unit_rad

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the table to a compressed .npz file (written to a temporary name, then renamed)."""
        p = Path(path)
        tmp = p.with_name(p.name + ".tmp.npz")
        np.savez_compressed(
            tmp,
            format=np.array(_FORMAT),
            elevation_q=self.elevation_q,
            dx_m=np.float64(self.dx_m),
            observer_height_m=np.float64(self.observer_height_m),
            unit_rad=np.float64(self.unit_rad),
        )
        os.replace(tmp, p)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> HorizonTable:
        """Read a table written by :meth:`save`."""
        p = Path(path)
        try:
            with np.load(p, allow_pickle=False) as f:
                fmt = str(f["format"]) if "format" in f else ""
                if fmt != _FORMAT:
                    raise InputError(f"{p}: horizon table format {fmt!r}; expected {_FORMAT!r}")
                return cls(
                    f["elevation_q"],
                    float(f["dx_m"]),
                    float(f["observer_height_m"]),
                    float(f["unit_rad"]),
                )
        except InputError:
            raise
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(
                f"{p}: cannot read a horizon table ({exc}); expected a .npz from save()"
            ) from exc


def horizon_points(
    heights_m: ArrayLike,
    dx_m: float,
    rows: ArrayLike,
    cols: ArrayLike,
    azimuths_rad: ArrayLike,
    observer_height_m: float = 0.0,
    radius_m: float = MOON_RADIUS_M,
) -> NDArray[np.float64]:
    """Return horizon elevations (rad), shape (n_points, n_azimuths), of given nodes at any grid azimuths."""
    z = _check_inputs(heights_m, dx_m, observer_height_m)
    r_i = np.atleast_1d(np.asarray(rows)).astype(np.int64)
    c_i = np.atleast_1d(np.asarray(cols)).astype(np.int64)
    if r_i.shape != c_i.shape or r_i.ndim != 1:
        raise InputError(f"horizon points: rows {r_i.shape} and cols {c_i.shape}: expected equal 1-D shapes")
    nr, nc = z.shape
    if np.any((r_i < 0) | (r_i >= nr) | (c_i < 0) | (c_i >= nc)):
        raise InputError(f"horizon points: a row/column lies outside the {nr} x {nc} grid")
    az = np.atleast_1d(np.asarray(azimuths_rad, dtype=np.float64)).ravel()
    if not np.all(np.isfinite(az)):
        raise InputError("horizon points: expected finite azimuths (rad)")
    out = np.empty((r_i.size, az.size))
    tau_max = math.hypot(nr - 1, nc - 1) + 1.0
    hmax = float(z.max())
    bmax = _block_max(z)
    col = np.empty(r_i.size)
    for j, a in enumerate(az):
        du, dv = _direction(float(a))
        samples = _ray_samples(du, dv, tau_max, float(dx_m), float(radius_m))
        _points_azimuth(
            z,
            bmax,
            float(observer_height_m),
            du,
            dv,
            r_i,
            c_i,
            *samples,
            hmax,
            float(radius_m),
            float(dx_m),
            col,
        )
        out[:, j] = col
    return out


def compute_horizons(
    heights_m: ArrayLike,
    dx_m: float,
    n_azimuths: int = 360,
    observer_height_m: float = 0.0,
    radius_m: float = MOON_RADIUS_M,
    window: tuple[int, int, int, int] | None = None,
    mask: ArrayLike | None = None,
) -> HorizonTable:
    """Return the horizon table of the nodes of a DEM (heights in m above the sphere, spacing dx_m in m).

    ``window = (row0, row1, col0, col1)`` limits the table to rows row0:row1 and columns col0:col1
    (the rays still run over the whole grid); None means every node. ``mask`` (bool, the window's
    shape) leaves out the nodes where it is False: they hold :data:`NOT_COMPUTED`.
    """
    z = _check_inputs(heights_m, dx_m, observer_height_m)
    if int(n_azimuths) != n_azimuths or n_azimuths < 4:
        raise InputError(f"horizon n_azimuths = {n_azimuths!r}: expected an integer >= 4")
    n_az = int(n_azimuths)
    nr, nc = z.shape
    r0, r1, c0, c1 = (0, nr, 0, nc) if window is None else (int(v) for v in window)
    if not (0 <= r0 < r1 <= nr and 0 <= c0 < c1 <= nc):
        raise InputError(f"horizon window {window!r}: expected (row0, row1, col0, col1) inside {nr} x {nc}")
    out = np.empty((n_az, r1 - r0, c1 - c0), dtype=np.int16)
    if mask is None:
        m8 = np.ones(out.shape[1:], dtype=np.uint8)
    else:
        m8 = np.asarray(mask)
        if m8.shape != out.shape[1:]:
            raise InputError(f"horizon mask of shape {m8.shape}: expected the window shape {out.shape[1:]}")
        m8 = np.ascontiguousarray(m8.astype(bool), dtype=np.uint8)
    tau_max = math.hypot(nr - 1, nc - 1) + 1.0
    hmax = float(z.max())
    bmax = _block_max(z)
    for k in range(n_az):
        du, dv = _direction(2.0 * math.pi * k / n_az)
        samples = _ray_samples(du, dv, tau_max, float(dx_m), float(radius_m))
        _grid_azimuth(
            z,
            bmax,
            float(observer_height_m),
            r0,
            c0,
            m8,
            du,
            dv,
            *samples,
            hmax,
            float(radius_m),
            float(dx_m),
            ELEVATION_UNIT_RAD,
            out[k],
        )
    return HorizonTable(out, float(dx_m), float(observer_height_m))


def horizons_from_raster(
    raster: Raster, n_azimuths: int = 360, observer_height_m: float = 0.0, radius_m: float = MOON_RADIUS_M
) -> HorizonTable:
    """Return the horizon table of a projected DEM Raster (square cells, m); azimuths from map +y to +x."""
    t = raster.transform
    if t.b != 0.0 or t.d != 0.0:
        raise InputError(f"horizon DEM transform {tuple(t)[:6]}: expected an axis-aligned grid")
    if abs(abs(t.a) - abs(t.e)) > 1e-9 * abs(t.a):
        raise InputError(f"horizon DEM cells {t.a} x {t.e}: expected square cells")
    if raster.crs is None:
        raise InputError("horizon DEM has no CRS: expected a projected (e.g. polar stereographic) grid in m")
    from rasterio.crs import CRS

    try:
        crs = CRS.from_user_input(raster.crs)
    except Exception as exc:  # rasterio raises its own CRSError
        raise InputError(f"horizon DEM CRS {raster.crs!r}: not understood ({exc})") from exc
    if not crs.is_projected:
        raise InputError(f"horizon DEM CRS {raster.crs!r}: expected a projected grid in metres, not lon/lat")
    z = raster.data
    flip_r, flip_c = t.e > 0.0, t.a < 0.0
    if flip_r:
        z = z[::-1]
    if flip_c:
        z = z[:, ::-1]
    table = compute_horizons(z, abs(t.a), n_azimuths, observer_height_m, radius_m)
    q = table.elevation_q
    if flip_r:
        q = q[:, ::-1]
    if flip_c:
        q = q[:, :, ::-1]
    return HorizonTable(np.ascontiguousarray(q), table.dx_m, table.observer_height_m, table.unit_rad)
