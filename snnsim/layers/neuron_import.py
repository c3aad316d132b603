"""How the neuron kind (``snnsim.layers.neuron``) reads other tools' neurons: the neuron modules of SpikingJelly,
snnTorch and Norse (``from_torch``) and NIR's neuron nodes (``from_nir``).

PyTorch neurons (docs/torch_import.md has the derivations):

- SpikingJelly ``LIFNode`` / ``IFNode`` / ``ParametricLIFNode``: snnsim's ``lif`` / ``if`` / ``plif`` are
  SpikingJelly's own expressions (spike at ``H >= v_threshold``); soft reset (``v_reset=None``) is snnsim's
  subtract reset.
- snnTorch ``Leaky``: ``mem = beta*mem + x``, spike at ``mem > threshold`` -> ``lif`` with ``decay_input:
  false``, ``tau = 1/(1-beta)``, ``spike_rule: gt``. Zero reset maps for either ``reset_delay``. Subtract
  reset with ``reset_delay=True`` (snnTorch's default: the threshold comes off one step late, undecayed) is
  snnsim's ``reset_delay: true``, exactly; with ``reset_delay=False`` it is the same while no membrane
  exceeds twice the threshold: snnTorch skips a spike test after a reset that leaves the membrane above
  threshold, snnsim does not.
- Norse ``LIFBoxCell``: ``v += dt*tau_mem_inv*(x + v_leak - v)``, spike at ``v - v_th > 0`` -> ``lif`` with
  ``tau = 1/(dt*tau_mem_inv)``, ``spike_rule: gt``. ``LIFCell`` (current-based) -> ``li`` (the synaptic
  current, ``tau = 1/(dt*tau_syn_inv)``) then ``lif``.

Spikes match the module bit for bit when the decay factors are powers of two (beta = 1 - 2^-k,
dt*tau_inv = 2^-k): then ``v/tau`` and ``v*(1-beta)`` round identically. Otherwise the membranes agree to
float32 round-off.

NIR neurons are ODEs, discretised with forward Euler at the step ``dt`` (docs/nir.md; the equations are also
written into the header of every imported YAML file by ``snnsim.nir.importer``).
"""

from __future__ import annotations

import numpy as np

from ..nir.io import NODE_NEURON, NODE_PLIF_W, NODE_RESET, clean_meta, close, float32_decimal
from .registry import torch_class

# ----------------------------------------------------------------------------- PyTorch (snnsim.from_torch)
SJ = "spikingjelly.activation_based.neuron."


def _sj_neuron(m, imp):
    if not isinstance(m.v_threshold, (int, float)) or not (m.v_reset is None or isinstance(m.v_reset, (int, float))):
        raise imp.refuse("v_threshold and v_reset must be numbers")
    common = dict(v_threshold=float(m.v_threshold), v_reset=None if m.v_reset is None else float(m.v_reset),
                  spike_rule="ge")
    if type(m) is torch_class(SJ + "IFNode"):
        return [imp.layer("if", **common)]
    if type(m) is torch_class(SJ + "ParametricLIFNode"):
        return [imp.layer("plif", {"w": imp.params("w")["w"].reshape(())}, decay_input=bool(m.decay_input),
                          **common)]
    return [imp.layer("lif", tau=float(m.tau), decay_input=bool(m.decay_input), **common)]


def _tau_from_decay(decay: float, imp, what) -> float:
    """tau such that snnsim's v - v/tau equals the module's decay*v (exact when 1-decay is 2^-k)."""
    keep = 1.0 - decay
    if not 0 < keep < 1:
        raise imp.refuse(f"{what} = {decay} gives no leak snnsim can compute (needs 0 < {what} < 1)")
    return 1.0 / keep


def snntorch_fields(m, imp) -> dict:
    """The lif fields of an snnTorch Leaky or RLeaky neuron (shared by the rlif kind)."""
    mech = m.reset_mechanism
    if m.state_quant or m.inhibition or imp.scalar(m.graded_spikes_factor) != 1.0:
        raise imp.refuse("state_quant, inhibition and graded spikes have no snnsim equivalent")
    if mech == "none":
        raise imp.refuse("reset_mechanism='none' (a spiking neuron that never resets) has no snnsim equivalent")
    beta = min(max(imp.scalar(m.beta), 0.0), 1.0)       # snnTorch clamps beta to [0, 1]
    fields = dict(tau=_tau_from_decay(beta, imp, "beta"), decay_input=False, v_threshold=imp.scalar(m.threshold),
                  v_reset=0.0 if mech == "zero" else None, spike_rule="gt")
    if mech == "subtract" and m.reset_delay:
        fields["reset_delay"] = True
    return fields


def _snntorch_leaky(m, imp):
    return [imp.layer("lif", **snntorch_fields(m, imp))]


