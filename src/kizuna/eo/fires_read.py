"""Reading active-fire detections (crop-residue burning): Bhuvan, PRSC and NASA FIRMS tables into one table
(counting and comparison are in :mod:`kizuna.eo.fires`).

Formats, recognised from the header (CSV) or the record keys (a JSON array of records):

- ``bhuvan``: the ISRO NRSC Bhuvan fire feed: lat, lon, radiative_ (FRP, MW), sat (``npp`` S-NPP VIIRS,
  ``mod`` MODIS), acqdate, acqtime, sensor (``VF375`` VIIRS 375 m, ``A`` Aqua, ``T`` Terra), state,
  district. Dates and times are India Standard Time (IST, UTC+05:30): the hours are 12-14 h for the day
  passes and 01-03 h for the night passes of S-NPP and Aqua, which cross the equator near 13:30 and 01:30
  local solar time; at 74-77 E local solar time is IST minus 22-34 min, whereas read as UTC these hours
  would fall at 17-19 h local solar time, when neither satellite passes. The minutes field holds the
  literal text ``M3``: the minute is unknown, so the time has hour precision and the third field (the same
  for the day and night passes of several dates, so not a time of detection) is not read.
- ``prsc``: Punjab Remote Sensing Centre daily tables: District, Tehsil, Satellite, Latitude, Longitude,
  ACQ_TIME (IST, HH:MM:SS), Day/Night and FRP (spelt ``FPR`` in the 2023 files). They carry no date
  column: the date is taken from a YYYY-MM-DD in the file name, or given.
- ``firms``: NASA FIRMS MODIS and VIIRS CSV: latitude, longitude, acq_date and acq_time (UTC, HHMM, often
  written without its leading zeros), satellite (MODIS ``A`` Aqua / ``T`` Terra; VIIRS ``N`` S-NPP, ``N20``
  or ``1`` NOAA-20, ``N21`` or ``2`` NOAA-21), instrument, confidence, frp (MW), daynight.

The table has one row per detection: lat_deg, lon_deg (WGS84), frp_mw, satellite, instrument, acq_time_utc
(the start of the interval the source's precision allows), time_precision ('second', 'minute', 'hour'
or 'day'), district, tehsil, state, daynight, confidence, source and source_line. Detections with the same
lat, lon, time and satellite are kept once. Days are counted in IST by default, the day of the official
Indian counts; ``day_tz="UTC"`` counts UTC days.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from kizuna.errors import InputError

__all__ = [
    "FireDetections",
    "read_fires",
    "read_records",
    "normalise_district",
    "utc_offset_min",
    "TABLE_COLUMNS",
    "DISTRICT_ALIASES",
]

PathLike = str | os.PathLike[str]

TABLE_COLUMNS = tuple(
    "lat_deg lon_deg frp_mw satellite instrument acq_time_utc time_precision district tehsil state daynight "
    "confidence source source_line".split()
)


def _spec(required: str, names: str, tz: str, hhmm: bool, marks: str = "") -> dict[str, Any]:
    """Return one format's description: required columns, standard name -> accepted source names (lower
    case, alternatives joined by '|'), time zone, HHMM times, and columns that mark the format."""
    pairs = (item.split("=") for item in names.split())
    return {
        "required": tuple(required.split()),
        "names": {k: tuple(v.split("|")) for k, v in pairs},
        "tz": tz,
        "hhmm": hhmm,
        "marks": tuple(marks.split()),
    }


_FORMATS = {
    "bhuvan": _spec(
        "lat lon acqdate acqtime sat",
        "lat=lat lon=lon date=acqdate time=acqtime sat=sat sensor=sensor frp=radiative_|frp "
        "district=district state=state",
        "IST",
        False,
        "radiative_ sensor",
    ),
    "prsc": _spec(
        "latitude longitude acq_time satellite district",
        "lat=latitude lon=longitude date=acq_date|date time=acq_time sat=satellite frp=frp|fpr "
        "district=district tehsil=tehsil daynight=day/night|daynight",
        "IST",
        False,
        "tehsil fpr day/night id",
    ),
    "firms": _spec(
        "latitude longitude acq_date acq_time satellite",
        "lat=latitude lon=longitude date=acq_date time=acq_time sat=satellite instrument=instrument frp=frp "
        "confidence=confidence daynight=daynight",
        "UTC",
        True,
        "bright_ti4 brightness scan track version confidence daynight",
    ),
}

# Satellite codes of the three formats -> (satellite, instrument).
_SATELLITES = {
    **dict.fromkeys(("NPP", "SNPP", "SUOMINPP", "N"), ("S-NPP", "VIIRS")),
    **dict.fromkeys(("N20", "NOAA20", "J1", "1"), ("NOAA-20", "VIIRS")),
    **dict.fromkeys(("N21", "NOAA21", "J2", "2"), ("NOAA-21", "VIIRS")),
    **dict.fromkeys(("A", "AQUA"), ("Aqua", "MODIS")),
    **dict.fromkeys(("T", "TERRA"), ("Terra", "MODIS")),
}
_SENSORS = {"VF375": "VIIRS", "A": "MODIS", "T": "MODIS"}

# Other spellings of Punjab district names -> the spelling of the Bhuvan feed.
DISTRICT_ALIASES = {
    **dict.fromkeys(("FEROZEPUR", "FEROZPUR", "FIROZEPUR"), "FIROZPUR"),
    **dict.fromkeys(("SRI MUKTSAR SAHIB", "MUKTSAR SAHIB"), "MUKTSAR"),
    **dict.fromkeys(("SHAHID BHAGAT SINGH NAGAR", "NAWANSHAHR"), "SBS NAGAR"),
    **dict.fromkeys(("SAS NAGAR", "SAHIBZADA AJIT SINGH NAGAR", "MOHALI"), "SAS NAGAR (MOHALI)"),
    **dict.fromkeys(("TARNTARAN", "TARN-TARAN"), "TARN TARAN"),
    "ROPAR": "RUPNAGAR",
}

_TZ_RE = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$")
_CLOCK_RE = r"^\s*(?P<h>\d{1,2})(?::(?P<m>[^:]*))?(?::(?P<s>[^:]*))?\s*$"
_PRECISIONS = ("second", "minute", "hour", "day")


@dataclass(frozen=True, eq=False)
class FireDetections:
    """Active-fire detections as one table (columns TABLE_COLUMNS), the formats read, the number of records
    read, of repeated detections dropped, and one 'file:line: ...' line per problem found."""

    table: pd.DataFrame
    formats: tuple[str, ...]
    n_records: int
    n_duplicates: int
    problems: tuple[str, ...]


def utc_offset_min(tz: str) -> int:
    """Return the offset east of UTC (minutes) of 'IST', 'UTC' or '+HH:MM' / '-HH:MM'."""
    text = str(tz).strip().upper()
    if text in ("IST", "ASIA/KOLKATA"):
        return 330
    if text in ("UTC", "GMT", "Z"):
        return 0
    m = _TZ_RE.match(text)
    if not m or int(m.group(2)) > 14 or int(m.group(3) or 0) > 59:
        raise InputError(f"time zone {tz!r}: expected IST, UTC or an offset such as +05:30")
    sign = -1 if m.group(1) == "-" else 1
    return sign * (60 * int(m.group(2)) + int(m.group(3) or 0))


def normalise_district(names: Any, aliases: Mapping[str, str] | None = None) -> NDArray[np.object_]:
    """Return district names in one spelling: upper case, single spaces, no dots, 'X (Y)' brackets, and
    other known spellings mapped to the Bhuvan one (plus ``aliases``, compared after the same clean-up)."""
    table = dict(DISTRICT_ALIASES)
    for k, v in (aliases or {}).items():
        table[_clean_name(k)] = _clean_name(v)
    codes, uniq = pd.factorize(pd.Series(np.asarray(names, dtype=object)).fillna("").astype(str))
    mapped = [table.get(c, c) for c in map(_clean_name, uniq)]
    return np.asarray(mapped, dtype=object)[codes] if len(codes) else np.empty(0, dtype=object)


def _per_unique(values: pd.Series, fn: Any) -> Any:
    """Apply ``fn`` (a function of a text Series returning arrays) to the distinct values only and spread
    its results back to every row (text results as a pandas string array)."""
    codes, uniq = pd.factorize(values)
    out = fn(pd.Series(np.asarray(uniq, dtype=object), dtype=str))

    def spread(o: Any) -> Any:
        arr = np.asarray(o)
        return (
            pd.array(arr.astype(object), dtype="str").take(codes) if arr.dtype.kind in "OUT" else arr[codes]
        )

    return tuple(spread(o) for o in out) if isinstance(out, tuple) else spread(out)


def _numbers(text: pd.Series) -> NDArray[np.float64]:
    """Return the numbers of a text column, NaN where empty or not a number."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.cast(pa.array(text), pa.float64()).to_numpy(zero_copy_only=False).copy()
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, copy=True)


