"""Area-weighted (conservative) regridding of quadrilateral satellite pixels, given by their corners, onto a
regular latitude/longitude grid or a square-cell projected grid such as the 10 km India grid.

Each valid pixel's column (mol m-2) is spread over the grid cells it overlaps in proportion to the overlap
area. A cell keeps ``column_mol`` (sum of column x overlap area: the moles of NO2 above the covered part of
the cell) and ``weight_m2`` (sum of overlap areas); its value is ``column_mol / weight_m2``, the
area-weighted mean of the pixels covering it.

What is conserved is the pixels' amount ``sum(column x pixel area)`` (mol, pixel areas from their corners):
it equals ``sum(column_mol) = sum(mean x weight)`` over the cells, plus what fell outside the grid. It is
not ``sum(mean x cell_area)``: cells that pixels cover only in part, or twice (overlapping pixels or
orbits), have ``weight_m2`` different from their area. ``Regridded.conservation_rel`` checks the clipping
itself: the pieces each pixel was cut into (kept in cells or dropped off the grid) must add up to the
pixel's area from its corners (about 1e-15 relative).

Geometry: intersections are exact polygon clipping in an equal-area plane, not on the sphere.

- Latitude/longitude grids are clipped in the Lambert cylindrical equal-area projection of the WGS84
  ellipsoid, ``x = a lon``, ``y = a q(lat) / 2`` with ``q`` the authalic function (Snyder 1987, *Map
  Projections: A Working Manual*, eqs. 3-12 and 10-15). Its plane area is the ellipsoid's surface area
  exactly, and grid cells, bounded by meridians and parallels, are exact axis-aligned rectangles in it,
  so a cell's area ``a^2/2 dlon (q2 - q1)`` is exact and clipping needs only axis-parallel cuts of a
  convex polygon. On the sphere, pixel edges would be great circles but cell edges along parallels are
  small circles, and exact intersections would need special cases near each parallel; here, pixel edges
  are straight in the equal-area plane instead of geodesic. An east-west edge of length L at latitude lat
  then runs along the parallel, where the geodesic bows poleward by about L^2 tan(lat) / (8 R): 0.4 m for
  a 7 km edge at 24 deg, 2.6 m at 70 deg; both such edges of a pixel bow the same way, so pixel areas
  agree with geodesic polygon areas to 7e-8 relative on the Matimba crop.
- Projected grids (the India grid is square 10 km cells in a Lambert conformal conic projection) are
  clipped in their own plane, where their cells are exact squares. LCC is conformal, not equal-area (its
  area scale changes by up to 1 % per degree of latitude over India), so a piece's area on the ellipsoid
  is the integral over it of the area factor (ellipsoid area per plane area, from PROJ at the cell
  corners), taken linear across each pixel: the piece's plane area and first moments give it exactly,
  pieces add up to the pixel, and the factor is scaled so that the pixel's total is its equal-area area,
  the same as on a latitude/longitude grid.

Pixels whose corners are not a convex quadrilateral (degenerate, crossed, or around a pole) are left out
and counted. Longitudes are unwrapped per pixel, so a pixel crossing the antimeridian stays whole; a
latitude/longitude grid is periodic in longitude, so such a pixel lands on both ends of a global grid, or
on a grid whose longitudes run past 180 (e.g. 170..190).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray

from kizuna.core.geodesy import WGS84_A_M
from kizuna.eo.grids import (
    E_WGS84,
    Grid,
    authalic_q,
    convex_quads,
    crs_areal_scale,
    equal_area_xy,
    latlon_grid,
    polygon_area,
    read_cell_grid,
)
from kizuna.errors import InputError

__all__ = [
    "Grid",
    "Regridded",
    "authalic_q",
    "equal_area_xy",
    "latlon_grid",
    "regrid_conservative",
    "combine",
    "polygon_area",
    "read_cell_grid",
    "crs_areal_scale",
]

# vertex slots of a clipped piece: pixels are convex quadrilaterals (others are left out), and a convex
# quadrilateral cut by four lines has at most 8 vertices
_CAP = 32


@numba.njit(inline="always")
def _split(buf, src, n, axis, c, lo, hi):
    """Cut polygon ``buf[src]`` (n vertices, rows x and y) by the line coord[axis] == c into the part below
    (into ``buf[lo]``) and above (into ``buf[hi]``); return both sizes.

    Both parts share the computed crossing points, so their areas add up to the polygon's to rounding."""
    nlo = 0
    nhi = 0
    for k in range(n):
        k1 = k + 1 if k + 1 < n else 0
        ax = buf[src, 0, k]
        ay = buf[src, 1, k]
        bx = buf[src, 0, k1]
        by = buf[src, 1, k1]
        a = ax if axis == 0 else ay
        b = bx if axis == 0 else by
        if a <= c:
            buf[lo, 0, nlo] = ax
            buf[lo, 1, nlo] = ay
            nlo += 1
        if a >= c:
            buf[hi, 0, nhi] = ax
            buf[hi, 1, nhi] = ay
            nhi += 1
        if (a < c < b) or (b < c < a):
            t = (c - a) / (b - a)
            if axis == 0:
                ix, iy = c, ay + t * (by - ay)
            else:
                ix, iy = ax + t * (bx - ax), c
            buf[lo, 0, nlo] = ix
            buf[lo, 1, nlo] = iy
            buf[hi, 0, nhi] = ix
            buf[hi, 1, nhi] = iy
            nlo += 1
            nhi += 1
    return nlo, nhi


