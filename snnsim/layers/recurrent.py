"""Recurrent LIF layer (YAML rlif): snnTorch's ``RLeaky`` with ``all_to_all=True`` and ``linear_features=N`` on a
1-D input of N features. Each neuron's input adds the layer's own spikes of the previous step through a dense
recurrent weight:

    I[t] = x[t] + W s[t-1] + b          (s[-1] = 0; weight keys ``<name>.recurrent.weight`` [N, N], ``.bias`` [N])

and the neuron is snnsim's ``lif`` on I (docs/neurons.md). The defaults are RLeaky's: ``decay_input: false``,
``spike_rule: gt``, subtract reset delayed one step (``v_reset: null``, ``reset_delay: true``), so
mem[t] = beta mem[t-1] + I[t] - v_threshold s[t-1] with beta = 1 - 1/tau.

It runs as three engine ops: the recurrent product (a linear op on last step's spikes), the sum with the input,
and the neuron; the trace records them as such ('<name>.recurrent', '<name>.add', '<name>'), so hwmodel prices
the recurrent synapses like any linear layer. Training and NIR export do not support it yet.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .. import neurons
from . import linear, neuron
from .linear import Linear
from .neuron import Neuron, NeuronOp
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


KIND = register(Kind("rlif", ("rlif",), RecurrentNeuron, parse, build))
