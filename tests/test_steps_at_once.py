"""Several timesteps in one call: the neuron kernel over [T, B, ...], the per-step statistics, the synaptic
kernels given one timestep's batch, and the engine running every op over all timesteps at once, each against
a NumPy computation of the same thing or against the engine run timestep by timestep."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snnsim import neurons
from snnsim.engine import run
from snnsim.engine.schedule import _static_plan
from snnsim.kernels import conv2d_dense, linear_dense
from snnsim.kernels.stats import analog_event_map, steps_stats, steps_stats_samples
from snnsim.layers import Neuron, parse_spec
from snnsim.network import build_network
from snnsim.weights import random_weights
from small_nets import FEEDFORWARD

f32 = np.float32


def numpy_neuron(kind, xs, tau, thr, v_reset, rule, decay_input, stateless=False):
    """The neuron equations (docs/neurons.md) over x [T, N] in NumPy float32, elementwise in SpikingJelly's
    expression order: spikes, state after each step and the charge H per step."""
    vr = f32(0.0) if v_reset is None else f32(v_reset)
    tau, thr = f32(tau), f32(thr)
    v = np.full(xs.shape[1], vr, f32)
    spikes, vs, hs = [], [], []
    for x in xs:
        if stateless:
            v = np.full_like(v, vr)
        if kind == "if":
            h = v + x
        elif decay_input:
            h = v + (x - (v - vr)) / tau
        else:
            h = v - (v - vr) / tau + x
        if kind == "li":
            s, v = h, h
        else:
            fire = h > thr if rule == "gt" else h >= thr
            s = fire.astype(f32)
            v = np.where(fire, vr if v_reset is not None else h - thr, h).astype(f32)
        spikes.append(s), vs.append(v), hs.append(h)
    return np.stack(spikes), np.stack(vs), np.stack(hs)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(kind=st.sampled_from(["if", "lif", "li"]), tau=st.floats(1.1, 8.0), thr=st.floats(0.2, 2.0),
       hard=st.booleans(), rule=st.sampled_from(["ge", "gt"]), decay_input=st.booleans(), stateless=st.booleans(),
       T=st.integers(1, 5), B=st.integers(1, 3), n=st.sampled_from([1, 7, 4096, 5000]), seed=st.integers(0, 2**16))
def test_neuron_steps_match_numpy(kind, tau, thr, hard, rule, decay_input, stateless, T, B, n, seed):
    layer = Neuron("n", (n,), (n,), neuron=kind, tau=tau, v_threshold=thr, v_reset=0.0 if hard else None,
                   spike_rule=rule, decay_input=decay_input, stateless=stateless)
    p = neurons.neuron_params(layer)
    rng = np.random.default_rng(seed)
    x = rng.normal(0.6, 0.8, (T, B, n)).astype(f32)
    x[rng.random(x.shape) < 0.3] = 0
    x[rng.random(x.shape) < 0.2] = 1
    v = np.full((B, n), p.v_init, f32)
    out, v_all, h_all = (np.empty((T, B, n), f32) for _ in range(3))
    per_sample = np.zeros((T, B), np.int64)
    counts = neurons.steps(p, x, v, out, per_sample, v_all, h_all)
    s, vs, hs = numpy_neuron(kind, x.reshape(T, -1), tau, thr, layer.v_reset, rule, decay_input, stateless)
    np.testing.assert_array_equal(out.reshape(T, -1), s)
    np.testing.assert_array_equal(v_all.reshape(T, -1), vs)
    np.testing.assert_array_equal(h_all.reshape(T, -1), hs)
    np.testing.assert_array_equal(v.reshape(-1), vs[-1])
    spikes = (s != 0).reshape(T, B, n).sum(axis=2) if kind != "li" else np.zeros((T, B))
    np.testing.assert_array_equal(per_sample, spikes)
    np.testing.assert_array_equal(counts[0], spikes.sum(axis=1))
    np.testing.assert_array_equal(counts[1], (x != 0).reshape(T, -1).sum(axis=1))
    np.testing.assert_array_equal(counts[2] > 0, ((x != 0) & (x != 1)).reshape(T, -1).any(axis=1))


@settings(max_examples=30, deadline=None, derandomize=True)
@given(T=st.integers(1, 4), B=st.integers(1, 4), n=st.integers(1, 40), binary=st.booleans(),
       seed=st.integers(0, 2**16))
def test_step_statistics_match_numpy(T, B, n, binary, seed):
    rng = np.random.default_rng(seed)
    x = (rng.random((T, B, n)) < 0.3).astype(f32)
    if not binary:
        x[:, 0, 0] = 2.5
    fanout = rng.integers(1, 9, n).astype(np.int64)
    em = np.zeros((T, n), f32)
    nnz_s, reach_s, nonbinary_s = np.zeros((T, B), np.int64), np.zeros((T, B)), np.zeros((T, B), bool)
    nnz, is_binary = steps_stats_samples(x, em, fanout, nnz_s, reach_s, nonbinary_s)
    nz = x != 0
    np.testing.assert_array_equal(nnz, nz.reshape(T, -1).sum(axis=1))
    np.testing.assert_array_equal(is_binary, ((x == 0) | (x == 1)).reshape(T, -1).all(axis=1))
    np.testing.assert_array_equal(em, nz.sum(axis=1))
    np.testing.assert_array_equal(nnz_s, nz.sum(axis=2))
    np.testing.assert_array_equal(reach_s, nz @ fanout)
    np.testing.assert_array_equal(nonbinary_s, (nz & (x != 1)).any(axis=2))
    per_sample = np.zeros((T, B), np.int64)
    nnz2, is_binary2 = steps_stats(x, per_sample)
    np.testing.assert_array_equal(nnz2, nnz)
    np.testing.assert_array_equal(is_binary2, is_binary)
    np.testing.assert_array_equal(per_sample, nz.sum(axis=2))
    analog = rng.random((T, B)) < 0.5
    np.testing.assert_array_equal(analog_event_map(x, analog), (nz & analog[:, :, None]).sum(axis=1))


@pytest.mark.parametrize("B,T", [(1, 4), (2, 3), (5, 2)])
def test_linear_over_steps_rounds_as_each_step_alone(B, T):
    rng = np.random.default_rng(3)
    x = (rng.random((T * B, 300)) < 0.3).astype(f32) * f32(0.7)
    w = rng.standard_normal((20, 300)).astype(f32)
    b = rng.standard_normal(20).astype(f32)
    together = linear_dense(x, w, b, B)
    np.testing.assert_array_equal(together, np.concatenate([linear_dense(x[t * B:(t + 1) * B], w, b)
                                                            for t in range(T)]))
    np.testing.assert_allclose(together, x.astype(float) @ w.T.astype(float) + b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("B,T,C,O,H,k,s,p", [
    (1, 4, 16, 32, 14, 3, 1, 1),     # several images per sgemm at T*B, one alone
    (5, 3, 16, 32, 14, 3, 1, 1),     # 4 images per chunk: chunks must not cross a step
    (2, 2, 16, 32, 32, 1, 2, 0),     # strided 1x1
    (3, 2, 64, 64, 8, 3, 1, 1),
])
def test_conv_over_steps_rounds_as_each_step_alone(B, T, C, O, H, k, s, p):
    import torch

    rng = np.random.default_rng(5)
    x = (rng.random((T * B, C, H, H)) < 0.3).astype(f32) * f32(1.5)
    w = rng.standard_normal((O, C, k, k)).astype(f32)
    b = rng.standard_normal(O).astype(f32)
    together = conv2d_dense(x, w, b, s, s, p, p, 1, B)
    np.testing.assert_array_equal(together, np.concatenate([conv2d_dense(x[t * B:(t + 1) * B], w, b, s, s, p, p, 1)
                                                            for t in range(T)]))
    ref = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double(),
                                     torch.from_numpy(b).double(), s, p).numpy()
    np.testing.assert_allclose(together, ref, rtol=1e-4, atol=1e-3)


SPEC = FEEDFORWARD


@pytest.mark.parametrize("encoding", ["direct", {"type": "rate", "seed": 3}])
@pytest.mark.parametrize("form", ["auto", "dense", "event"])
def test_engine_over_all_steps_equals_step_by_step(encoding, form):
    spec = parse_spec(dict(SPEC, encoding=encoding))
    w = {k: v * f32(3) if k.endswith("weight") else v + f32(0.3) for k, v in random_weights(spec, 2).items()}
    net, stepwise = build_network(spec, w), build_network(spec, w)
    prefix, spans, largest = _static_plan(stepwise)
    assert spans
    stepwise.__dict__["_static_plan"] = (prefix, False, largest)
    x = np.random.default_rng(4).random((3, 2, 8, 8), dtype=f32)
    probes = ["sn1", "block.sn", "fc"]
    a = run(net, x, form=form, probes=probes, batch_size=2)
    b = run(stepwise, x, form=form, probes=probes, batch_size=2)
    np.testing.assert_array_equal(a.outputs, b.outputs)
    assert a.outputs.any()
    for name in probes:
        for key, arr in b.trace.probes[name].items():
            np.testing.assert_array_equal(a.trace.probes[name][key], arr, err_msg=f"{name} {key}")
    for ra, rb in zip(a.trace.layers, b.trace.layers, strict=True):
        assert ra.name == rb.name and ra.form == rb.form
        for key in ("computed", "events_in", "binary_in", "events_out", "neuron_updates", "event_map",
                    "analog_samples", "event_map_analog", "sample_events_in", "sample_events_out", "sample_reach",
                    "sample_analog"):
            va, vb = getattr(ra, key), getattr(rb, key)
            assert (va is None) == (vb is None), f"{ra.name} {key}"
            if va is not None:
                np.testing.assert_array_equal(va, vb, err_msg=f"{ra.name} {key}")


def test_windows_of_steps_give_the_same_run(monkeypatch):
    import snnsim.engine as engine

    spec = parse_spec(SPEC)
    net = build_network(spec, random_weights(spec, 2))
    x = np.random.default_rng(6).random((2, 2, 8, 8), dtype=f32)
    whole = run(net, x, probes=["sn1"])
    monkeypatch.setattr(engine.schedule, "WINDOW_ELEMS", 1)       # one timestep per window
    one = run(net, x, probes=["sn1"])
    np.testing.assert_array_equal(whole.outputs, one.outputs)
    np.testing.assert_array_equal(whole.spikes("sn1"), one.spikes("sn1"))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(kind=st.sampled_from(["avg", "max"]), neuron=st.sampled_from(["lif", "if"]), T=st.integers(1, 3),
       B=st.integers(1, 2), C=st.integers(1, 3), H=st.sampled_from([1, 2, 5, 8, 130]), W=st.sampled_from([2, 3, 7, 64]),
       seed=st.integers(0, 2**16))
def test_neuron_steps_with_pooling_match_numpy(kind, neuron, T, B, C, H, W, seed):
    check_steps_pool(kind, neuron, T, B, C, H, W, seed)


@pytest.mark.parametrize("C,H,W", [(40, 8, 16), (7, 28, 28), (3, 28, 30)])
def test_neuron_steps_with_pooling_stack_small_planes(C, H, W):
    """Planes of an even height that fit a block are stepped and pooled several at a time (here 32, 5 and 4 a
    block, the last block short): the same pooled spikes, state and counts as NumPy's plane by plane."""
    check_steps_pool("avg", "lif", 3, 2, C, H, W, 11)
    check_steps_pool("max", "if", 2, 1, C, H, W, 12)


