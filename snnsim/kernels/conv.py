"""2-D convolution kernels (cross-correlation with zero padding, like torch conv2d).

Layouts: x[B, C, H, W], w[O, C // groups, KH, KW] (PyTorch), b[O] or empty.

Dense path, one group, where Numba compiles AVX-512: register tiles that read the padded input in place
(kernels/conv_tiled.py; 2.4-2.8x the GFLOP/s of the im2col path below on the ResNet's 3x3 layers at batch 64).

Dense path otherwise: im2col into a buffer reused across the batch + one single-threaded sgemm
per (image chunk, group). Stride-1 convs copy each image once into a zero-padded plane
and take 'wide' columns from it: output rows as wide as the padded row, so that each
column row is one contiguous copy; the extra columns are computed and dropped (15-25 %
less time than the narrow im2col on the ResNet's 3x3 layers, by CPU time). Strided
convs take the narrow im2col straight from the input (borders as zeros); 1x1
stride-1 convs multiply the image itself. Small images are packed side by side
into the same column buffer so each sgemm is big enough for BLAS to run at full
speed. Large layers split the chunks between threads (kernels/threads.py), each
calling single-threaded sgemm (kernels/blas.py). Depthwise-style layers (one input channel
per output) skip BLAS and use direct loops.

Event path: kernels/conv_event.py.

The direct loops are deterministic: the order of the float32 additions for each
output does not depend on the thread count or on how work is split. The sgemm
path's order is whatever BLAS does.
"""
import numpy as np
from numba import njit

from .blas import sgemm, sgemm_ldc
from . import gemm as packed
from .conv_tiled import conv2d_tiled
from .gemm import gemm
from .layout import pad_image
from .threads import split

# Upper bound on the im2col buffer of several images side by side (float32
# elements, 512 KiB): small layers get several images per sgemm; larger images go
# one at a time, in bands of output rows of at most _BAND_ELEMS (256 KiB, within
# L2), so that the columns sgemm reads are still in cache. (4 MiB chunks measured
# 2-3x slower per image at batch 64 than one image alone.)
_IM2COL_MAX_ELEMS = 1 << 17
_BAND_ELEMS = 1 << 16
# The same bounds for the wide im2col of stride-1 convs (contiguous row copies, im2col_wide): measured by CPU
# time on the ResNet's and the conv net's 3x3 layers at batch 128, 2^16 to 2^20 elements were within 10 % of
# each other, 2^18 (1 MiB, this machine's L2) at the top.
_WIDE_MAX_ELEMS = 1 << 18
_WIDE_BAND_ELEMS = 1 << 18
# Work above which a kernel splits between threads (kernels/threads.py). A split
# costs little on an idle 2-core machine, but on a busy one handing work to the
# other thread waits for a core: under a load average of 6-9 a hand-off took
# milliseconds, and the conv net at batch 64 ran several times slower with its
# 1-2 ms layers split than without. So only layers with several milliseconds of
# serial work are split: direct loops above _PAR_MIN_WORK multiply-adds, the event
# scatter above conv_event._EVENT_PAR_MIN_OUT outputs, the sgemm path above _GEMM_PAR_MIN_WORK.
# (A network's batch now runs as chunks of samples, each with its kernels serial, engine.chunk_bounds: these
# thresholds apply to batches of one chunk.) The direct loops got faster (one pass for a depthwise 3x3) and split
# from 2^23: the T-RevSNN's depthwise 3x3 on 64 channels at 16x16 split at batch 64 (9.4M multiply-adds) ran
# 1.55-1.9x faster idle, 1.2-1.6x with 2 spinning processes and 0.95x with 4; at batch 32 1.28x, 0.98x, 0.78x,
# so it stays serial there (a hand-off costs ~40-50 us, 2026-11-28).
_PAR_MIN_WORK = 1 << 23
_GEMM_PAR_MIN_WORK = 1 << 27


# Cold start: each path (direct loops, sgemm, event scatter into channels-last or planar output) has
# its own compiled entry point, chosen in Python, so that a first run compiles only the code its layers
# use. The direct and sgemm paths' helpers are inlined into their one caller (inline="always": not
# compiled a second time on their own); the event scatter's are not (inlined, it ran 3-5 % slower).


def conv_out_size(n, k, s, p):
    """floor((n + 2p - k) / s) + 1."""
    return (n + 2 * p - k) // s + 1


# --------------------------------------------------------------------------- dense
#
# Hot loops index flat arrays with np.uint64 offsets: Numba adds a negative-index
# wraparound select to every signed computed index, which stops LLVM from
# vectorising the loop (measured 3-6x slower).


