"""SGP4 propagation of many element sets at many UTC times at once, positions and velocities in TEME.

Propagation runs python-sgp4 (the C++ code of Vallado et al., AIAA 2006-6753, through
``sgp4.api.SatrecArray``), in chunks over objects so that the working memory stays bounded. Times are
UTC as numpy ``datetime64``; python-sgp4 takes UTC Julian dates as given (it counts days of 86400 s, as
the element sets themselves do), so a time is turned into a whole Julian day and a fraction of a day
with no rounding beyond that of the fraction itself (about 1e-11 s).

An object that fails to propagate (decayed, or elements out of range) is never dropped: its error
code is kept per time, and from its first failure on, counted away from the element-set epoch in each
direction, its states are NaN (python-sgp4 itself may return finite states after a failure, e.g. for
error 6, or succeed again at later times). :meth:`Ephemeris.failed` lists these failures.

:func:`read_vallado_verification` reads the published verification set (``SGP4-VER.TLE`` with its
expected output ``tcppver.out``) so that tests and benchmarks can check the propagator against it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sgp4.api import SGP4_ERRORS, Satrec, SatrecArray

from kizuna.errors import InputError

__all__ = [
    "Ephemeris",
    "PropagationFailure",
    "VerificationCase",
    "as_utc",
    "epochs_utc",
    "jd_to_utc",
    "propagate",
    "propagate_one",
    "read_vallado_verification",
    "utc_to_jd",
]

# Julian date of the Unix epoch 1970-01-01T00:00:00.
_JD_UNIX_EPOCH = 2440587.5
_NS_PER_DAY = 86_400 * 1_000_000_000
# Julian dates of 1678-01-01 and 2262-01-01, inside the span of datetime64[ns].
_JD_NS_MIN, _JD_NS_MAX = 2333937.5, 2547238.5
# Ticks of each numpy datetime64 unit in one day (units up to a day; weeks, months and years go by days).
_TICKS_PER_DAY = {
    "D": 1,
    "h": 24,
    "m": 1_440,
    "s": 86_400,
    "ms": 86_400_000,
    "us": 86_400_000_000,
    "ns": _NS_PER_DAY,
    "ps": _NS_PER_DAY * 1000,
}


# ----------------------------------------------------------------------------------------------------
# Time


def as_utc(times: Any, *, name: str = "times") -> NDArray[np.datetime64]:
    """Return UTC times (datetime64, ISO 8601 strings or naive datetimes) as a datetime64[ns] array."""
    if isinstance(times, _dt.datetime) and times.tzinfo is not None:
        times = times.astimezone(_dt.UTC).replace(tzinfo=None)
    arr = np.asarray(times)
    if arr.dtype.kind in "biufc":
        raise InputError(f"{name}: got numbers ({arr.dtype}); expected UTC datetime64 or ISO 8601 strings")
    try:
        out = arr.astype("datetime64[ns]")
    except (ValueError, TypeError, OverflowError) as exc:
        raise InputError(
            f"{name}: cannot read as UTC times ({exc}); expected datetime64 or ISO 8601"
        ) from exc
    if arr.dtype.kind == "M" and np.datetime_data(arr.dtype)[0] not in ("ps", "fs", "as"):
        # Converting to ns can overflow silently for dates outside 1678..2262.
        back = out.astype(arr.dtype)
        bad = back != arr
        if np.any(bad & ~np.isnat(arr)):
            raise InputError(f"{name}: times outside 1678..2262 cannot be held as datetime64[ns]")
    if np.isnat(out).any():
        raise InputError(f"{name}: contains NaT; expected valid UTC times")
    return out


def utc_to_jd(t: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return the UTC Julian date split as (whole day ending in .5, fraction of day in [0, 1)).

    ``t`` is any numpy datetime64 array (any unit) or what :func:`as_utc` accepts. The whole part is
    exact; the fraction is the tick count within the day divided by the ticks per day, rounded once.
    """
    arr = np.asarray(t)
    if arr.dtype.kind != "M":
        arr = as_utc(arr, name="t")
    if np.isnat(arr).any():
        raise InputError("t: contains NaT; expected valid UTC times")
    unit, count = np.datetime_data(arr.dtype)
    if unit not in _TICKS_PER_DAY:
        if unit in ("W", "M", "Y"):
            arr, unit, count = arr.astype("datetime64[D]"), "D", 1
        else:
            arr, unit, count = arr.astype("datetime64[ps]"), "ps", 1
    ticks = arr.astype(np.int64) * int(count)
    per_day = _TICKS_PER_DAY[unit]
    days, rem = np.divmod(ticks, per_day)
    jd = days.astype(np.float64) + _JD_UNIX_EPOCH
    fr = rem.astype(np.float64) / float(per_day)
    return jd, fr


