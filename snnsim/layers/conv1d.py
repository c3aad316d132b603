"""1-D convolution (YAML conv1d) over a [C, L] input: PyTorch Conv1d (stride, zero padding, groups), the layer of
SpikingJelly's ``layer.Conv1d`` applied to every timestep.

It runs as the conv2d kernels on a [C, 1, L] view with a [1, k] kernel, so the dense and event forms, their cost
rule and the training gradients are the conv2d ones; the trace records it that way too (kind 'conv2d', shapes
[C, 1, L] -> [O, 1, L'], kernel [1, k]), which is exactly the work a conv2d accelerator does for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels as K
from ..kernels.cost import conv_prices
from ..spec import Layer, weight_and_bias
from ..train import grads as G
from ..train.forward import SynapticNode
from . import conv
from .op import EMPTY, Op, synaptic_bound
from .registry import Kind, register, shape_error


@dataclass(frozen=True)
class Conv1d(Layer):
    in_channels: int = 0
    out_channels: int = 0
    kernel_size: int = 1
    stride: int = 1
    padding: int = 0
    groups: int = 1
    bias: bool = True
    kind = "conv1d"
    synaptic = True

    def param_shapes(self):
        return weight_and_bias((self.out_channels, self.in_channels // self.groups, self.kernel_size), self.bias)

    def as_conv2d(self) -> dict:
        """The same convolution as a conv2d over [C, 1, L]: its geometry and per-sample shapes."""
        c, n = self.in_shape
        o, n_out = self.out_shape
        return dict(in_shape=(c, 1, n), out_shape=(o, 1, n_out), kernel_size=(1, self.kernel_size),
                    stride=(1, self.stride), padding=(0, self.padding))


def parse(f, type_name, name, shape, ctx):
    if len(shape) != 2:
        raise shape_error(f, f"conv1d needs a [C, L] input, got shape {list(shape)}")
    c_in = f.matching_int("in_channels", shape[0], "channels")
    c_out = f.int("out_channels", required=True)
    k = f.int("kernel_size", required=True)
    s = f.int("stride", 1)
    p = f.int("padding", 0, minimum=0)
    g = f.int("groups", 1)
    if c_in % g or c_out % g:
        raise f.err("groups", f"{g} must divide in_channels ({c_in}) and out_channels ({c_out})")
    if p * 2 > k:
        raise f.err("padding", f"padding {p} is more than half the kernel {k}")
    n_out = (shape[1] + 2 * p - k) // s + 1
    if n_out < 1:
        raise f.err("kernel_size", f"kernel {k} with padding {p} does not fit input L={shape[1]}")
    return Conv1d(name, shape, (c_out, n_out), c_in, c_out, k, s, p, g, f.bool("bias", True))


@dataclass
class Conv1dOp(Op):
    weight: np.ndarray = None          # [O, C/groups, k], as the weight file holds it
    bias: np.ndarray = None
    weight2d: np.ndarray = None        # [O, C/groups, 1, k]
    weight_ev: object = None
    synaptic = True

    def forward(self, x, form="dense", batch=None):
        c: Conv1d = self.layer
        x4 = x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])
        if form == "event":
            y = K.conv2d_event(x4, self.weight_ev, self.bias, c.out_channels, 1, c.kernel_size, 1, c.stride, 0,
                               c.padding, c.groups)
        else:
            y = K.conv2d_dense(x4, self.weight2d, self.bias, 1, c.stride, 0, c.padding, c.groups, batch)
        return y.reshape(y.shape[0], y.shape[1], y.shape[3])

    def prices(self, batch):
        g = self.layer.as_conv2d()
        return conv_prices(batch, g["in_shape"], g["out_shape"], g["kernel_size"], g["stride"], self.layer.groups)

    def fanout_map(self):
        """Outputs reached from each input position, [C, 1, L] as the trace views the layer."""
        c: Conv1d = self.layer
        i = np.arange(c.in_shape[1])[:, None]
        j = np.arange(c.out_shape[1])[None, :]
        kk = i + c.padding - j * c.stride           # input i feeds output j when 0 <= i + p - j*s < k
        reach = ((kk >= 0) & (kk < c.kernel_size)).sum(axis=1) * (c.out_channels // c.groups)
        return np.broadcast_to(reach.astype(np.float32), (c.in_channels, 1, c.in_shape[1])).copy()

    def trace_view(self):
        g = self.layer.as_conv2d()
        geometry = dict(in_channels=self.layer.in_channels, out_channels=self.layer.out_channels,
                        kernel_size=list(g["kernel_size"]), stride=list(g["stride"]), padding=list(g["padding"]),
                        groups=self.layer.groups, bias=self.layer.bias, conv1d=True)
        return conv.KIND.name, g["in_shape"], g["out_shape"], geometry     # traced as the conv2d it runs as

    def error_bound(self, x, e, y):
        c = self.layer

        def abs_apply(v):
            v4 = np.ascontiguousarray(v, np.float32).reshape(v.shape[0], v.shape[1], 1, v.shape[2])
            a = self.__dict__.get("_abs_weight2d")
            if a is None:
                a = self.__dict__["_abs_weight2d"] = np.abs(self.weight2d)
            out = K.conv2d_dense(v4, a, EMPTY, 1, c.stride, 0, c.padding, c.groups)
            return out.reshape(out.shape[0], out.shape[1], out.shape[3])
        return synaptic_bound(self, x, e, y, abs_apply, int(np.prod(self.weight.shape[1:])))


def build(layer: Conv1d, w, ctx):
    weight, bias = w[f"{layer.name}.weight"], w.get(f"{layer.name}.bias", EMPTY)
    weight2d = np.ascontiguousarray(weight.reshape(weight.shape[0], weight.shape[1], 1, weight.shape[2]))
    return Conv1dOp(layer, (), weight, bias, weight2d, K.prepare_conv_event(weight2d, layer.groups))


# ----------------------------------------------------------------------------- training
class Conv1dNode(SynapticNode):
    """Forward: the engine's dense conv on the [C, 1, L] view. Backward: the conv2d gradients on that view."""

    def _weight2d(self, ctx):
        w = ctx.params[self.key("weight")]
        return np.ascontiguousarray(w.reshape(w.shape[0], w.shape[1], 1, w.shape[2]))

    def dense(self, x, w, b, events=None):
        """The conv of x [N, C, L] with given weights [O, C/groups, k] and bias."""
        c: Conv1d = self.layer
        y = K.conv2d_dense(x.reshape(x.shape[0], x.shape[1], 1, x.shape[2]),
                           np.ascontiguousarray(w.reshape(w.shape[0], w.shape[1], 1, w.shape[2])), b, 1, c.stride, 0,
                           c.padding, c.groups)
        return y.reshape(y.shape[0], y.shape[1], y.shape[3])

    def backward(self, g, ctx, need_gx):
        c: Conv1d = self.layer
        saved = ctx.take(self.name)
        x = saved["x"]
        g = np.ascontiguousarray(g)
        gw, gx = G.conv2d_backward(x.reshape(x.shape[0], x.shape[1], 1, x.shape[2]), self._weight2d(ctx),
                                   g.reshape(g.shape[0], g.shape[1], 1, g.shape[2]), 1, c.stride, 0, c.padding,
                                   c.groups, need_gx, saved.get("events"))
        ctx.add_grad(self.key("weight"), gw.reshape(gw.shape[0], gw.shape[1], gw.shape[3]))
        if c.bias:
            ctx.add_grad(self.key("bias"), G.channel_sum(g))
        return gx.reshape(x.shape) if need_gx else None


