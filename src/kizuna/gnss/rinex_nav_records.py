"""Record layouts of RINEX 2/3/4 navigation messages and the fixed-width field decoder that reads them.

A navigation file body is turned into a space-padded byte matrix (one row per line, 80 columns). Every
row is cut into four 19-character fields at columns 4, 23, 42, 61 (RINEX 3/4) or 3, 22, 41, 60 (RINEX 2)
and all fields are converted in one numba pass (Fortran ``D`` exponents accepted, blank fields NaN,
anything else flagged). A record is then a run of rows, and a layout says which (line, field) holds
which quantity, so one record type is decoded for all its records at once by fancy indexing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray

from kizuna.gnss.gtime import BDS_WEEK0_GPS_WEEK, BDT_MINUS_GPST_S, GPS_EPOCH, SECONDS_PER_WEEK, utc_to_gpst

__all__ = [
    "WIDTH",
    "EPH_COLUMNS",
    "GLO_COLUMNS",
    "SBAS_COLUMNS",
    "ION_COLUMNS",
    "STO_COLUMNS",
    "EOP_COLUMNS",
    "Layout",
    "LAYOUTS",
    "Body",
    "line_bounds",
    "fill_rows",
    "parse_fields",
    "field_columns",
    "decode_epochs",
    "ephemeris_groups",
    "to_gpst",
]

WIDTH = 80  # columns kept per line; RINEX navigation lines are at most 80 characters
OK, BLANK, BAD, SLOW = 0, 1, 2, 3  # field status codes of parse_fields

# 10**0 .. 10**22 are exact in float64, so mantissa * or / one of them is correctly rounded (Clinger's
# fast path); other fields are converted by numpy's correctly rounded parser.
_POW10 = np.array([10.0**i for i in range(23)])
_MAX_EXACT_MANTISSA = 2**53


def line_bounds(buf: NDArray[np.uint8]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return the start and end byte offsets of every line of a text buffer (LF or CRLF endings)."""
    nl = np.flatnonzero(buf == 10)
    starts = np.concatenate([[0], nl + 1]).astype(np.int64)
    ends = np.concatenate([nl, [buf.size]]).astype(np.int64)
    if starts[-1] == buf.size:  # the text ends with a newline
        starts, ends = starts[:-1], ends[:-1]
    cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13) if buf.size else np.zeros(0, bool)
    return starts, ends - cr


@numba.njit(cache=True)
def fill_rows(
    buf: NDArray[np.uint8], starts: NDArray[np.int64], ends: NDArray[np.int64], width: int
) -> NDArray[np.uint8]:
    """Return a (n_lines, width) byte matrix of the given lines, padded with blanks and cut at width."""
    n = starts.size
    out = np.full((n, width), 32, np.uint8)
    for r in range(n):
        s = starts[r]
        e = min(ends[r], s + width)
        for j in range(e - s):
            out[r, j] = buf[s + j]
    return out


@numba.njit(cache=True)
def _parse_matrix(
    mat: NDArray[np.uint8],
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    widths: NDArray[np.int64],
    pow10: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.int8]]:
    n = rows.size
    m = cols.size
    vals = np.full((n, m), np.nan)
    status = np.zeros((n, m), np.int8)
    for i in range(n):
        r = rows[i]
        for j in range(m):
            c1 = cols[j] + widths[j]
            k = cols[j]
            while k < c1 and mat[r, k] == 32:
                k += 1
            if k == c1:
                status[i, j] = 1
                continue
            neg = False
            ch = mat[r, k]
            if ch == 45:
                neg = True
                k += 1
            elif ch == 43:
                k += 1
            mant = 0
            nsig = 0
            ndig = 0
            frac = 0
            point = False
            slow = False
            while k < c1:
                ch = mat[r, k]
                if 48 <= ch <= 57:
                    ndig += 1
                    if point:
                        frac += 1
                    if mant > 0 or ch != 48:
                        if nsig < 18:
                            mant = mant * 10 + (ch - 48)
                            nsig += 1
                        else:
                            slow = True
                elif ch == 46 and not point:
                    point = True
                else:
                    break
                k += 1
            bad = ndig == 0
            exp = 0
            if not bad and k < c1 and (ch == 68 or ch == 69 or ch == 100 or ch == 101):
                k += 1
                eneg = False
                if k < c1 and mat[r, k] == 45:
                    eneg = True
                    k += 1
                elif k < c1 and mat[r, k] == 43:
                    k += 1
                nexp = 0
                while k < c1 and 48 <= mat[r, k] <= 57:
                    if exp < 10000:
                        exp = exp * 10 + (mat[r, k] - 48)
                    nexp += 1
                    k += 1
                bad = nexp == 0
                if eneg:
                    exp = -exp
            while k < c1 and mat[r, k] == 32:
                k += 1
            if bad or k != c1:
                status[i, j] = 2
                continue
            p = exp - frac
            if mant == 0:
                v = 0.0
            elif slow or p > 22 or p < -22 or mant > _MAX_EXACT_MANTISSA:
                status[i, j] = 3
                v = mant * 10.0**p
            elif p >= 0:
                v = mant * pow10[p]
            else:
                v = mant / pow10[-p]
            vals[i, j] = -v if neg else v
    return vals, status


