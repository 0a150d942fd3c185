"""Tests of kizuna.gnss.dop: DOP of known geometries (closed forms derived on paper, written in each test),
clock columns per constellation, the elevation mask, region parsing, and NavIC/QZSS/GPS DOP over India from
the DLR RINEX 4 merged navigation file of 2023-03-12."""

from __future__ import annotations

import numpy as np
import pytest

from kizuna.core.geodesy import enu_matrix, geodetic_to_ecef
from kizuna.errors import InputError
from kizuna.gnss import dop, gtime


def _enu_unit(az_deg, el_deg):
    """Unit (east, north, up) vectors of azimuths/elevations in degrees."""
    az, el = np.radians(az_deg), np.radians(el_deg)
    return np.stack([np.cos(el) * np.sin(az), np.cos(el) * np.cos(az), np.sin(el)], axis=-1)


def _zenith_plus_three(el_deg):
    """One satellite at zenith and three at elevation el_deg, azimuths 0, 120, 240 deg."""
    return _enu_unit(np.array([0.0, 0.0, 120.0, 240.0]), np.array([90.0, el_deg, el_deg, el_deg]))


def _closed_form_zenith_plus_three(el_deg):
    # Paper derivation, one clock: rows [u_e, u_n, u_u, 1], s = sin(el), c = cos(el).
    # H^T H = diag(3c^2/2, 3c^2/2) in (e, n) (sums of sin^2/cos^2 over 0/120/240 deg are 3/2, cross sums 0),
    # decoupled from the (u, t) block [[1 + 3s^2, 1 + 3s], [1 + 3s, 4]] with determinant 3(1 - s)^2.
    # Hence Q_ee = Q_nn = 2/(3c^2), Q_uu = 4/(3(1-s)^2), Q_tt = (1 + 3s^2)/(3(1-s)^2).
    s, c = np.sin(np.radians(el_deg)), np.cos(np.radians(el_deg))
    q_h, q_u, q_t = 2.0 / (3.0 * c * c), 4.0 / (3.0 * (1 - s) ** 2), (1 + 3 * s * s) / (3.0 * (1 - s) ** 2)
    return {
        "hdop": np.sqrt(2 * q_h),
        "vdop": np.sqrt(q_u),
        "pdop": np.sqrt(2 * q_h + q_u),
        "tdop": np.sqrt(q_t),
        "gdop": np.sqrt(2 * q_h + q_u + q_t),
    }


def test_zenith_and_three_on_the_horizon():
    # el = 0: Q = diag(2/3, 2/3, 4/3, 1/3), so HDOP = VDOP = sqrt(4/3), PDOP = sqrt(8/3), TDOP = sqrt(1/3),
    # GDOP = sqrt(3) (the classic optimum-tetrahedron-like figure).
    r = dop.dop_from_geometry(_zenith_plus_three(0.0), np.zeros(4, int), np.ones(4, bool), 1)
    assert r["hdop"] == pytest.approx(np.sqrt(4 / 3), rel=1e-12)
    assert r["vdop"] == pytest.approx(np.sqrt(4 / 3), rel=1e-12)
    assert r["pdop"] == pytest.approx(np.sqrt(8 / 3), rel=1e-12)
    assert r["tdop"] == pytest.approx(np.sqrt(1 / 3), rel=1e-12)
    assert r["gdop"] == pytest.approx(np.sqrt(3.0), rel=1e-12)
    assert r["n_sats"] == 4


@pytest.mark.parametrize("el_deg", [15.0, 30.0, 60.0])
def test_zenith_and_three_at_elevation(el_deg):
    r = dop.dop_from_geometry(_zenith_plus_three(el_deg), np.zeros(4, int), np.ones(4, bool), 1)
    for name, value in _closed_form_zenith_plus_three(el_deg).items():
        assert r[name] == pytest.approx(value, rel=1e-10), name


