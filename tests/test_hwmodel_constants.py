"""Preset constants and their sources, the SRAM law, static power and the Loihi refusal of graded inputs."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hwmodel import load_arch, presets, price
from hwmodel.arch import CONSTANTS_CSV, ArchError
from snnsim.errors import SnnsimError

from test_hwmodel import fc_trace

NETWORKS = Path(__file__).resolve().parent.parent / "networks"


def test_every_preset_constant_has_a_source_in_hw_constants_csv():
    with open(CONSTANTS_CSV, newline="") as f:
        rows = {(r["preset"], r["constant"]): r for r in csv.DictReader(f)}
    seen = set()
    for name in presets():
        for c in load_arch(name).constants().itertuples():
            row = rows.get((name, c.constant))
            assert row is not None, f"{name}: {c.constant} is not in {CONSTANTS_CSV.name}"
            assert row["value"] == str(c.value), f"{name}: {c.constant} is {c.value} but the CSV says {row['value']}"
            assert row["source"].strip(), f"{name}: {c.constant} has no source"
            assert row["source"] == c.source, f"{name}: {c.constant}: the CSV's source is stale"
            seen.add((name, c.constant))
    assert set(rows) == seen, f"stale rows in the CSV: {sorted(set(rows) - seen)}"


def test_sram_energy_follows_horowitz_without_a_floor():
    """Horowitz 2014 (45 nm, 64-bit read): 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ; between them straight lines in
    log-log, below 8 KB the 8-32 KB line, E = 10 * (size / 8 KiB)^0.5 (a factor 2 per factor 4 in size)."""
    law = load_arch("evt45").sram
    sizes = np.array([8192, 32768, 1 << 20, 2048, 512, 64])
    want = [10, 20, 100, 5, 2.5, 10 * (64 / 8192) ** 0.5]
    np.testing.assert_allclose(law.access_pj(sizes), want, rtol=1e-12)
    # between 32 KiB and 1 MiB: the line through (32 K, 20) and (1 M, 100); at 128 KiB the exponent is
    # log(5)/log(32) per factor of size
    assert float(law.access_pj(131072)) == pytest.approx(20 * 4 ** (np.log(5) / np.log(32)))


def test_static_energy_is_leakage_times_latency():
    """evt45: 4 cores x (64 + 16 + 8) KiB = 352 KiB of SRAM at 0.182 mW/KiB, plus 4 x 0.0023 mW of logic;
    mW x ns = pJ."""
    rep = price(fc_trace(), load_arch("evt45"))
    p_mw = 352 * 0.182 + 4 * 0.0023
    assert rep.totals["e_static"] == pytest.approx(p_mw * rep.totals["latency_ns"], rel=1e-12)
    assert rep.totals["e_static"] > 0


def test_loihi_refuses_graded_inputs_naming_the_layer():
    from snnsim.cli.hw import hw

    r = CliRunner().invoke(hw, [str(NETWORKS / "mnist_conv.yaml"), "--weights", str(NETWORKS / "mnist_conv.npz"),
                                "--dataset", "mnist", "--limit", "4", "--arch", "loihi"])
    assert r.exit_code == 2
    line = r.output.strip().splitlines()[-1]
    assert "conv1" in line and "graded" in line and "Traceback" not in r.output
    # spikes only (the hand-built fc trace): priced
    assert price(fc_trace(), load_arch("loihi")).totals["energy_pj"] > 0


def test_loihi_refusal_is_an_snnsim_error():
    from test_hwmodel import synaptic

    tr = fc_trace()
    tr.layers[0] = synaptic("fc1", "linear", (4,), (3,), dict(in_features=4, out_features=3, bias=True),
                            [[1, 0, 1, 0], [1, 1, 1, 0]], 12, 3, binary=False)
    with pytest.raises(ArchError, match="layer 'fc1' receives graded") as err:
        price(tr, load_arch("loihi"))
    assert isinstance(err.value, SnnsimError) and "\n" not in str(err.value)