def field_text(mat: NDArray[np.uint8], row: int, col: int, width: int) -> str:
    """Return the text of one fixed-width field of the byte matrix (for messages)."""
    return mat[row, col : col + width].tobytes().decode("latin-1")


def parse_fields(
    mat: NDArray[np.uint8], rows: NDArray[np.int64], cols: NDArray[np.int64], widths: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.int8]]:
    """Return the values (NaN where blank or bad) and status codes (OK/BLANK/BAD) of fixed-width fields.

    ``rows`` index the byte matrix, ``cols`` and ``widths`` give each field's first column and width.
    Fields outside the fast exact path are converted by numpy's correctly rounded parser, so every value
    equals Python's ``float`` of the field with ``D`` replaced by ``E``.
    """
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    cols = np.ascontiguousarray(cols, dtype=np.int64)
    widths = np.ascontiguousarray(widths, dtype=np.int64)
    vals, status = _parse_matrix(mat, rows, cols, widths, _POW10)
    ii, jj = np.nonzero(status == SLOW)
    if ii.size:
        for j in np.unique(jj):
            sel = jj == j
            w = int(widths[j])
            text = mat[rows[ii[sel]][:, None], cols[j] + np.arange(w)[None, :]].copy()
            text[(text == 68) | (text == 100) | (text == 101)] = 69
            vals[ii[sel], j] = np.ascontiguousarray(text).view(f"S{w}").ravel().astype(np.float64)
        status[ii, jj] = OK
    return vals, status


def field_columns(major: int) -> NDArray[np.int64]:
    """Return the first columns of the four 19-character fields of a RINEX 2 (3, 22, ...) or 3/4 line."""
    first = 3 if major == 2 else 4
    return np.array([first, first + 19, first + 38, first + 57], dtype=np.int64)


# Epoch fields: (first column, width) of PRN, year, month, day, hour, minute, second.
_EPOCH_V2 = ((0, 2), (2, 3), (5, 3), (8, 3), (11, 3), (14, 3), (17, 5))
_EPOCH_V3 = ((1, 2), (4, 4), (8, 3), (11, 3), (14, 3), (17, 3), (20, 3))
_DAYS_1970_TO_GPS_EPOCH = 3657  # 1970-01-01 to 1980-01-06


