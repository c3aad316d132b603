"""The inverse of RevSNN blocks, re-simulated with a rigorous error bound (docs/papers.md, RevSNN inverse and
Reversal numerics).

Given a block's outputs y[0..T-1] (``invert_block``): G is re-simulated from a reset state over all T steps on y1,
giving x2 = y2 - G(y1); then F from a reset state on x2, giving x1 = y1 - F(x2). Spikes are never inverted, only
re-evaluated forward on the engine's untraced executor (``snnsim.engine.Replay``).

Float32 round-off, spike flips. x2 = fl(y2 - G) is not bit-equal to the forward's x2 (fl(x2 + G) lost low bits),
so F is re-simulated on a perturbed input, and a neuron whose charge lies within the perturbation of its
threshold may spike differently, changing F by a whole weight column. snnsim does not hope this away: the
re-simulation carries an elementwise, rigorous bound on |reconstructed - forward| through every op (|W|
convolved with the input bound plus the float32 summation error gamma_K * |W| |x|, the neuron update's Lipschitz
constants plus its rounding, exact zero after a hard reset), and counts every neuron whose re-simulated charge H
satisfies |H - threshold| <= bound(H): a spike that might differ from the forward's. The decision
(docs/regimes.md): such a reconstruction is **flagged**; with ``cache`` (the exact tensor, kept by the caller)
the inverse **falls back to the cached state**; without one it raises ``SpikeFlipError`` (``on_risk='keep'``
returns the flagged reconstruction instead). Recomputing in float64 was rejected: the error comes from the
forward's float32 rounding of y, which no precision in the inverse can undo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine import Replay
from ..errors import SpikeFlipError
from ..layers.op import sub_bound
from ..layers.reversible import uncouple


@dataclass
class InverseResult:
    x: np.ndarray              # the reconstructed input, [T, B, C, ...] (or the cached one after a fallback)
    bound: np.ndarray          # elementwise bound on |x - forward's x| (zeros after a fallback)
    at_risk: int               # spikes that may have flipped in the re-simulation (0: the bound is rigorous)
    risks: list                # where: [Risk(layer, t, count)]
    fallback: bool             # the cached state was used

    @property
    def flagged(self) -> bool:
        return self.at_risk > 0


def _resolve(x, bound, risks, cache, on_risk, what) -> InverseResult:
    n = sum(r.count for r in risks)
    if n == 0:
        return InverseResult(x, bound, 0, risks, False)
    if cache is not None:
        cache = np.asarray(cache, np.float32)
        if cache.shape != x.shape:
            raise ValueError(f"cache: expected shape {list(x.shape)}, got {list(cache.shape)}")
        return InverseResult(cache.copy(), np.zeros_like(cache), n, risks, True)
    if on_risk == "raise":
        first = risks[0]
        raise SpikeFlipError(f"{what}: {n} re-simulated spikes lie within the reconstruction error of their "
                             f"threshold (first: layer {first.layer}, t={first.t}); pass the cached state (cache=) "
                             "or on_risk='keep' to accept the flagged reconstruction")
    return InverseResult(x, bound, n, risks, False)


def invert_block(op, y: np.ndarray, bound: np.ndarray | None = None, *, cache=None,
                 on_risk: str = "raise", form: str = "auto", event_threshold: float | None = None) -> InverseResult:
    """Rebuild a reversible block's input x [T, B, C, ...] from its output y [T, B, C, ...] over all T steps.

    ``bound``: elementwise bound on the error of ``y`` itself (when y is a reconstruction, e.g. the next block's
    inverse); None if y is exact. ``form``/``event_threshold`` must be those of the forward run so that the
    re-simulation uses the same kernels (and so the same float32 sums). See the module docstring for ``cache``
    and ``on_risk``.
    """
    if on_risk not in ("raise", "keep"):
        raise ValueError("on_risk: 'raise' or 'keep'")
    y = np.asarray(y, np.float32)
    T = y.shape[0]
    c = y.shape[2] // 2
    y1, y2 = y[:, :, :c], y[:, :, c:]
    e1 = e2 = None
    if bound is not None:
        e1, e2 = bound[:, :, :c], bound[:, :, c:]
    sim_g, sim_f = Replay(form, event_threshold), Replay(form, event_threshold)
    bounds = {}                      # per step: the bounds on G's and F's re-simulated outputs
    ex2 = np.empty_like(y2)

    def run_g(v):
        out, bounds["g"] = sim_g.steps(op.g, v, e1)
        return out

    def run_f(x2):
        for t in range(T):           # the bound on x2 = y2 - G(y1), which F's re-simulation carries
            ex2[t] = sub_bound(y2[t], None if e2 is None else e2[t], bounds["g"][t], x2[t])
        out, bounds["f"] = sim_f.steps(op.f, x2, ex2)
        return out

    x1, x2 = uncouple(y1, y2, run_g, run_f)
    ex1 = np.empty_like(y1)
    for t in range(T):
        ex1[t] = sub_bound(y1[t], None if e1 is None else e1[t], bounds["f"][t], x1[t])
    x = np.concatenate([x1, x2], axis=2)
    eb = np.concatenate([ex1, ex2], axis=2)
    return _resolve(x, eb, sim_g.risks + sim_f.risks, cache, on_risk, f"inverse of block {op.name}")


def invert_chain(ops: list, y: np.ndarray, *, caches: dict | None = None, on_risk: str = "raise",
                 form: str = "auto", event_threshold: float | None = None) -> list[InverseResult]:
    """Invert consecutive reversible blocks (a RevSNN ReversibleSequence) from the last block's output y.

    Returns one result per block, first block first; each block is inverted from the previous step's
    reconstruction and its bound, so the bounds grow with depth. ``caches``: {block name: exact input}.
    """
    out = []
    bound = None
    for op in reversed(ops):
        r = invert_block(op, y, bound, cache=(caches or {}).get(op.name), on_risk=on_risk, form=form,
                         event_threshold=event_threshold)
        out.append(r)
        y, bound = r.x, r.bound
    return out[::-1]
