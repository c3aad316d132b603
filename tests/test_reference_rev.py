"""Reference parity for the reversible regimes: a T-RevSNN and a RevSResNet written in PyTorch here, from
docs/papers.md (module and attribute names as in the official code, so their ``state_dict`` keys are the
official ones), run on the same weights and input as snnsim: identical spikes in every spiking layer, states and
outputs within 1e-5, and the inverses (docs/papers.md; computed in PyTorch) agree with snnsim's.

The weights go through the documented recipe: PyTorch state_dict -> np.savez -> snnsim ``load_weights``.
Both networks run with ``fold_batchnorm: false``, i.e. in PyTorch's order (conv, then batch norm): folding is
exact in real arithmetic but not in float32, and a membrane within ~1e-6 of threshold (it happens: 0.99999964
in layer3 of the RevSResNet with seed 0) then flips and the flip cascades through the integrating neurons.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from snnsim import regimes  # noqa: E402
from snnsim.engine import run  # noqa: E402
from snnsim.weights import random_weights  # noqa: E402
from snnsim.network import build_network  # noqa: E402
from snnsim.regimes import invert_block, reversible_ops  # noqa: E402
from snnsim.layers import Neuron, load_spec, parse_spec  # noqa: E402
from snnsim.weights import load_weights  # noqa: E402

from pathlib import Path  # noqa: E402

NETWORKS = Path(__file__).resolve().parent.parent / "networks"
torch.set_num_threads(2)


# ============================================================================ T-RevSNN in PyTorch (docs/papers.md)
class Quant(nn.Module):
    """Quant at eval (docs/papers.md, T-RevSNN Quant): clamp to [0, 1], round half to even."""

    def forward(self, x):
        return torch.clamp(x, 0, 1).round()


class ScaledStdConv2d(nn.Conv2d):
    """timm's ScaledStdConv2d (docs/papers.md): batch_norm over each output channel's weights, gain * fan_in^-1/2."""

    def __init__(self, cin, cout, k, stride=1, padding=0, groups=1, bias=True, eps=1e-6):
        super().__init__(cin, cout, k, stride, padding, groups=groups, bias=bias)
        self.gain = nn.Parameter(torch.ones(cout, 1, 1, 1))
        self.scale = self.weight[0].numel() ** -0.5
        self.eps = eps

    def forward(self, x):
        w = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                         weight=(self.gain * self.scale).reshape(-1), training=True, momentum=0.0,
                         eps=self.eps).reshape_as(self.weight)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class DownSampling(nn.Module):
    def __init__(self, cin, cout, k, s, p):
        super().__init__()
        self.quant = Quant()
        self.encode_conv = nn.Conv2d(cin, cout, k, s, p, bias=False)
        self.encode_bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.encode_bn(self.encode_conv(self.quant(x)))


class UpSampling(DownSampling):
    def __init__(self, cin, cout):
        super().__init__(cin, cout, 1, 1, 0)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x):
        return self.upsample(super().forward(x))


class Block(nn.Module):
    """MS_SpikeConvNextBlock (gamma) / MS_SpikeConvNextBlock_Reuse (shared pwconv2_reuse, dwconv2_reuse)."""

    def __init__(self, c, k, ratio, shared=None):
        super().__init__()
        self.quant1 = Quant()
        self.dwconv1 = nn.Conv2d(c, c, k, padding=k // 2, groups=c)
        self.pwconv1 = ScaledStdConv2d(c, ratio * c, 1)
        self.quant2 = Quant()
        if shared is None:
            self.pwconv2 = ScaledStdConv2d(ratio * c, c, 1)
            self.dwconv2 = nn.Conv2d(c, c, k, padding=k // 2, groups=c)
            self.gamma = nn.Parameter(torch.ones(1, c, 1, 1))
        else:
            self.pwconv2_reuse = copy.copy(shared[0])     # as the official code: one module for all columns
            self.dwconv2_reuse = copy.copy(shared[1])

    def forward(self, z):
        x = self.pwconv1(self.dwconv1(self.quant1(z)))
        x = self.quant2(x)
        if hasattr(self, "gamma"):
            return z + self.dwconv2(self.pwconv2(x)) * self.gamma
        return z + self.dwconv2_reuse(self.pwconv2_reuse(x))


class Fusion(nn.Module):
    def __init__(self, level, ch, first_col):
        super().__init__()
        self.level, self.first_col = level, first_col
        L = len(ch)
        self.down = nn.Identity() if level == 0 else (DownSampling(ch[level - 1], ch[level], 3, 2, 1)
                                                       if level < L - 1 else DownSampling(ch[level - 1], ch[level], 1, 1, 0))
        if not first_col and level != L - 1:
            self.up = UpSampling(ch[level + 1], ch[level]) if level < L - 2 else DownSampling(ch[level + 1], ch[level], 1, 1, 0)

    def forward(self, c_down, c_up):
        if self.first_col or not hasattr(self, "up"):      # first column, or the deepest level
            return self.down(c_down)
        return self.up(c_up) + self.down(c_down)


class Level(nn.Module):
    def __init__(self, level, ch, k, ratio, first_col, shared):
        super().__init__()
        self.fusion = Fusion(level, ch, first_col)
        self.blocks = nn.Sequential(Block(ch[level], k, ratio), Block(ch[level], k, ratio, shared))

    def forward(self, c_down, c_up):
        return self.blocks(self.fusion(c_down, c_up))


class SubNet(nn.Module):
    def __init__(self, ch, k, ratio, first_col, shared):
        super().__init__()
        for l, c in enumerate(ch):
            setattr(self, f"alpha{l}", nn.Parameter(0.5 * torch.ones(1, c, 1, 1)))
        for l in range(len(ch)):
            setattr(self, f"level{l}", Level(l, ch, k, ratio, first_col, shared[l]))

    def forward(self, x, cs):
        L = len(cs)
        new = []
        for l in range(L):
            a = getattr(self, f"alpha{l}").data
            a = a.sign() * a.abs().clamp(1e-3)                      # SubNet._clamp_abs
            o = getattr(self, f"level{l}")(x if l == 0 else new[l - 1], cs[l + 1] if l + 1 < L else None)
            new.append(o + cs[l] * a)                               # ReverseFunction.forward
        return new


class Classifier(nn.Module):
    def __init__(self, c, n):
        super().__init__()
        self.classifier = nn.Sequential(ScaledStdConv2d(c, n, 1))

    def forward(self, x):
        return self.classifier(x.mean(dim=[-1, -2], keepdim=True)).flatten(1)


class SpikeClassifier(nn.Module):
    def __init__(self, c, n):
        super().__init__()
        self.quant = Quant()
        self.classifier1 = nn.Sequential(ScaledStdConv2d(c, n, 1))
        self.classifier2 = ScaledStdConv2d(n, n, 1)

    def forward(self, x):
        x = self.quant(x).mean(dim=[-1, -2], keepdim=True)
        return self.classifier2(F.leaky_relu(self.classifier1(x), 1.0)).flatten(1)


class Stem(nn.Module):
    def __init__(self, c0):
        super().__init__()
        self.down1 = nn.Sequential(ScaledStdConv2d(3, c0, 3, 1, 1))
        self.down2 = nn.Sequential(ScaledStdConv2d(c0, c0, 3, 2, 1))

    def forward(self, img):
        return self.down2(F.leaky_relu(self.down1(img), 1.0))


class FullNet(nn.Module):
    def __init__(self, ch, T, k, ratio, classes):
        super().__init__()
        self.T = T
        self.stem = Stem(ch[0])
        shared = [(ScaledStdConv2d(ratio * c, c, 1), nn.Conv2d(c, c, k, padding=k // 2, groups=c)) for c in ch]
        for i in range(T):
            self.add_module(f"subnet{i}", SubNet(ch, k, ratio, i == 0, shared))
        self.cls_blocks = nn.ModuleList([Classifier(ch[-1], classes) for _ in range(3)] + [SpikeClassifier(ch[-1], classes)])

    def forward(self, img):
        x = self.stem(img)
        cs = [0, 0, 0, 0]                     # c_l[-1] = 0 (the official code passes the int 0)
        states, outs = [], []
        for i in range(self.T):
            cs = getattr(self, f"subnet{i}")(x, cs)
            states.append([c.clone() for c in cs])
            outs.append(self.cls_blocks[i // (self.T // 4)](cs[-1]))
        return x, states, outs


TREV = {"name": "trev_ref", "input_shape": [3, 16, 16], "timesteps": 4, "encoding": "direct", "fold_batchnorm": False,
        "readout": {"reduce": "mean"},
        "layers": [{"name": "trev", "type": "trevsnn", "columns": 4, "channels": [8, 16, 24, 32],
                    "strides": [1, 2, 2, 1], "kernel_size": 3, "hidden_ratio": 4,
                    "stem": [{"kernel_size": 3, "stride": 1}, {"kernel_size": 3, "stride": 2}],
                    "heads": 4, "classes": 10}]}


def _record_quants(model):
    spikes = {}
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, Quant):
            def hook(mod, inp, out, name=name):       # must return None (a returned value replaces the output)
                spikes.setdefault(name, out.detach().numpy().copy())
            hooks.append(m.register_forward_hook(hook))
    return spikes, hooks


def _snnsim_network(spec, model, folder):
    """The model's state_dict saved to npz (the documented export recipe) and loaded into snnsim. Its keys must be
    the spec's weight keys."""
    sd = model.state_dict()
    assert set(k for k in sd if not k.endswith("num_batches_tracked")) == set(spec.param_shapes()), \
        "the spec's weight keys are not the official state_dict keys"
    path = folder / "w.npz"
    np.savez(path, **{k: v.detach().numpy() for k, v in sd.items()})
    return build_network(spec, load_weights(spec, path))


