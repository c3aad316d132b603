"""snnsim: a Numba discrete-time spiking neural network simulator.

Data flows one way: spec (YAML) -> network (spec + weights) -> engine -> trace -> hwmodel -> report.
"""

__version__ = "0.1.0"
