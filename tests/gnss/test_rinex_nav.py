"""Tests of the RINEX navigation reader against numbers pasted from the staged files themselves.

Record counts come from ../shared/data/gnss/SOURCES.md (which took them from the georust/rinex test that
staged the files) and from counting the '> EPH' / 'SNN YYYY' lines of the files with grep/awk. Field
values are copied by eye from the file lines named in each comment. GPS calendar facts: GPS week 2253
began on Sunday 2023-03-12 00:00:00 GPST = 1362614400 s after the GPS epoch, GPS week 2149 on
2021-03-14; BDT week 897 is GPS week 2253 (BDT week 0 = GPS week 1356) and BDT = GPST - 14 s; GPST - UTC
was 18 s after 2017-01-01.
"""

from __future__ import annotations

import bz2
import gzip

import hatanaka
import numpy as np
import pandas as pd
import pytest

from kizuna.errors import InputError
from kizuna.gnss.rinex_nav import merge_nav, read_nav

WEEK = 604800.0
T_2253 = 2253 * WEEK  # 2023-03-12T00:00:00 GPST
T_2149 = 2149 * WEEK  # 2021-03-14T00:00:00 GPST
RTOL = 1e-15  # values must equal the decimal text of the file (to the last bit, give or take one ulp)


@pytest.fixture(scope="module")
def gnss(shared_data):
    return shared_data / "gnss"


@pytest.fixture(scope="module")
def dlr4(gnss):
    return read_nav(gnss / "nav_multignss_navic" / "BRD400DLR_S_20230710000_01D_MN.rnx.gz")


@pytest.fixture(scope="module")
def sept(gnss):
    return read_nav(gnss / "japan_cssrlib_2021078" / "SEPT078M.21P")


def _row(nav, sv, msg, toc_gpst):
    rows = nav.eph[(nav.eph.sv == sv) & (nav.eph.msg == msg) & (nav.eph.toc_gpst == toc_gpst)]
    assert len(rows) >= 1, (sv, msg, toc_gpst)
    return rows.iloc[0]


def _check(row, expected):
    for key, value in expected.items():
        if isinstance(value, float) and np.isnan(value):
            assert np.isnan(row[key]), key
        else:
            assert row[key] == pytest.approx(value, rel=RTOL, abs=0.0), key


def test_rinex4_dlr_counts_per_system_and_message(dlr4):
    # 20,110 EPH records (SOURCES.md); per type from `grep '^>' | sort | uniq -c` of the file.
    counts = dlr4.eph.groupby(["system", "msg"]).size().to_dict()
    assert counts == {
        ("C", "CNV1"): 634, ("C", "CNV2"): 926, ("C", "D1"): 893, ("C", "D2"): 168,
        ("E", "FNAV"): 2897, ("E", "INAV"): 2943, ("G", "CNAV"): 334, ("G", "LNAV"): 428,
        ("I", "LNAV"): 283, ("J", "CNAV"): 98, ("J", "CNV2"): 98, ("J", "LNAV"): 96,
    }  # fmt: skip
    assert len(dlr4.glo) == 1240 and len(dlr4.sbas) == 9072
    assert len(dlr4.eph) + len(dlr4.glo) + len(dlr4.sbas) == 20110
    assert dlr4.problems == ()
    assert dlr4.version == 4.0 and dlr4.leap_seconds == 18
    # NavIC: 283 LNAV records of I02 I03 I06 I09 (SOURCES.md), every one with an orbit.
    navic = dlr4.eph[dlr4.eph.system == "I"]
    assert sorted(navic.sv.unique()) == ["I02", "I03", "I06", "I09"]
    assert np.isfinite(navic[["sqrt_a", "toe_gpst", "m0", "omega0"]].to_numpy()).all()
    assert (dlr4.eph.groupby("sv").toe_gpst.apply(lambda t: t.is_monotonic_increasing)).all()