@numba.njit(inline="always")
def _bisect(edges, v, strict):
    """Return the number of ascending edges below v (strict) or at or below v."""
    lo = 0
    hi = edges.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if edges[mid] < v or (not strict and edges[mid] == v):
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(inline="always")
def _weight(buf, src, n, s0, sx, sy):
    """Return the integral over polygon ``buf[src]`` (n vertices) of s0 + sx x + sy y: its signed area
    times s0 plus its first moments times sx and sy (shoelace sums)."""
    a = 0.0
    mx = 0.0
    my = 0.0
    for k in range(n):
        k1 = k + 1 if k + 1 < n else 0
        x0, y0, x1, y1 = buf[src, 0, k], buf[src, 1, k], buf[src, 0, k1], buf[src, 1, k1]
        cr = x0 * y1 - x1 * y0
        a += cr
        mx += (x0 + x1) * cr
        my += (y0 + y1) * cr
    return 0.5 * a * s0 + (mx * sx + my * sy) / 6.0


@numba.njit(cache=True)
def _regrid_kernel(
    xc, yc, value, s0, sx, sy, x_edges, y_edges, cell_ok, period, column, weight, npix, inside, cut, ncut
):
    """Accumulate each pixel's overlap areas and column x area onto the cells; a piece's area (m^2) is the
    integral over it of s0 + sx x + sy y in plane coordinates relative to the pixel's first corner.

    Each pixel is cut by the row edges it spans, from south to north, and each row's piece by the column
    edges it spans, from west to east; pieces below, above or beside the grid, or in cells that are not
    part of it, are dropped. ``cut`` adds up the areas of all pieces, kept or dropped, and ``ncut`` counts
    the clippings of each pixel (one per periodic shift that reaches the grid): the pieces of a clipping
    partition the pixel, so ``cut`` must equal ``ncut`` times its area from the corners."""
    n = xc.shape[0]
    nv = xc.shape[1]
    ny = y_edges.shape[0] - 1
    nx = x_edges.shape[0] - 1
    # polygon slots: remainder of the pixel, the row piece and its remainder, the cell piece, spares
    buf = np.empty((6, 2, _CAP))
    for p in range(n):
        ox = xc[p, 0]
        oy = yc[p, 0]
        minx = maxx = ox
        miny = maxy = oy
        for k in range(nv):
            minx = min(minx, xc[p, k])
            maxx = max(maxx, xc[p, k])
            miny = min(miny, yc[p, k])
            maxy = max(maxy, yc[p, k])
        if maxy <= y_edges[0] or miny >= y_edges[ny]:
            continue
        i0 = max(_bisect(y_edges, miny, False) - 1, 0)
        i1 = min(_bisect(y_edges, maxy, True) - 1, ny - 1)
        kmin = 0
        kmax = 0
        if period > 0.0:
            kmin = int(math.ceil((x_edges[0] - maxx) / period))
            kmax = int(math.floor((x_edges[nx] - minx) / period))
        for ks in range(kmin, kmax + 1):
            sh = ks * period
            if maxx + sh <= x_edges[0] or minx + sh >= x_edges[nx]:
                continue
            j0 = max(_bisect(x_edges, minx + sh, False) - 1, 0)
            j1 = min(_bisect(x_edges, maxx + sh, True) - 1, nx - 1)
            # the pixel in coordinates relative to its first corner; cell edges moved by the same amount
            m = nv
            rem, spare = 0, 1
            ncut[p] += 1
            for k in range(nv):
                buf[rem, 0, k] = xc[p, k] - ox
                buf[rem, 1, k] = yc[p, k] - oy
            for i in range(i0, i1 + 2):
                c = y_edges[i] - oy
                ms = 0
                if c > miny - oy:
                    ms, m = _split(buf, rem, m, 1, c, 2, spare)
                    rem, spare = spare, rem
                    if c >= maxy - oy:
                        m = 0
                if i == i0 or ms < 3:
                    if i == i0 and ms >= 3:  # the piece below the grid
                        cut[p] += _weight(buf, 2, ms, s0[p], sx[p], sy[p])
                    if m < 3:
                        break
                    continue
                # the piece in row i - 1 (slot 2), cut along x
                row = i - 1
                srem, sspare = 2, 3
                for j in range(j0, j1 + 2):
                    cx = x_edges[j] - ox - sh
                    mp = 0
                    if cx > minx - ox:
                        mp, ms = _split(buf, srem, ms, 0, cx, 4, sspare)
                        srem, sspare = sspare, srem
                        if cx >= maxx - ox:
                            ms = 0
                    if mp >= 3:
                        w = _weight(buf, 4, mp, s0[p], sx[p], sy[p])
                        cut[p] += w
                        if j > j0 and cell_ok[row, j - 1] and w != 0.0:
                            column[row, j - 1] += value[p] * w
                            weight[row, j - 1] += w
                            npix[row, j - 1] += 1
                            inside[p] += w
                    if ms < 3:
                        break
                if ms >= 3:  # the piece east of the grid
                    cut[p] += _weight(buf, srem, ms, s0[p], sx[p], sy[p])
                if m < 3:
                    break
            if m >= 3:  # the piece north of the grid
                cut[p] += _weight(buf, rem, m, s0[p], sx[p], sy[p])


