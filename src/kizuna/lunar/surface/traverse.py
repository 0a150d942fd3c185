"""Rover traverse planning over a slope-limited DEM grid, in space (Dijkstra) and in time (sunlight, Earth,
battery), for a LUPEX/VIPER-like rover at the lunar south pole.

Grid and moves
--------------
Heights ``heights_m[row, col]`` (m) sit on the nodes of a square grid of spacing ``dx_m`` (m), e.g. a DEM
in a polar stereographic plane. A rover stands on a node and moves to one of its 8 neighbours. A move has
horizontal length ``h = dx`` (straight) or ``dx * sqrt(2)`` (diagonal), ground length
``sqrt(h^2 + dz^2)`` and slope ``atan(|dz| / h)``; a move steeper than :attr:`RoverModel.max_slope_deg` is
forbidden, and so is any move to or from a NaN cell. Cells are ``(row, col)`` pairs.

Static planning
---------------
:func:`plan_static` is Dijkstra's algorithm (numba, indexed binary heap, O(N log N), memory O(N)) for the
shortest-time (ground length / speed) or shortest-distance route.

Time-expanded planning
----------------------
:func:`plan_time_expanded` finds the earliest arrival when the rover may only drive in sunlight (and, if
asked, with the Earth in view) and may wait in place. Time runs in steps of ``step_s``; ``sun_fraction[t]``
(visible fraction of the solar disc, 0..1) and ``earth_fraction[t]`` hold during step ``t``, i.e. over
``[t * step_s, (t + 1) * step_s)``. A move of duration ``tau = length / speed`` occupies
``m = max(1, ceil(tau / step_s))`` whole steps and needs the driving conditions at the *departure* cell in
every one of them. The battery, per step (Wh, with ``dt = step_s``)::

    E <- min(capacity, E + (P_sun * dt - drive_load * t_drive - park_load * (dt - t_drive)) / 3600)

where ``P_sun`` is the array power at the cell where the step starts (the departure cell during a move),
``t_drive = min(dt, tau - j * dt)`` in step ``j`` of a move (the rest of the last step is spent parked)
and ``t_drive = 0`` while waiting. A state whose energy ends any step below ``floor_wh`` is infeasible.

Since every transition is monotone in E, a state (step, cell) reached with more energy dominates the same
state with less. The planner is therefore an exact forward dynamic programme over steps that keeps, for
each (step, cell), the maximum energy with which the rover can be there, with an int8 predecessor code per
(step, cell): memory is about ``(n_steps + 1) * rows * cols`` bytes plus a few energy layers. Only the
cells within ``k`` moves of the start are visited at relative step ``k``.

Unreachable goals are results (``Route.reachable`` False, with a one-line ``reason``), not exceptions; a
NaN start or goal cell is such a result too. NaN sun or Earth fractions read as 0. Malformed input raises
:class:`kizuna.errors.InputError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numba as nb
import numpy as np
from numpy.typing import ArrayLike, NDArray

from kizuna.errors import InputError

__all__ = ["BatteryModel", "Route", "RoverModel", "plan_static", "plan_time_expanded"]

# the 8 neighbours; direction d and 7 - d are opposite
_DR = np.array([-1, -1, -1, 0, 0, 1, 1, 1], dtype=np.int64)
_DC = np.array([-1, 0, 1, -1, 1, -1, 0, 1], dtype=np.int64)
_WAIT = 8  # predecessor code: waited in place
_START = 9  # predecessor code: the start state
_NONE = -1


# ------------------------------------------------------------------------------------------------ models


def _finite(
    owner: str, name: str, value: float, lo: float = -math.inf, hi: float = math.inf, open_: str = ""
) -> None:
    """InputError unless value is a finite real in [lo, hi]; open_ holds 'lo'/'hi' for open ends."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (value > lo if "lo" in open_ else value >= lo)
    if not (ok and (value < hi if "hi" in open_ else value <= hi)):
        rng = f"{'(' if 'lo' in open_ else '['}{lo:g}, {hi:g}{')' if 'hi' in open_ else ']'}"
        raise InputError(f"{owner}.{name} = {value!r}: expected a finite number in {rng}")


