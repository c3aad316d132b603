"""Shared helpers of the hardware-study notebooks (notebooks/0X_*.py).

Only plumbing lives here (paths, the size switch, loading a network and a dataset, saving figures, grouping
hwmodel's energy components, pricing a dense ANN of the same topology); every study's logic and every number
is in the notebooks themselves.

Environment:
    SNNSIM_NB_SIZE    small (default: a few samples, a short T sweep; well under a minute) | full
    SNNSIM_NB_FIGDIR  where figures go (default build/figures, git-ignored); the tests point it at a temporary
                      directory
    SNNSIM_NB_UPDATE_FIGURES=1  write into notebooks/figures instead, to update the committed figures
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
NETS = ROOT / "networks"
SIZE = os.environ.get("SNNSIM_NB_SIZE", "small").strip().lower() or "small"
if SIZE not in ("small", "full"):
    raise SystemExit(f"SNNSIM_NB_SIZE: expected small or full, got {SIZE!r}")
_COMMITTED = ROOT / "notebooks" / "figures"
FIGDIR = Path(os.environ.get("SNNSIM_NB_FIGDIR")
              or (_COMMITTED if os.environ.get("SNNSIM_NB_UPDATE_FIGURES") == "1" else ROOT / "build" / "figures"))
_T0 = time.perf_counter()


def pick(small, full):
    """The value for the current size."""
    return full if SIZE == "full" else small


def elapsed() -> float:
    return time.perf_counter() - _T0


def savefig(fig, name: str) -> Path:
    """Save a figure as PNG in FIGDIR and print its path (the tests look for these lines)."""
    FIGDIR.mkdir(parents=True, exist_ok=True)
    path = FIGDIR / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"figure: {path}")
    return path


def dress(ax, title: str, xlabel: str | None = None, ylabel: str | None = None, *, log: str = "",
          title_size: float = 10, invert_x: bool = False, legend: float | dict | None = None):
    """Dress one panel: logarithmic axes (log="x", "y" or "xy"), axis labels, a title, T decreasing to the right
    (invert_x) and a legend (legend: its font size, or the keyword arguments of ax.legend)."""
    if "x" in log:
        ax.set_xscale("log")
    if "y" in log:
        ax.set_yscale("log")
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=title_size)
    if invert_x:
        ax.invert_xaxis()
    if legend is not None:
        ax.legend(**(legend if isinstance(legend, dict) else {"fontsize": legend}))


# ----------------------------------------------------------------------------- networks and data
def load_net(name: str, weights: str | Path | None = None, spec=None):
    """(spec, network) for networks/<name>.yaml with networks/<name>.npz (or the given weights / spec)."""
    from snnsim.network import build_network
    from snnsim.layers import load_spec
    from snnsim.weights import load_weights

    spec = spec or load_spec(NETS / f"{name}.yaml")
    w = load_weights(spec, weights or NETS / f"{name}.npz")
    return spec, build_network(spec, w)


def spec_with(name: str, **neuron_changes):
    """networks/<name>.yaml parsed with every neuron default changed (e.g. v_threshold=0.5)."""
    import yaml

    from snnsim.layers import parse_spec

    raw = yaml.safe_load((NETS / f"{name}.yaml").read_text())
    for kind in raw.get("neuron_defaults", {}):
        raw["neuron_defaults"][kind].update(neuron_changes)
    return parse_spec(raw, f"{name}.yaml")


def dataset(name: str, split: str = "test", n: int | None = None, shape=None):
    """Samples and labels of a shipped dataset (first n of the split), fitted or padded to ``shape``."""
    from snnsim.data import fit_to_shape, load_dataset

    x, y = load_dataset(name).split(split)
    if n:
        x, y = x[:n], y[:n]
    if shape is not None:
        if int(np.prod(x.shape[1:])) == int(np.prod(shape)):
            x = fit_to_shape(x, shape, name)
        else:                       # e.g. MNIST 1x28x28 into a 3x32x32 network: zero-pad, repeat the channel
            from snnsim.data import pad_to_shape

            x = pad_to_shape(x, shape)
    return np.ascontiguousarray(x, np.float32), y


# ----------------------------------------------------------------------------- energy components
# hwmodel's components (docs/hwmodel.md "Energy") gathered into the five the issue asks about, plus the rest.
# Membrane traffic has two parts: the state carried across timesteps (read and written once per neuron and
# step; zero in one-shot) and, under the per-synop dataflow, the accumulator read-modify-write of the target
# potential at every synaptic op (present at any T).
GROUPS = {
    "synaptic ops": ("synops", "macs"),
    "membrane: state": ("membrane_mem",),
    "membrane: per-synop RMW": ("accum_mem",),
    "weights": ("weight_mem", "bias"),
    "spikes": ("event_mem", "noc", "addr"),
    "DRAM": ("dram",),
    "neuron + other": ("neuron", "other", "static"),
}
MEMBRANE = ("membrane: state", "membrane: per-synop RMW")
GROUP_COLORS = {"synaptic ops": "#4c72b0", "membrane: state": "#dd8452", "membrane: per-synop RMW": "#f2b880",
                "weights": "#55a868", "spikes": "#c44e52", "DRAM": "#8172b3", "neuron + other": "#937860"}


def grouped(components: pd.Series) -> pd.Series:
    """pJ per group from ``Report.components()``."""
    return pd.Series({g: float(sum(components.get(c, 0.0) for c in cs)) for g, cs in GROUPS.items()})


# ----------------------------------------------------------------------------- a dense ANN of the same topology
def ann_trace(trace):
    """The trace an ANN with the same topology would leave: every input of every layer dense and analog (MACs,
    activations read and written at ``bits.activation``), no state across timesteps (T=1), ReLU in place of the
    spiking neurons (one compare per neuron, no reset). Built from a one-shot trace of the SNN, so that geometry,
    weights and layer order are exactly the network's; hwmodel then prices it with its dense-layer rules, the
    ones it applies to an SNN's analog input layer (docs/hwmodel.md: MACs, weight-stationary reads)."""
    if trace.timesteps != 1:
        raise ValueError("ann_trace: give the one-shot (T=1) trace of the network")
    t = copy.deepcopy(trace)
    t.regime = "ann"
    n = t.samples
    for rec in t.layers:
        numel = int(np.prod(rec.in_shape))
        rec.computed[:] = True
        rec.events_in[:] = numel * n               # dense activations: every entry is read
        rec.binary_in[:] = False
        rec.analog_samples, rec.event_map_analog = None, None     # every sample analog: the run-wide flag
        # every sample of an ANN does the same work: priced as one mean sample
        rec.sample_events_in = rec.sample_events_out = rec.sample_reach = rec.sample_analog = None
        if rec.event_map is not None:
            rec.event_map[:] = n
        rec.stateful, rec.state_size = False, 0
        if rec.kind == "neuron":
            rec.events_out[:] = 0                  # ReLU: a compare, no reset
            rec.neuron_updates[:] = rec.neurons * n
    return t


