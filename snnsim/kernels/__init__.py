"""Pure Numba kernels for layer maths (dense and event-driven forms).

Conventions: float32, C-contiguous, batch-first; PyTorch weight layouts;
a missing bias is np.zeros(0, np.float32). Inputs are assumed validated.
"""
import numba

# Start Numba's thread pool now. The public kernels are plain (non-parallel)
# dispatchers that call parallel=True helpers; when they are loaded from the
# on-disk cache in a fresh process, nothing else starts the pool and the first
# call segfaults (numba 0.68; reproduced with conv2d_dense). get_num_threads()
# launches the pool as a side effect and is public API.
numba.get_num_threads()

from .conv import conv2d_dense, conv2d_event, conv_out_size, prepare_conv_event  # noqa: E402
from .events import count_nonzero, density, event_map, is_binary  # noqa: E402
from .linear import linear_dense, linear_event, prepare_linear_event  # noqa: E402
from .pool import avgpool2d, maxpool2d, upsample_nearest2d  # noqa: E402

# Fraction of nonzero inputs below which the event-driven kernels are used.
# Chosen from benchmarks/kernels_dense_vs_event.py (benchmarks/results/
# kernels_dense_vs_event*.csv): event beats dense below these input densities:
# conv 3x3 (MNIST 16->32 @14, CIFAR 64->64 @32) 0.18-0.28, linear 1568->128
# 0.16 (B=64) and > 0.5 (B=1). 0.15 sits just under all of them, so the switch
# never picks the slower kernel for these layers and keeps event-driven for the
# usual 1-15 % firing rates. Depthwise convs (groups == C) are the exception:
# their dense kernel is so cheap that event only wins below ~0.02-0.04.
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