def _days_from_civil(y: NDArray[np.int64], m: NDArray[np.int64], d: NDArray[np.int64]) -> NDArray[np.int64]:
    """Return days since 1970-01-01 of proleptic Gregorian dates (years >= 1)."""
    y = y - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def decode_epochs(
    mat: NDArray[np.uint8], rows: NDArray[np.int64], major: int, with_prn: bool = True
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.bool_]]:
    """Return PRN, calendar seconds since 1980-01-06T00:00 (in the record's own time scale) and a validity
    mask of epoch lines (RINEX 2: ``PRN YY MM DD HH MM SS.S``; RINEX 3/4: ``SNN YYYY MM DD HH MM SS``)."""
    spec = _EPOCH_V2 if major == 2 else _EPOCH_V3
    cols = np.array([c for c, _ in spec], dtype=np.int64)
    widths = np.array([w for _, w in spec], dtype=np.int64)
    vals, status = parse_fields(mat, rows, cols, widths)
    prn_v, year, month, day, hour, minute, sec = vals.T
    ok = np.all(status[:, 1:] == OK, axis=1)
    if with_prn:
        ok &= status[:, 0] == OK
        ok &= (prn_v >= 1) & (prn_v <= 99) & (prn_v == np.round(prn_v))
    ints = np.stack([year, month, day, hour, minute])
    with np.errstate(invalid="ignore"):
        ok &= np.all(ints == np.round(ints), axis=0)
        if major == 2:
            year = np.where(year < 80, year + 2000, np.where(year < 100, year + 1900, year))
        ok &= (year >= 1980) & (year <= 2200) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)
        ok &= (hour >= 0) & (hour <= 24) & (minute >= 0) & (minute <= 59) & (sec >= 0) & (sec < 61)
    y = np.where(ok, year, 1980).astype(np.int64)
    mo = np.where(ok, month, 1).astype(np.int64)
    d = np.where(ok, day, 6).astype(np.int64)
    days = _days_from_civil(y, mo, d) - _DAYS_1970_TO_GPS_EPOCH
    t = days * 86400.0 + np.where(ok, hour * 3600.0 + minute * 60.0 + sec, 0.0)
    prn = (
        np.where(ok, np.nan_to_num(prn_v), 0).astype(np.int64) if with_prn else np.zeros(rows.size, np.int64)
    )
    return prn, np.where(ok, t, np.nan), ok


@dataclass(frozen=True)
class Layout:
    """Where each quantity of one navigation record type sits: name -> (line in record, field in line).

    Line 0 is the epoch line, whose fields 1..3 are the clock terms; ``n_lines`` lines are required and up
    to ``max_lines`` accepted (GLONASS records of RINEX 3.05/4 carry an optional fifth line).
    """

    kind: str  # 'kepler', 'cnav' (GPS/QZSS CNAV/CNV2: toe = toc), 'glo' or 'sbas'
    n_lines: int
    fields: dict[str, tuple[int, int]]
    max_lines: int = 0

    @property
    def most_lines(self) -> int:
        """Return the largest number of lines a record of this layout may have."""
        return max(self.n_lines, self.max_lines)


_KEPLER = {
    "af0": (0, 1), "af1": (0, 2), "af2": (0, 3),
    "crs": (1, 1), "delta_n": (1, 2), "m0": (1, 3),
    "cuc": (2, 0), "e": (2, 1), "cus": (2, 2), "sqrt_a": (2, 3),
    "cic": (3, 1), "omega0": (3, 2), "cis": (3, 3),
    "i0": (4, 0), "crc": (4, 1), "omega": (4, 2), "omega_dot": (4, 3),
    "idot": (5, 0),
}  # fmt: skip
_LEGACY = {
    **_KEPLER,
    "iode": (1, 0),
    "toe_sow": (3, 0),
    "week": (5, 2),
    "accuracy_m": (6, 0),
    "health": (6, 1),
}
_MODERN = {**_KEPLER, "adot": (1, 0), "delta_n_dot": (5, 1)}
_MOTION = {"x_m": (1, 0), "vx_m_s": (1, 1), "ax_m_s2": (1, 2), "health": (1, 3),
           "y_m": (2, 0), "vy_m_s": (2, 1), "ay_m_s2": (2, 2),
           "z_m": (3, 0), "vz_m_s": (3, 1), "az_m_s2": (3, 2)}  # fmt: skip

