"""The package's layering: import-linter's contracts (pyproject.toml) hold, and the import graph has no cycle."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))



def test_import_contracts_hold():
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    r = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "broken" in r.stdout and " 0 broken" in r.stdout


def test_no_import_cycles():
    pytest.importorskip("grimp")
    from architecture_facts import import_cycles

    assert import_cycles() == []


def test_a_cycle_is_detected():
    """The cycle finder itself: a three-module cycle in a throw-away package is found, a chain is not."""
    pytest.importorskip("grimp")
    import tempfile

    import grimp

    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(tmp) / "knot"
        pkg.mkdir()
        (pkg / "__init__.py").write_text("")
        (pkg / "a.py").write_text("from . import b\n")
        (pkg / "b.py").write_text("from . import c\n")
        (pkg / "c.py").write_text("def f():\n    from . import a\n")
        (pkg / "d.py").write_text("from . import a\n")
        sys.path.insert(0, tmp)
        try:
            graph = grimp.build_graph("knot")
        finally:
            sys.path.remove(tmp)
    import architecture_facts

    real = grimp.build_graph
    try:
        grimp.build_graph = lambda *a, **k: graph
        cycles = architecture_facts.import_cycles()
    finally:
        grimp.build_graph = real
    assert cycles == [["knot.a", "knot.b", "knot.c"]]


def test_class_tests_tell_dispatch_from_composition(tmp_path):
    """A module that tests objects against a record class dispatches on the kind; one that only builds records
    composes it (architecture_facts counts the first, lists the second apart)."""
    from architecture_facts import _class_uses

    src = tmp_path / "m.py"
    src.write_text("from .conv import Conv2d, Pool2d\n"
                   "def f(x):\n"
                   "    y = Conv2d('c', (1,), (1,))\n"
                   "    if isinstance(x, (Pool2d, int)) or type(x) is Linear:\n"
                   "        return y\n"
                   "    return x.kind == Flatten.kind\n")
    assert _class_uses(src)[0] == {"Pool2d", "int", "type", "x", "Linear", "Flatten"}


def test_every_layer_kind_is_named_by_its_own_module_and_the_registry_only():
    """No dispatch on a layer kind outside its own module: every kind's YAML type and record class appear only in
    its own module (or package) and the registry (composition and homonyms are listed apart by the script)."""
    from architecture_facts import layer_kinds, modules_naming

    naming, _ = modules_naming(layer_kinds())
    too_many = {kind: modules for kind, modules in naming.items() if len(modules) > 2}
    assert not too_many, too_many
    assert all("snnsim/layers/__init__.py" in modules for modules in naming.values())


def test_the_engine_owns_every_executor():
    """Every class that runs op lists (the traced batch run, the untraced replay) is the engine's; layer kinds and
    regimes are handed one (``ex``) and never define their own runner."""
    from architecture_facts import executors

    found = executors()
    assert found and all(module.startswith("snnsim/engine/") for module in found), found
    assert sorted(n for names in found.values() for n in names) == ["BatchRun", "Replay"]
