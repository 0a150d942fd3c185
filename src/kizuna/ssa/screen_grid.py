"""The numba kernels of conjunction screening: cubic Hermite interpolation of coarse SGP4 samples, and the
fine-step sweep over a sorted spatial grid that finds every interval holding a local minimum of range.

See :mod:`kizuna.ssa.screen` for the method; these functions work on packed arrays (``P``, ``V``: samples of
all objects one after another, ``off``: first row of each object, ``h``: its step in s, ``n``: its count).
"""

from __future__ import annotations

import math

import numba
import numpy as np

INTERP_TOL_KM = 0.2  # bound on the cubic Hermite interpolation error of each object's position
MAX_SPEED_KM_S = 12.0  # above escape speed at the surface: no bound Earth orbit moves this fast
SEED_SPARE_KM = 0.1  # kept beyond the interpolation bound when a minimum of the interpolant is refined
SPLIT_SPEED_KM_S = 8.0  # objects faster than this (eccentric orbits near perigee) search wider themselves


@numba.njit(cache=True)
def _hermite(P, V, off, h, n, i, t, out_r, out_v):  # pragma: no cover - numba
    """Interpolate object i at time t (s from the slice origin) into out_r/out_v; return False if unknown."""
    hi = h[i]
    k = int(math.floor(t / hi))
    if k < 0 or k + 1 >= n[i]:
        return False
    a = off[i] + k
    b = a + 1
    if not (P[a, 0] == P[a, 0]) or not (P[b, 0] == P[b, 0]):
        return False
    s = (t - k * hi) / hi
    s2 = s * s
    s3 = s2 * s
    h00 = 2 * s3 - 3 * s2 + 1
    h10 = s3 - 2 * s2 + s
    h01 = -2 * s3 + 3 * s2
    h11 = s3 - s2
    d00 = (6 * s2 - 6 * s) / hi
    d10 = 3 * s2 - 4 * s + 1
    d01 = (-6 * s2 + 6 * s) / hi
    d11 = 3 * s2 - 2 * s
    for c in range(3):
        out_r[c] = h00 * P[a, c] + h10 * hi * V[a, c] + h01 * P[b, c] + h11 * hi * V[b, c]
        out_v[c] = d00 * P[a, c] + d10 * V[a, c] + d01 * P[b, c] + d11 * V[b, c]
    return True


@numba.njit(cache=True)
def _centre_states(P, V, off, h, n, t, C, tlo, R, W, SPD, ok):  # pragma: no cover - numba
    """Evaluate every object's cubic at time t into R, W (km, km/s), speeds SPD, ok; return the largest speed.

    C holds each object's current cubic (``r(t) = c0 + c1 s + c2 s^2 + c3 s^3``, s seconds after tlo) and is
    refilled from the samples only when t leaves the object's coarse interval, so the memory walked each
    fine step is a few contiguous arrays.
    """
    vmax = 0.0
    for i in range(R.shape[0]):
        hi = h[i]
        s = t - tlo[i]
        if not (s >= 0.0 and s < hi):
            k = int(math.floor(t / hi))
            tlo[i] = k * hi
            s = t - tlo[i]
            a = off[i] + k
            b = a + 1
            if k < 0 or k + 1 >= n[i] or not (P[a, 0] == P[a, 0]) or not (P[b, 0] == P[b, 0]):
                C[i, 0, 0] = np.nan
            else:
                for c in range(3):
                    dp = P[b, c] - P[a, c]
                    C[i, 0, c] = P[a, c]
                    C[i, 1, c] = V[a, c]
                    C[i, 2, c] = (3.0 * dp - hi * (2.0 * V[a, c] + V[b, c])) / (hi * hi)
                    C[i, 3, c] = (-2.0 * dp + hi * (V[a, c] + V[b, c])) / (hi * hi * hi)
        if not (C[i, 0, 0] == C[i, 0, 0]):
            ok[i] = False
            continue
        sp2 = 0.0
        for c in range(3):
            R[i, c] = C[i, 0, c] + s * (C[i, 1, c] + s * (C[i, 2, c] + s * C[i, 3, c]))
            w = C[i, 1, c] + s * (2.0 * C[i, 2, c] + 3.0 * s * C[i, 3, c])
            W[i, c] = w
            sp2 += w * w
        if sp2 > MAX_SPEED_KM_S * MAX_SPEED_KM_S:
            ok[i] = False
            continue
        ok[i] = True
        SPD[i] = math.sqrt(sp2)
        if sp2 > vmax:
            vmax = sp2
    return math.sqrt(vmax)


