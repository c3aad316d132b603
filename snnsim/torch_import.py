"""Turn a PyTorch module (SpikingJelly, snnTorch, Norse or plain ``torch.nn``) into an snnsim network.

``from_torch(module, example_input)`` walks the module graph -- with ``torch.fx`` where the module traces,
else in module registration order (a plain chain) -- and maps every module to snnsim layers, so that
snnsim computes what the module computes. A split that meets again at an addition (a SEW-ResNet block)
becomes a ``residual`` layer. Anything snnsim cannot compute exactly is refused with a one-line
``SnnsimError`` naming the module.

Each layer kind maps the module classes it lists (``Kind.torch_modules``, ``Kind.from_torch`` in
``snnsim.layers``); the neurons of SpikingJelly, snnTorch and Norse and how they map are in
``snnsim/layers/neuron_import.py`` (docs/torch_import.md has the derivations).
"""

from __future__ import annotations

import copy
import operator
from dataclasses import dataclass, field

import numpy as np

from .datasets import as_array
from .errors import SnnsimError
from .layers.registry import torch_function_reader, torch_readers
from .layers.residual import import_block

__all__ = ["TorchImport", "from_torch", "load_module"]


@dataclass
class TorchImport:
    """The result of ``from_torch``: a YAML-ready spec dict, float32 weights keyed by snnsim name, notes."""

    spec: dict
    weights: dict[str, np.ndarray]
    notes: list[str] = field(default_factory=list)

    _model: object = field(default=None, init=False, repr=False, compare=False)

    def model(self):
        """The converted network as an ``snnsim.Model`` (run, price, train, export_nir; docs/api.md), built
        by ``snnsim.load`` once and kept, so repeated runs do not parse and check it again."""
        if self._model is None:
            from .api import load

            self._model = load(self.spec, self.weights)
        return self._model

    def network(self):
        """The runnable ``snnsim.network.Network`` (spec parsed and weights checked)."""
        return self.model().network

    def run(self, x, **kwargs):
        """Run snnsim on ``x`` (numpy or torch; ``[N, ...]``, or ``[T, N, ...]`` for events): a RunResult."""
        from .engine import run

        return run(self.network(), as_array(x), **kwargs)

    def save(self, yaml_path, weights_path) -> None:
        """Write the network YAML and the weights ``.npz`` (each atomically)."""
        import os
        from pathlib import Path

        import yaml

        from .weights import save_npz

        path = Path(yaml_path)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        header = "".join(f"# {n}\n" for n in self.notes)
        tmp.write_text(header + yaml.safe_dump(self.spec, sort_keys=False))
        tmp.replace(path)
        save_npz(weights_path, self.weights)


class _Refuse(SnnsimError):
    pass


def _refuse(qual, m, why):
    return _Refuse(f"module '{qual or '<root>'}' ({type(m).__name__}): {why}")


# ----------------------------------------------------------------------------- module -> snnsim layers
def _sj_containers():
    """SpikingJelly's containers (left whole by torch.fx, read in module order), when it is installed."""
    try:
        from spikingjelly.activation_based import layer
    except ImportError:
        return ()
    return (layer.SeqToANNContainer, layer.MultiStepContainer)


