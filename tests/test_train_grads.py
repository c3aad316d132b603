"""Training backward kernels against finite differences (float64 central differences on float64 reference
forwards), plus the bookkeeping around them: the static-input shortcut, running statistics, memory ledger.

Spikes are step functions, so a neuron layer is checked on the smooth network its surrogate differentiates
exactly: S = primitive(H - threshold) in the output and in the reset (``smooth=True`` in the kernel). The
Heaviside forms (and detach_reset) are checked against PyTorch autograd in test_train_reference.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from snnsim import kernels as K
from snnsim.layers import parse_spec
from snnsim.train import grads as G
from snnsim.train.bptt import BPTT
from snnsim.train.forward import Act, Ctx, back_nodes, expand, run_nodes
from snnsim.train.surrogate import Surrogate, parse_surrogate, surrogate_grad, surrogate_primitive
from snnsim.errors import InputError

EPS = 1e-6


def fd(f, x, idx):
    """Central differences of scalar f at the given flat indices of x (float64, modified in place)."""
    out = []
    flat = x.reshape(-1)
    for i in idx:
        old = flat[i]
        flat[i] = old + EPS
        fp = f()
        flat[i] = old - EPS
        fm = f()
        flat[i] = old
        out.append((fp - fm) / (2 * EPS))
    return np.array(out)


def pick(rng, arr, n=12):
    return rng.choice(arr.size, size=min(n, arr.size), replace=False)


# ----------------------------------------------------------------------------- float64 reference layers
def conv_ref(x, w, b, stride, pad, groups):
    O, Cg, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    win = np.lib.stride_tricks.sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::stride[0], ::stride[1]]
    Og = O // groups
    out = np.concatenate([np.einsum("nchwij,ocij->nohw", win[:, g * Cg:(g + 1) * Cg], w[g * Og:(g + 1) * Og])
                          for g in range(groups)], axis=1)
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1)
    return out


def bn_ref(x, gamma, beta, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    m = x.mean(axis=axes, keepdims=True)
    v = x.var(axis=axes, keepdims=True)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - m) / np.sqrt(v + eps) * gamma.reshape(shape) + beta.reshape(shape)


def pool_ref(x, k, s, p, op):
    N, C, H, W = x.shape
    fill = -np.inf if op == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=fill)
    HO, WO = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    out = np.zeros((N, C, HO, WO))
    for i in range(HO):
        for j in range(WO):
            win = xp[:, :, i * s:i * s + k, j * s:j * s + k]
            out[:, :, i, j] = win.max(axis=(2, 3)) if op == "max" else win.sum(axis=(2, 3)) / (
                k * k if op == "avg" else 1)
    return out


# ----------------------------------------------------------------------------- stateless layers
STATELESS = """
name: stateless
input_shape: [4, 9, 9]
timesteps: 3
layers:
  - {name: c1, type: conv2d, out_channels: 6, kernel_size: 3, stride: 2, padding: 1, groups: 2}
  - {name: bn1, type: batchnorm2d}
  - {name: c2, type: conv2d, out_channels: 6, kernel_size: [3, 2], padding: [1, 1], groups: 6, bias: false}
  - {name: p1, type: maxpool2d, kernel_size: 2, stride: 1}
  - {name: p2, type: avgpool2d, kernel_size: 2, padding: 1}
  - {name: p3, type: sumpool2d, kernel_size: 2}
  - {name: s1, type: scale}
  - {name: flatten, type: flatten}
  - {name: fc, type: linear, out_features: 5}
  - {name: bn2, type: batchnorm1d}
