"""Training kernels of the neuron layers: the multi-step forward (the engine's ``neuron_step``) and the backward.

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

import numpy as np
from numba import njit, prange

from ...neurons import neuron_step
from ..surrogate import sigmoid_grad_row, surrogate_grad, surrogate_primitive
from .parallel import CHUNK as _CHUNK, PAR_MIN_WORK as _PAR_MIN_WORK


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


# The row loops below compile with NumPy's error model: under Python's, a float division (the sigmoid surrogate's
# 1 / (1 + e), atan's, the lif's / tau) carries a zero-division branch that keeps its loop from vectorising.
@njit(cache=True, fastmath=False, error_model="numpy")
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


@njit(cache=True, fastmath=False, error_model="numpy")
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
