"""SGP4 mean element sets: reading, checking and writing two-line (TLE) and three-line (3LE) files.

An :class:`ElementSet` holds one set of SGP4 (Kozai) mean elements in the TEME frame, in the units of
the TLE format (degrees, revolutions per day, inverse Earth radii), with the original TLE lines when it
was read from a TLE. :func:`read_tle` checks every line (length, line numbers, checksum, catalogue
numbers, every numeric field and its range) and returns the good records with one
:class:`ElementProblem` per record it skipped, so one bad record never stops the others.

Column layout and checksum rule: CelesTrak, "FAQs: Two-Line Element Set Format" (T.S. Kelso), and
Space-Track's "Alpha-5" note for catalogue numbers above 99999.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import gzip
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sgp4.api import WGS72, Satrec

from kizuna.core.io import atomic_write
from kizuna.errors import InputError

__all__ = [
    "ElementSet", "ElementProblem", "read_tle", "parse_tle", "write_tle", "elements_table", "check_window",
    "tle_checksum", "alpha5_decode", "alpha5_encode", "perigee_apogee_km",
]  # fmt: skip

PathLike = str | os.PathLike[str]

# WGS72 constants of SGP4 (Hoots & Roehrich 1980, Spacetrack Report #3; Vallado et al. 2006).
EARTH_RADIUS_WGS72_KM = 6378.135
_MU_WGS72_KM3_S2 = 398600.8
_J2_WGS72 = 0.001082616
_XKE = 60.0 / math.sqrt(EARTH_RADIUS_WGS72_KM**3 / _MU_WGS72_KM3_S2)
_XPDOTP = 1440.0 / (2.0 * math.pi)  # rev/day per rad/min, as in SGP4.cpp
_DEG2RAD = math.pi / 180.0
_US_PER_DAY = 86_400_000_000
_US_PER_TLE_DIGIT = 864  # 1e-8 day, the last digit of a TLE epoch, is exactly 864 microseconds
_UNIX_ORDINAL = _dt.date(1970, 1, 1).toordinal()

# Checksum: digits count their value, '-' counts 1, everything else 0; the sum modulo 10.
_CHECKSUM_TABLE = bytes((c - 48) if 48 <= c <= 57 else (1 if c == 45 else 0) for c in range(256))
_ALPHA5_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # A=10 ... Z=33, skipping I and O


@dataclass(frozen=True)
class ElementSet:
    """One SGP4 mean element set (TEME, UTC epoch), in TLE units: degrees, rev/day, 1/Earth radii."""

    norad_id: int
    name: str
    intl_designator: str
    classification: str
    epoch: np.datetime64
    mean_motion_rev_day: float
    eccentricity: float
    inclination_deg: float
    raan_deg: float
    arg_perigee_deg: float
    mean_anomaly_deg: float
    bstar_per_earth_radius: float
    mean_motion_dot_rev_day2: float
    mean_motion_ddot_rev_day3: float
    ephemeris_type: int
    element_set_no: int
    rev_at_epoch: int
    line1: str | None = None
    line2: str | None = None

    def satrec(self) -> Satrec:
        """Return a python-sgp4 ``Satrec`` (WGS72, improved mode 'i') for these elements, TEME frame.

        From the original lines with ``Satrec.twoline2rv`` when they are present; otherwise with
        ``Satrec.sgp4init``, feeding it the same numbers, computed the same way, as ``twoline2rv``
        would compute them from these elements written as a TLE, so both give identical states.
        """
        if self.line1 is not None and self.line2 is not None:
            return Satrec.twoline2rv(self.line1, self.line2, WGS72)
        return _satrec_from_fields(self)

    def to_tle_lines(self, *, reformat: bool = False) -> tuple[str, str]:
        """Return the two TLE lines: the original lines if read from a TLE, else formatted from the fields.

        With ``reformat=True`` the lines are always formatted from the fields, in Space-Track's layout
        (zero-padded or Alpha-5 catalogue number, blank for a positive sign, zero exponent fields as
        ``00000-0``), with both checksums. Raises InputError for a value that a TLE cannot hold.
        """
        if not reformat and self.line1 is not None and self.line2 is not None:
            return self.line1, self.line2
        return _format_lines(self)

    @property
    def perigee_km(self) -> float:
        """Perigee altitude above 6378.135 km (km), from the Brouwer mean motion as SGP4 computes it."""
        return float(_altitudes_km(self.mean_motion_rev_day, self.eccentricity, self.inclination_deg)[0])

    @property
    def apogee_km(self) -> float:
        """Apogee altitude above 6378.135 km (km), from the Brouwer mean motion as SGP4 computes it."""
        return float(_altitudes_km(self.mean_motion_rev_day, self.eccentricity, self.inclination_deg)[1])

    @property
    def period_min(self) -> float:
        """Orbital period (minutes) from the Kozai mean motion: 1440 / mean motion in rev/day."""
        return 1440.0 / self.mean_motion_rev_day


@dataclass(frozen=True)
class ElementProblem:
    """One record skipped (or flagged) while reading element sets, with the field and why."""

    source: str
    line: int
    norad_id: int | None
    name: str
    field: str
    message: str


class _Bad(Exception):
    """A record failed one check: ``field`` names it, ``message`` says what was expected."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --------------------------------------------------------------------------------------- small parts


