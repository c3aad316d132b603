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
# # 4. IIR-SNN: accuracy and energy as T is reduced from 5 to 1
#
# **The question.** IIR-SNN (Chowdhury, Rathi, Roy; arXiv 2110.05929, ECCV 2022) trains at T = 5 and then
# retrains at T = 4, 3, 2, 1, each stage initialised from the previous one, because training directly at T = 1
# suffers "layerwise spike vanishing". Its claims (docs/papers.md): VGG16 at
# T = 1 reaches 93.05 % on CIFAR-10, 70.15 % on CIFAR-100 and 69.00 % on ImageNet; latency 5-2500x lower than
# other SNNs; **25-33x higher energy efficiency than the equivalent DNN**, computed with the arithmetic proxy
# (E_MAC 4.6 pJ on the analog first layer, E_AC 0.9 pJ x spike rate x FLOPs elsewhere, E_DNN = 4.6 pJ x FLOPs).
# It motivates T = 1 by the "memory access overhead of fetching membrane potentials", which the proxy does not
# price.
#
# **What we run.** One network, `mnist_conv`, on MNIST:
#
# 1. its shipped trained weights (BPTT at T = 4) run at T = 5, 4, 3, 2, 1 without retraining (the engine's
#    `-T 5,4,3,2,1`), with the firing rate of every layer, to see whether spikes vanish at low T;
# 2. the IIR schedule with `snnsim.train` (`--timesteps 5,4,3,2,1`): starting from the shipped weights, a
#    fine-tuning stage at each T, each from the previous stage's weights (BPTT, AdamW). Unlike IIR, thresholds
#    and leaks are not trained (snnsim trains weights, biases and batch norm);
#
# and prices every run under the proxy and on evt45 (memory-aware, with its default per-synop dataflow and
# output-stationary), with the latency of an inference on evt45. The equivalent DNN is the same topology priced
# dense (`nbutil.ann_trace`, see notebook 2).

# %%
import os
import sys

sys.path.insert(0, os.path.abspath("notebooks" if os.path.isdir("notebooks") else "."))
import matplotlib

if "ipykernel" not in sys.modules and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")          # run as a script: write the PNGs, open no windows
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import nbutil as U
from hwmodel import load_arch, price
from snnsim.engine import accuracy, run
from snnsim.network import build_network
from snnsim.train.checkpoint import file_keys
from snnsim.train.loop import TrainConfig, train
from snnsim.weights import check_weights, load_weights

pd.set_option("display.width", 200)
TS = (5, 4, 3, 2, 1)
N_EVAL = U.pick(200, 1000)            # MNIST test images for accuracy and energy
N_TRAIN = U.pick(256, None)           # training images per IIR stage (None: the whole train split, 4,000)
EPOCHS = U.pick(1, 2)                 # epochs per stage
print(f"size={U.SIZE}: eval on {N_EVAL} test images; IIR stages of {EPOCHS} epoch(s) on "
      f"{N_TRAIN or 'all'} training images")

IIR_ENERGY_X = (25, 33)   # IIR-SNN abstract: 25-33x higher energy efficiency than the DNN (proxy) (docs/papers.md)
IIR_RATIO = (1 / IIR_ENERGY_X[1], 1 / IIR_ENERGY_X[0])    # the same claim as E_SNN / E_ANN
IIR_T1_ACC = {"CIFAR-10": 0.9305, "CIFAR-100": 0.7015, "ImageNet": 0.6900}   # VGG16 at T = 1 (docs/papers.md)

EVT = load_arch("evt45")
# the SNN and the ANN priced by the same code on the same architecture, every layer on its best mapping
# (docs/hwmodel.md "Mappings"), or restricted to per-op accumulation (no reuse, for both)
ARCHS = {"proxy45": load_arch("proxy45"), "evt45": EVT,
         "evt45 per-op accumulation": U.arch_variant(EVT, "evt45 per-op accumulation", membrane="per_synop")}

