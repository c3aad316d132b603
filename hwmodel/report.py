"""A priced run: ``price(trace, arch)`` counts the trace, searches the mappings and returns a ``Report``
with pandas tables (per layer and timestep, per component, per unit's mapping)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from snnsim.trace import Trace

from .arch import Arch, ArchError
from .counts import Counts, count, spikes_per_synapse
from .energy import COMPONENTS
from .mapping import modal, parse_choice, search


# ----------------------------------------------------------------------------- single-architecture report
@dataclass
class Report:
    arch: Arch
    counts: Counts
    breakdown: pd.DataFrame   # per layer and timestep: counts and e_<component> (pJ); static in a '(chip)' row
    totals: dict              # per inference
    constants: pd.DataFrame   # every constant of the architecture with its source
    steps_ns: np.ndarray      # time of each (hardware) timestep: T of them, or T + units - 1 if pipelined
    mapping: pd.DataFrame | None = None   # per unit (a layer with weights and what follows it): the mapping
                                          # most samples ran on, the share of samples on it, mean pJ and ns

    def components(self) -> pd.Series:
        return pd.Series({k: self.totals[f"e_{k}"] for k in COMPONENTS})

    def per_layer(self) -> pd.DataFrame:
        cols = [f"e_{k}" for k in COMPONENTS] + ["e_total"]
        return self.breakdown.groupby("layer", sort=False)[cols].sum()


def check_fit(c: Counts, arch: Arch, res: dict) -> None:
    """Turn a placement that cannot work (no DRAM to spill to, or too few cores) into an ArchError."""
    if res["too_few_cores"].any():
        raise ArchError("cores", f"the pipelined mapping puts each layer with weights on its own cores; "
                        f"'{c.network}' has {c.n_units} such layers but the architecture has {arch.cores} cores",
                        arch.path)
    if arch.dram is not None:
        return
    lay = c.layers
    for kind, field, what in (("weights", "weights", "weight"), ("membrane", "membrane", "membrane state")):
        spill = np.asarray(res["spills"][kind]).reshape(-1)
        if spill.sum() > 0:
            i = int(np.argmax(spill > 0))
            raise ArchError(f"memories.{field}.size_kib",
                            f"layer '{lay.layer[i]}' needs {_size(_need(lay, i, kind, arch))} of {what} storage, "
                            f"{_size(spill[i] / 8)} of which do not fit in the {arch.mapping} mapping's buffers "
                            f"({arch.memories[field].size_bytes / 1024:g} KiB per core x {arch.cores} cores), "
                            "and the architecture has no dram to spill to: enlarge the buffer, add cores or a "
                            "dram section", arch.path)
    e_spill = np.asarray(res["spills"]["events"]).reshape(-1)
    if e_spill.sum() > 0:
        r = c.rows.iloc[int(np.argmax(e_spill > 0))]
        raise ArchError("memories.events.size_kib", f"the input events of layer '{r.layer}' at t={r.t} overflow "
                        "the event buffers and the architecture has no dram to spill to", arch.path)


def _need(lay, i, kind, arch):
    if kind == "weights":
        return (lay.n_weights[i] * arch.bits["weight"] + lay.n_bias[i] * arch.bits["bias"]) / 8
    return lay.state_size[i] * arch.bits["membrane"] / 8


def _size(nbytes):
    return f"{nbytes:g} B" if nbytes < 1024 else f"{nbytes / 1024:.1f} KiB"


def check_graded(c: Counts, arch: Arch) -> None:
    """An architecture that takes binary spikes only refuses a layer that receives graded inputs."""
    if arch.graded_inputs != "refuse":
        return
    r = c.rows
    graded = r[(r.entries_analog > 0) | (r.macs_dense > 0)]
    graded = graded[graded.layer.map(c.layers.set_index("layer").synaptic)]
    if len(graded):
        raise ArchError("graded_inputs", f"layer '{graded.layer.iloc[0]}' receives graded (non-spike) inputs "
                        f"and {arch.name} takes binary spikes only: encode the input as spikes (rate or events) "
                        "or price it on an architecture with MACs (evt45)", arch.path)


def price(trace_or_counts: Trace | Counts, arch: Arch, objective: str = "energy",
          mapping: str | None = None) -> Report:
    """Price one run on one architecture, every layer on its best mapping under ``objective`` (energy,
    latency, edp) or on ``mapping='fixed:NAME'``. The encoder convention is the architecture's dataflow.encoder."""
    c = trace_or_counts
    if isinstance(c, Trace):
        c = count(c, arch.dataflow["encoder"])
    check_graded(c, arch)
    res, choice = search(c, arch, objective=objective, fixed=parse_choice(mapping, arch))
    check_fit(c, arch, res)
    df = c.rows.copy()
    for k, v in res["E"].items():
        df[f"e_{k}"] = np.broadcast_to(v, (len(df),))
    df["e_static"] = 0.0
    df["macs"] = res["macs"]
    df["weight_reads"] = res["weight_reads"]
    df["u_reads"] = df["u_rw"] + df["state_reads"]
    df["u_writes"] = df["u_rw"] + df["state_writes"]
    df["acc_reads"] = df["acc_writes"] = np.broadcast_to(res["acc_rw"], (len(df),))
    df["hops"] = np.broadcast_to(res["hops"], (len(df),))
    df["dram_bytes"] = np.broadcast_to(res["dram_bits"], (len(df),)) / 8
    # static energy is a chip term: one '(chip)' row per timestep, an equal share each
    T = c.timesteps
    chip = pd.DataFrame(dict(layer="(chip)", kind="static", t=np.arange(T), unit=-1, layer_index=-1,
                             e_static=float(res["E_static"]) / T))
    df = pd.concat([df, chip], ignore_index=True).fillna(0.0)
    ecols = [f"e_{k}" for k in COMPONENTS]
    df["e_total"] = df[ecols].sum(axis=1)
    tot = {f"e_{k}": float(df[f"e_{k}"].sum()) for k in COMPONENTS}
    # state held at once across a timestep boundary (multi-step: every stateful layer; trev: one column)
    state_bytes = c.state_held_words() * arch.bits["membrane"] / 8
    totals = dict(
        network=c.network, regime=c.regime, arch=arch.name, timesteps=T, encoder=c.encoder,
        energy_pj=float(res["total"]), latency_ns=float(res["latency"]), step_ns=float(res["step"]),
        hw_steps=float(res["hw_steps"]), proxy_pj=float(res["proxy"]), **tot,
        synops=float(c.rows.synops.sum()), macs=float(np.sum(res["macs"])),
        spikes_per_synapse=spikes_per_synapse(c), state_bytes=state_bytes,
        state_carried_bits=float(c.rows.state_carried_words.sum() * arch.bits["membrane"]),
        state_carried_bytes=float(c.rows.state_carried_words.sum() * arch.bits["membrane"] / 8),
        dram_bytes=float(np.sum(res["dram_bits"]) / 8),
        weight_spill_bytes=float(np.sum(res["spills"]["weights"]) / 8),
        membrane_spill_bytes=float(np.sum(res["spills"]["membrane"]) / 8),
        cores_used=float(np.sum(res["cores_u"])) if arch.mapping == "pipelined" else float(arch.cores))
    steps = res["pipe_steps"] if arch.mapping == "pipelined" else res["seq_steps"]
    maps = arch.loop_mappings()
    lay = c.layers
    first = lay.groupby("unit", sort=True).layer.first()
    # every sample ran on its own best mappings: the table names the one most samples chose per unit
    best, share = modal(choice, len(maps))
    chosen = pd.DataFrame(dict(unit=np.arange(c.n_units), layer=first.to_numpy(),
                               mapping=[maps[i].name for i in np.asarray(best).reshape(-1)],
                               samples_share=np.asarray(share, np.float64).reshape(-1),
                               energy_pj=np.asarray(res["unit_pj"], np.float64).reshape(-1),
                               time_ns=np.asarray(res["unit_ns"], np.float64).reshape(-1)))
    totals["mappings"] = ", ".join(f"{k} x{v}" for k, v in chosen.mapping.value_counts(sort=False).items())
    return Report(arch, c, df, totals, arch.constants(), np.asarray(steps, np.float64), chosen)
