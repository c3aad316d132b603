"""Event-counting helpers (spike statistics that feed the dense/event switch and the hw model).

Only the flat count is compiled; the others reuse the fused statistics of stats.py.
"""
import numpy as np
from numba import njit

from .stats import input_stats, input_stats_samples


@njit(cache=True, fastmath=False, nogil=True)
def _count_flat(flat):
    n = 0
    for k in range(flat.shape[0]):
        if flat[k] != 0:
            n += 1
    return n


def count_nonzero(x):
    """Number of nonzero entries of an array of any shape (a 1-D view is counted: one compiled form)."""
    return _count_flat(x.reshape(-1))


def density(x):
    """Fraction of nonzero entries (0.0 for an empty array)."""
    return count_nonzero(x) / x.size if x.size else 0.0


def event_map(x):
    """float32 array of shape x.shape[1:]: how many batch items are nonzero at each position."""
    em = np.zeros(x.shape[1:], np.float32)
    B = x.shape[0]
    input_stats_samples(x, em, np.zeros(em.size, np.int64), np.zeros(B, np.int64), np.zeros(B), np.zeros(B, bool))
    return em


def is_binary(x):
    """True if every entry is exactly 0 or 1 (spike tensors); True for an empty array."""
    return input_stats(x)[1]