# RINEX 3.05 / 4.00 appendix tables; keys are (system letter, message type). RINEX 2/3 records use the
# LNAV/INAV/D1/FDMA/SBAS layouts of their system.
LAYOUTS: dict[tuple[str, str], Layout] = {
    ("G", "LNAV"): Layout("kepler", 8, {**_LEGACY, "tgd_s": (6, 2), "iodc": (6, 3), "ttm_s": (7, 0),
                                        "fit_h": (7, 1)}),
    ("G", "CNAV"): Layout("cnav", 9, {**_MODERN, "ura_ed": (6, 0), "health": (6, 1), "tgd_s": (6, 2),
                                      "ttm_s": (8, 0)}),
    ("G", "CNV2"): Layout("cnav", 10, {**_MODERN, "ura_ed": (6, 0), "health": (6, 1), "tgd_s": (6, 2),
                                       "ttm_s": (9, 0)}),
    ("E", "INAV"): Layout("kepler", 8, {**_LEGACY, "data_sources": (5, 1), "tgd_s": (6, 2), "tgd2_s": (6, 3),
                                        "ttm_s": (7, 0)}),
    ("C", "D1"): Layout("kepler", 8, {**_LEGACY, "tgd_s": (6, 2), "tgd2_s": (6, 3), "ttm_s": (7, 0),
                                      "iodc": (7, 1)}),
    ("C", "CNV1"): Layout("kepler", 10, {**_MODERN, "toe_sow": (3, 0), "tgd_s": (7, 2), "tgd2_s": (7, 3),
                                         "health": (8, 1), "iodc": (8, 3), "ttm_s": (9, 0), "iode": (9, 3)}),
    ("C", "CNV3"): Layout("kepler", 9, {**_MODERN, "toe_sow": (3, 0), "health": (7, 1), "tgd_s": (7, 3),
                                        "ttm_s": (8, 0)}),
    ("I", "LNAV"): Layout("kepler", 8, {**_LEGACY, "tgd_s": (6, 2), "ttm_s": (7, 0)}),
    ("I", "L1NV"): Layout("kepler", 9, {**_MODERN, "toe_sow": (3, 0), "accuracy_m": (6, 0), "health": (6, 1),
                                        "tgd_s": (6, 2), "ttm_s": (8, 0), "week": (8, 1)}),
    ("R", "FDMA"): Layout("glo", 4, {**_MOTION, "clk_bias_s": (0, 1), "gamma_n": (0, 2), "t_frame_s": (0, 3),
                                     "freq_num": (2, 3), "age_d": (3, 3), "status_flags": (4, 0),
                                     "delay_l1l2_s": (4, 1), "urai": (4, 2), "health_flags": (4, 3)},
                          max_lines=5),
    ("S", "SBAS"): Layout("sbas", 4, {**_MOTION, "af0": (0, 1), "af1": (0, 2), "ttm_s": (0, 3),
                                      "accuracy_m": (2, 3), "iodn": (3, 3)}),
}  # fmt: skip
LAYOUTS[("J", "LNAV")] = LAYOUTS[("G", "LNAV")]
LAYOUTS[("J", "CNAV")] = LAYOUTS[("G", "CNAV")]
LAYOUTS[("J", "CNV2")] = LAYOUTS[("G", "CNV2")]
LAYOUTS[("E", "FNAV")] = LAYOUTS[("E", "INAV")]
LAYOUTS[("C", "D2")] = LAYOUTS[("C", "D1")]
# B-CNAV1 and B-CNAV2 differ only in which line-7 group delays are spare (ISC B1Cd or ISC B2ad).
LAYOUTS[("C", "CNV2")] = LAYOUTS[("C", "CNV1")]

EPH_COLUMNS = (
    "sv", "system", "msg", "toc_gpst", "af0", "af1", "af2", "iode", "crs", "delta_n", "m0", "cuc", "e",
    "cus", "sqrt_a", "toe_sow", "cic", "omega0", "cis", "i0", "crc", "omega", "omega_dot", "idot", "week",
    "toe_gpst", "accuracy_m", "health", "tgd_s", "tgd2_s", "iodc", "data_sources", "ttm_s", "fit_h", "adot",
    "delta_n_dot",
)  # fmt: skip
GLO_COLUMNS = (
    "sv", "toc_gpst", "clk_bias_s", "gamma_n", "t_frame_s", "x_m", "y_m", "z_m", "vx_m_s", "vy_m_s",
    "vz_m_s", "ax_m_s2", "ay_m_s2", "az_m_s2", "health", "freq_num", "age_d", "status_flags",
    "delay_l1l2_s", "urai", "health_flags",
)  # fmt: skip
SBAS_COLUMNS = (
    "sv", "toc_gpst", "af0", "af1", "ttm_s", "x_m", "y_m", "z_m", "vx_m_s", "vy_m_s", "vz_m_s", "ax_m_s2",
    "ay_m_s2", "az_m_s2", "health", "accuracy_m", "iodn",
)  # fmt: skip
ION_COLUMNS = ("key", "sv", "msg", "t_gpst", *(f"c{i}" for i in range(9)), "region")
STO_COLUMNS = (
    "key", "sv", "msg", "t_gpst", "t_ref_sow", "week", "ttm_s", "a0_s", "a1_s_per_s", "a2_s_per_s2", "utc_id",
)  # fmt: skip
EOP_COLUMNS = (
    "sv", "msg", "t_gpst", "ttm_s", "xp_rad", "xp_rate_rad_s", "xp_accel_rad_s2", "yp_rad", "yp_rate_rad_s",
    "yp_accel_rad_s2", "dut1_s", "dut1_rate_s_s", "dut1_accel_s_s2",
)  # fmt: skip