def _norse_common(m, imp):
    p = m.p
    v_leak, v_reset = imp.scalar(p.v_leak), imp.scalar(p.v_reset)
    reset = getattr(p, "reset_method", None)
    if reset is not None and getattr(reset, "__name__", "") != "reset_value":
        raise imp.refuse("only Norse's reset_value (hard reset) is supported")
    if v_leak != v_reset:
        raise imp.refuse(f"v_leak ({v_leak}) differs from v_reset ({v_reset}); snnsim leaks toward the reset "
                         "potential")
    return dict(v_threshold=imp.scalar(p.v_th), v_reset=v_reset, spike_rule="gt")


def _norse_tau(m, imp, inv, what) -> float:
    # dt * tau_inv as Norse computes it (a Python float times a float32 tensor, in float32)
    return _tau_from_decay(1.0 - imp.scalar(m.dt * inv), imp, what)


def _norse_box(m, imp):
    return [imp.layer("lif", tau=_norse_tau(m, imp, m.p.tau_mem_inv, "1 - dt*tau_mem_inv"), decay_input=True,
                      **_norse_common(m, imp))]


def _norse_lif(m, imp):
    common = _norse_common(m, imp)
    # Norse adds the input to the current first, drives v with that current, then decays the current:
    # the current is snnsim 'li' (c - c/tau + x, output c) and v is 'lif' driven by it.
    return [imp.layer("li", q=f"{imp.qual}_syn", tau=_norse_tau(m, imp, m.p.tau_syn_inv, "1 - dt*tau_syn_inv"),
                      decay_input=False, v_reset=0.0),
            imp.layer("lif", tau=_norse_tau(m, imp, m.p.tau_mem_inv, "1 - dt*tau_mem_inv"), decay_input=True,
                      **common)]


_NORSE = ("snnsim has Norse's LIFBoxCell and LIFCell only (run them one step at a time, e.g. in a SequentialState)",
          (("norse.torch.LIFBoxCell", _norse_box), ("norse.torch.LIFCell", _norse_lif)))
# A library's neuron base class -> (the refusal for its neurons snnsim does not map, (exact class, reader)...).
# Exact classes only: a subclass may change the equations.
TORCH_FAMILIES = {
    SJ + "BaseNode": ("snnsim has LIFNode, IFNode and ParametricLIFNode of SpikingJelly only",
                      tuple((SJ + c, _sj_neuron) for c in ("LIFNode", "IFNode", "ParametricLIFNode"))),
    "snntorch.SpikingNeuron": ("snnsim has snnTorch's Leaky and RLeaky (rlif) only (no synaptic or alpha neurons)",
                               (("snntorch.Leaky", _snntorch_leaky),)),
    # Norse's cells: all derive from these two but the conductance-based and the linear leaky-integrator cell
    "norse.torch.module.snn.SNNCell": _NORSE, "norse.torch.module.snn.SNNRecurrentCell": _NORSE,
    "norse.torch.CobaLIFCell": _NORSE, "norse.torch.LILinearCell": _NORSE,
}


def from_torch(m, imp):
    """A peer library's neuron module (``imp.cls``: the family's base class it matched) -> neuron layer dicts."""
    refusal, readers = TORCH_FAMILIES[imp.cls]
    read = next((r for path, r in readers if type(m) is torch_class(path)), None)
    if read is None:
        raise imp.refuse(refusal)
    return read(m, imp)


# ----------------------------------------------------------------------------- NIR (snnsim.nir.importer)
INTEGRATOR_TAU = 1e30   # li with this tau and decay_input false is the exact integrator v + I (see _integrator)


def _input_gain(n, node, shape, imp) -> list:
    """The input gain dt * R of an integrator (I, IF) as a Scale layer before it; none when it is 1."""
    r = imp.arr(n, "r", node.r)
    imp.check_param_shape(n, "r", r, shape)
    k = r * imp.dt
    if k.min() == k.max() and close(float(k.flat[0]), 1.0):
        return []
    return imp.scale_layer(f"{n}.r", k.astype(np.float32), shape)


def _integrator(n, node, shape, imp):
    """The integrator dv/dt = R I: v[t] = v + dt*R*I[t], output v. snnsim's li with tau = 1e30 and
    decay_input false computes H = v - v/1e30 + I, which is exactly v + I in float32 (v/1e30 is far below
    half an ulp of v), so this is exact."""
    layers = _input_gain(n, node, shape, imp)
    layers.append(imp.layer(n, {"type": "li", "tau": INTEGRATOR_TAU, "decay_input": False, "v_reset": 0.0}))
    return layers


def _threshold(n, node, shape, imp):
    thr = imp.uniform(n, "threshold", node.threshold, shape)
    return [imp.layer(n, {"type": "threshold", "v_threshold": float32_decimal(thr),
                          "spike_rule": imp.spike_rule(n, node)})]


def _gain(n, fld, r, shape, tau_s, imp):
    """How the input current reaches the membrane: (decay_input, scale layer array or None)."""
    a = imp.arr(n, fld, r)
    imp.check_param_shape(n, fld, a, shape)
    if a.min() == a.max():
        r0 = float(a.flat[0])
        if close(r0, 1.0):
            return True, None
        if tau_s is not None and close(r0, tau_s):
            return False, None
    return True, a.astype(np.float32)


