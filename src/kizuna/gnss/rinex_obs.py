"""RINEX observation files (2.10/2.11, 3.00-3.05, 4.00-4.02), plain, gzip or Hatanaka-compressed, read into
dense arrays: values (n_epoch, n_sat, n_signal) in the file's units (m for code, cycles for phase, Hz for
Doppler, dB-Hz or the file's unit for signal strength), with loss-of-lock and signal-strength indicators.

Compression is found from the content: gzip, bzip2, zip and Unix-compress magic bytes, and the
'COMPACT RINEX FORMAT' first line of Hatanaka files (decompressed in memory by the ``hatanaka`` package).
RINEX 2 observation types are renamed to RINEX 3 codes per system (see
:func:`kizuna.gnss.rinex_obs_header.rinex2_to_rinex3`); the original types are kept in ``rinex2_types``.

Satellites are sorted by their identifier ('C05' < 'E01' < 'G01' < 'J07'); signals by band, attribute and
type (C, L, D, S). RINEX 3.00/3.01 BeiDou codes of band 1 are renamed to band 2 as RINEX 3.02 does. The
RINEX 2 'WAVELENGTH FACT L1/2' record is not applied (phases are kept as written).

Epoch records: flags 0 (OK) and 1 (power failure since the previous epoch) are kept; event records with
flags 2-5 are skipped with their header lines; cycle-slip records (flag 6) are skipped; other flags are
reported in ``problems``. A header change inside the file (flag 4) is reported, not applied.

A read of a compressed file is cached as Parquet under ``$KIZUNA_CACHE_DIR/rinex`` (else
``~/.cache/kizuna/rinex``), keyed by the sha256 of the file's bytes, the ``systems`` selection and the
reader's format version.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import os
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from kizuna.errors import InputError
from kizuna.gnss import rinex_obs_header as _h
from kizuna.gnss import rinex_obs_parse as _p
from kizuna.gnss.gtime import datetime64_to_gpst, system_to_gpst

__all__ = ["ObsData", "read_obs", "write_obs_parquet", "read_obs_parquet", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_TIME_SYSTEM_LETTER = {"GPS": "G", "GLO": "R", "GAL": "E", "QZS": "J", "BDT": "C", "IRN": "I"}
_TYPE_ORDER = {"C": 0, "L": 1, "D": 2, "S": 3, "X": 4}


def _signal_key(code: str) -> tuple[str, str, int]:
    """Sort key of RINEX 3 codes: band, then attribute, then type C, L, D, S."""
    return (code[1:2], code[2:3], _TYPE_ORDER.get(code[:1], 9))


@dataclass(frozen=True, eq=False)
class ObsData:
    """Observations of one RINEX file: arrays over (epoch, satellite, signal) and the header's station data.

    ``values`` is NaN where a signal was not observed. ``lli`` and ``ssi`` (int8) hold the loss-of-lock and
    signal-strength indicators of present values (a blank indicator reads 0) and -1 where the value is
    absent. ``epochs`` are the receiver's time tags in ``time_system`` (see :meth:`t_gpst`).
    """

    path: str
    version: float
    time_system: str
    marker: str
    receiver: str
    antenna: str
    approx_pos_ecef_m: np.ndarray
    antenna_delta_hen_m: np.ndarray
    interval_s: float
    epochs: np.ndarray
    epoch_flags: np.ndarray
    clock_offset_s: np.ndarray
    sats: np.ndarray
    signals: tuple[str, ...]
    values: np.ndarray
    lli: np.ndarray
    ssi: np.ndarray
    codes_by_system: dict[str, tuple[str, ...]]
    glonass_slots: dict[str, int]
    problems: tuple[str, ...] = ()
    rinex2_types: dict[str, dict[str, str]] = field(default_factory=dict)

    def t_gpst(self) -> np.ndarray:
        """Return the epochs as seconds of GPS time since 1980-01-06 (converted from ``time_system``)."""
        letter = _TIME_SYSTEM_LETTER.get(self.time_system)
        if letter is None:
            return datetime64_to_gpst(self.epochs)
        return system_to_gpst(self.epochs, letter)

    def signal(self, code: str) -> np.ndarray:
        """Return the (n_epoch, n_sat) array of one signal (RINEX 3 code, e.g. 'C1C')."""
        if code not in self.signals:
            raise InputError(
                f"{self.path}: signal {code!r} not in this file; it has {', '.join(self.signals)}"
            )
        return self.values[:, :, self.signals.index(code)]

    def select(self, systems: str | None = None, signals: Any = None) -> ObsData:
        """Return the observations of some systems (letters, e.g. 'GEJ') and/or signals (RINEX 3 codes)."""
        codes = dict(self.codes_by_system)
        sat_mask = np.ones(self.sats.size, bool)
        if systems is not None:
            letters = _check_systems(systems)
            codes = {k: v for k, v in codes.items() if k in letters}
            sat_mask = np.array([s[0] in letters for s in self.sats], bool)
        keep = set().union(*codes.values()) if codes else set()
        if signals is not None:
            wanted = [signals] if isinstance(signals, str) else list(signals)
            missing = [s for s in wanted if s not in self.signals]
            if missing:
                raise InputError(
                    f"{self.path}: signals {missing} not in this file; it has {', '.join(self.signals)}"
                )
            keep &= set(wanted)
            codes = {k: tuple(c for c in v if c in keep) for k, v in codes.items()}
        sig_idx = [i for i, s in enumerate(self.signals) if s in keep]
        si = np.flatnonzero(sat_mask)
        sub = np.ix_(np.arange(self.epochs.size), si, sig_idx)
        r2 = {
            k: {c: t for c, t in v.items() if c in keep} for k, v in self.rinex2_types.items() if k in codes
        }
        return replace(
            self,
            sats=self.sats[si],
            signals=tuple(self.signals[i] for i in sig_idx),
            values=self.values[sub],
            lli=self.lli[sub],
            ssi=self.ssi[sub],
            codes_by_system=codes,
            glonass_slots={k: v for k, v in self.glonass_slots.items() if "R" in codes},
            rinex2_types=r2,
        )

    def header_attrs(self) -> dict[str, Any]:
        """Return the header information as plain values (str, float, lists, dicts) for metadata."""
        return {
            "path": self.path,
            "version": self.version,
            "time_system": self.time_system,
            "marker": self.marker,
            "receiver": self.receiver,
            "antenna": self.antenna,
            "approx_pos_ecef_m": [float(x) for x in self.approx_pos_ecef_m],
            "antenna_delta_hen_m": [float(x) for x in self.antenna_delta_hen_m],
            "interval_s": float(self.interval_s),
            "codes_by_system": {k: list(v) for k, v in self.codes_by_system.items()},
            "glonass_slots": dict(self.glonass_slots),
            "rinex2_types": self.rinex2_types,
            "problems": list(self.problems),
        }

    def to_xarray(self, indicators: bool = False) -> Any:
        """Return an xarray.Dataset: one (time, sv) variable per signal, header info in attrs.

        With ``indicators`` the LLI and SSI of each signal are added as ``<signal>_lli`` / ``<signal>_ssi``.
        """
        import json

        import xarray as xr

        data_vars: dict[str, Any] = {}
        for k, sig in enumerate(self.signals):
            data_vars[sig] = (("time", "sv"), self.values[:, :, k])
            if indicators:
                data_vars[f"{sig}_lli"] = (("time", "sv"), self.lli[:, :, k])
                data_vars[f"{sig}_ssi"] = (("time", "sv"), self.ssi[:, :, k])
        attrs = self.header_attrs()
        for key in ("codes_by_system", "glonass_slots", "rinex2_types", "problems"):
            attrs[key] = json.dumps(attrs[key], sort_keys=True)
        return xr.Dataset(
            data_vars,
            coords={
                "time": self.epochs,
                "sv": self.sats,
                "epoch_flag": ("time", self.epoch_flags),
                "clock_offset_s": ("time", self.clock_offset_s),
            },
            attrs=attrs,
        )

    def to_dataframe(self) -> Any:
        """Return the long table of present observations: time, sv, signal, value, lli, ssi."""
        import pandas as pd

        n_sat, n_sig = self.values.shape[1:]
        flat = np.flatnonzero(~np.isnan(self.values.reshape(-1)))
        e, rest = np.divmod(flat, n_sat * n_sig)
        s, k = np.divmod(rest, n_sig)
        return pd.DataFrame(
            {
                "time": self.epochs[e],
                "sv": pd.Categorical.from_codes(s, categories=list(self.sats)),
                "signal": pd.Categorical.from_codes(k, categories=list(self.signals)),
                "value": self.values.reshape(-1)[flat],
                "lli": self.lli.reshape(-1)[flat],
                "ssi": self.ssi.reshape(-1)[flat],
            }
        )


def _check_systems(systems: str) -> str:
    """Return the system letters of a selection like 'GEJ'; InputError for a letter that is no GNSS."""
    letters = "".join(str(systems).upper().split())
    bad = [c for c in letters if c not in _h.GNSS_LETTERS]
    if bad or not letters:
        raise InputError(
            f"systems={systems!r}: expected letters among {_h.GNSS_LETTERS} (G GPS, R GLONASS, E Galileo, "
            "C BeiDou, J QZSS, I NavIC, S SBAS)"
        )
    return "".join(sorted(set(letters)))


# ------------------------------------------------------------------------------------------- decompress


def _gunzip(raw: bytes, name: str, problems: list[str]) -> bytes:
    """Return the bytes of every member of a gzip stream; a cut stream keeps what was read, with a problem."""
    out = []
    data = raw
    while data:
        d = zlib.decompressobj(wbits=31)
        try:
            out.append(d.decompress(data))
        except zlib.error as exc:
            if not out:
                raise InputError(f"{name}: corrupt gzip data ({exc})") from exc
            problems.append(
                f"{name}: corrupt gzip data after {sum(map(len, out))} bytes ({exc}); rest ignored"
            )
            break
        if not d.eof:
            problems.append(f"{name}: gzip stream cut after {sum(map(len, out))} decompressed bytes")
            break
        data = d.unused_data.lstrip(b"\0")
    return b"".join(out)


def _is_compressed(raw: bytes) -> bool:
    """True when bytes start with gzip, Unix-compress, bzip2 or zip magic, or a Hatanaka first line."""
    if raw[:2] in (b"\x1f\x8b", b"\x1f\x9d") or raw[:3] == b"BZh" or raw[:4] == b"PK\x03\x04":
        return True
    return b"COMPACT RINEX FORMAT" in raw[:160].split(b"\n", 1)[0]


def _decompress(raw: bytes, name: str, problems: list[str]) -> tuple[bytes, bool]:
    """Return plain RINEX bytes of a file's raw bytes and whether Hatanaka decompression was applied."""
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = _gunzip(raw, name, problems)
        elif raw[:3] == b"BZh":
            raw = bz2.decompress(raw)
        elif raw[:2] == b"\x1f\x9d":
            import ncompress  # installed with hatanaka

            raw = ncompress.decompress(raw)
        elif raw[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(raw)) as z:
                members = [m for m in z.namelist() if not m.endswith("/")]
                if len(members) != 1:
                    raise InputError(
                        f"{name}: zip archive holds {len(members)} files; expected one RINEX file"
                    )
                raw = z.read(members[0])
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{name}: corrupt compressed data ({exc})") from exc
    if b"COMPACT RINEX FORMAT" in raw[:160].split(b"\n", 1)[0]:
        return _crx2rnx(raw, name, problems), True
    return raw, False


