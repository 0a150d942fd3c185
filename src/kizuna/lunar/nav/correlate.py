"""Image-to-map correlation fix: match the camera image against a map image rendered for the predicted pose.

At the lunar south pole the Sun stays within a few degrees of the horizon: crater rims are mostly in
shadow and too few craters are detected for a crater fix. The SLIM team matched the descent image
directly against a map image instead (Maehara et al. 2021). Here the onboard map is a DEM of the
landing area at a given post spacing; for each image the expected view is rendered from that DEM for
the filter's predicted pose and the current Sun (the lunar-Lambert shading and cast shadows of
``render.py``, no sensor noise). Then:

1. the camera image is binned to the map's scale (the DEM cannot predict finer detail);
2. pixels whose light depends on terrain beyond the rendered area (long shadows at grazing Sun) are
   masked out of both images;
3. a coarse search by masked normalised cross-correlation (NCC) over the shifts that the predicted pose
   covariance allows (``search_sigma`` sigma of the predicted image shift);
4. weak or ambiguous peaks are refused: a low peak, a peak at the edge of the search range, or a second
   distinct peak close in height to the first;
5. sub-pixel refinement: a parabola through the peak, then robust Gauss-Newton (Lucas-Kanade)
   iterations of a shift with gain and offset; a shift of more than a few pixels is measured again
   against a map image rendered from the position it implies, so that both views share perspective;
6. the four quadrants of the image are matched on their own: when one disagrees with what the whole
   image's shift implies for it, the fix is refused (a shadow edge the DEM places wrongly, say);
7. the covariance of the shift: a block "sandwich" estimate from the residuals of the fit (residuals
   of neighbouring pixels are correlated, blocks of pixels much less), scaled, plus a floor and a part
   of the quadrants' scatter, calibrated on rendered frames with known truth (see ``CorrelationSpec``).

The image-registration steps (3-5, 7) are in ``registration.py``. The result is the shift (px) between
what the camera sees and what the map predicts, measured around the textured part of the image, with
its Jacobian with respect to the pose error: the navigation filter uses it as a two-dimensional
measurement that carries the attitude's own uncertainty.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from kizuna.core.camera import Camera
from kizuna.core.rotations import quat_to_matrix, rotvec_to_quat
from kizuna.errors import InputError
from kizuna.lunar.nav.registration import (
    bin_image,
    information_centre,
    ncc_surface,
    parabolic_peak,
    peak_analysis,
    refine_shift,
)
from kizuna.lunar.nav.render import _raycast, _shade_grid, ground_footprint
from kizuna.lunar.nav.terrain import Grid, Terrain

__all__ = [
    "CorrelationSpec",
    "OnboardDem",
    "ShiftFix",
    "CorrelationOutcome",
    "correlation_fix",
    "binned_camera",
    "render_map_image",
    "shift_jacobian",
    "horizontal_position_from_shift",
]


@dataclass(frozen=True)
class CorrelationSpec:
    """Settings of the correlation fix (pixels are those of the binned image unless the name says so).

    ``map_resolution_m``: post spacing of the onboard DEM (m; 2 m is the post spacing of LROC NAC stereo
    terrain models). ``pixel_per_post``: the binned image's ground pixel in DEM posts (the camera image
    is binned to at least this scale, and to at most ``max_image_px`` on a side); ``min_image_px``: the
    smallest binned image that gives a fix. ``search_sigma``: the coarse search covers this many sigma
    of the predicted shift; ``max_search_px``: wider searches give no fix. ``smooth_px``: Gaussian
    smoothing of both images. ``min_peak``: lowest accepted NCC peak; ``max_second_ratio``: a second
    distinct NCC peak above this fraction of the first refuses the fix. ``repeat_shift_px``: larger
    shifts are measured again from the position they imply. ``min_reliable``: the least fraction of the
    view not masked for far shadows. ``grid_post_fraction``: the map image's height grid spacing in DEM
    posts (at grazing Sun the length of a cast shadow depends on the grid). ``block_px``: block size of
    the sandwich covariance. Quadrants with less than ``quadrant_min_energy`` of the image's gradient
    energy are not checked; a quadrant whose disagreement exceeds ``quadrant_chi2`` (chi-square, 2 dof,
    its own covariance plus ``quadrant_floor_px``) refuses the fix. So do views with less than
    ``min_lit_fraction`` of their pixels lit, and views whose texture runs along one direction (smaller
    to larger eigenvalue of the gradient structure tensor below ``min_isotropy``): in the polar
    campaign, fixes on a lit corner of 1-2 % of the view, or on a single shadow edge, were off by
    1-2 px while their residuals promised 0.1 px.

    Covariance of the shift: ``sigma_scale``^2 times the sandwich estimate, plus ``sigma_floor_px``^2,
    plus ``unexplained_px``^2 times the fraction of the image's variance the fitted map image leaves
    unexplained (1 - r^2: detail finer than the DEM, and its shadows, shift the match as a whole, which
    residual blocks cannot show), plus ``quadrant_scatter_weight`` times the quadrants' mean square
    disagreement over their number.
    Calibration: 80 rendered frames with known truth (terrain seeds 550-629, Sun 0.5-3 deg, 250 m to
    14 km, camera 1024 x 1024 px with read noise and blur drawn as in the campaigns, prediction errors
    drawn from the stated covariance) gave 71 fixes, shift errors of 0.06 px RMS; with the covariance
    above the normalised squared errors have mean 0.96 (2 for a chi-square of 2 dof; conservative on
    purpose, as the polar campaign's low-altitude fixes erred more than these frames), none above the
    95 % quantile; the one fix off by more than 0.3 px (3.5 px) was refused by the quadrant check.
    """

    map_resolution_m: float = 2.0
    pixel_per_post: float = 1.0
    min_image_px: int = 40
    search_sigma: float = 4.0
    max_search_px: int = 256
    smooth_px: float = 0.7
    min_peak: float = 0.4
    max_second_ratio: float = 0.8
    lk_iterations: int = 12
    max_image_px: int = 384
    repeat_shift_px: float = 3.0
    min_reliable: float = 0.3
    grid_post_fraction: float = 0.25
    block_px: int = 16
    quadrant_min_energy: float = 0.1
    quadrant_chi2: float = 18.4
    quadrant_floor_px: float = 0.3
    quadrant_scatter_weight: float = 0.25
    psf_sigma_px: float = 0.5
    sigma_scale: float = 1.4
    sigma_floor_px: float = 0.05
    unexplained_px: float = 0.3
    min_lit_fraction: float = 0.05
    min_isotropy: float = 0.1

    def __post_init__(self) -> None:
        for name in ("map_resolution_m", "pixel_per_post", "search_sigma", "sigma_scale"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise InputError(f"correlation {name}={v}: expected a positive finite value")
        if self.min_image_px < 16 or self.max_search_px < 2 or self.block_px < 2:
            raise InputError("correlation min_image_px >= 16, max_search_px >= 2, block_px >= 2 expected")
        if not (0.0 < self.min_peak < 1.0 and 0.0 < self.max_second_ratio <= 1.0):
            raise InputError("correlation min_peak in (0, 1) and max_second_ratio in (0, 1] expected")


class OnboardDem:
    """The onboard DEM of a terrain: heights (m, frame L) without features finer than its post spacing.

    It offers the two height queries the renderer uses, so ``render`` draws the map's view of the
    terrain. Grids finer than the posts are filled by cubic interpolation of the post grid, as a map
    image rendered from a DEM product would be. ``offset_m`` (x, y, z in frame L, m) is the map's
    registration error: the DEM shows the terrain displaced by it (the crater map's ``tie_offset_m``;
    both come from the same map product).
    """

    def __init__(self, terrain: Terrain, resolution_m: float, offset_m: ArrayLike = (0.0, 0.0, 0.0)) -> None:
        if not (math.isfinite(resolution_m) and resolution_m > 0):
            raise InputError(f"DEM resolution {resolution_m} m: expected a positive finite post spacing")
        off = np.asarray(offset_m, dtype=float)
        if off.shape != (3,) or not np.all(np.isfinite(off)):
            raise InputError(f"DEM offset {offset_m}: expected three finite values (m)")
        self.terrain = terrain
        self.resolution_m = float(resolution_m)
        self.offset_m = off

    def height(self, x: ArrayLike, y: ArrayLike, resolution_m: float = 0.0) -> NDArray[np.float64]:
        """Return the DEM's surface z (m, frame L) at points (x, y) (m, frame L)."""
        ox, oy, oz = self.offset_m
        x = np.asarray(x, dtype=float) - ox
        y = np.asarray(y, dtype=float) - oy
        return self.terrain.height(x, y, resolution_m=max(resolution_m, self.resolution_m)) + oz

    def height_grid(self, grid: Grid) -> NDArray[np.float64]:
        """Return the DEM's surface z (m, frame L) on a regular grid, array (ny, nx)."""
        ox, oy, oz = self.offset_m
        grid = replace(grid, x0=grid.x0 - ox, y0=grid.y0 - oy)
        r = self.resolution_m
        if grid.dx >= r:
            return self.terrain.height_grid(grid) + oz
        x1 = grid.x0 + grid.dx * (grid.nx - 1)
        y1 = grid.y0 + grid.dx * (grid.ny - 1)
        gx0 = math.floor(grid.x0 / r) * r - r
        gy0 = math.floor(grid.y0 / r) * r - r
        coarse = Grid.covering(gx0, x1 + 2 * r, gy0, y1 + 2 * r, r)
        zc = self.terrain.height_grid(coarse)
        ci = (grid.x - coarse.x0) / r
        cj = (grid.y - coarse.y0) / r
        jj, ii = np.meshgrid(cj, ci, indexing="ij")
        return ndimage.map_coordinates(zc, [jj, ii], order=3, mode="nearest") + oz


@dataclass(frozen=True)
class ShiftFix:
    """A correlation fix: the image shift around the textured part of the image (px of ``camera``).

    ``shift_px`` = where a ground point appears in the camera image minus where the map image of the
    predicted pose shows it (u right, v down), for the map point ``ground_l`` (m, frame L) at the
    gradient-weighted centre of the matched pixels. ``cov_px2`` is its 2x2 covariance. To first order
    ``shift = H_theta @ dtheta + H_r @ dr`` with dr = true minus predicted position (m, frame L) and
    dtheta the attitude error, a small rotation in frame L (R_cw_true = R_cw_pred Exp(dtheta)^T, the
    convention of ``pose.py`` and of the navigation filter).
    """

    shift_px: NDArray[np.float64]
    cov_px2: NDArray[np.float64]
    H_theta: NDArray[np.float64]
    H_r: NDArray[np.float64]
    camera: Camera
    ground_l: NDArray[np.float64]
    peak: float
    second_ratio: float
    fit_corr: float


@dataclass
class CorrelationOutcome:
    """Result of one correlation fix: the fix (or None), why not, scales (m) and timings (s)."""

    fix: ShiftFix | None
    reason: str
    gsd_m: float  # ground pixel of the camera image at its centre
    work_gsd_m: float  # ground pixel of the binned image that was matched
    bin_factor: int
    latency_s: float
    timings_s: dict[str, float] = field(default_factory=dict)
    map_image: NDArray[np.float32] | None = None


def binned_camera(camera: Camera, factor: int) -> Camera:
    """Return the camera whose pixels are factor x factor blocks of the given camera's (``bin_image``)."""
    return replace(
        camera,
        width=camera.width // factor,
        height=camera.height // factor,
        fx=camera.fx / factor,
        fy=camera.fy / factor,
        cx=(camera.cx + 0.5) / factor - 0.5,
        cy=(camera.cy + 0.5) / factor - 0.5,
    )


def _rot(phi: NDArray) -> NDArray[np.float64]:
    return quat_to_matrix(rotvec_to_quat(phi))


def shift_jacobian(camera: Camera, R_cw: ArrayLike, p_w: ArrayLike, X_l: ArrayLike) -> NDArray[np.float64]:
    """Return the (2, 6) derivative of the pixel of ground point X_l (m, L) w.r.t. [dtheta (rad), dr (m)].

    The pose error is that of ``ShiftFix``: R_cw_true = R_cw Exp(dtheta)^T, p_true = p_w + dr (frame L);
    central differences of the projection.
    """
    R = np.asarray(R_cw, dtype=float)
    p = np.asarray(p_w, dtype=float)
    X = np.asarray(X_l, dtype=float)
    J = np.empty((2, 6))
    for i in range(3):
        e = np.zeros(3)
        e[i] = 1e-6
        up = camera.project(X, R @ _rot(e).T, p)
        um = camera.project(X, R @ _rot(-e).T, p)
        J[:, i] = (up - um) / 2e-6
        e[i] = 0.05
        up = camera.project(X, R, p + e)
        um = camera.project(X, R, p - e)
        J[:, 3 + i] = (up - um) / 0.1
    return J


def _ground_on_plane(camera: Camera, R_cw: NDArray, p_w: NDArray, z_m: float) -> NDArray[np.float64]:
    """Return the point of the plane z = z_m (m, L) seen at the principal point."""
    d = np.asarray(R_cw).T @ np.array([0.0, 0.0, 1.0])
    if d[2] >= -1e-3:
        raise InputError("camera boresight at or above the horizon: expected a downward-looking camera")
    return p_w + d * ((p_w[2] - z_m) / -d[2])


def _map_point(hit_l: NDArray, u_xy: NDArray) -> NDArray[np.float64]:
    """The map point (m, L) at pixel u_xy of a map image's ground-point array (H, W, 3), bilinear."""
    return np.array(
        [
            ndimage.map_coordinates(hit_l[..., i], [[u_xy[1]], [u_xy[0]]], order=1, mode="nearest")[0]
            for i in range(3)
        ]
    )


def _subimage_check(
    search: NDArray,
    template: NDArray,
    offset: NDArray,
    centre: NDArray,
    predict: Callable[[NDArray], NDArray],
    spec: CorrelationSpec,
    search_mask: NDArray,
    template_mask: NDArray,
) -> tuple[float, NDArray[np.float64], int]:
    """Compare the shifts of the four quadrants around ``centre`` with what the whole image's shift implies.

    ``predict(c)`` gives the offset (px) that the whole image's position offset implies at template
    pixel c (in an oblique view a position error moves near and far parts of the image differently).
    Returns the largest chi-square of a quadrant's disagreement (covariance: its own, scaled, plus
    ``quadrant_floor_px``), the scatter covariance of the disagreements (px^2) and the number of
    quadrants with texture enough to measure.
    """
    h, w = template.shape
    cx = int(np.clip(round(centre[0]), 8, w - 8))
    cy = int(np.clip(round(centre[1]), 8, h - 8))
    gy, gx = np.gradient(template)
    e = (gx * gx + gy * gy) * template_mask
    total = float(e.sum())
    worst, diffs = 0.0, []
    for y0, y1, x0, x1 in ((0, cy, 0, cx), (0, cy, cx, w), (cy, h, 0, cx), (cy, h, cx, w)):
        if float(e[y0:y1, x0:x1].sum()) < spec.quadrant_min_energy * total:
            continue
        q, mq = template[y0:y1, x0:x1], template_mask[y0:y1, x0:x1]
        c_q = information_centre(q, mq) + (x0, y0)
        start = predict(c_q) + (x0, y0)  # offset of the quadrant's own origin
        d_q, cv_q, _ = refine_shift(
            search, q, start, spec.lk_iterations, spec.block_px, search_mask=search_mask, template_mask=mq
        )
        if not np.all(np.isfinite(cv_q)):
            continue
        dd = d_q - start
        cv = spec.sigma_scale**2 * cv_q + spec.quadrant_floor_px**2 * np.eye(2)
        worst = max(worst, float(dd @ np.linalg.solve(cv, dd)))
        diffs.append(dd)
    D = np.array(diffs).reshape(-1, 2)
    scatter = D.T @ D / max(len(D), 1)
    return worst, scatter, len(D)


def render_map_image(
    dem: OnboardDem,
    camera: Camera,
    R_cw: ArrayLike,
    p_w: ArrayLike,
    sun_dir_l: ArrayLike,
    grid_dx_m: float,
    margin_px: tuple[int, int] = (0, 0),
    psf_sigma_px: float = 0.5,
    max_grid_cells: int = 3_000_000,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Render the DEM's view for a pose (frame L, m): radiance (H, W), ground points (H, W, 3), reliability.

    The renderer's own shading and shadows (``render.py``) on a height grid of spacing ``grid_dx_m``
    (m), which need not follow the image's ground pixel: at grazing Sun the length of a cast shadow
    depends on the grid, so the map image uses a grid as fine as the DEM supports whatever its pixel.
    No sensor noise; ``psf_sigma_px`` blurs the result (px).

    Shadows are cast by the terrain up-Sun of the view as far as the renderer reaches for the camera's
    own view (the image without ``margin_px`` on each side). At grazing Sun, terrain farther away may
    shadow the view too; the shading is therefore computed a second time with four times that reach,
    and pixels whose shade differs are marked unreliable (False): their light depends on terrain beyond
    what the image can be matched with.
    """
    R = np.asarray(R_cw, dtype=float)
    p = np.asarray(p_w, dtype=float)
    sun = np.asarray(sun_dir_l, dtype=float)
    sun = sun / np.linalg.norm(sun)
    z_below = float(dem.height(p[0], p[1]))
    if p[2] <= z_below + 0.5:
        raise InputError(f"camera at z={p[2]:.2f} m is below the map's surface (z={z_below:.2f} m)")
    mx, my = margin_px
    view = replace(
        camera,
        width=camera.width - 2 * mx,
        height=camera.height - 2 * my,
        cx=camera.cx - mx,
        cy=camera.cy - my,
    )
    vx0, vx1, vy0, vy1, _ = ground_footprint(view, R, p, z_below)
    x0, x1, y0, y1, _ = ground_footprint(camera, R, p, z_below)
    width = max(vx1 - vx0, vy1 - vy0)
    el = math.atan2(sun[2], math.hypot(sun[0], sun[1]))
    reach = min(0.5 * width, 0.08 * width / max(math.tan(el), 1e-3))  # render.py's reach for the view
    dx = float(grid_dx_m)
    pad = 4.0 * dx

    def box(reach_m: float) -> tuple[float, float, float, float]:
        return (
            min(x0 - pad, vx0 - pad + min(0.0, sun[0]) * reach_m),
            max(x1 + pad, vx1 + pad + max(0.0, sun[0]) * reach_m),
            min(y0 - pad, vy0 - pad + min(0.0, sun[1]) * reach_m),
            max(y1 + pad, vy1 + pad + max(0.0, sun[1]) * reach_m),
        )

    bA, bB = box(reach), box(4.0 * reach)
    cells = (bB[1] - bB[0]) * (bB[3] - bB[2]) / dx**2
    if cells > max_grid_cells:
        dx *= math.sqrt(cells / max_grid_cells)
    grid = Grid.covering(bB[0], bB[1], bB[2], bB[3], dx)
    z = dem.height_grid(grid)
    shade = _shade_grid(z, grid, sun, p)
    i0 = max(0, int((bA[0] - grid.x0) // dx))
    i1 = min(grid.nx, int(math.ceil((bA[1] - grid.x0) / dx)) + 1)
    j0 = max(0, int((bA[2] - grid.y0) // dx))
    j1 = min(grid.ny, int(math.ceil((bA[3] - grid.y0) / dx)) + 1)
    sub = Grid(grid.x0 + i0 * dx, grid.y0 + j0 * dx, dx, i1 - i0, j1 - j0)
    shade_near = _shade_grid(np.ascontiguousarray(z[j0:j1, i0:i1]), sub, sun, p)
    uv = camera.pixel_grid().reshape(-1, 2)
    dirs = np.ascontiguousarray(camera.rays_cam(uv) @ R)
    out = np.empty(dirs.shape[0])
    hit = np.empty((dirs.shape[0], 3))
    _raycast(dirs, p, z, shade, grid.x0, grid.y0, grid.dx, float(z.min()), float(z.max()), out, hit)
    gi = (hit[:, 0] - sub.x0) / dx
    gj = (hit[:, 1] - sub.y0) / dx
    inside = (gi >= 0) & (gi <= sub.nx - 1) & (gj >= 0) & (gj <= sub.ny - 1)
    near = out.copy()
    near[inside] = ndimage.map_coordinates(shade_near, [gj[inside], gi[inside]], order=1)
    top = max(float(np.percentile(near, 99.5)), 1e-12)
    reliable = (np.abs(near - out) <= 0.05 * top).reshape(camera.height, camera.width)
    img = near.reshape(camera.height, camera.width)
    if psf_sigma_px > 0:
        img = ndimage.gaussian_filter(img, psf_sigma_px, mode="nearest")
    return img, hit.reshape(camera.height, camera.width, 3), reliable


@dataclass
class _Match:
    """One pass of matching: offset of the image in the map image, its covariance, peak statistics."""

    offset_xy: NDArray[np.float64]
    cov: NDArray[np.float64]
    peak: float
    ratio: float
    fit_corr: float
    hit_l: NDArray[np.float64]
    margin: tuple[int, int]
    map_image: NDArray[np.float64]
    centre_xy: NDArray[np.float64]  # where in the camera image the shift is measured (px)
    n_quadrants: int
    quadrant_scatter: NDArray[np.float64]  # mean square disagreement of the quadrants (px^2)
    ground_l: NDArray[np.float64]  # map point at centre_xy in the predicted view (m, L)


def _match(
    I: NDArray,
    cam: Camera,
    R: NDArray,
    p: NDArray,
    sun: ArrayLike,
    dem: OnboardDem,
    margin: tuple[int, int],
    spec: CorrelationSpec,
    ambiguity_test: bool = True,
) -> _Match | str:
    """Render the map image with margins (px) around the camera's view and match; a str says why not."""
    mx, my = margin
    big = replace(cam, width=cam.width + 2 * mx, height=cam.height + 2 * my, cx=cam.cx + mx, cy=cam.cy + my)
    try:
        M, hit, reliable = render_map_image(
            dem, big, R, p, sun, spec.grid_post_fraction * dem.resolution_m, (mx, my), spec.psf_sigma_px
        )
    except InputError as exc:
        return f"map render: {exc}"
    if spec.smooth_px > 0:
        Ms = ndimage.gaussian_filter(M, spec.smooth_px, mode="nearest")
        Is = ndimage.gaussian_filter(I, spec.smooth_px, mode="nearest")
    else:
        Ms, Is = M, I
    # pixels lit or shadowed by terrain beyond the map image's reach are left out, with a border
    ms = ndimage.binary_erosion(reliable, iterations=2, border_value=1)
    h, w = I.shape
    mt = ms[my : my + h, mx : mx + w]
    if mt.mean() < spec.min_reliable:
        return f"{100 * (1 - mt.mean()):.0f}% of the view lit or shadowed by terrain beyond the map image"
    if np.std(Is[mt]) < 1e-6 or np.std(Ms[ms]) < 1e-6:
        return "featureless image or map (no contrast)"
    lit = float(np.mean(Is[mt] > 0.1 * np.percentile(Is[mt], 99.5)))
    if lit < spec.min_lit_fraction:
        return f"only {100 * lit:.1f}% of the view lit: too little to match"
    gy, gx = np.gradient(Is)
    gx, gy = gx[mt], gy[mt]
    ev = np.linalg.eigvalsh(np.array([[gx @ gx, gx @ gy], [gx @ gy, gy @ gy]]))
    if ev[0] < spec.min_isotropy * ev[1]:
        return "texture along one direction only (a single shadow edge, say)"
    ncc = ncc_surface(Ms, Is, ms, mt)
    j, i, peak, ratio = peak_analysis(ncc)
    if peak < spec.min_peak:
        return f"weak correlation peak {peak:.2f} < {spec.min_peak:.2f}"
    if j in (0, ncc.shape[0] - 1) or i in (0, ncc.shape[1] - 1):
        return "correlation peak at the edge of the search range"
    if ambiguity_test and ratio > spec.max_second_ratio:
        return f"ambiguous correlation: a second peak {100 * ratio:.0f}% as high as the first"
    dy, dx = parabolic_peak(ncc, j, i)
    d_xy, cov, fit_corr = refine_shift(
        Ms, Is, (i + dx, j + dy), spec.lk_iterations, spec.block_px, search_mask=ms, template_mask=mt
    )
    if abs(d_xy[0] - mx) > mx or abs(d_xy[1] - my) > my or not np.all(np.isfinite(cov)):
        return "refined shift left the search range"
    centre = information_centre(Is, mt)
    margin = np.array([mx, my], dtype=float)
    X0 = _map_point(hit, centre + margin)
    if not np.all(np.isfinite(X0)):
        return "no map point at the measured image region"
    dxy = np.linalg.solve(shift_jacobian(cam, R, p, X0)[:, 3:5], margin - d_xy)  # horizontal offset (m)

    def predict(c: NDArray) -> NDArray:
        X = _map_point(hit, c + margin)
        return margin - shift_jacobian(cam, R, p, X)[:, 3:5] @ dxy if np.all(np.isfinite(X)) else d_xy

    worst, scatter, n_q = _subimage_check(Ms, Is, d_xy, centre, predict, spec, ms, mt)
    if worst > spec.quadrant_chi2:
        return f"sub-images disagree on the shift (chi-square {worst:.0f} > {spec.quadrant_chi2:.0f})"
    cov = 0.5 * (cov + cov.T)
    return _Match(d_xy, cov, peak, ratio, fit_corr, hit, (mx, my), M, centre, n_q, scatter, X0)


def correlation_fix(
    image: ArrayLike,
    camera: Camera,
    R_cw_pred: ArrayLike,
    p_pred: ArrayLike,
    P_pose_pred: ArrayLike,
    sun_dir_l: ArrayLike,
    dem: OnboardDem,
    ground_z_m: float,
    spec: CorrelationSpec | None = None,
    keep_map_image: bool = False,
) -> CorrelationOutcome:
    """Match a camera image against the DEM's view from the predicted pose (frame L, m; Sun unit vector).

    ``P_pose_pred`` is the 6x6 covariance of the predicted pose error [dtheta (rad), dr (m)] in frame L
    (``ShiftFix`` convention); it sets the search range. ``ground_z_m`` is the onboard ground height
    (m, L) below the predicted position. Returns the outcome; ``fix`` is None with a reason when the
    image is too small at the map's scale, the search range too wide, or the peak weak or ambiguous.

    When the first match moves the image by more than ``repeat_shift_px``, the map image is rendered
    again from the position that match implies and matched over a small range, so that the perspective
    of the map image is that of the camera; the shift is then referred back to the predicted pose.
    """
    spec = spec or CorrelationSpec()
    t0 = time.perf_counter()
    P = np.asarray(P_pose_pred, dtype=float)
    if P.shape != (6, 6):
        raise InputError(f"P_pose_pred: expected a 6x6 pose covariance, got {P.shape}")
    R = np.asarray(R_cw_pred, dtype=float)
    p = np.asarray(p_pred, dtype=float)
    img = np.asarray(image, dtype=float)
    if img.shape != (camera.height, camera.width):
        raise InputError(f"image of shape {img.shape}: expected the camera's {(camera.height, camera.width)}")
    height = float(p[2] - ground_z_m)
    gsd = height / max(-float(R[2, 2]), 0.1) / camera.fx
    work = max(gsd, spec.pixel_per_post * dem.resolution_m)
    f = max(1, int(round(work / gsd)), -(-max(camera.width, camera.height) // spec.max_image_px))
    timings: dict[str, float] = {}

    def out(fix: ShiftFix | None, reason: str, m: _Match | None = None) -> CorrelationOutcome:
        keep = m.map_image if (keep_map_image and m is not None) else None
        timings["total"] = time.perf_counter() - t0
        return CorrelationOutcome(fix, reason, gsd, gsd * f, f, time.perf_counter() - t0, timings, keep)

    cam = binned_camera(camera, f)
    if min(cam.width, cam.height) < spec.min_image_px:
        return out(None, f"image {cam.width}x{cam.height} px at the map's scale: too small to match")
    I = bin_image(img, f)
    try:
        X0 = _ground_on_plane(cam, R, p, ground_z_m)
    except InputError as exc:
        return out(None, str(exc))
    J0 = shift_jacobian(cam, R, p, X0)
    sig = np.sqrt(np.maximum(np.diag(J0 @ P @ J0.T), 0.0))
    mx, my = (int(math.ceil(spec.search_sigma * s)) + 3 for s in sig)
    if max(mx, my) > spec.max_search_px:
        return out(None, f"search range +-{mx}x{my} px: wider than {spec.max_search_px} px")
    m1 = _match(I, cam, R, p, sun_dir_l, dem, (mx, my), spec)
    timings["first_pass"] = time.perf_counter() - t0
    if isinstance(m1, str):
        return out(None, m1)
    s1 = np.array([mx, my]) - m1.offset_xy  # shift of the camera image against the predicted view
    m, p_ref = m1, p
    if np.hypot(*s1) > spec.repeat_shift_px:
        # the position that explains s1 with the predicted attitude and height, then a second pass
        B = np.linalg.inv(shift_jacobian(cam, R, p, m1.ground_l)[:, 3:5])
        p1 = p + np.array([*(B @ s1), 0.0])
        var1 = spec.sigma_scale**2 * float(np.max(np.diag(m1.cov))) + spec.sigma_floor_px**2
        r2 = int(math.ceil(spec.search_sigma * math.sqrt(var1))) + 4
        m2 = _match(I, cam, R, p1, sun_dir_l, dem, (r2, r2), spec, ambiguity_test=False)
        timings["second_pass"] = time.perf_counter() - t0 - timings["first_pass"]
        if isinstance(m2, str):
            return out(None, f"second pass: {m2}", m1)
        m2.ratio = m1.ratio  # the ambiguity of the match is judged over the full search range
        m, p_ref = m2, p1
    X_c = m.ground_l
    s_ref = np.array(m.margin, dtype=float) - m.offset_xy  # camera image against the view from p_ref
    # Referred back to the predicted pose with the Jacobian at p_ref (one iterated-EKF step): the filter
    # then finds p_ref + (what s_ref says) as the position, whatever the perspective between p and p_ref.
    Jc = shift_jacobian(cam, R, p_ref, X_c)
    shift = s_ref + Jc[:, 3:6] @ (p_ref - p)
    floor2 = spec.sigma_floor_px**2 + spec.unexplained_px**2 * max(0.0, 1.0 - m.fit_corr**2)
    cov = spec.sigma_scale**2 * m.cov + floor2 * np.eye(2)
    if m.n_quadrants >= 2:  # what the quadrants' disagreement says of the whole image's shift
        cov = cov + spec.quadrant_scatter_weight * m.quadrant_scatter / m.n_quadrants
    fix = ShiftFix(shift, cov, Jc[:, 0:3], Jc[:, 3:6], cam, X_c, m.peak, m.ratio, m.fit_corr)
    return out(fix, "", m)


def horizontal_position_from_shift(
    fix: ShiftFix, p_pred: ArrayLike, P_pose_pred: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return the position (m, L) a shift fix gives with the predicted attitude and height, and its cov.

    The horizontal position solves ``shift = H_r[:, :2] dr_xy``; the height is the predicted one. The
    covariance (3x3, m^2) carries the shift's own, and what the predicted attitude and height errors
    (``P_pose_pred``, 6x6 [dtheta rad, dr m]) put into the shift; z keeps its predicted variance.
    """
    P = np.asarray(P_pose_pred, dtype=float)
    B = np.linalg.inv(fix.H_r[:, :2])
    dxy = B @ fix.shift_px
    # error of (x, y, z) = K [dtheta, dz] + (B n, 0), dz = true minus predicted height
    K = np.zeros((3, 4))
    K[:2] = B @ np.concatenate([fix.H_theta, fix.H_r[:, 2:3]], axis=1)
    K[2, 3] = -1.0
    idx = np.r_[0:3, 5]
    cov = K @ P[np.ix_(idx, idx)] @ K.T
    cov[:2, :2] += B @ fix.cov_px2 @ B.T
    pos = np.asarray(p_pred, dtype=float) + np.array([dxy[0], dxy[1], 0.0])
    return pos, 0.5 * (cov + cov.T)