def test_octahedron_one_and_two_clocks():
    # Six satellites along +-east, +-north, +-up. One clock: sum u u^T = 2 I and the mean is 0, so
    # Q_pos = I/2 and Q_tt = 1/6: HDOP 1, VDOP sqrt(1/2), PDOP sqrt(3/2), TDOP sqrt(1/6), GDOP sqrt(5/3).
    los = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float)
    r = dop.dop_from_geometry(los, np.zeros(6, int), np.ones(6, bool), 1)
    assert [r[k] for k in ("hdop", "vdop", "pdop", "tdop", "gdop")] == pytest.approx(
        [1.0, np.sqrt(0.5), np.sqrt(1.5), np.sqrt(1 / 6), np.sqrt(5 / 3)], rel=1e-12
    )
    # Two clocks, +-east/+-north in system 0 and +-up in system 1: each system's mean is 0, so the position
    # block is unchanged; the reference clock is system 0's with Q_tt = 1/4 (four satellites, zero mean).
    r2 = dop.dop_from_geometry(los, np.array([0, 0, 0, 0, 1, 1]), np.ones(6, bool), 2)
    assert [r2[k] for k in ("hdop", "vdop", "pdop", "tdop", "gdop")] == pytest.approx(
        [1.0, np.sqrt(0.5), np.sqrt(1.5), 0.5, np.sqrt(1.75)], rel=1e-12
    )


def test_second_system_with_one_satellite_changes_nothing():
    # One satellite of a second constellation adds one equation and one unknown (its clock): it is
    # absorbed entirely by that clock, so every DOP stays as without it (block elimination, on paper).
    base = _zenith_plus_three(20.0)
    extra = _enu_unit(np.array([77.0]), np.array([35.0]))
    los = np.concatenate([base, extra])
    r1 = dop.dop_from_geometry(base, np.zeros(4, int), np.ones(4, bool), 1)
    r2 = dop.dop_from_geometry(los, np.array([0, 0, 0, 0, 1]), np.ones(5, bool), 2)
    for name in dop.DOP_NAMES:
        assert r2[name] == pytest.approx(r1[name], rel=1e-12), name
    assert r2["n_sats"] == 5
    # with a single clock the same fifth satellite does improve the geometry
    r3 = dop.dop_from_geometry(los, np.zeros(5, int), np.ones(5, bool), 1)
    assert r3["pdop"] < r1["pdop"] - 0.01


def test_not_solvable_is_nan_and_invisible_satellites_ignored():
    los = _zenith_plus_three(20.0)
    # 3 + 1 satellites of two systems: 5 unknowns, 4 equations
    r = dop.dop_from_geometry(los, np.array([0, 0, 0, 1]), np.ones(4, bool), 2)
    assert np.isnan(r["pdop"]) and r["n_sats"] == 4
    # a hidden satellite is not counted
    hidden = los.copy()
    hidden[3] = np.nan  # a satellite with no position is not seen and must not spoil the others
    r = dop.dop_from_geometry(hidden, np.zeros(4, int), np.array([True, True, True, False]), 1)
    assert np.isnan(r["gdop"]) and r["n_sats"] == 3
    r = dop.dop_from_geometry(np.concatenate([los, hidden[3:]]), np.zeros(5, int), [1, 1, 1, 1, 0], 1)
    assert r["pdop"] == pytest.approx(_closed_form_zenith_plus_three(20.0)["pdop"], rel=1e-12)
    # four satellites in one plane through the receiver (all on the horizon): singular
    flat = _enu_unit(np.array([0.0, 90.0, 180.0, 270.0]), np.zeros(4))
    assert np.isnan(dop.dop_from_geometry(flat, np.zeros(4, int), np.ones(4, bool), 1)["pdop"])


def test_batched_leading_axes():
    los = np.stack([_zenith_plus_three(e) for e in (0.0, 15.0, 30.0)]).reshape(3, 1, 4, 3)
    r = dop.dop_from_geometry(los, np.zeros((3, 1, 4), int), np.ones((3, 1, 4), bool), 1)
    assert r["pdop"].shape == (3, 1)
    assert r["pdop"][1, 0] == pytest.approx(_closed_form_zenith_plus_three(15.0)["pdop"], rel=1e-10)


def test_geometry_input_errors():
    los = _zenith_plus_three(20.0)
    with pytest.raises(InputError, match="system_index"):
        dop.dop_from_geometry(los, np.array([0, 0, 0, 2]), np.ones(4, bool), 2)
    with pytest.raises(InputError, match="los_unit"):
        dop.dop_from_geometry(los[:, :2], np.zeros(4, int), np.ones(4, bool), 1)
    with pytest.raises(InputError, match="n_systems"):
        dop.dop_from_geometry(los, np.zeros(4, int), np.ones(4, bool), 0)


