"""Tests of ``kizuna lunar surface illumination`` through the top-level command: its files, their
agreement with the library, and bad input (exit code 2, one line, no output folder left behind)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from kizuna import cli
from kizuna.core.raster import read_dem
from kizuna.lunar.surface.cli import builtin_dem_path
from kizuna.lunar.surface.horizon import HorizonTable
from kizuna.lunar.surface.illumination_map import illumination_map, load_illumination

ARGS = ["--start", "2027-01-01", "--end", "2027-01-15", "--max-colatitude-deg", "0.4"]


def _run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    return int(exc.value.code)


def test_illumination_writes_maps_that_match_the_library(tmp_path: Path) -> None:
    out = tmp_path / "ill"
    assert _run(["--quiet", "lunar", "surface", "illumination", *ARGS, "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    for need in (
        "sun_fraction.tif",
        "earth_fraction.tif",
        "max_darkness_hours.tif",
        "psr.tif",
        "summary.json",
        "report.html",
        "horizons.npz",
    ):
        assert need in names
    summary = json.loads((out / "summary.json").read_text())
    best = summary["best_sites"][0]
    assert set(best) >= {"lat_deg", "lon_deg", "sun_fraction", "max_darkness_hours", "earth_fraction"}
    with rasterio.open(out / "psr.tif") as ds:
        psr = ds.read(1)
        assert ds.dtypes[0] == "uint8" and ds.nodata == 255
        assert ds.crs is not None and ds.transform == read_dem(builtin_dem_path()).transform
    assert set(np.unique(psr)) <= {0, 1, 255}
    # the folder reads back to the same numbers the library gives for the same request
    lib = illumination_map(
        read_dem(builtin_dem_path()), "2027-01-01", "2027-01-15", 6.0, max_colatitude_deg=0.4
    )
    back = load_illumination(out)
    assert np.allclose(back.layers["sun_fraction"], lib.layers["sun_fraction"], equal_nan=True, atol=1e-6)
    assert np.array_equal(back.psr, lib.psr)
    assert summary["psr_area_km2"] == pytest.approx((lib.psr == 1).sum() * 1600.0**2 / 1e6)
    assert np.array_equal(HorizonTable.load(out / "horizons.npz").elevation_q, lib.horizons.elevation_q)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--start", "2051-01-01", "--end", "2051-02-01"], "2050-01-01"),
        (["--start", "2027-02-01", "--end", "2027-01-01"], "end after the start"),
        (["--step-hours", "0"], "positive number of hours"),
        (["--max-colatitude-deg", "0"], "max colatitude"),
    ],
)
def test_bad_input_exits_2_without_output(tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    out = tmp_path / "bad"
    argv = ["lunar", "surface", "illumination", *ARGS, *extra, "--out", str(out)]
    assert _run(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kizuna: error:") and message in err[0]
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("crs", "message"),
    [
        (None, "no CRS"),  # a GeoTIFF without geo-reference
        ("+proj=longlat +R=1737400 +no_defs", "unsupported"),  # a lon/lat grid such as the global LOLA map
        ("EPSG:3031", "lunar sphere"),  # polar stereographic, but on the Earth's ellipsoid
    ],
)
def test_dem_without_a_lunar_polar_projection_is_refused(tmp_path: Path, capsys, crs, message) -> None:
    import warnings

    from affine import Affine

    dem = tmp_path / "dem.tif"
    profile = dict(driver="GTiff", width=8, height=8, count=1, dtype="float32")
    if crs is not None:
        profile.update(crs=crs, transform=Affine(1000.0, 0, -4000.0, 0, -1000.0, 4000.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(dem, "w", **profile) as ds:
            ds.write(np.zeros((1, 8, 8), dtype="float32"))
    out = tmp_path / "o"
    assert _run(["lunar", "surface", "illumination", *ARGS, "--dem", str(dem), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and not out.exists()
