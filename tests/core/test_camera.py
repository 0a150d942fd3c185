"""Tests of kizuna.core.camera: pinhole projection, Brown-Conrady distortion, pixel conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kizuna.core.camera import Camera
from kizuna.core.rotations import look_at
from kizuna.errors import InputError

# A moderate barrel lens with decentring terms (coefficient sizes typical of machine-vision lenses).
DIST = (-0.12, 0.03, 8e-4, -5e-4, -0.004)


def test_from_fov_focal_length_is_definition() -> None:
    # Pinhole geometry: half the image width subtends half the field of view, f = (W / 2) / tan(fov / 2).
    cam = Camera.from_fov(640, 480, 60.0)
    f = 320.0 / math.tan(math.radians(30.0))  # 554.2562584220407 px
    assert cam.fx == pytest.approx(f, rel=1e-14)
    assert cam.fy == pytest.approx(f, rel=1e-14)
    assert cam.fov_x_rad == pytest.approx(math.radians(60.0), rel=1e-14)
    # pixel centres at integers: the image centre of a W x H image is ((W - 1)/2, (H - 1)/2)
    assert (cam.cx, cam.cy) == (319.5, 239.5)
    np.testing.assert_array_equal(cam.K, [[f, 0.0, 319.5], [0.0, f, 239.5], [0.0, 0.0, 1.0]])


def test_boresight_projects_to_principal_point() -> None:
    cam = Camera(320, 240, 400.0, 410.0, 161.3, 118.7, DIST)
    np.testing.assert_allclose(cam.project_cam([0.0, 0.0, 25.0]), [161.3, 118.7], atol=1e-12)
    np.testing.assert_allclose(cam.rays_cam([161.3, 118.7]), [0.0, 0.0, 1.0], atol=1e-15)


def test_projection_by_hand() -> None:
    # Pinhole without distortion: u = fx X / Z + cx, v = fy Y / Z + cy.
    cam = Camera(100, 80, 200.0, 220.0, 49.5, 39.5)
    np.testing.assert_allclose(cam.project_cam([1.0, -2.0, 10.0]), [69.5, -4.5], atol=1e-12)
    # points behind the camera have no image
    assert np.all(np.isnan(cam.project_cam([1.0, 1.0, -3.0])))


def test_distortion_terms_by_hand() -> None:
    # Brown-Conrady (as in the OpenCV documentation): radial x (1 + k1 r^2 + k2 r^4 + k3 r^6),
    # tangential dx = 2 p1 x y + p2 (r^2 + 2 x^2), dy = p1 (r^2 + 2 y^2) + 2 p2 x y.
    x, y = 0.3, 0.4  # r^2 = 0.25
    radial = Camera(10, 10, 1.0, 1.0, 0.0, 0.0, (0.1, 0.0, 0.0, 0.0, 0.0)).distort([x, y])
    np.testing.assert_allclose(radial, [0.3075, 0.41], atol=1e-15)  # factor 1 + 0.1 * 0.25 = 1.025
    k3 = Camera(10, 10, 1.0, 1.0, 0.0, 0.0, (0.0, 0.0, 0.0, 0.0, 1.0)).distort([x, y])
    np.testing.assert_allclose(k3, [0.3 * (1 + 0.25**3), 0.4 * (1 + 0.25**3)], atol=1e-15)
    p1 = Camera(10, 10, 1.0, 1.0, 0.0, 0.0, (0.0, 0.0, 0.01, 0.0, 0.0)).distort([x, y])
    np.testing.assert_allclose(p1, [0.3 + 0.0024, 0.4 + 0.01 * (0.25 + 0.32)], atol=1e-15)
    p2 = Camera(10, 10, 1.0, 1.0, 0.0, 0.0, (0.0, 0.0, 0.0, 0.01, 0.0)).distort([x, y])
    np.testing.assert_allclose(p2, [0.3 + 0.01 * (0.25 + 0.18), 0.4 + 0.0024], atol=1e-15)


@pytest.mark.parametrize("dist", [(0.0, 0.0, 0.0, 0.0, 0.0), DIST])
def test_rays_project_round_trip(dist: tuple) -> None:
    # Round trip pixel -> ray -> pixel over the whole image, corners included.
    cam = Camera.from_fov(160, 120, 70.0, dist)
    uv = cam.pixel_grid().reshape(-1, 2)
    rays = cam.rays_cam(uv)
    np.testing.assert_allclose(np.linalg.norm(rays, axis=-1), 1.0, atol=1e-15)
    np.testing.assert_allclose(cam.project_cam(7.5 * rays), uv, atol=1e-8)


def test_distortion_round_trip_normalised() -> None:
    cam = Camera.from_fov(160, 120, 70.0, DIST)
    xn = np.random.default_rng(3).uniform(-0.6, 0.6, (500, 2))
    np.testing.assert_allclose(cam.undistort(cam.distort(xn)), xn, atol=1e-12)


def test_world_projection_matches_camera_frame() -> None:
    # x_cam = R_cw (x_w - p_w); a world point and its projection back along the pixel's ray agree.
    cam = Camera.from_fov(200, 150, 50.0, DIST)
    p_w = np.array([5.0, -3.0, 120.0])
    R_cw = look_at(p_w, [10.0, 4.0, 0.0], up=(0.0, 1.0, 0.0))
    x_w = np.array([[12.0, 2.0, 1.0], [0.0, 0.0, 0.0], [20.0, 15.0, -3.0]])
    uv = cam.project(x_w, R_cw, p_w)
    np.testing.assert_allclose(uv, cam.project_cam((x_w - p_w) @ R_cw.T), atol=1e-12)
    ray_w = cam.rays_cam(uv) @ R_cw
    d = (x_w - p_w) / np.linalg.norm(x_w - p_w, axis=-1, keepdims=True)
    np.testing.assert_allclose(ray_w, d, atol=1e-10)


def test_nadir_look_at_puts_east_right_and_north_up() -> None:
    # Camera 100 m above the origin of a frame (x east, y north, z up) looking down with north up.
    cam = Camera.from_fov(101, 101, 40.0)
    p_w = np.array([0.0, 0.0, 100.0])
    R_cw = look_at(p_w, [0.0, 0.0, 0.0], up=(0.0, 1.0, 0.0))
    east, north, origin = cam.project(
        np.array([[10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 0.0]]), R_cw, p_w
    )
    np.testing.assert_allclose(origin, [50.0, 50.0], atol=1e-12)
    # 10 m at 100 m range is 0.1 f pixels away from the centre (pinhole)
    off = 0.1 * cam.fx
    np.testing.assert_allclose(east, [50.0 + off, 50.0], atol=1e-9)
    np.testing.assert_allclose(north, [50.0, 50.0 - off], atol=1e-9)


def test_scaled_camera_keeps_pixel_edges() -> None:
    # Resampling by a factor maps pixel-edge coordinates (u + 0.5) by that factor: u' = (u + 0.5) f - 0.5.
    cam = Camera(400, 300, 350.0, 340.0, 201.0, 148.0, DIST)
    half = cam.scaled(0.5)
    assert (half.width, half.height) == (200, 150)
    x = np.array([[0.3, -0.2, 4.0], [-1.0, 0.7, 2.0]])
    np.testing.assert_allclose(half.project_cam(x), (cam.project_cam(x) + 0.5) * 0.5 - 0.5, atol=1e-12)
    # the field of view does not change
    assert half.fov_x_rad == pytest.approx(cam.fov_x_rad, rel=1e-14)


def test_pixel_grid_and_in_image() -> None:
    cam = Camera.from_fov(7, 5, 60.0)
    g = cam.pixel_grid()
    assert g.shape == (5, 7, 2)
    np.testing.assert_array_equal(g[0, 0], [0.0, 0.0])
    np.testing.assert_array_equal(g[4, 6], [6.0, 4.0])
    # pixel (i, j) covers [i - 0.5, i + 0.5]: the image spans [-0.5, W - 0.5] x [-0.5, H - 0.5]
    uv = np.array([[-0.5, -0.5], [6.5, 4.5], [-0.51, 2.0], [3.0, 4.51], [3.0, 2.0]])
    np.testing.assert_array_equal(cam.in_image(uv), [True, True, False, False, True])
    np.testing.assert_array_equal(cam.in_image(uv, margin_px=1.0), [False, False, False, False, True])


@pytest.mark.parametrize("fov", [0.0, -10.0, 180.0, 200.0, math.nan, math.inf])
def test_bad_fov_raises(fov: float) -> None:
    with pytest.raises(InputError, match="field of view"):
        Camera.from_fov(64, 64, fov)


@pytest.mark.parametrize(
    ("w", "h", "fx", "fy"),
    [(0, 10, 1.0, 1.0), (10, -1, 1.0, 1.0), (10, 10, 0.0, 1.0), (10, 10, 1.0, math.nan)],
)
def test_bad_camera_raises(w: int, h: int, fx: float, fy: float) -> None:
    with pytest.raises(InputError):
        Camera(w, h, fx, fy, 0.0, 0.0)
