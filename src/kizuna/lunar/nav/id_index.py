"""Crater catalogues for lost-in-space identification, and the triad index built from them.

The index holds, for every crater, triads formed with its nearest neighbours, each described by numbers
that do not change with the viewpoint once the image has been carried onto the lunar sphere (see
:mod:`kizuna.lunar.nav.identify`): the triangle's shape, its size relative to the craters' radii and the
ratios of the radii. Views from different altitudes see different smallest craters, so neighbours are
taken within size tiers (all craters of radius >= 2.5, 3.5, 4.9, ... km); a view whose smallest visible
craters fall in one tier finds the same neighbourhoods in that tier.

The index is built once per catalogue and cached on disk (``$KIZUNA_CACHE_DIR``, else
``$XDG_CACHE_HOME/kizuna``, else ``~/.cache/kizuna``) under the SHA-256 of the catalogue's content and the
index version, so an edited catalogue never meets a stale index.

Catalogue CSV (``id,lat_deg,lon_deg,diam_km[,elev_m]``): planetocentric latitude, east longitude, rim
diameter; centres on the 1737.4 km sphere, or at ``elev_m`` above it when that column is given. The Head
et al. (2010) and LROC 5-20 km lists as DeepMoon stages them, and the other formats
:func:`kizuna.lunar.nav.catalog.read_catalog` knows, are read as they are, with IDs ``<kind>-<row>``.
Rows that repeat a crater (centres within a fifth of the larger radius, radii within 30 %; the LROC list
has 12 such pairs) are merged into the first, since two entries for one crater make its identity
ambiguous; ``IdCatalog.merged`` lists them.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from kizuna.core.ephemeris import latlon_to_moon_me
from kizuna.core.io import atomic_path
from kizuna.errors import InputError
from kizuna.lunar.nav.catalog import read_catalog

__all__ = [
    "IdCatalog",
    "CraterIndex",
    "read_id_catalog",
    "build_index",
    "load_or_build_index",
    "triad_descriptors",
    "DESCRIPTOR_SIGMA",
    "INDEX_VERSION",
]

INDEX_VERSION = 1
# Size tiers: smallest rim radius (m) of the craters a tier holds; each tier is sqrt(2) above the last.
TIER_BASE_M = 2_500.0
TIER_STEP = 2.0**0.5
TIER_MIN_CRATERS = 40
NEIGHBOURS = 8
# Nominal 1-sigma of each descriptor component (natural-log units) for centres good to a few pixels and
# radii to 5 %: the index and the queries are scaled by it.
DESCRIPTOR_SIGMA = np.array([0.05, 0.05, 0.04, 0.07, 0.07])


@dataclass(frozen=True)
class IdCatalog:
    """Craters for identification: IDs, centres (m, MOON_ME), rim radii (m), and a content digest."""

    ids: NDArray[np.object_]
    centres_me_m: NDArray[np.float64]
    radius_m: NDArray[np.float64]
    sources: tuple[str, ...]
    digest: str
    merged: tuple[tuple[str, str], ...] = ()  # (dropped ID, kept ID) of near-duplicate entries

    def __len__(self) -> int:
        return int(self.radius_m.size)

    @property
    def unit_me(self) -> NDArray[np.float64]:
        """Return the unit vectors of the crater centres (MOON_ME)."""
        return self.centres_me_m / np.linalg.norm(self.centres_me_m, axis=1, keepdims=True)


def _read_id_csv(p: Path) -> pd.DataFrame | None:
    """Read the identification CSV format, or return None when the header is another catalogue format."""
    try:
        head = pd.read_csv(p, nrows=0, encoding="utf-8-sig")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError):
        return None
    cols = [str(c).strip() for c in head.columns]
    if "id" not in cols:
        return None
    need = ["id", "lat_deg", "lon_deg", "diam_km"]
    missing = [c for c in need if c not in cols]
    if missing:
        raise InputError(f"{p}: missing columns {missing}; expected id,lat_deg,lon_deg,diam_km[,elev_m]")
    use = need + (["elev_m"] if "elev_m" in cols else [])
    try:
        df = pd.read_csv(p, usecols=lambda c: str(c).strip() in use, dtype=str, encoding="utf-8-sig")
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise InputError(f"{p}: cannot parse the CSV ({exc})") from exc
    df.columns = [str(c).strip() for c in df.columns]
    ids = df["id"].fillna("").str.strip()
    lines = np.arange(len(df)) + 2
    empty = np.flatnonzero((ids == "").to_numpy())
    if empty.size:
        raise InputError(f"{p}: line {lines[empty[0]]}: empty id; expected a crater ID in every row")
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        first = np.flatnonzero(dup)[0]
        again = np.flatnonzero((ids == ids.iloc[first]).to_numpy())
        raise InputError(
            f"{p}: duplicate crater id {ids.iloc[first]!r} on lines "
            f"{', '.join(str(lines[i]) for i in again)}; expected unique IDs"
        )
    out = {"id": ids.to_numpy(dtype=object)}
    checks = {
        "lat_deg": (lambda v: np.abs(v) <= 90.0, "a latitude in [-90, 90] deg"),
        "lon_deg": (lambda v: (v >= -360.0) & (v <= 360.0), "an east longitude in [-360, 360] deg"),
        "diam_km": (lambda v: v > 0.0, "a positive diameter (km)"),
        "elev_m": (lambda v: np.abs(v) < 50_000.0, "an elevation within 50 km of the 1737.4 km sphere (m)"),
    }
    for col in use[1:]:
        v = pd.to_numeric(df[col].str.strip(), errors="coerce").to_numpy(dtype=float)
        ok, what = checks[col]
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(~np.isfinite(v) | ~ok(v))
        if bad.size:
            i = bad[0]
            raise InputError(f"{p}: line {lines[i]}, column {col}: {df[col].iloc[i]!r}; expected {what}")
        out[col] = v
    return pd.DataFrame(out)


def read_id_catalog(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> IdCatalog:
    """Read one or more crater catalogues (CSV) into one identification catalogue (m, MOON_ME)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if len(paths) == 0:
        raise InputError("no crater catalogue given: expected at least one CSV file")
    ids: list[NDArray] = []
    centres: list[NDArray] = []
    radii: list[NDArray] = []
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{p}: crater catalogue file not found")
        df = _read_id_csv(p)
        if df is not None:
            h = df["elev_m"].to_numpy() if "elev_m" in df else 0.0
            lat, lon = np.radians(df["lat_deg"].to_numpy()), np.radians(df["lon_deg"].to_numpy())
            X = latlon_to_moon_me(lat, lon, h)
            ids.append(df["id"].to_numpy(dtype=object))
            centres.append(X.reshape(-1, 3))
            radii.append(0.5e3 * df["diam_km"].to_numpy())
        else:
            cat = read_catalog(p)
            kind = cat.attrs.get("kind", "cat")
            if "crater_id" in cat:
                ids.append(cat["crater_id"].astype(str).to_numpy(dtype=object))
            else:
                ids.append(np.array([f"{kind}-{i:05d}" for i in range(len(cat))], dtype=object))
            centres.append(cat[["x_me_m", "y_me_m", "z_me_m"]].to_numpy(dtype=float))
            radii.append(0.5 * cat["diameter_m"].to_numpy(dtype=float))
        if ids[-1].size == 0:
            raise InputError(f"{p}: no craters; expected at least one row")
    all_ids = np.concatenate(ids)
    uniq, counts = np.unique(all_ids.astype(str), return_counts=True)
    if np.any(counts > 1):
        raise InputError(
            f"crater id {uniq[counts > 1][0]!r} appears in more than one catalogue row across "
            f"{', '.join(str(p) for p in paths)}; expected unique IDs"
        )
    X = np.concatenate(centres)
    r = np.concatenate(radii)
    keep, merged = _near_duplicates(X, r, all_ids)
    all_ids, X, r = all_ids[keep], X[keep], r[keep]
    h = hashlib.sha256()
    h.update(f"kizuna-id-index-v{INDEX_VERSION}".encode())
    h.update("\n".join(all_ids.astype(str)).encode())
    h.update(np.round(X, 1).tobytes())
    h.update(np.round(r, 1).tobytes())
    return IdCatalog(all_ids, X, r, tuple(str(p) for p in paths), h.hexdigest(), merged)


