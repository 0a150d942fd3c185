"""Surface PM2.5 models (``kizuna.eo.pm25``): reading the Delhi 2019 table, network features, evaluation
that never uses a held-out station's own PM2.5, gap-aware prediction, the model folder, and the
``kizuna eo pm25`` commands. Models are fitted on small subsets with few trees to keep the tests quick."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kizuna.eo.cli_pm25 import app
from kizuna.eo.pm25 import (
    Pm25Params,
    cross_validate_pm25,
    fit_pm25,
    load_pm25_model,
    predict_pm25,
    save_pm25_model,
)
from kizuna.eo.pm25_features import (
    AOD,
    INPUT_COLUMNS,
    PM25,
    STATION_CODE,
    build_features,
    check_domain,
    domain_limit_km,
    read_pm25_table,
    station_network,
)
from kizuna.errors import InputError

DELHI = Path("eo") / "pm25_aod_delhi_2019" / "delhi_2019_pm25_aod_met_30stations.csv"
TINY = Pm25Params(max_iter=25, n_models=1, min_samples_leaf=10)


@pytest.fixture(scope="module")
def delhi_path(shared_data: Path) -> Path:
    return shared_data / DELHI


@pytest.fixture(scope="module")
def delhi(delhi_path: Path) -> pd.DataFrame:
    return read_pm25_table(delhi_path, need_target=True)


@pytest.fixture(scope="module")
def subset(delhi: pd.DataFrame) -> pd.DataFrame:
    """Six stations, the first 60 days of 2019."""
    codes = sorted(delhi[STATION_CODE].unique(), key=int)[:6]
    return delhi[delhi[STATION_CODE].isin(codes) & (delhi["JulianDay_2019"] <= 60)].reset_index(drop=True)


def test_delhi_table_as_documented(delhi_path, delhi):
    # SOURCES.md: 10,950 station-days at 30 stations, 21 columns, PM2.5 3.6-492 ug/m3, AOD about half
    # non-null. Counts of non-empty cells come from the csv module, not from the code under test.
    with open(delhi_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 10950 and len(rows[0]) == 21
    assert len(delhi) == 10950 and delhi[STATION_CODE].nunique() == 30
    assert round(delhi[PM25].min(), 1) == 3.6 and round(delhi[PM25].max()) == 492
    assert delhi[PM25].notna().sum() == sum(r[PM25] != "" for r in rows)
    n_aod = sum(r[AOD] != "" for r in rows)
    assert delhi[AOD].notna().sum() == n_aod and 0.4 < n_aod / len(rows) < 0.6


def _write(tmp_path: Path, df: pd.DataFrame, name: str = "t.csv") -> Path:
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def test_missing_misnamed_and_malformed_columns(tmp_path, subset):
    raw = subset.head(5).copy()
    p = _write(tmp_path, raw.drop(columns=["BLHDailyMean_2019"]))
    with pytest.raises(InputError, match=r"t\.csv: missing column 'BLHDailyMean_2019'"):
        read_pm25_table(p, need_target=True)
    p = _write(tmp_path, raw.rename(columns={AOD: AOD.lower()}))
    with pytest.raises(InputError, match=r"missing column 'Corrected_DailyMeanAOD_2019' \(found 'corrected_"):
        read_pm25_table(p)
    bad = raw.astype({"TempDailyMean_2019": object})
    bad.loc[1, "TempDailyMean_2019"] = "warm"
    p = _write(tmp_path, bad)
    # header is line 1, so the second data row is line 3
    with pytest.raises(InputError, match=r"t\.csv: line 3: column 'TempDailyMean_2019' value 'warm'"):
        read_pm25_table(p)
    p = _write(tmp_path, raw.assign(**{PM25: np.nan}))
    with pytest.raises(InputError, match="all NaN"):
        read_pm25_table(p, need_target=True)
    # An all-NaN meteorological column is bad input (the "all-NaN series"); an all-NaN AOD is not
    # (MAIAC has gaps, the model is gap-aware).
    p = _write(tmp_path, raw.assign(RHDailyMean_2019=np.nan))
    with pytest.raises(InputError, match=r"t\.csv: column 'RHDailyMean_2019' has no values \(all NaN\)"):
        read_pm25_table(p)
    assert read_pm25_table(_write(tmp_path, raw.assign(**{AOD: np.nan})))[AOD].isna().all()
    p = _write(tmp_path, pd.concat([raw, raw.head(1)]))
    with pytest.raises(InputError, match=r"line 7: station .* appears twice"):
        read_pm25_table(p, need_target=True)


def _three_stations() -> pd.DataFrame:
    """Stations A, B, C on the meridian 77 E at 28.0, 28.1 and 28.3 N, one day, PM2.5 100/200/400."""
    base = {c: 1.0 for c in INPUT_COLUMNS}
    rows = []
    for code, lat, pm, aod in (("A", 28.0, 100.0, 0.9), ("B", 28.1, 200.0, 0.5), ("C", 28.3, 400.0, 1.0)):
        rows.append({**base, STATION_CODE: code, "Latitude_2019": lat, "Longitude_2019": 77.0,
                     "Year_2019": 2019, "JulianDay_2019": 10, PM25: pm, AOD: aod})  # fmt: skip
    return pd.DataFrame(rows)


def test_network_features_match_hand_values():
    t = _three_stations()
    net = station_network(t)
    grid = pd.DataFrame(
        [{**t.iloc[1].to_dict(), STATION_CODE: np.nan}, {**t.iloc[0].to_dict(), "JulianDay_2019": 11}]
    )
    f = build_features(pd.concat([t, grid], ignore_index=True), net)
    # Along a meridian the haversine distance is R * dlat exactly: R = 6371.0088 km (IUGG mean radius).
    km_per_deg = 6371.0088 * math.pi / 180
    a = f.iloc[0]  # station A sees B (0.1 deg away) and C (0.3 deg), never itself
    assert a["net_log_pm25_mean"] == pytest.approx((math.log(200) + math.log(400)) / 2, rel=1e-12)
    # inverse-distance-squared weights at distances in ratio 1:3 are 9:1
    assert a["net_log_pm25_idw2"] == pytest.approx((9 * math.log(200) + math.log(400)) / 10, rel=1e-9)
    assert a["net_log_pm25_nearest"] == pytest.approx(math.log(200), rel=1e-12)
    assert a["net_nearest_km"] == pytest.approx(0.1 * km_per_deg, rel=1e-9)
    assert a["net_aod_mean"] == pytest.approx(0.75, rel=1e-12)
    assert a["aod_log_ratio_net"] == pytest.approx(math.log(0.9 / 0.75), rel=1e-12)
    assert a["aod_missing"] == 0.0
    # a point with no station code at B's place sees all three stations, B at 0 km
    g = f.iloc[3]
    assert g["net_log_pm25_mean"] == pytest.approx(
        math.log(200), rel=1e-12
    )  # geometric mean of 100, 200, 400
    assert g["net_nearest_km"] == pytest.approx(0.0, abs=1e-9)
    # a date the network did not measure has no context at all
    assert f.iloc[4][["net_log_pm25_mean", "net_aod_mean", "net_nearest_km"]].isna().all()


def test_domain_limit_and_far_rows():
    # Stations A, B, C on the meridian 77 E at 28.0, 28.1, 28.3 N: along a meridian the haversine distance
    # is R * dlat exactly (R = 6371.0088 km), so the network spans 0.3 deg = 33.4 km, below the 50 km floor.
    km_per_deg = 6371.0088 * math.pi / 180
    t = _three_stations()
    net = station_network(t)
    assert domain_limit_km(net) == 50.0
    wide = t.assign(Latitude_2019=[28.0, 28.5, 29.0])  # 1 deg apart: the limit is the extent
    assert domain_limit_km(station_network(wide)) == pytest.approx(km_per_deg, rel=1e-12)
    ok = t.assign(Latitude_2019=28.3 + 0.4)  # 44.5 km north of C: inside
    check_domain(ok, net, "grid.csv")
    far = pd.concat([ok, t.iloc[[0]].assign(Latitude_2019=28.3 + 0.5)], ignore_index=True)  # 55.6 km
    with pytest.raises(InputError, match=r"grid\.csv: line 5: columns 'Latitude_2019'/'Longitude_2019' "
                       r"\(28\.8, 77\) lie 56 km .* \(expected within 50 km\)"):  # fmt: skip
        check_domain(far, net, "grid.csv")
    check_domain(far, net, "grid.csv", max_km=0.5 * km_per_deg + 1e-6)


def test_own_station_pm25_never_reaches_its_features(subset):
    code = subset[STATION_CODE].iloc[0]
    rows = subset[subset[STATION_CODE] == code]
    changed = subset.copy()
    changed.loc[changed[STATION_CODE] == code, PM25] *= 10.0
    f1 = build_features(rows, station_network(subset))
    f2 = build_features(rows, station_network(changed))
    pd.testing.assert_frame_equal(f1, f2)


def test_held_out_predictions_do_not_depend_on_their_own_pm25(subset):
    cv1 = cross_validate_pm25(subset, n_folds=3, params=TINY)
    held = cv1.predictions["fold"].to_numpy() == 0
    changed = subset.copy()
    changed.loc[held, PM25] *= 1.5
    cv2 = cross_validate_pm25(changed, n_folds=3, params=TINY)
    p1, p2 = cv1.predictions["pm25_pred_ug_m3"].to_numpy(), cv2.predictions["pm25_pred_ug_m3"].to_numpy()
    assert np.array_equal(cv2.predictions["fold"].to_numpy() == 0, held)
    np.testing.assert_array_equal(p1[held], p2[held])
    assert not np.allclose(p1[~held], p2[~held])  # the other folds trained on the changed values


def test_gap_aware_and_satellite_fallback(subset):
    model = fit_pm25(subset, params=TINY)
    sat_only = fit_pm25(subset, params=TINY, use_network=False)
    new = subset.head(40).copy()
    new[AOD] = np.nan  # days without a MAIAC retrieval
    new["JulianDay_2019"] = 200  # a date the training network never measured
    p = predict_pm25(model, new.drop(columns=[PM25]))
    assert np.all(np.isfinite(p)) and np.all(p > 0)
    # without network context the network model falls back to its satellite model, which is fitted exactly
    # as a model fitted without the network
    np.testing.assert_array_equal(p, predict_pm25(sat_only, new))


def test_model_folder_round_trip_and_wrong_folders(tmp_path, subset):
    model = fit_pm25(subset, params=TINY)
    d = save_pm25_model(model, tmp_path / "m")
    back = load_pm25_model(d)
    np.testing.assert_array_equal(predict_pm25(model, subset), predict_pm25(back, subset))
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["input_columns"][0] == "Latitude_2019" and manifest["target_column"] == PM25
    assert (
        manifest["training"]["stations"] == 6
        and manifest["training"]["rows_with_pm25"] == subset[PM25].notna().sum()
    )
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty: not a PM2\.5 model folder \(no manifest\.json\)"):
        load_pm25_model(tmp_path / "empty")
    with pytest.raises(InputError, match="no such model folder"):
        load_pm25_model(tmp_path / "absent")
    (d / "manifest.json").write_text(json.dumps({**manifest, "kind": "kizuna.eo.rice.model"}))
    with pytest.raises(InputError, match="kind 'kizuna.eo.rice.model'"):
        load_pm25_model(d)
    (d / "manifest.json").write_text(json.dumps(manifest))
    with open(d / "model.joblib", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(InputError, match="checksum"):
        load_pm25_model(d)


def test_commands_fit_predict_evaluate(tmp_path, subset):
    train = _write(tmp_path, subset, "train.csv")
    new_df = subset.drop(columns=[PM25]).head(30)
    new = _write(tmp_path, new_df, "new.csv")
    small = ["--max-iter", "25", "--n-models", "1"]
    r = CliRunner().invoke(app, ["fit", "--data", str(train), "--model", str(tmp_path / "m"), *small])
    assert r.exit_code == 0, r.output
    out = tmp_path / "pred.csv"
    r = CliRunner().invoke(
        app, ["predict", "--model", str(tmp_path / "m"), "--data", str(new), "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    pred = pd.read_csv(out)
    assert list(pred.columns) == [*new_df.columns, "pm25_pred"] and len(pred) == 30
    pd.testing.assert_frame_equal(pred.drop(columns="pm25_pred"), pd.read_csv(new))
    assert (pred["pm25_pred"] > 0).all()
    ev = tmp_path / "ev"
    args = ["evaluate", "--data", str(train), "--out", str(ev), "--folds", "3", "--random-folds", "0", *small]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    s = json.loads((ev / "summary.json").read_text())
    assert s["n_folds"] == 3 and s["n"] == subset[PM25].notna().sum() and len(s["per_station"]) == 6
    assert {"r2", "rmse_ug_m3", "random_folds", "per_season", "aod_available"} <= set(s) and s[
        "random_folds"
    ] is None
    for name in (
        "obs_vs_pred.png",
        "importance.png",
        "partial_dependence.png",
        "partial_dependence_satellite.png",
    ):
        assert (ev / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (ev / "report.html").stat().st_size > 10_000
    # a misnamed column: one clear error naming file and column, no output written
    bad = _write(tmp_path, new_df.rename(columns={"RHDailyMean_2019": "RH"}), "bad.csv")
    r = CliRunner().invoke(
        app,
        ["predict", "--model", str(tmp_path / "m"), "--data", str(bad), "--out", str(tmp_path / "p2.csv")],
    )
    assert isinstance(r.exception, InputError) and "bad.csv: missing column 'RHDailyMean_2019'" in str(
        r.exception
    )
    assert not (tmp_path / "p2.csv").exists()
    # a grid point 5 deg (556 km) north of the network: outside the model's domain, refused, no output
    far = _write(tmp_path, new_df.assign(Latitude_2019=new_df["Latitude_2019"] + 5.0), "far.csv")
    r = CliRunner().invoke(
        app,
        ["predict", "--model", str(tmp_path / "m"), "--data", str(far), "--out", str(tmp_path / "p3.csv")],
    )
    assert isinstance(r.exception, InputError)
    assert "far.csv: line 2: columns 'Latitude_2019'/'Longitude_2019'" in str(r.exception)
    assert not (tmp_path / "p3.csv").exists()
    # --map: rows on a 3 x 4 grid of 0.05 deg over Delhi on two days become a (2, 3, 4) NetCDF cube whose
    # cells hold exactly the CSV's predictions at their points
    import xarray as xr

    days = new_df.drop_duplicates("JulianDay_2019").head(2)
    lat0, lon0 = float(subset["Latitude_2019"].mean()), float(subset["Longitude_2019"].mean())
    pts = [(lat0 + 0.05 * i, lon0 + 0.05 * j) for i in range(3) for j in range(4)]
    grid_df = pd.concat(
        [days.assign(Latitude_2019=la, Longitude_2019=lo) for la, lo in pts], ignore_index=True
    ).drop(columns=["StationName_2019", "StationCode_2019"], errors="ignore")
    grid = _write(tmp_path, grid_df, "grid.csv")
    nc = tmp_path / "grid.nc"
    args = ["predict", "--model", str(tmp_path / "m"), "--data", str(grid), "--out", str(tmp_path / "g.csv")]
    r = CliRunner().invoke(app, [*args, "--map", str(nc)])
    assert r.exit_code == 0, r.output
    g = pd.read_csv(tmp_path / "g.csv")
    with xr.open_dataset(nc) as ds:
        assert ds["pm25"].shape == (2, 3, 4)
        for _, row in g.iterrows():
            cell = ds["pm25"].sel(lat=row["Latitude_2019"], lon=row["Longitude_2019"], method="nearest")
            doy = (ds["time"].dt.dayofyear == row["JulianDay_2019"]).values
            assert float(cell.values[doy][0]) == pytest.approx(row["pm25_pred"], rel=1e-12)
    # the station rows are not a grid: --map refuses them and writes neither file
    args = ["predict", "--model", str(tmp_path / "m"), "--data", str(new), "--out", str(tmp_path / "p4.csv")]
    r = CliRunner().invoke(app, [*args, "--map", str(tmp_path / "p4.nc")])
    assert isinstance(r.exception, InputError) and "new.csv" in str(r.exception)
    assert not (tmp_path / "p4.csv").exists() and not (tmp_path / "p4.nc").exists()
