"""Dilution of precision (DOP) and availability of satellite navigation over a region and over time.

The geometry is that of a multi-GNSS single-point solution: three position unknowns and one receiver clock
unknown per constellation that has at least one satellite in view (inter-system biases are estimated, as a
multi-GNSS receiver does). QZSS time is steered to GPS time (IS-QZSS-PNT), so by default QZSS shares the GPS
clock column, as RTKLIB's single-point positioning does (``pntpos.c``: GLONASS, Galileo and BeiDou get
their own offsets, QZSS uses the GPS clock).

With the design matrix ``H`` (rows ``[u_e, u_n, u_u, clock columns]`` of the unit line-of-sight vector in
local east-north-up axes) and ``Q = (H^T H)^-1``:

- ``hdop = sqrt(Q_ee + Q_nn)``, ``vdop = sqrt(Q_uu)``, ``pdop = sqrt(Q_ee + Q_nn + Q_uu)``;
- ``tdop = sqrt(Q_tt)`` of the clock of the *reference* constellation, the first of the requested systems
  (lowest clock column) with a satellite in view; ``gdop = sqrt(pdop^2 + tdop^2)``. With one constellation
  these are the classical definitions. A constellation with a single satellite in view adds one
  measurement and one unknown, so it changes none of the five values.

The position block is computed as the inverse of the per-constellation centred scatter matrix
``sum_c sum_i (u_i - mean_c)(u_i - mean_c)^T`` (the Schur complement of the clock columns), so every point
needs only a 3x3 inverse. DOP is NaN where there are fewer satellites than unknowns or the geometry is
singular.

Satellite positions are the broadcast ephemeris positions in ECEF at the epoch (GPS time), without the
light-time and Earth-rotation corrections of a pseudorange model: at GNSS distances they move a line of
sight by well under 0.01 degree, which no DOP value resolves.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numba
import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from kizuna.core.geodesy import azimuth_elevation, enu_matrix, geodetic_to_ecef
from kizuna.errors import InputError
from kizuna.gnss import gtime

__all__ = [
    "REGIONS",
    "SYSTEM_LETTERS",
    "DOP_NAMES",
    "parse_region",
    "parse_systems",
    "clock_columns",
    "dop_from_geometry",
    "dop_from_positions",
    "satellite_positions",
    "dop_map",
    "dop_series",
    "sky_tracks",
    "availability_map",
    "summarise_dop_map",
]

# Region boxes (lat_min, lat_max, lon_min, lon_max) in degrees, WGS84.
# India: 5-40 N, 65-100 E holds the Indian mainland (8-37 N, 68-97 E), Sri Lanka, the Andaman and Nicobar
# and Lakshadweep islands and the Arabian Sea and Bay of Bengal around them: the land and sea core of the
# NavIC primary service area (India and up to 1500 km beyond its boundary, IRNSS SPS ICD 1.1, section 1).
# Japan: 20-50 N, 120-155 E holds Japan's territory from Okinotorishima (20.4 N) to Hokkaido (45.5 N) and
# from Yonaguni (123.0 E) to Minamitorishima (154.0 E), the area QZSS was designed to serve from high
# elevation (IS-QZSS-PNT section 1).
REGIONS: dict[str, tuple[float, float, float, float]] = {
    "india": (5.0, 40.0, 65.0, 100.0),
    "japan": (20.0, 50.0, 120.0, 155.0),
}

# RINEX system letters this module accepts: GPS, GLONASS, Galileo, BeiDou, QZSS, NavIC (IRNSS).
SYSTEM_LETTERS = "GRECJI"
DOP_NAMES = ("gdop", "pdop", "hdop", "vdop", "tdop")
_SECONDS_PER_DAY = 86_400.0


def parse_region(text: str, option: str = "--region") -> tuple[float, float, float, float]:
    """Return (lat_min, lat_max, lon_min, lon_max) in deg of 'india', 'japan' or 'LATMIN,LATMAX,LONMIN,LONMAX'

    Bad text, a latitude outside [-90, 90] or a minimum not below its maximum raise InputError naming
    ``option``.
    """
    expected = f"expected {' or '.join(repr(k) for k in REGIONS)} or LATMIN,LATMAX,LONMIN,LONMAX in degrees"
    key = text.strip().lower() if isinstance(text, str) else ""
    if key in REGIONS:
        return REGIONS[key]
    try:
        box = tuple(float(p) for p in key.split(","))
    except ValueError as exc:
        raise InputError(f"{option} {text!r}: {expected}") from exc
    if len(box) != 4:
        raise InputError(f"{option} {text!r}: {expected}")
    return _check_region(box, option)


def _check_region(region: Sequence[float], option: str = "region") -> tuple[float, float, float, float]:
    """Return a validated region box (degrees) or raise InputError naming the option."""
    if len(region) != 4 or not np.all(np.isfinite(np.asarray(region, dtype=float))):
        raise InputError(f"{option} {region!r}: expected four numbers LATMIN,LATMAX,LONMIN,LONMAX in degrees")
    lat0, lat1, lon0, lon1 = (float(v) for v in region)
    if not (-90.0 <= lat0 <= 90.0 and -90.0 <= lat1 <= 90.0):
        raise InputError(f"{option} {region!r}: latitudes must lie in [-90, 90] degrees")
    if not (-180.0 <= lon0 <= 360.0 and -180.0 <= lon1 <= 360.0):
        raise InputError(f"{option} {region!r}: longitudes must lie in [-180, 360] degrees")
    for lo, hi, what in ((lat0, lat1, "LAT"), (lon0, lon1, "LON")):
        if lo >= hi:
            raise InputError(f"{option} {region!r}: {what}MIN ({lo:g}) must be less than {what}MAX ({hi:g})")
    return lat0, lat1, lon0, lon1


def parse_systems(text: str, option: str = "--systems") -> str:
    """Return the constellation letters of text such as 'I', 'GJ' or 'G,J,I' (RINEX letters G R E C J I)."""
    letters = "".join(ch for ch in str(text).upper() if ch not in ", +")
    if not letters or any(ch not in SYSTEM_LETTERS for ch in letters) or len(set(letters)) != len(letters):
        raise InputError(
            f"{option} {text!r}: expected distinct RINEX system letters from {SYSTEM_LETTERS} "
            "(G GPS, R GLONASS, E Galileo, C BeiDou, J QZSS, I NavIC), e.g. 'I' or 'GJI'"
        )
    return letters


def clock_columns(sys_letters: ArrayLike, systems: str, qzss_with_gps: bool = True) -> tuple[NDArray, int]:
    """Return the receiver-clock column (int) of each satellite's system letter and the number of columns.

    Columns follow the order of ``systems``; with ``qzss_with_gps`` QZSS ('J') takes the GPS column when
    'G' is among the systems (QZSST is steered to GPST).
    """
    systems = parse_systems(systems, "systems")
    col_of: dict[str, int] = {}
    for ch in systems:
        if ch == "J" and qzss_with_gps and "G" in systems:
            continue
        col_of[ch] = len(col_of)
    if qzss_with_gps and "G" in systems and "J" in systems:
        col_of["J"] = col_of["G"]
    letters = np.asarray(sys_letters, dtype=str)
    cols = np.full(letters.shape, -1, dtype=np.int64)
    for ch, c in col_of.items():
        cols[letters == ch] = c
    if np.any(cols < 0):
        bad = sorted(set(letters[cols < 0].tolist()))
        raise InputError(f"system letters {bad}: not among the requested systems {systems!r}")
    return cols, len(set(col_of.values()))


@numba.njit(cache=True)
def _solve(s, g, cnt, n_vis, out):  # pragma: no cover - compiled
    """Write gdop, pdop, hdop, vdop, tdop into out from the accumulated sums (NaN if not solvable)."""
    m00, m01, m02, m11, m12, m22 = s[0], s[1], s[2], s[3], s[4], s[5]
    n_clk = 0
    ref = -1
    for c in range(cnt.shape[0]):
        if cnt[c] > 0:
            n_clk += 1
            if ref < 0:
                ref = c
            w = 1.0 / cnt[c]
            m00 -= g[c, 0] * g[c, 0] * w
            m01 -= g[c, 0] * g[c, 1] * w
            m02 -= g[c, 0] * g[c, 2] * w
            m11 -= g[c, 1] * g[c, 1] * w
            m12 -= g[c, 1] * g[c, 2] * w
            m22 -= g[c, 2] * g[c, 2] * w
    for k in range(5):
        out[k] = np.nan
    if n_clk == 0 or n_vis < 3 + n_clk:
        return
    c00 = m11 * m22 - m12 * m12
    c01 = m02 * m12 - m01 * m22
    c02 = m01 * m12 - m02 * m11
    det = m00 * c00 + m01 * c01 + m02 * c02
    if not det > 1e-12:
        return
    q00 = c00 / det
    q11 = (m00 * m22 - m02 * m02) / det
    q22 = (m00 * m11 - m01 * m01) / det
    q01 = c01 / det
    q02 = c02 / det
    q12 = (m01 * m02 - m00 * m12) / det
    w = 1.0 / cnt[ref]
    a0, a1, a2 = g[ref, 0] * w, g[ref, 1] * w, g[ref, 2] * w
    qtt = w + (
        q00 * a0 * a0 + q11 * a1 * a1 + q22 * a2 * a2 + 2.0 * (q01 * a0 * a1 + q02 * a0 * a2 + q12 * a1 * a2)
    )
    pdop2 = q00 + q11 + q22
    out[0] = np.sqrt(pdop2 + qtt)
    out[1] = np.sqrt(pdop2)
    out[2] = np.sqrt(q00 + q11)
    out[3] = np.sqrt(q22)
    out[4] = np.sqrt(qtt)


@numba.njit(cache=True)
def _dop_grid_kernel(sat_pos, sat_ok, col, n_cols, rx, rot, sin_mask, dop, nsat):  # pragma: no cover
    """DOP at P receivers (rx (P,3) ECEF, rot (P,3,3) ENU rows) for T epochs of S satellites (T,S,3).

    Accumulates per receiver and epoch the normal sums of the lines of sight above the mask, then solves
    as the module text says (the same algebra as :func:`_dop_batch`, fused to avoid (T,P,S) arrays).
    """
    s, g, cnt = np.zeros(6), np.zeros((n_cols, 3)), np.zeros(n_cols)
    row = np.zeros(5)
    for t in range(sat_pos.shape[0]):
        for p in range(rx.shape[0]):
            for j in range(6):
                s[j] = 0.0
            for c in range(n_cols):
                cnt[c] = 0.0
                for j in range(3):
                    g[c, j] = 0.0
            nv = 0
            for i in range(sat_pos.shape[1]):
                if not sat_ok[t, i]:
                    continue
                dx = sat_pos[t, i, 0] - rx[p, 0]
                dy = sat_pos[t, i, 1] - rx[p, 1]
                dz = sat_pos[t, i, 2] - rx[p, 2]
                up = rot[p, 2, 0] * dx + rot[p, 2, 1] * dy + rot[p, 2, 2] * dz
                r = np.sqrt(dx * dx + dy * dy + dz * dz)
                if up <= 0.0 or up < sin_mask * r:
                    continue
                e = (rot[p, 0, 0] * dx + rot[p, 0, 1] * dy + rot[p, 0, 2] * dz) / r
                n = (rot[p, 1, 0] * dx + rot[p, 1, 1] * dy + rot[p, 1, 2] * dz) / r
                u = up / r
                s[0] += e * e
                s[1] += e * n
                s[2] += e * u
                s[3] += n * n
                s[4] += n * u
                s[5] += u * u
                c = col[i]
                g[c, 0] += e
                g[c, 1] += n
                g[c, 2] += u
                cnt[c] += 1.0
                nv += 1
            _solve(s, g, cnt, nv, row)
            for j in range(5):
                dop[t, p, j] = row[j]
            nsat[t, p] = nv


def dop_from_geometry(
    los_unit: ArrayLike, system_index: ArrayLike, visible: ArrayLike, n_systems: int
) -> dict[str, NDArray]:
    """Return gdop, pdop, hdop, vdop, tdop and n_sats (...) of unit line-of-sight vectors in local ENU.

    ``los_unit`` (..., n_sat, 3) are unit vectors (east, north, up) from the receiver to each satellite;
    ``system_index`` (..., n_sat) is the receiver-clock column (0 .. n_systems-1) of each satellite;
    ``visible`` (..., n_sat) says which satellites take part. One clock column per system with a visible
    satellite; TDOP is that of the lowest such column (see the module text). NaN where not solvable.
    """
    los = np.asarray(los_unit, dtype=float)
    if los.ndim < 2 or los.shape[-1] != 3:
        raise InputError(f"los_unit: expected shape (..., n_sat, 3), got {los.shape}")
    lead = los.shape[:-2]
    n_sat = los.shape[-2]
    try:
        col = np.broadcast_to(np.asarray(system_index), los.shape[:-1])
        vis = np.broadcast_to(np.asarray(visible, dtype=bool), los.shape[:-1])
    except ValueError as exc:
        raise InputError(
            f"system_index/visible: expected shape {los.shape[:-1]} to match los_unit {los.shape}"
        ) from exc
    if not np.issubdtype(col.dtype, np.integer):
        raise InputError(f"system_index: expected integers, got dtype {col.dtype}")
    if not isinstance(n_systems, int | np.integer) or n_systems < 1:
        raise InputError(f"n_systems {n_systems!r}: expected a positive integer")
    if np.any(vis & ((col < 0) | (col >= n_systems))):
        raise InputError(f"system_index: visible satellites must have an index in 0..{n_systems - 1}")
    n = int(np.prod(lead)) if lead else 1
    vis = vis.reshape(n, n_sat)
    los = np.where(vis[..., None], los.reshape(n, n_sat, 3), 0.0)  # hidden satellites may carry NaN
    col = col.reshape(n, n_sat)
    dop, nsat = np.empty((n, 5)), vis.sum(axis=1)
    chunk = max(1, 2_000_000 // max(1, n_sat * n_systems))  # bounds the (chunk, n_sat, n_systems) one-hot
    for k0 in range(0, n, chunk):
        k1 = min(n, k0 + chunk)
        dop[k0:k1] = _dop_batch(los[k0:k1], col[k0:k1], vis[k0:k1], n_systems)
    out = {name: dop[:, j].reshape(lead) for j, name in enumerate(DOP_NAMES)}
    out["n_sats"] = nsat.reshape(lead)
    return out


def _dop_batch(los: NDArray, col: NDArray, vis: NDArray, n_cols: int) -> NDArray[np.float64]:
    """Return (N, 5) gdop, pdop, hdop, vdop, tdop of N geometries (batched numpy form of the grid kernel)."""
    onehot = ((col[..., None] == np.arange(n_cols)) & vis[..., None]).astype(float)  # (N, n, C)
    cnt = onehot.sum(axis=1)  # (N, C)
    g = np.einsum("knc,kni->kci", onehot, los)  # (N, C, 3) sums of lines of sight per clock column
    inv_cnt = np.divide(1.0, cnt, out=np.zeros_like(cnt), where=cnt > 0)
    m = np.einsum("kn,kni,knj->kij", vis.astype(float), los, los) - np.einsum(
        "kci,kcj,kc->kij", g, g, inv_cnt
    )
    n_clk = (cnt > 0).sum(axis=1)
    det = np.linalg.det(m)
    good = (n_clk > 0) & (vis.sum(axis=1) >= 3 + n_clk) & (det > 1e-12)
    q = np.linalg.inv(np.where(good[:, None, None], m, np.eye(3)))
    ref = np.argmax(cnt > 0, axis=1)  # first clock column in view: the reference clock
    k = np.arange(len(ref))
    a = g[k, ref] * inv_cnt[k, ref][:, None]
    qtt = inv_cnt[k, ref] + np.einsum("ki,kij,kj->k", a, q, a)
    p2 = q[:, 0, 0] + q[:, 1, 1] + q[:, 2, 2]
    out = np.sqrt(np.stack([p2 + qtt, p2, q[:, 0, 0] + q[:, 1, 1], q[:, 2, 2], qtt], axis=1))
    out[~good] = np.nan
    return out


def dop_from_positions(
    sat_pos_ecef_m: ArrayLike,
    sat_ok: ArrayLike,
    sat_column: ArrayLike,
    n_columns: int,
    lat_deg: ArrayLike,
    lon_deg: ArrayLike,
    *,
    height_m: float = 0.0,
    elev_mask_deg: float = 10.0,
    chunk_epochs: int | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, NDArray]:
    """Return DOP (T, P) float32 and n_sats (T, P) at P receivers for T epochs of S satellites (ECEF, m).

    ``sat_pos_ecef_m`` (T, S, 3), ``sat_ok`` (T, S) bool (valid ephemeris), ``sat_column`` (S,) clock
    column; receivers at geodetic ``lat_deg``/``lon_deg`` (P,) and ``height_m``; satellites count when their
    elevation (WGS84 normal) is at least ``elev_mask_deg``.
    """
    pos = np.ascontiguousarray(np.asarray(sat_pos_ecef_m, dtype=float))
    if pos.ndim != 3 or pos.shape[2] != 3:
        raise InputError(f"sat_pos_ecef_m: expected shape (T, S, 3), got {pos.shape}")
    ok = np.asarray(sat_ok, dtype=bool) & np.all(np.isfinite(pos), axis=2)
    col = np.ascontiguousarray(np.asarray(sat_column, dtype=np.int64))
    if col.shape != (pos.shape[1],) or np.any((col < 0) | (col >= n_columns)):
        raise InputError(f"sat_column: expected {pos.shape[1]} integers in 0..{n_columns - 1}")
    if not -90.0 <= elev_mask_deg < 90.0:
        raise InputError(f"elevation mask {elev_mask_deg!r} deg: expected a value in [-90, 90)")
    lat = np.radians(np.asarray(lat_deg, dtype=float).ravel())
    lon = np.radians(np.asarray(lon_deg, dtype=float).ravel())
    rx = np.ascontiguousarray(geodetic_to_ecef(lat, lon, height_m).reshape(-1, 3))
    rot = np.ascontiguousarray(enu_matrix(lat, lon).reshape(-1, 3, 3))
    n_t, n_p = pos.shape[0], rx.shape[0]
    dop = np.empty((n_t, n_p, 5), dtype=np.float32)
    nsat = np.empty((n_t, n_p), dtype=np.int16)
    step = chunk_epochs or max(1, n_t // 20)
    sin_mask = float(np.sin(np.radians(elev_mask_deg)))
    for t0 in range(0, n_t, step):
        t1 = min(n_t, t0 + step)
        _dop_grid_kernel(
            pos[t0:t1], np.ascontiguousarray(ok[t0:t1]), col, int(n_columns), rx, rot, sin_mask,
            dop[t0:t1], nsat[t0:t1],
        )  # fmt: skip
        if progress is not None:
            progress(t1 / n_t, f"DOP {t1}/{n_t} epochs")
    out = {name: dop[:, :, j] for j, name in enumerate(DOP_NAMES)}
    out["n_sats"] = nsat
    return out


def _satellites(nav: Any, systems: str) -> list[str]:
    """Return the sorted satellite ids in nav.eph (and nav.glo for 'R') of the systems (none: InputError)."""
    svs: set[str] = set()
    eph = getattr(nav, "eph", None)
    if eph is not None and len(eph):
        svs.update(str(s) for s in pd.unique(eph["sv"]) if str(s)[:1] in systems)
    glo = getattr(nav, "glo", None)
    if "R" in systems and glo is not None and len(glo):
        svs.update(str(s) for s in pd.unique(glo["sv"]))
    if not svs:
        paths = ", ".join(str(p) for p in getattr(nav, "paths", ())) or "(no file)"
        raise InputError(f"navigation data {paths}: no satellites of systems {systems!r}")
    return sorted(svs)


def _site_setup(
    nav: Any,
    systems: str,
    site_ecef_m: ArrayLike | None,
    lat_deg: float | None,
    lon_deg: float | None,
    height_m: float,
    start: str | np.datetime64,
    duration_s: float,
    step_s: float,
) -> tuple[str, tuple[float, float, float], NDArray, list[str], NDArray, NDArray]:
    """Return systems, the site (lat deg, lon deg, h m), times, satellites, positions and validity."""
    systems = parse_systems(systems, "systems")
    site = _site_latlon(site_ecef_m, lat_deg, lon_deg, height_m)
    t = _time_grid(start, duration_s, step_s)
    svs = _satellites(nav, systems)
    pos, ok = satellite_positions(nav, svs, t)
    return systems, site, t, svs, pos, ok


def satellite_positions(
    nav: Any, svs: Sequence[str], t_gpst: ArrayLike, **broadcast_kw: Any
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Return broadcast ECEF positions (T, S, 3) in m and validity (T, S) of satellites at GPS times (T,)."""
    from kizuna.gnss.broadcast import broadcast_state

    t = np.asarray(t_gpst, dtype=float).ravel()
    sv = np.asarray(list(svs), dtype=object)
    n_t, n_s = t.size, sv.size
    if n_s == 0 or n_t == 0:
        return np.full((n_t, n_s, 3), np.nan), np.zeros((n_t, n_s), dtype=bool)
    st = broadcast_state(nav, np.tile(sv, n_t), np.repeat(t, n_s), **broadcast_kw)
    pos = np.asarray(st.pos_ecef_m, dtype=float).reshape(n_t, n_s, 3)
    ok = np.asarray(st.valid, dtype=bool).reshape(n_t, n_s) & np.all(np.isfinite(pos), axis=2)
    return pos, ok


