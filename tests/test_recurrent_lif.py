"""The rlif layer kind (snnsim/layers/recurrent.py, one new module): snnTorch's RLeaky (all-to-all recurrent
weight) run by snnsim against snnTorch's own loop, its BPTT gradients against PyTorch autograd, and its hardware
counts against a hand count."""

from __future__ import annotations

import numpy as np
import pytest

from snnsim.engine import run
from snnsim.errors import InputError, SpecError
from snnsim.layers import parse_spec
from snnsim.network import build_network
from snnsim.weights import check_weights

NET = {"name": "rleaky", "input_shape": [12], "timesteps": 8, "layers": [
    {"name": "fc", "type": "linear", "out_features": 10},
    {"name": "lif", "type": "rlif", "tau": 2.0},
]}


def snntorch_model(seed, **reset):
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(12, 10)
            self.lif = snn.RLeaky(beta=0.5, linear_features=10, **reset)   # default: subtract reset, delayed

    torch.manual_seed(seed)
    m = Net()
    with torch.no_grad():
        m.fc.weight.mul_(3.0)
        m.fc.bias.uniform_(0.2, 0.7)
        m.lif.recurrent.weight.mul_(2.0)
    return m


def snntorch_run(m, x, T):
    import torch

    spk, mem = m.lif.init_rleaky()
    spikes, mems = [], []
    with torch.no_grad():
        cur = m.fc(torch.from_numpy(x))
        for _ in range(T):
            spk, mem = m.lif(cur, spk, mem)
            spikes.append(spk.numpy().copy())
            mems.append(mem.numpy().copy())
    return np.stack(spikes), np.stack(mems)


def test_spikes_match_snntorch_rleaky():
    """Same weights (the snnTorch state_dict, buffers checked against the YAML), same input, T=8: identical
    spikes at every step, membranes equal to float32 rounding (snnsim adds the recurrent current to the input
    before the leak, snnTorch after)."""
    m = snntorch_model(0)
    weights = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    spec = parse_spec(NET)
    net = build_network(spec, check_weights(spec, weights))
    x = np.random.default_rng(1).random((16, 12), dtype=np.float32)
    res = run(net, x, probes=["lif"])
    s_ref, v_ref = snntorch_run(m, x, 8)
    ours = res.trace.probes["lif"]
    assert 0.05 < s_ref.mean() < 0.95
    assert (s_ref[1:] != s_ref[:-1]).any()
    np.testing.assert_array_equal(ours["spikes"], s_ref)
    # snnTorch's mem at t has the delayed reset of t applied, snnsim's state is H[t]: the same number
    np.testing.assert_allclose(ours["membrane"], v_ref, rtol=0, atol=2e-6)


def test_recurrence_matters():
    """The recurrent weight changes the spikes (the comparison above is not passing on the input alone)."""
    m = snntorch_model(0)
    weights = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    spec = parse_spec(NET)
    x = np.random.default_rng(1).random((16, 12), dtype=np.float32)
    a = run(build_network(spec, check_weights(spec, weights)), x, probes=["lif"]).trace.probes["lif"]["spikes"]
    weights["lif.recurrent.weight"] = np.zeros_like(weights["lif.recurrent.weight"])
    b = run(build_network(spec, check_weights(spec, weights)), x, probes=["lif"]).trace.probes["lif"]["spikes"]
    assert (a != b).any()


def test_hardware_counts_match_a_hand_count():
    """The recurrent synapses are priced from the trace like a linear layer's: each spike of step t-1 reaches all
    N neurons at step t."""
    from hwmodel.counts import count
    from snnsim.weights import random_weights

    spec = parse_spec(NET)
    net = build_network(spec, check_weights(spec, random_weights(spec, 1)))
    x = np.random.default_rng(2).random((6, 12), dtype=np.float32)
    res = run(net, x, probes=["lif"])
    s = res.trace.probes["lif"]["spikes"]                       # [T, N, 10]
    assert 0 < s.mean() < 1
    hand = float((s[:-1] != 0).sum()) * 10 / len(x)
    rows = count(res.trace).rows
    assert float(rows.loc[rows.layer == "lif.recurrent", "synops"].sum()) == pytest.approx(hand, rel=1e-12)


