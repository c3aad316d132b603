"""Reversibility invariants of the two reversible regimes, as property tests (hypothesis).

Invertibility: inverse(forward(x)) equals x within a float32 bound derived from the magnitudes involved
(``U * |c[t]| / |alpha|`` for a T-RevSNN column, the re-simulation bound for a RevSNN block); every measured
error lies inside the inverse's own elementwise bound. Edge cases: zero input, alpha at the clamp, T=1.
Reconstruction error against depth and T: measured and bounded. Spike flips: a reconstructed value within
its error bound of a threshold is flagged; every actual flip is flagged (no silent flip); the inverse then falls
back to the cached state (exact) or raises. T=1 equals the first timestep; a T-RevSNN column with alpha = 0 and
no top-down input equals the stateless feed-forward network built from plain YAML layers.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snnsim.layers import trevsnn as trev
from snnsim import regimes  # noqa: E402
from snnsim.engine import run
from snnsim.errors import InputError, SnnsimError
from snnsim.weights import random_weights
from snnsim.network import build_network
from snnsim.layers.op import U
from snnsim.errors import SpikeFlipError
from snnsim.regimes import invert_block, invert_chain, reversible_ops
from snnsim.layers import parse_spec
from snnsim.weights import check_weights

f32 = np.float32
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


# ----------------------------------------------------------------------------- builders
def trev_raw(levels=3, T=3, c0=4, hw=8, fusion=True, heads=None, k=3):
    channels = [c0 * (i + 1) for i in range(levels)]
    strides = [1] + [2] * (levels - 1)
    if levels == 4:
        strides = [1, 2, 2, 1]
    return {"name": "trev_prop", "input_shape": [3, hw, hw], "timesteps": T, "readout": {"reduce": "mean"},
            "layers": [{"name": "trev", "type": "trevsnn", "columns": T, "channels": channels, "strides": strides,
                        "kernel_size": k, "hidden_ratio": 2, "fusion": fusion,
                        "stem": [{"kernel_size": 3, "stride": 1}], "heads": T if heads is None else heads,
                        "classes": 5}]}


def trev_net(raw, seed=0, alpha=None):
    spec = parse_spec(raw)
    w = random_weights(spec, seed)
    if alpha is not None:
        rng = np.random.default_rng(seed + 1)
        for k in w:
            if ".alpha" in k:
                w[k] = alpha(rng, w[k].shape).astype(f32)
    return build_network(spec, check_weights(spec, w))


def rev_raw(depth=2, C=4, hw=6, T=3, neuron="if"):
    fg = [{"name": "sn1", "type": neuron},
          {"name": "conv1.0", "type": "conv2d", "out_channels": C, "kernel_size": 3, "padding": 1, "bias": False},
          {"name": "conv1.1", "type": "batchnorm2d"},
          {"name": "sn2", "type": neuron},
          {"name": "conv2.0", "type": "conv2d", "out_channels": C, "kernel_size": 3, "padding": 1, "bias": False},
          {"name": "conv2.1", "type": "batchnorm2d"}]
    layers = [{"name": f"layer1.reversible_blocks.{i}", "type": "reversible", "f": fg, "g": fg} for i in range(depth)]
    return {"name": "rev_prop", "input_shape": [2 * C, hw, hw], "timesteps": T, "encoding": "direct", "layers": layers}


def rev_net(raw, seed=0, g_gain=1.0):
    spec = parse_spec(raw)
    w = random_weights(spec, seed)
    for k in w:
        if ".g_block.conv2.1.weight" in k:
            w[k] = (w[k] * f32(g_gain)).astype(f32)
    return build_network(spec, check_weights(spec, w))


def rev_forward(net, x, T):
    ops = reversible_ops(net)
    res = run(net, x, timesteps=T, probes=[op.name for op in ops])
    ins = [res.trace.probes[op.name]["input"] for op in ops]
    outs = [res.trace.probes[op.name]["output"] for op in ops]
    return ops, ins, outs


# ============================================================================ T-RevSNN: invertibility
ALPHAS = {
    "init": lambda rng, s: rng.uniform(0.3, 0.8, s),
    "signed": lambda rng, s: rng.choice([-1, 1], s) * rng.uniform(0.05, 1.5, s),
    "clamp": lambda rng, s: rng.choice([-1, 1], s) * rng.uniform(0, 1e-5, s) + 1e-9,   # clamped to +-1e-3
    "small": lambda rng, s: rng.uniform(1e-3, 2e-2, s),
}


@settings(max_examples=40, **SETTINGS)
@given(levels=st.integers(1, 4), T=st.integers(2, 4), c0=st.sampled_from([2, 4]), hw=st.sampled_from([8, 16]),
       alpha=st.sampled_from(sorted(ALPHAS)), fusion=st.booleans(), seed=st.integers(0, 2 ** 16),
       zero=st.booleans())
def test_trev_column_inverse_within_float32_bound(levels, T, c0, hw, alpha, fusion, seed, zero):
    net = trev_net(trev_raw(levels, T, c0, hw, fusion), seed, ALPHAS[alpha])
    rng = np.random.default_rng(seed)
    img = np.zeros((2, 3, hw, hw), f32) if zero else rng.random((2, 3, hw, hw)).astype(f32)
    fw = regimes.forward(net, img)
    for t in range(1, T):
        cache = {l: c for (tt, l), c in fw.guard.items() if tt == t - 1}
        inv = regimes.invert_column(net, t, fw.x, fw.states[t], cache=cache)
        for l in range(levels):
            c_t, c_prev, a = fw.states[t][l], fw.states[t - 1][l], np.abs(fw.alphas[t][l])
            assert a.min() >= 1e-3 - 1e-12                           # the clamp
            err = np.abs(inv.states[l] - c_prev)
            if inv.fallback[l]:
                assert l in cache and err.max() == 0
                continue
            assert np.all(err <= inv.bounds[l]), f"t={t} l={l}: error above the inverse's own bound"
            # the bound is the float32 tolerance derived from the magnitudes: U |c[t]| / |alpha| + 4 U |c[t-1]|
            tol = 1.05 * (U * np.abs(c_t) / a + 4 * U * np.abs(inv.states[l])) + 1e-30
            assert np.all(inv.bounds[l] <= tol * 1.01 + 1e-36)


def test_trev_alpha_clamp_zero_and_t1_edges():
    a = trev.clamp_alpha(np.array([0.0, 1e-7, -1e-7, 5e-4, -0.3, 2.0], f32))
    np.testing.assert_array_equal(a, np.array([0.0, 1e-3, -1e-3, 1e-3, -0.3, 2.0], f32))   # sign(0) = 0 keeps 0
    net = trev_net(trev_raw(2, 2), alpha=lambda rng, s: np.zeros(s))
    fw = regimes.forward(net, np.ones((1, 3, 8, 8), f32))
    with pytest.raises(SnnsimError, match="alpha = 0"):
        regimes.invert_column(net, 1, fw.x, fw.states[1])
    # T = 1: one column, nothing to invert, nothing kept across timesteps
    net = trev_net(trev_raw(2, 2), 0)
    res = run(net, np.ones((2, 3, 8, 8), f32), timesteps=1)
    assert res.trace.regime == "oneshot" and not any(r.stateful for r in res.trace.layers)
    with pytest.raises(InputError, match="no previous column"):
        regimes.invert_column(net, 0, fw.x, fw.states[0])


@settings(max_examples=15, **SETTINGS)
@given(T=st.integers(2, 6), levels=st.integers(1, 3), seed=st.integers(0, 999))
def test_trev_chained_reconstruction_error_grows_as_one_over_alpha_and_stays_bounded(T, levels, seed):
    """Rebuilding c[0] from c[T-1] alone (chaining inverses) amplifies the error by 1/alpha per column
    (docs/papers.md, Reversal numerics); measured error <= bound <= the analytic sum over columns."""
    net = trev_net(trev_raw(levels, T, heads=1), seed, ALPHAS["init"])
    img = np.random.default_rng(seed).random((2, 3, 8, 8)).astype(f32)
    fw = regimes.forward(net, img, guard=False)
    c, b = fw.states[T - 1], None
    for t in range(T - 1, 0, -1):
        inv = regimes.invert_column(net, t, fw.x, c, bounds=b, on_risk="keep")
        c, b = inv.states, inv.bounds
        if inv.flagged:             # a spike may have flipped: the bound no longer applies (it is flagged)
            return
        amax = max(float((1 / np.abs(a)).max()) for a in fw.alphas[t])
        cmax = max(float(np.abs(s).max()) for col in fw.states for s in col)
        analytic = sum(6 * U * cmax * amax ** k for k in range(1, T - t + 1)) * 1.1 + 1e-30
        for l in range(levels):
            err = np.abs(c[l] - fw.states[t - 1][l])
            assert np.all(err <= b[l])
            assert b[l].max() <= analytic


# ============================================================================ RevSNN: invertibility
@settings(max_examples=40, **SETTINGS)
@given(depth=st.integers(1, 3), T=st.integers(1, 4), C=st.sampled_from([2, 4]), hw=st.sampled_from([4, 6]),
       neuron=st.sampled_from(["if", "lif"]), seed=st.integers(0, 2 ** 16), zero=st.booleans())
def test_revsnn_inverse_within_float32_bound(depth, T, C, hw, neuron, seed, zero):
    net = rev_net(rev_raw(depth, C, hw, T, neuron), seed)
    rng = np.random.default_rng(seed)
    x = np.zeros((2, 2 * C, hw, hw), f32) if zero else (rng.standard_normal((2, 2 * C, hw, hw)) * 1.5).astype(f32)
    ops, ins, outs = rev_forward(net, x, T)
    caches = {op.name: xin for op, xin in zip(ops, ins)}
    results = invert_chain(ops, outs[-1], caches=caches)
    for op, xin, r in zip(ops, ins, results):
        err = np.abs(r.x - xin)
        if r.fallback:
            assert r.flagged and err.max() == 0
            continue
        assert np.all(err <= r.bound), f"{op.name}: error above the inverse's own bound"
        # tolerance derived from the magnitudes: a few ulps of the block's values times the depth walked back
        scale = max(1.0, float(np.abs(outs[-1]).max()), float(np.abs(xin).max()))
        assert r.bound.max() <= 2 ** -14 * scale * (depth + 1)


def test_revsnn_single_block_inverse_of_exact_output_and_t1():
    net = rev_net(rev_raw(1, 4, 6, 1), 3)
    x = np.random.default_rng(3).standard_normal((3, 8, 6, 6)).astype(f32)
    ops, ins, outs = rev_forward(net, x, 1)
    r = invert_block(ops[0], outs[0])
    assert not r.flagged and np.all(np.abs(r.x - ins[0]) <= r.bound)
    # y2 = fl(x2 + G): x2 comes back to within one rounding of |y2| and |x2| (the G re-simulation is bit-exact)
    c = 4
    assert np.all(np.abs(r.x[:, :, c:] - ins[0][:, :, c:]) <= 2 * U * (np.abs(outs[0][:, :, c:]) + np.abs(ins[0][:, :, c:])) + 1e-37)


@pytest.mark.parametrize("depth, T", [(1, 1), (2, 4), (4, 2), (4, 8), (8, 4)])
def test_revsnn_reconstruction_error_against_depth_and_T_is_measured_and_bounded(depth, T):
    net = rev_net(rev_raw(depth, 4, 6, T), 11)
    x = (np.random.default_rng(11).standard_normal((2, 8, 6, 6)) * 1.5).astype(f32)
    ops, ins, outs = rev_forward(net, x, T)
    results = invert_chain(ops, outs[-1], caches={op.name: xin for op, xin in zip(ops, ins)})
    first = results[0]
    err = np.abs(first.x - ins[0])
    assert np.all(err <= first.bound) or first.fallback
    rel = float(err.max() / np.abs(ins[0]).max())
    assert rel <= 1e-5, f"depth {depth}, T {T}: relative reconstruction error {rel:.2e}"


# ============================================================================ spike flips: flag, fall back or raise
def _column_from(net, t, x, prev):
    """c[t] from chosen c[t-1] (the forward of column t, with the engine's arithmetic)."""
    op = trev.the_op(net)
    cur = []
    for l, lv in enumerate(op.columns[t]):
        o = regimes.level_forward(net, t, l, x if l == 0 else cur[l - 1], prev[l + 1] if l + 1 < len(prev) else None)
        cur.append(lv.state.update(o, prev[l]))
    return cur


@settings(max_examples=20, **SETTINGS)
@given(seed=st.integers(0, 2 ** 16), near=st.integers(1, 40))
def test_trev_spike_flips_are_flagged_never_silent(seed, near):
    """With alpha at the clamp (1e-3) the reconstruction error is ~1e3 ulps: values of c[t-1] put within it of the
    Quant threshold 0.5 do flip. Every flip is flagged; with the cache the inverse falls back to the exact state;
    without, it raises; the forward's guard keeps exactly those states."""
    net = trev_net(trev_raw(2, 2, c0=4, hw=8), seed, ALPHAS["clamp"])
    rng = np.random.default_rng(seed)
    fw = regimes.forward(net, rng.random((2, 3, 8, 8)).astype(f32), guard=False)
    prev = [p.copy() for p in fw.states[0]]
    level = 1                                                     # c1[t-1] feeds Quant in level 0's up path
    idx = rng.choice(prev[level].size, near, replace=False)
    prev[level].reshape(-1)[idx] = f32(0.5) + rng.choice([-1, 1], near).astype(f32) * f32(2 ** -24) * rng.integers(1, 8, near)
    cur = _column_from(net, 1, fw.x, prev)
    kept = regimes.invert_column(net, 1, fw.x, cur, on_risk="keep")
    assert kept.at_risk[level] > 0 and kept.flagged
    for l in range(2):
        flipped = ((kept.states[l] > 0.5) != (prev[l] > 0.5)).any()
        assert not flipped or kept.at_risk[l] > 0, f"level {l}: a silent spike flip"
    with pytest.raises(SpikeFlipError, match="Quant threshold"):
        regimes.invert_column(net, 1, fw.x, cur)
    cached = regimes.invert_column(net, 1, fw.x, cur, cache={l: prev[l] for l in range(2)})
    assert cached.fallback[level]
    for l in range(2):
        if cached.fallback[l]:
            np.testing.assert_array_equal(cached.states[l], prev[l])
        else:                        # rebuilt from the exact fall-back: within its bound again
            assert np.all(np.abs(cached.states[l] - prev[l]) <= cached.bounds[l])
    assert trev.guard_mask(cur[level], prev[level], trev.the_op(net).columns[1][level].state.alpha).any()


def test_trev_spike_flip_really_happens():
    """Not hypothetical: at the clamp, kept (unguarded) reconstructions do cross the threshold."""
    flips = 0
    for seed in range(4):
        net = trev_net(trev_raw(2, 2, c0=4, hw=8), seed, ALPHAS["clamp"])
        rng = np.random.default_rng(seed)
        fw = regimes.forward(net, rng.random((2, 3, 8, 8)).astype(f32), guard=False)
        prev = [p.copy() for p in fw.states[0]]
        idx = rng.choice(prev[1].size, 40, replace=False)
        prev[1].reshape(-1)[idx] = np.nextafter(f32(0.5), f32(1))
        kept = regimes.invert_column(net, 1, fw.x, _column_from(net, 1, fw.x, prev), on_risk="keep")
        flips += int(((kept.states[1] > 0.5) != (prev[1] > 0.5)).sum())
        assert kept.at_risk[1] > 0
    assert flips > 0


@settings(max_examples=20, **SETTINGS)
@given(seed=st.integers(0, 2 ** 16), T=st.integers(1, 3))
def test_revsnn_spike_flips_are_flagged_never_silent(seed, T):
    """x2 just below the IF threshold and a large G: y2 - G loses the low bits of x2, so F's first IF neuron is
    re-simulated on a charge within the error of 1.0. Flagged; cache -> exact; no cache -> SpikeFlipError."""
    C = 4
    net = rev_net(rev_raw(1, C, 6, T), seed, g_gain=300.0)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2 * C, 6, 6)).astype(f32)
    x2 = x[:, C:].reshape(-1)
    idx = rng.choice(x2.size, 20, replace=False)
    x2[idx] = f32(1.0) - f32(2 ** -23) * rng.integers(0, 4, 20)
    x[:, C:] = x2.reshape(x[:, C:].shape)
    ops, ins, outs = rev_forward(net, x, T)
    kept = invert_block(ops[0], outs[0], on_risk="keep")
    assert kept.flagged and any(r.layer.endswith("f_block.sn1") for r in kept.risks)
    with pytest.raises(SpikeFlipError, match="within the reconstruction error"):
        invert_block(ops[0], outs[0])
    fb = invert_block(ops[0], outs[0], cache=ins[0])
    assert fb.fallback
    np.testing.assert_array_equal(fb.x, ins[0])


