"""Every shipped network gives bit-identical outputs, spikes and trace counts to those saved before the layer
registry refactor (tests/data/shipped_outputs.json, written by scripts/shipped_outputs.py)."""

import json

import pytest

from shipped_outputs import CASES, REFERENCE, case_id, digests, outputs

REF = json.loads(REFERENCE.read_text())


def test_every_shipped_network_is_covered():
    from shipped_outputs import ROOT

    shipped = {p.name for p in (ROOT / "networks").glob("*.yaml")} | {p.name for p in (ROOT / "networks").glob("*.npz")}
    covered = {y for y, _ in CASES} | {w for _, w in CASES if w}
    assert shipped == covered
    assert set(REF) == {case_id(y, w) for y, w in CASES}


@pytest.mark.parametrize("yaml,weights", CASES, ids=[case_id(y, w) for y, w in CASES])
def test_outputs_are_bit_identical(yaml, weights):
    got = digests(outputs(yaml, weights))
    want = REF[case_id(yaml, weights)]
    assert sorted(got) == sorted(want), "the set of spiking layers or trace records changed"
    changed = [f"{k}: shapes {want[k][1]} sum {want[k][3]} -> {got[k][1]} sum {got[k][3]}"
               for k in want if got[k] != want[k]]
    assert not changed, f"{len(changed)} arrays changed, first: " + "; ".join(changed[:5])
