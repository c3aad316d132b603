"""An artificial busy machine: N processes that spin on a core each, started and stopped by the benchmark.

    with background_load(2):
        ...   # timings here see every core contended, like a shared machine

`machine_load()` is the 1-minute load average, printed beside every number so a reader can tell a quiet
machine's run from a busy one's.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

_SPIN = "import os\nos.nice(0)\nwhile True:\n    pass\n"


@contextlib.contextmanager
def background_load(n: int):
    """Run n spinning Python processes for the duration of the block (n = 0: nothing)."""
    procs = [subprocess.Popen([sys.executable, "-c", _SPIN], stdin=subprocess.DEVNULL) for _ in range(max(0, n))]
    try:
        if procs:
            time.sleep(0.3)             # let them get scheduled before anything is timed
        yield
    finally:
        for p in procs:                 # only the processes started here, by their own handles
            p.kill()
        for p in procs:
            p.wait()


def machine_load() -> float:
    return os.getloadavg()[0]


def add_load_option(ap) -> None:
    ap.add_argument("--background-load", type=int, default=0, metavar="N",
                    help="measure (again) with N spinning background processes")


def alternate(fns: dict, rounds: int, reps: int = 1, warm: bool = False, best: bool = False) -> dict:
    """Seconds per call of each function, one timing per round, the functions taking turns within a round
    (so that a change in the machine's load hits all of them alike): the mean of ``reps`` calls, or with
    ``best`` the fastest of them, each timed alone. Each is called once first (warm-up); with ``warm``, also
    once, untimed, before each of its timings, so that a timing does not include fetching back what the other
    functions' turns evicted from the caches."""
    for f in fns.values():
        f()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            if warm:
                f()
            if best:
                calls = []
                for _ in range(reps):
                    t0 = time.perf_counter()
                    f()
                    calls.append(time.perf_counter() - t0)
                times[k].append(min(calls))
                continue
            t0 = time.perf_counter()
            for _ in range(reps):
                f()
            times[k].append((time.perf_counter() - t0) / reps)
    return times