def jd_to_utc(jd: ArrayLike, fr: ArrayLike = 0.0) -> NDArray[np.datetime64]:
    """Return datetime64[ns] UTC times for Julian dates given as two parts ``jd + fr`` (days), to 1 ns."""
    jd = np.asarray(jd, dtype=np.float64)
    fr = np.asarray(fr, dtype=np.float64)
    if not (np.all(np.isfinite(jd)) and np.all(np.isfinite(fr))):
        raise InputError("jd, fr: must be finite Julian dates")
    total = jd + fr
    if np.any((total < _JD_NS_MIN) | (total > _JD_NS_MAX)):
        raise InputError("jd, fr: outside 1678..2262, the span of datetime64[ns]")
    # Split each part into an integer and an exact remainder, so that no sum of large numbers rounds.
    jd_i = np.floor(jd)
    fr_i = np.floor(fr)
    whole = (jd_i + fr_i - np.floor(_JD_UNIX_EPOCH)).astype(np.int64)
    frac = (jd - jd_i) + (fr - fr_i) - (_JD_UNIX_EPOCH - np.floor(_JD_UNIX_EPOCH))
    ns = whole * _NS_PER_DAY + np.rint(frac * _NS_PER_DAY).astype(np.int64)
    return ns.astype("datetime64[ns]")


def epochs_utc(satrecs: Sequence[Satrec]) -> NDArray[np.datetime64]:
    """Return the element-set epochs (UTC, datetime64[ns]) of the given python-sgp4 records, shape (n,)."""
    n = len(satrecs)
    jd = np.fromiter((s.jdsatepoch for s in satrecs), dtype=np.float64, count=n)
    fr = np.fromiter((s.jdsatepochF for s in satrecs), dtype=np.float64, count=n)
    return jd_to_utc(jd, fr)


# ----------------------------------------------------------------------------------------------------
# Ephemeris


class PropagationFailure(NamedTuple):
    """An object that SGP4 could not propagate: id, first failing UTC time, error code and its meaning."""

    id: int
    time: np.datetime64
    code: int
    message: str


def _error_message(code: int) -> str:
    return SGP4_ERRORS.get(int(code), f"unknown SGP4 error code {int(code)}")


@dataclass(frozen=True, eq=False)
class Ephemeris:
    """SGP4 states of n objects at m UTC times: positions (km) and velocities (km/s) in TEME.

    ``error`` holds python-sgp4's error code per object and time (0 = ok, see ``sgp4.api.SGP4_ERRORS``);
    where it is nonzero, ``r_km`` and ``v_km_s`` are NaN. ``epochs`` are the element-set epochs (UTC),
    from which failures are counted in each direction; without them failures count from the first time.
    """

    ids: NDArray[np.int64]
    times: NDArray[np.datetime64]
    r_km: NDArray[np.float64]
    v_km_s: NDArray[np.float64]
    error: NDArray[np.uint8]
    epochs: NDArray[np.datetime64] | None = None

    def __post_init__(self) -> None:
        n, m = len(self.ids), len(self.times)
        if self.r_km.shape != (n, m, 3) or self.v_km_s.shape != (n, m, 3) or self.error.shape != (n, m):
            raise InputError(
                f"Ephemeris: shapes r {self.r_km.shape}, v {self.v_km_s.shape}, error {self.error.shape} "
                f"do not match {n} ids and {m} times; expected (n, m, 3), (n, m, 3), (n, m)"
            )
        if self.epochs is not None and np.shape(self.epochs) != (n,):
            raise InputError(f"Ephemeris: epochs shape {np.shape(self.epochs)}; expected ({n},)")

    @property
    def ok(self) -> NDArray[np.bool_]:
        """Return a boolean (n, m) array, True where the state is valid (error code 0)."""
        return self.error == 0

    def failed(self) -> list[PropagationFailure]:
        """Return one record per object and direction from its epoch where SGP4 first failed, in row order.

        The time is the first failing time counted away from the element-set epoch (forward for times
        at or after the epoch, backward for times before it); from there on outward the states are NaN.
        """
        bad_rows = np.flatnonzero((self.error != 0).any(axis=1))
        if bad_rows.size == 0:
            return []
        t_ns = self.times.astype("datetime64[ns]").astype(np.int64)
        if self.epochs is None:
            ref = np.full(bad_rows.size, t_ns.min(), dtype=np.int64)
        else:
            ref = np.asarray(self.epochs).astype("datetime64[ns]").astype(np.int64)[bad_rows]
        dt = t_ns[None, :] - ref[:, None]
        err = self.error[bad_rows]
        out: list[PropagationFailure] = []
        for k, row in enumerate(bad_rows):
            e, d = err[k], dt[k]
            for side in (d >= 0, d < 0):
                cand = np.flatnonzero(side & (e != 0))
                if cand.size == 0:
                    continue
                j = cand[np.argmin(np.abs(d[cand]))]
                code = int(e[j])
                out.append(PropagationFailure(int(self.ids[row]), self.times[j], code, _error_message(code)))
        return out


