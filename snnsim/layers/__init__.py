"""Layer kinds: one module a kind (or a small family), each with its spec record, YAML parser, parameter shapes,
seeded-weight values, inference op, training node and NIR node, registered in ``snnsim.layers.registry``.
Everything else looks a kind up there (``kind_of(record)``) instead of testing record classes.

    linear                 Linear, LinearOp, LinearNode     (linear.py)
    conv2d                 Conv2d, ConvOp                   (conv.py; also scaled_std_conv2d: ScaledStdConv2d)
    conv1d                 Conv1d, Conv1dOp                 (conv1d.py; runs and is traced as a conv2d over [C, 1, L])
    batchnorm1d/2d         BatchNorm, AffineOp              (batchnorm.py; folded into a linear/conv before it)
    avg/max/sumpool2d      Pool2d, PoolOp                   (pool.py)
    flatten, dropout,      Flatten, Dropout, Upsample       (reshape.py)
    upsample
    scale, layer_scale     Scale, LayerScale                (scale.py)
    residual               Residual, ResidualOp             (residual.py)
    if/lif/plif/li/        Neuron, NeuronOp                 (neuron.py; the arithmetic is snnsim.neurons; how it reads
    threshold                                               peers' neurons and NIR's: neuron_import.py)
    rlif                   RecurrentNeuron                  (recurrent.py; snnTorch RLeaky, all-to-all recurrent weight)
    reversible             Reversible, ReversibleOp         (reversible/: record, op, bounded inverse, reversible backward)
    trevsnn                TRevSNN, TRevState, TRevOp       (trevsnn/: records, parser, op and column schedule, inverse,
                                                             its two training methods)

``replay.py`` runs ops outside the engine's traced loop (the inverses' re-simulation; each op's ``replay``).
"""

from .registry import BuildContext, Kind, ParseContext, build_nodes, kind_of, known_types, parse_layers
from .linear import Linear, LinearNode, LinearOp
from .conv import Conv2d, ConvNode, ConvOp, ScaledStdConv2d, StdConvNode, standardize_weight
from .conv1d import Conv1d, Conv1dNode, Conv1dOp
from .batchnorm import AffineOp, BatchNorm, BatchNormNode
from .pool import Pool2d, PoolNode, PoolOp, sumpool2d
from .reshape import (Dropout, DropoutNode, Flatten, FlattenNode, IdentityOp, ReshapeOp, Upsample, UpsampleNode,
                      UpsampleOp)
from .scale import LayerScale, LayerScaleNode, LayerScaleOp, Scale, ScaleNode, ScaleOp
from .residual import Residual, ResidualNode, ResidualOp
from .neuron import NEURON_KINDS, Neuron, NeuronNode, NeuronOp, quant_neuron
from .recurrent import RecurrentNeuron, RecurrentNeuronOp
from .reversible import Reversible, ReversibleNode
from .trevsnn import TRevSNN, TRevState, trev_layer
from .network_file import layer_table, load_spec, parse_spec, with_timesteps
from .op import EMPTY, Op, kernel_form, walk_ops

__all__ = ["AffineOp", "BatchNorm", "BatchNormNode", "BuildContext", "Conv1d", "Conv1dNode", "Conv1dOp", "Conv2d",
           "ConvNode", "ConvOp", "Dropout", "DropoutNode", "EMPTY", "Flatten", "FlattenNode", "IdentityOp", "Kind",
           "LayerScale", "LayerScaleNode", "LayerScaleOp", "Linear", "LinearNode", "LinearOp", "NEURON_KINDS",
           "Neuron", "NeuronNode", "NeuronOp", "Op", "ParseContext", "Pool2d", "PoolNode", "PoolOp",
           "RecurrentNeuron", "RecurrentNeuronOp", "ReshapeOp", "Residual", "ResidualNode", "ResidualOp",
           "Reversible", "ReversibleNode", "Scale", "ScaleNode", "ScaleOp", "ScaledStdConv2d", "StdConvNode",
           "TRevSNN", "TRevState", "Upsample", "UpsampleNode", "UpsampleOp", "build_nodes", "kernel_form",
           "kind_of", "known_types", "layer_table", "load_spec", "parse_layers", "parse_spec", "quant_neuron",
           "standardize_weight", "sumpool2d", "trev_layer", "walk_ops", "with_timesteps"]
