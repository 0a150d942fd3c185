"""Benchmark of crop-residue fire counts on ../shared/data/eo/fires_punjab_bhuvan_2023.

Prints one line per figure (``name: value unit (target ...)``), issue 7's targets beside them:
- the Bhuvan detections counted per IST day against the official daily counts, one line per day, and how
  many of the days where the detections are complete (2023-10-22..27 and 10-30 per SOURCES.md) match
  exactly (target: all of them);
- the PRSC table of 2023-10-15 against that day's official count, and the upstream JSON snapshots merged;
- read + count throughput (detections per second) on the real file and on a 100-fold larger table, beside
  a plain pandas baseline (read_csv + groupby on the raw columns, without parsing times, quirks or
  duplicates) on the same file, with the ratio.

    python benchmarks/eo_fires.py
"""

from __future__ import annotations

import glob
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kizuna.eo.fires import compare_daily, comparison_summary, count_fires, read_fires, read_official_counts

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("KIZUNA_SHARED_DATA", HERE.parents[1] / "shared" / "data")) / "eo"
FIRES = DATA / "fires_punjab_bhuvan_2023"
BHUVAN = FIRES / "bhuvan_fires_punjab_2023.csv"
OFFICIAL = FIRES / "bhuvan_fire_counts_punjab_daily_2023.csv"
PRSC = FIRES / "prsc_fires_punjab_2023-10-15.csv"
# SOURCES.md: the detections are complete (equal the official counts) on these days.
COMPLETE_DAYS = [
    "2023-10-22",
    "2023-10-23",
    "2023-10-24",
    "2023-10-25",
    "2023-10-26",
    "2023-10-27",
    "2023-10-30",
]


def line(name: str, value: object, unit: str = "", target: str = "") -> None:
    """Print one figure."""
    if isinstance(value, float | np.floating):
        value = f"{float(value):.6g}"
    text = f"{name}: {value} {unit}".rstrip()
    print(f"{text} (target {target})" if target else text, flush=True)


def _best_of(fn, repeat: int) -> float:
    """Return the shortest wall time (s) of ``repeat`` calls."""
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def counts_against_official() -> None:
    """Print each day's detections and official count, and how many complete days match."""
    det = read_fires(BHUVAN)
    official = read_official_counts(OFFICIAL)
    daily = compare_daily(det, official)
    summary = comparison_summary(daily)
    line("fires_detections_read", len(det.table), "detections", "6313 per SOURCES.md")
    for row in daily[daily["status"] != "not covered"].itertuples():
        off = "none" if pd.isna(row.official) else int(row.official)
        line(f"fires_day_{row.date}", f"detections {row.detections}, official {off}", "", row.status)
    by_day = daily.set_index("date")
    matched = sum(int(by_day.loc[d, "detections"]) == int(by_day.loc[d, "official"]) for d in COMPLETE_DAYS)
    line("fires_complete_days_matching_official", f"{matched}/{len(COMPLETE_DAYS)}", "days", "7/7")
    line(
        "fires_days_equal_official",
        f"{summary['n_days_complete']}/{summary['days_compared']}",
        "days compared",
        "exactly the complete days; 10-28, 10-29, 10-31 are partial snapshots",
    )
    line(
        "fires_complete_days_found", ",".join(d[5:] for d in summary["days_complete"]), "", "10-22..27,10-30"
    )
    prsc = read_fires(PRSC)
    off_1015 = int(official.set_index("date").loc["2023-10-15", "count"])
    line("fires_prsc_2023-10-15", f"detections {len(prsc.table)}, official {off_1015}", "", "equal")
    files = sorted(glob.glob(str(FIRES / "raw_json" / "data*.json")))
    merged = read_fires(files)
    line(
        "fires_json_snapshots_merged",
        f"{len(merged.table)} detections from {merged.n_records} records in {len(files)} files",
        "",
        "6313",
    )


def throughput() -> None:
    """Print read+count throughput on the real file and a 100-fold table, beside plain pandas."""
    n = len(read_fires(BHUVAN).table)

    def ours(path: Path) -> None:
        count_fires(read_fires(path), "district,day")

    def plain(path: Path) -> None:
        pd.read_csv(path).groupby(["district", "acqdate"]).size()

    t_ours = _best_of(lambda: ours(BHUVAN), 5)
    t_plain = _best_of(lambda: plain(BHUVAN), 5)
    line("fires_read_count_time", t_ours * 1e3, f"ms for {n} detections")
    line("fires_read_count_throughput", n / t_ours, "detections/s")
    line("fires_pandas_baseline_throughput", n / t_plain, "detections/s")
    line("fires_time_ratio_kizuna_over_pandas", t_ours / t_plain, "")
    raw = pd.read_csv(BHUVAN, dtype=str)
    copies = 100
    big = pd.concat([raw] * copies, ignore_index=True)
    # Distinct detections: each copy moved by 1e-5 deg in latitude, so nothing is dropped as repeated.
    shift = np.repeat(np.arange(copies), len(raw)) * 1e-5
    big["lat"] = (raw["lat"].astype(float).to_numpy()[np.tile(np.arange(len(raw)), copies)] + shift).round(6)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bhuvan_x100.csv"
        big.to_csv(path, index=False)
        t_big = _best_of(lambda: ours(path), 2)
        t_big_plain = _best_of(lambda: plain(path), 2)
        kept = len(read_fires(path).table)
    line("fires_read_count_time_x100", t_big, f"s for {kept} detections")
    line("fires_read_count_throughput_x100", kept / t_big, "detections/s")
    line("fires_pandas_baseline_throughput_x100", kept / t_big_plain, "detections/s")
    line("fires_time_ratio_kizuna_over_pandas_x100", t_big / t_big_plain, "")


def main() -> None:
    """Run every figure of the fire-count benchmark."""
    line("machine", f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    counts_against_official()
    throughput()


if __name__ == "__main__":
    main()
