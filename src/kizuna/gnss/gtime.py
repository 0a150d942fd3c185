"""GNSS time scales: GPS time as continuous seconds, weeks and seconds of week, and the offsets of the
other constellations' scales and of UTC.

Inside ``kizuna.gnss`` every instant is ``t_gpst``: float seconds of GPS time since the GPS epoch
1980-01-06T00:00:00 GPST (float64 keeps 0.1 microsecond to 2100). Epoch tags read from files stay
``datetime64[ns]`` in the file's own time system until converted here once.

Offsets (each scale's ICD): QZSST, GST and IRNSST are steered to GPST (their sub-microsecond offsets are
broadcast and ignored here); BDT = GPST - 14 s; GLONASS time = UTC(SU) + 3 h, and RINEX 3/4 give GLONASS
epochs in UTC.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from kizuna.errors import InputError

__all__ = [
    "GPS_EPOCH",
    "SECONDS_PER_WEEK",
    "BDT_MINUS_GPST_S",
    "BDS_WEEK0_GPS_WEEK",
    "GST_WEEK0_GPS_WEEK",
    "datetime64_to_gpst",
    "gpst_to_datetime64",
    "week_tow_to_gpst",
    "gpst_to_week_tow",
    "leap_seconds",
    "utc_to_gpst",
    "gpst_to_utc",
    "system_to_gpst",
    "parse_date",
]

GPS_EPOCH = np.datetime64("1980-01-06T00:00:00", "ns")
SECONDS_PER_WEEK = 604_800.0
# BeiDou time started at 2006-01-01T00:00:00 UTC, when GPST - UTC was 14 s (BDS-SIS-ICD-B1I 3.0, 4.2).
BDT_MINUS_GPST_S = -14.0
BDS_WEEK0_GPS_WEEK = 1356
# Galileo System Time week 0 began at GPS week 1024 (Galileo OS SIS ICD 2.0, 5.1.2); RINEX gives
# Galileo weeks already continuous with GPS weeks.
GST_WEEK0_GPS_WEEK = 1024

# GPST - UTC in seconds from each date on (IERS Bulletin C; last change 2017-01-01, none announced to 2026).
_LEAP_TABLE = [
    ("1981-07-01", 1),
    ("1982-07-01", 2),
    ("1983-07-01", 3),
    ("1985-07-01", 4),
    ("1988-01-01", 5),
    ("1990-01-01", 6),
    ("1991-01-01", 7),
    ("1992-07-01", 8),
    ("1993-07-01", 9),
    ("1994-07-01", 10),
    ("1996-01-01", 11),
    ("1997-07-01", 12),
    ("1999-01-01", 13),
    ("2006-01-01", 14),
    ("2009-01-01", 15),
    ("2012-07-01", 16),
    ("2015-07-01", 17),
    ("2017-01-01", 18),
]
_LEAP_UTC_S = np.array(
    [(np.datetime64(d, "ns") - GPS_EPOCH) / np.timedelta64(1, "s") for d, _ in _LEAP_TABLE], dtype=float
)
_LEAP_VALUE_S = np.array([n for _, n in _LEAP_TABLE], dtype=float)


def datetime64_to_gpst(t: ArrayLike) -> NDArray[np.float64]:
    """Return seconds since the GPS epoch of datetime64 instants that are already tagged in GPS time."""
    tt = np.asarray(t, dtype="datetime64[ns]")
    return (tt - GPS_EPOCH).astype(np.int64) * 1e-9


def gpst_to_datetime64(t_gpst: ArrayLike) -> NDArray[np.datetime64]:
    """Return datetime64[ns] GPS-time tags of seconds since the GPS epoch (rounded to the nanosecond)."""
    ns = np.round(np.asarray(t_gpst, dtype=float) * 1e9).astype(np.int64)
    return GPS_EPOCH + ns.astype("timedelta64[ns]")


def week_tow_to_gpst(week: ArrayLike, tow_s: ArrayLike) -> NDArray[np.float64]:
    """Return continuous GPS seconds of a GPS week number (no rollover) and seconds of week."""
    return np.asarray(week, dtype=float) * SECONDS_PER_WEEK + np.asarray(tow_s, dtype=float)


def gpst_to_week_tow(t_gpst: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Return the GPS week number (no rollover) and seconds of week of continuous GPS seconds."""
    t = np.asarray(t_gpst, dtype=float)
    week = np.floor(t / SECONDS_PER_WEEK).astype(np.int64)
    return week, t - week * SECONDS_PER_WEEK


def leap_seconds(t_gpst: ArrayLike) -> NDArray[np.float64]:
    """Return GPST - UTC in seconds at GPS instants (0 before 1981-07-01)."""
    t = np.asarray(t_gpst, dtype=float)
    # A leap second takes effect at the UTC instant, which is GPST instant + the new offset - 1.
    i = np.searchsorted(_LEAP_UTC_S + _LEAP_VALUE_S - 1.0, t, side="right") - 1
    return np.where(i >= 0, _LEAP_VALUE_S[np.clip(i, 0, None)], 0.0)


def utc_to_gpst(t_utc: ArrayLike) -> NDArray[np.float64]:
    """Return continuous GPS seconds of UTC instants given as datetime64."""
    s = datetime64_to_gpst(t_utc)  # seconds of UTC counted from the GPS epoch's calendar instant
    i = np.searchsorted(_LEAP_UTC_S, s, side="right") - 1
    return s + np.where(i >= 0, _LEAP_VALUE_S[np.clip(i, 0, None)], 0.0)


def gpst_to_utc(t_gpst: ArrayLike) -> NDArray[np.datetime64]:
    """Return UTC datetime64[ns] of continuous GPS seconds."""
    t = np.asarray(t_gpst, dtype=float)
    return gpst_to_datetime64(t - leap_seconds(t))


def system_to_gpst(t_system: ArrayLike, system: str) -> NDArray[np.float64]:
    """Return GPS seconds of datetime64 epochs in a constellation's own time (RINEX letter G/J/E/C/I/R/S).

    GLONASS (R) epochs are UTC as RINEX 3 and 4 write them; BeiDou (C) epochs are BDT.
    """
    if system in ("G", "J", "E", "I", "S"):
        return datetime64_to_gpst(t_system)
    if system == "C":
        return datetime64_to_gpst(t_system) - BDT_MINUS_GPST_S
    if system == "R":
        return utc_to_gpst(t_system)
    raise InputError(f"unknown GNSS system letter {system!r}: expected one of G, R, E, C, J, I, S")


def parse_date(text: str, what: str = "date") -> np.datetime64:
    """Return a datetime64[ns] of a ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM:SS`` string (else InputError)."""
    try:
        t = np.datetime64(text.strip(), "ns")
    except ValueError as exc:
        raise InputError(f"{what}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, got {text!r}") from exc
    if np.isnat(t):
        raise InputError(f"{what}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, got {text!r}")
    return t