@dataclass(frozen=True)
class RoverModel:
    """Rover mobility: speed (m/s), slope limit (deg) and the conditions needed to drive."""

    speed_m_s: float
    max_slope_deg: float
    min_sun_fraction_to_drive: float = 0.5
    need_earth_to_drive: bool = False

    def __post_init__(self) -> None:
        _finite("RoverModel", "speed_m_s", self.speed_m_s, 0.0, open_="lo")
        _finite("RoverModel", "max_slope_deg", self.max_slope_deg, 0.0, 90.0, open_="lo hi")
        _finite("RoverModel", "min_sun_fraction_to_drive", self.min_sun_fraction_to_drive, 0.0, 1.0)
        if not isinstance(self.need_earth_to_drive, bool | np.bool_):
            raise InputError(
                f"RoverModel.need_earth_to_drive = {self.need_earth_to_drive!r}: expected a bool"
            )


@dataclass(frozen=True)
class BatteryModel:
    """Solar array and battery (m^2, W, Wh).

    Solar input power (W) = ``solar_constant_w_m2 * array_area_m2 * array_efficiency * sun_fraction``: the
    array is taken as vertical and kept pointed at the Sun, which near the pole stays within a few degrees
    of the horizon, so there is no cosine (incidence) term. Energy is capped at ``capacity_wh``; a plan
    must never end a step below ``floor_wh``.
    """

    array_area_m2: float
    array_efficiency: float
    capacity_wh: float
    floor_wh: float
    initial_wh: float
    drive_load_w: float
    park_load_w: float
    solar_constant_w_m2: float = 1361.0

    def __post_init__(self) -> None:
        _finite("BatteryModel", "array_area_m2", self.array_area_m2, 0.0)
        _finite("BatteryModel", "array_efficiency", self.array_efficiency, 0.0, 1.0)
        _finite("BatteryModel", "capacity_wh", self.capacity_wh, 0.0, open_="lo")
        _finite("BatteryModel", "floor_wh", self.floor_wh, 0.0, self.capacity_wh)
        _finite("BatteryModel", "initial_wh", self.initial_wh, self.floor_wh, self.capacity_wh)
        _finite("BatteryModel", "drive_load_w", self.drive_load_w, 0.0)
        _finite("BatteryModel", "park_load_w", self.park_load_w, 0.0)
        _finite("BatteryModel", "solar_constant_w_m2", self.solar_constant_w_m2, 0.0)

    @property
    def full_sun_power_w(self) -> float:
        """Array output (W) with the whole solar disc visible."""
        return self.solar_constant_w_m2 * self.array_area_m2 * self.array_efficiency


@dataclass(frozen=True, eq=False)
class Route:
    """A planned route: cells (n, 2) (row, col) in visit order, times (s), length (m), energy (Wh).

    ``steps`` (absolute time step at which each cell is reached) and ``energy_wh`` (battery energy at the
    start of every step from the start step to the arrival step, inclusive) are set by
    :func:`plan_time_expanded` only; waits appear there as repeated cells. ``reason`` is empty when
    ``reachable``, else a one-line explanation.
    """

    reachable: bool
    cells: NDArray[np.int64]
    steps: NDArray[np.int64] | None
    total_time_s: float
    distance_m: float
    energy_wh: NDArray[np.float64] | None
    reason: str


# ------------------------------------------------------------------------------------------- numba kernels


@nb.njit(cache=True, inline="always")
def _edge(z, r, c, d, dx, max_slope_rad):
    """Ground length (m) of the move from (r, c) in direction d; -1 if off-grid, NaN or too steep."""
    rn = r + _DR[d]
    cn = c + _DC[d]
    if rn < 0 or cn < 0 or rn >= z.shape[0] or cn >= z.shape[1]:
        return -1.0
    za = z[r, c]
    zb = z[rn, cn]
    if not (math.isfinite(za) and math.isfinite(zb)):
        return -1.0
    h = dx * math.sqrt(2.0) if (_DR[d] != 0 and _DC[d] != 0) else dx
    dz = abs(zb - za)
    if math.atan(dz / h) > max_slope_rad:
        return -1.0
    return math.sqrt(h * h + dz * dz)


