"""hwmodel on T-RevSNN (temporal-reversible) traces: counts and energy derived by hand on a tiny hand-built
trace, properties of stateless threshold layers, and the regime CLI on trev_small end to end.

Pricing rules under test (docs/hwmodel.md, "T-RevSNN"): a 'state' record c[t] = o + alpha * c[t-1] reads
c[t-1] (t > 0) and writes c[t] when it is carried to t+1, at membrane width, with one multiply and one add
per element at t > 0; 'layer_scale' is one multiply per element; 'upsample' reads each input element and
writes each output element (activation width); threshold neurons are stateless; only computed steps count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from test_hwmodel import arch, conv_geometry, synaptic

from hwmodel.arch import load_arch
from hwmodel.counts import check_fanout, count
from hwmodel.report import price
from hwmodel.regimes import compare
from snnsim.trace import LayerTrace, Trace

NETWORKS = Path(__file__).resolve().parent.parent / "networks"
S = (2, 2, 2)           # the level's state shape in the hand-built traces: 8 elements


# how each kind of record is priced (the pricing fields its op sets in a real run, snnsim.trace)
ELEMENTWISE = {"add": "per_event", "state": "carry", "layer_scale": "channel_multiply", "upsample": "copy"}


def rec(name, kind, in_shape, out_shape, computed, events_in=None, nu=None, events_out=None, geometry=None,
        n_weights=0, stateful=False, state_size=0, neurons=0, binary=False):
    T = len(computed)
    z = lambda v: np.zeros(T, np.int64) if v is None else np.asarray(v, np.int64)  # noqa: E731
    return LayerTrace(name, kind, tuple(in_shape), tuple(out_shape), geometry or {}, n_weights, 0, neurons,
                      stateful, state_size, np.asarray(computed, bool), [""] * T, z(events_in),
                      np.full(T, binary), z(events_out), z(nu), elementwise=ELEMENTWISE.get(kind, ""),
                      neuron_model=(geometry or {}).get("neuron", "") if kind == "neuron" else "")


def quant(name, computed, spikes):
    """A T-RevSNN turned-off neuron (threshold, stateless) on the level shape."""
    return rec(name, "neuron", S, S, computed, events_in=[8 * c for c in computed], nu=[8 * c for c in computed],
               events_out=spikes, neurons=8,
               geometry=dict(neuron="threshold", v_threshold=0.5, spike_rule="gt", stateless=True))


def state(t, T, computed):
    carried = t < T - 1
    return rec(f"subnet{t}.c0", "state", S, S, computed, events_in=[8 * c for c in computed],
               nu=[8 * c for c in computed], events_out=[8 * c for c in computed], n_weights=2, neurons=8,
               stateful=carried, state_size=8 if carried else 0, geometry=dict(column=t, level=0))


def trev_trace():
    """T=2, one sample. Column 0: stem (1x1 conv on the 4 analog pixels, run once) -> quant (3 spikes) ->
    1x1 conv 2->2 on the spikes -> layer scale -> residual add -> state c0[0] (carried). Column 1: the up
    path's upsample 2x1x1 -> 2x2x2, the fusion add, state c0[1] (last column: not carried)."""
    one, two = [1, 0], [0, 1]
    stem_em = np.zeros((2, 1, 2, 2))
    stem_em[0] = 1
    conv_em = np.zeros((2,) + S)
    conv_em[0, 0, 0, 0] = conv_em[0, 1, 0, 1] = conv_em[0, 1, 1, 1] = 1
    return Trace("trev_tiny", "trev", 2, 1, "direct", [
        synaptic("stem", "conv2d", (1, 2, 2), S, conv_geometry(1, 1, 0), stem_em, 2, 0, binary=False,
                 computed=one),
        quant("subnet0.level0.quant", one, [3, 0]),
        synaptic("subnet0.level0.conv", "conv2d", S, S, conv_geometry(1, 1, 0, c_in=2), conv_em, 4, 0,
                 computed=one),
        rec("subnet0.level0.gamma", "layer_scale", S, S, one, events_in=[8, 0], events_out=[8, 0]),
        rec("subnet0.level0.add", "add", S, S, one, events_in=[16, 0], events_out=[8, 0]),
        state(0, 2, one),
        rec("subnet1.level0.fusion.up.upsample", "upsample", (2, 1, 1), S, two, events_in=[0, 2],
            events_out=[0, 8], geometry=dict(scale_factor=2)),
        rec("subnet1.level0.fusion.add", "add", S, S, two, events_in=[0, 12], events_out=[0, 8]),
        state(1, 2, two)])


