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
from .mapping import modal, parse_choice, search

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
    out = variants.reset_index(drop=True).copy()
    names = np.array([m.name for m in arch.loop_mappings()])
    fixed = parse_choice(mapping, arch)
    # every sample of every variant is priced ([V, S, rows] arrays): variants go in blocks small enough for
    # the arrays to stay in the CPU caches
    block = max(1, CHUNK_ELEMENTS // max(1, len(c.rows) * _samples(c)))
    parts = []
    for lo in range(0, len(out), block):
        part = out.iloc[lo:lo + block]
        res, choice = search(c, arch, variant_params(arch, part), objective, fixed)
        V = len(part)
        cols = {"energy_pj": np.broadcast_to(res["total"], (V,))}
        for k in COMPONENTS:
            cols[f"e_{k}"] = np.broadcast_to(res["E_static"] if k == "static" else np.sum(res["E"][k], axis=-1), (V,))
        cols["latency_ns"] = np.broadcast_to(res["latency"], (V,))
        cols["dram_bytes"] = np.broadcast_to(np.sum(res["dram_bits"], axis=-1) / 8, (V,))
        cols["feasible"] = ~np.broadcast_to(res["infeasible"], (V,))
        choice = np.broadcast_to(modal(choice, len(names))[0], (V, c.n_units))    # the mapping most samples ran on
        cols["mappings"] = [",".join(names[row]) for row in choice]
        parts.append(pd.DataFrame(cols, index=part.index))
    out = pd.concat([out, pd.concat(parts)], axis=1)
    out.loc[~out.feasible, ["energy_pj", "latency_ns"]] = np.nan
    return out


CHUNK_ELEMENTS = 1 << 17


def _samples(c: Counts) -> int:
    return max((len(v) for v in c.per_sample.values()), default=1)
