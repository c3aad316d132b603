"""Compiling the kernels ahead of the first run: ``snnsim warmup``, and the line that says when it happens.

snnsim's kernels are Numba functions compiled on first use and cached on disk (``__pycache__`` next to the
modules, or ``NUMBA_CACHE_DIR``); a later process only loads them. ``snnsim warmup`` runs the layer kinds'
example networks (``Kind.examples`` in ``snnsim.layers.registry``) in both kernel forms and in one-step and
multi-step windows, so that the cache holds everything ``snnsim run`` can call; ``snnsim run`` says on stderr
when it is about to compile instead (an empty cache).
"""

from __future__ import annotations

import os
import time

import click
import numpy as np


def _dispatchers():
    from numba.core.registry import CPUDispatcher

    from .. import neurons
    from ..kernels import conv, conv_event, events, linear, pool, stats

    for module in (conv, conv_event, events, linear, pool, stats, neurons):
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


def networks():
    """The warm-up networks: every layer kind's examples, on the same input each timestep."""
    from ..layers import parse_spec
    from ..layers.registry import examples

    return [parse_spec({"name": f"warmup{i}", "timesteps": 2, "encoding": "direct", **ex}, "warmup")
            for i, ex in enumerate(examples())]


def warm(quiet: bool = False) -> float:
    """Run every kernel path once (compiling into the cache what is not there); returns the seconds taken."""
    from ..engine import run
    from ..network import build_network
    from ..weights import random_weights

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    for spec in networks():
        net = build_network(spec, random_weights(spec, 0))
        x = rng.random((2,) + tuple(spec.input_shape), dtype=np.float32)
        for form in ("dense", "event", "auto"):
            for batch in (1, 2):
                for T in (2, 1):    # a one-step window hands the ops NumPy's read-only broadcast of the input
                    run(net, x[:batch], form=form, batch_size=batch, timesteps=T)
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