def test_rinex4_gps_lnav_and_cnav_records(dlr4):
    # BRD400DLR line 1034-1042: '> EPH G01 LNAV', epoch 2023 03 12 00 00 00.
    _check(_row(dlr4, "G01", "LNAV", T_2253), {
        "af0": 2.037500962615e-04, "af1": -3.865352482535e-12, "iode": 59.0, "crs": -6.681250000000e+01,
        "m0": 2.337063183399e+00, "sqrt_a": 5.153656053543e+03, "toe_sow": 0.0,
        "omega_dot": -7.465310960167e-09, "idot": -2.000083311498e-11, "week": 2253.0, "toe_gpst": T_2253,
        "accuracy_m": 2.0,
        "tgd_s": 4.656612873077e-09, "iodc": 59.0, "ttm_s": -7182.0, "fit_h": 4.0, "adot": float("nan"),
    })  # fmt: skip
    # Line 1151-1160: '> EPH G01 CNAV', epoch 2023 03 12 01 30 00 (toe = toc = 5400 s of week 2253).
    _check(_row(dlr4, "G01", "CNAV", T_2253 + 5400), {
        "af0": 2.037292579189e-04, "adot": 1.004886627197e-02, "crs": -7.072656250000e+01,
        "sqrt_a": 5.153655571344e+03, "delta_n_dot": -1.056170179553e-13, "health": 1.0,
        "tgd_s": 4.656612873077e-09, "ttm_s": 6.0, "toe_sow": 5400.0, "week": 2253.0,
        "toe_gpst": T_2253 + 5400, "iode": float("nan"),
        "accuracy_m": 2.0 ** (1 - 1 / 2),  # URA_ED index -1 on line 1158; IS-GPS-200 30.3.3.1.1.4: 2^(1+N/2)
    })  # fmt: skip


def test_rinex4_qzss_cnv2_galileo_beidou_navic(dlr4):
    # Line 140751-140761: '> EPH J02 CNV2', epoch 2023 03 12 00 00 00, URA_ED index -9.
    _check(_row(dlr4, "J02", "CNV2", T_2253), {
        "af0": -1.144682755694e-06, "adot": -3.147602081299e-03, "crs": 9.170351562500e+02,
        "sqrt_a": 6.493639722506e+03, "delta_n_dot": 7.520716448831e-15, "ttm_s": -3582.0,
        "toe_gpst": T_2253, "accuracy_m": 2.0 ** (1 - 9 / 2),  # IS-GPS-200 30.3.3.1.1.4: 2^(1+N/2), N <= 6
    })  # fmt: skip
    # Lines 61026 and 61998: E01 INAV and FNAV at 2023 03 12 00 00 00.
    _check(_row(dlr4, "E01", "INAV", T_2253), {
        "af0": -1.709302887321e-05, "iode": 0.0, "data_sources": 516.0, "week": 2253.0, "accuracy_m": 3.12,
        "tgd_s": -4.656612873077e-10, "tgd2_s": -6.984919309616e-10, "ttm_s": 664.0, "toe_gpst": T_2253,
    })  # fmt: skip
    _check(
        _row(dlr4, "E01", "FNAV", T_2253), {"af0": -1.709233038127e-05, "data_sources": 258.0, "tgd2_s": 0.0}
    )
    # Line 114666: C06 D1 at 2023 03 12 00 00 00 BDT, toe 0 of BDT week 897: (897 + 1356) weeks + 14 s.
    _check(_row(dlr4, "C06", "D1", T_2253 + 14), {
        "af0": -1.953275641426e-04, "iode": 1.0, "sqrt_a": 6.493380590439e+03, "week": 897.0, "toe_sow": 0.0,
        "toe_gpst": (897 + 1356) * WEEK + 14, "tgd_s": 8.2e-09, "tgd2_s": -1.4e-09, "iodc": 0.0,
    })  # fmt: skip
    # Line 113586: C01 (GEO) D2; line 117069: C19 CNV1 (TGD_B1Cp, TGD_B2ap on line 7, no week in the record).
    _check(_row(dlr4, "C01", "D2", T_2253 + 14), {"af0": 9.050882654265e-04, "i0": 9.005722671926e-02})
    _check(_row(dlr4, "C19", "CNV1", T_2253 + 14), {
        "adot": -2.287387847900e-03, "sqrt_a": 5.282620728736e+03, "delta_n_dot": 3.232818114092e-14,
        "tgd_s": 9.487848728895e-09, "tgd2_s": -5.820766091347e-09, "week": 897.0, "toe_gpst": T_2253 + 14,
    })  # fmt: skip
    # Line 143217-143225: '> EPH I02 LNAV', 2023 03 12 00 00 00.
    _check(_row(dlr4, "I02", "LNAV", T_2253), {
        "af0": 1.104795373976e-04, "af1": -2.819433575496e-11, "crs": 8.749375000000e+02,
        "sqrt_a": 6.493359437943e+03, "i0": 5.066347814522e-01, "omega": 3.053916198771e+00,
        "idot": 1.453631978178e-10, "week": 2253.0, "accuracy_m": 2.0, "health": 0.0,
        "tgd_s": -1.862645149231e-09, "ttm_s": 12.0, "toe_gpst": T_2253,
    })  # fmt: skip


