"""Dilution of precision (DOP) and availability of satellite navigation over a region and over time: maps
on a latitude/longitude grid, series and sky tracks at one site, and their summaries.

The geometry and its conventions (one receiver clock per constellation in view, QZSS with GPS by default;
HDOP/VDOP in local east-north-up axes) are those of :mod:`kizuna.gnss.dop_geometry`. Satellite positions
are the broadcast positions at each epoch.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from kizuna.core.geodesy import azimuth_elevation, geodetic_to_ecef
from kizuna.errors import InputError
from kizuna.gnss import gtime
from kizuna.gnss.dop_geometry import (
    DOP_NAMES,
    SYSTEM_LETTERS,
    clock_columns,
    dop_from_geometry,
    dop_from_positions,
    parse_systems,
)

__all__ = [
    "REGIONS",
    "SYSTEM_LETTERS",
    "DOP_NAMES",
    "parse_region",
    "parse_systems",
    "clock_columns",
    "dop_from_geometry",
    "dop_from_positions",
    "satellite_positions",
    "dop_map",
    "dop_series",
    "sky_tracks",
    "availability_map",
    "summarise_dop_map",
]

# Region boxes (lat_min, lat_max, lon_min, lon_max) in degrees, WGS84.
# India: 5-40 N, 65-100 E holds the Indian mainland (8-37 N, 68-97 E), Sri Lanka, the Andaman and Nicobar
# and Lakshadweep islands and the Arabian Sea and Bay of Bengal around them: the land and sea core of the
# NavIC primary service area (India and up to 1500 km beyond its boundary, IRNSS SPS ICD 1.1, section 1).
# Japan: 20-50 N, 120-155 E holds Japan's territory from Okinotorishima (20.4 N) to Hokkaido (45.5 N) and
# from Yonaguni (123.0 E) to Minamitorishima (154.0 E), the area QZSS was designed to serve from high
# elevation (IS-QZSS-PNT section 1).
REGIONS: dict[str, tuple[float, float, float, float]] = {
    "india": (5.0, 40.0, 65.0, 100.0),
    "japan": (20.0, 50.0, 120.0, 155.0),
}

# RINEX system letters this module accepts: GPS, GLONASS, Galileo, BeiDou, QZSS, NavIC (IRNSS).
_SECONDS_PER_DAY = 86_400.0


def parse_region(text: str, option: str = "--region") -> tuple[float, float, float, float]:
    """Return (lat_min, lat_max, lon_min, lon_max) in deg of 'india', 'japan' or 'LATMIN,LATMAX,LONMIN,LONMAX'

    Bad text, a latitude outside [-90, 90] or a minimum not below its maximum raise InputError naming
    ``option``.
    """
    expected = f"expected {' or '.join(repr(k) for k in REGIONS)} or LATMIN,LATMAX,LONMIN,LONMAX in degrees"
    key = text.strip().lower() if isinstance(text, str) else ""
    if key in REGIONS:
        return REGIONS[key]
    try:
        box = tuple(float(p) for p in key.split(","))
    except ValueError as exc:
        raise InputError(f"{option} {text!r}: {expected}") from exc
    if len(box) != 4:
        raise InputError(f"{option} {text!r}: {expected}")
    return _check_region(box, option)


def _check_region(region: Sequence[float], option: str = "region") -> tuple[float, float, float, float]:
    """Return a validated region box (degrees) or raise InputError naming the option."""
    if len(region) != 4 or not np.all(np.isfinite(np.asarray(region, dtype=float))):
        raise InputError(f"{option} {region!r}: expected four numbers LATMIN,LATMAX,LONMIN,LONMAX in degrees")
    lat0, lat1, lon0, lon1 = (float(v) for v in region)
    if not (-90.0 <= lat0 <= 90.0 and -90.0 <= lat1 <= 90.0):
        raise InputError(f"{option} {region!r}: latitudes must lie in [-90, 90] degrees")
    if not (-180.0 <= lon0 <= 360.0 and -180.0 <= lon1 <= 360.0):
        raise InputError(f"{option} {region!r}: longitudes must lie in [-180, 360] degrees")
    for lo, hi, what in ((lat0, lat1, "LAT"), (lon0, lon1, "LON")):
        if lo >= hi:
            raise InputError(f"{option} {region!r}: {what}MIN ({lo:g}) must be less than {what}MAX ({hi:g})")
    return lat0, lat1, lon0, lon1


def _satellites(nav: Any, systems: str) -> list[str]:
    """Return the sorted satellite ids in nav.eph (and nav.glo for 'R') of the systems (none: InputError)."""
    svs: set[str] = set()
    eph = getattr(nav, "eph", None)
    if eph is not None and len(eph):
        svs.update(str(s) for s in pd.unique(eph["sv"]) if str(s)[:1] in systems)
    glo = getattr(nav, "glo", None)
    if "R" in systems and glo is not None and len(glo):
        svs.update(str(s) for s in pd.unique(glo["sv"]))
    if not svs:
        paths = ", ".join(str(p) for p in getattr(nav, "paths", ())) or "(no file)"
        raise InputError(f"navigation data {paths}: no satellites of systems {systems!r}")
    return sorted(svs)


def _site_setup(
    nav: Any,
    systems: str,
    site_ecef_m: ArrayLike | None,
    lat_deg: float | None,
    lon_deg: float | None,
    height_m: float,
    start: str | np.datetime64,
    duration_s: float,
    step_s: float,
) -> tuple[str, tuple[float, float, float], NDArray, list[str], NDArray, NDArray]:
    """Return systems, the site (lat deg, lon deg, h m), times, satellites, positions and validity."""
    systems = parse_systems(systems, "systems")
    site = _site_latlon(site_ecef_m, lat_deg, lon_deg, height_m)
    t = _time_grid(start, duration_s, step_s)
    svs = _satellites(nav, systems)
    pos, ok = satellite_positions(nav, svs, t)
    return systems, site, t, svs, pos, ok


def satellite_positions(
    nav: Any, svs: Sequence[str], t_gpst: ArrayLike, **broadcast_kw: Any
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Return broadcast ECEF positions (T, S, 3) in m and validity (T, S) of satellites at GPS times (T,)."""
    from kizuna.gnss.broadcast import broadcast_state

    t = np.asarray(t_gpst, dtype=float).ravel()
    sv = np.asarray(list(svs), dtype=object)
    n_t, n_s = t.size, sv.size
    if n_s == 0 or n_t == 0:
        return np.full((n_t, n_s, 3), np.nan), np.zeros((n_t, n_s), dtype=bool)
    st = broadcast_state(nav, np.tile(sv, n_t), np.repeat(t, n_s), **broadcast_kw)
    pos = np.asarray(st.pos_ecef_m, dtype=float).reshape(n_t, n_s, 3)
    ok = np.asarray(st.valid, dtype=bool).reshape(n_t, n_s) & np.all(np.isfinite(pos), axis=2)
    return pos, ok


