"""2-D convolution (YAML conv2d) and its weight-standardised form (YAML scaled_std_conv2d).

  conv2d             PyTorch Conv2d: stride, zero padding, groups; dense (im2col + GEMM) or event-driven
                     (scatter of each input spike's kernel slice).
  scaled_std_conv2d  a conv2d whose weight is standardised per output channel before use (timm's
                     ``ScaledStdConv2d``, used by T-RevSNN for every point-wise conv, the stem and the heads):
                       W_hat[o] = gain[o] * gamma * fan_in^-1/2 * (W[o] - mean(W[o])) / sqrt(var(W[o]) + eps)
                     with the biased variance over the fan-in, eps 1e-6, gamma 1. Weight keys ``weight``,
                     ``bias``, ``gain`` [O, 1, 1, 1]. W_hat is computed once at load from the raw weights (float64,
                     rounded once to float32). It is traced as a 'conv2d' with ``standardize: true`` in its geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels as K
from ..errors import WeightError
from ..kernels.cost import conv_prices
from ..nir.io import conv2d_node
from ..spec import Layer, weight_and_bias
from ..train import grads as G
from ..train.forward import Act, SynapticNode
from . import batchnorm
from .op import EMPTY, Op, abs_weight, synaptic_bound
from .registry import Kind, register, shape_error


@dataclass(frozen=True)
class Conv2d(Layer):
    in_channels: int = 0
    out_channels: int = 0
    kernel_size: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1
    bias: bool = True
    kind = "conv2d"
    absorbs_batchnorm = True
    synaptic = True

    def param_shapes(self):
        return weight_and_bias((self.out_channels, self.in_channels // self.groups, *self.kernel_size), self.bias)


@dataclass(frozen=True)
class ScaledStdConv2d(Conv2d):
    """A conv2d with optional weight standardisation (ScaledStdConv2d) and optional weight sharing.

    ``shared_from``: the full name of the layer whose parameters this one shares (T-RevSNN's reused
    point-wise/depth-wise convs). The weight file still holds both keys, as PyTorch's state_dict does; they
    must be equal, and the parameters are counted once.
    """

    standardize: bool = False
    eps: float = 1e-6
    gamma: float = 1.0
    shared_from: str = ""
    kind = "conv2d"
    absorbs_batchnorm = False

    def param_shapes(self):
        p = super().param_shapes()
        if self.standardize:
            p["gain"] = (self.out_channels, 1, 1, 1)
        return p

    def own_params(self) -> int:
        return 0 if self.shared_from else super().own_params()


def conv_out(f, hw, k, s, p):
    """Output height and width of a conv or pool window; errors name ``f``'s fields."""
    out = []
    for n, kk, ss, pp, axis in zip(hw, k, s, p, "HW"):
        if pp * 2 > kk:
            raise f.err("padding", f"padding {pp} is more than half the kernel {kk}")
        o = (n + 2 * pp - kk) // ss + 1
        if o < 1:
            raise f.err("kernel_size", f"kernel {kk} with padding {pp} does not fit input {axis}={n}")
        out.append(o)
    return tuple(out)


def parse(f, type_name, name, shape, ctx):
    if len(shape) != 3:
        raise shape_error(f, f"conv2d needs a [C, H, W] input, got shape {list(shape)}")
    c_in = f.matching_int("in_channels", shape[0], "channels")
    c_out = f.int("out_channels", required=True)
    k = f.pair("kernel_size")
    s = f.pair("stride", 1)
    p = f.pair("padding", 0, minimum=0)
    g = f.int("groups", 1)
    if c_in % g or c_out % g:
        raise f.err("groups", f"{g} must divide in_channels ({c_in}) and out_channels ({c_out})")
    h, w = conv_out(f, shape[1:], k, s, p)
    return Conv2d(name, shape, (c_out, h, w), c_in, c_out, k, s, p, g, f.bool("bias", True))


