"""One table of the speed targets: what each benchmark measured against what snnsim aims for.

    python benchmarks/summary.py [--committed] [--run [--background-load N]]

Reads the CSVs that the benchmarks wrote (build/benchmarks/, or the committed benchmarks/results/ with
--committed) and prints, per target, the lowest and highest measured value over the rows it covers, how many rows
meet it, and the file it came from. With --run it first runs, one after the other (never two at once on a
shared machine), the scripts that produce them: inference.py (all three peers, batch 1 and 64, T=4 and 8),
density_scaling.py, activity_bounds.py, dense_peak.py, training.py --step-only and startup.py; --background-load N is passed to
the scripts that measure under N spinning processes as well. Writes build/benchmarks/summary.csv (or
benchmarks/results/summary.csv with --update-results).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from results_dir import COMMITTED, results_dir  # noqa: E402

RESNET_CONV = "resnet conv 64->64 3x3 @16"


@dataclass(frozen=True)
class Target:
    what: str
    goal: str
    source: str                                    # CSV file name (a glob: dense_peak*.csv takes the loaded runs too)
    values: Callable[[pd.DataFrame], pd.Series]    # one value per covered row, labelled
    met: Callable[[float], bool]


def _label(df: pd.DataFrame, cols: list[str]) -> pd.Index:
    return pd.Index([" ".join(f"{c}={r[c]}" for c in cols) for _, r in df.iterrows()])


def _rows(df, query, value, cols):
    d = df.query(query) if query else df
    return pd.Series(d[value].to_numpy(float), index=_label(d, cols))


def _density_ratio(df, num: float, den: float, column: str = "rule_ms") -> pd.Series:
    """Per background load: the ResNet block conv's time (batch 64; ``column``: the default rule's form, or
    ``event_ms``, the event kernel's) at density ``num`` over its time at density ``den``."""
    d = df[(df.layer == RESNET_CONV) & (df.batch == 64)]
    out = {}
    for load, g in d.groupby("background_load"):
        t = g.set_index("density")[column]
        out[f"load+{load}"] = t[num] / t[den]
    return pd.Series(out, dtype=float)


def _events_growth(df) -> pd.Series:
    """Per background load: benchmarks/activity_bounds.py's growth of the event kernel's time from 1 % to 20 %
    density after its fixed cost (the time with one event per image) is taken out of both."""
    out = {}
    for load, g in df[df.form == "snnsim"].groupby("background_load"):
        t = g.set_index("input").ms
        out[f"load+{load}"] = (t["20%"] - t["one per image"]) / (t["1%"] - t["one per image"])
    return pd.Series(out, dtype=float)


def _batch_ratio(df, num: int, den: int) -> pd.Series:
    """Per network: time per sample at batch ``num`` over that at batch ``den``."""
    t = df.pivot_table(index="network", columns="batch", values="ms_per_sample")
    return pd.Series((t[num] / t[den]).to_numpy(float), index=pd.Index([f"network={n}" for n in t.index]))


