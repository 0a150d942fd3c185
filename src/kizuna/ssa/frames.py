"""Rotations between TEME (the SGP4 output frame), ITRF (Earth-fixed) and GCRF, over arrays of UTC times.

TEME <-> ITRF follows Vallado, Crawford, Hujsak & Kelso, "Revisiting Spacetrack Report #3",
AIAA 2006-6753, Appendix C: TEME is turned into the pseudo Earth-fixed frame (PEF) by the Greenwich mean
sidereal angle of 1982 (the angle SGP4's TEME is defined by), and PEF into ITRF by polar motion
(x_p, y_p). The ITRF velocity carries the Earth-rotation term -w x r with w = 7.292115146706979e-5 rad/s
scaled by (1 - LOD / 86400 s). This step needs only UT1, so it is written here directly (with
skyfield's ``theta_GMST1982`` for the angle) and takes dUT1, x_p, y_p and LOD as given.

TEME <-> GCRF needs precession and nutation. It uses skyfield's ``TEME`` frame, which goes TEME -> PEF
by GMST 1982 and then to GCRS with the IAU 2006 precession, IAU 2000A nutation and frame bias (no
celestial-pole offsets dX, dY), rather than an IAU-76/FK5 chain written here: the IAU 2006/2000A model
is what GCRF is defined by today, and the FK5 chain reaches it only with observed corrections dPsi, dEps.
On the published example of AIAA 2006-6753 (IAU-76/FK5 with dPsi, dEps) the two agree to about 4 mm.
Times go to skyfield's built-in timescale (its bundled leap-second table, no downloads), with UT1 set to
UTC + dUT1 as given. Velocities are rotated with the same matrix: the slow turning of the
of-date TEME axes (precession, ~8e-12 rad/s, below 0.4 mm/s at geostationary distance) is neglected,
as in AIAA 2006-6753.

Shapes: times ``t_utc`` of shape (m,) (or a scalar); positions and velocities of shape (..., m, 3) (or
(..., 3) with a scalar time). Positions in km, velocities in km/s; EOP in arcseconds and seconds.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from kizuna.core.rotations import rot_x, rot_y, rot_z
from kizuna.errors import InputError
from kizuna.ssa.propagate import as_utc, utc_to_jd

__all__ = [
    "EARTH_ROTATION_RATE_RAD_S",
    "gcrf_to_teme",
    "gmst1982_rad",
    "itrf_to_teme",
    "teme_to_gcrf",
    "teme_to_itrf",
]

# Earth rotation rate (rad/s) used for the TEME -> PEF velocity, scaled by (1 - LOD / 86400 s): the value
# of Vallado's Example 3-15 (Fundamentals of Astrodynamics and Applications), the example of AIAA 2006-6753.
EARTH_ROTATION_RATE_RAD_S = 7.292115146706979e-5

_ARCSEC_RAD = np.pi / (180.0 * 3600.0)
_DAY_S = 86_400.0
# TT - TAI (s), exact by definition.
_TT_MINUS_TAI_S = 32.184

_ts_lock = threading.Lock()
_ts: Any = None


def _timescale() -> Any:
    """Return skyfield's built-in timescale (bundled leap seconds; nothing is downloaded)."""
    global _ts
    with _ts_lock:
        if _ts is None:
            from skyfield.api import load

            _ts = load.timescale(builtin=True)
        return _ts


def _times(t_utc: Any) -> NDArray[np.datetime64]:
    t = as_utc(t_utc, name="t_utc")
    if t.ndim > 1:
        raise InputError(f"t_utc: shape {t.shape}; expected a scalar or a 1-D array of UTC times")
    return t


def _eop(value: ArrayLike, name: str, shape: tuple[int, ...]) -> NDArray[np.float64]:
    arr = np.asarray(value, dtype=np.float64)
    try:
        arr = np.broadcast_to(arr, shape)
    except ValueError as exc:
        raise InputError(f"{name}: shape {np.shape(value)}; expected a scalar or one value per time") from exc
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name}: must be finite")
    return arr


