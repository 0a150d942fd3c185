"""Where to drill for water ice within a rover's reach of a base: cells whose regolith stays cold enough
for ice at drillable depth, ranked by how shallow the ice is and how quickly the rover gets there.

Model
-----
Candidates are the cells of the illumination map's region whose centres lie within ``reach_km`` of the
base cell's centre (map-plane distance). Each is given a regolith temperature history by
:func:`kizuna.lunar.surface.thermal.regolith_temperature`, driven by its own insolation over the
illumination period (sampled every ``thermal_step_hours``):

    flux = S0 (1 AU / d)^2 * f(t) * max(cos(i(t)), 0)   (W m^-2, on the ground)

with ``S0`` = 1361 W m^-2, ``d`` the cell's distance to the Sun, ``f`` the visible fraction of the solar
disc over the cell's horizon and ``i`` the incidence angle, which also sets the albedo (Keihm 1984).
By default the ground is taken as **flat** (the horizontal of the lunar sphere, ``cos i =
sin(elevation)``). Near the pole the Sun then stays within about 1.5 deg + colatitude of the horizon, the
albedo at such grazing incidence is high (0.8 at 88.5 deg) and flat ground absorbs only a few W m^-2, so
nearly every flat cell within a degree of the pole comes out ice-stable at the surface; slopes that face
the Sun are heated far more. ``terrain_slopes=True`` uses the cell's DEM surface normal instead,
``cos i = n . s`` (:func:`kizuna.lunar.surface.sites.terrain_normal`, central differences, ``s`` the unit
vector toward the Sun). Beware that on a coarse DEM a ridge or peak cell gets the normal of the plane
through its neighbours, which can face away from a Sun that its horizon (marched from the node itself)
lets it see: such a cell is then modelled too cold. A small constant ``background_w_m2`` is absorbed
everywhere, for the scattered sunlight and infrared from surrounding sunlit terrain that keeps the floors
of permanently shadowed regions at 25-70 K (Paige et al. 2010, Science 330, 479). The column is spun up
on the period itself, taken as one cycle of a periodic forcing.

A cell's ice-stable depth is the shallowest depth below which its modelled maximum temperature stays
under ``threshold_k`` (110 K; :func:`kizuna.lunar.surface.thermal.ice_stable_depth`). A cell is a drill
candidate when it is a permanently shadowed cell (PSR) of the map or its ice-stable depth is within
``drill_depth_m`` (1.5 m). Each candidate gets the least-time, slope-limited route from the base
(:func:`kizuna.lunar.surface.traverse.plan_static`, over the DEM cells within 1.5 x ``reach_km`` of the
base); candidates the rover cannot reach are left out (counted in ``attrs['n_unreachable']``).

Ranking: ice within drill depth first, then the shallower ice-stable depth, then the shorter route
time. Large maps are kept fast by modelling at most ``max_cells`` cells: beyond that the candidates are
taken on a regular sub-lattice of the grid through the base (every k-th row and column,
``attrs['cell_stride']`` = k).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from kizuna.core import ephemeris as eph
from kizuna.core.constants import AU_M
from kizuna.core.raster import Raster
from kizuna.errors import InputError
from kizuna.lunar.surface.illumination_map import IlluminationMap
from kizuna.lunar.surface.sites import (
    SkySeries,
    cell_latlon,
    cell_of,
    has_horizons,
    sky_series,
    terrain_normal,
)
from kizuna.lunar.surface.thermal import (
    DRILL_DEPTH_M,
    ICE_STABILITY_THRESHOLD_K,
    SOLAR_CONSTANT_W_M2,
    RegolithModel,
    ice_stable_depth,
    regolith_temperature,
)
from kizuna.lunar.surface.traverse import RoverModel, plan_static

__all__ = [
    "DEFAULT_BACKGROUND_W_M2",
    "DRILL_COLUMNS",
    "ROUTE_BOX_FACTOR",
    "cell_insolation",
    "insolation_w_m2",
    "rank_drill_sites",
]

# Background flux absorbed in shadow (W m^-2): scattered sunlight and terrain infrared. With it a PSR floor
# settles at ((0.5 + 0.018) / (0.95 sigma))^(1/4) = 56 K, inside the 25-70 K that Diviner measured in
# polar cold traps (Paige et al. 2010).
DEFAULT_BACKGROUND_W_M2 = 0.5
# Routes are planned over the DEM cells within this multiple of the reach from the base.
ROUTE_BOX_FACTOR = 1.5

DRILL_COLUMNS = (
    "rank",
    "lat_deg",
    "lon_deg",
    "row",
    "col",
    "psr",
    "distance_km",
    "sun_fraction",
    "max_surface_k",
    "max_k_at_drill_depth",
    "ice_depth_m",
    "ice_within_drill",
    "route_time_h",
    "route_distance_km",
)


def insolation_w_m2(
    sun_fraction: ArrayLike, cos_incidence: ArrayLike, sun_distance_m: ArrayLike
) -> NDArray[np.float64]:
    """Return the solar flux on the ground (W m^-2): S0 (1 AU / d)^2 * fraction * max(cos(incidence), 0).

    ``sun_fraction`` is the visible fraction of the solar disc (0-1), ``cos_incidence`` the cosine of the
    angle between the ground normal and the Sun (sin(elevation) on flat ground), ``sun_distance_m`` (m).
    """
    f = np.asarray(sun_fraction, dtype=np.float64)
    mu = np.asarray(cos_incidence, dtype=np.float64)
    d = np.asarray(sun_distance_m, dtype=np.float64)
    return SOLAR_CONSTANT_W_M2 * (AU_M / d) ** 2 * f * np.maximum(mu, 0.0)


def cell_insolation(
    imap: IlluminationMap,
    rows: ArrayLike,
    cols: ArrayLike,
    times: ArrayLike,
    terrain_slopes: bool = False,
) -> tuple[NDArray[np.float64], NDArray[np.float64], SkySeries]:
    """Return the solar flux on the ground (W m^-2), the incidence angle (rad) and the sky, (n_t, n_cells).

    For DEM cells (rows, cols) with horizons at UTC times; see the module notes for the formula and for
    ``terrain_slopes`` (False: flat ground).
    """
    r = np.atleast_1d(np.asarray(rows, dtype=np.int64))
    c = np.atleast_1d(np.asarray(cols, dtype=np.int64))
    sky = sky_series(imap, r, c, eph.sun_position_me(times), name="cell", sun_direction=terrain_slopes)
    if terrain_slopes:
        normal = terrain_normal(imap.dem)[r, c]  # (n, 3)
        mu = np.einsum("tnk,nk->tn", sky.sun_local, normal)
    else:
        mu = np.sin(sky.sun_elevation_rad)
    flux = insolation_w_m2(sky.sun_fraction, mu, sky.sun_distance_m)
    return flux, np.arccos(np.clip(mu, 0.0, 1.0)), sky


def _positive(name: str, value: float) -> float:
    ok = isinstance(value, int | float | np.number) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value > 0.0):
        raise InputError(f"drill {name} = {value!r}: expected a finite number > 0")
    return float(value)


def _candidates(
    imap: IlluminationMap, base: tuple[int, int], reach_m: float, max_cells: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Region cells with horizons within reach_m of the base: rows, cols, distances (m) and the stride."""
    dx = abs(imap.dem.transform.a)
    r0, r1, c0, c1 = imap.window
    rr, cc = np.mgrid[r0:r1, c0:c1]
    dist = dx * np.hypot(rr - base[0], cc - base[1])
    keep = (dist <= reach_m) & imap.region[r0:r1, c0:c1]
    keep[keep] = has_horizons(imap, rr[keep], cc[keep])
    stride = 1
    count = int(keep.sum())
    if count > max_cells:
        stride = int(math.ceil(math.sqrt(count / max_cells)))
        while True:
            lattice = ((rr - base[0]) % stride == 0) & ((cc - base[1]) % stride == 0)
            if int((keep & lattice).sum()) <= max_cells:
                break
            stride += 1
        keep &= lattice
    return rr[keep], cc[keep], dist[keep], stride


