"""See what a run did: the arrays ``snnsim run --output`` stores, and figures drawn from them.

``run_arrays`` is what ``snnsim run --output FILE.npz [--save spikes,membrane,outputs]`` writes:

- ``output`` [T, N, ...] the last layer's output per timestep, ``readout`` [N, ...], ``prediction`` [N],
  ``labels`` [N] when given;
- per-timestep totals summed over the samples: ``spike_count/<layer>`` [T] for spiking neuron layers and
  ``nonzero_out/<layer>`` [T] (nonzero outputs: analog values, not spikes) for every other layer;
- with ``--save spikes``: ``spikes/<layer>`` [T, N, *shape] (uint8) for every spiking neuron layer;
  ``membrane``: ``membrane/<layer>`` [T, N, *shape] float32, each neuron layer's membrane after the step
  (after the reset; SpikingJelly's ``v_seq`` convention); ``outputs``: ``layer_output/<layer>`` [T, N, *shape]
  for every layer that is not a neuron (linear, conv, pooling: analog values).

The figure functions take such a file (path or loaded dict) or a ``RunResult`` run with probes, and return a
matplotlib ``Figure``; ``snnsim plot raster|membrane|rates|energy RESULT -o FIG.png`` saves one. Energy is
drawn from a trace (``snnsim run --trace``) priced by ``hwmodel`` on an architecture preset, in µJ.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError

__all__ = ["SAVE_KINDS", "run_arrays", "probe_names", "load_result", "raster", "membrane", "rates", "energy"]

SAVE_KINDS = ("spikes", "membrane", "outputs")


def probe_names(net, save) -> list[str]:
    """The layers to probe for ``--save``: neuron layers for spikes/membrane, the others for outputs."""
    from .layers import NeuronOp, walk_ops

    names = []
    for op in walk_ops(net.ops):
        if op.composite:
            continue
        neuron = isinstance(op, NeuronOp)
        if (neuron and ({"spikes", "membrane"} & set(save))) or (not neuron and "outputs" in save):
            names.append(op.name)
    return names


def run_arrays(result, save=(), labels=None) -> dict[str, np.ndarray]:
    """The arrays of one run, named as the module docstring says."""
    arrays = {"output": result.outputs, "readout": result.readout, "prediction": result.predictions()}
    for rec in result.trace.layers:
        arrays[f"{'spike_count' if rec.spiking else 'nonzero_out'}/{rec.name}"] = rec.events_out
    kinds = {rec.name: rec for rec in result.trace.layers}
    for name, probe in result.trace.probes.items():
        rec = kinds.get(name)
        is_neuron = rec is not None and bool(rec.neuron_model)
        spiking = is_neuron and rec.spiking
        if is_neuron:
            if "spikes" in save and spiking:
                arrays[f"spikes/{name}"] = probe["spikes"].astype(np.uint8)
            if "membrane" in save:
                arrays[f"membrane/{name}"] = probe["membrane"]
        elif "outputs" in save and "output" in probe:
            arrays[f"layer_output/{name}"] = probe["output"]
    if labels is not None:
        arrays["labels"] = np.asarray(labels)
    return arrays


def load_result(result) -> dict[str, np.ndarray]:
    """A run's arrays from a path (``run --output``), a dict of them, or a ``RunResult`` with probes."""
    if isinstance(result, dict):
        return result
    if hasattr(result, "trace") and hasattr(result, "outputs"):
        return run_arrays(result, save=SAVE_KINDS)
    path = Path(result)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a result file written by snnsim run --output ({e})") from None


def _pick(arrays, prefix, layers, what):
    names = [k.split("/", 1)[1] for k in arrays if k.startswith(prefix + "/")]
    if not names:
        raise InputError(f"the result has no {what}; run with --output FILE.npz --save {what.split()[0]}")
    if layers:
        missing = [n for n in layers if n not in names]
        if missing:
            raise InputError(f"--layer {missing[0]}: no {what} for it; saved: {', '.join(names)}")
        return list(layers)
    return names


def _figure(rows, height=1.6):
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, 1, figsize=(7, 0.8 + height * rows), squeeze=False, sharex=True)
    return fig, axes[:, 0]


def matplotlib_colors(n):
    """n distinct colours (tab20), so that no two stacked components share one."""
    import matplotlib

    return [matplotlib.colormaps["tab20"](i % 20) for i in range(n)]