def test_rinex4_glonass_km_to_m_and_utc_and_sbas(dlr4):
    # Line 53586-53591: R01 at 2023 03 12 00 15 00 UTC -> +18 s GPST; positions km -> m.
    r01 = dlr4.glo[dlr4.glo.sv == "R01"].iloc[0]
    assert r01.toc_gpst == T_2253 + 900 + 18
    _check(r01, {
        "clk_bias_s": 2.458319067955e-05, "t_frame_s": 30.0, "x_m": 1.422012255859e+07,
        "vx_m_s": -4.938831329346e+02, "ay_m_s2": 9.313225746155e-07, "y_m": -2.043351660156e+07,
        "z_m": 5.539755371094e+06, "vz_m_s": 3.461606979370e+03, "freq_num": 1.0, "status_flags": 179.0,
        "delay_l1l2_s": 8.381903171539e-09, "urai": 2.0, "health_flags": 3.0,
    })  # fmt: skip
    # Line 8226-8230: S22 at 2023 03 12 00 00 16 GPST.
    s22 = dlr4.sbas[dlr4.sbas.sv == "S22"].iloc[0]
    assert s22.toc_gpst == T_2253 + 16
    _check(s22, {"x_m": -3.389392800000e07, "y_m": 2.508018800000e07, "accuracy_m": 32767.0, "ttm_s": 25.0})


