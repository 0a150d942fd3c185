"""Tests of the synthetic lunar terrain: determinism, the two evaluation paths, crater statistics and
crater shape against the published laws the module documents (Trask 1966, Pike 1977)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kizuna.errors import InputError
from kizuna.lunar.nav.terrain import Grid, Terrain, TerrainSpec, _profile

# LOLA/IAU mean lunar radius used for the reference sphere (1737.4 km).
R_MOON = 1_737_400.0
# Trask (1966) equilibrium density on the maria: N(>D) = 10^10.9 D^-2 per 10^6 km^2 (D in m), typed in.
TRASK_K = 10**10.9 / 1e12  # per m^2: 0.0794
# Pike (1977), fresh lunar simple craters: rim-to-floor depth d = 0.196 D, rim height h_r = 0.036 D.
PIKE_DEPTH = 0.196
PIKE_RIM = 0.036

# A sparse terrain without background noise (the largest noise wavelength is below the smallest one),
# so that isolated craters can be measured alone.
SPARSE = TerrainSpec(
    seed=5, density_k=2e-3, d_min_m=4.0, d_max_m=64.0, noise_wavelength_max_m=0.01, noise_wavelength_min_m=0.1
)


def test_same_seed_same_heights_other_seed_differs() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-3000.0, 3000.0, 300)
    y = rng.uniform(-3000.0, 3000.0, 300)
    a = Terrain(TerrainSpec(seed=3)).relief(x, y, resolution_m=0.5)
    b = Terrain(TerrainSpec(seed=3)).relief(x, y, resolution_m=0.5)
    c = Terrain(TerrainSpec(seed=4)).relief(x, y, resolution_m=0.5)
    np.testing.assert_array_equal(a, b)
    # another seed is another terrain: heights differ by metres, not by round-off
    assert np.median(np.abs(a - c)) > 0.5


def test_crater_list_is_same_in_any_box() -> None:
    # The same crater is always the same crater: a sub-box lists exactly the craters of the large box
    # whose centres fall in it.
    t = Terrain(TerrainSpec(seed=11))
    big = t.craters(-400.0, 400.0, -400.0, 400.0, 10.0)
    small = t.craters(-100.0, 250.0, -300.0, 50.0, 10.0)
    inside = big[(big.x_m >= -100.0) & (big.x_m < 250.0) & (big.y_m >= -300.0) & (big.y_m < 50.0)]
    assert len(small) > 10
    key = ["x_m", "y_m", "diameter_m", "degradation"]
    np.testing.assert_array_equal(
        small.sort_values("x_m")[key].to_numpy(), inside.sort_values("x_m")[key].to_numpy()
    )


@pytest.mark.parametrize(
    ("x0", "y0", "dx", "nx", "ny"), [(1234.5, -987.25, 1.0, 64, 48), (-20.0, 7.3, 0.3, 40, 36)]
)
def test_grid_path_equals_point_path(x0: float, y0: float, dx: float, nx: int, ny: int) -> None:
    # relief_grid (craters splatted per crater, noise lattice cached per octave) and relief (every point
    # on its own) are independent code paths for the same surface at the same resolution.
    t = Terrain(TerrainSpec(seed=2))
    g = Grid(x0, y0, dx, nx, ny)
    xx, yy = np.meshgrid(g.x, g.y)
    grid = t.relief_grid(g)
    pts = t.relief(xx, yy, resolution_m=dx)
    assert grid.std() > 0.05  # there is relief to compare
    np.testing.assert_allclose(grid, pts, atol=1e-9)
    np.testing.assert_allclose(t.height_grid(g), t.height(xx, yy, resolution_m=dx), atol=1e-9)


def test_sphere_drop_is_analytic() -> None:
    # z = sqrt(R^2 - x^2 - y^2) - R = -r^2/(2R) - r^4/(8R^3) - ... : at 10 km, -28.7788 m.
    t = Terrain()
    r = np.array([0.0, 1.0, 100.0, 10_000.0, 50_000.0])
    series = -(r**2) / (2 * R_MOON) - r**4 / (8 * R_MOON**3) - r**6 / (16 * R_MOON**5)
    np.testing.assert_allclose(t.sphere_drop(r, 0.0), series, atol=1e-8)
    np.testing.assert_allclose(t.sphere_drop(6000.0, 8000.0), series[3], atol=1e-8)
    assert t.sphere_drop(10_000.0, 0.0) == pytest.approx(-28.7788, abs=1e-4)


@pytest.mark.parametrize(
    ("half_box", "bins"),
    [
        (500.0, [(8.0, 11.0), (11.0, 16.0), (16.0, 32.0), (32.0, 64.0)]),
        (2000.0, [(64.0, 128.0), (128.0, 512.0)]),
    ],
)
def test_crater_counts_follow_trask_law(half_box: float, bins: list[tuple[float, float]]) -> None:
    # Cumulative law N(>D) = k D^-2 per m^2 (Trask 1966 equilibrium), so a box of area A holds a Poisson
    # number of craters with D1 <= D < D2 of mean k A (1/D1^2 - 1/D2^2). Check each bin within 4 sigma.
    t = Terrain(TerrainSpec(seed=21, density_k=TRASK_K))
    d_lo, d_hi = bins[0][0], bins[-1][1]
    c = t.craters(-half_box, half_box, -half_box, half_box, d_lo, d_hi)
    area = (2 * half_box) ** 2
    for d1, d2 in bins:
        n = int(((c.diameter_m >= d1) & (c.diameter_m < d2)).sum())
        mean = TRASK_K * area * (1 / d1**2 - 1 / d2**2)
        assert abs(n - mean) < 4.0 * math.sqrt(mean), (d1, d2, n, mean)
    assert c.diameter_m.min() >= d_lo and c.diameter_m.max() < d_hi


def test_density_k_scales_counts() -> None:
    # Halving k halves the expected count (same law): 0.5 k A (1/8^2 - 1/32^2) in a 1 km box.
    t = Terrain(TerrainSpec(seed=22, density_k=0.5 * TRASK_K))
    n = len(t.craters(0.0, 1000.0, 0.0, 1000.0, 8.0, 32.0))
    mean = 0.5 * TRASK_K * 1e6 * (1 / 64 - 1 / 1024)
    assert abs(n - mean) < 4.0 * math.sqrt(mean)


def test_size_range_is_d_min_to_d_max() -> None:
    # TerrainSpec documents (d_min_m, d_max_m) as the crater size range; inside it the Trask law holds,
    # also in the octave that d_max_m cuts.
    t = Terrain(TerrainSpec(seed=1, density_k=TRASK_K, d_min_m=1.0, d_max_m=3.0))
    c = t.craters(0.0, 300.0, 0.0, 300.0, 0.0)
    assert c.diameter_m.min() >= 1.0 and c.diameter_m.max() < 3.0
    for d1, d2 in ((1.0, 2.0), (2.0, 3.0)):
        n = int(((c.diameter_m >= d1) & (c.diameter_m < d2)).sum())
        mean = TRASK_K * 9e4 * (1 / d1**2 - 1 / d2**2)
        assert abs(n - mean) < 4.0 * math.sqrt(mean), (d1, d2, n, mean)
    # and the two height paths (grid and points) cut the population at d_max_m in the same way
    g = Grid(0.0, 0.0, 0.25, 40, 40)
    xx, yy = np.meshgrid(g.x, g.y)
    np.testing.assert_allclose(t.relief_grid(g), t.relief(xx, yy, resolution_m=0.25), atol=1e-9)


def test_fresh_profile_follows_pike() -> None:
    # Fresh (s = 0) simple crater: rim crest at r = R stands h_r = 0.036 D above the pre-impact surface
    # and the floor (r = 0) lies d = 0.196 D below the rim (Pike 1977).
    D = 37.0
    floor = _profile(0.0, D, 0.0)
    rim = _profile(1.0, D, 0.0)
    assert rim == pytest.approx(PIKE_RIM * D, rel=1e-12)
    assert rim - floor == pytest.approx(PIKE_DEPTH * D, rel=1e-12)
    # the rim is the highest point; the exterior falls continuously to zero at 3 R (ejecta cutoff)
    r = np.linspace(0.0, 3.5, 701)
    h = np.array([_profile(v, D, 0.0) for v in r])
    assert h.max() == pytest.approx(rim, rel=1e-12)
    assert abs(_profile(1.0 - 1e-9, D, 0.0) - rim) < 1e-6 * D
    assert abs(_profile(1.0 + 1e-9, D, 0.0) - rim) < 1e-6 * D
    assert np.all(np.diff(h[(r > 1.0) & (r <= 3.0)]) < 0)
    assert _profile(3.0, D, 0.0) == 0.0 and _profile(2.9999999, D, 0.0) > 0.0


def test_degraded_profile_endpoints() -> None:
    # Fully degraded (s = 1): depth 0.08 D and rim 30 % of the fresh rim, as the module documents.
    D = 20.0
    rim = _profile(1.0, D, 1.0)
    assert rim == pytest.approx(0.3 * PIKE_RIM * D, rel=1e-12)
    assert rim - _profile(0.0, D, 1.0) == pytest.approx(0.08 * D, rel=1e-12)


def _isolated(c, margin: float) -> np.ndarray:
    """Rows of c whose centre is farther than 3 (R_i + R_j) from every other crater's centre."""
    x, y, r = c.x_m.to_numpy(), c.y_m.to_numpy(), 0.5 * c.diameter_m.to_numpy()
    d = np.hypot(x[:, None] - x[None], y[:, None] - y[None])
    np.fill_diagonal(d, np.inf)
    ok = np.all(d > 3.0 * (r[:, None] + r[None]), axis=1)
    return ok & (np.abs(x) < margin) & (np.abs(y) < margin)


