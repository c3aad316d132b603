"""The conv1d layer kind (snnsim/layers/conv1d.py, one new module): inference against SpikingJelly's multi-step
layer.Conv1d, its training gradients against PyTorch autograd, its hardware counts against a hand count."""

from __future__ import annotations

import re

import numpy as np
import pytest

from snnsim.engine import run
from snnsim.errors import SpecError
from snnsim.layers import parse_spec
from snnsim.network import build_network
from snnsim.weights import check_weights

NET = {
    "name": "conv1d_net", "input_shape": [2, 16], "timesteps": 4,
    "neuron_defaults": {"lif": {"tau": 2.0, "v_threshold": 1.0, "v_reset": 0.0}},
    "layers": [
        {"type": "conv1d", "out_channels": 4, "kernel_size": 3, "padding": 1},
        {"type": "lif"},
        {"type": "conv1d", "out_channels": 6, "kernel_size": 4, "stride": 2, "padding": 1, "groups": 2},
        {"type": "lif"},
        {"type": "flatten"},
        {"type": "linear", "out_features": 5},
        {"type": "lif"},
    ],
}
NEURONS = ["1", "3", "6"]


def sj_model(seed):
    """The same network in SpikingJelly (multi-step), weights scaled for lively spiking."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import layer, neuron

    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        layer.Conv1d(2, 4, 3, padding=1, step_mode="m"), neuron.LIFNode(step_mode="m"),
        layer.Conv1d(4, 6, 4, stride=2, padding=1, groups=2, step_mode="m"), neuron.LIFNode(step_mode="m"),
        layer.Flatten(step_mode="m"), layer.Linear(6 * 8, 5, step_mode="m"), neuron.LIFNode(step_mode="m"))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv1d, torch.nn.Linear)):
                m.weight.mul_(3.0)
                m.bias.uniform_(0.2, 0.8)
    return model.eval()


@pytest.mark.parametrize("form", ["dense", "event"])
def test_spikes_match_spikingjelly(form):
    """Same weights, same input, T=4: every layer's spikes identical (round-off ties aside) and the output equal."""
    import torch
    from spikingjelly.activation_based import functional
    from test_reference_peers import compare_spikes

    model = sj_model(0)
    weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    spec = parse_spec(NET)
    net = build_network(spec, check_weights(spec, weights))
    x = np.random.default_rng(1).random((8, 2, 16), dtype=np.float32) * 2
    res = run(net, x, probes=NEURONS, form=form)
    spikes = {}
    for name in NEURONS:
        model[int(name)].register_forward_hook(lambda m, i, o, name=name: spikes.__setitem__(name, o.numpy().copy()))
    functional.reset_net(model)
    with torch.no_grad():
        out = model(torch.from_numpy(x).unsqueeze(0).repeat(4, 1, 1, 1)).numpy()
    flipped = compare_spikes(res.trace.probes, spikes, NEURONS, f"conv1d/{form}")
    for name in NEURONS:
        rate = res.trace.probes[name]["spikes"].mean()
        assert 0.0 < rate < 1.0, f"{name}: firing rate {rate} makes the comparison vacuous"
    if not flipped:
        np.testing.assert_array_equal(res.outputs, out)


@pytest.mark.parametrize("stride,padding,groups,bias", [(1, 1, 1, True), (2, 0, 2, False), (3, 2, 4, True)])
def test_gradients_match_torch_autograd(stride, padding, groups, bias):
    """The training node's weight, bias and input gradients for a given upstream gradient, against autograd
    through torch.nn.functional.conv1d (T x B rows, analog input)."""
    torch = pytest.importorskip("torch")
    from snnsim.layers import build_nodes
    from snnsim.train.forward import Act, Ctx

    spec = parse_spec({"input_shape": [4, 11], "layers": [
        {"name": "c", "type": "conv1d", "out_channels": 8, "kernel_size": 4, "stride": stride, "padding": padding,
         "groups": groups, "bias": bias}]})
    (node,) = build_nodes(spec.layers, lambda name: None)
    rng = np.random.default_rng(stride)
    T, B = 3, 2
    params = {k: rng.standard_normal(s).astype(np.float32) for k, s in spec.param_shapes().items()}
    x = rng.standard_normal((T * B, 4, 11)).astype(np.float32)
    ctx = Ctx(T, B, params, grads={})
    y = node.forward(Act(x, False), ctx).x
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx = node.backward(gy, ctx, True)

    xt = torch.from_numpy(x).requires_grad_()
    wt = torch.from_numpy(params["c.weight"]).requires_grad_()
    bt = torch.from_numpy(params["c.bias"]).requires_grad_() if bias else None
    yt = torch.nn.functional.conv1d(xt, wt, bt, stride, padding, 1, groups)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    yt.backward(torch.from_numpy(gy))
    np.testing.assert_allclose(ctx.grads["c.weight"], wt.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-4, atol=1e-4)
    if bias:
        np.testing.assert_allclose(ctx.grads["c.bias"], bt.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_hardware_counts_match_a_hand_count():
    """hwmodel prices the conv1d from the trace alone: its synaptic ops are, per input spike at position l,
    the outputs j with 0 <= l + p - j*s < k times out_channels/groups, counted here by brute force."""
    from hwmodel.counts import count
    from snnsim.weights import random_weights

    spec = parse_spec(NET)
    net = build_network(spec, check_weights(spec, random_weights(spec, 3)))
    x = np.random.default_rng(4).random((5, 2, 16), dtype=np.float32) * 2
    res = run(net, x, probes=["1"])
    spikes = res.trace.probes["1"]["spikes"]           # the input of the second conv1d, [T, N, 4, 16]
    assert 0 < spikes.mean() < 1
    k, s, p, out_len, per_group = 4, 2, 1, 8, 6 // 2
    hand = 0
    for l in range(16):
        reach = sum(1 for j in range(out_len) if 0 <= l + p - j * s < k)
        hand += int((spikes[..., l] != 0).sum()) * reach * per_group
    rows = count(res.trace).rows
    got = float(rows.loc[rows.layer == "2", "synops"].sum())
    assert got == pytest.approx(hand / len(x), rel=1e-12)
    layer = res.trace.layer("2")
    assert layer.kind == "conv2d" and layer.in_shape == (4, 1, 16) and layer.geometry["conv1d"]


@pytest.mark.parametrize("layer,where,msg", [
    ({"type": "conv1d", "out_channels": 4, "kernel_size": 40}, "layers[0].kernel_size", "does not fit"),
    ({"type": "conv1d", "out_channels": 3, "kernel_size": 3, "groups": 2}, "layers[0].groups", "must divide"),
    ({"type": "conv1d", "kernel_size": 3}, "layers[0].out_channels", "missing"),
])
def test_spec_errors_name_the_field(layer, where, msg):
    with pytest.raises(SpecError, match=re.escape(where) + ".*" + msg):
        parse_spec({"input_shape": [2, 16], "layers": [layer]})


def test_needs_a_channels_by_length_input():
    with pytest.raises(SpecError, match="conv1d needs a \\[C, L\\] input"):
        parse_spec({"input_shape": [2, 4, 4], "layers": [{"type": "conv1d", "out_channels": 2, "kernel_size": 3}]})
