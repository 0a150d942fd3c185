"""Crater detection in navigation-camera images.

A crater lit from one side has a fixed signature in every Sun elevation: inside the rim, the wall nearer
the Sun is dark (in shadow at low Sun, turned away from it at high Sun) and the far wall bright; outside
the rim the flanks do the opposite. The detector

1. turns the image so that the light comes from the left (the Sun's direction in the image is given, or
   estimated as the direction that maximises the crater signature over the whole image);
2. evaluates a Haar-like signature filter (box sums on an integral image; dark-bright inside, bright-dark
   outside, weighted so that a plain brightness gradient gives zero) over a pyramid of scales;
3. keeps local maxima in position and scale, suppresses duplicates;
4. refines each candidate on the full-resolution image by locating the rim edge along rays
   (bright-to-dark on the far side, dark-to-bright on the near side) and fitting a circle;
5. gives each refined candidate the probability of being a crater from a small tree ensemble over how
   the rim fits, its contrast on both sides and the signature (:mod:`kizuna.lunar.nav.detect_model`), and
   keeps the likely ones (a phantom made of a neighbour's shading has a rim on one side only, a worn
   crater at high Sun a faint rim all round).

Output conventions: centre (x right, y down, pixel centres at integer coordinates), semi-axes a >= b (px)
and the angle from +x to the a axis toward +y (rad), and a score: the crater probability (or, with the
classifier off, the signature strength over local brightness). The filters and rim search are numba
loops written by hand: no library detects craters.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from kizuna.errors import InputError
from kizuna.lunar.nav.detect_spec import DETECTION_COLUMNS, DetectorSpec

__all__ = ["DetectorSpec", "detect_craters", "estimate_sun_azimuth", "DETECTION_COLUMNS"]

# Box layout in units of the crater radius r, light from -x: inner boxes centred at -+0.5 r, outer at
# -+1.325 r. W_OUTER = 1 / 1.65 makes the response to a linear brightness ramp exactly zero.
_IN0, _IN1, _OUT0, _OUT1, _HALF_H = 0.15, 0.85, 1.05, 1.60, 0.55
W_OUTER = 1.0 / 1.65
N_REFINED = 10  # columns of a refined candidate (see _refine_kernel)


@nb.njit(cache=True, parallel=True)
def _sample_rotated(img, cx, cy, ux, uy, vx, vy, n_out_x, n_out_y, ox, oy):
    """Resample img on a grid whose x axis runs along (ux, uy) and y along (vx, vy); NaN outside."""
    h, w = img.shape
    out = np.empty((n_out_y, n_out_x))
    for j in nb.prange(n_out_y):
        for i in range(n_out_x):
            xr = i - ox
            yr = j - oy
            gx = cx + xr * ux + yr * vx
            gy = cy + xr * uy + yr * vy
            if gx < 0.0 or gy < 0.0 or gx > w - 1 or gy > h - 1:
                out[j, i] = np.nan
                continue
            i0 = min(int(gx), w - 2)
            j0 = min(int(gy), h - 2)
            fx = gx - i0
            fy = gy - j0
            a = img[j0, i0] + fx * (img[j0, i0 + 1] - img[j0, i0])
            b = img[j0 + 1, i0] + fx * (img[j0 + 1, i0 + 1] - img[j0 + 1, i0])
            out[j, i] = a + fy * (b - a)
    return out


@nb.njit(cache=True, inline="always")
def _box(S, x0, x1, y0, y1):
    """Mean of the image over the pixel box [x0, x1) x [y0, y1) from its integral image S."""
    return (S[y1, x1] - S[y0, x1] - S[y1, x0] + S[y0, x0]) / ((x1 - x0) * (y1 - y0))


@nb.njit(cache=True, parallel=True)
def _signature(S, V, radii, step):
    """Crater signature score at every step-th pixel and radius (out[k, j, i] is pixel (i step, j step));
    NaN where the template leaves valid pixels."""
    H = S.shape[0] - 1
    W = S.shape[1] - 1
    n = radii.size
    out = np.full((n, (H + step - 1) // step, (W + step - 1) // step), np.nan)
    for k in range(n):
        r = radii[k]
        hh = max(1, int(round(_HALF_H * r)))
        a0 = max(1, int(round(_IN0 * r)))
        a1 = max(a0 + 1, int(round(_IN1 * r)))
        b0 = max(a1, int(round(_OUT0 * r)))
        b1 = max(b0 + 1, int(round(_OUT1 * r)))
        for jy in nb.prange((hh + step - 1) // step, (H - hh + step - 1) // step):
            y = jy * step
            for ix in range((b1 + step - 1) // step, (W - b1 + step - 1) // step):
                x = ix * step
                y0 = y - hh
                y1 = y + hh + 1
                # a template touching invalid (outside the original image) pixels is skipped
                if _box(V, x - b1, x + b1 + 1, y0, y1) < 1.0:
                    continue
                il = _box(S, x - a1, x - a0 + 1, y0, y1)
                ir = _box(S, x + a0, x + a1 + 1, y0, y1)
                ol = _box(S, x - b1, x - b0 + 1, y0, y1)
                orr = _box(S, x + b0, x + b1 + 1, y0, y1)
                if ir <= il or ol <= il:
                    out[k, jy, ix] = 0.0
                    continue
                resp = (ir - il) + W_OUTER * ((ol - il) + (ir - orr))
                level = 0.25 * (il + ir + ol + orr)
                out[k, jy, ix] = resp / (level + 0.05)
    return out


@nb.njit(cache=True)
def _integral(a):
    """Integral image S with S[j, i] = sum of a[:j, :i]."""
    h, w = a.shape
    S = np.zeros((h + 1, w + 1))
    for j in range(h):
        row = 0.0
        for i in range(w):
            row += a[j, i]
            S[j + 1, i + 1] = S[j, i + 1] + row
    return S


@nb.njit(cache=True)
def _halve(img, valid):
    """2 x 2 block mean of img, and 1 where all four cells of a block are valid."""
    h = img.shape[0] // 2
    w = img.shape[1] // 2
    out = np.empty((h, w))
    ok = np.empty((h, w))
    for j in range(h):
        for i in range(w):
            a = img[2 * j, 2 * i] + img[2 * j, 2 * i + 1] + img[2 * j + 1, 2 * i] + img[2 * j + 1, 2 * i + 1]
            out[j, i] = 0.25 * a
            v = min(
                valid[2 * j, 2 * i],
                valid[2 * j, 2 * i + 1],
                valid[2 * j + 1, 2 * i],
                valid[2 * j + 1, 2 * i + 1],
            )
            ok[j, i] = 1.0 if v > 0 else 0.0
    return out, ok


def _rotation_frame(shape: tuple[int, int], sun_az_rad: float):
    """Axes of the turned image: x_t runs away from the light (anti-Sun), y_t perpendicular."""
    h, w = shape
    ux, uy = -math.cos(sun_az_rad), -math.sin(sun_az_rad)
    vx, vy = -uy, ux
    # bounding box of the turned image
    nx = int(math.ceil(abs(ux) * w + abs(uy) * h)) + 2
    ny = int(math.ceil(abs(vx) * w + abs(vy) * h)) + 2
    return (w - 1) / 2.0, (h - 1) / 2.0, ux, uy, vx, vy, nx, ny


def _turned(image: NDArray, sun_az_rad: float):
    cx, cy, ux, uy, vx, vy, nx, ny = _rotation_frame(image.shape, sun_az_rad)
    ox, oy = (nx - 1) / 2.0, (ny - 1) / 2.0
    t = _sample_rotated(image, cx, cy, ux, uy, vx, vy, nx, ny, ox, oy)
    return t, (cx, cy, ux, uy, vx, vy, ox, oy)


def _pyramid_candidates(turned: NDArray, spec: DetectorSpec, max_r: float):
    """Local maxima of the signature over position and scale: arrays x_t, y_t, r, score (turned px)."""
    valid = np.isfinite(turned).astype(float)
    img = np.where(valid > 0, turned, 0.0)
    rows = []
    level = 0
    base = spec.min_radius_px
    steps = 2.0 ** (np.arange(spec.scales_per_octave) / spec.scales_per_octave)
    while True:
        f = 2**level
        radii_full = base * 2.0**level * steps
        radii_full = radii_full[radii_full <= max_r]
        if radii_full.size == 0 or min(img.shape) < 16:
            break
        # the full-resolution level is searched on every second pixel: the refinement recentres anyway
        step = 2 if level == 0 else 1
        sig = _signature(_integral(img), _integral(valid), radii_full / f, step)
        for kk, yy, xx, v in _local_maxima(sig, spec.threshold):
            rows.append(((xx * step + 0.5) * f - 0.5, (yy * step + 0.5) * f - 0.5, radii_full[kk], v))
        level += 1
        img, valid = _halve(img, valid)  # next octave on a 2 x 2 averaged image
    if not rows:
        return np.empty((0, 4))
    return np.array(rows)


@nb.njit(cache=True)
def _suppress_kernel(c, order, nb_ptr, nb_idx, ratio_max=1.8, dist_frac=0.7):
    """Greedy suppression in the given order; neighbours of i are nb_idx[nb_ptr[i]:nb_ptr[i + 1]]."""
    n = order.size
    keep = np.zeros(n, dtype=np.bool_)
    for oi in range(n):
        i = order[oi]
        x, y, r = c[i, 0], c[i, 1], c[i, 2]
        ok = True
        for q in range(nb_ptr[i], nb_ptr[i + 1]):
            j = nb_idx[q]
            if not keep[j]:
                continue
            rj = c[j, 2]
            d = math.hypot(x - c[j, 0], y - c[j, 1])
            lo = min(r, rj)
            ratio = max(r, rj) / lo
            if ratio < ratio_max and d < dist_frac * lo * ratio:
                ok = False
                break
        if ok:
            keep[i] = True
    return keep


def _suppression_mask(
    c: NDArray, key: NDArray, ratio_max: float = 1.8, dist_frac: float = 0.7
) -> NDArray[np.bool_]:
    """Which rows (x, y, r, ...) survive greedy suppression in decreasing key: a row is dropped when a
    kept one of similar size (radius ratio < ratio_max) lies within dist_frac of the larger radius (a
    duplicate)."""
    if len(c) == 0:
        return np.zeros(0, dtype=bool)
    # a row can only be suppressed by rows within dist_frac x ratio_max (0.7 x 1.8 = 1.26 by default) of
    # its own radius: find those once with a k-d tree instead of comparing every pair
    tree = cKDTree(c[:, :2])
    lists = tree.query_ball_point(c[:, :2], dist_frac * ratio_max * c[:, 2] + 1e-9)
    ptr = np.zeros(len(c) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(v) for v in lists])
    idx = np.fromiter((j for v in lists for j in v), dtype=np.int64, count=int(ptr[-1]))
    return _suppress_kernel(
        np.ascontiguousarray(c[:, :3], dtype=np.float64), np.argsort(-key, kind="stable"), ptr, idx,
        float(ratio_max), float(dist_frac),
    )  # fmt: skip


def _suppress(c: NDArray) -> NDArray:
    """Greedy suppression: drop a candidate near a stronger one of similar size (a duplicate)."""
    return c[_suppression_mask(c, c[:, 3])]


@nb.njit(cache=True)
def _local_maxima(sig, thr):
    """Points above thr that are maxima of their 3 x 3 x 3 neighbourhood (scale, y, x)."""
    ns, h, w = sig.shape
    out = []
    for k in range(ns):
        for y in range(h):
            for x in range(w):
                v = sig[k, y, x]
                if not (v > thr):
                    continue
                best = True
                for kk in range(max(0, k - 1), min(ns, k + 2)):
                    for yy in range(max(0, y - 1), min(h, y + 2)):
                        for xx in range(max(0, x - 1), min(w, x + 2)):
                            if sig[kk, yy, xx] > v:
                                best = False
                if best:
                    out.append((k, y, x, v))
    return out


@nb.njit(cache=True)
def _rim_points(img, xc, yc, r, n_rays, out):
    """Rim edge points along rays from (xc, yc) in a turned image (light from -x); returns count."""
    h, w = img.shape
    m = 0
    for q in range(n_rays):
        phi = 2.0 * math.pi * q / n_rays
        c = math.cos(phi)
        s = math.sin(phi)
        if abs(c) < 0.3:
            continue
        sign = -c  # far side (c > 0): bright->dark outward; near side: dark->bright
        best = -1e30
        n = int(1.3 * r) + 8
        vals = np.empty(n + 1)
        rhos = np.empty(n + 1)
        for t in range(n + 1):
            rho = r * (0.55 + 1.25 * t / n)
            x = xc + rho * c
            y = yc + rho * s
            if x < 0.0 or y < 0.0 or x > w - 1.001 or y > h - 1.001:
                vals[t] = np.nan
            else:
                i0 = int(x)
                j0 = int(y)
                fx = x - i0
                fy = y - j0
                a = img[j0, i0] + fx * (img[j0, i0 + 1] - img[j0, i0])
                b = img[j0 + 1, i0] + fx * (img[j0 + 1, i0 + 1] - img[j0 + 1, i0])
                vals[t] = a + fy * (b - a)
            rhos[t] = rho
        best_t = -1
        for t in range(1, n):
            e = sign * (vals[t + 1] - vals[t - 1])
            if e == e and e > best:  # e == e: not NaN
                best = e
                best_t = t
        if best_t < 1 or best <= 0.0:
            continue
        # sub-sample peak by a parabola through the edge strengths around the best sample
        em = sign * (vals[best_t] - vals[best_t - 2]) if best_t >= 2 else best
        ep = sign * (vals[best_t + 2] - vals[best_t]) if best_t + 2 <= n else best
        off = 0.0
        den = em - 2.0 * best + ep
        if den < 0.0 and em == em and ep == ep:
            off = 0.5 * (em - ep) / den
            off = min(0.5, max(-0.5, off))
        best_rho = rhos[best_t] + off * (rhos[1] - rhos[0])
        out[m, 0] = xc + best_rho * c
        out[m, 1] = yc + best_rho * s
        out[m, 2] = best
        out[m, 3] = c
        m += 1
    return m


@nb.njit(cache=True)
def _fit_circle(px, py, w):
    """Weighted least-squares circle (Kasa fit) through points where w > 0: centre and radius (px)."""
    A = np.zeros((3, 3))
    rhs = np.zeros(3)
    for i in range(px.size):
        if w[i] <= 0.0:
            continue
        row = (px[i], py[i], 1.0)
        b = px[i] * px[i] + py[i] * py[i]
        for u in range(3):
            rhs[u] += row[u] * b
            for v in range(3):
                A[u, v] += row[u] * row[v]
    sol = np.linalg.solve(A, rhs)
    xc = 0.5 * sol[0]
    yc = 0.5 * sol[1]
    return xc, yc, math.sqrt(max(sol[2] + xc * xc + yc * yc, 0.0))


@nb.njit(cache=True)
def _median_side(buf, w, m, far):
    vals = np.empty(m)
    n = 0
    for i in range(m):
        if w[i] > 0.0 and ((buf[i, 3] > 0.0) == far):
            vals[n] = buf[i, 2]
            n += 1
    if n < 3:
        return 0.0
    return np.median(vals[:n])


@nb.njit(cache=True, parallel=True)
def _refine_kernel(img, cands, n_rays):
    """Refine candidates (x, y, r, score) by rim-edge fitting; add the median rim-edge strength on the
    far and near side (columns 4, 5), the fraction of rays whose edge fits the circle (6), the RMS fit
    residual over the radius (7), the fitted over the candidate radius (8) and the centre shift over the
    radius (9); rows that fail get NaN."""
    out = np.full((cands.shape[0], N_REFINED), np.nan)
    for q in nb.prange(cands.shape[0]):
        buf = np.empty((n_rays, 4))
        x, y, r = cands[q, 0], cands[q, 1], cands[q, 2]
        xc, yc, rc = x, y, r
        ok = False
        far = 0.0
        near = 0.0
        frac = 0.0
        resid = 0.0
        for _ in range(4):
            m = _rim_points(img, xc, yc, rc, n_rays, buf)
            if m < 8:
                break
            px = buf[:m, 0].copy()
            py = buf[:m, 1].copy()
            w = np.ones(m)
            fx, fy, fr = _fit_circle(px, py, w)
            n_in = 0
            for i in range(m):
                if abs(math.hypot(px[i] - fx, py[i] - fy) - fr) < max(1.0, 0.12 * fr):
                    n_in += 1
                else:
                    w[i] = 0.0
            if n_in < 8:
                break
            fx, fy, fr = _fit_circle(px, py, w)
            if not (0.6 * r < fr < 1.6 * r) or math.hypot(fx - x, fy - y) > 0.6 * r:
                break
            moved = math.hypot(fx - xc, fy - yc) + abs(fr - rc)
            xc, yc, rc = fx, fy, fr
            far = _median_side(buf, w, m, True)
            near = _median_side(buf, w, m, False)
            frac = n_in / m
            ss = 0.0
            for i in range(m):
                if w[i] > 0.0:
                    d = math.hypot(px[i] - fx, py[i] - fy) - fr
                    ss += d * d
            resid = math.sqrt(ss / n_in) / max(fr, 1e-9)
            ok = True
            if moved < 0.05 * rc:  # converged
                break
        if ok:
            out[q, 0] = xc
            out[q, 1] = yc
            out[q, 2] = rc
            out[q, 3] = cands[q, 3]
            out[q, 4] = far
            out[q, 5] = near
            out[q, 6] = frac
            out[q, 7] = resid
            out[q, 8] = rc / r
            out[q, 9] = math.hypot(xc - x, yc - y) / r
    return out


def _refine(turned: NDArray, cands: NDArray, n_rays: int = 36) -> NDArray:
    """Refine candidates (x, y, r, score) on the turned image by rim-edge fitting; drop failures.

    Returns rows (x, y, r, score, far-side edge strength, near-side edge strength).
    """
    img = np.where(np.isfinite(turned), turned, 0.0)
    out = _refine_kernel(img, np.ascontiguousarray(cands, dtype=np.float64), n_rays)
    return out[np.isfinite(out[:, 0])]


def estimate_sun_azimuth(image: NDArray, n_azimuths: int = 16) -> float:
    """Estimate the direction (deg, from image +x toward +y) from which light comes, by crater signature.

    The image is reduced to about 256 px; for each trial direction the craters that pass the rim-edge
    check on both sides are detected and their scores summed (light from the wrong side leaves few
    two-sided rims), and the best direction is refined by a parabola through its neighbours.
    """
    img = _normalise(_as_image(image))
    f = max(1, int(round(max(img.shape) / 256)))
    if f > 1:
        h2, w2 = img.shape[0] // f * f, img.shape[1] // f * f
        img = img[:h2, :w2].reshape(h2 // f, f, w2 // f, f).mean(axis=(1, 3))
    # the signature and the two-sided rim check alone: light from a wrong direction leaves few two-sided
    # rims, which is what this measures (the classifier's features assume the right direction)
    spec = DetectorSpec(
        min_radius_px=3.0,
        max_radius_px=0.2 * min(img.shape),
        threshold=1.0,
        edge_threshold=0.05,
        classify=False,
    )
    scores = np.empty(n_azimuths)
    for k in range(n_azimuths):
        cands, _, _ = _detect(img, 2 * math.pi * k / n_azimuths, spec)
        scores[k] = np.minimum(cands[:, 3], 5.0).sum() if len(cands) else 0.0
    k = int(np.argmax(scores))
    sm, s0, sp = scores[k - 1], scores[k], scores[(k + 1) % n_azimuths]
    den = sm - 2 * s0 + sp
    off = 0.5 * (sm - sp) / den if den < 0 else 0.0
    return float((360.0 * (k + off) / n_azimuths) % 360.0)


def _normalise(img: NDArray) -> NDArray[np.float64]:
    """Stretch brightness so that the 0.5 and 99.5 percentiles map to 0 and 1."""
    lo, hi = np.percentile(img[::3, ::3], [0.5, 99.5])
    return (img - lo) / max(hi - lo, 1e-12)


def _candidates(img: NDArray, az: float, spec: DetectorSpec) -> tuple[NDArray, tuple]:
    """Candidates on a normalised image with light from image direction az (rad), before selection.

    Returns refined rows (see :func:`_refine_kernel`; unrefined rows (x, y, r, score) padded with NaN
    when ``spec.refine`` is off) in turned coordinates, and the turning frame (cx, cy, ux, uy, vx, vy,
    ox, oy).
    """
    turned, frame = _turned(img, az)
    max_r = spec.max_radius_px or 0.25 * min(img.shape)
    cands = _pyramid_candidates(turned, spec, max_r)
    if len(cands):
        cands = _suppress(cands)
    if len(cands) > spec.max_candidates:  # the strongest signatures; the rest are nearly all noise
        cands = cands[np.argsort(-cands[:, 3], kind="stable")[: spec.max_candidates]]
    if spec.refine and len(cands):
        return _refine(turned, cands), frame
    out = np.full((len(cands), N_REFINED), np.nan)
    out[:, :4] = cands
    return out, frame


def _detect(img: NDArray, az: float, spec: DetectorSpec) -> tuple[NDArray, NDArray, tuple]:
    """Detect on a normalised image with light from image direction az (rad).

    Returns candidate rows (x, y, r, score) in turned coordinates, their rim-edge strengths, and the
    turning frame (cx, cy, ux, uy, vx, vy, ox, oy).
    """
    refined, frame = _candidates(img, az, spec)
    if spec.refine and len(refined):
        # the rim fit may move a radius out of the range asked for
        max_r = spec.max_radius_px or 0.25 * min(img.shape)
        refined = refined[(refined[:, 2] >= spec.min_radius_px) & (refined[:, 2] <= max_r)]
        if spec.classify:
            from kizuna.lunar.nav.detect_model import candidate_features

            model = spec.model()
            p_min = model.min_probability if spec.min_probability is None else spec.min_probability
            refined[:, 3] = model.probability(candidate_features(refined))  # before any selection
            refined = refined[refined[:, 3] >= p_min]
        refined = refined[np.minimum(refined[:, 4], refined[:, 5]) >= spec.edge_threshold]
        refined = refined[_suppression_mask(refined, refined[:, 3])]
    return refined[:, :4], refined[:, 4:6], frame


def _as_image(image: NDArray) -> NDArray[np.float64]:
    img = np.asarray(image, dtype=float)
    if img.ndim != 2:
        raise InputError(f"image of shape {img.shape}: expected a 2-D grayscale array")
    if min(img.shape) < 32:
        raise InputError(f"image of {img.shape[1]}x{img.shape[0]} px: expected at least 32x32 px")
    if not np.all(np.isfinite(img)):
        raise InputError("image contains NaN or infinite values: expected finite brightness")
    return img


def detect_craters(
    image: NDArray, sun_azimuth_deg: float | None = None, spec: DetectorSpec | None = None
) -> pd.DataFrame:
    """Detect craters in a grayscale image (any scale of brightness); return a table of ellipses.

    ``sun_azimuth_deg`` is the image direction from which light comes (deg from +x toward +y); when it is
    None it is estimated. Columns: x_px, y_px, a_px, b_px, theta_rad, score (the crater probability, see
    the module docstring), and edge_far, edge_near: the median rim-edge contrast (normalised brightness)
    on the sides away from and toward the light.
    """
    spec = spec or DetectorSpec()
    if spec.classify:
        spec.model()  # a missing or malformed model file is reported before any work
    img = _normalise(_as_image(image))
    if sun_azimuth_deg is None:
        sun_azimuth_deg = estimate_sun_azimuth(img)
    cands, edges, (cx, cy, ux, uy, vx, vy, ox, oy) = _detect(img, math.radians(float(sun_azimuth_deg)), spec)
    if len(cands) == 0:
        empty = pd.DataFrame({c: np.empty(0) for c in [*DETECTION_COLUMNS, "edge_far", "edge_near"]})
        empty.attrs["sun_azimuth_deg"] = float(sun_azimuth_deg)
        return empty
    xt, yt = cands[:, 0] - ox, cands[:, 1] - oy
    x = cx + xt * ux + yt * vx
    y = cy + xt * uy + yt * vy
    inside = (x >= 0) & (y >= 0) & (x <= img.shape[1] - 1) & (y <= img.shape[0] - 1)
    df = pd.DataFrame(
        {
            "x_px": x,
            "y_px": y,
            "a_px": cands[:, 2],
            "b_px": cands[:, 2],
            "theta_rad": np.zeros(len(cands)),
            "score": cands[:, 3],
            "edge_far": edges[:, 0],
            "edge_near": edges[:, 1],
        }
    )[inside]
    df.attrs["sun_azimuth_deg"] = float(sun_azimuth_deg)
    return df.sort_values("score", ascending=False, ignore_index=True)