def _mask_after_failure(
    t_ns: NDArray[np.int64],
    epoch_ns: NDArray[np.int64],
    err: NDArray[np.uint8],
    r: NDArray[np.float64],
    v: NDArray[np.float64],
) -> None:
    """Set states to NaN (and codes to the first failure's) from each row's first failure outward, in place.

    ``t_ns`` (m,) and ``epoch_ns`` (k,) are ns since 1970 (UTC); ``err`` (k, m); ``r``, ``v`` (k, m, 3).
    """
    rows = np.flatnonzero(err.any(axis=1))
    if rows.size == 0:
        return
    d = t_ns[None, :] - epoch_ns[rows, None]
    f = err[rows] != 0
    big = np.iinfo(np.int64).max
    # Forward: the failure at the smallest non-negative offset; backward: at the largest negative one.
    fwd = np.where(f & (d >= 0), d, big)
    j_f = np.argmin(fwd, axis=1)
    has_f = fwd[np.arange(rows.size), j_f] != big
    bwd = np.where(f & (d < 0), -d, big)
    j_b = np.argmin(bwd, axis=1)
    has_b = bwd[np.arange(rows.size), j_b] != big
    e_rows = err[rows]
    code_f = e_rows[np.arange(rows.size), j_f]
    code_b = e_rows[np.arange(rows.size), j_b]
    t_f = d[np.arange(rows.size), j_f]
    t_b = d[np.arange(rows.size), j_b]
    mask_f = has_f[:, None] & (d >= t_f[:, None]) & (d >= 0)
    mask_b = has_b[:, None] & (d <= t_b[:, None]) & (d < 0)
    codes = np.where(mask_f, code_f[:, None], np.where(mask_b, code_b[:, None], 0)).astype(np.uint8)
    mask = mask_f | mask_b
    e_rows = np.where(mask & (e_rows == 0), codes, e_rows)
    err[rows] = e_rows
    full = np.zeros(err.shape, dtype=bool)
    full[rows] = mask
    r[full] = np.nan
    v[full] = np.nan


def _check_satrecs(satrecs: Sequence[Satrec]) -> list[Satrec]:
    sats = list(satrecs)
    for i, s in enumerate(sats):
        if not isinstance(s, Satrec):
            raise InputError(f"satrecs[{i}]: got {type(s).__name__}; expected sgp4.api.Satrec")
    return sats


