"""The ``kizuna ssa screen`` and ``kizuna ssa convert`` commands, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kizuna.ssa.elements import read_tle

EXE = Path(sys.executable).with_name("kizuna")


def _run(*args, timeout=580):
    return subprocess.run([str(EXE), *map(str, args)], capture_output=True, text=True, timeout=timeout)


def _main(capsys, *args):
    """Run the kizuna command in this process; return (exit code, stderr)."""
    from kizuna.cli import main

    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code, capsys.readouterr().err


@pytest.fixture(scope="module")
def iridium(shared_data):
    return shared_data / "ssa" / "events" / "iridium33_cosmos2251_2009-02-10.tle"


def test_screen_writes_events_summary_and_report(iridium, tmp_path):
    out = tmp_path / "scr"
    proc = _run("ssa", "screen", iridium, "--start", "2009-02-10T12:00", "--days", "0.5",
                "--threshold-km", "5", "--out", out, "--mode", "serial")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    ev = pd.read_csv(out / "events.csv")
    assert {"id1", "id2", "tca_utc", "miss_km", "rel_speed_km_s"} <= set(ev.columns)
    assert len(ev) == 1 and ev["tca_utc"][0].startswith("2009-02-10T16:55:59.")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["events"] == 1 and summary["objects_screened"] == 2 and summary["objects_failed"] == 0
    assert "wall_s" in summary
    # the maximum Pc of a 698 m miss with a 10 m radius is near R^2 / (e d^2) (Alfano 2005)
    assert ev["pc_max"][0] == pytest.approx(
        10.0**2 / (2.718281828 * (ev["miss_km"][0] * 1000) ** 2), rel=1e-3
    )
    assert (out / "report.html").stat().st_size > 5000
    assert pd.read_parquet(out / "events.parquet").shape[0] == 1


def test_bad_records_are_skipped_and_counted(iridium, tmp_path):
    lines = iridium.read_text().splitlines()
    bad = list(lines)
    bad[2] = bad[2][:-1] + str((int(bad[2][-1]) + 1) % 10)  # checksum of IRIDIUM 33's line 2
    src = tmp_path / "bad.tle"
    src.write_text("\n".join(bad) + "\n")
    out = tmp_path / "scr"
    proc = _run("ssa", "screen", src, "--start", "2009-02-10T12:00", "--days", "0.1", "--threshold-km", "5",
                "--out", out, "--mode", "serial")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "checksum" in proc.stderr and "24946" in proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["element_problems"] == 1 and summary["objects_screened"] == 1


def test_nothing_usable_or_bad_options_exit_2_without_output(iridium, tmp_path, capsys):
    src = tmp_path / "junk.tle"
    src.write_text("1 not a tle\n2 neither\n")
    out = tmp_path / "scr"
    # as a user runs it: one line, exit 2, no traceback, no output folder
    proc = _run(
        "ssa", "screen", src, "--start", "2009-02-10", "--days", "1", "--threshold-km", "5", "--out", out
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.startswith("kizuna: error:")
        and "junk.tle" in proc.stderr
        and "Traceback" not in proc.stderr
    )
    assert not out.exists()
    code, err = _main(capsys, "ssa", "screen", iridium, "--start", "yesterday", "--days", "1",
                      "--threshold-km", "5", "--out", out)  # fmt: skip
    assert code == 2 and "--start" in err and not out.exists()
    code, err = _main(capsys, "ssa", "screen", iridium, "--start", "2009-02-10", "--days", "1",
                      "--threshold-km", "5", "--out", out, "--primaries", "99999")  # fmt: skip
    assert code == 2 and "99999" in err and not out.exists()


def test_far_from_epoch_window_is_warned(iridium, tmp_path):
    out = tmp_path / "scr"
    proc = _run("ssa", "screen", iridium, "--start", "2009-04-01", "--days", "0.05", "--threshold-km", "5",
                "--out", out, "--mode", "serial")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "epoch" in proc.stderr
    assert json.loads((out / "summary.json").read_text())["window_warnings"] == 2


@pytest.mark.timeout(600)
def test_screen_on_a_real_dask_scheduler(shared_data, dask_cluster, tmp_path):
    address, _worker = dask_cluster
    els, _ = read_tle(shared_data / "ssa" / "catalog" / "spacetrack_full_catalog_3le_2022-07-15.txt")
    band = [e for e in els if e.perigee_km >= 750 and e.apogee_km <= 900][:1200]
    src = tmp_path / "band.tle"
    src.write_text("".join(f"{e.line1}\n{e.line2}\n" for e in band))
    outs = {}
    for how in (["--mode", "serial"], ["--scheduler", address]):
        out = tmp_path / how[-1].replace(":", "_").replace("/", "_")
        proc = _run("ssa", "screen", src, "--start", "2022-07-15", "--days", "0.125", "--threshold-km", "5",
                    "--slice-hours", "1", "--out", out, *how)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        outs[how[0]] = pd.read_csv(out / "events.csv")
    a, b = outs["--mode"], outs["--scheduler"]
    assert len(a) > 0 and len(a) == len(b)
    pd.testing.assert_frame_equal(a, b)


def test_convert_tle_to_omm_and_back(iridium, tmp_path, capsys):
    for fmt in ("kvn", "xml", "json"):
        omm = tmp_path / f"x.{fmt}"
        assert _main(capsys, "ssa", "convert", iridium, "--out", omm, "--format", fmt)[0] == 0
        back = tmp_path / f"x_{fmt}.tle"
        assert _main(capsys, "ssa", "convert", omm, "--out", back, "--format", "3le")[0] == 0
        a, _ = read_tle(iridium)
        b, _ = read_tle(back)
        assert [(e.line1, e.line2) for e in a] == [(e.line1, e.line2) for e in b]
