"""Rice inputs and outputs: point data sets, Sentinel-1 raster stacks, class-map rasters and figures.

Point sets follow the layout of the EY Open Science Data Challenge 2023 (An Giang, Mekong Delta): a label
CSV with "(lat, lon)" strings and Sentinel-1/-2 time series in .npy files. Sentinel-1 series are linear
power (gamma0/sigma0) with nodata written as -32768 or 0; they are returned in dB with NaN where there is
no data. Band order is given by the caller: in the An Giang files the first band is about 6 dB below the
second at 95 % of samples, which is the cross-polarised (VH) channel, so the default order here is
``("vh", "vv")``; :func:`cross_pol_excess_db` checks this on any data set.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from kizuna.errors import InputError

__all__ = [
    "S1_NODATA",
    "RicePoints",
    "read_label_csv",
    "read_point_dataset",
    "linear_to_db",
    "s1_bands_db",
    "cross_pol_excess_db",
    "read_s1_stack",
    "stack_grid",
    "new_figure",
    "series_figure",
    "confusion_figure",
    "importance_figure",
    "rules_figure",
    "site_accuracy_figure",
    "LABEL_FILE",
    "S1_TRAIN_FILE",
    "S1_TEST_FILE",
    "S2_TRAIN_FILE",
    "S2_TEST_FILE",
]

PathLike = str | os.PathLike[str]

S1_NODATA = -32768.0
LABEL_FILE = "Crop_Location_Data_20221201.csv"
S1_TRAIN_FILE = "sar_data.npy"
S1_TEST_FILE = "sar_data_test.npy"
S2_TRAIN_FILE = "sentinel2_data_train.npy"
S2_TEST_FILE = "sentinel2_data_test.npy"
COORD_COLUMN = "Latitude and Longitude"
CLASS_COLUMN = "Class of Land"
RICE_NAMES = ("rice",)
NON_RICE_NAMES = ("non rice", "non-rice", "nonrice", "other")

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass(frozen=True, eq=False)
class RicePoints:
    """Labelled or unlabelled points: S1 backscatter (dB) per band and time, optional S2, lat/lon (deg)."""

    s1_db: NDArray[np.float64]
    """(n, 2, T) backscatter in dB, NaN where no data; bands in ``s1_bands`` order."""
    s1_bands: tuple[str, str]
    lat_deg: NDArray[np.float64]
    lon_deg: NDArray[np.float64]
    label: NDArray[np.int8]
    """(n,) 1 = rice, 0 = not rice, -1 = unknown."""
    s2_reflectance: NDArray[np.float64] | None = None
    """(n, 4, T2) Sentinel-2 L2A reflectance x 1e4 (red, green, blue, NIR), NaN where no data."""
    source: str = ""

    @property
    def n(self) -> int:
        """Return the number of points."""
        return int(self.s1_db.shape[0])

    def band_db(self, name: str) -> NDArray[np.float64]:
        """Return the (n, T) series in dB of band ``name`` ('vv' or 'vh')."""
        key = name.lower()
        if key not in self.s1_bands:
            raise InputError(f"{self.source}: no band {name!r}; the bands are {list(self.s1_bands)}")
        return self.s1_db[:, self.s1_bands.index(key), :]


def _parse_lat_lon(text: str, path: Path, line: int) -> tuple[float, float]:
    """Return (lat, lon) in degrees from a "(lat, lon)" string (a missing parenthesis is tolerated)."""
    nums = _NUMBER.findall(str(text))
    if len(nums) != 2:
        raise InputError(
            f"{path}: line {line}: column {COORD_COLUMN!r}: {text!r}: expected '(lat, lon)' in degrees"
        )
    lat, lon = float(nums[0]), float(nums[1])
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 360.0):
        raise InputError(
            f"{path}: line {line}: column {COORD_COLUMN!r}: ({lat}, {lon}) outside -90..90, -180..360 deg"
        )
    return lat, lon


def read_label_csv(path: PathLike, *, require_class: bool = False) -> pd.DataFrame:
    """Read a point label CSV into lat_deg, lon_deg, class_name and label (1 rice, 0 not, -1 unknown).

    Coordinates come either from one column "Latitude and Longitude" holding "(lat, lon)" strings or from
    two columns named lat/latitude and lon/longitude; the class from "Class of Land" or class/label, with
    values Rice / Non Rice (any case). The class is optional unless ``require_class``: then a missing class
    column or an empty class cell raises InputError naming the file, the line and the column.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: label CSV not found")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{p}: cannot read the CSV ({exc})") from exc
    cols = {c.strip().lower(): c for c in df.columns}
    if COORD_COLUMN.lower() in cols:
        col = cols[COORD_COLUMN.lower()]
        ll = [_parse_lat_lon(v, p, i + 2) for i, v in enumerate(df[col])]
        lat = np.array([a for a, _ in ll], dtype=float)
        lon = np.array([b for _, b in ll], dtype=float)
    else:
        lat_col = next((cols[k] for k in ("lat", "latitude", "lat_deg") if k in cols), None)
        lon_col = next((cols[k] for k in ("lon", "longitude", "lon_deg", "long") if k in cols), None)
        if lat_col is None or lon_col is None:
            raise InputError(
                f"{p}: no coordinate columns; expected {COORD_COLUMN!r} with '(lat, lon)' strings "
                f"or lat and lon columns (found {list(df.columns)})"
            )
        lat = pd.to_numeric(df[lat_col], errors="coerce").to_numpy(float)
        lon = pd.to_numeric(df[lon_col], errors="coerce").to_numpy(float)
        bad = np.flatnonzero(~np.isfinite(lat) | ~np.isfinite(lon))
        if bad.size:
            i = int(bad[0])
            raise InputError(
                f"{p}: line {i + 2}: columns {lat_col!r}/{lon_col!r}: expected numbers in degrees, "
                f"got {df[lat_col].iloc[i]!r}, {df[lon_col].iloc[i]!r}"
            )
    class_col = next((cols[k] for k in (CLASS_COLUMN.lower(), "class", "label") if k in cols), None)
    if require_class and class_col is None:
        raise InputError(
            f"{p}: missing column {CLASS_COLUMN!r} (or class/label) with Rice / Non Rice for every point "
            f"(found {list(df.columns)})"
        )
    names = df[class_col].astype(str).str.strip() if class_col is not None else pd.Series([""] * len(df))
    label = np.full(len(df), -1, dtype=np.int8)
    low = names.str.lower().to_numpy()
    label[np.isin(low, RICE_NAMES)] = 1
    label[np.isin(low, NON_RICE_NAMES)] = 0
    unknown = np.flatnonzero((label < 0) & ((low != "") | require_class))
    if unknown.size:
        i = int(unknown[0])
        raise InputError(
            f"{p}: line {i + 2}: column {class_col!r}: {names.iloc[i]!r}: expected 'Rice' or 'Non Rice'"
        )
    return pd.DataFrame({"lat_deg": lat, "lon_deg": lon, "class_name": names.to_numpy(), "label": label})


