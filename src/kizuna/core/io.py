"""The one writer for outputs: atomic files (JSON, CSV, Parquet, PNG), atomic output folders, and the
image reader shared by every field.

Every writer puts the bytes into a temporary file in the destination folder and then renames it over the
destination (``os.replace``), so a reader never sees a half-written file and a failure leaves nothing
behind. ``output_dir`` does the same for a whole folder of outputs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import enum
import io
import json
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kizuna.errors import InputError

__all__ = [
    "atomic_path",
    "atomic_write",
    "write_json",
    "write_csv",
    "write_parquet",
    "write_netcdf",
    "write_png",
    "png_bytes",
    "output_dir",
    "read_image",
]

PathLike = str | os.PathLike[str]


def _umask() -> int:
    """Return the process umask without changing it for longer than one call."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _prepare_parent(path: Path) -> Path:
    """Create the parent folder of ``path`` if needed and return it."""
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{path}: cannot create the folder {parent} ({exc.strerror or exc})") from exc
    if path.is_dir():
        raise InputError(f"{path}: is a folder; expected a file path to write")
    return parent


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, on error delete it."""
    dest = Path(path)
    parent = _prepare_parent(dest)
    fd, tmp_name = tempfile.mkstemp(dir=parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write(path: PathLike, data: bytes | str) -> Path:
    """Write bytes (or UTF-8 text) to ``path`` atomically and return the path."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    elif not isinstance(data, bytes | bytearray | memoryview):
        raise InputError(f"{path}: expected bytes or str to write, got {type(data).__name__}")
    dest = Path(path)
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return dest


def _jsonable(obj: Any, where: str, path: PathLike) -> Any:
    """Convert ``obj`` to plain JSON types: numpy to Python, non-finite floats to None."""
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist(), where, path)
    if isinstance(obj, np.datetime64):
        return None if np.isnat(obj) else str(obj)
    if isinstance(obj, np.generic):
        return _jsonable(obj.item(), where, path)
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v, f"{where}.{k}", path) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        items = sorted(obj, key=str) if isinstance(obj, set | frozenset) else obj
        return [_jsonable(v, f"{where}[{i}]", path) for i, v in enumerate(items)]
    if isinstance(obj, _dt.datetime | _dt.date | _dt.time):
        return obj.isoformat()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, enum.Enum):
        return _jsonable(obj.value, where, path)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj), where, path)
    if hasattr(obj, "isoformat"):  # pandas.Timestamp and friends
        return obj.isoformat()
    raise InputError(f"{path}: value at {where} has type {type(obj).__name__}; expected a JSON-able value")


