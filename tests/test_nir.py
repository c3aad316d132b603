"""NIR interchange: import, export, round trips, cross-framework parity, malformed files.

Cross-framework tests build the model in snnTorch or SpikingJelly, export it with that framework's own NIR
exporter, import it into snnsim and compare every neuron layer's spikes with the framework's own run of the
same input (snnTorch: Python loop over time steps; SpikingJelly: multi-step mode).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import yaml

nir = pytest.importorskip("nir")
h5py = pytest.importorskip("h5py")

from click.testing import CliRunner  # noqa: E402

from snnsim.engine import run  # noqa: E402
from snnsim.network import build_network  # noqa: E402
from snnsim.nir.exporter import export_nir  # noqa: E402
from snnsim.nir.importer import import_nir  # noqa: E402
from snnsim.nir.io import NirError, NirLossyWarning, write_graph  # noqa: E402
from snnsim.layers import Neuron, load_spec, parse_spec  # noqa: E402
from snnsim.weights import check_weights, random_weights  # noqa: E402

NETWORKS = Path(__file__).resolve().parent.parent / "networks"
pytestmark = pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph:DeprecationWarning")
# Shipped networks NIR cannot express, and the layer the export error must name.
NOT_EXPRESSIBLE = {"mnist_conv": ("pool1", "max pooling"), "vgg_small": ("pool1", "max pooling"),
                   "digits_mlp_soft": ("sn1", "subtract reset"),
                   "revs_resnet21": ("layer1.reversible_blocks.0", "no equivalent"),
                   "revs_resnet21_small": ("layer1.reversible_blocks.0", "no equivalent"),
                   "trev_small": ("", ""), "trev_tiny224": ("", ""), "mnist_revnet": ("rev1", "no equivalent")}


# ----------------------------------------------------------------------------- helpers
def lively_weights(spec, seed=0):
    """Seeded weights with plenty of spikes in every layer (random init alone leaves deep layers silent)."""
    rng = np.random.default_rng(seed)
    w = random_weights(spec, seed)
    for k, a in w.items():
        if k.endswith("running_var"):
            w[k] = rng.uniform(0.05, 0.3, a.shape).astype(np.float32)
        elif k.endswith("running_mean"):
            w[k] = rng.uniform(-0.2, 0.2, a.shape).astype(np.float32)
        elif k.endswith(".bias") and k.replace(".bias", ".running_mean") in w:
            w[k] = rng.uniform(0.0, 0.5, a.shape).astype(np.float32)
        elif k.endswith(".weight") and a.ndim == 2:
            w[k] = a * np.float32(3.0)
    return check_weights(spec, w)


def neuron_names(spec):
    return [layer.name for layer in spec.all_layers() if isinstance(layer, Neuron)]


def run_spec(spec, weights, x, T, probes):
    return run(build_network(spec, weights), x, timesteps=T, probes=probes)


def same_spikes(first, second, x, T, names):
    """Runs two (spec, weights) pairs on x for T steps; every named layer's spikes must be identical.
    Returns both runs."""
    a, b = run_spec(*first, x, T, names), run_spec(*second, x, T, names)
    for n in names:
        np.testing.assert_array_equal(b.trace.probes[n]["spikes"], a.trace.probes[n]["spikes"], err_msg=n)
    return a, b


def imported(path, **kw):
    res = import_nir(path, **kw)
    spec = parse_spec(yaml.safe_load(res.yaml_text()), "imported")   # through the YAML text, as a user gets it
    return res, spec, check_weights(spec, res.weights)


def cli():
    from snnsim.cli import main
    from snnsim.cli.nir import export_nir as ex, import_nir as im

    for cmd in (im, ex):                      # registered by snnsim.cli; added here if not (yet)
        if cmd.name not in main.commands:
            main.add_command(cmd)
    return main


# ----------------------------------------------------------------------------- snnsim -> NIR -> snnsim
@pytest.mark.parametrize("name", sorted(p.stem for p in NETWORKS.glob("*.yaml")))
def test_round_trip_shipped_networks(tmp_path, name):
    spec = load_spec(NETWORKS / f"{name}.yaml")
    if name in NOT_EXPRESSIBLE:
        layer, reason = NOT_EXPRESSIBLE[name]
        with pytest.raises(NirError, match=rf"layer '{layer}.*{reason}"):
            export_nir(spec, random_weights(spec))
        return
    w = lively_weights(spec)
    write_graph(export_nir(spec, w).graph, tmp_path / "m.nir")
    res, spec2, w2 = imported(tmp_path / "m.nir")
    assert res.dt == pytest.approx(1e-4)
    names = neuron_names(spec)
    assert set(names) <= {layer.name for layer in spec2.all_layers()}      # names survive the trip
    x = np.random.default_rng(1).random((6,) + spec.input_shape, dtype=np.float32)
    assert spec2.timesteps == spec.timesteps and spec2.encoding == spec.encoding and spec2.readout == spec.readout
    a, b = same_spikes((spec, w), (spec2, w2), x, spec.timesteps, names)
    np.testing.assert_array_equal(b.outputs, a.outputs)
    assert a.trace.probes[names[0]]["spikes"].any()


ZOO = {
    "name": "zoo", "input_shape": [2, 8, 8], "timesteps": 6, "encoding": "events",
    "readout": {"reduce": "last", "source": "output"}, "fold_batchnorm": False,
    "layers": [
        {"name": "conv", "type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1, "groups": 2},
        {"name": "bn", "type": "batchnorm2d"},
        {"name": "sn", "type": "lif", "tau": 3.0, "v_reset": -0.2, "spike_rule": "gt"},
        {"name": "sum", "type": "sumpool2d", "kernel_size": 2},
        {"name": "scale", "type": "scale"},
        {"name": "res", "type": "residual",
         "body": [{"name": "c1", "type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
                  {"name": "n1", "type": "plif", "decay_input": False}],
         "shortcut": [{"name": "c2", "type": "conv2d", "out_channels": 4, "kernel_size": 1},
                      {"name": "n2", "type": "if", "v_threshold": 0.7}]},
        {"name": "avg", "type": "avgpool2d", "kernel_size": 2},
        {"name": "flat", "type": "flatten"},
        {"name": "fc", "type": "linear", "out_features": 12, "bias": False},
        {"name": "bn1", "type": "batchnorm1d"},
        {"name": "li", "type": "li", "tau": 4.0, "decay_input": False},
        {"name": "th", "type": "threshold", "v_threshold": 0.3},
        {"name": "drop", "type": "dropout"},
        {"name": "fc2", "type": "linear", "out_features": 5},
        {"name": "out", "type": "lif", "tau": 2.0},
    ],
}


def test_round_trip_every_layer_kind(tmp_path):
    """Kinds beyond the shipped networks: unfolded batch norm, sum/avg pooling, scale, PLIF, IF, LI, threshold,
    a residual with a non-trivial shortcut, dropout, a grouped conv, 'gt' spikes, v_reset != 0."""
    spec = parse_spec(ZOO)
    w = dict(lively_weights(spec, 3))
    for k in w:
        if k.endswith(".weight") and w[k].ndim == 4:
            w[k] = w[k] * np.float32(2.0)
    w["scale.scale"] = np.random.default_rng(0).uniform(0.2, 0.6, w["scale.scale"].shape).astype(np.float32)
    w["res.n1.w"] = np.float32(-0.7)
    w = check_weights(spec, w)
    result = export_nir(spec, w, dt=1e-3)
    assert any("unfolded batch norm" in n for n in result.notes)
    write_graph(result.graph, tmp_path / "zoo.nir")
    res, spec2, w2 = imported(tmp_path / "zoo.nir")
    assert res.dt == 1e-3
    kinds = {layer.name: getattr(layer, "neuron", layer.kind) for layer in spec2.all_layers()}
    assert kinds["res.n1"] == "plif" and kinds["sum"] == "pool2d" and kinds["scale"] == "scale"
    x = np.random.default_rng(2).random((6, 5) + spec.input_shape, dtype=np.float32) * 2
    names = neuron_names(spec)
    a, b = same_spikes((spec, w), (spec2, w2), x, 6, names)
    for n in names:
        assert a.trace.probes[n]["spikes"].any(), n
    np.testing.assert_array_equal(b.readout, a.readout)


def _quarters(rng, shape):
    """Multiples of 1/4: sums of them and of binary spikes are exact in float32 in any order."""
    return (rng.integers(-6, 7, shape) / 4).astype(np.float32)


def test_conv1d_import_matches_torch_conv1d(tmp_path):
    """A hand-built NIR graph Conv1d (stride 2, padding 1, groups 2) -> IF -> Conv1d (padding 'same') -> IF:
    snnsim's spikes equal those of torch.nn.functional.conv1d on the same weights with the IF update by hand."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(7)
    w1, b1, w2 = _quarters(rng, (6, 2, 3)), _quarters(rng, 6), _quarters(rng, (3, 6, 3))
    conv1 = nir.Conv1d(input_shape=9, weight=w1, stride=2, padding=1, dilation=1, groups=2, bias=b1)
    conv2 = nir.Conv1d(input_shape=5, weight=w2, stride=1, padding="same", dilation=1, groups=1,
                       bias=np.zeros(3, np.float32))
    ifn = [nir.IF(r=np.full(s, 1e3), v_threshold=np.full(s, 0.75), v_reset=np.zeros(s)) for s in ((6, 5), (3, 5))]
    path = _write_chain(tmp_path / "c1.nir", conv1, ifn[0], conv2, ifn[1], shape=np.array([4, 9]))
    res, spec, w = imported(path)
    convs = [layer for layer in spec.all_layers() if layer.kind == "conv1d"]
    assert [(c.stride, c.padding, c.groups, c.bias) for c in convs] == [(2, 1, 2, True), (1, 1, 1, False)]
    T, N = 5, 3
    x = (rng.random((T, N, 4, 9)) < 0.5).astype(np.float32)
    out = run_spec(spec, w, x, T, ["n1", "n3"])

    def conv(s, w, b, **kw):
        return F.conv1d(torch.from_numpy(s), torch.from_numpy(w), None if b is None else torch.from_numpy(b),
                        **kw).numpy()

    def fire(v, y):                     # the IF update: v += y; spike where v > threshold (NIR's rule); reset to 0
        v += y
        s = (v > np.float32(0.75)).astype(np.float32)
        v[s > 0] = 0
        return s

    v1, v2 = np.zeros((N, 6, 5), np.float32), np.zeros((N, 3, 5), np.float32)
    for t in range(T):
        s1 = fire(v1, conv(x[t], w1, b1, stride=2, padding=1, groups=2))
        s2 = fire(v2, conv(s1, w2, None, padding=1))
        np.testing.assert_array_equal(out.trace.probes["n1"]["spikes"][t], s1, err_msg=f"t={t}")
        np.testing.assert_array_equal(out.trace.probes["n3"]["spikes"][t], s2, err_msg=f"t={t}")
    assert out.trace.probes["n1"]["spikes"].any() and out.trace.probes["n3"]["spikes"].any()


