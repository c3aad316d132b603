"""T-RevSNN training (snnsim.layers.trevsnn.train): the new nodes against finite differences, the reversible backward
against BPTT, and the memory the reversible backward holds against T."""

from __future__ import annotations

import numpy as np
import pytest

from snnsim.layers import parse_spec
from snnsim.layers import LayerScaleNode, UpsampleNode
from snnsim.layers.conv import std_weight_backward
from snnsim.layers.neuron import NeuronNode
from snnsim.train.forward import Act, Ctx
from snnsim.train.losses import make_loss
from snnsim.layers.trevsnn import TRevBPTT, TRevReversible
from snnsim.weights import random_weights


def tiny(cols: int, heads: int | None = None):
    return parse_spec({
        "name": "tt", "input_shape": [3, 8, 8], "timesteps": cols, "encoding": "direct",
        "readout": {"reduce": "last", "source": "output"},
        "layers": [{"name": "trev", "type": "trevsnn", "columns": cols, "channels": [2, 4, 4], "strides": [1, 2, 1],
                    "kernel_size": 3, "hidden_ratio": 2, "stem": [{"kernel_size": 3, "stride": 1, "padding": 1}],
                    "heads": cols if heads is None else heads, "classes": 3}]})


def batch(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, 3, 8, 8)).astype(np.float32), np.arange(n) % 3


def std_ref(w, gain, eps=1e-6):
    o = w.shape[0]
    w2 = w.reshape(o, -1)
    m = w2.mean(axis=1, keepdims=True)
    v = ((w2 - m) ** 2).mean(axis=1, keepdims=True)
    return ((w2 - m) / np.sqrt(v + eps) * gain.reshape(o, 1) * w2.shape[1] ** -0.5).reshape(w.shape)


def test_std_weight_backward_finite_differences():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(3, 2, 3, 3))
    gain = rng.uniform(0.5, 1.5, (3, 1, 1, 1))
    R = rng.normal(size=w.shape)
    gw, gg = std_weight_backward(w.astype(np.float32), gain.astype(np.float32), R.astype(np.float32), 1e-6)
    eps = 1e-6
    num_w = np.zeros_like(w)
    for i in range(w.size):
        d = np.zeros(w.size)
        d[i] = eps
        d = d.reshape(w.shape)
        num_w.flat[i] = ((std_ref(w + d, gain) * R).sum() - (std_ref(w - d, gain) * R).sum()) / (2 * eps)
    num_g = np.zeros_like(gain)
    for i in range(gain.size):
        d = np.zeros(gain.size)
        d[i] = eps
        d = d.reshape(gain.shape)
        num_g.flat[i] = ((std_ref(w, gain + d) * R).sum() - (std_ref(w, gain - d) * R).sum()) / (2 * eps)
    np.testing.assert_allclose(gw, num_w, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gg, num_g, rtol=1e-4, atol=1e-5)


def _node(spec, cls, pred):
    from snnsim.spec import walk
    layer = next(l for l in walk(spec.layers[0].sublayers()) if pred(l))
    return cls(layer)


def test_upsample_and_layer_scale_nodes():
    """Both are linear: the backward is the exact adjoint (upsample) / exact gradient (gamma, input)."""
    s = tiny(2)
    rng = np.random.default_rng(2)
    up = _node(s, UpsampleNode, lambda l: l.kind == "upsample")
    x = rng.normal(size=(2,) + tuple(up.layer.in_shape)).astype(np.float32)
    ctx = Ctx(1, 2, {})
    y = up.forward(Act(x, False), ctx).x
    g = rng.normal(size=y.shape).astype(np.float32)
    gx = up.backward(g, ctx, True)
    assert abs(float((y * g).sum()) - float((x * gx).sum())) < 1e-4
    s2 = up.layer.scale_factor
    np.testing.assert_array_equal(y[:, :, ::s2, ::s2], x)

    ls = _node(s, LayerScaleNode, lambda l: l.kind == "layer_scale")
    C = ls.layer.in_shape[0]
    gamma = rng.normal(size=(1, C, 1, 1)).astype(np.float32)
    params = {ls.layer.weight_key: gamma}
    ctx = Ctx(1, 2, params, {})
    x = rng.normal(size=(2,) + tuple(ls.layer.in_shape)).astype(np.float32)
    y = ls.forward(Act(x, False), ctx).x
    np.testing.assert_allclose(y, x * gamma, rtol=1e-6)
    g = rng.normal(size=y.shape).astype(np.float32)
    gx = ls.backward(g, ctx, True)
    np.testing.assert_allclose(gx, g * gamma, rtol=1e-6)
    np.testing.assert_allclose(ctx.grads[ls.layer.weight_key], (g * x).sum(axis=(0, 2, 3)).reshape(1, C, 1, 1),
                               rtol=1e-5)


