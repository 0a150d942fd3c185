"""PM2.5 predictions arranged as daily maps on a regular grid (kizuna.eo.pm25_map).

Expected values are analytic: each row's prediction is a known function of its point and day, so the
cell it lands in must hold exactly that function's value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kizuna.eo.pm25_features import DOY, LAT, LON, YEAR
from kizuna.eo.pm25_map import pm25_map_dataset, regular_axis
from kizuna.errors import InputError


def _grid_table(drop_last: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    lats = 28.4 + 0.05 * np.arange(3)
    lons = 76.9 + 0.05 * np.arange(4)
    rows = [(la, lo, 2019, d) for d in (32, 33) for la in lats for lo in lons]
    t = pd.DataFrame(rows, columns=[LAT, LON, YEAR, DOY]).sample(frac=1.0, random_state=1)  # any row order
    if drop_last:
        t = t.iloc[:-1]
    pred = 1000.0 * t[LAT].to_numpy() + t[LON].to_numpy() + 0.001 * t[DOY].to_numpy()
    return t.reset_index(drop=True), pred


def test_rows_land_in_their_cells_and_days() -> None:
    t, pred = _grid_table()
    ds = pm25_map_dataset(t, pred)
    assert ds["pm25"].shape == (2, 3, 4)
    assert str(ds["time"].values[0])[:10] == "2019-02-01"  # day 32 of 2019
    la, lo = np.meshgrid(ds["lat"].values, ds["lon"].values, indexing="ij")
    for k, doy in enumerate((32, 33)):
        np.testing.assert_allclose(ds["pm25"].values[k], 1000.0 * la + lo + 0.001 * doy, rtol=0, atol=1e-9)


def test_missing_point_is_nan() -> None:
    t, pred = _grid_table(drop_last=True)
    cube = pm25_map_dataset(t, pred)["pm25"].values
    assert np.isnan(cube).sum() == 1


def test_duplicate_point_and_day_is_an_error() -> None:
    t, pred = _grid_table()
    t2 = pd.concat([t, t.iloc[[0]]], ignore_index=True)
    with pytest.raises(InputError, match="same grid point"):
        pm25_map_dataset(t2, np.r_[pred, pred[0]], source="grid.csv")


def test_irregular_axis_is_an_error() -> None:
    with pytest.raises(InputError, match="evenly spaced"):
        regular_axis([28.4, 28.45, 28.52], LAT, "grid.csv")
    # a missing grid line still makes a regular axis (0.05 deg steps, one absent)
    np.testing.assert_allclose(regular_axis([28.4, 28.5, 28.55], LAT, "grid.csv"), [28.4, 28.45, 28.5, 28.55])
