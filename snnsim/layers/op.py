"""The inference op every layer kind's op builds on, and what the engine needs of any op.

An op owns a layer's maths (calling the Numba kernels) but no state: the engine owns the time loop and the
membrane arrays. A block's op lists its children's ops (``children``) so that walks reach every op.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import kernels as K
from ..kernels.cost import event_limit as _limit_of
from ..kernels.stats import sample_nonzero, steps_stats
from ..errors import WeightError
from ..spec import Layer, walk_blocks
from ..trace import LayerTrace

EMPTY = np.zeros(0, np.float32)
U = 2.0 ** -24          # unit round-off of float32 (round to nearest)
SAFETY = 1.01           # bound inflation per op: covers the float32 evaluation of the bound itself
FLOOR = 1e-37           # absolute floor per op (underflow of U * |x| for tiny x)


def gamma(n: int) -> float:
    """Relative error bound of a float32 sum of n terms (gamma_n = n u / (1 - n u))."""
    return n * U / (1 - n * U)


@dataclass
class Op:
    layer: Layer
    synaptic = False
    composite = False                # a block or a T-RevSNN part: run and traced by its own hooks, not as one layer
    holds_state = False              # a neuron layer: state the engine keeps across timesteps (initial_state, step)
    folded: tuple[str, ...] = ()     # names of layers folded into this op (batch norm)
    elementwise = ""                 # the arithmetic per element of an op without weights (snnsim.trace)

    @property
    def name(self) -> str:
        return self.layer.name

    def forward(self, x: np.ndarray, form: str = "dense", batch: int | None = None) -> np.ndarray:
        """The op on a batch x [N, ...]: every sample by itself. ``form``: a synaptic op's kernel form; ``batch``:
        the samples of one timestep when x holds several timesteps side by side (a synaptic op then rounds every
        sample as that timestep alone would)."""
        raise NotImplementedError

    @property
    def spans(self) -> bool:
        """Whether the engine may run the op over several timesteps in one call (a plain op: each sample by
        itself; a block: if its children can). Ops whose step t needs their own output at t - 1 cannot."""
        return not self.composite

    def children(self) -> list[list]:
        """The op lists inside a block (empty for a plain op)."""
        return []

    def prices(self, batch: int) -> tuple[float, float, float] | None:
        """(dense, event floor, event cost per nonzero input) for this batch size, ns on one thread, from the
        kernel-form rule's cost model (snnsim/kernels/cost.py; synaptic ops), or None."""
        return None

    def event_limit(self, batch: int) -> float | None:
        """Nonzero inputs below which the event form is cheaper for this batch size (synaptic ops), or None."""
        prices = self.prices(batch)
        return None if prices is None else _limit_of(prices)

    def fanout_map(self) -> np.ndarray | None:
        """Outputs reached from each input position (synaptic ops), or None."""
        return None

    def error_bound(self, x: np.ndarray, e: np.ndarray, y: np.ndarray) -> np.ndarray:
        """An elementwise bound on |y - y_forward| when the input is off by at most ``e`` elementwise, including
        this op's own float32 rounding (the re-simulation of inverses, ``snnsim.engine.Replay``)."""
        raise TypeError(f"{self.name}: no error bound for layer kind {self.layer.kind}")

    def replay(self, ex, x: np.ndarray, e: np.ndarray | None, t: int):
        """One timestep outside the engine's traced loop (``ex``: the engine's untraced ``snnsim.engine.Replay``), with the engine's
        arithmetic: returns the output and, when ``e`` bounds the input's error elementwise (None: exact), the
        output's bound. Blocks and ops with state override it."""
        if self.composite:
            raise TypeError(f"{self.name}: nested {self.layer.kind} blocks cannot be re-simulated inside an inverse")
        y = self.forward(x, ex.kernel_form(self, x)) if self.synaptic else self.forward(x)
        return y, None if e is None else finish(self.error_bound(x, e, y))

    def schedule(self, net):
        """A schedule of its own for the whole run (``snnsim.engine.Multistep`` documents one), or None: the
        engine's (every op at every timestep)."""
        return None

    def trace_view(self) -> tuple[str, tuple, tuple, dict]:
        """The layer as the trace records it (and hwmodel prices it): kind, per-sample input and output shapes,
        geometry (the record's hyper-parameters)."""
        layer = self.layer
        skip = {"name", "in_shape", "out_shape", "body", "shortcut"}
        g = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(layer).items() if k not in skip}
        return layer.kind, tuple(layer.in_shape), tuple(layer.out_shape), g

    def trace_fields(self) -> dict:
        """What hwmodel prices the record by, as the trace's plain fields (``snnsim.trace``: synaptic,
        neuron_model, elementwise), so that hwmodel never needs the kind."""
        return dict(synaptic=self.synaptic, elementwise=self.elementwise)


def finish(e) -> np.ndarray:
    """A bound made safe for its own float32 evaluation (``SAFETY``, ``FLOOR``)."""
    return (np.asarray(e, np.float32) * np.float32(SAFETY) + np.float32(FLOOR)).astype(np.float32)


