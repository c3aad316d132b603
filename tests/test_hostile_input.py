"""Hostile and malformed input: each case ends in one line on stderr and exit status 2, within seconds.

The cases are the ones an outside review found ending in a traceback, a hang or a silent acceptance; the
generated corpus (tests/test_fuzz.py) covers the rest.
"""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np
import pytest
from click.testing import CliRunner

from snnsim.cli import main
from snnsim.errors import SpecError
from snnsim.layers import load_spec, parse_spec

NETWORKS = Path(__file__).resolve().parent.parent / "networks"
MLP = str(NETWORKS / "digits_mlp.yaml")

pytestmark = pytest.mark.timeout(60)


def refused(args, pattern=None, env=None):
    """Run the CLI in-process; assert exit 2, exactly one line, no traceback; return the line."""
    r = CliRunner().invoke(main, args, env=env)
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.output
    if pattern:
        assert pattern in lines[0], lines[0]
    return lines[0]


def _net(tmp_path, text, name="net.yaml"):
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(p)


BASE = "name: n\ninput_shape: [4]\nlayers:\n  - {name: fc, type: linear, out_features: 3}\n  - {name: sn, type: lif}\n"

LAUGHS = ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
          "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
          "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
          "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
          "description: *h\n")


def test_billion_laughs_is_refused_at_the_first_anchor(tmp_path):
    line = refused(["info", _net(tmp_path, BASE + LAUGHS)], "anchor (&a) is not allowed")
    assert "line 6" in line                       # the line of the first anchor, after BASE's 5 lines
    from hwmodel.arch import ArchError, load_arch

    with pytest.raises(ArchError, match=r"anchor \(&a\) is not allowed"):
        load_arch(_net(tmp_path, LAUGHS, "arch.yaml"))


def test_self_reference_and_deep_nesting_are_refused(tmp_path):
    refused(["info", _net(tmp_path, "x: &x [*x]\n")], "anchor")
    deep = "[" * 5000 + "]" * 5000
    refused(["info", _net(tmp_path, f"name: {deep}\n")], "nested too deeply")
    deep_res = "input_shape: [4]\nlayers: " + "[{type: residual, body: " * 60 + "[{type: lif}]" + "}]" * 60 + "\n"
    refused(["info", _net(tmp_path, deep_res)], "SNNSIM_MAX_DEPTH")


def test_not_utf8_and_non_text_keys(tmp_path):
    line = refused(["info", _net(tmp_path, b"name: \xff\xfe\n" + BASE.encode())], "not UTF-8")
    assert "byte offset 6" in line
    refused(["info", _net(tmp_path, BASE + "1: x\n")], "mapping keys must be text, got 1")
    refused(["info", _net(tmp_path, BASE + "[a]: x\n")], "mapping keys must be text")
    refused(["info", _net(tmp_path, BASE + "name: again\n")], "key 'name' appears twice")


@pytest.mark.parametrize("field, layer", [
    ("out_features", "{type: flatten}\n  - {type: linear, out_features: null}"),
    ("out_channels", "{type: conv2d, out_channels: null, kernel_size: 1}"),
    ("groups", "{type: conv2d, out_channels: 2, kernel_size: 1, groups: null}"),
    ("scale_factor", "{type: upsample, scale_factor: null}"),
    ("v_threshold", "{type: lif, v_threshold: null}"),
])
def test_null_in_a_typed_field_names_the_field(tmp_path, field, layer):
    text = f"input_shape: [2, 4, 4]\nlayers:\n  - {layer}\n"
    at = 1 if field == "out_features" else 0
    refused(["info", _net(tmp_path, text)], f"layers[{at}].{field}: expected")


def test_null_timesteps_and_columns(tmp_path):
    refused(["info", _net(tmp_path, BASE + "timesteps: null\n")], "timesteps: expected a positive integer, got null")
    text = "input_shape: [3, 8, 8]\nlayers:\n  - {type: trevsnn, columns: null, classes: 2}\n"
    refused(["info", _net(tmp_path, text)], "columns: expected a positive integer, got null")


