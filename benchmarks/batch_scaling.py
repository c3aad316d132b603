"""Time per sample against batch size: the three shipped networks at T=4 over the same 256 real inputs, run in
batches of 1, 4, 16, 64 and 256 (2 threads, the default kernel-form rule), median of alternating rounds.

    python benchmarks/batch_scaling.py [--rounds 5]

Per-sample time should fall as the per-call overhead is shared and then stay flat: a rise at large batches
means the working set has left the caches. Prints the table and writes build/benchmarks/batch_scaling.csv
(benchmarks/results/ with --update-results).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from results_dir import results_dir  # noqa: E402

import snnsim  # noqa: E402
from snnsim.data import load_dataset  # noqa: E402

NETWORKS = ("digits_mlp", "mnist_conv", "cifar_sew_resnet")
BATCHES = (1, 4, 16, 64, 256)
N = 256


def inputs(name: str) -> np.ndarray:
    if name == "digits_mlp":
        return np.ascontiguousarray(load_dataset("digits").x[:N], np.float32)
    x = load_dataset("mnist").x[:N].reshape(-1, 1, 28, 28)
    if name == "cifar_sew_resnet":           # MNIST padded to the ResNet's 3x32x32 input
        x = np.repeat(np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2))), 3, axis=1)
    return np.ascontiguousarray(x, np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rows = []
    for name in NETWORKS:
        model = snnsim.load(ROOT / "networks" / f"{name}.yaml", ROOT / "networks" / f"{name}.npz")
        x = inputs(name).reshape((N,) + model.network.spec.input_shape)
        model.run(x[:64], timesteps=4)                       # compiled code and buffers
        times = {b: [] for b in BATCHES}
        for _ in range(args.rounds):                         # alternating: every batch size once per round
            for b in BATCHES:
                t0 = time.perf_counter()
                model.run(x, timesteps=4, batch_size=b)
                times[b].append((time.perf_counter() - t0) / N * 1e3)
        for b in BATCHES:
            rows.append({"network": name, "T": 4, "batch": b, "ms_per_sample": float(np.median(times[b])),
                         "load_avg": round(os.getloadavg()[0], 2)})
    df = pd.DataFrame(rows)
    print(df.pivot(index="network", columns="batch", values="ms_per_sample").to_string(float_format=lambda v: f"{v:.3g}"))
    out = results_dir()
    df.to_csv(out / "batch_scaling.csv", index=False)
    print(f"ms per sample, T=4, {N} inputs, median of {args.rounds} rounds; load average {os.getloadavg()[0]:.2f}; "
          f"wrote {out / 'batch_scaling.csv'}")


if __name__ == "__main__":
    main()