@numba.njit(cache=True)
def _range_rate(P, V, off, h, n, i, j, t, ri, vi, rj, vj):  # pragma: no cover - numba
    """Return dr . dv (km^2/s) of objects i, j at time t from the samples, NaN where unknown."""
    if not _hermite(P, V, off, h, n, i, t, ri, vi) or not _hermite(P, V, off, h, n, j, t, rj, vj):
        return np.nan
    f = 0.0
    for c in range(3):
        f += (rj[c] - ri[c]) * (vj[c] - vi[c])
    return f


@numba.njit(cache=True)
def _grow(a, n_new):  # pragma: no cover - numba
    """Return a copy of a with room for n_new rows."""
    b = np.empty((n_new,) + a.shape[1:], a.dtype)
    b[: a.shape[0]] = a
    return b


@numba.njit(cache=True)
def _push(ci, cj, ct, nc, i, j, ta, tm):  # pragma: no cover - numba
    """Append candidate (i, j, interval start, seed time) at row nc, doubling the arrays when full."""
    if nc == ci.shape[0]:
        ci = _grow(ci, 2 * nc)
        cj = _grow(cj, 2 * nc)
        ct = _grow(ct, 2 * nc)
    ci[nc] = i
    cj[nc] = j
    ct[nc, 0] = ta
    ct[nc, 1] = tm
    return ci, cj, ct, nc + 1


_CELL_BITS = 10  # cell coordinates are clamped to +-512: monotone, so neighbours stay neighbours
_CELL_HALF = 1 << (_CELL_BITS - 1)
_CELL_MASK = (1 << _CELL_BITS) - 1


@numba.njit(cache=True)
def _cell_key(x, L):  # pragma: no cover - numba
    """Return the clamped cell coordinate (0 .. 1023) of coordinate x (km) for cells of L km."""
    c = int(math.floor(x / L)) + _CELL_HALF
    return min(max(c, 0), _CELL_MASK)


@numba.njit(cache=True)
def _radix_sort(keys, idx, tmp_k, tmp_i, cnt):  # pragma: no cover - numba
    """Sort keys (30-bit, three 10-bit digits) with their indices idx in place, least significant first."""
    n = keys.shape[0]
    for shift in (0, 10, 20):
        cnt[:] = 0
        for p in range(n):
            cnt[((keys[p] >> shift) & 1023) + 1] += 1
        for d in range(1024):
            cnt[d + 1] += cnt[d]
        for p in range(n):
            d = (keys[p] >> shift) & 1023
            q = cnt[d]
            tmp_k[q] = keys[p]
            tmp_i[q] = idx[p]
            cnt[d] = q + 1
        keys[:] = tmp_k
        idx[:] = tmp_i


