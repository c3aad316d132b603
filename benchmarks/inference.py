"""Inference speed: snnsim against SpikingJelly 2.0, Norse 1.1 and snnTorch 1.0, same weights and inputs.

    python benchmarks/inference.py [--quick] [--background-load N] [--no-cli] [--networks A,B] [--batches 1,64]
                                   [--timesteps 4,8] [--rounds N]

For the three shipped networks at T=4 and T=8: latency at batch 1 and time per batch of 64, with 2 threads
for everyone (NUMBA_NUM_THREADS=2, torch.set_num_threads(2), OMP_WAIT_POLICY=PASSIVE set before any library
loads), median of alternating rounds (each round times every simulator once, in turn). With
--background-load N the whole table is measured twice: on the machine as it is, then with N processes that
spin on a core each (benchmarks/background.py). Then the start-up of the README's `snnsim run` in a new
process (benchmarks/startup.py): cold (empty Numba cache), warm, and after `snnsim warmup`. Prints one table
with ratios against the fastest peer and the load average, and writes build/benchmarks/inference.csv and
inference_cli.csv.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "2")
# The same OpenMP environment for every library (snnsim sets PASSIVE on import; torch reads it when it loads):
# spin-waiting threads starve each other whenever anything else runs on the machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
from results_dir import results_dir  # noqa: E402
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from background import add_load_option, alternate, background_load, machine_load  # noqa: E402
from peer_models import BUILDERS, build, lively_weights, norse_lif, run_sj, snntorch_lif, stepwise  # noqa: E402

from snnsim.data import load_dataset  # noqa: E402
from snnsim.engine import run  # noqa: E402
from snnsim.network import build_network  # noqa: E402
from snnsim.layers import load_spec  # noqa: E402
from snnsim.weights import check_weights  # noqa: E402

torch.set_num_threads(2)


def inputs(name, n):
    if name == "digits_mlp":
        return load_dataset("digits").x[:n]
    x = load_dataset("mnist").x[:n]
    if name == "cifar_sew_resnet":
        x = np.repeat(np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2))), 3, axis=1)
    return np.ascontiguousarray(x, np.float32)


PEERS = ("spikingjelly", "norse", "snntorch")


def snnsim_network(name, model=None):
    """The shipped network ``name`` in snnsim with the peers' weights (``lively_weights``, or ``model``'s)."""
    model = lively_weights(build(name, 0.0)) if model is None else model
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    spec = load_spec(ROOT / "networks" / f"{name}.yaml")
    return build_network(spec, check_weights(spec, sd))


def bench_network(name, T, rounds, load, batches=(1, 64)):
    model = lively_weights(build(name, 0.0))
    net = snnsim_network(name, model)
    x64 = inputs(name, 64)
    xs = x64.reshape((64,) + net.spec.input_shape)
    rows = []
    runners = {"norse": stepwise(lively_weights(build(name, 0.0)), T, norse_lif),
               "snntorch": stepwise(lively_weights(build(name, 0.0)), T, snntorch_lif)}
    for batch in batches:
        xb = xs[:batch]
        xt = torch.from_numpy(x64[:batch])
        fns = {"snnsim": lambda: run(net, xb, timesteps=T, batch_size=batch),
               "spikingjelly": lambda: run_sj(model, x64[:batch], T),
               "norse": lambda: runners["norse"](xt), "snntorch": lambda: runners["snntorch"](xt)}
        # alternating: every simulator once per round; several calls per timing at batch 1
        times = alternate(fns, rounds, 20 if batch == 1 else 3)
        ms = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
        best = min(PEERS, key=ms.get)
        rows.append(dict(network=name, T=T, batch=batch, background_load=load, **{f"{k}_ms": v for k, v in ms.items()},
                         fastest_peer=best, speedup_vs_fastest_peer=ms[best] / ms["snnsim"],
                         load_avg=round(machine_load(), 2)))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="T=4 only, fewer rounds")
    add_load_option(ap)
    ap.add_argument("--no-cli", action="store_true", help="skip the start-up measurements")
    ints = lambda text: tuple(int(v) for v in text.split(","))  # noqa: E731
    ap.add_argument("--networks", type=lambda text: tuple(text.split(",")), default=tuple(BUILDERS),
                    help="networks to time (default: all three)")
    ap.add_argument("--batches", type=ints, default=(1, 64), help="batch sizes (default: 1,64)")
    ap.add_argument("--timesteps", type=ints, default=None, help="T values (default: 4,8; --quick: 4)")
    ap.add_argument("--rounds", type=int, default=None, help="alternating rounds (default: 7; --quick: 3)")
    args = ap.parse_args()
    unknown = set(args.networks) - set(BUILDERS)
    if unknown:
        ap.error(f"--networks: no network {sorted(unknown)[0]!r}; choose from {', '.join(BUILDERS)}")
    rounds = args.rounds or (3 if args.quick else 7)
    rows = []
    for load in sorted({0, args.background_load}):
        with background_load(load):
            for T in args.timesteps or ((4,) if args.quick else (4, 8)):
                for name in args.networks:
                    rows += bench_network(name, T, rounds, load, args.batches)
    df = pd.DataFrame(rows)
    out = results_dir()
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "inference.csv", index=False)
    pd.set_option("display.width", 250)
    print(f"Inference, ms per call (median of {rounds} alternating rounds), 2 threads each, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}; background_load = spinning processes added")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if not args.no_cli:                     # the start-up rows of benchmarks/startup.py
        from startup import RUN_ARGS, measure

        cli = pd.DataFrame(measure())
        cli.to_csv(out / "inference_cli.csv", index=False)
        print(f"\n`snnsim {' '.join(RUN_ARGS)}` (1,000 test images) in a new process: wall and CPU seconds")
        print(cli.to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
