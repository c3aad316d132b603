"""Network specification: YAML in, small typed records out, validated once.

A spec is parsed into frozen dataclasses (one per layer kind, in the spirit of NIR's node records).
Every per-sample tensor shape is inferred here, so a mismatch between consecutive layers is reported
at load time with the YAML path of the offending field, before any weights are read or anything runs.

Layer records carry only structure and hyper-parameters; the arrays live in ``snnsim.weights``.
The weight key of a parameter is ``<full layer name>.<param>`` with PyTorch names, where the full name
of a layer nested in a residual block is ``<block name>.<child name>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


from .errors import SpecError
from .limits import over

Shape = tuple[int, ...]

NEURON_KINDS = ("if", "lif", "plif", "li", "threshold")
ENCODINGS = ("direct", "rate", "events")


# ----------------------------------------------------------------------------- layer records
@dataclass(frozen=True)
class Layer:
    name: str            # full dotted name: the weight-key prefix
    in_shape: Shape      # per-sample shape of the input
    out_shape: Shape     # per-sample shape of the output

    kind = "layer"

    def param_shapes(self) -> dict[str, Shape]:
        """PyTorch state_dict shapes of this layer's parameters (without the name prefix)."""
        return {}

    @property
    def stateful(self) -> bool:
        """True when the layer keeps state from one timestep to the next."""
        return False


