"""The record of a RevSNN block, its YAML parser, and the coupling y1 = x1 + F(x2), y2 = x2 + G(y1) with its
inverse (``couple``, ``uncouple``), written once for the inference op, the inverse and the reversible backward."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import SpecError
from ...spec import Layer, walk
from ..registry import parse_layers


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
