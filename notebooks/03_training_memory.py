# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. Training memory and time against T and depth: BPTT, reversible and online training
#
# **The question.** Each seed paper sells a training-cost property:
#
# | method | claim | the paper's numbers (docs/papers.md) |
# |---|---|---|
# | RevSNN (Zhang & Zhang, AAAI 2024) | memory per image does not grow with depth | 3.79x less GPU memory per image (RevSResNet37 vs its counterpart), 3.00x (RevSFormer-4-384) [ABS]; re-measured by ParaRevSNN: MS-ResNet18 58.88 vs RevSResNet21 32.41 MB/img, MS-ResNet34 103.59 vs RevSResNet37 38.13 MB/img [SEC] |
# | T-RevSNN (Hu et al., ICML 2024) | O(L) training memory instead of BPTT's O(L x T) | 8.6x memory and 2.0x training time vs the Spike-driven Transformer [ABS]; ablation on MS-ResNet-34: 267.1 -> 88.1 MB/img, 11.2 -> 7.4 min/epoch [SEC] |
# | OTTT (Xiao et al., NeurIPS 2022) | training memory constant in T | O(L B N), "agnostic to time steps" [ABS (docs/papers.md)] |
# | SAF (Saiin et al.) | halves the forward operations of OTTT | 1 linear op per layer and step instead of OTTT's 2 [ (docs/papers.md)]; memory 1.184 vs 1.656 GB (SAF-E vs OTTT_O), 1.157 vs 1.656 GB (SAF-F vs OTTT_A); time per minibatch 0.468 vs 0.666 s and 0.247 vs 0.661 s [ (docs/papers.md)] |
#
# **How we measure.** With snnsim's own training code (`snnsim.train`): one training step (forward, backward,
# AdamW update) on a batch of scikit-learn digits, and its **peak bytes held for the backward pass**
# (`snnsim.train.memory.Ledger`: stored activations, membranes, traces or accumulations, plus the tensor in
# flight; parameters, gradients and optimiser state are the same for every method and are left out), and its
# wall time (fastest of the repeats: the machine is shared; single-threaded BLAS as the training code runs
# it). Networks:
#
# * MLPs with 1..16 hidden LIF layers of 128 units, subtract reset, no batch norm (the networks BPTT, OTTT and
#   SAF all accept; depth 1 is `networks/digits_mlp_soft.yaml`);
# * chains of RevSNN reversible blocks (two halves of 4 channels, 8 at full size; LIF, 3x3 convs, after a conv
#   stem) at 1..16 blocks,
#   trained by BPTT and by reversible training (`--method reversible`);
# * a tiny T-RevSNN (two levels, one column per timestep) trained by BPTT over its columns and by reversible
#   training (`--method reversible`: one column recomputed at a time, level states cached).
#
# The weights are PyTorch's default initialisation (memory does not depend on them); the numbers are bytes of
# float32 arrays on this CPU implementation, so the ratios between methods, not the absolute sizes, are what
# compares with the papers' GPU measurements.

# %%
import os
import sys
import time

sys.path.insert(0, os.path.abspath("notebooks" if os.path.isdir("notebooks") else "."))
import matplotlib

if "ipykernel" not in sys.modules and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")          # run as a script: write the PNGs, open no windows
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import nbutil as U
from snnsim.layers import load_spec, parse_spec
from snnsim.train.loop import TrainConfig, init_params, make_method
from snnsim.train.losses import make_loss
from snnsim.train.optim import make_optimizer

pd.set_option("display.width", 200)
B = 64
TS = U.pick((1, 2, 4, 8), (1, 2, 4, 8, 16, 32))
DEPTHS = U.pick((1, 2, 4, 8), (1, 2, 4, 8, 16))
T_DEPTH = U.pick(4, 8)          # T of the depth sweep
D_T = 2                         # depth of the T sweep
REPEATS = U.pick(3, 7)
HALF = U.pick(4, 8)             # channels per half of a reversible block
print(f"size={U.SIZE}: batch {B}, T sweep {TS} at depth {D_T}, depth sweep {DEPTHS} at T={T_DEPTH}, "
      f"{REPEATS} timed repeats")


# %% [markdown]
# ## Networks and the measurement

# %%
def mlp(depth: int, width: int = 128):
    if depth == 1:
        return load_spec(U.NETS / "digits_mlp_soft.yaml")
    layers = [{"name": "flatten", "type": "flatten"}]
    for i in range(depth):
        layers += [{"name": f"fc{i + 1}", "type": "linear", "out_features": width},
                   {"name": f"sn{i + 1}", "type": "lif"}]
    layers += [{"name": "out", "type": "linear", "out_features": 10}, {"name": "sn_out", "type": "lif"}]
    return parse_spec({"name": f"mlp{depth}", "input_shape": [1, 8, 8], "timesteps": 4, "encoding": "direct",
                       "readout": {"reduce": "mean", "source": "output"},
                       "neuron_defaults": {"lif": {"tau": 2.0, "v_threshold": 1.0, "v_reset": None}},
                       "layers": layers})


