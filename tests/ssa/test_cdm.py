"""Tests of kizuna.ssa.cdm against the CCSDS 508.0-B-1 example CDM and NASA CARA's sample CDMs.

Expected numbers come from the message files themselves (values printed by the 18th Space Defense Squadron
/ CARA / the standard), from CARA's Alfano (2009) test-case tables (ECI states and covariances at TCA) and
from analytic facts (calendar dates, areas of disks). Where a file is not self-consistent, the test says
so and checks what the file does state.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from kizuna.errors import InputError
from kizuna.ssa.cdm import (
    EARTH_ROTATION_RATE_RAD_S,
    Cdm,
    CdmEntry,
    cdm_from_encounter,
    covariance_problems,
    encounter_inputs,
    format_cdm,
    parse_cdm,
    read_cdm,
    read_cdms,
    relative_state_rtn,
    rtn_matrix,
    write_cdm,
)

# CARA sample CDMs whose RELATIVE_POSITION/VELOCITY are object 1 minus object 2 (the opposite of 508.0-B-1,
# which prints object 2 minus object 1 in object 1's RTN frame). Found by comparing with the states: for
# these files the printed vector matches -(r2 - r1) to <= 1 mm (0.05 m for 1-12), for all others +(r2 - r1).
CARA_FLIPPED = {f"AlfanoTestCase{i:02d}.cdm" for i in range(1, 12)} | {
    "FrisbeeMaxPcTestCase_Test01.cdm",
    *(f"OmitronTestCase_Test0{i}_{n}.cdm" for i, n in enumerate(
        ["HighPc", "MaxRadialSigma", "MaxIntrackSigma", "MaxCrossTrackSigma", "MinMiss", "MinRelVel"], 1)),
    "SingleCovTestCase1-12.cdm",
}  # fmt: skip
# ODQATestCaseCDM.cdm prints placeholders RELATIVE_SPEED = 0 and RELATIVE_VELOCITY = (0, 10, 0) [m] while
# its two state vectors (same position) differ in velocity by 15.0 km/s, so only its positions are checked.
PLACEHOLDER_VELOCITY = {"ODQATestCaseCDM.cdm"}
# Omitron 07/08 print single-precision numbers with extra digits (RELATIVE_SPEED = 6075.408203125), so a
# printed value is good to 2**-23 of itself, not to its last digit.
FLOAT32_REL = 2.0**-23


def _cara_paths(shared_data: Path) -> list[Path]:
    sample = sorted((shared_data / "ssa/cara/SampleCDMs").glob("*.cdm"))
    other = sorted((shared_data / "ssa/cara/other_cdms").glob("*.cdm"))
    assert len(sample) >= 33 and len(other) == 4  # SOURCES.md: 33 sample CDMs (34 staged), 4 others
    return sample + other


def _example(shared_data: Path, ext: str) -> Path:
    return shared_data / f"ssa/ccsds/cdm_example_section4.{ext}"


@pytest.fixture(scope="module")
def cara(shared_data: Path) -> dict[str, Cdm]:
    return {p.name: read_cdm(p) for p in _cara_paths(shared_data)}


def _entries(c: Cdm) -> tuple[CdmEntry, ...]:
    return c.header + c.relative + sum((o.metadata + o.data for o in c.objects), ())


def _decimals(text: str) -> int:
    mantissa = text.lower().split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def _printed_tol(c: Cdm, keys: list[str]) -> float:
    """One unit in the last printed digit (producers round or truncate), or float32 precision if larger."""
    return max(max(10.0 ** -_decimals(c.get(k).value), FLOAT32_REL * abs(c.value(k))) for k in keys)


def test_every_cara_cdm_and_the_example_parse_keeping_every_line(shared_data, cara):
    paths = [*_cara_paths(shared_data), _example(shared_data, "kvn")]
    for p in paths:
        c = cara.get(p.name) or read_cdm(p)
        lines = [s.strip() for s in p.read_text().splitlines() if s.strip()]
        assert len(_entries(c)) == len(lines), p.name  # one entry per non-blank line, none dropped
        comments = [s[7:].strip() for s in lines if s.startswith("COMMENT")]
        assert [e.value for e in _entries(c) if e.key == "COMMENT"] == comments, p.name
        assert c.tca.dtype == np.dtype("datetime64[ns]")
    # AlfanoTestCase01.cdm line 5: TCA = 2000-01-01T00:00:00.000; line 47: X = 153.446765 [km]
    a = cara["AlfanoTestCase01.cdm"]
    assert a.tca == np.datetime64("2000-01-01T00:00:00", "ns")
    assert a.object1.state_m()[0][0] == pytest.approx(153_446.765, abs=1e-9)
    # DensityDecorrelationTestCaseCDM01.cdm: TCA = 2018-231T05:18:32.104 (day-of-year form);
    # day 231 of 2018 is 19 August (31+28+31+30+31+30+31 = 212 days before 1 August).
    assert cara["DensityDecorrelationTestCaseCDM01.cdm"].tca == np.datetime64("2018-08-19T05:18:32.104", "ns")
    assert [c.tca for c in read_cdms([paths[1], paths[0]])] == [cara[paths[1].name].tca, a.tca]


def test_example_kvn_and_xml_carry_the_same_content(shared_data):
    # The KVN and XML files of the 508.0-B-1 example hold the same keywords, values, units and comments in
    # the same order (side by side, line for line), so they must read as equal messages.
    k, x = read_cdm(_example(shared_data, "kvn")), read_cdm(_example(shared_data, "xml"))
    assert k == x
    assert x.tca == np.datetime64("2010-03-13T22:37:52.618", "ns")
    assert (x.miss_distance_m, x.relative_speed_m_s, x.collision_probability) == (715.0, 14762.0, 4.835e-05)
    assert x.value("COLLISION_PROBABILITY_METHOD") == "FOSTER-1992" and x.ref_frame == "EME2000"
    assert x.object2.comments[:5] == (
        "Object2 Metadata",
        "Object2 Data",
        "Object2 OD Parameters",
        "Object2 Additional Parameters",
        "Apogee Altitude=768 km",
    )
    r, v = x.object1.state_m()
    np.testing.assert_allclose(r, [2570097.065, 2244654.904, 6281497.978], rtol=0, atol=1e-6)
    np.testing.assert_allclose(v, [4418.769571, 4833.547743, -3526.774282], rtol=0, atol=1e-9)
    cov = x.object2.covariance_rtn_m2()  # CT_R = -4.806E+04, CNDOT_T = 8.482E-03, lower triangle mirrored
    assert cov[1, 0] == cov[0, 1] == -4.806e04 and cov[5, 1] == cov[1, 5] == 8.482e-03
    assert x.object1.value("OBS_USED") == 59 and x.object1.value("OPERATOR_EMAIL") == "JOHN.DOE@SOMEWHERE>NET"
    # The example's relative state is not consistent with its state vectors (SOURCES.md warns so): from the
    # states, R = 27.36 m and VR = -7.195 m/s agree with the printed 27.4 m and -7.2 m/s, but T = -93.7 m
    # and VN = -1923.6 m/s are far from the printed -70.2 m and -1437.2 m/s.
    dr, dv = relative_state_rtn(x)
    assert abs(dr[0] - 27.4) < 0.05 and abs(dv[0] - -7.2) < 0.05
    assert abs(dr[1] - -70.2) > 20.0 and abs(dv[2] - -1437.2) > 400.0
    changed = parse_cdm(format_cdm(x).replace("COMMENT Object1 Metadata", "COMMENT Object1 metadata"))
    assert changed != x  # equality looks at comments too


@pytest.mark.parametrize("fmt", ["kvn", "xml"])
def test_round_trip_is_exact(shared_data, cara, tmp_path, fmt):
    originals = {**cara, "example.kvn": read_cdm(_example(shared_data, "kvn"))}
    for name, c in originals.items():
        path = write_cdm(tmp_path / f"{name}.{fmt}", c, fmt=fmt)
        back = read_cdm(path)
        assert back == c, name
        assert [(e.key, e.value, e.unit) for e in _entries(back)] == [
            (e.key, e.value, e.unit) for e in _entries(c)
        ]
        assert read_cdm(write_cdm(tmp_path / "again", back, fmt="xml" if fmt == "kvn" else "kvn")) == c


def test_written_xml_has_the_schema_layout(shared_data):
    root = ET.fromstring(format_cdm(read_cdm(_example(shared_data, "kvn")), "xml"))
    assert root.tag == "cdm" and root.get("version") == "1.0" and root.get("id") == "CCSDS_CDM_VERS"
    rel = root.find("body/relativeMetadataData")
    assert [e.tag for e in rel.find("relativeStateVector")][0] == "RELATIVE_POSITION_R"
    segments = root.findall("body/segment")
    assert len(segments) == 2
    assert [e.tag for e in segments[0].find("data")] == [
        "odParameters", "additionalParameters", "stateVector", "covarianceMatrix"]  # fmt: skip
    cr_r = segments[0].find("data/covarianceMatrix/CR_R")
    assert (cr_r.text, cr_r.get("units")) == ("4.142E+01", "m**2")
    assert segments[1].find("metadata/OBJECT_NAME").text == "FENGYUN 1C DEB"


def test_miss_distance_and_relative_speed_agree_with_the_states(shared_data, cara):
    # States are printed to 1e-6 km and 1e-9 km/s: |r2 - r1| is then good to sqrt(3) mm, |v2 - v1| to
    # sqrt(3) um/s; the printed MISS_DISTANCE / RELATIVE_SPEED to one unit of their last digit.
    example = read_cdm(_example(shared_data, "kvn"))
    worst = {"miss": 0.0, "speed": 0.0}
    for name, c in {**cara, "example": example}.items():
        r1, v1, _, r2, v2, _ = encounter_inputs(c)
        miss_err = abs(np.linalg.norm(r2 - r1) - c.miss_distance_m)
        assert miss_err <= _printed_tol(c, ["MISS_DISTANCE"]) + 2e-3, (name, miss_err)
        if name not in PLACEHOLDER_VELOCITY:
            speed_err = abs(np.linalg.norm(v2 - v1) - c.relative_speed_m_s)
            assert speed_err <= _printed_tol(c, ["RELATIVE_SPEED"]) + 2e-6, (name, speed_err)
            worst["speed"] = max(worst["speed"], speed_err)
        worst["miss"] = max(worst["miss"], miss_err)
    # The 508.0-B-1 example: 715 m printed, 715.75 m from its states; 14762 m/s printed, 14762.09 from states.
    assert worst["miss"] < 1.0 and worst["speed"] < 1.0


def test_relative_position_and_velocity_in_object1_rtn_agree_with_the_states(cara):
    pos_err, vel_err = [], []
    for name, c in cara.items():
        dr, dv = relative_state_rtn(c)
        sign = -1.0 if name in CARA_FLIPPED else 1.0
        keys_r = [f"RELATIVE_POSITION_{a}" for a in "RTN"]
        e = dr - sign * c.relative_position_rtn_m
        base = math.sqrt(3) * _printed_tol(c, keys_r) + 2e-3
        u = dv / np.linalg.norm(dv) if np.linalg.norm(dv) > 0 else np.zeros(3)
        # Across the relative velocity the agreement is to the printed digits; along it the producers'
        # TCA (printed to 1 ms) can shift the relative position by up to |dv| * 0.5 ms.
        assert np.linalg.norm(e - (e @ u) * u) <= base, (name, e)
        assert abs(e @ u) <= base + np.linalg.norm(dv) * 5e-4, (name, e)
        pos_err.append(np.abs(e).max())
        if name in PLACEHOLDER_VELOCITY:
            continue
        ev = dv - sign * c.relative_velocity_rtn_m_s
        tol = math.sqrt(3) * _printed_tol(c, [f"RELATIVE_VELOCITY_{a}" for a in "RTN"]) + 2e-6
        assert np.linalg.norm(ev) <= tol, (name, ev)
        vel_err.append(np.abs(ev).max())
    # Found on these files: positions agree to <= 0.32 m (0.1 m printed), velocities to <= 0.1 m/s.
    assert max(pos_err) < 0.35 and max(vel_err) < 0.1


def test_itrf_cdms_need_the_earth_rotation_term(cara):
    # DensityDecorrelationTestCaseCDM01-03 give ITRF states. With omega x r added (inertial RTN) the printed
    # relative vectors match to 0.05 m and 0.05 m/s (checked above); from the Earth-fixed velocity they
    # would be off by tens of metres and hundreds of m/s, so the files use the inertial RTN frame.
    for i in (1, 2, 3):
        c = cara[f"DensityDecorrelationTestCaseCDM0{i}.cdm"]
        assert c.ref_frame == "ITRF"
        (r1, v1), (r2, v2) = c.object1.state_m(), c.object2.state_m()
        m = rtn_matrix(r1, v1)
        assert np.abs(m @ (r2 - r1) - c.relative_position_rtn_m).max() > 40.0
        assert np.abs(m @ (v2 - v1) - c.relative_velocity_rtn_m_s).max() > 100.0
        # The normal axis of the covariance uses the inertial velocity: n' C n = CN_N.
        _, _, cov1, *_ = encounter_inputs(c)
        n = np.cross(r1, v1 + EARTH_ROTATION_RATE_RAD_S * np.array([-r1[1], r1[0], 0.0]))
        n /= np.linalg.norm(n)
        assert n @ cov1[:3, :3] @ n == pytest.approx(c.object1.value("CN_N"), rel=1e-12)
        assert r1 @ cov1[:3, :3] @ r1 / (r1 @ r1) == pytest.approx(c.object1.value("CR_R"), rel=1e-12)


def test_covariances_rotated_to_eme2000_match_caras_alfano_tables(shared_data, cara):
    # CARA's Alfano (2009) tables give each case's states and 6x6 ECI covariance at TCA (m, m/s); the
    # AlfanoTestCase01-11 CDMs carry the same cases in RTN. Rotating the CDM's RTN covariance must give
    # CARA's ECI matrix: position block to 1e-9 of its largest entry, every entry to 2e-4 of
    # sqrt(Cii Cjj) (case 06, whose 6x6 is indefinite, differs most in its velocity rows).
    cases = json.loads((shared_data / "ssa/cara/alfano2009/alfano2009_cases.json").read_text())["cases"]
    for i in range(1, 12):
        t = cases[str(i)]["at_TCA"]
        r1, v1, c1, r2, v2, c2 = encounter_inputs(cara[f"AlfanoTestCase{i:02d}.cdm"])
        np.testing.assert_allclose(r1, t["r1_m"], rtol=0, atol=1e-3)  # CDM prints km to 6 decimals
        np.testing.assert_allclose(v2, t["v2_mps"], rtol=0, atol=1e-6)
        for c, ref in ((c1, np.array(t["C1_6x6_m_s"])), (c2, np.array(t["C2_6x6_m_s"]))):
            assert np.abs(c[:3, :3] - ref[:3, :3]).max() <= 1e-9 * np.abs(ref[:3, :3]).max(), i
            scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
            assert np.abs((c - ref) / scale).max() <= 2e-4, i


def test_non_positive_definite_covariance_is_reported_not_raised(cara):
    c = cara["OmitronTestCase_Test07_NonPDCovariance.cdm"]
    problems = covariance_problems(c)
    assert len(problems) == 1 and problems[0].startswith("OBJECT2: position covariance (3x3 RTN)")
    assert "indefinite" in problems[0]
    # Object 2's position block as printed on lines 128-133 of the file, eigenvalues by numpy directly.
    p = np.array(
        [[2.567914240586881e11, -1.135297391594202e12, 1.042630021346887e07],
         [-1.135297391594202e12, 5.019249153263244e12, -4.609126128936892e07],
         [1.042630021346887e07, -4.609126128936892e07, 8.769343262436491e02]])  # fmt: skip
    low = np.linalg.eigvalsh(p)[0]
    assert low < 0 and f"{low:.6g}" in problems[0]
    for name in [
        "OmitronTestCase_Test08_3DNc.cdm",
        "AlfanoTestCase01.cdm",
        "DensityDecorrelationTestCaseCDM01.cdm",
    ]:
        assert covariance_problems(cara[name]) == [], name
    # Omitron 01 gives position-only covariances: the 6x6 has zero velocity variances, positions are fine.
    omitron = covariance_problems(cara["OmitronTestCase_Test01_HighPc.cdm"])
    assert len(omitron) == 2 and all("6x6" in m and "CRDOT_RDOT = 0" in m for m in omitron)


def test_malformed_input_names_file_line_and_key(shared_data, tmp_path):
    src = (shared_data / "ssa/cara/SampleCDMs/AlfanoTestCase01.cdm").read_text()
    cases = {
        "no_tca": (src.replace("TCA                                = 2000-01-01T00:00:00.000\n", ""),
                   ["no_tca.cdm", "lines 5-12", "TCA", "missing"]),
        "bad_x": (src.replace("= 153.446765 ", "= 153.44x765 "), ["bad_x.cdm", "line 47", "X", "153.44x765"]),
        "bad_date": (src.replace("CREATION_DATE                      = 2000-01-01",
                                 "CREATION_DATE = 2000-01-32"), ["line 2", "CREATION_DATE"]),
        "no_object2": (src.replace("= OBJECT2", "= OBJECT3"), ["line 89", "OBJECT2", "OBJECT3"]),
        "version": (src.replace("= 1.0", "= 2.0", 1), ["line 1", "CCSDS_CDM_VERS"]),
        "out_of_place": (src.replace("COMMENT HBR", "CR_R = 1.0\nCOMMENT HBR"), ["line 14", "CR_R"]),
        "not_kvn": (src.replace("ORIGINATOR ", "ORIGINATOR\n"), ["line 3", "ORIGINATOR"]),
        "state_nan": (src.replace("= 153.446765 ", "= NaN "), ["line 47", "X", "finite"]),
    }  # fmt: skip
    for name, (text, needles) in cases.items():
        path = tmp_path / f"{name}.cdm"
        path.write_text(text)
        with pytest.raises(InputError) as err:
            read_cdm(path)
        assert all(s in str(err.value) for s in needles), (name, str(err.value))
    xml_text = _example(shared_data, "xml").read_text()
    (tmp_path / "bad.xml").write_text(xml_text.replace(">2570.097065<", ">2570.0970.65<"))
    with pytest.raises(InputError, match=r"bad\.xml: line 89: X = '2570\.0970\.65'"):
        read_cdm(tmp_path / "bad.xml")
    (tmp_path / "broken.xml").write_text(xml_text.replace("</header>", "</headr>"))
    with pytest.raises(InputError, match=r"broken\.xml: line 12: malformed XML"):
        read_cdm(tmp_path / "broken.xml")
    with pytest.raises(InputError, match="missing.cdm"):
        read_cdm(tmp_path / "missing.cdm")


def test_hard_body_radius(shared_data, cara):
    assert cara["AlfanoTestCase01.cdm"].hard_body_radius_m == 15.0  # COMMENT HBR = 15.0
    assert cara["OmitronTestCase_Test07_NonPDCovariance.cdm"].hard_body_radius_m == 52.8  # COMMENT HBR = 52.8
    dd = cara["DensityDecorrelationTestCaseCDM02.cdm"]  # COMMENT Operator Hard Body Radius = 6.00 [m]
    assert dd.hard_body_radius_m == 6.0 and "Operator Hard Body Radius" in dd.hard_body_radius_source
    # The example has no HBR comment: AREA_PC 5.2 and 0.9 m**2 give disks of radius sqrt(A/pi), summed.
    ex = read_cdm(_example(shared_data, "xml"))
    assert ex.hard_body_radius_m == pytest.approx(
        math.sqrt(5.2 / math.pi) + math.sqrt(0.9 / math.pi), rel=1e-15
    )
    assert cara["SingleCovTestCase1-3.cdm"].hard_body_radius_m is None  # AREA_PC = 0 for object 2


def test_cdm_from_encounter_reproduces_a_cara_cdm(cara, tmp_path):
    # Rebuild DensityDecorrelationTestCaseCDM01 (ITRF) from its states and covariances: the relative
    # quantities computed for the new CDM must match what the 18th SDS printed (0.1 m, 0.1 m/s digits).
    c = cara["DensityDecorrelationTestCaseCDM01.cdm"]
    (r1, v1), (r2, v2) = c.object1.state_m(), c.object2.state_m()
    cov1, cov2 = c.object1.covariance_rtn_m2(), c.object2.covariance_rtn_m2()
    new = cdm_from_encounter(
        c.tca, r1, v1, cov1, r2, v2, cov2, ref_frame="ITRF", collision_probability=1.5e-5,
        collision_probability_method="FOSTER-1992", hard_body_radius_m=20.0,
        object1={"OBJECT_DESIGNATOR": "43477", "OBJECT_NAME": "GRACE-FO 2"},
        object2={"OBJECT_DESIGNATOR": 38219},
        creation_date="2018-08-17T13:56:33", message_for="GRACE-FO 2",
    )  # fmt: skip
    np.testing.assert_allclose(new.relative_position_rtn_m, c.relative_position_rtn_m, rtol=0, atol=0.1)
    np.testing.assert_allclose(new.relative_velocity_rtn_m_s, c.relative_velocity_rtn_m_s, rtol=0, atol=0.1)
    assert abs(new.miss_distance_m - c.miss_distance_m) <= 1.0 and abs(new.relative_speed_m_s - 9078) <= 1.0
    assert new.tca == c.tca and new.ref_frame == "ITRF" and new.hard_body_radius_m == 20.0
    assert (
        new.collision_probability == 1.5e-5 and new.value("MESSAGE_ID") == "43477_conj_38219_20180819T051832"
    )
    assert new.object1.value("OBJECT_NAME") == "GRACE-FO 2" and new.object2.value("EPHEMERIS_NAME") == "NONE"
    for fmt in ("kvn", "xml"):
        assert read_cdm(write_cdm(tmp_path / f"new.{fmt}", new, fmt=fmt)) == new
    np.testing.assert_allclose(new.object1.covariance_rtn_m2(), cov1, rtol=1e-15, atol=0)
    np.testing.assert_allclose(new.object2.state_m()[1], v2, rtol=0, atol=1e-9)
    with pytest.raises(InputError, match="ref_frame"):
        cdm_from_encounter(c.tca, r1, v1, cov1, r2, v2, cov2, ref_frame="TEME")
    with pytest.raises(InputError, match="MASS"):
        cdm_from_encounter(c.tca, r1, v1, cov1, r2, v2, cov2, object1={"MASS": "100"})
    with pytest.raises(InputError, match="6x6"):
        cdm_from_encounter(c.tca, r1, v1, cov1[:3, :3], r2, v2, cov2)


def test_full_covariance_includes_drag_and_srp_rows(cara):
    # AlfanoTestCase01 object 1 prints CDRG_DRG = 1e-12 and CSRP_SRP = 1e-12 [m**4/kg**2], zero cross terms.
    full = cara["AlfanoTestCase01.cdm"].object1.covariance_rtn()
    assert full.shape == (8, 8) and full[6, 6] == 1e-12 and full[7, 7] == 1e-12 and full[7, 6] == 0.0
    np.testing.assert_array_equal(full, full.T)
