"""Training kernels of pooling: max pooling with its argmax offsets, and the backward of max and window sums."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ...kernels.threads import split
from .parallel import PAR_MIN_WORK as _PAR_MIN_WORK


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