def _time_grid(start: str | np.datetime64, duration_s: float, step_s: float) -> NDArray[np.float64]:
    """Return GPS seconds from start (a GPST date or instant) every step_s over duration_s (end excluded)."""
    if not (np.isfinite(step_s) and step_s > 0):
        raise InputError(f"time step {step_s!r} s: expected a positive number of seconds")
    if not (np.isfinite(duration_s) and duration_s > 0):
        raise InputError(f"duration {duration_s!r} s: expected a positive number of seconds")
    t0 = gtime.parse_date(start, "date") if isinstance(start, str) else np.datetime64(start, "ns")
    if np.isnat(t0):
        raise InputError(f"date {start!r}: expected a date or instant in GPS time")
    n = int(np.ceil(duration_s / step_s - 1e-9))
    return float(gtime.datetime64_to_gpst(t0)) + step_s * np.arange(n)


def _axis(lo: float, hi: float, step: float, what: str) -> NDArray[np.float64]:
    """Return grid values lo, lo+step, ... up to hi (inclusive within rounding), in degrees."""
    if not (np.isfinite(step) and step > 0):
        raise InputError(f"{what} step {step!r} deg: expected a positive number of degrees")
    n = int(np.floor((hi - lo) / step + 1e-9)) + 1
    return lo + step * np.arange(n)


