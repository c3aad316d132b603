"""Neuron layers (YAML if, lif, plif, li, threshold): one neuron per element of the input, with the membrane state
the engine keeps across timesteps; the arithmetic is ``snnsim.neurons`` (docs/neurons.md)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import neurons
from ..nir.io import NODE_NEURON, NODE_PLIF_W, NODE_RESET, NODE_SPIKE_RULE
from ..spec import Layer, Shape, finite, show
from ..train import grads as G
from ..train.forward import Act, Node, NeuronTrainCfg
from .neuron_import import NIR_READERS, TORCH_FAMILIES, from_nir, from_torch
from .op import U, Op, finish
from .registry import Kind, register
import numpy as np


NEURON_KINDS = ("if", "lif", "plif", "li", "threshold")


@dataclass(frozen=True)
class Neuron(Layer):
    """A spiking (or leaky-integrating) neuron layer, one neuron per element of its input.

    Equations (SpikingJelly 2.0, docs/neurons.md), with v_r = v_reset or 0 for subtract reset:
      lif:  H = v + (x - (v - v_r)) / tau            (decay_input)
            H = v - (v - v_r) / tau + x              (not decay_input)
      plif: as lif with 1/tau replaced by k = sigmoid(w), w learnable (weight key ``<name>.w``)
      if:   H = v + x
      li:   H as lif, no spike: the output is H (non-spiking readout)
      threshold: H = x, stateless by definition (T-RevSNN's turned-off neuron), optional clip first
      spike S = H >= v_threshold ('ge') or H > v_threshold ('gt')
      hard reset: v = S * v_reset + (1 - S) * H;  subtract reset (v_reset null): v = H - S * v_threshold
      ``reset_delay`` (subtract reset only; snnTorch's default ``Leaky``): v = H and the threshold comes off
            one step later, undecayed: H[t] = charge(H[t-1], x[t]) - v_threshold * S[t-1]
    ``stateless`` clears v to its initial value before every timestep.
    """

    neuron: str = "lif"
    tau: float = 2.0
    decay_input: bool = True
    v_threshold: float = 1.0
    v_reset: float | None = 0.0
    spike_rule: str = "ge"
    stateless: bool = False
    clip: tuple[float, float] | None = None
    reset_delay: bool = False
    kind = "neuron"
    has_membrane = True

    def param_shapes(self):
        return {"w": ()} if self.neuron == "plif" else {}

    @property
    def type_name(self) -> str:
        return self.neuron

    @property
    def stateful(self) -> bool:
        return not self.stateless and self.neuron != "threshold"

    @property
    def spiking(self) -> bool:
        return self.neuron != "li"


def parse(f, kind, name, shape, ctx):
    d = dict(ctx.defaults.get(kind, {}))
    d.update(f.raw)
    f.raw = d
    thr_default = 0.5 if kind == "threshold" else 1.0
    # v_reset: null means subtract reset; absent means hard reset to 0 (SpikingJelly's default)
    v_reset = None if f.get("v_reset", 0.0) is None else f.float("v_reset", 0.0)
    clip = f.get("clip")
    if clip is not None:
        if not (isinstance(clip, list) and len(clip) == 2
                and all(isinstance(c, (int, float)) and not isinstance(c, bool) and finite(c) for c in clip)
                and clip[0] < clip[1]):
            raise f.err("clip", f"expected [low, high] with low < high, got {show(clip)}")
        clip = (float(clip[0]), float(clip[1]))
    tau = f.float("tau", 2.0, positive=True)
    if kind in ("lif", "plif", "li") and tau <= 1.0:
        raise f.err("tau", f"must be > 1 (the membrane decays by 1/tau per step), got {tau}")
    stateless = f.bool("stateless", kind == "threshold")
    reset_delay = f.bool("reset_delay", False)
    if reset_delay and (kind not in ("lif", "plif", "if") or v_reset is not None or stateless):
        raise f.err("reset_delay", "delays a subtract reset only: it needs a stateful lif, plif or if neuron with "
                                   "v_reset: null (a hard reset gives the same spikes either way); remove it")
    return Neuron(
        name, shape, shape, neuron=kind, tau=tau,
        decay_input=f.bool("decay_input", True),
        v_threshold=f.float("v_threshold", thr_default),
        v_reset=v_reset,
        spike_rule=f.str("spike_rule", "ge", choices=("ge", "gt")),
        stateless=stateless,
        clip=clip,
        reset_delay=reset_delay,
    )


@dataclass
class NeuronOp(Op):
    params: neurons.NeuronParams = None
    holds_state = True

    def trace_fields(self) -> dict:
        return dict(super().trace_fields(), neuron_model=self.layer.neuron)

    def initial_state(self, batch: int) -> np.ndarray:
        return np.full((batch,) + tuple(self.layer.out_shape), self.params.v_init, np.float32)

    def step_span(self, br, rec, x: np.ndarray, t0: int) -> np.ndarray:
        """Timesteps t0.. t0 + len(x) - 1 of x [steps, B, ...] in the engine's batch run ``br``: the update in place
        on the state it keeps, counted in the trace record ``rec`` (input events, spikes, neuron updates) by the
        same pass over memory."""
        t1 = t0 + len(x)
        out = np.empty_like(x)
        probed = self.name in br.probes
        v = br.state[self.name]
        spiking = self.layer.spiking
        per_sample = rec.sample_counts(slice(t0, t1), br.B, "sample_events_out")[0] if spiking else None
        v_all, h_all = (np.empty_like(x), np.empty_like(x)) if probed else (None, None)
        # always step ('li' layers have state too)
        counts = neurons.steps(self.params, x, v, out, per_sample, v_all, h_all)
        rec.events_in[t0:t1] += counts[1]
        rec.binary_in[t0:t1] &= counts[2] == 0
        if spiking:
            rec.events_out[t0:t1] += counts[0]
        rec.neuron_updates[t0:t1] += x[0].size
        if probed:
            br.probe_span(self.name, t0, spikes=out, membrane=v_all, charge=h_all)
        return out

    def replay(self, ex, x, e, t: int):
        """One timestep outside the engine (the engine's untraced ``Replay``) from a fresh state, carrying the bound ``e``
        on the input's error into a bound on the charge H: the update's Lipschitz constants plus the rounding of
        both evaluations, exact zero after a hard reset. A neuron with |H - threshold| <= bound(H) may spike
        differently from the forward: it is counted as a risk, and its spikes are otherwise exact."""
        p = self.params
        st = ex.state.get(self.name)
        if st is None:
            st = ex.state[self.name] = [np.full(x.shape, p.v_init, np.float32), None]
        v, ev = st
        if p.stateless:
            ev = None
        v_before = v.copy() if (e is not None or ev is not None) else None
        out = np.empty_like(x)
        h = np.empty_like(x)
        neurons.step(p, x, v, out, h)
        if e is None and ev is None:
            st[1] = None
            return out, None
        k = float(p.factor) if p.mode == 2 else 1.0 / float(p.factor)
        if p.mode == 0:
            a_v, a_x = 1.0, 1.0
        elif p.mode == 4:
            a_v, a_x = 0.0, 1.0
        elif p.decay_input:
            a_v, a_x = abs(1.0 - k), k
        else:
            a_v, a_x = abs(1.0 - k), 1.0
        ex_ = 0.0 if e is None else e
        evv = 0.0 if ev is None else ev
        eh = a_v * evv + a_x * ex_ + 8 * U * (np.abs(v_before) + np.abs(x) + np.abs(h) + abs(float(p.v_r)) + evv + ex_)
        eh = finish(np.broadcast_to(eh, x.shape).astype(np.float32))
        if p.mode == 3:                       # li: the output is H itself
            st[1] = None if p.stateless else eh
            return out, eh
        ex.note_risk(self.name, t, int((np.abs(h - p.threshold) <= eh).sum()))
        if not p.stateless:
            new_ev = eh.copy() if not p.hard else np.where(out > 0, np.float32(0), eh)
            if not p.hard:
                new_ev = finish(new_ev + U * np.abs(v))
            st[1] = new_ev
        return out, None                      # spikes: exact wherever no risk was counted


    def pools_with(self, nxt) -> int | None:
        """The pooling kind (``PoolOp.kind_2x2``) when this spiking layer of [C, H, W] can run fused with the op
        ``nxt`` after it, else None."""
        if not self.layer.spiking or len(self.layer.out_shape) != 3:
            return None
        return getattr(nxt, "kind_2x2", None)

    def step_pool_span(self, br, rec, pool, pool_rec, x: np.ndarray, t0: int, kind: int) -> np.ndarray:
        """``step_span`` fused with the 2x2 pooling op ``pool`` after it (record ``pool_rec``): returns the pooled
        output; the spikes, which nothing else reads (neither layer is probed), are never stored."""
        t1 = t0 + len(x)
        n, B = x.shape[0], x.shape[1]
        out = np.empty((n, B) + tuple(pool.layer.out_shape), np.float32)
        per_sample = rec.sample_counts(slice(t0, t1), B, "sample_events_out")[0]
        counts = neurons.steps_pool(self.params, x, br.state[self.name], kind, out, per_sample)
        rec.events_in[t0:t1] += counts[1]
        rec.binary_in[t0:t1] &= counts[2] == 0
        rec.events_out[t0:t1] += counts[0]
        rec.neuron_updates[t0:t1] += x[0].size
        # the pool's input is these spikes: binary, counted per sample above (fresh rows of this batch)
        pool_rec.computed[t0:t1] = True
        pool_rec.events_in[t0:t1] += counts[0]
        pool_in, = pool_rec.sample_counts(slice(t0, t1), B, "sample_events_in")
        pool_in += per_sample
        pool_rec.events_out[t0:t1] += counts[3]
        return out


def build(layer: Neuron, w, ctx):
    return NeuronOp(layer, (), neurons.neuron_params(layer, w.get(f"{layer.name}.w")))


def quant_neuron(name: str, shape: Shape) -> Neuron:
    """T-RevSNN's turned-off spike (``Quant`` at eval): round(clip(x, 0, 1)), i.e. spike where x > 0.5
    (round half to even sends 0.5 to 0); no state."""
    return Neuron(name, shape, shape, neuron="threshold", v_threshold=0.5, v_reset=0.0, spike_rule="gt",
                  stateless=True, clip=(0.0, 1.0))


# ----------------------------------------------------------------------------- training
class NeuronNode(Node):
    online_form = "spiking"

    def __init__(self, layer: Neuron, cfg: NeuronTrainCfg):
        super().__init__(layer)
        self.cfg = cfg
        self.trainable = ("w",) if layer.neuron == "plif" else ()

    def online_refusal(self):
        if self.layer.neuron == "plif":
            return (f"layer '{self.name}' is plif; online training supports if, lif, li and threshold neurons "
                    "(use --method bptt for plif)")
        return None

    def saf_refusal(self):
        L = self.layer
        if L.neuron == "threshold" or not L.stateful:
            return f"layer '{self.name}' is stateless; SAF needs stateful if/lif"
        if L.v_reset is not None and L.neuron != "li":
            return (f"layer '{self.name}' has a hard reset; SAF's accumulated form is exact for subtract reset "
                    "only (v_reset: null)")
        if L.reset_delay:
            return (f"layer '{self.name}' has a delayed reset, which SAF's accumulated form does not model; use "
                    "ottt or bptt")
        return None

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


# ----------------------------------------------------------------------------- NIR (snnsim.nir.exporter)
def nir_node(op, ex, label: str | None = None):
    """The NIR neuron node of a neuron op (also a recurrent layer's neuron; ``label``: the kind its messages
    name, else the neuron model)."""
    import nir

    layer, p = op.layer, op.params
    kind = layer.neuron
    label = label or kind
    if ex.reader == "snntorch" and not (kind == "lif" and not layer.decay_input and layer.spike_rule == "gt"
                                        and layer.v_reset == 0.0):
        raise ex.refuse(op.name, label, "snnTorch's import builds Leaky(beta = 1 - dt/tau, zero reset), which "
                        "computes beta*v + x and spikes at v > threshold: --for snntorch needs "
                        "lif with decay_input: false, spike_rule: gt, v_reset: 0")
    shape = tuple(layer.out_shape)
    full = lambda v: np.full(shape, v, dtype=np.float64)  # noqa: E731
    meta = {NODE_SPIKE_RULE: layer.spike_rule}
    if layer.stateless and kind != "threshold":
        raise ex.refuse(op.name, label, "a stateless neuron (membrane cleared every step) has no NIR equivalent")
    if kind == "threshold":
        thr = float(layer.v_threshold)
        if layer.clip is not None and not (layer.clip[0] < thr <= layer.clip[1]):
            raise ex.refuse(op.name, label, f"clip {list(layer.clip)} with threshold {thr} changes the spikes; "
                            "NIR's Threshold has no clip")
        ex.rules[layer.spike_rule] += 1
        return nir.Threshold(threshold=full(thr), metadata=meta)
    v_reset = layer.v_reset
    if kind in ("lif", "plif", "if") and v_reset is None:
        what = "delayed subtract reset (reset_delay)" if layer.reset_delay else "subtract reset (v_reset: null)"
        ex.lossy(op.name, label, f"{what} cannot be expressed in NIR, whose neurons "
                 "reset to v_reset; it is exported as a reset to 0",
                 "set v_reset to export a hard reset")
        meta[NODE_RESET] = "subtract_delayed" if layer.reset_delay else "subtract"
        v_reset = 0.0
    if kind in ("lif", "plif", "if"):
        ex.rules[layer.spike_rule] += 1
    if kind == "if":
        return nir.IF(r=full(1.0 / ex.dt), v_threshold=full(layer.v_threshold), v_reset=full(v_reset),
                      metadata=meta)
    if kind == "plif":
        q = float(np.asarray(p.factor).reshape(-1)[0])    # sigmoid(w) in float32, what snnsim multiplies by
        tau_s = 1.0 / q
        w = float(np.asarray(ex.net.weights[f"{op.name}.w"]).reshape(()))
        meta.update({NODE_NEURON: "plif", NODE_PLIF_W: w})
        ex.notes.append(f"layer '{op.name}': PLIF exported as LIF with tau = dt/sigmoid(w) (other NIR readers "
                        "divide by tau instead of multiplying by sigmoid(w): equal up to float32 rounding)")
    else:
        tau_s = float(layer.tau)
    tau = full(tau_s * ex.dt)
    r = full(1.0 if layer.decay_input else tau_s)
    v_leak = full(0.0 if layer.v_reset is None else layer.v_reset)
    if kind == "li":
        meta.pop(NODE_SPIKE_RULE)
        return nir.LI(tau=tau, r=r, v_leak=v_leak, metadata=meta)
    return nir.LIF(tau=tau, r=r, v_leak=v_leak, v_threshold=full(layer.v_threshold), v_reset=full(v_reset),
                   metadata=meta)


def to_nir(op, ex, srcs: list[str]) -> list[str]:
    return ex.add(op.name, nir_node(op, ex), srcs)


# every neuron model; a spiking layer run fused with the 2x2 pooling after it (step_pool_span)
EXAMPLES = ({"input_shape": [2, 4, 4], "layers": [{"type": t} for t in NEURON_KINDS]},
            {"input_shape": [2, 4, 4], "layers": [{"type": "lif"}, {"type": "maxpool2d", "kernel_size": 2}]})
KIND = register(Kind("neuron", NEURON_KINDS, Neuron, parse, build,
                     train_node=lambda layer, cfg_for: NeuronNode(layer, cfg_for(layer.name)),
                     nir_export=to_nir, nir_nodes=tuple(NIR_READERS), from_nir=from_nir,
                     torch_modules=tuple(TORCH_FAMILIES), from_torch=from_torch, uses_defaults=True,
                     examples=EXAMPLES))
