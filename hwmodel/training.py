"""Training cost per sample, SATA-style (Yin et al., IEEE TCAD 2023; docs/energy_sources.md), from a trace.

Phases and counts, per sample, per synaptic layer l (A_in/A_out: input/output entries per step, W: weights,
N: neurons, b_u: membrane bits, spikes 1 bit; all sparsities measured from the trace except sp_du):

  forward    the priced inference (hwmodel.energy.price) - arithmetic and memory of what the run did
  store      BPTT keeps s and u of every neuron at every step for backward: T * sum N * (1 + b_u) bits,
             written in the forward and read back in the backward (DRAM if there is one, else SRAM)
  recompute  reversible training re-runs the forward inside the backward (T-RevSNN/RevCol, docs/regimes.md)
  backward   PGU (surrogate gradient x delta) per neuron-step: 1 mul + 2 add (SATA's unit);
             input-gradient MACs (1 - sp_du) * dense MACs per step, for every layer but the first;
             GLB traffic 7 T A_out + 2 T A_in + W values (SATA get_workload), DRAM T (A_out + A_in)
  update     weight-gradient ops: spike x delta = the run's synops (AC) or MACs for analog inputs;
             GLB 2 (1 + T) W + T (A_in + A_out), DRAM 2 W (read and write the weights)
  online     (OTTT-like) no storage across T; presynaptic traces (one mul-add per input per step) make the
             weight gradient analog: (1 - sp_du) * dense MACs per step instead of ACs.

SATA counts in 16-bit words; here traffic is in bits (values at membrane width, spikes 1 bit) and priced per
bit at the weight buffer (the largest SRAM, SATA's GLB) and at the DRAM's pJ/bit.
"""

from __future__ import annotations

import pandas as pd

from .arch import Arch
from .counts import Counts
from .report import price

METHODS = ("bptt", "reversible", "online")
SATA_SP_DU = 0.7    # sparsity of dL/du, SATA_Sim default (docs/energy_sources.md)


def training_cost(c: Counts, arch: Arch, sp_du: float = SATA_SP_DU) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (method, phase) operations, traffic and energy per sample; and a per-method summary."""
    if not 0 <= sp_du <= 1:
        raise ValueError(f"sp_du must be in [0, 1], got {sp_du}")
    fwd = price(c, arch).totals["energy_pj"]
    p = arch.params()
    ub = arch.bits["membrane"]
    e_sram_bit = float(arch.sram.access_pj(arch.memories["weights"].size_bytes)) / arch.sram.ref_bits
    e_dram_bit = p["dram_pj_bit"] if arch.dram else e_sram_bit
    T = c.timesteps
    lay, rows = c.layers, c.rows
    syn = lay[lay.synaptic]
    first = syn.index[0] if len(syn) else None
    steps_run = rows.groupby("layer_index").computed.sum()

    W_bits = float((syn.n_weights * arch.bits["weight"]).sum())
    neurons = float(lay.neurons.sum())
    nu = float(rows.neuron_updates.sum())
    stored_bits = T * neurons * (1 + ub)
    # per-layer sums over the steps the layer ran
    a_in = sum(syn.in_numel[i] * steps_run[i] for i in syn.index)          # input entries (spikes: 1 bit)
    a_out = sum(syn.out_numel[i] * steps_run[i] for i in syn.index)        # outputs (membrane width)
    bwd_macs = (1 - sp_du) * sum(syn.dense_macs[i] * steps_run[i] for i in syn.index if i != first)
    wup_ac = float(rows.synops.sum())
    wup_mac = float(rows.macs_dense.sum())
    online_wup_mac = (1 - sp_du) * sum(syn.dense_macs[i] * steps_run[i] for i in syn.index)
    trace_ops = a_in
    e_pgu = p["e_mul"] + 2 * p["e_add"]

    def row(method, phase, ac=0.0, mac=0.0, pgu=0.0, sram_bits=0.0, dram_bits=0.0, energy=None):
        e = (ac * p["e_ac"] + mac * p["e_mac"] + pgu * e_pgu + sram_bits * e_sram_bit + dram_bits * e_dram_bit
             if energy is None else energy)
        return dict(method=method, phase=phase, ac_ops=ac, mac_ops=mac, pgu_ops=pgu, sram_bits=sram_bits,
                    dram_bits=dram_bits, energy_pj=e)

    glb_bwd = 7 * a_out * ub + 2 * a_in + W_bits
    dram_bwd = a_out * ub + a_in
    glb_wup = 2 * (1 + T) * W_bits + a_in + a_out * ub
    out = []
    for m in METHODS:
        out.append(row(m, "forward", energy=fwd))
        if m == "bptt":
            out.append(row(m, "store", dram_bits=2 * stored_bits))
        if m == "reversible":
            out.append(row(m, "recompute", energy=fwd))
        out.append(row(m, "backward", mac=bwd_macs, pgu=nu, sram_bits=glb_bwd,
                       dram_bits=dram_bwd if m == "bptt" else 0.0))
        if m == "online":
            out.append(row(m, "update", mac=online_wup_mac + trace_ops, sram_bits=glb_wup, dram_bits=2 * W_bits))
        else:
            out.append(row(m, "update", ac=wup_ac, mac=wup_mac, sram_bits=glb_wup, dram_bits=2 * W_bits))
    phases = pd.DataFrame(out)
    state_bits = float((lay.state_size * ub).sum())
    stored = {"bptt": stored_bits, "reversible": neurons * (1 + ub) + state_bits,
              "online": neurons * (1 + ub) + float(syn.in_numel.sum()) * ub}
    summary = phases.groupby("method", sort=False).energy_pj.sum().rename("energy_pj").to_frame()
    summary["energy_ratio"] = summary.energy_pj / summary.energy_pj["bptt"]
    summary["stored_bytes"] = [stored[m] / 8 for m in summary.index]
    summary["stored_ratio"] = summary.stored_bytes / summary.stored_bytes["bptt"]
    return phases, summary.reset_index()
