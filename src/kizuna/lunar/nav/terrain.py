"""Deterministic synthetic lunar terrain that can be evaluated anywhere at any resolution.

The terrain lives in the landing frame L (origin on the 1737.4 km reference sphere below the target,
x east, y north, z up, metres). Its surface is

    z(x, y) = sqrt(R^2 - x^2 - y^2) - R + h(x, y)

where ``h`` is the sum of a crater population and a fractal background. Both are generated lazily from
a seed: craters are drawn per octave of diameter ([D, 2D)) in square tiles whose contents depend only on
(seed, octave, tile index), so any region can be evaluated at any resolution without storing the world,
and the same crater is always the same crater. Evaluating at a resolution ``dx`` includes every crater
wider than about two cells; smaller ones are below what that resolution can show.

Crater population: cumulative density N(>D) = k / D^2 per unit area, the lunar-mare equilibrium slope
(Trask 1966: N = 10^10.9 D^-2 per 10^6 km^2 with D in metres, i.e. k = 0.079); ``density_k`` scales it.

Crater shape (simple craters): a bowl with rim-to-floor depth d and rim height h_r above the pre-impact
surface, exterior rim falling off as (r/R)^-3 to zero at 3R (McGetchin et al. 1973 ejecta thickness law).
Fresh craters have d/D = 0.196 and h_r/D = 0.036 (Pike 1977, lunar simple craters); degradation
state s in [0, 1] lowers depth to 0.08 D and rim to 30 % of fresh, and rounds the rim crest.

The tile hashing and the splat loops are written by hand with numba: no library evaluates a procedural
crater field lazily over tiles, and the loops run over millions of cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from kizuna.core.constants import MOON_RADIUS_M
from kizuna.errors import InputError

__all__ = ["TerrainSpec", "Terrain", "Grid"]

# Trask (1966) equilibrium crater density on the lunar maria, N(>D) = K / D^2 (dimensionless K).
TRASK_EQUILIBRIUM_K = 10**10.9 / 1e6 / 1e6  # per 10^6 km^2 -> per m^2, D in m: 0.0794

FRESH_DEPTH_RATIO = 0.196  # Pike (1977): d/D of fresh lunar simple craters
FRESH_RIM_RATIO = 0.036  # Pike (1977): h_r/D of fresh lunar simple craters
DEGRADED_DEPTH_RATIO = 0.08
DEGRADED_RIM_FRACTION = 0.3
EJECTA_CUTOFF = 3.0  # rim falls to zero at 3 radii
TILE_PER_D = 16.0  # tile side in units of the octave's smallest diameter
NOISE_SLOPE = 0.006  # fractal background: amplitude = NOISE_SLOPE * wavelength at every octave

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_OFFSET = 1 << 40


@nb.njit(cache=True, inline="always")
def _mix(z: np.uint64) -> np.uint64:
    # splitmix64 finaliser (Steele, Lea & Flood 2014)
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@nb.njit(cache=True, inline="always")
def _key(seed: int, a: int, b: int, c: int) -> np.uint64:
    h = _mix(np.uint64(seed) + _GOLDEN)
    h = _mix(h ^ np.uint64(a + _OFFSET))
    h = _mix(h ^ np.uint64(b + _OFFSET) * _GOLDEN)
    return _mix(h ^ np.uint64(c + _OFFSET))


@nb.njit(cache=True, inline="always")
def _uniform(state: np.uint64) -> tuple[np.uint64, float]:
    state = state + _GOLDEN
    return state, float(_mix(state) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@nb.njit(cache=True)
def _tile_craters(seed, octave, ix, iy, d0, k):
    """Craters of one tile: arrays x, y, D, s (m, m, m, -)."""
    dlo = d0 * 2.0**octave
    tile = TILE_PER_D * dlo
    lam = 0.75 * k * tile * tile / (dlo * dlo)  # k (1/D^2 - 1/(2D)^2) * area
    state = _key(seed, octave, ix, iy)
    # Poisson count by inversion (lam is ~15, so this is short)
    state, u = _uniform(state)
    n = 0
    p = math.exp(-lam)
    c = p
    while u > c and n < 200:
        n += 1
        p *= lam / n
        c += p
    xs = np.empty(n)
    ys = np.empty(n)
    ds = np.empty(n)
    ss = np.empty(n)
    for i in range(n):
        state, u1 = _uniform(state)
        state, u2 = _uniform(state)
        state, u3 = _uniform(state)
        state, u4 = _uniform(state)
        xs[i] = (ix + u1) * tile
        ys[i] = (iy + u2) * tile
        ds[i] = dlo / math.sqrt(1.0 - 0.75 * u3)  # inverse CDF of N(>D) ~ D^-2 on [dlo, 2 dlo)
        ss[i] = u4
    return xs, ys, ds, ss


@nb.njit(cache=True, inline="always")
def _profile(r_over_R, D, s):
    """Height (m) of a crater of diameter D and degradation s at normalised radius r/R."""
    depth = D * (FRESH_DEPTH_RATIO - (FRESH_DEPTH_RATIO - DEGRADED_DEPTH_RATIO) * s)
    rim = D * FRESH_RIM_RATIO * (1.0 - (1.0 - DEGRADED_RIM_FRACTION) * s)
    if r_over_R < 1.0:
        t = 1.0 - r_over_R * r_over_R
        # exponent 1 (parabolic bowl, sharp rim) for fresh craters, up to 3 (rounded rim) when degraded
        return rim - depth * t ** (1.0 + 2.0 * s)
    if r_over_R < EJECTA_CUTOFF:
        c = 1.0 / EJECTA_CUTOFF**3
        return rim * (r_over_R**-3 - c) / (1.0 - c)
    return 0.0


@nb.njit(cache=True, inline="always")
def _lattice(seed, level, i, j):
    h = _key(seed, 1000 + level, i, j)
    return float(h >> np.uint64(11)) * (2.0 / 9007199254740992.0) - 1.0


@nb.njit(cache=True, inline="always")
def _noise_at(x, y, seed, lam_max, lam_min):
    """Fractal value noise (m): octaves of wavelength lam_max / 2^k down to lam_min."""
    total = 0.0
    lam = lam_max
    level = 0
    while lam >= lam_min:
        gx = x / lam
        gy = y / lam
        i = math.floor(gx)
        j = math.floor(gy)
        fx = gx - i
        fy = gy - j
        sx = fx * fx * (3.0 - 2.0 * fx)
        sy = fy * fy * (3.0 - 2.0 * fy)
        ii = int(i)
        jj = int(j)
        v00 = _lattice(seed, level, ii, jj)
        v10 = _lattice(seed, level, ii + 1, jj)
        v01 = _lattice(seed, level, ii, jj + 1)
        v11 = _lattice(seed, level, ii + 1, jj + 1)
        a = v00 + sx * (v10 - v00)
        b = v01 + sx * (v11 - v01)
        total += NOISE_SLOPE * lam * (a + sy * (b - a))
        lam *= 0.5
        level += 1
    return total


@nb.njit(cache=True)
def _craters_in_box(seed, d0, k, n_oct, bx0, bx1, by0, by1, dmin, dmax, pad):
    """Craters with dmin <= D < dmax whose centre lies in the box grown by pad * D_max(octave)."""
    out_x = []
    out_y = []
    out_d = []
    out_s = []
    for octave in range(n_oct):
        dlo = d0 * 2.0**octave
        if 2.0 * dlo <= dmin or dlo >= dmax:
            continue
        tile = TILE_PER_D * dlo
        grow = pad * 2.0 * dlo
        x0 = bx0 - grow
        x1 = bx1 + grow
        y0 = by0 - grow
        y1 = by1 + grow
        for ix in range(int(math.floor(x0 / tile)), int(math.floor(x1 / tile)) + 1):
            for iy in range(int(math.floor(y0 / tile)), int(math.floor(y1 / tile)) + 1):
                xs, ys, ds, ss = _tile_craters(seed, octave, ix, iy, d0, k)
                for i in range(xs.size):
                    if x0 <= xs[i] < x1 and y0 <= ys[i] < y1 and dmin <= ds[i] < dmax:
                        out_x.append(xs[i])
                        out_y.append(ys[i])
                        out_d.append(ds[i])
                        out_s.append(ss[i])
    return np.array(out_x), np.array(out_y), np.array(out_d), np.array(out_s)


@nb.njit(cache=True)
def _splat_grid(h, x0, y0, dx, cx, cy, cd, cs):
    """Add crater profiles to a grid h[j, i] whose cell (i, j) centre is (x0 + i dx, y0 + j dx)."""
    ny, nx = h.shape
    for c in range(cx.size):
        R = 0.5 * cd[c]
        reach = EJECTA_CUTOFF * R
        i0 = max(0, int(math.ceil((cx[c] - reach - x0) / dx)))
        i1 = min(nx - 1, int(math.floor((cx[c] + reach - x0) / dx)))
        j0 = max(0, int(math.ceil((cy[c] - reach - y0) / dx)))
        j1 = min(ny - 1, int(math.floor((cy[c] + reach - y0) / dx)))
        invR = 1.0 / R
        for j in range(j0, j1 + 1):
            yy = (y0 + j * dx - cy[c]) * invR
            for i in range(i0, i1 + 1):
                xx = (x0 + i * dx - cx[c]) * invR
                r = math.sqrt(xx * xx + yy * yy)
                if r < EJECTA_CUTOFF:
                    h[j, i] += _profile(r, cd[c], cs[c])


@nb.njit(cache=True, parallel=True)
def _noise_grid(h, x0, y0, dx, seed, lam_max, lam_min):
    """Add the fractal background to a grid; same values as _noise_at, lattice values computed once."""
    ny, nx = h.shape
    lam = lam_max
    level = 0
    while lam >= lam_min:
        i_lo = int(math.floor(x0 / lam))
        j_lo = int(math.floor(y0 / lam))
        i_hi = int(math.floor((x0 + (nx - 1) * dx) / lam)) + 1
        j_hi = int(math.floor((y0 + (ny - 1) * dx) / lam)) + 1
        lat = np.empty((j_hi - j_lo + 1, i_hi - i_lo + 1))
        for jj in range(j_lo, j_hi + 1):
            for ii in range(i_lo, i_hi + 1):
                lat[jj - j_lo, ii - i_lo] = _lattice(seed, level, ii, jj)
        amp = NOISE_SLOPE * lam
        sx_row = np.empty(nx)
        ix_row = np.empty(nx, dtype=np.int64)
        for i in range(nx):
            gx = (x0 + i * dx) / lam
            fi = math.floor(gx)
            fx = gx - fi
            ix_row[i] = int(fi) - i_lo
            sx_row[i] = fx * fx * (3.0 - 2.0 * fx)
        for j in nb.prange(ny):
            gy = (y0 + j * dx) / lam
            fj = math.floor(gy)
            fy = gy - fj
            sy = fy * fy * (3.0 - 2.0 * fy)
            jr = int(fj) - j_lo
            for i in range(nx):
                ii = ix_row[i]
                sx = sx_row[i]
                a = lat[jr, ii] + sx * (lat[jr, ii + 1] - lat[jr, ii])
                b = lat[jr + 1, ii] + sx * (lat[jr + 1, ii + 1] - lat[jr + 1, ii])
                h[j, i] += amp * (a + sy * (b - a))
        lam *= 0.5
        level += 1


@nb.njit(cache=True)
def _height_points(px, py, seed, d0, k, n_oct, dmin, dmax, lam_max, lam_min):
    """Height h (m, without the sphere) at scattered points, every crater with D >= dmin included."""
    out = np.empty(px.size)
    for p in range(px.size):
        x = px[p]
        y = py[p]
        total = _noise_at(x, y, seed, lam_max, lam_min)
        for octave in range(n_oct):
            dlo = d0 * 2.0**octave
            if 2.0 * dlo <= dmin:
                continue
            tile = TILE_PER_D * dlo
            tx = int(math.floor(x / tile))
            ty = int(math.floor(y / tile))
            for ix in range(tx - 1, tx + 2):
                for iy in range(ty - 1, ty + 2):
                    xs, ys, ds, ss = _tile_craters(seed, octave, ix, iy, d0, k)
                    for i in range(xs.size):
                        if ds[i] < dmin or ds[i] >= dmax:
                            continue
                        R = 0.5 * ds[i]
                        r = math.sqrt((x - xs[i]) ** 2 + (y - ys[i]) ** 2) / R
                        if r < EJECTA_CUTOFF:
                            total += _profile(r, ds[i], ss[i])
        out[p] = total
    return out


@dataclass(frozen=True)
class TerrainSpec:
    """Parameters of a synthetic terrain: seed, crater density and size range (m), background."""

    seed: int = 1
    density_k: float = 0.5 * TRASK_EQUILIBRIUM_K
    d_min_m: float = 0.1
    d_max_m: float = 3000.0
    noise_wavelength_max_m: float = 8000.0
    noise_wavelength_min_m: float = 0.1

    def __post_init__(self) -> None:
        if not (self.density_k > 0 and math.isfinite(self.density_k)):
            raise InputError(f"terrain density_k={self.density_k}: expected a positive number")
        if not (0 < self.d_min_m < self.d_max_m):
            raise InputError(
                f"terrain crater diameters d_min_m={self.d_min_m}, d_max_m={self.d_max_m}: "
                "expected 0 < d_min_m < d_max_m"
            )


@dataclass(frozen=True)
class Grid:
    """A regular grid in frame L: cell (i, j) centre at (x0 + i dx, y0 + j dx), array shape (ny, nx)."""

    x0: float
    y0: float
    dx: float
    nx: int
    ny: int

    @property
    def x(self) -> NDArray[np.float64]:
        """Return the cell-centre x coordinates (m, frame L)."""
        return self.x0 + self.dx * np.arange(self.nx)

    @property
    def y(self) -> NDArray[np.float64]:
        """Return the cell-centre y coordinates (m, frame L)."""
        return self.y0 + self.dx * np.arange(self.ny)

    @classmethod
    def covering(cls, x_min: float, x_max: float, y_min: float, y_max: float, dx: float) -> Grid:
        """Return the grid of spacing dx (m) whose cells cover the box (m, frame L)."""
        nx = int(math.ceil((x_max - x_min) / dx)) + 1
        ny = int(math.ceil((y_max - y_min) / dx)) + 1
        return cls(float(x_min), float(y_min), float(dx), nx, ny)


class Terrain:
    """A synthetic lunar terrain in frame L: heights, crater lists and the onboard crater map."""

    def __init__(self, spec: TerrainSpec | None = None) -> None:
        self.spec = spec or TerrainSpec()
        s = self.spec
        self._n_oct = int(math.ceil(math.log2(s.d_max_m / s.d_min_m)))

    # -- heights ---------------------------------------------------------------------------------
    def sphere_drop(self, x: ArrayLike, y: ArrayLike) -> NDArray[np.float64]:
        """Return the height (m, negative) of the reference sphere below the tangent plane at (x, y)."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        R = MOON_RADIUS_M
        return np.sqrt(R * R - x * x - y * y) - R

    def relief(self, x: ArrayLike, y: ArrayLike, resolution_m: float = 0.05) -> NDArray[np.float64]:
        """Return the relief h (m) above the reference sphere at points (m, frame L).

        Craters narrower than twice ``resolution_m`` and background wavelengths shorter than it are left out.
        """
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        x, y = np.broadcast_arrays(x, y)
        s = self.spec
        flat = _height_points(
            np.ascontiguousarray(x.ravel()),
            np.ascontiguousarray(y.ravel()),
            s.seed,
            s.d_min_m,
            s.density_k,
            self._n_oct,
            max(2.0 * resolution_m, s.d_min_m),
            s.d_max_m,
            s.noise_wavelength_max_m,
            max(resolution_m, s.noise_wavelength_min_m),
        )
        return flat.reshape(x.shape)

    def height(self, x: ArrayLike, y: ArrayLike, resolution_m: float = 0.05) -> NDArray[np.float64]:
        """Return the surface z (m, frame L) at points (x, y), curvature of the sphere included."""
        return self.sphere_drop(x, y) + self.relief(x, y, resolution_m)

    def relief_grid(self, grid: Grid) -> NDArray[np.float64]:
        """Return the relief h (m) on a regular grid, array (ny, nx), resolution = grid spacing."""
        s = self.spec
        h = np.zeros((grid.ny, grid.nx))
        dmin = max(2.0 * grid.dx, s.d_min_m)
        x1 = grid.x0 + grid.dx * (grid.nx - 1)
        y1 = grid.y0 + grid.dx * (grid.ny - 1)
        cx, cy, cd, cs = _craters_in_box(
            s.seed, s.d_min_m, s.density_k, self._n_oct,
            grid.x0, x1, grid.y0, y1, dmin, s.d_max_m, 0.5 * EJECTA_CUTOFF,
        )  # fmt: skip
        _splat_grid(h, grid.x0, grid.y0, grid.dx, cx, cy, cd, cs)
        _noise_grid(
            h, grid.x0, grid.y0, grid.dx, s.seed,
            s.noise_wavelength_max_m, max(grid.dx, s.noise_wavelength_min_m),
        )  # fmt: skip
        return h

    def height_grid(self, grid: Grid) -> NDArray[np.float64]:
        """Return the surface z (m, frame L) on a regular grid, array (ny, nx)."""
        xx, yy = np.meshgrid(grid.x, grid.y)
        return self.sphere_drop(xx, yy) + self.relief_grid(grid)

    # -- craters ---------------------------------------------------------------------------------
    def craters(
        self,
        x_min: float,
        x_max: float,
        y_min: float,
        y_max: float,
        d_min_m: float,
        d_max_m: float = np.inf,
    ) -> pd.DataFrame:
        """Return the exact craters with centres in the box (m, frame L) and d_min_m <= D < d_max_m.

        Columns: x_m, y_m, z_m (centre of the rim circle, frame L), diameter_m, depth_m, rim_height_m,
        degradation (0 fresh .. 1 degraded).
        """
        s = self.spec
        cx, cy, cd, cs = _craters_in_box(
            s.seed, s.d_min_m, s.density_k, self._n_oct,
            float(x_min), float(x_max), float(y_min), float(y_max), float(d_min_m),
            float(min(d_max_m, s.d_max_m)), 0.0,
        )  # fmt: skip
        depth = cd * (FRESH_DEPTH_RATIO - (FRESH_DEPTH_RATIO - DEGRADED_DEPTH_RATIO) * cs)
        rim = cd * FRESH_RIM_RATIO * (1.0 - (1.0 - DEGRADED_RIM_FRACTION) * cs)
        z = self._rim_plane_height(cx, cy, cd)
        order = np.argsort(-cd, kind="stable")
        return pd.DataFrame(
            {
                "x_m": cx[order],
                "y_m": cy[order],
                "z_m": z[order],
                "diameter_m": cd[order],
                "depth_m": depth[order],
                "rim_height_m": rim[order],
                "degradation": cs[order],
            }
        )

    def _rim_plane_height(self, cx: NDArray, cy: NDArray, cd: NDArray, n: int = 12) -> NDArray[np.float64]:
        """Mean surface height (m, frame L) on each crater's rim circle: the z of its rim-circle centre."""
        if cx.size == 0:
            return np.empty(0)
        ang = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
        px = cx[:, None] + 0.5 * cd[:, None] * np.cos(ang)
        py = cy[:, None] + 0.5 * cd[:, None] * np.sin(ang)
        # features much smaller than the crater do not move its rim plane: evaluate at D/20
        out = np.empty(cx.size)
        for res in np.unique(np.round(np.log2(cd / 20.0))):
            sel = np.round(np.log2(cd / 20.0)) == res
            out[sel] = self.height(px[sel], py[sel], resolution_m=2.0**res).mean(axis=1)
        return out
