"""How many cores each simulator gets on a busy machine: wall and CPU time of one inference call.

    python benchmarks/cores_used.py [--background-load N] [--networks A,B] [--timesteps 4] [--rounds N]

For the ResNet and the conv net at batch 64 (benchmarks/inference.py's networks, weights and inputs; 2 threads
for everyone, OMP_WAIT_POLICY=PASSIVE before any library loads): wall milliseconds and the process's CPU
milliseconds per call, and their ratio, the cores the call kept busy on average. Timed in alternating rounds
on the machine as it is and again with N spinning processes (benchmarks/background.py). Besides snnsim's
own run of the batch (`snnsim`: chunks of samples side by side on the two threads, snnsim.engine.chunk_bounds),
`snnsim_one_chunk` runs the batch as one chunk (engine.CHUNKS = 1, CHUNK_ELEMS raised), so that only large kernels split
between the threads, as every batch ran before the chunks.
Prints a table and writes build/benchmarks/cores_used.csv.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from results_dir import results_dir  # noqa: E402
from background import add_load_option, background_load, machine_load  # noqa: E402
from inference import inputs, snnsim_network  # noqa: E402
from peer_models import BUILDERS, build, lively_weights, norse_lif, snntorch_lif, stepwise  # noqa: E402

import snnsim.engine as engine  # noqa: E402
from snnsim.engine import run  # noqa: E402

torch.set_num_threads(2)


def contenders(name: str, T: int) -> dict:
    """The calls timed for one network at batch 64."""
    net = snnsim_network(name)
    x = inputs(name, 64)
    xs = x.reshape((64,) + net.spec.input_shape)
    xt = torch.from_numpy(x)
    norse = stepwise(lively_weights(build(name, 0.0)), T, norse_lif)
    snntorch = stepwise(lively_weights(build(name, 0.0)), T, snntorch_lif)

    def one_chunk():
        saved = engine.CHUNK_ELEMS, engine.CHUNKS
        engine.CHUNK_ELEMS, engine.CHUNKS = 1 << 40, 1
        try:
            run(net, xs, timesteps=T, batch_size=64)
        finally:
            engine.CHUNK_ELEMS, engine.CHUNKS = saved

    return {"snnsim": lambda: run(net, xs, timesteps=T, batch_size=64), "snnsim_one_chunk": one_chunk,
            "norse": lambda: norse(xt), "snntorch": lambda: snntorch(xt)}


def timed(fns: dict, rounds: int) -> dict:
    """(wall, cpu) seconds per call of each function, alternating rounds, after one warm-up call each."""
    for f in fns.values():
        f()
    out = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            w0, c0 = time.perf_counter(), time.process_time()
            f()
            out[k].append((time.perf_counter() - w0, time.process_time() - c0))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_option(ap)
    ap.add_argument("--networks", type=lambda text: tuple(text.split(",")),
                    default=("cifar_sew_resnet", "mnist_conv"), help="networks to time (default: the two conv nets)")
    ap.add_argument("--timesteps", type=int, default=4, help="T (default 4)")
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    args = ap.parse_args()
    unknown = set(args.networks) - set(BUILDERS)
    if unknown:
        ap.error(f"--networks: no network {sorted(unknown)[0]!r}; choose from {', '.join(BUILDERS)}")
    fns = {name: contenders(name, args.timesteps) for name in args.networks}
    rows = []
    for load in sorted({0, args.background_load}):
        with background_load(load):
            for name in args.networks:
                for who, samples in timed(fns[name], args.rounds).items():
                    wall, cpu = (1e3 * float(np.median([s[i] for s in samples])) for i in (0, 1))
                    rows.append(dict(network=name, T=args.timesteps, batch=64, background_load=load, who=who,
                                     wall_ms=wall, cpu_ms=cpu, cores=cpu / wall, load_avg=round(machine_load(), 2)))
    df = pd.DataFrame(rows)
    df.to_csv(results_dir() / "cores_used.csv", index=False)
    pd.set_option("display.width", 200)
    print(f"Wall and CPU ms per call (medians of {args.rounds} alternating rounds), 2 threads each, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}; background_load = spinning processes added")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
