"""Training benchmark: step time against SpikingJelly BPTT, and the memory each training method holds for its
backward pass against T and against depth.

    python benchmarks/training.py [--quick] [--step-only | --memory-only]

1. Step time (forward + backward + AdamW update; batch 32 at T=4 and 8, and batch 64 at T=4; 2 threads for
   all: NUMBA_NUM_THREADS=2 and torch.set_num_threads(2); OMP_WAIT_POLICY=PASSIVE unless already set, fixed
   before any library loads and printed) of snnsim's BPTT and of the same network trained by PyTorch autograd
   in SpikingJelly 2.0 (multi-step LIF, its CPU kernels), Norse 1.1 (LIFBoxCell) and snnTorch 1.0 (Leaky),
   the last two driven step by step over the same layers; same weights and batch; median of alternating
   rounds. Then the peak resident memory 3 steps add (batch 32, conv net and ResNet), each contender in a
   fresh process (RSS is per process; skip with --no-rss). Then the step time of OTTT, SAF and reversible
   training beside BPTT on networks they accept (training_method_steps.csv).
2. Peak bytes held for the backward pass (``snnsim.train.memory.Ledger``: stored activations, membranes,
   traces or accumulations, plus the tensor in flight) for bptt, ottt and saf, for T in 1, 2, 4, 8, 16, on the
   digits MLP with subtract reset (the network all three methods accept), batch 64.
3. The same against depth: MLPs with 1, 2, 4, 8 and 16 hidden LIF layers of 128 units, T=8.

4. Reversible training of RevSNN blocks against BPTT on the same networks (conv + BN, N reversible blocks, LIF
   head; 1x12x12 MNIST crops): against T (4 blocks) and against the number of blocks (T=8).
5. T-RevSNN (a tiny two-level `trevsnn`, one column per timestep) trained by BPTT over its columns and by
   reversible training (one column recomputed at a time, level states cached), T = 1, 2, 4, 8, 16.
Writes build/benchmarks/training_step_time.csv, training_step_rss.csv, training_method_steps.csv,
training_memory.csv and training_memory.png (benchmarks/results/ with --update-results).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "2")
# The OpenMP wait policy is read once, when an OpenMP runtime loads (torch's and Numba's): it must be set
# before any library is imported, the same for both sides. Passive (sleeping) waiting is what snnsim sets on
# import; spin-waiting threads starve each other whenever anything else runs on the machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
OMP_POLICY = os.environ["OMP_WAIT_POLICY"]
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
from results_dir import results_dir  # noqa: E402
sys.path.insert(0, str(ROOT / "tests"))
from peer_models import BUILDERS, norse_lif, snntorch_lif, stepwise  # noqa: E402
from small_nets import revnet  # noqa: E402

from snnsim.data import fit_to_shape, load_dataset  # noqa: E402
from snnsim.layers import load_spec, parse_spec  # noqa: E402
from snnsim.train.bptt import BPTT  # noqa: E402
from snnsim.train.forward import NeuronTrainCfg  # noqa: E402
from snnsim.train.loop import init_params  # noqa: E402
from snnsim.train.losses import make_loss  # noqa: E402
from snnsim.train.online import make_online  # noqa: E402
from snnsim.train.optim import make_optimizer  # noqa: E402
from snnsim.weights import check_weights  # noqa: E402

RESULTS = results_dir()
torch.set_num_threads(2)


def batch(name, B):
    ds = "digits" if name.startswith("digits") else "mnist"
    x, y = load_dataset(ds).split("train")
    x, y = x[:B], y[:B]
    if name == "cifar_sew_resnet":
        x = np.repeat(np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2))), 3, axis=1)
    return np.ascontiguousarray(x, np.float32), y


# ----------------------------------------------------------------------------- 1. step time
PEERS = ("spikingjelly", "norse", "snntorch")


def contenders(name, B, T, only=None):
    """One training step (forward over T steps, cross-entropy of the mean output, backward, AdamW) for snnsim's
    BPTT and each peer, on the same initial weights and batch: SpikingJelly's multi-step model; Norse's
    LIFBoxCell and snnTorch's Leaky driven step by step over the same torch layers (tests/peer_models.py)."""
    from spikingjelly.activation_based import functional

    def model():
        torch.manual_seed(0)
        return BUILDERS[name](0.0).train()

    sj = model()
    spec = load_spec(ROOT / "networks" / f"{name}.yaml")
    params = dict(check_weights(spec, {k: v.detach().numpy().copy() for k, v in sj.state_dict().items()}))
    x, y = batch(name, B)
    xt = torch.from_numpy(x)
    xs = xt.unsqueeze(0).repeat((T,) + (1,) * x.ndim)
    yt = torch.from_numpy(y)
    bp = BPTT(spec)
    opt = make_optimizer("adamw", bp.trainable)
    loss_fn = make_loss("ce")
    xin = fit_to_shape(x, spec.input_shape)

    def ours():
        bp.step(params, xin, y, T, loss_fn, opt, 1e-3)
    ours.method = bp                # the BPTT object, for benchmarks/train_profile.py

    def torch_step(module, forward, inp):
        opt_t = torch.optim.AdamW(module.parameters(), lr=1e-3)

        def step():
            functional.reset_net(module)
            opt_t.zero_grad()
            loss = torch.nn.functional.cross_entropy(forward(inp).mean(0), yt)
            loss.backward()
            opt_t.step()
        return step

    def stepped(neuron):
        m = model()
        return torch_step(m, stepwise(m, T, neuron, train=True), xt)

    makers = {"snnsim": lambda: ours, "spikingjelly": lambda: torch_step(sj, sj, xs),
              "norse": lambda: stepped(norse_lif), "snntorch": lambda: stepped(snntorch_lif)}
    return {k: make() for k, make in makers.items() if only in (None, k)}


