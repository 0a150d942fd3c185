"""Rover traverse planning against independent references.

Sources of truth:
- scipy.sparse.csgraph.dijkstra on the slope-limited 8-connected graph, built here with numpy (static routes,
  and the time-expanded planner in permanent sunlight with an unlimited battery, in whole time steps);
- the octile distance dx * (max + (sqrt(2) - 1) * min) on a flat grid (analytic);
- brute force: breadth-first enumeration of every wait/move action sequence over (step, cell, energy) states
  with no dominance pruning (only exactly equal states are merged), on small random time-expanded grids;
- hand-built sunlight and battery cases with closed-form earliest arrivals (analytic).
The move and battery model re-implemented here is the one the module docstring specifies.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from kizuna.errors import InputError
from kizuna.lunar.surface.traverse import (
    BatteryModel,
    Route,
    RoverModel,
    plan_static,
    plan_time_expanded,
)

NEIGHBOURS = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]


# ------------------------------------------------------------------------------------ reference helpers


def move_length(
    z: np.ndarray, dx: float, a: tuple[int, int], b: tuple[int, int], max_slope_deg: float
) -> float:
    """Ground length (m) of the move a -> b, or None if forbidden (off-grid, NaN, too steep)."""
    if not (0 <= b[0] < z.shape[0] and 0 <= b[1] < z.shape[1]):
        return None
    if np.isnan(z[a]) or np.isnan(z[b]):
        return None
    h = dx * math.sqrt(2.0) if (a[0] != b[0] and a[1] != b[1]) else dx
    dz = abs(z[b] - z[a])
    if math.atan(dz / h) > math.radians(max_slope_deg):
        return None
    return math.sqrt(h * h + dz * dz)


def scipy_graph(z: np.ndarray, dx: float, max_slope_deg: float, weight) -> csr_matrix:
    """Sparse graph of all allowed moves, vectorised per direction; weight(length) gives the edge cost."""
    nr, nc = z.shape
    idx = np.arange(nr * nc).reshape(nr, nc)
    rows, cols, w = [], [], []
    for dr, dc in NEIGHBOURS:
        r0, r1 = max(0, -dr), nr - max(0, dr)
        c0, c1 = max(0, -dc), nc - max(0, dc)
        za = z[r0:r1, c0:c1]
        zb = z[r0 + dr : r1 + dr, c0 + dc : c1 + dc]
        h = dx * np.sqrt(2.0) if dr and dc else dx
        dz = np.abs(zb - za)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(za) & np.isfinite(zb) & ~(np.arctan(dz / h) > np.radians(max_slope_deg))
        rows.append(idx[r0:r1, c0:c1][ok])
        cols.append(idx[r0 + dr : r1 + dr, c0 + dc : c1 + dc][ok])
        w.append(weight(np.sqrt(h * h + dz[ok] ** 2)))
    return csr_matrix((np.concatenate(w), (np.concatenate(rows), np.concatenate(cols))), shape=(nr * nc,) * 2)


def step_energy(e: float, p_sun: float, t_drive: float, step_s: float, bat: dict) -> float:
    """Battery energy (Wh) after one step: the formula of the module docstring."""
    e = e + (p_sun * step_s - bat["drive"] * t_drive - bat["park"] * (step_s - t_drive)) / 3600.0
    return min(e, bat["cap"])


def brute_earliest(z, dx, sun, earth, step_s, start, goal, speed, slope, min_sun, need_earth, bat, k0=0):
    """Earliest arrival step by enumerating all action sequences (exactly equal states merged only)."""
    n_t = sun.shape[0]
    pending: dict[int, set] = {k0: {(start, bat["e0"])}}
    for k in range(k0, n_t + 1):
        states = pending.pop(k, set())
        if any(cell == goal for cell, _ in states):
            return k
        if k == n_t:
            return None
        for cell, e in states:
            e1 = step_energy(e, bat["p"] * sun[k][cell], 0.0, step_s, bat)
            if e1 >= bat["floor"]:
                pending.setdefault(k + 1, set()).add((cell, e1))
            for dr, dc in NEIGHBOURS:
                nb_ = (cell[0] + dr, cell[1] + dc)
                length = move_length(z, dx, cell, nb_, slope)
                if length is None:
                    continue
                tau = length / speed
                m = max(1, math.ceil(tau / step_s))
                if k + m > n_t:
                    continue
                ee, ok = e, True
                for j in range(m):
                    drive = sun[k + j][cell] >= min_sun and (not need_earth or earth[k + j][cell] > 0)
                    ee = step_energy(
                        ee, bat["p"] * sun[k + j][cell], min(step_s, tau - j * step_s), step_s, bat
                    )
                    if not drive or ee < bat["floor"]:
                        ok = False
                        break
                if ok:
                    pending.setdefault(k + m, set()).add((nb_, ee))
    return None


def check_time_route(route: Route, z, dx, sun, earth, step_s, rover: RoverModel, battery: BatteryModel, k0=0):
    """Assert a time-expanded route obeys every rule and recompute its energy profile independently."""
    bat = bat_dict(battery)
    sun = np.nan_to_num(sun, nan=0.0)  # NaN fractions read as 0 (documented)
    cells = [tuple(int(v) for v in c) for c in route.cells]
    steps = [int(s) for s in route.steps]
    assert steps[0] == k0
    e, profile, dist = battery.initial_wh, [battery.initial_wh], 0.0
    for q in range(len(cells) - 1):
        (a, ka), (b, kb) = (cells[q], steps[q]), (cells[q + 1], steps[q + 1])
        if a == b:  # a wait of one step
            assert kb == ka + 1
            e = step_energy(e, bat["p"] * sun[ka][a], 0.0, step_s, bat)
            profile.append(e)
            continue
        length = move_length(z, dx, a, b, rover.max_slope_deg)
        assert length is not None and max(abs(a[0] - b[0]), abs(a[1] - b[1])) == 1
        dist += length
        tau = length / rover.speed_m_s
        assert kb - ka == max(1, math.ceil(tau / step_s))
        for j in range(kb - ka):
            assert sun[ka + j][a] >= rover.min_sun_fraction_to_drive
            if rover.need_earth_to_drive:
                assert earth[ka + j][a] > 0
            e = step_energy(e, bat["p"] * sun[ka + j][a], min(step_s, tau - j * step_s), step_s, bat)
            profile.append(e)
    assert len(profile) == steps[-1] - k0 + 1
    np.testing.assert_allclose(route.energy_wh, profile, rtol=0, atol=1e-9)
    assert min(profile) >= battery.floor_wh
    assert route.distance_m == pytest.approx(dist, rel=1e-12, abs=1e-12)
    assert route.total_time_s == (steps[-1] - k0) * step_s


def bat_dict(b: BatteryModel, unlimited: bool = False) -> dict:
    p = b.solar_constant_w_m2 * b.array_area_m2 * b.array_efficiency
    return {
        "p": p,
        "drive": b.drive_load_w,
        "park": b.park_load_w,
        "cap": math.inf if unlimited else b.capacity_wh,
        "floor": -math.inf if unlimited else b.floor_wh,
        "e0": b.initial_wh,
    }


def route_length(z: np.ndarray, dx: float, cells: np.ndarray, slope: float) -> float:
    total = 0.0
    for a, b in zip(cells[:-1], cells[1:], strict=True):
        length = move_length(z, dx, tuple(a), tuple(b), slope)
        assert length is not None, f"forbidden move {a} -> {b}"
        total += length
    return total


ROVER = RoverModel(speed_m_s=0.2, max_slope_deg=15.0)
# 100 W in full sun (1 m^2 at 100/1361 efficiency), 250 W driving, 30 W parked
BATTERY = BatteryModel(1.0, 100.0 / 1361.0, 120.0, 20.0, 80.0, 250.0, 30.0)


# ------------------------------------------------------------------------------------------ static planner


@pytest.mark.parametrize("cost", ["time", "distance"])
@pytest.mark.parametrize("seed", range(5))
def test_static_equals_scipy_dijkstra(seed: int, cost: str) -> None:
    # Source of truth: scipy.sparse.csgraph.dijkstra on the same graph built independently above.
    rng = np.random.default_rng(seed)
    dx = 10.0
    z = rng.normal(0.0, 1.5, (60, 60)) + np.linspace(0, 30, 60)[None, :]
    z[rng.random(z.shape) < 0.03] = np.nan
    valid = np.argwhere(np.isfinite(z))
    weight = (lambda length: length / ROVER.speed_m_s) if cost == "time" else (lambda length: length)
    g = scipy_graph(z, dx, ROVER.max_slope_deg, weight)
    n_edges_all = scipy_graph(z, dx, 89.999, weight).nnz
    assert 0.05 < 1.0 - g.nnz / n_edges_all < 0.5  # a fair share of moves is slope-forbidden
    n_reached = 0
    for _ in range(4):
        s, t = (tuple(int(v) for v in valid[rng.integers(len(valid))]) for _ in range(2))
        ref = dijkstra(g, indices=s[0] * 60 + s[1])[t[0] * 60 + t[1]]
        route = plan_static(z, dx, s, t, ROVER, cost=cost)
        if not np.isfinite(ref):
            assert not route.reachable and "slope limit" in route.reason
            continue
        n_reached += 1
        assert route.reachable and route.reason == ""
        assert tuple(route.cells[0]) == s and tuple(route.cells[-1]) == t
        length = route_length(z, dx, route.cells, ROVER.max_slope_deg)
        got = route.total_time_s if cost == "time" else route.distance_m
        assert got == pytest.approx(ref, rel=1e-12)  # 0 % gap
        assert route.distance_m == pytest.approx(length, rel=1e-12)
        assert route.total_time_s == pytest.approx(length / ROVER.speed_m_s, rel=1e-12)
        assert route.steps is None and route.energy_wh is None
    assert n_reached >= 2


def test_static_flat_grid_is_octile_distance() -> None:
    # Source of truth: analytic octile distance dx * (max(|dr|, |dc|) + (sqrt2 - 1) * min(|dr|, |dc|)).
    rng = np.random.default_rng(7)
    dx = 5.0
    z = np.full((40, 50), 12.0)
    for _ in range(20):
        s = (int(rng.integers(40)), int(rng.integers(50)))
        t = (int(rng.integers(40)), int(rng.integers(50)))
        a, b = abs(s[0] - t[0]), abs(s[1] - t[1])
        octile = dx * (max(a, b) + (math.sqrt(2.0) - 1.0) * min(a, b))
        route = plan_static(z, dx, s, t, ROVER, cost="distance")
        assert route.distance_m == pytest.approx(octile, rel=1e-12, abs=1e-12)
        assert len(route.cells) == max(a, b) + 1
        assert plan_static(z, dx, s, t, ROVER).total_time_s == pytest.approx(
            octile / 0.2, rel=1e-12, abs=1e-12
        )


def test_wall_of_steep_cells_is_unreachable() -> None:
    # Source of truth: analytic; a 50 m step over 10 m is a 79 deg slope, far above 15 deg.
    z = np.zeros((20, 20))
    z[:, 10] = 50.0
    route = plan_static(z, 10.0, (3, 2), (15, 17), ROVER)
    assert not route.reachable and "slope limit 15 deg" in route.reason and len(route.cells) == 0
    sun = np.ones((60, 20, 20))
    route = plan_time_expanded(z, 10.0, sun, 60.0, (3, 2), (15, 17), ROVER, BATTERY)
    assert not route.reachable and "within 60 steps" in route.reason and "slope limit" in route.reason
    # the wall is gentle enough at 2.5 m (14 deg): reachable again
    z[:, 10] = 2.5
    assert plan_static(z, 10.0, (3, 2), (15, 17), ROVER).reachable


def test_nan_start_or_goal_is_an_unreachable_result() -> None:
    # Source of truth: the documented choice: a NaN start/goal cell is a result (reachable False), no error.
    z = np.zeros((8, 8))
    z[0, 0] = np.nan
    z[7, 7] = np.nan
    r = plan_static(z, 10.0, (0, 0), (4, 4), ROVER)
    assert not r.reachable and "start cell (0, 0) is NaN" in r.reason
    r = plan_static(z, 10.0, (4, 4), (7, 7), ROVER)
    assert not r.reachable and "goal cell (7, 7) is NaN" in r.reason
    r = plan_time_expanded(z, 10.0, np.ones((5, 8, 8)), 60.0, (0, 0), (4, 4), ROVER, BATTERY)
    assert not r.reachable and "NaN" in r.reason
    # NaN cells are avoided: a NaN row with one gap forces the route through the gap
    z = np.zeros((9, 9))
    z[4, :] = np.nan
    z[4, 8] = 0.0
    r = plan_static(z, 10.0, (0, 0), (8, 0), ROVER, cost="distance")
    assert r.reachable and [4, 8] in r.cells.tolist()


def test_start_equals_goal() -> None:
    # Source of truth: analytic, a zero-length route.
    z = np.zeros((3, 3))
    r = plan_static(z, 1.0, (1, 1), (1, 1), ROVER)
    assert r.reachable and r.distance_m == 0.0 and r.cells.tolist() == [[1, 1]]
    r = plan_time_expanded(z, 1.0, np.zeros((4, 3, 3)), 10.0, (1, 1), (1, 1), ROVER, BATTERY, start_step=2)
    assert (
        r.reachable and r.steps.tolist() == [2] and r.total_time_s == 0.0 and r.energy_wh.tolist() == [80.0]
    )


# ----------------------------------------------------------------------------------- time-expanded planner


def test_time_expanded_equals_brute_force() -> None:
    # Source of truth: brute-force enumeration of all wait/move sequences (brute_earliest above).
    dx, step_s = 10.0, 1200.0
    n_cases = n_reached = n_battery_bound = n_multi_step = 0
    for seed in range(60):
        rng = np.random.default_rng(1000 + seed)
        n = int(rng.integers(4, 6))
        n_t = int(rng.integers(8, 13))
        z = rng.normal(0.0, 2.0, (n, n))
        if seed % 3 == 0:
            z[rng.integers(n), rng.integers(n)] = np.nan
        # sunlight in blocks of 1-3 steps: dark, partial (below and above the 0.5 threshold) or full
        sun = np.repeat(rng.choice([0.0, 0.3, 0.7, 1.0], (n_t, n, n)), rng.integers(1, 4), axis=0)[:n_t]
        sun[:, rng.random((n, n)) < 0.3] = 1.0
        earth = (rng.random((n_t, n, n)) < 0.7).astype(float)
        need_earth = seed % 4 == 1
        rover = RoverModel(speed_m_s=0.01, max_slope_deg=20.0, need_earth_to_drive=need_earth)
        cap = float(rng.uniform(60, 150))
        battery = BatteryModel(1.0, 100.0 / 1361.0, cap, 20.0, float(rng.uniform(20, cap)), 250.0, 30.0)
        valid = [tuple(int(v) for v in c) for c in np.argwhere(np.isfinite(z))]
        start, goal = (valid[i] for i in rng.choice(len(valid), 2, replace=False))
        k0 = int(rng.integers(0, 2))
        args = (z, dx, sun, earth, step_s, start, goal, 0.01, 20.0, 0.5, need_earth)
        ref = brute_earliest(*args, bat_dict(battery), k0=k0)
        free = brute_earliest(*args, bat_dict(battery, unlimited=True), k0=k0)
        route = plan_time_expanded(z, dx, sun, step_s, start, goal, rover, battery, earth, start_step=k0)
        n_cases += 1
        if ref is None:
            assert not route.reachable and route.reason, f"seed {seed}"
            continue
        n_reached += 1
        n_battery_bound += free is None or free < ref
        assert route.reachable, f"seed {seed}: {route.reason}"
        assert int(route.steps[-1]) == ref, f"seed {seed}"
        assert tuple(route.cells[0]) == start and tuple(route.cells[-1]) == goal
        n_multi_step += bool(np.any(np.diff(route.steps) > 1))
        check_time_route(route, z, dx, sun, earth, step_s, rover, battery, k0=k0)
    assert n_reached >= 15 and n_cases - n_reached >= 5
    assert n_battery_bound >= 5  # waiting to recharge decides the answer in several cases
    assert n_multi_step >= 3  # moves spanning several steps are exercised


def test_waits_out_darkness_on_the_direct_route() -> None:
    # Source of truth: analytic. Corridor of 5 cells, 1 step per move; the middle cell is dark in steps 2-5,
    # so the rover reaches it at step 2, cannot leave before step 6, and arrives at step 6 + 2 = 8 (not 4).
    z = np.full((3, 5), np.nan)
    z[1, :] = 0.0
    sun = np.ones((12, 3, 5))
    sun[2:6, 1, 2] = 0.0
    battery = BatteryModel(1.0, 0.25, 1000.0, 10.0, 500.0, 100.0, 20.0)
    rover = RoverModel(speed_m_s=0.1, max_slope_deg=15.0)
    route = plan_time_expanded(z, 10.0, sun, 120.0, (1, 0), (1, 4), rover, battery)
    assert route.reachable and route.steps[-1] == 8 and route.total_time_s == 8 * 120.0
    n_waits = int(np.sum(np.all(route.cells[1:] == route.cells[:-1], axis=1)))
    assert len(route.cells) == 9 and n_waits == 4  # 4 moves of 1 step each and 4 waits
    check_time_route(route, z, 10.0, sun, None, 120.0, rover, battery)
    # in permanent light it is the direct 4 steps
    assert (
        plan_time_expanded(z, 10.0, np.ones_like(sun), 120.0, (1, 0), (1, 4), rover, battery).steps[-1] == 4
    )
    # dark to the end of the horizon: unreachable, and the reason says why
    sun[2:, 1, 2] = 0.0
    route = plan_time_expanded(z, 10.0, sun, 120.0, (1, 0), (1, 4), rover, battery)
    assert not route.reachable and "sun fraction >= 0.5" in route.reason
    # Earth needed to drive, hidden from (1, 1) in steps 1-6: arrival at 7 + 3 = 10
    earth = np.ones_like(sun)
    earth[1:7, 1, 1] = 0.0
    rover_e = RoverModel(speed_m_s=0.1, max_slope_deg=15.0, need_earth_to_drive=True)
    route = plan_time_expanded(z, 10.0, np.ones_like(sun), 120.0, (1, 0), (1, 4), rover_e, battery, earth)
    assert route.steps[-1] == 10


def test_waits_to_recharge_the_battery() -> None:
    # Source of truth: analytic. Four 1-step moves each cost c = (P dt - 250 tau - 30 (dt - tau)) / 3600 < 0
    # Wh, a sunlit wait gains w = (P - 30) dt / 3600 Wh; starting at the floor with no cap in reach, the
    # earliest plan waits W = ceil(4 |c| / w) steps (all waits first is feasible), arriving at 4 + W.
    z = np.zeros((1, 5))
    dx, speed, dt = 10.0, 0.01, 1200.0
    tau = dx / speed
    battery = BatteryModel(1.0, 100.0 / 1361.0, 1000.0, 20.0, 20.0, 250.0, 30.0)
    p = battery.full_sun_power_w
    c = (p * dt - 250.0 * tau - 30.0 * (dt - tau)) / 3600.0
    w = (p - 30.0) * dt / 3600.0
    expected = 4 + math.ceil(4 * -c / w)
    assert expected == 11
    rover = RoverModel(speed_m_s=speed, max_slope_deg=15.0)
    route = plan_time_expanded(z, dx, np.ones((30, 1, 5)), dt, (0, 0), (0, 4), rover, battery)
    assert route.reachable and route.steps[-1] == expected
    check_time_route(route, z, dx, np.ones((30, 1, 5)), None, dt, rover, battery)
    # horizon one step short of that: unreachable because of the battery
    route = plan_time_expanded(z, dx, np.ones((expected - 1, 1, 5)), dt, (0, 0), (0, 4), rover, battery)
    assert not route.reachable and "battery" in route.reason


def test_must_survive_the_dark_wait_above_the_floor() -> None:
    # Source of truth: analytic. The start cell is dark in steps 0-3 and the rover is parked there, losing
    # 30 W * 120 s = 1 Wh per step; it can drive to the goal only from step 4 on (arrival 5), and only if it
    # kept e0 - 4 Wh >= floor through the night (recharging afterwards must not excuse a dip below it).
    z = np.zeros((1, 2))
    sun = np.ones((8, 1, 2))
    sun[:4, 0, 0] = [0.0, np.nan, 0.0, np.nan]  # NaN fractions read as 0 (documented)
    rover = RoverModel(speed_m_s=0.1, max_slope_deg=15.0)
    for margin, reachable in [(0.01, True), (-0.01, False)]:
        battery = BatteryModel(1.0, 0.3, 100.0, 20.0, 24.0 + margin, 100.0, 30.0)
        route = plan_time_expanded(z, 10.0, sun, 120.0, (0, 0), (0, 1), rover, battery)
        assert route.reachable is reachable
        if reachable:
            assert route.steps.tolist() == [0, 1, 2, 3, 4, 5]
            check_time_route(route, z, 10.0, sun, None, 120.0, rover, battery)
        else:
            assert "battery" in route.reason


def test_time_expanded_in_permanent_light_equals_scipy_in_steps() -> None:
    # Source of truth: scipy dijkstra with edge cost max(1, ceil(tau / step_s)) steps: with sunlight
    # everywhere and a battery that never binds, the earliest arrival is the least number of steps.
    rng = np.random.default_rng(3)
    dx, step_s = 10.0, 60.0
    z = rng.normal(0.0, 1.5, (40, 40))
    rover = RoverModel(speed_m_s=0.2, max_slope_deg=15.0)
    battery = BatteryModel(10.0, 0.3, 1e6, 0.0, 1e6, 100.0, 20.0)
    g = scipy_graph(z, dx, 15.0, lambda length: np.maximum(1, np.ceil(length / 0.2 / step_s)))
    sun = np.ones((120, 40, 40))
    for s, t in [((0, 0), (39, 39)), ((20, 5), (3, 30)), ((10, 10), (30, 12))]:
        ref = dijkstra(g, indices=s[0] * 40 + s[1])[t[0] * 40 + t[1]]
        route = plan_time_expanded(z, dx, sun, step_s, s, t, rover, battery)
        assert np.isfinite(ref) and route.reachable and route.steps[-1] == ref
        check_time_route(route, z, dx, sun, None, step_s, rover, battery)


def test_battery_floor_and_profile_on_a_larger_grid() -> None:
    # Source of truth: the energy profile recomputed independently along the route (check_time_route).
    rng = np.random.default_rng(11)
    n, n_t = 30, 90
    z = rng.normal(0.0, 1.0, (n, n))
    sun = np.clip(rng.normal(0.7, 0.4, (n_t, n, n)), 0.0, 1.0)
    rover = RoverModel(speed_m_s=0.05, max_slope_deg=15.0)
    battery = BatteryModel(1.0, 100.0 / 1361.0, 60.0, 20.0, 40.0, 120.0, 30.0)
    route = plan_time_expanded(z, 5.0, sun, 120.0, (2, 3), (25, 27), rover, battery, start_step=4)
    assert route.reachable, route.reason
    assert route.steps[0] == 4 and route.energy_wh.min() >= battery.floor_wh
    assert route.energy_wh.max() <= battery.capacity_wh
    check_time_route(route, z, 5.0, sun, None, 120.0, rover, battery, k0=4)


# ---------------------------------------------------------------------------------------------- bad input


Z = np.zeros((5, 5))
SUN = np.ones((4, 5, 5))


@pytest.mark.parametrize(
    "call",
    [
        lambda: plan_static(Z, 1.0, (5, 0), (1, 1), ROVER),
        lambda: plan_static(Z, 1.0, (0, -1), (1, 1), ROVER),
        lambda: plan_static(Z, 1.0, (0.5, 0), (1, 1), ROVER),
        lambda: plan_static(Z, 0.0, (0, 0), (1, 1), ROVER),
        lambda: plan_static(np.zeros(5), 1.0, (0, 0), (1, 1), ROVER),
        lambda: plan_static(np.full((5, 5), np.inf), 1.0, (0, 0), (1, 1), ROVER),
        lambda: plan_static(Z, 1.0, (0, 0), (1, 1), ROVER, cost="energy"),
        lambda: RoverModel(speed_m_s=-0.2, max_slope_deg=15.0),
        lambda: RoverModel(speed_m_s=0.2, max_slope_deg=90.0),
        lambda: RoverModel(speed_m_s=0.2, max_slope_deg=15.0, min_sun_fraction_to_drive=1.5),
        lambda: RoverModel(speed_m_s=float("nan"), max_slope_deg=15.0),
        lambda: BatteryModel(1.0, 0.3, 100.0, 20.0, 10.0, 100.0, 20.0),  # initial below floor
        lambda: BatteryModel(1.0, 1.3, 100.0, 20.0, 50.0, 100.0, 20.0),  # efficiency > 1
        lambda: BatteryModel(1.0, 0.3, 100.0, 20.0, 150.0, 100.0, 20.0),  # initial above capacity
        lambda: BatteryModel(1.0, 0.3, 100.0, 20.0, 50.0, -1.0, 20.0),
        lambda: plan_time_expanded(Z, 1.0, np.ones((4, 5, 4)), 60.0, (0, 0), (1, 1), ROVER, BATTERY),
        lambda: plan_time_expanded(Z, 1.0, SUN * 2, 60.0, (0, 0), (1, 1), ROVER, BATTERY),
        lambda: plan_time_expanded(Z, 1.0, SUN, 0.0, (0, 0), (1, 1), ROVER, BATTERY),
        lambda: plan_time_expanded(Z, 1.0, SUN, 60.0, (0, 0), (1, 1), ROVER, BATTERY, start_step=4),
        lambda: plan_time_expanded(Z, 1.0, SUN, 60.0, (0, 0), (1, 9), ROVER, BATTERY),
        lambda: plan_time_expanded(
            Z, 1.0, SUN, 60.0, (0, 0), (1, 1), RoverModel(0.2, 15.0, need_earth_to_drive=True), BATTERY
        ),
        lambda: plan_time_expanded(Z, 1.0, SUN, 60.0, (0, 0), (1, 1), ROVER, BATTERY, np.ones((3, 5, 5))),
    ],
)
def test_bad_input_raises_input_error(call) -> None:
    # Source of truth: the documented validation (InputError naming the field and what was expected).
    with pytest.raises(InputError, match="expected|required|outside"):
        call()
