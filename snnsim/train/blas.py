"""BLAS threads while training.

Training alternates BLAS calls (sgemm in linear and conv layers) with Numba parallel loops (neurons, batch
norm, im2row) many times per step. On the 2-core target, OpenBLAS worker threads keep spinning after each
call and take a core from the Numba threads that run next (and Numba's OpenMP threads do the same to BLAS):
measured on mnist_conv (batch 64, T=4) a step took 170-250 ms with single-threaded BLAS against 270-1440 ms
with two BLAS threads. So a training step runs with BLAS limited to one thread (through threadpoolctl, which
scikit-learn installs; without it nothing changes). Splitting a batch between two threads that each call
single-threaded sgemm did not help (the calls did not overlap), so the conv kernels call sgemm serially.
"""

from __future__ import annotations

import contextlib

_controller = None


def single_threaded_blas():
    global _controller
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:                     # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")
