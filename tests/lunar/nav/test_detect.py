"""Tests of the crater detector on images made here from first principles, not by the project renderer.

Test images: a flat plain with bowl craters of known centre and radius, the fresh simple-crater shape
of Pike (1977) (rim-to-floor depth 0.196 D, rim 0.036 D above the plain, a parabolic bowl inside the
rim, an exterior rim falling as (r/R)^-3), shaded with Lambert's law mu0 = n . s and cast shadows found by
marching from every pixel toward the light. Heights are in pixel units (a nadir view at 1 m per pixel).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from kizuna.errors import InputError
from kizuna.lunar.nav.detect import DETECTION_COLUMNS, DetectorSpec, detect_craters, estimate_sun_azimuth

N_PX = 256
# (x, y, R) in pixels: craters of radius 8 to 38 px, far enough apart not to touch (3 R ejecta reach).
CRATERS = [(60.3, 70.7, 8.0), (180.2, 60.1, 14.0), (70.6, 180.4, 22.0), (170.1, 175.5, 38.0)]


def _height_field(craters, n: int = N_PX) -> np.ndarray:
    """Plain z = 0 with Pike (1977) fresh simple craters (heights in px)."""
    y, x = np.mgrid[0:n, 0:n].astype(float)
    z = np.zeros((n, n))
    c = 1.0 / 27.0  # the exterior rim reaches zero at r = 3 R
    for cx, cy, R in craters:
        r = np.hypot(x - cx, y - cy) / R
        rim, depth = 0.036 * 2 * R, 0.196 * 2 * R
        inside = rim - depth * (1.0 - r**2)
        outside = np.where(r < 3.0, rim * (np.maximum(r, 1.0) ** -3 - c) / (1.0 - c), 0.0)
        z += np.where(r < 1.0, inside, outside)
    return z


def _shade(z: np.ndarray, az_deg: float, el_deg: float, noise: float = 0.01, seed: int = 0) -> np.ndarray:
    """Lambert image with cast shadows; light comes from image azimuth az (deg from +x toward +y)."""
    az, el = math.radians(az_deg), math.radians(el_deg)
    lx, ly, lz = math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)
    gy, gx = np.gradient(z)
    mu0 = (-gx * lx - gy * ly + lz) / np.sqrt(gx**2 + gy**2 + 1.0)
    y, x = np.mgrid[0 : z.shape[0], 0 : z.shape[1]].astype(float)
    lit = np.ones_like(z)
    zmax = z.max()
    for k in np.arange(0.5, 2.0 * z.shape[0], 0.5):  # march toward the light in half-pixel steps
        ray = z + k * math.tan(el)
        if ray.min() > zmax:
            break
        zs = ndimage.map_coordinates(z, [y + k * math.sin(az), x + k * math.cos(az)], order=1, mode="nearest")
        lit[zs > ray] = 0.0
    rng = np.random.default_rng(seed)
    return 0.05 + np.clip(mu0, 0.0, None) * lit + noise * rng.standard_normal(z.shape)


def _match(det, craters) -> list[bool]:
    """For each true crater: is there a detection with centre within 1 px and radius within 10 %?"""
    out = []
    for cx, cy, R in craters:
        d = np.hypot(det.x_px - cx, det.y_px - cy)
        out.append(bool(np.any((d < 1.0) & (np.abs(det.a_px / R - 1.0) < 0.1))))
    return out


@pytest.mark.parametrize(
    ("el", "az"),
    [
        (15.0, 0.0),
        (15.0, 90.0),
        (15.0, 240.0),
        (20.0, 0.0),
        (20.0, 90.0),
        (30.0, 240.0),
        (45.0, 0.0),
        (60.0, 90.0),
        (60.0, 240.0),
    ],
)
def test_detects_craters_accurately(el: float, az: float) -> None:
    # Requirement: centres within 1 px and radii within 10 % for R = 8..40 px at Sun elevations 15-60 deg.
    img = _shade(_height_field(CRATERS), az, el)
    det = detect_craters(img, sun_azimuth_deg=az)
    assert _match(det, CRATERS) == [True] * len(CRATERS)
    # ellipse columns of a circle: a = b, and theta is defined
    assert np.all(det.a_px >= det.b_px) and np.all(np.isfinite(det.theta_rad))


@pytest.mark.parametrize(("el", "az"), [(30.0, 0.0), (60.0, 0.0)])
def test_every_detection_is_a_true_crater(el: float, az: float) -> None:
    # Precision on an image with only the four craters: each detection is one of them.
    img = _shade(_height_field(CRATERS), az, el)
    det = detect_craters(img, sun_azimuth_deg=az)
    for _, row in det.iterrows():
        assert any(
            math.hypot(row.x_px - cx, row.y_px - cy) < 1.0 and abs(row.a_px / R - 1.0) < 0.1
            for cx, cy, R in CRATERS
        ), row.to_dict()


@pytest.mark.parametrize("ramp_az_deg", [0.0, 60.0, 180.0, 250.0])
@pytest.mark.parametrize("sun_az_deg", [0.0, 45.0])
def test_brightness_ramp_gives_no_detection(ramp_az_deg: float, sun_az_deg: float) -> None:
    # The signature filter's weights make the response to a linear brightness ramp zero (module docs:
    # W_OUTER = 1/1.65), so a crater-free plain with a photometric gradient holds no crater.
    y, x = np.mgrid[0:N_PX, 0:N_PX].astype(float)
    a = math.radians(ramp_az_deg)
    ramp = 0.5 + 0.0015 * (x * math.cos(a) + y * math.sin(a))
    assert len(detect_craters(ramp, sun_azimuth_deg=sun_az_deg)) == 0


def test_featureless_noisy_images_have_no_detection() -> None:
    # Precision: a plain without craters, flat or with a brightness gradient, seen through 1-2 % sensor
    # noise, holds no crater.
    counts = []
    for seed in range(8):
        img = 0.5 + 0.02 * np.random.default_rng(seed).standard_normal((N_PX, N_PX))
        counts.append(len(detect_craters(img, sun_azimuth_deg=0.0)))
    y, x = np.mgrid[0:N_PX, 0:N_PX].astype(float)
    a = math.radians(250.0)
    ramp = 0.5 + 0.0015 * (x * math.cos(a) + y * math.sin(a))
    counts.append(
        len(detect_craters(ramp + 0.01 * np.random.default_rng(3).standard_normal(ramp.shape), 0.0))
    )
    assert counts == [0] * 9


def _population() -> list[tuple[float, float, float]]:
    # 40 craters with the cumulative size law N(>R) ~ R^-2 (Trask 1966 slope), R from 3 to 21 px.
    rng = np.random.default_rng(1)
    R = 3.0 / np.sqrt(rng.uniform(0.02, 1.0, 40))
    return [(rng.uniform(10, 246), rng.uniform(10, 246), r) for r in R]


@pytest.mark.parametrize(
    ("el", "az"),
    [
        (20.0, 0.0),
        (20.0, 100.0),
        (20.0, 230.0),
        (40.0, 0.0),
        (40.0, 100.0),
        (40.0, 230.0),
        (60.0, 0.0),
        (60.0, 100.0),
        (60.0, 230.0),
    ],
)
def test_estimate_sun_azimuth(el: float, az: float) -> None:
    # Requirement: the light direction recovered within 20 deg at Sun elevations >= 20 deg.
    img = _shade(_height_field(_population()), az, el)
    est = estimate_sun_azimuth(img)
    assert abs((est - az + 180.0) % 360.0 - 180.0) < 20.0, est


def test_output_columns() -> None:
    # The documented table starts with these six columns in this order, and a result without detections
    # has the same columns as one with detections.
    columns = ["x_px", "y_px", "a_px", "b_px", "theta_rad", "score"]
    assert DETECTION_COLUMNS == columns
    img = _shade(_height_field(CRATERS[:2]), 0.0, 40.0)
    det = detect_craters(img, sun_azimuth_deg=0.0)
    empty = detect_craters(np.full((64, 64), 0.3), sun_azimuth_deg=0.0)
    assert len(det) >= 2 and len(empty) == 0
    assert list(det.columns[:6]) == columns
    assert list(empty.columns) == list(det.columns)


def test_detections_sorted_by_score() -> None:
    img = _shade(_height_field(CRATERS), 90.0, 40.0)
    det = detect_craters(img, sun_azimuth_deg=90.0)
    assert len(det) >= 4
    assert np.all(np.diff(det.score.to_numpy()) <= 0)
    assert det.attrs["sun_azimuth_deg"] == 90.0


def test_brightness_scale_does_not_matter() -> None:
    # The detector works on any brightness scale: an affine change of the image (gain, offset) gives the
    # same detections.
    img = _shade(_height_field(CRATERS), 240.0, 35.0)
    a = detect_craters(img, sun_azimuth_deg=240.0)
    b = detect_craters(1000.0 * img + 37.0, sun_azimuth_deg=240.0)
    np.testing.assert_allclose(b[["x_px", "y_px", "a_px"]], a[["x_px", "y_px", "a_px"]], atol=1e-6)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((64, 64, 3)),
        np.zeros(4096),
        np.zeros((31, 64)),
        np.where(np.eye(64) > 0, np.nan, 0.5),
        np.where(np.eye(64) > 0, np.inf, 0.5),
    ],
    ids=["3d", "1d", "tiny", "nan", "inf"],
)
def test_bad_images_raise(image: np.ndarray) -> None:
    with pytest.raises(InputError, match="image"):
        detect_craters(image, sun_azimuth_deg=0.0)
    with pytest.raises(InputError, match="image"):
        estimate_sun_azimuth(image)


@pytest.mark.parametrize("kwargs", [{"min_radius_px": 1.5}, {"threshold": 0.0}, {"threshold": -1.0}])
def test_bad_spec_raises(kwargs: dict) -> None:
    with pytest.raises(InputError):
        DetectorSpec(**kwargs)


@pytest.mark.xfail(
    reason="estimate_sun_azimuth as of commit 18bbcb0 (score = verified detections over 16 trial azimuths)"
    " returns about 5 deg on Tycho, light from the right; the version of 1d4e3ad returned 204 deg",
    strict=True,
)
def test_tycho_lro_sun_from_the_left(shared_data) -> None:
    # The LRO view of Tycho (Doppenberg's sample): the west (left) inner wall is filled with shadow and
    # the east wall is brightly lit, so the light comes from the left, image azimuth 180 deg. The exact
    # direction is not published with the image: allow 45 deg.
    from PIL import Image

    img = np.asarray(Image.open(shared_data / "lunar" / "doppenberg" / "Tycho_LRO.png"), dtype=float) / 255.0
    est = estimate_sun_azimuth(img)
    assert abs(est - 180.0) < 45.0, est