def _site_latlon(
    site_ecef_m: ArrayLike | None, lat_deg: float | None, lon_deg: float | None, height_m: float
) -> tuple[float, float, float]:
    """Return geodetic (lat_deg, lon_deg, height_m) of a site given in ECEF or geodetic coordinates."""
    from kizuna.core.geodesy import ecef_to_geodetic

    if site_ecef_m is not None:
        r = np.asarray(site_ecef_m, dtype=float)
        if r.shape != (3,) or not np.all(np.isfinite(r)) or np.linalg.norm(r) < 6.0e6:
            raise InputError(f"site_ecef_m {site_ecef_m!r}: expected three ECEF coordinates in metres")
        lat, lon, h = ecef_to_geodetic(r)
        return float(np.degrees(lat)), float(np.degrees(lon)), float(h)
    if lat_deg is None or lon_deg is None:
        raise InputError("site: expected site_ecef_m or both lat_deg and lon_deg")
    if not -90.0 <= float(lat_deg) <= 90.0:
        raise InputError(f"site latitude {lat_deg!r} deg: expected a value in [-90, 90]")
    return float(lat_deg), float(lon_deg), float(height_m)


def dop_map(
    nav: Any,
    *,
    systems: str = "I",
    date: str | np.datetime64,
    region: Sequence[float] | str = REGIONS["india"],
    step_deg: float = 0.5,
    step_s: float = 300.0,
    elev_mask_deg: float = 10.0,
    height_m: float = 0.0,
    duration_s: float = _SECONDS_PER_DAY,
    qzss_with_gps: bool = True,
    progress: Callable[[float, str], None] | None = None,
) -> xr.Dataset:
    """Return a Dataset of n_sats, gdop, pdop, hdop, vdop, tdop on (time GPST, lat, lon in deg) over a region.

    ``date`` is the GPS-time day (``YYYY-MM-DD``) or instant the map starts at; epochs every ``step_s``
    over ``duration_s``; grid every ``step_deg`` on the WGS84 ellipsoid at ``height_m``. Satellites are all
    those of ``systems`` in the navigation data; one without a valid healthy ephemeris at an epoch is not
    counted. ``progress(fraction, text)`` is called as the work advances.
    """
    systems = parse_systems(systems, "systems")
    box = parse_region(region, "region") if isinstance(region, str) else _check_region(region, "region")
    lats = _axis(box[0], box[1], step_deg, "grid")
    lons = _axis(box[2], box[3], step_deg, "grid")
    t = _time_grid(date, duration_s, step_s)
    svs = _satellites(nav, systems)
    if progress is not None:
        progress(0.0, f"broadcast orbits of {len(svs)} satellites")
    pos, ok = satellite_positions(nav, svs, t)
    if progress is not None:
        progress(0.1, "DOP")
    col, n_col = clock_columns([s[0] for s in svs], systems, qzss_with_gps)
    glat, glon = np.meshgrid(lats, lons, indexing="ij")

    def sub(frac: float, text: str) -> None:
        if progress is not None:
            progress(0.1 + 0.9 * frac, text)

    res = dop_from_positions(
        pos, ok, col, n_col, glat.ravel(), glon.ravel(), height_m=height_m, elev_mask_deg=elev_mask_deg,
        progress=sub,
    )  # fmt: skip
    shape = (t.size, lats.size, lons.size)
    dims = ("time", "lat", "lon")
    data = {"n_sats": (dims, res["n_sats"].reshape(shape), {"long_name": "satellites above the mask"})}
    for name in DOP_NAMES:
        data[name] = (dims, res[name].reshape(shape), {"long_name": name.upper(), "units": "1"})
    ds = xr.Dataset(
        data,
        coords={
            "time": ("time", gtime.gpst_to_datetime64(t), {"long_name": "epoch (GPS time)"}),
            "lat": ("lat", lats, {"units": "degrees_north", "long_name": "geodetic latitude (WGS84)"}),
            "lon": ("lon", lons, {"units": "degrees_east", "long_name": "longitude (WGS84)"}),
        },
        attrs=_attrs(nav, systems, svs, elev_mask_deg, height_m, qzss_with_gps, step_s),
    )
    ds.attrs["step_deg"] = float(step_deg)
    ds.attrs["region_deg"] = list(box)
    return ds


