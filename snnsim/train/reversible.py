"""Reversible training (docs/papers.md, RevSNN): no activation inside an invertible block is stored.

Forward: every layer runs as under BPTT, but the blocks whose kind is ``invertible`` (RevSNN blocks, whose F and G
sub-networks store nothing) keep no tape; of a chain of consecutive such blocks only the last block's output is
kept. Backward, block by block from the last, each block's node rebuilds its input from its output
(``invert_backward``). For a RevSNN block, given its output Y = [y1, y2] and its gradient [g1, g2] (docs/papers.md,
RevSNN inverse):

    G is re-simulated from a reset state over all T steps on y1, storing its activations, and back-propagated
    through time with g2:                     gy1 = g1 + G'(y1)^T g2,      x2 = y2 - G(y1)
    F likewise on x2 with gy1:                gx2 = g2 + F'(x2)^T gy1,     x1 = y1 - F(x2)

X = [x1, x2] is the previous block's output, so the chain is walked back without storing it. Batch norm inside
F and G recomputes its batch statistics from the rebuilt input (training mode) and does not update its running
averages a second time. At any moment the backward holds one F or G graph over T steps, so the memory does not
grow with the number of blocks (it does with T and with the non-reversible layers, which store as under BPTT).

Float32: x2 = y2 - G(y1) is not bit-equal to the forward's x2, so a neuron of F whose charge lies within that
round-off of its threshold may spike differently in the re-simulation (docs/papers.md). Every re-simulated
neuron layer's spike count is compared with the forward's; a difference is reported as ``spike_mismatch`` in
the step's memory report (the gradients of that step are then those of a slightly different spike pattern).

A network whose kind trains itself (a T-RevSNN network: ``Kind.trainer``) gets its own method.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..spec import NetworkSpec
from ..layers.registry import kind_of, network_trainer
from .blas import single_threaded_blas
from .bptt import BPTT
from .forward import Ctx, expand, reduce_t
from .memory import Ledger
from .step import StepOut


def _invertible(node) -> bool:
    return kind_of(node.layer).invertible


class ReversibleTraining(BPTT):
    name = "reversible"

    def __init__(self, spec: NetworkSpec, neuron_cfg=None):
        super().__init__(spec, neuron_cfg)
        if not any(_invertible(n) for n in self.nodes):
            raise InputError(f"--method reversible: network '{spec.name}' has no top-level 'reversible' blocks "
                             "(RevSNN); use --method bptt")

    # ------------------------------------------------------------------ forward without storing inside blocks
    def _forward_for_grad(self, params, x, T, idx, rng, update_stats, ledger, grads):
        B = len(x)
        ctx = Ctx(T, B, params, grads, ledger, rng=rng, update_stats=update_stats, store=True)
        ctx.tape["__rev__"] = {}
        a = self.input_act(x, T, idx)
        for i, node in enumerate(self.nodes):
            if _invertible(node):
                ctx.store = False
                counts_before = dict(ctx.spikes)
                y = node.forward(a, ctx)
                ctx.store = True
                end = i + 1 == len(self.nodes) or not _invertible(self.nodes[i + 1])
                ctx.tape["__rev__"][node.name] = {
                    "static": a.static, "y": y.x if end else None,
                    "spikes": {k: v - counts_before.get(k, 0) for k, v in ctx.spikes.items()
                               if v != counts_before.get(k, 0) or k not in counts_before}}
                if end:
                    ctx.ledger.hold(node.name, "output", y.x)
                a = y
            else:
                a = node.forward(a, ctx)
            ctx.ledger.live(a.x)
        ctx.tape["__out_static__"] = a.static
        out = expand(a, T).reshape((T, B) + tuple(self.spec.output_shape))
        return out, ctx

    def backward(self, g_out, ctx):
        g = np.ascontiguousarray(g_out, dtype=np.float32).reshape((ctx.T * ctx.B,) + g_out.shape[2:])
        if ctx.tape.get("__out_static__", False):
            g = reduce_t(g, ctx.T)
        rev = ctx.tape["__rev__"]
        rebuilt = None                 # the input of the block processed last = the output of the one before
        mismatch = 0
        for i in range(len(self.nodes) - 1, self.first - 1, -1):
            node = self.nodes[i]
            need_gx = i > self.first
            if _invertible(node):
                info = rev[node.name]
                y = info["y"] if info["y"] is not None else rebuilt
                g, rebuilt, flips = node.invert_backward(y, g, ctx, info["spikes"])
                mismatch += flips
                ctx.ledger.release(node.name, "output")
                if info["static"]:
                    g = reduce_t(g, ctx.T)
            else:
                g = node.backward(g, ctx, need_gx)
                rebuilt = None
            if g is not None:
                ctx.ledger.live(g)
        ctx.ledger.live()
        ctx.ledger.spike_mismatch = mismatch
        return ctx.grads

    def loss_and_grads(self, params, x, y, T, loss_fn, *, idx=None, rng=None, update_stats=True) -> StepOut:
        grads = {k: np.zeros_like(params[k]) for k in self.trainable}
        ledger = Ledger()
        with single_threaded_blas():
            out, ctx = self._forward_for_grad(params, x, T, idx, rng, update_stats, ledger, grads)
            spikes = dict(ctx.spikes)
            loss, g_out = loss_fn(out, y)
            if np.isfinite(loss):
                self.backward(g_out, ctx)
        rep = ledger.report()
        rep["spike_mismatch"] = int(getattr(ledger, "spike_mismatch", 0))
        return StepOut(float(loss), out, grads, rep, spikes)


def make_reversible(spec, neuron_cfg):
    return network_trainer(spec, ReversibleTraining.name, neuron_cfg) or ReversibleTraining(spec, neuron_cfg)
