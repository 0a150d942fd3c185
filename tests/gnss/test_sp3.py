"""SP3 reading and interpolation: values pasted from the CODE MGEX file, analytic orbits, held-out epochs."""

from __future__ import annotations

import dataclasses
import gzip

import numpy as np
import pytest

from kizuna.errors import InputError
from kizuna.gnss.sp3 import Sp3, interpolate_sp3, read_sp3

SP3_NAME = "gnss/japan_cssrlib_2021078/COD0MGXFIN_20210780000_01D_05M_ORB.SP3"


@pytest.fixture(scope="module")
def code_sp3(shared_data) -> Sp3:
    return read_sp3(shared_data / SP3_NAME)


def test_header_and_pasted_lines(code_sp3):
    sp3 = code_sp3
    # Line 1: "#dP2021  3 19  0  0  0.00000000     289 d+D   IGb14 FIT AIUB"; line 3: "+  117   G01G02...".
    assert sp3.version == "d" and sp3.coord_frame == "IGb14" and sp3.agency == "AIUB"
    assert sp3.time_system == "GPS" and sp3.t_gpst.size == 289 and sp3.sv.size == 117
    assert list(sp3.sv[:3]) == ["G01", "G02", "G03"] and sp3.sv[-1] == "J03"
    # Line 2: "## 2149 432000.00000000   300.00000000 ...": GPS week 2149, 432000 s, 300 s steps.
    assert sp3.t_gpst[0] == 2149 * 604800.0 + 432000.0
    np.testing.assert_array_equal(np.diff(sp3.t_gpst), 300.0)
    g01, c29 = list(sp3.sv).index("G01"), list(sp3.sv).index("C29")
    # "PG01  20538.194555  11867.640064  12051.184924    738.035739" (first epoch, km and microseconds).
    np.testing.assert_allclose(
        sp3.pos_ecef_m[0, g01], [20538194.555, 11867640.064, 12051184.924], rtol=0, atol=1e-6
    )
    assert sp3.clk_s[0, g01] == pytest.approx(738.035739e-6, abs=1e-15)
    # Line 7679, epoch "*  2021  3 19  5 20  0.00000000" (index 64):
    # "PC29 -16797.999999   1544.102459  22223.140656    366.893478".
    np.testing.assert_allclose(
        sp3.pos_ecef_m[64, c29], [-16797999.999, 1544102.459, 22223140.656], rtol=0, atol=1e-6
    )
    assert sp3.clk_s[64, c29] == pytest.approx(366.893478e-6, abs=1e-15)
    # Last epoch (2021-03-20 00:00): "PG01  20750.094107  12171.900595  11388.273906 999999.999999".
    assert sp3.t_gpst[-1] == 2149 * 604800.0 + 518400.0
    np.testing.assert_allclose(
        sp3.pos_ecef_m[-1, g01], [20750094.107, 12171900.595, 11388273.906], rtol=0, atol=1e-6
    )
    assert np.isnan(sp3.clk_s[-1]).all() and np.isfinite(sp3.clk_s[:-1, g01]).all()


def test_interpolation_at_epochs_is_exact(code_sp3):
    sp3 = code_sp3
    k = np.array([0, 1, 5, 64, 150, 283, 287, 288])
    pos, clk = interpolate_sp3(sp3, sp3.sv[:, None], sp3.t_gpst[k][None, :])
    np.testing.assert_array_equal(pos, sp3.pos_ecef_m[k].transpose(1, 0, 2))
    np.testing.assert_array_equal(clk, sp3.clk_s[k].T)


