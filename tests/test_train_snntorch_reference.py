"""Training reference for snnTorch's default ``Leaky`` (subtract reset, ``reset_delay=True``): snnsim's BPTT
gradients against PyTorch autograd through snnTorch's own module, same weights, batch, T and surrogate.

snnTorch subtracts the threshold one step late (``mem = beta*mem + x - reset*threshold``, the reset computed
from the previous membrane and detached), so the snnsim side runs ``reset_delay: true`` with ``detach_reset``;
the atan surrogate is the same function in both (alpha/2 / (1 + (pi/2 * alpha * u)^2)). The network is
converted with ``snnsim.from_torch``, so the test also checks that the conversion trains like the module.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")

from snntorch import surrogate, utils  # noqa: E402

from snnsim import from_torch  # noqa: E402
from snnsim.layers import parse_spec  # noqa: E402
from snnsim.train.bptt import BPTT  # noqa: E402
from snnsim.train.forward import NeuronTrainCfg  # noqa: E402
from snnsim.train.losses import make_loss  # noqa: E402
from snnsim.train.surrogate import parse_surrogate  # noqa: E402
from snnsim.weights import check_weights  # noqa: E402

T = 6


def _model():
    torch.manual_seed(3)
    kw = dict(init_hidden=True, spike_grad=surrogate.atan(alpha=2.0))
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 3, padding=1), snn.Leaky(beta=0.75, threshold=0.5, **kw),
        torch.nn.Flatten(), torch.nn.Linear(6 * 8 * 8, 24), snn.Leaky(beta=0.5, **kw),
        torch.nn.Linear(24, 10), snn.Leaky(beta=0.875, threshold=0.5, output=True, **kw))
    with torch.no_grad():
        net[3].weight.mul_(3.0)
        net[5].weight.mul_(3.0)
    return net


def test_default_leaky_bptt_gradients_equal_snntorch_autograd():
    net = _model()
    assert net[1].reset_delay and net[1].reset_mechanism == "subtract"      # snnTorch's defaults
    rng = np.random.default_rng(4)
    x = (rng.random((8, 1, 8, 8), np.float32) * 2.0).astype(np.float32)
    y = rng.integers(0, 10, 8)

    imp = from_torch(net, torch.from_numpy(x), timesteps=T)
    assert [layer.get("reset_delay") for layer in imp.spec["layers"] if layer["type"] == "lif"] == [True] * 3
    spec = parse_spec(imp.spec)
    params = dict(check_weights(spec, imp.weights))
    res = BPTT(spec, NeuronTrainCfg(parse_surrogate("atan:2"), True)).loss_and_grads(
        params, x, y, T, make_loss("ce"))

    utils.reset(net)
    xt = torch.from_numpy(x)
    out = torch.stack([net(xt)[0] for _ in range(T)])
    loss = torch.nn.functional.cross_entropy(out.mean(0), torch.from_numpy(y))
    loss.backward()

    ref = out.detach().numpy()
    assert 0 < ref.mean() < 1, "the output layer is silent or saturated: the comparison would be vacuous"
    np.testing.assert_array_equal(res.outputs.reshape(ref.shape), ref)
    assert abs(res.loss - loss.item()) <= 1e-6 * max(1.0, abs(loss.item()))
    names = {"0": "0", "3": "3", "5": "5"}        # module name -> snnsim layer name (from_torch keeps them)
    checked = 0
    for mod, layer in names.items():
        for part in ("weight", "bias"):
            g = getattr(net[int(mod)], part).grad.numpy()
            mine = res.grads[f"{layer}.{part}"].reshape(g.shape)
            assert np.linalg.norm(g) > 0, f"{mod}.{part}: no gradient reached it; the test would be vacuous"
            np.testing.assert_allclose(mine, g, rtol=1e-4, atol=1e-6 * np.abs(g).max(), err_msg=f"{mod}.{part}")
            checked += 1
    assert checked == 6
