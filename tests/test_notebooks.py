"""The hardware-study notebooks (notebooks/0X_*.py, jupytext percent format) run top to bottom at their small
default size and write their figures.

Each notebook runs in its own process, as a user would run it (``python notebooks/01_energy_vs_T.py``), with
``MPLBACKEND=Agg`` and its figures redirected to a temporary directory (``SNNSIM_NB_FIGDIR``) so that the
committed PNGs in notebooks/figures/ are left alone.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {
    "01_energy_vs_T.py": ["01_components_mnist_conv", "01_membrane_share_by_stage", "01_energy_vs_T", "01_sensitivity",
                          "01_components_trev_vs_multistep"],
    "02_break_even_ann.py": ["02_break_even", "02_sensitivity"],
    "03_training_memory.py": ["03_training_memory_time"],
    "04_iir_timesteps.py": ["04_iir_accuracy_energy", "04_iir_layer_rates"],
    "05_design_space.py": ["05_pareto_mnist_conv", "05_regimes_design_space"],
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_every_notebook_is_listed():
    found = sorted(p.name for p in (ROOT / "notebooks").glob("0*_*.py"))
    assert found == sorted(NOTEBOOKS), f"notebooks on disk {found} vs tested {sorted(NOTEBOOKS)}"


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_is_jupytext_percent(name):
    text = (ROOT / "notebooks" / name).read_text()
    assert "format_name: percent" in text.split("# ---", 2)[1], "missing the jupytext percent header"
    assert re.search(r"^# %% \[markdown\]$", text, re.M), "no markdown cell"
    assert re.search(r"^# %%$", text, re.M), "no code cell"


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_runs(name, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", SNNSIM_NB_SIZE="small", SNNSIM_NB_FIGDIR=str(tmp_path))
    env.setdefault("NUMBA_NUM_THREADS", "2")
    proc = subprocess.run([sys.executable, str(ROOT / "notebooks" / name)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    tail = (proc.stdout[-3000:] + "\n--- stderr ---\n" + proc.stderr[-3000:])
    assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{tail}"
    for fig in NOTEBOOKS[name]:
        png = tmp_path / f"{fig}.png"
        assert png.is_file(), f"{name} did not write {png.name}:\n{tail}"
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000, f"{png.name} is not a real PNG"
    written = re.findall(r"^figure: (.+)$", proc.stdout, re.M)
    assert sorted(Path(w).name for w in written) == sorted(f"{f}.png" for f in NOTEBOOKS[name])
    findings = [line for line in proc.stdout.splitlines() if line.startswith("- ")]
    assert findings, f"{name} printed no findings:\n{tail}"
    assert not any(re.search(r"\bnan\b", f) for f in findings), f"a finding is NaN:\n{tail}"
