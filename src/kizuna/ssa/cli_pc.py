"""The ``kizuna ssa pc`` and ``kizuna ssa cdm`` commands: collision probability of the conjunctions in CCSDS
Conjunction Data Messages, and conversion of a CDM between KVN and XML.

:func:`register` mounts both commands on the ``kizuna ssa`` group (:mod:`kizuna.ssa.cli` calls it). Results
go to stdout (one JSON object per CDM per line with ``--json``, else an aligned table); warnings and the
one-line summary go to stderr and are left out with ``kizuna --quiet``; the error line of a CDM skipped
among several is always printed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kizuna.core.console import say
from kizuna.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from kizuna.ssa.cdm import Cdm
    from kizuna.ssa.pc import PcResult

# The library modules (numpy, scipy) are imported inside the functions, so that starting ``kizuna`` does
# not pay for them.

__all__ = ["register", "pc", "cdm", "conjunction_record", "METHODS"]

METHODS = ("auto", "foster", "elrod", "chan", "3d", "mc")

# columns of the table printed without --json: (heading, record key, format)
_TABLE = (
    ("file", "file", "{}"),
    ("TCA (UTC)", "tca_utc", "{}"),
    ("miss m", "miss_m", "{:.3f}"),
    ("speed m/s", "rel_speed_m_s", "{:.3f}"),
    ("HBR m", "hbr_m", "{:g}"),
    ("Pc", "pc", "{:.6e}"),
    ("method", "method", "{}"),
    ("CDM Pc", "pc_cdm", "{:.6e}"),
    ("flags", "flags", "{}"),
)


def _finite(x: Any) -> float | None:
    """Return x as a float, or None when it is absent or not finite (JSON has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _iso_ms(t: np.datetime64) -> str:
    """ISO 8601 UTC time with milliseconds and a trailing Z."""
    import numpy as np

    return np.datetime_as_string(np.datetime64(t, "ms"), unit="ms") + "Z"


def conjunction_record(path: str | Path, cdm: Cdm, res: PcResult, hbr_source: str) -> dict[str, Any]:
    """One CDM's answer as a JSON-ready dict: Pc with its method and flags, geometry in m, m/s, UTC.

    Keys: file, message_id, object1, object2 (OBJECT_DESIGNATOR), tca_utc, pc, method, flags, pc_2d
    (Foster), pc_ci_low, pc_ci_high, n_samples, n_hits (Monte Carlo only, else null), t_start_s and
    t_end_s (the 3-D / Monte Carlo window, or the 2-D conjunction bounds, s from TCA), miss_m and
    rel_speed_m_s (from the state vectors), miss_m_cdm (MISS_DISTANCE as printed), hbr_m, hbr_source,
    sigma_x_m, sigma_z_m (conjunction-plane 1-sigma, major and minor axis), pc_cdm and pc_cdm_method (the
    message's own COLLISION_PROBABILITY and COLLISION_PROBABILITY_METHOD), covariance_problems. Values
    that are not finite are None.
    """
    from kizuna.ssa.cdm import covariance_problems

    mc = res.method == "mc"
    return {
        "file": str(path),
        "message_id": cdm.value("MESSAGE_ID"),
        "object1": cdm.object1.value("OBJECT_DESIGNATOR"),
        "object2": cdm.object2.value("OBJECT_DESIGNATOR"),
        "tca_utc": _iso_ms(cdm.tca),
        "pc": _finite(res.pc),
        "method": res.method,
        "flags": list(res.flags),
        "pc_2d": _finite(res.pc_2d),
        "pc_ci_low": _finite(res.pc_ci_low) if mc else None,
        "pc_ci_high": _finite(res.pc_ci_high) if mc else None,
        "n_samples": int(res.n_samples) if mc else None,
        "n_hits": int(res.n_hits) if mc else None,
        "t_start_s": _finite(res.t_start_s),
        "t_end_s": _finite(res.t_end_s),
        "miss_m": _finite(res.miss_m),
        "rel_speed_m_s": _finite(res.rel_speed_m_s),
        "miss_m_cdm": _finite(cdm.miss_distance_m),
        "hbr_m": _finite(res.hbr_m),
        "hbr_source": hbr_source,
        "sigma_x_m": _finite(res.sigma_x_m),
        "sigma_z_m": _finite(res.sigma_z_m),
        "pc_cdm": _finite(cdm.collision_probability),
        "pc_cdm_method": cdm.value("COLLISION_PROBABILITY_METHOD"),
        "covariance_problems": covariance_problems(cdm),
    }


def _named(path: Path, exc: InputError) -> InputError:
    """Return the error with the file named at its start (unchanged when it already names the file)."""
    text = str(exc)
    return exc if str(path) in text else InputError(f"{path}: {text}")


def _answer(
    path: Path, method: str, hbr_m: float | None, n_samples: int, seed: int | None, window_s: float | None
) -> dict[str, Any]:
    """Read one CDM, warn about its covariances, compute its Pc; InputError naming the file on bad input."""
    from kizuna.ssa.cdm import covariance_problems, encounter_inputs, read_cdm
    from kizuna.ssa.pc import collision_probability

    c = read_cdm(path)
    try:
        r1, v1, c1, r2, v2, c2 = encounter_inputs(c)
    except InputError as exc:
        raise _named(path, exc) from None
    if hbr_m is not None:
        hbr, source = hbr_m, "--hbr-m"
    else:
        hbr, source = c.hard_body_radius_m, " ".join((c.hard_body_radius_source or "").split())
        if hbr is None:
            raise InputError(
                f"{path}: no hard-body radius in the CDM (no HBR comment, no AREA_PC for both objects); "
                "pass --hbr-m"
            )
    problems = covariance_problems(c)
    for problem in problems:
        if "6x6" not in problem:
            say(f"kizuna: warning: {path}: {problem} (Pc computed with CARA's remediation)")
    try:
        res = collision_probability(
            r1, v1, c1, r2, v2, c2, hbr, method=method, n_samples=n_samples, seed=seed, duration_s=window_s
        )
    except InputError as exc:
        raise InputError(f"{path}: Pc ({method}): {exc}") from None
    if res.method in ("3d", "mc"):  # the velocity rows matter only to the 3-D and Monte Carlo methods
        for problem in problems:
            if "6x6" in problem:
                say(f"kizuna: warning: {path}: {problem} (used by the {res.method} Pc)")
    return conjunction_record(path, c, res, source)


def _cell(rec: dict[str, Any], key: str, fmt: str) -> str:
    """Text of one table cell ("-" for null or an empty list)."""
    v = rec[key]
    if key == "file":
        return Path(v).name
    if key == "flags":
        return ",".join(v) or "-"
    return "-" if v is None else fmt.format(v)


def _print_table(records: Sequence[dict[str, Any]]) -> None:
    """Print the records as an aligned text table on stdout (numbers right-aligned)."""
    rows = [[h for h, _, _ in _TABLE]] + [[_cell(r, k, f) for _, k, f in _TABLE] for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_TABLE))]
    left = {"file", "tca_utc", "method", "flags"}
    for row in rows:
        cells = [
            s.ljust(w) if k in left else s.rjust(w)
            for s, w, (_, k, _) in zip(row, widths, _TABLE, strict=True)
        ]
        typer.echo("  ".join(cells).rstrip())