@numba.njit(cache=True)
def _prepare_kernel(lat, lon, value, a_m, e, lon_u, x, y, area, flags):
    """Per pixel: unwrap corner longitudes, project the corners to the equal-area plane (m), take the
    signed area (m^2) and flag 1 = usable corners, 2 = also a convex quadrilateral."""
    e2 = e * e
    for p in range(lat.shape[0]):
        flags[p] = 0
        finite = math.isfinite(value[p])
        for k in range(4):
            finite = finite and math.isfinite(lat[p, k]) and math.isfinite(lon[p, k]) and abs(lat[p, k]) <= 90
        if not finite:
            continue
        lo_min = lo_max = lon[p, 0]
        for k in range(4):
            lu = lon[p, 0] + ((lon[p, k] - lon[p, 0] + 180.0) % 360.0 - 180.0)
            lon_u[p, k] = lu
            lo_min = min(lo_min, lu)
            lo_max = max(lo_max, lu)
            sn = math.sin(math.radians(lat[p, k]))
            es = e * sn
            q = (1.0 - e2) * (sn / (1.0 - es * es) - math.log((1.0 - es) / (1.0 + es)) / (2.0 * e))
            x[p, k] = a_m * math.radians(lu)
            y[p, k] = 0.5 * a_m * q
        if lo_max - lo_min >= 90.0:
            continue
        flags[p] = 1
        u1, v1 = x[p, 1] - x[p, 0], y[p, 1] - y[p, 0]
        u2, v2 = x[p, 2] - x[p, 0], y[p, 2] - y[p, 0]
        u3, v3 = x[p, 3] - x[p, 0], y[p, 3] - y[p, 0]
        area[p] = 0.5 * (u1 * v2 - u2 * v1 + u2 * v3 - u3 * v2)
        n_pos = 0
        n_neg = 0
        for k in range(4):
            k1 = (k + 1) % 4
            k2 = (k + 2) % 4
            cr = (x[p, k1] - x[p, k]) * (y[p, k2] - y[p, k1]) - (y[p, k1] - y[p, k]) * (x[p, k2] - x[p, k1])
            if cr > 0:
                n_pos += 1
            elif cr < 0:
                n_neg += 1
        if n_pos == 4 or n_neg == 4:
            flags[p] = 2


