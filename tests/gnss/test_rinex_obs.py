"""Tests of the RINEX observation reader (kizuna.gnss.rinex_obs) against the staged files, a RINEX 2.11 file
written by RTKLIB's convbin, and georinex's numbers for the same files.

Peer numbers: georinex 1.16.2 (``georinex.load(path)``) was run once on SEPT078M.21O, ccj22100.21o and
KMS300DNK_R_20221591000_01H_30S_MO.crx; its counts (epochs, satellites, non-NaN values per variable) are
pasted below where used. georinex is never imported here.
"""

from __future__ import annotations

import gzip
import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from kizuna.errors import InputError
from kizuna.gnss import rinex_obs
from kizuna.gnss.rinex_obs import read_obs, read_obs_parquet, write_obs_parquet

SEPT = "gnss/japan_cssrlib_2021078/SEPT078M.21O"
SEPT_NAV = "gnss/japan_cssrlib_2021078/SEPT078M.21P"
CCJ2 = "gnss/japan_ccj2_2021210/ccj22100.21o"
KMS3 = "gnss/europe_kms3_2022159/KMS300DNK_R_20221591000_01H_30S_MO.crx"
SEPT_HEADER_LINES = 32  # END OF HEADER is line 32 of SEPT078M.21O
SEPT_EPOCH_LINES = 24  # each epoch: the '>' record and 23 satellite lines (read from the file)

# RINEX 2.11 written by RTKLIB 2.4.3 b34 from the staged CCJ2 file:
#   convbin -r rinex -v 2.11 -ts 2021/07/29 00:00:00 -te 2021/07/29 00:01:00 -o ccj2_211.obs ccj22100.21o
# Header and first epoch, copied here with trailing blanks removed (RINEX allows them to be absent).
RINEX211_CONVBIN = """\
     2.11           OBSERVATION DATA    M: Mixed            RINEX VERSION / TYPE
CONVBIN 2.4.3                           20261128 093202 UTC PGM / RUN BY / DATE
format: RINEX                                               COMMENT
log: ccj22100.21o                                           COMMENT
                                                            MARKER NAME
                                                            MARKER NUMBER
                                                            OBSERVER / AGENCY
                                                            REC # / TYPE / VERS
                                                            ANT # / TYPE
        0.0000        0.0000        0.0000                  APPROX POSITION XYZ
        0.0000        0.0000        0.0000                  ANTENNA: DELTA H/E/N
     1     1                                                WAVELENGTH FACT L1/2
     8    C1    L1    P2    L2    C2    C5    L5    P1      # / TYPES OF OBSERV
  2021    07    29    00    00   00.0000000     GPS         TIME OF FIRST OBS
  2021    07    29    00    01   00.0000000     GPS         TIME OF LAST OBS
                                                            END OF HEADER
 21 07 29 00 00 00.0000000  0 21E01E12E26E31E33G01G03G07G08G14G17G21
                                G22G27G30R05R06R09R10R20R21
  24700777.625   129803476.6241
  24700783.070    96931196.6051
  23954242.305   125880401.3441
  23954244.543    94001619.0931
  25684649.156   134973719.8101
  25684656.578   100792080.8141
  23998554.000   126113256.3741
  23998560.363    94175509.3721
  24044988.609   126357261.8731
  24044992.723    94357704.9941
  20117250.477   105716883.9001   20117258.438    82376818.9881   20117257.895
  20117258.070    78944446.9171
  21328198.688   112080444.0661   21328206.164    87335474.6001   21328206.469
  21328208.367    83696499.3431
  23072953.875   121249222.4691   23072959.055    94479896.2201   23072958.809

  22205726.375   116691828.2781   22205733.680    90928744.1551   22205734.434
  22205734.543    87140046.9501
  22747511.734   119539039.4651   22747517.102    93147278.8711   22747517.352
  22747522.359    89266158.9241
  24364036.250   128033858.9871   24364042.578    99766680.3891   24364042.035

  21750551.078   114299899.0451   21750555.422    89064862.0691

  20802406.836   109317402.6221   20802410.137    85182425.6761

  24561884.711   129073510.7901   24561893.887   100576787.4701   24561893.625
  24561895.762    96386085.5641
  23439481.211   123175334.5221   23439490.176    95980790.5821   23439489.703
  23439490.855    91981590.4221
  22150492.672   118407107.3591   22150497.203    92094432.4161   22150497.516
                                  22150492.020
  22453671.992   119817114.1621
                                  22453670.398
  23600974.242   126027872.9311   23600979.770    98021644.5901   23600980.410
                                  23600973.512
  20484727.219   109195123.5811
                                  20484726.301
  21905910.031   117140725.8991   21905915.695    91109465.9961   21905915.852
                                  21905909.148
  21069770.563   112748633.8101   21069774.652    87693418.0671   21069774.691
                                  21069770.035
"""