_KM = ("x_m", "y_m", "z_m", "vx_m_s", "vy_m_s", "vz_m_s", "ax_m_s2", "ay_m_s2", "az_m_s2")
_BDS_GEO_PRNS = [1, 2, 3, 4, 5, 59, 60, 61, 62, 63]  # BeiDou GEO satellites broadcast D2
_RINEX3_MSG = {"G": "LNAV", "J": "LNAV", "I": "LNAV", "E": "INAV", "C": "D1", "R": "FDMA", "S": "SBAS"}
_WEEK = SECONDS_PER_WEEK
_BDS_WEEK0 = BDS_WEEK0_GPS_WEEK
_BDT_LAG_S = -BDT_MINUS_GPST_S  # GPST - BDT = 14 s


class Body:
    """The record lines of one file as a byte matrix, its 19-character fields, and the problems found."""

    def __init__(self, mat: NDArray[np.uint8], lineno: NDArray[np.int64], name: str, major: int) -> None:
        self.mat = mat
        self.lineno = lineno
        self.name = name
        self.major = major
        self.cols = field_columns(major)
        self.vals, self.status = parse_fields(mat, np.arange(mat.shape[0]), self.cols, np.full(4, 19))
        self._problems: list[tuple[int, str]] = []

    def text(self, row: int) -> str:
        """Return one body line without trailing blanks."""
        return self.mat[row].tobytes().decode("latin-1").rstrip()

    def note(self, row: int, what: str) -> None:
        """Record a problem at the file line of a body row."""
        line = int(self.lineno[row])
        self._problems.append((line, f"{self.name}:{line}: {what}"))

    @property
    def problems(self) -> list[str]:
        """Return the problems found so far, in file line order."""
        return [text for _, text in sorted(self._problems, key=lambda p: p[0])]

    def take(
        self,
        rows: NDArray[np.int64],
        avail: NDArray[np.int64],
        last: NDArray[np.bool_],
        n_lines: int,
        max_lines: int,
        spec: dict[str, tuple[int, int]],
        what: str,
        with_prn: bool = True,
    ) -> tuple[NDArray[np.bool_], dict[str, NDArray[np.float64]], NDArray[np.int64], NDArray[np.float64]]:
        """Decode the records whose epoch lines are ``rows`` (``avail`` lines each, ``last``: runs to EOF).

        Returns the mask of usable records, the fields named in ``spec`` (NaN where blank or absent), the
        PRN and the epoch in calendar seconds since 1980-01-06. Unusable records are named in ``problems``.
        """
        n_rows = self.mat.shape[0]
        ok = (avail >= n_lines) & (avail <= max_lines)
        for i in np.nonzero(~ok)[0]:
            if avail[i] < n_lines and last[i]:
                self.note(
                    rows[i],
                    f"{what} record cut short at end of file ({avail[i]} of {n_lines} lines); skipped",
                )
            else:
                self.note(rows[i], f"{what} record has {avail[i]} lines, expected {n_lines}; skipped")
        prn, t_cal, ok_ep = decode_epochs(self.mat, rows, self.major, with_prn)
        for i in np.nonzero(ok & ~ok_ep)[0]:
            self.note(
                rows[i], f"{what} record epoch {self.text(rows[i])[:23]!r} is not a valid epoch; skipped"
            )
        ok &= ok_ep
        lines = np.arange(max_lines)
        idx = np.minimum(rows[:, None] + lines[None, :], n_rows - 1)
        present = lines[None, :] < avail[:, None]
        where = sorted(spec.values())
        li = np.array([w[0] for w in where])
        fi = np.array([w[1] for w in where])
        bad = (self.status[idx[:, li], fi[None, :]] == BAD) & present[:, li]
        bad_rec = bad.any(axis=1)
        for i in np.nonzero(ok & bad_rec)[0]:
            k = int(np.argmax(bad[i]))
            row = int(idx[i, li[k]])
            text = field_text(self.mat, row, int(self.cols[fi[k]]), 19)
            self.note(row, f"{what} record field {fi[k] + 1} {text!r} is not a number; skipped")
        ok &= ~bad_rec
        out = {
            key: np.where(present[:, l_], self.vals[idx[:, l_], f_], np.nan) for key, (l_, f_) in spec.items()
        }
        return ok, out, prn, t_cal


