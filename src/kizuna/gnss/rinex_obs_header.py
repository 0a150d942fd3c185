"""Header of RINEX observation files (2.xx, 3.xx, 4.xx) and the RINEX 2 to RINEX 3 observation-code map."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from kizuna.errors import InputError

__all__ = ["GNSS_LETTERS", "Header", "check_first_line", "parse_header", "rinex2_to_rinex3"]

GNSS_LETTERS = "GRECJIS"
_SYSTEM_TIME = {"G": "GPS", "R": "GLO", "E": "GAL", "C": "BDT", "J": "QZS", "I": "IRN", "S": "GPS"}


@dataclass
class Header:
    """Header records of a RINEX observation file that the reader uses."""

    version: float
    file_system: str
    time_system: str
    marker: str = ""
    receiver: str = ""
    antenna: str = ""
    approx_pos_ecef_m: np.ndarray = field(default_factory=lambda: np.full(3, np.nan))
    antenna_delta_hen_m: np.ndarray = field(default_factory=lambda: np.zeros(3))
    interval_s: float = math.nan
    codes_by_system: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rinex2_obs_types: tuple[str, ...] = ()
    glonass_slots: dict[str, int] = field(default_factory=dict)
    scale_factors: list[tuple[str, int, tuple[str, ...]]] = field(default_factory=list)
    n_lines: int = 0
    problems: list[str] = field(default_factory=list)


def _num(text: str, what: str, where: str) -> float:
    """Return a float of a header field, NaN when blank; InputError naming the record when malformed."""
    s = text.strip().replace("D", "E").replace("d", "e")
    if not s:
        return math.nan
    try:
        return float(s)
    except ValueError as exc:
        raise InputError(f"{where}: {what}: expected a number, got {text.strip()!r}") from exc


def _int(text: str, what: str, where: str) -> int:
    """Return an integer header field; InputError naming the record when blank or malformed."""
    try:
        return int(text.strip())
    except ValueError as exc:
        raise InputError(f"{where}: {what}: expected an integer, got {text.strip()!r}") from exc


def _check_version(version: float, where: str, problems: list[str]) -> None:
    """Accept RINEX 2.xx, 3.xx and 4.xx; note minor versions this reader was not written against."""
    major = int(version)
    if major not in (2, 3, 4):
        raise InputError(
            f"{where}: RINEX version {version:.2f} is not supported; "
            "expected 2.10-2.11, 3.00-3.05 or 4.00-4.02"
        )
    known = {2: (2.0, 2.11), 3: (3.0, 3.05), 4: (4.0, 4.02)}[major]
    if not known[0] - 1e-9 <= version <= known[1] + 1e-9:
        problems.append(
            f"{where}: RINEX version {version:.2f} is newer than this reader knows; read as {major}.xx"
        )


def check_first_line(first: str, name: str) -> tuple[float, str, list[str]]:
    """Return the version, file system letter and problems of the first line of a RINEX observation file."""
    if first[60:80].strip() != "RINEX VERSION / TYPE":
        raise InputError(
            f"{name}: line 1: expected 'RINEX VERSION / TYPE' in columns 61-80 of a RINEX file, "
            f"found {first[:80]!r}"
        )
    version = _num(first[0:9], "RINEX version (columns 1-9)", f"{name}: line 1")
    if math.isnan(version):
        raise InputError(f"{name}: line 1: RINEX version (columns 1-9) is blank")
    ftype = first[20:21]
    if ftype != "O":
        kinds = {"N": "navigation", "G": "GLONASS navigation", "H": "SBAS navigation", "M": "meteorological",
                 "C": "clock", "L": "Galileo navigation"}  # fmt: skip
        what = kinds.get(ftype, "unknown")
        raise InputError(
            f"{name}: line 1: RINEX file type {ftype!r} ({what} data) in column 21; "
            "expected 'O' (observation data)"
        )
    problems: list[str] = []
    _check_version(version, f"{name}: line 1", problems)
    return version, first[40:41].strip() or "G", problems


def parse_header(lines: list[str], name: str) -> Header:
    """Return the header records of a RINEX observation file from its header lines (without newlines)."""
    version, fsys, problems = check_first_line(lines[0] if lines else "", name)
    h = Header(version=version, file_system=fsys, time_system="", problems=problems)
    i = 1
    n = len(lines)
    tsys = ""
    v2_types: list[str] = []
    while i < n:
        line = lines[i]
        label = line[60:80].strip()
        where = f"{name}: line {i + 1}"
        if label == "MARKER NAME":
            h.marker = line[:60].strip()
        elif label == "REC # / TYPE / VERS":
            h.receiver = line[20:40].strip()
        elif label == "ANT # / TYPE":
            h.antenna = line[20:40].strip()
        elif label == "APPROX POSITION XYZ":
            h.approx_pos_ecef_m = np.array([_num(line[k : k + 14], label, where) for k in (0, 14, 28)])
        elif label == "ANTENNA: DELTA H/E/N":
            h.antenna_delta_hen_m = np.array([_num(line[k : k + 14], label, where) for k in (0, 14, 28)])
        elif label == "INTERVAL":
            h.interval_s = _num(line[0:10], label, where)
        elif label == "TIME OF FIRST OBS":
            tsys = line[48:51].strip()
        elif label == "SYS / # / OBS TYPES" and version >= 3:
            sys_ = line[0:1]
            count = _int(line[3:6], "number of observation types (columns 4-6)", where)
            codes: list[str] = []
            while True:
                codes += line[7:60].split()
                if len(codes) >= count or i + 1 >= n or lines[i + 1][60:80].strip() != label:
                    break
                if lines[i + 1][0:1].strip():
                    break
                i += 1
                line = lines[i]
            if len(codes) != count:
                raise InputError(
                    f"{where}: {label}: {count} types announced for system {sys_!r}, {len(codes)} found"
                )
            if sys_ == "C" and version < 3.02:
                # RINEX 3.00/3.01 named BeiDou B1 band 1; 3.02 and later name it band 2.
                codes = [c[0] + "2" + c[2] if c[1] == "1" else c for c in codes]
            h.codes_by_system[sys_] = tuple(codes)
        elif label == "# / TYPES OF OBSERV" and version < 3:
            count = _int(line[0:6], "number of observation types (columns 1-6)", where)
            while True:
                v2_types += [line[k : k + 6].strip() for k in range(6, 60, 6) if line[k : k + 6].strip()]
                if len(v2_types) >= count or i + 1 >= n or lines[i + 1][60:80].strip() != label:
                    break
                i += 1
                line = lines[i]
            if len(v2_types) != count:
                raise InputError(f"{where}: {label}: {count} types announced, {len(v2_types)} found")
        elif label == "GLONASS SLOT / FRQ #":
            for k in range(4, 60, 7):
                sat, frq = line[k : k + 3].strip(), line[k + 4 : k + 6].strip()
                if sat and frq:
                    h.glonass_slots[f"R{int(sat[1:]):02d}"] = int(frq)
        elif label == "SYS / SCALE FACTOR":
            types = tuple(line[10:60].split())
            if not line[0:1].strip() and h.scale_factors:  # continuation line of the record before
                sys_, factor, before = h.scale_factors[-1]
                h.scale_factors[-1] = (sys_, factor, before + types)
            else:
                factor = _int(line[2:6], "scale factor (columns 3-6)", where)
                h.scale_factors.append((line[0:1], factor, types))
        elif label == "END OF HEADER":
            break
        i += 1
    h.n_lines = i + 1
    if version < 3:
        if not v2_types:
            raise InputError(f"{name}: header has no '# / TYPES OF OBSERV' record")
        h.rinex2_obs_types = tuple(v2_types)
    elif not h.codes_by_system:
        raise InputError(f"{name}: header has no 'SYS / # / OBS TYPES' record")
    if not tsys:
        tsys = "GPS" if fsys == "M" else _SYSTEM_TIME.get(fsys, "GPS")
    h.time_system = tsys
    return h


# RINEX 2.11 observation types to RINEX 3 codes, following RTKLIB's rinex.c (convcode, version < 2.12).
# BeiDou (RINEX 2.12 drafts only) uses the RINEX 3.02 band numbers: B1 -> 2, B2 -> 7, B3 -> 6.
_V2_BAND_ATTR = {
    "G": {"1": "1C", "2": "2W", "5": "5X"},
    "R": {"1": "1C", "2": "2P"},
    "E": {"1": "1X", "5": "5X", "6": "6X", "7": "7X", "8": "8X"},
    "J": {"1": "1C", "2": "2X", "5": "5X", "6": "6X"},
    "S": {"1": "1C", "5": "5X"},
    "C": {"2": "2I", "6": "6I", "7": "7I"},
}
_V2_SPECIAL = {
    ("G", "P1"): "C1W", ("G", "P2"): "C2W", ("G", "C2"): "C2X",
    ("R", "P1"): "C1P", ("R", "P2"): "C2P", ("R", "C2"): "C2C",
    ("J", "C2"): "C2X", ("C", "C2"): "C2I",
}  # fmt: skip


def rinex2_to_rinex3(obs_type: str, system: str) -> str:
    """Return the RINEX 3 code of a RINEX 2.11 observation type for a system letter ('' if it has none)."""
    if len(obs_type) != 2:
        return ""
    special = _V2_SPECIAL.get((system, obs_type))
    if special:
        return special
    kind, band = obs_type[0], obs_type[1]
    if kind == "P":
        return ""
    if kind not in "CLDS":
        return ""
    attr = _V2_BAND_ATTR.get(system, {}).get(band, "")
    return kind + attr if attr else ""
