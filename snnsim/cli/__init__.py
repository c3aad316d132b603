"""Command line: ``snnsim run``, ``snnsim info``, ``snnsim init-weights``, ``snnsim warmup``.

Every user error (bad YAML, weights, input, options) ends with a one-line message and exit status 2.
"""

from __future__ import annotations

import math
import sys

import click
import numpy as np

from ..errors import InputError, SnnsimError

PROGRESS_MIN_SAMPLES = 256   # below this a run takes a moment; no bar


# Commands that live in other modules, imported only when used: `snnsim run` should not pay for
# the hardware model's, NIR's or training's imports.
LAZY_COMMANDS = {
    "hw": ("snnsim.cli.hw", "hw"),
    "import-nir": ("snnsim.cli.nir", "import_nir"),
    "export-nir": ("snnsim.cli.nir", "export_nir"),
    "train": ("snnsim.cli.train", "train"),
    "warmup": ("snnsim.cli.warmup", "warmup"),
    "import-torch": ("snnsim.cli.import_torch", "import_torch"),
    "plot": ("snnsim.cli.plot", "plot"),
}


def format_rows(rows: list[dict]) -> str:
    """A plain right-aligned text table (numbers to 4 significant digits)."""
    if not rows:
        return ""
    cols = list(rows[0])

    def cell(v):
        if isinstance(v, float):
            return "nan" if v != v else f"{v:.4g}"
        return str(v)

    cells = [[cell(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


class _Group(click.Group):
    """Turns user errors into one line on stderr and exit status 2, never a traceback."""

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx, name):
        if name in LAZY_COMMANDS and name not in self.commands:
            import importlib

            module, attr = LAZY_COMMANDS[name]
            try:
                self.add_command(getattr(importlib.import_module(module), attr), name)
            except ImportError as e:
                raise click.ClickException(f"'{name}' is unavailable: {e}") from None
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        # A numpy floating-point problem (overflow, invalid value, division by zero) means a NaN or Inf was made
        # somewhere the checks at load did not foresee: it stops the command with one line instead of printing
        # a warning above a result that may be wrong. np.errstate is per thread (unlike a warnings filter, which
        # would also turn warnings in Dask's or the kernels' threads into exceptions).
        try:
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                return super().invoke(ctx)
        except SnnsimError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(2)
        except click.UsageError as e:       # click's own option checks: one line too, with where to look
            sub = f" {e.ctx.info_name}" if e.ctx is not None and e.ctx.parent is not None else ""
            click.echo(f"error: {e.format_message()} (see 'snnsim{sub} --help')", err=True)
            ctx.exit(2)
        except FloatingPointError as e:
            click.echo(f"error: numerical problem ({e}): a value overflowed float32 or became NaN; check the "
                       "weights and inputs for very large values", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="snnsim")
def main():
    """snnsim: a Numba spiking-network simulator with an event-driven accelerator model."""


def _load(net_path, weights_path):
    from ..network import build_network
    from ..layers import load_spec
    from ..weights import load_weights

    spec = load_spec(net_path)
    weights = load_weights(spec, weights_path)
    return spec, build_network(spec, weights)


def read_npy(path, option: str) -> np.ndarray:
    """One numeric array from a .npy file, or a one-line error naming the option."""
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise InputError(f"{option} {path}: cannot read a .npy array ({e})") from None
    if isinstance(x, np.lib.npyio.NpzFile):
        x.close()
        raise InputError(f"{option} {path}: an .npz archive; {option} takes a single array saved with numpy.save")
    if x.dtype.kind not in "fiub":
        raise InputError(f"{option} {path}: dtype {x.dtype} is not numeric")
    if x.ndim == 0:
        raise InputError(f"{option} {path}: expected an array, got shape [] (a single number)")
    return x


def load_inputs(spec, input_path, labels_path, dataset, split, limit, pad=False, data_dir=None, timesteps=None):
    """The samples (and labels, if any) that a command runs on (``pad``: the --pad-input option;
    ``data_dir``: the folder of an event dataset read by tonic, binned to ``timesteps`` frames)."""
    from ..data import fit_to_shape, load_dataset, pad_to_shape

    if (input_path is None) == (dataset is None):
        raise InputError("give exactly one of --input X.npy or --dataset NAME")
    if dataset in EVENT_DATASETS:
        return _event_inputs(spec, dataset, data_dir, split, limit, timesteps)
    if dataset:
        x, y = load_dataset(dataset).split(split)
    else:
        x = read_npy(input_path, "--input")
        y = None
        if labels_path:
            y = read_npy(labels_path, "--labels").reshape(-1)
            if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0)):
                raise InputError(f"--labels {labels_path}: expected whole-number class labels, got dtype {y.dtype}")
            y = y.astype(np.int64)
            classes = math.prod(spec.output_shape)
            if len(y) and (y.min() < 0 or y.max() >= classes):
                raise InputError(f"--labels {labels_path}: labels must be in 0..{classes - 1} (the network has "
                                 f"{classes} outputs), found {int(y.min())}..{int(y.max())}")
    if x.ndim < 2 or x.shape[0] == 0 or (spec.encoding.kind == "events" and (x.ndim < 3 or x.shape[1] == 0)):
        want = "[T, N, ...] events" if spec.encoding.kind == "events" else "[N, ...] samples"
        raise InputError(f"{'--input' if input_path else 'dataset'}: expected {want} with at least one sample, "
                         f"got shape {list(x.shape)}")
    if spec.encoding.kind == "events":
        if math.prod(x.shape[2:]) != math.prod(spec.input_shape):
            raise InputError(f"--input: events of shape {list(x.shape[2:])} do not fit the network input "
                             f"{list(spec.input_shape)} (an 'events' network takes [T, N, ...])")
        x = x.reshape(x.shape[:2] + tuple(spec.input_shape))
    if spec.encoding.kind != "events":
        if pad:
            x = pad_to_shape(x, spec.input_shape)
        x = fit_to_shape(x, spec.input_shape, "--input" if input_path else f"dataset {dataset}")
        n = len(x)
    else:
        n = x.shape[1] if x.ndim > 1 else 0
    if limit:
        x = x[:, :limit] if spec.encoding.kind == "events" else x[:limit]
        y = None if y is None else y[:limit]
        n = min(n, limit)
    if y is not None and len(y) != n:
        raise InputError(f"--labels: {len(y)} labels for {n} samples")
    return x, y


