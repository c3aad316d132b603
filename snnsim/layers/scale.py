"""Elementwise scaling: ``scale`` (NIR Scale, y = x * scale with one value per element, weight key
``<name>.scale``) and ``layer_scale`` (y = x * gamma with gamma per channel, shape [1, C, 1, ...], weight key
``<name>.gamma`` or the YAML ``key``; ConvNeXt / T-RevSNN layer scale)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..spec import Layer, Shape
from ..train.forward import Act, Node, pack
from .op import U, Op
from .registry import Kind, register, shape_error


@dataclass(frozen=True)
class Scale(Layer):
    """Elementwise product y = x * scale (NIR's Scale node); weight key ``<name>.scale``, the input's shape."""

    kind = "scale"

    def param_shapes(self):
        return {"scale": self.in_shape}


@dataclass(frozen=True)
class LayerScale(Layer):
    """y = x * gamma, gamma per channel with shape [1, C, 1, ...]; weight key ``key`` (default <name>.gamma)."""

    key: str = ""
    kind = "layer_scale"

    @property
    def weight_key(self) -> str:
        return self.key or f"{self.name}.gamma"

    @property
    def gamma_shape(self) -> Shape:
        return (1, self.in_shape[0]) + (1,) * (len(self.in_shape) - 1)

    def param_shapes(self):
        return {"gamma": self.gamma_shape}

    def param_keys(self) -> dict:
        return {self.weight_key: self.gamma_shape}


@dataclass
class ScaleOp(Op):
    """y = x * scale, elementwise (NIR Scale)."""

    scale: np.ndarray = None

    def forward(self, x, form="dense"):
        return (x * self.scale).astype(np.float32, copy=False)

    def error_bound(self, x, e, y):
        s = np.abs(self.scale)
        return s * e + U * (2 * np.abs(y) + s * e)


@dataclass
class LayerScaleOp(Op):
    gamma: np.ndarray = None      # [C, 1, 1] (broadcast over the batch)
    elementwise = "channel_multiply"

    def forward(self, x, form="dense"):
        return (x * self.gamma).astype(np.float32, copy=False)

    def error_bound(self, x, e, y):
        s = np.abs(self.gamma)
        return s * e + U * (2 * np.abs(y) + s * e)


def parse_layer_scale(f, type_name, name, shape, ctx):
    if len(shape) < 1:
        raise shape_error(f, "layer_scale needs a [C, ...] input")
    return LayerScale(name, shape, shape, f.str("key", ""))


def build_layer_scale(layer: LayerScale, w, ctx):
    return LayerScaleOp(layer, (), w[layer.weight_key].reshape(layer.in_shape[0], *([1] * (len(layer.in_shape) - 1))))


def init_layer_scale(layer: LayerScale, w: dict, rng) -> None:
    w[layer.weight_key] = np.ones(layer.gamma_shape, np.float32)


# ----------------------------------------------------------------------------- training
class ScaleNode(Node):
    trainable = ("scale",)
    online_form = "time_invariant"

    def forward(self, a, ctx):
        y = (a.x * ctx.params[self.key("scale")]).astype(np.float32, copy=False)
        if ctx.store:
            ctx.save(self.name, x=pack(a.x))
        return Act(y, a.static)

    def backward(self, g, ctx, need_gx):
        x = ctx.take(self.name)["x"]
        ctx.add_grad(self.key("scale"), (g * x).sum(axis=0, dtype=np.float32))
        return (g * ctx.params[self.key("scale")]).astype(np.float32) if need_gx else None


class LayerScaleNode(Node):
    """y = x * gamma (per channel, weight key ``layer.weight_key`` [1, C, 1, 1]); stores the input."""

    trainable = ("gamma",)

    def key(self, p):
        return self.layer.weight_key if p == "gamma" else f"{self.name}.{p}"

    def _gamma(self, ctx):
        shape = self.layer.in_shape
        return ctx.params[self.key("gamma")].reshape((1, shape[0]) + (1,) * (len(shape) - 1))

    def forward(self, a, ctx):
        y = (a.x * self._gamma(ctx)[0]).astype(np.float32, copy=False)
        if ctx.store:
            ctx.save(self.name, x=pack(a.x))
        return Act(y, a.static)

    def backward(self, g, ctx, need_gx):
        x = ctx.take(self.name)["x"]
        axes = (0,) + tuple(range(2, g.ndim))
        gg = (g * x).sum(axis=axes, dtype=np.float32)
        ctx.add_grad(self.key("gamma"), gg.reshape(np.shape(ctx.params[self.key("gamma")])))
        return (g * self._gamma(ctx)[0]).astype(np.float32) if need_gx else None


# ----------------------------------------------------------------------------- NIR (snnsim.nir.exporter)
def _scale_node(op, ex):
    import nir

    return nir.Scale(scale=np.ascontiguousarray(op.scale, np.float32))


def scale_to_nir(op, ex, srcs: list[str]) -> list[str]:
    return ex.add(op.name, _scale_node(op, ex), srcs)


# ----------------------------------------------------------------------------- importers (snnsim.nir)
def scale_layer(imp, name: str, s, shape) -> list:
    """A scale layer multiplying an input of ``shape`` by ``s`` (one value, or one per element)."""
    s = np.broadcast_to(np.asarray(s, np.float32).reshape(-1) if np.size(s) > 1 else np.float32(s),
                        (math.prod(shape),)).reshape(shape)
    return [imp.layer(name, {"type": "scale"}, {"scale": np.ascontiguousarray(s, dtype=np.float32)})]


def from_nir(n, node, shape, imp):
    """NIR Scale; an all-ones Scale is NIR's mark of where two paths are summed, the identity."""
    s = imp.weight(n, "scale", node.scale)
    if s.size != 1 and s.size != math.prod(shape):
        raise imp.err(n, f"scale has shape {list(s.shape)} but its input has shape {list(shape)}")
    if np.all(s == 1):
        return [], shape
    return imp.scale_layer(n, s, shape), shape


SCALE = register(Kind("scale", ("scale",), Scale, lambda f, t, name, shape, ctx: Scale(name, shape, shape),
                      lambda layer, w, ctx: ScaleOp(layer, (), w[f"{layer.name}.scale"]),
                      train_node=lambda layer, cfg_for: ScaleNode(layer), nir_export=scale_to_nir,
                      nir_nodes=("Scale",), from_nir=from_nir))
LAYER_SCALE = register(Kind("layer_scale", ("layer_scale",), LayerScale, parse_layer_scale, build_layer_scale,
                            init_layer_scale, train_node=lambda layer, cfg_for: LayerScaleNode(layer)))
