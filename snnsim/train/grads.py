"""Numba kernels for training: multi-step neuron forward (the engine's ``neuron_step``), and the backward pass
of every layer kind the engine runs.

Conventions: float32, C-contiguous, batch-first, PyTorch layouts (as ``snnsim.kernels``). Activations stored
for the backward pass may be ``uint8`` when they are binary spikes (4x less memory); the kernels read either.
Every reduction has a fixed order that does not depend on the thread count, so a training run is reproducible
bit for bit (the resume test relies on it).

Neuron backward (SpikingJelly 2.0 ``_ops/lif/cpu.py::_backward_impl``; plif and if alike), per element, t = T-1..0:

    sg   = surrogate'(H[t] - v_threshold)
    soft reset:  rg = 1                       (detach_reset)   or 1 - v_threshold * sg
    hard reset:  rg = 1 - S[t]                (detach_reset)   or 1 - S[t] + (v_reset - H[t]) * sg
    gH   = gS[t] * sg + carry * rg            (li: gH = gOut[t] + carry; no spike, no reset)
    delayed subtract reset (the state is H; H[t+1] = charge(H[t]) - v_threshold * S[t]):
         gH = gS[t] * sg + carry               (detach_reset)   or ... - v_threshold * sg * gH[t+1]
    lif: gX[t] = gH / tau (decay_input) or gH;   carry = gH - gH / tau
    plif: the same with * q (q = sigmoid(w)), and gq += gH * (X[t] - (V[t-1] - v_r)) or -(V[t-1] - v_r)
    if:  gX[t] = gH;  carry = gH
    stateless layers: carry = 0 (the state is re-initialised before every step)
    threshold (Quant): gX[t] = gOut[t] * [lo <= X[t] <= hi] (straight-through; 1 without a clip)
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

# Start Numba's thread pool now. Plain dispatchers here call parallel=True helpers; when they are loaded
# from the on-disk cache in a fresh process, nothing else starts the pool and the first call segfaults
# (numba 0.68). get_num_threads() launches the pool as a side effect and is public API. (Inference does not
# need it: its kernels split work with kernels/threads.py.)
numba.get_num_threads()

from ..kernels.blas import sgemm  # noqa: E402
from ..kernels.conv import (conv2d_dense, conv2d_event, conv_out_size, im2col, im2col_wide,  # noqa: E402
                            pad_image, prepare_conv_event)
from ..kernels.threads import split  # noqa: E402
from ..neurons import neuron_step  # noqa: E402
from .surrogate import sigmoid_grad_row, surrogate_grad, surrogate_primitive  # noqa: E402

# Elements per parallel chunk of the element-wise neuron loops (fixed, so results do not depend on threads).
_CHUNK = 1 << 14
# Work (elements x steps) below which loops run serially: a parallel region costs ~10-20 us (and much more on
# a loaded machine), which small layers never repay.
_PAR_MIN_WORK = 1 << 17


# ----------------------------------------------------------------------------- neurons
@njit(cache=True, fastmath=False)
def _neuron_fwd_chunk(x, static, mode, factor, decay_input, v_r, threshold, hard, delay, gt, clip, lo, hi, stateless,
                      v, out, h, a, b):
    T = out.shape[0]
    vc = v[a:b]
    n = 0
    for t in range(T):
        xt = x[0, a:b] if static else x[t, a:b]
        if stateless:
            vc[:] = v_r
        n += neuron_step(xt, vc, mode, factor, decay_input, v_r, threshold, hard, delay, gt, clip, lo, hi,
                         out[t, a:b], vc, h[t, a:b])
    return n


@njit(cache=True, fastmath=False, parallel=True)
def _neuron_fwd_par(x, static, mode, factor, decay_input, v_r, threshold, hard, delay, gt, clip, lo, hi, stateless,
                    v, out, h):
    M = out.shape[1]
    nchunks = (M + _CHUNK - 1) // _CHUNK
    counts = np.zeros(nchunks, np.int64)
    for c in prange(nchunks):
        counts[c] = _neuron_fwd_chunk(x, static, mode, factor, decay_input, v_r, threshold, hard, delay, gt, clip, lo, hi,
                                      stateless, v, out, h, c * _CHUNK, min(M, (c + 1) * _CHUNK))
    return counts.sum()


@njit(cache=True, fastmath=False)
def neuron_forward_seq(x, static, mode, factor, decay_input, v_r, threshold, hard, delay, gt, clip, lo, hi, stateless,
                       v, out, h):
    """Run T steps of one neuron layer: x [T, M] (or [1, M] when ``static``: the same input every step),
    state v [M] updated in place, spikes (or H for 'li') into out [T, M], charged membrane into h [T, M].
    Each chunk of neurons calls the engine's ``neuron_step``, so spikes equal inference bit for bit.
    Returns the number of spikes."""
    if out.size >= _PAR_MIN_WORK and out.shape[1] > _CHUNK:
        return _neuron_fwd_par(x, static, mode, factor, decay_input, v_r, threshold, hard, delay, gt, clip, lo, hi,
                               stateless, v, out, h)
    return _neuron_fwd_chunk(x, static, mode, factor, decay_input, v_r, threshold, hard, delay, gt, clip, lo, hi,
                             stateless, v, out, h, 0, out.shape[1])


@njit(cache=True, fastmath=False)
def _surrogate_row(hr, threshold, sid, alpha, sg, bits):
    """sg[j] = surrogate'(hr[j] - threshold) for a row slice: one branch-free loop per surrogate (the sigmoid's
    exp in vectorisable arithmetic, surrogate.sigmoid_grad_row)."""
    if sid == 0:
        sigmoid_grad_row(hr, threshold, alpha, sg, bits)
    elif sid == 1:
        for j in range(hr.shape[0]):
            sg[j] = surrogate_grad(hr[j] - threshold, 1, alpha)
    else:
        for j in range(hr.shape[0]):
            sg[j] = surrogate_grad(hr[j] - threshold, 2, alpha)


@njit(cache=True, fastmath=False)
def _spike_row(hr, threshold, gt, sid, alpha, smooth, sv):
    """sv[j] = S[t] (the step), or its smooth primitive when ``smooth`` (finite-difference tests)."""
    one = np.float32(1.0)
    zero = np.float32(0.0)
    if smooth:
        for j in range(hr.shape[0]):
            sv[j] = np.float32(surrogate_primitive(np.float64(hr[j] - threshold), sid, alpha))
    elif gt:
        for j in range(hr.shape[0]):
            sv[j] = one if hr[j] > threshold else zero
    else:
        for j in range(hr.shape[0]):
            sv[j] = one if hr[j] >= threshold else zero


@njit(cache=True, fastmath=False)
def _neuron_bwd_chunk(gs, h, x, x_static, mode, factor, decay_input, v_r, threshold, hard, delay, gt, clip, lo, hi,
                      stateless, sid, alpha, detach, smooth, gx, a, b):
    """Neurons [a, b) of ``neuron_backward_seq``, timestep by timestep (t outer, contiguous rows). Each row
    goes through a few loops over row slices, each with its branches decided outside it (surrogate, reset,
    neuron kind), so that each runs branch-free and vectorises (indexing a slice from 0 leaves no negative-index
    check in the loop): one loop with every case inside ran about 3x slower."""
    T = h.shape[0]
    one = np.float32(1.0)
    zero = np.float32(0.0)
    n = b - a
    gx_static = gx.shape[0] == 1 and T > 1
    if gx_static:
        gx[0, a:b] = 0.0
    carry = np.zeros(n, np.float32)
    gnext = np.zeros(n, np.float32)     # gH[t+1] (a delayed reset's own path from H[t] to H[t+1])
    sg = np.empty(n, np.float32)
    sv = np.empty(n, np.float32)
    gh = np.empty(n, np.float32)
    bits = np.empty(n, np.int32)
    gq = 0.0
    for t in range(T - 1, -1, -1):
        hr = h[t, a:b]
        gr = gs[t, a:b]
        gxr = gx[0, a:b] if gx_static else gx[t, a:b]
        if mode == 4:                       # threshold / Quant: straight-through, stateless
            xr = x[0, a:b] if x_static else x[t, a:b]
            for j in range(n):
                gxv = gr[j]
                if clip and (xr[j] < lo or xr[j] > hi):
                    gxv = zero
                if gx_static:
                    gxr[j] += gxv
                else:
                    gxr[j] = gxv
            continue
        if stateless:
            carry[:] = 0.0
        # gH[t]
        if mode == 3:                       # li: output = H = new state
            for j in range(n):
                gh[j] = gr[j] + carry[j]
        else:
            _surrogate_row(hr, threshold, sid, alpha, sg, bits)
            if delay:
                if detach:
                    for j in range(n):
                        gh[j] = gr[j] * sg[j] + carry[j]
                else:
                    for j in range(n):
                        gh[j] = gr[j] * sg[j] + carry[j] - threshold * sg[j] * gnext[j]
                gnext[:] = gh
            elif hard:
                _spike_row(hr, threshold, gt, sid, alpha, smooth, sv)
                if detach:
                    for j in range(n):
                        gh[j] = gr[j] * sg[j] + carry[j] * (one - sv[j])
                else:
                    for j in range(n):
                        gh[j] = gr[j] * sg[j] + carry[j] * ((one - sv[j]) + (v_r - hr[j]) * sg[j])
            elif detach:
                for j in range(n):
                    gh[j] = gr[j] * sg[j] + carry[j] * one
            else:
                for j in range(n):
                    gh[j] = gr[j] * sg[j] + carry[j] * (one - threshold * sg[j])
        # gX[t] and the carry to t-1
        if mode == 0:
            carry[:] = gh
        elif mode == 2:
            for j in range(n):
                carry[j] = gh[j] - gh[j] * factor
            xr = x[0, a:b] if x_static else x[t, a:b]
            hp = h[t - 1, a:b] if t > 0 else hr
            for j in range(n):
                # V[t-1]: the initial state, or the reset of H[t-1]
                if t == 0 or stateless:
                    vp = v_r
                elif delay:
                    vp = hp[j]
                else:
                    if smooth:
                        sp = np.float32(surrogate_primitive(np.float64(hp[j] - threshold), sid, alpha))
                    else:
                        fp = hp[j] > threshold if gt else hp[j] >= threshold
                        sp = one if fp else zero
                    vp = sp * v_r + (one - sp) * hp[j] if hard else hp[j] - sp * threshold
                if decay_input:
                    gq += gh[j] * (xr[j] - (vp - v_r))
                else:
                    gq += gh[j] * (-(vp - v_r))
            if decay_input:
                for j in range(n):
                    gh[j] = gh[j] * factor
        else:
            for j in range(n):
                carry[j] = gh[j] - gh[j] / factor
            if decay_input:
                for j in range(n):
                    gh[j] = gh[j] / factor
        if gx_static:
            for j in range(n):
                gxr[j] += gh[j]
        else:
            gxr[:] = gh
    return gq


@njit(cache=True, fastmath=False, parallel=True)
def _neuron_bwd_par(gs, h, x, x_static, mode, factor, decay_input, v_r, threshold, hard, delay, gt, clip, lo, hi,
                    stateless, sid, alpha, detach, smooth, gx):
    M = h.shape[1]
    nchunks = (M + _CHUNK - 1) // _CHUNK
    part = np.zeros(nchunks, np.float64)
    for c in prange(nchunks):
        part[c] = _neuron_bwd_chunk(gs, h, x, x_static, mode, factor, decay_input, v_r, threshold, hard, delay, gt, clip,
                                    lo, hi, stateless, sid, alpha, detach, smooth, gx, c * _CHUNK,
                                    min(M, (c + 1) * _CHUNK))
    return part


@njit(cache=True, fastmath=False)
def neuron_backward_seq(gs, h, x, x_static, mode, factor, decay_input, v_r, threshold, hard, delay, gt, clip, lo, hi,
                        stateless, sid, alpha, detach, smooth, gx):
    """Backward through T steps of one neuron layer.

    gs [T, M]: gradient of the layer output; h [T, M]: stored charged membrane; x: stored input ([T, M] or
    [1, M] when ``x_static``; only read by plif and clipped threshold layers, else may be empty [1, 0]).
    gx: gradient of the input, [T, M], or [1, M] accumulated over T when the input was static.
    ``smooth`` (finite-difference tests only) uses S = surrogate primitive in the reset instead of the step.
    Returns d loss / d q summed over neurons (plif; q = sigmoid(w)), else 0; the partial sums per chunk of
    neurons are added in a fixed order.
    """
    M = h.shape[1]
    if h.size >= _PAR_MIN_WORK and M > _CHUNK:
        part = _neuron_bwd_par(gs, h, x, x_static, mode, factor, decay_input, v_r, threshold, hard, delay, gt, clip, lo,
                               hi, stateless, sid, alpha, detach, smooth, gx)
    else:
        nchunks = (M + _CHUNK - 1) // _CHUNK
        part = np.zeros(nchunks, np.float64)
        for c in range(nchunks):
            part[c] = _neuron_bwd_chunk(gs, h, x, x_static, mode, factor, decay_input, v_r, threshold, hard, delay, gt,
                                        clip, lo, hi, stateless, sid, alpha, detach, smooth, gx, c * _CHUNK,
                                        min(M, (c + 1) * _CHUNK))
    total = 0.0
    for c in range(part.shape[0]):
        total += part[c]
    return total


# ----------------------------------------------------------------------------- convolution
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
                    base = n0 + oi * WO
                    gr = gc[i]
                    if sw == 1:
                        for oj in range(j0, j1):
                            gr[oj + off] += row[base + oj]
                    else:
                        for oj in range(j0, j1):
                            gr[oj * sw + off] += row[base + oj]


@njit(cache=True, fastmath=False, nogil=True)
def _conv_bwd_parts(x, gy, wts, KH, KW, sh, sw, ph, pw, groups, need_gw, cols_gx, wide, nb, nparts, gw_parts, gx, p0,
                    p1):
    """Parts [p0, p1) of the batch (part p: image chunks [p * nch // nparts, (p+1) * nch // nparts)), the
    weight gradient of part p accumulated in gw_parts[p]. The parts are fixed, whatever the thread count,
    so the float32 sums are too. Per chunk of images: the forward's im2col ([K, n*HW], contiguous row
    copies; with ``wide`` (stride 1) the wide rows of kernels.conv.im2col_wide, gy's extra columns zero), gy
    gathered to [Og, n*HW], gw[g] += gy @ cols^T in one sgemm; with ``cols_gx`` the input gradient as columns
    (sgemm) scattered back per image (strided convolutions; stride 1 takes a convolution instead). Without
    ``need_gw`` (the weight gradient taken from events) only the input gradient's columns. Single-threaded
    sgemm (snnsim.kernels.blas) inside, so that parts run side by side (threads.split)."""
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
                    sgemm(K, ncols, Og, wts[g].reshape(K * Og), gbuf, False, 0.0, dbuf)
                    for q in range(n):
                        _col2im_add(dcols, gx[b0 + q], g * Cg, Cg, KH, KW, sh, sw, ph, pw, HO, WO, q * HW)


# Multiply-adds of a training conv (forward, weight gradient, input gradient) above which its images are split
# between threads. Lower than inference's rule (kernels/conv.py, several milliseconds of work, for a busy
# machine): a training step is tens of milliseconds of such layers, and on the conv net (batch 32, T=4, its
# 115M-MAC conv below inference's bound) a split measured no slower under a load average of 5.5.
TRAIN_SPLIT_MIN_WORK = 1 << 25


@njit(cache=True, fastmath=False, nogil=True)
def _gw_event_parts(x, gy, KH, KW, sh, sw, ph, pw, groups, nparts, gwt_parts, p0, p1):
    """Weight gradient from the input's events, parts [p0, p1) of the batch (part p: images
    [p*N//nparts, (p+1)*N//nparts)) into gwt_parts[p] [C, KH, KW, Og]: every nonzero input x[n, c, i, j] adds
    x * gy[n, g*Og:(g+1)*Og, oi, oj] to gwt[c, kh, kw] for each tap (kh, kw) that carries it to an output
    (oi, oj): Og contiguous adds, gy read channels-last (one transposed copy per image). Work ~ events x taps x
    Og instead of the dense form's inputs x taps x Og; the order of the additions is fixed (images, then
    channels, rows, columns, taps), whatever the threads."""
    N, C, H, W = x.shape
    O, HO, WO = gy.shape[1], gy.shape[2], gy.shape[3]
    Cg = C // groups
    Og = O // groups
    gyt = np.empty(HO * WO * O, np.float32)
    uOg = np.uint64(Og)
    for part in range(p0, p1):
        accf = gwt_parts[part].reshape(gwt_parts[part].size)
        for n in range(part * N // nparts, (part + 1) * N // nparts):
            for o in range(O):
                src = gy[n, o].reshape(HO * WO)
                for q in range(HO * WO):
                    gyt[np.uint64(q * O + o)] = src[q]
            for c in range(C):
                go = (c // Cg) * Og
                xc = x[n, c]
                for i in range(H):
                    xr = xc[i]
                    for j in range(W):
                        v = xr[j]
                        if v == 0:
                            continue
                        vf = np.float32(v)
                        for kh in range(KH):
                            ti = i + ph - kh
                            if ti < 0 or ti % sh != 0 or ti // sh >= HO:
                                continue
                            for kw in range(KW):
                                tj = j + pw - kw
                                if tj < 0 or tj % sw != 0 or tj // sw >= WO:
                                    continue
                                a0 = np.uint64(((c * KH + kh) * KW + kw) * Og)
                                s0 = np.uint64(((ti // sh) * WO + tj // sw) * O + go)
                                for k in range(uOg):
                                    accf[a0 + k] += vf * gyt[s0 + k]


def _gw_by_events(x, gy, KH, KW, sh, sw, ph, pw, groups):
    """The weight gradient [O, C/groups, KH, KW] from the input's events (_gw_event_parts), in two fixed parts
    of the batch when it is large (threads.split), summed at the end."""
    N, C = x.shape[0], x.shape[1]
    O = gy.shape[1]
    Og = O // groups
    nparts = 2 if N >= 2 and gy.size * KH * KW >= TRAIN_SPLIT_MIN_WORK // 16 else 1
    parts = np.zeros((nparts, C, KH, KW, Og), np.float32)
    split(_gw_event_parts, nparts, x, np.ascontiguousarray(gy, np.float32), KH, KW, sh, sw, ph, pw, groups, nparts,
          parts)
    gwt = parts[0] if nparts == 1 else parts[0] + parts[1]
    # [C, KH, KW, Og] -> [O, C/groups, KH, KW]
    Cg = C // groups
    return np.ascontiguousarray(gwt.reshape(groups, Cg, KH, KW, Og).transpose(0, 4, 1, 2, 3).reshape(O, Cg, KH, KW))


def events_cheaper(x, out_shape, kernel, stride, groups) -> bool:
    """True when a conv's input has few enough nonzeros that its event form (forward scatter, or the weight
    gradient by events) costs less than the dense one: the engine's kernel-form rule (kernels/cost.py) on the
    actual count. Layers with fewer than 8 output channels per group stay dense (short runs)."""
    from ..kernels.cost import event_limit_conv

    if out_shape[0] // groups < 8:
        return False
    return np.count_nonzero(x) < event_limit_conv(x.shape[0], x.shape[1:], out_shape, kernel, stride, groups)


def conv2d_train_forward(x, w, b, sh, sw, ph, pw, groups):
    """A conv in a training forward: the engine's event kernel when the input has few nonzeros
    (events_cheaper: the kernel-form rule of inference), else its dense kernel; images split between threads
    by training's rule (TRAIN_SPLIT_MIN_WORK multiply-adds, or an eighth of that many outputs for events)."""
    O, Cg, KH, KW = w.shape
    out_shape = (O, conv_out_size(x.shape[2], KH, sh, ph), conv_out_size(x.shape[3], KW, sw, pw))
    if events_cheaper(x, out_shape, (KH, KW), (sh, sw), groups):
        return conv2d_event(x, prepare_conv_event(w, groups), b, O, KH, KW, sh, sw, ph, pw, groups,
                            split_above=TRAIN_SPLIT_MIN_WORK // 8)
    return conv2d_dense(x, w, b, sh, sw, ph, pw, groups, split_above=TRAIN_SPLIT_MIN_WORK)


def _transposed_weights(w, groups):
    """w [O, C/g, KH, KW] -> [C, O/g, KH, KW] with the kernel flipped: the weights of the convolution that
    maps the output gradient of a stride-1 convolution to its input gradient."""
    O, Cg, KH, KW = w.shape
    Og = O // groups
    wt = w.reshape(groups, Og, Cg, KH, KW).transpose(0, 2, 1, 3, 4)[:, :, :, ::-1, ::-1]
    return np.ascontiguousarray(wt.reshape(groups * Cg, Og, KH, KW), np.float32)


def conv2d_backward(x, w, gy, sh, sw, ph, pw, groups, need_gx):
    """Gradients of out = conv2d(x, w) (no bias; its gradient is gy summed over batch and space).

    x [N, C, H, W] (float32 or uint8 spikes), w [O, C/groups, KH, KW], gy [N, O, HO, WO].
    Returns (gw [O, C/groups, KH, KW], gx [N, C, H, W] or an empty array when not ``need_gx``).
    Weight gradient: from the input's events when they are few (events_cheaper, _gw_by_events), else per
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
    events = events_cheaper(x, gy.shape[1:], (KH, KW), (sh, sw), groups)
    gw = _gw_by_events(x, gy, KH, KW, sh, sw, ph, pw, groups) if events else None
    if not events or cols_gx:
        wts = np.ascontiguousarray(w32.reshape(groups, Og, K).transpose(0, 2, 1))
        wide = sh == 1 and sw == 1
        cols = K * gy.shape[2] * (W + 2 * pw) if wide else K * HW      # im2col elements per image
        nb = max(1, min(N, (_WIDE_COLS_MAX_ELEMS if wide else _COLS_MAX_ELEMS) // max(1, cols)))
        nch = -(-N // nb)
        passes = (0 if events else 1) + (1 if cols_gx else 0)
        nparts = 2 if nch >= 2 and N * O * HW * K * passes >= TRAIN_SPLIT_MIN_WORK else 1
        gw_parts = np.zeros((nparts, O, K) if not events else (nparts, 0, 0), np.float32)
        split(_conv_bwd_parts, nparts, x, gy, wts, KH, KW, sh, sw, ph, pw, groups, not events, cols_gx, wide, nb,
              nparts, gw_parts, gx)
        if not events:
            gw = (gw_parts[0] if nparts == 1 else gw_parts[0] + gw_parts[1]).reshape(O, Cg, KH, KW)
    if by_conv:
        gx = conv2d_dense(np.ascontiguousarray(gy, np.float32), _transposed_weights(w32, groups),
                          np.zeros(C, np.float32), 1, 1, KH - 1 - ph, KW - 1 - pw, groups,
                          split_above=TRAIN_SPLIT_MIN_WORK)
    return gw, gx


# ----------------------------------------------------------------------------- batch norm (training mode)
@njit(cache=True, fastmath=False, inline="always")
def _sum8(a, m, square, s):
    """s[k] += a[j] - m, or its square, for j = k mod 8 (float64): eight independent chains in registers, so
    that the sum is not one chain bound by the latency of an add; the order is fixed, whatever the threads."""
    n = a.shape[0]
    n8 = n - n % 8
    s0, s1, s2, s3, s4, s5, s6, s7 = s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
    if square:
        for j in range(0, n8, 8):
            d0, d1, d2, d3 = a[j] - m, a[j + 1] - m, a[j + 2] - m, a[j + 3] - m
            d4, d5, d6, d7 = a[j + 4] - m, a[j + 5] - m, a[j + 6] - m, a[j + 7] - m
            s0, s1, s2, s3 = s0 + d0 * d0, s1 + d1 * d1, s2 + d2 * d2, s3 + d3 * d3
            s4, s5, s6, s7 = s4 + d4 * d4, s5 + d5 * d5, s6 + d6 * d6, s7 + d7 * d7
        for j in range(n8, n):
            s0 += (a[j] - m) * (a[j] - m)
    else:
        for j in range(0, n8, 8):
            s0, s1, s2, s3 = s0 + a[j], s1 + a[j + 1], s2 + a[j + 2], s3 + a[j + 3]
            s4, s5, s6, s7 = s4 + a[j + 4], s5 + a[j + 5], s6 + a[j + 6], s7 + a[j + 7]
        for j in range(n8, n):
            s0 += a[j]
    s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7] = s0, s1, s2, s3, s4, s5, s6, s7


@njit(cache=True, fastmath=False, inline="always")
def _total8(s):
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))


@njit(cache=True, fastmath=False)
def _bn_fwd_channel(x, gamma, beta, eps, y, xhat, mean, var, invstd, c):
    N, C, L = x.shape
    cnt = N * L
    s = np.zeros(8)
    for n in range(N):
        _sum8(x[n, c], 0.0, False, s)
    m = _total8(s) / cnt
    s[:] = 0.0
    for n in range(N):
        _sum8(x[n, c], m, True, s)
    vv = _total8(s) / cnt
    mean[c] = m
    var[c] = vv
    inv = np.float32(1.0 / np.sqrt(vv + eps))
    invstd[c] = inv
    m32 = np.float32(m)
    gm = gamma[c]
    bt = beta[c]
    for n in range(N):
        xr = x[n, c]
        hr = xhat[n, c]
        yr = y[n, c]
        for j in range(L):
            xh = (xr[j] - m32) * inv
            hr[j] = xh
            yr[j] = xh * gm + bt


@njit(cache=True, fastmath=False, parallel=True)
def _bn_fwd_par(x, gamma, beta, eps, y, xhat, mean, var, invstd):
    for c in prange(x.shape[1]):
        _bn_fwd_channel(x, gamma, beta, eps, y, xhat, mean, var, invstd, c)


@njit(cache=True, fastmath=False)
def batchnorm_forward_train(x, gamma, beta, eps):
    """Batch statistics over N and L of x [N, C, L] (float64 sums). Returns y, xhat, mean [C],
    biased var [C], invstd [C]."""
    C = x.shape[1]
    y = np.empty_like(x)
    xhat = np.empty_like(x)
    mean = np.empty(C, np.float32)
    var = np.empty(C, np.float32)
    invstd = np.empty(C, np.float32)
    if x.size >= _PAR_MIN_WORK and C > 1:
        _bn_fwd_par(x, gamma, beta, eps, y, xhat, mean, var, invstd)
    else:
        for c in range(C):
            _bn_fwd_channel(x, gamma, beta, eps, y, xhat, mean, var, invstd, c)
    return y, xhat, mean, var, invstd


@njit(cache=True, fastmath=False)
def _bn_bwd_channel(g, xhat, gamma, invstd, need_gx, gx, ggamma, gbeta, c):
    N, C, L = g.shape
    cnt = N * L
    sg = 0.0
    sgx = 0.0
    for n in range(N):
        for j in range(L):
            gv = g[n, c, j]
            sg += gv
            sgx += gv * xhat[n, c, j]
    gbeta[c] = sg
    ggamma[c] = sgx
    if need_gx:
        mg = np.float32(sg / cnt)
        mgx = np.float32(sgx / cnt)
        k = gamma[c] * invstd[c]
        for n in range(N):
            for j in range(L):
                gx[n, c, j] = (g[n, c, j] - mg - xhat[n, c, j] * mgx) * k


@njit(cache=True, fastmath=False, parallel=True)
def _bn_bwd_par(g, xhat, gamma, invstd, need_gx, gx, ggamma, gbeta):
    for c in prange(g.shape[1]):
        _bn_bwd_channel(g, xhat, gamma, invstd, need_gx, gx, ggamma, gbeta, c)


@njit(cache=True, fastmath=False)
def batchnorm_backward_train(g, xhat, gamma, invstd, need_gx):
    """Gradients of y = xhat * gamma + beta with batch statistics: (gx, ggamma, gbeta)."""
    N, C, L = g.shape
    gx = np.empty_like(g) if need_gx else np.empty((0, C, L), np.float32)
    ggamma = np.empty(C, np.float32)
    gbeta = np.empty(C, np.float32)
    if g.size >= _PAR_MIN_WORK and C > 1:
        _bn_bwd_par(g, xhat, gamma, invstd, need_gx, gx, ggamma, gbeta)
    else:
        for c in range(C):
            _bn_bwd_channel(g, xhat, gamma, invstd, need_gx, gx, ggamma, gbeta, c)
    return gx, ggamma, gbeta


@njit(cache=True, fastmath=False)
def channel_sum(g):
    """g [N, C, L] -> per-channel sums [C] (float64 accumulation, fixed order)."""
    N, C, L = g.shape
    out = np.zeros(C, np.float32)
    for c in range(C):
        s = 0.0
        for n in range(N):
            for j in range(L):
                s += g[n, c, j]
        out[c] = s
    return out


# ----------------------------------------------------------------------------- pooling
@njit(cache=True, fastmath=False)
def _argmax_plane(xp, ip, kh, kw, sh, sw, ph, pw):
    H, W = xp.shape
    HO, WO = ip.shape
    for oi in range(HO):
        i0 = oi * sh - ph
        for oj in range(WO):
            j0 = oj * sw - pw
            m = -np.inf
            best = 0
            for a in range(max(0, i0), min(H, i0 + kh)):
                for e in range(max(0, j0), min(W, j0 + kw)):
                    v = xp[a, e]
                    if v > m:
                        m = v
                        best = (a - i0) * kw + (e - j0)
            ip[oi, oj] = best


@njit(cache=True, fastmath=False, parallel=True)
def _argmax_par(x, idx, kh, kw, sh, sw, ph, pw):
    C = x.shape[1]
    for bc in prange(x.shape[0] * C):
        b = bc // C
        _argmax_plane(x[b, bc - b * C], idx[b, bc - b * C], kh, kw, sh, sw, ph, pw)


@njit(cache=True, fastmath=False)
def maxpool_argmax(x, kh, kw, sh, sw, ph, pw, HO, WO):
    """Offset (a * kw + c) inside each window of its first maximum in row-major order: PyTorch's choice,
    and the value ``snnsim.kernels.maxpool2d`` returns. uint8 (windows up to 255 elements)."""
    N, C = x.shape[0], x.shape[1]
    idx = np.empty((N, C, HO, WO), np.uint8)
    if idx.size * kh * kw >= _PAR_MIN_WORK:
        _argmax_par(x, idx, kh, kw, sh, sw, ph, pw)
    else:
        for b in range(N):
            for c in range(C):
                _argmax_plane(x[b, c], idx[b, c], kh, kw, sh, sw, ph, pw)
    return idx


@njit(cache=True, fastmath=False, inline="always")
def _maxarg_plane_2x2(xp, op, ip):
    """2x2 windows, stride 2, no padding: the maximum and its offset in one pass, the generic loops' rule
    (first maximum in row-major order, starting from -inf) written as selects, so that the loop vectorises."""
    HO, WO = op.shape
    for oi in range(HO):
        r0 = xp[2 * oi]
        r1 = xp[2 * oi + 1]
        o = op[oi]
        d = ip[oi]
        for oj in range(WO):
            j = 2 * oj
            m = -np.inf
            k = 0
            v = r0[j]
            if v > m:
                m = v
            v = r0[j + 1]
            if v > m:
                m = v
                k = 1
            v = r1[j]
            if v > m:
                m = v
                k = 2
            v = r1[j + 1]
            if v > m:
                m = v
                k = 3
            o[oj] = m
            d[oj] = k


@njit(cache=True, fastmath=False, nogil=True)
def _maxarg_planes_2x2(x, y, idx, p0, p1):
    C = x.shape[1]
    for p in range(p0, p1):
        b = p // C
        c = p - b * C
        _maxarg_plane_2x2(x[b, c], y[b, c], idx[b, c])


def maxpool_2x2_with_argmax(x):
    """(y, offsets) of 2x2 stride-2 max pooling without padding in one pass: y equals
    snnsim.kernels.maxpool2d, the offsets maxpool_argmax (a training forward needs both; two passes took 10x
    longer)."""
    N, C, H, W = x.shape
    y = np.empty((N, C, H // 2, W // 2), np.float32)
    idx = np.empty((N, C, H // 2, W // 2), np.uint8)
    if y.size >= _PAR_MIN_WORK:
        split(_maxarg_planes_2x2, N * C, x, y, idx)
    else:
        _maxarg_planes_2x2(x, y, idx, 0, N * C)
    return y, idx


@njit(cache=True, fastmath=False)
def _maxback_plane(gp, ip, gxp, kw, sh, sw, ph, pw):
    HO, WO = gp.shape
    for oi in range(HO):
        for oj in range(WO):
            k = ip[oi, oj]
            gxp[oi * sh - ph + k // kw, oj * sw - pw + k % kw] += gp[oi, oj]


@njit(cache=True, fastmath=False, parallel=True)
def _maxback_par(gy, idx, gx, kw, sh, sw, ph, pw):
    C = gy.shape[1]
    for bc in prange(gy.shape[0] * C):
        b = bc // C
        c = bc - b * C
        _maxback_plane(gy[b, c], idx[b, c], gx[b, c], kw, sh, sw, ph, pw)


@njit(cache=True, fastmath=False)
def maxpool_backward(gy, idx, kh, kw, sh, sw, ph, pw, H, W):
    N, C = gy.shape[0], gy.shape[1]
    gx = np.zeros((N, C, H, W), np.float32)
    if gx.size >= _PAR_MIN_WORK:
        _maxback_par(gy, idx, gx, kw, sh, sw, ph, pw)
    else:
        for b in range(N):
            for c in range(C):
                _maxback_plane(gy[b, c], idx[b, c], gx[b, c], kw, sh, sw, ph, pw)
    return gx


@njit(cache=True, fastmath=False)
def _winback_plane(gp, gxp, scale, kh, kw, sh, sw, ph, pw):
    HO, WO = gp.shape
    H, W = gxp.shape
    for oi in range(HO):
        i0 = oi * sh - ph
        for oj in range(WO):
            j0 = oj * sw - pw
            gv = gp[oi, oj] * scale
            for a in range(max(0, i0), min(H, i0 + kh)):
                for e in range(max(0, j0), min(W, j0 + kw)):
                    gxp[a, e] += gv


@njit(cache=True, fastmath=False, parallel=True)
def _winback_par(gy, gx, scale, kh, kw, sh, sw, ph, pw):
    C = gy.shape[1]
    for bc in prange(gy.shape[0] * C):
        b = bc // C
        c = bc - b * C
        _winback_plane(gy[b, c], gx[b, c], scale, kh, kw, sh, sw, ph, pw)


@njit(cache=True, fastmath=False)
def windowsum_backward(gy, scale, kh, kw, sh, sw, ph, pw, H, W):
    """Backward of window sums (sum pool, scale 1) and average pool with count_include_pad (scale 1/(kh*kw))."""
    N, C = gy.shape[0], gy.shape[1]
    gx = np.zeros((N, C, H, W), np.float32)
    if gx.size * kh * kw >= _PAR_MIN_WORK:
        _winback_par(gy, gx, scale, kh, kw, sh, sw, ph, pw)
    else:
        for b in range(N):
            for c in range(C):
                _winback_plane(gy[b, c], gx[b, c], scale, kh, kw, sh, sw, ph, pw)
    return gx


# ----------------------------------------------------------------------------- misc
@njit(cache=True, fastmath=False)
def _binary_chunk(flat, out, a, b):
    for i in range(a, b):
        v = flat[i]
        if v == 0.0:
            out[i] = 0
        elif v == 1.0:
            out[i] = 1
        else:
            return False
    return True


@njit(cache=True, fastmath=False, parallel=True)
def _binary_par(flat, out, ok):
    n = flat.size
    for c in prange(ok.size):
        ok[c] = _binary_chunk(flat, out, c * _CHUNK, min(n, (c + 1) * _CHUNK))


@njit(cache=True, fastmath=False)
def is_binary_u8(x):
    """(True, uint8 copy) when every element of float32 x is 0 or 1, else (False, empty)."""
    flat = x.reshape(-1)
    n = flat.size
    out = np.empty(n, np.uint8)
    if n >= _PAR_MIN_WORK:
        ok = np.ones((n + _CHUNK - 1) // _CHUNK, np.bool_)
        _binary_par(flat, out, ok)
        good = ok.all()
    else:
        good = _binary_chunk(flat, out, 0, n)
    if good:
        return True, out
    return False, np.empty(0, np.uint8)
