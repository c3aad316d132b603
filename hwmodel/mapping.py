"""The mapper: each layer (unit) of a run on its best loop order and accumulation, under an objective.

For every ``LoopMapping`` of the architecture the whole run is priced as if every unit used it
(``evaluate`` with per-unit mapping arrays), every sample by itself; each unit of each sample then takes the
mapping that minimises its own energy (with its share of the leakage) or its own time. Both are sums over units on the sequential
placement, and a unit's price does not depend on the other units' choices (residency across steps is
counted for every timestep-outer unit whatever the others do), so the per-unit choice is the optimum. EDP is
a product of sums, not separable: the candidates are the energy-best and latency-best assignments and every
uniform one, and the lowest energy x latency wins. Works on variants too (``hwmodel.sweep``): every array
then has a leading variant axis.
"""

from __future__ import annotations

import numpy as np

from .arch import Arch, ArchError
from .counts import Counts
from .energy import evaluate

OBJECTIVES = ("energy", "latency", "edp")


def mapping_arrays(maps, choice) -> dict:
    """Per-unit arrays of the mapping properties for ``choice`` [.., U] (indices into ``maps``)."""
    idx = np.asarray(choice)
    prop = lambda f: np.array([f(m) for m in maps], np.float64)[idx]  # noqa: E731
    return dict(t_outer=prop(lambda m: m.t_outer), t_inner=prop(lambda m: m.t_inner),
                per_op=prop(lambda m: m.accumulate == "per_op"), tile=prop(lambda m: m.tile_neurons))


def parse_choice(text: str | None, arch: Arch) -> int | None:
    """``None``/'search' -> None (search); 'fixed:NAME' -> the index of that mapping."""
    if text is None or text == "search":
        return None
    names = [m.name for m in arch.loop_mappings()]
    if not text.startswith("fixed:") or text[6:] not in names:
        raise ArchError("--mapping", f"expected 'search' or fixed:NAME with NAME one of {', '.join(names)}, "
                        f"got {text!r}", arch.path)
    return names.index(text[6:])


def search(c: Counts, arch: Arch, params: dict | None = None, objective: str = "energy",
           fixed: int | None = None) -> tuple[dict, np.ndarray]:
    """(evaluate() result on the chosen mappings, averaged over the samples; the chosen mapping index per
    sample and unit [.., S, U], or [U] when one mapping is given)."""
    if objective not in OBJECTIVES:
        raise ArchError("--objective", f"expected one of {', '.join(OBJECTIVES)}, got {objective!r}", arch.path)
    maps = arch.loop_mappings()
    params = arch.params() if params is None else params
    U = c.n_units
    if not arch.mappings:          # the fixed schedule of the dataflow switches (which a sweep may vary)
        return evaluate(c, params), np.zeros(U, int)
    if fixed is not None or len(maps) == 1:
        choice = np.full(U, 0 if fixed is None else fixed)
        return evaluate(c, dict(params, mapping=mapping_arrays(maps, choice))), choice
    # every sample on its own best mapping: the choice is made per sample from its own prices, so that a
    # sample's price does not depend on the other samples of the run
    tried = [evaluate(c, dict(params, mapping=mapping_arrays(maps, np.full(U, m))), each_sample=True)
             for m in range(len(maps))]
    shape = np.broadcast_shapes(*(np.shape(t["unit_pj"]) for t in tried), *(np.shape(t["unit_ns"]) for t in tried))
    pj = np.stack([np.broadcast_to(r["unit_pj"], shape) for r in tried])                # [M, .., (S), U]
    ns = np.stack([np.broadcast_to(r["unit_ns"], shape) for r in tried])
    by_e, by_t = np.argmin(pj, axis=0), np.argmin(ns, axis=0)
    if objective == "energy":
        choice = by_e
    elif objective == "latency":
        choice = by_t
    else:
        cands = np.stack([by_e, by_t] + [np.full(by_e.shape, m) for m in range(len(maps))])   # [C, .., U]
        score = np.stack([np.take_along_axis(pj, cand[None], 0)[0].sum(-1) * np.take_along_axis(ns, cand[None], 0)[0].sum(-1)
                          for cand in cands])                                               # [C, ..]
        best = np.argmin(score, axis=0)
        choice = np.take_along_axis(cands, best[None, ..., None], 0)[0]
    return evaluate(c, dict(params, mapping=mapping_arrays(maps, choice))), choice


def modal(choice: np.ndarray, n_maps: int) -> tuple[np.ndarray, np.ndarray]:
    """Per unit, the mapping most samples ran on and the share of samples on it: ``choice`` [.., S, U] (or
    [.., U] when all samples share it) -> ([.., U], [.., U])."""
    choice = np.asarray(choice)
    if choice.ndim < 2:
        return choice, np.ones(choice.shape)
    votes = np.stack([(choice == m).mean(axis=-2) for m in range(n_maps)])         # [M, .., U]
    best = np.argmax(votes, axis=0)
    return best, np.take_along_axis(votes, best[None], 0)[0]
