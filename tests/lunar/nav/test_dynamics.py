"""Tests of the point-mass lunar gravity in the landing frame L."""

from __future__ import annotations

import numpy as np
import pytest

from kizuna.errors import InputError
from kizuna.lunar.nav.dynamics import gravity_gradient_l, gravity_l

# Published values, typed in here rather than imported, so the test does not read the code's constants:
# GM = 4902.8001 km^3/s^2 (GRAIL GL0660B, Konopliv et al. 2013, JGR Planets 118, 1415) and the LOLA
# reference radius 1737.4 km ("height above a radius of 1737.4 km", LOLA PDS products).
GM_PUBLISHED = 4902.8001e9
R_PUBLISHED = 1737.4e3
CENTRE = np.array([0.0, 0.0, -R_PUBLISHED])


def test_surface_gravity_equals_gm_over_r_squared() -> None:
    # GM / R^2 with the published values above: 4902.8001e9 / 1737400^2 = 1.624219 m/s^2 (the Moon's
    # commonly quoted mean surface gravity, 1.62 m/s^2).
    g = gravity_l([0.0, 0.0, 0.0])
    assert np.linalg.norm(g) == pytest.approx(1.624219, abs=2e-6)
    # At the origin, which lies on the sphere straight above the centre, gravity points along -z.
    np.testing.assert_allclose(g / np.linalg.norm(g), [0.0, 0.0, -1.0], atol=1e-15)


def test_gravity_is_radial_and_inverse_square() -> None:
    rng = np.random.default_rng(7)
    # Points over +-100 km horizontally and 0-20 km above the reference sphere.
    horiz = rng.uniform(-100e3, 100e3, size=(200, 2))
    alt = rng.uniform(0.0, 20e3, size=200)
    d = np.column_stack([horiz, np.zeros(200)]) - CENTRE
    d *= ((R_PUBLISHED + alt) / np.linalg.norm(d, axis=1))[:, None]
    r = d + CENTRE
    g = gravity_l(r)
    assert g.shape == (200, 3)
    # Newton's law: g is antiparallel to r - c ...
    unit_d = d / np.linalg.norm(d, axis=1, keepdims=True)
    unit_g = g / np.linalg.norm(g, axis=1, keepdims=True)
    np.testing.assert_allclose(unit_g, -unit_d, atol=1e-14)
    # ... and falls off as the inverse square of the distance from the centre.
    np.testing.assert_allclose(np.linalg.norm(g, axis=1), GM_PUBLISHED / (R_PUBLISHED + alt) ** 2, rtol=2e-8)
    # Inverse square between the 15 km start of powered descent and the surface: (1737.4 / 1752.4)^2.
    ratio = np.linalg.norm(gravity_l([0.0, 0.0, 15e3])) / np.linalg.norm(gravity_l([0.0, 0.0, 0.0]))
    assert ratio == pytest.approx((1737.4 / 1752.4) ** 2, rel=1e-12)


def test_gravity_broadcasts_over_leading_axes() -> None:
    r = np.zeros((2, 4, 3))
    r[..., 2] = np.arange(8.0).reshape(2, 4) * 1e3
    g = gravity_l(r)
    assert g.shape == (2, 4, 3)
    np.testing.assert_array_equal(g[1, 2], gravity_l(r[1, 2]))
    assert gravity_gradient_l(r).shape == (2, 4, 3, 3)


def test_gravity_gradient_is_jacobian_symmetric_and_trace_free() -> None:
    rng = np.random.default_rng(3)
    r = np.column_stack(
        [rng.uniform(-50e3, 50e3, 20), rng.uniform(-50e3, 50e3, 20), rng.uniform(0, 15e3, 20)]
    )
    G = gravity_gradient_l(r)
    # Central differences of the field itself (step 1 m): error ~ h^2 * d3g ~ 1e-18, far below 1e-12.
    h = 1.0
    for j in range(3):
        e = np.zeros(3)
        e[j] = h
        num = (gravity_l(r + e) - gravity_l(r - e)) / (2 * h)
        np.testing.assert_allclose(G[:, :, j], num, atol=1e-12)
    np.testing.assert_allclose(G, np.swapaxes(G, -1, -2), atol=1e-20)
    # Laplace's equation outside the mass: div g = trace G = 0.
    np.testing.assert_allclose(np.trace(G, axis1=1, axis2=2), 0.0, atol=1e-20)


def test_vertical_gravity_gradient_is_free_air_gradient() -> None:
    # Free-air gradient of a point mass: d|g|/dh = -2 GM / R^3 = -1.8697e-6 s^-2 (0.187 mGal/m).
    G = gravity_gradient_l([0.0, 0.0, 0.0])
    assert G[2, 2] == pytest.approx(2.0 * GM_PUBLISHED / R_PUBLISHED**3, rel=1e-7)
    assert G[0, 0] == pytest.approx(-GM_PUBLISHED / R_PUBLISHED**3, rel=1e-7)


@pytest.mark.parametrize("bad", [np.zeros(2), np.zeros((4, 2)), [np.nan, 0.0, 0.0], [0.0, 0.0, -1737.4e3]])
def test_gravity_rejects_bad_positions(bad: object) -> None:
    with pytest.raises(InputError, match="r_l"):
        gravity_l(bad)
    with pytest.raises(InputError, match="r_l"):
        gravity_gradient_l(bad)