def _attrs(
    nav: Any,
    systems: str,
    svs: Sequence[str],
    mask: float,
    height_m: float,
    qzss_with_gps: bool,
    step_s: float,
) -> dict[str, Any]:
    """Return the metadata attributes shared by DOP maps and series."""
    return {
        "systems": systems,
        "satellites": " ".join(svs),
        "elevation_mask_deg": float(mask),
        "height_m": float(height_m),
        "step_s": float(step_s),
        "time_system": "GPST",
        "frame": "WGS84 geodetic grid; DOP in local east-north-up axes; satellite positions ECEF (broadcast)",
        "clock_model": (
            "one receiver clock per constellation in view"
            + ("; QZSS shares the GPS clock" if qzss_with_gps and "G" in systems and "J" in systems else "")
            + "; TDOP of the first listed constellation in view; GDOP = sqrt(PDOP^2 + TDOP^2)"
        ),
        "qzss_with_gps": int(bool(qzss_with_gps)),
        "source_nav": " ".join(str(p) for p in getattr(nav, "paths", ())),
    }


def dop_series(
    nav: Any,
    site_ecef_m: ArrayLike | None = None,
    *,
    lat_deg: float | None = None,
    lon_deg: float | None = None,
    height_m: float = 0.0,
    systems: str = "I",
    start: str | np.datetime64,
    duration_s: float = _SECONDS_PER_DAY,
    step_s: float = 300.0,
    elev_mask_deg: float = 10.0,
    qzss_with_gps: bool = True,
) -> pd.DataFrame:
    """Return a DataFrame (time GPST, t_gpst s, n_sats, gdop, pdop, hdop, vdop, tdop) for one site over time.

    The site is ``site_ecef_m`` (ECEF, m) or ``lat_deg``/``lon_deg``/``height_m`` (WGS84).
    """
    systems, (lat, lon, h), t, svs, pos, ok = _site_setup(
        nav, systems, site_ecef_m, lat_deg, lon_deg, height_m, start, duration_s, step_s
    )
    col, n_col = clock_columns([s[0] for s in svs], systems, qzss_with_gps)
    res = dop_from_positions(pos, ok, col, n_col, [lat], [lon], height_m=h, elev_mask_deg=elev_mask_deg)
    df = pd.DataFrame({"time": gtime.gpst_to_datetime64(t), "t_gpst": t, "n_sats": res["n_sats"][:, 0]})
    for name in DOP_NAMES:
        df[name] = res[name][:, 0].astype(float)
    df.attrs.update(_attrs(nav, systems, svs, elev_mask_deg, h, qzss_with_gps, step_s))
    df.attrs.update({"lat_deg": lat, "lon_deg": lon})
    return df


