"""snnsim: a Numba discrete-time spiking neural network simulator.

Data flows one way: spec (YAML) -> network (spec + weights) -> engine -> trace -> hwmodel -> report.

The public API (docs/api.md)::

    import snnsim
    model = snnsim.load("networks/digits_mlp.yaml", "networks/digits_mlp.npz")
    result = model.run(x, probes=["sn1"])          # NumPy arrays or torch tensors
    result.spikes("sn1"), result.table(), model.price(result, "evt45")

Names are imported on first use, so ``import snnsim`` (and the command line) stays fast.
"""

import os

# Numba's OpenMP threads spin-wait between parallel regions by default. On a machine where other work
# competes for the cores that spinning starves everyone: a 0.04 ms conv took 8 ms under a load of 5 on
# 2 cores (measured; see docs/performance.md). Passive waiting costs little when the machine is quiet.
# Set before Numba loads its threading layer; an explicit user setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "load": "api", "Model": "api", "as_array": "api", "load_network": "api", "import_nir": "api",
    "layer_table": "layers",
    "RunResult": "engine", "Trace": "trace", "LayerTrace": "trace",
    "NetworkSpec": "spec", "load_spec": "layers", "parse_spec": "layers",
    "load_dataset": "data",
    "SnnsimError": "errors", "SpecError": "errors", "WeightError": "errors", "InputError": "errors",
    "TrainConfig": "train.loop",
    "from_torch": "torch_import", "TorchImport": "torch_import",
    "event_frames": "datasets", "study": "distributed",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'snnsim' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