def _leaky(n, node, shape, imp, kind, tau_fld, v_leak, thr=None, v_reset=None):
    """One leaky layer (li or lif) with an optional scale layer for R; returns the layers."""
    tau_s = imp.tau_steps(n, tau_fld, getattr(node, tau_fld), shape)
    decay_input, scale = _gain(n, "r", node.r, shape, tau_s, imp)
    layers = imp.scale_layer(f"{n}.r", scale, shape) if scale is not None else []
    f = {"type": kind, "tau": tau_s, "decay_input": decay_input}
    if kind == "li":
        f["v_reset"] = float32_decimal(v_leak)
    else:
        f.update(_reset_fields(n, node, v_leak, v_reset, imp))
        f["v_threshold"] = float32_decimal(thr)
        f["spike_rule"] = imp.spike_rule(n, node)
    layers.append(imp.layer(n, f))
    return layers


def _reset_fields(n, node, v_leak, v_reset, imp):
    reset = clean_meta(node.metadata).get(NODE_RESET)
    if reset in ("subtract", "subtract_delayed"):
        imp.notes.append(f"node '{n}': {reset.replace('_', ' ')} reset restored from snnsim metadata (other "
                         "NIR readers see a reset to 0)")
        return {"v_reset": None, "reset_delay": True} if reset == "subtract_delayed" else {"v_reset": None}
    if reset is not None:
        raise imp.err(n, f"metadata {NODE_RESET}: expected 'subtract' or 'subtract_delayed', got {reset!r}")
    if v_leak is not None and not close(v_leak, v_reset):
        raise imp.err(n, f"v_leak ({v_leak:g}) differs from v_reset ({v_reset:g}); snnsim (like SpikingJelly) "
                         "leaks toward the reset potential")
    return {"v_reset": float32_decimal(v_reset)}


def _li(n, node, shape, imp):
    return _leaky(n, node, shape, imp, "li", "tau", imp.uniform(n, "v_leak", node.v_leak, shape))


def _lif(n, node, shape, imp):
    v_leak = imp.uniform(n, "v_leak", node.v_leak, shape)
    v_reset = imp.uniform(n, "v_reset", node.v_reset, shape)
    thr = imp.uniform(n, "v_threshold", node.v_threshold, shape)
    meta = clean_meta(node.metadata)
    if meta.get(NODE_NEURON) == "plif" and isinstance(meta.get(NODE_PLIF_W), (int, float)):
        f = {"type": "plif", "decay_input": close(float(np.asarray(node.r).flat[0]), 1.0),
             **_reset_fields(n, node, v_leak, v_reset, imp), "v_threshold": float32_decimal(thr),
             "spike_rule": imp.spike_rule(n, node)}
        imp.notes.append(f"node '{n}': PLIF restored from snnsim metadata")
        return [imp.layer(n, f, {"w": np.asarray(meta[NODE_PLIF_W], np.float32)})]
    return _leaky(n, node, shape, imp, "lif", "tau", v_leak, thr, v_reset)


def _if(n, node, shape, imp):
    thr = imp.uniform(n, "v_threshold", node.v_threshold, shape)
    v_reset = imp.uniform(n, "v_reset", node.v_reset, shape)
    layers = _input_gain(n, node, shape, imp)
    layers.append(imp.layer(n, {"type": "if", **_reset_fields(n, node, None, v_reset, imp),
                                "v_threshold": float32_decimal(thr), "spike_rule": imp.spike_rule(n, node)}))
    return layers


def _cuba(n, node, shape, imp):
    """CubaLI(F) as two layers: the synaptic current (li, named '<n>.syn') feeding the membrane."""
    tau_syn = imp.tau_steps(n, "tau_syn", node.tau_syn, shape)
    decay_input, scale = _gain(n, "w_in", node.w_in, shape, tau_syn, imp)
    layers = imp.scale_layer(f"{n}.w_in", scale, shape) if scale is not None else []
    layers.append(imp.layer(f"{n}.syn", {"type": "li", "tau": tau_syn, "decay_input": decay_input, "v_reset": 0.0}))
    v_leak = imp.uniform(n, "v_leak", node.v_leak, shape)
    if type(node).__name__ == "CubaLIF":
        v_reset = imp.uniform(n, "v_reset", node.v_reset, shape)
        thr = imp.uniform(n, "v_threshold", node.v_threshold, shape)
        return layers + _leaky(n, node, shape, imp, "lif", "tau_mem", v_leak, thr, v_reset)
    return layers + _leaky(n, node, shape, imp, "li", "tau_mem", v_leak)


NIR_READERS = {"LIF": _lif, "LI": _li, "IF": _if, "CubaLIF": _cuba, "CubaLI": _cuba, "I": _integrator,
               "Threshold": _threshold}


def from_nir(n, node, shape, imp):
    """A NIR neuron node -> its layers (a neuron keeps its input's shape)."""
    return NIR_READERS[type(node).__name__](n, node, shape, imp), shape