def propagate(
    satrecs: Sequence[Satrec],
    times: Any,
    *,
    ids: ArrayLike | None = None,
    chunk_states: int = 5_000_000,
    progress: Callable[[int, int], None] | None = None,
) -> Ephemeris:
    """Propagate n element sets to m UTC times with SGP4; states in TEME (km, km/s), shape (n, m, 3).

    ``times`` is a 1-D array of UTC times (datetime64 or ISO 8601); ``ids`` defaults to each record's
    catalogue number ``satnum``. Objects are propagated ``chunk_states // m`` at a time; compiled
    python-sgp4 writes the states straight into the result (49 bytes per state), otherwise each chunk
    needs about 49 bytes per state more. ``progress(done, n)`` is called after each chunk.
    """
    sats = _check_satrecs(satrecs)
    t = as_utc(times)
    if t.ndim != 1:
        raise InputError(f"times: shape {t.shape}; expected a 1-D array of UTC times")
    if int(chunk_states) < 1:
        raise InputError(f"chunk_states: got {chunk_states}; expected a positive number of states")
    n, m = len(sats), t.size
    if ids is None:
        id_arr = np.fromiter((s.satnum for s in sats), dtype=np.int64, count=n)
    else:
        id_arr = np.asarray(ids)
        if id_arr.shape != (n,) or id_arr.dtype.kind not in "iu":
            raise InputError(f"ids: shape {id_arr.shape}, dtype {id_arr.dtype}; expected ({n},) integers")
        id_arr = id_arr.astype(np.int64)

    r = np.empty((n, m, 3), dtype=np.float64)
    v = np.empty((n, m, 3), dtype=np.float64)
    err = np.zeros((n, m), dtype=np.uint8)
    epochs = epochs_utc(sats)
    if n == 0 or m == 0:
        return Ephemeris(id_arr, t, r, v, err, epochs)

    jd, fr = utc_to_jd(t)
    t_ns = t.astype(np.int64)
    ep_ns = epochs.astype(np.int64)
    per_chunk = max(1, int(chunk_states) // m)
    for i0 in range(0, n, per_chunk):
        i1 = min(n, i0 + per_chunk)
        array = SatrecArray(sats[i0:i1])
        if hasattr(array, "_sgp4"):
            # The compiled python-sgp4 writes straight into row blocks of the result (which are
            # contiguous), as its public ``sgp4`` does into fresh arrays; this saves a copy per chunk.
            array._sgp4(jd, fr, err[i0:i1], r[i0:i1], v[i0:i1])
        else:
            err[i0:i1], r[i0:i1], v[i0:i1] = array.sgp4(jd, fr)
        _mask_after_failure(t_ns, ep_ns[i0:i1], err[i0:i1], r[i0:i1], v[i0:i1])
        if progress is not None:
            progress(i1, n)
    return Ephemeris(id_arr, t, r, v, err, epochs)


def propagate_one(
    satrec: Satrec, times: Any
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.uint8]]:
    """Propagate one element set to UTC times with SGP4: (r km, v km/s in TEME, shape S+(3,); error S).

    States are NaN from the first failure on, counted away from the epoch, as in :func:`propagate`.
    """
    (sat,) = _check_satrecs([satrec])
    t = as_utc(times)
    shape = t.shape
    flat = t.ravel()
    jd, fr = utc_to_jd(flat)
    err, r, v = sat.sgp4_array(jd, fr)
    _mask_after_failure(
        flat.astype(np.int64), epochs_utc([sat]).astype(np.int64), err[None], r[None], v[None]
    )
    return r.reshape(shape + (3,)), v.reshape(shape + (3,)), err.reshape(shape)


# ----------------------------------------------------------------------------------------------------
# Vallado verification set


@dataclass(frozen=True, eq=False)
class VerificationCase:
    """One element set of the SGP4 verification set with the states published for it (min, km, km/s, TEME).

    ``requested_min`` are the times since epoch that the verification driver asks for (0 first, then
    start..stop by step, then stop if the steps missed it); ``t_min``, ``r_km``, ``v_km_s`` are the rows
    printed in ``tcppver.out``, and ``elements`` the osculating elements printed beside them (a km, e,
    i, node, argp, nu, M in degrees; NaN on the epoch row, which has none). A run that fails stops the
    printing, so fewer rows than requested times means a failure at the next requested time; a failure
    at the epoch itself shows as an epoch row that repeats the previous object's last row
    (``first_row_stale``), because the driver printed the state it still held.
    """

    satnum: int
    line1: str
    line2: str
    start_min: float
    stop_min: float
    step_min: float
    requested_min: NDArray[np.float64]
    t_min: NDArray[np.float64]
    r_km: NDArray[np.float64]
    v_km_s: NDArray[np.float64]
    elements: NDArray[np.float64]
    first_row_stale: bool

    @property
    def failure_min(self) -> float | None:
        """Return the time since epoch (min) at which the published run failed, or None if it did not."""
        if self.first_row_stale:
            return 0.0
        k = len(self.t_min)
        return float(self.requested_min[k]) if k < len(self.requested_min) else None

    @property
    def valid_rows(self) -> slice:
        """Return the slice of printed rows that are true results (all, or none if the epoch row is stale)."""
        return slice(0, 0) if self.first_row_stale else slice(0, len(self.t_min))


def _requested_times(start: float, stop: float, step: float) -> NDArray[np.float64]:
    """Return the times since epoch (min) that the verification driver prints, in order."""
    out = [0.0]
    k = 0
    t = start
    while t <= stop:
        if not (t == start == 0.0):
            out.append(t)
        k += 1
        t = start + k * step
    if t - stop < step - 1e-6:
        out.append(stop)
    return np.asarray(out, dtype=np.float64)


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="ascii", errors="strict").replace("\r", "").splitlines()
    except FileNotFoundError as exc:
        raise InputError(f"{path}: file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc}); expected an ASCII text file") from exc