def revchain(depth: int, half: int = HALF):
    def sub():
        return [{"name": "sn", "type": "lif"},
                {"name": "conv", "type": "conv2d", "out_channels": half, "kernel_size": 3, "padding": 1, "bias": False}]
    layers = [{"name": "stem", "type": "conv2d", "out_channels": 2 * half, "kernel_size": 3, "padding": 1}]
    layers += [{"name": f"rev{i}", "type": "reversible", "f": sub(), "g": sub()} for i in range(depth)]
    layers += [{"name": "sn_out0", "type": "lif"}, {"name": "flatten", "type": "flatten"},
               {"name": "fc", "type": "linear", "out_features": 10}, {"name": "sn_out", "type": "lif"}]
    return parse_spec({"name": f"revchain{depth}", "input_shape": [1, 8, 8], "timesteps": 4, "encoding": "direct",
                       "readout": {"reduce": "mean", "source": "output"},
                       "neuron_defaults": {"lif": {"tau": 2.0, "v_threshold": 1.0, "v_reset": None}},
                       "layers": layers})


def trev_tiny(T: int):
    return parse_spec({"name": f"trev_tiny{T}", "input_shape": [1, 8, 8], "timesteps": T, "encoding": "direct",
                       "readout": {"reduce": "last"},
                       "layers": [{"name": "trev", "type": "trevsnn", "columns": T, "channels": [8, 16],
                                   "strides": [1, 2], "kernel_size": 3, "hidden_ratio": 2,
                                   "stem": [{"kernel_size": 3, "stride": 1, "padding": 1}], "fusion": True,
                                   "heads": 1, "classes": 10}]})


VARIANT = {"bptt": "", "reversible": "", "ottt": "A", "saf": "E"}
x_all, y_all = U.dataset("digits", "train", B, (1, 8, 8))
unavailable = {}


def measure(spec, method: str, T: int, variant: str | None = None, repeats: int = REPEATS) -> dict:
    """Peak bytes held for backward and the median wall time of one training step; NaN (and the training
    code's message in ``unavailable``) when the method does not train this network."""
    v = VARIANT[method] if variant is None else variant
    label = f"{method}-{v}" if v else method
    try:
        m = make_method(spec, TrainConfig(method=method, variant=v))
        params = init_params(spec, 0)
        opt = make_optimizer("adamw", m.trainable)
        loss = make_loss("ce")
        res = m.step(params, x_all, y_all, T, loss, opt, 1e-3)          # warm-up (and the ledger)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            m.step(params, x_all, y_all, T, loss, opt, 1e-3)
            times.append(time.perf_counter() - t0)
        return dict(method=label, network=spec.name, T=T, peak_bytes=res.memory["peak_bytes"],
                    per_image_kib=res.memory["peak_bytes"] / B / 1024, step_ms=1e3 * float(np.min(times)),
                    forward_ops=res.forward_ops)
    except Exception as e:                                  # noqa: BLE001 - report what the training code says
        unavailable[(label, spec.name.rstrip("0123456789"))] = f"{type(e).__name__}: {e}"
        return dict(method=label, network=spec.name, T=T, peak_bytes=np.nan, per_image_kib=np.nan, step_ms=np.nan,
                    forward_ops={})


# %% [markdown]
# ## Memory and time against T

# %%
def family_rows(depth: int, T: int) -> list[dict]:
    """The MLP (BPTT, OTTT, SAF) and the RevSNN chain (BPTT, reversible) of one depth, measured at T."""
    rows = [dict(family="MLP", depth=depth, **measure(mlp(depth), meth, T)) for meth in ("bptt", "ottt", "saf")]
    return rows + [dict(family="RevSNN chain", depth=depth, **measure(revchain(depth), meth, T))
                   for meth in ("bptt", "reversible")]


rows = []
for T in TS:
    rows += family_rows(D_T, T)
    if T > 1:
        for meth in ("bptt", "reversible"):
            rows.append(dict(family="T-RevSNN", depth=2, **measure(trev_tiny(T), meth, T, repeats=1)))
t_sweep = pd.DataFrame(rows)
print(t_sweep.drop(columns=["forward_ops", "peak_bytes"]).dropna().to_string(
    index=False, float_format=lambda v: f"{v:.4g}"))
