"""Small training kernels: whether a stored activation is spikes or spike counts (kept as uint8), and its events."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .parallel import CHUNK as _CHUNK, PAR_MIN_WORK as _PAR_MIN_WORK


@njit(cache=True, fastmath=False)
def _counts_chunk(flat, out, a, b):
    """out[a:b] = flat[a:b] as uint8 and the number of nonzeros, or -1 when an element is not a whole number from
    0 to 255 (spikes are 0 or 1; a SEW residual's sum of spikes 0, 1 or 2). Branch-free, so that the loop
    vectorises: each value is clamped, converted and compared back (NaN never compares equal). The loop runs over
    slices indexed from 0: indices from a start only known at run time keep Numba's negative-index check in the
    loop, which stopped it vectorising (6x slower)."""
    xs = flat[a:b]
    us = out[a:b]
    nonzero = 0
    bad = 0
    for i in range(b - a):
        v = xs[i]
        u = np.uint8(np.int32(min(max(v, np.float32(0.0)), np.float32(255.0))))
        us[i] = u
        bad += np.float32(u) != v
        nonzero += v != np.float32(0.0)
    return -1 if bad else nonzero


@njit(cache=True, fastmath=False, parallel=True)
def _counts_par(flat, out, nonzero):
    n = flat.size
    for c in prange(nonzero.size):
        nonzero[c] = _counts_chunk(flat, out, c * _CHUNK, min(n, (c + 1) * _CHUNK))


@njit(cache=True, fastmath=False)
def counts_u8(x):
    """(uint8 copy, number of nonzeros) when every element of float32 x is a whole number from 0 to 255 (spikes,
    or sums of a few spikes), else (empty, -1): one pass that packs a stored activation exactly and counts its
    events (the conv's form rule reads the count)."""
    flat = x.reshape(-1)
    n = flat.size
    out = np.empty(n, np.uint8)
    if n >= _PAR_MIN_WORK:
        nonzero = np.zeros((n + _CHUNK - 1) // _CHUNK, np.int64)
        _counts_par(flat, out, nonzero)
        total = 0
        for c in range(nonzero.size):
            if nonzero[c] < 0:
                return np.empty(0, np.uint8), -1
            total += nonzero[c]
        return out, total
    total = _counts_chunk(flat, out, 0, n)
    if total < 0:
        return np.empty(0, np.uint8), -1
    return out, total


@njit(cache=True, fastmath=False)
def _add_chunk(a, b, out, lo, hi):
    xs = a[lo:hi]
    ys = b[lo:hi]
    zs = out[lo:hi]
    for i in range(hi - lo):
        zs[i] = xs[i] + ys[i]


@njit(cache=True, fastmath=False, parallel=True)
def _add_par(a, b, out):
    n = a.size
    for c in prange((n + _CHUNK - 1) // _CHUNK):
        _add_chunk(a, b, out, c * _CHUNK, min(n, (c + 1) * _CHUNK))


def add(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a + b (float32, the same shape) into ``out`` (may be ``a``; a new array by default), in chunks on the
    threads when large: a residual's sum of branches and of their gradients, tensors the size of a layer that
    NumPy adds on one thread."""
    a = np.ascontiguousarray(a, np.float32)
    b = np.ascontiguousarray(b, np.float32)
    if out is None:
        out = np.empty_like(a)
    fa, fb, fo = a.reshape(-1), b.reshape(-1), out.reshape(-1)
    if fa.size >= _PAR_MIN_WORK:
        _add_par(fa, fb, fo)
    else:
        _add_chunk(fa, fb, fo, 0, fa.size)
    return out
