"""How many timesteps the engine should run side by side: whole runs against the window's size.

    python benchmarks/steps_window.py [--rounds N]

The engine runs a feed-forward network's layers over a window of timesteps at once, as many as keep the
largest activation within ``snnsim.engine.schedule.WINDOW_ELEMS`` values (docs/performance.md). This times the three
shipped networks (the weights and inputs of benchmarks/inference.py) at batch 1 and 64, T=4 and 8, with that
cap set to 1 (one timestep at a time, as before the windows), 2**16, 2**18, 2**19 (the default), 2**20 and
2**22, alternating rounds in one process (NUMBA_NUM_THREADS=2). A batch of 64 runs as chunks of samples
(snnsim.engine.chunk_bounds), each with its own window. Prints ms per run (median) and the timesteps per window
of the first chunk, and writes build/benchmarks/steps_window.csv.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from background import alternate, machine_load  # noqa: E402
from inference import inputs, snnsim_network  # noqa: E402
from results_dir import results_dir  # noqa: E402

import snnsim.engine as engine  # noqa: E402

CAPS = (1, 1 << 16, 1 << 18, 1 << 19, 1 << 20, 1 << 22)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rows = []
    default = engine.schedule.WINDOW_ELEMS
    for name in ("digits_mlp", "mnist_conv", "cifar_sew_resnet"):
        net = snnsim_network(name)
        x = inputs(name, 64).reshape((64,) + tuple(net.spec.input_shape))
        largest, total = engine.activation_sizes(net)
        for T in (4, 8):
            for batch in (1, 64):
                xb = x[:batch]
                a, b = engine.chunk_bounds(0, batch, largest, total)[0]

                def timed(cap):
                    def call():
                        engine.schedule.WINDOW_ELEMS = cap
                        engine.run(net, xb, timesteps=T, batch_size=batch)
                    return call

                times = alternate({cap: timed(cap) for cap in CAPS}, args.rounds, 20 if batch == 1 else 3)
                engine.schedule.WINDOW_ELEMS = default
                for cap in CAPS:
                    rows.append(dict(network=name, T=T, batch=batch, window_cap=cap,
                                     steps_per_window=max(1, min(T, cap // ((b - a) * largest))),
                                     ms=1e3 * float(np.median(times[cap])), load_avg=round(machine_load(), 2)))
    df = pd.DataFrame(rows)
    out = results_dir()
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "steps_window.csv", index=False)
    pd.set_option("display.width", 200)
    print(f"ms per run (median of {args.rounds} alternating rounds) against the window cap (values)")
    print(df.pivot_table(index=["network", "T", "batch"], columns="window_cap", values="ms").to_string(
        float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
