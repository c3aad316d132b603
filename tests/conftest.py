"""Every test starts from the same global random state, whatever ran before it (the suite also runs in random
order: ``pytest --random-order``); hypothesis draws derandomized examples. Tests seed their own generators; this covers what they do not, such as
PyTorch's default layer initialisation, which draws from the global generator when a module is built."""

import random
import sys

import numpy as np
import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (and no example database carries state between runs): a
# failure is reproducible, and a pass does not depend on which examples a previous run happened to keep.
settings.register_profile("snnsim", derandomize=True, database=None)
settings.load_profile("snnsim")


@pytest.fixture(autouse=True)
def _seed_global_generators():
    random.seed(0)
    np.random.seed(0)
    torch = sys.modules.get("torch")      # not imported for it: most tests never need torch
    if torch is not None:
        torch.manual_seed(0)
    yield


def pytest_terminal_summary(terminalreporter):
    """Print the size of the hostile-input corpus (tests/test_fuzz.py) that was refused as it should be."""
    fuzz = sys.modules.get("test_fuzz")
    counts = getattr(fuzz, "COUNTS", None) or {}
    if counts:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        terminalreporter.write_line(f"fuzz corpus: {sum(counts.values())} hostile cases ended in exit 2 with one "
                                    f"error line, no traceback, no hang, no output touched ({parts})")