def test_rinex4_ion_sto_eop_records(dlr4):
    # ION G12 LNAV (line 516-519) is the first of the GPS records (tied at 00:08:54 with G21, file order).
    np.testing.assert_array_equal(dlr4.iono["GPS"], [
        3.259629011154e-08, 7.450580596924e-09, -1.788139343262e-07, 0.0, 1.351680000000e+05, 0.0,
        -2.621440000000e+05, 1.310720000000e+05])  # fmt: skip
    # ION I03 LNAV (line 1026-1029), ION E02 IFNV (536-538), ION C05 D1D2 at 00:00:00 BDT (542-545).
    np.testing.assert_array_equal(dlr4.iono["IRN"], [
        6.239861249924e-08, 6.258487701416e-07, 1.609325408936e-06, -7.510185241699e-06, 2.314240000000e+05,
        -3.604480000000e+05, -6.488064000000e+06, 3.801088000000e+06])  # fmt: skip
    np.testing.assert_array_equal(
        dlr4.iono["GAL"], [1.607500000000e02, 3.710937500000e-01, 9.063720703125e-03]
    )
    assert dlr4.iono["BDS"][4] == 8.396800000000e04
    # Every ION record is kept: per type from the file's '> ION' lines.
    ion_counts = dlr4.iono_records.groupby("key").size().to_dict()
    assert ion_counts == {"BDS": 15, "BDS_CNVX": 12, "GAL": 2, "GPS": 3, "GPS_CNVX": 2, "IRN": 2, "QZS": 47,
                          "QZS_CNVX": 47}  # fmt: skip
    bdgim = dlr4.iono_records[(dlr4.iono_records.key == "BDS_CNVX") & (dlr4.iono_records.sv == "C30")].iloc[0]
    # Line 602-605: ION C30 CNVX, 2023 03 12 00 00 00 BDT, 9 BDGIM coefficients.
    assert bdgim.t_gpst == T_2253 + 14
    np.testing.assert_array_equal(bdgim[[f"c{i}" for i in range(9)]].to_numpy(float),
                                  [35.5, 2.0, 12.0, 13.375, -17.25, 1.125, 1.0, 3.0, 0.375])  # fmt: skip
    # STO I03 LNAV lines 373-375 (IRGP) and 379-381 (IRUT, UTC(NPLI)); epoch 00:04:48 = 288 s of week 2253.
    assert dlr4.time_offsets["IRGP"] == (3.201421350241e-09, 9.769962616701e-15, 288.0, 2253)
    assert dlr4.time_offsets["IRUT"] == (1.629814505577e-09, 1.776356839400e-15, 288.0, 2253)  # UTCIRN first
    sto = dlr4.sto_records
    npli = sto[(sto.key == "IRUT") & (sto.utc_id == "UTC(NPLI)")].iloc[0]
    _check(
        npli, {"ttm_s": 384.0, "a0_s": -2.735760062933e-09, "a1_s_per_s": 4.884981308351e-15, "week": 2253.0}
    )
    # STO C19 D1D2 BDUT (line 226-228): reference epoch 2023 03 12 00 00 14 BDT = 14 s of BDT week 897.
    assert dlr4.time_offsets["BDUT"] == (1.862645149231e-09, 0.0, 14.0, 897)
    # EOP I03 LNAV (line 512-515): xp -3.980445861816e-02", UT1-UTC -1.894086599350e-02 s, ttm 36 s.
    eop = dlr4.eop[dlr4.eop.sv == "I03"].iloc[0]
    assert eop.xp_rad == pytest.approx(-3.980445861816e-02 * np.pi / 648000, rel=1e-15)
    assert eop.yp_rad == pytest.approx(3.494396209717e-01 * np.pi / 648000, rel=1e-15)
    assert eop.dut1_s == -1.894086599350e-02 and eop.ttm_s == 36.0 and eop.t_gpst == T_2253
    assert eop.dut1_rate_s_s == pytest.approx(-4.071891307831e-04 / 86400, rel=1e-15)


def test_rinex3_mixed_sept_counts_header_and_galileo_message(sept):
    # SEPT078M.21P: 24 G, 210 E, 8 J records (SOURCES.md); data sources 258 x105, 516 x102, 513 x3 (awk).
    assert sept.eph.groupby(["system", "msg"]).size().to_dict() == {
        ("E", "FNAV"): 105, ("E", "INAV"): 105, ("G", "LNAV"): 24, ("J", "LNAV"): 8}  # fmt: skip
    assert sept.problems == () and sept.version == 3.04 and sept.leap_seconds == 18
    # Header lines 4-8 (Fortran D exponents).
    np.testing.assert_array_equal(sept.iono["GPS"], [.1118e-07, .7451e-08, -.5960e-07, -.5960e-07,
                                                     .9011e05, 0.0, -.1966e06, -.6554e05])  # fmt: skip
    np.testing.assert_array_equal(sept.iono["QZS"], [.1118e-07, -.1490e-07, -.3576e-06, -.5364e-06,
                                                     .9011e05, -.4915e05, -.8520e06, -.2163e07])  # fmt: skip
    np.testing.assert_array_equal(sept.iono["GAL"], [0.4550e02, 0.5859e-01, 0.2228e-02])
    # Line 11-18: E08 at 2021 03 19 10 40 00, data sources 516 (bit 2, E5b I/NAV) -> INAV.
    toc = T_2149 + 5 * 86400 + 10 * 3600 + 40 * 60
    _check(_row(sept, "E08", "INAV", toc), {
        "af0": .603088719072e-02, "af1": -.568434188608e-11, "iode": 16.0, "crs": -.385000000000e02,
        "sqrt_a": .544061199188e04, "toe_sow": 470400.0, "week": 2149.0, "toe_gpst": T_2149 + 470400,
        "data_sources": 516.0, "accuracy_m": 3.12, "tgd_s": -.395812094212e-08, "tgd2_s": -.442378222942e-08,
        "ttm_s": 471604.0,
    })  # fmt: skip
    # Line 203-210: E08, same toe, data sources 258 (bit 1, F/NAV) -> FNAV.
    _check(_row(sept, "E08", "FNAV", toc), {"af0": 0.603088794742e-02, "data_sources": 258.0, "tgd2_s": 0.0})
    # Line 155-162: J02 at 12:00, QZSS fit interval flag 1 (more than 2 h) -> NaN hours.
    _check(_row(sept, "J02", "LNAV", T_2149 + 475200), {"iode": 77.0, "iodc": 845.0, "fit_h": float("nan")})


