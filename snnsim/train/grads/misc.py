"""Small training kernels: whether a stored activation is binary (kept as uint8), and its events."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .parallel import CHUNK as _CHUNK, PAR_MIN_WORK as _PAR_MIN_WORK


@njit(cache=True, fastmath=False)
def _binary_chunk(flat, out, a, b):
    """out[a:b] = flat[a:b] as uint8 and the number of ones, or -1 at the first element that is not 0 or 1."""
    ones = 0
    for i in range(a, b):
        v = flat[i]
        if v == 0.0:
            out[i] = 0
        elif v == 1.0:
            out[i] = 1
            ones += 1
        else:
            return -1
    return ones


@njit(cache=True, fastmath=False, parallel=True)
def _binary_par(flat, out, ones):
    n = flat.size
    for c in prange(ones.size):
        ones[c] = _binary_chunk(flat, out, c * _CHUNK, min(n, (c + 1) * _CHUNK))


@njit(cache=True, fastmath=False)
def binary_u8(x):
    """(uint8 copy, number of ones) when every element of float32 x is 0 or 1, else (empty, -1): one pass that
    packs a stored spike tensor and counts its events (the conv's form rule reads the count)."""
    flat = x.reshape(-1)
    n = flat.size
    out = np.empty(n, np.uint8)
    if n >= _PAR_MIN_WORK:
        ones = np.zeros((n + _CHUNK - 1) // _CHUNK, np.int64)
        _binary_par(flat, out, ones)
        total = 0
        for c in range(ones.size):
            if ones[c] < 0:
                return np.empty(0, np.uint8), -1
            total += ones[c]
        return out, total
    total = _binary_chunk(flat, out, 0, n)
    if total < 0:
        return np.empty(0, np.uint8), -1
    return out, total
