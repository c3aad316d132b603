"""Where a benchmark writes its tables: ``build/benchmarks/`` (git-ignored), so that running one leaves the
working tree clean; with ``--update-results`` (or ``SNNSIM_UPDATE_RESULTS=1``) into ``benchmarks/results/``,
the committed files the docs quote. Every benchmark imports this before parsing its own options."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "benchmarks" / "results"
FLAG = "--update-results"


def update_requested() -> bool:
    """True when the committed results are to be replaced (the flag is taken out of sys.argv here, so that
    each script's own option parser never sees it)."""
    flagged = FLAG in sys.argv
    if flagged:
        sys.argv.remove(FLAG)
    return flagged or os.environ.get("SNNSIM_UPDATE_RESULTS") == "1"


UPDATE = update_requested()


def results_dir() -> Path:
    """The folder for this run's CSV/PNG/JSON output (created)."""
    d = COMMITTED if UPDATE else ROOT / "build" / "benchmarks"
    d.mkdir(parents=True, exist_ok=True)
    return d