# %%
spec, net = U.load_net("mnist_conv")
xte, yte = U.dataset("mnist", "test", N_EVAL, spec.input_shape)
xtr, ytr = U.dataset("mnist", "train", N_TRAIN, spec.input_shape)
shipped = {k: np.array(v, np.float32) for k, v in load_weights(spec, U.NETS / "mnist_conv.npz").items()}

ann = U.ann_trace(run(net, xte, timesteps=1).trace)
E_ANN = {an: price(ann, a).totals["energy_pj"] for an, a in ARCHS.items()}
print("the same topology as a dense ANN, priced the same way:",
      ", ".join(f"{an} {U.fmt(e, 'pJ')}" for an, e in E_ANN.items()))


def evaluate(weights: dict, T: int, label: str) -> tuple[dict, dict]:
    n = build_network(spec, check_weights(spec, file_keys(spec, weights), label))
    res = run(n, xte, timesteps=T)
    row = dict(weights=label, T=T, regime=res.trace.regime, accuracy=accuracy(res, yte),
               firing_rate=U.firing_rate(res.trace))
    for an, arch in ARCHS.items():
        rep = price(res.trace, arch)
        row[f"E {an} (µJ)"] = rep.totals["energy_pj"] / 1e6
        row[f"SNN/ANN {an}"] = rep.totals["energy_pj"] / E_ANN[an]
        if an == "evt45":
            row["latency evt45 (µs)"] = rep.totals["latency_ns"] / 1e3
            row["state (B)"] = rep.totals["state_bytes"]
    rates = {r.name: r.events_out.sum() / max(1, r.neuron_updates.sum())
             for r in res.trace.layers if r.kind == "neuron"}
    return row, rates


# %% [markdown]
# ## 1. The shipped weights at T = 5 .. 1, no retraining

# %%
rows, layer_rates = [], {}
for T in TS:
    row, rates = evaluate(shipped, T, "shipped (trained at T=4)")
    rows.append(row)
    layer_rates[T] = rates