def _read_verification_tles(path: Path) -> list[tuple[str, str, float, float, float]]:
    lines = _read_lines(path)
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("1 "):
            if line.startswith("2 "):
                raise InputError(f"{path}:{i + 1}: line 2 without a line 1 before it")
            i += 1
            continue
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or lines[j].startswith("#")):
            j += 1
        if j >= len(lines) or not lines[j].startswith("2 "):
            raise InputError(f"{path}:{j + 1}: expected TLE line 2 after line 1 at line {i + 1}")
        line2 = lines[j]
        fields = line2[69:].split()
        try:
            start, stop, step = (float(x) for x in fields)
        except ValueError as exc:
            raise InputError(
                f"{path}:{j + 1}: columns 70 on hold {fields!r}; expected start, stop and step minutes"
            ) from exc
        if step <= 0.0:
            raise InputError(f"{path}:{j + 1}: step {step} min; expected a positive step")
        out.append((line.rstrip(), line2[:69], start, stop, step))
        i = j + 1
    return out


def _read_tcppver(path: Path) -> list[tuple[int, list[list[float]], list[int]]]:
    """Return (satnum, rows of numbers, line numbers) per block of ``tcppver.out``."""
    blocks: list[tuple[int, list[list[float]], list[int]]] = []
    for k, line in enumerate(_read_lines(path), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) == 2 and fields[1] == "xx":
            try:
                blocks.append((int(fields[0]), [], []))
            except ValueError as exc:
                raise InputError(f"{path}:{k}: header {line!r}; expected '<satnum> xx'") from exc
            continue
        if not blocks:
            raise InputError(f"{path}:{k}: data before the first '<satnum> xx' header")
        if len(fields) != 7 and len(fields) < 14:
            raise InputError(f"{path}:{k}: {len(fields)} fields; expected 7, or 14 and a date")
        try:
            values = [float(x) for x in fields[: 7 if len(fields) == 7 else 14]]
        except ValueError as exc:
            raise InputError(f"{path}:{k}: cannot read numbers ({exc})") from exc
        blocks[-1][1].append(values)
        blocks[-1][2].append(k)
    return blocks


def read_vallado_verification(tle_path: str | Path, out_path: str | Path) -> list[VerificationCase]:
    """Read the SGP4 verification set (``SGP4-VER.TLE``, ``tcppver.out``) into one case per element set.

    The set is that of Vallado, Crawford, Hujsak & Kelso, AIAA 2006-6753 (as shipped with python-sgp4):
    each TLE's line 2 carries start, stop and step minutes after column 69; the output file has a
    ``<satnum> xx`` header per TLE, then rows of t (min), r (km) and v (km/s) in TEME, with osculating
    elements and the date after the epoch row.
    """
    tle_path, out_path = Path(tle_path), Path(out_path)
    tles = _read_verification_tles(tle_path)
    blocks = _read_tcppver(out_path)
    if len(tles) != len(blocks):
        raise InputError(
            f"{out_path}: {len(blocks)} '<satnum> xx' blocks but {tle_path} has {len(tles)} element sets"
        )
    cases: list[VerificationCase] = []
    previous_last: list[float] | None = None
    for (line1, line2, start, stop, step), (satnum, rows, linenos) in zip(tles, blocks, strict=True):
        tle_num = line1[2:7].strip()
        if str(satnum) != tle_num.lstrip("0"):
            raise InputError(f"{out_path}: block for {satnum} where {tle_path} has element set {tle_num}")
        if not rows:
            raise InputError(f"{out_path}: block {satnum} has no rows; expected at least the epoch row")
        requested = _requested_times(start, stop, step)
        data = np.full((len(rows), 14), np.nan)
        for i, row in enumerate(rows):
            data[i, : len(row)] = row
        t = data[:, 0]
        if len(t) > len(requested) or np.any(np.abs(t - requested[: len(t)]) > 1e-6):
            raise InputError(
                f"{out_path}:{linenos[0]}: times of block {satnum} do not follow start {start}, "
                f"stop {stop}, step {step} min of {tle_path}"
            )
        stale = previous_last is not None and rows[0][1:7] == previous_last[1:7]
        cases.append(
            VerificationCase(
                satnum=satnum,
                line1=line1,
                line2=line2,
                start_min=start,
                stop_min=stop,
                step_min=step,
                requested_min=requested,
                t_min=t,
                r_km=data[:, 1:4],
                v_km_s=data[:, 4:7],
                elements=data[:, 7:14],
                first_row_stale=bool(stale),
            )
        )
        previous_last = rows[-1]
    return cases
