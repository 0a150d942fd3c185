"""Active-fire tables: the Bhuvan, PRSC and FIRMS readers and their quirks, counts per district, day,
satellite and grid cell, the comparison with official daily counts, and the ``kizuna eo fires`` commands.

Expected numbers come from the data files' own official values (the Bhuvan daily counts file and
../shared/data/eo/SOURCES.md), from the published NASA FIRMS attribute description (for the FIRMS snippet
written here by hand), or from arithmetic on times and cell edges.
"""

from __future__ import annotations

import csv
import glob
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kizuna.eo.cli_fires import app
from kizuna.eo.fires import (
    compare_daily,
    comparison_summary,
    count_fires,
    fire_count_grid,
    grid_counts,
    normalise_district,
    parse_by,
    read_fires,
    read_official_counts,
    utc_offset_min,
)
from kizuna.errors import InputError

# SOURCES.md: the detections equal the official daily counts on these days; 10-28, 10-29 and 10-31 are
# partial snapshots (131 vs 143, 413 vs 1162, 2 vs 71) and 11-01 has no official count.
COMPLETE_DAYS = [
    "2023-10-22",
    "2023-10-23",
    "2023-10-24",
    "2023-10-25",
    "2023-10-26",
    "2023-10-27",
    "2023-10-30",
]
PARTIAL = {"2023-10-28": (131, 143), "2023-10-29": (413, 1162), "2023-10-31": (2, 71)}

# A FIRMS VIIRS and a FIRMS MODIS snippet written from the FIRMS attribute description (acq_date, acq_time
# as HHMM in UTC; VIIRS satellite N = S-NPP, N20 / 1 = NOAA-20, confidence l/n/h; MODIS satellite A = Aqua,
# T = Terra, confidence 0-100).
FIRMS_COMMON = "scan track acq_date acq_time satellite instrument confidence version".split()
FIRMS_VIIRS = "\n".join(
    [
        ",".join(["latitude", "longitude", "bright_ti4", *FIRMS_COMMON, "bright_ti5", "frp", "daynight"]),
        "30.21126,76.44031,334.2,0.41,0.45,2023-10-30,0812,N,VIIRS,n,2.0NRT,296.3,4.2,D",
        "30.21126,76.44031,334.2,0.41,0.45,2023-10-30,812,N,VIIRS,n,2.0NRT,296.3,4.2,D",
        "30.88211,75.99420,301.5,0.39,0.36,2023-10-30,2055,N,VIIRS,l,2.0NRT,285.0,0.4,N",
        "30.40000,75.10000,340.0,0.50,0.49,2023-10-30,0738,N20,VIIRS,h,2.0NRT,300.0,7.7,D",
        "30.50000,75.20000,339.0,0.50,0.49,2023-10-30,738,1,VIIRS,n,2.0NRT,299.0,6.1,D",
    ]
)
FIRMS_MODIS = "\n".join(
    [
        ",".join(["latitude", "longitude", "brightness", *FIRMS_COMMON, "bright_t31", "frp", "daynight"]),
        "29.843,75.249,320.1,1.1,1.0,2023-10-15,820,Aqua,MODIS,74,6.1NRT,298.2,13.8,D",
        "29.642,75.299,318.4,1.1,1.0,2023-10-15,0550,T,MODIS,55,6.1NRT,297.0,7.2,D",
    ]
)


@pytest.fixture(scope="module")
def fires_dir(shared_data):
    return shared_data / "eo" / "fires_punjab_bhuvan_2023"


@pytest.fixture(scope="module")
def bhuvan(fires_dir):
    return read_fires(fires_dir / "bhuvan_fires_punjab_2023.csv")


@pytest.fixture(scope="module")
def official(fires_dir):
    # The official counts read with the csv module, not with the code under test.
    with open(fires_dir / "bhuvan_fire_counts_punjab_daily_2023.csv", newline="") as fh:
        return {row["date"]: int(row["count"]) for row in csv.DictReader(fh)}


