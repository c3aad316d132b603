"""hwmodel: an event-driven accelerator model that prices real snnsim runs.

trace (snnsim.trace) -> counts (per layer, per timestep) -> energy and latency on an architecture (YAML)
-> regime comparison, training cost, architecture sweeps. Core modules import nothing from snnsim but
``snnsim.trace`` (and ``snnsim.errors`` and the file utilities); ``snnsim.cli.hw`` is the only glue to the engine.

    from hwmodel import load_arch, price
    report = price(result.trace, load_arch("evt45"))
    report.totals["energy_pj"], report.breakdown    # per inference; per layer x timestep x component
"""

from .arch import Arch, ArchError, load_arch, parse_arch, presets
from .counts import Counts, count
from .energy import COMPONENTS, evaluate
from .report import Report, price
from .neurobench import neurobench_metrics
from .regimes import compare, plot
from .sweep import sweep
from .training import training_cost

__all__ = ["Arch", "ArchError", "COMPONENTS", "Counts", "Report", "compare", "count", "evaluate", "load_arch",
           "neurobench_metrics", "parse_arch", "plot", "presets", "price", "sweep", "training_cost"]
