"""Pure Numba kernels for layer maths (dense and event-driven forms).

Conventions: float32, C-contiguous, batch-first; PyTorch weight layouts;
a missing bias is np.zeros(0, np.float32). Inputs are assumed validated.
"""
from .conv import conv2d_dense, conv2d_event, conv_out_size, prepare_conv_event
from .events import count_nonzero, density, event_map, is_binary
from .linear import linear_dense, linear_event, prepare_linear_event
from .pool import avgpool2d, maxpool2d, upsample_nearest2d

# Fraction of nonzero inputs below which the event-driven kernels are used.
# Measured by benchmarks/kernels_dense_vs_event.py (see the CSV it writes).
DEFAULT_EVENT_THRESHOLD = 0.1

__all__ = [
    "DEFAULT_EVENT_THRESHOLD",
    "avgpool2d",
    "conv2d_dense",
    "conv2d_event",
    "conv_out_size",
    "count_nonzero",
    "density",
    "event_map",
    "is_binary",
    "linear_dense",
    "linear_event",
    "maxpool2d",
    "prepare_conv_event",
    "prepare_linear_event",
    "upsample_nearest2d",
]
