"""The engine: owns the time loop and the membrane state, runs ops timestep by timestep, writes the trace.

For every timestep t and every layer in order, the engine feeds the layer its input at t, keeps the
neuron state arrays between timesteps, and records what happened (``snnsim.trace``). Layers with weights
run in dense or event-driven form, chosen per layer and timestep from the measured input density.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from .kernels.stats import analog_event_map, sample_nonzero, steps_stats, steps_stats_samples
from .errors import InputError
from .layers.op import Op, kernel_form, walk_ops
from .trace import LayerTrace, Trace

FORMS = ("auto", "dense", "event")


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


# ----------------------------------------------------------------------------- static trace records
def fanout_map(op: Op) -> np.ndarray | None:
    """Outputs reached from each input position: exact at borders, with stride and groups (synaptic ops)."""
    return op.fanout_map()


def _record(op: Op, T: int, timesteps_kept: bool) -> LayerTrace:
    layer = op.layer
    n_w = int(op.weight.size) if op.synaptic else 0
    n_b = int(op.bias.size) if op.synaptic else 0
    is_neuron = op.holds_state
    stateful = is_neuron and layer.stateful and timesteps_kept
    size = math.prod(layer.out_shape)
    # how the trace sees the layer, and its fan-out, never change for an op: computed once, not per batch
    static = op.__dict__.get("_trace_static")
    if static is None:
        kind, in_shape, out_shape, geometry = op.trace_view()
        if op.folded:
            geometry["folded"] = list(op.folded)
        static = op.__dict__["_trace_static"] = (fanout_map(op), kind, in_shape, out_shape, geometry,
                                                 op.trace_fields())
    fm, kind, in_shape, out_shape, geometry, fields = static
    events_in, events_out, neuron_updates = np.zeros((3, T), np.int64)      # one allocation: rows of a block
    return LayerTrace(
        name=op.name, kind=kind, in_shape=in_shape, out_shape=out_shape,
        geometry=dict(geometry), n_weights=n_w, n_bias=n_b, neurons=size if is_neuron else 0,
        stateful=stateful, state_size=size if stateful else 0,
        computed=np.zeros(T, bool), form=[""] * T, events_in=events_in, binary_in=np.ones(T, bool),
        events_out=events_out, neuron_updates=neuron_updates,
        event_map=np.zeros((T,) + in_shape, np.float32) if fm is not None else None,
        fanout_map=fm, **fields,
    )


def _flat_fanout(op: Op) -> np.ndarray:
    """The op's fan-out map, flat and int64 (computed once per op; fan-outs are whole numbers)."""
    flat = op.__dict__.get("_flat_fanout")
    if flat is None:
        flat = op.__dict__["_flat_fanout"] = fanout_map(op).reshape(-1).astype(np.int64)
    return flat


