"""The sgemm that the dense kernels call, and the one rule for threads around it.

Numba's np.dot calls SciPy's OpenBLAS, whose single-threaded sgemm does not run concurrently from two
threads (two calls from a 2-thread Numba prange took as long as the same calls in a row), so with it a dense
layer could use both cores only through OpenBLAS's own threads. Those threads stall for 20-90 ms whenever
anything else runs on the machine (docs/performance.md). NumPy's OpenBLAS does run concurrent
single-threaded calls side by side (2 calls: 12.7 ms in a row, 5.6 ms from two threads), so the kernels
call it (its CBLAS ``sgemm``, registered with LLVM under a fixed name so compiled code stays cacheable)
and get their parallelism from their own threads (kernels/threads.py): one level of threads, with one BLAS
thread inside each.

Importing this module therefore sets every loaded BLAS to one thread for the process (threadpoolctl), once:
a dense kernel called while OpenBLAS had two threads measured 10-20x slower (OpenBLAS's per-calling-thread
setting, openblas_set_num_threads_local, did not help), and OpenBLAS's last bits depend on its thread count,
so one setting for every caller keeps results reproducible. A user who wants threaded BLAS for their own
NumPy work can raise it again (threadpoolctl); ``one_blas_thread()`` (training steps) restores one thread
for its duration. When NumPy's BLAS is not OpenBLAS (a NumPy built against MKL or Accelerate), the symbol
is bound to a small compiled fallback (np.dot): correct, only slower.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os

import llvmlite.binding as llvm
import numpy as np
from numba import njit, types

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
_SYMBOL = "snnsim_cblas_sgemm"
_i32, _i64, _f32, _ptr = types.int32, types.int64, types.float32, types.voidptr
_SIG = types.void(_i32, _i32, _i32, _i64, _i64, _i64, _f32, _ptr, _i64, _ptr, _i64, _f32, _ptr, _i64)
_cblas_sgemm = types.ExternalFunction(_SYMBOL, _SIG)
# y = A @ x for one sample: OpenBLAS's sgemm with M = 1 measured 4-5x slower than its sgemv
_GEMV_SYMBOL = "snnsim_cblas_sgemv"
_GEMV_SIG = types.void(_i32, _i32, _i64, _i64, _f32, _ptr, _i64, _ptr, _i64, _f32, _ptr, _i64)
_cblas_sgemv = types.ExternalFunction(_GEMV_SYMBOL, _GEMV_SIG)


def _numpy_openblas():
    """(path, address of cblas_sgemm, of cblas_sgemv) of the OpenBLAS (64-bit integers) that NumPy's wheels
    bundle, or None."""
    libdir = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libdir, "libscipy_openblas64_*"))):
        try:
            lib = ctypes.CDLL(path)
            fns = lib.scipy_cblas_sgemm64_, lib.scipy_cblas_sgemv64_
        except (OSError, AttributeError):
            continue
        return (path,) + tuple(ctypes.cast(fn, ctypes.c_void_p).value for fn in fns)
    return None


def _fallback_address() -> int:
    from numba import carray, cfunc     # here: importing them loads cffi's C parser (~0.2 s of start-up)

    # Only the forms the kernels use: row-major, A not transposed, contiguous rows (lda == K, ldb == N or K
    # for a transposed B), rows of C ldc apart.
    @cfunc(_SIG, cache=True)
    def sgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        A = carray(a, (m, k), np.float32)
        C = carray(c, (m, ldc), np.float32)[:, :n] if m > 0 else carray(c, (0, n), np.float32)
        prod = np.dot(A, carray(b, (n, k), np.float32).T) if tb == TRANS else np.dot(A, carray(b, (k, n), np.float32))
        if beta == 0:
            C[:] = alpha * prod
        else:
            C[:] = alpha * prod + beta * C

    @cfunc(_GEMV_SIG, cache=True)
    def sgemv(order, ta, m, n, alpha, a, lda, x, incx, beta, y, incy):
        y_ = carray(y, (m,), np.float32)
        prod = np.dot(carray(a, (m, n), np.float32), carray(x, (n,), np.float32))
        y_[:] = alpha * prod if beta == 0 else alpha * prod + beta * y_

    return sgemm.address, sgemv.address


def _answer_numba_blas_probe():
    """Import Numba's array maths without its SciPy probe. ``numba.np.arraymath`` (imported when the first
    compiled function loads) imports scipy.linalg only to set a flag saying np.dot could work: 0.13-0.2 s, a
    fifth of a warm ``snnsim run``. The kernels call NumPy's OpenBLAS (above), and what does use SciPy's BLAS
    (np.dot, in the fallback and the training kernels) still checks for it when it compiles
    (``numba.np.linalg.ensure_blas``, restored here); SciPy is a dependency, so the answer is true."""
    import sys

    if "numba.np.arraymath" in sys.modules:
        return
    import numba.np.linalg as linalg

    probe = linalg.ensure_blas
    linalg.ensure_blas = lambda: None
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        linalg.ensure_blas = probe


_answer_numba_blas_probe()
_found = _numpy_openblas()
BLAS_LIBRARY = _found[0] if _found else "fallback (np.dot)"
_addresses = _found[1:] if _found else _fallback_address()
llvm.add_symbol(_SYMBOL, _addresses[0])
llvm.add_symbol(_GEMV_SYMBOL, _addresses[1])

# The wrappers are inlined into every kernel that calls them (inline="always"): small, and compiled
# separately each would be another function (and a specialisation per literal flag) to compile on a
# first run.


@njit(cache=True, inline="always")
def sgemm_ldc(M, N, K, a, b, b_transposed, beta, c, ldc):
    """c[M, N] = a[M, K] @ b (+ beta * c), the rows of c ldc elements apart: b is [K, N], or [N, K] used
    transposed. Flat or 2-D C-contiguous float32 arrays (slices of flat buffers allowed); the caller checks
    sizes."""
    if M == 0 or N == 0:
        return
    if K == 0:                                  # BLAS rejects lda = 0; the product is empty
        cf = c.reshape(c.size)
        for i in range(M):
            for j in range(N):
                cf[i * ldc + j] = np.float32(0.0) if beta == 0 else np.float32(beta) * cf[i * ldc + j]
        return
    ldb = K if b_transposed else N
    _cblas_sgemm(np.int32(ROW_MAJOR), np.int32(NO_TRANS), np.int32(TRANS if b_transposed else NO_TRANS),
                 M, N, K, np.float32(1.0), a.ctypes, K, b.ctypes, ldb, np.float32(beta), c.ctypes, ldc)


@njit(cache=True, inline="always")
def sgemv(M, N, a, x, y):
    """y[M] = a[M, N] @ x[N] (contiguous float32)."""
    if M == 0:
        return
    if N == 0:
        y[:M] = 0.0
        return
    _cblas_sgemv(np.int32(ROW_MAJOR), np.int32(NO_TRANS), M, N, np.float32(1.0), a.ctypes, N, x.ctypes, 1,
                 np.float32(0.0), y.ctypes, 1)


@njit(cache=True, inline="always")
def sgemm(M, N, K, a, b, b_transposed, beta, c):
    """c[M, N] = a[M, K] @ b (+ beta * c), c contiguous (see sgemm_ldc)."""
    sgemm_ldc(M, N, K, a, b, b_transposed, beta, c, N)


def _blas_libraries():
    """threadpoolctl's handle on every BLAS library loaded now, or None without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:                         # pragma: no cover - threadpoolctl is a dependency
        return None
    return ThreadpoolController().select(user_api="blas")


def _one_thread_everywhere():
    """Every BLAS library loaded now at one thread, for the rest of the process: set once, here, so that
    every caller of the kernels (the engine, training, block inversion, a user's own loop) gets the same
    threads and the same float32 results (OpenBLAS's last bits depend on its thread count)."""
    libs = _blas_libraries()
    if libs is not None:
        libs.limit(limits=1)


_one_thread_everywhere()
_training_libs = None


@contextlib.contextmanager
def one_blas_thread():
    """Every BLAS at one thread for the duration (threadpoolctl), including SciPy's, which Numba's np.dot
    calls (the training kernels) and which is loaded only when they are: a training step enters this once."""
    global _training_libs
    if _training_libs is None:
        import scipy.linalg.cython_blas  # noqa: F401  (load it first, so that it is limited too)
        _training_libs = _blas_libraries()
    if _training_libs is None or all(info["num_threads"] == 1 for info in _training_libs.info()):
        yield
        return
    with _training_libs.limit(limits=1):
        yield