@pytest.fixture(scope="module")
def sept(shared_data):
    return read_obs(shared_data / SEPT, cache=False)


@pytest.fixture(scope="module")
def kms3(shared_data):
    return read_obs(shared_data / KMS3, cache=False)


@pytest.fixture(scope="module")
def ccj2(shared_data):
    return read_obs(shared_data / CCJ2, cache=False)


def _sept_lines(shared_data, n_epochs):
    """Return the header and first n_epochs epochs of SEPT078M.21O as text lines."""
    lines = (shared_data / SEPT).read_text().splitlines()
    return lines[: SEPT_HEADER_LINES + n_epochs * SEPT_EPOCH_LINES]


def _write(tmp_path, name, lines):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _same_sats(full, obs, n_epochs):
    """Return the first n_epochs of a full read, restricted to the satellites of a shorter read."""
    idx = [list(full.sats).index(s) for s in obs.sats]
    return full.values[:n_epochs, idx], full.ssi[:n_epochs, idx]


def _count(obs, code):
    return int(np.count_nonzero(~np.isnan(obs.values[:, :, obs.signals.index(code)])))


def _at(obs, epoch, sat, code):
    """Return (value, lli, ssi) of one observation."""
    i, j, k = epoch, list(obs.sats).index(sat), obs.signals.index(code)
    return obs.values[i, j, k], int(obs.lli[i, j, k]), int(obs.ssi[i, j, k])


def test_sept_header(sept):
    # Header of SEPT078M.21O, read by eye.
    assert sept.version == 3.04
    assert sept.time_system == "GPS"
    assert sept.marker == "SEPT"
    assert sept.receiver == "SEPT MOSAIC-X5"
    assert sept.antenna == "JAVRINGANT_DM   JVDM"
    np.testing.assert_array_equal(sept.approx_pos_ecef_m, [-3962108.4557, 3381308.8777, 3668678.1749])
    np.testing.assert_array_equal(sept.antenna_delta_hen_m, [0.0, 0.0, 0.0])
    assert sept.interval_s == 1.0
    assert sept.codes_by_system["E"] == (
        "C1C",
        "L1C",
        "S1C",
        "C5Q",
        "L5Q",
        "S5Q",
        "C7Q",
        "L7Q",
        "S7Q",
        "C8Q",
        "L8Q",
        "S8Q",
    )
    assert len(sept.codes_by_system["G"]) == 14 and sept.codes_by_system["J"][-1] == "S5Q"
    assert sept.problems == ()
    assert sept.rinex2_types == {}


def test_sept_counts_match_header_and_georinex(sept):
    # TIME OF FIRST OBS 12:00:00, TIME OF LAST OBS 12:14:59, INTERVAL 1 s -> 900 epochs (georinex: 900).
    assert sept.epochs.dtype == np.dtype("datetime64[ns]")
    assert sept.epochs.size == 900
    assert sept.epochs[0] == np.datetime64("2021-03-19T12:00:00")
    assert sept.epochs[-1] == np.datetime64("2021-03-19T12:14:59")
    assert np.all(np.diff(sept.epochs) == np.timedelta64(1, "s"))
    assert np.all(sept.epoch_flags == 0) and np.all(np.isnan(sept.clock_offset_s))
    # georinex: 26 satellites, 20 variables, 23 satellites at each of the first epochs, 21648 records.
    assert sept.sats.size == 26 and sept.sats[0] == "E01" and sept.sats[-1] == "J07"
    assert list(sept.sats) == sorted(sept.sats)
    assert len(sept.signals) == 20
    per_epoch = (~np.isnan(sept.values)).any(axis=2).sum(axis=1)
    assert per_epoch[0] == 23  # the first epoch record reads '0 23'
    assert per_epoch.sum() == 21648
    # georinex non-NaN counts per variable
    peer = {"C1C": 21648, "L1C": 21333, "S1C": 21648, "C1W": 9460, "C2W": 9460, "L2W": 9460, "C2L": 9900,
            "L2L": 9900, "C5Q": 17100, "L5Q": 17100, "C7Q": 8100, "L8Q": 8100, "S8Q": 8100}  # fmt: skip
    assert {k: _count(sept, k) for k in peer} == peer
    # georinex np.nansum of the C1C and L5Q variables
    assert np.nansum(sept.signal("C1C")) == pytest.approx(566696962993.927, rel=1e-13)
    assert np.nansum(sept.signal("L5Q")) == pytest.approx(1821958889013.0298, rel=1e-13)


