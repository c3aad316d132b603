"""Micro-benchmark: dense vs event-driven layer kernels (and torch CPU, if importable).

    python benchmarks/kernels_dense_vs_event.py [--quick] [--threads N] [--no-torch]

Times warm kernels (median and min of repeats) on realistic SNN layer shapes at
batch 1 and 64 and input densities 1-50 %, prints a table and writes
build/benchmarks/kernels_dense_vs_event.csv (kernels_dense_vs_event_t<N>.csv for
--threads N other than 2). The last lines report, per layer, the density where
event-driven stops winning; DEFAULT_EVENT_THRESHOLD in snnsim/kernels/__init__.py
is chosen from them. On a busy 2-core machine the 2-thread medians mostly measure
scheduler stalls (whole 4 ms ticks); the min columns and --threads 1 do not.
"""
import argparse
import os
import sys


def parse_args():
    ap = argparse.ArgumentParser(description="Dense vs event-driven layer kernels (and torch CPU).")
    ap.add_argument("--quick", action="store_true", help="fewer repeats, no batch-64 CIFAR row")
    ap.add_argument("--no-torch", action="store_true", help="skip the torch comparison")
    ap.add_argument("--threads", type=int, default=2,
                    help="threads for numba, BLAS and torch (default 2, the target machine); "
                         "1 gives numbers that a busy machine disturbs much less")
    return ap.parse_args()


ARGS = parse_args()
# The thread budget must be fixed before numba / BLAS / torch start their pools.
os.environ["NUMBA_NUM_THREADS"] = str(ARGS.threads)
os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)

import csv  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
from results_dir import results_dir  # noqa: E402
sys.path.insert(0, str(ROOT))

from snnsim.kernels import (  # noqa: E402
    DEFAULT_EVENT_THRESHOLD,
    conv2d_dense,
    conv2d_event,
    linear_dense,
    linear_event,
    prepare_conv_event,
    prepare_linear_event,
)

# name, kind, params (conv: C, O, K, H, stride, pad, groups; linear: I, O)
LAYERS = [
    ("mnist_conv16-32_3x3_14", "conv", (16, 32, 3, 14, 1, 1, 1)),
    ("cifar_conv64-64_3x3_32", "conv", (64, 64, 3, 32, 1, 1, 1)),
    ("dwconv64_5x5_28", "conv", (64, 64, 5, 28, 1, 2, 64)),
    # the SEW-ResNet's layers (cifar_sew_resnet.yaml): few channels, stride 2, a 1x1 shortcut
    ("resnet_conv16-16_3x3_32", "conv", (16, 16, 3, 32, 1, 1, 1)),
    ("resnet_conv16-32_3x3_s2_32", "conv", (16, 32, 3, 32, 2, 1, 1)),
    ("resnet_conv32-32_3x3_16", "conv", (32, 32, 3, 16, 1, 1, 1)),
    ("resnet_conv32-64_3x3_s2_16", "conv", (32, 64, 3, 16, 2, 1, 1)),
    ("resnet_conv64-64_3x3_8", "conv", (64, 64, 3, 8, 1, 1, 1)),
    ("resnet_down16-32_1x1_s2_32", "conv", (16, 32, 1, 32, 2, 0, 1)),
    ("linear1568-128", "linear", (1568, 128)),
]
BATCHES = [1, 64]
DENSITIES = [0.01, 0.02, 0.05, 0.10, 0.20, 0.50]
RESULTS = results_dir()


def timeit(fn, repeats, min_time=0.0):
    """Median and min wall time (ms) of warm calls."""
    fn()
    fn()
    ts = []
    t_start = time.perf_counter()
    while len(ts) < repeats or (time.perf_counter() - t_start < min_time and len(ts) < 20 * repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(ts)), 1e3 * float(np.min(ts))


