"""The table of layer kinds: each kind's module registers what it provides, everything else looks it up.

A ``Kind`` holds a kind's hooks: the YAML ``type:`` names it parses, its spec record, the parser, the builder
of its inference op, its share of seeded random weights, its training node, and what the training methods need to
know of it. The kinds' modules (``snnsim.layers.*``) register themselves when ``snnsim.layers`` is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Callable

from ..errors import InputError, SpecError
from ..spec import Fields, Layer, Shape, show


@dataclass(frozen=True)
class Kind:
    name: str                                  # the record's ``kind`` (the trace's layer kind)
    types: tuple[str, ...]                     # YAML ``type:`` names this kind parses
    record: type                               # its spec record class (a subclass of ``spec.Layer``)
    parse: Callable | None = None              # parse(fields, type, name, in_shape, ctx) -> record
    build: Callable | None = None              # build(layer, weights, ctx) -> Op (``BuildContext``)
    init: Callable | None = None               # init(layer, weights, rng): values random_weights cannot guess
    init_network: Callable | None = None       # init_network(spec, seed): a kind that seeds the whole network
    train_node: Callable | None = None         # train_node(layer, cfg_for) -> node of the training graph
    invertible: bool = False                   # the reversible training method rebuilds its input from its output
                                               # (its node's ``invert_backward``) instead of storing it
    trainer: Callable | None = None            # trainer(spec, method, neuron_cfg): the training method for a network
                                               # that is this one layer (a T-RevSNN), or None for the generic one
    nir_export: Callable | None = None         # nir_export(op, exporter, srcs) -> names of the nodes it adds
    nir_nodes: tuple[str, ...] = ()            # NIR node classes (by name) that from_nir reads
    from_nir: Callable | None = None           # from_nir(name, node, shape, importer) -> (layers, output shape)
    nir_cycle: Callable | None = None          # nir_cycle(nodes, edges, entries, exits): what from_nir reads of a
                                               # cycle of NIR nodes it runs as one layer (a recurrent layer), or None
    torch_modules: tuple[str, ...] = ()        # module classes from_torch reads (torch_class names them)
    torch_functions: tuple[str, ...] = ()      # torch functions / tensor methods of a traced graph it reads
    from_torch: Callable | None = None         # from_torch(module or None, importer) -> snnsim layer dicts
    uses_defaults: bool = False                # its parser reads the network file's neuron_defaults of its types
    examples: tuple[dict, ...] = ()            # small networks (input_shape, layers) running its compiled kernels


_KINDS: list[Kind] = []
_BY_TYPE: dict[str, Kind] = {}
_BY_RECORD: dict[type, Kind] = {}


def register(kind: Kind) -> Kind:
    for t in kind.types:
        if t in _BY_TYPE:
            raise ValueError(f"layer type {t!r} is registered twice")
        _BY_TYPE[t] = kind
    _KINDS.append(kind)
    _BY_RECORD[kind.record] = kind
    return kind


def kind_of(layer: Layer) -> Kind:
    """The kind of a record (its class or the nearest registered base class)."""
    for cls in type(layer).__mro__:
        if cls in _BY_RECORD:
            return _BY_RECORD[cls]
    raise TypeError(f"layer {layer.name!r}: no registered kind for {type(layer).__name__}")


def network_trainer(spec, method: str, neuron_cfg):
    """The training method ``method`` as the network's own kind provides it (a whole-network kind), or None."""
    for layer in spec.layers:
        make = kind_of(layer).trainer
        if make is not None:
            return make(spec, method, neuron_cfg)
    return None


def nir_reader(node_type: str) -> Kind | None:
    """The kind that imports NIR nodes of class ``node_type`` (``"Affine"``), or None."""
    return next((k for k in _KINDS if node_type in k.nir_nodes and k.from_nir is not None), None)


def nir_cycle_reader(nodes: dict, edges: list, entries: set, exits: set):
    """(kind, what its from_nir reads) for the kind that runs a cycle of NIR nodes as one layer, or None.
    ``nodes``: the cycle's nodes by name, ``edges`` those among them, ``entries`` / ``exits`` the nodes that
    edges from / to the rest of the graph reach."""
    for k in _KINDS:
        claim = k.nir_cycle(nodes, edges, entries, exits) if k.nir_cycle is not None else None
        if claim is not None:
            return k, claim
    return None