def check_steps_pool(kind, neuron, T, B, C, H, W, seed):
    layer = Neuron("n", (C, H, W), (C, H, W), neuron=neuron, tau=2.0, v_threshold=1.0, v_reset=0.0)
    p = neurons.neuron_params(layer)
    rng = np.random.default_rng(seed)
    x = rng.normal(0.8, 0.8, (T, B, C, H, W)).astype(f32)
    v = np.full((B, C, H, W), p.v_init, f32)
    HO, WO = H // 2, W // 2
    pooled = np.empty((T, B, C, HO, WO), f32)
    per_sample = np.zeros((T, B), np.int64)
    counts = neurons.steps_pool(p, x, v, 0 if kind == "avg" else 1, pooled, per_sample)
    s, vs, _ = numpy_neuron(neuron, x.reshape(T, -1), 2.0, 1.0, 0.0, "ge", True)
    s = s.reshape(T, B, C, H, W)
    windows = s[..., :2 * HO, :2 * WO].reshape(T, B, C, HO, 2, WO, 2)
    want = windows.mean(axis=(4, 6)) if kind == "avg" else windows.max(axis=(4, 6))   # exact: quarters of 0/1
    np.testing.assert_array_equal(pooled, want)
    np.testing.assert_array_equal(v.reshape(-1), vs[-1])
    np.testing.assert_array_equal(per_sample, (s != 0).reshape(T, B, -1).sum(axis=2))   # every spike, pooled or not
    np.testing.assert_array_equal(counts[0], per_sample.sum(axis=1))
    np.testing.assert_array_equal(counts[1], (x != 0).reshape(T, -1).sum(axis=1))
    np.testing.assert_array_equal(counts[3], (want != 0).reshape(T, -1).sum(axis=1))


