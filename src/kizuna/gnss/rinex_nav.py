"""Read RINEX 2.10/2.11, 3.00-3.05 and 4.00-4.02 navigation files into tables of broadcast ephemerides.

``read_nav`` returns a :class:`NavData`: Keplerian ephemerides of GPS, QZSS, Galileo, BeiDou and NavIC in
``eph`` (one row per record, SI units, times as continuous GPS seconds ``t_gpst``), GLONASS FDMA state
vectors in ``glo``, SBAS state vectors in ``sbas``, ionosphere coefficients, system time offsets and leap
seconds from the header and from RINEX 4 ION/STO/EOP records. Plain, gzip, bzip2 and Unix-compressed
files are read (detected by magic bytes). A malformed record is skipped and named in ``problems``; the
rest of the file is read.

Notes on ``eph`` columns:
- ``msg``: RINEX 4 message type as written; RINEX 2/3: 'LNAV' (G, J, I), Galileo 'INAV' when data source
  bit 0 or 2 is set, else 'FNAV' when bit 1 is set, else ''; BeiDou 'D2' for C01-C05 and C59-C63, else 'D1'.
- GPS/QZSS CNAV and CNV2 records carry no toe: ``toe_sow`` and ``week`` are those of toc (IS-GPS-200
  30.3.3.1.1), ``iode``/``iodc`` are NaN, ``accuracy_m`` is the nominal URA_ED of the URA_ED index.
  BeiDou CNV1/2/3 records carry no week: ``week`` is the BDT week of toc, ``accuracy_m`` is NaN (SISAI
  indices), ``tgd_s``/``tgd2_s`` are TGD_B1Cp/TGD_B2ap (CNV3: ``tgd_s`` = TGD_B2bI).
- ``week`` is as written where the record has one; ``toe_gpst`` is moved by whole weeks to lie within
  half a week of toc, which undoes writers that pair toe with the week of toc.
- ``fit_h``: GPS hours as written with 0 (not known) read as 4 h; QZSS fit interval flag 0 -> 2 h, 1 -> NaN.
- Records are kept unless identical in every column: the same (sv, msg, toe, iode) may appear several
  times with another transmission time, health, data source or group delay.
"""

from __future__ import annotations

import bz2
import gzip
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from kizuna.errors import InputError
from kizuna.gnss.gtime import BDS_WEEK0_GPS_WEEK, SECONDS_PER_WEEK
from kizuna.gnss.rinex_nav_records import (
    EOP_COLUMNS,
    EPH_COLUMNS,
    GLO_COLUMNS,
    ION_COLUMNS,
    SBAS_COLUMNS,
    STO_COLUMNS,
    WIDTH,
    Body,
    ephemeris_groups,
    fill_rows,
    line_bounds,
    to_gpst,
)

__all__ = [
    "NavData",
    "read_nav",
    "merge_nav",
    "EPH_COLUMNS",
    "GLO_COLUMNS",
    "SBAS_COLUMNS",
    "ION_COLUMNS",
    "STO_COLUMNS",
    "EOP_COLUMNS",
]

_STR_COLUMNS = {"sv", "system", "msg", "key", "utc_id"}
_FILE_KINDS = {"O": "an observation", "M": "a meteorological", "C": "a clock"}
_RINEX2_SYSTEM = {"N": "G", "G": "R", "H": "S"}  # RINEX 2 file type -> system of its records
# Klobuchar header lines: label -> (iono key, position of its four values)
_KLOBUCHAR_HALVES = {f"{s}{h}": (s, 0 if h == "A" else 4) for s in ("GPS", "QZS", "BDS", "IRN") for h in "AB"}


def empty_frame(columns: Sequence[str]) -> pd.DataFrame:
    """Return an empty DataFrame with the given columns (text columns object, the others float64)."""
    return pd.DataFrame(
        {c: np.array([], dtype=object if c in _STR_COLUMNS else np.float64) for c in columns},
        columns=list(columns),
    )


