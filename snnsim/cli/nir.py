"""``snnsim import-nir`` and ``snnsim export-nir`` (registered on the main group in ``snnsim.cli``).

User errors are :class:`snnsim.nir.io.NirError` (an ``SnnsimError``): one line and exit status 2.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("import-nir")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Network YAML to write.")
@click.option("--weights-out", type=click.Path(dir_okay=False),
              help="Weights .npz to write (default: the YAML path with .npz).")
@click.option("--dt", type=float, help="Time step in seconds, used when the graph's metadata has none "
              "(snnTorch and SpikingJelly export with 1e-4); overrides the metadata when given.")
@click.option("--spike-rule", type=click.Choice(["gt", "ge"]), help="Spike at v > threshold (gt, NIR's rule and "
              "snnTorch's) or v >= threshold (ge, SpikingJelly's). Default: the graph metadata, else gt.")
@click.option("--timesteps", "-T", type=click.IntRange(min=1), help="Timesteps written into the spec "
              "(default: the graph metadata, else 4).")
@click.option("--encoding", type=click.Choice(["events", "direct", "rate"]), help="Input encoding written into "
              "the spec (default: the graph metadata, else events: one input tensor per timestep, [T, N, ...]).")
@click.option("--name", help="Network name (default: the graph metadata, else the file name).")
@click.option("--fix", "fix", type=click.Choice(["norse-tau"]), multiple=True, help="norse-tau: the file was "
              "written by Norse's to_nir, which stores dt*tau as tau (norse/norse#411 on GitHub); read tau/dt instead.")
def import_nir(model, out, weights_out, dt, spike_rule, timesteps, encoding, name, fix=()):
    """Convert a NIR graph (MODEL.nir) into a network YAML and a weights .npz that `snnsim run` executes."""
    from ..nir.importer import import_nir as do_import, write_import

    from ..outputs import check_output

    weights_out = weights_out or str(Path(out).with_suffix(".npz"))
    check_output(out, "--out")
    check_output(weights_out, "--weights-out")
    result = do_import(model, dt=dt, spike_rule=spike_rule, timesteps=timesteps, encoding=encoding, name=name,
                       fix=tuple(fix))
    write_import(result, out, weights_out)
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
    for n in result.notes:
        click.echo(f"note: {n}", err=True)
    n_layers = len(result.spec["layers"])
    dt_txt = f", dt={result.dt:g} s" if result.dt is not None else ""
    click.echo(f"wrote {out} ({n_layers} top-level layers{dt_txt}) and {weights_out} ({len(result.weights)} arrays)")
    click.echo(f"run it with: snnsim run {out} --weights {weights_out} --input X.npy")


@click.command("export-nir")
@click.argument("network", type=click.Path(dir_okay=False))
@click.option("--weights", "weights_path", required=True, type=click.Path(dir_okay=False),
              help="Weights .npz of NETWORK.")
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False), help="NIR file to write.")
@click.option("--dt", type=float, default=1e-4, show_default=True,
              help="Seconds per snnsim timestep; time constants are written as tau * dt.")
@click.option("--allow-lossy", is_flag=True, help="Export neurons NIR cannot express (subtract reset) as the "
              "nearest NIR neuron, with a warning naming each layer, instead of failing.")
@click.option("--for", "reader", type=click.Choice(["snntorch"]), help="Write the graph the way this reader runs "
              "it identically (snntorch: residual sums as nirtorch's multi-input nodes, Flatten over the batched "
              "tensor; see docs/nir.md), or fail naming what it cannot run.")
def export_nir(network, weights_path, out, dt, allow_lossy, reader=None):
    """Write NETWORK (YAML) with its weights as a NIR graph, with snnsim's dt and conventions in the metadata."""
    from ..nir.exporter import export_file
    from ..outputs import check_output

    check_output(out, "--out")
    result = export_file(network, weights_path, out, dt=dt, allow_lossy=allow_lossy, reader=reader)
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
    for n in result.notes:
        click.echo(f"note: {n}", err=True)
    g = result.graph
    click.echo(f"wrote {out}: {len(g.nodes)} NIR nodes, {len(g.edges)} edges, dt={dt:g} s")
