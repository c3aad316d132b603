"""The hostile-input corpus as a test: generated bad specs, architecture files, weights, inputs, options and NIR
files go through the CLI, and every one must end with exit status 2 and one line on stderr, no traceback, no
hang, and no output file touched.

Every generated case is invalid by construction (a value of the wrong type, out of range, a broken file), so
an exit 0 is a silent acceptance and fails the test. Hypothesis draws the cases with ``derandomize=True``: the
same corpus on every run and machine. The bulk runs in-process through click's ``CliRunner`` (milliseconds a
case); ``test_subprocess_sample`` sends a few through a real ``snnsim`` process. The number of cases is printed
in pytest's summary. ``SNNSIM_FUZZ_SCALE=10 pytest tests/test_fuzz.py`` runs ten times as many.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from snnsim.cli import main

SCALE = float(os.environ.get("SNNSIM_FUZZ_SCALE", "1"))
CASE_SECONDS = 20          # a case still running after this is a hang
COUNTS: dict[str, int] = {}
ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(int(600 * max(1.0, SCALE)))


def fuzz_settings(n):
    return settings(max_examples=max(1, int(n * SCALE)), derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=False)


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


@contextlib.contextmanager
def time_limit(what):
    """Fails the test as a hang if the block runs longer than CASE_SECONDS."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    try:
        yield
    except _Hang:
        pytest.fail(f"hang (> {CASE_SECONDS} s): {what}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def count(kind):
    COUNTS[kind] = COUNTS.get(kind, 0) + 1


def refused(args, kind, watched=(), env=None):
    """Invoke the CLI in-process; assert exit 2, one 'error:' line, no traceback, no hang, watched files
    unchanged. Counts the case under ``kind``."""
    before = {p: (p.read_bytes() if p.exists() else None) for p in map(Path, watched)}
    dirs = {p.parent for p in before}
    listing = {d: sorted(os.listdir(d)) for d in dirs}
    command = f"snnsim {' '.join(map(str, args))}"
    with time_limit(command):
        r = CliRunner().invoke(main, [str(a) for a in args], env=env)
    if isinstance(r.exception, _Hang):             # the runner caught it
        pytest.fail(f"hang (> {CASE_SECONDS} s): {command}")
    shown = f"{command}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert r.exception is None or isinstance(r.exception, SystemExit), f"traceback ({r.exception!r}) for {shown}"
    assert r.exit_code == 2, f"exit {r.exit_code} (silent acceptance?) for {shown}"
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), f"not one error line for {shown}"
    assert "Traceback" not in r.output
    for p, content in before.items():
        assert (p.read_bytes() if p.exists() else None) == content, f"{p} was touched by {shown}"
    for d, names in listing.items():
        assert sorted(os.listdir(d)) == names, f"files appeared in {d}: {shown}"
    count(kind)
    return lines[0]


