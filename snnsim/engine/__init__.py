"""The engine: owns every time loop of a run and the state that crosses timesteps.

``run`` feeds each layer its input at every timestep its schedule asks for, keeps the neuron state arrays between
timesteps and records what happened (``snnsim.trace``); layers with weights run in dense or event-driven form,
chosen per layer and timestep from the measured input density. A batch runs as chunks of samples
(``chunk_bounds``: enough work each, their largest activation within an L2), the chunks side by side on
the kernel threads with every kernel serial inside (``snnsim.kernels.threads.parts``): one level of
parallelism, a hand-off per chunk rather than per kernel call. The package:

- ``schedule``: which ops run at which timestep (``Multistep``, the engine's own; an op may supply its own, as a
  T-RevSNN network does with its column schedule);
- ``batch``: one batch through the traced time loop (``BatchRun``);
- ``replay``: the same ops and arithmetic without a trace, carrying a rigorous bound on each value's error
  (``Replay``): the re-simulation that the reversible inverses and the T-RevSNN state-keeping forward
  (``snnsim.regimes``) run on;
- ``inputs``: the checks every run makes before any work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from ..errors import InputError
from ..kernels.threads import parts
from ..layers.op import walk_ops
from ..trace import Trace
from .batch import BatchRun, fanout_map
from .inputs import FORMS, check_input, check_probes, check_run_options
from .replay import Replay, Risk
from .schedule import Multistep, activation_sizes, schedule_of, steps_at_once

__all__ = ["FORMS", "Multistep", "Replay", "Risk", "RunResult", "accuracy", "activation_sizes", "check_probes",
           "check_run_options", "chunk_bounds", "fanout_map", "run", "schedule_of", "stats_rows", "stats_table",
           "steps_at_once"]


@dataclass
class RunResult:
    outputs: np.ndarray      # [T, N, *output_shape]: the last layer's output (or membrane) per timestep
    readout: np.ndarray      # [N, *output_shape]: mean over T or last timestep, as the spec says
    trace: Trace

    def predictions(self) -> np.ndarray:
        """The class of each sample: the argmax of its readout."""
        return self.readout.reshape(len(self.readout), -1).argmax(axis=1)

    def spikes(self, layer: str) -> np.ndarray:
        """A probed layer's output per timestep, ``[T, N, *shape]`` (the spikes of a neuron layer)."""
        rec = self._probe(layer)
        return rec["spikes"] if "spikes" in rec else rec["output"]

    def membrane(self, layer: str) -> np.ndarray:
        """A probed neuron layer's membrane potential after each step, ``[T, N, *shape]``."""
        rec = self._probe(layer)
        if "membrane" not in rec:
            raise InputError(f"probe: layer {layer!r} is not a neuron layer; it has no membrane")
        return rec["membrane"]

    def table(self):
        """Per-layer summary of the run (pandas DataFrame): firing rates, events in and out, synaptic ops."""
        return stats_table(self.trace)

    def _probe(self, layer: str) -> dict:
        if layer not in self.trace.probes:
            probed = ", ".join(sorted(self.trace.probes)) or "none"
            raise InputError(f"probe: layer {layer!r} was not probed; run with probes=[{layer!r}] (probed: {probed})")
        return self.trace.probes[layer]


# ----------------------------------------------------------------------------- public entry point
def run(net, x: np.ndarray, *, timesteps: int | None = None, batch_size: int = 64,
        event_threshold: float | None = None, form: str = "auto", probes: Iterable[str] = (),
        progress: Callable[[int], None] | None = None, regime: str | None = None,
        first_index: int = 0) -> RunResult:
    """Run ``x`` through the network for T timesteps and return outputs, readout and trace.

    x: ``[N, *input_shape]`` for direct and rate encoding, ``[T, N, *input_shape]`` for events.
    batch_size: samples per batch. A batch runs as chunks of samples side by side on the kernel threads
    (``chunk_bounds``, from the network and the batch alone: the same results on any number of cores); each
    chunk picks its kernel forms from its own inputs, and the trace merges the chunks and batches in order.
    event_threshold: input density below which layers with weights run event-driven (default: per layer,
    the form that snnsim/kernels/cost.py prices lower for its shape); ``form`` forces 'dense' or 'event'.
    probes: layer names whose full tensors are kept (neurons: spikes, membrane after the step, charge H).
    progress: called with the number of samples finished after each batch.
    regime: None picks the network's own ('multistep', 'oneshot' at T=1, 'trev' for a T-RevSNN network);
    'oneshot' runs T=1; 'multistep' and 'trev' are checked against the network (docs/regimes.md).
    first_index: the index of ``x``'s first sample in the whole data set (rate coding seeds each sample's spikes
    by its index, so a shard of the data, ``snnsim.distributed``, draws the spikes a whole run would).
    """
    schedule = schedule_of(net)
    T = schedule.plan(timesteps, regime)
    thr = check_run_options(form, batch_size, event_threshold)
    schedule.prepare(T)
    x = check_input(net, x, schedule.encoding, T)
    ops = schedule.ops
    probes = check_probes(probes, {op.name for op in walk_ops(ops)}, schedule.probe_where) if probes else set()

    spec = net.spec
    N = x.shape[1] if schedule.encoding == "events" else x.shape[0]
    outputs = np.zeros((T, N) + tuple(spec.output_shape), np.float32)
    trace = None
    largest, total = activation_sizes(net)

    def run_chunk(bounds):
        start, stop = bounds
        br = BatchRun(ops, stop - start, T, thr, form, probes)
        for t, y in schedule.steps(br, x, start, stop, T, first_index):
            outputs[t, start:stop] = y
        return Trace(net.name, schedule.regime(T), T, stop - start, schedule.encoding, br.order, br.probes)

    for start in range(0, N, batch_size):
        stop = min(N, start + batch_size)
        chunks = chunk_bounds(start, stop, largest, total)
        for part in parts(lambda i: run_chunk(chunks[i]), len(chunks)):
            if trace is None:
                trace = part
            else:
                trace.merge(part)
        if progress is not None:
            progress(stop - start)
    return RunResult(outputs, schedule.readout(outputs), trace)


