"""The execution regimes from the command line and the spec: every shipped network runs and is described,
-T lists run the same weights at several T, and YAML / weight / regime errors are one line (exit status 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from snnsim.cli import main
from snnsim.engine import run
from snnsim.errors import InputError, SpecError, WeightError
from snnsim.weights import random_weights
from snnsim.network import build_network
from snnsim.layers import load_spec, parse_spec
from snnsim.trace import Trace
from snnsim.weights import check_weights, load_weights

NETWORKS = Path(__file__).resolve().parent.parent / "networks"
SHIPPED = sorted(p.stem for p in NETWORKS.glob("*.yaml"))
NEW = ["trev_small", "trev_tiny224", "revs_resnet21", "revs_resnet21_small", "ms_resnet18_small"]
f32 = np.float32


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("name", SHIPPED)
def test_info_on_every_shipped_network(name):
    r = _invoke("info", NETWORKS / f"{name}.yaml")
    assert r.exit_code == 0, r.output
    assert "total:" in r.output


def test_info_counts_shared_modules_once_and_the_trev_state():
    r = _invoke("info", NETWORKS / "trev_small.yaml")
    # channels 16/32/48/64 at 16/8/4/4 px: the c_l of 4 levels are the only state kept across timesteps
    assert "7936 state words" in r.output
    spec = load_spec(NETWORKS / "trev_small.yaml")
    assert "subnet3.level2.blocks.1.pwconv2_reuse.gain" in spec.param_shapes()


@pytest.fixture(scope="module")
def cifar_input(tmp_path_factory):
    d = tmp_path_factory.mktemp("x")
    np.save(d / "x.npy", np.random.default_rng(0).random((3, 3, 32, 32)).astype(f32))
    np.save(d / "y.npy", np.array([1, 2, 3]))
    return d


@pytest.mark.parametrize("name", [n for n in NEW if (NETWORKS / f"{n}.npz").exists()])
def test_run_shipped_weights_at_several_T(name, cifar_input):
    T = "4,3,2,1"
    r = _invoke("run", NETWORKS / f"{name}.yaml", "--weights", NETWORKS / f"{name}.npz", "--input",
                cifar_input / "x.npy", "--labels", cifar_input / "y.npy", "-T", T)
    assert r.exit_code == 0, r.output
    for t in (4, 3, 2, 1):
        assert f"T={t}: accuracy" in r.output
    assert "oneshot" in r.output and ("trev" in r.output if name.startswith("trev") else "multistep" in r.output)


@pytest.mark.parametrize("name, shape, T", [("revs_resnet21", (3, 32, 32), 2), ("trev_tiny224", (3, 224, 224), 1)])
def test_run_the_big_shipped_networks_with_generated_weights(tmp_path, name, shape, T):
    w = tmp_path / "w.npz"
    r = _invoke("init-weights", NETWORKS / f"{name}.yaml", "-o", w, "--seed", 0)
    assert r.exit_code == 0, r.output
    np.save(tmp_path / "x.npy", np.random.default_rng(1).random((1,) + shape).astype(f32))
    r = _invoke("run", NETWORKS / f"{name}.yaml", "--weights", w, "--input", tmp_path / "x.npy", "-T", T,
                "--trace", tmp_path / "t.npz")
    assert r.exit_code == 0, r.output
    tr = Trace.load(tmp_path / "t.npz")
    assert tr.regime == ("oneshot" if T == 1 else "multistep")
    assert not (T == 1 and any(rec.stateful for rec in tr.layers))


def test_trev_trace_records_the_regime_and_only_the_c_states(tmp_path, cifar_input):
    r = _invoke("run", NETWORKS / "trev_small.yaml", "--weights", NETWORKS / "trev_small.npz", "--input",
                cifar_input / "x.npy", "--trace", tmp_path / "t.npz")
    assert r.exit_code == 0, r.output
    assert "regime trev" in r.output
    tr = Trace.load(tmp_path / "t.npz")
    assert tr.regime == "trev" and tr.timesteps == 4
    carried = [rec for rec in tr.layers if rec.stateful]
    assert {rec.kind for rec in carried} == {"state"}
    assert sum(rec.state_size for rec in carried) == 3 * 7936          # c_l[t] for t = 0, 1, 2 feed column t+1
    stem = tr.layer("stem.down1.0")
    assert stem.computed.tolist() == [True, False, False, False]
    assert tr.layer("subnet2.level1.blocks.0.pwconv1").computed.tolist() == [False, False, True, False]
    assert tr.layer("subnet1.level0.blocks.1.pwconv2_reuse").geometry["shared_from"] == \
        "subnet0.level0.blocks.1.pwconv2_reuse"
    assert tr.layer("subnet0.level0.blocks.0.pwconv1").geometry["standardize"] is True
    assert [rec.name for rec in tr.layers if rec.name.startswith("cls_blocks")][0].startswith("cls_blocks.3")


@pytest.mark.parametrize("args, message", [
    (["-T", "4,x"], "expected a positive integer or a comma-separated list"),
    (["-T", "0"], "expected a positive integer or a comma-separated list"),
    (["-T", "4,2", "--trace", "t.npz"], "save a single run"),
    (["-T", "5"], "has 4 columns (one per timestep); T=5 is not between 1 and 4"),
])
def test_cli_errors_are_one_line(cifar_input, args, message):
    r = _invoke("run", NETWORKS / "trev_small.yaml", "--weights", NETWORKS / "trev_small.npz", "--input",
                cifar_input / "x.npy", *args)
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output


BASE = {"name": "n", "input_shape": [4, 6, 6], "timesteps": 2}


@pytest.mark.parametrize("layers, message", [
    ([{"type": "reversible", "f": [], "g": []}, ], None),
    ([{"type": "flatten"}, {"type": "trevsnn", "columns": 2, "channels": [4], "classes": 3}],
     "must be the only entry of 'layers'"),
    ([{"type": "trevsnn", "columns": 3, "channels": [4, 8], "classes": 3, "heads": 2}], "multiple of it"),
    ([{"type": "trevsnn", "columns": 2, "channels": [4, 8], "strides": [2, 2], "classes": 3}], "stride must be 1"),
    ([{"type": "trevsnn", "columns": 2, "channels": [4, 8], "strides": [1, 3], "classes": 3}], "must be 1"),
    ([{"type": "trevsnn", "columns": 2, "channels": [4, 8], "kernel_size": 4, "classes": 3}], "must be odd"),
    ([{"type": "reversible", "f": [{"type": "conv2d", "out_channels": 3, "kernel_size": 1}], "g": []}],
     "must keep its input shape"),
    ([{"type": "conv2d", "out_channels": 3, "kernel_size": 1}, {"type": "reversible", "f": [], "g": []}],
     "the channel count must be even"),
    ([{"type": "upsample", "scale_factor": 0}], "expected a positive integer"),
    ([{"type": "revnet"}], "known: .*reversible, trevsnn"),
])
def test_spec_errors_name_the_place(layers, message):
    raw = dict(BASE, layers=layers)
    if message is None:          # identity F and G: a valid (if pointless) reversible block
        assert parse_spec(raw).layers[0].kind == "reversible"
        return
    with pytest.raises(SpecError, match=message):
        parse_spec(raw)


def test_trev_odd_sizes_and_shared_weights_are_checked(tmp_path):
    raw = {"name": "t", "input_shape": [3, 10, 10], "timesteps": 2,
           "layers": [{"type": "trevsnn", "columns": 2, "channels": [4, 8, 8], "strides": [1, 2, 2],
                       "stem": [{"kernel_size": 3, "stride": 1}], "classes": 3, "heads": 1}]}
    with pytest.raises(SpecError, match="upsampled x2 does not match"):
        parse_spec(raw)
    raw["input_shape"] = [3, 8, 8]
    spec = parse_spec(raw)
    w = random_weights(spec, 0)
    w["subnet1.level0.blocks.1.pwconv2_reuse.weight"] = w["subnet1.level0.blocks.1.pwconv2_reuse.weight"] + 1
    np.savez(tmp_path / "w.npz", **w)
    with pytest.raises(WeightError, match="shared across columns"):
        build_network(spec, load_weights(spec, tmp_path / "w.npz"))


def test_regime_argument_is_checked_against_the_network():
    spec = load_spec(NETWORKS / "ms_resnet18_small.yaml")
    net = build_network(spec, check_weights(spec, random_weights(spec, 0)))
    x = np.zeros((1, 3, 32, 32), f32)
    with pytest.raises(InputError, match="needs a T-RevSNN network"):
        run(net, x, regime="trev")
    with pytest.raises(InputError, match="regime oneshot runs T=1"):
        run(net, x, timesteps=3, regime="oneshot")
    tspec = load_spec(NETWORKS / "trev_small.yaml")
    tnet = build_network(tspec, load_weights(tspec, NETWORKS / "trev_small.npz"))
    with pytest.raises(InputError, match="does not apply"):
        run(tnet, x, regime="multistep")
    assert run(tnet, x, regime="trev").trace.regime == "trev"
    # 8 columns with 4 heads: early exit only at a column that has a head
    raw = {"name": "t8", "input_shape": [3, 8, 8], "timesteps": 8,
           "layers": [{"type": "trevsnn", "columns": 8, "channels": [4], "stem": [{"kernel_size": 3, "stride": 1}],
                       "classes": 3, "heads": 4}]}
    spec8 = parse_spec(raw)
    net8 = build_network(spec8, check_weights(spec8, random_weights(spec8, 0)))
    with pytest.raises(InputError, match="column 0, which has no head"):
        run(net8, np.zeros((1, 3, 8, 8), f32), timesteps=1)
    assert run(net8, np.zeros((1, 3, 8, 8), f32), timesteps=2).trace.timesteps == 2
