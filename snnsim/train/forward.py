"""The training graph: the spec's layers as nodes with a forward pass that stores what the backward needs, and
the backward pass of each node.

The forward maths is the engine's: linear and conv layers call ``snnsim.kernels`` (dense form), pooling calls
the same pool kernels, neurons run the engine's ``neuron_step`` timestep by timestep. Batch norm runs in
training mode with its statistics pooled over T x B (x H x W), as SpikingJelly's multi-step layers do, and its
running averages are updated once per training step (PyTorch's momentum 0.1 and unbiased variance). Batch
norm is not folded here; the saved weights keep it separate, and the engine folds it for inference.

Layout. Every layer processes all T timesteps at once (the time loop lives inside the neuron layers, which is
exactly the timestep-by-timestep order because the graph is feed-forward): an activation is ``[T*B, *shape]``
t-major, or ``[B, *shape]`` when it is *static*, i.e. the same at every timestep (direct encoding before the
first stateful neuron: such layers are computed once, as the engine does, and their gradient is the sum over T).

Stored for the backward pass, per layer (see ``memory.Ledger``):
    linear/conv   the input (uint8 when it is binary spikes)     batch norm   x-hat (float32), 1/std
    neuron        the charged membrane H [T, ...] (+ the input for plif and clipped threshold layers)
    max pool      the argmax offset per output (uint8)            scale        the input
    dropout       the mask (uint8)                                 avg/sum pool, flatten, residual: nothing
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import kernels as K
from .. import neurons
from ..errors import InputError
from ..layers import BatchNorm, Conv2d, Dropout, Flatten, Linear, Neuron, Pool2d, Residual, Scale, sumpool2d
from ..spec import Layer, NetworkSpec
from . import grads as G
from .memory import Ledger
from .surrogate import Surrogate

EMPTY = np.zeros(0, np.float32)
BN_MOMENTUM = 0.1


@dataclass
class Act:
    x: np.ndarray
    static: bool


@dataclass
class NeuronTrainCfg:
    surrogate: Surrogate = field(default_factory=Surrogate)
    detach_reset: bool = False


@dataclass
class Ctx:
    """One forward/backward pass: sizes, parameters, gradient accumulators and the memory ledger."""

    T: int
    B: int
    params: dict
    grads: dict | None = None
    ledger: Ledger = field(default_factory=Ledger)
    rng: np.random.Generator | None = None
    update_stats: bool = True       # update batch-norm running averages (once per training step)
    store: bool = True              # keep what the backward pass needs
    tape: dict = field(default_factory=dict)
    spikes: dict = field(default_factory=dict)   # neuron layer -> output spike count (progress, tests)
    probes: set = field(default_factory=set)     # neuron layers whose spikes [T, B, ...] are kept in .probed
    probed: dict = field(default_factory=dict)
    # online methods (one timestep per pass): neuron states carried between passes, presynaptic traces of the
    # synaptic layers' inputs (decay per layer in ``lam``; the weight gradient uses the trace), batch-norm
    # statistics collected per timestep and applied once per training step
    state: dict | None = None
    traces: dict | None = None
    lam: dict = field(default_factory=dict)
    bn_stats: dict | None = None

    def save(self, layer: str, **arrays):
        self.tape.setdefault(layer, {}).update(arrays)
        self.ledger.hold(layer, "saved", *[a for a in self.tape[layer].values() if isinstance(a, np.ndarray)])

    def take(self, layer: str) -> dict:
        self.ledger.release(layer, "saved")
        return self.tape.pop(layer)

    def add_grad(self, key: str, g) -> None:
        if self.grads is None:
            return
        if key in self.grads:
            self.grads[key] += g
        else:
            self.grads[key] = np.array(g, dtype=np.float32).reshape(np.shape(self.params[key]))


def expand(a: Act, T: int) -> np.ndarray:
    """A static activation [B, ...] as a dynamic one [T*B, ...]."""
    if not a.static:
        return a.x
    x = np.broadcast_to(a.x, (T,) + a.x.shape)
    return np.ascontiguousarray(x).reshape((T * a.x.shape[0],) + a.x.shape[1:])


def reduce_t(g: np.ndarray, T: int) -> np.ndarray:
    """Gradient of a dynamic activation summed over timesteps: the gradient of the static one."""
    return g.reshape((T, g.shape[0] // T) + g.shape[1:]).sum(axis=0, dtype=np.float32)


def update_trace(name: str, x: np.ndarray, ctx: Ctx) -> np.ndarray:
    """Presynaptic trace of a synaptic layer's input: a = lam * a + x (OTTT); held between timesteps."""
    prev = ctx.traces.get(name)
    tr = np.array(x, np.float32) if prev is None else (np.float32(ctx.lam.get(name, 0.0)) * prev + x).astype(
        np.float32)
    ctx.traces[name] = tr
    ctx.ledger.hold(name, "trace", tr)
    return tr


