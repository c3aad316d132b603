"""2-D convolution, event-driven form (the dense form: kernels/conv.py; same layouts and results).

Scatter. Each nonzero input x[b, c, i, j] adds x * w into every output it touches, so the cost is
(#nonzero inputs) x (fan-out = Og x KH x KW / (sh x sw)) plus one read of the input (finding the nonzeros)
and one write of the output. The accumulator is channels-last, so one event's contribution to all Og output
channels of its group is a contiguous axpy (for groups == 1 and stride-1 width a whole kernel row is one
axpy). Layers with few channels per group (depthwise) scatter straight into the NCHW output instead.

What does not grow with the events is kept to those two passes at memory speed (kernels/simd.py): the
nonzeros are found 32 inputs per vector test and listed once per image (a silent image then writes only
its bias); the channels-last scratch is turned into the NCHW output by 8 x 8 register transposes that also
clear it for the next image.

Deterministic: the order of the float32 additions for each output does not depend on the thread count or on
how work is split. Large layers split images (or, for one image, output rows or groups) between threads
(kernels/threads.py) above _EVENT_PAR_MIN_OUT outputs (see conv.py on why splits start only there).
"""
import functools

import numpy as np
from numba import njit

from numba.cpython.unsafe.numbers import trailing_zeros

from .conv import _out_hw
from .layout import pixels_to_planes
from .simd import nonzero_mask, nonzero_mask32
from .threads import split

_EVENT_PAR_MIN_OUT = 1 << 21


def prepare_conv_event(w, groups):
    """Event layout wev[C, KH, KW, Og]: wev[c, kh, KW-1-kw, k] = w[g*Og + k, c - g*Cg, kh, kw],
    g = c // Cg. Everything one input channel scatters, output channel fastest;
    kernel columns are stored reversed because an input pixel at column j feeds
    output column j + pw - kw: reversed, the taps of one kernel row line up with
    consecutive output pixels, so (groups == 1, stride-1 width) they are a single
    contiguous axpy of length n_taps * O. (NumPy, not Numba: it runs once per network build.)"""
    O, Cg, KH, KW = w.shape
    Og = O // groups
    g = np.asarray(w, np.float32).reshape(groups, Og, Cg, KH, KW)
    # [groups, Cg, KH, KW, Og] -> [C, KH, KW, Og], kernel columns reversed
    return np.ascontiguousarray(g.transpose(0, 2, 3, 4, 1)[:, :, :, ::-1, :].reshape(groups * Cg, KH, KW, Og))


@functools.lru_cache(maxsize=256)
def tap_table(n, nout, k, s, p):
    """For each input index i: the (kernel tap, output index) pairs it feeds,
    i.e. all t with o*s - p + t == i and 0 <= o < nout, t ascending. Removes the
    modulo tests from the per-event loop. (Python, once per layer geometry: read-only
    arrays shared by every call.)"""
    maxc = (k + s - 1) // s
    cnt = np.zeros(n, np.int64)
    tap = np.zeros((n, maxc), np.int64)
    dst = np.zeros((n, maxc), np.int64)
    for i in range(n):
        for t in range(k):
            q = i + p - t
            if q >= 0 and q % s == 0 and q // s < nout:
                tap[i, cnt[i]] = t
                dst[i, cnt[i]] = q // s
                cnt[i] += 1
    return cnt, tap, dst


@njit(cache=True, fastmath=False, nogil=True, inline="always")
def event_lists(C, H, W):
    """The buffers _collect_events fills for a C x H x W input: the row and column of each position of a plane
    (pos_i, pos_j, filled), and room for every input as an event (ev, ej, ei, ec)."""
    pos_i = np.empty(H * W, np.int32)
    pos_j = np.empty(H * W, np.int32)
    for q in range(H * W):
        pos_i[q] = q // W
        pos_j[q] = q - pos_i[q] * W
    n = C * H * W
    return pos_i, pos_j, np.empty(n, np.float32), np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.int32)