def test_sept_values_read_by_eye(sept):
    # SEPT078M.21O line 34: 'E01  27530612.397 5 144674360.16505        35.844 ...'
    assert _at(sept, 0, "E01", "C1C") == (27530612.397, 0, 5)
    assert _at(sept, 0, "E01", "L1C") == (144674360.165, 0, 5)
    assert _at(sept, 0, "E01", "S1C") == (35.844, 0, 0)
    # line 43: 'G01  23733056.453 6 124718238.44206        36.125    23733056.096 2        14.375 ...'
    assert _at(sept, 0, "G01", "C1W") == (23733056.096, 0, 2)
    assert _at(sept, 0, "G01", "S1W") == (14.375, 0, 0)
    assert _at(sept, 0, "G01", "C2W") == (23733058.476, 0, 2)
    assert _at(sept, 0, "G01", "L2W") == (97183098.325, 0, 2)
    assert _at(sept, 0, "G01", "C2L") == (23733057.679, 0, 5)
    # line 49 (G17) ends after S2L '43.156' and line 50 (G19) after S2W '36.719': later fields are absent
    assert _at(sept, 0, "G17", "S2L")[0] == 43.156 and math.isnan(_at(sept, 0, "G17", "C5Q")[0])
    assert math.isnan(_at(sept, 0, "G19", "C2L")[0]) and _at(sept, 0, "G19", "C2L")[1:] == (-1, -1)
    # line 56: 'J07  37147194.408 6 ...'; the last line of the file: 'J07  37171022.305 6 ...'
    assert _at(sept, 0, "J07", "C1C")[0] == 37147194.408
    assert _at(sept, 899, "J07", "C1C")[0] == 37171022.305
    # GPS week 2149 began 2021-03-14; 2021-03-19 12:00 GPST is 5.5 days into it.
    assert sept.t_gpst()[0] == 2149 * 604800.0 + 5.5 * 86400.0


def test_ccj2_counts_and_glonass_slots(ccj2):
    # georinex: 120 epochs, 31 satellites, 32 variables, 25 satellites at the first epoch, 3142 records.
    assert ccj2.values.shape == (120, 31, 32)
    per_epoch = (~np.isnan(ccj2.values)).any(axis=2).sum(axis=1)
    assert per_epoch[0] == 25 and per_epoch.sum() == 3142
    peer = {
        "C1X": 1234,
        "L5X": 1904,
        "D1C": 2388,
        "L1C": 2380,
        "S2W": 1138,
        "C1P": 753,
        "L2P": 509,
        "D2C": 462,
    }
    assert {k: _count(ccj2, k) for k in peer} == peer
    assert ccj2.marker == "CCJ200JPN" and ccj2.receiver == "TRIMBLE NETR9"
    # GLONASS SLOT / FRQ # records: ' 23 R01  1 R02 -4 ...', '    R09 -2 R10 -7 ...', '... R24  2'
    assert len(ccj2.glonass_slots) == 23
    assert (ccj2.glonass_slots["R01"], ccj2.glonass_slots["R02"], ccj2.glonass_slots["R10"]) == (1, -4, -7)
    assert ccj2.glonass_slots["R24"] == 2 and "R11" not in ccj2.glonass_slots
    assert np.all(np.diff(ccj2.epochs) == np.timedelta64(30, "s"))


