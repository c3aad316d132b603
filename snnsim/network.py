"""A runnable network: the spec's layers bound to their checked float32 parameters.

Each layer becomes an op built by its kind (``snnsim.layers``): the op owns its maths (calling the Numba
kernels) but no state; the engine owns the time loop and the membrane arrays. Batch norm that directly follows
a linear or conv layer is folded into it at build time (w' = w * g / sqrt(var + eps),
b' = (b - mean) * g / sqrt(var + eps) + beta, computed in float64 and rounded once to float32), unless the spec
says ``fold_batchnorm: false``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layers import walk_ops
from .layers.registry import BuildContext, kind_of
from .spec import NetworkSpec


@dataclass
class Network:
    spec: NetworkSpec
    ops: list
    weights: dict

    @property
    def name(self) -> str:
        return self.spec.name


def _build(layers, w: dict, fold: bool) -> list:
    ops = []
    i = 0
    while i < len(layers):
        layer = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        folds = fold and layer.absorbs_batchnorm and nxt is not None and nxt.folds_into_synapse
        ops.append(kind_of(layer).build(layer, w, BuildContext(fold, _build, nxt if folds else None)))
        i += 2 if folds else 1
    return ops


def build_network(spec: NetworkSpec, weights: dict) -> Network:
    """Bind checked weights (see ``snnsim.weights.check_weights``) to the spec's layers."""
    return Network(spec, _build(spec.layers, weights, spec.fold_batchnorm), weights)


def spiking_layers(net) -> list[str]:
    """Names of the spiking neuron layers of a built network (the probes NeuroBench's convention needs)."""
    # an op that emits spikes itself (a composite such as rlif lists its neuron among its children)
    return [op.name for op in walk_ops(net.ops) if not op.composite and getattr(op.layer, "spiking", False)]


def check_nonzero_weights(net) -> list[str]:
    """Layers with weights exactly 0 (NeuroBench skips them, hwmodel's counts do not)."""
    return [op.name for op in walk_ops(net.ops) if getattr(op, "weight", None) is not None
            and not np.all(op.weight != 0)]
