"""Byte-level numba passes over the data section of a RINEX observation file: index epochs and satellite
records, then fill preallocated arrays.

The data section is read as a ``uint8`` buffer. Pass one walks the lines once and records, for every epoch,
its time tag (int64 nanoseconds of the file's time system since 1970-01-01), flag and receiver clock
offset, and for every satellite record its epoch, satellite code (system letter * 100 + PRN), byte offset
and line number. Pass two parses the fixed-width F14.3 / I1 / I1 fields of each record by hand.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["index_v3", "index_v2", "fill_v3", "fill_v2"]

# Problem codes written by the numba passes; the reader turns them into messages.
P_UNEXPECTED = np.int64(1)  # a line where an epoch record was expected
P_BAD_EPOCH = np.int64(2)  # an epoch record whose date, flag or satellite count cannot be read
P_UNKNOWN_FLAG = np.int64(3)  # an epoch flag other than 0-6
P_TRUNCATED = np.int64(4)  # the file ends inside an epoch (aux1 = records found, aux2 = records announced)
P_SHORT_EPOCH = np.int64(5)  # an epoch announces more satellites than it holds (aux1 found, aux2 announced)
P_BAD_SAT = np.int64(6)  # a satellite record whose identifier cannot be read
P_NO_TYPES = np.int64(7)  # a satellite of a system without observation types in the header (aux1 = letter)
P_EVENT_CUT = np.int64(8)  # the file ends inside the header lines of an event record
MAX_PROBLEMS = 200
_NO_AUX = np.int64(0)  # typed constant: numba compiles _add_problem once for all call sites

_POW10 = np.array([10.0**k for k in range(23)])


@nb.njit(cache=True, nogil=True)
def _parse_int(buf, a, b):
    """Return (status, value) of an integer in buf[a:b]: status 0 blank, 1 read, 2 malformed."""
    i = a
    while i < b and buf[i] == 32:
        i += 1
    if i == b:
        return 0, 0
    neg = False
    if buf[i] == 45:
        neg = True
        i += 1
    v = 0
    nd = 0
    while i < b and 48 <= buf[i] <= 57:
        v = v * 10 + (buf[i] - 48)
        nd += 1
        i += 1
    while i < b and buf[i] == 32:
        i += 1
    if i != b or nd == 0:
        return 2, 0
    return 1, -v if neg else v


@nb.njit(cache=True, nogil=True)
def _parse_num(buf, a, b):
    """Return (status, value) of a decimal number in buf[a:b]: status 0 blank, 1 read, 2 malformed."""
    i = a
    while i < b and buf[i] == 32:
        i += 1
    if i == b:
        return 0, np.nan
    neg = False
    c = buf[i]
    if c == 45 or c == 43:
        neg = c == 45
        i += 1
    mant = 0
    nd = 0
    ndec = 0
    shift = 0
    dot = False
    while i < b:
        c = buf[i]
        if 48 <= c <= 57:
            if nd < 18:
                mant = mant * 10 + (c - 48)
                if dot:
                    ndec += 1
            elif not dot:
                shift += 1
            nd += 1
        elif c == 46 and not dot:
            dot = True
        else:
            break
        i += 1
    if nd == 0:
        return 2, np.nan
    exp = 0
    if i < b and (buf[i] == 69 or buf[i] == 101 or buf[i] == 68 or buf[i] == 100):
        i += 1
        eneg = False
        if i < b and (buf[i] == 45 or buf[i] == 43):
            eneg = buf[i] == 45
            i += 1
        ne = 0
        while i < b and 48 <= buf[i] <= 57:
            exp = exp * 10 + (buf[i] - 48)
            ne += 1
            i += 1
        if ne == 0:
            return 2, np.nan
        if eneg:
            exp = -exp
    while i < b and buf[i] == 32:
        i += 1
    if i != b:
        return 2, np.nan
    e = exp + shift - ndec
    v = float(mant)
    if e > 0:
        v = v * _POW10[e] if e <= 22 else v * 10.0**e
    elif e < 0:
        v = v / _POW10[-e] if -e <= 22 else v * 10.0**e
    return 1, -v if neg else v


@nb.njit(cache=True, nogil=True)
def _parse_sec_ns(buf, a, b):
    """Return integer nanoseconds of a seconds field like ' 59.9999999' in buf[a:b] (-1 when malformed)."""
    i = a
    while i < b and buf[i] == 32:
        i += 1
    s = 0
    nd = 0
    while i < b and 48 <= buf[i] <= 57:
        s = s * 10 + (buf[i] - 48)
        nd += 1
        i += 1
    frac = 0
    nf = 0
    if i < b and buf[i] == 46:
        i += 1
        while i < b and 48 <= buf[i] <= 57:
            if nf < 9:
                frac = frac * 10 + (buf[i] - 48)
                nf += 1
            i += 1
    while i < b and buf[i] == 32:
        i += 1
    if i != b or nd == 0:
        return -1
    while nf < 9:
        frac *= 10
        nf += 1
    return s * 1_000_000_000 + frac


@nb.njit(cache=True, nogil=True)
def _days_from_civil(y, m, d):
    """Return days since 1970-01-01 of a proleptic Gregorian date."""
    if m <= 2:
        y -= 1
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    mp = m - 3 if m > 2 else m + 9
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@nb.njit(cache=True, nogil=True)
def _epoch_ns(buf, p, le, cols, two_digit_year):
    """Return nanoseconds since 1970 of the date fields at the column starts ``cols`` (-1 when malformed)."""
    vals = np.zeros(5, np.int64)
    for k in range(5):
        a = p + cols[k]
        b = p + cols[k + 1]
        if b > le:
            return -1
        st, v = _parse_int(buf, a, b)
        if st != 1:
            return -1
        vals[k] = v
    a = p + cols[5]
    b = min(p + cols[6], le)
    if a >= b:
        return -1
    sec_ns = _parse_sec_ns(buf, a, b)
    y, mo, d, h, mi = vals[0], vals[1], vals[2], vals[3], vals[4]
    if two_digit_year:
        y = y + 2000 if y < 80 else y + 1900
    if sec_ns < 0 or not (1 <= mo <= 12 and 1 <= d <= 31 and 0 <= h <= 23 and 0 <= mi <= 59):
        return -1
    if sec_ns >= 61_000_000_000:
        return -1
    days = _days_from_civil(y, mo, d)
    return ((days * 24 + h) * 60 + mi) * 60_000_000_000 + sec_ns


@nb.njit(cache=True, nogil=True, inline="always")
def _eol(buf, p, n):
    """Return the index of the next newline at or after p (n when none)."""
    while p < n and buf[p] != 10:
        p += 1
    return p


@nb.njit(cache=True, nogil=True, inline="always")
def _line_end(buf, p, e):
    """Return the end of the line content [p, e) without a trailing carriage return."""
    if e > p and buf[e - 1] == 13:
        return e - 1
    return e


@nb.njit(cache=True, nogil=True)
def _add_problem(prob, counts, code, line, pos, aux1, aux2):
    """Record one problem (the first MAX_PROBLEMS in full, then only counted per code)."""
    k = counts[0]
    if k < prob.shape[0]:
        prob[k, 0] = code
        prob[k, 1] = line
        prob[k, 2] = pos
        prob[k, 3] = aux1
        prob[k, 4] = aux2
    counts[0] = k + 1
    counts[code] += 1


@nb.njit(cache=True, nogil=True, inline="always")
def _cut_field(p, le, width0):
    """True when a last line without end-of-line ends inside an F14.3 field (fields start at p+width0)."""
    r = (le - p - width0) % 16
    return le - p > width0 and not (r == 0 or r == 14 or r == 15)


@nb.njit(cache=True, nogil=True)
def _count_lines(buf, p):
    """Return the number of newlines in buf[p:] plus one."""
    c = 1
    for i in range(p, buf.size):
        if buf[i] == 10:
            c += 1
    return c


@nb.njit(cache=True, nogil=True)
def index_v3(buf: np.ndarray, pos: int, line: int, keep: np.ndarray, has_types: np.ndarray) -> tuple:
    """Index a RINEX 3/4 data section: epochs (time ns, flag, clock s, line) and satellite records."""
    n = buf.size
    cap = _count_lines(buf, pos)
    ep_ns = np.empty(cap, np.int64)
    ep_flag = np.empty(cap, np.int8)
    ep_clk = np.empty(cap, np.float64)
    rec_ep = np.empty(cap, np.int32)
    rec_code = np.empty(cap, np.int32)
    rec_pos = np.empty(cap, np.int64)
    rec_end = np.empty(cap, np.int64)
    rec_line = np.empty(cap, np.int64)
    ev = np.empty((cap, 4), np.int64)
    prob = np.zeros((MAX_PROBLEMS, 5), np.int64)
    counts = np.zeros(16, np.int64)
    cols = np.array([1, 6, 9, 12, 15, 18, 29])
    nep = 0
    nrec = 0
    nev = 0
    resync = False
    while pos < n:
        e = _eol(buf, pos, n)
        le = _line_end(buf, pos, e)
        if le == pos or buf[pos] != 62:  # not '>'
            if le > pos and not resync:
                _add_problem(prob, counts, P_UNEXPECTED, line, pos, _NO_AUX, _NO_AUX)
                resync = True
            pos = e + 1
            line += 1
            continue
        resync = False
        eline = line
        epos = pos
        flag = -1
        if le > pos + 31:
            c = buf[pos + 31]
            flag = 0 if c == 32 else (c - 48 if 48 <= c <= 57 else -1)
        st, nsat = _parse_int(buf, pos + 32, min(pos + 35, le))
        pos = e + 1
        line += 1
        if flag < 0 or st == 2 or nsat < 0:
            _add_problem(prob, counts, P_BAD_EPOCH, eline, epos, _NO_AUX, _NO_AUX)
            resync = True
            continue
        if flag > 6:
            _add_problem(prob, counts, P_UNKNOWN_FLAG, eline, epos, flag, _NO_AUX)
            resync = True
            continue
        if 2 <= flag <= 6:
            start = pos
            k = 0
            while k < nsat and pos < n:
                pos = _eol(buf, pos, n) + 1
                line += 1
                k += 1
            if k < nsat:
                _add_problem(prob, counts, P_EVENT_CUT, eline, epos, k, nsat)
            if flag <= 5:
                ev[nev, 0] = eline
                ev[nev, 1] = start
                ev[nev, 2] = min(pos, n)
                ev[nev, 3] = flag
                nev += 1
            continue
        t = _epoch_ns(buf, epos, le, cols, False)
        if t < 0:
            _add_problem(prob, counts, P_BAD_EPOCH, eline, epos, _NO_AUX, _NO_AUX)
            resync = True
            continue
        clk = np.nan
        if le > epos + 41:
            stc, vc = _parse_num(buf, epos + 41, le)
            if stc == 1:
                clk = vc
        r0 = nrec
        k = 0
        cut = False
        while k < nsat:
            if pos >= n:
                cut = True
                break
            e = _eol(buf, pos, n)
            le = _line_end(buf, pos, e)
            if le > pos and buf[pos] == 62:
                _add_problem(prob, counts, P_SHORT_EPOCH, eline, epos, k, nsat)
                break
            if e == n and _cut_field(pos, le, 3):
                cut = True
                break
            sy = buf[pos] if le > pos else 32
            sp, prn = _parse_int(buf, pos + 1, min(pos + 3, le))
            if sy >= 128 or sp != 1 or prn < 1 or prn > 99:
                _add_problem(prob, counts, P_BAD_SAT, line, pos, _NO_AUX, _NO_AUX)
            elif not has_types[sy]:
                _add_problem(prob, counts, P_NO_TYPES, line, pos, sy, _NO_AUX)
            elif keep[sy]:
                rec_ep[nrec] = nep
                rec_code[nrec] = sy * 100 + prn
                rec_pos[nrec] = pos
                rec_end[nrec] = le
                rec_line[nrec] = line
                nrec += 1
            pos = e + 1
            line += 1
            k += 1
        if cut:
            _add_problem(prob, counts, P_TRUNCATED, eline, epos, k, nsat)
            nrec = r0
            break
        ep_ns[nep] = t
        ep_flag[nep] = flag
        ep_clk[nep] = clk
        nep += 1
    np_ = min(counts[0], MAX_PROBLEMS)
    epochs = (ep_ns[:nep], ep_flag[:nep], ep_clk[:nep])
    recs = (rec_ep[:nrec], rec_code[:nrec], rec_pos[:nrec], rec_end[:nrec], rec_line[:nrec])
    return epochs, recs, ev[:nev], prob[:np_], counts


@nb.njit(cache=True, nogil=True)
def _looks_like_v2_epoch(buf, p, le):
    """True when a line has the shape of a RINEX 2 epoch record (date columns and an epoch flag digit)."""
    if le - p < 32 or not (48 <= buf[p + 28] <= 57):
        return False
    if buf[p + 18] == 46:
        return buf[p] == 32 and buf[p + 3] == 32 and buf[p + 6] == 32 and buf[p + 9] == 32
    for i in range(p, p + 28):
        if buf[i] != 32:
            return False
    return True


@nb.njit(cache=True, nogil=True)
def index_v2(
    buf: np.ndarray,
    pos: int,
    line: int,
    keep: np.ndarray,
    has_types: np.ndarray,
    default_sys: int,
    lines_per_sat: int,
) -> tuple:
    """Index a RINEX 2 data section: epochs (time ns, flag, clock s) and satellite records."""
    n = buf.size
    cap = _count_lines(buf, pos)
    ep_ns = np.empty(cap, np.int64)
    ep_flag = np.empty(cap, np.int8)
    ep_clk = np.empty(cap, np.float64)
    rec_ep = np.empty(cap, np.int32)
    rec_code = np.empty(cap, np.int32)
    rec_pos = np.empty(cap, np.int64)
    rec_end = np.empty(cap, np.int64)
    rec_line = np.empty(cap, np.int64)
    ev = np.empty((cap, 4), np.int64)
    prob = np.zeros((MAX_PROBLEMS, 5), np.int64)
    counts = np.zeros(16, np.int64)
    cols = np.array([0, 3, 6, 9, 12, 15, 26])
    sat_sys = np.empty(1000, np.int64)
    sat_prn = np.empty(1000, np.int64)
    nep = 0
    nrec = 0
    nev = 0
    resync = False
    while pos < n:
        e = _eol(buf, pos, n)
        le = _line_end(buf, pos, e)
        if not _looks_like_v2_epoch(buf, pos, le):
            if le > pos and not resync:
                _add_problem(prob, counts, P_UNEXPECTED, line, pos, _NO_AUX, _NO_AUX)
                resync = True
            pos = e + 1
            line += 1
            continue
        resync = False
        eline = line
        epos = pos
        elen = le
        flag = buf[pos + 28] - 48
        st, nsat = _parse_int(buf, pos + 29, pos + 32)
        pos = e + 1
        line += 1
        if st == 2 or nsat < 0 or nsat > 999:
            _add_problem(prob, counts, P_BAD_EPOCH, eline, epos, _NO_AUX, _NO_AUX)
            resync = True
            continue
        if flag > 6:
            _add_problem(prob, counts, P_UNKNOWN_FLAG, eline, epos, flag, _NO_AUX)
            resync = True
            continue
        if 2 <= flag <= 5:
            start = pos
            k = 0
            while k < nsat and pos < n:
                pos = _eol(buf, pos, n) + 1
                line += 1
                k += 1
            if k < nsat:
                _add_problem(prob, counts, P_EVENT_CUT, eline, epos, k, nsat)
            ev[nev, 0] = eline
            ev[nev, 1] = start
            ev[nev, 2] = min(pos, n)
            ev[nev, 3] = flag
            nev += 1
            continue
        t = _epoch_ns(buf, epos, elen, cols, True)
        if t < 0:
            _add_problem(prob, counts, P_BAD_EPOCH, eline, epos, _NO_AUX, _NO_AUX)
            resync = True
            continue
        clk = np.nan
        if elen > epos + 68:
            stc, vc = _parse_num(buf, epos + 68, elen)
            if stc == 1:
                clk = vc
        # satellite list: 12 per line from column 33, continuation lines after 32 blanks
        lp = epos
        ll = elen
        bad = False
        cut = False
        for k in range(nsat):
            if k > 0 and k % 12 == 0:
                if pos >= n:
                    cut = True
                    break
                lp = pos
                e = _eol(buf, pos, n)
                ll = _line_end(buf, pos, e)
                pos = e + 1
                line += 1
            c = lp + 32 + 3 * (k % 12)
            if c + 3 > ll:
                bad = True
                break
            sy = buf[c]
            if sy == 32:
                sy = default_sys
            sp, prn = _parse_int(buf, c + 1, c + 3)
            if sy >= 128 or sp != 1 or prn < 1 or prn > 99:
                bad = True
                break
            sat_sys[k] = sy
            sat_prn[k] = prn
        if cut:
            _add_problem(prob, counts, P_TRUNCATED, eline, epos, _NO_AUX, nsat)
            break
        if bad:
            _add_problem(prob, counts, P_BAD_EPOCH, eline, epos, _NO_AUX, _NO_AUX)
            resync = True
            continue
        r0 = nrec
        for k in range(nsat):
            rpos = pos
            rline = line
            for _ in range(lines_per_sat):
                if pos >= n:
                    cut = True
                    break
                e = _eol(buf, pos, n)
                le = _line_end(buf, pos, e)
                if e == n and _cut_field(pos, le, 0):
                    cut = True
                    break
                pos = e + 1
                line += 1
            if cut:
                _add_problem(prob, counts, P_TRUNCATED, eline, epos, k, nsat)
                break
            sy = sat_sys[k]
            if flag == 6:
                continue
            if not has_types[sy]:
                _add_problem(prob, counts, P_NO_TYPES, rline, rpos, sy, _NO_AUX)
            elif keep[sy]:
                rec_ep[nrec] = nep
                rec_code[nrec] = sy * 100 + sat_prn[k]
                rec_pos[nrec] = rpos
                rec_end[nrec] = min(pos, n)
                rec_line[nrec] = rline
                nrec += 1
        if cut:
            nrec = r0
            break
        if flag == 6:
            continue
        ep_ns[nep] = t
        ep_flag[nep] = flag
        ep_clk[nep] = clk
        nep += 1
    np_ = min(counts[0], MAX_PROBLEMS)
    epochs = (ep_ns[:nep], ep_flag[:nep], ep_clk[:nep])
    recs = (rec_ep[:nrec], rec_code[:nrec], rec_pos[:nrec], rec_end[:nrec], rec_line[:nrec])
    return epochs, recs, ev[:nev], prob[:np_], counts


@nb.njit(cache=True, nogil=True, inline="always")
def _parse_f143(buf, a, b):
    """Return (status, value) of an F14.3 field in buf[a:b]: the common layout directly, others generally."""
    if b - a == 14 and buf[a + 10] == 46:
        i = a
        while i < a + 10 and buf[i] == 32:
            i += 1
        neg = False
        if i < a + 10 and buf[i] == 45:
            neg = True
            i += 1
        ip = 0
        ok = True
        while i < a + 10:
            d = buf[i] - 48
            if d < 0 or d > 9:
                ok = False
                break
            ip = ip * 10 + d
            i += 1
        d1 = buf[a + 11] - 48
        d2 = buf[a + 12] - 48
        d3 = buf[a + 13] - 48
        if ok and 0 <= d1 <= 9 and 0 <= d2 <= 9 and 0 <= d3 <= 9:
            v = (ip * 1000 + d1 * 100 + d2 * 10 + d3) / 1000.0
            return 1, -v if neg else v
    return _parse_num(buf, a, b)


@nb.njit(cache=True, nogil=True, inline="always")
def _put_field(buf, a, le, values, lli, ssi, e, s, c):
    """Parse one F14.3,I1,I1 field at buf[a:] into values/lli/ssi[e, s, c]; return False when malformed."""
    b = min(a + 14, le)
    st, v = _parse_f143(buf, a, b)
    if st == 1:
        values[e, s, c] = v
        q = a + 14
        lli[e, s, c] = buf[q] - 48 if q < le and 48 <= buf[q] <= 57 else 0
        q += 1
        ssi[e, s, c] = buf[q] - 48 if q < le and 48 <= buf[q] <= 57 else 0
    return st != 2


@nb.njit(cache=True, nogil=True)
def fill_v3(
    buf: np.ndarray,
    rec_ep: np.ndarray,
    rec_sat: np.ndarray,
    rec_sys: np.ndarray,
    rec_pos: np.ndarray,
    rec_end: np.ndarray,
    colmap: np.ndarray,
    nobs: np.ndarray,
    values: np.ndarray,
    lli: np.ndarray,
    ssi: np.ndarray,
    bad: np.ndarray,
) -> None:
    """Fill values/lli/ssi (n_epoch, n_sat, n_signal) from RINEX 3/4 satellite records."""
    for r in range(rec_ep.size):
        e = rec_ep[r]
        s = rec_sat[r]
        sy = rec_sys[r]
        p = rec_pos[r]
        le = rec_end[r]
        for j in range(nobs[sy]):
            a = p + 3 + 16 * j
            if a >= le:
                break
            c = colmap[sy, j]
            if c >= 0 and not _put_field(buf, a, le, values, lli, ssi, e, s, c):
                bad[r] = 1


@nb.njit(cache=True, nogil=True)
def fill_v2(
    buf: np.ndarray,
    rec_ep: np.ndarray,
    rec_sat: np.ndarray,
    rec_sys: np.ndarray,
    rec_pos: np.ndarray,
    rec_end: np.ndarray,
    colmap: np.ndarray,
    nobs: np.ndarray,
    values: np.ndarray,
    lli: np.ndarray,
    ssi: np.ndarray,
    bad: np.ndarray,
) -> None:
    """Fill values/lli/ssi (n_epoch, n_sat, n_signal) from RINEX 2 satellite records (5 fields a line)."""
    for r in range(rec_ep.size):
        e = rec_ep[r]
        s = rec_sat[r]
        sy = rec_sys[r]
        p = rec_pos[r]
        end = rec_end[r]
        le = _line_end(buf, p, _eol(buf, p, end))
        for j in range(nobs[sy]):
            if j > 0 and j % 5 == 0:
                p = _eol(buf, p, end) + 1
                if p >= end:
                    break
                le = _line_end(buf, p, _eol(buf, p, end))
            a = p + 16 * (j % 5)
            c = colmap[sy, j]
            if a < le and c >= 0 and not _put_field(buf, a, le, values, lli, ssi, e, s, c):
                bad[r] = 1
