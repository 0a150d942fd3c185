"""The WGS84 ellipsoid: geodetic latitude, longitude and height to and from Earth-fixed (ECEF) positions,
local east-north-up axes, and azimuth/elevation of a target seen from a site.

All angles are radians and all lengths metres unless a name says otherwise; positions are ECEF
(ITRF-aligned, WGS84 ellipsoid). Every function broadcasts over leading array axes.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "WGS84_A_M",
    "WGS84_F",
    "WGS84_E2",
    "geodetic_to_ecef",
    "ecef_to_geodetic",
    "enu_matrix",
    "ecef_to_enu",
    "azimuth_elevation",
]

# WGS84 defining parameters (NIMA TR8350.2, table 3.1).
WGS84_A_M = 6_378_137.0
WGS84_F = 1.0 / 298.257_223_563
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)
_B_M = WGS84_A_M * (1.0 - WGS84_F)
_EP2 = WGS84_E2 / (1.0 - WGS84_E2)


def geodetic_to_ecef(lat_rad: ArrayLike, lon_rad: ArrayLike, h_m: ArrayLike) -> NDArray[np.float64]:
    """Return ECEF positions (..., 3) in metres of geodetic latitude/longitude (rad) and height (m, WGS84)."""
    lat = np.asarray(lat_rad, dtype=float)
    lon = np.asarray(lon_rad, dtype=float)
    h = np.asarray(h_m, dtype=float)
    sl, cl = np.sin(lat), np.cos(lat)
    n = WGS84_A_M / np.sqrt(1.0 - WGS84_E2 * sl * sl)
    x = (n + h) * cl * np.cos(lon)
    y = (n + h) * cl * np.sin(lon)
    z = (n * (1.0 - WGS84_E2) + h) * sl
    return np.stack(np.broadcast_arrays(x, y, z), axis=-1)


def ecef_to_geodetic(
    r_ecef_m: ArrayLike,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Return geodetic latitude (rad), longitude (rad) and height (m, WGS84) of ECEF positions (..., 3) in m.

    Bowring's closed form followed by two fixed-point refinements: the round trip through
    :func:`geodetic_to_ecef` closes to 1e-7 m from the ground to GNSS altitudes.
    """
    r = np.asarray(r_ecef_m, dtype=float)
    x, y, z = r[..., 0], r[..., 1], r[..., 2]
    p = np.hypot(x, y)
    lon = np.arctan2(y, x)
    theta = np.arctan2(z * WGS84_A_M, p * _B_M)
    st, ct = np.sin(theta), np.cos(theta)
    lat = np.arctan2(z + _EP2 * _B_M * st**3, p - WGS84_E2 * WGS84_A_M * ct**3)
    for _ in range(2):
        sl = np.sin(lat)
        n = WGS84_A_M / np.sqrt(1.0 - WGS84_E2 * sl * sl)
        lat = np.arctan2(z + n * WGS84_E2 * sl, p)
    sl, cl = np.sin(lat), np.cos(lat)
    n = WGS84_A_M / np.sqrt(1.0 - WGS84_E2 * sl * sl)
    # Height from the component along the normal: well conditioned at every latitude, poles included.
    h = p * cl + z * sl - n * (1.0 - WGS84_E2 * sl * sl)
    return lat, lon, h


def enu_matrix(lat_rad: ArrayLike, lon_rad: ArrayLike) -> NDArray[np.float64]:
    """Return the rotation (..., 3, 3) whose rows are the local east, north and up unit vectors in ECEF."""
    lat = np.asarray(lat_rad, dtype=float)
    lon = np.asarray(lon_rad, dtype=float)
    sl, cl, so, co = np.sin(lat), np.cos(lat), np.sin(lon), np.cos(lon)
    zero = np.zeros_like(sl * so)
    e = np.stack(np.broadcast_arrays(-so, co, zero), axis=-1)
    n = np.stack(np.broadcast_arrays(-sl * co, -sl * so, cl), axis=-1)
    u = np.stack(np.broadcast_arrays(cl * co, cl * so, sl), axis=-1)
    return np.stack([e, n, u], axis=-2)


def ecef_to_enu(d_ecef_m: ArrayLike, lat_rad: ArrayLike, lon_rad: ArrayLike) -> NDArray[np.float64]:
    """Return east/north/up components (..., 3) in m of ECEF difference vectors at a site's lat/lon (rad)."""
    m = enu_matrix(lat_rad, lon_rad)
    return np.einsum("...ij,...j->...i", m, np.asarray(d_ecef_m, dtype=float))


def azimuth_elevation(
    r_site_ecef_m: ArrayLike, r_target_ecef_m: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return azimuth (rad, from north through east, in [0, 2 pi)) and elevation (rad) of targets from sites.

    Both inputs are ECEF positions in metres and broadcast against each other; the local vertical is the
    WGS84 ellipsoid normal at the site.
    """
    site = np.asarray(r_site_ecef_m, dtype=float)
    lat, lon, _ = ecef_to_geodetic(site)
    enu = ecef_to_enu(np.asarray(r_target_ecef_m, dtype=float) - site, lat, lon)
    az = np.mod(np.arctan2(enu[..., 0], enu[..., 1]), 2.0 * np.pi)
    el = np.arctan2(enu[..., 2], np.hypot(enu[..., 0], enu[..., 1]))
    return az, el
