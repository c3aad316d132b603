"""``snnsim train``: train a network on a shipped dataset and write its weights (registered in ``snnsim.cli``
with ``main.add_command(train)``)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click
import numpy as np

from .memory import check_train_memory
from ..errors import InputError
from ..train.memory import fmt_bytes

OPTIMIZERS = ["sgd", "adamw"]


def _timesteps(text: str) -> tuple[int, ...]:
    try:
        ts = tuple(int(t) for t in str(text).split(","))
    except ValueError:
        raise InputError(f"--timesteps: expected an integer or a list like 5,4,3,2,1, got '{text}'") from None
    if not ts or any(t < 1 for t in ts):
        raise InputError(f"--timesteps: expected positive integers, got '{text}'")
    from ..limits import over

    if over("timesteps", max(ts)):
        raise InputError(f"--timesteps: {over('timesteps', max(ts))}")
    return ts


def _array_data(spec, dataset, input_path, labels_path, test_input_path, test_labels_path, pad):
    """(x_train, y_train, x_test, y_test) from --input/--labels [--test-input/--test-labels]; None for --dataset."""
    import numpy as np

    from . import read_npy
    from ..data import fit_to_shape, pad_to_shape

    if (input_path is None) == (dataset is None):
        raise InputError("give exactly one of --dataset NAME or --input X.npy --labels Y.npy")
    if dataset:
        if test_input_path or test_labels_path:
            raise InputError("--test-input/--test-labels go with --input; --dataset has its own test split")
        return None
    if labels_path is None:
        raise InputError("--input needs --labels Y.npy (one integer class per sample)")
    if (test_input_path is None) != (test_labels_path is None):
        raise InputError("give both --test-input and --test-labels, or neither")

    def pair(xp, yp, xo, yo):
        x, y = read_npy(xp, xo), read_npy(yp, yo).reshape(-1)
        if y.dtype.kind not in "iu":
            raise InputError(f"{yo} {yp}: labels must be integers, got dtype {y.dtype}")
        if len(y) != len(x):
            raise InputError(f"{yo} {yp}: {len(y)} labels for {len(x)} samples")
        classes = math.prod(spec.output_shape)
        if len(y) and (y.min() < 0 or y.max() >= classes):
            raise InputError(f"{yo} {yp}: labels must be in 0..{classes - 1} (the network has {classes} outputs), "
                             f"found {int(y.min())}..{int(y.max())}")
        if pad:
            x = pad_to_shape(x, spec.input_shape)
        x = np.ascontiguousarray(fit_to_shape(x, spec.input_shape, f"{xo} {xp}"), dtype=np.float32)
        return x, y.astype(np.int64)

    xtr, ytr = pair(input_path, labels_path, "--input", "--labels")
    if test_input_path:
        xte, yte = pair(test_input_path, test_labels_path, "--test-input", "--test-labels")
    else:
        xte, yte = xtr, ytr
    return xtr, ytr, xte, yte


def _train_samples(dataset, data, limit) -> int:
    """The number of training samples (the shipped datasets are small and read quickly)."""
    if data is not None:
        n = len(data[0])
    else:
        from ..data import load_dataset

        n = len(load_dataset(dataset).split("train")[0])
    return min(n, limit) if limit else n


@click.command()
@click.argument("network", type=click.Path(dir_okay=False))
@click.option("--dataset", type=click.Choice(["digits", "mnist"]),
              help="Trains on its train split, reports accuracy on its held-out test split.")
@click.option("--input", "input_path", type=click.Path(dir_okay=False),
              help="Training samples .npy [N, ...] (instead of --dataset); needs --labels.")
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False), help="Training labels .npy [N].")
@click.option("--test-input", "test_input_path", type=click.Path(dir_okay=False),
              help="Held-out samples .npy for the reported test accuracy (default: the training samples).")
@click.option("--test-labels", "test_labels_path", type=click.Path(dir_okay=False), help="Held-out labels .npy.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Trained weights (.npz, PyTorch state_dict names); runs with 'snnsim run'.")
@click.option("--method", type=click.Choice(["bptt", "reversible", "ottt", "saf"]), default="bptt", show_default=True)
@click.option("--variant", default="", help="ottt: A (one update per batch, default) or O (an update every "
              "timestep); saf: E (loss every step, default) or F (loss at the last step).")
@click.option("--timesteps", "-T", "timesteps", default=None,
              help="T, or a list such as 5,4,3,2,1 for the IIR schedule (each stage starts from the previous "
                   "stage's weights). Default: the network's T.")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True, help="Epochs per stage.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default="adamw", show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)
@click.option("--momentum", type=click.FloatRange(0, 1), default=0.9, show_default=True, help="SGD momentum.")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=None,
              help="Default 0.01 for AdamW, 0 for SGD; applies to weight matrices and kernels only.")
@click.option("--schedule", default="cosine", show_default=True, help="constant | cosine | step:0.5,0.75")
@click.option("--warmup-epochs", type=click.FloatRange(min=0), default=0.0, show_default=True)
@click.option("--loss", type=click.Choice(["ce", "mse", "tet", "compound"]), default="ce", show_default=True,
              help="ce: cross-entropy on the mean output (the network's readout); tet; compound (T-RevSNN).")
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True)
@click.option("--tet-lambda", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--surrogate", default="sigmoid:4", show_default=True, help="sigmoid[:alpha] | atan[:alpha] | "
              "triangle[:alpha] (SpikingJelly's Sigmoid, ATan, PiecewiseQuadratic).")
@click.option("--detach-reset/--no-detach-reset", default=False, show_default=True)
@click.option("--augment", type=click.IntRange(min=0), default=0, show_default=True,
              help="Random shifts of up to N pixels (image inputs).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seeds the initial weights, the data order, augmentation and dropout.")
@click.option("--init", "init_path", type=click.Path(dir_okay=False),
              help="Start from these weights (a weights .npz or a training checkpoint) instead of PyTorch's "
                   "default initialisation.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="Checkpoint file (written atomically).")
@click.option("--checkpoint-every", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also checkpoint every N steps within an epoch.")
@click.option("--resume", is_flag=True, help="Continue from --checkpoint if it exists.")
@click.option("--limit", type=click.IntRange(min=1), help="Train on the first N training samples only.")
@click.option("--pad-input", is_flag=True, help="Zero-pad images to the network's HxW and repeat a single channel "
              "to its C (MNIST for a 3x32x32 network), as 'snnsim hw --pad-input'.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Write per-epoch and per-stage results, and per-layer memory, as JSON.")
def train(network, dataset, out_path, method, variant, timesteps, epochs, batch_size, optimizer, lr, momentum,
          weight_decay, schedule, warmup_epochs, loss, label_smoothing, tet_lambda, surrogate, detach_reset,
          augment, seed, init_path, checkpoint, checkpoint_every, resume, limit, pad_input, report_path,
          input_path=None, labels_path=None, test_input_path=None, test_labels_path=None):
    """Train NETWORK (YAML) on --dataset or on --input/--labels arrays and write the weights to --out."""
    from ..layers import load_spec
    from ..train.checkpoint import load_init
    from ..train.loop import TrainConfig, init_params, train as run_training, write_weights
    from ..train.optim import parse_schedule
    from ..train.surrogate import parse_surrogate

    from ..outputs import check_output

    check_output(out_path, "--out", make_parents=True)
    for path, option in ((report_path, "--report"), (checkpoint, "--checkpoint")):
        if path:
            check_output(path, option)
    spec = load_spec(network)
    data = _array_data(spec, dataset, input_path, labels_path, test_input_path, test_labels_path, pad_input)
    if data is not None:
        dataset = f"input:{Path(input_path).name}"
    Ts = _timesteps(timesteps) if timesteps else (spec.timesteps,)
    check_train_memory(spec, method, max(Ts), _train_samples(dataset, data, limit), batch_size)
    parse_surrogate(surrogate)
    parse_schedule(schedule)
    if resume and not checkpoint:
        raise InputError("--resume needs --checkpoint PATH")
    cfg = TrainConfig(dataset=dataset, method=method, variant=variant, timesteps=Ts, epochs=epochs,
                      batch_size=batch_size, optimizer=optimizer, lr=lr, momentum=momentum,
                      weight_decay=weight_decay, schedule=schedule, warmup_epochs=warmup_epochs, loss=loss,
                      label_smoothing=label_smoothing, tet_lambda=tet_lambda, surrogate=surrogate,
                      detach_reset=detach_reset, seed=seed, augment=augment, limit=limit, pad_input=pad_input)
    params = load_init(spec, init_path) if init_path else init_params(spec, seed)
    multi = len(Ts) > 1
    out = Path(out_path)

    def stage_out(T, p):
        if multi:
            write_weights(spec, p, out.with_name(f"{out.stem}.T{T}{out.suffix}"))

    state = {"bar": None, "info": ""}

    def progress(info):
        if "epoch_done" in info:
            h = info["epoch_done"]
            if state["bar"] is not None:
                state["bar"].render_finish()
                state["bar"] = None
            click.echo(f"T={h['T']} epoch {h['epoch']}/{epochs}: loss {h['loss']:.4f}, train acc "
                       f"{h['train_acc']:.4f}, test acc {h['test_acc']:.4f}, step {h['step_time_s'] * 1e3:.0f} ms, "
                       f"peak held for backward {fmt_bytes(h['peak_bytes'])}")
            return
        if state["bar"] is None:
            state["bar"] = click.progressbar(length=info["batches"], file=sys.stderr,
                                             label=f"T={info['T']} epoch {info['epoch']}/{info['epochs']}",
                                             item_show_func=lambda _: state["info"])
            state["bar"].__enter__()
            state["bar"].update(info["batch"] - 1)
        state["info"] = (f"loss {info['loss']:.3f} acc {info['acc']:.3f} "
                         f"mem {fmt_bytes(info['memory'].get('peak_bytes', 0))}")
        state["bar"].update(1)

    # The loop checks the loss and every parameter after each step (TrainingDiverged names what went wrong and
    # keeps the last good checkpoint), so numpy's overflow on the way there is not the CLI's error.
    with np.errstate(all="ignore"):
        result = run_training(spec, params, cfg, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                              resume=resume, stage_out=stage_out, progress=progress, data=data)
    write_weights(spec, result.params, out_path)
    click.echo(f"saved weights to {out_path}")
    if multi:
        click.echo("IIR stages (each from the previous stage's weights):")
        for s in result.stages:
            click.echo(f"  T={s['T']}: test acc {s['test_acc']:.4f} after {s['epochs']} epochs, "
                       f"step {s['step_time_s'] * 1e3:.0f} ms, peak held {fmt_bytes(s['peak_bytes'])}")
    mem = result.memory
    if mem.get("per_layer_peak"):
        top = sorted(mem["per_layer_peak"].items(), key=lambda kv: -kv[1])
        more = f", and {len(top) - 8} more layers (--report has all)" if len(top) > 8 else ""
        click.echo(f"bytes held for backward (largest step): peak {fmt_bytes(mem['peak_bytes'])}; largest per layer: " +
                   ", ".join(f"{k} {fmt_bytes(v)}" for k, v in top[:8]) + more)
    if report_path:
        rep = {"network": spec.name, "dataset": dataset, "config": cfg.resume_key(), "history": result.history,
               "stages": result.stages, "memory": mem}
        from ..outputs import write_text

        write_text(report_path, json.dumps(rep, indent=1), "--report")
