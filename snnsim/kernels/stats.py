"""What the engine records about each layer input, in one pass over the array.

Counting nonzeros, checking for binary values and accumulating the per-position event map separately
costs three passes per layer and timestep; fused, it is one.
"""
import numpy as np
from numba import njit


@njit(cache=True, fastmath=False)
def input_stats(x):
    """(nonzero count, all entries in {0, 1}) of an array of any shape."""
    flat = x.reshape(-1)
    nnz = 0
    binary = True
    for i in range(flat.size):
        v = flat[i]
        if v != 0:
            nnz += 1
            if v != 1:
                binary = False
    return nnz, binary


@njit(cache=True, fastmath=False)
def input_stats_map(x, em):
    """As ``input_stats``, and adds the nonzero indicator of every sample into ``em`` (shape x.shape[1:])."""
    B = x.shape[0]
    flat = x.reshape(B, -1)
    emf = em.reshape(-1)
    n = flat.shape[1]
    nnz = 0
    binary = True
    for b in range(B):
        row = flat[b]
        for i in range(n):
            v = row[i]
            if v != 0:
                nnz += 1
                emf[i] += 1.0
                if v != 1:
                    binary = False
    return nnz, binary
