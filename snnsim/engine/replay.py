"""The engine's untraced executor: ops run with the traced run's arithmetic (the same ``op.forward`` calls with
the same kernel form rule, the same neuron step, fresh state) but write no trace. The reversible inverses
re-simulate their sub-networks on it, and the T-RevSNN forward that keeps its column states runs on it
(``snnsim.regimes``); the kinds' own code receives it as ``ex`` and never builds one.

Each op runs itself (``Op.replay``: a plain op by default, blocks and neurons by their own kinds). Optionally an
elementwise bound ``e`` on |value here - value in the forward| is carried through every op (``None`` = exact),
and every neuron whose spike might differ from the forward's is recorded (``risks``; docs/papers.md, Reversal
numerics, has the bound and the decision what to do with a reconstruction at risk).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels as K
from ..layers.op import kernel_form


@dataclass
class Risk:
    """Neurons of ``layer`` at timestep ``t`` whose re-simulated spike may differ from the forward's."""

    layer: str
    t: int
    count: int


class Replay:
    """Runs op lists timestep by timestep from fresh state, no trace. ``form``/``event_threshold``: the forward
    run's, so that each layer is recomputed by the same kernel and so the same float32 sums."""

    def __init__(self, form: str = "auto", event_threshold: float | None = None):
        self.form = form
        self.thr = None if event_threshold is None else float(event_threshold)     # None: the cost rule
        self.state: dict[str, list] = {}          # op name -> what its replay keeps across timesteps
        self.risks: list[Risk] = []

    @property
    def at_risk(self) -> int:
        return sum(r.count for r in self.risks)

    def reset(self) -> None:
        self.state.clear()

    def run_ops(self, ops, x: np.ndarray, t: int) -> np.ndarray:
        """Exact: the ops' output at timestep t (the interface of the engine's batch run)."""
        return self.bounded(ops, x, None, t)[0]

    def bounded(self, ops, x: np.ndarray, e: np.ndarray | None, t: int):
        """The ops' output at timestep t and the bound on its error, given the bound ``e`` on x's."""
        for op in ops:
            x, e = op.replay(self, x, e, t)
        return x, e

    def steps(self, ops, x: np.ndarray, e: np.ndarray | None = None):
        """The ops over every timestep of x [T, ...] from this replay's state (a fresh one: from a reset), with
        the bounds e [T, ...] on x's error (None: exact). Returns the outputs [T, ...] and, per timestep, the
        bound on the output's error (None where exact)."""
        out = np.empty_like(x)
        bounds = []
        for t in range(len(x)):
            out[t], b = self.bounded(ops, np.ascontiguousarray(x[t]), None if e is None else e[t], t)
            bounds.append(b)
        return out, bounds

    def kernel_form(self, op, x: np.ndarray) -> str:
        if self.form != "auto":
            return self.form
        return kernel_form(op, K.count_nonzero(x), x.size, self.thr)       # the engine's rule

    def note_risk(self, layer: str, t: int, count: int) -> None:
        if count:
            self.risks.append(Risk(layer, t, count))
