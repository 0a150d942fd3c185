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
The central angle ``theta`` between the observer and a terrain point is exact for a grid on a
pole-centred stereographic map (``map_frame``, see :func:`polar_map_frame`; what
:func:`horizons_from_raster` and the illumination maps use): with map positions p' scaled by
1 / (2 R k0), sin^2(theta / 2) = |p'_o - p'_t|^2 / ((1 + |p'_o|^2)(1 + |p'_t|^2)). Without a frame
(a bare grid of heights) the grid distance ``d`` is taken as the arc length, ``theta = d / R``; on a
polar map that places terrain too far by the map's scale factor (0.2 % at 85 S, 0.8 % at 80 S,
moving horizons by hundredths of a degree). In the plane through the Moon's centre, the observer
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
Terrain between nodes is the bilinear interpolant. A ray is followed from one crossing of a grid line
to the next: in between it stays inside one cell, where the bilinear height is quadratic along the ray,
h = h_i + g s + q s^2. Every crossing is evaluated with the exact formula (there the surface is linear
along the grid line, so ridges and rims that lie on grid lines are hit exactly). Inside a segment the
elevation can only rise above both of its ends where it is rising at the segment's start and falling
at its end; d tan(el) / d tau has the sign of G = k r_t (r_o cos(theta) - r_t) + r_o h' sin(theta)
(k = dx / R, r_t = R + h, r_o = R + h_o), known in closed form at the crossings, and where G goes from
+ to - the peak is found by Newton's method on G and evaluated exactly (to ~1e-12 rad). The search is
left out where a cheap bound (the segment's ends plus how much it can bend, bounded per block of
cells) shows that the segment cannot rise above the horizon found so far. Observers on the ground also
get the exact tau -> 0 limit, the slope of the first cell over r_o k (the horizontal distance at the
observer's radius). Because observers sit on nodes, the crossings and their cells depend only on the
azimuth and are computed once per azimuth. Blocks of 8 x 8 cells whose highest node could not rise
above the horizon found so far are jumped over, and a ray stops early when even the highest point of
the map could no longer rise above it. Rays that leave the map at once (edge cells looking outward)
get -pi/2: no terrain was seen; pad maps (tiles with overlap) so that the cells of interest see all
of it.

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
    "polar_map_frame",
]

ELEVATION_UNIT_RAD = 5e-5  # int16 storage unit of HorizonTable elevations (rad)
NOT_COMPUTED = -32768  # HorizonTable value of nodes left out by a mask
_FORMAT = "kizuna.horizon/1"
_NO_TERRAIN = -0.5 * math.pi
_SNAP = 1e-9  # cells: sample coordinates this close to a grid line are put on it
_BLOCK_SHIFT = 3  # rays pass over blocks of 2**_BLOCK_SHIFT cells square that cannot raise the horizon
# columns of the per-sample table of _ray_samples (one 64-byte row per sample)
_DR, _DC, _FR, _FC, _TAU, _COS, _OMC, _SIN = range(8)


# ------------------------------------------------------------------------------------------- numba kernels


