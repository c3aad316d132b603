"""Neuron steps against the equations written out by hand (float32 scalars, the same expression order)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snnsim import neurons
from snnsim.layers import Neuron

f32 = np.float32


def hand_step(kind, x, v, tau, decay_input, thr, v_reset, rule, clip=None, q=None):
    """One neuron, one step, straight from the SpikingJelly 2.0 equations (docs/neurons.md, SpikingJelly 2.0 LIF)."""
    vr = f32(0.0) if v_reset is None else f32(v_reset)
    x, v, tau, thr = f32(x), f32(v), f32(tau), f32(thr)
    if kind == "if":
        h = v + x
    elif kind == "threshold":
        h = x if clip is None else f32(min(max(x, f32(clip[0])), f32(clip[1])))
    elif kind == "plif":
        h = v + (x - (v - vr)) * q if decay_input else v - (v - vr) * q + x
    else:
        h = v + (x - (v - vr)) / tau if decay_input else v - (v - vr) / tau + x
    if kind == "li":
        return h, h
    s = (h > thr) if rule == "gt" else (h >= thr)
    if not s:
        return f32(0), h
    return f32(1), (vr if v_reset is not None else h - thr)


def _layer(kind, **kw):
    return Neuron("n", (5,), (5,), neuron=kind, **kw)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["if", "lif", "li", "plif"]), tau=st.floats(1.1, 8.0),
       decay_input=st.booleans(), thr=st.floats(0.2, 2.0), hard=st.booleans(),
       v_reset=st.floats(-0.5, 0.5), rule=st.sampled_from(["ge", "gt"]), w=st.floats(-3, 3),
       seed=st.integers(0, 2**16))
def test_neuron_step_matches_hand_equations(kind, tau, decay_input, thr, hard, v_reset, rule, w, seed):
    layer = _layer(kind, tau=tau, decay_input=decay_input, v_threshold=thr,
                   v_reset=v_reset if hard else None, spike_rule=rule)
    wt = f32(w)
    p = neurons.neuron_params(layer, wt)
    q = f32(1) / (f32(1) + np.exp(-wt, dtype=f32))
    rng = np.random.default_rng(seed)
    xs = rng.normal(0.6, 0.8, (6, 5)).astype(f32)
    v = np.full(5, p.v_init, f32)
    ref_v = [p.v_init] * 5
    for x in xs:
        out, h = np.empty(5, f32), np.empty(5, f32)
        neurons.step(p, x, v, out, h)
        for i in range(5):
            s, ref_v[i] = hand_step(kind, x[i], ref_v[i], tau, decay_input, thr, layer.v_reset, rule, q=q)
            assert out[i] == s
            assert v[i] == ref_v[i]          # bit-identical: same float32 expression order


def test_initial_state_and_stateless_layers():
    hard = neurons.neuron_params(_layer("lif", v_reset=-0.25))
    assert hard.v_init == f32(-0.25)
    soft = neurons.neuron_params(_layer("lif", v_reset=None))
    assert soft.v_init == f32(0.0)
    p = neurons.neuron_params(_layer("if", stateless=True))
    v = np.zeros(5, f32)
    out, h = np.empty(5, f32), np.empty(5, f32)
    x = np.full(5, 0.6, f32)
    for _ in range(3):                      # 0.6 never reaches 1 when the state is cleared each step
        assert neurons.step(p, x, v, out, h) == 0
    q = neurons.neuron_params(_layer("if"))
    v[:] = 0
    counts = [neurons.step(q, x, v, out, h) for _ in range(3)]
    assert counts == [0, 5, 0]              # 0.6, 1.2 -> spike and reset to 0, 0.6


def test_threshold_neuron_is_quant():
    """T-RevSNN's Quant at eval: clamp to [0, 1] then round half to even, i.e. spike iff u > 0.5."""
    p = neurons.neuron_params(_layer("threshold", v_threshold=0.5, spike_rule="gt", clip=(0.0, 1.0)))
    u = np.array([-1.0, 0.49, 0.5, 0.51, 7.0], f32)
    out, h, v = np.empty(5, f32), np.empty(5, f32), np.zeros(5, f32)
    neurons.step(p, u, v, out, h)
    np.testing.assert_array_equal(out, np.round(np.clip(u, 0, 1)))
    np.testing.assert_array_equal(h, np.clip(u, 0, 1))


@pytest.mark.parametrize("decay_input", [True, False])
def test_plif_at_w0_equals_lif_tau2(decay_input):
    """sigmoid(0) = 0.5 and /2 == *0.5 exactly in float32, so PLIF(w=0) and LIF(tau=2) agree bit for bit."""
    a = neurons.neuron_params(_layer("plif", decay_input=decay_input), f32(0))
    b = neurons.neuron_params(_layer("lif", tau=2.0, decay_input=decay_input))
    rng = np.random.default_rng(0)
    va, vb = np.zeros(5, f32), np.zeros(5, f32)
    for _ in range(8):
        x = rng.normal(0.5, 1, 5).astype(f32)
        oa, ob, h = np.empty(5, f32), np.empty(5, f32), np.empty(5, f32)
        neurons.step(a, x, va, oa, h)
        neurons.step(b, x, vb, ob, h)
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(va, vb)


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["if", "lif", "plif"]), beta_k=st.integers(1, 4), thr=st.floats(0.2, 1.5),
       rule=st.sampled_from(["ge", "gt"]), seed=st.integers(0, 2**16))
