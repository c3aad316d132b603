"""A runnable network: the spec's layers bound to their checked float32 parameters.

Each layer becomes an op that owns its maths (calling the Numba kernels) but no state: the engine
owns the time loop and the membrane arrays. Batch norm that directly follows a linear or conv layer
is folded into it at build time (w' = w * g / sqrt(var + eps), b' = (b - mean) * g / sqrt(var + eps) + beta,
computed in float64 and rounded once to float32), unless the spec says ``fold_batchnorm: false``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import kernels as K
from .kernels.cost import event_limit_conv, event_limit_linear
from . import neurons
from .spec import BatchNorm, Conv2d, Dropout, Flatten, Layer, Linear, NetworkSpec, Neuron, Pool2d, Residual, Scale
from .weights import check_finite

EMPTY = np.zeros(0, np.float32)


@dataclass
class Op:
    layer: Layer
    synaptic = False
    folded: tuple[str, ...] = ()     # names of layers folded into this op (batch norm)

    @property
    def name(self) -> str:
        return self.layer.name

    def forward(self, x: np.ndarray, form: str = "dense") -> np.ndarray:
        raise NotImplementedError


@dataclass
class LinearOp(Op):
    weight: np.ndarray = None
    bias: np.ndarray = None
    weight_t: np.ndarray = None
    synaptic = True

    def forward(self, x, form="dense"):
        if form == "event":
            return K.linear_event(x, self.weight_t, self.bias)
        return K.linear_dense(x, self.weight, self.bias)


@dataclass
class ConvOp(Op):
    weight: np.ndarray = None
    bias: np.ndarray = None
    weight_ev: object = None
    synaptic = True

    def forward(self, x, form="dense"):
        c: Conv2d = self.layer
        (sh, sw), (ph, pw) = c.stride, c.padding
        if form == "event":
            return K.conv2d_event(x, self.weight_ev, self.bias, c.out_channels, c.kernel_size[0],
                                  c.kernel_size[1], sh, sw, ph, pw, c.groups)
        return K.conv2d_dense(x, self.weight, self.bias, sh, sw, ph, pw, c.groups)


@dataclass
class AffineOp(Op):
    """Batch norm in inference form, y = x * scale + shift per channel (PyTorch's CPU order)."""

    scale: np.ndarray = None
    shift: np.ndarray = None

    def forward(self, x, form="dense"):
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return (x * self.scale.reshape(shape) + self.shift.reshape(shape)).astype(np.float32, copy=False)


@dataclass
class PoolOp(Op):
    def forward(self, x, form="dense"):
        p: Pool2d = self.layer
        fn = K.avgpool2d if p.op == "avg" else K.maxpool2d if p.op == "max" else sumpool2d
        return fn(x, p.kernel_size[0], p.kernel_size[1], p.stride[0], p.stride[1], p.padding[0], p.padding[1])


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
class ScaleOp(Op):
    """y = x * scale, elementwise (NIR Scale)."""

    scale: np.ndarray = None

    def forward(self, x, form="dense"):
        return (x * self.scale).astype(np.float32, copy=False)


@dataclass
class ReshapeOp(Op):
    def forward(self, x, form="dense"):
        return np.ascontiguousarray(x.reshape((x.shape[0],) + self.layer.out_shape))


@dataclass
class IdentityOp(Op):
    def forward(self, x, form="dense"):
        return x


@dataclass
class NeuronOp(Op):
    params: neurons.NeuronParams = None


@dataclass
class ResidualOp(Op):
    body: list = field(default_factory=list)
    shortcut: list = field(default_factory=list)


@dataclass
class Network:
    spec: NetworkSpec
    ops: list
    weights: dict

    @property
    def name(self) -> str:
        return self.spec.name

    def neuron_ops(self):
        return [op for op in walk_ops(self.ops) if isinstance(op, NeuronOp)]


def walk_ops(ops):
    for op in ops:
        yield op
        if isinstance(op, ResidualOp):
            yield from walk_ops(op.body)
            yield from walk_ops(op.shortcut)
        elif hasattr(op, "children"):       # reversible / T-RevSNN ops (snnsim.reversible, snnsim.trev)
            for sub in op.children():
                yield from walk_ops(sub)


def _bn_scale_shift(bn: BatchNorm, w: dict):
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


def _fold(layer, weight, bias, bn: BatchNorm, w: dict):
    """Fold a batch norm into the preceding linear/conv, in float64, rounded once to float32."""
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


def _event_limit(op: Op, size: int) -> float | None:
    """Nonzero inputs below which the op's event form is cheaper (snnsim/kernels/cost.py), per batch size."""
    per_sample = int(np.prod(op.layer.in_shape))
    B = size // per_sample if per_sample else 0
    limits = op.__dict__.setdefault("_event_limits", {})
    if B not in limits:
        c = op.layer
        if isinstance(op, LinearOp):
            limits[B] = event_limit_linear(B, c.in_features, c.out_features)
        elif isinstance(op, ConvOp):
            limits[B] = event_limit_conv(B, c.in_shape, c.out_shape, c.kernel_size, c.stride, c.groups)
        else:
            limits[B] = None
    return limits[B]


def kernel_form(op: Op, nonzero: int, size: int, threshold: float | None) -> str:
    """'event' or 'dense' for one layer and timestep. With a threshold (the user's event_threshold):
    'event' when the input's density is below it. Without: whichever form the cost model prices lower
    for this layer's shape and batch at this many nonzero inputs (snnsim/kernels/cost.py)."""
    if threshold is None:
        limit = _event_limit(op, size)
        if limit is not None:
            return "event" if nonzero < limit else "dense"
        threshold = K.DEFAULT_EVENT_THRESHOLD
    return "event" if nonzero < threshold * size else "dense"


def _synaptic_op(layer, weight, bias, folded=()):
    if isinstance(layer, Linear):
        return LinearOp(layer, folded, weight, bias, K.prepare_linear_event(weight))
    return ConvOp(layer, folded, weight, bias, K.prepare_conv_event(weight, layer.groups))


def _build(layers, w: dict, fold: bool) -> list:
    ops = []
    i = 0
    while i < len(layers):
        layer = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if hasattr(layer, "build_op"):      # layer kinds of snnsim.layers_extra build their own op
            ops.append(layer.build_op(w, fold, _build))
        elif isinstance(layer, (Linear, Conv2d)):
            weight = w[f"{layer.name}.weight"]
            bias = w.get(f"{layer.name}.bias", EMPTY)
            if fold and isinstance(nxt, BatchNorm):
                weight, bias = _fold(layer, weight, bias, nxt, w)
                ops.append(_synaptic_op(layer, weight, bias, (nxt.name,)))
                i += 2
                continue
            ops.append(_synaptic_op(layer, weight, bias))
        elif isinstance(layer, BatchNorm):
            scale, shift = _bn_scale_shift(layer, w)
            ops.append(AffineOp(layer, (), scale, shift))
        elif isinstance(layer, Pool2d):
            ops.append(PoolOp(layer))
        elif isinstance(layer, Flatten):
            ops.append(ReshapeOp(layer))
        elif isinstance(layer, Scale):
            ops.append(ScaleOp(layer, (), w[f"{layer.name}.scale"]))
        elif isinstance(layer, Dropout):
            ops.append(IdentityOp(layer))
        elif isinstance(layer, Neuron):
            ops.append(NeuronOp(layer, (), neurons.neuron_params(layer, w.get(f"{layer.name}.w"))))
        elif isinstance(layer, Residual):
            ops.append(ResidualOp(layer, (), _build(layer.body, w, fold), _build(layer.shortcut, w, fold)))
        else:  # pragma: no cover - the spec parser admits no other kind
            raise TypeError(f"no op for layer kind {layer.kind}")
        i += 1
    return ops


def build_network(spec: NetworkSpec, weights: dict) -> Network:
    """Bind checked weights (see ``snnsim.weights.check_weights``) to the spec's layers."""
    return Network(spec, _build(spec.layers, weights, spec.fold_batchnorm), weights)


def spiking_layers(net) -> list[str]:
    """Names of the spiking neuron layers of a built network (the probes NeuroBench's convention needs)."""
    return [op.name for op in walk_ops(net.ops) if isinstance(op, NeuronOp) and op.layer.spiking]


def check_nonzero_weights(net) -> list[str]:
    """Layers with weights exactly 0 (NeuroBench skips them, hwmodel's counts do not)."""
    return [op.name for op in walk_ops(net.ops) if getattr(op, "weight", None) is not None
            and not np.all(op.weight != 0)]
