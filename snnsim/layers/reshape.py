"""Layers that move values without arithmetic: flatten, dropout (the identity at inference) and nearest-neighbour
upsampling by an integer ``scale_factor`` (PyTorch nn.Upsample 'nearest')."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import kernels as K
from ..spec import Layer
from ..train.forward import Act, Node
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


def moved_bound(op, x, e, y):
    """The error bound of an op without arithmetic: the input's bound, moved as the values are."""
    return op.forward(np.ascontiguousarray(e, np.float32))


@dataclass
class ReshapeOp(Op):
    def forward(self, x, form="dense"):
        return np.ascontiguousarray(x.reshape((x.shape[0],) + self.layer.out_shape))

    error_bound = moved_bound


@dataclass
class IdentityOp(Op):
    def forward(self, x, form="dense"):
        return x

    error_bound = moved_bound


@dataclass
class UpsampleOp(Op):
    elementwise = "copy"

    def forward(self, x, form="dense"):
        return K.upsample_nearest2d(np.ascontiguousarray(x), int(self.layer.scale_factor))

    error_bound = moved_bound


# ----------------------------------------------------------------------------- training
class FlattenNode(Node):
    online_form = "time_invariant"

    def forward(self, a, ctx):
        return Act(np.ascontiguousarray(a.x).reshape((a.x.shape[0],) + self.layer.out_shape), a.static)

    def backward(self, g, ctx, need_gx):
        return g.reshape((g.shape[0],) + tuple(self.layer.in_shape)) if need_gx else None


class DropoutNode(Node):
    """Inverted dropout in training (identity at inference, as the engine runs it); one mask per sample,
    shared by all timesteps (SpikingJelly's multi-step Dropout)."""

    online_form = "time_invariant"

    def forward(self, a, ctx):
        p = self.layer.p
        if p == 0 or ctx.rng is None:
            if ctx.store:
                ctx.save(self.name, keep=None)
            return a
        B = a.x.shape[0] if a.static else a.x.shape[0] // ctx.T
        mask = (ctx.rng.random((B,) + tuple(self.layer.in_shape)) >= p).astype(np.uint8)
        scale = np.float32(1.0 / (1.0 - p))
        x = a.x.reshape((-1, B) + a.x.shape[1:])
        y = (x * (mask * scale)).astype(np.float32).reshape(a.x.shape)
        if ctx.store:
            ctx.save(self.name, keep=mask)
        return Act(y, a.static)

    def backward(self, g, ctx, need_gx):
        mask = ctx.take(self.name)["keep"]
        if not need_gx:
            return None
        if mask is None:
            return g
        B = mask.shape[0]
        scale = np.float32(1.0 / (1.0 - self.layer.p))
        return (g.reshape((-1, B) + g.shape[1:]) * (mask * scale)).astype(np.float32).reshape(g.shape)


class UpsampleNode(Node):
    """Nearest-neighbour upsampling by s; backward sums the gradient over each s x s block. Stores nothing."""

    def forward(self, a, ctx):
        y = K.upsample_nearest2d(np.ascontiguousarray(a.x), int(self.layer.scale_factor))
        if ctx.store:
            ctx.save(self.name)
        return Act(y, a.static)

    def backward(self, g, ctx, need_gx):
        ctx.take(self.name)
        if not need_gx:
            return None
        s = int(self.layer.scale_factor)
        N, C, H, W = g.shape
        return g.reshape(N, C, H // s, s, W // s, s).sum(axis=(3, 5), dtype=np.float32)


# ----------------------------------------------------------------------------- NIR (snnsim.nir.exporter)
def _flatten_node(op, ex):
    import nir

    # NIR counts dimensions per sample (start_dim 0); snnTorch applies start_dim to the batched tensor
    start = 1 if ex.reader == "snntorch" else 0
    return nir.Flatten(input_type={"input": np.array(op.layer.in_shape)}, start_dim=start, end_dim=-1)


def flatten_to_nir(op, ex, srcs: list[str]) -> list[str]:
    return ex.add(op.name, _flatten_node(op, ex), srcs)


# ----------------------------------------------------------------------------- importers (snnsim.nir, torch_import)
def flatten_from_nir(n, node, shape, imp):
    """NIR Flatten of all per-sample dimensions (dropped on a 1-D input, where it changes nothing)."""
    nd = len(shape)
    start, end = int(node.start_dim), int(node.end_dim)
    start = start + nd if start < 0 else start
    end = end + nd if end < 0 else end
    if nd == 1 or start == end:
        return [], shape
    if (start, end) != (0, nd - 1):
        raise imp.err(n, f"flattens dimensions {start}..{end} of a {nd}-D input; snnsim flattens all of them")
    return [imp.layer(n, {"type": "flatten"})], (math.prod(shape),)


def flatten_from_torch(m, imp):
    """torch.nn.Flatten of every per-sample dimension; also ``torch.flatten``/``reshape`` and the tensor methods
    ``flatten``/``view``/``reshape`` in a traced graph (``m`` None), when they leave one per-sample dimension."""
    if m is None:
        if imp.shapes is None or len(imp.shapes[1]) != 1:
            raise imp.refuse("only a flatten of all per-sample dimensions is supported")
    elif m.end_dim != -1 or m.start_dim != 1:
        raise imp.refuse("only a flatten of all per-sample dimensions (start_dim=1) is supported")
    return [imp.layer("flatten")]


FLATTEN = register(Kind("flatten", ("flatten",), Flatten,
                        lambda f, t, name, shape, ctx: Flatten(name, shape, (math.prod(shape),)),
                        lambda layer, w, ctx: ReshapeOp(layer), train_node=lambda layer, cfg_for: FlattenNode(layer),
                        nir_export=flatten_to_nir, nir_nodes=("Flatten",), from_nir=flatten_from_nir,
                        torch_modules=("Flatten",), torch_functions=("flatten", "view", "reshape"),
                        from_torch=flatten_from_torch))
DROPOUT = register(Kind("dropout", ("dropout",), Dropout, parse_dropout, lambda layer, w, ctx: IdentityOp(layer),
                        train_node=lambda layer, cfg_for: DropoutNode(layer),
                        nir_export=lambda op, ex, srcs: srcs,     # the identity at inference
                        torch_modules=("Dropout",), from_torch=lambda m, imp: [imp.layer("dropout", p=float(m.p))]))
UPSAMPLE = register(Kind("upsample", ("upsample",), Upsample, parse_upsample, lambda layer, w, ctx: UpsampleOp(layer),
                         train_node=lambda layer, cfg_for: UpsampleNode(layer),
                         examples=({"input_shape": [2, 4, 4], "layers": [{"type": "upsample", "scale_factor": 2}]},)))
