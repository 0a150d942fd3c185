"""Pinhole camera geometry with optional Brown-Conrady distortion.

Frames: the camera frame has x to the image right, y to the image bottom and z along the boresight
(the OpenCV convention). Pixel coordinates (u, v) have u to the right and v down with pixel centres at
integer coordinates, so the image centre of a W x H image is ((W - 1)/2, (H - 1)/2).

A pose is (R_cw, p_w): the rotation from the world frame to the camera frame and the camera position in
the world frame, so ``x_cam = R_cw @ (x_w - p_w)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from kizuna.errors import InputError

__all__ = ["Camera"]


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: image size (px), focal lengths and principal point (px), distortion.

    ``dist`` holds Brown-Conrady coefficients (k1, k2, p1, p2, k3) on normalised coordinates.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    dist: tuple[float, float, float, float, float] = field(default=(0.0, 0.0, 0.0, 0.0, 0.0))

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise InputError(f"camera size {self.width}x{self.height} px: expected positive width and height")
        if not (self.fx > 0 and self.fy > 0):
            raise InputError(f"camera focal length fx={self.fx}, fy={self.fy} px: expected positive values")

    @classmethod
    def from_fov(
        cls,
        width: int,
        height: int,
        fov_deg: float,
        dist: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0),
    ) -> Camera:
        """Build a camera with square pixels from its horizontal field of view (deg) and size (px)."""
        if not (0.0 < fov_deg < 180.0) or not math.isfinite(fov_deg):
            raise InputError(f"camera field of view {fov_deg} deg: expected a value in (0, 180)")
        f = 0.5 * width / math.tan(math.radians(fov_deg) / 2.0)
        return cls(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0, tuple(dist))

    @property
    def K(self) -> NDArray[np.float64]:
        """Return the 3x3 intrinsic matrix (px)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def has_distortion(self) -> bool:
        """Return True when any distortion coefficient is non-zero."""
        return any(c != 0.0 for c in self.dist)

    @property
    def fov_x_rad(self) -> float:
        """Return the horizontal field of view (rad)."""
        return 2.0 * math.atan(0.5 * self.width / self.fx)

    def scaled(self, factor: float) -> Camera:
        """Return the same camera with the image resampled by ``factor`` (e.g. 0.5 halves the size)."""
        w = max(1, int(round(self.width * factor)))
        h = max(1, int(round(self.height * factor)))
        return replace(
            self,
            width=w,
            height=h,
            fx=self.fx * factor,
            fy=self.fy * factor,
            cx=(self.cx + 0.5) * factor - 0.5,
            cy=(self.cy + 0.5) * factor - 0.5,
        )

    # -- normalised <-> distorted ------------------------------------------------------------------
    def distort(self, xn: ArrayLike) -> NDArray[np.float64]:
        """Apply lens distortion to normalised image coordinates (x/z, y/z), shape (..., 2)."""
        xn = np.asarray(xn, dtype=float)
        if not self.has_distortion:
            return xn
        k1, k2, p1, p2, k3 = self.dist
        x, y = xn[..., 0], xn[..., 1]
        r2 = x * x + y * y
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
        yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
        return np.stack([xd, yd], -1)

    def undistort(self, xd: ArrayLike, iterations: int = 20) -> NDArray[np.float64]:
        """Invert :meth:`distort` by fixed-point iteration (normalised coordinates, shape (..., 2))."""
        xd = np.asarray(xd, dtype=float)
        if not self.has_distortion:
            return xd
        k1, k2, p1, p2, k3 = self.dist
        x, y = xd[..., 0].copy(), xd[..., 1].copy()
        for _ in range(iterations):
            r2 = x * x + y * y
            radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
            dx = 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
            dy = p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
            x = (xd[..., 0] - dx) / radial
            y = (xd[..., 1] - dy) / radial
        return np.stack([x, y], -1)

    # -- pixels <-> rays ---------------------------------------------------------------------------
    def project_cam(self, x_cam: ArrayLike) -> NDArray[np.float64]:
        """Project camera-frame points (m, shape (..., 3)) to pixels (..., 2); NaN behind the camera."""
        x_cam = np.asarray(x_cam, dtype=float)
        z = x_cam[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            xn = x_cam[..., :2] / np.where(z > 0, z, np.nan)[..., None]
        xd = self.distort(xn)
        return np.stack([self.fx * xd[..., 0] + self.cx, self.fy * xd[..., 1] + self.cy], -1)

    def project(self, x_w: ArrayLike, R_cw: ArrayLike, p_w: ArrayLike) -> NDArray[np.float64]:
        """Project world points (m, shape (..., 3)) to pixels for the pose (R_cw, p_w)."""
        x_cam = (np.asarray(x_w, dtype=float) - np.asarray(p_w, dtype=float)) @ np.asarray(R_cw).T
        return self.project_cam(x_cam)

    def rays_cam(self, uv: ArrayLike) -> NDArray[np.float64]:
        """Return unit ray directions in the camera frame through pixels uv (shape (..., 2))."""
        uv = np.asarray(uv, dtype=float)
        xd = np.stack([(uv[..., 0] - self.cx) / self.fx, (uv[..., 1] - self.cy) / self.fy], -1)
        xn = self.undistort(xd)
        d = np.concatenate([xn, np.ones(xn.shape[:-1] + (1,))], -1)
        return d / np.linalg.norm(d, axis=-1, keepdims=True)

    def pixel_grid(self) -> NDArray[np.float64]:
        """Return the (height, width, 2) array of pixel-centre coordinates (u, v)."""
        u, v = np.meshgrid(np.arange(self.width, dtype=float), np.arange(self.height, dtype=float))
        return np.stack([u, v], -1)

    def in_image(self, uv: ArrayLike, margin_px: float = 0.0) -> NDArray[np.bool_]:
        """Return True where pixel coordinates lie inside the image by at least margin_px."""
        uv = np.asarray(uv, dtype=float)
        u, v = uv[..., 0], uv[..., 1]
        return (
            (u >= -0.5 + margin_px)
            & (u <= self.width - 0.5 - margin_px)
            & (v >= -0.5 + margin_px)
            & (v <= self.height - 0.5 - margin_px)
        )
