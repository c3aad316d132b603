"""Bring your own data: arrays, torch tensors and DataLoaders, and event datasets read by tonic from local files.

- ``as_arrays(data)``: NumPy arrays from a NumPy array, a torch tensor, an ``(x, y)`` pair of them, or an
  iterable of ``(x, y)`` batches such as a ``torch.utils.data.DataLoader`` (concatenated along the batch axis).
- ``event_frames(samples, timesteps, sensor_size)``: event streams (tonic's structured arrays, e.g. fields
  ``x, y, t, p``) binned into ``timesteps`` frames each with ``tonic.transforms.ToFrame(sensor_size,
  n_time_bins=timesteps)``; returns ``x [T, N, *frame_shape]`` (the layout of an ``encoding: events``
  network) and ``y [N]``. ``samples`` is a tonic dataset or any sequence of ``(events, label)``.
- ``tonic_dataset(name, data_dir, train)``: N-MNIST, DVS Gesture or SHD as tonic reads them from ``data_dir``
  (the folder given to tonic as ``save_to``). Nothing is downloaded: missing files are an error that says
  where tonic expects them.

``snnsim run``/``hw`` take ``--dataset nmnist|dvsgesture|shd --data-dir DIR``; the frames are binned to the
network's ``T`` and the network must use ``encoding: events``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError

__all__ = ["TONIC_SETS", "as_arrays", "event_frames", "tonic_dataset", "load_event_dataset"]

# CLI name -> (tonic class, how a user gets the files)
TONIC_SETS = {
    "nmnist": ("NMNIST", "tonic.datasets.NMNIST(save_to=DIR, train=...) once with network access"),
    "dvsgesture": ("DVSGesture", "tonic.datasets.DVSGesture(save_to=DIR, train=...) once with network access"),
    "shd": ("SHD", "tonic.datasets.SHD(save_to=DIR, train=...) once, or shd_train.h5/shd_test.h5 (with their "
                   ".zip) from zenkelab.org copied to DIR/SHD/"),
}


def as_array(a, what: str = "input") -> np.ndarray:
    """A NumPy array from anything array-like: NumPy arrays, lists, torch tensors (detached, moved to the CPU)."""
    if hasattr(a, "detach") and hasattr(a, "cpu"):        # torch.Tensor, without importing torch
        return a.detach().cpu().numpy()
    try:
        return np.asarray(a)
    except (TypeError, ValueError) as e:
        raise InputError(f"{what}: not an array ({e})") from None


def as_arrays(data, labels=None):
    """``(x, y)`` as NumPy arrays (``y`` None when there are no labels) from arrays, tensors or batches."""
    if labels is not None:
        return as_array(data, "input"), as_array(labels, "labels").reshape(-1)
    if isinstance(data, tuple) and len(data) == 2:
        return as_array(data[0], "input"), as_array(data[1], "labels").reshape(-1)
    if hasattr(data, "shape") or isinstance(data, (list, np.ndarray)):
        return as_array(data, "input"), None
    xs, ys = [], []
    for i, batch in enumerate(data):                       # a DataLoader or any iterable of batches
        if isinstance(batch, (tuple, list)) and len(batch) >= 2:
            xs.append(as_array(batch[0], f"batch {i} input"))
            ys.append(as_array(batch[1], f"batch {i} labels").reshape(-1))
        else:
            xs.append(as_array(batch, f"batch {i}"))
    if not xs:
        raise InputError("input: the data loader gave no batches")
    if ys and len(ys) != len(xs):
        raise InputError("input: some batches have labels and some do not")
    return np.concatenate(xs), (np.concatenate(ys) if ys else None)


def event_frames(samples, timesteps: int, sensor_size=None, limit: int | None = None):
    """Bin event streams into ``timesteps`` frames each: ``(x [T, N, *frame], y [N])`` float32 / int64."""
    try:
        import tonic.transforms as tt
    except ImportError:
        raise InputError("event data needs tonic: pip install 'snnsim[events]'") from None
    sensor_size = sensor_size if sensor_size is not None else getattr(samples, "sensor_size", None)
    if sensor_size is None:
        raise InputError("event_frames: give sensor_size (e.g. (34, 34, 2) for N-MNIST)")
    to_frame = tt.ToFrame(sensor_size=tuple(sensor_size), n_time_bins=int(timesteps))
    n = len(samples) if limit is None else min(limit, len(samples))
    frames, labels = [], []
    for i in range(n):
        events, label = samples[i]
        if len(events) == 0:
            raise InputError(f"sample {i}: has no events; ToFrame cannot bin an empty stream")
        f = np.asarray(to_frame(events), np.float32)
        if len(f) != timesteps:
            raise InputError(f"sample {i}: binned into {len(f)} frames, not T={timesteps}")
        frames.append(f)
        labels.append(int(np.asarray(label).reshape(-1)[0]))
    if not frames:
        raise InputError("event data: no samples")
    return np.ascontiguousarray(np.stack(frames, axis=1)), np.asarray(labels, np.int64)


def tonic_dataset(name: str, data_dir: str | Path, train: bool):
    """A tonic dataset read from ``data_dir`` only (its download is replaced by an error naming the folder)."""
    if name not in TONIC_SETS:
        raise InputError(f"dataset: unknown event dataset '{name}'; known: {', '.join(TONIC_SETS)}")
    try:
        import tonic.datasets
    except ImportError:
        raise InputError("event datasets need tonic: pip install 'snnsim[events]'") from None
    cls_name, how = TONIC_SETS[name]
    base = getattr(tonic.datasets, cls_name)
    where = Path(data_dir) / cls_name

    def no_download(self):
        raise InputError(f"--data-dir {data_dir}: {cls_name} files not found in {where} (snnsim never downloads); "
                         f"get them with {how}")

    # same class name: tonic keeps files under save_to/<class name>
    local = type(cls_name, (base,), {"download": no_download})
    if not Path(data_dir).is_dir():
        raise InputError(f"--data-dir {data_dir}: not a folder")
    try:
        return local(save_to=str(data_dir), train=train)
    except InputError:
        raise
    except (OSError, KeyError, ValueError) as e:
        raise InputError(f"--data-dir {data_dir}: {cls_name} files in {where} cannot be read ({e})") from None


def load_event_dataset(name: str, data_dir, split: str, timesteps: int, limit: int | None = None):
    """``(x [T, N, ...], y)`` of a tonic dataset's split ('train', 'test' or 'all') binned to T frames."""
    if data_dir is None:
        raise InputError(f"--dataset {name}: give --data-dir DIR, the folder tonic saved {name} to")
    parts = ["train", "test"] if split == "all" else [split]
    xs, ys = [], []
    for part in parts:
        ds = tonic_dataset(name, data_dir, part == "train")
        left = None if limit is None else limit - sum(len(y) for y in ys)
        if left is not None and left <= 0:
            break
        x, y = event_frames(ds, timesteps, limit=left)
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs, axis=1), np.concatenate(ys)
