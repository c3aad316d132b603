"""Execution regimes benchmark: the small T-RevSNN, the RevSResNet-21-shaped network and a standard
multi-timestep spiking ResNet of similar size (MS-ResNet-18 at quarter width), at T = 1, 2, 4, 8.

Per network and T: inference time per image (2 threads, after warm-up, median of repeats), and the trace totals
per image: spikes, synaptic operations, layer runs per layer instance ("passes"), and the state kept across
timesteps (words and float32 bytes). The T-RevSNN has T columns (one per timestep, each run once: num_subnet = T,
as in the paper), with seeded random weights; the two multi-timestep networks run their shipped weights at
every T (T = 1 is the one-shot regime). Then the reconstruction error of both inverses against depth and T.

    python benchmarks/regimes.py [--images 16] [--repeats 5]

Prints the tables and writes build/benchmarks/regimes.csv and regimes_reconstruction.csv.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
from results_dir import results_dir  # noqa: E402
sys.path.insert(0, str(ROOT))

from snnsim import regimes  # noqa: E402
from snnsim.engine import run  # noqa: E402
from snnsim.layers import ScaledStdConv2d  # noqa: E402
from snnsim.weights import random_weights  # noqa: E402
from snnsim.network import build_network  # noqa: E402
from snnsim.regimes import invert_chain, reversible_ops  # noqa: E402
from snnsim.layers import load_spec, parse_spec  # noqa: E402
from snnsim.spec import walk  # noqa: E402
from snnsim.weights import check_weights, load_weights  # noqa: E402

NETS = ROOT / "networks"
OUT = results_dir()
TS = (1, 2, 4, 8)


def params(spec) -> int:
    """Trainable parameters (shared modules once, batch-norm running statistics excluded)."""
    shared = {f"{l.name}.{p}" for l in walk(spec.layers) if isinstance(l, ScaledStdConv2d) and l.shared_from
              for p in l.param_shapes()}
    return sum(int(np.prod(s)) for k, s in spec.param_shapes().items()
               if k not in shared and not k.endswith(("running_mean", "running_var")))


def trev_spec(T: int):
    raw = yaml.safe_load((NETS / "trev_small.yaml").read_text())
    raw["timesteps"] = T
    raw["layers"][0].update(columns=T, heads=min(4, T))
    return parse_spec(raw, "trev_small.yaml")


def totals(trace) -> dict:
    """Per image. state_kept: words held across a timestep boundary at once (the footprint: every stateful
    neuron layer's membrane; for a T-RevSNN one c_l per level); state_carried: words written at t and read at
    t+1, summed over the inference (footprint x (T-1) for multi-step; each column's c_l for a T-RevSNN)."""
    n, T = trace.samples, trace.timesteps
    recs = trace.layers
    spikes = sum(int(r.events_out.sum()) for r in recs if r.kind == "neuron" and r.geometry.get("neuron") != "li")
    syn = [r for r in recs if r.kind in ("linear", "conv2d")]
    if trace.regime == "trev":
        states = [r for r in recs if r.kind == "state" and r.stateful]
        kept = sum(r.state_size for r in states if r.geometry["column"] == 0)
        carried = sum(r.state_size for r in states)
    else:
        kept = sum(r.state_size for r in recs if r.stateful)
        carried = kept * (T - 1)
    return dict(spikes=spikes / n, synops=sum(float(r.synops.sum()) for r in syn) / n,
                dense_macs=sum(dense_macs(r) * int(r.computed.sum()) for r in syn),
                passes=float(np.mean([r.computed.sum() for r in syn])), layer_instances=len(syn),
                state_kept_words=kept, state_kept_bytes=4 * kept, state_carried_words=carried)


def dense_macs(r) -> int:
    """MACs of one dense evaluation of a synaptic layer (what the dense kernels compute, zeros included)."""
    g = r.geometry
    if r.kind == "linear":
        return g["in_features"] * g["out_features"]
    return int(np.prod(r.out_shape)) * (g["in_channels"] // g["groups"]) * int(np.prod(g["kernel_size"]))


def timed(net, x, T, repeats):
    """Milliseconds per image, wall clock and process CPU time (all threads): the fastest of ``repeats`` runs
    after a warm-up (Numba compilation, caches). The minimum, not the median, because the machine may be shared
    and interference only ever adds time; CPU time is the more robust of the two under load."""
    run(net, x[:2], timesteps=T)
    walls, cpus, res = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        res = run(net, x, timesteps=T, batch_size=len(x))
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return 1e3 * float(np.min(walls)) / len(x), 1e3 * float(np.min(cpus)) / len(x), res


def regimes_table(images: int, repeats: int) -> pd.DataFrame:
    x = np.random.default_rng(0).random((images, 3, 32, 32)).astype(np.float32)
    rows = []
    fixed = {}
    for name in ("revs_resnet21_small", "ms_resnet18_small"):
        spec = load_spec(NETS / f"{name}.yaml")
        fixed[name] = (spec, build_network(spec, load_weights(spec, NETS / f"{name}.npz")))
    for T in TS:
        spec = trev_spec(T)
        net = build_network(spec, check_weights(spec, random_weights(spec, 0)))
        nets = [("trev_small", spec, net)] + [(k, *v) for k, v in fixed.items()]
        for name, spec, net in nets:
            ms, cpu, res = timed(net, x, T, repeats)
            rows.append(dict(network=name, T=T, regime=res.trace.regime, params=params(spec), **totals(res.trace),
                             ms_per_image=ms, cpu_ms_per_image=cpu))
        print(f"T={T} done", file=sys.stderr)
    df = pd.DataFrame(rows)
    base = df[df["T"] == 1].set_index("network")
    df["synops_vs_T1"] = df.synops / df.network.map(base.synops)
    df["cpu_vs_T1"] = df.cpu_ms_per_image / df.network.map(base.cpu_ms_per_image)
    df["synops_per_param"] = df.synops / df.params           # each weight used once per inference: constant
    df["macs_per_param"] = df.dense_macs / df.params
    df["cpu_us_per_kparam"] = 1e3 * df.cpu_ms_per_image / (df.params / 1e3)
    return df


def reconstruction_table() -> pd.DataFrame:
    """Measured max |x_hat - x| and the inverse's bound, relative to max |x|."""
    rows = []
    # RevSNN: a chain of D reversible blocks (IF, conv3x3, BN, IF, conv3x3, BN in F and G), inverted from the
    # last output only, at T steps; error at the first block's input.
    fg = [{"name": "sn1", "type": "if"},
          {"name": "conv1.0", "type": "conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1, "bias": False},
          {"name": "conv1.1", "type": "batchnorm2d"}, {"name": "sn2", "type": "if"},
          {"name": "conv2.0", "type": "conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1, "bias": False},
          {"name": "conv2.1", "type": "batchnorm2d"}]
    x = (np.random.default_rng(1).standard_normal((4, 32, 8, 8)) * 1.5).astype(np.float32)
    for D in (1, 2, 4, 8):
        for T in (1, 2, 4, 8):
            spec = parse_spec({"name": "chain", "input_shape": [32, 8, 8], "timesteps": T,
                               "layers": [{"name": f"b{i}", "type": "reversible", "f": fg, "g": fg} for i in range(D)]})
            net = build_network(spec, check_weights(spec, random_weights(spec, D)))
            ops = reversible_ops(net)
            res = run(net, x, timesteps=T, probes=[o.name for o in ops])
            ins = [res.trace.probes[o.name]["input"] for o in ops]
            y = res.trace.probes[ops[-1].name]["output"]
            inv = invert_chain(ops, y, caches={o.name: i for o, i in zip(ops, ins)})[0]
            scale = float(np.abs(ins[0]).max())
            rows.append(dict(kind="RevSNN chain", depth=D, T=T, max_err=float(np.abs(inv.x - ins[0]).max()) / scale,
                             max_bound=float(inv.bound.max()) / scale, flagged=inv.at_risk, fallback=inv.fallback))
    # T-RevSNN: c[T-1] of the 8-column small network, inverted column by column back to c[0] (chained, the
    # 1/alpha amplification, docs/papers.md), and column by column from the stored c[t] (the official scheme).
    spec = trev_spec(8)
    net = build_network(spec, check_weights(spec, random_weights(spec, 0)))
    img = np.random.default_rng(2).random((8, 3, 32, 32)).astype(np.float32)
    fw = regimes.forward(net, img)
    c, b = fw.states[7], None
    for t in range(7, 0, -1):
        inv = regimes.invert_column(net, t, fw.x, c, bounds=b, on_risk="keep",
                                 cache={l: s for (tt, l), s in fw.guard.items() if tt == t - 1})
        c, b = inv.states, inv.bounds
        one = regimes.invert_column(net, t, fw.x, fw.states[t],
                                 cache={l: s for (tt, l), s in fw.guard.items() if tt == t - 1})
        scale = max(float(np.abs(s).max()) for s in fw.states[t - 1])
        err = max(float(np.abs(ci - si).max()) for ci, si in zip(c, fw.states[t - 1]))
        err1 = max(float(np.abs(ci - si).max()) for ci, si in zip(one.states, fw.states[t - 1]))
        rows.append(dict(kind="T-RevSNN chained", depth=4, T=8, columns_back=8 - t, max_err=err / scale,
                         max_bound=max(float(x.max()) for x in b) / scale, flagged=sum(inv.at_risk),
                         fallback=any(inv.fallback)))
        rows.append(dict(kind="T-RevSNN per column", depth=4, T=8, columns_back=1, max_err=err1 / scale,
                         max_bound=max(float(x.max()) for x in one.bounds) / scale, flagged=sum(one.at_risk),
                         fallback=any(one.fallback)))
    return pd.DataFrame(rows)


def markdown(df: pd.DataFrame, fmt: str = ".4g") -> str:
    """A Markdown table (no tabulate dependency)."""
    def cell(v):
        if isinstance(v, (bool, np.bool_)):
            return str(bool(v))
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else format(float(v), fmt)
        return str(v)
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    df = regimes_table(args.images, args.repeats)
    df.to_csv(OUT / "regimes.csv", index=False)
    cols = ["network", "T", "regime", "params", "passes", "spikes", "synops", "synops_per_param", "dense_macs",
            "macs_per_param", "state_kept_bytes", "state_carried_words", "ms_per_image", "cpu_ms_per_image",
            "cpu_us_per_kparam"]
    print(markdown(df[cols]))
    rec = reconstruction_table()
    rec.to_csv(OUT / "regimes_reconstruction.csv", index=False)
    print()
    print(markdown(rec, ".3g"))
    print(f"\nwrote {OUT / 'regimes.csv'} and {OUT / 'regimes_reconstruction.csv'}")


if __name__ == "__main__":
    main()