class _Module:
    """What a kind's ``from_torch`` gets: the module's name, the class it matched (as the kind lists it), its
    parameters as float32 arrays, and the one-line refusal naming the module. For a call of a torch function or
    tensor method in a traced graph the module is None, ``cls`` the function's name and ``shapes`` its input
    and output shapes without the leading time/batch dimensions (None where these change or are unknown)."""

    def __init__(self, qual, m, cls, shapes=None):
        self.qual, self.m, self.cls, self.shapes = qual, m, cls, shapes

    def layer(self, kind, weights=None, q=None, **fields) -> dict:
        """A layer dict (``_q``: the torch name it comes from, ``_w``: its weights by snnsim parameter name)."""
        return dict(type=kind, **fields, _q=self.qual if q is None else q, _w=weights or {})

    def params(self, *names) -> dict:
        """The named parameters/buffers that are set (a dotted name reaches into a child), as float32 arrays."""
        values = {n: operator.attrgetter(n)(self.m) for n in names}
        return {n: np.asarray(as_array(v), np.float32) for n, v in values.items() if v is not None}

    def scalar(self, t) -> float:
        """One float from a scalar or uniform tensor/number, as float32 (what the module computes with)."""
        a = np.asarray(as_array(t), dtype=np.float32).reshape(-1)
        if a.size == 0 or not np.all(a == a[0]):
            raise self.refuse(f"values differ across neurons (range {a.min()}..{a.max()}); snnsim neuron layers "
                              "have one value per parameter")
        return float(a[0])

    def refuse(self, why) -> SnnsimError:
        if self.m is None:
            return _Refuse(f"operation '{self.qual}' ({self.cls}): {why}")
        return _refuse(self.qual, self.m, why)


def _reader(m):
    """(class name, kind) of the kind that imports ``m`` -- the one listing its nearest class (a kind may read a
    library's base class and another kind one of its subclasses) -- or None."""
    mro = type(m).__mro__
    found = [(mro.index(cls), name, k) for cls, name, k in torch_readers() if cls in mro]
    return min(found, key=lambda f: f[0])[1:] if found else None


def _convert(qual, m) -> list[dict] | None:
    """snnsim layer dicts for one leaf module (``_q``: torch name, ``_w``: its weights), or None if unknown.

    An empty list means the module is the identity at inference (Identity; Dropout in eval mode is kept as
    snnsim's dropout, which is the identity too). Each layer kind maps the classes it reads
    (``Kind.from_torch``)."""
    import torch.nn as nn

    if isinstance(m, nn.Identity):
        return []
    found = _reader(m)
    if found is None:
        return None
    cls, kind = found
    return kind.from_torch(m, _Module(qual, m, cls))


# ----------------------------------------------------------------------------- graph walking
@dataclass
class _Node:
    id: str
    op: str                       # input | layer | add | output | side (a neuron's second output, its state)
    layers: list = field(default_factory=list)
    inputs: list = field(default_factory=list)


def _function_reader(n):
    """The kind that reads a call of a torch function or tensor method in a traced graph, or None."""
    import torch

    if n.op == "call_method":
        return torch_function_reader(n.target)
    name = getattr(n.target, "__name__", None)
    return torch_function_reader(name) if name and getattr(torch, name, None) is n.target else None


def _is_leaf_type(m) -> bool:
    """A module ``_convert`` handles (decided by type, without reading parameters)."""
    import torch.nn as nn

    return isinstance(m, nn.Identity) or _reader(m) is not None


def _chain_containers():
    """Containers whose forward runs their children in order, so module order is their graph."""
    import torch.nn as nn

    out = (nn.Sequential,) + _sj_containers()
    try:
        import norse.torch as norse

        out += (norse.SequentialState,)
    except ImportError:
        pass
    return out


def _module_order(module, prefix="", reason="") -> list[dict]:
    """Leaf modules of a chain container in registration order (the graph when fx cannot trace)."""
    out = []
    for name, child in module.named_children():
        qual = f"{prefix}{name}"
        if _is_leaf_type(child):
            conv = _convert(qual, child)
            if conv is None:
                raise _refuse(qual, child, "snnsim has no equivalent layer")
            out += conv
        elif isinstance(child, _chain_containers()):
            out += _module_order(child, qual + ".", reason)
        elif any(True for _ in child.children()):
            raise _refuse(qual, child, "torch.fx could not trace the model" + (f" ({reason})" if reason else "")
                          + " and this module has its own forward, so its graph is unknown")
        else:
            raise _refuse(qual, child, "snnsim has no equivalent layer")
    return out


