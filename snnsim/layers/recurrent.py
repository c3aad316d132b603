"""Recurrent LIF layer (YAML rlif): snnTorch's ``RLeaky`` with ``all_to_all=True`` and ``linear_features=N`` on a
1-D input of N features. Each neuron's input adds the layer's own spikes of the previous step through a dense
recurrent weight:

    I[t] = x[t] + W s[t-1] + b          (s[-1] = 0; weight keys ``<name>.recurrent.weight`` [N, N], ``.bias`` [N])

and the neuron is snnsim's ``lif`` on I (docs/neurons.md). The defaults are RLeaky's: ``decay_input: false``,
``spike_rule: gt``, subtract reset delayed one step (``v_reset: null``, ``reset_delay: true``), so
mem[t] = beta mem[t-1] + I[t] - v_threshold s[t-1] with beta = 1 - 1/tau.

It runs as three engine ops: the recurrent product (a linear op on last step's spikes), the sum with the input,
and the neuron; the trace records them as such ('<name>.recurrent', '<name>.add', '<name>'), so hwmodel prices
the recurrent synapses like any linear layer. Training (BPTT) runs it timestep by timestep with the inference
step and backpropagates through the recurrence (``RecurrentNode``); ``from_torch`` reads snnTorch's RLeaky module.

In NIR (docs/nir.md) it is what snnTorch's exporter writes for RLeaky: a LIF node and an Affine (Linear without
bias) node that feed each other, the LIF taking the layer's input and giving its output. The neuron maps as the
neuron kind maps lif; the cycle's edge w_rec -> lif carries last step's spikes, as snnTorch and nirtorch run it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numba import njit

from .. import kernels as K
from .. import neurons
from ..errors import InputError
from ..train.forward import Act, Node, expand
from ..train.surrogate import surrogate_grad
from . import linear, neuron
from .linear import Linear
from .neuron import Neuron, NeuronOp
from .neuron_import import NIR_READERS, snntorch_fields
from .op import Op, add_record, note_add
from .registry import BuildContext, Kind, ParseContext, register, shape_error

RLEAKY_DEFAULTS = {"decay_input": False, "spike_rule": "gt", "v_reset": None, "reset_delay": True}


@dataclass(frozen=True)
class RecurrentNeuron(Neuron):
    recurrent_bias: bool = True
    kind = "rlif"

    def param_shapes(self):
        n = self.in_shape[0]
        p = {"recurrent.weight": (n, n)}
        if self.recurrent_bias:
            p["recurrent.bias"] = (n,)
        return p

    @property
    def type_name(self) -> str:
        return self.kind

    @property
    def stateful(self) -> bool:
        return True

    def cell(self) -> Neuron:
        """The layer's neuron alone (same name, fields and state)."""
        return Neuron(**{f.name: getattr(self, f.name) for f in fields(Neuron)})

    def recurrent(self) -> Linear:
        n = self.in_shape[0]
        return Linear(f"{self.name}.recurrent", (n,), (n,), n, n, self.recurrent_bias)


def parse(f, type_name, name, shape, ctx):
    if len(shape) != 1:
        raise shape_error(f, f"rlif needs a 1-D input (features), got shape {list(shape)}; add a 'flatten' "
                             "layer before it")
    if f.raw.get("stateless") is True:
        raise f.err("stateless", "a recurrent layer keeps its spikes across steps; remove stateless")
    raw = dict(RLEAKY_DEFAULTS)
    raw.update(f.raw)
    f.raw = raw
    base = neuron.parse(f, "lif", name, shape, ParseContext({}, ctx.names, ctx.source))
    return RecurrentNeuron(**{k.name: getattr(base, k.name) for k in fields(Neuron)},
                           recurrent_bias=f.bool("recurrent_bias", True))


@dataclass
class RecurrentNeuronOp(Op):
    rec: Op = None              # W s[t-1] + b: a linear op
    cell: NeuronOp = None       # the neuron, named as the layer
    composite = True

    def children(self):
        return [[self.rec], [self.cell]]

    def trace_records(self, T: int):
        return [add_record(f"{self.name}.add", self.layer.in_shape, T)]

    def run_step(self, br, x: np.ndarray, t: int) -> np.ndarray:
        """One timestep in the engine's batch run: the recurrent product of last step's spikes, its sum with the
        input, then the neuron; the spikes are kept for the next step."""
        key = f"{self.name}.spikes"
        prev = br.state.get(key)
        if prev is None:
            prev = np.zeros_like(x)
        r = br.run_op(self.rec, prev, t)
        current = np.add(x, r, dtype=np.float32)
        note_add(br.records[f"{self.name}.add"], t, x, r, current)
        y = br.run_op(self.cell, current, t)
        br.state[key] = y
        return y


def build(layer: RecurrentNeuron, w, ctx):
    rec = linear.build(layer.recurrent(), w, BuildContext(ctx.fold, ctx.build))
    cell = layer.cell()
    return RecurrentNeuronOp(layer, (), rec, NeuronOp(cell, (), neurons.neuron_params(cell, None)))