def _crx2rnx(raw: bytes, name: str, problems: list[str]) -> bytes:
    """Return the RINEX text of Hatanaka-compressed bytes (the hatanaka package's crx2rnx, in memory).

    When crx2rnx stops early (a cut file), the text it wrote up to there is kept and the stop is a problem.
    """
    import subprocess
    from importlib.resources import files

    import hatanaka
    import hatanaka.bin

    exe = files(hatanaka.bin).joinpath("crx2rnx.exe" if os.name == "nt" else "crx2rnx")
    if not exe.is_file():  # a hatanaka without the bundled program: use its API (no partial output)
        try:
            return hatanaka.crx2rnx(raw)
        except Exception as exc:  # HatanakaException
            raise InputError(f"{name}: cannot decompress the Hatanaka-compressed data: {exc}") from exc
    proc = subprocess.run([str(exe), "-"], input=raw, capture_output=True, check=False)
    msg = " ".join(proc.stderr.decode("ascii", "replace").split())
    if proc.returncode not in (0, 2):
        if b"END OF HEADER" not in proc.stdout:
            raise InputError(f"{name}: cannot decompress the Hatanaka-compressed data: {msg}")
        problems.append(f"{name}: crx2rnx stopped early ({msg}); the epochs before are kept")
    elif msg:
        problems.append(f"{name}: crx2rnx: {msg}")
    return proc.stdout


