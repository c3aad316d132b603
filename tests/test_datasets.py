"""Bring your own data: arrays, torch tensors, DataLoaders, event streams in tonic's format, local tonic sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from snnsim.cli import main
from snnsim.datasets import as_arrays, event_frames

ROOT = Path(__file__).resolve().parents[1]
NMNIST_DTYPE = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])     # tonic.datasets.NMNIST.dtype


def test_tensors_and_dataloaders_become_arrays():
    torch = pytest.importorskip("torch")
    x = torch.arange(24, dtype=torch.float32).reshape(6, 4)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
    xa, ya = as_arrays(loader)
    assert np.array_equal(xa, x.numpy()) and np.array_equal(ya, y.numpy())
    xa, ya = as_arrays(x)
    assert np.array_equal(xa, x.numpy()) and ya is None
    xa, ya = as_arrays((x, y))
    assert np.array_equal(ya, y.numpy())


def test_event_frames_bin_by_time_as_derived_by_hand():
    """Two bins over [0, 2000): events at t = 0, 100, 900 fall in bin 0, 1100 and 1900 in bin 1; the stream's
    last timestamp closes the last bin and is not counted (tonic's ToFrame with n_time_bins)."""
    ev = np.array([(1, 2, 0, 0), (1, 2, 100, 0), (3, 0, 900, 1), (3, 0, 1100, 1), (5, 5, 1900, 0),
                   (0, 0, 2000, 1)], dtype=NMNIST_DTYPE)
    ev2 = np.array([(4, 4, 0, 1), (4, 4, 1500, 1), (2, 2, 3000, 0)], dtype=NMNIST_DTYPE)
    x, y = event_frames([(ev, 3), (ev2, 7)], timesteps=2, sensor_size=(6, 6, 2))
    want = np.zeros((2, 2, 2, 6, 6), np.float32)             # [T, N, P, H, W]
    want[0, 0, 0, 2, 1] = 2
    want[0, 0, 1, 0, 3] = 1
    want[1, 0, 1, 0, 3] = 1
    want[1, 0, 0, 5, 5] = 1
    want[0, 1, 1, 4, 4] = 1
    want[1, 1, 1, 4, 4] = 1
    assert np.array_equal(x, want) and list(y) == [3, 7]


def _fake_shd(root: Path, n=6, T=4, seed=0):
    """SHD as tonic reads it (DIR/SHD/shd_test.h5: spikes/times in s, spikes/units, labels); returns the frames
    binned by hand: T bins over [first, last) spike time, the last spike closing the last bin."""
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(seed)
    d = root / "SHD"
    d.mkdir(parents=True)
    (d / "shd_test.h5.zip").write_bytes(b"")                 # tonic checks that the archive was fetched
    times, units, want = [], [], np.zeros((T, n, 700), np.float32)
    for i in range(n):
        t_us = np.sort(rng.choice(np.arange(0, 400_000, 1000), 60, replace=False))
        t_us[0], t_us[-1] = 0, 400_000
        u = rng.integers(0, 700, 60)
        times.append(t_us / 1e6)
        units.append(u.astype(np.uint16))
        for t, k in zip(t_us[:-1], u[:-1]):
            want[t * T // 400_000, i, k] += 1
    ragged_t, ragged_u = np.empty(n, dtype=object), np.empty(n, dtype=object)
    ragged_t[:], ragged_u[:] = times, units
    with h5py.File(d / "shd_test.h5", "w") as f:
        f.create_dataset("spikes/times", data=ragged_t, dtype=h5py.vlen_dtype(np.float64))
        f.create_dataset("spikes/units", data=ragged_u, dtype=h5py.vlen_dtype(np.uint16))
        f.create_dataset("labels", data=np.arange(n) % 3)
        f.create_dataset("extra/keys", data=np.array([b"a", b"b", b"c"]))
        f.create_dataset("extra/speaker", data=np.zeros(n, np.int64))
    return want


def test_cli_runs_a_local_tonic_dataset(tmp_path):
    pytest.importorskip("tonic")
    want = _fake_shd(tmp_path / "data")
    (tmp_path / "shd.yaml").write_text(
        "name: shd_mlp\ninput_shape: [700]\ntimesteps: 4\nencoding: events\n"
        "layers:\n  - {name: fc, type: linear, out_features: 10}\n  - {name: sn, type: lif}\n")
    r = CliRunner().invoke(main, ["init-weights", str(tmp_path / "shd.yaml"), "-o", str(tmp_path / "w.npz")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["run", str(tmp_path / "shd.yaml"), "--weights", str(tmp_path / "w.npz"),
                                  "--dataset", "shd", "--data-dir", str(tmp_path / "data"), "--output",
                                  str(tmp_path / "out.npz")])
    assert r.exit_code == 0, r.output
    import snnsim

    ref = snnsim.load(str(tmp_path / "shd.yaml"), str(tmp_path / "w.npz")).run(want)
    with np.load(tmp_path / "out.npz") as z:
        assert np.array_equal(z["output"], ref.outputs) and list(z["labels"]) == [0, 1, 2, 0, 1, 2]
    assert 0 < ref.outputs.mean() < 1


def test_missing_tonic_files_are_one_line_and_never_downloaded(tmp_path):
    pytest.importorskip("tonic")
    (tmp_path / "ev.yaml").write_text("input_shape: [2, 34, 34]\nencoding: events\n"
                                      "layers:\n  - {type: flatten}\n  - {type: linear, out_features: 10}\n")
    CliRunner().invoke(main, ["init-weights", str(tmp_path / "ev.yaml"), "-o", str(tmp_path / "w.npz")])
    r = CliRunner().invoke(main, ["run", str(tmp_path / "ev.yaml"), "--weights", str(tmp_path / "w.npz"),
                                  "--dataset", "nmnist", "--data-dir", str(tmp_path)])
    assert r.exit_code == 2 and r.output.count("\n") == 1
    assert "NMNIST files not found" in r.output and "never downloads" in r.output
    assert list(tmp_path.glob("NMNIST/*")) == []
    r = CliRunner().invoke(main, ["run", str(ROOT / "networks" / "digits_mlp.yaml"), "--weights",
                                  str(ROOT / "networks" / "digits_mlp.npz"), "--dataset", "shd", "--data-dir",
                                  str(tmp_path)])
    assert r.exit_code == 2 and "encoding: events" in r.output


def test_train_on_input_arrays(tmp_path):
    from snnsim.data import load_dataset

    x, y = load_dataset("digits").split("train")
    np.save(tmp_path / "x.npy", x[:200])
    np.save(tmp_path / "y.npy", y[:200])
    xt, yt = load_dataset("digits").split("test")
    np.save(tmp_path / "xt.npy", xt[:100])
    np.save(tmp_path / "yt.npy", yt[:100])
    args = ["train", str(ROOT / "networks" / "digits_mlp.yaml"), "--input", str(tmp_path / "x.npy"),
            "--labels", str(tmp_path / "y.npy"), "--test-input", str(tmp_path / "xt.npy"), "--test-labels",
            str(tmp_path / "yt.npy"), "--epochs", "1", "--lr", "1e-4", "--init",
            str(ROOT / "networks" / "digits_mlp.npz"), "--out", str(tmp_path / "w.npz")]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    # the reported test accuracy is that of the saved weights on the held-out arrays
    import snnsim

    m = snnsim.load(str(ROOT / "networks" / "digits_mlp.yaml"), str(tmp_path / "w.npz"))
    acc = m.accuracy(m.run(xt[:100]), yt[:100])
    assert f"test acc {acc:.4f}" in r.output and acc > 0.5
    r = CliRunner().invoke(main, args[:4] + ["--out", str(tmp_path / "w2.npz")])
    assert r.exit_code == 2 and "--labels" in r.output


def test_hw_takes_input_and_labels(tmp_path):
    """hw --input/--labels prints each regime's accuracy: the fraction of argmax readouts equal to the labels,
    which snnsim run reports for the same samples."""
    from snnsim.data import load_dataset

    x, y = load_dataset("digits").split("test")
    np.save(tmp_path / "x.npy", x[:60])
    np.save(tmp_path / "y.npy", y[:60])
    net, w = str(ROOT / "networks" / "digits_mlp.yaml"), str(ROOT / "networks" / "digits_mlp.npz")
    r = CliRunner().invoke(main, ["hw", net, "--weights", w, "--input", str(tmp_path / "x.npy"), "--labels",
                                  str(tmp_path / "y.npy"), "--regimes", "multistep"])
    assert r.exit_code == 0, r.output
    run = CliRunner().invoke(main, ["run", net, "--weights", w, "--input", str(tmp_path / "x.npy"), "--labels",
                                    str(tmp_path / "y.npy")])
    acc = run.output.split("accuracy: ")[1].split()[0]
    assert f"accuracy: multistep {acc}" in r.output
    np.save(tmp_path / "y5.npy", y[:5])
    r = CliRunner().invoke(main, ["hw", net, "--weights", w, "--input", str(tmp_path / "x.npy"), "--labels",
                                  str(tmp_path / "y5.npy")])
    assert r.exit_code == 2 and "5 labels for 60 samples" in r.output