def _fx_graph(module, example, lead: int) -> list[_Node]:
    """The module's dataflow as _Nodes (leaf modules already converted), via torch.fx."""
    import torch
    import torch.fx as fx
    from torch.fx.passes.shape_prop import ShapeProp

    containers = _sj_containers()

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qual):
            # by type only: while tracing, reading a parameter would record it in the graph
            return isinstance(m, containers) or _is_leaf_type(m) or super().is_leaf_module(m, qual)

    probe = copy.deepcopy(module)
    graph = Tracer().trace(probe)
    gm = fx.GraphModule(probe, graph)
    with torch.no_grad():
        ShapeProp(gm).propagate(example)
    mods = dict(gm.named_modules())
    nodes, alias = [], {}

    def src(a):
        return alias.get(a.name, a.name)

    def tensor_args(n):
        return [a for a in list(n.args) + list(n.kwargs.values()) if isinstance(a, fx.Node)]

    def shape(n):
        meta = n.meta.get("tensor_meta")
        return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None

    for n in graph.nodes:
        if n.op == "placeholder":
            if nodes:                          # a second forward argument (e.g. a state) must be left at None
                if n.meta.get("tensor_meta") is not None:
                    raise SnnsimError(f"forward argument '{n.name}': from_torch passes one input tensor only")
                continue
            nodes.append(_Node(n.name, "input"))
        elif n.op == "call_module":
            m = mods[n.target]
            ins = [src(a) for a in tensor_args(n)]
            if isinstance(m, containers):
                layers = _module_order(m, n.target + ".")
            else:
                layers = _convert(n.target, m)
                if layers is None:
                    raise _refuse(n.target, m, "snnsim has no equivalent layer")
            if len(ins) != 1:
                raise _refuse(n.target, m, "called with more than one tensor (pass state inside the module)")
            nodes.append(_Node(n.name, "layer", layers, ins))
        elif n.op == "call_function" and n.target is operator.getitem:
            base = n.args[0]
            if n.args[1] == 0:
                alias[n.name] = src(base)
            else:
                nodes.append(_Node(n.name, "side", inputs=[src(base)]))
        elif (n.op == "call_function" and n.target in (operator.add, operator.iadd, torch.add)) or \
                (n.op == "call_method" and n.target in ("add", "add_", "__add__")):
            ins = [src(a) for a in tensor_args(n)]
            if len(ins) != 2 or len(n.args) != 2:
                raise SnnsimError(f"operation '{n.name}' ({n.target}): only the sum of two tensors is supported")
            nodes.append(_Node(n.name, "add", inputs=ins))
        elif n.op in ("call_function", "call_method") and _function_reader(n) is not None:
            fn = n.target if n.op == "call_method" else n.target.__name__
            x = n.args[0]
            si, so = shape(x), shape(n)
            shapes = (si[lead:], so[lead:]) if si is not None and so is not None and si[:lead] == so[:lead] else None
            layers = _function_reader(n).from_torch(None, _Module(n.name, None, fn, shapes))
            nodes.append(_Node(n.name, "layer", layers, [src(x)]))
        elif n.op == "call_method" and n.target in ("size", "dim") or \
                (n.op == "call_function" and n.target is getattr):
            continue                           # shape queries feeding a view
        elif n.op == "output":
            out = n.args[0]
            while isinstance(out, (tuple, list)):
                out = out[0]
            nodes.append(_Node(n.name, "output", inputs=[src(out)]))
        else:
            raise SnnsimError(f"operation '{n.name}' ({n.op} {getattr(n.target, '__name__', n.target)}): "
                              "snnsim has no equivalent")
    return nodes