def linear_to_db(power: NDArray, nodata: float | None = S1_NODATA) -> NDArray[np.float64]:
    """Return 10 log10 of linear backscatter power, NaN where it is nodata, NaN, zero or negative."""
    x = np.asarray(power, dtype=np.float64)
    bad = ~np.isfinite(x) | (x <= 0.0)
    if nodata is not None:
        bad |= x == nodata
    out = np.full(x.shape, np.nan)
    np.log10(x, out=out, where=~bad)
    out[~bad] *= 10.0
    return out


def s1_bands_db(
    s1: NDArray, *, units: str = "linear", nodata: float | None = S1_NODATA, where: str = "S1 array"
) -> NDArray[np.float64]:
    """Return an (n, bands, T) S1 array in dB: linear power converted, dB input with nodata set to NaN."""
    arr = np.asarray(s1)
    if arr.ndim != 3 or arr.shape[1] != 2 or arr.shape[2] < 3:
        raise InputError(f"{where}: shape {arr.shape}: expected (points, 2 bands, time >= 3)")
    if units == "linear":
        return linear_to_db(arr, nodata)
    if units == "db":
        out = np.asarray(arr, dtype=np.float64).copy()
        if nodata is not None:
            out[out == nodata] = np.nan
        out[~np.isfinite(out)] = np.nan
        return out
    raise InputError(f"{where}: units {units!r}: expected 'linear' or 'db'")


def cross_pol_excess_db(s1_db: NDArray, bands: tuple[str, str]) -> float:
    """Return the median of VH - VV (dB) over all samples: negative (about -6 dB) when bands are right."""
    vh = s1_db[:, bands.index("vh"), :]
    vv = s1_db[:, bands.index("vv"), :]
    d = vh - vv
    d = d[np.isfinite(d)]
    return float(np.median(d)) if d.size else float("nan")