def layer_sum(c, layer, column):
    return float(c.rows.loc[c.rows.layer == layer, column].sum())


# ----------------------------------------------------------------------------- hand-derived numbers
def test_trev_counts_by_hand():
    c = count(trev_trace())
    # state: c[0] = o is written (carried to column 1), nothing read, no arithmetic (c[-1] = 0);
    # c[1] = o + alpha * c[0] reads c[0] and does 8 multiplies and 8 adds; c[1] is not carried: no write
    assert layer_sum(c, "subnet0.c0", "state_writes") == 8 and layer_sum(c, "subnet0.c0", "state_reads") == 0
    assert layer_sum(c, "subnet1.c0", "state_reads") == 8 and layer_sum(c, "subnet1.c0", "state_writes") == 0
    assert layer_sum(c, "subnet0.c0", "state_mul_adds") == 0 and layer_sum(c, "subnet1.c0", "state_mul_adds") == 8
    assert c.rows.state_carried_words.sum() == 8
    assert layer_sum(c, "subnet1.c0", "bias_reads") == 2              # alpha, one word per channel, at t > 0
    # layer scale: one multiply per element (8) and its 2 per-channel gammas
    assert layer_sum(c, "subnet0.level0.gamma", "mul_ops") == 8
    assert layer_sum(c, "subnet0.level0.gamma", "bias_reads") == 2
    # upsample 2x1x1 -> 2x2x2: 2 reads + 8 writes, no arithmetic
    up = "subnet1.level0.fusion.up.upsample"
    assert layer_sum(c, up, "copy_words") == 10 and layer_sum(c, up, "other_ops") == 0
    # adds: one per nonzero input (16 residual, 12 fusion)
    assert c.rows.other_ops.sum() == 28
    # conv on spikes: 3 events x 2 outputs = 6 synops; stem on analog input: 8 dense MACs, once
    assert c.rows.synops.sum() == 6 and c.rows.macs_dense.sum() == 8
    # the threshold neuron: 8 compares, 3 resets, no leak, no membrane state
    q = "subnet0.level0.quant"
    assert layer_sum(c, q, "compares") == 8 and layer_sum(c, q, "resets") == 3
    assert layer_sum(c, q, "leak_ops") == 0 and layer_sum(c, q, "u_rw") == 0
    # the papers' 'encoder T times' convention does not apply: a T-RevSNN computes its stem once by design
    assert count(trev_trace(), "every_step").rows.macs_dense.sum() == 8


def test_trev_energy_and_latency_by_hand():
    rep = price(trev_trace(), arch())      # 1 pJ per bit of SRAM; membrane 16, activation 8, bias 16 bits
    e = rep.totals
    assert e["e_membrane_mem"] == (8 + 8) * 16          # read c[0] + write c[0], 16-bit words
    assert e["e_neuron"] == 8 * 0.25 + 3 * 8 + 8 * (2 + 0.5)   # compares, resets, state mul + add
    assert e["e_other"] == 28 * 0.5 + 8 * 2             # adds; layer-scale multiplies
    assert e["e_bias"] == (2 + 2) * 16                  # gamma and alpha reads
    assert e["e_synops"] == 6 and e["e_macs"] == 8 * 4
    assert e["e_weight_mem"] == (6 + 2) * 8             # a weight per synop; stem's 2 weights once (reuse)
    # events: 3 spikes written and read (16 bits); analog: 4 stem inputs written and read once, plus the
    # upsample's 2 reads and 8 writes, 8 bits each
    assert e["e_event_mem"] == 3 * 2 * 16 + (4 + 4 + 10) * 8
    assert e["e_noc"] == 7 * 16 + 7 * 2 * 32            # 4 + 3 packets, 2 hops each
    assert e["e_addr"] == 6 * 2 + (14 + 3) * 0.5        # spikes: 2 mul + 1 add each; stem: 4 + 8 + 2 adds
    assert e["e_accum_mem"] == 0 and e["e_dram"] == 0
    assert e["energy_pj"] == pytest.approx(1318.5)
    assert e["proxy_pj"] == pytest.approx(4.6 * 8 + 0.9 * 6)
    assert e["state_bytes"] == 16 and e["state_carried_bytes"] == 16
    # 1 core, 1 PE, 1 ns per op, barrier 10. t0: unit stem 8 MACs + 8 updates + 4 packets = 20;
    # unit conv 6 synops + 8 state updates + 3 packets + 16 adds + 8 multiplies = 41.  t1: 8 + 12 = 20
    assert list(rep.steps_ns) == [20 + 41 + 10, 20 + 10]


