"""Size limits checked before any work starts, each raisable with an environment variable.

A spec or option that asks for more than a limit is refused with a message that names the limit and the variable
that raises it, instead of hanging, allocating terabytes or overflowing an integer. The defaults are well above
every shipped network (docs/robustness.md lists the largest layer and parameter count of ``networks/`` and the
command that prints them) and well below what would exhaust a workstation.
"""

from __future__ import annotations

import os

from .errors import SnnsimError

# name: (environment variable, default, what it bounds)
LIMITS = {
    "file_bytes": ("SNNSIM_MAX_FILE_BYTES", 1_000_000, "bytes in a YAML file"),
    "depth": ("SNNSIM_MAX_DEPTH", 50, "nesting levels of lists and mappings in a YAML file"),
    "layer_size": ("SNNSIM_MAX_LAYER_SIZE", 1 << 24, "values per sample in one layer's input or output"),
    "params": ("SNNSIM_MAX_PARAMS", 250_000_000, "parameters in a network"),
    "layers": ("SNNSIM_MAX_LAYERS", 10_000, "layers in a network"),
    "timesteps": ("SNNSIM_MAX_TIMESTEPS", 100_000, "timesteps (T) of a run"),
    "run_bytes": ("SNNSIM_MAX_RUN_BYTES", 8 << 30, "bytes of arrays in one run"),
}


def limit(name: str) -> int:
    var, default, _ = LIMITS[name]
    text = os.environ.get(var)
    if text is None:
        return default
    try:
        value = int(float(text))
    except ValueError:
        raise SnnsimError(f"{var}={text!r}: expected a positive whole number") from None
    if value < 1:
        raise SnnsimError(f"{var}={text!r}: expected a positive whole number")
    return value


def over(name: str, value: int) -> str | None:
    """None if ``value`` is within the limit, else the sentence that explains the refusal."""
    cap = limit(name)
    if value <= cap:
        return None
    var, _, what = LIMITS[name]
    return f"{value:,} is more than the limit of {cap:,} {what} (set {var} to raise it)"


def size_text(n_bytes: float) -> str:
    """1234567890 -> '1.15 GiB'."""
    for scale, unit in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.3g} {unit}"
    return f"{n_bytes:.0f} B"
