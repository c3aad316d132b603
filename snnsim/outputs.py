"""Files the user asks for: checked before any work starts, written atomically, under exactly the given name.

``check_output`` runs when a command starts, so a missing folder or a path that is a directory is reported before
minutes of work, not after. ``write_atomic`` writes into a temporary file next to the target and renames it over
the target only when the write has finished (``os.replace`` is atomic on POSIX and Windows): a full disk, a
crash or a kill leaves the user's previous file untouched and no partial file under the given name. The writers
get an open binary file, so numpy does not append ``.npz`` to a name the user chose (``--output result.bin`` is
written as ``result.bin``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import InputError


def check_output(path, option: str, make_parents: bool = False) -> Path:
    """Refuse, before any work, an output path whose folder is missing (unless ``make_parents``) or not
    writable, or which names a directory."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{option} {path}: is a directory; give a file name")
    parent = path.parent
    if make_parents and not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"{option} {path}: cannot create the folder {parent} ({e.strerror or e})") from None
    if not parent.is_dir():
        raise InputError(f"{option} {path}: the folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{option} {path}: the folder {parent} is not writable")
    return path


def write_atomic(path, write: Callable, option: str = "output") -> None:
    """``write(f)`` into a temporary file beside ``path``, then rename it to ``path``; on any failure the
    temporary file is removed and an existing ``path`` is left as it was."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise InputError(f"{option} {path}: cannot write ({e.strerror or e}); "
                             "any previous file of that name is unchanged") from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_npz(path, arrays: dict, option: str = "output", compressed: bool = False) -> None:
    savez = np.savez_compressed if compressed else np.savez
    write_atomic(path, lambda f: savez(f, **arrays), option)


def write_text(path, text: str, option: str = "output") -> None:
    write_atomic(path, lambda f: f.write(text.encode("utf-8")), option)


def check_output_dir(path, option: str) -> Path:
    """Refuse, before any work, an output folder that is a file or cannot be created or written; create it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path}: is a file; give a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{option} {path}: cannot create the folder ({e.strerror or e})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"{option} {path}: the folder is not writable")
    return path


def write_csv(path, frame, option: str = "output", **to_csv) -> None:
    """A pandas DataFrame as CSV, written atomically."""
    write_text(path, frame.to_csv(**to_csv), option)
