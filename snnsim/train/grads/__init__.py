"""Numba kernels for training: the multi-step neuron forward (the engine's ``neuron_step``), and the backward pass
of every layer kind the engine runs, one module a family (neurons, conv, batchnorm, pool, misc; parallel: the
thread rules they share, which starts Numba's pool on import).

Conventions: float32, C-contiguous, batch-first, PyTorch layouts (as ``snnsim.kernels``). Activations stored
for the backward pass may be ``uint8`` when they are spikes or small spike counts (4x less memory); the kernels
read either, by value.
Every reduction has a fixed order that does not depend on the thread count, so a training run is reproducible
bit for bit (the resume test relies on it).
"""

from .batchnorm import batchnorm_backward_train, batchnorm_forward_train, channel_sum
from .conv import conv2d_backward, conv2d_train_forward, events_cheaper
from .misc import add, counts_u8
from .neurons import neuron_backward_seq, neuron_forward_seq
from .pool import maxpool_2x2_with_argmax, maxpool_argmax, maxpool_backward, windowsum_backward

__all__ = ["add", "batchnorm_backward_train", "batchnorm_forward_train", "channel_sum", "conv2d_backward",
           "conv2d_train_forward", "events_cheaper", "counts_u8", "maxpool_2x2_with_argmax", "maxpool_argmax",
           "maxpool_backward", "neuron_backward_seq", "neuron_forward_seq", "windowsum_backward"]