def test_kms3_hatanaka_rinex4(kms3):
    # KMS3 is a Hatanaka-compressed RINEX 4.00 file (its 'RINEX VERSION / TYPE' line reads 4.00).
    assert kms3.version == 4.0 and kms3.marker == "KMS3" and kms3.receiver == "SEPT POLARX5"
    # georinex: 19 epochs 10:00:00-10:09:00, 51 satellites, 37 variables, 49/49/47/48/48 satellites at the
    # first five epochs, 919 records
    assert kms3.values.shape == (19, 51, 37)
    assert kms3.epochs[0] == np.datetime64("2022-06-08T10:00") and kms3.epochs[-1] == np.datetime64(
        "2022-06-08T10:09"
    )
    per_epoch = (~np.isnan(kms3.values)).any(axis=2).sum(axis=1)
    assert list(per_epoch[:5]) == [49, 49, 47, 48, 48] and per_epoch.sum() == 919
    peer = {"C1P": 334, "C2I": 280, "C7D": 222, "L6C": 76, "C1W": 171, "C3Q": 38, "L5I": 2}
    assert {k: _count(kms3, k) for k in peer} == peer
    # georinex values at the first epoch
    assert _at(kms3, 0, "C05", "C2I")[0] == 39975899.571
    assert _at(kms3, 0, "G05", "L1C")[0] == 121304109.976
    assert _at(kms3, 0, "S23", "C1C")[0] == 39177114.01
    assert _at(kms3, 18, "C05", "C2I")[0] == 39973684.195
    assert kms3.glonass_slots == {"R03": 5, "R04": 6, "R05": 1, "R10": -7, "R11": 0, "R12": -1, "R13": -2,
                                  "R20": 2, "R21": 4, "R23": 3}  # fmt: skip


def test_compression_found_from_content(tmp_path, shared_data, kms3):
    # gzip of the Hatanaka file under a name that says nothing about either compression
    path = tmp_path / "kms3_observations.dat"
    path.write_bytes(gzip.compress((shared_data / KMS3).read_bytes()))
    obs = read_obs(path, cache=False)
    np.testing.assert_array_equal(obs.values, kms3.values)
    np.testing.assert_array_equal(obs.lli, kms3.lli)
    np.testing.assert_array_equal(obs.epochs, kms3.epochs)


def test_bzip2_and_zip_found_from_content(tmp_path, shared_data, sept):
    import bz2
    import zipfile

    plain = _write(tmp_path, "sept2.rnx", _sept_lines(shared_data, 2))
    (tmp_path / "a").write_bytes(bz2.compress(plain.read_bytes()))
    with zipfile.ZipFile(tmp_path / "b", "w") as z:
        z.write(plain, "sept2.rnx")
    for name in ("a", "b"):
        obs = read_obs(tmp_path / name, cache=False)
        np.testing.assert_array_equal(obs.values, _same_sats(sept, obs, 2)[0])


