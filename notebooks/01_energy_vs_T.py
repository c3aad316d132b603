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
# # 1. Energy per inference against T: multi-timestep, temporal-reversible and one-shot
#
# **The question the seed papers raise.** T-RevSNN (Hu et al., ICML 2024) claims **1.6x** lower inference
# energy than the Spike-driven Transformer at T = 4, and IIR-SNN (Chowdhury et al.) motivates T = 1 by the
# "memory access overhead of fetching membrane potentials". Both energy claims come from the arithmetic-only
# proxy E = 4.6 pJ x MACs + 0.9 pJ x SOPs (docs/energy_sources.md): the proxy has no term for the
# membrane traffic the argument is about. Here we price the same runs under the proxy (`proxy45`) and under a
# memory-aware 45 nm accelerator (`evt45`: 8-bit weights, 16-bit membranes, SRAM energy growing with buffer
# size, DRAM behind it; docs/hwmodel.md), and split the energy into synaptic ops, membrane traffic, weights,
# spikes and DRAM.
#
# * **Part A, trained weights, one task.** `mnist_conv` (trained with BPTT at T = 4, `networks/mnist_conv.npz`)
#   on MNIST test images, run multi-step at several T; its T = 1 run is the one-shot regime.
# * **Part B, multi-step against temporal-reversible, both trained, on the same task.** `trev_small` (T-RevSNN,
#   4 columns, 0.54 M parameters) with its weights trained on MNIST padded to 3x32x32 (`trev_small_mnist.npz`,
#   reversible training, docs/training.md) against `vgg_small` (a plain VGG-style multi-step LIF conv net, 0.62 M
#   parameters, BPTT at T = 4 on the same padded images, `vgg_small.npz`), on the same test images. Both are
#   trained for T = 4; their accuracies are printed beside the energies.
#
# Every number below is printed by a cell; the last cell collects the headline findings.
# `SNNSIM_NB_SIZE=full` runs more images and a longer T sweep.

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
pd.set_option("display.max_columns", 30)
N_A = U.pick(64, 500)                  # MNIST test images, Part A
TS_A = U.pick((1, 2, 4, 8), (1, 2, 3, 4, 6, 8))
N_B = U.pick(8, 100)                   # images, Part B (the CIFAR-sized networks are slower)
TS_B = U.pick((1, 2, 4), (1, 2, 3, 4))
print(f"size={U.SIZE}: Part A {N_A} images, T in {TS_A}; Part B {N_B} images, T in {TS_B}")

# %% [markdown]
# ## Architectures
#
# `proxy45` is the papers' formula (Horowitz 2014 FP32; the direct-encoded first layer charged at every step,
# BICLab's convention). `evt45` is the memory-aware preset with every synaptic op (and MAC) reading and
# writing its target potential in SRAM (per-op accumulation, Lemaire 2022's event-driven dataflow), each
# layer on its best loop order (timestep outer, SATA's weights once, or SpinalFlow's timestep inner:
# docs/hwmodel.md "Mappings"). `evt45 per_neuron` changes only the accumulation (output-stationary: the potential is accumulated
# in a register and the membrane state is read and written once per neuron and step), the other end of the
# dataflow choice docs/energy_sources.md calls the largest single one.

# %%
ARCHS = {
    "proxy45": load_arch("proxy45"),
    # every layer on its best per-op-accumulation mapping (the event-driven dataflow), or on its best
    # register-accumulation mapping (output-stationary); docs/hwmodel.md "Mappings"
    "evt45": U.arch_variant(load_arch("evt45"), "evt45", membrane="per_synop"),
    "evt45 per_neuron": U.arch_variant(load_arch("evt45"), "evt45 per_neuron", membrane="per_neuron"),
}
for name, a in ARCHS.items():
    print(f"{name:18s} membrane {a.dataflow['membrane']:10s} encoder {a.dataflow['encoder']:10s} "
          f"bits w/u {a.bits['weight']}/{a.bits['membrane']}  "
          f"buffers/core w/u {a.memories['weights'].size_bytes // 1024}/{a.memories['membrane'].size_bytes // 1024} KiB"
          f"  DRAM {'yes' if a.dram else 'no'}")

# %% [markdown]
# ## Part A: trained `mnist_conv`, T swept, one-shot at T = 1
#
# The same trained weights run at every T (the network was trained at T = 4; accuracy is printed so that the
# energy of each T can be read against what it buys).

