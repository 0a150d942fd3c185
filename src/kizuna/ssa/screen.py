"""Conjunction screening: every close approach among a catalogue (or of primaries against it) in a window.

How a window is screened (each time slice is one independent task of :func:`kizuna.core.parallel.run_tasks`):

1. **Coarse SGP4.** Every object is propagated by python-sgp4's array API at its own coarse step, chosen
   from its perigee angular rate so that cubic Hermite interpolation between samples (positions and
   velocities) stays within :data:`INTERP_TOL_KM` (the fourth-derivative bound ``r w^4 h^4 / 384``).
2. **Fine grid.** The slice is cut into fine intervals (default 30 s). At each interval's centre every
   object's interpolated position gets the key of its cell in a uniform grid whose cell is the threshold
   plus the farthest two ordinary objects can close in half an interval; objects sorted by key put the cells
   a pair may share into contiguous ranges, walked by pointers that only move forward. Pairs there pass a
   tight test (straight-line relative motion comes within the threshold plus the acceleration and
   interpolation bounds). The few faster objects (eccentric orbits near perigee) search wider themselves.
3. **Exact interval test.** A pair has a local minimum of range in the interval when the range rate
   (``dr . dv``) goes from <= 0 to > 0 between the interval's ends (interpolated states at both ends, the
   same values shared by neighbouring intervals, so each minimum is claimed by exactly one interval).
4. **Refinement on SGP4.** Each such minimum is refined by safeguarded Newton iterations on
   ``f(t) = dr . dv`` with states straight from SGP4 (``f' = |dv|^2 + dr . da``, two-body accelerations),
   to microseconds; miss distance, relative speed and the radial / in-track / cross-track components in
   the first object's RTN frame come from SGP4 at that time. Minima above the threshold are dropped.

Python's loops stay out of the hot path: steps 2-3 run in numba (:mod:`kizuna.ssa.screen_grid`), steps 1
and 4 in python-sgp4's C++. The grid is written here because no maintained library offers a time-stepped
neighbour search of moving points; scipy's KD-tree (the dense reference of the benchmark and tests uses
it) costs a Python call and a tree build per step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sgp4.api import SGP4_ERRORS, WGS72, Satrec, SatrecArray

from kizuna.core.parallel import run_tasks
from kizuna.errors import InputError
from kizuna.ssa.propagate import utc_to_jd
from kizuna.ssa.screen_grid import INTERP_TOL_KM, _grid_kernel

__all__ = [
    "ScreenResult",
    "screen",
    "coarse_step_s",
    "INTERP_TOL_KM",
    "LOW_SPEED_KM_S",
]

MU_KM3_S2 = 398600.8  # WGS72, the gravity model of SGP4 element sets
EARTH_RADIUS_KM = 6378.135  # WGS72
G0_KM_S2 = MU_KM3_S2 / EARTH_RADIUS_KM**2  # largest gravitational acceleration above the surface
LOW_SPEED_KM_S = 0.01  # relative speed below which a pair is flagged co-located (docked, formation)
MAX_RADIUS_KM = 1.0e6  # beyond this an element set describes no Earth orbit SGP4 can follow
JUMP_KM = 300.0  # samples further than this from where their neighbour's velocity leads are not trusted
NOT_BOUND_CODE = 7  # failure code for states below the surface or on unbound orbits (python-sgp4 has 1-6)
ERROR_MESSAGES = {
    **SGP4_ERRORS,
    NOT_BOUND_CODE: "state below the Earth's surface or on an unbound orbit (decayed elements)",
}
_COARSE_STEPS_S = np.array([20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 240.0, 300.0, 600.0, 900.0, 1800.0])


@dataclass
class ScreenResult:
    """Close approaches found in a window, with the objects that could not be propagated."""

    events: pd.DataFrame  # one row per close approach (see :func:`screen`)
    failed: pd.DataFrame  # norad_id, first_failure_utc, code, message: objects SGP4 could not propagate
    objects: int  # objects screened
    start: np.datetime64
    stop: np.datetime64
    threshold_km: float
    wall_s: float
    stats: dict[str, Any] = field(default_factory=dict)


def coarse_step_s(mean_motion_rad_min: NDArray[np.float64], ecc: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return each object's coarse SGP4 step in s so cubic Hermite interpolation stays within INTERP_TOL_KM.

    The bound is ``r_p w_p^4 h^4 / 384`` with ``w_p`` the angular rate at perigee; a factor 4 covers the
    radial terms of eccentric orbits. Steps are rounded down to a short list so objects propagate in groups.
    """
    n = np.asarray(mean_motion_rad_min, dtype=np.float64) / 60.0  # rad/s
    e = np.clip(np.asarray(ecc, dtype=np.float64), 0.0, 0.99)
    a = np.cbrt(MU_KM3_S2 / np.maximum(n, 1e-9) ** 2)
    rp = np.maximum(a * (1.0 - e), EARTH_RADIUS_KM * 0.9)
    wp = n * (1.0 + e) ** 2 / (1.0 - e * e) ** 1.5
    factor = 1.0 + 3.0 * np.minimum(e / 0.1, 1.0)
    h = (384.0 * INTERP_TOL_KM / (factor * rp * wp**4)) ** 0.25
    idx = np.searchsorted(_COARSE_STEPS_S, h, side="right") - 1
    return _COARSE_STEPS_S[np.clip(idx, 0, len(_COARSE_STEPS_S) - 1)]


