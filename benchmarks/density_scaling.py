"""Cost against activity: layer time vs input spike density (0-50 %), and whole networks auto vs forced forms.

    python benchmarks/density_scaling.py [--quick] [--background-load N] [--networks-only]

1. Layers (the SEW-ResNet's block conv 64->64 3x3 at 8x8 and 16x16, the conv net's linear 1568->128, its
   3136->10-sized output layer), batch 1 and 64, random binary inputs at densities 0, 1, 2, 5, 10, 20, 50 %:
   time of the event kernel, the dense kernel and the form the default rule picks (snnsim/kernels/cost.py),
   median (and min) of alternating rounds, each timing after an untimed call of the same kernel (its input in
   cache, as in a network, where the layer before just wrote it). Printed per layer: the zero-activity floor
   (event time at 0 % as a share of its time at 5 %) and the growth from 1 % to 20 % density (proportional
   would be 20x).
2. The three shipped networks on real inputs (batch 64, T=4): the default rule against forced dense and
   forced event, and the mean input density of their synaptic layers.
3. The same networks against their activity: the inputs scaled by 0 (the least activity the network has: its
   biases alone drive it), 0.25, 0.5, 1, 2 and 4; per scale the mean input density of the synaptic layers and
   the time under the default rule and forced dense. The zero-activity floor of a network is its time at scale
   0 as a share of its time on the real inputs.
Writes build/benchmarks/density_scaling.csv, density_networks.csv and density_networks_scaling.csv.
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

ROOT = Path(__file__).resolve().parent.parent
from results_dir import results_dir  # noqa: E402
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
from background import add_load_option, alternate, background_load, machine_load  # noqa: E402

from snnsim.layers import Conv2d, ConvOp, Linear, LinearOp, kernel_form  # noqa: E402
from snnsim import kernels as K  # noqa: E402

DENSITIES = [0.0, 0.01, 0.02, 0.05, 0.10, 0.20, 0.50]


def layer_cases():
    def conv(name, C, O, H):
        layer = Conv2d(name, (C, H, H), (O, H, H), in_channels=C, out_channels=O, kernel_size=(3, 3),
                       padding=(1, 1))
        w = np.random.default_rng(0).standard_normal((O, C, 3, 3)).astype(np.float32) * 0.1
        return ConvOp(layer, (), w, np.zeros(0, np.float32), K.prepare_conv_event(w, 1))

    def linear(name, I, O):
        w = np.random.default_rng(0).standard_normal((O, I)).astype(np.float32) * 0.1
        return LinearOp(Linear(name, (I,), (O,), in_features=I, out_features=O), (), w,
                        np.zeros(O, np.float32), K.prepare_linear_event(w))

    return [conv("resnet conv 64->64 3x3 @8", 64, 64, 8), conv("resnet conv 64->64 3x3 @16", 64, 64, 16),
            linear("linear 1568->128", 1568, 128), linear("output 3136->10", 3136, 10)]


def bench_layers(rounds, quick, load):
    rows = []
    rng = np.random.default_rng(1)
    for op in layer_cases():
        for B in ((64,) if quick else (1, 64)):
            shape = (B,) + tuple(op.layer.in_shape)
            for d in DENSITIES:
                x = (rng.random(shape) < d).astype(np.float32)
                nz = int(np.count_nonzero(x))
                picked = kernel_form(op, nz, x.size, None)
                fns = {"event": lambda: op.forward(x, "event"), "dense": lambda: op.forward(x, "dense")}
                # warm: a layer's input in a network was just written by the layer before it, so each timing
                # starts with it in cache, as the other form's turn would otherwise have evicted it (at batch 64
                # the first of the event conv's 5 calls on a silent input took several times the others)
                times = alternate(fns, rounds, 50 if B == 1 else 5, warm=True)
                ms = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
                lo = {k: 1e3 * float(np.min(v)) for k, v in times.items()}   # the least disturbed round
                rows.append(dict(layer=op.name, batch=B, density=d, event_ms=ms["event"], dense_ms=ms["dense"],
                                 event_min_ms=lo["event"], dense_min_ms=lo["dense"],
                                 rule_picks=picked, rule_ms=ms[picked], best_ms=min(ms.values()),
                                 background_load=load, load_avg=round(machine_load(), 2)))
    return rows


def summarise(df):
    lines = []
    for (layer, B, load), g in df.groupby(["layer", "batch", "background_load"]):
        ev = g.set_index("density")["event_ms"]
        worst = (g["rule_ms"] / g["best_ms"]).max()
        lines.append(f"{layer}, batch {B}, +{load} load: event floor at 0 % = {ev[0.0]:.3g} ms = "
                     f"{100 * ev[0.0] / ev[0.05]:.0f} % of 5 %; 1 % -> 20 % grows {ev[0.2] / ev[0.01]:.1f}x "
                     f"(proportional 20x); rule within {worst:.2f}x of the faster form")
    return lines


GAINS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)


def networks():
    """(name, network, its 64 real inputs) for the three shipped networks, with benchmarks/inference.py's weights."""
    from peer_models import BUILDERS, build, lively_weights
    from snnsim.data import load_dataset
    from snnsim.network import build_network
    from snnsim.layers import load_spec
    from snnsim.weights import check_weights

    for name in BUILDERS:
        model = lively_weights(build(name, 0.0))
        spec = load_spec(ROOT / "networks" / f"{name}.yaml")
        net = build_network(spec, check_weights(spec, {k: v.detach().numpy() for k, v in model.state_dict().items()}))
        x = load_dataset("digits" if name == "digits_mlp" else "mnist").x[:64]
        if name == "cifar_sew_resnet":
            x = np.repeat(np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2))), 3, axis=1)
        yield name, net, np.ascontiguousarray(x.reshape((64,) + spec.input_shape), np.float32)


