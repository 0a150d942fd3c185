"""TROPOMI L2 NO2 reading (official S5P layout and the flattened Matimba crop) and the ``kizuna eo no2``
commands."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from kizuna.eo.cli_no2 import app
from kizuna.eo.tropomi import pixel_extent_deg, read_no2_l2
from kizuna.errors import InputError

CROP = Path("eo") / "tropomi_no2_l2_crop_matimba" / "Matimba_S5P_RPRO_L2__NO2____20210725T110715.nc"


def write_s5p(path: Path, *, drop: str | None = None, lon0: float = 77.0, lat0: float = 28.0) -> dict:
    """Write a small file in the official S5P L2 NO2 layout: 2 scanlines x 3 ground pixels, squares of
    0.125 deg (exact in float32); qa_value bytes 74, 75, 76 / 100, 100, 50 with the product's float32
    scale factor 0.01; the column of pixel (1, 1) is the product's fill value. Returns what was written."""
    no2 = np.array([[1.0e-4, 2.0e-4, 3.0e-4], [4.0e-4, 9.96921e36, 6.0e-4]], dtype=np.float32)
    qa = np.array([[74, 75, 76], [100, 100, 50]], dtype=np.uint8)
    lat_c = np.empty((2, 3, 4), dtype=np.float32)
    lon_c = np.empty((2, 3, 4), dtype=np.float32)
    for i in range(2):
        for j in range(3):
            # corners in order around the pixel (counter-clockwise from its south-west corner)
            la, lo = lat0 + 0.125 * i, lon0 + 0.125 * j
            lat_c[i, j] = [la, la, la + 0.125, la + 0.125]
            lon_c[i, j] = [lo, lo + 0.125, lo + 0.125, lo]
    times = ["2024-01-15T08:00:00.000000Z", "2024-01-15T08:00:01.000000Z"]
    with netCDF4.Dataset(path, "w") as ds:
        ds.orbit = np.int32(32441)
        prod = ds.createGroup("PRODUCT")
        for name, size in (("time", 1), ("scanline", 2), ("ground_pixel", 3), ("corner", 4)):
            prod.createDimension(name, size)
        dims = ("time", "scanline", "ground_pixel")
        if drop != "nitrogendioxide_tropospheric_column":
            v = prod.createVariable("nitrogendioxide_tropospheric_column", "f4", dims, fill_value=9.96921e36)
            v.units = "mol m-2"
            v[0] = no2
        v = prod.createVariable("qa_value", "u1", dims)
        v.scale_factor = np.float32(0.01)
        v.add_offset = np.float32(0.0)
        v.set_auto_maskandscale(False)
        v[0] = qa
        prod.createVariable("latitude", "f4", dims)[0] = lat_c.mean(axis=-1)
        prod.createVariable("longitude", "f4", dims)[0] = lon_c.mean(axis=-1)
        t = prod.createVariable("time_utc", str, ("time", "scanline"))
        t[0, 0], t[0, 1] = times
        geo = prod.createGroup("SUPPORT_DATA").createGroup("GEOLOCATIONS")
        for name, arr in (("latitude_bounds", lat_c), ("longitude_bounds", lon_c)):
            if drop != name:
                geo.createVariable(name, "f4", (*dims, "corner"))[0] = arr
    return {"no2": no2, "qa": qa, "lat_c": lat_c, "lon_c": lon_c, "times": times}


def test_official_layout_qa_filter_and_fill(tmp_path: Path) -> None:
    # The S5P NO2 PUM recommends qa_value > 0.75: byte 75 (x float32 0.01 = 0.74999998) is left out like
    # 74 and 50, 76 and 100 are kept, and the fill value 9.96921e36 is left out whatever its qa_value.
    path = tmp_path / "S5P_OFFL_L2__NO2____20240115T080000.nc"
    made = write_s5p(path)
    px = read_no2_l2(path)
    assert px.layout == "s5p" and px.n_pixels_file == 6 and px.orbit == 32441
    assert list(zip(px.scanline, px.ground_pixel, strict=True)) == [(0, 2), (1, 0)]
    np.testing.assert_array_equal(px.no2_mol_m2, made["no2"][[0, 1], [2, 0]].astype(float))
    np.testing.assert_array_equal(px.qa_value, [0.76, 1.0])
    np.testing.assert_array_equal(px.lat_corners_deg[0], made["lat_c"][0, 2].astype(float))
    np.testing.assert_array_equal(px.lon_corners_deg[1], made["lon_c"][1, 0].astype(float))
    assert str(px.time_utc[0]) == "2024-01-15T08:00:00.000000000"
    assert str(px.time_utc[1]) == "2024-01-15T08:00:01.000000000"
    # a looser threshold lets 0.74 and 0.75 in (0.5 is not above 0.5); the fill value stays out
    assert read_no2_l2(path, qa_min=0.5).n == 4
    assert read_no2_l2(path, qa_min=0.0).n == 5


