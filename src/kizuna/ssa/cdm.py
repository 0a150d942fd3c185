"""CCSDS 508.0-B-1 Conjunction Data Messages (CDM): read and write KVN and XML, typed access in SI units.

A :class:`Cdm` keeps every keyword, value text, unit annotation and COMMENT of a message in file order,
so that writing what was read, in either encoding, gives back the same content. A COMMENT belongs to the
block of the keyword that follows it (508.0-B-1 puts comments at the start of a block), so CARA's
``COMMENT HBR = 15.0`` just before ``OBJECT = OBJECT1`` belongs to object 1's metadata.

Values are read in the units 508.0-B-1 fixes for each keyword (state vector km, km/s; relative
quantities m, m/s; RTN covariance m**2, m**2/s, m**2/s**2). A unit annotation is kept as written but not
used for conversion: CARA's sample CDMs label relative velocities ``[m]``. Times are UTC.
"""

from __future__ import annotations

import math
import re
import xml.parsers.expat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np
from numpy.typing import ArrayLike, NDArray

from kizuna.core.io import atomic_write
from kizuna.errors import InputError

__all__ = [
    "CdmEntry",
    "CdmObject",
    "Cdm",
    "parse_cdm",
    "read_cdm",
    "read_cdms",
    "format_cdm",
    "write_cdm",
    "cdm_from_encounter",
    "encounter_inputs",
    "relative_state_rtn",
    "covariance_problems",
    "rtn_matrix",
    "EARTH_ROTATION_RATE_RAD_S",
]

#: Nominal mean angular velocity of the Earth (IERS Conventions 2010, WGS 84), rad/s.
EARTH_ROTATION_RATE_RAD_S = 7.292115e-5

HEADER_KEYS = ("CCSDS_CDM_VERS", "CREATION_DATE", "ORIGINATOR", "MESSAGE_FOR", "MESSAGE_ID")
_REL_STATE = tuple(f"RELATIVE_{q}_{c}" for q in ("POSITION", "VELOCITY") for c in "RTN")
RELATIVE_KEYS = ("TCA", "MISS_DISTANCE", "RELATIVE_SPEED", *_REL_STATE, "START_SCREEN_PERIOD",
                 "STOP_SCREEN_PERIOD", "SCREEN_VOLUME_FRAME", "SCREEN_VOLUME_SHAPE", "SCREEN_VOLUME_X",
                 "SCREEN_VOLUME_Y", "SCREEN_VOLUME_Z", "SCREEN_ENTRY_TIME", "SCREEN_EXIT_TIME",
                 "COLLISION_PROBABILITY", "COLLISION_PROBABILITY_METHOD")  # fmt: skip
METADATA_KEYS = ("OBJECT", "OBJECT_DESIGNATOR", "CATALOG_NAME", "OBJECT_NAME", "INTERNATIONAL_DESIGNATOR",
                 "OBJECT_TYPE", "OPERATOR_CONTACT_POSITION", "OPERATOR_ORGANIZATION", "OPERATOR_PHONE",
                 "OPERATOR_EMAIL", "EPHEMERIS_NAME", "COVARIANCE_METHOD", "MANEUVERABLE", "ORBIT_CENTER",
                 "REF_FRAME", "GRAVITY_MODEL", "ATMOSPHERIC_MODEL", "N_BODY_PERTURBATIONS",
                 "SOLAR_RAD_PRESSURE", "EARTH_TIDES", "INTRACK_THRUST")  # fmt: skip
OD_KEYS = ("TIME_LASTOB_START", "TIME_LASTOB_END", "RECOMMENDED_OD_SPAN", "ACTUAL_OD_SPAN", "OBS_AVAILABLE",
           "OBS_USED", "TRACKS_AVAILABLE", "TRACKS_USED", "RESIDUALS_ACCEPTED", "WEIGHTED_RMS")  # fmt: skip
ADDITIONAL_KEYS = ("AREA_PC", "AREA_DRG", "AREA_SRP", "MASS", "CD_AREA_OVER_MASS", "CR_AREA_OVER_MASS",
                   "THRUST_ACCELERATION", "SEDR")  # fmt: skip
STATE_KEYS = ("X", "Y", "Z", "X_DOT", "Y_DOT", "Z_DOT")
_AXES = ("R", "T", "N", "RDOT", "TDOT", "NDOT", "DRG", "SRP", "THR")
_ROWS = ("CR", "CT", "CN", "CRDOT", "CTDOT", "CNDOT", "CDRG", "CSRP", "CTHR")
#: Lower triangle of the 9x9 RTN covariance, row by row (CR_R, CT_R, CT_T, ..., CTHR_THR).
COVARIANCE_KEYS = tuple(f"{_ROWS[i]}_{_AXES[j]}" for i in range(9) for j in range(i + 1))
_COV_INDEX = {k: (i, j) for i in range(9) for j in range(i + 1) for k in [f"{_ROWS[i]}_{_AXES[j]}"]}
DATA_KEYS = OD_KEYS + ADDITIONAL_KEYS + STATE_KEYS + COVARIANCE_KEYS

