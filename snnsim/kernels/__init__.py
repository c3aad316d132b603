"""Pure Numba kernels for layer maths (dense and event-driven forms).

Conventions: float32, C-contiguous, batch-first; PyTorch weight layouts;
a missing bias is np.zeros(0, np.float32). Inputs are assumed validated.
"""
from .conv import conv2d_dense, conv_out_size  # noqa: E402
from .conv_event import conv2d_event, prepare_conv_event  # noqa: E402
from .events import count_nonzero, density, event_map, is_binary  # noqa: E402
from .linear import linear_dense, linear_event, prepare_linear_event  # noqa: E402
from .pool import avgpool2d, maxpool2d, upsample_nearest2d  # noqa: E402

# A single density threshold for every layer, used when a run is given event_threshold=DEFAULT_EVENT_THRESHOLD
# (and by layers that the cost model does not price). By default each layer picks its form from its own
# shape (cost.py): one threshold is wrong for many layers (a 3136->10 output layer is cheaper dense at
# every density, a depthwise conv crosses at ~0.02, a 64-channel 3x3 conv at ~0.12 on the register tiles and
# ~0.2 on the sgemm path).
DEFAULT_EVENT_THRESHOLD = 0.15

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
