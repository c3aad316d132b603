"""Training kernels of batch norm in training mode: batch statistics, forward and backward."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .parallel import PAR_MIN_WORK as _PAR_MIN_WORK


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
def _dot8(g, xh, s, sx):
    """s[k] += g[j] and sx[k] += g[j] * xh[j] (the product in float32, as autograd's), for j = k mod 8, in
    float64: eight independent chains each, as ``_sum8``."""
    n = g.shape[0]
    n8 = n - n % 8
    s0, s1, s2, s3, s4, s5, s6, s7 = s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
    t0, t1, t2, t3, t4, t5, t6, t7 = sx[0], sx[1], sx[2], sx[3], sx[4], sx[5], sx[6], sx[7]
    for j in range(0, n8, 8):
        g0, g1, g2, g3, g4, g5, g6, g7 = g[j], g[j + 1], g[j + 2], g[j + 3], g[j + 4], g[j + 5], g[j + 6], g[j + 7]
        s0, s1, s2, s3, s4, s5, s6, s7 = s0 + g0, s1 + g1, s2 + g2, s3 + g3, s4 + g4, s5 + g5, s6 + g6, s7 + g7
        t0, t1 = t0 + g0 * xh[j], t1 + g1 * xh[j + 1]
        t2, t3 = t2 + g2 * xh[j + 2], t3 + g3 * xh[j + 3]
        t4, t5 = t4 + g4 * xh[j + 4], t5 + g5 * xh[j + 5]
        t6, t7 = t6 + g6 * xh[j + 6], t7 + g7 * xh[j + 7]
    for j in range(n8, n):
        s0 += g[j]
        t0 += g[j] * xh[j]
    s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7] = s0, s1, s2, s3, s4, s5, s6, s7
    sx[0], sx[1], sx[2], sx[3], sx[4], sx[5], sx[6], sx[7] = t0, t1, t2, t3, t4, t5, t6, t7


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
    s = np.zeros(8)
    sx = np.zeros(8)
    for n in range(N):
        _dot8(g[n, c], xhat[n, c], s, sx)
    sg = _total8(s)
    sgx = _total8(sx)
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
