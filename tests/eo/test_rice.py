"""Rice mapping: reading the point set, phase-invariant features, rules, classifier, rasters, commands."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kizuna.eo.rice import (
    FeatureConfig,
    classify_raster,
    classify_rules,
    fill_gaps,
    load_classifier,
    nan_quantiles,
    s1_features,
    train_classifier,
)
from kizuna.eo.rice_io import linear_to_db, read_label_csv, read_point_dataset
from kizuna.errors import InputError

STEP = 4.0  # days between synthetic acquisitions
T = 72


def _rice_vh(shift: int = 0) -> np.ndarray:
    """A synthetic VH season (dB): flooded at -24 dB, a linear 10 dB rise over 60 days, a plateau at -14,
    a drop at harvest; the whole year rolled by ``shift`` acquisitions."""
    t = np.arange(T) * STEP
    y = np.full(T, -24.0)
    rise = (t >= 40) & (t < 100)
    y[rise] = -24.0 + 10.0 * (t[rise] - 40) / 60
    y[(t >= 100) & (t < 160)] = -14.0
    return np.roll(y, shift)


@pytest.fixture(scope="module")
def rice_dir(shared_data):
    return shared_data / "eo" / "rice_s1_s2_angiang_vietnam"


def test_linear_to_db_and_nodata():
    # 10 log10(0.01) = -20 dB; -32768 and 0 are the nodata of the challenge arrays.
    np.testing.assert_allclose(linear_to_db(np.array([0.01, 1.0, 10.0])), [-20.0, 0.0, 10.0])
    assert np.isnan(linear_to_db(np.array([-32768.0, 0.0, np.nan]))).all()


def test_fill_gaps_interpolates_linearly_in_time_and_names_empty_rows():
    t = np.array([0.0, 1.0, 3.0, 4.0])
    y = np.array([[np.nan, 2.0, np.nan, 6.0], [1.0, 1.0, 1.0, 1.0]])
    # Between (t=1, 2) and (t=4, 6) the line gives 2 + 4 x 2/3 at t=3; the first value is held.
    np.testing.assert_allclose(fill_gaps(y, t), [[2.0, 2.0, 2.0 + 8.0 / 3.0, 6.0], [1.0, 1.0, 1.0, 1.0]])
    with pytest.raises(InputError, match="row 1: all 4 values are NaN"):
        fill_gaps(np.array([[1.0, 2, 3, 4], [np.nan] * 4]), t)
    with pytest.raises(InputError, match="row 0"):
        s1_features(np.full((1, 8), np.nan), np.zeros((1, 8)))


def test_nan_quantiles_match_numpy_linear_percentiles():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 30))
    a[a > 1.2] = np.nan
    q = [2.5, 10, 50, 97.5]
    np.testing.assert_allclose(nan_quantiles(a, q), np.nanpercentile(a, q, axis=1).T, rtol=1e-12)


def test_dynamics_measure_the_rise_and_are_phase_invariant():
    vh = np.array([_rice_vh(0), _rice_vh(17), _rice_vh(-5)])
    vv = vh + 6.0
    t = np.arange(T) * STEP
    X, names = s1_features(vh, vv, t, groups=("distribution", "dynamics"))
    f = {n: X[:, i] for i, n in enumerate(names)}
    # The analytic season: 10 dB from -24 to -14 dB in 60 days, for every planting date.
    np.testing.assert_allclose(f["vh_rise_db"], 10.0, atol=1e-9)
    np.testing.assert_allclose(f["vh_rise_days"], 60.0, atol=1e-9)
    np.testing.assert_allclose(f["vh_rise_start_db"], -24.0, atol=1e-9)
    np.testing.assert_allclose(f["vh_rise_peak_db"], -14.0, atol=1e-9)
    dist = [i for i, n in enumerate(names) if "_q" in n]
    assert len(dist) == 3 * len(FeatureConfig().quantiles_pct)
    np.testing.assert_array_equal(X[1, dist], X[0, dist])  # a value distribution ignores time order
    np.testing.assert_array_equal(X[2, dist], X[0, dist])
    np.testing.assert_allclose(f["vh_vv_ratio_mean_db"], -6.0)


def test_harmonic_amplitude_of_a_sinusoid():
    t = np.arange(T) * STEP
    record = t[-1] - t[0]
    vh = -15 + 3.0 * np.sin(2 * np.pi * 2 * t / record)[None, :]
    cfg = FeatureConfig(smooth_days=0.0)
    X, names = s1_features(vh, vh - 5, t, config=cfg, groups=("dynamics",))
    f = {n: X[0, i] for i, n in enumerate(names)}
    # A 3 dB sinusoid with two periods over the record: harmonic 2 has amplitude 3 dB, harmonic 1 none. The
    # 3-acquisition median flattens the crests slightly (cos(2 pi 2 x 4 / 284) = 0.984), hence 0.05 dB.
    assert f["vh_harmonic2_db"] == pytest.approx(3.0, abs=0.05)
    assert f["vh_harmonic1_db"] < 0.05


def test_rules_separate_rice_from_water_and_buildings():
    t = np.arange(T) * STEP
    vh = np.array([_rice_vh(5), np.full(T, -23.0), np.full(T, -12.0)])
    X, names = s1_features(vh, vh + 6, t, groups=("dynamics",))
    label, score = classify_rules(X, names)
    np.testing.assert_array_equal(label, [1, 0, 0])
    assert score[0] > 0.5 > max(score[1], score[2])
    with pytest.raises(InputError, match="dynamics"):
        classify_rules(X[:, :3], names[:3])


def test_rules_thresholds_are_inclusive():
    # RiceRules: the low must be "at or below" -20 dB, the rise "at least" 6 dB, the peak "at or above"
    # -18 dB. A season that meets the first two exactly (flooded at -20 dB, rising exactly 6 dB to a
    # -14 dB plateau) is rice, with score 1 / (1 + e^0) = 0.5 exactly; 0.5 dB less rise is not rice.
    t = np.arange(T) * STEP
    vh = np.full((2, T), -20.0)
    for row, top in ((0, -14.0), (1, -14.5)):
        rise = (t >= 40) & (t < 100)
        vh[row, rise] = -20.0 + (top + 20.0) * (t[rise] - 40) / 60
        vh[row, (t >= 100) & (t < 160)] = top
    X, names = s1_features(vh, vh + 6, t, groups=("dynamics",))
    f = {n: X[:, i] for i, n in enumerate(names)}
    np.testing.assert_array_equal(f["vh_rise_db"], [6.0, 5.5])
    np.testing.assert_array_equal(f["vh_rise_start_db"], [-20.0, -20.0])
    label, score = classify_rules(X, names)
    np.testing.assert_array_equal(label, [1, 0])
    assert score[0] == 0.5 and score[1] < 0.5
    np.testing.assert_array_equal(label, score >= 0.5)  # the label and the raster's p >= 0.5 agree


def test_raster_matches_points_and_marks_nodata(tmp_path):
    xr = pytest.importorskip("xarray")
    rng = np.random.default_rng(0)
    t = np.arange(T) * STEP
    base = [_rice_vh(k) for k in (0, 11, 30)] + [np.full(T, -23.0), np.full(T, -12.5), np.full(T, -14.0)]
    vh = np.array(base) + rng.normal(0, 0.3, (6, T))
    vv = vh + 6 + rng.normal(0, 0.3, (6, T))
    vh[5] = np.nan  # a pixel with no data at all
    lin = 10 ** (np.stack([vh, vv], axis=1) / 10)  # (6, band, time) linear power
    cube = lin.reshape(2, 3, 2, T).transpose(3, 2, 0, 1)  # (time, band, y, x)
    da = xr.DataArray(cube, dims=("time", "band", "y", "x"), coords={"band": ["vh", "vv"]}).chunk({"x": 2})
    ds = classify_raster(da, step_days=STEP)
    X, names = s1_features(vh[:5], vv[:5], t, groups=("dynamics",))
    rule_label, rule_score = classify_rules(X, names)
    np.testing.assert_array_equal(ds["rice_class"].values.ravel(), [*rule_label, 255])
    np.testing.assert_allclose(ds["rice_probability"].values.ravel()[:5], rule_score, rtol=1e-6)
    # A trained model, saved and read back, gives the same probabilities on the map as on the points.
    Xd, nd = s1_features(vh[:5], vv[:5], t)
    model = train_classifier(Xd, [1, 1, 1, 0, 0], nd, n_trees=15, step_days=STEP)
    back = load_classifier(model.save(tmp_path / "m.joblib"))
    dm = classify_raster(da, model=back)
    np.testing.assert_allclose(dm["rice_probability"].values.ravel()[:5], model.predict_proba(Xd), rtol=1e-6)
    assert dm["rice_class"].values.ravel()[5] == 255


def test_label_csv_quirks_and_errors(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text('Latitude and Longitude,Class of Land\n"(10.5, 105.25",Rice\n"(10.6, 105.3)",Non Rice\n')
    df = read_label_csv(p)
    np.testing.assert_allclose(df[["lat_deg", "lon_deg"]].to_numpy(), [[10.5, 105.25], [10.6, 105.3]])
    np.testing.assert_array_equal(df["label"], [1, 0])
    p.write_text('Latitude and Longitude,Class of Land\n"(10.5, 105.25)",Maize\n')
    with pytest.raises(InputError, match="line 2.*'Maize'"):
        read_label_csv(p)
    p.write_text("x,Class of Land\n1,Rice\n")
    with pytest.raises(InputError, match="no coordinate columns"):
        read_label_csv(p)
    # Labels required (evaluate): a misnamed class column or an empty class cell is named by file, line and
    # column, as the issue asks of bad input.
    p.write_text('Latitude and Longitude,Klass\n"(10.5, 105.25)",Rice\n')
    assert (read_label_csv(p)["label"] == -1).all()
    with pytest.raises(InputError, match=r"labels\.csv: missing column 'Class of Land'.*'Klass'"):
        read_label_csv(p, require_class=True)
    p.write_text('Latitude and Longitude,Class of Land\n"(10.5, 105.25)",Rice\n"(10.6, 105.3)",\n')
    assert list(read_label_csv(p)["label"]) == [1, -1]
    with pytest.raises(InputError, match=r"labels\.csv: line 3: column 'Class of Land'"):
        read_label_csv(p, require_class=True)


def test_an_giang_point_set(rice_dir):
    pts = read_point_dataset(rice_dir)
    # SOURCES.md: 600 points, 300 Rice / 300 Non Rice, (600, 2, 76), nodata 5.3 % of values.
    assert pts.s1_db.shape == (600, 2, 76) and int(pts.label.sum()) == 300
    assert np.isnan(pts.s1_db).mean() == pytest.approx(0.053, abs=0.0005)
    # Line 12 of the CSV lacks its closing parenthesis: "(10.324635504740822, 105.25572266405916".
    assert (pts.lat_deg[10], pts.lon_deg[10]) == (10.324635504740822, 105.25572266405916)
    from kizuna.eo.area import site_clusters

    sites = site_clusters(pts.lat_deg, pts.lon_deg, eps_deg=0.03)
    # SOURCES.md: 7 single-class clusters, 2 rice and 5 non-rice.
    assert len(np.unique(sites)) == 7
    per_site = [set(pts.label[sites == s]) for s in np.unique(sites)]
    assert all(len(s) == 1 for s in per_site) and sum(s == {1} for s in per_site) == 2
    # The figure for the rule-based mode, which uses no labels: overall accuracy >= 0.90.
    X, names = s1_features(pts.band_db("vh"), pts.band_db("vv"), np.arange(76) * 3.75, groups=("dynamics",))
    assert np.mean(classify_rules(X, names)[0] == pts.label) >= 0.90


def _subset(rice_dir, dest, per_site=12):
    """Write a small copy of the labelled set (per_site points of each site, plus 10 unlabelled points)."""
    from kizuna.eo.area import site_clusters
    from kizuna.eo.rice_io import LABEL_FILE, S1_TEST_FILE, S1_TRAIN_FILE

    dest.mkdir()
    labels = pd.read_csv(rice_dir / LABEL_FILE)
    pts = read_point_dataset(rice_dir)
    sites = site_clusters(pts.lat_deg, pts.lon_deg)
    keep = np.concatenate([np.flatnonzero(sites == s)[:per_site] for s in np.unique(sites)])
    labels.iloc[keep].to_csv(dest / LABEL_FILE, index=False)
    np.save(dest / S1_TRAIN_FILE, np.load(rice_dir / S1_TRAIN_FILE)[keep])
    np.save(dest / S1_TEST_FILE, np.load(rice_dir / S1_TEST_FILE)[:10])
    return len(keep)


def test_evaluate_and_classify_commands(rice_dir, tmp_path):
    from typer.testing import CliRunner

    from kizuna.eo.cli_rice import app

    data = tmp_path / "data"
    n = _subset(rice_dir, data)
    out = tmp_path / "eval"
    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", "--data", str(data), "--out", str(out), "--trees", "5"])
    assert res.exit_code == 0, res.output
    s = json.loads((out / "summary.json").read_text())
    pred = pd.read_csv(out / "predictions.csv")
    lab = pred[pred["split"] == "labelled"]
    assert s["n_points"] == n == len(lab) and s["n_sites"] == 7 and len(s["per_site"]) == 7
    assert s["overall_accuracy"] == pytest.approx(np.mean(lab["rice_site_out"] == lab["label"]))
    assert np.sum(s["confusion_matrix"]) == n
    lo, hi = s["area"]["rice_area_ci95_km2"]
    assert lo <= s["area"]["rice_area_km2"] <= hi
    assert {"mean_series.png", "confusion_matrix.png", "feature_importance.png", "report.html"} <= {
        p.name for p in out.iterdir()
    }
    # The saved model maps a NetCDF stack (vh, vv on time x lat x lon) as it classifies the same points.
    import xarray as xr

    s1 = np.load(data / "sar_data.npy")[:12].astype(float)  # 12 points laid out as a 3 x 4 grid
    cube = s1.reshape(3, 4, 2, -1).transpose(3, 2, 0, 1)
    grid = {"lat": 10.5 - 0.001 * np.arange(3), "lon": 105.0 + 0.001 * np.arange(4)}
    dims = ("time", "lat", "lon")
    xr.Dataset({"vh": (dims, cube[:, 0]), "vv": (dims, cube[:, 1])}, coords=grid).to_netcdf(
        tmp_path / "s1.nc"
    )
    model = out / "model.joblib"
    res = runner.invoke(
        app,
        [
            "classify",
            "--raster",
            str(tmp_path / "s1.nc"),
            "--model",
            str(model),
            "--out",
            str(tmp_path / "map"),
        ],
    )
    assert res.exit_code == 0, res.output
    pts = read_point_dataset(data)
    X, _ = s1_features(pts.band_db("vh")[:12], pts.band_db("vv")[:12])
    expect = (load_classifier(model).predict_proba(X) >= 0.5).astype(np.uint8)
    with xr.open_dataset(tmp_path / "map" / "rice_map.nc") as m:
        np.testing.assert_array_equal(m["rice_class"].values.ravel(), expect)
    assert (tmp_path / "map" / "rice_class.tif").is_file()
    # Bad input: an all-nodata series is named by its row, and no output folder is left behind.
    bad = np.load(data / "sar_data.npy")
    bad[3] = -32768
    np.save(data / "sar_data.npy", bad)
    res = runner.invoke(
        app, ["evaluate", "--data", str(data), "--out", str(tmp_path / "bad"), "--mode", "rules"]
    )
    assert isinstance(res.exception, InputError) and "row 3" in str(res.exception)
    assert not (tmp_path / "bad").exists()
    # A label file whose class column is misnamed: one error naming the file and the column, no output.
    from kizuna.eo.rice_io import LABEL_FILE

    labels = pd.read_csv(data / LABEL_FILE)
    labels.rename(columns={"Class of Land": "Class"}).assign(Class="Rice").to_csv(
        data / LABEL_FILE, index=False
    )
    res = runner.invoke(app, ["evaluate", "--data", str(data), "--out", str(tmp_path / "bad")])
    assert isinstance(res.exception, InputError)
    assert f"{LABEL_FILE}: column 'Class of Land': only rice points" in str(res.exception)
    labels.rename(columns={"Class of Land": "Kind"}).to_csv(data / LABEL_FILE, index=False)
    res = runner.invoke(app, ["evaluate", "--data", str(data), "--out", str(tmp_path / "bad")])
    assert isinstance(res.exception, InputError)
    assert f"{LABEL_FILE}: missing column 'Class of Land'" in str(res.exception)
    assert not (tmp_path / "bad").exists()
