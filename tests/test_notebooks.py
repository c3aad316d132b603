"""The hardware-study notebooks (notebooks/0X_*.py, jupytext percent format) run top to bottom at their small
default size, write their figures, and their key numbers equal independent references.

Each notebook runs in its own process, top to bottom as ``python notebooks/01_energy_vs_T.py`` runs it (through
``runpy``, which then saves the notebook's tables and inputs for the checks), with ``MPLBACKEND=Agg`` and its
figures redirected to a temporary directory (``SNNSIM_NB_FIGDIR``) so that the committed PNGs in
notebooks/figures/ are left alone.

The references are computed apart from the notebooks' code path (hwmodel's counts and pricing):
- dense MACs of mnist_conv by hand from its YAML (conv1 16x28x28 outputs x 9 taps = 112,896; conv2 32x14x14 x 16 x
  9 = 903,168; fc1 1568 x 128 = 200,704; fc2 128 x 10 = 1,280; in all 1,218,048);
- synaptic ops from the engine's spike tensors, max-pooled and convolved with all-ones kernels by PyTorch
  (every spike times the outputs it reaches), on the notebook's own images;
- the proxy's published formula, 0.9 pJ per synaptic op and 4.6 pJ per MAC (Horowitz 2014), with the
  direct-encoded conv1 charged at every step (proxy45) or once (evt45's ``encoder: as_run``);
- break-even points and Pareto fronts recomputed from the tables by brute force.
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {
    "01_energy_vs_T.py": ["01_components_mnist_conv", "01_membrane_share_by_stage", "01_energy_vs_T", "01_sensitivity",
                          "01_components_trev_vs_multistep"],
    "02_break_even_ann.py": ["02_break_even", "02_sensitivity"],
    "03_training_memory.py": ["03_training_memory_time"],
    "04_iir_timesteps.py": ["04_iir_accuracy_energy", "04_iir_layer_rates"],
    "05_design_space.py": ["05_pareto_mnist_conv", "05_regimes_design_space"],
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_every_notebook_is_listed():
    found = sorted(p.name for p in (ROOT / "notebooks").glob("0*_*.py"))
    assert found == sorted(NOTEBOOKS), f"notebooks on disk {found} vs tested {sorted(NOTEBOOKS)}"


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_is_jupytext_percent(name):
    text = (ROOT / "notebooks" / name).read_text()
    assert "format_name: percent" in text.split("# ---", 2)[1], "missing the jupytext percent header"
    assert re.search(r"^# %% \[markdown\]$", text, re.M), "no markdown cell"
    assert re.search(r"^# %%$", text, re.M), "no code cell"


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_runs(name, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", SNNSIM_NB_SIZE="small", SNNSIM_NB_FIGDIR=str(tmp_path))
    env.setdefault("NUMBA_NUM_THREADS", "2")
    saved = tmp_path / "globals.pkl"
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(ROOT / "notebooks" / name), str(saved)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    tail = (proc.stdout[-3000:] + "\n--- stderr ---\n" + proc.stderr[-3000:])
    assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{tail}"
    for fig in NOTEBOOKS[name]:
        png = tmp_path / f"{fig}.png"
        assert png.is_file(), f"{name} did not write {png.name}:\n{tail}"
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000, f"{png.name} is not a real PNG"
    written = re.findall(r"^figure: (.+)$", proc.stdout, re.M)
    assert sorted(Path(w).name for w in written) == sorted(f"{f}.png" for f in NOTEBOOKS[name])
    findings = [line for line in proc.stdout.splitlines() if line.startswith("- ")]
    assert findings, f"{name} printed no findings:\n{tail}"
    assert not any(re.search(r"\bnan\b", f) for f in findings), f"a finding is NaN:\n{tail}"
    with open(saved, "rb") as f:
        CHECKS[name](pickle.load(f))


# Runs a notebook as ``python notebook.py`` would (run_name "__main__"), then pickles what the checks read: its
# tables, arrays and numbers (figures, networks and modules are left out).
DRIVER = """
import pickle, runpy, sys
import numpy as np, pandas as pd
g = runpy.run_path(sys.argv[1], run_name="__main__")
keep = {}
for k, v in g.items():
    if not k.startswith("_") and isinstance(v, (pd.DataFrame, pd.Series, np.ndarray, int, float, dict, tuple, list)):
        try:
            keep[k] = pickle.loads(pickle.dumps(v))
        except Exception:
            pass