def parse_scaled_std(f, type_name, name, shape, ctx):
    base = parse(f, type_name, name, shape, ctx)
    eps = f.float("eps", 1e-6, positive=True)
    gamma = f.float("gamma", 1.0, positive=True)
    return ScaledStdConv2d(**{k: getattr(base, k) for k in base.__dataclass_fields__}, standardize=True, eps=eps,
                           gamma=gamma)


@dataclass
class ConvOp(Op):
    weight: np.ndarray = None
    bias: np.ndarray = None
    weight_ev: object = None
    synaptic = True

    def forward(self, x, form="dense", batch=None):
        c: Conv2d = self.layer
        (sh, sw), (ph, pw) = c.stride, c.padding
        if form == "event":
            return K.conv2d_event(x, self.weight_ev, self.bias, c.out_channels, c.kernel_size[0],
                                  c.kernel_size[1], sh, sw, ph, pw, c.groups)
        return K.conv2d_dense(x, self.weight, self.bias, sh, sw, ph, pw, c.groups, batch)

    def prices(self, batch):
        c = self.layer
        return conv_prices(batch, c.in_shape, c.out_shape, c.kernel_size, c.stride, c.groups)

    def fanout_map(self):
        """Outputs reached from each input position: exact at borders, with stride and groups."""
        layer = self.layer
        c, h, w = layer.in_shape
        _, ho, wo = layer.out_shape
        reach = []
        for n, k, s, p, o in ((h, layer.kernel_size[0], layer.stride[0], layer.padding[0], ho),
                              (w, layer.kernel_size[1], layer.stride[1], layer.padding[1], wo)):
            # input i feeds output j when 0 <= i + p - j*s < k
            i = np.arange(n)[:, None]
            j = np.arange(o)[None, :]
            kk = i + p - j * s
            reach.append(((kk >= 0) & (kk < k)).sum(axis=1))
        per_pos = np.outer(reach[0], reach[1]) * (layer.out_channels // layer.groups)
        return np.broadcast_to(per_pos, (c, h, w)).astype(np.float32)

    def error_bound(self, x, e, y):
        c = self.layer

        def abs_apply(v):
            return K.conv2d_dense(np.ascontiguousarray(v, np.float32), abs_weight(self), EMPTY, c.stride[0],
                                  c.stride[1], c.padding[0], c.padding[1], c.groups)
        return synaptic_bound(self, x, e, y, abs_apply, int(np.prod(self.weight.shape[1:])))


def build(layer: Conv2d, w, ctx):
    weight, bias, folded = batchnorm.synapse_weights(layer, w, ctx)
    return ConvOp(layer, folded, weight, bias, K.prepare_conv_event(weight, layer.groups))


def standardize_weight(weight: np.ndarray, gain: np.ndarray, eps: float, gamma: float = 1.0) -> np.ndarray:
    """timm ScaledStdConv2d: per-output-channel (W - mean) / sqrt(biased var + eps) * gain * gamma / sqrt(fan_in),
    in float64, rounded once to float32."""
    o = weight.shape[0]
    w = weight.astype(np.float64).reshape(o, -1)
    fan_in = w.shape[1]
    mean = w.mean(axis=1, keepdims=True)
    var = ((w - mean) ** 2).mean(axis=1, keepdims=True)
    scale = gain.astype(np.float64).reshape(o, 1) * (gamma * fan_in ** -0.5)
    return ((w - mean) / np.sqrt(var + eps) * scale).reshape(weight.shape).astype(np.float32)


def build_scaled_std(layer: ScaledStdConv2d, w, ctx):
    weight = w[f"{layer.name}.weight"]
    bias = w.get(f"{layer.name}.bias", EMPTY)
    if layer.shared_from:
        for p in layer.param_shapes():
            a, b = w[f"{layer.name}.{p}"], w[f"{layer.shared_from}.{p}"]
            if not np.array_equal(a, b):
                raise WeightError(f"key '{layer.name}.{p}' differs from '{layer.shared_from}.{p}': the module is "
                                  "shared across columns (one parameter in the PyTorch model), so both keys "
                                  "must hold the same array")
    if layer.standardize:
        weight = standardize_weight(weight, w[f"{layer.name}.gain"], layer.eps, layer.gamma)
    return ConvOp(layer, (), weight, bias, K.prepare_conv_event(weight, layer.groups))


def init_scaled_std(layer: ScaledStdConv2d, w: dict, rng) -> None:
    """Gains 1 and small positive biases for the standardised convs (their weights are drawn as any conv's)."""
    if layer.standardize:
        w[f"{layer.name}.gain"] = np.ones((layer.out_channels, 1, 1, 1), np.float32)
        if layer.bias:
            w[f"{layer.name}.bias"] = rng.uniform(-0.1, 0.1, layer.out_channels).astype(np.float32)


# ----------------------------------------------------------------------------- training
class ConvNode(SynapticNode):
    def dense(self, x, w, b, events=None):
        """The conv of x with given weights and bias (online methods pass an accumulated bias)."""
        c = self.layer
        return G.conv2d_train_forward(x, w, b, c.stride[0], c.stride[1], c.padding[0], c.padding[1], c.groups,
                                      events)

    def backward(self, g, ctx, need_gx):
        c: Conv2d = self.layer
        saved = ctx.take(self.name)
        g = np.ascontiguousarray(g)
        gw, gx = G.conv2d_backward(saved["x"], ctx.params[self.key("weight")], g, c.stride[0], c.stride[1],
                                   c.padding[0], c.padding[1], c.groups, need_gx, saved.get("events"))
        ctx.add_grad(self.key("weight"), gw)
        if c.bias:
            ctx.add_grad(self.key("bias"), G.channel_sum(g.reshape(g.shape[0], g.shape[1], -1)))
        return gx if need_gx else None


class StdConvNode(ConvNode):
    """conv2d with weight standardisation (``scaled_std_conv2d``) and/or shared parameters (``shared_from``).

    Forward: W_hat = gain * gamma * fan_in^-1/2 * (W - mean) / sqrt(var + eps) per output channel (the engine's
    ``standardize_weight``), then the conv. Backward: the conv's gradient for W_hat, then through the
    standardisation (u = (W - mean) / s, s = sqrt(var + eps), biased variance):
        g_gain = sum_i g_What * c * u,   g_u = g_What * gain * c,   g_W = (g_u - mean(g_u) - u * mean(g_u * u)) / s
    A shared module's keys are its original's (``shared_from``), so the gradients of all copies add up there.
    """

    def __init__(self, layer):
        super().__init__(layer)
        self.pname = layer.shared_from or layer.name
        if layer.standardize:
            self.trainable = self.trainable + ("gain",)

    def key(self, p: str) -> str:
        if p in ("weight", "bias", "gain"):
            return f"{self.pname}.{p}"
        return f"{self.name}.{p}"

    def weight(self, ctx):
        c = self.layer
        w = ctx.params[self.key("weight")]
        if not c.standardize:
            return w
        return standardize_weight(w, ctx.params[self.key("gain")], c.eps, c.gamma)

    def forward(self, a, ctx):
        c = self.layer
        w = self.weight(ctx)
        b = ctx.params[self.key("bias")] if c.bias else EMPTY
        x = np.ascontiguousarray(a.x)
        y = K.conv2d_dense(x, w, b, c.stride[0], c.stride[1], c.padding[0], c.padding[1], c.groups)
        if ctx.store:
            stored, events = ctx.pack(x)
            ctx.save(self.name, x=stored, events=events)
        return Act(y, a.static)

    def backward(self, g, ctx, need_gx):
        c = self.layer
        saved = ctx.take(self.name)
        g = np.ascontiguousarray(g)
        gw, gx = G.conv2d_backward(saved["x"], self.weight(ctx), g, c.stride[0], c.stride[1], c.padding[0],
                                   c.padding[1], c.groups, need_gx, saved.get("events"))
        if c.standardize:
            gw, ggain = std_weight_backward(ctx.params[self.key("weight")], ctx.params[self.key("gain")], gw,
                                            c.eps, c.gamma)
            ctx.add_grad(self.key("gain"), ggain)
        ctx.add_grad(self.key("weight"), gw)
        if c.bias:
            ctx.add_grad(self.key("bias"), G.channel_sum(g.reshape(g.shape[0], g.shape[1], -1)))
        return gx if need_gx else None


def std_weight_backward(weight, gain, g_what, eps, gamma=1.0):
    """Gradients of the raw weight and the gain from the gradient of the standardised weight (float64)."""
    o = weight.shape[0]
    w = weight.astype(np.float64).reshape(o, -1)
    n = w.shape[1]
    mean = w.mean(axis=1, keepdims=True)
    s = np.sqrt(((w - mean) ** 2).mean(axis=1, keepdims=True) + eps)
    u = (w - mean) / s
    c = gamma * n ** -0.5
    gwh = np.asarray(g_what, np.float64).reshape(o, -1)
    ggain = (gwh * u).sum(axis=1) * c
    gu = gwh * gain.astype(np.float64).reshape(o, 1) * c
    gw = (gu - gu.mean(axis=1, keepdims=True) - u * (gu * u).mean(axis=1, keepdims=True)) / s
    return gw.reshape(weight.shape).astype(np.float32), ggain.reshape(gain.shape).astype(np.float32)


def train_node_scaled_std(layer: ScaledStdConv2d, cfg_for) -> ConvNode:
    return StdConvNode(layer) if layer.standardize or layer.shared_from else ConvNode(layer)


# ----------------------------------------------------------------------------- NIR (snnsim.nir.exporter)
def _conv_node(op, ex):
    c = op.layer
    bias = op.bias if op.bias.size else np.zeros(c.out_channels, np.float32)
    return conv2d_node(op.name, c.in_shape, op.weight, c.stride, c.padding, c.groups, bias, ex.notes)


def to_nir(op, ex, srcs: list[str]) -> list[str]:
    return ex.add(op.name, _conv_node(op, ex), srcs)


# ----------------------------------------------------------------------------- importers (snnsim.nir, torch_import)
def nir_weight(n, node, shape, imp, kernel: str, axes: str):
    """A NIR convolution's weight, (C_out, C_in/groups, *kernel), after checking its rank and the rank of its
    input ([axes]); ``kernel`` and ``axes`` name the axes for the error messages ("kH, kW" and "C, H, W")."""
    w = imp.weight(n, "weight", node.weight)
    if w.ndim != 2 + len(kernel.split(",")):
        raise imp.err(n, f"weight must be (C_out, C_in/groups, {kernel}), got shape {list(w.shape)}")
    if len(shape) != len(axes.split(",")):
        raise imp.err(n, f"needs a [{axes}] input, but its input has shape {list(shape)}")
    return w


def nir_bias(n, node, c_out: int, imp):
    """A NIR convolution's bias (absent: zeros) and whether snnsim's layer keeps one (any entry nonzero)."""
    b = imp.weight(n, "bias", node.bias).reshape(-1) if node.bias is not None else np.zeros(c_out, np.float32)
    if b.size != c_out:
        raise imp.err(n, f"bias has {b.size} entries for {c_out} output channels")
    return b, bool(np.any(b != 0))


def imported_conv(n, imp, fields: dict, groups: int, w, b, has_bias: bool):
    """The layer a NIR convolution becomes: its YAML fields (groups only when not 1) and its parameters."""
    f = dict(fields, **({"groups": groups} if groups != 1 else {}), bias=has_bias)
    return imp.layer(n, f, {"weight": w, "bias": b} if has_bias else {"weight": w})


def from_nir(n, node, shape, imp):
    """NIR Conv2d (a 'same' padding becomes the symmetric pad; an all-zero bias is dropped)."""
    w = nir_weight(n, node, shape, imp, "kH, kW", "C, H, W")
    groups = int(np.asarray(node.groups).reshape(-1)[0])
    c_out, c_in_g, kh, kw = (int(s) for s in w.shape)
    if groups < 1 or c_in_g * groups != shape[0]:
        raise imp.err(n, f"weight expects {c_in_g * groups} input channels (groups={groups}) but its input has "
                         f"{shape[0]}")
    if node.input_shape is not None and tuple(int(s) for s in np.asarray(node.input_shape).reshape(-1)) \
            != tuple(shape[1:]):
        raise imp.err(n, f"input_shape {np.asarray(node.input_shape).tolist()} does not match its input "
                         f"{list(shape[1:])}")
    if imp.pair(n, "dilation", node.dilation) != [1, 1]:
        raise imp.err(n, "dilation other than 1 is not supported by snnsim")
    stride = imp.pair(n, "stride", node.stride)
    pad = node.padding
    if isinstance(pad, (str, bytes)):
        pad = pad.decode() if isinstance(pad, bytes) else pad
        if pad == "valid":
            pad = [0, 0]
        elif pad == "same":
            if stride != [1, 1] or kh % 2 == 0 or kw % 2 == 0:
                raise imp.err(n, "padding 'same' needs stride 1 and an odd kernel to be symmetric")
            pad = [(kh - 1) // 2, (kw - 1) // 2]
        else:
            raise imp.err(n, f"padding {pad!r} is not 'same', 'valid' or integers")
    else:
        pad = imp.pair(n, "padding", pad, minimum=0)
    if pad[0] * 2 > kh or pad[1] * 2 > kw:
        raise imp.err(n, f"padding {pad} is more than half the kernel {[kh, kw]}")
    b, has_bias = nir_bias(n, node, c_out, imp)
    h = (shape[1] + 2 * pad[0] - kh) // stride[0] + 1
    wd = (shape[2] + 2 * pad[1] - kw) // stride[1] + 1
    if h < 1 or wd < 1:
        raise imp.err(n, f"kernel {[kh, kw]} does not fit its input {list(shape[1:])}")
    fields = {"type": "conv2d", "out_channels": c_out, "kernel_size": [kh, kw], "stride": stride, "padding": pad}
    return [imported_conv(n, imp, fields, groups, w, b, has_bias)], (c_out, h, wd)


def from_torch(m, imp):
    """torch.nn.Conv2d (zero padding, dilation 1; padding='same' with stride 1 and odd kernels)."""
    if tuple(m.dilation) != (1, 1) or m.padding_mode != "zeros":
        raise imp.refuse("snnsim convolutions have dilation 1 and zero padding")
    pad = m.padding
    if isinstance(pad, str):
        if pad == "valid":
            pad = (0, 0)
        elif tuple(m.stride) == (1, 1) and all(k % 2 for k in m.kernel_size):
            pad = tuple(k // 2 for k in m.kernel_size)
        else:
            raise imp.refuse("padding='same' needs stride 1 and odd kernels in snnsim")
    return [imp.layer("conv2d", imp.params("weight", "bias"), out_channels=m.out_channels,
                      kernel_size=list(m.kernel_size), stride=list(m.stride), padding=list(pad), groups=m.groups,
                      bias=m.bias is not None)]


# the sgemm conv (3x3), the depthwise direct conv and the 1x1 conv, each also as an event scatter
EXAMPLE = {"input_shape": [2, 8, 8], "layers": [
    {"type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1},
    {"type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1, "groups": 8},
    {"type": "conv2d", "out_channels": 8, "kernel_size": 1}]}
KIND = register(Kind("conv2d", ("conv2d",), Conv2d, parse, build, train_node=lambda layer, cfg_for: ConvNode(layer),
                     nir_export=to_nir, nir_nodes=("Conv2d",), from_nir=from_nir,
                     torch_modules=("Conv2d",), from_torch=from_torch, examples=(EXAMPLE,)))
SCALED_STD_KIND = register(Kind("conv2d", ("scaled_std_conv2d",), ScaledStdConv2d, parse_scaled_std, build_scaled_std,
                                init_scaled_std, train_node=train_node_scaled_std, nir_export=to_nir))