def test_conv1d_round_trip(tmp_path):
    """snnsim conv1d -> NIR Conv1d (the layer's own weights and geometry) -> snnsim: identical spikes."""
    spec = parse_spec({"name": "c1", "input_shape": [4, 16], "timesteps": 4, "layers": [
        {"name": "c1", "type": "conv1d", "out_channels": 6, "kernel_size": 3, "stride": 2, "padding": 1, "groups": 2},
        {"name": "n1", "type": "lif", "tau": 2.0},
        {"name": "c2", "type": "conv1d", "out_channels": 5, "kernel_size": 3, "bias": False},
        {"name": "n2", "type": "if", "v_threshold": 0.5},
        {"name": "flat", "type": "flatten"},
        {"name": "fc", "type": "linear", "out_features": 3},
        {"name": "out", "type": "lif", "tau": 2.0}]})
    w = lively_weights(spec, 4)
    for k in ("c1.weight", "c2.weight"):
        w[k] = w[k] * np.float32(3.0)
    result = export_nir(spec, w, dt=1e-3)
    node = result.graph.nodes["c1"]
    assert isinstance(node, nir.Conv1d) and (node.stride, node.padding, node.dilation, node.groups) == (2, 1, 1, 2)
    np.testing.assert_array_equal(node.weight, w["c1.weight"])
    np.testing.assert_array_equal(node.bias, w["c1.bias"])
    assert not result.graph.nodes["c2"].bias.any()
    write_graph(result.graph, tmp_path / "c1.nir")
    res, spec2, w2 = imported(tmp_path / "c1.nir")
    assert [layer.kind for layer in spec2.all_layers()][:3] == ["conv1d", "neuron", "conv1d"]
    x = np.random.default_rng(5).random((3,) + spec.input_shape, dtype=np.float32) * 2
    names = neuron_names(spec)
    a, _ = same_spikes((spec, w), (spec2, w2), x, 4, names)
    for n in names:
        assert a.trace.probes[n]["spikes"].any(), n