@nb.njit(cache=True, inline="always")
def _move_steps(tau, step_s):
    """Whole time steps occupied by a move of tau seconds."""
    return max(1, int(math.ceil(tau / step_s)))


@nb.njit(cache=True, inline="always")
def _step_energy(e, p_sun_w, t_drive_s, step_s, drive_w, park_w, cap_wh):
    """Battery energy (Wh) at the end of one step that began with e (Wh)."""
    e = e + (p_sun_w * step_s - drive_w * t_drive_s - park_w * (step_s - t_drive_s)) / 3600.0
    return min(e, cap_wh)


@nb.njit(cache=True)
def _sift_up(heap, pos, key, i):
    v = heap[i]
    while i > 0:
        p = (i - 1) >> 1
        if key[heap[p]] <= key[v]:
            break
        heap[i] = heap[p]
        pos[heap[i]] = i
        i = p
    heap[i] = v
    pos[v] = i


@nb.njit(cache=True)
def _sift_down(heap, pos, key, i, size):
    v = heap[i]
    while True:
        ch = 2 * i + 1
        if ch >= size:
            break
        if ch + 1 < size and key[heap[ch + 1]] < key[heap[ch]]:
            ch += 1
        if key[heap[ch]] >= key[v]:
            break
        heap[i] = heap[ch]
        pos[heap[i]] = i
        i = ch
    heap[i] = v
    pos[v] = i


@nb.njit(cache=True)
def _dijkstra(z, dx, max_slope_rad, inv_speed, r0, c0, rg, cg):
    """Least cost from (r0, c0) to (rg, cg), cost per move = length * inv_speed; inf if unreachable.

    Returns (cost, predecessor direction per cell (int8, -1 none), cells settled).
    """
    nr, nc = z.shape
    n = nr * nc
    cost = np.full(n, np.inf)
    done = np.zeros(n, np.bool_)
    pred = np.full(n, -1, np.int8)
    heap = np.empty(n, np.int64)
    pos = np.full(n, -1, np.int64)
    s = r0 * nc + c0
    g = rg * nc + cg
    cost[s] = 0.0
    heap[0] = s
    pos[s] = 0
    size = 1
    settled = 0
    while size > 0:
        u = heap[0]
        size -= 1
        pos[u] = -1
        if size > 0:
            heap[0] = heap[size]
            pos[heap[0]] = 0
            _sift_down(heap, pos, cost, 0, size)
        done[u] = True
        settled += 1
        if u == g:
            break
        r = u // nc
        c = u - r * nc
        for d in range(8):
            w = _edge(z, r, c, d, dx, max_slope_rad)
            if w < 0.0:
                continue
            v = (r + _DR[d]) * nc + (c + _DC[d])
            if done[v]:
                continue
            nd = cost[u] + w * inv_speed
            if nd < cost[v]:
                cost[v] = nd
                pred[v] = d
                if pos[v] < 0:
                    heap[size] = v
                    size += 1
                    _sift_up(heap, pos, cost, size - 1)
                else:
                    _sift_up(heap, pos, cost, pos[v])
    return cost[g], pred, settled


@nb.njit(cache=True)
def _walk_back_static(pred, nc, r0, c0, rg, cg):
    """Cells (n, 2) from (r0, c0) to (rg, cg) following the predecessor directions."""
    n = 1
    r, c = rg, cg
    while r != r0 or c != c0:
        d = pred[r * nc + c]
        r -= _DR[d]
        c -= _DC[d]
        n += 1
    out = np.empty((n, 2), np.int64)
    r, c = rg, cg
    for i in range(n - 1, -1, -1):
        out[i, 0] = r
        out[i, 1] = c
        if i > 0:
            d = pred[r * nc + c]
            r -= _DR[d]
            c -= _DC[d]
    return out


