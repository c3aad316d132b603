"""hwmodel's NeuroBench convention against NeuroBench 2.3.0 itself, on an snnTorch twin of mnist_conv.

The twin: the shipped mnist_conv weights (batch norm folded, as snnsim runs them) in torch ``Conv2d`` /
``Linear`` layers and snnTorch ``Leaky`` neurons with beta 0.5, threshold 1, reset to zero applied at once
(``reset_delay=False``). snnTorch's Leaky is H = beta * U + x, spike when H > threshold, so snnsim runs the
same topology with LIF tau 2 (H = v - v / 2 + x, exact in float32), ``decay_input: false`` and
``spike_rule: gt``. NeuroBench's ``Benchmark`` runs the twin on the same images repeated T times, in one
batch, and its workload metrics must equal ``neurobench_metrics`` of the snnsim run: counts to the
integer, sparsity to round-off.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
pytest.importorskip("neurobench")

from hwmodel.neurobench import neurobench_metrics  # noqa: E402
from snnsim.network import check_nonzero_weights, spiking_layers  # noqa: E402
from snnsim.data import load_dataset  # noqa: E402
from snnsim.engine import run  # noqa: E402
from snnsim.network import build_network  # noqa: E402
from snnsim.layers import parse_spec  # noqa: E402
from snnsim.weights import load_weights  # noqa: E402

NETWORKS = Path(__file__).resolve().parent.parent / "networks"
T = 4
N = 16


def _snnsim_net():
    raw = yaml.safe_load((NETWORKS / "mnist_conv.yaml").read_text())
    raw["neuron_defaults"]["lif"].update(decay_input=False, spike_rule="gt", v_reset=0.0, tau=2.0)
    spec = parse_spec(raw, "mnist_conv.yaml")
    return build_network(spec, load_weights(spec, NETWORKS / "mnist_conv.npz"))


class Twin(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        ops = {op.name: op for op in net.ops}
        lif = lambda: snn.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero", reset_delay=False)  # noqa: E731
        self.conv1, self.sn1 = torch.nn.Conv2d(1, 16, 3, padding=1), lif()
        self.conv2, self.sn2 = torch.nn.Conv2d(16, 32, 3, padding=1), lif()
        self.fc1, self.sn3 = torch.nn.Linear(1568, 128), lif()
        self.fc2, self.sn4 = torch.nn.Linear(128, 10), lif()
        self.pool = torch.nn.MaxPool2d(2)
        with torch.no_grad():
            for name in ("conv1", "conv2", "fc1", "fc2"):
                getattr(self, name).weight.copy_(torch.from_numpy(np.asarray(ops[name].weight)))
                getattr(self, name).bias.copy_(torch.from_numpy(np.asarray(ops[name].bias)))

    def forward(self, x):
        s, _ = self.sn1(self.conv1(x))
        s, _ = self.sn2(self.conv2(self.pool(s)))
        s, _ = self.sn3(self.fc1(self.pool(s).flatten(1)))
        return self.sn4(self.fc2(s))


def _neurobench(net, x):
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import (ActivationSparsity, MembraneUpdates, NeuronOperations,
                                             SynapticOperations)
    from neurobench.models import SNNTorchModel

    data = torch.from_numpy(x).unsqueeze(1).repeat(1, T, 1, 1, 1)          # [batch, T, C, H, W]
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data, torch.zeros(len(x))),
                                         batch_size=len(x))
    bench = Benchmark(SNNTorchModel(Twin(net)), loader, [], [],
                      [[], [SynapticOperations, MembraneUpdates, NeuronOperations, ActivationSparsity]])
    return bench.run(quiet=True)


def test_neurobench_metrics_equal_neurobench_on_an_snntorch_twin():
    net = _snnsim_net()
    assert check_nonzero_weights(net) == []       # NeuroBench skips zero weights; there are none
    x, _ = load_dataset("mnist").split("test")
    x = np.ascontiguousarray(x[:N], dtype=np.float32)
    ours = neurobench_metrics(run(net, x, timesteps=T, probes=spiking_layers(net)).trace)
    theirs = _neurobench(net, x)
    syn = theirs["SynapticOperations"]
    assert ours["Effective_ACs"] == syn["Effective_ACs"] > 0
    assert ours["Effective_MACs"] == syn["Effective_MACs"] > 0
    assert ours["Dense"] == syn["Dense"]
    assert ours["MembraneUpdates"] == theirs["MembraneUpdates"]
    neu = theirs["NeuronOperations"]
    assert ours["Effective Neuron Ops"] == neu["Effective Neuron Ops"]
    assert ours["Neuron Dense Ops"] == neu["Neuron Dense Ops"]
    assert ours["ActivationSparsity"] == pytest.approx(theirs["ActivationSparsity"], abs=1e-12)
    assert 0 < ours["ActivationSparsity"] < 1


def test_cli_neurobench_convention_prints_the_python_metrics(tmp_path):
    import pandas as pd
    from click.testing import CliRunner

    from snnsim.cli.hw import hw
    from snnsim.layers import load_spec

    spec = load_spec(NETWORKS / "mnist_conv.yaml")
    net = build_network(spec, load_weights(spec, NETWORKS / "mnist_conv.npz"))
    x, _ = load_dataset("mnist").split("test")
    want = neurobench_metrics(run(net, np.ascontiguousarray(x[:8]), timesteps=2, probes=spiking_layers(net)).trace)
    res = CliRunner().invoke(hw, [str(NETWORKS / "mnist_conv.yaml"), "--weights", str(NETWORKS / "mnist_conv.npz"),
                                  "--dataset", "mnist", "--limit", "8", "-T", "2", "--convention", "neurobench",
                                  "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    got = pd.read_csv(tmp_path / "hw_neurobench.csv").set_index("metric").value
    assert got.to_dict() == pytest.approx(want, rel=1e-12)
