"""Tests of kizuna.ssa.elements: TLE/3LE reading, checking, writing, and the bridge to python-sgp4.

The real data is the Space-Track public catalogue staged in ../shared/data/ssa/catalog (24,132 objects,
3-line "0 NAME" layout; SOURCES.md there). Expected values are copied from the lines of that file as
printed, or come from python-sgp4 (an independent TLE parser and the reference SGP4 code).
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import re

import numpy as np
import pytest
from sgp4.api import WGS72, Satrec, SatrecArray

from kizuna.errors import InputError
from kizuna.ssa.elements import (
    ElementSet,
    alpha5_decode,
    alpha5_encode,
    check_window,
    elements_table,
    parse_tle,
    perigee_apogee_km,
    read_tle,
    tle_checksum,
    write_tle,
)

CATALOG = "ssa/catalog/spacetrack_full_catalog_3le_2022-07-15.txt"

# The first record of the catalogue, as printed in the file.
VANGUARD_1 = (
    "0 VANGUARD 1",
    "1     5U 58002B   22196.28486465  .00000351  00000-0  43722-3 0  9993",
    "2     5  34.2492  53.6414 1847265 162.8155 204.4542 10.84977341287669",
)


def checksum(line: str) -> str:
    """The TLE checksum rule written out plainly (CelesTrak TLE FAQ): digits, '-' = 1, modulo 10."""
    return str((sum(int(c) for c in line[:68] if c.isdigit()) + line[:68].count("-")) % 10)


def with_checksum(line: str) -> str:
    return line[:68] + checksum(line)


@pytest.fixture(scope="module")
def catalog(shared_data):
    path = shared_data / CATALOG
    elements, problems = read_tle(path)
    return path, elements, problems


def test_whole_catalogue_reads_with_no_problem(catalog):
    path, elements, problems = catalog
    # SOURCES.md: "24,132 objects ... all parse with python-sgp4 2.27".
    assert len(elements) == 24132
    assert problems == []
    # Every record agrees with python-sgp4's own TLE parser (an independent reading of each line).
    sats = [Satrec.twoline2rv(e.line1, e.line2, WGS72) for e in elements]
    assert [e.norad_id for e in elements] == [s.satnum for s in sats]
    deg = math.pi / 180.0
    for attr, ours in (
        ("ecco", [e.eccentricity for e in elements]),
        ("inclo", [e.inclination_deg * deg for e in elements]),
        ("nodeo", [e.raan_deg * deg for e in elements]),
        ("argpo", [e.arg_perigee_deg * deg for e in elements]),
        ("mo", [e.mean_anomaly_deg * deg for e in elements]),
        ("no_kozai", [e.mean_motion_rev_day / (1440.0 / (2.0 * math.pi)) for e in elements]),
    ):
        assert np.array_equal([getattr(s, attr) for s in sats], ours), attr
    # SGP4.cpp forms B* as mantissa * pow(10, exponent): equal to the decimal value within 1 ulp.
    np.testing.assert_allclose(
        [s.bstar for s in sats], [e.bstar_per_earth_radius for e in elements], rtol=3e-16
    )
    # Epochs: python-sgp4's Julian date (day + fraction rounded to the TLE's 8 decimals) against ours.
    jd = np.array([s.jdsatepoch for s in sats]) - 2440587.5 + np.array([s.jdsatepochF for s in sats])
    ours = np.array([e.epoch for e in elements], dtype="datetime64[us]").astype(np.int64) / 86400e6
    assert np.max(np.abs(jd - ours)) * 86400e6 < 2.0  # microseconds: float64 resolution of ~19,000 days


def test_vanguard_1_fields_as_printed(catalog):
    # Expected values copied from the Vanguard 1 lines above, column by column.
    es = catalog[1][0]
    assert (es.norad_id, es.name, es.intl_designator, es.classification) == (5, "VANGUARD 1", "58002B", "U")
    # Epoch 22196.28486465: 2022, day 196 = July 15; 0.28486465 d = 24612.305760 s = 06:50:12.305760.
    assert es.epoch == np.datetime64("2022-07-15T06:50:12.305760")
    assert es.mean_motion_dot_rev_day2 == 0.00000351
    assert es.mean_motion_ddot_rev_day3 == 0.0
    assert es.bstar_per_earth_radius == 0.43722e-3
    assert (es.ephemeris_type, es.element_set_no, es.rev_at_epoch) == (0, 999, 28766)
    assert (es.inclination_deg, es.raan_deg, es.eccentricity) == (34.2492, 53.6414, 0.1847265)
    assert (es.arg_perigee_deg, es.mean_anomaly_deg, es.mean_motion_rev_day) == (
        162.8155,
        204.4542,
        10.84977341,
    )
    assert (es.line1, es.line2) == VANGUARD_1[1:]
    # Period from the printed mean motion: 1440 min / 10.84977341 rev/day.
    assert es.period_min == pytest.approx(132.72167, abs=1e-5)


def test_checksum_of_printed_lines():
    # The last column of each printed line is its checksum.
    assert tle_checksum(VANGUARD_1[1]) == 3
    assert tle_checksum(VANGUARD_1[2]) == 9


def test_flipped_digit_fails_checksum_and_spares_the_others(catalog):
    lines = [line.rstrip("\n") for line in catalog[0].read_text().splitlines()[:9]]
    # Flip one digit of record 2's inclination (line 6 of the file) and keep its printed checksum.
    assert lines[5].startswith("2 00011  32.8733")
    lines[5] = lines[5].replace("32.8733", "32.8743")
    elements, problems = read_tle("\n".join(lines) + "\n", source="flip.tle")
    assert [e.norad_id for e in elements] == [5, 12]
    (p,) = problems
    assert (p.source, p.line, p.norad_id, p.name, p.field) == ("flip.tle", 4, 11, "VANGUARD 2", "checksum")
    assert "line 2" in p.message and f"expected {checksum(lines[5])}" in p.message


BAD_FIELDS = [
    # (line 1 or 2, column slice, replacement, field named in the problem)
    (2, slice(2, 7), "    6", "line 2 catalogue number"),
    (1, slice(7, 8), "1", "classification"),
    (1, slice(20, 23), "400", "epoch"),
    (1, slice(33, 43), " .0000x351", "mean motion derivative"),
    (1, slice(44, 52), " 0000A-0", "mean motion second derivative"),
    (1, slice(53, 61), " 43722*3", "bstar"),
    (1, slice(62, 63), "X", "ephemeris type"),
    (1, slice(64, 68), " 9X9", "element set number"),
    (2, slice(8, 16), " 194.249", "inclination"),
    (2, slice(17, 25), "361.0000", "right ascension of ascending node"),
    (2, slice(26, 33), "18472X5", "eccentricity"),
    (2, slice(34, 42), "162.81x5", "argument of perigee"),
    (2, slice(43, 51), "-04.4542", "mean anomaly"),
    (2, slice(52, 63), " 0.00000000", "mean motion"),
    (2, slice(63, 68), "2876X", "revolution number"),
    (2, slice(16, 17), "x", "line 2 layout"),
]


@pytest.mark.parametrize(("which", "cols", "text", "field"), BAD_FIELDS)
def test_malformed_field_named_with_line(which, cols, text, field):
    name, l1, l2 = VANGUARD_1
    bad = [l1, l2]
    line = bad[which - 1]
    bad[which - 1] = with_checksum(line[: cols.start] + text + line[cols.stop :])
    good2 = ["VANGUARD R/B", *(with_checksum(x.replace("    5", "   16", 1)) for x in (l1, l2))]
    text_in = "\n".join([*VANGUARD_1, name, *bad, *good2]) + "\n"
    elements, problems = read_tle(text_in)
    assert [e.norad_id for e in elements] == [5, 16]
    (p,) = problems
    assert (p.line, p.name, p.field) == (4, "VANGUARD 1", field), p
    assert p.norad_id == 5
    assert "expected" in p.message


def test_structure_problems_line_numbers():
    name, l1, l2 = VANGUARD_1
    lines = [name, l1, l2, "ORPHAN", l2, l1[:60], l2, name, l1, "", "LAST NAME"]
    elements, problems = read_tle("\n".join(lines) + "\n")
    assert [e.norad_id for e in elements] == [5]
    got = [(p.line, p.field) for p in problems]
    assert got == [(5, "line 1"), (6, "line 1 length"), (8, "line 2"), (11, "line 1")]
    assert "60 characters; expected 69" in problems[1].message


def test_two_three_and_mixed_layouts_crlf_and_gzip(catalog, tmp_path):
    path, elements, _ = catalog
    lines = path.read_text().splitlines()[:12]
    # record 1 two-line, record 2 "0 NAME", record 3 bare name, record 4 two-line; blank lines between.
    mixed = [*lines[1:3], "", *lines[3:6], "", lines[6][2:], *lines[7:9], "  ", *lines[10:12]]
    text = "\r\n".join(mixed) + "\r\n"
    got, problems = read_tle(text)
    assert problems == []
    assert [e.name for e in got] == ["", "VANGUARD 2", "VANGUARD R/B", ""]
    names = ["", "VANGUARD 2", "VANGUARD R/B", ""]
    assert got == [dataclasses.replace(e, name=n) for e, n in zip(elements[:4], names, strict=True)]
    gz = tmp_path / "mixed.tle.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    assert read_tle(gz)[0] == got


def test_alpha5_catalogue_numbers(catalog):
    # Space-Track's Alpha-5: a letter (A=10 ... Z=33, I and O not used) before 4 digits.
    assert alpha5_decode("A0001") == 100001
    assert alpha5_decode("J0000") == 180000  # J follows H=17 because I is skipped
    assert alpha5_decode("Z9999") == 339999
    assert alpha5_decode("    5") == 5
    assert alpha5_encode(100001) == "A0001" and alpha5_encode(5) == "00005"
    with pytest.raises(ValueError):
        alpha5_decode("I0001")
    # A record renumbered A0001 on both lines reads as 100001 and is written back the same.
    l1, l2 = (with_checksum(x.replace("    5", "A0001", 1)) for x in VANGUARD_1[1:])
    es = parse_tle(l1, l2)
    assert es.norad_id == 100001
    assert dataclasses.replace(es, line1=None, line2=None).to_tle_lines() == (
        l1.replace("A0001U", "A0001U"),
        l2,
    )
    # The catalogue's "T" numbers (analyst objects) are Alpha-5: T = 27, so 270000..279999.
    t_count = len(re.findall(r"^1 T\d{4}", catalog[0].read_text(), flags=re.MULTILINE))
    t_objects = [e.norad_id for e in catalog[1] if e.line1[2] == "T"]
    assert len(t_objects) == t_count == 273
    assert all(270000 <= n <= 279999 for n in t_objects)


def test_reformatted_lines_reproduce_space_track_layout(catalog):
    path, elements, _ = catalog
    older = 0
    for es in elements:
        lines = dataclasses.replace(es, line1=None, line2=None).to_tle_lines()
        # The 2022 file still carries two older layouts: blank-padded catalogue numbers ("    5") and
        # explicit '+' signs (as in "+.00006643 +00000+0", or a zero B* written " 00000+0"). Those lines
        # come back in today's layout with the same values; every other line comes back exactly.
        if es.line1[2] == " " or "+" in es.line1[33:62]:
            older += 1
            assert dataclasses.replace(parse_tle(*lines, es.name), line1=es.line1, line2=es.line2) == es
        else:
            assert lines == (es.line1, es.line2)
    assert 0 < older < len(elements) // 5


def test_write_tle_gives_back_the_file(catalog, tmp_path):
    path, elements, _ = catalog
    out = write_tle(tmp_path / "copy.tle", elements)
    assert out.read_bytes() == path.read_bytes()
    two = write_tle(tmp_path / "two.tle", elements[:3], three_line=False)
    assert two.read_text().splitlines() == [x for e in elements[:3] for x in (e.line1, e.line2)]


def test_satrec_from_fields_identical_to_twoline2rv(catalog):
    elements = catalog[1][::2]  # every other object, 1,999 of them deep-space (period >= 225 min)
    from_lines = [e.satrec() for e in elements]
    from_fields = [dataclasses.replace(e, line1=None, line2=None).satrec() for e in elements]
    for attr in ("jdsatepoch", "jdsatepochF", "epochdays", "bstar", "ndot", "nddot", "no_kozai", "gsto"):
        assert [getattr(s, attr) for s in from_lines] == [getattr(s, attr) for s in from_fields], attr
    jd = np.array([2459775.5, 2459776.5, 2459781.5])
    fr = np.array([0.125, 0.5, 0.875])
    e1, r1, v1 = SatrecArray(from_lines).sgp4(jd, fr)
    e2, r2, v2 = SatrecArray(from_fields).sgp4(jd, fr)
    assert np.array_equal(e1, e2)
    assert np.array_equal(r1, r2, equal_nan=True) and np.array_equal(v1, v2, equal_nan=True)


def test_perigee_apogee_as_sgp4_computes_them(catalog):
    elements = catalog[1]
    sats = [e.satrec() for e in elements]
    perigee, apogee = perigee_apogee_km(elements)
    np.testing.assert_allclose(perigee, [s.altp * s.radiusearthkm for s in sats], rtol=0, atol=1e-9)
    np.testing.assert_allclose(apogee, [s.alta * s.radiusearthkm for s in sats], rtol=0, atol=1e-9)
    assert elements[0].perigee_km == pytest.approx(sats[0].altp * 6378.135, abs=1e-9)
    assert elements[0].apogee_km == pytest.approx(sats[0].alta * 6378.135, abs=1e-9)


def test_elements_table(catalog):
    elements = catalog[1]
    df = elements_table(elements)
    assert len(df) == 24132 and df["norad_id"].is_unique
    row = df.iloc[0]
    assert (row["norad_id"], row["name"], row["inclination_deg"], row["rev_at_epoch"]) == (
        5,
        "VANGUARD 1",
        34.2492,
        28766,
    )
    assert row["epoch"] == np.datetime64("2022-07-15T06:50:12.305760")
    assert row["perigee_km"] == elements[0].perigee_km
    assert row["period_min"] == pytest.approx(1440.0 / 10.84977341, rel=1e-15)


def test_check_window(catalog):
    elements = catalog[1]
    # Epochs from python-sgp4's own reading of the lines (Julian date day + fraction).
    sats = [e.satrec() for e in elements]
    jd = np.array([s.jdsatepoch + s.jdsatepochF for s in sats])
    start_jd = 2459781.5  # 2022-07-21T00:00 UTC
    stop_jd = start_jd + 1.0
    for max_days in (1.0, 7.0, 30.0):
        far = (jd < start_jd - max_days) | (jd > stop_jd + max_days)
        expected = {e.norad_id for e, f in zip(elements, far, strict=True) if f}
        warned = check_window(elements, "2022-07-21", "2022-07-22", max_days=max_days)
        assert {w.norad_id for w in warned} == expected
        assert all(w.field == "epoch" for w in warned)
    assert len(expected) > 0  # SOURCES.md: epochs from 2022-06-15, 36 days before the window
    inside = check_window(elements, "2022-06-15", "2022-07-23", max_days=0.0)
    assert inside == []  # SOURCES.md: every epoch lies in 2022-06-15..2022-07-22
    late = check_window(elements[:1], "2022-09-01", "2022-09-02", max_days=30)
    assert "days before the window start" in late[0].message
    with pytest.raises(InputError):
        check_window(elements, "2022-07-22", "2022-07-21")


def test_nothing_usable_raises_input_error(tmp_path):
    name, l1, l2 = VANGUARD_1
    bad = tmp_path / "bad.tle"
    bad.write_text("\n".join([name, l1, l2[:68] + "0"]) + "\n")
    with pytest.raises(InputError, match=r"bad\.tle.*1 record\(s\) rejected.*line 1.*checksum"):
        read_tle(bad)
    with pytest.raises(InputError, match="not found"):
        read_tle(tmp_path / "missing.tle")
    empty = tmp_path / "empty.tle"
    empty.write_text("\n\n")
    with pytest.raises(InputError, match="no TLE records found"):
        read_tle(empty)
    with pytest.raises(InputError, match="checksum"):
        parse_tle(l1, l2[:68] + "0")


def test_formatting_refuses_what_a_tle_cannot_hold():
    es = dataclasses.replace(parse_tle(*VANGUARD_1[1:]), line1=None, line2=None)
    with pytest.raises(InputError, match="2-digit year"):
        dataclasses.replace(es, epoch=np.datetime64("2060-01-01T00:00:00")).to_tle_lines()
    with pytest.raises(InputError, match="eccentricity"):
        dataclasses.replace(es, eccentricity=1.0).to_tle_lines()
    assert isinstance(es, ElementSet)