# ----------------------------------------------------------------------------- one batch
class _BatchRun:
    """The state and trace of one batch through the time loop."""

    def __init__(self, ops: list, B: int, T: int, threshold: float, form: str, probes: set[str]):
        self.B, self.T, self.threshold, self.form = B, T, threshold, form
        self.state: dict[str, np.ndarray] = {}
        self.records: dict[str, LayerTrace] = {}
        self.order: list[LayerTrace] = []
        self.probes = {name: {} for name in probes}
        self._init(ops)

    def _init(self, ops):
        for op in ops:
            if op.composite:        # blocks and T-RevSNN parts: children first, then their own records
                for sub in op.children():
                    self._init(sub)
                for rec in op.trace_records(self.T):
                    self.records[rec.name] = rec
                    self.order.append(rec)
                continue
            rec = _record(op, self.T, self.T > 1)
            if op.holds_state:
                self.state[op.name] = op.initial_state(self.B)
            self.records[rec.name] = rec
            self.order.append(rec)

    def run_ops(self, ops, x: np.ndarray, t: int) -> np.ndarray:
        for op in ops:
            x = self.run_op(op, x, t)
        return x

    def run_op(self, op: Op, x: np.ndarray, t: int) -> np.ndarray:
        """One op at timestep t."""
        if op.composite:         # blocks run their children through this batch run
            return op.run_step(self, x, t)
        return self.run_op_span(op, x[None], t)[0]

    def run_span(self, ops, x: np.ndarray, t0: int) -> np.ndarray:
        """Timesteps t0.. of x [steps, B, ...] through ops (each ``Op.spans``), every op over all the steps in one
        call: the calls, the trace's bookkeeping and each kernel's set-up are paid once, not once a timestep."""
        i = 0
        while i < len(ops):
            op, nxt = ops[i], ops[i + 1] if i + 1 < len(ops) else None
            kind = op.pools_with(nxt) if op.holds_state and nxt is not None else None
            if kind is not None and op.name not in self.probes and nxt.name not in self.probes:
                self.records[op.name].computed[t0:t0 + len(x)] = True        # a neuron layer and its pooling: one pass
                x = op.step_pool_span(self, self.records[op.name], nxt, self.records[nxt.name], x, t0, kind)
                i += 2
                continue
            x = self.run_op_span(op, x, t0)
            i += 1
        return x

    def run_op_span(self, op: Op, x: np.ndarray, t0: int) -> np.ndarray:
        if op.composite:
            return op.run_span(self, x, t0)
        n, B = x.shape[0], x.shape[1]
        span = slice(t0, t0 + n)
        rec = self.records[op.name]
        rec.computed[span] = True
        if op.holds_state:
            return op.step_span(self, rec, x, t0)
        if op.synaptic:      # one pass: nonzeros, binary check, the per-position event map, and per sample
            nz, binary = steps_stats_samples(x, rec.event_map[span], _flat_fanout(op), *rec.sample_counts(
                span, B, "sample_events_in", "sample_reach", "sample_analog"))
        else:                # hwmodel prices a 'per_event' op per input event, per sample
            nz, binary = steps_stats(x, rec.sample_counts(span, B, "sample_events_in")[0]
                                     if op.elementwise == "per_event" else None)
        rec.events_in[span] += nz
        rec.binary_in[span] &= binary
        if op.synaptic:
            if not binary.all():        # the samples the pass above found analog, in the shape the trace sees
                analog = rec.sample_analog[span]
                rec.note_analog(t0, analog, analog_event_map(x.reshape((n, B) + rec.in_shape), analog))
            y = self._forward_forms(op, rec, x, nz, t0)
        else:
            y = op.forward(x.reshape((n * B,) + x.shape[2:]))
        y = y.reshape((n, B) + y.shape[1:])
        sample_nonzero(y, rec.events_out[span])         # one row per timestep
        if op.name in self.probes:
            self.probe_span(op.name, t0, output=y)
        return y

    def _forward_forms(self, op: Op, rec: LayerTrace, x: np.ndarray, nz: np.ndarray, t0: int) -> np.ndarray:
        """A synaptic op over the steps of x [steps, B, ...], each step in its own kernel form (the rule's choice
        from its nonzero inputs ``nz``); consecutive steps of one form go to the kernel together."""
        n, B = x.shape[0], x.shape[1]
        if self.form != "auto":
            forms = [self.form] * n
        else:
            size = x[0].size
            forms = [kernel_form(op, k, size, self.threshold) for k in nz.tolist()]
        rec.form[t0:t0 + n] = forms
        parts, i = [], 0
        while i < n:
            j = i + 1
            while j < n and forms[j] == forms[i]:
                j += 1
            parts.append(op.forward(x[i:j].reshape(((j - i) * B,) + x.shape[2:]), forms[i], B))
            i = j
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _probe(self, name, t, **arrays):
        self.probe_span(name, t, **{key: arr[None] for key, arr in arrays.items()})

    def probe_span(self, name, t0, **arrays):
        """Keep the probed arrays [steps, B, ...] of timesteps t0.. (None: not computed)."""
        for key, arr in arrays.items():
            if arr is not None:
                buf = self.probes[name].setdefault(key, np.zeros((self.T,) + arr.shape[1:], np.float32))
                buf[t0:t0 + len(arr)] = arr


# ----------------------------------------------------------------------------- inputs
def _check_input(net, x: np.ndarray, encoding: str, T: int) -> np.ndarray:
    shape = tuple(net.spec.input_shape)
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise InputError(f"input: dtype {x.dtype} is not numeric")
    want = ("[T, N, " if encoding == "events" else "[N, ") + ", ".join(map(str, shape)) + "]"
    lead = 2 if encoding == "events" else 1
    if x.ndim != len(shape) + lead or tuple(x.shape[lead:]) != shape:
        raise InputError(f"input: expected shape {want} for network '{net.name}', got {list(x.shape)}")
    if encoding == "events" and x.shape[0] != T:
        raise InputError(f"input: the event tensor has {x.shape[0]} timesteps but the run asks for T={T}")
    if x.shape[lead - 1] == 0:
        raise InputError(f"input: no samples (shape {list(x.shape)})")
    with np.errstate(all="ignore"):            # a float64 beyond float32's range becomes Inf, reported below
        x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0].tolist()
        raise InputError(f"input: contains NaN or Inf (first at index {bad}; a value beyond float32's range "
                         "counts as Inf); clean or impute the data first")
    return x