@nb.njit(cache=True)
def _ray_samples(du, dv, tau_max, dx, radius):
    """Crossings of grid lines by a ray from a node, each with the cell the ray crossed to reach it.

    (du, dv) is the unit direction in (column, row) cells; tau is the distance in cells. Sample i is the
    i-th crossing, and segment i runs inside one cell from crossing i - 1 (the node itself for i = 0) to
    crossing i. Returns (pk, first_r, first_c). Row i of pk holds, in the columns _DR .. _SIN, that
    cell's offsets (rows, columns) from the node, the crossing's fractions (rows, columns) in [0, 1]
    within the cell, tau, cos(theta), 1 - cos(theta) and sin(theta) of the crossing: all a ray needs of
    a sample in one cache line. first_r[m] (first_c[m]) is the first sample whose cell lies m rows
    (columns) on from the node's, i.e. at offset m, or -1 - m going toward lower indices. A ray along a
    grid line gets the cell on the side of increasing row / column (fraction 0).
    """
    adu, adv = abs(du), abs(dv)
    su = 1 if du > 0 else -1
    sv = 1 if dv > 0 else -1
    nmax = int(tau_max * adu) + int(tau_max * adv) + 4
    pk = np.empty((nmax, 8))
    inf = np.inf
    kx, ky = 1, 1  # the next vertical (column) and horizontal (row) grid lines to cross
    tx = kx / adu if adu > 0 else inf
    ty = ky / adv if adv > 0 else inf
    prev = 0.0
    n = 0
    while True:
        t = min(tx, ty)
        if t > tau_max:
            break
        # the crossing, with the crossed coordinate exactly integral
        u, v = t * du, t * dv
        if tx <= ty * (1.0 + 1e-12):
            u = float(kx * su)
        if ty <= tx * (1.0 + 1e-12):
            v = float(ky * sv)
        ru, rv = float(round(u)), float(round(v))
        if abs(u - ru) < _SNAP:
            u = ru
        if abs(v - rv) < _SNAP:
            v = rv
        # the segment's cell: the one holding its midpoint (strictly between the lines it crosses)
        mid = 0.5 * (prev + t)
        iu, iv = math.floor(mid * du), math.floor(mid * dv)
        pk[n, _DR] = iv
        pk[n, _DC] = iu
        pk[n, _FR] = min(1.0, max(0.0, v - iv))
        pk[n, _FC] = min(1.0, max(0.0, u - iu))
        pk[n, _TAU] = t
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
    pk = pk[:n]
    theta = pk[:, _TAU] * (dx / radius)
    pk[:, _COS] = np.cos(theta)
    pk[:, _OMC] = 2.0 * np.sin(0.5 * theta) ** 2
    pk[:, _SIN] = np.sin(theta)
    # the cell offsets change by at most one from a sample to the next, monotonically
    first_r = np.full(kx + ky + 2, n, np.int64)
    first_c = np.full(kx + ky + 2, n, np.int64)
    for i in range(n - 1, -1, -1):
        off_r, off_c = int(pk[i, _DR]), int(pk[i, _DC])
        first_r[off_r if dv >= 0.0 else -1 - off_r] = i
        first_c[off_c if du >= 0.0 else -1 - off_c] = i
    return pk, first_r, first_c


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
def _angle(pk, j, geo, pxo, pyo, ex, ey, a_o):
    """(cos, 1 - cos, sin) of the central angle from the observer to crossing j of its ray.

    Without a projection (geo False) the angle is tau dx / R, tabulated in pk. On a pole-centred
    stereographic map it is exact: with map positions p' scaled by 1 / (2 R k0), the chord between two
    points on the unit sphere is 2 |p'_o - p'_s| / sqrt((1 + |p'_o|^2)(1 + |p'_s|^2)), so
    sin^2(theta / 2) = d'^2 / (a_o (1 + |p'_s|^2)), a_o = 1 + |p'_o|^2; (ex, ey) is the scaled step of
    one cell along the ray and (pxo, pyo) the observer's scaled position.
    """
    if not geo:
        return pk[j, _COS], pk[j, _OMC], pk[j, _SIN]
    t = pk[j, _TAU]
    sx = pxo + t * ex
    sy = pyo + t * ey
    s2 = t * t * (ex * ex + ey * ey) / (a_o * (1.0 + sx * sx + sy * sy))
    return 1.0 - 2.0 * s2, 2.0 * s2, 2.0 * math.sqrt(s2 * (1.0 - s2))


@nb.njit(cache=True, inline="always")
def _theta(pk, j, geo, pxo, pyo, ex, ey, a_o, k_flat):
    """The central angle (rad) from the observer to crossing j (see _angle)."""
    t = pk[j, _TAU]
    if not geo:
        return t * k_flat
    sx = pxo + t * ex
    sy = pyo + t * ey
    return 2.0 * math.asin(math.sqrt(t * t * (ex * ex + ey * ey) / (a_o * (1.0 + sx * sx + sy * sy))))


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


