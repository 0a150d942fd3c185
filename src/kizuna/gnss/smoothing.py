"""Carrier-smoothed code: the Hatch filter that SBAS receivers run on single-frequency pseudoranges.

Each pseudorange P(k) is averaged with the carrier phase L(k) (in metres) of the same signal, whose change
from epoch to epoch is nearly noise-free::

    P_s(k) = P(k) / n + (n - 1) / n * (P_s(k-1) + L(k) - L(k-1)),    n = min(n + 1, N)

with a window N = round(smoothing_s / interval) that grows from 1 after each reset (so that the first N
epochs are the plain average of code-minus-carrier, then an exponential filter with time constant
``smoothing_s``; RTCA DO-229 prescribes 100 s). For white code noise of standard deviation sigma and an
exact carrier the error variance is sigma^2 / n while the window grows and tends to sigma^2 / (2N - 1) with
a fixed window.

The filter of a satellite restarts (n = 1, P_s = P) after an epoch where its code or phase is absent, where
the phase's loss-of-lock indicator has bit 0 set, where the receiver reported a power failure (epoch flag
1), after a gap in time longer than 1.5 intervals (from the epoch times, not the index), where the code
picked for it changes, and where the code disagrees with the carried-forward estimate by more than
``max_jump_m`` (default 10 m): ``|P(k) - (P_s(k-1) + L(k) - L(k-1))|``. Ten metres is about ten times the
code noise of a geodetic receiver on L1 C/A and more than a thousand times the code-carrier divergence of
the ionosphere over a 30-s interval, so it fires on an unflagged cycle slip of ~50 cycles or more (about
10 m of L1 phase) or on a clock jump applied to the code only, and not on noise. Smaller slips are not
caught and bias the smoothed range by the slip until the filter forgets it (about N epochs). Epochs
without phase keep the raw pseudorange.

The phase of code ``Cxy`` is ``Lxy`` (same band and attribute: C1C -> L1C, C2I -> L2I, C5A -> L5A), in
cycles times the wavelength c / f of its band; GLONASS FDMA frequencies are given per satellite.
"""

from __future__ import annotations

from collections.abc import Mapping

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from kizuna.core.constants import SPEED_OF_LIGHT_M_S
from kizuna.errors import InputError
from kizuna.gnss.rinex_obs import ObsData

__all__ = ["MAX_JUMP_M", "MAX_GAP_INTERVALS", "band_frequency_hz", "hatch_filter", "smooth_pseudoranges"]

# Code-minus-carrier jump (m) that restarts a satellite's filter (see the module docstring).
MAX_JUMP_M = 10.0
# A gap longer than this many intervals between two epochs of a satellite restarts its filter.
MAX_GAP_INTERVALS = 1.5

# Carrier frequencies (Hz) by system and RINEX 3 band (IS-GPS-200/705, Galileo OS SIS ICD, IS-QZSS-PNT,
# BDS-SIS-ICD B1I/B1C/B2a/B3I, IRNSS SPS ICD, GLONASS CDMA ICDs, RTCA DO-229 for SBAS).
_BAND_HZ: dict[str, dict[str, float]] = {
    "G": {"1": 1_575.42e6, "2": 1_227.60e6, "5": 1_176.45e6},
    "J": {"1": 1_575.42e6, "2": 1_227.60e6, "5": 1_176.45e6, "6": 1_278.75e6},
    "E": {"1": 1_575.42e6, "5": 1_176.45e6, "7": 1_207.14e6, "8": 1_191.795e6, "6": 1_278.75e6},
    "C": {
        "1": 1_575.42e6,
        "2": 1_561.098e6,
        "5": 1_176.45e6,
        "7": 1_207.14e6,
        "8": 1_191.795e6,
        "6": 1_268.52e6,
    },  # fmt: skip
    "I": {"5": 1_176.45e6, "9": 2_492.028e6, "1": 1_575.42e6},
    "S": {"1": 1_575.42e6, "5": 1_176.45e6},
    "R": {"3": 1_202.025e6, "4": 1_600.995e6, "6": 1_248.06e6},
}