def _run_kernel(
    xg: NDArray, yg: NDArray, v: NDArray, s0: NDArray, sx: NDArray, sy: NDArray, grid: Grid, period: float
) -> tuple[NDArray, ...]:
    """Run the clipping kernel; return column (mol), weight (m^2), pixel counts per cell, each pixel's
    area inside the grid (m^2), the summed area of all its clipped pieces (m^2) and number of clippings."""
    ny, nx = grid.shape
    column = np.zeros((ny, nx))
    weight = np.zeros((ny, nx))
    npix = np.zeros((ny, nx), dtype=np.int32)
    inside = np.zeros(v.size)
    cut = np.zeros(v.size)
    ncut = np.zeros(v.size, dtype=np.int64)
    x_edges = np.ascontiguousarray(grid.x_edges, dtype=np.float64)
    y_edges = np.ascontiguousarray(grid.y_edges, dtype=np.float64)
    cell_ok = np.ascontiguousarray(grid.cell_ok, dtype=np.bool_)
    _regrid_kernel(
        xg, yg, v, s0, sx, sy, x_edges, y_edges, cell_ok, period, column, weight, npix, inside, cut, ncut
    )
    return column, weight, npix, inside, cut, ncut


@dataclass(frozen=True, eq=False)
class Regridded:
    """Pixels regridded onto a Grid: per cell the NO2 amount (mol) and overlap area (m^2) of the valid
    pixels and how many pixels touch it; per run the pixels' own total and what fell outside the grid."""

    column_mol: NDArray[np.float64]
    weight_m2: NDArray[np.float64]
    n_pixels: NDArray[np.int32]
    n_orbits: NDArray[np.int32]
    pixels_total_mol: float
    pixels_area_m2: float
    outside_mol: float
    outside_area_m2: float
    n_valid: int
    n_bad_corners: int
    n_partly_outside: int
    n_outside: int
    clipped_total_mol: float = math.nan

    @property
    def mean_mol_m2(self) -> NDArray[np.float64]:
        """Return the area-weighted mean column of each cell (mol m-2), NaN where no pixel overlaps."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.weight_m2 > 0.0, self.column_mol / self.weight_m2, np.nan)

    @property
    def grid_total_mol(self) -> float:
        """Return the grid's NO2 amount, sum over cells of mean x weight (mol)."""
        return float(np.sum(self.column_mol))

    @property
    def conservation_rel(self) -> float:
        """Return |clipped total - pixel total| / |pixel total| (dimensionless): the mass balance of the
        clipping, where the clipped total is the grid total plus the pieces measured outside the grid (sum
        of column x area of every piece the pixels were cut into) and the pixel total uses each pixel's
        area from its corners; NaN when the clipped total was not recorded.

        (``grid total + outside_mol = pixel total`` holds by definition, since ``outside_mol`` is what the
        grid did not receive, so it cannot test the clipping; this can.)"""
        return abs(self.clipped_total_mol - self.pixels_total_mol) / max(abs(self.pixels_total_mol), 1e-300)


