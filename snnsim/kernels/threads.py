"""The kernels' one level of parallelism: Python threads running compiled code with the GIL released.

A kernel that is worth splitting (about a millisecond of serial work or more; smaller regions lose on a
busy machine, where a split waits for its slowest thread) runs its compiled range function, declared
``nogil=True``, on disjoint ranges: one on the calling thread, the others on a pool of threads created
once. Inside, sgemm runs on one BLAS thread (kernels/blas.py), so there is never a second level.

Why not Numba's ``parallel=True``: every parallel variant is a second compiled copy of a kernel, and its
compilation dominated the cold start of `snnsim run` (21 s of CPU time with empty caches, 12 s with the
parallel variants compiled only on demand); the pool reuses the serial function. Both wait passively.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba

_pool: ThreadPoolExecutor | None = None


def n_threads() -> int:
    """Threads a split uses: NUMBA_NUM_THREADS (default: the machine's cores)."""
    return max(1, int(numba.config.NUMBA_NUM_THREADS))


def split(fn, n: int, *args) -> None:
    """fn(*args, lo, hi) over [0, n), in up to n_threads() contiguous parts run at the same time."""
    global _pool
    parts = min(n, n_threads())
    if parts <= 1:
        fn(*args, 0, n)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(n_threads() - 1, thread_name_prefix="snnsim-kernel")
    futures = [_pool.submit(fn, *args, k * n // parts, (k + 1) * n // parts) for k in range(1, parts)]
    fn(*args, 0, n // parts)
    for f in futures:
        f.result()
