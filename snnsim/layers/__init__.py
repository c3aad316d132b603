"""Layer kinds: one module a kind (or a small family), each with its spec record, YAML parser, parameter shapes,
seeded-weight values and inference op, registered in ``snnsim.layers.registry``. Everything else looks a kind up
there (``kind_of(record)``) instead of testing record classes.

    linear                 Linear, LinearOp                 (linear.py)
    conv2d                 Conv2d, ConvOp                   (conv.py; also scaled_std_conv2d: ScaledStdConv2d)
    batchnorm1d/2d         BatchNorm, AffineOp              (batchnorm.py; folded into a linear/conv before it)
    avg/max/sumpool2d      Pool2d, PoolOp                   (pool.py)
    flatten, dropout,      Flatten, Dropout, Upsample       (reshape.py)
    upsample
    scale, layer_scale     Scale, LayerScale                (scale.py)
    residual               Residual, ResidualOp             (residual.py)
    if/lif/plif/li/        Neuron, NeuronOp                 (neuron.py; the arithmetic is snnsim.neurons)
    threshold
    reversible             Reversible                       (reversible.py; its op: snnsim.reversible)
    trevsnn                TRevSNN, TRevState               (trevsnn.py; its op: snnsim.trev)
"""

from .registry import BuildContext, Kind, ParseContext, kind_of, known_types, parse_layers
from .linear import Linear, LinearOp
from .conv import Conv2d, ConvOp, ScaledStdConv2d, standardize_weight
from .batchnorm import AffineOp, BatchNorm
from .pool import Pool2d, PoolOp, sumpool2d
from .reshape import Dropout, Flatten, IdentityOp, ReshapeOp, Upsample, UpsampleOp
from .scale import LayerScale, LayerScaleOp, Scale, ScaleOp
from .residual import Residual, ResidualOp
from .neuron import NEURON_KINDS, Neuron, NeuronOp, quant_neuron
from .reversible import Reversible
from .trevsnn import TRevSNN, TRevState, trev_layer
from .network_file import layer_table, load_spec, parse_spec, with_timesteps
from .op import EMPTY, Op, kernel_form, walk_ops

__all__ = ["AffineOp", "BatchNorm", "BuildContext", "Conv2d", "ConvOp", "Dropout", "EMPTY", "Flatten", "IdentityOp",
           "Kind", "LayerScale", "LayerScaleOp", "Linear", "LinearOp", "NEURON_KINDS", "Neuron", "NeuronOp", "Op",
           "ParseContext", "Pool2d", "PoolOp", "ReshapeOp", "Residual", "ResidualOp", "Reversible", "Scale",
           "ScaleOp", "ScaledStdConv2d", "TRevSNN", "TRevState", "Upsample", "UpsampleOp", "kernel_form", "kind_of",
           "known_types", "layer_table", "load_spec", "parse_layers", "parse_spec", "quant_neuron",
           "standardize_weight", "sumpool2d", "trev_layer", "walk_ops", "with_timesteps"]