def _runner_invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_bhuvan_file_reads_every_detection(bhuvan):
    # SOURCES.md: 6,313 unique detections, 22 districts, 4,651 VIIRS + 1,662 MODIS, Punjab only.
    t = bhuvan.table
    assert len(t) == 6313 and bhuvan.n_duplicates == 0 and bhuvan.problems == ()
    assert t["district"].nunique() == 22 and set(t["state"]) == {"PB"}
    assert (t["instrument"] == "VIIRS").sum() == 4651 and (t["instrument"] == "MODIS").sum() == 1662
    assert set(t.loc[t["instrument"] == "VIIRS", "satellite"]) == {"S-NPP"}
    # Every acqtime has 'M3' in its minutes field: hour precision only.
    assert set(t["time_precision"]) == {"hour"}
    # First record: 2023-10-22, 01:M3:16 IST -> 01:00 IST = 2023-10-21 19:30 UTC (IST = UTC+05:30).
    assert t["acq_time_utc"].iloc[0] == pd.Timestamp("2023-10-21 19:30")
    assert t["source_line"].iloc[0] == 2


def test_daily_counts_equal_official_on_complete_days(bhuvan, official, fires_dir):
    per_day = count_fires(bhuvan, "day").set_index("date")["count"]
    for day in COMPLETE_DAYS:
        assert per_day[day] == official[day], day
    assert per_day["2023-10-30"] == 1130  # SOURCES.md
    off = read_official_counts(fires_dir / "bhuvan_fire_counts_punjab_daily_2023.csv")
    daily = compare_daily(bhuvan, off).set_index("date")
    assert daily.index[daily["complete"]].tolist() == COMPLETE_DAYS
    for day, (det, off_n) in PARTIAL.items():
        assert (daily.loc[day, "detections"], daily.loc[day, "official"], daily.loc[day, "status"]) == (
            det,
            off_n,
            "partial",
        )
    assert daily.loc["2023-11-01", "status"] == "no official count"
    assert daily.loc["2023-10-21", "status"] == "not covered"
    summary = comparison_summary(daily.reset_index())
    assert summary["days_complete"] == COMPLETE_DAYS and summary["days_partial"] == list(PARTIAL)
    assert summary["days_without_official"] == ["2023-11-01"]


def test_upstream_json_snapshots_merge_to_the_csv(fires_dir, official):
    # SOURCES.md: the CSV is the de-duplicated concatenation of every version of the upstream JSON.
    files = sorted(glob.glob(str(fires_dir / "raw_json" / "data*.json")))
    det = read_fires(files)
    assert len(det.table) == 6313 and det.n_duplicates == det.n_records - 6313
    one_day = read_fires(fires_dir / "raw_json" / "data_20231022__0406e1dd.json")
    assert len(one_day.table) == official["2023-10-22"]


def test_prsc_table(fires_dir, official):
    det = read_fires(fires_dir / "prsc_fires_punjab_2023-10-15.csv")
    t = det.table
    # The day's PRSC table holds as many detections as the official count of 2023-10-15.
    assert det.formats == ("prsc",) and len(t) == official["2023-10-15"] == 69
    assert t["tehsil"].iloc[0] == "KHUIAN SARWAR" and t["frp_mw"].iloc[0] == 0.9  # FRP spelt FPR
    assert set(t["satellite"]) == {"S-NPP", "Aqua"} and set(t["time_precision"]) == {"second"}
    # 02:25:44 IST on 10-15 is 20:55:44 UTC on 10-14; 13:35:01 IST is 08:05:01 UTC.
    assert t["acq_time_utc"].iloc[0] == pd.Timestamp("2023-10-14 20:55:44")
    assert t["acq_time_utc"].iloc[2] == pd.Timestamp("2023-10-15 08:05:01")
    ist = count_fires(det, "day").set_index("date")["count"].to_dict()
    utc = count_fires(det, "day", day_tz="UTC").set_index("date")["count"].to_dict()
    night = int((t["daynight"] == "N").sum())
    assert ist == {"2023-10-15": 69} and utc == {"2023-10-14": night, "2023-10-15": 69 - night}


