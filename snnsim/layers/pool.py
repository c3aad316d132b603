"""2-D pooling (YAML avgpool2d, maxpool2d, sumpool2d): window average, maximum, or sum (NIR SumPool2d)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels as K
from ..spec import Layer
from ..train import grads as G
from ..train.forward import Act, Node
from .conv import conv_out
from .op import Op, gamma
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
    elementwise = "per_event"

    def forward(self, x, form="dense"):
        p: Pool2d = self.layer
        fn = K.avgpool2d if p.op == "avg" else K.maxpool2d if p.op == "max" else sumpool2d
        return fn(x, p.kernel_size[0], p.kernel_size[1], p.stride[0], p.stride[1], p.padding[0], p.padding[1])

    @property
    def kind_2x2(self) -> int | None:
        """0 (average) or 1 (maximum) for a 2x2, stride-2, unpadded window (a neuron layer before it can pool its
        spikes as it makes them, ``snnsim.neurons.steps_pool``); None otherwise."""
        p: Pool2d = self.layer
        if p.op in ("avg", "max") and (*p.kernel_size, *p.stride, *p.padding) == (2, 2, 2, 2, 0, 0):
            return 0 if p.op == "avg" else 1
        return None

    def error_bound(self, x, e, y):
        p = self.layer
        kh, kw, sh, sw, ph, pw = (*p.kernel_size, *p.stride, *p.padding)
        if p.op == "max":
            return K.maxpool2d(np.ascontiguousarray(e, np.float32), kh, kw, sh, sw, ph, pw)
        fn = K.avgpool2d if p.op == "avg" else sumpool2d
        g = gamma(kh * kw + 1)
        pe = fn(np.ascontiguousarray(e, np.float32), kh, kw, sh, sw, ph, pw)
        return pe + 2 * g * (fn(np.ascontiguousarray(np.abs(x)), kh, kw, sh, sw, ph, pw) + pe)


# ----------------------------------------------------------------------------- training
class PoolNode(Node):
    online_form = "time_invariant"

    def saf_refusal(self):
        if self.layer.op == "max":
            return (f"layer '{self.name}' is max pooling, which does not commute with spike accumulation; use "
                    "average pooling (or ottt / bptt)")
        return None

    def forward(self, a, ctx):
        p: Pool2d = self.layer
        x = np.ascontiguousarray(a.x)
        args = (p.kernel_size[0], p.kernel_size[1], p.stride[0], p.stride[1], p.padding[0], p.padding[1])
        if p.op == "max" and ctx.store and args == (2, 2, 2, 2, 0, 0) and x.dtype == np.float32:
            y, idx = G.maxpool_2x2_with_argmax(x)
            ctx.save(self.name, idx=idx)
        elif p.op == "max":
            y = K.maxpool2d(x, *args)
            if ctx.store:
                ctx.save(self.name, idx=G.maxpool_argmax(x, *args, y.shape[2], y.shape[3]))
        else:
            y = K.avgpool2d(x, *args) if p.op == "avg" else sumpool2d(x, *args)
            if ctx.store:
                ctx.save(self.name)
        return Act(y, a.static)

    def backward(self, g, ctx, need_gx):
        p: Pool2d = self.layer
        s = ctx.take(self.name)
        if not need_gx:
            return None
        g = np.ascontiguousarray(g)
        H, W = p.in_shape[1], p.in_shape[2]
        args = (p.kernel_size[0], p.kernel_size[1], p.stride[0], p.stride[1], p.padding[0], p.padding[1], H, W)
        if p.op == "max":
            return G.maxpool_backward(g, s["idx"], *args)
        scale = np.float32(1.0) / np.float32(p.kernel_size[0] * p.kernel_size[1]) if p.op == "avg" else \
            np.float32(1.0)
        return G.windowsum_backward(g, scale, *args)


# ----------------------------------------------------------------------------- NIR (snnsim.nir.exporter)
def _pool_node(op, ex):
    import nir

    p = op.layer
    if p.op == "max":
        raise ex.refuse(op.name, "maxpool2d", "NIR has no max pooling (only SumPool2d and AvgPool2d)")
    cls = nir.AvgPool2d if p.op == "avg" else nir.SumPool2d
    return cls(kernel_size=np.array(p.kernel_size), stride=np.array(p.stride), padding=np.array(p.padding))


def to_nir(op, ex, srcs: list[str]) -> list[str]:
    return ex.add(op.name, _pool_node(op, ex), srcs)


# ----------------------------------------------------------------------------- importers (snnsim.nir, torch_import)
def from_nir(n, node, shape, imp):
    """NIR AvgPool2d (window sum / window size, padding counted) and SumPool2d."""
    kind = "avgpool2d" if type(node).__name__ == "AvgPool2d" else "sumpool2d"
    if len(shape) != 3:
        raise imp.err(n, f"needs a [C, H, W] input, but its input has shape {list(shape)}")
    k = imp.pair(n, "kernel_size", node.kernel_size)
    s = imp.pair(n, "stride", node.stride)
    p = imp.pair(n, "padding", node.padding, minimum=0)
    if p[0] * 2 > k[0] or p[1] * 2 > k[1]:
        raise imp.err(n, f"padding {p} is more than half the kernel {k}")
    h = (shape[1] + 2 * p[0] - k[0]) // s[0] + 1
    w = (shape[2] + 2 * p[1] - k[1]) // s[1] + 1
    if h < 1 or w < 1:
        raise imp.err(n, f"kernel {k} does not fit its input {list(shape[1:])}")
    return [imp.layer(n, {"type": kind, "kernel_size": k, "stride": s, "padding": p})], (shape[0], h, w)


def from_torch(m, imp):
    """torch.nn.MaxPool2d and AvgPool2d (ceil_mode off, dilation 1, average over the full window)."""
    pair = lambda v: list(v) if isinstance(v, (tuple, list)) else [v, v]   # noqa: E731
    avg = imp.cls == "AvgPool2d"
    if m.ceil_mode or getattr(m, "dilation", 1) not in (1, (1, 1)):
        raise imp.refuse("snnsim pooling has ceil_mode=False and dilation 1")
    if avg and (m.divisor_override or (not m.count_include_pad and m.padding)):
        raise imp.refuse("snnsim average pooling divides by the full window (count_include_pad=True)")
    stride = m.stride if m.stride is not None else m.kernel_size
    return [imp.layer("avgpool2d" if avg else "maxpool2d", kernel_size=pair(m.kernel_size), stride=pair(stride),
                      padding=pair(m.padding))]


# the 2x2 paths and the generic window
EXAMPLE = {"input_shape": [2, 8, 8], "layers": [
    {"type": "maxpool2d", "kernel_size": 2},
    {"type": "avgpool2d", "kernel_size": 3, "stride": 1, "padding": 1},
    {"type": "sumpool2d", "kernel_size": 2}]}
KIND = register(Kind("pool2d", ("avgpool2d", "maxpool2d", "sumpool2d"), Pool2d, parse,
                     lambda layer, w, ctx: PoolOp(layer), train_node=lambda layer, cfg_for: PoolNode(layer),
                     nir_export=to_nir, nir_nodes=("AvgPool2d", "SumPool2d"), from_nir=from_nir,
                     torch_modules=("MaxPool2d", "AvgPool2d"), from_torch=from_torch, examples=(EXAMPLE,)))
