"""Tables, figures and the report of a landing run and of a Monte Carlo campaign."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from kizuna.core.io import output_dir, write_csv, write_json, write_parquet, write_png  # noqa: E402
from kizuna.core.report import Report  # noqa: E402
from kizuna.lunar.nav.descent import LandingResult  # noqa: E402
from kizuna.lunar.nav.terrain import Grid, Terrain  # noqa: E402

__all__ = ["fixes_table", "write_landing_outputs", "write_campaign_outputs"]


def fixes_table(result: LandingResult) -> pd.DataFrame:
    """Return one row per attempted fix (SI units; errors in frame L)."""
    rows = []
    for f in result.fixes:
        rows.append(
            {
                "t_s": f.t_s,
                "altitude_m": f.altitude_m,
                "gsd_m": f.gsd_m,
                "n_detected": f.n_detected,
                "n_mapped": f.n_mapped,
                "n_matched": f.n_matched,
                "status": f.status,
                "reason": f.reason,
                "nis": f.nis,
                "error_x_m": f.error_l_m[0],
                "error_y_m": f.error_l_m[1],
                "error_z_m": f.error_l_m[2],
                "error_m": f.error_m,
                "error_gsd": f.error_m / f.gsd_m if f.gsd_m else np.nan,
                "error_true_att_m": f.error_true_att_m,
                "error_true_att_gsd": f.error_true_att_m / f.gsd_m if f.gsd_m else np.nan,
                "sigma_x_m": f.sigma_l_m[0],
                "sigma_y_m": f.sigma_l_m[1],
                "sigma_z_m": f.sigma_l_m[2],
                "latency_s": f.latency_s,
                "method": f.method,
                "work_gsd_m": f.work_gsd_m,
            }
        )
    return pd.DataFrame(rows)


def _error_figure(est: pd.DataFrame, fixes: pd.DataFrame) -> Figure:
    fig, axes = plt.subplots(3, 1, figsize=(9, 7.5), sharex=True)
    t = est["t_s"].to_numpy()
    for ax, a in zip(axes, "xyz", strict=True):
        err = est[f"est_{a}_m"] - est[f"true_{a}_m"]
        s3 = 3.0 * est[f"sigma_{a}_m"]
        ax.fill_between(t, -s3, s3, color="#9ecae1", alpha=0.6, label="filter 3-sigma")
        ax.plot(t, err, color="#08519c", lw=1.2, label="navigation error")
        ok = fixes[fixes.status == "accepted"]
        for tt in ok.t_s:
            ax.axvline(tt, color="#31a354", lw=0.6, alpha=0.6)
        for tt in fixes[fixes.status != "accepted"].t_s:
            ax.axvline(tt, color="#de2d26", lw=0.8, ls="--")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylabel(f"{a} error (m)")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel(
        "time since powered descent start (s); green: accepted fix, red dashed: none/rejected"
    )
    fig.suptitle("Position error (estimate - truth) with the filter's 3-sigma envelope")
    fig.tight_layout()
    return fig


def _ground_track_figure(result: LandingResult) -> Figure:
    tr = result.truth
    terrain = Terrain(result.scenario.terrain)
    x0, x1 = tr.r_l[:, 0].min() - 4000.0, tr.r_l[:, 0].max() + 4000.0
    y0, y1 = tr.r_l[:, 1].min() - 4000.0, tr.r_l[:, 1].max() + 4000.0
    dx = max((x1 - x0) / 1200.0, 10.0)
    grid = Grid.covering(x0, x1, y0, y1, dx)
    h = terrain.relief_grid(grid)
    gy, gx = np.gradient(h, dx)
    az_deg, el_deg = result.scenario.sun_azel_deg()
    az, el = np.radians(az_deg), np.radians(el_deg)
    shade = -(gx * np.sin(az) + gy * np.cos(az)) * np.cos(el)  # slope toward the Sun, lit brighter
    fig, ax = plt.subplots(figsize=(10, 4.2))
    ax.imshow(
        shade, cmap="gray", origin="lower", extent=(x0 / 1e3, x1 / 1e3, y0 / 1e3, y1 / 1e3), aspect="equal"
    )
    est = result.estimate
    ax.plot(tr.r_l[:, 0] / 1e3, tr.r_l[:, 1] / 1e3, color="#fdae6b", lw=2, label="true track")
    ax.plot(est.est_x_m / 1e3, est.est_y_m / 1e3, color="#3182bd", lw=1, ls="--", label="estimated track")
    ft = fixes_table(result)
    if len(ft):
        idx = [tr.index_at(t) for t in ft.t_s]
        ok = (ft.status == "accepted").to_numpy()
        ax.scatter(
            tr.r_l[idx, 0][ok] / 1e3, tr.r_l[idx, 1][ok] / 1e3, s=25, c="#31a354", label="fix", zorder=3
        )
        ax.scatter(
            tr.r_l[idx, 0][~ok] / 1e3, tr.r_l[idx, 1][~ok] / 1e3, s=30, c="#de2d26", marker="x", zorder=3
        )
    ax.plot([0], [0], marker="*", ms=14, color="#e6550d", ls="none", label="target")
    ax.set_xlabel("east of target (km)")
    ax.set_ylabel("north (km)")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Ground track over the synthetic terrain (hill-shaded)")
    fig.tight_layout()
    return fig


def _frame_figure(frame: Any, outcome: Any, title: str) -> Figure:
    fig, ax = plt.subplots(figsize=(6.4, 6.4))
    ax.imshow(frame.image, cmap="gray", vmin=0, vmax=1)
    det = outcome.detections
    th = np.linspace(0, 2 * np.pi, 48)
    for x, y, r in det[["x_px", "y_px", "a_px"]].to_numpy():
        ax.plot(x + r * np.cos(th), y + r * np.sin(th), color="#fec44f", lw=0.5, alpha=0.7)
    if outcome.pose is not None and len(outcome.map_idx):
        cm = outcome.map_craters.iloc[outcome.map_idx]
        uv = frame.camera.project(cm[["x_m", "y_m", "z_m"]].to_numpy(), outcome.pose.R_cw, outcome.pose.p_w)
        ax.plot(uv[:, 0], uv[:, 1], "+", color="#e31a1c", ms=6, mew=1.0)
    ax.set_xlim(-0.5, frame.camera.width - 0.5)
    ax.set_ylim(frame.camera.height - 0.5, -0.5)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    fig.tight_layout()
    return fig


def _fix_error_figure(fixes: pd.DataFrame) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ok = fixes[fixes.status == "accepted"]
    corr = ok.method == "correlation" if "method" in ok else np.zeros(len(ok), bool)
    ax.semilogx(
        ok.altitude_m, ok.error_true_att_gsd, "o", color="#3182bd", label="accepted fix, true attitude"
    )
    ax.semilogx(ok.altitude_m, ok.error_gsd, ".", color="#9ecae1", label="accepted fix, onboard attitude")
    if np.any(corr):
        ax.semilogx(ok.altitude_m[corr], ok.error_gsd[corr], "s", mfc="none", color="#e6550d", ms=7,
                    label="correlation fix (map image)")  # fmt: skip
    bad = fixes[fixes.status == "rejected"]
    if len(bad):
        ax.semilogx(bad.altitude_m, bad.error_gsd, "x", color="#de2d26", label="rejected fix")
    ax.axhline(1.0, color="gray", ls=":", lw=1)
    ax.set_xlabel("altitude above target (m)")
    ax.set_ylabel("fix error (ground pixels)")
    ax.invert_xaxis()
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def _scenario_table(result: LandingResult) -> dict[str, Any]:
    sc = result.scenario
    flat: dict[str, Any] = {}
    for f in dataclasses.fields(sc):
        v = getattr(sc, f.name)
        if dataclasses.is_dataclass(v):
            for g in dataclasses.fields(v):
                flat[f"{f.name}.{g.name}"] = getattr(v, g.name)
        else:
            flat[f.name] = v
    return flat


def write_landing_outputs(result: LandingResult, out: str | Path) -> dict[str, Any]:
    """Write summary.json, trajectory and fix tables, figures and report.html into the folder ``out``.

    The folder appears whole or not at all. Returns the summary.
    """
    summary = result.summary()
    fixes = fixes_table(result)
    est = result.estimate
    figs = {
        "position_error.png": _error_figure(est, fixes),
        "ground_track.png": _ground_track_figure(result),
        "fix_errors.png": _fix_error_figure(fixes),
    }
    for i, (frame, outcome) in enumerate(result.frames):
        alt = frame.p_w[2] - result.truth.target_l[2]
        n = outcome.n_matched
        title = (
            f"frame at {alt:,.0f} m: {len(outcome.detections)} detections (yellow), "
            f"{n} matched map craters (red +)"
        )
        figs[f"frame_{i + 1}.png"] = _frame_figure(frame, outcome, title)
    with output_dir(out) as tmp:
        write_json(tmp / "summary.json", summary)
        write_parquet(tmp / "trajectory.parquet", est)
        write_csv(tmp / "trajectory.csv", est)
        write_csv(tmp / "fixes.csv", fixes)
        for name, fig in figs.items():
            write_png(tmp / name, fig, dpi=110)
        rep = Report("kizuna: crater-matching landing navigation")
        rep.add_text(
            "One simulated SLIM-like powered descent from 15 km to a 50 m hover over the target, "
            "navigated by an error-state Kalman filter fusing IMU, altimeter and crater-matching fixes; "
            "in the polar scenario, where the crater fix fails (low Sun), the image is matched against a map "
            "image rendered from the onboard DEM (correlation fix)."
        )
        rep.add_key_figures(
            {
                "final position error": f"{summary['final_position_error_m']:.2f} m",
                "final altitude": f"{summary['final_altitude_m']:.1f} m",
                "fixes accepted": f"{summary['fixes_accepted']} / {summary['fixes_attempted']}",
                "false fixes": summary["false_fixes"],
                "accepted by method": f"{summary['fixes_accepted_craters']} craters, "
                f"{summary['fixes_accepted_correlation']} correlation",
                "median fix latency": f"{summary['median_fix_latency_s']:.2f} s",
                "run time": f"{summary['runtime_s']:.0f} s",
            }
        )
        rep.add_heading("Navigation error")
        rep.add_figure(figs["position_error.png"])
        rep.add_heading("Ground track")
        rep.add_figure(figs["ground_track.png"])
        rep.add_heading("Image fixes")
        rep.add_figure(
            figs["fix_errors.png"],
            caption="Fix position error in ground pixels of each image, given the true attitude (the fix's "
            "own accuracy) and given the onboard attitude (what the filter receives).",
        )
        for i in range(len(result.frames)):
            rep.add_figure(figs[f"frame_{i + 1}.png"])
        rep.add_table(
            fixes.round(3), caption="Every attempted fix (errors in frame L: x east, y north, z up)"
        )
        rep.add_heading("Summary")
        rep.add_table(summary)
        rep.add_heading("Scenario")
        rep.add_table(_scenario_table(result))
        rep.write(tmp / "report.html")
    for fig in figs.values():
        plt.close(fig)
    return summary


def write_campaign_outputs(runs: pd.DataFrame, fixes: pd.DataFrame, summary: dict, out: str | Path) -> None:
    """Write a campaign folder: summary.json, runs.parquet, fixes.parquet, figures and report.html."""
    figs: dict[str, Figure] = {}
    fig, ax = plt.subplots(figsize=(7, 3.6))
    e = np.sort(runs.final_position_error_m.to_numpy())
    ax.plot(e, (np.arange(e.size) + 1) / e.size, drawstyle="steps-post", color="#08519c")
    ax.axvline(summary["final_position_error_m_median"], color="gray", ls=":", label="median")
    ax.axvline(summary["final_position_error_m_p95"], color="#de2d26", ls="--", label="95th percentile")
    ax.set_xscale("log")
    ax.set_xlabel("final position error at the hover (m)")
    ax.set_ylabel("fraction of runs")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    figs["final_error_cdf.png"] = fig
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.scatter(runs.sun_elevation_deg, runs.final_position_error_m, s=12, c="#3182bd")
    ax.set_yscale("log")
    ax.set_xlabel("Sun elevation (deg)")
    ax.set_ylabel("final position error (m)")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    figs["error_vs_sun.png"] = fig
    with output_dir(out) as tmp:
        write_json(tmp / "summary.json", summary)
        write_parquet(tmp / "runs.parquet", runs)
        write_parquet(tmp / "fixes.parquet", fixes)
        write_csv(tmp / "runs.csv", runs)
        for name, f in figs.items():
            write_png(tmp / name, f, dpi=110)
        rep = Report("kizuna: landing navigation Monte Carlo campaign")
        rep.add_key_figures(
            {
                "runs": summary["runs"],
                "median final error": f"{summary['final_position_error_m_median']:.2f} m",
                "95th percentile": f"{summary['final_position_error_m_p95']:.2f} m",
                "false fixes": summary["false_fixes"],
                "fix availability": f"{100 * summary['fix_availability']:.1f} %",
                **(
                    {
                        "accepted by method": f"{summary['fixes_accepted_craters']} craters, "
                        f"{summary['fixes_accepted_correlation']} correlation"
                    }
                    if "fixes_accepted_craters" in summary
                    else {}
                ),
            }
        )
        for name in figs:
            rep.add_figure(figs[name])
        rep.add_heading("Summary")
        rep.add_table(summary)
        rep.add_heading("Runs")
        rep.add_table(runs.round(3))
        rep.write(tmp / "report.html")
    for f in figs.values():
        plt.close(f)