def test_firms_viirs_and_modis(tmp_path):
    (tmp_path / "viirs.csv").write_text(FIRMS_VIIRS)
    (tmp_path / "modis.csv").write_text(FIRMS_MODIS)
    det = read_fires([tmp_path / "viirs.csv", tmp_path / "modis.csv"])
    t = det.table
    assert det.formats == ("firms",) and det.n_duplicates == 1  # 0812 and 812 are one detection
    assert t["satellite"].tolist() == ["S-NPP", "S-NPP", "NOAA-20", "NOAA-20", "Aqua", "Terra"]
    assert t["instrument"].tolist() == ["VIIRS"] * 4 + ["MODIS"] * 2
    assert t["acq_time_utc"].iloc[0] == pd.Timestamp("2023-10-30 08:12")
    assert t["acq_time_utc"].iloc[4] == pd.Timestamp("2023-10-15 08:20")  # acq_time 820 = 08:20 UTC
    assert set(t["time_precision"]) == {"minute"}
    # 20:55 UTC on 10-30 is 02:25 IST on 10-31.
    ist = count_fires(t[t["instrument"] == "VIIRS"], "day").set_index("date")["count"].to_dict()
    assert ist == {"2023-10-30": 3, "2023-10-31": 1}
    utc = count_fires(t[t["instrument"] == "VIIRS"], "day", day_tz="UTC")
    assert utc["count"].tolist() == [4]
    by_sat = count_fires(det, "satellite,day", day_tz="UTC").query("count > 0")
    assert len(by_sat) == 4 and by_sat["count"].sum() == 6


def test_quirks_and_problems(tmp_path):
    path = tmp_path / "bhuvan_quirks.csv"
    path.write_text(
        "lat,lon,radiative_,sat,acqdate,acqtime,sensor,state,district\n"
        "30.1,75.1,1.0,npp,2023-10-22,13:M3:16,VF375,PB,  sas nagar(mohali) \n"  # line 2: hour only
        "30.2,75.2,2.0,npp,2023-10-22,13,VF375,pb,Ferozepur\n"  # line 3: hour only
        "30.3,75.3,3.0,mod,2023-10-22,13::51,A,PB,Tarn  Taran\n"  # line 4: minutes missing
        "30.4,75.4,4.0,mod,2023-10-22,13:25,T,PB,MANSA\n"  # line 5: minute
        "30.5,75.5,,npp,2023-10-22,,VF375,PB,MANSA\n"  # line 6: no time: date only, no FRP
        "30.6,75.6,5.0,npp,2023-10-22,25:M3:16,VF375,PB,MANSA\n"  # line 7: hour 25
        "abc,75.7,5.0,npp,2023-10-22,13:M3:16,VF375,PB,MANSA\n"  # line 8: bad latitude
        "30.8,75.8,-1,npp,2023-10-22,13:M3:16,VF375,PB,MANSA\n"  # line 9: negative FRP
        "30.1,75.1,1.0,npp,2023-10-22,13:M3:59,VF375,PB,SAS NAGAR (MOHALI)\n"  # line 10: repeat of line 2
        "\n"
    )
    det = read_fires(path)
    t = det.table
    assert t["source_line"].tolist() == [2, 3, 4, 5, 6, 9] and det.n_duplicates == 1
    assert t["time_precision"].tolist() == ["hour", "hour", "hour", "minute", "day", "hour"]
    assert t["district"].tolist()[:3] == ["SAS NAGAR (MOHALI)", "FIROZPUR", "TARN TARAN"]
    assert t["satellite"].tolist()[:4] == ["S-NPP", "S-NPP", "Aqua", "Terra"]
    # 13:25 IST = 07:55 UTC; a date alone starts at 00:00 IST = 18:30 UTC the day before.
    assert t["acq_time_utc"].iloc[3] == pd.Timestamp("2023-10-22 07:55")
    assert t["acq_time_utc"].iloc[4] == pd.Timestamp("2023-10-21 18:30")
    assert np.isnan(t["frp_mw"].iloc[4]) and np.isnan(t["frp_mw"].iloc[5])
    assert sorted(p.split(": expected")[0] for p in det.problems) == [
        f"{path}:7: acqtime '25:M3:16'",
        f"{path}:8: lat 'abc'",
        f"{path}:9: FRP '-1'",
    ]


