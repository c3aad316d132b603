"""Optimisers (PyTorch's update rules, in float32, parameters updated in place) and learning-rate schedules.

    sgd     d = g + wd * p;  buf = d (first step) or momentum * buf + d;  p -= lr * (d + momentum * buf if
            nesterov else buf)                                                  (torch.optim.SGD, dampening 0)
    adamw   p *= 1 - lr * wd;  m, v moments;  p -= lr / (1 - b1^k) * m / (sqrt(v) / sqrt(1 - b2^k) + eps)
                                                                                (torch.optim.AdamW)
Weight decay applies to weight matrices and kernels (ndim >= 2) only, not to biases, batch-norm affine
parameters or PLIF time constants.

Schedules are pure functions of the step index, so a resumed run follows the same schedule.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("constant", "cosine", "step")


class Optimizer:
    slots: tuple[str, ...] = ()

    def __init__(self, keys, weight_decay: float = 0.0):
        self.keys = list(keys)
        self.wd = float(weight_decay)
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.k = 0

    def decays(self, p: np.ndarray) -> bool:
        return self.wd != 0 and p.ndim >= 2

    def step(self, params: dict, grads: dict, lr: float) -> None:
        self.k += 1
        for key in self.keys:
            if key in grads:
                self._update(key, params[key], grads[key], np.float32(lr))

    def _update(self, key, p, g, lr):
        raise NotImplementedError

    def state_arrays(self) -> dict[str, np.ndarray]:
        out = {"__k__": np.array(self.k, np.int64)}
        for key, slots in self.state.items():
            for s, arr in slots.items():
                out[f"{key}/{s}"] = arr
        return out

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.k = int(arrays.get("__k__", 0))
        self.state = {}
        for name, arr in arrays.items():
            if name == "__k__":
                continue
            key, s = name.rsplit("/", 1)
            self.state.setdefault(key, {})[s] = np.array(arr, np.float32)

    def reset(self) -> None:
        self.state = {}
        self.k = 0


class SGD(Optimizer):
    slots = ("momentum",)

    def __init__(self, keys, momentum=0.9, weight_decay=0.0, nesterov=False):
        super().__init__(keys, weight_decay)
        self.momentum = np.float32(momentum)
        self.nesterov = nesterov

    def _update(self, key, p, g, lr):
        d = g + np.float32(self.wd) * p if self.decays(p) else g
        if self.momentum:
            st = self.state.setdefault(key, {})
            buf = st.get("momentum")
            if buf is None:
                buf = st["momentum"] = np.array(d, np.float32)
            else:
                buf *= self.momentum
                buf += d
            d = d + self.momentum * buf if self.nesterov else buf
        p -= lr * d


class AdamW(Optimizer):
    slots = ("exp_avg", "exp_avg_sq")

    def __init__(self, keys, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(keys, weight_decay)
        self.b1, self.b2 = float(betas[0]), float(betas[1])
        self.eps = float(eps)

    def _update(self, key, p, g, lr):
        if self.decays(p):
            p *= np.float32(1.0 - float(lr) * self.wd)
        st = self.state.setdefault(key, {})
        if "exp_avg" not in st:
            st["exp_avg"] = np.zeros_like(p)
            st["exp_avg_sq"] = np.zeros_like(p)
        m, v = st["exp_avg"], st["exp_avg_sq"]
        m *= np.float32(self.b1)
        m += np.float32(1 - self.b1) * g
        v *= np.float32(self.b2)
        v += np.float32(1 - self.b2) * g * g
        bc1 = 1 - self.b1 ** self.k
        bc2 = 1 - self.b2 ** self.k
        denom = np.sqrt(v) / np.float32(math.sqrt(bc2)) + np.float32(self.eps)
        p -= np.float32(float(lr) / bc1) * m / denom


def make_optimizer(name: str, keys, momentum=0.9, weight_decay=None):
    if name == "sgd":
        return SGD(keys, momentum=momentum, weight_decay=0.0 if weight_decay is None else weight_decay)
    if name == "adamw":
        return AdamW(keys, weight_decay=0.01 if weight_decay is None else weight_decay)
    raise InputError(f"--optimizer: unknown '{name}'; known: {', '.join(OPTIMIZERS)}")


def parse_schedule(text: str) -> tuple[str, tuple[float, ...]]:
    """'constant', 'cosine', 'step:0.5,0.75' (decay by 10 at those fractions of the run)."""
    name, _, rest = str(text).partition(":")
    if name not in SCHEDULES:
        raise InputError(f"--schedule: unknown '{name}'; known: constant, cosine, step:F1,F2 (fractions of the run)")
    marks: tuple[float, ...] = ()
    if name == "step":
        try:
            marks = tuple(float(m) for m in (rest or "0.5,0.75").split(","))
        except ValueError:
            raise InputError(f"--schedule: step milestones must be fractions like step:0.5,0.75, got '{rest}'") \
                from None
        if not all(0 < m < 1 for m in marks):
            raise InputError(f"--schedule: step milestones must lie in (0, 1), got '{rest}'")
    return name, marks


def lr_at(step: int, total: int, base: float, schedule: tuple[str, tuple[float, ...]], warmup: int = 0,
          min_factor: float = 0.0) -> float:
    """Learning rate for 0-based ``step`` of ``total`` (linear warm-up first, then the schedule)."""
    if warmup and step < warmup:
        return base * (step + 1) / warmup
    name, marks = schedule
    frac = (step - warmup) / max(1, total - warmup)
    if name == "cosine":
        return base * (min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * frac)))
    if name == "step":
        return base * 0.1 ** sum(frac >= m for m in marks)
    return base
