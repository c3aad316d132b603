"""RevSNN reversible blocks (Zhang & Zhang, AAAI 2024; docs/papers.md, RevSNN) and the bounded
re-simulation that every inverse in snnsim uses (this module and ``snnsim.trev``).

Forward, per timestep t (the engine's time loop; F and G keep their neuron state across timesteps):

    x = [x1, x2] (channel halves)      y1 = x1 + F(x2)      y2 = x2 + G(y1)      y = [y1, y2]

Inverse, given the block's outputs y[0..T-1] (``invert_block``): G is re-simulated from a reset state over all T
steps on y1, giving x2 = y2 - G(y1); then F from a reset state on x2, giving x1 = y1 - F(x2). Spikes are never
inverted, only re-evaluated forward.

Float32 round-off, spike flips (docs/papers.md, Reversal numerics). x2 = fl(y2 - G) is not bit-equal to the forward's x2
(fl(x2 + G) lost low bits), so F is re-simulated on a perturbed input, and a neuron whose charge lies within
the perturbation of its threshold may spike differently, changing F by a whole weight column. snnsim does not
hope this away: ``Sim`` re-simulates with an elementwise, rigorous bound on |reconstructed - forward| carried
through every op (|W| convolved with the input bound plus the float32 summation error gamma_K * |W| |x|, the
neuron update's Lipschitz constants plus its rounding, exact zero after a hard reset), and counts every neuron
whose re-simulated charge H satisfies |H - threshold| <= bound(H): a spike that might differ from the forward's.
The decision (docs/regimes.md): such a reconstruction is **flagged**; with ``cache`` (the exact tensor, kept by
the caller or, for T-RevSNN, by the forward's guard) the inverse **falls back to the cached state**; without
one it raises ``SpikeFlipError`` (``on_risk='keep'`` returns the flagged reconstruction instead).
Recomputing in float64 was rejected: the error comes from the forward's float32 rounding of y (or c[t]), which
no precision in the inverse can undo.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import kernels as K
from . import neurons
from .errors import SnnsimError
from .layers.neuron import NeuronOp
from .layers.op import U, Op, add_record, kernel_form, note_add, walk_ops
from .layers.registry import attach_build
from .layers.residual import ResidualOp
from .layers.reversible import Reversible, couple, split, uncouple

SAFETY = 1.01           # bound inflation per op: covers the float32 evaluation of the bound itself
FLOOR = 1e-37           # absolute floor per op (underflow of U * |x| for tiny x)


class SpikeFlipError(SnnsimError):
    """A reconstruction may have flipped a spike and no cached state was given to fall back to."""


# ----------------------------------------------------------------------------- the forward op
@dataclass
class ReversibleOp(Op):
    composite = True
    f: list = field(default_factory=list)
    g: list = field(default_factory=list)

    def children(self):
        return [self.f, self.g]

    def trace_records(self, T: int):
        half = (self.layer.in_shape[0] // 2,) + tuple(self.layer.in_shape[1:])
        return [add_record(f"{self.name}.add_f", half, T), add_record(f"{self.name}.add_g", half, T)]

    def run_step(self, br, x: np.ndarray, t: int) -> np.ndarray:
        x1, x2 = split(x)
        y1, y2, fo, go = couple(x1, x2, lambda v: br.run_ops(self.f, v, t), lambda v: br.run_ops(self.g, v, t))
        note_add(br.records[f"{self.name}.add_f"], t, x1, fo, y1)
        note_add(br.records[f"{self.name}.add_g"], t, x2, go, y2)
        y = np.concatenate([y1, y2], axis=1)
        if self.name in br.probes:
            br._probe(self.name, t, input=x, output=y)
        return y


# ----------------------------------------------------------------------------- bounded re-simulation
def build_op(layer: Reversible, w, ctx) -> ReversibleOp:
    return ReversibleOp(layer, (), ctx.build(layer.f, w, ctx.fold), ctx.build(layer.g, w, ctx.fold))


attach_build(Reversible, build_op)


@dataclass
class Risk:
    layer: str
    t: int
    count: int


class Sim:
    """Runs ops outside the engine (no trace), with the engine's arithmetic: the same ``op.forward`` calls with
    the same kernel form rule, the same neuron step, fresh neuron state. Optionally carries an elementwise bound
    ``e`` on |value here - value in the forward| through every op (``None`` = bit-exact) and records neurons
    whose spike might differ from the forward's (``risks``).
    """

    def __init__(self, form: str = "auto", event_threshold: float | None = None):
        self.form = form
        self.thr = None if event_threshold is None else float(event_threshold)     # None: the cost rule
        self.state: dict[str, list] = {}
        self.risks: list[Risk] = []

    @property
    def at_risk(self) -> int:
        return sum(r.count for r in self.risks)

    def reset(self) -> None:
        self.state.clear()

    def run_ops(self, ops, x: np.ndarray, e: np.ndarray | None, t: int):
        for op in ops:
            x, e = self.run_op(op, x, e, t)
        return x, e

    def _form(self, op: Op, x: np.ndarray) -> str:
        if self.form != "auto":
            return self.form
        return kernel_form(op, K.count_nonzero(x), x.size, self.thr)       # the engine's rule

    def run_op(self, op: Op, x: np.ndarray, e, t: int):
        if isinstance(op, ResidualOp):
            a, ea = self.run_ops(op.body, x, e, t)
            b, eb = self.run_ops(op.shortcut, x, e, t) if op.shortcut else (x, e)
            y = np.add(a, b, dtype=np.float32)
            return y, _add_bound(y, ea, eb)
        if isinstance(op, NeuronOp):
            return self._neuron(op, x, e, t)
        if op.composite:
            raise TypeError(f"{op.name}: nested {op.layer.kind} blocks cannot be re-simulated inside an inverse")
        if op.synaptic:
            y = op.forward(x, self._form(op, x))
        else:
            y = op.forward(x)
        if e is None:
            return y, None
        return y, _finish(op.error_bound(x, e, y))

    def _neuron(self, op: NeuronOp, x, e, t):
        p = op.params
        st = self.state.get(op.name)
        if st is None:
            st = self.state[op.name] = [np.full(x.shape, p.v_init, np.float32), None]
        v, ev = st
        if p.stateless:
            ev = None
        v_before = v.copy() if (e is not None or ev is not None) else None
        out = np.empty_like(x)
        h = np.empty_like(x)
        neurons.step(p, x, v, out, h)
        if e is None and ev is None:
            st[1] = None
            return out, None
        # bound on |H - H_forward|: Lipschitz constants of the update, plus the rounding of both evaluations
        k = float(p.factor) if p.mode == 2 else 1.0 / float(p.factor)
        if p.mode == 0:
            a_v, a_x = 1.0, 1.0
        elif p.mode == 4:
            a_v, a_x = 0.0, 1.0
        elif p.decay_input:
            a_v, a_x = abs(1.0 - k), k
        else:
            a_v, a_x = abs(1.0 - k), 1.0
        ex = 0.0 if e is None else e
        evv = 0.0 if ev is None else ev
        eh = a_v * evv + a_x * ex + 8 * U * (np.abs(v_before) + np.abs(x) + np.abs(h) + abs(float(p.v_r)) + evv + ex)
        eh = _finish(np.broadcast_to(eh, x.shape).astype(np.float32))
        if p.mode == 3:                       # li: the output is H itself
            st[1] = None if p.stateless else eh
            return out, eh
        risky = np.abs(h - p.threshold) <= eh
        n = int(risky.sum())
        if n:
            self.risks.append(Risk(op.name, t, n))
        if not p.stateless:
            new_ev = eh.copy() if not p.hard else np.where(out > 0, np.float32(0), eh)
            if not p.hard:
                new_ev = _finish(new_ev + U * np.abs(v))
            st[1] = new_ev
        return out, None                      # spikes: exact wherever no risk was counted


def _add_bound(y, ea, eb):
    if ea is None and eb is None:
        return None
    ea = 0.0 if ea is None else ea
    eb = 0.0 if eb is None else eb
    return _finish(ea + eb + U * (2 * np.abs(y) + ea + eb))


def _finish(e) -> np.ndarray:
    return (np.asarray(e, np.float32) * np.float32(SAFETY) + np.float32(FLOOR)).astype(np.float32)


def sub_bound(a: np.ndarray, ea, eb, out: np.ndarray) -> np.ndarray:
    """Bound on |out - truth| for out = fl(a - b) where the forward computed a_true = fl(truth + b_true),
    |a - a_true| <= ea and |b - b_true| <= eb."""
    ea = 0.0 if ea is None else ea
    eb = 0.0 if eb is None else eb
    return _finish(ea + eb + U * (np.abs(a) + ea + np.abs(out)))


# ----------------------------------------------------------------------------- the inverse
@dataclass
class InverseResult:
    x: np.ndarray              # the reconstructed input, [T, B, C, ...] (or the cached one after a fallback)
    bound: np.ndarray          # elementwise bound on |x - forward's x| (zeros after a fallback)
    at_risk: int               # spikes that may have flipped in the re-simulation (0: the bound is rigorous)
    risks: list                # where: [Risk(layer, t, count)]
    fallback: bool             # the cached state was used

    @property
    def flagged(self) -> bool:
        return self.at_risk > 0


def _resolve(x, bound, risks, cache, on_risk, what) -> InverseResult:
    n = sum(r.count for r in risks)
    if n == 0:
        return InverseResult(x, bound, 0, risks, False)
    if cache is not None:
        cache = np.asarray(cache, np.float32)
        if cache.shape != x.shape:
            raise ValueError(f"cache: expected shape {list(x.shape)}, got {list(cache.shape)}")
        return InverseResult(cache.copy(), np.zeros_like(cache), n, risks, True)
    if on_risk == "raise":
        first = risks[0]
        raise SpikeFlipError(f"{what}: {n} re-simulated spikes lie within the reconstruction error of their "
                             f"threshold (first: layer {first.layer}, t={first.t}); pass the cached state (cache=) "
                             "or on_risk='keep' to accept the flagged reconstruction")
    return InverseResult(x, bound, n, risks, False)


def invert_block(op: ReversibleOp, y: np.ndarray, bound: np.ndarray | None = None, *, cache=None,
                 on_risk: str = "raise", form: str = "auto", event_threshold: float | None = None) -> InverseResult:
    """Rebuild a reversible block's input x [T, B, C, ...] from its output y [T, B, C, ...] over all T steps.

    ``bound``: elementwise bound on the error of ``y`` itself (when y is a reconstruction, e.g. the next block's
    inverse); None if y is exact. ``form``/``event_threshold`` must be those of the forward run so that the
    re-simulation uses the same kernels (and so the same float32 sums). See the module docstring for ``cache``
    and ``on_risk``.
    """
    if on_risk not in ("raise", "keep"):
        raise ValueError("on_risk: 'raise' or 'keep'")
    y = np.asarray(y, np.float32)
    T = y.shape[0]
    c = y.shape[2] // 2
    y1, y2 = y[:, :, :c], y[:, :, c:]
    e1 = e2 = None
    if bound is not None:
        e1, e2 = bound[:, :, :c], bound[:, :, c:]
    sim_g, sim_f = Sim(form, event_threshold), Sim(form, event_threshold)
    eg, ef = [], []                  # per step: the bound on G's (F's) re-simulated output
    ex2 = np.empty_like(y2)

    def over_time(sim, ops, x, e_in, e_out):
        out = np.empty_like(x)
        for t in range(T):
            out[t], e = sim.run_ops(ops, np.ascontiguousarray(x[t]), None if e_in is None else e_in[t], t)
            e_out.append(e)
        return out

    def run_f(x2):
        for t in range(T):           # the bound on x2 = y2 - G(y1), which F's re-simulation carries
            ex2[t] = sub_bound(y2[t], None if e2 is None else e2[t], eg[t], x2[t])
        return over_time(sim_f, op.f, x2, ex2, ef)

    x1, x2 = uncouple(y1, y2, lambda v: over_time(sim_g, op.g, v, e1, eg), run_f)
    ex1 = np.empty_like(y1)
    for t in range(T):
        ex1[t] = sub_bound(y1[t], None if e1 is None else e1[t], ef[t], x1[t])
    x = np.concatenate([x1, x2], axis=2)
    eb = np.concatenate([ex1, ex2], axis=2)
    return _resolve(x, eb, sim_g.risks + sim_f.risks, cache, on_risk, f"inverse of block {op.name}")


def invert_chain(ops: list, y: np.ndarray, *, caches: dict | None = None, on_risk: str = "raise",
                 form: str = "auto", event_threshold: float | None = None) -> list[InverseResult]:
    """Invert consecutive reversible blocks (a RevSNN ReversibleSequence) from the last block's output y.

    Returns one result per block, first block first; each block is inverted from the previous step's
    reconstruction and its bound, so the bounds grow with depth. ``caches``: {block name: exact input}.
    """
    out = []
    bound = None
    for op in reversed(ops):
        r = invert_block(op, y, bound, cache=(caches or {}).get(op.name), on_risk=on_risk, form=form,
                         event_threshold=event_threshold)
        out.append(r)
        y, bound = r.x, r.bound
    return out[::-1]


def reversible_ops(net) -> list[ReversibleOp]:
    return [op for op in walk_ops(net.ops) if isinstance(op, ReversibleOp)]