def apply_bn_stats(nodes, ctx: Ctx, T: int) -> None:
    """Running averages from the per-timestep batch statistics collected in ``ctx.bn_stats``: the pooled
    mean and variance over all timesteps (what BPTT's T x B statistics are), applied once."""
    for node in walk_nodes(nodes):
        if not isinstance(node, BatchNormNode) or node.name not in (ctx.bn_stats or {}):
            continue
        st = ctx.bn_stats[node.name]
        means = np.stack([m.astype(np.float64) for m, _, _ in st])
        var = np.stack([v.astype(np.float64) for _, v, _ in st])
        n = sum(k for _, _, k in st)
        mean = means.mean(axis=0)
        pooled = (var + means ** 2).mean(axis=0) - mean ** 2
        unbiased = pooled * n / max(n - 1, 1)
        m = np.float32(BN_MOMENTUM)
        rm, rv = node.key("running_mean"), node.key("running_var")
        ctx.params[rm] = ((np.float32(1) - m) * ctx.params[rm] + m * mean.astype(np.float32)).astype(np.float32)
        ctx.params[rv] = ((np.float32(1) - m) * ctx.params[rv] + m * unbiased.astype(np.float32)).astype(np.float32)


def pack(x: np.ndarray) -> np.ndarray:
    """Binary spikes are stored as uint8 (4x less memory); anything else as is."""
    ok, u8 = G.is_binary_u8(np.ascontiguousarray(x))
    return u8.reshape(x.shape) if ok else x


# ----------------------------------------------------------------------------- nodes
class Node:
    trainable: tuple[str, ...] = ()

    def __init__(self, layer: Layer):
        self.layer = layer
        self.name = layer.name

    def key(self, p: str) -> str:
        return f"{self.name}.{p}"

    def forward(self, a: Act, ctx: Ctx) -> Act:
        raise NotImplementedError

    def backward(self, g: np.ndarray, ctx: Ctx, need_gx: bool) -> np.ndarray | None:
        raise NotImplementedError


class LinearNode(Node):
    def __init__(self, layer: Linear):
        super().__init__(layer)
        self.trainable = ("weight", "bias") if layer.bias else ("weight",)

    def forward(self, a, ctx):
        w = ctx.params[self.key("weight")]
        b = ctx.params[self.key("bias")] if self.layer.bias else EMPTY
        y = K.linear_dense(np.ascontiguousarray(a.x), w, b)
        if ctx.traces is not None:
            ctx.save(self.name, x=update_trace(self.name, a.x, ctx))
        elif ctx.store:
            ctx.save(self.name, x=pack(a.x))
        return Act(y, a.static)

    def backward(self, g, ctx, need_gx):
        x = ctx.take(self.name)["x"]
        w = ctx.params[self.key("weight")]
        ctx.add_grad(self.key("weight"), np.dot(g.T, x.astype(np.float32, copy=False)))
        if self.layer.bias:
            ctx.add_grad(self.key("bias"), g.sum(axis=0, dtype=np.float32))
        return np.dot(g, w) if need_gx else None


