"""Every ```bash block of README.md runs as written, in a temporary folder holding a link to networks/.

(The install and test-suite commands are in a ```sh block: the suite cannot run itself.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_has_bash_blocks():
    assert len(bash_blocks((ROOT / "README.md").read_text())) >= 1


@pytest.mark.parametrize("i", range(len(bash_blocks((ROOT / "README.md").read_text()))))
def test_readme_block_runs(i, tmp_path):
    block = bash_blocks((ROOT / "README.md").read_text())[i]
    (tmp_path / "networks").symlink_to(ROOT / "networks")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    # `snnsim` is this checkout's command line, whatever is installed
    (bindir / "snnsim").write_text(f"#!/bin/sh\nexec {sys.executable} -m snnsim.cli \"$@\"\n")
    (bindir / "snnsim").chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}",
           "PYTHONPATH": f"{ROOT}:{os.environ.get('PYTHONPATH', '')}", "MPLBACKEND": "Agg"}
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, f"README bash block {i + 1} failed:\n{block}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
