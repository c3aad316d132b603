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
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "2")
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from background import alternate  # noqa: E402
from results_dir import results_dir  # noqa: E402

from snnsim.kernels.blas import one_blas_thread  # noqa: E402
from snnsim.kernels.conv import conv_out_size  # noqa: E402
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
        HO = conv_out_size(H, 3, s, 1)
        w = rng.standard_normal((O, C, 3, 3)).astype(np.float32)
        gy = rng.standard_normal((N, O, HO, HO)).astype(np.float32)
        xs = {d: (rng.random((N, C, H, H)) < d).astype(np.uint8) for d in DENSITIES}
        fns = {"dense": lambda: GC.conv2d_backward(xs[0.1], w, gy, s, s, 1, 1, 1, False, events=1 << 62)}
        for d in DENSITIES:
            fns[d] = lambda d=d: GC.conv2d_backward(xs[d], w, gy, s, s, 1, 1, 1, False, events=0)
        with one_blas_thread():
            times = alternate(fns, args.rounds)
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
    fit = fit_prices(df)
    print("least-squares prices (ns; the GW_* constants of snnsim/train/grads/conv.py): "
          + ", ".join(f"{k} {v:.3g}" for k, v in fit.items()))
    saved = {k: getattr(GC, k) for k in fit}
    try:
        for k, v in fit.items():
            setattr(GC, k, v)
        refit = [GC.gw_event_limit(N, (C, H, H), (O,) + (conv_out_size(H, 3, s, 1),) * 2, (3, 3), (s, s))
                 / (N * C * H * H) for C, O, H, s in SHAPES]
    finally:
        for k, v in saved.items():
            setattr(GC, k, v)
    print("crossovers with these prices: " + ", ".join(f"{r['shape']} {c:.3f}" for r, c in zip(rows, refit)))


def fit_prices(df) -> dict:
    """The rule's prices fitted to a run: the dense form's time per multiply-add (stride 1 and strided) and the
    event form's per output-gradient element, per event and tap checked, and per multiply-add of the taps that
    reach an output (nonnegative least squares over every shape and density, each time relative to itself so
    that small and large layers weigh alike)."""
    from scipy.optimize import nnls

    dense_a, dense_b, ev_a, ev_b = [], [], [], []
    for (C, O, H, s), row in zip(SHAPES, df.to_dict("records")):
        HO = conv_out_size(H, 3, s, 1)
        macs = N * O * HO * HO * C * 9
        dense_a.append([macs * (s == 1), macs * (s != 1)])
        dense_b.append(row["dense_ms"] * 1e6)
        for d in DENSITIES:
            events = d * N * C * H * H
            t = row[f"events_{int(d * 100)}pct_ms"] * 1e6
            ev_a.append([N * O * HO * HO / t, events * 9 / t, events * 9 / (s * s) * O / t])
            ev_b.append(1.0)
    dense_a, dense_b = np.array(dense_a, float), np.array(dense_b, float)
    dense = nnls(dense_a / dense_b[:, None], np.ones(len(dense_b)))[0]
    ev = nnls(np.array(ev_a), np.array(ev_b))[0]
    return {"GW_DENSE_NS": dense[0], "GW_DENSE_STRIDED_NS": dense[1], "GW_GY_NS": ev[0], "GW_TAP_NS": ev[1],
            "GW_ADD_NS": ev[2]}


if __name__ == "__main__":
    main()
