"""Tests of kizuna.core.ephemeris against skyfield, SPICE's own routines and published lunar values."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest
import spiceypy as spice

from kizuna.core import ephemeris as eph
from kizuna.core.constants import MOON_RADIUS_M
from kizuna.errors import InputError

KERNEL_DIR = resources.files("kizuna") / "data" / "ephemeris"


@pytest.fixture(autouse=True, scope="module")
def _kernels_loaded():
    """Load the kernels (and so the leap-second kernel used by spice.str2et in these tests)."""
    eph.utc_to_et("2024-01-01")


def _angle_deg(a, b):
    cos = np.sum(a * b, axis=-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


@pytest.fixture(scope="module")
def skyfield_moon():
    """skyfield's own DE421 + MOON_ME_DE421 frame, built from the same kernel files (an independent code)."""
    from skyfield.api import Loader, load, load_file
    from skyfield.planetarylib import PlanetaryConstants

    planets = load_file(str(resources.files("skyfield_data") / "data" / "de421.bsp"))
    loader = Loader(str(KERNEL_DIR), verbose=False)
    pc = PlanetaryConstants()
    pc.read_text(loader("moon_080317.tf"))
    pc.read_binary(loader("moon_pa_de421_1900-2050.bpc"))
    # Sites on the 1737.4 km LOLA reference sphere (skyfield needs the radii to build a surface point).
    pc.variables["BODY301_RADII"] = [MOON_RADIUS_M / 1000.0] * 3
    frame = pc.build_frame_named("MOON_ME_DE421")
    return planets, pc, frame, load.timescale(builtin=True)


def _times(n: int, days: float) -> tuple[np.ndarray, np.ndarray]:
    """n UTC times over `days` days from 2024-01-01 (no leap second in between), and seconds from start."""
    sec = np.linspace(0.0, days * 86400.0, n).round(3)
    t = np.datetime64("2024-01-01T00:00:00", "ns") + (sec * 1e9).astype("timedelta64[ns]")
    return t, sec


def test_sun_and_earth_from_moon_centre_match_skyfield(skyfield_moon):
    planets, _, frame, ts = skyfield_moon
    t, sec = _times(200, 730.0)
    tsf = ts.utc(2024, 1, 1, 0, 0, sec)
    moon = planets["moon"]
    for target, func in ((planets["sun"], eph.sun_position_me), (planets["earth"], eph.earth_position_me)):
        ref = moon.at(tsf).observe(target).apparent().frame_xyz(frame).m.T  # LT + aberration (+ deflection)
        mine = func(t)
        assert mine.shape == (200, 3)
        # ../shared/data/README.md: spiceypy and skyfield directions agree to better than 5e-6 deg.
        assert _angle_deg(mine, ref).max() < 5e-6
        np.testing.assert_allclose(np.linalg.norm(mine, axis=1), np.linalg.norm(ref, axis=1), rtol=1e-7)


@pytest.mark.parametrize(("lat", "lon"), [(0.0, 0.0), (-89.5, 45.0), (-85.3, 31.2), (30.0, -100.0)])
def test_topocentric_azel_match_skyfield(skyfield_moon, lat, lon):
    planets, pc, frame, ts = skyfield_moon
    t, sec = _times(60, 400.0)
    observer = planets["moon"] + pc.build_latlon_degrees(frame, lat, lon)
    tsf = ts.utc(2024, 1, 1, 0, 0, sec)
    for target, func in ((planets["sun"], eph.sun_azel_at_site), (planets["earth"], eph.earth_azel_at_site)):
        alt, az, _ = observer.at(tsf).observe(target).apparent().altaz()
        my_az, my_el = func(t, lat, lon)
        assert np.abs(np.degrees(my_el) - alt.degrees).max() < 5e-6
        daz = (np.degrees(my_az) - az.degrees + 180.0) % 360.0 - 180.0
        assert np.abs(daz * np.cos(my_el)).max() < 5e-6
        assert np.all((my_az >= 0) & (my_az < 2 * np.pi))


def test_topocentric_matches_spice_spkcpo():
    # SPICE's own constant-position observer routine (spkcpo, LT+S) is an independent reference for the
    # site parallax, site light time and aberration.
    lat, lon, h = -89.45, 222.7, 1500.0
    t, _ = _times(12, 30.0)
    et = [spice.str2et(str(x).replace("T", " ") + " UTC") for x in t]
    site_km = eph.latlon_to_moon_me(np.radians(lat), np.radians(lon), h) / 1000.0
    ref = np.array(
        [spice.spkcpo("EARTH", x, "MOON_ME", "OBSERVER", "LT+S", site_km, "MOON", "MOON_ME")[0] for x in et]
    )
    enu = ref[:, :3] @ eph.enu_basis_me(np.radians(lat), np.radians(lon)).T
    az, el = eph.earth_azel_at_site(t, lat, lon, h)
    np.testing.assert_allclose(
        np.degrees(el), np.degrees(np.arctan2(enu[:, 2], np.hypot(enu[:, 0], enu[:, 1]))), atol=1e-7
    )


