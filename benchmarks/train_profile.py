"""Where a BPTT training step spends its time: per kind of training node, forward and backward.

    python benchmarks/train_profile.py [--network cifar_sew_resnet] [--batch 64] [--T 4] [--steps 7]

Builds the network with the weights and batch of ``benchmarks/training.py`` (SpikingJelly's initialisation),
runs two warm-up steps, then times every node's forward and backward over ``--steps`` steps (wall time, and
process CPU time over wall time: the cores busy while it ran) and prints, per node kind and per node, the mean
milliseconds a step. Also printed: the step's wall and CPU time, what the nodes do not cover (residual sums are
inside their block's node; the loss and the optimiser update are outside), and the page faults a step took
(a freshly touched page of an array costs one). Writes build/benchmarks/train_profile.csv
(benchmarks/results/ with --update-results).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_dir import results_dir  # noqa: E402
import training  # noqa: E402   (its contenders: same weights and batch as the step-time table)

import snnsim.train.grads as G  # noqa: E402
import snnsim.train.grads.conv as CG  # noqa: E402
from snnsim.train.forward import walk_nodes  # noqa: E402


def profile(network: str, B: int, T: int, steps: int) -> tuple[pd.DataFrame, dict]:
    step = training.contenders(network, B, T, "snnsim")["snnsim"]
    bp = step.method
    acc = defaultdict(lambda: [0.0, 0.0])

    def timed(node, method):
        inner = getattr(node, method)

        def run(*args, **kw):
            w0, c0 = time.perf_counter(), time.process_time()
            out = inner(*args, **kw)
            rec = acc[(node.name, type(node).__name__, method)]
            rec[0] += time.perf_counter() - w0
            rec[1] += time.process_time() - c0
            return out
        setattr(node, method, run)

    for node in walk_nodes(bp.nodes):
        if not node.children():                 # leaves: a block's time is its children's plus its sums
            timed(node, "forward")
            timed(node, "backward")
    # inside a conv's backward: the weight gradient from events, the column passes (dense weight gradient,
    # strided input gradient) and the stride-1 input gradient (a dense conv)
    parts = {"_gw_by_events": "weight gradient from events", "split": "columns (sgemm)",
             "conv2d_dense": "stride-1 input gradient (dense conv)"}
    inside = [False]
    busy = [False]                              # one part at a time: _gw_by_events itself calls split

    def part(name, label):
        inner = getattr(CG, name)

        def run(*args, **kw):
            if not inside[0] or busy[0]:
                return inner(*args, **kw)
            busy[0] = True
            w0, c0 = time.perf_counter(), time.process_time()
            try:
                return inner(*args, **kw)
            finally:
                busy[0] = False
                rec = acc[("conv backward: " + label, "ConvNode part", "backward")]
                rec[0] += time.perf_counter() - w0
                rec[1] += time.process_time() - c0
        setattr(CG, name, run)

    for name, label in parts.items():
        part(name, label)
    backward = CG.conv2d_backward

    def conv_backward(*args, **kw):
        inside[0] = True
        try:
            return backward(*args, **kw)
        finally:
            inside[0] = False
    CG.conv2d_backward = G.conv2d_backward = conv_backward
    step()
    step()
    acc.clear()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    wall, cpu = (time.perf_counter() - w0) / steps, (time.process_time() - c0) / steps
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0.ru_minflt) / steps
    rows = [{"network": network, "batch": B, "T": T, "node": name, "kind": kind, "pass": method,
             "ms": w / steps * 1e3, "cores": c / w if w else float("nan")}
            for (name, kind, method), (w, c) in acc.items()]
    return pd.DataFrame(rows), {"wall_ms": wall * 1e3, "cpu_ms": cpu * 1e3, "faults": faults}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", default="cifar_sew_resnet")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--T", type=int, default=4)
    ap.add_argument("--steps", type=int, default=7)
    args = ap.parse_args()
    df, step = profile(args.network, args.batch, args.T, args.steps)
    pd.set_option("display.width", 160)
    print(f"{args.network}, batch {args.batch}, T={args.T}: step {step['wall_ms']:.1f} ms wall, "
          f"{step['cpu_ms']:.1f} ms CPU ({step['cpu_ms'] / step['wall_ms']:.2f} cores), "
          f"{step['faults']:.0f} page faults a step; load average {os.getloadavg()[0]:.2f}")
    nodes = df[df["kind"] != "ConvNode part"]
    by_kind = nodes.groupby(["kind", "pass"]).agg(ms=("ms", "sum")).reset_index()
    by_kind["share"] = by_kind["ms"] / step["wall_ms"]
    fmt = {"float_format": lambda v: f"{v:.3g}", "index": False}
    print(by_kind.sort_values("ms", ascending=False).to_string(**fmt))
    print(f"outside the nodes (loss, optimiser, residual sums): {step['wall_ms'] - nodes['ms'].sum():.1f} ms")
    conv = df[df["kind"] == "ConvNode part"].assign(share=lambda d: d["ms"] / step["wall_ms"])
    print(conv[["node", "ms", "cores", "share"]].to_string(**fmt))
    print(nodes.sort_values("ms", ascending=False).head(20).to_string(**fmt))
    out = results_dir() / "train_profile.csv"
    df.assign(step_wall_ms=step["wall_ms"], step_cpu_ms=step["cpu_ms"], faults_per_step=step["faults"],
              load_avg=round(os.getloadavg()[0], 2)).to_csv(out, index=False)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
