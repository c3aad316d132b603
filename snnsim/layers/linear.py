"""Fully connected layer (YAML linear): y = x W^T + b, dense or event-driven (rows of W^T per input spike)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels as K
from ..kernels.cost import linear_prices
from ..spec import Layer, weight_and_bias
from ..train.forward import SynapticNode
from . import batchnorm
from .op import EMPTY, Op, abs_weight, synaptic_bound
from .registry import Kind, register, shape_error


@dataclass(frozen=True)
class Linear(Layer):
    in_features: int = 0
    out_features: int = 0
    bias: bool = True
    kind = "linear"
    absorbs_batchnorm = True
    synaptic = True

    def param_shapes(self):
        return weight_and_bias((self.out_features, self.in_features), self.bias)


def parse(f, type_name, name, shape, ctx):
    if len(shape) != 1:
        raise shape_error(f, f"linear needs a 1-D input, got shape {list(shape)}; add a 'flatten' layer before it")
    n_in = f.matching_int("in_features", shape[0], "features")
    n_out = f.int("out_features", required=True)
    return Linear(name, shape, (n_out,), n_in, n_out, f.bool("bias", True))


@dataclass
class LinearOp(Op):
    weight: np.ndarray = None
    bias: np.ndarray = None
    weight_t: np.ndarray = None
    synaptic = True

    def forward(self, x, form="dense", batch=None):
        if form == "event":
            return K.linear_event(x, self.weight_t, self.bias)
        return K.linear_dense(x, self.weight, self.bias, batch)

    def prices(self, batch):
        return linear_prices(batch, self.layer.in_features, self.layer.out_features)

    def fanout_map(self):
        return np.full(self.layer.in_shape, self.layer.out_features, np.float32)

    def error_bound(self, x, e, y):
        return synaptic_bound(self, x, e, y, lambda v: K.linear_dense(np.ascontiguousarray(v, np.float32),
                                                                      abs_weight(self), EMPTY),
                              self.weight.shape[1])


def build(layer: Linear, w, ctx):
    weight, bias, folded = batchnorm.synapse_weights(layer, w, ctx)
    return LinearOp(layer, folded, weight, bias, K.prepare_linear_event(weight))


# ----------------------------------------------------------------------------- training
class LinearNode(SynapticNode):
    def dense(self, x, w, b, events=None):
        """y = x W^T + b for given weights (online methods pass an accumulated bias)."""
        return K.linear_dense(x, w, b)

    def backward(self, g, ctx, need_gx):
        x = ctx.take(self.name)["x"]
        w = ctx.params[self.key("weight")]
        ctx.add_grad(self.key("weight"), np.dot(g.T, x.astype(np.float32, copy=False)))
        if self.layer.bias:
            ctx.add_grad(self.key("bias"), g.sum(axis=0, dtype=np.float32))
        return np.dot(g, w) if need_gx else None


# ----------------------------------------------------------------------------- NIR (snnsim.nir.exporter)
def nir_node(op):
    """Affine (Linear without bias) of a linear op (also a recurrent layer's recurrent weight)."""
    import nir

    w = np.ascontiguousarray(op.weight, dtype=np.float32)
    if op.bias.size:
        return nir.Affine(weight=w, bias=np.ascontiguousarray(op.bias, dtype=np.float32))
    return nir.Linear(weight=w)


def to_nir(op, ex, srcs: list[str]) -> list[str]:
    return ex.add(op.name, nir_node(op), srcs)


# ----------------------------------------------------------------------------- importers (snnsim.nir, torch_import)
def from_nir(n, node, shape, imp):
    """NIR Affine (W I + b) or Linear (W I)."""
    bias = type(node).__name__ == "Affine"
    w = imp.weight(n, "weight", node.weight)
    if w.ndim != 2:
        raise imp.err(n, f"weight has {w.ndim} dimensions; snnsim supports (out, in) matrices")
    if len(shape) != 1:
        hint = (" (the exporter seems to have kept the batch dimension; snnTorch: export with ignore_dims=[0])"
                if shape[0] == 1 and len(shape) == 2 else " (add a Flatten node)")
        raise imp.err(n, f"needs a 1-D input, but its input has shape {list(shape)}{hint}")
    if w.shape[1] != shape[0]:
        raise imp.err(n, f"weight has {w.shape[1]} inputs but its input has {shape[0]} features")
    params = {"weight": w}
    if bias:
        b = imp.weight(n, "bias", node.bias).reshape(-1)
        if b.size != w.shape[0]:
            raise imp.err(n, f"bias has {b.size} entries for {w.shape[0]} outputs")
        params["bias"] = b
    return [imp.layer(n, {"type": "linear", "out_features": int(w.shape[0]), "bias": bias}, params)], (int(w.shape[0]),)


def from_torch(m, imp):
    """torch.nn.Linear."""
    return [imp.layer("linear", imp.params("weight", "bias"), out_features=m.out_features, bias=m.bias is not None)]


KIND = register(Kind("linear", ("linear",), Linear, parse, build, train_node=lambda layer, cfg_for: LinearNode(layer),
                     nir_export=to_nir, nir_nodes=("Affine", "Linear"), from_nir=from_nir,
                     torch_modules=("Linear",), from_torch=from_torch,
                     examples=({"input_shape": [32], "layers": [{"type": "linear", "out_features": 4}]},)))
