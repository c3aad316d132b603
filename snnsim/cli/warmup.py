"""Compiling the kernels ahead of the first run: ``snnsim warmup``, and the line that says when it happens.

snnsim's kernels are Numba functions compiled on first use and cached on disk (``__pycache__`` next to the
modules, or ``NUMBA_CACHE_DIR``); a later process only loads them. ``snnsim warmup`` runs a small network
with every layer kind in both kernel forms, so that the cache holds everything ``snnsim run`` can call;
``snnsim run`` says on stderr when it is about to compile instead (an empty cache).
"""

from __future__ import annotations

import os
import time

import click
import numpy as np

# One of each layer kind and neuron kind that inference runs, at shapes that take every kernel path:
# sgemm conv (3x3 and 1x1), depthwise direct conv, event scatter (channels-last and planar), pools (2x2 and
# a generic window),
# linear, batch norm, residual add, all neuron models.
_SPEC = {
    "name": "warmup", "input_shape": [2, 8, 8], "timesteps": 2, "encoding": "direct",
    "layers": [
        {"name": "c1", "type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1},
        {"name": "bn1", "type": "batchnorm2d"},
        {"name": "s1", "type": "lif", "tau": 2.0},
        {"name": "dw", "type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1, "groups": 8},
        {"name": "s2", "type": "if"},
        {"name": "pw", "type": "conv2d", "out_channels": 8, "kernel_size": 1},
        {"name": "s3", "type": "plif"},
        {"name": "mp", "type": "maxpool2d", "kernel_size": 2},
        {"name": "ap", "type": "avgpool2d", "kernel_size": 3, "stride": 1, "padding": 1},   # the generic window
        {"name": "fl", "type": "flatten"},
        {"name": "fc", "type": "linear", "out_features": 4},
        {"name": "s4", "type": "li", "tau": 2.0},
    ],
}


def _dispatchers():
    from numba.core.registry import CPUDispatcher

    from .. import neurons
    from ..kernels import conv, events, linear, pool, stats

    for module in (conv, events, linear, pool, stats, neurons):
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher):
                yield value


def cache_is_empty() -> bool:
    """True when the neuron kernel, which every run calls, has no compiled code on disk yet."""
    from ..neurons import neuron_steps

    try:
        return not os.path.exists(neuron_steps._cache._cache_file._index_path)
    except AttributeError:          # another Numba's internals: do not guess
        return False


def note_compilation() -> None:
    if cache_is_empty():
        click.echo("Compiling snnsim's kernels into Numba's cache (first run only; `snnsim warmup` does this "
                   "ahead of time)...", err=True)


def warm(quiet: bool = False) -> float:
    """Run every kernel path once (compiling into the cache what is not there); returns the seconds taken."""
    from ..engine import run
    from ..network import build_network
    from ..layers import parse_spec
    from ..weights import random_weights

    t0 = time.perf_counter()
    spec = parse_spec(_SPEC, "warmup")
    net = build_network(spec, random_weights(spec, 0))
    x = np.random.default_rng(0).random((2, 2, 8, 8), dtype=np.float32)
    for form in ("dense", "event", "auto"):
        for batch in (1, 2):
            run(net, x[:batch], form=form, batch_size=batch)
    return time.perf_counter() - t0


@click.command("warmup")
def warmup():
    """Compile snnsim's kernels into Numba's on-disk cache now, so that the first `snnsim run` starts fast."""
    empty = cache_is_empty()
    seconds = warm()
    n = sum(len(d.overloads) for d in _dispatchers())
    where = os.environ.get("NUMBA_CACHE_DIR") or "__pycache__ folders next to snnsim's modules"
    verb = "compiled" if empty else "checked (already compiled)"
    click.echo(f"{verb} {n} kernel specialisations in {seconds:.1f} s; cache: {where}")