def _sv_names(letter: int, prn: NDArray[np.int64]) -> NDArray[np.str_]:
    """Return 'G01'-style satellite names of one system letter (byte value) and PRNs."""
    b = np.empty((prn.size, 3), np.uint8)
    b[:, 0] = letter
    b[:, 1] = 48 + prn // 10 % 10
    b[:, 2] = 48 + prn % 10
    return b.view("S3").ravel().astype(str)


def to_gpst(t_cal: NDArray[np.float64], system: str) -> NDArray[np.float64]:
    """Return GPS seconds of epochs written in a system's own time (BDT for C, UTC for R, else GPST)."""
    if system == "C":
        return t_cal + _BDT_LAG_S
    if system == "R":
        return utc_to_gpst(GPS_EPOCH + np.round(np.nan_to_num(t_cal) * 1e9).astype("m8[ns]"))
    return t_cal


def _cnav_ura_m(index: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return the nominal URA_ED in metres of CNAV URA_ED indices (IS-GPS-200 30.3.3.1.1.4; 15: NaN)."""
    with np.errstate(invalid="ignore", over="ignore"):
        ura = np.where(index <= 6, 2.0 ** (1.0 + index / 2.0), 2.0 ** (index - 2.0))
        return np.where((index >= 15) | (index < -16), np.nan, ura)


def _kepler_columns(
    d: dict[str, NDArray[np.float64]], system: str, layout: Layout, toc: NDArray[np.float64]
) -> dict[str, NDArray[np.float64]]:
    """Return the numeric ``eph`` columns of one group of Keplerian records (toe_gpst, week, fit, URA)."""
    nan = np.full(toc.size, np.nan)
    out = {k: d.get(k, nan) for k in EPH_COLUMNS[3:]}
    bdt = system == "C"
    t_own = toc - _BDT_LAG_S if bdt else toc
    week_own = np.floor(t_own / _WEEK)
    if layout.kind == "cnav":  # GPS/QZSS CNAV and CNAV-2 give no toe: it equals toc (IS-GPS-200 30.3.3.1.1)
        out["toe_sow"] = t_own - week_own * _WEEK
    # Weeks as written (BDT weeks for C); where a record carries none, the week of toc.
    week = np.where(np.isnan(out["week"]), week_own - (_BDS_WEEK0 if bdt else 0), out["week"])
    out["week"] = week
    base = (week + (_BDS_WEEK0 if bdt else 0)) * _WEEK + out["toe_sow"] + (_BDT_LAG_S if bdt else 0.0)
    # Some writers pair toe with the week of toc: shift toe to within half a week of toc.
    out["toe_gpst"] = base + np.round((toc - base) / _WEEK) * _WEEK
    out["toc_gpst"] = toc
    if "ura_ed" in d:
        out["accuracy_m"] = _cnav_ura_m(d["ura_ed"])
    if system in ("G", "J") and layout.kind == "kepler":
        fit = out["fit_h"]
        # GPS writes hours, 0 when not known: the 4 h curve fit of IS-GPS-200 20.3.4.4. QZSS writes the
        # fit interval flag (IS-QZSS-PNT): 0 = 2 hours, 1 = more than 2 hours (length not given: NaN).
        if system == "G":
            out["fit_h"] = np.where(fit == 0.0, 4.0, fit)
        else:
            out["fit_h"] = np.where(fit == 0.0, 2.0, np.where(fit == 1.0, np.nan, fit))
    return out


def _legacy_msgs(system: str, prn: NDArray[np.int64], d: dict[str, NDArray[np.float64]]) -> NDArray[np.str_]:
    """Return message types of RINEX 2/3 records: Galileo from the data sources, BeiDou D2 for GEO PRNs."""
    if system == "E":
        ds = np.nan_to_num(d["data_sources"]).astype(np.int64)
        return np.where((ds & 0b101) != 0, "INAV", np.where((ds & 0b010) != 0, "FNAV", ""))
    if system == "C":
        return np.where(np.isin(prn, _BDS_GEO_PRNS), "D2", "D1")
    return np.full(prn.size, _RINEX3_MSG[system])


def ephemeris_groups(
    body: Body, rinex2_system: str
) -> tuple[list[dict[str, NDArray]], list[dict[str, NDArray]], list[dict[str, NDArray]], list[tuple]]:
    """Split the body into records and decode them group by group (one record type at a time).

    Returns the column dictionaries of Keplerian, GLONASS and SBAS records and, for RINEX 4, the
    (type, system, message, marker rows, lengths, last) of each STO/ION/EOP group.
    """
    mat, major = body.mat, body.major
    n_rows = mat.shape[0]
    is_start = mat[:, 0] == ord(">") if major == 4 else (mat[:, :3] != 32).any(axis=1)
    starts = np.nonzero(is_start)[0]
    if n_rows and (starts.size == 0 or starts[0] > 0):
        body.note(0, f"{int(starts[0]) if starts.size else n_rows} line(s) before the first record ignored")
    lengths = np.diff(np.append(starts, n_rows))
    last = starts + lengths == n_rows
    if major == 4:
        key = np.ascontiguousarray(
            np.concatenate([mat[starts, 2:5], mat[starts, 6:7], mat[starts, 10:14]], axis=1)
        )
        keys, inverse = np.unique(key.view("S8").ravel(), return_inverse=True)
    elif major == 3:
        keys, inverse = np.unique(np.ascontiguousarray(mat[starts, 0]).view("S1"), return_inverse=True)
    else:
        keys, inverse = np.array([rinex2_system.encode()]), np.zeros(starts.size, np.int64)
    eph: list[dict[str, NDArray]] = []
    glo: list[dict[str, NDArray]] = []
    sbas: list[dict[str, NDArray]] = []
    aux: list[tuple] = []
    for g, kb in enumerate(keys):
        sel = inverse.ravel() == g
        s, ln, la = starts[sel], lengths[sel], last[sel]
        k = kb.decode("latin-1")
        if major == 4:
            rtype, system, msg = k[:3], k[3], k[4:].strip()
            if rtype in ("STO", "ION", "EOP"):
                aux.append((rtype, system, msg, s, ln, la))
                continue
            if rtype != "EPH":
                for r in s:
                    body.note(r, f"unknown record type {body.text(r)[:14]!r}; skipped")
                continue
            rows, avail = s + 1, ln - 1
        else:
            system, msg = k, _RINEX3_MSG.get(k, "")
            rows, avail = s, ln
        layout = LAYOUTS.get((system, msg))
        if layout is None:
            what = f"message type {system} {msg!r}" if major == 4 else f"satellite system {system!r}"
            for r in s:
                body.note(r, f"unknown {what}; record skipped")
            continue
        label = f"{system} {msg}"
        ok, d, prn, t_cal = body.take(
            rows, avail, la, layout.n_lines, layout.most_lines, layout.fields, label
        )
        if major == 4:  # the epoch line's system letter must be the one of its '> EPH' line
            same = mat[rows, 0] == ord(system)
            for i in np.nonzero(ok & ~same)[0]:
                body.note(rows[i], f"{label} record epoch line starts with {chr(mat[rows[i], 0])!r}; skipped")
            ok &= same
        if not ok.any():
            continue
        d = {name: v[ok] for name, v in d.items()}
        prn = prn[ok]
        sv = _sv_names(ord(system), prn)
        toc = to_gpst(t_cal[ok], system)
        if layout.kind in ("glo", "sbas"):
            for c in _KM:  # RINEX gives km, km/s, km/s^2
                d[c] = d[c] * 1000.0
            if layout.kind == "glo":
                unknown = d["delay_l1l2_s"] == 0.999999999999e09  # RINEX 3.05: .999999999999E+09 if unknown
                d["delay_l1l2_s"] = np.where(unknown, np.nan, d["delay_l1l2_s"])
                glo.append({"sv": sv, "toc_gpst": toc, **d})
            else:
                sbas.append({"sv": sv, "toc_gpst": toc, **d})
            continue
        msgs = np.full(prn.size, msg) if major == 4 else _legacy_msgs(system, prn, d)
        eph.append(
            {
                "sv": sv,
                "system": np.full(prn.size, system),
                "msg": msgs,
                **_kepler_columns(d, system, layout, toc),
            }
        )
    return eph, glo, sbas, aux
