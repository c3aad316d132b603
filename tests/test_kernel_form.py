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


def test_rule_picks_within_measure_of_the_faster_conv_form():
    """Every one-group conv the kernels benchmark measured (benchmarks/results/kernels_dense_vs_event_t1.csv, one
    thread, best of repeats; the conv net's and the SEW-ResNet's layers, strided and with 16-64 channels, batch 1
    and 64, 1-50 % density): the form the rule picks took at most 1.2x the faster form's time."""
    import pandas as pd

    from snnsim.kernels import gemm

    if not gemm.USE:
        pytest.skip("the measured dense times are the register-tile conv's (AVX-512)")
    runs = pd.read_csv(Path(__file__).resolve().parents[1] / "benchmarks" / "results" /
                       "kernels_dense_vs_event_t1.csv")
    shapes = {"mnist_conv16-32_3x3_14": (16, 32, 3, 14, 1), "cifar_conv64-64_3x3_32": (64, 64, 3, 32, 1),
              "resnet_conv16-16_3x3_32": (16, 16, 3, 32, 1), "resnet_conv16-32_3x3_s2_32": (16, 32, 3, 32, 2),
              "resnet_conv32-32_3x3_16": (32, 32, 3, 16, 1), "resnet_conv32-64_3x3_s2_16": (32, 64, 3, 16, 2),
              "resnet_conv64-64_3x3_8": (64, 64, 3, 8, 1), "resnet_down16-32_1x1_s2_32": (16, 32, 1, 32, 2)}
    checked = 0
    for _, r in runs[runs.layer.isin(list(shapes))].iterrows():
        c, o, k, h, s = shapes[r.layer]
        op = conv(c, o, k, h, stride=s)
        size = int(r.batch) * c * h * h
        form = kernel_form(op, int(round(r.actual_density * size)), size, None)
        took = r.event_min_ms if form == "event" else r.dense_min_ms
        assert took <= 1.2 * min(r.event_min_ms, r.dense_min_ms), (r.layer, r.batch, r.density, form)
        checked += 1
    assert checked >= 90
    # the case the one-price model got wrong: the strided 16 -> 32 conv at 5 %, event 2x the dense form's time
    assert kernel_form(conv(16, 32, 3, 32, stride=2), int(0.05 * 64 * 16 * 32 * 32), 64 * 16 * 32 * 32, None) == "dense"