@njit(cache=True, fastmath=False, nogil=True)
def im2col(x, bi, c0, Cg, KH, KW, sh, sw, ph, pw, oi0, oi1, WO, colf, ncols, n0):
    """colf[((c*KH+kh)*KW+kw)*ncols + n0 + (oi-oi0)*WO + oj] = x[bi, c0+c, oi*sh+kh-ph, oj*sw+kw-pw] for
    output rows oi0 <= oi < oi1, 0 outside the image: straight from the input (no padded copy first), so
    the only copy around sgemm is this one."""
    H = x.shape[2]
    W = x.shape[3]
    zero = np.float32(0.0)
    for c in range(Cg):
        xc = x[bi, c0 + c].reshape(H * W)
        for kh in range(KH):
            for kw in range(KW):
                r = (c * KH + kh) * KW + kw
                # output columns whose input column oj*sw + kw - pw lies inside [0, W)
                j0 = 0 if pw <= kw else min(WO, (pw - kw + sw - 1) // sw)
                j1 = min(WO, max(j0, (W - 1 + pw - kw) // sw + 1)) if W - 1 + pw - kw >= 0 else j0
                for oi in range(oi0, oi1):
                    d = np.uint64(r * ncols + n0 + (oi - oi0) * WO)
                    i = oi * sh + kh - ph
                    if i < 0 or i >= H:
                        for oj in range(np.uint64(WO)):
                            colf[d + oj] = zero
                        continue
                    for oj in range(np.uint64(j0)):
                        colf[d + oj] = zero
                    dj = d + np.uint64(j0)
                    s0 = np.uint64(i * W + j0 * sw + kw - pw)     # the input of output column j0
                    if sw == 1:
                        for t in range(np.uint64(j1 - j0)):
                            colf[dj + t] = xc[s0 + t]
                    else:
                        for t in range(np.uint64(j1 - j0)):
                            colf[dj + t] = xc[s0 + t * np.uint64(sw)]
                    for oj in range(np.uint64(j1), np.uint64(WO)):
                        colf[d + oj] = zero


@njit(cache=True, fastmath=False, inline="always")
def _add_bias(outf, o0, b, first, n, L):
    """outf[o0 + k L : o0 + (k + 1) L] += b[first + k] for k < n (nothing for a layer without a bias)."""
    if b.shape[0] > 0:
        for k in range(n):
            bv = b[first + k]
            for t in range(np.uint64(L)):
                outf[o0 + np.uint64(k * L) + t] += bv


@njit(cache=True, fastmath=False, inline="always")
def _gemm_chunk(x, w2, b, out, b0, n, sh, sw, ph, pw, groups, KH, KW, cols, res):
    """Images [b0, b0+n) of the dense conv: per group, im2col of the n images side by side, one sgemm,
    then (n > 1) each image's block copied to its place with the bias."""
    C = x.shape[1]
    O = w2.shape[0]
    HO, WO = out.shape[2], out.shape[3]
    L = HO * WO
    Cg = C // groups
    Og = O // groups
    K = Cg * KH * KW
    outf = out.reshape(out.size)
    w2f = w2.reshape(w2.size)
    pointwise = KH == 1 and KW == 1 and sh == 1 and sw == 1 and ph == 0 and pw == 0
    for g in range(groups):
        wg = w2f[g * Og * K:]
        if pointwise:
            # a 1x1 conv is a product with the image itself: no copy at all
            for q in range(n):
                o0 = np.uint64(((b0 + q) * O + g * Og) * L)
                xq = x[b0 + q].reshape(C * L)[g * Cg * L:]
                sgemm(Og, L, K, wg, xq, False, 0.0, outf[o0:])
                _add_bias(outf, o0, b, g * Og, Og, L)
            continue
        if n == 1:
            # one image, in bands of output rows whose columns fit _BAND_ELEMS (L2): im2col of a band,
            # then sgemm straight into the band of the output (rows of C L apart)
            o0 = np.uint64((b0 * O + g * Og) * L)
            rows = max(1, min(HO, _BAND_ELEMS // max(1, K * WO)))
            for r0 in range(0, HO, rows):
                r1 = min(HO, r0 + rows)
                ncols = (r1 - r0) * WO
                im2col(x, b0, g * Cg, Cg, KH, KW, sh, sw, ph, pw, r0, r1, WO, cols, ncols, 0)
                sgemm_ldc(Og, ncols, K, wg, cols, False, 0.0, outf[o0 + np.uint64(r0 * WO):], L)
            _add_bias(outf, o0, b, g * Og, Og, L)
            continue
        ncols = n * L
        for q in range(n):
            im2col(x, b0 + q, g * Cg, Cg, KH, KW, sh, sw, ph, pw, 0, HO, WO, cols, ncols, q * L)
        sgemm(Og, ncols, K, wg, cols, False, 0.0, res)
        for q in range(n):
            for k in range(Og):
                o = g * Og + k
                bv = b[o] if b.shape[0] > 0 else np.float32(0.0)
                s0 = np.uint64(k * ncols + q * L)
                d = np.uint64(((b0 + q) * O + o) * L)
                for t in range(np.uint64(L)):
                    outf[d + t] = res[s0 + t] + bv


@njit(cache=True, fastmath=False, inline="always")
def im2col_wide(xpad, Cg, KH, KW, Wp, P, r0, nr, cols, ncols, n0):
    """Stride-1 im2col in 'wide' rows: cols[((c*KH+kh)*KW+kw)*ncols + n0 + t] = xpad[c*P + (r0+kh)*Wp + kw + t]
    for t < nr*Wp, i.e. output rows r0..r0+nr of width Wp (the padded width) instead of WO. Each row is one
    contiguous copy (the narrow im2col copies WO elements at a time, with bounds, per output row); the
    Wp - WO extra columns per row are garbage that the caller drops (forward) or multiplies by zero (weight
    gradient). Reads up to KW - 1 elements past the last plane: xpad has that much zeroed slack."""
    m = np.uint64(nr * Wp)
    for c in range(Cg):
        for kh in range(KH):
            for kw in range(KW):
                d = np.uint64(((c * KH + kh) * KW + kw) * ncols + n0)
                s0 = np.uint64(c * P + (r0 + kh) * Wp + kw)
                for t in range(m):
                    cols[d + t] = xpad[s0 + t]


def wide_plan(step, K, HO, Wp):
    """(images per chunk, output rows per band) of the wide im2col: several whole images of one step side by
    side while their columns fit _WIDE_MAX_ELEMS, else one image in bands of rows that fit _WIDE_BAND_ELEMS."""
    nb = max(1, min(step, _WIDE_MAX_ELEMS // max(1, K * HO * Wp)))
    rows = HO if nb > 1 else max(1, min(HO, _WIDE_BAND_ELEMS // max(1, K * Wp)))
    return nb, rows


@njit(cache=True, fastmath=False, inline="always")
def _wide_to_out(res, ncols, n0, b, out, bi, o0, Og, r0, r1, Wp):
    """out[bi, o0+k, r0:r1] = the valid columns of res rows k (wide, from column n0) + bias."""
    WO = out.shape[3]
    O = out.shape[1]
    L = out.shape[2] * WO
    outf = out.reshape(out.size)
    for k in range(Og):
        bv = b[o0 + k] if b.shape[0] > 0 else np.float32(0.0)
        for oi in range(r0, r1):
            s0 = np.uint64(k * ncols + n0 + (oi - r0) * Wp)
            d = np.uint64((bi * O + o0 + k) * L + oi * WO)
            for oj in range(np.uint64(WO)):
                outf[d + oj] = res[s0 + oj] + bv


@njit(cache=True, fastmath=False, inline="always")
def _wide_chunks(x, w, b, out, ph, pw, groups, step, nb, rows, ch0, ch1, product):
    """Image chunks [ch0, ch1) of a stride-1 conv by wide im2col + sgemm: per group, nb images padded and
    their wide columns side by side (or one image in bands of ``rows`` output rows), one single-threaded
    ``product`` (OpenBLAS's sgemm, or kernels/gemm.py's) into a scratch result, the valid columns copied to the
    output with the bias. Chunks never cross the boundary of a step of ``step`` images (as _gemm_plan)."""
    O, Cg, KH, KW = w.shape
    HO = out.shape[2]
    Wp = x.shape[3] + 2 * pw
    P = (x.shape[2] + 2 * ph) * Wp
    K = Cg * KH * KW
    Og = O // groups
    span = nb * HO * Wp if nb > 1 else rows * Wp
    cols = np.empty(K * span, np.float32)
    res = np.empty(Og * span, np.float32)
    xpad = np.zeros(Cg * P + KW, np.float32)
    w2f = w.reshape(w.size)
    per_step = (step + nb - 1) // nb
    for ch in range(ch0, ch1):
        s = ch // per_step
        c0 = (ch - s * per_step) * nb
        b0 = s * step + c0
        n = min(nb, step - c0)
        for g in range(groups):
            wg = w2f[g * Og * K:]
            if n == 1:
                pad_image(x, b0, g * Cg, Cg, ph, pw, xpad, Wp, P)
                for r0 in range(0, HO, rows):
                    r1 = min(HO, r0 + rows)
                    ncols = (r1 - r0) * Wp
                    im2col_wide(xpad, Cg, KH, KW, Wp, P, r0, r1 - r0, cols, ncols, 0)
                    product(Og, ncols, K, wg, cols, res)
                    _wide_to_out(res, ncols, 0, b, out, b0, g * Og, Og, r0, r1, Wp)
                continue
            ncols = n * HO * Wp
            for q in range(n):
                pad_image(x, b0 + q, g * Cg, Cg, ph, pw, xpad, Wp, P)
                im2col_wide(xpad, Cg, KH, KW, Wp, P, 0, HO, cols, ncols, q * HO * Wp)
            product(Og, ncols, K, wg, cols, res)
            for q in range(n):
                _wide_to_out(res, ncols, q * HO * Wp, b, out, b0 + q, g * Og, Og, 0, HO, Wp)


@njit(cache=True, fastmath=False, inline="always")
def _blas_product(M, N, K, a, b, c):
    sgemm(M, N, K, a, b, False, 0.0, c)


@njit(cache=True, fastmath=False, inline="always")
def _own_product(M, N, K, a, b, c):
    gemm(M, N, K, a, b, 0, c)


# Two entry points, chosen in Python (conv2d_dense's ``own_gemm``): inference never compiles the packed kernel.
@njit(cache=True, fastmath=False, nogil=True)
def _conv_wide_chunks(x, w, b, out, ph, pw, groups, step, nb, rows, ch0, ch1):
    _wide_chunks(x, w, b, out, ph, pw, groups, step, nb, rows, ch0, ch1, _blas_product)


@njit(cache=True, fastmath=False, nogil=True)
def _conv_wide_chunks_own(x, w, b, out, ph, pw, groups, step, nb, rows, ch0, ch1):
    _wide_chunks(x, w, b, out, ph, pw, groups, step, nb, rows, ch0, ch1, _own_product)


@njit(cache=True, fastmath=False, inline="always")
def _gemm_plan(x, w, HO, WO, step):
    """(images per chunk, chunks per step, buffer sizes): chunks of whole images whose im2col fits
    _IM2COL_MAX_ELEMS, never across the boundary of a step of ``step`` images (timesteps side by side)."""
    O, Cg, KH, KW = w.shape
    K = Cg * KH * KW
    L = HO * WO
    nb = max(1, min(step, _IM2COL_MAX_ELEMS // max(1, K * L)))
    groups = x.shape[1] // Cg
    return nb, (step + nb - 1) // nb, K * nb * L, (O // groups) * nb * L


def _images_per_chunk(B, K, L):
    return max(1, min(B, _IM2COL_MAX_ELEMS // max(1, K * L)))


@njit(cache=True, fastmath=False, nogil=True)
def _conv_gemm_chunks(x, w, b, out, sh, sw, ph, pw, groups, step, ch0, ch1):
    """Image chunks [ch0, ch1) of the sgemm path, with their own buffers (threads.split runs several
    ranges at once, each calling single-threaded sgemm)."""
    O, Cg, KH, KW = w.shape
    nb, per_step, ncol, nres = _gemm_plan(x, w, out.shape[2], out.shape[3], step)
    cols = np.empty(ncol, np.float32)
    res = np.empty(nres, np.float32)
    w2 = w.reshape(O, Cg * KH * KW)
    for ch in range(ch0, ch1):
        s = ch // per_step
        c0 = (ch - s * per_step) * nb
        _gemm_chunk(x, w2, b, out, s * step + c0, min(nb, step - c0), sh, sw, ph, pw, groups, KH, KW, cols, res)


@njit(cache=True, fastmath=False, inline="always")
def _direct_plane(x, w, b, out, bi, o, Og, sh, sw, ph, pw, xpad, acc):
    """One output plane out[bi, o] of a layer with one input channel per group
    (Cg == 1: depthwise and channel multipliers): a weighted sum of KH*KW shifted
    copies of the padded input plane, no im2col. With sw == 1 the rows are 'wide'
    (Wp) so each tap is one long contiguous axpy over the whole plane."""
    H = x.shape[2]
    W = x.shape[3]
    KH = w.shape[2]
    KW = w.shape[3]
    HO = out.shape[2]
    WO = out.shape[3]
    Wp = W + 2 * pw
    Wd = Wp if sw == 1 else WO
    pad_image(x, bi, o // Og, 1, ph, pw, xpad, Wp, 0)     # xpad's border keeps the zeros it was allocated with
    bv = b[o] if b.shape[0] > 0 else np.float32(0.0)
    n_acc = np.uint64(HO * Wd)
    for t in range(n_acc):
        acc[t] = bv
    if sw == 1 and sh == 1:
        # Taps four at a time: one pass over acc per 4 taps instead of per tap
        # (the loop is load/store bound). The additions keep the one-tap-at-a-time
        # order, so the result is bitwise the same as the simple loop.
        T = KH * KW
        u = 0
        while u + 4 <= T:
            s0 = np.uint64((u // KW) * Wp + u % KW)
            s1 = np.uint64(((u + 1) // KW) * Wp + (u + 1) % KW)
            s2 = np.uint64(((u + 2) // KW) * Wp + (u + 2) % KW)
            s3 = np.uint64(((u + 3) // KW) * Wp + (u + 3) % KW)
            w0 = w[o, 0, u // KW, u % KW]
            w1 = w[o, 0, (u + 1) // KW, (u + 1) % KW]
            w2 = w[o, 0, (u + 2) // KW, (u + 2) % KW]
            w3 = w[o, 0, (u + 3) // KW, (u + 3) % KW]
            for t in range(n_acc):
                a = ((acc[t] + w0 * xpad[s0 + t]) + w1 * xpad[s1 + t]) + w2 * xpad[s2 + t]
                acc[t] = a + w3 * xpad[s3 + t]
            u += 4
        while u < T:
            s0 = np.uint64((u // KW) * Wp + u % KW)
            w0 = w[o, 0, u // KW, u % KW]
            for t in range(n_acc):
                acc[t] += w0 * xpad[s0 + t]
            u += 1
    else:
        for kh in range(KH):
            for kw in range(KW):
                wv = w[o, 0, kh, kw]
                for oi in range(HO):
                    d = np.uint64(oi * Wd)
                    s0 = np.uint64((oi * sh + kh) * Wp + kw)
                    if sw == 1:
                        for oj in range(np.uint64(Wd)):
                            acc[d + oj] += wv * xpad[s0 + oj]
                    else:
                        for oj in range(np.uint64(Wd)):
                            acc[d + oj] += wv * xpad[s0 + oj * np.uint64(sw)]
    for oi in range(HO):
        src = acc[oi * Wd:oi * Wd + WO]
        dst = out[bi, o, oi]
        for oj in range(WO):
            dst[oj] = src[oj]


@njit(cache=True, fastmath=False, nogil=True)
def _conv_direct_planes(x, w, b, out, Og, sh, sw, ph, pw, p0, p1):
    """Output planes [p0, p1) (plane p = image p // O, channel p % O) of the direct loops."""
    O = w.shape[0]
    # padded plane (+ KW slack for the wide rows) and one output plane accumulator
    Wp = x.shape[3] + 2 * pw
    Wd = Wp if sw == 1 else out.shape[3]
    xpad = np.zeros((x.shape[2] + 2 * ph) * Wp + w.shape[3], np.float32)
    acc = np.empty(out.shape[2] * Wd, np.float32)
    for p in range(p0, p1):
        bi = p // O
        _direct_plane(x, w, b, out, bi, p - bi * O, Og, sh, sw, ph, pw, xpad, acc)


@njit(cache=True, fastmath=False, nogil=True)
def _conv_direct3x3_planes(x, w, b, out, Og, ph, pw, p0, p1):
    """Output planes [p0, p1) of a 3x3 stride-1 layer with one input channel per group (the T-RevSNN's depthwise
    convs): all nine taps in one pass over the plane's wide rows, in _direct_plane's order (bias, then the taps
    in order), so the same bits. Its own entry point: inlined into _direct_plane's loop behind a branch, the
    same pass ran 1.4x slower (0.55 against 0.38 ms on 64 channels at 16x16, batch 64, one thread)."""
    O = w.shape[0]
    H, W = x.shape[2], x.shape[3]
    HO, WO = out.shape[2], out.shape[3]
    Wp = W + 2 * pw
    n = HO * Wp
    xpad = np.zeros((H + 2 * ph) * Wp + 3, np.float32)    # the border stays zero: only the interior is written
    acc = np.empty(n, np.float32)
    for p in range(p0, p1):
        bi = p // O
        o = p - bi * O
        pad_image(x, bi, o // Og, 1, ph, pw, xpad, Wp, 0)
        bv = b[o] if b.shape[0] > 0 else np.float32(0.0)
        w0, w1, w2 = w[o, 0, 0, 0], w[o, 0, 0, 1], w[o, 0, 0, 2]
        w3, w4, w5 = w[o, 0, 1, 0], w[o, 0, 1, 1], w[o, 0, 1, 2]
        w6, w7, w8 = w[o, 0, 2, 0], w[o, 0, 2, 1], w[o, 0, 2, 2]
        x0 = xpad[0:n + 2]
        x1 = xpad[Wp:Wp + n + 2]
        x2 = xpad[2 * Wp:2 * Wp + n + 2]
        for t in range(n):
            a = (((bv + w0 * x0[t]) + w1 * x0[t + 1]) + w2 * x0[t + 2]) + w3 * x1[t]
            a = (((a + w4 * x1[t + 1]) + w5 * x1[t + 2]) + w6 * x2[t]) + w7 * x2[t + 1]
            acc[t] = a + w8 * x2[t + 2]
        for oi in range(HO):
            row = acc[oi * Wp:oi * Wp + WO]
            dst = out[bi, o, oi]
            for oj in range(WO):
                dst[oj] = row[oj]


def _out_hw(x, KH, KW, sh, sw, ph, pw):
    return (x.shape[2] + 2 * ph - KH) // sh + 1, (x.shape[3] + 2 * pw - KW) // sw + 1


def conv2d_dense(x, w, b, sh, sw, ph, pw, groups, batch=None, split_above=None, own_gemm=False):
    """Dense conv2d; out[B, O, HO, WO] = torch.nn.functional.conv2d(x, w, b, (sh, sw), (ph, pw), 1, groups).
    The path (direct loops or sgemm, split between threads or not) is chosen here, in Python, so that a
    process compiles (or loads) only the compiled functions its layers use. ``batch``: the images of one
    timestep when x holds several timesteps side by side; the sgemm path then groups images exactly as for
    one timestep alone (how many share an sgemm changes the rounding). ``split_above``: multiply-adds above
    which the sgemm path splits its images between threads (default _GEMM_PAR_MIN_WORK, the inference rule;
    training passes its own). One-group layers take the register tiles where they compile
    (kernels/conv_tiled.py), whose sums run in an order fixed by the layer's shape. ``own_gemm``: grouped
    stride-1 convs multiply with kernels/gemm.py's sgemm instead of OpenBLAS's (training)."""
    B = x.shape[0]
    step = B if batch is None else batch
    O, Cg, KH, KW = w.shape
    HO, WO = _out_hw(x, KH, KW, sh, sw, ph, pw)
    out = np.empty((B, O, HO, WO), np.float32)
    work = B * O * HO * WO * Cg * KH * KW
    if Cg == 1:
        if KH == 3 and KW == 3 and sh == 1 and sw == 1:
            fn, args = _conv_direct3x3_planes, (x, w, b, out, O // groups, ph, pw)
        else:
            fn, args = _conv_direct_planes, (x, w, b, out, O // groups, sh, sw, ph, pw)
        if work >= _PAR_MIN_WORK:
            split(fn, B * O, *args)
        else:
            fn(*args, 0, B * O)
        return out
    if groups == 1 and packed.USE:
        return conv2d_tiled(x, w, b, out, sh, sw, ph, pw, _GEMM_PAR_MIN_WORK if split_above is None else split_above)
    pointwise = KH == 1 and KW == 1 and ph == 0 and pw == 0
    if sh == 1 and sw == 1 and not pointwise:
        nb, rows = wide_plan(step, Cg * KH * KW, HO, x.shape[3] + 2 * pw)
        fn = _conv_wide_chunks_own if own_gemm else _conv_wide_chunks
        args = (x, w, b, out, ph, pw, groups, step, nb, rows)
    else:
        nb = _images_per_chunk(step, Cg * KH * KW, HO * WO)
        fn, args = _conv_gemm_chunks, (x, w, b, out, sh, sw, ph, pw, groups, step)
    nch = (B // step) * -(-step // nb)
    if nch >= 2 and work >= (_GEMM_PAR_MIN_WORK if split_above is None else split_above):
        split(fn, nch, *args)
    else:
        fn(*args, 0, nch)
    return out
