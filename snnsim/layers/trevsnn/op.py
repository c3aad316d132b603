"""The inference op of a T-RevSNN network and its schedule: the engine runs the stem once, then each column
t = 0..T-1 once, at timestep t (``ColumnSchedule``; the equations are the package's docstring)."""


from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ... import kernels as K
from ...errors import InputError, SnnsimError, SpecError
from ...spec import Layer
from ...trace import LayerTrace
from ..op import Op, add_bound, note_add
from .records import TRevSNN, TRevState, clamp_alpha, columns, couple


def _fusion_layer(state: TRevState) -> Layer:
    shape = state.in_shape
    return Layer(f"subnet{state.column}.level{state.level}.fusion.add", shape, shape)


# ----------------------------------------------------------------------------- built ops
@dataclass
class FusionAddOp(Op):
    composite = True
    column: int = 0
    level: int = 0

    def trace_records(self, T):
        shape = tuple(self.layer.out_shape)
        return [LayerTrace(self.name, "add", shape, shape, {}, 0, 0, 0, False, 0, np.zeros(T, bool), [""] * T,
                           np.zeros(T, np.int64), np.ones(T, bool), np.zeros(T, np.int64), np.zeros(T, np.int64),
                           elementwise="per_event")]


@dataclass
class StateOp(Op):
    composite = True
    alpha: np.ndarray = None        # [C, 1, 1], clamped

    def trace_records(self, T):
        st: TRevState = self.layer
        shape = tuple(st.out_shape)
        carried = st.column < T - 1
        size = int(np.prod(shape))
        return [LayerTrace(self.name, "state", shape, shape,
                           {"column": st.column, "level": st.level, "alpha_key": st.key, "update": "c = o + alpha * c_prev"},
                           int(shape[0]), 0, size, carried, size if carried else 0, np.zeros(T, bool), [""] * T,
                           np.zeros(T, np.int64), np.ones(T, bool), np.zeros(T, np.int64), np.zeros(T, np.int64),
                           elementwise="carry")]

    def update(self, o: np.ndarray, c_prev: np.ndarray | None) -> np.ndarray:
        return couple(o, c_prev, self.alpha)


@dataclass
class LevelOps:
    column: int
    level: int
    down: list
    up: list
    blocks: list
    fuse: FusionAddOp | None
    state: StateOp


@dataclass
class TRevOp(Op):
    composite = True
    stem: list = field(default_factory=list)
    columns: list = field(default_factory=list)      # columns[t][l]: LevelOps
    heads: dict = field(default_factory=dict)        # column -> ops

    def children(self):
        out = [self.stem]
        for col in self.columns:
            for lv in col:
                out += [lv.down, lv.up, lv.blocks, [lv.state] + ([lv.fuse] if lv.fuse else [])]
        out += list(self.heads.values())
        return out

    @property
    def spec_layer(self) -> TRevSNN:
        return self.layer

    def head_plan(self, T: int, reduce: str) -> list[int]:
        """The head columns evaluated in a run of T columns: the last one only for readout 'last' (what the
        official eval uses), all of them for 'mean'."""
        cols = [t for t in self.heads if t < T]
        if (T - 1) not in self.heads:
            raise InputError(f"timesteps: T={T} ends at column {T - 1}, which has no head; this network has heads "
                             f"after columns {sorted(self.heads)} (T = {', '.join(str(t + 1) for t in sorted(self.heads))})")
        return cols if reduce == "mean" else [T - 1]

    def flat_ops(self, T: int, head_cols: list[int]) -> list:
        """Every op of a T-column run in execution order (for the trace records)."""
        ops = list(self.stem)
        for t in range(T):
            for lv in self.columns[t]:
                ops += lv.down + (lv.up if t > 0 else [])
                if lv.fuse is not None and t > 0:
                    ops.append(lv.fuse)
                ops += lv.blocks + [lv.state]
            if t in head_cols:
                ops += self.heads[t]
        return ops

    def schedule(self, net):
        return ColumnSchedule(self, net)