def _rate_spikes(x: np.ndarray, T: int, seed: int, gain: float, first_index: int) -> np.ndarray:
    """Bernoulli spikes [T, B, ...]; sample i uses its own stream seeded by (seed, i), so the spikes of a
    sample do not depend on the batch size."""
    p = np.clip(x * np.float32(gain), 0, 1)
    out = np.empty((T,) + x.shape, np.float32)
    for i in range(x.shape[0]):
        rng = np.random.default_rng([seed, first_index + i])
        out[:, i] = rng.random((T,) + x.shape[1:], dtype=np.float32) < p[i]
    return out


def check_run_options(form: str, batch_size: int, event_threshold: float | None) -> float | None:
    """Check the options every run takes; returns the event threshold (None: the per-shape cost rule)."""
    if form not in FORMS:
        raise InputError(f"form: expected one of {', '.join(FORMS)}, got {form!r}")
    if batch_size < 1:
        raise InputError(f"batch size: expected a positive integer, got {batch_size}")
    thr = None if event_threshold is None else float(event_threshold)
    if thr is not None and not 0 <= thr <= 1:
        raise InputError(f"event threshold: expected a fraction in [0, 1], got {thr}")
    return thr


def check_probes(probes, names: set, where: str = "") -> set:
    """The probed layer names, each checked against the layers that run."""
    probes = set(probes)
    unknown = probes - names
    if unknown:
        listed = ", ".join(sorted(names)[:12]) + (", ..." if len(names) > 12 else "")
        raise InputError(f"probes: no layer named {sorted(unknown)[0]!r}{where}; layers: {listed}")
    return probes


# ----------------------------------------------------------------------------- schedules
class Multistep:
    """The engine's own schedule: every op at every timestep, in order ('multistep', or 'oneshot' at T=1).

    A schedule tells ``run`` which T and regime a run has (``plan``), which ops a batch runs and traces
    (``ops``), the outputs of a batch timestep by timestep (``steps``) and the readout. An op with a schedule of
    its own (``Op.schedule``: a T-RevSNN network runs each column once) replaces this one."""

    probe_where = ""
    name = "multistep"            # the regime of a T-step run

    def __init__(self, net):
        self.net = net
        self.encoding = net.spec.encoding.kind
        self.ops = net.ops

    def plan(self, timesteps: int | None, regime: str | None) -> int:
        if regime not in (None, "multistep", "oneshot"):
            raise InputError(f"regime: {regime!r} needs a T-RevSNN network (a 'trevsnn' layer); network "
                             f"'{self.net.name}' runs 'multistep' or 'oneshot'" if regime == "trev"
                             else f"regime: expected multistep, oneshot or trev, got {regime!r}")
        if regime == "oneshot":
            if timesteps not in (None, 1):
                raise InputError(f"regime oneshot runs T=1, but T={timesteps} was asked for")
            timesteps = 1
        T = int(timesteps or self.net.spec.timesteps)
        if T < 1:
            raise InputError(f"timesteps: expected a positive integer, got {T}")
        self.prefix, self.spans, self.largest = _static_plan(self.net)
        return T

    def prepare(self, T: int) -> None:
        """Checks that need T and the run options checked (none here)."""

    def regime(self, T: int) -> str:
        return "oneshot" if T == 1 else self.name

    def steps(self, br, x: np.ndarray, start: int, stop: int, T: int, first_index: int):
        """(t, output) for t = 0..T-1 of samples start..stop through the batch run ``br``."""
        net, enc = self.net, self.net.spec.encoding
        if enc.kind == "events":
            xin = x[:, start:stop]
        elif enc.kind == "rate":
            xin = _rate_spikes(x[start:stop], T, enc.seed, enc.gain, first_index + start)
        else:
            xin = None
        ops = net.ops[self.prefix:] if enc.kind == "direct" else net.ops
        if enc.kind == "direct":
            cached = br.run_ops(net.ops[:self.prefix], x[start:stop], 0)
        if self.spans:       # every op over several timesteps at once (``steps_at_once`` of them)
            w = steps_at_once(self.largest, stop - start, T)
            for t0 in range(0, T, w):
                t1 = min(T, t0 + w)
                if enc.kind == "direct":     # writable either way: a read-only array is another compiled type
                    xs = cached[None] if t1 - t0 == 1 and cached.flags.writeable else \
                        np.repeat(cached[None], t1 - t0, axis=0)
                else:
                    xs = np.ascontiguousarray(xin[t0:t1])
                ys = br.run_span(ops, xs, t0)
                for t in range(t0, t1):
                    yield t, ys[t - t0]
            return
        last = net.ops[-1]
        for t in range(T):
            y = br.run_ops(ops, cached if enc.kind == "direct" else np.ascontiguousarray(xin[t]), t)
            if net.spec.readout.source == "membrane":
                y = br.state[last.name]
            yield t, y

    def readout(self, outputs: np.ndarray) -> np.ndarray:
        return outputs.mean(axis=0) if self.net.spec.readout.reduce == "mean" else outputs[-1].copy()