def _subtract_spec(delay=False):
    extra = {"reset_delay": True} if delay else {}
    return parse_spec({"name": "soft", "input_shape": [6], "timesteps": 8,
                       "layers": [{"name": "fc", "type": "linear", "out_features": 7},
                                  {"name": "sn_soft", "type": "lif", "v_reset": None, **extra}]})


@pytest.mark.parametrize("delay", [False, True], ids=["subtract", "delayed-subtract"])
def test_subtract_reset_is_refused_or_exported_lossy_with_warning(tmp_path, delay):
    spec = _subtract_spec(delay)
    w = check_weights(spec, random_weights(spec, 0))
    what = "delayed subtract reset" if delay else "subtract reset"
    with pytest.raises(NirError, match=rf"layer 'sn_soft' \(lif\): {what}.*--allow-lossy"):
        export_nir(spec, w)
    result = export_nir(spec, w, allow_lossy=True)
    assert len(result.warnings) == 1 and "'sn_soft'" in result.warnings[0]
    lif = result.graph.nodes["sn_soft"]
    assert isinstance(lif, nir.LIF) and np.all(lif.v_reset == 0)      # what other NIR readers see
    assert "sn_soft" in result.graph.metadata["lossy"]
    write_graph(result.graph, tmp_path / "soft.nir")
    res, spec2, w2 = imported(tmp_path / "soft.nir")
    assert spec2.layers[1].v_reset is None                            # snnsim restores it from its metadata
    assert spec2.layers[1].reset_delay is delay
    assert any("sn_soft" in w for w in res.warnings)
    x = np.random.default_rng(0).random((4, 6), dtype=np.float32) * 3
    a, _ = same_spikes((spec, w), (spec2, w2), x, 8, ["sn_soft"])
    assert a.trace.probes["sn_soft"]["spikes"].any()


# ----------------------------------------------------------------------------- NIR semantics of hand-built graphs
def _euler_reference(x, dt):
    """Forward Euler of the graph in test_hand_built_graph_follows_forward_euler, written from NIR's equations."""
    rng = np.random.default_rng(5)
    W = rng.normal(0, 0.8, (6, 8))
    T, N = x.shape[:2]
    i_state = np.zeros((N, 6))
    syn = np.zeros((N, 6))
    mem = np.zeros((N, 6))
    li = np.full((N, 6), 0.1)           # NIR leaves the initial state open; snnsim starts at v_leak
    out_spk, out_li, out_int = [], [], []
    for t in range(T):
        s = x[t].reshape(N, 2, 4, 4)
        pooled = s.reshape(N, 2, 2, 2, 2, 2).sum(axis=(3, 5)).reshape(N, 8)        # SumPool2d 2x2
        cur = pooled @ W.T * 0.5                                                       # Linear, Scale 0.5
        i_state = i_state + dt * 2000.0 * cur                                          # I, r=2000
        syn = syn + dt / 2e-3 * (-syn + 3.0 * i_state)                                 # CubaLIF w_in=3
        mem = mem + dt / 4e-3 * (0.0 - mem + 1.0 * syn)                                 # tau_mem=4ms, r=1
        spk = (mem > 0.4).astype(float)
        mem = np.where(spk > 0, 0.0, mem)
        li = li + dt / 5e-3 * (0.1 - li + 1.0 * spk)                                    # LI v_leak=0.1
        out_spk.append(spk)
        out_li.append(li.copy())
        out_int.append(i_state.copy())
    return np.array(out_int), np.array(out_spk), np.array(out_li)


def _write_hand_graph(path, metadata=None):
    """The graph _euler_reference integrates: SumPool2d, Flatten, Linear, Scale, I, CubaLIF, LI."""
    W = np.random.default_rng(5).normal(0, 0.8, (6, 8)).astype(np.float32)
    full = lambda v: np.full(6, v)  # noqa: E731
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 4, 4])}),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([2, 2, 2])}, start_dim=0, end_dim=-1),
        "w": nir.Linear(weight=W),
        "half": nir.Scale(scale=np.full(6, 0.5, np.float32)),
        "int": nir.I(r=full(2000.0)),
        "cuba": nir.CubaLIF(tau_syn=full(2e-3), tau_mem=full(4e-3), r=full(1.0), v_leak=full(0.0),
                            v_threshold=full(0.4), v_reset=full(0.0), w_in=full(3.0)),
        "li": nir.LI(tau=full(5e-3), r=full(1.0), v_leak=full(0.1)),
        "output": nir.Output(output_type={"output": np.array([6])}),
    }
    order = list(nodes)
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=list(zip(order, order[1:])), metadata=metadata or {},
                                 type_check=False))


def test_hand_built_graph_follows_forward_euler(tmp_path):
    """SumPool2d, Flatten, Linear, Scale, I, CubaLIF and LI against NIR's equations integrated by hand."""
    _write_hand_graph(tmp_path / "hand.nir")
    with pytest.raises(NirError, match="--dt"):
        import_nir(tmp_path / "hand.nir")
    dt = 1e-3
    res, spec, w = imported(tmp_path / "hand.nir", dt=dt, timesteps=12)
    names = [layer.name for layer in spec.all_layers()]
    assert names == ["pool", "flat", "w", "half", "int.r", "int", "cuba.w_in", "cuba.syn", "cuba", "li"]
    x = (np.random.default_rng(7).random((12, 3, 2, 4, 4)) < 0.4).astype(np.float32)
    out = run_spec(spec, w, x, 12, ["int", "cuba", "li"])
    ref_int, ref_spk, ref_li = _euler_reference(x.astype(np.float64), dt)
    np.testing.assert_allclose(out.trace.probes["int"]["spikes"], ref_int, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out.trace.probes["cuba"]["spikes"], ref_spk)
    assert ref_spk.any() and not ref_spk.all()
    np.testing.assert_allclose(out.outputs, ref_li, rtol=1e-5, atol=1e-6)