EVENT_DATASETS = ("nmnist", "dvsgesture", "shd")       # read by tonic from --data-dir (snnsim.datasets)
DATASET_CHOICE = click.Choice(["digits", "mnist", *EVENT_DATASETS])
DATASET_HELP = ("A shipped real dataset (digits, mnist), or an event dataset on your disk read by tonic "
                "(nmnist, dvsgesture, shd; with --data-dir; binned to T frames for an 'events' network).")


def _event_inputs(spec, dataset, data_dir, split, limit, timesteps):
    from ..data import fit_to_shape
    from ..datasets import load_event_dataset

    if spec.encoding.kind != "events":
        raise InputError(f"--dataset {dataset}: event frames need a network with 'encoding: events'; "
                         f"'{spec.name}' uses '{spec.encoding.kind}'")
    T = int(timesteps or spec.timesteps)
    x, y = load_event_dataset(dataset, data_dir, split, T, limit)
    frames = fit_to_shape(x.reshape((-1,) + x.shape[2:]), spec.input_shape, f"--dataset {dataset} frames")
    return frames.reshape((T, -1) + tuple(spec.input_shape)), y


@main.command()
@click.argument("network", type=click.Path(dir_okay=False))
@click.option("--weights", "weights_path", required=True, type=click.Path(dir_okay=False),
              help="Weights .npz keyed by PyTorch state_dict names.")
@click.option("--input", "input_path", type=click.Path(dir_okay=False), help="Samples .npy [N, ...] "
              "(or [T, N, ...] spike events for an 'events' network).")
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False), help="Labels .npy [N].")
@click.option("--dataset", type=DATASET_CHOICE, help=DATASET_HELP)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder tonic saved the event dataset to.")
@click.option("--split", type=click.Choice(["test", "train", "all"]), default="test", show_default=True,
              help="Part of --dataset to run.")
