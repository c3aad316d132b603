"""``snnsim plot raster|membrane|rates|energy RESULT -o FIG.png``: figures of a saved run (snnsim.plot)."""

from __future__ import annotations

import click

from ..errors import InputError


@click.command("plot")
@click.argument("kind", type=click.Choice(["raster", "membrane", "rates", "energy"]))
@click.argument("result", type=click.Path(dir_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="Figure file (.png, .pdf, .svg).")
@click.option("--layer", "layers", multiple=True, help="Only this layer (repeatable); default: every saved one.")
@click.option("--sample", type=click.IntRange(min=0), default=0, show_default=True, help="Sample to draw.")
@click.option("--arch", default="evt45", show_default=True, help="energy: accelerator preset or YAML file.")
def plot(kind, result, out, layers, sample, arch):
    """Draw RESULT: raster/membrane/rates read a file from `snnsim run --output R.npz --save spikes,membrane`;
    energy reads a trace from `snnsim run --trace T.npz` and prices it on --arch (µJ per inference)."""
    import os
    from pathlib import Path

    from .. import plot as P
    from ..outputs import check_output

    check_output(out, "-o/--out")

    if kind == "energy":
        fig = P.energy(result, arch)
    elif kind == "rates":
        fig = P.rates(result)
    else:
        fig = getattr(P, kind)(result, layers, sample)
    path = Path(out)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, dpi=120)
        tmp.replace(path)
    except (OSError, ValueError) as e:
        tmp.unlink(missing_ok=True)
        raise InputError(f"-o {out}: cannot write the figure ({e})") from None
    click.echo(f"wrote {out}")