# ----------------------------------------------------------------------------- NIR (snnsim.nir)
def to_nir(op, ex, srcs: list[str]) -> list[str]:
    """NIR Conv1d (PyTorch's Conv1d; a zero bias when the layer has none)."""
    import nir

    c: Conv1d = op.layer
    bias = op.bias if op.bias.size else np.zeros(c.out_channels, np.float32)
    node = nir.Conv1d(input_shape=int(c.in_shape[1]), weight=np.ascontiguousarray(op.weight, np.float32),
                      stride=c.stride, padding=c.padding, dilation=1, groups=c.groups,
                      bias=np.ascontiguousarray(bias, np.float32))
    if c.groups != 1:   # NIR 1.0.8 takes the input channels from weight.shape[1] (= C_in/groups): correct it
        node.input_type = {"input": np.array(c.in_shape)}
        ex.notes.append(f"layer '{op.name}': grouped convolution; NIR 1.0.8's type check miscounts its input "
                        "channels, so other readers may need nir.read(..., type_check=False)")
    return ex.add(op.name, node, srcs)


def _nir_int(n, fld, v, imp, minimum):
    a = np.asarray(v).reshape(-1)
    if a.size != 1 or a.dtype.kind not in "iuf" or a[0] != np.round(a[0]) or a[0] < minimum:
        raise imp.err(n, f"'{fld}' must be an integer >= {minimum}, got {np.asarray(v).tolist()}")
    return int(a[0])