# ------------------------------------------------------------------------------------------------ parse


def _header_end(data: bytes, name: str) -> int:
    """Return the byte offset just after the END OF HEADER line."""
    i = data.find(b"END OF HEADER")
    while i >= 0:
        ls = data.rfind(b"\n", 0, i) + 1
        if i - ls >= 60:
            e = data.find(b"\n", i)
            return len(data) if e < 0 else e + 1
        i = data.find(b"END OF HEADER", i + 1)
    raise InputError(f"{name}: no 'END OF HEADER' record (columns 61-73) found; expected a RINEX header")


def _problem_text(data: bytes, pos: int) -> str:
    """Return up to 60 characters of the line that starts at pos."""
    e = data.find(b"\n", pos, pos + 200)
    return data[pos : (pos + 60 if e < 0 else min(e, pos + 60))].decode("latin-1").rstrip("\r")


def _problems(prob: np.ndarray, counts: np.ndarray, data: bytes, where: str) -> list[str]:
    """Return messages of the problems that the numba passes recorded."""
    out = []
    for code, line, pos, a1, a2 in prob.tolist():
        txt = _problem_text(data, pos)
        msg = {
            _p.P_UNEXPECTED: f"expected an epoch record, found {txt!r}; skipped to the next epoch record",
            _p.P_BAD_EPOCH: f"malformed epoch record {txt!r}; epoch skipped",
            _p.P_UNKNOWN_FLAG: f"unknown epoch flag {a1} (expected 0-6) in {txt!r}; record skipped",
            _p.P_TRUNCATED: f"file ends inside the epoch {txt!r} ({a1} of {a2} satellite records complete); "
            "this last epoch is dropped",
            _p.P_SHORT_EPOCH: f"epoch {txt!r} announces {a2} satellites but holds {a1}; {a1} kept",
            _p.P_BAD_SAT: f"unreadable satellite identifier in {txt!r}; record skipped",
            _p.P_NO_TYPES: f"satellite {txt[:3]!r}: system {chr(a1)!r} has no observation types in the "
            "header; record skipped",
            _p.P_EVENT_CUT: f"file ends inside the {a2} header lines of the event record {txt!r}",
        }.get(code, f"problem {code}")
        out.append(f"{where}: line {line}: {msg}")
    if counts[0] > len(prob):
        out.append(f"{where}: {counts[0] - len(prob)} more problems of the same kinds not listed")
    return out