@nb.njit(cache=True)
def _segment_peak(t0, t1, tt, h1, g, q, zo, k, th1, radius):
    """tan(elevation) of the peak inside the segment t0 < tau < t1 (cells) of a ray, by Newton's method.

    Along the segment the height is h1 + g s + q s^2 (s = tau - t1). The caller has found the elevation
    rising at t0 and falling at t1, so it peaks in between, where
    G = k r_t (r_o cos(theta) - r_t) + r_o h' sin(theta), the sign of d tan(el) / d tau (r_t = R + h,
    r_o = R + zo, theta = th1 + k (tau - t1), k = d theta / d tau in the segment), is zero. Newton
    steps on G start at tt and stay inside the bracket that holds the root (bisecting when a step would
    leave it). The point reached, within about 1e-6
    cells of the peak (so at most ~1e-12 rad lower), is evaluated exactly.

    Not inline="always": numba 0.68's inliner miscompiled this loop (the values used after it came out
    wrong, e.g. the bare-sphere dip halved).
    """
    ro = radius + zo
    lo, hi = t0, t1
    for _ in range(16):
        s = tt - t1
        h = h1 + (g + q * s) * s
        hp = g + 2.0 * q * s  # dh / dtau
        cth, omc, sth = _trig(th1 + k * (tt - t1))
        rt = radius + h
        drop = (zo - h) - ro * omc  # r_o cos(theta) - r_t
        gg = k * rt * drop + ro * hp * sth
        if gg > 0.0:
            lo = tt
        else:
            hi = tt
        dgg = 2.0 * k * hp * drop + (2.0 * q - k * k * rt) * ro * sth  # dG / dtau
        nt = tt - gg / dgg if dgg < 0.0 else 0.5 * (lo + hi)
        if not (lo < nt < hi):
            nt = 0.5 * (lo + hi)
        if abs(nt - tt) < 1e-6:
            break
        tt = nt
    return (h * cth - radius * omc - zo) / (rt * sth)


