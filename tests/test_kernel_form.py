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


def test_prices_of_both_forms_by_hand():
    """kernels/cost.py's prices, worked out by hand from its per-unit costs (ns), and the rule's limit is where
    the two forms cost the same."""
    from snnsim.kernels import cost, gemm

    d, floor, per = cost.conv_prices(64, (64, 16, 16), (64, 16, 16), (3, 3), (1, 1), 1)
    # 64 images x 64 outputs x 256 pixels x 576 multiply-adds; 64 x (16384 + 16384) elements in and out;
    # an event: its listing, 3 kernel rows, 3 x 3 x 64 multiply-adds
    assert d == pytest.approx(64 * 64 * 256 * 576 * 0.0077 + 64 * 32768 * 0.077 if gemm.USE
                              else 64 * 64 * 256 * 576 * 0.03)
    assert floor == pytest.approx(314572.8) and per == pytest.approx(32.756)
    assert cost.event_limit_conv(64, (64, 16, 16), (64, 16, 16), (3, 3), (1, 1), 1) == pytest.approx((d - floor) / per)
    if gemm.USE:                   # 16 output channels are priced as the tile's 32
        d16, floor16, per16 = cost.conv_prices(1, (16, 8, 8), (16, 8, 8), (3, 3), (1, 1), 1)
        assert d16 == pytest.approx(32 * 64 * 144 * 0.0077 + 2048 * 0.077)
        assert floor16 == pytest.approx(307.2) and per16 == pytest.approx(6.8 + 3 * 2.7 + 144 * 0.031)
    # depthwise: direct loops dense, an event scatters its 9 taps straight into the planes
    d, floor, per = cost.conv_prices(64, (64, 16, 16), (64, 16, 16), (3, 3), (1, 1), 64)
    assert (d, floor, per) == pytest.approx((424673.28, 608174.08, 7.65))
    assert cost.event_limit_conv(64, (64, 16, 16), (64, 16, 16), (3, 3), (1, 1), 64) < 0   # never event-driven
    # linear 1568 -> 128 at batch 64: sgemm; the event form scans the inputs, writes the outputs, adds a row
    assert cost.linear_prices(64, 1568, 128) == pytest.approx((385351.68, 10618.88, 12.056))
    assert cost.event_limit_linear(64, 1568, 128) == pytest.approx((385351.68 - 10618.88) / 12.056)