def ann_macs(trace) -> float:
    """Dense MACs of one inference of the network's topology (conv and linear; folded batch norm is free)."""
    from hwmodel.counts import dense_macs

    return float(sum(dense_macs(r) for r in trace.layers if r.kind in ("conv2d", "linear")))


def firing_rate(trace) -> float:
    """Spikes per neuron per timestep over the spiking layers (the 'spike rate' of Yan et al. 2024)."""
    spk = upd = 0
    for r in trace.layers:
        if r.kind == "neuron" and r.geometry.get("neuron") != "li":
            spk += int(r.events_out.sum())
            upd += int(r.neuron_updates.sum())
    return spk / upd if upd else 0.0


def fmt(v: float, unit: str = "") -> str:
    """Compact engineering format: 1.23e+06 pJ -> '1.23 µJ'."""
    if unit == "pJ":
        for scale, u in ((1e6, "µJ"), (1e3, "nJ"), (1, "pJ")):
            if abs(v) >= scale:
                return f"{v / scale:.3g} {u}"
        return f"{v:.3g} pJ"
    if unit == "ns":
        for scale, u in ((1e6, "ms"), (1e3, "µs"), (1, "ns")):
            if abs(v) >= scale:
                return f"{v / scale:.3g} {u}"
        return f"{v:.3g} ns"
    if unit == "B":
        for scale, u in ((2 ** 30, "GiB"), (2 ** 20, "MiB"), (2 ** 10, "KiB"), (1, "B")):
            if abs(v) >= scale:
                return f"{v / scale:.3g} {u}"
        return f"{v:.0f} B"
    return f"{v:.3g}"


