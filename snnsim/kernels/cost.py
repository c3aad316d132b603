"""Which kernel form is cheaper for one layer shape: the kernel-form rule's cost model.

A single density threshold is wrong for most layers: a 3136->10 output layer is cheaper dense at every
density (finding the nonzeros of its input costs more than the whole sgemm), a depthwise conv only below
~2 %, a 64-channel 3x3 conv up to ~20 %. The model prices both forms of a layer from its shape, with
per-unit costs (ns, one thread) read off benchmarks/results/kernels_dense_vs_event_t1.csv
(benchmarks/kernels_dense_vs_event.py --threads 1):

    dense  = MACs x (GEMM_NS; GEMV_NS for a linear layer with 1-2 samples; DIRECT_NS for one input channel
             per group)
    event  = inputs x SCAN_NS + outputs x OUT_NS + nonzero inputs x fan-out x (EVENT_NS or PLANAR_NS)

Both forms use the same threads, so the ratio, which is all the rule needs, holds for one or two. The
fitted model reproduces the measured crossovers: conv 64->64 3x3 ~0.23 (measured 0.18-0.20), conv 16->32
3x3 ~0.20 (0.2-0.25), linear 1568->128 ~0.2 (0.16), depthwise 5x5 ~0.016 (0.02).
"""
from __future__ import annotations

GEMM_NS = 0.03        # per multiply-add, sgemm path (conv with im2col, linear)
GEMV_NS = 0.05        # per multiply-add, linear layers with one or two samples (one sgemv each)
DIRECT_NS = 0.057     # per multiply-add, depthwise direct loops
EVENT_NS = 0.12       # per multiply-add of a scattered event (channels-last runs, linear rows)
PLANAR_NS = 1.1       # per multiply-add of a depthwise event (short runs straight into NCHW)
SCAN_NS = 0.5         # per input element: finding the nonzeros
OUT_NS = 0.5          # per output element: zeroing and writing the output
_PLANAR_MAX_OG = 8    # as in conv_event.py: fewer output channels per group scatter straight into NCHW


def event_limit_linear(B: int, I: int, O: int) -> float:
    """Number of nonzero inputs below which the event form of a B x I -> O linear layer is cheaper."""
    dense = B * I * O * (GEMV_NS if B <= 2 else GEMM_NS)
    floor = B * I * SCAN_NS + B * O * OUT_NS
    return (dense - floor) / (O * EVENT_NS)


def event_limit_conv(B: int, in_shape, out_shape, kernel_size, stride, groups: int) -> float:
    """Number of nonzero inputs below which the event form of a conv layer is cheaper."""
    C, H, W = in_shape
    O, HO, WO = out_shape
    KH, KW = kernel_size
    Cg, Og = C // groups, O // groups
    macs = B * O * HO * WO * Cg * KH * KW
    dense = macs * (DIRECT_NS if Cg == 1 else GEMM_NS)
    floor = B * C * H * W * SCAN_NS + B * O * HO * WO * OUT_NS
    fanout = Og * KH * KW / (stride[0] * stride[1])
    per_event = fanout * (PLANAR_NS if Og < _PLANAR_MAX_OG else EVENT_NS)
    return (dense - floor) / per_event
