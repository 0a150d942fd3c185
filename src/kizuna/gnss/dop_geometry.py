"""Dilution of precision from satellite geometry: the per-point kernels behind the maps and series of
:mod:`kizuna.gnss.dop`.

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

from collections.abc import Callable

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from kizuna.core.geodesy import enu_matrix, geodetic_to_ecef
from kizuna.errors import InputError

__all__ = [
    "DOP_NAMES",
    "SYSTEM_LETTERS",
    "parse_systems",
    "clock_columns",
    "dop_from_geometry",
    "dop_from_positions",
]

DOP_NAMES = ("gdop", "pdop", "hdop", "vdop", "tdop")
# RINEX system letters: GPS, GLONASS, Galileo, BeiDou, QZSS, NavIC (IRNSS).
SYSTEM_LETTERS = "GRECJI"


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
