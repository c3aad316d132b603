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
# # 2. Break-even against an ANN of the same topology
#
# **The question.** When is a spiking network cheaper than the ANN it could have been? Hardware-aware studies
# put the break-even far lower than the arithmetic proxy suggests (docs/energy_sources.md, "Break-even spike rates"):
#
# | source | break-even | baseline |
# |---|---|---|
# | Dampfhoffer et al. 2023 (IEEE TETCI) [P] | 0.15 - 1.38 spikes per synapse per inference (IF neurons) | digital ANN implementations, Eyeriss case study |
# | Davidson & Furber 2021 (Front. Neurosci.) [S] | about 1.72 spikes per synapse per inference | the original ANN on digital hardware |
# | Yan et al. 2024 (arXiv 2409.08290 v4) [P] | spike rate below 5.7 % at T = 5 | a QNN with ceil(log2(T+1)) bits |
#
# **How we answer it.** The network is `mnist_conv` with its trained weights (BPTT, T = 4), on MNIST test
# images. The ANN is the same topology with every input dense: MACs for every conv and linear layer, weights
# and activations in SRAM at the preset's widths (8-bit), ReLU in place of the spiking neuron, nothing carried
# across time. hwmodel has no ANN mode, so `nbutil.ann_trace` builds the trace such an ANN would leave from the
# SNN's one-shot trace (same layers, every input dense and analog) and hwmodel prices it with its own
# dense-layer rules (the ones it applies to an SNN's encoding layer: every weight and every input read once per
# evaluation). Both are priced by the same code with the same choices: every layer of either network on its
# best mapping (loop order and accumulation, docs/hwmodel.md "Mappings"), and both restricted to per-op
# accumulation (Lemaire's no-reuse assumption applied to the ANN as well). A cell below checks the ANN's
# price on the output-stationary mapping against a closed form from the preset's energy table.
#
# To move the spike rate at fixed weights, all neuron thresholds are scaled (the network was trained at
# v_threshold = 1); accuracy is printed next to every point, so the energy of an operating point can be read
# against what it still computes. The ANN's accuracy is not measured (it is priced, not trained).

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

pd.set_option("display.width", 200)
N = U.pick(32, 256)
TS = U.pick((1, 2, 4, 8), (1, 2, 4, 8))
THRESHOLDS = U.pick((0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0), (0.2, 0.3, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0))
print(f"size={U.SIZE}: {N} MNIST test images, T in {TS}, thresholds {THRESHOLDS}")

# published break-even points (docs/energy_sources.md, "Break-even spike rates")
DAMPFHOFFER_SPS = (0.15, 1.38)    # spikes / synapse / inference, Dampfhoffer et al. 2023 [P]
DAVIDSON_SPS = 1.72               # Davidson & Furber 2021, as transcribed [S]
YAN_RATE, YAN_T = 0.057, 5        # Yan et al. 2024 v4 [P]: spike rate < 5.7 % at T = 5 (QNN baseline)

EVT = load_arch("evt45")
# both networks priced by the same code on the same architecture: every layer on its best mapping
# (docs/hwmodel.md "Mappings"), and, for the no-reuse view, restricted to per-op accumulation (every synop and
# every MAC read-modify-writes its partial sum in SRAM: Lemaire's assumption, now for the ANN too)
ARCH_SNN = {"evt45 (mapper)": EVT,
            "evt45 per-op accumulation": U.arch_variant(EVT, "evt45 per-op accumulation", membrane="per_synop")}
ARCH_ANN = ARCH_SNN
PROXY = load_arch("proxy45")

# %% [markdown]
# ## The ANN's price

