"""Closed simulation of one landing: truth, IMU, altimeter, camera fixes (and optionally a velocimeter and
a star tracker) and the navigation filter.

One run: draw the dispersions from the seed, fly the true descent, simulate the IMU along it, and run the
error-state filter from the nominal start, fusing the altimeter (and, when configured, a Doppler
velocimeter below its range and a star tracker) at the altimeter's rate, and a crater fix at each image
time (render the true view, detect, match with the filter's predicted pose, solve the pose, and update
through the chi-square gate). With ``fix_method="auto"`` (the polar preset), when the crater fix gives no
pose or is refused by the gate (at low Sun, where rims are mostly shadow), the same image is matched
against a map image rendered from the onboard DEM for the predicted pose (``correlate.py``) and that fix
goes through the gate instead; each fix record says which method produced it. Everything that scores the
run (true trajectory, estimates, every fix and its true error) is returned.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from kizuna.core.camera import Camera
from kizuna.core.rotations import (
    matrix_to_quat,
    quat_multiply,
    quat_to_matrix,
    quat_to_rotvec,
    rotvec_to_quat,
)
from kizuna.errors import ComputationError, InputError
from kizuna.lunar.nav.correlate import (
    CorrelationOutcome,
    CorrelationSpec,
    OnboardDem,
    correlation_fix,
    horizontal_position_from_shift,
)
from kizuna.lunar.nav.crater_map import CraterMap, MapErrorSpec
from kizuna.lunar.nav.detect import DetectorSpec
from kizuna.lunar.nav.filter import NavFilter, NavState, altimeter_range
from kizuna.lunar.nav.fix import FixOutcome, crater_fix
from kizuna.lunar.nav.imu import ImuSpec, simulate_imu
from kizuna.lunar.nav.pose import pose_difference
from kizuna.lunar.nav.render import Frame, SensorSpec, render, sun_direction_l
from kizuna.lunar.nav.sensors import star_tracker_residual, velocimeter_model
from kizuna.lunar.nav.terrain import Terrain, TerrainSpec
from kizuna.lunar.nav.trajectory import R_CAM_FROM_BODY, DescentProfile, TruthTrajectory, fly_profile

__all__ = ["Scenario", "FixRecord", "LandingResult", "simulate_landing", "POLAR_SUN_ELEVATION_DEG"]

# Sun elevations at LUPEX's south-pole site (deg): the Sun stays below about 1.6 deg there; the polar
# scenario spans 0.5-3 deg.
POLAR_SUN_ELEVATION_DEG = (0.5, 3.0)
# auto: craters first, correlation where they fail (same as "craters,correlation")
FIX_METHODS = ("auto", "craters", "correlation", "craters,correlation", "correlation,craters")


@dataclass(frozen=True)
class Scenario:
    """Everything that defines one landing run (SI units; angles in degrees where the name says so)."""

    seed: int = 1
    profile: DescentProfile = field(default_factory=DescentProfile)
    terrain: TerrainSpec = field(default_factory=TerrainSpec)
    map_error: MapErrorSpec = field(default_factory=MapErrorSpec)
    sensor: SensorSpec = field(default_factory=SensorSpec)
    detector: DetectorSpec = field(default_factory=DetectorSpec)
    image_width_px: int = 1024
    image_height_px: int = 1024
    fov_deg: float = 30.0
    distortion: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)
    sun_azimuth_deg: float = 90.0
    sun_elevation_deg: float = 20.0
    epoch_utc: str | None = None
    site_lat_deg: float = -85.0
    site_lon_deg: float = 30.0
    fix_altitudes_m: tuple[float, ...] = (14_000.0, 9_000.0, 5_000.0, 2_500.0, 1_000.0, 400.0, 200.0)
    images_per_point: int = 2
    image_interval_s: float = 2.0
    imu_rate_hz: float = 50.0
    altimeter_rate_hz: float = 1.0
    altimeter_sigma_m: float = 1.0
    altimeter_sigma_frac: float = 0.002
    altimeter_max_range_m: float = 20_000.0
    init_position_sigma_m: tuple[float, float, float] = (300.0, 300.0, 50.0)
    init_velocity_sigma_m_s: float = 0.5
    init_attitude_sigma_deg: float = 0.05
    pixel_sigma_px: float = 1.0
    gate_prob: float = 0.9999
    example_frames: int = 3  # rendered frames kept with their fixes for the report
    correlation: CorrelationSpec = field(default_factory=CorrelationSpec)
    fix_method: str = "craters"  # one of FIX_METHODS: which image fixes to try, in which order
    min_crater_matches: int = 5  # a crater pose on fewer matched craters is not used (the next method runs)
    # The altimeter informs height only: besides the horizontal position, the attitude columns of its
    # Jacobian are treated as consider terms (see _altimeter_update). Off, attitude is updated too.
    altimeter_height_only: bool = False
    # Optional sensors, off (0) by default. A Doppler velocimeter (a navigation Doppler lidar): velocity
    # over the ground in body axes at the altimeter's rate below velocimeter_max_range_m, white noise of
    # this 1-sigma per axis (0.02 m/s is such a lidar's). A star tracker: attitude at the altimeter's
    # rate, white noise of this 1-sigma per axis (0.003 deg is 11 arcsec).
    velocimeter_sigma_m_s: float = 0.0
    velocimeter_max_range_m: float = 5_000.0
    star_tracker_sigma_deg: float = 0.0

    def __post_init__(self) -> None:
        if not (0.0 < self.fov_deg < 180.0):
            raise InputError(f"fov_deg={self.fov_deg}: expected a field of view in (0, 180) deg")
        for name in ("velocimeter_sigma_m_s", "velocimeter_max_range_m", "star_tracker_sigma_deg"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0.0):
                raise InputError(f"{name}={v}: expected a finite value >= 0 (0 turns the sensor off)")
        if not (-90.0 < self.sun_elevation_deg <= 90.0):
            raise InputError(f"sun_elevation_deg={self.sun_elevation_deg}: expected a value in (-90, 90]")
        if self.fix_method not in FIX_METHODS:
            raise InputError(f"fix_method={self.fix_method!r}: expected one of {', '.join(FIX_METHODS)}")
        if self.images_per_point < 1 or any(a <= 0 for a in self.fix_altitudes_m):
            raise InputError("fix points: expected images_per_point >= 1 and positive fix altitudes (m)")

    @classmethod
    def polar(cls, **changes: object) -> Scenario:
        """Return the polar preset: the Sun 1.5 deg above the horizon (LUPEX's south-pole site).

        Images are matched by craters first and, where that gives no pose, against a map image rendered
        from the onboard DEM (``fix_method="auto"``). Its sensors and fix points are stated here in full
        (IMU, altimeter and camera; fixes down to 200 m; no velocimeter, no star tracker): they are those
        its campaign was measured with. Crater poses need 20 matched craters (at grazing
        Sun, poses on fewer were seen with height errors of 5 sigma; the correlation fix takes those
        images). The altimeter informs height only (``altimeter_height_only``). Campaigns draw the
        elevation in ``POLAR_SUN_ELEVATION_DEG`` (``campaign.Dispersions.polar``).
        """
        base = cls(
            sun_elevation_deg=1.5,
            min_crater_matches=20,
            fix_method="auto",
            altimeter_height_only=True,
            fix_altitudes_m=(14_000.0, 9_000.0, 5_000.0, 2_500.0, 1_000.0, 400.0, 200.0),
            velocimeter_sigma_m_s=0.0,
            star_tracker_sigma_deg=0.0,
        )
        return replace(base, **changes)

    def sun_azel_deg(self) -> tuple[float, float]:
        """Return the Sun's azimuth (deg from north toward east) and elevation (deg) at the target.

        With ``epoch_utc`` they come from the DE421 ephemeris and the Moon's orientation kernels for the
        site (``site_lat_deg``, ``site_lon_deg``); otherwise they are ``sun_azimuth_deg`` and
        ``sun_elevation_deg``.
        """
        if self.epoch_utc is None:
            return self.sun_azimuth_deg, self.sun_elevation_deg
        from kizuna.core.ephemeris import sun_azel_at_site

        az, el = sun_azel_at_site(self.epoch_utc, self.site_lat_deg, self.site_lon_deg)
        return math.degrees(float(az)) % 360.0, math.degrees(float(el))

    def camera(self) -> Camera:
        """Return the navigation camera."""
        return Camera.from_fov(self.image_width_px, self.image_height_px, self.fov_deg, self.distortion)

    def with_seed(self, seed: int) -> Scenario:
        """Return the scenario with another seed (and a terrain and map drawn from it)."""
        return replace(
            self,
            seed=seed,
            terrain=replace(self.terrain, seed=seed),
            map_error=replace(self.map_error, seed=seed),
        )


@dataclass(frozen=True)
class FixRecord:
    """One attempted fix: time (s), altitude (m), counts, outcome, true error (m, L) and sigma (m).

    ``error_l_m`` and ``sigma_l_m``: the fix position given the onboard (predicted) attitude, whose error
    is included in the sigma; ``error_true_att_l_m``: the fix position given the true attitude, the
    accuracy of the crater fix itself (as with star-tracker attitude). A correlation fix measures the
    horizontal position only: its z is the predicted height, with the predicted height's error and sigma.
    """

    t_s: float
    altitude_m: float
    gsd_m: float
    n_detected: int
    n_mapped: int
    n_matched: int
    status: str  # accepted | rejected | no_fix
    reason: str
    nis: float
    error_l_m: tuple[float, float, float]
    sigma_l_m: tuple[float, float, float]
    latency_s: float
    error_true_att_l_m: tuple[float, float, float] = (float("nan"),) * 3
    method: str = "craters"  # craters | correlation: the method whose result this record holds
    work_gsd_m: float = float("nan")  # ground pixel of the binned image a correlation fix matched (m)

    @property
    def error_m(self) -> float:
        """Return the 3-D position error of the fix (m), NaN without a pose."""
        return float(np.linalg.norm(self.error_l_m))

    @property
    def error_true_att_m(self) -> float:
        """Return the 3-D position error of the fix given the true attitude (m), NaN without a pose."""
        return float(np.linalg.norm(self.error_true_att_l_m))


@dataclass
class LandingResult:
    """Everything from one run: scenario, truth, estimates at 1 Hz, fix records, example frames."""

    scenario: Scenario
    truth: TruthTrajectory
    estimate: pd.DataFrame
    fixes: list[FixRecord]
    frames: list[tuple[Frame, FixOutcome]]
    runtime_s: float
    final_error_l_m: NDArray[np.float64]
    final_cov_l_m2: NDArray[np.float64]

    @property
    def final_sigma_l_m(self) -> NDArray[np.float64]:
        """Return the filter's final 1-sigma position uncertainty per axis (m, L)."""
        return np.sqrt(np.diag(self.final_cov_l_m2))

    @property
    def final_nees(self) -> float:
        """Return the normalised estimation error squared of the final position (3 dof)."""
        e = self.final_error_l_m
        return float(e @ np.linalg.solve(self.final_cov_l_m2, e))

    def summary(self) -> dict[str, float | int]:
        """Return the stable summary keys (SI units) of this run."""
        acc = [f for f in self.fixes if f.status == "accepted"]
        false = [f for f in acc if _is_false_fix(f)]
        strict = [f for f in acc if _is_false_fix(f, strict=True)]
        lat = [f.latency_s for f in self.fixes if np.isfinite(f.latency_s)]
        sun_az, sun_el = self.scenario.sun_azel_deg()
        return {
            "final_position_error_m": float(np.linalg.norm(self.final_error_l_m)),
            "final_horizontal_error_m": float(np.hypot(*self.final_error_l_m[:2])),
            "final_altitude_m": float(self.truth.r_l[-1, 2] - self.truth.target_l[2]),
            "final_position_3sigma_m": float(3.0 * np.linalg.norm(self.final_sigma_l_m)),
            "final_position_nees": self.final_nees,
            "fixes_attempted": len(self.fixes),
            "fixes_accepted": len(acc),
            "fixes_rejected": sum(f.status == "rejected" for f in self.fixes),
            "fixes_without_pose": sum(f.status == "no_fix" for f in self.fixes),
            "false_fixes": len(false),
            "false_fixes_strict": len(strict),
            "fixes_accepted_craters": sum(f.method == "craters" for f in acc),
            "fixes_accepted_correlation": sum(f.method == "correlation" for f in acc),
            "fixes_attempted_correlation": sum(f.method == "correlation" for f in self.fixes),
            "median_fix_latency_s": float(np.median(lat)) if lat else float("nan"),
            "median_fix_error_gsd": _median([f.error_true_att_m / f.gsd_m for f in acc if f.n_matched >= 5]),
            "median_fix_error_onboard_attitude_gsd": _median(
                [f.error_m / f.gsd_m for f in acc if f.n_matched >= 5]
            ),
            "runtime_s": self.runtime_s,
            "seed": self.scenario.seed,
            "sun_azimuth_deg": sun_az,
            "sun_elevation_deg": sun_el,
        }


def _median(x: list[float]) -> float:
    return float(np.median(x)) if x else float("nan")


def _is_false_fix(f: FixRecord, strict: bool = False) -> bool:
    """A false fix: its true error exceeds 5 sigma (Mahalanobis over the axes) and 5 ground pixels.

    With ``strict`` either condition alone makes it false. A correlation fix measures the horizontal
    position only (its height is the filter's prediction), so only x and y count.
    """
    axes = slice(0, 2) if f.method == "correlation" else slice(0, 3)  # correlation: horizontal only
    e = np.asarray(f.error_l_m)[axes]
    s = np.maximum(np.asarray(f.sigma_l_m)[axes], 1e-9)
    beyond_sigma = float(np.sqrt(np.sum((e / s) ** 2))) > 5.0
    beyond_px = float(np.linalg.norm(e)) > 5.0 * f.gsd_m
    return (beyond_sigma or beyond_px) if strict else (beyond_sigma and beyond_px)


def _fix_times(truth: TruthTrajectory, sc: Scenario) -> list[float]:
    """Image times: the first crossing of each fix altitude, then images_per_point at the interval."""
    alt = truth.altitude_over_target()
    times = []
    for a in sc.fix_altitudes_m:
        below = np.nonzero(alt <= a)[0]
        if below.size == 0:
            continue
        t0 = float(truth.t_s[below[0]])
        for i in range(sc.images_per_point):
            t = t0 + i * sc.image_interval_s
            if t < truth.t_s[-1]:
                times.append(t)
    return sorted(times)


def _pose_cov_from_filter(P: NDArray) -> NDArray[np.float64]:
    """6x6 pose covariance [dtheta, dp] (L) from the filter's 15x15 [dr, dv, dtheta, ...]."""
    idx = np.r_[6:9, 0:3]
    return P[np.ix_(idx, idx)]


def simulate_landing(sc: Scenario, progress: Callable[[float, str], None] | None = None) -> LandingResult:
    """Simulate one landing of the scenario; ``progress(fraction, text)`` is called as it goes."""
    t_start = time.perf_counter()
    rng = np.random.default_rng([sc.seed, 20240120])
    terrain = Terrain(sc.terrain)
    cmap = CraterMap(terrain, sc.map_error)
    dem = OnboardDem(terrain, sc.correlation.map_resolution_m, cmap.tie_offset_m)
    camera = sc.camera()
    sun = sun_direction_l(*sc.sun_azel_deg())
    imu = ImuSpec.default(sc.imu_rate_hz)
    dt = imu.dt_s

    target = np.array([0.0, 0.0, float(terrain.height(0.0, 0.0, resolution_m=0.1))])
    sig_r = np.asarray(sc.init_position_sigma_m, dtype=float)
    dr0 = rng.normal(0.0, 1.0, 3) * sig_r
    dv0 = rng.normal(0.0, sc.init_velocity_sigma_m_s, 3)
    truth = fly_profile(sc.profile, target, dt, dr0, dv0)
    f_b, w_b, _ = simulate_imu(truth.t_s, truth.r_l, truth.v_l, truth.q_lb, imu, rng)

    # the filter starts at the nominal state; its attitude error is drawn around the truth
    att_sig = math.radians(sc.init_attitude_sigma_deg)
    q0 = quat_multiply(rotvec_to_quat(rng.normal(0.0, att_sig, 3)), truth.q_lb[0])
    P0 = np.zeros((15, 15))
    P0[0:3, 0:3] = np.diag(sig_r**2)
    P0[3:6, 3:6] = np.eye(3) * sc.init_velocity_sigma_m_s**2
    P0[6:9, 6:9] = np.eye(3) * att_sig**2
    P0[9:12, 9:12] = np.eye(3) * imu.accel_bias_sigma_m_s2**2
    P0[12:15, 12:15] = np.eye(3) * imu.gyro_bias_sigma_rad_s**2
    nav = NavFilter(truth.r_l[0] - dr0, truth.v_l[0] - dv0, q0, P0, imu, gate_prob=sc.gate_prob)

    # events: altimeter samples and images, as IMU step indices
    n_steps = truth.t_s.size - 1
    fix_steps = {truth.index_at(t) for t in _fix_times(truth, sc)}
    alt_every = max(1, int(round(sc.imu_rate_hz / sc.altimeter_rate_hz)))
    record_every = int(round(sc.imu_rate_hz))
    beam_b = np.array([0.0, 0.0, -1.0])

    def onboard_dem(x: NDArray, y: NDArray) -> NDArray:
        return terrain.height(x, y, resolution_m=5.0)

    def true_ground(x: NDArray, y: NDArray) -> NDArray:
        return terrain.height(x, y, resolution_m=0.5)

    rows: list[dict] = []
    fixes: list[FixRecord] = []
    frames: list[tuple[Frame, FixOutcome]] = []
    keep_at = set()
    if sc.example_frames > 0 and fix_steps:
        ordered = sorted(fix_steps)
        picks = np.linspace(0, len(ordered) - 1, min(sc.example_frames, len(ordered))).round().astype(int)
        keep_at = {ordered[i] for i in picks}
    k = 0
    event_steps = sorted(
        set(range(0, n_steps + 1, alt_every)) | fix_steps | set(range(0, n_steps + 1, record_every))
    )
    for ev in event_steps:
        if ev > k:
            nav.predict_many(f_b[k:ev], w_b[k:ev], dt)
            k = ev
        t = truth.t_s[k]
        if k % record_every == 0:
            st = nav.state
            P = nav.covariance
            rows.append(
                {
                    "t_s": t,
                    **{f"true_{a}_m": truth.r_l[k, i] for i, a in enumerate("xyz")},
                    **{f"est_{a}_m": st.r_l[i] for i, a in enumerate("xyz")},
                    **{f"true_v{a}_m_s": truth.v_l[k, i] for i, a in enumerate("xyz")},
                    **{f"est_v{a}_m_s": st.v_l[i] for i, a in enumerate("xyz")},
                    **{f"sigma_{a}_m": math.sqrt(P[i, i]) for i, a in enumerate("xyz")},
                    "altitude_m": truth.r_l[k, 2] - target[2],
                }
            )
        if k % alt_every == 0 and k > 0:
            try:
                rho, _ = altimeter_range(truth.r_l[k], truth.q_lb[k], beam_b, true_ground)
            except ComputationError:
                rho = float("inf")
            if rho < sc.altimeter_max_range_m:
                sigma = sc.altimeter_sigma_m + sc.altimeter_sigma_frac * rho
                _altimeter_update(
                    nav, rho + rng.normal(0.0, sigma), sigma, beam_b, onboard_dem, sc.altimeter_height_only
                )
        if k % alt_every == 0 and k > 0:
            altitude = truth.r_l[k, 2] - target[2]
            if sc.velocimeter_sigma_m_s > 0 and altitude < sc.velocimeter_max_range_m:
                _velocimeter_update(nav, truth.v_l[k], truth.q_lb[k], sc.velocimeter_sigma_m_s, rng)
            if sc.star_tracker_sigma_deg > 0:
                _star_tracker_update(nav, truth.q_lb[k], math.radians(sc.star_tracker_sigma_deg), rng)
        if k in fix_steps:
            fixes.append(
                _do_fix(sc, nav, truth, k, terrain, cmap, dem, camera, sun, rng, frames, k in keep_at)
            )
            if progress is not None:
                progress(k / n_steps, f"fix {len(fixes)} at {truth.r_l[k, 2] - target[2]:.0f} m")
    if k < n_steps:
        nav.predict_many(f_b[k:n_steps], w_b[k:n_steps], dt)
    st = nav.state
    P = nav.covariance
    est = pd.DataFrame(rows)
    return LandingResult(
        scenario=sc,
        truth=truth,
        estimate=est,
        fixes=fixes,
        frames=frames,
        runtime_s=time.perf_counter() - t_start,
        final_error_l_m=st.r_l - truth.r_l[-1],
        final_cov_l_m2=P[0:3, 0:3].copy(),
    )


def _velocimeter_update(
    nav: NavFilter, v_true_l: NDArray, q_true_lb: NDArray, sigma_m_s: float, rng: np.random.Generator
) -> None:
    """Gated update with one velocimeter sample: the true velocity in body axes plus white noise (m/s)."""
    z = quat_to_matrix(q_true_lb).T @ v_true_l + rng.normal(0.0, sigma_m_s, 3)
    st = nav.state
    h, H = velocimeter_model(st.v_l, st.q_lb)
    nav.update(z, h, H, np.eye(3) * sigma_m_s**2)


def _star_tracker_update(
    nav: NavFilter, q_true_lb: NDArray, sigma_rad: float, rng: np.random.Generator
) -> None:
    """Gated update with one star-tracker attitude q_meas = Exp(eta) q_true (eta: sigma_rad per axis, L)."""
    q_meas = quat_multiply(rotvec_to_quat(rng.normal(0.0, sigma_rad, 3)), q_true_lb)
    y, H = star_tracker_residual(q_meas, nav.state.q_lb)
    nav.update(y, np.zeros(3), H, np.eye(3) * sigma_rad**2)


def _altimeter_update(
    nav: NavFilter, rho: float, sigma: float, beam_b: NDArray, dem: Callable, height_only: bool = False
) -> None:
    """Altimeter update that informs height and attitude, or with ``height_only`` height alone.

    Through the terrain slope a slant range also depends on horizontal position, but only over the
    short distances where the onboard DEM is locally planar; with horizontal uncertainties of hundreds
    of metres over cratered ground that linearisation is wrong and would make the filter overconfident.
    The horizontal columns of the Jacobian are therefore moved into the measurement noise (a "consider"
    treatment): R = sigma^2 + h_c P_cc h_c^T over c = (x, y). With ``height_only`` (the polar preset) the
    attitude columns go there too, c = (x, y, dtheta): with a beam that meets the ground kilometres
    ahead while braking, a wrong slope at the beam's foot would tilt the attitude estimate, whose error
    then drives the horizontal position during the terminal descent, where at grazing Sun the image
    fixes are few.
    """
    st = nav.state
    try:
        pred, H = altimeter_range(st.r_l, st.q_lb, beam_b, dem, fd_step_m=20.0)
    except ComputationError:
        return
    c = np.r_[0:2, 6:9] if height_only else np.r_[0:2]
    h_c = H[c].copy()
    P = nav.covariance
    R = sigma * sigma + float(h_c @ P[np.ix_(c, c)] @ h_c)
    H = H.copy()
    H[c] = 0.0
    nav.update(np.array([rho]), np.array([pred]), H[None, :], np.array([[R]]))


def _position_given_attitude(fix, R_cw_pred: NDArray, P_pred: NDArray) -> tuple[NDArray, NDArray]:
    """The position a pose fix gives once the attitude is the onboard (predicted) one, and its covariance.

    A narrow-field view of the ground confuses a lateral shift with a tilt, so a pose fix alone has a
    large position error strongly correlated with its attitude error; the filter removes it with its own
    attitude knowledge. This conditions the fix on the predicted attitude (the best linear estimate,
    p + S_pt S_tt^-1 (theta_pred - theta_fix)), adding the predicted attitude's own uncertainty, so that
    fix errors can be scored as the position information the fix delivers.
    """
    S = fix.cov
    A = S[3:6, 0:3] @ np.linalg.inv(S[0:3, 0:3])
    dtheta = pose_difference(R_cw_pred, fix.p_w, fix.R_cw, fix.p_w)[:3]
    p_c = fix.p_w + A @ dtheta
    cov = S[3:6, 3:6] - A @ S[0:3, 3:6] + A @ P_pred[0:3, 0:3] @ A.T
    return p_c, 0.5 * (cov + cov.T)


def _fix_order(sc: Scenario) -> tuple[str, ...]:
    """The fix methods to try on each image, in order, for the scenario's ``fix_method`` and Sun."""
    return ("craters", "correlation") if sc.fix_method == "auto" else tuple(sc.fix_method.split(","))


def _do_fix(
    sc: Scenario,
    nav: NavFilter,
    truth: TruthTrajectory,
    k: int,
    terrain: Terrain,
    cmap: CraterMap,
    dem: OnboardDem,
    camera: Camera,
    sun: NDArray,
    rng: np.random.Generator,
    frames: list,
    keep: bool,
) -> FixRecord:
    """Render the true view at step k, run the image fixes with the filter's prediction, update the filter.

    The methods of ``_fix_order`` are tried in turn; the first one the gate accepts ends the image.
    The record is that of the last method tried, its reason naming what the earlier ones returned.
    """
    R_lb_true = quat_to_matrix(truth.q_lb[k])
    R_cw_true = R_CAM_FROM_BODY @ R_lb_true.T
    p_true = truth.r_l[k]
    altitude = float(p_true[2] - truth.target_l[2])
    nan3 = (float("nan"),) * 3
    try:
        frame = render(terrain, camera, R_cw_true, p_true, sun, sc.sensor, rng)
    except InputError as exc:
        return FixRecord(truth.t_s[k], altitude, float("nan"), 0, 0, 0, "no_fix", f"render: {exc}",
                         float("nan"), nan3, nan3, float("nan"))  # fmt: skip
    counts, latency, tried = (0, 0), 0.0, []
    for method in _fix_order(sc):
        st = nav.state
        R_cw_pred = R_CAM_FROM_BODY @ quat_to_matrix(st.q_lb).T
        P_pose = _pose_cov_from_filter(nav.covariance)
        ground = float(terrain.height(st.r_l[0], st.r_l[1], resolution_m=5.0))
        if method == "craters":
            out = crater_fix(
                frame.image, camera, R_cw_pred, st.r_l, P_pose, sun, cmap, ground, sc.detector,
                sigma_px=sc.pixel_sigma_px, gate_prob=sc.gate_prob, rng=rng,
            )  # fmt: skip
            if keep:
                frames.append((frame, out))
            counts = (len(out.detections), len(out.map_craters))
            latency += out.latency_s
            if out.pose is None or out.n_matched < sc.min_crater_matches:
                why = out.reason or f"only {out.n_matched} matches (< {sc.min_crater_matches})"
                rec = FixRecord(truth.t_s[k], altitude, out.gsd_m, *counts, 0, "no_fix", why,
                                float("nan"), nan3, nan3, latency)  # fmt: skip
            else:
                rec = _crater_update(nav, out, R_cw_pred, R_cw_true, P_pose, p_true, truth.t_s[k], altitude)
                rec = replace(rec, latency_s=latency)
        else:
            corr = correlation_fix(
                frame.image, camera, R_cw_pred, st.r_l, P_pose, sun, dem, ground, sc.correlation
            )  # fmt: skip
            latency += corr.latency_s
            rec = _correlation_update(
                nav, corr, st, P_pose, R_lb_true, p_true, truth.t_s[k], altitude, latency
            )
            rec = replace(rec, n_detected=counts[0], n_mapped=counts[1])
        if rec.status == "accepted":
            return replace(rec, reason="; ".join(tried)) if tried else rec
        tried.append(f"{method}: {rec.reason or rec.status}")
    return replace(rec, reason="; ".join(tried)) if len(tried) > 1 else rec


def _correlation_update(
    nav: NavFilter,
    corr: CorrelationOutcome,
    st: NavState,
    P_pose: NDArray,
    R_lb_true: NDArray,
    p_true: NDArray,
    t_s: float,
    altitude: float,
    latency: float,
) -> FixRecord:
    """Fuse a correlation fix in the filter through the gate and score it against the truth."""
    nan3 = (float("nan"),) * 3
    if corr.fix is None:
        return FixRecord(t_s, altitude, corr.gsd_m, 0, 0, 0, "no_fix", corr.reason, float("nan"), nan3, nan3,
                         latency, method="correlation", work_gsd_m=corr.work_gsd_m)  # fmt: skip
    fix = corr.fix
    res = nav.update_image_shift(fix.shift_px, fix.H_r, fix.H_theta, fix.cov_px2)
    p_c, cov_c = horizontal_position_from_shift(fix, st.r_l, P_pose)
    # the same fix given the true attitude: remove what the onboard attitude error put into the shift
    dtheta = quat_to_rotvec(matrix_to_quat(R_lb_true @ quat_to_matrix(st.q_lb).T))
    p_t, _ = horizontal_position_from_shift(
        replace(fix, shift_px=fix.shift_px - fix.H_theta @ dtheta), st.r_l, P_pose
    )
    status = "accepted" if res.accepted else "rejected"
    reason = "" if res.accepted else f"NIS {res.nis:.1f} > gate {res.gate:.1f}"
    return FixRecord(
        t_s, altitude, corr.gsd_m, 0, 0, 0, status, reason, float(res.nis),
        tuple(float(e) for e in (p_c - p_true)), tuple(float(v) for v in np.sqrt(np.diag(cov_c))),
        latency, tuple(float(e) for e in (p_t - p_true)), method="correlation", work_gsd_m=corr.work_gsd_m,
    )  # fmt: skip


def _crater_update(
    nav: NavFilter,
    out: FixOutcome,
    R_cw_pred: NDArray,
    R_cw_true: NDArray,
    P_pose: NDArray,
    p_true: NDArray,
    t_s: float,
    altitude: float,
) -> FixRecord:
    """Fuse a crater pose fix in the filter through the gate and score it against the truth."""
    fix = out.pose
    R_lb_meas = fix.R_cw.T @ R_CAM_FROM_BODY
    q_meas = matrix_to_quat(R_lb_meas)
    cov6 = fix.cov
    idx = np.r_[3:6, 0:3]
    R6 = cov6[np.ix_(idx, idx)]  # reorder to (position, attitude)
    res = nav.update_pose(fix.p_w, q_meas, R6)
    p_c, cov_c = _position_given_attitude(fix, R_cw_pred, P_pose)
    err = tuple(float(e) for e in (p_c - p_true))
    sig = tuple(float(s) for s in np.sqrt(np.diag(cov_c)))
    p_t, _ = _position_given_attitude(fix, R_cw_true, np.zeros((6, 6)))
    err_t = tuple(float(e) for e in (p_t - p_true))
    status = "accepted" if res.accepted else "rejected"
    reason = "" if res.accepted else f"NIS {res.nis:.1f} > gate {res.gate:.1f}"
    counts = (len(out.detections), len(out.map_craters), out.n_matched)
    return FixRecord(t_s, altitude, out.gsd_m, *counts, status, reason, float(res.nis), err, sig,
                     out.latency_s, err_t)  # fmt: skip