@pytest.fixture(scope="module")
def trev_pair(tmp_path_factory):
    spec = parse_spec(TREV)
    w = random_weights(spec, seed=3)
    model = FullNet([8, 16, 24, 32], 4, 3, 4, 10).eval()
    model.load_state_dict({k: (torch.from_numpy(w[k]) if k in w else v) for k, v in model.state_dict().items()})
    net = _snnsim_network(spec, model, tmp_path_factory.mktemp("trev"))
    img = np.random.default_rng(5).random((4, 3, 16, 16)).astype(np.float32)
    return spec, net, model, img


def test_trev_keys_match_the_official_names(trev_pair):
    spec, *_ = trev_pair
    keys = spec.param_shapes()
    for k in ("stem.down1.0.gain", "subnet0.alpha3", "subnet0.level1.fusion.down.encode_bn.running_var",
              "subnet1.level0.fusion.up.encode_conv.weight", "subnet1.level2.fusion.up.encode_bn.weight",
              "subnet2.level3.blocks.1.pwconv2_reuse.gain", "subnet0.level0.blocks.0.gamma",
              "cls_blocks.2.classifier.0.weight", "cls_blocks.3.classifier1.0.bias", "cls_blocks.3.classifier2.gain"):
        assert k in keys, k
    assert "subnet0.level0.fusion.up.encode_conv.weight" not in keys       # first column: no top-down input
    assert "subnet1.level3.fusion.up.encode_conv.weight" not in keys       # deepest level: none either


