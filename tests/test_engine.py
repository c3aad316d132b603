"""The engine end to end: against a hand-written NumPy/SciPy simulation, plus its invariants."""

import numpy as np
import pytest
from scipy.signal import correlate

from snnsim.engine import accuracy, fanout_map, run
from snnsim.errors import InputError
from snnsim.network import build_network
from snnsim.layers import parse_spec
from snnsim.trace import Trace
from snnsim.weights import random_weights

f32 = np.float32

SPEC = {
    "name": "tiny", "input_shape": [2, 6, 6], "timesteps": 3,
    "layers": [
        {"name": "conv", "type": "conv2d", "out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1},
        {"name": "sn1", "type": "lif", "tau": 2.0},
        {"name": "pool", "type": "avgpool2d", "kernel_size": 3},
        {"name": "flat", "type": "flatten"},
        {"name": "fc", "type": "linear", "out_features": 4},
        {"name": "sn2", "type": "if", "v_reset": None},
    ],
}


def _weights(spec, seed=1, gain=4.0):
    """Seeded weights scaled so that both neuron layers fire at moderate rates (checked in the tests)."""
    w = random_weights(spec, seed)
    return {k: (v * f32(gain) if k.endswith("weight") else v + f32(0.4)) for k, v in w.items()}


def hand_simulation(x, w, T):
    """Float64 reference built from scipy.signal.correlate and the neuron equations written out."""
    B = x.shape[0]
    conv_w, conv_b = w["conv.weight"].astype(float), w["conv.bias"].astype(float)
    xp = np.pad(x.astype(float), ((0, 0), (0, 0), (1, 1), (1, 1)))
    conv = np.zeros((B, 3, 3, 3))
    for b in range(B):
        for o in range(3):
            full = sum(correlate(xp[b, c], conv_w[o, c], mode="valid") for c in range(2))
            conv[b, o] = full[::2, ::2] + conv_b[o]
    v1 = np.zeros_like(conv)
    v2 = np.zeros((B, 4))
    outs, s1_all = [], []
    for _ in range(T):
        h1 = v1 + (conv - v1) / 2.0                      # lif, tau 2, hard reset to 0
        s1 = (h1 >= 1.0).astype(float)
        v1 = np.where(s1 > 0, 0.0, h1)
        pooled = s1.mean(axis=(2, 3))                    # 3x3 avg pool of a 3x3 map
        fc = np.einsum("bi,oi->bo", pooled, w["fc.weight"].astype(float)) + w["fc.bias"]
        h2 = v2 + fc                                     # if, subtract reset
        s2 = (h2 >= 1.0).astype(float)
        v2 = h2 - s2
        outs.append(s2)
        s1_all.append(s1)
    return np.stack(outs), np.stack(s1_all)


@pytest.mark.parametrize("form", ["auto", "dense", "event"])
def test_engine_matches_hand_simulation(form):
    spec = parse_spec(SPEC)
    w = _weights(spec)
    x = np.random.default_rng(1).random((5, 2, 6, 6)).astype(f32)
    res = run(build_network(spec, w), x, form=form, probes=["sn1"])
    ref_out, ref_s1 = hand_simulation(x, w, 3)
    assert 0 < ref_s1.mean() < 1 and 0 < ref_out.mean() < 1
    np.testing.assert_array_equal(res.trace.probes["sn1"]["spikes"], ref_s1)
    np.testing.assert_array_equal(res.outputs, ref_out)
    np.testing.assert_allclose(res.readout, ref_out.mean(axis=0))


def test_direct_encoding_runs_the_input_layer_once():
    spec = parse_spec(SPEC)
    res = run(build_network(spec, _weights(spec)), np.ones((2, 2, 6, 6), f32), timesteps=4)
    conv = res.trace.layer("conv")
    assert conv.computed.tolist() == [True, False, False, False]
    assert conv.events_in.tolist() == [2 * 72, 0, 0, 0]
    assert res.trace.layer("sn1").computed.all() and res.trace.layer("sn1").stateful
    assert res.trace.layer("sn1").neuron_updates.tolist() == [2 * 27] * 4


def test_one_shot_equals_first_timestep_and_keeps_no_state():
    spec = parse_spec(SPEC)
    net = build_network(spec, _weights(spec))
    x = np.random.default_rng(2).random((4, 2, 6, 6)).astype(f32)
    multi = run(net, x, timesteps=5)
    one = run(net, x, timesteps=1)
    np.testing.assert_array_equal(one.outputs[0], multi.outputs[0])
    assert one.trace.regime == "oneshot" and multi.trace.regime == "multistep"
    assert not any(rec.stateful for rec in one.trace.layers)


def test_batching_does_not_change_results_and_counts_add_up():
    spec = parse_spec(dict(SPEC, encoding={"type": "rate", "seed": 7}))
    net = build_network(spec, _weights(spec))
    x = np.random.default_rng(3).random((7, 2, 6, 6)).astype(f32)
    a = run(net, x, batch_size=7)
    b = run(net, x, batch_size=2)
    np.testing.assert_array_equal(a.outputs, b.outputs)
    for ra, rb in zip(a.trace.layers, b.trace.layers):
        np.testing.assert_array_equal(ra.events_in, rb.events_in)
        np.testing.assert_array_equal(ra.events_out, rb.events_out)
    assert b.trace.samples == 7
    # rate-coded input: the conv sees binary spikes whose count matches the Bernoulli draw's mean
    conv = a.trace.layer("conv")
    assert conv.binary_in.all()
    assert abs(conv.events_in.sum() / (3 * x.size) - x.mean()) < 0.05


def test_events_encoding_and_input_errors():
    spec = parse_spec(dict(SPEC, encoding="events"))
    net = build_network(spec, _weights(spec))
    ev = (np.random.default_rng(4).random((3, 2, 2, 6, 6)) < 0.3).astype(f32)
    res = run(net, ev)
    assert res.outputs.shape == (3, 2, 4)
    assert res.trace.layer("conv").events_in.tolist() == [int(ev[t].sum()) for t in range(3)]
    with pytest.raises(InputError, match=r"expected shape \[T, N, 2, 6, 6\]"):
        run(net, ev[0])
    with pytest.raises(InputError, match="has 3 timesteps but the run asks for T=2"):
        run(net, ev, timesteps=2)
    bad = ev.copy()
    bad[1, 0, 0, 2, 3] = np.nan
    with pytest.raises(InputError, match=r"NaN or Inf \(first at index \[1, 0, 0, 2, 3\]"):
        run(net, bad)
    with pytest.raises(InputError, match="probes: no layer named 'nope'"):
        run(net, ev, probes=["nope"])


def test_fanout_map_is_exact_at_borders():
    spec = parse_spec(SPEC)
    net = build_network(spec, _weights(spec))
    fm = fanout_map(net.ops[0])
    # 6 inputs, kernel 3, stride 2, padding 1 -> outputs j=0..2 read inputs 2j-1..2j+1
    per_axis = np.array([1, 2, 1, 2, 1, 1])   # input 0: j=0; 1: j=0,1; 2: j=1; 3: j=1,2; 4: j=2; 5: j=2
    np.testing.assert_array_equal(fm[0], np.outer(per_axis, per_axis) * 3)
    # synops are events times that fan-out: a brute-force count from the kernel geometry agrees
    x = np.zeros((1, 2, 6, 6), f32)
    x[0, 1, 0, 5] = 1
    x[0, 0, 3, 3] = 1
    res = run(net, x, timesteps=1, form="event")
    assert res.trace.layer("conv").synops[0] == 3 * (1 * 1) + 3 * (2 * 2)


def test_trace_save_load_roundtrip(tmp_path):
    spec = parse_spec(SPEC)
    res = run(build_network(spec, _weights(spec)), np.ones((2, 2, 6, 6), f32), probes=["sn1"])
    res.trace.save(tmp_path / "t.npz")
    back = Trace.load(tmp_path / "t.npz")
    assert [r.name for r in back.layers] == [r.name for r in res.trace.layers]
    np.testing.assert_array_equal(back.layer("fc").event_map, res.trace.layer("fc").event_map)
    np.testing.assert_array_equal(back.probes["sn1"]["spikes"], res.trace.probes["sn1"]["spikes"])
    assert back.to_frame().shape[0] == len(res.trace.layers) * 3
    # the fields hwmodel prices by come back: fc is a synaptic layer, sn1 a LIF neuron layer
    assert back.layer("fc").synaptic and not back.layer("sn1").synaptic
    assert (back.layer("sn1").neuron_model, back.layer("fc").neuron_model) == ("lif", "")


def test_trace_of_an_older_schema_is_refused(tmp_path):
    """A trace saved before the pricing fields existed would load with their defaults and price as nothing:
    it is refused with a one-line error saying to run again."""
    import json

    spec = parse_spec(SPEC)
    run(build_network(spec, _weights(spec)), np.ones((1, 2, 6, 6), f32)).trace.save(tmp_path / "t.npz")
    with np.load(tmp_path / "t.npz") as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(str(arrays["header"]))
    header["schema_version"] = 1
    arrays["header"] = np.array(json.dumps(header))
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(InputError, match="schema version 1.*run the network again with --trace"):
        Trace.load(tmp_path / "old.npz")


def test_accuracy_and_label_count():
    spec = parse_spec(SPEC)
    res = run(build_network(spec, _weights(spec)), np.ones((3, 2, 6, 6), f32))
    pred = res.predictions()
    assert accuracy(res, pred) == 1.0
    with pytest.raises(InputError, match="2 labels for 3 samples"):
        accuracy(res, pred[:2])