def raster(result, layers=(), sample: int = 0):
    """Spike raster of one sample: a dot per (timestep, neuron) spike, one panel per spiking layer."""
    arrays = load_result(result)
    names = _pick(arrays, "spikes", layers, "spikes (spike tensors)")
    fig, axes = _figure(len(names))
    for ax, name in zip(axes, names):
        s = arrays[f"spikes/{name}"]
        if not 0 <= sample < s.shape[1]:
            raise InputError(f"--sample {sample}: the result has {s.shape[1]} samples")
        t, i = np.nonzero(s[:, sample].reshape(s.shape[0], -1))
        ax.scatter(t, i, s=4, marker="|", color="k")
        ax.set_ylabel(f"{name}\nneuron")
        ax.set_ylim(-0.5, s[0, 0].size - 0.5)
    axes[-1].set_xlabel("timestep")
    axes[-1].set_xlim(-0.5, arrays[f"spikes/{names[0]}"].shape[0] - 0.5)
    axes[-1].xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(f"spikes of sample {sample}")
    fig.tight_layout()
    return fig


def membrane(result, layers=(), sample: int = 0, neurons: int = 5):
    """Membrane potential against timestep of one sample: the ``neurons`` most active neurons per layer."""
    arrays = load_result(result)
    names = _pick(arrays, "membrane", layers, "membrane (membrane tensors)")
    fig, axes = _figure(len(names), 2.0)
    for ax, name in zip(axes, names):
        v = arrays[f"membrane/{name}"]
        if not 0 <= sample < v.shape[1]:
            raise InputError(f"--sample {sample}: the result has {v.shape[1]} samples")
        v = v[:, sample].reshape(v.shape[0], -1)
        pick = np.argsort(-np.abs(v).sum(axis=0), kind="stable")[:neurons]
        for j in pick:
            ax.plot(np.arange(len(v)), v[:, j], marker=".", label=f"neuron {j}")
        ax.set_ylabel(f"{name}\nmembrane")
        ax.legend(fontsize=7, loc="upper right", ncol=min(len(pick), 5))
    axes[-1].set_xlabel("timestep")
    axes[-1].xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(f"membrane after each step, sample {sample}")
    fig.tight_layout()
    return fig


def rates(result):
    """Firing rate per spiking layer (spikes per neuron and timestep, over all samples)."""
    arrays = load_result(result)
    names = [k.split("/", 1)[1] for k in arrays if k.startswith("spikes/")]
    if not names:
        raise InputError("the result has no spike tensors; run with --output FILE.npz --save spikes")
    values = [float(arrays[f"spikes/{n}"].mean()) for n in names]
    fig, axes = _figure(1, 3.0)
    ax = axes[0]
    ax.bar(range(len(names)), values, color="tab:blue")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_ylabel("spikes per neuron per timestep")
    ax.set_title("firing rate by layer")
    fig.tight_layout()
    return fig


def energy(trace, arch: str = "evt45"):
    """Energy per inference by layer and component (µJ), ``trace`` priced by ``hwmodel`` on ``arch``."""
    from hwmodel import load_arch, price

    from .trace import Trace

    if isinstance(trace, (str, Path)):
        try:
            trace = Trace.load(trace)
        except (OSError, ValueError, KeyError) as e:
            raise InputError(f"{trace}: not a trace written by snnsim run --trace ({e})") from None
    trace = getattr(trace, "trace", trace)
    report = price(trace, load_arch(arch))
    per_layer = report.per_layer().drop(columns="e_total") / 1e6          # pJ -> µJ
    per_layer = per_layer.loc[:, per_layer.abs().sum() > 0]
    fig, axes = _figure(1, 3.4)
    ax = axes[0]
    bottom = np.zeros(len(per_layer))
    colors = matplotlib_colors(len(per_layer.columns))
    for col, color in zip(per_layer.columns, colors):
        ax.bar(range(len(per_layer)), per_layer[col].to_numpy(), bottom=bottom, label=col[2:], color=color)
        bottom += per_layer[col].to_numpy()
    ax.set_xticks(range(len(per_layer)), list(per_layer.index), rotation=45, ha="right")
    ax.set_ylabel("energy per inference (µJ)")
    ax.set_title(f"{trace.network} on {arch}: {report.totals['energy_pj'] / 1e6:.3g} µJ, "
                 f"{report.totals['latency_ns'] / 1e3:.3g} µs per inference")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
