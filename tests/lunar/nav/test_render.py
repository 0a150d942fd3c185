"""Tests of the navigation-camera renderer against photometric and geometric laws.

Scenes are planes and roofs whose images follow in closed form: the ray from each pixel meets the plane
at a point found analytically, and the lunar-Lambert law (McEwen 1991) gives its radiance there.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from kizuna.core.camera import Camera
from kizuna.core.rotations import look_at
from kizuna.errors import InputError
from kizuna.lunar.nav.render import (
    Frame,
    SensorSpec,
    _shadow_mask,
    ground_footprint,
    lunar_lambert_weight,
    render,
    sun_direction_l,
)
from kizuna.lunar.nav.terrain import Terrain, TerrainSpec

# McEwen (1991), Icarus 92, 298-311, lunar-Lambert limb-darkening weight fitted to lunar photometry:
# L(a) = 1 + A a + B a^2 + C a^3 with a the phase angle in degrees.
MCEWEN = (-0.019, 2.42e-4, -1.46e-6)
R_MOON = 1_737_400.0  # LOLA/IAU reference sphere (m)

# No craters in reach and no background noise: the bare reference sphere.
BARE = TerrainSpec(
    seed=1,
    density_k=1e-12,
    d_min_m=1000.0,
    d_max_m=2000.0,
    noise_wavelength_max_m=0.01,
    noise_wavelength_min_m=0.1,
)
NO_PSF = SensorSpec(psf_sigma_px=0.0)


def _mcewen(phase_deg: np.ndarray) -> np.ndarray:
    a = np.asarray(phase_deg, dtype=float)
    return 1.0 + MCEWEN[0] * a + MCEWEN[1] * a**2 + MCEWEN[2] * a**3


def _lunar_lambert(n: np.ndarray, sun: np.ndarray, to_cam: np.ndarray) -> np.ndarray:
    """Lunar-Lambert radiance 2 L mu0/(mu0 + mu) + (1 - L) mu0 (McEwen 1991), normal albedo 1."""
    mu0 = np.sum(n * sun, -1)
    mu = np.sum(n * to_cam, -1)
    L = _mcewen(np.degrees(np.arccos(np.clip(to_cam @ sun, -1.0, 1.0))))
    return 2.0 * L * mu0 / (mu0 + mu) + (1.0 - L) * mu0


class _Roof:
    """A ridge z = -slope |x| along y (frame L): two planar facets, east one facing +x."""

    def __init__(self, slope: float) -> None:
        self.slope = slope

    def height(self, x, y, resolution_m: float = 0.05):
        return -self.slope * np.abs(np.asarray(x, dtype=float)) + 0.0 * np.asarray(y, dtype=float)

    def height_grid(self, grid):
        xx, yy = np.meshgrid(grid.x, grid.y)
        return self.height(xx, yy)


def _nadir(height: float, x: float = 0.0, y: float = 0.0, n_px: int = 64, fov: float = 40.0):
    cam = Camera.from_fov(n_px, n_px, fov)
    p = np.array([x, y, height])
    return cam, look_at(p, [x, y, 0.0], up=(0.0, 1.0, 0.0)), p


@pytest.mark.parametrize("phase_deg", [0.0, 30.0, 60.0])
def test_lunar_lambert_weight_is_mcewen_polynomial(phase_deg: float) -> None:
    # From the published coefficients: L(0) = 1, L(30) = 0.60838, L(60) = 0.41584.
    expected = {0.0: 1.0, 30.0: 0.60838, 60.0: 0.41584}[phase_deg]
    assert _mcewen(phase_deg) == pytest.approx(expected, abs=1e-12)
    assert lunar_lambert_weight(math.radians(phase_deg)) == pytest.approx(expected, abs=1e-12)


def test_sun_direction_azimuth_from_north_toward_east() -> None:
    # Frame L is x east, y north, z up: azimuth 90 deg is east, elevation 30 deg gives z = sin 30.
    np.testing.assert_allclose(sun_direction_l(90.0, 30.0), [math.sqrt(3) / 2, 0.0, 0.5], atol=1e-15)
    np.testing.assert_allclose(sun_direction_l(0.0, 0.0), [0.0, 1.0, 0.0], atol=1e-15)


def test_bare_sphere_image_follows_lunar_lambert() -> None:
    # Nadir view of the bare reference sphere: every pixel's ray meets z = sqrt(R^2 - x^2 - y^2) - R (the
    # hit point solved here by fixed-point iteration) and its brightness is the lunar-Lambert radiance
    # for the local normal, the Sun and the direction to the camera. The image must be that radiance
    # times one exposure factor, which auto-exposure sets so that the 99.5th percentile reads 0.8.
    cam, R_cw, p = _nadir(100.0, 3.0, -2.0)
    sun = sun_direction_l(120.0, 30.0)
    frame = render(Terrain(BARE), cam, R_cw, p, sun, sensor=NO_PSF)
    d = cam.rays_cam(cam.pixel_grid()) @ R_cw
    t = p[2] / -d[..., 2]
    for _ in range(4):
        q = p + t[..., None] * d
        t = (p[2] - (np.sqrt(R_MOON**2 - q[..., 0] ** 2 - q[..., 1] ** 2) - R_MOON)) / -d[..., 2]
    q = p + t[..., None] * d
    np.testing.assert_allclose(frame.hit_l, q, atol=1e-4)
    normal = (q + [0.0, 0.0, R_MOON]) / R_MOON
    to_cam = (p - q) / np.linalg.norm(p - q, axis=-1, keepdims=True)
    ratio = frame.image / _lunar_lambert(normal, sun, to_cam)
    assert ratio.max() / ratio.min() - 1.0 < 2e-4
    assert np.percentile(frame.image, 99.5) == pytest.approx(0.8, abs=1e-6)
    # the photometric pattern is not flat (the law has something to show): 10 % across the image
    assert frame.image.max() / frame.image.min() > 1.1


@pytest.mark.parametrize("sun_el_deg", [15.0, 30.0, 60.0])
def test_roof_facet_contrast_follows_lunar_lambert(sun_el_deg: float) -> None:
    # A ridge lit from the east: the east facet faces the Sun, the west one is turned away (its slope,
    # 11.3 deg, is below the Sun, so it is lit but darker). Brightness of both facets over the image,
    # relative to each other, must follow lunar-Lambert for the facet normals (n = (+-s, 0, 1)/|.|).
    s = 0.2
    cam, R_cw, p = _nadir(100.0)
    sun = sun_direction_l(90.0, sun_el_deg)
    frame = render(_Roof(s), cam, R_cw, p, sun, sensor=NO_PSF)
    d = cam.rays_cam(cam.pixel_grid()) @ R_cw
    q_east = p + (p[2] / (-d[..., 2] - s * d[..., 0]))[..., None] * d
    q_west = p + (p[2] / (-d[..., 2] + s * d[..., 0]))[..., None] * d
    east = q_east[..., 0] > 0
    q = np.where(east[..., None], q_east, q_west)
    n = np.where(east[..., None], [s, 0.0, 1.0], [-s, 0.0, 1.0]) / math.hypot(s, 1.0)
    to_cam = (p - q) / np.linalg.norm(p - q, axis=-1, keepdims=True)
    expected = _lunar_lambert(n, sun, to_cam)
    away = np.abs(q[..., 0]) > 3.0 * frame.grid_dx_m  # finite differences straddle the crest
    assert east[away].sum() > 1000 and (~east[away]).sum() > 1000
    ratio = frame.image[away] / expected[away]
    assert ratio.max() / ratio.min() - 1.0 < 2e-4


@pytest.mark.parametrize(
    ("az", "el"), [(270.0, 20.0), (270.0, 50.0), (240.0, 35.0), (300.0, 20.0), (90.0, 35.0)]
)
def test_shadow_of_a_step_has_length_h_over_tan_el(az: float, el: float) -> None:
    # A plateau of height h ends in a vertical wall along y; the Sun shines over it at elevation e and
    # azimuth at angle phi from the wall's normal. The wall's shadow reaches h cos(phi) / tan(e) from
    # the wall (plane geometry of the shadow line). The edge of the plateau is known to one cell.
    n, dx, h, iw = 160, 0.5, 10.0, 40
    z = np.zeros((n, n))
    z[:, :iw] = h
    phi = math.radians(az - 270.0)
    if math.sin(math.radians(az)) > 0:  # Sun in the east: mirror the scene
        z = z[:, ::-1].copy()
        phi = math.radians(az - 90.0)
    lit = _shadow_mask(z, dx, sun_direction_l(az, el))
    rows = lit[60:100]
    if math.sin(math.radians(az)) > 0:
        rows = rows[:, ::-1]
    shadow_m = (1.0 - rows[:, iw:]).sum(axis=1) * dx
    expected = h * math.cos(phi) / math.tan(math.radians(el))
    np.testing.assert_allclose(shadow_m, expected, atol=1.5 * dx)
    assert rows[:, : iw - 1].min() == 1.0  # the plateau is lit
    # and the plain beyond the shadow (the outermost cells, where bilinear resampling meets the outside
    # of the grid, are left out)
    assert rows[:, iw + int(expected / dx) + 3 : -2].min() == 1.0


def test_sun_at_zenith_casts_no_shadow() -> None:
    z = np.random.default_rng(0).normal(0.0, 5.0, (50, 60))
    np.testing.assert_array_equal(_shadow_mask(z, 1.0, np.array([0.0, 0.0, 1.0])), 1.0)


def test_nadir_footprint_and_gsd() -> None:
    # A nadir camera at height H: the rays through the outermost pixel centres, (W - 1)/2 px from the
    # centre, meet the ground at H (W - 1) / (2 f) = H tan(fov/2) (W - 1)/W; one pixel is H / f wide.
    H, fov, W, Hpx = 250.0, 50.0, 101, 81
    cam = Camera.from_fov(W, Hpx, fov)
    p = np.array([10.0, -20.0, H + 3.0])
    R_cw = look_at(p, [10.0, -20.0, 0.0], up=(0.0, 1.0, 0.0))
    x0, x1, y0, y1, gsd = ground_footprint(cam, R_cw, p, 3.0)
    half_x = H * math.tan(math.radians(fov / 2)) * (W - 1) / W
    half_y = H * math.tan(math.radians(fov / 2)) * (Hpx - 1) / W
    np.testing.assert_allclose(
        [x0, x1, y0, y1], [10.0 - half_x, 10.0 + half_x, -20.0 - half_y, -20.0 + half_y]
    )
    assert gsd == pytest.approx(H / cam.fx, rel=1e-12)


def test_tilted_footprint_far_and_near_edges() -> None:
    # Camera pitched by theta toward north: the top and bottom image rows look theta +- atan(cy / f) off
    # nadir and, the image x axis being horizontal, each row meets the ground on one east-west line.
    H, theta = 500.0, math.radians(20.0)
    cam = Camera.from_fov(64, 48, 30.0)
    p = np.array([0.0, 0.0, H])
    R_cw = look_at(p, [0.0, H * math.tan(theta), 0.0], up=(0.0, 1.0, 0.0))
    _, _, y0, y1, _ = ground_footprint(cam, R_cw, p, 0.0)
    half = math.atan(cam.cy / cam.fy)
    assert y1 == pytest.approx(H * math.tan(theta + half), rel=1e-12)
    assert y0 == pytest.approx(H * math.tan(theta - half), rel=1e-12)


def test_camera_below_or_looking_up_raises() -> None:
    cam, R_cw, p = _nadir(100.0)
    with pytest.raises(InputError, match="camera height"):
        ground_footprint(cam, R_cw, p, 120.0)
    up = look_at(p, p + [0.0, 0.0, 10.0], up=(0.0, 1.0, 0.0))
    with pytest.raises(InputError, match="horizon"):
        ground_footprint(cam, up, p, 0.0)
    terrain = Terrain(BARE)
    with pytest.raises(InputError, match="below or on the terrain"):
        render(terrain, cam, R_cw, np.array([0.0, 0.0, -5.0]), sun_direction_l(90.0, 30.0))
    with pytest.raises(InputError, match="NaN"):
        render(terrain, cam, R_cw, np.array([0.0, np.nan, 100.0]), sun_direction_l(90.0, 30.0))


def test_shot_and_read_noise_statistics() -> None:
    # Sensor physics: a pixel of signal S (fraction of full well FW) collects Poisson(S FW) electrons plus
    # Gaussian read noise rn and is quantised to 2^bits - 1 levels, so the noisy minus the noiseless image
    # has variance (S FW + rn^2) / FW^2 + q^2 / 12 with q = 1 / (2^bits - 1).
    cam, R_cw, p = _nadir(100.0)
    sun = sun_direction_l(200.0, 40.0)
    sensor = SensorSpec(full_well_e=20_000.0, read_noise_e=15.0, bits=10, psf_sigma_px=0.0)
    clean = render(Terrain(BARE), cam, R_cw, p, sun, sensor=sensor).image.astype(float)
    noisy = render(Terrain(BARE), cam, R_cw, p, sun, sensor=sensor, rng=np.random.default_rng(5)).image
    q = 1.0 / 1023.0
    var = (clean * 20_000.0 + 15.0**2) / 20_000.0**2 + q**2 / 12.0
    z = (noisy - clean) / np.sqrt(var)
    # 4096 pixels: the mean of z^2 has a standard error of sqrt(2 / 4096) = 0.022
    assert abs(np.mean(z**2) - 1.0) < 0.09
    assert abs(np.mean(z)) < 4.0 / 64.0


@pytest.mark.parametrize(("bits", "dtype"), [(8, np.uint8), (12, np.uint16), (16, np.uint16)])
def test_frame_to_uint_bit_depths(bits: int, dtype: type) -> None:
    # n bits hold 0 .. 2^n - 1: 0 -> 0, 1 -> 2^n - 1, 0.25 -> round(0.25 (2^n - 1)).
    cam = Camera.from_fov(4, 1, 40.0)
    img = np.array([[0.0, 0.25, 1.0, 0.5]], dtype=np.float32)
    f = Frame(
        img, cam, np.eye(3), np.zeros(3), np.array([0.0, 0.0, 1.0]), 1.0, np.zeros((1, 4, 3), np.float32)
    )
    top = 2**bits - 1
    out = f.to_uint(bits)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, [[0, round(0.25 * top), top, round(0.5 * top)]])


@pytest.mark.parametrize("kwargs", [{"bits": 0}, {"bits": 17}, {"full_well_e": 0.0}, {"read_noise_e": -1.0}])
def test_bad_sensor_raises(kwargs: dict) -> None:
    with pytest.raises(InputError, match="sensor"):
        SensorSpec(**kwargs)


@pytest.mark.parametrize("fov", [0.0, -5.0])
def test_non_positive_fov_raises(fov: float) -> None:
    with pytest.raises(InputError, match="field of view"):
        Camera.from_fov(64, 64, fov)
