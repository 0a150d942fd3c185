"""Signal delays in the atmosphere for single-frequency positioning: the broadcast Klobuchar ionosphere
(GPS, QZSS, BeiDou and NavIC coefficient sets), Galileo's NTCM-G ionosphere driven by the broadcast
effective ionisation coefficients, and the Saastamoinen troposphere with a standard atmosphere.

Angles are radians, heights metres (WGS84 ellipsoid), delays metres of slant range.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from kizuna.core.constants import SPEED_OF_LIGHT_M_S

__all__ = [
    "FREQ_L1_HZ",
    "KLOBUCHAR_DEFAULT",
    "klobuchar_delay_m",
    "ntcmg_stec_tecu",
    "ntcmg_delay_m",
    "saastamoinen_delay_m",
]

FREQ_L1_HZ = 1_575.42e6

# Coefficients used when a navigation file carries none: the values RTKLIB falls back on (2004/1/1), so
# that a run without header coefficients stays comparable with rnx2rtkp.
KLOBUCHAR_DEFAULT = np.array(
    [0.1118e-07, -0.7451e-08, -0.5961e-07, 0.1192e-06, 0.1167e06, -0.2294e06, -0.1311e06, 0.1049e07]
)


def klobuchar_delay_m(
    coeffs: ArrayLike,
    lat_rad: ArrayLike,
    lon_rad: ArrayLike,
    az_rad: ArrayLike,
    el_rad: ArrayLike,
    t_gpst: ArrayLike,
    freq_hz: ArrayLike = FREQ_L1_HZ,
) -> NDArray[np.float64]:
    """Return the Klobuchar slant ionospheric delay in metres at ``freq_hz`` (IS-GPS-200 figure 20-4).

    ``coeffs`` are alpha0..3 (s, s/semicircle^n) and beta0..3 (s, s/semicircle^n) as broadcast; the model
    gives the L1 delay, scaled here by (f_L1 / f)^2 to the signal's frequency. Receiver latitude/longitude
    (rad, geodetic), satellite azimuth/elevation (rad) and GPS time broadcast together. Zero for elevations
    at or below the horizon and for receivers more than 1 km below the ellipsoid, as RTKLIB's ``ionmodel``.
    """
    c = np.asarray(coeffs, dtype=float)
    if c.shape != (8,) or not np.any(c):
        c = KLOBUCHAR_DEFAULT
    lat = np.asarray(lat_rad, dtype=float) / np.pi  # semicircles
    lon = np.asarray(lon_rad, dtype=float) / np.pi
    az = np.asarray(az_rad, dtype=float)
    el_rad_a = np.asarray(el_rad, dtype=float)
    el = el_rad_a / np.pi
    psi = 0.0137 / (el + 0.11) - 0.022  # Earth-centred angle, semicircles
    phi_i = np.clip(lat + psi * np.cos(az), -0.416, 0.416)
    lam_i = lon + psi * np.sin(az) / np.cos(phi_i * np.pi)
    phi_m = phi_i + 0.064 * np.cos((lam_i - 1.617) * np.pi)  # geomagnetic latitude, semicircles
    tow = np.mod(np.asarray(t_gpst, dtype=float), 86_400.0)
    t_local = np.mod(43_200.0 * lam_i + tow, 86_400.0)
    f = 1.0 + 16.0 * (0.53 - el) ** 3
    amp = np.maximum(c[0] + phi_m * (c[1] + phi_m * (c[2] + phi_m * c[3])), 0.0)
    per = np.maximum(c[4] + phi_m * (c[5] + phi_m * (c[6] + phi_m * c[7])), 72_000.0)
    x = 2.0 * np.pi * (t_local - 50_400.0) / per
    day = 5e-9 + amp * (1.0 + x * x * (-0.5 + x * x / 24.0))
    delay_s = f * np.where(np.abs(x) < 1.57, day, 5e-9)
    scale = (FREQ_L1_HZ / np.asarray(freq_hz, dtype=float)) ** 2
    return np.where(el_rad_a > 0.0, SPEED_OF_LIGHT_M_S * delay_s * scale, 0.0)


# NTCM-G model constants (European GNSS (Galileo) Open Service, NTCM-G Ionospheric Model Description, issue
# 1.0, 2022, tables 2 and 3): k1..k12, the diurnal/annual phases, the crest positions and widths, the shell
# height and the geomagnetic north pole.
_NTCM_K = (0.92519, 0.16951, 0.00443, 0.06626, 0.00899, 0.21289, -0.15414, -0.38439, 1.14023, 1.20556)
_NTCM_K11_TECU, _NTCM_K12_TECU_PER_SFU = 1.41808, 0.13985
_NTCM_RE_KM, _NTCM_HI_KM = 6371.0, 450.0
_NTCM_POLE_LAT, _NTCM_POLE_LON = np.radians(79.74), np.radians(-71.78)


def ntcmg_stec_tecu(
    ai: ArrayLike,
    lat_rad: ArrayLike,
    lon_rad: ArrayLike,
    az_rad: ArrayLike,
    el_rad: ArrayLike,
    utc_hour: ArrayLike,
    day_of_year: ArrayLike,
) -> NDArray[np.float64]:
    """Return the NTCM-G slant total electron content (TECU) along a line of sight.

    ``ai`` are Galileo's broadcast effective ionisation coefficients ai0, ai1, ai2 (sfu, sfu/deg,
    sfu/deg^2); receiver geodetic latitude/longitude, azimuth and elevation in rad; UTC hour of day and day
    of year. The model of the NTCM-G description (equations 2-15 and 24-34): a single-layer shell at 450 km
    over a sphere, local-time, seasonal, geomagnetic and equatorial-crest factors times a solar-activity
    level from the ai coefficients.
    """
    a0, a1, a2 = (float(v) for v in np.asarray(ai, dtype=float)[:3])
    lat = np.asarray(lat_rad, dtype=float)
    lon = np.asarray(lon_rad, dtype=float)
    az = np.asarray(az_rad, dtype=float)
    el = np.asarray(el_rad, dtype=float)
    re, hi = _NTCM_RE_KM, _NTCM_HI_KM
    psi = np.pi / 2 - el - np.arcsin(re * np.cos(el) / (re + hi))  # Earth-centred angle to the pierce point
    lat_p = np.arcsin(np.sin(lat) * np.cos(psi) + np.cos(lat) * np.sin(psi) * np.cos(az))
    lon_p = lon + np.arcsin(np.sin(psi) * np.sin(az) / np.cos(lat_p))
    lt = np.asarray(utc_hour, dtype=float) + np.degrees(lon_p) / 15.0
    doy = np.asarray(day_of_year, dtype=float)
    k1, k2, k3, k4, k5, k6, k7, k8, k9, k10 = _NTCM_K
    v_d = 2 * np.pi * (lt - 14.0) / 24.0
    v_sd = 2 * np.pi * lt / 12.0
    v_td = 2 * np.pi * lt / 8.0
    decl = np.radians(23.44) * np.sin(np.radians(0.9856 * (doy - 80.7)))
    cos3 = np.cos(lat_p - decl) + 0.4
    cos2 = np.cos(lat_p - decl) - 2.0 * lat_p * np.sin(decl) / np.pi
    f1 = cos3 + cos2 * (
        k1 * np.cos(v_d) + k2 * np.cos(v_sd) + k3 * np.sin(v_sd) + k4 * np.cos(v_td) + k5 * np.sin(v_td)
    )
    f2 = 1 + k6 * np.cos(2 * np.pi * (doy - 18.0) / 365.25) + k7 * np.cos(4 * np.pi * (doy - 6.0) / 365.25)
    mlat = np.arcsin(
        np.sin(lat_p) * np.sin(_NTCM_POLE_LAT)
        + np.cos(lat_p) * np.cos(_NTCM_POLE_LAT) * np.cos(lon_p - _NTCM_POLE_LON)
    )
    f3 = 1 + k8 * np.cos(mlat)
    ec1 = -((mlat - np.radians(16.0)) ** 2) / (2 * np.radians(12.0) ** 2)
    ec2 = -((mlat - np.radians(-10.0)) ** 2) / (2 * np.radians(13.0) ** 2)
    f4 = 1 + k9 * np.exp(ec1) + k10 * np.exp(ec2)
    az_level = np.sqrt(max(a0 * a0 + 1633.33 * a1 * a1 + 4802000.0 * a2 * a2 + 3266.67 * a0 * a2, 0.0))
    f5 = _NTCM_K11_TECU + _NTCM_K12_TECU_PER_SFU * az_level
    sin_z = re * np.sin(0.9782 * (np.pi / 2 - el)) / (re + hi)
    return f1 * f2 * f3 * f4 * f5 / np.sqrt(1.0 - sin_z * sin_z)


def ntcmg_delay_m(
    ai: ArrayLike,
    lat_rad: ArrayLike,
    lon_rad: ArrayLike,
    az_rad: ArrayLike,
    el_rad: ArrayLike,
    utc_hour: ArrayLike,
    day_of_year: ArrayLike,
    freq_hz: ArrayLike = FREQ_L1_HZ,
) -> NDArray[np.float64]:
    """Return the NTCM-G slant ionospheric group delay in metres at ``freq_hz`` (40.3 STEC / f^2).

    Zero at or below the horizon; arguments as :func:`ntcmg_stec_tecu`.
    """
    stec = ntcmg_stec_tecu(ai, lat_rad, lon_rad, az_rad, el_rad, utc_hour, day_of_year)
    f = np.asarray(freq_hz, dtype=float)
    return np.where(np.asarray(el_rad) > 0.0, 40.3e16 * stec / (f * f), 0.0)


def saastamoinen_delay_m(
    lat_rad: ArrayLike, h_m: ArrayLike, el_rad: ArrayLike, humidity: float = 0.7
) -> NDArray[np.float64]:
    """Return the Saastamoinen slant tropospheric delay in metres with a standard atmosphere.

    Pressure and temperature follow the standard atmosphere from 1013.25 hPa and 15 C at sea level with
    relative humidity ``humidity``; the slant factor is 1/cos(zenith angle), as RTKLIB's ``tropmodel``
    (Saastamoinen 1972). ``h_m`` is the receiver height (m) above the ellipsoid, clipped at 0; zero for
    heights below -100 m or above 10 km and for elevations at or below the horizon.
    """
    lat = np.asarray(lat_rad, dtype=float)
    h_in = np.asarray(h_m, dtype=float)
    el = np.asarray(el_rad, dtype=float)
    h = np.maximum(h_in, 0.0)
    pres_hpa = 1013.25 * (1.0 - 2.2557e-5 * h) ** 5.2568
    temp_k = 15.0 - 6.5e-3 * h + 273.16
    e_hpa = 6.108 * humidity * np.exp((17.15 * temp_k - 4684.0) / (temp_k - 38.45))
    cos_z = np.sin(np.where(el > 0.0, el, np.pi / 2))
    dry = 0.0022768 * pres_hpa / (1.0 - 0.00266 * np.cos(2.0 * lat) - 0.00028 * h / 1e3) / cos_z
    wet = 0.002277 * (1255.0 / temp_k + 0.05) * e_hpa / cos_z
    ok = (el > 0.0) & (h_in >= -100.0) & (h_in <= 1e4)
    return np.where(ok, dry + wet, 0.0)
