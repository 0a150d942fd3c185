"""Tests of ``kizuna ssa pc`` and ``kizuna ssa cdm`` through the top-level command.

Expected numbers come from NASA CARA: the Alfano (2009) test cases (``alfano2009_cases.json``: CARA_Pc2D,
CARA_PcMC and its 95 % interval, the HBR of each case), the Pc that CARA's sample CDMs print, and CARA's
PcCircle unit test of the non-positive-definite Omitron case (``cara_unit_test_vectors.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kizuna import cli
from kizuna.ssa.cdm import read_cdm

SAMPLE = "ssa/cara/SampleCDMs"
NPD = "OmitronTestCase_Test07_NonPDCovariance.cdm"
# Step of the last printed digit in CARA's sample CDMs: X/Y/Z in km to 6 decimals (1 mm) and
# X_DOT/Y_DOT/Z_DOT in km/s to 9 decimals (1e-6 m/s).
POSITION_STEP_M = 1e-3
VELOCITY_STEP_M_S = 1e-6


def _run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    return int(exc.value.code)


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def alfano(shared_data: Path) -> dict:
    return json.loads((shared_data / "ssa/cara/alfano2009/alfano2009_cases.json").read_text())["cases"]


def test_pc_foster_matches_cara_pc2d_on_the_alfano_cdms(shared_data, alfano, capsys) -> None:
    # CARA_Pc2D (Pc2D_Foster at TCA) of Alfano (2009) cases 1-11, and the HBR of each case. The CDMs
    # AlfanoTestCase01-11 carry the same conjunctions, but print states to 1 mm and 1e-6 m/s; the tables'
    # unrounded states give CARA's value to 1e-10 (tests/ssa/test_pc.py), the printed ones move it by up
    # to 2.2e-4 (case 8, relative speed 0.9 mm/s, where one velocity step turns the encounter plane by
    # ~1e-3 rad). So each case is held to the size of one printed step relative to its geometry,
    # step_r / miss + step_v / speed (from 2.5e-5 for case 11 to 1.5e-3 for case 8; the measured error
    # is at most 0.3 of it), and never looser than 1e-6 would be reachable.
    paths = [shared_data / SAMPLE / f"AlfanoTestCase{i:02d}.cdm" for i in range(1, 12)]
    assert _run(["ssa", "pc", "--json", "--method", "foster", *map(str, paths)]) == 0
    out = capsys.readouterr()
    recs = _json_lines(out.out)
    assert [r["file"] for r in recs] == [str(p) for p in paths]
    for i, rec in enumerate(recs, start=1):
        want = alfano[str(i)]["expected"]
        assert rec["hbr_m"] == want["HBR"] and rec["hbr_source"].startswith("COMMENT HBR"), i
        assert rec["method"] == "foster" and rec["pc_cdm"] is None, i
        assert rec["tca_utc"] == "2000-01-01T00:00:00.000Z"  # every Alfano CDM: TCA = 2000-01-01T00:00:00.000
        tol = max(1e-6, POSITION_STEP_M / rec["miss_m"] + VELOCITY_STEP_M_S / rec["rel_speed_m_s"])
        assert rec["pc"] == pytest.approx(want["CARA_Pc2D"], rel=tol), i
        # MISS_DISTANCE as printed in each file agrees with the state vectors to the printed 1 mm
        assert abs(rec["miss_m"] - rec["miss_m_cdm"]) < 2 * POSITION_STEP_M, i
        assert set(rec) >= {"flags", "pc_cdm_method", "sigma_x_m", "sigma_z_m", "pc_ci_low", "pc_ci_high"}
    assert "11 of 11 CDMs answered" in out.err


def test_table_output_and_hbr_override(shared_data, alfano, capsys) -> None:
    # Alfano case 3 (HBR 15 m): CARA_Pc2D 0.100351017 (0.69e-6 off from the printed states, see above).
    path = shared_data / SAMPLE / "AlfanoTestCase03.cdm"
    assert _run(["--quiet", "ssa", "pc", "--method", "foster", str(path)]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    header, row = out.out.splitlines()
    assert header.split()[:2] == ["file", "TCA"]
    cells = row.split()
    assert cells[0] == "AlfanoTestCase03.cdm" and cells[6] == "foster"
    assert float(cells[5]) == pytest.approx(alfano["3"]["expected"]["CARA_Pc2D"], rel=2e-6)
    # --hbr-m replaces the CDM's HBR: a radius of 4 m is case 8's HBR, not case 3's, so Pc must drop
    # well below case 3's, and the source says where the radius came from.
    assert _run(["ssa", "pc", "--json", "--method", "foster", "--hbr-m", "4", str(path)]) == 0
    rec = _json_lines(capsys.readouterr().out)[0]
    assert rec["hbr_m"] == 4.0 and rec["hbr_source"] == "--hbr-m"
    assert rec["pc"] < 0.5 * alfano["3"]["expected"]["CARA_Pc2D"]


def test_monte_carlo_interval_holds_caras_value(shared_data, alfano, capsys) -> None:
    # Alfano case 5 with CARA's window of +/- A09_FinalTime_s = 1419 s (Alfano09_CARA_Supplementary_Data):
    # CARA_PcMC = 0.04446611 from 1e8 trials. 20,000 samples give a 95 % interval of about +/- 0.003,
    # which must hold CARA's value; the interval must contain the reported Pc.
    path = shared_data / SAMPLE / "AlfanoTestCase05.cdm"
    argv = [
        "ssa",
        "pc",
        "--json",
        "--method",
        "mc",
        "--samples",
        "20000",
        "--seed",
        "1",
        "--window-s",
        "1419",
    ]
    assert _run([*argv, str(path)]) == 0
    rec = _json_lines(capsys.readouterr().out)[0]
    want = alfano["5"]["expected"]["CARA_PcMC"]
    assert rec["method"] == "mc" and rec["n_samples"] == 20000
    assert rec["pc_ci_low"] < want < rec["pc_ci_high"]
    assert rec["pc_ci_low"] <= rec["pc"] <= rec["pc_ci_high"]
    assert rec["pc_ci_high"] - rec["pc_ci_low"] < 0.01
    assert (rec["t_start_s"], rec["t_end_s"]) == (-1419.0, 1419.0)


def test_non_positive_definite_covariance_warns_and_flags(shared_data, capsys) -> None:
    # OmitronTestCase_Test07: object 2's position covariance is indefinite. CARA's PcCircle unit test of
    # this conjunction (cara_unit_test_vectors.json "npd_covariance") gives Pc 0.0 after remediation, and
    # the CDM itself prints COLLISION_PROBABILITY = 0 and COMMENT HBR = 52.8.
    path = shared_data / SAMPLE / NPD
    assert _run(["ssa", "pc", "--json", str(path)]) == 0
    out = capsys.readouterr()
    warnings = [line for line in out.err.splitlines() if line.startswith("kizuna: warning:")]
    assert len(warnings) == 1
    assert NPD in warnings[0] and "OBJECT2" in warnings[0] and "not positive definite" in warnings[0]
    rec = _json_lines(out.out)[0]
    assert "NPD_SECONDARY" in rec["flags"] and "NPD_REMEDIATED" in rec["flags"]
    assert rec["pc"] == 0.0 and rec["pc_cdm"] == 0.0 and rec["hbr_m"] == 52.8
    assert rec["tca_utc"] == "2017-02-02T23:14:54.330Z"  # TCA = 2017-033T23:14:54.330 (day 33 = Feb 2)
    assert rec["covariance_problems"][0].startswith("OBJECT2:")
    # --quiet leaves the warning and summary out, not the answer
    assert _run(["--quiet", "ssa", "pc", "--json", str(path)]) == 0
    out = capsys.readouterr()
    assert out.err == "" and _json_lines(out.out)[0]["flags"] == rec["flags"]


def _broken_copy(shared_data: Path, tmp_path: Path) -> Path:
    src = (shared_data / SAMPLE / "AlfanoTestCase01.cdm").read_text()
    bad = tmp_path / "broken_case01.cdm"
    bad.write_text(src.replace("= 153.446765 ", "= 153.44x765 "))  # line 47, X of object 1
    return bad


def test_malformed_cdm_exits_2_with_one_line(shared_data, tmp_path, capsys) -> None:
    bad = _broken_copy(shared_data, tmp_path)
    assert _run(["ssa", "pc", "--json", str(bad)]) == 2
    out = capsys.readouterr()
    err = out.err.strip().splitlines()
    assert out.out == "" and len(err) == 1 and "Traceback" not in out.err
    assert err[0].startswith("kizuna: error:") and "broken_case01.cdm" in err[0] and "line 47" in err[0]


def test_bad_file_among_several_is_skipped(shared_data, tmp_path, capsys) -> None:
    bad = _broken_copy(shared_data, tmp_path)
    good = shared_data / SAMPLE / "AlfanoTestCase11.cdm"
    assert _run(["--quiet", "ssa", "pc", "--json", "--method", "foster", str(bad), str(good)]) == 0
    out = capsys.readouterr()
    recs = _json_lines(out.out)
    assert [r["file"] for r in recs] == [str(good)]
    err = out.err.strip().splitlines()
    assert len(err) == 1 and "broken_case01.cdm" in err[0] and err[0].endswith("(skipped)")
    # none answerable: exit 2 with one line per file and a final error line
    assert _run(["ssa", "pc", str(bad), str(tmp_path / "absent.cdm")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "absent.cdm" in err[1] and err[2].startswith("kizuna: error: none of the 2")


def test_missing_hbr_asks_for_hbr_option(shared_data, alfano, tmp_path, capsys) -> None:
    # Case 11 without its COMMENT HBR line (and AREA_PC NaN): no radius, so --hbr-m is required; with
    # --hbr-m 4 (the case's HBR) the Pc is CARA_Pc2D again (1.5e-8 off from the printed states).
    src = (shared_data / SAMPLE / "AlfanoTestCase11.cdm").read_text()
    lines = [line for line in src.splitlines(keepends=True) if not line.startswith("COMMENT HBR")]
    assert len(lines) == len(src.splitlines()) - 1
    path = tmp_path / "nohbr.cdm"
    path.write_text("".join(lines))
    assert _run(["ssa", "pc", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nohbr.cdm" in err[0] and "--hbr-m" in err[0]
    assert _run(["ssa", "pc", "--json", "--method", "foster", "--hbr-m", "4", str(path)]) == 0
    rec = _json_lines(capsys.readouterr().out)[0]
    assert rec["pc"] == pytest.approx(alfano["11"]["expected"]["CARA_Pc2D"], rel=1e-6)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--method", "fast"], "--method"),
        (["--hbr-m", "-1"], "--hbr-m"),
        (["--samples", "0"], "--samples"),
        (["--window-s", "0"], "--window-s"),
    ],
)
def test_bad_options_exit_2(shared_data, capsys, argv: list[str], message: str) -> None:
    assert _run(["ssa", "pc", *argv, str(shared_data / SAMPLE / NPD)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kizuna: error:") and message in err[0]


@pytest.mark.parametrize(
    "name", ["ssa/cara/SampleCDMs/AlfanoTestCase01.cdm", "ssa/ccsds/cdm_example_section4.kvn"]
)
def test_cdm_kvn_xml_kvn_round_trip(shared_data, tmp_path, capsys, name: str) -> None:
    src = shared_data / name
    xml, kvn = tmp_path / "a.xml", tmp_path / "b.kvn"
    assert _run(["ssa", "cdm", str(src), "--out", str(xml)]) == 0  # format from the .xml suffix
    err = capsys.readouterr().err
    assert "(KVN)" in err and "(XML)" in err and str(xml) in err
    assert xml.read_text().startswith("<?xml")
    assert _run(["--quiet", "ssa", "cdm", str(xml), "--out", str(kvn), "--format", "kvn"]) == 0
    assert capsys.readouterr().err == ""
    original = read_cdm(src)
    assert read_cdm(xml) == original and read_cdm(kvn) == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.xml", "b.kvn"]  # no temporary files left


def test_cdm_bad_format_and_bad_input_exit_2(shared_data, tmp_path, capsys) -> None:
    src = shared_data / SAMPLE / "AlfanoTestCase01.cdm"
    assert _run(["ssa", "cdm", str(src), "--out", str(tmp_path / "x.txt"), "--format", "json"]) == 2
    bad = _broken_copy(shared_data, tmp_path)
    assert _run(["ssa", "cdm", str(bad), "--out", str(tmp_path / "y.xml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--format" in err[0] and "broken_case01.cdm" in err[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken_case01.cdm"]
