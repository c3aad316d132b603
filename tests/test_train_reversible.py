"""Reversible training of RevSNN blocks: the gradients equal BPTT's on the same network and batch, nothing
inside a block is stored (memory flat in the number of blocks), and what is not supported says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from snnsim.data import load_dataset
from snnsim.errors import InputError
from snnsim.layers import parse_spec
from snnsim.train.bptt import BPTT
from snnsim.train.forward import NeuronTrainCfg
from snnsim.train.loop import init_params
from snnsim.train.losses import make_loss
from snnsim.train.reversible import make_reversible
from snnsim.train.surrogate import Surrogate

from small_nets import revnet

pytest.importorskip("snnsim.layers.reversible")

ROOT = Path(__file__).resolve().parent.parent


def _setup(blocks, reset=0.0):
    spec = revnet(blocks, reset)
    p = init_params(spec, 0)
    for k in p:
        if k.endswith("weight") and p[k].ndim > 1:
            p[k] *= 3
    p["fc.weight"] *= 3
    p["fc.bias"] += 0.5
    x, y = load_dataset("mnist").split("train")
    return spec, p, np.ascontiguousarray(x[:16, :, 8:20, 8:20]), y[:16]


@pytest.mark.parametrize("blocks", [1, 3])
@pytest.mark.parametrize("reset,sur,detach", [(0.0, "sigmoid", False), (None, "atan", True)],
                         ids=["hard-sigmoid", "soft-atan-detach"])
def test_reversible_gradients_equal_bptt(blocks, reset, sur, detach):
    spec, p, x, y = _setup(blocks, reset)
    cfg = NeuronTrainCfg(Surrogate(sur, 4.0 if sur == "sigmoid" else 2.0), detach)
    pa, pb = dict(p), dict(p)
    a = BPTT(spec, cfg).loss_and_grads(pa, x, y, 4, make_loss("ce"))
    b = make_reversible(spec, cfg).loss_and_grads(pb, x, y, 4, make_loss("ce"))
    assert 0 < a.outputs.mean() < 1
    assert b.memory["spike_mismatch"] == 0
    assert a.loss == b.loss
    np.testing.assert_array_equal(a.outputs, b.outputs)
    assert any(k.startswith("rev0.f_block") for k in a.grads)
    for k in a.grads:
        ref = a.grads[k]
        assert np.linalg.norm(b.grads[k] - ref) <= 1e-5 * max(np.linalg.norm(ref), 1e-12), k
    for k in p:                                   # running statistics updated once, by the forward
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)


def test_reversible_memory_is_flat_in_depth_and_bptt_is_not():
    held = {}
    for blocks in (1, 2, 4):
        spec, p, x, y = _setup(blocks)
        held[blocks] = (BPTT(spec).loss_and_grads(dict(p), x, y, 4, make_loss("ce")).memory["peak_bytes"],
                        make_reversible(spec, NeuronTrainCfg()).loss_and_grads(dict(p), x, y, 4,
                                                                              make_loss("ce")).memory["peak_bytes"])
    assert held[1][1] == held[2][1] == held[4][1]
    assert held[4][0] > 2 * held[1][0]
    assert held[4][0] > 4 * held[4][1]


def test_reversible_needs_reversible_blocks():
    spec = parse_spec({"name": "plain", "input_shape": [4], "layers": [
        {"name": "fc", "type": "linear", "out_features": 3}, {"name": "sn", "type": "lif"}]})
    with pytest.raises(InputError, match="no top-level 'reversible' blocks"):
        make_reversible(spec, NeuronTrainCfg())


def test_trevsnn_gets_the_column_reversible_method():
    from snnsim.layers import load_spec

    path = ROOT / "networks" / "trev_small.yaml"
    if not path.exists():
        pytest.skip("no T-RevSNN network shipped")
    spec = load_spec(path)
    from snnsim.layers.trevsnn import TRevReversible

    assert isinstance(make_reversible(spec, NeuronTrainCfg()), TRevReversible)
