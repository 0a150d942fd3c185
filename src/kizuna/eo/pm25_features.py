"""Station tables for surface PM2.5 models: the column names of the Delhi 2019 data set (Kulkarni et al.
2022), reading and checking a table, the monitoring network of a training table, and the model features.

A table has one row per station-day (or per grid point and day). Its columns keep the names of the Delhi
data set as they are, suffix ``_2019`` included, whatever the year: ``Corrected_PM25DailyMean_2019``
(daily mean PM2.5, ug/m3), ``Corrected_DailyMeanAOD_2019`` (MODIS MAIAC AOD at 550 nm, NaN on days
without a retrieval), meteorology (T in K, RH in %, wind speed in m/s, wind direction in deg, pressure in
hPa, boundary-layer height in m, column water vapour in cm), NDVI, position (deg, m) and the date.

Features come in three groups:

* ``BASE_FEATURES``: the row's own satellite and meteorological inputs, position, day of year and an
  AOD-missing flag (1 where the AOD is NaN).
* ``AOD_CONTEXT_FEATURES``: the mean AOD that day over the network stations other than the row's own,
  and the row's AOD relative to it (satellite data only, no PM2.5).
* ``PM_CONTEXT_FEATURES``: PM2.5 measured that same day at the network stations OTHER than the row's own
  (geometric mean, inverse-distance-squared mean, nearest station and its distance). A row never sees
  its own station's PM2.5; these exist only for dates on which the network measured.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from kizuna.errors import InputError

__all__ = [
    "STATION_NAME",
    "STATION_CODE",
    "LAT",
    "LON",
    "ELEV",
    "YEAR",
    "MONTH",
    "DAY",
    "SEASON",
    "DOY",
    "PM25",
    "AOD",
    "MET_COLUMNS",
    "INPUT_COLUMNS",
    "TRAIN_COLUMNS",
    "NETWORK_COLUMNS",
    "BASE_FEATURES",
    "AOD_CONTEXT_FEATURES",
    "PM_CONTEXT_FEATURES",
    "StationNetwork",
    "read_table",
    "read_pm25_table",
    "check_pm25_table",
    "check_network_table",
    "station_network",
    "network_table",
    "build_features",
    "season_of",
    "DOMAIN_MIN_KM",
    "domain_limit_km",
    "check_domain",
]

STATION_NAME = "StationName_2019"
STATION_CODE = "StationCode_2019"
LAT = "Latitude_2019"
LON = "Longitude_2019"
ELEV = "Elevation_2019"
YEAR = "Year_2019"
MONTH = "Month_2019"
DAY = "Day_2019"
SEASON = "Season_2019"
DOY = "JulianDay_2019"
PM25 = "Corrected_PM25DailyMean_2019"
AOD = "Corrected_DailyMeanAOD_2019"
MET_COLUMNS = (
    "NDVI_2019",
    "CWVDailyMean_2019",
    "TempDailyMean_2019",
    "RHDailyMean_2019",
    "WSDailyMean_2019",
    "WDDailyMean_2019",
    "PressureDailyMean_2019",
    "BLHDailyMean_2019",
)
# Columns a table must have to be predicted on (a new station or a grid of points).
INPUT_COLUMNS = (LAT, LON, ELEV, YEAR, DOY, AOD, *MET_COLUMNS)
# Columns a training table must have in addition.
TRAIN_COLUMNS = (*INPUT_COLUMNS, STATION_CODE, PM25)
# Columns of a monitors' table giving the network context of predictions (AOD optional).
NETWORK_COLUMNS = (STATION_CODE, LAT, LON, YEAR, DOY, PM25)

BASE_FEATURES = (AOD, *MET_COLUMNS, LAT, LON, ELEV, DOY, "aod_missing")
AOD_CONTEXT_FEATURES = ("net_aod_mean", "aod_log_ratio_net")
PM_CONTEXT_FEATURES = (
    "net_log_pm25_mean",
    "net_log_pm25_idw2",
    "net_log_pm25_nearest",
    "net_nearest_km",
)

EARTH_RADIUS_KM = 6371.0088  # IUGG mean Earth radius
IDW_MIN_KM = 1.0  # distances below this count as 1 km in the inverse-distance weights
DOMAIN_MIN_KM = 50.0  # smallest distance from the nearest training station accepted for predictions
SEASONS = {12: "DJF", 1: "DJF", 2: "DJF", 3: "MAM", 4: "MAM", 5: "MAM"}
SEASONS.update({6: "JJA", 7: "JJA", 8: "JJA", 9: "SON", 10: "SON", 11: "SON"})
_CHUNK_ROWS = 100_000


def _station_codes(codes: pd.Series) -> NDArray[np.str_]:
    """Return station codes as text: whole numbers without a decimal point (15.0 -> '15'), empty for NaN."""
    num = pd.to_numeric(codes, errors="coerce").to_numpy(float)
    text = codes.astype(str).str.strip().to_numpy(dtype=object)
    whole = np.isfinite(num) & (num == np.round(num))
    text[whole] = [str(int(v)) for v in num[whole]]
    text[codes.isna().to_numpy()] = ""
    return text.astype(str)


def _at(source: str, i: int) -> str:
    """Return 'SOURCE: line N' for positional row ``i`` (the CSV header is line 1)."""
    return f"{source}: line {int(i) + 2}"


def check_pm25_table(table: pd.DataFrame, source: str, *, need_target: bool) -> pd.DataFrame:
    """Return a copy of a station-day table with its columns checked and numeric; raise InputError naming
    ``source`` and the first missing or malformed column otherwise."""
    return _check(table, source, TRAIN_COLUMNS if need_target else INPUT_COLUMNS, need_target)


def check_network_table(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """Return a copy of a monitors' table (station code, lat, lon, year, day of year, PM2.5 and, if
    present, AOD) checked and numeric, the AOD column added as NaN when absent."""
    out = _check(table, source, NETWORK_COLUMNS, True)
    if AOD not in out.columns:
        out[AOD] = np.nan
    return out


def _check(table: pd.DataFrame, source: str, required: tuple[str, ...], need_target: bool) -> pd.DataFrame:
    """Check the required columns of a table and return a copy with them numeric."""
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"{source}: expected a table (pandas DataFrame), got {type(table).__name__}")
    names = {str(c).strip(): c for c in table.columns}
    for col in required:
        if col not in table.columns:
            near = [n for n in names if n.lower() == col.lower() or n == col]
            hint = f" (found {names[near[0]]!r}: column names must match exactly)" if near else ""
            raise InputError(f"{source}: missing column {col!r}{hint}")
    if len(table) == 0:
        raise InputError(f"{source}: no rows (expected one row per station-day)")
    out = table.copy()
    optional = [c for c in (MONTH, DAY, AOD) if c in out.columns and c not in required]
    numeric = [c for c in required if c != STATION_CODE] + optional
    for col in numeric:
        if pd.api.types.is_numeric_dtype(out[col]) and not pd.api.types.is_bool_dtype(out[col]):
            out[col] = out[col].astype(float)
            continue
        values = pd.to_numeric(out[col], errors="coerce")
        bad = values.isna() & out[col].notna()
        if bad.any():
            bad[bad] = out.loc[bad, col].astype(str).str.strip() != ""
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"{_at(source, i)}: column {col!r} value {out[col].iloc[i]!r}: expected a number"
            )
        out[col] = values.astype(float)
    for col in (c for c in MET_COLUMNS if c in required):
        if out[col].isna().all():
            raise InputError(
                f"{source}: column {col!r} has no values (all NaN): expected daily values "
                f"(only {AOD!r} may be missing on every row)"
            )
    for col in (c for c in (LAT, LON, ELEV, YEAR, DOY) if c in required):
        if out[col].isna().any():
            i = int(np.flatnonzero(out[col].isna().to_numpy())[0])
            raise InputError(f"{_at(source, i)}: column {col!r} is empty: expected a value")
    checks = (
        (LAT, -90.0, 90.0, "a latitude in degrees"),
        (LON, -180.0, 360.0, "a longitude in degrees"),
        (DOY, 1.0, 366.0, "a day of year 1..366"),
        (YEAR, 1900.0, 2200.0, "a calendar year"),
    )
    for col, lo, hi, what in checks:
        v = out[col].to_numpy()
        bad = (v < lo) | (v > hi)
        if col in (DOY, YEAR):
            bad |= v != np.round(v)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"{_at(source, i)}: column {col!r} value {float(v[i]):g}: expected {what}")
    if need_target:
        if out[STATION_CODE].isna().any():
            i = int(np.flatnonzero(out[STATION_CODE].isna().to_numpy())[0])
            raise InputError(f"{_at(source, i)}: column {STATION_CODE!r} is empty")
        pm = out[PM25].to_numpy()
        if not np.isfinite(pm).any():
            raise InputError(f"{source}: column {PM25!r} has no values (all NaN): nothing to train on")
        if (pm[np.isfinite(pm)] <= 0).any():
            i = int(np.flatnonzero(np.isfinite(pm) & (pm <= 0))[0])
            raise InputError(
                f"{_at(source, i)}: column {PM25!r} value {float(pm[i]):g}: expected PM2.5 > 0 ug/m3"
            )
    if STATION_CODE in out.columns:
        out[STATION_CODE] = _station_codes(out[STATION_CODE])
        key = out[[STATION_CODE, YEAR, DOY]]
        dup = key.duplicated().to_numpy()
        if need_target and dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise InputError(
                f"{_at(source, i)}: station {out[STATION_CODE].iloc[i]!r} on "
                f"{int(out[YEAR].iloc[i])} day {int(out[DOY].iloc[i])} appears twice: "
                "expected one row per station-day"
            )
    return out


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a table as it is in the file (CSV, or Parquet by suffix), without checking its columns."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file (expected a CSV table of station-days)")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(p)
        return pd.read_csv(p, low_memory=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        msg = " ".join(str(exc).split())
        raise InputError(f"{p}: cannot read the table ({msg})") from exc


def read_pm25_table(path: str | os.PathLike[str], *, need_target: bool = False) -> pd.DataFrame:
    """Read a station-day table (CSV, or Parquet by suffix) with the Delhi data set's column names and
    check it; raise InputError naming the file and the column on a missing or malformed column."""
    return check_pm25_table(read_table(path), str(path), need_target=need_target)


def season_of(table: pd.DataFrame) -> NDArray[np.str_]:
    """Return the meteorological season (DJF, MAM, JJA, SON) of each row: the ``Season_2019`` column if
    present, else from the year and day of year."""
    if SEASON in table.columns and table[SEASON].notna().all():
        return table[SEASON].astype(str).str.strip().to_numpy()
    dates = pd.to_datetime(table[YEAR].astype(int).astype(str), format="%Y") + pd.to_timedelta(
        table[DOY].astype(int) - 1, unit="D"
    )
    return np.array([SEASONS[m] for m in dates.dt.month.to_numpy()])


def _date_key(table: pd.DataFrame) -> NDArray[np.int64]:
    """Return year * 1000 + day of year for each row."""
    return (table[YEAR].to_numpy(float) * 1000 + table[DOY].to_numpy(float)).astype(np.int64)


@dataclass(frozen=True)
class StationNetwork:
    """Daily PM2.5 and AOD at the monitoring stations of a training table, date by station."""

    station_code: NDArray[np.str_]  # (n_stations,)
    lat_deg: NDArray[np.float64]  # (n_stations,)
    lon_deg: NDArray[np.float64]  # (n_stations,)
    date_key: NDArray[np.int64]  # (n_dates,) year * 1000 + day of year, ascending
    log_pm25: NDArray[np.float64]  # (n_dates, n_stations) ln(ug/m3), NaN where not measured
    aod: NDArray[np.float64]  # (n_dates, n_stations) AOD at 550 nm, NaN where not retrieved

    @property
    def n_stations(self) -> int:
        """Number of stations."""
        return len(self.station_code)


def station_network(table: pd.DataFrame, source: str = "training table") -> StationNetwork:
    """Return the monitoring network (daily PM2.5 and AOD by station) of a training or monitors' table."""
    t = check_network_table(table, source)
    codes = t[STATION_CODE].astype(str).to_numpy()
    pos = t.groupby(codes)[[LAT, LON]].agg(["min", "max"])
    spread = np.maximum(
        (pos[(LAT, "max")] - pos[(LAT, "min")]).to_numpy(), (pos[(LON, "max")] - pos[(LON, "min")]).to_numpy()
    )
    if (spread > 1e-3).any():
        bad = pos.index[np.flatnonzero(spread > 1e-3)[0]]
        raise InputError(f"{source}: station {bad!r} has more than one position in {LAT!r}/{LON!r}")
    station = pos.index.to_numpy().astype(str)
    keys = _date_key(t)
    dates = np.unique(keys)
    di = np.searchsorted(dates, keys)
    si = np.searchsorted(station, codes)
    pm = np.full((len(dates), len(station)), np.nan)
    aod = np.full_like(pm, np.nan)
    pm_v = t[PM25].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        pm[di, si] = np.where(pm_v > 0, np.log(pm_v), np.nan)
    aod[di, si] = t[AOD].to_numpy(float)
    return StationNetwork(
        station_code=station,
        lat_deg=pos[(LAT, "min")].to_numpy(float),
        lon_deg=pos[(LON, "min")].to_numpy(float),
        date_key=dates,
        log_pm25=pm,
        aod=aod,
    )


