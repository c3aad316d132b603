"""Inference speed at T=4: snnsim against SpikingJelly 2.0 and snnTorch 1.0, same weights and inputs, one run.

    python benchmarks/inference.py [--quick]

Measures, for the three shipped networks, latency at batch 1 (median over samples) and throughput at
batch 64, with 2 threads for everyone (NUMBA_NUM_THREADS=2, torch.set_num_threads(2)); then the wall time
of a cold (Numba compiling into an empty cache) and a warm (cached) `snnsim run` of the MNIST network.
Prints a table with ratios and writes benchmarks/results/inference.csv.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "2")
# The same OpenMP environment for every library (snnsim sets PASSIVE on import; torch reads it when it loads):
# spin-waiting threads starve each other whenever anything else runs on the machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from peer_models import BUILDERS, build, lively_weights, run_sj  # noqa: E402

from snnsim.data import load_dataset  # noqa: E402
from snnsim.engine import run  # noqa: E402
from snnsim.network import build_network  # noqa: E402
from snnsim.spec import load_spec  # noqa: E402
from snnsim.weights import check_weights  # noqa: E402

T = 4
torch.set_num_threads(2)


def inputs(name, n):
    if name == "digits_mlp":
        return load_dataset("digits").x[:n]
    x = load_dataset("mnist").x[:n]
    if name == "cifar_sew_resnet":
        x = np.repeat(np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2))), 3, axis=1)
    return np.ascontiguousarray(x, np.float32)


def snntorch_runner(model):
    """The same layers driven step by step with snnTorch Leaky neurons (beta 0.5, reset to zero)."""
    import snntorch as snn

    mods = []
    for name, m in model.named_children():
        if type(m).__name__ == "LIFNode":
            mods.append(("leaky", snn.Leaky(beta=0.5, reset_mechanism="zero")))
        elif name.startswith("block"):
            mods.append(("block", m))
        else:
            mods.append(("layer", m))

    def step_module(m):
        # SpikingJelly layer wrappers are torch modules; in single-step use they act per timestep
        if hasattr(m, "step_mode"):
            m.step_mode = "s"
        for c in m.modules():
            if hasattr(c, "step_mode"):
                c.step_mode = "s"
        return m

    for _, m in mods:
        step_module(m)

    def forward(x):
        mems = [m.init_leaky() if kind == "leaky" else None for kind, m in mods]
        outs = []
        with torch.no_grad():
            from spikingjelly.activation_based import functional
            functional.reset_net(model)
            for _ in range(T):
                h = x
                for i, (kind, m) in enumerate(mods):
                    if kind == "leaky":
                        h, mems[i] = m(h, mems[i])
                    else:
                        h = m(h)
                outs.append(h)
        return torch.stack(outs)

    return forward


def timeit(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def bench_network(name, quick):
    model = lively_weights(build(name, 0.0))
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    spec = load_spec(ROOT / "networks" / f"{name}.yaml")
    net = build_network(spec, check_weights(spec, sd))
    x64 = inputs(name, 64)
    xs = x64.reshape((64,) + spec.input_shape)
    reps = 5 if quick else 20
    rows = []
    st_model = lively_weights(build(name, 0.0))
    st_forward = snntorch_runner(st_model)
    for batch in (1, 64):
        xb = xs[:batch]
        xt = torch.from_numpy(x64[:batch])
        t_ours = timeit(lambda: run(net, xb, timesteps=T, batch_size=batch), reps)
        t_sj = timeit(lambda: run_sj(model, x64[:batch], T), reps)
        t_st = timeit(lambda: st_forward(xt), reps)
        rows.append(dict(network=name, batch=batch, snnsim_ms=t_ours * 1e3, spikingjelly_ms=t_sj * 1e3,
                         snntorch_ms=t_st * 1e3, speedup_vs_spikingjelly=t_sj / t_ours,
                         speedup_vs_snntorch=t_st / t_ours,
                         snnsim_samples_per_s=batch / t_ours, spikingjelly_samples_per_s=batch / t_sj))
    return rows


def bench_cli():
    """Cold (empty Numba cache) and warm wall time of `snnsim run` on the MNIST network."""
    rows = []
    with tempfile.TemporaryDirectory() as d:
        w = Path(d) / "w.npz"
        subprocess.run([sys.executable, "-m", "snnsim.cli", "init-weights", str(ROOT / "networks/mnist_conv.yaml"),
                        "-o", str(w)], check=True, capture_output=True)
        env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(d) / "numba_cache"))
        cmd = [sys.executable, "-m", "snnsim.cli", "run", str(ROOT / "networks/mnist_conv.yaml"), "--weights", str(w),
               "--dataset", "mnist"]
        for label in ("cold", "warm"):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            rows.append(dict(run=label, wall_s=time.perf_counter() - t0))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    args = ap.parse_args()
    rows = []
    for name in BUILDERS:
        rows += bench_network(name, args.quick)
    df = pd.DataFrame(rows)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "inference.csv", index=False)
    pd.set_option("display.width", 200)
    print(f"Inference at T={T}, 2 threads each (median of repeats)")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    cli = pd.DataFrame(bench_cli())
    cli.to_csv(out / "inference_cli.csv", index=False)
    print("\n`snnsim run networks/mnist_conv.yaml --dataset mnist` (1,000 test images), wall time")
    print(cli.to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
