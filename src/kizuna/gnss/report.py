"""Output folders of the gnss commands: the position solution as CSV, Parquet and NMEA, the residuals,
``summary.json``, figures and a self-contained ``report.html``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt

from kizuna.core.geodesy import ecef_to_enu, ecef_to_geodetic
from kizuna.core.io import atomic_write, png_bytes, write_csv, write_json, write_parquet
from kizuna.core.report import Report
from kizuna.gnss.gtime import gpst_to_datetime64
from kizuna.gnss.nmea import gga_sentences
from kizuna.gnss.plots import dop_series_figure, error_time_figure, horizontal_error_figure, sky_plot_figure
from kizuna.gnss.rinex_nav import NavData
from kizuna.gnss.rinex_obs import ObsData
from kizuna.gnss.spp import SppResult, accuracy, solution_table

__all__ = ["spp_summary", "write_spp_outputs"]


def _median(x: np.ndarray) -> float | None:
    """Return the median of the finite values, or None when there are none."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else None


def spp_summary(
    obs: ObsData, nav: NavData, result: SppResult, truth: np.ndarray | None = None
) -> dict[str, Any]:
    """Return the summary of a positioning run: counts, mean position (ECEF m, geodetic), DOPs, options and,
    with a truth position, h95_m, v95_m, rms3d_m, h50_m and the mean east/north/up error (m)."""
    ok = result.solved
    mean = result.pos_ecef_m[ok].mean(axis=0)
    lat, lon, h = ecef_to_geodetic(mean)
    used_sats = result.sats[result.used.any(axis=0)]
    opt = result.options
    summary: dict[str, Any] = {
        "obs_file": str(obs.path),
        "nav_files": [str(p) for p in getattr(nav, "paths", ())],
        "epochs": int(len(result.t_gpst)),
        "solved": int(ok.sum()),
        "solved_after_exclusion": int((result.status == 2).sum()),
        "unsolved": int((~ok).sum()),
        "first_epoch_gpst": str(gpst_to_datetime64(result.t_gpst[0])),
        "last_epoch_gpst": str(gpst_to_datetime64(result.t_gpst[-1])),
        "mean_ecef_m": [float(v) for v in mean],
        "mean_lat_deg": float(np.degrees(lat)),
        "mean_lon_deg": float(np.degrees(lon)),
        "mean_height_m": float(h),
        "systems_requested": opt.systems,
        "systems_used": "".join(s for s in "GREJCI" if any(sv[0] == s for sv in used_sats)),
        "satellites_used": sorted(str(s) for s in used_sats),
        "median_n_sats": _median(np.where(ok, result.n_sats, np.nan)),
        "median_pdop": _median(result.pdop),
        "median_hdop": _median(result.hdop),
        "median_vdop": _median(result.vdop),
        "elev_mask_deg": opt.elev_mask_deg,
        "iono_model": result.iono_model,
        "tropo_model": opt.tropo,
        "raim": opt.raim,
        "galileo_nav": opt.galileo_nav,
        "frame": "ECEF (broadcast frames: WGS84 / ITRF)",
        "time_system": "GPST",
        "obs_problems": len(obs.problems),
        "nav_problems": len(getattr(nav, "problems", ())),
    }
    reasons = pd.Series([r for r in result.reason if r])
    summary["unsolved_reasons"] = (
        {str(k): int(v) for k, v in reasons.value_counts().items()} if len(reasons) else {}
    )
    if truth is not None:
        summary["truth_ecef_m"] = [float(v) for v in truth]
        summary.update(accuracy(result, truth))
    return summary


def _enu_errors(result: SppResult, reference: np.ndarray) -> np.ndarray:
    """Return east/north/up errors (E, 3) in m of every epoch against a reference ECEF position."""
    lat, lon, _ = ecef_to_geodetic(reference)
    return ecef_to_enu(result.pos_ecef_m - reference, lat, lon)


def _residual_table(result: SppResult) -> pd.DataFrame:
    """Return one row per used satellite and epoch: time, sv, azimuth/elevation (deg), residual (m)."""
    ei, si = np.nonzero(result.used)
    return pd.DataFrame(
        {
            "time_gpst": gpst_to_datetime64(result.t_gpst[ei]),
            "sv": result.sats[si].astype(str),
            "az_deg": np.degrees(result.az_rad[ei, si]),
            "el_deg": np.degrees(result.el_rad[ei, si]),
            "residual_m": result.residual_m[ei, si],
        }
    )


