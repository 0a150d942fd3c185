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
On request (``SppOptions.smoothing_s``) the pseudoranges are first carrier-smoothed with a Hatch filter
(:mod:`kizuna.gnss.smoothing`), as SBAS receivers do; RTKLIB's single mode does not.

Positions are ECEF (the broadcast frames, WGS84/ITRF), metres; times are GPS seconds (``t_gpst``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from kizuna.core.constants import SPEED_OF_LIGHT_M_S
from kizuna.core.geodesy import ecef_to_geodetic, enu_matrix
from kizuna.errors import InputError
from kizuna.gnss.atmosphere import FREQ_L1_HZ
from kizuna.gnss.broadcast import broadcast_state
from kizuna.gnss.gtime import system_to_gpst
from kizuna.gnss.rinex_nav import NavData
from kizuna.gnss.rinex_obs import ObsData
from kizuna.gnss.smoothing import smooth_pseudoranges
from kizuna.gnss.spp_lsq import N_PARAMS, BatchProblem, dops, raim_epoch, solve_batch, validate

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
# Clock parameters: one receiver clock (column 3) common to all, and an offset for each other system.
# QZSS shares the GPS clock, since QZSST is steered to GPST.
_ISB_COLUMN = {"G": -1, "J": -1, "R": 4, "E": 5, "C": 6, "I": 7}
_URA_M = np.array([2.4, 3.4, 4.85, 6.85, 9.65, 13.65, 24.0, 48.0, 96.0, 192.0, 384.0, 768.0, 1536.0, 3072.0])


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
    # Carrier smoothing (Hatch filter, :mod:`kizuna.gnss.smoothing`) of each pseudorange with the phase of
    # its own signal, with this time constant in seconds (RTCA DO-229's SBAS receivers use 100 s); 0, the
    # default, positions with the raw codes as RTKLIB's single mode does. With one frequency the code and
    # the carrier see the ionosphere with opposite signs, so the smoothed code drifts from the true code by
    # about twice the ionospheric delay rate times the time constant (code-carrier divergence): a few
    # decimetres for 100 s under an active ionosphere, which is why windows beyond a few minutes are not
    # advised. Accepted: 0, or 1 to 3600 s.
    smoothing_s: float = 0.0

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
        if not (self.smoothing_s == 0.0 or 1.0 <= self.smoothing_s <= 3600.0):
            raise InputError(f"smoothing_s {self.smoothing_s} s: expected 0 (off) or 1 to 3600 s")


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
    # (S,) restarts of each satellite's carrier-smoothing filter (slips, gaps, new passes); None when off.
    smoothing_resets: NDArray[np.int64] | None = None

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
    sats, pr_raw, code = _pick_codes(obs, options.systems)
    if len(sats) == 0:
        raise InputError(f"{obs.path}: no observations of the systems {options.systems!r}")
    glo_f = _glonass_freq_hz(nav, sats)
    resets = None
    if options.smoothing_s > 0:
        pr_raw, resets = smooth_pseudoranges(obs, sats, pr_raw, code, options.smoothing_s, glo_f)
    system = np.array([s[0] for s in sats])
    time_sys = {"GPS": "G", "GAL": "E", "QZS": "J", "BDT": "C", "IRN": "I", "GLO": "R", "UTC": "R"}
    t_rx = system_to_gpst(obs.epochs, time_sys.get(str(obs.time_system).upper(), "G"))
    n_e, n_s = pr_raw.shape
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
    prob = BatchProblem(t_rx, pr, rs, dts, var_eph, isb_col, freq)
    x0 = np.zeros((n_e, N_PARAMS))
    apx = np.asarray(getattr(obs, "approx_pos_ecef_m", np.full(3, np.nan)), dtype=float)
    if np.all(np.isfinite(apx)) and np.linalg.norm(apx) > 6.0e6:
        x0[:, :3] = apx
    if progress:
        progress(0.3, "least squares")
    sol = solve_batch(prob, np.ones((n_e, n_s), dtype=bool), x0, options, coeffs)
    sol["isb_col"] = isb_col
    ok, reason = validate(sol, options)
    status = ok.astype(np.int8)
    excluded = np.full(n_e, "", dtype=object)
    if options.raim:
        cand = np.flatnonzero(~ok & (np.isfinite(pr).sum(1) >= 6))
        for k, e_i in enumerate(cand):
            if progress and k % 50 == 0:
                progress(0.6 + 0.35 * k / max(len(cand), 1), "excluding faulty satellites")
            fixed = raim_epoch(prob, e_i, sol["x"][e_i] if sol["done"][e_i] else x0[e_i], options, coeffs)
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
    g, p_, h_, v_ = dops(sol["el"], sol["az"], sol["used"], np.maximum(isb_col - 3, 0))
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
        smoothing_resets=resets,
    )


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