def test_interpolation_of_held_out_epochs(code_sp3):
    # Keep every third epoch (a 15-min grid) and interpolate at the two epochs between: the CODE values
    # there were not used. Measured: median 1.0 mm for every system; max 3.4 mm (GPS), 16 mm (Galileo, the
    # eccentric E14/E18). Clocks are linear between 15-min epochs: median 5 mm, max 0.33 m (as light-metres).
    sp3 = code_sp3
    sub = dataclasses.replace(
        sp3, t_gpst=sp3.t_gpst[::3], pos_ecef_m=sp3.pos_ecef_m[::3], clk_s=sp3.clk_s[::3]
    )
    k = np.arange(16, 270)
    k = k[k % 3 != 0]
    pos, clk = interpolate_sp3(sub, sp3.sv[:, None], sp3.t_gpst[k][None, :])
    d = np.linalg.norm(pos - sp3.pos_ecef_m[k].transpose(1, 0, 2), axis=-1)
    assert np.isfinite(d).all()
    assert np.median(d) < 2e-3 and d[np.char.startswith(sp3.sv, "G")].max() < 0.01 and d.max() < 0.03
    dc = np.abs(clk - sp3.clk_s[k].T) * 299_792_458.0
    assert np.nanmedian(dc) < 0.02 and np.nanmax(dc) < 0.5


def test_circular_orbit_and_linear_clock():
    # Analytic answer: a circular orbit of radius 26,560 km inclined 55 deg, seen from the rotating Earth,
    # sampled every 300 s; between samples Lagrange order 10 must give the orbit to well under 1 mm, and a
    # clock that is linear in time must come back exactly.
    omega_e = 7.2921151467e-5
    r, inc, n = 26_560e3, np.radians(55.0), np.sqrt(3.986004418e14 / 26_560e3**3)

    def ecef(t: np.ndarray) -> np.ndarray:
        u, theta = n * t, omega_e * t
        x, y, z = r * np.cos(u), r * np.sin(u) * np.cos(inc), r * np.sin(u) * np.sin(inc)
        return np.stack(
            [x * np.cos(theta) + y * np.sin(theta), -x * np.sin(theta) + y * np.cos(theta), z], -1
        )

    t0 = 1.3e9
    tt = t0 + np.arange(0.0, 6 * 3600.0 + 1.0, 300.0)
    sp3 = Sp3(
        t_gpst=tt,
        sv=np.array(["G99"]),
        pos_ecef_m=ecef(tt - t0)[:, None, :],
        clk_s=(1e-4 + 1e-11 * (tt - t0))[:, None],
        time_system="GPS",
        coord_frame="IGS20",
    )
    tq = t0 + np.arange(10.0, 6 * 3600.0, 137.0)
    pos, clk = interpolate_sp3(sp3, "G99", tq)
    np.testing.assert_allclose(pos, ecef(tq - t0), rtol=0, atol=1e-4)
    np.testing.assert_allclose(clk, 1e-4 + 1e-11 * (tq - t0), rtol=0, atol=1e-17)


def test_nan_outside_and_for_missing(code_sp3):
    sp3 = code_sp3
    t_first, t_last = sp3.t_gpst[0], sp3.t_gpst[-1]
    pos, clk = interpolate_sp3(
        sp3, ["G01", "G01", "X01", "G01"], [t_first - 1.0, t_last + 1.0, t_first, t_last - 150.0]
    )
    assert np.isnan(pos[:3]).all() and np.isnan(clk[:3]).all()
    # At t_last - 150 s the position is fine but the clock needs the missing last clock (999999.999999).
    assert np.isfinite(pos[3]).all() and np.isnan(clk[3])
    # A missing position in the window spoils the interpolation only within reach of the window.
    g = list(sp3.sv).index("G05")
    bad = sp3.pos_ecef_m.copy()
    bad[100, g] = np.nan
    holed = dataclasses.replace(sp3, pos_ecef_m=bad)
    pos, _ = interpolate_sp3(holed, "G05", sp3.t_gpst[[96, 102, 104, 107]] + 100.0)
    assert np.isnan(pos[0]).all() and np.isnan(pos[1]).all() and np.isfinite(pos[3]).all()


