"""CCSDS Orbit Mean-elements Messages (OMM, CCSDS 502.0-B-2 and -3) for SGP4 element sets.

Reads and writes the three encodings: KVN (``KEY = value`` lines, several messages one after another),
NDM/XML (``<omm>`` elements inside an ``<ndm>``, or a lone ``<omm>``) and JSON in Space-Track's layout
(a list of flat objects). Each message becomes one :class:`~kizuna.ssa.elements.ElementSet` (TEME,
UTC); a message that cannot be used is skipped and reported as an
:class:`~kizuna.ssa.elements.ElementProblem` naming the key.

Keys that are not CCSDS keywords travel as user-defined parameters (``USER_DEFINED_X`` in KVN,
``<USER_DEFINED parameter="X">`` in XML, plain ``X`` in JSON), as Space-Track writes them. When an
element set carries its original TLE lines they are written as ``TLE_LINE1``/``TLE_LINE2`` so that
TLE -> OMM -> TLE gives back the very same lines; on reading, such lines are kept only when they hold
exactly the message's elements.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as _dt
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from kizuna.core.io import atomic_write
from kizuna.errors import InputError
from kizuna.ssa.elements import (
    EARTH_RADIUS_WGS72_KM,
    ElementProblem,
    ElementSet,
    PathLike,
    _Bad,
    _nothing_usable,
    _parse_many,
    _source_text,
)

__all__ = ["read_omm", "write_omm", "omm_fields"]

# GM that Space-Track uses for its SEMIMAJOR_AXIS (km^3/s^2, EGM-96/WGS-84 value): it reproduces the
# SEMIMAJOR_AXIS 6859.961 km printed for NUSAT-8 (mean motion 15.27989249 rev/day) in omm1_st.*.
_GM_SPACETRACK_KM3_S2 = 398600.4418

_HEADER = ("CCSDS_OMM_VERS", "CREATION_DATE", "ORIGINATOR", "MESSAGE_ID")
_METADATA = (
    "OBJECT_NAME", "OBJECT_ID", "CENTER_NAME", "REF_FRAME", "REF_FRAME_EPOCH", "TIME_SYSTEM",
    "MEAN_ELEMENT_THEORY",
)  # fmt: skip
_MEAN = (
    "EPOCH", "SEMI_MAJOR_AXIS", "MEAN_MOTION", "ECCENTRICITY", "INCLINATION", "RA_OF_ASC_NODE",
    "ARG_OF_PERICENTER", "MEAN_ANOMALY", "GM",
)  # fmt: skip
_SPACECRAFT = ("MASS", "SOLAR_RAD_AREA", "SOLAR_RAD_COEFF", "DRAG_AREA", "DRAG_COEFF")
_TLE = (
    "EPHEMERIS_TYPE", "CLASSIFICATION_TYPE", "NORAD_CAT_ID", "ELEMENT_SET_NO", "REV_AT_EPOCH", "BSTAR",
    "BTERM", "MEAN_MOTION_DOT", "MEAN_MOTION_DDOT", "AGOM",
)  # fmt: skip
_COV = ("COV_REF_FRAME",) + tuple(
    f"C{a}_{b}" for i, a in enumerate(("X", "Y", "Z", "X_DOT", "Y_DOT", "Z_DOT"))
    for b in ("X", "Y", "Z", "X_DOT", "Y_DOT", "Z_DOT")[: i + 1]
)  # fmt: skip
_CCSDS_KEYS = frozenset(_HEADER + _METADATA + _MEAN + _SPACECRAFT + _TLE + _COV)
# Keys an SGP4 element set cannot do without (CCSDS 502.0-B-2 section 4.2.4: the TLE-related
# parameters are required when MEAN_ELEMENT_THEORY is SGP4; BSTAR is the one SGP4 propagates with).
_MANDATORY = (
    "EPOCH", "MEAN_MOTION", "ECCENTRICITY", "INCLINATION", "RA_OF_ASC_NODE", "ARG_OF_PERICENTER",
    "MEAN_ANOMALY", "NORAD_CAT_ID", "BSTAR",
)  # fmt: skip
_EPOCH_RE = re.compile(
    r"(\d{4})-(?:(\d{2})-(\d{2})|(\d{3}))T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?Z?$", re.ASCII
)
_OBJECT_ID_RE = re.compile(r"(\d{4})-(\d{3})([A-Z]{0,3})$", re.ASCII)
_DESIGNATOR_RE = re.compile(r"(\d{2})(\d{3})([A-Z]{0,3})$", re.ASCII)
_XML_OMM_RE = re.compile(r"<(?:[\w.-]+:)?omm[\s>/]")


@dataclasses.dataclass
class _Message:
    """One OMM as flat ``KEY -> text`` (user-defined keys as USER_DEFINED_X) and where it starts."""

    line: int
    fields: dict[str, str]
    errors: list[tuple[str, str]]


def _kvn_messages(text: str) -> list[_Message]:
    """Split KVN text into messages, each starting at a CCSDS_OMM_VERS line."""
    msgs: list[_Message] = []
    fields: dict[str, str] = {}
    errors: list[tuple[str, str]] = []
    for no, raw in enumerate(text.splitlines(), start=1):
        key, eq, value = raw.partition("=")
        key = key.strip()
        if not key or (key[:7] == "COMMENT" and (key == "COMMENT" or key[7] in " \t")):
            if eq and not key:
                errors.append(("KVN", f"file line {no}: {raw.strip()[:40]!r} has no key before '='"))
            continue
        if key == "CCSDS_OMM_VERS" or not msgs:
            fields, errors = {}, []
            msgs.append(_Message(no, fields, errors))
            if key != "CCSDS_OMM_VERS":
                errors.append(("CCSDS_OMM_VERS", f"file line {no}: a KVN OMM must start with CCSDS_OMM_VERS"))
        if not eq or " " in key or "\t" in key:
            errors.append(("KVN", f"file line {no}: {raw.strip()[:40]!r} is not of the form KEY = value"))
            continue
        value = value.strip()
        if value[-1:] == "]" and "[" in value:
            value = _without_unit(value)
        if key in fields:
            errors.append((key, f"file line {no}: {key} given twice in one message"))
        fields[key] = value
    return msgs


def _without_unit(value: str) -> str:
    """A KVN number without its unit ("15.27989249 [rev/day]" -> "15.27989249"); text left as it is."""
    number = value[: value.rindex("[")].rstrip()
    try:
        float(number)
    except ValueError:
        return value
    return number


def _xml_messages(text: str, source: str) -> list[_Message]:
    """Flatten every <omm> element of an NDM/XML document (or a lone <omm>) into a message."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise InputError(f"{source}: not well-formed XML ({exc})") from None
    starts = [m.start() for m in _XML_OMM_RE.finditer(text)]
    breaks = [m.start() for m in re.finditer("\n", text)]
    omms = [e for e in root.iter() if e.tag.rpartition("}")[2] == "omm"]
    msgs = []
    for k, omm in enumerate(omms):
        line = bisect.bisect_right(breaks, starts[k]) + 1 if k < len(starts) else 0
        fields: dict[str, str] = {}
        errors: list[tuple[str, str]] = []
        if "version" in omm.attrib:
            fields["CCSDS_OMM_VERS"] = omm.attrib["version"].strip()
        for el in omm.iter():
            tag = el.tag
            if tag[0] == "{":
                tag = tag.rpartition("}")[2]
            if len(el) or tag == "COMMENT" or el is omm:
                continue
            if tag == "USER_DEFINED":
                tag = "USER_DEFINED_" + el.get("parameter", "").strip()
            if tag in fields:
                errors.append((tag, f"<{tag}> given twice in one <omm>"))
            fields[tag] = (el.text or "").strip()
        msgs.append(_Message(line, fields, errors))
    return msgs


