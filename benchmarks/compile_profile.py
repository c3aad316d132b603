"""What a cold `snnsim` command compiles: every Numba compilation, with its seconds, into an empty cache.

    python benchmarks/compile_profile.py [--all] [SNNSIM ARGS...]

Runs the command in this process (default: the README's `run networks/mnist_conv.yaml --weights
networks/mnist_conv.npz --dataset mnist`) with NUMBA_CACHE_DIR set to a new empty folder, listens to Numba's
compile events, and prints per function the specialisations compiled and the seconds spent compiling them
(excluding the functions compiled inside, which are listed on their own); --all also lists each
specialisation's argument types. Nothing is written to the working tree.
"""

from __future__ import annotations

import collections
import os
import sys
import tempfile
import time

DEFAULT = ["run", "networks/mnist_conv.yaml", "--weights", "networks/mnist_conv.npz", "--dataset", "mnist"]


def main():
    args = sys.argv[1:]
    show_all = "--all" in args
    args = [a for a in args if a != "--all"] or DEFAULT
    with tempfile.TemporaryDirectory() as cache:
        os.environ["NUMBA_CACHE_DIR"] = cache              # before Numba loads: an empty cache
        from numba.core import event

        records, stack = [], []

        class Listener(event.Listener):
            def on_start(self, ev):
                stack.append([time.perf_counter(), 0.0])

            def on_end(self, ev):
                t0, inner = stack.pop()
                seconds = time.perf_counter() - t0
                if stack:
                    stack[-1][1] += seconds
                fn = getattr(ev.data.get("dispatcher"), "py_func", None)
                name = f"{fn.__module__}.{fn.__qualname__}" if fn else str(ev.data.get("dispatcher"))
                records.append((name, str(ev.data.get("args")), seconds - inner))

        event.register("numba:compile", Listener())
        from snnsim.cli import main as cli

        t0 = time.perf_counter()
        try:
            cli(args, standalone_mode=False)
        except SystemExit:
            pass
        total = time.perf_counter() - t0
    by = collections.defaultdict(lambda: [0, 0.0])
    for name, _, s in records:
        by[name][0] += 1
        by[name][1] += s
    own = [n for n in by if n.startswith("snnsim.")]
    print(f"\n`snnsim {' '.join(args)}` with an empty cache: {total:.2f} s in the command, "
          f"{sum(r[2] for r in records):.2f} s compiling; {sum(by[n][0] for n in own)} specialisations of "
          f"{len(own)} snnsim functions, {len(records)} compilations in all")
    print("seconds  specialisations  function")
    for name, (count, s) in sorted(by.items(), key=lambda kv: -kv[1][1]):
        print(f"{s:7.2f}  {count:15d}  {name}")
    if show_all:
        for name, sig, s in records:
            print(f"{s:7.2f}  {name}{sig}")


if __name__ == "__main__":
    main()