# ============================================================================ T = 1 and the stateless column
def test_t1_equals_first_timestep_for_every_regime():
    x = np.random.default_rng(4).random((3, 8, 6, 6)).astype(f32) * 2
    net = rev_net(rev_raw(2, 4, 6, 4), 5)
    multi, one = run(net, x, timesteps=4), run(net, x, timesteps=1)
    np.testing.assert_array_equal(one.outputs[0], multi.outputs[0])
    assert one.trace.regime == "oneshot" and not any(r.stateful for r in one.trace.layers)
    assert multi.trace.regime == "multistep" and any(r.stateful for r in multi.trace.layers)
    assert run(net, x, regime="oneshot").trace.timesteps == 1
    # T-RevSNN: T=1 runs column 0 only; equal to column 0 of the 4-column run (readout 'mean' runs every head)
    tnet = trev_net(trev_raw(3, 4), 2)
    img = np.random.default_rng(5).random((2, 3, 8, 8)).astype(f32)
    multi, one = run(tnet, img), run(tnet, img, timesteps=1)
    np.testing.assert_array_equal(one.outputs[0], multi.outputs[0])
    np.testing.assert_array_equal(one.readout, multi.outputs[0])
    assert one.trace.regime == "oneshot" and not any(r.stateful for r in one.trace.layers)
    states = [r for r in multi.trace.layers if r.kind == "state"]
    assert multi.trace.regime == "trev" and len(states) == 4 * 3
    assert [r.stateful for r in states] == [True] * 9 + [False] * 3
    assert all(not r.stateful for r in multi.trace.layers if r.kind != "state")
    for r in multi.trace.layers:             # every layer instance runs once, at its column
        assert r.computed.sum() == 1
        if r.name.startswith("subnet"):
            assert r.computed[int(r.name.split(".")[0][6:])]


