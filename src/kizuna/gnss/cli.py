"""The ``kizuna gnss`` commands: read RINEX files, position a receiver (``spp``, ``spp-many``), and map DOP
and availability (``dop``, from :mod:`kizuna.gnss.cli_dop`).

Each command reads its inputs, calls the library, writes its outputs (a folder replaced whole at the end, or
one file written atomically) and prints a one-line summary on stderr (not with ``kizuna --quiet``).
Non-fatal problems in the files (a truncated last epoch, a malformed record) are printed one line each and
counted in the summary; errors are raised, and the top-level ``kizuna`` command turns
:class:`kizuna.errors.InputError` into one line and exit code 2.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kizuna.core.console import quiet_enabled, say
from kizuna.core.parallel import MODES, run_tasks
from kizuna.core.progress import progress_bar
from kizuna.errors import InputError
from kizuna.gnss.cli_dop import register as register_dop_command

if TYPE_CHECKING:
    import numpy as np

    from kizuna.gnss.rinex_nav import NavData
    from kizuna.gnss.spp import SppOptions

# The library modules (numpy, numba kernels, scipy, matplotlib) are imported inside the commands, so that
# starting ``kizuna`` for another field does not pay for them.
SYSTEMS = "GREJCI"

__all__ = ["app", "read", "spp", "spp_many", "load_nav", "parse_truth"]

app = typer.Typer(
    help="Satellite navigation: RINEX, broadcast orbits, positioning, DOP and availability (NavIC, QZSS).",
    no_args_is_help=True,
)

MAX_WARNINGS = 20


def warn_problems(problems: Sequence[str]) -> None:
    """Print up to MAX_WARNINGS file problems one per line, then how many more there were."""
    for p in list(problems)[:MAX_WARNINGS]:
        say(f"kizuna: warning: {p}")
    if len(problems) > MAX_WARNINGS:
        say(f"kizuna: warning: ... and {len(problems) - MAX_WARNINGS} more")


def _existing(path: Path, what: str) -> Path:
    """Return the path if it is a readable file, else raise InputError naming it."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such {what} file")
    return p


def load_nav(paths: Sequence[Path]) -> NavData:
    """Read and merge one or more RINEX navigation files."""
    from kizuna.gnss.rinex_nav import merge_nav, read_nav

    navs = [read_nav(_existing(p, "RINEX navigation")) for p in paths]
    return navs[0] if len(navs) == 1 else merge_nav(navs)


def parse_truth(text: str | None) -> np.ndarray | None:
    """Return the ECEF truth (m) of an ``X,Y,Z`` option, or None."""
    if text is None:
        return None
    import numpy as np

    parts = text.replace(" ", "").split(",")
    try:
        xyz = np.array([float(v) for v in parts], dtype=float)
    except ValueError:
        xyz = np.array([])
    if xyz.shape != (3,) or not np.all(np.isfinite(xyz)) or not 6.0e6 < np.linalg.norm(xyz) < 6.5e6:
        raise InputError(
            f"--truth {text!r}: expected X,Y,Z in metres (ECEF, a point near the Earth's surface)"
        )
    return xyz


def _rinex_kind(path: Path) -> str:
    """Return 'obs' or 'nav' from a RINEX file's first line (plain, gzip or Hatanaka)."""
    import gzip

    with open(path, "rb") as fh:
        head = fh.read(2)
    if head in (b"BZ", b"PK", b"\x1f\x9d"):  # bzip2, zip, Unix compress: the observation reader decides
        from kizuna.gnss.rinex_obs import read_obs

        try:
            read_obs(path, cache=True)
        except InputError as exc:
            if "navigation data" in str(exc):
                return "nav"
            raise
        return "obs"
    opener = gzip.open if head == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as fh:
            line = fh.readline(200).decode("ascii", "replace")
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read the file ({exc})") from exc
    if "COMPACT RINEX" in line:
        return "obs"
    if "RINEX VERSION / TYPE" not in line:
        raise InputError(
            f"{path}: line 1: not a RINEX file (expected 'RINEX VERSION / TYPE' in columns 61-80)"
        )
    kind = line[20:21].upper()
    if kind == "O":
        return "obs"
    if kind in ("N", "G", "H", "B", "L", "J", "C", "I", "E"):
        return "nav"
    raise InputError(f"{path}: line 1: RINEX file type {kind!r}: expected O (observation) or N (navigation)")