def step_time(name, B=64, T=4, reps=7):
    steps = contenders(name, B, T)
    for f in steps.values():     # warm-up (Numba cache load / compile, torch allocator)
        f()
        f()
    times = {k: [] for k in steps}
    for _ in range(reps):        # alternating rounds: every contender once per round
        for key, f in steps.items():
            t0 = time.perf_counter()
            f()
            times[key].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
    fastest = min(PEERS, key=med.get)
    return {"network": name, "batch": B, "T": T, **{f"{k}_ms": v for k, v in med.items()},
            "ratio_sj_over_snnsim": med["spikingjelly"] / med["snnsim"], "fastest_peer": fastest,
            "ratio_fastest_peer_over_snnsim": med[fastest] / med["snnsim"], "load_avg": round(os.getloadavg()[0], 2)}


def method_steps(T=4, B=64, reps=7):
    """Step time of the memory-saving methods beside BPTT on the networks each accepts (the memory table's):
    OTTT (variant A) and SAF (variant E) on the digits MLP with subtract reset, reversible training on 4 RevSNN
    blocks (12x12 MNIST crops) and on a T-column T-RevSNN; AdamW updates; median of alternating rounds."""
    from snnsim.train.loop import TrainConfig, make_method

    x, y = batch("digits_mlp", B)
    xm, ym = batch("mnist_conv", B)
    xm = np.ascontiguousarray(xm[:, :, 8:20, 8:20])
    cases = [(load_spec(ROOT / "networks" / "digits_mlp_soft.yaml"), x, y, [("bptt", None), ("ottt", "A"),
                                                                             ("saf", "E")]),
             (revnet(4), xm, ym, [("bptt", None), ("reversible", None)]),
             (trev_spec(T), x, y, [("bptt", None), ("reversible", None)])]
    rows = []
    for spec, xs, ys, methods in cases:
        steps = {}
        for method, variant in methods:
            m = make_method(spec, TrainConfig(method=method, variant=variant or "A"))
            params, opt, loss = init_params(spec, 0), make_optimizer("adamw", m.trainable), make_loss("ce")
            steps[f"{method}{'' if variant is None else ' ' + variant}"] = (
                lambda m=m, params=params, opt=opt, loss=loss, xs=xs, ys=ys:
                m.step(params, xs, ys, T, loss, opt, 1e-3))
        for f in steps.values():                 # warm-up: compiled code, buffers
            f()
        times = {k: [] for k in steps}
        for _ in range(reps):
            for k, f in steps.items():
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
        med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
        for k, ms in med.items():
            rows.append({"network": spec.name, "batch": B, "T": T, "method": k, "step_ms": ms,
                         "time_vs_bptt": ms / med["bptt"], "load_avg": round(os.getloadavg()[0], 2)})
    return pd.DataFrame(rows)


