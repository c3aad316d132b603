"""Memory a command's arrays would take, estimated from the network's layer shapes before anything is allocated,
and the refusal above ``SNNSIM_MAX_RUN_BYTES`` (docs/robustness.md "Memory of a run")."""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ..limits import over, size_text


def npy_header(path) -> tuple[tuple[int, ...], int] | None:
    """(shape, bytes of its data) from a .npy file's header, without reading the data; None if the file is not
    a readable .npy (``read_npy`` then says why)."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            major, _ = fmt.read_magic(f)
            header = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
            shape, _, dtype = header(f)
    except Exception:     # any unreadable header: the full read reports it as the --input error it is
        return None
    return tuple(shape), math.prod(shape) * dtype.itemsize


def run_memory(spec, T: int, n: int, batch_size: int, save=(), input_bytes: int = 0) -> dict[str, int]:
    """Estimated bytes of the arrays a run of ``n`` samples at ``T`` holds at once, by part (float32 values):
    input: the samples as read, and a float32 copy unless they are float32 already (events: T frames);
    outputs: [T, n, outputs];
    batch: for each chunk of the batch running at once (``snnsim.engine.chunk_bounds``, one a thread), the arrays
      of the op that runs (its samples x 3 x the largest layer, for each of the timesteps the engine runs side by
      side) and the states (its samples x their sizes), plus rate-coded spikes [T, samples, input] or an event
      frame [samples, input] (direct input is a view);
    trace: the event maps [T, input] of the layers with weights;
    saved: --save's tensors [T, n, layer] (a neuron layer keeps spikes, membrane and charge).
    docs/robustness.md derives it by hand for one network; tests compare it with a measured peak."""
    leaves = [lay for lay in spec.all_layers() if not lay.sublayers()]      # blocks hold no arrays of their own
    size = lambda shape: math.prod(shape)  # noqa: E731
    B = min(batch_size, n)
    inp = size(spec.input_shape)
    enc = spec.encoding.kind
    # alive at once: an op's input and output and a residual block's input, and every state carried across steps
    from ..engine import chunk_bounds, steps_at_once
    from ..kernels.threads import n_threads

    largest = max([inp] + [size(lay.out_shape) for lay in leaves])
    states = sum(size(lay.out_shape) for lay in leaves if lay.stateful)
    running = chunk_bounds(0, B, largest, sum(size(lay.out_shape) for lay in leaves))[:n_threads()]
    per_chunk = [(b - a) * (3 * largest * steps_at_once(largest, b - a, T) + states
                            + inp * {"rate": T, "events": 1}.get(enc, 0)) for a, b in running]
    neuron_save = 3 if {"spikes", "membrane"} & set(save) else 0
    saved = sum(size(lay.out_shape) * (neuron_save if lay.has_membrane else int("outputs" in save))
                for lay in leaves)
    as_float32 = 4 * n * inp * (T if enc == "events" else 1)
    return dict(input=input_bytes + (as_float32 if input_bytes != as_float32 else 0),
                outputs=4 * T * n * size(spec.output_shape),
                batch=4 * sum(per_chunk),
                trace=4 * T * sum(size(lay.in_shape) for lay in leaves if lay.synaptic),
                saved=4 * T * n * saved)


def check_run_memory(spec, T: int, n: int, batch_size: int, save=(), input_bytes: int = 0) -> None:
    """Refuse, before anything is allocated, a run whose arrays would exceed SNNSIM_MAX_RUN_BYTES."""
    parts = run_memory(spec, T, n, batch_size, save, input_bytes)
    total = sum(parts.values())
    if over("run_bytes", total):
        shown = ", ".join(f"{k} {size_text(v)}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]) if v)
        raise InputError(f"-T {T} x {n:,} samples (batches of {min(batch_size, n):,}): the run needs about "
                         f"{size_text(total)} ({shown}); {over('run_bytes', total)}, or lower -T, --batch-size "
                         "or the samples (--limit)")


def train_memory(spec, method: str, T: int, n: int, batch_size: int) -> int:
    """Estimated bytes a training step holds for its backward pass: every layer's output per sample, x B, x T for
    the methods that keep every timestep (bptt; reversible keeps the layers outside its invertible blocks and
    re-simulates one block at a time over all T), x 1 for the online ones (ottt, saf)."""
    from ..layers.registry import kind_of
    from ..spec import walk

    def outputs(layers):
        return sum(math.prod(lay.out_shape) for lay in walk(layers) if not lay.sublayers())

    blocks = [lay for lay in spec.layers if kind_of(lay).invertible] if method == "reversible" else []
    per_sample = (outputs([lay for lay in spec.layers if lay not in blocks])
                  + max([outputs([b]) for b in blocks], default=0))
    return 4 * min(batch_size, n) * per_sample * (T if method in ("bptt", "reversible") else 1)


def check_train_memory(spec, method: str, T: int, n: int, batch_size: int) -> None:
    """Refuse, before training, a step whose held arrays would exceed SNNSIM_MAX_RUN_BYTES."""
    held = train_memory(spec, method, T, n, batch_size)
    if over("run_bytes", held):
        raise InputError(f"--method {method} -T {T} --batch-size {batch_size} ({n:,} samples): a training step "
                         f"holds about {size_text(held)} for its backward pass; {over('run_bytes', held)}, or lower "
                         f"-T or --batch-size" + (" (or train with --method ottt or saf, whose memory does not grow "
                                                  "with T)" if method == "bptt" else ""))


def check_input_memory(spec, input_path, limit, T: int, batch_size: int, save=()) -> None:
    """``check_run_memory`` from the --input file's header, before the file is read."""
    head = npy_header(input_path) if input_path else None
    if head is None or len(head[0]) < 2:
        return
    shape, nbytes = head
    n = shape[1] if spec.encoding.kind == "events" else shape[0]
    check_run_memory(spec, T, min(n, limit or n), batch_size, save, nbytes)
