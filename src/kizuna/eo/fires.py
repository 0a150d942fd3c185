"""Active-fire detections (crop-residue burning): count them per district, day, satellite or grid cell, and
compare daily counts with official ones. Reading (Bhuvan, PRSC and NASA FIRMS tables, their quirks and
time zones) is in :mod:`kizuna.eo.fires_read`; its names are available here too.

Days are counted in IST by default, the day of the official Indian counts; ``day_tz="UTC"`` counts UTC
days.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from kizuna.eo.fires_read import (
    DISTRICT_ALIASES,
    TABLE_COLUMNS,
    FireDetections,
    normalise_district,
    read_fires,
    read_records,
    utc_offset_min,
)
from kizuna.errors import InputError

PathLike = str | os.PathLike[str]

__all__ = [
    "FireDetections",
    "read_fires",
    "normalise_district",
    "utc_offset_min",
    "parse_by",
    "count_fires",
    "local_day",
    "grid_counts",
    "fire_count_grid",
    "read_official_counts",
    "compare_daily",
    "comparison_summary",
    "TABLE_COLUMNS",
    "DISTRICT_ALIASES",
]

_KEYS = {
    **{k: k for k in ("district", "tehsil", "state", "day", "satellite", "instrument", "daynight", "cell")},
    **{"date": "day", "sat": "satellite", "grid": "cell"},
}


def parse_by(text: str | Sequence[str]) -> tuple[str, ...]:
    """Return the grouping keys of a 'district,day'-style text (district, tehsil, state, day, satellite,
    instrument, daynight, cell)."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    keys = [p.strip().lower() for p in parts if p.strip()]
    bad = [k for k in keys if k not in _KEYS]
    if bad:
        raise InputError(
            f"--by {text!r}: unknown key(s) {', '.join(bad)}; expected {', '.join(sorted(_KEYS))}"
        )
    return tuple(dict.fromkeys(_KEYS[k] for k in keys))


def _table(detections: FireDetections | pd.DataFrame) -> pd.DataFrame:
    """Return the detection table of a FireDetections or a table with TABLE_COLUMNS."""
    table = detections.table if isinstance(detections, FireDetections) else detections
    missing = [c for c in ("lat_deg", "lon_deg", "acq_time_utc", "satellite") if c not in table.columns]
    if missing:
        raise InputError(f"detection table without the column(s) {', '.join(missing)}")
    return table


def local_day(t_utc: Any, day_tz: str = "IST") -> NDArray[np.datetime64]:
    """Return the calendar day (datetime64[D]) in the time zone ``day_tz`` of UTC times."""
    t = np.asarray(t_utc, dtype="datetime64[ns]") + np.timedelta64(utc_offset_min(day_tz), "m")
    return t.astype("datetime64[D]")


def _where(table: pd.DataFrame) -> Any:
    """Return a function naming row i of a detection table as 'file:line' (or 'detection i')."""
    if "source" in table.columns and "source_line" in table.columns:
        src, line = table["source"].to_numpy(), table["source_line"].to_numpy()
        return lambda i: f"{src[i]}:{line[i]}"
    return lambda i: f"detection {i}"


def _grid_origin(
    lat_deg: NDArray, lon_deg: NDArray, res_deg: float, bounds: Sequence[float] | None, where: Any = None
) -> tuple[float, float, int, int]:
    """Return (south edge, west edge, rows, columns) of a grid of res_deg cells covering the points or the
    bounds (lat_min, lat_max, lon_min, lon_max) in degrees; InputError for points outside the bounds, named
    by ``where(i)`` (e.g. 'file:line')."""
    if not np.isfinite(res_deg) or not 0 < res_deg <= 10:
        raise InputError(f"grid spacing {res_deg} deg: expected a value in (0, 10] degrees")
    if bounds is None and np.size(lat_deg) == 0:
        raise InputError("fire grid: no detections to place; expected at least one, or give the bounds")
    if bounds is None:
        lat0 = np.floor(np.min(lat_deg) / res_deg + 1e-9) * res_deg
        lon0 = np.floor(np.min(lon_deg) / res_deg + 1e-9) * res_deg
        nlat = int(np.floor((np.max(lat_deg) - lat0) / res_deg + 1e-9)) + 1
        nlon = int(np.floor((np.max(lon_deg) - lon0) / res_deg + 1e-9)) + 1
        return float(lat0), float(lon0), nlat, nlon
    la0, la1, lo0, lo1 = (float(b) for b in bounds)
    if not (-90 <= la0 < la1 <= 90 and -180 <= lo0 < lo1 <= 180):
        raise InputError(
            f"grid bounds {tuple(bounds)}: expected LATMIN < LATMAX and LONMIN < LONMAX in degrees"
        )
    outside = (lat_deg < la0) | (lat_deg > la1) | (lon_deg < lo0) | (lon_deg > lo1)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        first = f"{where(i)}, " if where is not None else ""
        raise InputError(
            f"grid bounds {la0:g}..{la1:g} N, {lo0:g}..{lo1:g} E: {int(outside.sum())} detection(s) outside "
            f"(first {first}at {lat_deg[i]:.5f} N, {lon_deg[i]:.5f} E); widen the bounds"
        )
    nlat = max(1, int(np.ceil((la1 - la0) / res_deg - 1e-9)))
    nlon = max(1, int(np.ceil((lo1 - lo0) / res_deg - 1e-9)))
    return la0, lo0, nlat, nlon