def test_trev_one_column_has_no_state_traffic():
    """A T=1 run of a T-RevSNN (oneshot): c[0] = o is neither read nor carried."""
    tr = Trace("trev_tiny", "oneshot", 1, 1, "direct", [quant("q", [1], [2]), state(0, 1, [1])])
    rep = price(tr, arch(dataflow__membrane="per_synop"))
    assert rep.totals["e_membrane_mem"] == 0 and rep.totals["state_bytes"] == 0
    assert rep.breakdown.state_mul_adds.sum() == 0 and rep.breakdown.u_reads.sum() == 0


def test_state_and_shared_weights_occupy_one_slot():
    """Sequential mapping: the c_l of every column reuse one slot (c[t] overwrites c[t-1] in place), and a
    conv with shared_from uses its holder's stored weights. Buffers exactly one column / one copy large."""
    T = 3
    layers = []
    for t in range(T):
        comp = [int(t == s) for s in range(T)]
        em = np.zeros((T,) + S)
        em[t, 0, 0, 0] = 1
        g = conv_geometry(1, 1, 0, c_in=2) | dict(shared_from="subnet0.conv" if t else "")
        layers += [synaptic(f"subnet{t}.conv", "conv2d", S, S, g, em, 4, 0, computed=comp), state(t, T, comp)]
    tr = Trace("slots", "trev", T, 1, "direct", layers)
    # weights: one 4 x 8-bit copy + three alphas (2 x 8 bits) = 80 bits = 10 B; state: 8 x 16 bits = 16 B
    a = arch(memories__weights__size_kib=10 / 1024, memories__membrane__size_kib=16 / 1024)
    rep = price(tr, a)
    assert rep.totals["dram_bytes"] == 0 and rep.totals["membrane_spill_bytes"] == 0
    assert rep.totals["state_bytes"] == 16 and rep.totals["state_carried_bytes"] == 32
    # without the sharing (plain per-layer space) the same buffers spill
    for r in tr.layers:
        r.geometry.pop("level", None), r.geometry.pop("shared_from", None)
    assert price(tr, a).totals["dram_bytes"] > 0


# ----------------------------------------------------------------------------- properties
def trev_like(T, spikes, per_column_events):
    """T columns of [upsample + fusion add (t > 0)] -> quant -> conv on spikes -> state, one sample."""
    layers = []
    for t in range(T):
        comp = [int(t == s) for s in range(T)]
        if t:
            layers += [rec(f"subnet{t}.up", "upsample", (2, 1, 1), S, comp, events_in=[2 * c for c in comp]),
                       rec(f"subnet{t}.fusion.add", "add", S, S, comp, events_in=[16 * c for c in comp])]
        em = np.zeros((T,) + S)
        em[t].reshape(-1)[:per_column_events[t]] = 1
        layers += [quant(f"subnet{t}.quant", comp, [spikes[t] * c for c in comp]),
                   synaptic(f"subnet{t}.conv", "conv2d", S, S, conv_geometry(1, 1, 0, c_in=2), em, 4, 0,
                            computed=comp),
                   state(t, T, comp)]
    return Trace("p", "trev" if T > 1 else "oneshot", T, 1, "direct", layers)


