"""T-RevSNN (Hu et al., ICML 2024): temporal-reversible networks, as the official PyTorch code computes them
(github.com/BICLab/T-RevSNN @ 3b75b37; docs/papers.md, T-RevSNN).

Structure (one ``type: trevsnn`` layer is the whole network; docs/regimes.md has the YAML and the key list):

  x      = stem(img)                 ScaledStdConv2d layers, computed ONCE and shared by all columns
  column t = 0..T-1 (timestep t), each run once; levels l = 0..L-1 in order:
    z_l  = down_l(c_{l-1}[t]) + up_l(c_{l+1}[t-1])      (down_0 = identity on x; no up at t = 0, at l = L-1,
                                                          or with ``fusion: false``)
    c_l[t] = B2_l(B1_l(z_l)) + alpha_l^(t) * c_l[t-1]     (c_l[-1] = 0)
    B1(z) = z + gamma * DW2(PW2(Q(PW1(DW1(Q(z))))))       B2(z) = z + DW2s(PW2s(Q(PW1'(DW1'(Q(z))))))
    down/up = Q -> conv (no bias) -> BN (-> nearest x2 for up)
    heads: after every (T/H)-th column, head k = GAP(c_{L-1}) -> ScaledStdConv 1x1 (k < H-1) or
           Q -> GAP -> ScaledStdConv -> ScaledStdConv (the last, spiking head); eval uses the last head.
  Q = Quant at eval: round(clip(u, 0, 1)), i.e. a spike where u > 0.5; a turned-off neuron with no state.
  alpha^(t) per channel and column, clamped as the official ``SubNet._clamp_abs``: sign(a) * max(|a|, 1e-3)
  (torch.sign(0) = 0, so an alpha of exactly 0 stays 0 and that column is not invertible).
  PW2s/DW2s (``blocks.1.pwconv2_reuse``/``dwconv2_reuse``) are one module per level shared by all columns.

The only state that crosses timesteps is the c_l (one tensor per level); everything else is stateless.
Inverse of a column (docs/papers.md, T-RevSNN inverse; ``invert_column``), l = L-1 .. 0, each step re-running L forward:
    c_l[t-1] = (c_l[t] - L_l(c_{l-1}[t], c_{l+1}[t-1])) / alpha_l
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import kernels as K
from .errors import InputError, SnnsimError, SpecError
from .layers.op import Op, note_add
from .layers.registry import attach_build
from .layers.trevsnn import TRevSNN, TRevState, clamp_alpha, columns, couple, uncouple
from .reversible import FLOOR, SAFETY, U, Risk, Sim, SpikeFlipError, _add_bound
from .spec import Layer
from .trace import LayerTrace

QUANT_THRESHOLD = 0.5


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
        return "trev" if T > 1 else "oneshot"

    def steps(self, br, x, start: int, stop: int, T: int, first_index: int):
        return _columns(self.op, br, x[start:stop], T, self.head_cols, br)

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


attach_build(TRevSNN, build_op)


def _run_level(op: TRevOp, ex, t: int, lv: LevelOps, below: np.ndarray, c_prev_up, br=None):
    """z = down(below) + up(c_{l+1}[t-1]); o = blocks(z). ``ex.run_ops(ops, x, t)`` runs ops."""
    d = ex.run_ops(lv.down, below, t) if lv.down else below
    if t > 0 and lv.up:
        u = ex.run_ops(lv.up, c_prev_up, t)
        z = np.add(u, d, dtype=np.float32)
        if br is not None:
            note_add(br.records[lv.fuse.name], t, u, d, z)
    else:
        z = d
    return ex.run_ops(lv.blocks, z, t)


def _columns(op: TRevOp, ex, img: np.ndarray, T: int, head_cols, br=None, states_out=None):
    """Run the stem once and columns 0..T-1 (``columns``); yields (column, head output) for the planned heads."""
    xs = ex.run_ops(op.stem, img, 0)
    if states_out is not None:
        states_out["x"] = xs

    def level(t, l, below, up_prev):
        return _run_level(op, ex, t, op.columns[t][l], below, up_prev, br)

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


# ----------------------------------------------------------------------------- forward and inverse (no trace)
class _Exact:
    """Adapter: runs ops with ``reversible.Sim`` (the engine's arithmetic, no trace, no bounds)."""

    def __init__(self, form, event_threshold):
        self.sim = Sim(form, event_threshold)

    def run_ops(self, ops, x, t):
        return self.sim.run_ops(ops, x, None, t)[0]


def the_op(net) -> TRevOp:
    for op in net.ops:
        if isinstance(op, TRevOp):
            return op
    raise SnnsimError(f"network '{net.name}' is not a T-RevSNN network (no 'trevsnn' layer)")


@dataclass
class TRevForward:
    x: np.ndarray                       # stem output [B, C0, H0, W0] (computed once, kept once)
    states: list                        # states[t][l] = c_l[t], or None where not kept
    logits: dict                        # column -> head output [B, classes]
    guard: dict                         # (t, l) -> exact c_l[t], kept because its reconstruction is at risk
    alphas: list                        # alphas[t][l], clamped, [C, 1, 1]


def forward(net, img: np.ndarray, *, timesteps: int | None = None, keep: str = "all", guard: bool = True,
            form: str = "auto", event_threshold: float | None = None) -> TRevForward:
    """Run a T-RevSNN batch (no trace) and return the stem output, the column states and every head's output.

    keep: 'all' keeps every c_l[t]; 'last' keeps only the last column's (the reversible-training setting: the rest
    is rebuilt with ``invert_column``). guard: also keep, exactly, each c_l[t-1] whose reconstruction from
    column t could flip a Quant spike (``guard_mask``) - the fall-back of the inverse; almost always empty.
    """
    op = the_op(net)
    T = int(timesteps or net.spec.timesteps)
    if not 1 <= T <= op.layer.columns:
        raise InputError(f"timesteps: T={T} is not between 1 and {op.layer.columns}")
    img = np.ascontiguousarray(img, np.float32)
    ex = _Exact(form, event_threshold)
    box: dict = {}
    logits = dict(_columns(op, ex, img, T, sorted(op.heads), None, box))
    states = box["states"]
    g = {}
    if guard:
        for t in range(1, T):
            for l, lv in enumerate(op.columns[t]):
                if guard_mask(states[t][l], states[t - 1][l], lv.state.alpha).any():
                    g[(t - 1, l)] = states[t - 1][l].copy()
    if keep == "last":
        states = [[None] * len(s) for s in states[:-1]] + [states[-1]]
    elif keep != "all":
        raise ValueError("keep: 'all' or 'last'")
    alphas = [[lv.state.alpha for lv in op.columns[t]] for t in range(T)]
    return TRevForward(box["x"], states, logits, g, alphas)


def _recon_bound(c: np.ndarray, ec, eo, alpha: np.ndarray, chat: np.ndarray) -> np.ndarray:
    """Bound on |c_hat - c_prev| for c_hat = fl(fl(c - o) / alpha), where the forward computed
    c = fl(o_true + fl(alpha * c_prev)), |c - c_true| <= ec and |o - o_true| <= eo (/ |alpha|: docs/papers.md)."""
    ec = 0.0 if ec is None else ec
    eo = 0.0 if eo is None else eo
    a = np.abs(alpha)
    with np.errstate(divide="ignore"):        # alpha = 0: no inverse, an infinite bound (the guard keeps c)
        e = (ec + eo + U * (np.abs(c) + ec)) * (1 + 2 * U) / a + 4 * U * np.abs(chat)
    return (np.asarray(e, np.float32) * np.float32(SAFETY) + np.float32(FLOOR)).astype(np.float32)


def quant_risk(c: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Elements whose Quant spike (c > 0.5) may differ from the forward's, given |c - c_forward| <= e."""
    eh = e * np.float32(1.02) + np.float32(9 * U) * (np.abs(c) + 1) + np.float32(2 * FLOOR)
    return np.abs(c - np.float32(QUANT_THRESHOLD)) <= eh


def guard_mask(c_t: np.ndarray, c_prev: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Forward-side test (exact values known): elements of c_prev whose reconstruction from column t could
    be flagged by ``invert_column`` (margin 3x the reconstruction bound, so the inverse's own test, done on
    the reconstructed value, never flags an element this one let through)."""
    b = _recon_bound(c_t, None, None, alpha, c_prev)
    return quant_risk(c_prev, 3 * b)


@dataclass
class ColumnInverse:
    states: list          # c_hat_l[t-1], l = 0..L-1
    bounds: list          # elementwise bounds on |c_hat - c_forward| (zeros after a fall-back)
    at_risk: list         # per level: Quant spikes that might flip (0: the bound is rigorous)
    fallback: list        # per level: the cached state was used
    risks: list = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return any(self.at_risk)


def invert_column(net, t: int, x: np.ndarray, c_t: list, *, bounds: list | None = None, cache: dict | None = None,
                  on_risk: str = "raise", form: str = "auto", event_threshold: float | None = None) -> ColumnInverse:
    """Exact inverse of column t (docs/papers.md): from x (the stem output) and all c_l[t], rebuild c_l[t-1]
    for l = L-1 .. 0 by running L forward:  c_l[t-1] = (c_l[t] - L_l(c_{l-1}[t], c_{l+1}[t-1])) / alpha_l.

    bounds: per-level elementwise bounds on the error of c_t (when c_t is itself a reconstruction, i.e. when
    inverses are chained across columns); None for exact states. cache: {level: exact c_l[t-1]} to fall back on
    (``TRevForward.guard``). A level whose reconstruction might flip a Quant spike downstream is flagged; it
    falls back to ``cache`` if given, else raises ``SpikeFlipError`` (on_risk='keep' returns it flagged).
    form/event_threshold must match the forward's so that L is recomputed with the same kernels.
    """
    if on_risk not in ("raise", "keep"):
        raise ValueError("on_risk: 'raise' or 'keep'")
    op = the_op(net)
    if not 1 <= t < len(op.columns):
        raise InputError(f"t: column {t} has no previous column to rebuild (columns 1..{len(op.columns) - 1})")
    levels = op.columns[t]
    L = len(levels)
    for lv in levels:
        if not np.all(lv.state.alpha):
            raise SnnsimError(f"column {t}: {lv.state.layer.key} has channels with alpha = 0 (the official clamp "
                              "keeps an exact 0), so c[t-1] cannot be rebuilt from column t")
    cache = cache or {}
    sim = Sim(form, event_threshold)
    out = [None] * L
    eb = [None] * L
    risk = [0] * L
    fell = [False] * L
    allrisks = []
    for l in range(L - 1, -1, -1):
        lv = levels[l]
        below = x if l == 0 else np.asarray(c_t[l - 1], np.float32)
        e_below = None if (l == 0 or bounds is None) else bounds[l - 1]
        n0 = len(sim.risks)
        d, ed = sim.run_ops(lv.down, below, e_below, t) if lv.down else (below, e_below)
        if lv.up:
            u, eu = sim.run_ops(lv.up, out[l + 1], eb[l + 1] if eb[l + 1] is not None and eb[l + 1].any() else None, t)
            z = np.add(u, d, dtype=np.float32)
            ez = _add_bound(z, eu, ed)
        else:
            z, ez = d, ed
        o, eo = sim.run_ops(lv.blocks, z, ez, t)
        c = np.asarray(c_t[l], np.float32)
        ec = None if bounds is None else bounds[l]
        chat = uncouple(c, o, lv.state.alpha)
        b = _recon_bound(c, ec, eo, lv.state.alpha, chat)
        n = int(quant_risk(chat, b).sum()) + sum(r.count for r in sim.risks[n0:])
        if n:
            allrisks.append(Risk(lv.state.name, t - 1, n))
            risk[l] = n
            if l in cache:
                chat = np.asarray(cache[l], np.float32).copy()
                b = np.zeros_like(chat)
                fell[l] = True
            elif on_risk == "raise":
                raise SpikeFlipError(f"inverse of column {t}: {n} elements of the rebuilt c{l}[t-1] lie within the "
                                     "reconstruction error of the Quant threshold 0.5; pass the exact state "
                                     "(cache={level: c}, kept by forward(guard=True)) or on_risk='keep'")
        out[l], eb[l] = chat, b
    return ColumnInverse(out, eb, risk, fell, allrisks)


def level_forward(net, t: int, l: int, below: np.ndarray, up_prev: np.ndarray | None, *, form: str = "auto",
                  event_threshold: float | None = None) -> np.ndarray:
    """L_l^(t)(below, up_prev) = B2(B1(down(below) + up(up_prev))) with the engine's arithmetic (for training)."""
    op = the_op(net)
    return _run_level(op, _Exact(form, event_threshold), t, op.columns[t][l], np.asarray(below, np.float32),
                      up_prev, None)