@dataclass(frozen=True)
class _SliceTask:
    """One time slice of a screening run, as sent to a worker."""

    line1: tuple[str, ...]
    line2: tuple[str, ...]
    primary: NDArray[np.bool_]
    start_ns: int  # first fine interval starts here (UTC ns since 1970)
    n_steps: int
    fine_step_s: float
    threshold_km: float


def _coarse_samples(
    sats: Sequence[Satrec], steps: NDArray[np.float64], t0_ns: int, span_s: float
) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray, NDArray]:
    """Propagate every object at its coarse step from t0 over span_s; return the packed sample arrays."""
    m = len(sats)
    counts = (np.ceil(span_s / steps) + 2).astype(np.int64)
    off = np.zeros(m, np.int64)
    off[1:] = np.cumsum(counts)[:-1]
    total = int(counts.sum())
    P = np.full((total, 3), np.nan)
    V = np.full((total, 3), np.nan)
    err = np.zeros(total, np.uint8)
    for step in np.unique(steps):
        members = np.flatnonzero(steps == step)
        k = int(counts[members[0]])
        t_ns = t0_ns + np.round(np.arange(k) * step * 1e9).astype(np.int64)
        jd, fr = utc_to_jd(np.asarray(t_ns, dtype=np.int64).astype("datetime64[ns]"))
        for lo in range(0, len(members), 2000):
            grp = members[lo : lo + 2000]
            e, r, v = SatrecArray([sats[g] for g in grp]).sgp4(jd, fr)
            rows = off[grp][:, None] + np.arange(k)[None, :]
            P[rows] = r
            V[rows] = v
            err[rows] = e
    # python-sgp4 does not flag every decayed element set: some give states far below the surface or on
    # unbound orbits (a Cosmos 1408 fragment at 1.8e8 km); such states count as failures (code 7)
    rn = np.linalg.norm(P, axis=1)
    energy = 0.5 * np.einsum("ij,ij->i", V, V) - MU_KM3_S2 / rn
    with np.errstate(invalid="ignore"):
        unphysical = (err == 0) & ~((rn >= EARTH_RADIUS_KM) & (rn <= MAX_RADIUS_KM) & (energy < 0))
    err[unphysical] = NOT_BOUND_CODE
    # a sample whose neighbour is not where its velocity leads (trapezoid rule, a few km for real orbits)
    # belongs to a collapsing element set: both count as failures
    step_of_row = np.repeat(steps.astype(np.float64), counts)
    pred = P[:-1] + 0.5 * step_of_row[:-1, None] * (V[:-1] + V[1:])
    with np.errstate(invalid="ignore"):
        jump = np.linalg.norm(P[1:] - pred, axis=1) > JUMP_KM
    jump[off[1:] - 1] = False  # rows across two objects
    err[:-1][jump & (err[:-1] == 0)] = NOT_BOUND_CODE
    err[1:][jump & (err[1:] == 0)] = NOT_BOUND_CODE
    bad = err != 0
    P[bad] = np.nan
    V[bad] = np.nan
    return P, V, off, steps.astype(np.float64), counts, err


def _two_body_acc(r: NDArray[np.float64]) -> NDArray[np.float64]:
    """Two-body acceleration in km/s^2 at positions r (km)."""
    rn = np.linalg.norm(r, axis=-1, keepdims=True)
    return -MU_KM3_S2 * r / rn**3


