"""Neuron layers (YAML if, lif, plif, li, threshold): one neuron per element of the input, with the membrane state
the engine keeps across timesteps; the arithmetic is ``snnsim.neurons`` (docs/neurons.md)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import neurons
from ..spec import Layer, Shape, finite, show
from .op import Op
from .registry import Kind, register

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


def build(layer: Neuron, w, ctx):
    return NeuronOp(layer, (), neurons.neuron_params(layer, w.get(f"{layer.name}.w")))


def quant_neuron(name: str, shape: Shape) -> Neuron:
    """T-RevSNN's turned-off spike (``Quant`` at eval): round(clip(x, 0, 1)), i.e. spike where x > 0.5
    (round half to even sends 0.5 to 0); no state."""
    return Neuron(name, shape, shape, neuron="threshold", v_threshold=0.5, v_reset=0.0, spike_rule="gt",
                  stateless=True, clip=(0.0, 1.0))


KIND = register(Kind("neuron", NEURON_KINDS, Neuron, parse, build))
