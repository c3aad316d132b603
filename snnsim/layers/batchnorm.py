"""Batch norm (YAML batchnorm1d / batchnorm2d): inference form y = x * scale + shift per channel, or folded into
the linear/conv before it at build time (unless the spec says ``fold_batchnorm: false``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nir.io import conv2d_node
from ..spec import Layer
from ..train import grads as G
from ..train.forward import BN_MOMENTUM, Act, Node
from .op import EMPTY, U, Op, check_finite
from .registry import Kind, register, shape_error


@dataclass(frozen=True)
class BatchNorm(Layer):
    num_features: int = 0
    eps: float = 1e-5
    affine: bool = True
    kind = "batchnorm"
    folds_into_synapse = True

    def param_shapes(self):
        n = (self.num_features,)
        p = {"running_mean": n, "running_var": n}
        if self.affine:
            p.update(weight=n, bias=n)
        return p


def parse(f, type_name, name, shape, ctx):
    dims = 1 if type_name == "batchnorm1d" else 3
    if len(shape) != dims:
        want = "[C, H, W]" if dims == 3 else "[N]"
        raise shape_error(f, f"needs a {want} input, got shape {list(shape)}")
    n = f.matching_int("num_features", shape[0])
    return BatchNorm(name, shape, shape, n, f.float("eps", 1e-5, positive=True), f.bool("affine", True))


@dataclass
class AffineOp(Op):
    """Batch norm in inference form, y = x * scale + shift per channel (PyTorch's CPU order)."""

    scale: np.ndarray = None
    shift: np.ndarray = None
    elementwise = "multiply_add"

    def forward(self, x, form="dense"):
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return (x * self.scale.reshape(shape) + self.shift.reshape(shape)).astype(np.float32, copy=False)

    def error_bound(self, x, e, y):
        shape = (1, -1) + (1,) * (x.ndim - 2)
        s = np.abs(self.scale).reshape(shape)
        return s * e * (1 + 4 * U) + 4 * U * (s * np.abs(x) + np.abs(y) + np.abs(self.shift).reshape(shape))


def scale_shift(bn: BatchNorm, w: dict):
    """Per-channel scale and shift as PyTorch's CPU batch norm computes them, in float32."""
    var, mean = w[f"{bn.name}.running_var"], w[f"{bn.name}.running_mean"]
    gamma = w[f"{bn.name}.weight"] if bn.affine else np.ones_like(var)
    beta = w[f"{bn.name}.bias"] if bn.affine else np.zeros_like(var)
    with np.errstate(all="ignore"):           # overflow is reported by name just below
        invstd = np.float32(1) / np.sqrt(var + np.float32(bn.eps), dtype=np.float32)
        scale = (invstd * gamma).astype(np.float32)
        shift = (beta - mean * scale).astype(np.float32)
    check_finite({f"{bn.name}.scale": scale, f"{bn.name}.shift": shift}, "batch norm")
    return scale, shift


def fold(layer, weight, bias, bn: BatchNorm, w: dict):
    """Fold a batch norm into the preceding linear/conv, in float64, rounded once to float32:
    w' = w * g / sqrt(var + eps), b' = (b - mean) * g / sqrt(var + eps) + beta."""
    var = w[f"{bn.name}.running_var"].astype(np.float64)
    mean = w[f"{bn.name}.running_mean"].astype(np.float64)
    gamma = w[f"{bn.name}.weight"].astype(np.float64) if bn.affine else np.ones_like(var)
    beta = w[f"{bn.name}.bias"].astype(np.float64) if bn.affine else np.zeros_like(var)
    s = gamma / np.sqrt(var + bn.eps)
    b = bias.astype(np.float64) if bias.size else np.zeros_like(var)
    with np.errstate(all="ignore"):           # a result beyond float32 is reported by name just below
        new_w = (weight.astype(np.float64) * s.reshape((-1,) + (1,) * (weight.ndim - 1))).astype(np.float32)
        new_b = ((b - mean) * s + beta).astype(np.float32)
    check_finite({f"{layer.name}.weight": new_w, f"{layer.name}.bias": new_b}, f"folding batch norm '{bn.name}'")
    return new_w, new_b


def synapse_weights(layer, w: dict, ctx):
    """A linear/conv layer's weight and bias (EMPTY when it has none), with the batch norm that follows it folded
    in when the network builder folds one (``ctx.folded_bn``), and the names of the layers folded into it."""
    weight, bias = w[f"{layer.name}.weight"], w.get(f"{layer.name}.bias", EMPTY)
    if ctx.folded_bn is None:
        return weight, bias, ()
    return (*fold(layer, weight, bias, ctx.folded_bn, w), (ctx.folded_bn.name,))


def build(layer: BatchNorm, w, ctx):
    return AffineOp(layer, (), *scale_shift(layer, w))


# ----------------------------------------------------------------------------- training
class BatchNormNode(Node):
    def __init__(self, layer: BatchNorm):
        super().__init__(layer)
        self.trainable = ("weight", "bias") if layer.affine else ()

    def saf_refusal(self):
        return (f"layer '{self.name}' is batch norm, whose training-mode statistics change every timestep; SAF "
                "needs linear time-invariant layers (use ottt or bptt)")

    def _affine(self, ctx):
        n = self.layer.num_features
        if self.layer.affine:
            return ctx.params[self.key("weight")], ctx.params[self.key("bias")]
        return np.ones(n, np.float32), np.zeros(n, np.float32)

    def forward(self, a, ctx):
        gamma, beta = self._affine(ctx)
        x3 = np.ascontiguousarray(a.x).reshape(a.x.shape[0], a.x.shape[1], -1)
        y, xhat, mean, var, invstd = G.batchnorm_forward_train(x3, gamma, beta, np.float32(self.layer.eps))
        if ctx.bn_stats is not None:
            ctx.bn_stats.setdefault(self.name, []).append((mean, var, x3.shape[0] * x3.shape[2]))
        elif ctx.update_stats:
            # PyTorch: running = (1 - m) * running + m * batch, with the unbiased batch variance over all
            # T x B x H x W values (a static input stands for T identical copies)
            n = x3.shape[0] * x3.shape[2] * (ctx.T if a.static else 1)
            m = np.float32(BN_MOMENTUM)
            unbiased = (var.astype(np.float64) * n / max(n - 1, 1)).astype(np.float32)
            rm, rv = self.key("running_mean"), self.key("running_var")
            ctx.params[rm] = ((np.float32(1) - m) * ctx.params[rm] + m * mean).astype(np.float32)
            ctx.params[rv] = ((np.float32(1) - m) * ctx.params[rv] + m * unbiased).astype(np.float32)
        if ctx.store:
            ctx.save(self.name, xhat=xhat, invstd=invstd)
        return Act(y.reshape(a.x.shape), a.static)

    def backward(self, g, ctx, need_gx):
        s = ctx.take(self.name)
        gamma, _ = self._affine(ctx)
        shape = g.shape
        g3 = np.ascontiguousarray(g).reshape(shape[0], shape[1], -1)
        gx, ggamma, gbeta = G.batchnorm_backward_train(g3, s["xhat"], gamma, s["invstd"], need_gx)
        if self.layer.affine:
            ctx.add_grad(self.key("weight"), ggamma)
            ctx.add_grad(self.key("bias"), gbeta)
        return gx.reshape(shape) if need_gx else None


# ----------------------------------------------------------------------------- NIR (snnsim.nir.exporter)
def _batchnorm_node(op, ex):
    """A batch norm snnsim runs unfolded (y = x * scale + shift): a diagonal Affine (1-D input) or a
    depthwise 1x1 Conv2d ([C, H, W] input), which compute the same single product and sum."""
    import nir

    shape = tuple(op.layer.in_shape)
    scale, shift = op.scale.astype(np.float32), op.shift.astype(np.float32)
    ex.notes.append(f"layer '{op.name}': unfolded batch norm exported as a "
                    f"{'diagonal Affine' if len(shape) == 1 else 'depthwise 1x1 Conv2d'} (NIR has no batch norm)")
    if len(shape) == 1:
        return nir.Affine(weight=np.diag(scale), bias=shift)
    c = shape[0]
    return conv2d_node(op.name, shape, scale.reshape(c, 1, 1, 1), (1, 1), (0, 0), c, shift, ex.notes)


def to_nir(op, ex, srcs: list[str]) -> list[str]:
    return ex.add(op.name, _batchnorm_node(op, ex), srcs)


# ----------------------------------------------------------------------------- importers (torch_import)
def from_torch(m, imp):
    """torch.nn.BatchNorm1d / BatchNorm2d with running statistics (their inference form)."""
    if not m.track_running_stats or m.running_mean is None:
        raise imp.refuse("batch norm without running statistics has no inference form")
    ws = imp.params("running_mean", "running_var", *(("weight", "bias") if m.affine else ()))
    return [imp.layer(imp.cls.lower(), ws, eps=float(m.eps), affine=bool(m.affine))]


KIND = register(Kind("batchnorm", ("batchnorm1d", "batchnorm2d"), BatchNorm, parse, build,
                     train_node=lambda layer, cfg_for: BatchNormNode(layer), nir_export=to_nir,
                     torch_modules=("BatchNorm1d", "BatchNorm2d"), from_torch=from_torch))