def make_case(kind, params, B, dens, rng):
    if kind == "conv":
        C, O, K, H, s, p, g = params
        x = (rng.random((B, C, H, H)) < dens).astype(np.float32)
        w = (rng.standard_normal((O, C // g, K, K)) * 0.1).astype(np.float32)
    else:
        I, O = params
        x = (rng.random((B, I)) < dens).astype(np.float32)
        w = (rng.standard_normal((O, I)) * 0.1).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32)
    return x, w, b


def snnsim_fns(kind, params, x, w, b):
    if kind == "conv":
        C, O, K, H, s, p, g = params
        wev = prepare_conv_event(w, g)
        dense = lambda: conv2d_dense(x, w, b, s, s, p, p, g)  # noqa: E731
        event = lambda: conv2d_event(x, wev, b, O, K, K, s, s, p, p, g)  # noqa: E731
    else:
        wt = prepare_linear_event(w)
        dense = lambda: linear_dense(x, w, b)  # noqa: E731
        event = lambda: linear_event(x, wt, b)  # noqa: E731
    return dense, event


def torch_fn(torch, kind, params, x, w, b):
    F = torch.nn.functional
    tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
    if kind == "conv":
        C, O, K, H, s, p, g = params
        fn = lambda: F.conv2d(tx, tw, tb, s, p, 1, g)  # noqa: E731
    else:
        fn = lambda: F.linear(tx, tw, tb)  # noqa: E731

    def run():
        with torch.no_grad():
            return fn()
    return run


def crossover(rows, stat="min"):
    """Density where event time == dense time, interpolated in log-density
    between the last density where event wins and the first where it loses.
    stat: 'min' (best of repeats) or 'med' (median). Returns (value, note)."""
    rows = sorted(rows, key=lambda r: r["density"])
    if stat == "min":
        ratio = [r["event_min_ms"] / r["dense_min_ms"] for r in rows]
    else:
        ratio = [r["event_ms"] / r["dense_ms"] for r in rows]
    if ratio[0] >= 1.0:
        return rows[0]["density"], "dense wins everywhere (<=)"
    for k in range(1, len(rows)):
        if ratio[k] >= 1.0:
            d0, d1 = np.log(rows[k - 1]["density"]), np.log(rows[k]["density"])
            r0, r1 = np.log(ratio[k - 1]), np.log(ratio[k])
            return float(np.exp(d0 + (d1 - d0) * (0.0 - r0) / (r1 - r0))), "interpolated"
    return rows[-1]["density"], "event wins everywhere (>=)"


def main():
    args = ARGS
    csv_path = RESULTS / ("kernels_dense_vs_event.csv" if args.threads == 2
                          else f"kernels_dense_vs_event_t{args.threads}.csv")
    repeats = 5 if args.quick else 15
    min_time = 0.05 if args.quick else 0.3

    torch = None
    if not args.no_torch:
        try:
            import torch  # noqa: F811
            torch.set_num_threads(args.threads)
        except ImportError:
            torch = None

    import numba
    load0 = os.getloadavg()[0]
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = numba.config.THREADING_LAYER
    print(f"numba {numba.__version__} threads={numba.get_num_threads()} layer={layer}; "
          f"torch {torch.__version__ if torch else 'n/a'}; repeats={repeats}; load average {load0:.2f}", flush=True)
    if load0 > 1.0:
        # On 2 cores any other busy process stalls 2-thread regions by whole
        # scheduler ticks (4 ms): medians then measure the neighbours, not us.
        print("WARNING: the machine is busy; medians will be inflated, the min columns are more reliable")

    rng = np.random.default_rng(0)
    cases = []
    for name, kind, params in LAYERS:
        for B in BATCHES:
            if args.quick and B > 1 and name.startswith("cifar"):
                continue  # the slowest row; the full run covers it
            for dens in DENSITIES:
                cases.append((name, kind, params, B, dens, make_case(kind, params, B, dens, rng)))

    # Phase 1: snnsim kernels. Phase 2: torch. Keeping the two runtimes' thread
    # pools apart avoids measuring one pool's spinning workers against the other.
    rows = []
    for name, kind, params, B, dens, (x, w, b) in cases:
        dense, event = snnsim_fns(kind, params, x, w, b)
        d_med, d_min = timeit(dense, repeats, min_time)
        e_med, e_min = timeit(event, repeats, min_time)
        rows.append(dict(layer=name, batch=B, threads=args.threads, density=dens,
                         actual_density=float(np.count_nonzero(x) / x.size), dense_ms=d_med, event_ms=e_med, dense_min_ms=d_min, event_min_ms=e_min,
                         torch_ms=float("nan"), torch_min_ms=float("nan")))
        print(f"  {name:26s} B={B:<3d} d={dens:.2f} dense={d_med:9.3f} event={e_med:9.3f}", flush=True)
    if torch is not None:
        for row, (name, kind, params, B, dens, (x, w, b)) in zip(rows, cases):
            row["torch_ms"], row["torch_min_ms"] = timeit(torch_fn(torch, kind, params, x, w, b), repeats, min_time)

    # Table
    head = (f"{'layer':26s} {'B':>3s} {'dens':>5s} {'dense ms':>9s} {'event ms':>9s} {'torch ms':>9s} "
            f"{'ev/dense':>8s} {'best/torch':>10s} | {'min: dense':>10s} {'event':>8s} {'torch':>8s}")
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows:
        best = min(r["dense_ms"], r["event_ms"])
        print(f"{r['layer']:26s} {r['batch']:3d} {r['density']:5.2f} {r['dense_ms']:9.3f} {r['event_ms']:9.3f} "
              f"{r['torch_ms']:9.3f} {r['event_ms'] / r['dense_ms']:8.2f} {best / r['torch_ms']:10.2f} | "
              f"{r['dense_min_ms']:10.3f} {r['event_min_ms']:8.3f} {r['torch_min_ms']:8.3f}")

    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        wr.writeheader()
        wr.writerows(rows)

    print("\nCrossover density (event faster below it), from best-of-repeats and from medians:")
    found = {"min": [], "med": []}
    for name, _, _ in LAYERS:
        for B in BATCHES:
            sel = [r for r in rows if r["layer"] == name and r["batch"] == B]
            if sel:
                line = f"  {name:26s} B={B:<3d}"
                for stat in ("min", "med"):
                    d, note = crossover(sel, stat)
                    found[stat].append(d)
                    line += f"  {stat} {d:6.3f} ({note})"
                print(line)
    print(f"median over layers: min {float(np.median(found['min'])):.3f}, med {float(np.median(found['med'])):.3f}; "
          f"DEFAULT_EVENT_THRESHOLD in snnsim.kernels = {DEFAULT_EVENT_THRESHOLD}")
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    print(f"wrote {csv_path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