def test_delayed_subtract_reset_matches_snntorch_equations(kind, beta_k, thr, rule, seed):
    """reset_delay (snnTorch's default Leaky, docs/neurons.md): mem[t] = beta*mem[t-1] + x[t] - thr*S[t-1],
    S[t] = mem[t] > thr, the state being the pre-reset membrane. Written as snnTorch computes it: with
    beta = 1 - 2^-k, beta*m equals snnsim's m - m/tau bit for bit, so the match is exact."""
    beta = f32(1 - 2.0 ** -beta_k)
    tau = 1 / (1 - float(beta))
    layer = _layer(kind, tau=tau, decay_input=False, v_threshold=thr, v_reset=None, spike_rule=rule,
                   reset_delay=True)
    p = neurons.neuron_params(layer, f32(-1.0))         # plif: q = sigmoid(-1) of its membrane leaks
    charge = {"if": lambda m, x: m + x,                 # snnTorch's beta*mem + x for lif; SpikingJelly's
              "lif": lambda m, x: beta * m + x,         # m - m*q + x for plif (decay_input false)
              "plif": lambda m, x: m - m * p.factor + x}[kind]
    rng = np.random.default_rng(seed)
    xs = (rng.random((10, 5)) * 3 * thr).astype(f32)
    thr32 = f32(thr)
    v = np.full(5, p.v_init, f32)
    mem = np.zeros(5, f32)
    prev = np.zeros(5, f32)
    for x in xs:
        out, h = np.empty(5, f32), np.empty(5, f32)
        neurons.step(p, x, v, out, h)
        mem = charge(mem, x) - prev * thr32
        s = ((mem > thr32) if rule == "gt" else (mem >= thr32)).astype(f32)
        assert np.array_equal(v, mem) and np.array_equal(h, mem)
        assert np.array_equal(out, s)
        prev = s


def test_reset_delay_is_refused_where_it_means_nothing():
    from snnsim.errors import SpecError
    from snnsim.layers import parse_spec

    def spec(**neuron):
        return {"name": "n", "input_shape": [3], "timesteps": 2,
                "layers": [{"type": "linear", "out_features": 2}, {"type": "lif", **neuron}]}

    assert parse_spec(spec(v_reset=None, reset_delay=True)).layers[1].reset_delay is True
    for bad in (dict(reset_delay=True), dict(v_reset=None, reset_delay=True, stateless=True),
                dict(v_reset=None, reset_delay="yes")):
        with pytest.raises(SpecError, match=r"layers\[1\]\.reset_delay"):
            parse_spec(spec(**bad))
    li = spec()
    li["layers"][1] = {"type": "li", "v_reset": None, "reset_delay": True}
    with pytest.raises(SpecError, match="reset_delay"):
        parse_spec(li)


_HELPER_SIGNATURES = """
import numpy as np
from snnsim import neurons
from snnsim.layers import Neuron
layer = Neuron("n", (5000,), (5000,), neuron="lif", tau=2.0, v_threshold=1.0, v_reset=0.0, spike_rule="ge")
p = neurons.neuron_params(layer)
x = np.random.default_rng(0).random((2, 3, 5000)).astype(np.float32)
x[:, 0] = 0.0                                  # a silent sample: the at-rest test (_rest) runs too
v = np.full((3, 5000), p.v_init, np.float32)
neurons.steps(p, x, v, np.empty_like(x), np.zeros((2, 3), np.int64), None, None)
for helper in (neurons._charge, neurons._fire):
    print([[type(t).__name__, getattr(t, "literal_value", None)] for s in helper.signatures for t in s[-2:]])
"""


def test_step_helpers_compile_once_with_a_literal_start(tmp_path):
    """The neuron step's helpers are compiled for one argument pattern: a literal 0 start (the loops' indices are
    then provably non-negative, so Numba drops its negative-index handling and they vectorise; with a run-time
    start whole network runs took twice as long) and a run-time end (a constant end compiled each helper once
    more, cold start). Read from the signatures Numba compiles for a block step and the at-rest test, in a new
    process with an empty cache (a cached caller loads its helpers' code without compiling them)."""
    import ast
    import os
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _HELPER_SIGNATURES], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        start, end = ast.literal_eval(line)                # one signature: [start type, value], [end type, value]
        assert start == ["IntegerLiteral", 0] and end[0] != "IntegerLiteral"
