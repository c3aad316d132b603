"""docs/api.md's code blocks run, in order, in one namespace, from the repository root.

The blocks assert against independent references themselves (SpikingJelly's and snnTorch's own runs, a
quarter of the work at T=1, learning on real data), so a broken API fails here."""

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_api_quickstart_runs(monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("spikingjelly")
    pytest.importorskip("snntorch")
    blocks = python_blocks(ROOT / "docs" / "api.md")
    assert len(blocks) >= 5
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"docs/api.md block {i + 1}", "exec"), namespace)
        except Exception as e:   # name the block, keep the traceback
            raise AssertionError(f"docs/api.md block {i + 1} failed: {type(e).__name__}: {e}") from e


def test_public_names_resolve_and_are_documented():
    import snnsim

    for name in snnsim.__all__:
        obj = getattr(snnsim, name)
        if callable(obj) and name != "__version__":
            assert obj.__doc__, f"snnsim.{name} has no docstring"
    with pytest.raises(AttributeError):
        snnsim.no_such_name  # noqa: B018


def test_import_snnsim_loads_no_numba():
    """`import snnsim` stays light: the API's modules load on first use (the CLI's start-up depends on it)."""
    import subprocess
    import sys

    code = "import sys, snnsim; print('numba' in sys.modules, 'snnsim.engine' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.split()
    assert out == ["False", "False"]


def test_readme_python_blocks_run(monkeypatch, capsys):
    blocks = python_blocks(ROOT / "README.md")
    assert blocks, "the README shows the Python API"
    monkeypatch.chdir(ROOT)
    for i, block in enumerate(blocks):
        exec(compile(block, f"README.md python block {i + 1}", "exec"), {})
    out = capsys.readouterr().out
    assert "sn1" in out and "synops" in out
