"""SP3-c and SP3-d precise orbit and clock files: reading and interpolation at any GPS instant.

Positions are those of the file (IGS products: the satellite's centre of mass in the file's ITRF
realisation, ``coord_frame``), converted to metres; clocks to seconds. Epochs in the file's time system
(``%c`` line: GPS, GAL, QZS, IRN, BDT, GLO, UTC, TAI) become ``t_gpst``. Interpolation follows RTKLIB 2.4.3
(``pephpos``/``pephclk``): Lagrange polynomials of order 10 over 11 epochs for positions, after rotating
each tabulated position into the Earth-fixed frame of the wanted instant, and linear interpolation of the
clock between the two epochs around the instant.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from kizuna.errors import InputError
from kizuna.gnss import gtime

__all__ = ["Sp3", "read_sp3", "interpolate_sp3", "LAGRANGE_ORDER"]

LAGRANGE_ORDER = 10
_OMEGA_E_RAD_S = 7.2921151467e-5  # WGS84 Earth rotation rate (RTKLIB's OMGE)
_BAD_VALUE = 999999.0  # 999999.999999 marks a bad or absent clock (and, in some files, position)
_TIME_SYSTEMS = {"GPS": "G", "GAL": "E", "QZS": "J", "IRN": "I", "BDT": "C", "UTC": "UTC", "GLO": "GLO"}
_TIME_SYSTEMS["TAI"] = "TAI"


@dataclass(frozen=True)
class Sp3:
    """Precise orbits and clocks of an SP3 file: positions (m, the file's Earth-fixed frame), clocks (s)."""

    t_gpst: NDArray[np.float64]  # (n_t,) epochs, GPS seconds
    sv: NDArray[np.str_]  # (n_sv,) satellite names, 'G01'
    pos_ecef_m: NDArray[np.float64]  # (n_t, n_sv, 3) NaN where missing or bad
    clk_s: NDArray[np.float64]  # (n_t, n_sv) NaN where missing or bad
    time_system: str  # time system of the file's epochs ('GPS', 'GAL', 'BDT', 'UTC', ...)
    coord_frame: str  # coordinate system label, e.g. 'IGb14', 'IGS20'
    version: str = "d"  # SP3 version letter, 'c' or 'd'
    agency: str = ""
    path: str = ""


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read SP3 file ({exc.strerror or exc})") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputError(f"{path}: corrupt gzip data ({exc})") from exc
    return raw.decode("ascii", errors="replace")


def _sv_name(text: str) -> str:
    s = text.replace(" ", "0") if text[:1] != " " else "G" + text[1:].replace(" ", "0")
    return s


def _text_matrix(lines: list[str], width: int) -> NDArray:
    """Return lines as an (n, width) byte matrix, each line cut or padded with blanks to ``width``."""
    blob = "".join(ln[:width].ljust(width) for ln in lines).encode("ascii", errors="replace")
    return np.frombuffer(blob, dtype="S1").reshape(len(lines), width)


def _floats(mat: NDArray, start: int, stop: int, lineno: list[int], path: Path, what: str) -> NDArray:
    """Parse one fixed-width column of many lines at once; name the first bad line in the error."""
    cols = np.ascontiguousarray(mat[:, start:stop]).view(f"S{stop - start}").ravel()
    try:
        return cols.astype(np.float64)
    except ValueError:
        for k, c in enumerate(cols):
            try:
                float(c)
            except ValueError:
                raise InputError(
                    f"{path}:{lineno[k]}: expected a number for {what} in columns {start + 1}-{stop}, "
                    f"got {c.decode(errors='replace')!r}"
                ) from None
        raise


def read_sp3(path: str | Path) -> Sp3:
    """Return orbits (m) and clocks (s) of an SP3-c or SP3-d file (plain or gzip), epochs as GPS seconds."""
    path = Path(path)
    lines = _read_text(path).splitlines()
    if not lines or not lines[0].startswith("#") or len(lines[0]) < 3:
        raise InputError(f"{path}:1: expected an SP3 header line starting '#c' or '#d'")
    version = lines[0][1]
    if version not in "cd":
        raise InputError(f"{path}:1: SP3 version {version!r} is not supported: expected 'c' or 'd'")
    if lines[0][2] not in "PV":
        raise InputError(f"{path}:1: expected position/velocity flag 'P' or 'V' in column 3")
    head = lines[0].ljust(60)
    coord_frame = head[46:51].strip()
    agency = head[56:60].strip()

    sv_list: list[str] = []
    n_sat = None
    time_system = "GPS"
    seen_c = False
    first_data = None
    for k, ln in enumerate(lines[1:], start=1):
        if ln.startswith("*"):
            first_data = k
            break
        if ln.startswith("+ "):
            if n_sat is None:
                try:
                    n_sat = int(ln[3:6])
                except ValueError:
                    raise InputError(
                        f"{path}:{k + 1}: expected the number of satellites in columns 4-6"
                    ) from None
            body = ln[9:60]
            sv_list += [body[i : i + 3] for i in range(0, len(body), 3)]
        elif ln.startswith("%c") and not seen_c:
            seen_c = True
            ts = ln[9:12].strip()
            if ts and ts != "ccc":
                time_system = ts
    if n_sat is None:
        raise InputError(f"{path}: no '+' satellite list line in the header")
    sv_names = [_sv_name(s) for s in sv_list[:n_sat]]
    if len(sv_names) != n_sat or any(len(s.strip()) != 3 for s in sv_names):
        raise InputError(f"{path}: the header lists fewer satellites than the {n_sat} it announces")
    if time_system not in _TIME_SYSTEMS:
        raise InputError(f"{path}: unknown time system {time_system!r} on the first %c line")
    if first_data is None:
        raise InputError(f"{path}: no epoch line ('*') found: no data")
    sv_index = {s: i for i, s in enumerate(sv_names)}

    ep_lines: list[str] = []
    ep_no: list[int] = []
    p_lines: list[str] = []
    p_no: list[int] = []
    p_epoch: list[int] = []
    for k in range(first_data, len(lines)):
        ln = lines[k]
        c0 = ln[:1]
        if c0 == "*":
            ep_lines.append(ln)
            ep_no.append(k + 1)
        elif c0 == "P":
            p_lines.append(ln)
            p_no.append(k + 1)
            p_epoch.append(len(ep_lines) - 1)
        elif ln.startswith("EOF"):
            break
        elif c0 in ("V", "E", "/", "") or ln.strip() == "":
            continue
        else:
            raise InputError(f"{path}:{k + 1}: expected an epoch ('*'), 'P', 'V', 'EP', 'EV' or 'EOF' line")

    ep_mat = _text_matrix(ep_lines, 31)
    fields = {}
    for name, (a, b) in {"year": (3, 7), "month": (8, 10), "day": (11, 13), "hour": (14, 16)}.items():
        fields[name] = _floats(ep_mat, a, b, ep_no, path, f"epoch {name}")
    fields["minute"] = _floats(ep_mat, 17, 19, ep_no, path, "epoch minute")
    fields["second"] = _floats(ep_mat, 20, 31, ep_no, path, "epoch second")
    months = (fields["year"].astype(np.int64) - 1970) * 12 + fields["month"].astype(np.int64) - 1
    days = months.astype("datetime64[M]").astype("datetime64[D]") + (fields["day"].astype(np.int64) - 1)
    bad = (fields["month"] < 1) | (fields["month"] > 12) | (fields["day"] < 1) | (fields["day"] > 31)
    if np.any(bad):
        raise InputError(f"{path}:{ep_no[int(np.flatnonzero(bad)[0])]}: epoch has an impossible date")
    secs = fields["hour"] * 3600.0 + fields["minute"] * 60.0 + fields["second"]
    t_sys = (days - gtime.GPS_EPOCH.astype("datetime64[D]")).astype(np.int64) * 86400.0 + secs
    t_gpst = _to_gpst(t_sys, time_system)
    if np.any(np.diff(t_gpst) <= 0.0):
        k = int(np.flatnonzero(np.diff(t_gpst) <= 0.0)[0]) + 1
        raise InputError(f"{path}:{ep_no[k]}: epoch is not after the previous epoch")

    n_t = len(ep_lines)
    pos = np.full((n_t, n_sat, 3), np.nan)
    clk = np.full((n_t, n_sat), np.nan)
    if p_lines:
        mat = _text_matrix(p_lines, 60)
        names, inverse = np.unique(np.ascontiguousarray(mat[:, 1:4]).view("S3").ravel(), return_inverse=True)
        lookup = np.array([sv_index.get(_sv_name(n.decode(errors="replace")), -1) for n in names])
        sat_idx = lookup[inverse.ravel()]
        if np.any(sat_idx < 0):
            k = int(np.flatnonzero(sat_idx < 0)[0])
            raise InputError(f"{path}:{p_no[k]}: satellite {p_lines[k][1:4]!r} is not in the header's list")
        ep = np.array(p_epoch)
        xyz = np.stack(
            [_floats(mat, a, a + 14, p_no, path, c) for a, c in zip((4, 18, 32), "xyz", strict=True)], axis=1
        )
        bad_pos = np.any((xyz == 0.0) | (np.abs(xyz) >= _BAD_VALUE), axis=1)
        xyz[bad_pos] = np.nan
        pos[ep, sat_idx] = xyz * 1e3
        has_clk = np.any(mat[:, 46:60] != b" ", axis=1)
        if np.any(has_clk):
            c = np.full(len(p_lines), np.nan)
            c[has_clk] = _floats(mat[has_clk], 46, 60, list(np.asarray(p_no)[has_clk]), path, "clock")
            c = np.where(np.abs(c) >= _BAD_VALUE, np.nan, c)
            clk[ep, sat_idx] = c * 1e-6
    return Sp3(
        t_gpst=t_gpst,
        sv=np.array(sv_names),
        pos_ecef_m=pos,
        clk_s=clk,
        time_system=time_system,
        coord_frame=coord_frame,
        version=version,
        agency=agency,
        path=str(path),
    )


def _to_gpst(t_sys: NDArray[np.float64], time_system: str) -> NDArray[np.float64]:
    """Return GPS seconds of seconds counted in ``time_system`` from the GPS epoch's calendar instant."""
    kind = _TIME_SYSTEMS[time_system]
    if kind in ("G", "E", "J", "I"):
        return t_sys
    if kind == "C":
        return t_sys - gtime.BDT_MINUS_GPST_S
    if kind == "TAI":
        return t_sys - 19.0  # TAI - GPST = 19 s
    if kind == "GLO":
        t_sys = t_sys - 3 * 3600.0  # GLONASS time = UTC(SU) + 3 h
    ns = np.round(t_sys * 1e9).astype(np.int64).astype("timedelta64[ns]")
    return gtime.utc_to_gpst(gtime.GPS_EPOCH + ns) + (t_sys - ns.astype(np.int64) * 1e-9)


def interpolate_sp3(
    sp3: Sp3, sv: ArrayLike, t_gpst: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return SP3 positions (m, the file's Earth-fixed frame; (n, 3)) and clocks (s, (n,)) at GPS instants.

    ``sv`` and ``t_gpst`` broadcast together. Positions: Lagrange interpolation of order 10 over 11 epochs
    (the window RTKLIB's ``pephpos`` takes: 6 epochs at or before the instant, 5 after, shifted inside the
    file at its ends); clocks: linear between the two epochs around the instant (the tabulated value at an
    epoch). NaN outside the file's epochs, for unknown satellites, or where a needed epoch is missing.
    """
    sv_arr = np.asarray(sv)
    if sv_arr.dtype.kind != "U":
        sv_arr = sv_arr.astype(str)
    t = np.asarray(t_gpst, dtype=float)
    try:
        sv_b, t_b = np.broadcast_arrays(sv_arr, t)
    except ValueError as exc:
        raise InputError(f"sv {sv_arr.shape} and t_gpst {t.shape} do not broadcast together") from exc
    shape = t_b.shape
    q_sv, q_t = sv_b.ravel(), t_b.ravel()
    n = q_t.size
    pos_out = np.full((n, 3), np.nan)
    clk_out = np.full(n, np.nan)
    tt = sp3.t_gpst
    n_t = tt.size
    order = np.argsort(sp3.sv)
    sorted_sv = sp3.sv[order]
    j = np.clip(np.searchsorted(sorted_sv, q_sv), 0, max(len(sorted_sv) - 1, 0))
    known = (sorted_sv[j] == q_sv) if len(sorted_sv) else np.zeros(n, dtype=bool)
    sat = np.where(known, order[j] if len(order) else 0, -1)
    inside = known & np.isfinite(q_t) & (n_t > 0)
    if n_t:
        inside &= (q_t >= tt[0]) & (q_t <= tt[-1])
    q = np.flatnonzero(inside)
    if q.size == 0:
        return pos_out.reshape(*shape, 3), clk_out.reshape(shape)
    tq, sq = q_t[q], sat[q]
    first_ge = np.searchsorted(tt, tq, side="left")

    # Clock: the tabulated value at an epoch, else linear between the epochs around the instant.
    at_epoch = tt[np.minimum(first_ge, n_t - 1)] == tq
    hi = np.clip(first_ge, 1, n_t - 1) if n_t > 1 else np.zeros_like(first_ge)
    lo = np.maximum(hi - 1, 0)
    c0, c1 = sp3.clk_s[lo, sq], sp3.clk_s[hi, sq]
    dt0, dt1 = tq - tt[lo], tt[hi] - tq
    with np.errstate(invalid="ignore", divide="ignore"):
        lin = (c0 * dt1 + c1 * dt0) / (dt0 + dt1)
    clk_out[q] = np.where(at_epoch, sp3.clk_s[np.minimum(first_ge, n_t - 1), sq], lin)

    # Position: Lagrange over 11 epochs in the Earth-fixed frame of the wanted instant.
    n_pts = LAGRANGE_ORDER + 1
    if n_t >= n_pts:
        index = np.maximum(first_ge - 1, 0)
        start = np.clip(index - n_pts // 2, 0, n_t - n_pts)
        win = start[:, None] + np.arange(n_pts)
        dtw = tt[win] - tq[:, None]
        p = sp3.pos_ecef_m[win, sq[:, None]]
        ang = _OMEGA_E_RAD_S * dtw
        ca, sa = np.cos(ang), np.sin(ang)
        px = ca * p[..., 0] - sa * p[..., 1]
        py = sa * p[..., 0] + ca * p[..., 1]
        pz = p[..., 2]
        acc = np.zeros((q.size, 3))
        for k in range(n_pts):
            num = -dtw.copy()
            den = dtw[:, k : k + 1] - dtw
            num[:, k] = 1.0
            den[:, k] = 1.0
            w = np.prod(num, axis=1) / np.prod(den, axis=1)
            acc[:, 0] += w * px[:, k]
            acc[:, 1] += w * py[:, k]
            acc[:, 2] += w * pz[:, k]
        pos_out[q] = acc
    return pos_out.reshape(*shape, 3), clk_out.reshape(shape)
