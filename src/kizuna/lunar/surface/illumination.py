"""Sunlight and Earth visibility of every cell of a polar stereographic DEM, from its horizon table.

The Sun and the Earth are discs. Their centres come from the ephemeris (DE421 and the MOON_ME kernels,
:mod:`kizuna.core.ephemeris`) as vectors from the Moon's centre, corrected for light time and aberration;
each cell sees the body along ``target - site`` (exact parallax: 0.02 deg for the Earth across 150 km,
which a single direction for the whole map would miss). In each cell's local frame (unit vectors of
map +x, map +y and up, built from the projection with pyproj) the direction gives an elevation and a
grid azimuth, the azimuth convention of :mod:`kizuna.lunar.surface.horizon`.

The visible part of a disc of angular radius rho whose centre is at elevation ``el`` above a skyline
``h(az)`` is that of a disc cut by a straight line: the skyline is taken as straight across the disc,
with the slope of the tabulated horizon there (azimuth steps shrink by cos(el) on the sky), so the
signed distance of the centre above it is ``d = (el - h) / sqrt(1 + (h' / cos el)^2)`` and the visible
fraction is ``1 - (acos(u) - u sqrt(1 - u^2)) / pi`` with ``u = d / rho`` clipped to [-1, 1].

Statistics per cell over a time series (equal steps): mean visible fraction of the solar disc, the
fraction of steps with any of the Sun visible, the largest visible fraction (0 marks a permanently
shadowed cell), the longest run of steps with no Sun at all, the same for the Earth, and the fraction of
steps with both some Sun and some Earth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
from numpy.typing import ArrayLike, NDArray

from kizuna.core.constants import MOON_RADIUS_M, SUN_RADIUS_M
from kizuna.core.raster import Raster
from kizuna.errors import InputError
from kizuna.lunar.surface.horizon import NOT_COMPUTED, HorizonTable, polar_map_frame

__all__ = [
    "EARTH_RADIUS_M",
    "MapGeometry",
    "VisibilityStats",
    "disc_visible_fraction",
    "map_geometry",
    "sky_azel",
    "time_grid",
    "visibility_series",
    "visibility_stats",
]

# Earth's mean radius R1 (m), IUGG (Moritz 2000, Geodetic Reference System 1980): the Earth as a disc.
EARTH_RADIUS_M = 6_371_008.8

# Skyline bounds per azimuth sector let most (cell, time) pairs skip the azimuth look-up: a disc well
# above (below) the highest (lowest) skyline of its sector, padded by more than a disc's width in
# azimuth, is wholly visible (hidden).
_TAN_PI_8 = math.tan(math.pi / 8.0)
_TAN_PI_16 = math.tan(math.pi / 16.0)
_N_SECTORS = 256
# above this elevation the look-up is always made (the azimuth span of a disc grows as 1 / cos(el))
_FAST_MAX_SIN_EL = math.sin(math.radians(45.0))

_STAT_NAMES = (
    "sun_fraction",
    "sun_time_fraction",
    "sun_max_fraction",
    "max_darkness_steps",
    "earth_fraction",
    "earth_time_fraction",
    "max_earth_outage_steps",
    "both_time_fraction",
)


# ------------------------------------------------------------------------------------------- numba kernels


@nb.njit(cache=True, inline="always")
def _local(b, off, tx, ty, tz):
    """Target vector (m) in a cell's (map x, map y, up) frame: b @ t - off, b the 3x3 basis rows."""
    vx = b[0, 0] * tx + b[0, 1] * ty + b[0, 2] * tz - off[0]
    vy = b[1, 0] * tx + b[1, 1] * ty + b[1, 2] * tz - off[1]
    vu = b[2, 0] * tx + b[2, 1] * ty + b[2, 2] * tz - off[2]
    return vx, vy, vu