class ConvNode(Node):
    def __init__(self, layer: Conv2d):
        super().__init__(layer)
        self.trainable = ("weight", "bias") if layer.bias else ("weight",)

    def forward(self, a, ctx):
        c: Conv2d = self.layer
        w = ctx.params[self.key("weight")]
        b = ctx.params[self.key("bias")] if c.bias else EMPTY
        x = np.ascontiguousarray(a.x)
        y = K.conv2d_dense(x, w, b, c.stride[0], c.stride[1], c.padding[0], c.padding[1], c.groups)
        if ctx.traces is not None:
            ctx.save(self.name, x=update_trace(self.name, x, ctx))
        elif ctx.store:
            ctx.save(self.name, x=pack(x))
        return Act(y, a.static)

    def backward(self, g, ctx, need_gx):
        c: Conv2d = self.layer
        x = ctx.take(self.name)["x"]
        g = np.ascontiguousarray(g)
        gw, gx = G.conv2d_backward(x, ctx.params[self.key("weight")], g, c.stride[0], c.stride[1],
                                   c.padding[0], c.padding[1], c.groups, need_gx)
        ctx.add_grad(self.key("weight"), gw)
        if c.bias:
            ctx.add_grad(self.key("bias"), G.channel_sum(g.reshape(g.shape[0], g.shape[1], -1)))
        return gx if need_gx else None


class BatchNormNode(Node):
    def __init__(self, layer: BatchNorm):
        super().__init__(layer)
        self.trainable = ("weight", "bias") if layer.affine else ()

    def _affine(self, ctx):
        n = self.layer.num_features
        if self.layer.affine:
            return ctx.params[self.key("weight")], ctx.params[self.key("bias")]
        return np.ones(n, np.float32), np.zeros(n, np.float32)

    def forward(self, a, ctx):
        gamma, beta = self._affine(ctx)
        x3 = np.ascontiguousarray(a.x).reshape(a.x.shape[0], a.x.shape[1], -1)
        y, xhat, mean, var, invstd = G.batchnorm_forward_train(x3, gamma, beta, np.float32(self.layer.eps))
        if ctx.bn_stats is not None:
            ctx.bn_stats.setdefault(self.name, []).append((mean, var, x3.shape[0] * x3.shape[2]))
        elif ctx.update_stats:
            # PyTorch: running = (1 - m) * running + m * batch, with the unbiased batch variance over all
            # T x B x H x W values (a static input stands for T identical copies)
            n = x3.shape[0] * x3.shape[2] * (ctx.T if a.static else 1)
            m = np.float32(BN_MOMENTUM)
            unbiased = (var.astype(np.float64) * n / max(n - 1, 1)).astype(np.float32)
            rm, rv = self.key("running_mean"), self.key("running_var")
            ctx.params[rm] = ((np.float32(1) - m) * ctx.params[rm] + m * mean).astype(np.float32)
            ctx.params[rv] = ((np.float32(1) - m) * ctx.params[rv] + m * unbiased).astype(np.float32)
        if ctx.store:
            ctx.save(self.name, xhat=xhat, invstd=invstd)
        return Act(y.reshape(a.x.shape), a.static)

    def backward(self, g, ctx, need_gx):
        s = ctx.take(self.name)
        gamma, _ = self._affine(ctx)
        shape = g.shape
        g3 = np.ascontiguousarray(g).reshape(shape[0], shape[1], -1)
        gx, ggamma, gbeta = G.batchnorm_backward_train(g3, s["xhat"], gamma, s["invstd"], need_gx)
        if self.layer.affine:
            ctx.add_grad(self.key("weight"), ggamma)
            ctx.add_grad(self.key("bias"), gbeta)
        return gx.reshape(shape) if need_gx else None