# Elements (float32) of a layer's activations over the steps of one window: several timesteps side by side make
# kernels' calls fewer and larger, but past a few MiB each op's pass over them leaves the cache.
_WINDOW_ELEMS = 1 << 20


def steps_at_once(largest: int, B: int, T: int) -> int:
    """Timesteps that run side by side (a network whose ops all ``span``): as many as keep the largest activation
    (``largest`` values per sample, batches of B) within _WINDOW_ELEMS."""
    return max(1, min(T, _WINDOW_ELEMS // max(1, B * largest)))


def _static_plan(net) -> tuple[int, bool, int]:
    """What every run of a network shares, worked out once: how many leading ops a direct-encoded input runs
    once (``_cached_prefix``), whether the rest runs several timesteps at once (every op ``spans``; a membrane
    readout reads the state after every step, so it runs timestep by timestep) and its largest activation."""
    plan = net.__dict__.get("_static_plan")
    if plan is None:
        prefix = _cached_prefix(net) if net.spec.encoding.kind == "direct" else 0
        spans = net.spec.readout.source == "output" and all(op.spans for op in net.ops[prefix:])
        largest = max(math.prod(op.layer.out_shape) for op in walk_ops(net.ops))
        plan = net.__dict__["_static_plan"] = (prefix, spans, largest)
    return plan


def _cached_prefix(net) -> int:
    """How many leading ops give the same output every timestep when the input is constant."""
    n = 0
    for op in net.ops:
        if any(o.holds_state and o.layer.stateful for o in walk_ops([op])):
            break
        n += 1
    return n


def schedule_of(net):
    """The schedule a network runs by: the one an op gives (``Op.schedule``) or the engine's ``Multistep``."""
    return next((s for s in (op.schedule(net) for op in net.ops) if s is not None), None) or Multistep(net)


# ----------------------------------------------------------------------------- public entry point
def run(net, x: np.ndarray, *, timesteps: int | None = None, batch_size: int = 64,
        event_threshold: float | None = None, form: str = "auto", probes: Iterable[str] = (),
        progress: Callable[[int], None] | None = None, regime: str | None = None,
        first_index: int = 0) -> RunResult:
    """Run ``x`` through the network for T timesteps and return outputs, readout and trace.

    x: ``[N, *input_shape]`` for direct and rate encoding, ``[T, N, *input_shape]`` for events.
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
    x = _check_input(net, x, schedule.encoding, T)
    ops = schedule.ops
    probes = check_probes(probes, {op.name for op in walk_ops(ops)}, schedule.probe_where) if probes else set()

    spec = net.spec
    N = x.shape[1] if schedule.encoding == "events" else x.shape[0]
    outputs = np.zeros((T, N) + tuple(spec.output_shape), np.float32)
    trace = None
    for start in range(0, N, batch_size):
        stop = min(N, start + batch_size)
        B = stop - start
        br = _BatchRun(ops, B, T, thr, form, probes)
        for t, y in schedule.steps(br, x, start, stop, T, first_index):
            outputs[t, start:stop] = y
        batch_trace = Trace(net.name, schedule.regime(T), T, B, schedule.encoding, br.order, br.probes)
        if trace is None:
            trace = batch_trace
        else:
            trace.merge(batch_trace)
        if progress is not None:
            progress(B)
    return RunResult(outputs, schedule.readout(outputs), trace)


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
