"""The kernels' one level of parallelism: Python threads running compiled code with the GIL released.

A kernel that is worth splitting (about a millisecond of serial work or more; smaller regions lose on a
busy machine, where a split waits for its slowest thread) runs its compiled range function, declared
``nogil=True``, on disjoint ranges: one on the calling thread, the others on a pool of threads created
once. Inside, sgemm runs on one BLAS thread (kernels/blas.py), so there is never a second level.

Whole batches: the engine runs a batch's chunks of samples as parts (``parts``), the caller and the pool's
threads each taking the next chunk until none is left; inside a part every ``split`` runs serially on its
thread, so the two levels never nest (a part never waits for a pool thread that waits for it).

Why not Numba's ``parallel=True``: every parallel variant is a second compiled copy of a kernel, and its
compilation dominated the cold start of `snnsim run` (21 s of CPU time with empty caches, 12 s with the
parallel variants compiled only on demand); the pool reuses the serial function. Both wait passively.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numba

_pool: ThreadPoolExecutor | None = None
_local = threading.local()           # .serial: this thread runs a part of ``parts``; its splits stay on it


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(n_threads() - 1, thread_name_prefix="snnsim-kernel")
    return _pool


def n_threads() -> int:
    """Threads a split uses: NUMBA_NUM_THREADS (default: the machine's cores)."""
    return max(1, int(numba.config.NUMBA_NUM_THREADS))


def split(fn, n: int, *args) -> None:
    """fn(*args, lo, hi) over [0, n), in up to n_threads() contiguous parts run at the same time."""
    m = 1 if getattr(_local, "serial", False) else min(n, n_threads())
    if m <= 1:
        fn(*args, 0, n)
        return
    futures = [_get_pool().submit(fn, *args, k * n // m, (k + 1) * n // m) for k in range(1, m)]
    fn(*args, 0, n // m)
    for f in futures:
        f.result()


def parts(fn, n: int) -> list:
    """[fn(0), ..., fn(n - 1)], run by the calling thread and up to n_threads() - 1 pool threads, each taking
    the next index when it finishes one (a thread that gets less of a core does fewer). Kernels inside run
    their splits serially. Which thread ran a part never changes its result; the first exception, by index,
    is raised after every started part has finished. A pool busy with another caller's parts only means that
    this caller runs all of its own."""
    if n <= 1 or n_threads() <= 1 or getattr(_local, "serial", False):
        return [fn(i) for i in range(n)]
    results: list = [None] * n
    errors: list = [None] * n
    lock = threading.Lock()
    nxt = [0]

    def work():
        _local.serial = True
        try:
            while True:
                with lock:
                    i = nxt[0]
                    nxt[0] += 1
                if i >= n:
                    return
                try:
                    results[i] = fn(i)
                except BaseException as e:      # noqa: BLE001 -- re-raised by the caller below
                    errors[i] = e
                    with lock:
                        nxt[0] = n              # no new parts after a failure
        finally:
            _local.serial = False

    helpers = [_get_pool().submit(work) for _ in range(min(n, n_threads()) - 1)]
    work()
    for f in helpers:
        if not f.cancel():      # a helper still queued (the pool busy with another caller's work) is not waited for
            f.result()
    for e in errors:
        if e is not None:
            raise e
    return results