def test_a_neuron_layer_and_its_pooling_fused_give_the_unfused_run():
    spec = parse_spec({**SPEC, "layers": SPEC["layers"][:3] + SPEC["layers"][4:]})
    net = build_network(spec, {k: v * f32(3) for k, v in random_weights(spec, 5).items()})
    x = np.random.default_rng(8).random((3, 2, 8, 8), dtype=f32)
    fused = run(net, x, batch_size=2)
    unfused = run(net, x, batch_size=2, probes=["pool"])      # a probed layer is not fused
    np.testing.assert_array_equal(fused.outputs, unfused.outputs)
    assert fused.outputs.any()
    for ra, rb in zip(fused.trace.layers, unfused.trace.layers, strict=True):
        for key in ("computed", "events_in", "binary_in", "events_out", "neuron_updates", "sample_events_in",
                    "sample_events_out"):
            va, vb = getattr(ra, key), getattr(rb, key)
            assert (va is None) == (vb is None), f"{ra.name} {key}"
            if va is not None:
                np.testing.assert_array_equal(va, vb, err_msg=f"{ra.name} {key}")


# ----------------------------------------------------------------------------- blocks at rest
def _params(**kw):
    base = dict(neuron="lif", tau=2.0, v_threshold=1.0, v_reset=0.0, spike_rule="ge", decay_input=True)
    base.update(kw)
    return neurons.neuron_params(Neuron("n", (8,), (8,), **base))