_MANDATORY = {
    "header": ("CCSDS_CDM_VERS", "CREATION_DATE", "ORIGINATOR", "MESSAGE_ID"),
    "relative metadata/data": ("TCA", "MISS_DISTANCE"),
    "metadata": ("OBJECT", "OBJECT_DESIGNATOR", "CATALOG_NAME", "OBJECT_NAME", "INTERNATIONAL_DESIGNATOR",
                 "EPHEMERIS_NAME", "COVARIANCE_METHOD", "MANEUVERABLE", "REF_FRAME"),
    "data": STATE_KEYS + COVARIANCE_KEYS[:21],
}  # fmt: skip
_DATE_KEYS = frozenset(
    (
        "CREATION_DATE TCA START_SCREEN_PERIOD STOP_SCREEN_PERIOD SCREEN_ENTRY_TIME "
        "SCREEN_EXIT_TIME TIME_LASTOB_START TIME_LASTOB_END"
    ).split()
)
_INT_KEYS = frozenset({"OBS_AVAILABLE", "OBS_USED", "TRACKS_AVAILABLE", "TRACKS_USED"})
_FLOAT_KEYS = frozenset({"MISS_DISTANCE", "RELATIVE_SPEED", *_REL_STATE, "SCREEN_VOLUME_X", "SCREEN_VOLUME_Y",
                         "SCREEN_VOLUME_Z", "COLLISION_PROBABILITY", "RECOMMENDED_OD_SPAN", "ACTUAL_OD_SPAN",
                         "RESIDUALS_ACCEPTED", "WEIGHTED_RMS", *ADDITIONAL_KEYS, *STATE_KEYS,
                         *COVARIANCE_KEYS})  # fmt: skip
_FINITE_KEYS = frozenset({"MISS_DISTANCE", *STATE_KEYS})
_KIND = {
    **dict.fromkeys(HEADER_KEYS, "header"),
    **dict.fromkeys(RELATIVE_KEYS, "relative metadata/data"),
    **dict.fromkeys(METADATA_KEYS, "metadata"),
    **dict.fromkeys(DATA_KEYS, "data"),
}
_SUBSECTION = {
    **dict.fromkeys(OD_KEYS, "odParameters"),
    **dict.fromkeys(ADDITIONAL_KEYS, "additionalParameters"),
    **dict.fromkeys(STATE_KEYS, "stateVector"),
    **dict.fromkeys(COVARIANCE_KEYS, "covarianceMatrix"),
}
_XML_CONTAINERS = frozenset({"header", "body", "relativeMetadataData", "relativeStateVector", "segment",
                             "metadata", "data", "odParameters", "additionalParameters", "stateVector",
                             "covarianceMatrix"})  # fmt: skip
_FRAMES = ("EME2000", "GCRF", "ITRF")

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?nan", re.IGNORECASE)
_INTEGER = re.compile(r"[+-]?\d+|nan", re.IGNORECASE)
_DATE = re.compile(r"(\d{4})-(?:(\d{2})-(\d{2})|(\d{3}))T(\d{2}):(\d{2}):(\d{2})(?:\.(\d*))?Z?")
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_VALUE_UNIT = re.compile(r"(.*?)\s*(?:\[([^\[\]]*)\]?)?\s*")
_HBR_COMMENT = re.compile(
    r"(?:HBR|EFFECTIVE_HBR|Operator Hard Body Radius)\s*=\s*([^\s\[]+)\s*(?:\[\s*(m|km)\s*\])?", re.IGNORECASE
)


@dataclass(frozen=True)
class CdmEntry:
    """One line of a CDM: a keyword with its value text and unit annotation, or a COMMENT (key "COMMENT")."""

    key: str
    value: str
    unit: str | None = None
    line: int | None = field(default=None, compare=False, repr=False)


def _parse_date(text: str) -> np.datetime64:
    """Parse a CCSDS time (YYYY-MM-DDThh:mm:ss[.f] or YYYY-DDDThh:mm:ss[.f]) into datetime64[ns] UTC."""
    m = _DATE.fullmatch(text)
    if m is None:
        raise ValueError("expected a time YYYY-MM-DDThh:mm:ss[.fff] or YYYY-DDDThh:mm:ss[.fff]")
    year, month, day, doy, hh, mm, ss, frac = m.groups()
    if doy is not None:
        if not 1 <= int(doy) <= 366:
            raise ValueError("day of year out of range")
        day0 = np.datetime64(f"{year}-01-01", "D") + np.timedelta64(int(doy) - 1, "D")
    else:
        try:
            day0 = np.datetime64(f"{year}-{month}-{day}", "D")
        except ValueError:
            raise ValueError(f"no such calendar date {year}-{month}-{day}") from None
    if int(hh) > 23 or int(mm) > 59 or int(ss) > 60:
        raise ValueError("time of day out of range")
    ns = ((int(hh) * 60 + int(mm)) * 60 + int(ss)) * 1_000_000_000 + int((frac or "0")[:9].ljust(9, "0"))
    return day0.astype("datetime64[ns]") + np.timedelta64(ns, "ns")


