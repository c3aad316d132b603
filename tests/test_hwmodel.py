"""hwmodel: counts derived by hand for tiny networks, energy/latency by hand, and properties (hypothesis).

Every expected number here is derived independently of the code (see the comments next to each value);
the traces are built by hand from ``snnsim.trace`` records, so these tests do not need the engine.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwmodel.arch import ArchError, load_arch, parse_arch
from hwmodel.counts import count
from hwmodel.energy import COMPONENTS, evaluate
from hwmodel.report import price
from hwmodel.regimes import compare, plot
from hwmodel.sweep import default_grid, sweep
from hwmodel.training import training_cost
from snnsim.errors import SnnsimError
from snnsim.trace import LayerTrace, Trace

# ----------------------------------------------------------------------------- hand-built traces


def synaptic(name, kind, in_shape, out_shape, geometry, event_map, n_weights, n_bias, binary=True,
             computed=None):
    em = np.asarray(event_map, np.float32).reshape((-1,) + tuple(in_shape))
    T = len(em)
    comp = np.ones(T, bool) if computed is None else np.asarray(computed, bool)
    events_in = em.reshape(T, -1).sum(1).astype(np.int64)    # event_map counts nonzero inputs per position
    return LayerTrace(name, kind, tuple(in_shape), tuple(out_shape), geometry, n_weights, n_bias, 0, False, 0,
                      comp, ["event"] * T, events_in, np.full(T, binary), np.zeros(T, np.int64),
                      np.zeros(T, np.int64), em, None, synaptic=True)


def neuron(name, n, spikes, samples=1, stateful=True, kind="lif"):
    spikes = np.asarray(spikes, np.int64)
    T = len(spikes)
    return LayerTrace(name, "neuron", (n,), (n,), dict(neuron=kind, stateless=not stateful), 0, 0, n, stateful,
                      n if stateful else 0, np.ones(T, bool), [""] * T, np.zeros(T, np.int64), np.zeros(T, bool),
                      spikes, np.full(T, n * samples, np.int64), neuron_model=kind)


def fc_trace():
    """4 inputs -> fc1 (3, bias) -> LIF -> fc2 (2, no bias) -> LIF, T=2, one sample.
    Input spikes t0 [1,0,1,0], t1 [1,1,1,0]; sn1 fires 1 then 2 ([0,1,0], [1,0,1]); sn2 fires 0 then 1."""
    lin = lambda i, o, b: dict(in_features=i, out_features=o, bias=b)  # noqa: E731
    return Trace("fc", "multistep", 2, 1, "events", [
        synaptic("fc1", "linear", (4,), (3,), lin(4, 3, True), [[1, 0, 1, 0], [1, 1, 1, 0]], 12, 3),
        neuron("sn1", 3, [1, 2]),
        synaptic("fc2", "linear", (3,), (2,), lin(3, 2, False), [[0, 1, 0], [1, 0, 1]], 6, 0),
        neuron("sn2", 2, [0, 1])])


TEST_ARCH = yaml.safe_load("""
name: unit
cores: 1
pes_per_core: 1
clock_mhz: 1000
mapping: sequential
bits: {weight: 8, membrane: 16, bias: 16, activation: 8, event: 16}
memories:
  weights: {size_kib: 1, word_bits: 64}
  membrane: {size_kib: 1, word_bits: 64}
  events: {size_kib: 1, word_bits: 64}
dram: {pj_per_bit: 10, bandwidth_gb_s: 1}
noc: {mean_hops: 2}
dataflow: {membrane: per_neuron, weights: stationary}
energy_pj:
  ac: 1
  mac: 4
  add: 0.5
  mul: 2
  compare: 0.25
  leak: 0.125
  reset: 8
  spike: 16
  hop: 32
  sram: {law: fixed, value: 64}      # 64 pJ per 64-bit access = 1 pJ per bit with narrow-word scaling
