"""The recurrent LIF layer (rlif) in NIR: exported as the subgraph snnTorch's exporter writes for RLeaky (a LIF
and a recurrent Affine feeding each other), imported from that cycle, and any other cycle still refused.

References: snnTorch 1.0's own ``_extract_snntorch_module`` for the subgraph's shape and numbers, snnTorch's own
``export_to_nir`` and its own run of an ``RLeaky(all_to_all=True)`` network for the import, and the original
snnsim run for the round trip (exact: the file holds snnsim's float32 numbers)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

nir = pytest.importorskip("nir")
pytest.importorskip("h5py")

from snnsim.engine import run  # noqa: E402
from snnsim.layers import parse_spec  # noqa: E402
from snnsim.network import build_network  # noqa: E402
from snnsim.nir.exporter import export_nir  # noqa: E402
from snnsim.nir.importer import import_nir  # noqa: E402
from snnsim.nir.io import NirError, write_graph  # noqa: E402
from snnsim.weights import check_weights, random_weights  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:nirtorch.load is being deprecated:DeprecationWarning")]
T = 10


def rlif_net(**rlif):
    return {"name": "rec", "input_shape": [6], "timesteps": T, "encoding": "events", "layers": [
        {"name": "fc", "type": "linear", "out_features": 8},
        {"name": "rec", "type": "rlif", "tau": 2.0, **rlif},
        {"name": "out", "type": "linear", "out_features": 3}]}


def lively(spec, seed=0):
    w = random_weights(spec, seed)
    rng = np.random.default_rng(seed)
    w["fc.weight"] = w["fc.weight"] * np.float32(3.0)
    w["rec.recurrent.weight"] = rng.uniform(-0.6, 0.6, w["rec.recurrent.weight"].shape).astype(np.float32)
    return check_weights(spec, w)


def spikes(spec, w, x, zero_recurrence=False):
    if zero_recurrence:
        w = {k: np.zeros_like(v) if k.startswith("rec.recurrent") else v for k, v in w.items()}
    return run(build_network(spec, w), x, probes=["rec"]).trace.probes["rec"]["spikes"]


def round_trip(spec, w, tmp_path, **kw):
    result = export_nir(spec, w, **kw)
    write_graph(result.graph, tmp_path / "rec.nir")
    imported = import_nir(tmp_path / "rec.nir")
    spec2 = parse_spec(yaml.safe_load(imported.yaml_text()), "imported")      # the YAML a user gets
    return result, imported, spec2, check_weights(spec2, imported.weights)


@pytest.mark.parametrize("rlif, lossy", [
    ({"v_reset": 0.0, "reset_delay": False}, False),                # what NIR expresses: a hard reset
    ({}, True),                                                     # RLeaky's delayed subtract reset, restored
    ({"v_reset": 0.0, "reset_delay": False, "recurrent_bias": False, "decay_input": True, "spike_rule": "ge"},
     False),
])
def test_round_trip_is_bit_identical(tmp_path, rlif, lossy):
    spec = parse_spec(rlif_net(**rlif))
    w = lively(spec)
    result, imported, spec2, w2 = round_trip(spec, w, tmp_path, allow_lossy=lossy)
    assert bool(result.warnings) == lossy
    assert all("layer 'rec' (rlif): delayed subtract reset" in w for w in result.warnings)
    layer = next(layer for layer in spec2.layers if layer.name == "rec")
    assert layer.kind == "rlif" and layer == next(layer for layer in spec.layers if layer.name == "rec")
    assert any("'rec.lif' and 'rec.w_rec' feed each other" in n for n in imported.notes)
    x = np.random.default_rng(1).random((T, 16, 6), dtype=np.float32)
    ours = spikes(spec, w, x)
    assert 0.05 < ours.mean() < 0.95
    assert not np.array_equal(ours, spikes(spec, w, x, zero_recurrence=True))    # the recurrence matters
    np.testing.assert_array_equal(spikes(spec2, w2, x), ours)
    np.testing.assert_array_equal(run(build_network(spec2, w2), x).outputs, run(build_network(spec, w), x).outputs)


@pytest.fixture(scope="module")
def snn():
    pytest.importorskip("torch")
    pytest.importorskip("nirtorch")
    return pytest.importorskip("snntorch")


def rleaky_model(snn, seed=0, reset_delay=False):
    """Linear -> RLeaky(all_to_all, zero reset applied at once: what NIR's LIF expresses), beta = 1 - 2^-1."""
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8),
                              snn.RLeaky(beta=0.5, threshold=1.0, all_to_all=True, linear_features=8,
                                         reset_mechanism="zero", reset_delay=reset_delay, init_hidden=True))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[1].recurrent.weight.uniform_(-0.6, 0.6)
    return net