def pc(
    cdms: Annotated[list[Path], typer.Argument(help="CCSDS CDM files (KVN or XML).", show_default=False)],
    method: Annotated[
        str, typer.Option("--method", help="auto, foster, elrod, chan, 3d (Hall) or mc (Monte Carlo).")
    ] = "auto",
    hbr_m: Annotated[
        float | None,
        typer.Option(
            "--hbr-m", help="Combined hard-body radius (m); default: the CDM's HBR comment or AREA_PC."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per CDM per line.")] = False,
    samples: Annotated[int, typer.Option("--samples", help="Monte Carlo samples (--method mc).")] = 100_000,
    seed: Annotated[int | None, typer.Option("--seed", help="Monte Carlo random seed (--method mc).")] = None,
    window_s: Annotated[
        float | None,
        typer.Option(
            "--window-s",
            help="3d / mc time window, +/- s about TCA; default: CARA's conjunction bounds widened by half, "
            "or +/- half the shorter orbital period when those miss TCA or pass it.",
        ),
    ] = None,
) -> None:
    """Collision probability of the conjunction in each CDM, with CARA's checks as flags.

    States and RTN covariances come from the CDM (rotated to its REF_FRAME axes); the hard-body radius
    from --hbr-m, else the CDM's HBR comment, else both objects' AREA_PC. --method auto uses Foster's 2-D
    Pc unless CARA's 2-D usage checks fail, then Hall's 3-D Pc. --window-s sets the 3-D / Monte Carlo
    time window; CARA's published 3-D values for the Alfano (2009) cases use windows of their own
    (A09_FinalTime_s, e.g. 21600 s for case 1), which --window-s reproduces.

    With --json each CDM gives one line: file, tca_utc, pc, method, flags, pc_2d, miss_m, rel_speed_m_s,
    hbr_m, hbr_source, sigma_x_m, sigma_z_m, pc_cdm, pc_cdm_method, pc_ci_low/pc_ci_high (mc),
    t_start_s/t_end_s (window), ... (SI units, null for NaN). A position covariance that is not positive
    definite gives a warning on stderr and is remediated as CARA does (flag NPD_REMEDIATED); a 6x6 one
    whose velocity rows alone are at fault (e.g. position-only covariances) is warned about only when the
    3-D or Monte Carlo method used it.

    Bad input: with one CDM, a file that cannot be read or answered is an error (exit 2). With several,
    such a file is skipped with one error line on stderr (printed even with --quiet) and the others are
    answered; the exit code is 2 only when none could be answered.
    """
    if method not in METHODS:
        raise InputError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    if hbr_m is not None and not (hbr_m >= 0 and math.isfinite(hbr_m)):
        raise InputError(f"--hbr-m {hbr_m!r}: expected a non-negative radius in metres")
    if samples < 1:
        raise InputError(f"--samples {samples!r}: expected a positive number of samples")
    if window_s is not None and not (window_s > 0 and math.isfinite(window_s)):
        raise InputError(f"--window-s {window_s!r}: expected a positive number of seconds")
    records: list[dict[str, Any]] = []
    failed: list[InputError] = []
    for path in cdms:
        try:
            rec = _answer(path, method, hbr_m, samples, seed, window_s)
        except InputError as exc:
            if len(cdms) == 1:
                raise _named(path, exc) from None
            failed.append(_named(path, exc))
            typer.echo(f"kizuna: error: {' '.join(str(failed[-1]).split())} (skipped)", err=True)
            continue
        records.append(rec)
        if as_json:
            typer.echo(json.dumps(rec, allow_nan=False))
    if not records:
        raise InputError(f"none of the {len(cdms)} CDMs could be answered (first: {failed[0]})")
    if not as_json:
        _print_table(records)
    flagged = sum(bool(r["flags"]) for r in records)
    say(
        f"kizuna ssa pc: {len(records)} of {len(cdms)} CDMs answered, {flagged} with flags, "
        f"{len(failed)} skipped"
    )


def _encoding(path: Path) -> str:
    """Return "xml" or "kvn" from the first non-blank character of a CDM file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512).decode("utf-8", "replace")
    except OSError:
        return "kvn"
    return "xml" if head.lstrip("\ufeff \t\r\n").startswith("<") else "kvn"


def cdm(
    source: Annotated[Path, typer.Argument(help="A CCSDS CDM file (KVN or XML).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output CDM file (written atomically).")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="kvn or xml; default: xml when OUT ends in .xml, else kvn."),
    ] = None,
) -> None:
    """Convert a CDM between KVN and XML (CCSDS 508.0-B-1), keeping every keyword, unit and comment."""
    from kizuna.ssa.cdm import read_cdm, write_cdm

    if fmt is None:
        fmt = "xml" if out.suffix.lower() == ".xml" else "kvn"
    fmt = fmt.lower()
    if fmt not in ("kvn", "xml"):
        raise InputError(f"--format {fmt!r}: expected kvn or xml")
    c = read_cdm(source)
    write_cdm(out, c, fmt)
    ids = f"{c.object1.value('OBJECT_DESIGNATOR')} / {c.object2.value('OBJECT_DESIGNATOR')}"
    say(
        f"kizuna ssa cdm: {source} ({_encoding(source).upper()}) -> {out} ({fmt.upper()}): "
        f"TCA {_iso_ms(c.tca)}, objects {ids}"
    )


def register(app: typer.Typer) -> None:
    """Add the ``pc`` and ``cdm`` commands to the ``kizuna ssa`` command group."""
    app.command("pc")(pc)
    app.command("cdm")(cdm)
