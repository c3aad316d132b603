"""Training kernels of the convolutions: the forward (dense or event form by the engine's rule) and the weight
and input gradients."""

from __future__ import annotations

import numpy as np
from numba import njit

from ...kernels import gemm as packed
from ...kernels.blas import sgemm
from ...kernels.conv import conv2d_dense, conv_out_size, im2col, im2col_wide
from ...kernels.conv_event import conv2d_event, prepare_conv_event, tap_table
from ...kernels.layout import pad_image
from ...kernels.simd import transpose8
from ...kernels.threads import split


_COLS_MAX_ELEMS = 1 << 21     # im2col / column-gradient buffer bound (8 MiB of float32)
_WIDE_COLS_MAX_ELEMS = 1 << 18   # the same bound for the wide columns of stride-1 layers (1 MiB: measured best)


@njit(cache=True, fastmath=False)
def _valid_range(W, WO, kw, sw, pw):
    """Output columns oj whose input column oj*sw - pw + kw lies inside [0, W)."""
    j0 = min(WO, max(0, (pw - kw + sw - 1) // sw))
    j1 = max(j0, min(WO, (W - 1 + pw - kw) // sw + 1))
    return j0, j1


@njit(cache=True, fastmath=False)
def _col2im_add(cols, gxb, c0, Cg, KH, KW, sh, sw, ph, pw, HO, WO, n0):
    H = gxb.shape[1]
    W = gxb.shape[2]
    for c in range(Cg):
        gc = gxb[c0 + c]
        for kh in range(KH):
            for kw in range(KW):
                row = cols[(c * KH + kh) * KW + kw]
                j0, j1 = _valid_range(W, WO, kw, sw, pw)
                off = kw - pw
                for oi in range(HO):
                    i = oi * sh - ph + kh
                    if i < 0 or i >= H:
                        continue
                    if j1 <= j0:
                        continue
                    # slices indexed from 0: an index from a run-time start keeps Numba's negative-index check
                    # in the loop
                    src = row[n0 + oi * WO + j0:n0 + oi * WO + j1]
                    dst = gc[i, j0 * sw + off:(j1 - 1) * sw + off + 1:sw]
                    for k in range(j1 - j0):
                        dst[k] += src[k]


@njit(cache=True, fastmath=False, nogil=True)
def _conv_bwd_parts(x, gy, wts, KH, KW, sh, sw, ph, pw, groups, need_gw, cols_gx, wide, nb, nparts, own, gw_parts, gx,
                    p0, p1):
    """Parts [p0, p1) of the batch (part p: image chunks [p * nch // nparts, (p+1) * nch // nparts)), the
    weight gradient of part p accumulated in gw_parts[p]. The parts are fixed, whatever the thread count,
    so the float32 sums are too. Per chunk of images: the forward's im2col ([K, n*HW], contiguous row
    copies; with ``wide`` (stride 1) the wide rows of kernels.conv.im2col_wide, gy's extra columns zero), gy
    gathered to [Og, n*HW], gw[g] += gy @ cols^T in one sgemm; with ``cols_gx`` the input gradient as columns
    (sgemm; with ``own`` kernels/gemm.py's) scattered back per image (strided convolutions; stride 1 takes a
    convolution instead). Without ``need_gw`` (the weight gradient taken from events) only the input gradient's
    columns. Single-threaded sgemm inside, so that parts run side by side (threads.split)."""
    N = x.shape[0]
    Cg = x.shape[1] // groups
    O = gy.shape[1]
    HO = gy.shape[2]
    WO = gy.shape[3]
    Wp = x.shape[3] + 2 * pw if wide else WO
    P = (x.shape[2] + 2 * ph) * Wp
    HW = HO * Wp                       # columns per image
    Og = O // groups
    K = Cg * KH * KW
    nch = (N + nb - 1) // nb
    cbuf = np.empty(K * nb * HW if need_gw else 0, np.float32)
    gbuf = np.zeros(Og * nb * HW, np.float32)     # zero: a wide row's extra columns stay zero
    dbuf = np.empty(K * nb * HW if cols_gx else 0, np.float32)
    xpad = np.zeros(Cg * P + KW if wide else 0, np.float32)
    for part in range(p0, p1):
        gw = gw_parts[part].reshape(gw_parts[part].size)
        for ch in range(part * nch // nparts, (part + 1) * nch // nparts):
            b0 = ch * nb
            n = min(nb, N - b0)
            ncols = n * HW
            gv = gbuf[:Og * ncols].reshape(Og, ncols)
            for g in range(groups):
                for q in range(n):
                    src = gy[b0 + q]
                    if wide:
                        pad_image(x, b0 + q, g * Cg, Cg, ph, pw, xpad, Wp, P)
                        im2col_wide(xpad, Cg, KH, KW, Wp, P, 0, HO, cbuf, ncols, q * HW)
                        for o in range(Og):
                            for oi in range(HO):
                                gv[o, q * HW + oi * Wp:q * HW + oi * Wp + WO] = src[g * Og + o, oi]
                    else:
                        if need_gw:
                            im2col(x, b0 + q, g * Cg, Cg, KH, KW, sh, sw, ph, pw, 0, HO, WO, cbuf, ncols, q * HW)
                        for o in range(Og):
                            gv[o, q * HW:(q + 1) * HW] = src[g * Og + o].reshape(HW)
                # gw[g] += gv @ cols^T, accumulated by sgemm itself (beta = 1)
                if need_gw:
                    sgemm(Og, K, ncols, gbuf, cbuf, True, 1.0, gw[g * Og * K:])
                if cols_gx:
                    dcols = dbuf[:K * ncols].reshape(K, ncols)
                    if own:
                        packed.gemm(K, ncols, Og, wts[g].reshape(K * Og), gbuf, 0, dbuf)
                    else:
                        sgemm(K, ncols, Og, wts[g].reshape(K * Og), gbuf, False, 0.0, dbuf)
                    for q in range(n):
                        _col2im_add(dcols, gx[b0 + q], g * Cg, Cg, KH, KW, sh, sw, ph, pw, HO, WO, q * HW)


# Multiply-adds of a training conv (forward, weight gradient, input gradient) above which its images are split
# between threads. Lower than inference's rule (kernels/conv.py, several milliseconds of work, for a busy
# machine): a training step is tens of milliseconds of such layers; on the conv net (batch 32, T=4, its 115M-MAC
# conv below inference's bound) a split measured no slower under a load average of 5.5, and the SEW-ResNet's
# 1x1 stride-2 shortcut convs (batch 32, T=4, 17M multiply-adds) ran 0.6-0.8 ms forward and 2.3 ms backward on
# one thread.
TRAIN_SPLIT_MIN_WORK = 1 << 23
# Outputs of a training forward's event conv above which its images are split: the SEW-ResNet's convs at batch 32,
# T=4 (0.5-2M outputs, about 1 ms each) ran unsplit at 2^22; split, its training step took 5 % less (96-99 against
# 102-105 ms, alternating runs, idle machine, 2026-11-28).
TRAIN_EVENT_SPLIT_MIN_OUT = 1 << 19


@njit(cache=True, fastmath=False)
def _channels_last(src, O, HW, dst):
    """dst[q * O + o] = src[o * HW + q]: 8 x 8 register transposes (simd.transpose8), the edges one by one."""
    O8, HW8 = O - O % 8, HW - HW % 8
    for o0 in range(0, O8, 8):
        for q0 in range(0, HW8, 8):
            transpose8(src, o0 * HW + q0, HW, dst, q0 * O + o0, O)
    for o in range(O):
        lo = HW8 if o < O8 else 0
        for q in range(lo, HW):
            dst[q * O + o] = src[o * HW + q]


@njit(cache=True, fastmath=False, nogil=True)
def _gw_event_parts(x, gy, KH, KW, groups, nparts, rn, rk, ro, cn, ck, co, gwt_parts, p0, p1):
    """Weight gradient from the input's events, parts [p0, p1) of the batch (part p: images
    [p*N//nparts, (p+1)*N//nparts)) into gwt_parts[p] [C, KH, KW, Og]: every nonzero input x[n, c, i, j] adds
    x * gy[n, g*Og:(g+1)*Og, oi, oj] to gwt[c, kh, kw] for each tap (kh, kw) that carries it to an output
    (oi, oj), found in the tap tables of rows (rn, rk, ro) and columns (cn, ck, co) (kernels.conv_event.tap_table:
    no division per event): Og contiguous adds, gy read channels-last (one transposed copy per image). Work ~
    events x taps x Og instead of the dense form's inputs x taps x Og; the order of the additions is fixed (images,
    then channels, rows, columns, taps), whatever the threads."""
    N, C, H, W = x.shape
    O, HO, WO = gy.shape[1], gy.shape[2], gy.shape[3]
    Cg = C // groups
    Og = O // groups
    HWO = HO * WO
    gyt = np.empty(HWO * O, np.float32)
    uOg = np.uint64(Og)
    for part in range(p0, p1):
        accf = gwt_parts[part].reshape(gwt_parts[part].size)
        for n in range(part * N // nparts, (part + 1) * N // nparts):
            _channels_last(gy[n].reshape(O * HWO), O, HWO, gyt)
            for c in range(C):
                go = (c // Cg) * Og
                xc = x[n, c]
                for i in range(H):
                    nr = rn[i]
                    if nr == 0:
                        continue
                    xr = xc[i]
                    for j in range(W):
                        v = xr[j]
                        if v == 0:
                            continue
                        vf = np.float32(v)
                        for a in range(nr):
                            rowa = (c * KH + rk[i, a]) * KW
                            rows = ro[i, a] * WO
                            for b in range(cn[j]):
                                # unsigned indices: no negative-index check in the Og-wide add
                                a0 = np.uint64((rowa + ck[j, b]) * Og)
                                s0 = np.uint64((rows + co[j, b]) * O + go)
                                for k in range(uOg):
                                    accf[a0 + k] += vf * gyt[s0 + k]


def _gw_by_events(x, gy, KH, KW, sh, sw, ph, pw, groups):
    """The weight gradient [O, C/groups, KH, KW] from the input's events (_gw_event_parts), in two fixed parts
    of the batch when it is large (threads.split), summed at the end."""
    N, C, H, W = x.shape
    O = gy.shape[1]
    Og = O // groups
    nparts = 2 if N >= 2 and gy.size * KH * KW >= TRAIN_SPLIT_MIN_WORK // 16 else 1
    parts = np.zeros((nparts, C, KH, KW, Og), np.float32)
    rows, cols = tap_table(H, gy.shape[2], KH, sh, ph), tap_table(W, gy.shape[3], KW, sw, pw)
    split(_gw_event_parts, nparts, x, np.ascontiguousarray(gy, np.float32), KH, KW, groups, nparts, *rows, *cols,
          parts)
    gwt = parts[0] if nparts == 1 else parts[0] + parts[1]
    # [C, KH, KW, Og] -> [O, C/groups, KH, KW]
    Cg = C // groups
    return np.ascontiguousarray(gwt.reshape(groups, Cg, KH, KW, Og).transpose(0, 4, 1, 2, 3).reshape(O, Cg, KH, KW))


def events_cheaper(x, out_shape, kernel, stride, groups, events=None, limit=None) -> bool:
    """True when a conv's input has few enough nonzeros that its event form (forward scatter, or the weight
    gradient by events) costs less than the dense one: the engine's kernel-form rule (kernels/cost.py) on the
    actual count (``events``, when the caller counted it already); ``limit``: another price rule with
    event_limit_conv's arguments (the weight gradient's, ``gw_event_limit``). Layers with fewer than 8 output
    channels per group stay dense (short runs)."""
    from ...kernels.cost import event_limit_conv

    if out_shape[0] // groups < 8:
        return False
    if events is None:
        events = np.count_nonzero(x)
    return events < (limit or event_limit_conv)(x.shape[0], x.shape[1:], out_shape, kernel, stride, groups)


# The weight gradient's two forms on the training threads: least-squares prices printed by
# `python benchmarks/train_conv_forms.py` (run of 2026-11-28 04:56 UTC on the SEW-ResNet's shapes at batch 128, idle
# machine; they reproduce the measured crossover densities of that run, and of the committed one,
# benchmarks/results/train_conv_forms.csv at 05:27 UTC after a faster channels-last copy, within 0.03; ns of wall
# time): dense im2col + sgemm per multiply-add; from events, per output-gradient element (its
# channels-last copy), per input event and tap checked, and per multiply-add of the Og-wide add of each tap that
# reaches an output.
GW_DENSE_NS = 0.0146           # per multiply-add, stride 1
GW_DENSE_STRIDED_NS = 0.0202   # per multiply-add, strided (im2col straight from the input)
GW_GY_NS = 0.629               # per output-gradient element
GW_TAP_NS = 0.763              # per event and tap checked
GW_ADD_NS = 0.0272             # per multiply-add of an event


def gw_event_limit(N, in_shape, gy_shape, kernel, stride, groups=1) -> float:
    """Number of nonzero inputs below which the weight gradient from events is cheaper than the dense one. The
    fit above is of convs without groups; a grouped conv keeps the inference rule (event_limit_conv)."""
    if groups != 1:
        from ...kernels.cost import event_limit_conv

        return event_limit_conv(N, in_shape, gy_shape, kernel, stride, groups)
    C, H, W = in_shape
    O, HO, WO = gy_shape
    taps = kernel[0] * kernel[1]
    dense = N * O * HO * WO * C * taps * (GW_DENSE_NS if stride == (1, 1) else GW_DENSE_STRIDED_NS)
    per_event = taps * GW_TAP_NS + taps / (stride[0] * stride[1]) * O * GW_ADD_NS
    return (dense - N * O * HO * WO * GW_GY_NS) / per_event


def conv2d_train_forward(x, w, b, sh, sw, ph, pw, groups, events=None):
    """A conv in a training forward: the engine's event kernel when the input has few nonzeros
    (events_cheaper: the kernel-form rule of inference), else its dense kernel; images split between threads
    by training's rule (TRAIN_SPLIT_MIN_WORK multiply-adds, or TRAIN_EVENT_SPLIT_MIN_OUT outputs for events)."""
    O, Cg, KH, KW = w.shape
    out_shape = (O, conv_out_size(x.shape[2], KH, sh, ph), conv_out_size(x.shape[3], KW, sw, pw))
    if events_cheaper(x, out_shape, (KH, KW), (sh, sw), groups, events):
        return conv2d_event(x, prepare_conv_event(w, groups), b, O, KH, KW, sh, sw, ph, pw, groups,
                            split_above=TRAIN_EVENT_SPLIT_MIN_OUT)
    return conv2d_dense(x, w, b, sh, sw, ph, pw, groups, split_above=TRAIN_SPLIT_MIN_WORK, own_gemm=packed.USE)


def _transposed_weights(w, groups):
    """w [O, C/g, KH, KW] -> [C, O/g, KH, KW] with the kernel flipped: the weights of the convolution that
    maps the output gradient of a stride-1 convolution to its input gradient."""
    O, Cg, KH, KW = w.shape
    Og = O // groups
    wt = w.reshape(groups, Og, Cg, KH, KW).transpose(0, 2, 1, 3, 4)[:, :, :, ::-1, ::-1]
    return np.ascontiguousarray(wt.reshape(groups * Cg, Og, KH, KW), np.float32)


def conv2d_backward(x, w, gy, sh, sw, ph, pw, groups, need_gx, events=None):
    """Gradients of out = conv2d(x, w) (no bias; its gradient is gy summed over batch and space).

    x [N, C, H, W] (float32 or uint8 spikes), w [O, C/groups, KH, KW], gy [N, O, HO, WO].
    Returns (gw [O, C/groups, KH, KW], gx [N, C, H, W] or an empty array when not ``need_gx``).
    Weight gradient: from the input's events when they are few (gw_event_limit, _gw_by_events), else per
    chunk of images, im2col and one sgemm; large layers split the batch into two fixed parts (threads.split),
    each with its own sum, added at the end, so sums run in a fixed order.
    Input gradient: for stride 1, the convolution of gy with the flipped, transposed kernel (padding
    K - 1 - p), run by the inference kernel: it writes [C, H, W] per image instead of scattering a
    [C*KH*KW, HO*WO] column matrix back (5-10x the memory traffic); strided layers scatter columns.
    """
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    HW = gy.shape[2] * gy.shape[3]
    Og = O // groups
    K = Cg * KH * KW
    by_conv = need_gx and sh == 1 and sw == 1 and ph <= KH - 1 and pw <= KW - 1
    cols_gx = need_gx and not by_conv
    w32 = np.ascontiguousarray(w, np.float32)
    gx = np.zeros((N, C, H, W) if cols_gx else (0, C, H, W), np.float32)
    by_events = events_cheaper(x, gy.shape[1:], (KH, KW), (sh, sw), groups, events, gw_event_limit)
    gw = _gw_by_events(x, gy, KH, KW, sh, sw, ph, pw, groups) if by_events else None
    if not by_events or cols_gx:
        wts = np.ascontiguousarray(w32.reshape(groups, Og, K).transpose(0, 2, 1))
        wide = sh == 1 and sw == 1
        cols = K * gy.shape[2] * (W + 2 * pw) if wide else K * HW      # im2col elements per image
        nb = max(1, min(N, (_WIDE_COLS_MAX_ELEMS if wide else _COLS_MAX_ELEMS) // max(1, cols)))
        nch = -(-N // nb)
        passes = (0 if by_events else 1) + (1 if cols_gx else 0)
        nparts = 2 if N >= 2 and N * O * HW * K * passes >= TRAIN_SPLIT_MIN_WORK else 1
        if nparts == 2:
            # an even number of equal chunks, so that both parts have the same work (128 images in chunks of
            # at most 113 were one part of 113 and one of 15)
            nch = max(2, nch + nch % 2)
            nb = -(-N // nch)
            nch = -(-N // nb)
        gw_parts = np.zeros((nparts, O, K) if not by_events else (nparts, 0, 0), np.float32)
        split(_conv_bwd_parts, nparts, x, gy, wts, KH, KW, sh, sw, ph, pw, groups, not by_events, cols_gx, wide, nb,
              nparts, packed.USE, gw_parts, gx)
        if not by_events:
            gw = (gw_parts[0] if nparts == 1 else gw_parts[0] + gw_parts[1]).reshape(O, Cg, KH, KW)
    if by_conv:
        gx = conv2d_dense(np.ascontiguousarray(gy, np.float32), _transposed_weights(w32, groups),
                          np.zeros(C, np.float32), 1, 1, KH - 1 - ph, KW - 1 - pw, groups,
                          split_above=TRAIN_SPLIT_MIN_WORK, own_gemm=packed.USE)
    return gw, gx