# %%
spec_a, net_a = U.load_net("mnist_conv")
xa, ya = U.dataset("mnist", "test", N_A, spec_a.input_shape)
rows, reports_a = [], {}
for T in TS_A:
    res = run(net_a, xa, timesteps=T)
    for an, arch in ARCHS.items():
        rep = price(res.trace, arch)
        reports_a[(T, an)] = rep
        g = U.grouped(rep.components())
        rows.append(dict(T=T, regime=res.trace.regime, arch=an, accuracy=accuracy(res, ya),
                         energy_uJ=rep.totals["energy_pj"] / 1e6, latency_us=rep.totals["latency_ns"] / 1e3,
                         synops=rep.totals["synops"], macs=rep.totals["macs"],
                         spikes_per_synapse=rep.totals["spikes_per_synapse"],
                         state_B=rep.totals["state_bytes"], dram_B=rep.totals["dram_bytes"],
                         **{f"share {k}": v / rep.totals["energy_pj"] for k, v in g.items()}))
tab_a = pd.DataFrame(rows)
tab_a["share membrane traffic"] = tab_a[[f"share {m}" for m in U.MEMBRANE]].sum(axis=1)
for an in ARCHS:
    base = tab_a[(tab_a.arch == an) & (tab_a["T"] == 1)].energy_uJ.iloc[0]
    tab_a.loc[tab_a.arch == an, "x one-shot"] = tab_a.energy_uJ / base
print(tab_a[["T", "regime", "arch", "accuracy", "energy_uJ", "x one-shot", "latency_us", "synops", "macs",
             "spikes_per_synapse", "state_B", "dram_B"]].to_string(index=False, float_format=lambda v: f"{v:.4g}"))

# %% [markdown]
# Energy shares per group (fractions of the total; `proxy45` has only synaptic ops by construction):

# %%
share_cols = [f"share {g}" for g in U.GROUPS] + ["share membrane traffic"]
print(tab_a[["T", "arch"] + share_cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))


# %%
def stacked(ax, table, label_col, title):
    bottom = np.zeros(len(table))
    for gname in U.GROUPS:
        vals = table[f"share {gname}"].to_numpy() * table.energy_uJ.to_numpy()
        ax.bar(table[label_col].astype(str), vals, bottom=bottom, color=U.GROUP_COLORS[gname], label=gname)
        bottom += vals
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("energy per inference (µJ)")


fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
for ax, an in zip(axes, ARCHS):
    d = tab_a[tab_a.arch == an].assign(label=lambda d: ["T=1\n(one-shot)" if t == 1 else f"T={t}" for t in d["T"]])
    stacked(ax, d, "label", f"mnist_conv (trained) on {an}")
axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
fig.tight_layout()
U.savefig(fig, "01_components_mnist_conv")
plt.show()

# %% [markdown]
# ### Where does membrane traffic dominate?
#
# Membrane traffic has two parts (`nbutil.GROUPS`): the **state** carried across timesteps (each stateful
# neuron's potential read and written once per step; none in one-shot) and, under the per-synop dataflow, the
# **read-modify-write of the target potential at every synaptic op** (at any T, one-shot included). Below,
# per *stage* (a synaptic layer and the layers after it up to the next one: what a core holds) at the
# network's training T, the share of the stage's energy that each part takes, under the two evt45 dataflows.

# %%
T_MAIN = 4 if 4 in TS_A else max(TS_A)
stage_rows = []
for an in ("evt45", "evt45 per_neuron"):
    rep = reports_a[(T_MAIN, an)]
    b = rep.breakdown[rep.breakdown.layer != "(chip)"].copy()
    unit_name = rep.counts.layers.groupby("unit").layer.first()
    b["stage"] = b.unit.astype(int).map(unit_name)
    per = b.groupby("stage", sort=False)[[f"e_{k}" for k in sum(U.GROUPS.values(), ())]].sum()
    for stage, r in per.iterrows():
        g = {gn: sum(r[f"e_{c}"] for c in cs) for gn, cs in U.GROUPS.items()}
        tot = sum(g.values())
        stage_rows.append(dict(arch=an, stage=stage, energy_uJ=tot / 1e6,
                               state_share=g["membrane: state"] / tot if tot else 0.0,
                               rmw_share=g["membrane: per-synop RMW"] / tot if tot else 0.0,
                               largest=max(g, key=g.get)))