def add_bound(y, ea, eb):
    """Bound on |y - truth| for y = fl(a + b), |a - a_true| <= ea, |b - b_true| <= eb (None: exact)."""
    if ea is None and eb is None:
        return None
    ea = 0.0 if ea is None else ea
    eb = 0.0 if eb is None else eb
    return finish(ea + eb + U * (2 * np.abs(y) + ea + eb))


def sub_bound(a: np.ndarray, ea, eb, out: np.ndarray) -> np.ndarray:
    """Bound on |out - truth| for out = fl(a - b) where the forward computed a_true = fl(truth + b_true),
    |a - a_true| <= ea and |b - b_true| <= eb."""
    ea = 0.0 if ea is None else ea
    eb = 0.0 if eb is None else eb
    return finish(ea + eb + U * (np.abs(a) + ea + np.abs(out)))


def synaptic_bound(op, x: np.ndarray, e: np.ndarray, y: np.ndarray, abs_apply, fan_in: int) -> np.ndarray:
    """Error bound of y = W x + b: |W| e carried, plus the float32 summation error gamma_(K+1) of |W| |x| and b
    (``abs_apply(v)``: |W| applied to a nonnegative v, no bias; K: the fan-in)."""
    ae = abs_apply(e)
    g = gamma(fan_in + 1)
    b = np.abs(op.bias).reshape((-1,) + (1,) * (y.ndim - 2)) if op.bias.size else 0.0
    return ae + g * (2 * abs_apply(np.abs(x)) + ae + 2 * b)


def abs_weight(op) -> np.ndarray:
    """|W| of a synaptic op, computed once."""
    a = op.__dict__.get("_abs_weight")
    if a is None:
        a = op.__dict__["_abs_weight"] = np.abs(op.weight)
    return a


walk_ops = walk_blocks      # every op, depth first, each block before its children


def _event_limit(op: Op, size: int) -> float | None:
    """Nonzero inputs below which the op's event form is cheaper (snnsim/kernels/cost.py), per batch size."""
    limits = op.__dict__.get("_event_limits")
    if limits is None:
        limits = op.__dict__["_event_limits"] = {}
    limit = limits.get(size, False)
    if limit is False:          # by input size: the batch is size // the input's size per sample
        per_sample = math.prod(op.layer.in_shape)
        limit = limits[size] = op.event_limit(size // per_sample if per_sample else 0)
    return limit


def kernel_form(op: Op, nonzero: int, size: int, threshold: float | None) -> str:
    """'event' or 'dense' for one layer and timestep. With a threshold (the user's event_threshold):
    'event' when the input's density is below it. Without: whichever form the cost model prices lower
    for this layer's shape and batch at this many nonzero inputs (snnsim/kernels/cost.py)."""
    if threshold is None:
        limit = _event_limit(op, size)
        if limit is not None:
            return "event" if nonzero < limit else "dense"
        threshold = K.DEFAULT_EVENT_THRESHOLD
    return "event" if nonzero < threshold * size else "dense"


def add_record(name: str, shape, T: int) -> LayerTrace:
    """The trace record of an elementwise sum (residual, reversible coupling, T-RevSNN fusion)."""
    shape = tuple(shape)
    return LayerTrace(name, "add", shape, shape, {}, 0, 0, 0, False, 0, np.zeros(T, bool),
                      [""] * T, np.zeros(T, np.int64), np.ones(T, bool), np.zeros(T, np.int64),
                      np.zeros(T, np.int64), elementwise="per_event")


def note_add(rec: LayerTrace, t: int, a: np.ndarray, b: np.ndarray, y: np.ndarray) -> None:
    """Record one timestep of y = a + b: both operands' events in, y's nonzeros out."""
    note_add_span(rec, t, a[None], b[None], y[None])


def note_add_span(rec: LayerTrace, t0: int, a: np.ndarray, b: np.ndarray, y: np.ndarray) -> None:
    """``note_add`` for the timesteps t0.. of a, b and y [steps, B, ...]."""
    span = slice(t0, t0 + len(a))
    ins, = rec.sample_counts(span, a.shape[1], "sample_events_in")     # per sample: hwmodel prices an add per event
    na, ba = steps_stats(a, ins)
    nb, bb = steps_stats(b, ins)
    rec.computed[span] = True
    rec.events_in[span] += na + nb
    rec.binary_in[span] &= ba & bb
    sample_nonzero(y, rec.events_out[span])     # one row per timestep


def check_finite(arrays: dict[str, np.ndarray], what: str) -> None:
    """Refuse arrays computed from checked weights (folded batch norm, standardised kernels) that overflowed."""
    for key, a in arrays.items():
        if not np.all(np.isfinite(a)):
            raise WeightError(f"'{key}' is not finite (NaN or Inf) after {what}; the weights it is computed from "
                              "are too large, or a variance too small, for float32")