def _sgp4_at(
    sats: Sequence[Satrec], obj: NDArray[np.int64], t_s: NDArray[np.float64], t0_ns: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.uint8]]:
    """Return SGP4 TEME states (km, km/s) and error codes of objects obj at times t_s (s after t0)."""
    r = np.full((len(obj), 3), np.nan)
    v = np.full((len(obj), 3), np.nan)
    e = np.zeros(len(obj), np.uint8)
    whole = np.floor(t_s)
    t_ns = t0_ns + whole.astype(np.int64) * 1_000_000_000
    jd, fr = utc_to_jd(np.asarray(t_ns, dtype=np.int64).astype("datetime64[ns]"))
    fr = fr + (t_s - whole) / 86400.0
    order = np.argsort(obj, kind="stable")
    bounds = np.flatnonzero(np.diff(obj[order])) + 1
    for grp in np.split(order, bounds):
        if len(grp) == 0:
            continue
        ee, rr, vv = sats[int(obj[grp[0]])].sgp4_array(jd[grp], fr[grp])
        r[grp] = rr
        v[grp] = vv
        e[grp] = ee
    return r, v, e


def _refine(
    sats: Sequence[Satrec],
    ci: NDArray[np.int64],
    cj: NDArray[np.int64],
    ct: NDArray[np.float64],
    t0_ns: int,
    hf: float,
) -> tuple[
    NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]
]:
    """Refine candidate minima on SGP4 by safeguarded Newton; return t (s), r1, v1, r2, v2, a valid mask."""
    t = ct[:, 1].copy()
    lo = ct[:, 0] - 1.0
    hi = ct[:, 0] + hf + 1.0
    n = len(t)
    both = np.concatenate([ci, cj])
    active = np.ones(n, bool)
    for _ in range(12):
        idx = np.flatnonzero(active)
        if len(idx) == 0:
            break
        r, v, _e = _sgp4_at(sats, both.reshape(2, -1)[:, idx].ravel(), np.tile(t[idx], 2), t0_ns)
        k = len(idx)
        dr = r[k:] - r[:k]
        dv = v[k:] - v[:k]
        da = _two_body_acc(r[k:]) - _two_body_acc(r[:k])
        f = np.einsum("ij,ij->i", dr, dv)
        fp = np.einsum("ij,ij->i", dv, dv) + np.einsum("ij,ij->i", dr, da)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(fp > 0, -f / fp, np.where(f < 0, 0.5, -0.5))
        step = np.nan_to_num(step, nan=0.0)
        tn = np.clip(t[idx] + step, lo[idx], hi[idx])
        done = np.abs(tn - t[idx]) < 1e-6
        t[idx] = tn
        active[idx[done]] = False
    r, v, e = _sgp4_at(sats, both, np.concatenate([t, t]), t0_ns)
    ok = (e[:n] == 0) & (e[n:] == 0) & np.isfinite(r[:n, 0]) & np.isfinite(r[n:, 0])
    return t, r[:n], v[:n], r[n:], v[n:], ok


def _screen_slice(task: _SliceTask) -> dict[str, Any]:
    """Screen one time slice; return the refined events (object indices) and the propagation failures."""
    sats = [Satrec.twoline2rv(a, b, WGS72) for a, b in zip(task.line1, task.line2, strict=True)]
    no = np.array([s.no_kozai for s in sats])
    ecc = np.array([s.ecco for s in sats])
    steps = coarse_step_s(no, ecc)
    hf = task.fine_step_s
    span = task.n_steps * hf
    # samples start one coarse step before the slice so every interval has a sample on each side
    t0_ns = task.start_ns - int(_COARSE_STEPS_S.max() * 1e9)
    lead = (task.start_ns - t0_ns) / 1e9
    P, V, off, h, counts, err = _coarse_samples(sats, steps, t0_ns, span + lead + 1.0)
    # straight-line motion over half an interval strays at most |da| (hf/2)^2 / 2 from the true relative
    # path (|da| <= 2 g0 above the surface); each interpolated position within INTERP_TOL_KM; 0.5 km spare
    margin = 0.5 + 2.0 * G0_KM_S2 * hf * hf / 8.0 + 4.0 * INTERP_TOL_KM
    ci, cj, ct, tested = _grid_kernel(
        P,
        V,
        off,
        h,
        counts,
        lead,
        hf,
        task.n_steps,
        task.threshold_km,
        margin,
        task.primary,
        bool(task.primary.any()),
    )
    t, r1, v1, r2, v2, ok = _refine(sats, ci, cj, ct, t0_ns, hf)
    dr = r2 - r1
    miss = np.linalg.norm(dr, axis=1)
    # a minimum within an interval of the slice's edge may be claimed by both slices or, if its refined
    # time crosses the edge, by this one only: keep it, the joined result drops the copy and the window
    # filter keeps what lies in the window
    keep = ok & (miss <= task.threshold_km) & (t >= lead - hf) & (t < lead + span + hf)
    # objects that failed: first failing sample of each (codes from python-sgp4)
    fail_rows = np.flatnonzero(err)
    owner = np.searchsorted(off, fail_rows, side="right") - 1
    first = {}
    for row, o in zip(fail_rows, owner, strict=True):
        if o not in first:
            first[int(o)] = (t0_ns + int(round((row - off[o]) * h[o] * 1e9)), int(err[row]))
    return {
        "i": ci[keep],
        "j": cj[keep],
        "t_ns": t0_ns + np.round(t[keep] * 1e9).astype(np.int64),
        "r1": r1[keep],
        "v1": v1[keep],
        "r2": r2[keep],
        "v2": v2[keep],
        "failed": first,
        "candidates": len(ci),
        "pairs_tested": int(tested),
    }