@nb.njit(cache=True)
def _drive_ok(sun, earth, use_earth, k, r, c, min_sun):
    """True if the rover may drive from (r, c) during step k (NaN fractions read as 0)."""
    s = sun[k, r, c]
    if s != s:
        s = 0.0
    if s < min_sun:
        return False
    return not use_earth or earth[k, r, c] > 0.0


@nb.njit(cache=True)
def _sun_w(sun, k, r, c, p_full):
    """Array power (W) at (r, c) during step k (NaN sun read as 0)."""
    s = sun[k, r, c]
    return 0.0 if s != s else p_full * s


@nb.njit(cache=True)
def _time_expanded(
    z, dx, max_slope_rad, speed, sun, earth, use_earth, min_sun, k0, r0, c0, rg, cg, e0, p_full, drive_w,
    park_w, cap, floor, step_s, nslot
):  # fmt: skip
    """Forward max-energy DP; returns (arrival step relative to k0 or -1, predecessor codes (K+1, nr, nc))."""
    n_t, nr, nc = sun.shape
    kk = n_t - k0
    pred = np.full((kk + 1, nr, nc), _NONE, np.int8)
    en = np.full((nslot, nr, nc), -np.inf)
    en[0, r0, c0] = e0
    pred[0, r0, c0] = _START
    last_pending = 0
    for i in range(kk + 1):
        s = i % nslot
        if en[s, rg, cg] > -np.inf:
            return i, pred
        if i == kk:
            break
        k = k0 + i
        rlo, rhi = max(0, r0 - i), min(nr - 1, r0 + i)
        clo, chi = max(0, c0 - i), min(nc - 1, c0 + i)
        alive = False
        for r in range(rlo, rhi + 1):
            for c in range(clo, chi + 1):
                e = en[s, r, c]
                if e == -np.inf:
                    continue
                alive = True
                # wait one step
                e1 = _step_energy(e, _sun_w(sun, k, r, c, p_full), 0.0, step_s, drive_w, park_w, cap)
                s1 = (i + 1) % nslot
                if e1 >= floor and e1 > en[s1, r, c]:
                    en[s1, r, c] = e1
                    pred[i + 1, r, c] = _WAIT
                    last_pending = max(last_pending, i + 1)
                # move to a neighbour
                for d in range(8):
                    length = _edge(z, r, c, d, dx, max_slope_rad)
                    if length < 0.0:
                        continue
                    tau = length / speed
                    m = _move_steps(tau, step_s)
                    if i + m > kk:
                        continue
                    ee = e
                    for j in range(m):
                        if not _drive_ok(sun, earth, use_earth, k + j, r, c, min_sun):
                            ee = -np.inf
                            break
                        td = min(step_s, tau - j * step_s)
                        ee = _step_energy(
                            ee, _sun_w(sun, k + j, r, c, p_full), td, step_s, drive_w, park_w, cap
                        )
                        if not (ee >= floor):
                            ee = -np.inf
                            break
                    if ee == -np.inf:
                        continue
                    rn, cn = r + _DR[d], c + _DC[d]
                    sm = (i + m) % nslot
                    if ee > en[sm, rn, cn]:
                        en[sm, rn, cn] = ee
                        pred[i + m, rn, cn] = d
                        last_pending = max(last_pending, i + m)
        en[s, rlo : rhi + 1, clo : chi + 1] = -np.inf
        if not alive and i >= last_pending:
            break
    return -1, pred


@nb.njit(cache=True)
def _walk_back_te(pred, z, dx, max_slope_rad, speed, step_s, r0, c0, i_arr, rg, cg):
    """Cells (n, 2) and relative steps (n,) of the DP's route, start first."""
    cells = np.empty((i_arr + 1, 2), np.int64)
    steps = np.empty(i_arr + 1, np.int64)
    n = 0
    i, r, c = i_arr, rg, cg
    while True:
        cells[n, 0] = r
        cells[n, 1] = c
        steps[n] = i
        n += 1
        code = pred[i, r, c]
        if code == _START:
            break
        if code == _WAIT:
            i -= 1
            continue
        rp, cp = r - _DR[code], c - _DC[code]
        length = _edge(z, rp, cp, code, dx, max_slope_rad)
        i -= _move_steps(length / speed, step_s)
        r, c = rp, cp
    return cells[:n][::-1].copy(), steps[:n][::-1].copy()