@app.command()
def read(
    file: Annotated[
        Path, typer.Argument(help="RINEX observation (2.11/3.0x/4.0x; .gz, .crx) or navigation file.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write (one row per observable).")],
    systems: Annotated[
        str | None, typer.Option("--systems", help="Keep only these systems, e.g. GEJ.")
    ] = None,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Use the Parquet read cache.")] = True,
) -> None:
    """Read one RINEX file and write it as Parquet: observations (time, sv, signal, value, LLI, SSI) or
    navigation records (one row per ephemeris)."""
    from kizuna.core.io import write_parquet
    from kizuna.gnss.rinex_nav import read_nav
    from kizuna.gnss.rinex_obs import read_obs, write_obs_parquet

    path = _existing(file, "RINEX")
    t0 = time.perf_counter()
    if _rinex_kind(path) == "obs":
        obs = read_obs(path, systems=systems, cache=cache)
        dt = time.perf_counter() - t0
        warn_problems(obs.problems)
        write_obs_parquet(obs, out)
        say(
            f"kizuna: {path.name}: RINEX {obs.version:.2f} observations, {len(obs.epochs)} epochs, "
            f"{len(obs.sats)} satellites, {len(obs.signals)} signals read in {dt:.2f} s -> {out}"
        )
        return
    nav = read_nav(path)
    dt = time.perf_counter() - t0
    warn_problems(nav.problems)
    import pandas as pd

    table = (
        pd.concat([t for t in (nav.eph, nav.glo) if len(t)], ignore_index=True)
        if len(nav.eph) + len(nav.glo)
        else nav.eph.copy()
    )
    if systems:
        table = table[table["sv"].str[0].isin(list(systems))]
    write_parquet(out, table.reset_index(drop=True))
    say(
        f"kizuna: {path.name}: RINEX {nav.version:.2f} navigation, {len(table)} ephemerides of "
        f"{table['sv'].nunique()} satellites read in {dt:.2f} s -> {out}"
    )


# --smooth-s, shared by spp and spp-many.
SmoothOption = Annotated[
    float,
    typer.Option(
        "--smooth-s",
        help="Carrier-smooth each pseudorange with its own signal's phase (Hatch filter) with this time "
        "constant in seconds (SBAS receivers use 100; 0 = off, as RTKLIB's single mode).",
    ),
]


def _spp_options(
    systems: str,
    elev_mask_deg: float,
    iono: str,
    tropo: str,
    raim: bool,
    galileo_nav: str,
    rtklib_compatible: bool = False,
    smoothing_s: float = 0.0,
) -> SppOptions:
    """Build the options, naming the command-line option in any error."""
    from kizuna.gnss.spp import SppOptions

    letters = "".join(dict.fromkeys(systems.upper().replace(",", "")))
    bad = sorted(set(letters) - set(SYSTEMS))
    if not letters or bad:
        raise InputError(f"--systems {systems!r}: expected letters from {SYSTEMS} (G R E J C I)")
    if not (smoothing_s == 0.0 or 1.0 <= smoothing_s <= 3600.0):
        raise InputError(f"--smooth-s {smoothing_s:g}: expected 0 (off) or 1 to 3600 seconds")
    return SppOptions(
        systems=letters,
        elev_mask_deg=elev_mask_deg,
        iono=iono.lower(),
        tropo=tropo.lower(),
        raim=raim,
        galileo_nav=galileo_nav.upper(),
        rtklib_compatible=rtklib_compatible,
        smoothing_s=smoothing_s,
    )