def _load_npy(path: Path, what: str) -> NDArray:
    """Load a .npy array or raise InputError naming the file."""
    if not path.is_file():
        raise InputError(f"{path}: {what} file not found")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: cannot read the .npy array ({exc})") from exc


def _parse_bands(s1_bands: tuple[str, str] | str) -> tuple[str, str]:
    """Return a normalised (band0, band1) pair from 'vh,vv' or a tuple."""
    parts = s1_bands.split(",") if isinstance(s1_bands, str) else list(s1_bands)
    parts = [b.strip().lower() for b in parts]
    if sorted(parts) != ["vh", "vv"]:
        raise InputError(f"S1 band order {s1_bands!r}: expected VH,VV or VV,VH")
    return parts[0], parts[1]


def read_point_dataset(
    data_dir: PathLike,
    *,
    split: str = "train",
    s1_bands: tuple[str, str] | str = ("vh", "vv"),
    with_s2: bool = False,
    require_labels: bool = False,
) -> RicePoints:
    """Read the labelled ('train') or unlabelled ('test') points of a challenge-layout folder.

    The folder holds the label CSV (train only), ``sar_data.npy`` / ``sar_data_test.npy`` (n, 2, T) linear
    power with -32768 or 0 as nodata and, with ``with_s2``, ``sentinel2_data_*.npy`` (n, 4, T2)
    reflectance x 1e4 with 0 as nodata. Row order of the arrays is the CSV row order. With
    ``require_labels`` every 'train' point must have a class (see :func:`read_label_csv`).
    """
    d = Path(data_dir)
    if not d.is_dir():
        raise InputError(f"{d}: data folder not found")
    bands = _parse_bands(s1_bands)
    if split == "train":
        s1_path, s2_path = d / S1_TRAIN_FILE, d / S2_TRAIN_FILE
        labels = read_label_csv(d / LABEL_FILE, require_class=require_labels)
    elif split == "test":
        s1_path, s2_path = d / S1_TEST_FILE, d / S2_TEST_FILE
        labels = None
    else:
        raise InputError(f"split {split!r}: expected 'train' or 'test'")
    raw = _load_npy(s1_path, "Sentinel-1")
    s1_db = s1_bands_db(raw, where=str(s1_path))
    n = s1_db.shape[0]
    if labels is not None and len(labels) != n:
        raise InputError(
            f"{s1_path}: {n} rows but {d / LABEL_FILE} has {len(labels)} labelled points; expected equal"
        )
    s2 = None
    if with_s2:
        s2_raw = np.asarray(_load_npy(s2_path, "Sentinel-2"), dtype=np.float64)
        if s2_raw.ndim != 3 or s2_raw.shape[0] != n or s2_raw.shape[1] != 4:
            raise InputError(f"{s2_path}: shape {s2_raw.shape}: expected ({n}, 4 bands, time)")
        s2 = np.where(np.isfinite(s2_raw) & (s2_raw > 0.0), s2_raw, np.nan)
    if labels is None:
        lat = np.full(n, np.nan)
        lon = np.full(n, np.nan)
        label = np.full(n, -1, dtype=np.int8)
    else:
        lat, lon = labels["lat_deg"].to_numpy(), labels["lon_deg"].to_numpy()
        label = labels["label"].to_numpy(np.int8)
    return RicePoints(
        s1_db=s1_db,
        s1_bands=bands,
        lat_deg=lat,
        lon_deg=lon,
        label=label,
        s2_reflectance=s2,
        source=str(s1_path),
    )