def test_graph_dt_versus_the_dt_option(tmp_path):
    """The graph's metadata dt is used when --dt is absent, and --dt overrides it: each import follows NIR's
    equations integrated by hand at its own step (the two steps give different spikes, so neither passes by
    accident)."""
    _write_hand_graph(tmp_path / "dt.nir", {"dt": 1e-3})
    x = (np.random.default_rng(7).random((12, 3, 2, 4, 4)) < 0.4).astype(np.float32)
    spikes = {}
    for dt_opt, dt in ((None, 1e-3), (5e-4, 5e-4)):
        res, spec, w = imported(tmp_path / "dt.nir", dt=dt_opt, timesteps=12)
        assert res.dt == dt
        out = run_spec(spec, w, x, 12, ["cuba"])
        _, ref_spk, ref_li = _euler_reference(x.astype(np.float64), dt)
        np.testing.assert_array_equal(out.trace.probes["cuba"]["spikes"], ref_spk)
        np.testing.assert_allclose(out.outputs, ref_li, rtol=1e-5, atol=1e-6)
        spikes[dt] = ref_spk
    assert (spikes[1e-3] != spikes[5e-4]).any()


# ----------------------------------------------------------------------------- snnTorch
@pytest.fixture
def snntorch():
    pytest.importorskip("torch")
    pytest.importorskip("nirtorch")
    return pytest.importorskip("snntorch")


def _snntorch_model(snn, beta, mech, seed=0):
    import torch

    torch.manual_seed(seed)
    n_in, n_h, n_out = 12, 32, 6
    net = torch.nn.Sequential(
        torch.nn.Linear(n_in, n_h),
        snn.Leaky(beta=torch.full((n_h,), beta), threshold=torch.ones(n_h), init_hidden=True, reset_mechanism=mech),
        torch.nn.Linear(n_h, n_out),
        snn.Leaky(beta=torch.full((n_out,), beta), threshold=torch.ones(n_out), init_hidden=True, output=True,
                  reset_mechanism=mech))
    with torch.no_grad():
        net[2].weight.mul_(2.0)
    return net


def _run_snntorch(snn, net, x):
    """snnTorch's own run: one call per time step; returns {layer: (spikes [T, N, n], membrane [T, N, n])}."""
    import torch
    from snntorch import utils

    rec = {}

    def hook(name):
        def f(m, i, o):
            spk = o[0] if isinstance(o, tuple) else o
            rec.setdefault(name, []).append((spk.detach().numpy().copy(), m.mem.detach().numpy().copy()))
        return f

    hooks = [m.register_forward_hook(hook(k)) for k, m in net.named_modules() if isinstance(m, snn.Leaky)]
    utils.reset(net)
    with torch.no_grad():
        for t in range(x.shape[0]):
            net(torch.from_numpy(x[t]))
    for h in hooks:
        h.remove()
    return {k: (np.stack([s for s, _ in v]), np.stack([m for _, m in v])) for k, v in rec.items()}


@pytest.mark.parametrize("beta", [0.5, 0.9])
def test_snntorch_export_matches_snntorch_run(tmp_path, snntorch, beta):
    """snnTorch Leaky (reset_mechanism='zero'): mem = beta*mem + x, spike mem > thr, reset to 0.
    Imported as lif(tau = 1/(1-beta), decay_input false, spike_rule gt): identical spikes. The membranes agree
    to float32 round-off here because torch's BLAS and snnsim's linear kernel sum in different orders (the
    neuron update alone is checked in the next test)."""
    import torch

    from snnsim.nir.io import snntorch_to_nir

    net = _snntorch_model(snntorch, beta, "zero")
    snntorch_to_nir(net, torch.randn(1, 12), tmp_path / "st.nir")
    T = 25
    res, spec, w = imported(tmp_path / "st.nir", timesteps=T)     # dt and spike rule from the metadata
    assert res.dt == 1e-4 and spec.layers[1].spike_rule == "gt" and not spec.layers[1].decay_input
    x = np.random.default_rng(1).random((T, 40, 12), dtype=np.float32) * 1.5
    ref = _run_snntorch(snntorch, net, x)
    out = run_spec(spec, w, x, T, list(ref))
    for k, (spk, mem) in ref.items():
        np.testing.assert_array_equal(out.trace.probes[k]["spikes"], spk, err_msg=k)
        assert spk.any(), k
        h = out.trace.probes[k]["charge"]       # snnTorch returns the membrane before the reset: snnsim's H
        np.testing.assert_allclose(h, mem, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("beta, exact", [(0.5, True), (0.75, True), (0.9, False)])
def test_snntorch_leaky_update_bit_exact_when_beta_is_one_minus_power_of_two(tmp_path, snntorch, beta, exact):
    """The neuron alone (an identity Linear passes the current through exactly in both): snnsim's
    H = v - v/tau + x with tau = 1/(1 - beta) equals snnTorch's beta*v + x bit for bit when beta = 1 - 2^-k
    (v/tau is exact, both round the same real number once); otherwise they differ by float32 round-off."""
    import torch

    from snnsim.nir.io import snntorch_to_nir

    n = 64
    net = torch.nn.Sequential(torch.nn.Linear(n, n), snntorch.Leaky(
        beta=torch.full((n,), beta), threshold=torch.ones(n), init_hidden=True, output=True, reset_mechanism="zero"))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(n))
        net[0].bias.zero_()
    snntorch_to_nir(net, torch.randn(1, n), tmp_path / "lone.nir", ignore_dims=[0])
    T = 60
    _, spec, w = imported(tmp_path / "lone.nir", timesteps=T)
    x = np.random.default_rng(4).random((T, 16, n), dtype=np.float32) * 0.6
    ref = _run_snntorch(snntorch, net, x)
    out = run_spec(spec, w, x, T, ["1"])
    spk, mem = ref["1"]
    np.testing.assert_array_equal(out.trace.probes["1"]["spikes"], spk)
    h = out.trace.probes["1"]["charge"]
    if exact:
        np.testing.assert_array_equal(h, mem)
    else:
        np.testing.assert_allclose(h, mem, rtol=0, atol=1e-6)