with open(sys.argv[2], "wb") as f:
    pickle.dump(keep, f)
"""

CONV1_MACS = 16 * 28 * 28 * 1 * 9                                  # 112,896
DENSE_MACS = CONV1_MACS + 32 * 14 * 14 * 16 * 9 + 1568 * 128 + 128 * 10
AC_PJ, MAC_PJ = 0.9, 4.6                                           # the proxy (Horowitz 2014 FP32)


def mnist_conv_synops(x, T, v_threshold=1.0):
    """Synaptic ops per inference of the shipped mnist_conv on ``x`` at T, counted apart from hwmodel's and the
    engine's counters: the engine's spike tensors, max-pooled by PyTorch, feed conv2 (an all-ones 3x3 kernel,
    padding 1, 16 -> 32 channels: the sum of its output is every spike times the outputs it reaches), fc1
    (128 outputs per spike) and fc2 (10 per spike)."""
    torch = pytest.importorskip("torch")
    import yaml

    from snnsim.engine import run
    from snnsim.network import build_network
    from snnsim.layers import parse_spec
    from snnsim.weights import load_weights

    raw = yaml.safe_load((ROOT / "networks" / "mnist_conv.yaml").read_text())
    raw["neuron_defaults"]["lif"]["v_threshold"] = v_threshold
    spec = parse_spec(raw, "mnist_conv.yaml")
    net = build_network(spec, load_weights(spec, ROOT / "networks" / "mnist_conv.npz"))
    res = run(net, x, timesteps=T, probes=["sn1", "sn2", "sn3"])
    spikes = {k: torch.from_numpy(res.spikes(k)).flatten(0, 1).double() for k in ("sn1", "sn2", "sn3")}
    F = torch.nn.functional
    conv2 = F.conv2d(F.max_pool2d(spikes["sn1"], 2), torch.ones(32, 16, 3, 3, dtype=torch.float64), padding=1)
    total = conv2.sum() + F.max_pool2d(spikes["sn2"], 2).sum() * 128 + spikes["sn3"].sum() * 10
    return float(total) / len(x)


def _finite(df, cols=None):
    vals = df[cols] if cols is not None else df.select_dtypes("number")
    assert np.isfinite(vals.to_numpy(np.float64)).all(), vals


def check_energy_vs_T(g):
    tab = g["tab_a"]
    _finite(tab)
    assert tab.accuracy.between(0, 1).all() and (tab.energy_uJ > 0).all()
    for T in (1, 2):                              # synops: the same on every architecture
        np.testing.assert_allclose(tab[tab["T"] == T].synops, mnist_conv_synops(g["xa"], T), rtol=1e-12)
    proxy = tab[tab.arch == "proxy45"]
    assert (proxy.macs == proxy["T"] * CONV1_MACS).all()               # conv1 charged at every step
    assert (tab[tab.arch != "proxy45"].macs == CONV1_MACS).all()       # evt45: once (as_run)
    np.testing.assert_allclose(proxy.energy_uJ * 1e6, AC_PJ * proxy.synops + MAC_PJ * proxy.macs, rtol=1e-12)
    for arch, d in tab.groupby("arch"):
        np.testing.assert_allclose(d["x one-shot"], d.energy_uJ / d[d["T"] == 1].energy_uJ.iloc[0], rtol=1e-12)
        groups = [c for c in d.columns if c.startswith("share ") and c != "share membrane traffic"]
        np.testing.assert_allclose(d[groups].sum(axis=1), 1, rtol=1e-9)     # the groups partition the total
    one_shot = tab[tab["T"] == 1]
    assert (one_shot.state_B == 0).all() and (one_shot["share membrane: state"] == 0).all()


def check_break_even(g):
    assert g["MACS"] == DENSE_MACS
    assert g["E_ANN_PROXY"] == pytest.approx(MAC_PJ * DENSE_MACS, rel=1e-12)
    tab = g["tab"]
    _finite(tab)
    for T in (1, 4):
        row = tab[(tab.threshold == 1.0) & (tab["T"] == T)].iloc[0]
        assert row.synops == pytest.approx(mnist_conv_synops(g["x"], T), rel=1e-12), T
    np.testing.assert_allclose(tab.proxy_ratio, (AC_PJ * tab.synops + MAC_PJ * tab["T"] * CONV1_MACS)
                               / (MAC_PJ * DENSE_MACS), rtol=1e-12)
    # break-even: where the ratio crosses 1 between two measured points, by linear interpolation
    cols = {"proxy45": "proxy_ratio", **{c[len("ratio "):]: c for c in tab.columns if c.startswith("ratio ")}}
    for _, b in g["be"].iterrows():
        d = tab[tab["T"] == b["T"]].sort_values("spikes_per_synapse")
        xs, rs = d.spikes_per_synapse.to_numpy(), d[cols[b.pricing]].to_numpy() - 1
        cross = [x0 - r0 * (x1 - x0) / (r1 - r0) for x0, x1, r0, r1 in zip(xs, xs[1:], rs, rs[1:])
                 if r0 * r1 <= 0 and r0 != r1]
        if cross:
            assert b.break_even_sps == pytest.approx(cross[0], rel=1e-12)
        else:
            assert np.isnan(b.break_even_sps) and ((rs > 0).all() or (rs < 0).all())


def check_training_memory(g):
    for name in ("t_sweep", "d_sweep"):
        d = g[name].dropna(subset=["per_image_kib"])
        _finite(d, ["per_image_kib", "step_ms"])
        assert (d.per_image_kib > 0).all() and (d.step_ms > 0).all()
    t = g["t_sweep"].dropna(subset=["per_image_kib"])
    mlp = t[t.family == "MLP"].pivot_table(index="T", columns="method", values="per_image_kib")
    # BPTT keeps every step for the backward pass: its memory grows with T; the online methods' does not
    assert (np.diff(mlp["bptt"].to_numpy()) > 0).all()
    assert mlp.drop(columns="bptt").nunique().eq(1).all(), mlp
    d = g["d_sweep"].dropna(subset=["per_image_kib"])
    rev = d[(d.family == "RevSNN chain") & (d.method == "reversible")]
    assert rev.per_image_kib.nunique() == 1, rev        # reversible: activations recomputed, not kept per block


def check_iir(g):
    assert g["E_ANN"]["proxy45"] == pytest.approx(MAC_PJ * DENSE_MACS, rel=1e-12)
    plain = g["plain"]
    _finite(plain.drop(columns=["weights", "regime"]))
    assert plain.accuracy.between(0, 1).all()
    for T in (5, 1):                             # the shipped weights: the proxy's ratio from independent counts
        row = plain[plain["T"] == T].iloc[0]
        e = AC_PJ * mnist_conv_synops(g["xte"], T) + MAC_PJ * T * CONV1_MACS
        assert row["E proxy45 (µJ)"] * 1e6 == pytest.approx(e, rel=1e-12)
        assert row["SNN/ANN proxy45"] == pytest.approx(e / (MAC_PJ * DENSE_MACS), rel=1e-12)
    assert plain[plain["T"] == 1]["state (B)"].iloc[0] == 0
    _finite(g["iir"].drop(columns=["weights", "regime"]))


def check_design_space(g):
    main = g["main"]
    feas = main[main.feasible]
    assert len(feas) > 0
    _finite(feas, ["energy_pj", "latency_ns", "dram_bytes"])
    # hwmodel's synaptic-op and MAC energy of every design from independent counts: 0.05 pJ per op, 0.30 per MAC
    # (evt45), conv1's MACs counted once (as_run)
    synops = mnist_conv_synops(g["x"], 4)
    np.testing.assert_allclose(main.e_synops, 0.05 * synops, rtol=1e-12)
    np.testing.assert_allclose(main.e_macs, 0.30 * CONV1_MACS, rtol=1e-12)
    # the fronts, by brute force over the feasible designs
    for front, cols in ((g["front"], ["energy_pj", "latency_ns"]),
                        (g["front3"], ["energy_pj", "latency_ns", "sram_kib"])):
        v = feas[cols].to_numpy()
        dominated = [bool(np.any(np.all(v <= r, axis=1) & np.any(v < r, axis=1))) for r in v]
        want = {tuple(r) for r, dom in zip(v, dominated) if not dom}
        got = {tuple(r) for r in front[cols].to_numpy()}
        assert got == want


CHECKS = {"01_energy_vs_T.py": check_energy_vs_T, "02_break_even_ann.py": check_break_even,
          "03_training_memory.py": check_training_memory, "04_iir_timesteps.py": check_iir,
          "05_design_space.py": check_design_space}
