"""Verification of identification hypotheses: project the catalogue for a pose, match the projected rims
to the detections, refine the pose on the matches, and score the result against chance.

Used by :func:`kizuna.lunar.nav.identify.identify`; see its module for the method as a whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree
from scipy.stats import poisson

from kizuna.core.camera import Camera
from kizuna.core.constants import MOON_RADIUS_M
from kizuna.lunar.nav.conics import project_circles
from kizuna.lunar.nav.id_index import CraterIndex
from kizuna.lunar.nav.pose import _lm_refine, projection_jacobian

if TYPE_CHECKING:
    from kizuna.lunar.nav.identify import IdentifyConfig

__all__ = ["Check", "Verifier", "observed_shape_px"]

_CHI2_5_0999 = 20.515  # 0.999 quantile of chi-square with 5 degrees of freedom


def observed_shape_px(E: NDArray[np.float64]) -> NDArray[np.float64]:
    """Elongation embedding of pixel ellipses (square pixels assumed for the shape comparison)."""
    k = np.log(E[:, 2] / E[:, 3])
    return np.stack([k * np.cos(2.0 * E[:, 4]), k * np.sin(2.0 * E[:, 4])], axis=-1)


@dataclass
class Check:
    """A checked pose: R_cam_from_me, position (m, MOON_ME), matches, predicted count, chance, fit."""

    R: NDArray[np.float64]
    p: NDArray[np.float64]
    det_idx: NDArray[np.int64]
    rows: NDArray[np.int64]
    n_pred: int
    chance_log10: float
    rms_px: float
    cov: NDArray[np.float64] | None = None


class Verifier:
    """Projects catalogue craters for a pose and matches them to the detections."""

    def __init__(self, det: NDArray, index: CraterIndex, camera: Camera, cfg: IdentifyConfig) -> None:
        self.det = det
        self.index = index
        self.camera = camera
        self.cfg = cfg
        self.tree = cKDTree(det[:, :2])
        # craters a detector of this list would report: sizes from the low end of the detections
        self.a_min = 0.9 * float(np.percentile(det[:, 2], 5))
        self.b_min = 0.9 * float(np.percentile(det[:, 3], 5))
        self.area = float(camera.width * camera.height)
        self.cat = index.catalog
        self.unit = self.cat.unit_me
        self.shape = observed_shape_px(det)

    def predict(self, R: NDArray, p: NDArray, rows: NDArray | None = None) -> tuple[NDArray, NDArray]:
        """Catalogue rows wholly in view, facing the camera and large enough, and their predicted ellipses."""
        dist = float(np.linalg.norm(p))
        if rows is None:
            if dist <= MOON_RADIUS_M:
                return np.empty(0, dtype=np.int64), np.empty((0, 5))
            horizon = math.acos(MOON_RADIUS_M / dist)
            rows = np.asarray(self.index.unit_tree.query_ball_point(p / dist, 2.0 * math.sin(0.5 * horizon)))
            rows = rows.astype(np.int64)
        if rows.size == 0:
            return rows, np.empty((0, 5))
        X = self.cat.centres_me_m[rows]
        n = self.unit[rows]
        to_cam = p - X
        facing = np.einsum("ij,ij->i", n, to_cam) > 0.34 * np.linalg.norm(to_cam, axis=1)  # emission < 70 deg
        rows, X, n = rows[facing], X[facing], n[facing]
        E = project_circles(X, self.cat.radius_m[rows], self.camera, R, p, normals_w=n)
        W, H = self.camera.width, self.camera.height
        with np.errstate(invalid="ignore"):
            ok = (
                np.isfinite(E[:, 0])
                & (E[:, 0] - E[:, 2] >= -0.5)
                & (E[:, 1] - E[:, 2] >= -0.5)
                & (E[:, 0] + E[:, 2] <= W - 0.5)
                & (E[:, 1] + E[:, 2] <= H - 0.5)
                & (E[:, 2] >= self.a_min)
                & (E[:, 3] >= self.b_min)
            )
        return rows[ok], E[ok]

    def match(
        self, E: NDArray, gate_px: NDArray | float, strict: bool = False
    ) -> tuple[NDArray, NDArray, NDArray]:
        """One-to-one matches of predicted ellipses to detections, closest first.

        Loose (``strict`` False, for rough poses): centre within ``gate_px`` and semi-major axes within
        a factor 4/3. Strict: the centre offset in units of gate_px / 3.5, the log size ratio and the
        elongation embedding in units of their noise must together pass the 0.999 chi-square quantile
        of 5 degrees of freedom, so that the ellipse's size and shape must agree as well as its place.
        """
        e = np.empty(0, dtype=np.int64)
        if E.shape[0] == 0:
            return e, e, np.empty(0)
        gate = np.broadcast_to(np.asarray(gate_px, dtype=float), E.shape[:1])
        d, j = self.tree.query(E[:, :2], k=4, distance_upper_bound=float(gate.max()))
        pairs = []
        for k in range(d.shape[1]):
            i = np.flatnonzero(np.isfinite(d[:, k]) & (d[:, k] <= gate))
            jj = j[i, k]
            if strict:
                sc = gate[i] / 3.5
                s_a = np.hypot(self.cfg.axis_sigma_frac, 1.0 / E[i, 2])
                s_k = np.hypot(math.sqrt(2.0) * self.cfg.axis_sigma_frac, 1.0 / E[i, 3])
                d2 = (
                    (d[i, k] / sc) ** 2
                    + (np.log(self.det[jj, 2] / E[i, 2]) / s_a) ** 2
                    + np.sum((self.shape[jj] - observed_shape_px(E[i])) ** 2, axis=1) / s_k**2
                )
                good = d2 <= _CHI2_5_0999
                key = d2[good]
            else:
                ratio = self.det[jj, 2] / E[i, 2]
                good = (ratio > 0.75) & (ratio < 1.33)
                key = d[i[good], k]
            pairs.append(np.stack([key, i[good], jj[good]], axis=1))
        P = np.concatenate(pairs)
        if P.shape[0] == 0:
            return e, e, np.empty(0)
        P = P[np.argsort(P[:, 0])]
        used_e, used_d = set(), set()
        ie, jd, dd = [], [], []
        for dist, i, j_ in P:
            i, j_ = int(i), int(j_)
            if i in used_e or j_ in used_d:
                continue
            used_e.add(i)
            used_d.add(j_)
            ie.append(i)
            jd.append(j_)
            dd.append(dist)
        return np.array(ie, dtype=np.int64), np.array(jd, dtype=np.int64), np.array(dd)

    def chance_log10(self, n_pred: int, n_match: int, gate_px: float) -> float:
        """log10 of the chance of n_match or more matches beyond the four a pose fit can make itself,
        were the detections scattered at random (Poisson; size and shape agree by chance 1 time in 4)."""
        p1 = min(1.0, self.det.shape[0] * math.pi * gate_px * gate_px / self.area) * 0.25
        lam = max(n_pred * p1, 1e-12)
        return float(poisson.logsf(max(n_match - 4, 1) - 1, lam) / math.log(10.0))

    def refine(
        self, R: NDArray, p: NDArray, rows: NDArray, det_idx: NDArray
    ) -> tuple[NDArray, NDArray, float]:
        """Refine the pose on matched centres (rim-centre offset removed); return pose and RMS (px)."""
        X = self.cat.centres_me_m[rows]
        n = self.unit[rows]
        uv = self.det[det_idx, :2]
        sig = np.hypot(self.cfg.centre_sigma_px, 0.02 * self.det[det_idx, 2])
        for _ in range(2):
            E = project_circles(X, self.cat.radius_m[rows], self.camera, R, p, normals_w=n)
            uvp, _, _ = projection_jacobian(X, self.camera, R, p)
            bias = E[:, :2] - uvp
            if not np.all(np.isfinite(bias)):
                break
            R, p, _ = _lm_refine(R, p, X, uv - bias, self.camera, sig, max_iter=15)
        E = project_circles(X, self.cat.radius_m[rows], self.camera, R, p, normals_w=n)
        res = E[:, :2] - uv
        rms = float(np.sqrt(np.nanmean(np.sum(res**2, axis=1))))
        return R, p, rms

    def quick_look(self, Rs: NDArray, ps: NDArray, anchor_rows: NDArray, k: int = 24) -> NDArray[np.bool_]:
        """For many poses at once: do the k catalogue craters nearest each anchor land on detections?

        Crater centres are projected as points and their semi-major axes taken as f r / range (both
        first-order), gates as in the first ring of :meth:`grow`; a pose passes when its matches beat
        chance as there. Cheap enough to screen every candidate pose before the full check.
        """
        n = Rs.shape[0]
        kk = min(k, self.unit.shape[0])
        _, near = self.index.unit_tree.query(self.unit[anchor_rows], k=kk)
        near = near.reshape(n, kk)
        X = self.cat.centres_me_m[near]  # (n, k, 3)
        d = X - ps[:, None, :]
        xc = np.einsum("nij,nkj->nki", Rs, d)
        rng_ = np.linalg.norm(d, axis=2)
        facing = -np.einsum("nkj,nkj->nk", self.unit[near], d) > 0.34 * rng_
        z = xc[..., 2]
        cam = self.camera
        with np.errstate(divide="ignore", invalid="ignore"):
            uu = cam.fx * xc[..., 0] / z + cam.cx
            vv = cam.fy * xc[..., 1] / z + cam.cy
            a = cam.fx * self.cat.radius_m[near] / rng_
        seen = (
            facing
            & (z > 0)
            & (uu - a >= -0.5)
            & (vv - a >= -0.5)
            & (uu + a <= cam.width - 0.5)
            & (vv + a <= cam.height - 0.5)
            & (a >= self.a_min)
        )
        gate = 4.0 * self.cfg.centre_sigma_px + 0.1 * np.where(seen, a, 0.0)
        pts = np.stack([np.where(seen, uu, -1e9), np.where(seen, vv, -1e9)], axis=-1).reshape(-1, 2)
        dist, j = self.tree.query(pts, k=1, distance_upper_bound=float(gate.max()))
        dist, j = dist.reshape(n, kk), j.reshape(n, kk)
        hit = seen & np.isfinite(dist) & (dist <= gate)
        jj = np.where(hit, j, 0)
        ratio = self.det[jj, 2] / np.where(hit, a, 1.0)
        hit &= (ratio > 0.75) & (ratio < 1.33)
        count = hit.sum(axis=1)
        n_seen = seen.sum(axis=1)
        p1 = np.minimum(1.0, self.det.shape[0] * math.pi * np.mean(gate**2, axis=1) / self.area) * 0.5
        lam = n_seen * p1
        return count >= np.maximum(np.minimum(4, n_seen), np.maximum(3, lam + 3.0 * np.sqrt(lam) + 2.0))

    def grow(self, R: NDArray, p: NDArray, seed_rows: NDArray, seed_det: NDArray) -> Check | None:
        """Check a pose from a triad: match outward from the triad, refining as matches accrue, then all.

        A pose from three close craters is good near them and worse with distance, so the gates widen
        with the image distance from the craters matched so far; each ring of matches refines the pose.
        """
        cfg = self.cfg
        det_m = seed_det
        centre = self.unit[seed_rows].sum(axis=0)
        centre /= np.linalg.norm(centre)
        n_cat = self.unit.shape[0]
        for k in (24, 72, 216):
            near = np.asarray(self.index.unit_tree.query(centre, k=min(k, n_cat))[1], dtype=np.int64)
            rows, E = self.predict(R, p, near)
            if rows.size < 3:
                return None
            xy = self.det[det_m, :2]
            c = xy.mean(axis=0)
            spread = max(20.0, float(np.max(np.hypot(*(xy - c).T))))
            far = np.maximum(0.0, np.hypot(*(E[:, :2] - c).T) - spread)
            gate = 4.0 * cfg.centre_sigma_px + 0.1 * E[:, 2] + 0.1 * far
            ie, jd, _ = self.match(E, gate)
            # matches by chance in this ring, were the pose wrong
            p1 = min(1.0, self.det.shape[0] * math.pi * float(np.mean(gate**2)) / self.area) * 0.5
            lam = rows.size * p1
            if ie.size < max(min(4, rows.size), 3 + (k > 24), lam + 3.0 * math.sqrt(lam) + 2.0):
                return None
            R, p, _ = self.refine(R, p, rows[ie], jd)
            det_m = jd
        return self.finish(R, p)

    def finish(self, R: NDArray, p: NDArray) -> Check | None:
        """Match every predicted crater with tight gates, refine until the matches settle, and score."""
        cfg = self.cfg
        prev = None
        for _ in range(4):
            rows, E = self.predict(R, p)
            if rows.size < 3:
                return None
            gate = 3.5 * np.hypot(cfg.centre_sigma_px, 0.02 * E[:, 2])
            ie, jd, _ = self.match(E, gate, strict=True)
            if ie.size < 4:
                return None
            R, p, rms = self.refine(R, p, rows[ie], jd)
            key = (tuple(rows[ie]), tuple(jd))
            if key == prev:
                break
            prev = key
        rows_all, _ = self.predict(R, p)
        g = 3.5 * math.hypot(cfg.centre_sigma_px, 0.02 * float(np.median(self.det[:, 2])))
        chance = self.chance_log10(rows_all.size, ie.size, g)
        return Check(R, p, jd, rows[ie], int(rows_all.size), chance, rms, self.covariance(R, p, rows[ie], jd))

    def covariance(self, R: NDArray, p: NDArray, rows: NDArray, det_idx: NDArray) -> NDArray[np.float64]:
        """6x6 covariance of [dtheta (rad), dp (m)] (MOON_ME) from the matched centres' pixel noise.

        The assumed pixel sigma is scaled by the fit's own scatter (the a posteriori variance factor),
        never below 1 when fewer than 20 residuals are left to estimate it.
        """
        X = self.cat.centres_me_m[rows]
        _, J, _ = projection_jacobian(X, self.camera, R, p)
        sig = np.hypot(self.cfg.centre_sigma_px, 0.02 * self.det[det_idx, 2])
        Jw = (J / sig[:, None, None]).reshape(-1, 6)
        E = project_circles(X, self.cat.radius_m[rows], self.camera, R, p, normals_w=self.unit[rows])
        r = ((E[:, :2] - self.det[det_idx, :2]) / sig[:, None]).reshape(-1)
        dof = max(1, r.size - 6)
        s0 = float(r @ r) / dof
        if dof < 20:  # too few residuals to scale the assumed noise down
            s0 = max(1.0, s0)
        try:
            return np.linalg.inv(Jw.T @ Jw) * s0
        except np.linalg.LinAlgError:
            return np.full((6, 6), np.nan)