@nb.njit(cache=True, inline="always")
def _ray_max_tan(z, bmax, bbend, r, c, zo, du, dv, dx, samples, hmax, th_tan, radius, proj):
    """Largest tan(elevation) along one ray from node (r, c) at height zo; -inf if no segment is inside.

    samples is _ray_samples for the direction (du, dv); bmax and bbend are _block_max and _block_bend
    of z; th_tan is _theta_tangent; proj is _map_frame's array (proj[0] = 0: no projection).
    """
    geo = proj[0] != 0.0
    pxo = proj[1] + c * proj[3]
    pyo = proj[2] + r * proj[4]
    ex = du * proj[3]
    ey = dv * proj[4]
    a_o = 1.0 + pxo * pxo + pyo * pyo
    k_flat = dx / radius
    pk, first_r, first_c = samples
    rows, cols = z.shape
    n = pk.shape[0]
    best = -np.inf
    # central angle of one cell (rad): an upper bound on d theta / d tau (the stereographic scale >= k0)
    k = k_flat
    # d theta / d tau at the observer: the flat value, or 2 |e'| / a_o on a stereographic map
    k_obs = 2.0 * math.sqrt(ex * ex + ey * ey) / a_o if geo else k_flat
    ro = radius + zo
    kkr = (radius + hmax) * k * k  # bounds (R + h) k^2
    dprev = 0.0  # D (see below) at the previous crossing, or a bound on it
    mb = 0.0
    cur_b = -1
    i = 0
    while i < n:
        rr = r + int(pk[i, _DR])
        cc = c + int(pk[i, _DC])
        a = pk[i, _FR]
        b = pk[i, _FC]
        if rr < 0 or cc < 0 or rr >= rows - 1 or cc >= cols - 1:
            # the segment's cell is off the map, so the ray has left it for good; except a ray along the
            # last row or column, which runs on the map's edge: take the cell on the inner side
            if du == 0.0 and cc == cols - 1 and 0 <= rr < rows - 1:
                cc -= 1
                b = 1.0
            elif dv == 0.0 and rr == rows - 1 and 0 <= cc < cols - 1:
                rr -= 1
                a = 1.0
            else:
                break
        # Blocks of 2**_BLOCK_SHIFT cells square whose highest node cannot rise above the horizon found
        # so far are passed over. Seen from a lower observer, points at one height drop in elevation
        # with distance, so the bound is taken where the segment starts (the previous crossing), before
        # the ray entered the block; a block no higher than the observer cannot beat a horizon >= 0.
        br, bc = rr >> _BLOCK_SHIFT, cc >> _BLOCK_SHIFT
        blk = br * bmax.shape[1] + bc
        if blk != cur_b:
            cur_b = blk
            hb = bmax[br, bc]
            mb = bbend[br, bc]
            if i == 0:
                skip = False
            elif hb <= zo:
                skip = best >= 0.0
            else:
                cp, op, sp = _angle(pk, i - 1, geo, pxo, pyo, ex, ey, a_o)
                skip = hb * cp - radius * op - zo < best * (radius + hb) * sp
            if skip:
                # beyond the tangent distance of the highest terrain, its elevation only falls with
                # distance: once that is below the horizon, nothing further on can rise above it
                if _theta(pk, i, geo, pxo, pyo, ex, ey, a_o, k_flat) > th_tan:
                    cp, op, sp = _angle(pk, i, geo, pxo, pyo, ex, ey, a_o)
                    if hmax * cp - radius * op - zo < best * (radius + hmax) * sp:
                        break
                # on to the first segment outside the block (the cell offsets change monotonically)
                jr, jc = n, n
                if dv != 0.0:
                    m = ((br + 1) << _BLOCK_SHIFT) - r if dv > 0.0 else r - (br << _BLOCK_SHIFT)
                    if m < first_r.shape[0]:
                        jr = first_r[m]
                if du != 0.0:
                    m = ((bc + 1) << _BLOCK_SHIFT) - c if du > 0.0 else c - (bc << _BLOCK_SHIFT)
                    if m < first_c.shape[0]:
                        jc = first_c[m]
                i = min(jr, jc)
                dprev = 0.0  # the crossing where the ray leaves the block is no higher than the horizon
                continue
        # the crossing that ends the segment, exact
        z00, z01, z10, z11 = z[rr, cc], z[rr, cc + 1], z[rr + 1, cc], z[rr + 1, cc + 1]
        h = (1.0 - a) * ((1.0 - b) * z00 + b * z01) + a * ((1.0 - b) * z10 + b * z11)
        ti = pk[i, _TAU]
        cti, omci, sti = _angle(pk, i, geo, pxo, pyo, ex, ey, a_o)
        y = h * cti - radius * omci - zo
        x = (radius + h) * sti
        d1 = y - best * x  # > 0 where the crossing is higher than the horizon so far (x > 0)
        higher = d1 > 0.0
        if higher:
            best = y / x
            d1 = 0.0
        # Along the segment the height is quadratic, h + g s + q s^2 (s = tau - ti). The elevation peaks
        # inside it only where it rises at the segment's start and falls at its end; elsewhere the
        # segment is no higher than its ends, which are crossings (or the node) and evaluated. That
        # peak is found by _segment_peak. d tan(el) / d tau has the sign of
        # G = k r_t (r_o cos(theta) - r_t) + r_o h' sin(theta), r_t = R + h, r_o = R + zo.
        search = False
        t0 = start = q = g = 0.0
        k_seg = k_flat
        if i == 0:
            qq = z00 - z01 - z10 + z11
            q = qq * du * dv
            g = (z01 - z00 + qq * a) * du + (z10 - z00 + qq * b) * dv  # h' at the crossing
            g0 = g - 2.0 * q * ti  # h' at the node
            k_seg = k_obs
            ge = k_seg * (radius + h) * ((zo - h) - ro * omci) + ro * g * sti
            start = 0.5 * ti
            if zo == z[r, c]:
                # an observer on the ground: as tau -> 0 the elevation tends to the slope of the first
                # cell, g0 / (r_o k), and G to k tau^2 (r_o (q - r_o k^2 / 2) - g0^2)
                best = max(best, g0 / (ro * k_obs))
                search = ge < 0.0 and ro * (q - 0.5 * ro * k_obs * k_obs) > g0 * g0
            elif ge < 0.0:
                # from above the node the elevation rises from -pi/2; the search starts at the
                # small-angle peak tau* = sqrt(A / (q - r_o k^2 / 2)), A = z - zo < 0
                search = True
                qe = q - 0.5 * ro * k_obs * k_obs
                if qe < 0.0:
                    start = min(start, math.sqrt((z[r, c] - zo) / qe))
        else:
            # A point of the segment is higher than the horizon so far where D = y - best x > 0, with
            # D = (R + h) c - r_o, c = cos(theta) - best sin(theta). Along the segment
            # D'' = 2 q c + 2 h' c' + (R + h) c'', where |c|, |c'| / k, |c''| / k^2 <= 1 + |best|,
            # |q| <= |z00 - z01 - z10 + z11| / 2 and |h'| <= |dh/du| + |dh/dv|; so D'' >= -M with
            # M = (bbend + (R + hmax) k^2) (1 + |best|), and on the segment (L long)
            # D <= max(D(t0), D(ti)) + M L^2 / 8. Only where that is > 0 is a peak looked for.
            t0 = pk[i - 1, _TAU]
            ln = ti - t0
            if max(dprev, d1) + 0.125 * (mb + kkr) * (1.0 + abs(best)) * ln * ln > 0.0:
                qq = z00 - z01 - z10 + z11
                q = qq * du * dv
                g = (z01 - z00 + qq * a) * du + (z10 - z00 + qq * b) * dv  # h' at the crossing
                # d theta / d tau across the segment (its change inside one cell is far below 1e-9)
                k_seg = (
                    (
                        _theta(pk, i, geo, pxo, pyo, ex, ey, a_o, k_flat)
                        - _theta(pk, i - 1, geo, pxo, pyo, ex, ey, a_o, k_flat)
                    )
                    / ln
                    if geo
                    else k_flat
                )
                ge = k_seg * (radius + h) * ((zo - h) - ro * omci) + ro * g * sti
                if ge < 0.0:
                    h0 = h - (g - q * ln) * ln  # h and h' at the segment's start
                    g0 = g - 2.0 * q * ln
                    _, op, sp = _angle(pk, i - 1, geo, pxo, pyo, ex, ey, a_o)
                    gs = k_seg * (radius + h0) * ((zo - h0) - ro * op) + ro * g0 * sp
                    if gs > 0.0:
                        search = True
                        start = t0 + ln * gs / (gs - ge)  # where G, taken as linear, is zero
        dprev = d1  # best only grows, so D at this crossing stays <= d1
        if search:
            th_i = _theta(pk, i, geo, pxo, pyo, ex, ey, a_o, k_flat)
            best = max(best, _segment_peak(t0, ti, start, h, g, q, zo, k_seg, th_i, radius))
        if not higher and (i & 7) == 0 and _theta(pk, i, geo, pxo, pyo, ex, ey, a_o, k_flat) > th_tan:
            # beyond the tangent distance of the highest terrain, its elevation only falls with distance
            yb = hmax * cti - radius * omci - zo
            if yb < best * (radius + hmax) * sti:
                break
        i += 1
    return best