def _ff_column_raw(t, levels, c0, hw, head: bool, spiking_head: bool = False):
    """Column t of trev_raw(levels, T, c0, hw, fusion=False) as a plain YAML network of generic layers."""
    q = {"type": "threshold", "clip": [0, 1], "v_threshold": 0.5, "spike_rule": "gt"}
    layers = [{"name": "stem.down1.0", "type": "scaled_std_conv2d", "out_channels": c0, "kernel_size": 3, "padding": 1}]
    for l in range(levels):
        p, c = f"subnet{t}.level{l}", c0 * (l + 1)
        if l:
            layers += [dict(q, name=f"{p}.fusion.down.quant"),
                       {"name": f"{p}.fusion.down.encode_conv", "type": "conv2d", "out_channels": c, "kernel_size": 3,
                        "stride": 2, "padding": 1, "bias": False},
                       {"name": f"{p}.fusion.down.encode_bn", "type": "batchnorm2d"}]
        for b, (pw2, dw2) in enumerate((("pwconv2", "dwconv2"), ("pwconv2_reuse", "dwconv2_reuse"))):
            body = [dict(q, name="quant1"),
                    {"name": "dwconv1", "type": "conv2d", "out_channels": c, "kernel_size": 3, "padding": 1, "groups": c},
                    {"name": "pwconv1", "type": "scaled_std_conv2d", "out_channels": 2 * c, "kernel_size": 1},
                    dict(q, name="quant2"),
                    {"name": pw2, "type": "scaled_std_conv2d", "out_channels": c, "kernel_size": 1},
                    {"name": dw2, "type": "conv2d", "out_channels": c, "kernel_size": 3, "padding": 1, "groups": c}]
            if b == 0:
                body.append({"name": "gamma", "type": "layer_scale", "key": f"{p}.blocks.0.gamma"})
            layers.append({"name": f"{p}.blocks.{b}", "type": "residual", "body": body})
    s = hw >> (levels - 1)
    if head and not spiking_head:       # Classifier: GAP of the real-valued c -> ScaledStdConv
        layers += [{"name": f"cls_blocks.{t}.pool", "type": "avgpool2d", "kernel_size": s},
                   {"name": f"cls_blocks.{t}.classifier.0", "type": "scaled_std_conv2d", "out_channels": 5,
                    "kernel_size": 1},
                   {"name": "flat", "type": "flatten"}]
    elif head:                          # SpikeClassifier: Quant -> GAP -> ScaledStdConv -> ScaledStdConv
        layers += [dict(q, name=f"cls_blocks.{t}.quant"),
                   {"name": f"cls_blocks.{t}.pool", "type": "avgpool2d", "kernel_size": s},
                   {"name": f"cls_blocks.{t}.classifier1.0", "type": "scaled_std_conv2d", "out_channels": 5,
                    "kernel_size": 1},
                   {"name": f"cls_blocks.{t}.classifier2", "type": "scaled_std_conv2d", "out_channels": 5,
                    "kernel_size": 1},
                   {"name": "flat", "type": "flatten"}]
    return {"name": "ff", "input_shape": [3, hw, hw], "timesteps": 1, "layers": layers}


