"""Which kernel form is cheaper for one layer shape: the kernel-form rule's cost model.

A single density threshold is wrong for most layers: a 3136->10 output layer is cheaper event-driven only
below ~8 % (each event adds a row of just 10 weights), a depthwise conv only below ~2 %, a strided conv with
few channels below ~2-4 %, a 64-channel 3x3 conv up to ~11 %. The model prices both forms of a layer from its
shape, with per-unit costs (ns, one thread) fitted by least squares (relative error) to the best-of-repeats
times of benchmarks/results/kernels_dense_vs_event_t1.csv at batch 64 (benchmarks/kernels_dense_vs_event.py
--threads 1; the conv prices refitted on 2026-11-28 on the conv net's and the SEW-ResNet's layers, strided and
with 16-64 channels):

    dense  = MACs with the output channels padded to 32 x TILED_NS + (inputs + outputs) x TILED_ELEM_NS for a
             one-group conv where the register tiles compile (kernels/conv_tiled.py: a tile computes 32 output
             channels, so a 16-channel layer pays for 32; the elements: its padded copy and transposition);
             MACs x GEMM_NS on the im2col + sgemm path and for a linear layer; GEMV_NS for a linear layer with
             1-2 samples; DIRECT_NS for one input channel per group
    event  = (inputs + outputs) x CONV_FLOOR_NS + events x (EVENT_FIXED_NS + runs x EVENT_RUN_NS
             + fan-out x EVENT_NS)                                                       (channels-last)
             where runs is the contiguous runs an event adds into: a kernel row each for a one-group
             stride-1-wide conv, else every kernel tap (KH / sh rows, KW / sw taps a row)
             (inputs + outputs) x PLANAR_FLOOR_NS + events x fan-out x PLANAR_NS        (depthwise)

and, for the linear layer's event form, whose nonzero search is a vector test per 32 inputs, the LINEAR_*
prices below (benchmarks/results/density_scaling.csv).

Both forms use the same threads, so the ratio, which is all the rule needs, holds for one or two. Against the
measured layers at batch 1 and 64 the rule's pick was within 1.15x of the faster form (the earlier model, one
price per scattered multiply-add and none per run, picked the event form of the ResNet's strided 16->32 conv
at 5 % where it took 2.03x the dense form's time). Crossovers measured at batch 64: 64->64 3x3 @32 0.11,
16->16 @32 0.10, 32->32 @16 0.08, 16->32 3x3 stride 2 @32 0.02, 32->64 stride 2 @16 0.04, depthwise 5x5 0.013;
linear 1568->128 0.31 (0.26-0.35), 3136->10 0.08 (0.05-0.1).
"""
from __future__ import annotations

from . import gemm
from .conv_event import PLANAR_MAX_OG

GEMM_NS = 0.03        # per multiply-add, sgemm path (conv with im2col, linear)
TILED_NS = 0.0077     # per multiply-add of a one-group conv on register tiles, output channels padded to 32
TILED_ELEM_NS = 0.077     # per input and output element of the tile conv: its padded copy and transposition
GEMV_NS = 0.05        # per multiply-add, linear layers with one or two samples (one sgemv each)
DIRECT_NS = 0.045     # per multiply-add, depthwise direct loops
EVENT_NS = 0.031      # per multiply-add of a scattered event (channels-last)
EVENT_RUN_NS = 2.7    # per contiguous run an event adds into (finding its taps and outputs, the run's set-up)
EVENT_FIXED_NS = 6.8  # per event (listing it, its row and column tables)
PLANAR_NS = 0.85      # per multiply-add of a depthwise event (short runs straight into NCHW)
CONV_FLOOR_NS = 0.15  # per input and output element of the channels-last event conv: finding the nonzeros,
                      # writing the output from the scratch
PLANAR_FLOOR_NS = 0.29    # the same for the depthwise event conv (its output zeroed, then scattered into)
OUT_NS = 0.5          # per output element of the event linear layer: zeroing and writing the output


# The event linear layer (kernels/linear.py): per input an eighth of the conv's SCAN_NS, and per event a fixed
# cost besides its row of O multiply-adds (fitted to the linear layers of benchmarks/density_scaling.py at
# batch 64, 1568->128 and 3136->10, between 0 and 20 % density).
LINEAR_SCAN_NS = 0.065    # per input element
LINEAR_EVENT_NS = 2.2     # per event, besides O x LINEAR_MAC_NS
LINEAR_MAC_NS = 0.077     # per multiply-add of an event's weight row


def linear_prices(B: int, I: int, O: int) -> tuple[float, float, float]:
    """(dense, event floor, event cost per nonzero input), ns on one thread, of a B x I -> O linear layer:
    the event form costs floor + events x the last."""
    dense = B * I * O * (GEMV_NS if B <= 2 else GEMM_NS)
    return dense, B * I * LINEAR_SCAN_NS + B * O * OUT_NS, LINEAR_EVENT_NS + O * LINEAR_MAC_NS


def conv_prices(B: int, in_shape, out_shape, kernel_size, stride, groups: int) -> tuple[float, float, float]:
    """(dense, event floor, event cost per nonzero input), ns on one thread, of a conv layer at batch B."""
    C, H, W = in_shape
    O, HO, WO = out_shape
    KH, KW = kernel_size
    sh, sw = stride
    Cg, Og = C // groups, O // groups
    elems = B * (C * H * W + O * HO * WO)
    if Cg == 1:
        dense = B * O * HO * WO * KH * KW * DIRECT_NS
    elif groups == 1 and gemm.USE:
        dense = B * -(-O // gemm.NR) * gemm.NR * HO * WO * Cg * KH * KW * TILED_NS + elems * TILED_ELEM_NS
    else:
        dense = B * O * HO * WO * Cg * KH * KW * GEMM_NS
    fanout = Og * KH * KW / (sh * sw)
    if Og < PLANAR_MAX_OG:
        return dense, elems * PLANAR_FLOOR_NS, fanout * PLANAR_NS
    runs = KH / sh if groups == 1 and sw == 1 else (KH / sh) * (KW / sw)
    return dense, elems * CONV_FLOOR_NS, EVENT_FIXED_NS + runs * EVENT_RUN_NS + fanout * EVENT_NS


def event_limit(prices: tuple[float, float, float]) -> float:
    """Number of nonzero inputs below which the event form is cheaper, from (dense, event floor, per event)."""
    dense, floor, per_event = prices
    return (dense - floor) / per_event


def event_limit_linear(B: int, I: int, O: int) -> float:
    """Number of nonzero inputs below which the event form of a B x I -> O linear layer is cheaper."""
    return event_limit(linear_prices(B, I, O))


def event_limit_conv(B: int, in_shape, out_shape, kernel_size, stride, groups: int) -> float:
    """Number of nonzero inputs below which the event form of a conv layer is cheaper."""
    return event_limit(conv_prices(B, in_shape, out_shape, kernel_size, stride, groups))