@pytest.mark.parametrize("extra, pattern", [
    ("readout: ''\n", "readout: expected a mapping, got ''"),
    ("readout: 0\n", "readout: expected a mapping, got 0"),
    ("neuron_defaults: []\n", "neuron_defaults: expected a mapping, got a list"),
    ("weights: 7\n", "weights: expected a mapping"),
    ("description: [1]\n", "description: expected text"),
])
def test_wrong_kinds_of_sections_are_refused(tmp_path, extra, pattern):
    refused(["info", _net(tmp_path, BASE + extra)], pattern)


def test_clip_with_a_boolean_is_refused():
    raw = {"input_shape": [4], "layers": [{"type": "threshold", "clip": [True, 2]}]}
    with pytest.raises(SpecError, match=r"layers\[0\].clip: expected \[low, high\]"):
        parse_spec(raw)


def test_sizes_are_bounded_with_the_limit_and_its_variable_named(tmp_path, monkeypatch):
    wide = BASE.replace("out_features: 3", "out_features: 10000000000")
    line = refused(["info", _net(tmp_path, wide)], "more than the limit of 16,777,216")
    assert "SNNSIM_MAX_LAYER_SIZE" in line
    big = BASE.replace("out_features: 3", "out_features: 16000000").replace("[4]", "[4000]")
    line = refused(["info", _net(tmp_path, big, "big.yaml")], "limit of 250,000,000 parameters")
    assert "SNNSIM_MAX_PARAMS" in line
    # the documented way to raise it: the network is then accepted (info only counts, allocates nothing)
    r = CliRunner().invoke(main, ["info", str(tmp_path / "big.yaml")], env={"SNNSIM_MAX_PARAMS": "1e12"})
    assert r.exit_code == 0 and "total: 64016000000 parameters" in r.output, r.output   # 4000*16e6 weights + 16e6 biases
    text = "input_shape: [3, 8, 8]\nlayers:\n  - {type: trevsnn, columns: 100000000, classes: 2}\n"
    refused(["info", _net(tmp_path, text, "t.yaml")], "SNNSIM_MAX_TIMESTEPS")
    # within the T limit, but far too many layers: refused before the columns are built (it took minutes)
    trev = (NETWORKS / "trev_small.yaml").read_text()
    assert "columns: 4" in trev
    refused(["info", _net(tmp_path, trev.replace("columns: 4", "columns: 100000"), "c.yaml")],
            "100000 columns of 4 levels make at least 1,200,000 layers")
    refused(["info", _net(tmp_path, BASE + "timesteps: 1000000000\n", "T.yaml")], "SNNSIM_MAX_TIMESTEPS")


def test_huge_T_option_is_refused_before_work(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 64), np.float32))
    refused(["run", MLP, "--weights", str(tmp_path / "none.npz"), "-T", "5"], "weights file not found")
    r = CliRunner().invoke(main, ["init-weights", MLP, "-o", str(tmp_path / "w.npz")])
    assert r.exit_code == 0
    refused(["run", MLP, "--weights", str(tmp_path / "w.npz"), "--input", str(tmp_path / "x.npy"),
             "-T", "1000000000"], "-T/--timesteps: 1,000,000,000 is more than the limit of 100,000")


def test_limits_env_var_must_be_a_number(tmp_path):
    refused(["info", MLP], "SNNSIM_MAX_PARAMS='lots'", env={"SNNSIM_MAX_PARAMS": "lots"})


def test_file_size_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNSIM_MAX_FILE_BYTES", "100")
    with pytest.raises(SpecError, match=r"network file too large: .* more than the limit of 100 bytes"):
        load_spec(_net(tmp_path, BASE + "# " + "x" * 200 + "\n"))


