"""Layer kinds of the reversible execution regimes (RevSNN blocks, T-RevSNN networks), outside the core spec module.

YAML types parsed here (hooked into ``snnsim.spec`` and ``snnsim.network``):

  scaled_std_conv2d  conv2d whose weight is standardised per output channel before use (timm's
                     ``ScaledStdConv2d``, used by T-RevSNN for every point-wise conv, the stem and the heads):
                       W_hat[o] = gain[o] * gamma * fan_in^-1/2 * (W[o] - mean(W[o])) / sqrt(var(W[o]) + eps)
                     with the biased variance over the fan-in, eps 1e-6, gamma 1. Weight keys ``weight``,
                     ``bias``, ``gain`` [O, 1, 1, 1]. W_hat is computed once at load from the raw weights (float64,
                     rounded once to float32). It is traced as a 'conv2d' with ``standardize: true`` in its geometry.
  upsample           nearest-neighbour upsampling by an integer ``scale_factor`` (PyTorch nn.Upsample 'nearest').
  layer_scale        per-channel scale y = x * gamma, weight key ``<name>.gamma`` of shape [1, C, 1, 1]
                     (ConvNeXt / T-RevSNN layer scale); ``key:`` overrides the full weight key.
  reversible         RevSNN's reversible block over channel halves: y1 = x1 + F(x2), y2 = x2 + G(y1), with
                     ``f`` and ``g`` layer lists whose neurons keep their state across timesteps. Children are
                     named ``<name>.f_block.<child>`` and ``<name>.g_block.<child>`` (revtorch's attribute names;
                     ``f_prefix``/``g_prefix`` change them). Runtime and inverse: ``snnsim.reversible``.
  trevsnn            a whole T-RevSNN network (columns, levels, heads); see ``snnsim.trev``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels as K
from .errors import SpecError, WeightError
from .network import Op
from .spec import Conv2d, Layer, Neuron, Shape, _parse_conv2d, _parse_layers, walk


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True)
class ExtConv2d(Conv2d):
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

    def param_shapes(self):
        p = super().param_shapes()
        if self.standardize:
            p["gain"] = (self.out_channels, 1, 1, 1)
        return p

    def own_params(self) -> int:
        return 0 if self.shared_from else sum(int(np.prod(s)) for s in self.param_shapes().values())

    def build_op(self, w: dict, fold: bool, build):
        from .network import EMPTY, ConvOp

        weight = w[f"{self.name}.weight"]
        bias = w.get(f"{self.name}.bias", EMPTY)
        if self.shared_from:
            for p in self.param_shapes():
                a, b = w[f"{self.name}.{p}"], w[f"{self.shared_from}.{p}"]
                if not np.array_equal(a, b):
                    raise WeightError(f"key '{self.name}.{p}' differs from '{self.shared_from}.{p}': the module is "
                                      "shared across columns (one parameter in the PyTorch model), so both keys "
                                      "must hold the same array")
        if self.standardize:
            weight = standardize_weight(weight, w[f"{self.name}.gain"], self.eps, self.gamma)
        return ConvOp(self, (), weight, bias, K.prepare_conv_event(weight, self.groups))


@dataclass(frozen=True)
class Upsample(Layer):
    scale_factor: int = 2
    kind = "upsample"

    def build_op(self, w, fold, build):
        return UpsampleOp(self)


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

    def build_op(self, w, fold, build):
        return LayerScaleOp(self, (), w[self.weight_key].reshape(self.in_shape[0], *([1] * (len(self.in_shape) - 1))))


@dataclass(frozen=True)
class Reversible(Layer):
    f: tuple[Layer, ...] = ()
    g: tuple[Layer, ...] = ()
    kind = "reversible"

    def sublayers(self):
        return self.f + self.g

    @property
    def stateful(self) -> bool:
        return any(layer.stateful for layer in walk(self.f + self.g))

    state_words = 0        # its neurons (listed as sublayers) hold the state, not the block

    def build_op(self, w, fold, build):
        from .reversible import ReversibleOp

        return ReversibleOp(self, (), build(self.f, w, fold), build(self.g, w, fold))


# ----------------------------------------------------------------------------- ops
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


@dataclass
class UpsampleOp(Op):
    def forward(self, x, form="dense"):
        return K.upsample_nearest2d(np.ascontiguousarray(x), int(self.layer.scale_factor))


@dataclass
class LayerScaleOp(Op):
    gamma: np.ndarray = None      # [C, 1, 1] (broadcast over the batch)

    def forward(self, x, form="dense"):
        return (x * self.gamma).astype(np.float32, copy=False)


# ----------------------------------------------------------------------------- parsers
KINDS = ("scaled_std_conv2d", "upsample", "layer_scale", "reversible", "trevsnn")


def parse_extra(f, kind: str, name: str, shape: Shape, defaults: dict, names: set):
    """Parse one of this module's layer types; None if ``kind`` is not one of them."""
    if kind == "scaled_std_conv2d":
        base = _parse_conv2d(f, name, shape)
        eps = f.float("eps", 1e-6, positive=True)
        gamma = f.float("gamma", 1.0, positive=True)
        return ExtConv2d(**{k: getattr(base, k) for k in base.__dataclass_fields__}, standardize=True, eps=eps,
                         gamma=gamma)
    if kind == "upsample":
        if len(shape) != 3:
            raise SpecError(f.path, f"upsample needs a [C, H, W] input, got shape {list(shape)}", f.source)
        s = f.int("scale_factor", 2)
        f.str("mode", "nearest", choices=("nearest",))
        return Upsample(name, shape, (shape[0], shape[1] * s, shape[2] * s), s)
    if kind == "layer_scale":
        if len(shape) < 1:
            raise SpecError(f.path, "layer_scale needs a [C, ...] input", f.source)
        key = f.str("key", "")
        return LayerScale(name, shape, shape, key)
    if kind == "reversible":
        if len(shape) < 1 or shape[0] % 2:
            raise SpecError(f.path, f"a reversible block splits its input into two channel halves; got shape "
                                    f"{list(shape)} (the channel count must be even)", f.source)
        half = (shape[0] // 2,) + tuple(shape[1:])
        fp = f.str("f_prefix", "f_block")
        gp = f.str("g_prefix", "g_block")
        fl, f_out = _parse_layers(f.get("f", required=True), f"{f.path}.f", half, f"{name}.{fp}.", defaults,
                                  f.source, names)
        gl, g_out = _parse_layers(f.get("g", required=True), f"{f.path}.g", half, f"{name}.{gp}.", defaults,
                                  f.source, names)
        for what, out in (("f", f_out), ("g", g_out)):
            if tuple(out) != half:
                raise f.err(what, f"gives shape {list(out)} but must keep its input shape {list(half)} "
                                  "(y1 = x1 + F(x2), y2 = x2 + G(y1))")
        return Reversible(name, shape, shape, fl, gl)
    if kind == "trevsnn":
        from .trev import parse_trevsnn
        return parse_trevsnn(f, name, shape, names)
    return None


# ----------------------------------------------------------------------------- random weights
def random_weights(spec, seed: int = 0) -> dict:
    """``snnsim.weights.random_weights`` plus sensible values for the parameters it does not know: gains of
    standardised convs 1, layer scales 1, shared modules equal to their first copy, T-RevSNN's alphas and heads
    (``snnsim.trev.random_weights``)."""
    from .weights import random_weights as base

    if any(layer.kind == "trevsnn" for layer in spec.layers):
        from .trev import random_weights as trev_random
        return trev_random(spec, seed)
    w = base(spec, seed)
    rng = np.random.default_rng([seed, 1])
    for layer in walk(spec.layers):
        if isinstance(layer, ExtConv2d):
            if layer.standardize:
                w[f"{layer.name}.gain"] = np.ones((layer.out_channels, 1, 1, 1), np.float32)
                if layer.bias:
                    w[f"{layer.name}.bias"] = rng.uniform(-0.1, 0.1, layer.out_channels).astype(np.float32)
        elif isinstance(layer, LayerScale):
            w[layer.weight_key] = np.ones(layer.gamma_shape, np.float32)
    for layer in walk(spec.layers):
        if isinstance(layer, ExtConv2d) and layer.shared_from:
            for p in layer.param_shapes():
                w[f"{layer.name}.{p}"] = w[f"{layer.shared_from}.{p}"].copy()
    return w


def quant_neuron(name: str, shape: Shape) -> Neuron:
    """T-RevSNN's turned-off spike (``Quant`` at eval): round(clip(x, 0, 1)), i.e. spike where x > 0.5
    (round half to even sends 0.5 to 0); no state."""
    return Neuron(name, shape, shape, neuron="threshold", v_threshold=0.5, v_reset=0.0, spike_rule="gt",
                  stateless=True, clip=(0.0, 1.0))
