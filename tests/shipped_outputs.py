"""What tests/test_shipped_outputs.py compares: every shipped network run on a fixed seeded input.

``outputs(yaml, weights)`` returns a flat dict of arrays: the final outputs, the spikes of every spiking
layer, and every trace record's counts per timestep, event and fan-out maps. ``digests`` reduces each array to
its dtypes, shapes, SHA-256 of its bytes and its sum (the sum only to show how far a changed array moved).
scripts/shipped_outputs.py saves the digests once to tests/data/shipped_outputs.json; the test recomputes
them and demands equality, so any changed bit fails.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = 2
SEED = 1234

# (yaml, weights): the shipped .npz, or None for seeded random weights (seed 0) where none ship
CASES = [
    ("cifar_sew_resnet.yaml", "cifar_sew_resnet.npz"),
    ("digits_mlp.yaml", "digits_mlp.npz"),
    ("digits_mlp_soft.yaml", None),
    ("mnist_conv.yaml", "mnist_conv.npz"),
    ("mnist_revnet.yaml", "mnist_revnet.npz"),
    ("ms_resnet18_small.yaml", "ms_resnet18_small.npz"),
    ("revs_resnet21.yaml", None),
    ("revs_resnet21_small.yaml", "revs_resnet21_small.npz"),
    ("trev_small.yaml", "trev_small.npz"),
    ("trev_small.yaml", "trev_small_mnist.npz"),
    ("trev_tiny224.yaml", None),
    ("vgg_small.yaml", "vgg_small.npz"),
]
COUNTS = ("computed", "events_in", "binary_in", "events_out", "neuron_updates")


REFERENCE = ROOT / "tests" / "data" / "shipped_outputs.json"


def case_id(yaml: str, weights: str | None) -> str:
    return (weights or yaml).rsplit(".", 1)[0] + ("" if weights else "_seeded")


def outputs(yaml: str, weights: str | None) -> dict:
    import snnsim.api as api
    from snnsim.network import spiking_layers

    model = api.load(ROOT / "networks" / yaml, None if weights is None else ROOT / "networks" / weights, seed=0)
    rng = np.random.default_rng(SEED)
    x = (rng.random((SAMPLES, *model.spec.input_shape), dtype=np.float32) * 2).astype(np.float32)
    probes = spiking_layers(model.network)
    result = model.run(x, probes=probes)
    out = {"outputs": result.outputs, "readout": result.readout}
    for name in probes:
        out[f"spikes/{name}"] = result.spikes(name)
    trace = result.trace
    out["trace/names"] = np.array([f"{r.name}:{r.kind}" for r in trace.layers])
    for r in trace.layers:       # one entry a record: its counts per timestep, static sizes, event and fan-out maps
        arrays = [np.asarray(getattr(r, k)) for k in COUNTS]
        arrays.append(np.array([r.n_weights, r.n_bias, r.neurons, r.state_size], np.int64))
        arrays += [getattr(r, k) for k in ("event_map", "fanout_map") if getattr(r, k) is not None]
        out[f"trace/{r.name}"] = tuple(arrays) + (r.synops,)
    return out


def digests(arrays: dict) -> dict[str, list]:
    """key -> [dtypes, shapes, SHA-256 over the bytes, sum]; a value may be a tuple of arrays (one trace record)."""
    import hashlib

    out = {}
    for key, value in sorted(arrays.items()):
        parts = [np.ascontiguousarray(a) for a in (value if isinstance(value, tuple) else (value,))]
        h = hashlib.sha256()
        for a in parts:
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(a.tobytes())
        total = sum(float(a.astype(np.float64).sum()) if a.dtype.kind in "fiub" else a.size for a in parts)
        out[key] = [[str(a.dtype) for a in parts], [list(a.shape) for a in parts], h.hexdigest(), total]
    return out
