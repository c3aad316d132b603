"""Training T-RevSNN networks (docs/papers.md, T-RevSNN): BPTT over the columns and the reversible backward, the
two methods the kind provides for a network made of it (``trainer``).

Graph (the package's docstring): the stem runs once on the image; column t = 0..T-1 runs levels l = 0..L-1:
    z_l = down_l(c_{l-1}[t]) + up_l(c_{l+1}[t-1]),   o_l = B2(B1(z_l)),   c_l[t] = o_l + a_l^(t) * c_l[t-1]
with a = clamp(alpha) = sign(alpha) * max(|alpha|, 1e-3); heads on c_{L-1}[t] after their columns. Every node
inside a column is stateless (Quant neurons, convs, batch norm per column), so a column is an ordinary
feed-forward graph on [B, ...] (the nodes run with T = 1); time is carried only by the c_l.

Coupling backward (both methods), for delta_l = dLoss/dc_l[t]:
    dLoss/dc_l[t-1] += a * delta_l,    dLoss/dalpha_l^(t) = sum_{B,H,W} delta_l * c_l[t-1] * [|alpha| >= 1e-3]
(the clamp's gradient is 0 where it holds alpha at +-1e-3; column 0 has no c[t-1], so its alphas get 0.)

``TRevBPTT`` stores every column's activations. ``TRevReversible`` (docs/papers.md) stores nothing inside the
columns; the backward walks the columns from the last, and within a column the levels from L-1 to 0,
re-running one level at a time with storage and back-propagating it at once, so at any moment it holds one
level's graph. The c_l[t-1] it needs (input of the up path of level l-1 and the alpha gradient) are either
cached in the forward (``states='cache'``, default: T x L state tensors, exact, no 1/alpha amplification) or
rebuilt by the inverse c_l[t-1] = (c_l[t] - o_l) / a from the recomputed o_l (``states='invert'``: only the
last column's states are kept; float32 round-off is amplified by 1/|a| per column, docs/papers.md). The stem's
tape (computed once) is stored as under BPTT.
"""

from __future__ import annotations

import numpy as np

from ...errors import InputError
from ...spec import NetworkSpec
from ...train.forward import (Act, Ctx, Node, NeuronTrainCfg, back_nodes, check_trainable, run_nodes, shared_copies,
                              sync_shared, trainable_keys)
from ...train.memory import Ledger
from ...train.step import GradientStep, StepOut
from ..registry import build_nodes
from .records import ALPHA_MIN, clamp_alpha, columns, couple, trev_layer, uncouple


class StateNode(Node):
    """The turned-on state c = o + clamp(alpha) * c_prev of one level in one column (its parameter only)."""

    trainable = ("alpha",)

    def key(self, p):
        return self.layer.key if p == "alpha" else f"{self.name}.{p}"

    def alpha(self, ctx):
        a = ctx.params[self.layer.key]
        return clamp_alpha(a).reshape(1, -1, 1, 1)

    def couple(self, o, c_prev, ctx):
        return o if c_prev is None else couple(o, c_prev, self.alpha(ctx))

    def back(self, delta, c_prev, ctx):
        """Adds the alpha gradient; returns the gradient sent to c_prev."""
        raw = ctx.params[self.layer.key]
        live = (np.abs(raw) >= np.float32(ALPHA_MIN)).astype(np.float32)
        ga = (delta * c_prev).sum(axis=(0, 2, 3), dtype=np.float64).astype(np.float32).reshape(raw.shape)
        ctx.add_grad(self.layer.key, ga * live)
        return (delta * self.alpha(ctx)).astype(np.float32)


