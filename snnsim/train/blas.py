"""BLAS threads while training.

Training alternates BLAS calls (sgemm in linear and conv layers) with Numba parallel loops (neurons, batch
norm, im2row) many times per step. On the 2-core target, OpenBLAS worker threads keep spinning after each
call and take a core from the Numba threads that run next (and Numba's OpenMP threads do the same to BLAS):
measured on mnist_conv (batch 64, T=4) a step took 170-250 ms with single-threaded BLAS against 270-1440 ms
with two BLAS threads. So a training step runs with BLAS limited to one thread, the same rule as inference
(snnsim/kernels/blas.py: the only threads are Numba's).
"""

from __future__ import annotations

from ..kernels.blas import one_blas_thread


def single_threaded_blas():
    return one_blas_thread()
