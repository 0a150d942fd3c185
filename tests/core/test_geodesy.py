"""WGS84 geodesy against analytic points and against PROJ (pyproj), an independent implementation."""

from __future__ import annotations

import numpy as np
import pytest

from kizuna.core.geodesy import (
    WGS84_A_M,
    WGS84_F,
    azimuth_elevation,
    ecef_to_enu,
    ecef_to_geodetic,
    geodetic_to_ecef,
)


def test_defining_points() -> None:
    # Analytic: the equator at longitude 0 lies at (a, 0, 0); the north pole at (0, 0, b), b = a (1 - f).
    np.testing.assert_allclose(geodetic_to_ecef(0.0, 0.0, 0.0), [WGS84_A_M, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(
        geodetic_to_ecef(np.pi / 2, 0.0, 100.0), [0.0, 0.0, WGS84_A_M * (1 - WGS84_F) + 100.0], atol=1e-8
    )
    lat, lon, h = ecef_to_geodetic([0.0, 0.0, -(WGS84_A_M * (1 - WGS84_F)) - 5.0])
    assert lat == pytest.approx(-np.pi / 2) and h == pytest.approx(5.0, abs=1e-8)


def test_against_proj_and_round_trip() -> None:
    pyproj = pytest.importorskip("pyproj")
    rng = np.random.default_rng(7)
    lat = rng.uniform(-89.9, 89.9, 500)
    lon = rng.uniform(-180, 180, 500)
    h = rng.uniform(-400.0, 30_000.0, 500)
    r = geodetic_to_ecef(np.radians(lat), np.radians(lon), h)
    # PROJ's geocentric -> geographic conversion of the same points (EPSG:4978 -> EPSG:4979).
    to_geo = pyproj.Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True)
    plon, plat, ph = to_geo.transform(r[:, 0], r[:, 1], r[:, 2])
    np.testing.assert_allclose(plat, lat, atol=1e-9)
    np.testing.assert_allclose(ph, h, atol=1e-3)
    la, lo, hh = ecef_to_geodetic(r)
    np.testing.assert_allclose(np.degrees(la), lat, atol=1e-11)
    np.testing.assert_allclose(np.degrees(lo), lon, atol=1e-11)
    np.testing.assert_allclose(hh, h, atol=1e-6)
    # GNSS altitudes: the round trip still closes.
    r2 = geodetic_to_ecef(np.radians(lat), np.radians(lon), h + 2.0e7)
    np.testing.assert_allclose(ecef_to_geodetic(r2)[2], h + 2.0e7, atol=1e-6)


def test_enu_and_azimuth_elevation() -> None:
    site = geodetic_to_ecef(np.radians(35.0), np.radians(139.0), 50.0)
    lat, lon = np.radians(35.0), np.radians(139.0)
    up = geodetic_to_ecef(lat, lon, 1050.0) - site
    np.testing.assert_allclose(ecef_to_enu(up, lat, lon), [0.0, 0.0, 1000.0], atol=1e-6)
    # A point straight up is at 90 deg elevation; one a little north along the meridian is at azimuth 0.
    _, el = azimuth_elevation(site, site + up * 20_000)
    assert np.degrees(el) == pytest.approx(90.0, abs=1e-9)
    north = geodetic_to_ecef(lat + 1e-5, lon, 50.0)
    az, el = azimuth_elevation(site, north)
    assert np.degrees(az) % 360.0 == pytest.approx(0.0, abs=1e-6) or np.degrees(az) == pytest.approx(360.0)
    assert abs(np.degrees(el)) < 0.01
