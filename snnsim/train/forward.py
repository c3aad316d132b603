"""The training graph: the spec's layers as nodes with a forward pass that stores what the backward needs, and
the backward pass of each node. Each kind's node lives in its module of ``snnsim.layers`` (``Kind.train_node``;
``snnsim.layers.build_nodes`` builds a graph); this module holds what they share.

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
    linear/conv   the input (uint8 when it is spikes or counts)  batch norm   x-hat (float32), 1/std
    neuron        the charged membrane H [T, ...] (+ the input for plif and clipped threshold layers)
    max pool      the argmax offset per output (uint8)            scale        the input
    dropout       the mask (uint8)                                 avg/sum pool, flatten, residual: nothing
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..spec import Layer, NetworkSpec, walk_blocks
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

    _packs: dict = field(default_factory=dict)   # id(x) -> (weakref to x, weakref to its packed copy, events)

    def pack(self, x: np.ndarray):
        """(x packed, its events) as ``pack_counted``, once per array however many layers store it (a residual's
        branches read the same input): the second layer gets the first one's copy. Weak references, so that
        the memo keeps neither array alive."""
        hit = self._packs.get(id(x))
        if hit is not None and hit[0]() is x:
            stored = hit[1]()
            if stored is not None:
                return stored, hit[2]
        stored, events = pack_counted(x)
        if stored is not x:
            self._packs[id(x)] = (weakref.ref(x), weakref.ref(stored), events)
        return stored, events

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
        if node.name not in (ctx.bn_stats or {}):          # batch-norm nodes only collect them
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
    """Spikes and small spike counts (whole numbers 0..255, e.g. a SEW residual's sums) are stored as uint8, exactly
    (4x less memory); anything else as is."""
    return pack_counted(x)[0]


def pack_counted(x: np.ndarray):
    """(x packed as ``pack`` does, its number of events when binary, else None): one pass over x."""
    u8, events = G.counts_u8(np.ascontiguousarray(x))
    return (u8.reshape(x.shape), int(events)) if events >= 0 else (x, None)


# ----------------------------------------------------------------------------- nodes
class Node:
    """A layer in the training graph; each kind's node (``snnsim.layers``, ``Kind.train_node``) subclasses it."""

    trainable: tuple[str, ...] = ()
    # What the online methods (snnsim.train.online) may do with it: "spiking" (a spiking state; its decay sets
    # the presynaptic traces), "branches" (a residual: its children run on the same input and add up),
    # "time_invariant" (linear and time-invariant: SAF runs its own forward on spike accumulations), None (SAF
    # refuses it).
    # Synaptic layers are told by ``layer.synaptic``.
    online_form: str | None = None

    def __init__(self, layer: Layer):
        self.layer = layer
        self.name = layer.name

    def online_refusal(self) -> str | None:
        """Why neither online method (OTTT, SAF) can train this node, or None."""
        return None

    def saf_refusal(self) -> str | None:
        """Why SAF's accumulated form cannot run this node, or None."""
        return None

    def key(self, p: str) -> str:
        return f"{self.name}.{p}"

    def forward(self, a: Act, ctx: Ctx) -> Act:
        raise NotImplementedError

    def backward(self, g: np.ndarray, ctx: Ctx, need_gx: bool) -> np.ndarray | None:
        raise NotImplementedError

    def children(self) -> list[list]:
        """The node lists inside a block (empty for a plain node)."""
        return []


class SynapticNode(Node):
    """A layer with a weight and an optional bias (linear, conv): y = dense(x, W, b). Forward stores its input
    (packed spikes), or with online methods the presynaptic trace; each kind gives ``dense`` and ``backward``."""

    def __init__(self, layer):
        super().__init__(layer)
        self.trainable = ("weight", "bias") if layer.bias else ("weight",)

    def dense(self, x: np.ndarray, w: np.ndarray, b: np.ndarray, events: int | None = None) -> np.ndarray:
        """The layer on x; ``events``: x's nonzero count when already known (a conv picks its form by it)."""
        raise NotImplementedError

    def forward(self, a, ctx):
        w = ctx.params[self.key("weight")]
        b = ctx.params[self.key("bias")] if self.layer.bias else EMPTY
        x = np.ascontiguousarray(a.x)
        if ctx.traces is None and ctx.store:        # packed and counted in one pass, before the layer uses the count
            stored, events = ctx.pack(x)
            y = self.dense(x, w, b, events)
            ctx.save(self.name, x=stored, events=events)
            return Act(y, a.static)
        y = self.dense(x, w, b)
        if ctx.traces is not None:
            ctx.save(self.name, x=update_trace(self.name, x, ctx))
        return Act(y, a.static)


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


walk_nodes = walk_blocks    # every node, depth first, each block before its children


def trainable_keys(nodes) -> list[str]:
    """Every trainable parameter key once (a shared module's copies all name their original's keys)."""
    return list(dict.fromkeys(n.key(p) for n in walk_nodes(nodes) for p in n.trainable))


def shared_copies(nodes) -> dict[str, str]:
    """{copy key: original key} for the parameters of shared modules (``shared_from``): the weight file holds both
    keys, training updates the original only (the gradients of every copy are summed into it)."""
    out = {}
    for n in walk_nodes(nodes):
        if getattr(n.layer, "shared_from", ""):
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
    if spec.readout.source == "membrane" and not (last.has_membrane and not last.spiking):
        raise InputError(f"network '{spec.name}': readout.source 'membrane' is trainable only when the last "
                         "layer is an 'li' neuron (whose output is its membrane)")