def _time_grid(start: str | np.datetime64, duration_s: float, step_s: float) -> NDArray[np.float64]:
    """Return GPS seconds from start (a GPST date or instant) every step_s over duration_s (end excluded)."""
    if not (np.isfinite(step_s) and step_s > 0):
        raise InputError(f"time step {step_s!r} s: expected a positive number of seconds")
    if not (np.isfinite(duration_s) and duration_s > 0):
        raise InputError(f"duration {duration_s!r} s: expected a positive number of seconds")
    t0 = gtime.parse_date(start, "date") if isinstance(start, str) else np.datetime64(start, "ns")
    if np.isnat(t0):
        raise InputError(f"date {start!r}: expected a date or instant in GPS time")
    n = int(np.ceil(duration_s / step_s - 1e-9))
    return float(gtime.datetime64_to_gpst(t0)) + step_s * np.arange(n)


def _axis(lo: float, hi: float, step: float, what: str) -> NDArray[np.float64]:
    """Return grid values lo, lo+step, ... up to hi (inclusive within rounding), in degrees."""
    if not (np.isfinite(step) and step > 0):
        raise InputError(f"{what} step {step!r} deg: expected a positive number of degrees")
    n = int(np.floor((hi - lo) / step + 1e-9)) + 1
    return lo + step * np.arange(n)