@pytest.mark.parametrize("kw, rest, out", [
    (dict(), True, 0.0),                                            # LIF at 0, hard reset: stays, no spike
    (dict(decay_input=False, v_reset=None), True, 0.0),             # subtract reset: v_r = 0
    (dict(neuron="if", v_reset=-0.5), True, 0.0),                   # IF at its reset value -0.5
    (dict(neuron="if", v_reset=1.0), False, 1.0),                   # at rest it is at threshold: it fires
    (dict(neuron="if", v_reset=1.0, spike_rule="gt"), True, 0.0),   # ... unless the rule is 'gt'
    (dict(neuron="li", v_reset=0.25), True, 0.25),                  # the output of 'li' is H = v_r
    (dict(neuron="threshold", v_threshold=0.5, spike_rule="gt", stateless=True, clip=(0.0, 1.0)), True, 0.0),
    (dict(neuron="threshold", v_threshold=0.5, stateless=True, clip=(0.7, 1.0)), False, 1.0),   # clip(0) = 0.7 fires
    (dict(v_reset=None, reset_delay=True), True, 0.0),
])
def test_rest_by_hand(kw, rest, out):
    p = _params(**kw)
    got_rest, got_out = neurons._rest(p.mode, p.factor, p.decay_input, p.v_r, p.threshold, p.hard, p.delay, p.gt,
                                      p.clip, p.lo, p.hi)
    assert got_rest == rest
    if rest:
        assert got_out == out


