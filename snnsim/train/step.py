"""One gradient step, whatever the method computes the gradients with: zeroed gradients, the forward that keeps
what the backward needs (``_forward_for_grad``), the loss on the outputs, the backward (``backward``), and the
optimiser update unless the loss or a gradient is NaN or Inf. The bytes held for the backward pass are
accounted per layer and at their peak (``memory.Ledger``) and returned with every step."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .blas import single_threaded_blas
from .memory import Ledger


@dataclass
class StepOut:
    loss: float
    outputs: np.ndarray                 # [T, B, classes]
    grads: dict | None
    memory: dict                        # Ledger.report()
    spikes: dict = field(default_factory=dict)
    forward_ops: dict = field(default_factory=dict)   # forward work per sample and timestep (online methods)


class GradientStep:
    """What a method that stores a forward and walks it back has in common (BPTT, the reversible methods).
    A subclass gives ``trainable`` (the parameter keys), ``_forward_for_grad`` and ``backward``."""

    trainable: list

    def _forward_for_grad(self, params, x, T, idx, rng, update_stats, ledger, grads):
        raise NotImplementedError

    def backward(self, g_out: np.ndarray, ctx) -> dict:
        raise NotImplementedError

    def loss_and_grads(self, params: dict, x: np.ndarray, y: np.ndarray, T: int, loss_fn, *, idx=None, rng=None,
                       update_stats=True) -> StepOut:
        grads = {k: np.zeros_like(params[k]) for k in self.trainable}
        ledger = Ledger()
        with single_threaded_blas():
            out, ctx = self._forward_for_grad(params, x, T, idx, rng, update_stats, ledger, grads)
            loss, g_out = loss_fn(out, y)
            if np.isfinite(loss):
                self.backward(g_out, ctx)
        return StepOut(float(loss), out, grads, ledger.report(), dict(ctx.spikes))

    def step(self, params: dict, x, y, T, loss_fn, opt, lr: float, *, idx=None, rng=None) -> StepOut:
        res = self.loss_and_grads(params, x, y, T, loss_fn, idx=idx, rng=rng)
        if np.isfinite(res.loss) and all(np.all(np.isfinite(g)) for g in res.grads.values()):
            opt.step(params, res.grads, lr)
        elif np.isfinite(res.loss):
            res.loss = float("nan")
        return res
