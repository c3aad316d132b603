"""A batch runs as chunks of samples side by side on the kernel threads (``snnsim.engine.chunk_bounds``,
``snnsim.kernels.threads.parts``). Checked against independent runs: each chunk run alone (outputs, probes and
every trace count), the whole batch unchunked where the kernel forms are forced (the kernels round every sample
as it would be alone), one thread against two, and the thread helpers' order, errors and nesting."""

import threading
from pathlib import Path

import numba
import numpy as np
import pytest

import snnsim.engine as engine
from snnsim.engine import chunk_bounds, run
from snnsim.kernels import threads
from snnsim.layers import load_spec, parse_spec
from snnsim.network import build_network
from snnsim.weights import random_weights
from small_nets import FEEDFORWARD

f32 = np.float32
NETWORKS = Path(__file__).resolve().parent.parent / "networks"

SPEC = dict(FEEDFORWARD, timesteps=3)
LARGEST = 6 * 8 * 8                      # the conv's output per sample
COUNTS = ("computed", "events_in", "binary_in", "events_out", "neuron_updates", "event_map", "analog_samples",
          "event_map_analog")
PER_SAMPLE = ("sample_events_in", "sample_events_out", "sample_reach", "sample_analog")


def test_chunk_bounds_by_hand():
    resnet = (16 * 32 * 32, 172180)         # the SEW-ResNet's largest activation and all of them, per sample
    assert chunk_bounds(0, 64, *resnet) == [(0, 32), (32, 64)]                          # 2 chunks
    assert chunk_bounds(0, 256, *resnet) == [(32 * k, 32 * k + 32) for k in range(8)]   # 32 x 16384 = 2^19
    assert chunk_bounds(0, 16, *resnet) == [(0, 8), (8, 16)]                            # 8 samples at least
    assert chunk_bounds(0, 15, *resnet) == [(0, 15)]
    mlp = (128, 340)                        # the digits MLP: 2^16 activations a chunk take 193 samples
    assert chunk_bounds(0, 64, *mlp) == [(0, 64)]
    assert chunk_bounds(0, 1024, *mlp) == [(0, 512), (512, 1024)]
    assert chunk_bounds(0, 385, *mlp) == [(0, 385)]                          # 2 x 193 samples for 2 chunks
    assert chunk_bounds(0, 386, *mlp) == [(0, 193), (193, 386)]
    assert chunk_bounds(64, 100, *mlp) == [(64, 100)]
    # the cache bound alone: 7 samples of 2^18 at 2 a chunk, as even as can be
    assert chunk_bounds(10, 17, 2 ** 18, 10) == [(10, 11), (11, 13), (13, 15), (15, 17)]
    assert chunk_bounds(0, 3, 2 ** 22, 1) == [(0, 1), (1, 2), (2, 3)]    # larger than a chunk: one sample each
    assert chunk_bounds(5, 6, 2 ** 22, 1) == [(5, 6)]


def _net(seed=2, **spec):
    s = parse_spec({**SPEC, **spec})
    return build_network(s, {k: v * f32(3) if k.endswith("weight") else v + f32(0.3)
                             for k, v in random_weights(s, seed).items()})


def _same_trace(a, b):
    assert a.samples == b.samples
    for ra, rb in zip(a.layers, b.layers, strict=True):
        assert ra.name == rb.name and ra.form == rb.form, ra.name
        for key in COUNTS + PER_SAMPLE:
            va, vb = getattr(ra, key), getattr(rb, key)
            assert (va is None) == (vb is None), f"{ra.name} {key}"
            if va is not None:
                np.testing.assert_array_equal(va, vb, err_msg=f"{ra.name} {key}")


@pytest.fixture
def spy(monkeypatch):
    """The chunk counts the engine handed to ``parts``, CHUNK_ELEMS set to three samples of SPEC's largest
    layer (a batch of 7 runs as chunks of 2, 2 and 3)."""
    monkeypatch.setattr(engine, "CHUNK_ELEMS", 3 * LARGEST)
    seen = []

    def parts(fn, n):
        seen.append(n)
        return threads.parts(fn, n)

    monkeypatch.setattr(engine, "parts", parts)
    return seen


@pytest.mark.parametrize("encoding", ["direct", {"type": "rate", "seed": 3}])
@pytest.mark.parametrize("form", ["auto", "dense", "event"])
def test_a_chunked_batch_is_its_chunks_run_alone(spy, encoding, form):
    net = _net(encoding=encoding)
    x = np.random.default_rng(4).random((9, 2, 8, 8), dtype=f32)
    probes = ["sn1", "block.sn", "fc"]
    whole = run(net, x, form=form, probes=probes, batch_size=7)            # batches 0-6 and 7-8
    assert spy == [3, 1]
    bounds = [(0, 2), (2, 4), (4, 7), (7, 9)]
    alone = [run(net, x[a:b], form=form, probes=probes, batch_size=7, first_index=a) for a, b in bounds]
    np.testing.assert_array_equal(whole.outputs, np.concatenate([r.outputs for r in alone], axis=1))
    assert whole.outputs.any() and not whole.outputs.all()
    for name in probes:
        for key in alone[0].trace.probes[name]:
            np.testing.assert_array_equal(whole.trace.probes[name][key],
                                          np.concatenate([r.trace.probes[name][key] for r in alone], axis=1))
    assert whole.trace.samples == 9
    for k, rec in enumerate(whole.trace.layers):
        parts = [r.trace.layers[k] for r in alone]
        for key in COUNTS:
            vals = [getattr(p, key) for p in parts]
            if vals[0] is None:
                assert getattr(rec, key) is None, f"{rec.name} {key}"
            elif key in ("computed", "binary_in"):
                np.testing.assert_array_equal(getattr(rec, key), np.logical_and.reduce(vals), err_msg=rec.name)
            else:
                np.testing.assert_array_equal(getattr(rec, key), sum(vals), err_msg=f"{rec.name} {key}")
        for key in PER_SAMPLE:
            vals = [getattr(p, key) for p in parts]
            if vals[0] is not None:
                np.testing.assert_array_equal(getattr(rec, key), np.concatenate(vals, axis=1),
                                              err_msg=f"{rec.name} {key}")
        assert rec.form == [f[0] if len(set(f)) == 1 else "mixed" for f in zip(*(p.form for p in parts))]


