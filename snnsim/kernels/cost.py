"""Which kernel form is cheaper for one layer shape: the kernel-form rule's cost model.

A single density threshold is wrong for most layers: a 3136->10 output layer is cheaper event-driven only
below ~8 % (each event adds a row of just 10 weights), a depthwise conv only below ~2 %, a 64-channel 3x3
conv up to ~10 %. The model prices both forms of a layer from its shape, with per-unit costs (ns, one
thread) read off benchmarks/results/kernels_dense_vs_event_t1.csv (benchmarks/kernels_dense_vs_event.py
--threads 1; the conv prices refitted on 2026-11-28, after the register-tile conv):

    dense  = MACs x (TILED_NS for a one-group conv where the register tiles compile, kernels/conv_tiled.py;
             GEMM_NS on the im2col + sgemm path and for a linear layer; GEMV_NS for a linear layer with 1-2
             samples; DIRECT_NS for one input channel per group)
    event  = (inputs + outputs) x CONV_FLOOR_NS + nonzero inputs x fan-out x EVENT_NS          (channels-last)
             (inputs + outputs) x PLANAR_FLOOR_NS + nonzero inputs x fan-out x PLANAR_NS      (depthwise)

and, for the linear layer's event form, whose nonzero search is a vector test per 32 inputs, the LINEAR_*
prices below (benchmarks/results/density_scaling.csv).

Both forms use the same threads, so the ratio, which is all the rule needs, holds for one or two. The
model's crossovers against those measured in two runs (one thread, best of repeats): conv 64->64 3x3 @32
0.12 (measured 0.089-0.128), conv 16->32 3x3 @14 0.10 (0.085-0.132), depthwise 5x5 0.03 (0.016-0.021),
linear 1568->128 0.31 at batch 64 (0.26-0.35), 3136->10 0.08 (0.05-0.1).
"""
from __future__ import annotations

from . import gemm

GEMM_NS = 0.03        # per multiply-add, sgemm path (conv with im2col, linear)
TILED_NS = 0.0095     # per multiply-add, one-group conv on register tiles (0.0083-0.0101 measured, 0.015 for
                      # the 16->32 layer at batch 1, where a call's fixed costs weigh)
GEMV_NS = 0.05        # per multiply-add, linear layers with one or two samples (one sgemv each)
DIRECT_NS = 0.045     # per multiply-add, depthwise direct loops
EVENT_NS = 0.077      # per multiply-add of a scattered event (channels-last runs)
PLANAR_NS = 0.85      # per multiply-add of a depthwise event (short runs straight into NCHW)
CONV_FLOOR_NS = 0.2   # per input and output element of the channels-last event conv: finding the nonzeros,
                      # writing the output from the scratch
PLANAR_FLOOR_NS = 0.29    # the same for the depthwise event conv (its output zeroed, then scattered into)
OUT_NS = 0.5          # per output element of the event linear layer: zeroing and writing the output
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
    dense = macs * (DIRECT_NS if Cg == 1 else TILED_NS if groups == 1 and gemm.USE else GEMM_NS)
    planar = Og < _PLANAR_MAX_OG
    floor = B * (C * H * W + O * HO * WO) * (PLANAR_FLOOR_NS if planar else CONV_FLOOR_NS)
    fanout = Og * KH * KW / (stride[0] * stride[1])
    return (dense - floor) / (fanout * (PLANAR_NS if planar else EVENT_NS))