def test_rinex302_qzss_only_file(gnss):
    nav = read_nav(gnss / "japan_cssrlib_2021078" / "30340780.21q")
    assert len(nav.eph) == 95 and set(nav.eph.system) == {"J"}  # `grep -c '^J'` of the file
    assert nav.iono == {} and nav.leap_seconds is None and nav.problems == ()
    # Line 4-11: J07 at 2021 03 19 00 00 00, fit interval flag 0 -> 2 hours (IS-QZSS-PNT).
    _check(_row(nav, "J07", "LNAV", T_2149 + 432000), {
        "af0": -1.536682248116e-08, "iode": 29.0, "crs": -2.928437500000e02, "sqrt_a": 6.493424846649e03,
        "toe_gpst": T_2149 + 432000, "accuracy_m": 2.8, "tgd_s": -6.053596735001e-09, "iodc": 797.0,
        "ttm_s": 431976.0, "fit_h": 2.0,
    })  # fmt: skip


def test_rinex3_header_navic_iono_and_time_offsets(gnss):
    nav = read_nav(gnss / "nav_multignss_navic" / "BRDC00GOP_R_20210010000_01D_MN.rnx.gz")
    # Header lines 13-14 (IRNA/IRNB) and 21-22 (IRUT/IRGP), BDUT line 20 (BDT week 782).
    np.testing.assert_array_equal(nav.iono["IRN"], [2.7940e-08, 3.4273e-07, -7.5102e-06, 7.5102e-06,
                                                    1.2698e05, 7.7005e05, -8.3231e06, 8.3231e06])  # fmt: skip
    assert nav.time_offsets["IRUT"] == (-9.6333678812e-09, 1.776356839e-15, 345888.0, 1114)
    assert nav.time_offsets["IRGP"] == (-4.9476511776e-10, -2.664535259e-15, 432288.0, 2138)
    assert nav.time_offsets["BDUT"] == (0.0, -4.085620730e-14, 14.0, 782)
    # The four records: C01 (GEO -> D2), E03 (data sources 258 -> FNAV), R10, S36.
    assert nav.eph[["sv", "msg"]].values.tolist() == [["C01", "D2"], ["E03", "FNAV"]]
    assert nav.glo.sv.tolist() == ["R10"] and nav.sbas.sv.tolist() == ["S36"]
    # C01 line 27-34: 2021 01 01 00 00 00 BDT, toe 432000 of BDT week 782.
    c01 = nav.eph.iloc[0]
    assert c01.toc_gpst == (782 + 1356) * WEEK + 5 * 86400 + 14
    assert c01.toe_gpst == (782 + 1356) * WEEK + 432000 + 14