# ----------------------------------------------------------------------------- training
@njit(cache=True, nogil=True)
def _surrogate(h, threshold, sid, alpha, out):
    """out = dS/dH at every element of h (the trainer's surrogate of the spike at ``threshold``)."""
    hf, of = h.reshape(-1), out.reshape(-1)
    for i in range(hf.size):
        of[i] = surrogate_grad(np.float32(hf[i] - threshold), sid, alpha)


class RecurrentNode(Node):
    """BPTT through the recurrence. Forward, per step: I[t] = x[t] + W s[t-1] + b with the engine's kernels, then
    the engine's neuron step; stores I's inputs s[t-1] and the charge H[t]. Backward, t = T-1 .. 0, with
    k = dH[t+1]/dv[t] = 1 - 1/tau and c = dH/dI (1, or 1/tau with decay_input):
        g_S[t] = g_out[t] + g_I[t+1] W - v_threshold g_H[t+1]     (the last term is the delayed reset's; none
                                                                    with detach_reset)
        g_H[t] = g_S[t] dS/dH(H[t]) + k g_H[t+1],   g_I[t] = c g_H[t]
        g_W += g_I[t]^T s[t-1],   g_b += sum g_I[t],   g_x[t] = g_I[t]
    Training supports RLeaky's reset: subtract, delayed one step."""

    def __init__(self, layer: RecurrentNeuron, cfg):
        super().__init__(layer)
        if layer.v_reset is not None or not layer.reset_delay or layer.clip is not None:
            raise InputError(f"layer '{layer.name}': training supports rlif layers with the RLeaky reset "
                             "(v_reset: null, reset_delay: true) and no clip")
        self.cfg = cfg
        self.trainable = ("recurrent.weight", "recurrent.bias") if layer.recurrent_bias else ("recurrent.weight",)
        self.params = neurons.neuron_params(layer.cell(), None)

    def forward(self, a, ctx):
        if ctx.traces is not None or ctx.state is not None:
            raise InputError(f"layer '{self.name}': online methods do not support rlif layers (use bptt)")
        T, p, n = ctx.T, self.params, self.layer.in_shape[0]
        x = expand(a, T).reshape(T, -1, n)
        w = ctx.params[self.key("recurrent.weight")]
        b = ctx.params[self.key("recurrent.bias")] if self.layer.recurrent_bias else np.zeros(0, np.float32)
        v = np.full(x.shape[1:], p.v_init, np.float32)
        s = np.zeros((T + 1,) + x.shape[1:], np.float32)        # s[t + 1] = spikes of step t; s[0] = 0
        h = np.empty_like(x)
        for t in range(T):
            current = np.add(x[t], K.linear_dense(s[t], w, b), dtype=np.float32)
            neurons.step(p, current, v, s[t + 1], h[t])
        ctx.spikes[self.name] = ctx.spikes.get(self.name, 0) + int(s.sum())
        if ctx.store:
            ctx.save(self.name, h=h, s=s, static=a.static)
        if self.name in ctx.probes:
            ctx.probed[self.name] = s[1:].copy()
        return Act(np.ascontiguousarray(s[1:].reshape((-1, n))), False)

    def backward(self, g, ctx, need_gx):
        saved = ctx.take(self.name)
        h, s = saved["h"], saved["s"]
        T, p, n = ctx.T, self.params, self.layer.in_shape[0]
        w = ctx.params[self.key("recurrent.weight")]
        g = np.ascontiguousarray(g, np.float32).reshape(h.shape)
        sur = self.cfg.surrogate
        ds = np.empty_like(h)
        _surrogate(h, p.threshold, sur.sid, float(sur.alpha), ds)
        k = np.float32(1) - np.float32(1) / p.factor
        c = np.float32(1) / p.factor if p.decay_input else np.float32(1)
        thr = np.float32(0) if self.cfg.detach_reset else p.threshold
        gx = np.empty_like(h)
        gw = np.zeros_like(w)
        gb = np.zeros(n, np.float32)
        g_h = np.zeros(h.shape[1:], np.float32)
        g_i = np.zeros(h.shape[1:], np.float32)
        for t in range(T - 1, -1, -1):
            g_s = g[t] + g_i @ w - thr * g_h
            g_h = (g_s * ds[t] + k * g_h).astype(np.float32)
            g_i = (c * g_h).astype(np.float32)
            gx[t] = g_i
            gw += g_i.T @ s[t]
            gb += g_i.sum(axis=0, dtype=np.float32)
        ctx.add_grad(self.key("recurrent.weight"), gw)
        if self.layer.recurrent_bias:
            ctx.add_grad(self.key("recurrent.bias"), gb)
        if not need_gx:
            return None
        gx = gx.reshape((-1, n))
        if saved["static"]:                   # the same input at every step: its gradient is the sum over T
            return gx.reshape(T, -1, n).sum(axis=0, dtype=np.float32)
        return gx