def read_s1_stack(path: PathLike, *, var: str | None = None) -> tuple[Any, str]:
    """Open a Sentinel-1 NetCDF stack lazily (Dask) as a (time, band, y, x) DataArray with band labels
    'vh'/'vv'; return it and its units ('linear' or 'db', from the variables' ``units`` attribute).

    Accepted layouts: one variable (``var``, or the only one) with dims time, band and two spatial dims and
    a band coordinate holding VH/VV; or two variables named vh and vv (any case) with dims time, y, x.
    """
    import xarray as xr

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: NetCDF file not found")
    try:
        ds = xr.open_dataset(p, chunks={})
    except Exception as exc:  # netCDF4/h5py raise several types for a file that is not NetCDF
        first = (str(exc).splitlines() or [""])[0]
        raise InputError(f"{p}: cannot open as NetCDF ({type(exc).__name__}: {first})") from exc
    lower = {str(k).lower(): k for k in ds.data_vars}
    if var is None and "vh" in lower and "vv" in lower:
        parts = [ds[lower[b]] for b in ("vh", "vv")]
        for b, da in zip(("vh", "vv"), parts, strict=True):
            if "time" not in da.dims or da.ndim != 3:
                raise InputError(f"{p}: variable {lower[b]!r} has dims {da.dims}; expected (time, y, x)")
        da = xr.concat(parts, dim="band").assign_coords(band=["vh", "vv"])
        units_attr = str(parts[0].attrs.get("units", ""))
    else:
        name = var
        if name is None:
            cands = [k for k, v in ds.data_vars.items() if "time" in v.dims and v.ndim == 4]
            if len(cands) != 1:
                raise InputError(
                    f"{p}: variables {list(ds.data_vars)}: expected vh and vv (time, y, x), or one "
                    "(time, band, y, x) variable (name it with --var)"
                )
            name = cands[0]
        if name not in ds.data_vars:
            raise InputError(f"{p}: no variable {name!r} (found {list(ds.data_vars)})")
        da = ds[name]
        band_dims = [d for d in da.dims if d not in ("time",) and d in ds.coords and da.sizes[d] == 2]
        if "time" not in da.dims or da.ndim != 4 or not band_dims:
            raise InputError(f"{p}: variable {name!r} has dims {da.dims}; expected (time, band, y, x)")
        bd = band_dims[0]
        labels = [str(v).strip().lower() for v in ds[bd].values]
        if sorted(labels) != ["vh", "vv"]:
            raise InputError(f"{p}: variable {name!r}: band labels {labels}; expected VH and VV")
        da = da.rename({bd: "band"}).assign_coords(band=labels)
        units_attr = str(da.attrs.get("units", ""))
    units = "db" if units_attr.strip().lower() in ("db", "decibel", "decibels") else "linear"
    spatial = [d for d in da.dims if d not in ("time", "band")]
    return da.transpose("time", "band", *spatial), units


def stack_grid(
    stack: Any, pixel_area_km2: float | None = None, *, where: str = "S1 stack"
) -> tuple[str | None, NDArray[np.float64], str]:
    """Return (CRS or None, (y, x) pixel areas in km2, how the areas were found) of a (..., y, x) stack.

    The CRS comes from a ``crs_wkt``/``spatial_ref``/``crs`` attribute (on the array or a ``spatial_ref``
    coordinate), else EPSG:4326 when the last two dims are lat/lon. Areas: ``pixel_area_km2`` if given,
    cells on the mean-Earth sphere for geographic grids, pixel size (m) squared for projected ones.
    """
    from kizuna.eo.area import cell_area_km2

    ydim, xdim = stack.dims[-2], stack.dims[-1]
    yc = (
        np.asarray(stack[ydim].values, float)
        if ydim in stack.coords
        else np.arange(stack.sizes[ydim], dtype=float)
    )
    xc = (
        np.asarray(stack[xdim].values, float)
        if xdim in stack.coords
        else np.arange(stack.sizes[xdim], dtype=float)
    )
    crs, geographic = None, ydim.lower().startswith("lat") and xdim.lower().startswith("lon")
    holders = [stack.attrs] + [stack[c].attrs for c in ("spatial_ref", "crs") if c in stack.coords]
    text = next(
        (
            h[k]
            for h in holders
            for k in ("crs_wkt", "spatial_ref", "crs")
            if isinstance(h.get(k), str) and h[k].strip()
        ),
        None,
    )
    if text is not None:
        from pyproj import CRS

        try:
            c = CRS.from_user_input(text)
        except Exception as exc:  # pyproj raises CRSError and others
            raise InputError(f"{where}: CRS {text[:60]!r} not understood ({exc})") from exc
        crs, geographic = c.to_wkt(), c.is_geographic
    elif geographic:
        crs = "EPSG:4326"
    shape = (yc.size, xc.size)
    if pixel_area_km2 is not None:
        return crs, np.full(shape, float(pixel_area_km2)), "given pixel area"
    if geographic:
        return crs, cell_area_km2(yc, xc), "cells on the mean-Earth sphere"
    if crs is not None and yc.size > 1 and xc.size > 1:
        px = abs(float(np.mean(np.diff(xc))) * float(np.mean(np.diff(yc)))) / 1e6
        return crs, np.full(shape, px), "projected grid, pixel size in metres"
    raise InputError(
        f"{where}: no CRS and no lat/lon dimensions; give the pixel area (km2) to know the areas"
    )