@dataclass(frozen=True)
class NavData:
    """Broadcast navigation data of one or more RINEX navigation files (SI units, times in GPS seconds).

    ``eph``: Keplerian ephemerides of G, J, E, C, I, one row per record, sorted by (sv, toe_gpst), columns
    ``EPH_COLUMNS``. ``glo``: GLONASS FDMA records, positions in PZ-90 ECEF metres, ``GLO_COLUMNS``.
    ``iono``: 'GPS', 'QZS', 'IRN', 'BDS' (Klobuchar alpha0..3, beta0..3) and 'GAL' (NeQuick-G ai0..2).
    ``time_offsets``: e.g. 'GPUT' -> (a0_s, a1_s_per_s, t_ref_sow_s, week). ``problems``: 'FILE:LINE: what'.
    ``sbas`` holds SBAS records (ECEF metres), ``iono_records``, ``sto_records`` and ``eop`` every RINEX 4
    ION, STO and EOP record.
    """

    paths: tuple[str, ...]
    version: float
    eph: pd.DataFrame
    glo: pd.DataFrame
    iono: dict[str, np.ndarray]
    time_offsets: dict[str, tuple[float, float, float, int]]
    leap_seconds: int | None
    problems: tuple[str, ...]
    sbas: pd.DataFrame = field(default_factory=lambda: empty_frame(SBAS_COLUMNS))
    iono_records: pd.DataFrame = field(default_factory=lambda: empty_frame(ION_COLUMNS))
    sto_records: pd.DataFrame = field(default_factory=lambda: empty_frame(STO_COLUMNS))
    eop: pd.DataFrame = field(default_factory=lambda: empty_frame(EOP_COLUMNS))


@dataclass
class _Header:
    version: float
    major: int
    system: str  # RINEX 2: the system of the file's records; RINEX 3/4: column 41 of the first line
    n_lines: int
    iono: dict[str, np.ndarray]
    time_offsets: dict[str, tuple[float, float, float, int]]
    leap_seconds: int | None
    problems: list[str]


