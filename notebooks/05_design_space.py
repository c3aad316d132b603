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
# # 5. Design space: SRAM sizes, bit widths and dataflow for one trace
#
# **The question.** The seeds' energy claims are single points priced with one formula. An accelerator
# designer picks buffer sizes, word widths, a dataflow and a core count; docs/energy_sources.md ("Memory terms and dataflow") argues that memory terms
# decide the answer. So: over a grid of designs, what is the Pareto front of energy against latency for one
# real trace, and which execution regime (multi-step, temporal-reversible, one-shot) wins where?
#
# **What we run.** The trace is `mnist_conv` with its trained weights at T = 4 (multi-step) on MNIST test
# images, and its one-shot T = 1 run; for the regime comparison also `vgg_small` (multi-step, T = 4, 0.62 M
# parameters) and `trev_small` (T-RevSNN, T = 4, 0.54 M), both **trained** on MNIST padded to 3x32x32
# (`vgg_small.npz`, `trev_small_mnist.npz`; docs/training.md) and run on the same padded test images. Every
# design is a variant of `evt45` priced by `hwmodel.sweep` in one vectorised call per trace; the regime
# comparisons are made twice, on the design grid's fixed timestep-outer schedule and with every regime on its
# own best mappings (the mapper). Bit widths change the price only: the engine
# computes in float32, so the accuracy of a quantised design is not modelled.

# %%
import os
import sys
from dataclasses import replace

sys.path.insert(0, os.path.abspath("notebooks" if os.path.isdir("notebooks") else "."))
import matplotlib

if "ipykernel" not in sys.modules and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")          # run as a script: write the PNGs, open no windows
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from dataclasses import replace

import nbutil as U
from hwmodel import count, load_arch, sweep
from hwmodel.arch import SramLaw
from hwmodel.sweep import grid
from snnsim.engine import accuracy, run

pd.set_option("display.width", 200)
N_A = U.pick(64, 500)
N_B = U.pick(8, 32)
EVT_SEARCH = load_arch("evt45")
# the grid's per_synop axis is the accumulation of the fixed timestep-outer schedule, so the sweep runs on
# evt45 without its mappings list; the mapper's choice on evt45 itself is printed beside it below
EVT = replace(EVT_SEARCH, mappings=())
GRID = grid(weights_kib=[8, 16, 32, 64, 128, 256], membrane_kib=[2, 4, 8, 16, 32, 64], events_kib=[2, 8, 32],
            bits_weight=[4, 8], bits_membrane=[8, 16, 32], per_synop=[0, 1], refetch=[0, 1])
print(f"size={U.SIZE}: {N_A} images for mnist_conv, {N_B} for the CIFAR-shaped pair; {len(GRID)} designs")
print("axes:", {c: sorted(GRID[c].unique().tolist()) for c in GRID.columns})
print(f"fixed: {EVT.cores} cores x {EVT.pes_per_core} PEs at {EVT.clock_mhz:g} MHz, {EVT.mapping} mapping, "
      f"static power {EVT.static_mw_per_core:g} mW/core + {EVT.static_mw_per_kib:g} mW/KiB of SRAM; evt45 itself: weights/membrane/events "
      + "/".join(f"{EVT.memories[m].size_bytes // 1024}" for m in ("weights", "membrane", "events"))
      + f" KiB per core, {EVT.bits['weight']}-bit weights, {EVT.bits['membrane']}-bit membranes, "
      f"membrane {EVT.dataflow['membrane']}, weights {EVT.dataflow['weights']}")

# %% [markdown]
# `per_synop = 1` is the event-driven dataflow (every synaptic op reads and writes its target potential),
# `0` output-stationary; `refetch = 1` streams every weight from DRAM at every step a layer runs, `0` keeps
# weights in the buffers (spilling to DRAM only what does not fit). Buffer sizes are per core; the SRAM access
# energy grows with the buffer size (Horowitz 2014's table) and every KiB leaks (static power over the
# latency), so a bigger buffer is not free in energy, and it costs area. The core count is held at evt45's.
# On-chip SRAM (cores x the three buffers) is also reported as a third objective, the area a design pays.

