"""Norse -> NIR -> snnsim: Norse's tau bug (its to_nir writes dt*tau) fixed on export or with --fix norse-tau,
and the example batch an exporter writes into the Input/Output shapes dropped on import; the spikes are
Norse's own, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("nir")
pytest.importorskip("h5py")
torch = pytest.importorskip("torch")
nt = pytest.importorskip("norse.torch")

import snnsim  # noqa: E402
from snnsim.cli import main  # noqa: E402
from snnsim.nir.importer import import_nir  # noqa: E402
from snnsim.nir.io import NirError, norse_to_nir, plain_arrays, write_graph  # noqa: E402

T = 12


@pytest.fixture(scope="module")
def norse_run():
    torch.manual_seed(2)
    box = nt.LIFBoxParameters(tau_mem_inv=torch.tensor(500.0), v_th=torch.tensor(0.5))      # dt*inv = 1/2
    net = nt.SequentialState(torch.nn.Linear(20, 32), nt.LIFBoxCell(box), torch.nn.Linear(32, 10),
                             nt.LIFBoxCell(box))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[2].weight.mul_(4.0)
    x = torch.from_numpy((np.random.default_rng(2).random((T, 5, 20)) < 0.4).astype(np.float32))
    s, outs = None, []
    with torch.no_grad():
        for t in range(T):
            z, s = net(x[t], s)
            outs.append(z.numpy())
    ref = np.stack(outs)
    assert 0 < ref.mean() < 1
    return net, x, ref


def test_norse_to_nir_runs_identically(norse_run, tmp_path):
    net, x, ref = norse_run
    norse_to_nir(net, x[0], tmp_path / "m.nir")           # a batch of 5 as the example: batched shapes
    r = import_nir(tmp_path / "m.nir", timesteps=T)
    assert any("example batch (5 samples)" in n for n in r.notes)
    assert [layer.get("tau") for layer in r.spec["layers"] if layer["type"] == "lif"] == [2.0, 2.0]
    assert np.array_equal(snnsim.load(r.spec, r.weights).run(x).outputs, ref)


def test_norse_own_export_needs_the_tau_fix(norse_run, tmp_path):
    net, x, ref = norse_run
    write_graph(plain_arrays(nt.to_nir(net, x[0])), tmp_path / "raw.nir")      # Norse's exporter, as it is
    with pytest.raises(NirError, match="add --fix norse-tau"):
        import_nir(tmp_path / "raw.nir", dt=1e-3)
    out = tmp_path / "n.yaml"
    r = CliRunner().invoke(main, ["import-nir", str(tmp_path / "raw.nir"), "-o", str(out), "--dt", "1e-3",
                                  "--fix", "norse-tau", "-T", str(T)])
    assert r.exit_code == 0, r.output
    model = snnsim.load(str(out), str(out.with_suffix(".npz")))
    assert np.array_equal(model.run(x).outputs, ref)


def test_export_says_which_peer_cannot_read_which_node(tmp_path):
    """The notes name the nodes each peer's importer has no module for, and the peers indeed fail on them."""
    from pathlib import Path

    from snnsim.nir.exporter import export_file

    nets = Path(__file__).resolve().parents[1] / "networks"
    res = export_file(nets / "cifar_sew_resnet.yaml", nets / "cifar_sew_resnet.npz", tmp_path / "s.nir")
    lines = [n for n in res.notes if "cannot read" in n]
    assert len(lines) == 2
    assert lines[0].startswith("snnTorch 1.0 cannot read node 'block1.add' (Scale)")
    assert lines[1].startswith("Norse 1.1 cannot read node ") and "'block1.add' (Scale)" in lines[1]
    from snntorch.import_nir import import_from_nir

    with pytest.raises(Exception):
        import_from_nir(res.graph)
    with pytest.raises(Exception):
        nt.from_nir(res.graph)
    # a network made of nodes both read: no such note, and both build a module from it
    mlp = export_file(nets / "digits_mlp.yaml", nets / "digits_mlp.npz", tmp_path / "m.nir")
    assert not [n for n in mlp.notes if "cannot read" in n]
    assert import_from_nir(mlp.graph) is not None and nt.from_nir(mlp.graph) is not None


RESNET_FOR_SNNTORCH = {
    "name": "res_snntorch", "input_shape": [2, 8, 8], "timesteps": 6, "encoding": "events",
    "neuron_defaults": {"lif": {"decay_input": False, "spike_rule": "gt", "tau": 2.0, "v_threshold": 0.5}},
    "layers": [
        {"name": "conv1", "type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1, "bias": False},
        {"name": "bn1", "type": "batchnorm2d"},
        {"name": "sn1", "type": "lif"},
        {"name": "b1", "type": "residual", "body": [
            {"name": "conv", "type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
            {"name": "sn", "type": "lif", "tau": 4.0}]},
        {"name": "b2", "type": "residual",
         "body": [{"name": "conv", "type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1,
                   "stride": 2},
                  {"name": "sn", "type": "lif"}],
         "shortcut": [{"name": "down", "type": "conv2d", "out_channels": 8, "kernel_size": 1, "stride": 2},
                      {"name": "dsn", "type": "lif"}]},
        {"name": "pool", "type": "avgpool2d", "kernel_size": 2},
        {"name": "flat", "type": "flatten"},
        {"name": "fc", "type": "linear", "out_features": 5},
        {"name": "sn2", "type": "lif"}]}


def test_export_for_snntorch_runs_a_residual_network_identically(tmp_path):
    import nir
    from snntorch.import_nir import import_from_nir

    from snnsim.nir.exporter import export_nir

    model = snnsim.load(RESNET_FOR_SNNTORCH, seed=3)
    x = (np.random.default_rng(0).random((6, 4, 2, 8, 8)) < 0.3).astype(np.float32)
    ours = model.run(x, probes=["sn1", "b2.sn"])
    res = export_nir(model.spec, model.weights, reader="snntorch")
    write_graph(res.graph, tmp_path / "r.nir")
    net = import_from_nir(nir.read(tmp_path / "r.nir", type_check=False))
    state, outs = None, []
    with torch.no_grad():
        for t in range(6):
            out, state = net(torch.from_numpy(x[t]), state)
            outs.append(out.numpy())
    theirs = np.stack(outs)
    assert np.array_equal(theirs, ours.outputs)
    for name in ("sn1", "b2.sn"):
        assert 0 < ours.trace.probes[name]["spikes"].mean() < 1
    assert 0 < ours.outputs.mean() < 1
    # what snnTorch's Leaky cannot compute is refused, naming the layer
    nets = Path(__file__).resolve().parents[1] / "networks"
    r = CliRunner().invoke(main, ["export-nir", str(nets / "cifar_sew_resnet.yaml"), "--weights",
                                  str(nets / "cifar_sew_resnet.npz"), "-o", str(tmp_path / "s.nir"),
                                  "--for", "snntorch"])
    assert r.exit_code == 2 and "layer 'sn1' (lif)" in r.output and "decay_input: false" in r.output