def _nest(nodes: list[_Node]) -> list[dict]:
    """Chains and splits that meet at an addition -> a layer list with nested residual blocks."""
    users: dict[str, list[_Node]] = {n.id: [] for n in nodes}
    for n in nodes:
        for i in n.inputs:
            users[i].append(n)
    for n in nodes:
        if n.op == "side" and any(u.op != "output" for u in users[n.id]):
            raise SnnsimError(f"'{n.id}': a neuron's state is used in the computation; snnsim keeps neuron "
                              "state inside the layer")

    def live(uses):
        return [u for u in uses if u.op != "side"]

    def follow(cur: str, layers: list) -> tuple[list, _Node | None]:
        """Extend ``layers`` from node ``cur`` until the output or an addition; returns (layers, add node)."""
        while True:
            us = live(users[cur])
            if not us or (len(us) == 1 and us[0].op == "output"):
                return layers, None
            if len(us) == 1:
                u = us[0]
                if u.op == "add":
                    return layers, u
                layers = layers + u.layers
                cur = u.id
                continue
            if len(us) != 2:
                raise SnnsimError(f"'{cur}' feeds {len(us)} operations; snnsim supports two paths that meet "
                                  "again at an addition (residual blocks)")
            paths, ends = [], []
            for u in us:
                if u.op == "add":
                    paths.append([])
                    ends.append(u)
                else:
                    p, end = follow(u.id, list(u.layers))
                    paths.append(p)
                    ends.append(end)
            if ends[0] is None or ends[0] is not ends[1]:
                raise SnnsimError(f"the two paths leaving '{cur}' do not meet at one addition; snnsim residual "
                                  "blocks are out = body(x) + shortcut(x)")
            body, short = sorted(paths, key=len, reverse=True)
            layers = layers + [import_block(body, short, _q=ends[0].id, _w={})]
            cur = ends[0].id

    start = next(n for n in nodes if n.op == "input")
    layers, stray = follow(start.id, [])
    if stray is not None:
        raise SnnsimError(f"addition '{stray.id}' adds a tensor computed outside the block it closes; snnsim "
                          "residual blocks are out = body(x) + shortcut(x)")
    return layers


# ----------------------------------------------------------------------------- naming
def _common_prefix(quals: list[str]) -> str:
    parts = [q.split(".") for q in quals]
    common = []
    for items in zip(*parts):
        if len(set(items)) != 1:
            break
        common.append(items[0])
    # never the whole name of a layer: a block needs children below it
    while common and any(len(p) == len(common) for p in parts):
        common.pop()
    return ".".join(common)


def _leaf_quals(layers):
    for layer in layers:
        if "body" in layer:                         # a residual block
            yield from _leaf_quals(layer["body"] + layer.get("shortcut", []))
        else:
            yield layer["_q"]


def _name(layers, prefix, weights, rename, used):
    """Give every layer its YAML name and collect the weights under the full snnsim name."""
    for layer in layers:
        q = layer.pop("_q")
        ws = layer.pop("_w")
        if "body" in layer:
            block = _common_prefix(list(_leaf_quals(layer["body"] + layer.get("shortcut", []))))
            if not block or not block.startswith(prefix) or block[len(prefix):] == "":
                block = prefix + q
            local = block[len(prefix):]
            full = prefix + local
            _name(layer["body"], full + ".", weights, rename, used)
            _name(layer.get("shortcut", []), full + ".", weights, rename, used)
        else:
            local = q[len(prefix):] if q.startswith(prefix) and len(q) > len(prefix) else q
            full = prefix + local
            for p, arr in ws.items():
                weights[f"{full}.{p}"] = arr
                if full != q:
                    rename[f"{q}.{p}"] = f"{full}.{p}"
        if full in used:
            local = f"{local}_{len(used)}"
            full = prefix + local
        used.add(full)
        layer["name"] = local


# ----------------------------------------------------------------------------- entry points
def _multi_step(module) -> bool | None:
    """True for a SpikingJelly module in multi-step mode (its example input and outputs carry T first)."""
    modes = {getattr(m, "step_mode") for m in module.modules() if isinstance(getattr(m, "step_mode", None), str)}
    if len(modes) > 1:
        raise SnnsimError("module mixes SpikingJelly step_mode 's' and 'm'; use one step mode throughout")
    return modes == {"m"}