for (label, net), msg in unavailable.items():
    print(f"not measured: {label} on {net}*: {msg}")

# %% [markdown]
# ## Memory and time against depth

# %%
d_sweep = pd.DataFrame([row for d in DEPTHS for row in family_rows(d, T_DEPTH)])
print(d_sweep.drop(columns=["forward_ops", "peak_bytes"]).dropna().to_string(
    index=False, float_format=lambda v: f"{v:.4g}"))

# %%
fig, axes = plt.subplots(2, 2, figsize=(12, 8))
styles = {"bptt": "o-", "ottt-A": "s--", "saf-E": "^--", "reversible": "D-"}
colors = {"MLP": "tab:blue", "RevSNN chain": "tab:red", "T-RevSNN": "tab:green"}
for col, (sweep, xcol, xlabel) in enumerate(((t_sweep, "T", f"T (depth {D_T})"),
                                             (d_sweep, "depth", f"hidden layers / reversible blocks (T={T_DEPTH})"))):
    for (fam, meth), d in sweep.dropna(subset=["peak_bytes"]).groupby(["family", "method"]):
        kw = dict(color=colors[fam], label=f"{fam}: {meth}")
        axes[0, col].plot(d[xcol], d.per_image_kib, styles.get(meth, "x-"), **kw)
        axes[1, col].plot(d[xcol], d.step_ms, styles.get(meth, "x-"), **kw)
    for row, ylabel in ((0, "peak held for backward per image (KiB)"), (1, f"step time, batch {B} (ms)")):
        ax = axes[row, col]
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
axes[0, 0].legend(fontsize=8)
axes[0, 0].set_title("memory against T", fontsize=10)
axes[0, 1].set_title("memory against depth", fontsize=10)
fig.tight_layout()
U.savefig(fig, "03_training_memory_time")
plt.show()

# %% [markdown]
# ## SAF against OTTT, the papers' pairs
#
# SAF-E against OTTT_O (a loss and an update at every step) and SAF-F against OTTT_A (one update per batch),
# on the 1-hidden-layer MLP at T = 6, the T of SAF's Table 2. Forward work per step is what each implementation
# reports (`StepOut.forward_ops`): synaptic-layer evaluations and state arrays updated. snnsim's OTTT
# evaluates each synaptic layer once (its explicit backward does not need the official code's second
# evaluation on the traces (docs/papers.md)), so the count the "halving" claim refers to is printed as well.

# %%
PAPER_SAF = {("saf-E", "ottt-O"): dict(mem=(1.184, 1.656), time=(0.468, 0.666)),
             ("saf-F", "ottt-A"): dict(mem=(1.157, 1.656), time=(0.247, 0.661))}   # (docs/papers.md) (GB, s)
spec1 = mlp(1)
pairs = {lab: measure(spec1, lab.split("-")[0], 6, lab.split("-")[1]) for lab in ("ottt-O", "ottt-A", "saf-E", "saf-F")}
n_syn = sum(1 for layer in spec1.layers if layer.kind in ("linear", "conv2d"))
rows = []
for (saf, ottt), paper in PAPER_SAF.items():
    a, b = pairs[saf], pairs[ottt]
    rows.append(dict(pair=f"{saf} / {ottt}", memory_ratio=a["peak_bytes"] / b["peak_bytes"],
                     paper_memory_ratio=paper["mem"][0] / paper["mem"][1], time_ratio=a["step_ms"] / b["step_ms"],
                     paper_time_ratio=paper["time"][0] / paper["time"][1],
                     fwd_evals=f"{a['forward_ops'].get('synaptic')} vs {b['forward_ops'].get('synaptic')} "
                               f"(official OTTT: {2 * n_syn})",
                     state_arrays=f"{a['forward_ops'].get('state_arrays')} vs {b['forward_ops'].get('state_arrays')}"))
saf_tab = pd.DataFrame(rows)
print(pd.DataFrame(pairs).T[["peak_bytes", "step_ms", "forward_ops"]].to_string())
print()
print(saf_tab.to_string(index=False, float_format=lambda v: f"{v:.3f}"))

# %% [markdown]
# ## hwmodel's first-order training model beside the ledger
#
# `hwmodel.training.training_cost` estimates the bytes each method stores per sample from an inference trace
# (docs/hwmodel.md "Training cost": BPTT keeps s and u of every neuron at every step; reversible and online keep
# one step's worth). Its ratios for the T-sweep MLP, next to the ratios the training code measured:

# %%
from hwmodel import count, load_arch, training_cost
from snnsim.engine import run
from snnsim.network import build_network
from snnsim.weights import check_weights
from snnsim.train.checkpoint import file_keys