def tle_checksum(line: str) -> int:
    """Return the TLE checksum of the first 68 characters of ``line`` (digits, '-' = 1, modulo 10)."""
    return sum(line[:68].encode("latin-1", "replace").translate(_CHECKSUM_TABLE)) % 10


def alpha5_decode(text: str) -> int:
    """Return the catalogue number of a 5-column TLE field, digits or Alpha-5 ("A0001" = 100001)."""
    s = text.strip()
    if s.isascii() and s.isdigit():
        return int(s)
    if len(s) == 5 and s[0] in _ALPHA5_LETTERS and s[1:].isascii() and s[1:].isdigit():
        return (_ALPHA5_LETTERS.index(s[0]) + 10) * 10000 + int(s[1:])
    raise ValueError(f"{text!r} is not a catalogue number (5 digits, or a letter A-Z but I/O and 4 digits)")


def alpha5_encode(number: int) -> str:
    """Return the 5-column TLE form of a catalogue number: zero-padded digits, Alpha-5 above 99999."""
    if not 0 <= number <= 339999:
        raise ValueError(f"catalogue number {number} outside 0..339999 (the Alpha-5 range)")
    if number < 100000:
        return f"{number:05d}"
    return f"{_ALPHA5_LETTERS[number // 10000 - 10]}{number % 10000:04d}"


def _year_start_days(year: int, _cache: dict[int, int] = {}) -> int:  # noqa: B006
    """Return the days from 1970-01-01 to January 1 of ``year``."""
    days = _cache.get(year)
    if days is None:
        days = _cache[year] = _dt.date(year, 1, 1).toordinal() - _UNIX_ORDINAL
    return days


def _epoch_parts(epoch: np.datetime64) -> tuple[int, int, int]:
    """Return (year, day of year from 1, microseconds into the day) of a UTC epoch."""
    us = int(np.datetime64(epoch, "us").astype(np.int64))
    days, in_day = divmod(us, _US_PER_DAY)
    year = _dt.date.fromordinal(days + _UNIX_ORDINAL).year
    return year, days - _year_start_days(year) + 1, in_day


def _exp_value(field: str, s: str) -> float:
    """Return the value of an exponent field such as ' 84553-4' (0.84553e-4), correctly rounded."""
    sign, mant, esign, edigit = s[0], s[1:6].replace(" ", "0"), s[6], s[7]
    if not (sign in " +-" and mant.isascii() and mant.isdigit() and esign in "+- " and edigit.isdigit()):
        raise _Bad(field, f"{s!r}; expected ±NNNNN±N (a mantissa 0.NNNNN times 10^±N)")
    return float(f"{'-' if sign == '-' else ''}0.{mant}e{'-' if esign == '-' else ''}{edigit}")


def _number(field: str, s: str, lo: float, hi: float, what: str) -> float:
    """Parse a fixed-column decimal number and check lo <= value <= hi."""
    try:
        v = float(s)
    except ValueError:
        raise _Bad(field, f"{s!r} is not a number; expected {what}") from None
    if not lo <= v <= hi:
        raise _Bad(field, f"{s.strip()} is out of range; expected {what}")
    return v


def _integer(field: str, s: str, what: str) -> int:
    """Parse a right-justified integer field (all blanks read as 0)."""
    t = s.strip()
    if not t:
        return 0
    if not (t.isascii() and t.isdigit()):
        raise _Bad(field, f"{s!r} is not a whole number; expected {what}")
    return int(t)


# ------------------------------------------------------------------------------------- parse a record

_LINE1_BLANKS = (1, 8, 17, 32, 43, 52, 61, 63)
_LINE2_BLANKS = (1, 7, 16, 25, 33, 42, 51)


