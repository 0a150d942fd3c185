"""Daily PM2.5 predictions on a regular grid of points as a map: a CF NetCDF cube (time, lat, lon).

`kizuna eo pm25 predict` predicts at each row of a table; when the rows are the points of a regular
latitude/longitude grid (one row per point and day, as made by sampling AOD and meteorology on a grid),
this arranges them into one map per day, with NaN where a point has no row that day.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from kizuna.eo.pm25_features import DOY, LAT, LON, YEAR
from kizuna.errors import InputError

__all__ = ["regular_axis", "pm25_map_dataset"]


def regular_axis(values: ArrayLike, name: str, source: str, rtol: float = 1e-3) -> NDArray[np.float64]:
    """Return the sorted distinct centres (deg) of a grid axis, checking that they are evenly spaced.

    Spacing is taken as the smallest gap between distinct values; every distinct value must lie on a whole
    multiple of it from the first (within ``rtol`` of a step), so that a grid with a missing column of
    points still counts as regular.
    """
    v = np.unique(np.round(np.asarray(values, dtype=float), 9))
    if v.size < 2:
        raise InputError(
            f"{source}: column {name!r} has {v.size} distinct value(s): a map needs at least 2 x 2 points"
        )
    step = float(np.min(np.diff(v)))
    k = (v - v[0]) / step
    if np.max(np.abs(k - np.round(k))) > rtol * max(1.0, float(k.max())):
        raise InputError(
            f"{source}: column {name!r} values are not on evenly spaced grid lines (smallest spacing "
            f"{step:g} deg); expected the points of a regular latitude/longitude grid"
        )
    n = int(round(float(k.max()))) + 1
    return v[0] + step * np.arange(n)


def pm25_map_dataset(table: pd.DataFrame, pm25_ug_m3: ArrayLike, source: str = "table") -> Any:
    """Return an xarray Dataset ``pm25`` (time, lat, lon) in ug/m3 from per-row predictions on grid points.

    ``table`` holds the Delhi data set's ``Latitude_2019``, ``Longitude_2019``, ``Year_2019`` and
    ``JulianDay_2019`` columns (deg, deg, year, day of year); rows are placed on the regular grid their
    coordinates span. Two rows on the same point and day are an error naming their lines.
    """
    import xarray as xr

    pred = np.asarray(pm25_ug_m3, dtype=float)
    if pred.shape != (len(table),):
        raise InputError(f"{source}: {pred.size} predictions for {len(table)} rows")
    for col in (LAT, LON, YEAR, DOY):
        if col not in table.columns:
            raise InputError(f"{source}: column {col!r} missing: a map needs each row's position and date")
    lat = table[LAT].to_numpy(float)
    lon = table[LON].to_numpy(float)
    lat_ax = regular_axis(lat, LAT, source)
    lon_ax = regular_axis(lon, LON, source)
    dates = pd.to_datetime(table[YEAR].astype(int).astype(str), format="%Y") + pd.to_timedelta(
        table[DOY].astype(int) - 1, unit="D"
    )
    days = np.sort(dates.unique())
    t = np.searchsorted(days, dates.to_numpy())
    i = np.round((lat - lat_ax[0]) / (lat_ax[1] - lat_ax[0])).astype(int)
    j = np.round((lon - lon_ax[0]) / (lon_ax[1] - lon_ax[0])).astype(int)
    flat = (t * lat_ax.size + i) * lon_ax.size + j
    uniq, first, counts = np.unique(flat, return_index=True, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1][0]
        rows = np.flatnonzero(flat == dup)[:2] + 2  # data lines (line 1 is the header)
        raise InputError(
            f"{source}: lines {rows[0]} and {rows[1]} are the same grid point ({lat[rows[0] - 2]:g}, "
            f"{lon[rows[0] - 2]:g}) on the same day: expected one row per point and day"
        )
    cube = np.full((days.size, lat_ax.size, lon_ax.size), np.nan)
    cube.reshape(-1)[flat] = pred
    return xr.Dataset(
        {
            "pm25": (
                ("time", "lat", "lon"),
                cube,
                {"long_name": "daily mean surface PM2.5 (predicted)", "units": "ug m-3"},
            )
        },
        coords={
            "time": ("time", days),
            "lat": ("lat", lat_ax, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("lon", lon_ax, {"standard_name": "longitude", "units": "degrees_east"}),
        },
        attrs={"title": "kizuna eo pm25 predict: daily PM2.5 on a regular grid", "source": str(source)},
    )