@settings(max_examples=30, deadline=None)
@given(T=st.integers(1, 4), data=st.data(), per_synop=st.booleans(), bits=st.sampled_from([8, 16, 24]),
       mapping=st.sampled_from(["sequential", "pipelined"]))
def test_stateless_threshold_layers_have_no_membrane_traffic(T, data, per_synop, bits, mapping):
    spikes = data.draw(st.lists(st.integers(0, 8), min_size=T, max_size=T))
    events = data.draw(st.lists(st.integers(0, 8), min_size=T, max_size=T))
    a = arch(dataflow__membrane="per_synop" if per_synop else "per_neuron", bits__membrane=bits,
             mapping=mapping, cores=8)
    rep = price(trev_like(T, spikes, events), a)
    b = rep.breakdown
    q = b[b.kind == "neuron"]
    assert (q.u_reads == 0).all() and (q.u_writes == 0).all() and (q.e_membrane_mem == 0).all()
    assert (q.leak_ops == 0).all() and (q.state_carried_words == 0).all()
    # all the membrane-width state traffic is the c_l's: (T-1) x 8 words read and as many written
    st_ = b[b.kind == "state"]
    assert st_.state_reads.sum() == st_.state_writes.sum() == (T - 1) * 8
    assert rep.totals["e_membrane_mem"] == pytest.approx((T - 1) * 16 * bits)   # 1 pJ per bit
    assert rep.totals["state_bytes"] == (8 * bits / 8 if T > 1 else 0)
    # only what ran counts: every record is computed at exactly one step
    assert (b[b.layer != "(chip)"].groupby("layer").computed.sum() == 1).all()


# ----------------------------------------------------------------------------- with the engine
def test_pad_to_shape():
    from snnsim.data import pad_to_shape

    x = np.arange(8, dtype=np.float32).reshape(2, 1, 2, 2) + 1
    y = pad_to_shape(x, (3, 4, 4))
    assert y.shape == (2, 3, 4, 4) and (y[:, :, 1:3, 1:3] == x).all() and y.sum() == 3 * x.sum()
    from snnsim.errors import InputError
    with pytest.raises(InputError, match="cannot be padded"):
        pad_to_shape(np.zeros((1, 2, 5, 5)), (3, 4, 4))