def test_trev_matches_pytorch_reference(trev_pair):
    spec, net, model, img = trev_pair
    spikes, hooks = _record_quants(model)
    # hooks keep the first call only; Quant modules are per column (shared reuse modules hold no Quant)
    with torch.no_grad():
        x_ref, states_ref, outs_ref = model(torch.from_numpy(img))
    for h in hooks:
        h.remove()
    neurons = [layer.name for layer in spec.all_layers() if isinstance(layer, Neuron)]
    states = [f"subnet{t}.c{l}" for t in range(4) for l in range(4)]
    res = run(net, img, probes=neurons + states)
    total = 0
    for name in neurons:
        t = int(name.split(".")[0][6:]) if name.startswith("subnet") else int(name.split(".")[1])
        ours = res.trace.probes[name]["spikes"][t]
        theirs = spikes[name]
        assert ours.shape == theirs.shape, name
        flips = int((ours != theirs).sum())
        assert flips == 0, f"{name}: {flips} of {ours.size} spikes differ from the PyTorch reference"
        total += ours.sum()
        assert 0 < ours.mean() < 1, f"{name}: firing rate {ours.mean()} makes the comparison vacuous"
    assert total > 0
    for t in range(4):
        for l in range(4):
            np.testing.assert_allclose(res.trace.probes[f"subnet{t}.c{l}"]["output"][t], states_ref[t][l].numpy(),
                                       atol=1e-5, rtol=0, err_msg=f"c{l}[{t}]")
    for t in range(4):
        np.testing.assert_allclose(res.outputs[t], outs_ref[t].numpy(), atol=1e-5, rtol=0)