def test_nir_metadata_with_a_wrong_value_is_an_error_not_a_default(tmp_path):
    nir = pytest.importorskip("nir")
    from snnsim.nir.importer import import_nir
    from snnsim.nir.io import NirError

    def write(meta, node_meta=None):
        lif = nir.LIF(tau=np.full(3, 2e-3), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3),
                      v_reset=np.zeros(3))
        if node_meta:
            lif.metadata = node_meta
        g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([4])}),
                                "fc": nir.Affine(np.ones((3, 4), np.float32), np.zeros(3, np.float32)), "lif": lif,
                                "output": nir.Output(output_type={"output": np.array([3])})},
                         edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], metadata=meta, type_check=False)
        path = tmp_path / "g.nir"
        nir.write(path, g)
        return path

    with pytest.raises(NirError, match="metadata 'spike_rule' is 'greater'; expected one of gt, ge"):
        import_nir(write({"dt": 1e-3, "spike_rule": "greater"}))
    with pytest.raises(NirError, match="node 'lif''s metadata 'spike_rule' is 'x'"):
        import_nir(write({"dt": 1e-3}, {"spike_rule": "x"}))
    with pytest.raises(NirError, match="metadata 'encoding' is 'poisson'"):
        import_nir(write({"dt": 1e-3, "encoding": "poisson"}))
    with pytest.raises(NirError, match="metadata 'dt' is -1.0"):
        import_nir(write({"dt": -1.0}))
    with pytest.raises(NirError, match="metadata 'timesteps' is 0"):
        import_nir(write({"dt": 1e-3, "timesteps": 0}))
    assert import_nir(write({"dt": 1e-3, "encoding": "rate"})).spec["encoding"] == "rate"


# ----------------------------------------------------------------------------- numbers at load
@pytest.fixture()
def mlp_files(tmp_path):
    r = CliRunner().invoke(main, ["init-weights", MLP, "-o", str(tmp_path / "w.npz"), "--seed", "1"])
    assert r.exit_code == 0, r.output
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((5, 64)).astype(np.float32))
    with np.load(tmp_path / "w.npz") as z:
        return tmp_path, dict(z)


def _run_with(tmp_path, weights, *extra):
    np.savez(tmp_path / "bad.npz", **weights)
    return refused(["run", MLP, "--weights", str(tmp_path / "bad.npz"), "--input", str(tmp_path / "x.npy"), *extra])


def test_negative_running_variance_is_refused_by_key(mlp_files):
    tmp_path, w = mlp_files
    w["bn1.running_var"] = w["bn1.running_var"].copy()
    w["bn1.running_var"][7] = -0.5
    line = _run_with(tmp_path, w)
    assert "key 'bn1.running_var': negative variance -0.5 (at flat index 7)" in line


def test_weights_that_fold_to_inf_are_refused_by_key(mlp_files):
    """gamma / sqrt(var + eps) with var = 0, gamma = 3e38: the folded weight is w * 3e38 / sqrt(1e-5) ~ 1e41,
    beyond float32; the run used to report an accuracy (with a numpy RuntimeWarning) and exit 0."""
    tmp_path, w = mlp_files
    w["bn1.running_var"] = np.zeros(128, np.float32)
    w["bn1.weight"] = np.full(128, 3e38, np.float32)
    line = _run_with(tmp_path, w)
    assert "'fc1.weight' is not finite (NaN or Inf) after folding batch norm 'bn1'" in line


def test_float64_weight_beyond_float32_and_nan_are_named(mlp_files):
    tmp_path, w = mlp_files
    w["fc2.bias"] = np.full(10, 1e300)
    assert "key 'fc2.bias': value 1e+300 (at flat index 0) is beyond float32's range" in _run_with(tmp_path, w)
    w["fc2.bias"] = np.array([0.0] * 9 + [np.nan])
    assert "key 'fc2.bias': contains NaN (at flat index 9)" in _run_with(tmp_path, w)


def test_transposed_weight_of_the_right_size_is_refused(mlp_files):
    tmp_path, w = mlp_files
    w["fc1.weight"] = np.ascontiguousarray(w["fc1.weight"].T)       # [64, 128]: same size as [128, 64]
    assert "key 'fc1.weight': expected shape [128, 64], found [64, 128]" in _run_with(tmp_path, w)


