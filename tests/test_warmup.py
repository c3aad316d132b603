"""`snnsim warmup`: compiles (or finds compiled) every kernel path a run uses."""
from click.testing import CliRunner

from snnsim.cli import main
from snnsim.cli import warmup


def test_warmup_command_fills_the_cache():
    result = CliRunner().invoke(main, ["warmup"])
    assert result.exit_code == 0, result.output
    assert "kernel specialisations" in result.output
    assert not warmup.cache_is_empty()          # so `snnsim run` prints no compilation notice


def test_warmup_covers_every_kernel_form():
    from snnsim.engine import run
    from snnsim.network import build_network
    from snnsim.layers import parse_spec
    from snnsim.weights import random_weights
    import numpy as np

    spec = parse_spec(warmup._SPEC, "warmup")
    net = build_network(spec, random_weights(spec, 0))
    x = np.random.default_rng(0).random((2, 2, 8, 8), dtype=np.float32)
    forms = set()
    for form in ("dense", "event"):
        res = run(net, x, form=form)
        forms |= {f for rec in res.trace.layers for f in rec.form if f}
    kinds = {rec.kind for rec in res.trace.layers}
    assert forms == {"dense", "event"}
    assert {"conv2d", "linear", "pool2d", "neuron"} <= kinds, kinds
