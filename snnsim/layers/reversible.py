"""RevSNN reversible block (YAML reversible) over channel halves: y1 = x1 + F(x2), y2 = x2 + G(y1), with ``f``
and ``g`` layer lists whose neurons keep their state across timesteps. Children are named
``<name>.f_block.<child>`` and ``<name>.g_block.<child>`` (revtorch's attribute names; ``f_prefix``/``g_prefix``
change them). The coupling, its inverse and its backward are written here once (``couple``, ``uncouple``,
``ReversibleNode.back_g``/``back_f``) and used by the inference op, the reversibility checks and reversible
training; the op and the bounded re-simulation are ``snnsim.reversible``."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError
from ..spec import Layer, walk
from ..train.forward import Act, Node, back_nodes, expand, reduce_t, run_nodes
from .registry import Kind, build_nodes, parse_layers, register
import numpy as np


@dataclass(frozen=True)
class Reversible(Layer):
    f: tuple[Layer, ...] = ()
    g: tuple[Layer, ...] = ()
    kind = "reversible"

    def sublayers(self):
        return self.f + self.g

    @property
    def stateful(self) -> bool:
        return any(layer.stateful for layer in walk(self.f + self.g))

    state_words = 0        # its neurons (listed as sublayers) hold the state, not the block


def parse(f, type_name, name, shape, ctx):
    if len(shape) < 1 or shape[0] % 2:
        raise SpecError(f.path, f"a reversible block splits its input into two channel halves; got shape "
                                f"{list(shape)} (the channel count must be even)", f.source)
    half = (shape[0] // 2,) + tuple(shape[1:])
    fp = f.str("f_prefix", "f_block")
    gp = f.str("g_prefix", "g_block")
    fl, f_out = parse_layers(f.get("f", required=True), f"{f.path}.f", half, f"{name}.{fp}.", ctx)
    gl, g_out = parse_layers(f.get("g", required=True), f"{f.path}.g", half, f"{name}.{gp}.", ctx)
    for what, out in (("f", f_out), ("g", g_out)):
        if tuple(out) != half:
            raise f.err(what, f"gives shape {list(out)} but must keep its input shape {list(half)} "
                              "(y1 = x1 + F(x2), y2 = x2 + G(y1))")
    return Reversible(name, shape, shape, fl, gl)


# ----------------------------------------------------------------------------- the coupling
def split(x: np.ndarray):
    """The channel halves [x1, x2] of x [B, C, ...] (contiguous copies)."""
    c = x.shape[1] // 2
    return np.ascontiguousarray(x[:, :c]), np.ascontiguousarray(x[:, c:])


def couple(x1: np.ndarray, x2: np.ndarray, f, g):
    """The block: y1 = x1 + F(x2), y2 = x2 + G(y1) in float32; ``f``, ``g`` run F and G. Returns (y1, y2, F(x2),
    G(y1))."""
    fo = f(x2)
    y1 = np.add(x1, fo, dtype=np.float32)
    go = g(y1)
    y2 = np.add(x2, go, dtype=np.float32)
    return y1, y2, fo, go


def uncouple(y1: np.ndarray, y2: np.ndarray, g, f):
    """The inverse: x2 = y2 - G(y1), then x1 = y1 - F(x2); ``g``, ``f`` re-run G and F forward from a reset state
    (spikes are never inverted). Returns (x1, x2)."""
    x2 = np.subtract(y2, g(y1), dtype=np.float32)
    x1 = np.subtract(y1, f(x2), dtype=np.float32)
    return x1, x2


# ----------------------------------------------------------------------------- training
class ReversibleNode(Node):
    """RevSNN block (docs/papers.md, RevSNN block): x = [x1, x2] (channel halves), y1 = x1 + F(x2), y2 = x2 + G(y1).

    Under BPTT, F and G store their activations like any layer; ``snnsim.train.reversible`` runs the same
    forward without storing them and rebuilds the inputs from the outputs in the backward (docs/papers.md).
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


def train_node(layer: Reversible, cfg_for) -> ReversibleNode:
    return ReversibleNode(layer, build_nodes(layer.f, cfg_for), build_nodes(layer.g, cfg_for))


KIND = register(Kind("reversible", ("reversible",), Reversible, parse, train_node=train_node))    # build: snnsim.reversible