# %%
spec, net = U.load_net("mnist_conv")
x, y = U.dataset("mnist", "test", N_A, spec.input_shape)
traces, acc = {}, {}
for T in (4, 1):
    res = run(net, x, timesteps=T)
    traces[f"mnist_conv T={T}"] = res.trace
    acc[f"mnist_conv T={T}"] = accuracy(res, y)
MS, REV = "vgg_small T=4", "trev_small T=4"
for key, name, w in ((MS, "vgg_small", None), (REV, "trev_small", U.NETS / "trev_small_mnist.npz")):
    s, n = U.load_net(name, w)
    xb, yb = U.dataset("mnist", "test", N_B, s.input_shape)
    res = run(n, xb, timesteps=4)
    traces[key] = res.trace
    acc[key] = accuracy(res, yb)
counts = {k: count(t, EVT.dataflow["encoder"]) for k, t in traces.items()}
sweeps = {k: sweep(c, EVT, GRID) for k, c in counts.items()}
for k, c in counts.items():     # evt45 as shipped, every layer on its best mapping (docs/hwmodel.md "Mappings")
    one = pd.DataFrame(dict(refetch=[0]))
    fixed = sweep(c, EVT_SEARCH, one, mapping="fixed:timestep_outer")
    best = sweep(c, EVT_SEARCH, one)
    won = pd.Series(best.mappings.iloc[0].split(",")).value_counts().to_dict()
    print(f"{k:24s} evt45 mapper: {U.fmt(best.energy_pj.iloc[0], 'pJ')} (layers per mapping: {won}) against "
          f"{U.fmt(fixed.energy_pj.iloc[0], 'pJ')} on the fixed timestep-outer schedule")
print("accuracy:", {k: round(v, 4) for k, v in acc.items()})
for k, s in sweeps.items():
    print(f"{k:24s} feasible {s.feasible.mean():.0%}; energy {U.fmt(s.energy_pj.min(), 'pJ')} .. "
          f"{U.fmt(s.energy_pj.max(), 'pJ')}; latency {U.fmt(s.latency_ns.min(), 'ns')} .. "
          f"{U.fmt(s.latency_ns.max(), 'ns')}")


# %% [markdown]
# ## The Pareto front of energy against latency, `mnist_conv` at T = 4
#
# Two fronts: the designs no other design beats in both energy and latency, and the designs no other beats in
# energy, latency and on-chip SRAM at once.

# %%
knobs = list(GRID.columns)


def sram_kib(df):
    return EVT.cores * (df.weights_kib + df.membrane_kib + df.events_kib)


def pareto(df):
    """Designs no other design beats in both energy and latency (ties kept once)."""
    d = df[df.feasible].sort_values(["latency_ns", "energy_pj"])
    best, keep = np.inf, []
    for i, e in zip(d.index, d.energy_pj):
        if e < best:
            keep.append(i)
            best = e
    return df.loc[keep]


def pareto3(df, cols=("energy_pj", "latency_ns", "sram_kib")):
    """Designs not dominated in all of ``cols`` (smaller is better)."""
    d = df[df.feasible]
    v = d[list(cols)].to_numpy()
    keep = [i for i, row in zip(d.index, v)
            if not np.any(np.all(v <= row, axis=1) & np.any(v < row, axis=1))]
    return df.loc[keep]


for k in sweeps:
    sweeps[k]["sram_kib"] = sram_kib(sweeps[k])
