"""Tests of the ``kizuna`` command line: options, the error policy, and ``kizuna lunar detect``.

Most tests run the command in a subprocess (``python -m kizuna``), as a user would. The synthetic image
is rendered here with numpy only: bowl-shaped craters (parabolic floor, raised rim falling off as r^-3)
under Lambertian shading with the Sun in the image's +x direction at 30 deg elevation, so the true
centres and radii are known exactly.
"""

from __future__ import annotations

import csv
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kizuna import cli
from kizuna.lunar.nav.detect_model import default_model

# Crater centres and rim radii (px) drawn into the synthetic image: (x, y, r).
CRATERS = [(70.0, 80.0, 12.0), (172.0, 88.0, 18.0), (96.0, 178.0, 15.0), (190.0, 190.0, 10.0)]
COLUMNS = ["x_px", "y_px", "a_px", "b_px", "theta_rad", "score"]
SIX_DECIMALS = re.compile(r"^-?\d+\.\d{6}$")


def render_craters(n: int = 256, sun_el_deg: float = 30.0) -> np.ndarray:
    """Lambert-shaded height field of CRATERS, light from +x; float in [0, 1]."""
    y, x = np.mgrid[0:n, 0:n].astype(float)
    z = np.zeros((n, n))
    for cx, cy, r in CRATERS:
        rho = np.hypot(x - cx, y - cy) / r
        depth, rim = 0.2 * r, 0.04 * r
        z += np.where(rho < 1.0, rim + depth * (rho**2 - 1.0), rim * np.maximum(rho, 1.0) ** -3)
    gy, gx = np.gradient(z)
    el = np.radians(sun_el_deg)
    # unit normal (-gx, -gy, 1)/|.| dotted with the Sun direction (cos el, 0, sin el)
    return np.clip((-gx * np.cos(el) + np.sin(el)) / np.sqrt(gx**2 + gy**2 + 1.0), 0.0, 1.0)


def write_pgm16(path: Path, img: np.ndarray) -> Path:
    """Write a 16-bit binary PGM (P5, maxval 65535, big-endian samples) with numpy only."""
    data = np.round(img / img.max() * 65535.0).astype(">u2")
    path.write_bytes(f"P5\n{img.shape[1]} {img.shape[0]}\n65535\n".encode() + data.tobytes())
    return path