class PoolNode(Node):
    def forward(self, a, ctx):
        p: Pool2d = self.layer
        x = np.ascontiguousarray(a.x)
        args = (p.kernel_size[0], p.kernel_size[1], p.stride[0], p.stride[1], p.padding[0], p.padding[1])
        if p.op == "max":
            y = K.maxpool2d(x, *args)
            if ctx.store:
                ctx.save(self.name, idx=G.maxpool_argmax(x, *args, y.shape[2], y.shape[3]))
        else:
            y = K.avgpool2d(x, *args) if p.op == "avg" else sumpool2d(x, *args)
            if ctx.store:
                ctx.save(self.name)
        return Act(y, a.static)

    def backward(self, g, ctx, need_gx):
        p: Pool2d = self.layer
        s = ctx.take(self.name)
        if not need_gx:
            return None
        g = np.ascontiguousarray(g)
        H, W = p.in_shape[1], p.in_shape[2]
        args = (p.kernel_size[0], p.kernel_size[1], p.stride[0], p.stride[1], p.padding[0], p.padding[1], H, W)
        if p.op == "max":
            return G.maxpool_backward(g, s["idx"], *args)
        scale = np.float32(1.0) / np.float32(p.kernel_size[0] * p.kernel_size[1]) if p.op == "avg" else \
            np.float32(1.0)
        return G.windowsum_backward(g, scale, *args)


class FlattenNode(Node):
    def forward(self, a, ctx):
        return Act(np.ascontiguousarray(a.x).reshape((a.x.shape[0],) + self.layer.out_shape), a.static)

    def backward(self, g, ctx, need_gx):
        return g.reshape((g.shape[0],) + tuple(self.layer.in_shape)) if need_gx else None


class ScaleNode(Node):
    trainable = ("scale",)

    def forward(self, a, ctx):
        y = (a.x * ctx.params[self.key("scale")]).astype(np.float32, copy=False)
        if ctx.store:
            ctx.save(self.name, x=pack(a.x))
        return Act(y, a.static)

    def backward(self, g, ctx, need_gx):
        x = ctx.take(self.name)["x"]
        ctx.add_grad(self.key("scale"), (g * x).sum(axis=0, dtype=np.float32))
        return (g * ctx.params[self.key("scale")]).astype(np.float32) if need_gx else None


class DropoutNode(Node):
    """Inverted dropout in training (identity at inference, as the engine runs it); one mask per sample,
    shared by all timesteps (SpikingJelly's multi-step Dropout)."""

    def forward(self, a, ctx):
        p = self.layer.p
        if p == 0 or ctx.rng is None:
            if ctx.store:
                ctx.save(self.name, keep=None)
            return a
        B = a.x.shape[0] if a.static else a.x.shape[0] // ctx.T
        mask = (ctx.rng.random((B,) + tuple(self.layer.in_shape)) >= p).astype(np.uint8)
        scale = np.float32(1.0 / (1.0 - p))
        x = a.x.reshape((-1, B) + a.x.shape[1:])
        y = (x * (mask * scale)).astype(np.float32).reshape(a.x.shape)
        if ctx.store:
            ctx.save(self.name, keep=mask)
        return Act(y, a.static)

    def backward(self, g, ctx, need_gx):
        mask = ctx.take(self.name)["keep"]
        if not need_gx:
            return None
        if mask is None:
            return g
        B = mask.shape[0]
        scale = np.float32(1.0 / (1.0 - self.layer.p))
        return (g.reshape((-1, B) + g.shape[1:]) * (mask * scale)).astype(np.float32).reshape(g.shape)


