"""The batched weighted least squares of single-point positioning (:mod:`kizuna.gnss.spp`): every epoch
of a file iterated at once (Gauss-Newton with one batched solve per step), the chi-square and GDOP checks,
DOPs of the satellites used, and the leave-one-out search of RAIM.

The state is ECEF position (m), a receiver clock (m) common to all systems and an offset (m) for GLONASS,
Galileo, BeiDou and NavIC; a system without a used satellite keeps its offset fixed, as RTKLIB's 0.01 m^2
pseudo-observation does. Models and weights are RTKLIB 2.4.3's ``rescode``/``varerr``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from scipy.special import chdtri

from kizuna.core.constants import SPEED_OF_LIGHT_M_S
from kizuna.core.geodesy import ecef_to_geodetic, enu_matrix
from kizuna.gnss.atmosphere import FREQ_L1_HZ, klobuchar_delay_m, ntcmg_delay_m, saastamoinen_delay_m
from kizuna.gnss.gtime import leap_seconds

if TYPE_CHECKING:
    from kizuna.gnss.spp import SppOptions

__all__ = ["N_PARAMS", "BatchProblem", "geometry", "solve_batch", "dops", "validate", "raim_epoch"]

N_PARAMS = 8  # x, y, z, clock, and the GLONASS, Galileo, BeiDou and NavIC offsets
OMEGA_E_RAD_S = 7.2921151467e-5  # WGS84 Earth rotation rate (IS-GPS-200)
MIN_EL_RAD = np.radians(5.0)  # elevations below this are weighted as at 5 deg (RTKLIB's MIN_EL)


@dataclass
class BatchProblem:
    """The fixed inputs of a batch of epochs: corrected pseudoranges, satellite states and weights."""

    t_rx: NDArray[np.float64]  # (B,)
    pr: NDArray[np.float64]  # (B, S) group-delay-corrected pseudoranges, NaN = unusable
    rs: NDArray[np.float64]  # (B, S, 3) satellite positions at transmission
    dts_m: NDArray[np.float64]  # (B, S) satellite clock times c
    var_eph: NDArray[np.float64]  # (B, S)
    isb_col: NDArray[np.int64]  # (S,) offset column or -1
    freq_hz: NDArray[np.float64]  # (S,)
    present_cols: tuple[int, ...] = ()


def geometry(
    x: NDArray[np.float64], p: BatchProblem
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], tuple]:
    """Return ranges (m, with Sagnac term), ECEF unit vectors, azimuth/elevation (rad), receiver lat/lon/h."""
    rr = x[:, None, :3]
    d = p.rs - rr
    r = np.linalg.norm(d, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        e = d / r[..., None]
    r = r + OMEGA_E_RAD_S * (p.rs[..., 0] * rr[..., 1] - p.rs[..., 1] * rr[..., 0]) / SPEED_OF_LIGHT_M_S
    lat, lon, h = ecef_to_geodetic(x[:, :3])
    enu = np.einsum("bij,bsj->bsi", enu_matrix(lat, lon), e)
    az = np.mod(np.arctan2(enu[..., 0], enu[..., 1]), 2 * np.pi)
    el = np.arcsin(np.clip(enu[..., 2], -1.0, 1.0))
    return r, e, az, el, (lat, lon, h)


def solve_batch(
    p: BatchProblem, allowed: NDArray[np.bool_], x0: NDArray[np.float64], options: SppOptions, coeffs: NDArray
) -> dict[str, NDArray]:
    """Iterate weighted least squares over every epoch of a batch; return states, residuals (m) and flags."""
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
    col_onehot = np.zeros((s, N_PARAMS))
    col_onehot[:, 3] = 1.0
    for j, c in enumerate(p.isb_col):
        if c >= 0:
            col_onehot[j, c] = 1.0
    # The clock parameter a satellite makes estimable: the common clock for GPS/QZSS, else its offset.
    group_onehot = np.zeros((s, N_PARAMS - 3))
    group_onehot[np.arange(s), np.maximum(p.isb_col - 3, 0)] = 1.0
    for it in range(options.max_iterations):
        act = ~done & ~failed
        if not act.any():
            break
        xa = x[act]
        pa = BatchProblem(
            p.t_rx[act], p.pr[act], p.rs[act], p.dts_m[act], p.var_eph[act], p.isb_col, p.freq_hz
        )
        r, e, az, el, (lat, lon, h) = geometry(xa, pa)
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
            el_w = np.maximum(el, MIN_EL_RAD)
        else:
            dion = dtrp = vion = vtrp = np.zeros_like(r)
            el_w = np.full_like(r, MIN_EL_RAD)
        clk = xa[:, 3:4] + np.where(pa.isb_col[None, :] >= 0, xa[:, np.maximum(pa.isb_col, 0)], 0.0)
        v = pa.pr - (r + clk - pa.dts_m + dion + dtrp)
        var = 100.0**2 * (0.003**2 + 0.003**2 / np.sin(el_w)) + pa.var_eph + 0.3**2 + vion + vtrp
        w = np.where(use, 1.0 / var, 0.0)
        v0 = np.where(use, v, 0.0)
        hmat = np.concatenate(
            [-np.nan_to_num(e), np.broadcast_to(col_onehot[None, :, 3:], (len(xa), s, N_PARAMS - 3))], -1
        )
        n_mat = np.einsum("bs,bsi,bsj->bij", w, hmat, hmat)
        rhs = np.einsum("bs,bsi,bs->bi", w, hmat, v0)
        # Columns of systems without a used satellite are held fixed (RTKLIB's 0.01 m^2 constraint).
        present = np.ones((len(xa), N_PARAMS), dtype=bool)
        present[:, 3:] = np.einsum("bs,sg->bg", use.astype(float), group_onehot) > 0
        absent_w = np.where(present, 0.0, 100.0)
        n_mat = n_mat + absent_w[:, :, None] * np.eye(N_PARAMS)[None]
        n_used = use.sum(1)
        enough = n_used + (~present[:, 3:]).sum(1) >= N_PARAMS
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


def dops(el: NDArray, az: NDArray, used: NDArray, group: NDArray) -> tuple[NDArray, ...]:
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


def validate(sol: dict, options: SppOptions) -> tuple[NDArray[np.bool_], NDArray[np.object_]]:
    """Return which converged epochs pass the chi-square and GDOP checks, and why the others fail."""
    used = sol["used"]
    n_used = used.sum(1)
    vv = np.nansum(np.where(used, sol["v"] ** 2 / sol["var"], 0.0), axis=1)
    reason = sol["reason"].copy()
    ok = sol["done"].copy()
    group = np.maximum(sol["isb_col"] - 3, 0)
    present = np.zeros(len(used), dtype=int)
    for g in range(N_PARAMS - 3):
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
    g1, *_ = dops(el, az, used, np.zeros(used.shape[1], dtype=int))
    gdop_bad = ok & ~(g1 <= options.max_gdop)
    reason[gdop_bad] = [f"GDOP {g:.1f} above {options.max_gdop:g}" for g in g1[gdop_bad]]
    ok &= ~gdop_bad
    return ok, reason


def raim_epoch(
    p: BatchProblem, e_i: int, x_start: NDArray, options: SppOptions, coeffs: NDArray
) -> tuple[int, dict] | None:
    """Solve one epoch once without each satellite; return the best valid solution (lowest residual RMS)."""
    cand = np.flatnonzero(np.isfinite(p.pr[e_i]))
    n = len(cand)
    sub = BatchProblem(
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
    sol = solve_batch(sub, allowed, x0, options, coeffs)
    sol["isb_col"] = p.isb_col
    ok, _ = validate(sol, options)
    nv = sol["used"].sum(1)
    rms = np.sqrt(np.nansum(np.where(sol["used"], sol["v"] ** 2, 0.0), axis=1) / np.maximum(nv, 1))
    ok &= nv >= 5
    if not ok.any():
        return None
    best = int(np.flatnonzero(ok)[np.argmin(rms[ok])])
    one = {k: sol[k][best : best + 1] for k in ("v", "var", "used", "az", "el", "x")}
    return int(cand[best]), one
