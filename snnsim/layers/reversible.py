"""RevSNN reversible block (YAML reversible) over channel halves: y1 = x1 + F(x2), y2 = x2 + G(y1), with ``f``
and ``g`` layer lists whose neurons keep their state across timesteps. Children are named
``<name>.f_block.<child>`` and ``<name>.g_block.<child>`` (revtorch's attribute names; ``f_prefix``/``g_prefix``
change them). Its op, the inverse and the bounded re-simulation are ``snnsim.reversible``."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError
from ..spec import Layer, walk
from .registry import Kind, parse_layers, register


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


KIND = register(Kind("reversible", ("reversible",), Reversible, parse))    # build: snnsim.reversible