def test_files_of_the_wrong_kind_and_empty_or_misranked_inputs(mlp_files):
    tmp_path, w = mlp_files
    np.save(tmp_path / "w.npy", w["fc1.weight"])
    refused(["run", MLP, "--weights", str(tmp_path / "w.npy"), "--input", str(tmp_path / "x.npy")],
            "a single .npy array, not an .npz")
    refused(["run", MLP, "--weights", str(tmp_path / "w.npz"), "--input", str(tmp_path / "w.npz")],
            "--input " + str(tmp_path / "w.npz") + ": an .npz archive")
    np.save(tmp_path / "empty.npy", np.zeros((0, 64), np.float32))
    refused(["run", MLP, "--weights", str(tmp_path / "w.npz"), "--input", str(tmp_path / "empty.npy")],
            "at least one sample, got shape [0, 64]")
    np.save(tmp_path / "scalar.npy", np.float32(3))
    refused(["run", MLP, "--weights", str(tmp_path / "w.npz"), "--input", str(tmp_path / "scalar.npy")],
            "got shape []")
    np.save(tmp_path / "y.npy", np.array([0, 1, 2, 3, 10]))
    refused(["run", MLP, "--weights", str(tmp_path / "w.npz"), "--input", str(tmp_path / "x.npy"),
             "--labels", str(tmp_path / "y.npy")], "labels must be in 0..9")


def test_events_network_with_a_wrongly_ranked_input(tmp_path):
    net = _net(tmp_path, "input_shape: [4]\nencoding: events\nlayers:\n  - {type: linear, out_features: 3}\n"
                         "  - {type: lif}\n")
    r = CliRunner().invoke(main, ["init-weights", net, "-o", str(tmp_path / "w.npz")])
    assert r.exit_code == 0
    for shape, pattern in [((5, 4), "expected [T, N, ...] events"), ((4, 0, 4), "expected [T, N, ...] events"),
                           ((4, 2, 5), "events of shape [5] do not fit")]:
        np.save(tmp_path / "e.npy", np.zeros(shape, np.float32))
        refused(["run", net, "--weights", str(tmp_path / "w.npz"), "--input", str(tmp_path / "e.npy")], pattern)