class TRevBPTT(GradientStep):
    name = "bptt"

    def __init__(self, spec: NetworkSpec, neuron_cfg=None):
        check_trainable(spec)
        self.spec = spec
        layer = trev_layer(spec)
        if layer is None:
            raise InputError(f"network '{spec.name}' has no 'trevsnn' layer")
        self.layer = layer
        default = neuron_cfg if isinstance(neuron_cfg, NeuronTrainCfg) else NeuronTrainCfg()
        cfg_for = lambda name: default  # noqa: E731
        self.stem = build_nodes(layer.stem, cfg_for)
        self.cols = []
        for col in layer.levels:
            self.cols.append([(build_nodes(lv.down, cfg_for), build_nodes(lv.up, cfg_for),
                               build_nodes(lv.blocks, cfg_for), StateNode(lv.state)) for lv in col])
        self.heads = {t: build_nodes(h, cfg_for) for t, h in layer.head_layers}
        self.nodes = list(self.stem)
        for t, col in enumerate(self.cols):
            for down, up, blocks, st in col:
                self.nodes += down + up + blocks + [st]
            self.nodes += self.heads.get(t, [])
        self.trainable = trainable_keys(self.nodes)
        self.copies = shared_copies(self.nodes)
        self.first = 0

    def head_cols(self, T: int) -> list[int]:
        if not 1 <= T <= self.layer.columns:
            raise InputError(f"timesteps: a T-RevSNN network has {self.layer.columns} columns; T={T} is not "
                             f"between 1 and {self.layer.columns}")
        if (T - 1) not in self.heads:
            raise InputError(f"timesteps: T={T} ends at column {T - 1}, which has no head (heads after columns "
                             f"{sorted(self.heads)})")
        return [t for t in sorted(self.heads) if t < T]

    # ------------------------------------------------------------------ one level
    def _level(self, t, l, below, up_in, ctx):
        down, up, blocks, _ = self.cols[t][l]
        d = run_nodes(down, Act(below, False), ctx).x if down else below
        if t > 0 and up:
            z = np.add(run_nodes(up, Act(up_in, False), ctx).x, d, dtype=np.float32)
        else:
            z = d
        return run_nodes(blocks, Act(z, False), ctx).x

    def _route_back(self, t, l, st, delta, c_prev, g, gprev, gx, ctx):
        """Back through level l of column t given delta = dLoss/dc_l[t]: the alpha coupling sends its part to
        c_l[t-1] (gprev[l]), the level's top-down input to c_{l+1}[t-1] (gprev[l+1]) and its bottom-up input to
        c_{l-1}[t] (g[l-1]) or, at level 0, to the stem output. Returns the stem gradient so far."""
        ctx.ledger.live(delta)
        if t > 0:
            gp = st.back(delta, c_prev, ctx)
            gprev[l] = gp if gprev[l] is None else gprev[l] + gp
        gd, gu = self._level_back(t, l, delta, ctx)
        if gu is not None:
            gprev[l + 1] = gu if gprev[l + 1] is None else gprev[l + 1] + gu
        if l > 0:
            g[l - 1] = gd if g[l - 1] is None else g[l - 1] + gd
            return gx
        return gd if gx is None else gx + gd

    def _level_back(self, t, l, gz_from_o, ctx):
        """Back through blocks, up, down of level l (its tape must be on ctx): (g below, g up input)."""
        down, up, blocks, _ = self.cols[t][l]
        gz = back_nodes(blocks, gz_from_o, ctx, True)
        gu = back_nodes(up, gz, ctx, True) if (t > 0 and up) else None
        gd = back_nodes(down, gz, ctx, True) if down else gz
        return gd, gu

    # ------------------------------------------------------------------ forward
    def run_stem(self, img, ctx) -> np.ndarray:
        return run_nodes(self.stem, Act(np.ascontiguousarray(img, np.float32), False), ctx).x

    def forward_columns(self, xs, T, ctx, keep=lambda t: True, track_live=False):
        """Columns 0..T-1 from the stem output ``xs`` (``columns``, the schedule inference runs too), for BPTT and
        the reversible forward. ``keep(t)``: column t's states are returned and held for the backward (else None).
        Returns (states[t][l], head outputs [H, B, classes])."""
        def state(t, l, o, c_prev):
            c = self.cols[t][l][3].couple(o, c_prev, ctx)
            if track_live:
                ctx.ledger.live(c)
            return c

        L = len(self.cols[0])
        states, outs = [], []
        for t, cur in columns(xs, T, L, lambda t, l, below, up: self._level(t, l, below, up, ctx), state):
            if t in self.heads:
                outs.append(run_nodes(self.heads[t], Act(cur[-1], False), ctx).x)
            kept = keep(t)
            states.append(cur if kept else [None] * L)
            if kept:
                for l, c in enumerate(cur):
                    ctx.ledger.hold(self.cols[t][l][3].name, "c", c)
        return states, np.stack(outs)

    def _forward_for_grad(self, params, x, T, idx, rng, update_stats, ledger, grads):
        hc = self.head_cols(T)
        ctx = Ctx(1, len(x), params, grads, ledger, rng=rng, update_stats=update_stats, store=True)
        xs = self.run_stem(x, ctx)
        states, out = self.forward_columns(xs, T, ctx)
        ctx.tape["__trev__"] = {"T": T, "states": states, "heads": hc, "xs": xs}
        return out[:len(hc)], ctx

    def forward(self, params, x, T, *, idx=None, store=True, update_stats=True, rng=None, ledger=None, grads=None,
                probes=()):
        ctx = Ctx(1, len(x), params, grads, ledger or Ledger(), rng=rng, update_stats=update_stats, store=store)
        _, out = self.forward_columns(self.run_stem(x, ctx), T, ctx, keep=lambda t: False)
        return out, ctx

    # ------------------------------------------------------------------ backward
    def backward(self, g_out, ctx):
        """The columns from the last, and in each the levels from L-1 to 0 (both methods): the heads' gradient
        joins c_{L-1}[t]; each level gets its tape and c_l[t-1] from ``_level_tape`` and is back-propagated."""
        info = ctx.tape.pop("__trev__")
        T, hc = info["T"], info["heads"]
        L = len(self.cols[0])
        g_out = np.asarray(g_out, np.float32)
        update = ctx.update_stats
        ctx.update_stats = False           # recomputed batch norm: batch statistics, no second running update
        gnext = [None] * L                 # dLoss/dc_l[t] coming from column t+1
        gx = None
        cur = info["states"][T - 1]
        for t in range(T - 1, -1, -1):
            g = list(gnext)
            gprev = [None] * L
            prev = [None] * L              # c_l[t-1]
            if t in hc:
                self._head_tape(t, cur[L - 1], ctx)
                gh = back_nodes(self.heads[t], np.ascontiguousarray(g_out[hc.index(t)]), ctx, True)
                g[L - 1] = gh if g[L - 1] is None else g[L - 1] + gh
            for l in range(L - 1, -1, -1):
                prev[l] = self._level_tape(t, l, cur, prev, info, ctx)
                delta = g[l] if g[l] is not None else np.zeros_like(cur[l])
                gx = self._route_back(t, l, self.cols[t][l][3], delta, prev[l], g, gprev, gx, ctx)
            for l in range(L):
                ctx.ledger.release(self.cols[t][l][3].name)
            cur = prev
            self._rebuilt(t, cur, ctx)
            gnext = gprev
        ctx.update_stats = update
        ctx.ledger.release("stem", "output")
        back_nodes(self.stem, gx, ctx, False)
        ctx.ledger.live()
        return ctx.grads

    def _head_tape(self, t, top, ctx):
        """BPTT: the heads' tape is stored by the forward."""

    def _level_tape(self, t, l, cur, prev, info, ctx):
        """BPTT: the level's tape is stored by the forward; c_l[t-1] is kept."""
        return info["states"][t - 1][l] if t > 0 else None

    def _rebuilt(self, t, prev, ctx):
        """Called with column t-1's states once column t is back-propagated."""

    # ------------------------------------------------------------------ step
    def loss_and_grads(self, params, x, y, T, loss_fn, *, idx=None, rng=None, update_stats=True) -> StepOut:
        sync_shared(params, self.copies)
        return super().loss_and_grads(params, x, y, T, loss_fn, idx=idx, rng=rng, update_stats=update_stats)

    def step(self, params, x, y, T, loss_fn, opt, lr, *, idx=None, rng=None) -> StepOut:
        res = super().step(params, x, y, T, loss_fn, opt, lr, idx=idx, rng=rng)
        sync_shared(params, self.copies)
        return res