def _satellites_at(lat_deg, lon_deg, az_deg, el_deg, range_m=2.0e7):
    """ECEF positions of satellites seen at given azimuths/elevations from a site on the ellipsoid."""
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    site = geodetic_to_ecef(lat, lon, 0.0)
    return site + range_m * (_enu_unit(az_deg, el_deg) @ enu_matrix(lat, lon))


def test_positions_and_elevation_mask():
    # Site at 20 N, 80 E: zenith + three at 15 deg elevation, plus one at 5 deg that the 10 deg mask
    # removes and a 0 deg mask keeps.
    az = np.array([0.0, 0.0, 120.0, 240.0, 300.0])
    el = np.array([90.0, 15.0, 15.0, 15.0, 5.0])
    pos = _satellites_at(20.0, 80.0, az, el)[None]  # (1 epoch, 5 sats, 3)
    ok = np.ones((1, 5), bool)
    col = np.zeros(5, int)
    r = dop.dop_from_positions(pos, ok, col, 1, [20.0], [80.0], elev_mask_deg=10.0)
    assert r["n_sats"][0, 0] == 4
    for name, value in _closed_form_zenith_plus_three(15.0).items():
        assert float(r[name][0, 0]) == pytest.approx(value, rel=1e-5), name  # float32 output
    r0 = dop.dop_from_positions(pos, ok, col, 1, [20.0], [80.0], elev_mask_deg=0.0)
    assert r0["n_sats"][0, 0] == 5 and r0["pdop"][0, 0] < r["pdop"][0, 0]
    # an invalid ephemeris removes a satellite as the mask does
    bad = ok.copy()
    bad[0, 2] = False
    rb = dop.dop_from_positions(pos, bad, col, 1, [20.0], [80.0], elev_mask_deg=0.0)
    assert rb["n_sats"][0, 0] == 4
    # seen from the antipode no satellite is above the horizon
    ra = dop.dop_from_positions(pos, ok, col, 1, [-20.0], [-100.0], elev_mask_deg=0.0)
    assert ra["n_sats"][0, 0] == 0 and np.isnan(ra["pdop"][0, 0])


def test_clock_columns():
    cols, n = dop.clock_columns(list("GJIGE"), "GJIE", qzss_with_gps=True)
    assert n == 3 and cols.tolist() == [0, 0, 1, 0, 2]
    cols, n = dop.clock_columns(list("GJIGE"), "GJIE", qzss_with_gps=False)
    assert n == 4 and cols.tolist() == [0, 1, 2, 0, 3]
    cols, n = dop.clock_columns(list("JJ"), "J")  # QZSS alone has its own (the only) column
    assert n == 1 and cols.tolist() == [0, 0]
    with pytest.raises(InputError, match="not among"):
        dop.clock_columns(["C"], "GJ")


def test_parse_region_and_systems():
    assert dop.parse_region("india") == (5.0, 40.0, 65.0, 100.0)
    assert dop.parse_region(" Japan ") == (20.0, 50.0, 120.0, 155.0)
    assert dop.parse_region("10,20,70.5,80") == (10.0, 20.0, 70.5, 80.0)
    for bad, what in [
        ("mars", "--region 'mars'"),
        ("1,2,3", "LATMIN,LATMAX"),
        ("a,b,c,d", "LATMIN,LATMAX"),
        ("-95,10,70,80", r"\[-90, 90\]"),
        ("10,95,70,80", r"\[-90, 90\]"),
        ("20,10,70,80", "LATMIN"),
        ("10,20,80,80", "LONMIN"),
    ]:
        with pytest.raises(InputError, match=what):
            dop.parse_region(bad)
    assert dop.parse_systems("g,j+i") == "GJI"
    with pytest.raises(InputError, match="--systems"):
        dop.parse_systems("GX")
    with pytest.raises(InputError, match="--systems"):
        dop.parse_systems("GG")


class _FakeNav:
    """Navigation data stand-in: the satellite list is all dop_map reads from it before positions."""

    paths = ("synthetic.rnx",)

    def __init__(self, svs):
        import pandas as pd

        self.eph = pd.DataFrame({"sv": svs, "system": [s[0] for s in svs]})
        self.glo = pd.DataFrame({"sv": []})


