"""Backpropagation through time: one forward pass storing what the backward needs at every timestep, the loss
on the per-timestep outputs, and the backward pass through every layer and timestep.

``BPTT.loss_and_grads`` is the method's core (tests compare it with finite differences and with PyTorch
autograd on the SpikingJelly network); ``BPTT.step`` adds the optimiser update (both: ``step.GradientStep``).
"""

from __future__ import annotations

import numpy as np

from ..spec import NetworkSpec
from ..layers import build_nodes
from .forward import (Act, Ctx, NeuronTrainCfg, back_nodes, check_trainable, expand, first_trainable, rate_spikes,
                      run_nodes, trainable_keys)
from .memory import Ledger
from .step import GradientStep


class BPTT(GradientStep):
    name = "bptt"

    def __init__(self, spec: NetworkSpec, neuron_cfg: dict | NeuronTrainCfg | None = None):
        check_trainable(spec)
        self.spec = spec
        if isinstance(neuron_cfg, NeuronTrainCfg) or neuron_cfg is None:
            default = neuron_cfg or NeuronTrainCfg()
            self.cfg_for = lambda name: default
        else:
            self.cfg_for = lambda name: neuron_cfg.get(name, neuron_cfg.get("*", NeuronTrainCfg()))
        self.nodes = build_nodes(spec.layers, self.cfg_for)
        self.trainable = trainable_keys(self.nodes)
        self.first = first_trainable(self.nodes)

    # ------------------------------------------------------------------ pieces
    def input_act(self, x: np.ndarray, T: int, idx: np.ndarray | None = None) -> Act:
        enc = self.spec.encoding
        x = np.ascontiguousarray(x, dtype=np.float32)
        if enc.kind == "rate":
            idx = np.arange(len(x)) if idx is None else idx
            return Act(rate_spikes(x, idx, T, enc.seed, enc.gain), False)
        return Act(x, True)

    def forward(self, params: dict, x: np.ndarray, T: int, *, idx=None, store=True, update_stats=True,
                rng=None, ledger=None, grads=None, probes=()) -> tuple[np.ndarray, Ctx]:
        """Forward pass in training mode; returns outputs [T, B, ...] and the context holding the tape."""
        B = len(x)
        ctx = Ctx(T, B, params, grads, ledger or Ledger(), rng=rng, update_stats=update_stats, store=store,
                  probes=set(probes))
        a = run_nodes(self.nodes, self.input_act(x, T, idx), ctx)
        out = expand(a, T).reshape((T, B) + tuple(self.spec.output_shape))
        return out, ctx

    def backward(self, g_out: np.ndarray, ctx: Ctx) -> dict:
        g = np.ascontiguousarray(g_out, dtype=np.float32).reshape((ctx.T * ctx.B,) + g_out.shape[2:])
        last_static = ctx.tape.get("__out_static__", False)
        if last_static:
            g = g.reshape((ctx.T, ctx.B) + g.shape[1:]).sum(axis=0, dtype=np.float32)
        ctx.ledger.live(g)
        back_nodes(self.nodes, g, ctx, False, stop=self.first)
        ctx.ledger.live()
        return ctx.grads

    def _forward_for_grad(self, params, x, T, idx, rng, update_stats, ledger, grads):
        B = len(x)
        ctx = Ctx(T, B, params, grads, ledger, rng=rng, update_stats=update_stats, store=True)
        a = run_nodes(self.nodes, self.input_act(x, T, idx), ctx)
        ctx.tape["__out_static__"] = a.static
        out = expand(a, T).reshape((T, B) + tuple(self.spec.output_shape))
        return out, ctx
