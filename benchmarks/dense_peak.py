"""Dense kernels against the machine's peak: snnsim conv/linear vs NumPy sgemm vs torch, GFLOP/s.

    python benchmarks/dense_peak.py [--background-load N] [--rounds R] [--quick]

For each layer shape (the SEW-ResNet's 3x3 convs, the T-RevSNN's depthwise and pointwise convs, the conv
net's linear layer) and batch size, times in alternating rounds, in one process: snnsim's dense kernel
(as `engine.run` calls it: one BLAS thread, Numba's threads around it), NumPy sgemm of the same size
with one and with two BLAS threads, and torch (conv2d / linear, 2 threads). The two-thread sgemm runs in a
child process of its own, once per round, after the alternating rounds of the other three: once OpenBLAS has
started its thread pool in a process, single-threaded calls from two threads of that process no longer run side
by side (measured: snnsim's split 3x3 conv at batch 64 fell from 186 to 93 GFLOP/s after one 2-thread np.dot in
the same process, and stayed there), so measuring it in the parent would slow every contender after it; and a
child started between the rounds disturbed the rounds after it (the 8x8 conv at batch 64 ran on 1.2-1.4 cores,
snnsim and torch alike: 288-296 and 304 GFLOP/s against 427 and 358 without the child, 2026-11-28 08:15 UTC).
Prints GFLOP/s (median of
the rounds; the ratios also for the least disturbed round), GFLOP per second of process CPU time (all threads:
what a kernel does with the cores it actually got, which on a shared machine wall time does not tell), the
load average, and which OpenBLAS kernel ran (threadpoolctl), and writes
build/benchmarks/dense_peak.csv (dense_peak_load<N>.csv under --background-load N).

--background-load N starts N processes that spin on a core each for the duration (benchmarks/background.py).
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE in the environment choose the OpenBLAS kernel; this script does not
change them (to measure another kernel, set them on its command line).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")     # before any OpenMP runtime loads
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
from results_dir import results_dir  # noqa: E402
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from background import add_load_option, background_load, machine_load  # noqa: E402

from snnsim.kernels import conv2d_dense, linear_dense  # noqa: E402
from snnsim.kernels.blas import BLAS_LIBRARY, one_blas_thread  # noqa: E402

# name, kind, (C, O, K, H, stride, pad, groups) for conv, (I, O) for linear
SHAPES = [
    ("resnet 3x3 64->64 @16", "conv", (64, 64, 3, 16, 1, 1, 1)),
    ("resnet 3x3 64->64 @8", "conv", (64, 64, 3, 8, 1, 1, 1)),
    ("resnet 3x3 32->32 @16", "conv", (32, 32, 3, 16, 1, 1, 1)),
    ("trev dw 3x3 64 @16", "conv", (64, 64, 3, 16, 1, 1, 64)),
    ("trev pw 1x1 64->128 @16", "conv", (64, 128, 1, 16, 1, 0, 1)),
    ("linear 1568->128", "linear", (1568, 128)),
]


def flops_of(kind, p, B):
    if kind == "linear":
        return 2 * B * p[0] * p[1]
    C, O, K, H, s, pad, g = p
    HO = (H + 2 * pad - K) // s + 1
    return 2 * B * O * HO * HO * (C // g) * K * K


def gemm_shape(kind, p, B):
    """(M, K, N) of the sgemm with the same multiply-adds (for depthwise: the same FLOPs as one product)."""
    if kind == "linear":
        return B, p[0], p[1]
    C, O, K, H, s, pad, g = p
    HO = (H + 2 * pad - K) // s + 1
    return O, (C // g) * K * K, B * HO * HO


def cases(kind, p, B, rng):
    import torch

    if kind == "linear":
        x = (rng.random((B, p[0])) < 0.2).astype(np.float32)
        w = rng.standard_normal((p[1], p[0])).astype(np.float32)
        b = np.zeros(p[1], np.float32)
        xt, wt, bt = map(torch.from_numpy, (x, w, b))
        return (lambda: linear_dense(x, w, b)), (lambda: torch.nn.functional.linear(xt, wt, bt))
    C, O, K, H, s, pad, g = p
    x = (rng.random((B, C, H, H)) < 0.2).astype(np.float32)
    w = rng.standard_normal((O, C // g, K, K)).astype(np.float32)
    b = np.zeros(0, np.float32)
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    return ((lambda: conv2d_dense(x, w, b, s, s, pad, pad, g)),
            (lambda: torch.nn.functional.conv2d(xt, wt, None, s, pad, 1, g)))


# Work per timing: calls are repeated for at least this long. A single call of a few milliseconds right after the
# machine idled (this script's own child process, or any pause) also times waking the second core and its
# clock up: on this machine it ran the split 3x3 conv at batch 64 at one core's speed and torch's conv at two
# thirds of its speed; the next calls do not pay it, and a network run calls its kernels back to back.
MIN_SECONDS = 0.05


def timed(fn) -> tuple[float, float]:
    """(wall, process CPU) seconds per call of fn, over as many calls as fill MIN_SECONDS (two calls first)."""
    fn()
    t0 = time.perf_counter()
    fn()
    reps = max(3, int(MIN_SECONDS / max(time.perf_counter() - t0, 1e-6)))
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps, (time.process_time() - c0) / reps


def sgemm_2t_child(M: int, K: int, N: int) -> tuple[float, float]:
    """(wall, CPU) seconds per call of NumPy's sgemm [M, K] x [K, N] with two BLAS threads, in a new process."""
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--sgemm-2t", f"{M},{K},{N}"], check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[-2]), float(out[-1])