@nb.njit(cache=True, inline="always")
def _theta_tangent(zo, hmax, radius):
    """Central angle (rad) past which the elevation of points at height hmax decreases, seen from zo."""
    if zo <= hmax:
        return 0.0
    return 2.0 * math.asin(math.sqrt((zo - hmax) / (2.0 * (radius + zo))))


@nb.njit(cache=True, parallel=True)
def _grid_azimuth(z, bmax, bbend, h_obs, r0, c0, mask, du, dv, samples, hmax, radius, dx, unit, proj, out):
    """Quantised horizon elevation in one azimuth of the nodes of a window whose first node is (r0, c0).

    samples is the tuple of _ray_samples. Written into out (int16, window rows x cols), NOT_COMPUTED
    where mask is 0; rays run over all of z.
    """
    for i in nb.prange(out.shape[0]):
        r = r0 + i
        for j in range(out.shape[1]):
            if not mask[i, j]:
                out[i, j] = NOT_COMPUTED
                continue
            c = c0 + j
            zo = z[r, c] + h_obs
            tt = _theta_tangent(zo, hmax, radius)
            best = _ray_max_tan(z, bmax, bbend, r, c, zo, du, dv, dx, samples, hmax, tt, radius, proj)
            el = math.atan(best) if best > -np.inf else -0.5 * math.pi
            q = round(el / unit)
            out[i, j] = max(-32767, min(32767, q))