@njit(cache=True, fastmath=False, nogil=True)
def _collect_events(x, bi, pos_i, pos_j, ev, ej, ei, ec):
    """The nonzero inputs of image bi, in (channel, row, column) order: event e has value ev[e], channel ec[e],
    row ei[e] and column ej[e]. Returns their number. Each channel's plane is read 32 entries at a time as a bit
    mask of its nonzeros (simd.nonzero_mask32) and only set bits are visited, without branches (pos_i, pos_j:
    the row and column of each position of a plane): a silent input costs one fast read, a sparse one a bit
    scan per event."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    HW = H * W
    xf = x[bi].reshape(C * HW)
    bits = xf.view(np.uint32)
    n = 0
    for c in range(C):
        base = c * HW
        for q0 in range(0, HW, 32):
            m = nonzero_mask(xf, bits, base + q0, base + HW)
            while m != 0:
                q = q0 + trailing_zeros(m)
                ei[n] = pos_i[q]
                ej[n] = pos_j[q]
                ec[n] = c
                ev[n] = xf[base + q]
                n += 1
                m &= m - np.uint32(1)
    return n


@njit(cache=True, fastmath=False, nogil=True)
def _scatter_band(ev, ej, ei, ec, n, C, wev, r0, r1, groups, sh, ph, sw, tr_c, tr_t, tr_d, tc_c, tc_t, tc_d, acc,
                  O, WO):
    """Scatter the events (_collect_events) that reach output rows [r0, r1) into the zeroed channels-last
    scratch acc[(oi - r0), oj, o]. Each output gets at most one term per event, added in event order
    (c, i, j): the result does not depend on how rows are split into bands or tasks, or taps grouped.
    tr_*, tc_*: the tap tables (tap_table) of rows and columns. One flat loop over the events: a loop over
    input rows with an inner loop over their events cost 2-4 ns more an event (of 35-45 ns; most rows hold one
    event at 1-5 % density)."""
    KH, KW, Og = wev.shape[1], wev.shape[2], wev.shape[3]
    Cg = C // groups
    wf = wev.reshape(wev.size)
    run = groups == 1 and sw == 1
    uOg = np.uint64(Og)
    i0 = r0 * sh - ph                               # the input rows that feed output rows [r0, r1)
    i1 = (r1 - 1) * sh - ph + KH
    for e in range(n):
        i = ei[e]
        if i < i0 or i >= i1:
            continue
        c = ec[e]
        j = ej[e]
        v = ev[e]
        ncol = tc_c[j]
        for a in range(tr_c[i]):
            oi = tr_d[i, a]
            if oi < r0 or oi >= r1:
                continue
            wrow = (c * KH + tr_t[i, a]) * KW + KW - 1
            prow = (oi - r0) * WO
            if run:
                # the whole kernel row: consecutive pixels x all O channels
                last = ncol - 1
                ab = np.uint64((prow + tc_d[j, last]) * O)
                wb = np.uint64((wrow - tc_t[j, last]) * Og)
                for q in range(np.uint64(ncol * O)):
                    acc[ab + q] += v * wf[wb + q]
            else:
                o0 = (c // Cg) * Og
                for col in range(ncol):
                    ab = np.uint64((prow + tc_d[j, col]) * O + o0)
                    wb = np.uint64((wrow - tc_t[j, col]) * Og)
                    for q in range(uOg):
                        acc[ab + q] += v * wf[wb + q]


@njit(cache=True, fastmath=False, nogil=True, inline="always")
def _nhwc_to_out(acc, bias, out, bi, r0, r1):
    """out[bi, o, r0:r1] = acc[:, :, o] + bias[o] (bias: O entries, zeros for a layer without one; acc is
    never -0.0, so adding a zero leaves it unchanged), and acc = 0 for the next band (layout.pixels_to_planes)."""
    O, WO = out.shape[1], out.shape[3]
    HW = out.shape[2] * WO
    pixels_to_planes(acc, O, (r1 - r0) * WO, bias, out[bi].reshape(O * HW), r0 * WO, HW, O, np.bool_(True))


@njit(cache=True, fastmath=False, nogil=True)
def _scatter_planar(x, wev, b, out, bi, g0, g1, groups, sw, rc, rt, rd, cc, ct, cd):
    """Event scatter of groups [g0, g1) of image bi straight into the NCHW output,
    for few channels per group (depthwise: Og == 1), where a channels-last scratch
    and its transpose would cost more than the events. Same per-output summation
    order as _scatter_nhwc."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    KH, KW, Og = wev.shape[1], wev.shape[2], wev.shape[3]
    Cg = C // groups
    O, HO, WO = out.shape[1], out.shape[2], out.shape[3]
    HW = HO * WO
    outf = out[bi].reshape(O * HW)
    outf[g0 * Og * HW:g1 * Og * HW] = 0.0
    wf = wev.reshape(wev.size)
    uHW = np.uint64(HW)
    run = Og == 1 and sw == 1
    for c in range(g0 * Cg, g1 * Cg):
        o0 = (c // Cg) * Og
        for i in range(H):
            nr = rc[i]
            if nr == 0:
                continue
            for j in range(W):
                v = x[bi, c, i, j]
                if v == 0.0:
                    continue
                ncol = cc[j]
                for a in range(nr):
                    wrow = (c * KH + rt[i, a]) * KW + KW - 1
                    prow = (o0 * HO + rd[i, a]) * WO
                    if run:
                        # depthwise, stride-1 width: the kernel row is one short contiguous run
                        last = ncol - 1
                        ab = np.uint64(prow + cd[j, last])
                        wb = np.uint64(wrow - ct[j, last])
                        for k in range(np.uint64(ncol)):
                            outf[ab + k] += v * wf[wb + k]
                        continue
                    for e in range(ncol):
                        ab = np.uint64(prow + cd[j, e])
                        wb = np.uint64((wrow - ct[j, e]) * Og)
                        for k in range(np.uint64(Og)):
                            outf[ab + k * uHW] += v * wf[wb + k]
    if b.shape[0] > 0:
        for o in range(g0 * Og, g1 * Og):
            bv = b[o]
            d = np.uint64(o * HW)
            for p in range(uHW):
                outf[d + p] += bv


# Below this many output channels per group the event kernel scatters straight into NCHW.
PLANAR_MAX_OG = 8


@njit(cache=True, fastmath=False, nogil=True)
def _image_is_silent(x, bi):
    """True if image bi has no nonzero input (-0.0 counts as zero): a vector test per 32 entries
    (simd.nonzero_mask32), so a silent image costs a fast read of its input and an active one stops at
    its first nonzero block."""
    xf = x[bi].reshape(x[bi].size)
    bits = xf.view(np.uint32)
    n = xf.shape[0]
    n32 = n - n % 32
    for a in range(0, n32, 32):
        if nonzero_mask32(bits, a) != 0:
            return False
    for k in range(n32, n):
        if xf[k] != 0.0:
            return False
    return True


@njit(cache=True, fastmath=False, nogil=True, inline="always")
def _bias_rows(b, out, bi, r0, r1):
    """out[bi, :, r0:r1] = bias (0 without one): the output of a silent image."""
    O, HO, WO = out.shape[1], out.shape[2], out.shape[3]
    outf = out[bi].reshape(O * HO * WO)
    for o in range(O):
        bv = b[o] if b.shape[0] > 0 else np.float32(0.0)
        for p in range(np.uint64((o * HO + r0) * WO), np.uint64((o * HO + r1) * WO)):
            outf[p] = bv


# Output rows scattered at a time: a band's channels-last scratch (at most 64 KiB, in L1/L2) is transposed into
# the output while it is in cache. Smaller bands were slower: each walks the events again and rereads weights.
_BAND_FLOATS = 1 << 14


@njit(cache=True, fastmath=False, nogil=True)
def _conv_event_rows(x, wev, b, out, groups, sh, ph, sw, nparts, tr_c, tr_t, tr_d, tc_c, tc_t, tc_d, t0, t1):
    """Tasks [t0, t1) of the channels-last scatter: task t = (image t // nparts, part t % nparts of output
    rows), each part in bands of output rows. Tasks write disjoint outputs (no races) and each output's sum
    has the same order however the tasks are split (bitwise-equal results)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    O, HO, WO = out.shape[1], out.shape[2], out.shape[3]
    band = max(1, _BAND_FLOATS // (WO * O))
    acc = np.zeros(min(band, HO) * WO * O, np.float32)          # zeroed again by each transpose
    bias = b if b.shape[0] > 0 else np.zeros(O, np.float32)
    pos_i, pos_j, ev, ej, ei, ec = event_lists(C, H, W)
    collected = -1
    n = 0
    for t in range(t0, t1):
        bi = t // nparts
        part = t - bi * nparts
        if bi != collected:
            n = _collect_events(x, bi, pos_i, pos_j, ev, ej, ei, ec)
            collected = bi
        p0 = part * HO // nparts
        p1 = (part + 1) * HO // nparts
        if n == 0:                                          # no events: the output is the bias
            _bias_rows(b, out, bi, p0, p1)
            continue
        for r0 in range(p0, p1, band):
            r1 = min(p1, r0 + band)
            _scatter_band(ev, ej, ei, ec, n, C, wev, r0, r1, groups, sh, ph, sw, tr_c, tr_t, tr_d, tc_c, tc_t,
                          tc_d, acc, O, WO)
            _nhwc_to_out(acc, bias, out, bi, r0, r1)


@njit(cache=True, fastmath=False, nogil=True)
def _conv_event_planar(x, wev, b, out, groups, sw, nparts, rc, rt, rd, cc, ct, cd, t0, t1):
    """Tasks [t0, t1) of the planar scatter: task t = (image t // nparts, range t % nparts of groups);
    disjoint outputs and a fixed summation order, as in _conv_event_rows."""
    HO = out.shape[2]
    for t in range(t0, t1):
        bi = t // nparts
        part = t - bi * nparts
        if nparts == 1 and _image_is_silent(x, bi):         # no events: the output is the bias
            _bias_rows(b, out, bi, 0, HO)
            continue
        _scatter_planar(x, wev, b, out, bi, part * groups // nparts, (part + 1) * groups // nparts, groups,
                        sw, rc, rt, rd, cc, ct, cd)


def conv2d_event(x, wev, b, O, KH, KW, sh, sw, ph, pw, groups, split_above=None):
    """Event-driven conv2d with weights from prepare_conv_event; same result as conv2d_dense.
    Cost ~ (#nonzero inputs) x Og x KH x KW / (sh x sw), plus one pass over the input
    (the nonzero scan) and one over the output (zero + write). ``split_above``: outputs above which the
    images are split between threads (default _EVENT_PAR_MIN_OUT, the inference rule)."""
    x = np.ascontiguousarray(x, np.float32)            # the nonzero tests read float32 bit patterns
    B, C, H, W = x.shape
    HO, WO = _out_hw(x, KH, KW, sh, sw, ph, pw)
    out = np.empty((B, O, HO, WO), np.float32)
    rc, rt, rd = tap_table(H, HO, KH, sh, ph)
    cc, ct, cd = tap_table(W, WO, KW, sw, pw)
    # A single image is split in 2 (bands of output rows, or ranges of groups for
    # the planar scatter), one part per core of the 2-core target.
    if wev.shape[3] >= PLANAR_MAX_OG:
        nparts = 2 if (B == 1 and HO >= 2) else 1
        tasks, args = _conv_event_rows, (x, wev, b, out, groups, sh, ph, sw, nparts, rc, rt, rd, cc, ct, cd)
    else:
        nparts = 2 if (B == 1 and groups >= 2) else 1
        tasks, args = _conv_event_planar, (x, wev, b, out, groups, sw, nparts, rc, rt, rd, cc, ct, cd)
    if B * nparts > 1 and B * O * HO * WO >= (_EVENT_PAR_MIN_OUT if split_above is None else split_above):
        split(tasks, B * nparts, *args)
    else:
        tasks(*args, 0, B * nparts)
    return out
