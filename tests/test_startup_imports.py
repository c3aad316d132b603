"""What a run imports: snnsim answers Numba's SciPy-BLAS probe instead of importing scipy.linalg (a fifth of a
warm start), and leaves Numba's own BLAS check in place for the code that needs it."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = """
import json, sys
import numpy as np
from snnsim.engine import run
from snnsim.network import build_network
from snnsim.layers import parse_spec
from snnsim.weights import random_weights
spec = parse_spec({"name": "n", "input_shape": [4], "timesteps": 2,
                   "layers": [{"type": "linear", "out_features": 3}, {"type": "lif"}]}, "n")
net = build_network(spec, random_weights(spec, 0))
run(net, np.ones((1, 4), np.float32))
loaded = "scipy.linalg" in sys.modules
import numba, numba.np.linalg
checks_blas = numba.np.linalg.ensure_blas.__name__ == "ensure_blas"
f = numba.njit(lambda a, b: np.dot(a, b))
a = np.arange(6, dtype=np.float64).reshape(2, 3)
print(json.dumps([loaded, checks_blas, f(a, a.T).tolist()]))
"""


def test_a_run_does_not_import_scipy_linalg_and_np_dot_still_compiles(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    loaded, checks_blas, dot = json.loads(out.stdout.strip().splitlines()[-1])
    assert not loaded
    assert checks_blas
    assert dot == [[5.0, 14.0], [14.0, 50.0]]          # [[0,1,2],[3,4,5]] @ its transpose, by hand