def test_only_plus_zero_at_rest_is_silent():
    bits = lambda a: np.asarray(a, f32).view(np.uint32)  # noqa: E731
    rest = f32(0.0).view(np.uint32)
    assert neurons._silent_at_rest(bits([0, 0, 0]), bits([0, 0, 0]), rest)
    assert not neurons._silent_at_rest(bits([0, -0.0, 0]), bits([0, 0, 0]), rest)
    assert not neurons._silent_at_rest(bits([0, 0, 0]), bits([0, -0.0, 0]), rest)
    assert not neurons._silent_at_rest(bits([0, 1e-45, 0]), bits([0, 0, 0]), rest)
    assert not neurons._silent_at_rest(bits([0, 0, 0]), bits([0, 0, 1e-45]), rest)


@pytest.mark.parametrize("kw", [dict(), dict(neuron="if", v_reset=None), dict(neuron="if", v_reset=1.0),
                                dict(neuron="li", v_reset=0.25), dict(v_reset=None, reset_delay=True),
                                dict(decay_input=False, stateless=True), dict(spike_rule="gt")])
def test_silent_blocks_give_the_arithmetics_bits(kw):
    """Whole blocks of +0.0 (and of -0.0, which must not be skipped) between active ones, from rest and after
    spiking: spikes, states and membranes after every step bit for bit those of the step's arithmetic (the
    kernel without the skip: it computes every block when the charge is kept) and, for the models the NumPy
    reference has, those of NumPy."""
    p = _params(**kw)
    T, B, n = 6, 2, 3 * 4096 + 100
    rng = np.random.default_rng(21)
    x = rng.normal(0.7, 0.9, (T, B, n)).astype(f32)
    x[:, :, :4096] = 0.0                     # the first block silent throughout
    x[1:4, :, 4096:8192] = 0.0               # the second silent after it spiked (not at rest: computed)
    x[2, 1, 8192:] = -0.0                    # -0.0 is computed
    x[3:, 0, :] = 0.0                        # a sample silent from step 3: at rest again only where reset
    got = [np.empty((T, B, n), f32) for _ in range(2)]
    ref = [np.empty((T, B, n), f32) for _ in range(3)]
    v, v2 = (np.full((B, n), p.v_init, f32) for _ in range(2))
    c1 = neurons.steps(p, x, v, got[0], None, got[1])                        # the skip allowed
    c2 = neurons.steps(p, x, v2, ref[0], None, ref[1], ref[2])              # the charge kept: no skip
    for a, b in zip(got + [v], ref[:2] + [v2]):
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))
    np.testing.assert_array_equal(c1, c2)
    kind = kw.get("neuron", "lif")
    if kind in ("lif", "if", "li") and not kw.get("reset_delay"):
        s, vs, _ = numpy_neuron(kind, x.reshape(T, -1), 2.0, 1.0, kw.get("v_reset", 0.0), kw.get("spike_rule", "ge"),
                                kw.get("decay_input", True), kw.get("stateless", False))
        np.testing.assert_array_equal(got[0].reshape(T, -1), s)
        np.testing.assert_array_equal(got[1].reshape(T, -1).view(np.uint32), vs.view(np.uint32))