@nb.njit(cache=True, inline="always")
def _atan2(y, x):
    """atan2(y, x) in rad to within 1e-10, several times faster than the C library's.

    Written out because the look-up runs ~10^9 times a map: the ratio min/max in [0, 1] is reduced
    twice by the tangent subtraction formula, atan(t) = c + atan((t - tan c) / (1 + t tan c)), with
    c = pi/4 then pi/8, to |u| <= tan(pi/16), where the Taylor series to u^11 errs by < 7e-11.
    """
    ax = abs(x)
    ay = abs(y)
    hi = max(ax, ay)
    if hi == 0.0:
        return 0.0
    t = min(ax, ay) / hi
    base = 0.0
    if t > _TAN_PI_8:
        t = (t - 1.0) / (t + 1.0)
        base = 0.25 * math.pi
    if t > _TAN_PI_16:
        t = (t - _TAN_PI_8) / (1.0 + t * _TAN_PI_8)
        base += 0.125 * math.pi
    elif t < -_TAN_PI_16:
        t = (t + _TAN_PI_8) / (1.0 - t * _TAN_PI_8)
        base -= 0.125 * math.pi
    u2 = t * t
    r = base + t * (
        1.0 - u2 * (1.0 / 3.0 - u2 * (1.0 / 5.0 - u2 * (1.0 / 7.0 - u2 * (1.0 / 9.0 - u2 * (1.0 / 11.0)))))
    )
    if ay > ax:
        r = 0.5 * math.pi - r
    if x < 0.0:
        r = math.pi - r
    return -r if y < 0.0 else r


@nb.njit(cache=True, inline="always")
def _disc(u):
    """Visible fraction of a disc whose centre lies u radii above a straight skyline."""
    if u >= 1.0:
        return 1.0
    if u <= -1.0:
        return 0.0
    return 1.0 - (math.acos(u) - u * math.sqrt(1.0 - u * u)) / math.pi


@nb.njit(cache=True, inline="always")
def _fraction(hz, vx, vy, vu, body_radius_m):
    """Visible fraction of a body's disc seen along (vx, vy, vu) from a cell with horizon row hz (rad)."""
    n_az = hz.shape[0]
    horiz = math.sqrt(vx * vx + vy * vy)
    dist = math.sqrt(horiz * horiz + vu * vu)
    el = _atan2(vu, horiz)
    az = _atan2(vx, vy)
    if az < 0.0:
        az += 2.0 * math.pi
    k = az * (n_az / (2.0 * math.pi))
    k0 = int(k)
    if k0 >= n_az:
        k0 = n_az - 1
    w = k - k0
    k1 = k0 + 1 if k0 + 1 < n_az else 0
    h0 = hz[k0]
    dh = hz[k1] - h0
    slope = dh * (n_az / (2.0 * math.pi)) * dist / max(horiz, 1e-9 * dist)
    d = (el - (h0 + w * dh)) / math.sqrt(1.0 + slope * slope)
    # body_radius / dist <= the angular radius asin(.) <= 1.001 times it for any disc under 4 deg
    rho0 = body_radius_m / dist
    if d >= 1.001 * rho0:
        return 1.0
    if d <= -1.001 * rho0:
        return 0.0
    return _disc(d / math.asin(min(1.0, rho0)))


@nb.njit(cache=True, inline="always")
def _sector(vx, vy):
    """Sector of the direction (vx, vy): _N_SECTORS equal steps of the 'diamond' pseudo-angle.

    The pseudo-angle, quadrant + |vx| / (|vx| + |vy|) (with the roles swapped in odd quadrants), grows
    monotonically with the grid azimuth atan2(vx, vy) over [0, 4) and needs no arctangent.
    """
    a = abs(vx)
    b = abs(vy)
    s = a + b
    if s == 0.0:
        return 0
    if vx >= 0.0:
        p = a / s if vy >= 0.0 else 1.0 + b / s
    else:
        p = 2.0 + a / s if vy < 0.0 else 3.0 + b / s
    k = int(p * (_N_SECTORS / 4.0))
    return k if k < _N_SECTORS else _N_SECTORS - 1