def _json_messages(text: str, source: str) -> list[_Message]:
    """Read a JSON list of flat OMM objects (Space-Track or CelesTrak layout), or one such object.

    Line numbers are left 0 here; :func:`_json_lines` finds them when a problem needs them.
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}: not valid JSON at line {exc.lineno} ({exc.msg})") from None
    msgs = []
    keys: dict[str, str] = {}
    for obj in doc if isinstance(doc, list) else [doc]:
        msg = _Message(0, {}, [])
        msgs.append(msg)
        if not isinstance(obj, dict):
            msg.errors.append(("JSON", f"expected an object of OMM keys, got {type(obj).__name__}"))
            continue
        msg.fields = {
            keys.get(k) or _json_key(keys, k): v.strip() if type(v) is str else json.dumps(v)
            for k, v in obj.items()
            if v is not None and k != "COMMENT"
        }
    return msgs


def _json_key(keys: dict[str, str], key: str) -> str:
    """The OMM key of a JSON key: CCSDS keywords as they are, anything else as USER_DEFINED_X."""
    k = key.strip().upper()
    keys[key] = k if k in _CCSDS_KEYS or k.startswith("USER_DEFINED_") else "USER_DEFINED_" + k
    return keys[key]


def _json_lines(text: str) -> list[int]:
    """Line number where each top-level JSON object starts (a list of objects, or one object)."""
    dec = json.JSONDecoder()
    ws = re.compile(r"[\s,\[]*")
    i = ws.match(text, 0).end()  # type: ignore[union-attr]
    lines: list[int] = []
    line, last = 1, 0
    while i < len(text) and text[i] != "]":
        line, last = line + text.count("\n", last, i), i
        lines.append(line)
        i = ws.match(text, dec.raw_decode(text, i)[1]).end()  # type: ignore[union-attr]
    return lines


# ----------------------------------------------------------------------------- message -> element set


def _float(
    f: dict[str, str], key: str, lo: float, hi: float, what: str, default: float | None = None
) -> float:
    """A numeric value of key ``key``, checked lo <= value <= hi."""
    text = f.get(key, "")
    if not text and default is not None:
        return default
    try:
        v = float(text)
    except ValueError:
        raise _Bad(key, f"{text!r} is not a number; expected {what}") from None
    if not lo <= v <= hi:
        raise _Bad(key, f"{text} is out of range; expected {what}")
    return v


def _int(f: dict[str, str], key: str, hi: int, default: int) -> int:
    """A whole-number value of key ``key`` in 0..hi."""
    text = f.get(key, "")
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or int(text) > hi:
        raise _Bad(key, f"{text!r}; expected a whole number 0..{hi}")
    return int(text)


def _epoch(text: str) -> np.datetime64:
    """Parse an OMM EPOCH (YYYY-MM-DDThh:mm:ss[.f] or YYYY-DDDThh:mm:ss[.f], UTC) to microseconds."""
    m = _EPOCH_RE.match(text.strip())
    try:
        if m is None:
            raise ValueError("no match")
        year, mon, day, doy, hh, mm, ss, frac = m.groups()
        if doy:
            date = _dt.date(int(year), 1, 1) + _dt.timedelta(days=int(doy) - 1)
            if date.year != int(year) or int(doy) < 1:
                raise ValueError("day of year out of range")
        else:
            date = _dt.date(int(year), int(mon), int(day))
        if int(hh) > 23 or int(mm) > 59 or int(ss) > 59:
            raise ValueError("time out of range")
    except ValueError:
        raise _Bad("EPOCH", f"{text!r}; expected YYYY-MM-DDThh:mm:ss.ffffff (UTC)") from None
    frac = (frac or "").ljust(7, "0")
    us = int(frac[:6]) + (frac[6] >= "5")
    days = date.toordinal() - _dt.date(1970, 1, 1).toordinal()
    return np.datetime64(((days * 24 + int(hh)) * 60 + int(mm)) * 60_000_000 + int(ss) * 1_000_000 + us, "us")


def _designator(object_id: str) -> str:
    """TLE international designator ("58002B") from an OMM OBJECT_ID ("1958-002B")."""
    m = _OBJECT_ID_RE.match(object_id)
    if m:
        return m.group(1)[2:] + m.group(2) + m.group(3)
    return "" if object_id.upper() in ("", "UNKNOWN") else object_id


def _object_id(designator: str) -> str:
    """OMM OBJECT_ID ("1958-002B") from a TLE international designator ("58002B")."""
    m = _DESIGNATOR_RE.match(designator)
    if not m:
        return designator
    yy = int(m.group(1))
    return f"{yy + (1900 if yy >= 57 else 2000)}-{m.group(2)}{m.group(3)}"


def _to_elements(msg: _Message) -> ElementSet:
    """Turn one message into an element set, or raise _Bad naming the first key that fails."""
    if msg.errors:
        raise _Bad(*msg.errors[0])
    f = msg.fields
    vers = f.get("CCSDS_OMM_VERS")
    if vers is not None and vers.split(".")[0] not in ("1", "2", "3"):
        raise _Bad("CCSDS_OMM_VERS", f"{vers!r}; expected version 1.0, 2.0 or 3.0")
    theory = f.get("MEAN_ELEMENT_THEORY", "SGP4").upper()
    if theory != "SGP4":
        raise _Bad(
            "MEAN_ELEMENT_THEORY",
            f"{theory!r}; expected SGP4 (kizuna propagates SGP4 only; SGP and SGP4-XP are other theories)",
        )
    for key, want in (("CENTER_NAME", "EARTH"), ("REF_FRAME", "TEME"), ("TIME_SYSTEM", "UTC")):
        if f.get(key, want).upper() != want:
            raise _Bad(key, f"{f[key]!r}; expected {want} for SGP4 elements")
    for key in _MANDATORY:
        if not f.get(key):
            raise _Bad(key, f"missing; {key} is mandatory for SGP4 elements")
    cls = f.get("CLASSIFICATION_TYPE", "U")
    if len(cls) != 1 or not (cls.isascii() and cls.isalpha()):
        raise _Bad("CLASSIFICATION_TYPE", f"{cls!r}; expected one letter such as U")
    finite, big = "a finite number", 1e300
    es = ElementSet(
        norad_id=_int(f, "NORAD_CAT_ID", 339999, 0),
        name=f.get("OBJECT_NAME", ""),
        intl_designator=_designator(f.get("OBJECT_ID", "")),
        classification=cls,
        epoch=_epoch(f["EPOCH"]),
        mean_motion_rev_day=_float(f, "MEAN_MOTION", 1e-8, 20.0, "rev/day above 0 and below 20"),
        eccentricity=_float(f, "ECCENTRICITY", 0.0, 0.99999999, "0 <= e < 1"),
        inclination_deg=_float(f, "INCLINATION", 0.0, 180.0, "degrees in 0..180"),
        raan_deg=_float(f, "RA_OF_ASC_NODE", 0.0, 360.0, "degrees in 0..360"),
        arg_perigee_deg=_float(f, "ARG_OF_PERICENTER", 0.0, 360.0, "degrees in 0..360"),
        mean_anomaly_deg=_float(f, "MEAN_ANOMALY", 0.0, 360.0, "degrees in 0..360"),
        bstar_per_earth_radius=_float(f, "BSTAR", -big, big, finite),
        mean_motion_dot_rev_day2=_float(f, "MEAN_MOTION_DOT", -big, big, finite, 0.0),
        mean_motion_ddot_rev_day3=_float(f, "MEAN_MOTION_DDOT", -big, big, finite, 0.0),
        ephemeris_type=_int(f, "EPHEMERIS_TYPE", 9, 0),
        element_set_no=_int(f, "ELEMENT_SET_NO", 9999, 0),
        rev_at_epoch=_int(f, "REV_AT_EPOCH", 10**9, 0),
    )
    return es


def _with_lines(msgs: list[_Message], results: list[ElementSet | _Bad]) -> None:
    """Give each element set the TLE lines its message carries, if they hold exactly its elements."""
    index = [
        k for k, (m, es) in enumerate(zip(msgs, results, strict=True))
        if isinstance(es, ElementSet)
        and m.fields.get("USER_DEFINED_TLE_LINE1") and m.fields.get("USER_DEFINED_TLE_LINE2")
    ]  # fmt: skip
    l1s = [msgs[k].fields["USER_DEFINED_TLE_LINE1"].rstrip() for k in index]
    l2s = [msgs[k].fields["USER_DEFINED_TLE_LINE2"].rstrip() for k in index]
    names = [results[k].name for k in index]  # type: ignore[union-attr]
    for k, from_lines in zip(index, _parse_many(l1s, l2s, names), strict=True):
        if isinstance(from_lines, ElementSet):
            if {**from_lines.__dict__, "line1": None, "line2": None} == results[k].__dict__:
                results[k] = from_lines


# -------------------------------------------------------------------------------------------- read


def read_omm(
    path_or_text: PathLike, *, source: str | None = None
) -> tuple[list[ElementSet], list[ElementProblem]]:
    """Read OMMs (KVN, NDM/XML or JSON, found from the content) into SGP4 element sets (TEME, UTC).

    A file may hold many messages. Each message that cannot be used (a missing mandatory key such as
    EPOCH or MEAN_MOTION, a value out of range, a theory other than SGP4) is skipped and reported.
    A missing MEAN_ELEMENT_THEORY is taken as SGP4 (CelesTrak's JSON leaves it out), a missing
    EPHEMERIS_TYPE, ELEMENT_SET_NO, REV_AT_EPOCH or mean-motion derivative as 0, a missing
    CLASSIFICATION_TYPE as U. Epochs finer than a microsecond are rounded to the microsecond. Raises
    InputError when the file cannot be read or parsed, is not an OMM, or gives no usable element set.
    """
    source, text = _source_text(path_or_text, source)
    head = text.lstrip()[:1]
    if head == "<":
        msgs = _xml_messages(text, source)
    elif head in ("[", "{"):
        msgs = _json_messages(text, source)
    elif re.search(r"^\s*CCSDS_OMM_VERS\s*=", text, re.MULTILINE):
        msgs = _kvn_messages(text)
    else:
        raise InputError(
            f"{source}: not an OMM; expected KVN (CCSDS_OMM_VERS = ...), NDM/XML (<omm>) or a JSON list"
        )
    results: list[ElementSet | _Bad] = []
    for msg in msgs:
        try:
            results.append(_to_elements(msg))
        except _Bad as exc:
            results.append(exc)
    _with_lines(msgs, results)
    elements = [es for es in results if isinstance(es, ElementSet)]
    problems: list[ElementProblem] = []
    if len(elements) < len(results) and head in ("[", "{"):
        for msg, line in zip(msgs, _json_lines(text), strict=False):
            msg.line = line
    for msg, exc in zip(msgs, results, strict=True):
        if isinstance(exc, _Bad):
            nid = msg.fields.get("NORAD_CAT_ID", "")
            number = int(nid) if nid.isascii() and nid.isdigit() else None
            name = msg.fields.get("OBJECT_NAME", "")
            problems.append(ElementProblem(source, msg.line, number, name, exc.field, exc.message))
    if not elements:
        raise _nothing_usable(source, "OMM messages", problems)
    return elements, problems


# ------------------------------------------------------------------------------------------- write


def _num(v: float, decimals: int) -> str:
    """Fixed decimals as Space-Track prints them when that keeps the value exactly, else the shortest repr."""
    s = f"{v:.{decimals}f}"
    return s if float(s) == v else repr(v)


def omm_fields(es: ElementSet) -> dict[str, dict[str, str]]:
    """Return the OMM keys of one element set as text, grouped as NDM/XML groups them.

    Groups: metadata, meanElements, tleParameters, userDefinedParameters (Space-Track's SEMIMAJOR_AXIS
    km from GM 398600.4418 km^3/s^2, PERIOD min, APOAPSIS/PERIAPSIS km above 6378.135 km, and the
    original TLE lines when present).
    """
    n_rad_s = es.mean_motion_rev_day * 2.0 * math.pi / 86400.0
    a_km = (_GM_SPACETRACK_KM3_S2 / n_rad_s**2) ** (1.0 / 3.0)
    epoch = str(np.datetime64(es.epoch, "us"))
    user = {
        "SEMIMAJOR_AXIS": f"{a_km:.3f}",
        "PERIOD": f"{1440.0 / es.mean_motion_rev_day:.3f}",
        "APOAPSIS": f"{a_km * (1.0 + es.eccentricity) - EARTH_RADIUS_WGS72_KM:.3f}",
        "PERIAPSIS": f"{a_km * (1.0 - es.eccentricity) - EARTH_RADIUS_WGS72_KM:.3f}",
    }
    if es.line1 is not None and es.line2 is not None:
        user["TLE_LINE1"], user["TLE_LINE2"] = es.line1, es.line2
    return {
        "metadata": {
            "OBJECT_NAME": es.name,
            "OBJECT_ID": _object_id(es.intl_designator),
            "CENTER_NAME": "EARTH",
            "REF_FRAME": "TEME",
            "TIME_SYSTEM": "UTC",
            "MEAN_ELEMENT_THEORY": "SGP4",
        },
        "meanElements": {
            "EPOCH": epoch,
            "MEAN_MOTION": _num(es.mean_motion_rev_day, 8),
            "ECCENTRICITY": _num(es.eccentricity, 8),
            "INCLINATION": _num(es.inclination_deg, 4),
            "RA_OF_ASC_NODE": _num(es.raan_deg, 4),
            "ARG_OF_PERICENTER": _num(es.arg_perigee_deg, 4),
            "MEAN_ANOMALY": _num(es.mean_anomaly_deg, 4),
        },
        "tleParameters": {
            "EPHEMERIS_TYPE": str(es.ephemeris_type),
            "CLASSIFICATION_TYPE": es.classification,
            "NORAD_CAT_ID": str(es.norad_id),
            "ELEMENT_SET_NO": str(es.element_set_no),
            "REV_AT_EPOCH": str(es.rev_at_epoch),
            "BSTAR": _num(es.bstar_per_earth_radius, 14),
            "MEAN_MOTION_DOT": _num(es.mean_motion_dot_rev_day2, 8),
            "MEAN_MOTION_DDOT": _num(es.mean_motion_ddot_rev_day3, 13),
        },
        "userDefinedParameters": user,
    }


def _kvn(groups: dict[str, dict[str, str]], header: dict[str, str]) -> str:
    """One KVN message."""
    out = [f"{k:<27} = {v}" for k, v in header.items()]
    for name, group in groups.items():
        out.append("")
        prefix = "USER_DEFINED_" if name == "userDefinedParameters" else ""
        out.extend(f"{prefix + k:<27} = {v}" for k, v in group.items())
    return "\n".join(out) + "\n"


def _xml(groups: dict[str, dict[str, str]], header: dict[str, str]) -> str:
    """One <omm> element of an NDM/XML document."""

    def leaves(group: dict[str, str], pad: str) -> str:
        return "".join(f"{pad}<{k}>{escape(v)}</{k}>\n" for k, v in group.items())

    user = "".join(
        f"            <USER_DEFINED parameter={quoteattr(k)}>{escape(v)}</USER_DEFINED>\n"
        for k, v in groups["userDefinedParameters"].items()
    )
    return (
        f'  <omm id="CCSDS_OMM_VERS" version="{header["CCSDS_OMM_VERS"]}">\n    <header>\n'
        f"{leaves({k: v for k, v in header.items() if k != 'CCSDS_OMM_VERS'}, ' ' * 6)}    </header>\n"
        f"    <body>\n      <segment>\n        <metadata>\n{leaves(groups['metadata'], ' ' * 10)}"
        f"        </metadata>\n        <data>\n"
        f"          <meanElements>\n{leaves(groups['meanElements'], ' ' * 12)}          </meanElements>\n"
        f"          <tleParameters>\n{leaves(groups['tleParameters'], ' ' * 12)}          </tleParameters>\n"
        f"          <userDefinedParameters>\n{user}          </userDefinedParameters>\n"
        f"        </data>\n      </segment>\n    </body>\n  </omm>\n"
    )


def write_omm(
    path: PathLike, elements: Iterable[ElementSet], fmt: str = "kvn", *, originator: str = "kizuna"
) -> Path:
    """Write element sets as CCSDS OMM version 2.0 in KVN, NDM/XML or Space-Track JSON, atomically."""
    fmt = fmt.lower()
    if fmt not in ("kvn", "xml", "json"):
        raise InputError(f"OMM format {fmt!r}: expected kvn, xml or json")
    created = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    header = {"CCSDS_OMM_VERS": "2.0", "CREATION_DATE": created, "ORIGINATOR": originator}
    all_groups = [omm_fields(es) for es in elements]
    if fmt == "kvn":
        text = "\n".join(_kvn(g, header) for g in all_groups)
    elif fmt == "xml":
        text = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<ndm xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
            ' xsi:noNamespaceSchemaLocation="https://sanaregistry.org/r/ndmxml_unqualified/'
            'ndmxml-2.0.0-master-2.0.xsd">\n' + "".join(_xml(g, header) for g in all_groups) + "</ndm>\n"
        )
    else:
        rows = []
        for g in all_groups:
            row = dict(header)
            for group in g.values():
                row.update(group)
            if "TLE_LINE1" in row:
                row = {**row, "TLE_LINE0": f"0 {row['OBJECT_NAME']}"}
                row["TLE_LINE1"] = row.pop("TLE_LINE1")
                row["TLE_LINE2"] = row.pop("TLE_LINE2")
            rows.append(row)
        text = json.dumps(rows, indent=2) + "\n"
    return atomic_write(path, text)
