"""Figures of the satellite-navigation field: DOP and availability maps, DOP time series, sky plots of
satellite tracks, and position errors (horizontal scatter and east/north/up against time).

Every function returns a :class:`matplotlib.figure.Figure` drawn on the Agg canvas (no window is ever
opened and pyplot's global state is not used), ready for ``kizuna.core.io.write_png`` or ``savefig``.
Maps have plain latitude/longitude axes in degrees (no coastlines); times are GPS time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from kizuna.errors import InputError

__all__ = [
    "SYSTEM_COLOURS",
    "SYSTEM_NAMES",
    "dop_map_figure",
    "availability_map_figure",
    "dop_series_figure",
    "sky_plot_figure",
    "horizontal_error_figure",
    "error_time_figure",
]

SYSTEM_NAMES = {"G": "GPS", "R": "GLONASS", "E": "Galileo", "C": "BeiDou", "J": "QZSS", "I": "NavIC"}
SYSTEM_COLOURS = {
    "G": "#1f77b4",
    "R": "#d62728",
    "E": "#2ca02c",
    "C": "#9467bd",
    "J": "#ff7f0e",
    "I": "#8c564b",
}
_DOP_COLOURS = {"gdop": "#555555", "pdop": "#1f77b4", "hdop": "#2ca02c", "vdop": "#d62728", "tdop": "#9467bd"}
_STATISTICS = ("median", "mean", "max", "min", "p95")


def _figure(width_in: float, height_in: float) -> Figure:
    """Return a new Figure attached to an Agg canvas."""
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _systems_label(systems: str | None) -> str:
    """Return 'GPS+QZSS+NavIC' for 'GJI'."""
    if not systems:
        return ""
    return "+".join(SYSTEM_NAMES.get(ch, ch) for ch in systems)


def _reduce_time(da: xr.DataArray, statistic: str | int) -> tuple[xr.DataArray, str]:
    """Return a (lat, lon) field of da reduced over time and a text saying how."""
    if "time" not in da.dims:
        return da, ""
    if isinstance(statistic, int | np.integer):
        if not -da.sizes["time"] <= int(statistic) < da.sizes["time"]:
            raise InputError(f"statistic {statistic!r}: expected an epoch index below {da.sizes['time']}")
        one = da.isel(time=int(statistic))
        return one, f"at {str(one['time'].values)[:16]} GPST"
    if statistic not in _STATISTICS:
        raise InputError(
            f"statistic {statistic!r}: expected an epoch index or one of {', '.join(_STATISTICS)}"
        )
    # Cells with no solution at some epochs stay in the statistic as +inf, so a median or maximum says
    # "no solution" wherever that is the typical or worst case.
    filled = da.where(np.isfinite(da), np.inf) if np.issubdtype(da.dtype, np.floating) else da
    if statistic == "p95":
        out = filled.quantile(0.95, dim="time", method="higher").drop_vars("quantile")
        text = "95th percentile over time"
    else:
        out = getattr(filled, statistic)("time")
        text = f"{statistic} over time"
    return out.where(np.isfinite(out)), text


def _map_axes(fig: Figure, field: xr.DataArray, cmap: Any, vmin: float, vmax: float, label: str) -> Any:
    """Draw a (lat, lon) field with degree axes, equal ground scale at mid-latitude, and a colour bar."""
    ax = fig.add_subplot(1, 1, 1)
    lat = np.asarray(field["lat"].values, dtype=float)
    lon = np.asarray(field["lon"].values, dtype=float)
    z = np.ma.masked_invalid(np.asarray(field.transpose("lat", "lon").values, dtype=float))
    mesh = ax.pcolormesh(lon, lat, z, cmap=cmap, vmin=vmin, vmax=vmax, shading="nearest")
    ax.set_xlabel("longitude (deg E)")
    ax.set_ylabel("latitude (deg N)")
    ax.set_aspect(1.0 / max(np.cos(np.radians(np.clip(np.mean(lat), -80.0, 80.0))), 0.1))
    ax.grid(alpha=0.3, lw=0.5)
    cbar = fig.colorbar(
        mesh, ax=ax, shrink=0.9, extend="max" if np.nanmax(z.filled(np.nan)) > vmax else "neither"
    )
    cbar.set_label(label)
    return ax


def dop_map_figure(
    ds: xr.Dataset | xr.DataArray,
    variable: str = "pdop",
    statistic: str | int = "median",
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
) -> Figure:
    """Return a map (lat/lon in degrees) of a DOP or satellite count, reduced over time, with a colour bar.

    ``statistic`` is 'median', 'mean', 'max', 'min', 'p95' over time or an epoch index; cells without a
    solution are drawn grey. The colour range defaults to the field's own (2nd to 98th percentile for DOP,
    at most 50).
    """
    import matplotlib as mpl

    if isinstance(ds, xr.Dataset):
        if variable not in ds:
            raise InputError(f"variable {variable!r}: expected one of {', '.join(map(str, ds.data_vars))}")
        da, attrs = ds[variable], ds.attrs
    else:
        da, attrs = ds, ds.attrs
    if not {"lat", "lon"} <= set(da.dims):
        raise InputError(f"DOP map {variable!r}: expected dimensions lat and lon, got {da.dims}")
    field, how = _reduce_time(da, statistic)
    values = np.asarray(field.values, dtype=float)
    finite = values[np.isfinite(values)]
    if variable == "n_sats":
        cmap = mpl.colormaps["viridis"]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        vmin = vmin if vmin is not None else max(0.0, lo - 1.0)
        vmax = vmax if vmax is not None else max(hi, vmin + 1.0)
        label = f"satellites above the mask ({how})" if how else "satellites above the mask"
    else:
        cmap = mpl.colormaps["magma_r"]
        if vmin is None:
            vmin = float(np.floor(min(np.percentile(finite, 2.0), 49.0))) if finite.size else 0.0
        if vmax is None:
            vmax = float(np.clip(np.percentile(finite, 98.0), vmin + 1.0, 50.0)) if finite.size else 10.0
        label = f"{variable.upper()} ({how})" if how else variable.upper()
    cmap = cmap.with_extremes(bad="#bdbdbd")
    fig = _figure(7.0, 5.6)
    ax = _map_axes(fig, field, cmap, float(vmin), float(vmax), label)
    if title is None:
        sys_label = _systems_label(attrs.get("systems"))
        mask = attrs.get("elevation_mask_deg")
        title = f"{variable.upper() if variable != 'n_sats' else 'Satellites in view'}: {sys_label}"
        if mask is not None:
            title += f", mask {float(mask):g} deg"
    ax.set_title(title)
    return fig


def availability_map_figure(ds: xr.Dataset, pdop_max: float = 6.0, *, title: str | None = None) -> Figure:
    """Return a map (lat/lon in degrees) of the percentage of time with PDOP <= pdop_max and a colour bar."""
    import matplotlib as mpl

    if "pdop" not in ds or "time" not in ds["pdop"].dims:
        raise InputError("availability map: expected a Dataset with pdop on (time, lat, lon)")
    avail = 100.0 * (ds["pdop"] <= pdop_max).fillna(False).mean("time")
    fig = _figure(7.0, 5.6)
    cmap = mpl.colormaps["RdYlGn"]
    ax = _map_axes(fig, avail, cmap, 0.0, 100.0, f"availability (% of time with PDOP <= {pdop_max:g})")
    if title is None:
        title = f"Availability: {_systems_label(ds.attrs.get('systems'))}"
        mask = ds.attrs.get("elevation_mask_deg")
        if mask is not None:
            title += f", mask {float(mask):g} deg"
    ax.set_title(title)
    return fig


def dop_series_figure(
    df: pd.DataFrame,
    columns: Sequence[str] = ("gdop", "pdop", "hdop", "vdop"),
    *,
    title: str | None = None,
    log_y: bool | None = None,
) -> Figure:
    """Return DOP values against time (GPST) above the number of satellites in view, for one site."""
    need = {"time", "n_sats", *columns}
    if not need <= set(df.columns):
        raise InputError(f"DOP series: expected columns {sorted(need)}, got {list(df.columns)}")
    t = pd.to_datetime(df["time"]).to_numpy()
    fig = _figure(9.0, 5.5)
    ax, axn = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top = 0.0
    for name in columns:
        y = df[name].to_numpy(dtype=float)
        ax.plot(t, y, lw=1.2, color=_DOP_COLOURS.get(name), label=name.upper())
        if np.isfinite(y).any():
            top = max(top, float(np.nanmax(y)))
    if log_y is None:
        log_y = top > 20.0
    if log_y:
        ax.set_yscale("log")
    ax.set_ylabel("DOP")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", ncols=len(columns), fontsize=8)
    axn.step(t, df["n_sats"].to_numpy(), where="mid", color="#333333", lw=1.0)
    axn.set_ylabel("satellites")
    axn.set_xlabel("time (GPST)")
    axn.grid(alpha=0.3)
    if title is None:
        sys_label = _systems_label(df.attrs.get("systems"))
        title = f"DOP over time{': ' + sys_label if sys_label else ''}"
        if "lat_deg" in df.attrs:
            title += f" at {df.attrs['lat_deg']:.2f} N, {df.attrs['lon_deg']:.2f} E"
    ax.set_title(title)
    fig.autofmt_xdate()
    return fig


def sky_plot_figure(
    tracks: pd.DataFrame,
    *,
    title: str | None = None,
    elev_mask_deg: float | None = None,
    label_tracks: bool = True,
) -> Figure:
    """Return a polar sky plot of satellite tracks: azimuth clockwise from north, elevation 90 deg at centre.

    ``tracks`` has columns sv, az_deg, el_deg (and optionally time); a track breaks where a satellite's
    samples are not consecutive in time. Colours say the constellation.
    """
    if not {"sv", "az_deg", "el_deg"} <= set(tracks.columns):
        raise InputError(f"sky plot: expected columns sv, az_deg, el_deg, got {list(tracks.columns)}")
    fig = _figure(6.5, 6.5)
    ax = fig.add_subplot(1, 1, 1, projection="polar")
    ax.set_theta_zero_location("N")
    ax.set_theta_direction(-1)
    ax.set_rlim(0.0, 90.0)
    ax.set_rticks([0, 15, 30, 45, 60, 75, 90], labels=["90", "75", "60", "45", "30", "15", "0"])
    ax.set_rlabel_position(135)
    ax.set_xticks(np.radians(np.arange(0, 360, 45)), labels=["N", "NE", "E", "SE", "S", "SW", "W", "NW"])
    if elev_mask_deg is not None and elev_mask_deg > 0:
        th = np.linspace(0.0, 2.0 * np.pi, 361)
        ax.fill_between(th, 90.0 - elev_mask_deg, 90.0, color="#dddddd", zorder=0)
    seen: set[str] = set()
    has_time = "time" in tracks.columns
    step = None
    if has_time and len(tracks) > 1:
        dt = np.diff(pd.to_datetime(tracks["time"]).to_numpy().astype("datetime64[ns]").astype(np.int64))
        dt = dt[dt > 0]
        step = float(np.min(dt)) if dt.size else None
    for sv, grp in tracks.groupby("sv", sort=True):
        sv = str(sv)
        if has_time:
            grp = grp.sort_values("time")
        az = np.radians(grp["az_deg"].to_numpy(dtype=float))
        r = 90.0 - grp["el_deg"].to_numpy(dtype=float)
        brk = np.zeros(az.size, dtype=bool)
        if has_time and step is not None and az.size > 1:
            tt = pd.to_datetime(grp["time"]).to_numpy().astype("datetime64[ns]").astype(np.int64)
            brk[1:] = np.diff(tt) > 1.5 * step
        # unwrap azimuth within each piece so that lines do not sweep around the pole at north
        pieces = np.split(np.arange(az.size), np.nonzero(brk)[0])
        colour = SYSTEM_COLOURS.get(sv[:1], "#444444")
        sys_name = SYSTEM_NAMES.get(sv[:1], sv[:1])
        for idx in pieces:
            if idx.size == 0:
                continue
            label = sys_name if sys_name not in seen else None
            seen.add(sys_name)
            ax.plot(np.unwrap(az[idx]), r[idx], color=colour, lw=1.4, label=label)
        ax.plot(az[-1], r[-1], "o", ms=4, color=colour)
        if label_tracks:
            ax.annotate(sv, (az[-1], r[-1]), xytext=(3, 3), textcoords="offset points", fontsize=7)
    if seen:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    ax.set_title(title or "Sky plot (azimuth, elevation in degrees)")
    return fig


def _horizontal_percentiles(east_m: np.ndarray, north_m: np.ndarray) -> tuple[float, float]:
    """Return the 50th and 95th percentile of horizontal error in metres."""
    h = np.hypot(east_m, north_m)
    h = h[np.isfinite(h)]
    if h.size == 0:
        raise InputError("horizontal errors: expected at least one finite east/north pair")
    return float(np.percentile(h, 50.0)), float(np.percentile(h, 95.0))


def horizontal_error_figure(east_m: ArrayLike, north_m: ArrayLike, *, title: str | None = None) -> Figure:
    """Return a scatter of horizontal position errors (east, north in m) with 50 % and 95 % circles."""
    from matplotlib.patches import Circle

    e = np.asarray(east_m, dtype=float).ravel()
    n = np.asarray(north_m, dtype=float).ravel()
    if e.shape != n.shape:
        raise InputError(f"horizontal errors: east {e.shape} and north {n.shape} must have the same length")
    r50, r95 = _horizontal_percentiles(e, n)
    fig = _figure(6.0, 6.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(e, n, s=6, alpha=0.6, color="#1f77b4", label=f"{np.isfinite(e + n).sum()} epochs")
    ax.add_patch(Circle((0, 0), r50, fill=False, color="#2ca02c", lw=1.5, label=f"50 %: {r50:.2f} m"))
    ax.add_patch(
        Circle((0, 0), r95, fill=False, color="#d62728", lw=1.5, ls="--", label=f"95 %: {r95:.2f} m")
    )
    ok = np.isfinite(e + n)
    lim = 1.1 * max(r95, float(np.max(np.abs(np.concatenate([e[ok], n[ok]])))) if ok.any() else r95)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.axhline(0.0, color="#888888", lw=0.6)
    ax.axvline(0.0, color="#888888", lw=0.6)
    ax.set_xlabel("east error (m)")
    ax.set_ylabel("north error (m)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title or "Horizontal position error")
    return fig


def error_time_figure(time: ArrayLike, enu_error_m: ArrayLike, *, title: str | None = None) -> Figure:
    """Return east, north and up position errors (m) against time (GPST) on three stacked axes."""
    t = np.asarray(time)
    if np.issubdtype(t.dtype, np.datetime64) or t.dtype == object:
        t = pd.to_datetime(t).to_numpy()
        xlabel = "time (GPST)"
    else:
        t = t.astype(float)
        xlabel = "time (s)"
    err = np.asarray(enu_error_m, dtype=float)
    if err.ndim != 2 or err.shape[1] != 3 or err.shape[0] != t.shape[0]:
        raise InputError(f"ENU errors: expected shape ({t.shape[0]}, 3), got {err.shape}")
    fig = _figure(9.0, 7.0)
    axes = fig.subplots(3, 1, sharex=True)
    for k, (ax, name, colour) in enumerate(
        zip(axes, ("east", "north", "up"), ("#1f77b4", "#2ca02c", "#d62728"), strict=True)
    ):
        y = err[:, k]
        ok = np.isfinite(y)
        rms = float(np.sqrt(np.mean(y[ok] ** 2))) if ok.any() else float("nan")
        ax.plot(t, y, lw=0.9, color=colour, label=f"RMS {rms:.2f} m")
        ax.axhline(0.0, color="#888888", lw=0.6)
        ax.set_ylabel(f"{name} error (m)")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel(xlabel)
    axes[0].set_title(title or "Position error (east, north, up)")
    if xlabel.startswith("time (GPST"):
        fig.autofmt_xdate()
    return fig
