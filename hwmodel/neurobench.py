"""NeuroBench's workload metrics (NeuroBench 2.3.0), read from an snnsim run.

NeuroBench counts by hooks on the PyTorch modules of a network fed ``[batch, T, ...]`` data, one call
per timestep; its conventions, which differ from hwmodel's own counts, are:

  Effective_ACs    per call (a layer at one step on a whole batch): if every input is in {0, 1, -1}, the
                   nonzero inputs x nonzero weights they meet (padding taps meet no input); summed, per sample
  Effective_MACs   the same for calls whose input is not ternary
  Dense            every connection of every call (all-ones input and weights): padding excluded
  MembraneUpdates  per spiking neuron layer: all neurons at the first step, then the neurons whose membrane
                   changed from one step to the next; per sample
  NeuronOperations MembraneUpdates x 4 (snnTorch ``Leaky``, either reset) and the dense count x 4
  ActivationSparsity  zero outputs / all outputs of the spiking neuron layers over all steps and samples

The input layer runs at every step (the data is repeated T times), so the trace is counted with
``encoder='every_step'``; the ternary test is per call, which is the trace's run-wide flag when the run
is handed to NeuroBench as one batch (``binary='per_run'``). Weights equal to zero would be skipped by
NeuroBench; a trained network has none (``snnsim.network.check_nonzero_weights``). Membrane changes need the membrane of
every spiking layer at every step: run with ``probes=snnsim.network.spiking_layers(net)``.
"""

from __future__ import annotations

import numpy as np

from snnsim.errors import SnnsimError
from snnsim.trace import Trace

from .counts import count

LEAKY_OPS_PER_UPDATE = 4      # neurobench.metrics.workload.neuron_operations: 'Leaky' subtract/zero
METRICS = ("Effective_ACs", "Effective_MACs", "Dense", "MembraneUpdates", "Effective Neuron Ops",
           "Neuron Dense Ops", "ActivationSparsity")


def _spiking(trace: Trace):
    return [r for r in trace.layers if r.neuron_model and r.neuron_model not in ("li", "threshold")]


def membrane_updates(trace: Trace) -> float:
    """Per sample: every neuron at the first step, then the neurons whose membrane changed."""
    total = 0
    for rec in _spiking(trace):
        probe = trace.probes.get(rec.name, {}).get("membrane")
        if probe is None:
            raise SnnsimError(f"neurobench convention: layer '{rec.name}' has no membrane probe; run with "
                              "probes=spiking_layers(net) (snnsim hw --convention neurobench does)")
        v = probe.reshape(probe.shape[0], -1)
        total += v.shape[1] + int(np.count_nonzero(v[1:] != v[:-1]))
    return total / max(1, trace.samples)


def neurobench_metrics(trace: Trace) -> dict:
    """NeuroBench 2.3.0's workload metrics of one run (see the module docstring)."""
    c = count(trace, "every_step", binary="per_run")
    rows, lay = c.rows, c.layers.set_index("layer")
    syn = rows.layer.map(lay.synaptic).to_numpy(bool)
    dense = float((rows.computed[syn] * rows.layer[syn].map(lay.synapses)).sum())
    mu = membrane_updates(trace)
    spk = _spiking(trace)
    outs = sum(float(r.neuron_updates.sum()) for r in spk)
    fired = sum(float(r.events_out.sum()) for r in spk)
    n = max(1, trace.samples)
    return {"Effective_ACs": float(rows.synops[syn].sum()), "Effective_MACs": float(rows.macs_nz[syn].sum()),
            "Dense": dense, "MembraneUpdates": mu, "Effective Neuron Ops": LEAKY_OPS_PER_UPDATE * mu,
            "Neuron Dense Ops": LEAKY_OPS_PER_UPDATE * outs / n,
            "ActivationSparsity": (outs - fired) / outs if outs else 0.0}