def test_bad_input(tmp_path):
    no_time = tmp_path / "a.csv"
    no_time.write_text(
        "lat,lon,radiative_,sat,acqdate,sensor,state,district\n30.1,75.1,1.0,npp,2023-10-22,VF375,PB,X\n"
    )
    with pytest.raises(InputError, match=r"a\.csv: line 1: bhuvan table without the column\(s\) acqtime"):
        read_fires(no_time)
    other = tmp_path / "b.csv"
    other.write_text("x,y,z\n1,2,3\n")
    with pytest.raises(InputError, match="not a known active-fire table"):
        read_fires(other)
    prsc = tmp_path / "prsc_undated.csv"
    prsc.write_text(
        "District,Tehsil,Satellite,Latitude,Longitude,ACQ_TIME,Day/Night,FPR\nMANSA,X,S-NPP,29.8,75.5,13:35:01,D,2.2\n"
    )
    with pytest.raises(InputError, match="PRSC table without a date"):
        read_fires(prsc)
    assert read_fires(prsc, date="2023-10-15").table["acq_time_utc"].iloc[0] == pd.Timestamp(
        "2023-10-15 08:05:01"
    )
    counts = tmp_path / "counts.csv"
    counts.write_text("day,n\n2023-10-22,35\n")
    with pytest.raises(InputError, match="no column 'date'"):
        read_official_counts(counts)
    with pytest.raises(InputError, match="unknown key"):
        parse_by("district,week")


def test_names_and_time_zones():
    got = normalise_district(["sas  nagar(mohali)", "S.A.S. Nagar", "Sri Muktsar Sahib", "ludhiana ", None])
    assert got.tolist() == ["SAS NAGAR (MOHALI)", "SAS NAGAR (MOHALI)", "MUKTSAR", "LUDHIANA", ""]
    assert normalise_district(["Malerkotla"], {"malerkotla": "Sangrur"}).tolist() == ["SANGRUR"]
    # IST is UTC+05:30, JST UTC+09:00.
    assert (utc_offset_min("IST"), utc_offset_min("UTC"), utc_offset_min("+09:00")) == (330, 0, 540)
    with pytest.raises(InputError):
        utc_offset_min("Mars")


def test_grid_counts_by_cell_edges():
    # 0.1 deg cells from 30.0 N, 75.0 E: (30.05, 75.05) and (30.10, 75.00) on a south-west edge.
    lat = np.array([30.05, 30.06, 30.10, 30.25])
    lon = np.array([75.05, 75.09, 75.00, 75.25])
    counts, lat_c, lon_c = grid_counts(lat, lon, 0.1, bounds=(30.0, 30.3, 75.0, 75.3))
    assert counts.shape == (3, 3) and np.allclose(lat_c, [30.05, 30.15, 30.25])
    expected = np.zeros((3, 3))
    expected[0, 0], expected[1, 0], expected[2, 2] = 2, 1, 1
    assert np.array_equal(counts, expected)
    with pytest.raises(InputError, match="outside"):
        grid_counts(lat, lon, 0.1, bounds=(30.0, 30.2, 75.0, 75.3))


def test_grid_daily_maps_conserve_counts(bhuvan, official):
    ds = fire_count_grid(bhuvan, 0.1, by_day=True)
    assert int(ds["fire_count"].sum()) == 6313
    per_day = ds["fire_count"].sum(("lat", "lon"))
    for day in COMPLETE_DAYS:
        assert int(per_day.sel(date=day)) == official[day]
    cells = count_fires(bhuvan, "", grid_deg=0.1)
    assert cells["count"].sum() == 6313 and len(cells) == int((ds["fire_count"].sum("date") > 0).sum())