@pytest.mark.parametrize("form", ["dense", "event"])
def test_chunks_change_no_bit_of_a_forced_form(monkeypatch, form):
    """With the form forced, every kernel rounds each sample as alone: chunked and whole batches agree."""
    net = _net(seed=5)
    x = np.random.default_rng(7).random((7, 2, 8, 8), dtype=f32)
    whole = run(net, x, form=form, batch_size=7)
    monkeypatch.setattr(engine, "CHUNK_ELEMS", LARGEST)               # one sample a chunk
    chunked = run(net, x, form=form, batch_size=7)
    np.testing.assert_array_equal(chunked.outputs, whole.outputs)
    _same_trace(chunked.trace, whole.trace)


def test_results_do_not_depend_on_the_threads(spy, monkeypatch):
    net = _net(seed=6)
    x = np.random.default_rng(8).random((7, 2, 8, 8), dtype=f32)
    two = run(net, x, batch_size=7, probes=["sn1"])
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 1)
    one = run(net, x, batch_size=7, probes=["sn1"])
    assert spy == [3, 3]
    np.testing.assert_array_equal(one.outputs, two.outputs)
    np.testing.assert_array_equal(one.spikes("sn1"), two.spikes("sn1"))
    _same_trace(one.trace, two.trace)


def test_a_trev_network_runs_in_chunks(monkeypatch):
    spec = load_spec(NETWORKS / "trev_small.yaml")
    net = build_network(spec, random_weights(spec, 1))
    x = np.random.default_rng(9).random((3, 3, 32, 32), dtype=f32)
    monkeypatch.setattr(engine, "CHUNK_ELEMS", 1)                       # one sample a chunk
    chunked = run(net, x, timesteps=4)
    alone = [run(net, x[i:i + 1], timesteps=4) for i in range(3)]
    np.testing.assert_array_equal(chunked.outputs, np.concatenate([r.outputs for r in alone], axis=1))
    for k, rec in enumerate(chunked.trace.layers):
        np.testing.assert_array_equal(rec.events_in, sum(r.trace.layers[k].events_in for r in alone), rec.name)
        np.testing.assert_array_equal(rec.events_out, sum(r.trace.layers[k].events_out for r in alone), rec.name)


# ----------------------------------------------------------------------------- the thread helpers
@pytest.fixture
def two_threads(monkeypatch):
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 2)


def test_parts_keep_the_order_and_use_both_threads(two_threads):
    idents = set()
    gate = threading.Barrier(2, timeout=10)

    def fn(i):
        idents.add(threading.get_ident())
        if i < 2:
            gate.wait()       # the first two parts meet: they run at the same time, on two threads
        return i * i

    assert threads.parts(fn, 6) == [i * i for i in range(6)]
    assert len(idents) == 2


def test_a_split_inside_a_part_stays_on_its_thread(two_threads):
    calls = []

    def kernel(lo, hi):
        calls.append((threading.get_ident(), lo, hi))

    def fn(i):
        threads.split(kernel, 10)
        inner = threads.parts(lambda j: threading.get_ident(), 3)      # nested parts: serial too
        return threading.get_ident(), inner

    got = []
    runner = threading.Thread(target=lambda: got.append(threads.parts(fn, 4)), daemon=True)
    runner.start()
    runner.join(60)
    assert got, "parts with a split inside did not finish: the two levels of threads waited for each other"
    for ident, inner in got[0]:
        assert inner == [ident] * 3
    assert sorted(c[1:] for c in calls) == [(0, 10)] * 4
    threads.split(kernel, 10)              # outside a part: split in two again
    assert sorted(c[1:] for c in calls[4:]) == [(0, 5), (5, 10)]


def test_the_first_failing_part_is_raised_after_the_others(two_threads):
    done = []

    def fn(i):
        if i in (1, 3):
            raise ValueError(f"part {i}")
        done.append(i)
        return i

    with pytest.raises(ValueError, match="part 1"):
        threads.parts(fn, 2)
    with pytest.raises(ValueError, match="part 1"):
        threads.parts(fn, 5)
    assert threads.parts(lambda i: i, 3) == [0, 1, 2]          # the pool still works


def test_parts_do_not_wait_for_a_busy_pool(two_threads):
    """Another caller's work holds the pool's thread: parts runs every part on the calling thread and returns
    without waiting for it (two runs on two user threads do not wait for each other's end)."""
    release = threading.Event()
    blocker = threads._get_pool().submit(release.wait, 60)
    try:
        got = []
        runner = threading.Thread(target=lambda: got.append(threads.parts(lambda i: (i, threading.get_ident()), 4)),
                                  daemon=True)
        runner.start()
        runner.join(30)
        assert got, "parts waited for the pool's thread, busy with another caller's work"
        assert [i for i, _ in got[0]] == [0, 1, 2, 3] and {t for _, t in got[0]} == {runner.ident}
    finally:
        release.set()
        blocker.result()
