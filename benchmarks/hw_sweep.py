"""Benchmark: a sweep of 1,000 architecture variants over one real trace with the mapping search, vectorised
(target < 5 s).

Variants: weight, membrane and event buffer sizes, weight and membrane bit widths and weight refetch around
the evt45 preset, every variant's layers on their best of evt45's five mappings (energy objective); the trace is mnist_conv
(its shipped trained weights, 100 MNIST test images, T=4). The vectorised sweep is compared with pricing the
same variants one at a time. Prints a table and saves build/benchmarks/hw_sweep.csv (the timings).

    python benchmarks/hw_sweep.py
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hwmodel.arch import load_arch
from hwmodel.counts import count
from hwmodel.mapping import search
from hwmodel.sweep import default_grid, sweep, variant_params
from snnsim.data import load_dataset
from snnsim.engine import run
from snnsim.network import build_network
from snnsim.layers import load_spec
from snnsim.weights import load_weights

ROOT = Path(__file__).resolve().parent.parent
from results_dir import results_dir  # noqa: E402
RESULTS = results_dir()
LOOP_SAMPLE = 50          # variants priced one at a time, to estimate the unvectorised cost per variant
REPEATS = 5


def main():
    spec = load_spec(ROOT / "networks" / "mnist_conv.yaml")
    net = build_network(spec, load_weights(spec, ROOT / "networks" / "mnist_conv.npz"))
    x, _ = load_dataset("mnist").split("test")
    trace = run(net, x[::10][:100], timesteps=4).trace
    arch = load_arch("evt45")
    grid = default_grid()

    t0 = time.perf_counter()
    c = count(trace, arch.dataflow["encoder"])
    t_count = time.perf_counter() - t0

    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        res = sweep(c, arch, grid)
        times.append(time.perf_counter() - t0)
    t_sweep = min(times)

    params = variant_params(arch, grid)
    t0 = time.perf_counter()
    for i in range(LOOP_SAMPLE):
        one = {k: (v[i] if isinstance(v, np.ndarray) and v.ndim else v) for k, v in params.items()}
        search(c, arch, one)
    t_loop = (time.perf_counter() - t0) / LOOP_SAMPLE

    rows = [
        dict(step="count the trace (once)", variants=1, seconds=t_count, us_per_variant=t_count * 1e6),
        dict(step="vectorised sweep + mapping search", variants=len(grid), seconds=t_sweep, us_per_variant=t_sweep / len(grid) * 1e6),
        dict(step="one variant at a time (est.)", variants=len(grid), seconds=t_loop * len(grid),
             us_per_variant=t_loop * 1e6),
    ]
    table = pd.DataFrame(rows)
    table["target_s"] = 5.0
    table["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    RESULTS.mkdir(parents=True, exist_ok=True)
    table.to_csv(RESULTS / "hw_sweep.csv", index=False)
    print(f"sweep of {len(grid)} variants of {arch.name} over mnist_conv "
          f"({len(c.rows)} layer-steps, {trace.samples} samples, T={trace.timesteps})")
    print(table.drop(columns="machine").to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    best = res[res.feasible].nsmallest(3, "energy_pj")
    print("\nlowest-energy variants:")
    print(best[list(grid.columns) + ["energy_pj", "latency_ns", "dram_bytes"]].to_string(index=False))
    print("\nmappings chosen (layers with weights, in order) in the lowest-energy variant:", best.mappings.iloc[0])
    print(f"\nwhole sweep with the mapping search {t_sweep:.3f} s ({'meets' if t_sweep < 5 else 'MISSES'} the 5 s target); "
          f"{t_loop * len(grid) / t_sweep:.0f}x faster than one at a time")


if __name__ == "__main__":
    main()