def _rtn(r1: NDArray[np.float64], v1: NDArray[np.float64], d: NDArray[np.float64]) -> NDArray[np.float64]:
    """Components of vectors d in the RTN frames of states (r1, v1): radial, in-track, cross-track."""
    R = r1 / np.linalg.norm(r1, axis=1, keepdims=True)
    N = np.cross(r1, v1)
    N /= np.linalg.norm(N, axis=1, keepdims=True)
    T = np.cross(N, R)
    return np.stack(
        [np.einsum("ij,ij->i", d, R), np.einsum("ij,ij->i", d, T), np.einsum("ij,ij->i", d, N)], 1
    )


def screen(
    line1: Sequence[str],
    line2: Sequence[str],
    start: np.datetime64 | str,
    days: float,
    threshold_km: float,
    *,
    ids: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
    primaries: Sequence[int] | None = None,
    fine_step_s: float = 30.0,
    slice_hours: float = 6.0,
    mode: str = "serial",
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScreenResult:
    """Find every close approach within threshold_km (TEME, SGP4) among TLEs over [start, start + days).

    ``primaries`` (catalogue numbers) screens those objects against all others; otherwise all against all.
    Events hold ``id1, id2, name1, name2, tca_utc`` (datetime64[ns]), ``miss_km``, ``rel_speed_km_s``,
    ``radial_km, intrack_km, crosstrack_km`` (object 2 relative to object 1 in object 1's RTN frame) and
    ``flags`` ("co-located" when the relative speed is under :data:`LOW_SPEED_KM_S`). Time slices of
    ``slice_hours`` run through :func:`kizuna.core.parallel.run_tasks` (``mode``/``scheduler``).
    """
    wall0 = time.perf_counter()
    line1 = tuple(line1)
    line2 = tuple(line2)
    m = len(line1)
    if m != len(line2) or m < 1:
        raise InputError(
            f"screening needs one line 2 per line 1 and at least one object (got {m}, {len(line2)})"
        )
    if not (threshold_km > 0 and math.isfinite(threshold_km)):
        raise InputError(f"threshold {threshold_km!r} km: expected a positive distance")
    if not (days > 0 and math.isfinite(days)):
        raise InputError(f"window length {days!r} days: expected a positive number of days")
    if not (0.5 <= fine_step_s <= 60.0):
        raise InputError(f"fine step {fine_step_s!r} s: expected 0.5 to 60 s")
    ids_arr = np.array(
        ids
        if ids is not None
        else [int(Satrec.twoline2rv(a, b).satnum) for a, b in zip(line1, line2, strict=True)],
        dtype=np.int64,
    )
    names_arr = np.array(list(names) if names is not None else [""] * m, dtype=object)
    primary = np.zeros(m, bool)
    if primaries is not None:
        wanted = np.asarray(list(primaries), dtype=np.int64)
        missing = sorted(set(wanted.tolist()) - set(ids_arr.tolist()))
        if missing:
            raise InputError(f"primaries {missing[:10]}: not in the catalogue")
        primary = np.isin(ids_arr, wanted)
    try:
        start64 = np.datetime64(start, "ns")
    except ValueError as exc:
        raise InputError(f"start {start!r}: expected an ISO UTC time such as 2022-07-15T00:00:00") from exc
    total_s = days * 86400.0
    n_total = int(math.ceil(total_s / fine_step_s))
    per_slice = max(1, int(round(slice_hours * 3600.0 / fine_step_s)))
    start_ns = int(start64.astype(np.int64))
    tasks = []
    for s0 in range(0, n_total, per_slice):
        n_steps = min(per_slice, n_total - s0)
        tasks.append(
            _SliceTask(
                line1,
                line2,
                primary,
                start_ns + int(round(s0 * fine_step_s * 1e9)),
                n_steps,
                float(fine_step_s),
                float(threshold_km),
            )
        )
    parts = run_tasks(
        _screen_slice, tasks, mode=mode, scheduler=scheduler, n_workers=n_workers, progress=progress
    )
    stop64 = start64 + np.timedelta64(int(round(total_s * 1e9)), "ns")
    return _assemble(parts, ids_arr, names_arr, start64, stop64, threshold_km, wall0, primaries is not None)


def _assemble(
    parts: list[dict[str, Any]],
    ids: NDArray[np.int64],
    names: NDArray[np.object_],
    start: np.datetime64,
    stop: np.datetime64,
    threshold_km: float,
    wall0: float,
    primaries_mode: bool,
) -> ScreenResult:
    """Join the slices' events (dropping a minimum found twice at a slice edge) and failures into a result."""
    cat = {k: np.concatenate([p[k] for p in parts]) for k in ("i", "j", "t_ns", "r1", "v1", "r2", "v2")}
    i, j = cat["i"], cat["j"]
    if not primaries_mode:
        # all against all: the lower catalogue number first (primaries mode keeps the primary first)
        swap = ids[i] > ids[j]
        i, j = np.where(swap, j, i), np.where(swap, i, j)
        for a, b in (("r1", "r2"), ("v1", "v2")):
            cat[a], cat[b] = np.where(swap[:, None], cat[b], cat[a]), np.where(swap[:, None], cat[a], cat[b])
    order = np.lexsort((cat["t_ns"], j, i))
    keep = np.ones(len(order), bool)
    if len(order) > 1:
        same = (
            (np.diff(i[order]) == 0)
            & (np.diff(j[order]) == 0)
            & (np.diff(cat["t_ns"][order]) < 1_000_000_000)
        )
        keep[1:] = ~same
    sel = order[keep]
    in_window = (cat["t_ns"][sel] >= start.astype(np.int64)) & (cat["t_ns"][sel] < stop.astype(np.int64))
    sel = sel[in_window]
    r1, v1, r2, v2 = (cat[k][sel] for k in ("r1", "v1", "r2", "v2"))
    i, j, t_ns = i[sel], j[sel], cat["t_ns"][sel]
    dr = r2 - r1
    dv = v2 - v1
    miss = np.linalg.norm(dr, axis=1)
    speed = np.linalg.norm(dv, axis=1)
    rtn = _rtn(r1, v1, dr) if len(sel) else np.zeros((0, 3))
    events = pd.DataFrame(
        {
            "id1": ids[i],
            "id2": ids[j],
            "name1": names[i],
            "name2": names[j],
            "tca_utc": t_ns.astype("datetime64[ns]"),
            "miss_km": miss,
            "rel_speed_km_s": speed,
            "radial_km": rtn[:, 0],
            "intrack_km": rtn[:, 1],
            "crosstrack_km": rtn[:, 2],
            "flags": np.where(speed < LOW_SPEED_KM_S, "co-located", ""),
        }
    )
    events = events.sort_values(["tca_utc", "id1", "id2"], kind="stable").reset_index(drop=True)
    first: dict[int, tuple[int, int]] = {}
    for p in parts:
        for o, (tns, code) in p["failed"].items():
            if o not in first or tns < first[o][0]:
                first[o] = (tns, code)
    failed = pd.DataFrame(
        {
            "norad_id": [int(ids[o]) for o in first],
            "name": [names[o] for o in first],
            "first_failure_utc": np.array([first[o][0] for o in first], dtype="datetime64[ns]"),
            "code": [first[o][1] for o in first],
            "message": [ERROR_MESSAGES.get(first[o][1], "unknown error") for o in first],
        }
    )
    stats = {
        "candidates": int(sum(p["candidates"] for p in parts)),
        "pairs_tested": int(sum(p["pairs_tested"] for p in parts)),
        "slices": len(parts),
    }
    return ScreenResult(
        events=events,
        failed=failed.sort_values("norad_id").reset_index(drop=True) if len(failed) else failed,
        objects=len(ids),
        start=start,
        stop=stop,
        threshold_km=float(threshold_km),
        wall_s=time.perf_counter() - wall0,
        stats=stats,
    )