class ColumnSchedule:
    """The engine's schedule for a T-RevSNN network (``snnsim.engine.Multistep`` documents the interface): the stem
    once, then each column t = 0..T-1 once, at timestep t; heads after their columns."""

    encoding = "direct"
    name = "trev"                 # the regime of a T-step run

    def __init__(self, op: TRevOp, net):
        self.op, self.net = op, net

    def plan(self, timesteps, regime) -> int:
        spec = self.net.spec
        if len(spec.layers) != 1:
            raise SpecError("layers", "a 'trevsnn' layer is a whole network and must be the only layer", spec.source)
        if spec.encoding.kind != "direct":
            raise SpecError("encoding", f"a T-RevSNN network encodes the image once (direct encoding); got "
                                        f"'{spec.encoding.kind}'", spec.source)
        if regime not in (None, "trev", "oneshot"):
            raise InputError(f"regime: a T-RevSNN network runs each column once ('trev', or 'oneshot' at T=1); "
                             f"{regime!r} does not apply")
        if regime == "oneshot":
            if timesteps not in (None, 1):
                raise InputError(f"regime oneshot runs T=1, but T={timesteps} was asked for")
            timesteps = 1
        layer: TRevSNN = self.op.layer
        T = int(timesteps or spec.timesteps)
        if not 1 <= T <= layer.columns:
            raise InputError(f"timesteps: a T-RevSNN network has {layer.columns} columns (one per timestep); "
                             f"T={T} is not between 1 and {layer.columns}")
        return T

    def prepare(self, T: int) -> None:
        self.head_cols = self.op.head_plan(T, self.net.spec.readout.reduce)
        self.ops = self.op.flat_ops(T, self.head_cols)
        self.probe_where = f" in a T={T} run"

    def regime(self, T: int) -> str:
        return self.name if T > 1 else "oneshot"

    def steps(self, br, x, start: int, stop: int, T: int, first_index: int):
        return run_columns(self.op, br, x[start:stop], T, self.head_cols, br)

    def readout(self, outputs: np.ndarray) -> np.ndarray:
        if self.net.spec.readout.reduce == "mean":
            return outputs[self.head_cols].mean(axis=0)
        return outputs[len(outputs) - 1].copy()


def build_op(layer: TRevSNN, w, ctx) -> TRevOp:
    """The op of a whole T-RevSNN network: every column's levels and heads, alphas clamped once."""
    build, fold = ctx.build, ctx.fold
    stem = build(layer.stem, w, fold)
    cols = []
    for t, col in enumerate(layer.levels):
        lv = []
        for l, L in enumerate(col):
            alpha = clamp_alpha(w[L.state.key]).reshape(-1, 1, 1)
            lv.append(LevelOps(t, l, build(L.down, w, fold), build(L.up, w, fold), build(L.blocks, w, fold),
                               FusionAddOp(_fusion_layer(L.state), (), t, l) if L.up else None,
                               StateOp(L.state, (), alpha)))
        cols.append(lv)
    heads = {t: build(layers, w, fold) for t, layers in layer.head_layers}
    return TRevOp(layer, (), stem, cols, heads)


def run_level(run, t: int, lv: LevelOps, below: np.ndarray, e_below, up_prev, e_up, br=None):
    """Level l of column t: z = down(below) + up(c_{l+1}[t-1]) (no up at t = 0, at the top level or without
    fusion), o = blocks(z). ``run(ops, x, e)`` runs ops and returns (output, bound on its error): through the
    engine's batch run ``br`` (exact; the fusion add is traced) or the engine's untraced ``Replay`` carrying the bounds ``e_below`` and
    ``e_up`` on the inputs' errors (None: exact). Returns (o, its bound)."""
    d, ed = run(lv.down, below, e_below) if lv.down else (below, e_below)
    if t > 0 and lv.up:
        u, eu = run(lv.up, up_prev, e_up)
        z = np.add(u, d, dtype=np.float32)
        ez = add_bound(z, eu, ed)
        if br is not None:
            note_add(br.records[lv.fuse.name], t, u, d, z)
    else:
        z, ez = d, ed
    return run(lv.blocks, z, ez)


def run_columns(op: TRevOp, ex, img: np.ndarray, T: int, head_cols, br=None, states_out=None):
    """Run the stem once and columns 0..T-1 (``columns``); yields (column, head output) for the planned heads."""
    xs = ex.run_ops(op.stem, img, 0)
    if states_out is not None:
        states_out["x"] = xs

    def level(t, l, below, up_prev):
        exact = lambda ops, x, e: (ex.run_ops(ops, x, t), None)  # noqa: E731
        return run_level(exact, t, op.columns[t][l], below, None, up_prev, None, br)[0]

    def state(t, l, o, c_prev):
        st = op.columns[t][l].state
        c = st.update(o, c_prev)
        if br is not None:
            rec = br.records[st.name]
            rec.computed[t] = True
            rec.events_in[t] += K.count_nonzero(o) + (K.count_nonzero(c_prev) if c_prev is not None else 0)
            rec.events_out[t] += K.count_nonzero(c)
            rec.binary_in[t] = False
            rec.neuron_updates[t] += c.size
            if st.name in br.probes:
                br._probe(st.name, t, output=c)
        return c

    for t, cur in columns(xs, T, len(op.columns[0]), level, state):
        if states_out is not None:
            states_out.setdefault("states", []).append(cur)
        if t in head_cols:
            yield t, ex.run_ops(op.heads[t], cur[-1], t)


def the_op(net) -> TRevOp:
    for op in net.ops:
        if isinstance(op, TRevOp):
            return op
    raise SnnsimError(f"network '{net.name}' is not a T-RevSNN network (no 'trevsnn' layer)")
