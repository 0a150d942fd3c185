"""The polar scenario: Sun 0.5-3 deg above the horizon, navigation by matching images with the map."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

from kizuna.lunar.nav.campaign import campaign_scenarios, preset
from kizuna.lunar.nav.descent import Scenario, simulate_landing

EXE = str(Path(sys.executable).with_name("kizuna"))
# The polar issue's definition of the scenario: Sun elevation between 0.5 and 3 deg.
POLAR_EL = (0.5, 3.0)


def test_polar_preset_draws_low_sun():
    base, disp = preset("polar")
    scs = campaign_scenarios(base, 30, disp, first_seed=1)
    el = np.array([s.sun_elevation_deg for s in scs])
    assert np.all((el >= POLAR_EL[0]) & (el <= POLAR_EL[1]))
    assert el.max() - el.min() > 1.5  # drawn over the range, not one value


@pytest.fixture(scope="module")
def polar_run():
    """A short polar landing navigated by correlation fixes only (128 x 128 images, five fix points)."""
    sc = Scenario.polar(
        image_width_px=128,
        image_height_px=128,
        fix_altitudes_m=(9000.0, 5000.0, 2500.0, 1000.0, 400.0),
        example_frames=0,
        fix_method="correlation",
        sun_azimuth_deg=200.0,
    ).with_seed(5)
    return simulate_landing(sc)


def test_polar_correlation_fixes_are_consistent(polar_run):
    s = polar_run.summary()
    acc = [f for f in polar_run.fixes if f.status == "accepted"]
    assert all(f.method == "correlation" for f in polar_run.fixes)
    assert len(acc) >= 6, [f.reason for f in polar_run.fixes]  # of 10 images
    assert s["false_fixes"] == 0 and s["false_fixes_strict"] == 0
    # Each accepted fix is consistent with its own covariance: horizontal squared Mahalanobis error below
    # the chi-square 99.99 % quantile with 2 degrees of freedom (18.42, chi-square table).
    for f in acc:
        e = np.asarray(f.error_l_m[:2]) / np.asarray(f.sigma_l_m[:2])
        assert float(e @ e) < chi2.ppf(0.9999, 2), f
    # The filter stays consistent: final position NEES below the 99.9 % quantile for 3 dof (16.27).
    assert polar_run.final_nees < chi2.ppf(0.999, 3)


def test_polar_fixes_beat_inertial_only(polar_run):
    # Without image fixes the initial 300 m (1 sigma) horizontal dispersion is not observed by the IMU
    # and the altimeter; with the correlation fixes the hover is reached within a few metres.
    assert polar_run.summary()["final_horizontal_error_m"] < 10.0


@pytest.mark.timeout(300)
def test_land_cli_polar_scenario(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [EXE, "--quiet", "lunar", "land", "--scenario", "polar", "--seed", "2", "--image-px", "64",
         "--out", str(out)],
        capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert POLAR_EL[0] <= summary["sun_elevation_deg"] <= POLAR_EL[1]
    fixes = pd.read_csv(out / "fixes.csv")
    assert set(fixes.method) <= {"craters", "correlation"}
    acc = fixes[fixes.status == "accepted"]
    assert (acc.method == "correlation").sum() == summary["fixes_accepted_correlation"]
    assert (
        summary["fixes_accepted_craters"] + summary["fixes_accepted_correlation"] == summary["fixes_accepted"]
    )


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["land", "--scenario", "polar", "--sun-elevation-deg", "10"], "--sun-elevation-deg"),
        (["land", "--scenario", "arctic"], "scenario"),
        (["campaign", "--runs", "2", "--scenario", "arctic"], "scenario"),
    ],
)
def test_polar_cli_bad_values_exit_2(tmp_path, args, word):
    out = tmp_path / "run"
    proc = subprocess.run([EXE, "lunar", *args, "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert word in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()