def _parse(line1: str, line2: str, name: str) -> ElementSet:
    """Parse and check one TLE record; raise _Bad naming the first field that fails."""
    for k, (line, digit) in enumerate(((line1, "1"), (line2, "2")), start=1):
        if len(line) != 69:
            raise _Bad(f"line {k} length", f"{len(line)} characters; expected 69 (with the checksum)")
        if line[0] != digit:
            raise _Bad(f"line {k} number", f"column 1 is {line[0]!r}; expected {digit!r}")
        blanks = _LINE1_BLANKS if k == 1 else _LINE2_BLANKS
        for col in blanks:
            if line[col] != " ":
                raise _Bad(f"line {k} layout", f"column {col + 1} is {line[col]!r}; expected a blank")
        if not line[68].isdigit() or int(line[68]) != tle_checksum(line):
            raise _Bad(
                "checksum",
                f"line {k} ends in {line[68]!r}; expected {tle_checksum(line)} "
                "(sum of the digits of columns 1-68, '-' counting 1, modulo 10)",
            )
    try:
        norad = alpha5_decode(line1[2:7])
    except ValueError as exc:
        raise _Bad("catalogue number", str(exc)) from None
    if line2[2:7] != line1[2:7]:
        raise _Bad("line 2 catalogue number", f"{line2[2:7]!r}; expected line 1's {line1[2:7]!r}")
    classification = line1[7]
    if not (classification.isascii() and classification.isalpha()):
        raise _Bad("classification", f"{classification!r}; expected a letter such as U")
    yy, day, frac = line1[18:20], line1[20:23].replace(" ", "0"), line1[24:32].replace(" ", "0")
    ok = yy.isdigit() and day.isdigit() and line1[23] == "." and frac.isdigit() and "000" < day < "367"
    if not ok:
        raise _Bad("epoch", f"{line1[18:32]!r}; expected YYDDD.DDDDDDDD with day of year 001-366")
    year = int(yy) + (1900 if int(yy) >= 57 else 2000)
    us = (_year_start_days(year) + int(day) - 1) * _US_PER_DAY + int(frac) * _US_PER_TLE_DIGIT
    ndot = _number("mean motion derivative", line1[33:43], -1.0, 1.0, "±.NNNNNNNN rev/day^2")
    nddot = _exp_value("mean motion second derivative", line1[44:52])
    bstar = _exp_value("bstar", line1[53:61])
    eph = line1[62]
    if not (eph.isdigit() or eph == " "):
        raise _Bad("ephemeris type", f"{eph!r}; expected one digit (0 for SGP4)")
    elset = _integer("element set number", line1[64:68], "up to 4 digits")
    incl = _number("inclination", line2[8:16], 0.0, 180.0, "degrees in 0..180")
    raan = _number("right ascension of ascending node", line2[17:25], 0.0, 360.0, "degrees in 0..360")
    ecc_digits = line2[26:33].replace(" ", "0")
    if not (ecc_digits.isascii() and ecc_digits.isdigit()):
        raise _Bad("eccentricity", f"{line2[26:33]!r}; expected 7 digits after an implied '0.' (0..1)")
    argp = _number("argument of perigee", line2[34:42], 0.0, 360.0, "degrees in 0..360")
    mo = _number("mean anomaly", line2[43:51], 0.0, 360.0, "degrees in 0..360")
    n = _number("mean motion", line2[52:63], 1e-8, 20.0, "rev/day above 0 and below 20")
    rev = _integer("revolution number", line2[63:68], "up to 5 digits")
    return ElementSet(
        norad, name, line1[9:17].strip(), classification, np.datetime64(us, "us"), n,
        float("0." + ecc_digits), incl, raan, argp, mo, bstar, ndot, nddot, 0 if eph == " " else int(eph),
        elset, rev, line1, line2,
    )  # fmt: skip


# ---------------------------------------------------------------------------------- bulk fast path


