"""The kernel-form rule: per layer shape by the cost model (snnsim/kernels/cost.py), or one density threshold."""

from pathlib import Path

import numpy as np
import pytest

from snnsim.layers import Conv2d, ConvOp, Linear, LinearOp, kernel_form


def linear(i, o):
    return LinearOp(Linear("fc", (i,), (o,), in_features=i, out_features=o))


def conv(c, o, k, h, groups=1, stride=1):
    ho = (h + 2 * (k // 2) - k) // stride + 1
    return ConvOp(Conv2d("conv", (c, h, h), (o, ho, ho), in_channels=c, out_channels=o, kernel_size=(k, k),
                         stride=(stride, stride), padding=(k // 2, k // 2), groups=groups))


def density_limit(op, B):
    """Smallest density (1 % steps) at which the rule picks dense; 1.01 if it never does."""
    size = B * int(np.prod(op.layer.in_shape))
    for pct in range(0, 101):
        if kernel_form(op, int(size * pct / 100), size, None) == "dense":
            return pct / 100
    return 1.01


@pytest.mark.parametrize("B,event_wins,dense_wins", [(1, 0.10, 0.20), (64, 0.05, 0.10)])
def test_output_layer_with_ten_outputs_runs_event_driven_only_when_sparse(B, event_wins, dense_wins):
    # 3136 -> 10: a short weight row per event, so the event form wins only at low density; the crossover lies
    # between the densities where benchmarks/density_scaling.py measured each form faster
    # (benchmarks/results/density_scaling.csv, idle and loaded: event at 10 % and 5 %, dense at 20 % and 10 %)
    assert event_wins < density_limit(linear(3136, 10), B) <= dense_wins


@pytest.mark.parametrize("B", [1, 64])
def test_crossover_depends_on_the_layer_shape(B):
    wide = density_limit(conv(64, 64, 3, 16), B)
    depthwise = density_limit(conv(64, 64, 5, 28, groups=64), B)
    hidden = density_limit(linear(1568, 128), B)
    # the dense conv on register tiles (AVX-512) is ~3x the im2col + sgemm path: measured crossovers 0.085-0.13
    # (benchmarks/results/kernels_dense_vs_event_t1.csv), against 0.18-0.25 on the sgemm path
    from snnsim.kernels import gemm

    assert (0.05 <= wide <= 0.2) if gemm.USE else (0.1 <= wide <= 0.35)
    assert 0.1 <= hidden <= (0.35 if B > 2 else 0.6)   # 1-2 samples: sgemv, slower
    assert 0.0 < depthwise <= 0.05 < wide         # a depthwise event reaches only 25 outputs
    assert density_limit(conv(64, 64, 3, 16, groups=64), B) <= 0.05


def test_rule_is_monotone_in_the_number_of_events():
    op = conv(32, 32, 3, 16)
    size = 64 * 32 * 16 * 16
    forms = [kernel_form(op, n, size, None) for n in range(0, size + 1, size // 200)]
    first_dense = forms.index("dense")
    assert set(forms[:first_dense]) == {"event"} and set(forms[first_dense:]) == {"dense"}


def test_explicit_threshold_is_one_density_for_every_layer():
    for op in (linear(3136, 10), conv(64, 64, 3, 16, groups=64), conv(64, 64, 3, 16)):
        size = 64 * int(np.prod(op.layer.in_shape))
        assert kernel_form(op, int(0.149 * size), size, 0.15) == "event"
        assert kernel_form(op, int(0.151 * size), size, 0.15) == "dense"


def test_training_weight_gradient_rule_agrees_with_its_measured_crossovers():
    """The weight gradient's form rule (gw_event_limit, prices GW_* in snnsim/train/grads/conv.py) switches to dense
    near the density where benchmarks/train_conv_forms.py measured the dense form faster, on each SEW-ResNet
    shape (benchmarks/results/train_conv_forms.csv; 'inf': events faster at every measured density, up to 30 %)."""
    import pandas as pd

    from snnsim.train.grads.conv import gw_event_limit

    runs = pd.read_csv(Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "train_conv_forms.csv")
    for row in runs.to_dict("records"):
        cin, rest = row["shape"].split("->")
        O, _, stride, at = rest.split()
        C, O, s, H = int(cin), int(O), int(stride[1:]), int(at[1:])
        HO = (H + 2 - 3) // s + 1
        rule = gw_event_limit(128, (C, H, H), (O, HO, HO), (3, 3), (s, s)) / (128 * C * H * H)
        measured = row["measured_crossover"]
        if np.isinf(measured):
            assert rule > 0.3, row["shape"]
        else:
            assert abs(rule - measured) <= 0.04, (row["shape"], rule, measured)
