"""The inference op of a RevSNN block: one timestep of the coupling through the engine's batch run."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..op import Op, add_record, note_add, walk_ops
from .block import Reversible, couple, split


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


def build_op(layer: Reversible, w, ctx) -> ReversibleOp:
    return ReversibleOp(layer, (), ctx.build(layer.f, w, ctx.fold), ctx.build(layer.g, w, ctx.fold))


def reversible_ops(net) -> list[ReversibleOp]:
    return [op for op in walk_ops(net.ops) if isinstance(op, ReversibleOp)]
