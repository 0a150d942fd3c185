"""The ``kizuna ssa`` commands: screen a catalogue for close approaches, convert element sets, and (from
:mod:`kizuna.ssa.cli_pc`) collision probability and conjunction data messages.

Each command reads its inputs, calls the library, writes its outputs (a folder replaced whole at the end, or
one file written atomically) and prints a one-line summary on stderr (not with ``kizuna --quiet``). Bad
records in a catalogue are skipped with one warning line each and counted in the summary; errors are
raised, and the top-level ``kizuna`` command turns :class:`kizuna.errors.InputError` into one line and exit
code 2.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kizuna.core.console import quiet_enabled, say
from kizuna.core.parallel import MODES
from kizuna.core.progress import progress_bar
from kizuna.errors import InputError
from kizuna.ssa.cli_pc import register as register_pc_commands

if TYPE_CHECKING:
    import pandas as pd

    from kizuna.ssa.elements import ElementProblem, ElementSet
    from kizuna.ssa.screen import ScreenResult

# The library modules (numpy, pandas, SGP4, scipy, matplotlib) are imported inside the functions, so that
# starting ``kizuna`` does not pay for them.

__all__ = ["app", "read_elements", "screen", "convert"]

app = typer.Typer(
    help="Space situational awareness: conjunction screening, collision probability, CCSDS messages.",
    no_args_is_help=True,
)

MAX_WARNINGS = 20  # element-set problems printed one per line; the rest are counted


def _is_omm(path: Path) -> bool:
    """Return True when a file holds CCSDS OMM (KVN, XML or JSON) rather than TLE/3LE lines."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the element-set file ({exc.strerror or exc})") from exc
    if head[:2] == b"\x1f\x8b":
        return False  # gzip: TLE files are the ones distributed compressed
    text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    return text[:1] in "<[{" or "CCSDS_OMM_VERS" in text


def read_elements(path: Path) -> tuple[list[ElementSet], list[ElementProblem]]:
    """Read element sets from a TLE/3LE or CCSDS OMM (KVN, XML, JSON) file; return them and the problems."""
    from kizuna.ssa.elements import read_tle
    from kizuna.ssa.omm import read_omm

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such element-set file (expected TLE/3LE or CCSDS OMM)")
    return read_omm(path) if _is_omm(path) else read_tle(path)


def _warn_problems(problems: list[ElementProblem]) -> None:
    """Print up to MAX_WARNINGS problems one per line, then how many more there were."""
    for p in problems[:MAX_WARNINGS]:
        where = f"{p.source}:{p.line}" if p.line else (p.source or "elements")
        obj = f" object {p.norad_id}" if p.norad_id is not None else ""
        name = f" ({p.name})" if p.name else ""
        say(f"kizuna: warning: {where}{obj}{name}: {p.field}: {p.message}")
    if len(problems) > MAX_WARNINGS:
        say(f"kizuna: warning: ... and {len(problems) - MAX_WARNINGS} more (see problems.csv)")


def _problems_table(problems: list[ElementProblem]) -> pd.DataFrame:
    """Return the problems as a table (one row each)."""
    import pandas as pd

    cols = ["source", "line", "norad_id", "name", "field", "message"]
    return pd.DataFrame([[getattr(p, c) for c in cols] for p in problems], columns=cols)


def _parse_ids(text: str | None) -> list[int] | None:
    """Parse a comma-separated list of catalogue numbers, or a file of them (one per line)."""
    if text is None:
        return None
    p = Path(text)
    raw = p.read_text().replace("\n", ",") if p.is_file() else text
    ids = []
    for tok in raw.split(","):
        tok = tok.strip()
        if not tok:
            continue
        try:
            ids.append(int(tok))
        except ValueError as exc:
            raise InputError(f"--primaries {tok!r}: expected catalogue numbers separated by commas") from exc
    if not ids:
        raise InputError("--primaries: no catalogue numbers given")
    return ids


