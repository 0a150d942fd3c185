"""Monte Carlo campaigns of landing runs over dispersions, run through ``kizuna.core.parallel``.

Each run draws its own terrain, map error, IMU noise, initial state error, Sun elevation and azimuth,
camera noise and blur from its seed; the runs are independent tasks, so the same campaign runs serially,
on local processes, or on a Dask cluster. Named presets (``PRESETS``: nominal, polar) pair a base
scenario with its dispersions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from kizuna.core.parallel import run_tasks
from kizuna.errors import InputError
from kizuna.lunar.nav.descent import POLAR_SUN_ELEVATION_DEG, Scenario, simulate_landing
from kizuna.lunar.nav.filter import average_nees_bounds
from kizuna.lunar.nav.outputs import fixes_table

__all__ = [
    "Dispersions",
    "PRESETS",
    "preset",
    "campaign_scenarios",
    "run_one",
    "run_campaign",
    "summarise_campaign",
]


@dataclass(frozen=True)
class Dispersions:
    """Ranges (uniform) of the per-run dispersions; initial state errors come from the scenario's sigmas."""

    sun_elevation_deg: tuple[float, float] = (5.0, 45.0)
    sun_azimuth_deg: tuple[float, float] = (0.0, 360.0)
    read_noise_scale: tuple[float, float] = (0.5, 3.0)
    psf_sigma_px: tuple[float, float] = (0.4, 1.0)
    map_error_scale: tuple[float, float] = (0.5, 2.0)

    def __post_init__(self) -> None:
        for name in (
            "sun_elevation_deg",
            "sun_azimuth_deg",
            "read_noise_scale",
            "psf_sigma_px",
            "map_error_scale",
        ):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise InputError(f"dispersion {name}=({lo}, {hi}): expected low <= high")

    @classmethod
    def polar(cls) -> Dispersions:
        """Return the polar dispersions: Sun elevation in ``POLAR_SUN_ELEVATION_DEG`` (deg), any azimuth."""
        return cls(sun_elevation_deg=POLAR_SUN_ELEVATION_DEG)


PRESETS = ("nominal", "polar")


def preset(name: str) -> tuple[Scenario, Dispersions]:
    """Return the base scenario and dispersions of a named preset (``PRESETS``)."""
    if name == "nominal":
        return Scenario(), Dispersions()
    if name == "polar":
        return Scenario.polar(), Dispersions.polar()
    raise InputError(f"scenario {name!r}: expected one of {', '.join(PRESETS)}")


def campaign_scenarios(
    base: Scenario, runs: int, dispersions: Dispersions | None = None, first_seed: int = 1
) -> list[Scenario]:
    """Return the scenarios of a campaign: run i has seed first_seed + i and dispersions drawn from it."""
    if runs < 1:
        raise InputError(f"runs={runs}: expected at least 1 run")
    d = dispersions or Dispersions()
    out = []
    for i in range(runs):
        seed = first_seed + i
        u = np.random.default_rng([seed, 314159]).uniform(size=5)

        def pick(lo_hi: tuple[float, float], x: float) -> float:
            return float(lo_hi[0] + (lo_hi[1] - lo_hi[0]) * x)

        sc = base.with_seed(seed)
        sc = replace(
            sc,
            sun_elevation_deg=pick(d.sun_elevation_deg, u[0]),
            sun_azimuth_deg=pick(d.sun_azimuth_deg, u[1]),
            sensor=replace(
                sc.sensor,
                read_noise_e=sc.sensor.read_noise_e * pick(d.read_noise_scale, u[2]),
                psf_sigma_px=pick(d.psf_sigma_px, u[3]),
            ),
            map_error=sc.map_error.scaled(pick(d.map_error_scale, u[4])),
        )
        out.append(sc)
    return out


def run_one(sc: Scenario) -> tuple[dict, pd.DataFrame]:
    """Simulate one run; return its summary and its fix table (the unit of work of a campaign)."""
    res = simulate_landing(replace(sc, example_frames=0))
    summary = res.summary()
    summary["final_error_x_m"], summary["final_error_y_m"], summary["final_error_z_m"] = map(
        float, res.final_error_l_m
    )
    summary["process_id"] = os.getpid()  # which worker process ran it
    fixes = fixes_table(res)
    fixes.insert(0, "seed", sc.seed)
    fixes.insert(1, "sun_elevation_deg", sc.sun_elevation_deg)
    return summary, fixes


def summarise_campaign(runs: pd.DataFrame, fixes: pd.DataFrame) -> dict:
    """Return the campaign summary: error median and 95th percentile (m), false fixes, NEES test, counts."""
    n = len(runs)
    lo, hi = average_nees_bounds(n, 3, 0.95)
    nees = float(runs.final_position_nees.mean())
    attempted = int(len(fixes))
    accepted = int((fixes.status == "accepted").sum()) if attempted else 0
    good = fixes[(fixes.status == "accepted") & (fixes.n_matched >= 5)] if attempted else fixes
    return {
        "runs": n,
        "final_position_error_m_median": float(np.median(runs.final_position_error_m)),
        "final_position_error_m_p95": float(np.percentile(runs.final_position_error_m, 95)),
        "final_position_error_m_max": float(runs.final_position_error_m.max()),
        "false_fixes": int(runs.false_fixes.sum()),
        "false_fixes_strict": int(runs.false_fixes_strict.sum()),
        "fixes_attempted": attempted,
        "fixes_accepted": accepted,
        "fix_availability": accepted / attempted if attempted else float("nan"),
        "median_fix_error_gsd": float(np.median(good.error_true_att_gsd)) if len(good) else float("nan"),
        "median_fix_error_onboard_attitude_gsd": float(np.median(good.error_gsd))
        if len(good)
        else float("nan"),
        "final_nees_mean": nees,
        "final_nees_bound_low": lo,
        "final_nees_bound_high": hi,
        "final_nees_consistent": bool(lo <= nees <= hi),
        "median_fix_latency_s": float(np.nanmedian(fixes.latency_s)) if attempted else float("nan"),
        **_per_method(fixes),
    }


def _per_method(fixes: pd.DataFrame) -> dict:
    """Fixes accepted per method and each method's availability (accepted / images it was tried on).

    Every image is first tried by crater matching; the correlation fix runs on the images where that
    gave no accepted fix.
    """
    n = len(fixes)
    if n == 0 or "method" not in fixes:
        return {}
    acc = fixes.status == "accepted"
    corr = fixes.method == "correlation"
    acc_c = int((acc & ~corr).sum())
    acc_k = int((acc & corr).sum())
    return {
        "fixes_accepted_craters": acc_c,
        "fixes_accepted_correlation": acc_k,
        "fixes_attempted_correlation": int(corr.sum()),
        "fix_availability_craters": acc_c / n,
        "fix_availability_correlation": acc_k / int(corr.sum()) if corr.any() else float("nan"),
    }


def run_campaign(
    base: Scenario,
    runs: int,
    dispersions: Dispersions | None = None,
    *,
    first_seed: int = 1,
    mode: str = "dask",
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Run a campaign; return (runs, fixes, summary) tables; ``mode``/``scheduler`` as in core.parallel."""
    scenarios = campaign_scenarios(base, runs, dispersions, first_seed)
    results = run_tasks(
        run_one, scenarios, mode=mode, scheduler=scheduler, n_workers=n_workers, progress=progress
    )
    runs_df = pd.DataFrame([r[0] for r in results])
    fixes_df = pd.concat([r[1] for r in results], ignore_index=True) if results else pd.DataFrame()
    return runs_df, fixes_df, summarise_campaign(runs_df, fixes_df)
