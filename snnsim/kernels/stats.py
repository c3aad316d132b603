"""What the engine records about each layer input, in one pass over the array.

Counting nonzeros, checking for binary values and accumulating the per-position event map separately
costs three passes per layer and timestep; fused, it is one. The compiled loops take flat arrays (1-D, or
[batch, positions] rows) whatever the layer's shape: one compiled specialisation serves every layer, where
each array rank would be another one to compile on a first run.
"""
import math

import numpy as np
from numba import njit


@njit(cache=True, fastmath=False, nogil=True)
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


# Positions per block of _steps_stats_samples: the block's event map (8 KiB) and fan-out (16 KiB) stay in L1
# while every sample's row passes over them; one pass per sample over the whole map moved 5x the input's bytes
# through L2 (1.35x slower on a 64-channel 16x16 layer, batch 64, T=4; 1024 and 4096 were slower than 2048).
_BLOCK = 2048


@njit(cache=True, fastmath=False, nogil=True)
def _steps_stats_samples(x3, em2, fanout, nnz_s, reach_s, nonbinary_s, nnz_t, nonbinary_t):
    """x3 [T, B, n]: per step t and sample b, nonzeros (nnz_s[t, b] +=), nonzeros weighted by fan-out
    (reach_s[t, b] +=), any non-binary entry (nonbinary_s[t, b] |=), the nonzero indicator added into the event
    map em2[t]; per step, nonzeros (nnz_t[t] +=) and non-binary entries (nonbinary_t[t] +=). Integer counts
    (the map's too, whole numbers in float32): exact in any order."""
    one = np.float32(1.0)
    zero = np.float32(0.0)
    n = x3.shape[2]
    for t in range(x3.shape[0]):
        for i0 in range(0, n, _BLOCK):
            i1 = min(n, i0 + _BLOCK)
            emf = em2[t, i0:i1]
            fan = fanout[i0:i1]
            for b in range(x3.shape[1]):
                row = x3[t, b, i0:i1]
                rn = 0
                rnb = 0
                reach = 0
                for i in range(i1 - i0):  # branch-free, integer sums, so that LLVM vectorises it
                    v = row[i]
                    nz = v != 0
                    emf[i] += one if nz else zero
                    rn += nz
                    rnb += nz & (v != 1)
                    reach += fan[i] * nz
                nnz_s[t, b] += rn
                reach_s[t, b] += reach
                nonbinary_s[t, b] |= rnb > 0
                nnz_t[t] += rn
                nonbinary_t[t] += rnb


def steps_stats_samples(x, em, fanout, nnz_s, reach_s, nonbinary_s):
    """``input_stats_samples`` for several timesteps at once: x [T, B, ...], em [T, ...] (C-contiguous float32),
    the per-sample arrays [T, B]. Returns (nonzeros per step, binary per step), int64 and bool arrays [T]."""
    if not em.flags.c_contiguous:       # its flat view must be em itself: the counts are written into it
        raise ValueError("steps_stats_samples: em must be C-contiguous")
    T, B = x.shape[0], x.shape[1]
    nnz, nonbinary = np.zeros(T, np.int64), np.zeros(T, np.int64)
    n = em.size // T if T else 0
    _steps_stats_samples(x.reshape(T, B, n), em.reshape(T, n), fanout, nnz_s, reach_s, nonbinary_s, nnz,
                         nonbinary)
    return nnz, nonbinary == 0


def input_stats_samples(x, em, fanout, nnz_s, reach_s, nonbinary_s):
    """As ``input_stats``; also adds the nonzero indicator of every sample into ``em`` (C-contiguous float32,
    shape x.shape[1:]) and records per sample b: nonzero entries (added to nnz_s[b]), nonzero entries weighted
    by ``fanout`` (flat int64, the outputs each position reaches; added to reach_s[b]) and whether any entry
    is neither 0 nor 1 (nonbinary_s[b]), so that hwmodel can price every sample by itself."""
    nnz, binary = steps_stats_samples(x[None], em[None], fanout, nnz_s[None], reach_s[None], nonbinary_s[None])
    return int(nnz[0]), bool(binary[0])


@njit(cache=True, fastmath=False, nogil=True)
def _analog_map(x3, analog, em2):
    """em2[t] += the nonzero indicator of x3[t, b] for the samples with analog[t, b]."""
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for t in range(x3.shape[0]):
        emf = em2[t]
        for b in range(x3.shape[1]):
            if analog[t, b]:
                row = x3[t, b]
                for i in range(x3.shape[2]):
                    emf[i] += one if row[i] != 0 else zero


def analog_event_map(x, analog):
    """[T, ...] float32: per step, how many of the samples flagged in ``analog`` [T, B] are nonzero at each
    position of x [T, B, ...]."""
    T, B = x.shape[0], x.shape[1]
    em = np.zeros((T,) + x.shape[2:], np.float32)
    _analog_map(x.reshape(T, B, em[0].size if T else 0), analog, em.reshape(T, -1))
    return em


@njit(cache=True, fastmath=False, nogil=True)
def _steps_stats(x3, nnz_s, nnz_t, nonbinary_t):
    """x3 [T, B, n]: nonzeros per step and sample (nnz_s[t, b] +=) and per step (nnz_t[t] +=), non-binary
    entries per step (nonbinary_t[t] +=)."""
    for t in range(x3.shape[0]):
        for b in range(x3.shape[1]):
            row = x3[t, b]
            rn = 0
            rnb = 0
            for i in range(x3.shape[2]):
                v = row[i]
                nz = v != 0
                rn += nz
                rnb += nz & (v != 1)
            nnz_s[t, b] += rn
            nnz_t[t] += rn
            nonbinary_t[t] += rnb


def steps_stats(x, nnz_s=None):
    """(nonzeros per step, binary per step) of x [T, B, ...]; with ``nnz_s`` [T, B] (int64), the nonzeros of
    each step and sample are added into it."""
    T, B = x.shape[0], x.shape[1]
    nnz, nonbinary = np.zeros(T, np.int64), np.zeros(T, np.int64)
    _steps_stats(x.reshape(T, B, math.prod(x.shape[2:])), np.zeros((T, B), np.int64) if nnz_s is None else nnz_s, nnz, nonbinary)
    return nnz, nonbinary == 0


@njit(cache=True, fastmath=False, nogil=True)
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
