"""Online training (OTTT A/O, SAF E/F): SAF's accumulated forward fires exactly the LIF network's spikes,
SAF-E's gradients equal OTTT_O's, memory does not depend on T, forward work is counted, and unsupported
layers are refused with one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from snnsim.data import fit_to_shape, load_dataset
from snnsim.engine import run
from snnsim.errors import InputError
from snnsim.network import build_network
from snnsim.layers import load_spec, parse_spec
from snnsim.train import loop as L
from snnsim.train.bptt import BPTT
from snnsim.train.forward import NeuronTrainCfg
from snnsim.train.losses import make_loss
from snnsim.train.online import make_online

ROOT = Path(__file__).resolve().parent.parent
SOFT = ROOT / "networks" / "digits_mlp_soft.yaml"

def _conv_raw(dims=2):
    """A fresh YAML dict of a soft-reset convolutional network with a residual block around a grouped
    convolution: dims=2, conv2d and average pooling on [1, 12, 12]; dims=1, conv1d on [2, 16]."""
    conv, channels = f"conv{dims}d", (6 if dims == 2 else 4)
    pool = [{"name": "pool", "type": "avgpool2d", "kernel_size": 2}] if dims == 2 else []
    return {
        "name": "conv_soft" if dims == 2 else "conv1d_soft",
        "input_shape": [1, 12, 12] if dims == 2 else [2, 16],
        "neuron_defaults": {"lif": {"tau": 2.0, "v_reset": None}},
        "layers": [
            {"name": "conv1", "type": conv, "out_channels": channels, "kernel_size": 3, "padding": 1},
            {"name": "sn1", "type": "lif"},
            *pool,
            {"name": "res", "type": "residual", "body": [
                {"name": "conv", "type": conv, "out_channels": channels, "kernel_size": 3, "padding": 1, "groups": 2},
                {"name": "sn", "type": "lif"}]},
            {"name": "flatten", "type": "flatten"},
            {"name": "fc", "type": "linear", "out_features": 10},
            {"name": "sn2", "type": "lif"},
        ],
    }


class Recorder:
    """An 'optimiser' that records the gradients it is given and leaves the weights alone."""

    def __init__(self):
        self.grads = []

    def step(self, params, grads, lr):
        self.grads.append({k: v.copy() for k, v in grads.items()})


def _soft(seed=0):
    spec = load_spec(SOFT)
    p = L.init_params(spec, seed)
    p["fc1.weight"] *= 6
    p["fc1.bias"] += 0.3
    p["fc2.weight"] *= 4
    x, y = load_dataset("digits").split("train")
    return spec, p, fit_to_shape(x[:64], spec.input_shape), y[:64]


def _conv_soft(dims=2):
    spec = parse_spec(_conv_raw(dims))
    p = L.init_params(spec, 1 if dims == 2 else 2)
    p["conv1.weight"] *= 4
    p["res.conv.weight"] *= 3
    p["fc.weight"] *= 6
    x, y = load_dataset("mnist").split("train")
    x = x[:32, :, 8:20, 8:20] if dims == 2 else x[:32, 0, 12:14, 6:22]
    return spec, p, np.ascontiguousarray(x), y[:32]


NETS = {"mlp": _soft, "conv": _conv_soft, "conv1d": lambda: _conv_soft(dims=1)}


@pytest.mark.parametrize("net", ["mlp", "conv", "conv1d"])
def test_saf_forward_spikes_equal_the_lif_network(net):
    spec, p, x, _ = NETS[net]()
    T = 6
    saf = make_online(spec, NeuronTrainCfg(), "saf", "E")
    ours = saf.forward_spikes(p, x, T)
    names = [n for n in ours]
    res = run(build_network(spec, p), x, timesteps=T, probes=names)
    for k in names:
        lif = res.trace.probes[k]["spikes"]
        assert 0 < lif.mean() < 1, k
        np.testing.assert_array_equal(ours[k].reshape(lif.shape), lif, err_msg=k)


@pytest.mark.parametrize("net", ["mlp", "conv", "conv1d"])
def test_saf_e_gradients_equal_ottt_o(net):
    """Theorem 1: at every timestep, with the same weights, SAF-E's gradients are OTTT_O's."""
    spec, p, x, y = NETS[net]()
    T = 5
    a, b = Recorder(), Recorder()
    ra = make_online(spec, NeuronTrainCfg(), "saf", "E").step(dict(p), x, y, T, None, a, 0.1)
    rb = make_online(spec, NeuronTrainCfg(), "ottt", "O").step(dict(p), x, y, T, None, b, 0.1)
    assert len(a.grads) == len(b.grads) == T
    assert ra.loss == pytest.approx(rb.loss, rel=1e-6)
    np.testing.assert_array_equal(ra.outputs, rb.outputs)
    for t in range(T):
        for k in b.grads[t]:
            ref = b.grads[t][k]
            assert np.abs(ref).max() > 0, (t, k)
            np.testing.assert_allclose(a.grads[t][k], ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max(),
                                       err_msg=f"t={t} {k}")


def test_ottt_a_is_the_sum_of_ottt_o_steps_at_fixed_weights():
    spec, p, x, y = _soft()
    a, o = Recorder(), Recorder()
    make_online(spec, NeuronTrainCfg(), "ottt", "A").step(dict(p), x, y, 4, None, a, 0.1)
    make_online(spec, NeuronTrainCfg(), "ottt", "O").step(dict(p), x, y, 4, None, o, 0.1)
    assert len(a.grads) == 1 and len(o.grads) == 4
    for k in a.grads[0]:
        np.testing.assert_allclose(a.grads[0][k], sum(g[k] for g in o.grads), rtol=1e-5, atol=1e-7)


def test_online_memory_is_independent_of_T_and_bptt_is_not():
    spec, p, x, y = _soft()
    mem = {m: {} for m in ("bptt", "ottt", "saf")}
    for T in (1, 2, 4, 8, 16):
        for m in ("ottt", "saf"):
            mem[m][T] = make_online(spec, NeuronTrainCfg(), m).step(dict(p), x, y, T, None, Recorder(),
                                                                    0.1).memory["peak_bytes"]
        mem["bptt"][T] = BPTT(spec).loss_and_grads(dict(p), x, y, T, make_loss("ce")).memory["peak_bytes"]
    assert len(set(mem["ottt"].values())) == 1
    assert len(set(mem["saf"].values())) == 1
    assert mem["saf"][8] < mem["ottt"][8]
    assert mem["bptt"][8] >= 4 * mem["saf"][8]
    assert mem["bptt"][16] > 1.9 * mem["bptt"][8] - mem["bptt"][1]


def test_forward_work_counted():
    spec, p, x, y = _soft()
    o = make_online(spec, NeuronTrainCfg(), "ottt").step(dict(p), x, y, 3, None, Recorder(), 0.1)
    s = make_online(spec, NeuronTrainCfg(), "saf").step(dict(p), x, y, 3, None, Recorder(), 0.1)
    assert o.forward_ops == {"synaptic": 2, "state_arrays": 4}   # v and trace per layer
    assert s.forward_ops == {"synaptic": 2, "state_arrays": 2}   # one accumulation per layer


def test_saf_f_single_update_on_accumulated_output():
    spec, p, x, y = _soft()
    r = Recorder()
    out = make_online(spec, NeuronTrainCfg(), "saf", "F").step(dict(p), x, y, 6, None, r, 0.1)
    assert len(r.grads) == 1 and np.isfinite(out.loss)
    assert all(np.abs(g).max() > 0 for g in r.grads[0].values())


@pytest.mark.parametrize("name,msg", [("digits_mlp", "batch norm"), ("mnist_conv", "batch norm")])
def test_saf_refuses_what_breaks_the_equivalence(name, msg):
    spec = load_spec(ROOT / "networks" / f"{name}.yaml")
    with pytest.raises(InputError, match=msg):
        make_online(spec, NeuronTrainCfg(), "saf")


def test_saf_refuses_hard_reset_and_max_pool():
    raw = _conv_raw()
    raw["neuron_defaults"]["lif"]["v_reset"] = 0.0
    with pytest.raises(InputError, match="hard reset"):
        make_online(parse_spec(raw), NeuronTrainCfg(), "saf")
    raw = _conv_raw()
    raw["neuron_defaults"]["lif"]["reset_delay"] = True
    with pytest.raises(InputError, match="delayed reset"):
        make_online(parse_spec(raw), NeuronTrainCfg(), "saf")
    raw = _conv_raw()
    raw["layers"][2]["type"] = "maxpool2d"
    with pytest.raises(InputError, match="max pooling"):
        make_online(parse_spec(raw), NeuronTrainCfg(), "saf")
    with pytest.raises(InputError, match="variants E and F"):
        make_online(parse_spec(_conv_raw()), NeuronTrainCfg(), "saf", "A")


@pytest.mark.parametrize("method,variant,net", [("ottt", "A", "digits_mlp"), ("ottt", "O", "digits_mlp_soft"),
                                                ("saf", "E", "digits_mlp_soft"), ("saf", "F", "digits_mlp_soft")])
def test_online_methods_learn(method, variant, net):
    spec = load_spec(ROOT / "networks" / f"{net}.yaml")
    cfg = L.TrainConfig(dataset="digits", method=method, variant=variant, epochs=3, lr=1e-2, limit=640,
                        eval_limit=200, seed=1)
    r = L.train(spec, L.init_params(spec, 0), cfg)
    assert r.history[-1]["test_acc"] > 0.5, r.history


def test_saf_f_gradients_equal_autograd_of_its_final_step():
    """SAF-F (docs/papers.md): one loss at t = T on the weighted firing rate a_out[T] / c_T and one backward at
    T with the temporal path cut (each layer's accumulation before T is a constant). Written out in PyTorch
    float64 from those equations and differentiated by autograd, independently of snnsim's backward:
        U = k (W a_in[T] + c_T b),  h = U - thr * lam * a[T-1],  s = H(h - thr) (sigmoid surrogate, alpha 4),
        a[T] = lam * a[T-1] + s,  loss = CE(a_out[T] / c_T, y),  lam = 1 - 1/tau, k = 1/tau, c_T = sum lam^j."""
    torch = pytest.importorskip("torch")
    spec, p, x, y = _soft()
    T, tau, thr, alpha = 5, 2.0, 1.0, 4.0
    lam, k = 1.0 - 1.0 / tau, 1.0 / tau
    r = Recorder()
    ours = make_online(spec, NeuronTrainCfg(), "saf", "F").step(dict(p), x, y, T, None, r, 0.1)

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v):
            ctx.save_for_backward(v)
            return (v >= 0).to(v.dtype)

        @staticmethod
        def backward(ctx, g):
            (v,) = ctx.saved_tensors
            s = torch.sigmoid(alpha * v)
            return g * alpha * s * (1 - s)

    W = {n: torch.tensor(p[f"{n}.weight"], dtype=torch.float64, requires_grad=True) for n in ("fc1", "fc2")}
    b = {n: torch.tensor(p[f"{n}.bias"], dtype=torch.float64, requires_grad=True) for n in ("fc1", "fc2")}
    xin = torch.tensor(x.reshape(len(x), -1), dtype=torch.float64)
    acc = {"sn1": torch.zeros(len(x), 128, dtype=torch.float64), "sn2": torch.zeros(len(x), 10, dtype=torch.float64)}
    a0 = torch.zeros_like(xin)
    c = 0.0
    for t in range(T):
        c = lam * c + 1.0
        a0 = lam * a0 + xin                            # direct encoding: the same input every step
        last = t == T - 1
        a = a0
        for fc, sn in (("fc1", "sn1"), ("fc2", "sn2")):
            prev = acc[sn].detach()                    # the temporal path is cut
            U = k * (a @ W[fc].T + c * b[fc])
            h = U - thr * lam * prev
            s = Spike.apply(h - thr)
            a = lam * prev + s
            acc[sn] = a if last else a.detach()
            if not last:
                a = a.detach()
    loss = torch.nn.functional.cross_entropy(acc["sn2"] / c, torch.tensor(y))
    loss.backward()
    assert ours.loss == pytest.approx(loss.item(), rel=1e-6)
    assert len(r.grads) == 1
    for n in ("fc1", "fc2"):
        for key, ref in ((f"{n}.weight", W[n].grad.numpy()), (f"{n}.bias", b[n].grad.numpy())):
            assert np.abs(ref).max() > 0, key
            np.testing.assert_allclose(r.grads[0][key], ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max(), err_msg=key)