@pytest.mark.parametrize(
    "drop",
    [
        "nitrogendioxide_tropospheric_column",
        "latitude_bounds",
        "longitude_bounds",
    ],
)
def test_missing_variable_names_file_and_variable(tmp_path: Path, drop: str) -> None:
    path = tmp_path / "broken.nc"
    write_s5p(path, drop=drop)
    with pytest.raises(InputError) as err:
        read_no2_l2(path)
    msg = str(err.value)
    assert "broken.nc" in msg and drop in msg and "\n" not in msg


def test_not_a_tropomi_file(tmp_path: Path) -> None:
    other = tmp_path / "other.nc"
    with netCDF4.Dataset(other, "w") as ds:
        ds.createDimension("x", 2)
        ds.createVariable("temperature", "f4", ("x",))
    with pytest.raises(InputError, match=r"other\.nc.*nitrogendioxide_tropospheric_column.*NO2"):
        read_no2_l2(other)
    text = tmp_path / "notes.nc"
    text.write_text("not a NetCDF file\n")
    with pytest.raises(InputError, match=r"notes\.nc: cannot open as NetCDF"):
        read_no2_l2(text)


def test_flat_crop(shared_data: Path) -> None:
    # SOURCES.md and the file's own attributes: 132 x 169 pixels, 10,310 valid after the crop's
    # "QA value filter: > 0.75", orbit 19594 (file name), time units "days since 2021-07-25 11:44:52.59".
    px = read_no2_l2(shared_data / CROP)
    assert px.layout == "flat" and px.n_pixels_file == 132 * 169 and px.n == 10_310
    assert px.orbit == 19594 and px.qa_filter.startswith("qa_value > 0.75")
    assert str(px.time_utc[0])[:19] == "2021-07-25T11:44:52"
    assert px.lat_corners_deg.shape == (10_310, 4) and np.isfinite(px.lat_corners_deg).all()
    # ddeq's crop is +-300 km around Matimba (23.668 S, 27.611 E): the extent straddles the plant
    lat0, lat1, lon0, lon1 = pixel_extent_deg(px.lat_corners_deg, px.lon_corners_deg)
    assert lat0 < -23.668 < lat1 and lon0 < 27.611 < lon1 and lat1 - lat0 < 2 * 300 / 111.0 + 0.2
    # no qa_value is left in the crop, so a stricter filter than the crop's cannot be applied
    with pytest.raises(InputError, match="threshold 0.9"):
        read_no2_l2(shared_data / CROP, qa_min=0.9)


def test_pixel_extent_across_the_antimeridian() -> None:
    # corners at 179.9 and -179.9 deg: the short way round is 0.2 deg wide, written as 179.9..180.1
    lat = np.array([[0.0, 0.0, 0.1, 0.1]])
    lon = np.array([[179.9, -179.9, -179.9, 179.9]])
    lat0, lat1, lon0, lon1 = pixel_extent_deg(lat, lon)
    assert (lat0, lat1) == (0.0, 0.1)
    assert lon0 == pytest.approx(179.9) and lon1 == pytest.approx(180.1)