@dataclass(frozen=True)
class Linear(Layer):
    in_features: int = 0
    out_features: int = 0
    bias: bool = True
    kind = "linear"

    def param_shapes(self):
        p = {"weight": (self.out_features, self.in_features)}
        if self.bias:
            p["bias"] = (self.out_features,)
        return p


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

    def param_shapes(self):
        p = {"weight": (self.out_channels, self.in_channels // self.groups, *self.kernel_size)}
        if self.bias:
            p["bias"] = (self.out_channels,)
        return p


@dataclass(frozen=True)
class BatchNorm(Layer):
    num_features: int = 0
    eps: float = 1e-5
    affine: bool = True
    kind = "batchnorm"

    def param_shapes(self):
        n = (self.num_features,)
        p = {"running_mean": n, "running_var": n}
        if self.affine:
            p.update(weight=n, bias=n)
        return p


@dataclass(frozen=True)
class Pool2d(Layer):
    op: str = "avg"      # avg | max | sum (sum: NIR SumPool2d, the window sum)
    kernel_size: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    padding: tuple[int, int] = (0, 0)
    kind = "pool2d"


@dataclass(frozen=True)
class Flatten(Layer):
    kind = "flatten"


@dataclass(frozen=True)
class Scale(Layer):
    """Elementwise product y = x * scale (NIR's Scale node); weight key ``<name>.scale``, the input's shape."""

    kind = "scale"

    def param_shapes(self):
        return {"scale": self.in_shape}


@dataclass(frozen=True)
class Dropout(Layer):
    p: float = 0.5
    kind = "dropout"


@dataclass(frozen=True)
class Neuron(Layer):
    """A spiking (or leaky-integrating) neuron layer, one neuron per element of its input.

    Equations (SpikingJelly 2.0, docs/neurons.md), with v_r = v_reset or 0 for subtract reset:
      lif:  H = v + (x - (v - v_r)) / tau            (decay_input)
            H = v - (v - v_r) / tau + x              (not decay_input)
      plif: as lif with 1/tau replaced by k = sigmoid(w), w learnable (weight key ``<name>.w``)
      if:   H = v + x
      li:   H as lif, no spike: the output is H (non-spiking readout)
      threshold: H = x, stateless by definition (T-RevSNN's turned-off neuron), optional clip first
      spike S = H >= v_threshold ('ge') or H > v_threshold ('gt')
      hard reset: v = S * v_reset + (1 - S) * H;  subtract reset (v_reset null): v = H - S * v_threshold
      ``reset_delay`` (subtract reset only; snnTorch's default ``Leaky``): v = H and the threshold comes off
            one step later, undecayed: H[t] = charge(H[t-1], x[t]) - v_threshold * S[t-1]
    ``stateless`` clears v to its initial value before every timestep.
    """

    neuron: str = "lif"
    tau: float = 2.0
    decay_input: bool = True
    v_threshold: float = 1.0
    v_reset: float | None = 0.0
    spike_rule: str = "ge"
    stateless: bool = False
    clip: tuple[float, float] | None = None
    reset_delay: bool = False
    kind = "neuron"

    def param_shapes(self):
        return {"w": ()} if self.neuron == "plif" else {}

    @property
    def stateful(self) -> bool:
        return not self.stateless and self.neuron != "threshold"

    @property
    def spiking(self) -> bool:
        return self.neuron != "li"


@dataclass(frozen=True)
class Residual(Layer):
    """out = body(x) + shortcut(x); an empty shortcut is the identity (SEW-/MS-ResNet blocks)."""

    body: tuple[Layer, ...] = ()
    shortcut: tuple[Layer, ...] = ()
    kind = "residual"

    @property
    def stateful(self) -> bool:
        return any(layer.stateful for layer in walk(self.body + self.shortcut))


@dataclass(frozen=True)
class Readout:
    reduce: str = "mean"       # mean | last   (over timesteps)
    source: str = "output"     # output | membrane  (of the last layer)


@dataclass(frozen=True)
class Encoding:
    kind: str = "direct"       # direct | rate | events
    seed: int = 0              # rate coding only
    gain: float = 1.0          # rate coding: spike probability = clip(gain * x, 0, 1)


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    input_shape: Shape
    layers: tuple[Layer, ...]
    timesteps: int = 4
    encoding: Encoding = field(default_factory=Encoding)
    readout: Readout = field(default_factory=Readout)
    weight_prefix: str = ""
    weight_rename: tuple[tuple[str, str], ...] = ()
    fold_batchnorm: bool = True
    description: str = ""
    source: str | None = None
    weight_ignore: tuple[str, ...] = ()      # glob patterns of file keys that are not parameters (snnsim.weights)

    @property
    def output_shape(self) -> Shape:
        return self.layers[-1].out_shape

    def all_layers(self) -> list[Layer]:
        """Every layer, depth first, residual blocks before their children."""
        return list(walk(self.layers))

    def param_shapes(self) -> dict[str, Shape]:
        """Every expected weight key (after prefix and renames are undone) and its shape."""
        shapes = {}
        for layer in walk(self.layers):
            if hasattr(layer, "param_keys"):    # layers that name their own weight keys (snnsim.layers_extra)
                shapes.update(layer.param_keys())
                continue
            for p, s in layer.param_shapes().items():
                shapes[f"{layer.name}.{p}"] = s
        return shapes


def walk(layers):
    for layer in layers:
        yield layer
        if isinstance(layer, Residual):
            yield from walk(layer.body)
            yield from walk(layer.shortcut)
        elif hasattr(layer, "sublayers"):       # reversible / trevsnn blocks (snnsim.layers_extra, snnsim.trev)
            yield from walk(layer.sublayers())


# ----------------------------------------------------------------------------- field readers
class _Fields:
    """Reads typed fields from one YAML mapping, naming the YAML path in every error."""

    def __init__(self, raw: Any, path: str, source: str | None):
        if not isinstance(raw, dict):
            raise SpecError(path, f"expected a mapping, got {_show(raw)}", source)
        self.raw, self.path, self.source, self.used = raw, path, source, set()

    def err(self, key: str, msg: str) -> SpecError:
        return SpecError(f"{self.path}.{key}" if self.path else key, msg, self.source)

    def get(self, key, default=None, required=False):
        self.used.add(key)
        if key not in self.raw:
            if required:
                raise self.err(key, "missing (required)")
            return default
        return self.raw[key]

    def int(self, key, default=None, required=False, minimum=1, maximum=None):
        """An integer field; null is an error (absent means the default). ``maximum`` defaults to the layer-size
        limit: no count or size in a spec can exceed it without making some layer larger than that."""
        if key not in self.raw and default is None and not required:
            self.used.add(key)
            return None
        v = self.get(key, default, required)
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise self.err(key, f"expected {what}, got {_show(v)}")
        if isinstance(maximum, int):
            too_big = f"{v} is more than {maximum}" if v > maximum else None
        else:
            too_big = over(maximum or "layer_size", v)
        if too_big:
            raise self.err(key, too_big)
        return v

    def float(self, key, default=None, required=False, positive=False, allow_none=False):
        v = self.get(key, default, required)
        if v is None and (allow_none or (default is None and key not in self.raw)):
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not _finite(v):
            raise self.err(key, f"expected a finite number, got {_show(v)}")
        if positive and v <= 0:
            raise self.err(key, f"expected a positive number, got {_show(v)}")
        return float(v)

    def bool(self, key, default=None):
        v = self.get(key, default)
        if not isinstance(v, bool):
            raise self.err(key, f"expected true or false, got {_show(v)}")
        return v

    def str(self, key, default=None, required=False, choices=None):
        v = self.get(key, default, required)
        if not isinstance(v, str) or (choices and v not in choices):
            want = f"one of {', '.join(choices)}" if choices else "a string"
            raise self.err(key, f"expected {want}, got {_show(v)}")
        return v

    def pair(self, key, default=None, minimum=1):
        v = self.get(key, default, required=default is None)
        if isinstance(v, int) and not isinstance(v, bool):
            v = [v, v]
        ok = (isinstance(v, (list, tuple)) and len(v) == 2
              and all(isinstance(e, int) and not isinstance(e, bool) and e >= minimum for e in v))
        if not ok:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise self.err(key, f"expected {what} or a list of two, got {_show(v)}")
        for e in v:
            if over("layer_size", e):
                raise self.err(key, over("layer_size", e))
        return (int(v[0]), int(v[1]))

    def section(self, key) -> dict:
        """An optional sub-mapping: absent or null is empty; anything else that is not a mapping is an error."""
        v = self.get(key)
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise self.err(key, f"expected a mapping, got {_show(v)}")
        return v

    def done(self):
        unknown = sorted(set(self.raw) - self.used, key=str)
        if unknown:
            raise self.err(unknown[0], f"unknown field; allowed here: {', '.join(sorted(self.used))}")


def _finite(v) -> bool:
    try:
        return math.isfinite(v) and math.isfinite(float(v))
    except OverflowError:             # an integer beyond float's range
        return False


def _show(v) -> str:
    """A value for a one-line message: quoted, escaped and short."""
    if isinstance(v, (dict, list)):
        return "a mapping" if isinstance(v, dict) else "a list"
    if v is None:
        return "null"
    try:
        text = repr(v)
    except ValueError:                # an integer with more digits than Python will print
        return "a huge integer"
    return text if len(text) <= 60 else text[:57] + "..."


# ----------------------------------------------------------------------------- layer parsers
def _shape_err(f: _Fields, msg: str) -> SpecError:
    return SpecError(f.path, msg, f.source)


def _parse_linear(f, name, shape):
    if len(shape) != 1:
        raise _shape_err(f, f"linear needs a 1-D input, got shape {list(shape)}; add a 'flatten' layer before it")
    n_in = f.int("in_features", shape[0])
    if n_in != shape[0]:
        raise f.err("in_features", f"is {n_in} but the previous layer gives {shape[0]} features")
    n_out = f.int("out_features", required=True)
    return Linear(name, shape, (n_out,), n_in, n_out, f.bool("bias", True))


def _parse_conv2d(f, name, shape):
    if len(shape) != 3:
        raise _shape_err(f, f"conv2d needs a [C, H, W] input, got shape {list(shape)}")
    c_in = f.int("in_channels", shape[0])
    if c_in != shape[0]:
        raise f.err("in_channels", f"is {c_in} but the previous layer gives {shape[0]} channels")
    c_out = f.int("out_channels", required=True)
    k = f.pair("kernel_size")
    s = f.pair("stride", 1)
    p = f.pair("padding", 0, minimum=0)
    g = f.int("groups", 1)
    if c_in % g or c_out % g:
        raise f.err("groups", f"{g} must divide in_channels ({c_in}) and out_channels ({c_out})")
    h, w = _conv_out(f, shape[1:], k, s, p)
    return Conv2d(name, shape, (c_out, h, w), c_in, c_out, k, s, p, g, f.bool("bias", True))


def _conv_out(f, hw, k, s, p):
    out = []
    for n, kk, ss, pp, axis in zip(hw, k, s, p, "HW"):
        if pp * 2 > kk:
            raise f.err("padding", f"padding {pp} is more than half the kernel {kk}")
        o = (n + 2 * pp - kk) // ss + 1
        if o < 1:
            raise f.err("kernel_size", f"kernel {kk} with padding {pp} does not fit input {axis}={n}")
        out.append(o)
    return tuple(out)


def _parse_batchnorm(f, name, shape, dims):
    if len(shape) != dims:
        want = "[C, H, W]" if dims == 3 else "[N]"
        raise _shape_err(f, f"needs a {want} input, got shape {list(shape)}")
    n = f.int("num_features", shape[0])
    if n != shape[0]:
        raise f.err("num_features", f"is {n} but the previous layer gives {shape[0]}")
    return BatchNorm(name, shape, shape, n, f.float("eps", 1e-5, positive=True), f.bool("affine", True))


def _parse_pool(f, name, shape, op):
    if len(shape) != 3:
        raise _shape_err(f, f"{op}pool2d needs a [C, H, W] input, got shape {list(shape)}")
    k = f.pair("kernel_size")
    s = f.pair("stride", list(k))
    p = f.pair("padding", 0, minimum=0)
    h, w = _conv_out(f, shape[1:], k, s, p)
    return Pool2d(name, shape, (shape[0], h, w), op, k, s, p)


def _parse_neuron(f, name, shape, kind, defaults):
    d = dict(defaults.get(kind, {}))
    d.update(f.raw)
    f.raw = d
    thr_default = 0.5 if kind == "threshold" else 1.0
    # v_reset: null means subtract reset; absent means hard reset to 0 (SpikingJelly's default)
    v_reset = None if f.get("v_reset", 0.0) is None else f.float("v_reset", 0.0)
    clip = f.get("clip")
    if clip is not None:
        if not (isinstance(clip, list) and len(clip) == 2
                and all(isinstance(c, (int, float)) and not isinstance(c, bool) and _finite(c) for c in clip)
                and clip[0] < clip[1]):
            raise f.err("clip", f"expected [low, high] with low < high, got {_show(clip)}")
        clip = (float(clip[0]), float(clip[1]))
    tau = f.float("tau", 2.0, positive=True)
    if kind in ("lif", "plif", "li") and tau <= 1.0:
        raise f.err("tau", f"must be > 1 (the membrane decays by 1/tau per step), got {tau}")
    stateless = f.bool("stateless", kind == "threshold")
    reset_delay = f.bool("reset_delay", False)
    if reset_delay and (kind not in ("lif", "plif", "if") or v_reset is not None or stateless):
        raise f.err("reset_delay", "delays a subtract reset only: it needs a stateful lif, plif or if neuron with "
                                   "v_reset: null (a hard reset gives the same spikes either way); remove it")
    return Neuron(
        name, shape, shape, neuron=kind, tau=tau,
        decay_input=f.bool("decay_input", True),
        v_threshold=f.float("v_threshold", thr_default),
        v_reset=v_reset,
        spike_rule=f.str("spike_rule", "ge", choices=("ge", "gt")),
        stateless=stateless,
        clip=clip,
        reset_delay=reset_delay,
    )


def _parse_layers(raw, path, shape, prefix, defaults, source, names) -> tuple[tuple[Layer, ...], Shape]:
    if not isinstance(raw, list):
        raise SpecError(path, f"expected a list of layers, got {_show(raw)}", source)
    layers = []
    for i, item in enumerate(raw):
        lp = f"{path}[{i}]"
        f = _Fields(item, lp, source)
        kind = f.str("type", required=True)
        local = f.get("name", f"{i}")
        if not isinstance(local, (str, int)) or isinstance(local, bool) or str(local) == "":
            raise f.err("name", f"expected a non-empty string, got {_show(local)}")
        name = f"{prefix}{local}"
        if name in names:
            raise f.err("name", f"'{name}' is used twice; weight keys need unique layer names")
        names.add(name)
        layer = _parse_one(f, kind, name, shape, defaults, names)
        f.done()
        layers.append(layer)
        shape = layer.out_shape
    return tuple(layers), shape


def _parse_one(f, kind, name, shape, defaults, names) -> Layer:
    if kind == "linear":
        return _parse_linear(f, name, shape)
    if kind == "conv2d":
        return _parse_conv2d(f, name, shape)
    if kind in ("batchnorm1d", "batchnorm2d"):
        return _parse_batchnorm(f, name, shape, 1 if kind == "batchnorm1d" else 3)
    if kind in ("avgpool2d", "maxpool2d", "sumpool2d"):
        return _parse_pool(f, name, shape, kind[:3])
    if kind == "flatten":
        return Flatten(name, shape, (math.prod(shape),))
    if kind == "scale":
        return Scale(name, shape, shape)
    if kind == "dropout":
        p = f.float("p", 0.5)
        if not 0 <= p < 1:
            raise f.err("p", f"expected a probability in [0, 1), got {p}")
        return Dropout(name, shape, shape, p)
    if kind in NEURON_KINDS:
        return _parse_neuron(f, name, shape, kind, defaults)
    if kind == "residual":
        body, out = _parse_layers(f.get("body", required=True), f"{f.path}.body", shape, name + ".",
                                  defaults, f.source, names)
        shortcut = f.get("shortcut")                  # absent or null: the identity
        short, s_out = _parse_layers([] if shortcut is None else shortcut, f"{f.path}.shortcut", shape,
                                     name + ".", defaults, f.source, names)
        if out != s_out:
            raise f.err("shortcut", f"gives shape {list(s_out)} but the body gives {list(out)}; "
                                    "they are added, so they must match")
        return Residual(name, shape, out, body, short)
    from .layers_extra import KINDS as EXTRA_KINDS, parse_extra   # reversible regimes' kinds (reversible, trevsnn, ...)

    extra = parse_extra(f, kind, name, shape, defaults, names)
    if extra is not None:
        return extra
    raise f.err("type", f"unknown layer type '{kind}'; known: linear, conv2d, batchnorm1d, batchnorm2d, "
                        f"avgpool2d, maxpool2d, sumpool2d, flatten, scale, dropout, residual, {', '.join(NEURON_KINDS)}, "
                        f"{', '.join(EXTRA_KINDS)}")


# ----------------------------------------------------------------------------- entry points
def parse_spec(raw: Any, source: str | None = None) -> NetworkSpec:
    """Validate a parsed YAML document and return the typed network."""
    f = _Fields(raw, "", source)
    name = f.str("name", "network")
    shape = f.get("input_shape", required=True)
    if (not isinstance(shape, list) or not shape
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
        raise f.err("input_shape", f"expected a list of positive integers, got {_show(shape)}")
    if over("layer_size", math.prod(shape)):
        raise f.err("input_shape", over("layer_size", math.prod(shape)))
    timesteps = f.int("timesteps", 4, maximum="timesteps")
    enc_raw = f.get("encoding", "direct")
    enc_f = _Fields({"type": enc_raw} if isinstance(enc_raw, str) else enc_raw, "encoding", source)
    encoding = Encoding(enc_f.str("type", required=True, choices=ENCODINGS),
                        enc_f.int("seed", 0, minimum=0, maximum=2**63 - 1), enc_f.float("gain", 1.0, positive=True))
    enc_f.done()
    ro_f = _Fields(f.section("readout"), "readout", source)
    readout = Readout(ro_f.str("reduce", "mean", choices=("mean", "last")),
                      ro_f.str("source", "output", choices=("output", "membrane")))
    ro_f.done()
    w_f = _Fields(f.section("weights"), "weights", source)
    prefix = w_f.str("prefix", "")
    rename = w_f.section("rename")
    if not isinstance(rename, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                               for k, v in rename.items()):
        raise w_f.err("rename", "expected a mapping from file key to snnsim key")
    ignore = w_f.get("ignore", []) or []
    if not isinstance(ignore, list) or not all(isinstance(k, str) and k for k in ignore):
        raise w_f.err("ignore", "expected a list of file keys or glob patterns (e.g. ['*.mem'])")
    w_f.done()
    defaults = f.section("neuron_defaults")
    if not isinstance(defaults, dict) or not all(k in NEURON_KINDS and isinstance(v, dict)
                                                 for k, v in defaults.items()):
        raise f.err("neuron_defaults", f"expected a mapping from a neuron type ({', '.join(NEURON_KINDS)}) "
                                       "to its default fields")
    layers, _ = _parse_layers(f.get("layers", required=True), "layers", tuple(shape), "", defaults,
                              source, set())
    if not layers:
        raise f.err("layers", "the network has no layers")
    fold = f.bool("fold_batchnorm", True)
    desc = f.get("description", "")
    if not isinstance(desc, str):
        raise f.err("description", f"expected text, got {_show(desc)}")
    f.done()
    spec = NetworkSpec(name, tuple(shape), layers, timesteps, encoding, readout, prefix,
                       tuple(rename.items()), fold, str(desc), source, weight_ignore=tuple(ignore))
    if readout.source == "membrane" and not isinstance(layers[-1], Neuron):
        raise SpecError("readout.source", "'membrane' needs the last layer to be a neuron layer", source)
    _check_sizes(spec)
    return spec


def _check_sizes(spec: NetworkSpec) -> None:
    """Refuse a network beyond the limits of ``snnsim.limits`` before any weights are allocated."""
    layers = spec.all_layers()
    if over("layers", len(layers)):
        raise SpecError("layers", over("layers", len(layers)), spec.source)
    for layer in layers:
        for shape in (layer.in_shape, layer.out_shape):
            if over("layer_size", math.prod(shape)):
                raise SpecError(f"layers: '{layer.name}'", f"shape {list(shape)}: "
                                f"{over('layer_size', math.prod(shape))}", spec.source)
    n = sum(math.prod(s) for s in spec.param_shapes().values())
    if over("params", n):
        raise SpecError("layers", f"{over('params', n)}", spec.source)


def load_spec(path: str | Path) -> NetworkSpec:
    """Read and validate a network YAML file (read by ``snnsim.yamlfile``: no aliases, bounded size and depth)."""
    from .yamlfile import read_yaml

    raw = read_yaml(path, lambda msg: SpecError("", msg, str(path)), "network file")
    return parse_spec(raw, str(path))


def with_timesteps(spec: NetworkSpec, timesteps: int) -> NetworkSpec:
    return replace(spec, timesteps=timesteps)


def layer_table(spec: NetworkSpec) -> list[dict]:
    """Rows of ``snnsim info``: layer, type, output shape, parameters (shared modules once), state words."""
    rows = []
    for layer in spec.all_layers():
        params = (layer.own_params() if hasattr(layer, "own_params")     # shared modules count once
                  else sum(math.prod(s) for s in layer.param_shapes().values()))
        state = (layer.state_words if hasattr(layer, "state_words")        # T-RevSNN: the c_l of every level
                 else math.prod(layer.out_shape) if layer.stateful and not isinstance(layer, Residual) else 0)
        rows.append(dict(layer=layer.name, type=getattr(layer, "neuron", layer.kind),
                         output="x".join(map(str, layer.out_shape)), params=params, state=state))
    return rows