def _read_bytes(path: Path) -> bytes:
    """Return the bytes of a plain, gzip, bzip2 or Unix-compressed (.Z) file, detected by magic bytes."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the navigation file: {exc.strerror or exc}") from exc
    try:
        if data[:2] == b"\x1f\x8b":
            return gzip.decompress(data)
        if data[:3] == b"BZh":
            return bz2.decompress(data)
        if data[:2] == b"\x1f\x9d":
            import hatanaka

            return hatanaka.decompress(data)
    except Exception as exc:  # gzip/bz2/LZW errors of a damaged file
        raise InputError(f"{path}: cannot decompress the navigation file: {exc}") from exc
    return data


def _num(text: str) -> float:
    """Return a Fortran-style number ('D' exponents allowed); blank text is NaN."""
    t = text.strip()
    return float(t.replace("D", "E").replace("d", "e")) if t else float("nan")


def _values(line: str, first: int, width: int, count: int) -> NDArray[np.float64]:
    """Return ``count`` numbers of a header line in fixed-width fields, or split at blanks when misaligned."""
    try:
        return np.array([_num(line[c : c + width]) for c in range(first, first + count * width, width)])
    except ValueError:
        tokens = line[first:60].split()
        if len(tokens) > count:
            raise
        return np.array([_num(t) for t in tokens] + [float("nan")] * (count - len(tokens)))


def _header_line(line: str, label: str, hdr: _Header, halves: dict[str, NDArray], name: str, n: int) -> None:
    """Read one header line's ionosphere, time offset or leap second values into ``hdr``."""
    try:
        if label == "IONOSPHERIC CORR":
            key = line[:4].strip()
            vals = _values(line, 5, 12, 4)
            if key == "GAL":
                hdr.iono.setdefault("GAL", vals[:3])
            elif key in _KLOBUCHAR_HALVES:
                halves.setdefault(key, vals)
        elif label in ("ION ALPHA", "ION BETA"):  # RINEX 2
            halves.setdefault("GPSA" if label == "ION ALPHA" else "GPSB", _values(line, 2, 12, 4))
        elif label == "TIME SYSTEM CORR":
            key = line[:4].strip()
            value = (_num(line[5:22]), _num(line[22:38]), _num(line[38:45]), int(_num(line[45:50])))
            hdr.time_offsets.setdefault(key, value)
        elif label in ("DELTA-UTC: A0,A1,T,W", "D-UTC A0,A1,T,W,S,U"):  # RINEX 2 GPS / GEO
            key = "GPUT" if label.startswith("DELTA") else "SBUT"
            value = (_num(line[3:22]), _num(line[22:41]), _num(line[41:50]), int(_num(line[50:59])))
            hdr.time_offsets.setdefault(key, value)
        elif label == "CORR TO SYSTEM TIME":  # RINEX 2 GLONASS: date and -TauC
            y, mo, d = (int(line[c : c + 6]) for c in (0, 6, 12))
            days = (np.datetime64(f"{y:04d}-{mo:02d}-{d:02d}") - np.datetime64("1980-01-06")).astype(int)
            hdr.time_offsets.setdefault(
                "GLUT", (_num(line[21:40]), 0.0, float(days % 7 * 86400), int(days // 7))
            )
        elif label == "LEAP SECONDS" and hdr.leap_seconds is None:
            # A leap second count given against BDT (RINEX 3.04+ 'BDS' in columns 25-27) is 14 s less.
            hdr.leap_seconds = int(line[:6]) + (14 if line[24:27] == "BDS" else 0)
    except ValueError:
        hdr.problems.append(
            f"{name}:{n}: header line '{label}' has a field that is not a number: {line[:60]!r}"
        )


def _parse_header(
    buf: NDArray[np.uint8], starts: NDArray[np.int64], ends: NDArray[np.int64], name: str
) -> _Header:
    """Check the first line and read the header up to END OF HEADER (InputError when not RINEX navigation)."""
    if starts.size == 0:
        raise InputError(f"{name}: empty file (expected a RINEX navigation file)")

    def text(i: int) -> str:
        return buf[starts[i] : ends[i]].tobytes().decode("latin-1")

    first = text(0)
    label = first[60:].strip()
    if label.startswith("CRINEX"):
        raise InputError(f"{name}:1: a Hatanaka-compressed RINEX observation file, not a navigation file")
    if label != "RINEX VERSION / TYPE":
        raise InputError(
            f"{name}:1: not a RINEX file: expected the 'RINEX VERSION / TYPE' line, got {first[:60]!r}"
        )
    try:
        version = float(first[:9])
    except ValueError:
        raise InputError(f"{name}:1: RINEX version {first[:9].strip()!r} is not a number") from None
    major = int(version)
    file_type = first[20:21].upper()
    if file_type in _FILE_KINDS:
        kind = _FILE_KINDS[file_type]
        raise InputError(f"{name}:1: {kind} RINEX file (type {file_type!r}), not a navigation file")
    if major not in (2, 3, 4):
        raise InputError(
            f"{name}:1: RINEX version {version:.2f} is not supported (expected 2.xx, 3.0x or 4.0x)"
        )
    if (major == 2 and file_type not in _RINEX2_SYSTEM) or (major > 2 and file_type != "N"):
        raise InputError(f"{name}:1: file type {file_type!r} is not navigation data (expected 'N')")
    system = _RINEX2_SYSTEM[file_type] if major == 2 else first[40:41]
    hdr = _Header(version, major, system, 0, {}, {}, None, [])
    halves: dict[str, NDArray] = {}
    for i in range(1, starts.size):
        line = text(i)
        label = line[60:].strip()
        if label == "END OF HEADER":
            hdr.n_lines = i + 1
            break
        _header_line(line, label, hdr, halves, name, i + 1)
    else:
        raise InputError(f"{name}: no 'END OF HEADER' line (expected a RINEX navigation header)")
    for key, (out, pos) in _KLOBUCHAR_HALVES.items():
        if key in halves and pos == 0:
            other = key[:3] + "B"
            if other in halves:
                hdr.iono[out] = np.concatenate([halves[key], halves[other]])
            else:
                hdr.problems.append(
                    f"{name}: header has {key} but no {other} ionosphere line; {out} not used"
                )
        elif key in halves and key[:3] + "A" not in halves:
            hdr.problems.append(f"{name}: header has {key} but no {key[:3]}A ionosphere line; {out} not used")
    return hdr


_KLOBUCHAR = {"c0": (0, 1), "c1": (0, 2), "c2": (0, 3), "c3": (1, 0), "c4": (1, 1), "c5": (1, 2),
              "c6": (1, 3), "c7": (2, 0), "region": (2, 1)}  # fmt: skip
_NEQUICK = {"c0": (0, 1), "c1": (0, 2), "c2": (0, 3)}
_BDGIM = {**{k: v for k, v in _KLOBUCHAR.items() if k != "region"}, "c8": (2, 1)}
_STO = {"ttm_s": (1, 0), "a0_s": (1, 1), "a1_s_per_s": (1, 2), "a2_s_per_s2": (1, 3)}
_EOP = {"xp_rad": (0, 1), "xp_rate_rad_s": (0, 2), "xp_accel_rad_s2": (0, 3),
        "yp_rad": (1, 1), "yp_rate_rad_s": (1, 2), "yp_accel_rad_s2": (1, 3),
        "ttm_s": (2, 0), "dut1_s": (2, 1), "dut1_rate_s_s": (2, 2), "dut1_accel_s_s2": (2, 3)}  # fmt: skip
_ARCSEC = np.pi / 648_000.0
_DAY = 86_400.0
_ION_KEYS = {("G", "LNAV"): "GPS", ("J", "LNAV"): "QZS", ("I", "LNAV"): "IRN", ("C", "D1D2"): "BDS",
             ("E", "IFNV"): "GAL"}  # fmt: skip
_SYSTEM_NAMES = {"G": "GPS", "J": "QZS", "I": "IRN", "C": "BDS", "E": "GAL", "R": "GLO", "S": "SBS"}


def _strings(mat: NDArray[np.uint8], rows: NDArray[np.int64], c0: int, c1: int) -> NDArray[np.str_]:
    """Return the stripped text of columns c0:c1 of the given rows."""
    return np.char.strip(np.ascontiguousarray(mat[rows, c0:c1]).view(f"S{c1 - c0}").ravel().astype(str))


def _aux_records(body: Body, groups: list[tuple]) -> tuple[dict[str, list], dict[str, list], dict[str, list]]:
    """Decode RINEX 4 ION, STO and EOP record groups into column lists (SI units, epochs in GPS seconds).

    ION keys: 'GPS', 'QZS', 'IRN', 'BDS' (Klobuchar of LNAV / D1D2), 'GAL' (NeQuick-G), and e.g.
    'QZS_CNVX' or 'BDS_CNVX' (BDGIM, 9 coefficients) for the others. STO keys are the record's type
    ('GPUT', 'IRGP', ...). EOP pole offsets are in rad (rates per s), UT1-UTC in s.
    """
    ion: dict[str, list] = {c: [] for c in ION_COLUMNS}
    sto: dict[str, list] = {c: [] for c in STO_COLUMNS}
    eop: dict[str, list] = {c: [] for c in EOP_COLUMNS}
    for rtype, system, msg, s, ln, la in groups:
        if rtype == "ION":
            spec = _NEQUICK if system == "E" else _BDGIM if (system, msg) == ("C", "CNVX") else _KLOBUCHAR
            n_lines = 2 if system == "E" else 3
        else:
            spec, n_lines = (_STO, 2) if rtype == "STO" else (_EOP, 3)
        label = f"{rtype} {system} {msg}"
        ok, d, _, t_cal = body.take(s + 1, ln - 1, la, n_lines, n_lines, spec, label, with_prn=False)
        if not ok.any():
            continue
        s = s[ok]
        t = to_gpst(t_cal[ok], system)
        sv = _strings(body.mat, s, 6, 9)
        target = ion if rtype == "ION" else sto if rtype == "STO" else eop
        if rtype == "ION":
            key = _ION_KEYS.get((system, msg), f"{_SYSTEM_NAMES.get(system, system)}_{msg}")
            target["key"].append(np.full(s.size, key))
        elif rtype == "STO":
            target["key"].append(_strings(body.mat, s + 1, 24, 42))
            target["utc_id"].append(_strings(body.mat, s + 1, 61, 80))
            t_own = t_cal[ok]
            week = np.floor(t_own / SECONDS_PER_WEEK)
            target["t_ref_sow"].append(t_own - week * SECONDS_PER_WEEK)
            target["week"].append(week - (BDS_WEEK0_GPS_WEEK if system == "C" else 0))
        else:
            for c in ("xp", "yp"):
                d[f"{c}_rad"] = d[f"{c}_rad"] * _ARCSEC
                d[f"{c}_rate_rad_s"] = d[f"{c}_rate_rad_s"] * _ARCSEC / _DAY
                d[f"{c}_accel_rad_s2"] = d[f"{c}_accel_rad_s2"] * _ARCSEC / _DAY**2
            d["dut1_rate_s_s"] = d["dut1_rate_s_s"] / _DAY
            d["dut1_accel_s_s2"] = d["dut1_accel_s_s2"] / _DAY**2
        target["sv"].append(sv)
        target["msg"].append(np.full(s.size, msg))
        target["t_gpst"].append(t)
        for c in target:
            if c in d:
                target[c].append(d[c][ok])
            elif c not in ("key", "sv", "msg", "t_gpst", "utc_id", "t_ref_sow", "week"):
                target[c].append(np.full(s.size, np.nan))
    return ion, sto, eop


def _frame(parts: list[dict[str, NDArray]] | dict[str, list], columns: Sequence[str]) -> pd.DataFrame:
    """Concatenate column dictionaries (or per-column lists of arrays) into one DataFrame."""
    if isinstance(parts, dict):
        if not parts[columns[0]]:
            return empty_frame(columns)
        data = {c: np.concatenate(parts[c]) for c in columns}
    else:
        if not parts:
            return empty_frame(columns)
        data = {c: np.concatenate([p[c] for p in parts]) for c in columns}
    for c in columns:
        data[c] = data[c].astype(object if c in _STR_COLUMNS else np.float64)
    return pd.DataFrame(data, columns=list(columns))


def _tidy(eph: pd.DataFrame, glo: pd.DataFrame, sbas: pd.DataFrame) -> tuple[pd.DataFrame, ...]:
    """Drop records identical in every column (first kept) and sort the tables by satellite and time.

    Records of one satellite, message and toe that differ in any field (transmission time, health, data
    sources, group delays) are all kept.
    """
    eph = eph.drop_duplicates().sort_values(["sv", "toe_gpst"], kind="stable")
    glo = glo.drop_duplicates().sort_values(["sv", "toc_gpst"], kind="stable")
    sbas = sbas.drop_duplicates().sort_values(["sv", "toc_gpst"], kind="stable")
    return tuple(f.reset_index(drop=True) for f in (eph, glo, sbas))


def _first_by_key(records: pd.DataFrame, columns: Sequence[str]) -> dict[str, NDArray]:
    """Return, per key, the named values of the earliest record."""
    out = {}
    for key, rows in records.sort_values("t_gpst", kind="stable").groupby("key", sort=False):
        out[str(key)] = rows.iloc[0][list(columns)].to_numpy(dtype=float)
    return out


def read_nav(path: str | os.PathLike[str]) -> NavData:
    """Read one RINEX 2/3/4 navigation file (plain or gzip) into a :class:`NavData` (SI units, GPS seconds).

    Raises InputError when the file is not a RINEX navigation file, has an unsupported version, or holds
    no usable ephemeris record; skipped records are listed in ``problems``.
    """
    name = os.fspath(path)
    data = _read_bytes(Path(name))
    buf = np.frombuffer(data, np.uint8)
    starts, ends = line_bounds(buf)
    hdr = _parse_header(buf, starts, ends, name)
    first = hdr.n_lines
    mat = fill_rows(buf, starts[first:], ends[first:], WIDTH)
    keep = (mat != 32).any(axis=1)
    body = Body(mat[keep], np.arange(first + 1, starts.size + 1)[keep], name, hdr.major)
    eph_parts, glo_parts, sbas_parts, aux = ephemeris_groups(body, hdr.system)
    ion_cols, sto_cols, eop_cols = _aux_records(body, aux)
    eph, glo, sbas = _tidy(
        _frame(eph_parts, EPH_COLUMNS), _frame(glo_parts, GLO_COLUMNS), _frame(sbas_parts, SBAS_COLUMNS)
    )
    problems = tuple(hdr.problems + body.problems)
    if eph.empty and glo.empty and sbas.empty:
        shown = "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
        raise InputError(f"{name}: no usable navigation record" + (f": {shown}" if shown else ""))
    ion = _frame(ion_cols, ION_COLUMNS).sort_values(["key", "t_gpst"], kind="stable", ignore_index=True)
    sto = _frame(sto_cols, STO_COLUMNS).sort_values(["key", "t_gpst"], kind="stable", ignore_index=True)
    eop = _frame(eop_cols, EOP_COLUMNS).sort_values(["sv", "t_gpst"], kind="stable", ignore_index=True)
    # Header values first; RINEX 4 records (earliest transmission of each key) fill in the rest.
    iono = dict(hdr.iono)
    for key, coef in _first_by_key(ion, [f"c{i}" for i in range(8)]).items():
        if key in ("GPS", "QZS", "IRN", "BDS"):
            iono.setdefault(key, coef)
        elif key == "GAL":
            iono.setdefault(key, coef[:3])
    offsets = dict(hdr.time_offsets)
    for key, (a0, a1, t_ref, week) in _first_by_key(sto, ["a0_s", "a1_s_per_s", "t_ref_sow", "week"]).items():
        offsets.setdefault(key, (float(a0), float(a1), float(t_ref), int(week)))
    return NavData(
        paths=(name,),
        version=hdr.version,
        eph=eph,
        glo=glo,
        iono=iono,
        time_offsets=offsets,
        leap_seconds=hdr.leap_seconds,
        problems=problems,
        sbas=sbas,
        iono_records=ion,
        sto_records=sto,
        eop=eop,
    )


def merge_nav(navs: Sequence[NavData]) -> NavData:
    """Merge several :class:`NavData` into one: tables concatenated, duplicate records dropped, problems kept.

    Header values (iono, time offsets, leap seconds, version) come from the first file that has them.
    """
    navs = list(navs)
    if not navs:
        raise InputError("merge_nav: no navigation data given (expected at least one NavData)")
    eph, glo, sbas = _tidy(
        *(pd.concat([getattr(n, f) for n in navs], ignore_index=True) for f in ("eph", "glo", "sbas"))
    )
    iono: dict[str, np.ndarray] = {}
    offsets: dict[str, tuple[float, float, float, int]] = {}
    for n in navs:
        for k, v in n.iono.items():
            iono.setdefault(k, v)
        for k, v in n.time_offsets.items():
            offsets.setdefault(k, v)

    def records(attr: str, by: list[str]) -> pd.DataFrame:
        frame = pd.concat([getattr(n, attr) for n in navs], ignore_index=True).drop_duplicates(
            ignore_index=True
        )
        return frame.sort_values(by, kind="stable", ignore_index=True)

    return NavData(
        paths=tuple(p for n in navs for p in n.paths),
        version=navs[0].version,
        eph=eph,
        glo=glo,
        iono=iono,
        time_offsets=offsets,
        leap_seconds=next((n.leap_seconds for n in navs if n.leap_seconds is not None), None),
        problems=tuple(p for n in navs for p in n.problems),
        sbas=sbas,
        iono_records=records("iono_records", ["key", "t_gpst"]),
        sto_records=records("sto_records", ["key", "t_gpst"]),
        eop=records("eop", ["sv", "t_gpst"]),
    )
