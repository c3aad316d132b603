"""Which kernel form is cheaper for one layer shape: the kernel-form rule's cost model.

A single density threshold is wrong for most layers: a 3136->10 output layer is cheaper event-driven only
below ~8 % (each event adds a row of just 10 weights), a depthwise conv only below ~2 %, a 64-channel 3x3
conv up to ~20 %. The model prices both forms of a layer from its shape, with per-unit costs (ns, one
thread) read off benchmarks/results/kernels_dense_vs_event_t1.csv (benchmarks/kernels_dense_vs_event.py
--threads 1):

    dense  = MACs x (GEMM_NS; GEMV_NS for a linear layer with 1-2 samples; DIRECT_NS for one input channel
             per group)
    event  = inputs x SCAN_NS + outputs x OUT_NS + nonzero inputs x fan-out x (EVENT_NS or PLANAR_NS)

and, for the linear layer's event form, whose nonzero search is now a vector test per 32 inputs, the
LINEAR_* prices below (benchmarks/results/density_scaling.csv). The conv's SCAN_NS and OUT_NS are those of
the older scalar scan: the event conv now costs ~0.1 ns per input and output (docs/performance.md), but a
conv re-priced to it would move some layers of the shipped networks to the other form, whose float32 sums
round differently, and their outputs must stay bit-identical (tests/test_shipped_outputs.py,
tests/test_reference_rev.py).

Both forms use the same threads, so the ratio, which is all the rule needs, holds for one or two. The
fitted model reproduces the measured crossovers: conv 64->64 3x3 ~0.23 (measured 0.18-0.20), conv 16->32
3x3 ~0.20 (0.2-0.25), linear 1568->128 ~0.3 (between 0.2 and 0.5), 3136->10 ~0.08 (0.05-0.1), depthwise 5x5 ~0.016
(0.02).
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


# The event linear layer (kernels/linear.py): per input an eighth of the conv's SCAN_NS, and per event a fixed
# cost besides its row of O multiply-adds (fitted to the linear layers of benchmarks/density_scaling.py at
# batch 64, 1568->128 and 3136->10, between 0 and 20 % density).
LINEAR_SCAN_NS = 0.065    # per input element
LINEAR_EVENT_NS = 2.2     # per event, besides O x LINEAR_MAC_NS
LINEAR_MAC_NS = 0.077     # per multiply-add of an event's weight row


def event_limit_linear(B: int, I: int, O: int) -> float:
    """Number of nonzero inputs below which the event form of a B x I -> O linear layer is cheaper."""
    dense = B * I * O * (GEMV_NS if B <= 2 else GEMM_NS)
    floor = B * I * LINEAR_SCAN_NS + B * O * OUT_NS
    return (dense - floor) / (LINEAR_EVENT_NS + O * LINEAR_MAC_NS)


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