def network_table(network: StationNetwork) -> pd.DataFrame:
    """Return the network as a long table (station code, lat, lon, year, day of year, PM2.5, AOD) with the
    data set's column names; :func:`station_network` reads it back."""
    di, si = np.nonzero(np.isfinite(network.log_pm25) | np.isfinite(network.aod))
    key = network.date_key[di]
    return pd.DataFrame(
        {
            STATION_CODE: network.station_code[si],
            LAT: network.lat_deg[si],
            LON: network.lon_deg[si],
            YEAR: (key // 1000).astype(float),
            DOY: (key % 1000).astype(float),
            PM25: np.exp(network.log_pm25[di, si]),
            AOD: network.aod[di, si],
        }
    )


def _distance_km(lat_deg: NDArray, lon_deg: NDArray, net: StationNetwork) -> NDArray[np.float64]:
    """Return great-circle distances (km, haversine on a sphere) from points to every network station."""
    la1, lo1 = np.radians(lat_deg)[:, None], np.radians(lon_deg)[:, None]
    la2, lo2 = np.radians(net.lat_deg)[None, :], np.radians(net.lon_deg)[None, :]
    h = np.sin((la2 - la1) / 2) ** 2 + np.cos(la1) * np.cos(la2) * np.sin((lo2 - lo1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def _weighted_mean(values: NDArray, weights: NDArray) -> NDArray[np.float64]:
    """Return the row-wise weighted mean of values over their finite entries (NaN where none)."""
    w = np.where(np.isfinite(values), weights, 0.0)
    s = w.sum(axis=1)
    num = (w * np.nan_to_num(values)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 0, num / s, np.nan)


def _context_chunk(table: pd.DataFrame, net: StationNetwork) -> dict[str, NDArray[np.float64]]:
    """Return the network context features of a chunk of rows."""
    n = len(table)
    pm = np.full((n, net.n_stations), np.nan)
    aod = np.full((n, net.n_stations), np.nan)
    if len(net.date_key):
        keys = _date_key(table)
        di = np.clip(np.searchsorted(net.date_key, keys), 0, len(net.date_key) - 1)
        known = net.date_key[di] == keys
        pm[known] = net.log_pm25[di[known]]
        aod[known] = net.aod[di[known]]
    if STATION_CODE in table.columns:
        own = table[STATION_CODE].astype(str).to_numpy()[:, None] == net.station_code[None, :]
        pm = np.where(own, np.nan, pm)
        aod = np.where(own, np.nan, aod)
    dist = _distance_km(table[LAT].to_numpy(float), table[LON].to_numpy(float), net)
    ones = np.ones_like(dist)
    out: dict[str, NDArray[np.float64]] = {}
    out["net_aod_mean"] = _weighted_mean(aod, ones)
    own_aod = table[AOD].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.log(own_aod) - np.log(out["net_aod_mean"])
    out["aod_log_ratio_net"] = np.where(np.isfinite(ratio), ratio, np.nan)
    out["net_log_pm25_mean"] = _weighted_mean(pm, ones)
    out["net_log_pm25_idw2"] = _weighted_mean(pm, 1.0 / np.maximum(dist, IDW_MIN_KM) ** 2)
    masked = np.where(np.isfinite(pm), dist, np.inf)
    if masked.shape[1]:
        k = np.argmin(masked, axis=1)
        near_km = masked[np.arange(n), k]
        has = np.isfinite(near_km)
        out["net_log_pm25_nearest"] = np.where(has, pm[np.arange(n), k], np.nan)
        out["net_nearest_km"] = np.where(has, near_km, np.nan)
    else:
        out["net_log_pm25_nearest"] = np.full(n, np.nan)
        out["net_nearest_km"] = np.full(n, np.nan)
    return out


def build_features(table: pd.DataFrame, network: StationNetwork) -> pd.DataFrame:
    """Return the model features of every row of a checked table: ``BASE_FEATURES``, then
    ``AOD_CONTEXT_FEATURES`` and ``PM_CONTEXT_FEATURES`` from the network stations other than the row's own
    on the same date (NaN where the network has nothing that day)."""
    feats = pd.DataFrame(index=table.index)
    for col in (AOD, *MET_COLUMNS, LAT, LON, ELEV, DOY):
        feats[col] = table[col].to_numpy(float)
    feats["aod_missing"] = (~np.isfinite(feats[AOD].to_numpy())).astype(float)
    parts: dict[str, list[NDArray]] = {c: [] for c in (*AOD_CONTEXT_FEATURES, *PM_CONTEXT_FEATURES)}
    for start in range(0, len(table), _CHUNK_ROWS):
        chunk = _context_chunk(table.iloc[start : start + _CHUNK_ROWS], network)
        for c in parts:
            parts[c].append(chunk[c])
    for c, arrays in parts.items():
        feats[c] = np.concatenate(arrays) if arrays else np.zeros(0)
    return feats


def domain_limit_km(network: StationNetwork) -> float:
    """Return how far (km) from its nearest training station a prediction may lie: the network's largest
    station-to-station distance, but at least ``DOMAIN_MIN_KM``."""
    if network.n_stations == 0:
        return DOMAIN_MIN_KM
    return max(DOMAIN_MIN_KM, float(_distance_km(network.lat_deg, network.lon_deg, network).max()))


def check_domain(
    table: pd.DataFrame, network: StationNetwork, source: str, max_km: float | None = None
) -> None:
    """Raise InputError naming ``source``, the line and the coordinate columns for the first row farther
    than ``max_km`` (default :func:`domain_limit_km`) from every station of the training network: the
    model knows nothing of places outside the area its stations cover."""
    limit = domain_limit_km(network) if max_km is None else float(max_km)
    if network.n_stations == 0 or not np.isfinite(limit):
        return
    lat, lon = table[LAT].to_numpy(float), table[LON].to_numpy(float)
    for start in range(0, len(table), _CHUNK_ROWS):
        d = _distance_km(lat[start : start + _CHUNK_ROWS], lon[start : start + _CHUNK_ROWS], network)
        near = d.min(axis=1)
        far = np.flatnonzero(near > limit)
        if far.size:
            i = start + int(far[0])
            raise InputError(
                f"{_at(source, i)}: columns {LAT!r}/{LON!r} ({lat[i]:g}, {lon[i]:g}) lie "
                f"{near[far[0]]:.0f} km from the nearest training station: outside the model's domain "
                f"(expected within {limit:.0f} km)"
            )
