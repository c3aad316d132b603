"""2-D convolution kernels (cross-correlation with zero padding, like torch conv2d).

Layouts: x[B, C, H, W], w[O, C // groups, KH, KW] (PyTorch), b[O] or empty.

Dense path: im2col into one buffer reused across the batch + one BLAS sgemm per
(image chunk, group). Small images are packed side by side into the same column
buffer so each sgemm is big enough for BLAS to run at full speed; depthwise-style
layers (one input channel per output) skip BLAS and use direct loops.

Event path: scatter. Each nonzero input x[b, c, i, j] adds x * w into every output
it touches, so the cost is (#nonzero inputs) x (fan-out = Og x KH x KW / (sh x sw)).
The accumulator is channels-last so one event's contribution to all Og output
channels of its group is a single contiguous axpy.
"""
import numpy as np
from numba import njit, prange

# Upper bound on the im2col buffer (float32 elements, 4 MiB): large enough that
# small layers get several images per sgemm, small enough to stay in L3.
_IM2COL_MAX_ELEMS = 1 << 20
# Work (MACs) above which the direct / event loops go parallel; a 2-thread
# parallel region costs ~10-20 us, which small layers never repay.
_PAR_MIN_WORK = 1 << 16


@njit(cache=True, fastmath=False)
def conv_out_size(n, k, s, p):
    """floor((n + 2p - k) / s) + 1."""
    return (n + 2 * p - k) // s + 1


# --------------------------------------------------------------------------- dense