@nb.njit(cache=True)
def _energy_profile(
    cells, steps, z, dx, max_slope_rad, speed, sun, k0, e0, p_full, drive_w, park_w, cap, step_s
):  # fmt: skip
    """Battery energy (Wh) at the start of every step along the route, start step to arrival step."""
    out = np.empty(steps[-1] - steps[0] + 1)
    out[0] = e0
    e = e0
    for q in range(cells.shape[0] - 1):
        r, c = cells[q, 0], cells[q, 1]
        i0 = steps[q]
        k = k0 + i0
        if cells[q + 1, 0] == r and cells[q + 1, 1] == c:
            e = _step_energy(e, _sun_w(sun, k, r, c, p_full), 0.0, step_s, drive_w, park_w, cap)
            out[i0 + 1] = e
            continue
        d = 0
        for dd in range(8):
            if r + _DR[dd] == cells[q + 1, 0] and c + _DC[dd] == cells[q + 1, 1]:
                d = dd
        tau = _edge(z, r, c, d, dx, max_slope_rad) / speed
        for j in range(steps[q + 1] - i0):
            td = min(step_s, tau - j * step_s)
            e = _step_energy(e, _sun_w(sun, k + j, r, c, p_full), td, step_s, drive_w, park_w, cap)
            out[i0 + j + 1] = e
    return out


# ------------------------------------------------------------------------------------------------ checks


def _grid(heights_m: ArrayLike, dx_m: float) -> NDArray[np.float64]:
    """Heights as C-contiguous float64; InputError for a bad shape, infinities or a bad spacing."""
    try:
        z = np.ascontiguousarray(heights_m, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"traverse heights_m: expected a 2-D array of heights (m) ({exc})") from exc
    if z.ndim != 2 or z.size == 0:
        raise InputError(f"traverse heights_m of shape {z.shape}: expected a non-empty 2-D grid (m)")
    if np.isinf(z).any():
        raise InputError("traverse heights_m: infinite heights; expected finite heights or NaN for no data")
    _finite("traverse", "dx_m", dx_m, 0.0, open_="lo")
    return z


def _cell(name: str, cell: object, shape: tuple[int, ...]) -> tuple[int, int]:
    """(row, col) as ints inside the grid; InputError otherwise."""
    try:
        r, c = cell  # type: ignore[misc]
        ok = all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in (r, c))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"traverse {name} = {cell!r}: expected a (row, col) pair of integers")
    if not (0 <= r < shape[0] and 0 <= c < shape[1]):
        raise InputError(f"traverse {name} = ({r}, {c}): outside the {shape[0]} x {shape[1]} grid")
    return int(r), int(c)


def _nan_endpoints(z: NDArray[np.float64], start: tuple[int, int], goal: tuple[int, int]) -> str:
    """Reason string if the start or the goal cell is NaN, else ''."""
    if not math.isfinite(z[start]):
        return f"start cell {start} is NaN (no height data)"
    if not math.isfinite(z[goal]):
        return f"goal cell {goal} is NaN (no height data)"
    return ""


def _distance(z: NDArray[np.float64], dx: float, cells: NDArray[np.int64]) -> float:
    """Ground length (m) of a cell sequence (waits add nothing)."""
    if len(cells) < 2:
        return 0.0
    dr = np.abs(np.diff(cells[:, 0]))
    dc = np.abs(np.diff(cells[:, 1]))
    h = np.where((dr != 0) & (dc != 0), dx * np.sqrt(2.0), dx * ((dr + dc) > 0))
    dz = np.diff(z[cells[:, 0], cells[:, 1]])
    return float(np.sum(np.sqrt(h * h + dz * dz)))


