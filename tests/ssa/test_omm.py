"""Tests of kizuna.ssa.omm: CCSDS OMM (502.0-B-2) in KVN, NDM/XML and Space-Track JSON.

The examples are the Space-Track-generated OMM of NUSAT-8 in three encodings staged in
../shared/data/ssa/ccsds (omm1_st.kvn/.xml/.json); expected values are copied from those files as
printed. The catalogue round trips use the Space-Track catalogue staged in ../shared/data/ssa/catalog.
"""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
from sgp4.api import WGS72, Satrec

from kizuna.errors import InputError
from kizuna.ssa.elements import read_tle, write_tle
from kizuna.ssa.omm import read_omm, write_omm

CCSDS = "ssa/ccsds"
CATALOG = "ssa/catalog/spacetrack_full_catalog_3le_2022-07-15.txt"
ENCODINGS = ("kvn", "xml", "json")

# The element keys of omm1_st.kvn and their values exactly as printed there.
PRINTED = {
    "EPOCH": "2020-12-29T03:57:59.406624",
    "MEAN_MOTION": "15.27989249",
    "ECCENTRICITY": "0.00133560",
    "INCLINATION": "97.2970",
    "RA_OF_ASC_NODE": "66.4161",
    "ARG_OF_PERICENTER": "110.6345",
    "MEAN_ANOMALY": "334.7107",
    "EPHEMERIS_TYPE": "0",
    "CLASSIFICATION_TYPE": "U",
    "NORAD_CAT_ID": "45018",
    "ELEMENT_SET_NO": "999",
    "REV_AT_EPOCH": "5327",
    "BSTAR": "0.00008455300000",
    "MEAN_MOTION_DOT": "0.00002241",
    "MEAN_MOTION_DDOT": "0.0000000000000",
}
# Space-Track's derived values printed in the same file (USER_DEFINED_...).
PRINTED_DERIVED = {
    "SEMIMAJOR_AXIS": "6859.961",
    "PERIOD": "94.242",
    "APOAPSIS": "490.988",
    "PERIAPSIS": "472.664",
}


@pytest.fixture(scope="module")
def catalog(shared_data):
    path = shared_data / CATALOG
    return path, read_tle(path)[0]


@pytest.fixture(scope="module")
def examples(shared_data):
    return {ext: shared_data / CCSDS / f"omm1_st.{ext}" for ext in ENCODINGS}


def kvn_values(text: str) -> dict[str, str]:
    """KEY = value lines of a KVN text, as plain strings."""
    out = {}
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        if eq:
            out[key.strip().removeprefix("USER_DEFINED_")] = value.strip()
    return out


def test_examples_give_the_printed_elements(examples):
    got = {ext: read_omm(path) for ext, path in examples.items()}
    for ext, (elements, problems) in got.items():
        assert problems == [], ext
        (es,) = elements
        assert (es.norad_id, es.name, es.intl_designator, es.classification) == (
            45018,
            "NUSAT-8 (MARIE)",
            "20003C",
            "U",
        )
        assert es.epoch == np.datetime64(PRINTED["EPOCH"])
        assert (es.mean_motion_rev_day, es.eccentricity, es.inclination_deg) == (
            15.27989249,
            0.0013356,
            97.297,
        )
        assert (es.raan_deg, es.arg_perigee_deg, es.mean_anomaly_deg) == (66.4161, 110.6345, 334.7107)
        assert es.bstar_per_earth_radius == 0.000084553
        assert (es.mean_motion_dot_rev_day2, es.mean_motion_ddot_rev_day3) == (0.00002241, 0.0)
        assert (es.ephemeris_type, es.element_set_no, es.rev_at_epoch) == (0, 999, 5327)
        assert es.period_min == pytest.approx(94.242, abs=5e-4)  # PERIOD as printed, 3 decimals
    # KVN and XML carry no TLE lines; Space-Track's JSON does (TLE_LINE1/TLE_LINE2), and they agree.
    printed = json.loads(examples["json"].read_text())[0]
    (from_json,) = got["json"][0]
    assert (from_json.line1, from_json.line2) == (printed["TLE_LINE1"], printed["TLE_LINE2"])
    assert got["kvn"][0] == got["xml"][0] == [dataclasses.replace(from_json, line1=None, line2=None)]


@pytest.mark.parametrize("source_ext", ENCODINGS)
@pytest.mark.parametrize("target_ext", ENCODINGS)
def test_examples_round_trip(examples, tmp_path, source_ext, target_ext):
    elements, _ = read_omm(examples[source_ext])
    out = write_omm(tmp_path / f"out.{target_ext}", elements, target_ext)
    again, problems = read_omm(out)
    assert problems == [] and again == elements
    if target_ext == "kvn":
        # The numeric text of every element, and Space-Track's derived values, come out as printed.
        written = kvn_values(out.read_text())
        assert {k: written[k] for k in PRINTED} == PRINTED
        assert {k: written[k] for k in PRINTED_DERIVED} == PRINTED_DERIVED


def test_same_state_as_the_tle_lines_space_track_carries(examples):
    (es,), _ = read_omm(examples["kvn"])
    printed = json.loads(examples["json"].read_text())[0]
    reference = Satrec.twoline2rv(printed["TLE_LINE1"], printed["TLE_LINE2"], WGS72)
    ours = es.satrec()  # no TLE lines in the KVN: built from the OMM values with sgp4init
    for days in (0.0, 1.0):
        jd, fr = reference.jdsatepoch, reference.jdsatepochF + days
        e1, r1, v1 = reference.sgp4(jd, fr)
        e2, r2, v2 = ours.sgp4(jd, fr)
        assert e1 == e2 == 0
        assert np.max(np.abs(np.subtract(r1, r2))) < 1e-6  # km: under 1 mm
        assert np.max(np.abs(np.subtract(v1, v2))) < 1e-9  # km/s