stages = pd.DataFrame(stage_rows)
stages["membrane_share"] = stages.state_share + stages.rmw_share
print(f"T = {T_MAIN}, per stage (a synaptic layer and what follows it):")
print(stages.to_string(index=False, float_format=lambda v: f"{v:.3g}"))

# membrane share of the whole network against T, per architecture
for part in ("membrane: state", "membrane: per-synop RMW"):
    print(f"\n'{part}' share of the total, against T:")
    print(tab_a.pivot(index="T", columns="arch", values=f"share {part}").to_string(float_format=lambda v: f"{v:.3f}"))

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for ax, an in zip(axes, ("evt45", "evt45 per_neuron")):
    d = stages[stages.arch == an]
    ax.bar(d.stage, d.state_share, color=U.GROUP_COLORS["membrane: state"], label="membrane: state")
    ax.bar(d.stage, d.rmw_share, bottom=d.state_share, color=U.GROUP_COLORS["membrane: per-synop RMW"],
           label="membrane: per-synop RMW")
    ax.legend(fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("membrane-traffic share of the stage")
    ax.set_title(f"mnist_conv T={T_MAIN} on {an}", fontsize=10)
fig.tight_layout()
U.savefig(fig, "01_membrane_share_by_stage")
plt.show()

# %% [markdown]
# ## Part B: T-RevSNN against multi-step, both trained
#
# `trev_small` runs each of its T columns once (`trev` regime; T < 4 is an early exit at the head of column
# T-1, and T = 1 is its one-shot run); `vgg_small` runs every layer at every step. Besides the three
# architectures above, `evt45 fits` enlarges the per-core weight and membrane buffers (256 and 128 KiB) so that
# neither network spills to DRAM, to separate what DRAM does from what the dataflow does. Every regime runs
# on its own best mappings.

# %%
ARCHS_B = dict(ARCHS)
ARCHS_B["evt45 fits"] = U.arch_variant(load_arch("evt45"), "evt45 fits", weights_kib=256, membrane_kib=128,
                                       membrane="per_synop")
MS, REV = "vgg_small", "trev_small"
nets_b = {MS: U.load_net(MS), REV: U.load_net(REV, U.NETS / "trev_small_mnist.npz")}
print("parameters:", {name: f"{U.n_params(spec):,}" for name, (spec, _) in nets_b.items()},
      f"(mnist_conv: {U.n_params(spec_a):,})")
xb, yb = U.dataset("mnist", "test", N_B, nets_b["trev_small"][0].input_shape)
rows_b, reports_b = [], {}
for name, (spec, net) in nets_b.items():
    for T in TS_B:
        res_b = run(net, xb, timesteps=T)
        tr = res_b.trace
        for an, arch in ARCHS_B.items():
            rep = price(tr, arch)
            reports_b[(name, T, an)] = rep
            g = U.grouped(rep.components())
            rows_b.append(dict(network=name, T=T, regime=tr.regime, arch=an, accuracy=accuracy(res_b, yb),
                               energy_uJ=rep.totals["energy_pj"] / 1e6, latency_us=rep.totals["latency_ns"] / 1e3,
                               synops=rep.totals["synops"], macs=rep.totals["macs"], state_B=rep.totals["state_bytes"],
                               dram_B=rep.totals["dram_bytes"], weight_spill_B=rep.totals["weight_spill_bytes"],
                               **{f"share {k}": v / rep.totals["energy_pj"] for k, v in g.items()}))
tab_b = pd.DataFrame(rows_b)
tab_b["share membrane traffic"] = tab_b[[f"share {m}" for m in U.MEMBRANE]].sum(axis=1)
for (name, an), d in tab_b.groupby(["network", "arch"]):
    tab_b.loc[d.index, "x T=1"] = d.energy_uJ / d[d["T"] == 1].energy_uJ.iloc[0]
print(tab_b[["network", "T", "regime", "arch", "accuracy", "energy_uJ", "x T=1", "latency_us", "synops", "macs",
             "state_B", "dram_B"]].to_string(index=False, float_format=lambda v: f"{v:.4g}"))

# %% [markdown]
# How the memory-aware model prices the two (docs/hwmodel.md): an event-driven synaptic op on spikes reads its
# weight and, under `per_synop`, reads and writes its target potential; a layer with analog input (the
# T-RevSNN's depth-wise -> point-wise pairs, any encoding layer) is priced as dense MACs with every weight and
# input read once per evaluation. The proxy charges a MAC 4.6 pJ and a synaptic op 0.9 pJ and nothing else.
# A T-RevSNN column has its own weights (except the shared second-block convs), so its weight storage grows
# with T; a multi-step network re-reads the same weights at every step and carries every membrane.
#
# ### The 1.6x question: multi-step energy / T-RevSNN energy at the same T
#
# T-RevSNN's 1.6x is the proxy ratio of a different, larger network (the Spike-driven Transformer) to
# T-RevSNN at T = 4 (docs/papers.md, T-RevSNN). The ratio below is ours, at equal T, on the
# same input, for two trained networks of similar size. A ratio above 1 means the multi-step network costs more.

# %%
PAPER_TREV_RATIO = 1.6   # T-RevSNN abstract: inference energy 1.6x better than SDT, proxy (docs/papers.md, T-RevSNN)
ratio = (tab_b[tab_b.network == MS].set_index(["T", "arch"]).energy_uJ
         / tab_b[tab_b.network == REV].set_index(["T", "arch"]).energy_uJ).unstack("arch")
ratio = ratio[list(ARCHS_B)]
print(f"E({MS}, multi-step) / E({REV}, T-RevSNN), per T (T = 1: both one-shot):")
print(ratio.to_string(float_format=lambda v: f"{v:.3g}"))
print(f"\npaper (proxy, SDT vs T-RevSNN, T=4, ImageNet): {PAPER_TREV_RATIO}x")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw=dict(width_ratios=[1.2, 1]))
ax = axes[0]
for an, style in zip(ARCHS, ("o--", "s-", "^-")):
    for name, color in (("mnist_conv (trained)", "k"),):
        d = tab_a[tab_a.arch == an]
        ax.plot(d["T"], d.energy_uJ, style, color=color, alpha=0.8, label=f"{name}, {an}")
    for name, color in ((MS, "tab:blue"), (REV, "tab:orange")):
        d = tab_b[(tab_b.network == name) & (tab_b.arch == an)]
        ax.plot(d["T"], d.energy_uJ, style, color=color, label=f"{name}, {an}")
