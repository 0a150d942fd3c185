"""Image registration: where one image lies in another, to sub-pixel accuracy, with an honest uncertainty.

The pieces of the correlation fix (``correlate.py``) that know nothing of maps or cameras: binning,
masked normalised cross-correlation over a search range, the analysis of its peak, and robust
Gauss-Newton (Lucas-Kanade) refinement of a shift with gain and offset, whose covariance is estimated
from the residuals by a block sandwich. Images are 2-D float arrays; pixel coordinates are (x right,
y down) with pixel centres at integers.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage, signal

from kizuna.errors import InputError

__all__ = [
    "bin_image",
    "ncc_surface",
    "peak_analysis",
    "parabolic_peak",
    "refine_shift",
    "information_centre",
]


def bin_image(image: ArrayLike, factor: int) -> NDArray[np.float64]:
    """Return the image averaged over factor x factor pixel blocks (rows and columns past a block dropped)."""
    a = np.asarray(image, dtype=float)
    if a.ndim != 2:
        raise InputError(f"image of shape {a.shape}: expected a 2-D grayscale image")
    if factor < 1:
        raise InputError(f"bin factor {factor}: expected an integer >= 1")
    if factor == 1:
        return a.copy()
    h, w = a.shape[0] // factor, a.shape[1] // factor
    return a[: h * factor, : w * factor].reshape(h, factor, w, factor).mean(axis=(1, 3))


def _corr(a: NDArray, b: NDArray) -> NDArray[np.float64]:
    """out[j, i] = sum over x of a[x + (j, i)] b[x] at every valid offset (FFT)."""
    return signal.fftconvolve(a, b[::-1, ::-1], mode="valid")


def ncc_surface(
    search: ArrayLike,
    template: ArrayLike,
    search_mask: ArrayLike | None = None,
    template_mask: ArrayLike | None = None,
    min_overlap: float = 0.3,
) -> NDArray[np.float64]:
    """Return the normalised cross-correlation of the template at every valid offset in the search image.

    Element (j, i) compares the template with search[j:j + h, i:i + w] over the pixels that both masks
    (True: use) keep; values lie in [-1, 1], 0 where the window is flat or the overlap holds fewer than
    ``min_overlap`` of the template's pixels. Computed with FFTs (masked form of Padfield, IEEE Trans.
    Image Processing 21, 2706, 2012).
    """
    S = np.asarray(search, dtype=float)
    T = np.asarray(template, dtype=float)
    h, w = T.shape
    if S.shape[0] < h or S.shape[1] < w:
        raise InputError(f"search image {S.shape} smaller than template {T.shape}")
    ms = np.ones_like(S) if search_mask is None else np.asarray(search_mask, dtype=float)
    mt = np.ones_like(T) if template_mask is None else np.asarray(template_mask, dtype=float)
    # centre the values first: fewer digits lost in the sums below
    S = (S - S[ms > 0].mean()) * ms if np.any(ms > 0) else S * 0.0
    T = (T - T[mt > 0].mean()) * mt if np.any(mt > 0) else T * 0.0
    n = _corr(ms, mt)
    s1 = _corr(S, mt)
    t1 = _corr(ms, T)
    num = _corr(S, T) - s1 * t1 / np.maximum(n, 1.0)
    vs = _corr(S * S, mt) - s1 * s1 / np.maximum(n, 1.0)
    vt = _corr(ms, T * T) - t1 * t1 / np.maximum(n, 1.0)
    den = np.sqrt(np.maximum(vs, 0.0) * np.maximum(vt, 0.0))
    tiny = 1e-9 * max(float(den.max()) if den.size else 0.0, 1e-300)
    ok = (den > tiny) & (n >= min_overlap * float(mt.sum()))
    out = np.where(ok, num / np.where(ok, den, 1.0), 0.0)
    return np.clip(out, -1.0, 1.0)


def peak_analysis(ncc: NDArray) -> tuple[int, int, float, float]:
    """Return (row, col) of the highest peak, its value and the height ratio of the next distinct peak.

    Heights count above the surface's median. The main peak's lobe is its connected region above half
    its height; a distinct peak is a local maximum (3 x 3) outside that lobe.
    """
    j, i = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
    peak = float(ncc[j, i])
    base = float(np.median(ncc))
    level = base + 0.5 * (peak - base)
    lab, _ = ndimage.label(ncc >= level)
    lobe = ndimage.binary_dilation(lab == lab[j, i])
    local_max = (ncc == ndimage.maximum_filter(ncc, size=3, mode="nearest")) & ~lobe
    second = float(ncc[local_max].max()) if np.any(local_max) else base
    ratio = (second - base) / (peak - base) if peak > base else 1.0
    return int(j), int(i), peak, ratio


def parabolic_peak(ncc: NDArray, j: int, i: int) -> tuple[float, float]:
    """Return the sub-pixel offset (dy, dx) (px) of a peak at (j, i) from parabolas through its neighbours."""

    def vertex(a: float, b: float, c: float) -> float:
        d = a - 2.0 * b + c
        return 0.0 if d >= 0 else float(np.clip(0.5 * (a - c) / d, -0.5, 0.5))

    dy = vertex(ncc[j - 1, i], ncc[j, i], ncc[j + 1, i]) if 0 < j < ncc.shape[0] - 1 else 0.0
    dx = vertex(ncc[j, i - 1], ncc[j, i], ncc[j, i + 1]) if 0 < i < ncc.shape[1] - 1 else 0.0
    return dy, dx


def refine_shift(
    search: ArrayLike,
    template: ArrayLike,
    offset_xy: ArrayLike,
    iterations: int = 12,
    block_px: int = 16,
    huber_k: float = 2.0,
    search_mask: ArrayLike | None = None,
    template_mask: ArrayLike | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """Refine where the template lies in the search image: Gauss-Newton on a shift, gain and offset (px).

    Template pixel x shows search pixel ``x + offset``, with the search values mapped to the template's
    by a gain and an offset. Residuals beyond ``huber_k`` robust sigmas are down-weighted (Huber);
    pixels that a mask (True: use) leaves out do not count.
    Returns the offset (x, y), its 2x2 covariance (px^2) and the correlation of the fitted and observed
    template. The covariance is the block sandwich (J^T W J)^-1 (sum_b g_b g_b^T) (J^T W J)^-1 with
    g_b = J_b^T W_b r_b over square blocks of ``block_px``: residuals of neighbouring pixels are
    correlated, blocks much less so.
    """
    S = np.asarray(search, dtype=float)
    T = np.asarray(template, dtype=float)
    h, w = T.shape
    coef = ndimage.spline_filter(S, order=3)
    gy_s, gx_s = np.gradient(S)
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    xx = xx.ravel()
    yy = yy.ravel()
    tv = T.ravel()
    d = np.asarray(offset_xy, dtype=float).copy()

    wt = np.ones(h * w) if template_mask is None else np.asarray(template_mask, dtype=float).ravel()
    ms = None if search_mask is None else np.asarray(search_mask, dtype=float)

    def model(d: NDArray) -> tuple[NDArray, NDArray, NDArray, NDArray]:
        wy, wx = yy + d[1], xx + d[0]
        m = ndimage.map_coordinates(coef, [wy, wx], order=3, prefilter=False, mode="nearest")
        gx = ndimage.map_coordinates(gx_s, [wy, wx], order=1, mode="nearest")
        gy = ndimage.map_coordinates(gy_s, [wy, wx], order=1, mode="nearest")
        use = wt if ms is None else wt * ndimage.map_coordinates(ms, [wy, wx], order=0, mode="nearest")
        return m, gx, gy, use

    m, gx, gy, use = model(d)
    if float(use.sum()) < 16:
        return d, np.full((2, 2), np.nan), 0.0
    sel = use > 0
    gain, bias = np.linalg.lstsq(np.stack([m[sel], np.ones(int(sel.sum()))], 1), tv[sel], rcond=None)[0]
    wts = use.copy()

    def weights(r: NDArray, use: NDArray) -> NDArray:
        """The masks times Huber weights on the robust scale of the residuals."""
        rs = r[use > 0]
        scale = 1.4826 * float(np.median(np.abs(rs - np.median(rs)))) + 1e-12
        a = np.abs(r) / (huber_k * scale)
        return use * np.where(a <= 1.0, 1.0, 1.0 / np.maximum(a, 1e-12))

    for it in range(max(1, iterations)):
        r = tv - (gain * m + bias)
        wts = weights(r, use) if it > 0 else use
        J = np.stack([gain * gx, gain * gy, m, np.ones_like(m)], 1)
        Jw = J * wts[:, None]
        step = np.linalg.lstsq(Jw.T @ J, Jw.T @ r, rcond=None)[0]
        d += step[:2]
        gain += step[2]
        bias += step[3]
        m, gx, gy, use = model(d)
        if float(use.sum()) < 16:
            return d, np.full((2, 2), np.nan), 0.0
        if np.hypot(*step[:2]) < 1e-4 and it > 1:
            break
    r = tv - (gain * m + bias)
    wts = weights(r, use)
    J = np.stack([gain * gx, gain * gy, m, np.ones_like(m)], 1)
    Jw = J * wts[:, None]
    nbx = (w + block_px - 1) // block_px
    blk = ((yy // block_px) * nbx + xx // block_px).astype(int)
    nb = int(blk.max()) + 1
    G = np.zeros((nb, J.shape[1]))
    np.add.at(G, blk, Jw * r[:, None])
    used = np.any(G != 0.0, axis=1)
    n_used = int(used.sum())
    bread = np.linalg.pinv(Jw.T @ J)
    cov = bread @ (G.T @ G) @ bread * n_used / max(n_used - J.shape[1], 1)
    fit = (gain * m + bias)[use > 0]
    tu = tv[use > 0]
    fc = float(np.corrcoef(fit, tu)[0, 1]) if np.std(fit) > 0 and np.std(tu) > 0 else 0.0
    return d, cov[:2, :2], fc


def information_centre(template: NDArray, mask: NDArray | None = None) -> NDArray[np.float64]:
    """Return the gradient-energy weighted centre (x, y) (px) of an image over a mask (True: use)."""
    gy, gx = np.gradient(np.asarray(template, dtype=float))
    e = gx * gx + gy * gy
    if mask is not None:
        e = e * mask
    tot = float(e.sum())
    h, w = e.shape
    if tot <= 0:
        return np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    return np.array(
        [float((e.sum(0) * np.arange(w)).sum()) / tot, float((e.sum(1) * np.arange(h)).sum()) / tot]
    )