def write_png8(path: Path, img: np.ndarray, channels: int = 1) -> Path:
    """Write an 8-bit PNG (gray, or the same gray in every RGB channel)."""
    from PIL import Image

    data = np.round(img / img.max() * 255.0).astype(np.uint8)
    if channels == 3:
        data = np.repeat(data[..., None], 3, axis=2)
    Image.fromarray(data).save(path)
    return path


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m kizuna ARGS`` and return the finished process (text output)."""
    return subprocess.run(
        [sys.executable, "-m", "kizuna", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def assert_finds_the_craters(rows: list[list[str]]) -> None:
    """Every drawn crater has a detection with centre within 2 px and radius within 15 %."""
    det = np.array([[float(v) for v in row] for row in rows])
    for cx, cy, r in CRATERS:
        d = np.hypot(det[:, 0] - cx, det[:, 1] - cy)
        k = int(np.argmin(d))
        assert d[k] <= 2.0, f"crater at ({cx}, {cy}) missed: nearest detection {d[k]:.1f} px away"
        assert abs(det[k, 2] / r - 1.0) < 0.15


# --- the top-level command -----------------------------------------------------------------------------


def test_help_lists_the_fields() -> None:
    res = run("--help")
    assert res.returncode == 0
    for word in ("lunar", "--version", "--debug", "--quiet"):
        assert word in res.stdout
    res = run("lunar", "detect", "--help")
    assert res.returncode == 0
    for word in ("--out", "--sun-azimuth-deg", "--threshold", "--min-radius-px"):
        assert word in res.stdout


def test_version_matches_the_installed_distribution() -> None:
    # The version the installer recorded from pyproject.toml, not one the command computes.
    expected = importlib.metadata.version("kizuna")
    res = run("--version")
    assert res.returncode == 0
    assert res.stdout.strip() == f"kizuna {expected}"
    script = Path(sys.executable).with_name("kizuna")
    if script.exists():  # the console-script entry point of pyproject.toml
        res2 = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=120)
        assert (res2.returncode, res2.stdout) == (0, res.stdout)


def test_starting_the_command_imports_no_scientific_library() -> None:
    # Every `kizuna` run imports kizuna.cli; each field's libraries are imported only by the command that
    # runs, so that `kizuna --help` or a quick command does not wait seconds for numba and scipy.
    heavy = ("numpy", "pandas", "scipy", "numba", "matplotlib", "sklearn", "xarray", "rasterio", "sgp4")
    code = f"import sys, kizuna.cli; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == []


def test_usage_errors_exit_2() -> None:
    res = run("lunar", "detect")  # IMAGE and --out missing
    assert res.returncode == 2
    assert "Missing" in res.stderr
    res = run("--no-such-option")
    assert res.returncode == 2


# --- kizuna lunar detect on a synthetic image ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["png8", "pgm16", "png_rgb"])
def test_detect_finds_synthetic_craters(tmp_path: Path, kind: str) -> None:
    img = render_craters()
    if kind == "png8":
        path = write_png8(tmp_path / "craters.png", img)
    elif kind == "pgm16":
        path = write_pgm16(tmp_path / "craters.pgm", img)
    else:  # a 3-channel image with equal channels is read as its gray channel
        path = write_png8(tmp_path / "craters_rgb.png", img, channels=3)
    out = tmp_path / "out" / "det.csv"
    res = run("lunar", "detect", path, "--out", out, "--sun-azimuth-deg", "0")
    assert res.returncode == 0, res.stderr
    header, rows = read_rows(out)
    assert header == COLUMNS
    assert all(SIX_DECIMALS.match(v) for row in rows for v in row)
    assert_finds_the_craters(rows)
    summary = res.stderr.strip().splitlines()
    assert len(summary) == 1
    assert f"{len(rows)} craters" in summary[0] and "sun azimuth 0.0 deg (given)" in summary[0]
    assert res.stdout == ""


def test_detect_quiet_prints_nothing(tmp_path: Path) -> None:
    path = write_png8(tmp_path / "craters.png", render_craters())
    out = tmp_path / "det.csv"
    res = run("--quiet", "lunar", "detect", path, "--out", out, "--sun-azimuth-deg", "0")
    assert res.returncode == 0
    assert res.stderr == "" and res.stdout == ""
    assert_finds_the_craters(read_rows(out)[1])


# --- kizuna lunar detect on a real LRO image -----------------------------------------------------------


def test_detect_on_tycho_lro(shared_data: Path, tmp_path: Path) -> None:
    # Real LRO view of Tycho (SOURCES.md: 1058 x 1058, no labels, no pose): a smoke test with invariants.
    # Tycho itself (rim radius ~370 px) is larger than the default search range (a quarter of the short
    # side, 264.5 px), so it is not asked for here.
    image = shared_data / "lunar" / "doppenberg" / "Tycho_LRO.png"
    out = tmp_path / "tycho.csv"
    res = run("lunar", "detect", image, "--out", out)
    assert res.returncode == 0, res.stderr
    header, rows = read_rows(out)
    assert header == COLUMNS
    det = np.array([[float(v) for v in row] for row in rows])
    assert len(det) > 0
    assert ((det[:, 0] >= 0) & (det[:, 0] <= 1057) & (det[:, 1] >= 0) & (det[:, 1] <= 1057)).all()
    # radii within the range searched: --min-radius-px 4 up to a quarter of the short side
    assert (det[:, 2] >= det[:, 3]).all() and (det[:, 3] >= 4.0).all()
    assert (det[:, 2] <= 0.25 * 1058).all()
    # the score is the crater probability, at least the shipped model's own minimum
    assert (det[:, 5] >= default_model().min_probability).all() and (det[:, 5] <= 1.0).all()
    assert f"{len(rows)} craters" in res.stderr and "(estimated)" in res.stderr


# --- errors: one line, exit 2, nothing written ---------------------------------------------------------


def _assert_input_error(res: subprocess.CompletedProcess[str], name: str) -> None:
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("kizuna: error: ") and name in lines[0]
    assert "Traceback" not in res.stderr


def test_missing_image(tmp_path: Path) -> None:
    out = tmp_path / "det.csv"
    res = run("lunar", "detect", tmp_path / "nope.png", "--out", out)
    _assert_input_error(res, "nope.png")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_non_image_file_keeps_the_old_output(tmp_path: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image\n")
    out = tmp_path / "det.csv"
    out.write_text("previous\n")
    res = run("lunar", "detect", bad, "--out", out)
    _assert_input_error(res, "notes.png")
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["det.csv", "notes.png"]


@pytest.mark.filterwarnings("ignore:Dataset has no geotransform")
def test_five_band_tiff_is_refused(tmp_path: Path) -> None:
    # A (5, H, W) raster is neither gray nor RGB(A): read_image refuses it.
    rasterio = pytest.importorskip("rasterio")
    path = tmp_path / "five.tif"
    data = np.zeros((5, 64, 64), dtype=np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=5, dtype="uint8") as ds:
        ds.write(data)
    out = tmp_path / "det.csv"
    res = run("lunar", "detect", path, "--out", out)
    _assert_input_error(res, "five.tif")
    assert not out.exists()


def test_tiny_image_and_bad_options(tmp_path: Path) -> None:
    tiny = write_png8(tmp_path / "tiny.png", render_craters(n=16) + 0.1)
    out = tmp_path / "det.csv"
    _assert_input_error(run("lunar", "detect", tiny, "--out", out), "tiny.png")
    good = write_png8(tmp_path / "craters.png", render_craters())
    _assert_input_error(run("lunar", "detect", good, "--out", out, "--threshold", "-1"), "threshold")
    _assert_input_error(run("lunar", "detect", good, "--out", out, "--sun-azimuth-deg", "nan"), "azimuth")
    _assert_input_error(run("lunar", "detect", good, "--out", out, "--min-probability", "2"), "probability")
    bad_model = tmp_path / "model.json"
    bad_model.write_text('{"format": "something else"}')
    _assert_input_error(run("lunar", "detect", good, "--out", out, "--model", bad_model), "model.json")
    assert not out.exists()


# --- the error policy of main(), in process ------------------------------------------------------------


def test_internal_error_exits_1_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    import kizuna.lunar.nav.detect as detect_module  # the command imports detect_craters from it when run

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(detect_module, "detect_craters", boom)
    path = write_png8(tmp_path / "craters.png", render_craters())
    argv = ["lunar", "detect", str(path), "--out", str(tmp_path / "d.csv")]
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "kizuna: internal error: RuntimeError: boom second line (run with --debug for the traceback)"
    ]
    with pytest.raises(SystemExit) as exc:
        cli.main(["--debug", *argv])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "RuntimeError: boom" in err
    assert err.strip().splitlines()[-1].startswith("kizuna: internal error: RuntimeError: boom")
    assert not (tmp_path / "d.csv").exists()


def test_input_error_traceback_only_with_debug(tmp_path: Path, capsys) -> None:
    argv = ["lunar", "detect", str(tmp_path / "nope.png"), "--out", str(tmp_path / "d.csv")]
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "Traceback" not in capsys.readouterr().err
    assert not cli.debug_enabled()
    with pytest.raises(SystemExit) as exc:
        cli.main(["--debug", "--quiet", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("kizuna: error: ")
    assert cli.debug_enabled() and cli.quiet_enabled()