# ----------------------------------------------------------------------------- a small valid world
BASE_SPEC = {
    "name": "fuzz",
    "input_shape": [1, 6, 6],
    "timesteps": 3,
    "encoding": "direct",
    "readout": {"reduce": "mean", "source": "output"},
    "neuron_defaults": {"lif": {"tau": 2.0, "v_threshold": 1.0}},
    "layers": [
        {"name": "conv", "type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1, "stride": 1},
        {"name": "bn", "type": "batchnorm2d"},
        {"name": "sn1", "type": "lif"},
        {"name": "block", "type": "residual",
         "body": [{"name": "c", "type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
                  {"name": "s", "type": "if"}]},
        {"name": "pool", "type": "avgpool2d", "kernel_size": 2},
        {"name": "flat", "type": "flatten"},
        {"name": "drop", "type": "dropout", "p": 0.1},
        {"name": "fc", "type": "linear", "out_features": 3},
        {"name": "sn2", "type": "lif", "decay_input": True, "spike_rule": "ge"},
    ],
}


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True


def dump(raw) -> str:
    return yaml.dump(raw, Dumper=_NoAliases, sort_keys=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    (d / "net.yaml").write_text(dump(BASE_SPEC))
    r = CliRunner().invoke(main, ["init-weights", str(d / "net.yaml"), "-o", str(d / "w.npz"), "--seed", "1"])
    assert r.exit_code == 0, r.output
    x = np.random.default_rng(0).random((4, 1, 6, 6)).astype(np.float32)
    np.save(d / "x.npy", x)
    np.save(d / "y.npy", np.array([0, 1, 2, 1]))
    (d / "out").mkdir()
    (d / "out" / "old.npz").write_bytes(b"the user's previous results")
    r = CliRunner().invoke(main, ["run", str(d / "net.yaml"), "--weights", str(d / "w.npz"), "--input",
                                  str(d / "x.npy"), "--labels", str(d / "y.npy")])
    assert r.exit_code == 0, r.output                  # the valid world runs: every case below breaks one thing
    with np.load(d / "w.npz") as z:
        weights = dict(z)
    return d, weights


def run_args(d, weights="w.npz", inp="x.npy", net="net.yaml", extra=()):
    return ["run", d / net, "--weights", d / weights, "--input", d / inp, "--output", d / "out" / "old.npz",
            *extra]


def watched(d):
    return [d / "out" / "old.npz"]


# ----------------------------------------------------------------------------- specs
# Values that are invalid for a field of the given kind (each one alone makes the spec invalid).
BAD = {
    "count": [None, True, False, 0, -1, 2.5, "3", [], {}, [3], 10 ** 12, 2 ** 70, float("nan")],
    "size": [None, True, 0, -2, 1.5, "2", {}, [1, 2, 3], [0, 1], [True, 1], 10 ** 10],
    "pad": [None, True, -1, 1.5, "1", {}, [1, 2, 3], [-1, 0], 10 ** 10],
    "posfloat": [None, True, "x", [], {}, 0, -1.0, float("inf"), float("nan"), 10 ** 400],
    "float": [True, "x", [], {}, float("inf"), float("-inf"), float("nan"), 10 ** 400],
    "bool": [None, 0, 1, "true", [], {}, 2.0],
    "str": [None, 1, 2.5, True, [], {}],
    "choice": [None, 1, True, [], {}, "", "bogus", "MEAN"],
    "section": ["", 0, 1, [], "x", True, [{}]],
    "list": [None, 0, "", "x", {}, True],
}

TOP = {
    ("name",): "str", ("input_shape",): "shape", ("timesteps",): "count", ("encoding",): "choice",
    ("readout",): "section", ("readout", "reduce"): "choice", ("readout", "source"): "choice",
    ("neuron_defaults",): "section", ("neuron_defaults", "lif"): "section", ("neuron_defaults", "lif", "tau"): "tau",
    ("fold_batchnorm",): "bool", ("description",): "str", ("layers",): "layers",
}
LAYER = {
    0: {"out_channels": "count", "kernel_size": "size", "padding": "pad", "stride": "size", "groups": "count",
        "bias": "bool", "in_channels": "count"},
    1: {"eps": "posfloat", "affine": "bool", "num_features": "count"},
    2: {"tau": "tau", "v_threshold": "float", "v_reset": "float", "decay_input": "bool", "spike_rule": "choice",
        "stateless": "bool", "clip": "clip"},
    3: {"body": "list", "shortcut": "badlist"},
    4: {"kernel_size": "size", "stride": "size", "padding": "pad"},
    6: {"p": "prob"},
    7: {"out_features": "count", "bias": "bool", "in_features": "count"},
}
EXTRA_BAD = {
    "shape": [None, [], [0], [1, -6, 6], [1, 6.0, 6], ["1", 6, 6], "1x6x6", [True, 6, 6], [1, 6, 10 ** 9]],
    "tau": [1.0, 0.5, -2.0, None, "2", True, float("nan")],
    "clip": [[True, 2], [2, 1], [1], [0, float("inf")], "0,1", [None, 1], [1, 1]],
    "prob": [1.0, -0.1, 2, None, "0.5", True],
    "layers": [[], None, {}, "conv", [1], [[]], [{"type": "bogus"}], [{"name": "x"}]],
    "badlist": [0, "", "x", {}, True, [1]],
    "layer": [None, 1, "lif", [], {"type": None}, {"type": "linear"}, {"type": "lif", "unknown_field": 1},
              {"type": "lif", "name": ""}, {"type": "lif", "name": "conv"}, {"type": "lif", "name": None},
              {"type": "lif", "name": True}, {"type": "lif", "name": []}],
}


def _bad_values(kind):
    return EXTRA_BAD.get(kind) or BAD[kind]


def _set(raw, path, value):
    node = raw
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value


@st.composite
def bad_specs(draw):
    raw = copy.deepcopy(BASE_SPEC)
    where = draw(st.sampled_from(["top", "layer", "layer", "unknown", "insert"]))
    if where == "top":
        path = draw(st.sampled_from(sorted(TOP)))
        _set(raw, path, draw(st.sampled_from(_bad_values(TOP[path]))))
    elif where == "layer":
        i = draw(st.sampled_from(sorted(LAYER)))
        field = draw(st.sampled_from(sorted(LAYER[i])))
        raw["layers"][i][field] = draw(st.sampled_from(_bad_values(LAYER[i][field])))
    elif where == "unknown":
        target = draw(st.sampled_from(["top", "readout", "layer"]))
        key = draw(st.text("abcxyz_", min_size=1, max_size=8).map(lambda s: "zz" + s))
        node = raw if target == "top" else raw["readout"] if target == "readout" else raw["layers"][
            draw(st.integers(0, len(raw["layers"]) - 1))]
        node[key] = draw(st.sampled_from([1, "x", None]))
    else:
        i = draw(st.integers(0, len(raw["layers"])))
        raw["layers"].insert(i, draw(st.sampled_from(EXTRA_BAD["layer"])))
    return raw


@fuzz_settings(700)
@given(raw=bad_specs())
def test_bad_specs(world, raw):
    d, _ = world
    (d / "bad.yaml").write_text(dump(raw))
    refused(["info", d / "bad.yaml"], "specs")


HOSTILE_TEXT = [
    "a: &a [x, x]\nb: [*a, *a]\n", "x: &x [*x]\n", "<<: {a: 1}\n", "name: n\nname: m\n", "1: x\n", "[1, 2]: x\n",
    "? [a]\n: b\n", "\t- tab\n", "layers: [\n", "{", "'unterminated\n", "a: !!python/object:os.system {}\n",
    "a: !!binary AAAA\n", "a: 2020-01-01\n", "---\na: 1\n---\nb: 2\n", "", "~\n", "- 1\n- 2\n", "just text\n",
    "input_shape: !!set {1: null}\n", "a: 1e99999\n", "a: " + "9" * 5000 + "\n", "a: !custom 1\n",
]


@st.composite
def hostile_yaml(draw):
    kind = draw(st.sampled_from(["text", "deep", "bytes", "laughs", "mix"]))
    if kind == "text":
        return draw(st.sampled_from(HOSTILE_TEXT)).encode()
    if kind == "deep":
        n = draw(st.integers(51, 3000))
        opener = draw(st.sampled_from(["[", "{a: "]))
        closer = "]" if opener == "[" else "}"
        return ("x: " + opener * n + "1" + closer * n + "\n").encode()
    if kind == "bytes":
        valid = dump(BASE_SPEC).encode()
        at = draw(st.integers(0, len(valid)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\xfe\xff", b"\x80abc"]))
        return valid[:at] + bad + valid[at:]
    if kind == "laughs":
        levels = draw(st.integers(2, 9))
        lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
        lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels)]
        return ("\n".join(lines) + f"\ndescription: *l{levels - 1}\n").encode()
    text = dump(BASE_SPEC)
    frag = draw(st.sampled_from(HOSTILE_TEXT[:8]))
    return (text + frag).encode()


@fuzz_settings(250)
@given(data=hostile_yaml())
def test_hostile_yaml_text(world, data):
    d, _ = world
    (d / "hostile.yaml").write_bytes(data)
    refused(["info", d / "hostile.yaml"], "YAML texts")


# ----------------------------------------------------------------------------- architecture files
def _arch_base():
    from hwmodel.arch import presets

    return yaml.safe_load(presets()["proxy45"].read_text())


def _numeric_paths(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _numeric_paths(v, path + (k,))
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield path


@st.composite
def bad_arch(draw):
    raw = _arch_base()
    paths = sorted(_numeric_paths(raw), key=str)
    choice = draw(st.sampled_from(["number", "unknown", "section"]))
    if choice == "number" and paths:
        _set(raw, draw(st.sampled_from(paths)), draw(st.sampled_from(
            [None, "x", True, [], {}, -1, float("nan"), float("inf"), 10 ** 400, {"value": "x"}, {"cycles": None}])))
    elif choice == "unknown":
        raw["zz_unknown"] = 1
    else:
        key = draw(st.sampled_from(sorted(k for k, v in raw.items()       # sections, not {value: ...} numbers
                                          if isinstance(v, dict) and "value" not in v and "cycles" not in v)))
        raw[key] = draw(st.sampled_from([1, "x", [1], True]))
    return raw


@fuzz_settings(250)
@given(raw=bad_arch())
def test_bad_architecture_files(world, raw):
    from hwmodel.arch import ArchError, load_arch

    d, _ = world
    (d / "arch.yaml").write_text(dump(raw))
    with time_limit("load_arch"), pytest.raises(ArchError) as e:   # what `snnsim hw --arch` prints as one line
        load_arch(d / "arch.yaml")
    assert "\n" not in str(e.value)
    count("architecture files")


# ----------------------------------------------------------------------------- weights
@st.composite
def bad_weights(draw, keys):
    kind = draw(st.sampled_from(["drop", "extra", "shape", "nan", "big", "dtype", "var", "file"]))
    key = draw(st.sampled_from(keys))
    return kind, key, draw(st.integers(0, 10 ** 6))


def _write_bad_weights(path, weights, kind, key, n):
    w = {k: v.copy() for k, v in weights.items()}
    a = w[key]
    if kind == "drop":
        del w[key]
    elif kind == "extra":
        w[f"zz{n}.weight"] = np.zeros(3, np.float32)
    elif kind == "shape":
        w[key] = a.T.copy() if a.ndim >= 2 and a.shape != a.T.shape else np.zeros(a.size + 1 + n % 5, np.float32)
    elif kind == "nan":
        w[key] = a.astype(np.float64)
        w[key].reshape(-1)[n % a.size] = [np.nan, np.inf, -np.inf][n % 3]
    elif kind == "big":
        w[key] = a.astype(np.float64)
        w[key].reshape(-1)[n % a.size] = 1e39 * (1 + n % 7)
    elif kind == "dtype":
        w[key] = a.astype([np.str_, np.complex64, np.dtype("U3"), np.datetime64][n % 4]) \
            if n % 4 != 3 else np.zeros(a.shape, "datetime64[s]")
    elif kind == "var":
        var = next(k for k in w if k.endswith("running_var"))
        w[var] = w[var].copy()
        w[var][n % w[var].size] = -abs(1e-3 * (1 + n % 100))
    if kind == "file":
        data = Path(path).with_name("w.npz").read_bytes()
        path.write_bytes([b"", b"PK\x03\x04", data[: n % len(data)], os.urandom(64)][n % 4]
                         if n % 5 else np.lib.format.magic(1, 0) + b"junk")
        return
    np.savez(path, **w)


@fuzz_settings(350)
@given(data=st.data())
def test_bad_weights(world, data):
    d, weights = world
    kind, key, n = data.draw(bad_weights(sorted(weights)))
    _write_bad_weights(d / "bw.npz", weights, kind, key, n)
    refused(run_args(d, weights="bw.npz"), "weights", watched(d))


# ----------------------------------------------------------------------------- inputs and labels
@st.composite
def bad_inputs(draw):
    kind = draw(st.sampled_from(["shape", "nan", "empty", "scalar", "dtype", "npz", "bytes", "labels", "big"]))
    n = draw(st.integers(0, 10 ** 6))
    return kind, n


def _write_bad_input(d, kind, n):
    x = np.random.default_rng(n).random((3, 1, 6, 6)).astype(np.float32)
    labels = []
    if kind == "shape":
        x = np.zeros([(3, 35), (3, 1, 6, 7), (3, 2, 6, 6), (36,), (3, 6, 6, 1, 2)][n % 5], np.float32)
    elif kind == "nan":
        x.reshape(-1)[n % x.size] = [np.nan, np.inf, -np.inf][n % 3]
    elif kind == "big":
        x = x.astype(np.float64)
        x.reshape(-1)[n % x.size] = 1e300
    elif kind == "empty":
        x = np.zeros((0, 1, 6, 6), np.float32)
    elif kind == "scalar":
        x = np.float32(n)
    elif kind == "dtype":
        x = np.array([["a"] * 36] * 3) if n % 2 else np.zeros((3, 36), "datetime64[s]")
    elif kind == "labels":
        labels = [np.array([0, 1, 3]), np.array([-1, 0, 1]), np.array([0.5, 1, 2]), np.array(["a", "b", "c"]),
                  np.array([0, 1])][n % 5]
    with open(d / "bx.npy", "wb") as f:        # a file handle: numpy appends no suffix
        if kind == "npz":
            np.savez(f, x=x)
        elif kind == "bytes":
            f.write([b"", b"\x93NUMPY", os.urandom(40), b"not an array"][n % 4])
        else:
            np.save(f, x)
    extra = []
    if kind == "labels":
        with open(d / "by.npy", "wb") as f:
            np.save(f, labels)
        extra = ["--labels", d / "by.npy"]
    return extra


@fuzz_settings(250)
@given(case=bad_inputs())
def test_bad_inputs(world, case):
    d, _ = world
    extra = _write_bad_input(d, *case)
    refused(run_args(d, inp="bx.npy", extra=extra), "inputs", watched(d))


# ----------------------------------------------------------------------------- memory of a run (T x N)
@st.composite
def too_big_runs(draw):
    """-T and a sample count whose arrays exceed SNNSIM_MAX_RUN_BYTES: a header-only .npy declaring millions of
    samples (refused before it is read: its data is missing), or the valid input under a lowered limit (run, hw,
    and train, whose step holds T x batch x layer outputs)."""
    command = draw(st.sampled_from(["run", "hw", "train"]))
    if command != "train" and draw(st.booleans()):
        n = draw(st.integers(10 ** 6, 10 ** 9))
        T = draw(st.integers(1000, 100_000))       # outputs alone: T x n x 3 classes x 4 B > 8 GiB
        return command, (n, 1, 6, 6), T, draw(st.sampled_from([1, 64, 10 ** 5, 10 ** 9])), None
    T = draw(st.integers(1, 50))
    # a limit below the smallest of these runs (T=1, batches of 1: 4,380 B estimated)
    return command, None, T, draw(st.sampled_from([1, 2, 64])), str(draw(st.integers(1, 2000)))


@fuzz_settings(60)
@given(case=too_big_runs())
def test_runs_too_big_for_memory(world, case):
    d, _ = world
    command, shape, T, batch, cap = case
    inp = "x.npy"
    if shape is not None:
        inp = "huge.npy"
        with open(d / inp, "wb") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
    args = run_args(d, inp=inp, extra=["-T", str(T), "--batch-size", str(batch)])
    if command == "hw":
        args = ["hw", *args[1:6]] + args[8:]            # hw prints; it has no --output
    elif command == "train":
        args = ["train", d / "net.yaml", "--input", d / inp, "--labels", d / "y.npy", "--out", d / "out" / "t.npz",
                "--epochs", "1"] + args[8:]
    line = refused(args, "memory", watched(d) + [d / "out" / "t.npz"],
                   env={"SNNSIM_MAX_RUN_BYTES": cap} if cap else None)
    assert "SNNSIM_MAX_RUN_BYTES" in line and "is more than the limit of" in line, line


# ----------------------------------------------------------------------------- options
OPTION_CASES = [
    ["-T", v] for v in ["0", "-1", "x", "1,,x", "2.5", "1000000000", "", "1,0"]
] + [
    ["--batch-size", v] for v in ["0", "-3", "x", "1.5"]
] + [
    ["--limit", v] for v in ["0", "-1", "many"]
] + [
    ["--event-threshold", v] for v in ["2", "-0.1", "nan?", "x"]
] + [
    ["--form", v] for v in ["sparse", "", "DENSE"]
] + [
    ["--split", "val"], ["--dataset", "imagenet"], ["--bogus"], ["--labels"], ["--output"],
    ["--dataset", "digits"],                             # both --input and --dataset
    ["-T", "3,2", "--trace", "{d}/out/t.npz"],           # --trace with several T
]


@st.composite
def bad_options(draw):
    base = draw(st.sampled_from(OPTION_CASES))
    # a valid option in front or behind does not make it valid
    pads = [p for p in ([], ["--batch-size", "2"], ["--form", "dense"], ["--limit", "2"]) if not p or p[0] not in base]
    pad = draw(st.sampled_from(pads))         # another option: a repeated one would override the bad value
    return (pad + base) if draw(st.booleans()) else (base + pad)


@fuzz_settings(250)
@given(opts=bad_options())
def test_bad_options(world, opts):
    d, _ = world
    opts = [o.replace("{d}", str(d)) for o in opts]
    refused(run_args(d, extra=opts), "options", watched(d))


@fuzz_settings(100)
@given(case=st.sampled_from([
    ["info"], ["info", "{d}/missing.yaml"], ["info", "{d}"], ["init-weights", "{d}/net.yaml"],
    ["init-weights", "{d}/net.yaml", "-o", "{d}/no/such/dir/w.npz"], ["init-weights", "{d}/net.yaml", "-o", "{d}/out"],
    ["init-weights", "{d}/net.yaml", "-o", "{d}/out/w.npz", "--seed", "x"], ["bogus-command"],
    ["run", "{d}/net.yaml"], ["run", "{d}/net.yaml", "--weights", "{d}/w.npz"],
    ["run", "{d}/net.yaml", "--weights", "{d}/w.npz", "--input", "{d}/x.npy", "--output", "{d}/no/dir/o.npz"],
    ["run", "{d}/net.yaml", "--weights", "{d}/w.npz", "--input", "{d}/x.npy", "--trace", "{d}/out"],
    ["train", "{d}/net.yaml", "--dataset", "digits", "--out", "{d}/out/t.npz", "--lr", "0"],
    ["train", "{d}/net.yaml", "--dataset", "digits", "--out", "{d}/out/t.npz", "--resume"],
    ["train", "{d}/net.yaml", "--dataset", "digits", "--out", "{d}/out/t.npz", "--report", "{d}/no/r.json"],
    ["train", "{d}/net.yaml", "--dataset", "digits", "--out", "{d}/out/t.npz", "-T", "0"],
    ["train", "{d}/net.yaml", "--dataset", "digits", "--out", "{d}/out/t.npz", "--init", "{d}/x.npy"],
    ["train", "{d}/net.yaml", "--dataset", "digits", "--out", "{d}/out/t.npz", "--schedule", "step:x"],
    ["export-nir", "{d}/net.yaml", "--weights", "{d}/w.npz", "-o", "{d}/no/dir/g.nir"],
    ["import-nir", "{d}/w.npz", "-o", "{d}/out/n.yaml"], ["import-nir", "{d}/missing.nir", "-o", "{d}/out/n.yaml"],
]))
def test_bad_commands(world, case):
    d, _ = world
    refused([c.replace("{d}", str(d)) for c in case], "commands", watched(d) + [d / "out" / "t.npz"])


# ----------------------------------------------------------------------------- NIR files
@pytest.fixture(scope="module")
def good_nir(world):
    pytest.importorskip("nir")
    d, _ = world
    r = CliRunner().invoke(main, ["export-nir", str(d / "net.yaml"), "--weights", str(d / "w.npz"),
                                  "-o", str(d / "good.nir")])
    assert r.exit_code == 0, r.output
    return d / "good.nir"


def _edit_nir(src, dst, fn):
    import h5py

    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "r+") as f:
        fn(f)


def _nir_mutations():
    def meta(key, value):
        def fn(f):
            g = f["node"].require_group("metadata")
            if key in g.attrs:
                del g.attrs[key]
            if key in g:
                del g[key]
            g[key] = value
        return fn

    def node_field(field, value):
        def fn(f):
            for name in f["node/nodes"]:
                grp = f[f"node/nodes/{name}"]
                if field in grp:
                    data = grp[field][()]
                    del grp[field]
                    grp[field] = value(data)
                    return
        return fn

    def drop_node_field(field):
        def fn(f):
            for name in f["node/nodes"]:
                grp = f[f"node/nodes/{name}"]
                if field in grp:
                    del grp[field]
                    return
        return fn

    def set_type(value):
        def fn(f):
            name = sorted(f["node/nodes"])[1]
            del f[f"node/nodes/{name}/type"]
            f[f"node/nodes/{name}/type"] = value
        return fn

    def bad_edge(f):
        del f["node/edges"]
        f["node/edges"] = np.array([["input", "nowhere"]], dtype="S")

    muts = [meta("dt", v) for v in (-1.0, 0.0, np.nan, "fast")]
    muts += [meta("spike_rule", v) for v in ("greater", "", "GT")]
    muts += [meta("encoding", v) for v in ("poisson", "", "EVENTS")]
    muts += [meta("timesteps", v) for v in (0, -3, 10 ** 9, 2.5)]
    muts += [node_field(fld, fn) for fld in ("weight", "bias", "tau", "v_threshold", "r")
             for fn in (lambda a: np.full_like(np.asarray(a, np.float64), np.nan), lambda a: np.asarray(a).T[..., :1],
                        lambda a: np.asarray(a, np.float64) * np.inf)]
    muts += [drop_node_field(fld) for fld in ("weight", "tau", "type", "v_threshold")]
    muts += [set_type(v) for v in ("Bogus", "NIRGraph", "")] + [bad_edge]
    return muts


NIR_MUTATIONS = _nir_mutations()


@fuzz_settings(150)
@given(i=st.integers(0, len(NIR_MUTATIONS) + 3), n=st.integers(0, 10 ** 6))
def test_bad_nir_files(world, good_nir, i, n):
    d, _ = world
    bad = d / "bad.nir"
    if i < len(NIR_MUTATIONS):
        _edit_nir(good_nir, bad, NIR_MUTATIONS[i])
    else:
        data = good_nir.read_bytes()
        bad.write_bytes([data[: n % len(data)], os.urandom(100), b"", data[:8] + os.urandom(200)][i - len(NIR_MUTATIONS)])
    out = d / "out" / "nir.yaml"
    refused(["import-nir", bad, "-o", out], "NIR files", [out, out.with_suffix(".npz")])


# ----------------------------------------------------------------------------- a few through a real process
def test_subprocess_sample(world):
    d, _ = world
    (d / "laughs.yaml").write_text("a: &a [x, x]\nb: [*a, *a]\n")
    (d / "bad8.yaml").write_bytes(b"name: \xff\n")
    with open(d / "many.npy", "wb") as f:        # 10^8 samples declared, none stored
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (10 ** 8, 1, 6, 6)})
    cases = [["info", d / "laughs.yaml"], ["info", d / "bad8.yaml"], run_args(d, extra=["-T", "1000000000"]),
             run_args(d, weights="x.npy"), ["run", d / "net.yaml", "--bogus"],
             run_args(d, inp="many.npy", extra=["-T", "1000", "--batch-size", "100000"])]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for case in cases:
        p = subprocess.run([sys.executable, "-m", "snnsim.cli", *map(str, case)], capture_output=True, text=True,
                           timeout=120, env=env)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (case, p.stderr)
        count("subprocess")