def test_snntorch_ties_need_gt(tmp_path, snntorch):
    """Inputs on a 1/4 grid make the membrane hit the threshold exactly: snnTorch's '>' (kept in the metadata)
    reproduces its spikes, '>=' does not, so the spike rule is really tested."""
    import torch

    from snnsim.nir.io import snntorch_to_nir

    n, T = 32, 30
    net = torch.nn.Sequential(torch.nn.Linear(n, n), snntorch.Leaky(
        beta=torch.full((n,), 0.5), threshold=torch.full((n,), 0.5), init_hidden=True, output=True,
        reset_mechanism="zero"))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(n))
        net[0].bias.zero_()
    snntorch_to_nir(net, torch.randn(1, n), tmp_path / "ties.nir")
    x = np.random.default_rng(0).integers(0, 3, (T, 8, n)).astype(np.float32) * np.float32(0.25)
    spk = _run_snntorch(snntorch, net, x)["1"][0]
    _, spec, w = imported(tmp_path / "ties.nir", timesteps=T)
    np.testing.assert_array_equal(run_spec(spec, w, x, T, ["1"]).trace.probes["1"]["spikes"], spk)
    _, spec, w = imported(tmp_path / "ties.nir", timesteps=T, spike_rule="ge")
    assert not np.array_equal(run_spec(spec, w, x, T, ["1"]).trace.probes["1"]["spikes"], spk)


def test_snntorch_subtract_reset_is_detected_and_reported(tmp_path, snntorch):
    import torch
    from snntorch.export_nir import export_to_nir

    from snnsim.nir.io import snntorch_to_nir

    net = _snntorch_model(snntorch, 0.9, "subtract")
    with pytest.raises(NirError, match=r"layer '1' \(Leaky\): reset_mechanism='subtract'"):
        snntorch_to_nir(net, torch.randn(1, 12), ignore_dims=[0])
    with pytest.warns(NirLossyWarning) as record:
        snntorch_to_nir(net, torch.randn(1, 12), tmp_path / "lossy.nir", ignore_dims=[0], allow_lossy=True)
    lossy = [str(r.message) for r in record if r.category is NirLossyWarning]
    assert len(lossy) == 2 and "layer '1'" in lossy[0] and "layer '3'" in lossy[1]
    res, _, _ = imported(tmp_path / "lossy.nir")
    assert any("layer '1'" in w and "subtract" in w for w in res.warnings)
    assert "WARNING" in res.header
    # snnTorch's own exporter says nothing, and the change is real: the file's reset-to-zero neurons do not
    # reproduce the subtract-reset model.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nir.write(tmp_path / "silent.nir", export_to_nir(net, torch.randn(1, 12), ignore_dims=[0]))
    T = 25
    _, spec, w = imported(tmp_path / "silent.nir", dt=1e-4, timesteps=T)
    x = np.random.default_rng(1).random((T, 40, 12), dtype=np.float32) * 1.5
    ref = _run_snntorch(snntorch, net, x)
    out = run_spec(spec, w, x, T, list(ref))
    assert not np.array_equal(out.trace.probes["1"]["spikes"], ref["1"][0])


# ----------------------------------------------------------------------------- SpikingJelly
@pytest.fixture
def sj():
    torch = pytest.importorskip("torch")
    pytest.importorskip("nirtorch")
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import functional, layer, neuron

    return torch, layer, neuron, functional


def _run_sj(sj, net, x):
    torch, _, neuron, functional = sj
    rec = {}
    hooks = [m.register_forward_hook(lambda m, i, o, k=k: rec.__setitem__(k, o.detach().numpy().copy()))
             for k, m in net.named_modules() if isinstance(m, neuron.BaseNode)]
    functional.reset_net(net)
    with torch.no_grad():
        y = net(torch.from_numpy(x))
    for h in hooks:
        h.remove()
    return rec, y.numpy()


def _sj_chain(sj):
    torch, layer, neuron, _ = sj
    torch.manual_seed(0)
    cuba = neuron.CUBALIFNode(c_decay=0.5, v_decay=0.75, v_threshold=0.5, v_reset=0.0)
    cuba.step_mode = "m"
    net = torch.nn.Sequential(OrderedDict(
        conv1=layer.Conv2d(2, 4, 3, padding=1, step_mode="m"),
        sn1=neuron.LIFNode(tau=3.0, v_reset=0.0, step_mode="m"),
        pool=layer.AvgPool2d(2, step_mode="m"),
        flat=layer.Flatten(step_mode="m"),
        fc1=layer.Linear(64, 20, step_mode="m"),
        sn2=neuron.IFNode(v_reset=0.0, step_mode="m"),
        fc2=layer.Linear(20, 16, step_mode="m"),
        sn3=neuron.LIFNode(tau=2.0, decay_input=False, v_reset=-0.1, step_mode="m"),
        fc3=layer.Linear(16, 6, step_mode="m"),
        sn4=cuba))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.weight.mul_(2.5)
    return net


