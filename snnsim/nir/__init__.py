"""NIR interchange (docs/nir.md): read and write NIR graphs, convert them to and from snnsim specs and weights.

    io.py        the NIR file format, node names and snnsim's metadata keys; peers' exporters
    importer.py  NIR graph -> spec + weights (``snnsim import-nir``)
    exporter.py  spec + weights -> NIR graph (``snnsim export-nir``; each kind's node: ``Kind.nir_export``)
    cli.py       the two commands

The ``nir`` package itself is imported only when a graph is read or written.
"""
