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
    nonbinary = 0
    for i in range(flat.size):      # branch-free so that LLVM vectorises it
        v = flat[i]
        nnz += v != 0
        nonbinary += (v != 0) & (v != 1)
    return nnz, nonbinary == 0


@njit(cache=True, fastmath=False)
def input_stats_map(x, em):
    """As ``input_stats``, and adds the nonzero indicator of every sample into ``em`` (shape x.shape[1:])."""
    B = x.shape[0]
    flat = x.reshape(B, -1)
    emf = em.reshape(-1)
    n = flat.shape[1]
    nnz = 0
    nonbinary = 0
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for b in range(B):
        row = flat[b]
        for i in range(n):          # branch-free so that LLVM vectorises it
            v = row[i]
            nz = v != 0
            emf[i] += one if nz else zero
            nnz += nz
            nonbinary += nz & (v != 1)
    return nnz, nonbinary == 0
