"""Base and landing sites near a pole: terrain slope, distance to permanently shadowed regions (PSRs),
site requirements and a ranking of the cells that meet them; and the look-ups that the surface planning
commands share (map cell <-> latitude/longitude, and what the sky does at given cells).

Ranking score
-------------
A cell that meets every requirement gets the score

    score = sun_fraction * (1 - max_darkness_hours / period_hours)

where ``sun_fraction`` is its mean visible fraction of the solar disc over the illumination period (a
proxy for the mean solar power of an array that tracks the Sun), ``max_darkness_hours`` its longest run
without any Sun and ``period_hours`` the length of the period (``len(times) * step_hours``). The score is
in [0, 1]: 1 for a cell lit all the time, and it falls both with less light and with a longer night to
survive on batteries. Ties are broken by the larger Earth fraction (direct-to-Earth links). Cells are
picked greedily in that order, skipping any cell closer than ``min_separation_km`` (in the map plane)
to one already picked, so the list holds distinct sites rather than one ridge's neighbouring cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from kizuna.core.constants import SUN_RADIUS_M
from kizuna.core.raster import Raster
from kizuna.errors import InputError
from kizuna.lunar.surface.horizon import NOT_COMPUTED, HorizonTable
from kizuna.lunar.surface.illumination import (
    EARTH_RADIUS_M,
    _polar_crs,
    map_geometry,
    visibility_series,
)
from kizuna.lunar.surface.illumination_map import IlluminationMap

__all__ = [
    "SITE_COLUMNS",
    "SiteRequirements",
    "SkySeries",
    "cell_latlon",
    "cell_of",
    "has_horizons",
    "psr_distance_m",
    "rank_sites",
    "site_mask",
    "sky_series",
    "slope_deg",
    "terrain_normal",
]

SITE_COLUMNS = (
    "lat_deg",
    "lon_deg",
    "row",
    "col",
    "sun_fraction",
    "max_darkness_hours",
    "earth_fraction",
    "slope_deg",
    "psr_distance_km",
    "score",
)


# ------------------------------------------------------------------------------------------ terrain layers


def slope_deg(dem: Raster) -> NDArray[np.float64]:
    """Return the terrain slope (deg) of every DEM cell from central differences of its heights (m).

    The gradient is taken along the map axes with the cell sizes of the transform (numpy.gradient:
    central differences inside, one-sided at the edges); NaN heights give NaN slopes nearby.
    """
    if not isinstance(dem, Raster):
        raise InputError(f"slope: expected a Raster DEM, got {type(dem).__name__}")
    t = dem.transform
    if t.b != 0.0 or t.d != 0.0:
        raise InputError(f"DEM transform {tuple(t)[:6]}: expected an axis-aligned grid")
    z = dem.data
    if min(z.shape) < 2:
        raise InputError(f"DEM of shape {z.shape}: expected at least 2 x 2 cells for a slope")
    gy, gx = np.gradient(z, abs(t.e), abs(t.a))
    return np.degrees(np.arctan(np.hypot(gx, gy)))


def terrain_normal(dem: Raster) -> NDArray[np.float64]:
    """Return unit normals (rows, cols, 3) of the DEM surface in each cell's (map +x, map +y, up) frame.

    From central differences of the heights (numpy.gradient, one-sided at the edges) along the map axes:
    ``n = (-dz/dx, -dz/dy, 1) / norm``; ``degrees(arccos(n[..., 2]))`` is :func:`slope_deg`.
    """
    if not isinstance(dem, Raster):
        raise InputError(f"terrain normal: expected a Raster DEM, got {type(dem).__name__}")
    t = dem.transform
    if t.b != 0.0 or t.d != 0.0 or min(dem.shape) < 2:
        raise InputError(f"DEM of shape {dem.shape}: expected an axis-aligned grid of at least 2 x 2 cells")
    dz_dy, dz_dx = np.gradient(dem.data, t.e, t.a)  # signed spacings: map y of rows, map x of columns
    n = np.stack([-dz_dx, -dz_dy, np.ones_like(dz_dx)], axis=-1)
    return n / np.linalg.norm(n, axis=-1, keepdims=True)


def psr_distance_m(psr: ArrayLike, dx_m: float) -> NDArray[np.float64]:
    """Return the distance (m, map plane) from every cell centre to the nearest PSR cell centre.

    ``psr`` is a boolean map (True = permanently shadowed) or the uint8 map of an
    :class:`IlluminationMap` (1 = PSR; 0 lit and 255 outside the region count as not PSR). The distance
    is 0 on PSR cells and +inf everywhere when the map holds no PSR cell.
    """
    from scipy.ndimage import distance_transform_edt

    a = np.asarray(psr)
    if a.ndim != 2 or a.size == 0:
        raise InputError(f"PSR map of shape {a.shape}: expected a non-empty 2-D array")
    if not (isinstance(dx_m, int | float | np.number) and math.isfinite(dx_m) and dx_m > 0.0):
        raise InputError(f"cell size {dx_m!r} m: expected a finite number > 0")
    mask = a.astype(bool) if a.dtype == np.bool_ else a == 1
    if not mask.any():
        return np.full(a.shape, np.inf)
    return distance_transform_edt(~mask) * float(dx_m)


# ------------------------------------------------------------------------------------------- requirements


def _opt(name: str, value: float | None, lo: float, hi: float = math.inf) -> None:
    """InputError unless value is None or a finite number in [lo, hi]."""
    if value is None:
        return
    ok = isinstance(value, int | float | np.number) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and lo <= value <= hi):
        raise InputError(
            f"SiteRequirements.{name} = {value!r}: expected None or a number in [{lo:g}, {hi:g}]"
        )


@dataclass(frozen=True)
class SiteRequirements:
    """What a site must offer; None leaves a requirement out (fractions 0-1, hours, deg, m).

    ``max_psr_distance_m`` keeps sites near permanently shadowed cells (LUPEX wants to reach ice);
    ``min_psr_distance_m`` keeps them off and away from the cold traps themselves.
    """

    min_sun_fraction: float | None = None
    max_darkness_hours: float | None = None
    min_earth_fraction: float | None = None
    max_slope_deg: float | None = None
    max_psr_distance_m: float | None = None
    min_psr_distance_m: float | None = None

    def __post_init__(self) -> None:
        _opt("min_sun_fraction", self.min_sun_fraction, 0.0, 1.0)
        _opt("max_darkness_hours", self.max_darkness_hours, 0.0)
        _opt("min_earth_fraction", self.min_earth_fraction, 0.0, 1.0)
        _opt("max_slope_deg", self.max_slope_deg, 0.0, 90.0)
        _opt("max_psr_distance_m", self.max_psr_distance_m, 0.0)
        _opt("min_psr_distance_m", self.min_psr_distance_m, 0.0)
        lo, hi = self.min_psr_distance_m, self.max_psr_distance_m
        if lo is not None and hi is not None and lo > hi:
            raise InputError(
                f"SiteRequirements: min_psr_distance_m {lo:g} > max_psr_distance_m {hi:g}; "
                "expected min <= max"
            )


def _cell_size(dem: Raster) -> float:
    """Square cell size (m) of a DEM; InputError for rectangular or rotated cells."""
    t = dem.transform
    if abs(abs(t.a) - abs(t.e)) > 1e-9 * abs(t.a) or t.b != 0.0 or t.d != 0.0:
        raise InputError(f"DEM transform {tuple(t)[:6]}: expected square, axis-aligned cells")
    return abs(t.a)


def _site_layers(imap: IlluminationMap) -> dict[str, NDArray[np.float64]]:
    """The layers the requirements read: the illumination statistics, slope (deg), PSR distance (m)."""
    if not isinstance(imap, IlluminationMap):
        raise InputError(f"sites: expected an IlluminationMap, got {type(imap).__name__}")
    out = {k: imap.layers[k] for k in ("sun_fraction", "max_darkness_hours", "earth_fraction")}
    out["slope_deg"] = slope_deg(imap.dem)
    out["psr_distance_m"] = psr_distance_m(imap.psr, _cell_size(imap.dem))
    return out


def _mask(layers: dict[str, NDArray[np.float64]], region: NDArray[np.bool_], req: SiteRequirements):
    """Cells of the region with finite statistics that meet every requirement."""
    ok = region & np.isfinite(layers["sun_fraction"]) & np.isfinite(layers["max_darkness_hours"])
    with np.errstate(invalid="ignore"):
        if req.min_sun_fraction is not None:
            ok &= layers["sun_fraction"] >= req.min_sun_fraction
        if req.max_darkness_hours is not None:
            ok &= layers["max_darkness_hours"] <= req.max_darkness_hours
        if req.min_earth_fraction is not None:
            ok &= layers["earth_fraction"] >= req.min_earth_fraction
        if req.max_slope_deg is not None:
            ok &= layers["slope_deg"] <= req.max_slope_deg
        if req.max_psr_distance_m is not None:
            ok &= layers["psr_distance_m"] <= req.max_psr_distance_m
        if req.min_psr_distance_m is not None:
            ok &= layers["psr_distance_m"] >= req.min_psr_distance_m
    return ok


def site_mask(imap: IlluminationMap, requirements: SiteRequirements | None = None) -> NDArray[np.bool_]:
    """Return True for the DEM cells of the map's region that meet every requirement (DEM shape)."""
    req = _requirements(requirements)
    return _mask(_site_layers(imap), imap.region, req)