def _cols(a: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Integer value of the digit columns start..stop-1 of each row (blanks count 0)."""
    d = a[:, start:stop].astype(np.int64) - 48
    d[d < 0] = 0
    return d @ (10 ** np.arange(stop - start - 1, -1, -1, dtype=np.int64))


def _is(a: np.ndarray, col: int | slice, chars: str, _tables: dict[str, np.ndarray] = {}) -> np.ndarray:  # noqa: B006
    """Whether column(s) ``col`` of each row hold only characters from ``chars``."""
    table = _tables.get(chars)
    if table is None:
        table = _tables[chars] = np.isin(np.arange(256), np.frombuffer(chars.encode(), np.uint8))
    m = table[a[:, col]]
    return m if m.ndim == 1 else m.all(axis=1)


def _right_justified(a: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Whether columns start..stop-1 hold digits after optional leading blanks (at least the last)."""
    digit = (a[:, start:stop] >= 48) & (a[:, start:stop] <= 57)
    blank = a[:, start:stop] == 32
    ok = (digit | blank).all(axis=1) & digit[:, -1]
    return ok & ~(digit[:, :-1] & blank[:, 1:]).any(axis=1)


def _bulk(l1s: list[str], l2s: list[str], names: list[str]) -> list[ElementSet | None]:
    """Parse well-formed 69-column records with array operations; None where the full check is needed.

    Every value is an exact integer divided (or multiplied) by an exact power of ten, which IEEE
    arithmetic rounds correctly, so each equals Python's float() of the same decimal text.
    """
    m = len(l1s)
    a1 = np.frombuffer("".join(l1s).encode("latin-1", "replace"), np.uint8).reshape(m, 69)
    a2 = np.frombuffer("".join(l2s).encode("latin-1", "replace"), np.uint8).reshape(m, 69)
    ck = np.frombuffer(_CHECKSUM_TABLE, np.uint8)
    dig, sign = "0123456789", " +-"
    ok = (a1[:, 0] == 49) & (a2[:, 0] == 50) & (a1[:, 2:7] == a2[:, 2:7]).all(axis=1)
    ok &= (a1[:, list(_LINE1_BLANKS)] == 32).all(axis=1) & (a2[:, list(_LINE2_BLANKS)] == 32).all(axis=1)
    for a in (a1, a2):
        ok &= ck[a[:, :68]].sum(axis=1, dtype=np.int64) % 10 == a[:, 68].astype(np.int64) - 48
    ok &= _right_justified(a1, 2, 7) | (_is(a1, 2, _ALPHA5_LETTERS) & _is(a1, slice(3, 7), dig))
    ok &= _is(a1, 7, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") & _is(a1, slice(18, 23), dig) & (a1[:, 23] == 46)
    ok &= _is(a1, slice(24, 32), dig) & _is(a1, 33, sign) & (a1[:, 34] == 46) & _is(a1, slice(35, 43), dig)
    for c in (44, 53):
        ok &= (
            _is(a1, c, sign) & _is(a1, slice(c + 1, c + 6), dig) & _is(a1, c + 6, "+-") & _is(a1, c + 7, dig)
        )
    ok &= _is(a1, 62, dig + " ") & _right_justified(a1, 64, 68) & _is(a2, slice(26, 33), dig)
    for c in (8, 17, 34, 43):
        ok &= _right_justified(a2, c, c + 3) & (a2[:, c + 3] == 46) & _is(a2, slice(c + 4, c + 8), dig)
    ok &= _right_justified(a2, 52, 54) & (a2[:, 54] == 46) & _is(a2, slice(55, 63), dig)
    ok &= _right_justified(a2, 63, 68) | (a2[:, 63:68] == 32).all(axis=1)
    angles = [(_cols(a2, c, c + 3) * 10000 + _cols(a2, c + 4, c + 8)) / 1e4 for c in (8, 17, 34, 43)]
    n = (_cols(a2, 52, 54) * 100_000_000 + _cols(a2, 55, 63)) / 1e8
    ok &= (angles[0] <= 180.0) & (angles[1] <= 360.0) & (angles[2] <= 360.0) & (angles[3] <= 360.0)
    ok &= (n >= 1e-8) & (n <= 20.0) & (_cols(a1, 20, 23) >= 1) & (_cols(a1, 20, 23) <= 366)
    yy = _cols(a1, 18, 20)
    years = yy + np.where(yy >= 57, 1900, 2000)
    ystart = (years - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
    us = (ystart + _cols(a1, 20, 23) - 1) * _US_PER_DAY + _cols(a1, 24, 32) * _US_PER_TLE_DIGIT
    ndot = np.where(a1[:, 33] == 45, -1.0, 1.0) * (_cols(a1, 35, 43) / 1e8)
    exps = []
    for c in (44, 53):
        e = np.where(a1[:, c + 6] == 45, -1, 1) * (a1[:, c + 7].astype(np.int64) - 48) - 5
        v = np.where(e < 0, _cols(a1, c + 1, c + 6) / 10.0 ** np.maximum(-e, 0), 0.0)
        v = np.where(e >= 0, _cols(a1, c + 1, c + 6) * 10.0 ** np.maximum(e, 0), v)
        exps.append(np.where(a1[:, c] == 45, -v, v))
    first = a1[:, 2].astype(np.int64)
    letter = np.searchsorted(np.frombuffer(_ALPHA5_LETTERS.encode(), np.uint8), first) + 10
    norad = np.where(first >= 65, letter * 10000 + _cols(a1, 3, 7), _cols(a1, 2, 7))
    keep = np.flatnonzero(ok)
    l1k, l2k = [l1s[k] for k in keep], [l2s[k] for k in keep]
    columns = [
        norad[keep].tolist(), [names[k] for k in keep], [x[9:17].strip() for x in l1k], [x[7] for x in l1k],
        list(us[keep].astype("datetime64[us]")), n[keep].tolist(), (_cols(a2, 26, 33)[keep] / 1e7).tolist(),
        *(x[keep].tolist() for x in (*angles, exps[1], ndot, exps[0])),
        *(_cols(a, c0, c1)[keep].tolist() for a, c0, c1 in ((a1, 62, 63), (a1, 64, 68), (a2, 63, 68))),
        l1k, l2k,
    ]  # fmt: skip
    out: list[ElementSet | None] = [None] * m
    for k, row in zip(keep.tolist(), zip(*columns, strict=True), strict=True):
        out[k] = ElementSet(*row)
    return out


def _parse_many(l1s: list[str], l2s: list[str], names: list[str]) -> list[ElementSet | _Bad]:
    """Parse many records: array operations for well-formed ones, the field-by-field check for the rest."""
    full = [k for k in range(len(l1s)) if len(l1s[k]) == 69 and len(l2s[k]) == 69]
    fast = _bulk([l1s[k] for k in full], [l2s[k] for k in full], [names[k] for k in full]) if full else []
    out: list[ElementSet | _Bad | None] = [None] * len(l1s)
    for k, es in zip(full, fast, strict=True):
        out[k] = es
    for k, es in enumerate(out):
        if es is None:
            try:
                out[k] = _parse(l1s[k], l2s[k], names[k])
            except _Bad as exc:
                out[k] = exc
    return out  # type: ignore[return-value]


def parse_tle(line1: str, line2: str, name: str = "") -> ElementSet:
    """Parse and check one TLE record (two lines, trailing blanks ignored); raise InputError if bad."""
    try:
        return _parse(line1.rstrip(), line2.rstrip(), name.strip())
    except _Bad as exc:
        raise InputError(f"TLE {line1[2:7].strip() or '?'}: {exc.field}: {exc.message}") from None


# ------------------------------------------------------------------------------------------- format


def _fmt_exp(field: str, v: float) -> str:
    """Format a value as a TLE exponent field, Space-Track style: ' 84553-4', '-56667-4', ' 00000-0'."""
    if v == 0.0:
        return "-00000-0" if math.copysign(1.0, v) < 0 else " 00000-0"
    s = f"{abs(v):.4e}"
    mant, exp = s[0] + s[2:6], int(s[7:]) + 1
    if exp < -9:
        return " 00000-0"
    if exp > 9:
        raise InputError(f"{field} {v!r} is too large for a TLE (|value| < 1e9)")
    return f"{'-' if v < 0 else ' '}{mant}{'-' if exp < 0 else '+'}{abs(exp)}"


def _fmt_angle(field: str, v: float, hi: float) -> str:
    """Format an angle in degrees as %8.4f, checking 0..hi."""
    if not 0.0 <= v <= hi:
        raise InputError(f"{field} {v!r} deg outside 0..{hi:g} for a TLE")
    return f"{v:8.4f}"


def _format_lines(es: ElementSet) -> tuple[str, str]:
    """Format both TLE lines from the fields (Space-Track layout), with checksums."""
    try:
        sat = alpha5_encode(es.norad_id)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if len(es.intl_designator) > 8 or len(es.classification) != 1:
        raise InputError(f"{sat}: international designator or classification too long for a TLE")
    year, day, in_day = _epoch_parts(es.epoch)
    digits = (in_day + _US_PER_TLE_DIGIT // 2) // _US_PER_TLE_DIGIT
    if digits == 100_000_000:
        day, digits = day + 1, 0
    if not 1957 <= year <= 2056:
        raise InputError(f"{sat}: epoch year {year} outside 1957..2056, the range of a TLE's 2-digit year")
    ndot = f"{es.mean_motion_dot_rev_day2:.8f}"
    if abs(es.mean_motion_dot_rev_day2) >= 1.0 or not math.isfinite(es.mean_motion_dot_rev_day2):
        raise InputError(f"{sat}: mean motion derivative {es.mean_motion_dot_rev_day2!r} needs |value| < 1")
    ndot = "-" + ndot[2:] if ndot[0] == "-" else " " + ndot[1:]  # keeps the sign of -0.0
    ecc = f"{es.eccentricity:.7f}"
    if not 0.0 <= es.eccentricity < 1.0 or ecc[0] != "0":
        raise InputError(f"{sat}: eccentricity {es.eccentricity!r} outside 0..1")
    n = f"{es.mean_motion_rev_day:11.8f}"
    if len(n) != 11 or not es.mean_motion_rev_day > 0:
        raise InputError(f"{sat}: mean motion {es.mean_motion_rev_day!r} rev/day does not fit a TLE")
    if not 0 <= es.ephemeris_type <= 9:
        raise InputError(f"{sat}: ephemeris type {es.ephemeris_type} is not one digit")
    l1 = (
        f"1 {sat}{es.classification} {es.intl_designator:<8} {year % 100:02d}{day:03d}.{digits:08d} "
        f"{ndot} {_fmt_exp('mean motion second derivative', es.mean_motion_ddot_rev_day3)} "
        f"{_fmt_exp('bstar', es.bstar_per_earth_radius)} {es.ephemeris_type} {es.element_set_no % 10000:4d}"
    )
    l2 = (
        f"2 {sat} {_fmt_angle('inclination', es.inclination_deg, 180.0)} "
        f"{_fmt_angle('raan', es.raan_deg, 360.0)} {ecc[2:9]} "
        f"{_fmt_angle('argument of perigee', es.arg_perigee_deg, 360.0)} "
        f"{_fmt_angle('mean anomaly', es.mean_anomaly_deg, 360.0)} {n}{es.rev_at_epoch % 100000:5d}"
    )
    return l1 + str(tle_checksum(l1)), l2 + str(tle_checksum(l2))


# ------------------------------------------------------------------------------------------- SGP4


def _tle_product(v: float) -> float:
    """Return a TLE-precision exponent value as SGP4.cpp forms it: mantissa 0.NNNNN times pow(10, exp)."""
    if v == 0.0 or not math.isfinite(v):
        return v
    s = f"{abs(v):.4e}"
    mant, exp = s[0] + s[2:6], int(s[7:]) + 1
    if float(f"{mant}e{exp - 5}") != abs(v) or not -9 <= exp <= 9:
        return v  # more digits than a TLE holds: use the value itself
    r = float("0." + mant) * 10.0**exp
    return -r if v < 0 else r


def _sgp4_jday(year: int, epochdays: float) -> tuple[float, float]:
    """Julian date (day, fraction) of a TLE epoch exactly as SGP4.cpp's days2mdhms_SGP4 and jday_SGP4."""
    dayofyr = math.floor(epochdays)
    lmonth = (31, 29 if year % 4 == 0 else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    i, inttemp = 1, 0
    while dayofyr > inttemp + lmonth[i - 1] and i < 12:
        inttemp += lmonth[i - 1]
        i += 1
    mon, day = i, dayofyr - inttemp
    temp = (epochdays - dayofyr) * 24.0
    hr = math.floor(temp)
    temp = (temp - hr) * 60.0
    minute = math.floor(temp)
    sec = (temp - minute) * 60.0
    jd = (
        367.0 * year
        - math.floor((7 * (year + math.floor((mon + 9) / 12.0))) * 0.25)
        + math.floor(275 * mon / 9.0)
        + day
        + 1721013.5
    )
    jdfrac = (sec + minute * 60.0 + hr * 3600.0) / 86400.0
    if abs(jdfrac) > 1.0:
        dtt = math.floor(jdfrac)
        jd, jdfrac = jd + dtt, jdfrac - dtt
    return jd, jdfrac


def _satrec_from_fields(es: ElementSet) -> Satrec:
    """Build a Satrec with sgp4init from the fields, matching Satrec.twoline2rv number for number."""
    year, day, in_day = _epoch_parts(es.epoch)
    on_grid = in_day % _US_PER_TLE_DIGIT == 0
    if on_grid:
        epochdays = float(f"{day}.{in_day // _US_PER_TLE_DIGIT:08d}")
    else:
        epochdays = day + in_day / _US_PER_DAY
    jd, jdfrac = _sgp4_jday(year, epochdays)
    sat = Satrec()
    sat.sgp4init(
        WGS72,
        "i",
        es.norad_id,
        (jd + jdfrac) - 2433281.5,
        _tle_product(es.bstar_per_earth_radius),
        es.mean_motion_dot_rev_day2 / (_XPDOTP * 1440.0),
        _tle_product(es.mean_motion_ddot_rev_day3) / (_XPDOTP * 1440.0 * 1440),
        es.eccentricity,
        es.arg_perigee_deg * _DEG2RAD,
        es.inclination_deg * _DEG2RAD,
        es.mean_anomaly_deg * _DEG2RAD,
        es.mean_motion_rev_day / _XPDOTP,
        es.raan_deg * _DEG2RAD,
    )
    sat.jdsatepoch = jd
    sat.jdsatepochF = math.floor(jdfrac * 1e8 + 0.5) / 1e8 if on_grid else in_day / _US_PER_DAY
    sat.epochyr = year % 100
    sat.epochdays = epochdays
    sat.classification = es.classification
    sat.intldesg = es.intl_designator
    sat.ephtype = es.ephemeris_type
    sat.elnum = es.element_set_no
    sat.revnum = es.rev_at_epoch
    return sat


def _altitudes_km(n_rev_day, ecc, incl_deg) -> tuple[np.ndarray, np.ndarray]:
    """Perigee and apogee altitude (km above 6378.135 km), SGP4's initl un-Kozai step, WGS72."""
    n = np.asarray(n_rev_day, dtype=float) / _XPDOTP
    e = np.asarray(ecc, dtype=float)
    cosio = np.cos(np.asarray(incl_deg, dtype=float) * _DEG2RAD)
    omeosq = 1.0 - e * e
    ak = (_XKE / n) ** (2.0 / 3.0)
    d1 = 0.75 * _J2_WGS72 * (3.0 * cosio * cosio - 1.0) / (np.sqrt(omeosq) * omeosq)
    de = d1 / (ak * ak)
    adel = ak * (1.0 - de * de - de * (1.0 / 3.0 + 134.0 * de * de / 81.0))
    de = d1 / (adel * adel)
    a = (n / (1.0 + de) / _XKE) ** (-2.0 / 3.0)
    return (a * (1.0 - e) - 1.0) * EARTH_RADIUS_WGS72_KM, (a * (1.0 + e) - 1.0) * EARTH_RADIUS_WGS72_KM


def perigee_apogee_km(elements: Sequence[ElementSet]) -> tuple[np.ndarray, np.ndarray]:
    """Return arrays of perigee and apogee altitude (km above 6378.135 km) for many element sets."""
    n = np.array([e.mean_motion_rev_day for e in elements], dtype=float)
    ecc = np.array([e.eccentricity for e in elements], dtype=float)
    inc = np.array([e.inclination_deg for e in elements], dtype=float)
    return _altitudes_km(n, ecc, inc)


# --------------------------------------------------------------------------------------- read / write


def _read_text(path: Path) -> str:
    """Return the text of a file (gzip found by its magic bytes; UTF-8, else Latin-1)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputError(f"{path}: damaged gzip file ({exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _source_text(path_or_text: PathLike, source: str | None) -> tuple[str, str]:
    """Return (source name, text) from a path or from the text itself (a line break, or JSON/XML)."""
    if isinstance(path_or_text, str) and (
        "\n" in path_or_text or "\r" in path_or_text or path_or_text.lstrip()[:1] in ("[", "{", "<")
    ):
        return source or "<text>", path_or_text.lstrip("\ufeff")
    path = Path(path_or_text)
    return source or str(path), _read_text(path)


def _nothing_usable(source: str, kind: str, problems: list[ElementProblem]) -> InputError:
    """The error raised when a file gives no usable element set."""
    if not problems:
        return InputError(f"{source}: no {kind} found")
    p = problems[0]
    return InputError(
        f"{source}: no usable element set; {len(problems)} record(s) rejected, the first at line {p.line}"
        f" ({p.field}: {p.message})"
    )


def read_tle(
    path_or_text: PathLike, *, source: str | None = None
) -> tuple[list[ElementSet], list[ElementProblem]]:
    """Read a TLE/3LE file (or text) into element sets (TEME, UTC), with one problem per skipped record.

    Accepts two-line records, three-line records with a "0 NAME" or a bare name line, both mixed, blank
    lines, comment lines starting with '#', Windows line endings and gzip. Raises InputError only when
    the file cannot be read or when no usable element set remains.
    """
    source, text = _source_text(path_or_text, source)
    elements: list[ElementSet] = []
    problems: list[ElementProblem] = []

    def problem(line_no: int, line1: str | None, name: str, field: str, message: str) -> None:
        norad = None
        if line1 is not None:
            try:
                norad = alpha5_decode(line1[2:7])
            except ValueError:
                pass
        problems.append(ElementProblem(source, line_no, norad, name, field, message))

    rows = [(k, t) for k, t in enumerate(map(str.rstrip, text.splitlines()), start=1) if t and t[0] != "#"]
    name: str | None = None
    name_line = 0
    firsts: list[int] = []
    l1s: list[str] = []
    l2s: list[str] = []
    names: list[str] = []
    j, count = 0, len(rows)
    while j < count:
        no, s = rows[j]
        j += 1
        head = s[:2]
        if head == "1 ":
            if j < count and rows[j][1][:2] == "2 ":
                firsts.append(name_line if name is not None else no)
                l1s.append(s)
                l2s.append(rows[j][1])
                names.append(name or "")
                j += 1
            else:
                first = name_line if name is not None else no
                problem(first, s, name or "", "line 2", f"file line {no}: line 1 not followed by a line 2")
            name = None
        elif head == "2 ":
            problem(no, None, name or "", "line 1", f"file line {no}: a line 2 without a line 1 before it")
            name = None
        else:
            if name is not None:
                problem(name_line, None, name, "line 1", "name line not followed by a TLE line 1")
            name = s[2:].strip() if head == "0 " or s == "0" else s.strip()
            name_line = no
    if name is not None:
        problem(name_line, None, name, "line 1", "name line at the end of the file without TLE lines")
    for k, es in enumerate(_parse_many(l1s, l2s, names)):
        if isinstance(es, _Bad):
            problem(firsts[k], l1s[k], names[k], es.field, es.message)
        else:
            elements.append(es)
    problems.sort(key=lambda p: p.line)
    if not elements:
        raise _nothing_usable(source, "TLE records", problems)
    return elements, problems


def write_tle(path: PathLike, elements: Iterable[ElementSet], *, three_line: bool = True) -> Path:
    """Write element sets as a TLE file, atomically; original lines are written back exactly as read.

    With ``three_line`` each record is preceded by a "0 NAME" line (none for an empty name).
    """
    out: list[str] = []
    for es in elements:
        if three_line and es.name:
            out.append(f"0 {es.name}")
        out.extend(es.to_tle_lines())
    return atomic_write(path, "\n".join(out) + "\n" if out else "")


def elements_table(elements: Sequence[ElementSet]) -> pd.DataFrame:
    """Return one row per element set: ids, name, epoch (UTC), the elements, perigee/apogee km, period min."""
    cols = [f.name for f in dataclasses.fields(ElementSet) if f.name not in ("line1", "line2")]
    df = pd.DataFrame([[getattr(e, c) for c in cols] for e in elements], columns=cols)
    df["epoch"] = pd.to_datetime(
        np.array([e.epoch for e in elements], dtype="datetime64[us]") if elements else []
    )
    perigee, apogee = perigee_apogee_km(elements)
    df["perigee_km"] = perigee
    df["apogee_km"] = apogee
    df["period_min"] = 1440.0 / df["mean_motion_rev_day"].to_numpy(dtype=float)
    return df


def check_window(
    elements: Sequence[ElementSet], start: object, stop: object, max_days: float = 30.0
) -> list[ElementProblem]:
    """Return one warning per element set whose epoch (UTC) lies more than ``max_days`` from [start, stop].

    ``start`` and ``stop`` are anything ``numpy.datetime64`` accepts (UTC). The records carry source ""
    and line 0, since element sets do not remember their file; the field is "epoch".
    """
    try:
        t0 = np.datetime64(start, "us")
        t1 = np.datetime64(stop, "us")
    except (ValueError, TypeError) as exc:
        raise InputError(f"window start/stop: expected UTC dates or times ({exc})") from None
    if t1 < t0:
        raise InputError(f"window stop {t1} is before its start {t0}")
    if not max_days >= 0:
        raise InputError(f"max_days {max_days!r}: expected a non-negative number of days")
    if not elements:
        return []
    epochs = np.array([e.epoch for e in elements], dtype="datetime64[us]")
    before = (t0 - epochs).astype(np.int64) / _US_PER_DAY
    after = (epochs - t1).astype(np.int64) / _US_PER_DAY
    out: list[ElementProblem] = []
    for k in np.flatnonzero((before > max_days) | (after > max_days)):
        es = elements[int(k)]
        where = (
            f"{before[k]:.2f} days before the window start {t0}"
            if before[k] > max_days
            else f"{after[k]:.2f} days after the window stop {t1}"
        )
        out.append(
            ElementProblem(
                "",
                0,
                es.norad_id,
                es.name,
                "epoch",
                f"epoch {es.epoch} is {where}; elements more than {max_days:g} days from their epoch "
                "are not trusted",
            )
        )
    return out