timing_ns: {synop: 1, mac: 1, neuron: 1, packet: 1, op: 1, hop: 1, sram: 1, barrier: 10}
""")


def arch(**changes):
    raw = copy.deepcopy(TEST_ARCH)
    for path, value in changes.items():
        node = raw
        keys = path.split("__")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        if value is None:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
    return parse_arch(raw, "test.yaml")


def layer_sum(c, layer, column):
    r = c.rows
    return float(r.loc[r.layer == layer, column].sum())


# ----------------------------------------------------------------------------- hand counts
def test_fc_counts_by_hand():
    c = count(fc_trace())
    assert layer_sum(c, "fc1", "synops") == 15      # 2 events x 3 outputs + 3 x 3
    assert layer_sum(c, "fc2", "synops") == 6       # 1 x 2 + 2 x 2
    assert c.rows.macs_dense.sum() == 0             # all inputs are spikes
    assert layer_sum(c, "sn1", "neuron_updates") == 6 and layer_sum(c, "sn2", "neuron_updates") == 4
    assert c.rows.leak_ops.sum() == 10 and c.rows.compares.sum() == 10
    assert c.rows.resets.sum() == 4                 # 1 + 2 + 0 + 1 spikes
    assert c.rows.u_rw.sum() == 10                  # one read (and one write) per neuron-step
    assert layer_sum(c, "fc1", "bias_reads") == 6 and layer_sum(c, "fc2", "bias_reads") == 0  # 3 words x 2
    assert layer_sum(c, "fc1", "bias_adds") == 6    # one add per output neuron per step
    assert c.rows.packets.sum() == 8                # 2 + 3 events into fc1, 1 + 2 into fc2
    assert c.rows.state_carried_words.sum() == 5    # 3 + 2 words carried from t=0 to t=1
    assert c.rows.addr_add.sum() == 21              # Lemaire Eq. 17: one add per synapse reached


def test_fc_energy_and_latency_by_hand():
    rep = price(fc_trace(), arch())
    e = rep.totals
    assert e["e_synops"] == 21                      # 21 synops x 1 pJ
    assert e["e_neuron"] == 10 * 0.125 + 10 * 0.25 + 4 * 8
    assert e["e_bias"] == 6 * (0.5 + 16)            # add + one 16-bit read at 1 pJ/bit
    assert e["e_weight_mem"] == 21 * 8              # one 8-bit weight per synop
    assert e["e_membrane_mem"] == 20 * 16           # 10 reads + 10 writes of 16 bits
    assert e["e_accum_mem"] == 0                    # per_neuron: accumulation in a register
    assert e["e_event_mem"] == 8 * 2 * 16           # each of 8 events written and read, 16 bits
    assert e["e_noc"] == 8 * 16 + 8 * 2 * 32        # packets + 2 hops each
    assert e["e_addr"] == 21 * 0.5
    assert e["e_dram"] == 0 and e["e_static"] == 0
    assert e["energy_pj"] == pytest.approx(1550.25)
    assert e["proxy_pj"] == pytest.approx(0.9 * 21)
    # sequential, 1 core, 1 PE: step time = sum over units of max(compute, memory, NoC) + barrier
    # t0: unit fc1 6 synops + 3 updates + 2 packets = 11 ns; unit fc2 2 + 2 + 1 = 5 ns  -> 26 ns
    # t1: unit fc1 9 + 3 + 3 = 15 ns;                       unit fc2 4 + 2 + 2 = 8 ns  -> 33 ns
    assert e["latency_ns"] == 59
    assert list(rep.steps_ns) == [26, 33]


def test_fc_per_synop_and_pipelined_by_hand():
    e = price(fc_trace(), arch(dataflow__membrane="per_synop")).totals
    assert e["e_accum_mem"] == 2 * 21 * 16          # each synop reads and writes a 16-bit potential
    assert e["energy_pj"] == pytest.approx(1550.25 + 672)
    # pipelined on 2 cores: fc1 unit on core 0, fc2 unit on core 1; hw step h runs unit u at t = h - u
    # h0: 11, h1: max(15, 5), h2: 8, plus 3 barriers
    rep = price(fc_trace(), arch(mapping="pipelined", cores=2))
    assert rep.totals["latency_ns"] == 11 + 15 + 8 + 30 and rep.totals["hw_steps"] == 3
    assert list(rep.steps_ns) == [21, 25, 18]


def conv_geometry(k, s, p, c_out=2, c_in=1):
    return dict(in_channels=c_in, out_channels=c_out, kernel_size=[k, k], stride=[s, s], padding=[p, p],
                groups=1, bias=False)


def test_conv_stride_padding_border_events_by_hand():
    # 1x5x5 input, 3x3 kernel, stride 2, padding 1 -> 2x3x3. Input row i feeds output rows j with
    # 0 <= i + 1 - 2j < 3: i=0 -> {0}, 1 -> {0,1}, 2 -> {1}, 3 -> {1,2}, 4 -> {2}; reach = 1,2,1,2,1.
    em = np.zeros((1, 1, 5, 5))
    em[0, 0, 0, 0] = em[0, 0, 4, 4] = em[0, 0, 1, 3] = 1     # two corners and one interior event
    tr = Trace("conv", "oneshot", 1, 1, "events",
               [synaptic("c", "conv2d", (1, 5, 5), (2, 3, 3), conv_geometry(3, 2, 1), em, 18, 0)])
    c = count(tr)
    assert c.rows.synops.sum() == 1 * 1 * 2 + 1 * 1 * 2 + 2 * 2 * 2   # = 12
    assert c.rows.addr_mul.sum() == 6 and c.rows.addr_add.sum() == 27  # Lemaire Eq. 16: 2 and 3x3 per event
    # 1x6x6, 3x3, stride 2, no padding -> 2x2: rows 0,1 -> {0}; 2 -> {0,1}; 3,4 -> {1}; row 5 feeds nothing
    em = np.zeros((1, 1, 6, 6))
    em[0, 0, 5, 5] = em[0, 0, 2, 2] = em[0, 0, 0, 5] = 1
    tr = Trace("conv", "oneshot", 1, 1, "events",
               [synaptic("c", "conv2d", (1, 6, 6), (2, 2, 2), conv_geometry(3, 2, 0), em, 18, 0)])
    assert count(tr).rows.synops.sum() == 0 + 2 * 2 * 2 + 0


def test_analog_input_is_macs_and_encoder_switch():
    # a direct-encoded conv that ran at t=0 only (its output is replayed), analog input, T=4
    em = np.zeros((4, 1, 5, 5))
    em[0] = 1.0                                       # 25 nonzero pixels at t=0
    layer = synaptic("c", "conv2d", (1, 5, 5), (2, 3, 3), conv_geometry(3, 2, 1), em, 18, 2, binary=False,
                     computed=[1, 0, 0, 0])
    tr = Trace("enc", "multistep", 4, 1, "direct", [layer])
    dense = 2 * 3 * 3 * 1 * 9                         # Cout*Hout*Wout*Cin*K*K, padding taps included
    as_run, every = count(tr, "as_run"), count(tr, "every_step")
    assert as_run.rows.synops.sum() == 0 and as_run.rows.macs_dense.sum() == dense
    assert every.rows.macs_dense.sum() == 4 * dense   # the papers' proxy: the encoder T times
    # nonzero MACs = sum of exact fan-outs over all 25 pixels = (1+2+1+2+1)^2 * 2 = 98
    assert as_run.rows.macs_nz.sum() == 98
    assert price(tr, arch(dataflow__macs="nonzero")).totals["macs"] == 98
    assert as_run.rows.bias_adds.sum() == 18          # 2x3x3 outputs, once
    assert every.rows.bias_adds.sum() == 4 * 18
    assert as_run.rows.bias_reads.sum() == 2          # one read per bias word (per channel)
    # dense reads: weight-stationary reuse reads 18 weights and 25 inputs once; Lemaire's per-MAC
    # convention reads a weight and an input per MAC (162). 8-bit values at 1 pJ/bit = 8 pJ each;
    # the 25 nonzero inputs are also written into the event buffer once (25 x 8 pJ).
    reuse = price(tr, arch()).totals
    per_mac = price(tr, arch(dataflow__mac_reads="per_mac")).totals
    assert reuse["e_weight_mem"] == 18 * 8 and per_mac["e_weight_mem"] == 162 * 8
    assert reuse["e_event_mem"] == (25 + 25) * 8 and per_mac["e_event_mem"] == (25 + 162) * 8


def test_counts_are_per_inference():
    tr = fc_trace()
    for rec in tr.layers:                             # the same run summed over 4 samples
        rec.events_in *= 4
        rec.events_out *= 4
        rec.neuron_updates *= 4
        if rec.event_map is not None:
            rec.event_map *= 4
    tr.samples = 4
    assert price(tr, arch()).totals["energy_pj"] == pytest.approx(1550.25)


def test_stateless_neurons_have_no_membrane_traffic():
    tr = fc_trace()
    tr.layers[1] = neuron("sn1", 3, [1, 2], stateful=False)
    rep = price(tr, arch())
    sn1 = rep.breakdown[rep.breakdown.layer == "sn1"]
    assert sn1.u_reads.sum() == 0 and sn1.e_membrane_mem.sum() == 0 and sn1.leak_ops.sum() == 0
    assert sn1.state_carried_words.sum() == 0
    assert rep.totals["state_bytes"] == 2 * 16 / 8    # only sn2's 2 potentials


def test_spill_to_dram_and_no_dram_error():
    c = count(fc_trace())
    p = arch().params()
    need_w = (12 * 8 + 3 * 16 + 6 * 8) / 8           # 24 bytes of weights and bias
    p.update(weights_bytes=need_w)
    r = evaluate(c, p)
    assert r["spills"]["weights"].sum() == 0
    p.update(weights_bytes=need_w - 8)                # one 64-bit word smaller
    r = evaluate(c, p)
    assert r["spills"]["weights"].sum() == 64         # fc2's last word; streamed at both steps
    assert r["dram_bits"].sum() == 2 * 64 and r["E"]["dram"].sum() == 2 * 64 * 10
    # without DRAM: fc1 (18 B) fits in 20 B, fc2 (6 B) does not: 4 B of it spill -> error naming both
    with pytest.raises(ArchError, match=r"memories\.weights\.size_kib: layer 'fc2' needs 6 B .* 4 B .*no dram"):
        price(c, arch(dram=None, memories__weights__size_kib=20 / 1024))


def test_refetch_reads_all_weights_every_step():
    e = price(fc_trace(), arch(dataflow__weights="refetch")).totals
    assert e["dram_bytes"] == 2 * 24                  # 24 bytes of weights and bias, each step
    assert e["e_dram"] == 2 * 24 * 8 * 10


# ----------------------------------------------------------------------------- architecture files
@pytest.mark.parametrize("change,field", [
    (dict(memories__weights__size_kib=0), "memories.weights.size_kib"),
    (dict(memories__membrane__size_kib=-4), "memories.membrane.size_kib"),
    (dict(cores=0), "cores"),
    (dict(memories__cache={"size_kib": 4}), "memories.cache"),
    (dict(energy_pj__flux=1.0), "energy_pj.flux"),
    (dict(dataflow__membrane="sometimes"), "dataflow.membrane"),
    (dict(dram=None, dataflow__weights="refetch"), "dataflow.weights"),
    (dict(bits__weight=None), "bits.weight"),
    (dict(energy_pj__sram={"law": "table", "points": [[32, 2], [8, 1]]}), "energy_pj.sram.points"),
    (dict(energy_pj__ac={"value": -1, "source": "x"}), "energy_pj.ac.value"),
])
def test_invalid_arch_names_the_field(change, field):
    with pytest.raises(ArchError) as err:
        arch(**change)
    assert f"{field}:" in str(err.value) and "test.yaml" in str(err.value)
    assert isinstance(err.value, SnnsimError)


def test_presets_load_with_sources():
    for name in ("proxy45", "evt45", "loihi"):
        a = load_arch(name)
        consts = a.constants()
        assert a.source and consts.source.str.len().min() > 0
    evt = load_arch("evt45")
    assert evt.energy["ac"] == 0.05 and evt.energy["mac"] == 0.30 and evt.dram["pj_per_bit"] == 20
    # Horowitz 2014: a 64-bit read of an 8 KB SRAM costs 10 pJ (docs/energy_sources.md)
    assert float(evt.sram.access_pj(8192)) == pytest.approx(10.0)
    assert "Horowitz" in evt.constants().set_index("constant").source["energy_pj.ac"]
    proxy = load_arch("proxy45")
    assert proxy.energy["mac"] == 4.6 and proxy.energy["ac"] == 0.9
    assert load_arch("loihi").energy["ac"] == 23.6


def test_proxy45_is_arithmetic_only():
    e = price(fc_trace(), load_arch("proxy45")).totals
    assert e["energy_pj"] == pytest.approx(0.9 * 21) == pytest.approx(e["proxy_pj"])


# ----------------------------------------------------------------------------- properties
def brute_force_fanout(h, w, k, s, p):
    """Outputs reached from each input position, by enumerating every output and kernel tap."""
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    reach = np.zeros((h, w))
    for oy, ox, ky, kx in itertools.product(range(ho), range(wo), range(k), range(k)):
        iy, ix = oy * s - p + ky, ox * s - p + kx
        if 0 <= iy < h and 0 <= ix < w:
            reach[iy, ix] += 1
    return reach, ho, wo


@settings(max_examples=40, deadline=None)
@given(h=st.integers(3, 9), w=st.integers(3, 9), k=st.integers(1, 3), s=st.integers(1, 3),
       p=st.integers(0, 1), c_in=st.integers(1, 2), c_out=st.integers(1, 3), T=st.integers(1, 3),
       seed=st.integers(0, 10_000))
def test_synops_equal_events_times_fanout(h, w, k, s, p, c_in, c_out, T, seed):
    if 2 * p > k:
        p = 0
    reach, ho, wo = brute_force_fanout(h, w, k, s, p)
    em = (np.random.default_rng(seed).random((T, c_in, h, w)) < 0.3).astype(np.float32) * 3  # 3 samples
    tr = Trace("p", "multistep", T, 3, "events", [synaptic(
        "c", "conv2d", (c_in, h, w), (c_out, ho, wo), conv_geometry(k, s, p, c_out, c_in), em, 1, 0)])
    expected = (em * reach[None, None] * c_out).sum() / 3
    assert count(tr).rows.synops.sum() == pytest.approx(expected)


spikes = st.lists(st.integers(0, 3), min_size=1, max_size=4)


@settings(max_examples=30, deadline=None)
@given(s1=spikes, seed=st.integers(0, 1000), per_synop=st.booleans())
def test_stateless_layers_no_membrane_traffic(s1, seed, per_synop):
    T = len(s1)
    rng = np.random.default_rng(seed)
    lin = dict(in_features=4, out_features=3, bias=True)
    tr = Trace("p", "multistep", T, 1, "events", [
        synaptic("fc", "linear", (4,), (3,), lin, (rng.random((T, 4)) < 0.5), 12, 3),
        neuron("sn", 3, s1, stateful=False)])
    rep = price(tr, arch(dataflow__membrane="per_synop" if per_synop else "per_neuron"))
    assert rep.breakdown.u_reads.sum() == 0 and rep.totals["e_membrane_mem"] == 0
    assert rep.totals["state_carried_bits"] == 0


UNIT_COSTS = ["ac", "mac", "add", "mul", "compare", "leak", "reset", "neuron_update", "spike", "hop"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(UNIT_COSTS + ["sram", "dram", "static"]), delta=st.floats(0.01, 100),
       per_synop=st.booleans(), small=st.booleans())
def test_energy_monotone_in_every_unit_cost(key, delta, per_synop, small):
    kw = dict(dataflow__membrane="per_synop" if per_synop else "per_neuron")
    if small:   # make weights spill so that the DRAM cost matters
        kw["memories__weights__size_kib"] = 16 / 1024
    tr = fc_trace()
    tr.layers[0].event_map[:, 0] = 0.0               # vary the activity a little too
    base = price(tr, arch(**kw)).totals["energy_pj"]
    if key == "sram":
        kw["energy_pj__sram"] = {"law": "fixed", "value": 64 + delta}
    elif key == "dram":
        kw["dram"] = {"pj_per_bit": 10 + delta, "bandwidth_gb_s": 1}
    elif key == "static":
        kw["static_mw_per_core"] = delta
    else:
        kw[f"energy_pj__{key}"] = TEST_ARCH["energy_pj"].get(key, 0) + delta
    assert price(tr, arch(**kw)).totals["energy_pj"] >= base


@settings(max_examples=25, deadline=None)
@given(s1=spikes, seed=st.integers(0, 1000), mapping=st.sampled_from(["sequential", "pipelined"]))
def test_doubling_T_doubles_per_step_terms(s1, seed, mapping):
    rng = np.random.default_rng(seed)
    T = len(s1)
    inp = (rng.random((T, 4)) < 0.5).astype(np.float32)
    hidden = (rng.random((T, 3)) < 0.5).astype(np.float32)

    def trace(reps):
        lin = lambda i, o, b: dict(in_features=i, out_features=o, bias=b)  # noqa: E731
        return Trace("p", "multistep", T * reps, 1, "events", [
            synaptic("fc1", "linear", (4,), (3,), lin(4, 3, True), np.tile(inp, (reps, 1)), 12, 3),
            neuron("sn1", 3, np.tile(hidden.sum(1), reps)),
            synaptic("fc2", "linear", (3,), (2,), lin(3, 2, False), np.tile(hidden, (reps, 1)), 6, 0),
            neuron("sn2", 2, np.tile(s1, reps))])

    a = arch(mapping=mapping, cores=2, memories__weights__size_kib=16 / 1024)   # weights spill: DRAM per step
    one, two = price(trace(1), a), price(trace(2), a)
    for col in ("synops", "neuron_updates", "u_rw", "packets", "bias_reads", "resets", "dram_bytes"):
        assert two.breakdown[col].sum() == pytest.approx(2 * one.breakdown[col].sum())
    assert two.totals["energy_pj"] == pytest.approx(2 * one.totals["energy_pj"])
    if mapping == "sequential":
        assert two.totals["latency_ns"] == pytest.approx(2 * one.totals["latency_ns"])


@settings(max_examples=25, deadline=None)
@given(extra=st.integers(0, 3), which=st.sampled_from(["weights", "membrane"]))
def test_buffer_just_large_enough_spills_nothing(extra, which):
    c = count(fc_trace())
    p = arch().params()
    need = 24 if which == "weights" else 10          # bytes: weights+bias 24; 5 potentials x 16 bits = 10
    word = p[f"{which}_word"] / 8
    p[f"{which}_bytes"] = need + extra * word
    assert evaluate(c, p)["spills"][which].sum() == 0
    p[f"{which}_bytes"] = need - word                # one word smaller
    assert evaluate(c, p)["spills"][which].sum() > 0


# ----------------------------------------------------------------------------- regimes, sweep, training
def test_regime_table_and_plot(tmp_path):
    multi = fc_trace()
    one = Trace("fc", "oneshot", 1, 1, "events", [
        synaptic("fc1", "linear", (4,), (3,), dict(in_features=4, out_features=3, bias=True), [[1, 0, 1, 0]],
                 12, 3), neuron("sn1", 3, [1], stateful=False),
        synaptic("fc2", "linear", (3,), (2,), dict(in_features=3, out_features=2, bias=False), [[0, 1, 0]],
                 6, 0), neuron("sn2", 2, [0], stateful=False)])
    table, reports = compare({"oneshot": one, "multistep": multi}, arch())
    assert list(table.regime) == ["multistep", "oneshot"]
    assert table.energy_ratio.iloc[0] == 1.0
    assert table.state_bytes.iloc[1] == 0 and table.state_bytes.iloc[0] == 10
    # one-shot by hand (TEST_ARCH): 2 events x 3 + 1 x 2 = 8 synops x 1 pJ; 5 compares x 0.25 + 1 reset x 8
    # (stateless: no leak, no membrane traffic); fc1's 3 bias adds x 0.5 + 3 16-bit reads x 16; 8 weight reads
    # x 8; 3 events written and read at 16 bits (96); 3 packets x 16 + 3 x 2 hops x 32 (240); 8 address adds x 0.5
    e_one = 8 + (5 * 0.25 + 8) + (3 * 0.5 + 3 * 16) + 8 * 8 + 3 * 2 * 16 + (3 * 16 + 3 * 2 * 32) + 8 * 0.5
    assert e_one == 470.75 and table.energy_pj.iloc[1] == e_one and table.energy_pj.iloc[0] == 1550.25
    # one step: unit fc1 6 synops + 3 updates + 2 packets = 11 ns, unit fc2 2 + 2 + 1 = 5 ns, barrier 10 ns
    assert table.latency_ns.iloc[1] == 11 + 5 + 10 and table.latency_ns.iloc[0] == 59
    assert table.energy_ratio.iloc[1] == pytest.approx(470.75 / 1550.25)
    assert table.latency_ratio.iloc[1] == pytest.approx(26 / 59)
    assert table.proxy_ratio.iloc[1] == pytest.approx(8 / 21)          # 0.9 pJ per synop on both sides
    paths = plot(reports, tmp_path / "e")
    assert all(p.exists() and p.stat().st_size > 1000 for p in paths)


def test_sweep_variants_by_hand():
    """Each variant's energy and latency derived by hand from TEST_ARCH's constants and fc_trace's counts
    (test_fc_energy_and_latency_by_hand: 1550.25 pJ and 59 ns at 16-bit membranes, per_neuron, 1 KiB buffers),
    not from the single-architecture front end the sweep shares its code with."""
    c = count(fc_trace())
    grid = pd.DataFrame(dict(weights_kib=[16 / 1024, 1, 1], bits_membrane=[16, 8, 32], per_synop=[0, 1, 1]))
    res = sweep(c, arch(), grid)
    # variant 0: a 16-byte weight buffer. Weights and bias take 12x8 + 3x16 = 144 bits (fc1), 6x8 = 48 (fc2);
    # filled in order, 128 bits fit: fc1 spills 16 bits, fc2 all its 48, streamed from DRAM at both steps:
    # 2 x 64 bits x 10 pJ/bit = 1280 pJ. DRAM time at 1 GB/s (8 bits/ns): fc1 2 ns, fc2 6 ns per step, against
    # core times t0 11 and 5 ns, t1 15 and 8 ns: t0 = 11 + max(5, 6) + 10 (barrier) = 27, t1 = 15 + 8 + 10 = 33
    # variant 1: 8-bit membranes, per-synop accumulation: state 20 x 8 pJ (instead of 20 x 16) and a
    # read-modify-write of an 8-bit potential per synop, 2 x 21 x 8 pJ; memory time stays below compute
    # (fc1 at t1: (2 x 3 + 2 x 9) words of 8/64 at 1 ns = 3 ns < 15 ns), so the latency is the base 59 ns
    # variant 2: 32-bit membranes, per synop: 20 x 32 and 2 x 21 x 32 pJ; fc1 at t1: 24 x 32/64 = 12 ns < 15 ns
    base, state16 = 1550.25, 20 * 16
    assert list(res.energy_pj) == [base + 2 * 64 * 10, base - state16 + 20 * 8 + 2 * 21 * 8,
                                   base - state16 + 20 * 32 + 2 * 21 * 32]
    assert list(res.latency_ns) == [27 + 33, 59, 59]
    assert list(res.e_dram) == [1280, 0, 0] and list(res.dram_bytes) == [16, 0, 0]
    assert list(res.e_accum_mem) == [0, 2 * 21 * 8, 2 * 21 * 32]
    assert list(res.e_membrane_mem) == [20 * 16, 20 * 8, 20 * 32]
    assert res.feasible.all()
    big = sweep(c, load_arch("evt45"), default_grid())
    assert len(big) == 1000 and big.feasible.all()


def test_sweep_marks_infeasible_without_dram():
    res = sweep(count(fc_trace()), arch(dram=None), pd.DataFrame(dict(weights_kib=[1, 8 / 1024])))
    assert list(res.feasible) == [True, False] and np.isnan(res.energy_pj[1])


def test_training_cost_by_hand():
    c = count(fc_trace())
    a = arch()
    phases, summary = training_cost(c, a)
    s = summary.set_index("method")
    assert s.stored_bytes["bptt"] == 2 * 5 * (1 + 16) / 8     # T x neurons x (spike + 16-bit u)
    assert s.stored_bytes["reversible"] < s.stored_bytes["bptt"]
    fwd = price(c, a).totals["energy_pj"]
    ph = phases.set_index(["method", "phase"]).energy_pj
    assert ph["reversible", "recompute"] == pytest.approx(fwd)  # the forward run again
    # backward: PGU per neuron-step (1 mul + 2 adds = 3 pJ) x 10; input-gradient MACs only for fc2:
    # (1 - 0.7) x 6 dense MACs x 2 steps = 3.6 MACs at 4 pJ
    bwd = phases[(phases.method == "bptt") & (phases.phase == "backward")].iloc[0]
    assert bwd.pgu_ops == 10 and bwd.mac_ops == pytest.approx(3.6)
    upd = phases[(phases.method == "bptt") & (phases.phase == "update")].iloc[0]
    assert upd.ac_ops == 21                                    # spike x delta = the run's synops


# ----------------------------------------------------------------------------- CLI (no engine needed)
def test_cli_list_presets_and_errors():
    from snnsim.cli.hw import hw

    r = CliRunner().invoke(hw, ["--list-presets"])
    assert r.exit_code == 0 and "proxy45" in r.output and "Davies" in r.output
    r = CliRunner().invoke(hw, ["net.yaml", "--weights", "w.npz", "--arch", "nosuch"])
    assert r.exit_code == 2 and "error: --arch" in r.output
    r = CliRunner().invoke(hw, [])
    assert r.exit_code == 2 and "--weights" in r.output


def test_components_sum_to_total():
    rep = price(fc_trace(), load_arch("evt45"))
    assert sum(rep.totals[f"e_{k}"] for k in COMPONENTS) == pytest.approx(rep.totals["energy_pj"])
    assert rep.breakdown.e_total.sum() == pytest.approx(rep.totals["energy_pj"])


# ----------------------------------------------------------------------------- with the engine
NETWORKS = __import__("pathlib").Path(__file__).resolve().parent.parent / "networks"


@pytest.fixture(scope="module")
def mnist_runs():
    from snnsim.data import load_dataset
    from snnsim.network import build_network
    from snnsim.layers import load_spec
    from snnsim.weights import random_weights

    from snnsim.cli.hw import run_regimes

    spec = load_spec(NETWORKS / "mnist_conv.yaml")
    net = build_network(spec, random_weights(spec, 0))
    x, _ = load_dataset("mnist").split("test")
    return run_regimes(net, x[::50][:12], 4, ["multistep", "oneshot"], batch_size=5)


def test_engine_traces_count_consistently(mnist_runs):
    from hwmodel.counts import check_fanout

    multi, one = mnist_runs["multistep"], mnist_runs["oneshot"]
    assert multi.samples == 12 and one.regime == "oneshot" and one.timesteps == 1
    for tr in (multi, one):
        assert check_fanout(tr) == []
        c = count(tr)
        for rec in tr.layers:     # hwmodel's synops (binary inputs) + nonzero MACs = the trace's own sum
            sel = c.rows.layer == rec.name
            assert (c.rows.synops[sel] + c.rows.macs_nz[sel]).sum() * tr.samples == pytest.approx(rec.synops.sum())
    # one-shot: nothing carried, so no membrane traffic; multi-step: every LIF layer carries its state
    assert price(one, load_arch("evt45")).totals["e_membrane_mem"] == 0
    rep = price(multi, load_arch("evt45"))
    assert rep.totals["state_bytes"] == (16 * 28 * 28 + 32 * 14 * 14 + 128 + 10) * 2
    assert rep.totals["e_membrane_mem"] > 0


def test_regimes_on_all_presets(mnist_runs):
    with pytest.raises(ArchError, match="conv1"):       # Loihi 1 takes spikes only; conv1's input is graded
        compare(mnist_runs, load_arch("loihi"))
    for name in ("proxy45", "evt45"):
        table, _ = compare(mnist_runs, load_arch(name))
        assert (table.energy_pj > 0).all() and (table.latency_ns > 0).all()
        assert table.state_bytes.iloc[1] == 0


def test_cli_end_to_end(tmp_path):
    from snnsim.layers import load_spec
    from snnsim.weights import random_weights, save_npz

    from snnsim.cli.hw import hw

    w = tmp_path / "w.npz"
    save_npz(w, random_weights(load_spec(NETWORKS / "digits_mlp.yaml"), 0))
    out = tmp_path / "out"
    r = CliRunner().invoke(hw, [str(NETWORKS / "digits_mlp.yaml"), "--weights", str(w), "--arch", "evt45",
                                "--dataset", "digits", "--limit", "16", "-T", "3", "--training", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "multistep" in r.output and "oneshot" in r.output and "Horowitz" in r.output
    for f in ("hw_regimes.csv", "hw_components.csv", "hw_breakdown.csv", "hw_constants.csv", "hw_training.csv",
              "hw_energy.png", "hw_energy.svg"):
        assert (out / f).stat().st_size > 0
    table = pd.read_csv(out / "hw_regimes.csv")
    assert list(table.regime) == ["multistep", "oneshot"] and table.timesteps.tolist() == [3, 1]
    r = CliRunner().invoke(hw, [str(NETWORKS / "digits_mlp.yaml"), "--weights", str(w), "--dataset", "digits",
                                "--regimes", "multistep,trev"])
    assert r.exit_code == 2 and "trev" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**TEST_ARCH, "dram": None,
                                   "memories": {**TEST_ARCH["memories"], "weights": {"size_kib": 1}}}))
    r = CliRunner().invoke(hw, [str(NETWORKS / "digits_mlp.yaml"), "--weights", str(w), "--dataset", "digits",
                                "--limit", "4", "--arch", str(bad)])
    assert r.exit_code == 2 and "memories.weights.size_kib: layer 'fc1'" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_membrane_spill_is_read_and_written_by_hand():
    """The carried state of fc_trace: sn1 3 x 16 = 48 bits, sn2 2 x 16 = 32 bits, filling the membrane buffer in
    execution order. A 64-bit buffer on one core holds sn1 and half of sn2: sn2's last 16 bits live in DRAM and
    are read and written at each of the 2 steps (2 x 2 x 16 = 64 bits, 10 pJ/bit). Two cores hold 128 bits:
    nothing spills."""
    c = count(fc_trace())
    p = arch().params()
    p.update(membrane_bytes=8)
    r = evaluate(c, p)
    layers = list(c.layers.layer)
    spill = dict(zip(layers, np.asarray(r["spills"]["membrane"]).reshape(-1)))
    assert spill["sn1"] == 0 and spill["sn2"] == 16
    assert r["dram_bits"].sum() == 64 and r["E"]["dram"].sum() == 640
    p.update(cores=2)
    r2 = evaluate(c, p)
    assert np.asarray(r2["spills"]["membrane"]).sum() == 0 and r2["dram_bits"].sum() == 0
    # every other dynamic term is priced the same on 1 or 2 cores (the work does not change, only where it runs)
    assert set(r2["E"]) == set(r["E"]) and "noc" in r["E"]
    for k in r["E"]:
        if k != "dram":
            assert r2["E"][k].sum() == pytest.approx(r["E"][k].sum()), k