U.dress(ax, "energy against T: multi-step (black, blue) vs T-RevSNN (orange)", "T (T = 1: one-shot)",
        "energy per inference (µJ)", log="y",
        legend=dict(fontsize=6.5, ncol=1, loc="center left", bbox_to_anchor=(1.0, 0.5)))
ax = axes[1]
for an, style in zip(ARCHS_B, ("o--", "s-", "^-", "d:")):
    ax.plot(ratio.index, ratio[an], style, label=an)
ax.axhline(PAPER_TREV_RATIO, color="grey", lw=1)
ax.text(ratio.index.min(), PAPER_TREV_RATIO * 1.08, "paper: 1.6x (proxy, vs SDT)", fontsize=8, color="grey")
ax.axhline(1.0, color="k", lw=0.5)
U.dress(ax, f"{MS} / {REV} (both trained)", "T", "E(multi-step) / E(T-RevSNN)", log="y", legend=8)
fig.tight_layout()
U.savefig(fig, "01_energy_vs_T")
plt.show()

# %%
T_B = max(TS_B)
fig, axes = plt.subplots(1, len(ARCHS_B), figsize=(14, 3.8))
for ax, an in zip(axes, ARCHS_B):
    d = tab_b[(tab_b.arch == an) & tab_b["T"].isin([1, T_B])].copy()
    d["label"] = [f"{'MS' if n == MS else 'Rev'}\nT={t}" for n, t in zip(d.network, d["T"])]
    stacked(ax, d, "label", an)
axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
fig.suptitle(f"energy by group: MS = {MS} (multi-step), Rev = {REV} (T-RevSNN); both trained on padded MNIST",
             fontsize=10)
fig.tight_layout()
U.savefig(fig, "01_components_trev_vs_multistep")
plt.show()

# %% [markdown]
# ## Sensitivity on the mapper: where does each conclusion flip?
#
# Two conclusions, both on evt45 with every regime on its own best mappings: one-shot is cheaper than T = 4
# (trained `mnist_conv`, E(T=4)/E(T=1) > 1), and the T-RevSNN is cheaper than the multi-step network of its
# size (E(vgg_small)/E(trev_small) at T = 4 > 1). Each is recomputed with one factor changed at a time:
# **activity** (every threshold of the multi-step networks scaled by 1/k, so that they spike more or less; the
# x axis is the measured spike rate over the trained one; the T-RevSNN's Quant neurons have a fixed window and
# stay at their trained activity), the **energy of every memory access** (the SRAM table and DRAM together)
# and the **size of every buffer** (which also scales the leakage). A flip is where a ratio crosses 1
# (log-interpolated between the points measured).