def _site_latlon(
    site_ecef_m: ArrayLike | None, lat_deg: float | None, lon_deg: float | None, height_m: float
) -> tuple[float, float, float]:
    """Return geodetic (lat_deg, lon_deg, height_m) of a site given in ECEF or geodetic coordinates."""
    from kizuna.core.geodesy import ecef_to_geodetic

    if site_ecef_m is not None:
        r = np.asarray(site_ecef_m, dtype=float)
        if r.shape != (3,) or not np.all(np.isfinite(r)) or np.linalg.norm(r) < 6.0e6:
            raise InputError(f"site_ecef_m {site_ecef_m!r}: expected three ECEF coordinates in metres")
        lat, lon, h = ecef_to_geodetic(r)
        return float(np.degrees(lat)), float(np.degrees(lon)), float(h)
    if lat_deg is None or lon_deg is None:
        raise InputError("site: expected site_ecef_m or both lat_deg and lon_deg")
    if not -90.0 <= float(lat_deg) <= 90.0:
        raise InputError(f"site latitude {lat_deg!r} deg: expected a value in [-90, 90]")
    return float(lat_deg), float(lon_deg), float(height_m)


def dop_map(
    nav: Any,
    *,
    systems: str = "I",
    date: str | np.datetime64,
    region: Sequence[float] | str = REGIONS["india"],
    step_deg: float = 0.5,
    step_s: float = 300.0,
    elev_mask_deg: float = 10.0,
    height_m: float = 0.0,
    duration_s: float = _SECONDS_PER_DAY,
    qzss_with_gps: bool = True,
    progress: Callable[[float, str], None] | None = None,
) -> xr.Dataset:
    """Return a Dataset of n_sats, gdop, pdop, hdop, vdop, tdop on (time GPST, lat, lon in deg) over a region.

    ``date`` is the GPS-time day (``YYYY-MM-DD``) or instant the map starts at; epochs every ``step_s``
    over ``duration_s``; grid every ``step_deg`` on the WGS84 ellipsoid at ``height_m``. Satellites are all
    those of ``systems`` in the navigation data; one without a valid healthy ephemeris at an epoch is not
    counted. ``progress(fraction, text)`` is called as the work advances.
    """
    systems = parse_systems(systems, "systems")
    box = parse_region(region, "region") if isinstance(region, str) else _check_region(region, "region")
    lats = _axis(box[0], box[1], step_deg, "grid")
    lons = _axis(box[2], box[3], step_deg, "grid")
    t = _time_grid(date, duration_s, step_s)
    svs = _satellites(nav, systems)
    if progress is not None:
        progress(0.0, f"broadcast orbits of {len(svs)} satellites")
    pos, ok = satellite_positions(nav, svs, t)
    if progress is not None:
        progress(0.1, "DOP")
    col, n_col = clock_columns([s[0] for s in svs], systems, qzss_with_gps)
    glat, glon = np.meshgrid(lats, lons, indexing="ij")

    def sub(frac: float, text: str) -> None:
        if progress is not None:
            progress(0.1 + 0.9 * frac, text)

    res = dop_from_positions(
        pos, ok, col, n_col, glat.ravel(), glon.ravel(), height_m=height_m, elev_mask_deg=elev_mask_deg,
        progress=sub,
    )  # fmt: skip
    shape = (t.size, lats.size, lons.size)
    dims = ("time", "lat", "lon")
    data = {"n_sats": (dims, res["n_sats"].reshape(shape), {"long_name": "satellites above the mask"})}
    for name in DOP_NAMES:
        data[name] = (dims, res[name].reshape(shape), {"long_name": name.upper(), "units": "1"})
    ds = xr.Dataset(
        data,
        coords={
            "time": ("time", gtime.gpst_to_datetime64(t), {"long_name": "epoch (GPS time)"}),
            "lat": ("lat", lats, {"units": "degrees_north", "long_name": "geodetic latitude (WGS84)"}),
            "lon": ("lon", lons, {"units": "degrees_east", "long_name": "longitude (WGS84)"}),
        },
        attrs=_attrs(nav, systems, svs, elev_mask_deg, height_m, qzss_with_gps, step_s),
    )
    ds.attrs["step_deg"] = float(step_deg)
    ds.attrs["region_deg"] = list(box)
    return ds