X = np.random.default_rng(2).random((T, 16, 6), dtype=np.float32)


def snntorch_spikes(net):
    """snnTorch's own run: one call per step from a fresh state; the spikes [T, N, 8]."""
    import torch
    from snntorch import utils

    utils.reset(net)
    with torch.no_grad():
        return np.stack([net(torch.from_numpy(X[t])).numpy() for t in range(T)])


def test_export_is_snntorchs_rleaky_subgraph(tmp_path, snn):
    """snnsim writes the subgraph snnTorch's exporter writes for the same RLeaky: same nodes, edges and numbers."""
    import torch
    from snntorch.export_nir import _extract_snntorch_module

    torch_net = rleaky_model(snn)
    want = _extract_snntorch_module(torch_net[1])
    spec = parse_spec(rlif_net(v_reset=0.0, reset_delay=False))
    w = dict(lively(spec))
    w.update({f"rec.recurrent.{p}": getattr(torch_net[1].recurrent, p).detach().numpy() for p in ("weight", "bias")})
    got = export_nir(spec, check_weights(spec, w)).graph.nodes["rec"]
    assert isinstance(got, nir.NIRGraph) and sorted(got.edges) == sorted(want.edges)
    assert {k: type(v) for k, v in got.nodes.items()} == {k: type(v) for k, v in want.nodes.items()}
    for f in ("tau", "r", "v_leak", "v_threshold", "v_reset"):
        np.testing.assert_allclose(getattr(got.nodes["lif"], f), getattr(want.nodes["lif"], f), rtol=1e-7)
    for f in ("weight", "bias"):
        np.testing.assert_array_equal(getattr(got.nodes["w_rec"], f), getattr(want.nodes["w_rec"], f))


def test_snntorch_export_imports_with_snntorchs_spikes(tmp_path, snn):
    """snnTorch's own export_to_nir of an RLeaky network (it writes the cycle flat: '1.lif' <-> '1.w_rec'),
    imported with --dt 1e-4, gives the spikes of snnTorch's own run of that network."""
    import torch
    from snntorch.export_nir import export_to_nir

    net = rleaky_model(snn)
    graph = export_to_nir(net, torch.zeros(1, 6), ignore_dims=[0])
    assert ("1.w_rec", "1.lif") in graph.edges
    write_graph(graph, tmp_path / "snntorch.nir")
    imported = import_nir(tmp_path / "snntorch.nir", dt=1e-4, timesteps=T)
    spec = parse_spec(imported.spec, "imported")
    assert [layer.kind for layer in spec.layers] == ["linear", "rlif"]
    want = snntorch_spikes(net)
    assert 0.05 < want.mean() < 0.95
    got = run(build_network(spec, check_weights(spec, imported.weights)), X, probes=["1"]).trace.probes["1"]
    np.testing.assert_array_equal(got["spikes"], want)


def test_snntorch_delayed_zero_reset_is_reported(tmp_path, snn):
    """RLeaky's default reset_delay=True zeroes the membrane a step after the spike, which NIR's LIF does not
    say: snntorch_to_nir refuses it naming the layer, or warns; imported anyway, the spikes indeed differ."""
    import torch

    from snnsim.nir.io import snntorch_to_nir

    net = rleaky_model(snn, reset_delay=True)
    with pytest.raises(NirError, match=r"layer '1' \(RLeaky\): reset_delay=True .*reset_delay=False for RLeaky"):
        snntorch_to_nir(net, torch.zeros(1, 6))
    with pytest.warns(UserWarning, match="reset_delay=True"):
        snntorch_to_nir(net, torch.zeros(1, 6), tmp_path / "late.nir", allow_lossy=True)
    imported = import_nir(tmp_path / "late.nir", timesteps=T)        # dt and the rule from the metadata
    assert any("reset_delay=True" in w for w in imported.warnings)
    spec = parse_spec(imported.spec, "imported")
    got = run(build_network(spec, check_weights(spec, imported.weights)), X).outputs
    assert not np.array_equal(got, snntorch_spikes(net))
    snntorch_to_nir(rleaky_model(snn), torch.zeros(1, 6), tmp_path / "now.nir")       # reset_delay=False: exact
    imported = import_nir(tmp_path / "now.nir", timesteps=T)
    spec = parse_spec(imported.spec, "imported")
    got = run(build_network(spec, check_weights(spec, imported.weights)), X).outputs
    np.testing.assert_array_equal(got, snntorch_spikes(rleaky_model(snn)))