"""


def stateless_ref(p, x):
    h = conv_ref(x, p["c1.weight"], p["c1.bias"], (2, 2), (1, 1), 2)
    h = bn_ref(h, p["bn1.weight"], p["bn1.bias"])
    h = conv_ref(h, p["c2.weight"], None, (1, 1), (1, 1), 6)
    h = pool_ref(h, 2, 1, 0, "max")
    h = pool_ref(h, 2, 2, 1, "avg")
    h = pool_ref(h, 2, 2, 0, "sum")
    h = h * p["s1.scale"]
    h = h.reshape(len(h), -1) @ p["fc.weight"].T + p["fc.bias"]
    return bn_ref(h, p["bn2.weight"], p["bn2.bias"])


def _random_params(spec, rng):
    from snnsim.train.loop import init_params
    p = init_params(spec, 1)
    for k in p:
        if k.endswith(("weight", "bias", "scale")):
            p[k] = (p[k] + rng.normal(0, 0.3, p[k].shape)).astype(np.float32)
    return p


def test_stateless_layers_match_finite_differences():
    rng = np.random.default_rng(0)
    spec = parse_spec(yaml.safe_load(STATELESS))
    params = _random_params(spec, rng)
    x = rng.normal(size=(3, 4, 9, 9)).astype(np.float32)
    R = rng.normal(size=(3, 5))

    def loss_fn(out, y):        # out [T, B, 5]; the network is static, so every t is the same
        return float(np.sum(R * out.mean(axis=0))), np.broadcast_to(R / out.shape[0], out.shape).astype(np.float32)

    T = spec.timesteps
    res = BPTT(spec).loss_and_grads(dict(params), x, np.zeros(3, int), T, loss_fn)
    p64 = {k: v.astype(np.float64) for k, v in params.items()}
    x64 = x.astype(np.float64)
    ref_out = stateless_ref(p64, x64)
    np.testing.assert_allclose(res.outputs[0], ref_out, rtol=1e-4, atol=1e-4)
    for key, g in res.grads.items():
        idx = pick(rng, g)
        num = fd(lambda: float(np.sum(R * stateless_ref(p64, x64))), p64[key], idx)
        np.testing.assert_allclose(g.reshape(-1)[idx], num, rtol=2e-3, atol=2e-4, err_msg=key)
    assert set(res.grads) == {"c1.weight", "c1.bias", "bn1.weight", "bn1.bias", "c2.weight", "s1.scale",
                              "fc.weight", "fc.bias", "bn2.weight", "bn2.bias"}


def test_batchnorm_running_statistics_once_per_step_over_T_and_B():
    rng = np.random.default_rng(1)
    spec = parse_spec(yaml.safe_load(STATELESS))
    params = _random_params(spec, rng)
    x = rng.normal(size=(3, 4, 9, 9)).astype(np.float32)
    p = dict(params)
    BPTT(spec).loss_and_grads(p, x, np.zeros(3, int), 3, lambda o, y: (0.0, np.zeros_like(o)))
    h = conv_ref(x.astype(np.float64), params["c1.weight"], params["c1.bias"], (2, 2), (1, 1), 2)
    n = 3 * h.shape[0] * h.shape[2] * h.shape[3]            # T copies of a static input x B x H x W
    mean = h.mean(axis=(0, 2, 3))
    var = h.var(axis=(0, 2, 3)) * n / (n - 1)
    np.testing.assert_allclose(p["bn1.running_mean"], 0.9 * params["bn1.running_mean"] + 0.1 * mean, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(p["bn1.running_var"], 0.9 * params["bn1.running_var"] + 0.1 * var, rtol=1e-5)


# ----------------------------------------------------------------------------- neurons (smooth surrogate network)
MODES = {"if": 0, "lif": 1, "plif": 2, "li": 3}


def smooth_neuron(x, mode, factor, decay_input, v_r, thr, hard, sur, stateless=False, delay=False, frozen=None):
    """Float64 forward of one neuron layer with S = primitive(H - thr); returns out [T, M], h [T, M].
    ``delay``: snnTorch's delayed subtract reset, H[t] = charge(H[t-1]) - thr * S[t-1], the state being H;
    ``frozen`` [T, M] replaces thr * S[t-1] by constants (a detached reset)."""
    T, M = x.shape
    v = np.full(M, v_r)
    out, hs = np.zeros((T, M)), np.zeros((T, M))
    prim = np.vectorize(lambda u: surrogate_primitive(u, sur.sid, sur.alpha))
    for t in range(T):
        if stateless:
            v = np.full(M, v_r)
        if mode == 0:
            h = v + x[t]
        elif mode == 2:
            h = v + (x[t] - (v - v_r)) * factor if decay_input else v - (v - v_r) * factor + x[t]
        else:
            h = v + (x[t] - (v - v_r)) / factor if decay_input else v - (v - v_r) / factor + x[t]
        if delay and t > 0:
            h = h - (frozen[t] if frozen is not None else prim(hs[t - 1] - thr) * thr)
        hs[t] = h
        if mode == 3:
            out[t] = h
            v = h
            continue
        s = prim(h - thr)
        out[t] = s
        v = h if delay else (s * v_r + (1 - s) * h if hard else h - s * thr)
    return out, hs


CASES = [("lif", True, True, "sigmoid:4"), ("lif", False, False, "atan:2"), ("if", True, False, "triangle:0.5"),
         ("plif", True, True, "sigmoid:4"), ("plif", False, False, "atan:2"), ("plif", True, False, "triangle:0.5"),
         ("li", True, True, "sigmoid:4"), ("lif", True, True, "atan:2")]


@pytest.mark.parametrize("kind,hard,decay_input,sur", CASES)
@pytest.mark.parametrize("stateless", [False, True], ids=["stateful", "stateless"])
def test_neuron_backward_matches_finite_differences(kind, hard, decay_input, sur, stateless):
    rng = np.random.default_rng(2)
    sur = parse_surrogate(sur)
    T, M = 5, 40
    x = rng.normal(0.8, 0.8, size=(T, M))
    w = -0.4                                    # plif: q = sigmoid(w)
    mode = MODES[kind]
    v_r, thr = (0.0 if hard else 0.0), 1.0
    if hard:
        v_r = -0.1
    G_out = rng.normal(size=(T, M))

    def factor_of(w_):
        return 1 / (1 + np.exp(-w_)) if kind == "plif" else 2.5

    def loss(w_=None):
        out, _ = smooth_neuron(x, mode, factor_of(w if w_ is None else w_), decay_input, v_r, thr, hard, sur,
                               stateless)
        return float(np.sum(G_out * out))

    _, h = smooth_neuron(x, mode, factor_of(w), decay_input, v_r, thr, hard, sur, stateless)
    gx = np.empty((T, M), np.float32)
    gq = G.neuron_backward_seq(G_out.astype(np.float32), h.astype(np.float32), x.astype(np.float32), False, mode,
                               np.float32(factor_of(w)), decay_input, np.float32(v_r), np.float32(thr), hard,
                               False, False, False, np.float32(0), np.float32(0), stateless, sur.sid, sur.alpha, False,
                               True, gx)
    idx = np.arange(T * M)
    num = fd(loss, x, idx)
    np.testing.assert_allclose(gx.reshape(-1), num, rtol=1e-3, atol=2e-5)
    if kind == "plif":
        q = factor_of(w)
        num_w = (loss(w + EPS) - loss(w - EPS)) / (2 * EPS)
        np.testing.assert_allclose(gq * q * (1 - q), num_w, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("kind,decay_input,sur", [("lif", False, "atan:2"), ("lif", True, "sigmoid:4"),
                                                  ("if", True, "triangle:0.5"), ("plif", False, "atan:2")])
@pytest.mark.parametrize("detach", [False, True], ids=["through-reset", "detach-reset"])
def test_delayed_reset_backward_matches_finite_differences(kind, decay_input, sur, detach):
    """The delayed subtract reset (snnTorch's default Leaky): H[t] = charge(H[t-1]) - thr * S[t-1]. Without
    detach the gradient is the finite difference of the smooth forward; with detach (snnTorch detaches its
    reset) the same forward with the reset term frozen at its value."""
    rng = np.random.default_rng(5)
    sur = parse_surrogate(sur)
    T, M, thr, w = 6, 40, 1.0, -0.4
    x = rng.normal(0.8, 0.8, size=(T, M))
    G_out = rng.normal(size=(T, M))
    mode = MODES[kind]
    factor = (lambda w_: 1 / (1 + np.exp(-w_))) if kind == "plif" else (lambda w_: 2.5)
    prim = np.vectorize(lambda u: surrogate_primitive(u, sur.sid, sur.alpha))
    _, h0 = smooth_neuron(x, mode, factor(w), decay_input, 0.0, thr, False, sur, delay=True)
    frozen = np.vstack([np.zeros((1, M)), prim(h0[:-1] - thr) * thr])     # the reset each step subtracts

    def forward(x_, w_):
        return smooth_neuron(x_, mode, factor(w_), decay_input, 0.0, thr, False, sur, delay=True,
                             frozen=frozen if detach else None)[0]

    def loss(x_, w_=w):
        return float(np.sum(G_out * forward(x_, w_)))

    gx = np.empty((T, M), np.float32)
    gq = G.neuron_backward_seq(G_out.astype(np.float32), h0.astype(np.float32), x.astype(np.float32), False, mode,
                               np.float32(factor(w)), decay_input, np.float32(0), np.float32(thr), False, True,
                               False, False, np.float32(0), np.float32(0), False, sur.sid, sur.alpha, detach, True,
                               gx)
    num = fd(lambda: loss(x), x, np.arange(T * M))
    np.testing.assert_allclose(gx.reshape(-1), num, rtol=1e-3, atol=2e-5)
    if kind == "plif":
        q = factor(w)
        num_w = (loss(x, w + EPS) - loss(x, w - EPS)) / (2 * EPS)
        np.testing.assert_allclose(gq * q * (1 - q), num_w, rtol=1e-3, atol=1e-5)


def test_quant_straight_through_window():
    """threshold neuron (T-RevSNN Quant): dS/dx = 1 inside the inclusive clip window, 0 outside."""
    x = np.array([[-0.5, 0.0, 0.3, 0.5, 1.0, 1.7]], np.float32)
    gout = np.full_like(x, 2.0)
    h = np.clip(x, 0, 1)
    gx = np.empty_like(x)
    G.neuron_backward_seq(gout, h, x, False, 4, np.float32(1), True, np.float32(0), np.float32(0.5), True, False,
                          False, True, np.float32(0), np.float32(1), True, 0, 4.0, False, False, gx)
    np.testing.assert_array_equal(gx, [[0, 2, 2, 2, 2, 0]])


@pytest.mark.parametrize("name", ["sigmoid", "atan", "triangle"])
def test_surrogate_is_derivative_of_primitive(name):
    s = parse_surrogate(f"{name}:1.7")
    for u in np.linspace(-1.5, 1.5, 31):
        num = (surrogate_primitive(u + 1e-6, s.sid, s.alpha) - surrogate_primitive(u - 1e-6, s.sid, s.alpha)) / 2e-6
        assert abs(surrogate_grad(np.float32(u), s.sid, s.alpha) - num) < 1e-4 * max(1, abs(num))


def test_sigmoid_row_matches_numpy_float32():
    """The vectorised sigmoid surrogate (its own float32 exp) against SpikingJelly's float32 expression
    alpha (1 - s) s with NumPy's exp, over the float32 range including where exp under/overflows. They may
    differ by the rounding of exp: a few ulp of the value, or of 1 where 1 - s cancels (alpha * 2^-22)."""
    from numba import njit

    from snnsim.train.surrogate import sigmoid_grad_row

    @njit
    def row(h, thr, alpha, sg, bits):
        sigmoid_grad_row(h, thr, alpha, sg, bits)

    rng = np.random.default_rng(3)
    h = np.concatenate([rng.uniform(-3, 5, 20000), rng.uniform(-60, 60, 5000), [-1e30, -100, -30, 1, 40, 1e30],
                        np.linspace(-1, 3, 4001)]).astype(np.float32)
    one = np.float32(1)
    with np.errstate(over="ignore"):
        for alpha in (4.0, 1.7, 25.0):
            sg = np.empty_like(h)
            row(h, np.float32(1.0), alpha, sg, np.empty(h.size, np.int32))
            a = np.float32(alpha)
            s = one / (one + np.exp(-(a * (h - one))))
            ref = (one - s) * s * a
            tol = np.maximum(4 * np.spacing(ref), a * np.float32(2.0 ** -22))
            assert np.all(np.abs(sg - ref) <= tol), alpha
            assert np.all(sg >= 0) and np.all(np.isfinite(sg))


def test_parse_surrogate_errors():
    assert parse_surrogate("atan") == Surrogate("atan", 2.0)
    with pytest.raises(InputError, match="unknown surrogate"):
        parse_surrogate("relu")
    with pytest.raises(InputError, match="positive"):
        parse_surrogate("sigmoid:-1")


# ----------------------------------------------------------------------------- whole-graph bookkeeping
NET = """
name: small
input_shape: [1, 8, 8]
timesteps: 4
layers:
  - {name: conv1, type: conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  - {name: bn1, type: batchnorm2d}
  - {name: sn1, type: lif}
  - {name: pool, type: maxpool2d, kernel_size: 2}
  - name: res
    type: residual
    body:
      - {name: conv, type: conv2d, out_channels: 4, kernel_size: 3, padding: 1}
      - {name: sn, type: lif, v_reset: null}
  - {name: flatten, type: flatten}
  - {name: fc, type: linear, out_features: 3}
  - {name: sn2, type: lif}
"""


def _small(rng):
    spec = parse_spec(yaml.safe_load(NET))
    params = _random_params(spec, rng)
    params["conv1.weight"] *= 3
    params["fc.weight"] *= 4
    return spec, params


def test_static_prefix_equals_repeated_input():
    """Direct encoding computes conv1+bn1 once and sums their gradient over T; feeding the T copies
    explicitly must give the same gradients (batch norm over T x B of identical copies)."""
    rng = np.random.default_rng(3)
    spec, params = _small(rng)
    x = rng.random((6, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 6)
    from snnsim.train.losses import make_loss
    bp = BPTT(spec)
    a = bp.loss_and_grads(dict(params), x, y, 4, make_loss("ce"))
    grads = {k: np.zeros_like(params[k]) for k in bp.trainable}
    ctx = Ctx(4, 6, dict(params), grads)
    out = run_nodes(bp.nodes, Act(expand(Act(x, True), 4), False), ctx)
    loss, g = make_loss("ce")(out.x.reshape(4, 6, 3), y)
    back_nodes(bp.nodes, g.reshape(24, 3), ctx, False)
    assert abs(loss - a.loss) < 1e-6
    for k in grads:
        np.testing.assert_allclose(a.grads[k], grads[k], rtol=1e-4, atol=1e-6, err_msg=k)


def test_memory_ledger_counts_stored_tensors_per_layer():
    rng = np.random.default_rng(4)
    spec, params = _small(rng)
    x = rng.random((8, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    from snnsim.train.losses import make_loss
    reps = {T: BPTT(spec).loss_and_grads(dict(params), x, y, T, make_loss("ce")).memory for T in (2, 4, 8)}
    per = reps[4]["per_layer_peak"]
    B = 8
    assert per["sn1"] == 4 * B * 4 * 8 * 8 * 4                 # H, float32, [T, B, 4, 8, 8]
    assert per["res.conv"] == 4 * B * 4 * 4 * 4 * 1            # binary spikes stored as uint8
    assert per["pool"] == 4 * B * 4 * 4 * 4                    # argmax offsets, uint8
    assert per["conv1"] == B * 1 * 8 * 8 * 4                   # static input: once, not T times
    # what BPTT holds grows linearly with T
    held = {T: r["peak_bytes"] for T, r in reps.items()}
    assert held[8] - held[4] == pytest.approx(2 * (held[4] - held[2]), rel=0.01)


SHARED_INPUT_NET = """
name: shared
input_shape: [1, 8, 8]
layers:
  - {name: conv1, type: conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  - {name: sn1, type: lif}
  - name: res
    type: residual
    body:
      - {name: conv, type: conv2d, out_channels: 6, kernel_size: 3, stride: 2, padding: 1}
      - {name: sn, type: lif}
    shortcut:
      - {name: down, type: conv2d, out_channels: 6, kernel_size: 1, stride: 2}
      - {name: down_sn, type: lif}
  - {name: flatten, type: flatten}
  - {name: fc, type: linear, out_features: 3}
  - {name: sn_out, type: lif}
"""


def test_residual_branches_store_their_common_input_once():
    """A residual block whose body and shortcut both start with a conv (a SEW-ResNet's downsampling block) stores
    the block's input once: both convs hold the same packed array, counted once (for the body's conv, which
    stores it first), and the step holds exactly one copy less than two: T x B x 4 x 8 x 8 bytes."""
    rng = np.random.default_rng(5)
    spec = parse_spec(yaml.safe_load(SHARED_INPUT_NET))
    params = _random_params(spec, rng)
    params["conv1.weight"] *= 3
    x = rng.random((8, 1, 8, 8)).astype(np.float32)
    bp = BPTT(spec)
    ctx = Ctx(4, 8, dict(params), None)
    run_nodes(bp.nodes, Act(x, True), ctx)
    body, short = ctx.tape["res.conv"]["x"], ctx.tape["res.down"]["x"]
    assert body is short and body.dtype == np.uint8 and body.shape == (32, 4, 8, 8)
    assert 0 < np.count_nonzero(body) < body.size, "the spikes are silent or saturated: the test would be vacuous"
    per = ctx.ledger.report()["per_layer_peak"]
    assert per["res.conv"] == 4 * 8 * 4 * 8 * 8 and "res.down" not in per


PASS_THROUGH_NET = """
name: passthrough
input_shape: [6]
layers:
  - {name: fc1, type: linear, out_features: 5}
  - name: res
    type: residual
    body:
      - {name: flat, type: flatten}
  - {name: fc2, type: linear, out_features: 3}
"""


@pytest.mark.parametrize("B", [4, 70000])             # NumPy-sized and split between threads
def test_residual_sums_branches_and_their_gradients(B):
    """A residual adds its branches, and in the backward their input gradients (the body's in place when it
    is a new array): with an identity body (a flatten of a flat input) and no shortcut, y = 2 x and the input
    gradient is 2 g, the incoming gradient left as it was (the body hands back a view of it, which must not be
    summed into)."""
    spec = parse_spec(yaml.safe_load(PASS_THROUGH_NET))
    res = BPTT(spec).nodes[1]
    rng = np.random.default_rng(6)
    x = rng.standard_normal((B, 5)).astype(np.float32)
    ctx = Ctx(1, B, {}, {})
    y = res.forward(Act(x, False), ctx)
    np.testing.assert_array_equal(y.x, 2 * x)
    g = rng.standard_normal((B, 5)).astype(np.float32)
    g0 = g.copy()
    gx = res.backward(g, ctx, True)
    np.testing.assert_array_equal(gx, 2 * g0)
    np.testing.assert_array_equal(g, g0)


@pytest.mark.parametrize("shape", [(3, 4, 8, 8), (2, 3, 7, 9), (64, 32, 28, 28)], ids=["even", "odd", "split"])
def test_maxpool_2x2_with_argmax_matches_torch(shape):
    """The one-pass 2x2 max pooling with offsets (training forward) against torch's max_pool2d indices, on
    binary spikes (ties everywhere: the first maximum wins) and on graded values; the values equal the engine's
    maxpool2d bit for bit."""
    import torch

    rng = np.random.default_rng(5)
    for x in ((rng.random(shape) < 0.3).astype(np.float32), rng.standard_normal(shape).astype(np.float32)):
        y, idx = G.maxpool_2x2_with_argmax(x)
        ty, ti = torch.nn.functional.max_pool2d(torch.from_numpy(x), 2, 2, return_indices=True)
        ti = ti.numpy()
        H, W = shape[2], shape[3]
        HO, WO = H // 2, W // 2
        oi = np.arange(HO)[:, None]
        oj = np.arange(WO)[None, :]
        offsets = (ti // W - 2 * oi) * 2 + (ti % W - 2 * oj)
        np.testing.assert_array_equal(idx, offsets)
        np.testing.assert_array_equal(y, ty.numpy())
        np.testing.assert_array_equal(y, K.maxpool2d(x, 2, 2, 2, 2, 0, 0))


def test_maxpool_argmax_is_first_maximum():
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 1, 1] = 1
    x[0, 0, 0, 3] = 1
    x[0, 0, 1, 2] = 1
    idx = G.maxpool_argmax(x, 2, 2, 2, 2, 0, 0, 2, 2)
    assert idx[0, 0].tolist() == [[3, 1], [0, 0]]
    np.testing.assert_array_equal(K.maxpool2d(x, 2, 2, 2, 2, 0, 0)[0, 0], [[1, 1], [0, 0]])


@pytest.mark.parametrize("limit", [1 << 18, 3000, 10], ids=["default", "small-chunks", "one-image-chunks"])
@pytest.mark.parametrize("N,C,O,groups,H,W,kernel,pad", [
    (7, 6, 4, 1, 7, 9, (3, 3), (1, 1)), (5, 4, 6, 2, 6, 5, (3, 2), (2, 0)), (6, 3, 5, 1, 5, 4, (5, 3), (0, 1)),
    (4, 8, 8, 4, 9, 9, (1, 1), (1, 1))])
def test_conv_backward_wide_columns_match_torch(monkeypatch, limit, N, C, O, groups, H, W, kernel, pad):
    """Stride-1 weight gradients from the wide im2col (whole padded rows; gy's extra columns zero) against
    torch's autograd, float32 and uint8 inputs, odd shapes, groups, asymmetric padding, and chunks of several
    images, one image, and batches split in two parts."""
    import torch

    from snnsim.train.grads import conv as grads

    monkeypatch.setattr(grads, "_WIDE_COLS_MAX_ELEMS", limit)
    rng = np.random.default_rng(N * 10 + H)
    for binary in (False, True):
        x = (rng.random((N, C, H, W)) < 0.4).astype(np.float32)
        if not binary:
            x *= rng.standard_normal(x.shape).astype(np.float32)
        w = rng.standard_normal((O, C // groups) + kernel).astype(np.float32)
        xt, wt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
        y = torch.nn.functional.conv2d(xt, wt, None, 1, pad, 1, groups)
        gy = rng.standard_normal(tuple(y.shape)).astype(np.float32)
        y.backward(torch.from_numpy(gy))
        for split_all in (False, True):
            monkeypatch.setattr(grads, "TRAIN_SPLIT_MIN_WORK", 0 if split_all else 1 << 40)
            gw, gx = grads.conv2d_backward(x.astype(np.uint8) if binary else x, w, gy, 1, 1, pad[0], pad[1], groups,
                                           True)
            np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("N,C,O,groups,H,W,kernel,stride,pad", [
    (6, 5, 16, 1, 9, 7, (3, 3), 1, (1, 1)), (4, 6, 16, 2, 8, 9, (3, 2), 2, (1, 0)),
    (5, 3, 8, 1, 6, 6, (5, 5), 1, (2, 2)), (3, 8, 24, 1, 5, 11, (1, 1), 2, (0, 0))])
def test_conv_event_paths_match_torch(monkeypatch, N, C, O, groups, H, W, kernel, stride, pad):
    """Sparse inputs take the event forms: the forward scatter (conv2d_train_forward) and the weight gradient
    from the input's events (beside the input gradient by convolution, stride 1, or by columns, stride 2);
    against torch's conv2d and autograd for uint8 spikes and graded values, odd shapes, groups, strides, padding,
    one thread or two, with and without the input gradient."""
    import torch

    from snnsim.train.grads import conv as grads

    monkeypatch.setattr(grads, "events_cheaper", lambda *args: True)     # small layers: the rule says dense
    rng = np.random.default_rng(N * 7 + W)
    for graded in (False, True):
        x = (rng.random((N, C, H, W)) < 0.05).astype(np.float32)
        if graded:
            x *= rng.uniform(-2, 2, x.shape).astype(np.float32)
        w = rng.standard_normal((O, C // groups) + kernel).astype(np.float32)
        b = rng.standard_normal(O).astype(np.float32)
        xt, wt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
        y = torch.nn.functional.conv2d(xt, wt, torch.from_numpy(b), stride, pad, 1, groups)
        gy = rng.standard_normal(tuple(y.shape)).astype(np.float32)
        y.backward(torch.from_numpy(gy))
        stored = x if graded else x.astype(np.uint8)
        for need_gx, threshold in ((True, 1 << 40), (True, 0), (False, 0)):
            monkeypatch.setattr(grads, "TRAIN_SPLIT_MIN_WORK", threshold)
            np.testing.assert_allclose(grads.conv2d_train_forward(x, w, b, stride, stride, *pad, groups),
                                       y.detach().numpy(), rtol=1e-5, atol=1e-4)
            gw, gx = grads.conv2d_backward(stored, w, gy, stride, stride, pad[0], pad[1], groups, need_gx)
            np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=1e-4, atol=1e-4)
            if need_gx:
                np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-4, atol=1e-4)
            else:
                assert gx.shape[0] == 0


def test_event_rule_on_resnet_block_conv():
    """The ResNet block conv at batch 32 x T=4 with 4 % of its inputs spiking takes the event forms; at 40 %
    the dense ones (the inference kernel-form rule, kernels/cost.py)."""
    rng = np.random.default_rng(0)
    for p, events in ((0.04, True), (0.4, False)):
        x = (rng.random((128, 16, 32, 32)) < p).astype(np.uint8)
        assert G.events_cheaper(x, (16, 32, 32), (3, 3), (1, 1), 1) == events


@pytest.mark.parametrize("groups,need_gx,O,stride,kernel,pad", [
    (1, True, 16, 1, (3, 3), (1, 1)), (2, True, 16, 1, (3, 3), (1, 1)), (1, False, 16, 1, (3, 3), (1, 1)),
    (1, True, 16, 2, (3, 3), (1, 1)), (32, True, 32, 1, (3, 2), (1, 0)), (1, True, 8, 1, (1, 1), (0, 0)),
    (4, True, 8, 1, (5, 3), (2, 1))],
    ids=["3x3", "groups2", "no-gx", "stride2", "depthwise-3x2", "1x1", "groups4-5x3"])
@pytest.mark.parametrize("packed_sgemm", [True, False], ids=["packed", "openblas"])
def test_conv_backward_split_batch_matches_torch(monkeypatch, packed_sgemm, groups, need_gx, O, stride, kernel, pad):
    """A batch large enough to be split in two parts (and in several im2col chunks per part) gives torch's
    conv2d gradients, for uint8 spikes as stored for the backward pass; stride 1 takes the input gradient by
    a convolution with the flipped kernel, stride 2 by scattered columns; and the same bits when the work
    runs on one thread or two. Both products: kernels/gemm.py's (where the CPU has AVX-512) and OpenBLAS's."""
    import torch

    from snnsim.kernels import gemm, threads
    from snnsim.train.grads import conv2d_backward

    monkeypatch.setattr(gemm, "USE", packed_sgemm)

    rng = np.random.default_rng(4)
    x = (rng.random((16, 32, 32, 32)) < 0.2).astype(np.uint8)
    w = rng.standard_normal((O, 32 // groups) + kernel).astype(np.float32)
    xt, wt = torch.from_numpy(x.astype(np.float32)).requires_grad_(), torch.from_numpy(w).requires_grad_()
    y = torch.nn.functional.conv2d(xt, wt, None, stride, pad, 1, groups)
    gy = rng.standard_normal(tuple(y.shape)).astype(np.float32)
    y.backward(torch.from_numpy(gy))
    gw, gx = conv2d_backward(x, w, gy, stride, stride, pad[0], pad[1], groups, need_gx)
    np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=1e-4, atol=1e-2)
    if need_gx:
        np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-4, atol=1e-3)
    else:
        assert gx.shape[0] == 0
    one = threads.n_threads
    try:
        threads.n_threads = lambda: 1
        gw1, gx1 = conv2d_backward(x, w, gy, stride, stride, pad[0], pad[1], groups, need_gx)
    finally:
        threads.n_threads = one
    assert np.array_equal(gw1, gw) and np.array_equal(gx1, gx)


@pytest.mark.parametrize("n", [1000, (1 << 17) + 12345])          # the serial pass and the parallel chunks
def test_counts_u8_packs_and_counts_like_numpy(n):
    """counts_u8 packs spikes and spike counts (a SEW residual's sums: 0, 1, 2; any whole number up to 255) to
    uint8 exactly and counts the nonzeros in one pass (the conv's form rule reads the count); anything else is
    refused, wherever the odd value sits."""
    rng = np.random.default_rng(11)
    x = ((rng.random(n) < 0.07).astype(np.float32) + (rng.random(n) < 0.03)).astype(np.float32)
    x[-3:] = [0.0, 255.0, -0.0]
    assert set(np.unique(x)) == {0.0, 1.0, 2.0, 255.0}
    u8, nonzero = G.counts_u8(x)
    assert u8.dtype == np.uint8 and nonzero == np.count_nonzero(x)
    np.testing.assert_array_equal(u8.astype(np.float32), x)
    for bad in (0.5, 256.0, -1.0, np.nan, np.inf):
        for where in (0, n // 2, n - 1):
            y = x.copy()
            y[where] = bad
            u8, nonzero = G.counts_u8(y)
            assert nonzero == -1 and u8.size == 0, (bad, where)