def _cells(lat_deg: NDArray, lon_deg: NDArray, origin: tuple[float, float, int, int], res_deg: float):
    """Return the row and column of each point in the grid (cells include their south and west edges)."""
    lat0, lon0, nlat, nlon = origin
    i = np.clip(np.floor((lat_deg - lat0) / res_deg + 1e-9).astype(np.int64), 0, nlat - 1)
    j = np.clip(np.floor((lon_deg - lon0) / res_deg + 1e-9).astype(np.int64), 0, nlon - 1)
    return i, j


def grid_counts(
    lat_deg: Any,
    lon_deg: Any,
    res_deg: float,
    *,
    bounds: Sequence[float] | None = None,
    weights: Any = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Return (counts or summed weights per cell with rows south to north, cell-centre latitudes, cell-centre
    longitudes) of points on a regular lat/lon grid of res_deg degrees (WGS84)."""
    lat = np.asarray(lat_deg, dtype=float).ravel()
    lon = np.asarray(lon_deg, dtype=float).ravel()
    if lat.size == 0 or lat.shape != lon.shape or not (np.isfinite(lat).all() and np.isfinite(lon).all()):
        raise InputError("grid points: expected equal, non-empty arrays of finite latitudes and longitudes")
    origin = _grid_origin(lat, lon, res_deg, bounds)
    i, j = _cells(lat, lon, origin, res_deg)
    lat0, lon0, nlat, nlon = origin
    w = None if weights is None else np.nan_to_num(np.asarray(weights, dtype=float).ravel())
    grid = np.bincount(i * nlon + j, weights=w, minlength=nlat * nlon).astype(float).reshape(nlat, nlon)
    return grid, lat0 + (np.arange(nlat) + 0.5) * res_deg, lon0 + (np.arange(nlon) + 0.5) * res_deg


def count_fires(
    detections: FireDetections | pd.DataFrame,
    by: str | Sequence[str] = ("district", "day"),
    *,
    day_tz: str = "IST",
    grid_deg: float | None = None,
    bounds: Sequence[float] | None = None,
    fill_zeros: bool = True,
) -> pd.DataFrame:
    """Count detections per group: columns for the keys (day -> 'date' YYYY-MM-DD in ``day_tz``; cell ->
    'lat_deg', 'lon_deg' cell centres of a grid_deg grid), 'count' and 'frp_mw_sum' (MW).

    With ``fill_zeros`` every combination of the keys' values seen (days: every day from the first to
    the last) gets a row, 0 where nothing was detected; grid cells list only cells with detections.
    """
    table = _table(detections)
    keys = parse_by(by)
    if grid_deg is not None and "cell" not in keys:
        keys = (*keys, "cell")
    if "cell" in keys and grid_deg is None:
        raise InputError("--by cell: give the grid spacing (--grid-deg)")
    n = len(table)
    frp = np.nan_to_num(table["frp_mw"].to_numpy(dtype=float)) if "frp_mw" in table.columns else np.zeros(n)
    codes: list[NDArray[np.int64]] = []  # each key as integer codes 0..size-1
    labels: list[dict[str, NDArray]] = []  # and the output columns of those codes
    for k in keys:
        if k == "day":
            days = local_day(table["acq_time_utc"].to_numpy(), day_tz).astype(np.int64)
            first, last = (int(days.min()), int(days.max())) if n else (0, -1)
            codes.append(days - first)
            span = np.arange(first, last + 1).astype("datetime64[D]")
            labels.append({"date": np.datetime_as_string(span, unit="D")})
        elif k == "cell":
            lat = table["lat_deg"].to_numpy(dtype=float)
            lon = table["lon_deg"].to_numpy(dtype=float)
            origin = _grid_origin(lat, lon, float(grid_deg), bounds, _where(table))  # type: ignore[arg-type]
            lat0, lon0, nlat, nlon = origin
            i, j = _cells(lat, lon, origin, float(grid_deg))  # type: ignore[arg-type]
            codes.append(i * nlon + j)
            cells = np.arange(nlat * nlon)
            labels.append(
                {
                    "lat_deg": np.round(lat0 + (cells // nlon + 0.5) * grid_deg, 9),
                    "lon_deg": np.round(lon0 + (cells % nlon + 0.5) * grid_deg, 9),
                }
            )
        else:
            values = table[k].astype(str) if k in table.columns else pd.Series([""] * n, dtype=str)
            c, uniq = pd.factorize(values, sort=True)
            codes.append(np.asarray(c, dtype=np.int64))
            labels.append({k: np.asarray(uniq, dtype=object)})
    if not codes:
        return pd.DataFrame({"count": [n], "frp_mw_sum": [float(frp.sum())]})
    sizes = tuple(len(next(iter(cols.values()))) for cols in labels)
    flat = np.ravel_multi_index(tuple(codes), sizes) if n else np.zeros(0, dtype=np.int64)
    if fill_zeros and "cell" not in keys:
        combos = np.arange(int(np.prod(sizes)))
        inverse = flat
    else:
        combos, inverse = np.unique(flat, return_inverse=True)
    count = np.bincount(inverse, minlength=combos.size)
    power = np.bincount(inverse, weights=frp, minlength=combos.size)
    out = {
        name: values[idx]
        for cols, idx in zip(labels, np.unravel_index(combos, sizes), strict=True)
        for name, values in cols.items()
    }
    return pd.DataFrame({**out, "count": count.astype(np.int64), "frp_mw_sum": power.astype(float)})


def fire_count_grid(
    detections: FireDetections | pd.DataFrame,
    res_deg: float,
    *,
    by_day: bool = False,
    bounds: Sequence[float] | None = None,
    day_tz: str = "IST",
) -> Any:
    """Return an xarray Dataset of detections per lat/lon cell of res_deg degrees (WGS84 cell centres,
    ascending): 'fire_count' and 'frp_mw_sum' (MW) on (lat, lon), or on (date, lat, lon) with ``by_day``."""
    import xarray as xr

    table = _table(detections)
    lat = table["lat_deg"].to_numpy(dtype=float)
    lon = table["lon_deg"].to_numpy(dtype=float)
    frp = table["frp_mw"].to_numpy(dtype=float) if "frp_mw" in table.columns else np.zeros(len(lat))
    lat0, lon0, nlat, nlon = origin = _grid_origin(lat, lon, res_deg, bounds, _where(table))
    i, j = _cells(lat, lon, origin, res_deg)
    cell = i * nlon + j
    coords: dict[str, Any] = {
        "lat": ("lat", lat0 + (np.arange(nlat) + 0.5) * res_deg),
        "lon": ("lon", lon0 + (np.arange(nlon) + 0.5) * res_deg),
    }
    shape: tuple[int, ...] = (nlat, nlon)
    dims: tuple[str, ...] = ("lat", "lon")
    if by_day:
        if not len(lat):
            raise InputError("fire grid by day: no detections; expected at least one")
        days = local_day(table["acq_time_utc"].to_numpy(), day_tz)
        all_days = np.arange(days.min(), days.max() + 1, dtype="datetime64[D]")
        cell = (days - days.min()).astype(np.int64) * (nlat * nlon) + cell
        coords["date"] = ("date", all_days.astype("datetime64[ns]"))
        shape, dims = (len(all_days), nlat, nlon), ("date", "lat", "lon")
    size = int(np.prod(shape))
    counts = np.bincount(cell, minlength=size).reshape(shape)
    power = np.bincount(cell, weights=np.nan_to_num(frp), minlength=size).reshape(shape)
    ds = xr.Dataset(
        {
            "fire_count": (
                dims,
                counts.astype(np.int32),
                {"long_name": "active-fire detections", "units": "1"},
            ),
            "frp_mw_sum": (dims, power, {"long_name": "summed fire radiative power", "units": "MW"}),
        },
        coords=coords,
    )
    ds["lat"].attrs.update(units="degrees_north", standard_name="latitude")
    ds["lon"].attrs.update(units="degrees_east", standard_name="longitude")
    ds.attrs.update(grid_deg=float(res_deg), day_time_zone=str(day_tz), detections=int(len(lat)))
    return ds


# ---------------------------------------------------------------------------------------------- comparison


def read_official_counts(path: PathLike) -> pd.DataFrame:
    """Read official daily fire counts (CSV, or a JSON array of records, with 'date' YYYY-MM-DD and 'count')
    into a table of date (text) and count (int)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such official-counts file")
    raw, first = read_records(p)
    lower = {c.strip().lower(): c for c in raw.columns}
    for name in ("date", "count"):
        if name not in lower:
            raise InputError(f"{p}: line 1: no column '{name}'; expected columns date (YYYY-MM-DD) and count")
    dates = pd.to_datetime(raw[lower["date"]].str.strip(), format="%Y-%m-%d", errors="coerce")
    counts = pd.to_numeric(raw[lower["count"]].str.strip(), errors="coerce")
    for col, bad in (("date", dates.isna()), ("count", ~(counts >= 0) | (counts % 1 != 0))):
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            what = "a date YYYY-MM-DD" if col == "date" else "a whole number >= 0"
            raise InputError(f"{p}:{i + first}: {col} {raw[lower[col]].iloc[i]!r}: expected {what}")
    out = pd.DataFrame({"date": dates.dt.strftime("%Y-%m-%d"), "count": counts.astype(np.int64)})
    if out["date"].duplicated().any():
        d = out["date"][out["date"].duplicated()].iloc[0]
        raise InputError(f"{p}: date {d} appears twice; expected one count per day")
    return out.sort_values("date").reset_index(drop=True)