@nb.njit(cache=True, inline="always")
def _pseudo_to_az(p):
    """Grid azimuth (rad) of a diamond pseudo-angle p in [0, 4] (inverse of the mapping in _sector)."""
    q = min(int(p), 3)
    f = p - q
    return q * 0.5 * math.pi + math.atan2(f, 1.0 - f)


@nb.njit(cache=True)
def _sector_bounds(hz, rho_max, s_lo, s_hi):
    """Sines of the lowest and highest skyline in each sector, widened by a disc's size (rho_max, rad).

    A disc of angular radius <= rho_max whose centre's sine of elevation exceeds s_hi of its sector is
    wholly above the skyline; below s_lo, wholly hidden (for centres below _FAST_MAX_SIN_EL). The
    extra last entries bound all sectors together.
    """
    n_az = hz.shape[0]
    # a disc of radius rho centred at elevation el spans +-rho / cos(el) in azimuth
    pad = 1.001 * rho_max / math.sqrt(1.0 - _FAST_MAX_SIN_EL**2)
    for k in range(_N_SECTORS):
        a0 = _pseudo_to_az(k * 4.0 / _N_SECTORS) - pad
        a1 = _pseudo_to_az((k + 1) * 4.0 / _N_SECTORS) + pad
        j0 = int(math.floor(a0 * n_az / (2.0 * math.pi)))
        j1 = int(math.ceil(a1 * n_az / (2.0 * math.pi)))
        lo = np.inf
        hi = -np.inf
        for j in range(j0, j1 + 1):
            h = hz[j % n_az]
            lo = min(lo, h)
            hi = max(hi, h)
        s_lo[k] = math.sin(max(-0.5 * math.pi, lo - 1.001 * rho_max))
        s_hi[k] = math.sin(min(0.5 * math.pi, hi + 1.001 * rho_max))
    s_lo[_N_SECTORS] = s_lo[:_N_SECTORS].min()
    s_hi[_N_SECTORS] = s_hi[:_N_SECTORS].max()


@nb.njit(cache=True, inline="always")
def _fraction_fast(hz, s_lo, s_hi, vx, vy, vu, body_radius_m):
    """_fraction, answered from the sector bounds where the disc is clear of the skyline.

    s_lo[_N_SECTORS] and s_hi[_N_SECTORS] hold the bounds of all sectors together, checked first.
    """
    dist = math.sqrt(vx * vx + vy * vy + vu * vu)
    sin_el = vu / dist
    if abs(sin_el) < _FAST_MAX_SIN_EL:
        if sin_el >= s_hi[_N_SECTORS]:
            return 1.0
        if sin_el <= s_lo[_N_SECTORS]:
            return 0.0
        k = _sector(vx, vy)
        if sin_el >= s_hi[k]:
            return 1.0
        if sin_el <= s_lo[k]:
            return 0.0
    return _fraction(hz, vx, vy, vu, body_radius_m)