main = sweeps["mnist_conv T=4"]
front = pareto(main)
front3 = pareto3(main)
cols = knobs + ["sram_kib", "energy_pj", "latency_ns", "dram_bytes"]
print(f"energy-latency front: {len(front)} design(s) of {len(main)}:")
print(front[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
print(f"\nenergy-latency-SRAM front: {len(front3)} designs; knob values on it (count):")
for k in knobs:
    print(f"  {k}: {front3[k].value_counts().sort_index().to_dict()}")
print(front3.sort_values("sram_kib")[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
# narrower words are always cheaper here (the accuracy they cost is not modelled): the best design per width
by_bits = main.loc[main.groupby(["bits_weight", "bits_membrane"]).energy_pj.idxmin()]
print("\nlowest-energy design per bit-width pair:")
print(by_bits[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))

# %%
DATAFLOWS = {(1, 0): ("per_synop, stationary", "tab:red"), (0, 0): ("output-stationary, stationary", "tab:blue"),
             (1, 1): ("per_synop, refetch", "tab:orange"), (0, 1): ("output-stationary, refetch", "tab:cyan")}
fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
ax = axes[0]
for (ps, rf), (label, color) in DATAFLOWS.items():
    d = main[(main.per_synop == ps) & (main.refetch == rf)]
    ax.scatter(d.latency_ns / 1e3, d.energy_pj / 1e6, s=5, alpha=0.3, color=color, label=label)
ax.scatter(front3.latency_ns / 1e3, front3.energy_pj / 1e6, s=22, facecolors="none", edgecolors="k",
           label="front in energy, latency, SRAM")
ax.plot(front.latency_ns / 1e3, front.energy_pj / 1e6, "k*", ms=14, label="front in energy, latency")
U.dress(ax, f"mnist_conv (trained) T=4: {len(main)} evt45 variants", "latency per inference (µs)",
        "energy per inference (µJ)", log="xy", legend=7)
ax = axes[1]
f3 = front3.sort_values("sram_kib")
for (ps, rf), (label, color) in DATAFLOWS.items():
    d = f3[(f3.per_synop == ps) & (f3.refetch == rf)]
    if len(d):
        ax.scatter(d.sram_kib, d.energy_pj / 1e6, s=18, color=color, label=label)
U.dress(ax, "the three-objective front: energy against SRAM",
        f"on-chip SRAM, {EVT.cores} cores x (weights + membrane + events) (KiB)", "energy per inference (µJ)",
        log="xy", legend=7)
ax = axes[2]
for key, color in (("mnist_conv T=4", "tab:red"), ("mnist_conv T=1", "tab:green")):
    s = sweeps[key]
    ax.scatter(s.latency_ns / 1e3, s.energy_pj / 1e6, s=4, alpha=0.15, color=color)
    f = pareto3(s)
    ax.scatter(f.latency_ns / 1e3, f.energy_pj / 1e6, s=16, facecolors="none", edgecolors=color,
               label=f"{key.split()[1]} ({'one-shot' if key.endswith('1') else 'multi-step'}): 3-objective front")
U.dress(ax, "multi-step T=4 vs one-shot T=1, same trained weights", "latency per inference (µs)",
        "energy per inference (µJ)", log="xy", legend=7)
fig.tight_layout()
U.savefig(fig, "05_pareto_mnist_conv")
plt.show()

# %% [markdown]
# ## Which regime wins where
#
# **Multi-step T = 4 against one-shot T = 1 (same trained weights).** The ratio of their energies over every
# design, and where it is largest: a heat map of the median ratio over the membrane buffer size and the
# membrane width (together they decide whether the carried membranes fit on chip), for each membrane dataflow.

# %%
ratio_ms = main.energy_pj / sweeps["mnist_conv T=1"].energy_pj
lat_ms = main.latency_ns / sweeps["mnist_conv T=1"].latency_ns
print(f"E(T=4)/E(T=1): min {ratio_ms.min():.3g}, median {ratio_ms.median():.3g}, max {ratio_ms.max():.3g}; "
      f"one-shot cheaper in {np.mean(ratio_ms > 1):.0%} of the designs; latency ratio {lat_ms.min():.3g} .. "
      f"{lat_ms.max():.3g}")
main_r = main.assign(ratio=ratio_ms)
worst = main_r.loc[ratio_ms.idxmax()]
best = main_r.loc[ratio_ms.idxmin()]
print("largest gap at:", {k: int(worst[k]) for k in knobs},
      f"ratio {worst.ratio:.3g}, T=4 DRAM {worst.dram_bytes:.3g} B")
print("smallest gap at:", {k: int(best[k]) for k in knobs}, f"ratio {best.ratio:.3g}")
heat = main_r.pivot_table(index="membrane_kib", columns=["per_synop", "bits_membrane"], values="ratio",
                          aggfunc="median")
print(heat.to_string(float_format=lambda v: f"{v:.3g}"))

# %% [markdown]
# **Multi-step against temporal-reversible (trained `vgg_small` vs trained `trev_small`, T = 4).** Over the
# same designs (fixed schedule), then with each regime on its best mappings over the buffer sizes, and along a
# third axis the design grid cannot reach: the cost of memory itself. Every SRAM and DRAM energy of evt45 is
# scaled by a factor s (s = 0 is the arithmetic-only proxy world, s = 1 is evt45), with the arithmetic of evt45
# (8-bit MAC 0.3 pJ, accumulate 0.05 pJ) or the proxy's FP32 arithmetic (4.6 / 0.9 pJ), every regime on its
# best mappings.

# %%
r_pair = sweeps[MS].energy_pj / sweeps[REV].energy_pj
l_pair = sweeps[MS].latency_ns / sweeps[REV].latency_ns
print(f"fixed schedule: E(multi-step)/E(T-RevSNN) over the design grid: min {r_pair.min():.3g}, median "
      f"{r_pair.median():.3g}, max {r_pair.max():.3g}; T-RevSNN cheaper in {np.mean(r_pair > 1):.0%} of designs; "
      f"latency ratio {l_pair.min():.3g} .. {l_pair.max():.3g}")

# the mapper: every regime on its own best mappings, over the weight and membrane buffer sizes
BUF = grid(weights_kib=[8, 16, 32, 64, 128, 256], membrane_kib=[2, 4, 8, 16, 32, 64])
mapped = {k: sweep(counts[k], EVT_SEARCH, BUF) for k in (MS, REV, "mnist_conv T=4", "mnist_conv T=1")}
BUF = BUF.assign(ms_over_rev=mapped[MS].energy_pj / mapped[REV].energy_pj,
                 t4_over_t1=mapped["mnist_conv T=4"].energy_pj / mapped["mnist_conv T=1"].energy_pj,
                 ms_mappings=mapped[MS].mappings, rev_dram=mapped[REV].dram_bytes, ms_dram=mapped[MS].dram_bytes)
heat_pair = BUF.pivot(index="membrane_kib", columns="weights_kib", values="ms_over_rev")
heat_t1 = BUF.pivot(index="membrane_kib", columns="weights_kib", values="t4_over_t1")
print("mapper: E(multi-step)/E(T-RevSNN) over buffer sizes (rows membrane KiB/core, columns weights KiB/core):")
print(heat_pair.to_string(float_format=lambda v: f"{v:.3g}"))
print("mapper: mnist_conv E(T=4)/E(T=1) over buffer sizes:")
print(heat_t1.to_string(float_format=lambda v: f"{v:.3g}"))


def memory_scaled(arch, s):
    """evt45 with every SRAM and DRAM access s times as costly (s = 0: memory is free)."""
    if s > 0:
        return U.memory_energy_scaled(arch, s)
    return replace(arch, sram=SramLaw("fixed", value=0.0, ref_bits=arch.sram.ref_bits), dram=dict(arch.dram, pj_per_bit=0.0))


SCALES = np.array([0.0, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0])
ARITH = {"evt45 arithmetic (MAC 0.3, AC 0.05 pJ)": (EVT.energy["mac"], EVT.energy["ac"]),
         "proxy arithmetic (MAC 4.6, AC 0.9 pJ)": (4.6, 0.9)}
mem_rows = []
for s in SCALES:
    arch_s = memory_scaled(EVT_SEARCH, s)
    for an, (emac, eac) in ARITH.items():
        v = pd.DataFrame(dict(e_mac=[emac], e_ac=[eac]))
        e = {k: float(sweep(counts[k], arch_s, v).energy_pj.iloc[0])
             for k in (MS, REV, "mnist_conv T=4", "mnist_conv T=1")}
        mem_rows.append(dict(scale=s, arithmetic=an, multi_over_trev=e[MS] / e[REV],
                             t4_over_t1=e["mnist_conv T=4"] / e["mnist_conv T=1"]))
mem = pd.DataFrame(mem_rows)
print("mapper: E(multi-step)/E(T-RevSNN) against the memory energy scale s:")
print(mem.pivot(index="scale", columns="arithmetic", values="multi_over_trev").to_string(
    float_format=lambda v: f"{v:.3g}"))
flips = {an: U.flip_points(mem[mem.arithmetic == an].scale.to_numpy(), mem[mem.arithmetic == an].multi_over_trev.to_numpy())
         for an in ARITH}
print("E(multi-step)/E(T-RevSNN) crosses 1 at memory scale:", {k: U.flips_text(v) for k, v in flips.items()})

# %%
fig, axes = plt.subplots(1, 4, figsize=(21, 4.4), gridspec_kw=dict(width_ratios=[1, 1, 1, 1]))


def heatmap(ax, h, title, ylabel, xt, fmt="{:.3g}"):
    ax.imshow(np.log10(h.to_numpy()), aspect="auto", cmap="coolwarm", origin="lower", vmin=-1.5, vmax=1.5)
    ax.set_yticks(range(len(h.index)), [f"{v:g}" for v in h.index])
    ax.set_xticks(range(len(h.columns)), xt, fontsize=7)
    ax.set_ylabel(ylabel)
    for i in range(h.shape[0]):
        for j in range(h.shape[1]):
            ax.text(j, i, fmt.format(h.iat[i, j]), ha="center", va="center", fontsize=6.5)
    ax.set_title(title, fontsize=9)


heatmap(axes[0], heat, "fixed schedule: mnist_conv median E(T=4)/E(T=1)\n(RMW = per_synop, OS = output-stationary)",
        "membrane buffer per core (KiB)", [f"{'RMW' if ps else 'OS'}\n{b}-bit u" for ps, b in heat.columns])
heatmap(axes[1], heat_t1, "mapper: mnist_conv E(T=4)/E(T=1)", "membrane buffer per core (KiB)",
        [f"w {v:g}" for v in heat_t1.columns])
heatmap(axes[2], heat_pair, f"mapper: E({MS.split()[0]})/E({REV.split()[0]}) at T=4 (trained)\n(> 1: T-RevSNN cheaper)",
        "membrane buffer per core (KiB)", [f"w {v:g}" for v in heat_pair.columns])
for ax in axes[1:3]:
    ax.set_xlabel("weight buffer per core (KiB)")
ax = axes[3]
for an, style in zip(ARITH, ("s-", "o--")):
    d = mem[mem.arithmetic == an]
    ax.plot(np.maximum(d.scale, 3e-4), d.multi_over_trev, style, label=f"MS/T-Rev, {an}")
    ax.plot(np.maximum(d.scale, 3e-4), d.t4_over_t1, style, alpha=0.4, label=f"mnist T=4/T=1, {an}")
ax.axhline(1, color="k", lw=0.8)
ax.axvline(1, color="grey", lw=0.8, ls=":")
U.dress(ax, "mapper: who wins as memory gets expensive",
        "memory energy scale s (SRAM and DRAM x s; leftmost point: s = 0)", "energy ratio", log="xy",
        title_size=9, legend=6.5)
fig.tight_layout()
U.savefig(fig, "05_regimes_design_space")
plt.show()

# %% [markdown]
# ## Findings (computed above)

# %%
def knob_dict(r):
    return {k: int(r[k]) for k in knobs}


findings = [f"mnist_conv (trained) T=4 over {len(main)} evt45 designs ({EVT.cores} cores): energy "
            f"{U.fmt(main.energy_pj.min(), 'pJ')} .. {U.fmt(main.energy_pj.max(), 'pJ')}, latency "
            f"{U.fmt(main.latency_ns.min(), 'ns')} .. {U.fmt(main.latency_ns.max(), 'ns')}."]
findings.append(f"energy-latency front: {len(front)} design(s): " + "; ".join(
    f"{knob_dict(r)} ({r.sram_kib:g} KiB SRAM) {U.fmt(r.energy_pj, 'pJ')}, {U.fmt(r.latency_ns, 'ns')}"
    for _, r in front.iterrows()))
findings.append(f"energy-latency-SRAM front: {len(front3)} designs from {U.fmt(front3.sram_kib.min() * 1024, 'B')} to "
                f"{U.fmt(front3.sram_kib.max() * 1024, 'B')} of SRAM; output-stationary in "
                f"{np.mean(front3.per_synop == 0):.0%}, refetch in {np.mean(front3.refetch == 1):.0%} of them; "
                f"the cheapest design with no DRAM traffic needs {main[main.dram_bytes == 0].sram_kib.min():g} KiB.")
b_lo, b_hi = by_bits.energy_pj.min(), by_bits.energy_pj.max()
findings.append(f"bit widths: the best design costs {U.fmt(b_lo, 'pJ')} with 4-bit weights / 8-bit membranes and "
                f"{U.fmt(by_bits.set_index(['bits_weight', 'bits_membrane']).energy_pj.loc[(8, 16)], 'pJ')} with "
                f"evt45's 8 / 16 bits ({U.fmt(b_hi, 'pJ')} at 8 / 32).")
findings.append(f"one-shot (T=1) beats multi-step T=4 in {np.mean(ratio_ms > 1):.0%} of designs, by "
                f"{ratio_ms.min():.3g}x to {ratio_ms.max():.3g}x (median {ratio_ms.median():.3g}x); accuracy "
                f"{acc['mnist_conv T=1']:.3f} vs {acc['mnist_conv T=4']:.3f}; the gap is largest at "
                f"{knob_dict(worst)}.")
findings.append(f"fixed schedule: T-RevSNN (trev_small) beats multi-step (vgg_small) at T=4 in {np.mean(r_pair > 1):.0%} "
                f"of designs, by {r_pair.min():.3g}x to {r_pair.max():.3g}x (median {r_pair.median():.3g}x); latency "
                f"{l_pair.min():.3g}x to {l_pair.max():.3g}x (both trained; accuracy {acc[MS]:.3f} vs {acc[REV]:.3f} "
                f"on {N_B} images)")
findings.append(f"mapper, over {len(BUF)} weight x membrane buffer sizes: E(vgg_small)/E(trev_small) "
                f"{BUF.ms_over_rev.min():.3g}x to {BUF.ms_over_rev.max():.3g}x (T-RevSNN cheaper in "
                f"{np.mean(BUF.ms_over_rev > 1):.0%}); mnist_conv E(T=4)/E(T=1) {BUF.t4_over_t1.min():.3g}x to "
                f"{BUF.t4_over_t1.max():.3g}x (one-shot cheaper in {np.mean(BUF.t4_over_t1 > 1):.0%}).")
for an in ARITH:
    d = mem[mem.arithmetic == an].set_index("scale").multi_over_trev
    findings.append(f"mapper, {an}: E(multi-step)/E(T-RevSNN) = {d.iloc[0]:.3g} with free memory (s=0), "
                    f"{d.loc[1.0]:.3g} at evt45's memory costs (s=1); over s: " + U.flips_text(flips[an]))
print("\n".join(f"- {f}" for f in findings))
print(f"\n(notebook ran in {U.elapsed():.1f} s, size={U.SIZE})")