def _sj_sew(sj):
    torch, layer, neuron, _ = sj
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.conv1 = layer.Conv2d(c_in, c_out, 3, stride=stride, padding=1, step_mode="m")
            self.sn1 = neuron.LIFNode(step_mode="m")
            self.conv2 = layer.Conv2d(c_out, c_out, 3, padding=1, step_mode="m")
            self.sn2 = neuron.LIFNode(step_mode="m")
            self.down = None
            if stride != 1 or c_in != c_out:
                self.down = nn.Sequential(layer.Conv2d(c_in, c_out, 1, stride=stride, step_mode="m"),
                                          neuron.LIFNode(step_mode="m"))

        def forward(self, x):
            return self.sn2(self.conv2(self.sn1(self.conv1(x)))) + (self.down(x) if self.down is not None else x)

    torch.manual_seed(1)
    net = nn.Sequential(OrderedDict(
        conv=layer.Conv2d(2, 4, 3, padding=1, step_mode="m"), sn=neuron.LIFNode(step_mode="m"),
        b1=Block(4, 4, 1), b2=Block(4, 8, 2), pool=layer.AvgPool2d(4, step_mode="m"),
        flat=layer.Flatten(step_mode="m"), fc=layer.Linear(8, 5, step_mode="m"), out=neuron.LIFNode(step_mode="m")))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.mul_(4.0)
                m.bias.add_(0.3)
    return net


@pytest.mark.parametrize("model", ["chain", "sew"])
def test_spikingjelly_export_matches_spikingjelly_run(tmp_path, sj, model):
    """SpikingJelly LIFNode (tau 3 and 2, decay_input both ways, v_reset 0 and -0.1), IFNode, CUBALIFNode,
    conv, average pooling, and SEW residual blocks (summed by nirtorch as edges into every consumer)."""
    from snnsim.nir.io import spikingjelly_to_nir

    net = _sj_chain(sj) if model == "chain" else _sj_sew(sj)
    T, N = 12, 8
    x = np.random.default_rng(0).random((T, N, 2, 8, 8), dtype=np.float32) * 2
    spikingjelly_to_nir(net, sj[0].from_numpy(x), tmp_path / "sj.nir")
    res, spec, w = imported(tmp_path / "sj.nir", timesteps=T)
    assert res.dt == 1e-4 and spec.encoding.kind == "events"
    ref, y = _run_sj(sj, net, x)
    names = {layer.name for layer in spec.all_layers()}
    sj_to_snnsim = {k: k if k in names else k.replace("down.", "down_") for k in ref}
    out = run_spec(spec, w, x, T, list(sj_to_snnsim.values()))
    for k, name in sj_to_snnsim.items():
        np.testing.assert_array_equal(out.trace.probes[name]["spikes"], ref[k], err_msg=k)
    np.testing.assert_array_equal(out.outputs, y)
    assert sum(v.sum() for v in ref.values()) > 0 and y.any()
    if model == "sew":
        assert [layer.kind for layer in spec.layers].count("residual") == 2


@pytest.mark.parametrize("tau, decay_input, v_reset", [(3.0, True, 0.0), (7.3, False, -0.1)])
def test_spikingjelly_lif_update_bit_exact(tmp_path, sj, tau, decay_input, v_reset):
    """The neuron alone (identity Linear): snnsim's lif is SpikingJelly's expression, so membranes are equal
    bit for bit for any tau, not only powers of two."""
    torch, layer, neuron, functional = sj
    from snnsim.nir.io import spikingjelly_to_nir

    n, T = 64, 40
    sn = neuron.LIFNode(tau=tau, decay_input=decay_input, v_reset=v_reset, step_mode="m", store_v_seq=True)
    net = torch.nn.Sequential(OrderedDict(fc=layer.Linear(n, n, step_mode="m"), sn=sn))
    with torch.no_grad():
        net.fc.weight.copy_(torch.eye(n))
        net.fc.bias.zero_()
    x = np.random.default_rng(0).random((T, 8, n), dtype=np.float32) * (2.0 if decay_input else 0.6)
    spikingjelly_to_nir(net, torch.from_numpy(x), tmp_path / "lif.nir")
    _, spec, w = imported(tmp_path / "lif.nir", timesteps=T)
    functional.reset_net(net)
    with torch.no_grad():
        y = net(torch.from_numpy(x)).numpy()
    out = run_spec(spec, w, x, T, ["sn"])
    np.testing.assert_array_equal(out.trace.probes["sn"]["spikes"], y)
    np.testing.assert_array_equal(out.trace.probes["sn"]["membrane"], sn.v_seq.numpy())
    assert 0 < y.mean() < 1


def test_spikingjelly_plain_export_needs_dt_and_rule(tmp_path, sj):
    """SpikingJelly's own exporter records neither dt nor its '>=' rule: --dt is required, --spike-rule ge
    reproduces its run."""
    torch, layer, neuron, _ = sj
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    net = _sj_chain(sj)
    T = 10
    x = np.random.default_rng(3).random((T, 4, 2, 8, 8), dtype=np.float32) * 2
    export_to_nir(net, torch.from_numpy(x), tmp_path / "plain.nir")
    with pytest.raises(NirError, match="--dt"):
        import_nir(tmp_path / "plain.nir")
    res, spec, w = imported(tmp_path / "plain.nir", dt=1e-4, spike_rule="ge", timesteps=T)
    ref, y = _run_sj(sj, net, x)
    out = run_spec(spec, w, x, T, list(ref))
    for k in ref:
        np.testing.assert_array_equal(out.trace.probes[k]["spikes"], ref[k], err_msg=k)


def test_spikingjelly_ties_need_ge(tmp_path, sj):
    """IFNode with inputs on a 1/4 grid hits the threshold exactly: SpikingJelly's '>=' (from the metadata, or
    --spike-rule ge for its plain export) reproduces its spikes, NIR's default '>' does not."""
    torch, layer, neuron, functional = sj
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    n, T = 32, 20
    net = torch.nn.Sequential(OrderedDict(fc=layer.Linear(n, n, step_mode="m"),
                                          sn=neuron.IFNode(v_reset=0.0, step_mode="m")))
    with torch.no_grad():
        net.fc.weight.copy_(torch.eye(n))
        net.fc.bias.zero_()
    x = np.random.default_rng(0).integers(0, 3, (T, 8, n)).astype(np.float32) * np.float32(0.25)
    export_to_nir(net, torch.from_numpy(x), tmp_path / "ties.nir")
    ref, _ = _run_sj(sj, net, x)
    for rule, equal in (("ge", True), (None, False)):
        _, spec, w = imported(tmp_path / "ties.nir", dt=1e-4, spike_rule=rule, timesteps=T)
        got = run_spec(spec, w, x, T, ["sn"]).trace.probes["sn"]["spikes"]
        assert np.array_equal(got, ref["sn"]) == equal, rule


