"""GNSS time scales against published calendars and the IERS leap-second table."""

from __future__ import annotations

import numpy as np
import pytest

from kizuna.errors import InputError
from kizuna.gnss.gtime import (
    datetime64_to_gpst,
    gpst_to_utc,
    gpst_to_week_tow,
    leap_seconds,
    parse_date,
    system_to_gpst,
    utc_to_gpst,
)


def test_week_and_time_of_week() -> None:
    # RTKLIB's rnx2rtkp header for SEPT078M.21O: "2021/03/19 12:00:00.0 GPST (week2149 475200.0s)".
    week, tow = gpst_to_week_tow(datetime64_to_gpst(np.datetime64("2021-03-19T12:00:00")))
    assert int(week) == 2149 and tow == pytest.approx(475200.0)
    # GPS week 1024 began on 1999-08-22 (the first week-number rollover, IS-GPS-200 6.2.4).
    assert int(gpst_to_week_tow(datetime64_to_gpst(np.datetime64("1999-08-22T00:00:00")))[0]) == 1024


def test_leap_seconds_and_utc() -> None:
    # IERS Bulletin C: TAI - UTC = 37 s since 2017-01-01, i.e. GPST - UTC = 18 s; 17 s before it.
    before = utc_to_gpst(np.datetime64("2016-12-31T23:59:59"))
    after = utc_to_gpst(np.datetime64("2017-01-01T00:00:00"))
    assert float(leap_seconds(before)) == 17.0 and float(leap_seconds(after)) == 18.0
    assert after - before == pytest.approx(2.0)  # the inserted leap second 23:59:60
    t = utc_to_gpst(np.datetime64("2023-03-12T06:30:00"))
    assert str(gpst_to_utc(t))[:19] == "2023-03-12T06:30:00"


def test_beidou_and_glonass_epochs() -> None:
    # BDT = GPST - 14 s (BDS-SIS-ICD B1I 3.0, 4.2): a BDT tag of 00:00:00 is GPST 00:00:14.
    g = system_to_gpst(np.datetime64("2023-03-12T00:00:00"), "C")
    assert g - datetime64_to_gpst(np.datetime64("2023-03-12T00:00:00")) == pytest.approx(14.0)
    r = system_to_gpst(np.datetime64("2023-03-12T00:00:00"), "R")  # RINEX 3 GLONASS epochs are UTC
    assert r - datetime64_to_gpst(np.datetime64("2023-03-12T00:00:00")) == pytest.approx(18.0)
    with pytest.raises(InputError, match="unknown GNSS system"):
        system_to_gpst(np.datetime64("2023-03-12"), "X")


def test_parse_date_errors() -> None:
    assert str(parse_date("2023-03-12"))[:10] == "2023-03-12"
    with pytest.raises(InputError, match="--date"):
        parse_date("12/03/2023", "--date")
