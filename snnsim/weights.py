"""Weights: ``.npz`` files keyed by PyTorch ``state_dict`` names, checked against the spec before any run.

A PyTorch model's weights load with no renaming when saved as
``np.savez(path, **{k: v.detach().numpy() for k, v in model.state_dict().items()})``.
The spec's ``weights.prefix`` is stripped from file keys and ``weights.rename`` maps file keys to snnsim
keys, so a model whose module names differ can still be loaded; keys matching a ``weights.ignore`` glob
pattern are skipped.

snnTorch stores a ``Leaky`` neuron's parameters in its ``state_dict`` (``<layer>.beta``, ``.threshold``,
``.graded_spikes_factor``, ``.reset_mechanism_val``). On an snnsim neuron layer of the same name they are
read as that layer's parameters and must agree with its YAML fields (``tau = 1/(1 - beta)``,
``v_threshold``, the reset); a disagreement is an error naming the key and the field to set.
"""

from __future__ import annotations

import fnmatch
import zipfile
from pathlib import Path

import numpy as np

from .errors import WeightError
from .layers.registry import kind_of
from .spec import NetworkSpec, walk

IGNORED_SUFFIXES = (".num_batches_tracked",)
_MAX_LISTED = 8


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file, with a clear error for anything that is not one."""
    path = Path(path)
    if not path.exists():
        raise WeightError(f"{path}: weights file not found")
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise WeightError(f"{path}: a single .npy array, not an .npz of named weights; save weights with "
                              "numpy.savez(path, **state_dict)")
        with z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as e:
        raise WeightError(f"{path}: not a readable .npz weights file ({e}); save weights with numpy.savez") from None


def check_weights(spec: NetworkSpec, arrays: dict[str, np.ndarray], source: str = "weights") -> dict[str, np.ndarray]:
    """Match file arrays to the spec's expected keys and shapes; return float32 arrays keyed by snnsim name.

    Every problem is collected and reported at once: missing keys, unexpected keys, wrong shapes,
    non-numeric or non-finite values.
    """
    expected = spec.param_shapes()
    rename = dict(spec.weight_rename)
    found: dict[str, np.ndarray] = {}
    origin: dict[str, str] = {}
    unexpected = []
    neurons = {layer.name: layer for layer in spec.all_layers() if layer.has_membrane}
    problems = []
    for key, arr in arrays.items():
        if key.endswith(IGNORED_SUFFIXES) or any(fnmatch.fnmatchcase(key, p) for p in spec.weight_ignore):
            continue
        name = rename.get(key, key)
        layer_name, _, param = name.rpartition(".")
        if spec.weight_prefix and layer_name.startswith(spec.weight_prefix):
            layer_name = layer_name[len(spec.weight_prefix):]
        if param in NEURON_BUFFERS and layer_name in neurons and f"{layer_name}.{param}" not in expected:
            problem = neuron_buffer_problem(neurons[layer_name], param, arr)
            if problem:
                problems.append(f"key '{key}': {problem}")
            continue
        if spec.weight_prefix and name not in rename.values():
            if not name.startswith(spec.weight_prefix):
                unexpected.append(key)
                continue
            name = name[len(spec.weight_prefix):]
        if name not in expected:
            unexpected.append(key)
            continue
        found[name] = arr
        origin[name] = key

    missing = [k for k in expected if k not in found]
    for k in missing[:_MAX_LISTED]:
        problems.append(f"missing key '{spec.weight_prefix}{k}' (expected shape {list(expected[k])})")
    if len(missing) > _MAX_LISTED:
        problems.append(f"... and {len(missing) - _MAX_LISTED} more missing keys")
    for k in unexpected[:_MAX_LISTED]:
        problems.append(f"unexpected key '{k}' (shape {list(np.shape(arrays[k]))}); no layer of the network "
                        "has this parameter: check layer names, map it with weights.rename, "
                        "or skip it with weights.ignore in the YAML")
    if len(unexpected) > _MAX_LISTED:
        problems.append(f"... and {len(unexpected) - _MAX_LISTED} more unexpected keys")
    out = {}
    for name, arr in found.items():
        key = origin[name]
        if arr.dtype.kind not in "fiub":
            problems.append(f"key '{key}': dtype {arr.dtype} is not numeric")
            continue
        if tuple(arr.shape) != tuple(expected[name]):
            problems.append(f"key '{key}': expected shape {list(expected[name])}, found {list(arr.shape)}")
            continue
        bad = _bad_values(arr, name)
        if bad:
            problems.append(f"key '{key}': {bad}")
            continue
        out[name] = np.ascontiguousarray(arr, dtype=np.float32)
    if problems:
        raise WeightError(f"{source}: weights do not match network '{spec.name}': " + "; ".join(problems))
    return out


F32_MAX = float(np.finfo(np.float32).max)


def _bad_values(arr: np.ndarray, name: str) -> str | None:
    """Why an array cannot be a float32 weight (NaN/Inf, beyond float32's range, a negative variance), or None."""
    with np.errstate(all="ignore"):
        a = np.asarray(arr, dtype=np.float64)
        finite = np.isfinite(a)
        if not finite.all():
            i = int(np.flatnonzero(~finite.reshape(-1))[0])
            kind = "NaN" if np.isnan(a.reshape(-1)[i]) else "Inf"
            return f"contains {kind} (at flat index {i}); weights must be finite"
        big = np.abs(a) > F32_MAX
        if big.any():
            i = int(np.flatnonzero(big.reshape(-1))[0])
            return f"value {a.reshape(-1)[i]:.4g} (at flat index {i}) is beyond float32's range (+-3.4e38)"
        if name.endswith(".running_var") and (a < 0).any():
            i = int(np.flatnonzero(a.reshape(-1) < 0)[0])
            return f"negative variance {a.reshape(-1)[i]:.4g} (at flat index {i}); a running variance is >= 0"
    return None


NEURON_BUFFERS = ("beta", "threshold", "graded_spikes_factor", "reset_mechanism_val")


def neuron_buffer_problem(layer, param: str, arr) -> str | None:
    """Why an snnTorch neuron buffer disagrees with the snnsim neuron layer it belongs to (None: it agrees)."""
    if np.asarray(arr).dtype.kind not in "fiub":
        return f"dtype {np.asarray(arr).dtype} is not numeric"
    a = np.asarray(arr, np.float32).reshape(-1)
    if a.size == 0 or not np.all(a == a[0]):
        return "differs across neurons; an snnsim neuron layer has one value"
    v = float(a[0])
    where = f"layer '{layer.name}'"
    if param == "threshold" and np.float32(v) != np.float32(layer.v_threshold):
        return f"threshold {v:.9g}, but {where} has v_threshold {layer.v_threshold}: set v_threshold: {v:.9g}"
    if param == "graded_spikes_factor" and v != 1.0:
        return f"graded spikes ({v:.9g}) have no snnsim equivalent"
    if param == "reset_mechanism_val":
        want = {0: None, 1: 0.0}.get(int(v), "none")
        if want == "none":
            return "reset_mechanism 'none' has no snnsim equivalent"
        if layer.v_reset != want:
            return (f"snnTorch reset '{'subtract' if want is None else 'zero'}', but {where} has v_reset "
                    f"{layer.v_reset}: set v_reset: {'null' if want is None else 0}")
    if param == "beta":
        beta = min(max(v, 0.0), 1.0)            # snnTorch clamps beta to [0, 1]
        if not 0 < beta < 1:
            return f"beta {v:.9g} gives no leak snnsim can compute (needs 0 < beta < 1)"
        tau = 1.0 / (1.0 - beta)
        if layer.neuron != "lif" or layer.decay_input or np.float32(tau) != np.float32(layer.tau):
            return (f"beta {v:.9g} is snnsim 'lif' with decay_input: false and tau: {tau:.9g}, but {where} is "
                    f"'{layer.neuron}' with tau {layer.tau}, decay_input {str(layer.decay_input).lower()}")
    return None


def load_weights(spec: NetworkSpec, path: str | Path) -> dict[str, np.ndarray]:
    return check_weights(spec, read_npz(path), str(path))


def random_weights(spec: NetworkSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded random weights for demos, tests and hardware studies before training.

    PyTorch's default ranges (uniform within 1/sqrt(fan_in)), with linear layers scaled by 3 and batch-norm
    statistics chosen so that every layer fires at a moderate rate instead of falling silent. A kind may set
    values these rules cannot guess (``Kind.init``: gains of standardised convs 1, layer scales 1, drawn from a
    second stream seeded (seed, 1)); a kind that is a whole network seeds it all (``Kind.init_network``:
    T-RevSNN). A module shared across columns holds the same array under every key.
    """
    for layer in spec.layers:
        whole = kind_of(layer).init_network
        if whole is not None:
            return whole(spec, seed)
    rng = np.random.default_rng(seed)
    shapes = spec.param_shapes()
    out = {}
    for key, shape in shapes.items():
        layer, param = key.rsplit(".", 1)
        is_bn = f"{layer}.running_mean" in shapes
        if param == "weight" and not is_bn:
            bound = 1.0 / np.sqrt(int(np.prod(shape[1:])))
            scale = 3.0 if len(shape) == 2 else 1.0
            out[key] = (rng.uniform(-bound, bound, shape) * scale).astype(np.float32)
        elif param == "bias" and not is_bn:
            out[key] = rng.uniform(0.6, 1.4, shape).astype(np.float32) if len(shape) == 1 else None
        elif param == "running_mean":
            out[key] = rng.uniform(-0.2, 0.2, shape).astype(np.float32)
        elif param == "running_var":
            out[key] = rng.uniform(0.05, 0.3, shape).astype(np.float32)
        elif param == "weight":      # batch-norm gamma
            out[key] = rng.uniform(0.8, 1.6, shape).astype(np.float32)
        elif param == "bias":        # batch-norm beta
            out[key] = rng.uniform(0.0, 0.5, shape).astype(np.float32)
        else:                        # PLIF w = 0, i.e. tau = 2
            out[key] = np.zeros(shape, np.float32)
    rng = np.random.default_rng([seed, 1])
    for layer in walk(spec.layers):
        init = kind_of(layer).init
        if init is not None:
            init(layer, out, rng)
    for layer in walk(spec.layers):
        source = getattr(layer, "shared_from", None)
        if source:
            for p in layer.param_shapes():
                out[f"{layer.name}.{p}"] = out[f"{source}.{p}"].copy()
    return out


def save_npz(path: str | Path, arrays: dict[str, np.ndarray], option: str = "weights") -> None:
    """Write atomically (temporary file, then rename) so an interrupted write never leaves a broken file;
    exactly under ``path`` (no ``.npz`` appended). See ``snnsim.outputs``."""
    from .outputs import save_npz as write

    write(path, arrays, option)