# %%
EVT_MAP = load_arch("evt45")
ACTIVITY = U.pick((0.5, 1.0, 2.0), (0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 3.0))     # threshold scales 1/k


def both_ratios(a, runs_a, runs_b):
    e = {T: price(tr, a).totals for T, tr in runs_a.items()}
    p = {n: price(tr, a).totals for n, tr in runs_b.items()}
    return dict(t4_over_t1=e[4]["energy_pj"] / e[1]["energy_pj"],
                ms_over_rev=p[MS]["energy_pj"] / p[REV]["energy_pj"], mappings_T4=e[4]["mappings"])


runs = {T: run(net_a, xa, timesteps=T).trace for T in (1, 4)}
pair = {n: run(net, xb, timesteps=4).trace for n, (_, net) in nets_b.items()}
rate0 = {"mnist_conv": U.firing_rate(runs[4]), MS: U.firing_rate(pair[MS])}
sens = U.one_factor_at_a_time(EVT_MAP, lambda a: both_ratios(a, runs, pair))
act_rows = []
for k in ACTIVITY:
    _, n_a = U.load_net("mnist_conv", spec=U.spec_with("mnist_conv", v_threshold=1 / k))
    _, n_ms = U.load_net(MS, spec=U.spec_with(MS, v_threshold=1 / k))
    ra = {T: run(n_a, xa, timesteps=T) for T in (1, 4)}
    rm = run(n_ms, xb, timesteps=4)
    act_rows.append(dict(factor="activity", scale=k, rate_mnist=U.firing_rate(ra[4].trace) / rate0["mnist_conv"],
                         rate_ms=U.firing_rate(rm.trace) / rate0[MS], acc_mnist=accuracy(ra[4], ya),
                         acc_ms=accuracy(rm, yb),
                         **both_ratios(EVT_MAP, {T: r.trace for T, r in ra.items()}, {MS: rm.trace, REV: pair[REV]})))