class NeuronNode(Node):
    def __init__(self, layer: Neuron, cfg: NeuronTrainCfg):
        super().__init__(layer)
        self.cfg = cfg
        self.trainable = ("w",) if layer.neuron == "plif" else ()

    def nparams(self, ctx) -> neurons.NeuronParams:
        w = ctx.params.get(self.key("w")) if self.layer.neuron == "plif" else None
        return neurons.neuron_params(self.layer, w)

    def forward(self, a, ctx):
        layer: Neuron = self.layer
        p = self.nparams(ctx)
        x = np.ascontiguousarray(a.x)
        static_out = a.static and p.stateless
        steps = 1 if static_out else ctx.T
        x2 = x.reshape(1 if a.static else ctx.T, -1)
        M = x2.shape[1]
        out = np.empty((steps, M), np.float32)
        h = np.empty((steps, M), np.float32)
        v = ctx.state.get(self.name) if ctx.state is not None else None
        if v is None:
            v = np.full(M, p.v_init, np.float32)
        n = G.neuron_forward_seq(x2, a.static, p.mode, p.factor, p.decay_input, p.v_r, p.threshold, p.hard,
                                 p.delay, p.gt, p.clip, p.lo, p.hi, p.stateless, v, out, h)
        ctx.spikes[self.name] = ctx.spikes.get(self.name, 0) + int(n) * (ctx.T if static_out else 1)
        if ctx.state is not None:
            ctx.state[self.name] = v
            ctx.ledger.hold(self.name, "state", v)
        if ctx.store:
            keep_x = layer.neuron == "plif" or (layer.neuron == "threshold" and layer.clip is not None)
            ctx.save(self.name, h=h, x=x2 if keep_x else None, static_in=a.static, static_out=static_out)
        if self.name in ctx.probes:
            ctx.probed[self.name] = out.reshape((steps, -1) + tuple(layer.out_shape)).copy()
        lead = x.shape[0] if static_out or not a.static else x.shape[0] * ctx.T
        return Act(out.reshape((lead,) + tuple(layer.out_shape)), static_out)

    def backward(self, g, ctx, need_gx):
        s = ctx.take(self.name)
        layer: Neuron = self.layer
        p = self.nparams(ctx)
        h = s["h"]
        steps, M = h.shape
        g2 = np.ascontiguousarray(g).reshape(steps, M)
        x2 = s["x"] if s["x"] is not None else np.zeros((1, 0), np.float32)
        gx = np.empty((1 if s["static_in"] else steps, M), np.float32)
        sur = self.cfg.surrogate
        gq = G.neuron_backward_seq(g2, h, x2, s["static_in"], p.mode, p.factor, p.decay_input, p.v_r, p.threshold,
                                   p.hard, p.delay, p.gt, p.clip, p.lo, p.hi, p.stateless, sur.sid, float(sur.alpha),
                                   self.cfg.detach_reset, False, gx)
        if layer.neuron == "plif":
            q = np.float32(p.factor)
            ctx.add_grad(self.key("w"), np.float32(gq) * q * (np.float32(1) - q))
        if not need_gx:
            return None
        lead = g.shape[0] if not s["static_in"] or s["static_out"] else g.shape[0] // ctx.T
        return gx.reshape((lead,) + tuple(layer.in_shape))


class StdConvNode(ConvNode):
    """conv2d with weight standardisation (``scaled_std_conv2d``) and/or shared parameters (``shared_from``).

    Forward: W_hat = gain * gamma * fan_in^-1/2 * (W - mean) / sqrt(var + eps) per output channel (the engine's
    ``standardize_weight``), then the conv. Backward: the conv's gradient for W_hat, then through the
    standardisation (u = (W - mean) / s, s = sqrt(var + eps), biased variance):
        g_gain = sum_i g_What * c * u,   g_u = g_What * gain * c,   g_W = (g_u - mean(g_u) - u * mean(g_u * u)) / s
    A shared module's keys are its original's (``shared_from``), so the gradients of all copies add up there.
    """

    def __init__(self, layer):
        super().__init__(layer)
        self.pname = layer.shared_from or layer.name
        if layer.standardize:
            self.trainable = self.trainable + ("gain",)

    def key(self, p: str) -> str:
        if p in ("weight", "bias", "gain"):
            return f"{self.pname}.{p}"
        return f"{self.name}.{p}"

    def weight(self, ctx):
        c = self.layer
        w = ctx.params[self.key("weight")]
        if not c.standardize:
            return w
        from ..layers import standardize_weight
        return standardize_weight(w, ctx.params[self.key("gain")], c.eps, c.gamma)

    def forward(self, a, ctx):
        c = self.layer
        w = self.weight(ctx)
        b = ctx.params[self.key("bias")] if c.bias else EMPTY
        x = np.ascontiguousarray(a.x)
        y = K.conv2d_dense(x, w, b, c.stride[0], c.stride[1], c.padding[0], c.padding[1], c.groups)
        if ctx.store:
            ctx.save(self.name, x=pack(x))
        return Act(y, a.static)

    def backward(self, g, ctx, need_gx):
        c = self.layer
        x = ctx.take(self.name)["x"]
        g = np.ascontiguousarray(g)
        gw, gx = G.conv2d_backward(x, self.weight(ctx), g, c.stride[0], c.stride[1], c.padding[0], c.padding[1],
                                   c.groups, need_gx)
        if c.standardize:
            gw, ggain = std_weight_backward(ctx.params[self.key("weight")], ctx.params[self.key("gain")], gw,
                                            c.eps, c.gamma)
            ctx.add_grad(self.key("gain"), ggain)
        ctx.add_grad(self.key("weight"), gw)
        if c.bias:
            ctx.add_grad(self.key("bias"), G.channel_sum(g.reshape(g.shape[0], g.shape[1], -1)))
        return gx if need_gx else None


