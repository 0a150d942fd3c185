"""Broadcast satellite position, velocity and clock: GPS, QZSS, Galileo, BeiDou, NavIC and GLONASS.

Positions are those of the broadcast orbit (the antenna phase centre for GPS and QZSS, as broadcast) in
the constellation's own Earth-fixed frame (WGS84, GTRF, CGCS2000, PZ-90.11, all treated as ITRF), at the
given GPS instants, with no correction for Earth rotation during the signal's travel (the positioning
code applies it). Clocks include the relativistic eccentricity term and no group delay.

Orbit models:
- GPS and QZSS LNAV (IS-GPS-200 Table 20-IV; IS-QZSS-PNT), NavIC (IRNSS SPS ICD, same model), Galileo
  (OS SIS ICD 5.1.1) and BeiDou MEO/IGSO (BDS-SIS-ICD B1I 3.0, 5.2.4.12): Kepler with harmonic
  corrections, each with its ICD's mu and Earth rotation rate. BeiDou GEO satellites (C01-C05, C59-C63)
  use the ICD's rotation by -5 degrees and by the Earth rotation since toe.
- CNAV-type rows (RINEX 4 CNAV/CNV1/CNV2/CNV3, with ``adot`` and ``delta_n_dot``) add the semi-major-axis
  rate and the mean-motion rate of IS-GPS-200 30.3.3.1.3 to the same model (A = A0 + adot tk,
  n = n0 + delta_n + delta_n_dot tk / 2); ``sqrt_a`` holds sqrt(A0) as the navigation-data contract says.
- GLONASS: numerical integration, see :mod:`kizuna.gnss.glonass`.

Ephemeris selection follows RTKLIB 2.4.3 b34 (``seleph``, ``selgeph`` and ``satexclude``), the reference
the project compares its positions with: for each satellite the record whose toe is nearest the instant,
among records no older or younger than RTKLIB's MAXDTOE (GPS, QZSS, NavIC 7201 s; Galileo 14400 s; BeiDou
21601 s; GLONASS 1800 s); on a tie the later record; for Galileo only records with toe before the
instant (RTKLIB's "AOD <= 0" rule) and I/NAV rather than F/NAV (F/NAV only where no I/NAV record is in
reach, which RTKLIB never does). Like RTKLIB's ``uniqnav``, a record that follows another of the same
satellite and IOD in transmission-time order is dropped (``match_rtklib``). The selected record is then
usable when its health field is 0 (QZSS: ignoring bit 0, the L6 flag RTKLIB masks; Galileo: all SHS/DVS
bits 0; BeiDou: SatH1 0; GLONASS: health 0) and its accuracy is one RTKLIB accepts (URA at most 192 m;
Galileo SISA 0-6 m). Satellites of other systems (SBAS) get no state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from kizuna.errors import InputError
from kizuna.gnss.glonass import glonass_propagate

if TYPE_CHECKING:
    from kizuna.gnss.rinex_nav import NavData

__all__ = [
    "BroadcastState",
    "DEFAULT_MESSAGES",
    "MAX_AGE_S",
    "broadcast_state",
    "select_ephemeris",
    "sv_codes",
]

CLIGHT_M_S = 299_792_458.0
SECONDS_PER_WEEK = 604_800.0

# Gravitational constant and Earth rotation rate of each system's ICD (RTKLIB uses the same values).
_MU = {"G": 3.986005e14, "J": 3.986005e14, "I": 3.986005e14, "E": 3.986004418e14, "C": 3.986004418e14}
_OMEGA_E = {"G": 7.2921151467e-5, "J": 7.2921151467e-5, "I": 7.2921151467e-5, "E": 7.2921151467e-5}
_OMEGA_E["C"] = 7.292115e-5
# sin and cos of -5 degrees (BDS-SIS-ICD 5.2.4.12, GEO satellites).
_SIN_M5 = -0.0871557427476582
_COS_M5 = 0.9961946980917456

# Largest |t - toe| of a usable record, as RTKLIB 2.4.3 b34 tests it (MAXDTOE + 1 s for GPS, QZSS, BeiDou
# and NavIC; MAXDTOE_GAL and MAXDTOE_GLO as they are).
MAX_AGE_S = {"G": 7201.0, "J": 7201.0, "I": 7201.0, "E": 14400.0, "C": 21601.0, "R": 1800.0}
DEFAULT_MESSAGES = ("LNAV", "INAV", "FNAV", "D1", "D2")
_KNOWN_MESSAGES = {"LNAV", "CNAV", "CNV1", "CNV2", "CNV3", "INAV", "FNAV", "D1", "D2", "FDMA"}
# RTKLIB's largest usable URA (ura_value[9]; index 10, 384 m, exceeds its 300 m limit) and Galileo SISA.
_MAX_URA_M = 192.0
_MAX_SISA_M = 6.0

_KEPLER_COLUMNS = (
    "toc_gpst", "af0", "af1", "af2", "crs", "delta_n", "m0", "cuc", "e", "cus", "sqrt_a", "toe_sow",
    "cic", "omega0", "cis", "i0", "crc", "omega", "omega_dot", "idot", "toe_gpst",
)  # fmt: skip
_GLO_COLUMNS = (
    "toc_gpst", "clk_bias_s", "gamma_n", "x_m", "y_m", "z_m", "vx_m_s", "vy_m_s", "vz_m_s",
    "ax_m_s2", "ay_m_s2", "az_m_s2",
)  # fmt: skip


@dataclass(frozen=True)
class BroadcastState:
    """Broadcast satellite states at GPS instants: Earth-fixed position (m), velocity (m/s), clock (s).

    Arrays have the broadcast shape of the inputs ``sv`` and ``t_gpst`` (``n`` below), vectors a trailing 3.
    Where no record was found the position, velocity and clock are NaN and ``eph_row`` is -1; where the
    record found is unhealthy they are computed but ``valid`` is False (unless ``use_unhealthy``).
    """

    pos_ecef_m: NDArray[np.float64]  # (n, 3) broadcast antenna position, constellation's Earth-fixed frame
    vel_ecef_m_s: NDArray[np.float64]  # (n, 3) velocity in the same rotating frame
    clk_s: NDArray[np.float64]  # (n,) clock offset incl. relativistic eccentricity term, no group delay
    clk_drift_s_s: NDArray[np.float64]  # (n,) clock rate (s/s), incl. the relativistic term's rate
    tgd_s: NDArray[np.float64]  # (n,) TGD (GPS/QZSS/NavIC), BGD E5a/E1 (Galileo), TGD1 (BeiDou); NaN for R
    tgd2_s: NDArray[np.float64]  # (n,) BGD E5b/E1 (Galileo), TGD2 (BeiDou); NaN otherwise
    valid: NDArray[np.bool_]  # (n,) record found, within its age limit, usable (healthy, accuracy)
    eph_row: NDArray[np.int64]  # (n,) row in nav.eph (nav.glo for GLONASS), -1 if none
    accuracy_m: NDArray[np.float64]  # (n,) URA/SISA as broadcast; NaN for GLONASS


def sv_codes(sv: ArrayLike, what: str = "sv") -> NDArray[np.int64]:
    """Return integer codes (ord(system letter) * 100 + PRN) of satellite names such as 'G01', 'C59'."""
    a = np.asarray(sv)
    if a.dtype.kind != "U":
        a = a.astype(str)
    if a.size and a.dtype.itemsize != 12:
        stripped = np.char.strip(a)
        lengths = np.char.str_len(stripped)
        if np.any(lengths != 3):
            bad = a.ravel()[np.flatnonzero(lengths.ravel() != 3)[0]]
            raise InputError(f"{what}: expected satellite names like 'G01', got {bad!r}")
        a = stripped.astype("U3")
    if a.size == 0:
        return np.zeros(a.shape, dtype=np.int64)
    chars = np.ascontiguousarray(a).view(np.uint32).reshape(*a.shape, 3).astype(np.int64)
    d1 = chars[..., 1] - 48
    d2 = chars[..., 2] - 48
    ok = (d1 >= 0) & (d1 <= 9) & (d2 >= 0) & (d2 <= 9) & (chars[..., 0] >= 65) & (chars[..., 0] <= 90)
    if not np.all(ok):
        bad = a.ravel()[np.flatnonzero(~ok.ravel())[0]]
        raise InputError(f"{what}: expected satellite names like 'G01', got {bad!r}")
    return chars[..., 0] * 100 + d1 * 10 + d2


def _systems(code: NDArray[np.int64]) -> NDArray[np.str_]:
    """Return the system letter of each satellite code ('' for systems without broadcast orbits here)."""
    out = np.full(code.shape, "", dtype="U1")
    for letter in "GJECIR":
        out[code // 100 == ord(letter)] = letter
    return out


def _inputs(sv: ArrayLike, t_gpst: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.float64], tuple]:
    code = sv_codes(sv)
    t = np.asarray(t_gpst, dtype=float)
    try:
        code_b, t_b = np.broadcast_arrays(code, t)
    except ValueError as exc:
        raise InputError(f"sv {code.shape} and t_gpst {t.shape} do not broadcast together") from exc
    return code_b.ravel(), t_b.ravel(), code_b.shape


def _check_messages(messages: Sequence[str]) -> set[str]:
    msgs = {str(m).strip().upper() for m in messages}
    unknown = msgs - _KNOWN_MESSAGES
    if unknown:
        raise InputError(f"messages: unknown navigation message type(s) {sorted(unknown)}: "
                         f"expected some of {sorted(_KNOWN_MESSAGES)}")  # fmt: skip
    return msgs


def _column(df: pd.DataFrame, name: str, table: str) -> NDArray:
    if name not in df.columns:
        raise InputError(f"navigation data table {table!r} has no column {name!r}")
    return df[name].to_numpy()


def _nearest(
    rec_code: NDArray[np.int64],
    rec_t: NDArray[np.float64],
    rec_tie: NDArray[np.float64],
    q_code: NDArray[np.int64],
    q_t: NDArray[np.float64],
    max_age_s: NDArray[np.float64],
    before_only: NDArray[np.bool_],
) -> NDArray[np.int64]:
    """Return, per query, the index of the record of the same code nearest in time (or -1).

    Records tie-break by ``rec_tie`` (later wins, as RTKLIB's ``t <= tmin`` keeps the last one scanned);
    ``before_only`` queries take only records strictly before the instant. Sort-and-merge, no loop.
    """
    n_r, n_q = rec_code.size, q_code.size
    out = np.full(n_q, -1, dtype=np.int64)
    if n_r == 0 or n_q == 0:
        return out
    order_r = np.lexsort((rec_tie, rec_t, rec_code))
    rc, rt = rec_code[order_r], rec_t[order_r]
    # Merge queries into the sorted records: a query sorts after records of equal time, except a
    # before-only query, which sorts before them; the running maximum of record ranks is then the last
    # record at or before (strictly before) each query.
    code = np.concatenate([rc, q_code])
    tt = np.concatenate([rt, q_t])
    kind = np.concatenate([np.ones(n_r), np.where(before_only, 0.0, 2.0)])
    seq = np.concatenate([np.arange(n_r), np.arange(n_q)])
    merged = np.lexsort((seq, kind, tt, code))
    rank = np.where(merged < n_r, merged, -1)
    last = np.maximum.accumulate(rank)
    is_q = merged >= n_r
    lower = np.empty(n_q, dtype=np.int64)
    lower[merged[is_q] - n_r] = last[is_q]
    # Last record of each run of equal (code, time): the one RTKLIB keeps on a tie.
    new_run = np.ones(n_r, dtype=bool)
    new_run[1:] = (rc[1:] != rc[:-1]) | (rt[1:] != rt[:-1])
    run_last = np.flatnonzero(np.append(new_run[1:], True))[np.cumsum(new_run) - 1]
    ok_lo = lower >= 0
    ok_lo[ok_lo] = rc[lower[ok_lo]] == q_code[ok_lo]
    upper = lower + 1
    ok_up = (upper < n_r) & ~before_only
    ok_up[ok_up] = rc[upper[ok_up]] == q_code[ok_up]
    upper_last = np.where(ok_up, run_last[np.clip(upper, 0, n_r - 1)], -1)
    d_lo = np.where(ok_lo, q_t - rt[np.clip(lower, 0, n_r - 1)], np.inf)
    d_up = np.where(ok_up, rt[np.clip(upper_last, 0, n_r - 1)] - q_t, np.inf)
    take_up = ok_up & (d_up <= d_lo)
    pick = np.where(take_up, upper_last, lower)
    dist = np.where(take_up, d_up, d_lo)
    good = (ok_lo | ok_up) & (dist <= max_age_s)
    out[good] = order_r[pick[good]]
    return out


def _usable(eph: pd.DataFrame, rows: NDArray[np.int64], system: NDArray[np.str_]) -> NDArray[np.bool_]:
    """Return whether the selected Keplerian records are healthy and accurate enough (RTKLIB's rules)."""
    health = np.asarray(_column(eph, "health", "eph"), dtype=float)[rows]
    acc = np.asarray(_column(eph, "accuracy_m", "eph"), dtype=float)[rows]
    h = np.where(np.isfinite(health), health, 0.0).astype(np.int64)
    h = np.where(system == "J", h & ~1, h)
    ok = h == 0
    gal = system == "E"
    ok &= np.where(gal, (acc >= 0.0) & (acc <= _MAX_SISA_M), ~(acc > _MAX_URA_M))
    return ok


def _rtklib_shadowed(
    eph: pd.DataFrame, r_code: NDArray[np.int64], r_msg: NDArray[np.str_]
) -> NDArray[np.bool_]:
    """Return the records RTKLIB 2.4.3's ``uniqnav`` drops: those whose predecessor is the same sv and IOD.

    RTKLIB sorts all records by transmission time, toe and satellite, then keeps only the first of each run
    of records of one satellite with one IOD; it does so before choosing I/NAV over F/NAV, so a Galileo I/NAV
    record can be hidden by the F/NAV record of the same IODnav sent a few seconds earlier.
    """
    rtk = np.isin(r_msg, ["LNAV", "INAV", "FNAV", "D1", "D2"])
    toc = np.asarray(_column(eph, "toc_gpst", "eph"), dtype=float)
    toe = np.asarray(_column(eph, "toe_gpst", "eph"), dtype=float)
    iode = np.asarray(_column(eph, "iode", "eph"), dtype=float)
    if "ttm_s" not in eph.columns:
        return np.zeros(len(eph), dtype=bool)
    ttm = np.asarray(eph["ttm_s"], dtype=float) + np.where(r_code // 100 == ord("C"), 14.0, 0.0)
    # Transmission time as continuous GPS seconds, in the week that puts it nearest toc (RTKLIB's adjweek).
    d = ttm - np.mod(toc, SECONDS_PER_WEEK)
    ttr = np.floor(toc + d - SECONDS_PER_WEEK * np.round(d / SECONDS_PER_WEEK))
    sys_rank = np.select([r_code // 100 == ord(c) for c in "GEJCI"], [0, 1, 2, 3, 4], 5)
    idx = np.flatnonzero(rtk & np.isfinite(ttr))
    order = idx[np.lexsort((idx, r_code[idx] % 100, sys_rank[idx], np.floor(toe[idx]), ttr[idx]))]
    same = (r_code[order][1:] == r_code[order][:-1]) & (iode[order][1:] == iode[order][:-1])
    out = np.zeros(len(eph), dtype=bool)
    out[order[1:][same]] = True
    return out


def _select(
    nav: NavData, code: NDArray[np.int64], t: NDArray[np.float64], messages: set[str], match_rtklib: bool
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Return (row, usable) per query: the RTKLIB-selected record in nav.eph / nav.glo (-1 if none)."""
    rows = np.full(code.size, -1, dtype=np.int64)
    usable = np.zeros(code.size, dtype=bool)
    finite = np.isfinite(t)
    q_sys = _systems(code)
    q_age = np.zeros(code.size)
    for letter, age in MAX_AGE_S.items():
        q_age[q_sys == letter] = age

    eph = getattr(nav, "eph", None)
    if eph is not None and len(eph):
        r_code = sv_codes(_column(eph, "sv", "eph"), "nav.eph sv")
        r_msg = np.char.upper(np.char.strip(_column(eph, "msg", "eph").astype(str)))
        r_toe = np.asarray(_column(eph, "toe_gpst", "eph"), dtype=float)
        r_tie = np.asarray(eph["ttm_s"], dtype=float) if "ttm_s" in eph.columns else np.zeros(len(eph))
        r_tie = np.where(np.isfinite(r_tie), r_tie, -np.inf)
        r_ok = np.isfinite(r_toe) & np.isin(r_msg, list(messages))
        if match_rtklib:
            r_ok &= ~_rtklib_shadowed(eph, r_code, r_msg)
        kep_q = finite & np.isin(q_sys, ["G", "J", "E", "C", "I"])
        gal_q = kep_q & (q_sys == "E")
        # Galileo: I/NAV first (RTKLIB's default), F/NAV only for satellites without an I/NAV record in reach.
        passes = [(r_ok & (r_msg != "FNAV"), kep_q)]
        if "FNAV" in messages:
            passes.append((r_ok & (r_msg == "FNAV"), gal_q))
        for rec_mask, q_mask in passes:
            q_idx = np.flatnonzero(q_mask & (rows < 0))
            if q_idx.size == 0:
                continue
            r_idx = np.flatnonzero(rec_mask)
            found = _nearest(
                r_code[r_idx], r_toe[r_idx], r_tie[r_idx], code[q_idx], t[q_idx], q_age[q_idx], gal_q[q_idx]
            )
            hit = found >= 0
            rows[q_idx[hit]] = r_idx[found[hit]]
        sel = np.flatnonzero(rows >= 0)
        usable[sel] = _usable(eph, rows[sel], q_sys[sel])

    glo = getattr(nav, "glo", None)
    glo_q = finite & (q_sys == "R")
    if glo is not None and len(glo) and np.any(glo_q):
        g_code = sv_codes(_column(glo, "sv", "glo"), "nav.glo sv")
        g_t = np.asarray(_column(glo, "toc_gpst", "glo"), dtype=float)
        g_tie = (
            np.asarray(glo["t_frame_s"], dtype=float) if "t_frame_s" in glo.columns else np.zeros(len(glo))
        )
        g_tie = np.where(np.isfinite(g_tie), g_tie, -np.inf)
        q_idx = np.flatnonzero(glo_q)
        found = _nearest(
            g_code, g_t, g_tie, code[q_idx], t[q_idx], q_age[q_idx], np.zeros(q_idx.size, dtype=bool)
        )
        hit = found >= 0
        rows[q_idx[hit]] = found[hit]
        health = np.asarray(_column(glo, "health", "glo"), dtype=float)[found[hit]]
        usable[q_idx[hit]] = ~(np.where(np.isfinite(health), health, 0.0) != 0.0)
    return rows, usable


def select_ephemeris(
    nav: NavData,
    sv: ArrayLike,
    t_gpst: ArrayLike,
    *,
    messages: Sequence[str] = DEFAULT_MESSAGES,
    use_unhealthy: bool = False,
    match_rtklib: bool = True,
) -> NDArray[np.int64]:
    """Return the row of nav.eph (nav.glo for GLONASS) RTKLIB 2.4.3 would use for each sv at t_gpst, or -1.

    ``sv`` and ``t_gpst`` (GPS seconds) broadcast together; the result has their broadcast shape. A
    satellite whose nearest record is unhealthy or too inaccurate gets -1 (RTKLIB then drops it rather than
    take an older record) unless ``use_unhealthy``. GLONASS records are always eligible (no message type).
    ``match_rtklib`` also drops the records RTKLIB's ``uniqnav`` drops (a record right after another of the
    same satellite and IOD in transmission-time order: this can hide a Galileo I/NAV record behind its F/NAV
    twin, and RTKLIB then uses an older I/NAV record); False keeps every record.
    """
    code, t, shape = _inputs(sv, t_gpst)
    rows, usable = _select(nav, code, t, _check_messages(messages), match_rtklib)
    if not use_unhealthy:
        rows = np.where(usable, rows, -1)
    return rows.reshape(shape)


@numba.njit(cache=True)
def _kepler_kernel(
    tab: NDArray[np.float64],
    rows: NDArray[np.int64],
    t: NDArray[np.float64],
    pos: NDArray[np.float64],
    vel: NDArray[np.float64],
    clk: NDArray[np.float64],
    drift: NDArray[np.float64],
) -> None:
    """Write Earth-fixed position (m), velocity (m/s), clock (s) and clock rate (s/s) of Kepler records.

    ``tab`` holds one record per row: the ``_KEPLER_COLUMNS``, then adot, delta_n_dot, mu, omega_e and a GEO
    flag (see ``_kepler_table``); ``rows[k]`` is the record of instant ``t[k]``.
    """
    for k in range(rows.size):
        p = tab[rows[k]]
        toc, af0, af1, af2 = p[0], p[1], p[2], p[3]
        crs, delta_n, m0, cuc, e, cus, sqrt_a, toe_sow = p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11]
        cic, omega0, cis, i0 = p[12], p[13], p[14], p[15]
        crc, omega, omega_dot, idot = p[16], p[17], p[18], p[19]
        toe, adot, delta_n_dot, mu, omega_e, geo = p[20], p[21], p[22], p[23], p[24], p[25] != 0.0
        a0 = sqrt_a * sqrt_a
        tk = t[k] - toe
        tk -= SECONDS_PER_WEEK * np.round(tk / SECONDS_PER_WEEK)  # week crossover: tk within +-302400 s
        a_k = a0 + adot * tk
        n0 = np.sqrt(mu / (a0 * a0 * a0))
        mean = m0 + (n0 + delta_n + 0.5 * delta_n_dot * tk) * tk
        m_dot = n0 + delta_n + delta_n_dot * tk
        ecc = mean
        for _ in range(30):  # Newton's method on Kepler's equation, to 1e-13 rad as RTKLIB
            step = (ecc - e * np.sin(ecc) - mean) / (1.0 - e * np.cos(ecc))
            ecc -= step
            if abs(step) <= 1e-13:
                break
        sin_e, cos_e = np.sin(ecc), np.cos(ecc)
        one_m = 1.0 - e * cos_e
        root = np.sqrt(1.0 - e * e)
        phi = np.arctan2(root * sin_e, cos_e - e) + omega
        s2, c2 = np.sin(2.0 * phi), np.cos(2.0 * phi)
        u = phi + cus * s2 + cuc * c2
        r = a_k * one_m + crs * s2 + crc * c2
        inc = i0 + idot * tk + cis * s2 + cic * c2
        e_dot = m_dot / one_m
        nu_dot = e_dot * root / one_m
        u_dot = nu_dot * (1.0 + 2.0 * (cus * c2 - cuc * s2))
        r_dot = a_k * e * sin_e * e_dot + adot * one_m + 2.0 * nu_dot * (crs * c2 - crc * s2)
        i_dot = idot + 2.0 * nu_dot * (cis * c2 - cic * s2)
        cu, su = np.cos(u), np.sin(u)
        xp, yp = r * cu, r * su
        xp_dot = r_dot * cu - r * u_dot * su
        yp_dot = r_dot * su + r * u_dot * cu
        # BeiDou GEO: the node is held inertial (no -omega_e tk) and the result rotated below.
        node_rate = omega_dot if geo else omega_dot - omega_e
        node = omega0 + node_rate * tk - omega_e * toe_sow
        co, so, ci, si = np.cos(node), np.sin(node), np.cos(inc), np.sin(inc)
        x = xp * co - yp * ci * so
        y = xp * so + yp * ci * co
        z = yp * si
        vx = xp_dot * co - yp_dot * ci * so + yp * si * so * i_dot - y * node_rate
        vy = xp_dot * so + yp_dot * ci * co - yp * si * co * i_dot + x * node_rate
        vz = yp_dot * si + yp * ci * i_dot
        if geo:  # BDS-SIS-ICD 5.2.4.12: rotate by -5 deg about x, then by omega_e tk about z
            q0, q1, q2 = x, y * _COS_M5 + z * _SIN_M5, -y * _SIN_M5 + z * _COS_M5
            d0, d1, d2 = vx, vy * _COS_M5 + vz * _SIN_M5, -vy * _SIN_M5 + vz * _COS_M5
            ca, sa = np.cos(omega_e * tk), np.sin(omega_e * tk)
            x, y, z = q0 * ca + q1 * sa, -q0 * sa + q1 * ca, q2
            vx, vy, vz = d0 * ca + d1 * sa + omega_e * y, -d0 * sa + d1 * ca - omega_e * x, d2
        pos[k, 0], pos[k, 1], pos[k, 2] = x, y, z
        vel[k, 0], vel[k, 1], vel[k, 2] = vx, vy, vz
        dt = t[k] - toc
        dt -= SECONDS_PER_WEEK * np.round(dt / SECONDS_PER_WEEK)
        rel = -2.0 * np.sqrt(mu * a_k) * e / (CLIGHT_M_S * CLIGHT_M_S)
        clk[k] = af0 + af1 * dt + af2 * dt * dt + rel * sin_e
        drift[k] = af1 + 2.0 * af2 * dt + rel * cos_e * e_dot


def _kepler_table(eph: pd.DataFrame, r_code: NDArray[np.int64]) -> NDArray[np.float64]:
    """Return the records of nav.eph as one float table in the column order the kernel reads."""
    n = len(eph)
    cols = [np.asarray(_column(eph, c, "eph"), dtype=float) for c in _KEPLER_COLUMNS]
    for c in ("adot", "delta_n_dot"):
        v = np.asarray(eph[c], dtype=float) if c in eph.columns else np.zeros(n)
        cols.append(np.where(np.isfinite(v), v, 0.0))
    system = r_code // 100
    mu = np.zeros(n)
    omega_e = np.zeros(n)
    for letter in "GJECI":
        m = system == ord(letter)
        mu[m] = _MU[letter]
        omega_e[m] = _OMEGA_E[letter]
    prn = r_code % 100
    geo = (system == ord("C")) & ((prn <= 5) | (prn >= 59))
    return np.ascontiguousarray(np.stack([*cols, mu, omega_e, geo.astype(float)], axis=1))


def broadcast_state(
    nav: NavData,
    sv: ArrayLike,
    t_gpst: ArrayLike,
    *,
    messages: Sequence[str] = DEFAULT_MESSAGES,
    use_unhealthy: bool = False,
    t_select_gpst: ArrayLike | None = None,
    rows: ArrayLike | None = None,
    match_rtklib: bool = True,
) -> BroadcastState:
    """Return broadcast positions (m, Earth-fixed), velocities (m/s) and clocks (s) of sv at GPS instants.

    ``sv`` (names such as 'G01') and ``t_gpst`` broadcast together. The record is chosen as
    :func:`select_ephemeris` does at ``t_select_gpst`` (default ``t_gpst``; RTKLIB selects at the
    receiver's epoch while evaluating at the transmission instant), or given by ``rows`` (rows of nav.eph,
    nav.glo for GLONASS, -1 for none; for instance the record of a given IODE), in which case the age limit
    is not applied. ``messages``, ``use_unhealthy`` and ``match_rtklib`` are those of
    :func:`select_ephemeris`. Positions are not corrected for Earth rotation during the signal's travel.
    """
    msgs = _check_messages(messages)
    code, t, shape = _inputs(sv, t_gpst)
    n = code.size
    q_sys = _systems(code)
    eph = getattr(nav, "eph", None)
    glo = getattr(nav, "glo", None)
    if rows is None:
        ts = t if t_select_gpst is None else np.broadcast_to(np.asarray(t_select_gpst, float), shape).ravel()
        sel, usable = _select(nav, code, ts, msgs, match_rtklib)
    else:
        sel = np.broadcast_to(np.asarray(rows, dtype=np.int64), shape).ravel().copy()
        sel[sel < 0] = -1
        usable = np.zeros(n, dtype=bool)
        kep = (sel >= 0) & np.isin(q_sys, ["G", "J", "E", "C", "I"])
        is_r = (sel >= 0) & (q_sys == "R")
        n_eph = 0 if eph is None else len(eph)
        n_glo = 0 if glo is None else len(glo)
        if np.any(kep & (sel >= n_eph)) or np.any(is_r & (sel >= n_glo)):
            raise InputError("rows: a row index is beyond the end of nav.eph or nav.glo")
        if np.any(kep):
            r_code = sv_codes(_column(eph, "sv", "eph"), "nav.eph sv")[sel[kep]]
            if np.any(r_code != code[kep]):
                raise InputError("rows: a row of nav.eph belongs to another satellite than the sv given")
            usable[kep] = _usable(eph, sel[kep], q_sys[kep])
        if np.any(is_r):
            health = np.asarray(_column(glo, "health", "glo"), dtype=float)[sel[is_r]]
            usable[is_r] = ~(np.where(np.isfinite(health), health, 0.0) != 0.0)
        sel[(sel >= 0) & ~(kep | is_r)] = -1

    pos = np.full((n, 3), np.nan)
    vel = np.full((n, 3), np.nan)
    clk = np.full(n, np.nan)
    drift = np.full(n, np.nan)
    tgd = np.full(n, np.nan)
    tgd2 = np.full(n, np.nan)
    acc = np.full(n, np.nan)

    kep = np.flatnonzero((sel >= 0) & (q_sys != "R"))
    if kep.size:
        r = sel[kep]
        tab = _kepler_table(eph, sv_codes(_column(eph, "sv", "eph"), "nav.eph sv"))
        pk, vk = np.empty((kep.size, 3)), np.empty((kep.size, 3))
        ck, dk = np.empty(kep.size), np.empty(kep.size)
        _kepler_kernel(tab, r.astype(np.int64), np.ascontiguousarray(t[kep]), pk, vk, ck, dk)
        pos[kep], vel[kep], clk[kep], drift[kep] = pk, vk, ck, dk
        tgd[kep] = np.asarray(_column(eph, "tgd_s", "eph"), dtype=float)[r]
        if "tgd2_s" in eph.columns:
            tgd2[kep] = np.asarray(eph["tgd2_s"], dtype=float)[r]
        acc[kep] = np.asarray(_column(eph, "accuracy_m", "eph"), dtype=float)[r]

    gl = np.flatnonzero((sel >= 0) & (q_sys == "R"))
    if gl.size:
        r = sel[gl]
        g = {c: np.asarray(_column(glo, c, "glo"), dtype=float)[r] for c in _GLO_COLUMNS}
        dt = t[gl] - g["toc_gpst"]
        state0 = np.stack([g[c] for c in ("x_m", "y_m", "z_m", "vx_m_s", "vy_m_s", "vz_m_s")], axis=-1)
        accel = np.stack([g["ax_m_s2"], g["ay_m_s2"], g["az_m_s2"]], axis=-1)
        state = glonass_propagate(state0, accel, dt)
        pos[gl], vel[gl] = state[:, :3], state[:, 3:]
        clk[gl] = g["clk_bias_s"] + g["gamma_n"] * dt
        drift[gl] = g["gamma_n"]

    found = sel >= 0
    valid = found & (usable | use_unhealthy) & np.all(np.isfinite(pos), axis=1) & np.isfinite(clk)
    return BroadcastState(
        pos_ecef_m=pos.reshape(*shape, 3),
        vel_ecef_m_s=vel.reshape(*shape, 3),
        clk_s=clk.reshape(shape),
        clk_drift_s_s=drift.reshape(shape),
        tgd_s=tgd.reshape(shape),
        tgd2_s=tgd2.reshape(shape),
        valid=valid.reshape(shape),
        eph_row=sel.reshape(shape),
        accuracy_m=acc.reshape(shape),
    )
