"""The `kizuna lunar land` command: outputs, summary keys and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

EXE = str(Path(sys.executable).with_name("kizuna"))
REQUIRED = (
    "final_position_error_m",
    "final_altitude_m",
    "fixes_attempted",
    "fixes_accepted",
    "fixes_rejected",
    "false_fixes",
    "median_fix_latency_s",
)


@pytest.mark.timeout(600)
def test_land_writes_summary_report_and_tables(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [EXE, "--quiet", "lunar", "land", "--out", str(out), "--seed", "3", "--image-px", "256"],
        capture_output=True,
        text=True,
        timeout=580,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    for key in REQUIRED:
        assert key in summary, key
    # the hover altitude is the profile's design value (50 m above the target)
    assert summary["final_altitude_m"] == pytest.approx(50.0, abs=0.1)
    fixes = pd.read_csv(out / "fixes.csv")
    assert len(fixes) == summary["fixes_attempted"]
    assert (fixes.status == "accepted").sum() == summary["fixes_accepted"]
    traj = pd.read_parquet(out / "trajectory.parquet")
    assert {"t_s", "true_x_m", "est_x_m", "sigma_x_m"} <= set(traj.columns)
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "<script src" not in html


@pytest.mark.parametrize(
    ("option", "value", "word"),
    [
        ("--fov-deg", "0", "--fov-deg"),
        ("--fov-deg", "-5", "--fov-deg"),
        ("--sun-elevation-deg", "95", "sun"),
        ("--velocimeter-sigma-m-s", "-1", "--velocimeter-sigma-m-s"),
        ("--star-tracker-sigma-deg", "nan", "--star-tracker-sigma-deg"),
        ("--fix-altitudes-m", "1000,x", "--fix-altitudes-m"),
        ("--fix-altitudes-m", "20000", "--fix-altitudes-m"),
    ],
)
def test_land_bad_values_exit_2_without_output(tmp_path, option, value, word):
    out = tmp_path / "run"
    proc = subprocess.run(
        [EXE, "lunar", "land", "--out", str(out), option, value], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert word in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_land_out_is_a_file_exit_2(tmp_path):
    out = tmp_path / "file.txt"
    out.write_text("keep me")
    proc = subprocess.run([EXE, "lunar", "land", "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert out.read_text() == "keep me"


@pytest.mark.timeout(600)
def test_land_with_velocimeter_star_tracker_and_own_fix_points(tmp_path):
    out = tmp_path / "run"
    args = ["--fix-altitudes-m", "14000,5000,1000", "--velocimeter-sigma-m-s", "0.02"]
    args += ["--star-tracker-sigma-deg", "0.003", "--image-px", "256", "--seed", "2"]
    proc = subprocess.run(
        [EXE, "--quiet", "lunar", "land", "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=580,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    # two images at each of the three points asked for (Scenario.images_per_point), 2 s apart
    assert summary["fixes_attempted"] == 6
    alt = pd.read_csv(out / "fixes.csv")["altitude_m"].to_numpy()
    for point in (14000.0, 5000.0, 1000.0):
        assert ((alt > point - 150.0) & (alt < point + 1.0)).sum() == 2