def test_rinex3_dlr_excerpt_navic_records(gnss):
    nav = read_nav(gnss / "nav_multignss_navic" / "BRDM00DLR_S_20230730000_01D_MN.excerpt.rnx")
    # 6 records each of G/E/C/I/J/S and 7 R (SOURCES.md).
    assert nav.eph.system.value_counts().to_dict() == {"G": 6, "E": 6, "C": 6, "I": 6, "J": 6}
    assert len(nav.glo) == 7 and len(nav.sbas) == 6 and nav.problems == ()
    assert nav.time_offsets["IRGP"] == (3.5215634853e-09, -1.731947918e-14, 173088.0, 2253)
    assert nav.iono["IRN"][0] == 7.6368e-08 and nav.iono["IRN"][7] == -8.3231e06
    # C01 line 175-182: toe 172800 of BDT week 897 -> (897 + 1356) weeks + 172800 s + 14 s.
    c01 = nav.eph[nav.eph.sv == "C01"].iloc[0]
    assert c01.toe_gpst == T_2253 + 172800 + 14 and c01.msg == "D2"


def test_rinex305_esbc_counts_and_glonass_fifth_line(gnss):
    nav = read_nav(gnss / "denmark_esbc_2020177" / "ESBC00DNK_R_20201770000_01D_MN.rnx.gz")
    # 257 G, 1602 E, 357 C, 15 J, 510 R, 2130 S records (SOURCES.md).
    assert nav.eph.system.value_counts().to_dict() == {"E": 1602, "C": 357, "G": 257, "J": 15}
    assert len(nav.glo) == 510 and len(nav.sbas) == 2130 and nav.problems == ()
    # R01 at 2020 06 24 23 15 00 UTC (file line 18056-18060): blank status flags, unknown group delay
    # .999999999999e+09 -> NaN, URAI 15.
    r01 = nav.glo[nav.glo.sv == "R01"].iloc[0]
    assert r01.toc_gpst == 2111 * WEEK + 3 * 86400 + 23 * 3600 + 15 * 60 + 18
    assert np.isnan(r01.status_flags) and np.isnan(r01.delay_l1l2_s) and r01.urai == 15.0
    assert r01.x_m == pytest.approx(1.090894238281e07, rel=1e-15)


def test_rinex4_kms3_counts_and_sto(gnss):
    nav = read_nav(gnss / "europe_kms3_2022159" / "KMS300DNK_R_20221591000_01H_MN.rnx.gz")
    # 357 '> EPH' lines: C D1 33, C D2 3, E FNAV 53, E INAV 55, G LNAV 30, J LNAV 1, R 24, S 158.
    assert nav.eph.groupby(["system", "msg"]).size().to_dict() == {
        ("C", "D1"): 33, ("C", "D2"): 3, ("E", "FNAV"): 53, ("E", "INAV"): 55, ("G", "LNAV"): 30,
        ("J", "LNAV"): 1}  # fmt: skip
    assert len(nav.glo) == 24 and len(nav.sbas) == 158
    # STO lines 234-236 (GPUT, 2022 06 10 19 56 48) and 735-737 (GAUT, 2022 06 08 00 00 00); week 2213.
    assert nav.time_offsets["GPUT"] == (9.313225746155e-10, 2.664535259100e-15, 5 * 86400 + 71808.0, 2213)
    assert nav.time_offsets["GAUT"] == (-1.862645149231e-09, 8.881784197001e-16, 3 * 86400.0, 2213)


def _hdr(content: str, label: str) -> str:
    return content.ljust(60) + label + "\n"


def _orbit2(*fields: str) -> str:
    """A RINEX 2 broadcast-orbit line (3X,4D19.12) of field texts copied from a file."""
    return "   " + "".join(f.rjust(19) for f in fields) + "\n"