def _sky_tracks(result: SppResult) -> pd.DataFrame:
    """Return satellite tracks (sv, az_deg, el_deg, time) above the horizon, at most ~600 samples each."""
    step = max(1, len(result.t_gpst) // 600)
    el = result.el_rad[::step]
    az = result.az_rad[::step]
    ei, si = np.nonzero(np.isfinite(el) & (el > 0))
    return pd.DataFrame(
        {
            "sv": result.sats[si].astype(str),
            "az_deg": np.degrees(az[ei, si]),
            "el_deg": np.degrees(el[ei, si]),
            "time": gpst_to_datetime64(result.t_gpst[::step][ei]),
        }
    )


def write_spp_outputs(
    folder: Path, obs: ObsData, nav: NavData, result: SppResult, truth: np.ndarray | None = None
) -> dict[str, Any]:
    """Write a positioning run into ``folder`` (solution.csv/.parquet/.nmea, residuals.parquet, summary.json,
    PNG figures, report.html); return the summary."""
    folder = Path(folder)
    summary = spp_summary(obs, nav, result, truth)
    table = solution_table(result)
    reference = truth if truth is not None else np.asarray(summary["mean_ecef_m"])
    enu = _enu_errors(result, reference)
    for k, name in enumerate(("east_m", "north_m", "up_m")):
        table[f"{'err' if truth is not None else 'dev'}_{name}"] = enu[:, k]
    write_csv(folder / "solution.csv", table)
    write_parquet(folder / "solution.parquet", table)
    lines = gga_sentences(
        result.t_gpst, table["lat_deg"], table["lon_deg"], table["height_m"], result.n_sats, result.hdop
    )
    atomic_write(folder / "solution.nmea", "\r\n".join(lines) + "\r\n")
    write_parquet(folder / "residuals.parquet", _residual_table(result))
    write_json(folder / "summary.json", summary)

    what = "error" if truth is not None else "deviation from the mean position"
    ok = result.solved
    figs = {
        "horizontal.png": (
            horizontal_error_figure(
                enu[ok, 0], enu[ok, 1], title=f"Horizontal {what} ({summary['systems_used']})"
            ),
            f"Horizontal {what}: east and north (m), with the 50 % and 95 % circles.",
        ),
        "error_time.png": (
            error_time_figure(table["time_gpst"].to_numpy(), enu, title=f"Position {what} against time"),
            f"East, north and up {what} (m) against GPS time.",
        ),
        "dop.png": (
            dop_series_figure(
                pd.DataFrame(
                    {
                        "time": table["time_gpst"],
                        "n_sats": result.n_sats,
                        "gdop": result.gdop,
                        "pdop": result.pdop,
                        "hdop": result.hdop,
                        "vdop": result.vdop,
                    }
                ),
                title=f"DOP of the satellites used ({summary['systems_used']})",
            ),
            "DOPs of the satellites used in each solution, and their number.",
        ),
        "sky.png": (
            sky_plot_figure(_sky_tracks(result), elev_mask_deg=result.options.elev_mask_deg),
            "Sky plot of the satellites with a pseudorange and an ephemeris.",
        ),
    }
    report = Report(f"Single-point positioning: {Path(obs.path).name}")
    keys = {
        "epochs solved": f"{summary['solved']} / {summary['epochs']}",
        "systems": summary["systems_used"],
        "median PDOP": summary["median_pdop"],
        "median satellites": summary["median_n_sats"],
    }
    if truth is not None:
        keys.update(
            {"h95 (m)": summary["h95_m"], "v95 (m)": summary["v95_m"], "3-D RMS (m)": summary["rms3d_m"]}
        )
    report.add_key_figures(keys)
    report.add_text(
        f"Observations {summary['obs_file']}; navigation {', '.join(summary['nav_files'])}. Elevation mask "
        f"{summary['elev_mask_deg']:g} deg, ionosphere {summary['iono_model']}, troposphere "
        f"{summary['tropo_model']}, RAIM {'on' if summary['raim'] else 'off'}. Positions are ECEF in the "
        "broadcast frames (WGS84/ITRF); times are GPS time."
    )
    for name, (fig, caption) in figs.items():
        png = png_bytes(fig, dpi=110)  # rendered once, for the file and for the report
        plt.close(fig)
        atomic_write(folder / name, png)
        report.add_figure(png, caption)
    report.add_table(
        {k: v for k, v in summary.items() if not isinstance(v, list | dict)}, caption="summary.json"
    )
    if summary["unsolved_reasons"]:
        report.add_table(summary["unsolved_reasons"], caption="Epochs without a solution, by reason")
    report.write(folder / "report.html")
    return summary
