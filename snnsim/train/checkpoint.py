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


def file_keys(spec, params: dict) -> dict:
    """Weights keyed as the network's weight files are (prefix and renames of the YAML undone), so that
    ``snnsim run NET.yaml --weights`` loads them."""
    inverse = {v: k for k, v in spec.weight_rename}
    return {inverse.get(k, f"{spec.weight_prefix}{k}"): v for k, v in params.items()}