def test_cut_hatanaka_file_keeps_the_epochs_before(tmp_path, shared_data, kms3):
    raw = (shared_data / KMS3).read_bytes()
    path = tmp_path / "cut.crx"
    path.write_bytes(raw[: len(raw) // 2])
    obs = read_obs(path, cache=False)
    assert 0 < obs.epochs.size < kms3.epochs.size
    np.testing.assert_array_equal(obs.epochs, kms3.epochs[: obs.epochs.size])
    idx = [list(kms3.sats).index(s) for s in obs.sats]
    sig = [kms3.signals.index(c) for c in obs.signals]
    np.testing.assert_array_equal(obs.values, kms3.values[: obs.epochs.size][:, idx][:, :, sig])
    assert len(obs.problems) == 1 and str(path) in obs.problems[0] and "stopped early" in obs.problems[0]


def test_rinex211_from_convbin_matches_rinex3_source(tmp_path, ccj2):
    path = _write(tmp_path, "ccj2_211.obs", RINEX211_CONVBIN.splitlines())
    obs = read_obs(path, cache=False)
    assert obs.version == 2.11 and obs.time_system == "GPS" and obs.problems == ()
    assert obs.epochs.tolist() == ccj2.epochs[:1].tolist()
    # the epoch record lists 21 satellites over two lines
    assert (
        list(obs.sats)
        == "E01 E12 E26 E31 E33 G01 G03 G07 G08 G14 G17 G21 G22 G27 G30 R05 R06 R09 R10 R20 R21".split()
    )
    # RTKLIB rinex.c convcode (RINEX 2.11): GPS C1->C1C P1->C1W P2->C2W L2->L2W C2->C2X, GLONASS P2->C2P ...
    assert obs.rinex2_types["G"] == {"C1C": "C1", "L1C": "L1", "C2W": "P2", "L2W": "L2", "C2X": "C2",
                                     "C5X": "C5", "L5X": "L5", "C1W": "P1"}  # fmt: skip
    assert obs.rinex2_types["R"] == {
        "C1C": "C1",
        "L1C": "L1",
        "C2P": "P2",
        "L2P": "L2",
        "C2C": "C2",
        "C1P": "P1",
    }
    assert obs.codes_by_system["E"] == ("C1X", "L1X", "C5X", "L5X")
    # every value convbin wrote (and every blank) equals the RINEX 3 file's value of the mapped code
    n = 0
    for sys_, mapping in obs.rinex2_types.items():
        for code in mapping:
            for sat in [s for s in obs.sats if s[0] == sys_]:
                a = _at(obs, 0, sat, code)[0]
                b = _at(ccj2, 0, sat, code)[0] if code in ccj2.signals else math.nan
                assert a == b or (math.isnan(a) and math.isnan(b)), (sat, code)
                n += not math.isnan(a)
    # the snippet's 42 data lines hold 110 numbers ('grep -o "[0-9]*\.[0-9][0-9][0-9]" | wc -l')
    assert n == 110
    # snippet line 19: '  24700777.625   129803476.6241' (E01: C1 blank flags, L1 with LLI 1)
    assert _at(obs, 0, "E01", "C1X") == (24700777.625, 0, 0)
    assert _at(obs, 0, "E01", "L1X") == (129803476.624, 1, 0)


def test_rinex2_events_flags_and_bad_records(tmp_path):
    lines = RINEX211_CONVBIN.splitlines()
    epoch = lines[16:]
    second = [epoch[0].replace(" 00 00 00.0000000  0", " 00 00 30.0000000  1"), *epoch[1:]]
    event = ["                            4  2", f"{'A COMMENT INSIDE THE FILE':60}COMMENT",
             f"{'':60}MARKER NAME", " 21 07 29 00 00 15.0000000  5  0"]  # fmt: skip
    slip = [epoch[0].replace(" 00 00 00.0000000  0", " 00 00 20.0000000  6"), *epoch[1:]]
    unknown = [" 21 07 29 00 00 25.0000000  9  0"]
    path = _write(tmp_path, "events.obs", lines + event + slip + unknown + second)
    obs = read_obs(path, cache=False)
    assert obs.epochs.astype("datetime64[s]").tolist() == [
        np.datetime64("2021-07-29T00:00:00"), np.datetime64("2021-07-29T00:00:30")]  # fmt: skip
    assert obs.epoch_flags.tolist() == [0, 1]
    np.testing.assert_array_equal(obs.values[0], obs.values[1])
    assert len(obs.problems) == 1
    # the unknown flag sits on line 16 + 44 + 4 + 44 + 1 = 109
    assert str(path) in obs.problems[0] and "line 109" in obs.problems[0] and "flag 9" in obs.problems[0]


def test_rinex3_events_flags_and_clock(tmp_path, shared_data, sept):
    lines = _sept_lines(shared_data, 3)
    h, e1, e2, e3 = (lines[:32], lines[32:56], lines[56:80], lines[80:104])
    e1 = [e1[0] + " " * 6 + " 0.000123456789", *e1[1:]]  # receiver clock offset, F15.12 in columns 42-56
    e2 = [e2[0].replace("  0 23", "  1 23"), *e2[1:]]  # power failure before this epoch
    event4 = [">" + " " * 30 + "4  2", f"{'AN EVENT COMMENT':60}COMMENT", f"{'':60}COMMENT"]
    slip = [e1[0][:31] + "6  1", e1[1]]
    event5 = ["> 2021 03 19 12 00  1.5000000  5  0"]
    unknown = ["> 2021 03 19 12 00  1.7000000  8  0"]
    path = _write(tmp_path, "events.rnx", h + e1 + event4 + slip + e2 + event5 + unknown + e3)
    obs = read_obs(path, cache=False)
    assert obs.epochs.size == 3 and obs.epoch_flags.tolist() == [0, 1, 0]
    values, ssi = _same_sats(sept, obs, 3)
    np.testing.assert_array_equal(obs.values, values)
    np.testing.assert_array_equal(obs.ssi, ssi)
    assert obs.clock_offset_s[0] == 0.000123456789 and np.isnan(obs.clock_offset_s[1:]).all()
    # unknown flag on line 32 + 24 + 3 + 2 + 24 + 1 + 1 = 87
    assert len(obs.problems) == 1 and "line 87" in obs.problems[0] and "flag 8" in obs.problems[0]


def test_header_change_inside_file_is_reported(tmp_path, shared_data):
    lines = _sept_lines(shared_data, 2)
    event4 = [">" + " " * 30 + "4  1", "G    2 C1C L1C" + " " * 46 + "SYS / # / OBS TYPES"]
    obs = read_obs(_write(tmp_path, "change.rnx", lines[:56] + event4 + lines[56:]), cache=False)
    assert obs.epochs.size == 2
    assert (
        len(obs.problems) == 1 and "line 57" in obs.problems[0] and "SYS / # / OBS TYPES" in obs.problems[0]
    )


def test_rinex4_02_header(tmp_path, shared_data, sept):
    lines = _sept_lines(shared_data, 2)
    lines[0] = "     4.02" + lines[0][9:]
    obs = read_obs(_write(tmp_path, "v402.rnx", lines), cache=False)
    assert obs.version == 4.02 and obs.problems == ()
    np.testing.assert_array_equal(obs.values, _same_sats(sept, obs, 2)[0])


def test_truncated_last_epoch_is_dropped_and_reported(tmp_path, shared_data, sept):
    text = "\n".join(_sept_lines(shared_data, 3))
    cut = text[: text.index("\n", text.index("G09", text.index("> 2021 03 19 12 00  2.0"))) - 37]
    path = tmp_path / "cut.rnx"
    path.write_text(cut)
    obs = read_obs(path, cache=False)
    assert obs.epochs.size == 2
    np.testing.assert_array_equal(obs.values, _same_sats(sept, obs, 2)[0])
    # the third epoch record is line 32 + 2 * 24 + 1 = 81
    assert len(obs.problems) == 1
    assert (
        str(path) in obs.problems[0]
        and "line 81" in obs.problems[0]
        and "file ends inside" in obs.problems[0]
    )


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty"),
        (b"time,value\n1,2\n", "line 1: expected 'RINEX VERSION / TYPE'"),
        (f"{'     5.00           OBSERVATION DATA    M':60}RINEX VERSION / TYPE\n".encode(), "version 5.00"),
        (f"{'     3.04           OBSERVATION DATA    M':60}RINEX VERSION / TYPE\n".encode(), "END OF HEADER"),
    ],
)
def test_bad_input(tmp_path, content, match):
    path = tmp_path / "bad.obs"
    path.write_bytes(content)
    with pytest.raises(InputError, match=match) as err:
        read_obs(path, cache=False)
    assert str(path) in str(err.value)


