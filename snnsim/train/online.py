"""Online training: OTTT (Xiao et al. 2022; A and O variants) and SAF (Saiin et al. 2024; E and F variants),
following docs/papers.md (OTTT, SAF). Memory does not depend on T: nothing is kept across timesteps but one
state array per layer (SAF) or two (OTTT), and one timestep's activations for the backward pass.

OTTT (docs/papers.md). Each timestep runs the network one step (the engine's neuron maths, membrane carried), then a
*spatial* backward at that step only: the temporal path is cut (the membrane is detached), so a neuron's
error is dL/dS * surrogate'(H - threshold), and a synaptic layer's weight gradient uses the presynaptic trace
a[t] = lambda * a[t-1] + x[t] of its input in place of x[t] (lambda = 1 - 1/tau of the neuron it feeds; every
synaptic layer is traced, the first one too, so that SAF-E's gradients equal OTTT_O's). The loss is the
per-step cross-entropy CE(out[t], y) / T. OTTT_A: one optimiser update per batch with the sum over t;
OTTT_O: an update after every timestep (T updates per batch, later steps use the updated weights).

SAF (docs/papers.md). The same network in accumulated form: the only state of a neuron layer is its spike accumulation
a[t] = lambda * a[t-1] + s[t]. A layer computes U = k * (W a_in[t] + c_t * b) with c_t = sum_k lambda^k
(k = 1/tau with decay_input, else 1), fires s = U - threshold * lambda * a[t-1] >= threshold, which is the LIF
neuron's spike exactly (soft reset, v starts at 0), so linear time-invariant layers act on accumulations and
one synaptic evaluation per layer and step is all the forward needs. SAF-E: per-step loss and update, with
OTTT_O's backward (the same gradients: Theorem 1). SAF-F: one loss at t = T on the accumulated output
a[T] / c_T (the weighted firing rate) and one backward at T, one update per batch (our reading, docs/papers.md:
the exact SAF-F backward rule was not available). SAF needs soft reset, one lambda for all layers, and only
linear time-invariant layers between neurons (linear, conv, average/sum pool, flatten, scale, dropout,
residual); batch norm in training mode and max pooling break the equivalence and are refused.

Forward work per sample and timestep is reported (``StepOut.forward_ops``): synaptic-layer evaluations and
state arrays updated. Both methods evaluate each synaptic layer once here; OTTT keeps two state arrays per
layer (membrane v and trace a), SAF one (a). The official OTTT implementation evaluates each synaptic layer
twice (on the spikes for the value and on the traces for the gradient, ``GradwithTrace``, docs/papers.md), which is the
count SAF's "halves the forward operations" refers to; our explicit backward does not need the second one.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..spec import NetworkSpec
from .step import StepOut
from ..layers import build_nodes
from .forward import (Act, Ctx, NeuronTrainCfg, apply_bn_stats, back_nodes, check_trainable, expand, first_trainable,
                      rate_spikes, run_nodes, trainable_keys, walk_nodes)
from .losses import _ce
from .blas import single_threaded_blas
from .memory import Ledger

def synaptic(node) -> bool:
    """A node with weights reached by its input (linear, conv): it keeps a presynaptic trace."""
    return node.layer.synaptic


def neuron_lambda(layer) -> float:
    """Membrane decay per step: lif/li 1 - 1/tau, if 1, stateless 0."""
    if not layer.stateful:
        return 0.0
    if layer.neuron == "if":
        return 1.0
    return float(np.float32(1) - np.float32(1) / np.float32(layer.tau))


def _first_lambda(nodes, default):
    for n in walk_nodes(nodes):
        if n.online_form == "spiking":
            return neuron_lambda(n.layer)
    return default


def trace_decays(nodes, after: float = 0.0, out: dict | None = None) -> dict:
    """For every synaptic layer, the decay of the neuron layer its output feeds (0 if none)."""
    out = {} if out is None else out
    lam = after
    for node in reversed(nodes):
        if node.online_form == "spiking":
            lam = neuron_lambda(node.layer)
        elif node.online_form == "branches":
            body, shortcut = node.children()
            trace_decays(body, lam, out)
            trace_decays(shortcut, lam, out)
            lam = _first_lambda(body, _first_lambda(shortcut, lam))
        elif synaptic(node):
            out[node.name] = lam
    return out


def _per_step_loss(out_t, y, T, smoothing):
    loss, g = _ce(out_t, y, smoothing)
    return loss / T, (g / T).astype(np.float32)


class _Online:
    def __init__(self, spec: NetworkSpec, ncfg: NeuronTrainCfg, variant: str, smoothing: float = 0.0):
        check_trainable(spec)
        self.spec = spec
        self.nodes = build_nodes(spec.layers, lambda name: ncfg)
        self.variant = variant
        self.smoothing = smoothing
        for n in walk_nodes(self.nodes):
            reason = n.online_refusal()
            if reason:
                raise InputError(f"--method {self.name}: {reason}")
        self.trainable = trainable_keys(self.nodes)
        self.first = first_trainable(self.nodes)
        self.lam = trace_decays(self.nodes)
        self.n_syn = sum(synaptic(n) for n in walk_nodes(self.nodes))
        self.n_neur = sum(n.online_form == "spiking" and n.layer.stateful for n in walk_nodes(self.nodes))

    def _inputs(self, x, T, idx):
        enc = self.spec.encoding
        x = np.ascontiguousarray(x, dtype=np.float32)
        if enc.kind == "rate":
            idx = np.arange(len(x)) if idx is None else idx
            sp = rate_spikes(x, idx, T, enc.seed, enc.gain).reshape((T,) + x.shape)
            return lambda t: Act(np.ascontiguousarray(sp[t]), False)
        return lambda t: Act(x, True)

    def step(self, params, x, y, T, loss_fn, opt, lr, *, idx=None, rng=None) -> StepOut:
        with single_threaded_blas():
            return self._step(params, x, y, T, opt, lr, idx, rng)

    def _update(self, params, grads, opt, lr) -> bool:
        if not all(np.all(np.isfinite(g)) for g in grads.values()):
            return False
        opt.step(params, grads, lr)
        for g in grads.values():
            g.fill(0)
        return True


class OTTT(_Online):
    name = "ottt"

    def _step(self, params, x, y, T, opt, lr, idx, rng) -> StepOut:
        B = len(x)
        ledger = Ledger()
        grads = {k: np.zeros_like(params[k]) for k in self.trainable}
        state, traces, bn = {}, {}, {}
        act = self._inputs(x, T, idx)
        seed = int(rng.integers(2 ** 31)) if rng is not None else 0
        outs = np.empty((T, B) + tuple(self.spec.output_shape), np.float32)
        total = 0.0
        for t in range(T):
            ctx = Ctx(1, B, params, grads, ledger, rng=np.random.default_rng(seed) if rng is not None else None,
                      update_stats=False, state=state, traces=traces, lam=self.lam, bn_stats=bn)
            a = run_nodes(self.nodes, act(t), ctx)
            out_t = expand(a, 1).reshape(outs.shape[1:])
            outs[t] = out_t
            lt, gt = _per_step_loss(out_t, y, T, self.smoothing)
            total += lt
            if not np.isfinite(lt):
                return StepOut(float("nan"), outs, grads, ledger.report())
            back_nodes(self.nodes, gt.reshape((B,) + gt.shape[1:]), ctx, False, stop=self.first)
            ledger.live()
            if self.variant == "O" and not self._update(params, grads, opt, lr):
                return StepOut(float("nan"), outs, grads, ledger.report())
        if self.variant == "A" and not self._update(params, grads, opt, lr):
            return StepOut(float("nan"), outs, grads, ledger.report())
        apply_bn_stats(self.nodes, Ctx(T, B, params, bn_stats=bn), T)
        return StepOut(total, outs, grads, ledger.report(),
                       forward_ops={"synaptic": self.n_syn, "state_arrays": self.n_syn + self.n_neur})


class SAF(_Online):
    name = "saf"

    def __init__(self, spec, ncfg, variant, smoothing=0.0):
        super().__init__(spec, ncfg, variant, smoothing)
        lams = set()
        for n in walk_nodes(self.nodes):
            reason = n.saf_refusal()
            if reason:
                raise InputError(f"--method saf: {reason}")
            if n.online_form == "spiking":
                lams.add(neuron_lambda(n.layer))
        if len(lams) > 1:
            raise InputError(f"--method saf: the neuron layers decay differently ({sorted(lams)}); SAF shares one "
                             "spike accumulation between layers, so every layer needs the same tau")
        self.lam_all = np.float32(lams.pop() if lams else 0.0)

    # ------------------------------------------------------------------ accumulated forward
    def _run(self, nodes, a: Act, ctx: Ctx, c_t, acc: dict) -> Act:
        for node in nodes:
            if synaptic(node):
                a = self._synaptic(node, a, ctx, c_t)
            elif node.online_form == "spiking":
                a, _ = self._neuron(node, a, ctx, acc)
            elif node.online_form == "branches":
                body, shortcut = node.children()
                yb = self._run(body, a, ctx, c_t, acc)
                ys = self._run(shortcut, a, ctx, c_t, acc) if shortcut else a
                y = Act(np.add(expand(yb, 1), expand(ys, 1), dtype=np.float32), yb.static and ys.static)
                if ctx.store:
                    ctx.tape[node.name] = {"static": (a.static, yb.static, ys.static, y.static)}
                a = y
            elif node.online_form == "time_invariant":
                a = node.forward(a, ctx)
            else:  # pragma: no cover - refused in __init__
                raise InputError(f"--method saf: layer '{node.name}' is not supported")
            ctx.ledger.live(a.x)
        return a

    def _synaptic(self, node, a, ctx, c_t):
        w = ctx.params[node.key("weight")]
        bias = node.layer.bias
        b = (np.float32(c_t) * ctx.params[node.key("bias")]).astype(np.float32) if bias else np.zeros(0, np.float32)
        x = np.ascontiguousarray(a.x)
        y = node.dense(x, w, b)
        if ctx.store:
            ctx.save(node.name, x=x)         # the accumulated input: OTTT's trace
        return Act(y, a.static)

    def _neuron(self, node, a, ctx, acc):
        L = node.layer
        p = node.nparams(ctx)
        lam = self.lam_all
        U = np.ascontiguousarray(expand(a, 1), dtype=np.float32).reshape(1, -1)
        if p.mode != 0 and p.decay_input:
            U = (U / p.factor).astype(np.float32)                   # k = 1 / tau
        prev = acc.get(node.name)
        if prev is None:
            prev = np.zeros_like(U)
        if p.mode == 3:                                             # li: H = U, no spikes
            h = U
            out = U
            new = U
        else:
            h = (U - p.threshold * lam * prev).astype(np.float32)  # the LIF neuron's charged membrane H
            s = (h > p.threshold) if p.gt else (h >= p.threshold)
            out = s.astype(np.float32)
            new = (lam * prev + out).astype(np.float32)
        acc[node.name] = new
        ctx.ledger.hold(node.name, "state", new)
        if L.spiking:
            ctx.spikes[node.name] = ctx.spikes.get(node.name, 0) + int(out.sum())
        if ctx.store:
            ctx.save(node.name, h=h, x=None, static_in=False, static_out=False)
        shape = (U.size // int(np.prod(L.out_shape)),) + tuple(L.out_shape)
        ctx.probed.setdefault(node.name, []).append(out.reshape(shape))
        # what the next layer consumes: the accumulation (spikes for the per-step output of the last layer)
        return Act(new.reshape(shape), False), out.reshape(shape)

    def _step(self, params, x, y, T, opt, lr, idx, rng) -> StepOut:
        B = len(x)
        ledger = Ledger()
        grads = {k: np.zeros_like(params[k]) for k in self.trainable}
        acc = {}
        lam = self.lam_all
        xin = self._inputs(x, T, idx)
        seed = int(rng.integers(2 ** 31)) if rng is not None else 0
        outs = np.empty((T, B) + tuple(self.spec.output_shape), np.float32)
        a0 = None
        c_t = np.float32(0)
        total = 0.0
        final = self.variant == "F"
        for t in range(T):
            c_t = np.float32(lam * c_t + 1)
            xt = xin(t)
            a0 = xt.x.copy() if a0 is None else (lam * a0 + xt.x).astype(np.float32)
            store = not final or t == T - 1
            ctx = Ctx(1, B, params, grads, ledger, rng=np.random.default_rng(seed) if rng is not None else None,
                      update_stats=False, store=store)
            ledger.hold("input", "acc", a0)
            last, spikes = self._run_top(Act(a0, xt.static), ctx, c_t, acc)
            outs[t] = spikes.reshape(outs.shape[1:])
            if final:
                if t < T - 1:
                    continue
                rate = (last.reshape(outs.shape[1:]) / c_t).astype(np.float32)
                lt, g = _ce(rate, y, self.smoothing)
                gt = (g / c_t).astype(np.float32)
            else:
                lt, gt = _per_step_loss(outs[t], y, T, self.smoothing)
            total += lt
            if not np.isfinite(lt):
                return StepOut(float("nan"), outs, grads, ledger.report())
            back_nodes(self.nodes, gt.reshape((B,) + gt.shape[1:]), ctx, False, stop=self.first)
            if final:
                # SAF-F differentiates its one loss through the accumulated form, where a bias enters as c_T * b
                # (U = k (W a_in + c_T b)); the shared backward gives the per-step bias gradient, so scale it by
                # c_T as the weights' gradients already carry the accumulated inputs (tests/test_train_online.py
                # checks both against autograd). SAF-E keeps OTTT_O's per-step rule (Theorem 1).
                for node in walk_nodes(self.nodes):
                    if synaptic(node) and node.layer.bias and node.key("bias") in grads:
                        grads[node.key("bias")] *= c_t
            ledger.live()
            if not self._update(params, grads, opt, lr):
                return StepOut(float("nan"), outs, grads, ledger.report())
        return StepOut(total, outs, grads, ledger.report(),
                       forward_ops={"synaptic": self.n_syn, "state_arrays": self.n_neur})

    def _run_top(self, a, ctx, c_t, acc):
        """Run the accumulated network one step; returns the last layer's accumulation and its spikes."""
        spikes = None
        for node in self.nodes:
            if node.online_form == "spiking":
                a, spikes = self._neuron(node, a, ctx, acc)
            else:
                a = self._run([node], a, ctx, c_t, acc)
                spikes = None
            ctx.ledger.live(a.x)
        if spikes is None:                       # the last layer is not a neuron: its output is the readout
            spikes = a.x
        return a.x, spikes

    def forward_spikes(self, params, x, T) -> dict:
        """Inference in accumulated form: per neuron layer, spikes [T, B, ...] (tests against the engine)."""
        acc = {}
        lam = self.lam_all
        xin = self._inputs(x, T, None)
        ledger = Ledger()
        a0 = None
        c_t = np.float32(0)
        probed = {}
        for t in range(T):
            c_t = np.float32(lam * c_t + 1)
            xt = xin(t)
            a0 = xt.x.copy() if a0 is None else (lam * a0 + xt.x).astype(np.float32)
            ctx = Ctx(1, len(x), params, None, ledger, store=False)
            self._run_top(Act(a0, xt.static), ctx, c_t, acc)
            for k, v in ctx.probed.items():
                probed.setdefault(k, []).append(v[0])
        return {k: np.stack(v) for k, v in probed.items()}


def make_online(spec: NetworkSpec, ncfg: NeuronTrainCfg, method: str, variant: str = "", smoothing: float = 0.0):
    variant = (variant or ("A" if method == "ottt" else "E")).upper()
    allowed = {"ottt": ("A", "O"), "saf": ("E", "F")}[method]
    if variant not in allowed:
        raise InputError(f"--variant: {method} has variants {' and '.join(allowed)}, got '{variant}'")
    return (OTTT if method == "ottt" else SAF)(spec, ncfg, variant, smoothing)
