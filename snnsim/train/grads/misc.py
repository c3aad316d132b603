"""Small training kernels: whether a stored activation is binary (kept as uint8)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .parallel import CHUNK as _CHUNK, PAR_MIN_WORK as _PAR_MIN_WORK


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
