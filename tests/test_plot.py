"""run --output --save stores full per-layer tensors; snnsim plot draws them; -h works."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from snnsim.cli import main

ROOT = Path(__file__).resolve().parents[1]
MLP = str(ROOT / "networks" / "digits_mlp.yaml")
W = str(ROOT / "networks" / "digits_mlp.npz")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("saved")
    x = np.random.default_rng(0).random((6, 1, 8, 8)).astype(np.float32)
    np.save(d / "x.npy", x)
    r = CliRunner().invoke(main, ["run", MLP, "--weights", W, "--input", str(d / "x.npy"), "-T", "5",
                                  "--output", str(d / "r.npz"), "--save", "spikes,membrane,outputs",
                                  "--trace", str(d / "t.npz")])
    assert r.exit_code == 0, r.output
    return d


def test_saved_tensors_follow_the_lif_equation(saved):
    """sn2's saved input (fc2's output), spikes and membrane obey SpikingJelly's LIF, derived by hand:
    H = v + (x - v) / 2, S = H >= 1, v = 0 where S else H, v starting at 0 (digits_mlp: tau 2, hard reset)."""
    with np.load(saved / "r.npz") as z:
        x, s, v = z["layer_output/fc2"], z["spikes/sn2"], z["membrane/sn2"]
        assert s.dtype == np.uint8 and s.shape == (5, 6, 10) and v.shape == (5, 6, 10)
        assert np.array_equal(z["spikes/sn1"].sum(axis=(1, 2)), z["spike_count/sn1"])
        assert np.array_equal(s.astype(np.float32), z["output"])
        assert "spikes/fc2" not in z.files and "nonzero_out/fc2" in z.files
    prev = np.zeros((6, 10), np.float32)
    for t in range(5):
        h = prev + (x[t] - prev) / np.float32(2)
        fire = h >= np.float32(1)
        assert np.array_equal(s[t].astype(bool), fire)
        prev = np.where(fire, np.float32(0), h).astype(np.float32)
        assert np.array_equal(v[t], prev)
    assert 0 < s.mean() < 1


@pytest.mark.parametrize("kind", ["raster", "membrane", "rates", "energy"])
def test_plot_commands_write_figures(saved, kind, tmp_path):
    src = saved / ("t.npz" if kind == "energy" else "r.npz")
    out = tmp_path / f"{kind}.png"
    r = CliRunner().invoke(main, ["plot", kind, str(src), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]        # no temporary file left


def test_plot_functions_return_figures(saved):
    from matplotlib.figure import Figure

    from snnsim import plot

    fig = plot.raster(saved / "r.npz", ["sn1"], sample=2)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    # the dots are exactly the saved spikes of that sample
    with np.load(saved / "r.npz") as z:
        want = int(z["spikes/sn1"][:, 2].sum())
    assert len(fig.axes[0].collections[0].get_offsets()) == want
    assert "µJ" in plot.energy(saved / "t.npz").axes[0].get_ylabel()


def test_plot_errors_are_one_line(saved, tmp_path):
    np.savez(tmp_path / "bare.npz", output=np.zeros((1, 1, 10), np.float32))
    r = CliRunner().invoke(main, ["plot", "raster", str(tmp_path / "bare.npz"), "-o", str(tmp_path / "f.png")])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "--save spikes" in r.output
    r = CliRunner().invoke(main, ["run", MLP, "--weights", W, "--dataset", "digits", "--limit", "2", "--save",
                                  "spikes"])
    assert r.exit_code == 2 and "--output" in r.output


def test_dash_h_is_help():
    r = CliRunner().invoke(main, ["-h"])
    assert r.exit_code == 0 and "Usage:" in r.output and "plot" in r.output
    r = CliRunner().invoke(main, ["run", "-h"])
    assert r.exit_code == 0 and "--save" in r.output