@click.option("--limit", type=click.IntRange(min=1), help="Run only the first N samples.")
@click.option("--pad-input", is_flag=True, help="Zero-pad images to the network's H x W and repeat a single "
              "channel to its C (MNIST 1x28x28 -> 3x32x32).")
@click.option("--timesteps", "-T", help="Override the network's T; a list such as 5,4,3,2,1 runs the same weights "
              "at each T and prints accuracy and cost per T (T=1: one-shot, no state kept).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--form", type=click.Choice(["auto", "dense", "event"]), default="auto", show_default=True,
              help="Kernel form for layers with weights; auto picks per layer and timestep by density.")
@click.option("--event-threshold", type=click.FloatRange(0, 1), help="Input density below which 'auto' "
              "runs event-driven.")
@click.option("--output", type=click.Path(dir_okay=False), help="Save outputs [T, N, classes] and per-layer, "
              "per-timestep totals (spike_count/<layer>, nonzero_out/<layer>) to this .npz.")
@click.option("--save", "save", help="With --output, also store full per-layer tensors [T, N, ...]: a comma list "
              "of spikes, membrane, outputs (non-neuron layers). Memory grows with N x T x neurons.")
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False), help="Save the full trace (.npz).")
@click.option("--workers", type=click.IntRange(min=1), help="Shard the samples over a local Dask cluster of N "
              "worker processes (pip install 'snnsim[dask]'); the result is the single-process one.")
@click.option("--scheduler", help="Shard the samples over a running Dask cluster (its scheduler address).")
def run(network, weights_path, input_path, labels_path, dataset, split, limit, pad_input, timesteps, batch_size,
        form, event_threshold, output, trace_path, save=None, data_dir=None, workers=None, scheduler=None):
    """Run NETWORK (YAML) with its weights on input data; print accuracy and a per-layer table."""
    from ..engine import accuracy, run as run_net, stats_rows
    from ..outputs import check_output

    for path, option in ((output, "--output"), (trace_path, "--trace")):
        if path:
            check_output(path, option)
    spec, net = _load(network, weights_path)
    Ts = _parse_timesteps(timesteps) or [spec.timesteps]
    save_kinds = _parse_save(save, output)
    from .memory import check_input_memory, check_run_memory

    check_input_memory(spec, input_path, limit, max(Ts), batch_size, save_kinds)
    x, y = load_inputs(spec, input_path, labels_path, dataset, split, limit, pad_input, data_dir, Ts[0])
    n = x.shape[1] if spec.encoding.kind == "events" else len(x)
    check_run_memory(spec, max(Ts), n, batch_size, save_kinds, x.nbytes)
    from .warmup import note_compilation

    note_compilation()
    if len(Ts) > 1:
        if workers or scheduler:
            raise InputError("--workers/--scheduler shard a single run; give one value of -T with them")
        if output or trace_path:
            raise InputError("--output and --trace save a single run; give one value of -T with them")
        _run_each_T(spec, net, x, y, n, Ts, batch_size, form, event_threshold)
        return
    T = Ts[0]
    probes = []
    if save_kinds:
        from ..plot import probe_names

        probes = probe_names(net, save_kinds)
    if workers or scheduler:
        from ..distributed import client as dask_client, run_sharded

        with dask_client(workers, scheduler) as c:
            result = run_sharded(spec, net.weights, x, client=c, timesteps=T, batch_size=batch_size, form=form,
                                 event_threshold=event_threshold, probes=probes)
    else:
        with click.progressbar(length=n, label=f"{spec.name} T={T}", file=sys.stderr,
                               hidden=n < PROGRESS_MIN_SAMPLES) as bar:
            result = run_net(net, x, timesteps=T, batch_size=batch_size, form=form,
                             event_threshold=event_threshold, progress=bar.update, probes=probes)
    click.echo(f"network {spec.name}: {n} samples, T={T}, encoding {spec.encoding.kind}, "
               f"regime {result.trace.regime}")
    if y is not None:
        click.echo(f"accuracy: {accuracy(result, y):.4f}")
    click.echo(format_rows(stats_rows(result.trace)))
    if output:
        from ..plot import run_arrays

        _save(output, run_arrays(result, save_kinds, y))
        click.echo(f"saved outputs to {output}")
    if trace_path:
        result.trace.save(trace_path)
        click.echo(f"saved trace to {trace_path}")


