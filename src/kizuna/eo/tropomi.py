"""Read TROPOMI (Sentinel-5P) level-2 NO2 files into flat arrays of valid pixels with their four corners.

Two layouts are read:

- the official S5P L2 product (``S5P_*_L2__NO2____*.nc``): group ``PRODUCT`` with
  ``nitrogendioxide_tropospheric_column`` (mol m-2), ``qa_value``, ``latitude``, ``longitude`` and
  ``time_utc`` (or ``time`` + ``delta_time``) on (time, scanline, ground_pixel), and the pixel corners
  ``latitude_bounds`` / ``longitude_bounds`` (..., corner) in ``PRODUCT/SUPPORT_DATA/GEOLOCATIONS``;
- the flattened crop written by ddeq (root variables ``NO2``, ``lat``, ``lon``, ``latc``, ``lonc``,
  ``time``), where the qa_value filter was applied when the crop was made (global attribute
  ``QA value filter``) and no ``qa_value`` is left to filter on.

Pixels are kept when the column and all corners are finite (not the ``_FillValue``) and
``qa_value > qa_min`` (the S5P NO2 product user manual recommends ``qa_value > 0.75`` for tropospheric
columns; its ``_FillValue`` 255 is never kept). ``qa_value`` is stored as a byte scaled by a float32 0.01,
so it is rounded to 4 decimals before the comparison: scaled in float32, byte 76 reads as 0.75999999
(and, scaled in float64 from the float32 factor, byte 75 as 0.74999998), which would put them on the
wrong side of thresholds such as 0.76 or 0.75.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from kizuna.errors import InputError

if TYPE_CHECKING:
    import xarray as xr

    from kizuna.eo.regrid import Grid, Regridded

__all__ = [
    "No2Pixels",
    "read_no2_l2",
    "QA_MIN_DEFAULT",
    "pixel_extent_deg",
    "regrid_no2_files",
    "files_extent_deg",
    "l3_dataset",
]

PathLike = str | os.PathLike[str]

# KNMI's S5P NO2 Product User Manual (S5P-KNMI-L2-0021-MA) and tropomi.eu: use pixels with
# qa_value > 0.75 for tropospheric columns.
QA_MIN_DEFAULT = 0.75

_OFFICIAL = {
    "no2": "PRODUCT/nitrogendioxide_tropospheric_column",
    "qa": "PRODUCT/qa_value",
    "lat": "PRODUCT/latitude",
    "lon": "PRODUCT/longitude",
    "latb": "PRODUCT/SUPPORT_DATA/GEOLOCATIONS/latitude_bounds",
    "lonb": "PRODUCT/SUPPORT_DATA/GEOLOCATIONS/longitude_bounds",
}
_FLAT = {"no2": "NO2", "lat": "lat", "lon": "lon", "latb": "latc", "lonb": "lonc"}


@dataclass(frozen=True, eq=False)
class No2Pixels:
    """Valid TROPOMI pixels of one L2 file: tropospheric NO2 column (mol m-2), centres and corners (deg,
    WGS84 geodetic), qa_value, UTC time, and where each pixel sits in the swath (scanline, ground_pixel)."""

    no2_mol_m2: NDArray[np.float64]
    lat_deg: NDArray[np.float64]
    lon_deg: NDArray[np.float64]
    lat_corners_deg: NDArray[np.float64]
    lon_corners_deg: NDArray[np.float64]
    qa_value: NDArray[np.float64]
    time_utc: NDArray[np.datetime64]
    scanline: NDArray[np.int64]
    ground_pixel: NDArray[np.int64]
    path: str
    layout: str
    qa_filter: str
    n_pixels_file: int
    orbit: int | None = None

    @property
    def n(self) -> int:
        """Return the number of valid pixels."""
        return int(self.no2_mol_m2.shape[0])

    def select(self, keep: NDArray[np.bool_]) -> No2Pixels:
        """Return the pixels where ``keep`` is True (same file bookkeeping)."""
        fields = ("no2_mol_m2", "lat_deg", "lon_deg", "lat_corners_deg", "lon_corners_deg", "qa_value")
        fields += ("time_utc", "scanline", "ground_pixel")
        values = {f: getattr(self, f)[keep] for f in fields}
        return No2Pixels(
            **values,
            path=self.path,
            layout=self.layout,
            qa_filter=self.qa_filter,
            n_pixels_file=self.n_pixels_file,
            orbit=self.orbit,
        )


def _open(path: Path) -> Any:
    """Open a NetCDF file, naming it in the error when it cannot be read."""
    import netCDF4

    if not path.is_file():
        raise InputError(f"{path}: no such TROPOMI L2 NetCDF file")
    try:
        return netCDF4.Dataset(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: cannot open as NetCDF ({exc}); expected a TROPOMI L2 NO2 file") from exc


def _var(ds: Any, name: str, path: Path) -> Any:
    """Return the variable at a group path such as ``PRODUCT/qa_value``, or raise InputError naming it."""
    node = ds
    parts = name.split("/")
    for g in parts[:-1]:
        if g not in node.groups:
            raise InputError(f"{path}: group {'/'.join(parts[:-1])} not found (for variable {name})")
        node = node.groups[g]
    if parts[-1] not in node.variables:
        raise InputError(f"{path}: variable {name} not found; expected a TROPOMI L2 NO2 file")
    return node.variables[parts[-1]]


def _values(var: Any, path: Path, name: str) -> NDArray[np.float64]:
    """Read a variable as float64 with fill values and masked points as NaN."""
    var.set_auto_maskandscale(True)
    try:
        data = var[...]
    except (OSError, RuntimeError, IndexError, ValueError) as exc:
        raise InputError(f"{path}: variable {name}: cannot read ({exc})") from exc
    arr = np.ma.asarray(data).astype(np.float64)
    return np.ma.filled(arr, np.nan)


def _drop_time_axis(arr: NDArray, ndim: int, path: Path, name: str) -> NDArray:
    """Drop the leading length-1 ``time`` axis of an official-layout variable."""
    if arr.ndim == ndim + 1 and arr.shape[0] == 1:
        return arr[0]
    if arr.ndim != ndim:
        raise InputError(
            f"{path}: variable {name} has shape {arr.shape}; expected (1, scanline, ground_pixel...)"
        )
    return arr


def _parse_utc(text: NDArray, path: Path) -> NDArray[np.datetime64]:
    """Parse ISO 8601 UTC strings (``2021-07-25T11:07:15.123456Z``) into datetime64[ns]; blanks -> NaT."""
    flat = [str(t).strip().rstrip("Z") for t in np.asarray(text).ravel()]
    try:
        out = np.array([np.datetime64(t, "ns") if t else np.datetime64("NaT") for t in flat])
    except ValueError as exc:
        raise InputError(f"{path}: variable PRODUCT/time_utc: {exc}; expected ISO 8601 UTC times") from exc
    return out.reshape(np.asarray(text).shape)


def _cf_time(var: Any, path: Path, name: str) -> NDArray[np.datetime64]:
    """Decode a CF time variable (``units = '<unit> since <date>'``) into datetime64[ns]."""
    import cftime

    units = getattr(var, "units", "")
    raw = np.ma.filled(np.ma.asarray(var[...]).astype(np.float64), np.nan)
    try:
        dates = cftime.num2date(
            np.nan_to_num(raw), units, getattr(var, "calendar", "standard"), only_use_cftime_datetimes=False
        )
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: variable {name}: units {units!r} not understood ({exc})") from exc
    out = np.array([np.datetime64(d.isoformat(), "ns") for d in np.ravel(dates)]).reshape(raw.shape)
    out[~np.isfinite(raw)] = np.datetime64("NaT")
    return out


def _official_times(ds: Any, path: Path, shape: tuple[int, int]) -> NDArray[np.datetime64]:
    """Return the UTC time of each scanline of an official file, broadcast to (scanline, ground_pixel)."""
    prod = ds.groups["PRODUCT"]
    if "time_utc" in prod.variables:
        raw = prod.variables["time_utc"][...]
        per_line = _drop_time_axis(_parse_utc(np.asarray(raw), path), 1, path, "PRODUCT/time_utc")
    elif "delta_time" in prod.variables and " since " in getattr(prod.variables["delta_time"], "units", ""):
        # 'milliseconds since <the day of the orbit> 00:00:00', the reference time of PRODUCT/time
        per_line = _cf_time(prod.variables["delta_time"], path, "PRODUCT/delta_time")
        per_line = _drop_time_axis(per_line, 1, path, "PRODUCT/delta_time")
    elif "time" in prod.variables and "delta_time" in prod.variables:
        t0 = _cf_time(prod.variables["time"], path, "PRODUCT/time").ravel()[0]
        dt = _values(prod.variables["delta_time"], path, "PRODUCT/delta_time")
        dt = _drop_time_axis(dt, 1, path, "PRODUCT/delta_time")
        units = getattr(prod.variables["delta_time"], "units", "milliseconds")
        scale_ns = 1e6 if units.startswith("milli") else 1e9
        per_line = t0 + (np.nan_to_num(dt) * scale_ns).astype("timedelta64[ns]")
        per_line[~np.isfinite(dt)] = np.datetime64("NaT")  # the _FillValue of delta_time
    else:
        return np.full(shape, np.datetime64("NaT", "ns"))
    if per_line.shape[0] != shape[0]:
        raise InputError(f"{path}: PRODUCT/time_utc has {per_line.shape[0]} scanlines; expected {shape[0]}")
    return np.broadcast_to(per_line[:, None], shape)


def _qa_threshold_of_file(ds: Any) -> float | None:
    """Return the qa_value threshold a flattened crop was filtered with (its ``QA value filter``)."""
    for name in ds.ncattrs():
        if "qa" in name.lower():
            m = re.search(r"([0-9]*\.?[0-9]+)", str(ds.getncattr(name)))
            if m:
                return float(m.group(1))
    return None


def read_no2_l2(path: PathLike, qa_min: float = QA_MIN_DEFAULT) -> No2Pixels:
    """Read the valid pixels (finite column and corners, ``qa_value > qa_min``) of a TROPOMI L2 NO2 file,
    official ``PRODUCT/`` layout or flattened crop; columns in mol m-2, corners in degrees (WGS84)."""
    p = Path(path)
    if not 0.0 <= qa_min < 1.0:
        raise InputError(f"qa_min {qa_min}: expected a qa_value threshold in [0, 1)")
    with _open(p) as ds:
        official = "PRODUCT" in ds.groups
        names = _OFFICIAL if official else _FLAT
        if not official and "NO2" not in ds.variables:
            raise InputError(
                f"{p}: neither group PRODUCT (variable PRODUCT/nitrogendioxide_tropospheric_column) nor "
                "variable NO2 found; expected a TROPOMI L2 NO2 file"
            )
        arrays = {}
        for key, name in names.items():
            var = _var(ds, name, p)
            want = 3 if key in ("latb", "lonb") else 2
            arr = _values(var, p, name)
            arrays[key] = _drop_time_axis(arr, want, p, name) if official else arr
            if arrays[key].ndim != want:
                raise InputError(f"{p}: variable {name} has {arrays[key].ndim} dimensions; expected {want}")
        shape = arrays["no2"].shape
        for key in ("lat", "lon", "qa"):
            if key in arrays and arrays[key].shape != shape:
                raise InputError(
                    f"{p}: variable {names[key]} has shape {arrays[key].shape}; expected {shape}"
                )
        for key in ("latb", "lonb"):
            if arrays[key].shape != (*shape, 4):
                raise InputError(
                    f"{p}: variable {names[key]} has shape {arrays[key].shape}; expected {(*shape, 4)} "
                    "(four corners per pixel)"
                )
        if official:
            units = getattr(_var(ds, names["no2"], p), "units", "mol m-2")
            times = _official_times(ds, p, shape)
            qa = np.round(arrays["qa"], 4)
            qa_ok = qa > qa_min
            qa_filter = f"qa_value > {qa_min:g}"
            orbit = getattr(ds, "orbit", None)
        else:
            units = getattr(ds.variables["NO2"], "units", "mol m-2")
            applied = _qa_threshold_of_file(ds)
            if applied is not None and qa_min > applied + 1e-9:
                raise InputError(
                    f"{p}: has no variable qa_value (the crop was filtered at qa_value > {applied:g} when "
                    f"it was made); cannot apply the stricter threshold {qa_min:g}"
                )
            qa = np.full(shape, np.nan)
            qa_ok = np.ones(shape, dtype=bool)
            qa_filter = f"qa_value > {applied:g} (applied in the file)" if applied is not None else "none"
            times = (
                np.broadcast_to(_cf_time(ds.variables["time"], p, "time").ravel()[:1], shape)
                if "time" in ds.variables
                else np.full(shape, np.datetime64("NaT", "ns"))
            )
            orbit = int(ds.variables["orbit"][...]) if "orbit" in ds.variables else None
        if str(units).replace(" ", "").replace("^", "") not in ("molm-2", "mol/m2", "molm**-2"):
            raise InputError(f"{p}: variable {names['no2']} has units {units!r}; expected mol m-2")
    keep = (
        qa_ok
        & np.isfinite(arrays["no2"])
        & np.all(np.isfinite(arrays["latb"]), axis=-1)
        & np.all(np.isfinite(arrays["lonb"]), axis=-1)
    )
    rows, cols = np.nonzero(keep)
    return No2Pixels(
        no2_mol_m2=arrays["no2"][keep],
        lat_deg=arrays["lat"][keep],
        lon_deg=arrays["lon"][keep],
        lat_corners_deg=arrays["latb"][keep],
        lon_corners_deg=arrays["lonb"][keep],
        qa_value=qa[keep],
        time_utc=np.asarray(times)[keep].astype("datetime64[ns]"),
        scanline=rows.astype(np.int64),
        ground_pixel=cols.astype(np.int64),
        path=str(p),
        layout="s5p" if official else "flat",
        qa_filter=qa_filter,
        n_pixels_file=int(np.prod(shape)),
        orbit=None if orbit is None else int(orbit),
    )


def pixel_extent_deg(
    lat_corners_deg: NDArray[np.float64], lon_corners_deg: NDArray[np.float64]
) -> tuple[float, float, float, float]:
    """Return (lat_min, lat_max, lon_min, lon_max) in degrees of all pixel corners; across the antimeridian
    the longitudes run from lon_min to lon_max > 180 (the shorter of the two ways round)."""
    lat = np.asarray(lat_corners_deg, dtype=float)
    lon = np.asarray(lon_corners_deg, dtype=float)
    ok = np.isfinite(lat) & np.isfinite(lon)
    if not ok.any():
        raise InputError("pixel corners: no finite corner; expected at least one valid pixel")
    lat, lon = lat[ok], ((lon[ok] + 180.0) % 360.0) - 180.0
    span = lon.max() - lon.min()
    east = lon % 360.0  # 0..360: a swath crossing the antimeridian is contiguous here
    if east.max() - east.min() < span:
        return float(lat.min()), float(lat.max()), float(east.min()), float(east.max())
    return float(lat.min()), float(lat.max()), float(lon.min()), float(lon.max())


def _in_month(times: NDArray[np.datetime64], month: str) -> NDArray[np.bool_]:
    """Return True for times (datetime64) within the calendar month ``YYYY-MM`` (UTC)."""
    try:
        start = np.datetime64(month, "M")
    except ValueError as exc:
        raise InputError(f"month {month!r}: expected YYYY-MM") from exc
    t = np.asarray(times).astype("datetime64[M]")
    return t == start


def regrid_no2_files(
    paths: Sequence[PathLike],
    grid: Grid,
    qa_min: float = QA_MIN_DEFAULT,
    month: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Regridded, dict[str, Any]]:
    """Read TROPOMI L2 NO2 files, regrid each conservatively onto ``grid`` and sum them: cell means are
    overlap-area-weighted means of all valid pixels (mol m-2); returns the result and per-file facts."""
    from kizuna.eo.regrid import combine, regrid_conservative

    parts: list[Regridded] = []
    files: list[dict[str, Any]] = []
    t_min, t_max = None, None
    for k, path in enumerate(paths):
        px = read_no2_l2(path, qa_min=qa_min)
        if month is not None:
            px = px.select(_in_month(px.time_utc, month))
        r = regrid_conservative(px.no2_mol_m2, px.lat_corners_deg, px.lon_corners_deg, grid)
        parts.append(r)
        t = px.time_utc[~np.isnat(px.time_utc)]
        if t.size:
            t_min = t.min() if t_min is None else min(t_min, t.min())
            t_max = t.max() if t_max is None else max(t_max, t.max())
        files.append(
            {
                "file": Path(path).name,
                "layout": px.layout,
                "orbit": px.orbit,
                "qa_filter": px.qa_filter,
                "pixels_in_file": px.n_pixels_file,
                "pixels_valid": r.n_valid,
                "pixels_outside_grid": r.n_outside,
                "pixels_partly_outside_grid": r.n_partly_outside,
            }
        )
        if progress is not None:
            progress(k + 1, len(paths))
    info = {
        "files": files,
        "time_coverage_start": None if t_min is None else str(t_min.astype("datetime64[s]")) + "Z",
        "time_coverage_end": None if t_max is None else str(t_max.astype("datetime64[s]")) + "Z",
        "qa_filter": "; ".join(sorted({f["qa_filter"] for f in files})),
    }
    return combine(parts), info


def files_extent_deg(paths: Sequence[PathLike], qa_min: float = QA_MIN_DEFAULT) -> tuple[float, ...]:
    """Return (lat_min, lat_max, lon_min, lon_max) in degrees of the valid pixels' corners of all files."""
    lats, lons = [], []
    for path in paths:
        px = read_no2_l2(path, qa_min=qa_min)
        if px.n:
            lats.append(px.lat_corners_deg.ravel())
            lons.append(px.lon_corners_deg.ravel())
    if not lats:
        raise InputError(f"{', '.join(str(p) for p in paths)}: no valid pixel (qa_value > {qa_min:g})")
    return pixel_extent_deg(np.concatenate(lats), np.concatenate(lons))