def input_density(net, x) -> float:
    """The mean input density of a network's synaptic layers on x (batch 64, T=4)."""
    from snnsim.engine import run

    syn = [r for r in run(net, x, timesteps=4).trace.layers if r.kind in ("linear", "conv2d")]
    return float(np.mean([r.events_in.sum() / (np.prod(r.in_shape) * 64 * r.computed.sum()) for r in syn]))


def bench_network_scaling(rounds, load):
    from snnsim.engine import run

    rows = []
    for name, net, x in networks():
        for gain in GAINS:
            xg = x * np.float32(gain)
            dens = input_density(net, xg)
            times = alternate({f: (lambda f=f: run(net, xg, timesteps=4, form=f)) for f in ("auto", "dense")},
                              rounds)
            ms = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
            rows.append(dict(network=name, batch=64, T=4, input_scale=gain, mean_input_density=dens,
                             auto_ms=ms["auto"], dense_ms=ms["dense"], dense_over_auto=ms["dense"] / ms["auto"],
                             background_load=load, load_avg=round(machine_load(), 2)))
    return rows


def bench_networks(rounds, load):
    from snnsim.engine import run

    rows = []
    for name, net, x in networks():
        dens = input_density(net, x)
        times = alternate({f: (lambda f=f: run(net, x, timesteps=4, form=f)) for f in ("auto", "dense", "event")},
                          rounds)
        ms = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
        rows.append(dict(network=name, batch=64, T=4, mean_input_density=dens, auto_ms=ms["auto"],
                         dense_ms=ms["dense"], event_ms=ms["event"], dense_over_auto=ms["dense"] / ms["auto"],
                         background_load=load, load_avg=round(machine_load(), 2)))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="batch 64 only, 3 rounds")
    ap.add_argument("--networks-only", action="store_true", help="only parts 2 and 3: the whole networks")
    add_load_option(ap)
    args = ap.parse_args()
    rounds = 3 if args.quick else 7
    layers, nets, scaling = [], [], []
    for load in sorted({0, args.background_load}):
        with background_load(load):
            if not args.networks_only:
                layers += bench_layers(rounds, args.quick, load)
            nets += bench_networks(rounds, load)
            scaling += bench_network_scaling(rounds, load)
    out = results_dir()
    out.mkdir(parents=True, exist_ok=True)
    df, dn, ds = pd.DataFrame(layers), pd.DataFrame(nets), pd.DataFrame(scaling)
    if layers:
        df.to_csv(out / "density_scaling.csv", index=False)
    dn.to_csv(out / "density_networks.csv", index=False)
    ds.to_csv(out / "density_networks_scaling.csv", index=False)
    pd.set_option("display.width", 250)
    if layers:
        print(f"Layer time (ms) against input density, median of {rounds} alternating rounds")
        print(df.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        print("\n".join(summarise(df)))
    print("\nWhole networks, batch 64, T=4, real inputs: default rule against forced forms (ms)")
    print(dn.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print("\nWhole networks against their activity (inputs scaled), batch 64, T=4 (ms)")
    print(ds.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    for (name, load), g in ds.groupby(["network", "background_load"]):
        t = g.set_index("input_scale")
        print(f"{name}, +{load} load: floor (scale 0, density {t.mean_input_density[0.0]:.3f}) "
              f"{t.auto_ms[0.0]:.3g} ms = {100 * t.auto_ms[0.0] / t.auto_ms[1.0]:.0f} % of the real inputs' "
              f"{t.auto_ms[1.0]:.3g} ms (density {t.mean_input_density[1.0]:.3f})")


if __name__ == "__main__":
    main()
