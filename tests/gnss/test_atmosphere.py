"""Broadcast ionosphere and Saastamoinen troposphere against closed-form values of their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from kizuna.core.constants import SPEED_OF_LIGHT_M_S
from kizuna.gnss.atmosphere import klobuchar_delay_m, saastamoinen_delay_m

ALPHA_BETA = np.array([1.0e-8, 0.0, 0.0, 0.0, 1.0e5, 0.0, 0.0, 0.0])


def test_klobuchar_night_and_peak() -> None:
    # IS-GPS-200 figure 20-4: at night (|x| >= 1.57) the vertical delay is the constant 5 ns; the obliquity
    # factor at zenith is F = 1 + 16 (0.53 - 0.5)^3.
    f_zenith = 1.0 + 16.0 * (0.53 - 0.5) ** 3
    night = klobuchar_delay_m(ALPHA_BETA, 0.0, 0.0, 0.0, np.pi / 2, 0.0)  # local time 0 h
    assert night == pytest.approx(SPEED_OF_LIGHT_M_S * 5e-9 * f_zenith, rel=1e-12)
    # At local 14:00 (x = 0) the delay is F (5 ns + AMP); with only alpha0 set AMP = alpha0.
    peak = klobuchar_delay_m(ALPHA_BETA, 0.0, 0.0, 0.0, np.pi / 2, 50_400.0)
    assert peak == pytest.approx(SPEED_OF_LIGHT_M_S * (5e-9 + 1e-8) * f_zenith, rel=1e-12)
    # Scaled to L5 by (f_L1 / f_L5)^2 (a first-order ionosphere delay goes as 1 / f^2).
    l5 = klobuchar_delay_m(ALPHA_BETA, 0.0, 0.0, 0.0, np.pi / 2, 50_400.0, freq_hz=1176.45e6)
    assert l5 / peak == pytest.approx((1575.42 / 1176.45) ** 2, rel=1e-12)
    # Below the horizon there is no delay; lower elevations have a longer slant path.
    assert klobuchar_delay_m(ALPHA_BETA, 0.0, 0.0, 0.0, -0.1, 50_400.0) == 0.0
    low = klobuchar_delay_m(ALPHA_BETA, 0.0, 0.0, 0.0, np.radians(10.0), 50_400.0)
    assert 2.0 < low / peak < 3.5


def test_saastamoinen_zenith_sea_level() -> None:
    # Saastamoinen (1972) zenith hydrostatic delay 0.0022768 P / (1 - 0.00266 cos 2 lat - 0.00028 H) with the
    # standard sea-level pressure 1013.25 hPa at 45 deg latitude: 2.30697 m; the wet part with 15 C and 70 %
    # humidity adds 0.002277 (1255 / T + 0.05) e.
    temp = 288.16
    e = 6.108 * 0.7 * np.exp((17.15 * temp - 4684.0) / (temp - 38.45))
    wet = 0.002277 * (1255.0 / temp + 0.05) * e
    z = saastamoinen_delay_m(np.radians(45.0), 0.0, np.pi / 2)
    assert z == pytest.approx(0.0022768 * 1013.25 + wet, rel=1e-12)
    assert 2.30 < 0.0022768 * 1013.25 < 2.31
    # Slant factor 1 / sin(el); a high site has less atmosphere above it; outside the model's range: 0.
    assert saastamoinen_delay_m(np.radians(45.0), 0.0, np.radians(30.0)) == pytest.approx(2 * z, rel=1e-12)
    assert saastamoinen_delay_m(np.radians(45.0), 3000.0, np.pi / 2) < 0.75 * z
    assert saastamoinen_delay_m(0.0, 20_000.0, np.pi / 2) == 0.0


# Validation rows of the NTCM-G description (European GNSS (Galileo) Open Service, NTCM-G Ionospheric Model
# Description, issue 1.0, annex): day of year, UTC hour, receiver lon/lat (deg)/height (m), satellite
# lon/lat (deg)/height (m), and the expected slant TEC (TECU), for high, medium and low solar activity.
HIGH = (236.831641, -0.39362878, 0.00402826613)
MEDIUM = (121.129893, 0.351254133, 0.0134635348)
LOW = (2.580271, 0.127628236, 0.0252748384)
NTCM_CASES = [
    (HIGH, (105, 0, -62.34, 82.49, 78.11, 8.23, 54.29, 20281546.18), 33.7567),
    (HIGH, (105, 12, -62.34, 82.49, 78.11, 81.09, 35.20, 20278071.03), 65.0500),
    (MEDIUM, (105, 8, 40.19, -3.00, -23.32, 89.22, -40.56, 20055109.63), 149.9891),
    (MEDIUM, (105, 4, 40.19, -3.00, -23.32, 56.35, 47.54, 20322471.38), 66.2816),
    (LOW, (105, 0, 141.13, 39.14, 117.00, 165.14, -13.93, 20181976.50), 51.5270),
    (LOW, (105, 20, -155.46, 19.80, 3754.69, -82.52, 20.64, 19937791.48), 67.4750),
]


@pytest.mark.parametrize("ai, case, stec", NTCM_CASES)
def test_ntcmg_validation_cases(ai, case, stec):
    from kizuna.core.geodesy import azimuth_elevation, geodetic_to_ecef
    from kizuna.gnss.atmosphere import ntcmg_delay_m, ntcmg_stec_tecu

    doy, hour, rlon, rlat, rh, slon, slat, sh = case
    rx = geodetic_to_ecef(np.radians(rlat), np.radians(rlon), rh)
    az, el = azimuth_elevation(rx, geodetic_to_ecef(np.radians(slat), np.radians(slon), sh))
    got = ntcmg_stec_tecu(ai, np.radians(rlat), np.radians(rlon), az, el, hour, doy)
    assert got == pytest.approx(stec, abs=1e-3)
    # Group delay 40.3 STEC / f^2 (the description's equation 1), 1 TECU = 1e16 electrons/m^2.
    delay = ntcmg_delay_m(ai, np.radians(rlat), np.radians(rlon), az, el, hour, doy, freq_hz=1575.42e6)
    assert delay == pytest.approx(40.3e16 * got / 1575.42e6**2, rel=1e-12)
