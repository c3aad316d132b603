"""``snnsim hw``: run a network in each execution regime, price the runs on an architecture, report.

The glue between snnsim's public API (spec, weights, engine, data) and the hardware model. Registered in
``snnsim.cli`` with ``main.add_command(hw)``; user errors are ``SnnsimError``s (one line, exit status 2).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np
import pandas as pd

from . import DATASET_CHOICE, DATASET_HELP
from .memory import check_input_memory, check_run_memory
from ..data import pad_to_shape
from ..errors import InputError, SnnsimError
from ..outputs import check_output_dir, write_csv

from hwmodel.arch import DATAFLOW, load_arch, presets, with_dataflow

REGIMES = ("multistep", "trev", "oneshot")


class _Command(click.Command):
    """One-line error and exit status 2 for user errors, also when run outside the snnsim group."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SnnsimError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(2)


def _parse_regimes(text: str) -> list[str]:
    names = [r.strip() for r in text.split(",") if r.strip()]
    bad = [r for r in names if r not in REGIMES]
    if bad or not names:
        raise InputError(f"--regimes: unknown regime {bad[0]!r}; choose from {', '.join(REGIMES)}" if bad
                         else "--regimes: give at least one regime")
    return list(dict.fromkeys(names))


def resolve_regimes(text: str | None, network: str, is_trev: bool) -> tuple[list[str], str]:
    """The regimes to run for this network, and a note to print ('' if none).

    Default: the network's own T-step regime and one-shot. A T-RevSNN has no multi-step execution (each
    column runs once, at its own timestep), so 'multistep' stands for its T-step run, 'trev'; a plain
    network has no temporal-reversible execution, so 'trev' is an error."""
    if text is None:
        return (["trev", "oneshot"] if is_trev else ["multistep", "oneshot"]), ""
    names = _parse_regimes(text)
    if not is_trev and "trev" in names:
        raise InputError(f"--regimes trev: network '{network}' is not a T-RevSNN (no 'trevsnn' layer), so it has "
                         "no temporal-reversible execution; compare multistep,oneshot")
    if is_trev and "multistep" in names:
        names = list(dict.fromkeys("trev" if r == "multistep" else r for r in names))
        return names, (f"note: '{network}' is a T-RevSNN: it has no multi-step execution (each column runs once, "
                       "at its own timestep), so its T-step run is 'trev'; ratios are to trev")
    return names, ""


def run_regimes(net, x, T: int, regimes, batch_size: int = 64, client=None, labels=None, accuracy=None) -> dict:
    """One engine run per regime on the same network, weights and input; returns {regime: trace}.
    With a Dask ``client`` each run is sharded over its workers (snnsim.distributed; the same traces).
    With ``labels``, each regime's accuracy is written into the ``accuracy`` dict."""
    from ..engine import run

    if client is not None:
        from functools import partial

        from ..distributed import run_sharded

        run = partial(run_sharded, net.spec, net.weights, client=client)

    traces = {}
    events = net.spec.encoding.kind == "events"
    for reg in regimes:
        if reg == "oneshot" and events:
            raise InputError("--regimes oneshot: an event-stream network has one input frame per timestep; "
                             "a T=1 run of it is not the same task")
        steps = 1 if reg == "oneshot" else T
        args = (x,) if client is not None else (net, x)
        result = run(*args, timesteps=steps, batch_size=batch_size, regime=reg)
        traces[reg] = result.trace
        if labels is not None and accuracy is not None:
            from ..engine import accuracy as score

            accuracy[reg] = score(result, labels)
    return traces


def load_labels(labels_path, dataset, split, limit, n, data_dir, spec, T):
    """The labels of the samples: --labels for --input, the dataset's own for --dataset (None without them)."""
    from . import EVENT_DATASETS, read_npy

    if labels_path is not None:
        if dataset is not None:
            raise InputError("--labels goes with --input; a --dataset has its own labels")
        y = read_npy(labels_path, "--labels").reshape(-1)
    elif dataset in EVENT_DATASETS:
        from ..datasets import load_event_dataset

        y = load_event_dataset(dataset, data_dir, split, T, limit)[1]
    elif dataset is not None:
        from ..data import load_dataset

        y = load_dataset(dataset).split(split)[1]
        y = y[:limit] if limit else y
    else:
        return None
    if len(y) != n:
        raise InputError(f"--labels: {len(y)} labels for {n} samples")
    return y