TARGETS = [
    Target("inference batch 1 vs fastest peer", ">= 3x", "inference.csv",
           lambda d: _rows(d, "batch == 1", "speedup_vs_fastest_peer", ["network", "T", "background_load"]),
           lambda v: v >= 3),
    Target("inference batch 64 vs fastest peer", ">= 1.5x", "inference.csv",
           lambda d: _rows(d, "batch == 64", "speedup_vs_fastest_peer", ["network", "T", "background_load"]),
           lambda v: v >= 1.5),
    Target("ResNet block conv b64: zero-activity floor / cost at 5 %", "<= 0.10", "density_scaling.csv",
           lambda d: _density_ratio(d, 0.0, 0.05), lambda v: v <= 0.10),
    Target("ResNet block conv b64: time 20 % / time 1 %", "13.3-30 (20 = proportional)", "density_scaling.csv",
           lambda d: _density_ratio(d, 0.2, 0.01), lambda v: 20 / 1.5 <= v <= 20 * 1.5),
    Target("the same, event kernel forced", "13.3-30 (20 = proportional)", "density_scaling.csv",
           lambda d: _density_ratio(d, 0.2, 0.01, "event_ms"), lambda v: 20 / 1.5 <= v <= 20 * 1.5),
    # what the event kernel's time does once its fixed cost (one event per image) is taken out
    Target("the same, its events' part alone (fixed cost taken out)", "13.3-30 (20 = proportional)",
           "activity_growth.csv", lambda d: _events_growth(d), lambda v: 20 / 1.5 <= v <= 20 * 1.5),
    Target("whole network at real activity: forced dense / default", ">= 3x", "density_networks.csv",
           lambda d: _rows(d, None, "dense_over_auto", ["network", "batch", "background_load"]),
           lambda v: v >= 3),
    # the most that target can reach with today's kernels: synaptic layers priced in both forms, all else free
    Target("the same, bound by the kernels' prices (all else free)", ">= 3x", "activity_networks.csv",
           lambda d: _rows(d, None, "bound", ["network"]), lambda v: v >= 3),
    Target("dense ResNet 3x3 conv b64 vs best numpy sgemm", ">= 0.5", "dense_peak*.csv",
           lambda d: _rows(d, "batch == 64 and layer.str.startswith('resnet')", "snnsim_vs_best_sgemm",
                           ["layer", "background_load"]),
           lambda v: v >= 0.5),
    Target("dense ResNet 3x3 conv b64 vs torch conv2d", ">= 1x", "dense_peak*.csv",
           lambda d: _rows(d, "batch == 64 and layer.str.startswith('resnet')", "snnsim_vs_torch",
                           ["layer", "background_load"]),
           lambda v: v >= 1),
    # the rows: batch 32 at T=4 and 8; the benchmark also times batch 64 at T=4, shown on its own
    Target("training step vs SpikingJelly (conv net, ResNet; batch 32)", ">= 2x", "training_step_time.csv",
           lambda d: _rows(d, "network != 'digits_mlp' and batch == 32", "ratio_sj_over_snnsim",
                           ["network", "batch", "T"]),
           lambda v: v >= 2),
    Target("training step vs SpikingJelly (conv net, ResNet; batch 64)", ">= 2x", "training_step_time.csv",
           lambda d: _rows(d, "network != 'digits_mlp' and batch == 64", "ratio_sj_over_snnsim",
                           ["network", "batch", "T"]),
           lambda v: v >= 2),
    Target("training step memory vs SpikingJelly (peak RSS added)", "< 1x", "training_step_rss.csv",
           lambda d: _rows(d, None, "snnsim_over_spikingjelly", ["network", "batch", "T"]),
           lambda v: v < 1),
    Target("time per sample, batch 256 / batch 64 (flat in batch size)", "<= 1.1", "batch_scaling.csv",
           lambda d: _batch_ratio(d, 256, 64), lambda v: v <= 1.1),
    Target("warm start of the README command (wall s)", "< 1 s", "startup.csv",
           lambda d: _rows(d, "run == 'warm'", "wall_s", ["run", "load_avg"]), lambda v: v < 1),
    Target("cold start of the README command (wall s)", "< 10 s", "startup.csv",
           lambda d: _rows(d, "run == 'cold (empty cache)'", "wall_s", ["run", "load_avg"]), lambda v: v < 10),
]


def _read(folder: Path, pattern: str) -> pd.DataFrame | None:
    """The benchmark CSVs matching ``pattern``, one table (None when there are none)."""
    frames = [pd.read_csv(p) for p in sorted(folder.glob(pattern))]
    return pd.concat(frames, ignore_index=True) if frames else None


def summarize(folder: Path) -> pd.DataFrame:
    rows = []
    for t in TARGETS:
        df = _read(folder, t.source)
        vals = t.values(df) if df is not None else pd.Series(dtype=float)
        vals = vals.dropna()
        ok = [t.met(v) for v in vals]
        rows.append({"target": t.what, "goal": t.goal, "rows met": f"{sum(ok)}/{len(ok)}" if ok else "no data",
                     "min": vals.min() if ok else float("nan"), "max": vals.max() if ok else float("nan"),
                     "source": t.source})
    return pd.DataFrame(rows)


RUNS = [["inference.py", "--no-cli"], ["density_scaling.py"], ["activity_bounds.py"], ["dense_peak.py"],
        ["training.py", "--step-only"], ["startup.py"], ["batch_scaling.py"]]
LOADED = {"inference.py", "density_scaling.py", "activity_bounds.py", "dense_peak.py"}    # scripts with --background-load


def run_all(load: int, update: bool) -> None:
    for args in RUNS:
        cmd = [sys.executable, str(HERE / args[0])] + args[1:]
        if load and args[0] in LOADED:
            cmd += ["--background-load", str(load)]
        if update:
            cmd.append("--update-results")
        print("$", " ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--committed", action="store_true", help="read benchmarks/results/ (the committed CSVs)")
    ap.add_argument("--run", action="store_true", help="run the benchmarks first (tens of minutes)")
    ap.add_argument("--background-load", type=int, default=0, metavar="N",
                    help="with --run: also measure under N spinning processes")
    args = ap.parse_args()
    out = results_dir()
    if args.run:
        run_all(args.background_load, out == COMMITTED)
    folder = COMMITTED if args.committed else out
    table = summarize(folder)
    print(f"speed targets, from the CSVs in {folder}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    table.to_csv(out / "summary.csv", index=False)
    print(f"wrote {out / 'summary.csv'}")


if __name__ == "__main__":
    main()
