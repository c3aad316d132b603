"""The command line through click's CliRunner: results, files written, and one-line errors (exit 2)."""

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from snnsim.cli import main

NETWORKS = Path(__file__).resolve().parent.parent / "networks"
MLP = str(NETWORKS / "digits_mlp.yaml")


@pytest.fixture()
def mlp_weights(tmp_path):
    out = tmp_path / "w.npz"
    r = CliRunner().invoke(main, ["init-weights", MLP, "-o", str(out), "--seed", "3"])
    assert r.exit_code == 0, r.output
    return out


def test_info_lists_layers_params_and_state():
    r = CliRunner().invoke(main, ["info", MLP])
    assert r.exit_code == 0, r.output
    # fc1: 64*128 + 128 = 8320 parameters; bn1: 4*128 = 512; sn1 keeps 128 membrane words
    assert "8320" in r.output and "512" in r.output
    assert "total: 10122 parameters, 138 state words" in r.output   # 8320 + 512 + 1290; 128 + 10


def test_run_on_input_with_labels_and_output(tmp_path, mlp_weights):
    x = np.random.default_rng(0).random((10, 64)).astype(np.float32)   # reshaped to [1, 8, 8]
    y = np.arange(10) % 10
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    out = tmp_path / "out.npz"
    trace = tmp_path / "trace.npz"
    r = CliRunner().invoke(main, ["run", MLP, "--weights", str(mlp_weights), "--input", str(tmp_path / "x.npy"),
                                  "--labels", str(tmp_path / "y.npy"), "-T", "3", "--output", str(out),
                                  "--trace", str(trace)])
    assert r.exit_code == 0, r.output
    assert "accuracy:" in r.output and "firing_rate" in r.output and "sn1" in r.output
    with np.load(out) as z:
        assert z["output"].shape == (3, 10, 10)
        assert z["spike_count/sn1"].shape == (3,)
        assert int(z["spike_count/sn2"].sum()) == int(z["output"].sum())
        assert "nonzero_out/fc1" in z.files and "spikes/sn1" not in z.files
    assert trace.exists()


def test_run_on_shipped_dataset(mlp_weights):
    r = CliRunner().invoke(main, ["run", MLP, "--weights", str(mlp_weights), "--dataset", "digits", "--limit", "20"])
    assert r.exit_code == 0, r.output
    assert "20 samples" in r.output and "accuracy:" in r.output


@pytest.mark.parametrize("args, message", [
    (["run", "missing.yaml", "--weights", "w.npz", "--dataset", "digits"], "cannot read network file"),
    (["run", MLP, "--weights", "nope.npz", "--dataset", "digits"], "weights file not found"),
    (["run", MLP, "--weights", "{w}"], "give exactly one of --input X.npy or --dataset NAME"),
    (["run", MLP, "--weights", "{w}", "--input", "{bad}"], "contains NaN or Inf"),
    (["run", MLP, "--weights", "{wrong}", "--dataset", "digits"], "expected shape [128, 64], found [128, 63]"),
    (["run", MLP, "--weights", "{junk}", "--dataset", "digits"], "not a readable .npz"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, mlp_weights, args, message):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.full((2, 64), np.nan, np.float32))
    wrong = tmp_path / "wrong.npz"
    with np.load(mlp_weights) as z:
        arrays = dict(z)
    arrays["fc1.weight"] = arrays["fc1.weight"][:, :63]
    np.savez(wrong, **arrays)
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip")
    args = [a.format(w=mlp_weights, bad=bad, wrong=wrong, junk=junk) for a in args]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert "Traceback" not in r.output
