"""1-D regolith thermal model and ice stability at depth (lunar-night survival builds on it in .survival).

Regolith model (after heat1d, Hayne et al. 2017)
------------------------------------------------
The column follows the standard model of Hayne et al. (2017), "Global regolith thermophysical
properties of the Moon from the Diviner Lunar Radiometer Experiment", JGR Planets 122, 2371-2400,
Appendix A (Eqs. A2-A6, Table A1), as implemented in heat1d (github.com/phayne/heat1d):

* density and contact conductivity grow from surface to deep values with e-folding depth H,
  ``f(z) = f_d - (f_d - f_s) exp(-z / H)`` (Eqs. A2, A3);
* conductivity has a radiative term, ``k = k_c (1 + chi (T / 350 K)^3)`` (Eq. A4, A5);
* heat capacity is the polynomial fit of Hayne et al. 2017 Eq. A6 to Hemingway et al. (1981) and
  Ledlow et al. (1992), ``c(T) = c0 + c1 T + c2 T^2 + c3 T^3 + c4 T^4`` (J kg^-1 K^-1);
* the bond albedo depends on the solar incidence angle i (Keihm 1984, as used by Hayne et al. 2017),
  ``A(i) = A0 + a (i / (pi/4))^3 + b (i / (pi/2))^8``;
* the surface radiates ``emissivity * sigma * T^4`` and the bottom receives the geothermal flux.

Numerics
--------
Nodes sit at depths ``z_0 = 0 < z_1 < ... < z_{N-1}``; layer thickness grows geometrically as in
heat1d (first layer = diurnal skin depth / 10, growth factor 1 + 1/5, Hayne et al. 2017 Eqs.
A31-A33), capped at ``max_layer_m`` so that the deep column (default to 3 m, covering a 1.5 m drill) is
still resolved. Each node owns the control volume between the mid-points to its neighbours (the surface
node the top half-layer, the bottom node the bottom half-layer), so the scheme is conservative: the heat
stored in the column changes by exactly the net flux through its top and bottom.

Time stepping is fully implicit (backward Euler, L-stable: steps of an hour or longer are stable and do
not ring when the thin surface layer reacts faster than a step). The tridiagonal system is eliminated
from the bottom up, which leaves one scalar quartic for the surface temperature,
``emissivity sigma T0^4 + A T0 - B = 0``; it is solved by Newton's method from an upper bound, where it
converges monotonically. Each step is done twice: first with the properties at the old temperatures,
then again with the conductivity at the mean of old and predicted temperatures and the heat capacity as
the exact mean of c(T) between them (the enthalpy secant), which makes the step second-order in the
property variation and keeps the enthalpy budget.

Spin-up
-------
The forcing used for the spin-up (by default the input series itself) is taken as one period of a
periodic forcing and repeated. The deep regolith takes decades to reach its periodic state by plain
repetition, so after each cycle the column is corrected towards the periodic state: in a periodic state
the cycle-mean conductive heat flux through every layer interface equals the geothermal flux. With the
cycle-mean flux ``F_f`` and conductance ``G_f = k_f / dz_f`` measured at each interface, the temperatures
are shifted by ``delta_0 = 0, delta_{i+1} = delta_i + (Q_geo - F_f) / G_f`` (a Newton step for the slowly
varying mean profile; the surface, which equilibrates within a cycle, is left alone). Spin-up stops when
the largest change of any node over one cycle (including the correction) is below ``spinup_tol_k``
(default 0.001 K), or after ``max_spinup_cycles`` cycles (with a RuntimeWarning); the result records the
number of cycles, the final residual and whether the criterion was met. Typical lunar cases converge in
6-10 cycles.

Night survival
--------------
See :mod:`kizuna.lunar.surface.survival`: heaters replace the heat the equipment radiates
from its radiator/enclosure area to a sink made of the regolith surface (view factor ``view_factor_ground``,
at the surface temperature this model computes for the site's illumination) and deep space (3 K).

Ice stability
-------------
:func:`ice_stable_depth` gives the shallowest depth below which the maximum temperature stays under
110 K, where the sublimation loss of water ice drops to about 1 kg m^-2 per Gyr (Schorghofer & Taylor
2007, JGR 112, E02010; Paige et al. 2010, Science 330, 479).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numba as nb
import numpy as np
from numpy.typing import ArrayLike, NDArray

from kizuna.errors import InputError

__all__ = [
    "DEEP_SPACE_K",
    "DRILL_DEPTH_M",
    "ICE_STABILITY_THRESHOLD_K",
    "SOLAR_CONSTANT_W_M2",
    "STEFAN_BOLTZMANN",
    "SYNODIC_DAY_S",
    "IceStability",
    "Insolation",
    "RegolithModel",
    "RegolithTemperatures",
    "diurnal_insolation",
    "ice_stable_depth",
    "regolith_grid",
    "regolith_temperature",
]

# Stefan-Boltzmann constant (W m^-2 K^-4), CODATA 2018.
STEFAN_BOLTZMANN = 5.670_374_419e-8
# Total solar irradiance at 1 AU (W m^-2): Kopp & Lean 2011, GRL 38, L01706 (heat1d uses the same 1361).
SOLAR_CONSTANT_W_M2 = 1361.0
# Mean synodic month = length of the lunar solar day (s): 29.530589 d (Explanatory Supplement to the
# Astronomical Almanac; heat1d planets.Moon.day = 29.53059 d).
SYNODIC_DAY_S = 29.530_589 * 86_400.0
# Radiative sink temperature of deep space used by the night-survival model (K); the CMB is 2.725 K
# (Fixsen 2009, ApJ 707, 916), rounded up to the customary 3 K.
DEEP_SPACE_K = 3.0
# Ice stability threshold (K): sublimation ~1 kg m^-2 Gyr^-1 at ~110 K (Schorghofer & Taylor 2007;
# Paige et al. 2010).
ICE_STABILITY_THRESHOLD_K = 110.0
# Depth reach assumed for a sampling drill (m): the 1.5 m class planned for the ISRO-JAXA LUPEX rover.
DRILL_DEPTH_M = 1.5

# Reference temperature of the radiative conductivity term (K), Hayne et al. 2017 Eq. A4.
_T_RADIATIVE_REF = 350.0
# Heat capacity used only to size the grid (J kg^-1 K^-1): heat1d planets.Moon.cp0.
_CP0_GRID = 600.0
# Lower limits keeping the heat-capacity polynomial physical (it turns negative below 1.3 K).
_T_FLOOR_K = 2.0
_CP_FLOOR = 0.5


# ------------------------------------------------------------------------------------------ model inputs


@dataclass(frozen=True)
class RegolithModel:
    """Thermophysical properties of the regolith column (SI units), defaults from Hayne et al. 2017.

    Defaults, Hayne et al. (2017) Table A1 / heat1d:
    ``h_m`` 0.06 m (H parameter of the standard model, Table A1; heat1d's validation suite uses it, and
    the C driver calls 0.06 "typical"; the global mean fitted to Diviner is about 0.07 m, which heat1d's
    ``planets.Moon.H`` carries), surface/deep density 1100/1800 kg m^-3, surface/deep contact conductivity
    7.4e-4/3.4e-3 W m^-1 K^-1, radiative parameter chi = 2.7 (Eq. A5), heat capacity polynomial
    coefficients c0..c4 = -3.6125, 2.7431, 2.3616e-3, -1.2340e-5, 8.9093e-9 (Eq. A6, fit to Hemingway
    et al. 1981 and Ledlow et al. 1992), infrared emissivity 0.95, normal bolometric bond albedo
    A0 = 0.12 (highlands) with incidence coefficients a = 0.06, b = 0.25 (after Keihm 1984; heat1d
    ``planets.Moon.albedoCoef``),
    geothermal heat flux 0.018 W m^-2 (heat1d ``planets.Moon.Qb``; Apollo 15/17 measured 0.021/0.016,
    Langseth et al. 1976).
    """

    h_m: float = 0.06
    rho_surface_kg_m3: float = 1100.0
    rho_deep_kg_m3: float = 1800.0
    k_surface_w_m_k: float = 7.4e-4
    k_deep_w_m_k: float = 3.4e-3
    chi: float = 2.7
    heat_capacity_coeffs: tuple[float, float, float, float, float] = (
        -3.6125,
        2.7431,
        2.3616e-3,
        -1.2340e-5,
        8.9093e-9,
    )
    emissivity: float = 0.95
    albedo: float = 0.12
    albedo_a: float = 0.06
    albedo_b: float = 0.25
    geothermal_flux_w_m2: float = 0.018

    def __post_init__(self) -> None:
        for name in ("h_m", "rho_surface_kg_m3", "rho_deep_kg_m3", "k_surface_w_m_k", "k_deep_w_m_k"):
            _check_positive(f"RegolithModel.{name}", getattr(self, name))
        for name in ("chi", "albedo_a", "albedo_b", "geothermal_flux_w_m2"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise InputError(f"RegolithModel.{name}: expected a finite number >= 0, got {value!r}")
        if not (math.isfinite(self.emissivity) and 0.0 < self.emissivity <= 1.0):
            raise InputError(f"RegolithModel.emissivity: expected 0 < value <= 1, got {self.emissivity!r}")
        if not (math.isfinite(self.albedo) and 0.0 <= self.albedo < 1.0):
            raise InputError(f"RegolithModel.albedo: expected 0 <= value < 1, got {self.albedo!r}")
        coeffs = tuple(self.heat_capacity_coeffs)
        if len(coeffs) != 5 or not all(math.isfinite(float(c)) for c in coeffs):
            raise InputError(
                "RegolithModel.heat_capacity_coeffs: expected 5 finite coefficients c0..c4, "
                f"got {self.heat_capacity_coeffs!r}"
            )
        if self.heat_capacity(np.array([100.0, 250.0, 400.0])).min() <= 0.0:
            raise InputError(
                "RegolithModel.heat_capacity_coeffs: expected a heat capacity > 0 between 100 and 400 K"
            )

    def density(self, depth_m: ArrayLike) -> NDArray[np.float64]:
        """Bulk density (kg m^-3) at depth (m), Hayne et al. 2017 Eq. A2."""
        z = np.asarray(depth_m, dtype=float)
        return self.rho_deep_kg_m3 - (self.rho_deep_kg_m3 - self.rho_surface_kg_m3) * np.exp(-z / self.h_m)

    def contact_conductivity(self, depth_m: ArrayLike) -> NDArray[np.float64]:
        """Contact (phonon) conductivity (W m^-1 K^-1) at depth (m), Hayne et al. 2017 Eq. A3."""
        z = np.asarray(depth_m, dtype=float)
        return self.k_deep_w_m_k - (self.k_deep_w_m_k - self.k_surface_w_m_k) * np.exp(-z / self.h_m)

    def conductivity(self, depth_m: ArrayLike, temperature_k: ArrayLike) -> NDArray[np.float64]:
        """Total conductivity (W m^-1 K^-1) at depth (m) and temperature (K), Hayne et al. 2017 Eq. A4."""
        t = np.asarray(temperature_k, dtype=float)
        return self.contact_conductivity(depth_m) * (1.0 + self.chi * (t / _T_RADIATIVE_REF) ** 3)

    def heat_capacity(self, temperature_k: ArrayLike) -> NDArray[np.float64]:
        """Specific heat capacity (J kg^-1 K^-1) at temperature (K), Hayne et al. 2017 Eq. A6."""
        t = np.asarray(temperature_k, dtype=float)
        c0, c1, c2, c3, c4 = self.heat_capacity_coeffs
        return c0 + t * (c1 + t * (c2 + t * (c3 + t * c4)))

    def albedo_at(self, incidence_rad: ArrayLike) -> NDArray[np.float64]:
        """Bond albedo (0-1) at solar incidence angle (rad, clipped to [0, pi/2]), Keihm 1984 / Hayne 2017."""
        i = np.clip(np.asarray(incidence_rad, dtype=float), 0.0, 0.5 * math.pi)
        a = (
            self.albedo
            + self.albedo_a * (i / (0.25 * math.pi)) ** 3
            + self.albedo_b * (i / (0.5 * math.pi)) ** 8
        )
        return np.minimum(a, 1.0)

    def enthalpy_j_kg(self, temperature_k: ArrayLike) -> NDArray[np.float64]:
        """Specific enthalpy (J kg^-1) relative to 0 K: the integral of c(T) dT (T in K)."""
        t = np.maximum(np.asarray(temperature_k, dtype=float), _T_FLOOR_K)
        c0, c1, c2, c3, c4 = self.heat_capacity_coeffs
        return t * (c0 + t * (c1 / 2.0 + t * (c2 / 3.0 + t * (c3 / 4.0 + t * c4 / 5.0))))


@dataclass(frozen=True)
class Insolation:
    """Solar forcing: time (s), hour angle (rad), flux on the horizontal (W m^-2), incidence (rad)."""

    time_s: NDArray[np.float64]
    hour_angle_rad: NDArray[np.float64]
    flux_w_m2: NDArray[np.float64]
    incidence_rad: NDArray[np.float64]
    dt_s: float

    @property
    def local_time_h(self) -> NDArray[np.float64]:
        """Lunar local time in hours past noon (0-24 per synodic day)."""
        return np.mod(self.hour_angle_rad, 2.0 * math.pi) * 12.0 / math.pi


@dataclass(frozen=True)
class RegolithTemperatures:
    """Result of :func:`regolith_temperature` (temperatures in K, depths in m, fluxes in W m^-2).

    ``surface_k[n]``, ``absorbed_w_m2[n]``, ``emitted_w_m2[n]`` and ``depth_series_k[n]`` belong to
    input sample n (the implicit step that ends at sample n uses that sample's forcing). ``max_k``,
    ``min_k`` and ``mean_k`` are taken over the output run, per grid node ``depths_m``.
    ``stored_energy_change_j_m2`` is the change of the column's enthalpy over the output run; with
    ``absorbed - emitted + geothermal`` integrated over the run it closes the energy budget.
    """

    depths_m: NDArray[np.float64]
    dt_s: float
    surface_k: NDArray[np.float64]
    absorbed_w_m2: NDArray[np.float64]
    emitted_w_m2: NDArray[np.float64]
    output_depths_m: NDArray[np.float64]
    depth_series_k: NDArray[np.float64]
    max_k: NDArray[np.float64]
    min_k: NDArray[np.float64]
    mean_k: NDArray[np.float64]
    initial_profile_k: NDArray[np.float64]
    final_profile_k: NDArray[np.float64]
    stored_energy_change_j_m2: float
    geothermal_flux_w_m2: float
    spinup_cycles: int
    spinup_converged: bool
    spinup_residual_k: float

    def at_depth(self, depth_m: float, which: str = "max") -> float:
        """Temperature (K) at a depth (m) from the 'max', 'min' or 'mean' profile, linearly interpolated."""
        profiles = {"max": self.max_k, "min": self.min_k, "mean": self.mean_k}
        if which not in profiles:
            raise InputError(f"which: expected 'max', 'min' or 'mean', got {which!r}")
        if not (math.isfinite(depth_m) and 0.0 <= depth_m <= self.depths_m[-1]):
            raise InputError(f"depth_m: expected 0 <= depth <= {self.depths_m[-1]:.3f} m, got {depth_m!r}")
        return float(np.interp(depth_m, self.depths_m, profiles[which]))


# ----------------------------------------------------------------------------------------- numba kernels


@nb.njit(cache=True)
def _cp(t, c0, c1, c2, c3, c4):  # pragma: no cover - compiled
    return c0 + t * (c1 + t * (c2 + t * (c3 + t * c4)))


@nb.njit(cache=True)
def _cp_mean(a, b, c0, c1, c2, c3, c4):  # pragma: no cover - compiled
    # Exact mean of c(T) over [a, b] = (E(b) - E(a)) / (b - a), written without cancellation.
    a2 = a * a
    b2 = b * b
    s2 = (a + b) / 2.0
    s3 = (a2 + a * b + b2) / 3.0
    s4 = (a2 * a + a2 * b + a * b2 + b2 * b) / 4.0
    s5 = (a2 * a2 + a2 * a * b + a2 * b2 + a * b2 * b + b2 * b2) / 5.0
    return c0 + c1 * s2 + c2 * s3 + c3 * s4 + c4 * s5


@nb.njit(cache=True)
def _solve_step(tn, cap, g, s_abs, qb, es, dt, t_out, p, q):  # pragma: no cover - compiled
    """One backward-Euler step: conservative tridiagonal system with radiative top and flux bottom."""
    n = tn.shape[0]
    i = n - 1
    b = cap[i] / dt + g[i - 1]
    p[i] = (cap[i] / dt * tn[i] + qb) / b
    q[i] = g[i - 1] / b
    for i in range(n - 2, 0, -1):
        den = cap[i] / dt + g[i - 1] + g[i] * (1.0 - q[i + 1])
        p[i] = (cap[i] / dt * tn[i] + g[i] * p[i + 1]) / den
        q[i] = g[i - 1] / den
    # Surface: cap0/dt (T0 - Tn0) = g0 (T1 - T0) + S - es T0^4, with T1 = p1 + q1 T0.
    aa = cap[0] / dt + g[0] * (1.0 - q[1])
    bb = cap[0] / dt * tn[0] + s_abs + g[0] * p[1]
    if bb <= 0.0:
        x = _T_FLOOR_K
    else:
        x = min((bb / es) ** 0.25, bb / aa)  # upper bound of the root: Newton descends monotonically
        for _ in range(100):
            x3 = x * x * x
            f = es * x3 * x + aa * x - bb
            dx = f / (4.0 * es * x3 + aa)
            x -= dx
            if abs(dx) <= 1e-12 * x:
                break
    t_out[0] = x
    for i in range(1, n):
        t_out[i] = p[i] + q[i] * t_out[i - 1]


@nb.njit(cache=True)
def _integrate(
    temp,
    vol,
    rho,
    kc,
    dzf,
    absorbed,
    dt,
    es,
    chi,
    cpc,
    qb,
    record,
    out_surface,
    out_emit,
    tmax,
    tmin,
    tsum,
    sample_idx,
    sample_w,
    out_series,
    face_flux_sum,
    face_g_sum,
):  # pragma: no cover - compiled
    """Advance the column through the absorbed-flux series in place; record outputs when asked."""
    n = temp.shape[0]
    c0, c1, c2, c3, c4 = cpc[0], cpc[1], cpc[2], cpc[3], cpc[4]
    r350 = chi / 350.0**3
    tn = np.empty(n)
    tp = np.empty(n)
    kk = np.empty(n)
    cap = np.empty(n)
    g = np.empty(n - 1)
    p = np.empty(n)
    q = np.empty(n)
    nsamp = sample_idx.shape[0]
    for step in range(absorbed.shape[0]):
        for i in range(n):
            tn[i] = temp[i]
        # Predictor: properties at the old temperatures.
        for i in range(n):
            t = max(tn[i], _T_FLOOR_K)
            kk[i] = kc[i] * (1.0 + r350 * t * t * t)
            cap[i] = rho[i] * vol[i] * max(_cp(t, c0, c1, c2, c3, c4), _CP_FLOOR)
        for i in range(n - 1):
            g[i] = 0.5 * (kk[i] + kk[i + 1]) / dzf[i]
        _solve_step(tn, cap, g, absorbed[step], qb, es, dt, tp, p, q)
        # Corrector: conductivity at the step mean, heat capacity as the enthalpy secant.
        for i in range(n):
            a = max(tn[i], _T_FLOOR_K)
            b = max(tp[i], _T_FLOOR_K)
            t = 0.5 * (a + b)
            kk[i] = kc[i] * (1.0 + r350 * t * t * t)
            cap[i] = rho[i] * vol[i] * max(_cp_mean(a, b, c0, c1, c2, c3, c4), _CP_FLOOR)
        for i in range(n - 1):
            g[i] = 0.5 * (kk[i] + kk[i + 1]) / dzf[i]
        _solve_step(tn, cap, g, absorbed[step], qb, es, dt, temp, p, q)
        for i in range(n - 1):
            face_flux_sum[i] += g[i] * (temp[i + 1] - temp[i])
            face_g_sum[i] += g[i]
        if record:
            t0 = temp[0]
            out_surface[step] = t0
            out_emit[step] = es * t0 * t0 * t0 * t0
            for i in range(n):
                t = temp[i]
                if t > tmax[i]:
                    tmax[i] = t
                if t < tmin[i]:
                    tmin[i] = t
                tsum[i] += t
            for j in range(nsamp):
                k = sample_idx[j]
                w = sample_w[j]
                out_series[step, j] = (1.0 - w) * temp[k] + w * temp[k + 1]


# -------------------------------------------------------------------------------------------- helpers


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float | np.floating | np.integer) and math.isfinite(value) and value > 0):
        raise InputError(f"{name}: expected a finite number > 0, got {value!r}")


def _series(name: str, values: ArrayLike, *, lo: float | None = None, hi: float | None = None) -> NDArray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: expected a 1-D series of numbers ({exc})") from None
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(f"{name}: expected a non-empty 1-D series, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name}: expected finite values, found NaN or infinity")
    if lo is not None and arr.min() < lo:
        raise InputError(f"{name}: expected values >= {lo}, got minimum {arr.min()!r}")
    if hi is not None and arr.max() > hi:
        raise InputError(f"{name}: expected values <= {hi}, got maximum {arr.max()!r}")
    return arr


def _absorbed(
    name: str, flux: ArrayLike, incidence: ArrayLike | None, model: RegolithModel, background: float
) -> NDArray:
    f = _series(f"{name}flux_w_m2", flux, lo=0.0)
    if incidence is None:
        albedo = np.full_like(f, model.albedo)
    else:
        inc = _series(f"{name}incidence_rad", incidence, lo=0.0, hi=math.pi)
        if inc.shape != f.shape:
            raise InputError(
                f"{name}incidence_rad: expected the same length as {name}flux_w_m2 ({f.size}), got {inc.size}"
            )
        albedo = model.albedo_at(inc)
    return (1.0 - albedo) * f + background


def regolith_grid(
    model: RegolithModel | None = None,
    *,
    bottom_depth_m: float = 3.0,
    layers_per_skin_depth: int = 10,
    growth_n: int = 5,
    max_layer_m: float = 0.1,
) -> NDArray[np.float64]:
    """Node depths (m) of the regolith grid: first layer = diurnal skin depth / m, growth 1 + 1/n, capped."""
    model = model or RegolithModel()
    _check_positive("bottom_depth_m", bottom_depth_m)
    _check_positive("max_layer_m", max_layer_m)
    if not (isinstance(layers_per_skin_depth, int | np.integer) and layers_per_skin_depth >= 1):
        raise InputError(f"layers_per_skin_depth: expected an integer >= 1, got {layers_per_skin_depth!r}")
    if not (isinstance(growth_n, int | np.integer) and growth_n >= 1):
        raise InputError(f"growth_n: expected an integer >= 1, got {growth_n!r}")
    # Diurnal skin depth with the surface properties (heat1d / Hayne et al. 2017 Eq. A31-A33).
    kappa = model.k_surface_w_m_k / (model.rho_surface_kg_m3 * _CP0_GRID)
    skin = math.sqrt(kappa * SYNODIC_DAY_S / math.pi)
    dz = min(skin / layers_per_skin_depth, max_layer_m)
    z = [0.0]
    while z[-1] < bottom_depth_m - 1e-9:
        z.append(z[-1] + dz)
        dz = min(dz * (1.0 + 1.0 / growth_n), max_layer_m)
        if len(z) > 100_000:
            raise InputError("regolith grid: too many layers; check bottom_depth_m and max_layer_m")
    if len(z) < 3:
        raise InputError(f"bottom_depth_m: expected a column of at least 3 nodes, got {len(z)} nodes")
    return np.asarray(z, dtype=float)


@dataclass
class _Column:
    z: NDArray
    vol: NDArray
    rho: NDArray
    kc: NDArray
    dzf: NDArray

    @classmethod
    def build(cls, model: RegolithModel, z: NDArray) -> _Column:
        dzf = np.diff(z)
        vol = np.empty_like(z)
        vol[0] = 0.5 * dzf[0]
        vol[-1] = 0.5 * dzf[-1]
        vol[1:-1] = 0.5 * (dzf[:-1] + dzf[1:])
        return cls(z=z, vol=vol, rho=model.density(z), kc=model.contact_conductivity(z), dzf=dzf)

    def enthalpy(self, model: RegolithModel, temp: NDArray) -> float:
        return float(np.sum(self.rho * self.vol * model.enthalpy_j_kg(temp)))


def _run(
    col: _Column,
    model: RegolithModel,
    temp: NDArray,
    absorbed: NDArray,
    dt: float,
    *,
    record: bool,
    sample_idx: NDArray | None = None,
    sample_w: NDArray | None = None,
) -> dict:
    n_nodes = temp.size
    n_steps = absorbed.size if record else 0
    idx = sample_idx if sample_idx is not None else np.zeros(0, dtype=np.int64)
    w = sample_w if sample_w is not None else np.zeros(0)
    out = {
        "surface": np.zeros(n_steps),
        "emit": np.zeros(n_steps),
        "tmax": np.full(n_nodes, -np.inf),
        "tmin": np.full(n_nodes, np.inf),
        "tsum": np.zeros(n_nodes),
        "series": np.zeros((n_steps, idx.size)),
        "face_flux": np.zeros(n_nodes - 1),
        "face_g": np.zeros(n_nodes - 1),
    }
    _integrate(
        temp,
        col.vol,
        col.rho,
        col.kc,
        col.dzf,
        absorbed,
        float(dt),
        model.emissivity * STEFAN_BOLTZMANN,
        float(model.chi),
        np.asarray(model.heat_capacity_coeffs, dtype=float),
        float(model.geothermal_flux_w_m2),
        record,
        out["surface"],
        out["emit"],
        out["tmax"],
        out["tmin"],
        out["tsum"],
        idx,
        w,
        out["series"],
        out["face_flux"],
        out["face_g"],
    )
    return out


def _initial_guess(absorbed: NDArray, model: RegolithModel) -> float:
    # Between the equilibrium temperature of the mean flux (an upper bound) and the mean of the
    # instantaneous equilibrium temperatures (a lower bound, Jensen); spin-up does the rest.
    es = model.emissivity * STEFAN_BOLTZMANN
    tot = absorbed + model.geothermal_flux_w_m2
    upper = (max(float(tot.mean()), 1e-12) / es) ** 0.25
    lower = float(np.mean((np.maximum(tot, 1e-12) / es) ** 0.25))
    return max(0.5 * (upper + lower), 10.0)


def _spin_up(
    col: _Column,
    model: RegolithModel,
    temp: NDArray,
    absorbed: NDArray,
    dt: float,
    tol: float,
    max_cycles: int,
) -> tuple[int, bool, float]:
    qb = model.geothermal_flux_w_m2
    residual = math.inf
    for cycle in range(1, max_cycles + 1):
        start = temp.copy()
        out = _run(col, model, temp, absorbed, dt, record=False)
        n = absorbed.size
        mean_flux = out["face_flux"] / n  # upward conductive flux through each interface (W m^-2)
        mean_g = out["face_g"] / n
        delta = np.concatenate(([0.0], np.cumsum((qb - mean_flux) / mean_g)))
        delta = np.clip(delta, -100.0, 100.0)
        temp += delta
        np.maximum(temp, _T_FLOOR_K, out=temp)
        residual = float(np.max(np.abs(temp - start)))
        if residual < tol:
            return cycle, True, residual
    return max_cycles, False, residual


# ------------------------------------------------------------------------------------------ public API


def regolith_temperature(
    flux_w_m2: ArrayLike,
    dt_s: float,
    incidence_rad: ArrayLike | None = None,
    *,
    model: RegolithModel | None = None,
    background_w_m2: float = 0.0,
    output_depths_m: ArrayLike = (),
    spinup: bool = True,
    spinup_flux_w_m2: ArrayLike | None = None,
    spinup_incidence_rad: ArrayLike | None = None,
    spinup_tol_k: float = 1e-3,
    max_spinup_cycles: int = 300,
    initial_temperature_k: float | None = None,
    bottom_depth_m: float = 3.0,
    max_layer_m: float = 0.1,
) -> RegolithTemperatures:
    """Regolith temperatures (K) vs time and depth for incident solar flux on the horizontal (W m^-2).

    ``flux_w_m2`` is the solar flux on the horizontal surface at each step of ``dt_s`` seconds (zero in
    shadow); ``incidence_rad`` the solar incidence angle for the albedo model (None: constant albedo A0).
    ``background_w_m2`` is a constant flux *absorbed* by the surface in addition (scattered sunlight and
    infrared from surrounding terrain, e.g. in a shadowed crater). The column is first spun up on
    ``spinup_flux_w_m2`` / ``spinup_incidence_rad`` (default: the input series), repeated as one period
    of a periodic forcing until no node changes by more than ``spinup_tol_k`` over a cycle (see the
    module docstring); with ``spinup=False`` it starts uniform at ``initial_temperature_k``.
    """
    model = model or RegolithModel()
    _check_positive("dt_s", dt_s)
    if not (math.isfinite(background_w_m2) and background_w_m2 >= 0.0):
        raise InputError(f"background_w_m2: expected a finite number >= 0, got {background_w_m2!r}")
    _check_positive("spinup_tol_k", spinup_tol_k)
    if not (isinstance(max_spinup_cycles, int | np.integer) and max_spinup_cycles >= 1):
        raise InputError(f"max_spinup_cycles: expected an integer >= 1, got {max_spinup_cycles!r}")
    absorbed = _absorbed("", flux_w_m2, incidence_rad, model, background_w_m2)
    if spinup_flux_w_m2 is None:
        if spinup_incidence_rad is not None:
            raise InputError("spinup_incidence_rad: given without spinup_flux_w_m2")
        spin_absorbed = absorbed
    else:
        spin_absorbed = _absorbed("spinup_", spinup_flux_w_m2, spinup_incidence_rad, model, background_w_m2)

    z = regolith_grid(model, bottom_depth_m=bottom_depth_m, max_layer_m=max_layer_m)
    col = _Column.build(model, z)

    depths = np.atleast_1d(np.asarray(output_depths_m, dtype=float))
    if depths.ndim != 1 or not np.all(np.isfinite(depths)) or (depths.size and depths.min() < 0.0):
        raise InputError(f"output_depths_m: expected finite depths >= 0 m, got {output_depths_m!r}")
    if depths.size and depths.max() > z[-1]:
        raise InputError(f"output_depths_m: expected depths <= the column bottom {z[-1]:.3f} m")
    idx = np.clip(np.searchsorted(z, depths, side="right") - 1, 0, z.size - 2).astype(np.int64)
    w = (depths - z[idx]) / (z[idx + 1] - z[idx])

    if initial_temperature_k is None:
        t0 = _initial_guess(spin_absorbed, model)
    else:
        _check_positive("initial_temperature_k", initial_temperature_k)
        t0 = float(initial_temperature_k)
    temp = np.full(z.size, t0)
    if spinup:
        cycles, converged, residual = _spin_up(
            col, model, temp, spin_absorbed, float(dt_s), spinup_tol_k, int(max_spinup_cycles)
        )
        if not converged:
            warnings.warn(
                f"regolith_temperature: spin-up did not converge in {cycles} cycles "
                f"(residual {residual:.3g} K > spinup_tol_k {spinup_tol_k:g} K)",
                RuntimeWarning,
                stacklevel=2,
            )
    else:
        cycles, converged, residual = 0, False, math.nan

    initial = temp.copy()
    h0 = col.enthalpy(model, initial)
    out = _run(col, model, temp, absorbed, float(dt_s), record=True, sample_idx=idx, sample_w=w)
    return RegolithTemperatures(
        depths_m=z,
        dt_s=float(dt_s),
        surface_k=out["surface"],
        absorbed_w_m2=absorbed,
        emitted_w_m2=out["emit"],
        output_depths_m=depths,
        depth_series_k=out["series"],
        max_k=out["tmax"],
        min_k=out["tmin"],
        mean_k=out["tsum"] / absorbed.size,
        initial_profile_k=initial,
        final_profile_k=temp.copy(),
        stored_energy_change_j_m2=col.enthalpy(model, temp) - h0,
        geothermal_flux_w_m2=float(model.geothermal_flux_w_m2),
        spinup_cycles=cycles,
        spinup_converged=converged,
        spinup_residual_k=residual,
    )


def diurnal_insolation(
    latitude_deg: float,
    *,
    declination_deg: float = 0.0,
    steps_per_day: int = 720,
    n_days: int = 1,
    solar_flux_w_m2: float = SOLAR_CONSTANT_W_M2,
    day_s: float = SYNODIC_DAY_S,
) -> Insolation:
    """Solar flux (W m^-2) on a flat surface at a latitude (deg) over lunar days, starting at local noon.

    ``cos i = sin(lat) sin(dec) + cos(lat) cos(dec) cos(h)`` with the hour angle ``h = 2 pi t / day_s``;
    the flux is ``solar_flux_w_m2 * max(cos i, 0)``. Samples are at ``t = n * day_s / steps_per_day``.
    """
    for name, value, limit in (
        ("latitude_deg", latitude_deg, 90.0),
        ("declination_deg", declination_deg, 90.0),
    ):
        if not (math.isfinite(value) and abs(value) <= limit):
            raise InputError(f"{name}: expected a value in [-{limit}, {limit}] degrees, got {value!r}")
    for name, value in (("steps_per_day", steps_per_day), ("n_days", n_days)):
        if not (isinstance(value, int | np.integer) and value >= 1):
            raise InputError(f"{name}: expected an integer >= 1, got {value!r}")
    if not (math.isfinite(solar_flux_w_m2) and solar_flux_w_m2 >= 0.0):
        raise InputError(f"solar_flux_w_m2: expected a finite number >= 0, got {solar_flux_w_m2!r}")
    _check_positive("day_s", day_s)
    dt = day_s / steps_per_day
    t = np.arange(steps_per_day * n_days) * dt
    h = 2.0 * math.pi * t / day_s
    lat = math.radians(latitude_deg)
    dec = math.radians(declination_deg)
    cos_i = np.clip(math.sin(lat) * math.sin(dec) + math.cos(lat) * math.cos(dec) * np.cos(h), -1.0, 1.0)
    return Insolation(
        time_s=t,
        hour_angle_rad=h,
        flux_w_m2=solar_flux_w_m2 * np.maximum(cos_i, 0.0),
        incidence_rad=np.arccos(cos_i),
        dt_s=dt,
    )


# ------------------------------------------------------------------------------------------ ice stability


@dataclass(frozen=True)
class IceStability:
    """Shallowest depth (m) of stable water ice (NaN if none) and whether a drill reaches it."""

    depth_m: float
    within_drill_depth: bool
    threshold_k: float
    drill_depth_m: float


def ice_stable_depth(
    depths_m: ArrayLike,
    max_temperature_k: ArrayLike,
    threshold_k: float = ICE_STABILITY_THRESHOLD_K,
    *,
    drill_depth_m: float = DRILL_DEPTH_M,
    max_depth_m: float | None = None,
) -> IceStability:
    """Shallowest depth (m) below which the maximum temperature (K) stays under ``threshold_k`` (K).

    ``depths_m`` must increase; between the last node at or above the threshold and the next one the
    crossing is interpolated linearly. The answer is 0 when the whole column is below the threshold and
    NaN when the deepest node considered is not. Only nodes down to ``max_depth_m`` are considered (all
    when None): the geothermal gradient warms the deep column by ~5-25 K per metre, which can push the
    bottom of a 3 m column over the threshold even where ice is stable in the top metre.
    ``within_drill_depth`` is ``depth_m <= drill_depth_m`` (False for NaN).
    """
    z = _series("depths_m", depths_m, lo=0.0)
    t = _series("max_temperature_k", max_temperature_k, lo=0.0)
    if z.shape != t.shape:
        raise InputError(f"max_temperature_k: expected the length of depths_m ({z.size}), got {t.size}")
    if z.size > 1 and np.any(np.diff(z) <= 0.0):
        raise InputError("depths_m: expected strictly increasing depths")
    _check_positive("threshold_k", threshold_k)
    if not (math.isfinite(drill_depth_m) and drill_depth_m >= 0.0):
        raise InputError(f"drill_depth_m: expected a finite number >= 0, got {drill_depth_m!r}")
    if max_depth_m is not None:
        if not (math.isfinite(max_depth_m) and max_depth_m >= z[0]):
            raise InputError(
                f"max_depth_m: expected a depth >= the first depth {z[0]!r} m, got {max_depth_m!r}"
            )
        keep = z <= max_depth_m
        z, t = z[keep], t[keep]
    warm = np.flatnonzero(t >= threshold_k)
    if warm.size == 0:
        depth = float(z[0])
    elif warm[-1] == z.size - 1:
        depth = math.nan
    else:
        j = int(warm[-1])
        frac = (t[j] - threshold_k) / (t[j] - t[j + 1])
        depth = float(z[j] + frac * (z[j + 1] - z[j]))
    within = bool(math.isfinite(depth) and depth <= drill_depth_m)
    return IceStability(
        depth_m=depth, within_drill_depth=within, threshold_k=float(threshold_k), drill_depth_m=drill_depth_m
    )
