"""The onboard crater map: the terrain's exact crater list seen through a configurable map error.

A real onboard map is made from orbital images and a DEM: it holds only craters wide enough to be
measured in those images (``min_diameter_m``; 5 m is 10 pixels of LROC NAC's 0.5 m images), and its
crater centres and sizes carry errors of about a source pixel plus a part that grows with the crater (rim
picking), and a common offset of the whole map (registration of the map to the Moon's frame; zero by
default, since a target chosen on the map is reached relative to the map). Each crater's error is drawn
from a hash of the map seed and the crater's identity, so a crater seen in two images has the same
mapped position in both.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from kizuna.errors import InputError
from kizuna.lunar.nav.terrain import Terrain

__all__ = ["MapErrorSpec", "CraterMap"]


@dataclass(frozen=True)
class MapErrorSpec:
    """Map content and error: smallest mapped diameter (m), centre sigma (m plus fraction of D, added in
    quadrature), diameter sigma (fraction), map offset sigma (m)."""

    min_diameter_m: float = 5.0
    centre_sigma_m: float = 0.5
    centre_sigma_frac: float = 0.02
    diameter_sigma_frac: float = 0.03
    tie_sigma_m: float = 0.0
    seed: int = 7

    def scaled(self, factor: float) -> MapErrorSpec:
        """Return the spec with every error sigma multiplied by factor."""
        return replace(
            self,
            centre_sigma_m=self.centre_sigma_m * factor,
            centre_sigma_frac=self.centre_sigma_frac * factor,
            diameter_sigma_frac=self.diameter_sigma_frac * factor,
            tie_sigma_m=self.tie_sigma_m * factor,
        )

    def __post_init__(self) -> None:
        for name in (
            "min_diameter_m",
            "centre_sigma_m",
            "centre_sigma_frac",
            "diameter_sigma_frac",
            "tie_sigma_m",
        ):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise InputError(f"map error {name}={v}: expected a finite value >= 0")


def _hash_normals(keys: NDArray[np.uint64], seed: int, n: int) -> NDArray[np.float64]:
    """n standard normal numbers per key (shape (len(keys), n)), reproducible from (seed, key)."""
    out = np.empty((keys.size, n))
    with np.errstate(over="ignore"):
        state = keys ^ np.uint64((seed * 0x9E3779B97F4A7C15) % 2**64)
        u = []
        for _ in range(2 * n):
            state = state + np.uint64(0x9E3779B97F4A7C15)
            z = state.copy()
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
            u.append(((z >> np.uint64(11)).astype(np.float64) + 0.5) / 9007199254740992.0)
    for i in range(n):  # Box-Muller
        out[:, i] = np.sqrt(-2.0 * np.log(u[2 * i])) * np.cos(2.0 * np.pi * u[2 * i + 1])
    return out


class CraterMap:
    """Onboard crater map of a synthetic terrain with a map error (positions in frame L, metres)."""

    def __init__(self, terrain: Terrain, error: MapErrorSpec | None = None) -> None:
        self.terrain = terrain
        self.error = error or MapErrorSpec()
        tie = _hash_normals(np.array([0xA5A5], dtype=np.uint64), self.error.seed, 3)[0]
        self.tie_offset_m = tie * self.error.tie_sigma_m

    def query(
        self, x_min: float, x_max: float, y_min: float, y_max: float, d_min_m: float, d_max_m: float = np.inf
    ) -> pd.DataFrame:
        """Return mapped craters with centres in the box (m, frame L), as the map holds them.

        Columns x_m, y_m, z_m (mapped rim-circle centre, frame L), diameter_m (mapped), sigma_m (the
        map's stated 1-sigma horizontal centre error), and the truth columns true_x_m, true_y_m, true_z_m,
        true_diameter_m kept for scoring only.
        """
        d_min_m = max(d_min_m, self.error.min_diameter_m)
        c = self.terrain.craters(x_min, x_max, y_min, y_max, d_min_m, d_max_m)
        if c.empty:
            return c.assign(sigma_m=[], true_x_m=[], true_y_m=[], true_z_m=[], true_diameter_m=[])
        # crater identity: its exact centre (a crater's position never changes)
        keys = (
            np.round(c.x_m.to_numpy() * 1e3).astype(np.int64).view(np.uint64) * np.uint64(0x100000001B3)
        ) ^ (np.round(c.y_m.to_numpy() * 1e3).astype(np.int64).view(np.uint64))
        e = _hash_normals(keys, self.error.seed, 4)
        D = c.diameter_m.to_numpy()
        s = np.hypot(self.error.centre_sigma_m, self.error.centre_sigma_frac * D)
        out = pd.DataFrame(
            {
                "x_m": c.x_m.to_numpy() + s * e[:, 0] + self.tie_offset_m[0],
                "y_m": c.y_m.to_numpy() + s * e[:, 1] + self.tie_offset_m[1],
                "z_m": c.z_m.to_numpy() + 0.5 * s * e[:, 2] + self.tie_offset_m[2],
                "diameter_m": D * np.exp(self.error.diameter_sigma_frac * e[:, 3]),
                "sigma_m": s,
                "true_x_m": c.x_m.to_numpy(),
                "true_y_m": c.y_m.to_numpy(),
                "true_z_m": c.z_m.to_numpy(),
                "true_diameter_m": D,
            }
        )
        return out
