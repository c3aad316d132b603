"""Fully connected layer kernels: dense (BLAS) and event-driven (scatter of rows).

Layouts: x[B, I], w[O, I] (PyTorch), b[O] or an empty array for "no bias".
All kernels are pure: they allocate and return a new float32 array.
"""
import numpy as np
from numba import njit, prange

# Below this batch size the event kernel runs serially: a parallel region costs
# a thread wake-up (~10-20 us on 2 cores) that a single row of scatters never repays.
_PAR_MIN_BATCH = 2


@njit(cache=True, fastmath=False)
def linear_dense(x, w, b):
    """out = x @ w.T + b, via np.dot (BLAS sgemm; w.T is an F-ordered view, no copy)."""
    out = np.dot(x, w.T)
    if b.shape[0] > 0:
        for r in range(out.shape[0]):
            out[r] += b
    return out


@njit(cache=True, fastmath=False)
def prepare_linear_event(w):
    """Transposed contiguous copy wt[I, O]: each input's fan-out row is contiguous,
    so one event is a single vectorised axpy over O."""
    return np.ascontiguousarray(w.T)


@njit(cache=True, fastmath=False)
def _linear_event_row(x, wt, b, out, r):
    # Cost is (#nonzero in x[r]) * O; the scan over I is a cheap compare.
    acc = out[r]
    acc[:] = 0.0
    xr = x[r]
    for i in range(xr.shape[0]):
        v = xr[i]
        if v != 0.0:
            row = wt[i]
            for o in range(acc.shape[0]):
                acc[o] += v * row[o]
    if b.shape[0] > 0:
        acc += b


@njit(cache=True, fastmath=False)
def _linear_event_serial(x, wt, b):
    out = np.empty((x.shape[0], wt.shape[1]), np.float32)
    for r in range(x.shape[0]):
        _linear_event_row(x, wt, b, out, r)
    return out


@njit(cache=True, fastmath=False, parallel=True)
def _linear_event_parallel(x, wt, b):
    # Batch rows are independent, so each thread owns whole rows: no races,
    # and the summation order per output is the same as in the serial kernel.
    out = np.empty((x.shape[0], wt.shape[1]), np.float32)
    for r in prange(x.shape[0]):
        _linear_event_row(x, wt, b, out, r)
    return out


@njit(cache=True, fastmath=False)
def linear_event(x, wt, b):
    """Event-driven linear layer: for each nonzero x[r, i], out[r, :] += x[r, i] * wt[i, :]; then + b."""
    if x.shape[0] >= _PAR_MIN_BATCH:
        return _linear_event_parallel(x, wt, b)
    return _linear_event_serial(x, wt, b)
