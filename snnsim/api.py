"""The Python API: load a network with its weights, run it, look at what happened, price it, train it.

    import snnsim
    model = snnsim.load("networks/mnist_conv.yaml", "networks/mnist_conv.npz")
    result = model.run(x, timesteps=4, probes=["sn1"])      # x: [N, C, H, W] NumPy array or torch tensor
    result.spikes("sn1")                                   # [T, N, C, H, W]
    result.table()                                         # per-layer firing rates and synaptic ops
    model.price(result, "evt45").totals["energy_pj"]

Everything here is a thin layer over the modules that do the work (``snnsim.spec``, ``snnsim.weights``,
``snnsim.network``, ``snnsim.engine``, ``snnsim.train``, ``snnsim.nir_*``; ``hwmodel`` prices traces), so the
command line and Python give the same numbers. docs/api.md is the quickstart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .datasets import as_array, as_arrays
from .engine import RunResult, accuracy as _accuracy, run as _run
from .errors import InputError
from .network import Network, build_network
from .layers import layer_table, load_spec, parse_spec
from .spec import NetworkSpec
from .weights import check_weights, read_npz, save_npz

__all__ = ["Model", "as_array", "layer_table", "load", "load_network", "import_nir"]


def load_network(network: str | Path | dict | NetworkSpec) -> NetworkSpec:
    """A network spec from a YAML path, an already parsed YAML mapping, or a spec (returned as is)."""
    if isinstance(network, NetworkSpec):
        return network
    if isinstance(network, dict):
        return parse_spec(network, "<dict>")
    return load_spec(network)


def _weights(spec: NetworkSpec, weights, seed: int) -> dict[str, np.ndarray]:
    if weights is None:
        from .weights import random_weights

        return check_weights(spec, _file_keys(spec, random_weights(spec, seed)), f"random weights (seed {seed})")
    if isinstance(weights, (str, Path)):
        return check_weights(spec, read_npz(weights), str(weights))
    if hasattr(weights, "items"):                           # a state_dict: names -> arrays or tensors
        return check_weights(spec, {k: as_array(v, f"weights[{k!r}]") for k, v in weights.items()}, "weights")
    raise InputError(f"weights: expected a .npz path, a mapping of arrays (a state_dict) or None, "
                     f"got {type(weights).__name__}")


def _file_keys(spec: NetworkSpec, params: dict) -> dict:
    from .train.checkpoint import file_keys

    return file_keys(spec, params)


@dataclass
class Model:
    """A network spec bound to its checked float32 weights (keyed by snnsim's layer names)."""

    spec: NetworkSpec
    weights: dict
    network: Network

    @property
    def name(self) -> str:
        return self.spec.name

    def run(self, x, *, timesteps: int | None = None, batch_size: int = 64, probes: Iterable[str] = (),
            form: str = "auto", event_threshold: float | None = None, regime: str | None = None) -> RunResult:
        """Run samples through the network. ``x``: ``[N, *input_shape]`` (``[T, N, *input_shape]`` for an
        ``events`` network), any array-like, or a DataLoader / iterable of batches (labels, if any, ignored). ``probes``: layer names whose full tensors are kept
        (``result.spikes(name)``, ``result.membrane(name)``). Returns outputs ``[T, N, ...]``, the readout
        and the trace (``result.trace``)."""
        x = as_array(x) if hasattr(x, "shape") or isinstance(x, list) else as_arrays(x)[0]
        return _run(self.network, x, timesteps=timesteps, batch_size=batch_size, probes=probes,
                    form=form, event_threshold=event_threshold, regime=regime)

    def accuracy(self, result: RunResult, labels) -> float:
        """Fraction of samples whose readout's argmax equals the label."""
        return _accuracy(result, as_array(labels, "labels"))

    def info(self):
        """One row per layer: type, output shape, parameters, state words kept across timesteps (DataFrame)."""
        import pandas as pd

        return pd.DataFrame(layer_table(self.spec))

    def price(self, result_or_trace, arch: str | Path = "evt45"):
        """Energy and latency of a run on an accelerator (``hwmodel.price``); ``arch`` is a preset name
        (``hwmodel.presets()``) or an architecture YAML file. Returns an ``hwmodel.Report``."""
        from hwmodel import load_arch, price

        trace = getattr(result_or_trace, "trace", result_or_trace)
        return price(trace, load_arch(arch))

    def train(self, x, y=None, *, x_test=None, y_test=None, **options):
        """Train the weights in place on ``x``/``y`` (array-likes, or ``x`` a DataLoader of (input, label) batches
        and no ``y``; the test set likewise); ``options`` are ``snnsim.train.TrainConfig``
        fields (method, timesteps, epochs, batch_size, optimizer, lr, surrogate, seed, ...). Without a test set
        the training set is evaluated. Returns the ``TrainResult`` (history per epoch, memory held)."""
        from .train.loop import TrainConfig, train

        if "timesteps" in options and isinstance(options["timesteps"], int):
            options["timesteps"] = (options["timesteps"],)
        try:
            cfg = TrainConfig(**options)
        except TypeError as e:
            raise InputError(f"train: {e}") from None
        x, y = as_arrays(x, y)
        x_test, y_test = (x, y) if x_test is None else as_arrays(x_test, y_test)
        if y is None or y_test is None:
            raise InputError("train: the training and test data need labels (y, or (input, label) batches)")
        data = tuple(np.ascontiguousarray(a, np.float32) if i % 2 == 0 else a.astype(np.int64)
                     for i, a in enumerate((x, y, x_test, y_test)))
        result = train(self.spec, self.weights, cfg, data=data)
        self.network = build_network(self.spec, self.weights)
        return result

    def state_dict(self) -> dict[str, np.ndarray]:
        """The weights keyed as the weight file (PyTorch state_dict names, the spec's prefix and renames)."""
        return _file_keys(self.spec, self.weights)

    def save_weights(self, path: str | Path) -> None:
        """Write the weights as ``.npz`` keyed by PyTorch state_dict names (atomically)."""
        save_npz(path, self.state_dict())

    def export_nir(self, path: str | Path | None = None, *, dt: float = 1e-4, allow_lossy: bool = False):
        """The network as a NIR graph (written to ``path`` when given); see docs/nir.md."""
        from .nir.exporter import export_nir
        from .nir.io import write_graph

        result = export_nir(self.spec, self.weights, dt=dt, allow_lossy=allow_lossy)
        if path is not None:
            write_graph(result.graph, path)
        return result.graph


def load(network: str | Path | dict | NetworkSpec, weights=None, *, seed: int = 0) -> Model:
    """Load a network and its weights in one call.

    network: a YAML file, a parsed YAML mapping, or a ``NetworkSpec``.
    weights: a ``.npz`` file or a mapping (a PyTorch ``state_dict``: NumPy arrays or torch tensors) keyed by
    state_dict names; None gives seeded random weights (``seed``), as ``snnsim init-weights``.
    Every mismatch (missing, unexpected or mis-shaped keys) is reported at once as a ``WeightError``.
    """
    spec = load_network(network)
    checked = _weights(spec, weights, seed)
    return Model(spec, checked, build_network(spec, checked))


def import_nir(path: str | Path, **options) -> Model:
    """Load a NIR graph (snnTorch, SpikingJelly, Norse, ... exports) as a model; ``options``: dt, spike_rule,
    timesteps, encoding, name (as ``snnsim import-nir``)."""
    from .nir.importer import import_nir as convert

    result = convert(path, **options)
    spec = parse_spec(result.spec, str(path))
    return load(spec, result.weights)