def _v2_codes(h: _h.Header, systems_seen: set[str]) -> tuple[dict, dict]:
    """Return codes_by_system and rinex2_types of a RINEX 2 header for the systems it can hold."""
    codes: dict[str, tuple[str, ...]] = {}
    r2: dict[str, dict[str, str]] = {}
    for sys_ in sorted(systems_seen):
        mapped: list[str] = []
        r2[sys_] = {}
        for t in h.rinex2_obs_types:
            c = _h.rinex2_to_rinex3(t, sys_)
            if c and c not in r2[sys_]:
                r2[sys_][c] = t
                mapped.append(c)
        codes[sys_] = tuple(mapped)
    return codes, r2


def _parse(data: bytes, name: str, systems: str | None, problems: list[str], where: str) -> ObsData:
    """Parse plain RINEX observation bytes into ObsData."""
    if not data or data.isspace():
        raise InputError(f"{name}: file is empty; expected a RINEX observation file")
    _h.check_first_line(data[:256].split(b"\n", 1)[0].decode("latin-1").rstrip("\r"), name)
    hdr_end = _header_end(data, name)
    lines = data[:hdr_end].decode("latin-1").splitlines()
    h = _h.parse_header(lines, name)
    problems += h.problems
    letters = _check_systems(systems) if systems is not None else _h.GNSS_LETTERS
    buf = np.frombuffer(data, np.uint8)
    v2 = h.version < 3
    if v2:
        allowed = "GRECJS" if h.file_system == "M" else h.file_system
        codes_all, r2_all = _v2_codes(h, set(allowed))
    else:
        codes_all = {k: v for k, v in h.codes_by_system.items() if k in _h.GNSS_LETTERS}
        r2_all = {}
    has_types = np.zeros(128, np.bool_)
    keep = np.zeros(128, np.bool_)
    for s in codes_all:
        has_types[ord(s)] = True
        keep[ord(s)] = s in letters
    if v2:
        lines_per_sat = (len(h.rinex2_obs_types) + 4) // 5
        default = ord(h.file_system if h.file_system in "GRES" else "G")
        res = _p.index_v2(buf, hdr_end, h.n_lines + 1, keep, has_types, default, lines_per_sat)
    else:
        res = _p.index_v3(buf, hdr_end, h.n_lines + 1, keep, has_types)
    (ep_ns, ep_flag, ep_clk), (rec_ep, rec_code, rec_pos, rec_end, rec_line), ev, prob, counts = res
    problems += _problems(prob, counts, data, where)
    problems += _event_problems(ev, data, where)
    if ep_ns.size == 0:
        raise InputError(
            f"{name}: no observation epoch could be read" + (f" ({problems[0]})" if problems else "")
        )
    ucodes = np.unique(rec_code)
    sats = np.array([f"{chr(c // 100)}{c % 100:02d}" for c in ucodes.tolist()], dtype="<U3")
    if v2:
        seen = {s[0] for s in sats} | ({h.file_system} if h.file_system in "GRES" else set())
        codes = {k: v for k, v in codes_all.items() if k in seen and k in letters}
        r2 = {k: v for k, v in r2_all.items() if k in codes}
    else:
        codes = {k: v for k, v in codes_all.items() if k in letters}
        r2 = {}
    signals = tuple(sorted(set().union(*codes.values()) if codes else set(), key=_signal_key))
    sig_index = {s: i for i, s in enumerate(signals)}
    width = max([len(h.rinex2_obs_types)] if v2 else [len(v) for v in codes_all.values()] + [1])
    colmap = np.full((128, width), -1, np.int64)
    nobs = np.zeros(128, np.int64)
    for s, cs in codes.items():
        if v2:
            nobs[ord(s)] = len(h.rinex2_obs_types)
            inv = {t: c for c, t in r2[s].items()}
            for j, t in enumerate(h.rinex2_obs_types):
                if t in inv:
                    colmap[ord(s), j] = sig_index[inv[t]]
        else:
            nobs[ord(s)] = len(cs)
            colmap[ord(s), : len(cs)] = [sig_index[c] for c in cs]
    shape = (ep_ns.size, sats.size, len(signals))
    values = np.full(shape, np.nan)
    lli = np.full(shape, -1, np.int8)
    ssi = np.full(shape, -1, np.int8)
    bad = np.zeros(rec_ep.size, np.int8)
    rec_sat = np.searchsorted(ucodes, rec_code).astype(np.int64)
    rec_sys = (rec_code // 100).astype(np.int64)
    fill = _p.fill_v2 if v2 else _p.fill_v3
    fill(
        buf, rec_ep.astype(np.int64), rec_sat, rec_sys, rec_pos, rec_end, colmap, nobs, values, lli, ssi, bad
    )
    for r in np.flatnonzero(bad)[:5].tolist():
        txt = _problem_text(data, int(rec_pos[r]))
        problems.append(f"{where}: line {rec_line[r]}: malformed observation field in {txt!r}; left absent")
    if np.count_nonzero(bad) > 5:
        problems.append(f"{where}: {np.count_nonzero(bad) - 5} more records with malformed fields")
    _apply_scale_factors(h, sats, signals, codes, values)
    return ObsData(
        path=name,
        version=h.version,
        time_system=h.time_system,
        marker=h.marker,
        receiver=h.receiver,
        antenna=h.antenna,
        approx_pos_ecef_m=h.approx_pos_ecef_m,
        antenna_delta_hen_m=h.antenna_delta_hen_m,
        interval_s=h.interval_s,
        epochs=ep_ns.view("datetime64[ns]"),
        epoch_flags=ep_flag,
        clock_offset_s=ep_clk,
        sats=sats,
        signals=signals,
        values=values,
        lli=lli,
        ssi=ssi,
        codes_by_system=codes,
        glonass_slots=h.glonass_slots if "R" in codes else {},
        problems=tuple(problems),
        rinex2_types=r2,
    )


def _event_problems(ev: np.ndarray, data: bytes, where: str) -> list[str]:
    """Return problems for header records inside flag-4 events that would change how records are read."""
    out = []
    changing = ("SYS / # / OBS TYPES", "# / TYPES OF OBSERV", "SYS / SCALE FACTOR")
    for line, start, end, flag in ev.tolist():
        if flag != 4:
            continue
        text = data[start:end].decode("latin-1")
        found = sorted({lab for lab in changing if lab in text})
        if found:
            out.append(
                f"{where}: line {line}: event record (flag 4) changes {', '.join(found)} inside the file; "
                "the change is not applied (later records are read with the first header's types)"
            )
    return out


def _apply_scale_factors(
    h: _h.Header, sats: np.ndarray, signals: tuple, codes: dict, values: np.ndarray
) -> None:
    """Divide values by the header's SYS / SCALE FACTOR records (RINEX 3)."""
    for sys_, factor, types in h.scale_factors:
        if factor in (0, 1) or sys_ not in codes:
            continue
        si = np.flatnonzero(np.char.startswith(sats, sys_))
        ki = [signals.index(c) for c in (types or codes[sys_]) if c in codes[sys_]]
        if si.size and ki:
            idx = np.ix_(np.arange(values.shape[0]), si, ki)
            values[idx] = values[idx] / factor


# ------------------------------------------------------------------------------------------- public API


def _cache_folder(cache: bool | str | os.PathLike[str]) -> Path | None:
    """Return the cache folder of a ``cache`` argument (None when off)."""
    if cache is False or cache is None:
        return None
    if cache is True:
        env = os.environ.get("KIZUNA_CACHE_DIR")
        return Path(env) / "rinex" if env else Path.home() / ".cache" / "kizuna" / "rinex"
    return Path(cache)


def read_obs(
    path: str | os.PathLike[str], *, systems: str | None = None, cache: bool | str | os.PathLike[str] = True
) -> ObsData:
    """Read a RINEX 2/3/4 observation file (plain, gzip or Hatanaka) into ObsData (values in file units).

    ``systems`` (e.g. 'GEJ') keeps only those constellations. ``cache`` True uses the default cache folder,
    a path selects one, False reads the file afresh and writes no cache entry. Only compressed files
    (gzip, bzip2, zip, Unix compress, Hatanaka) are cached: a plain file parses as fast as its cache entry
    reads back, while decompression costs several times more.
    """
    from kizuna.gnss import obs_cache

    name = os.fspath(path)
    try:
        raw = Path(name).read_bytes()
    except FileNotFoundError as exc:
        raise InputError(f"{name}: file not found") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{name}: is a folder; expected a RINEX observation file") from exc
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({exc.strerror or exc})") from exc
    if systems is not None:
        systems = _check_systems(systems)
    folder = _cache_folder(cache)
    entry = None
    digest = ""
    if folder is not None and _is_compressed(raw):
        digest = hashlib.sha256(raw).hexdigest()
        entry = folder / f"{digest[:40]}-{systems or 'all'}-v{FORMAT_VERSION}.parquet"
        hit = obs_cache.load_entry(entry, digest, name)
        if hit is not None:
            return hit
    if not raw or raw.isspace():
        raise InputError(f"{name}: file is empty; expected a RINEX observation file")
    problems: list[str] = []
    data, crx = _decompress(raw, name, problems)
    where = f"{name} (Hatanaka-decompressed text)" if crx else name
    obs = _parse(data, name, systems, problems, where)
    if entry is not None:
        obs_cache.store_entry(entry, obs, digest)
    return obs


def write_obs_parquet(obs: ObsData, path: str | os.PathLike[str]) -> Path:
    """Write ObsData as a Parquet long table (time, sv, signal, value, lli, ssi) with header metadata."""
    from kizuna.gnss import obs_cache

    return obs_cache.write_parquet(obs, path)


def read_obs_parquet(path: str | os.PathLike[str]) -> ObsData:
    """Read ObsData back from a Parquet file written by :func:`write_obs_parquet`."""
    from kizuna.gnss import obs_cache

    return obs_cache.read_parquet(path)