def _vectors(x: ArrayLike, name: str, t_shape: tuple[int, ...]) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim < 1 or arr.shape[-1] != 3:
        raise InputError(f"{name}: shape {arr.shape}; expected (..., m, 3) with 3 components last")
    if t_shape and (arr.ndim < 2 or arr.shape[-2] not in (t_shape[0], 1)):
        raise InputError(f"{name}: shape {arr.shape}; expected (..., {t_shape[0]}, 3) for {t_shape[0]} times")
    return arr


def _apply(m: NDArray[np.float64], x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return m @ x over the trailing (3,) axis, broadcasting a (m, 3, 3) stack over (..., m, 3)."""
    return np.matmul(m, x[..., None])[..., 0]


def _transpose(m: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.swapaxes(m, -1, -2)


def gmst1982_rad(t_utc: Any, *, dut1_s: ArrayLike = 0.0) -> NDArray[np.float64]:
    """Return the IAU 1982 Greenwich mean sidereal angle (rad, [0, 2 pi)) at UTC times; UT1 = UTC + dUT1."""
    from skyfield.sgp4lib import theta_GMST1982

    t = _times(t_utc)
    jd, fr = utc_to_jd(t)
    fr_ut1 = fr + _eop(dut1_s, "dut1_s", t.shape) / _DAY_S
    theta, _ = theta_GMST1982(jd, fr_ut1)
    return np.asarray(theta, dtype=np.float64)


def _pef_rotation(
    t: NDArray[np.datetime64], xp_arcsec: ArrayLike, yp_arcsec: ArrayLike, dut1_s: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return (R, W): r_PEF = R r_TEME and r_ITRF = W r_PEF, each of shape t.shape + (3, 3)."""
    theta = gmst1982_rad(t, dut1_s=dut1_s)
    xp = _eop(xp_arcsec, "xp_arcsec", t.shape) * _ARCSEC_RAD
    yp = _eop(yp_arcsec, "yp_arcsec", t.shape) * _ARCSEC_RAD
    return rot_z(-theta), np.matmul(rot_x(yp), rot_y(xp))


def _omega(lod_s: ArrayLike, shape: tuple[int, ...]) -> NDArray[np.float64]:
    w = EARTH_ROTATION_RATE_RAD_S * (1.0 - _eop(lod_s, "lod_s", shape) / _DAY_S)
    out = np.zeros(shape + (3,))
    out[..., 2] = w
    return out


def teme_to_itrf(
    t_utc: Any,
    r_km: ArrayLike,
    v_km_s: ArrayLike | None,
    *,
    xp_arcsec: ArrayLike = 0.0,
    yp_arcsec: ArrayLike = 0.0,
    dut1_s: ArrayLike = 0.0,
    lod_s: ArrayLike = 0.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """Return (r km, v km/s) in ITRF (Earth-fixed) from TEME at UTC times; v includes Earth rotation.

    EOP (polar motion in arcseconds, UT1 - UTC and length of day in seconds) are scalars or one value
    per time; with the defaults (all 0) the result is PEF with UT1 = UTC, which can be off by up to
    0.9 s of Earth rotation (0.42 km on the equator,
    2.8 km at geostationary distance). ``v_km_s`` may be None.
    """
    t = _times(t_utc)
    r = _vectors(r_km, "r_km", t.shape)
    R, W = _pef_rotation(t, xp_arcsec, yp_arcsec, dut1_s)
    r_pef = _apply(R, r)
    r_itrf = _apply(W, r_pef)
    if v_km_s is None:
        return r_itrf, None
    v = _vectors(v_km_s, "v_km_s", t.shape)
    v_pef = _apply(R, v) - np.cross(_omega(lod_s, t.shape), r_pef)
    return r_itrf, _apply(W, v_pef)


def itrf_to_teme(
    t_utc: Any,
    r_km: ArrayLike,
    v_km_s: ArrayLike | None,
    *,
    xp_arcsec: ArrayLike = 0.0,
    yp_arcsec: ArrayLike = 0.0,
    dut1_s: ArrayLike = 0.0,
    lod_s: ArrayLike = 0.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """Return (r km, v km/s) in TEME from ITRF (Earth-fixed) at UTC times: the inverse of teme_to_itrf."""
    t = _times(t_utc)
    r = _vectors(r_km, "r_km", t.shape)
    R, W = _pef_rotation(t, xp_arcsec, yp_arcsec, dut1_s)
    r_pef = _apply(_transpose(W), r)
    r_teme = _apply(_transpose(R), r_pef)
    if v_km_s is None:
        return r_teme, None
    v = _vectors(v_km_s, "v_km_s", t.shape)
    v_pef = _apply(_transpose(W), v) + np.cross(_omega(lod_s, t.shape), r_pef)
    return r_teme, _apply(_transpose(R), v_pef)


def _gcrs_to_teme_matrix(t: NDArray[np.datetime64], dut1_s: ArrayLike) -> NDArray[np.float64]:
    """Return M with r_TEME = M r_GCRF, shape t.shape + (3, 3), from skyfield's TEME frame."""
    from skyfield.sgp4lib import TEME

    dut1 = _eop(dut1_s, "dut1_s", t.shape)
    ts = _timescale()
    days = t.astype("datetime64[D]")
    year = days.astype("datetime64[Y]").astype(np.int64) + 1970
    month = (days.astype("datetime64[M]") - days.astype("datetime64[Y]")).astype(np.int64) + 1
    day = (days - days.astype("datetime64[M]")).astype(np.int64) + 1
    ns_of_day = (t - days).astype("timedelta64[ns]").astype(np.int64)
    second = (ns_of_day // 1_000_000_000).astype(np.float64) + (ns_of_day % 1_000_000_000) * 1e-9
    tt = ts.utc(year, month, day, 0, 0, second)
    # TAI - UTC (whole leap seconds) from skyfield's table, then UT1 = UTC + dUT1 through Delta T.
    jd, fr = utc_to_jd(t)
    tt_minus_utc_s = ((tt.whole - jd) + (tt.tt_fraction - fr)) * _DAY_S
    tai_minus_utc_s = np.rint(tt_minus_utc_s - _TT_MINUS_TAI_S)
    # skyfield caches Time attributes on first use; setting Delta T = TT - UT1 before any use fixes UT1.
    tt.delta_t = _TT_MINUS_TAI_S + tai_minus_utc_s - dut1
    m = np.asarray(TEME.rotation_at(tt), dtype=np.float64)
    return np.moveaxis(m, (0, 1), (-2, -1)) if m.ndim == 3 else m


def teme_to_gcrf(
    t_utc: Any,
    r_km: ArrayLike,
    v_km_s: ArrayLike | None,
    *,
    dut1_s: ArrayLike = 0.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """Return (r km, v km/s) in GCRF from TEME at UTC times (IAU 2006/2000A through skyfield).

    ``dut1_s`` (UT1 - UTC, s, scalar or per time) barely matters here (TEME and GCRF are both
    celestial); ``v_km_s`` may be None.
    """
    t = _times(t_utc)
    r = _vectors(r_km, "r_km", t.shape)
    mt = _transpose(_gcrs_to_teme_matrix(t, dut1_s))
    if v_km_s is None:
        return _apply(mt, r), None
    v = _vectors(v_km_s, "v_km_s", t.shape)
    return _apply(mt, r), _apply(mt, v)


def gcrf_to_teme(
    t_utc: Any,
    r_km: ArrayLike,
    v_km_s: ArrayLike | None,
    *,
    dut1_s: ArrayLike = 0.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """Return (r km, v km/s) in TEME from GCRF at UTC times: the inverse of teme_to_gcrf."""
    t = _times(t_utc)
    r = _vectors(r_km, "r_km", t.shape)
    m = _gcrs_to_teme_matrix(t, dut1_s)
    if v_km_s is None:
        return _apply(m, r), None
    v = _vectors(v_km_s, "v_km_s", t.shape)
    return _apply(m, r), _apply(m, v)