@nb.njit(cache=True, parallel=True)
def _stats_kernel(hz_q, unit, basis, off, sun, sun_r, sun_rho_max, earth, earth_r, earth_rho_max, out):
    """Per-cell statistics (rows of out, see _STAT_NAMES) over the time series of sun and earth vectors."""
    n_cells = hz_q.shape[0]
    n_t = sun.shape[0]
    n_az = hz_q.shape[1]
    for i in nb.prange(n_cells):
        hz = np.empty(n_az)
        for k in range(n_az):
            hz[k] = hz_q[i, k] * unit
        sun_lo = np.empty(_N_SECTORS + 1)
        sun_hi = np.empty(_N_SECTORS + 1)
        earth_lo = np.empty(_N_SECTORS + 1)
        earth_hi = np.empty(_N_SECTORS + 1)
        _sector_bounds(hz, sun_rho_max, sun_lo, sun_hi)
        _sector_bounds(hz, earth_rho_max, earth_lo, earth_hi)
        b = basis[i]
        o = off[i]
        s_sum = 0.0
        s_lit = 0
        s_max = 0.0
        e_sum = 0.0
        e_vis = 0
        both = 0
        run_s = 0
        max_s = 0
        run_e = 0
        max_e = 0
        for t in range(n_t):
            vx, vy, vu = _local(b, o, sun[t, 0], sun[t, 1], sun[t, 2])
            fs = _fraction_fast(hz, sun_lo, sun_hi, vx, vy, vu, sun_r)
            vx, vy, vu = _local(b, o, earth[t, 0], earth[t, 1], earth[t, 2])
            fe = _fraction_fast(hz, earth_lo, earth_hi, vx, vy, vu, earth_r)
            s_sum += fs
            e_sum += fe
            if fs > s_max:
                s_max = fs
            if fs > 0.0:
                s_lit += 1
                run_s = 0
            else:
                run_s += 1
                if run_s > max_s:
                    max_s = run_s
            if fe > 0.0:
                e_vis += 1
                run_e = 0
                if fs > 0.0:
                    both += 1
            else:
                run_e += 1
                if run_e > max_e:
                    max_e = run_e
        out[0, i] = s_sum / n_t
        out[1, i] = s_lit / n_t
        out[2, i] = s_max
        out[3, i] = max_s
        out[4, i] = e_sum / n_t
        out[5, i] = e_vis / n_t
        out[6, i] = max_e
        out[7, i] = both / n_t


@nb.njit(cache=True, parallel=True)
def _series_kernel(hz_q, unit, basis, off, target, body_r, rho_max, out):
    """Visible fraction of one body's disc for every cell (columns of out) and time (rows of out)."""
    n_cells = hz_q.shape[0]
    n_az = hz_q.shape[1]
    for i in nb.prange(n_cells):
        hz = np.empty(n_az)
        for k in range(n_az):
            hz[k] = hz_q[i, k] * unit
        lo = np.empty(_N_SECTORS + 1)
        hi = np.empty(_N_SECTORS + 1)
        _sector_bounds(hz, rho_max, lo, hi)
        for t in range(target.shape[0]):
            vx, vy, vu = _local(basis[i], off[i], target[t, 0], target[t, 1], target[t, 2])
            out[t, i] = _fraction_fast(hz, lo, hi, vx, vy, vu, body_r)


@nb.njit(cache=True)
def _azel_kernel(basis, off, target, az_out, el_out):
    """Grid azimuth and elevation (rad) of target vectors (one per row) seen from cells (one per row)."""
    for i in range(basis.shape[0]):
        vx, vy, vu = _local(basis[i], off[i], target[i, 0], target[i, 1], target[i, 2])
        az = math.atan2(vx, vy)
        az_out[i] = az + 2.0 * math.pi if az < 0.0 else az
        el_out[i] = math.atan2(vu, math.sqrt(vx * vx + vy * vy))


# -------------------------------------------------------------------------------------------- public API


def disc_visible_fraction(centre_above_line: ArrayLike) -> NDArray[np.float64]:
    """Return the visible fraction of a disc whose centre lies the given number of radii above a line."""
    u = np.clip(np.asarray(centre_above_line, dtype=np.float64), -1.0, 1.0)
    return 1.0 - (np.arccos(u) - u * np.sqrt(1.0 - u * u)) / np.pi


@dataclass(frozen=True, eq=False)
class MapGeometry:
    """Cells of a projected lunar DEM on the MOON_ME sphere: where they are and how their frames lie.

    ``lat_deg``, ``lon_deg`` (planetocentric, lon east in [0, 360)) and ``height_m`` (ground + observer
    height above 1737.4 km) have the window's shape; ``basis[row, col]`` holds as rows the MOON_ME unit
    vectors of map +x, map +y (both in the local horizontal plane) and up; ``r_me_m`` the positions (m).
    """

    lat_deg: NDArray[np.float64]
    lon_deg: NDArray[np.float64]
    height_m: NDArray[np.float64]
    basis: NDArray[np.float64]
    r_me_m: NDArray[np.float64]
    window: tuple[int, int, int, int]

    @property
    def shape(self) -> tuple[int, int]:
        """Return the window's (rows, cols)."""
        return self.lat_deg.shape  # type: ignore[return-value]