def _clean_name(text: str) -> str:
    """Return one name in upper case with dots removed and single spaces around brackets."""
    s = str(text).upper().replace(".", "")
    s = re.sub(r"\s*\(\s*", " (", s)
    s = re.sub(r"\s*\)", ")", s)
    return " ".join(s.split())


def read_records(path: Path) -> tuple[pd.DataFrame, int]:
    """Return the raw records of a CSV or JSON file as text columns, and the line number of the first row."""
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: cannot read the JSON file ({exc})") from exc
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise InputError(f"{path}: expected a JSON array of fire records (objects)")
        keys = list(dict.fromkeys(k for r in data for k in r))
        cols = {k: ["" if r.get(k) is None else str(r.get(k)) for r in data] for k in keys}
        return pd.DataFrame(cols, dtype=str), 1
    fast = _read_csv_arrow(path)
    if fast is not None:
        return fast, 2
    try:
        df = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
            skipinitialspace=True,
        )
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path}: empty file; expected a header line and fire records") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"{path}: cannot read the CSV file ({' '.join(str(exc).split())})") from exc
    return df, 2


def _read_csv_arrow(path: Path) -> pd.DataFrame | None:
    """Return a plain CSV file (unique header names, every line with all its fields, no quoted line breaks)
    as text columns read by Arrow's multi-threaded reader, or None for pandas to read it line by line."""
    import csv

    import pyarrow as pa
    import pyarrow.csv as pcsv

    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader([fh.readline()]), [])
        if not header or len(set(header)) != len(header):
            return None
        table = pcsv.read_csv(
            path,
            parse_options=pcsv.ParseOptions(ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(
                column_types={name: pa.string() for name in header}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError, csv.Error):
        return None
    if table.column_names != header:
        return None
    return pd.DataFrame({name: pd.array(table.column(i), dtype="str") for i, name in enumerate(header)})


def _detect_format(columns: Sequence[str], path: Path) -> str:
    """Return the format whose required columns the header holds; InputError naming what is missing."""
    cols = {c.strip().lower() for c in columns}
    scores = {
        name: sum(c in cols for c in spec["required"]) + 0.5 * sum(c in cols for c in spec.get("marks", ()))
        for name, spec in _FORMATS.items()
    }
    best = max(scores, key=lambda k: scores[k])
    missing = [c for c in _FORMATS[best]["required"] if c not in cols]
    if not missing:
        return best
    if sum(c in cols for c in _FORMATS[best]["required"]) < 2:
        raise InputError(
            f"{path}: header {sorted(cols)}: not a known active-fire table; expected Bhuvan (lat, lon, "
            "acqdate, acqtime, sat), PRSC (District, Latitude, Longitude, ACQ_TIME, Satellite) or FIRMS "
            "(latitude, longitude, acq_date, acq_time, satellite) columns"
        )
    raise InputError(f"{path}: line 1: {best} table without the column(s) {', '.join(missing)}")


def _parse_clock(text: pd.Series, hhmm: bool) -> tuple[NDArray[np.float64], NDArray[np.int8]]:
    """Return seconds of day (NaN where malformed) and precision codes (index into _PRECISIONS) of clock
    texts: H, HH:MM, HH:MM:SS, a minutes field that is not a number (M3, MM, --, empty) for an hour-only
    time, an empty text for a date only, and with ``hhmm`` the FIRMS integer HHMM."""
    s = text.astype(str).str.strip()
    n = len(s)
    sec = np.full(n, np.nan)
    prec = np.full(n, 3, dtype=np.int8)
    if hhmm:
        digits = s.str.fullmatch(r"\d{1,4}").to_numpy(dtype=bool)
        v = pd.to_numeric(s.where(digits, "0")).to_numpy(dtype=np.int64)
        ok = digits & (v // 100 < 24) & (v % 100 < 60)
        sec[ok] = (v[ok] // 100) * 3600.0 + (v[ok] % 100) * 60.0
        prec[digits] = 1
    else:
        digits = np.zeros(n, dtype=bool)
    ex = s.str.extract(_CLOCK_RE)
    h = pd.to_numeric(ex["h"], errors="coerce").to_numpy(dtype=float)
    m_txt, s_txt = ex["m"].fillna("").str.strip(), ex["s"].fillna("").str.strip()
    m_num = m_txt.str.fullmatch(r"\d{1,2}").to_numpy(dtype=bool)
    s_num = s_txt.str.fullmatch(r"\d{1,2}(?:\.\d*)?").to_numpy(dtype=bool)
    m = pd.to_numeric(m_txt.where(m_num, "0")).to_numpy(dtype=float)
    sv = pd.to_numeric(s_txt.where(s_num, "0")).to_numpy(dtype=float)
    has_s = (s_txt != "").to_numpy(dtype=bool)
    clock = ~digits & np.isfinite(h) & (np.nan_to_num(h, nan=99) < 24)
    with_min = clock & m_num & (m < 60) & (~has_s | (s_num & (sv < 60)))
    hour_only = clock & ~m_num
    sec[with_min] = h[with_min] * 3600 + m[with_min] * 60 + np.where(has_s, sv, 0.0)[with_min]
    prec[with_min] = np.where(has_s[with_min], 0, 1)
    sec[hour_only] = h[hour_only] * 3600.0
    prec[hour_only] = 2
    empty = (s == "").to_numpy(dtype=bool)
    sec[empty] = 0.0
    prec[empty] = 3
    return sec, prec


def _satellites(sat: pd.Series, sensor: pd.Series, instrument: pd.Series) -> tuple[NDArray, NDArray]:
    """Return satellite and instrument names from the codes of the three formats."""
    codes, uniq = pd.factorize(sat + "|" + sensor + "|" + instrument)
    codes = np.asarray(codes)
    names, instruments = [], []
    for u in uniq:
        raw, sens, instr = (v.strip() for v in str(u).split("|"))
        code, sens, instr = re.sub(r"[\s_-]", "", raw.upper()), sens.upper(), instr.upper()
        if code == "MOD":  # Bhuvan: the sensor column tells Aqua from Terra
            name, known = _SATELLITES.get(sens, ("MODIS", ""))[0], "MODIS"
        else:
            name, known = _SATELLITES.get(code, (raw, ""))
        names.append(name)
        instruments.append(known or instr or _SENSORS.get(sens, ""))
    return pd.array(names, dtype="str").take(codes), pd.array(instruments, dtype="str").take(codes)


def _date_from_name(path: Path) -> dt.date | None:
    """Return the YYYY-MM-DD date written in a file name, or None."""
    m = re.search(r"(\d{4})-(\d{2})-(\d{2})", path.name)
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


_TEXT = ("lat", "lon", "date", "time", "sat", "sensor", "instrument", "frp", "district", "tehsil", "state")
_TEXT += ("daynight", "confidence")


def _standard_text(path: Path, fmt: str | None, date: dt.date | None) -> tuple[pd.DataFrame, str]:
    """Return the records of one file as text columns with the standard names (_TEXT), its file name and
    line numbers, and the file's format."""
    if not path.is_file():
        raise InputError(f"{path}: no such active-fire file")
    raw, first_line = read_records(path)
    if raw.shape[1] == 0:
        return pd.DataFrame(columns=[*_TEXT, "source", "path", "line"]), "empty"
    fmt = fmt or _detect_format(list(raw.columns), path)
    if fmt not in _FORMATS:
        raise InputError(f"format {fmt!r}: expected one of {', '.join(_FORMATS)}")
    spec = _FORMATS[fmt]
    lower = {c.strip().lower(): c for c in raw.columns}
    missing = [c for c in spec["required"] if c not in lower]
    if missing:
        raise InputError(f"{path}: line 1: {fmt} table without the column(s) {', '.join(missing)}")
    out = pd.DataFrame(index=raw.index)
    for key in _TEXT:
        name = next((lower[n] for n in spec["names"].get(key, ()) if n in lower), None)
        out[key] = raw[name].astype(str).str.strip() if name is not None else ""
    if fmt == "prsc" and (out["date"] == "").all():
        given = date or _date_from_name(path)
        if given is None:
            raise InputError(
                f"{path}: PRSC table without a date column or a YYYY-MM-DD in its name; give the date"
            )
        out["date"] = str(given)
    out["source"] = path.name
    out["path"] = str(path)
    out["line"] = raw.index.to_numpy() + first_line
    blank = (out[["lat", "lon", "time", "sat"]] == "").all(axis=1).to_numpy()
    return out.loc[~blank], fmt


def _normalise(
    raw: pd.DataFrame, fmt: str, tz: str | None, aliases: Any, problems: list[str]
) -> pd.DataFrame:
    """Parse the text records of one format into the detection table; append 'file:line: ...' for each
    malformed record (dropped) and each malformed FRP (left empty)."""
    spec = _FORMATS[fmt]
    n = len(raw)
    paths, lines = raw["path"].array, raw["line"].to_numpy()
    bad = np.zeros(n, dtype=bool)

    def flag(mask: NDArray[np.bool_], key: str, expected: str) -> None:
        column = spec["names"][key][0]
        for i in np.flatnonzero(mask & ~bad):
            problems.append(f"{paths[i]}:{lines[i]}: {column} {raw[key].iloc[i]!r}: expected {expected}")
        bad[:] |= mask

    lat, lon = _numbers(raw["lat"]), _numbers(raw["lon"])
    flag(~(np.abs(lat) <= 90), "lat", "a latitude in degrees (-90..90)")
    flag(~(np.abs(lon) <= 180), "lon", "a longitude in degrees (-180..180)")
    day = _per_unique(
        raw["date"],
        lambda u: pd.to_datetime(u, format="%Y-%m-%d", errors="coerce").to_numpy("datetime64[ns]"),
    )
    flag(np.isnat(day), "date", "a date YYYY-MM-DD")
    sec, prec = _per_unique(raw["time"], lambda u: _parse_clock(u, spec["hhmm"]))
    flag(~np.isfinite(sec), "time", "a time HH:MM[:SS], HH, HH:M3:SS or HHMM")
    flag((raw["sat"] == "").to_numpy(), "sat", "a satellite name")
    local = day + np.round(np.nan_to_num(sec) * 1e9).astype(np.int64).astype("timedelta64[ns]")
    t_utc = local - np.timedelta64(utc_offset_min(tz or spec["tz"]), "m")
    frp = _numbers(raw["frp"])
    bad_frp = (raw["frp"] != "").to_numpy() & ~(frp >= 0)
    for i in np.flatnonzero(bad_frp & ~bad):
        problems.append(
            f"{paths[i]}:{lines[i]}: FRP {raw['frp'].iloc[i]!r}: expected a power >= 0 MW; left empty"
        )
    frp[bad_frp] = np.nan
    satellite, instrument = _satellites(raw["sat"], raw["sensor"], raw["instrument"])
    table = pd.DataFrame(
        {
            "lat_deg": lat,
            "lon_deg": lon,
            "frp_mw": frp,
            "satellite": satellite,
            "instrument": instrument,
            "acq_time_utc": t_utc,
            "time_precision": np.asarray(_PRECISIONS, dtype=object)[prec],
            "district": _per_unique(raw["district"], lambda u: normalise_district(u, aliases)),
            "tehsil": _per_unique(raw["tehsil"], lambda u: [_clean_name(v) for v in u]),
            "state": _per_unique(raw["state"], lambda u: u.str.upper()),
            "daynight": _per_unique(raw["daynight"], lambda u: u.str.upper().str[:1]),
            "confidence": raw["confidence"].array,
            "source": raw["source"].array,
            "source_line": raw["line"].to_numpy(dtype=np.int64),
        }
    )
    return table.loc[~bad]


def read_fires(
    paths: PathLike | Sequence[PathLike],
    *,
    fmt: str | None = None,
    tz: str | None = None,
    date: str | dt.date | None = None,
    aliases: Mapping[str, str] | None = None,
) -> FireDetections:
    """Read Bhuvan, PRSC or FIRMS active-fire files (CSV, or a JSON array of records) into one table of
    detections (lat/lon in degrees WGS84, FRP in MW, times in UTC), dropping malformed records (each
    reported as 'file:line: ...') and repeated detections (same lat, lon, time and satellite).

    ``fmt`` forces a format ('bhuvan', 'prsc', 'firms'); ``tz`` overrides the time zone of the files'
    times (IST for Bhuvan and PRSC, UTC for FIRMS); ``date`` (YYYY-MM-DD) dates a PRSC table whose name
    holds no date; ``aliases`` maps further district spellings to one name.
    """
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not items:
        raise InputError("active-fire files: none given; expected at least one CSV or JSON file")
    if date is not None and not isinstance(date, dt.date):
        try:
            date = dt.date.fromisoformat(str(date))
        except ValueError as exc:
            raise InputError(f"date {date!r}: expected YYYY-MM-DD") from exc
    if tz is not None:
        utc_offset_min(tz)
    groups: dict[str, list[pd.DataFrame]] = {}
    problems: list[str] = []
    for p in items:
        text, f = _standard_text(Path(p), fmt, date)
        groups.setdefault(f, []).append(text)
        if not len(text):
            problems.append(f"{p}: no fire records")
    n_records = sum(len(t) for ts in groups.values() for t in ts)
    tables = [
        _normalise(pd.concat(ts, ignore_index=True), f, tz, aliases, problems)
        for f, ts in groups.items()
        if f != "empty" and n_records
    ]
    full = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if len(full) == 0:
        first = f"; the first problem: {problems[0]}" if problems else ""
        raise InputError(
            f"{', '.join(str(p) for p in items)}: no valid fire detections (of {n_records} records){first}"
        )
    lat_lon = np.round(full[["lat_deg", "lon_deg"]].to_numpy(dtype=float), 6)
    key = pd.DataFrame({"lat": lat_lon[:, 0], "lon": lat_lon[:, 1], "t": full["acq_time_utc"]})
    key["sat"] = full["satellite"].to_numpy()
    dup = key.duplicated().to_numpy()
    full = full.loc[~dup].reset_index(drop=True)
    formats = tuple(f for f in dict.fromkeys(f for f in groups if f != "empty"))
    return FireDetections(full, formats, n_records, int(dup.sum()), tuple(problems))


# ------------------------------------------------------------------------------------------------ counting
