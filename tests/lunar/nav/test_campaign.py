"""Monte Carlo campaign through a real Dask scheduler and worker, driven by the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kizuna.lunar.nav.campaign import Dispersions, campaign_scenarios
from kizuna.lunar.nav.descent import Scenario


def test_dispersions_drawn_within_ranges():
    d = Dispersions(sun_elevation_deg=(8.0, 12.0), map_error_scale=(1.0, 1.0))
    scs = campaign_scenarios(Scenario(), 20, d, first_seed=5)
    assert [s.seed for s in scs] == list(range(5, 25))
    assert all(8.0 <= s.sun_elevation_deg <= 12.0 for s in scs)
    assert len({round(s.sun_elevation_deg, 6) for s in scs}) == 20  # each run draws its own
    assert all(s.terrain.seed == s.seed for s in scs)


@pytest.mark.timeout(600)
def test_campaign_cli_on_dask_scheduler(dask_cluster, tmp_path):
    address, worker = dask_cluster
    out = tmp_path / "camp"
    exe = Path(sys.executable).with_name("kizuna")
    proc = subprocess.run(
        [str(exe), "--quiet", "lunar", "campaign", "--runs", "2", "--out", str(out),
         "--scheduler", address, "--image-px", "256"],
        capture_output=True, text=True, timeout=580,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    for key in ("final_position_error_m_median", "final_position_error_m_p95", "false_fixes", "runs"):
        assert key in summary
    assert summary["runs"] == 2
    runs = pd.read_parquet(out / "runs.parquet")
    assert sorted(runs.seed) == [1, 2]
    # the runs ran in the dask worker's own process (started without a nanny), not in the command
    assert set(runs.process_id) == {worker.pid}
    assert (out / "report.html").stat().st_size > 10_000


def test_campaign_bad_runs_exit_2(tmp_path):
    exe = Path(sys.executable).with_name("kizuna")
    proc = subprocess.run(
        [str(exe), "lunar", "campaign", "--runs", "0", "--out", str(tmp_path / "c")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "--runs" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "c").exists()