def _hwm_kib() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB (Linux /proc)."""
    vals = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            vals[line.split(":")[0]] = int(line.split()[1])
    return vals["VmRSS"], vals["VmHWM"]


def step_rss_child(name, B, T, who):
    """In a fresh process that builds only ``who``: the peak resident memory that 3 training steps at batch B
    add above the resident memory before them. Two warm-up steps at batch 2 first load compiled code and
    kernels (not counted) while allocating little; the kernel's high-water mark is then reset (writing 5 to
    /proc/self/clear_refs, Linux >= 4.0). The parent runs this with a fixed malloc mmap threshold
    (MALLOC_MMAP_THRESHOLD_), so that freed arrays go back to the system and memory an allocator kept from
    earlier work is not silently reused: resident memory then follows the arrays a step holds."""
    import gc

    warm = contenders(name, 2, T, who)[who]
    warm()
    warm()
    step = contenders(name, B, T, who)[who]
    del warm
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    base, _ = _hwm_kib()
    for _ in range(3):
        step()
    _, peak = _hwm_kib()
    print(f"RSS {peak - base}")


def step_rss(name, B, T):
    """Peak resident MiB a step adds, per contender, each in its own process (RSS is per process)."""
    import subprocess

    row = {"network": name, "batch": B, "T": T}
    for who in ("snnsim",) + PEERS:
        out = subprocess.run([sys.executable, __file__, "--rss-child", name, str(B), str(T), who],
                             capture_output=True, text=True, timeout=900,
                             env=dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536"))
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RSS ")]
        row[f"{who}_MiB"] = int(lines[-1].split()[1]) / 1024 if out.returncode == 0 and lines else float("nan")
    for peer in PEERS:
        row[f"snnsim_over_{peer}"] = row["snnsim_MiB"] / row[f"{peer}_MiB"]
    return row


# ----------------------------------------------------------------------------- 2./3. memory
def mlp_spec(depth: int, width: int = 128) -> object:
    layers = [{"name": "flatten", "type": "flatten"}]
    for i in range(depth):
        layers += [{"name": f"fc{i + 1}", "type": "linear", "out_features": width},
                   {"name": f"sn{i + 1}", "type": "lif"}]
    layers += [{"name": "out", "type": "linear", "out_features": 10}, {"name": "sn_out", "type": "lif"}]
    return parse_spec({"name": f"mlp{depth}", "input_shape": [1, 8, 8],
                       "neuron_defaults": {"lif": {"tau": 2.0, "v_reset": None}}, "layers": layers})


class _NoUpdate:
    def step(self, params, grads, lr):
        pass


def peak_bytes(spec, method, T, x, y):
    params = init_params(spec, 0)
    for k in params:
        if k.endswith("weight"):
            params[k] *= 4
    if method == "bptt":
        return BPTT(spec).loss_and_grads(params, x, y, T, make_loss("ce")).memory["peak_bytes"]
    if method == "reversible":
        from snnsim.train.reversible import make_reversible
        res = make_reversible(spec, NeuronTrainCfg()).loss_and_grads(params, x, y, T, make_loss("ce"))
        return res.memory["peak_bytes"]
    variant = "A" if method == "ottt" else "E"
    return make_online(spec, NeuronTrainCfg(), method, variant).step(params, x, y, T, None, _NoUpdate(),
                                                                     0.0).memory["peak_bytes"]


def trev_spec(T: int):
    """A tiny T-RevSNN for 8x8 digits with T columns (the same shape as notebook 03's)."""
    return parse_spec({"name": f"trev{T}", "input_shape": [1, 8, 8], "timesteps": T, "encoding": "direct",
                       "readout": {"reduce": "last"},
                       "layers": [{"name": "trev", "type": "trevsnn", "columns": T, "channels": [8, 16],
                                   "strides": [1, 2], "kernel_size": 3, "hidden_ratio": 2,
                                   "stem": [{"kernel_size": 3, "stride": 1, "padding": 1}], "fusion": True,
                                   "heads": 1, "classes": 10}]})


def trev_peak_bytes(T, method, x, y):
    from snnsim.train.loop import TrainConfig, make_method

    spec = trev_spec(T)
    m = make_method(spec, TrainConfig(method=method))
    return m.loss_and_grads(init_params(spec, 0), x, y, T, make_loss("ce")).memory["peak_bytes"]


def memory_table(quick):
    x, y = batch("digits_mlp", 64)
    rows = []
    soft = load_spec(ROOT / "networks" / "digits_mlp_soft.yaml")
    for T in (1, 2, 4, 8, 16):
        for m in ("bptt", "ottt", "saf"):
            rows.append({"sweep": "T", "network": soft.name, "depth": 1, "T": T, "method": m,
                         "peak_bytes": peak_bytes(soft, m, T, x, y)})
    for depth in (1, 2, 4, 8) if quick else (1, 2, 4, 8, 16):
        spec = mlp_spec(depth)
        for m in ("bptt", "ottt", "saf"):
            rows.append({"sweep": "depth", "network": spec.name, "depth": depth, "T": 8, "method": m,
                         "peak_bytes": peak_bytes(spec, m, 8, x, y)})
    xm, ym = batch("mnist_conv", 64)
    xm = np.ascontiguousarray(xm[:, :, 8:20, 8:20])
    for T in (1, 2, 4, 8, 16):
        spec = revnet(4)
        for m in ("bptt", "reversible"):
            rows.append({"sweep": "T", "network": spec.name, "depth": 4, "T": T, "method": m,
                         "peak_bytes": peak_bytes(spec, m, T, xm, ym)})
    for blocks in (1, 2, 4, 8) if quick else (1, 2, 4, 8, 16):
        spec = revnet(blocks)
        for m in ("bptt", "reversible"):
            rows.append({"sweep": "depth", "network": spec.name, "depth": blocks, "T": 8, "method": m,
                         "peak_bytes": peak_bytes(spec, m, 8, xm, ym)})
    for T in (1, 2, 4, 8, 16):
        for m in ("bptt", "reversible"):
            rows.append({"sweep": "T", "network": f"trev{T}", "depth": 2, "T": T, "method": m,
                         "peak_bytes": trev_peak_bytes(T, m, x, y)})
    return pd.DataFrame(rows)


def plot(mem: pd.DataFrame, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, sweep, xcol in ((axes[0], "T", "T"), (axes[1], "depth", "depth")):
        d = mem[mem.sweep == sweep]
        for (fam, m), g in d.groupby([d.network.str.rstrip("0123456789"), "method"]):
            ls = "--" if fam.startswith("revnet") else (":" if fam.startswith("trev") else "-")
            kind = "RevSNN blocks" if fam.startswith("revnet") else ("T-RevSNN" if fam.startswith("trev") else "LIF MLP")
            label = f"{m} ({kind})"
            ax.plot(g[xcol], g.peak_bytes / 2 ** 10, marker="o", linestyle=ls, label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("timesteps T" if sweep == "T" else "hidden LIF layers / RevSNN blocks (T=8)")
        ax.set_ylabel("peak bytes held for backward (KiB)")
        ax.set_title(f"memory vs {sweep} (batch 64)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--memory-only", action="store_true", help="skip the step-time comparison")
    ap.add_argument("--step-only", action="store_true", help="only the step-time and step-memory comparison")
    ap.add_argument("--no-rss", action="store_true", help="skip the peak-RSS comparison (a process per contender)")
    ap.add_argument("--rss-child", nargs=4, metavar=("NET", "B", "T", "WHO"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        name, B, T, who = args.rss_child
        step_rss_child(name, int(B), int(T), who)
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.memory_only:
        nets = ["digits_mlp", "mnist_conv"] if args.quick else ["digits_mlp", "mnist_conv", "cifar_sew_resnet"]
        # batch 32 at T=4 and T=8 (issue-style comparison), and the earlier batch-64 T=4 point
        shapes = [(32, 4), (32, 8)] if args.quick else [(32, 4), (32, 8), (64, 4)]
        st = pd.DataFrame([step_time(n, B=B, T=T, reps=3 if args.quick else 9) for n in nets for B, T in shapes])
        st.to_csv(RESULTS / "training_step_time.csv", index=False)
        print(f"OMP_WAIT_POLICY={OMP_POLICY} for every contender (set before any library loaded)")
        print(st.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        print(f"load average {os.getloadavg()[0]:.2f}")
        ms = method_steps(reps=3 if args.quick else 7)
        ms.to_csv(RESULTS / "training_method_steps.csv", index=False)
        print("-- step time of the memory-saving methods beside BPTT on the same network (batch 64, T=4)")
        print(ms.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        if not args.no_rss:
            rss = pd.DataFrame([step_rss(n, 32, T) for n in nets[1:] for T in ((4,) if args.quick else (4, 8))])
            rss.to_csv(RESULTS / "training_step_rss.csv", index=False)
            print("-- peak resident MiB that 3 training steps add (a fresh process per contender; code loaded first)")
            print(rss.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if args.step_only:
        return
    mem = memory_table(args.quick)
    mem.to_csv(RESULTS / "training_memory.csv", index=False)
    for fam, d in mem.groupby(mem.network.str.rstrip("0123456789")):
        piv = d.pivot_table(index=["sweep", "T", "depth"], columns="method", values="peak_bytes")
        for m in piv.columns:
            if m != "bptt":
                piv[f"bptt/{m}"] = piv["bptt"] / piv[m]
        print(f"-- {fam}: peak bytes held for backward (batch 64)")
        print(piv.to_string(float_format=lambda v: f"{v:.4g}"))
    plot(mem, RESULTS / "training_memory.png")
    print(f"wrote {RESULTS}/training_memory.csv and training_memory.png"
          + ("" if args.memory_only else ", training_step_time.csv"))


if __name__ == "__main__":
    main()
