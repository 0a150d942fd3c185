"""Parquet storage of RINEX observations: the long table (epoch, time, sv, signal, value, lli, ssi) with the
header as key-value metadata, written atomically, read back exactly; and the read cache built on it.

The metadata key ``kizuna.rinex_obs`` holds JSON: the header fields, the satellite and signal lists, and
the epochs (int64 ns), epoch flags (int8) and receiver clock offsets (float64, s) as base64 of
little-endian arrays, so epochs without any observation survive the round trip.
"""

from __future__ import annotations

import base64
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from kizuna.core.io import atomic_path
from kizuna.errors import InputError

__all__ = ["write_parquet", "read_parquet", "load_entry", "store_entry"]

META_KEY = b"kizuna.rinex_obs"


def _b64(a: np.ndarray, dtype: str) -> str:
    """Return base64 text of an array's bytes in a fixed little-endian dtype."""
    return base64.b64encode(np.ascontiguousarray(a, dtype=dtype).tobytes()).decode("ascii")


def _unb64(text: str, dtype: str) -> np.ndarray:
    """Return a writable array of base64 text written by _b64."""
    return np.frombuffer(base64.b64decode(text), dtype=dtype).astype(dtype[1:], copy=True)


def _nan_to_none(x: list[float]) -> list[float | None]:
    """Return floats with NaN as None (JSON null)."""
    return [None if math.isnan(v) else v for v in x]


def _none_to_nan(x: list[float | None]) -> np.ndarray:
    """Return a float array with None as NaN."""
    return np.array([math.nan if v is None else v for v in x], dtype=float)


