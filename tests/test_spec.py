"""Network spec parsing: shapes inferred, and every mistake named by its YAML path."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from snnsim.errors import SpecError, WeightError
from snnsim.layers import Conv2d, Neuron, Residual, load_spec, parse_spec
from snnsim.weights import check_weights, random_weights

NETWORKS = Path(__file__).resolve().parent.parent / "networks"


def _net(layers, **top):
    return {"name": "t", "input_shape": top.pop("input_shape", [1, 8, 8]), "layers": layers, **top}


@pytest.mark.parametrize("path", sorted(NETWORKS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_networks_parse(path):
    spec = load_spec(path)
    assert spec.output_shape in ((10,), (1000,))
    assert all(len(s) >= 0 for s in spec.param_shapes().values())


def test_shapes_are_inferred():
    spec = parse_spec(_net([
        {"name": "c", "type": "conv2d", "out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1},
        {"name": "p", "type": "avgpool2d", "kernel_size": 2},
        {"name": "f", "type": "flatten"},
        {"name": "fc", "type": "linear", "out_features": 3},
    ]))
    c = spec.layers[0]
    assert isinstance(c, Conv2d) and c.out_shape == (4, 4, 4)     # floor((8 + 2 - 3) / 2) + 1 = 4
    assert spec.layers[1].out_shape == (4, 2, 2)
    assert spec.layers[2].out_shape == (16,)
    assert spec.param_shapes() == {"c.weight": (4, 1, 3, 3), "c.bias": (4,), "fc.weight": (3, 16), "fc.bias": (3,)}


def test_residual_names_nest_and_shapes_must_match():
    spec = load_spec(NETWORKS / "cifar_sew_resnet.yaml")
    block = [layer for layer in spec.layers if isinstance(layer, Residual)][1]
    assert block.shortcut[0].name == "block2.downsample.0"
    assert "block2.downsample.1.running_var" in spec.param_shapes()
    with pytest.raises(SpecError, match=r"layers\[0\]\.shortcut: gives shape \[2, 4, 4\] but the body gives"):
        parse_spec(_net([{"name": "b", "type": "residual",
                          "body": [{"name": "c", "type": "conv2d", "out_channels": 2, "kernel_size": 3, "padding": 1}],
                          "shortcut": [{"name": "s", "type": "conv2d", "out_channels": 2, "kernel_size": 1,
                                        "stride": 2}]}]))


@pytest.mark.parametrize("layers, message", [
    ([{"type": "conv2d", "out_channels": 4, "kernel_size": "three"}],
     r"layers\[0\]\.kernel_size: expected a positive integer or a list of two, got 'three'"),
    ([{"type": "conv2d", "out_channels": 4}], r"layers\[0\]\.kernel_size: missing"),
    ([{"type": "linear", "out_features": 4}], r"layers\[0\]: linear needs a 1-D input, got shape \[1, 8, 8\]"),
    ([{"type": "flatten"}, {"type": "linear", "in_features": 60, "out_features": 4}],
     r"layers\[1\]\.in_features: is 60 but the previous layer gives 64"),
    ([{"type": "lif", "tau": 0.5}], r"layers\[0\]\.tau: must be > 1"),
    ([{"type": "lif", "tua": 2.0}], r"layers\[0\]\.tua: unknown field"),
    ([{"type": "relu"}], r"layers\[0\]\.type: unknown layer type 'relu'"),
    ([{"type": "conv2d", "out_channels": 3, "kernel_size": 3, "groups": 2}], r"layers\[0\]\.groups: 2 must divide"),
    ([{"type": "conv2d", "out_channels": 3, "kernel_size": 9}], r"layers\[0\]\.kernel_size: kernel 9"),
    ([{"name": "a", "type": "flatten"}, {"name": "a", "type": "lif"}], r"layers\[1\]\.name: 'a' is used twice"),
])
def test_errors_name_the_yaml_path(layers, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(_net(layers))


def test_top_level_errors(tmp_path):
    with pytest.raises(SpecError, match="input_shape: expected a list of positive integers"):
        parse_spec({"input_shape": [0], "layers": [{"type": "flatten"}]})
    with pytest.raises(SpecError, match="encoding.type: expected one of direct, rate, events"):
        parse_spec(_net([{"type": "flatten"}], encoding="poisson"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nlayers: [\n")
    with pytest.raises(SpecError, match=r"bad.yaml: not valid YAML: line \d+, column \d+"):
        load_spec(bad)
    with pytest.raises(SpecError, match="cannot read network file"):
        load_spec(tmp_path / "missing.yaml")


def test_neuron_defaults_apply_and_can_be_overridden():
    spec = parse_spec(_net([{"type": "flatten"}, {"name": "a", "type": "lif"},
                            {"name": "b", "type": "lif", "tau": 4.0, "v_reset": None}],
                           neuron_defaults={"lif": {"tau": 3.0, "v_threshold": 0.5}}))
    a, b = spec.layers[1], spec.layers[2]
    assert isinstance(a, Neuron) and (a.tau, a.v_threshold, a.v_reset) == (3.0, 0.5, 0.0)
    assert (b.tau, b.v_threshold, b.v_reset) == (4.0, 0.5, None)
    assert parse_spec(_net([{"type": "threshold"}])).layers[0].stateful is False


def _mlp():
    return parse_spec(_net([{"type": "flatten", "name": "f"}, {"name": "fc", "type": "linear", "out_features": 3},
                            {"name": "bn", "type": "batchnorm1d"}, {"name": "sn", "type": "lif"}]))


def test_weights_errors_name_key_and_shapes():
    spec = _mlp()
    good = random_weights(spec)
    good["bn.num_batches_tracked"] = np.array(5)          # ignored, as PyTorch state_dicts carry it
    assert set(check_weights(spec, good)) == set(spec.param_shapes())
    bad = dict(good)
    bad["fc.weight"] = np.zeros((3, 63), np.float32)
    del bad["bn.running_var"]
    bad["fc2.weight"] = np.zeros(2)
    with pytest.raises(WeightError) as e:
        check_weights(spec, bad)
    msg = str(e.value)
    assert "key 'fc.weight': expected shape [3, 64], found [3, 63]" in msg
    assert "missing key 'bn.running_var' (expected shape [3])" in msg
    assert "unexpected key 'fc2.weight'" in msg
    nan = dict(good, **{"fc.bias": np.array([1, np.nan, 0], np.float32)})
    with pytest.raises(WeightError, match="'fc.bias': contains NaN"):
        check_weights(spec, nan)


def test_weights_prefix_and_rename(tmp_path):
    raw = _net([{"type": "flatten", "name": "f"}, {"name": "fc", "type": "linear", "out_features": 3}],
               weights={"prefix": "model.", "rename": {"head.w": "fc.weight"}})
    spec = parse_spec(raw)
    w = check_weights(spec, {"head.w": np.ones((3, 64)), "model.fc.bias": np.zeros(3, np.float64)})
    assert w["fc.weight"].dtype == np.float32 and w["fc.bias"].shape == (3,)


def test_yaml_roundtrip_of_shipped_files_is_plain_data():
    for path in NETWORKS.glob("*.yaml"):
        assert isinstance(yaml.safe_load(path.read_text()), dict)