def test_dop_map_assembly(monkeypatch):
    # Four NavIC satellites fixed in ECEF: zenith + three at 15 deg seen from 20 N, 80 E; at 01:00 the
    # ephemeris of I03 is invalid. The grid node at 20 N, 80 E must show the closed form above, then NaN.
    svs = ["I01", "I02", "I03", "I04", "G01"]
    fixed = _satellites_at(20.0, 80.0, np.array([0.0, 0.0, 120.0, 240.0]), np.array([90.0, 15.0, 15.0, 15.0]))

    def fake_positions(nav, sv, t_gpst, **kw):
        assert list(sv) == ["I01", "I02", "I03", "I04"]  # the GPS satellite is not among systems "I"
        n_t = len(t_gpst)
        ok = np.ones((n_t, 4), bool)
        ok[1, 2] = False
        return np.broadcast_to(fixed, (n_t, 4, 3)).copy(), ok

    monkeypatch.setattr(dop, "satellite_positions", fake_positions)
    seen = []
    ds = dop.dop_map(
        _FakeNav(svs), systems="I", date="2023-03-12", region=(19.0, 21.0, 79.0, 81.0), step_deg=1.0,
        step_s=3600.0, duration_s=3 * 3600.0, progress=lambda f, text: seen.append(f),
    )  # fmt: skip
    assert dict(ds.sizes) == {"time": 3, "lat": 3, "lon": 3}
    assert ds["lat"].values.tolist() == [19.0, 20.0, 21.0] and ds["lon"].values.tolist() == [79.0, 80.0, 81.0]
    assert str(ds["time"].values[1]) == "2023-03-12T01:00:00.000000000"
    assert ds.attrs["systems"] == "I" and ds.attrs["elevation_mask_deg"] == 10.0
    assert ds.attrs["source_nav"] == "synthetic.rnx" and ds.attrs["time_system"] == "GPST"
    node = ds.sel(lat=20.0, lon=80.0)
    expect = _closed_form_zenith_plus_three(15.0)
    assert float(node["pdop"][0]) == pytest.approx(expect["pdop"], rel=1e-5)
    assert np.isnan(float(node["pdop"][1])) and int(node["n_sats"][1]) == 3
    assert float(node["hdop"][2]) == pytest.approx(expect["hdop"], rel=1e-5)
    assert seen[-1] == pytest.approx(1.0) and seen == sorted(seen)


def test_summarise_dop_map():
    import xarray as xr

    # two epochs x two points; PDOP cells 1, 2, 7, NaN (no solution): by hand, median of the solved cells
    # is 2, the 95th percentile (numpy linear) 2 + 0.9 * 5 = 6.5, availability (PDOP <= 6) 2 of 4 cells.
    pdop = np.array([[[1.0, 2.0]], [[7.0, np.nan]]])
    dims = ("time", "lat", "lon")
    ds = xr.Dataset(
        {
            "pdop": (dims, pdop),
            "hdop": (dims, pdop / 2),
            "vdop": (dims, pdop),
            "gdop": (dims, pdop * 2),
            "n_sats": (dims, np.array([[[6, 7]], [[4, 3]]], dtype=np.int16)),
        },
        coords={
            "time": np.array(["2023-03-12T00:00", "2023-03-12T00:05"], "datetime64[ns]"),
            "lat": [10.0],
            "lon": [70.0, 71.0],
        },  # fmt: skip
        attrs={"systems": "GJI", "elevation_mask_deg": 10.0},
    )
    s = dop.summarise_dop_map(ds)
    assert s["pdop_median"] == pytest.approx(2.0) and s["pdop_p95"] == pytest.approx(6.5)
    assert s["availability_fraction"] == pytest.approx(0.5) and s["solution_fraction"] == pytest.approx(0.75)
    assert s["hdop_median"] == pytest.approx(1.0)
    assert s["n_sats_min"] == 3 and s["n_sats_max"] == 7 and s["n_sats_mean"] == pytest.approx(5.0)
    assert s["pdop_median_by_time"] == [pytest.approx(1.5), pytest.approx(7.0)]
    assert s["availability_point_min"] == pytest.approx(0.5)
    assert dop.summarise_dop_map(ds, pdop_max=8.0)["availability_fraction"] == pytest.approx(0.75)
    avail = dop.availability_map(ds, 6.0)
    assert avail.values.tolist() == [[0.5, 0.5]]
    import json

    json.dumps(s, allow_nan=False)  # plain types only: None where undefined, no NaN