def sky_tracks(
    nav: Any,
    site_ecef_m: ArrayLike | None = None,
    *,
    lat_deg: float | None = None,
    lon_deg: float | None = None,
    height_m: float = 0.0,
    systems: str = "GJI",
    start: str | np.datetime64,
    duration_s: float = _SECONDS_PER_DAY,
    step_s: float = 300.0,
    elev_mask_deg: float = 0.0,
) -> pd.DataFrame:
    """Return satellite tracks (time GPST, sv, system, az_deg, el_deg) above the mask seen from one site.

    Azimuth from north through east and elevation from the WGS84 ellipsoid normal, in degrees; rows sorted
    by satellite then time; epochs without a valid ephemeris are left out.
    """
    systems, (lat, lon, h), t, svs, pos, ok = _site_setup(
        nav, systems, site_ecef_m, lat_deg, lon_deg, height_m, start, duration_s, step_s
    )
    site = geodetic_to_ecef(np.radians(lat), np.radians(lon), h)
    az, el = azimuth_elevation(site, np.where(ok[..., None], pos, site + 2.0e7))
    az_deg, el_deg = np.degrees(az), np.degrees(el)
    keep = ok & (el_deg >= elev_mask_deg)
    it, isv = np.nonzero(keep.T)[::-1]  # sorted by satellite, then time
    sv = np.asarray(svs, dtype=object)[isv]
    return pd.DataFrame(
        {
            "time": gtime.gpst_to_datetime64(t[it]),
            "sv": sv,
            "system": np.array([s[0] for s in sv], dtype=object),
            "az_deg": az_deg[it, isv],
            "el_deg": el_deg[it, isv],
        }
    )