def test_cli_count_and_compare(tmp_path, fires_dir, official):
    fires = fires_dir / "bhuvan_fires_punjab_2023.csv"
    out = tmp_path / "counts.csv"
    res = _runner_invoke("count", fires, "--by", "district,day", "--out", out)
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert list(table.columns) == ["district", "date", "count", "frp_mw_sum"] and len(table) == 22 * 11
    sums = table.groupby("date")["count"].sum()
    assert all(sums[d] == official[d] for d in COMPLETE_DAYS)
    tif = tmp_path / "map.tif"
    assert _runner_invoke("count", fires, "--by", "", "--grid-deg", "0.1", "--out", tif).exit_code == 0
    import rasterio

    with rasterio.open(tif) as src:
        assert (
            src.read(1).sum() == 6313 and src.crs.to_epsg() == 4326 and src.res == pytest.approx((0.1, 0.1))
        )
    bad = _runner_invoke("count", fires, "--by", "day", "--grid-deg", "0.1", "--out", tmp_path / "d.tif")
    assert isinstance(bad.exception, InputError) and not (tmp_path / "d.tif").exists()
    cmp_dir = tmp_path / "cmp"
    off = fires_dir / "bhuvan_fire_counts_punjab_daily_2023.csv"
    res = _runner_invoke("compare", fires, "--official", off, "--out", cmp_dir, "--grid-deg", "0")
    assert res.exit_code == 0, res.output
    summary = json.loads((cmp_dir / "summary.json").read_text())
    assert summary["days_complete"] == COMPLETE_DAYS and summary["detections"] == 6313
    for name in ("daily.csv", "counts_district_day.csv", "detections.parquet", "season.png", "report.html"):
        assert (cmp_dir / name).is_file(), name
    missing = _runner_invoke("compare", fires, "--official", tmp_path / "none.csv", "--out", tmp_path / "x")
    assert isinstance(missing.exception, InputError) and not (tmp_path / "x").exists()


def test_both_csv_readers_agree(tmp_path, fires_dir, bhuvan):
    # A truncated last line sends the file to the line-by-line reader: the same records come out, and the
    # truncated line (6,313 records + header = line 6315) is reported and dropped.
    text = (fires_dir / "bhuvan_fires_punjab_2023.csv").read_text()
    path = tmp_path / "bhuvan_fires_punjab_2023.csv"
    path.write_text(text.rstrip("\n") + "\n30.1,75.1,1.0\n")
    det = read_fires(path)
    pd.testing.assert_frame_equal(det.table, bhuvan.table)
    assert det.n_records == 6314 and len(det.problems) == 1
    assert det.problems[0].startswith(f"{path}:6315: acqdate ''")


def test_all_nan_column_and_points_outside_name_file_line_and_column(tmp_path):
    # Every latitude is NaN: the error names the file, the first line (2) and the column (lat).
    path = tmp_path / "bhuvan_nan.csv"
    path.write_text(
        "lat,lon,radiative_,sat,acqdate,acqtime,sensor,state,district\n"
        "NaN,75.1,1.0,npp,2023-10-22,13:M3:16,VF375,PB,MANSA\n"
        ",75.2,1.0,npp,2023-10-22,13:M3:16,VF375,PB,MANSA\n"
    )
    with pytest.raises(InputError) as err:
        read_fires(path)
    msg = str(err.value)
    assert "no valid fire detections (of 2 records)" in msg and f"{path}:2: lat 'NaN'" in msg
    assert "\n" not in msg
    # A detection outside the grid bounds is named by file and line: line 3 holds 30.9 N, north of 30.5 N.
    ok = tmp_path / "bhuvan_two.csv"
    ok.write_text(
        "lat,lon,radiative_,sat,acqdate,acqtime,sensor,state,district\n"
        "30.1,75.1,1.0,npp,2023-10-22,13:M3:16,VF375,PB,MANSA\n"
        "30.9,75.2,1.0,npp,2023-10-22,13:M3:16,VF375,PB,MANSA\n"
    )
    det = read_fires(ok)
    with pytest.raises(
        InputError, match=r"1 detection\(s\) outside \(first bhuvan_two\.csv:3, at 30\.90000 N"
    ):
        count_fires(det, "cell", grid_deg=0.1, bounds=(30.0, 30.5, 75.0, 75.5))
    with pytest.raises(InputError, match=r"bhuvan_two\.csv:3"):
        fire_count_grid(det, 0.1, bounds=(30.0, 30.5, 75.0, 75.5))
    # An empty selection of detections is an input error, not a crash.
    none = det.table[det.table["lat_deg"] > 40]
    with pytest.raises(InputError, match="no detections"):
        count_fires(none, "cell", grid_deg=0.1)
    with pytest.raises(InputError, match="no detections"):
        fire_count_grid(none, 0.1, by_day=True, bounds=(30.0, 30.5, 75.0, 75.5))