@pytest.fixture
def smooth_quant(monkeypatch):
    """Quant as the identity (forward and backward), so the whole graph is smooth and central differences are
    exact up to float32 round-off. Quant's own straight-through window [0, 1] is tested in test_train_grads."""
    fwd0, bwd0 = NeuronNode.forward, NeuronNode.backward

    def fwd(self, a, ctx):
        if self.layer.neuron != "threshold":
            return fwd0(self, a, ctx)
        if ctx.store:
            ctx.save(self.name)
        return Act(np.array(a.x, np.float32), False)

    def bwd(self, g, ctx, need_gx):
        if self.layer.neuron != "threshold":
            return bwd0(self, g, ctx, need_gx)
        ctx.take(self.name)
        return g

    monkeypatch.setattr(NeuronNode, "forward", fwd)
    monkeypatch.setattr(NeuronNode, "backward", bwd)


KEYS = ["stem.down1.0.weight", "stem.down1.0.gain", "subnet1.level1.blocks.0.pwconv1.weight",
        "subnet0.level1.blocks.1.pwconv2_reuse.weight", "subnet0.level2.blocks.1.dwconv2_reuse.weight",
        "subnet1.level0.blocks.0.gamma", "subnet1.level0.fusion.up.encode_conv.weight",
        "subnet1.level1.fusion.down.encode_bn.weight", "subnet1.alpha0", "subnet1.alpha2", "subnet2.alpha1",
        "cls_blocks.2.classifier2.weight", "cls_blocks.0.classifier.0.gain"]


def test_trev_gradients_finite_differences(smooth_quant):
    """Directional central differences of the compound loss (float32 forward) per parameter tensor, shared
    modules perturbed in every copy (the method syncs copies to the original), alphas included."""
    s = tiny(3)
    p = random_weights(s, 0)
    x, y = batch()
    m = TRevBPTT(s)
    loss = make_loss("compound")
    res = m.loss_and_grads({k: v.copy() for k, v in p.items()}, x, y, 3, loss, update_stats=False)
    rng = np.random.default_rng(3)
    for key in KEYS:
        assert key in m.trainable, key
        d = rng.normal(size=p[key].shape).astype(np.float32)
        d /= np.linalg.norm(d)
        h = np.float32(1e-2) * max(1.0, float(np.abs(p[key]).max()))
        vals = []
        for sgn in (1, -1):
            q = {k: v.copy() for k, v in p.items()}
            q[key] = (p[key] + sgn * h * d).astype(np.float32)
            vals.append(m.loss_and_grads(q, x, y, 3, loss, update_stats=False).loss)
        num = (vals[0] - vals[1]) / (2 * h)
        ana = float((res.grads[key].astype(np.float64) * d).sum())
        assert abs(num - ana) <= 1e-2 * abs(num) + 3e-5, (key, num, ana)


def test_shared_copies_sum_and_stay_equal():
    s = tiny(3)
    p = random_weights(s, 0)
    x, y = batch()
    m = TRevBPTT(s)
    orig, c1, c2 = ("subnet0.level0.blocks.1.pwconv2_reuse.weight", "subnet1.level0.blocks.1.pwconv2_reuse.weight",
                    "subnet2.level0.blocks.1.pwconv2_reuse.weight")
    assert orig in m.trainable and c1 not in m.trainable and m.copies[c1] == orig
    from snnsim.train.optim import make_optimizer
    opt = make_optimizer("adamw", m.trainable, 0.9, 0.01)
    m.step(p, x, y, 3, make_loss("compound"), opt, 1e-2)
    np.testing.assert_array_equal(p[orig], p[c1])
    np.testing.assert_array_equal(p[orig], p[c2])