def _area_factor_model(
    grid: Grid, xg: NDArray, yg: NDArray, area_m2: NDArray, good: NDArray
) -> tuple[NDArray, NDArray, NDArray]:
    """Return per pixel (s0, sx, sy): ellipsoid area per plane area as s0 + sx u + sy v in plane
    coordinates (u, v) relative to the pixel's first corner, scaled so it integrates to area_m2.

    The factor at the corners is interpolated bilinearly from the grid's corner table and fitted by a plane
    (least squares over the four corners). A linear factor integrates exactly through the pieces' areas and
    first moments, so pieces add up to the pixel, and each piece gets its own area to second order."""
    g_tab = grid.inv_scale_corners
    if g_tab is None:
        raise InputError(f"grid {grid.name}: no area factors; expected a grid from read_cell_grid")
    ny, nx = grid.shape
    dx = (grid.x_edges[-1] - grid.x_edges[0]) / nx
    dy = (grid.y_edges[-1] - grid.y_edges[0]) / ny
    fx = np.clip((np.where(good[:, None], xg, 0.0) - grid.x_edges[0]) / dx, 0.0, nx)
    fy = np.clip((np.where(good[:, None], yg, 0.0) - grid.y_edges[0]) / dy, 0.0, ny)
    j = np.minimum(fx.astype(np.int64), nx - 1)
    i = np.minimum(fy.astype(np.int64), ny - 1)
    tx, ty = fx - j, fy - i
    g = (g_tab[i, j] * (1 - tx) + g_tab[i, j + 1] * tx) * (1 - ty) + (
        g_tab[i + 1, j] * (1 - tx) + g_tab[i + 1, j + 1] * tx
    ) * ty
    u = np.where(good[:, None], xg - xg[:, :1], 0.0)
    v = np.where(good[:, None], yg - yg[:, :1], 0.0)
    size = np.maximum(np.max(np.abs(u), axis=1) + np.max(np.abs(v), axis=1), 1.0)[:, None]
    un, vn = u / size, v / size
    su, sv, suu, svv, suv = un.sum(1), vn.sum(1), (un * un).sum(1), (vn * vn).sum(1), (un * vn).sum(1)
    normal = np.stack([[np.full_like(su, 4.0), su, sv], [su, suu, suv], [sv, suv, svv]]).transpose(2, 0, 1)
    normal[~good] = np.eye(3)
    rhs = np.stack([g.sum(1), (un * g).sum(1), (vn * g).sum(1)], axis=1)
    coef = np.linalg.solve(normal, rhs[..., None])[..., 0]
    g0, gx, gy = coef[:, 0], coef[:, 1] / size[:, 0], coef[:, 2] / size[:, 0]
    u1, v1 = np.roll(u, -1, axis=1), np.roll(v, -1, axis=1)
    cross = u * v1 - u1 * v
    a = 0.5 * cross.sum(axis=1)
    mx = ((u + u1) * cross).sum(axis=1) / 6.0
    my = ((v + v1) * cross).sum(axis=1) / 6.0
    raw = g0 * a + gx * mx + gy * my
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(good & (raw != 0.0), area_m2 / raw, 0.0)
    return g0 * f, gx * f, gy * f