# How a batch is cut into chunks of samples, which run side by side on the kernel threads (kernels/threads.py,
# ``parts``). Measured on the SEW-ResNet and the conv net at T=4 (benchmarks/batch_scaling.py, cores_used.py;
# docs/performance.md):
# - CHUNK_ELEMS: a chunk's largest activation at one timestep stays within 2^19 float32 elements (2 MiB, an
#   L2): past it the time per sample rose with the batch (the ResNet at 256: page faults and L3 traffic);
# - CHUNK_SAMPLES: at least 8 samples a chunk: a chunk's Python work per op call holds the GIL, and the
#   ResNet's chunks of 4 lost more to it than the second thread gained (0.56 against 0.42 ms a sample);
# - CHUNK_WORK: at least 2^16 activations a chunk summed over its layers (the digits MLP keeps batches whole);
# - CHUNKS: a batch with the work for it runs as 2 chunks, one a core of the 2-core target, more when
#   CHUNK_ELEMS asks for them. 4 were as fast idle and under load, but took more CPU time (the conv net's chunks
#   of 16 samples 12 % more than one batch of 64 on one thread, chunks of 32 4 %), which is what counts when
#   other processes hold the cores.
CHUNK_ELEMS = 1 << 19
CHUNK_SAMPLES = 8
CHUNK_WORK = 1 << 16
CHUNKS = 2


def chunk_bounds(start: int, stop: int, largest: int, total: int) -> list[tuple[int, int]]:
    """The chunks of samples [start, stop) a batch runs as, for a network whose largest activation has
    ``largest`` elements per sample and all its activations ``total``. They depend on the network and the batch
    only, never on the threads, so a run's results are the same on any number of cores: every chunk picks its
    kernel forms from its own inputs, as a batch of its size would."""
    B = stop - start
    least = max(CHUNK_SAMPLES, -(-CHUNK_WORK // max(1, total)))
    n = max(1, -(-B * largest // CHUNK_ELEMS), min(CHUNKS, B // least))
    n = min(n, B)
    return [(start + k * B // n, start + (k + 1) * B // n) for k in range(n)]


def accuracy(result: RunResult, labels: np.ndarray) -> float:
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(result.readout):
        raise InputError(f"labels: {len(labels)} labels for {len(result.readout)} samples")
    return float(np.mean(result.predictions() == labels))


def stats_table(trace: Trace):
    """Per-layer summary (pandas DataFrame): neurons, firing rate, events in/out, synaptic ops."""
    import pandas as pd

    return pd.DataFrame(stats_rows(trace))


def stats_rows(trace: Trace) -> list[dict]:
    """Per-layer summary rows: neurons, firing rate, events in/out, synaptic ops, timesteps run."""
    rows = []
    for rec in trace.layers:
        steps = max(1, int(rec.computed.sum()))
        rate = (rec.events_out.sum() / rec.neuron_updates.sum()) if rec.neuron_updates.sum() else math.nan
        rows.append(dict(layer=rec.name, kind=rec.neuron_model or rec.kind,
                         shape="x".join(map(str, rec.out_shape)), neurons=rec.neurons,
                         firing_rate=rate, events_in=int(rec.events_in.sum()),
                         events_out=int(rec.events_out.sum()), synops=float(rec.synops_binary.sum()),
                         macs=float(rec.macs_analog.sum()),
                         steps_run=steps))
    return rows