def _route_box(dem: Raster, base: tuple[int, int], reach_m: float) -> tuple[int, int, int, int]:
    """DEM window (r0, r1, c0, c1) of the cells within ROUTE_BOX_FACTOR x reach of the base."""
    dx = abs(dem.transform.a)
    half = int(math.ceil(ROUTE_BOX_FACTOR * reach_m / dx)) + 1
    nr, nc = dem.shape
    r0, r1 = max(0, base[0] - half), min(nr, base[0] + half + 1)
    return r0, r1, max(0, base[1] - half), min(nc, base[1] + half + 1)


def rank_drill_sites(
    imap: IlluminationMap,
    base_lat_deg: float,
    base_lon_deg: float,
    reach_km: float,
    rover: RoverModel,
    *,
    n: int | None = None,
    background_w_m2: float = DEFAULT_BACKGROUND_W_M2,
    thermal_step_hours: float = 6.0,
    drill_depth_m: float = DRILL_DEPTH_M,
    threshold_k: float = ICE_STABILITY_THRESHOLD_K,
    max_depth_m: float | None = None,
    max_cells: int = 400,
    model: RegolithModel | None = None,
    terrain_slopes: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Return drill candidates within reach_km (map plane) of a base at lat/lon (deg), best first.

    See the module notes for the model and the ranking. Columns :data:`DRILL_COLUMNS`: rank, lat/lon
    (deg), DEM row/col, psr (bool), distance_km from the base, mean sun_fraction, maximum surface
    temperature and maximum temperature at the drill depth (K), ice_depth_m (NaN: none in the column),
    ice_within_drill, route_time_h and route_distance_km (plan_static, least time). ``n`` keeps the first
    n rows (None: all). ``attrs`` hold base_row, base_col, n_cells_modelled, n_unreachable,
    cell_stride and thermal_step_hours.
    """
    if not isinstance(imap, IlluminationMap):
        raise InputError(f"drill: expected an IlluminationMap, got {type(imap).__name__}")
    if not isinstance(rover, RoverModel):
        raise InputError(f"drill rover: expected a RoverModel, got {type(rover).__name__}")
    reach_m = _positive("reach_km", reach_km) * 1000.0
    _positive("thermal_step_hours", thermal_step_hours)
    _positive("drill_depth_m", drill_depth_m)
    _positive("threshold_k", threshold_k)
    bg = background_w_m2
    if not (isinstance(bg, int | float) and not isinstance(bg, bool) and math.isfinite(bg) and bg >= 0.0):
        raise InputError(f"drill background_w_m2 = {background_w_m2!r}: expected a finite number >= 0")
    if not (isinstance(max_cells, int | np.integer) and not isinstance(max_cells, bool) and max_cells >= 1):
        raise InputError(f"drill max_cells = {max_cells!r}: expected an integer >= 1")
    if n is not None and not (isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 1):
        raise InputError(f"drill n = {n!r}: expected None or an integer >= 1")
    dem = imap.dem
    base = cell_of(dem, base_lat_deg, base_lon_deg, "base")
    rows, cols, dist, stride = _candidates(imap, base, reach_m, int(max_cells))

    t_stride = max(1, int(round(thermal_step_hours / imap.step_hours)))
    times = imap.times[::t_stride]
    dt_s = t_stride * imap.step_hours * 3600.0
    n_cells = rows.size
    depth = np.full(n_cells, np.nan)
    within = np.zeros(n_cells, dtype=bool)
    t_surf = np.full(n_cells, np.nan)
    t_drill = np.full(n_cells, np.nan)
    sun_mean = np.full(n_cells, np.nan)
    if n_cells:
        flux, incidence, sky = cell_insolation(imap, rows, cols, times, terrain_slopes)
        sun_mean = sky.sun_fraction.mean(axis=0)
        dark_result = None
        for i in range(n_cells):
            f = flux[:, i]
            if not f.any() and dark_result is not None:
                res = dark_result
            else:
                th = regolith_temperature(f, dt_s, incidence[:, i], model=model, background_w_m2=bg)
                ice = ice_stable_depth(
                    th.depths_m, th.max_k, threshold_k, drill_depth_m=drill_depth_m, max_depth_m=max_depth_m
                )
                at_drill = th.at_depth(min(drill_depth_m, float(th.depths_m[-1])), "max")
                res = (ice.depth_m, ice.within_drill_depth, float(th.max_k[0]), at_drill)
                if not f.any():
                    dark_result = res
            depth[i], within[i], t_surf[i], t_drill[i] = res
            if progress is not None:
                progress(i + 1, n_cells)

    psr = imap.psr[rows, cols] == 1
    cand = np.flatnonzero(psr | within)
    box = _route_box(dem, base, reach_m)
    heights = dem.data[box[0] : box[1], box[2] : box[3]]
    b_local = (base[0] - box[0], base[1] - box[2])
    dx = abs(dem.transform.a)
    route_t = np.full(n_cells, np.inf)
    route_d = np.full(n_cells, np.inf)
    for i in cand:
        goal = (int(rows[i]) - box[0], int(cols[i]) - box[2])
        route = plan_static(heights, dx, b_local, goal, rover, cost="time")
        if route.reachable:
            route_t[i] = route.total_time_s
            route_d[i] = route.distance_m
    reach_ok = cand[np.isfinite(route_t[cand])]
    depth_key = np.where(np.isfinite(depth), depth, np.inf)
    order = reach_ok[np.lexsort((route_t[reach_ok], depth_key[reach_ok], ~within[reach_ok]))]
    if n is not None:
        order = order[: int(n)]
    lat, lon = cell_latlon(dem, rows[order], cols[order])
    df = pd.DataFrame(
        {
            "rank": np.arange(1, order.size + 1, dtype=np.int64),
            "lat_deg": lat,
            "lon_deg": lon,
            "row": rows[order].astype(np.int64),
            "col": cols[order].astype(np.int64),
            "psr": psr[order],
            "distance_km": dist[order] / 1000.0,
            "sun_fraction": sun_mean[order],
            "max_surface_k": t_surf[order],
            "max_k_at_drill_depth": t_drill[order],
            "ice_depth_m": depth[order],
            "ice_within_drill": within[order],
            "route_time_h": route_t[order] / 3600.0,
            "route_distance_km": route_d[order] / 1000.0,
        },
        columns=list(DRILL_COLUMNS),
    )
    df.attrs.update(
        {
            "base_row": base[0],
            "base_col": base[1],
            "n_cells_modelled": int(n_cells),
            "n_candidates": int(cand.size),
            "n_unreachable": int(cand.size - reach_ok.size),
            "cell_stride": int(stride),
            "thermal_step_hours": float(t_stride * imap.step_hours),
        }
    )
    return df