def _small_sp3c(time_system: str) -> list[str]:
    head = [
        "#cP2021  3 19  0  0  0.00000000       2 ORBIT IGS14 HLM  TEST",
        "## 2149 432000.00000000   900.00000000 59292 0.0000000000000",
        "+    2   G01E11  0  0  0  0  0  0  0  0  0  0  0  0  0  0  0",
    ]
    head += ["+          0  0  0  0  0  0  0  0  0  0  0  0  0  0  0  0  0"] * 4
    head += ["++         0  0  0  0  0  0  0  0  0  0  0  0  0  0  0  0  0"] * 5
    head += [
        f"%c G  cc {time_system} ccc cccc cccc cccc cccc ccccc ccccc ccccc ccccc",
        "%c cc cc ccc ccc cccc cccc cccc cccc ccccc ccccc ccccc ccccc",
        "%f  1.2500000  1.025000000  0.00000000000  0.000000000000000",
        "%f  0.0000000  0.000000000  0.00000000000  0.000000000000000",
        "%i    0    0    0    0      0      0      0      0         0",
        "%i    0    0    0    0      0      0      0      0         0",
    ]
    head += ["/* test file"] * 4
    body = [
        "*  2021  3 19  0  0  0.00000000",
        "PG01  20538.194555  11867.640064  12051.184924    738.035739",
        "PE11      0.000000      0.000000      0.000000 999999.999999",
        "*  2021  3 19  0 15  0.00000000",
        "PG01  20800.000000  11000.000000  12000.000000    738.000000",
        "PE11  10000.000000  20000.000000  15000.000000    -12.500000",
        "EOF",
    ]
    return head + body


# GPST - UTC = 18 s since 2017 (IERS Bulletin C); BDT = GPST - 14 s (BDS-SIS-ICD 4.2); GLONASS time =
# UTC(SU) + 3 h (GLONASS ICD 3.3.3); TAI = GPST + 19 s; GST = GPST (Galileo OS SIS ICD 5.1.2).
@pytest.mark.parametrize(
    "time_system, offset_s",
    [("UTC", 18.0), ("BDT", 14.0), ("GLO", 18.0 - 10800.0), ("TAI", -19.0), ("GAL", 0.0)],
)
def test_sp3c_time_systems(tmp_path, time_system, offset_s):
    path = tmp_path / "small.sp3"
    path.write_text("\n".join(_small_sp3c(time_system)) + "\n")
    sp3 = read_sp3(path)
    assert sp3.version == "c" and sp3.time_system == time_system and sp3.coord_frame == "IGS14"
    np.testing.assert_array_equal(sp3.t_gpst, 2149 * 604800.0 + 432000.0 + offset_s + np.array([0.0, 900.0]))
    # "PE11      0.000000 ... 999999.999999": absent position and clock.
    assert np.isnan(sp3.pos_ecef_m[0, 1]).all() and np.isnan(sp3.clk_s[0, 1])
    np.testing.assert_allclose(sp3.pos_ecef_m[1, 1], [10e6, 20e6, 15e6], rtol=0, atol=1e-6)
    assert sp3.clk_s[1, 1] == pytest.approx(-12.5e-6, abs=1e-15)


def test_gzip_and_errors(shared_data, tmp_path, code_sp3):
    raw = (shared_data / SP3_NAME).read_bytes()
    gz = tmp_path / "orbit.sp3.gz"
    gz.write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(read_sp3(gz).pos_ecef_m, code_sp3.pos_ecef_m)
    lines = _small_sp3c("GPS")
    path = tmp_path / "small.sp3"
    # A malformed data line is named by its line number (line 25 here).
    lines[24] = "PG01  20800.0000x0  11000.000000  12000.000000    738.000000"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"small\.sp3:25: .*x"):
        read_sp3(path)
    lines = _small_sp3c("GPS")
    lines[24] = "PG07  20800.000000  11000.000000  12000.000000    738.000000"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"small\.sp3:25: satellite 'G07'"):
        read_sp3(path)
    path.write_text("not an orbit file\n")
    with pytest.raises(InputError, match=":1:"):
        read_sp3(path)
    with pytest.raises(InputError, match="cannot read"):
        read_sp3(tmp_path / "missing.sp3")