def test_spikingjelly_soft_reset_is_refused_with_layer_name(sj):
    torch, layer, neuron, _ = sj
    from snnsim.nir.io import spikingjelly_to_nir

    net = torch.nn.Sequential(OrderedDict(fc=layer.Linear(4, 3, step_mode="m"),
                                          soft=neuron.LIFNode(v_reset=None, step_mode="m")))
    with pytest.raises(NirError, match=r"layer 'soft' \(LIFNode\): soft \(subtract\) reset"):
        spikingjelly_to_nir(net, torch.rand(2, 1, 4))


# ----------------------------------------------------------------------------- errors: files and graphs
def _write_chain(path, *nodes, metadata=None, shape=None):
    names = ["input"] + [f"n{i}" for i in range(len(nodes))] + ["output"]
    first = nodes[0]
    if shape is None:
        shape = first.input_type["input"] if first.input_type["input"] is not None else np.array([4])
    all_nodes = {"input": nir.Input(input_type={"input": np.asarray(shape)}),
                 **{f"n{i}": n for i, n in enumerate(nodes)},
                 "output": nir.Output(output_type={"output": np.asarray(nodes[-1].output_type["output"])
                                      if nodes[-1].output_type["output"] is not None else np.array([1])})}
    g = nir.NIRGraph(nodes=all_nodes, edges=list(zip(names, names[1:])), metadata=metadata or {"dt": 1e-3},
                     type_check=False)
    nir.write(path, g)
    return path


def _lif(n, **kw):
    p = dict(tau=np.full(n, 2e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n))
    p.update(kw)
    return nir.LIF(**p)


def _good(tmp_path):
    return _write_chain(tmp_path / "good.nir", nir.Affine(np.ones((3, 4), np.float32), np.zeros(3, np.float32)),
                        _lif(3))


def test_malformed_and_truncated_files(tmp_path):
    with pytest.raises(NirError, match="not found"):
        import_nir(tmp_path / "missing.nir")
    junk = tmp_path / "junk.nir"
    junk.write_bytes(b"this is not hdf5" * 20)
    with pytest.raises(NirError, match="not a readable NIR file"):
        import_nir(junk)
    good = _good(tmp_path)
    import_nir(good)                                           # the untouched file is fine
    data = good.read_bytes()
    for cut in (len(data) // 2, len(data) - 200, 100):
        bad = tmp_path / f"cut{cut}.nir"
        bad.write_bytes(data[:cut])
        with pytest.raises(NirError, match="truncated"):
            import_nir(bad)
    empty = tmp_path / "empty.h5"
    h5py.File(empty, "w").close()
    with pytest.raises(NirError, match="no 'node' group"):
        import_nir(empty)


def _edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f["node"])
    return path


def test_malformed_nodes_are_named(tmp_path):
    def set_type(g):
        del g["nodes/n1/type"]
        g["nodes/n1"].create_dataset("type", data="MaxPool9d", dtype=h5py.string_dtype())

    with pytest.raises(NirError, match=r"node 'n1' has unknown NIR node type 'MaxPool9d'"):
        import_nir(_edit(_good(tmp_path), set_type))
    with pytest.raises(NirError, match=r"node 'n1' \(LIF\) is malformed.*tau"):
        import_nir(_edit(_good(tmp_path), lambda g: g.__delitem__("nodes/n1/tau")))

    def bad_edge(g):
        e = g["edges"][()]
        e[1, 1] = b"ghost"
        del g["edges"]
        g.create_dataset("edges", data=e)

    with pytest.raises(NirError, match=r"edge .* 'ghost'.* not in the graph"):
        import_nir(_edit(_good(tmp_path), bad_edge))

    def nan_weight(g):
        w = g["nodes/n0/weight"][()]
        w[0, 0] = np.nan
        del g["nodes/n0/weight"]
        g["nodes/n0"].create_dataset("weight", data=w)

    with pytest.raises(NirError, match=r"node 'n0' \(Affine\): 'weight' contains NaN"):
        import_nir(_edit(_good(tmp_path), nan_weight))


@pytest.mark.parametrize("nodes, pattern", [
    (lambda: (nir.Conv1d(input_shape=8, weight=np.ones((2, 1, 3), np.float32), stride=1, padding=0, dilation=1,
                         groups=1, bias=np.zeros(2, np.float32)),), r"node 'n0' \(Conv1d\): needs a \[C, L\] input"),
    (lambda: (_lif(4, v_leak=np.full(4, 0.5)),), r"node 'n0' \(LIF\): v_leak \(0.5\) differs from v_reset"),
    (lambda: (_lif(4, tau=np.array([2e-3, 2e-3, 3e-3, 2e-3])),), r"node 'n0' \(LIF\): 'tau' varies across neurons"),
    (lambda: (_lif(4, tau=np.full(4, 5e-4)),), r"node 'n0' \(LIF\): tau/dt .* is not > 1"),
    (lambda: (nir.Delay(delay=np.full(4, 2e-3)),), r"node 'n0' \(Delay\): a delay of 0.002 s"),
    (lambda: (nir.Affine(np.ones((3, 5), np.float32), np.zeros(3, np.float32)),),
     r"node 'n0' \(Affine\): weight has 5 inputs but its input has 4"),
])
def test_unsupported_nodes_are_named_with_reason(tmp_path, nodes, pattern):
    with pytest.raises(NirError, match=pattern):
        import_nir(_write_chain(tmp_path / "x.nir", *nodes(), shape=np.array([4])))


