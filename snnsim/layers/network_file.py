"""The network file: a YAML document parsed into a ``NetworkSpec``, each layer by its kind (``snnsim.layers``)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..limits import over
from ..spec import ENCODINGS, Encoding, Fields, NetworkSpec, Readout, show
from .registry import ParseContext, default_types, parse_layers


def parse_spec(raw: Any, source: str | None = None) -> NetworkSpec:
    """Validate a parsed YAML document and return the typed network."""
    f = Fields(raw, "", source)
    name = f.str("name", "network")
    shape = f.get("input_shape", required=True)
    if (not isinstance(shape, list) or not shape
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
        raise f.err("input_shape", f"expected a list of positive integers, got {show(shape)}")
    if over("layer_size", math.prod(shape)):
        raise f.err("input_shape", over("layer_size", math.prod(shape)))
    timesteps = f.int("timesteps", 4, maximum="timesteps")
    enc_raw = f.get("encoding", "direct")
    enc_f = Fields({"type": enc_raw} if isinstance(enc_raw, str) else enc_raw, "encoding", source)
    encoding = Encoding(enc_f.str("type", required=True, choices=ENCODINGS),
                        enc_f.int("seed", 0, minimum=0, maximum=2**63 - 1), enc_f.float("gain", 1.0, positive=True))
    enc_f.done()
    ro_f = Fields(f.section("readout"), "readout", source)
    readout = Readout(ro_f.str("reduce", "mean", choices=("mean", "last")),
                      ro_f.str("source", "output", choices=("output", "membrane")))
    ro_f.done()
    w_f = Fields(f.section("weights"), "weights", source)
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
    types = default_types()
    if not isinstance(defaults, dict) or not all(k in types and isinstance(v, dict) for k, v in defaults.items()):
        raise f.err("neuron_defaults", f"expected a mapping from a neuron type ({', '.join(types)}) "
                                       "to its default fields")
    layers, _ = parse_layers(f.get("layers", required=True), "layers", tuple(shape), "",
                             ParseContext(defaults, set(), source))
    if not layers:
        raise f.err("layers", "the network has no layers")
    fold = f.bool("fold_batchnorm", True)
    desc = f.get("description", "")
    if not isinstance(desc, str):
        raise f.err("description", f"expected text, got {show(desc)}")
    f.done()
    spec = NetworkSpec(name, tuple(shape), layers, timesteps, encoding, readout, prefix,
                       tuple(rename.items()), fold, str(desc), source, weight_ignore=tuple(ignore))
    if readout.source == "membrane" and not layers[-1].has_membrane:
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
    from ..yamlfile import read_yaml

    raw = read_yaml(path, lambda msg: SpecError("", msg, str(path)), "network file")
    return parse_spec(raw, str(path))


def with_timesteps(spec: NetworkSpec, timesteps: int) -> NetworkSpec:
    """The same network run for another number of timesteps."""
    return replace(spec, timesteps=timesteps)


def layer_table(spec: NetworkSpec) -> list[dict]:
    """Rows of ``snnsim info``: layer, type, output shape, parameters (shared modules once), state words."""
    return [dict(layer=layer.name, type=layer.type_name,
                 output="x".join(map(str, layer.out_shape)), params=layer.own_params(), state=layer.state_words)
            for layer in spec.all_layers()]