def std_weight_backward(weight, gain, g_what, eps, gamma=1.0):
    """Gradients of the raw weight and the gain from the gradient of the standardised weight (float64)."""
    o = weight.shape[0]
    w = weight.astype(np.float64).reshape(o, -1)
    n = w.shape[1]
    mean = w.mean(axis=1, keepdims=True)
    s = np.sqrt(((w - mean) ** 2).mean(axis=1, keepdims=True) + eps)
    u = (w - mean) / s
    c = gamma * n ** -0.5
    gwh = np.asarray(g_what, np.float64).reshape(o, -1)
    ggain = (gwh * u).sum(axis=1) * c
    gu = gwh * gain.astype(np.float64).reshape(o, 1) * c
    gw = (gu - gu.mean(axis=1, keepdims=True) - u * (gu * u).mean(axis=1, keepdims=True)) / s
    return gw.reshape(weight.shape).astype(np.float32), ggain.reshape(gain.shape).astype(np.float32)


class UpsampleNode(Node):
    """Nearest-neighbour upsampling by s; backward sums the gradient over each s x s block. Stores nothing."""

    def forward(self, a, ctx):
        y = K.upsample_nearest2d(np.ascontiguousarray(a.x), int(self.layer.scale_factor))
        if ctx.store:
            ctx.save(self.name)
        return Act(y, a.static)

    def backward(self, g, ctx, need_gx):
        ctx.take(self.name)
        if not need_gx:
            return None
        s = int(self.layer.scale_factor)
        N, C, H, W = g.shape
        return g.reshape(N, C, H // s, s, W // s, s).sum(axis=(3, 5), dtype=np.float32)


class LayerScaleNode(Node):
    """y = x * gamma (per channel, weight key ``layer.weight_key`` [1, C, 1, 1]); stores the input."""

    trainable = ("gamma",)

    def key(self, p):
        return self.layer.weight_key if p == "gamma" else f"{self.name}.{p}"

    def _gamma(self, ctx):
        shape = self.layer.in_shape
        return ctx.params[self.key("gamma")].reshape((1, shape[0]) + (1,) * (len(shape) - 1))

    def forward(self, a, ctx):
        y = (a.x * self._gamma(ctx)[0]).astype(np.float32, copy=False)
        if ctx.store:
            ctx.save(self.name, x=pack(a.x))
        return Act(y, a.static)

    def backward(self, g, ctx, need_gx):
        x = ctx.take(self.name)["x"]
        axes = (0,) + tuple(range(2, g.ndim))
        gg = (g * x).sum(axis=axes, dtype=np.float32)
        ctx.add_grad(self.key("gamma"), gg.reshape(np.shape(ctx.params[self.key("gamma")])))
        return (g * self._gamma(ctx)[0]).astype(np.float32) if need_gx else None


class ResidualNode(Node):
    def __init__(self, layer: Residual, body: list, shortcut: list):
        super().__init__(layer)
        self.body = body
        self.shortcut = shortcut

    def forward(self, a, ctx):
        yb = run_nodes(self.body, a, ctx)
        ys = run_nodes(self.shortcut, a, ctx) if self.shortcut else a
        if yb.static and ys.static:
            y = Act(np.add(yb.x, ys.x, dtype=np.float32), True)
        else:
            y = Act(np.add(expand(yb, ctx.T), expand(ys, ctx.T), dtype=np.float32), False)
        if ctx.store:
            ctx.tape[self.name] = {"static": (a.static, yb.static, ys.static, y.static)}
        return y

    def backward(self, g, ctx, need_gx):
        s_in, s_b, s_s, s_y = ctx.tape.pop(self.name)["static"]
        gb = reduce_t(g, ctx.T) if s_b and not s_y else g
        gs = reduce_t(g, ctx.T) if s_s and not s_y else g
        gxb = back_nodes(self.body, gb, ctx, True)
        gxs = back_nodes(self.shortcut, gs, ctx, True) if self.shortcut else gs
        return np.add(gxb, gxs, dtype=np.float32) if need_gx else None


class ReversibleNode(Node):
    """RevSNN block (docs/papers.md, RevSNN block): x = [x1, x2] (channel halves), y1 = x1 + F(x2), y2 = x2 + G(y1).

    Under BPTT, F and G store their activations like any layer; ``snnsim.train.reversible`` runs the same
    forward without storing them and rebuilds the inputs from the outputs in the backward (docs/papers.md).
    """

    def __init__(self, layer, f: list, g: list):
        super().__init__(layer)
        self.f = f
        self.g = g

    @staticmethod
    def split(x: np.ndarray):
        c = x.shape[1] // 2
        return np.ascontiguousarray(x[:, :c]), np.ascontiguousarray(x[:, c:])

    def forward(self, a, ctx):
        x = expand(a, ctx.T)
        x1, x2 = self.split(x)
        fo = expand(run_nodes(self.f, Act(x2, False), ctx), ctx.T)
        y1 = np.add(x1, fo, dtype=np.float32)
        go = expand(run_nodes(self.g, Act(y1, False), ctx), ctx.T)
        y2 = np.add(x2, go, dtype=np.float32)
        if ctx.store:
            ctx.tape[self.name] = {"static": a.static}
        return Act(np.concatenate([y1, y2], axis=1), False)

    def backward(self, g, ctx, need_gx):
        static = ctx.tape.pop(self.name)["static"]
        g1, g2 = self.split(g)
        gy1 = np.add(g1, back_nodes(self.g, g2, ctx, True), dtype=np.float32)
        gx2 = np.add(g2, back_nodes(self.f, gy1, ctx, True), dtype=np.float32)
        gx = np.concatenate([gy1, gx2], axis=1)
        return (reduce_t(gx, ctx.T) if static else gx) if need_gx else None


# ----------------------------------------------------------------------------- graph
def run_nodes(nodes: list, a: Act, ctx: Ctx) -> Act:
    for node in nodes:
        a = node.forward(a, ctx)
        ctx.ledger.live(a.x)
    return a


def back_nodes(nodes: list, g: np.ndarray, ctx: Ctx, need_gx: bool, stop: int = 0):
    for i in range(len(nodes) - 1, stop - 1, -1):
        g = nodes[i].backward(g, ctx, need_gx or i > stop)
        if g is not None:
            ctx.ledger.live(g)
    return g


def build_nodes(layers, cfg_for) -> list:
    nodes = []
    for layer in layers:
        if isinstance(layer, Linear):
            nodes.append(LinearNode(layer))
        elif isinstance(layer, Conv2d) and (getattr(layer, "standardize", False) or getattr(layer, "shared_from", "")):
            nodes.append(StdConvNode(layer))
        elif isinstance(layer, Conv2d):
            nodes.append(ConvNode(layer))
        elif isinstance(layer, BatchNorm):
            nodes.append(BatchNormNode(layer))
        elif isinstance(layer, Pool2d):
            nodes.append(PoolNode(layer))
        elif isinstance(layer, Flatten):
            nodes.append(FlattenNode(layer))
        elif isinstance(layer, Scale):
            nodes.append(ScaleNode(layer))
        elif isinstance(layer, Dropout):
            nodes.append(DropoutNode(layer))
        elif isinstance(layer, Neuron):
            nodes.append(NeuronNode(layer, cfg_for(layer.name)))
        elif isinstance(layer, Residual):
            nodes.append(ResidualNode(layer, build_nodes(layer.body, cfg_for), build_nodes(layer.shortcut, cfg_for)))
        elif getattr(layer, "kind", "") == "upsample":
            nodes.append(UpsampleNode(layer))
        elif getattr(layer, "kind", "") == "layer_scale":
            nodes.append(LayerScaleNode(layer))
        elif getattr(layer, "kind", "") == "reversible" and hasattr(layer, "f"):
            nodes.append(ReversibleNode(layer, build_nodes(layer.f, cfg_for), build_nodes(layer.g, cfg_for)))
        else:
            raise InputError(f"layer '{layer.name}': training does not support '{layer.kind}' layers yet")
    return nodes


def walk_nodes(nodes):
    for n in nodes:
        yield n
        if isinstance(n, ResidualNode):
            yield from walk_nodes(n.body)
            yield from walk_nodes(n.shortcut)
        elif isinstance(n, ReversibleNode):
            yield from walk_nodes(n.f)
            yield from walk_nodes(n.g)


def trainable_keys(nodes) -> list[str]:
    """Every trainable parameter key once (a shared module's copies all name their original's keys)."""
    return list(dict.fromkeys(n.key(p) for n in walk_nodes(nodes) for p in n.trainable))


def shared_copies(nodes) -> dict[str, str]:
    """{copy key: original key} for the parameters of shared modules (``shared_from``): the weight file holds both
    keys, training updates the original only (the gradients of every copy are summed into it)."""
    out = {}
    for n in walk_nodes(nodes):
        if isinstance(n, StdConvNode) and n.layer.shared_from:
            for p in n.trainable:
                out[f"{n.name}.{p}"] = n.key(p)
    return out


def sync_shared(params: dict, copies: dict[str, str]) -> None:
    """Make every shared copy equal to its original again (after an update)."""
    for k, orig in copies.items():
        if k in params:
            params[k] = params[orig].copy()


def first_trainable(nodes) -> int:
    """Index of the first top-level node with trainable parameters (nothing before it needs a backward)."""
    for i, n in enumerate(nodes):
        if any(m.trainable for m in walk_nodes([n])):
            return i
    return len(nodes)


def rate_spikes(x: np.ndarray, idx: np.ndarray, T: int, seed: int, gain: float) -> np.ndarray:
    """The engine's rate coding for samples with dataset indices ``idx`` (per-sample seeded streams)."""
    p = np.clip(x * np.float32(gain), 0, 1)
    out = np.empty((T,) + x.shape, np.float32)
    for i in range(x.shape[0]):
        rng = np.random.default_rng([seed, int(idx[i])])
        out[:, i] = rng.random((T,) + x.shape[1:], dtype=np.float32) < p[i]
    return out.reshape((T * x.shape[0],) + x.shape[1:])


def check_trainable(spec: NetworkSpec) -> None:
    """Training needs a per-timestep output it can differentiate."""
    if spec.encoding.kind == "events":
        raise InputError(f"network '{spec.name}': training reads a dataset, which needs 'direct' or 'rate' "
                         "encoding, not 'events'")
    last = spec.layers[-1]
    if spec.readout.source == "membrane" and not (isinstance(last, Neuron) and last.neuron == "li"):
        raise InputError(f"network '{spec.name}': readout.source 'membrane' is trainable only when the last "
                         "layer is an 'li' neuron (whose output is its membrane)")
