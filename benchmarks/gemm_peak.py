"""The packed sgemm of snnsim/kernels/gemm.py against NumPy's OpenBLAS sgemm, one thread each.

    python benchmarks/gemm_peak.py [--rounds R]

Shapes of the products a SEW-ResNet training step makes at batch 32, T=4 (the input gradient of its stride-1 3x3
convs as [out channels x (channels * 9)] @ [(channels * 9) x columns], and a strided conv's column product), plus
a square one; random float32 inputs; median of alternating rounds; GFLOP/s = 2 M N K / time. OpenBLAS runs with
whatever kernel it picks for this CPU or the one ``OPENBLAS_CORETYPE`` names (printed). Writes
build/benchmarks/gemm_peak.csv (benchmarks/results/ with --update-results).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from background import alternate  # noqa: E402
from results_dir import results_dir  # noqa: E402

from snnsim.kernels import gemm as packed  # noqa: E402
from snnsim.kernels.blas import one_blas_thread, sgemm  # noqa: E402

SHAPES = [(16, 8192, 144), (32, 4096, 288), (64, 1024, 576), (64, 4096, 576), (144, 8192, 32), (512, 512, 512)]


def main():
    import pandas as pd
    from numba import njit

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()

    @njit
    def ours(M, N, K, a, b, c):
        packed.gemm(M, N, K, a, b, 0, c)

    @njit
    def openblas(M, N, K, a, b, c):
        sgemm(M, N, K, a, b, False, 0.0, c)

    rng = np.random.default_rng(0)
    rows = []
    with one_blas_thread():
        for M, N, K in SHAPES:
            a = rng.standard_normal((M, K)).astype(np.float32)
            b = rng.standard_normal((K, N)).astype(np.float32)
            c = np.empty((M, N), np.float32)
            times = alternate({"packed": lambda: ours(M, N, K, a, b, c),
                               "openblas": lambda: openblas(M, N, K, a, b, c)}, args.rounds)
            gf = {k: 2 * M * N * K / float(np.median(v)) / 1e9 for k, v in times.items()}
            rows.append(dict(M=M, N=N, K=K, packed_gflops=gf["packed"], openblas_gflops=gf["openblas"],
                             packed_over_openblas=gf["packed"] / gf["openblas"], packed_used_by_training=packed.USE,
                             openblas_coretype=os.environ.get("OPENBLAS_CORETYPE", "(auto)"),
                             load_avg=round(os.getloadavg()[0], 2)))
    df = pd.DataFrame(rows)
    df.to_csv(results_dir() / "gemm_peak.csv", index=False)
    print(f"sgemm on one thread, GFLOP/s (median of {args.rounds} alternating rounds); "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(auto)')}")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