def run_spp(
    obs_path: Path,
    nav_paths: Sequence[Path],
    options: SppOptions,
    out: Path,
    truth: np.ndarray | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Position one observation file and write its output folder; return its summary (the library call
    behind ``kizuna gnss spp`` and each task of ``spp-many``)."""
    from kizuna.core.io import output_dir
    from kizuna.gnss.report import write_spp_outputs
    from kizuna.gnss.rinex_obs import read_obs
    from kizuna.gnss.spp import solve_spp

    obs = read_obs(_existing(obs_path, "RINEX observation"))
    nav = load_nav(nav_paths)
    result = solve_spp(obs, nav, options, progress=progress)
    with output_dir(out) as tmp:
        summary = write_spp_outputs(tmp, obs, nav, result, truth)
    summary["out"] = str(out)
    return summary


@app.command()
def spp(
    obs: Annotated[Path, typer.Argument(help="RINEX observation file (2.11/3.0x/4.0x; .gz, .crx).")],
    nav: Annotated[list[Path], typer.Argument(help="RINEX navigation file(s) covering the observations.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (replaced whole when done).")],
    systems: Annotated[
        str,
        typer.Option(
            "--systems", help="Constellations to use: G GPS, R GLONASS, E Galileo, J QZSS, C BeiDou, I NavIC."
        ),
    ] = "GREJCI",
    elev_mask_deg: Annotated[float, typer.Option("--elev-mask-deg", help="Elevation mask (deg).")] = 10.0,
    truth: Annotated[
        str | None,
        typer.Option("--truth", help="Known antenna position X,Y,Z (m, ECEF) for error statistics."),
    ] = None,
    iono: Annotated[
        str,
        typer.Option(
            "--iono",
            help="Ionosphere: auto (GPS Klobuchar; NavIC's when only NavIC), gps, qzss, navic, bds "
            "(Klobuchar sets), ntcmg (Galileo NTCM-G), off.",
        ),
    ] = "auto",
    tropo: Annotated[str, typer.Option("--tropo", help="Troposphere: saastamoinen or off.")] = "saastamoinen",
    raim: Annotated[
        bool, typer.Option("--raim/--no-raim", help="Exclude one faulty satellite when the checks fail.")
    ] = True,
    galileo_nav: Annotated[
        str,
        typer.Option(
            "--galileo-nav", help="Galileo message whose clock and group delay are used: INAV or FNAV."
        ),
    ] = "INAV",
    rtklib_compatible: Annotated[
        bool,
        typer.Option(
            "--rtklib-compatible",
            help="Reproduce RTKLIB 2.4.3's choices where they depart from the ICDs (group delays from each "
            "satellite's first record, its Galileo SISA rounding), to compare with rnx2rtkp.",
        ),
    ] = False,
    smooth_s: SmoothOption = 0.0,
) -> None:
    """Single-point positioning: one position per epoch from code pseudoranges and broadcast orbits.

    Writes OUT/solution.csv and solution.parquet (one row per epoch: GPS time, ECEF and geodetic position,
    clocks, DOPs, status), solution.nmea (GGA), residuals.parquet, summary.json (epochs, solved,
    mean_ecef_m, median_pdop, ...; with --truth also h95_m, v95_m, rms3d_m, h50_m and the mean ENU error),
    figures and report.html.
    """
    from kizuna.core.io import output_dir
    from kizuna.gnss.report import write_spp_outputs
    from kizuna.gnss.rinex_obs import read_obs
    from kizuna.gnss.spp import solve_spp

    options = _spp_options(
        systems, elev_mask_deg, iono, tropo, raim, galileo_nav, rtklib_compatible, smoothing_s=smooth_s
    )
    xyz = parse_truth(truth)
    t0 = time.perf_counter()
    with progress_bar("spp", 1.0, quiet=quiet_enabled()) as advance:
        obs_data = read_obs(_existing(obs, "RINEX observation"))
        warn_problems(obs_data.problems)
        nav_data = load_nav(nav)
        warn_problems(nav_data.problems)
        result = solve_spp(obs_data, nav_data, options, progress=advance)
        with output_dir(out) as tmp:
            summary = write_spp_outputs(tmp, obs_data, nav_data, result, xyz)
    dt = time.perf_counter() - t0
    line = (
        f"kizuna: {obs.name}: {summary['solved']}/{summary['epochs']} epochs solved with "
        f"{summary['systems_used'] or '-'} in {dt:.1f} s"
    )
    if xyz is not None:
        line += f"; h95 {summary['h95_m']:.2f} m, v95 {summary['v95_m']:.2f} m"
    say(line + f" -> {out}")


def _spp_task(task: dict[str, Any]) -> dict[str, Any]:
    """Run one station-day of ``spp-many`` (a module-level function so that workers can import it)."""
    try:
        summary = run_spp(
            Path(task["obs"]),
            [Path(p) for p in task["nav"]],
            task["options"],
            Path(task["out"]),
            task["truth"],
        )
        return {"obs": task["obs"], "error": "", **summary}
    except InputError as exc:
        return {"obs": task["obs"], "error": str(exc)}


@app.command("spp-many")
def spp_many(
    obs: Annotated[list[Path], typer.Argument(help="RINEX observation files (one station-day each).")],
    nav: Annotated[list[Path], typer.Option("--nav", help="Navigation file(s) for all of them (repeat).")],
    out: Annotated[
        Path, typer.Option("--out", help="Output folder: one sub-folder per file and summary.csv.")
    ],
    systems: Annotated[str, typer.Option("--systems", help="Constellations (G R E J C I).")] = "GREJCI",
    elev_mask_deg: Annotated[float, typer.Option("--elev-mask-deg", help="Elevation mask (deg).")] = 10.0,
    mode: Annotated[str, typer.Option("--mode", help="serial, processes or dask.")] = "processes",
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="Dask scheduler address (tcp://HOST:8786); implies --mode dask."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Local worker processes (default: CPUs).")
    ] = None,
    smooth_s: SmoothOption = 0.0,
) -> None:
    """Position many station-days at once through kizuna's task runner (local processes or Dask).

    Writes OUT/<file name>/ (as ``kizuna gnss spp``) for each file and OUT/summary.csv with one row per
    file; a file that cannot be read is reported in its row and does not stop the others.
    """
    import numpy as np
    import pandas as pd

    from kizuna.core.io import output_dir, write_csv, write_json

    if scheduler:
        mode = "dask"
    if mode not in MODES:
        raise InputError(f"--mode {mode!r}: expected one of {', '.join(MODES)}")
    options = _spp_options(systems, elev_mask_deg, "auto", "saastamoinen", True, "INAV", smoothing_s=smooth_s)
    for p in nav:
        _existing(p, "RINEX navigation")
    names = [Path(p).name.replace(".", "_") for p in obs]
    if len(set(names)) != len(names):
        raise InputError("observation files: two files have the same name; give files with distinct names")
    with output_dir(out) as tmp:
        tasks = [
            {
                "obs": str(p),
                "nav": [str(n) for n in nav],
                "options": options,
                "out": str(tmp / nm),
                "truth": None,
            }
            for p, nm in zip(obs, names, strict=True)
        ]
        with progress_bar("spp-many", len(tasks), quiet=quiet_enabled()) as advance:
            rows = run_tasks(
                _spp_task,
                tasks,
                mode=mode,
                scheduler=scheduler,
                n_workers=workers,
                progress=lambda done, total: advance(done, f"{done}/{total} files"),
            )
        keep = ("obs", "error", "epochs", "solved", "systems_used", "median_pdop", "median_n_sats")
        table = pd.DataFrame([{k: r.get(k) for k in keep} for r in rows])
        table["out"] = [nm if not r["error"] else "" for r, nm in zip(rows, names, strict=True)]
        mean = [r.get("mean_ecef_m") or [np.nan] * 3 for r in rows]
        for k, axis in enumerate("xyz"):
            table[f"mean_{axis}_m"] = [m[k] if m[k] is not None else np.nan for m in mean]
        failed = [r for r in rows if r["error"]]
        for r in failed:
            say(f"kizuna: warning: {r['error']}")
        if len(failed) == len(rows):
            raise InputError(f"none of the {len(rows)} observation files could be positioned")
        write_csv(tmp / "summary.csv", table)
        write_json(tmp / "summary.json", {"files": len(rows), "failed": len(failed)})
    say(f"kizuna: {len(rows) - len(failed)}/{len(rows)} files positioned -> {out}")


register_dop_command(app)