@pytest.mark.parametrize("decay_input,detach", [(False, False), (True, False), (False, True)])
def test_gradients_match_autograd(decay_input, detach):
    """The training node's recurrent weight, bias and input gradients for a given upstream gradient, against
    autograd through the same recurrence written in PyTorch (spike: a step whose backward is the ATan surrogate;
    the delayed reset subtracts v_threshold times the previous step's spike, detached with detach_reset)."""
    torch = pytest.importorskip("torch")
    from snnsim.layers import build_nodes
    from snnsim.train.forward import Act, Ctx, NeuronTrainCfg
    from snnsim.train.surrogate import Surrogate

    T, B, N, tau, thr, alpha = 6, 4, 7, 2.0, 1.0, 2.0
    spec = parse_spec({"input_shape": [N], "timesteps": T, "layers": [
        {"name": "r", "type": "rlif", "tau": tau, "decay_input": decay_input}]})
    cfg = NeuronTrainCfg(Surrogate("atan", alpha), detach)
    (node,) = build_nodes(spec.layers, lambda name: cfg)
    rng = np.random.default_rng(5)
    params = {"r.recurrent.weight": rng.normal(0, 0.6, (N, N)).astype(np.float32),
              "r.recurrent.bias": rng.uniform(0, 0.4, N).astype(np.float32)}
    x = rng.uniform(0, 1.6, (T * B, N)).astype(np.float32)
    ctx = Ctx(T, B, params, grads={})
    y = node.forward(Act(x, False), ctx).x
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx = node.backward(gy, ctx, True)

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(c, u):
            c.save_for_backward(u)
            return (u > 0).float()

        @staticmethod
        def backward(c, g):
            (u,) = c.saved_tensors
            return g * (alpha / 2) / (1 + (np.pi / 2 * alpha * u) ** 2)

    w = torch.from_numpy(params["r.recurrent.weight"]).requires_grad_()
    b = torch.from_numpy(params["r.recurrent.bias"]).requires_grad_()
    xt = torch.from_numpy(x).requires_grad_()
    v = torch.zeros(B, N)
    s = torch.zeros(B, N)
    outs = []
    for t in range(T):
        current = xt.reshape(T, B, N)[t] + (s @ w.T + b)
        if decay_input:
            h = v + (current - v) / tau
        else:
            h = v - v / tau + current
        h = h - thr * (s.detach() if detach else s)
        s = Spike.apply(h - thr)
        v = h
        outs.append(s)
    out = torch.stack(outs).reshape(T * B, N)
    assert 0.1 < float(out.detach().mean()) < 0.9
    np.testing.assert_array_equal(y, out.detach().numpy())
    (out * torch.from_numpy(gy)).sum().backward()
    for ours, ref in ((ctx.grads["r.recurrent.weight"], w.grad), (ctx.grads["r.recurrent.bias"], b.grad), (gx, xt.grad)):
        ref = ref.numpy()
        assert np.abs(ref).max() > 0
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


def test_refusals_name_the_field_or_method():
    with pytest.raises(SpecError, match="rlif needs a 1-D input"):
        parse_spec({"input_shape": [2, 3], "layers": [{"type": "rlif"}]})
    with pytest.raises(SpecError, match=r"layers\[0\]\.stateless"):
        parse_spec({"input_shape": [4], "layers": [{"type": "rlif", "stateless": True}]})
    from snnsim.layers import build_nodes

    spec = parse_spec({"input_shape": [4], "layers": [{"type": "rlif", "v_reset": 0.0, "reset_delay": False}]})
    with pytest.raises(InputError, match="training supports rlif layers with the RLeaky reset"):
        build_nodes(spec.layers, lambda name: None)


@pytest.mark.parametrize("reset", [{}, {"reset_mechanism": "zero", "reset_delay": False}])
def test_from_torch_reads_rleaky(reset):
    """snnsim.from_torch on snnTorch's own module (Linear then RLeaky, with its default delayed subtract reset or
    an immediate zero reset): an rlif layer whose spikes equal snnTorch's loop at every step."""
    torch = pytest.importorskip("torch")
    from snnsim.torch_import import from_torch

    m = snntorch_model(0, **reset)
    x = np.random.default_rng(1).random((16, 12), dtype=np.float32)
    imp = from_torch(torch.nn.Sequential(m.fc, m.lif), torch.from_numpy(x), timesteps=8)
    layer = imp.spec["layers"][1]
    assert (layer["type"], layer["tau"], layer["reset_delay"]) == ("rlif", 2.0, not reset)
    s_ref, _ = snntorch_run(m, x, 8)
    ours = imp.run(x, probes=[layer["name"]]).trace.probes[layer["name"]]["spikes"]
    assert 0.05 < s_ref.mean() < 0.95
    np.testing.assert_array_equal(ours, s_ref)


def test_from_torch_refuses_other_rleaky():
    """A one-to-one RLeaky and the two resets whose spikes differ from rlif's (the delayed zero reset, the
    immediate subtract reset; ``test_refused_resets_differ`` shows the difference) are refused by name."""
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    from snnsim.errors import SnnsimError
    from snnsim.torch_import import from_torch

    x = np.random.default_rng(1).random((16, 12), dtype=np.float32)
    for bad, why in ((snn.RLeaky(beta=0.5, all_to_all=False), "all_to_all=True"),
                     (snn.RLeaky(beta=0.5, linear_features=10, reset_mechanism="zero"), "not 'zero' with reset_delay=True"),
                     (snn.RLeaky(beta=0.5, linear_features=10, reset_delay=False), "not 'subtract' with reset_delay=False")):
        with pytest.raises(SnnsimError, match=rf"module '1' \(RLeaky\): .*{why}"):
            from_torch(torch.nn.Sequential(torch.nn.Linear(12, 10), bad), torch.from_numpy(x))


@pytest.mark.parametrize("reset, fields", [({"reset_mechanism": "zero"}, {"v_reset": 0.0, "reset_delay": False}),
                                           ({"reset_delay": False}, {"v_reset": None, "reset_delay": False})])
def test_refused_resets_differ(reset, fields):
    """Why from_torch refuses these two RLeaky resets: the nearest rlif (the same weights, the reset read as
    snnTorch names it) spikes differently from snnTorch's own loop."""
    m = snntorch_model(0, **reset)
    spec = parse_spec({**NET, "layers": [NET["layers"][0], {**NET["layers"][1], **fields}]})
    net = build_network(spec, check_weights(spec, {k: v.detach().numpy() for k, v in m.state_dict().items()}))
    x = np.random.default_rng(1).random((16, 12), dtype=np.float32)
    s_ref, _ = snntorch_run(m, x, 8)
    assert not np.array_equal(run(net, x, probes=["lif"]).trace.probes["lif"]["spikes"], s_ref)
