"""snnsim -> NIR: write a network (spec + weights) as a NIR graph.

The graph is built from the *runnable* network (``snnsim.network.build_network``), so batch norm is
exported folded into the preceding linear/conv layer exactly as snnsim runs it, and the numbers in the
file are the ones snnsim computes with. Time constants are converted with the step ``dt`` (default 1e-4 s,
what snnTorch and SpikingJelly assume); ``dt``, the spike rule and the other conventions go into the graph
metadata (``docs/nir.md``). What NIR cannot express is an error naming the layer; with ``allow_lossy`` the
neuron-level cases (subtract reset) become a warning naming the layer instead.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from .io import META_DT, META_LOSSY, META_SOURCE, META_SPIKE_RULE, NirError, require_nir, write_graph

DISCRETISATION = ("forward Euler with step dt, one snnsim timestep per dt: "
                  "LIF H = v + (I - (v - v_reset))/(tau/dt) if r == 1, H = v - (v - v_reset)/(tau/dt) + I if "
                  "r == tau/dt; IF H = v + dt*r*I; spike H >= v_threshold (spike_rule ge) or H > v_threshold (gt); "
                  "v = v_reset where spiking")


@dataclass
class ExportResult:
    graph: object                                   # nir.NIRGraph
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


READERS = ("snntorch",)
SNNTORCH_DT = 1e-4     # snnTorch 1.0's import_from_nir computes beta = 1 - 1e-4 / tau whatever the file says


def export_nir(spec, weights: dict, *, dt: float = 1e-4, allow_lossy: bool = False,
               reader: str | None = None) -> ExportResult:
    """Build the NIR graph of ``spec`` with checked ``weights`` (as ``snnsim.weights.check_weights`` gives).

    ``reader='snntorch'`` writes the graph the way snnTorch 1.0's ``import_from_nir`` runs it identically (see
    docs/nir.md): residual sums as edges from both paths into the next node (nirtorch sums a node's inputs),
    Flatten with ``start_dim=1`` (snnTorch applies it to the batched tensor; NIR's own type check then fails,
    so read the file with ``nir.read(path, type_check=False)``), and only layers snnTorch's ``Leaky``
    computes exactly; anything else is an error naming the layer or node."""
    require_nir()
    if not (dt > 0 and math.isfinite(dt)):
        raise NirError(f"--dt: expected a positive time step in seconds, got {dt}")
    if reader is not None and reader not in READERS:
        raise NirError(f"--for: expected one of {', '.join(READERS)}, got {reader!r}")
    if reader == "snntorch" and dt != SNNTORCH_DT:
        raise NirError(f"--for snntorch: snnTorch's import assumes dt = {SNNTORCH_DT:g}; leave --dt at its default")
    from ..network import build_network

    net = build_network(spec, weights)
    exporter = _Exporter(spec, float(dt), allow_lossy)
    exporter.reader = reader
    result = exporter.run(net)
    notes = peer_notes(result.graph)
    if reader == "snntorch":
        bad = [n for n in notes if n.startswith("snnTorch 1.0 cannot")]
        if bad:
            raise NirError(f"--for snntorch: {bad[0]}")
        result.notes.append("written for snnTorch 1.0: read it with nir.read(path, type_check=False), then "
                            "snntorch.import_nir.import_from_nir(graph)")
    else:
        result.notes.extend(notes)
    return result


# The node kinds each peer's NIR importer builds a module for that runs as snnsim does (snnTorch 1.0
# snntorch/import_nir.py import_from_nir; Norse 1.1 norse/torch/utils/import_nir.py _import_norse_module);
# Input/Output are virtual. Neither runs a recurrent layer's subgraph (NIRGraph): snnTorch's import fails on it,
# Norse's runs its cycle differently (tests/test_rlif_nir.py).
PEER_READS = {
    "snnTorch 1.0": {"Affine", "Linear", "Conv2d", "Flatten", "AvgPool2d", "IF", "LIF", "CubaLIF"},
    "Norse 1.1": {"Affine", "Linear", "Conv2d", "Flatten", "SumPool2d", "IF", "LIF", "CubaLIF"},
}


def peer_notes(graph) -> list[str]:
    """One line per peer that cannot read the graph, naming the nodes and kinds it runs no module for."""
    notes = []
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()
             if type(node).__name__ not in ("Input", "Output")}
    for peer, reads in PEER_READS.items():
        bad = {name: kind for name, kind in kinds.items() if kind not in reads}
        if bad:
            listed = ", ".join(f"'{n}' ({k})" for n, k in list(bad.items())[:4])
            more = f" and {len(bad) - 4} more" if len(bad) > 4 else ""
            notes.append(f"{peer} cannot read node {listed}{more}: its NIR import has no "
                         f"{'/'.join(sorted(set(bad.values())))} module that runs as snnsim does")
    if "Flatten" in kinds.values():
        notes.append("snnTorch 1.0 and Norse 1.1 apply a Flatten node's start_dim (0, per sample, as NIR counts) to "
                     "the batched tensor, so they flatten the batch too: run their import one sample at a time")
    return notes


def export_file(network_path, weights_path, out_path, *, dt: float = 1e-4, allow_lossy: bool = False,
                reader: str | None = None) -> ExportResult:
    from ..layers import load_spec
    from ..weights import load_weights

    spec = load_spec(network_path)
    weights = load_weights(spec, weights_path)
    result = export_nir(spec, weights, dt=dt, allow_lossy=allow_lossy, reader=reader)
    write_graph(result.graph, out_path)
    return result


class _Exporter:
    def __init__(self, spec, dt, allow_lossy):
        self.spec, self.dt, self.allow_lossy = spec, dt, allow_lossy
        self.nodes: dict = {}
        self.edges: list = []
        self.warnings: list[str] = []
        self.notes: list[str] = []
        self.rules: Counter = Counter()

    reader = None        # 'snntorch': the conventions of snnTorch's importer (export_nir)

    def lossy(self, name: str, kind: str, msg: str, fix: str) -> None:
        text = f"layer '{name}' ({kind}): {msg}"
        if not self.allow_lossy:
            raise NirError(f"{text}; {fix}, or pass --allow-lossy to export it anyway with a warning")
        self.warnings.append(text)

    def refuse(self, name: str, kind: str, msg: str) -> NirError:
        return NirError(f"layer '{name}' ({kind}): {msg}")

    def add(self, name: str, node, srcs: list[str]) -> list[str]:
        if name in self.nodes:  # pragma: no cover - snnsim layer names are unique
            raise NirError(f"layer name '{name}' used twice")
        self.nodes[name] = node
        for s in srcs:
            self.edges.append((s, name))
        return [name]

    def run(self, net):
        import nir

        spec = self.spec
        self.net = net
        names = {op.name for op in _walk(net.ops)}
        self.in_name = "input" if "input" not in names else "nir_input"
        out_name = "output" if "output" not in names else "nir_output"
        self.nodes[self.in_name] = nir.Input(input_type={"input": np.array(spec.input_shape)})
        last = self.emit(net.ops, [self.in_name])
        out_shape = np.array(spec.output_shape)
        self.add(out_name, nir.Output(output_type={"output": out_shape}), last)

        if spec.readout.source == "membrane":
            self.warnings.append("readout 'membrane' (the last layer's membrane) is recorded in the metadata only; "
                                 "the NIR graph's output is the last layer's spikes")
        if spec.encoding.kind == "rate":
            self.warnings.append("rate encoding (Bernoulli spikes drawn by snnsim) is recorded in the metadata only; "
                                 "the NIR graph takes the input as given at each step")
        rule = self.rules.most_common(1)[0][0] if self.rules else "gt"
        if self.rules.get("ge"):
            self.notes.append(f"{self.rules['ge']} neuron layer(s) spike at v >= v_threshold (SpikingJelly's rule; "
                              "NIR's docstrings say v > v_threshold); recorded as spike_rule in the node metadata")
        meta = {META_SOURCE: "snnsim", "snnsim_version": __version__, META_DT: self.dt, META_SPIKE_RULE: rule,
                "reset": "hard", "discretisation": DISCRETISATION, "network": spec.name,
                "timesteps": int(spec.timesteps), "encoding": spec.encoding.kind,
                "encoding_seed": int(spec.encoding.seed), "encoding_gain": float(spec.encoding.gain),
                "readout_reduce": spec.readout.reduce, "readout_source": spec.readout.source}
        if self.warnings:
            meta[META_LOSSY] = "; ".join(self.warnings)
        try:
            if self.reader:
                meta["reader"] = self.reader
            graph = nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata=meta, type_check=self.reader is None)
        except Exception as e:  # pragma: no cover - an exporter bug, reported with NIR's own words
            raise NirError(f"the exported graph fails NIR's type check: {e}") from None
        return ExportResult(graph, self.warnings, self.notes)

    def emit(self, ops, srcs: list[str]) -> list[str]:
        """Add the nodes of ``ops`` fed by ``srcs``; each kind maps its own op (``Kind.nir_export``)."""
        from ..layers import kind_of

        for op in ops:
            export = kind_of(op.layer).nir_export
            if export is None:
                raise self.refuse(op.name, op.layer.kind, "NIR has no equivalent node")
            srcs = export(op, self, srcs)
        return srcs

def _walk(ops):
    from ..layers import walk_ops

    return walk_ops(ops)