def load_samples(spec, input_path, dataset, split, limit, pad: bool, data_dir=None, timesteps=None) -> np.ndarray:
    """The samples to run: as ``snnsim run`` loads them, or padded to the input shape with --pad-input."""
    from . import load_inputs

    if not pad:
        try:
            return load_inputs(spec, input_path, None, dataset, split, limit, data_dir=data_dir,
                               timesteps=timesteps)[0]
        except InputError as e:
            if "do not fit" in str(e):
                raise InputError(f"{e}; --pad-input zero-pads images and repeats a single channel") from None
            raise
    if (input_path is None) == (dataset is None):
        raise InputError("give exactly one of --input X.npy or --dataset NAME")
    if spec.encoding.kind == "events":
        raise InputError("--pad-input: pads static images; this network takes an event stream")
    if dataset:
        from ..data import load_dataset

        x = load_dataset(dataset).split(split)[0]
    else:
        try:
            x = np.load(input_path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputError(f"--input {input_path}: cannot read a .npy array ({e})") from None
    return pad_to_shape(x[:limit] if limit else x, spec.input_shape)


def list_presets() -> str:
    lines = []
    for name in presets():
        a = load_arch(name)
        lines.append(f"{name}: {a.description}\n    source: {a.source}")
    return "\n".join(lines)


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@click.command("hw", cls=_Command)
@click.argument("network", required=False, type=click.Path(dir_okay=False))
@click.option("--weights", "weights_path", type=click.Path(dir_okay=False), help="Weights .npz.")
@click.option("--arch", "arch_name", default="evt45", show_default=True,
              help="A preset (see --list-presets) or an architecture YAML file.")
@click.option("--input", "input_path", type=click.Path(dir_okay=False), help="Samples .npy [N, ...].")
@click.option("--dataset", type=DATASET_CHOICE, help=DATASET_HELP)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder tonic saved the event dataset to.")
@click.option("--split", type=click.Choice(["test", "train", "all"]), default="test", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N samples.")
@click.option("--timesteps", "-T", type=click.IntRange(min=1), help="T of the multi-step regime.")
@click.option("--regimes", help=f"Comma-separated, from {', '.join(REGIMES)}. Default: multistep,oneshot; "
              "trev,oneshot for a T-RevSNN (where multistep stands for trev).")
@click.option("--pad-input", is_flag=True, help="Zero-pad images to the network's HxW and repeat a single channel "
              "to its C (e.g. --dataset mnist on a 3x32x32 network).")
@click.option("--encoder", type=click.Choice(DATAFLOW["encoder"]),
              help="Override the architecture's encoder convention (every_step = the papers' proxy).")
@click.option("--training", is_flag=True, help="Also price training per sample (BPTT, reversible, online).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Write CSV tables and the plot here.")
@click.option("--list-presets", "show_presets", is_flag=True,
              help="List the architecture presets with their sources.")
@click.option("--objective", type=click.Choice(["energy", "latency", "edp"]), default="energy", show_default=True,
              help="What the mapper minimises per layer (each regime on its own best mappings).")
@click.option("--mapping", "mapping_choice", default="search", show_default=True,
              help="'search', or fixed:NAME to run every layer on one mapping of the architecture (its "
              "'mappings' list; e.g. fixed:timestep_outer reproduces the timestep-major schedule).")
@click.option("--convention", type=click.Choice(["hwmodel", "neurobench"]), default="hwmodel", show_default=True,
              help="neurobench: report NeuroBench 2.3.0's workload metrics of the T-step run instead of prices "
              "(the samples are one NeuroBench batch).")
@click.option("--workers", type=click.IntRange(min=1), help="Shard the samples over a local Dask cluster of N "
              "worker processes (pip install 'snnsim[dask]'); the totals are the single-process ones.")
@click.option("--scheduler", help="Shard the samples over a running Dask cluster (its scheduler address).")
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False),
              help="Labels .npy [N] for --input: print each regime's accuracy (a --dataset has its own labels).")
