"""NIR interchange, shared pieces: the error type, reading and checking a NIR file, metadata keys,
and helpers that export a model from snnTorch or SpikingJelly with the metadata snnsim needs.

NIR (Neuromorphic Intermediate Representation, ``nir`` 1.0.8) describes neurons as continuous-time ODEs;
every framework discretises them its own way and NIR files do not say which one wrote them, nor with what
time step. snnsim therefore writes its conventions (``dt``, spike rule, reset) into the graph metadata on
export, reads them back on import, and asks for ``--dt`` when a graph does not carry it. The equations are
in ``docs/nir.md`` and in the header of every imported YAML file.

- import: :func:`snnsim.nir.importer.import_nir` (CLI ``snnsim import-nir``)
- export: :func:`snnsim.nir.exporter.export_nir` (CLI ``snnsim export-nir``)
- from other frameworks: :func:`snntorch_to_nir`, :func:`spikingjelly_to_nir` (need torch and the framework)
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SnnsimError

# Relative tolerance for "this NIR parameter equals that convention" decisions (R == 1, R == tau/dt,
# dt*R == 1, v_leak == v_reset). Exporters write float32 or float64 values computed with different
# roundings (snnTorch: float32 dt/(1-beta)); 1e-6 accepts those and rejects genuine differences.
REL_TOL = 1e-6

# Graph-level metadata keys (all flat scalars or strings, so any HDF5 reader can see them).
META_SOURCE = "source"            # exporting framework: snnsim | snntorch | spikingjelly
META_DT = "dt"                    # seconds per timestep used to turn time constants into steps
META_SPIKE_RULE = "spike_rule"    # gt (v > thr, NIR's docstring) | ge (v >= thr, SpikingJelly/snnsim)
META_LOSSY = "lossy"              # text naming what an exporter changed, when it was allowed to
# Node-level metadata written by snnsim's exporter so a snnsim -> NIR -> snnsim round trip is exact.
NODE_SPIKE_RULE = "spike_rule"
NODE_RESET = "snnsim_reset"       # "subtract" / "subtract_delayed" for subtract-reset layers (--allow-lossy)
NODE_NEURON = "snnsim_neuron"     # "plif" (exported as LIF with tau = 1/sigmoid(w))
NODE_PLIF_W = "snnsim_w"

SPIKE_RULES = ("gt", "ge")


def close(a: float, b: float) -> bool:
    """Equal within ``REL_TOL`` (a NIR parameter that matches a convention)."""
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b))


def float32_decimal(x: float) -> float:
    """The shortest decimal with the same float32 value: snnsim computes neuron maths in float32, so this
    changes nothing the engine sees and keeps the YAML readable (2.0, not 1.9999999999999998)."""
    return float(repr(np.float32(x)).replace("np.float32(", "").rstrip(")"))

# The serialisable node types of NIR 1.0.8 (nir/ir/__init__.py ``__all_ir``).
NIR_TYPES = ("Input", "Output", "NIRGraph", "Affine", "Linear", "Scale", "Conv1d", "Conv2d", "SumPool2d",
             "AvgPool2d", "Flatten", "Delay", "Threshold", "I", "IF", "LI", "LIF", "CubaLI", "CubaLIF")


class NirError(SnnsimError):
    """A NIR file cannot be read, or a network cannot be moved to or from NIR without changing it."""


def require_nir():
    """The ``nir`` module, with a clear error when the optional dependency is missing."""
    try:
        import h5py  # noqa: F401
        import nir
    except ImportError as e:
        raise NirError(f"NIR support needs the 'nir' and 'h5py' packages ({e}); "
                       "install them with: pip install 'nir==1.0.8' h5py") from None
    return nir


# ----------------------------------------------------------------------------- metadata values
def meta_value(v: Any) -> Any:
    """A metadata value as plain Python (HDF5 gives numpy scalars and bytes)."""
    if isinstance(v, bytes):
        return v.decode("utf8", "replace")
    if isinstance(v, np.ndarray):
        if v.ndim == 0:
            return meta_value(v[()])
        return v
    if isinstance(v, np.generic):
        return v.item()
    return v


def clean_meta(meta: Any) -> dict:
    if not isinstance(meta, dict):
        return {}
    return {str(k): meta_value(v) for k, v in meta.items() if not isinstance(v, dict)}


# ----------------------------------------------------------------------------- reading a file
def read_graph(path: str | Path):
    """Read a NIR file into a ``nir.NIRGraph`` without NIR's own type check (snnsim checks shapes itself,
    with errors that name the node). Every failure is a :class:`NirError` naming the file and, where it
    applies, the node and the reason."""
    nir = require_nir()
    import h5py
    from nir.serialization import hdf2dict

    path = Path(path)
    if not path.is_file():
        raise NirError(f"{path}: NIR file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise NirError(f"{path}: not a readable NIR file (cannot open it as HDF5: {e}); "
                       "the file may be truncated or of another format") from None
    with f:
        if "node" not in f:
            raise NirError(f"{path}: not a NIR file: it has no 'node' group (NIR files are written by nir.write)")
        try:
            raw = hdf2dict(f["node"])
        except Exception as e:  # a damaged dataset, a truncated chunk: h5py raises OSError/KeyError/...
            raise NirError(f"{path}: cannot read the graph data ({type(e).__name__}: {e}); "
                           "the file may be truncated or corrupted") from None
    return _build_graph(nir, raw, str(path), "")


def _build_graph(nir, raw: Any, source: str, prefix: str):
    where = f"subgraph '{prefix[:-1]}'" if prefix else "the top-level graph"
    if not isinstance(raw, dict):
        raise NirError(f"{source}: {where} is malformed (not a group)")
    if raw.get("type") != "NIRGraph":
        raise NirError(f"{source}: {where} has type {raw.get('type')!r}; a NIR file holds a 'NIRGraph'")
    nodes_raw = raw.get("nodes")
    if not isinstance(nodes_raw, dict) or not nodes_raw:
        raise NirError(f"{source}: {where} has no nodes")
    nodes = {}
    for name, nd in nodes_raw.items():
        full = f"{prefix}{name}"
        if not isinstance(nd, dict) or "type" not in nd:
            raise NirError(f"{source}: node '{full}' is malformed: it has no 'type'")
        t = nd["type"]
        if t not in NIR_TYPES:
            raise NirError(f"{source}: node '{full}' has unknown NIR node type {t!r}; "
                           f"NIR 1.0.8 defines {', '.join(NIR_TYPES)}")
        if t == "NIRGraph":
            nodes[name] = _build_graph(nir, nd, source, full + ".")
            continue
        try:
            nodes[name] = nir.dict2NIRNode(dict(nd))
        except Exception as e:  # missing or mis-shaped fields: KeyError, TypeError, AssertionError, ValueError
            msg = str(e) or "parameters of inconsistent shape"
            if isinstance(e, KeyError):
                msg = f"missing field {e}"
            raise NirError(f"{source}: node '{full}' ({t}) is malformed: {msg}") from None
    edges_raw = raw.get("edges")
    edges = []
    arr = np.asarray(edges_raw if edges_raw is not None else [], dtype=object)
    if arr.size and (arr.ndim != 2 or arr.shape[1] != 2):
        raise NirError(f"{source}: {where}: 'edges' must be a list of (source, target) pairs, "
                       f"got an array of shape {list(arr.shape)}")
    for a, b in arr.reshape(-1, 2):
        a, b = meta_value(a), meta_value(b)
        for end in (a, b):
            if end not in nodes:
                raise NirError(f"{source}: edge ('{prefix}{a}', '{prefix}{b}') refers to node '{prefix}{end}', "
                               "which is not in the graph")
        if (a, b) in edges:
            raise NirError(f"{source}: edge ('{prefix}{a}', '{prefix}{b}') appears twice")
        edges.append((a, b))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=raw.get("metadata", {}) or {}, type_check=False)


def write_graph(graph, path: str | Path) -> None:
    nir = require_nir()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        nir.write(tmp, graph)
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise NirError(f"cannot write {path}: {e.strerror or e}") from None


# ----------------------------------------------------------------------------- other frameworks
def snntorch_to_nir(module, sample_data, path: str | Path | None = None, *, allow_lossy: bool = False,
                    **export_kwargs):
    """Export an snnTorch model with ``snntorch.export_to_nir`` after checking that NIR can express it, and
    record snnTorch's conventions in the graph metadata (dt = 1e-4, which snnTorch hard-codes; spike rule
    ``gt``, as snnTorch spikes at ``mem > threshold``).

    snnTorch's exporter writes every ``Leaky``/``Synaptic`` as a NIR neuron that resets to zero, whatever its
    ``reset_mechanism``; the default ``"subtract"`` (and ``"none"``) therefore change the model silently.
    Here that is a :class:`NirError` naming the layer, or with ``allow_lossy=True`` a warning naming it and
    a ``lossy`` entry in the metadata, which ``snnsim import-nir`` repeats. So is an ``RLeaky`` with
    ``reset_delay=True`` (its default): its zero reset comes a step late, which NIR's LIF cannot express.
    ``export_kwargs`` go to ``export_to_nir``; ``ignore_dims`` defaults to ``[0]`` (drop the batch dimension),
    without which snnTorch 1.0's exporter fails. snnTorch 1.0 also needs per-neuron ``beta``/``threshold``
    tensors (``RLeaky`` takes numbers).
    """
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    lossy = []
    for name, m in module.named_modules():
        if isinstance(m, (snn.Leaky, snn.Synaptic, snn.RLeaky, snn.RSynaptic)):
            mech = getattr(m, "reset_mechanism", "subtract")
            label = name or type(m).__name__
            if mech != "zero":
                lossy.append(f"layer '{label}' ({type(m).__name__}): reset_mechanism='{mech}' is exported as a "
                             "reset to zero (NIR neurons reset to v_reset; NIR cannot express a "
                             f"{'subtract' if mech == 'subtract' else 'missing'} reset)")
            elif isinstance(m, snn.RLeaky) and m.reset_delay:
                lossy.append(f"layer '{label}' (RLeaky): reset_delay=True zeroes the membrane one step after the "
                             "spike, input of that step included; NIR's LIF resets at the spike")
            if float(getattr(m, "graded_spikes_factor", 1.0)) != 1.0:
                lossy.append(f"layer '{label}' ({type(m).__name__}): graded_spikes_factor is dropped")
    _check_lossy(lossy, allow_lossy, "reset_mechanism='zero' (and reset_delay=False for RLeaky)")
    export_kwargs.setdefault("ignore_dims", [0])
    graph = export_to_nir(module, sample_data, **export_kwargs)
    graph.metadata = dict(graph.metadata or {})
    graph.metadata.update({META_SOURCE: "snntorch", META_DT: 1e-4, META_SPIKE_RULE: "gt"})
    if lossy:
        graph.metadata[META_LOSSY] = "; ".join(lossy)
    if path is not None:
        write_graph(graph, path)
    return graph


def plain_arrays(graph):
    """The graph with every tensor parameter as a NumPy array of at least one dimension, as ``nir.write``
    needs (Norse 1.1's exporter leaves 0-d torch tensors, which HDF5 cannot compress)."""
    import dataclasses

    for node in graph.nodes.values():
        if hasattr(node, "nodes"):
            plain_arrays(node)
            continue
        for f in dataclasses.fields(node):
            v = getattr(node, f.name)
            if hasattr(v, "detach"):
                v = v.detach().cpu().numpy()
            if isinstance(v, np.ndarray) and v.ndim == 0:
                v = v.reshape(1)
            setattr(node, f.name, v)
    return graph


NORSE_TAU_FIELDS = ("tau", "tau_mem", "tau_syn")


def norse_to_nir(module, sample_data, path: str | Path | None = None, *, dt: float = 1e-3):
    """Export a Norse model with ``norse.torch.to_nir``, correct its time constants and record Norse's
    conventions (dt, spike rule ``gt``: Norse spikes at ``v - v_th > 0``) in the graph metadata.

    Norse 1.1 writes ``tau = dt / tau_mem_inv``, which is ``dt * tau`` (norse/norse#411 on GitHub); here every ``tau``,
    ``tau_mem`` and ``tau_syn`` is divided by ``dt`` once, so the file holds the time constants in seconds and
    any reader (``snnsim import-nir`` with no options) gets Norse's ``tau``. For a file Norse wrote itself use
    ``snnsim import-nir --dt 1e-3 --fix norse-tau``."""
    import norse.torch as norse

    graph = plain_arrays(norse.to_nir(module, sample_data, dt=dt))
    modules = dict(module.named_modules())
    inverse = {"tau": "tau_mem_inv", "tau_mem": "tau_mem_inv", "tau_syn": "tau_syn_inv"}
    for name, node in graph.nodes.items():
        p = getattr(modules.get(name), "p", None)
        for f in NORSE_TAU_FIELDS:
            written = getattr(node, f, None)
            if not isinstance(written, np.ndarray):
                continue
            inv = getattr(p, inverse[f], None)
            if inv is not None:     # 1/tau_inv in float64: the time constant the module integrates with
                tau = 1.0 / np.asarray(inv.detach().cpu().numpy() if hasattr(inv, "detach") else inv, np.float64)
                setattr(node, f, np.broadcast_to(tau, written.shape).copy())
            else:
                setattr(node, f, written / np.float64(dt))
    graph.metadata = dict(graph.metadata or {})
    graph.metadata.update({META_SOURCE: "norse", META_DT: dt, META_SPIKE_RULE: "gt"})
    if path is not None:
        write_graph(graph, path)
    return graph


def spikingjelly_to_nir(net, example_input, path: str | Path | None = None, *, dt: float = 1e-4):
    """Export a SpikingJelly model with its ``export_to_nir`` and record SpikingJelly's conventions in the
    metadata (``dt`` as given; spike rule ``ge``, as SpikingJelly spikes at ``v >= v_threshold``).
    Soft (subtract) reset is refused by SpikingJelly's exporter; here the error names the layer."""
    from spikingjelly.activation_based import neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    soft = [f"layer '{name}' ({type(m).__name__})" for name, m in net.named_modules()
            if isinstance(m, neuron.BaseNode) and getattr(m, "v_reset", 0.0) is None]
    if soft:
        raise NirError(f"{soft[0]}: soft (subtract) reset (v_reset=None) cannot be expressed in NIR, whose "
                       "neurons reset to v_reset; give the layer a v_reset to export it")
    graph = export_to_nir(net, example_input, dt=dt)
    graph.metadata = dict(graph.metadata or {})
    graph.metadata.update({META_SOURCE: "spikingjelly", META_DT: float(dt), META_SPIKE_RULE: "ge"})
    if path is not None:
        write_graph(graph, path)
    return graph


def _check_lossy(lossy: list[str], allow_lossy: bool, fix: str) -> None:
    if not lossy:
        return
    if not allow_lossy:
        more = f" (and {len(lossy) - 1} more)" if len(lossy) > 1 else ""
        raise NirError(f"{lossy[0]}{more}; use {fix}, or allow_lossy=True to export anyway with a warning")
    for msg in lossy:
        warnings.warn(f"lossy NIR export: {msg}", NirLossyWarning, stacklevel=3)


class NirLossyWarning(UserWarning):
    """A model was exported to NIR with a change NIR forced (only with allow_lossy / --allow-lossy)."""


def conv2d_node(name: str, in_shape, weight, stride, padding, groups: int, bias, notes: list[str]):
    """A NIR Conv2d node for a conv over a [C, H, W] input (also an unfolded batch norm's depthwise 1x1 form);
    a note for ``notes`` where other readers need to know something."""
    import nir

    node = nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=np.ascontiguousarray(weight, np.float32),
                      stride=tuple(stride), padding=tuple(padding), dilation=(1, 1), groups=int(groups),
                      bias=np.ascontiguousarray(bias, np.float32))
    if groups != 1:
        # NIR 1.0.8 derives a Conv2d's input channels from weight.shape[1] (= C_in/groups); correct it
        node.input_type = {"input": np.array(in_shape)}
        notes.append(f"layer '{name}': grouped convolution; NIR 1.0.8's type check miscounts its input "
                     "channels, so other readers may need nir.read(..., type_check=False)")
    return node