def _typed(key: str, text: str) -> Any:
    """Return the value of ``key`` as float, int, datetime64[ns] or str; None when the value is empty."""
    if text == "":
        return None
    if key in _DATE_KEYS:
        return _parse_date(text)
    if key in _FLOAT_KEYS:
        if not _NUMBER.fullmatch(text):
            raise ValueError("expected a number")
        return float(text)
    if key in _INT_KEYS:
        if not _INTEGER.fullmatch(text):
            raise ValueError("expected an integer")
        return float("nan") if text.lower() == "nan" else int(text)
    return text


class _Block:
    """Lookup shared by the blocks of a CDM (entries in file order)."""

    def _entries(self) -> tuple[CdmEntry, ...]:
        raise NotImplementedError

    def get(self, key: str) -> CdmEntry | None:
        """Return the entry of ``key`` (None when absent)."""
        return next((e for e in self._entries() if e.key == key), None)

    def value(self, key: str) -> Any:
        """Value of ``key``: float (508.0-B-1 units), int, datetime64[ns] UTC or str; None if absent."""
        e = self.get(key)
        return None if e is None else _typed(key, e.value)

    @property
    def comments(self) -> tuple[str, ...]:
        """The COMMENT texts of these blocks, in file order."""
        return tuple(e.value for e in self._entries() if e.key == "COMMENT")


