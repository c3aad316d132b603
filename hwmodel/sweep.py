"""Vectorised architecture sweep: many variants of one architecture priced over one trace at once.

Each variant replaces some entries of ``Arch.params()`` (buffer sizes, bit widths, dataflow switches as 0/1,
cores, unit energies...). ``hwmodel.energy.evaluate`` broadcasts over the variant axis, so a sweep of
1,000 variants is one call over [1000, rows] arrays, not 1,000 calls.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from .arch import Arch, ArchError
from .counts import Counts
from .energy import COMPONENTS
from .mapping import parse_choice, search

# friendly column -> params key (and a unit conversion)
ALIASES = {"weights_kib": ("weights_bytes", 1024), "membrane_kib": ("membrane_bytes", 1024),
           "events_kib": ("events_bytes", 1024)}


def grid(**axes) -> pd.DataFrame:
    """The Cartesian product of the given value lists, one variant per row."""
    keys = list(axes)
    return pd.DataFrame(list(itertools.product(*(axes[k] for k in keys))), columns=keys)


def default_grid() -> pd.DataFrame:
    """1,000 variants: weight, membrane and event buffer sizes, weight and membrane bits, weight refetch."""
    return grid(weights_kib=[16, 32, 64, 128, 256], membrane_kib=[4, 8, 16, 32, 64], events_kib=[4, 16],
                bits_weight=[4, 8], bits_membrane=[8, 12, 16, 24, 32], refetch=[0, 1])


def variant_params(arch: Arch, variants: pd.DataFrame) -> dict:
    """The architecture's params with every column of ``variants`` replaced by its array of values."""
    p = arch.params()
    for col in variants.columns:
        key, scale = ALIASES.get(col, (col, 1))
        if key not in p or key == "sram":
            raise ArchError(f"sweep.{col}", f"not a sweepable parameter; known: "
                            f"{', '.join(sorted(set(p) - {'sram'} | set(ALIASES)))}")
        p[key] = variants[col].to_numpy(np.float64) * scale
    if "refetch" in variants.columns and arch.dram is None and variants.refetch.any():
        raise ArchError("sweep.refetch", "refetching weights needs a dram section in the architecture")
    return p


def sweep(c: Counts, arch: Arch, variants: pd.DataFrame, objective: str = "energy",
          mapping: str | None = None) -> pd.DataFrame:
    """Energy (pJ per inference, total and per component), latency (ns) and feasibility per variant, every
    variant's layers on their best mappings under ``objective`` (or all on ``mapping='fixed:NAME'``)."""
    res, choice = search(c, arch, variant_params(arch, variants), objective, parse_choice(mapping, arch))
    out = variants.reset_index(drop=True).copy()
    V = len(out)
    out["energy_pj"] = np.broadcast_to(res["total"], (V,))
    for k in COMPONENTS:
        e = res["E_static"] if k == "static" else np.sum(res["E"][k], axis=-1)
        out[f"e_{k}"] = np.broadcast_to(e, (V,))
    out["latency_ns"] = np.broadcast_to(res["latency"], (V,))
    out["dram_bytes"] = np.broadcast_to(np.sum(res["dram_bits"], axis=-1) / 8, (V,))
    out["feasible"] = ~np.broadcast_to(res["infeasible"], (V,))
    out.loc[~out.feasible, ["energy_pj", "latency_ns"]] = np.nan
    names = np.array([m.name for m in arch.loop_mappings()])
    choice = np.broadcast_to(choice, (V, c.n_units))
    out["mappings"] = [",".join(names[row]) for row in choice]
    return out
