"""NMEA 0183 GGA sentences of position solutions, for tools that replay or map receiver output.

The altitude field carries the WGS84 ellipsoidal height and the geoid separation field is 0.0: kizuna
carries no geoid model, and NMEA 0183 allows a receiver without one to report this way.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from kizuna.gnss.gtime import gpst_to_utc

__all__ = ["nmea_checksum", "gga_sentences"]


def nmea_checksum(body: str) -> str:
    """Return the two-hex-digit NMEA checksum (XOR of the characters between '$' and '*')."""
    x = 0
    for ch in body.encode("ascii"):
        x ^= ch
    return f"{x:02X}"


def _angle(value_deg: float, deg_digits: int, hemis: str) -> tuple[str, str]:
    """Return an NMEA ddmm.mmmmm / dddmm.mmmmm field and its hemisphere letter."""
    a = abs(value_deg)
    d = int(a)
    m = (a - d) * 60.0
    if round(m, 5) >= 60.0:
        d, m = d + 1, 0.0
    return f"{d:0{deg_digits}d}{m:08.5f}", hemis[0] if value_deg >= 0 else hemis[1]


def gga_sentences(
    t_gpst: ArrayLike,
    lat_deg: ArrayLike,
    lon_deg: ArrayLike,
    height_m: ArrayLike,
    n_sats: ArrayLike,
    hdop: ArrayLike,
    quality: int = 1,
) -> list[str]:
    """Return one ``$GPGGA`` sentence per solved epoch (UTC time of day; lat/lon in degrees; height in m).

    Epochs with a NaN latitude are skipped. ``quality`` is the GGA fix quality (1 = autonomous GNSS fix).
    """
    t = np.atleast_1d(np.asarray(t_gpst, dtype=float))
    lat = np.atleast_1d(np.asarray(lat_deg, dtype=float))
    lon = np.atleast_1d(np.asarray(lon_deg, dtype=float))
    h = np.atleast_1d(np.asarray(height_m, dtype=float))
    ns = np.atleast_1d(np.asarray(n_sats))
    hd = np.atleast_1d(np.asarray(hdop, dtype=float))
    utc = gpst_to_utc(t)
    out = []
    for k in range(len(t)):
        if not np.isfinite(lat[k]):
            continue
        ts = str(utc[k])  # YYYY-MM-DDTHH:MM:SS.fffffffff
        hms = ts[11:13] + ts[14:16] + f"{float(ts[17:]):05.2f}"
        la, ns_h = _angle(lat[k], 2, "NS")
        lo, ew_h = _angle(lon[k], 3, "EW")
        hdop_s = f"{hd[k]:.1f}" if np.isfinite(hd[k]) else ""
        body = f"GPGGA,{hms},{la},{ns_h},{lo},{ew_h},{quality},{int(ns[k]):02d},{hdop_s},{h[k]:.3f},M,0.0,M,,"
        out.append(f"${body}*{nmea_checksum(body)}")
    return out