BRD400 = "gnss/nav_multignss_navic/BRD400DLR_S_20230710000_01D_MN.rnx.gz"


@pytest.fixture(scope="module")
def brd400(shared_data):
    from kizuna.gnss.rinex_nav import read_nav

    return read_nav(shared_data / BRD400)


def test_india_pdop_from_the_dlr_merged_nav(brd400):
    # Median PDOP over India (5-40 N, 65-100 E), 2023-03-12, 10 deg mask, measured by the author on
    # a fine grid: about 28 for NavIC alone (four satellites: I02 I03 I06 I09), 1.6 for GPS+QZSS and 1.3 for
    # GPS+QZSS+NavIC; a coarse grid (5 deg, 1 h) keeps this test fast.
    kw = {"date": "2023-03-12", "region": "india", "step_deg": 5.0, "step_s": 3600.0, "elev_mask_deg": 10.0}
    navic = dop.dop_map(brd400, systems="I", **kw)
    assert navic.attrs["satellites"] == "I02 I03 I06 I09"
    assert dict(navic.sizes) == {"time": 24, "lat": 8, "lon": 8}
    s_i = dop.summarise_dop_map(navic)
    assert s_i["pdop_median"] == pytest.approx(28.0, rel=0.15)
    assert s_i["availability_fraction"] == 0.0  # four satellites never reach PDOP 6 anywhere
    gj = dop.summarise_dop_map(dop.dop_map(brd400, systems="GJ", **kw))
    assert gj["pdop_median"] == pytest.approx(1.6, rel=0.05)
    assert gj["availability_fraction"] == 1.0
    # The author's 1.3 for GPS+QZSS+NavIC matches one receiver clock shared by all three (as RTKLIB's
    # dops() assumes); with NavIC's own clock column the median must lie between that and GPS+QZSS alone.
    gji_ds = dop.dop_map(brd400, systems="GJI", **kw)
    gji = dop.summarise_dop_map(gji_ds)
    svs = gji_ds.attrs["satellites"].split()
    t = gji_ds["time"].values
    pos, ok = dop.satellite_positions(brd400, svs, gtime.datetime64_to_gpst(t))
    la, lo = np.meshgrid(gji_ds["lat"].values, gji_ds["lon"].values, indexing="ij")
    one = dop.dop_from_positions(pos, ok, np.zeros(len(svs), int), 1, la.ravel(), lo.ravel())
    assert float(np.nanmedian(one["pdop"])) == pytest.approx(1.3, rel=0.05)
    assert float(np.nanmedian(one["pdop"])) < gji["pdop_median"] < gj["pdop_median"]


def test_site_series_and_tracks_agree_with_the_map(brd400):
    # Bengaluru-like site on a grid node: the series must equal the map's column there, and the satellites
    # that sky_tracks (geodesy.azimuth_elevation) puts above the mask are the map kernel's n_sats.
    kw = {"systems": "GJI", "step_s": 3600.0, "elev_mask_deg": 10.0}
    ds = dop.dop_map(brd400, date="2023-03-12", region=(10.0, 15.0, 75.0, 80.0), step_deg=5.0, **kw)
    df = dop.dop_series(brd400, lat_deg=15.0, lon_deg=80.0, start="2023-03-12", **kw)
    node = ds.sel(lat=15.0, lon=80.0)
    assert np.array_equal(df["n_sats"].to_numpy(), node["n_sats"].values)
    assert df["pdop"].to_numpy() == pytest.approx(node["pdop"].values.astype(float), rel=1e-6)
    tracks = dop.sky_tracks(brd400, lat_deg=15.0, lon_deg=80.0, start="2023-03-12", **kw)
    per_epoch = tracks.groupby("time").size().reindex(df["time"], fill_value=0).to_numpy()
    assert np.array_equal(per_epoch, df["n_sats"].to_numpy())
    assert tracks["el_deg"].min() >= 10.0 and set(tracks["system"]) == {"G", "J", "I"}