def test_unrunnable_graphs(tmp_path):
    n = 3
    lif = nir.CubaLIF(tau_syn=np.full(n, 2e-3), tau_mem=np.full(n, 4e-3), r=np.ones(n), v_leak=np.zeros(n),
                      v_threshold=np.ones(n), v_reset=np.zeros(n), w_in=np.ones(n))
    # a recurrent layer snnsim has no kind for (snnTorch RSynaptic's shape): input -> affine -> lif <-> w_rec
    # (RLeaky's, with a LIF, is the rlif kind: tests/test_rlif_nir.py)
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([4])}),
                            "fc": nir.Affine(np.ones((3, 4), np.float32), np.zeros(3, np.float32)), "lif": lif,
                            "w_rec": nir.Linear(np.eye(3, dtype=np.float32)),
                            "output": nir.Output(output_type={"output": np.array([3])})},
                     edges=[("input", "fc"), ("fc", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
                     metadata={"dt": 1e-3}, type_check=False)
    nir.write(tmp_path / "rec.nir", g)
    with pytest.raises(NirError, match=r"cycle .*lif.*w_rec.*feed-forward"):
        import_nir(tmp_path / "rec.nir")
    # two inputs
    g = nir.NIRGraph(nodes={"a": nir.Input(input_type={"input": np.array([3])}),
                            "b": nir.Input(input_type={"input": np.array([3])}), "lif": _lif(3),
                            "output": nir.Output(output_type={"output": np.array([3])})},
                     edges=[("a", "lif"), ("b", "lif"), ("lif", "output")], metadata={"dt": 1e-3}, type_check=False)
    nir.write(tmp_path / "two.nir", g)
    with pytest.raises(NirError, match="2 Input nodes"):
        import_nir(tmp_path / "two.nir")
    # a bridge (input->a, input->b, a->b, a->t, b->t): paths that cross, not nested two-way blocks
    e = lambda: nir.Scale(scale=np.full(3, 0.5, np.float32))  # noqa: E731
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}), "a": e(), "b": e(), "t": e(),
                            "output": nir.Output(output_type={"output": np.array([3])})},
                     edges=[("input", "a"), ("input", "b"), ("a", "b"), ("a", "t"), ("b", "t"), ("t", "output")],
                     metadata={}, type_check=False)
    nir.write(tmp_path / "skip.nir", g)
    with pytest.raises(NirError, match="not a residual block"):
        import_nir(tmp_path / "skip.nir")


def test_nested_sums_follow_nir_semantics(tmp_path):
    """A node sums all its inputs: input->a, a->b, {a, b}->c, {input, c}->d gives nested residual blocks."""
    s = lambda v: nir.Scale(scale=np.full(3, v, np.float32))  # noqa: E731
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}), "a": s(0.5), "b": s(0.25),
                            "c": s(2.0), "d": s(0.125), "output": nir.Output(output_type={"output": np.array([3])})},
                     edges=[("input", "a"), ("a", "b"), ("a", "c"), ("b", "c"), ("input", "d"), ("c", "d"),
                            ("d", "output")], metadata={}, type_check=False)
    nir.write(tmp_path / "nested.nir", g)
    res, spec, w = imported(tmp_path / "nested.nir", timesteps=2)
    assert res.dt is None and "not needed" in res.header            # no time constants: no --dt asked
    x = np.random.default_rng(0).random((2, 4, 3), dtype=np.float32)
    a = 0.5 * x
    want = 0.125 * (x + 2.0 * (a + 0.25 * a))
    np.testing.assert_allclose(run_spec(spec, w, x, 2, []).outputs, want, rtol=1e-6)


# ----------------------------------------------------------------------------- command line
def test_cli_export_import_run(tmp_path):
    runner = CliRunner()
    main = cli()
    net = NETWORKS / "digits_mlp.yaml"
    spec = load_spec(net)
    from snnsim.weights import save_npz

    save_npz(tmp_path / "w.npz", lively_weights(spec))
    r = runner.invoke(main, ["export-nir", str(net), "--weights", str(tmp_path / "w.npz"),
                             "-o", str(tmp_path / "m.nir")])
    assert r.exit_code == 0, r.output
    assert "wrote" in r.output and nir.read(tmp_path / "m.nir").metadata["dt"] == 1e-4
    r = runner.invoke(main, ["import-nir", str(tmp_path / "m.nir"), "-o", str(tmp_path / "back.yaml")])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "back.yaml").read_text()
    assert text.startswith("# Imported from NIR") and "H = v + (I - (v - v_reset)) / tau_s" in text
    spec2 = load_spec(tmp_path / "back.yaml")
    from snnsim.weights import load_weights

    w2 = load_weights(spec2, tmp_path / "back.npz")
    x = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    a = run_spec(spec, lively_weights(spec), x, 4, ["sn1", "sn2"])
    b = run_spec(spec2, w2, x, 4, ["sn1", "sn2"])
    np.testing.assert_array_equal(a.outputs, b.outputs)
    np.savez(tmp_path / "x.npz", x)
    r = runner.invoke(main, ["run", str(tmp_path / "back.yaml"), "--weights", str(tmp_path / "back.npz"),
                             "--dataset", "digits", "--limit", "8"])
    assert r.exit_code == 0, r.output


def test_cli_errors_are_one_line_exit_2(tmp_path):
    runner = CliRunner()
    main = cli()
    spec = _subtract_spec()
    (tmp_path / "soft.yaml").write_text(yaml.safe_dump({
        "name": "soft", "input_shape": [6], "timesteps": 8,
        "layers": [{"name": "fc", "type": "linear", "out_features": 7}, {"name": "sn_soft", "type": "lif",
                                                                         "v_reset": None}]}))
    from snnsim.weights import save_npz

    save_npz(tmp_path / "w.npz", random_weights(spec, 0))
    args = ["export-nir", str(tmp_path / "soft.yaml"), "--weights", str(tmp_path / "w.npz"),
            "-o", str(tmp_path / "s.nir")]
    r = runner.invoke(main, args)
    assert r.exit_code == 2 and "layer 'sn_soft'" in r.output and "--allow-lossy" in r.output
    assert len(r.output.strip().splitlines()) == 1
    r = runner.invoke(main, args + ["--allow-lossy"])
    assert r.exit_code == 0 and "warning: layer 'sn_soft' (lif): subtract reset" in r.output
    r = runner.invoke(main, ["import-nir", str(tmp_path / "nope.nir"), "-o", str(tmp_path / "n.yaml")])
    assert r.exit_code == 2 and "not found" in r.output
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 50)
    r = runner.invoke(main, ["import-nir", str(bad), "-o", str(tmp_path / "n.yaml")])
    assert r.exit_code == 2 and r.output.startswith("error:") and len(r.output.strip().splitlines()) == 1