@numba.njit(cache=True)
def _lower_bound(a, n, x):  # pragma: no cover - numba
    """Return the first position p < n with a[p] >= x (n if none)."""
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True)
def _seed(P, V, off, h, n, i, j, ta, hf, threshold, margin, ri, vi, rj, vj):  # pragma: no cover - numba
    """Return the seed time (s) of a local range minimum of i, j in [ta, ta + hf], or NaN if there is none.

    A minimum lies in the interval when the range rate dr . dv goes from <= 0 to > 0 between its ends; both
    ends come from the samples (not cached cubics) so that neighbouring intervals see the very same value
    at their common end and each minimum is claimed by exactly one interval.
    """
    tb = ta + hf
    f0 = _range_rate(P, V, off, h, n, i, j, ta, ri, vi, rj, vj)
    f1 = _range_rate(P, V, off, h, n, i, j, tb, ri, vi, rj, vj)
    if not (f0 <= 0.0 and f1 > 0.0):
        return np.nan
    lo = ta
    hi_t = tb
    flo = f0
    fhi = f1
    tm = ta - f0 * hf / (f1 - f0)
    for _ in range(40):  # secant steps, bisection when they stall
        fm = _range_rate(P, V, off, h, n, i, j, tm, ri, vi, rj, vj)
        if fm <= 0.0:
            lo = tm
            flo = fm
        else:
            hi_t = tm
            fhi = fm
        if hi_t - lo < 1e-4:
            break
        tn = lo - flo * (hi_t - lo) / (fhi - flo)
        if not (tn > lo and tn < hi_t) or abs(tn - tm) < 1e-7:
            tn = 0.5 * (lo + hi_t)
        tm = tn
    _hermite(P, V, off, h, n, i, tm, ri, vi)
    _hermite(P, V, off, h, n, j, tm, rj, vj)
    d = math.sqrt((rj[0] - ri[0]) ** 2 + (rj[1] - ri[1]) ** 2 + (rj[2] - ri[2]) ** 2)
    # the true range differs from the interpolated one by at most twice the interpolation bound
    if not (d <= threshold + 2.0 * INTERP_TOL_KM + SEED_SPARE_KM):
        return np.nan
    return tm


@numba.njit(cache=True)
def _linear_close(SR, SW, pi, pj, hf, lim2):  # pragma: no cover - numba
    """Return True when straight-line relative motion of pi, pj comes within sqrt(lim2) in the interval."""
    d2 = 0.0
    v2 = 0.0
    rv = 0.0
    for c in range(3):
        dr = SR[pj, c] - SR[pi, c]
        dv = SW[pj, c] - SW[pi, c]
        d2 += dr * dr
        v2 += dv * dv
        rv += dr * dv
    tau = 0.0
    if v2 > 0.0:
        tau = min(max(-rv / v2, -0.5 * hf), 0.5 * hf)
    return d2 + 2.0 * tau * rv + tau * tau * v2 <= lim2


