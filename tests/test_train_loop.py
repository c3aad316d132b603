"""Around the training loop: losses, optimisers (against torch.optim), schedules, seeded data order,
atomic resumable checkpoints (a process killed mid-epoch and resumed ends with the same weights as an
uninterrupted run), the stop on NaN, and the ``snnsim train`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from snnsim.cli import main
from snnsim.errors import InputError
from snnsim.layers import load_spec
from snnsim.train import loop as L
from snnsim.train.checkpoint import load_checkpoint
from snnsim.cli.train import train as train_cmd
from snnsim.train.losses import make_loss
from snnsim.train.optim import lr_at, make_optimizer, parse_schedule

if "train" not in main.commands:
    main.add_command(train_cmd)

ROOT = Path(__file__).resolve().parent.parent
MLP = str(ROOT / "networks" / "digits_mlp.yaml")


# ----------------------------------------------------------------------------- losses
@pytest.mark.parametrize("name,kw", [("ce", {}), ("ce", {"reduce": "last"}), ("ce", {"smoothing": 0.1}),
                                     ("mse", {}), ("tet", {"tet_lambda": 0.05}), ("compound", {"smoothing": 0.1})])
def test_loss_gradients_match_finite_differences(name, kw):
    rng = np.random.default_rng(0)
    out = rng.random((4, 5, 10))
    y = rng.integers(0, 10, 5)
    fn = make_loss(name, **kw)
    _, g = fn(out.astype(np.float32), y)
    for i in rng.choice(out.size, 15, replace=False):
        flat = out.reshape(-1)
        old = flat[i]
        flat[i] = old + 1e-6
        lp = fn(out, y)[0]
        flat[i] = old - 1e-6
        lm = fn(out, y)[0]
        flat[i] = old
        assert abs(g.reshape(-1)[i] - (lp - lm) / 2e-6) < 1e-5


def test_losses_equal_their_torch_definitions():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(1)
    out = rng.random((4, 6, 10)).astype(np.float32)
    y = rng.integers(0, 10, 6)
    o, t = torch.from_numpy(out), torch.from_numpy(y)
    assert make_loss("ce")(out, y)[0] == pytest.approx(F.cross_entropy(o.mean(0), t).item(), rel=1e-6)
    tet = (1 - 0.1) * sum(F.cross_entropy(o[k], t) for k in range(4)) / 4 + 0.1 * F.mse_loss(o, torch.ones_like(o))
    assert make_loss("tet", tet_lambda=0.1)(out, y)[0] == pytest.approx(tet.item(), rel=1e-6)
    comp = sum((k + 1) / 4 * F.cross_entropy(o[k], t, label_smoothing=0.1) for k in range(4)) + \
        F.cross_entropy(o[3], t, label_smoothing=0.1)
    assert make_loss("compound", smoothing=0.1)(out, y)[0] == pytest.approx(comp.item(), rel=1e-6)


# ----------------------------------------------------------------------------- optimisers
@pytest.mark.parametrize("name", ["sgd", "sgd-nesterov", "adamw"])
def test_optimisers_match_torch(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    params = {"w": rng.normal(size=(4, 3)).astype(np.float32), "b": rng.normal(size=3).astype(np.float32)}
    tp = {k: torch.nn.Parameter(torch.from_numpy(v.copy())) for k, v in params.items()}
    if name == "adamw":
        ours = make_optimizer("adamw", ["w", "b"], weight_decay=0.05)
        theirs = torch.optim.AdamW([{"params": [tp["w"]], "weight_decay": 0.05},
                                    {"params": [tp["b"]], "weight_decay": 0.0}], lr=0.01)
    else:
        nesterov = name.endswith("nesterov")
        ours = make_optimizer("sgd", ["w", "b"], momentum=0.9, weight_decay=1e-3)
        ours.nesterov = nesterov
        theirs = torch.optim.SGD([{"params": [tp["w"]], "weight_decay": 1e-3},
                                  {"params": [tp["b"]], "weight_decay": 0.0}], lr=0.01, momentum=0.9,
                                 nesterov=nesterov)
    for _ in range(5):
        grads = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in params.items()}
        ours.step(params, grads, 0.01)
        for k in tp:
            tp[k].grad = torch.from_numpy(grads[k].copy())
        theirs.step()
    for k in params:
        np.testing.assert_allclose(params[k], tp[k].detach().numpy(), rtol=1e-5, atol=1e-6)


def test_schedules():
    cos = parse_schedule("cosine")
    assert lr_at(0, 100, 1.0, cos) == 1.0
    assert lr_at(50, 100, 1.0, cos) == pytest.approx(0.5)
    assert lr_at(100, 100, 1.0, cos) == pytest.approx(0.0)
    step = parse_schedule("step:0.5,0.75")
    assert [lr_at(s, 100, 1.0, step) for s in (0, 49, 50, 80)] == pytest.approx([1, 1, 0.1, 0.01])
    assert lr_at(0, 100, 1.0, cos, warmup=10) == pytest.approx(0.1)
    with pytest.raises(InputError):
        parse_schedule("linear")


# ----------------------------------------------------------------------------- loop
def _cfg(**kw):
    base = dict(dataset="digits", epochs=2, batch_size=64, lr=1e-2, limit=512, eval_limit=64, seed=7)
    base.update(kw)
    return L.TrainConfig(**base)


def _train_cli(args, env=None, cwd=None):
    code = "from snnsim.cli import main; from snnsim.cli.train import train; main.add_command(train); main()"
    return subprocess.run([sys.executable, "-c", code, "train", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def test_training_is_reproducible_and_learns():
    spec = load_spec(MLP)
    r1 = L.train(spec, L.init_params(spec, 0), _cfg(epochs=3))
    r2 = L.train(spec, L.init_params(spec, 0), _cfg(epochs=3))
    for k in r1.params:
        np.testing.assert_array_equal(r1.params[k], r2.params[k])
    assert r1.history[-1]["test_acc"] > 0.6
    assert r1.history[-1]["loss"] < r1.history[0]["loss"]
    assert r1.history[-1]["peak_bytes"] > 0


def test_killed_mid_epoch_and_resumed_ends_with_same_weights(tmp_path):
    args = [MLP, "--dataset", "digits", "--epochs", "2", "--limit", "512", "--lr", "0.01", "--seed", "3",
            "--batch-size", "64", "--checkpoint-every", "3"]
    full = _train_cli(args + ["--out", str(tmp_path / "full.npz")])
    assert full.returncode == 0, full.stderr
    ck = tmp_path / "ck.npz"
    # 8 steps per epoch: die right after step 11 (mid-epoch 2); the last checkpoint is from step 9
    killed = _train_cli(args + ["--out", str(tmp_path / "res.npz"), "--checkpoint", str(ck)],
                        env={L.ABORT_ENV: "11"})
    assert killed.returncode == 3
    assert not (tmp_path / "res.npz").exists()
    _, _, meta = load_checkpoint(ck)
    assert meta["pos"] == {"stage": 0, "epoch": 1, "batch": 1, "step": 9}
    resumed = _train_cli(args + ["--out", str(tmp_path / "res.npz"), "--checkpoint", str(ck), "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    a, b = np.load(tmp_path / "full.npz"), np.load(tmp_path / "res.npz")
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_resume_refuses_a_different_configuration_but_takes_a_new_learning_rate(tmp_path):
    spec = load_spec(MLP)
    ck = tmp_path / "ck.npz"
    L.train(spec, L.init_params(spec, 0), _cfg(epochs=1), checkpoint=ck)
    with pytest.raises(InputError, match=r"different network or options \(--seed\)"):
        L.train(spec, L.init_params(spec, 0), _cfg(epochs=1, seed=8), checkpoint=ck, resume=True)
    # lr and schedule may change; the run continues from the checkpoint's position (here: already finished)
    saved, _, meta = load_checkpoint(ck)
    r = L.train(spec, L.init_params(spec, 0), _cfg(epochs=1, lr=0.5, schedule="constant"), checkpoint=ck,
                resume=True)
    for k, v in saved.items():
        np.testing.assert_array_equal(r.params[k], v, err_msg=k)


def test_overflow_before_the_loss_turns_nan_is_not_saved_as_good(tmp_path, monkeypatch):
    """A running statistic overflows to Inf at step 3 while the loss is still finite: the stop happens at step 3
    and the checkpoint holds the (finite) state after step 2, which resumes with a lower --lr."""
    spec = load_spec(MLP)
    ck = tmp_path / "ck.npz"
    method = L.make_method(spec, _cfg())
    real_step = method.step
    calls = {"n": 0}

    def step(params, *a, **k):
        res = real_step(params, *a, **k)
        calls["n"] += 1
        if calls["n"] == 3:
            params["bn1.running_var"][5] = np.inf
        return res

    method.step = step
    monkeypatch.setattr(L, "make_method", lambda *a, **k: method)
    with pytest.raises(L.TrainingDiverged, match=r"'bn1.running_var' became NaN or Inf at .*\(step 3\).*step 2"):
        L.train(spec, L.init_params(spec, 0), _cfg(epochs=1), checkpoint=ck)
    saved, _, meta = load_checkpoint(ck)
    assert meta["pos"]["step"] == 2
    assert all(np.isfinite(v).all() for v in saved.values())
    monkeypatch.undo()
    r = L.train(spec, L.init_params(spec, 0), _cfg(epochs=1, lr=1e-3), checkpoint=ck, resume=True)
    assert all(np.isfinite(v).all() for v in r.params.values())


def test_sgd_at_a_huge_learning_rate_does_not_end_silently(tmp_path):
    """The spiking outputs are bounded, so the loss stays finite while SGD at lr 1e30 blows the weights up; the
    run must stop with exit 2 naming the weight, not finish with exit 0 and weights of 1e36."""
    r = CliRunner().invoke(main, ["train", MLP, "--dataset", "digits", "--epochs", "1", "--limit", "128",
                                  "--optimizer", "sgd", "--lr", "1e30", "--out", str(tmp_path / "w.npz"),
                                  "--checkpoint", str(tmp_path / "ck.npz")])
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "training stopped" in lines[0], r.stderr
    assert "in magnitude" in lines[0] or "NaN or Inf" in lines[0] or "loss became" in lines[0]
    assert not (tmp_path / "w.npz").exists()
    saved, _, _ = load_checkpoint(tmp_path / "ck.npz")
    assert max(float(np.abs(v).max()) for v in saved.values()) <= L.MAX_WEIGHT
    # the checkpoint is good: it resumes with a sane learning rate and finishes
    r = CliRunner().invoke(main, ["train", MLP, "--dataset", "digits", "--epochs", "1", "--limit", "128",
                                  "--optimizer", "sgd", "--lr", "0.01", "--out", str(tmp_path / "w.npz"),
                                  "--checkpoint", str(tmp_path / "ck.npz"), "--resume"])
    assert r.exit_code == 0, r.output


def test_checkpoint_is_checked_against_an_edited_spec_and_init_accepts_it(tmp_path):
    ck = tmp_path / "ck.npz"
    base = ["train", MLP, "--dataset", "digits", "--epochs", "1", "--limit", "128", "--lr", "0.01"]
    r = CliRunner().invoke(main, base + ["--out", str(tmp_path / "w.npz"), "--checkpoint", str(ck)])
    assert r.exit_code == 0, r.output
    edited = tmp_path / "edited.yaml"                                   # same name, fc1 narrower
    edited.write_text(Path(MLP).read_text().replace("out_features: 128", "out_features: 96"))
    args = ["--dataset", "digits", "--epochs", "1", "--limit", "128", "--lr", "0.01", "--out",
            str(tmp_path / "w2.npz")]
    r = CliRunner().invoke(main, ["train", str(edited), *args, "--checkpoint", str(ck), "--resume"])
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and "'fc1.weight' has shape [128, 64], the network needs [96, 64]" in r.stderr
    r = CliRunner().invoke(main, ["train", str(edited), *args, "--init", str(ck)])
    assert r.exit_code == 2 and "does not match network 'digits_mlp'" in r.stderr, r.output
    # --init takes the checkpoint of the same network: training starts from its weights
    r = CliRunner().invoke(main, ["train", MLP, *args, "--init", str(ck), "--epochs", "1"])
    assert r.exit_code == 0, r.output


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    spec = load_spec(MLP)
    ck = tmp_path / "ck.npz"
    real = make_loss("ce")
    calls = {"n": 0}

    def flaky(out, y):
        calls["n"] += 1
        loss, g = real(out, y)
        return (float("nan"), g) if calls["n"] == 5 else (loss, g)

    monkeypatch.setattr(L, "make_loss", lambda *a, **k: flaky)
    params = L.init_params(spec, 0)
    snapshots = []
    with pytest.raises(L.TrainingDiverged, match=r"loss became nan at T=4, epoch 1, batch 5 \(step 5\).*step 4"):
        L.train(spec, params, _cfg(epochs=1), checkpoint=ck,
                progress=lambda info: snapshots.append({k: v.copy() for k, v in params.items()}))
    saved, _, meta = load_checkpoint(ck)
    assert meta["pos"]["step"] == 4
    for k, v in snapshots[3].items():           # the state after step 4, untouched by the failed step
        np.testing.assert_array_equal(saved[k], v, err_msg=k)


def test_iir_schedule_trains_each_stage_from_the_previous(tmp_path):
    r = CliRunner().invoke(main, ["train", MLP, "--dataset", "digits", "--timesteps", "3,2,1", "--epochs", "1",
                                  "--limit", "256", "--lr", "0.01", "--out", str(tmp_path / "w.npz"),
                                  "--report", str(tmp_path / "r.json")])
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "r.json").read_text())
    assert [s["T"] for s in rep["stages"]] == [3, 2, 1]
    assert "T=1: test acc" in r.output
    for T in (3, 2, 1):
        assert (tmp_path / f"w.T{T}.npz").exists()
    final = np.load(tmp_path / "w.npz")["fc1.weight"]
    np.testing.assert_array_equal(np.load(tmp_path / "w.T1.npz")["fc1.weight"], final)
    # each stage starts where the previous ended: stage 2's weights differ from stage 1's but are not re-initialised
    w3, w2 = np.load(tmp_path / "w.T3.npz")["fc1.weight"], np.load(tmp_path / "w.T2.npz")["fc1.weight"]
    init = L.init_params(load_spec(MLP), 0)["fc1.weight"]
    assert np.abs(w2 - w3).max() < np.abs(w2 - init).max()


def test_cli_trains_and_the_weights_run(tmp_path):
    out = tmp_path / "w.npz"
    r = CliRunner().invoke(main, ["train", MLP, "--dataset", "digits", "--epochs", "1", "--limit", "256",
                                  "--out", str(out), "--optimizer", "sgd", "--lr", "0.05", "--surrogate", "atan"])
    assert r.exit_code == 0, r.output
    assert "epoch 1/1" in r.output and "peak held for backward" in r.output
    r = CliRunner().invoke(main, ["run", MLP, "--weights", str(out), "--dataset", "digits", "--limit", "50"])
    assert r.exit_code == 0, r.output
    assert "accuracy:" in r.output


@pytest.mark.parametrize("args,msg", [
    (["--timesteps", "4,x"], "--timesteps"),
    (["--surrogate", "relu"], "unknown surrogate"),
    (["--schedule", "linear"], "--schedule"),
    (["--resume"], "--resume needs --checkpoint"),
    (["--method", "reversible"], "--method reversible"),
])
def test_cli_user_errors_are_one_line(tmp_path, args, msg):
    r = CliRunner().invoke(main, ["train", MLP, "--dataset", "digits", "--out", str(tmp_path / "w.npz"), *args])
    assert r.exit_code == 2
    assert msg in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_pad_input_for_cifar_shaped_networks():
    x = np.ones((2, 1, 28, 28), np.float32)
    y = L.pad_to_shape(x, (3, 32, 32))
    assert y.shape == (2, 3, 32, 32) and y[:, :, 2:30, 2:30].min() == 1 and y.sum() == 2 * 3 * 28 * 28
    with pytest.raises(InputError, match="--pad-input"):
        L.pad_to_shape(x, (64,))
