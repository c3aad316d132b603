"""Engine counts and neuron updates against hand simulations in NumPy: a residual add's events, a stateless
neuron behind a stateful one fed with events, and the trace of a batched run against per-sample runs summed
by hand, field by field."""

from __future__ import annotations

import dataclasses

import numpy as np

from snnsim.engine import run
from snnsim.network import build_network
from snnsim.layers import parse_spec
from snnsim.trace import LayerTrace

T, N = 5, 6

EVENTS_SPEC = {
    "name": "hand", "input_shape": [6], "timesteps": T, "encoding": "events",
    "layers": [
        {"name": "fc0", "type": "linear", "out_features": 5},
        {"name": "sn0", "type": "lif", "tau": 2.0},                                  # stateful, hard reset to 0
        {"name": "res", "type": "residual", "body": [
            {"name": "fc1", "type": "linear", "out_features": 5, "bias": False},
            {"name": "th", "type": "threshold", "v_threshold": 0.5}]},              # stateless by definition
        {"name": "sn1", "type": "lif", "tau": 2.0, "stateless": True},             # membrane cleared every step
    ],
}


def _weights(seed=4):
    rng = np.random.default_rng(seed)
    return {"fc0.weight": rng.uniform(-0.6, 1.6, (5, 6)).astype(np.float32),
            "fc0.bias": rng.uniform(0.0, 0.6, 5).astype(np.float32),
            "res.fc1.weight": rng.uniform(-0.8, 1.0, (5, 5)).astype(np.float32)}


def _hand(x, w):
    """The network's equations written out in float64: lif H = v + (x - v) / 2, spike H >= 1, hard reset to 0;
    threshold: spike x >= 0.5 with no state; the add; a stateless lif (v = 0 before every step): H = x / 2."""
    v0 = np.zeros((N, 5))
    s0s, ths, sums, outs = [], [], [], []
    for t in range(T):
        h0 = v0 + (x[t] @ w["fc0.weight"].T.astype(float) + w["fc0.bias"] - v0) / 2.0
        s0 = (h0 >= 1.0).astype(float)
        v0 = np.where(s0 > 0, 0.0, h0)
        th = (s0 @ w["res.fc1.weight"].T.astype(float) >= 0.5).astype(float)
        total = th + s0                                    # the residual add (identity shortcut)
        out = (total / 2.0 >= 1.0).astype(float)           # stateless lif: only a sum of 2 reaches threshold
        s0s.append(s0)
        ths.append(th)
        sums.append(total)
        outs.append(out)
    return [np.array(a) for a in (s0s, ths, sums, outs)]


def test_residual_add_and_stateless_neurons_against_a_hand_simulation():
    spec = parse_spec(EVENTS_SPEC)
    w = _weights()
    x = (np.random.default_rng(9).random((T, N, 6)) < 0.5).astype(np.float32)
    res = run(build_network(spec, w), x, probes=["sn0", "res.th", "sn1"])
    s0, th, total, out = _hand(x.astype(float), w)
    assert 0 < s0.mean() < 1 and 0 < th.mean() < 1 and 0 < out.mean() < 1 and (total == 2).any()
    np.testing.assert_array_equal(res.trace.probes["sn0"]["spikes"], s0)
    np.testing.assert_array_equal(res.trace.probes["res.th"]["spikes"], th)
    np.testing.assert_array_equal(res.outputs, out)
    # a stateful neuron behind them would differ: the stateless lif really starts from v = 0 every step
    add = next(rec for rec in res.trace.layers if rec.kind == "add")
    per_t = lambda a: a.reshape(T, -1).astype(bool).sum(axis=1).tolist()  # noqa: E731
    assert add.events_in.tolist() == [a + b for a, b in zip(per_t(th), per_t(s0))]    # both operands' events
    assert add.events_out.tolist() == per_t(total)                                      # nonzeros of the sum
    assert res.trace.layer("sn1").events_out.tolist() == per_t(out)
    assert res.trace.layer("sn1").stateful is False and res.trace.layer("res.th").stateful is False
    assert res.trace.layer("sn0").stateful is True
    assert res.trace.layer("sn1").neuron_updates.tolist() == [N * 5] * T