def test_nav_file_passed_as_obs(shared_data):
    path = shared_data / SEPT_NAV
    with pytest.raises(InputError, match=r"RINEX file type 'N' \(navigation data\).*expected 'O'") as err:
        read_obs(path, cache=False)
    assert str(path) in str(err.value)


def test_missing_file_and_bad_systems(tmp_path, shared_data):
    with pytest.raises(InputError, match="not found"):
        read_obs(tmp_path / "none.obs", cache=False)
    with pytest.raises(InputError, match="systems"):
        read_obs(shared_data / KMS3, systems="GX", cache=False)


def test_select_and_systems(shared_data, kms3):
    ge = read_obs(shared_data / KMS3, systems="EG", cache=False)
    assert set(s[0] for s in ge.sats) == {"E", "G"} and set(ge.codes_by_system) == {"E", "G"}
    assert set(ge.signals) == set(kms3.codes_by_system["E"]) | set(kms3.codes_by_system["G"])
    sel = kms3.select(systems="GE")
    assert list(sel.sats) == list(ge.sats) and sel.signals == ge.signals
    np.testing.assert_array_equal(sel.values, ge.values)
    c1c = kms3.select(signals=["C1C"])
    assert c1c.signals == ("C1C",) and _count(c1c, "C1C") == 620  # georinex C1C count
    with pytest.raises(InputError, match="C9Z"):
        kms3.select(signals="C9Z")