def _polar_crs(raster: Raster) -> Any:
    """Return the raster's pyproj CRS after checking it is polar stereographic on the lunar sphere."""
    import pyproj

    if raster.crs is None:
        raise InputError("DEM has no CRS: expected a polar stereographic grid on the 1737.4 km lunar sphere")
    try:
        crs = pyproj.CRS.from_user_input(raster.crs)
    except pyproj.exceptions.CRSError as exc:
        raise InputError(f"DEM CRS {raster.crs!r}: not understood ({exc})") from exc
    ell = crs.ellipsoid
    if (
        ell is None
        or abs(ell.semi_major_metre - MOON_RADIUS_M) > 1.0
        or abs(ell.semi_minor_metre - MOON_RADIUS_M) > 1.0
    ):
        got = "none" if ell is None else f"{ell.semi_major_metre:.0f} x {ell.semi_minor_metre:.0f} m"
        raise InputError(
            f"DEM datum ellipsoid {got}: expected the lunar sphere of radius {MOON_RADIUS_M:.0f} m"
        )
    if polar_map_frame(raster) is None:  # the one test of "pole-centred stereographic", shared with horizons
        op = crs.coordinate_operation
        raise InputError(
            f"DEM projection {op.method_name if op is not None else crs.name!r}: unsupported; expected "
            "polar stereographic (e.g. +proj=stere +lat_0=-90 +R=1737400)"
        )
    return crs


def _unit_me(lat_deg: NDArray[np.float64], lon_deg: NDArray[np.float64]) -> NDArray[np.float64]:
    """Unit MOON_ME vectors of planetocentric lat/lon (deg), shape S + (3,)."""
    la, lo = np.deg2rad(lat_deg), np.deg2rad(lon_deg)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def map_geometry(
    raster: Raster, window: tuple[int, int, int, int] | None = None, observer_height_m: float = 0.0
) -> MapGeometry:
    """Return the MOON_ME geometry of the cells of a polar stereographic DEM (or of a window of it)."""
    import pyproj

    crs = _polar_crs(raster)
    t = raster.transform
    if t.b != 0.0 or t.d != 0.0:
        raise InputError(f"DEM transform {tuple(t)[:6]}: expected an axis-aligned grid")
    nr, nc = raster.shape
    r0, r1, c0, c1 = (0, nr, 0, nc) if window is None else (int(v) for v in window)
    if not (0 <= r0 < r1 <= nr and 0 <= c0 < c1 <= nc):
        raise InputError(f"window {window!r}: expected (row0, row1, col0, col1) inside {nr} x {nc}")
    z = raster.data[r0:r1, c0:c1]
    if not np.all(np.isfinite(z)):
        raise InputError("DEM window holds NaN heights: expected finite heights (fill the holes first)")
    x = t.c + t.a * (np.arange(c0, c1) + 0.5)
    y = t.f + t.e * (np.arange(r0, r1) + 0.5)
    xx, yy = np.meshgrid(x, y)
    to_geo = pyproj.Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    lon, lat = to_geo.transform(xx, yy)
    # the map axes on the sphere, by central differences of 1 m (angle error ~ 1 m / 2R = 3e-7 rad)
    step = 1.0
    axes = []
    for dxm, dym in ((step, 0.0), (0.0, step)):
        lo_p, la_p = to_geo.transform(xx + dxm, yy + dym)
        lo_m, la_m = to_geo.transform(xx - dxm, yy - dym)
        axes.append(_unit_me(la_p, lo_p) - _unit_me(la_m, lo_m))
    up = _unit_me(lat, lon)
    basis = np.empty(lat.shape + (3, 3))
    # Gram-Schmidt in the order up, map x, map y: an exactly orthonormal frame (the projection is
    # conformal, so the map axes are already perpendicular to ~1e-9 here)
    ex = axes[0] - np.sum(axes[0] * up, axis=-1, keepdims=True) * up
    ex /= np.linalg.norm(ex, axis=-1, keepdims=True)
    ey = axes[1] - np.sum(axes[1] * up, axis=-1, keepdims=True) * up
    ey -= np.sum(ey * ex, axis=-1, keepdims=True) * ex
    ey /= np.linalg.norm(ey, axis=-1, keepdims=True)
    basis[..., 0, :] = ex
    basis[..., 1, :] = ey
    basis[..., 2, :] = up
    h = z + float(observer_height_m)
    return MapGeometry(
        lat_deg=lat,
        lon_deg=np.mod(lon, 360.0),
        height_m=h,
        basis=basis,
        r_me_m=(MOON_RADIUS_M + h)[..., None] * up,
        window=(r0, r1, c0, c1),
    )