def _near_duplicates(
    X: NDArray[np.float64], r: NDArray[np.float64], ids: NDArray[np.object_]
) -> tuple[NDArray[np.bool_], tuple[tuple[str, str], ...]]:
    """Mark entries that repeat an earlier crater (centres within a fifth of the larger radius, radii
    within 30 %): two catalogue rows for one crater would make its identity ambiguous."""
    keep = np.ones(r.size, dtype=bool)
    merged: list[tuple[str, str]] = []
    if r.size < 2:
        return keep, ()
    pairs = cKDTree(X).query_pairs(0.2 * float(r.max()), output_type="ndarray")
    if pairs.size == 0:
        return keep, ()
    pairs = np.sort(pairs, axis=1)
    a, b = pairs[:, 0], pairs[:, 1]
    big, small = np.maximum(r[a], r[b]), np.minimum(r[a], r[b])
    dup = (np.linalg.norm(X[a] - X[b], axis=1) < 0.2 * big) & (big < 1.3 * small)
    for i, j in sorted(zip(a[dup], b[dup], strict=True)):
        if keep[i] and keep[j]:
            keep[j] = False
            merged.append((str(ids[j]), str(ids[i])))
    return keep, tuple(merged)


def triad_descriptors(P: NDArray[np.float64], r: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return (M, 5) viewpoint-free descriptors of triads of craters on a sphere.

    ``P`` (M, 3, 3): centres (any common origin at the sphere's centre, any units), in counter-clockwise
    order seen from outside; ``r`` (M, 3): rim radii in the same units. The centres are carried onto the
    plane tangent at the triad's mean direction (gnomonic), then: log(b-c / a-b), log(c-a / a-b) (the
    triangle's shape), log(perimeter / sum of radii), log(r_b / r_a), log(r_c / r_a).
    """
    m = P.sum(axis=1)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    rho = np.linalg.norm(P, axis=2).mean(axis=1)
    G = P * (rho[:, None] / np.einsum("mij,mj->mi", P, m))[:, :, None]
    s_ab = np.linalg.norm(G[:, 0] - G[:, 1], axis=1)
    s_bc = np.linalg.norm(G[:, 1] - G[:, 2], axis=1)
    s_ca = np.linalg.norm(G[:, 2] - G[:, 0], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.stack(
            [
                np.log(s_bc / s_ab),
                np.log(s_ca / s_ab),
                np.log((s_ab + s_bc + s_ca) / r.sum(axis=1)),
                np.log(r[:, 1] / r[:, 0]),
                np.log(r[:, 2] / r[:, 0]),
            ],
            axis=1,
        )


def _ccw(P: NDArray[np.float64], tri: NDArray[np.int64]) -> NDArray[np.int64]:
    """Order each triad counter-clockwise as seen from outside the sphere (first vertex kept)."""
    a, b, c = P[tri[:, 0]], P[tri[:, 1]], P[tri[:, 2]]
    flip = np.einsum("ij,ij->i", a, np.cross(b, c)) < 0.0
    out = tri.copy()
    out[flip, 1], out[flip, 2] = tri[flip, 2], tri[flip, 1]
    return out


@dataclass
class CraterIndex:
    """Triad index of a catalogue: triads (catalogue rows, CCW, all 3 rotations), descriptors, k-d trees."""

    catalog: IdCatalog
    triads: NDArray[np.int32]
    descriptors: NDArray[np.float32]
    build_s: float
    loaded_from_cache: bool = False

    def __post_init__(self) -> None:
        self.tree = cKDTree(self.descriptors.astype(np.float64) / DESCRIPTOR_SIGMA, balanced_tree=False)
        self.unit_tree = cKDTree(self.catalog.unit_me)

    def __len__(self) -> int:
        return int(self.triads.shape[0])


def _tier_triads(unit: NDArray[np.float64], radius: NDArray[np.float64]) -> NDArray[np.int64]:
    """Unique unordered triads: each crater with pairs of its nearest neighbours, tier by tier."""
    found: list[NDArray[np.int64]] = []
    r_min = TIER_BASE_M
    k = NEIGHBOURS
    pairs = np.array([(i, j) for i in range(k) for j in range(i + 1, k)], dtype=np.int64)
    while True:
        members = np.flatnonzero(radius >= r_min)
        if members.size < TIER_MIN_CRATERS:
            break
        tree = cKDTree(unit[members])
        _, nb = tree.query(unit[members], k=k + 1)
        nb = members[nb[:, 1:]]  # drop self
        a = np.repeat(members, pairs.shape[0])
        b = nb[:, pairs[:, 0]].reshape(-1)
        c = nb[:, pairs[:, 1]].reshape(-1)
        found.append(np.sort(np.stack([a, b, c], axis=1), axis=1))
        r_min *= TIER_STEP
    if not found:
        return np.empty((0, 3), dtype=np.int64)
    return np.unique(np.concatenate(found), axis=0)


def build_index(catalog: IdCatalog) -> CraterIndex:
    """Build the triad index of a catalogue (all sizes; seconds for the 24,500-crater Head + LROC list)."""
    t0 = time.perf_counter()
    if len(catalog) < 3:
        raise InputError(f"catalogue of {len(catalog)} craters: expected at least 3 to identify anything")
    unit = catalog.unit_me
    tri = _tier_triads(unit, catalog.radius_m)
    if tri.shape[0] == 0:  # a small catalogue: one tier of everything
        n = len(catalog)
        k = min(NEIGHBOURS, n - 1)
        _, nb = cKDTree(unit).query(unit, k=k + 1)
        nb = nb[:, 1:]
        rows = [(i, nb[i, a], nb[i, b]) for i in range(n) for a in range(k) for b in range(a + 1, k)]
        tri = np.unique(np.sort(np.array(rows, dtype=np.int64), axis=1), axis=0)
    tri = _ccw(catalog.centres_me_m, tri)
    rot = np.concatenate([tri, tri[:, [1, 2, 0]], tri[:, [2, 0, 1]]])
    P = catalog.centres_me_m[rot]
    d = triad_descriptors(P, catalog.radius_m[rot])
    ok = np.all(np.isfinite(d), axis=1)
    return CraterIndex(catalog, rot[ok].astype(np.int32), d[ok].astype(np.float32), time.perf_counter() - t0)


def cache_dir() -> Path:
    """Return the folder where indexes are cached."""
    env = os.environ.get("KIZUNA_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kizuna"


def load_or_build_index(
    catalog: IdCatalog, cache: bool = True, log: Callable[[str], None] | None = None
) -> CraterIndex:
    """Return the catalogue's index from the disk cache, or build it (and cache it when ``cache``)."""
    path = cache_dir() / f"crater-index-{catalog.digest[:32]}.npz"
    if cache and path.is_file():
        t0 = time.perf_counter()
        try:
            with np.load(path) as z:
                if int(z["version"]) == INDEX_VERSION and str(z["digest"]) == catalog.digest:
                    idx = CraterIndex(catalog, z["triads"], z["descriptors"], float(z["build_s"]), True)
                    if log:
                        log(f"index loaded from {path} in {time.perf_counter() - t0:.1f} s")
                    return idx
        except (OSError, KeyError, ValueError):
            pass  # unreadable or foreign cache file: rebuild it
    idx = build_index(catalog)
    if log:
        log(f"index of {len(catalog)} craters built: {len(idx)} triads in {idx.build_s:.1f} s")
    if cache:
        try:
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(
                        fh,
                        version=INDEX_VERSION,
                        digest=catalog.digest,
                        triads=idx.triads,
                        descriptors=idx.descriptors,
                        build_s=idx.build_s,
                    )
        except OSError as exc:
            if log:
                log(f"index not cached ({exc})")
    return idx