def from_torch(module, example_input, *, timesteps: int | None = None, encoding: str = "direct",
               name: str | None = None, readout: str = "mean") -> TorchImport:
    """Convert ``module`` to an snnsim network; ``example_input`` is one batch it accepts.

    For a single-step module (snnTorch, Norse cells, SpikingJelly ``step_mode='s'``) the example is
    ``[N, *input_shape]`` and the module is one timestep; for SpikingJelly ``step_mode='m'`` it is
    ``[T, N, *input_shape]`` and ``timesteps`` defaults to its T. ``encoding``: 'direct' (the same input
    every step), 'rate' or 'events' (one input per step). Returns a ``TorchImport`` (``.spec``, ``.weights``,
    ``.model()`` (an ``snnsim.Model``), ``.network()``, ``.run(x)``, ``.save(yaml, npz)``).
    """
    import torch

    example = example_input if isinstance(example_input, torch.Tensor) else torch.as_tensor(
        np.asarray(example_input, np.float32))
    multi = _multi_step(module)
    lead = 2 if multi else 1
    if example.ndim <= lead:
        raise SnnsimError(f"example_input: shape {list(example.shape)} has no per-sample dimensions "
                          f"(expected {'[T, N, ...]' if multi else '[N, ...]'})")
    notes = []
    module = module.eval()
    try:
        import torch.fx  # noqa: F401

        graph = _fx_graph(module, example, lead)
        layers = _nest(graph)
        notes.append("graph read with torch.fx")
    except _Refuse:
        raise
    except SnnsimError:
        raise
    except Exception as e:        # fx cannot trace data-dependent Python: fall back to module order
        reason = f"{type(e).__name__}: {str(e).splitlines()[0][:100]}" if str(e) else type(e).__name__
        if not isinstance(module, _chain_containers()):
            raise _refuse("", module, f"torch.fx could not trace it ({reason}) and it is not a chain "
                                      "container (nn.Sequential, SequentialState)") from None
        layers = _module_order(module, "", reason)
        notes.append(f"graph read in module order (torch.fx could not trace: {reason})")
    if not layers:
        raise SnnsimError("module: no layers snnsim can run were found")
    weights, rename = {}, {}
    _name(layers, "", weights, rename, set())
    T = int(timesteps or (example.shape[0] if multi else 4))
    spec = dict(name=name or type(module).__name__, input_shape=[int(s) for s in example.shape[lead:]],
                timesteps=T, encoding=encoding, readout=dict(reduce=readout), fold_batchnorm=False)
    if rename:
        spec["weights"] = dict(rename=rename)
    spec["layers"] = layers
    notes.insert(0, f"converted from {type(module).__module__}.{type(module).__name__} by snnsim.from_torch")
    return TorchImport(spec, weights, notes)


def load_module(ref: str):
    """``FILE.py:factory`` (a function or class called with no arguments) or a file saved with
    ``torch.save(module)``; returns the module."""
    import importlib.util
    from pathlib import Path

    import torch

    path, _, attr = ref.partition(":")
    p = Path(path)
    if not p.exists():
        raise SnnsimError(f"{path}: file not found")
    if not attr:
        try:
            return torch.load(p, weights_only=False)
        except Exception as e:
            raise SnnsimError(f"{path}: not a module saved with torch.save ({str(e).splitlines()[0]}); "
                              "or give FILE.py:factory") from None
    spec = importlib.util.spec_from_file_location(p.stem, p)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except Exception as e:
        raise SnnsimError(f"{path}: importing it failed: {type(e).__name__}: {e}") from None
    if not hasattr(mod, attr):
        raise SnnsimError(f"{path}: has no '{attr}'")
    return getattr(mod, attr)()