def test_trev_inverse_matches_pytorch_reverse(trev_pair):
    """T-RevSNN inverse (docs/papers.md), as in ReverseFunction.backward: c_left = (1 / alpha) * (c - L(...))."""
    spec, net, model, img = trev_pair
    with torch.no_grad():
        x_ref, states_ref, _ = model(torch.from_numpy(img))
        t = 3
        sub = getattr(model, f"subnet{t}")
        c = states_ref[t]
        left = [None] * 4
        for l in range(3, -1, -1):
            a = getattr(sub, f"alpha{l}").data
            a = a.sign() * a.abs().clamp(1e-3)
            o = getattr(sub, f"level{l}")(x_ref if l == 0 else c[l - 1], left[l + 1] if l < 3 else None)
            left[l] = (1 / a) * (c[l] - o)
    fw = regimes.forward(net, img)
    inv = regimes.invert_column(net, t, fw.x, fw.states[t])
    for l in range(4):
        np.testing.assert_allclose(inv.states[l], left[l].numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(inv.states[l], states_ref[t - 1][l].numpy(), atol=1e-5, rtol=0)


# ============================================================================ RevSResNet in PyTorch (docs/papers.md)
class IF(nn.Module):
    """spikingjelly 0.0.0.0.12 MultiStepIFNode (docs/papers.md): H = V + X, S = H >= 1, hard reset to 0; [T, B, ...]."""

    def forward(self, x):
        v = torch.zeros_like(x[0])
        out = []
        for t in range(x.shape[0]):
            h = v + x[t]
            s = (h >= 1.0).to(x.dtype)
            v = h * (1 - s)
            out.append(s)
        return torch.stack(out)


class SeqToANN(nn.Sequential):
    def forward(self, x):
        T, B = x.shape[:2]
        y = super().forward(x.flatten(0, 1))
        return y.reshape(T, B, *y.shape[1:])


class BasicResidualBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = SeqToANN(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))
        self.sn1 = IF()
        self.conv2 = SeqToANN(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))
        self.sn2 = IF()

    def forward(self, x):
        return self.conv2(self.sn2(self.conv1(self.sn1(x))))


class ReversibleBlock(nn.Module):
    """revtorch.ReversibleBlock (docs/papers.md, RevSNN block): layer-major over all T at once, F then G."""

    def __init__(self, f, g):
        super().__init__()
        self.f_block, self.g_block = f, g

    def forward(self, x):
        x1, x2 = torch.chunk(x, 2, dim=2)
        y1 = x1 + self.f_block(x2)
        y2 = x2 + self.g_block(y1)
        return torch.cat([y1, y2], dim=2)

    def inverse(self, y):
        """backward_pass's reconstruction (docs/papers.md, RevSNN inverse): re-simulate G, then F, from reset state."""
        y1, y2 = torch.chunk(y, 2, dim=2)
        x2 = y2 - self.g_block(y1)
        x1 = y1 - self.f_block(x2)
        return torch.cat([x1, x2], dim=2)