def _no_route(reason: str, time_expanded: bool) -> Route:
    empty = np.zeros((0, 2), np.int64)
    steps = np.zeros(0, np.int64) if time_expanded else None
    energy = np.zeros(0) if time_expanded else None
    return Route(False, empty, steps, math.inf, math.inf, energy, reason)


# -------------------------------------------------------------------------------------------------- API


def plan_static(
    heights_m: ArrayLike,
    dx_m: float,
    start: tuple[int, int],
    goal: tuple[int, int],
    rover: RoverModel,
    cost: Literal["time", "distance"] = "time",
) -> Route:
    """Least-time (s) or least-distance (m) slope-limited 8-connected route from start to goal (row, col).

    A NaN start or goal cell gives an unreachable Route (with a reason), not an error.
    """
    z = _grid(heights_m, dx_m)
    if not isinstance(rover, RoverModel):
        raise InputError(f"traverse rover: expected a RoverModel, got {type(rover).__name__}")
    if cost not in ("time", "distance"):
        raise InputError(f"traverse cost = {cost!r}: expected 'time' or 'distance'")
    s = _cell("start", start, z.shape)
    g = _cell("goal", goal, z.shape)
    why = _nan_endpoints(z, s, g)
    if why:
        return _no_route(why, False)
    slope = math.radians(rover.max_slope_deg)
    inv = 1.0 / rover.speed_m_s if cost == "time" else 1.0
    best, pred, settled = _dijkstra(z, float(dx_m), slope, inv, s[0], s[1], g[0], g[1])
    if not math.isfinite(best):
        return _no_route(
            f"goal {g} not reachable from start {s}: slope limit {rover.max_slope_deg:g} deg or NaN cells "
            f"cut it off ({settled} cells reachable)",
            False,
        )
    cells = _walk_back_static(pred, z.shape[1], s[0], s[1], g[0], g[1])
    dist = _distance(z, float(dx_m), cells)
    return Route(True, cells, None, dist / rover.speed_m_s, dist, None, "")


def _illumination(name: str, a: ArrayLike, shape: tuple[int, int]) -> NDArray[np.float64]:
    """(T, rows, cols) visible fractions in [0, 1] (NaN allowed, read as 0) as float64; InputError else."""
    try:
        f = np.ascontiguousarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"traverse {name}: expected a (steps, rows, cols) array of fractions ({exc})"
        ) from exc
    if f.ndim != 3 or f.shape[1:] != shape or f.shape[0] < 1:
        raise InputError(f"traverse {name} of shape {f.shape}: expected (steps, {shape[0]}, {shape[1]})")
    lo, hi = (np.fmin.reduce(f, axis=None), np.fmax.reduce(f, axis=None))  # NaN ignored unless all NaN
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"traverse {name}: expected visible fractions in [0, 1] (NaN read as 0)")
    return f


