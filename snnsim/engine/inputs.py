"""What a run is given, checked before any work: the input array, the run options and the probed layers; and the
rate encoding's input spikes."""

from __future__ import annotations

import numpy as np

from ..errors import InputError

FORMS = ("auto", "dense", "event")


def check_input(net, x: np.ndarray, encoding: str, T: int) -> np.ndarray:
    shape = tuple(net.spec.input_shape)
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise InputError(f"input: dtype {x.dtype} is not numeric")
    want = ("[T, N, " if encoding == "events" else "[N, ") + ", ".join(map(str, shape)) + "]"
    lead = 2 if encoding == "events" else 1
    if x.ndim != len(shape) + lead or tuple(x.shape[lead:]) != shape:
        raise InputError(f"input: expected shape {want} for network '{net.name}', got {list(x.shape)}")
    if encoding == "events" and x.shape[0] != T:
        raise InputError(f"input: the event tensor has {x.shape[0]} timesteps but the run asks for T={T}")
    if x.shape[lead - 1] == 0:
        raise InputError(f"input: no samples (shape {list(x.shape)})")
    with np.errstate(all="ignore"):            # a float64 beyond float32's range becomes Inf, reported below
        x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0].tolist()
        raise InputError(f"input: contains NaN or Inf (first at index {bad}; a value beyond float32's range "
                         "counts as Inf); clean or impute the data first")
    return x


def rate_spikes(x: np.ndarray, T: int, seed: int, gain: float, first_index: int) -> np.ndarray:
    """Bernoulli spikes [T, B, ...]; sample i uses its own stream seeded by (seed, i), so the spikes of a
    sample do not depend on the batch size."""
    p = np.clip(x * np.float32(gain), 0, 1)
    out = np.empty((T,) + x.shape, np.float32)
    for i in range(x.shape[0]):
        rng = np.random.default_rng([seed, first_index + i])
        out[:, i] = rng.random((T,) + x.shape[1:], dtype=np.float32) < p[i]
    return out


def check_run_options(form: str, batch_size: int, event_threshold: float | None) -> float | None:
    """Check the options every run takes; returns the event threshold (None: the per-shape cost rule)."""
    if form not in FORMS:
        raise InputError(f"form: expected one of {', '.join(FORMS)}, got {form!r}")
    if batch_size < 1:
        raise InputError(f"batch size: expected a positive integer, got {batch_size}")
    thr = None if event_threshold is None else float(event_threshold)
    if thr is not None and not 0 <= thr <= 1:
        raise InputError(f"event threshold: expected a fraction in [0, 1], got {thr}")
    return thr


def check_probes(probes, names: set, where: str = "") -> set:
    """The probed layer names, each checked against the layers that run."""
    probes = set(probes)
    unknown = probes - names
    if unknown:
        listed = ", ".join(sorted(names)[:12]) + (", ..." if len(names) > 12 else "")
        raise InputError(f"probes: no layer named {sorted(unknown)[0]!r}{where}; layers: {listed}")
    return probes