def _ops_by_torch(rec):
    """Synaptic ops of a conv record, computed apart from hwmodel's and the engine's fan-out code: the event map
    [T, C, H, W] convolved by PyTorch with an all-ones kernel of the layer's geometry (groups included) gives, at
    each output, the input events its receptive field holds; the sum over outputs is every event times the
    outputs it reaches."""
    torch = pytest.importorskip("torch")
    g = rec.geometry
    ones = torch.ones(g["out_channels"], g["in_channels"] // g["groups"], *g["kernel_size"], dtype=torch.float64)
    out = torch.nn.functional.conv2d(torch.from_numpy(rec.event_map.astype(np.float64)), ones,
                                     stride=g["stride"], padding=g["padding"], groups=g["groups"])
    return float(out.sum())


@pytest.fixture(scope="module")
def trev_runs():
    from snnsim.data import load_dataset
    from snnsim.network import build_network
    from snnsim.layers import load_spec
    from snnsim.weights import load_weights

    from snnsim.cli.hw import run_regimes
    from snnsim.data import pad_to_shape

    spec = load_spec(NETWORKS / "trev_small.yaml")
    net = build_network(spec, load_weights(spec, NETWORKS / "trev_small.npz"))
    x = pad_to_shape(load_dataset("mnist").split("test")[0][:3], spec.input_shape)
    return run_regimes(net, x, 4, ["trev", "oneshot"], batch_size=3)


def test_trev_small_engine_trace(trev_runs):
    trev, one = trev_runs["trev"], trev_runs["oneshot"]
    assert trev.regime == "trev" and one.regime == "oneshot" and one.timesteps == 1
    levels = 16 * 16 * 16 + 32 * 8 * 8 + 48 * 4 * 4 + 64 * 4 * 4          # 7,936 words of c_l per column
    evt = load_arch("evt45")
    rep = price(trev, evt)
    b = rep.breakdown
    assert check_fanout(trev) == []
    assert b.state_reads.sum() == b.state_writes.sum() == b.state_mul_adds.sum() == 3 * levels
    assert b[b.kind == "neuron"].u_reads.sum() == 0 and b[b.kind == "neuron"].e_membrane_mem.sum() == 0
    assert b.leak_ops.sum() == 0
    assert b.mul_ops.sum() == 4 * levels                   # one layer scale (blocks.0.gamma) per level/column
    assert b.copy_words.sum() == 3 * ((1024 + 4096) + (512 + 2048))   # levels 1->0 and 2->1 upsampled x2
    assert rep.totals["state_bytes"] == levels * 2 and rep.totals["state_carried_bytes"] == 3 * levels * 2
    assert price(one, evt).totals["state_bytes"] == 0 and price(one, evt).totals["e_membrane_mem"] == 0
    # only what ran counts: each record at one step; the stem once even under the proxy's every_step
    assert (b[b.layer != "(chip)"].groupby("layer").computed.sum() == 1).all()
    proxy = price(trev, load_arch("proxy45")).breakdown
    assert proxy.macs_dense.sum() == pytest.approx(b.macs_dense.sum())
    c = count(trev)
    synaptic = [r for r in trev.layers if r.event_map is not None]
    assert {r.kind for r in synaptic} == {"conv2d"} and len(synaptic) == 153
    for r in synaptic:       # hwmodel's synops + nonzero MACs against PyTorch's convolution (below)
        sel = c.rows.layer == r.name
        assert (c.rows.synops[sel] + c.rows.macs_nz[sel]).sum() * trev.samples == _ops_by_torch(r), r.name
    assert sum(map(_ops_by_torch, synaptic)) > 10 ** 6
    table, _ = compare(trev_runs, evt)
    assert list(table.regime) == ["trev", "oneshot"] and (table.ratio_to == "trev").all()
    assert table.energy_ratio.iloc[0] == 1 and table.state_ratio.iloc[1] == 0


def test_regime_cli_on_trev_small(tmp_path):
    from snnsim.cli.hw import hw

    net, w = str(NETWORKS / "trev_small.yaml"), str(NETWORKS / "trev_small.npz")
    out = tmp_path / "out"
    r = CliRunner().invoke(hw, [net, "--weights", w, "--arch", "evt45", "--dataset", "mnist", "--pad-input",
                                "--limit", "2", "--regimes", "multistep,trev,oneshot", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "no multi-step execution" in r.output and "ratios are to trev" in r.output
    table = pd.read_csv(out / "hw_regimes.csv")
    assert list(table.regime) == ["trev", "oneshot"] and table.timesteps.tolist() == [4, 1]
    assert table.state_bytes.tolist() == [7936 * 2, 0] and (table.ratio_to == "trev").all()
    assert (table.energy_pj > 0).all() and (table.latency_ns > 0).all()
    for f in ("hw_energy.png", "hw_energy.svg"):
        assert (out / f).stat().st_size > 1000
    comp = pd.read_csv(out / "hw_components.csv", index_col=0)
    assert comp.loc["membrane_mem", "trev"] > 0 and comp.loc["membrane_mem", "oneshot"] == 0
    assert set(pd.read_csv(out / "hw_breakdown.csv").regime) == {"trev", "oneshot"}
    # the same images without --pad-input: a one-line error that names the option
    r = CliRunner().invoke(hw, [net, "--weights", w, "--dataset", "mnist", "--limit", "2"])
    assert r.exit_code == 2 and "--pad-input" in r.output and len(r.output.strip().splitlines()) == 1
    # 'trev' for a plain network: a one-line error, before anything runs
    r = CliRunner().invoke(hw, [str(NETWORKS / "mnist_conv.yaml"), "--weights", str(NETWORKS / "mnist_conv.npz"),
                                "--dataset", "mnist", "--regimes", "multistep,trev,oneshot"])
    assert r.exit_code == 2 and "not a T-RevSNN" in r.output and len(r.output.strip().splitlines()) == 1