# RINEX 2.11 GPS navigation snippet: the G03 record of SEPT078M.21P lines 67-74 and the GPSA/GPSB header
# lines 4-5, written with the same digits in the RINEX 2 layout (I2 PRN, 2-digit year, F5.1 seconds,
# fields at columns 4, 23, 42, 61). DELTA-UTC carries the GPUT line of ESBC00DNK (A0, A1, T, W).
RINEX2_GPS = (
    _hdr("     2.11           N: GPS NAV DATA", "RINEX VERSION / TYPE")
    + _hdr("kizuna test", "PGM / RUN BY / DATE")
    + _hdr("     .1118D-07   .7451D-08  -.5960D-07  -.5960D-07", "ION ALPHA")
    + _hdr("     .9011D+05   .0000D+00  -.1966D+06  -.6554D+05", "ION BETA")
    + _hdr("    .931322574620D-09 .266453525900D-14   589824     2111", "DELTA-UTC: A0,A1,T,W")
    + _hdr("    18", "LEAP SECONDS")
    + _hdr("", "END OF HEADER")
    + " 3 21  3 19 12  0  0.0" + "".join(f.rjust(19) for f in ("-.112356152385D-03", "-.105728759081D-10",
                                                                ".000000000000D+00")) + "\n"
    + _orbit2(".370000000000D+02", "-.265625000000D+01", ".456911889357D-08", ".634492237240D+00")
    + _orbit2("-.396743416786D-06", ".332982675172D-02", ".693649053574D-05", ".515363021851D+04")
    + _orbit2(".475200000000D+06", "-.316649675369D-07", "-.114852075735D+01", ".521540641785D-07")
    + _orbit2(".968334075252D+00", ".251343750000D+03", ".830273530968D+00", "-.808605110220D-08")
    + _orbit2(".331442377334D-09", ".100000000000D+01", ".214900000000D+04", ".000000000000D+00")
    + _orbit2(".200000000000D+01", ".000000000000D+00", ".186264514923D-08", ".370000000000D+02")
    + _orbit2(".471606000000D+06", ".400000000000D+01")
)  # fmt: skip

# RINEX 2.11 GLONASS snippet: the R01 record of BRDM00DLR...excerpt.rnx lines 99-102 in the RINEX 2 layout.
RINEX2_GLO = (
    _hdr("     2.11           G: GLONASS NAV DATA", "RINEX VERSION / TYPE")
    + _hdr("  2023     3    14    -.931322574620D-09", "CORR TO SYSTEM TIME")
    + _hdr("", "END OF HEADER")
    + " 1 23  3 14  0 15  0.0" + "".join(f.rjust(19) for f in ("2.470612525940e-05", "0.000000000000e+00",
                                                                "1.728300000000e+05")) + "\n"
    + _orbit2("5.763751464844e+03", "-1.299090385437e+00", "0.000000000000e+00", "0.000000000000e+00")
    + _orbit2("1.183432617188e+04", "2.693783760071e+00", "-9.313225746155e-10", "1.000000000000e+00")
    + _orbit2("2.185887109375e+04", "-1.114941596985e+00", "-2.793967723846e-09", "0.000000000000e+00")
)  # fmt: skip


def test_rinex2_gps_snippet_reads_like_the_rinex3_record(tmp_path, sept):
    path = tmp_path / "sept0780.21n"
    path.write_text(RINEX2_GPS)
    nav = read_nav(path)
    assert nav.version == 2.11 and nav.problems == () and nav.leap_seconds == 18
    v3 = sept.eph[sept.eph.sv == "G03"].iloc[[0]].reset_index(drop=True)
    pd.testing.assert_frame_equal(nav.eph, v3, check_exact=True)
    np.testing.assert_array_equal(nav.iono["GPS"], sept.iono["GPS"])
    assert nav.time_offsets["GPUT"] == (9.3132257462e-10, 2.664535259e-15, 589824.0, 2111)
    # Compression detected by magic bytes, whatever the file name: gzip, bzip2, Unix compress (.Z).
    packed = tmp_path / "sept0780.nav"
    for data in (gzip.compress(RINEX2_GPS.encode()), bz2.compress(RINEX2_GPS.encode()),
                 hatanaka.compress(RINEX2_GPS.encode(), compression="Z")):  # fmt: skip
        packed.write_bytes(data)
        pd.testing.assert_frame_equal(read_nav(packed).eph, nav.eph, check_exact=True)


