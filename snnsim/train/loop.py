"""The training loop: seeded data order, optimiser and schedule, evaluation with the inference engine, atomic
resumable checkpoints, a stop on NaN/Inf, and the IIR timestep schedule (one stage per T, each stage starting
from the previous stage's weights).

Reproducibility: everything random in a step (data order, augmentation shifts, dropout masks) is drawn from
generators seeded by (seed, stage, epoch, batch), so a run resumed from a checkpoint continues exactly as the
uninterrupted run would have, and ends with the same weights bit for bit.

Evaluation runs the saved weights through ``snnsim.engine.run`` (batch norm folded with its running
statistics), so the accuracy reported is the accuracy ``snnsim run`` gives.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..data import pad_to_shape  # noqa: F401
from ..data import fit_to_shape, load_dataset
from ..errors import InputError, SnnsimError
from ..layers.registry import network_trainer
from ..spec import NetworkSpec
from ..weights import check_weights, save_npz
from .checkpoint import check_against_spec, file_keys, first_not_finite, load_checkpoint, save_checkpoint
from .forward import NeuronTrainCfg
from .losses import make_loss
from .optim import lr_at, make_optimizer, parse_schedule
from .surrogate import parse_surrogate

METHODS = ("bptt", "reversible", "ottt", "saf")
ABORT_ENV = "SNNSIM_TRAIN_ABORT_AFTER_STEP"     # tests: die (os._exit) right after this global step


class TrainingDiverged(SnnsimError):
    """The loss, a weight or a running statistic became NaN or Inf, or a weight grew beyond ``MAX_WEIGHT``."""


# Weights this large mean the optimisation has diverged even while the loss stays finite (a spiking network's
# outputs are bounded, so an SGD step at a huge learning rate can leave weights of 1e36 and a finite loss):
# float32 keeps ~7 significant digits, so sums with such terms carry nothing of the O(1) ones.
MAX_WEIGHT = 1e12

# Options that may change on --resume: the learning rate and its schedule. Everything else (network, data
# order, method, ...) must equal the checkpoint's, or the resumed run would not be the run it continues.
RESUMABLE_CHANGES = ("lr", "schedule", "warmup_epochs")


@dataclass
class TrainConfig:
    dataset: str = "digits"
    method: str = "bptt"
    variant: str = ""                    # ottt: A | O ; saf: E | F
    timesteps: tuple[int, ...] = ()      # () -> the network's T; several -> IIR stages
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float | None = None
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    loss: str = "ce"
    label_smoothing: float = 0.0
    tet_lambda: float = 0.0
    surrogate: str = "sigmoid:4"
    detach_reset: bool = False
    seed: int = 0
    augment: int = 0                     # random shifts of up to this many pixels (image inputs)
    limit: int | None = None             # train on the first N training samples only
    eval_limit: int | None = None
    pad_input: bool = False              # zero-pad images to the network's H x W, repeat one channel to its C

    def resume_key(self) -> dict:
        d = asdict(self)
        d["timesteps"] = list(self.timesteps)
        return d

    def must_match(self) -> dict:
        """The part of ``resume_key`` a resumed run must share with its checkpoint."""
        return {k: v for k, v in self.resume_key().items() if k not in RESUMABLE_CHANGES}


@dataclass
class TrainResult:
    params: dict
    history: list = field(default_factory=list)     # one row per epoch
    stages: list = field(default_factory=list)      # one row per T (IIR)
    memory: dict = field(default_factory=dict)      # last step's ledger report


def make_method(spec: NetworkSpec, cfg: TrainConfig):
    ncfg = NeuronTrainCfg(parse_surrogate(cfg.surrogate), cfg.detach_reset)
    own = network_trainer(spec, cfg.method, ncfg)      # a network whose kind trains it (a T-RevSNN network)
    if own is not None:
        return own
    if cfg.method == "bptt":
        from .bptt import BPTT
        return BPTT(spec, ncfg)
    if cfg.method in ("ottt", "saf"):
        from .online import make_online
        return make_online(spec, ncfg, cfg.method, cfg.variant)
    if cfg.method == "reversible":
        from .reversible import make_reversible
        return make_reversible(spec, ncfg)
    raise InputError(f"--method: unknown '{cfg.method}'; known: {', '.join(METHODS)}")


def shift_images(x: np.ndarray, rng: np.random.Generator, k: int) -> np.ndarray:
    """Shift each [C, H, W] image by up to k pixels in each direction, zero fill."""
    if k <= 0 or x.ndim != 4:
        return x
    out = np.zeros_like(x)
    H, W = x.shape[2], x.shape[3]
    d = rng.integers(-k, k + 1, size=(len(x), 2))
    for i, (di, dj) in enumerate(d):
        src = x[i, :, max(0, -di):H - max(0, di), max(0, -dj):W - max(0, dj)]
        out[i, :, max(0, di):max(0, di) + src.shape[1], max(0, dj):max(0, dj) + src.shape[2]] = src
    return out


def evaluate(spec: NetworkSpec, params: dict, x: np.ndarray, y: np.ndarray, T: int, batch_size: int = 256) -> float:
    from ..engine import accuracy, run
    from ..network import build_network

    net = build_network(spec, check_weights(spec, file_keys(spec, params), "trained weights"))
    return accuracy(run(net, x, timesteps=T, batch_size=batch_size), y)


def _accuracy(out: np.ndarray, y: np.ndarray, reduce: str) -> float:
    r = out.mean(axis=0) if reduce == "mean" else out[-1]
    return float(np.mean(r.reshape(len(y), -1).argmax(axis=1) == y))


def train(spec: NetworkSpec, params: dict, cfg: TrainConfig, *, checkpoint: str | Path | None = None,
          checkpoint_every: int = 0, resume: bool = False, stage_out: Callable[[int, dict], None] | None = None,
          progress: Callable[[dict], None] | None = None, data=None) -> TrainResult:
    """Train ``params`` (snnsim weight keys, float32; updated in place and returned).

    checkpoint: path written atomically at the end of every epoch and every ``checkpoint_every`` steps;
    with ``resume`` and an existing file, training continues from it (it must come from the same configuration).
    stage_out(T, params): called after each IIR stage. progress(info): called after every step.
    data: (x_train, y_train, x_test, y_test) instead of ``cfg.dataset``.
    """
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise InputError("--epochs and --batch-size must be positive")
    Ts = tuple(cfg.timesteps) or (spec.timesteps,)
    if any(t < 1 for t in Ts):
        raise InputError(f"--timesteps: expected positive integers, got {','.join(map(str, Ts))}")
    if data is None:
        ds = load_dataset(cfg.dataset)
        xtr, ytr = ds.split("train")
        xte, yte = ds.split("test")
        if cfg.pad_input:
            xtr, xte = pad_to_shape(xtr, spec.input_shape), pad_to_shape(xte, spec.input_shape)
        xtr = fit_to_shape(xtr, spec.input_shape, f"dataset {cfg.dataset}")
        xte = fit_to_shape(xte, spec.input_shape, f"dataset {cfg.dataset}")
    else:
        xtr, ytr, xte, yte = data
    if cfg.limit:
        xtr, ytr = xtr[:cfg.limit], ytr[:cfg.limit]
    if cfg.eval_limit:
        xte, yte = xte[:cfg.eval_limit], yte[:cfg.eval_limit]
    n = len(xtr)
    nb = (n + cfg.batch_size - 1) // cfg.batch_size
    total = cfg.epochs * nb
    schedule = parse_schedule(cfg.schedule)
    warmup = int(round(cfg.warmup_epochs * nb))
    loss_fn = make_loss(cfg.loss, spec.readout.reduce, cfg.label_smoothing, cfg.tet_lambda)
    method = make_method(spec, cfg)
    opt = make_optimizer(cfg.optimizer, method.trainable, cfg.momentum, cfg.weight_decay)

    pos = {"stage": 0, "epoch": 0, "batch": 0, "step": 0}
    result = TrainResult(params)
    ckpt = Path(checkpoint) if checkpoint else None
    if resume and ckpt is not None and ckpt.exists():
        saved, opt_state, meta = load_checkpoint(ckpt)
        old = {k: v for k, v in (meta.get("config") or {}).items() if k not in RESUMABLE_CHANGES}
        if old != cfg.must_match() or meta.get("network") != spec.name:
            diff = sorted(k for k in set(old) | set(cfg.must_match()) if old.get(k) != cfg.must_match().get(k))
            what = f" (--{diff[0].replace('_', '-')})" if diff else ""
            raise InputError(f"--resume {ckpt}: the checkpoint was written by a run with a different network or "
                             f"options{what}; resume with the same command line (only --lr, --schedule and "
                             "--warmup-epochs may change), or remove the checkpoint")
        check_against_spec(spec, saved, opt_state, f"--resume {ckpt}")
        params.clear()
        params.update({k: np.array(v, np.float32) for k, v in saved.items()})
        opt.load_state_arrays(opt_state)
        pos = dict(meta["pos"])
        result.history = meta.get("history", [])
        result.stages = meta.get("stages", [])

    def meta():
        return {"version": 1, "network": spec.name, "config": cfg.resume_key(), "pos": dict(pos),
                "history": result.history, "stages": result.stages}

    def save(p=None):
        if ckpt is not None:
            save_checkpoint(ckpt, p if p is not None else params, opt.state_arrays(), meta())

    problem = _diverged(0.0, params)
    if problem:
        raise InputError(f"the initial weights cannot be trained: {problem.replace('became', 'is')}")
    abort_at = int(os.environ.get(ABORT_ENV, "0") or 0)
    reduce = spec.readout.reduce
    while pos["stage"] < len(Ts):
        T = Ts[pos["stage"]]
        while pos["epoch"] < cfg.epochs:
            e = pos["epoch"]
            perm = np.random.default_rng([cfg.seed, pos["stage"], e]).permutation(n)
            sums = {"loss": 0.0, "correct": 0.0, "seen": 0, "time": 0.0, "steps": 0, "peak": 0}
            while pos["batch"] < nb:
                b = pos["batch"]
                idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                rng = np.random.default_rng([cfg.seed, pos["stage"], e, b, 1])
                x = shift_images(xtr[idx], rng, cfg.augment)
                y = ytr[idx]
                step_in_stage = e * nb + b
                lr = lr_at(step_in_stage, total, cfg.lr, schedule, warmup)
                before = {k: v.copy() for k, v in params.items()}
                t0 = time.perf_counter()
                res = method.step(params, x, y, T, loss_fn, opt, lr, idx=idx, rng=rng)
                dt = time.perf_counter() - t0
                problem = _diverged(res.loss, params)
                if problem:
                    where = f"T={T}, epoch {e + 1}, batch {b + 1} (step {pos['step'] + 1})"
                    if ckpt is not None:
                        save(before)
                        kept = f"the last good state is in checkpoint {ckpt} (step {pos['step']})"
                    else:
                        kept = "no checkpoint was requested (--checkpoint)"
                    # 'before' passed this same check after the previous step (or is the checked initial state)
                    raise TrainingDiverged(f"{problem} at {where}; training stopped, {kept}; "
                                           "lower --lr (--resume accepts a new --lr) or check the data")
                pos["batch"] += 1
                pos["step"] += 1
                acc = _accuracy(res.outputs, y, reduce)
                sums["loss"] += res.loss * len(y)
                sums["correct"] += acc * len(y)
                sums["seen"] += len(y)
                sums["time"] += dt
                sums["steps"] += 1
                sums["peak"] = max(sums["peak"], res.memory.get("peak_bytes", 0))
                if res.memory.get("peak_bytes", 0) >= result.memory.get("peak_bytes", 0):
                    result.memory = res.memory               # the step that held the most
                if progress is not None:
                    progress({"T": T, "epoch": e + 1, "epochs": cfg.epochs, "batch": b + 1, "batches": nb,
                              "loss": res.loss, "acc": acc, "lr": lr, "step_time": dt, "memory": res.memory,
                              "stage": pos["stage"], "stages": len(Ts)})
                if checkpoint_every and pos["step"] % checkpoint_every == 0 and pos["batch"] < nb:
                    save()
                if abort_at and pos["step"] == abort_at:
                    os._exit(3)
            test_acc = evaluate(spec, params, xte, yte, T)
            result.history.append({
                "stage": pos["stage"], "T": T, "epoch": e + 1, "loss": sums["loss"] / max(1, sums["seen"]),
                "train_acc": sums["correct"] / max(1, sums["seen"]), "test_acc": test_acc,
                "step_time_s": sums["time"] / max(1, sums["steps"]), "peak_bytes": int(sums["peak"]),
                "lr": lr_at(min(total - 1, (e + 1) * nb - 1), total, cfg.lr, schedule, warmup)})
            if progress is not None:
                progress({"epoch_done": result.history[-1]})
            pos["epoch"] += 1
            pos["batch"] = 0
            save()
        last = result.history[-1]
        result.stages.append({"T": T, "test_acc": last["test_acc"], "train_acc": last["train_acc"],
                              "epochs": cfg.epochs, "step_time_s": last["step_time_s"],
                              "peak_bytes": last["peak_bytes"]})
        if stage_out is not None:
            stage_out(T, params)
        pos["stage"] += 1
        pos["epoch"] = 0
        pos["batch"] = 0
        opt.reset()
        save()
    return result


def _diverged(loss: float, params: dict) -> str | None:
    """Why the state after a step must not be kept, or None: a non-finite loss, weight or running statistic, or
    a weight beyond ``MAX_WEIGHT`` (checked on every array, so the state saved as the last good one is good)."""
    if not np.isfinite(loss):
        return f"loss became {loss}"
    bad = first_not_finite(params)
    if bad:
        return f"'{bad}' became NaN or Inf"
    for k, v in params.items():
        if v.size and float(np.max(np.abs(v))) > MAX_WEIGHT:
            return f"'{k}' became {float(np.max(np.abs(v))):.3g} in magnitude (more than {MAX_WEIGHT:g}: diverged)"
    return None


def init_params(spec: NetworkSpec, seed: int = 0) -> dict:
    """PyTorch's default initialisation (what an untrained SpikingJelly model starts from): linear and conv
    weights and biases uniform within 1/sqrt(fan_in); batch norm gamma 1, beta 0, running mean 0, variance 1;
    PLIF w = -log(tau - 1) (SpikingJelly's init_tau); scale 1."""
    rng = np.random.default_rng(seed)
    shapes = spec.param_shapes()
    out = {}
    for key, shape in shapes.items():
        layer, p = key.rsplit(".", 1)
        if f"{layer}.running_mean" in shapes:
            val = {"weight": 1.0, "bias": 0.0, "running_mean": 0.0, "running_var": 1.0}[p]
            out[key] = np.full(shape, val, np.float32)
        elif p in ("weight", "bias"):
            w_shape = shapes[f"{layer}.weight"]
            bound = 1.0 / np.sqrt(int(np.prod(w_shape[1:])))
            out[key] = rng.uniform(-bound, bound, shape).astype(np.float32)
        elif p == "w":
            tau = next(layer_.tau for layer_ in spec.all_layers() if layer_.name == layer)
            out[key] = np.full(shape, -np.log(tau - 1.0), np.float32)
        else:
            out[key] = np.ones(shape, np.float32)
    return out


def write_weights(spec: NetworkSpec, params: dict, path) -> None:
    save_npz(path, file_keys(spec, params), "--out")     # atomic, exactly under the given name