model_rows = []
for T in TS:
    spec = mlp(D_T)
    net = build_network(spec, check_weights(spec, file_keys(spec, init_params(spec, 0)), "init"))
    _, summ = training_cost(count(run(net, x_all, timesteps=T).trace), load_arch("evt45"))
    s = summ.set_index("method").stored_bytes
    meas = t_sweep[(t_sweep.family == "MLP") & (t_sweep["T"] == T)].set_index("method").peak_bytes
    model_rows.append(dict(T=T, model_bptt_over_online=s["bptt"] / s["online"],
                           measured_bptt_over_ottt=meas["bptt"] / meas["ottt-A"],
                           measured_bptt_over_saf=meas["bptt"] / meas["saf-E"]))
model_tab = pd.DataFrame(model_rows)
print(model_tab.to_string(index=False, float_format=lambda v: f"{v:.3g}"))

# %% [markdown]
# ## Findings (computed above)


# %%
def col(tab, fam, meth, xcol, what="peak_bytes"):
    d = tab[(tab.family == fam) & (tab.method == meth)].set_index(xcol)[what]
    return d.dropna()


Tmax, Dmax = max(TS), max(DEPTHS)
findings = []
bp, ot, sa = (col(t_sweep, "MLP", m, "T") for m in ("bptt", "ottt-A", "saf-E"))
findings.append(f"MLP (depth {D_T}), T {min(TS)} -> {Tmax}: BPTT's peak grows {bp[Tmax] / bp[min(TS)]:.2f}x, "
                f"OTTT's {ot[Tmax] / ot[min(TS)]:.2f}x, SAF's {sa[Tmax] / sa[min(TS)]:.2f}x; at T={Tmax} BPTT holds "
                f"{bp[Tmax] / ot[Tmax]:.2f}x OTTT's and {bp[Tmax] / sa[Tmax]:.2f}x SAF's bytes "
                f"({bp[Tmax] / B / 1024:.0f} / {ot[Tmax] / B / 1024:.0f} / {sa[Tmax] / B / 1024:.0f} KiB per image).")
cross = [T for T in TS if bp[T] > ot[T]]
findings.append(f"BPTT first needs more than OTTT at T={cross[0]}" if cross else "BPTT never exceeds OTTT in the sweep")
for fam, meths in (("MLP", ("bptt", "ottt-A", "saf-E")), ("RevSNN chain", ("bptt", "reversible"))):
    parts = []
    for m in meths:
        d = col(d_sweep, fam, m, "depth")
        if len(d):
            parts.append(f"{m} {d[Dmax] / d[min(DEPTHS)]:.2f}x")
    findings.append(f"{fam}, depth {min(DEPTHS)} -> {Dmax} at T={T_DEPTH}: peak memory grows " + ", ".join(parts))
rb, rr = col(d_sweep, "RevSNN chain", "bptt", "depth"), col(d_sweep, "RevSNN chain", "reversible", "depth")
if len(rr):
    sb = col(d_sweep, "RevSNN chain", "bptt", "depth", "step_ms")
    sr = col(d_sweep, "RevSNN chain", "reversible", "depth", "step_ms")
    findings.append(f"RevSNN chain at depth {Dmax}, T={T_DEPTH}: BPTT / reversible memory = {rb[Dmax] / rr[Dmax]:.2f}x "
                    f"(papers: 3.79x for RevSResNet37, 1.82x and 2.72x re-measured by ParaRevSNN); step time "
                    f"reversible / BPTT = {sr[Dmax] / sb[Dmax]:.2f}x")
    tr, tb = col(t_sweep, "RevSNN chain", "reversible", "T"), col(t_sweep, "RevSNN chain", "bptt", "T")
    findings.append(f"RevSNN chain (depth {D_T}), T {min(TS)} -> {Tmax}: reversible training's memory grows "
                    f"{tr[Tmax] / tr[min(TS)]:.2f}x (it re-simulates one F or G block over all T steps), BPTT's "
                    f"{tb[Tmax] / tb[min(TS)]:.2f}x")
for _, r in saf_tab.iterrows():
    findings.append(f"{r.pair} at T=6: memory {r.memory_ratio:.2f}x (paper {r.paper_memory_ratio:.2f}x), time "
                    f"{r.time_ratio:.2f}x (paper {r.paper_time_ratio:.2f}x); synaptic evaluations per step "
                    f"{r.fwd_evals}")
for (label, net), msg in unavailable.items():
    findings.append(f"not measured: {label} on {net}: {msg}")
print("\n".join(f"- {f}" for f in findings))
print(f"\n(notebook ran in {U.elapsed():.1f} s, size={U.SIZE})")