def _attrs(
    nav: Any,
    systems: str,
    svs: Sequence[str],
    mask: float,
    height_m: float,
    qzss_with_gps: bool,
    step_s: float,
) -> dict[str, Any]:
    """Return the metadata attributes shared by DOP maps and series."""
    return {
        "systems": systems,
        "satellites": " ".join(svs),
        "elevation_mask_deg": float(mask),
        "height_m": float(height_m),
        "step_s": float(step_s),
        "time_system": "GPST",
        "frame": "WGS84 geodetic grid; DOP in local east-north-up axes; satellite positions ECEF (broadcast)",
        "clock_model": (
            "one receiver clock per constellation in view"
            + ("; QZSS shares the GPS clock" if qzss_with_gps and "G" in systems and "J" in systems else "")
            + "; TDOP of the first listed constellation in view; GDOP = sqrt(PDOP^2 + TDOP^2)"
        ),
        "qzss_with_gps": int(bool(qzss_with_gps)),
        "source_nav": " ".join(str(p) for p in getattr(nav, "paths", ())),
    }


def dop_series(
    nav: Any,
    site_ecef_m: ArrayLike | None = None,
    *,
    lat_deg: float | None = None,
    lon_deg: float | None = None,
    height_m: float = 0.0,
    systems: str = "I",
    start: str | np.datetime64,
    duration_s: float = _SECONDS_PER_DAY,
    step_s: float = 300.0,
    elev_mask_deg: float = 10.0,
    qzss_with_gps: bool = True,
) -> pd.DataFrame:
    """Return a DataFrame (time GPST, t_gpst s, n_sats, gdop, pdop, hdop, vdop, tdop) for one site over time.

    The site is ``site_ecef_m`` (ECEF, m) or ``lat_deg``/``lon_deg``/``height_m`` (WGS84).
    """
    systems, (lat, lon, h), t, svs, pos, ok = _site_setup(
        nav, systems, site_ecef_m, lat_deg, lon_deg, height_m, start, duration_s, step_s
    )
    col, n_col = clock_columns([s[0] for s in svs], systems, qzss_with_gps)
    res = dop_from_positions(pos, ok, col, n_col, [lat], [lon], height_m=h, elev_mask_deg=elev_mask_deg)
    df = pd.DataFrame({"time": gtime.gpst_to_datetime64(t), "t_gpst": t, "n_sats": res["n_sats"][:, 0]})
    for name in DOP_NAMES:
        df[name] = res[name][:, 0].astype(float)
    df.attrs.update(_attrs(nav, systems, svs, elev_mask_deg, h, qzss_with_gps, step_s))
    df.attrs.update({"lat_deg": lat, "lon_deg": lon})
    return df


