"""The training node of a RevSNN block: the forward (stored under BPTT like any layer) and the reversible backward,
which rebuilds the block's input from its output instead of storing it (docs/papers.md, RevSNN inverse)."""

from __future__ import annotations

import numpy as np

from ...train.forward import Act, Node, back_nodes, expand, reduce_t, run_nodes
from ..registry import build_nodes
from .block import Reversible, couple, split, uncouple


class ReversibleNode(Node):
    """RevSNN block (docs/papers.md, RevSNN block): x = [x1, x2] (channel halves), y1 = x1 + F(x2), y2 = x2 + G(y1).

    Under BPTT, F and G store their activations like any layer; the reversible method (``snnsim.train.reversible``)
    runs the same forward without storing them and goes back through the block with ``invert_backward``.
    """

    def __init__(self, layer, f: list, g: list):
        super().__init__(layer)
        self.f = f
        self.g = g

    def children(self):
        return [self.f, self.g]

    def run(self, nodes, x, ctx) -> np.ndarray:
        """F or G over all T steps of x [T*B, ...] (from a reset state)."""
        return expand(run_nodes(nodes, Act(x, False), ctx), ctx.T)

    def forward(self, a, ctx):
        x1, x2 = split(expand(a, ctx.T))
        y1, y2, _, _ = couple(x1, x2, lambda v: self.run(self.f, v, ctx), lambda v: self.run(self.g, v, ctx))
        if ctx.store:
            ctx.tape[self.name] = {"static": a.static}
        return Act(np.concatenate([y1, y2], axis=1), False)

    def back_g(self, g1, g2, ctx) -> np.ndarray:
        """The coupling's backward through G (its tape on ctx): dLoss/dy1 = g1 + G'(y1)^T g2."""
        return np.add(g1, back_nodes(self.g, g2, ctx, True), dtype=np.float32)

    def back_f(self, g2, gy1, ctx) -> np.ndarray:
        """The coupling's backward through F (its tape on ctx): dLoss/dx2 = g2 + F'(x2)^T gy1 (dLoss/dx1 = gy1)."""
        return np.add(g2, back_nodes(self.f, gy1, ctx, True), dtype=np.float32)

    def backward(self, g, ctx, need_gx):
        static = ctx.tape.pop(self.name)["static"]
        g1, g2 = split(g)
        gy1 = self.back_g(g1, g2, ctx)
        gx = np.concatenate([gy1, self.back_f(g2, gy1, ctx)], axis=1)
        return (reduce_t(gx, ctx.T) if static else gx) if need_gx else None

    def invert_backward(self, y: np.ndarray, g: np.ndarray, ctx, spikes: dict):
        """The backward from the block's output y and its gradient g, nothing stored: the inverse (``uncouple``)
        re-runs G, then F, from a reset state, each back-propagated right after its re-run so that one graph is
        held at a time. ``spikes``: the forward's spike count per neuron layer of the block. Returns (dLoss/dx, the
        rebuilt x, how many spikes the re-run counted differently)."""
        y1, y2 = split(y)
        g1, g2 = split(g)
        store, update = ctx.store, ctx.update_stats
        ctx.store, ctx.update_stats = True, False
        before = dict(ctx.spikes)
        grad = {}

        def g_then_back(v):
            go = self.run(self.g, v, ctx)
            grad["y1"] = self.back_g(g1, g2, ctx)
            return go

        def f_then_back(v):
            fo = self.run(self.f, v, ctx)
            grad["x2"] = self.back_f(g2, grad["y1"], ctx)
            return fo

        x1, x2 = uncouple(y1, y2, g_then_back, f_then_back)
        ctx.store, ctx.update_stats = store, update
        flips = sum(abs(ctx.spikes.get(k, 0) - before.get(k, 0) - n) for k, n in spikes.items())
        x = np.concatenate([x1, x2], axis=1)
        gx = np.concatenate([grad["y1"], grad["x2"]], axis=1)
        return gx, x, flips


def train_node(layer: Reversible, cfg_for) -> ReversibleNode:
    return ReversibleNode(layer, build_nodes(layer.f, cfg_for), build_nodes(layer.g, cfg_for))