@numba.njit(cache=True)
def _grid_kernel(
    P, V, off, h, n, t_first, hf, n_steps, threshold, margin, primary, has_primaries
):  # pragma: no cover
    """Return candidate local minima (i, j, interval start s, seed time s) and the number of pairs tested.

    Each fine step: objects sorted by cell key (x, y, z cells of L km packed x-major); the cells a pair may
    share are then contiguous key ranges ("columns" of three cells along z), found by pointers that only
    move forward as the sweep advances, so all memory is walked in order.
    """
    m = off.shape[0]
    C = np.empty((m, 4, 3))
    tlo = np.full(m, -1e300)
    RC = np.empty((m, 3))
    WC = np.empty((m, 3))
    SPD = np.zeros(m)
    OC = np.zeros(m, np.bool_)
    ri = np.empty(3)
    vi = np.empty(3)
    rj = np.empty(3)
    vj = np.empty(3)
    keys = np.empty(m, np.int64)
    idx = np.empty(m, np.int64)
    tmp_k = np.empty(m, np.int64)
    tmp_i = np.empty(m, np.int64)
    cnt = np.zeros(1025, np.int64)
    SR = np.empty((m, 3))
    SW = np.empty((m, 3))
    SS = np.empty(m)
    # half stencil in columns: own column (z offsets 0, +1), then (x, y) offsets (0,1), (1,-1), (1,0), (1,1)
    col_dx = np.array([0, 0, 1, 1, 1])
    col_dy = np.array([0, 1, -1, 0, 1])
    ptr_lo = np.zeros(5, np.int64)
    ptr_hi = np.zeros(5, np.int64)
    ci = np.empty(1024, np.int64)
    cj = np.empty(1024, np.int64)
    ct = np.empty((1024, 2))
    nc = 0
    pairs_tested = 0
    lim2 = (threshold + margin) ** 2
    for s in range(n_steps):
        ta = t_first + s * hf
        vmax = _centre_states(P, V, off, h, n, ta + 0.5 * hf, C, tlo, RC, WC, SPD, OC)
        # cells fit pairs of objects up to vcut; faster objects (eccentric orbits near perigee) search a
        # wider block of cells themselves, so that a few of them do not inflate every cell
        vcut = min(vmax, SPLIT_SPEED_KM_S)
        L = threshold + margin + vcut * hf
        n_in = 0
        for i in range(m):
            if OC[i]:
                keys[n_in] = (
                    (_cell_key(RC[i, 0], L) << 20) | (_cell_key(RC[i, 1], L) << 10) | _cell_key(RC[i, 2], L)
                )
                idx[n_in] = i
                n_in += 1
        _radix_sort(keys[:n_in], idx[:n_in], tmp_k[:n_in], tmp_i[:n_in], cnt)
        for p in range(n_in):
            i = idx[p]
            for c in range(3):
                SR[p, c] = RC[i, c]
                SW[p, c] = WC[i, c]
            SS[p] = SPD[i]
        # ordinary objects against ordinary objects: a forward sweep over the half stencil
        if not has_primaries:
            ptr_lo[:] = 0
            ptr_hi[:] = 0
            for pi in range(n_in):
                if SS[pi] > vcut:
                    continue
                ki = keys[pi]
                for col in range(5):
                    base = ki + (col_dx[col] << 20) + (col_dy[col] << 10)
                    k_lo = base if col == 0 else base - 1
                    k_hi = base + 1
                    while ptr_lo[col] < n_in and keys[ptr_lo[col]] < k_lo:
                        ptr_lo[col] += 1
                    if ptr_hi[col] < ptr_lo[col]:
                        ptr_hi[col] = ptr_lo[col]
                    while ptr_hi[col] < n_in and keys[ptr_hi[col]] <= k_hi:
                        ptr_hi[col] += 1
                    for pj in range(ptr_lo[col], ptr_hi[col]):
                        if col == 0 and keys[pj] == ki and pj <= pi:
                            continue  # same cell: each pair once
                        if SS[pj] > vcut:
                            continue  # the fast partner finds this pair
                        pairs_tested += 1
                        if not _linear_close(SR, SW, pi, pj, hf, lim2):
                            continue
                        i = idx[pi]
                        j = idx[pj]
                        tm = _seed(P, V, off, h, n, i, j, ta, hf, threshold, margin, ri, vi, rj, vj)
                        if tm == tm:
                            ci, cj, ct, nc = _push(ci, cj, ct, nc, i, j, ta, tm)
        # fast objects (and primaries): every column within reach of any partner, found by binary search
        for pi in range(n_in):
            if has_primaries:
                if not primary[idx[pi]]:
                    continue
            elif SS[pi] <= vcut:
                continue
            rr = int(math.ceil((threshold + margin + 0.5 * hf * (SS[pi] + vmax)) / L))
            ki = keys[pi]
            cx = ki >> 20
            cy = (ki >> 10) & 1023
            cz = ki & 1023
            for dx in range(-rr, rr + 1):
                for dy in range(-rr, rr + 1):
                    x = cx + dx
                    y = cy + dy
                    if x < 0 or x > 1023 or y < 0 or y > 1023:
                        continue
                    base = (x << 20) | (y << 10)
                    lo = _lower_bound(keys, n_in, base | max(cz - rr, 0))
                    hi = _lower_bound(keys, n_in, (base | min(cz + rr, 1023)) + 1)
                    for pj in range(lo, hi):
                        if pj == pi:
                            continue
                        j = idx[pj]
                        if has_primaries:
                            if primary[j] and pj < pi:
                                continue  # a pair of primaries is seen from both: keep one
                        elif SS[pj] > vcut and pj < pi:
                            continue  # a pair of fast objects is seen from both: keep one
                        pairs_tested += 1
                        if not _linear_close(SR, SW, pi, pj, hf, lim2):
                            continue
                        i = idx[pi]
                        tm = _seed(P, V, off, h, n, i, j, ta, hf, threshold, margin, ri, vi, rj, vj)
                        if tm == tm:
                            ci, cj, ct, nc = _push(ci, cj, ct, nc, i, j, ta, tm)
    return ci[:nc], cj[:nc], ct[:nc], pairs_tested