def test_isolated_crater_heights_and_rim_plane() -> None:
    # On a noise-free sparse terrain, an isolated crater sits alone on the reference sphere, so
    # - relief on its rim circle equals its rim height and relief at its centre equals rim - depth;
    # - z_m (mean surface height on the rim circle) is rim height plus the sphere drop at the centre
    #   (the drop varies by R^2 / (2 R_moon) < 0.3 mm over a rim of R <= 32 m);
    # - depth and rim lie between the fresh (Pike 1977) and fully degraded values.
    t = Terrain(SPARSE)
    # neighbours matter within 3 (R_i + R_j) <= 192 m: keep a 200 m margin inside the listed box
    c = t.craters(-500.0, 500.0, -500.0, 500.0, 0.0)
    iso = c[_isolated(c, 300.0)]
    assert len(iso) >= 10
    D = iso.diameter_m.to_numpy()
    ang = np.linspace(0.0, 2.0 * np.pi, 17)
    rim_x = iso.x_m.to_numpy()[:, None] + 0.5 * D[:, None] * np.cos(ang)
    rim_y = iso.y_m.to_numpy()[:, None] + 0.5 * D[:, None] * np.sin(ang)
    np.testing.assert_allclose(
        t.relief(rim_x, rim_y, resolution_m=0.1),
        np.repeat(iso.rim_height_m.to_numpy()[:, None], 17, 1),
        atol=1e-9,
    )
    centre = t.relief(iso.x_m.to_numpy(), iso.y_m.to_numpy(), resolution_m=0.1)
    np.testing.assert_allclose(centre, iso.rim_height_m - iso.depth_m, atol=1e-9)
    expected_z = np.sqrt(R_MOON**2 - iso.x_m**2 - iso.y_m**2) - R_MOON + iso.rim_height_m
    np.testing.assert_allclose(iso.z_m, expected_z, atol=1e-3)
    assert np.all((iso.depth_m / D >= 0.08 - 1e-12) & (iso.depth_m / D <= PIKE_DEPTH + 1e-12))
    assert np.all(
        (iso.rim_height_m / D >= 0.3 * PIKE_RIM - 1e-12) & (iso.rim_height_m / D <= PIKE_RIM + 1e-12)
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"density_k": 0.0},
        {"density_k": -1.0},
        {"density_k": math.nan},
        {"density_k": math.inf},
        {"d_min_m": 0.0},
        {"d_min_m": 5.0, "d_max_m": 5.0},
        {"d_min_m": 10.0, "d_max_m": 2.0},
        {"d_min_m": math.nan},
    ],
)
def test_bad_spec_raises(kwargs: dict) -> None:
    with pytest.raises(InputError, match="terrain"):
        TerrainSpec(**kwargs)