def _events_per_day_figure(res: ScreenResult):
    """Bar chart of close approaches per UTC day, those under 1 km shown apart."""
    import matplotlib
    import numpy as np
    import pandas as pd

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ev = res.events
    days = pd.to_datetime(ev["tca_utc"]).dt.floor("D")
    allc = days.value_counts().sort_index()
    near = days[ev["miss_km"] < 1.0].value_counts().reindex(allc.index, fill_value=0)
    x = np.arange(len(allc))
    ax.bar(x, allc.values, color="#8fb3d9", label=f"< {res.threshold_km:g} km")
    ax.bar(x, near.values, color="#c0392b", label="< 1 km")
    ax.set_xticks(x, [d.strftime("%m-%d") for d in allc.index], rotation=0)
    ax.set_ylabel("close approaches per day")
    ax.set_title(f"{len(ev)} close approaches among {res.objects} objects")
    ax.legend()
    fig.tight_layout()
    return fig


def _miss_pc_figure(ev: pd.DataFrame, hbr_m: float):
    """Scatter of miss distance against the maximum Pc (Alfano) of every event."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    co = ev["flags"].str.contains("co-located")
    ax.scatter(ev.loc[~co, "miss_km"], ev.loc[~co, "pc_max"], s=3, alpha=0.5, label="crossing")
    if co.any():
        ax.scatter(ev.loc[co, "miss_km"], ev.loc[co, "pc_max"], s=6, color="#c0392b", label="co-located")
    ax.set_yscale("log")
    ax.set_xlabel("miss distance (km)")
    ax.set_ylabel(f"maximum Pc (Alfano, HBR {hbr_m:g} m)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def _encounter_figure(ev: pd.DataFrame, hbr_m: float, n: int = 4):
    """Encounter-plane views of the closest events: miss vector, hard body and worst-case 1-sigma circle."""
    import matplotlib.pyplot as plt
    import numpy as np

    top = ev.nsmallest(n, "miss_km")
    fig, axes = plt.subplots(1, max(len(top), 1), figsize=(3.2 * max(len(top), 1), 3.4), squeeze=False)
    for ax, (_, e) in zip(axes[0], top.iterrows(), strict=False):
        # encounter plane: x along the miss vector's component normal to the relative velocity
        d = e["miss_km"] * 1000.0
        sig = e["pc_max_sigma_m"]
        lim = (d + (sig if np.isfinite(sig) else 0.0)) * 1.15 + hbr_m
        ax.add_patch(plt.Circle((0, 0), hbr_m, color="#c0392b", alpha=0.6, label="hard body"))
        if np.isfinite(sig) and sig > 0:
            ax.add_patch(plt.Circle((d, 0), sig, fill=False, ls="--", label="worst-case 1 sigma"))
        ax.plot([0, d], [0, 0], "k-", lw=0.8)
        ax.plot(d, 0, "ko", ms=3)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(
            f"{e['id1']} / {e['id2']}\n{e['miss_km'] * 1000:.0f} m, {e['rel_speed_km_s']:.2f} km/s",
            fontsize=8,
        )
        ax.set_xlabel("along miss (m)", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def _with_pc_max(ev: pd.DataFrame, hbr_m: float) -> pd.DataFrame:
    """Add the maximum Pc over isotropic encounter-plane covariances (Alfano 2005) and its sigma."""
    from kizuna.ssa.pc import pc_max_isotropic

    ev = ev.copy()
    pmax, smax = pc_max_isotropic(ev["miss_km"].to_numpy() * 1000.0, hbr_m)
    ev["pc_max"] = pmax
    ev["pc_max_sigma_m"] = smax
    return ev


@app.command("screen")
def screen(
    catalog: Annotated[Path, typer.Argument(help="Element sets: TLE/3LE, or CCSDS OMM (KVN, XML, JSON).")],
    start: Annotated[str, typer.Option("--start", help="Window start, ISO UTC (e.g. 2022-07-15T00:00).")],
    days: Annotated[float, typer.Option("--days", help="Window length in days.")],
    threshold_km: Annotated[
        float, typer.Option("--threshold-km", help="Report approaches closer than this (km).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (replaced whole when done).")],
    primaries: Annotated[
        str | None,
        typer.Option(
            "--primaries", help="Screen only these catalogue numbers (comma list or file) against all."
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="Dask scheduler address (tcp://HOST:8786); implies --mode dask."),
    ] = None,
    mode: Annotated[str, typer.Option("--mode", help="serial, processes or dask.")] = "processes",
    workers: Annotated[
        int | None, typer.Option("--workers", help="Local worker processes (default: CPUs).")
    ] = None,
    hbr_m: Annotated[
        float, typer.Option("--hbr-m", help="Combined hard-body radius for the maximum Pc (m).")
    ] = 10.0,
    fine_step_s: Annotated[float, typer.Option("--fine-step-s", help="Screening interval (s).")] = 30.0,
    slice_hours: Annotated[float, typer.Option("--slice-hours", help="Hours per parallel task.")] = 6.0,
) -> None:
    """Find every close approach within --threshold-km: all against all, or primaries against all.

    Writes events.csv and events.parquet (id1, id2, name1, name2, tca_utc, miss_km, rel_speed_km_s, radial_km,
    intrack_km, crosstrack_km in object 1's RTN frame, pc_max, pc_max_sigma_m, flags), failed.csv (objects
    SGP4 could not propagate), problems.csv (element sets skipped or warned about), summary.json (events,
    objects_screened, objects_failed, element_problems, window_warnings, wall_s, ...), figures and
    report.html.
    """
    import numpy as np
    import pandas as pd

    from kizuna.core.io import output_dir, write_csv, write_json, write_parquet, write_png
    from kizuna.core.report import Report
    from kizuna.ssa.elements import check_window
    from kizuna.ssa.screen import LOW_SPEED_KM_S
    from kizuna.ssa.screen import screen as run_screen

    if scheduler:
        mode = "dask"
    if mode not in MODES:
        raise InputError(f"--mode {mode!r}: expected one of {', '.join(MODES)}")
    if not (hbr_m > 0 and math.isfinite(hbr_m)):
        raise InputError(f"--hbr-m {hbr_m!r}: expected a positive radius in metres")
    if not (0 < slice_hours <= 24 * 7):
        raise InputError(f"--slice-hours {slice_hours!r}: expected 0 to 168 hours")
    elements, problems = read_elements(catalog)
    ids = _parse_ids(primaries)
    try:
        t0 = np.datetime64(start, "ns")
    except ValueError as exc:
        raise InputError(f"--start {start!r}: expected an ISO UTC time such as 2022-07-15T00:00") from exc
    if not (days > 0 and math.isfinite(days)):
        raise InputError(f"--days {days!r}: expected a positive number of days")
    t1 = t0 + np.timedelta64(int(round(days * 86400e9)), "ns")
    window = check_window(elements, t0, t1)
    _warn_problems(problems + window)
    lines = [es.to_tle_lines() for es in elements]
    n_tasks = int(math.ceil(days * 24 / slice_hours))
    with progress_bar("screening", n_tasks, quiet=quiet_enabled()) as advance:
        res = run_screen(
            [a for a, _ in lines],
            [b for _, b in lines],
            t0,
            days,
            threshold_km,
            ids=[es.norad_id for es in elements],
            names=[es.name for es in elements],
            primaries=ids,
            fine_step_s=fine_step_s,
            slice_hours=slice_hours,
            mode=mode,
            scheduler=scheduler,
            n_workers=workers,
            progress=lambda done, total: advance(done, f"{done}/{total} slices"),
        )
    ev = _with_pc_max(res.events, hbr_m)
    summary = {
        "catalog": str(catalog),
        "start_utc": pd.Timestamp(res.start).isoformat() + "Z",
        "stop_utc": pd.Timestamp(res.stop).isoformat() + "Z",
        "threshold_km": res.threshold_km,
        "mode": "primaries" if ids else "all_against_all",
        "primaries": ids or [],
        "events": int(len(ev)),
        "events_under_1km": int((ev["miss_km"] < 1.0).sum()),
        "colocated_events": int(ev["flags"].str.contains("co-located").sum()),
        "colocated_speed_km_s": LOW_SPEED_KM_S,
        "objects_screened": res.objects,
        "objects_failed": int(len(res.failed)),
        "element_problems": len(problems),
        "window_warnings": len(window),
        "hbr_m": hbr_m,
        "max_pc_method": "Alfano 2005, isotropic encounter-plane covariance",
        "fine_step_s": fine_step_s,
        "slices": res.stats.get("slices"),
        "candidates_refined": res.stats.get("candidates"),
        "pairs_tested": res.stats.get("pairs_tested"),
        "wall_s": round(res.wall_s, 3),
    }
    with output_dir(out) as tmp:
        table = ev.assign(
            tca_utc=pd.to_datetime(ev["tca_utc"]).dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
        )
        write_csv(tmp / "events.csv", table)
        write_parquet(tmp / "events.parquet", ev)
        write_csv(tmp / "failed.csv", res.failed)
        write_csv(tmp / "problems.csv", _problems_table(problems + window))
        write_json(tmp / "summary.json", summary)
        rep = Report("kizuna: conjunction screening")
        rep.add_text(
            f"{summary['events']} close approaches within {threshold_km:g} km among {res.objects} objects "
            f"from {summary['start_utc']} to {summary['stop_utc']} (SGP4, TEME). "
            f"{summary['objects_failed']} objects could not be propagated (failed.csv); {len(problems)} "
            f"element sets were skipped and {len(window)} are more than 30 days from the window "
            "(problems.csv)."
        )
        rep.add_table(summary, caption="summary.json")
        if len(ev):
            fig = _events_per_day_figure(res)
            write_png(tmp / "events_per_day.png", fig)
            rep.add_figure(fig, caption="Close approaches per day")
            fig = _miss_pc_figure(ev, hbr_m)
            write_png(tmp / "miss_vs_pc.png", fig)
            rep.add_figure(fig, caption="Miss distance against maximum Pc")
            fig = _encounter_figure(ev, hbr_m)
            write_png(tmp / "encounters.png", fig)
            rep.add_figure(fig, caption="Closest approaches in the encounter plane")
            cols = ["id1", "name1", "id2", "name2", "tca_utc", "miss_km", "rel_speed_km_s", "pc_max", "flags"]
            rep.add_table(
                table.nlargest(25, "pc_max")[cols].reset_index(drop=True), caption="Highest maximum Pc"
            )
        rep.write(tmp / "report.html")
    say(
        f"kizuna ssa screen: {summary['events']} events ({summary['events_under_1km']} under 1 km) among "
        f"{res.objects} objects in {res.wall_s:.1f} s; {summary['objects_failed']} failed to propagate; "
        f"{len(problems)} element sets skipped -> {out}"
    )


@app.command("convert")
def convert(
    source: Annotated[Path, typer.Argument(help="Element sets: TLE/3LE or CCSDS OMM (KVN, XML, JSON).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file.")],
    fmt: Annotated[str, typer.Option("--format", help="tle, 3le, kvn, xml or json.")] = "kvn",
) -> None:
    """Convert element sets between TLE/3LE and CCSDS OMM (KVN, XML, Space-Track JSON), losslessly."""
    from kizuna.ssa.elements import write_tle
    from kizuna.ssa.omm import write_omm

    if fmt not in ("tle", "3le", "kvn", "xml", "json"):
        raise InputError(f"--format {fmt!r}: expected tle, 3le, kvn, xml or json")
    elements, problems = read_elements(source)
    _warn_problems(problems)
    if fmt in ("tle", "3le"):
        write_tle(out, elements, three_line=fmt == "3le")
    else:
        write_omm(out, elements, fmt)
    say(f"kizuna ssa convert: {len(elements)} element sets -> {out} ({len(problems)} skipped)")


register_pc_commands(app)  # kizuna ssa pc, kizuna ssa cdm