def hw(network, weights_path, arch_name, input_path, dataset, split, limit, timesteps, regimes, pad_input,
       encoder, training, batch_size, out_dir, show_presets, objective, mapping_choice, convention, data_dir=None,
       workers=None, scheduler=None, labels_path=None):
    """Price real runs of NETWORK on an event-driven accelerator (--arch); compare execution regimes."""
    if show_presets:
        click.echo(list_presets())
        return
    if not network or not weights_path:
        raise InputError("give NETWORK.yaml and --weights W.npz (or --list-presets)")
    from ..engine import schedule_of
    from ..network import build_network
    from ..layers import load_spec
    from ..weights import load_weights

    from hwmodel.counts import count
    from hwmodel.regimes import compare, components_table, plot
    from hwmodel.training import training_cost

    if out_dir:
        check_output_dir(out_dir, "--out")      # before any work: a bad folder fails in a second, not after the runs
    arch = load_arch(arch_name)
    if encoder:
        arch = with_dataflow(arch, encoder=encoder)
    spec = load_spec(network)
    net = build_network(spec, load_weights(spec, weights_path))
    names, note = resolve_regimes(regimes, spec.name, schedule_of(net).name == "trev")
    T = timesteps or spec.timesteps
    from ..limits import over

    if over("timesteps", T):
        raise InputError(f"-T/--timesteps: {over('timesteps', T)}")
    check_input_memory(spec, input_path, limit, T, batch_size)
    x = load_samples(spec, input_path, dataset, split, limit, pad_input, data_dir, T)
    check_run_memory(spec, T, len(x[0]) if spec.encoding.kind == "events" else len(x), batch_size,
                     input_bytes=x.nbytes)
    if convention == "neurobench":
        _neurobench_report(spec, net, x, T, batch_size, out_dir)
        return
    from hwmodel.mapping import parse_choice

    parse_choice(mapping_choice, arch)          # a bad NAME fails before anything is priced
    y = load_labels(labels_path, dataset, split, limit, len(x[0]) if spec.encoding.kind == "events" else len(x),
                    data_dir, spec, T)
    acc = {}
    if workers or scheduler:
        from ..distributed import client as dask_client

        with dask_client(workers, scheduler) as c:
            traces = run_regimes(net, x, T, names, batch_size, client=c, labels=y, accuracy=acc)
    else:
        traces = run_regimes(net, x, T, names, batch_size, labels=y, accuracy=acc)
    table, reports = compare(traces, arch, objective, mapping_choice)
    n = next(iter(traces.values())).samples

    how = (f"mappings {mapping_choice} ({objective})" if arch.mappings
           else f"membrane {arch.dataflow['membrane']}")
    click.echo(f"network {spec.name}: {n} samples, T={T}; arch {arch.name} ({arch.mapping}, {how}, "
               f"weights {arch.dataflow['weights']}, encoder {arch.dataflow['encoder']}); per inference")
    if acc:
        click.echo("accuracy: " + ", ".join(f"{k} {v:.4f}" for k, v in acc.items()))
    click.echo(f"source: {arch.source}")
    if note:
        click.echo(note)
    click.echo(table.drop(columns="mappings").to_string(index=False, float_format=_fmt))
    click.echo(f"\nmappings (objective {objective}):")
    click.echo(pd.concat([r.mapping.assign(regime=k) for k, r in reports.items()])[
        ["regime", "layer", "mapping", "samples_share", "energy_pj", "time_ns"]].to_string(index=False, float_format=_fmt))
    comp = components_table(reports)
    click.echo("\nenergy by component (pJ per inference):")
    click.echo(comp.to_string(float_format=_fmt))
    summary = None
    if training:
        phases, summary = training_cost(count(traces[names[0]], arch.dataflow["encoder"]), arch)
        click.echo(f"\ntraining cost per sample ({names[0]} run, SATA-style):")
        click.echo(summary.to_string(index=False, float_format=_fmt))
    if out_dir:
        out = Path(out_dir)
        write_csv(out / "hw_regimes.csv", table, "--out", index=False)
        write_csv(out / "hw_components.csv", comp, "--out", index_label="component")
        write_csv(out / "hw_mappings.csv", pd.concat([r.mapping.assign(regime=k) for k, r in reports.items()]),
                  "--out", index=False)
        write_csv(out / "hw_breakdown.csv", pd.concat([r.breakdown.assign(regime=k) for k, r in reports.items()]),
                  "--out", index=False)
        write_csv(out / "hw_constants.csv", arch.constants(), "--out", index=False)
        if summary is not None:
            write_csv(out / "hw_training.csv", phases, "--out", index=False)
        paths = plot(reports, out / "hw_energy", f"{spec.name} on {arch.name}: energy by component")
        click.echo(f"\nwrote {out / 'hw_regimes.csv'}, hw_components.csv, hw_mappings.csv, hw_breakdown.csv, "
                   "hw_constants.csv"
                   f"{', hw_training.csv' if summary is not None else ''}, {paths[0].name}, {paths[1].name}")


def _neurobench_report(spec, net, x, T, batch_size, out_dir):
    from ..engine import run

    from hwmodel.neurobench import neurobench_metrics

    from ..network import check_nonzero_weights, spiking_layers

    trace = run(net, x, timesteps=T, batch_size=batch_size, probes=spiking_layers(net)).trace
    table = pd.DataFrame([{"metric": k, "value": v} for k, v in neurobench_metrics(trace).items()])
    click.echo(f"network {spec.name}: {trace.samples} samples, T={T}; NeuroBench 2.3.0 workload metrics "
               "(per sample; input layer at every step)")
    zero = check_nonzero_weights(net)
    if zero:
        click.echo(f"note: layers {', '.join(zero)} have zero weights, which NeuroBench skips and this count "
                   "does not")
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.10g}"))
    if out_dir:
        write_csv(Path(out_dir) / "hw_neurobench.csv", table, "--out", index=False)


if __name__ == "__main__":  # pragma: no cover
    hw(sys.argv[1:])