# ----------------------------------------------------------------------------- outputs
def test_output_is_written_under_exactly_the_given_name(mlp_files):
    tmp_path, _ = mlp_files
    r = CliRunner().invoke(main, ["run", MLP, "--weights", str(tmp_path / "w.npz"), "--input", str(tmp_path / "x.npy"),
                                  "--output", str(tmp_path / "result.bin"), "--trace", str(tmp_path / "trace")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "result.bin").is_file() and not (tmp_path / "result.bin.npz").exists()
    assert (tmp_path / "trace").is_file() and not (tmp_path / "trace.npz").exists()
    with np.load(tmp_path / "result.bin") as z:
        assert z["output"].shape == (4, 5, 10)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("option", ["--output", "--trace"])
def test_output_folders_are_checked_before_any_work(mlp_files, option):
    tmp_path, _ = mlp_files
    # the weights do not exist either: the output error comes first, so nothing was loaded or run
    refused(["run", MLP, "--weights", str(tmp_path / "absent.npz"), "--input", str(tmp_path / "x.npy"),
             option, str(tmp_path / "no" / "such" / "out.npz")], f"{option} ")
    refused(["run", MLP, "--weights", str(tmp_path / "absent.npz"), "--input", str(tmp_path / "x.npy"),
             option, str(tmp_path)], "is a directory")


def test_train_report_and_checkpoint_folders_are_checked_before_training(tmp_path):
    for option in ("--report", "--checkpoint"):
        refused(["train", MLP, "--dataset", "digits", "--out", str(tmp_path / "w.npz"), "--epochs", "1",
                 option, str(tmp_path / "missing" / "x.json")], f"{option} {tmp_path / 'missing' / 'x.json'}: the folder")
    assert not (tmp_path / "w.npz").exists()


def test_a_full_disk_leaves_the_previous_file_intact(mlp_files, monkeypatch):
    """The writer fills part of the file, then the disk is full (ENOSPC): the user's previous output is unchanged
    byte for byte, no temporary file is left behind, and the error is one line."""
    import errno

    tmp_path, _ = mlp_files
    old = tmp_path / "out.npz"
    old.write_bytes(b"previous results")
    real = np.savez

    def full_disk(f, **arrays):
        real(f, **arrays)                          # most of the bytes reach the temporary file ...
        raise OSError(errno.ENOSPC, "No space left on device")    # ... then the disk is full

    monkeypatch.setattr(np, "savez", full_disk)
    line = refused(["run", MLP, "--weights", str(tmp_path / "w.npz"), "--input", str(tmp_path / "x.npy"),
                    "--output", str(old)], "No space left on device")
    assert "previous file of that name is unchanged" in line
    assert old.read_bytes() == b"previous results"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz", "w.npz", "x.npy"]
    line = refused(["init-weights", MLP, "-o", str(tmp_path / "w.npz")], "No space left on device")
    with np.load(tmp_path / "w.npz") as z:         # the weights file was not touched either
        assert "fc1.weight" in z.files


def test_train_on_arrays_with_bad_labels_or_a_scalar_input(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((6, 64)).astype(np.float32))
    np.save(tmp_path / "y.npy", np.array([0, 1, 2, 3, 4, 10]))
    np.save(tmp_path / "s.npy", np.float32(1))
    base = ["train", MLP, "--out", str(tmp_path / "w.npz"), "--epochs", "1"]
    refused(base + ["--input", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy")], "labels must be in 0..9")
    refused(base + ["--input", str(tmp_path / "s.npy"), "--labels", str(tmp_path / "y.npy")], "got shape []")


# ----------------------------------------------------------------------------- memory of a run (T x N)
def _header_only(path, shape):
    """A .npy file with only its header: it declares ``shape`` but holds no data, so any attempt to read it
    fails. A check that passes on it has run before the input was read."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return str(path)


def test_T_times_N_is_refused_before_the_input_is_read(mlp_files, monkeypatch):
    import snnsim.engine

    def no_run(*a, **k):  # pragma: no cover - reaching it is the failure
        raise AssertionError("the network ran before its memory was checked")

    monkeypatch.setattr(snnsim.engine, "run", no_run)
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 2)
    tmp_path, _ = mlp_files
    x = _header_only(tmp_path / "huge.npy", (100_000, 1, 8, 8))
    args = ["--weights", str(tmp_path / "w.npz"), "--input", x, "-T", "10000", "--batch-size", "100000"]
    # digits_mlp by hand (docs/robustness.md "Memory of a run"), float32, N = B = 100,000, T = 10,000:
    #   input    the file, 100,000 x 64 x 4 B (float32 already: no copy)        =     25,600,000
    #   outputs  T x N x 10 classes x 4 B                                      = 40,000,000,000
    #   batch    in chunks of 4,000 samples (100,000 x 128, the widest layer, is 24.4 x 2^19), one running on
    #            each of 2 threads: 2 x 4,000 x (3 x 128 + 128 + 10 LIF states) x 4 B =     16,704,000
    #   trace    T x (64 + 128 inputs of fc1 and fc2) x 4 B                     =      7,680,000
    line = refused(["run", MLP, *args])
    assert "40,049,984,000 is more than the limit of 8,589,934,592 bytes" in line and "SNNSIM_MAX_RUN_BYTES" in line
    assert "-T 10000 x 100,000 samples (batches of 100,000)" in line and "37.3 GiB" in line
    assert refused(["hw", MLP, *args]) == line
    # --limit takes the first samples only: 100 x T=10000 fits, and then the (empty) file is read
    refused(["run", MLP, *args, "--limit", "100"], "cannot read a .npy array")


def test_T_times_N_limit_on_a_dataset_and_raising_it(mlp_files):
    tmp_path, _ = mlp_files
    args = ["run", MLP, "--weights", str(tmp_path / "w.npz"), "--dataset", "digits", "-T", "50"]
    # 359 test digits at T=50, batches of 64, by hand: input 359 x 64 x 4 = 91,904; outputs 50 x 359 x 10 x 4 =
    # 718,000; batch 64 x (3 x 128 x 50 timesteps side by side (64 x 128 x 50 values are within the engine's 2**19
    # a window) + 138) x 4 = 4,950,528; trace 50 x 192 x 4 = 38,400; 5,798,832 B in all
    refused(args, "5,798,832 is more than the limit of 5,000,000 bytes", env={"SNNSIM_MAX_RUN_BYTES": "5e6"})
    r = CliRunner().invoke(main, args, env={"SNNSIM_MAX_RUN_BYTES": "6e6"})
    assert r.exit_code == 0 and "359 samples, T=50" in r.output, r.output
    # --save keeps spikes, membrane and charge [T, N, neurons] of both LIF layers: 3 x 50 x 359 x 138 x 4 B more
    refused(args + ["--output", str(tmp_path / "o.npz"), "--save", "spikes"], "35,524,032 is more than",
            env={"SNNSIM_MAX_RUN_BYTES": "3e7"})
    assert not (tmp_path / "o.npz").exists()


def test_hw_T_is_bounded():
    refused(["hw", MLP, "--weights", str(NETWORKS / "digits_mlp.npz"), "--dataset", "digits", "-T", "1000000000"],
            "-T/--timesteps: 1,000,000,000 is more than the limit of 100,000 timesteps")


@pytest.mark.parametrize("name, T, B", [("digits_mlp", 16, 359), ("mnist_conv", 8, 32), ("cifar_sew_resnet", 4, 16)])
def test_run_memory_estimate_is_near_the_measured_peak(name, T, B):
    """The estimate against what the run really allocates (tracemalloc's peak of numpy's allocations during
    the run, the input excluded as it exists before): within a factor of two either way."""
    import tracemalloc

    from snnsim.cli.memory import run_memory
    from snnsim.engine import run
    from snnsim.network import build_network
    from snnsim.weights import random_weights

    spec = load_spec(NETWORKS / f"{name}.yaml")
    net = build_network(spec, random_weights(spec, 0))
    x = np.random.default_rng(0).random((B,) + tuple(spec.input_shape)).astype(np.float32)
    run(net, x[:1], timesteps=1)                 # compile first: Numba's own allocations are not the run's
    tracemalloc.start()
    try:
        run(net, x, timesteps=T, batch_size=B)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    est = sum(run_memory(spec, T, B, B).values())
    assert peak / 2 < est < 2 * peak, (est, peak)


def test_train_T_times_batch_is_refused_before_training(tmp_path):
    # digits_mlp, BPTT keeps every step: 1,438 training digits (a batch) x T=10000 x (64 + 128 + 128 + 128 + 10
    # + 10 layer outputs) x 4 B = 26,919,360,000 B; OTTT holds one step: 2,691,936 B
    args = ["train", MLP, "--dataset", "digits", "--out", str(tmp_path / "w.npz"), "-T", "10000",
            "--batch-size", "100000"]
    line = refused(args, "26,919,360,000 is more than the limit of 8,589,934,592 bytes")
    assert "--method bptt -T 10000" in line and "SNNSIM_MAX_RUN_BYTES" in line and "ottt or saf" in line
    refused(args + ["--method", "ottt"], "2,691,936 is more than the limit of 1,000,000",
            env={"SNNSIM_MAX_RUN_BYTES": "1e6"})
    assert not (tmp_path / "w.npz").exists()


@pytest.mark.parametrize("name, method, bound", [("digits_mlp_soft", "bptt", 2), ("digits_mlp_soft", "ottt", 2),
                                                 ("digits_mlp_soft", "saf", 2), ("mnist_conv", "bptt", 2),
                                                 ("mnist_revnet", "reversible", 4)])
def test_train_memory_estimate_is_near_the_measured_peak(name, method, bound):
    """The estimate against the training loop's own count of the bytes a step holds for its backward pass
    (snnsim.train.memory): within a factor of two (four for reversible training, whose estimate keeps a whole
    block's outputs at every step)."""
    from snnsim.cli.memory import train_memory
    from snnsim.train.loop import TrainConfig, init_params, train

    spec = load_spec(NETWORKS / f"{name}.yaml")
    cfg = TrainConfig(dataset="digits" if name.startswith("digits") else "mnist", method=method, timesteps=(4,),
                      epochs=1, batch_size=16, limit=16, eval_limit=4)
    peak = train(spec, init_params(spec, 0), cfg).memory["peak_bytes"]
    est = train_memory(spec, method, 4, 16, 16)
    assert peak / 2 < est < bound * peak, (est, peak)