def _requirements(requirements: SiteRequirements | None) -> SiteRequirements:
    if requirements is None:
        return SiteRequirements()
    if not isinstance(requirements, SiteRequirements):
        raise InputError(f"sites: expected SiteRequirements, got {type(requirements).__name__}")
    return requirements


def rank_sites(
    imap: IlluminationMap,
    requirements: SiteRequirements | None = None,
    n: int = 20,
    min_separation_km: float = 3.0,
) -> pd.DataFrame:
    """Return up to n distinct cells meeting the requirements, best score first (see the module notes).

    Columns :data:`SITE_COLUMNS`: planetocentric lat/lon (deg, lon east in [0, 360)), DEM row/col, the
    illumination statistics, slope (deg), distance to the nearest PSR cell (km) and the score.
    ``attrs['n_ok_cells']`` holds how many cells meet the requirements before the separation rule.
    """
    req = _requirements(requirements)
    if not (isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 1):
        raise InputError(f"sites n = {n!r}: expected an integer >= 1")
    if not (isinstance(min_separation_km, int | float) and math.isfinite(min_separation_km)):
        raise InputError(f"sites min_separation_km = {min_separation_km!r}: expected a number >= 0")
    if min_separation_km < 0.0:
        raise InputError(f"sites min_separation_km = {min_separation_km!r}: expected a number >= 0")
    layers = _site_layers(imap)
    ok = _mask(layers, imap.region, req)
    period_h = len(imap.times) * imap.step_hours
    rows, cols = np.nonzero(ok)
    sf = layers["sun_fraction"][rows, cols]
    dark = layers["max_darkness_hours"][rows, cols]
    earth = np.nan_to_num(layers["earth_fraction"][rows, cols], nan=0.0)
    score = sf * (1.0 - np.clip(dark / period_h, 0.0, 1.0)) if period_h > 0 else sf
    # best score first, then more Earth, then row/col for a stable order
    order = np.lexsort((cols, rows, -earth, -score))
    x, y = imap.dem.xy()
    px, py = x[cols[order]], y[rows[order]]
    sep2 = (min_separation_km * 1000.0) ** 2
    picked: list[int] = []
    for k in range(order.size):
        if picked and sep2 > 0.0:
            q = np.asarray(picked)
            if np.any((px[q] - px[k]) ** 2 + (py[q] - py[k]) ** 2 < sep2):
                continue
        picked.append(k)
        if len(picked) >= n:
            break
    sel = order[np.asarray(picked, dtype=np.int64)]
    r, c = rows[sel], cols[sel]
    lat, lon = cell_latlon(imap.dem, r, c)
    df = pd.DataFrame(
        {
            "lat_deg": lat,
            "lon_deg": lon,
            "row": r.astype(np.int64),
            "col": c.astype(np.int64),
            "sun_fraction": sf[sel],
            "max_darkness_hours": dark[sel],
            "earth_fraction": layers["earth_fraction"][r, c],
            "slope_deg": layers["slope_deg"][r, c],
            "psr_distance_km": layers["psr_distance_m"][r, c] / 1000.0,
            "score": score[sel],
        },
        columns=list(SITE_COLUMNS),
    )
    df.attrs["n_ok_cells"] = int(ok.sum())
    return df