act = pd.DataFrame(act_rows)
sens = pd.concat([act, sens], ignore_index=True)
print(sens.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
FLIPS = {}
for factor, d in sens.groupby("factor", sort=False):
    for col in ("t4_over_t1", "ms_over_rev"):
        x = d.rate_mnist if (factor == "activity" and col == "t4_over_t1") else d.rate_ms if factor == "activity" else d.scale
        FLIPS[(factor, col)] = U.flip_points(x.to_numpy(), d[col].to_numpy())
print("flips (factor, ratio) -> x where the ratio crosses 1:", {k: U.flips_text(v) for k, v in FLIPS.items()})

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for ax, col, title in ((axes[0], "t4_over_t1", "mnist_conv E(T=4) / E(T=1)"),
                       (axes[1], "ms_over_rev", f"E({MS}) / E({REV}) at T=4, both trained")):
    for factor, d in sens.groupby("factor", sort=False):
        x = (d.rate_mnist if col == "t4_over_t1" else d.rate_ms) if factor == "activity" else d.scale
        ax.plot(x, d[col], "o-", label=factor + (" (spike rate / trained)" if factor == "activity" else " (x evt45)"))
    ax.axhline(1, color="k", lw=0.8)
    U.dress(ax, f"{title}\non evt45 (mapper), one factor at a time", "factor", "energy ratio", log="xy", legend=8)
fig.tight_layout()
U.savefig(fig, "01_sensitivity")
plt.show()

# %% [markdown]
# ## Findings (computed above)

# %%
def row(tab, **kw):
    m = np.ones(len(tab), bool)
    for k, v in kw.items():
        m &= tab[k].to_numpy() == v
    return tab[m].iloc[0]


Tm = T_MAIN
findings = []
for an in ARCHS:
    r1, rT = row(tab_a, T=1, arch=an), row(tab_a, T=Tm, arch=an)
    findings.append(f"mnist_conv (trained), {an}: T={Tm} costs {rT.energy_uJ:.3g} µJ per inference, "
                    f"{rT.energy_uJ / r1.energy_uJ:.2f}x the one-shot T=1 run ({r1.energy_uJ:.3g} µJ); "
                    f"accuracy {rT.accuracy:.3f} vs {r1.accuracy:.3f} on {N_A} test images.")
for an in ("evt45", "evt45 per_neuron"):
    rT, r1 = row(tab_a, T=Tm, arch=an), row(tab_a, T=1, arch=an)
    top = max(U.GROUPS, key=lambda gname: rT[f"share {gname}"])
    findings.append(f"{an}, mnist_conv T={Tm}: membrane traffic is {rT['share membrane traffic']:.0%} of the energy "
                    f"(state {rT['share membrane: state']:.0%}, "
                    f"per-synop RMW {rT['share membrane: per-synop RMW']:.0%}; "
                    f"largest group: {top}, {rT[f'share {top}']:.0%}); at T=1 it is "
                    f"{r1['share membrane traffic']:.0%} (state {r1['share membrane: state']:.0%}).")
for an in ("evt45", "evt45 per_neuron"):
    d = stages[stages.arch == an]
    dom = d[d.membrane_share > 0.5].stage.tolist()
    findings.append(f"{an}, T={Tm}: membrane traffic is more than half of the stage's energy in stages {dom} "
                    f"of {d.stage.tolist()} (state share per stage: "
                    + ", ".join(f"{s} {v:.0%}" for s, v in zip(d.stage, d.state_share)) + ").")
for an in ARCHS_B:
    findings.append(f"E(multi-step)/E(T-RevSNN) at T={T_B} on {an}: {ratio.loc[T_B, an]:.3g}x "
                    f"(paper, proxy: {PAPER_TREV_RATIO}x against a different network)")
for name in nets_b:
    rp, re_ = reports_b[(name, T_B, "proxy45")].totals, reports_b[(name, T_B, "evt45")].totals
    findings.append(f"{name} T={T_B}: accuracy {row(tab_b, network=name, T=T_B, arch='proxy45').accuracy:.3f}; "
                    f"under the proxy {rp['macs']:,.0f} MACs and {rp['synops']:,.0f} synops, MACs "
                    f"{4.6 * rp['macs'] / rp['energy_pj']:.0%} of its proxy energy; on evt45 leakage "
                    f"{re_['e_static'] / re_['energy_pj']:.0%} and DRAM {re_['e_dram'] / re_['energy_pj']:.0%} of "
                    f"its energy, latency {U.fmt(re_['latency_ns'], 'ns')}.")
for name in nets_b:
    findings.append(f"{name}: E(T={T_B})/E(T=1) = " + ", ".join(
        f"{an} {row(tab_b, network=name, T=T_B, arch=an)['x T=1']:.2f}x" for an in ARCHS_B))
for name in nets_b:
    r = row(tab_b, network=name, T=T_B, arch="evt45")
    findings.append(f"{name} T={T_B} on evt45: DRAM {r['share DRAM']:.0%}, membrane traffic "
                    f"{r['share membrane traffic']:.0%}, state held {r.state_B / 1024:.1f} KiB, "
                    f"weights that do not fit the 4 x 64 KiB buffers {r.weight_spill_B / 1024:.0f} KiB, "
                    f"DRAM traffic {r.dram_B / 1024:.0f} KiB per inference.")
at_evt = sens[(sens.factor == "memory energy") & (sens.scale == 1.0)].iloc[0]
findings.append(f"on evt45 with every layer on its best mapping of any accumulation (the mapper): E({MS})/E({REV}) "
                f"= {at_evt.ms_over_rev:.3g}x at T=4, mnist_conv E(T=4)/E(T=1) = {at_evt.t4_over_t1:.3g}x.")
for col, what in (("t4_over_t1", "E(T=4)/E(T=1) of mnist_conv"), ("ms_over_rev", f"E({MS})/E({REV}) at T=4")):
    parts = []
    for factor, d in sens.groupby("factor", sort=False):
        x = (d.rate_mnist if col == "t4_over_t1" else d.rate_ms) if factor == "activity" else d.scale
        fl = FLIPS[(factor, col)]
        unit = "x the trained spike rate" if factor == "activity" else "x evt45's"
        parts.append(f"{factor} {x.min():.2g}-{x.max():.2g} {unit}: {d[col].min():.2f}-{d[col].max():.2f}, "
                     + U.flips_text(fl))
    findings.append(f"{what} on evt45 (mapper), one factor at a time: " + "; ".join(parts) + ".")
print("\n".join(f"- {f}" for f in findings))
print(f"\n(notebook ran in {U.elapsed():.1f} s, size={U.SIZE})")