def band_frequency_hz(sv: str, code: str, glonass_freq_hz: Mapping[str, float] | None = None) -> float:
    """Return the carrier frequency (Hz) of a RINEX 3 signal of one satellite, NaN when unknown.

    GLONASS G1 and G2 (bands 1 and 2) are FDMA: ``glonass_freq_hz`` gives each satellite's G1 frequency
    (1602 MHz + k 0.5625 MHz); G2 is 7/9 of it (1246 MHz + k 0.4375 MHz).
    """
    band = code[1:2]
    if sv[0] == "R" and band in ("1", "2"):
        g1 = float((glonass_freq_hz or {}).get(sv, np.nan))
        return g1 if band == "1" else g1 * 7.0 / 9.0
    return _BAND_HZ.get(sv[0], {}).get(band, np.nan)


@numba.njit(cache=True)
def _hatch_kernel(
    code: NDArray[np.float64],
    phase: NDArray[np.float64],
    slip: NDArray[np.bool_],
    code_id: NDArray[np.int64],
    t: NDArray[np.float64],
    n_max: int,
    max_gap: float,
    max_jump: float,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Run the Hatch recursion over epochs for every satellite; return the smoothed codes and restarts."""
    n_e, n_s = code.shape
    out = np.full((n_e, n_s), np.nan)
    resets = np.zeros(n_s, dtype=np.int64)
    n = np.zeros(n_s, dtype=np.int64)  # current window, 0 when the filter is stopped
    started = np.zeros(n_s, dtype=np.bool_)
    prev_s = np.zeros(n_s)
    prev_l = np.zeros(n_s)
    prev_t = np.zeros(n_s)
    prev_c = np.zeros(n_s, dtype=np.int64)
    for k in range(n_e):
        for j in range(n_s):
            p = code[k, j]
            if not np.isfinite(p):
                n[j] = 0
                continue
            lk = phase[k, j]
            if not np.isfinite(lk):
                out[k, j] = p
                n[j] = 0
                continue
            if n[j] > 0:
                pred = prev_s[j] + (lk - prev_l[j])
                if (
                    slip[k, j]
                    or t[k] - prev_t[j] > max_gap
                    or code_id[k, j] != prev_c[j]
                    or abs(p - pred) > max_jump
                ):
                    n[j] = 0
            if n[j] == 0:
                if started[j]:
                    resets[j] += 1
                started[j] = True
                s = p
                n[j] = 1
            else:
                m = min(n[j] + 1, n_max)
                s = p / m + (m - 1) / m * (prev_s[j] + (lk - prev_l[j]))
                n[j] = m
            out[k, j] = s
            prev_s[j] = s
            prev_l[j] = lk
            prev_t[j] = t[k]
            prev_c[j] = code_id[k, j]
    return out, resets


def hatch_filter(
    code_m: ArrayLike,
    phase_m: ArrayLike,
    t_s: ArrayLike,
    smoothing_s: float,
    interval_s: float,
    lli: ArrayLike | None = None,
    code_id: ArrayLike | None = None,
    max_jump_m: float = MAX_JUMP_M,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Return Hatch-smoothed pseudoranges (E, S) in m and the number of filter restarts per satellite (S,).

    ``code_m`` and ``phase_m`` (E, S) are the pseudoranges and the carrier phases of the same signal, both in
    metres (cycles times wavelength; any constant ambiguity cancels), NaN where absent; ``t_s`` (E,) the
    epoch times in seconds (increasing); ``lli`` (E, S) the phase's loss-of-lock indicators (bit 0: lost
    lock; negative values mean absent); ``code_id`` (E, S) an integer naming the code picked at each epoch
    (a change restarts the filter). The window is ``round(smoothing_s / interval_s)`` epochs (at least 1,
    which returns the codes unchanged). A restart is counted each time a satellite's filter starts again
    after its first start (a new pass, a slip, a gap, a code change or missing phase).
    """
    code = np.ascontiguousarray(code_m, dtype=float)
    if code.ndim != 2:
        raise InputError(f"pseudoranges: expected an (epochs, satellites) array, got shape {code.shape}")
    phase = np.ascontiguousarray(np.broadcast_to(np.asarray(phase_m, dtype=float), code.shape))
    t = np.ascontiguousarray(t_s, dtype=float).reshape(-1)
    if t.size != code.shape[0]:
        raise InputError(f"epoch times: expected {code.shape[0]} values, got {t.size}")
    if not (np.isfinite(interval_s) and interval_s > 0):
        raise InputError(f"interval {interval_s} s: expected a positive number of seconds")
    if not (np.isfinite(smoothing_s) and smoothing_s >= 0):
        raise InputError(f"smoothing time constant {smoothing_s} s: expected >= 0")
    if not (np.isfinite(max_jump_m) and max_jump_m > 0):
        raise InputError(f"code-carrier jump threshold {max_jump_m} m: expected > 0")
    if lli is None:
        slip = np.zeros(code.shape, dtype=bool)
    else:
        li = np.broadcast_to(np.asarray(lli, dtype=np.int64), code.shape)
        slip = np.ascontiguousarray((li >= 0) & ((li & 1) != 0))
    cid = (
        np.zeros(code.shape, dtype=np.int64)
        if code_id is None
        else np.ascontiguousarray(np.broadcast_to(np.asarray(code_id, dtype=np.int64), code.shape))
    )
    n_max = max(1, round(smoothing_s / interval_s))
    return _hatch_kernel(code, phase, slip, cid, t, n_max, MAX_GAP_INTERVALS * interval_s, float(max_jump_m))


def smooth_pseudoranges(
    obs: ObsData,
    sats: ArrayLike,
    code_m: ArrayLike,
    codes: ArrayLike,
    smoothing_s: float,
    glonass_freq_hz: Mapping[str, float] | None = None,
    max_jump_m: float = MAX_JUMP_M,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Return the Hatch-smoothed pseudoranges (E, S) in m of an observation file and restarts per satellite.

    ``obs`` holds the observations; ``sats`` (S,) the satellites of the columns of
    ``code_m`` (E, S), the pseudoranges picked for each epoch and satellite (after any correction that is
    constant per satellite and code), and ``codes`` (E, S) the RINEX 3 code of each ('' where none). Each
    is smoothed with the phase of its own signal and that phase's loss-of-lock indicators; an epoch with
    flag 1 (power failure) restarts every satellite. The interval is the header's, else the median step
    of the epoch times.
    """
    sats = np.asarray(sats)
    code = np.asarray(code_m, dtype=float)
    codes = np.asarray(codes, dtype=object)
    n_e, n_s = code.shape
    t = np.asarray(obs.t_gpst(), dtype=float)
    interval = float(obs.interval_s) if obs.interval_s is not None else np.nan
    if not (np.isfinite(interval) and interval > 0):
        steps = np.diff(t)
        steps = steps[steps > 0]
        interval = float(np.median(steps)) if steps.size else 1.0
    sat_col = {str(s): i for i, s in enumerate(obs.sats)}
    sig_index = {s: i for i, s in enumerate(obs.signals)}
    cols = np.array([sat_col.get(str(s), -1) for s in sats], dtype=np.int64)
    if (cols < 0).any():
        raise InputError(f"{obs.path}: satellites {list(sats[cols < 0])} are not in the observations")
    phase = np.full((n_e, n_s), np.nan)
    lli = np.full((n_e, n_s), -1, dtype=np.int64)
    uniq, cid = np.unique(codes.astype(str), return_inverse=True)
    cid = cid.reshape(n_e, n_s).astype(np.int64)
    for u, c in enumerate(uniq):
        k = sig_index.get("L" + c[1:]) if c else None
        if k is None:
            continue
        for j in np.flatnonzero((cid == u).any(axis=0)):
            lam = SPEED_OF_LIGHT_M_S / band_frequency_hz(str(sats[j]), c, glonass_freq_hz)
            rows = np.flatnonzero(cid[:, j] == u)
            phase[rows, j] = obs.values[rows, cols[j], k] * lam
            lli[rows, j] = obs.lli[rows, cols[j], k]
    power_fail = np.asarray(obs.epoch_flags).reshape(-1) == 1
    if power_fail.size == n_e and power_fail.any():
        lli[power_fail] = np.where(lli[power_fail] >= 0, lli[power_fail] | 1, -1)
    return hatch_filter(code, phase, t, smoothing_s, interval, lli=lli, code_id=cid, max_jump_m=max_jump_m)
