"""benchmarks/activity_bounds.py (docs/performance.md, "Cost against activity") runs, and what it prints holds."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def test_activity_bounds_benchmark_runs_and_its_bounds_hold():
    # (the channels-last variant it times is checked inside against the event kernel, transposed)
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "activity_bounds.py"), "--rounds", "1"],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-2000:]
    growth = pd.read_csv(ROOT / "build" / "benchmarks" / "activity_growth.csv")
    assert set(growth.form) == {"snnsim", "channels_last", "copy"} and (growth.ms > 0).all()
    # events in the layer's inputs: none, one per image, and ~1 %, 5 %, 20 % of 64 x 64 x 16 x 16
    ev = growth[growth.form == "snnsim"].set_index("input").events
    assert ev["0"] == 0 and ev["one per image"] == 64
    assert abs(ev["1%"] / 1048576 - 0.01) < 0.001 and abs(ev["20%"] / 1048576 - 0.2) < 0.002
    assert ev["1% in rows of 3"] == 1048576 // 100 // 3 * 3       # whole rows of 3: 3495 rows
    nets = pd.read_csv(ROOT / "build" / "benchmarks" / "activity_networks.csv").set_index("network")
    assert list(nets.index) == ["digits_mlp", "mnist_conv", "cifar_sew_resnet"]
    # the MLP's synaptic inputs are about half active or more (its analog first layer 51 %, its output layer's
    # input 47-71 %): far above both layers' crossovers (cost.py), so every step is cheaper dense: bound 1
    assert nets.bound["digits_mlp"] == 1.0
    assert (nets.bound >= 1.0).all() and (nets.bound_free_events >= nets.bound).all()
    assert (nets.cheaper_ms <= nets.dense_ms).all()


def test_summary_takes_the_fixed_cost_out_of_the_growth(tmp_path):
    """benchmarks/summary.py's row for the events' part: (t20 - F) / (t1 - F), F the time with one event per
    image; by hand on made-up times: (8.2 - 0.2) / (0.7 - 0.2) = 16, within 1.5x of 20."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from summary import summarize

    pd.DataFrame(dict(form=["snnsim"] * 3 + ["copy"], input=["one per image", "1%", "20%", "20%"],
                      ms=[0.2, 0.7, 8.2, 0.06], background_load=0)).to_csv(tmp_path / "activity_growth.csv")
    row = summarize(tmp_path).set_index("target").loc["the same, its events' part alone (fixed cost taken out)"]
    assert row["rows met"] == "1/1" and abs(row["min"] - 16.0) < 1e-9