class TRevReversible(TRevBPTT):
    name = "reversible"

    def __init__(self, spec, neuron_cfg=None, states: str = "cache"):
        super().__init__(spec, neuron_cfg)
        if states not in ("cache", "invert"):
            raise ValueError("states: 'cache' or 'invert'")
        self.states = states

    def _forward_for_grad(self, params, x, T, idx, rng, update_stats, ledger, grads):
        hc = self.head_cols(T)
        ctx = Ctx(1, len(x), params, grads, ledger, rng=rng, update_stats=update_stats, store=True)
        xs = self.run_stem(x, ctx)                                # the stem's graph is stored
        ctx.ledger.hold("stem", "output", xs)
        ctx.store = False
        states, out = self.forward_columns(xs, T, ctx, keep=lambda t: self.states == "cache" or t == T - 1,
                                           track_live=True)
        ctx.store = True
        ctx.tape["__trev__"] = {"T": T, "states": states, "heads": hc, "xs": xs}
        return out[:len(hc)], ctx

    def _head_tape(self, t, top, ctx):
        run_nodes(self.heads[t], Act(top, False), ctx)

    def _level_tape(self, t, l, cur, prev, info, ctx):
        """Re-runs level l of column t storing its graph, and gives c_l[t-1]: cached, or rebuilt by the inverse."""
        st = self.cols[t][l][3]
        below = info["xs"] if l == 0 else cur[l - 1]
        o = self._level(t, l, below, prev[l + 1] if l + 1 < len(prev) else None, ctx)
        if t == 0:
            return None
        if self.states == "cache":
            return info["states"][t - 1][l]
        c = uncouple(cur[l], o, st.alpha(ctx))
        ctx.ledger.hold(st.name, "rebuilt", c)
        return c

    def _rebuilt(self, t, prev, ctx):
        if t > 0 and self.states == "invert":
            for l in range(len(prev)):
                ctx.ledger.hold(self.cols[t - 1][l][3].name, "c", prev[l])


def trainer(spec, method: str, neuron_cfg):
    """The kind's training methods (``Kind.trainer``): BPTT over the columns and the reversible backward."""
    make = {cls.name: cls for cls in (TRevBPTT, TRevReversible)}.get(method)
    return None if make is None else make(spec, neuron_cfg)
