"""The training conv's weight gradient in its two forms, against input density: what the training rule
(``snnsim.train.grads.conv.gw_events_cheaper``) is fitted to.

    python benchmarks/train_conv_forms.py [--rounds R]

For the SEW-ResNet's conv shapes at batch 128 (32 images x T=4, as a training step sees them), times
``conv2d_backward`` without the input gradient in the dense form (im2col + sgemm) and from the input's events, at
2-30 % input density (random binary inputs, random output gradients), with the training threads (2); median of
alternating rounds. Prints the table, the measured crossover density of each shape beside the rule's, and writes
build/benchmarks/train_conv_forms.csv (benchmarks/results/ with --update-results).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "2")
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_dir import results_dir  # noqa: E402

from snnsim.kernels.blas import one_blas_thread  # noqa: E402
from snnsim.train.grads import conv as GC  # noqa: E402

# (C, O, H, stride) of the SEW-ResNet's 3x3 convs, and two of another width
SHAPES = [(16, 16, 32, 1), (16, 32, 32, 2), (16, 32, 32, 1), (32, 32, 16, 1), (32, 64, 16, 2), (64, 64, 8, 1)]
DENSITIES = (0.02, 0.05, 0.1, 0.2, 0.3)
N = 128


def crossover(dens, event_ms, dense_ms):
    """The density where the event form's time (linear between measured points) reaches the dense form's."""
    for (d0, e0), (d1, e1) in zip(zip(dens, event_ms), zip(dens[1:], event_ms[1:])):
        if e0 <= dense_ms <= e1:
            return d0 + (d1 - d0) * (dense_ms - e0) / (e1 - e0)
    return float("nan") if event_ms[0] > dense_ms else float("inf")


def main():
    import pandas as pd

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for C, O, H, s in SHAPES:
        HO = (H + 2 - 3) // s + 1
        w = rng.standard_normal((O, C, 3, 3)).astype(np.float32)
        gy = rng.standard_normal((N, O, HO, HO)).astype(np.float32)
        xs = {d: (rng.random((N, C, H, H)) < d).astype(np.uint8) for d in DENSITIES}
        fns = {"dense": lambda: GC.conv2d_backward(xs[0.1], w, gy, s, s, 1, 1, 1, False, events=1 << 62)}
        for d in DENSITIES:
            fns[d] = lambda d=d: GC.conv2d_backward(xs[d], w, gy, s, s, 1, 1, 1, False, events=0)
        times = {k: [] for k in fns}
        with one_blas_thread():
            for f in fns.values():
                f()
            for _ in range(args.rounds):
                for k, f in fns.items():
                    t0 = time.perf_counter()
                    f()
                    times[k].append(time.perf_counter() - t0)
        ms = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
        ev = [ms[d] for d in DENSITIES]
        rule = GC.gw_event_limit(N, (C, H, H), gy.shape[1:], (3, 3), (s, s)) / (N * C * H * H)
        rows.append(dict(shape=f"{C}->{O} 3x3 s{s} @{H}", dense_ms=ms["dense"],
                         **{f"events_{int(d * 100)}pct_ms": m for d, m in zip(DENSITIES, ev)},
                         measured_crossover=crossover(DENSITIES, ev, ms["dense"]), rule_crossover=rule,
                         load_avg=round(os.getloadavg()[0], 2)))
    df = pd.DataFrame(rows)
    df.to_csv(results_dir() / "train_conv_forms.csv", index=False)
    print(f"Training conv weight gradient, batch {N}, ms (median of {args.rounds} alternating rounds)")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3g}", line_width=250))


if __name__ == "__main__":
    main()