def arch_variant(arch, name: str, weights_kib: float | None = None, membrane_kib: float | None = None,
                 **dataflow):
    """A copy of an architecture with other per-core buffer sizes and/or dataflow switches."""
    from dataclasses import replace

    from hwmodel.arch import Memory, with_dataflow

    mem = dict(arch.memories)
    if weights_kib is not None:
        mem["weights"] = Memory(int(weights_kib * 1024), mem["weights"].word_bits)
    if membrane_kib is not None:
        mem["membrane"] = Memory(int(membrane_kib * 1024), mem["membrane"].word_bits)
    out = replace(arch, name=name, memories=mem)
    if "membrane" in dataflow and out.mappings:   # the mapper then chooses among that accumulation's mappings
        acc = "per_op" if dataflow["membrane"] == "per_synop" else "registers"
        out = replace(out, mappings=tuple(m for m in out.mappings if m.accumulate == acc))
    return with_dataflow(out, **dataflow) if dataflow else out


def n_params(spec) -> int:
    """Trainable parameters: weights shared across T-RevSNN columns counted once, batch-norm running statistics
    left out (as benchmarks/regimes.py counts them)."""
    from snnsim.layers import ScaledStdConv2d
    from snnsim.spec import walk

    shared = {f"{layer.name}.{p}" for layer in walk(spec.layers)
              if isinstance(layer, ScaledStdConv2d) and getattr(layer, "shared_from", "") for p in layer.param_shapes()}
    return sum(int(np.prod(s)) for k, s in spec.param_shapes().items()
               if k not in shared and not k.endswith(("running_mean", "running_var", "num_batches_tracked")))


def memory_energy_scaled(arch, k: float):
    """A copy of an architecture with every memory access (the SRAM table and DRAM) k times as costly."""
    from dataclasses import replace

    law = replace(arch.sram, points=tuple((b, e * k) for b, e in arch.sram.points))
    return replace(arch, sram=law, dram=dict(arch.dram, pj_per_bit=arch.dram["pj_per_bit"] * k))


def buffers_scaled(arch, k: float):
    """A copy of an architecture with every per-core buffer k times as large (at least 8 bytes)."""
    from dataclasses import replace

    from hwmodel.arch import Memory

    return replace(arch, memories={m: Memory(max(8, int(v.size_bytes * k)), v.word_bits)
                                   for m, v in arch.memories.items()})


SCALES = (0.1, 0.3, 1.0, 3.0, 10.0)


def one_factor_at_a_time(arch, measure, scales=SCALES) -> pd.DataFrame:
    """``measure(arch_variant)`` -> dict of numbers, for the memory access energy and then the buffer sizes of
    ``arch`` scaled by each factor in turn; one row per (factor, scale)."""
    rows = []
    for factor, change in (("memory energy", memory_energy_scaled), ("buffer size", buffers_scaled)):
        for k in scales:
            rows.append(dict(factor=factor, scale=k, **measure(change(arch, k))))
    return pd.DataFrame(rows)


def flip_points(xs, ratios) -> list[float]:
    """Every x at which ``ratios`` crosses 1, in increasing x (interpolated linearly in log x between the
    measured points; x <= 0 is taken as 1e-4); empty if it stays on one side over the range."""
    order = np.argsort(xs)
    x, r = np.maximum(np.asarray(xs, float)[order], 1e-4), np.asarray(ratios, float)[order]
    out = []
    for i in range(len(x) - 1):
        if (r[i] - 1) * (r[i + 1] - 1) < 0 or (r[i] == 1 and i == 0):
            f = (1 - r[i]) / (r[i + 1] - r[i])
            out.append(float(np.exp(np.log(x[i]) + f * (np.log(x[i + 1]) - np.log(x[i])))))
    return out


def flips_text(points) -> str:
    """'flips at 0.34 and 2.2' / 'no flip in range'."""
    return ("flips at " + " and ".join(f"{p:.2g}" for p in points)) if points else "no flip in range"
