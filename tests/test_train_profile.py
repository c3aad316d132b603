"""benchmarks/train_profile.py runs and its accounting adds up: the nodes' times fit inside the step's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def test_train_profile_runs_and_its_parts_fit_in_the_step():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_profile.py"), "--network", "mnist_conv",
                        "--batch", "4", "--steps", "2"], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "mnist_conv, batch 4, T=4: step" in r.stdout
    df = pd.read_csv(ROOT / "build" / "benchmarks" / "train_profile.csv")
    nodes = df[df["kind"] != "ConvNode part"]
    assert {"ConvNode", "NeuronNode", "LinearNode"} <= set(nodes["kind"])
    assert (df["ms"] > 0).all()
    # every node timed once a step, and all of them inside the step's wall time
    assert nodes["ms"].sum() <= df["step_wall_ms"].iloc[0] * 1.001
    parts = df[df["kind"] == "ConvNode part"]["ms"].sum()
    assert parts <= nodes[(nodes["kind"] == "ConvNode") & (nodes["pass"] == "backward")]["ms"].sum() * 1.001