def test_rinex2_glonass_snippet_reads_like_the_rinex3_record(tmp_path, gnss):
    path = tmp_path / "brdm0730.23g"
    path.write_text(RINEX2_GLO)
    nav = read_nav(path)
    v3 = read_nav(gnss / "nav_multignss_navic" / "BRDM00DLR_S_20230730000_01D_MN.excerpt.rnx").glo
    pd.testing.assert_frame_equal(nav.glo, v3.iloc[[0]].reset_index(drop=True), check_exact=True)
    assert nav.glo.toc_gpst[0] == T_2253 + 2 * 86400 + 900 + 18  # 2023-03-14 00:15 UTC
    assert nav.time_offsets["GLUT"] == (-0.931322574620e-09, 0.0, 2 * 86400.0, 2253)


def _sept_lines(gnss) -> list[str]:
    return (gnss / "japan_cssrlib_2021078" / "SEPT078M.21P").read_text().splitlines(keepends=True)


def test_truncated_last_record_is_a_problem_and_the_rest_is_read(tmp_path, gnss, sept):
    lines = _sept_lines(gnss)
    assert len(lines) == 1946 and lines[1938].startswith("E01 2021 03 19 12 40 00")
    path = tmp_path / "cut.21p"
    path.write_text("".join(lines[:1942]))  # the last record (line 1939-1946) keeps 4 of its 8 lines
    nav = read_nav(path)
    assert nav.problems == (f"{path}:1939: E INAV record cut short at end of file (4 of 8 lines); skipped",)
    assert len(nav.eph) == len(sept.eph) - 1
    merged = merge_nav([nav, sept])
    assert merged.problems == nav.problems and merged.paths == (str(path), str(sept.paths[0]))
    pd.testing.assert_frame_equal(merged.eph, sept.eph)


def test_garbage_field_and_unknown_system_skip_one_record(tmp_path, gnss, sept):
    lines = _sept_lines(gnss)
    assert lines[68].rstrip().endswith(".515363021851D+04")  # line 69: sqrt(A) of G03
    lines[68] = lines[68].replace(".515363021851D+04", ".5153630X1851D+04")
    lines[10] = "X" + lines[10][1:]  # line 11: E08 becomes an unknown system
    path = tmp_path / "bad.21p"
    path.write_text("".join(lines))
    nav = read_nav(path)
    assert nav.problems == (
        f"{path}:11: unknown satellite system 'X'; record skipped",
        f"{path}:69: G LNAV record field 4 '  .5153630X1851D+04' is not a number; skipped",
    )
    assert len(nav.eph) == len(sept.eph) - 2
    assert (nav.eph.sv == "G03").sum() == (sept.eph.sv == "G03").sum() - 1


def test_not_a_navigation_file(tmp_path, gnss):
    with pytest.raises(InputError, match="observation"):
        read_nav(gnss / "japan_cssrlib_2021078" / "SEPT078M.21O")
    v5 = tmp_path / "v5.rnx"
    v5.write_text(
        _hdr("     5.00           N: GNSS NAV DATA    M", "RINEX VERSION / TYPE") + _hdr("", "END OF HEADER")
    )
    with pytest.raises(InputError, match=r"version 5\.00 is not supported"):
        read_nav(v5)
    no_end = tmp_path / "noend.rnx"
    no_end.write_text(RINEX2_GPS.replace("END OF HEADER", "COMMENT      "))
    with pytest.raises(InputError, match="END OF HEADER"):
        read_nav(no_end)
    empty = tmp_path / "empty.rnx"
    empty.write_text(RINEX2_GPS.split("END OF HEADER")[0] + "END OF HEADER\n")
    with pytest.raises(InputError, match="no usable navigation record"):
        read_nav(empty)
    with pytest.raises(InputError, match="cannot read"):
        read_nav(tmp_path / "missing.rnx")


def test_merge_of_a_file_with_itself_is_the_file(sept):
    merged = merge_nav([sept, sept])
    pd.testing.assert_frame_equal(merged.eph, sept.eph)
    assert merged.iono.keys() == sept.iono.keys() and merged.leap_seconds == 18
    with pytest.raises(InputError):
        merge_nav([])