# ------------------------------------------------------------------------------------ cells and lat/lon


def cell_latlon(
    dem: Raster, rows: ArrayLike, cols: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return planetocentric (lat_deg, lon_deg east in [0, 360)) of DEM cell centres (rows, cols)."""
    import pyproj

    crs = _polar_crs(dem)
    r = np.asarray(rows, dtype=np.float64)
    c = np.asarray(cols, dtype=np.float64)
    t = dem.transform
    x = t.c + t.a * (c + 0.5)
    y = t.f + t.e * (r + 0.5)
    lon, lat = pyproj.Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True).transform(x, y)
    return np.asarray(lat, dtype=np.float64), np.mod(np.asarray(lon, dtype=np.float64), 360.0)


def cell_of(dem: Raster, lat_deg: float, lon_deg: float, name: str = "point") -> tuple[int, int]:
    """Return the (row, col) of the DEM cell holding a planetocentric lat/lon (deg); InputError if outside."""
    import pyproj

    ok = all(isinstance(v, int | float | np.number) and math.isfinite(v) for v in (lat_deg, lon_deg))
    if not ok or abs(lat_deg) > 90.0:
        raise InputError(
            f"{name} latitude {lat_deg!r}, longitude {lon_deg!r}: expected finite degrees with |lat| <= 90"
        )
    crs = _polar_crs(dem)
    x, y = pyproj.Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True).transform(lon_deg, lat_deg)
    col, row = ~dem.transform @ (x, y)
    r, c = math.floor(row), math.floor(col)
    nr, nc = dem.shape
    if not (math.isfinite(row) and math.isfinite(col) and 0 <= r < nr and 0 <= c < nc):
        raise InputError(
            f"{name} latitude {lat_deg:g}, longitude {lon_deg:g} deg: outside the DEM's {nr} x {nc} map; "
            "expected a point on the map"
        )
    return int(r), int(c)


def _check_horizons(imap: IlluminationMap, rows: NDArray[np.int64], cols: NDArray[np.int64], name: str):
    """InputError unless every cell lies in the horizon window and has horizons."""
    r0, r1, c0, c1 = imap.window
    inside = (rows >= r0) & (rows < r1) & (cols >= c0) & (cols < c1)
    if not inside.all():
        k = int(np.flatnonzero(~inside)[0])
        raise InputError(
            f"{name} cell ({rows[k]}, {cols[k]}): outside the horizon window rows {r0}..{r1 - 1}, columns "
            f"{c0}..{c1 - 1} of the illumination map; expected a point near the pole (in its region)"
        )
    q = imap.horizons.elevation_q[0, rows - r0, cols - c0]
    if np.any(q == NOT_COMPUTED):
        k = int(np.flatnonzero(q == NOT_COMPUTED)[0])
        raise InputError(
            f"{name} cell ({rows[k]}, {cols[k]}): has no horizons (outside the illumination map's region); "
            "expected a point in the region"
        )


def has_horizons(imap: IlluminationMap, rows: ArrayLike, cols: ArrayLike) -> NDArray[np.bool_]:
    """Return True for DEM cells (rows, cols) that lie in the horizon window and have horizons."""
    r = np.asarray(rows, dtype=np.int64)
    c = np.asarray(cols, dtype=np.int64)
    r0, r1, c0, c1 = imap.window
    inside = (r >= r0) & (r < r1) & (c >= c0) & (c < c1)
    out = np.zeros(r.shape, dtype=bool)
    q = imap.horizons.elevation_q[0, r[inside] - r0, c[inside] - c0]
    out[inside] = q != NOT_COMPUTED
    return out


@dataclass(frozen=True, eq=False)
class SkySeries:
    """The Sun (and Earth) seen from map cells over times, each (n_times, n_cells).

    ``sun_fraction``/``earth_fraction``: visible fraction of the disc over the cell's horizon (0-1);
    ``sun_elevation_rad``: elevation of the Sun's centre above the cell's local horizontal plane (the
    sphere's, i.e. flat ground); ``sun_distance_m``: distance from the cell to the Sun (m);
    ``sun_local``: when asked for, unit vectors toward the Sun (n_times, n_cells, 3) in the cell's
    (map +x, map +y, up) frame.
    """

    sun_fraction: NDArray[np.float64]
    sun_elevation_rad: NDArray[np.float64]
    sun_distance_m: NDArray[np.float64]
    earth_fraction: NDArray[np.float64] | None
    sun_local: NDArray[np.float64] | None = None


def sky_series(
    imap: IlluminationMap,
    rows: ArrayLike,
    cols: ArrayLike,
    sun_me_m: ArrayLike,
    earth_me_m: ArrayLike | None = None,
    name: str = "cell",
    sun_direction: bool = False,
) -> SkySeries:
    """Return the Sun (and Earth) seen from DEM cells (rows, cols) for MOON_ME body vectors (m, (n_t, 3)).

    The cells must have horizons (lie in the map's region); only the horizon sub-window that holds them is
    used, so a few cells of a large map cost little.
    """
    r = np.atleast_1d(np.asarray(rows, dtype=np.int64)).ravel()
    c = np.atleast_1d(np.asarray(cols, dtype=np.int64)).ravel()
    if r.shape != c.shape or r.size == 0:
        raise InputError(f"{name}: expected as many rows as columns, at least one ({r.size}, {c.size})")
    _check_horizons(imap, r, c, name)
    w0, _, w2, _ = imap.window
    a, b, cc, d = int(r.min()), int(r.max()) + 1, int(c.min()), int(c.max()) + 1
    sub = HorizonTable(
        np.ascontiguousarray(imap.horizons.elevation_q[:, a - w0 : b - w0, cc - w2 : d - w2]),
        imap.horizons.dx_m,
        imap.horizons.observer_height_m,
        imap.horizons.unit_rad,
    )
    geo = map_geometry(imap.dem, (a, b, cc, d), imap.observer_height_m)
    flat = (r - a) * (d - cc) + (c - cc)
    sun = np.asarray(sun_me_m, dtype=np.float64)
    sf = visibility_series(sub, geo, sun, SUN_RADIUS_M, flat)
    basis = geo.basis.reshape(-1, 3, 3)[flat]  # (n, 3, 3): rows map +x, map +y, up
    pos = geo.r_me_m.reshape(-1, 3)[flat]  # (n, 3)
    v = sun[:, None, :] - pos[None, :, :]
    dist = np.linalg.norm(v, axis=-1)
    el = np.arcsin(np.clip(np.einsum("tnk,nk->tn", v, basis[:, 2, :]) / dist, -1.0, 1.0))
    local = np.einsum("nik,tnk->tni", basis, v) / dist[..., None] if sun_direction else None
    ef = None
    if earth_me_m is not None:
        ef = visibility_series(sub, geo, np.asarray(earth_me_m, dtype=np.float64), EARTH_RADIUS_M, flat)
    return SkySeries(sf, el, dist, ef, local)
