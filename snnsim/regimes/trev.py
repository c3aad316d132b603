"""The T-RevSNN regime's runs outside the traced engine loop (docs/papers.md, T-RevSNN inverse): the forward that
keeps its column states, the exact inverse of a column re-simulated with a rigorous error bound (the reasoning is
``snnsim.regimes.reversible``'s), and one level's forward for training checks. All run the kind's own column
schedule and level (``snnsim.layers.trevsnn``) on the engine's untraced executor (``snnsim.engine.Replay``):

    c_l[t-1] = (c_l[t] - L_l(c_{l-1}[t], c_{l+1}[t-1])) / alpha_l,    l = L-1 .. 0, each step re-running L forward
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine import Replay, Risk
from ..errors import InputError, SnnsimError, SpikeFlipError
from ..layers.trevsnn import guard_mask, quant_risk, recon_bound, run_columns, run_level, the_op, uncouple


@dataclass
class TRevForward:
    x: np.ndarray                       # stem output [B, C0, H0, W0] (computed once, kept once)
    states: list                        # states[t][l] = c_l[t], or None where not kept
    logits: dict                        # column -> head output [B, classes]
    guard: dict                         # (t, l) -> exact c_l[t], kept because its reconstruction is at risk
    alphas: list                        # alphas[t][l], clamped, [C, 1, 1]


def forward(net, img: np.ndarray, *, timesteps: int | None = None, keep: str = "all", guard: bool = True,
            form: str = "auto", event_threshold: float | None = None) -> TRevForward:
    """Run a T-RevSNN batch (no trace) and return the stem output, the column states and every head's output.

    keep: 'all' keeps every c_l[t]; 'last' keeps only the last column's (the reversible-training setting: the rest
    is rebuilt with ``invert_column``). guard: also keep, exactly, each c_l[t-1] whose reconstruction from
    column t could flip a Quant spike (``guard_mask``) - the fall-back of the inverse; almost always empty.
    """
    op = the_op(net)
    T = int(timesteps or net.spec.timesteps)
    if not 1 <= T <= op.layer.columns:
        raise InputError(f"timesteps: T={T} is not between 1 and {op.layer.columns}")
    img = np.ascontiguousarray(img, np.float32)
    ex = Replay(form, event_threshold)
    box: dict = {}
    logits = dict(run_columns(op, ex, img, T, sorted(op.heads), None, box))
    states = box["states"]
    g = {}
    if guard:
        for t in range(1, T):
            for l, lv in enumerate(op.columns[t]):
                if guard_mask(states[t][l], states[t - 1][l], lv.state.alpha).any():
                    g[(t - 1, l)] = states[t - 1][l].copy()
    if keep == "last":
        states = [[None] * len(s) for s in states[:-1]] + [states[-1]]
    elif keep != "all":
        raise ValueError("keep: 'all' or 'last'")
    alphas = [[lv.state.alpha for lv in op.columns[t]] for t in range(T)]
    return TRevForward(box["x"], states, logits, g, alphas)


@dataclass
class ColumnInverse:
    states: list          # c_hat_l[t-1], l = 0..L-1
    bounds: list          # elementwise bounds on |c_hat - c_forward| (zeros after a fall-back)
    at_risk: list         # per level: Quant spikes that might flip (0: the bound is rigorous)
    fallback: list        # per level: the cached state was used
    risks: list = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return any(self.at_risk)


def invert_column(net, t: int, x: np.ndarray, c_t: list, *, bounds: list | None = None, cache: dict | None = None,
                  on_risk: str = "raise", form: str = "auto", event_threshold: float | None = None) -> ColumnInverse:
    """Exact inverse of column t (docs/papers.md): from x (the stem output) and all c_l[t], rebuild c_l[t-1]
    for l = L-1 .. 0 by running L forward:  c_l[t-1] = (c_l[t] - L_l(c_{l-1}[t], c_{l+1}[t-1])) / alpha_l.

    bounds: per-level elementwise bounds on the error of c_t (when c_t is itself a reconstruction, i.e. when
    inverses are chained across columns); None for exact states. cache: {level: exact c_l[t-1]} to fall back on
    (``TRevForward.guard``). A level whose reconstruction might flip a Quant spike downstream is flagged; it
    falls back to ``cache`` if given, else raises ``SpikeFlipError`` (on_risk='keep' returns it flagged).
    form/event_threshold must match the forward's so that L is recomputed with the same kernels.
    """
    if on_risk not in ("raise", "keep"):
        raise ValueError("on_risk: 'raise' or 'keep'")
    op = the_op(net)
    if not 1 <= t < len(op.columns):
        raise InputError(f"t: column {t} has no previous column to rebuild (columns 1..{len(op.columns) - 1})")
    levels = op.columns[t]
    L = len(levels)
    for lv in levels:
        if not np.all(lv.state.alpha):
            raise SnnsimError(f"column {t}: {lv.state.layer.key} has channels with alpha = 0 (the official clamp "
                              "keeps an exact 0), so c[t-1] cannot be rebuilt from column t")
    cache = cache or {}
    sim = Replay(form, event_threshold)
    out = [None] * L
    eb = [None] * L
    risk = [0] * L
    fell = [False] * L
    allrisks = []
    for l in range(L - 1, -1, -1):
        lv = levels[l]
        below = x if l == 0 else np.asarray(c_t[l - 1], np.float32)
        e_below = None if (l == 0 or bounds is None) else bounds[l - 1]
        n0 = len(sim.risks)
        up = out[l + 1] if l + 1 < L else None
        e_up = eb[l + 1] if up is not None and eb[l + 1] is not None and eb[l + 1].any() else None
        o, eo = run_level(lambda ops, v, e: sim.bounded(ops, v, e, t), t, lv, below, e_below, up, e_up)
        c = np.asarray(c_t[l], np.float32)
        ec = None if bounds is None else bounds[l]
        chat = uncouple(c, o, lv.state.alpha)
        b = recon_bound(c, ec, eo, lv.state.alpha, chat)
        n = int(quant_risk(chat, b).sum()) + sum(r.count for r in sim.risks[n0:])
        if n:
            allrisks.append(Risk(lv.state.name, t - 1, n))
            risk[l] = n
            if l in cache:
                chat = np.asarray(cache[l], np.float32).copy()
                b = np.zeros_like(chat)
                fell[l] = True
            elif on_risk == "raise":
                raise SpikeFlipError(f"inverse of column {t}: {n} elements of the rebuilt c{l}[t-1] lie within the "
                                     "reconstruction error of the Quant threshold 0.5; pass the exact state "
                                     "(cache={level: c}, kept by forward(guard=True)) or on_risk='keep'")
        out[l], eb[l] = chat, b
    return ColumnInverse(out, eb, risk, fell, allrisks)


def level_forward(net, t: int, l: int, below: np.ndarray, up_prev: np.ndarray | None, *, form: str = "auto",
                  event_threshold: float | None = None) -> np.ndarray:
    """L_l^(t)(below, up_prev) = B2(B1(down(below) + up(up_prev))) with the engine's arithmetic (for training)."""
    op = the_op(net)
    ex = Replay(form, event_threshold)
    return run_level(lambda ops, x, e: ex.bounded(ops, x, e, t), t, op.columns[t][l], np.asarray(below, np.float32),
                     None, up_prev, None)[0]
