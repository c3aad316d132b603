"""snnsim: a Numba discrete-time spiking neural network simulator.

Data flows one way: spec (YAML) -> network (spec + weights) -> engine -> trace -> hwmodel -> report.
"""

import os

# Numba's OpenMP threads spin-wait between parallel regions by default. On a machine where other work
# competes for the cores that spinning starves everyone: a 0.04 ms conv took 8 ms under a load of 5 on
# 2 cores (measured; see docs/performance.md). Passive waiting costs little when the machine is quiet.
# Set before Numba loads its threading layer; an explicit user setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