@nb.njit(cache=True, parallel=True)
def _points_azimuth(z, bmax, bbend, h_obs, du, dv, rows_i, cols_i, samples, hmax, radius, dx, proj, out):
    """Horizon elevation (rad) of the given nodes in one azimuth, written into out (float64, n_points)."""
    for k in nb.prange(rows_i.shape[0]):
        r, c = rows_i[k], cols_i[k]
        zo = z[r, c] + h_obs
        tt = _theta_tangent(zo, hmax, radius)
        best = _ray_max_tan(z, bmax, bbend, r, c, zo, du, dv, dx, samples, hmax, tt, radius, proj)
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


def _block_bend(z: NDArray[np.float64], k: float) -> NDArray[np.float64]:
    """Per block of cells (as _block_max), the largest |z00 - z01 - z10 + z11| + 2 k (|dh/du| + |dh/dv|).

    The bilinear surface of a cell has |dh/du| <= max(|z01 - z00|, |z11 - z10|) and |dh/dv| likewise, so
    this bounds how fast the height and the line of sight can bend along a ray in the block.
    """
    b = 1 << _BLOCK_SHIFT
    nr, nc = z.shape
    br, bc = (nr + b - 1) // b, (nc + b - 1) // b
    d_r = np.abs(np.diff(z, axis=0))
    d_c = np.abs(np.diff(z, axis=1))
    slope = np.maximum(d_c[:-1], d_c[1:]) + np.maximum(d_r[:, :-1], d_r[:, 1:])
    cell = np.abs(z[:-1, :-1] - z[:-1, 1:] - z[1:, :-1] + z[1:, 1:]) + 2.0 * k * slope
    pad = np.zeros((br * b, bc * b))
    pad[: nr - 1, : nc - 1] = cell
    return pad.reshape(br, b, bc, b).max(axis=(1, 3))


def _proj_array(
    map_frame: tuple[float, float, float, float, float] | None, dx_m: float
) -> NDArray[np.float64]:
    """The kernels' projection array: [1, x0, y0, x step, y step] scaled by 1 / (2 R k0), or zeros."""
    if map_frame is None:
        return np.zeros(5)
    x0, y0, xs, ys, two_rk0 = (float(v) for v in map_frame)
    if not (all(math.isfinite(v) for v in (x0, y0, xs, ys, two_rk0)) and two_rk0 > 0.0):
        raise InputError(
            f"horizon map frame {map_frame!r}: expected finite (x0, y0, x step, y step, 2 R k0 > 0)"
        )
    if abs(abs(xs) - dx_m) > 1e-9 * dx_m or abs(abs(ys) - dx_m) > 1e-9 * dx_m:
        raise InputError(f"horizon map frame steps {xs}, {ys} m: expected +-{dx_m} (square cells)")
    return np.array([1.0, x0 / two_rk0, y0 / two_rk0, xs / two_rk0, ys / two_rk0])