def test_peers_do_not_run_the_subgraph(tmp_path, snn):
    """The export's notes say snnTorch 1.0 and Norse 1.1 cannot read it: snnTorch's import fails on the file, and
    Norse's runs the cycle otherwise (its outputs differ from snnsim's, which are snnTorch RLeaky's)."""
    import torch

    nt = pytest.importorskip("norse.torch")
    from snntorch.import_nir import import_from_nir

    spec = parse_spec(rlif_net(v_reset=0.0, reset_delay=False, decay_input=True))   # Norse's LIFBox leak
    w = lively(spec)
    result = export_nir(spec, w, dt=1e-3)
    notes = [n for n in result.notes if "cannot read node 'rec' (NIRGraph)" in n]
    assert [n.split(" cannot")[0] for n in notes] == ["snnTorch 1.0", "Norse 1.1"]
    write_graph(result.graph, tmp_path / "rec.nir")
    with pytest.raises(Exception):
        import_from_nir(nir.read(tmp_path / "rec.nir"))
    m, x, state, outs = nt.from_nir(result.graph), np.random.default_rng(3).random((T, 16, 6), np.float32), None, []
    with torch.no_grad():
        for t in range(T):
            y, state = m(torch.from_numpy(x[t]), state)
            outs.append(y.numpy())
    assert not np.allclose(np.stack(outs), run(build_network(spec, w), x).outputs, atol=1e-4)


# ----------------------------------------------------------------------------- cycles that are not rlif
def _lif(n):
    return nir.LIF(tau=np.full(n, 2e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
                   v_reset=np.zeros(n))


def _write(path, nodes, edges):
    io = {"input": nir.Input(input_type={"input": np.array([3])}),
          "output": nir.Output(output_type={"output": np.array([3])})}
    nir.write(path, nir.NIRGraph(nodes={**io, **nodes}, edges=edges, metadata={"dt": 1e-3}, type_check=False))
    return path


def _cuba(n):
    return nir.CubaLIF(tau_syn=np.full(n, 2e-3), tau_mem=np.full(n, 4e-3), r=np.ones(n), v_leak=np.zeros(n),
                       v_threshold=np.ones(n), v_reset=np.zeros(n), w_in=np.ones(n))


W = lambda: nir.Linear(np.eye(3, dtype=np.float32))  # noqa: E731
OTHER_CYCLES = {
    "rsynaptic": ({"syn": _cuba(3), "w": W()}, [("input", "syn"), ("syn", "w"), ("w", "syn"), ("syn", "output")]),
    "weight_leaks_out": ({"lif": _lif(3), "w": W()},
                         [("input", "lif"), ("lif", "w"), ("w", "lif"), ("w", "output")]),
    "three_nodes": ({"lif": _lif(3), "w": W(), "s": nir.Scale(np.ones(3, np.float32))},
                    [("input", "lif"), ("lif", "w"), ("w", "s"), ("s", "lif"), ("lif", "output")]),
    "self_loop": ({"lif": _lif(3)}, [("input", "lif"), ("lif", "lif"), ("lif", "output")]),
}


@pytest.mark.parametrize("name", sorted(OTHER_CYCLES))
def test_other_cycles_are_refused_in_one_line(tmp_path, name):
    from snnsim.cli import main

    path = _write(tmp_path / f"{name}.nir", *OTHER_CYCLES[name])
    with pytest.raises(NirError, match=r"has a cycle .* snnsim runs feed-forward networks and the recurrent"):
        import_nir(path)
    r = CliRunner().invoke(main, ["import-nir", str(path), "-o", str(tmp_path / "n.yaml")])
    assert r.exit_code == 2 and r.output.startswith("error:") and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "n.yaml").exists()


def test_a_recurrent_lif_it_cannot_run_is_named(tmp_path):
    """The pattern, but with an input gain R that would scale the recurrent current too: the LIF is named."""
    lif = _lif(3)
    lif.r = np.full(3, 0.5)
    path = _write(tmp_path / "r.nir", {"lif": lif, "w": W()},
                  [("input", "lif"), ("lif", "w"), ("w", "lif"), ("lif", "output")])
    with pytest.raises(NirError, match=r"node 'lif' \(LIF\): a recurrent LIF layer needs r = 1 or r = tau/dt"):
        import_nir(path)