def test_utc_to_et_matches_spice_str2et():
    t = np.array(
        ["2016-12-31T23:59:59.5", "2017-01-01T00:00:00", "1980-06-01T12:34:56.789", "2049-12-31T00:00:00"],
        dtype="datetime64[ns]",
    )
    ref = np.array([spice.str2et(str(x).replace("T", " ") + " UTC") for x in t])
    np.testing.assert_allclose(eph.utc_to_et(t), ref, rtol=0, atol=1e-6)
    # The same instant written three ways.
    one = eph.utc_to_et(["2024-03-01T00:00:00Z", "2024-03-01T09:00:00+09:00", "2024-03-01 00:00:00"])
    np.testing.assert_allclose(one, spice.str2et("2024-03-01 00:00:00 UTC"), rtol=0, atol=1e-6)


def test_subsolar_latitude_within_axis_tilt():
    # The Moon's equator is tilted 1.543 deg to the ecliptic (Cassini's laws; e.g. Explanatory Supplement
    # to the Astronomical Almanac), so the subsolar latitude swings within about +-1.6 deg over a year.
    t = np.arange(np.datetime64("2024-01-01"), np.datetime64("2025-01-01"), np.timedelta64(6, "h"))
    lat, _, _ = eph.moon_me_to_latlon(eph.sun_position_me(t))
    lat_deg = np.degrees(lat)
    assert np.abs(lat_deg).max() < 1.6
    assert lat_deg.max() > 1.4 and lat_deg.min() < -1.4


def test_earth_near_zenith_at_near_side_centre_and_libration_limits():
    # Published maximum optical librations: 7.9 deg in longitude, 6.7 deg in latitude (e.g. Wikipedia,
    # "Libration"); the latitude one reaches 1.54 + 5.30 = 6.84 deg when the orbit's inclination to the
    # ecliptic is at its 5.30 deg maximum (range 4.99..5.30 deg, Wikipedia "Orbit of the Moon"), and
    # physical libration adds a few hundredths of a degree. Seen from (0, 0) the Earth therefore stays
    # within hypot(8, 6.8) deg of the zenith, plus the 0.28 deg site parallax (asin(1737.4 / 356,400 km)).
    t = np.arange(np.datetime64("2024-01-01"), np.datetime64("2025-01-01"), np.timedelta64(3, "h"))
    lat, lon, _ = eph.moon_me_to_latlon(eph.earth_position_me(t))
    lat_deg, lon_deg = np.degrees(lat), np.degrees(lon)
    assert np.abs(lon_deg).max() < 8.1 and np.abs(lat_deg).max() < 6.9
    assert np.abs(lon_deg).max() > 6.5 and np.abs(lat_deg).max() > 6.0  # the libration is really there
    _, el = eph.earth_azel_at_site(t, 0.0, 0.0)
    zenith_distance = 90.0 - np.degrees(el)
    assert zenith_distance.max() < np.hypot(8.0, 6.8) + 0.3
    assert zenith_distance.min() < 2.0


def test_latlon_me_round_trip_and_enu_basis():
    rng = np.random.default_rng(3)
    lat = rng.uniform(-np.pi / 2, np.pi / 2, 500)
    lon = rng.uniform(-np.pi, np.pi, 500)
    h = rng.uniform(-9000.0, 11000.0, 500)
    r = eph.latlon_to_moon_me(lat, lon, h)
    np.testing.assert_allclose(np.linalg.norm(r, axis=1), MOON_RADIUS_M + h, rtol=1e-14)
    lat2, lon2, h2 = eph.moon_me_to_latlon(r)
    np.testing.assert_allclose(lat2, lat, atol=1e-14)
    np.testing.assert_allclose(lon2, lon, atol=1e-13)
    np.testing.assert_allclose(h2, h, atol=1e-8)
    basis = eph.enu_basis_me(lat, lon)
    np.testing.assert_allclose(
        basis @ np.swapaxes(basis, -1, -2), np.broadcast_to(np.eye(3), basis.shape), atol=1e-14
    )
    np.testing.assert_allclose(np.linalg.det(basis), 1.0, atol=1e-14)  # right-handed E, N, U
    np.testing.assert_allclose(basis[:, 2], r / np.linalg.norm(r, axis=1, keepdims=True), atol=1e-14)
    # At lat 0, lon 0 east is +Y and north is +Z of MOON_ME (definition of the frame's axes).
    np.testing.assert_allclose(eph.enu_basis_me(0.0, 0.0), [[0, 1, 0], [0, 0, 1], [1, 0, 0]], atol=1e-16)


def test_shapes_and_errors():
    assert eph.sun_position_me("2024-01-01T00:00:00").shape == (3,)
    az, el = eph.sun_azel_at_site(
        np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[s]")[:, None], [0, 10, 20], 5
    )
    assert az.shape == el.shape == (2, 3)
    with pytest.raises(InputError, match="2060"):
        eph.sun_position_me("2060-01-01")
    with pytest.raises(InputError, match="garbage"):
        eph.earth_position_me(["2024-01-01", "garbage"])
    with pytest.raises(InputError, match="latitude"):
        eph.sun_azel_at_site("2024-01-01", 91.0, 0.0)
