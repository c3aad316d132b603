"""Small networks written in code, shared by tests and benchmarks so that a benchmark measures the network its
test checks."""

from __future__ import annotations


def revnet(blocks: int, reset=0.0):
    """conv + BN, then ``blocks`` RevSNN blocks (F and G: LIF, conv 3x3, BN, IF, conv 3x3; the two neurons reset
    to ``reset``, None: by subtraction), then a LIF head; 1x12x12 input (the digits-sized MNIST crop), 8 channels
    (two halves of 4)."""
    from snnsim.layers import parse_spec

    fg = [{"name": "sn1", "type": "lif", "v_reset": reset},
          {"name": "conv1", "type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1, "bias": False},
          {"name": "bn1", "type": "batchnorm2d"}, {"name": "sn2", "type": "if", "v_reset": reset},
          {"name": "conv2", "type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1}]
    layers = [{"name": "conv1", "type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1, "bias": False},
              {"name": "bn1", "type": "batchnorm2d"}]
    layers += [{"name": f"rev{i}", "type": "reversible", "f": fg, "g": fg} for i in range(blocks)]
    layers += [{"name": "sn", "type": "lif"}, {"name": "pool", "type": "avgpool2d", "kernel_size": 2},
               {"name": "flatten", "type": "flatten"}, {"name": "fc", "type": "linear", "out_features": 10},
               {"name": "sn_out", "type": "lif"}]
    return parse_spec({"name": f"revnet{blocks}", "input_shape": [1, 12, 12], "layers": layers})
