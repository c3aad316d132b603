"""Every training run behind docs/training.md's results table, with one command:

    python benchmarks/train_results.py [--only NAME ...] [--list]

Each run is a plain ``snnsim train`` command line (printed before it runs); the three marked 'ships' write the
shipped weights networks/digits_mlp.npz and networks/mnist_conv.npz with ``--update-results`` (else next to the
reports, so that the committed weights stay as they are). Reports go to
build/benchmarks/train_<name>.json, and the table (accuracy on the held-out test split, peak bytes held for
the backward pass, mean step time) to build/benchmarks/training_results.csv and .md.
Runs are deterministic: the same command on the same machine gives the same weights bit for bit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
from results_dir import UPDATE, results_dir  # noqa: E402
RESULTS = results_dir()
N = "networks"
# shipped weights are rewritten only with --update-results; otherwise they land next to the reports
SHIP = N if UPDATE else str(RESULTS.relative_to(ROOT))

# name: (command-line arguments after 'snnsim train', ships weights)
RUNS = {
    "digits_mlp": ([f"{N}/digits_mlp.yaml", "--dataset", "digits", "--epochs", "40", "--lr", "1e-2",
                    "--out", f"{SHIP}/digits_mlp.npz"], True),
    "mnist_conv": ([f"{N}/mnist_conv.yaml", "--dataset", "mnist", "--epochs", "15", "--lr", "5e-3",
                    "--out", f"{SHIP}/mnist_conv.npz"], True),
    "mnist_revnet_reversible": ([f"{N}/mnist_revnet.yaml", "--dataset", "mnist", "--method", "reversible",
                                 "--epochs", "8", "--lr", "5e-3", "--out", f"{SHIP}/mnist_revnet.npz"], True),
    "mnist_revnet_bptt": ([f"{N}/mnist_revnet.yaml", "--dataset", "mnist", "--epochs", "8", "--lr", "5e-3",
                           "--out", "{tmp}/mnist_revnet_bptt.npz"], False),
    "digits_mlp_iir": ([f"{N}/digits_mlp.yaml", "--dataset", "digits", "--timesteps", "5,4,3,2,1", "--epochs", "15",
                        "--lr", "1e-2", "--out", "{tmp}/digits_mlp_iir.npz"], False),
    "digits_mlp_ottt_A": ([f"{N}/digits_mlp.yaml", "--dataset", "digits", "--method", "ottt", "--variant", "A",
                           "--epochs", "40", "--lr", "1e-2", "--out", "{tmp}/digits_mlp_ottt.npz"], False),
    "digits_mlp_soft_bptt": ([f"{N}/digits_mlp_soft.yaml", "--dataset", "digits", "--epochs", "40", "--lr", "1e-2",
                              "--out", "{tmp}/soft_bptt.npz"], False),
    "digits_mlp_soft_ottt_A": ([f"{N}/digits_mlp_soft.yaml", "--dataset", "digits", "--method", "ottt",
                                "--variant", "A", "--epochs", "40", "--lr", "1e-2", "--out", "{tmp}/soft_ottt_a.npz"],
                               False),
    "digits_mlp_soft_ottt_O": ([f"{N}/digits_mlp_soft.yaml", "--dataset", "digits", "--method", "ottt",
                                "--variant", "O", "--epochs", "40", "--lr", "2.5e-3", "--out",
                                "{tmp}/soft_ottt_o.npz"], False),
    "digits_mlp_soft_saf_E": ([f"{N}/digits_mlp_soft.yaml", "--dataset", "digits", "--method", "saf", "--variant", "E",
                               "--epochs", "40", "--lr", "2.5e-3", "--out", "{tmp}/soft_saf_e.npz"], False),
    "digits_mlp_soft_saf_F": ([f"{N}/digits_mlp_soft.yaml", "--dataset", "digits", "--method", "saf", "--variant", "F",
                               "--epochs", "40", "--lr", "1e-2", "--out", "{tmp}/soft_saf_f.npz"], False),
}

LAUNCH = ("from snnsim.cli import main\n"
          "if 'train' not in main.commands:\n"
          "    from snnsim.cli.train import train\n"
          "    main.add_command(train)\n"
          "main()\n")


def run(name, tmp):
    args, ships = RUNS[name]
    args = [a.replace("{tmp}", str(tmp)) for a in args]
    report = RESULTS / f"train_{name}.json"
    cmd = ["snnsim", "train", *args, "--report", str(report.relative_to(ROOT))]
    print("$", " ".join(cmd), flush=True)
    t0 = time.time()
    subprocess.run([sys.executable, "-c", LAUNCH, *cmd[1:]], cwd=ROOT, check=True,
                   env={**os.environ, "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS", "2")})
    rep = json.loads(report.read_text())
    rep["wall_s"] = time.time() - t0
    rep["command"] = " ".join(cmd)
    rep["ships"] = ships
    report.write_text(json.dumps(rep, indent=1))
    return rep


def table(names):
    import pandas as pd

    rows = []
    for name in names:
        path = RESULTS / f"train_{name}.json"
        if not path.exists():
            continue
        rep = json.loads(path.read_text())
        cfg = rep["config"]
        method = cfg["method"] + (f" {cfg['variant'] or ('A' if cfg['method'] == 'ottt' else 'E')}"
                                  if cfg["method"] in ("ottt", "saf") else "")
        for st in rep["stages"]:
            rows.append({"run": name, "network": rep["network"], "dataset": rep["dataset"], "method": method,
                         "T": st["T"], "epochs": st["epochs"], "test_acc": st["test_acc"],
                         "peak_held_MiB": st["peak_bytes"] / 2 ** 20, "step_ms": st["step_time_s"] * 1e3,
                         "ships": rep.get("ships", False)})
    df = pd.DataFrame(rows)
    df.to_csv(RESULTS / "training_results.csv", index=False)
    lines = ["| network | dataset | method | T | epochs | test accuracy | peak held for backward | step time |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['network']}{' (shipped)' if r['ships'] else ''} | {r['dataset']} | {r['method']} | "
                     f"{r['T']} | {r['epochs']} | {r['test_acc'] * 100:.2f}% | {r['peak_held_MiB']:.2f} MiB | "
                     f"{r['step_ms']:.0f} ms |")
    (RESULTS / "training_results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", help=f"runs: {', '.join(RUNS)}")
    ap.add_argument("--list", action="store_true", help="print the commands only")
    ap.add_argument("--table", action="store_true", help="only rebuild the table from existing reports")
    args = ap.parse_args()
    names = args.only or list(RUNS)
    if args.list:
        for n in names:
            print("snnsim train", " ".join(RUNS[n][0]))
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "snnsim_train_results"
    tmp.mkdir(parents=True, exist_ok=True)
    if not args.table:
        for n in names:
            run(n, tmp)
    table(list(RUNS))


if __name__ == "__main__":
    main()