def compare_daily(
    detections: FireDetections | pd.DataFrame, official: pd.DataFrame, *, day_tz: str = "IST"
) -> pd.DataFrame:
    """Return one row per day (official days and detection days): date, detections, official, difference
    (detections - official), complete (equal counts), status ('complete', 'partial' fewer, 'excess' more,
    'no official count', 'not covered' outside the detections' first..last day) and detections per
    satellite ('detections_<satellite>')."""
    table = _table(detections)
    per_sat = count_fires(table, ("day", "satellite"), day_tz=day_tz, fill_zeros=True)
    wide = per_sat.pivot(index="date", columns="satellite", values="count").fillna(0).astype(np.int64)
    wide.columns = [f"detections_{c}" for c in wide.columns]
    det = wide.sum(axis=1).rename("detections")
    off = official.set_index("date")["count"].rename("official")
    out = pd.concat([det, off], axis=1).sort_index()
    first, last = det.index.min(), det.index.max()
    covered = (out.index >= first) & (out.index <= last)
    out["detections"] = out["detections"].fillna(0).astype(np.int64)
    out["official"] = out["official"].astype("Int64")
    out["difference"] = (out["detections"] - out["official"]).astype("Int64")
    has_off = out["official"].notna().to_numpy()
    diff = out["difference"].fillna(0).to_numpy(dtype=np.int64)
    status = np.where(diff == 0, "complete", np.where(diff < 0, "partial", "excess")).astype(object)
    status[~has_off] = "no official count"
    status[~covered] = "not covered"
    out["complete"] = status == "complete"
    out["status"] = status
    out = out.join(wide).fillna({c: 0 for c in wide.columns})
    out[list(wide.columns)] = out[list(wide.columns)].astype(np.int64)
    out.index.name = "date"
    return out.reset_index()


def comparison_summary(table: pd.DataFrame) -> dict[str, Any]:
    """Return the summary of a daily comparison: the days in each status, how many are complete, and the
    totals of detections and official counts over the days compared."""
    compared = table[table["status"].isin(["complete", "partial", "excess"])]
    days = {s: table.loc[table["status"] == s, "date"].tolist() for s in ("complete", "partial", "excess")}
    return {
        "days_compared": int(len(compared)),
        "days_complete": days["complete"],
        "days_partial": days["partial"],
        "days_excess": days["excess"],
        "days_without_official": table.loc[table["status"] == "no official count", "date"].tolist(),
        "n_days_complete": len(days["complete"]),
        "complete_fraction": len(days["complete"]) / len(compared) if len(compared) else None,
        "detections_on_compared_days": int(compared["detections"].sum()),
        "official_on_compared_days": int(compared["official"].sum()),
        "first_detection_day": str(table.loc[table["status"] != "not covered", "date"].min()),
        "last_detection_day": str(table.loc[table["status"] != "not covered", "date"].max()),
    }
