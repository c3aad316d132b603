"""What bounds two of the activity targets (docs/performance.md, "Cost against activity").

    python benchmarks/activity_bounds.py [--rounds 7] [--background-load N]

1. Why the ResNet block conv's event time does not grow 13.3x (within 1.5x of proportional) from 1 % to 20 %
   density: its cost split into a fixed part and a cost per event, beside a plain copy of its input (memory
   speed) and a channels-last variant.
2. How much faster than forced dense a whole network at its real activity can be: its synaptic layers priced
   in both forms by the kernel-form rule's prices (snnsim/kernels/cost.py) at the input events of each layer
   and timestep of a traced run (the three shipped networks, batch 64, T=4, real inputs, benchmarks/
   density_scaling.py's weights). The run's other work (neuron steps, pooling, statistics) is the same in
   both, so (dense + rest) / (cheaper + rest) <= dense / cheaper: the priced ratio bounds the whole run's.

Part 1. The layer: 64->64 3x3 conv, padding 1, on 16x16 planes, batch 64 (density_scaling.py's row), random binary
inputs. Timed, in alternating rounds (median over rounds of the best of 10 calls, each form warm):
- ``snnsim``: the event kernel (kernels.conv2d_event): lists each image's nonzeros, scatters them into a
  channels-last scratch, transposes the scratch into the NCHW output;
- ``channels_last``: the same event list and scatter straight into a channels-last (NHWC) output filled with
  the bias, no scratch and no transposition: what an engine with channels-last activations end to end would
  run (written here only to measure it; its outputs are checked equal to the kernel's, transposed);
- ``copy``: np.copyto of the input into an array of the output's size: one read and one write at memory speed.
Inputs: no events, one event per image (the fixed cost of an image with events: the nonzero scan, the
scratch's transposition or the bias fill), 1 %, 5 % and 20 %, and 1 % placed 3 to an input row (as many events
in a third of the rows: what an event at low density does not share with neighbours).

Printed per form: the fixed cost F (one event per image), the cost per event at each density
((t - F) / (events - images)), the growth t(20 %) / t(1 %), the growth of the events' part alone
((t20 - F) / (t1 - F)), and the fixed cost that a growth of 13.3x (within 1.5x of proportional) would need
with the measured costs per event: F* = (E20 - 13.3 E1) / 12.3, E = t - F; none if the events alone grow
less than 13.3x.
Writes build/benchmarks/activity_growth.csv and activity_networks.csv (benchmarks/results/ with
--update-results).
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
from numba import njit  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
from results_dir import results_dir  # noqa: E402
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from background import add_load_option, alternate, background_load, machine_load  # noqa: E402

from snnsim import kernels as K  # noqa: E402
from snnsim.kernels import conv_event  # noqa: E402

B, C, O, H = 64, 64, 64, 16
GOAL = 20 / 1.5


@njit(nogil=True)
def conv_channels_last(x, wev, bias, out, tr_c, tr_t, tr_d, tc_c, tc_t, tc_d):
    """out[b, oi, oj, o]: the event kernel's list and scatter (stride 1, padding 1, one group) into the output
    itself, channels last, after filling it with the bias."""
    Bn, Cn, Hn, Wn = x.shape
    On, WO = out.shape[3], out.shape[2]
    pos_i, pos_j, ev, ej, ei, ec = conv_event.event_lists(Cn, Hn, Wn)
    for bi in range(Bn):
        of = out[bi].reshape(out[bi].size)
        for p in range(out.shape[1] * WO):
            for o in range(On):
                of[p * On + o] = bias[o]
        n = conv_event._collect_events(x, bi, pos_i, pos_j, ev, ej, ei, ec)
        if n:
            conv_event._scatter_band(ev, ej, ei, ec, n, Cn, wev, 0, out.shape[1], 1, 1, 1, 1, tr_c, tr_t, tr_d,
                                     tc_c, tc_t, tc_d, of, On, WO)


def inputs(rng):
    one = np.zeros((B, C, H, H), np.float32)
    one[np.arange(B), rng.integers(0, C, B), rng.integers(0, H, B), rng.integers(0, H, B)] = 1.0
    xs = {"0": np.zeros((B, C, H, H), np.float32), "one per image": one}
    for d in (0.01, 0.05, 0.20):
        xs[f"{d:.0%}"] = (rng.random((B, C, H, H)) < d).astype(np.float32)
    # 1 % again, but 3 events to each input row holding any (at random columns): as many events, a third of
    # the rows, so that each row's outputs and weight rows serve 3 events, as at higher density
    rows = np.zeros((B * C * H, H), np.float32)
    picked = rng.choice(B * C * H, B * C * H * H // 100 // 3, replace=False)
    for r in picked:
        rows[r, rng.choice(H, 3, replace=False)] = 1.0
    xs["1% in rows of 3"] = rows.reshape(B, C, H, H)
    return xs


def measure(rounds: int, load: int) -> list[dict]:
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((O, C, 3, 3)) * 0.1).astype(np.float32)
    wev = K.prepare_conv_event(w, 1)
    nobias, bias = np.zeros(0, np.float32), np.zeros(O, np.float32)
    taps = conv_event.tap_table(H, H, 3, 1, 1)
    nhwc = np.empty((B, H, H, O), np.float32)
    copy_out = np.empty((B, O, H, H), np.float32)
    forms = {"snnsim": lambda x: K.conv2d_event(x, wev, nobias, O, 3, 3, 1, 1, 1, 1, 1),
             "channels_last": lambda x: conv_channels_last(x, wev, bias, nhwc, *taps, *taps),
             "copy": lambda x: np.copyto(copy_out, x)}
    xs = inputs(rng)
    for x in xs.values():                      # the channels-last variant computes the kernel's sums
        forms["channels_last"](x)
        assert np.array_equal(nhwc, forms["snnsim"](x).transpose(0, 2, 3, 1))
    best = alternate({(f, d): (lambda fn=fn, x=x: fn(x)) for f, fn in forms.items() for d, x in xs.items()},
                     rounds, 10, warm=True, best=True)
    return [dict(form=f, input=d, events=int(np.count_nonzero(xs[d])), ms=1e3 * float(np.median(best[(f, d)])),
                 background_load=load, load_avg=round(machine_load(), 2)) for (f, d) in best]


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (f, load), g in df[df.form != "copy"].groupby(["form", "background_load"], sort=False):
        t = g.set_index("input")
        F = t.ms["one per image"]
        E1, E20 = t.ms["1%"] - F, t.ms["20%"] - F
        ns = {d: 1e6 * (t.ms[d] - F) / (t.events[d] - B) for d in ("1%", "1% in rows of 3", "5%", "20%")}
        need = (E20 - GOAL * E1) / (GOAL - 1)
        copy = df[(df.form == "copy") & (df.background_load == load) & (df.input == "20%")].ms.iloc[0]
        rows.append(dict(form=f, background_load=load, floor_ms=t.ms["0"], fixed_ms=F, copy_ms=copy,
                         ns_per_event_1=ns["1%"], ns_per_event_1_rows_of_3=ns["1% in rows of 3"],
                         ns_per_event_5=ns["5%"], ns_per_event_20=ns["20%"],
                         growth=t.ms["20%"] / t.ms["1%"], events_growth=E20 / E1,
                         fixed_needed_ms=need if need > 0 else float("nan")))
    return pd.DataFrame(rows)


def network_bounds() -> list[dict]:
    """Part 2: per shipped network, its synaptic layers priced in both forms over a traced run."""
    from density_scaling import networks
    from snnsim.engine import run
    from snnsim.layers.op import walk_ops

    rows = []
    for name, net, x in networks():
        ops = {op.name: op for op in walk_ops(net.ops)}
        priced = []                             # (dense, event floor, events x cost per event) per layer and step
        for r in run(net, x, timesteps=4).trace.layers:
            prices = ops[r.name].prices(len(x)) if r.name in ops else None
            if prices is None:                  # not a synaptic layer
                continue
            d, floor, per_event = prices
            priced += [(d, floor, r.events_in[t] * per_event) for t in np.flatnonzero(r.computed)]
        d, floor, events = np.array(priced).T

        def bound(k):                           # events priced k times the rule's price
            return d.sum() / np.minimum(d, floor + k * events).sum()

        # the event price that would give 3x: bisection on k (the bound falls as k grows)
        lo, hi = 0.0, 1.0
        need = float("nan")
        if bound(0.0) >= 3.0:
            for _ in range(50):
                lo, hi = (lo, (lo + hi) / 2) if bound((lo + hi) / 2) < 3.0 else ((lo + hi) / 2, hi)
            need = lo
        rows.append(dict(network=name, dense_ms=d.sum() / 1e6, cheaper_ms=np.minimum(d, floor + events).sum() / 1e6,
                         bound=bound(1.0), bound_free_events=bound(0.0), event_price_for_3x=need))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    add_load_option(ap)
    args = ap.parse_args()
    rows = []
    for load in sorted({0, args.background_load}):
        with background_load(load):
            rows += measure(args.rounds, load)
    df = pd.DataFrame(rows)
    nets = pd.DataFrame(network_bounds())
    out = results_dir()
    df.to_csv(out / "activity_growth.csv", index=False)
    nets.to_csv(out / "activity_networks.csv", index=False)
    pd.set_option("display.width", 250)
    print(f"ResNet block conv 64->64 3x3 @16x16, batch {B}: ms, median of {args.rounds} alternating rounds")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"\nFixed cost, cost per event, growth 1 % -> 20 % (goal >= {GOAL:.1f}x), and the fixed cost the goal needs")
    print(summarise(df).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print("\nSynaptic layers of a whole run (batch 64, T=4, real inputs) priced on one thread: all dense, each "
          "layer and step in its cheaper form, and their ratio: the most the default rule can gain over forced dense;\n"
          "the same with events free (their floors kept), and the share of today's price per event that 3x needs")
    print(nets.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"wrote {out / 'activity_growth.csv'} and {out / 'activity_networks.csv'}")


if __name__ == "__main__":
    main()
