"""The shipped networks built in SpikingJelly 2.0 (multi-step), for reference tests and benchmarks.

The module names mirror the YAML layer names, so ``state_dict`` keys equal snnsim weight keys.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

NETWORKS = Path(__file__).resolve().parent.parent / "networks"


def _sj():
    import torch.nn as nn
    from spikingjelly.activation_based import layer, neuron

    return nn, layer, neuron


def lif(v_reset=0.0, tau=2.0, decay_input=True):
    _, _, neuron = _sj()
    return neuron.LIFNode(tau=tau, v_reset=v_reset, decay_input=decay_input, step_mode="m")


def digits_mlp(v_reset=0.0):
    nn, layer, _ = _sj()
    return nn.Sequential(OrderedDict(
        flatten=layer.Flatten(step_mode="m"), fc1=layer.Linear(64, 128, step_mode="m"),
        bn1=layer.BatchNorm1d(128, step_mode="m"), sn1=lif(v_reset),
        fc2=layer.Linear(128, 10, step_mode="m"), sn2=lif(v_reset)))


def mnist_conv(v_reset=0.0):
    nn, layer, _ = _sj()
    return nn.Sequential(OrderedDict(
        conv1=layer.Conv2d(1, 16, 3, padding=1, bias=False, step_mode="m"),
        bn1=layer.BatchNorm2d(16, step_mode="m"), sn1=lif(v_reset), pool1=layer.MaxPool2d(2, step_mode="m"),
        conv2=layer.Conv2d(16, 32, 3, padding=1, bias=False, step_mode="m"),
        bn2=layer.BatchNorm2d(32, step_mode="m"), sn2=lif(v_reset), pool2=layer.MaxPool2d(2, step_mode="m"),
        flatten=layer.Flatten(step_mode="m"), fc1=layer.Linear(1568, 128, step_mode="m"), sn3=lif(v_reset),
        fc2=layer.Linear(128, 10, step_mode="m"), sn4=lif(v_reset)))


def sew_block(c_in, c_out, stride, v_reset=0.0):
    nn, layer, _ = _sj()

    class SEWBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = layer.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False, step_mode="m")
            self.bn1 = layer.BatchNorm2d(c_out, step_mode="m")
            self.sn1 = lif(v_reset)
            self.conv2 = layer.Conv2d(c_out, c_out, 3, padding=1, bias=False, step_mode="m")
            self.bn2 = layer.BatchNorm2d(c_out, step_mode="m")
            self.sn2 = lif(v_reset)
            self.downsample = None
            if stride != 1 or c_in != c_out:
                self.downsample = nn.Sequential(
                    layer.Conv2d(c_in, c_out, 1, stride=stride, bias=False, step_mode="m"),
                    layer.BatchNorm2d(c_out, step_mode="m"), lif(v_reset))

        def forward(self, x):
            out = self.sn2(self.bn2(self.conv2(self.sn1(self.bn1(self.conv1(x))))))
            return out + (self.downsample(x) if self.downsample is not None else x)

    return SEWBlock()


def cifar_sew_resnet(v_reset=0.0):
    nn, layer, _ = _sj()
    return nn.Sequential(OrderedDict(
        conv1=layer.Conv2d(3, 16, 3, padding=1, bias=False, step_mode="m"),
        bn1=layer.BatchNorm2d(16, step_mode="m"), sn1=lif(v_reset),
        block1=sew_block(16, 16, 1, v_reset), block2=sew_block(16, 32, 2, v_reset),
        block3=sew_block(32, 64, 2, v_reset), pool=layer.AvgPool2d(8, step_mode="m"),
        flatten=layer.Flatten(step_mode="m"), fc=layer.Linear(64, 10, step_mode="m"), sn_out=lif(v_reset)))


BUILDERS = {"digits_mlp": digits_mlp, "mnist_conv": mnist_conv, "cifar_sew_resnet": cifar_sew_resnet}


def build(name, v_reset=0.0, seed=0):
    """``BUILDERS[name]`` with PyTorch's global generator seeded first: the default initialisation of every
    conv/linear layer draws from it, so without the seed the weights depended on which tests ran before."""
    import torch

    torch.manual_seed(seed)
    return BUILDERS[name](v_reset)


def load_into(model, weights: dict[str, np.ndarray]):
    """Copy snnsim weights (keyed like the state_dict) into a torch model, strictly."""
    import torch

    sd = model.state_dict()
    new = {k: torch.from_numpy(np.asarray(weights[k])).reshape(sd[k].shape) if k in weights else sd[k]
           for k in sd}
    model.load_state_dict(new, strict=True)
    return model.eval()


def run_sj(model, x: np.ndarray, T: int, record=()):
    """Direct encoding: x [N, ...] repeated T times. Returns output [T, N, ...] and recorded spikes."""
    import torch
    from spikingjelly.activation_based import functional

    spikes = {}
    hooks = []
    for name, mod in model.named_modules():
        if name in record:
            hooks.append(mod.register_forward_hook(
                lambda m, i, o, name=name: spikes.__setitem__(name, o.detach().numpy().copy())))
    functional.reset_net(model)
    with torch.no_grad():
        xs = torch.from_numpy(x).unsqueeze(0).repeat((T,) + (1,) * x.ndim)
        out = model(xs).numpy()
    for h in hooks:
        h.remove()
    functional.reset_net(model)
    return out, spikes


def lively_weights(model, seed=0, *, bias=(0.6, 1.4), running_stats=True):
    """Seeded weights with lively activity for reference tests and benchmarks: PyTorch's default init,
    batch-norm statistics and positive linear biases chosen so that every layer fires at moderate rates.
    ``running_stats=False`` leaves the batch-norm running statistics at PyTorch's defaults (training tests,
    where the step itself updates them)."""
    import torch

    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                if running_stats:
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.05, 0.3)
                m.weight.uniform_(0.8, 1.6)
                m.bias.uniform_(0.0, 0.5)
        elif isinstance(m, torch.nn.Linear):
            with torch.no_grad():
                m.weight.mul_(3.0)
                m.bias.uniform_(*bias)
    return model.eval()


def shipped_spec(name, v_reset):
    """networks/<name>.yaml parsed with the LIF default reset set to ``v_reset`` (None: soft reset)."""
    import yaml

    from snnsim.layers import parse_spec

    raw = yaml.safe_load((NETWORKS / f"{name}.yaml").read_text())
    raw["neuron_defaults"]["lif"]["v_reset"] = v_reset
    return parse_spec(raw, f"{name}.yaml")


def shipped_batch(name, split, n):
    """(x, y): the first n samples of a split of the dataset the shipped network was built for, in its input
    shape (for cifar_sew_resnet: MNIST padded to 32x32 with the channel repeated three times)."""
    from snnsim.data import load_dataset

    if name == "digits_mlp":
        x, y = load_dataset("digits").split(split)
        return np.ascontiguousarray(x[:n]), y[:n]
    x, y = load_dataset("mnist").split(split)
    x, y = x[:n], y[:n]
    if name == "cifar_sew_resnet":
        x = np.repeat(np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2))), 3, axis=1)
    return np.ascontiguousarray(x, dtype=np.float32), y


# ----------------------------------------------------------------------------- Norse and snnTorch
def stepwise(model, T, neuron, train=False):
    """The same layers driven timestep by timestep, with each LIF layer replaced by a peer's neuron:
    ``neuron()`` returns (initial state, step(input, state) -> (spikes, state)). Returns forward(x) -> [T, N, ...]
    outputs (direct encoding: x at every step), under ``torch.no_grad()`` unless ``train``."""
    import contextlib

    import torch
    from spikingjelly.activation_based import functional

    mods = []
    for name, m in model.named_children():
        if type(m).__name__ == "LIFNode":
            mods.append(("lif", neuron()))
        else:
            mods.append(("layer", m))
            for c in m.modules():               # SpikingJelly wrappers act per timestep in single-step mode
                if hasattr(c, "step_mode"):
                    c.step_mode = "s"

    def forward(x):
        states = [m[0] if kind == "lif" else None for kind, m in mods]
        outs = []
        with contextlib.nullcontext() if train else torch.no_grad():
            functional.reset_net(model)
            for _ in range(T):
                h = x
                for i, (kind, m) in enumerate(mods):
                    if kind == "lif":
                        h, states[i] = m[1](h, states[i])
                    else:
                        h = m(h)
                outs.append(h)
        return torch.stack(outs)

    return forward


def snntorch_lif():
    """snnTorch Leaky, beta 0.5, reset to zero: the LIF (tau 2, hard reset) of the networks (its default
    surrogate, arctan, when trained)."""
    import snntorch as snn

    cell = snn.Leaky(beta=0.5, reset_mechanism="zero")
    return cell.init_leaky(), lambda h, mem: cell(h, mem)


def norse_lif():
    """Norse LIFBoxCell (no synaptic current), dt * tau_mem_inv = 0.5, threshold 1, reset to 0 (its default
    surrogate, SuperSpike, when trained)."""
    import norse.torch as nt
    import torch

    cell = nt.LIFBoxCell(nt.LIFBoxParameters(tau_mem_inv=torch.tensor(500.0)), dt=1e-3)
    return None, lambda h, state: cell(h, state)