class RevSeq(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.reversible_blocks = nn.ModuleList([ReversibleBlock(BasicResidualBlock(c), BasicResidualBlock(c))])

    def forward(self, x):
        for b in self.reversible_blocks:
            x = b(x)
        return x


class RevSResNet(nn.Module):
    def __init__(self, arch, T, classes=10):
        super().__init__()
        self.T = T
        self.conv1 = nn.Conv2d(3, 2 * arch[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(2 * arch[0])
        for i, h in enumerate(arch):
            setattr(self, f"layer{i + 1}", RevSeq(h))
            if i:
                setattr(self, f"ds{i}", nn.Sequential(IF(), SeqToANN(nn.AvgPool2d(3, 2, 1),
                                                                     nn.Conv2d(2 * arch[i - 1], 2 * h, 1, bias=False),
                                                                     nn.BatchNorm2d(2 * h))))
        self.sn1 = IF()
        self.avgpool = SeqToANN(nn.AdaptiveAvgPool2d((1, 1)))
        self.fc = nn.Linear(2 * arch[-1], classes)

    def forward(self, img, keep=None):
        x = self.bn1(self.conv1(img)).unsqueeze(0).repeat(self.T, 1, 1, 1, 1)
        for i in range(4):
            if i:
                x = getattr(self, f"ds{i}")(x)
            if keep is not None:
                keep[f"layer{i + 1}.in"] = x
            x = getattr(self, f"layer{i + 1}")(x)
            if keep is not None:
                keep[f"layer{i + 1}.out"] = x
        x = self.avgpool(self.sn1(x)).flatten(2)
        return self.fc(x).mean(0), x


def _lively_bn(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2, generator=g)
                m.running_var.uniform_(0.05, 0.3, generator=g)
                m.weight.uniform_(0.8, 1.6, generator=g)
                m.bias.uniform_(0.0, 0.5, generator=g)
    return model


@pytest.fixture(scope="module")
def revs_pair(tmp_path_factory):
    spec = replace(load_spec(NETWORKS / "revs_resnet21_small.yaml"), fold_batchnorm=False)
    torch.manual_seed(0)
    model = _lively_bn(RevSResNet([16, 32, 64, 112], T=3), 1).eval()
    net = _snnsim_network(spec, model, tmp_path_factory.mktemp("revs"))
    img = np.random.default_rng(2).random((3, 3, 32, 32)).astype(np.float32)
    return spec, net, model, img


def test_revsresnet_matches_pytorch_reference(revs_pair):
    spec, net, model, img = revs_pair
    spikes = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, name=n: spikes.__setitem__(name, o.numpy().copy()) and None)
             for n, m in model.named_modules() if isinstance(m, IF)]
    with torch.no_grad():
        out_ref, _ = model(torch.from_numpy(img))
    for h in hooks:
        h.remove()
    names = [layer.name for layer in spec.all_layers() if isinstance(layer, Neuron)]
    res = run(net, img, timesteps=3, probes=names)
    for name in names:
        ours = res.trace.probes[name]["spikes"]
        theirs = spikes[name]
        assert int((ours != theirs).sum()) == 0, f"{name}: spikes differ from the PyTorch reference"
        assert 0 < ours.mean() < 1, f"{name}: firing rate {ours.mean()}"
    np.testing.assert_allclose(res.readout, out_ref.numpy(), atol=1e-5, rtol=0)


def test_revsnn_inverse_matches_pytorch_reverse(revs_pair):
    spec, net, model, img = revs_pair
    keep = {}
    with torch.no_grad():
        model(torch.from_numpy(img), keep)
        blk = model.layer2.reversible_blocks[0]
        x_torch = blk.inverse(keep["layer2.out"]).numpy()
    ops = {op.name: op for op in reversible_ops(net)}
    op = ops["layer2.reversible_blocks.0"]
    res = run(net, img, timesteps=3, probes=[op.name])
    y = res.trace.probes[op.name]["output"]
    x = res.trace.probes[op.name]["input"]
    np.testing.assert_allclose(y, keep["layer2.out"].numpy(), atol=1e-5, rtol=0)
    inv = invert_block(op, y)
    assert not inv.flagged
    assert np.all(np.abs(inv.x - x) <= inv.bound)
    np.testing.assert_allclose(inv.x, x_torch, atol=1e-5, rtol=0)
    np.testing.assert_allclose(inv.x, keep["layer2.in"].numpy(), atol=1e-5, rtol=0)
