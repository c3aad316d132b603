"""`snnsim hw --out DIR`: the folder is checked before any work, and every file is written atomically, so a
failed write leaves the user's previous results whole."""

import errno
from pathlib import Path

from click.testing import CliRunner

from snnsim.cli import main
from snnsim.layers import load_spec
from snnsim.weights import random_weights, save_npz

NET = str(Path(__file__).resolve().parents[1] / "networks" / "digits_mlp.yaml")


def _weights(tmp_path):
    w = tmp_path / "w.npz"
    save_npz(w, random_weights(load_spec(NET), 0))
    return str(w)


def test_out_that_is_a_file_fails_before_any_run(tmp_path, monkeypatch):
    import snnsim.engine

    def no_run(*a, **k):  # pragma: no cover - reaching it is the failure
        raise AssertionError("the network ran before --out was checked")

    monkeypatch.setattr(snnsim.engine, "run", no_run)
    blocker = tmp_path / "results"
    blocker.write_text("mine")
    r = CliRunner().invoke(main, ["hw", NET, "--weights", _weights(tmp_path), "--dataset", "digits", "--limit", "4",
                                  "--out", str(blocker)])
    assert r.exit_code == 2, r.output
    assert r.output.strip().count("\n") == 0 and "--out" in r.output and "is a file" in r.output
    assert blocker.read_text() == "mine"


def test_failed_write_keeps_previous_results(tmp_path, monkeypatch):
    w = _weights(tmp_path)
    out = tmp_path / "out"
    args = ["hw", NET, "--weights", w, "--dataset", "digits", "--limit", "4", "-T", "2", "--out", str(out)]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"hw_regimes.csv", "hw_energy.png"} <= set(before)

    import snnsim.outputs as outputs

    real = outputs.os.fsync
    calls = {"n": 0}

    def disk_full(fd):            # the third file's write fails as a full disk would
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(outputs.os, "fsync", disk_full)
    r = CliRunner().invoke(main, args[:-4] + ["--limit", "3", "-T", "3", "--out", str(out)])
    assert r.exit_code == 2, r.output
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("error: --out") and "No space left" in last and "unchanged" in last
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(after) == set(before), "no temporary file is left behind"
    assert after["hw_regimes.csv"] != before["hw_regimes.csv"]        # written first: the new run's (T=3)
    assert after["hw_mappings.csv"] == before["hw_mappings.csv"]      # its write failed: the old file, whole
