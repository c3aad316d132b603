"""Residual block (YAML residual): out = body(x) + shortcut(x); an empty shortcut is the identity (SEW-/MS-ResNet
blocks). Children are named ``<block>.<child>``."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..spec import Layer, walk
from .op import Op
from .registry import Kind, parse_layers, register


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


def build(layer: Residual, w, ctx):
    return ResidualOp(layer, (), ctx.build(layer.body, w, ctx.fold), ctx.build(layer.shortcut, w, ctx.fold))


KIND = register(Kind("residual", ("residual",), Residual, parse, build))
