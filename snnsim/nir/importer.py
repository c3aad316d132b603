"""NIR -> snnsim: turn a NIR graph into a network YAML document plus a weights dictionary.

The graph must be feed-forward with one input and one output, except for cycles that a layer kind runs as one
layer (``Kind.nir_cycle``: a recurrent layer's neuron and recurrent weight feeding each other). Where two paths
split and meet again (a residual block) the node where they meet receives the sum of both, which becomes an
snnsim ``residual`` layer. Neuron ODEs are discretised with forward Euler at the step ``dt`` (one snnsim
timestep = ``dt``); the exact update of each node type is in ``docs/nir.md`` and in the header of the YAML
written here.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import numpy as np
import yaml

from .. import __version__
from ..layers.registry import nir_cycle_reader, nir_reader
from ..layers.residual import import_block
from ..layers.scale import scale_layer
from ..limits import over
from .io import (META_DT, META_LOSSY, META_SOURCE, META_SPIKE_RULE, NODE_SPIKE_RULE, SPIKE_RULES, NirError,
                 clean_meta, float32_decimal, read_graph, require_nir)

ENCODINGS = ("events", "direct", "rate")


@dataclass
class ImportResult:
    spec: dict                          # the YAML document (parse_spec accepts it)
    weights: dict[str, np.ndarray]      # float32 arrays keyed by snnsim weight names
    header: str                         # comment block written above the YAML
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dt: float | None = None

    def yaml_text(self) -> str:
        body = yaml.dump(self.spec, Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=120)
        return self.header + body


class _Dumper(yaml.SafeDumper):
    """One line per layer (``{name: fc1, type: linear, ...}``); residual blocks keep their nested lists."""


def _represent_dict(dumper, d):
    flow = "type" in d and "body" not in d
    return dumper.represent_mapping("tag:yaml.org,2002:map", d.items(), flow_style=True if flow else None)


_Dumper.add_representer(dict, _represent_dict)


@dataclass
class _L:
    """One snnsim layer being built: local name, YAML fields (a block's paths are lists of _L), parameter arrays."""

    name: str
    fields: dict
    params: dict = field(default_factory=dict)


class _Pass:
    """A node that passes its input on unchanged (a sub-graph's Input/Output once inlined)."""


class _Add:
    """Where NIR sums the outputs of several nodes (all inputs of a node are added), made explicit."""


@dataclass
class _Cycle:
    """A cycle of nodes that one layer kind reads as one layer (``Kind.nir_cycle``); ``nodes``: its members."""

    kind: object
    claim: object
    nodes: dict


FIXES = ("norse-tau",)


def import_nir(path: str | Path, *, dt: float | None = None, spike_rule: str | None = None,
               timesteps: int | None = None, encoding: str | None = None, name: str | None = None,
               fix: tuple[str, ...] = ()) -> ImportResult:
    """Read ``path`` and convert it. ``dt`` overrides the graph's metadata; without either, a graph with
    time constants is an error. ``spike_rule`` ('gt' or 'ge') overrides the metadata; the default is NIR's
    ``v > threshold``. ``fix``: 'norse-tau' reads every time constant as Norse 1.1's ``to_nir`` writes it,
    ``dt / tau_inv`` (= dt * tau, norse/norse#411 on GitHub), so the true tau is the written one divided by ``dt``."""
    bad = [f for f in fix if f not in FIXES]
    if bad:
        raise NirError(f"--fix: unknown fix {bad[0]!r}; known: {', '.join(FIXES)}")
    require_nir()
    if dt is not None and not (dt > 0 and math.isfinite(dt)):
        raise NirError(f"--dt: expected a positive time step in seconds, got {dt}")
    if spike_rule is not None and spike_rule not in SPIKE_RULES:
        raise NirError(f"--spike-rule: expected gt or ge, got {spike_rule!r}")
    if encoding is not None and encoding not in ENCODINGS:
        raise NirError(f"--encoding: expected one of {', '.join(ENCODINGS)}, got {encoding!r}")
    graph = read_graph(path)
    importer = _Importer(graph, str(path), dt, spike_rule, timesteps, encoding, name)
    importer.norse_tau = "norse-tau" in fix
    return importer.run()


def write_import(result: ImportResult, yaml_path: str | Path, weights_path: str | Path) -> None:
    from ..outputs import save_npz, write_text

    # the weights first: a YAML that exists always has its weights next to it
    save_npz(weights_path, result.weights, "--weights-out")
    write_text(yaml_path, result.yaml_text(), "--out")


# ----------------------------------------------------------------------------- the converter
class _Importer:
    def __init__(self, graph, source, dt, spike_rule, timesteps, encoding, name):
        self.source = source
        self.meta = clean_meta(graph.metadata)
        self.dt_opt, self.rule_opt = dt, spike_rule
        self.timesteps, self.encoding, self.name = timesteps, encoding, name
        self.notes: list[str] = []
        self.warnings: list[str] = []
        self.used_types: set[str] = set()
        self.rounded: list[str] = []
        self.inside: dict = {}              # the nodes of the cycles read as one layer, by name
        self.nodes, self.edges = self._claim_cycles(*self._inline(graph, ""))
        self.dt_used = False
        meta_rule = self.choice(self.meta, META_SPIKE_RULE, SPIKE_RULES, "the graph")
        self.default_rule = spike_rule or meta_rule or "gt"

    def choice(self, meta: dict, key: str, choices, where: str):
        """A metadata entry that must be one of ``choices`` when present: a wrong value is an error, never a
        silent fall-back to the default."""
        v = meta.get(key)
        if v is not None and v not in choices:
            raise NirError(f"{self.source}: {where}'s metadata '{key}' is {v!r}; expected one of "
                           f"{', '.join(choices)} (or leave it out)")
        return v

    # --- errors and parameters
    def err(self, node: str, msg: str) -> NirError:
        v = self.inside.get(node, self.nodes.get(node))
        what = "cycle of " + ", ".join(v.nodes) if isinstance(v, _Cycle) else type(v).__name__
        return NirError(f"{self.source}: node '{node}' ({what}): {msg}")

    @property
    def dt(self) -> float:
        self.dt_used = True
        if self.dt_opt is not None:
            return float(self.dt_opt)
        v = self.meta.get(META_DT)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 and math.isfinite(v):
            return float(v)
        if v is not None:
            raise NirError(f"{self.source}: the graph's metadata '{META_DT}' is {v!r}, not a positive time step in "
                           "seconds; give --dt to override it")
        raise NirError(f"{self.source}: the graph does not record its time step (no '{META_DT}' in its metadata); "
                       "give --dt in seconds (snnTorch and SpikingJelly export with dt=1e-4)")

    def dt_origin(self) -> str:
        if self.dt_opt is not None:
            return "from --dt"
        return "from the graph metadata"

    def arr(self, node: str, fld: str, value) -> np.ndarray:
        try:
            a = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise self.err(node, f"'{fld}' is not numeric") from None
        if a.size == 0:
            raise self.err(node, f"'{fld}' is empty")
        if not np.all(np.isfinite(a)):
            raise self.err(node, f"'{fld}' contains NaN or Inf")
        return a

    def uniform(self, node: str, fld: str, value, shape) -> float:
        a = self.arr(node, fld, value)
        self.check_param_shape(node, fld, a, shape)
        lo, hi = float(a.min()), float(a.max())
        if lo != hi:
            raise self.err(node, f"'{fld}' varies across neurons ({lo:g} to {hi:g}); an snnsim neuron layer "
                                 "has one value of each parameter")
        return lo

    def check_param_shape(self, node, fld, a, shape):
        if a.size != 1 and tuple(a.shape) != tuple(shape) and a.size != math.prod(shape):
            raise self.err(node, f"'{fld}' has shape {list(a.shape)} but the node's input has shape {list(shape)}")

    def weight(self, node: str, fld: str, value) -> np.ndarray:
        a = np.asarray(value)
        if a.dtype.kind not in "fiub":
            raise self.err(node, f"'{fld}' is not numeric")
        a32 = np.ascontiguousarray(a, dtype=np.float32)
        if not np.all(np.isfinite(a32)):
            raise self.err(node, f"'{fld}' contains NaN or Inf (or values beyond float32)")
        if a.dtype != np.float32 and a.dtype.kind == "f" and not np.array_equal(a32.astype(a.dtype), a):
            self.rounded.append(node)
        return a32

    # --- graph structure
    def _inline(self, graph, prefix):
        """Flatten sub-graphs into one node dict; their Input/Output nodes become pass-through nodes."""
        import nir

        nodes, edges = {}, []
        ins, outs = {}, {}
        for name, node in graph.nodes.items():
            full = prefix + name
            if isinstance(node, nir.NIRGraph):
                sub_nodes, sub_edges = self._inline(node, full + ".")
                sub_in = [n for n, v in node.nodes.items() if isinstance(v, nir.Input)]
                sub_out = [n for n, v in node.nodes.items() if isinstance(v, nir.Output)]
                if len(sub_in) != 1 or len(sub_out) != 1:
                    raise NirError(f"{self.source}: subgraph '{full}' needs exactly one Input and one Output node, "
                                   f"has {len(sub_in)} and {len(sub_out)}")
                nodes.update(sub_nodes)
                edges.extend(sub_edges)
                ins[name], outs[name] = f"{full}.{sub_in[0]}", f"{full}.{sub_out[0]}"
                nodes[ins[name]], nodes[outs[name]] = _Pass(), _Pass()
            else:
                nodes[full] = node
        for a, b in graph.edges:
            src = outs.get(a, prefix + a)
            dst = ins.get(b, prefix + b)
            edges.append((src, dst))
        if prefix:
            return nodes, edges
        return self._contract(nodes, edges)

    def _contract(self, nodes, edges):
        """Remove pass-through nodes, joining their inputs to their outputs."""
        for p in [n for n, v in nodes.items() if isinstance(v, _Pass)]:
            preds = [a for a, b in edges if b == p]
            succs = [b for a, b in edges if a == p]
            edges = [e for e in edges if p not in e]
            for a in preds:
                for b in succs:
                    if (a, b) in edges:
                        raise NirError(f"{self.source}: nodes '{a}' and '{b}' are connected twice through "
                                       f"subgraph port '{p}'")
                    edges.append((a, b))
            del nodes[p]
        return nodes, edges

    def _claim_cycles(self, nodes, edges):
        """Replace every cycle a layer kind reads as one layer (a recurrent layer: snnTorch exports RLeaky's
        neuron and recurrent weight as nodes that feed each other) by one node; any other cycle stays, and
        ``run`` refuses it. The new node is named after the subgraph its members share ('rec' for 'rec.lif'
        and 'rec.w_rec'), else after the member the rest of the graph feeds."""
        succ, pred = {n: [] for n in nodes}, {n: [] for n in nodes}
        for a, b in edges:
            succ[a].append(b)
            pred[b].append(a)
        seen = set()
        for n in list(nodes):
            if n in seen:
                continue
            comp = self._reach(n, succ) & self._reach(n, pred)
            seen |= comp
            if len(comp) == 1 and n not in succ[n]:
                continue
            inner = [(a, b) for a, b in edges if a in comp and b in comp]
            entries = {b for a, b in edges if b in comp and a not in comp}
            exits = {a for a, b in edges if a in comp and b not in comp}
            members = {m: nodes[m] for m in sorted(comp)}
            found = nir_cycle_reader(members, inner, entries, exits)
            if found is None:
                continue
            shared = os.path.commonprefix(list(members))
            name = shared[: shared.rfind(".")] if "." in shared else min(entries or comp)
            for m in comp:
                del nodes[m]
            while name in nodes:
                name += "_"
            nodes[name] = _Cycle(*found, members)
            self.inside.update(members)
            edges = list(dict.fromkeys((name if a in comp else a, name if b in comp else b)
                                       for a, b in edges if (a, b) not in inner))
        return nodes, edges

    def run(self) -> ImportResult:
        import nir

        nodes, edges = self.nodes, self.edges
        inputs = [n for n, v in nodes.items() if isinstance(v, nir.Input)]
        outputs = [n for n, v in nodes.items() if isinstance(v, nir.Output)]
        if len(inputs) != 1:
            listed = f" ({', '.join(inputs)})" if inputs else ""
            raise NirError(f"{self.source}: the graph has {len(inputs)} Input nodes{listed}; "
                           "snnsim networks have exactly one input")
        if len(outputs) != 1:
            listed = f" ({', '.join(outputs)})" if outputs else ""
            raise NirError(f"{self.source}: the graph has {len(outputs)} Output nodes{listed}; "
                           "snnsim networks have exactly one output")
        self.input, self.output = inputs[0], outputs[0]
        self.succ = {n: [] for n in nodes}
        self.pred = {n: [] for n in nodes}
        for a, b in edges:
            self.succ[a].append(b)
            self.pred[b].append(a)
        if self.pred[self.input]:
            raise NirError(f"{self.source}: Input node '{self.input}' has incoming edges from "
                           f"{', '.join(self.pred[self.input])}")
        if self.succ[self.output]:
            raise NirError(f"{self.source}: Output node '{self.output}' has outgoing edges")
        try:
            order = list(TopologicalSorter({n: self.pred[n] for n in nodes}).static_order())
        except CycleError as e:
            cycle = e.args[1]
            raise NirError(f"{self.source}: the graph has a cycle {' -> '.join(cycle)}; snnsim runs feed-forward "
                           "networks and the recurrent layers listed in docs/nir.md (a LIF node and an Affine or "
                           "Linear node feeding each other, as snnTorch RLeaky exports; not RSynaptic)") from None
        fwd = self._reach(self.input, self.succ)
        back = self._reach(self.output, self.pred)
        for n in order:
            if n not in fwd:
                raise NirError(f"{self.source}: node '{n}' is not reached from the input node '{self.input}'")
            if n not in back:
                raise NirError(f"{self.source}: node '{n}' does not lead to the output node '{self.output}'")
        order = self._explicit_adds(order)
        self.topo = {n: i for i, n in enumerate(order)}
        self._postdominators(order)

        shape = self._drop_batch(self._input_shape())
        layers, out_shape = self._seq(self.input, self.output, shape)
        if not layers:
            raise NirError(f"{self.source}: the graph has no layers between its input and output")
        self._check_output(out_shape)
        spec, weights = self._document(shape, layers)
        return ImportResult(spec, weights, self._header(), self.notes, self.warnings,
                            self.dt if self.dt_used else None)

    def _explicit_adds(self, order):
        """Give every sum its own node: consumers that read the same several nodes read one _Add node instead
        (nirtorch writes a residual block's sum as edges from both summands to every consumer)."""
        groups: dict[tuple, list] = {}
        for n in order:
            if len(self.pred[n]) > 1 and not isinstance(self.nodes[n], _Add):
                groups.setdefault(tuple(sorted(self.pred[n], key=order.index)), []).append(n)
        for srcs, consumers in groups.items():
            j = f"{consumers[0]}.sum"
            while j in self.nodes:
                j += "_"
            self.nodes[j] = _Add()
            self.succ[j], self.pred[j] = list(consumers), list(srcs)
            for c in consumers:
                self.pred[c] = [j]
            for s in srcs:
                self.succ[s] = [c for c in self.succ[s] if c not in consumers] + [j]
            order.insert(min(order.index(c) for c in consumers), j)
        return order

    @staticmethod
    def _reach(start, nxt):
        seen, stack = {start}, [start]
        while stack:
            for m in nxt[stack.pop()]:
                if m not in seen:
                    seen.add(m)
                    stack.append(m)
        return seen

    def _postdominators(self, order):
        pdom = {}
        for n in reversed(order):
            sets = [pdom[s] for s in self.succ[n]]
            pdom[n] = {n} | (set.intersection(*sets) if sets else set())
        self.ipdom = {n: min(p - {n}, key=self.topo.get) for n, p in pdom.items() if len(p) > 1}

    batch = 0       # the example batch size an exporter wrote into the Input and Output shapes (0: none)

    def _drop_batch(self, shape):
        """Exporters that trace an example batch (Norse, snnTorch without ignore_dims) write the batch size as
        the Input's first dimension; a first layer whose weights take the rest shows it. Drop it, with a note."""
        import nir

        first = [self.nodes[n] for n in self.succ[self.input]]
        if len(shape) < 2 or not first:
            return shape
        node = first[0]
        takes_rest = False
        if isinstance(node, (nir.Affine, nir.Linear)):
            n_in = np.asarray(node.weight).shape[-1]
            takes_rest = len(shape) == 2 and n_in == shape[1] and n_in != int(np.prod(shape))
        elif isinstance(node, nir.Conv2d):
            takes_rest = len(shape) == 4 and np.asarray(node.weight).shape[1] * node.groups == shape[1]
        if not takes_rest:
            return shape
        self.batch = shape[0]
        self.notes.append(f"Input node '{self.input}' has shape {list(shape)}: its first dimension is the "
                          f"exporter's example batch ({shape[0]} samples); the network input is {list(shape[1:])}")
        return tuple(shape[1:])

    def _input_shape(self):
        v = self.nodes[self.input].input_type.get("input")
        try:
            shape = tuple(int(s) for s in np.asarray(v).reshape(-1))
        except (TypeError, ValueError):
            shape = ()
        if not shape or any(s < 1 for s in shape):
            raise NirError(f"{self.source}: Input node '{self.input}' has no valid shape (got {v!r})")
        return shape

    def _check_output(self, shape):
        v = self.nodes[self.output].output_type.get("output")
        try:
            want = tuple(int(s) for s in np.asarray(v).reshape(-1))
        except (TypeError, ValueError):
            return
        if self.batch and want and want[0] == self.batch and math.prod(want[1:]) == math.prod(shape):
            return                                  # the Output carries the example batch too
        if want and math.prod(want) != math.prod(shape):
            raise NirError(f"{self.source}: Output node '{self.output}' has shape {list(want)} but the graph "
                           f"computes {list(shape)}")

    def _seq(self, n, stop, shape):
        """Layers from node ``n`` (included) up to node ``stop`` (excluded), and the shape reaching ``stop``."""
        layers = []
        while n != stop:
            if n != self.input:
                new, shape = self._convert(n, shape)
                layers.extend(new)
            succ = self.succ[n]
            if len(succ) == 1:
                nxt = succ[0]
                if nxt != stop and len(self.pred[nxt]) > 1:
                    raise NirError(f"{self.source}: node '{nxt}' sums inputs from {', '.join(self.pred[nxt])}, which "
                                   "do not split from one node and meet here (not a residual block snnsim can run)")
            elif len(succ) == 2:
                join = self.ipdom[n]
                inside = self._reach(n, self.succ)
                outside = [p for p in self.pred[join] if p not in inside]
                if outside:
                    raise NirError(f"{self.source}: node '{join}' sums the paths that split at '{n}' and also the "
                                   f"output of '{outside[0]}' from elsewhere (not a residual block snnsim can run)")
                for s in succ:
                    if s != join and len(self.pred[s]) > 1:
                        raise NirError(f"{self.source}: node '{s}' sums inputs from {', '.join(self.pred[s])} inside "
                                       f"the paths that split at '{n}' (not a residual block snnsim can run)")
                a, sa = self._seq(succ[0], join, shape)
                b, sb = self._seq(succ[1], join, shape)
                if sa != sb:
                    raise NirError(f"{self.source}: node '{join}' adds inputs of shapes {list(sa)} and {list(sb)}")
                if not a:
                    a, b = b, a
                layers.append(self._residual(join, a, b))
                shape = sa
                nxt = join
            else:
                raise NirError(f"{self.source}: node '{n}' feeds {len(succ)} nodes ({', '.join(succ)}); "
                               "snnsim runs chains and two-way residual blocks")
            n = nxt
        return layers, shape

    def _residual(self, join, body, shortcut):
        import nir

        node = self.nodes[join]
        if isinstance(node, nir.Scale) and np.all(np.asarray(node.scale) == 1) and join.endswith(".add"):
            block = join[: -len(".add")]        # snnsim's own export: '<block>.add'
            strip = block + "."
        else:                                   # name the block after what its layers share: 'b1_conv1' -> 'b1'
            names = [layer.name for layer in body + shortcut]
            strip = os.path.commonprefix(names) if names else ""
            cut = max(strip.rfind("."), strip.rfind("_"))
            strip = strip[: cut + 1] if cut > 0 else ""
            self.n_res = getattr(self, "n_res", 0) + 1
            block = strip[:-1] if strip else f"residual{self.n_res}"
        for layer in body + shortcut:
            if strip and layer.name.startswith(strip) and len(layer.name) > len(strip):
                layer.name = layer.name[len(strip):]
        return _L(block, import_block(body, shortcut))

    # --- node conversion: a layer kind reads the node types it lists (``Kind.from_nir``, given this importer
    # for err, arr, uniform, weight, pair, dt, tau_steps, spike_rule, notes, layer and scale_layer)
    def _convert(self, n, shape):
        node = self.nodes[n]
        if isinstance(node, _Cycle):
            self.used_types |= {type(m).__name__ for m in node.nodes.values()}
            return node.kind.from_nir(n, node.claim, shape, self)
        t = type(node).__name__
        kind = nir_reader(t)
        if kind is not None:
            layers, shape = kind.from_nir(n, node, shape, self)
        else:
            conv = getattr(self, f"_n_{t}", None)
            if conv is None:
                reason = {
                    "Output": "an Output node inside the graph",
                    "Input": "a second Input node",
                }.get(t, "this node type is not supported")
                raise self.err(n, reason)
            layers, shape = conv(n, node, shape)
        if layers:
            self.used_types.add(t)
        return layers, shape

    def _n__Add(self, n, node, shape):
        return [], shape

    def scale_layer(self, name, s, shape):
        self.used_types.add("Scale")
        return scale_layer(self, name, s, shape)

    def layer(self, name: str, fields: dict, params: dict | None = None) -> _L:
        """One snnsim layer for a kind's ``from_nir``: local name, YAML fields, parameter arrays."""
        return _L(name, fields, params or {})

    def pair(self, n, fld, v, minimum=1):
        a = np.asarray(v).reshape(-1)
        if a.size == 1:
            a = np.repeat(a, 2)
        if a.size != 2 or a.dtype.kind not in "iuf" or np.any(a != np.round(a)) or np.any(a < minimum):
            raise self.err(n, f"'{fld}' must be an integer >= {minimum} or a pair of them, "
                              f"got {np.asarray(v).tolist()}")
        return [int(a[0]), int(a[1])]

    def _n_Delay(self, n, node, shape):
        d = self.arr(n, "delay", node.delay)
        if np.all(d == 0):
            return [], shape
        raise self.err(n, f"a delay of {d.max():g} s: snnsim has no delay lines; only zero delays can be imported")

    def spike_rule(self, n, node):
        """A spiking node's rule: --spike-rule, else its metadata, else the graph's."""
        if self.rule_opt:
            return self.rule_opt
        return self.choice(clean_meta(node.metadata), NODE_SPIKE_RULE, SPIKE_RULES, f"node '{n}'") or self.default_rule

    norse_tau = False

    def tau_steps(self, n, fld, value, shape):
        """A time constant in timesteps (tau / dt), checked for forward Euler."""
        tau = self.uniform(n, fld, value, shape)
        if self.norse_tau:
            tau = tau / self.dt            # Norse wrote dt * tau
        tau_s = tau / self.dt
        if not tau_s > 1:
            hint = ""
            if not self.norse_tau and tau_s / self.dt > 1:
                hint = ("; if Norse's to_nir wrote this file (it writes tau = dt * tau, norse/norse#411 on GitHub), "
                        "add --fix norse-tau")
            raise self.err(n, f"{fld}/dt = {tau:g}/{self.dt:g} = {tau_s:g} is not > 1; forward Euler needs a time step "
                              f"shorter than the time constant (give a smaller --dt){hint}")
        return float32_decimal(tau_s)

    # --- output
    def _document(self, input_shape, layers):
        weights = {}
        used = set()

        def emit(items, prefix):
            out = []
            for item in items:
                local = item.name
                k = 1
                while f"{prefix}{local}" in used:
                    local = f"{item.name}_{k}"
                    k += 1
                full = f"{prefix}{local}"
                used.add(full)
                d = {"name": local, **item.fields}
                for p, a in item.params.items():
                    weights[f"{full}.{p}"] = a
                for key, v in d.items():            # a block's paths: lists of layers
                    if isinstance(v, list) and v and isinstance(v[0], _L):
                        d[key] = emit(v, full + ".")
                out.append(d)
            return out

        docs = emit(layers, "")
        meta = self.meta
        src = meta.get("network") if meta.get(META_SOURCE) == "snnsim" else None
        name = self.name or src or Path(self.source).stem
        T = meta.get("timesteps")
        if self.timesteps is None and T is not None and (isinstance(T, bool) or not isinstance(T, int) or T < 1 or over("timesteps", T)):
            raise NirError(f"{self.source}: the graph's metadata 'timesteps' is {T!r}, not a positive whole number "
                           f"within the limit; give -T to override it")
        T = self.timesteps or T or 4
        enc = self.encoding or self.choice(meta, "encoding", ENCODINGS, "the graph") or "events"
        spec = {"name": str(name),
                "description": f"Imported from NIR ({Path(self.source).name}) by snnsim import-nir.",
                "input_shape": list(input_shape), "timesteps": int(T)}
        if enc == "rate" and meta.get("encoding_gain") is not None:
            spec["encoding"] = {"type": "rate", "seed": int(meta.get("encoding_seed", 0)),
                                "gain": float(meta["encoding_gain"])}
        else:
            spec["encoding"] = enc
        reduce = meta.get("readout_reduce") if meta.get("readout_reduce") in ("mean", "last") else "mean"
        source = meta.get("readout_source") if meta.get("readout_source") in ("output", "membrane") else "output"
        spec["readout"] = {"reduce": reduce, "source": source}
        spec["layers"] = docs
        if self.rounded:
            rounded = sorted(set(self.rounded))
            more = " ..." if len(rounded) > 6 else ""
            self.notes.append("float64 parameters rounded to float32 (snnsim computes in float32): nodes "
                              f"{', '.join(rounded[:6])}{more}")
        lossy = meta.get(META_LOSSY)
        if isinstance(lossy, str) and lossy:
            self.warnings.append(f"the exporter recorded a lossy export: {lossy}")
        # validate what we wrote: the same checks `snnsim run` makes
        from ..errors import SpecError, WeightError
        from ..layers import parse_spec
        from ..weights import check_weights

        try:
            parsed = parse_spec(spec, "imported network")
            check_weights(parsed, weights, "imported weights")
        except (SpecError, WeightError) as e:  # pragma: no cover - a converter bug, reported clearly
            raise NirError(f"{self.source}: the converted network does not validate: {e}") from None
        return spec, weights

    def _header(self) -> str:
        m = self.meta
        lines = [f"Imported from NIR by `snnsim import-nir` (snnsim {__version__}).",
                 f"Source file: {Path(self.source).name}"]
        src = m.get(META_SOURCE)
        lines.append(f"Exporter: {src} (graph metadata)" if src else
                     "Exporter: not recorded in the graph metadata")
        if self.dt_used:
            lines.append(f"Time step: dt = {self.dt:g} s ({self.dt_origin()}); one snnsim timestep = dt.")
        else:
            lines.append("Time step: not needed (the graph has no time constants).")
        rule = self.default_rule
        origin = ("from --spike-rule" if self.rule_opt else
                  "from the graph metadata" if m.get(META_SPIKE_RULE) in SPIKE_RULES else "NIR's rule, the default")
        lines.append(f"Spike rule: {'v > v_threshold' if rule == 'gt' else 'v >= v_threshold'} ({origin}; "
                     "node metadata may override it per layer, see spike_rule below).")
        lines.append("Discretisation (forward Euler with step dt; I[t] is the node's input at step t):")
        eq = discretisation_lines(self.used_types)
        lines += ["  " + e for e in eq]
        if src != "snnsim":
            lines.append("NIR has no subtract reset: a model that used one (snnTorch's default) was changed by its "
                         "exporter, and spikes will differ.")
        for w in self.warnings:
            lines.append(f"WARNING: {w}")
        for note in self.notes:
            lines.append(f"Note: {note}")
        return "".join(f"# {ln}\n" for ln in lines)


_EQUATIONS = {
    "LIF": ["LIF  tau dv/dt = (v_leak - v) + R I  ->  lif with tau_s = tau/dt, v_reset = v_leak:",
            "       R = 1:      H = v + (I - (v - v_reset)) / tau_s      (decay_input: true)",
            "       R = tau_s:  H = v - (v - v_reset) / tau_s + I        (decay_input: false)",
            "       other R:    a scale layer '<node>.r' multiplies I by R, then decay_input: true",
            "       S = H > v_threshold (spike_rule gt) or H >= v_threshold (ge); v = v_reset where S, else H"],
    "LI": ["LI   as LIF without spikes -> li (the output is H); v_reset holds v_leak"],
    "IF": ["IF   dv/dt = R I  ->  if: H = v + dt*R*I (a scale layer '<node>.r' unless dt*R = 1); reset as LIF"],
    "CubaLIF": ["CubaLIF  tau_syn dI/dt = -I + w_in S; tau_mem dv/dt = (v_leak - v) + R I  ->  two layers:",
                "       '<node>.syn' li (tau_syn/dt; w_in as R above) gives I[t], then '<node>' lif (tau_mem/dt, R)",
                "       driven by the updated current I[t] (as snnTorch Synaptic and SpikingJelly CUBALIFNode)"],
    "CubaLI": ["CubaLI   as CubaLIF with an li membrane (no spikes)"],
    "I": ["I    dv/dt = R I  ->  li with tau 1e30, decay_input false: H = v - v/1e30 + dt*R*I, exactly v + dt*R*I"],
    "Threshold": ["Threshold  z = I > threshold  ->  threshold (stateless)"],
    "Scale": ["Scale  y = I * s  ->  scale (elementwise)"],
    "SumPool2d": ["SumPool2d  ->  sumpool2d (window sum)"],
    "AvgPool2d": ["AvgPool2d  ->  avgpool2d (window sum / window size, padding counted)"],
}


def discretisation_lines(types) -> list[str]:
    out = []
    for t, lines in _EQUATIONS.items():
        if t in types:
            out += lines
    return out or ["(no neuron nodes)"]