# %%
x, y = U.dataset("mnist", "test", N, (1, 28, 28))
spec, net = U.load_net("mnist_conv")
one = run(net, x, timesteps=1).trace
ann = U.ann_trace(one)
ann_reps = {an: price(ann, a) for an, a in ARCH_ANN.items()}
E_ANNS = {an: r.totals["energy_pj"] for an, r in ann_reps.items()}
ann_rep = ann_reps["evt45 (mapper)"]
print("mappings the ANN's layers won:", list(ann_rep.mapping.mapping))
ann_proxy = price(ann, PROXY)
E_ANN = ann_rep.totals["energy_pj"]
E_ANN_PROXY = ann_proxy.totals["energy_pj"]
MACS = U.ann_macs(one)
print(f"dense MACs per inference: {MACS:,.0f}")
print(f"ANN on evt45: {U.fmt(E_ANN, 'pJ')} per inference with the mapper, "
      f"{U.fmt(E_ANNS['evt45 per-op accumulation'], 'pJ')} with per-op accumulation; under the proxy (4.6 pJ/MAC): "
      f"{U.fmt(E_ANN_PROXY, 'pJ')}")
print((ann_rep.components()[ann_rep.components() > 0] / 1e3).rename("nJ").to_string(float_format=lambda v: f"{v:.2f}"))

# %% [markdown]
# Cross-check against a closed form from the preset's table: MACs x E_mac, every weight read once at 8 bits
# from the weight buffer, every activation written once and read once at 8 bits from the event buffer
# (hwmodel's narrow-word scaling: a b-bit value costs b/64 of a 64-bit access).

# %%
A = EVT
p = A.params()
ann_os = price(ann, A, mapping="fixed:timestep_outer_os")


def sram_pj(mem, bits):
    size = A.memories[mem].size_bytes
    word = A.memories[mem].word_bits
    return float(A.sram.access_pj(size)) * word / A.sram.ref_bits * bits / word


layers = ann_os.counts.layers
weights = float(layers[layers.synaptic].n_weights.sum())
acts = float(layers[layers.synaptic].in_numel.sum())
closed = {"macs": MACS * p["e_mac"], "weight_mem": weights * sram_pj("weights", A.bits["weight"]),
          "event_mem": 2 * acts * sram_pj("events", A.bits["activation"])}
check = pd.DataFrame({"closed form (pJ)": closed,
                      "hwmodel (pJ)": {k: ann_os.totals[f"e_{k}"] for k in closed}})
check["rel. diff"] = check["hwmodel (pJ)"] / check["closed form (pJ)"] - 1
print(check.to_string(float_format=lambda v: f"{v:.4g}"))
assert (check["rel. diff"].abs() < 1e-6).all(), "the dense-ANN pricing disagrees with the closed form"

# %% [markdown]
# ## The SNN against the ANN: spike rate and T swept

# %%
rows = []
for th in THRESHOLDS:
    _, net_th = U.load_net("mnist_conv", spec=U.spec_with("mnist_conv", v_threshold=th))
    for T in TS:
        res = run(net_th, x, timesteps=T)
        prox = price(res.trace, PROXY)
        row = dict(threshold=th, T=T, accuracy=accuracy(res, y),
                   spikes_per_synapse=prox.totals["spikes_per_synapse"], firing_rate=U.firing_rate(res.trace),
                   synops=prox.totals["synops"], proxy_ratio=prox.totals["energy_pj"] / E_ANN_PROXY)
        for an, arch in ARCH_SNN.items():
            e = price(res.trace, arch).totals["energy_pj"]
            row[f"E {an} (µJ)"] = e / 1e6
            row[f"ratio {an}"] = e / E_ANNS[an]     # each SNN pricing against the ANN priced the same way
        rows.append(row)
tab = pd.DataFrame(rows)
print("ratio = E_SNN / E_ANN (below 1: the SNN is cheaper)")
print(tab.to_string(index=False, float_format=lambda v: f"{v:.4g}"))

# %% [markdown]
# ### Break-even points
#
# For each T and pricing, the spikes per synapse (and the spike rate per neuron and step) at which the energy
# ratio crosses 1, interpolated linearly between the two measured operating points that bracket it (none if
# every point lies on one side).


# %%
def crossing(xs, rs):
    order = np.argsort(xs)
    xs, rs = np.asarray(xs)[order], np.asarray(rs)[order]
    for i in range(len(xs) - 1):
        if (rs[i] - 1) * (rs[i + 1] - 1) <= 0 and rs[i] != rs[i + 1]:
            return float(xs[i] + (1 - rs[i]) * (xs[i + 1] - xs[i]) / (rs[i + 1] - rs[i]))
    return float("nan")


