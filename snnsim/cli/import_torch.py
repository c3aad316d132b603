"""``snnsim import-torch``: a PyTorch module (SpikingJelly, snnTorch, Norse, torch.nn) -> network YAML + weights."""

from __future__ import annotations

import click


from ..errors import InputError


@click.command("import-torch")
@click.argument("model")
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False), help="Network YAML to write.")
@click.option("--weights-out", required=True, type=click.Path(dir_okay=False), help="Weights .npz to write.")
@click.option("--input-shape", required=True, help="Per-sample input shape, e.g. 1,28,28.")
@click.option("--timesteps", "-T", type=click.IntRange(min=1), default=4, show_default=True,
              help="Timesteps of the network (and of the example for a multi-step SpikingJelly model).")
@click.option("--encoding", type=click.Choice(["direct", "rate", "events"]), default="direct", show_default=True,
              help="direct: the same input every timestep; events: one input per timestep [T, N, ...].")
def import_torch(model, out, weights_out, input_shape, timesteps, encoding):
    """Convert MODEL (FILE.py:factory, called with no arguments, or a file saved with torch.save) to an snnsim
    network YAML and a weights .npz. Refuses, naming the module, anything snnsim cannot compute exactly."""
    import torch

    from ..outputs import check_output
    from ..torch_import import _multi_step, from_torch, load_module

    check_output(out, "-o/--out")
    check_output(weights_out, "--weights-out")

    try:
        shape = [int(s) for s in input_shape.split(",") if s.strip()]
    except ValueError:
        shape = []
    if not shape or min(shape) < 1:
        raise InputError(f"--input-shape: expected positive integers such as 1,28,28, got {input_shape!r}")
    module = load_module(model)
    if not isinstance(module, torch.nn.Module):
        raise InputError(f"{model}: gave a {type(module).__name__}, not a torch.nn.Module")
    lead = (timesteps, 1) if _multi_step(module) else (1,)
    example = torch.zeros(lead + tuple(shape))
    imp = from_torch(module, example, timesteps=timesteps, encoding=encoding)
    imp.network()                      # the written pair must load: check it before writing
    imp.save(out, weights_out)
    click.echo(f"wrote {out} and {weights_out} ({len(imp.weights)} arrays); {imp.notes[-1]}")
    click.echo(f"run it: snnsim run {out} --weights {weights_out} --input X.npy")

