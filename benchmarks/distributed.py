"""Wall time of `snnsim hw` on 1,000 MNIST images, one process against `--workers 2` (a local Dask cluster).

    python benchmarks/distributed.py [--rounds 3] [--limit 1000]

Runs the two commands in alternating rounds (so that changes in the machine's load hit both alike), records
each round's wall time (process start to exit: imports, data loading, cluster start-up and both regimes'
runs included) and the 1-minute load average before it, prints a table with the median speed-up and
writes benchmarks/results/distributed.csv. Both commands print the same totals (tests/test_distributed.py).
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


def command(limit: int, workers: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "snnsim.cli", "hw", "networks/mnist_conv.yaml", "--weights",
           "networks/mnist_conv.npz", "--dataset", "mnist", "--split", "test", "--limit", str(limit)]
    return cmd + (["--workers", str(workers)] if workers else [])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=1000)
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{os.environ.get('PYTHONPATH', '')}"}
    subprocess.run(command(8, None), cwd=ROOT, env=env, check=True, capture_output=True)   # warm Numba's cache
    rows = []
    for r in range(args.rounds):
        for workers in (None, 2):
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            subprocess.run(command(args.limit, workers), cwd=ROOT, env=env, check=True, capture_output=True)
            rows.append(dict(round=r, mode="--workers 2" if workers else "one process", samples=args.limit,
                             wall_s=time.perf_counter() - t0, load_1min=load, cpus=os.cpu_count()))
    df = pd.DataFrame(rows)
    print(df.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    med = df.groupby("mode").wall_s.median()
    print(f"median wall time: one process {med['one process']:.2f} s, --workers 2 {med['--workers 2']:.2f} s, "
          f"speed-up {med['one process'] / med['--workers 2']:.2f}x; load average during the runs "
          f"{df.load_1min.min():.1f}-{df.load_1min.max():.1f} on {os.cpu_count()} CPUs")
    out = ROOT / "benchmarks" / "results" / "distributed.csv"
    df.to_csv(out, index=False)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
