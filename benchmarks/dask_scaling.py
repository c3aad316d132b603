"""Wall time of `snnsim hw` on 1,000 MNIST images, one process against Dask with 2 workers.

    python benchmarks/dask_scaling.py [--rounds 3] [--limit 1000]

Runs three commands in alternating rounds (so that changes in the machine's load hit all alike): one process,
`--workers 2` (which starts and stops its own cluster), and `--scheduler` to a 2-worker cluster started once by
this script. It records each round's wall time (process start to exit: imports, data loading, cluster start-up
where there is one, both regimes' runs) and the 1-minute load average before it, prints a table with the median
speed-ups and writes build/benchmarks/dask_scaling.csv. Both commands print the same totals (tests/test_distributed.py).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
from results_dir import results_dir  # noqa: E402


def command(limit: int, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "snnsim.cli", "hw", "networks/mnist_conv.yaml", "--weights",
            "networks/mnist_conv.npz", "--dataset", "mnist", "--split", "test", "--limit", str(limit)] + extra


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=1000)
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{os.environ.get('PYTHONPATH', '')}"}
    subprocess.run(command(8, []), cwd=ROOT, env=env, check=True, capture_output=True)   # warm Numba's cache
    from dask.distributed import Client

    # a cluster that is already running (its start-up and the workers' imports are not timed)
    with Client(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as running:
        modes = {"one process": [], "--workers 2": ["--workers", "2"],
                 "--scheduler (2 workers running)": ["--scheduler", running.scheduler.address]}
        subprocess.run(command(8, modes["--scheduler (2 workers running)"]), cwd=ROOT, env=env, check=True,
                       capture_output=True)                                    # workers import snnsim once
        rows = []
        for r in range(args.rounds):
            for mode, extra in modes.items():
                load = os.getloadavg()[0]
                t0 = time.perf_counter()
                subprocess.run(command(args.limit, extra), cwd=ROOT, env=env, check=True, capture_output=True)
                rows.append(dict(round=r, mode=mode, samples=args.limit, wall_s=time.perf_counter() - t0,
                                 load_1min=load, cpus=os.cpu_count()))
    df = pd.DataFrame(rows)
    print(df.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    med = df.groupby("mode", sort=False).wall_s.median()
    one = med["one process"]
    print("median wall time: " + ", ".join(f"{m} {v:.2f} s ({one / v:.2f}x)" for m, v in med.items())
          + f"; load average during the runs {df.load_1min.min():.1f}-{df.load_1min.max():.1f} on "
          f"{os.cpu_count()} CPUs")
    out = results_dir() / "dask_scaling.csv"
    df.to_csv(out, index=False)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
