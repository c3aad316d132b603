"""Network specification: the records every layer kind builds on, the network record, and the YAML field reader.

A spec is parsed (``snnsim.layers.parse_spec``) into frozen dataclasses, one per layer kind, in the spirit of
NIR's node records; each kind's record, parser and ops live in its own module of ``snnsim.layers``, which
looks kinds up by their YAML type. Every per-sample tensor shape is inferred at parse time, so a mismatch
between consecutive layers is reported at load time with the YAML path of the offending field, before any
weights are read or anything runs.

Layer records carry only structure and hyper-parameters; the arrays live in ``snnsim.weights``.
The weight key of a parameter is ``<full layer name>.<param>`` with PyTorch names, where the full name
of a layer nested in a block is ``<block name>.<child name>``.

This module imports no layer kind: the kinds' records and the network-file parser (``parse_spec``,
``load_spec``) live in ``snnsim.layers``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError
from .limits import over
from .yamlfile import FieldReader

Shape = tuple[int, ...]

ENCODINGS = ("direct", "rate", "events")


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Layer:
    name: str            # full dotted name: the weight-key prefix
    in_shape: Shape      # per-sample shape of the input
    out_shape: Shape     # per-sample shape of the output

    kind = "layer"
    folds_into_synapse = False    # batch norm: folded into a preceding linear/conv at build time
    absorbs_batchnorm = False     # linear/conv: a batch norm right after it is folded into its weights
    synaptic = False              # weights reached by input events (linear, conv): the trace maps its input events
    has_membrane = False          # neuron layers: a readout may read their membrane

    def param_shapes(self) -> dict[str, Shape]:
        """PyTorch state_dict shapes of this layer's parameters (without the name prefix)."""
        return {}

    def param_keys(self) -> dict[str, Shape]:
        """Full weight keys and shapes of this layer's own parameters (``<name>.<param>`` unless the kind
        names its keys itself)."""
        return {f"{self.name}.{p}": s for p, s in self.param_shapes().items()}

    def own_params(self) -> int:
        """Parameters this layer adds to the model (a module shared with another layer counts there)."""
        return sum(math.prod(s) for s in self.param_shapes().values())

    def sublayers(self) -> tuple:
        """The layers inside a block, in order (empty for a plain layer)."""
        return ()

    @property
    def type_name(self) -> str:
        """The layer's type as ``snnsim info`` shows it (a kind's records may say which of its types they are)."""
        return self.kind

    @property
    def stateful(self) -> bool:
        """True when the layer keeps state from one timestep to the next."""
        return False

    @property
    def state_words(self) -> int:
        """State words per sample this layer itself keeps across timesteps (a block's children count theirs)."""
        return math.prod(self.out_shape) if self.stateful else 0


def weight_and_bias(weight: Shape, bias: bool) -> dict[str, Shape]:
    """Parameter shapes of a linear or convolution layer: its weight and, if it has a bias, one bias entry per
    output (the weight's first axis)."""
    return {"weight": weight, "bias": weight[:1]} if bias else {"weight": weight}


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
            shapes.update(layer.param_keys())
        return shapes


def walk(layers):
    """Every layer, depth first, each block before its children."""
    for layer in layers:
        yield layer
        yield from walk(layer.sublayers())


def walk_blocks(items):
    """Every runtime op or training node, depth first, each block before its children (``children()``: the
    lists inside a block); the engine's ops and the trainer's nodes nest alike."""
    for item in items:
        yield item
        for sub in item.children():
            yield from walk_blocks(sub)


# ----------------------------------------------------------------------------- field readers
class Fields(FieldReader):
    """Reads typed fields from one mapping of a network file, naming the YAML path in every error."""

    error = SpecError

    def __init__(self, raw: Any, path: str, source: str | None):
        if not isinstance(raw, dict):
            raise SpecError(path, f"expected a mapping, got {show(raw)}", source)
        super().__init__(raw, path, source)

    def int(self, key, default=None, required=False, minimum=1, maximum=None):
        """An integer field; null is an error (absent means the default). ``maximum`` defaults to the layer-size
        limit: no count or size in a spec can exceed it without making some layer larger than that."""
        if key not in self.raw and default is None and not required:
            self.used.add(key)
            return None
        v = self.get(key, default, required)
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise self.err(key, f"expected {what}, got {show(v)}")
        if isinstance(maximum, int):
            too_big = f"{v} is more than {maximum}" if v > maximum else None
        else:
            too_big = over(maximum or "layer_size", v)
        if too_big:
            raise self.err(key, too_big)
        return v

    def matching_int(self, key, given, unit=""):
        """An integer field that defaults to, and must equal, what the previous layer gives (``given``)."""
        v = self.int(key, given)
        if v != given:
            raise self.err(key, f"is {v} but the previous layer gives {given}" + (f" {unit}" if unit else ""))
        return v

    def float(self, key, default=None, required=False, positive=False, allow_none=False):
        v = self.get(key, default, required)
        if v is None and (allow_none or (default is None and key not in self.raw)):
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not finite(v):
            raise self.err(key, f"expected a finite number, got {show(v)}")
        if positive and v <= 0:
            raise self.err(key, f"expected a positive number, got {show(v)}")
        return float(v)

    def bool(self, key, default=None):
        v = self.get(key, default)
        if not isinstance(v, bool):
            raise self.err(key, f"expected true or false, got {show(v)}")
        return v

    def str(self, key, default=None, required=False, choices=None):
        v = self.get(key, default, required)
        if not isinstance(v, str) or (choices and v not in choices):
            want = f"one of {', '.join(choices)}" if choices else "a string"
            raise self.err(key, f"expected {want}, got {show(v)}")
        return v

    def pair(self, key, default=None, minimum=1):
        v = self.get(key, default, required=default is None)
        if isinstance(v, int) and not isinstance(v, bool):
            v = [v, v]
        ok = (isinstance(v, (list, tuple)) and len(v) == 2
              and all(isinstance(e, int) and not isinstance(e, bool) and e >= minimum for e in v))
        if not ok:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise self.err(key, f"expected {what} or a list of two, got {show(v)}")
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
            raise self.err(key, f"expected a mapping, got {show(v)}")
        return v


def finite(v) -> bool:
    try:
        return math.isfinite(v) and math.isfinite(float(v))
    except OverflowError:             # an integer beyond float's range
        return False


def show(v) -> str:
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