def polar_map_frame(raster: Raster) -> tuple[float, float, float, float, float] | None:
    """Return (x, y of node (0, 0) from the pole, x step per column, y step per row, 2 R k0) in m for a
    polar stereographic raster on a sphere, or None for any other projection."""
    import pyproj

    if raster.crs is None:
        return None
    try:
        crs = pyproj.CRS.from_user_input(raster.crs)
    except pyproj.exceptions.CRSError:
        return None
    op = crs.coordinate_operation
    ell = crs.ellipsoid
    if op is None or ell is None or "stereographic" not in op.method_name.lower():
        return None
    if abs(ell.semi_major_metre - ell.semi_minor_metre) > 1e-6 * ell.semi_major_metre:
        return None
    params = {p.name.lower(): p.value for p in op.params}
    if "latitude of standard parallel" in params:  # variant B: scale 1 on the standard parallel
        k0 = 0.5 * (1.0 + math.sin(math.radians(abs(params["latitude of standard parallel"]))))
    elif abs(abs(params.get("latitude of natural origin", 0.0)) - 90.0) < 1e-9:  # variant A, or +proj=stere
        k0 = float(params.get("scale factor at natural origin", 1.0))
    else:
        return None
    t = raster.transform
    x0 = t.c + 0.5 * t.a - float(params.get("false easting", 0.0))
    y0 = t.f + 0.5 * t.e - float(params.get("false northing", 0.0))
    return (x0, y0, float(t.a), float(t.e), 2.0 * ell.semi_major_metre * k0)


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
    map_frame: tuple[float, float, float, float, float] | None = None,
) -> NDArray[np.float64]:
    """Return horizon elevations (rad), shape (n_points, n_azimuths), of given nodes at any grid azimuths.

    ``map_frame`` (see :func:`polar_map_frame`) places the grid on a pole-centred stereographic map, so
    that central angles are exact; None takes grid distance as arc length.
    """
    z = _check_inputs(heights_m, dx_m, observer_height_m)
    proj = _proj_array(map_frame, float(dx_m))
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
    bbend = _block_bend(z, float(dx_m) / float(radius_m))
    col = np.empty(r_i.size)
    for j, a in enumerate(az):
        du, dv = _direction(float(a))
        samples = _ray_samples(du, dv, tau_max, float(dx_m), float(radius_m))
        _points_azimuth(
            z,
            bmax,
            bbend,
            float(observer_height_m),
            du,
            dv,
            r_i,
            c_i,
            samples,
            hmax,
            float(radius_m),
            float(dx_m),
            proj,
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
    map_frame: tuple[float, float, float, float, float] | None = None,
) -> HorizonTable:
    """Return the horizon table of the nodes of a DEM (heights in m above the sphere, spacing dx_m in m).

    ``window = (row0, row1, col0, col1)`` limits the table to rows row0:row1 and columns col0:col1
    (the rays still run over the whole grid); None means every node. ``mask`` (bool, the window's
    shape) leaves out the nodes where it is False: they hold :data:`NOT_COMPUTED`. ``map_frame`` (see
    :func:`polar_map_frame`) makes central angles exact on a pole-centred stereographic map; None takes
    grid distance as arc length on the sphere.
    """
    z = _check_inputs(heights_m, dx_m, observer_height_m)
    proj = _proj_array(map_frame, float(dx_m))
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
    bbend = _block_bend(z, float(dx_m) / float(radius_m))
    for k in range(n_az):
        du, dv = _direction(2.0 * math.pi * k / n_az)
        samples = _ray_samples(du, dv, tau_max, float(dx_m), float(radius_m))
        _grid_azimuth(
            z,
            bmax,
            bbend,
            float(observer_height_m),
            r0,
            c0,
            m8,
            du,
            dv,
            samples,
            hmax,
            float(radius_m),
            float(dx_m),
            ELEVATION_UNIT_RAD,
            proj,
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
    frame = polar_map_frame(raster)
    if frame is not None:  # node (0, 0) of the flipped grid and its steps
        nr, nc = z.shape
        x0, y0, xs, ys, two_rk0 = frame
        if flip_c:
            x0, xs = x0 + (nc - 1) * xs, -xs
        if flip_r:
            y0, ys = y0 + (nr - 1) * ys, -ys
        frame = (x0, y0, xs, ys, two_rk0)
    table = compute_horizons(z, abs(t.a), n_azimuths, observer_height_m, radius_m, map_frame=frame)
    q = table.elevation_q
    if flip_r:
        q = q[:, ::-1]
    if flip_c:
        q = q[:, :, ::-1]
    return HorizonTable(np.ascontiguousarray(q), table.dx_m, table.observer_height_m, table.unit_rad)
