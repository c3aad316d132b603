"""One batch through the traced time loop: the state the engine keeps across timesteps (the neurons' membranes)
and the trace records it writes, op by op (``BatchRun``); the static part of each record is worked out once per op.
"""

from __future__ import annotations

import math

import numpy as np

from ..kernels.stats import analog_event_map, sample_nonzero, steps_stats, steps_stats_samples
from ..layers.op import Op, kernel_form
from ..trace import LayerTrace

# ----------------------------------------------------------------------------- static trace records
def fanout_map(op: Op) -> np.ndarray | None:
    """Outputs reached from each input position: exact at borders, with stride and groups (synaptic ops)."""
    return op.fanout_map()


def _static(op: Op, timesteps_kept: bool) -> tuple[dict, dict]:
    """What a trace record of the op holds that never changes for the op (how the trace sees it, its fan-out,
    its sizes; whether it is stateful depends only on whether timesteps are kept): worked out once per op."""
    cached = op.__dict__.setdefault("_trace_static", {})
    static = cached.get(timesteps_kept)
    if static is None:
        layer = op.layer
        kind, in_shape, out_shape, geometry = op.trace_view()
        if op.folded:
            geometry["folded"] = list(op.folded)
        is_neuron = op.holds_state
        stateful = is_neuron and layer.stateful and timesteps_kept
        size = math.prod(layer.out_shape)
        static = cached[timesteps_kept] = (dict(
            name=op.name, kind=kind, in_shape=in_shape, out_shape=out_shape,
            n_weights=int(op.weight.size) if op.synaptic else 0, n_bias=int(op.bias.size) if op.synaptic else 0,
            neurons=size if is_neuron else 0, stateful=stateful, state_size=size if stateful else 0,
            fanout_map=fanout_map(op), **op.trace_fields()), geometry)
    return static


def _records(ops: list, T: int) -> list[LayerTrace]:
    """Fresh trace records of plain ops for one batch of T timesteps. Their counters are rows of a few blocks
    allocated at once: at batch 1 a small network's run spent a fifth of its time making them one by one."""
    statics = [_static(op, T > 1) for op in ops]
    n = len(ops)
    counts = np.zeros((n, 3, T), np.int64)
    flags = np.zeros((n, 2, T), bool)
    flags[:, 1] = True
    sizes = [0 if f["fanout_map"] is None else T * math.prod(f["in_shape"]) for f, _ in statics]
    maps = np.zeros(sum(sizes), np.float32)
    out, at = [], 0
    for k, ((fields, geometry), size) in enumerate(zip(statics, sizes)):
        event_map = None if not size else maps[at:at + size].reshape((T,) + fields["in_shape"])
        at += size
        out.append(LayerTrace(**fields, geometry=dict(geometry), computed=flags[k, 0], form=[""] * T,
                              events_in=counts[k, 0], binary_in=flags[k, 1], events_out=counts[k, 1],
                              neuron_updates=counts[k, 2], event_map=event_map))
    return out


def _flat_fanout(op: Op) -> np.ndarray:
    """The op's fan-out map, flat and int64 (computed once per op; fan-outs are whole numbers)."""
    flat = op.__dict__.get("_flat_fanout")
    if flat is None:
        flat = op.__dict__["_flat_fanout"] = fanout_map(op).reshape(-1).astype(np.int64)
    return flat


def _visit(ops, T: int):
    """The trace's order: each plain op (it gets a record of its own), and for blocks and T-RevSNN parts their
    children first, then their own records (``Op.trace_records``)."""
    for op in ops:
        if op.composite:
            for sub in op.children():
                yield from _visit(sub, T)
            yield from op.trace_records(T)
        else:
            yield op


# ----------------------------------------------------------------------------- one batch
class BatchRun:
    """The state and trace of one batch through the time loop."""

    def __init__(self, ops: list, B: int, T: int, threshold: float, form: str, probes: set[str]):
        self.B, self.T, self.threshold, self.form = B, T, threshold, form
        self.state: dict[str, np.ndarray] = {}
        self.records: dict[str, LayerTrace] = {}
        self.order: list[LayerTrace] = []
        self.probes = {name: {} for name in probes}
        order = list(_visit(ops, T))
        fresh = iter(_records([e for e in order if isinstance(e, Op)], T))
        for e in order:
            rec = e
            if isinstance(e, Op):
                rec = next(fresh)
                if e.holds_state:
                    self.state[e.name] = e.initial_state(B)
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
        handed = None           # (record, neuron record, its input count before): a count the neuron makes
        while i < len(ops):
            op, nxt = ops[i], ops[i + 1] if i + 1 < len(ops) else None
            kind = op.pools_with(nxt) if op.holds_state and nxt is not None else None
            span = slice(t0, t0 + len(x))
            if kind is not None and op.name not in self.probes and nxt.name not in self.probes:
                self.records[op.name].computed[span] = True        # a neuron layer and its pooling: one pass
                x = op.step_pool_span(self, self.records[op.name], nxt, self.records[nxt.name], x, t0, kind)
                i += 2
            elif op.synaptic and nxt is not None and nxt.holds_state:
                # the neuron layer after it counts its nonzero inputs, this op's nonzero outputs, in its own pass
                nrec = self.records[nxt.name]
                handed = (self.records[op.name], nrec, nrec.events_in[span].copy())
                x = self.run_op_span(op, x, t0, count_out=False)
                i += 1
                continue
            else:
                x = self.run_op_span(op, x, t0)
                i += 1
            if handed is not None:
                rec, nrec, before = handed
                rec.events_out[span] += nrec.events_in[span] - before
                handed = None
        return x

    def run_op_span(self, op: Op, x: np.ndarray, t0: int, count_out: bool = True) -> np.ndarray:
        """One op over the steps of x [steps, B, ...]; ``count_out``: count its nonzero outputs (off when the
        neuron layer it feeds counts them as its inputs, ``run_span``)."""
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
        if count_out:
            sample_nonzero(y, rec.events_out[span])     # one row per timestep
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

