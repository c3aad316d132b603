"""Schedules: which ops a run executes at which timestep. The engine's own (``Multistep``: every op at every
timestep, several timesteps side by side where every op allows it) or one an op supplies (``Op.schedule``)."""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ..layers.op import walk_ops
from .inputs import rate_spikes


class Multistep:
    """The engine's own schedule: every op at every timestep, in order ('multistep', or 'oneshot' at T=1).

    A schedule tells ``run`` which T and regime a run has (``plan``), which ops a batch runs and traces
    (``ops``), the outputs of a batch timestep by timestep (``steps``) and the readout. An op with a schedule of
    its own (``Op.schedule``: a T-RevSNN network runs each column once) replaces this one."""

    probe_where = ""
    name = "multistep"            # the regime of a T-step run

    def __init__(self, net):
        self.net = net
        self.encoding = net.spec.encoding.kind
        self.ops = net.ops

    def plan(self, timesteps: int | None, regime: str | None) -> int:
        if regime not in (None, "multistep", "oneshot"):
            raise InputError(f"regime: {regime!r} needs a T-RevSNN network (a 'trevsnn' layer); network "
                             f"'{self.net.name}' runs 'multistep' or 'oneshot'" if regime == "trev"
                             else f"regime: expected multistep, oneshot or trev, got {regime!r}")
        if regime == "oneshot":
            if timesteps not in (None, 1):
                raise InputError(f"regime oneshot runs T=1, but T={timesteps} was asked for")
            timesteps = 1
        T = int(timesteps or self.net.spec.timesteps)
        if T < 1:
            raise InputError(f"timesteps: expected a positive integer, got {T}")
        self.prefix, self.spans, self.largest = _static_plan(self.net)
        return T

    def prepare(self, T: int) -> None:
        """Checks that need T and the run options checked (none here)."""

    def regime(self, T: int) -> str:
        return "oneshot" if T == 1 else self.name

    def steps(self, br, x: np.ndarray, start: int, stop: int, T: int, first_index: int):
        """(t, output) for t = 0..T-1 of samples start..stop through the batch run ``br``."""
        net, enc = self.net, self.net.spec.encoding
        if enc.kind == "events":
            xin = x[:, start:stop]
        elif enc.kind == "rate":
            xin = rate_spikes(x[start:stop], T, enc.seed, enc.gain, first_index + start)
        else:
            xin = None
        ops = net.ops[self.prefix:] if enc.kind == "direct" else net.ops
        if enc.kind == "direct":
            cached = br.run_ops(net.ops[:self.prefix], x[start:stop], 0)
        if self.spans:       # every op over several timesteps at once (``steps_at_once`` of them)
            w = steps_at_once(self.largest, stop - start, T)
            for t0 in range(0, T, w):
                t1 = min(T, t0 + w)
                if enc.kind == "direct":     # writable either way: a read-only array is another compiled type
                    xs = cached[None] if t1 - t0 == 1 and cached.flags.writeable else \
                        np.repeat(cached[None], t1 - t0, axis=0)
                else:
                    xs = np.ascontiguousarray(xin[t0:t1])
                ys = br.run_span(ops, xs, t0)
                for t in range(t0, t1):
                    yield t, ys[t - t0]
            return
        last = net.ops[-1]
        for t in range(T):
            y = br.run_ops(ops, cached if enc.kind == "direct" else np.ascontiguousarray(xin[t]), t)
            if net.spec.readout.source == "membrane":
                y = br.state[last.name]
            yield t, y

    def readout(self, outputs: np.ndarray) -> np.ndarray:
        return outputs.mean(axis=0) if self.net.spec.readout.reduce == "mean" else outputs[-1].copy()


# Elements (float32) of a layer's activations over the steps of one window: several timesteps side by side make
# kernels' calls fewer and larger, but past a few MiB each op's pass over them leaves the cache. With a batch in
# chunks on two threads (engine.chunk_bounds) 2^19 ran the ResNet at batch 64 in 25.5 ms against 27.3 at 2^20,
# the conv net in 4.45 against 5.20 ms, and equal at batch 16 (T=4, 2026-11-28).
WINDOW_ELEMS = 1 << 19


def steps_at_once(largest: int, B: int, T: int) -> int:
    """Timesteps that run side by side (a network whose ops all ``span``): as many as keep the largest activation
    (``largest`` values per sample, batches of B) within WINDOW_ELEMS."""
    return max(1, min(T, WINDOW_ELEMS // max(1, B * largest)))


def _static_plan(net) -> tuple[int, bool, int]:
    """What every run of a network shares, worked out once: how many leading ops a direct-encoded input runs
    once (``_cached_prefix``), whether the rest runs several timesteps at once (every op ``spans``; a membrane
    readout reads the state after every step, so it runs timestep by timestep) and its largest activation."""
    plan = net.__dict__.get("_static_plan")
    if plan is None:
        prefix = _cached_prefix(net) if net.spec.encoding.kind == "direct" else 0
        spans = net.spec.readout.source == "output" and all(op.spans for op in net.ops[prefix:])
        plan = net.__dict__["_static_plan"] = (prefix, spans, activation_sizes(net)[0])
    return plan


def activation_sizes(net) -> tuple[int, int]:
    """Elements per sample of the network's largest activation and of all of them (worked out once): the
    window of timesteps (``steps_at_once``) and the chunks of a batch (``engine.chunk_bounds``) are sized by them."""
    sizes = net.__dict__.get("_activation_sizes")
    if sizes is None:
        each = [math.prod(op.layer.out_shape) for op in walk_ops(net.ops) if not op.composite]
        sizes = net.__dict__["_activation_sizes"] = (max(each), sum(each))
    return sizes


def _cached_prefix(net) -> int:
    """How many leading ops give the same output every timestep when the input is constant."""
    n = 0
    for op in net.ops:
        if any(o.holds_state and o.layer.stateful for o in walk_ops([op])):
            break
        n += 1
    return n


def schedule_of(net):
    """The schedule a network runs by: the one an op gives (``Op.schedule``) or the engine's ``Multistep``."""
    return next((s for s in (op.schedule(net) for op in net.ops) if s is not None), None) or Multistep(net)


