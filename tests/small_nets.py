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


# conv, LIF, max-pool, a residual block (conv, LIF), flatten, linear, IF: every kind of op a feed-forward run
# spans over timesteps, on 2 x 8 x 8 inputs (tests of the engine's windows of timesteps and chunks of samples)
FEEDFORWARD = {
    "name": "feedforward", "input_shape": [2, 8, 8], "timesteps": 5,
    "layers": [
        {"name": "conv", "type": "conv2d", "out_channels": 6, "kernel_size": 3, "padding": 1},
        {"name": "sn1", "type": "lif", "tau": 2.0},
        {"name": "pool", "type": "maxpool2d", "kernel_size": 2},
        {"name": "block", "type": "residual", "body": [
            {"name": "conv", "type": "conv2d", "out_channels": 6, "kernel_size": 3, "padding": 1},
            {"name": "sn", "type": "lif", "tau": 2.0}]},
        {"name": "flat", "type": "flatten"},
        {"name": "fc", "type": "linear", "out_features": 5},
        {"name": "sn2", "type": "if", "v_reset": None},
    ],
}
