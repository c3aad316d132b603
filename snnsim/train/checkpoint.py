"""Training checkpoints: one ``.npz`` with the weights, the optimiser state and the loop position, written
atomically (``snnsim.weights.save_npz``: a temporary file, then a rename), so a run killed at any moment
leaves either the previous checkpoint or the new one, never a broken file.

Layout: ``param/<weight key>`` (every weight, running statistics included), ``opt/<key>/<slot>`` and
``opt/__k__`` (optimiser), ``meta`` (JSON as uint8: position, history, and the configuration the run must be
resumed with).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..weights import save_npz


def save_checkpoint(path, params: dict, opt_state: dict, meta: dict) -> None:
    arrays = {f"param/{k}": np.asarray(v) for k, v in params.items()}
    arrays.update({f"opt/{k}": np.asarray(v) for k, v in opt_state.items()})
    arrays["meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)
    save_npz(path, arrays, "--checkpoint")       # atomic; a failed write leaves the previous checkpoint


def load_checkpoint(path) -> tuple[dict, dict, dict]:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(bytes(arrays.pop("meta")).decode())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
        raise InputError(f"--resume {path}: not a readable snnsim training checkpoint ({e})") from None
    params = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
    opt = {k[4:]: v for k, v in arrays.items() if k.startswith("opt/")}
    return params, opt, meta


def check_against_spec(spec, params: dict, opt: dict, path) -> None:
    """A checkpoint must hold exactly the spec's weights, in the spec's shapes, all finite (a checkpoint written
    before a width was edited, or by another network, is refused here in one line instead of failing later in
    a reshape)."""
    expected = spec.param_shapes()
    problems = [f"missing '{k}'" for k in expected if k not in params]
    problems += [f"unexpected '{k}'" for k in params if k not in expected]
    problems += [f"'{k}' has shape {list(v.shape)}, the network needs {list(expected[k])}"
                 for k, v in params.items() if k in expected and tuple(v.shape) != tuple(expected[k])]
    problems += [f"optimiser state '{k}' has shape {list(v.shape)}, its weight {list(expected[k.rsplit('/', 1)[0]])}"
                 for k, v in opt.items() if k != "__k__" and k.rsplit("/", 1)[0] in expected
                 and tuple(v.shape) != tuple(expected[k.rsplit("/", 1)[0]])]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise InputError(f"{path}: the checkpoint does not match network '{spec.name}': "
                         f"{'; '.join(problems[:3])}{more}; was the network edited since it was written?")
    bad = first_not_finite(params)
    if bad:
        raise InputError(f"{path}: the checkpoint's '{bad}' holds NaN or Inf; it cannot be trained from")


def first_not_finite(arrays: dict) -> str | None:
    """The first key whose array holds NaN or Inf (weights and running statistics alike), or None."""
    for k, v in arrays.items():
        if not np.all(np.isfinite(v)):
            return k
    return None


def is_checkpoint(arrays: dict) -> bool:
    return "meta" in arrays and any(k.startswith("param/") for k in arrays)


def load_init(spec, path) -> dict:
    """``--init``: a weights file (as ``snnsim run`` takes) or a training checkpoint (its weights, checked
    against the spec; its optimiser state and position are not used)."""
    from ..weights import check_weights, read_npz

    arrays = read_npz(path)
    if not is_checkpoint(arrays):
        return dict(check_weights(spec, arrays, f"--init {path}"))
    params = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
    check_against_spec(spec, params, {}, f"--init {path}")
    return {k: np.array(v, np.float32) for k, v in params.items()}


def file_keys(spec, params: dict) -> dict:
    """Weights keyed as the network's weight files are (prefix and renames of the YAML undone), so that
    ``snnsim run NET.yaml --weights`` loads them."""
    inverse = {v: k for k, v in spec.weight_rename}
    return {inverse.get(k, f"{spec.weight_prefix}{k}"): v for k, v in params.items()}
