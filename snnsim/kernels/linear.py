"""Fully connected layer kernels: dense (BLAS) and event-driven (scatter of rows).

Layouts: x[B, I], w[O, I] (PyTorch), b[O] or an empty array for "no bias".
All kernels are pure: they allocate and return a new float32 array.
"""
import numpy as np
from numba import njit, prange

# The event kernel goes parallel (over batch rows) only for >= 2 rows and a dense
# size B*I*O >= 2**20: a 2-thread region costs ~5-20 us on an idle 2-core machine
# (far more on a busy one), which smaller layers never repay.
# Measured (linear 1568->128, 10 % input density): B=2 1.17x, B=8 1.66x, B=64 2.0x.
_PAR_MIN_WORK = 1 << 20


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
def _linear_event_rows(x, wt, b, out, r0, r1):
    """Rows [r0, r1) of the event-driven product: per row, scan x[r] and add one
    contiguous weight row per nonzero (terms in ascending i for every output).
    Flat uint64 indexing: Numba's negative-index wraparound on signed indices
    stops LLVM from vectorising the axpy (measured 2x slower)."""
    I = x.shape[1]
    uO = np.uint64(wt.shape[1])
    outf = out.reshape(out.size)
    wf = wt.reshape(wt.size)
    for r in range(r0, r1):
        ob = np.uint64(r) * uO
        for o in range(uO):
            outf[ob + o] = 0.0
        for i in range(I):
            v = x[r, i]
            if v != 0.0:
                wb = np.uint64(i) * uO
                for o in range(uO):
                    outf[ob + o] += v * wf[wb + o]
        if b.shape[0] > 0:
            for o in range(uO):
                outf[ob + o] += b[o]


@njit(cache=True, fastmath=False)
def _linear_event_serial(x, wt, b):
    out = np.empty((x.shape[0], wt.shape[1]), np.float32)
    _linear_event_rows(x, wt, b, out, np.int64(0), np.int64(x.shape[0]))
    return out


@njit(cache=True, fastmath=False, parallel=True)
def _linear_event_parallel(x, wt, b, nparts):
    # Each task owns a block of batch rows: no races, same per-output order.
    out = np.empty((x.shape[0], wt.shape[1]), np.float32)
    B = x.shape[0]
    for t in prange(nparts):
        _linear_event_rows(x, wt, b, out, t * B // nparts, (t + 1) * B // nparts)
    return out


@njit(cache=True, fastmath=False)
def linear_event(x, wt, b):
    """Event-driven linear layer: for each nonzero x[r, i], out[r, :] += x[r, i] * wt[i, :]; then + b."""
    if x.shape[0] >= 2 and x.shape[0] * x.shape[1] * wt.shape[1] >= _PAR_MIN_WORK:
        # 2 row blocks = one per core of the 2-core target (numba.get_num_threads()
        # here would make the function uncacheable).
        return _linear_event_parallel(x, wt, b, 2)
    return _linear_event_serial(x, wt, b)
