"""A sample's price does not depend on the other samples it is run with.

The reference is the definition itself: every sample run and priced alone (a batch of one), independently
of the batched run. Everything is per inference, so the batch's counts, dynamic energy, latency and static
energy (leakage over that latency) must equal the mean of the single-sample ones, for any subset and any
batch size, with every sample on its own best mappings. The network is the shipped SEW-ResNet, whose
'ADD' shortcuts feed sums of spikes (0, 1, 2) into the next convolutions: at some layer and step some
samples' inputs are binary and others' are not, which is what a run-wide spike-or-MAC decision gets wrong;
and latency is a max over compute, memory and NoC per step, which the mean sample's counts get wrong.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwmodel import count, load_arch, price
from snnsim.data import load_dataset, pad_to_shape
from snnsim.engine import run
from snnsim.network import build_network
from snnsim.layers import load_spec
from snnsim.trace import SAMPLE_ARRAYS
from snnsim.weights import random_weights

NETWORKS = Path(__file__).resolve().parent.parent / "networks"
T = 2
POOL = 12
COLS = ["synops", "macs_dense", "macs_nz", "entries_binary", "entries_analog", "dense_w_reads", "addr_add"]


@pytest.fixture(scope="module")
def sew():
    spec = load_spec(NETWORKS / "cifar_sew_resnet.yaml")
    net = build_network(spec, random_weights(spec, 1))
    x, _ = load_dataset("mnist").split("test")
    x = np.ascontiguousarray(pad_to_shape(x[:POOL], spec.input_shape), dtype=np.float32)
    alone = [run(net, x[i:i + 1], timesteps=T, batch_size=1).trace for i in range(POOL)]
    return net, x, alone


def _mixed(trace):
    """(layer, t) where some samples' inputs were binary and others' were not."""
    return [(r.name, t) for r in trace.layers if r.analog_samples is not None
            for t in range(T) if 0 < r.analog_samples[t] < trace.samples and r.computed[t]]


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(idx=st.lists(st.integers(0, POOL - 1), min_size=2, max_size=POOL, unique=True),
       batch_size=st.sampled_from([1, 3, 64]))
def test_price_of_a_sample_is_the_same_alone_or_in_any_batch(sew, idx, batch_size):
    net, x, alone = sew
    batch = run(net, x[idx], timesteps=T, batch_size=batch_size).trace
    arch = load_arch("evt45")
    together = count(batch)
    singles = [count(alone[i]) for i in idx]
    for col in COLS:
        mean = np.mean([s.rows[col].to_numpy() for s in singles], axis=0)
        np.testing.assert_allclose(together.rows[col].to_numpy(), mean, rtol=1e-9, atol=1e-9, err_msg=col)
    # latency (a max over resources per step), the leakage over it and the mapping each sample runs on are
    # not linear in the counts: each sample is priced by itself, alone or in the batch
    keys = ("energy_pj", "e_static", "latency_ns", "proxy_pj", "dram_bytes")
    for mapping in (None, "fixed:timestep_outer"):
        got = price(together, arch, mapping=mapping).totals
        want = [price(s, arch, mapping=mapping).totals for s in singles]
        for k in keys:
            assert got[k] == pytest.approx(np.mean([w[k] for w in want]), rel=1e-9), (k, mapping)


def test_the_network_mixes_binary_and_analog_samples(sew):
    """The property above is only a test if some layer sees both kinds in one batch; and the peers'
    run-wide decision does depend on the batch there."""
    net, x, alone = sew
    batch = run(net, x, timesteps=T).trace
    assert _mixed(batch)
    run_wide = count(batch, binary="per_run").rows.synops.sum()
    singles = np.mean([count(a, binary="per_run").rows.synops.sum() for a in alone])
    assert run_wide != pytest.approx(singles, rel=1e-6)
    # and the latency of the mean sample (the batch priced without its per-sample counts) is not the mean
    # latency of the samples
    arch = load_arch("evt45")
    mean_sample = copy.deepcopy(batch)
    for rec in mean_sample.layers:
        for k in SAMPLE_ARRAYS:
            setattr(rec, k, None)
    assert set(count(batch).per_sample) >= {"synops", "macs_nz", "spikes_out", "packets"}   # priced per sample
    assert not count(mean_sample).per_sample
    alone_ns = np.mean([price(a, arch).totals["latency_ns"] for a in alone])
    assert price(batch, arch).totals["latency_ns"] == pytest.approx(alone_ns, rel=1e-9)
    assert price(mean_sample, arch).totals["latency_ns"] != pytest.approx(alone_ns, rel=1e-4)
