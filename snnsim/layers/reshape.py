"""Layers that move values without arithmetic: flatten, dropout (the identity at inference) and nearest-neighbour
upsampling by an integer ``scale_factor`` (PyTorch nn.Upsample 'nearest')."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import kernels as K
from ..spec import Layer
from .op import Op
from .registry import Kind, register, shape_error


@dataclass(frozen=True)
class Flatten(Layer):
    kind = "flatten"


@dataclass(frozen=True)
class Dropout(Layer):
    p: float = 0.5
    kind = "dropout"


@dataclass(frozen=True)
class Upsample(Layer):
    scale_factor: int = 2
    kind = "upsample"


def parse_dropout(f, type_name, name, shape, ctx):
    p = f.float("p", 0.5)
    if not 0 <= p < 1:
        raise f.err("p", f"expected a probability in [0, 1), got {p}")
    return Dropout(name, shape, shape, p)


def parse_upsample(f, type_name, name, shape, ctx):
    if len(shape) != 3:
        raise shape_error(f, f"upsample needs a [C, H, W] input, got shape {list(shape)}")
    s = f.int("scale_factor", 2)
    f.str("mode", "nearest", choices=("nearest",))
    return Upsample(name, shape, (shape[0], shape[1] * s, shape[2] * s), s)


@dataclass
class ReshapeOp(Op):
    def forward(self, x, form="dense"):
        return np.ascontiguousarray(x.reshape((x.shape[0],) + self.layer.out_shape))


@dataclass
class IdentityOp(Op):
    def forward(self, x, form="dense"):
        return x


@dataclass
class UpsampleOp(Op):
    def forward(self, x, form="dense"):
        return K.upsample_nearest2d(np.ascontiguousarray(x), int(self.layer.scale_factor))


FLATTEN = register(Kind("flatten", ("flatten",), Flatten,
                        lambda f, t, name, shape, ctx: Flatten(name, shape, (math.prod(shape),)),
                        lambda layer, w, ctx: ReshapeOp(layer)))
DROPOUT = register(Kind("dropout", ("dropout",), Dropout, parse_dropout, lambda layer, w, ctx: IdentityOp(layer)))
UPSAMPLE = register(Kind("upsample", ("upsample",), Upsample, parse_upsample, lambda layer, w, ctx: UpsampleOp(layer)))
