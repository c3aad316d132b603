"""Start-up of the README's command: `snnsim run networks/mnist_conv.yaml --weights networks/mnist_conv.npz
--dataset mnist` (1,000 test images, T=4) in a new process, each time.

    python benchmarks/startup.py [--warm-runs N]

Rows: cold (an empty Numba cache in a temporary folder, NUMBA_CACHE_DIR), then warm runs on that cache, then
`snnsim warmup` into a second empty cache and the first run after it. Wall time and the CPU time the process
used (user + system; on a busy machine wall time also holds the time spent waiting for a core), with the
1-minute load average before each run. Uses the `snnsim` command when it is on PATH (as the README does),
else `python -m snnsim.cli`. Writes build/benchmarks/startup.csv.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from results_dir import results_dir  # noqa: E402

RUN_ARGS = ["run", "networks/mnist_conv.yaml", "--weights", "networks/mnist_conv.npz", "--dataset", "mnist"]


def snnsim_command() -> list[str]:
    exe = shutil.which("snnsim")
    return [exe] if exe else [sys.executable, "-m", "snnsim.cli"]


def timed(cmd: list[str], env: dict, label: str) -> dict:
    """One process: wall seconds, its CPU seconds (user, system) and the load average before it."""
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return dict(run=label, wall_s=wall, user_s=after.ru_utime - before.ru_utime,
                sys_s=after.ru_stime - before.ru_stime, load_avg=round(load, 2))


def measure(warm_runs: int = 3) -> list[dict]:
    snnsim = snnsim_command()
    run = snnsim + RUN_ARGS
    rows = []
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(d) / "cache"))
        rows.append(timed(run, env, "cold (empty cache)"))
        rows += [timed(run, env, "warm") for _ in range(warm_runs)]
        env["NUMBA_CACHE_DIR"] = str(Path(d) / "cache_2")
        rows.append(timed(snnsim + ["warmup"], env, "snnsim warmup (empty cache)"))
        rows.append(timed(run, env, "first run after warmup"))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warm-runs", type=int, default=3, metavar="N", help="warm runs after the cold one")
    args = ap.parse_args()
    import pandas as pd

    df = pd.DataFrame(measure(args.warm_runs))
    df.to_csv(results_dir() / "startup.csv", index=False)
    print(f"`{' '.join(['snnsim'] + RUN_ARGS)}` in a new process ({' '.join(snnsim_command())}), "
          f"{os.cpu_count()} cores")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