# ------------------------------------------------------------------------------------------------ figures

CLASS_NAMES = ("non_rice", "rice")


def new_figure(ncols: int = 1, width: float = 6.4, height: float = 4.0) -> tuple[Any, Any]:
    """Return a matplotlib Figure on the Agg canvas and its axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols)


def series_figure(points: Any, t_days: np.ndarray, label: np.ndarray, title: str) -> Any:
    """Mean +/- 1 sd of the VH and VV series (dB) per class against days from the first acquisition."""
    fig, axes = new_figure(2, 10.0, 3.8)
    for ax, band in zip(axes, ("vh", "vv"), strict=True):
        x = points.band_db(band)
        for cls, color in ((1, "tab:green"), (0, "tab:gray")):
            m = label == cls
            if not m.any():
                continue
            sel = x[m]
            have = np.isfinite(sel).any(axis=0)
            mu = np.full(x.shape[1], np.nan)
            sd = np.full(x.shape[1], np.nan)
            mu[have] = np.nanmean(sel[:, have], axis=0)
            sd[have] = np.nanstd(sel[:, have], axis=0)
            ax.plot(t_days, mu, color=color, label=f"{CLASS_NAMES[cls]} (n={int(m.sum())})")
            ax.fill_between(t_days, mu - sd, mu + sd, color=color, alpha=0.2)
        ax.set_xlabel("days from first acquisition")
        ax.set_ylabel(f"{band.upper()} backscatter (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return fig


def confusion_figure(cm: list[list[int]], title: str) -> Any:
    """A 2x2 confusion matrix (rows reference, columns predicted) with counts."""
    fig, ax = new_figure(1, 4.4, 3.8)
    a = np.asarray(cm)
    ax.imshow(a, cmap="Blues")
    for i in range(2):
        for j in range(2):
            ax.text(j, i, str(a[i, j]), ha="center", va="center", color="black", fontsize=14)
    ax.set_xticks([0, 1], CLASS_NAMES)
    ax.set_yticks([0, 1], CLASS_NAMES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    ax.set_title(title)
    return fig


def importance_figure(importances: dict[str, float], top: int = 20) -> Any:
    """Horizontal bars of the largest impurity-based feature importances."""
    fig, ax = new_figure(1, 7.0, 5.0)
    items = sorted(importances.items(), key=lambda kv: kv[1])[-top:]
    ax.barh([k for k, _ in items], [v for _, v in items], color="tab:blue")
    ax.set_xlabel("importance (mean decrease in impurity)")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(f"feature importance (top {len(items)})")
    return fig


def rules_figure(X: np.ndarray, names: list[str], label: np.ndarray, rules: Any) -> Any:
    """VH rise against the VH level before it, per reference class, with the rule thresholds."""
    fig, ax = new_figure(1, 6.4, 4.6)
    idx = {n: i for i, n in enumerate(names)}
    for cls, color in ((0, "tab:gray"), (1, "tab:green")):
        m = label == cls
        ax.scatter(
            X[m, idx["vh_rise_start_db"]], X[m, idx["vh_rise_db"]], s=8, color=color, label=CLASS_NAMES[cls]
        )
    ax.axvline(rules.flood_max_db, color="k", ls="--", lw=1)
    ax.axhline(rules.rise_min_db, color="k", ls=":", lw=1)
    ax.set_xlabel("VH level before the largest rise (dB)")
    ax.set_ylabel("largest VH rise within the growing window (dB)")
    ax.set_title(f"rules: low <= {rules.flood_max_db:g} dB, rise >= {rules.rise_min_db:g} dB")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def site_accuracy_figure(per_site: list[dict], random_acc: list[float] | None) -> Any:
    """Accuracy of each site when left out, beside the same points' accuracy under random folds."""
    fig, ax = new_figure(1, 6.4, 3.8)
    x = np.arange(len(per_site))
    ax.bar(x - 0.2, [r["accuracy"] for r in per_site], 0.4, label="site left out", color="tab:blue")
    if random_acc is not None:
        ax.bar(x + 0.2, random_acc, 0.4, label="random folds", color="tab:orange")
    ax.set_xticks(
        x, [f"{r['site']}\n{CLASS_NAMES[r['majority_class']]}\nn={r['n']}" for r in per_site], fontsize=7
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    return fig
