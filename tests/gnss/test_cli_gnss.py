"""The ``kizuna gnss`` commands (read, spp, spp-many, dop), run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kizuna.gnss.nmea import nmea_checksum
from kizuna.gnss.rinex_obs import read_obs, read_obs_parquet

EXE = Path(sys.executable).with_name("kizuna")
TRUTH = "-3962108.6730,3381309.5740,3668678.6380"  # SEPT078M antenna (reference_stations.csv)


def _run(*args, timeout=300):
    return subprocess.run([str(EXE), *map(str, args)], capture_output=True, text=True, timeout=timeout)


def _main(capsys, *args):
    """Run the kizuna command in this process; return (exit code, stderr)."""
    from kizuna.cli import main

    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code, capsys.readouterr().err


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KIZUNA_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def japan(shared_data):
    d = shared_data / "gnss" / "japan_cssrlib_2021078"
    return d / "SEPT078M.21O", d / "SEPT078M.21P"


def test_spp_writes_solution_summary_nmea_and_report(japan, tmp_path, capsys):
    obs, nav = japan
    out = tmp_path / "spp"
    code, err = _main(capsys, "gnss", "spp", obs, nav, "--systems", "GEJ", f"--truth={TRUTH}", "--out", out)
    assert code == 0, err
    assert "900/900 epochs solved" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 900 and summary["solved"] == 900 and summary["systems_used"] == "GEJ"
    # The antenna is known to the centimetre; single-point positioning is good to about a metre.
    assert np.linalg.norm(np.array(summary["mean_ecef_m"]) - np.fromstring(TRUTH, sep=",")) < 3.0
    assert 0.2 < summary["h95_m"] < 1.0 and 1.0 < summary["v95_m"] < 3.0 and summary["rms3d_m"] > 0
    sol = pd.read_csv(out / "solution.csv")
    assert len(sol) == 900 and {"x_m", "lat_deg", "pdop", "err_east_m"} <= set(sol.columns)
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "solution.parquet")[["x_m", "y_m", "z_m"]], sol[["x_m", "y_m", "z_m"]]
    )
    gga = (out / "solution.nmea").read_text().splitlines()
    assert len(gga) == 900
    body, star = gga[0][1:].split("*")
    assert star == nmea_checksum(body) and body.split(",")[3] == "N" and body.split(",")[5] == "E"
    for name in (
        "horizontal.png",
        "error_time.png",
        "dop.png",
        "sky.png",
        "report.html",
        "residuals.parquet",
    ):
        assert (out / name).stat().st_size > 1000, name


def test_read_writes_parquet_of_observations_and_navigation(japan, tmp_path, capsys):
    obs, nav = japan
    code, err = _main(capsys, "gnss", "read", obs, "--out", tmp_path / "obs.parquet", "--no-cache")
    assert code == 0, err
    assert "900 epochs" in err
    back = read_obs_parquet(tmp_path / "obs.parquet")
    ref = read_obs(obs, cache=False)
    assert back.sats.tolist() == ref.sats.tolist()
    np.testing.assert_array_equal(back.values, ref.values)
    code, err = _main(capsys, "gnss", "read", nav, "--out", tmp_path / "nav.parquet")
    assert code == 0, err
    # SEPT078M.21P holds 24 GPS, 210 Galileo and 8 QZSS records (SOURCES.md), compressed or not.
    assert len(pd.read_parquet(tmp_path / "nav.parquet")) == 242
    import bz2

    packed = tmp_path / "SEPT078M.21P.bz2"
    packed.write_bytes(bz2.compress(Path(nav).read_bytes()))
    code, err = _main(capsys, "gnss", "read", packed, "--out", tmp_path / "nav_bz2.parquet")
    assert code == 0, err
    assert len(pd.read_parquet(tmp_path / "nav_bz2.parquet")) == 242


def test_dop_map_over_india_with_navic(shared_data, tmp_path, capsys):
    nav = shared_data / "gnss" / "nav_multignss_navic" / "BRD400DLR_S_20230710000_01D_MN.rnx.gz"
    out = tmp_path / "dop"
    code, err = _main(capsys, "gnss", "dop", nav, "--region", "india", "--systems", "I",
                      "--date", "2023-03-12", "--step-deg", "5", "--step-min", "60",
                      "--site", "28.6,77.2", "--out", out)  # fmt: skip
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    # The measurement on this file: median PDOP about 28 over India for NavIC alone (4 satellites).
    assert 20.0 < summary["pdop_median"] < 40.0
    import rasterio
    import xarray as xr

    with xr.open_dataset(out / "dop.nc", engine="netcdf4") as ds:
        assert ds["pdop"].shape == (24, 8, 8) and "availability" in ds
    with rasterio.open(out / "pdop_median.tif") as tif:
        assert tif.crs.to_epsg() == 4326 and tif.shape == (8, 8)
        band = tif.read(1)
        # North-up: the first row is the northern edge (40 N).
        assert tif.transform.f == pytest.approx(42.5) and np.isfinite(band).any()
    assert (out / "report.html").stat().st_size > 10_000
    # New Delhi over the day: the file's NavIC constellation is four satellites (I02 I03 I06 I09).
    site = pd.read_csv(out / "site_dop.csv")
    assert len(site) == 24 and site["n_sats"].max() <= 4 and (out / "site_sky.png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["gnss", "dop", "NAV", "--region", "5,40,100,65", "--date", "2023-03-12", "--out", "OUT"],
            "--region",
        ),
        (["gnss", "dop", "NAV", "--date", "12/03/2023", "--out", "OUT"], "--date"),
        (["gnss", "dop", "NAV", "--date", "2023-03-12", "--site", "95,10", "--out", "OUT"], "--site"),
        (["gnss", "spp", "TXT", "NAV", "--out", "OUT"], "RINEX VERSION / TYPE"),
        (["gnss", "spp", "OBS", "NAV", "--truth", "1,2", "--out", "OUT"], "--truth"),
        (["gnss", "spp", "OBS", "KMS", "--out", "OUT"], "no valid ephemeris"),
        (["gnss", "read", "TXT", "--out", "OUT"], "RINEX VERSION / TYPE"),
    ],
)
def test_bad_input_exits_2_and_leaves_nothing(japan, shared_data, tmp_path, capsys, args, message):
    txt = tmp_path / "notes.txt"
    txt.write_text("these are not GNSS observations\n")
    names = {
        "OBS": japan[0],
        "NAV": shared_data / "gnss" / "nav_multignss_navic" / "BRD400DLR_S_20230710000_01D_MN.rnx.gz",
        "KMS": shared_data / "gnss" / "europe_kms3_2022159" / "KMS300DNK_R_20221591000_01H_MN.rnx.gz",
        "TXT": txt,
        "OUT": tmp_path / "out",
    }
    if args[1] == "spp" and args[3] == "NAV":
        names["NAV"] = japan[1]
    code, err = _main(capsys, *[names.get(a, a) for a in args])
    assert code == 2 and message in err and "Traceback" not in err
    assert err.startswith("kizuna: error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.timeout(300)
def test_spp_many_on_a_real_dask_scheduler(japan, dask_cluster, tmp_path):
    address, _worker = dask_cluster
    obs, nav = japan
    a, b = tmp_path / "SEPT078A.21O", tmp_path / "SEPT078B.21O"
    text = obs.read_text().splitlines(keepends=True)
    a.write_text("".join(text[: len(text) // 10]))  # the first ~90 s, cut mid-epoch
    b.write_text("".join(text[: len(text) // 5 + 3]))
    bad = tmp_path / "junk.21O"
    bad.write_text("not RINEX\n")
    out = tmp_path / "many"
    proc = _run("gnss", "spp-many", a, b, bad, "--nav", nav, "--systems", "GEJ", "--scheduler", address,
                "--out", out)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "summary.csv").set_index("out", drop=False)
    assert len(table) == 3 and (table["error"].fillna("") != "").sum() == 1
    assert "junk.21O" in proc.stderr and "2/3 files positioned" in proc.stderr
    full = json.loads((out / "SEPT078B_21O" / "summary.json").read_text())  # the first ~3 minutes
    part = json.loads((out / "SEPT078A_21O" / "summary.json").read_text())
    assert 170 < full["epochs"] < 190 and 80 < part["epochs"] < 95 and part["obs_problems"] >= 1
    assert full["solved"] == full["epochs"] and part["solved"] == part["epochs"]