PRICINGS = {"proxy45": "proxy_ratio", **{an: f"ratio {an}" for an in ARCH_SNN}}
be = []
for T in TS:
    d = tab[tab["T"] == T]
    for name, col in PRICINGS.items():
        be.append(dict(T=T, pricing=name, break_even_sps=crossing(d.spikes_per_synapse, d[col]),
                       break_even_rate=crossing(d.firing_rate, d[col]),
                       ratio_at_trained=float(d[d.threshold == 1.0][col].iloc[0]) if 1.0 in THRESHOLDS else np.nan,
                       min_ratio=float(d[col].min()), max_ratio=float(d[col].max())))
be = pd.DataFrame(be)
print(be.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
print(f"\npublished: Dampfhoffer {DAMPFHOFFER_SPS[0]}-{DAMPFHOFFER_SPS[1]} spikes/synapse/inference; "
      f"Davidson & Furber ~{DAVIDSON_SPS}; Yan et al. spike rate < {YAN_RATE:.1%} at T={YAN_T}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), gridspec_kw=dict(width_ratios=[1.2, 1.2, 0.8]))
markers = dict(zip(TS, "osD^v<>"))
colors = {"proxy45": "tab:grey", "evt45 (mapper)": "tab:blue", "evt45 per-op accumulation": "tab:red"}
for ax, xcol, xlabel in ((axes[0], "spikes_per_synapse", "spikes per synapse per inference"),
                         (axes[1], "firing_rate", "spike rate (spikes per neuron per step)")):
    for name, col in PRICINGS.items():
        for T in TS:
            d = tab[tab["T"] == T].sort_values(xcol)
            d = d[d[xcol] > 0]
            ax.plot(d[xcol], d[col], marker=markers[T], color=colors[name], ms=4, lw=1)
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("E_SNN / E_ANN")
axes[0].axvspan(*DAMPFHOFFER_SPS, color="tab:green", alpha=0.15, label="Dampfhoffer 2023: 0.15-1.38")
axes[0].axvline(DAVIDSON_SPS, color="tab:green", ls="--", lw=1, label="Davidson & Furber 2021: 1.72")
axes[1].axvline(YAN_RATE, color="tab:green", ls="--", lw=1, label="Yan et al. 2024: 5.7 % (T=5, QNN)")
axes[0].set_title("mnist_conv (trained) vs the same topology as an ANN", fontsize=10)
axes[1].set_title("the same runs against the spike rate", fontsize=10)
ax = axes[2]
for name in PRICINGS:
    d = be[be.pricing == name]
    ax.plot(d["T"], d.ratio_at_trained, "o-", color=colors[name], label=f"{name}: trained thresholds")
    ax.plot(d["T"], d.min_ratio, "x:", color=colors[name], label=f"{name}: least active point")
ax.axhline(1, color="k", lw=0.8)
ax.set_yscale("log")
ax.set_xscale("log", base=2)
ax.set_xlabel("T")
ax.set_ylabel("E_SNN / E_ANN")
ax.set_title("against T", fontsize=10)
# one legend entry per pricing (colour) and per T (marker) instead of one per pair; the published points are
# labelled in their own panels
from matplotlib.lines import Line2D  # noqa: E402

keys = ([Line2D([], [], color=colors[n], lw=2, label=n) for n in PRICINGS]
        + [Line2D([], [], color="k", marker=markers[T], ls="", label=f"T={T}") for T in TS])
fig.legend(handles=keys, fontsize=7, ncol=len(keys), loc="upper center", bbox_to_anchor=(0.5, 0.0))
axes[0].legend(fontsize=7, loc="lower right")
axes[1].legend(fontsize=7, loc="lower right")
ax.legend(fontsize=7, loc="lower right")
fig.tight_layout()
U.savefig(fig, "02_break_even")
plt.show()

# %% [markdown]
# ## Sensitivity: where the conclusion flips
#
# E_SNN / E_ANN at the trained operating point (thresholds 1) for T = 1 and T = 4, the SNN and the ANN priced
# the same way (evt45, every layer on its best mapping), as one factor is scaled at a time: the spike activity
# (the threshold sweep above), the energy of every memory access (the SRAM table and DRAM together), and the
# size of every buffer (which also scales the leakage). The printed crossings are where the SNN stops (or
# starts) being the cheaper one.

# %%
trained = {T: run(net, x, timesteps=T).trace for T in (1, 4)}


def snn_over_ann(a):
    e_ann = price(ann, a).totals["energy_pj"]
    return {f"T={T}": price(tr, a).totals["energy_pj"] / e_ann for T, tr in trained.items()}


sens = U.one_factor_at_a_time(EVT, snn_over_ann).melt(id_vars=["factor", "scale"], var_name="T",
                                                       value_name="ratio")
sens["T"] = sens["T"].str[2:].astype(int)
print(sens.pivot_table(index=["factor", "scale"], columns="T", values="ratio").to_string(float_format=lambda v: f"{v:.3g}"))

fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
act = tab[tab["T"].isin(list(trained))]
for T, marker in zip(trained, "os"):
    d = act[act["T"] == T].sort_values("firing_rate")
    axes[0].plot(d.firing_rate, d["ratio evt45 (mapper)"], marker=marker, label=f"T={T}")
    for ax, factor in zip(axes[1:], ("memory energy", "buffer size")):
        d = sens[(sens.factor == factor) & (sens["T"] == T)]
        ax.plot(d.scale, d.ratio, marker=marker, label=f"T={T}")
axes[0].set_xlabel("spike rate (spikes per neuron per step)")
axes[1].set_xlabel("memory access energy (x evt45's)")
axes[2].set_xlabel("buffer sizes (x evt45's)")
axes[0].set_ylabel("E_SNN / E_ANN (below 1: the SNN is cheaper)")
for ax in axes:
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
fig.suptitle("trained mnist_conv vs its ANN on evt45 (mapper): one factor at a time", fontsize=10)
fig.tight_layout()
U.savefig(fig, "02_sensitivity")
plt.show()
flips = []
for factor in ("memory energy", "buffer size"):
    for T in trained:
        d = sens[(sens.factor == factor) & (sens["T"] == T)]
        c = crossing(d.scale, d.ratio)
        flips.append(f"{factor} at T={T}: " + (f"flips at {c:.3g}x evt45's" if np.isfinite(c) else
                                                f"no flip in {U.SCALES[0]}-{U.SCALES[-1]}x (ratio "
                                                f"{d.ratio.min():.3g}-{d.ratio.max():.3g})"))

# %% [markdown]
# ## The trained pair of notebook 1 against an ANN of their size
#
# The same question for the two trained 3x32x32 networks (padded MNIST, docs/training.md): `vgg_small`
# (multi-step, T = 4, and its one-shot T = 1 run) and `trev_small` (T-RevSNN, T = 4), against the ANN of
# `vgg_small`'s topology (0.62 M parameters, built from its one-shot trace as above; the T-RevSNN has no ANN of
# its own topology that would run once per image, so the same-task ANN of similar size is its baseline here).
# Every network on its own best mappings on evt45.

# %%
N_PAIR = U.pick(8, 64)
pair_runs = {}
for key, name, w, T in (("vgg_small T=4", "vgg_small", None, 4), ("vgg_small T=1", "vgg_small", None, 1),
                        ("trev_small T=4", "trev_small", U.NETS / "trev_small_mnist.npz", 4)):
    sp, nt = U.load_net(name, w)
    xp, yp = U.dataset("mnist", "test", N_PAIR, sp.input_shape)
    pair_runs[key] = run(nt, xp, timesteps=T), yp
ann_vgg = U.ann_trace(pair_runs["vgg_small T=1"][0].trace)
E_ANN_VGG = {an: price(ann_vgg, a).totals["energy_pj"] for an, a in ARCH_ANN.items()}
E_ANN_VGG_PROXY = price(ann_vgg, PROXY).totals["energy_pj"]
pair_tab = pd.DataFrame([dict(run=k, accuracy=accuracy(r, yp), spike_rate=U.firing_rate(r.trace),
                              proxy_ratio=price(r.trace, PROXY).totals["energy_pj"] / E_ANN_VGG_PROXY,
                              **{f"ratio {an}": price(r.trace, a).totals["energy_pj"] / E_ANN_VGG[an]
                                 for an, a in ARCH_SNN.items()})
                         for k, (r, yp) in pair_runs.items()])
print(f"ANN of vgg_small's topology: {U.ann_macs(pair_runs['vgg_small T=1'][0].trace):,.0f} MACs, "
      f"{U.fmt(E_ANN_VGG['evt45 (mapper)'], 'pJ')} on evt45 (mapper), {U.fmt(E_ANN_VGG_PROXY, 'pJ')} under the proxy")
print("E_SNN / E_ANN(vgg_small topology):")
print(pair_tab.to_string(index=False, float_format=lambda v: f"{v:.3g}"))

# %% [markdown]
# ## Findings (computed above)

# %%
findings = [f"ANN of mnist_conv's topology: {MACS:,.0f} MACs, {U.fmt(E_ANN, 'pJ')} per inference on "
            f"evt45 (mapper), {U.fmt(E_ANNS['evt45 per-op accumulation'], 'pJ')} with per-op accumulation, "
            f"{U.fmt(E_ANN_PROXY, 'pJ')} under the proxy."]
if 1.0 in THRESHOLDS:
    for T in TS:
        r = tab[(tab["T"] == T) & (tab.threshold == 1.0)].iloc[0]
        findings.append(f"trained operating point T={T}: {r.spikes_per_synapse:.3g} spikes/synapse, spike rate "
                        f"{r.firing_rate:.2%}, accuracy {r.accuracy:.3f}; E_SNN/E_ANN = {r.proxy_ratio:.3g} (proxy), "
                        + ", ".join(f"{r[f'ratio {an}']:.3g} ({an})" for an in ARCH_SNN) + ".")
for name in PRICINGS:
    d = be[be.pricing == name]
    findings.append(f"break-even, {name}: " + ", ".join(
        f"T={T}: {s:.3g} spikes/synapse ({rt:.2%} spike rate)" if np.isfinite(s) else
        f"T={T}: none in range (ratio {lo:.3g}-{hi:.3g})"
        for T, s, rt, lo, hi in zip(d["T"], d.break_even_sps, d.break_even_rate, d.min_ratio, d.max_ratio)))
for name in PRICINGS:
    d = be[be.pricing == name]
    floor = d[d.min_ratio > 1]
    findings.append(f"activity-independent floor, {name}: the least active point measured costs "
                    + ", ".join(f"{m:.3g}x" for m in d.min_ratio) + f" the ANN at T={', '.join(map(str, d['T']))}"
                    + (f"; from T={int(floor['T'].min())} no spike rate in the sweep breaks even."
                       if len(floor) else "."))
findings.append(f"published: {DAMPFHOFFER_SPS[0]}-{DAMPFHOFFER_SPS[1]} spikes/synapse (Dampfhoffer), ~{DAVIDSON_SPS} "
                f"(Davidson & Furber), spike rate < {YAN_RATE:.1%} at T={YAN_T} (Yan et al.).")
findings.append("sensitivity of E_SNN/E_ANN at the trained point (evt45, mapper): " + "; ".join(flips) + ".")
findings.append("trained 3x32x32 pair against the ANN of vgg_small's topology (padded MNIST, "
                f"{N_PAIR} images): " + "; ".join(
                    f"{r.run} {r.proxy_ratio:.3g} (proxy), " + ", ".join(f"{r[f'ratio {an}']:.3g} ({an})" for an in ARCH_SNN)
                    + f", accuracy {r.accuracy:.3f}" for _, r in pair_tab.iterrows()) + ".")
print("\n".join(f"- {f}" for f in findings))
print(f"\n(notebook ran in {U.elapsed():.1f} s, size={U.SIZE})")