def test_trev_column_with_alpha_zero_and_no_top_down_equals_the_feed_forward_network():
    levels, T, c0, hw = 3, 3, 4, 8
    raw = trev_raw(levels, T, c0, hw, fusion=False)
    spec = parse_spec(raw)
    w = random_weights(spec, 9)
    for k in w:
        if ".alpha" in k:
            w[k] = np.zeros_like(w[k])
    net = build_network(spec, check_weights(spec, w))
    img = np.random.default_rng(9).random((3, 3, hw, hw)).astype(f32)
    fw = regimes.forward(net, img)
    for t in (1, 2):
        for head in (False, True):
            ff_spec = parse_spec(_ff_column_raw(t, levels, c0, hw, head, spiking_head=t == T - 1))
            ff = build_network(ff_spec, check_weights(ff_spec, {k: w[k] for k in ff_spec.param_shapes()}))
            out = run(ff, img, timesteps=1).outputs[0]
            want = fw.logits[t] if head else fw.states[t][-1]
            np.testing.assert_array_equal(out, want)
        assert not np.array_equal(fw.states[t][-1], fw.states[t - 1][-1])    # columns have their own weights


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_revsnn_bound_holds_for_a_perturbation_at_the_bound(seed):
    """The inverse's bound must cover an error in y as large as the bound it is given, not only float32
    round-off: y is moved by exactly +-eps (a random sign per element) and eps (plus the rounding of that move)
    is passed as y's bound. Every reconstructed element must lie within the returned bound of the true input,
    and the bound must be reached in part (the perturbation really propagates; a bound that ignored its input
    bound would fail the first assertion)."""
    net = rev_net(rev_raw(1, 4, 6, 3), seed)
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((2, 8, 6, 6)) * 1.5).astype(f32)
    ops, ins, outs = rev_forward(net, x, 3)
    y = outs[0]
    eps = (1e-5 * (1.0 + np.abs(y))).astype(f32)
    moved = (y + rng.choice([-1.0, 1.0], y.shape) * eps).astype(f32)
    given = (eps + 2 * U * np.abs(moved) + 1e-37).astype(f32)      # |moved - y| <= eps + one rounding
    assert np.all(np.abs(moved.astype(np.float64) - y) <= given)
    r = invert_block(ops[0], moved, given, on_risk="keep")
    err = np.abs(r.x.astype(np.float64) - ins[0])
    assert not r.flagged                 # no charge within its bound of a threshold for these seeds
    assert np.all(err <= r.bound), f"error {float((err - r.bound).max()):.3g} above the inverse's bound"
    assert float((err / r.bound).max()) > 0.2