# ----------------------------------------------------------------------------- importer (torch_import)
def from_torch(m, imp):
    """snnTorch RLeaky with all_to_all=True and linear_features (its ``recurrent`` Linear is the recurrent weight),
    with its default reset (subtract, delayed one step) or reset_mechanism='zero' with reset_delay=False."""
    if not (m.all_to_all and m.linear_features):
        raise imp.refuse("snnsim's rlif is RLeaky with all_to_all=True and linear_features (a dense recurrent "
                         "weight)")
    fields = snntorch_fields(m, imp)
    # Two of RLeaky's resets are rlif's (spikes checked against snnTorch's own loop): subtract delayed one step
    # (the default) and zero at once. Its other two act on the stored membrane twice (the delayed reset and
    # the immediate one) and give other spikes.
    if (m.reset_mechanism, bool(m.reset_delay)) not in (("subtract", True), ("zero", False)):
        raise imp.refuse(f"snnsim's rlif reads RLeaky's reset_mechanism='subtract' with reset_delay=True (the "
                         f"default) or 'zero' with reset_delay=False, not {m.reset_mechanism!r} with "
                         f"reset_delay={bool(m.reset_delay)}")
    fields.setdefault("reset_delay", False)      # rlif's own default is RLeaky's delayed reset
    return [imp.layer("rlif", imp.params("recurrent.weight", "recurrent.bias"), **fields,
                      recurrent_bias=m.recurrent.bias is not None)]


# ----------------------------------------------------------------------------- NIR (snnsim.nir)
def to_nir(op, ex, srcs: list[str]) -> list[str]:
    """A subgraph: input -> lif, lif -> w_rec, w_rec -> lif, lif -> output (snnTorch's RLeaky export)."""
    import nir

    n = np.array(op.layer.in_shape)
    sub = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": n}), "lif": neuron.nir_node(op.cell, ex, "rlif"),
                              "w_rec": linear.nir_node(op.rec), "output": nir.Output(output_type={"output": n})},
                       edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    return ex.add(op.name, sub, srcs)


def nir_cycle(nodes, edges, entries, exits):
    """A LIF and an Affine/Linear node feeding each other, entered and left at the LIF only: (LIF, weight) as
    (name, node) pairs; None for any other cycle."""
    lif = [k for k, v in nodes.items() if type(v).__name__ == "LIF"]
    w = [k for k, v in nodes.items() if type(v).__name__ in ("Affine", "Linear")]
    if len(nodes) != 2 or len(lif) != 1 or len(w) != 1:
        return None
    (lif,), (w,) = lif, w
    if sorted(edges) != sorted([(lif, w), (w, lif)]) or not entries | exits <= {lif}:
        return None
    return (lif, nodes[lif]), (w, nodes[w])


def from_nir(n, claim, shape, imp):
    """The cycle ``nir_cycle`` claimed -> one rlif layer named ``n``: the LIF read as the neuron kind reads it,
    the weight node's matrix (and bias) as the recurrent weight."""
    (lif_name, lif), (w_name, w) = claim
    if len(shape) != 1:
        raise imp.err(lif_name, f"a recurrent LIF layer needs a 1-D input (features), got shape {list(shape)}")
    (rec,), rec_shape = linear.from_nir(w_name, w, shape, imp)
    if rec_shape != tuple(shape):
        raise imp.err(w_name, f"a recurrent weight maps the layer's {shape[0]} spikes back to its {shape[0]} "
                              f"neurons, but its weight has shape {list(rec.params['weight'].shape)}")
    cell = NIR_READERS["LIF"](lif_name, lif, shape, imp)
    if len(cell) != 1 or cell[0].fields["type"] != "lif":
        raise imp.err(lif_name, "a recurrent LIF layer needs r = 1 or r = tau/dt (the recurrent current is not "
                                "scaled apart from the input) and no PLIF metadata")
    fields = {**cell[0].fields, "type": "rlif", "recurrent_bias": rec.fields["bias"]}
    fields["reset_delay"] = fields.get("reset_delay", False)   # rlif's own default is RLeaky's delayed reset
    imp.notes.append(f"nodes '{lif_name}' and '{w_name}' feed each other: recurrent LIF layer '{n}', whose input at "
                     f"step t adds '{w_name}' of its spikes at step t-1")
    return [imp.layer(n, fields, {f"recurrent.{k}": v for k, v in rec.params.items()})], tuple(shape)


KIND = register(Kind("rlif", ("rlif",), RecurrentNeuron, parse, build,
                     train_node=lambda layer, cfg_for: RecurrentNode(layer, cfg_for(layer.name)),
                     nir_export=to_nir, nir_cycle=nir_cycle, from_nir=from_nir,
                     torch_modules=("snntorch.RLeaky",), from_torch=from_torch,
                     examples=({"input_shape": [4], "layers": [{"type": "rlif"}]},)))