def test_alpha_clamp_gradient():
    """|alpha| < 1e-3 is held at sign(alpha) * 1e-3 (no gradient); the sign of a negative alpha is kept."""
    s = tiny(2)
    p = random_weights(s, 0)
    p["subnet1.alpha0"][0, 0] = 1e-4
    p["subnet1.alpha0"][0, 1] = -0.4
    x, y = batch()
    m = TRevBPTT(s)
    r = m.loss_and_grads(p, x, y, 2, make_loss("compound"))
    g = r.grads["subnet1.alpha0"]
    assert g[0, 0, 0, 0] == 0 and g[0, 1, 0, 0] != 0
    assert np.all(r.grads["subnet0.alpha0"] == 0)          # column 0 has no c[t-1]


@pytest.mark.parametrize("states", ["cache", "invert"])
def test_reversible_gradients_equal_bptt(states):
    s = tiny(3)
    p = random_weights(s, 0)
    x, y = batch(6, seed=4)
    loss = make_loss("compound")
    a = TRevBPTT(s).loss_and_grads({k: v.copy() for k, v in p.items()}, x, y, 3, loss)
    b = TRevReversible(s, states=states).loss_and_grads({k: v.copy() for k, v in p.items()}, x, y, 3, loss)
    assert a.loss == b.loss
    np.testing.assert_array_equal(a.outputs, b.outputs)
    for k, ga in a.grads.items():
        gb = b.grads[k]
        assert np.linalg.norm(ga - gb) <= 1e-5 * max(np.linalg.norm(ga), 1e-6), k


def test_reversible_memory_flat_in_columns_bptt_grows():
    """T=2 vs T=4 columns (same per-column shapes): BPTT's peak grows with every column; the reversible
    backward's does not ('invert': identical; 'cache': by exactly the cached states c_l[t])."""
    x, y = batch(8)
    loss = make_loss("ce", reduce="last")
    peaks = {}
    for cols in (2, 4):
        s = tiny(cols, heads=1)
        p = random_weights(s, 0)
        for name, m in (("bptt", TRevBPTT(s)), ("cache", TRevReversible(s)),
                        ("invert", TRevReversible(s, states="invert"))):
            peaks[name, cols] = m.loss_and_grads(p, x, y, cols, loss).memory["peak_bytes"]
    state_bytes = 8 * (2 * 8 * 8 + 4 * 4 * 4 + 4 * 4 * 4) * 4          # one column's c_l, batch 8, float32
    assert peaks["invert", 4] == peaks["invert", 2]
    assert peaks["cache", 4] - peaks["cache", 2] == 2 * state_bytes
    assert peaks["bptt", 4] - peaks["bptt", 2] > 10 * state_bytes
    assert peaks["bptt", 4] > 4 * peaks["cache", 4]


@pytest.mark.parametrize("method", ["bptt", "reversible"])
def test_train_loop_on_trevsnn(method, tmp_path):
    """``snnsim train``'s loop picks the T-RevSNN methods; the trained weights (shared copies equal) load and run
    in the inference engine."""
    from snnsim.train.loop import TrainConfig, init_params, train, write_weights
    from snnsim.weights import load_weights

    s = tiny(2)
    x, y = batch(16, seed=5)
    p = init_params(s, 0)
    cfg = TrainConfig(method=method, epochs=1, batch_size=8, loss="compound", lr=1e-2)
    res = train(s, p, cfg, data=(x, y, x[:8], y[:8]))
    assert len(res.history) == 1 and np.isfinite(res.history[0]["loss"])
    assert np.array_equal(p["subnet0.level0.blocks.1.pwconv2_reuse.weight"],
                          p["subnet1.level0.blocks.1.pwconv2_reuse.weight"])
    write_weights(s, p, tmp_path / "w.npz")
    from snnsim.engine import run
    from snnsim.network import build_network

    net = build_network(s, load_weights(s, tmp_path / "w.npz"))       # checks the shared keys are equal
    assert run(net, x[:4]).readout.shape == (4, 3)
