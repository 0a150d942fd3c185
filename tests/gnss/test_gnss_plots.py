"""Tests of kizuna.gnss.plots: each figure has the axes, labels and marks it should, and saves a PNG that
carries an actual picture."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.figure import Figure

from kizuna.errors import InputError
from kizuna.gnss import plots


def _png_colours(fig: Figure, path) -> int:
    """Save fig as PNG and return the number of distinct RGB colours in the file."""
    fig.savefig(path, dpi=50)
    assert path.stat().st_size > 5_000
    rgb = (mpimg.imread(path)[..., :3] * 255).round().astype(np.uint32)
    return len(np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]))


def _map_dataset() -> xr.Dataset:
    time = np.datetime64("2023-03-12T00:00", "ns") + np.arange(3) * np.timedelta64(3600, "s")
    lat = np.arange(5.0, 41.0, 5.0)
    lon = np.arange(65.0, 101.0, 5.0)
    t, la, lo = np.meshgrid(np.arange(3), lat, lon, indexing="ij")
    pdop = 1.5 + 0.1 * (la - 5.0) + 0.05 * (lo - 65.0) + 0.3 * t
    pdop[:, 0, 0] = np.nan  # a cell without a solution
    nsat = (4 + (lo - 65.0) // 10).astype(np.int16)
    dims = ("time", "lat", "lon")
    return xr.Dataset(
        {"pdop": (dims, pdop), "hdop": (dims, 0.6 * pdop), "n_sats": (dims, nsat)},
        coords={"time": time, "lat": lat, "lon": lon},
        attrs={"systems": "GJI", "elevation_mask_deg": 10.0},
    )


def test_dop_map_figure(tmp_path):
    ds = _map_dataset()
    fig = plots.dop_map_figure(ds, "pdop", "median")
    assert isinstance(fig, Figure)
    ax, cax = fig.axes  # the map and its colour bar
    assert ax.get_xlabel() == "longitude (deg E)" and ax.get_ylabel() == "latitude (deg N)"
    assert cax.get_ylabel() == "PDOP (median over time)"
    assert "GPS+QZSS+NavIC" in ax.get_title() and "10 deg" in ax.get_title()
    assert ax.get_xlim()[0] <= 65.0 and ax.get_xlim()[1] >= 100.0
    assert _png_colours(fig, tmp_path / "pdop.png") > 50
    one = plots.dop_map_figure(ds, "n_sats", 1)
    assert "2023-03-12T01:00" in one.axes[1].get_ylabel()
    with pytest.raises(InputError, match="variable"):
        plots.dop_map_figure(ds, "xdop")
    with pytest.raises(InputError, match="statistic"):
        plots.dop_map_figure(ds, "pdop", "mode")


def test_availability_map_figure(tmp_path):
    ds = _map_dataset()
    fig = plots.availability_map_figure(ds, pdop_max=4.0)
    ax, cax = fig.axes
    assert cax.get_ylabel() == "availability (% of time with PDOP <= 4)"
    assert cax.get_ylim() == pytest.approx((0.0, 100.0))
    # the drawn values: PDOP 1.5 + 0.1 (lat - 5) + 0.05 (lon - 65) + 0.3 t <= 4 at the 3 epochs t = 0, 1, 2
    mesh = ax.collections[0].get_array().reshape(8, 8)
    assert mesh[1, 1] == pytest.approx(100.0)  # 10 N, 70 E: 2.25 at t = 0 to 2.85 at t = 2
    assert mesh[7, 7] == pytest.approx(0.0)  # 40 N, 100 E: 6.75 at t = 0
    assert mesh[3, 2] == pytest.approx(100.0 * 2 / 3)  # 20 N, 75 E: 3.5, 3.8, then 4.1 at t = 2 fails
    assert _png_colours(fig, tmp_path / "avail.png") > 20


def test_dop_series_figure(tmp_path):
    t = np.datetime64("2023-03-12T00:00", "ns") + np.arange(48) * np.timedelta64(1800, "s")
    x = np.linspace(0.0, 2.0 * np.pi, 48)
    df = pd.DataFrame(
        {
            "time": t,
            "n_sats": (8 + 2 * np.sin(x)).astype(int),
            "gdop": 2.0 + np.cos(x),
            "pdop": 1.8 + np.cos(x),
            "hdop": 1.0 + 0.5 * np.cos(x),
            "vdop": 1.5 + 0.8 * np.cos(x),
        }
    )
    fig = plots.dop_series_figure(df)
    ax, axn = fig.axes
    assert [line.get_label() for line in ax.get_lines()] == ["GDOP", "PDOP", "HDOP", "VDOP"]
    assert ax.get_ylabel() == "DOP" and axn.get_ylabel() == "satellites" and axn.get_xlabel() == "time (GPST)"
    assert ax.get_yscale() == "linear"
    assert _png_colours(fig, tmp_path / "series.png") > 20
    df.loc[3, "pdop"] = 400.0
    assert plots.dop_series_figure(df).axes[0].get_yscale() == "log"
    with pytest.raises(InputError, match="columns"):
        plots.dop_series_figure(df.drop(columns="n_sats"))


def test_sky_plot_figure(tmp_path):
    t = np.datetime64("2023-03-12T00:00", "ns") + np.arange(20) * np.timedelta64(300, "s")
    rows = []
    for k, sv in enumerate(["G05", "J03", "I02"]):
        az = (340.0 + 3.0 * np.arange(20) + 40 * k) % 360.0  # G05 crosses north
        el = 20.0 + 2.0 * np.arange(20) + 10 * k
        keep = np.ones(20, bool)
        if sv == "J03":
            keep[8:12] = False  # a gap: the track breaks into two pieces
        rows.append(pd.DataFrame({"time": t[keep], "sv": sv, "az_deg": az[keep], "el_deg": el[keep]}))
    tracks = pd.concat(rows, ignore_index=True)
    fig = plots.sky_plot_figure(tracks, elev_mask_deg=10.0)
    (ax,) = fig.axes
    assert ax.name == "polar"
    assert [t.get_text() for t in ax.get_xticklabels()][:3] == ["N", "NE", "E"]
    assert ax.get_theta_direction() == -1 and ax.get_theta_offset() == pytest.approx(np.pi / 2)
    lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
    assert len(lines) == 4  # G05, I02, and J03 in two pieces
    # north crossing unwrapped: no jump of more than 10 degrees between samples 5 min apart
    g05 = lines[0].get_xdata()
    assert np.max(np.abs(np.diff(g05))) < np.radians(10.0)
    # radius is 90 - elevation: the first G05 sample at 20 deg elevation sits at r = 70
    assert lines[0].get_ydata()[0] == pytest.approx(70.0)
    assert {t.get_text() for t in ax.texts} == {"G05", "J03", "I02"}
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"GPS", "QZSS", "NavIC"}
    assert _png_colours(fig, tmp_path / "sky.png") > 20


def test_horizontal_error_figure(tmp_path):
    # errors on a ring of radius 1 m (first 90) and radius 3 m (last 10): the horizontal error's 50th
    # percentile is 1 m, and numpy's linear 95th percentile of 90 ones and 10 threes is 3 m
    ang = np.linspace(0.0, 2.0 * np.pi, 100, endpoint=False)
    rad = np.r_[np.ones(90), 3.0 * np.ones(10)]
    fig = plots.horizontal_error_figure(rad * np.cos(ang), rad * np.sin(ang))
    (ax,) = fig.axes
    assert ax.get_xlabel() == "east error (m)" and ax.get_ylabel() == "north error (m)"
    circles = [p for p in ax.patches if hasattr(p, "get_radius")]
    assert sorted(c.get_radius() for c in circles) == pytest.approx([1.0, 3.0])
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {"50 %: 1.00 m", "95 %: 3.00 m"}
    assert ax.get_xlim()[1] >= 3.0
    assert _png_colours(fig, tmp_path / "hscatter.png") > 20
    with pytest.raises(InputError, match="same length"):
        plots.horizontal_error_figure([1.0, 2.0], [1.0])


def test_error_time_figure(tmp_path):
    t = np.datetime64("2023-03-12T00:00", "ns") + np.arange(100) * np.timedelta64(30, "s")
    err = np.column_stack([np.full(100, 3.0), np.full(100, -4.0), np.sin(np.linspace(0, 6, 100))])
    fig = plots.error_time_figure(t, err)
    axes = fig.axes
    assert [a.get_ylabel() for a in axes] == ["east error (m)", "north error (m)", "up error (m)"]
    assert axes[-1].get_xlabel() == "time (GPST)"
    # RMS of a constant 3 m and -4 m
    assert axes[0].get_legend().get_texts()[0].get_text() == "RMS 3.00 m"
    assert axes[1].get_legend().get_texts()[0].get_text() == "RMS 4.00 m"
    assert _png_colours(fig, tmp_path / "enu.png") > 20
    with pytest.raises(InputError, match="ENU errors"):
        plots.error_time_figure(t, err[:, :2])
