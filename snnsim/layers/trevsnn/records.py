"""The records of a T-RevSNN network (the network, its levels, the state c_l of a level in a column), the state
coupling c = o + alpha * c_prev with its inverse, and the column schedule (``columns``) that inference, the
inverse and both training methods run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...spec import Layer


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True)
class TRevState(Layer):
    """The turned-on state c_l of one level in one column: c = L + alpha * c_prev. Weight key ``key``
    (``subnet<t>.alpha<l>``, shape [1, C, 1, 1])."""

    column: int = 0
    level: int = 0
    key: str = ""
    kind = "state"

    def param_shapes(self):
        return {"alpha": (1, self.in_shape[0], 1, 1)}

    def param_keys(self):
        return {self.key: (1, self.in_shape[0], 1, 1)}


@dataclass(frozen=True)
class TLevel:
    down: tuple = ()
    up: tuple = ()
    blocks: tuple = ()
    state: TRevState = None


@dataclass(frozen=True)
class TRevSNN(Layer):
    columns: int = 4
    channels: tuple = ()
    strides: tuple = ()
    kernel_size: int = 3
    hidden_ratio: int = 4
    stem_spec: tuple = ()          # ((kernel, stride, padding), ...)
    fusion: bool = True
    heads: int = 4                 # 0: one SpikeClassifier 'cls_blocks' after the last column
    classes: int = 10
    level_shapes: tuple = ()
    stem: tuple = ()
    levels: tuple = ()             # levels[t][l]: TLevel
    head_layers: tuple = ()        # ((column, (layers...)), ...)
    kind = "trevsnn"

    def sublayers(self):
        out = list(self.stem)
        heads = dict(self.head_layers)
        for t, col in enumerate(self.levels):
            for lv in col:
                out += list(lv.down) + list(lv.up) + list(lv.blocks) + [lv.state]
            out += list(heads.get(t, ()))
        return tuple(out)

    @property
    def state_words(self) -> int:
        """State words per sample kept across timesteps: one c_l per level (0 with a single column)."""
        return sum(int(np.prod(s)) for s in self.level_shapes) if self.columns > 1 else 0

    def head_columns(self) -> list[int]:
        return [t for t, _ in self.head_layers]


def trev_layer(spec) -> TRevSNN | None:
    for layer in spec.layers:
        if isinstance(layer, TRevSNN):
            return layer
    return None


# ----------------------------------------------------------------------------- the coupling and the column schedule
ALPHA_MIN = 1e-3


def clamp_alpha(a: np.ndarray) -> np.ndarray:
    """The official ``SubNet._clamp_abs``: sign(a) * max(|a|, 1e-3) in float32 (sign(0) = 0 keeps 0)."""
    a = np.asarray(a, np.float32)
    return (np.sign(a) * np.maximum(np.abs(a), np.float32(ALPHA_MIN))).astype(np.float32)


def couple(o: np.ndarray, c_prev: np.ndarray | None, alpha: np.ndarray) -> np.ndarray:
    """The state of a level: c_l[t] = o_l + alpha * c_l[t-1] in float32 (column 0 has no c[t-1]: c = o)."""
    if c_prev is None:
        return o
    return np.add(o, c_prev * alpha, dtype=np.float32)


def uncouple(c: np.ndarray, o: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The coupling's inverse: c_l[t-1] = (c_l[t] - o_l) / alpha, from the recomputed o_l."""
    return (np.subtract(c, o, dtype=np.float32) / alpha).astype(np.float32)


def columns(x, T: int, L: int, level, state):
    """The column schedule, the one that inference and both training methods run: columns t = 0..T-1, each once,
    and in each the levels l = 0..L-1 in order, level l reading c_{l-1}[t] (the stem output ``x`` at l = 0) and
    c_{l+1}[t-1] (None at t = 0 and at the top level):

        o = level(t, l, below, up_prev);    c_l[t] = state(t, l, o, c_l[t-1])     (c_l[t-1] None at t = 0)

    Yields (t, [c_0[t], .., c_{L-1}[t]]) after each column."""
    prev = [None] * L
    for t in range(T):
        cur = []
        for l in range(L):
            o = level(t, l, x if l == 0 else cur[l - 1], prev[l + 1] if l + 1 < L else None)
            cur.append(state(t, l, o, prev[l]))
        yield t, cur
        prev = cur