def regrid_conservative(
    no2_mol_m2: NDArray[np.float64],
    lat_corners_deg: NDArray[np.float64],
    lon_corners_deg: NDArray[np.float64],
    grid: Grid,
) -> Regridded:
    """Spread each pixel's column (mol m-2) over the cells it overlaps in proportion to the overlap area
    (m^2 on the WGS84 ellipsoid); pixels are quadrilaterals given by four corners (deg), in order."""
    v = np.asarray(no2_mol_m2, dtype=np.float64).ravel()
    lat = np.asarray(lat_corners_deg, dtype=np.float64).reshape(-1, 4)
    lon = np.asarray(lon_corners_deg, dtype=np.float64).reshape(-1, 4)
    if not (lat.shape[0] == lon.shape[0] == v.shape[0]):
        raise InputError(
            f"pixel arrays: {v.shape[0]} columns, {lat.shape[0]} and {lon.shape[0]} corner sets; "
            "expected one set of 4 corners per column"
        )
    n = v.shape[0]
    lon_u, xe, ye = np.zeros((n, 4)), np.zeros((n, 4)), np.zeros((n, 4))
    area_ea, flags = np.zeros(n), np.zeros(n, dtype=np.int8)
    _prepare_kernel(lat, lon, v, WGS84_A_M, E_WGS84, lon_u, xe, ye, area_ea, flags)
    ok, good = flags >= 1, flags == 2
    s0, sx, sy = np.sign(area_ea), np.zeros(n), np.zeros(n)
    if grid.is_latlon:
        # move each pixel by whole turns, in degrees, so that its first corner lies in the grid's longitude
        # range where it can: a pixel edge and a cell edge at the same longitude then get the same x (a
        # shift by 2 pi a in the plane would differ in the last bits and leave slivers in the next cell)
        west_deg = (
            float(grid.lon_edges_deg[0])
            if grid.lon_edges_deg is not None
            else math.degrees(float(grid.x_edges[0]) / WGS84_A_M)
        )
        turns = np.floor((np.where(ok, lon_u[:, 0], west_deg) - west_deg) / 360.0 + 1e-12)
        xg, yg = WGS84_A_M * np.radians(lon_u - 360.0 * turns[:, None]), ye
        period = 2.0 * math.pi * WGS84_A_M
    else:
        xg, yg = grid.to_plane(np.where(ok[:, None], lon_u, 0.0), np.where(ok[:, None], lat, 0.0))
        good &= np.all(np.isfinite(xg) & np.isfinite(yg), axis=1)
        good &= convex_quads(np.where(good[:, None], xg, 0.0), np.where(good[:, None], yg, 0.0))
        s0, sx, sy = _area_factor_model(grid, xg, yg, np.abs(area_ea), good)
        period = 0.0
    idx = np.flatnonzero(good)
    column, weight, npix, inside, cut, ncut = _run_kernel(
        *(np.ascontiguousarray(arr[idx]) for arr in (xg, yg, v, s0, sx, sy)), grid, period
    )
    a = np.abs(area_ea[idx])
    out = a - inside
    tiny = 1e-9 * a
    # all pieces of each clipping of a pixel together are the pixel; pixels never clipped lie off the grid
    clipped = np.where(ncut > 0, cut - np.maximum(ncut - 1, 0) * a, a)
    return Regridded(
        column_mol=column,
        weight_m2=weight,
        n_pixels=npix,
        n_orbits=(weight > 0).astype(np.int32),
        pixels_total_mol=float(np.sum(v[idx] * a)),
        pixels_area_m2=float(np.sum(a)),
        outside_mol=float(np.sum(v[idx] * out)),
        outside_area_m2=float(np.sum(out)),
        n_valid=int(idx.size),
        n_bad_corners=int(np.count_nonzero(np.isfinite(v)) - idx.size),
        n_partly_outside=int(np.count_nonzero((out > tiny) & (inside > tiny))),
        n_outside=int(np.count_nonzero(inside <= tiny)),
        clipped_total_mol=float(np.sum(v[idx] * clipped)),
    )


def combine(parts: list[Regridded]) -> Regridded:
    """Sum regridded results on one grid (e.g. the orbits of a month): cell means become the
    overlap-area-weighted means of all pixels, and n_orbits counts the results that cover each cell."""
    if not parts:
        raise InputError("no regridded results to combine; expected at least one")
    shape = parts[0].column_mol.shape
    if any(p.column_mol.shape != shape for p in parts):
        raise InputError("regridded results on different grids; expected one grid for all")

    column = np.zeros(shape)
    weight = np.zeros(shape)
    npix = np.zeros(shape, dtype=np.int32)
    norb = np.zeros(shape, dtype=np.int32)
    for p in parts:
        column += p.column_mol
        weight += p.weight_m2
        npix += p.n_pixels
        norb += p.n_orbits

    def total(name: str) -> float:
        return sum(getattr(p, name) for p in parts)

    return Regridded(
        column_mol=column,
        weight_m2=weight,
        n_pixels=npix,
        n_orbits=norb,
        pixels_total_mol=float(total("pixels_total_mol")),
        pixels_area_m2=float(total("pixels_area_m2")),
        outside_mol=float(total("outside_mol")),
        outside_area_m2=float(total("outside_area_m2")),
        n_valid=int(total("n_valid")),
        n_bad_corners=int(total("n_bad_corners")),
        n_partly_outside=int(total("n_partly_outside")),
        n_outside=int(total("n_outside")),
        clipped_total_mol=float(total("clipped_total_mol")),
    )