def _write(obs: Any, path: str | os.PathLike[str], extra: dict[str, Any]) -> Path:
    """Write obs as Parquet with metadata plus ``extra`` keys, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n_sat, n_sig = obs.values.shape[1:]
    flat = np.flatnonzero(~np.isnan(obs.values.reshape(-1)))
    e, rest = np.divmod(flat, n_sat * n_sig)
    s, k = np.divmod(rest, n_sig)
    meta = obs.header_attrs()
    meta["approx_pos_ecef_m"] = _nan_to_none(meta["approx_pos_ecef_m"])
    meta["antenna_delta_hen_m"] = _nan_to_none(meta["antenna_delta_hen_m"])
    meta["interval_s"] = _nan_to_none([meta["interval_s"]])[0]
    meta.update(
        sats=[str(x) for x in obs.sats],
        signals=list(obs.signals),
        epochs_ns=_b64(obs.epochs.view(np.int64), "<i8"),
        epoch_flags=_b64(obs.epoch_flags, "<i1"),
        clock_offset_s=_b64(obs.clock_offset_s, "<f8"),
        **extra,
    )
    table = pa.table(
        {
            "epoch": pa.array(e.astype(np.int32)),
            "time": pa.array(obs.epochs[e]),
            "sv": pa.DictionaryArray.from_arrays(
                pa.array(s.astype(np.int16)), pa.array([str(x) for x in obs.sats])
            ),
            "signal": pa.DictionaryArray.from_arrays(
                pa.array(k.astype(np.int16)), pa.array(list(obs.signals))
            ),
            "value": pa.array(obs.values.reshape(-1)[flat]),
            "lli": pa.array(obs.lli.reshape(-1)[flat]),
            "ssi": pa.array(obs.ssi.reshape(-1)[flat]),
        }
    )
    table = table.replace_schema_metadata({META_KEY: json.dumps(meta, sort_keys=True).encode("utf-8")})
    dest = Path(path)
    with atomic_path(dest) as tmp:
        pq.write_table(table, tmp, compression="zstd", use_dictionary=["epoch", "time", "sv", "signal"])
    return dest


def write_parquet(obs: Any, path: str | os.PathLike[str]) -> Path:
    """Write ObsData as a Parquet long table with the header as key-value metadata, atomically."""
    from kizuna.gnss.rinex_obs import FORMAT_VERSION

    return _write(obs, path, {"format_version": FORMAT_VERSION})


def _indices(column: Any, names: list[str], what: str, where: str) -> np.ndarray:
    """Return int64 indices into ``names`` of a string or dictionary column."""
    import pyarrow as pa

    lookup = {n: i for i, n in enumerate(names)}
    if not pa.types.is_dictionary(column.type):
        column = column.dictionary_encode()
    parts = []
    for chunk in column.chunks:
        try:
            lut = np.array([lookup[d] for d in chunk.dictionary.to_pylist()], dtype=np.int64)
        except KeyError as exc:
            raise InputError(
                f"{where}: column {what!r} has {exc.args[0]!r}, not in the metadata's list"
            ) from exc
        parts.append(lut[chunk.indices.to_numpy(zero_copy_only=False)] if lut.size else np.zeros(0, np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _read(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """Return ObsData and the raw metadata dict of a Parquet file."""
    import pyarrow.parquet as pq

    from kizuna.gnss.rinex_obs import ObsData

    where = os.fspath(path)
    try:
        table = pq.read_table(where)
    except FileNotFoundError as exc:
        raise InputError(f"{where}: file not found") from exc
    except Exception as exc:  # pyarrow raises ArrowInvalid/ArrowIOError/OSError for a bad file
        raise InputError(f"{where}: not a readable Parquet file ({exc})") from exc
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise InputError(
            f"{where}: no '{META_KEY.decode()}' metadata; expected a file from write_obs_parquet"
        )
    try:
        m = json.loads(raw)
        sats = np.array(m["sats"], dtype="<U3")
        signals = tuple(m["signals"])
        epochs = _unb64(m["epochs_ns"], "<i8").view("datetime64[ns]")
        flags = _unb64(m["epoch_flags"], "<i1")
        clk = _unb64(m["clock_offset_s"], "<f8")
        cols = {c: table.column(c) for c in ("epoch", "sv", "signal", "value", "lli", "ssi")}
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(
            f"{where}: metadata or columns incomplete ({exc!r}); expected write_obs_parquet's"
        ) from exc
    e = cols["epoch"].to_numpy().astype(np.int64)
    s = _indices(cols["sv"], list(sats), "sv", where)
    k = _indices(cols["signal"], list(signals), "signal", where)
    if e.size and (e.min() < 0 or e.max() >= epochs.size):
        raise InputError(f"{where}: column 'epoch' indexes past the {epochs.size} epochs in the metadata")
    shape = (epochs.size, sats.size, len(signals))
    values = np.full(shape, np.nan)
    lli = np.full(shape, -1, np.int8)
    ssi = np.full(shape, -1, np.int8)
    flat = (e * sats.size + s) * len(signals) + k
    values.reshape(-1)[flat] = cols["value"].to_numpy()
    lli.reshape(-1)[flat] = cols["lli"].to_numpy()
    ssi.reshape(-1)[flat] = cols["ssi"].to_numpy()
    interval = m.get("interval_s")
    obs = ObsData(
        path=m.get("path", where),
        version=float(m["version"]),
        time_system=m["time_system"],
        marker=m["marker"],
        receiver=m["receiver"],
        antenna=m["antenna"],
        approx_pos_ecef_m=_none_to_nan(m["approx_pos_ecef_m"]),
        antenna_delta_hen_m=_none_to_nan(m["antenna_delta_hen_m"]),
        interval_s=math.nan if interval is None else float(interval),
        epochs=epochs,
        epoch_flags=flags,
        clock_offset_s=clk,
        sats=sats,
        signals=signals,
        values=values,
        lli=lli,
        ssi=ssi,
        codes_by_system={kk: tuple(v) for kk, v in m["codes_by_system"].items()},
        glonass_slots={kk: int(v) for kk, v in m["glonass_slots"].items()},
        problems=tuple(m.get("problems", [])),
        rinex2_types={kk: dict(v) for kk, v in m.get("rinex2_types", {}).items()},
    )
    return obs, m


def read_parquet(path: str | os.PathLike[str]) -> Any:
    """Read ObsData back from a Parquet file written by write_parquet."""
    return _read(path)[0]


def load_entry(entry: Path, digest: str, name: str) -> Any:
    """Return the cached ObsData of a file (its path and problem messages renamed to ``name``), or None
    when the entry is missing, unreadable or not for these bytes and this reader version."""
    from dataclasses import replace

    from kizuna.gnss.rinex_obs import FORMAT_VERSION

    if not entry.is_file():
        return None
    try:
        obs, m = _read(entry)
    except Exception:  # any damage to a cache entry means: read the file again
        return None
    if m.get("source_sha256") != digest or m.get("format_version") != FORMAT_VERSION:
        return None
    old = obs.path
    problems = tuple(name + p[len(old) :] if p.startswith(old) else p for p in obs.problems)
    return replace(obs, path=name, problems=problems)


def store_entry(entry: Path, obs: Any, digest: str) -> None:
    """Write a cache entry; a cache folder that cannot be written leaves the read uncached."""
    from kizuna.gnss.rinex_obs import FORMAT_VERSION

    try:
        _write(obs, entry, {"format_version": FORMAT_VERSION, "source_sha256": digest})
    except (OSError, InputError):
        pass
