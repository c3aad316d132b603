"""Sharding over Dask gives exactly the single-process run: outputs, every trace count, priced totals."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("dask.distributed")

import snnsim  # noqa: E402
from snnsim.cli import main  # noqa: E402
from snnsim.distributed import run_sharded, shard_bounds, study  # noqa: E402
from snnsim.errors import InputError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NET = ROOT / "networks"


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client

    with Client(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as c:
        yield c


def _same_trace(a, b):
    assert a.samples == b.samples and [r.name for r in a.layers] == [r.name for r in b.layers]
    for ra, rb in zip(a.layers, b.layers):
        for k in ("computed", "events_in", "binary_in", "events_out", "neuron_updates"):
            assert np.array_equal(getattr(ra, k), getattr(rb, k)), (ra.name, k)
        assert (ra.event_map is None) == (rb.event_map is None)
        if ra.event_map is not None:
            assert np.array_equal(ra.event_map, rb.event_map), ra.name
        assert ra.form == rb.form, ra.name


def test_shard_bounds_fall_on_batches():
    assert shard_bounds(150, 2, 32) == [(0, 96), (96, 150)]
    assert shard_bounds(10, 4, 64) == [(0, 10)]


@pytest.mark.parametrize("encoding", ["direct", "rate"])
def test_sharded_run_is_the_single_process_run(client, encoding):
    import yaml

    raw = yaml.safe_load((NET / "mnist_conv.yaml").read_text())
    raw["encoding"] = {"type": encoding, "seed": 3} if encoding == "rate" else encoding
    model = snnsim.load(raw, str(NET / "mnist_conv.npz"))
    x, _ = snnsim.load_dataset("mnist").split("test")
    x = x[:150]
    one = model.run(x, timesteps=3, batch_size=32, probes=["sn3"])
    many = run_sharded(model.spec, model.weights, x, client=client, timesteps=3, batch_size=32, probes=["sn3"])
    assert np.array_equal(one.outputs, many.outputs) and np.array_equal(one.readout, many.readout)
    _same_trace(one.trace, many.trace)
    assert np.array_equal(one.trace.probes["sn3"]["spikes"], many.trace.probes["sn3"]["spikes"])
    assert 0 < one.outputs.mean() < 1


def test_hw_workers_gives_the_same_totals_on_1000_mnist_images(tmp_path):
    args = ["hw", str(NET / "mnist_conv.yaml"), "--weights", str(NET / "mnist_conv.npz"), "--dataset", "mnist",
            "--split", "test"]
    r1 = CliRunner().invoke(main, args + ["--out", str(tmp_path / "one")])
    assert r1.exit_code == 0, r1.output
    r2 = CliRunner().invoke(main, args + ["--out", str(tmp_path / "two"), "--workers", "2"])
    assert r2.exit_code == 0, r2.output
    assert "network mnist_conv: 1000 samples" in r1.output
    for name in ("hw_regimes.csv", "hw_components.csv", "hw_breakdown.csv"):
        assert (tmp_path / "one" / name).read_text() == (tmp_path / "two" / name).read_text(), name


def test_design_space_study_as_dask_tasks(client):
    x, _ = snnsim.load_dataset("digits").split("test")
    mlp = snnsim.load(str(NET / "digits_mlp.yaml"), str(NET / "digits_mlp.npz"))
    nets = {"digits_mlp": (mlp.spec, mlp.weights)}
    local = study(nets, x[:40], timesteps=(2, 4), archs=("evt45", "proxy45"))
    remote = study(nets, x[:40], timesteps=(2, 4), archs=("evt45", "proxy45"), client=client)
    assert local.equals(remote) and len(local) == 6           # (T=2, T=4, one-shot) x 2 architectures
    # each row is the price of its own run, computed here independently of the study
    row = local[(local["T"] == 4) & (local.arch == "evt45")].iloc[0]
    assert row.energy_uj == mlp.price(mlp.run(x[:40], timesteps=4), "evt45").totals["energy_pj"] / 1e6


def test_without_dask_a_one_line_error(monkeypatch):
    from snnsim.distributed import client

    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(InputError, match=r"pip install 'snnsim\[dask\]'"):
        client(workers=2)


def test_run_scheduler_twice_matches_one_process(tmp_path):
    """`snnsim run --scheduler` on a running cluster, twice in a row with the same data (each run scatters and
    releases its own copy), gives the single-process output file."""
    from dask.distributed import LocalCluster

    args = ["run", str(NET / "digits_mlp.yaml"), "--weights", str(NET / "digits_mlp.npz"), "--dataset", "digits",
            "--limit", "100", "--batch-size", "32"]
    r = CliRunner().invoke(main, args + ["--output", str(tmp_path / "one.npz")])
    assert r.exit_code == 0, r.output
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        for i in range(2):
            r = CliRunner().invoke(main, args + ["--scheduler", cluster.scheduler_address, "--output",
                                                 str(tmp_path / f"d{i}.npz")])
            assert r.exit_code == 0, r.output
    with np.load(tmp_path / "one.npz") as a, np.load(tmp_path / "d1.npz") as b:
        assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
