"""Raster DEMs: read GeoTIFF and PDS3 IMG elevation models into one small value type, write GeoTIFF.

A :class:`Raster` holds heights in metres (above the reference sphere for lunar products), an affine
transform from pixel corner coordinates (column, row) to map coordinates, and the CRS. PDS3 products in
SIMPLE CYLINDRICAL projection get a geographic transform in degrees of planetocentric longitude (east)
and latitude, with the longitude range of the label (e.g. 0..360 for LOLA).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from rasterio import Affine

from kizuna.core.constants import MOON_RADIUS_M
from kizuna.core.io import atomic_path
from kizuna.errors import InputError

__all__ = ["Raster", "raster_from_centres", "read_dem", "read_pds3_label", "write_geotiff", "to_xarray"]

PathLike = str | os.PathLike[str]


@dataclass(frozen=True, eq=False)
class Raster:
    """A 2-D grid of values (e.g. heights in m) with its affine pixel-corner -> map transform and CRS."""

    data: NDArray[np.float64]
    transform: Affine
    crs: str | None = None
    units: str = "m"

    def __post_init__(self) -> None:
        arr = np.asarray(self.data, dtype=np.float64)
        if arr.ndim != 2 or arr.size == 0:
            raise InputError(f"raster data of shape {arr.shape}: expected a non-empty 2-D array")
        object.__setattr__(self, "data", arr)
        if not isinstance(self.transform, Affine):
            object.__setattr__(self, "transform", Affine(*tuple(self.transform)[:6]))

    @property
    def shape(self) -> tuple[int, int]:
        """Return (rows, columns)."""
        return self.data.shape  # type: ignore[return-value]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Return (left, bottom, right, top) of the outer pixel edges in map units (axis-aligned grids)."""
        rows, cols = self.shape
        x0, y0 = self.transform @ (0, 0)
        x1, y1 = self.transform @ (cols, rows)
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)

    def xy(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Return the map x of each column centre and the map y of each row centre (axis-aligned grids)."""
        t = self.transform
        if t.b != 0.0 or t.d != 0.0:
            raise InputError(
                f"raster transform {tuple(t)[:6]}: rotated grid; expected an axis-aligned transform"
            )
        rows, cols = self.shape
        return t.c + t.a * (np.arange(cols) + 0.5), t.f + t.e * (np.arange(rows) + 0.5)


# --------------------------------------------------------------------------------------------- PDS3 labels

_KEY_RE = re.compile(r"\s*(\^?[A-Za-z][A-Za-z0-9_:]*)\s*=\s*")
_NUM_RE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][-+]?\d+)?)\s*(?:<\s*([^>]*)\s*>)?\s*$")
_BASED_RE = re.compile(r"^\s*(\d+)#([0-9A-Fa-f]+)#\s*$")


def _split_value(text: str, pos: int, path: Path) -> tuple[str, int]:
    """Return the raw value at ``pos`` (quoted, set/sequence, or to end of line) and the next position."""
    n = len(text)
    while pos < n and text[pos] in " \t":
        pos += 1
    if pos >= n:
        return "", pos
    ch = text[pos]
    if ch in "\"'":
        end = text.find(ch, pos + 1)
        if end < 0:
            raise InputError(f"{path}: unterminated quoted value in the PDS3 label (offset {pos})")
        return text[pos : end + 1], end + 1
    if ch in "({":
        close = ")" if ch == "(" else "}"
        depth, i, quote = 0, pos, None
        while i < n:
            c = text[i]
            if quote:
                quote = None if c == quote else quote
            elif c in "\"'":
                quote = c
            elif c in "({":
                depth += 1
            elif c in ")}":
                depth -= 1
                if depth == 0:
                    return text[pos : i + 1], i + 1
            i += 1
        raise InputError(f"{path}: unterminated {ch}...{close} value in the PDS3 label (offset {pos})")
    end = text.find("\n", pos)
    end = n if end < 0 else end
    return text[pos:end].strip(), end


def _parse_label_text(text: str, path: Path) -> dict[str, Any]:
    """Parse PDS3 ODL text into nested dicts: OBJECT/GROUP blocks become dicts under their name."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    root: dict[str, Any] = {}
    stack: list[dict[str, Any]] = [root]
    pos, n = 0, len(text)
    while pos < n:
        line_end = text.find("\n", pos)
        line_end = n if line_end < 0 else line_end
        stripped = text[pos:line_end].strip()
        if not stripped:
            pos = line_end + 1
            continue
        if stripped == "END":
            break
        m = _KEY_RE.match(text, pos)
        if not m:
            line_no = text.count("\n", 0, pos) + 1
            raise InputError(
                f"{path}: line {line_no} of the PDS3 label: expected KEYWORD = VALUE, got {stripped!r}"
            )
        key = m.group(1).upper()
        value, pos = _split_value(text, m.end(), path)
        if key in ("OBJECT", "GROUP"):
            child: dict[str, Any] = {}
            name = value.strip("\"'").upper()
            stack[-1].setdefault(name, child)
            stack.append(child)
        elif key in ("END_OBJECT", "END_GROUP"):
            if len(stack) == 1:
                raise InputError(f"{path}: {key} without a matching OBJECT/GROUP in the PDS3 label")
            stack.pop()
        else:
            stack[-1][key] = value
    return root


def read_pds3_label(path: PathLike) -> dict[str, Any]:
    """Parse a PDS3 label (detached .LBL, or attached at the start of an .IMG) into nested dicts of text."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(1 << 20)
    except OSError as exc:
        raise InputError(f"{p}: cannot read the PDS3 label ({exc.strerror or exc})") from exc
    if not head.lstrip().startswith((b"PDS_VERSION_ID", b"ODL_VERSION_ID")):
        raise InputError(f"{p}: no PDS3 label (expected the file to start with PDS_VERSION_ID)")
    end = re.search(rb"(?m)^\s*END\s*$", head)
    if end is None:
        raise InputError(f"{p}: PDS3 label has no END line within the first MiB")
    return _parse_label_text(head[: end.end()].decode("latin-1"), p)


def _num(label: dict[str, Any], key: str, path: Path, default: float | None = None) -> float:
    """Return a numeric label value (units in <...> dropped), or ``default``; InputError if malformed."""
    raw = label.get(key)
    if raw is None or str(raw).strip("\"' ").upper() in ("", "N/A", "NULL", "UNK"):
        if default is None:
            raise InputError(f"{path}: PDS3 label has no {key}; expected a numeric {key}")
        return default
    m = _NUM_RE.match(str(raw))
    if m:
        return float(m.group(1).replace("D", "E").replace("d", "e"))
    b = _BASED_RE.match(str(raw))
    if b:
        return float(int(b.group(2), int(b.group(1))))
    raise InputError(f"{path}: PDS3 label {key} = {raw!r}: expected a number")


def _unit(label: dict[str, Any], key: str) -> str:
    """Return the <unit> written after a label value, lower-case, or ''."""
    m = _NUM_RE.match(str(label.get(key, "")))
    return (m.group(2) or "").strip().lower() if m else ""


def _text(label: dict[str, Any], key: str, default: str = "") -> str:
    """Return a label value as upper-case text without quotes."""
    return str(label.get(key, default)).strip().strip("\"'").strip().upper()


_SAMPLE_TYPES = {
    # PDS3 SAMPLE_TYPE -> (numpy kind, byte order)
    "LSB_INTEGER": ("i", "<"),
    "PC_INTEGER": ("i", "<"),
    "VAX_INTEGER": ("i", "<"),
    "MSB_INTEGER": ("i", ">"),
    "SUN_INTEGER": ("i", ">"),
    "MAC_INTEGER": ("i", ">"),
    "INTEGER": ("i", ">"),
    "LSB_UNSIGNED_INTEGER": ("u", "<"),
    "PC_UNSIGNED_INTEGER": ("u", "<"),
    "VAX_UNSIGNED_INTEGER": ("u", "<"),
    "MSB_UNSIGNED_INTEGER": ("u", ">"),
    "SUN_UNSIGNED_INTEGER": ("u", ">"),
    "MAC_UNSIGNED_INTEGER": ("u", ">"),
    "UNSIGNED_INTEGER": ("u", ">"),
    "PC_REAL": ("f", "<"),
    "IEEE_REAL": ("f", ">"),
    "MSB_IEEE_REAL": ("f", ">"),
    "SUN_REAL": ("f", ">"),
    "MAC_REAL": ("f", ">"),
    "REAL": ("f", ">"),
    "FLOAT": ("f", ">"),
}


def _sample_dtype(image: dict[str, Any], path: Path) -> np.dtype:
    """Return the numpy dtype of the IMAGE samples from SAMPLE_TYPE and SAMPLE_BITS."""
    stype = _text(image, "SAMPLE_TYPE")
    bits = int(_num(image, "SAMPLE_BITS", path))
    if stype not in _SAMPLE_TYPES:
        raise InputError(f"{path}: SAMPLE_TYPE {stype!r}; expected one of {', '.join(sorted(_SAMPLE_TYPES))}")
    kind, order = _SAMPLE_TYPES[stype]
    valid = (32, 64) if kind == "f" else (8, 16, 32, 64)
    if bits not in valid:
        raise InputError(f"{path}: SAMPLE_BITS {bits} for {stype}; expected one of {valid}")
    return np.dtype(f"{order if bits > 8 else '|'}{kind}{bits // 8}")


def _find_image_file(name: str, label_path: Path) -> Path:
    """Resolve a file named in a detached label, relative to the label's folder, any letter case."""
    candidate = label_path.parent / name
    if candidate.is_file():
        return candidate
    lower = name.lower()
    for entry in label_path.parent.iterdir():
        if entry.name.lower() == lower and entry.is_file():
            return entry
    raise InputError(f"{label_path}: ^IMAGE points to {name!r}, which was not found beside the label")


def _image_pointer(label: dict[str, Any], label_path: Path, attached: bool) -> tuple[Path, int]:
    """Return (data file, byte offset of the image) from the label's ^IMAGE pointer."""
    raw = label.get("^IMAGE")
    if raw is None:
        for obj in label.values():  # some products put the pointer inside a file object
            if isinstance(obj, dict) and "^IMAGE" in obj:
                raw = obj["^IMAGE"]
                label = {**label, **{k: v for k, v in obj.items() if not isinstance(v, dict)}}
                break
    if raw is None:
        raise InputError(f"{label_path}: PDS3 label has no ^IMAGE pointer; expected ^IMAGE = file or record")
    record_bytes = _num(label, "RECORD_BYTES", label_path, default=0.0)
    raw = str(raw).strip()
    name, loc = None, None
    if raw.startswith("("):
        parts = [p.strip() for p in raw.strip("()").split(",")]
        name = parts[0].strip("\"'")
        loc = parts[1] if len(parts) > 1 else None
    elif raw[:1] in "\"'":
        name = raw.strip("\"'")
    else:
        loc = raw
    offset = 0
    if loc is not None:
        m = _NUM_RE.match(loc)
        if not m:
            raise InputError(f"{label_path}: ^IMAGE = {raw!r}: expected a record number or N <BYTES>")
        start = int(float(m.group(1)))
        if (m.group(2) or "").strip().upper() == "BYTES":
            offset = start - 1
        else:
            if record_bytes <= 0:
                raise InputError(f"{label_path}: ^IMAGE counts records but RECORD_BYTES is missing")
            offset = (start - 1) * int(record_bytes)
    data_path = _find_image_file(name, label_path) if name else label_path
    if not name and not attached:
        raise InputError(f"{label_path}: ^IMAGE = {raw!r} in a detached label; expected a file name")
    return data_path, offset


def _find_image_object(label: dict[str, Any]) -> dict[str, Any] | None:
    """Return the IMAGE object (at top level or inside a file object)."""
    if isinstance(label.get("IMAGE"), dict):
        return label["IMAGE"]
    for obj in label.values():
        if isinstance(obj, dict) and isinstance(obj.get("IMAGE"), dict):
            return obj["IMAGE"]
    return None


def _simple_cylindrical_transform(
    proj: dict[str, Any], lines: int, samples: int, path: Path
) -> tuple[Affine, float]:
    """Return the lon/lat-degree transform and sphere radius (m) of a SIMPLE CYLINDRICAL projection."""
    ptype = _text(proj, "MAP_PROJECTION_TYPE")
    if ptype not in ("SIMPLE CYLINDRICAL", "SIMPLE_CYLINDRICAL", "EQUIRECTANGULAR"):
        raise InputError(f"{path}: MAP_PROJECTION_TYPE {ptype!r}; expected SIMPLE CYLINDRICAL")
    a_km = _num(proj, "A_AXIS_RADIUS", path, default=MOON_RADIUS_M / 1000.0)
    radius_m = a_km * (1.0 if _unit(proj, "A_AXIS_RADIUS") in ("m", "meter", "meters", "metre") else 1000.0)
    clat = _num(proj, "CENTER_LATITUDE", path, default=0.0)
    if clat != 0.0:
        raise InputError(
            f"{path}: CENTER_LATITUDE {clat} for {ptype}; expected 0 (a simple cylindrical grid)"
        )
    res = _num(proj, "MAP_RESOLUTION", path, default=0.0)
    if res <= 0.0:
        scale = _num(proj, "MAP_SCALE", path, default=0.0)
        scale_m = scale * (1000.0 if _unit(proj, "MAP_SCALE").startswith("km") else 1.0)
        if scale_m <= 0.0:
            raise InputError(f"{path}: PDS3 label has neither MAP_RESOLUTION nor MAP_SCALE; expected one")
        res = math.radians(radius_m) / scale_m  # pixels per degree
    step = 1.0 / res
    # Outer edges from the bounds when they fit the grid exactly; otherwise from the projection offsets
    # (PDS3 convention: line = LINE_PROJECTION_OFFSET - lat * res, sample = SAMPLE_PROJECTION_OFFSET +
    # (lon - CENTER_LONGITUDE) * res, both counted from 0 at the centre of the first pixel).
    west = _num(proj, "WESTERNMOST_LONGITUDE", path, default=math.nan)
    east = _num(proj, "EASTERNMOST_LONGITUDE", path, default=math.nan)
    north = _num(proj, "MAXIMUM_LATITUDE", path, default=math.nan)
    south = _num(proj, "MINIMUM_LATITUDE", path, default=math.nan)
    if _text(proj, "POSITIVE_LONGITUDE_DIRECTION", "EAST") == "WEST":
        raise InputError(f"{path}: POSITIVE_LONGITUDE_DIRECTION WEST; expected EAST (planetocentric)")
    if all(math.isfinite(v) for v in (west, east)) and abs((east - west) * res - samples) < 1e-6 * samples:
        x0 = west
    else:
        clon = _num(proj, "CENTER_LONGITUDE", path)
        x0 = clon - (_num(proj, "SAMPLE_PROJECTION_OFFSET", path) + 0.5) * step
    if all(math.isfinite(v) for v in (north, south)) and abs((north - south) * res - lines) < 1e-6 * lines:
        y0 = north
    else:
        y0 = (_num(proj, "LINE_PROJECTION_OFFSET", path) + 0.5) * step
    return Affine(step, 0.0, x0, 0.0, -step, y0), radius_m


def _read_pds3(path: Path) -> tuple[NDArray[np.float64], Affine, str, NDArray[np.bool_]]:
    """Read a PDS3 IMG DEM: heights (m, NaN where missing), transform, CRS, missing-cell mask."""
    if path.suffix.lower() == ".lbl":
        label_path, attached = path, False
    else:
        detached = [path.with_suffix(s) for s in (".LBL", ".lbl")]
        found = [p for p in detached if p.is_file()]
        label_path, attached = (found[0], False) if found else (path, True)
    label = read_pds3_label(label_path)
    image = _find_image_object(label)
    if image is None:
        raise InputError(f"{label_path}: PDS3 label has no IMAGE object; expected OBJECT = IMAGE")
    data_path, offset = _image_pointer(label, label_path, attached)
    lines = int(_num(image, "LINES", label_path))
    samples = int(_num(image, "LINE_SAMPLES", label_path))
    bands = int(_num(image, "BANDS", label_path, default=1.0))
    if bands != 1:
        raise InputError(f"{label_path}: BANDS = {bands}; expected a single-band DEM")
    if lines <= 0 or samples <= 0:
        raise InputError(f"{label_path}: LINES = {lines}, LINE_SAMPLES = {samples}; expected positive sizes")
    dtype = _sample_dtype(image, label_path)
    prefix = int(_num(image, "LINE_PREFIX_BYTES", label_path, default=0.0))
    suffix = int(_num(image, "LINE_SUFFIX_BYTES", label_path, default=0.0))
    row_bytes = prefix + samples * dtype.itemsize + suffix
    need = offset + lines * row_bytes
    size = data_path.stat().st_size
    if size < need:
        raise InputError(
            f"{data_path}: truncated: {size} bytes, but the label ({label_path.name}) describes "
            f"{lines} lines x {samples} samples of {dtype.itemsize} bytes from byte {offset} ({need} bytes)"
        )
    raw = np.fromfile(data_path, dtype=np.uint8, count=lines * row_bytes, offset=offset)
    dn = raw.reshape(lines, row_bytes)[:, prefix : prefix + samples * dtype.itemsize].copy().view(dtype)
    dn = dn.reshape(lines, samples)

    missing = np.zeros(dn.shape, dtype=bool)
    if dtype.kind == "f":
        missing |= ~np.isfinite(dn)
    raw_missing = image.get("MISSING_CONSTANT")
    if raw_missing is not None:
        based = _BASED_RE.match(str(raw_missing))
        if based and dtype.kind == "f":  # a bit pattern, e.g. 16#FF7FFFFB# for PC_REAL
            bits = int(based.group(2), int(based.group(1)))
            mc = np.array([bits], dtype=f"u{dtype.itemsize}").view(dtype.newbyteorder("="))[0]
        else:
            mc = _num(image, "MISSING_CONSTANT", label_path)
        missing |= dn == mc

    unit = _text(image, "UNIT", "METER")
    factor = {"METER": 1.0, "METERS": 1.0, "METRE": 1.0, "M": 1.0, "KILOMETER": 1000.0, "KILOMETERS": 1000.0}
    factor.update({"KM": 1000.0, "KILOMETRE": 1000.0})
    if unit not in factor:
        raise InputError(f"{label_path}: IMAGE UNIT {unit!r}; expected METER or KILOMETER")
    scale = _num(image, "SCALING_FACTOR", label_path, default=1.0)
    off = _num(image, "OFFSET", label_path, default=0.0)

    proj = label.get("IMAGE_MAP_PROJECTION")
    if not isinstance(proj, dict):
        raise InputError(f"{label_path}: PDS3 label has no IMAGE_MAP_PROJECTION object; expected one")
    transform, radius_m = _simple_cylindrical_transform(proj, lines, samples, label_path)
    # Heights above the reference sphere: products that store radius (OFFSET = the sphere radius, as LOLA
    # GDRs do) get the radius subtracted, so height = DN * SCALING_FACTOR (+ OFFSET - radius).
    off_m = off * factor[unit]
    if off_m > 0.5 * radius_m:
        off_m -= radius_m
    heights = dn.astype(np.float64) * (scale * factor[unit]) + off_m
    heights[missing] = np.nan
    crs = f"+proj=longlat +a={radius_m:.10g} +b={radius_m:.10g} +no_defs +type=crs"
    return heights, transform, crs, missing


def raster_from_centres(
    values: ArrayLike, y_centres: ArrayLike, x_centres: ArrayLike, crs: str | None, units: str = "1"
) -> Raster:
    """Return a north-up Raster of (y, x) values given on evenly spaced cell centres (map units or deg).

    Rows may run south-to-north (ascending y, as latitude axes usually do) or north-to-south; ascending rows
    are flipped so that the first row is the northern edge, as GeoTIFF readers expect.
    """
    yc, xc = np.asarray(y_centres, float), np.asarray(x_centres, float)
    if yc.size < 2 or xc.size < 2:
        raise InputError("raster: need at least 2 x 2 cells to know the cell size")
    dx, dy = float(np.mean(np.diff(xc))), float(np.mean(np.diff(yc)))
    if not (np.allclose(np.diff(xc), dx, rtol=1e-6) and np.allclose(np.diff(yc), dy, rtol=1e-6)):
        raise InputError("raster: x/y cell centres are not evenly spaced; expected a regular grid")
    v = np.asarray(values, dtype=float)
    if dy > 0:  # ascending y: flip rows to north-up
        v, dy, y0 = v[::-1], -dy, float(yc[-1])
    else:
        y0 = float(yc[0])
    return Raster(v, Affine(dx, 0.0, float(xc[0]) - dx / 2, 0.0, dy, y0 - dy / 2), crs, units)


# -------------------------------------------------------------------------------------------------- GeoTIFF

_UNIT_FACTORS = {"": 1.0, "m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0}
_UNIT_FACTORS.update({"km": 1000.0, "kilometer": 1000.0, "kilometers": 1000.0, "kilometre": 1000.0})


def _read_geotiff(path: Path, band: int) -> tuple[NDArray[np.float64], Affine, str | None, NDArray[np.bool_]]:
    """Read one band of a GeoTIFF DEM: heights (m, NaN where nodata), transform, CRS WKT, nodata mask."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                if not 1 <= band <= ds.count:
                    raise InputError(f"{path}: band {band} requested; the file has {ds.count} band(s)")
                raw = ds.read(band)
                nodata = ds.nodatavals[band - 1]
                scale = ds.scales[band - 1] if ds.scales else 1.0
                offset = ds.offsets[band - 1] if ds.offsets else 0.0
                unit = (ds.units[band - 1] if ds.units else None) or ""
                transform = ds.transform
                crs = ds.crs.to_wkt() if ds.crs else None
    except RasterioIOError as exc:
        raise InputError(f"{path}: cannot read the GeoTIFF ({exc})") from exc
    key = unit.strip().lower()
    if key not in _UNIT_FACTORS:
        raise InputError(f"{path}: band {band} unit {unit!r}; expected metres or kilometres")
    missing = np.zeros(raw.shape, dtype=bool)
    if nodata is not None:
        missing |= np.isnan(raw) if np.isnan(nodata) else raw == nodata
    heights = (
        raw.astype(np.float64) * (scale if scale is not None else 1.0) + (offset or 0.0)
    ) * _UNIT_FACTORS[key]
    missing |= ~np.isfinite(heights)
    heights[missing] = np.nan
    return heights, transform, crs, missing


def read_dem(path: PathLike, *, allow_nan: bool = False, band: int = 1) -> Raster:
    """Read a DEM (GeoTIFF, or PDS3 .IMG with attached or detached .LBL) as heights in metres.

    Missing cells (nodata, MISSING_CONSTANT, NaN) become NaN; unless ``allow_nan`` they raise InputError
    naming their count and the first one.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: DEM file not found")
    suffix = p.suffix.lower()
    if suffix in (".img", ".lbl"):
        heights, transform, crs, missing = _read_pds3(p)
    elif suffix in (".tif", ".tiff", ".gtiff"):
        heights, transform, crs, missing = _read_geotiff(p, band)
    else:
        with open(p, "rb") as fh:
            magic = fh.read(16)
        if magic.startswith((b"PDS_VERSION_ID", b"ODL_VERSION_ID")):
            heights, transform, crs, missing = _read_pds3(p)
        elif magic[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            heights, transform, crs, missing = _read_geotiff(p, band)
        else:
            raise InputError(f"{p}: unknown DEM format; expected a GeoTIFF (.tif) or a PDS3 .IMG/.LBL")
    if missing.any() and not allow_nan:
        r, c = np.argwhere(missing)[0]
        x, y = transform @ (c + 0.5, r + 0.5)
        raise InputError(
            f"{p}: {int(missing.sum())} missing/NaN cells in the DEM (first at row {r}, column {c}: "
            f"x={x:.6g}, y={y:.6g}); expected finite heights (pass allow_nan=True to keep them as NaN)"
        )
    return Raster(data=heights, transform=transform, crs=crs, units="m")


def write_geotiff(
    path: PathLike,
    raster: Raster,
    *,
    dtype: str = "float64",
    compress: str = "deflate",
    nodata: float | None = None,
) -> Path:
    """Write a Raster as a single-band GeoTIFF, atomically; return the path.

    Float rasters (float32/float64) mark NaN as nodata; uint8 rasters (classes, flags) take their values
    as given, with ``nodata`` (e.g. 255) naming the value that marks cells without data.
    """
    import rasterio
    from rasterio.crs import CRS
    from rasterio.errors import CRSError, NotGeoreferencedWarning

    if not isinstance(raster, Raster):
        raise InputError(f"{path}: expected a Raster to write, got {type(raster).__name__}")
    np_dtype = np.dtype(dtype)
    if np_dtype.kind != "f" and np_dtype != np.uint8:
        raise InputError(f"{path}: GeoTIFF dtype {dtype!r}; expected float32, float64 or uint8")
    if np_dtype == np.uint8:
        vals = raster.data
        if (
            not np.all(np.isfinite(vals))
            or vals.min() < 0
            or vals.max() > 255
            or np.any(vals != np.round(vals))
        ):
            raise InputError(f"{path}: uint8 GeoTIFF: expected whole values 0..255 in every cell")
    try:
        crs = CRS.from_user_input(raster.crs) if raster.crs else None
    except CRSError as exc:
        raise InputError(f"{path}: raster CRS {raster.crs!r} not understood ({exc})") from exc
    rows, cols = raster.shape
    profile = {
        "driver": "GTiff",
        "width": cols,
        "height": rows,
        "count": 1,
        "dtype": np_dtype.name,
        "transform": raster.transform,
        "crs": crs,
        "nodata": (np.nan if nodata is None else nodata) if np_dtype.kind == "f" else nodata,
        "compress": compress,
    }
    dest = Path(path)
    with atomic_path(dest) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(tmp, "w", **profile) as ds:
            ds.write(raster.data.astype(np_dtype), 1)
            ds.units = (raster.units,)
    return dest


def to_xarray(raster: Raster, name: str = "height") -> Any:
    """Return the raster as an xarray.DataArray with dims (y, x), pixel-centre coordinates and attrs."""
    import xarray as xr

    x, y = raster.xy()
    return xr.DataArray(
        raster.data,
        dims=("y", "x"),
        coords={"y": y, "x": x},
        name=name,
        attrs={"units": raster.units, "crs": raster.crs or "", "transform": tuple(raster.transform)[:6]},
    )