def test_catalogue_tle_omm_tle_exact(catalog, tmp_path):
    path, elements = catalog
    # Whole catalogue through KVN, then back to a 3LE file: the same bytes as the original file.
    back, problems = read_omm(write_omm(tmp_path / "cat.kvn", elements, "kvn"))
    assert problems == [] and back == elements
    assert write_tle(tmp_path / "cat.tle", back).read_bytes() == path.read_bytes()
    # XML and JSON on every 20th object.
    part = elements[::20]
    for ext in ("xml", "json"):
        back, problems = read_omm(write_omm(tmp_path / f"part.{ext}", part, ext))
        assert problems == [] and back == part, ext
        assert [e.to_tle_lines() for e in back] == [(e.line1, e.line2) for e in part]


def test_catalogue_values_survive_without_tle_lines(catalog, tmp_path):
    # Without the original lines the OMM's numbers alone must give back the elements exactly
    # (every 5th object of the catalogue).
    elements = catalog[1]
    bare = [dataclasses.replace(e, line1=None, line2=None) for e in elements[::5]]
    back, problems = read_omm(write_omm(tmp_path / "bare.json", bare, "json"))
    assert problems == [] and back == bare


def _drop_kvn_key(text: str, key: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith(key + " "))


@pytest.mark.parametrize("key", ["EPOCH", "MEAN_MOTION", "ECCENTRICITY", "NORAD_CAT_ID", "BSTAR"])
def test_missing_mandatory_key_reported(examples, key):
    text = examples["kvn"].read_text()
    # Two messages one after another; the second lacks the key.
    both = text + "\n" + _drop_kvn_key(text, key) + "\n"
    elements, problems = read_omm(both, source="two.kvn")
    assert len(elements) == 1
    (p,) = problems
    assert p.field == key and "missing" in p.message and p.source == "two.kvn"
    # The second message starts at its CCSDS_OMM_VERS line.
    assert p.line == both.splitlines().index("CCSDS_OMM_VERS                     =2.0", 2) + 1
    assert p.norad_id == (None if key == "NORAD_CAT_ID" else 45018)


def test_missing_key_in_xml_and_json(examples):
    xml = examples["xml"].read_text()
    second = xml[xml.index("<omm ") : xml.index("</omm>") + 6].replace(
        "<ECCENTRICITY>0.00133560</ECCENTRICITY>", ""
    )
    doc = xml.replace("</ndm>", second + "\n</ndm>")
    elements, problems = read_omm(doc)
    second_line = doc[: doc.rindex("<omm ")].count("\n") + 1
    assert len(elements) == 1 and [(p.field, p.line) for p in problems] == [("ECCENTRICITY", second_line)]
    objs = json.loads(examples["json"].read_text())
    broken = dict(objs[0])
    del broken["MEAN_ANOMALY"]
    elements, problems = read_omm(json.dumps([objs[0], broken], indent=2))
    assert len(elements) == 1 and [p.field for p in problems] == ["MEAN_ANOMALY"]
    assert problems[0].line == json.dumps([objs[0], broken], indent=2).splitlines().index("  {", 2) + 1


def test_other_theories_rejected(examples):
    text = examples["kvn"].read_text()
    for theory in ("SGP4-XP", "SGP", "DSST"):
        changed = re.sub(r"(MEAN_ELEMENT_THEORY\s*=)SGP4", rf"\g<1>{theory}", text)
        with pytest.raises(InputError, match=r"MEAN_ELEMENT_THEORY: .*expected SGP4"):
            read_omm(changed)
        elements, problems = read_omm(text + "\n" + changed)
        assert len(elements) == 1 and problems[0].field == "MEAN_ELEMENT_THEORY"


def test_tle_lines_that_disagree_are_dropped(examples):
    obj = json.loads(examples["json"].read_text())[0]
    obj["MEAN_MOTION"] = "15.27989250"  # one unit in the last digit away from TLE_LINE2
    (es,), problems = read_omm(json.dumps([obj]))
    assert problems == [] and es.line1 is None and es.mean_motion_rev_day == 15.2798925


def test_celestrak_style_json_with_numbers(examples):
    # CelesTrak's JSON leaves out the header and metadata keys and writes numbers as numbers.
    obj = json.loads(examples["json"].read_text())[0]
    keep = ("OBJECT_NAME", "OBJECT_ID", "EPOCH", *list(PRINTED)[1:])
    slim = {k: obj[k] for k in keep}
    for k in ("MEAN_MOTION", "ECCENTRICITY", "INCLINATION", "BSTAR", "NORAD_CAT_ID", "REV_AT_EPOCH"):
        slim[k] = json.loads(slim[k])
    (es,), _ = read_omm(json.dumps(slim))
    (ref,), _ = read_omm(examples["kvn"])
    assert es == ref


def test_nothing_usable_and_not_an_omm(shared_data, examples, tmp_path):
    bad = tmp_path / "bad.kvn"
    bad.write_text(_drop_kvn_key(examples["kvn"].read_text(), "EPOCH"))
    with pytest.raises(InputError, match=r"bad\.kvn.*1 record\(s\) rejected.*EPOCH"):
        read_omm(bad)
    with pytest.raises(InputError, match="not an OMM"):
        read_omm(shared_data / CCSDS / "cdm_example_section4.kvn")
    with pytest.raises(InputError, match="no OMM messages"):
        read_omm(shared_data / CCSDS / "cdm_example_section4.xml")
    with pytest.raises(InputError, match="not found"):
        read_omm(tmp_path / "missing.xml")
    with pytest.raises(InputError, match="expected kvn, xml or json"):
        write_omm(tmp_path / "x.txt", [], "csv")