def plan_time_expanded(
    heights_m: ArrayLike,
    dx_m: float,
    sun_fraction: ArrayLike,
    step_s: float,
    start: tuple[int, int],
    goal: tuple[int, int],
    rover: RoverModel,
    battery: BatteryModel,
    earth_fraction: ArrayLike | None = None,
    start_step: int = 0,
) -> Route:
    """Earliest-arrival route (steps of step_s s) needing sun/Earth to drive, waits allowed, battery in Wh.

    ``sun_fraction[t, row, col]`` (and ``earth_fraction``, needed when ``rover.need_earth_to_drive``) give
    the visible fraction during step t; the rover leaves ``start`` at step ``start_step`` with
    ``battery.initial_wh``. A NaN start or goal cell, or no arrival before the last step ends, gives an
    unreachable Route with a reason, not an error.
    """
    z = _grid(heights_m, dx_m)
    if not isinstance(rover, RoverModel):
        raise InputError(f"traverse rover: expected a RoverModel, got {type(rover).__name__}")
    if not isinstance(battery, BatteryModel):
        raise InputError(f"traverse battery: expected a BatteryModel, got {type(battery).__name__}")
    _finite("traverse", "step_s", step_s, 0.0, open_="lo")
    sun = _illumination("sun_fraction", sun_fraction, z.shape)
    n_t = sun.shape[0]
    if earth_fraction is None:
        if rover.need_earth_to_drive:
            raise InputError("traverse earth_fraction: required when rover.need_earth_to_drive is True")
        earth = np.zeros((1, 1, 1))
    else:
        earth = _illumination("earth_fraction", earth_fraction, z.shape)
        if earth.shape != sun.shape:
            raise InputError(f"traverse earth_fraction of shape {earth.shape}: expected {sun.shape} like sun")
    if (
        not isinstance(start_step, int | np.integer)
        or isinstance(start_step, bool)
        or not 0 <= start_step < n_t
    ):
        raise InputError(f"traverse start_step = {start_step!r}: expected an integer in [0, {n_t - 1}]")
    k0 = int(start_step)
    s = _cell("start", start, z.shape)
    g = _cell("goal", goal, z.shape)
    why = _nan_endpoints(z, s, g)
    if why:
        return _no_route(why, True)

    dx = float(dx_m)
    slope = math.radians(rover.max_slope_deg)
    speed = float(rover.speed_m_s)
    step = float(step_s)
    use_earth = bool(rover.need_earth_to_drive)
    # ring of energy layers: steps of the longest possible move, plus two
    relief = float(np.nanmax(z) - np.nanmin(z)) if np.isfinite(z).any() else 0.0
    longest = min(dx * math.sqrt(2.0) / math.cos(slope), math.hypot(dx * math.sqrt(2.0), relief))
    nslot = int(math.ceil(longest / speed / step)) + 2

    def run(floor: float, cap: float) -> tuple[int, NDArray[np.int8]]:
        return _time_expanded(
            z, dx, slope, speed, sun, earth, use_earth, float(rover.min_sun_fraction_to_drive), k0,
            s[0], s[1], g[0], g[1], float(battery.initial_wh), battery.full_sun_power_w,
            float(battery.drive_load_w), float(battery.park_load_w), cap, floor, step, nslot,
        )  # fmt: skip

    i_arr, pred = run(float(battery.floor_wh), float(battery.capacity_wh))
    if i_arr < 0:
        return _no_route(_why_late(z, dx, s, g, rover, n_t - k0, step, run), True)
    cells, rel = _walk_back_te(pred, z, dx, slope, speed, step, s[0], s[1], i_arr, g[0], g[1])
    energy = _energy_profile(
        cells, rel, z, dx, slope, speed, sun, k0, float(battery.initial_wh), battery.full_sun_power_w,
        float(battery.drive_load_w), float(battery.park_load_w), float(battery.capacity_wh), step,
    )  # fmt: skip
    return Route(True, cells, rel + k0, i_arr * step, _distance(z, dx, cells), energy, "")


def _why_late(
    z: NDArray[np.float64],
    dx: float,
    s: tuple[int, int],
    g: tuple[int, int],
    rover: RoverModel,
    n_steps: int,
    step_s: float,
    run: Callable[[float, float], tuple[int, NDArray[np.int8]]],
) -> str:
    """One-line reason why the time-expanded planner found no arrival."""
    head = f"goal {g} not reachable from start {s} within {n_steps} steps"
    best, _, _ = _dijkstra(z, dx, math.radians(rover.max_slope_deg), 1.0, s[0], s[1], g[0], g[1])
    if not math.isfinite(best):
        return f"{head}: slope limit {rover.max_slope_deg:g} deg or NaN cells cut it off"
    if best / rover.speed_m_s > n_steps * step_s:
        return f"{head}: too few steps, the fastest route drives {best / rover.speed_m_s:.0f} s"
    if run(-math.inf, math.inf)[0] >= 0:
        return f"{head}: battery (reachable with an unlimited battery)"
    need = f"sun fraction >= {rover.min_sun_fraction_to_drive:g}"
    if rover.need_earth_to_drive:
        need += " and Earth in view"
    return f"{head}: driving needs {need} (too few such steps, even with an unlimited battery)"
