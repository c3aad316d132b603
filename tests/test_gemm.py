"""kernels/gemm.py's packed sgemm against a float64 product, on shapes around its tile (8 x 32) and block (K 256)
edges, and the order of its sums: a part of a product has the same bits as that part of the whole."""

from __future__ import annotations

import numpy as np
import pytest

from snnsim.kernels.gemm import KC, MR, NC, NR, gemm


@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (5, 7, 3), (MR, NR, KC), (MR + 1, NR + 1, KC + 1), (16, 1000, 144),
                                   (13, NC + 70, 2 * KC + 5), (64, 96, 0)])
def test_gemm_matches_float64_product(M, N, K):
    rng = np.random.default_rng(M * 1000 + N + K)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    c = np.full((M, N), np.nan, np.float32)
    gemm(M, N, K, a, b, 0, c)
    # float32 sums of K products: |error| <= K * eps * sum |a_ik b_kj| (a loose bound; typical errors are far less)
    bound = max(K, 1) * np.finfo(np.float32).eps * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
    assert np.all(np.abs(c - ref) <= bound + 1e-30)
    c0 = rng.standard_normal((M, N)).astype(np.float32)
    c1 = c0.copy()
    gemm(M, N, K, a, b, 1, c1)
    assert np.all(np.abs(c1 - (ref + c0)) <= bound + np.abs(c0) * np.finfo(np.float32).eps + 1e-30)


def test_a_part_of_a_product_has_the_same_bits():
    """Every element's sum runs in the same order whatever the shape around it (tiles, edges, column blocks)."""
    rng = np.random.default_rng(3)
    M, N, K = 21, NC + 45, KC + 100
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    whole = np.empty((M, N), np.float32)
    gemm(M, N, K, a, b, 0, whole)
    for r0, r1, c0, c1 in ((0, 5, 0, 33), (3, 21, 40, N), (7, 8, NC - 3, NC + 9)):
        part = np.empty((r1 - r0, c1 - c0), np.float32)
        gemm(r1 - r0, c1 - c0, K, np.ascontiguousarray(a[r0:r1]), np.ascontiguousarray(b[:, c0:c1]), 0, part)
        assert np.array_equal(part, whole[r0:r1, c0:c1])


def test_gemm_peak_benchmark_runs():
    """benchmarks/gemm_peak.py (docs/performance.md) runs and writes a row per shape."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import pandas as pd

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, str(root / "benchmarks" / "gemm_peak.py"), "--rounds", "1"],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(root)})
    assert r.returncode == 0, r.stderr[-2000:]
    df = pd.read_csv(root / "build" / "benchmarks" / "gemm_peak.csv")
    assert len(df) == 6 and (df["packed_gflops"] > 0).all() and (df["openblas_gflops"] > 0).all()
