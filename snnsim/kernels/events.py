"""Event-counting helpers (spike statistics that feed the dense/event switch and the hw model)."""
import numpy as np
from numba import njit


@njit(cache=True, fastmath=False)
def count_nonzero(x):
    """Number of nonzero entries of an array of any shape (int64)."""
    flat = x.ravel()
    n = 0
    for k in range(flat.shape[0]):
        if flat[k] != 0:
            n += 1
    return np.int64(n)


@njit(cache=True, fastmath=False)
def density(x):
    """Fraction of nonzero entries (0.0 for an empty array)."""
    if x.size == 0:
        return 0.0
    return count_nonzero(x) / x.size


@njit(cache=True, fastmath=False)
def event_map(x):
    """float32 array of shape x.shape[1:]: how many batch items are nonzero at each position."""
    n = x.shape[0]
    inner = 1
    for k in range(1, x.ndim):  # works for a zero batch and for 1-D input
        inner *= x.shape[k]
    flat = x.reshape(n, inner)
    acc = np.zeros(inner, np.float32)
    for r in range(n):
        row = flat[r]
        for k in range(inner):
            if row[k] != 0:
                acc[k] += 1.0
    return acc.reshape(x.shape[1:])


@njit(cache=True, fastmath=False)
def is_binary(x):
    """True if every entry is exactly 0 or 1 (spike tensors); True for an empty array."""
    flat = x.ravel()
    for k in range(flat.shape[0]):
        v = flat[k]
        if v != 0 and v != 1:
            return False
    return True