plain = pd.DataFrame(rows)
print(plain.drop(columns=["weights"]).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
print("\nfiring rate per layer (spikes per neuron per step):")
print(pd.DataFrame(layer_rates).to_string(float_format=lambda v: f"{v:.4f}"))

# %% [markdown]
# ## 2. The IIR schedule: fine-tune at T = 5, 4, 3, 2, 1, each stage from the previous one

# %%
stage_weights = {}
cfg = TrainConfig(dataset="mnist", method="bptt", timesteps=TS, epochs=EPOCHS, batch_size=64, lr=1e-3, seed=0)
result = train(spec, {k: v.copy() for k, v in shipped.items()}, cfg, data=(xtr, ytr, xte, yte),
               stage_out=lambda T, p: stage_weights.__setitem__(T, {k: v.copy() for k, v in p.items()}))
stages = pd.DataFrame(result.stages)
print(stages.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
rows = [evaluate(stage_weights[T], T, "IIR stage")[0] for T in TS]
iir = pd.DataFrame(rows)
iir["train step (ms)"] = stages.set_index("T").loc[iir["T"], "step_time_s"].to_numpy() * 1e3
iir["peak held for backward (MiB)"] = stages.set_index("T").loc[iir["T"], "peak_bytes"].to_numpy() / 2 ** 20
print(iir.drop(columns=["weights"]).to_string(index=False, float_format=lambda v: f"{v:.4g}"))

# %%
both = pd.concat([plain, iir], ignore_index=True)
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
for label, d in both.groupby("weights", sort=False):
    axes[0].plot(d["T"], d.accuracy, "o-", label=label)
U.dress(axes[0], "accuracy as T is reduced", "T", f"test accuracy ({N_EVAL} MNIST images)", invert_x=True, legend=8)
for an, color in zip(ARCHS, ("tab:grey", "tab:red", "tab:blue")):
    for label, d in both.groupby("weights", sort=False):
        iir_stage = label.startswith("IIR")
        axes[1].plot(d["T"], d[f"E {an} (µJ)"], "o-" if iir_stage else "x:", color=color,
                     label=f"{an}, {'IIR stages' if iir_stage else 'shipped weights'}")
U.dress(axes[1], "energy per inference", "T", "energy per inference (µJ)", log="y", invert_x=True, legend=7)
for an, color in zip(ARCHS, ("tab:grey", "tab:red", "tab:blue")):
    d = both[both.weights == "IIR stage"]
    axes[2].plot(d["T"], d[f"SNN/ANN {an}"], "o-", color=color, label=an)
axes[2].axhspan(*IIR_RATIO, color="tab:green", alpha=0.2, label="IIR-SNN claim: 1/33-1/25 (proxy, VGG16)")
axes[2].axhline(1, color="k", lw=0.8)
U.dress(axes[2], "energy efficiency against the same topology as an ANN", "T",
        "E_SNN / E_ANN (below 1: the SNN is cheaper)", log="y", invert_x=True, legend=7)
for ax in axes:
    ax.set_xticks(TS)                      # T is an integer: one tick per T run, no 4.5
    ax.minorticks_off()
fig.tight_layout()
U.savefig(fig, "04_iir_accuracy_energy")
plt.show()

# %%
fig, ax = plt.subplots(figsize=(6, 3.6))
for T, rates in layer_rates.items():
    ax.plot(list(rates), list(rates.values()), "o-", label=f"T={T}")
U.dress(ax, "per-layer firing rate, shipped weights: does activity vanish at low T?",
        ylabel="spikes per neuron per step", legend=8)
fig.tight_layout()
U.savefig(fig, "04_iir_layer_rates")
plt.show()

# %% [markdown]
# ## Findings (computed above)

# %%
p5, p1 = plain.set_index("T").loc[5], plain.set_index("T").loc[1]
i5, i1 = iir.set_index("T").loc[5], iir.set_index("T").loc[1]
findings = [
    f"shipped weights (trained at T=4), no retraining: accuracy {p5.accuracy:.3f} at T=5 -> {p1.accuracy:.3f} at T=1 "
    f"({N_EVAL} test images).",
    f"IIR schedule ({EPOCHS} epoch(s) per stage on {len(xtr)} images): accuracy {i5.accuracy:.3f} at T=5 -> "
    f"{i1.accuracy:.3f} at T=1 (IIR-SNN's VGG16 at T=1: "
    + ", ".join(f"{k} {v:.2%}" for k, v in IIR_T1_ACC.items()) + ").",
    "layer firing rates at T=1 / T=5 (shipped weights): " + ", ".join(
        f"{k} {layer_rates[1][k]:.3f}/{layer_rates[5][k]:.3f}" for k in layer_rates[1]),
]
for an in ARCHS:
    findings.append(f"{an}: energy per inference T=5 -> T=1 (IIR stages) {i5[f'E {an} (µJ)']:.3g} -> "
                    f"{i1[f'E {an} (µJ)']:.3g} µJ ({i5[f'E {an} (µJ)'] / i1[f'E {an} (µJ)']:.2f}x less); "
                    f"E_SNN/E_ANN at T=1 {i1[f'SNN/ANN {an}']:.3g} "
                    f"(IIR-SNN: {IIR_RATIO[0]:.3f}-{IIR_RATIO[1]:.3f}, i.e. 25-33x cheaper, proxy, VGG16)")
findings.append(f"latency on evt45: {i5['latency evt45 (µs)']:.3g} µs at T=5 -> {i1['latency evt45 (µs)']:.3g} µs at "
                f"T=1 ({i5['latency evt45 (µs)'] / i1['latency evt45 (µs)']:.2f}x); membrane state held "
                f"{i5['state (B)'] / 1024:.1f} KiB -> {i1['state (B)'] / 1024:.1f} KiB")
findings.append(f"training: BPTT step {iir['train step (ms)'].iloc[0]:.0f} ms at T=5 -> "
                f"{iir['train step (ms)'].iloc[-1]:.0f} ms "
                f"at T=1; peak held for backward {iir['peak held for backward (MiB)'].iloc[0]:.1f} -> "
                f"{iir['peak held for backward (MiB)'].iloc[-1]:.1f} MiB per batch of 64")
print("\n".join(f"- {f}" for f in findings))
print(f"\n(notebook ran in {U.elapsed():.1f} s, size={U.SIZE})")
