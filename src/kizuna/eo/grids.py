"""Target grids of the Earth-observation maps and the equal-area geometry they are clipped in: regular
latitude/longitude grids, square-cell projected grids read from a shapefile (the 10 km India grid), the
Lambert cylindrical equal-area plane of the WGS84 ellipsoid (Snyder 1987, eqs. 3-12 and 10-15) and the
area scale of a projected grid's plane from PROJ. Used by :mod:`kizuna.eo.regrid`.
"""

from __future__ import annotations

import functools
import math
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kizuna.core.geodesy import WGS84_A_M, WGS84_E2
from kizuna.errors import InputError

__all__ = [
    "E_WGS84",
    "Grid",
    "authalic_q",
    "equal_area_xy",
    "polygon_area",
    "convex_quads",
    "latlon_grid",
    "read_cell_grid",
    "crs_areal_scale",
]

E_WGS84 = math.sqrt(WGS84_E2)  # first eccentricity


def authalic_q(lat_deg: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """Return the authalic function q(lat) of the WGS84 ellipsoid (Snyder 1987, eq. 3-12), dimensionless."""
    s = np.sin(np.radians(np.asarray(lat_deg, dtype=np.float64)))
    es = E_WGS84 * s
    return (1.0 - WGS84_E2) * (s / (1.0 - es * es) - np.log((1.0 - es) / (1.0 + es)) / (2.0 * E_WGS84))


def equal_area_xy(
    lon_deg: NDArray[np.float64], lat_deg: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return (x, y) in metres of the Lambert cylindrical equal-area projection of WGS84 (true scale at the
    equator): plane areas are ellipsoid areas in m^2."""
    x = WGS84_A_M * np.radians(np.asarray(lon_deg, dtype=np.float64))
    y = 0.5 * WGS84_A_M * authalic_q(lat_deg)
    return x, y


def polygon_area(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return the signed shoelace area of polygons with vertices along the last axis (counter-clockwise
    positive), in the square of the coordinates' unit; coordinates are taken relative to the first vertex."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    dx = x[..., 1:] - x[..., :1]
    dy = y[..., 1:] - y[..., :1]
    return 0.5 * np.sum(dx[..., :-1] * dy[..., 1:] - dx[..., 1:] * dy[..., :-1], axis=-1)


def convex_quads(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Return True for quadrilaterals (n, 4) whose four turns all have one sign (convex, non-degenerate)."""
    nxt = [1, 2, 3, 0]
    ex = x[:, nxt] - x
    ey = y[:, nxt] - y
    cross = ex * ey[:, nxt] - ey * ex[:, nxt]
    pos = (cross[:, 0] > 0) & (cross[:, 1] > 0) & (cross[:, 2] > 0) & (cross[:, 3] > 0)
    neg = (cross[:, 0] < 0) & (cross[:, 1] < 0) & (cross[:, 2] < 0) & (cross[:, 3] < 0)
    return pos | neg


@dataclass(frozen=True, eq=False)
class Grid:
    """A grid of cells that are axis-aligned rectangles in a plane: the WGS84 equal-area plane for a
    latitude/longitude grid (``crs == 'latlon'``) or a projected CRS's plane (metres); cell centres in
    degrees, cell areas in m^2 on the ellipsoid, and which cells belong to the grid."""

    name: str
    crs: str
    x_edges: NDArray[np.float64]
    y_edges: NDArray[np.float64]
    lat_deg: NDArray[np.float64]
    lon_deg: NDArray[np.float64]
    cell_area_m2: NDArray[np.float64]
    cell_ok: NDArray[np.bool_]
    cell_id: NDArray[np.int64] | None = None
    res_deg: float | None = None
    lat_edges_deg: NDArray[np.float64] | None = None
    lon_edges_deg: NDArray[np.float64] | None = None
    inv_scale_corners: NDArray[np.float64] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """Return (rows, columns), rows from south to north."""
        return (len(self.y_edges) - 1, len(self.x_edges) - 1)

    @property
    def is_latlon(self) -> bool:
        """Return True for a latitude/longitude grid (periodic in longitude)."""
        return self.crs == "latlon"

    def to_plane(
        self, lon_deg: NDArray[np.float64], lat_deg: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Return the grid-plane coordinates (m) of geodetic points (deg)."""
        if self.is_latlon:
            return equal_area_xy(lon_deg, lat_deg)
        x, y = _transformer(self.crs).transform(
            np.asarray(lon_deg, dtype=float), np.asarray(lat_deg, dtype=float)
        )
        return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


@functools.lru_cache(maxsize=8)
def _transformer(crs: str) -> Any:
    """Return the (cached) transformer from WGS84 geodetic (lon, lat in deg) to a CRS."""
    from pyproj import CRS, Transformer

    return Transformer.from_crs(CRS.from_epsg(4326), CRS.from_user_input(crs), always_xy=True)


def _edges(start: float, res: float, n: int) -> NDArray[np.float64]:
    """Return n + 1 edges start + k res, computed from integers so they do not drift."""
    return start + res * np.arange(n + 1, dtype=np.float64)


def latlon_grid(res_deg: float, bbox_deg: tuple[float, float, float, float], *, snap: bool = True) -> Grid:
    """Return a regular latitude/longitude grid of ``res_deg`` cells over (lat_min, lat_max, lon_min,
    lon_max) in degrees; with ``snap`` its edges are whole multiples of res_deg enclosing the box.

    lon_max may exceed 180 (a box across the antimeridian); the box must span at most 360 deg of longitude.
    """
    if not (math.isfinite(res_deg) and 0.0 < res_deg <= 90.0):
        raise InputError(f"res_deg {res_deg}: expected a cell size in (0, 90] degrees")
    lat0, lat1, lon0, lon1 = (float(v) for v in bbox_deg)
    if not (-90.0 <= lat0 < lat1 <= 90.0):
        raise InputError(f"bbox latitudes {lat0}..{lat1}: expected -90 <= LATMIN < LATMAX <= 90")
    if lon1 <= lon0:
        lon1 += 360.0
    if not (-360.0 <= lon0 < lon1 <= 720.0 and lon1 - lon0 <= 360.0 + 1e-9):
        raise InputError(f"bbox longitudes {lon0}..{lon1}: expected LONMIN < LONMAX spanning <= 360 deg")
    tol = 1e-9
    if snap:
        lat0 = max(-90.0, math.floor(lat0 / res_deg + tol) * res_deg)
        lon0 = math.floor(lon0 / res_deg + tol) * res_deg
    ny = max(1, math.ceil((lat1 - lat0) / res_deg - tol))
    nx = max(1, math.ceil((lon1 - lon0) / res_deg - tol))
    if lat0 + ny * res_deg > 90.0 + tol:
        ny = max(1, int((90.0 - lat0) / res_deg + tol))
    if nx * res_deg > 360.0 + tol:
        nx = int(360.0 / res_deg + tol)
    if ny * nx > 200_000_000:
        raise InputError(f"res_deg {res_deg}: {ny} x {nx} cells; expected a grid of at most 2e8 cells")
    lat_e = np.clip(_edges(lat0, res_deg, ny), -90.0, 90.0)
    lon_e = _edges(lon0, res_deg, nx)
    x_e, _ = equal_area_xy(lon_e, np.zeros_like(lon_e))
    _, y_e = equal_area_xy(np.zeros_like(lat_e), lat_e)
    area = np.outer(np.diff(y_e), np.diff(x_e))
    return Grid(
        name=f"latlon {res_deg:g} deg",
        crs="latlon",
        x_edges=x_e,
        y_edges=y_e,
        lat_deg=0.5 * (lat_e[1:] + lat_e[:-1]),
        lon_deg=0.5 * (lon_e[1:] + lon_e[:-1]),
        cell_area_m2=area,
        cell_ok=np.ones((ny, nx), dtype=bool),
        res_deg=float(res_deg),
        lat_edges_deg=lat_e,
        lon_edges_deg=lon_e,
    )


def _shapefile_parts(path: Path) -> tuple[bytes, bytes | None, str | None, str]:
    """Return the .shp bytes, .dbf bytes, .prj text and a name of a shapefile or of a zip holding one."""
    if not path.is_file():
        raise InputError(f"{path}: no such grid file (expected a .shp or a .zip holding one)")
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if not n.startswith("__MACOSX/") and "/._" not in "/" + n]
                shp = [n for n in names if n.lower().endswith(".shp")]
                if len(shp) != 1:
                    raise InputError(f"{path}: holds {len(shp)} .shp files; expected exactly one")
                stem = shp[0][:-4]

                def member(ext: str) -> bytes | None:
                    hits = [n for n in names if n.lower() == (stem + ext).lower()]
                    return zf.read(hits[0]) if hits else None

                prj = member(".prj")
                return zf.read(shp[0]), member(".dbf"), prj.decode("latin-1") if prj else None, shp[0]
        except zipfile.BadZipFile as exc:
            raise InputError(f"{path}: not a readable zip file ({exc})") from exc
    if path.suffix.lower() != ".shp":
        raise InputError(f"{path}: expected a .shp file or a .zip holding one")
    dbf, prj = path.with_suffix(".dbf"), path.with_suffix(".prj")
    return (
        path.read_bytes(),
        dbf.read_bytes() if dbf.is_file() else None,
        prj.read_text("latin-1") if prj.is_file() else None,
        path.name,
    )


def _shp_boxes(shp: bytes, where: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return the bounding boxes (n, 4: xmin, ymin, xmax, ymax) and plane areas of a polygon shapefile."""
    if len(shp) < 100 or struct.unpack(">i", shp[:4])[0] != 9994:
        raise InputError(f"{where}: not an ESRI shapefile (file code 9994 expected in bytes 0-3)")
    shape_type = struct.unpack("<i", shp[32:36])[0]
    if shape_type not in (5, 15, 25):
        raise InputError(f"{where}: shape type {shape_type}; expected polygons (5, 15 or 25)")
    first = struct.unpack(">i", shp[104:108])[0] * 2 if len(shp) >= 108 else 0
    n = (len(shp) - 100) // (8 + first) if first else 0
    if first >= 44 and 100 + n * (8 + first) == len(shp):
        # every record has one length (e.g. all cells squares of 5 points): read them as one array
        rec = np.frombuffer(shp, np.uint8, offset=100).reshape(n, 8 + first)
        lens = rec[:, 4:8].copy().view(">i4").ravel() * 2
        head = rec[:, 8:52].copy().view("<i4").reshape(n, 11)
        npart, npt = head[0, 9], head[0, 10]
        if np.all(lens == first) and np.all(head[:, 9] == npart) and np.all(head[:, 10] == npt):
            boxes = rec[:, 12:44].copy().view("<f8").reshape(n, 4)
            start = 52 + 4 * int(npart)
            xy = rec[:, start : start + 16 * int(npt)].copy().view("<f8").reshape(n, int(npt), 2)
            return boxes, np.abs(polygon_area(xy[..., 0], xy[..., 1]))
    boxes, areas = [], []
    off = 100
    while off + 8 <= len(shp):
        clen = struct.unpack(">i", shp[off + 4 : off + 8])[0] * 2
        rec = shp[off + 8 : off + 8 + clen]
        off += 8 + clen
        if len(rec) < 44 or struct.unpack("<i", rec[:4])[0] == 0:
            boxes.append((np.nan,) * 4)
            areas.append(np.nan)
            continue
        npart, npt = struct.unpack("<2i", rec[36:44])
        xy = np.frombuffer(rec, "<f8", count=2 * npt, offset=44 + 4 * npart).reshape(npt, 2)
        boxes.append(struct.unpack("<4d", rec[4:36]))
        areas.append(abs(float(polygon_area(xy[:, 0], xy[:, 1]))))
    return np.asarray(boxes, dtype=float), np.asarray(areas, dtype=float)


def _dbf_ids(dbf: bytes, n: int, where: str) -> NDArray[np.int64]:
    """Return the ``grid_id`` (or ``id``) column of a dBASE table, or 1..n when it has none."""
    nrec, hlen, rlen = struct.unpack("<IHH", dbf[4:12])
    pos, start, field = 32, 1, None
    while pos + 32 <= hlen and dbf[pos] != 0x0D:
        name = dbf[pos : pos + 11].split(b"\0")[0].decode("latin-1").lower()
        width = dbf[pos + 16]
        if name in ("grid_id", "id") and field is None:
            field = (start, width)
        start += width
        pos += 32
    if field is None:
        return np.arange(1, n + 1, dtype=np.int64)
    if nrec != n:
        raise InputError(f"{where}: the .dbf has {nrec} records for {n} shapes; expected one per shape")
    rows = np.frombuffer(dbf, np.uint8, count=nrec * rlen, offset=hlen).reshape(nrec, rlen)
    text = rows[:, field[0] : field[0] + field[1]].copy().view(f"S{field[1]}").ravel()
    try:
        return np.array([int(float(t)) for t in text], dtype=np.int64)
    except ValueError as exc:
        raise InputError(f"{where}: column grid_id: {exc}; expected whole numbers") from exc


def read_cell_grid(path: str | Path, name: str | None = None) -> Grid:
    """Read a grid of equal square cells in a projected CRS from a polygon shapefile (or a zip holding
    one, e.g. the 10 km India grid): cell ids, edges and CRS (from the .prj), areas in m^2 on WGS84."""
    from pyproj import CRS, Transformer
    from pyproj.exceptions import CRSError

    p = Path(path)
    shp, dbf, prj, member = _shapefile_parts(p)
    where = f"{p}:{member}" if p.suffix.lower() == ".zip" else str(p)
    if prj is None:
        raise InputError(f"{where}: no .prj beside it; expected the grid's projection")
    try:
        crs = CRS.from_user_input(prj)
    except CRSError as exc:
        raise InputError(f"{where}: .prj not understood ({exc})") from exc
    if not crs.is_projected:
        raise InputError(f"{where}: CRS {crs.name!r} is not projected; expected square cells in metres")
    boxes, areas = _shp_boxes(shp, where)
    ok = np.isfinite(areas)
    if not ok.any():
        raise InputError(f"{where}: no polygon; expected grid cells")
    b = boxes[ok]
    dx = float(np.median(b[:, 2] - b[:, 0]))
    dy = float(np.median(b[:, 3] - b[:, 1]))
    x0, y0 = float(b[:, 0].min()), float(b[:, 1].min())
    col = (b[:, 0] - x0) / dx
    row = (b[:, 1] - y0) / dy
    regular = (
        np.allclose(b[:, 2] - b[:, 0], dx, rtol=1e-6)
        and np.allclose(b[:, 3] - b[:, 1], dy, rtol=1e-6)
        and np.allclose(areas[ok], dx * dy, rtol=1e-6)
        and np.allclose(col, np.round(col), atol=1e-6)
        and np.allclose(row, np.round(row), atol=1e-6)
    )
    if not regular:
        raise InputError(f"{where}: cells are not equal axis-aligned rectangles on one lattice")
    col, row = np.round(col).astype(np.int64), np.round(row).astype(np.int64)
    nx, ny = int(col.max()) + 1, int(row.max()) + 1
    ids = _dbf_ids(dbf, len(areas), where)[ok] if dbf is not None else np.flatnonzero(ok) + 1
    cell_id = np.full((ny, nx), -1, dtype=np.int64)
    cell_id[row, col] = ids
    xe, ye = _edges(x0, dx, nx), _edges(y0, dy, ny)
    inv = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True)
    lon_c, lat_c = inv.transform(*np.meshgrid(xe, ye))
    g = 1.0 / crs_areal_scale(crs, lon_c, lat_c)
    lon, lat = inv.transform(*np.meshgrid(0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1])))
    return Grid(
        name=name or Path(member).stem,
        crs=crs.to_wkt(),
        x_edges=xe,
        y_edges=ye,
        lat_deg=np.asarray(lat),
        lon_deg=np.asarray(lon),
        # the integral of the bilinear area factor over a cell: its corner mean times the plane area
        cell_area_m2=dx * dy * 0.25 * (g[1:, 1:] + g[1:, :-1] + g[:-1, 1:] + g[:-1, :-1]),
        cell_ok=cell_id >= 0,
        cell_id=cell_id,
        inv_scale_corners=g,
    )


def crs_areal_scale(crs: object, lon_deg: NDArray[np.float64], lat_deg: NDArray[np.float64]) -> NDArray:
    """Return the areal scale factor (plane area / ellipsoid area, dimensionless) of a projected CRS at
    geodetic points (deg), from PROJ."""
    from pyproj import CRS, Proj

    proj = Proj(CRS.from_user_input(crs))
    f = proj.get_factors(np.asarray(lon_deg, dtype=float), np.asarray(lat_deg, dtype=float))
    return np.asarray(f.areal_scale, dtype=float)