def from_nir(n, node, shape, imp):
    """NIR Conv1d (a 'same' padding becomes the symmetric pad; an all-zero bias is dropped)."""
    w = conv.nir_weight(n, node, shape, imp, "k", "C, L")
    c_out, c_in_g, k = (int(s) for s in w.shape)
    groups = _nir_int(n, "groups", node.groups, imp, 1)
    if c_in_g * groups != shape[0]:
        raise imp.err(n, f"weight expects {c_in_g * groups} input channels (groups={groups}) but its input has "
                         f"{shape[0]}")
    if node.input_shape is not None and np.asarray(node.input_shape).reshape(-1).tolist() != [shape[1]]:
        raise imp.err(n, f"input_shape {np.asarray(node.input_shape).tolist()} does not match its input length "
                         f"{shape[1]}")
    if _nir_int(n, "dilation", node.dilation, imp, 1) != 1:
        raise imp.err(n, "dilation other than 1 is not supported by snnsim")
    stride = _nir_int(n, "stride", node.stride, imp, 1)
    pad = node.padding.decode() if isinstance(node.padding, bytes) else node.padding
    if not isinstance(pad, str):
        pad = _nir_int(n, "padding", pad, imp, 0)
    elif pad == "same":
        if stride != 1 or k % 2 == 0:
            raise imp.err(n, "padding 'same' needs stride 1 and an odd kernel to be symmetric")
        pad = k // 2
    elif pad == "valid":
        pad = 0
    else:
        raise imp.err(n, f"padding {pad!r} is not 'same', 'valid' or an integer")
    if pad * 2 > k:
        raise imp.err(n, f"padding {pad} is more than half the kernel {k}")
    b, has_bias = conv.nir_bias(n, node, c_out, imp)
    length = (shape[1] + 2 * pad - k) // stride + 1
    if length < 1:
        raise imp.err(n, f"kernel {k} does not fit its input length {shape[1]}")
    fields = {"type": "conv1d", "out_channels": c_out, "kernel_size": k, "stride": stride, "padding": pad}
    return [conv.imported_conv(n, imp, fields, groups, w, b, has_bias)], (c_out, length)


# ----------------------------------------------------------------------------- importer (torch_import)
def from_torch(m, imp):
    """torch.nn.Conv1d (zero padding, dilation 1; padding='same' with stride 1 and an odd kernel)."""
    (k,), (s,), pad = m.kernel_size, m.stride, m.padding
    if tuple(m.dilation) != (1,) or m.padding_mode != "zeros":
        raise imp.refuse("snnsim convolutions have dilation 1 and zero padding")
    if isinstance(pad, str):
        if pad != "valid" and (s != 1 or k % 2 == 0):
            raise imp.refuse("padding='same' needs stride 1 and an odd kernel in snnsim")
        pad = (0,) if pad == "valid" else (k // 2,)
    return [imp.layer("conv1d", imp.params("weight", "bias"), out_channels=m.out_channels, kernel_size=k, stride=s,
                      padding=pad[0], groups=m.groups, bias=m.bias is not None)]


KIND = register(Kind("conv1d", ("conv1d",), Conv1d, parse, build, train_node=lambda layer, cfg_for: Conv1dNode(layer),
                     nir_export=to_nir, nir_nodes=("Conv1d",), from_nir=from_nir,
                     torch_modules=("Conv1d",), from_torch=from_torch,
                     examples=({"input_shape": [2, 8], "layers": [{"type": "conv1d", "out_channels": 4, "kernel_size": 3,
                                                                    "padding": 1}]},)))