def _attrs(long_name: str, units: str, **more: str) -> dict[str, str]:
    """Return CF variable attributes."""
    return {"long_name": long_name, "units": units, **more}


_LAT = {"standard_name": "latitude", "bounds": "lat_bnds"}
_LON = {"standard_name": "longitude", "bounds": "lon_bnds"}
_LAT2 = {"standard_name": "latitude"}
_LON2 = {"standard_name": "longitude"}
_NO2_ATTRS = {
    "standard_name": "troposphere_mole_content_of_nitrogen_dioxide",
    "long_name": "Tropospheric vertical column of nitrogen dioxide, mean of the TROPOMI pixels over the "
    "cell weighted by overlap area",
    "units": "mol m-2",
}


def l3_dataset(result: Regridded, grid: Grid, info: Mapping[str, Any]) -> xr.Dataset:
    """Return the regridded NO2 as a CF-1.8 xarray Dataset: mean column (mol m-2), overlap weight (m^2),
    coverage, pixel and orbit counts and cell area on the grid's coordinates (lat/lon, or x/y with lat/lon
    and the grid mapping), with totals and provenance in the global attributes."""
    import xarray as xr

    with np.errstate(invalid="ignore", divide="ignore"):
        coverage = result.weight_m2 / grid.cell_area_m2
    fields = {
        "nitrogendioxide_tropospheric_column": (result.mean_mol_m2, _NO2_ATTRS),
        "weight": (result.weight_m2, _attrs("Sum of the overlap areas of valid pixels with the cell", "m2")),
        "coverage": (
            coverage,
            _attrs("Overlap weight divided by cell area (above 1 where pixels or orbits overlap)", "1"),
        ),
        "n_pixels": (result.n_pixels, _attrs("Number of valid pixels overlapping the cell", "1")),
        "n_orbits": (result.n_orbits, _attrs("Number of L2 files with valid pixels over the cell", "1")),
        "cell_area": (
            grid.cell_area_m2,
            _attrs("Area of the cell on the WGS84 ellipsoid", "m2", standard_name="cell_area"),
        ),
    }
    attrs = {
        "Conventions": "CF-1.8",
        "title": "TROPOMI tropospheric NO2 regridded conservatively (area-weighted from pixel corners)",
        "source": "Sentinel-5P TROPOMI L2 NO2: " + ", ".join(f["file"] for f in info.get("files", [])),
        "grid": grid.name,
        "qa_filter": info.get("qa_filter", ""),
        "method": "exact overlap areas of pixel quadrilaterals with the cells, in the WGS84 Lambert "
        "cylindrical equal-area plane (latitude/longitude grids) or the grid's own projection",
        "pixels_total_mol": result.pixels_total_mol,
        "grid_total_mol": result.grid_total_mol,
        "outside_grid_mol": result.outside_mol,
        "conservation_relative_error": result.conservation_rel,
        "pixels_valid": result.n_valid,
        "pixels_bad_corners": result.n_bad_corners,
        "pixels_partly_outside_grid": result.n_partly_outside,
        "pixels_outside_grid": result.n_outside,
        "history": f"kizuna eo no2 ({np.datetime64('now', 's')}Z)",
    }
    for key in ("time_coverage_start", "time_coverage_end"):
        if info.get(key):
            attrs[key] = info[key]
    if grid.is_latlon:
        dims = ("lat", "lon")
        coords: dict[str, Any] = {
            "lat": ("lat", grid.lat_deg, _attrs("latitude of the cell centre", "degrees_north", **_LAT)),
            "lon": ("lon", grid.lon_deg, _attrs("longitude of the cell centre", "degrees_east", **_LON)),
        }
        extra = {
            "lat_bnds": (("lat", "nv"), np.column_stack([grid.lat_edges_deg[:-1], grid.lat_edges_deg[1:]])),
            "lon_bnds": (("lon", "nv"), np.column_stack([grid.lon_edges_deg[:-1], grid.lon_edges_deg[1:]])),
        }
        var_extra: dict[str, str] = {}
    else:
        from pyproj import CRS

        dims = ("y", "x")
        xc = 0.5 * (grid.x_edges[1:] + grid.x_edges[:-1])
        yc = 0.5 * (grid.y_edges[1:] + grid.y_edges[:-1])
        coords = {
            "y": ("y", yc, _attrs("y of the cell centre", "m", standard_name="projection_y_coordinate")),
            "x": ("x", xc, _attrs("x of the cell centre", "m", standard_name="projection_x_coordinate")),
            "lat": (dims, grid.lat_deg, _attrs("latitude of the cell centre", "degrees_north", **_LAT2)),
            "lon": (dims, grid.lon_deg, _attrs("longitude of the cell centre", "degrees_east", **_LON2)),
        }
        cf = CRS.from_user_input(grid.crs).to_cf()
        extra = {"crs": ((), np.int32(0), cf)}
        if grid.cell_id is not None:
            fields["grid_id"] = (
                grid.cell_id,
                _attrs("Id of the cell in the grid file (-1: not a cell)", "1"),
            )
        var_extra = {"grid_mapping": "crs"}
    data_vars: dict[str, Any] = {}
    for name, (values, a) in fields.items():
        data_vars[name] = (dims, values, {**a, **(var_extra if name != "grid_id" else {})})
    for name, spec in extra.items():
        data_vars[name] = spec
    return xr.Dataset(data_vars=data_vars, coords=coords, attrs=attrs)
