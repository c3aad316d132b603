"""2-D pooling (YAML avgpool2d, maxpool2d, sumpool2d): window average, maximum, or sum (NIR SumPool2d)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels as K
from ..spec import Layer
from .conv import conv_out
from .op import Op
from .registry import Kind, register, shape_error


@dataclass(frozen=True)
class Pool2d(Layer):
    op: str = "avg"      # avg | max | sum (sum: NIR SumPool2d, the window sum)
    kernel_size: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    padding: tuple[int, int] = (0, 0)
    kind = "pool2d"


def parse(f, type_name, name, shape, ctx):
    op = type_name[:3]
    if len(shape) != 3:
        raise shape_error(f, f"{op}pool2d needs a [C, H, W] input, got shape {list(shape)}")
    k = f.pair("kernel_size")
    s = f.pair("stride", list(k))
    p = f.pair("padding", 0, minimum=0)
    h, w = conv_out(f, shape[1:], k, s, p)
    return Pool2d(name, shape, (shape[0], h, w), op, k, s, p)


def sumpool2d(x, kh, kw, sh, sw, ph, pw):
    """Window sums (NIR SumPool2d) with zero padding, accumulated in float32 in row-major window order."""
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho, wo = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    out = np.zeros(x.shape[:2] + (ho, wo), np.float32)
    for i in range(kh):
        for j in range(kw):
            out += x[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
    return out


@dataclass
class PoolOp(Op):
    def forward(self, x, form="dense"):
        p: Pool2d = self.layer
        fn = K.avgpool2d if p.op == "avg" else K.maxpool2d if p.op == "max" else sumpool2d
        return fn(x, p.kernel_size[0], p.kernel_size[1], p.stride[0], p.stride[1], p.padding[0], p.padding[1])


KIND = register(Kind("pool2d", ("avgpool2d", "maxpool2d", "sumpool2d"), Pool2d, parse,
                     lambda layer, w, ctx: PoolOp(layer)))