def time_grid(start: Any, end: Any, step_hours: float) -> NDArray[np.datetime64]:
    """Return UTC times from start (inclusive) to end (exclusive) every step_hours, as datetime64[s]."""
    if not (math.isfinite(step_hours) and step_hours > 0.0):
        raise InputError(f"time step {step_hours!r} h: expected a positive number of hours")
    try:
        t0 = np.datetime64(str(start), "s")
        t1 = np.datetime64(str(end), "s")
    except ValueError as exc:
        raise InputError(
            f"period {start!r} .. {end!r}: {exc}; expected ISO dates (YYYY-MM-DD[THH:MM])"
        ) from exc
    if not t1 > t0:
        raise InputError(f"period {start} .. {end}: expected the end after the start")
    step = np.timedelta64(int(round(step_hours * 3600.0)), "s")
    if step <= np.timedelta64(0, "s"):
        raise InputError(f"time step {step_hours!r} h: expected at least one second")
    return np.arange(t0, t1, step)


def _flatten(table: HorizonTable, geometry: MapGeometry, cells: ArrayLike | None):
    """Horizon rows (n, n_az) int16, bases (n, 3, 3), offsets (n, 3) and the flat indices of the cells."""
    if table.shape != geometry.shape:
        raise InputError(f"horizon table {table.shape} and map geometry {geometry.shape}: expected one grid")
    n_az = table.n_azimuths
    flat_q = table.elevation_q.reshape(n_az, -1)
    idx = (
        np.arange(flat_q.shape[1])
        if cells is None
        else np.atleast_1d(np.asarray(cells, dtype=np.int64)).ravel()
    )
    if idx.size and (idx.min() < 0 or idx.max() >= flat_q.shape[1]):
        raise InputError(f"cells: flat indices must lie in 0 .. {flat_q.shape[1] - 1}")
    hz = np.ascontiguousarray(flat_q[:, idx].T)
    if np.any(hz == NOT_COMPUTED):
        raise InputError("cells without horizons (left out by the horizon mask) were asked for")
    basis = np.ascontiguousarray(geometry.basis.reshape(-1, 3, 3)[idx])
    r = geometry.r_me_m.reshape(-1, 3)[idx]
    off = np.ascontiguousarray(np.einsum("nij,nj->ni", basis, r))
    return hz, basis, off, idx


def _rho_max(target: NDArray[np.float64], body_radius_m: float) -> float:
    """A bound (rad) on a body's angular radius from any site: its distance less the Moon's radius."""
    near = float(np.linalg.norm(target, axis=1).min()) - 1.01 * MOON_RADIUS_M
    if not near > body_radius_m:
        raise InputError(f"target at {near:.0f} m from the surface: expected a distant body (Sun, Earth)")
    return math.asin(body_radius_m / near)


def _vectors(target_me_m: ArrayLike, name: str) -> NDArray[np.float64]:
    """Target vectors (n_t, 3) in m, checked."""
    v = np.ascontiguousarray(np.asarray(target_me_m, dtype=np.float64))
    if v.ndim != 2 or v.shape[1] != 3 or not np.all(np.isfinite(v)):
        raise InputError(
            f"{name} vectors of shape {v.shape}: expected finite MOON_ME positions (n_times, 3) in m"
        )
    return v


