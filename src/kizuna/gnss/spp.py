"""Single-point positioning from code pseudoranges and broadcast ephemerides: weighted least squares per
epoch over any mix of GPS, GLONASS, Galileo, BeiDou, QZSS and NavIC, with the broadcast ionosphere,
Saastamoinen troposphere, Earth rotation, an elevation mask, one receiver clock plus an inter-system offset
per constellation, a chi-square and GDOP check, and RAIM-style exclusion of one faulty satellite.

The models, weights and checks follow RTKLIB 2.4.3's ``pntpos`` (single-frequency, broadcast ionosphere and
Saastamoinen options) so that a run with the same options can be compared with ``rnx2rtkp`` epoch by epoch:
group delays from the ephemeris, satellite positions at the signal's transmission time (receive time minus
pseudorange over c minus satellite clock), the Sagnac term in the range, the error variance
``100^2 (0.003^2 + 0.003^2 / sin el) + URA^2 + 0.3^2 + (0.5 I)^2 + (0.3 / (sin el + 0.1))^2`` and the
chi-square test at 0.1 %. All epochs are solved at once: each Gauss-Newton step is one batched solve.

Positions are ECEF (the broadcast frames, WGS84/ITRF), metres; times are GPS seconds (``t_gpst``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.special import chdtri

from kizuna.core.constants import SPEED_OF_LIGHT_M_S
from kizuna.core.geodesy import ecef_to_geodetic, enu_matrix
from kizuna.errors import InputError
from kizuna.gnss.atmosphere import FREQ_L1_HZ, klobuchar_delay_m, ntcmg_delay_m, saastamoinen_delay_m
from kizuna.gnss.broadcast import broadcast_state
from kizuna.gnss.gtime import leap_seconds, system_to_gpst
from kizuna.gnss.rinex_nav import NavData
from kizuna.gnss.rinex_obs import ObsData

__all__ = [
    "SYSTEMS",
    "CODE_PRIORITY",
    "SppOptions",
    "SppResult",
    "pseudoranges",
    "solve_spp",
    "solution_table",
    "accuracy",
]

SYSTEMS = "GREJCI"
# Code priority on the single frequency each system is positioned with (L1/E1/B1I/G1, NavIC L5), first
# present wins per epoch and satellite, as RTKLIB's default priorities.
CODE_PRIORITY: dict[str, tuple[str, ...]] = {
    "G": ("C1C", "C1P", "C1Y", "C1W", "C1M", "C1N", "C1S", "C1L", "C1X"),
    "R": ("C1C", "C1P"),
    "E": ("C1C", "C1A", "C1B", "C1X", "C1Z"),
    "J": ("C1C", "C1S", "C1L", "C1X", "C1Z"),
    "C": ("C2I", "C2Q", "C2X", "C1I", "C1Q"),
    "I": ("C5A", "C5B", "C5C", "C5X"),
}
_FREQ_HZ = {"G": FREQ_L1_HZ, "J": FREQ_L1_HZ, "E": FREQ_L1_HZ, "C": 1_561.098e6, "I": 1_176.45e6}
_OMEGA_E_RAD_S = 7.2921151467e-5  # WGS84 Earth rotation rate (IS-GPS-200)
# Clock parameters: one receiver clock (column 3) common to all, and an offset for each other system.
# QZSS shares the GPS clock, since QZSST is steered to GPST.
_ISB_COLUMN = {"G": -1, "J": -1, "R": 4, "E": 5, "C": 6, "I": 7}
_NX = 8
_URA_M = np.array([2.4, 3.4, 4.85, 6.85, 9.65, 13.65, 24.0, 48.0, 96.0, 192.0, 384.0, 768.0, 1536.0, 3072.0])
_MIN_EL_RAD = np.radians(5.0)


@dataclass(frozen=True)
class SppOptions:
    """Options of single-point positioning (the defaults are rnx2rtkp's single mode with broadcast iono)."""

    systems: str = SYSTEMS
    elev_mask_deg: float = 10.0
    iono: str = "auto"  # auto | gps | qzss | navic | bds | ntcmg | off
    tropo: str = "saastamoinen"  # saastamoinen | off
    raim: bool = True
    max_gdop: float = 30.0
    chi2_probability: float = 0.999
    galileo_nav: str = "INAV"  # INAV | FNAV: whose clock and group delay are used
    use_unhealthy: bool = False
    max_iterations: int = 10
    # Reproduce RTKLIB 2.4.3 b34 where it departs from the ICDs, for side-by-side comparisons: it takes each
    # satellite's group delay from the satellite's earliest-transmitted record in the file rather than from
    # the record it positions with (for Galileo an F/NAV record, whose E5b/E1 delay is often blank, may
    # come first, so that no delay is applied), and re-quantises Galileo SISA above 2 m to whole metres.
    rtklib_compatible: bool = False

    def __post_init__(self) -> None:
        """Check every option and name the one that is wrong."""
        bad = sorted(set(self.systems) - set(SYSTEMS))
        if not self.systems or bad:
            raise InputError(f"systems {self.systems!r}: expected letters from {SYSTEMS} (G R E J C I)")
        if not 0.0 <= self.elev_mask_deg < 90.0:
            raise InputError(f"elevation mask {self.elev_mask_deg} deg: expected 0 <= mask < 90")
        if self.iono not in ("auto", "gps", "qzss", "navic", "bds", "ntcmg", "off"):
            raise InputError(f"iono {self.iono!r}: expected auto, gps, qzss, navic, bds, ntcmg or off")
        if self.tropo not in ("saastamoinen", "off"):
            raise InputError(f"tropo {self.tropo!r}: expected saastamoinen or off")
        if self.galileo_nav not in ("INAV", "FNAV"):
            raise InputError(f"galileo_nav {self.galileo_nav!r}: expected INAV or FNAV")


@dataclass(frozen=True)
class SppResult:
    """Per-epoch solutions: ECEF positions (m), clocks (m), DOPs and per-satellite residuals."""

    t_gpst: NDArray[np.float64]  # (E,) receive time tags, GPS seconds
    pos_ecef_m: NDArray[np.float64]  # (E, 3), NaN where unsolved
    clock_m: NDArray[np.float64]  # (E,) receiver clock (GPS time), metres
    isb_m: NDArray[np.float64]  # (E, 4) offsets of GLONASS, Galileo, BeiDou, NavIC from it, metres
    status: NDArray[np.int8]  # (E,) 0 none, 1 solved, 2 solved after excluding one satellite
    n_sats: NDArray[np.int64]  # (E,) satellites used
    gdop: NDArray[np.float64]
    pdop: NDArray[np.float64]
    hdop: NDArray[np.float64]
    vdop: NDArray[np.float64]
    sats: NDArray[np.str_]  # (S,)
    residual_m: NDArray[np.float64]  # (E, S) post-fit pseudorange residuals of used satellites
    used: NDArray[np.bool_]  # (E, S)
    az_rad: NDArray[np.float64]  # (E, S) NaN where no ephemeris or no pseudorange
    el_rad: NDArray[np.float64]
    excluded: NDArray[np.object_]  # (E,) satellite excluded by RAIM, or ""
    reason: NDArray[np.object_]  # (E,) why an epoch has no solution, or ""
    options: SppOptions = field(default_factory=SppOptions)
    iono_model: str = ""

    @property
    def solved(self) -> NDArray[np.bool_]:
        """Return the mask of epochs with a solution."""
        return self.status > 0


def _pick_codes(
    obs: ObsData, systems: str
) -> tuple[NDArray[np.str_], NDArray[np.float64], NDArray[np.object_]]:
    """Return the satellites of the wanted systems, their pseudoranges (E, S) in m and the code used."""
    sig_index = {s: i for i, s in enumerate(obs.signals)}
    keep = np.array([s[0] in systems for s in obs.sats], dtype=bool)
    sats = np.asarray(obs.sats)[keep]
    vals = obs.values[:, keep, :]
    pr = np.full(vals.shape[:2], np.nan)
    code = np.full(vals.shape[:2], "", dtype=object)
    for j, sv in enumerate(sats):
        for c in CODE_PRIORITY[sv[0]]:
            k = sig_index.get(c)
            if k is None:
                continue
            take = np.isnan(pr[:, j]) & np.isfinite(vals[:, j, k]) & (vals[:, j, k] > 1e6)
            pr[take, j] = vals[take, j, k]
            code[take, j] = c
    return sats, pr, code


def pseudoranges(obs: ObsData, systems: str = SYSTEMS) -> tuple[NDArray[np.str_], NDArray[np.float64]]:
    """Return the satellites and the single-frequency pseudoranges (E, S) in metres used for positioning."""
    sats, pr, _ = _pick_codes(obs, systems)
    return sats, pr


def _glonass_freq_hz(nav: NavData, sats: NDArray[np.str_]) -> dict[str, float]:
    """Return the G1 carrier frequency of each GLONASS satellite from its broadcast frequency number."""
    out: dict[str, float] = {}
    glo = getattr(nav, "glo", None)
    if glo is None or len(glo) == 0:
        return out
    k = glo.groupby("sv")["freq_num"].first()
    for sv in sats:
        if sv[0] == "R" and sv in k.index and np.isfinite(k[sv]):
            out[sv] = 1_602.0e6 + float(k[sv]) * 0.5625e6
    return out


def _ura_variance(
    system: NDArray[np.str_], accuracy_m: NDArray[np.float64], rtklib: bool = False
) -> NDArray[np.float64]:
    """Return the ephemeris error variance (m^2) from the broadcast URA (GPS-style) or SISA (Galileo).

    GPS, QZSS, BeiDou and NavIC: the upper bound of the URA interval holding the broadcast value (IS-GPS-200
    20.3.3.3.1.1), as RTKLIB takes it. Galileo: the broadcast SISA squared; with ``rtklib`` the SISA as
    RTKLIB 2.4.3 b34 re-quantises it (above 2 m it truncates to whole metres before the 0.16 m steps).
    """
    acc = np.asarray(accuracy_m, dtype=float)
    ok = np.isfinite(acc) & (acc >= 0)
    a = np.where(ok, acc, 0.0)
    idx = np.searchsorted(_URA_M, a, side="left")
    gps_var = np.where(ok & (idx < len(_URA_M)), _URA_M[np.minimum(idx, len(_URA_M) - 1)] ** 2, 6144.0**2)
    sisa = a
    if rtklib:
        sisa = np.where(
            a <= 0.5,
            np.floor(a / 0.01) * 0.01,
            np.where(
                a <= 1.0,
                0.5 + np.floor((a - 0.5) / 0.02) * 0.02,
                np.where(
                    a <= 2.0,
                    1.0 + np.floor((a - 1.0) / 0.04) * 0.04,
                    2.0 + np.floor(np.floor(a - 2.0) / 0.16) * 0.16,
                ),
            ),
        )
    gal_var = np.where(ok & (a <= 6.0), sisa**2, 500.0**2)
    var = np.where(system == "E", gal_var, gps_var)
    return np.where(system == "R", 5.0**2, var)


def _iono_coefficients(
    nav: NavData, options: SppOptions, systems_present: str
) -> tuple[NDArray[np.float64], str]:
    """Return the broadcast ionosphere coefficients to use (8 Klobuchar or 3 NTCM-G) and their source."""
    iono = getattr(nav, "iono", {}) or {}
    choice = options.iono
    if choice == "off":
        return np.zeros(8), "off"
    if choice == "ntcmg":
        if "GAL" not in iono:
            raise InputError(
                "iono ntcmg: the navigation file carries no Galileo (GAL) ionosphere coefficients"
            )
        return np.asarray(iono["GAL"], dtype=float)[:3], "NTCM-G (Galileo ai0-ai2 coefficients)"
    if choice == "auto":
        if set(systems_present) == {"I"} and "IRN" in iono:
            choice = "navic"
        elif "GPS" in iono:
            choice = "gps"
        elif "QZS" in iono:
            choice = "qzss"
        elif "IRN" in iono:
            choice = "navic"
        else:
            return np.zeros(8), "klobuchar (RTKLIB default coefficients: none in the navigation file)"
    key = {"gps": "GPS", "qzss": "QZS", "navic": "IRN", "bds": "BDS"}[choice]
    if key not in iono:
        raise InputError(f"iono {choice}: the navigation file carries no {key} Klobuchar coefficients")
    return np.asarray(iono[key], dtype=float), f"klobuchar ({key} coefficients)"


def _first_record_delays(nav: NavData, sats: NDArray[np.str_]) -> tuple[NDArray, NDArray]:
    """Return (tgd, tgd2) in s of each satellite's earliest-transmitted record (RTKLIB's ``gettgd``)."""
    eph = nav.eph
    toc = eph["toc_gpst"].to_numpy(float)
    ttm = eph["ttm_s"].to_numpy(float) if "ttm_s" in eph.columns else np.full(len(eph), np.nan)
    ttm = ttm + np.where(eph["system"].to_numpy() == "C", 14.0, 0.0)
    d = ttm - np.mod(toc, 604_800.0)
    ttr = np.where(np.isfinite(d), toc + d - 604_800.0 * np.round(d / 604_800.0), toc)
    order = np.lexsort((eph["toe_gpst"].to_numpy(float), ttr))
    first = eph.iloc[order].drop_duplicates("sv").set_index("sv")
    tgd = np.array([float(first["tgd_s"].get(s, 0.0)) for s in sats])
    tgd2 = np.array([float(first["tgd2_s"].get(s, 0.0)) for s in sats])
    return np.nan_to_num(tgd), np.nan_to_num(tgd2)


@dataclass
class _Problem:
    """The fixed inputs of a batch of epochs: corrected pseudoranges, satellite states and weights."""

    t_rx: NDArray[np.float64]  # (B,)
    pr: NDArray[np.float64]  # (B, S) group-delay-corrected pseudoranges, NaN = unusable
    rs: NDArray[np.float64]  # (B, S, 3) satellite positions at transmission
    dts_m: NDArray[np.float64]  # (B, S) satellite clock times c
    var_eph: NDArray[np.float64]  # (B, S)
    isb_col: NDArray[np.int64]  # (S,) offset column or -1
    freq_hz: NDArray[np.float64]  # (S,)
    present_cols: tuple[int, ...] = ()


def _geometry(
    x: NDArray[np.float64], p: _Problem
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], tuple]:
    """Return ranges with the Sagnac term, unit vectors, azimuth and elevation at the receiver positions."""
    rr = x[:, None, :3]
    d = p.rs - rr
    r = np.linalg.norm(d, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        e = d / r[..., None]
    r = r + _OMEGA_E_RAD_S * (p.rs[..., 0] * rr[..., 1] - p.rs[..., 1] * rr[..., 0]) / SPEED_OF_LIGHT_M_S
    lat, lon, h = ecef_to_geodetic(x[:, :3])
    enu = np.einsum("bij,bsj->bsi", enu_matrix(lat, lon), e)
    az = np.mod(np.arctan2(enu[..., 0], enu[..., 1]), 2 * np.pi)
    el = np.arcsin(np.clip(enu[..., 2], -1.0, 1.0))
    return r, e, az, el, (lat, lon, h)


def _solve_batch(
    p: _Problem, allowed: NDArray[np.bool_], x0: NDArray[np.float64], options: SppOptions, coeffs: NDArray
) -> dict[str, NDArray]:
    """Iterate weighted least squares for every epoch of a batch; return states, residuals and flags."""
    b, s = p.pr.shape
    x = x0.copy()
    mask_rad = np.radians(options.elev_mask_deg)
    done = np.zeros(b, dtype=bool)
    failed = np.zeros(b, dtype=bool)
    out = {
        "v": np.full((b, s), np.nan),
        "var": np.full((b, s), np.nan),
        "used": np.zeros((b, s), dtype=bool),
        "az": np.full((b, s), np.nan),
        "el": np.full((b, s), np.nan),
    }
    reason = np.full(b, "", dtype=object)
    have = np.isfinite(p.pr) & allowed
    col_onehot = np.zeros((s, _NX))
    col_onehot[:, 3] = 1.0
    for j, c in enumerate(p.isb_col):
        if c >= 0:
            col_onehot[j, c] = 1.0
    # The clock parameter a satellite makes estimable: the common clock for GPS/QZSS, else its offset.
    group_onehot = np.zeros((s, _NX - 3))
    group_onehot[np.arange(s), np.maximum(p.isb_col - 3, 0)] = 1.0
    for it in range(options.max_iterations):
        act = ~done & ~failed
        if not act.any():
            break
        xa = x[act]
        pa = _Problem(p.t_rx[act], p.pr[act], p.rs[act], p.dts_m[act], p.var_eph[act], p.isb_col, p.freq_hz)
        r, e, az, el, (lat, lon, h) = _geometry(xa, pa)
        use = have[act] & (r > 0)
        if it > 0:
            use &= el >= mask_rad
            if options.iono != "off" and len(coeffs) == 3:
                utc_s = pa.t_rx - leap_seconds(pa.t_rx)
                day = np.floor(utc_s / 86_400.0)
                hour = (utc_s - day * 86_400.0) / 3600.0
                # Day of year of the UTC date (the GPS epoch 1980-01-06 is day 6 of 1980).
                dates = (np.datetime64("1980-01-06") + day.astype("timedelta64[D]")).astype("datetime64[D]")
                doy = (dates - dates.astype("datetime64[Y]")).astype(float) + 1.0
                dion = ntcmg_delay_m(
                    coeffs,
                    lat[:, None],
                    lon[:, None],
                    az,
                    el,
                    hour[:, None],
                    doy[:, None],
                    pa.freq_hz[None, :],
                )
            elif options.iono != "off":
                dion = klobuchar_delay_m(
                    coeffs, lat[:, None], lon[:, None], az, el, pa.t_rx[:, None], pa.freq_hz[None, :]
                )
            else:
                dion = np.zeros_like(r)
            dtrp = (
                saastamoinen_delay_m(lat[:, None], h[:, None], el)
                if options.tropo == "saastamoinen"
                else np.zeros_like(r)
            )
            if options.iono != "off":
                vion = (0.5 * dion) ** 2
            else:  # no model: the whole delay is error, 5 m at L1 (RTKLIB's ERR_ION), scaled to the signal
                vion = (5.0 * FREQ_L1_HZ / pa.freq_hz[None, :]) ** 2 * np.ones_like(r)
            vtrp = (
                (0.3 / (np.sin(el) + 0.1)) ** 2 if options.tropo == "saastamoinen" else np.full_like(r, 9.0)
            )
            el_w = np.maximum(el, _MIN_EL_RAD)
        else:
            dion = dtrp = vion = vtrp = np.zeros_like(r)
            el_w = np.full_like(r, _MIN_EL_RAD)
        clk = xa[:, 3:4] + np.where(pa.isb_col[None, :] >= 0, xa[:, np.maximum(pa.isb_col, 0)], 0.0)
        v = pa.pr - (r + clk - pa.dts_m + dion + dtrp)
        var = 100.0**2 * (0.003**2 + 0.003**2 / np.sin(el_w)) + pa.var_eph + 0.3**2 + vion + vtrp
        w = np.where(use, 1.0 / var, 0.0)
        v0 = np.where(use, v, 0.0)
        hmat = np.concatenate(
            [-np.nan_to_num(e), np.broadcast_to(col_onehot[None, :, 3:], (len(xa), s, _NX - 3))], -1
        )
        n_mat = np.einsum("bs,bsi,bsj->bij", w, hmat, hmat)
        rhs = np.einsum("bs,bsi,bs->bi", w, hmat, v0)
        # Columns of systems without a used satellite are held fixed (RTKLIB's 0.01 m^2 constraint).
        present = np.ones((len(xa), _NX), dtype=bool)
        present[:, 3:] = np.einsum("bs,sg->bg", use.astype(float), group_onehot) > 0
        absent_w = np.where(present, 0.0, 100.0)
        n_mat = n_mat + absent_w[:, :, None] * np.eye(_NX)[None]
        n_used = use.sum(1)
        enough = n_used + (~present[:, 3:]).sum(1) >= _NX
        idx = np.flatnonzero(act)
        bad = idx[~enough]
        failed[bad] = True
        reason[bad] = "fewer satellites than unknowns"
        ok = enough
        dx = np.zeros_like(xa)
        if ok.any():
            try:
                dx[ok] = np.linalg.solve(n_mat[ok], rhs[ok][..., None])[..., 0]
            except np.linalg.LinAlgError:
                dx[ok] = np.einsum("bij,bj->bi", np.linalg.pinv(n_mat[ok]), rhs[ok])
        x[idx[ok]] += dx[ok]
        conv = ok & (np.linalg.norm(dx, axis=1) < 1e-4)
        ci = idx[conv]
        done[ci] = True
        out["v"][ci] = np.where(use[conv], v[conv], np.nan)
        out["var"][ci] = np.where(use[conv], var[conv], np.nan)
        out["used"][ci] = use[conv]
        out["az"][ci] = np.where(have[act][conv], az[conv], np.nan)
        out["el"][ci] = np.where(have[act][conv], el[conv], np.nan)
    not_conv = ~done & ~failed
    reason[not_conv] = "iteration did not converge"
    out.update(x=x, done=done, reason=reason)
    return out


def _dops(el: NDArray, az: NDArray, used: NDArray, group: NDArray) -> tuple[NDArray, ...]:
    """Return GDOP, PDOP, HDOP and VDOP (E,) of the used satellites with one clock per group of ``group``."""
    ce = np.cos(el)
    los = np.stack([ce * np.sin(az), ce * np.cos(az), np.sin(el)], axis=-1)  # ENU unit vectors
    n_g = int(group.max()) + 1 if len(group) else 1
    onehot = np.zeros((len(group), n_g))
    onehot[np.arange(len(group)), group] = 1.0
    h = np.concatenate([-np.nan_to_num(los), np.broadcast_to(onehot[None], los.shape[:2] + (n_g,))], -1)
    w = used.astype(float)
    n_mat = np.einsum("bs,bsi,bsj->bij", w, h, h)
    present = np.concatenate(
        [np.ones((len(w), 3), dtype=bool), np.einsum("bs,sj->bj", w, onehot) > 0], axis=1
    )
    n_mat = n_mat + np.where(present, 0.0, 1.0)[:, :, None] * np.eye(3 + n_g)[None]
    q = np.full_like(n_mat, np.nan)
    ok = used.sum(1) >= present.sum(1)
    if ok.any():
        q[ok] = np.linalg.pinv(n_mat[ok])
    qd = np.diagonal(q, axis1=1, axis2=2)
    clk = np.where(present[:, 3:], qd[:, 3:], 0.0).sum(1)
    gdop = np.sqrt(qd[:, :3].sum(1) + clk)
    return gdop, np.sqrt(qd[:, :3].sum(1)), np.sqrt(qd[:, 0] + qd[:, 1]), np.sqrt(qd[:, 2])


def _validate(sol: dict, options: SppOptions) -> tuple[NDArray[np.bool_], NDArray[np.object_]]:
    """Return which converged epochs pass the chi-square and GDOP checks, and why the others fail."""
    used = sol["used"]
    n_used = used.sum(1)
    vv = np.nansum(np.where(used, sol["v"] ** 2 / sol["var"], 0.0), axis=1)
    reason = sol["reason"].copy()
    ok = sol["done"].copy()
    group = np.maximum(sol["isb_col"] - 3, 0)
    present = np.zeros(len(used), dtype=int)
    for g in range(_NX - 3):
        present += (used & (group[None, :] == g)).any(1)
    dof = n_used - present - 3
    lim = np.where(dof > 0, chdtri(np.maximum(dof, 1), 1.0 - options.chi2_probability), np.inf)
    chi_bad = ok & (vv > lim)
    reason[chi_bad] = [
        f"chi-square test failed (vv={a:.1f} > {b:.1f})"
        for a, b in zip(vv[chi_bad], lim[chi_bad], strict=True)
    ]
    ok &= ~chi_bad
    # GDOP as RTKLIB's check computes it: position and a single clock, satellites above the mask.
    el, az = sol["el"], sol["az"]
    g1, *_ = _dops(el, az, used, np.zeros(used.shape[1], dtype=int))
    gdop_bad = ok & ~(g1 <= options.max_gdop)
    reason[gdop_bad] = [f"GDOP {g:.1f} above {options.max_gdop:g}" for g in g1[gdop_bad]]
    ok &= ~gdop_bad
    return ok, reason


def solve_spp(
    obs: ObsData,
    nav: NavData,
    options: SppOptions | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> SppResult:
    """Return single-point positions (ECEF, m) of every epoch of an observation file from broadcast orbits.

    Epochs without a solution are kept with status 0 and the reason; InputError only when the files share
    no satellite or no epoch can be solved at all.
    """
    options = options or SppOptions()
    sats, pr_raw, _code = _pick_codes(obs, options.systems)
    if len(sats) == 0:
        raise InputError(f"{obs.path}: no observations of the systems {options.systems!r}")
    system = np.array([s[0] for s in sats])
    time_sys = {"GPS": "G", "GAL": "E", "QZS": "J", "BDT": "C", "IRN": "I", "GLO": "R", "UTC": "R"}
    t_rx = system_to_gpst(obs.epochs, time_sys.get(str(obs.time_system).upper(), "G"))
    n_e, n_s = pr_raw.shape
    glo_f = _glonass_freq_hz(nav, sats)
    freq = np.array([glo_f.get(s, np.nan) if s[0] == "R" else _FREQ_HZ[s[0]] for s in sats])
    have = np.isfinite(pr_raw) & np.isfinite(freq)[None, :]
    ei, si = np.nonzero(have)
    sv_flat = sats[si]
    messages = ("LNAV", options.galileo_nav, "D1", "D2")
    if progress:
        progress(0.05, "satellite orbits")
    t_tx = t_rx[ei] - pr_raw[ei, si] / SPEED_OF_LIGHT_M_S
    st = broadcast_state(
        nav, sv_flat, t_tx, messages=messages, use_unhealthy=options.use_unhealthy, t_select_gpst=t_rx[ei]
    )
    t_tx = t_tx - np.where(np.isfinite(st.clk_s), st.clk_s, 0.0)
    st = broadcast_state(
        nav, sv_flat, t_tx, messages=messages, use_unhealthy=options.use_unhealthy, t_select_gpst=t_rx[ei]
    )
    valid = np.asarray(st.valid, dtype=bool) & np.all(np.isfinite(st.pos_ecef_m), axis=1)
    if not valid.any():
        raise InputError(
            f"{obs.path}: the navigation data ({', '.join(getattr(nav, 'paths', ()) or ['?'])}) have no "
            f"valid ephemeris for any observed satellite at the observation times"
        )
    sysf = system[si]
    c = SPEED_OF_LIGHT_M_S
    tgd = np.nan_to_num(np.asarray(st.tgd_s, dtype=float))
    tgd2 = np.nan_to_num(np.asarray(st.tgd2_s, dtype=float))
    gd = np.zeros(len(si))
    # TGD as each ICD defines it for the signal used: GPS/QZSS L1 C/A, BeiDou B1I (TGD1), NavIC L5 (the
    # IRNSS SPS ICD's single-frequency L5 correction), Galileo E1 with the I/NAV (E1,E5b) or F/NAV (E1,E5a)
    # clock.
    gd = np.where(np.isin(sysf, ["G", "J", "C", "I"]), c * tgd, gd)
    gd = np.where(sysf == "E", c * (tgd2 if options.galileo_nav == "INAV" else tgd), gd)
    if options.rtklib_compatible:
        first = _first_record_delays(nav, sats)
        d1, d2 = first[0][si], first[1][si]
        gd = np.where(np.isin(sysf, ["G", "J", "C"]), c * d1, gd)
        gd = np.where(sysf == "I", c * (2_492.028e6 / 1_176.45e6) ** 2 * d1, gd)  # RTKLIB scales NavIC's
        gd = np.where(sysf == "E", c * (d2 if options.galileo_nav == "INAV" else d1), gd)
    pr = np.full((n_e, n_s), np.nan)
    pr[ei[valid], si[valid]] = pr_raw[ei[valid], si[valid]] - gd[valid]
    rs = np.zeros((n_e, n_s, 3))
    rs[ei, si] = np.where(valid[:, None], st.pos_ecef_m, 0.0)
    dts = np.zeros((n_e, n_s))
    dts[ei, si] = np.where(valid, c * st.clk_s, 0.0)
    var_eph = np.full((n_e, n_s), 6144.0**2)
    var_eph[ei, si] = _ura_variance(sysf, np.asarray(st.accuracy_m, dtype=float), options.rtklib_compatible)
    isb_col = np.array([_ISB_COLUMN[s] for s in system])
    present_sys = "".join(sorted(set(sysf[valid])))
    coeffs, iono_name = _iono_coefficients(nav, options, present_sys)
    prob = _Problem(t_rx, pr, rs, dts, var_eph, isb_col, freq)
    x0 = np.zeros((n_e, _NX))
    apx = np.asarray(getattr(obs, "approx_pos_ecef_m", np.full(3, np.nan)), dtype=float)
    if np.all(np.isfinite(apx)) and np.linalg.norm(apx) > 6.0e6:
        x0[:, :3] = apx
    if progress:
        progress(0.3, "least squares")
    sol = _solve_batch(prob, np.ones((n_e, n_s), dtype=bool), x0, options, coeffs)
    sol["isb_col"] = isb_col
    ok, reason = _validate(sol, options)
    status = ok.astype(np.int8)
    excluded = np.full(n_e, "", dtype=object)
    if options.raim:
        cand = np.flatnonzero(~ok & (np.isfinite(pr).sum(1) >= 6))
        for k, e_i in enumerate(cand):
            if progress and k % 50 == 0:
                progress(0.6 + 0.35 * k / max(len(cand), 1), "excluding faulty satellites")
            fixed = _raim_epoch(prob, e_i, sol["x"][e_i] if sol["done"][e_i] else x0[e_i], options, coeffs)
            if fixed is None:
                continue
            j, one = fixed
            for key in ("v", "var", "used", "az", "el", "x"):
                sol[key][e_i] = one[key][0]
            sol["done"][e_i] = True
            status[e_i] = 2
            excluded[e_i] = sats[j]
            reason[e_i] = ""
    solved = status > 0
    x = sol["x"]
    pos = np.where(solved[:, None], x[:, :3], np.nan)
    g, p_, h_, v_ = _dops(sol["el"], sol["az"], sol["used"], np.maximum(isb_col - 3, 0))
    nan_unsolved = lambda a: np.where(solved, a, np.nan)  # noqa: E731
    reason = np.where(solved, "", reason)
    if not solved.any():
        first = next((r for r in reason if r), "no solution")
        raise InputError(f"{obs.path}: no epoch could be solved ({first})")
    if progress:
        progress(1.0, "done")
    return SppResult(
        t_gpst=t_rx,
        pos_ecef_m=pos,
        clock_m=nan_unsolved(x[:, 3]),
        isb_m=np.where(solved[:, None], x[:, 4:], np.nan),
        status=status,
        n_sats=np.where(solved, sol["used"].sum(1), 0),
        gdop=nan_unsolved(g),
        pdop=nan_unsolved(p_),
        hdop=nan_unsolved(h_),
        vdop=nan_unsolved(v_),
        sats=sats,
        residual_m=np.where(solved[:, None] & sol["used"], sol["v"], np.nan),
        used=sol["used"] & solved[:, None],
        az_rad=sol["az"],
        el_rad=sol["el"],
        excluded=excluded,
        reason=reason,
        options=options,
        iono_model=iono_name,
    )


def _raim_epoch(
    p: _Problem, e_i: int, x_start: NDArray, options: SppOptions, coeffs: NDArray
) -> tuple[int, dict] | None:
    """Solve one epoch once without each satellite; return the best valid solution (lowest residual RMS)."""
    cand = np.flatnonzero(np.isfinite(p.pr[e_i]))
    n = len(cand)
    sub = _Problem(
        np.repeat(p.t_rx[e_i : e_i + 1], n),
        np.repeat(p.pr[e_i : e_i + 1], n, axis=0),
        np.repeat(p.rs[e_i : e_i + 1], n, axis=0),
        np.repeat(p.dts_m[e_i : e_i + 1], n, axis=0),
        np.repeat(p.var_eph[e_i : e_i + 1], n, axis=0),
        p.isb_col,
        p.freq_hz,
    )
    allowed = np.ones((n, p.pr.shape[1]), dtype=bool)
    allowed[np.arange(n), cand] = False
    x0 = np.repeat(np.asarray(x_start, dtype=float)[None], n, axis=0)
    sol = _solve_batch(sub, allowed, x0, options, coeffs)
    sol["isb_col"] = p.isb_col
    ok, _ = _validate(sol, options)
    nv = sol["used"].sum(1)
    rms = np.sqrt(np.nansum(np.where(sol["used"], sol["v"] ** 2, 0.0), axis=1) / np.maximum(nv, 1))
    ok &= nv >= 5
    if not ok.any():
        return None
    best = int(np.flatnonzero(ok)[np.argmin(rms[ok])])
    one = {k: sol[k][best : best + 1] for k in ("v", "var", "used", "az", "el", "x")}
    return int(cand[best]), one


def solution_table(result: SppResult) -> pd.DataFrame:
    """Return one row per epoch: GPS time, ECEF (m), geodetic lat/lon (deg), height (m), clocks and DOPs."""
    from kizuna.gnss.gtime import gpst_to_datetime64

    lat, lon, h = ecef_to_geodetic(result.pos_ecef_m)
    df = pd.DataFrame(
        {
            "time_gpst": gpst_to_datetime64(result.t_gpst),
            "t_gpst_s": result.t_gpst,
            "x_m": result.pos_ecef_m[:, 0],
            "y_m": result.pos_ecef_m[:, 1],
            "z_m": result.pos_ecef_m[:, 2],
            "lat_deg": np.degrees(lat),
            "lon_deg": np.degrees(lon),
            "height_m": h,
            "status": result.status,
            "n_sats": result.n_sats,
            "clock_m": result.clock_m,
        }
    )
    for k, s in enumerate("RECI"):
        if np.isfinite(result.isb_m[:, k]).any() and any(
            sv[0] == s for sv in result.sats[result.used.any(0)]
        ):
            df[f"isb_{s}_m"] = result.isb_m[:, k]
    for name in ("gdop", "pdop", "hdop", "vdop"):
        df[name] = getattr(result, name)
    df["excluded"] = result.excluded.astype(str)
    df["reason"] = result.reason.astype(str)
    return df


def accuracy(result: SppResult, truth_ecef_m: NDArray[np.float64]) -> dict[str, float]:
    """Return errors against a known position: 95th percentiles of horizontal and vertical error (m),
    3-D RMS (m), and the mean east/north/up error (m), over solved epochs."""
    truth = np.asarray(truth_ecef_m, dtype=float).reshape(3)
    lat, lon, _ = ecef_to_geodetic(truth)
    ok = result.solved
    d = result.pos_ecef_m[ok] - truth
    enu = d @ enu_matrix(lat, lon).T
    hor = np.hypot(enu[:, 0], enu[:, 1])
    return {
        "h95_m": float(np.percentile(hor, 95)),
        "v95_m": float(np.percentile(np.abs(enu[:, 2]), 95)),
        "rms3d_m": float(np.sqrt(np.mean(np.sum(d * d, axis=1)))),
        "mean_east_m": float(enu[:, 0].mean()),
        "mean_north_m": float(enu[:, 1].mean()),
        "mean_up_m": float(enu[:, 2].mean()),
        "h50_m": float(np.percentile(hor, 50)),
    }