@dataclass(frozen=True)
class CdmObject(_Block):
    """One object of a CDM: metadata and data entries (OD, additional parameters, state, RTN covariance)."""

    metadata: tuple[CdmEntry, ...]
    data: tuple[CdmEntry, ...]

    def _entries(self) -> tuple[CdmEntry, ...]:
        return self.metadata + self.data

    @property
    def ref_frame(self) -> str:
        """REF_FRAME of the state vector (EME2000, GCRF or ITRF)."""
        return self.value("REF_FRAME").strip().upper()

    def state_m(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Position (m) and velocity (m/s) at TCA in REF_FRAME, as printed (Earth-fixed velocity for ITRF)."""
        x = np.array([self.value(k) for k in STATE_KEYS], dtype=float) * 1000.0
        return x[:3], x[3:]

    def covariance_rtn(self) -> NDArray[np.float64]:
        """Symmetric RTN covariance, 6x6 up to 9x9 with the DRG, SRP, THR rows present (NaN where absent)."""
        present = [_COV_INDEX[e.key][0] for e in self.data if e.key in _COV_INDEX]
        n = max(6, max(present, default=0) + 1)
        c = np.full((n, n), np.nan)
        for e in self.data:
            if e.key in _COV_INDEX:
                i, j = _COV_INDEX[e.key]
                c[i, j] = c[j, i] = _typed(e.key, e.value) if e.value else np.nan
        return c

    def covariance_rtn_m2(self) -> NDArray[np.float64]:
        """6x6 symmetric position-velocity covariance in the object's RTN frame (m**2, m**2/s, m**2/s**2)."""
        return self.covariance_rtn()[:6, :6].copy()


@dataclass(frozen=True)
class Cdm(_Block):
    """A Conjunction Data Message: header, relative metadata/data, two objects; every entry kept in order."""

    header: tuple[CdmEntry, ...]
    relative: tuple[CdmEntry, ...]
    object1: CdmObject
    object2: CdmObject
    source: str | None = field(default=None, compare=False)

    def _entries(self) -> tuple[CdmEntry, ...]:
        return self.header + self.relative

    @property
    def objects(self) -> tuple[CdmObject, CdmObject]:
        """(object1, object2)."""
        return self.object1, self.object2

    @property
    def tca(self) -> np.datetime64:
        """Time of closest approach, datetime64[ns] UTC."""
        return self.value("TCA")

    @property
    def creation_date(self) -> np.datetime64:
        """CREATION_DATE, datetime64[ns] UTC."""
        return self.value("CREATION_DATE")

    @property
    def miss_distance_m(self) -> float:
        """MISS_DISTANCE as printed, m."""
        return self.value("MISS_DISTANCE")

    @property
    def relative_speed_m_s(self) -> float | None:
        """RELATIVE_SPEED as printed, m/s (None when absent)."""
        return self.value("RELATIVE_SPEED")

    def _vector(self, keys: Sequence[str]) -> NDArray[np.float64] | None:
        v = [self.value(k) for k in keys]
        return None if None in v else np.array(v, dtype=float)

    @property
    def relative_position_rtn_m(self) -> NDArray[np.float64] | None:
        """RELATIVE_POSITION_R/T/N as printed (508.0-B-1: object 2 minus object 1, object 1's RTN), m."""
        return self._vector(_REL_STATE[:3])

    @property
    def relative_velocity_rtn_m_s(self) -> NDArray[np.float64] | None:
        """RELATIVE_VELOCITY_R/T/N as printed (508.0-B-1: object 2 minus object 1, object 1's RTN), m/s."""
        return self._vector(_REL_STATE[3:])

    @property
    def collision_probability(self) -> float | None:
        """COLLISION_PROBABILITY as printed (None when absent)."""
        return self.value("COLLISION_PROBABILITY")

    @property
    def ref_frame(self) -> str:
        """The common REF_FRAME of both state vectors; InputError when the two objects differ."""
        f1, f2 = self.object1.ref_frame, self.object2.ref_frame
        if f1 != f2:
            raise InputError(f"{self.source}: REF_FRAME differs between objects ({f1} and {f2})")
        return f1

    def _hard_body_radius(self) -> tuple[float | None, str | None]:
        for block in (self.header, self.relative, *(o.metadata + o.data for o in self.objects)):
            for e in block:
                m = _HBR_COMMENT.match(e.value) if e.key == "COMMENT" else None
                if m and _NUMBER.fullmatch(m.group(1)) and math.isfinite(float(m.group(1))):
                    scale = 1000.0 if (m.group(2) or "m").lower() == "km" else 1.0
                    return float(m.group(1)) * scale, f"COMMENT {e.value}"
        areas = [o.value("AREA_PC") for o in self.objects]
        if all(a is not None and math.isfinite(a) and a > 0 for a in areas):
            return sum(math.sqrt(a / math.pi) for a in areas), "AREA_PC of both objects"
        return None, None

    @property
    def hard_body_radius_m(self) -> float | None:
        """Combined hard-body radius, m: from an HBR comment (CARA), else from both AREA_PC; None if neither.

        Comments read (first in file order): ``HBR = r``, ``EFFECTIVE_HBR = r`` and ``Operator Hard Body
        Radius = r [m]``, in metres unless marked ``[km]``, as CARA's CDM reader does. Without one, each
        object's AREA_PC (m**2) gives the radius of a disk of that area and the two radii are added.
        """
        return self._hard_body_radius()[0]

    @property
    def hard_body_radius_source(self) -> str | None:
        """Where :attr:`hard_body_radius_m` comes from (the comment text or "AREA_PC of both objects")."""
        return self._hard_body_radius()[1]


# ---------------------------------------------------------------------------------------------- reading


def _fail(source: str, line: int | None, msg: str) -> InputError:
    return InputError(f"{source}: line {line}: {msg}" if line else f"{source}: {msg}")


def _assemble(tokens: Sequence[CdmEntry], source: str) -> Cdm:
    """Sort a flat sequence of entries into the CDM blocks, then check keys, values and objects."""
    if not any(t.key != "COMMENT" for t in tokens):
        raise InputError(f"{source}: no CDM keywords found (expected CCSDS_CDM_VERS = 1.0 first)")
    blocks: dict[str, list[CdmEntry]] = {"header": [], "relative metadata/data": []}
    objects: list[dict[str, list[CdmEntry]]] = []
    stage, pending = "header", []
    for t in tokens:
        if t.key == "COMMENT":
            pending.append(t)
            continue
        if not blocks["header"] and t.key != "CCSDS_CDM_VERS":
            raise _fail(source, t.line, f"first keyword must be CCSDS_CDM_VERS, found {t.key}")
        kind = _KIND.get(t.key)
        if t.key == "OBJECT":
            objects.append({"metadata": [], "data": []})
            stage = "metadata"
        elif kind == "relative metadata/data" and stage == "header":
            stage = kind
        elif kind == "data" and stage == "metadata":
            stage = kind
        elif kind is not None and kind != stage:
            where = (
                "before OBJECT = OBJECT1" if kind in ("metadata", "data") and not objects else f"in {stage}"
            )
            raise _fail(source, t.line, f"{t.key} (a {kind} keyword) is out of place {where}")
        target = objects[-1][stage] if objects and stage in ("metadata", "data") else blocks[stage]
        target += [t, *pending] if t.key == "CCSDS_CDM_VERS" else [*pending, t]
        pending = []
    (objects[-1][stage] if objects and stage in ("metadata", "data") else blocks[stage]).extend(pending)
    if len(objects) != 2:
        raise InputError(f"{source}: expected 2 objects (OBJECT = OBJECT1, OBJECT2), found {len(objects)}")
    named = [(f"object {i + 1} {k}", o[k]) for i, o in enumerate(objects) for k in ("metadata", "data")]
    for name, entries in [*blocks.items(), *named]:
        _check_block(name, entries, source)
    for i, o in enumerate(objects):
        e = next(x for x in o["metadata"] if x.key == "OBJECT")
        if e.value.upper() != f"OBJECT{i + 1}":
            raise _fail(source, e.line, f"OBJECT: expected OBJECT{i + 1}, got {e.value!r}")
        e = next(x for x in o["metadata"] if x.key == "REF_FRAME")
        if e.value.strip().upper() not in _FRAMES:
            raise _fail(source, e.line, f"REF_FRAME: expected one of {', '.join(_FRAMES)}, got {e.value!r}")
    version = blocks["header"][0]
    if not version.value.startswith("1."):
        raise _fail(source, version.line, f"CCSDS_CDM_VERS: version {version.value!r} not supported (1.x)")
    obj = [CdmObject(tuple(o["metadata"]), tuple(o["data"])) for o in objects]
    return Cdm(tuple(blocks["header"]), tuple(blocks["relative metadata/data"]), obj[0], obj[1], source)


def _check_block(name: str, entries: Sequence[CdmEntry], source: str) -> None:
    """Raise InputError for a duplicate keyword, an unparsable value or a missing mandatory keyword."""
    seen: dict[str, CdmEntry] = {}
    for e in entries:
        if e.key == "COMMENT":
            continue
        if e.key in seen:
            raise _fail(source, e.line, f"{e.key} repeated in {name} (first on line {seen[e.key].line})")
        seen[e.key] = e
        try:
            v = _typed(e.key, e.value)
        except ValueError as err:
            raise _fail(source, e.line, f"{e.key} = {e.value!r}: {err}") from None
        if e.key in _FINITE_KEYS and (v is None or not math.isfinite(v)):
            raise _fail(source, e.line, f"{e.key} = {e.value!r}: expected a finite number")
    lines = [e.line for e in entries if e.line]
    span = f" (lines {min(lines)}-{max(lines)})" if lines else ""
    for key in _MANDATORY[name.split()[-1] if name.startswith("object") else name]:
        if key not in seen:
            raise InputError(f"{source}: {name}{span}: mandatory keyword {key} is missing")
        if seen[key].value == "" and key != "CCSDS_CDM_VERS":
            raise _fail(source, seen[key].line, f"mandatory keyword {key} has no value")


def _kvn_tokens(text: str, source: str) -> list[CdmEntry]:
    """Split KVN text into entries: ``KEY = value [unit]`` lines and COMMENT lines; blank lines skipped."""
    tokens = []
    for n, raw in enumerate(text.splitlines(), start=1):
        s = raw.strip()
        if not s:
            continue
        if s == "COMMENT" or s.startswith(("COMMENT ", "COMMENT\t")):
            tokens.append(CdmEntry("COMMENT", s[7:].strip(), None, n))
            continue
        key, eq, rest = s.partition("=")
        key = key.strip()
        if not eq or not _KEY.fullmatch(key):
            raise _fail(source, n, f"expected KEY = value [unit] or COMMENT, got {s[:60]!r}")
        m = _VALUE_UNIT.fullmatch(rest.strip())
        value, unit = m.group(1), m.group(2)
        tokens.append(CdmEntry(key.upper(), value, None if unit is None else unit.strip(), n))
    return tokens


def _xml_tokens(text: str, source: str) -> list[CdmEntry]:
    """Flatten an XML CDM into entries in document order (leaf elements, with their line numbers)."""
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    stack: list[list[Any]] = []  # [tag, attrs, text parts, has children, line]
    tokens: list[CdmEntry] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        tag = name.rsplit(" ", 1)[-1]
        if not stack:
            if tag != "cdm":
                raise _fail(source, parser.CurrentLineNumber, f"expected a <cdm> root element, got <{tag}>")
            version = next((v for k, v in attrs.items() if k.rsplit(" ", 1)[-1] == "version"), "")
            tokens.append(CdmEntry("CCSDS_CDM_VERS", version.strip(), None, parser.CurrentLineNumber))
        else:
            stack[-1][3] = True
        units = next((v for k, v in attrs.items() if k.rsplit(" ", 1)[-1] == "units"), None)
        stack.append([tag, units, [], False, parser.CurrentLineNumber])

    def end(name: str) -> None:
        tag, units, parts, has_children, line = stack.pop()
        if stack and not has_children and tag not in _XML_CONTAINERS:
            tokens.append(CdmEntry(tag.upper(), "".join(parts).strip(), units, line))

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = lambda data: stack[-1][2].append(data) if stack else None
    try:
        parser.Parse(text, True)
    except xml.parsers.expat.ExpatError as err:
        raise _fail(source, err.lineno, f"malformed XML: {xml.parsers.expat.ErrorString(err.code)}") from None
    return tokens


def parse_cdm(text: str, source: str = "<string>") -> Cdm:
    """Parse CDM text, KVN or XML (detected from the first character), into a :class:`Cdm`."""
    text = text.lstrip("\ufeff")
    is_xml = text.lstrip().startswith("<")
    return _assemble((_xml_tokens if is_xml else _kvn_tokens)(text, source), source)


def read_cdm(path: str | Path) -> Cdm:
    """Read one CDM file, KVN or XML (detected from its content)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise InputError(f"{path}: cannot read CDM file ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text at byte {err.start}") from None
    return parse_cdm(text, str(path))


def read_cdms(paths: Iterable[str | Path]) -> list[Cdm]:
    """Read several CDM files, in the order given."""
    return [read_cdm(p) for p in paths]


# ---------------------------------------------------------------------------------------------- writing


def _kvn_line(e: CdmEntry) -> str:
    if e.key == "COMMENT":
        return f"COMMENT {e.value}".rstrip()
    parts = [f"{e.key:<32} =", e.value, f"[{e.unit}]" if e.unit is not None else ""]
    return " ".join(p for p in parts if p)


def _xml_leaf(e: CdmEntry, indent: str) -> str:
    units = f" units={quoteattr(e.unit)}" if e.unit is not None else ""
    return f"{indent}<{e.key}{units}>{escape(e.value)}</{e.key}>"


def _xml_block(entries: Sequence[CdmEntry], container_of: Mapping[str, str], indent: str) -> list[str]:
    """XML lines for a block whose keywords may sit in sub-containers; comments go with the next keyword."""
    out: list[str] = []
    current: str | None = None
    pending: list[CdmEntry] = []
    for e in entries:
        if e.key == "COMMENT":
            pending.append(e)
            continue
        want = container_of.get(e.key, current if e.key not in _KIND else None)
        if want != current:
            if current is not None:
                out.append(f"{indent}</{current}>")
            if want == "relativeStateVector":  # the schema allows no COMMENT inside it
                out.extend(_xml_leaf(c, indent) for c in pending)
                pending = []
            if want is not None:
                out.append(f"{indent}<{want}>")
            current = want
        inner = indent + ("  " if current else "")
        out.extend(_xml_leaf(c, inner) for c in pending)
        out.append(_xml_leaf(e, inner))
        pending = []
    out.extend(_xml_leaf(c, indent + ("  " if current else "")) for c in pending)
    if current is not None:
        out.append(f"{indent}</{current}>")
    return out


def format_cdm(cdm: Cdm, fmt: str = "kvn") -> str:
    """Return the text of ``cdm`` in KVN or XML (508.0-B-1 layout, every entry in its stored order)."""
    fmt = fmt.lower()
    if fmt == "kvn":
        blocks = [cdm.header, cdm.relative, *(b for o in cdm.objects for b in (o.metadata, o.data))]
        return "\n\n".join("\n".join(_kvn_line(e) for e in b) for b in blocks) + "\n"
    if fmt != "xml":
        raise InputError(f"CDM format must be 'kvn' or 'xml', got {fmt!r}")
    version = cdm.header[0].value
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<cdm xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"',
        '     xsi:noNamespaceSchemaLocation="http://sanaregistry.org/r/ndmxml/ndmxml-1.0-master.xsd"',
        f'     id="CCSDS_CDM_VERS" version={quoteattr(version)}>',
        "  <header>",
        *_xml_block(cdm.header[1:], {}, "    "),
        "  </header>",
        "  <body>",
        "    <relativeMetadataData>",
        *_xml_block(cdm.relative, dict.fromkeys(_REL_STATE, "relativeStateVector"), "      "),
        "    </relativeMetadataData>",
    ]
    for o in cdm.objects:
        meta, data = _xml_block(o.metadata, {}, " " * 8), _xml_block(o.data, _SUBSECTION, " " * 8)
        out += ["    <segment>", "      <metadata>", *meta, "      </metadata>", "      <data>", *data]
        out += ["      </data>", "    </segment>"]
    return "\n".join([*out, "  </body>", "</cdm>"]) + "\n"


def write_cdm(path: str | Path, cdm: Cdm, fmt: str = "kvn") -> Path:
    """Write ``cdm`` to ``path`` in KVN or XML, atomically; return the path."""
    return atomic_write(path, format_cdm(cdm, fmt))


# ---------------------------------------------------------------------------------------------- geometry


def rtn_matrix(r: ArrayLike, v: ArrayLike) -> NDArray[np.float64]:
    """Rows R, T, N of the RTN frame (R = r/|r|, N = r x v/|r x v|, T = N x R) in r's frame; (..., 3, 3)."""
    r, v = np.asarray(r, dtype=float), np.asarray(v, dtype=float)
    rhat = r / np.linalg.norm(r, axis=-1, keepdims=True)
    h = np.cross(r, v)
    nhat = h / np.linalg.norm(h, axis=-1, keepdims=True)
    return np.stack([rhat, np.cross(nhat, rhat), nhat], axis=-2)


def _inertial_velocity(r_m: NDArray[np.float64], v_m_s: NDArray[np.float64], frame: str) -> NDArray:
    """Velocity relative to inertial space along the frame's axes (adds omega x r for ITRF), m/s."""
    if frame != "ITRF":
        return v_m_s
    return v_m_s + np.cross([0.0, 0.0, EARTH_ROTATION_RATE_RAD_S], r_m)


def encounter_inputs(cdm: Cdm) -> tuple[NDArray[np.float64], ...]:
    """Both objects' position (m), velocity (m/s) and 6x6 covariance (m, m/s) in the CDM's REF_FRAME axes.

    Returns ``(r1, v1, C1, r2, v2, C2)``. For ITRF the velocities are made inertial by adding
    omega x r (Earth rotation), so the relative velocity and each object's RTN frame are the inertial ones
    that 508.0-B-1 and CARA use; the positions stay Earth-fixed. Expressing both objects along the axes of
    one (rotating) frame at the single instant TCA is a common rotation of the encounter, which changes
    neither the miss vector's length nor the collision probability. Each covariance is turned from its own
    object's RTN frame (built from the inertial velocity) into the frame with the block-diagonal rotation
    diag(M^T, M^T), M = :func:`rtn_matrix`, as CARA does.
    """
    frame = cdm.ref_frame
    out = []
    for o in cdm.objects:
        r, v = o.state_m()
        v = _inertial_velocity(r, v, frame)
        rot = np.zeros((6, 6))
        rot[:3, :3] = rot[3:, 3:] = rtn_matrix(r, v).T
        c = rot @ o.covariance_rtn_m2() @ rot.T
        out += [r, v, 0.5 * (c + c.T)]
    return tuple(out)


def relative_state_rtn(cdm: Cdm) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Object 2 minus object 1 from the state vectors, along object 1's inertial RTN axes: (dr m, dv m/s)."""
    r1, v1, _, r2, v2, _ = encounter_inputs(cdm)
    m = rtn_matrix(r1, v1)
    return m @ (r2 - r1), m @ (v2 - v1)


def covariance_problems(cdm: Cdm) -> list[str]:
    """Describe each object whose 6x6 RTN covariance is not positive definite (empty list: both are).

    A message starts with ``OBJECTn:`` and says ``position`` when the 3x3 position block itself is not
    positive definite (which every Pc method needs); otherwise only the 6x6 (used by 3-D Pc) is at
    fault, e.g. a position-only covariance with zero velocity variances. The test is made on the
    correlation matrix, so m and m/s entries do not mix (smallest eigenvalue below 1e-12: singular within
    rounding, below -1e-12: indefinite); the eigenvalues quoted are the covariance's.
    """
    problems = []
    for i, o in enumerate(cdm.objects, start=1):
        c = o.covariance_rtn_m2()
        if not np.all(np.isfinite(c)):
            problems.append(f"OBJECT{i}: RTN covariance has missing or non-finite entries")
            continue
        for n, what in ((3, "position covariance (3x3 RTN)"), (6, "6x6 RTN covariance")):
            d = np.diag(c)[:n]
            if np.any(d <= 0):
                bad = ", ".join(f"{_ROWS[k]}_{_AXES[k]} = {d[k]:.6g}" for k in np.flatnonzero(d <= 0))
                problems.append(f"OBJECT{i}: {what} is not positive definite: variances {bad}")
                break
            s = 1.0 / np.sqrt(d)
            low = np.linalg.eigvalsh(c[:n, :n] * np.outer(s, s))[0]
            if low <= 1e-12:
                kind = "singular (zero eigenvalue within rounding)" if low > -1e-12 else "indefinite"
                eig = ", ".join(f"{x:.6g}" for x in np.linalg.eigvalsh(c[:n, :n]))
                problems.append(f"OBJECT{i}: {what} is not positive definite, {kind}: eigenvalues {eig}")
                break
    return problems


# ---------------------------------------------------------------------------------------------- creating


def _fmt_time(t: np.datetime64 | str, unit: str = "ms") -> str:
    return str(np.datetime64(t, unit))


def cdm_from_encounter(
    tca: np.datetime64 | str,
    r1_m: ArrayLike, v1_m_s: ArrayLike, cov1_rtn: ArrayLike,
    r2_m: ArrayLike, v2_m_s: ArrayLike, cov2_rtn: ArrayLike,
    *,
    ref_frame: str = "GCRF",
    miss_distance_m: float | None = None,
    collision_probability: float | None = None,
    collision_probability_method: str | None = None,
    hard_body_radius_m: float | None = None,
    object1: Mapping[str, Any] | None = None,
    object2: Mapping[str, Any] | None = None,
    originator: str = "KIZUNA",
    message_id: str | None = None,
    message_for: str | None = None,
    creation_date: np.datetime64 | str | None = None,
    comments: Sequence[str] = (),
) -> Cdm:  # fmt: skip
    """Build a CDM from both objects' states at TCA (m, m/s in GCRF, EME2000 or ITRF) and 6x6 RTN covariances.

    Each covariance (m**2, m**2/s, m**2/s**2; its lower triangle is written) is in its own object's RTN
    frame, built from the inertial velocity as in :func:`encounter_inputs`. MISS_DISTANCE defaults to
    |r2 - r1|; RELATIVE_SPEED and RELATIVE_POSITION/VELOCITY_R/T/N are computed from the states in object
    1's inertial RTN frame (for ITRF with omega x r added). ``object1``/``object2`` give metadata keywords
    (OBJECT_DESIGNATOR, OBJECT_NAME, ...); mandatory ones not given are filled with 508.0-B-1 defaults
    (CATALOG_NAME SATCAT, EPHEMERIS_NAME NONE, COVARIANCE_METHOD CALCULATED, MANEUVERABLE N/A, UNKNOWN
    names). A hard-body radius is written as ``COMMENT HBR = r [m]``, which :class:`Cdm` reads back.
    """
    frame = ref_frame.upper()
    if frame not in _FRAMES:
        raise InputError(f"ref_frame must be one of {', '.join(_FRAMES)}, got {ref_frame!r}")
    tca = np.datetime64(tca, "ns")
    created = np.datetime64("now", "ms") if creation_date is None else creation_date
    states = [(np.asarray(r, float).reshape(3), np.asarray(v, float).reshape(3)) for r, v in
              ((r1_m, v1_m_s), (r2_m, v2_m_s))]  # fmt: skip
    covs = [np.asarray(c, float) for c in (cov1_rtn, cov2_rtn)]
    for name, c in zip(("cov1_rtn", "cov2_rtn"), covs, strict=True):
        if c.shape != (6, 6):
            raise InputError(f"{name}: expected a 6x6 RTN covariance, got shape {c.shape}")
    (r1, v1), (r2, v2) = states
    v1i, v2i = _inertial_velocity(r1, v1, frame), _inertial_velocity(r2, v2, frame)
    m = rtn_matrix(r1, v1i)
    dr, dv = m @ (r2 - r1), m @ (v2i - v1i)
    miss = float(np.linalg.norm(r2 - r1)) if miss_distance_m is None else float(miss_distance_m)
    stamp = np.datetime_as_string(tca, unit="s").replace("-", "").replace(":", "")
    e = CdmEntry
    header = [e("CCSDS_CDM_VERS", "1.0"), *(e("COMMENT", c) for c in comments),
              e("CREATION_DATE", _fmt_time(created)), e("ORIGINATOR", originator)]  # fmt: skip
    if message_for:
        header.append(e("MESSAGE_FOR", message_for))
    designators = [str((o or {}).get("OBJECT_DESIGNATOR", "UNKNOWN")) for o in (object1, object2)]
    header.append(e("MESSAGE_ID", message_id or f"{designators[0]}_conj_{designators[1]}_{stamp}"))
    rel = [e("TCA", _fmt_time(tca, "us")), e("MISS_DISTANCE", f"{miss:.3f}", "m"),
           e("RELATIVE_SPEED", f"{np.linalg.norm(dv):.3f}", "m/s"),
           *(e(k, f"{x:.3f}", "m") for k, x in zip(_REL_STATE[:3], dr, strict=True)),
           *(e(k, f"{x:.6f}", "m/s") for k, x in zip(_REL_STATE[3:], dv, strict=True))]  # fmt: skip
    if hard_body_radius_m is not None:
        rel.insert(0, e("COMMENT", f"HBR = {hard_body_radius_m:.6g} [m]"))
    if collision_probability is not None:
        rel.append(e("COLLISION_PROBABILITY", f"{collision_probability:.6e}"))
    if collision_probability_method:
        rel.append(e("COLLISION_PROBABILITY_METHOD", collision_probability_method))
    objs = []
    for i, (meta_in, (r, v), c) in enumerate(zip((object1, object2), states, covs, strict=True), start=1):
        given = {str(k).upper(): str(x) for k, x in (meta_in or {}).items()}
        unknown = sorted(set(given) - set(METADATA_KEYS))
        if unknown:
            raise InputError(f"object{i}: not CDM metadata keywords: {', '.join(unknown)}")
        defaults = {"OBJECT": f"OBJECT{i}", "OBJECT_DESIGNATOR": "UNKNOWN", "CATALOG_NAME": "SATCAT",
                    "OBJECT_NAME": "UNKNOWN", "INTERNATIONAL_DESIGNATOR": "UNKNOWN", "EPHEMERIS_NAME": "NONE",
                    "COVARIANCE_METHOD": "CALCULATED", "MANEUVERABLE": "N/A", "REF_FRAME": frame}  # fmt: skip
        values = {**defaults, **given, "OBJECT": f"OBJECT{i}", "REF_FRAME": frame}
        meta = [e(k, values[k]) for k in METADATA_KEYS if k in values]
        data = [e(k, f"{x / 1000.0:.9f}", "km") for k, x in zip(STATE_KEYS[:3], r, strict=True)]
        data += [e(k, f"{x / 1000.0:.12f}", "km/s") for k, x in zip(STATE_KEYS[3:], v, strict=True)]
        for k in COVARIANCE_KEYS[:21]:
            a, b = _COV_INDEX[k]
            unit = "m**2" + ("/s" * ((a >= 3) + (b >= 3))).replace("/s/s", "/s**2")
            data.append(e(k, f"{c[a, b]:.15e}", unit))
        objs += [*meta, *data]
    return _assemble([*header, *rel, *objs], "<cdm_from_encounter>")