# ----------------------------------------------------------------------------- merging batch traces
CONV_SPEC = {
    "name": "merge", "input_shape": [2, 6, 6], "timesteps": 3,
    "layers": [
        {"name": "conv", "type": "conv2d", "out_channels": 3, "kernel_size": 3, "padding": 1},
        {"name": "sn1", "type": "lif"},
        {"name": "res", "type": "residual", "body": [
            {"name": "c2", "type": "conv2d", "out_channels": 3, "kernel_size": 3, "padding": 1},
            {"name": "sn2", "type": "if"}]},
        {"name": "flat", "type": "flatten"},
        {"name": "fc", "type": "linear", "out_features": 4},
        {"name": "out", "type": "lif"},
    ],
}

# How each LayerTrace field of a run over several batches follows from the per-sample runs: a new field
# without a rule here fails the test, so the merge cannot silently skip it.
SUMMED = {"events_in", "events_out", "neuron_updates", "event_map", "analog_samples", "event_map_analog"}
SAME = {"name", "kind", "in_shape", "out_shape", "geometry", "n_weights", "n_bias", "neurons", "stateful",
        "state_size", "computed", "fanout_map", "synaptic", "neuron_model", "elementwise"}
ALL_OF = {"binary_in"}
FORM = {"form"}
CONCAT = {"sample_events_in", "sample_events_out", "sample_reach", "sample_analog"}     # [T, samples]


def test_merged_trace_equals_per_sample_runs_combined_by_hand_on_every_field():
    spec = parse_spec(CONV_SPEC)
    from snnsim.weights import random_weights

    w = {k: (v * np.float32(3.0) if k.endswith("weight") else v) for k, v in random_weights(spec, 2).items()}
    net = build_network(spec, w)
    rng = np.random.default_rng(4)
    x = rng.random((7, 2, 6, 6)).astype(np.float32)
    x[::2] = x[::2] > 0.5                      # binary samples among analog ones: binary_in and analog counts vary
    probes = ["sn1", "res.sn2"]
    merged = run(net, x, batch_size=3, probes=probes).trace
    singles = [run(net, x[i:i + 1], batch_size=1, probes=probes).trace for i in range(len(x))]
    fields = {f.name for f in dataclasses.fields(LayerTrace)}
    rules = SUMMED | SAME | ALL_OF | FORM | CONCAT
    assert fields == rules, f"fields without a merge rule: {fields - rules}"
    assert merged.samples == len(x)
    for i, rec in enumerate(merged.layers):
        recs = [tr.layers[i] for tr in singles]
        for name in sorted(fields):
            got, each = getattr(rec, name), [getattr(r, name) for r in recs]
            if name in SUMMED:
                present = [e for e in each if e is not None]
                want = None if not present else sum(np.asarray(e, np.float64) for e in present)
                if want is None:
                    assert got is None, (rec.name, name)
                else:
                    np.testing.assert_array_equal(np.asarray(got, np.float64), want, err_msg=f"{rec.name}.{name}")
            elif name in CONCAT:           # each sample's column, in sample order (zeros where it did nothing)
                if all(e is None for e in each):
                    assert got is None, (rec.name, name)
                else:
                    cols = [np.zeros((len(rec.computed), 1)) if e is None else np.asarray(e, np.float64) for e in each]
                    np.testing.assert_array_equal(np.asarray(got, np.float64), np.concatenate(cols, axis=1),
                                                  err_msg=f"{rec.name}.{name}")
            elif name in ALL_OF:
                np.testing.assert_array_equal(got, np.logical_and.reduce(each), err_msg=f"{rec.name}.{name}")
            elif name in FORM:
                # the form actually used per batch; here the batches are 3+3+1 samples, so compare per timestep
                assert len(got) == len(each[0]) and all(g in ("dense", "event", "", "mixed") for g in got)
            else:
                for e in each:
                    if isinstance(e, np.ndarray):
                        np.testing.assert_array_equal(got, e, err_msg=f"{rec.name}.{name}")
                    else:
                        assert got == e, (rec.name, name)
    for layer in probes:
        for key, arr in merged.probes[layer].items():
            np.testing.assert_array_equal(arr, np.concatenate([tr.probes[layer][key] for tr in singles], axis=1))
    assert any(r.analog_samples is not None and 0 < r.analog_samples.sum() < len(x) * 3 for r in merged.layers)
    assert any(not r.binary_in.all() for r in merged.layers)