def write_json(path: PathLike, obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as JSON with sorted keys (numpy converted, NaN/inf -> null), atomically."""
    plain = _jsonable(obj, "$", path)
    text = json.dumps(plain, indent=indent, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return atomic_write(path, text + "\n")


def write_csv(path: PathLike, df: Any, *, index: bool = False) -> Path:
    """Write a pandas DataFrame as UTF-8 CSV (full float precision), atomically."""
    if not hasattr(df, "to_csv"):
        raise InputError(f"{path}: expected a pandas DataFrame to write as CSV, got {type(df).__name__}")
    return atomic_write(path, df.to_csv(index=index, lineterminator="\n"))


def write_parquet(path: PathLike, df: Any, *, index: bool | None = None) -> Path:
    """Write a pandas DataFrame as Parquet (pyarrow), atomically."""
    if not hasattr(df, "to_parquet"):
        raise InputError(f"{path}: expected a pandas DataFrame to write as Parquet, got {type(df).__name__}")
    dest = Path(path)
    with atomic_path(dest) as tmp:
        df.to_parquet(tmp, engine="pyarrow", index=index)
    return dest


def write_netcdf(path: PathLike, ds: Any) -> Path:
    """Write an xarray Dataset as NetCDF-4 (netCDF4 engine, zlib-compressed variables), atomically."""
    if not hasattr(ds, "to_netcdf"):
        raise InputError(f"{path}: expected an xarray Dataset to write as NetCDF, got {type(ds).__name__}")
    dest = Path(path)
    encoding = {name: {"zlib": True, "complevel": 4} for name in getattr(ds, "data_vars", {})}
    with atomic_path(dest) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
    return dest


def png_bytes(fig_or_array: Any, *, dpi: float = 150.0) -> bytes:
    """Encode a matplotlib Figure (at ``dpi``) or a uint8/uint16 image array as PNG bytes."""
    if hasattr(fig_or_array, "savefig"):
        buf = io.BytesIO()
        fig_or_array.savefig(buf, format="png", dpi=dpi)
        return buf.getvalue()
    from PIL import Image

    arr = np.asarray(fig_or_array)
    ok_gray = arr.ndim == 2 and arr.dtype in (np.uint8, np.uint16)
    ok_color = arr.ndim == 3 and arr.shape[2] in (3, 4) and arr.dtype == np.uint8
    if not (ok_gray or ok_color) or arr.size == 0:
        raise InputError(
            f"image array of shape {arr.shape} and dtype {arr.dtype}: expected a Figure, a 2-D uint8/uint16 "
            "array or an (H, W, 3|4) uint8 array"
        )
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG")
    return buf.getvalue()


def write_png(path: PathLike, fig_or_array: Any, *, dpi: float = 150.0) -> Path:
    """Write a matplotlib Figure (at ``dpi``) or a uint8/uint16 image array as a PNG file, atomically."""
    try:
        data = png_bytes(fig_or_array, dpi=dpi)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
    return atomic_write(path, data)


@contextlib.contextmanager
def output_dir(path: PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``path``; on success it replaces ``path``, on error it is
    deleted so no partial output folder is left."""
    dest = Path(path)
    if dest.exists() and not dest.is_dir():
        raise InputError(f"{dest}: exists and is not a folder; expected an output folder path")
    if dest.exists() and not overwrite:
        raise InputError(f"{dest}: output folder already exists (overwrite it or choose another path)")
    parent = dest.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{dest}: cannot create the folder {parent} ({exc.strerror or exc})") from exc
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        if dest.exists():
            if not overwrite:
                raise InputError(
                    f"{dest}: output folder appeared while writing (overwrite it or choose another)"
                )
            # Move the old folder aside first: a folder cannot be renamed over a non-empty folder.
            old = Path(tempfile.mkdtemp(dir=parent, prefix=f".{dest.name}.", suffix=".old"))
            os.replace(dest, old)
            try:
                os.replace(tmp, dest)
            except BaseException:
                os.replace(old, dest)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _gray_from_rgb(rgb: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return luma (ITU-R BT.601 weights) of an (H, W, 3) array, or the one channel when all are equal."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    if np.array_equal(r, g) and np.array_equal(r, b):
        return r.copy()
    return 0.299 * r + 0.587 * g + 0.114 * b


def _read_with_pillow(path: Path) -> NDArray[np.float64]:
    """Read an 8/16-bit gray or RGB(A) image with Pillow into a [0, 1] float64 2-D array."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        mode, fmt = im.mode, im.format
        if mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            mode = im.mode
        arr = np.asarray(im)
    if mode == "1":
        return arr.astype(np.float64)
    if mode in ("L", "LA"):
        gray = arr if arr.ndim == 2 else arr[..., 0]
        return gray.astype(np.float64) / 255.0
    if mode in ("RGB", "RGBA"):
        return _gray_from_rgb(arr[..., :3].astype(np.float64)) / 255.0
    if mode.startswith("I;16"):
        return arr.astype(np.float64) / 65535.0
    if mode == "I" and fmt in ("PNG", "PPM"):
        # Pillow opens 16-bit PNG/PGM as 32-bit "I", already scaled to a 0..65535 range.
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise InputError(f"{path}: pixel values outside 0..65535; expected an 8- or 16-bit image")
        return arr.astype(np.float64) / 65535.0
    raise InputError(f"{path}: image mode {mode!r} ({fmt}); expected an 8- or 16-bit grayscale or RGB image")


def _read_tiff_with_rasterio(path: Path) -> NDArray[np.float64]:
    """Read an 8/16-bit TIFF that Pillow cannot decode (e.g. LZW multi-band) with rasterio."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            dtype = np.dtype(ds.dtypes[0])
            bands = ds.read()
    if dtype == np.uint8:
        scale = 255.0
    elif dtype == np.uint16:
        scale = 65535.0
    else:
        raise InputError(f"{path}: TIFF sample type {dtype}; expected an 8- or 16-bit unsigned image")
    data = bands.astype(np.float64)
    if data.shape[0] == 1:
        return data[0] / scale
    if data.shape[0] in (3, 4):
        return _gray_from_rgb(np.moveaxis(data[:3], 0, -1)) / scale
    raise InputError(f"{path}: {data.shape[0]} bands; expected 1 (gray), 3 (RGB) or 4 (RGBA)")


def read_image(path: PathLike) -> NDArray[np.float64]:
    """Read an 8/16-bit grayscale (or RGB) PNG, TIFF or PGM into a 2-D float64 array in [0, 1]."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: image file not found")
    from PIL import UnidentifiedImageError

    is_tiff = p.suffix.lower() in (".tif", ".tiff")
    try:
        return _read_with_pillow(p)
    except InputError:
        if not is_tiff:
            raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        if not is_tiff:
            raise InputError(f"{p}: cannot read the image ({exc}); expected a PNG, TIFF or PGM file") from exc
    try:
        return _read_tiff_with_rasterio(p)
    except InputError:
        raise
    except Exception as exc:  # rasterio raises its own error types
        raise InputError(f"{p}: cannot read the TIFF image ({exc}); expected an 8- or 16-bit TIFF") from exc