@njit(cache=True, fastmath=False)
def _valid_cols(W, WO, kw, sw, pw):
    # Output columns oj whose input column oj*sw - pw + kw lies inside [0, W).
    j0 = min(WO, max(0, (pw - kw + sw - 1) // sw))
    j1 = max(j0, min(WO, (W - 1 + pw - kw) // sw + 1))
    return j0, j1


@njit(cache=True, fastmath=False)
def _im2col(xb, c0, Cg, KH, KW, sh, sw, ph, pw, HO, WO, cols, n0):
    """cols[(c*KH + kh)*KW + kw, n0 + oi*WO + oj] = xpad[c0 + c, oi*sh + kh, oj*sw + kw]."""
    H = xb.shape[1]
    W = xb.shape[2]
    for c in range(Cg):
        xc = xb[c0 + c]
        for kh in range(KH):
            for kw in range(KW):
                row = cols[(c * KH + kh) * KW + kw]
                j0, j1 = _valid_cols(W, WO, kw, sw, pw)
                off = kw - pw
                for oi in range(HO):
                    i = oi * sh - ph + kh
                    base = n0 + oi * WO
                    if i < 0 or i >= H:
                        row[base:base + WO] = 0.0
                        continue
                    xr = xc[i]
                    for oj in range(j0):
                        row[base + oj] = 0.0
                    if sw == 1:  # contiguous copy, vectorises
                        for oj in range(j0, j1):
                            row[base + oj] = xr[oj + off]
                    else:
                        for oj in range(j0, j1):
                            row[base + oj] = xr[oj * sw + off]
                    for oj in range(j1, WO):
                        row[base + oj] = 0.0


@njit(cache=True, fastmath=False)
def _conv_dense_gemm(x, w, b, sh, sw, ph, pw, groups):
    B, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    HO = conv_out_size(H, KH, sh, ph)
    WO = conv_out_size(W, KW, sw, pw)
    HW = HO * WO
    Og = O // groups
    K = Cg * KH * KW
    out = np.empty((B, O, HO, WO), np.float32)
    w2 = w.reshape(O, K)
    nb = max(1, min(B, _IM2COL_MAX_ELEMS // max(1, K * HW)))
    buf = np.empty(K * nb * HW, np.float32)  # reused for every chunk and group
    for b0 in range(0, B, nb):
        n = min(nb, B - b0)
        cols = buf[:K * n * HW].reshape(K, n * HW)
        for g in range(groups):
            wg = w2[g * Og:(g + 1) * Og]
            for q in range(n):
                _im2col(x[b0 + q], g * Cg, Cg, KH, KW, sh, sw, ph, pw, HO, WO, cols, q * HW)
            if n == 1:
                # sgemm straight into the output slice (contiguous), no copy
                og = out[b0, g * Og:(g + 1) * Og].reshape(Og, HW)
                np.dot(wg, cols, og)
                if b.shape[0] > 0:
                    for o in range(Og):
                        og[o] += b[g * Og + o]
            else:
                r = np.dot(wg, cols)
                for q in range(n):
                    og = out[b0 + q, g * Og:(g + 1) * Og].reshape(Og, HW)
                    for o in range(Og):
                        bv = b[g * Og + o] if b.shape[0] > 0 else np.float32(0.0)
                        src = r[o, q * HW:(q + 1) * HW]
                        dst = og[o]
                        for p in range(HW):
                            dst[p] = src[p] + bv
    return out


@njit(cache=True, fastmath=False)
def _direct_plane(x, w, b, out, bi, o, Og, sh, sw, ph, pw):
    """One output plane out[bi, o] of a layer with one input channel per group
    (Cg == 1: depthwise and channel multipliers). Row-wise axpys, no im2col."""
    H = x.shape[2]
    W = x.shape[3]
    KH = w.shape[2]
    KW = w.shape[3]
    HO = out.shape[2]
    WO = out.shape[3]
    xc = x[bi, o // Og]
    op = out[bi, o]
    bv = b[o] if b.shape[0] > 0 else np.float32(0.0)
    for oi in range(HO):
        row = op[oi]
        row[:] = bv
        for kh in range(KH):
            i = oi * sh - ph + kh
            if i < 0 or i >= H:
                continue
            xr = xc[i]
            for kw in range(KW):
                wv = w[o, 0, kh, kw]
                j0, j1 = _valid_cols(W, WO, kw, sw, pw)
                off = kw - pw
                if sw == 1:
                    for oj in range(j0, j1):
                        row[oj] += wv * xr[oj + off]
                else:
                    for oj in range(j0, j1):
                        row[oj] += wv * xr[oj * sw + off]


@njit(cache=True, fastmath=False)
def _conv_direct_serial(x, w, b, out, Og, sh, sw, ph, pw):
    for bi in range(x.shape[0]):
        for o in range(w.shape[0]):
            _direct_plane(x, w, b, out, bi, o, Og, sh, sw, ph, pw)


@njit(cache=True, fastmath=False, parallel=True)
def _conv_direct_parallel(x, w, b, out, Og, sh, sw, ph, pw):
    O = w.shape[0]
    for t in prange(x.shape[0] * O):
        bi = t // O
        _direct_plane(x, w, b, out, bi, t - bi * O, Og, sh, sw, ph, pw)


@njit(cache=True, fastmath=False)
def conv2d_dense(x, w, b, sh, sw, ph, pw, groups):
    """Dense conv2d; out[B, O, HO, WO] = torch.nn.functional.conv2d(x, w, b, (sh, sw), (ph, pw), 1, groups)."""
    B = x.shape[0]
    O, Cg, KH, KW = w.shape
    if Cg == 1:
        HO = conv_out_size(x.shape[2], KH, sh, ph)
        WO = conv_out_size(x.shape[3], KW, sw, pw)
        out = np.empty((B, O, HO, WO), np.float32)
        if B * O * HO * WO * KH * KW >= _PAR_MIN_WORK:
            _conv_direct_parallel(x, w, b, out, O // groups, sh, sw, ph, pw)
        else:
            _conv_direct_serial(x, w, b, out, O // groups, sh, sw, ph, pw)
        return out
    return _conv_dense_gemm(x, w, b, sh, sw, ph, pw, groups)


# --------------------------------------------------------------------------- event


@njit(cache=True, fastmath=False)
def prepare_conv_event(w, groups):
    """Event layout wev[C, KH, KW, Og] with wev[c, kh, kw, k] = w[g*Og + k, c - g*Cg, kh, kw],
    g = c // Cg: everything one input channel scatters, output channel fastest."""
    O, Cg, KH, KW = w.shape
    Og = O // groups
    wev = np.empty((Cg * groups, KH, KW, Og), np.float32)
    for g in range(groups):
        for ci in range(Cg):
            for kh in range(KH):
                for kw in range(KW):
                    for k in range(Og):
                        wev[g * Cg + ci, kh, kw, k] = w[g * Og + k, ci, kh, kw]
    return wev


@njit(cache=True, fastmath=False)
def _tap_table(n, nout, k, s, p):
    """For each input index i: the (kernel tap, output index) pairs it feeds,
    i.e. all t with o*s - p + t == i and 0 <= o < nout. Removes the modulo tests
    from the per-event loop."""
    maxc = (k + s - 1) // s
    cnt = np.zeros(n, np.int64)
    tap = np.empty((n, maxc), np.int64)
    dst = np.empty((n, maxc), np.int64)
    for i in range(n):
        for t in range(k):
            q = i + p - t
            if q >= 0 and q % s == 0 and q // s < nout:
                tap[i, cnt[i]] = t
                dst[i, cnt[i]] = q // s
                cnt[i] += 1
    return cnt, tap, dst


@njit(cache=True, fastmath=False)
def _conv_event_task(x, wev, b, out, bi, k0, k1, groups, rc, rt, rd, cc, ct, cd, acc):
    """Scatter all events of image bi into output channels [k0, k1) of every group,
    then write out[bi] (NCHW) + bias. acc is a zeroed [HO, WO, O] scratch."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    Og = wev.shape[3]
    Cg = C // groups
    HO = out.shape[2]
    WO = out.shape[3]
    xb = x[bi]
    for c in range(C):
        o0 = (c // Cg) * Og
        wc = wev[c]
        xc = xb[c]
        for i in range(H):
            nr = rc[i]
            if nr == 0:
                continue
            xr = xc[i]
            for j in range(W):
                v = xr[j]
                if v == 0.0:
                    continue
                for a in range(nr):
                    kh = rt[i, a]
                    arow = acc[rd[i, a]]
                    for e in range(cc[j]):
                        wk = wc[kh, ct[j, e]]
                        dst = arow[cd[j, e]]
                        for k in range(k0, k1):
                            dst[o0 + k] += v * wk[k]
    # channels-last scratch -> NCHW output (+ bias)
    for g in range(groups):
        for k in range(k0, k1):
            o = g * Og + k
            bv = b[o] if b.shape[0] > 0 else np.float32(0.0)
            op = out[bi, o]
            for oi in range(HO):
                for oj in range(WO):
                    op[oi, oj] = acc[oi, oj, o] + bv


@njit(cache=True, fastmath=False)
def _conv_event_serial(x, wev, b, out, groups, rc, rt, rd, cc, ct, cd):
    HO, WO, O = out.shape[2], out.shape[3], out.shape[1]
    acc = np.empty((HO, WO, O), np.float32)
    for bi in range(x.shape[0]):
        acc[:] = 0.0
        _conv_event_task(x, wev, b, out, bi, 0, wev.shape[3], groups, rc, rt, rd, cc, ct, cd, acc)


@njit(cache=True, fastmath=False, parallel=True)
def _conv_event_parallel(x, wev, b, out, groups, nparts, rc, rt, rd, cc, ct, cd):
    # Tasks = (image, slice of the Og output channels). Images never share output;
    # channel slices of one image write disjoint accumulator columns, so no races.
    # Each output's summation order is the same as in the serial kernel.
    HO, WO, O = out.shape[2], out.shape[3], out.shape[1]
    Og = wev.shape[3]
    for t in prange(x.shape[0] * nparts):
        bi = t // nparts
        part = t - bi * nparts
        acc = np.zeros((HO, WO, O), np.float32)
        _conv_event_task(x, wev, b, out, bi, part * Og // nparts, (part + 1) * Og // nparts,
                         groups, rc, rt, rd, cc, ct, cd, acc)


@njit(cache=True, fastmath=False)
def conv2d_event(x, wev, b, O, KH, KW, sh, sw, ph, pw, groups):
    """Event-driven conv2d with weights from prepare_conv_event; same result as conv2d_dense."""
    B, C, H, W = x.shape
    HO = conv_out_size(H, KH, sh, ph)
    WO = conv_out_size(W, KW, sw, pw)
    out = np.empty((B, O, HO, WO), np.float32)
    rc, rt, rd = _tap_table(H, HO, KH, sh, ph)
    cc, ct, cd = _tap_table(W, WO, KW, sw, pw)
    Og = wev.shape[3]
    # A single image is split into 2 output-channel slices (one per core of the
    # 2-core target) when each slice keeps >= 16 channels, so the axpy stays
    # vectorised. (numba.get_num_threads() would make this function uncacheable.)
    nparts = 2 if (B == 1 and Og >= 32) else 1
    if B * nparts > 1 and B * O * HO * WO >= _PAR_MIN_WORK // 4:
        _conv_event_parallel(x, wev, b, out, groups, nparts, rc, rt, rd, cc, ct, cd)
    else:
        _conv_event_serial(x, wev, b, out, groups, rc, rt, rd, cc, ct, cd)
    return out
