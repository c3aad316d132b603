"""Errors a user can cause. Each names the place (YAML path, weight key, CLI option) and the fix.

The CLI turns any ``SnnsimError`` into a one-line message and exit status 2; everything else is a bug.
"""


class SnnsimError(Exception):
    """Base class for every error caused by user input."""


class SpecError(SnnsimError):
    """A network YAML file is malformed or inconsistent."""

    def __init__(self, path: str, message: str, source: str | None = None):
        self.path = path
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path}: {message}" if path else f"{where}{message}")


class WeightError(SnnsimError):
    """A weights file does not match the network it is loaded into."""


class InputError(SnnsimError):
    """Input data (arrays, datasets, options) cannot be run."""


class SpikeFlipError(SnnsimError):
    """A reconstruction may have flipped a spike and no cached state was given to fall back to."""