def test_cli_grid_writes_cf_netcdf_and_conserves(tmp_path: Path) -> None:
    path = tmp_path / "l2.nc"
    write_s5p(path, lat0=28.0, lon0=77.0)
    out, png = tmp_path / "L3.nc", tmp_path / "map.png"
    args = ["grid", str(path), "--res-deg", "0.0625", "--out", str(out), "--png", str(png)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert png.stat().st_size > 1000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with xr.open_dataset(out) as ds:
        assert ds.attrs["Conventions"] == "CF-1.8"
        no2 = ds["nitrogendioxide_tropospheric_column"]
        assert no2.attrs["units"] == "mol m-2"
        assert no2.attrs["standard_name"] == "troposphere_mole_content_of_nitrogen_dioxide"
        assert ds["lat"].attrs["units"] == "degrees_north" and ds["lon"].attrs["units"] == "degrees_east"
        assert ds["weight"].attrs["units"] == "m2"
        # 0.125 deg pixels on a 0.0625 deg grid aligned with them: each fills 2 x 2 cells exactly, so the
        # two kept pixels (qa > 0.75) give 8 cells holding their own values, the others none
        assert int(np.isfinite(no2.values).sum()) == 8
        assert sorted(np.unique(no2.values[np.isfinite(no2.values)]).round(10)) == [3e-4, 4e-4]
        np.testing.assert_allclose(ds["coverage"].values[np.isfinite(no2.values)], 1.0, rtol=1e-12)
        total = float((no2 * ds["weight"]).sum())
        assert abs(total - ds.attrs["pixels_total_mol"]) <= 1e-9 * ds.attrs["pixels_total_mol"]


def test_cli_grid_bad_input_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "broken.nc"
    write_s5p(path, drop="latitude_bounds")
    out = tmp_path / "L3.nc"
    result = CliRunner().invoke(app, ["grid", str(path), "--out", str(out)])
    assert result.exit_code != 0 and isinstance(result.exception, InputError)
    assert "latitude_bounds" in str(result.exception)
    assert not out.exists() and not list(tmp_path.glob(".L3.nc*"))
    good = tmp_path / "good.nc"
    write_s5p(good)
    result = CliRunner().invoke(app, ["grid", str(good), "--out", str(out), "--bbox", "30,20,70,80"])
    assert isinstance(result.exception, InputError) and "--bbox" in str(result.exception)
    # pixels at 28 N 77 E do not fall on a box over Japan: an error, not an empty map
    result = CliRunner().invoke(app, ["grid", str(good), "--out", str(out), "--bbox", "30,40,130,140"])
    assert isinstance(result.exception, InputError) and "no valid pixel" in str(result.exception)
    assert not out.exists()


def test_cli_monthly_weights_by_coverage(tmp_path: Path) -> None:
    # The same pixels twice, once with every column doubled: the coverage-weighted mean of two identical
    # footprints is (v + 2v) / 2 = 1.5 v in every cell, with twice the weight and n_orbits = 2.
    one, two = tmp_path / "a.nc", tmp_path / "b.nc"
    write_s5p(one)
    write_s5p(two)
    with netCDF4.Dataset(two, "a") as ds:
        var = ds["PRODUCT/nitrogendioxide_tropospheric_column"]
        var[0] = var[0] * 2.0
    runner = CliRunner()
    single, month = tmp_path / "one.nc", tmp_path / "month.nc"
    assert runner.invoke(app, ["grid", str(one), "--out", str(single)]).exit_code == 0
    result = runner.invoke(app, ["monthly", str(one), str(two), "--out", str(month), "--month", "2024-01"])
    assert result.exit_code == 0, result.output
    with xr.open_dataset(single) as s, xr.open_dataset(month) as m:
        a = s["nitrogendioxide_tropospheric_column"].values
        b = m["nitrogendioxide_tropospheric_column"].values
        ok = np.isfinite(a)
        np.testing.assert_allclose(b[ok], 1.5 * a[ok], rtol=1e-12)
        np.testing.assert_allclose(m["weight"].values[ok], 2 * s["weight"].values[ok], rtol=1e-12)
        assert set(np.unique(m["n_orbits"].values[ok])) == {2}
    # a month with no pixel in it leaves no file
    empty = tmp_path / "feb.nc"
    result = runner.invoke(app, ["monthly", str(one), "--out", str(empty), "--month", "2024-02"])
    assert isinstance(result.exception, InputError) and not empty.exists()


def test_cli_grid_on_the_india_grid(tmp_path: Path, shared_data: Path) -> None:
    # Pixels at 28 N 77 E (Delhi) onto the 10 km India grid: a CF grid mapping (lambert_conformal_conic,
    # standard parallels 12.472955 and 35.1728044 deg from the grid's .prj) and the cells' ids.
    path = tmp_path / "l2.nc"
    write_s5p(path)
    out = tmp_path / "india.nc"
    zip_path = shared_data / "eo" / "india_grid_10km" / "grid_india_10km_shapefiles.zip"
    args = ["grid", str(path), "--out", str(out), "--grid", "india10km", "--grid-file", str(zip_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    with xr.open_dataset(out) as ds:
        assert ds["nitrogendioxide_tropospheric_column"].dims == ("y", "x")
        assert ds["crs"].attrs["grid_mapping_name"] == "lambert_conformal_conic"
        np.testing.assert_allclose(ds["crs"].attrs["standard_parallel"], [12.472955, 35.1728044444444])
        assert ds["nitrogendioxide_tropospheric_column"].attrs["grid_mapping"] == "crs"
        no2 = ds["nitrogendioxide_tropospheric_column"].values
        covered = np.isfinite(no2)
        assert (ds["grid_id"].values[covered] > 0).all()
        # every cell mean lies between the two kept pixels' columns (an area-weighted mean of them)
        assert no2[covered].min() >= 3e-4 * (1 - 1e-6) and no2[covered].max() <= 4e-4 * (1 + 1e-6)
        total = float((ds["nitrogendioxide_tropospheric_column"] * ds["weight"]).sum())
        assert abs(total - ds.attrs["pixels_total_mol"]) <= 1e-9 * ds.attrs["pixels_total_mol"]
    bad = CliRunner().invoke(app, [*args, "--bbox", "20,30,70,80"])
    assert isinstance(bad.exception, InputError) and "--bbox" in str(bad.exception)


# The official S5P L2 NO2 layout as in the product's own header (S5P NO2 PUM and `ncdump -h` of S5P L2
# files): group PRODUCT with dimensions time = 1, scanline, ground_pixel, corner = 4 and their coordinate
# variables; nitrogendioxide_tropospheric_column float (_FillValue 9.96921e36, units "mol m-2"); qa_value
# ubyte with scale_factor 0.01f, add_offset 0, valid_min 0, valid_max 100 and _FillValue 255; time int
# "seconds since 2010-01-01 00:00:00"; delta_time int (time, scanline) "milliseconds since <day> 00:00:00";
# time_utc string (time, scanline) with _FillValue ""; latitude_bounds / longitude_bounds float (..., corner)
# with _FillValue 9.96921e36 in PRODUCT/SUPPORT_DATA/GEOLOCATIONS; corners counter-clockwise from the
# south-western one; the global attribute orbit.
FILL_F4 = np.float32(9.96921e36)


def write_s5p_official(path: Path, *, with_time_utc: bool = True) -> dict:
    """Write 3 scanlines x 4 ground pixels of 0.125 deg (exact in float32) over the antimeridian near Fiji,
    lon 179.8125 E .. 179.6875 W, lat 17 S .. 16.625 S. Pixel (1, 1) crosses 180 deg. Kept at
    qa_value > 0.75: (0, 0), (0, 2), (1, 0), (1, 1), (1, 2), (2, 3); left out: (0, 1) byte 75, (0, 3) the
    qa fill 255, (1, 3) byte 50, (2, 0) a column fill, (2, 1) a latitude_bounds fill, (2, 2) a
    longitude_bounds fill. Column of pixel (i, j) = 1e-4 (1 + 4 i + j) mol m-2."""
    ny, nx, h = 3, 4, 0.125
    no2 = (1e-4 * (1 + np.arange(ny * nx).reshape(ny, nx))).astype(np.float32)
    no2[2, 0] = FILL_F4
    qa = np.array([[100, 75, 76, 255], [100, 100, 100, 50], [100, 100, 100, 100]], dtype=np.uint8)
    lat_c = np.empty((ny, nx, 4), dtype=np.float32)
    lon_c = np.empty((ny, nx, 4), dtype=np.float32)
    for i in range(ny):
        for j in range(nx):
            la, lo = -17.0 + h * i, 179.8125 + h * j
            lat_c[i, j] = [la, la, la + h, la + h]
            lon_c[i, j] = (np.array([lo, lo + h, lo + h, lo]) + 180.0) % 360.0 - 180.0
    lat_c[2, 1, 3] = FILL_F4
    lon_c[2, 2, 0] = FILL_F4
    day_s = 442_972_800  # 2024-01-15 00:00:00 UTC in seconds since 2010-01-01 (5127 days x 86400 s)
    delta_ms = 8 * 3_600_000 + 1000 * np.arange(ny)  # 08:00:00, 08:00:01, 08:00:02 UTC
    dims = ("time", "scanline", "ground_pixel")
    with netCDF4.Dataset(path, "w") as ds:
        ds.orbit = np.int32(32441)
        prod = ds.createGroup("PRODUCT")
        for name, size in (("time", 1), ("scanline", ny), ("ground_pixel", nx), ("corner", 4)):
            prod.createDimension(name, size)
        for name, size in (("scanline", ny), ("ground_pixel", nx), ("corner", 4)):
            prod.createVariable(name, "i4", (name,))[:] = np.arange(size)
        t = prod.createVariable("time", "i4", ("time",))
        t.units = "seconds since 2010-01-01 00:00:00"
        t[:] = [day_s]
        d = prod.createVariable("delta_time", "i4", ("time", "scanline"), fill_value=np.int32(-2147483647))
        d.units = "milliseconds since 2024-01-15 00:00:00"
        d[0] = delta_ms
        if with_time_utc:
            tu = prod.createVariable("time_utc", str, ("time", "scanline"), fill_value="")
            for i in range(ny):
                tu[0, i] = f"2024-01-15T08:00:0{i}.000000Z"
        v = prod.createVariable("qa_value", "u1", dims, fill_value=np.uint8(255))
        v.setncatts({"scale_factor": np.float32(0.01), "add_offset": np.float32(0.0)})
        v.setncatts({"valid_min": np.uint8(0), "valid_max": np.uint8(100)})
        v.set_auto_maskandscale(False)
        v[0] = qa
        v = prod.createVariable("nitrogendioxide_tropospheric_column", "f4", dims, fill_value=FILL_F4)
        v.units = "mol m-2"
        v.set_auto_maskandscale(False)
        v[0] = no2
        for name, arr, units in (("latitude", lat_c, "degrees_north"), ("longitude", lon_c, "degrees_east")):
            v = prod.createVariable(name, "f4", dims, fill_value=FILL_F4)
            v.units = units
            v[0] = arr[..., 0] + np.float32(h / 2)  # (a centre; only the corners are used)
        geo = prod.createGroup("SUPPORT_DATA").createGroup("GEOLOCATIONS")
        for name, arr in (("latitude_bounds", lat_c), ("longitude_bounds", lon_c)):
            v = geo.createVariable(name, "f4", (*dims, "corner"), fill_value=FILL_F4)
            v.set_auto_maskandscale(False)
            v[0] = arr
    return {"no2": no2, "lat_c": lat_c, "lon_c": lon_c}


KEPT = [(0, 0), (0, 2), (1, 0), (1, 1), (1, 2), (2, 3)]


@pytest.mark.parametrize("with_time_utc", [True, False])
def test_official_layout_fill_values_and_times(tmp_path: Path, with_time_utc: bool) -> None:
    path = tmp_path / "S5P_OFFL_L2__NO2____20240115T080000.nc"
    made = write_s5p_official(path, with_time_utc=with_time_utc)
    px = read_no2_l2(path)
    assert px.layout == "s5p" and px.n_pixels_file == 12 and px.orbit == 32441
    assert list(zip(px.scanline.tolist(), px.ground_pixel.tolist(), strict=True)) == KEPT
    rows, cols = np.array(KEPT).T
    np.testing.assert_array_equal(px.no2_mol_m2, made["no2"][rows, cols].astype(float))
    np.testing.assert_array_equal(px.qa_value, [1.0, 0.76, 1.0, 1.0, 1.0, 1.0])
    # the antimeridian pixel keeps its corners as written (179.9375 E and 179.9375 W)
    np.testing.assert_array_equal(px.lon_corners_deg[3], [179.9375, -179.9375, -179.9375, 179.9375])
    # scanline i was observed at 08:00:0i UTC, from time_utc or from delta_time (ms since 2024-01-15)
    expected = [f"2024-01-15T08:00:0{i}" for i in rows]
    assert [str(t)[:19] for t in px.time_utc] == expected
    # qa_value > 0.5 adds byte 75 only: byte 50 is not above 0.5 and 255 is the fill value
    loose = read_no2_l2(path, qa_min=0.5)
    assert loose.n == 7 and (0, 1) in zip(loose.scanline.tolist(), loose.ground_pixel.tolist(), strict=True)


def test_official_delta_time_fill_is_not_a_time(tmp_path: Path) -> None:
    # A delta_time at its _FillValue has no time: NaT, not the reference time 2024-01-15 00:00.
    path = tmp_path / "l2.nc"
    write_s5p_official(path, with_time_utc=False)
    with netCDF4.Dataset(path, "a") as ds:
        ds["PRODUCT/delta_time"][0, 1] = np.ma.masked
        ds["PRODUCT/delta_time"].units = "milliseconds"  # no reference in the units: time + delta_time
    px = read_no2_l2(path)
    assert np.isnat(px.time_utc[px.scanline == 1]).all()
    assert [str(t)[:19] for t in px.time_utc[px.scanline != 1]] == [
        "2024-01-15T08:00:00",
        "2024-01-15T08:00:00",
        "2024-01-15T08:00:02",
    ]


def _rectangle_area_m2(lat0: float, lat1: float, lon0: float, lon1: float) -> float:
    """GeographicLib's WGS84 area of a lat/lon rectangle, its parallels traced by 4001 points each."""
    from pyproj import Geod

    lon = np.linspace(lon0, lon1, 4001)
    plon = np.concatenate([lon, lon[::-1]])
    plat = np.concatenate([np.full(lon.size, lat0), np.full(lon.size, lat1)])
    return abs(Geod(ellps="WGS84").polygon_area_perimeter(plon, plat)[0])


def test_cli_grid_official_file_across_the_antimeridian(tmp_path: Path) -> None:
    path = tmp_path / "S5P_OFFL_L2__NO2____20240115T080000.nc"
    made = write_s5p_official(path)
    out = tmp_path / "L3.nc"
    # 0.0625 deg cells over a box across 180 deg (LONMIN > LONMAX): each kept pixel fills 2 x 2 cells
    box = "-17,-16.625,179.75,-179.625"
    args = ["grid", str(path), "--res-deg", "0.0625", "--bbox", box, "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    with xr.open_dataset(out) as ds:
        no2 = ds["nitrogendioxide_tropospheric_column"].values
        assert no2.shape == (6, 10) and int(np.isfinite(no2).sum()) == 4 * len(KEPT)
        # pixel (1, 1), 16.875..16.75 S and 179.9375 E..179.9375 W: rows 2-3, columns 3-4 (180 deg is
        # between columns 3 and 4)
        np.testing.assert_allclose(no2[2:4, 3:5], float(made["no2"][1, 1]), rtol=1e-12)
        np.testing.assert_allclose(ds["coverage"].values[np.isfinite(no2)], 1.0, rtol=1e-12)
        # the column total against GeographicLib's areas of the kept pixels (lat/lon rectangles)
        ref = sum(
            float(made["no2"][i, j]) * _rectangle_area_m2(-17 + 0.125 * i, -16.875 + 0.125 * i, 0, 0.125)
            for i, j in KEPT
        )
        total = float(np.nansum(no2 * ds["weight"].values))
        assert total == pytest.approx(ref, rel=1e-9)
        assert ds.attrs["conservation_relative_error"] < 1e-12
        assert ds.attrs["time_coverage_start"] == "2024-01-15T08:00:00Z"
        assert ds.attrs["time_coverage_end"] == "2024-01-15T08:00:02Z"


def test_cli_grid_geotiff_and_no_partial_output(tmp_path: Path) -> None:
    import rasterio

    path = tmp_path / "l2.nc"
    made = write_s5p(path)
    out, tif = tmp_path / "L3.nc", tmp_path / "L3.tif"
    args = ["grid", str(path), "--res-deg", "0.0625", "--out", str(out), "--tif", str(tif)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    # the pixels span 28..28.25 N and 77..77.375 E: a north-up raster of 0.0625 deg cells from 77 E, 28.25 N
    # whose north-west 2 x 2 cells are pixel (1, 0) (qa 100, 4e-4 mol m-2) and south-east ones pixel (0, 2)
    with rasterio.open(tif) as src:
        data = src.read(1)
        assert src.crs.to_epsg() == 4326 and data.shape == (4, 6)
        assert src.transform.c == pytest.approx(77.0) and src.transform.f == pytest.approx(28.25)
        assert src.res == pytest.approx((0.0625, 0.0625))
        np.testing.assert_array_equal(data[:2, :2], made["no2"][1, 0])
        np.testing.assert_array_equal(data[2:, 4:], made["no2"][0, 2])
        assert int(np.isfinite(data).sum()) == 8
    # a GeoTIFF that cannot be written (the path is a folder) leaves no NetCDF behind either
    out.unlink()
    bad = CliRunner().invoke(
        app, ["grid", str(path), "--res-deg", "0.0625", "--out", str(out), "--tif", str(tmp_path)]
    )
    assert isinstance(bad.exception, InputError) and "is a folder" in str(bad.exception)
    assert not out.exists() and not list(tmp_path.glob(".L3.nc*"))