def availability_map(ds: xr.Dataset, pdop_max: float = 6.0) -> xr.DataArray:
    """Return the fraction of epochs (0..1) with a solution of PDOP <= pdop_max at each (lat, lon) point."""
    ok = (ds["pdop"] <= pdop_max).fillna(False)
    out = ok.mean("time").astype(float)
    out.attrs = {"long_name": f"fraction of time with PDOP <= {pdop_max:g}", "units": "1"}
    return out.rename("availability")


def _finite_float(x: Any) -> float | None:
    """Return a plain float, or None for NaN (JSON has no NaN)."""
    v = float(x)
    return v if np.isfinite(v) else None


def summarise_dop_map(ds: xr.Dataset, pdop_max: float = 6.0) -> dict[str, Any]:
    """Return summary figures of a DOP map (plain keys, SI/plain units, JSON-ready; None where undefined).

    Percentiles are over all (time, point) cells that have a solution; ``availability_fraction`` counts
    cells without a solution as unavailable.
    """
    pdop = ds["pdop"].values.astype(float)
    solved = np.isfinite(pdop)
    good = solved & (pdop <= pdop_max)
    out: dict[str, Any] = {
        "systems": ds.attrs.get("systems"),
        "elevation_mask_deg": ds.attrs.get("elevation_mask_deg"),
        "pdop_threshold": float(pdop_max),
        "n_epochs": int(ds.sizes["time"]),
        "n_points": int(ds.sizes["lat"] * ds.sizes["lon"]),
        "start_gpst": str(ds["time"].values[0])[:19],
        "end_gpst": str(ds["time"].values[-1])[:19],
        "solution_fraction": float(solved.mean()),
        "availability_fraction": float(good.mean()),
    }
    for name in ("pdop", "hdop", "vdop", "gdop"):
        v = ds[name].values.astype(float)
        v = v[np.isfinite(v)]
        out[f"{name}_median"] = _finite_float(np.median(v)) if v.size else None
        out[f"{name}_p95"] = _finite_float(np.percentile(v, 95.0)) if v.size else None
    n, per_point = ds["n_sats"].values, good.mean(axis=0)
    out.update(n_sats_mean=float(n.mean()), n_sats_min=int(n.min()), n_sats_max=int(n.max()))
    out.update(
        availability_point_min=float(per_point.min()), availability_point_median=float(np.median(per_point))
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an epoch without any solution gives None
        per_time = np.nanmedian(pdop.reshape(pdop.shape[0], -1), axis=1)
    out["pdop_median_by_time"] = [_finite_float(v) for v in per_time]
    return out