def _sgemm_2t(shape: str) -> None:
    from threadpoolctl import threadpool_limits

    M, K, N = map(int, shape.split(","))
    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    with threadpool_limits(2, "blas"):
        print(*timed(lambda: np.dot(a, b)))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--sgemm-2t":
        return _sgemm_2t(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_option(ap)
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds (median reported)")
    ap.add_argument("--quick", action="store_true", help="batch 64 only, 3 rounds")
    args = ap.parse_args()
    import pandas as pd
    import torch
    from threadpoolctl import threadpool_info

    torch.set_num_threads(2)
    rounds = 3 if args.quick else args.rounds
    blas = [d for d in threadpool_info() if d["user_api"] == "blas"]
    kernel = ", ".join(sorted({f"{d['internal_api']} {d.get('architecture')}" for d in blas}))
    rng = np.random.default_rng(0)
    rows = []
    with background_load(args.background_load):
        for name, kind, p in SHAPES:
            for B in ((64,) if args.quick else (1, 64)):
                ours, theirs = cases(kind, p, B, rng)
                M, Kd, N = gemm_shape(kind, p, B)
                a = rng.standard_normal((M, Kd)).astype(np.float32)
                bm = rng.standard_normal((Kd, N)).astype(np.float32)
                fns = {"snnsim": ours, "torch": theirs, "sgemm_1t": lambda: np.dot(a, bm)}
                times = {k: [] for k in list(fns) + ["sgemm_2t"]}
                cpu = {k: [] for k in times}      # process CPU seconds (every thread) per call
                for _ in range(rounds):
                    for k, fn in fns.items():
                        with torch.no_grad(), one_blas_thread():
                            wall, used = timed(fn)
                            times[k].append(wall)
                            cpu[k].append(used)
                for _ in range(rounds):
                    wall, used = sgemm_2t_child(M, Kd, N)
                    times["sgemm_2t"].append(wall)
                    cpu["sgemm_2t"].append(used)
                fl = flops_of(kind, p, B)
                g = {k: fl / np.median(v) / 1e9 for k, v in times.items()}
                top = {k: fl / np.min(v) / 1e9 for k, v in times.items()}     # the least disturbed round
                per_cpu = {k: fl / np.median(v) / 1e9 for k, v in cpu.items()}
                rows.append(dict(layer=name, batch=B, snnsim_gflops=g["snnsim"], torch_gflops=g["torch"],
                                 sgemm_1t_gflops=g["sgemm_1t"], sgemm_2t_gflops=g["sgemm_2t"],
                                 snnsim_vs_best_sgemm=g["snnsim"] / max(g["sgemm_1t"], g["sgemm_2t"]),
                                 snnsim_vs_torch=g["snnsim"] / g["torch"],
                                 best_round_snnsim_vs_sgemm=top["snnsim"] / max(top["sgemm_1t"], top["sgemm_2t"]),
                                 best_round_snnsim_vs_torch=top["snnsim"] / top["torch"],
                                 snnsim_gflops_per_cpu=per_cpu["snnsim"], torch_gflops_per_cpu=per_cpu["torch"],
                                 sgemm_1t_gflops_per_cpu=per_cpu["sgemm_1t"],
                                 snnsim_us_per_sample=np.median(times["snnsim"]) / B * 1e6,
                                 background_load=args.background_load, load_avg=machine_load()))
    df = pd.DataFrame(rows)
    out = results_dir()
    out.mkdir(parents=True, exist_ok=True)
    suffix = f"_load{args.background_load}" if args.background_load else ""
    df.to_csv(out / f"dense_peak{suffix}.csv", index=False)
    pd.set_option("display.width", 250)
    print(f"Dense kernels, GFLOP/s (median of {rounds} alternating rounds); {args.background_load} spinning "
          f"background processes; load average at the end {machine_load():.2f}")
    print(f"BLAS: {kernel}; snnsim calls {BLAS_LIBRARY.split('/')[-1]}; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    print(df.drop(columns=["background_load"]).to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
