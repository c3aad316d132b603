"""Regime comparison: one network and its weights run multi-timestep (T), temporal-reversible and one-shot
(T=1), each priced on the same architecture; a table with ratios and a stacked-bar plot.

Ratios are to the network's own T-step regime: multi-step for a plain network, trev for a T-RevSNN (which
has no multi-step execution: each column runs once). The runs themselves come from the engine
(``snnsim.cli.hw`` does that); this module only prices traces.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .arch import Arch
from .energy import COMPONENTS
from .report import Report, price

ORDER = ("multistep", "trev", "oneshot")
LABELS = {"multistep": "multi-step", "trev": "temporal-reversible", "oneshot": "one-shot"}
TABLE_COLUMNS = ("regime", "timesteps", "energy_pj", "latency_ns", "step_ns", "state_bytes",
                 "state_carried_bytes", "proxy_pj", "spikes_per_synapse", "synops", "macs", "dram_bytes",
                 "mappings")


def compare(traces: dict, arch: Arch, objective: str = "energy",
            mapping: str | None = None) -> tuple[pd.DataFrame, dict[str, Report]]:
    """Price every regime's trace, each on its own best mapping per layer under ``objective`` (or all on
    ``mapping='fixed:NAME'``); return the table (one row per regime) and the reports (``Report.mapping``
    says which mapping won per layer).

    state_bytes: state held at once across a timestep boundary; state_carried_bytes: written at t and read
    at t+1, summed over the inference. Ratio columns are to the first of multistep, trev present (column
    ``ratio_to``)."""
    reports = {name: price(tr, arch, objective, mapping) for name, tr in _ordered(traces)}
    rows = [{k: r.totals[k] for k in TABLE_COLUMNS if k != "regime"} | {"regime": name}
            for name, r in reports.items()]
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    base_name = next((k for k in ("multistep", "trev") if k in reports), None)
    if base_name is not None:
        base = reports[base_name]
        for k, out in (("energy_pj", "energy_ratio"), ("latency_ns", "latency_ratio"),
                       ("state_bytes", "state_ratio"), ("proxy_pj", "proxy_ratio")):
            denom = base.totals[k]
            table[out] = table[k] / denom if denom else float("nan")
        table["ratio_to"] = base_name
    table.insert(1, "arch", arch.name)
    return table, reports


def components_table(reports: dict[str, Report]) -> pd.DataFrame:
    """Energy per component (pJ per inference), one column per regime."""
    return pd.DataFrame({name: r.components() for name, r in reports.items()})


def plot(reports: dict[str, Report], stem: str | Path, title: str = "") -> list[Path]:
    """Stacked bars of energy components per regime; writes ``stem.png`` and ``stem.svg``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comp = components_table(reports) / 1e6          # pJ -> µJ
    comp = comp.loc[[k for k in COMPONENTS if comp.loc[k].sum() > 0]]
    fig, ax = plt.subplots(figsize=(3.0 + 1.5 * len(reports), 4.2))
    bottom = None
    cmap = plt.get_cmap("tab20")
    labels = [f"{LABELS.get(r, r)}\nT={reports[r].totals['timesteps']}" for r in comp.columns]
    for i, (name, vals) in enumerate(comp.iterrows()):
        ax.bar(labels, vals.values, bottom=bottom, label=name, color=cmap(i % 20))
        bottom = vals.values if bottom is None else bottom + vals.values
    ax.set_ylabel("energy per inference (µJ)")
    arch = next(iter(reports.values())).arch.name if reports else ""
    ax.set_title(title or f"energy by component, arch {arch}", fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    stem = Path(stem)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    from io import BytesIO

    from snnsim.outputs import write_atomic

    for p in paths:                        # rendered in memory, then written atomically
        buf = BytesIO()
        fig.savefig(buf, format=p.suffix[1:], dpi=120, bbox_inches="tight")
        write_atomic(p, lambda f: f.write(buf.getvalue()), "--out")
    plt.close(fig)
    return paths


def _ordered(traces: dict):
    known = [(k, traces[k]) for k in ORDER if k in traces]
    return known + [(k, v) for k, v in traces.items() if k not in ORDER]
