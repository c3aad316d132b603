"""Residual block (YAML residual): out = body(x) + shortcut(x); an empty shortcut is the identity (SEW-/MS-ResNet
blocks). Children are named ``<block>.<child>``."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..spec import Layer, walk
from ..train import grads as G
from ..train.forward import Act, Node, back_nodes, expand, reduce_t, run_nodes
from .op import Op, add_bound, add_record, note_add, note_add_span
from .registry import Kind, build_nodes, parse_layers, register
import numpy as np



@dataclass(frozen=True)
class Residual(Layer):
    """out = body(x) + shortcut(x); an empty shortcut is the identity (SEW-/MS-ResNet blocks)."""

    body: tuple[Layer, ...] = ()
    shortcut: tuple[Layer, ...] = ()
    kind = "residual"

    def sublayers(self):
        return self.body + self.shortcut

    @property
    def stateful(self) -> bool:
        return any(layer.stateful for layer in walk(self.body + self.shortcut))

    @property
    def state_words(self) -> int:
        return 0          # its neurons (listed as sublayers) hold the state, not the block


def parse(f, type_name, name, shape, ctx):
    body, out = parse_layers(f.get("body", required=True), f"{f.path}.body", shape, name + ".", ctx)
    shortcut = f.get("shortcut")                  # absent or null: the identity
    short, s_out = parse_layers([] if shortcut is None else shortcut, f"{f.path}.shortcut", shape, name + ".", ctx)
    if out != s_out:
        raise f.err("shortcut", f"gives shape {list(s_out)} but the body gives {list(out)}; "
                                "they are added, so they must match")
    return Residual(name, shape, out, body, short)


@dataclass
class ResidualOp(Op):
    composite = True
    body: list = field(default_factory=list)
    shortcut: list = field(default_factory=list)

    def children(self):
        return [self.body, self.shortcut]

    def trace_records(self, T: int):
        return [add_record(f"{self.name}.add", self.layer.out_shape, T)]

    def run_step(self, br, x, t: int):
        """One timestep through the engine's batch run ``br``: body and shortcut, then their sum."""
        return self._sum(br.run_ops, note_add, br, x, t)

    def replay(self, ex, x, e, t: int):
        """The same outside the engine (the engine's untraced ``Replay``), carrying the error bound ``e``."""
        a, ea = ex.bounded(self.body, x, e, t)
        b, eb = ex.bounded(self.shortcut, x, e, t) if self.shortcut else (x, e)
        y = np.add(a, b, dtype=np.float32)
        return y, add_bound(y, ea, eb)

    @property
    def spans(self) -> bool:
        return all(op.spans for op in self.body + self.shortcut)

    def run_span(self, br, x, t0: int):
        """Timesteps t0.. of x [steps, B, ...] through the engine's batch run ``br``, each child over all of them."""
        return self._sum(br.run_span, note_add_span, br, x, t0)

    def _sum(self, run, note, br, x, t):
        a = run(self.body, x, t)
        b = run(self.shortcut, x, t) if self.shortcut else x
        y = np.add(a, b, dtype=np.float32)
        note(br.records[f"{self.name}.add"], t, a, b, y)
        return y


def build(layer: Residual, w, ctx):
    return ResidualOp(layer, (), ctx.build(layer.body, w, ctx.fold), ctx.build(layer.shortcut, w, ctx.fold))


# ----------------------------------------------------------------------------- training
class ResidualNode(Node):
    online_form = "branches"

    def __init__(self, layer: Residual, body: list, shortcut: list):
        super().__init__(layer)
        self.body = body
        self.shortcut = shortcut

    def children(self):
        return [self.body, self.shortcut]

    def forward(self, a, ctx):
        yb = run_nodes(self.body, a, ctx)
        ys = run_nodes(self.shortcut, a, ctx) if self.shortcut else a
        if yb.static and ys.static:
            y = Act(G.add(yb.x, ys.x), True)
        else:
            y = Act(G.add(expand(yb, ctx.T), expand(ys, ctx.T)), False)
        if ctx.store:
            ctx.tape[self.name] = {"static": (a.static, yb.static, ys.static, y.static)}
        return y

    def backward(self, g, ctx, need_gx):
        s_in, s_b, s_s, s_y = ctx.tape.pop(self.name)["static"]
        gb = reduce_t(g, ctx.T) if s_b and not s_y else g
        gs = reduce_t(g, ctx.T) if s_s and not s_y else g
        gxb = back_nodes(self.body, gb, ctx, True)
        gxs = back_nodes(self.shortcut, gs, ctx, True) if self.shortcut else gs
        if not need_gx:
            return None
        # the sum goes into the body's input gradient, a new array that a layer's backward wrote, unless the body
        # passed on (a view of) the incoming gradient
        own = (gxb.dtype == np.float32 and gxb.flags.c_contiguous
               and not any(np.may_share_memory(gxb, o) for o in (g, gb, gxs)))
        return G.add(gxb, gxs, out=gxb if own else None)


def train_node(layer: Residual, cfg_for) -> ResidualNode:
    return ResidualNode(layer, build_nodes(layer.body, cfg_for), build_nodes(layer.shortcut, cfg_for))


# ----------------------------------------------------------------------------- NIR (snnsim.nir.exporter)
def to_nir(op, ex, srcs: list[str]) -> list[str]:
    import nir

    body = ex.emit(op.body, srcs)
    short = ex.emit(op.shortcut, srcs) if op.shortcut else srcs
    both = body + short
    if len(set(both)) != len(both):
        raise ex.refuse(op.name, "residual", "adds a value to itself (both paths are the identity); "
                        "NIR edges cannot express x + x")
    if ex.reader == "snntorch":      # nirtorch adds the inputs of a node: the next node is the sum
        return both
    # The explicit join node: NIR sums all inputs of a node; a Scale of ones makes that sum a node of its
    # own, so a later block can split from it (snnsim's import turns '<block>.add' back into the block).
    return ex.add(f"{op.name}.add", nir.Scale(scale=np.ones(op.layer.out_shape, np.float32)), both)


# ----------------------------------------------------------------------------- importers (snnsim.nir, torch_import)
def import_block(body: list, shortcut: list, **extra) -> dict:
    """The YAML of a split that meets again at a sum, out = body(x) + shortcut(x), as an importer found it
    (the layers of each path, no shortcut key when it is the identity; ``extra``: the importer's own keys)."""
    d = {"type": "residual", "body": body}
    if shortcut:
        d["shortcut"] = shortcut
    return {**d, **extra}


KIND = register(Kind("residual", ("residual",), Residual, parse, build, train_node=train_node, nir_export=to_nir))
