"""The mapper and the capacity checks, against hand derivations."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from hwmodel import load_arch, parse_arch, price
from hwmodel.arch import ArchError, Memory

from test_hwmodel import TEST_ARCH, fc_trace

NETWORKS = Path(__file__).resolve().parent.parent / "networks"

MAPPINGS = yaml.safe_load("""
- {name: timestep_outer, loops: [timestep, layer, tile], accumulate: registers}
- {name: weights_once, loops: [layer, timestep, tile], accumulate: registers}
- {name: timestep_inner, loops: [layer, tile, timestep], accumulate: registers, tile_neurons: 2}
""")


def two_layer_arch():
    raw = copy.deepcopy(TEST_ARCH)
    raw["energy_pj"] = dict(sram={"law": "fixed", "value": 64}, register=8)     # every other energy 0
    raw["memories"]["membrane"]["size_kib"] = 8 / 1024                         # 64 bits
    raw["memories"]["events"]["size_kib"] = 8 / 1024                           # 64 bits
    raw["mappings"] = MAPPINGS
    return parse_arch(raw, "two_layer.yaml")


def test_mapper_finds_the_hand_derived_best_mapping_per_layer():
    """fc_trace: fc1 (4 -> 3, bias) -> sn1 (LIF, 3) -> fc2 (3 -> 2) -> sn2 (LIF, 2), T = 2, one sample.
    Input events of fc1: 2 then 3 (15 synops); of fc2: 1 then 2 (6 synops). Prices: SRAM 1 pJ per bit (a
    64-pJ 64-bit word, narrow words scaled), so an 8-bit weight 8 pJ, a 16-bit membrane or event entry 16 pJ;
    a register access 8 pJ per 32 bits = 4 pJ per 16-bit membrane; DRAM 10 pJ/bit; everything else 0.
    Membrane buffer 64 bits, event buffer 64 bits, weights fit.

    Common to every mapping: weights 15 x 8 = 120 (fc1), 6 x 8 = 48 (fc2); fc1's bias 3 x 16 bits per step
    = 96. Membrane accesses (a read and a write per neuron and step): sn1 2 x 3 x 2 = 12, sn2 2 x 2 x 2 = 8.

    fc1 unit (5 input events):
      timestep_outer: membranes in SRAM 12 x 16 = 192; events written + read 2 x 5 x 16 = 160; sn1's 48 bits
        of state fit (the first 48 of the 64): 120 + 96 + 192 + 160 = 568
      weights_once: as above, but all T of the input queue at once: 5 x 16 = 80 bits > 64, 16 bits spill,
        written and read once in DRAM: 2 x 16 x 10 = 320 -> 888
      timestep_inner: membranes in registers 12 x 4 = 48; 3 outputs in tiles of 2 = 2 tiles, each re-reads
        the events: (1 + 2) x 5 x 16 = 240; the queue spills as above, 320 -> 120 + 96 + 48 + 240 + 320 = 824
      best: timestep_outer (568)
    fc2 unit (3 input events):
      timestep_outer: membranes 8 x 16 = 128; events 2 x 3 x 16 = 96; the state of all layers is held across
        steps: 48 + 32 = 80 bits > 64, sn2's last 16 bits spill, written and read at both steps:
        2 x 2 x 16 x 10 = 640 -> 48 + 128 + 96 + 640 = 912
      weights_once: sn2's 32 bits alone fit; queue 3 x 16 = 48 bits fits: 48 + 128 + 96 = 272
      timestep_inner: membranes 8 x 4 = 32; 2 outputs = 1 tile: events 2 x 3 x 16 = 96 -> 48 + 32 + 96 = 176
      best: timestep_inner (176)
    Best: 568 + 176 = 744 pJ; all timestep_outer (the fixed schedule): 568 + 912 = 1480 pJ."""
    arch = two_layer_arch()
    rep = price(fc_trace(), arch)
    assert list(rep.mapping.mapping) == ["timestep_outer", "timestep_inner"]
    assert list(rep.mapping.energy_pj) == pytest.approx([568, 176])
    assert rep.totals["energy_pj"] == pytest.approx(744)
    fixed = {name: price(fc_trace(), arch, mapping=f"fixed:{name}").mapping.energy_pj.tolist()
             for name in ("timestep_outer", "weights_once", "timestep_inner")}
    assert fixed == {"timestep_outer": pytest.approx([568, 912]), "weights_once": pytest.approx([888, 272]),
                     "timestep_inner": pytest.approx([824, 176])}
    assert price(fc_trace(), arch, mapping="fixed:timestep_outer").totals["energy_pj"] == pytest.approx(1480)


def test_mapping_errors_name_the_field():
    arch = two_layer_arch()
    with pytest.raises(ArchError, match="--mapping.*timestep_outer, weights_once, timestep_inner"):
        price(fc_trace(), arch, mapping="fixed:nope")
    with pytest.raises(ArchError, match="--objective"):
        price(fc_trace(), arch, objective="speed")
    raw = copy.deepcopy(TEST_ARCH)
    raw["mappings"] = [{"name": "x", "loops": ["tile", "layer", "timestep"], "accumulate": "registers"}]
    with pytest.raises(ArchError, match=r"mappings\[0\]\.loops"):
        parse_arch(raw, "t.yaml")
    raw["mappings"] = [{"name": "x", "loops": ["layer", "tile", "timestep"], "accumulate": "per_op"}]
    with pytest.raises(ArchError, match=r"mappings\[0\]\.accumulate"):
        parse_arch(raw, "t.yaml")


@pytest.fixture(scope="module")
def oneshot_mnist():
    from snnsim.data import load_dataset
    from snnsim.engine import run
    from snnsim.network import build_network
    from snnsim.layers import load_spec
    from snnsim.weights import load_weights

    spec = load_spec(NETWORKS / "mnist_conv.yaml")
    net = build_network(spec, load_weights(spec, NETWORKS / "mnist_conv.npz"))
    x, _ = load_dataset("mnist").split("test")
    return run(net, x[:8], timesteps=1).trace


def test_one_shot_accumulators_spill_when_the_membrane_buffers_are_small(oneshot_mnist):
    """mnist_conv at T=1 keeps no state, but under per-op accumulation conv1's 16 x 28 x 28 outputs need
    16-bit partial sums while it runs: 12544 x 2 B = 25088 B; 4 cores x 2 KiB = 8192 B hold, 16896 B spill.
    conv2: 32 x 14 x 14 x 2 B = 12544 B, 4352 B spill; fc1 (256 B) and fc2 (20 B) fit."""
    evt = load_arch("evt45")
    small = replace(evt, memories={**evt.memories, "membrane": Memory(2048, 64)})
    rep = price(oneshot_mnist, small, mapping="fixed:timestep_outer")
    lay = rep.counts.layers.set_index("layer")
    from hwmodel.energy import evaluate
    from hwmodel.mapping import mapping_arrays

    maps = small.loop_mappings()
    res = evaluate(rep.counts, dict(small.params(), mapping=mapping_arrays(maps, np.zeros(rep.counts.n_units, int))))
    spill = dict(zip(lay.index, np.asarray(res["spills"]["accumulators"]) / 8))
    assert spill["conv1"] == 16896 and spill["conv2"] == 4352 and spill["fc1"] == 0 and spill["fc2"] == 0
    assert rep.totals["e_dram"] > 0
    # with 16 KiB per core nothing spills
    assert price(oneshot_mnist, evt, mapping="fixed:timestep_outer").totals["e_dram"] == 0
