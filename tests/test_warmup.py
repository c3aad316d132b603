"""`snnsim warmup`: compiles (or finds compiled) every kernel path a run uses."""
import subprocess
import sys
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from snnsim.cli import main
from snnsim.cli import warmup

ROOT = Path(__file__).resolve().parent.parent


def test_warmup_command_fills_the_cache():
    result = CliRunner().invoke(main, ["warmup"])
    assert result.exit_code == 0, result.output
    assert "kernel specialisations" in result.output
    assert not warmup.cache_is_empty()          # so `snnsim run` prints no compilation notice


def test_warmup_covers_every_kernel_form():
    from snnsim.engine import run
    from snnsim.network import build_network
    from snnsim.weights import random_weights

    forms, kinds = set(), set()
    for spec in warmup.networks():
        net = build_network(spec, random_weights(spec, 0))
        x = np.random.default_rng(0).random((2,) + tuple(spec.input_shape), dtype=np.float32)
        for form in ("dense", "event"):
            res = run(net, x, form=form)
            forms |= {f for rec in res.trace.layers for f in rec.form if f}
            kinds |= {rec.kind for rec in res.trace.layers}
    assert forms == {"dense", "event"}
    assert {"conv2d", "linear", "pool2d", "neuron", "upsample"} <= kinds, kinds


# After warm(), the README's command must not need one kernel specialisation that warm() did not make (compiled
# or loaded from the cache): every Numba function of snnsim, with the signatures it holds, before and after.
README_RUN = """
import sys
from numba.core.registry import CPUDispatcher
from snnsim.cli import main
from snnsim.cli.warmup import warm

def held():
    return {(name, key, str(sig)) for name, module in list(sys.modules.items()) if name.startswith("snnsim")
            for key, d in vars(module).items() if isinstance(d, CPUDispatcher) for sig in d.overloads}

warm()
before = held()
main(["run", "networks/mnist_conv.yaml", "--weights", "networks/mnist_conv.npz", "--dataset", "mnist"],
     standalone_mode=False)
print("NEW", sorted(held() - before))
"""


def test_after_warmup_the_readme_run_needs_no_new_kernel():
    out = subprocess.run([sys.executable, "-c", README_RUN], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "NEW []", out.stdout[-2000:]