@dataclass(frozen=True, eq=False)
class VisibilityStats:
    """Per-cell statistics of Sun and Earth visibility over a time series, each an array of the cells'
    shape; durations in steps of ``step_s`` seconds (see the module notes for the definitions)."""

    sun_fraction: NDArray[np.float64]
    sun_time_fraction: NDArray[np.float64]
    sun_max_fraction: NDArray[np.float64]
    max_darkness_steps: NDArray[np.float64]
    earth_fraction: NDArray[np.float64]
    earth_time_fraction: NDArray[np.float64]
    max_earth_outage_steps: NDArray[np.float64]
    both_time_fraction: NDArray[np.float64]
    step_s: float

    @property
    def psr(self) -> NDArray[np.bool_]:
        """Return True where no part of the Sun was ever visible (permanently shadowed over the period)."""
        return self.sun_max_fraction <= 0.0


def visibility_stats(
    table: HorizonTable,
    geometry: MapGeometry,
    sun_me_m: ArrayLike,
    earth_me_m: ArrayLike,
    step_s: float,
    cells: ArrayLike | None = None,
) -> VisibilityStats:
    """Return Sun and Earth visibility statistics of map cells over series of MOON_ME body vectors (m).

    ``sun_me_m`` and ``earth_me_m`` (n_times, 3) are the bodies from the Moon's centre at equal steps of
    ``step_s`` seconds; ``cells`` are flat indices into the geometry's grid (None: all, shaped as it).
    """
    hz, basis, off, idx = _flatten(table, geometry, cells)
    sun = _vectors(sun_me_m, "Sun")
    earth = _vectors(earth_me_m, "Earth")
    if sun.shape != earth.shape:
        raise InputError(f"Sun {sun.shape} and Earth {earth.shape} series: expected the same times")
    out = np.empty((len(_STAT_NAMES), idx.size))
    _stats_kernel(
        hz,
        table.unit_rad,
        basis,
        off,
        sun,
        SUN_RADIUS_M,
        _rho_max(sun, SUN_RADIUS_M),
        earth,
        EARTH_RADIUS_M,
        _rho_max(earth, EARTH_RADIUS_M),
        out,
    )
    shape = geometry.shape if cells is None else idx.shape
    fields = {name: out[k].reshape(shape) for k, name in enumerate(_STAT_NAMES)}
    return VisibilityStats(**fields, step_s=float(step_s))


def visibility_series(
    table: HorizonTable,
    geometry: MapGeometry,
    target_me_m: ArrayLike,
    body_radius_m: float,
    cells: ArrayLike,
) -> NDArray[np.float64]:
    """Return the visible fraction of a body's disc, shape (n_times, n_cells), for given flat cells."""
    hz, basis, off, idx = _flatten(table, geometry, cells)
    tgt = _vectors(target_me_m, "target")
    out = np.empty((tgt.shape[0], idx.size))
    _series_kernel(
        hz, table.unit_rad, basis, off, tgt, float(body_radius_m), _rho_max(tgt, body_radius_m), out
    )
    return out


def sky_azel(
    geometry: MapGeometry, target_me_m: ArrayLike, cells: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return (grid azimuth from map +y toward +x, elevation) in rad of MOON_ME targets seen from cells.

    ``target_me_m`` (n, 3) from the Moon's centre pairs with the flat cell indices ``cells`` (n,).
    """
    idx = np.atleast_1d(np.asarray(cells, dtype=np.int64)).ravel()
    basis = np.ascontiguousarray(geometry.basis.reshape(-1, 3, 3)[idx])
    r = geometry.r_me_m.reshape(-1, 3)[idx]
    off = np.ascontiguousarray(np.einsum("nij,nj->ni", basis, r))
    tgt = _vectors(target_me_m, "target")
    if tgt.shape[0] != idx.size:
        raise InputError(f"{tgt.shape[0]} targets for {idx.size} cells: expected one target per cell")
    az = np.empty(idx.size)
    el = np.empty(idx.size)
    _azel_kernel(basis, off, tgt, az, el)
    return az, el