def torch_readers() -> list[tuple[type, str, Kind]]:
    """(class, its name, kind) for every module class a kind imports, in registration order; the classes of a
    library that is not installed are left out."""
    out = []
    for k in _KINDS:
        for name in k.torch_modules if k.from_torch is not None else ():
            try:
                out.append((torch_class(name), name, k))
            except ImportError:
                pass
    return out


@cache
def torch_class(name: str) -> type:
    """A module class by name: ``torch.nn``'s for a bare name ("Linear"), else a peer library's by its dotted
    path ("snntorch.Leaky"); ImportError when that library is not installed."""
    import importlib

    where, _, cls = name.rpartition(".")
    return getattr(importlib.import_module(where or "torch.nn"), cls)


def torch_function_reader(name: str) -> Kind | None:
    """The kind that imports calls of the torch function or tensor method ``name`` ("flatten"), or None."""
    return next((k for k in _KINDS if name in k.torch_functions and k.from_torch is not None), None)


def default_types() -> list[str]:
    """The layer types whose fields the network file's ``neuron_defaults`` may set."""
    return [t for kind in _KINDS if kind.uses_defaults for t in kind.types]


def examples() -> list[dict]:
    """Every kind's example networks (``input_shape`` and ``layers``), in registration order: together they run
    every compiled kernel path of every kind (``snnsim warmup`` compiles them ahead of the first run)."""
    return [ex for k in _KINDS for ex in k.examples]


def known_types() -> list[str]:
    return [t for kind in _KINDS for t in kind.types]


@dataclass
class ParseContext:
    defaults: dict          # neuron_defaults of the network file
    names: set              # full layer names used so far (they key the weights, so they must be unique)
    source: str | None      # the file, for error messages


def parse_layers(raw, path: str, shape: Shape, prefix: str, ctx: ParseContext) -> tuple[tuple[Layer, ...], Shape]:
    """A YAML list of layers, each parsed by its kind; returns the records and the last output shape."""
    if not isinstance(raw, list):
        raise SpecError(path, f"expected a list of layers, got {show(raw)}", ctx.source)
    layers = []
    for i, item in enumerate(raw):
        f = Fields(item, f"{path}[{i}]", ctx.source)
        type_name = f.str("type", required=True)
        local = f.get("name", f"{i}")
        if not isinstance(local, (str, int)) or isinstance(local, bool) or str(local) == "":
            raise f.err("name", f"expected a non-empty string, got {show(local)}")
        name = f"{prefix}{local}"
        if name in ctx.names:
            raise f.err("name", f"'{name}' is used twice; weight keys need unique layer names")
        ctx.names.add(name)
        kind = _BY_TYPE.get(type_name)
        if kind is None or kind.parse is None:
            raise f.err("type", f"unknown layer type '{type_name}'; known: {', '.join(known_types())}")
        layer = kind.parse(f, type_name, name, shape, ctx)
        f.done()
        layers.append(layer)
        shape = layer.out_shape
    return tuple(layers), shape


def shape_error(f: Fields, msg: str) -> SpecError:
    """An error at the layer itself (not one of its fields): its input shape does not suit the kind."""
    return SpecError(f.path, msg, f.source)


@dataclass
class BuildContext:
    """What a kind's builder gets besides its record and the weights: whether batch norm folds, the batch norm
    that follows it (when it folds into this layer), and ``build`` for a block's children."""

    fold: bool
    build: Callable                # build(layers, weights, fold) -> list of ops
    folded_bn: Layer | None = None


def build_nodes(layers, cfg_for) -> list:
    """The training graph of a list of layers, each node built by its kind (``cfg_for(name)``: a neuron layer's
    training settings, ``snnsim.train.forward.NeuronTrainCfg``)."""
    nodes = []
    for layer in layers:
        make = kind_of(layer).train_node
        if make is None:
            raise InputError(f"layer '{layer.name}': training does not support '{layer.kind}' layers yet")
        nodes.append(make(layer, cfg_for))
    return nodes
