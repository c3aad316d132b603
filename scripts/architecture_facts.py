"""Print grep-level facts about the package's shape: import cycles, how many modules name each layer kind, and
where the executors are (the classes that run op lists: they own the time loops).

    python scripts/architecture_facts.py [--json]

A layer kind is "named" by a module when its code holds the kind's YAML type as a string literal ("conv2d") or
uses the name of its spec record class (Conv2d) as a name of its own (``nir.Conv2d``, NIR's node, is not). The aim
(docs/layers.md) is that a kind is named by its own module and the registry only, and that the import graph has
no cycles. A composite kind's module that only builds another kind's records (the T-RevSNN is made of convs,
batch norms and pools; rlif of a linear product and a neuron) and never tests objects against them is listed
apart as composition: what is counted is dispatch on a kind outside its own module.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ("snnsim/layers/__init__.py", "snnsim/layers/registry.py")   # the table every kind is listed in
PACKAGES = ("snnsim", "hwmodel")
# A word that is a layer kind's YAML type but means something else where it appears: user-facing names (a key
# of the architecture file, an output column, a training method) that are not the kind and cannot be renamed.
# Their modules are not counted as naming the kind; the script prints them so the exceptions stay in sight.
HOMONYMS = {
    ("hwmodel/arch.py", "neuron"): "the architecture file's timing class timing_ns.neuron",
    ("hwmodel/arch.py", "linear"): "the SRAM energy law 'linear'",
    ("hwmodel/arch.py", "scale"): "the dataflow option narrow_words: scale",
    ("hwmodel/energy.py", "neuron"): "the energy component 'neuron' (a column of the priced report)",
    ("hwmodel/training.py", "reversible"): "the training method 'reversible' (snnsim train --method)",
    ("snnsim/cli/train.py", "reversible"): "the training method 'reversible' (a --method choice)",
    ("snnsim/cli/memory.py", "reversible"): "the training method 'reversible' (its memory estimate)",
    ("snnsim/train/loop.py", "reversible"): "the training method 'reversible' (METHODS, make_method)",
    ("snnsim/train/reversible.py", "reversible"): "the training method 'reversible' (its name)",
    ("snnsim/layers/trevsnn/train.py", "reversible"): "the training method 'reversible' (a T-RevSNN's own)",
    ("snnsim/layers/neuron.py", "state"): "the memory ledger's entry 'state' (a membrane held for the backward)",
    ("snnsim/train/online.py", "state"): "the memory ledger's entry 'state' (the online methods' carried state)",
}
KIND_PACKAGES = "snnsim/layers"      # a package in here is one kind (or a small family): one module


def import_cycles() -> list[list[str]]:
    """Strongly connected components (more than one module) of the packages' import graph."""
    import grimp

    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(*PACKAGES)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:      # Tarjan's algorithm, iterative over each node's successors
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.find_modules_directly_imported_by(v)):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def layer_kinds() -> dict[str, list[str]]:
    """YAML type -> the names that identify it in code (the type string and the spec record class)."""
    sys.path.insert(0, str(ROOT))
    import importlib
    import pkgutil

    import snnsim
    from snnsim import spec

    for info in pkgutil.walk_packages(snnsim.__path__, "snnsim."):   # every module, so every kind is defined
        if not info.name.endswith(("cli", "__main__")):
            importlib.import_module(info.name)
    kinds: dict[str, list[str]] = {}
    todo = list(spec.Layer.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        kinds.setdefault(cls.kind, []).append(cls.__name__)
    return kinds


def modules_naming(kinds: dict[str, list[str]]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Modules whose code names a kind: its YAML type as a whole string literal, or its record class as a name
    of its own (not an attribute of another module, such as NIR's ``nir.Conv2d``; not in comments or text).

    Returns (naming, composing). A module of another layer kind (under snnsim/layers/) that only builds a kind's
    records (calls, subclasses, annotations, imports: a T-RevSNN is made of convs) and neither tests objects
    against the class (isinstance, issubclass, ``is``/``==``/``in``) nor writes its type string is *composing*
    it, not naming it: it is listed apart, so that what is counted is dispatch on a kind outside its module."""
    files = sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))
    tokens = {str(p.relative_to(ROOT)): _tokens(p) for p in files}
    tests, defined = {}, {}
    for p in files:
        tests[str(p.relative_to(ROOT))], defined[str(p.relative_to(ROOT))] = _class_uses(p)
    naming, composing = {}, {}
    for kind, classes in kinds.items():
        literals = {repr(kind), f'"{kind}"'}
        named, built = set(), set()
        for name, (strings, names) in tokens.items():
            literal = bool(strings & literals) and (name, kind) not in HOMONYMS
            if not (literal or names & set(classes)):
                continue
            composes = (not literal and not tests[name] & set(classes) and name.startswith(KIND_PACKAGES + "/")
                        and name not in REGISTRY and not defined[name] & set(classes))
            (built if composes else named).add(_module(name))
        naming[kind] = sorted(named)
        composing[kind] = sorted(built - named)
    return naming, composing


def _class_uses(path: Path) -> tuple[set[str], set[str]]:
    """(names a module tests objects against, classes it defines). Tested: isinstance/issubclass's second
    argument, and the operands of ``is``, ``==``, ``!=`` and ``in`` comparisons. A module defining one of a
    kind's record classes is that kind's own module."""
    import ast

    out: set[str] = set()
    classes: set[str] = set()
    tested = (ast.Is, ast.IsNot, ast.Eq, ast.NotEq, ast.In, ast.NotIn)
    for node in ast.walk(ast.parse(path.read_text())):
        sides = []
        if isinstance(node, ast.ClassDef):
            classes.add(node.name)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 2 \
                and node.func.id in ("isinstance", "issubclass"):
            sides = [node.args[1]]
        elif isinstance(node, ast.Compare) and any(isinstance(op, tested) for op in node.ops):
            sides = [node.left] + node.comparators
        for side in sides:
            out.update(n.id for n in ast.walk(side) if isinstance(n, ast.Name))
    return out, classes


def executors() -> dict[str, list[str]]:
    """Module -> classes in it that run lists of ops (a method ``run_ops``). docs/layers.md: the engine's traced
    batch run and its untraced replay, both in ``snnsim/engine/``; kinds and regimes are handed one."""
    import ast

    out: dict[str, list[str]] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and any(isinstance(f, ast.FunctionDef) and f.name == "run_ops"
                                                          for f in node.body):
                    out.setdefault(str(path.relative_to(ROOT)), []).append(node.name)
    return out


def _module(path: str) -> str:
    """The module a file belongs to for counting: itself, or the kind's package it is part of."""
    parent = str(Path(path).parent)
    return parent + "/" if parent != KIND_PACKAGES and parent.startswith(KIND_PACKAGES + "/") else path


def _tokens(path: Path) -> tuple[set[str], set[str]]:
    """The string literals and the free-standing names (not after a dot) of one module."""
    import io
    import tokenize

    strings, names = set(), set()
    prev = None
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == tokenize.STRING:
            strings.add(tok.string)
        elif tok.type == tokenize.NAME and not (prev is not None and prev.string == "."):
            names.add(tok.string)
        if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
            prev = tok
    return strings, names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the facts as JSON")
    args = ap.parse_args()
    cycles = import_cycles()
    naming, composing = modules_naming(layer_kinds())
    runners = executors()
    if args.json:
        print(json.dumps({"import_cycles": cycles, "modules_naming_kind": naming,
                          "kinds_composing_kind": composing, "executors": runners}, indent=1))
        return
    print(f"import cycles: {len(cycles)}" + "".join(f"\n  {len(c)} modules: {', '.join(c)}" for c in cycles))
    print("executors (classes that run op lists, so own a time loop): "
          + "; ".join(f"{module}: {', '.join(names)}" for module, names in runners.items()))
    print("modules naming each layer kind (type string, or its record class tested or named outside a kind):")
    for kind, modules in sorted(naming.items(), key=lambda kv: -len(kv[1])):
        print(f"  {kind:12s} {len(modules):2d}  {', '.join(modules)}")
    print("kinds built from other kinds' records (composition, not counted above):")
    for kind, modules in sorted(composing.items()):
        if modules:
            print(f"  {kind:12s} built by {', '.join(modules)}")
    print("not counted (the same word, another meaning):")
    for (module, kind), what in HOMONYMS.items():
        print(f"  {kind:12s} {module}: {what}")


if __name__ == "__main__":
    main()