def _parse_save(text, output):
    if not text:
        return ()
    from ..plot import SAVE_KINDS

    kinds = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in kinds if k not in SAVE_KINDS]
    if bad or not kinds:
        raise InputError(f"--save: expected a comma list of {', '.join(SAVE_KINDS)}, got {text!r}")
    if not output:
        raise InputError("--save stores tensors in the --output file; give --output FILE.npz")
    return tuple(kinds)


def _parse_timesteps(text):
    if text is None:
        return []
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise InputError(f"-T/--timesteps: expected a positive integer or a comma-separated list of them "
                         f"(e.g. 5,4,3,2,1), got {text!r}")
    from ..limits import over

    if over("timesteps", max(values)):
        raise InputError(f"-T/--timesteps: {over('timesteps', max(values))}")
    return values


def _run_each_T(spec, net, x, y, n, Ts, batch_size, form, event_threshold):
    """The same weights at several T (IIR-SNN's setting): accuracy and cost per T."""
    import time

    import pandas as pd

    from ..engine import accuracy, run as run_net

    rows = []
    for T in Ts:
        t0 = time.perf_counter()
        res = run_net(net, x, timesteps=T, batch_size=batch_size, form=form, event_threshold=event_threshold)
        dt = time.perf_counter() - t0
        tr = res.trace
        spikes = sum(int(r.events_out.sum()) for r in tr.layers
                     if r.spiking)
        row = dict(T=T, regime=tr.regime)
        if y is not None:
            row["accuracy"] = accuracy(res, y)
        row.update(spikes_per_sample=spikes / max(1, n),
                   synops_per_sample=sum(float(r.synops_binary.sum()) for r in tr.layers) / max(1, n),
                   macs_per_sample=sum(float(r.macs_analog.sum()) for r in tr.layers) / max(1, n),
                   state_words=sum(r.state_size for r in tr.layers if r.stateful),
                   ms_per_sample=1e3 * dt / max(1, n))
        rows.append(row)
        if y is not None:
            click.echo(f"T={T}: accuracy {row['accuracy']:.4f}")
    click.echo(f"network {spec.name}: {n} samples, encoding {spec.encoding.kind}")
    click.echo(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def _save(path, arrays):
    from ..outputs import save_npz

    save_npz(path, arrays, "--output")


@main.command()
@click.argument("network", type=click.Path(dir_okay=False))
def info(network):
    """Print NETWORK's layers: output shapes, parameter counts, state size."""
    import pandas as pd

    from ..layers import layer_table, load_spec

    spec = load_spec(network)
    rows = layer_table(spec)
    df = pd.DataFrame(rows)
    click.echo(f"network {spec.name}: input {list(spec.input_shape)}, T={spec.timesteps}, "
               f"encoding {spec.encoding.kind}, readout {spec.readout.reduce} of {spec.readout.source}")
    if spec.description:
        click.echo(spec.description.strip())
    click.echo(df.to_string(index=False))
    click.echo(f"total: {int(df.params.sum())} parameters, {int(df.state.sum())} state words per sample "
               "kept across timesteps")


@main.command("init-weights")
@click.argument("network", type=click.Path(dir_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False))
@click.option("--seed", type=int, default=0, show_default=True)
def init_weights(network, out, seed):
    """Write seeded random weights for NETWORK (PyTorch-style initialisation)."""
    from ..weights import random_weights
    from ..layers import load_spec
    from ..outputs import check_output
    from ..weights import save_npz

    check_output(out, "--out")
    spec = load_spec(network)
    save_npz(out, random_weights(spec, seed), "--out")
    click.echo(f"wrote {len(spec.param_shapes())} arrays to {out}")



if __name__ == "__main__":  # pragma: no cover
    main()