def sky_tracks(
    nav: Any,
    site_ecef_m: ArrayLike | None = None,
    *,
    lat_deg: float | None = None,
    lon_deg: float | None = None,
    height_m: float = 0.0,
    systems: str = "GJI",
    start: str | np.datetime64,
    duration_s: float = _SECONDS_PER_DAY,
    step_s: float = 300.0,
    elev_mask_deg: float = 0.0,
) -> pd.DataFrame:
    """Return satellite tracks (time GPST, sv, system, az_deg, el_deg) above the mask seen from one site.

    Azimuth from north through east and elevation from the WGS84 ellipsoid normal, in degrees; rows sorted
    by satellite then time; epochs without a valid ephemeris are left out.
    """
    systems, (lat, lon, h), t, svs, pos, ok = _site_setup(
        nav, systems, site_ecef_m, lat_deg, lon_deg, height_m, start, duration_s, step_s
    )
    site = geodetic_to_ecef(np.radians(lat), np.radians(lon), h)
    az, el = azimuth_elevation(site, np.where(ok[..., None], pos, site + 2.0e7))
    az_deg, el_deg = np.degrees(az), np.degrees(el)
    keep = ok & (el_deg >= elev_mask_deg)
    it, isv = np.nonzero(keep.T)[::-1]  # sorted by satellite, then time
    sv = np.asarray(svs, dtype=object)[isv]
    return pd.DataFrame(
        {
            "time": gtime.gpst_to_datetime64(t[it]),
            "sv": sv,
            "system": np.array([s[0] for s in sv], dtype=object),
            "az_deg": az_deg[it, isv],
            "el_deg": el_deg[it, isv],
        }
    )


def availability_map(ds: xr.Dataset, pdop_max: float = 6.0) -> xr.DataArray:
    """Return the fraction of epochs (0..1) with a solution of PDOP <= pdop_max at each (lat, lon) point."""
    ok = (ds["pdop"] <= pdop_max).fillna(False)
    out = ok.mean("time").astype(float)
    out.attrs = {"long_name": f"fraction of time with PDOP <= {pdop_max:g}", "units": "1"}
    return out.rename("availability")


def _finite_float(x: Any) -> float | None:
    """Return a plain float, or None for NaN (JSON has no NaN)."""
    v = float(x)
    return v if np.isfinite(v) else None


def summarise_dop_map(ds: xr.Dataset, pdop_max: float = 6.0) -> dict[str, Any]:
    """Return summary figures of a DOP map (plain keys, SI/plain units, JSON-ready; None where undefined).

    Percentiles are over all (time, point) cells that have a solution; ``availability_fraction`` counts
    cells without a solution as unavailable.
    """
    pdop = ds["pdop"].values.astype(float)
    solved = np.isfinite(pdop)
    good = solved & (pdop <= pdop_max)
    out: dict[str, Any] = {
        "systems": ds.attrs.get("systems"),
        "elevation_mask_deg": ds.attrs.get("elevation_mask_deg"),
        "pdop_threshold": float(pdop_max),
        "n_epochs": int(ds.sizes["time"]),
        "n_points": int(ds.sizes["lat"] * ds.sizes["lon"]),
        "start_gpst": str(ds["time"].values[0])[:19],
        "end_gpst": str(ds["time"].values[-1])[:19],
        "solution_fraction": float(solved.mean()),
        "availability_fraction": float(good.mean()),
    }
    for name in ("pdop", "hdop", "vdop", "gdop"):
        v = ds[name].values.astype(float)
        v = v[np.isfinite(v)]
        out[f"{name}_median"] = _finite_float(np.median(v)) if v.size else None
        out[f"{name}_p95"] = _finite_float(np.percentile(v, 95.0)) if v.size else None
    n, per_point = ds["n_sats"].values, good.mean(axis=0)
    out.update(n_sats_mean=float(n.mean()), n_sats_min=int(n.min()), n_sats_max=int(n.max()))
    out.update(
        availability_point_min=float(per_point.min()), availability_point_median=float(np.median(per_point))
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an epoch without any solution gives None
        per_time = np.nanmedian(pdop.reshape(pdop.shape[0], -1), axis=1)
    out["pdop_median_by_time"] = [_finite_float(v) for v in per_time]
    return out
