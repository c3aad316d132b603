"""``python -m snnsim.cli``: the same command line as ``snnsim``."""

from . import main

main()