def test_dataframe_and_xarray(kms3):
    df = kms3.to_dataframe()
    assert list(df.columns) == ["time", "sv", "signal", "value", "lli", "ssi"]
    assert len(df) == int(np.count_nonzero(~np.isnan(kms3.values)))
    row = df[(df.sv == "C05") & (df.signal == "C2I")].iloc[0]
    assert row.value == 39975899.571 and row.time == np.datetime64("2022-06-08T10:00")
    ds = kms3.to_xarray()
    assert list(ds.data_vars) == list(kms3.signals) and ds["C2I"].dims == ("time", "sv")
    assert float(ds["C2I"].sel(sv="C05").values[0]) == 39975899.571
    assert ds.attrs["marker"] == "KMS3"


def _assert_same(a, b):
    for name in ("version", "time_system", "marker", "receiver", "antenna", "signals", "codes_by_system",
                 "glonass_slots", "problems", "rinex2_types"):  # fmt: skip
        assert getattr(a, name) == getattr(b, name), name
    assert a.interval_s == b.interval_s or (math.isnan(a.interval_s) and math.isnan(b.interval_s))
    arrays = ("approx_pos_ecef_m", "antenna_delta_hen_m", "epochs", "epoch_flags", "clock_offset_s", "sats")
    for name in (*arrays, "values", "lli", "ssi"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)


def test_parquet_round_trip(tmp_path, kms3):
    path = write_obs_parquet(kms3, tmp_path / "kms3.parquet")
    back = read_obs_parquet(path)
    _assert_same(back, kms3)
    assert back.path == kms3.path
    meta = pq.read_schema(path).metadata
    assert b"kizuna.rinex_obs" in meta and b"KMS3" in meta[b"kizuna.rinex_obs"]
    assert pq.read_table(path).num_rows == int(np.count_nonzero(~np.isnan(kms3.values)))
    with pytest.raises(InputError, match="Parquet"):
        read_obs_parquet(_write(tmp_path, "x.parquet", ["not parquet"]))


def test_parquet_round_trip_rinex2(tmp_path):
    obs = read_obs(_write(tmp_path, "r2.obs", RINEX211_CONVBIN.splitlines()), cache=False)
    _assert_same(read_obs_parquet(write_obs_parquet(obs, tmp_path / "r2.parquet")), obs)


def test_cache(tmp_path, shared_data, monkeypatch):
    plain = _write(tmp_path, "sept2.rnx", _sept_lines(shared_data, 2))
    src = tmp_path / "sept2.rnx.gz"
    src.write_bytes(gzip.compress(plain.read_bytes()))
    folder = tmp_path / "cache"
    # plain files are not cached (they parse as fast as a cache entry reads)
    read_obs(plain, cache=folder)
    assert not folder.exists()
    first = read_obs(src, cache=folder)
    entries = list(folder.glob("*.parquet"))
    assert len(entries) == 1
    # a cache hit does not parse the file
    real_parse = rinex_obs._parse
    monkeypatch.setattr(rinex_obs, "_parse", lambda *a, **k: pytest.fail("parsed despite a cache entry"))
    _assert_same(read_obs(src, cache=folder), first)
    # a corrupt entry is ignored and rewritten
    monkeypatch.setattr(rinex_obs, "_parse", real_parse)
    entries[0].write_bytes(b"PAR1 damaged")
    _assert_same(read_obs(src, cache=folder), first)
    assert read_obs_parquet(entries[0]).epochs.size == 2
    # cache=False writes nothing; KIZUNA_CACHE_DIR chooses the default folder
    monkeypatch.setenv("KIZUNA_CACHE_DIR", str(tmp_path / "env"))
    read_obs(src, cache=False)
    assert not (tmp_path / "env").exists()
    read_obs(src)
    assert len(list((tmp_path / "env" / "rinex").glob("*.parquet"))) == 1
