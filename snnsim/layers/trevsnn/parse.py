"""The YAML parser of a T-RevSNN network, which lays out every sub-layer under the official state_dict names
(github.com/BICLab/T-RevSNN, models/spike_rev_reuse.py) out of other kinds' records, and its seeded weights."""

from __future__ import annotations

import math

import numpy as np

from ...errors import SpecError
from ...limits import over
from ...spec import Shape, walk
from ..batchnorm import BatchNorm
from ..conv import Conv2d, ScaledStdConv2d, conv_out
from ..neuron import quant_neuron
from ..pool import Pool2d
from ..reshape import Flatten, Upsample
from ..residual import Residual
from ..scale import LayerScale
from .records import TLevel, TRevSNN, TRevState, trev_layer


# ----------------------------------------------------------------------------- parsing
def _ints(f, key, default, n=None, minimum=1):
    v = f.get(key, default)
    if (not isinstance(v, list) or not v or (n is not None and len(v) != n)
            or not all(isinstance(e, int) and not isinstance(e, bool) and e >= minimum for e in v)):
        what = f"a list of {n} " if n else "a list of "
        raise f.err(key, f"expected {what}integers >= {minimum}, got {v!r}")
    return tuple(v)


def parse(f, type_name: str, name: str, shape: Shape, ctx) -> TRevSNN:
    if ctx.names != {name}:
        raise SpecError(f.path, "a 'trevsnn' layer is a whole network: it must be the only entry of 'layers'",
                        f.source)
    if len(shape) != 3:
        raise SpecError(f.path, f"trevsnn needs a [C, H, W] image input, got shape {list(shape)}", f.source)
    T = f.int("columns", required=True, maximum="timesteps")
    channels = _ints(f, "channels", None)
    L = len(channels)
    strides = _ints(f, "strides", [1, 2, 2, 1][:L] if L <= 4 else None, L)
    if strides[0] != 1:
        raise f.err("strides", "level 0 takes the stem output as is (identity down path); its stride must be 1")
    if any(s not in (1, 2) for s in strides):
        raise f.err("strides", f"each level stride must be 1 (1x1 conv) or 2 (3x3 conv, stride 2), got {list(strides)}")
    k = f.int("kernel_size", 3)
    if k % 2 == 0:
        raise f.err("kernel_size", f"the depth-wise kernel must be odd (padding k // 2 keeps the size), got {k}")
    ratio = f.int("hidden_ratio", 4)
    fusion = f.bool("fusion", True)
    heads = f.int("heads", 4, minimum=0)
    classes = f.int("classes", required=True)
    if heads and T % heads:
        raise f.err("heads", f"{heads} heads need the column count ({T}) to be a multiple of it (a head after "
                             "every T/heads-th column, as the official code's 'interval')")
    stem_raw = f.get("stem", [{"kernel_size": 7, "stride": 2}, {"kernel_size": 3, "stride": 2}])
    if not isinstance(stem_raw, list) or not stem_raw:
        raise f.err("stem", "expected a list of {kernel_size, stride[, padding]} convs")
    stem_spec = []
    for i, s in enumerate(stem_raw):
        if not isinstance(s, dict) or set(s) - {"kernel_size", "stride", "padding"}:
            raise f.err(f"stem[{i}]", "expected a mapping with kernel_size, stride and optional padding")
        kk, ss = s.get("kernel_size"), s.get("stride", 1)
        pp = s.get("padding", kk // 2 if isinstance(kk, int) else 0)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (kk, ss, pp)) or kk < 1 or ss < 1 or pp < 0:
            raise f.err(f"stem[{i}]", f"expected positive integers, got {s!r}")
        stem_spec.append((kk, ss, pp))

    def conv_hw(hw, kk, ss, pp, where):
        return conv_out(_Where(f, where), hw, (kk, kk), (ss, ss), (pp, pp))

    # stem: ScaledStdConv2d layers 'stem.down<i>.0' (the official MS_PatchEmbed's LeakyReLU(act_learn=1) between
    # them is the identity: docs/papers.md, T-RevSNN released-code details)
    stem = []
    cur = tuple(shape)
    for i, (kk, ss, pp) in enumerate(stem_spec):
        hw = conv_hw(cur[1:], kk, ss, pp, "stem")
        stem.append(_std_conv(f"stem.down{i + 1}.0", cur, channels[0], kk, ss, pp))
        cur = (channels[0],) + hw
    shapes = [cur]
    for l in range(1, L):
        kk, pp = (3, 1) if strides[l] == 2 else (1, 0)
        hw = conv_hw(shapes[-1][1:], kk, strides[l], pp, "strides")
        shapes.append((channels[l],) + hw)
    for l in range(L - 1):
        if strides[l + 1] == 2 and (shapes[l + 1][1] * 2, shapes[l + 1][2] * 2) != shapes[l][1:]:
            raise f.err("strides", f"level {l + 1} ({shapes[l + 1][1]}x{shapes[l + 1][2]}) upsampled x2 does not "
                                   f"match level {l} ({shapes[l][1]}x{shapes[l][2]}); use an input size divisible "
                                   "by the total stride")
    at_least = T * L * 3                  # each column and level: two blocks and a state, before their children
    if over("layers", at_least):
        raise f.err("columns", f"{T} columns of {L} levels make at least {at_least:,} layers: "
                               f"{over('layers', at_least)}")
    levels = []
    for t in range(T):
        col = []
        for l in range(L):
            p = f"subnet{t}.level{l}"
            c, h, w_ = shapes[l]
            down = ()
            if l > 0:
                kk, pp = (3, 1) if strides[l] == 2 else (1, 0)
                down = _down_up(f"{p}.fusion.down", shapes[l - 1], shapes[l], kk, strides[l], pp, 1)
            up = ()
            if t > 0 and fusion and l < L - 1:
                up = _down_up(f"{p}.fusion.up", shapes[l + 1], shapes[l], 1, 1, 0, strides[l + 1])
            blocks = (_block(f"{p}.blocks.0", shapes[l], k, ratio, gamma=True),
                      _block(f"{p}.blocks.1", shapes[l], k, ratio, gamma=False,
                             shared=f"subnet0.level{l}.blocks.1" if t > 0 else ""))
            state = TRevState(f"subnet{t}.c{l}", shapes[l], shapes[l], t, l, f"subnet{t}.alpha{l}")
            col.append(TLevel(down, up, blocks, state))
        levels.append(tuple(col))
    head_layers = []
    top = shapes[-1]
    if heads:
        interval = T // heads
        for i in range(T):
            if (i + 1) % interval == 0:
                kidx = i // interval
                head_layers.append((i, _head(f"cls_blocks.{kidx}", top, classes, spiking=kidx == heads - 1)))
    else:
        head_layers.append((T - 1, _head("cls_blocks", top, classes, spiking=True)))
    return TRevSNN(name, tuple(shape), (classes,), T, channels, strides, k, ratio, tuple(stem_spec), fusion, heads,
                   classes, tuple(shapes), tuple(stem), tuple(levels), tuple(head_layers))


class _Where:
    """Lets conv_out report errors at a trevsnn sub-field."""

    def __init__(self, f, key):
        self.f, self.key = f, key

    def err(self, _key, msg):
        return self.f.err(self.key, msg)


def _std_conv(name, in_shape, out_c, k, s, p, groups=1, shared="") -> ScaledStdConv2d:
    c, h, w = in_shape
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    return ScaledStdConv2d(name, tuple(in_shape), (out_c, ho, wo), c, out_c, (k, k), (s, s), (p, p), groups, True,
                     standardize=True, shared_from=shared)


def _dw_conv(name, shape, k, shared="") -> ScaledStdConv2d:
    c = shape[0]
    return ScaledStdConv2d(name, tuple(shape), tuple(shape), c, c, (k, k), (1, 1), (k // 2, k // 2), c, True,
                     standardize=False, shared_from=shared)


def _down_up(p, in_shape, out_shape, k, s, pad, up) -> tuple:
    c_in, h, w = in_shape
    c_out = out_shape[0]
    ho, wo = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
    mid = (c_out, ho, wo)
    layers = [quant_neuron(f"{p}.quant", tuple(in_shape)),
              Conv2d(f"{p}.encode_conv", tuple(in_shape), mid, c_in, c_out, (k, k), (s, s), (pad, pad), 1, False),
              BatchNorm(f"{p}.encode_bn", mid, mid, c_out)]
    if up > 1:
        layers.append(Upsample(f"{p}.upsample", mid, (c_out, ho * up, wo * up), up))
    return tuple(layers)


def _block(p, shape, k, ratio, gamma: bool, shared: str = "") -> Residual:
    c, h, w = shape
    hid = (c * ratio, h, w)
    pw2, dw2 = ("pwconv2", "dwconv2") if gamma else ("pwconv2_reuse", "dwconv2_reuse")
    body = [quant_neuron(f"{p}.quant1", shape), _dw_conv(f"{p}.dwconv1", shape, k),
            _std_conv(f"{p}.pwconv1", shape, c * ratio, 1, 1, 0),
            quant_neuron(f"{p}.quant2", hid),
            _std_conv(f"{p}.{pw2}", hid, c, 1, 1, 0, shared=f"{shared}.{pw2}" if shared else ""),
            _dw_conv(f"{p}.{dw2}", shape, k, shared=f"{shared}.{dw2}" if shared else "")]
    if gamma:
        body.append(LayerScale(f"{p}.gamma", tuple(shape), tuple(shape), f"{p}.gamma"))
    return Residual(p, tuple(shape), tuple(shape), tuple(body), ())


def _head(p, shape, classes, spiking: bool) -> tuple:
    c, h, w = shape
    pooled = (c, 1, 1)
    pool = Pool2d(f"{p}.pool", tuple(shape), pooled, "avg", (h, w), (h, w), (0, 0))
    if not spiking:      # Classifier: GAP of the real-valued c -> ScaledStdConv 1x1
        return (pool, _std_conv(f"{p}.classifier.0", pooled, classes, 1, 1, 0),
                Flatten(f"{p}.flatten", (classes, 1, 1), (classes,)))
    # SpikeClassifier: Quant -> GAP -> ScaledStdConv -> LeakyReLU(slope 1) = identity -> ScaledStdConv
    return (quant_neuron(f"{p}.quant", tuple(shape)), pool, _std_conv(f"{p}.classifier1.0", pooled, classes, 1, 1, 0),
            _std_conv(f"{p}.classifier2", (classes, 1, 1), classes, 1, 1, 0),
            Flatten(f"{p}.flatten", (classes, 1, 1), (classes,)))


# ----------------------------------------------------------------------------- seeded weights
def init_network(spec, seed: int = 0) -> dict:
    """Seeded weights for a T-RevSNN network (hardware studies, tests): standardised convs with gain 1,
    depth-wise convs and biases small, batch-norm statistics random, alpha per channel and column in
    [0.3, 0.8] (official init 0.5), layer scale 1 (official init), shared modules equal in every column."""
    layer = trev_layer(spec)
    rng = np.random.default_rng(seed)
    w = {}
    for key, shape in spec.param_shapes().items():
        name, p = key.rsplit(".", 1)
        if p.startswith("alpha"):
            w[key] = rng.uniform(0.3, 0.8, shape).astype(np.float32)
        elif p == "gamma":
            w[key] = np.ones(shape, np.float32)
        elif p == "gain":
            w[key] = np.ones(shape, np.float32)
        elif p in ("running_mean",):
            w[key] = rng.uniform(-0.3, 0.3, shape).astype(np.float32)
        elif p == "running_var":
            w[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif p == "weight" and f"{name}.running_mean" in spec.param_shapes():
            w[key] = rng.uniform(0.6, 1.2, shape).astype(np.float32)
        elif p == "bias" and f"{name}.running_mean" in spec.param_shapes():
            w[key] = rng.uniform(0.0, 0.4, shape).astype(np.float32)
        elif p == "weight":
            fan_in = int(np.prod(shape[1:]))
            bound = math.sqrt(3.0 / fan_in) * (1.2 if shape[1] == 1 else 1.0)
            w[key] = rng.uniform(-bound, bound, shape).astype(np.float32)
        elif p == "bias":
            w[key] = rng.uniform(0.0, 0.3, shape).astype(np.float32)
        else:  # pragma: no cover
            w[key] = np.zeros(shape, np.float32)
    for sub in walk([layer]):
        if getattr(sub, "shared_from", ""):       # a module reused by later columns: the same values
            for p in sub.param_shapes():
                w[f"{sub.name}.{p}"] = w[f"{sub.shared_from}.{p}"].copy()
    return w
