"""Fully connected layer kernels: dense (BLAS) and event-driven (scatter of rows).

Layouts: x[B, I], w[O, I] (PyTorch), b[O] or an empty array for "no bias".
All kernels are pure: they allocate and return a new float32 array.
"""
import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

from .blas import sgemm, sgemv
from .simd import nonzero_mask
from .threads import split

# The event kernel splits its batch rows between threads only for >= 2 rows and a
# dense size B*I*O >= 2**26 (several ms of work at 10 % density): the rule for
# every kernel, snnsim/kernels/conv.py, _PAR_MIN_WORK.
_PAR_MIN_WORK = 1 << 26
# Up to this many samples the dense layer runs one sgemv per sample: at batch 1 OpenBLAS's sgemm took 4-5x
# the time of its sgemv (linear 1568->128: 38 us against 7.6 us).
_GEMV_MAX_ROWS = 2


@njit(cache=True, fastmath=False, nogil=True)
def _linear_rows(x, w, b, step):
    """out = x @ w.T + b, single-threaded on the caller's thread (kernels/blas.py): one sgemv per row for a step
    of at most _GEMV_MAX_ROWS rows, else one sgemm per ``step`` rows."""
    out = np.empty((x.shape[0], w.shape[0]), np.float32)
    if step <= _GEMV_MAX_ROWS:
        for r in range(x.shape[0]):
            sgemv(w.shape[0], w.shape[1], w, x[r], out[r])
    else:
        for r in range(0, x.shape[0], step):
            sgemm(min(step, x.shape[0] - r), w.shape[0], x.shape[1], x[r:], w, True, 0.0, out[r:])
    if b.shape[0] > 0:              # loops, not out[r] += b: that compiles Numba's shape-error path
        for r in range(out.shape[0]):
            for o in range(out.shape[1]):
                out[r, o] += b[o]
    return out


def linear_dense(x, w, b, batch=None):
    """out = x @ w.T + b. Layers of a spiking network are small (a 1568->128 layer at batch 64 is 13 M MACs,
    ~0.1 ms), too small to repay a second thread on a busy machine. A batch of a few samples runs one sgemv
    each (sgemm is slow for few rows); ``batch``: the samples of one timestep when x holds several timesteps
    side by side, so that each timestep is computed as it would be alone (sgemv and sgemm round differently,
    and sgemm rounds a row differently with the number of rows)."""
    return _linear_rows(x, w, b, max(1, x.shape[0] if batch is None else batch))


def prepare_linear_event(w):
    """Transposed contiguous copy wt[I, O]: each input's fan-out row is contiguous,
    so one event is a single vectorised axpy over O. (NumPy, not Numba: it runs once per
    network build, and loading a compiled function costs more start-up than it saves.)"""
    return np.ascontiguousarray(np.asarray(w, np.float32).T)


@njit(cache=True, fastmath=False, nogil=True)
def _linear_event_rows(x, wt, b, out, r0, r1):
    """Rows [r0, r1) of the event-driven product: per row, find the nonzeros of x[r] 32 at a time
    (simd.nonzero_mask: a silent stretch costs a vector test, an event a bit scan, with no branch per
    input) and add one contiguous weight row per nonzero (terms in ascending i for every output).
    Flat uint64 indexing: Numba's negative-index wraparound on signed indices
    stops LLVM from vectorising the axpy (measured 2x slower)."""
    I = x.shape[1]
    uO = np.uint64(wt.shape[1])
    outf = out.reshape(out.size)
    wf = wt.reshape(wt.size)
    for r in range(r0, r1):
        row = x[r]
        bits = row.view(np.uint32)
        ob = np.uint64(r) * uO
        for o in range(uO):
            outf[ob + o] = 0.0
        for i0 in range(0, I, 32):
            m = nonzero_mask(row, bits, i0, I)
            while m != 0:
                i = i0 + trailing_zeros(m)
                v = row[i]
                wb = np.uint64(i) * uO
                for o in range(uO):
                    outf[ob + o] += v * wf[wb + o]
                m &= m - np.uint32(1)
        if b.shape[0] > 0:
            for o in range(uO):
                outf[ob + o] += b[o]


def linear_event(x, wt, b):
    """Event-driven linear layer: for each nonzero x[r, i], out[r, :] += x[r, i] * wt[i, :]; then + b.
    (The serial/parallel choice is made in Python so that only the variant used is compiled.)"""
    x = np.ascontiguousarray(x, np.float32)            # the nonzero tests read float32 bit patterns
    B = x.shape[0]
    out = np.empty((B, wt.shape[1]), np.float32)
    if B >= 2 and B * x.shape[1] * wt.shape[1] >= _PAR_MIN_WORK:
        split(_linear_event_rows, B, x, wt, b, out)     # blocks of rows: same per-output order
    else:
        _linear_event_rows(x, wt, b, out, 0, B)
    return out
