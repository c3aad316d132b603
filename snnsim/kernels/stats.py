"""What the engine records about each layer input, in one pass over the array.

Counting nonzeros, checking for binary values and accumulating the per-position event map separately
costs three passes per layer and timestep; fused, it is one. The compiled loops take flat arrays (1-D, or
[batch, positions] rows) whatever the layer's shape: one compiled specialisation serves every layer, where
each array rank would be another one to compile on a first run.
"""
import numpy as np
from numba import njit


@njit(cache=True, fastmath=False)
def flat_stats(flat):
    """(nonzero count, all entries in {0, 1}) of a 1-D array."""
    nnz = 0
    nonbinary = 0
    for i in range(flat.size):      # branch-free so that LLVM vectorises it
        v = flat[i]
        nnz += v != 0
        nonbinary += (v != 0) & (v != 1)
    return nnz, nonbinary == 0


def input_stats(x):
    """(nonzero count, all entries in {0, 1}) of an array of any shape."""
    return flat_stats(x.reshape(-1))


@njit(cache=True, fastmath=False)
def _rows_stats_samples(rows, emf, fanout, nnz_s, reach_s, nonbinary_s):
    nnz = 0
    nonbinary = 0
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for b in range(rows.shape[0]):
        row = rows[b]
        rn = 0
        rnb = 0
        reach = 0
        for i in range(rows.shape[1]):  # branch-free, integer sums, so that LLVM vectorises it
            v = row[i]
            nz = v != 0
            emf[i] += one if nz else zero
            rn += nz
            rnb += nz & (v != 1)
            reach += fanout[i] * nz
        nnz_s[b] += rn
        reach_s[b] += reach
        nonbinary_s[b] |= rnb > 0
        nnz += rn
        nonbinary += rnb
    return nnz, nonbinary == 0


def input_stats_samples(x, em, fanout, nnz_s, reach_s, nonbinary_s):
    """As ``input_stats``; also adds the nonzero indicator of every sample into ``em`` (C-contiguous float32,
    shape x.shape[1:]) and records per sample b: nonzero entries (added to nnz_s[b]), nonzero entries weighted
    by ``fanout`` (flat int64, the outputs each position reaches; added to reach_s[b]) and whether any entry
    is neither 0 nor 1 (nonbinary_s[b]), so that hwmodel can price every sample by itself."""
    if not em.flags.c_contiguous:       # its flat view must be em itself: the counts are written into it
        raise ValueError("input_stats_samples: em must be C-contiguous")
    return _rows_stats_samples(x.reshape(x.shape[0], em.size), em.reshape(-1), fanout, nnz_s, reach_s,
                               nonbinary_s)


@njit(cache=True, fastmath=False)
def _rows_nonzero(rows, out):
    for b in range(rows.shape[0]):
        row = rows[b]
        c = 0
        for i in range(row.shape[0]):
            c += row[i] != 0
        out[b] += c


def sample_nonzero(x, out):
    """Adds the nonzero entries of each sample x[b] to out[b]."""
    _rows_nonzero(x.reshape(x.shape[0], x.size // x.shape[0] if x.shape[0] else 0), out)
